//! The detector's memory of *when* things recur: what the same minutes of the day held on each
//! of the previous days, so that a job that runs every night at 02:00 (or every hour, or every
//! Monday at 09:00) is expected at its time, at about its size, while a run ten times its
//! size, or the same run at a time it never runs, is still judged by the seasonal model.
//!
//! The seasonal model (`baseline`) knows *how much* an API is called in a 4-hour season; a job
//! that makes 70 calls in five minutes at 20:08 every day is, for that model, a clump that
//! could come at any time in the season, so its own run looks improbable. Here the question
//! is narrower and asked only of a window the seasonal model would open an episode on: did the
//! same window, moved back one day at a time and shifted up to `jitter` minutes either way
//! (jobs start a little early or late), hold a run on enough of the last days?
//!
//! - **A run** on a previous day: a window of the same length, starting within `jitter`
//!   minutes of the same time of day, that held at least as many calls as the window needs to
//!   open an episode by count alone (`min_start_count`, and `min_rate_ratio` times the seasonal
//!   expectation). Single calls never make a run, so a sparse API that happens to be called
//!   near the same time every day keeps its Insights.
//! - **A habit**: a run on at least `habit_days` of the last 7 days (daily jobs; also hourly
//!   ones, which run at that time of day too), or a run at the same time of week on the day
//!   seven days before (weekly jobs; the 7-day baseline holds one previous week). The oldest
//!   day's shifted window may begin before the model's window (a job at 23:57 seen from a
//!   window at 00:00): when the part seen holds no run, that day is unknown rather than a day
//!   without a run, and the other days need one run fewer ([`cut_day`]).
//! - **The habit's expectation**: the best-aligned window counts of the available days (runs
//!   or not) fitted as a count distribution, as the seasonal model fits minutes: their mean,
//!   and a negative binomial when they vary more than Poisson. A window with a habit opens an
//!   episode only if it also clears the start rule against this expectation: at least
//!   `min_rate_ratio` times the habitual calls and a tail at most `start_probability`.
//!
//! Only the days inside the model's window are read (from 00:00 UTC seven days before the
//! window's day), so a Start still depends only on the 7-day baseline, however runs are
//! split. The cost is a few slices of the per-minute index per candidate opening, and only
//! windows the seasonal model would open on are asked.

use super::baseline::{BINS, BaselineIndex, bin_of};
use super::model::{CountModel, WindowSums};
use crate::model::{BASELINE_DAYS, MINUTES_PER_DAY, Minute};

/// Days looked back for a habit.
pub const HABIT_LOOKBACK_DAYS: usize = BASELINE_DAYS as usize;

/// The habit of one window: how often it ran and what it is expected to hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Habit {
    /// Previous days (of `days_seen`) with a run at this time of day.
    pub runs: u32,
    /// Previous days inside the baseline.
    pub days_seen: u32,
    /// Only the weekly rule holds: a run at this time seven days before.
    pub weekly_only: bool,
    /// The count distribution of the window under the habit.
    pub model: CountModel,
}

/// For each of the last 7 days (index 0 = one day before), the most calls in a window of
/// `[first, last]`'s length, or in one whole run of at most `run_minutes` consecutive active
/// minutes of at least `run_per_minute` calls a minute (`BaselineIndex::max_run_calls`),
/// starting within `jitter` minutes of `first`'s
/// time of day; `None` for a day whose shifted window would begin before `floor`.
///
/// The run is the job's own length: an hourly job whose 5-15 calls spread over two minutes
/// holds fewer calls in any one minute than its run today may, so judged minute by minute
/// it would have too few earlier runs to be a habit.
pub fn previous_days(
    index: &BaselineIndex,
    first: Minute,
    last: Minute,
    jitter: i64,
    run_minutes: i64,
    run_per_minute: f64,
    floor: Minute,
) -> [Option<u64>; HABIT_LOOKBACK_DAYS] {
    let length = last.0 - first.0 + 1;
    std::array::from_fn(|d| {
        let back = (d as i64 + 1) * MINUTES_PER_DAY;
        let earliest = Minute(first.0 - back - jitter).max(floor);
        let latest = Minute(first.0 - back + jitter);
        (earliest <= latest).then(|| {
            index
                .max_window_calls(earliest, latest, length)
                .max(index.max_run_calls(earliest, latest, run_minutes, run_per_minute))
        })
    })
}

/// The previous day (index as in [`previous_days`]) whose shifted window `floor` cuts: it
/// begins before the model's window and ends inside it, so a run that started before `floor`
/// (a job at 23:57 seen from a window at 00:00) is only partly seen there.
pub fn cut_day(first: Minute, jitter: i64, floor: Minute) -> Option<usize> {
    (0..HABIT_LOOKBACK_DAYS).find(|&d| {
        let back = (d as i64 + 1) * MINUTES_PER_DAY;
        first.0 - back - jitter < floor.0 && floor.0 <= first.0 - back + jitter
    })
}

/// The days that count for a habit: `days` without the cut day when its seen part holds no
/// run (that day is unknown, not a day without a run), and how many runs they hold.
fn known_days(
    days: &[Option<u64>; HABIT_LOOKBACK_DAYS],
    cut: Option<usize>,
    run_calls: f64,
) -> (Vec<u64>, u32, bool) {
    let is_run = |c: u64| c as f64 >= run_calls;
    let unknown = cut.filter(|&d| days[d].is_some_and(|c| !is_run(c)));
    let known: Vec<u64> = days
        .iter()
        .enumerate()
        .filter(|(d, _)| Some(*d) != unknown)
        .filter_map(|(_, c)| *c)
        .collect();
    let runs = known.iter().filter(|c| is_run(**c)).count() as u32;
    (known, runs, unknown.is_some())
}

/// How many times `habit_jitter_minutes` a job may wander and still have its ordinary run
/// expected, if that run is no larger than one it made before ([`drifting_run`]).
pub const DRIFT_JITTERS: i64 = 4;

/// Whether a window of `observed` calls is an ordinary run of a job that wanders more than the
/// jitter: `days` ([`previous_days`] with the wider tolerance, `DRIFT_JITTERS` times the
/// jitter) held a run on at least `habit_days` days, and the window holds no more calls than
/// the largest of them. A job chained after another one (a snapshot clean-up that starts when
/// the snapshots are done) moves with the first job's duration, yet its run at another time is
/// still the same run. Stricter than a habit within the jitter, whose runs may grow up to
/// `min_rate_ratio` times before they are news: here any run larger than every earlier one is
/// judged by the season, so a burst near a wandering job's time is still found.
pub fn drifting_run(
    days: &[Option<u64>; HABIT_LOOKBACK_DAYS],
    cut: Option<usize>,
    run_calls: f64,
    habit_days: u32,
    observed: u64,
) -> bool {
    let (known, runs, unknown) = known_days(days, cut, run_calls);
    let largest = known.iter().filter(|c| **c as f64 >= run_calls).max();
    habit_days > 0
        && runs + u32::from(unknown) >= habit_days
        && largest.is_some_and(|m| observed <= *m)
}

/// The habit of a window, given what the same time held on the previous days
/// ([`previous_days`]), the day the model's window cuts ([`cut_day`]) and the fewest calls
/// that make a run; `None` without a habit.
pub fn habit(
    days: &[Option<u64>; HABIT_LOOKBACK_DAYS],
    cut: Option<usize>,
    run_calls: f64,
    habit_days: u32,
) -> Option<Habit> {
    if habit_days == 0 {
        return None;
    }
    let is_run = |c: u64| c as f64 >= run_calls;
    // A cut day without a run in its seen part may have had one before the model's window:
    // it counts neither as a day without a run nor in the fit.
    let (seen, runs, unknown) = known_days(days, cut, run_calls);
    let daily = runs + u32::from(unknown) >= habit_days && runs > 0;
    let weekly = days[HABIT_LOOKBACK_DAYS - 1].is_some_and(is_run);
    if !(daily || weekly) {
        return None;
    }
    let model = if daily {
        CountModel::fit(WindowSums {
            calls: seen.iter().sum(),
            squares: seen.iter().map(|c| (*c as f64).powi(2)).sum(),
            minutes: seen.len() as i64,
        })
    } else {
        // One previous week: its run is the expectation, with Poisson's spread.
        let last_week = days[HABIT_LOOKBACK_DAYS - 1].unwrap_or(0);
        CountModel {
            mean: last_week as f64,
            size: None,
        }
    };
    Some(Habit {
        runs,
        days_seen: seen.len() as u32,
        weekly_only: !daily,
        model,
    })
}

/// What makes a run: the fewest calls, and the multiple of the seasonal expectation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunRule {
    pub min_calls: f64,
    pub min_rate_ratio: f64,
    /// Runs on this many days (of those in the fitted span) make a habit; 0: never.
    pub habit_days: u32,
    pub jitter: i64,
}

/// The runs of habits in a model window, for the seasonal fit to leave out
/// (`BaselineIndex::fit_without`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HabitualBlocks {
    /// Per seasonal bin, the habitual blocks of the whole days before the analysed day.
    pub before: [WindowSums; BINS],
    /// The first minutes of those blocks, ascending (for `clump::daily_peaks`).
    pub before_blocks: Vec<Minute>,
    /// The habitual blocks of the analysed day itself, ascending: (first minute, calls).
    pub today: Vec<(Minute, u64)>,
}

impl HabitualBlocks {
    /// What to leave out of a fit that ends at `at` (on the analysed day).
    pub fn until(&self, at: Minute) -> [WindowSums; BINS] {
        let mut removed = self.before;
        for &(m, c) in self.today.iter().take_while(|(m, _)| *m < at) {
            let r = &mut removed[bin_of(m)];
            r.calls += c;
            r.squares += (c as f64) * (c as f64);
            r.minutes += 1;
        }
        removed
    }
}

/// The blocks of `[from, day)` and of the analysed day `[day, day + 1 day)` that are runs of a
/// habit.
///
/// A block is a run when it holds at least `min_calls` and `min_rate_ratio` times its season's
/// rate (fitted on `[from, day)`), as a window must to open an episode; it is a habit's run
/// when, counting itself, at least `habit_days` days held a run in a block starting within
/// `jitter` minutes of the same time of day, looking only at the days of `[from, day)`. Such
/// blocks are what the habit explains (a nightly batch, an hourly clean-up): left in, they make
/// the whole series look clumped, and a burst at any other time of day looks like one more
/// clump. Left out, the season's rate and dispersion describe the rest of the traffic, and the
/// habit (`previous_days`, `habit`) judges windows at the job's own time. Clumps that do not
/// recur at one time of day (scale-outs, retries, sessions) stay in the fit.
///
/// A block of the analysed day is judged by its own count and the days before it, so a fit
/// that ends at a minute of that day (`HabitualBlocks::until`) reads nothing after that
/// minute: a Start still depends only on data up to its confirmation, however runs are split.
pub fn habitual_blocks(
    index: &BaselineIndex,
    from: Minute,
    day: Minute,
    rule: RunRule,
) -> HabitualBlocks {
    let mut out = HabitualBlocks::default();
    if rule.habit_days == 0 || day <= from {
        return out;
    }
    let rates = index.fit(from, day).rates;
    let block = index.block();
    let last_start = Minute(day.0 - block);
    for (m, c) in index.blocks(from, day.plus(MINUTES_PER_DAY)) {
        let bin = bin_of(m);
        let need = rule.min_calls.max(rule.min_rate_ratio * rates[bin]);
        if (c as f64) < need {
            continue;
        }
        let mut days = 1;
        for d in -(HABIT_LOOKBACK_DAYS as i64)..=HABIT_LOOKBACK_DAYS as i64 {
            if d == 0 {
                continue;
            }
            let at = m.0 + d * MINUTES_PER_DAY;
            let lo = Minute(at - rule.jitter).max(from);
            let hi = Minute(at + rule.jitter).min(last_start);
            if lo <= hi && index.max_block_calls(lo, hi.plus(1)) as f64 >= need {
                days += 1;
            }
        }
        if days < rule.habit_days {
            continue;
        }
        if m < day {
            let r = &mut out.before[bin];
            r.calls += c;
            r.squares += (c as f64) * (c as f64);
            r.minutes += 1;
            out.before_blocks.push(m);
        } else {
            out.today.push((m, c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn habits_need_enough_runs_of_enough_calls() {
        let all = |c: u64| [Some(c); HABIT_LOOKBACK_DAYS];
        // (what the previous days held, fewest calls of a run, habit?)
        let cases: Vec<([Option<u64>; 7], f64, bool)> = vec![
            (all(60), 5.0, true),
            (all(4), 5.0, false),
            (all(1), 5.0, false),
            // Skipped two days: still 5 of 7.
            (
                [
                    Some(60),
                    Some(0),
                    Some(61),
                    Some(58),
                    Some(0),
                    Some(65),
                    Some(59),
                ],
                5.0,
                true,
            ),
            // Three skipped, and not last week either: no habit.
            (
                [
                    Some(60),
                    Some(0),
                    Some(61),
                    Some(0),
                    Some(0),
                    Some(65),
                    Some(0),
                ],
                5.0,
                false,
            ),
            // Only last week, at the same time of week: the weekly rule.
            (
                [
                    Some(0),
                    Some(0),
                    Some(0),
                    Some(0),
                    Some(0),
                    Some(0),
                    Some(40),
                ],
                5.0,
                true,
            ),
            // A short history: four days seen are not five runs.
            (
                [Some(60), Some(60), Some(60), Some(60), None, None, None],
                5.0,
                false,
            ),
        ];
        for (days, run_calls, want) in cases {
            assert_eq!(
                habit(&days, None, run_calls, 5).is_some(),
                want,
                "{days:?} run {run_calls}"
            );
        }
        assert_eq!(
            habit(&all(60), None, 5.0, 0),
            None,
            "habit_days 0 turns habits off"
        );
    }

    #[test]
    fn a_drifting_run_is_expected_only_at_a_size_it_had() {
        let days = [
            Some(30),
            Some(0),
            Some(41),
            Some(35),
            Some(38),
            Some(2),
            Some(33),
        ];
        // (observed, habit_days, run calls, expected?)
        let cases = [
            (30, 5, 5.0, true),
            (41, 5, 5.0, true),
            (42, 5, 5.0, false), // larger than every earlier run: judged by the season
            (30, 6, 5.0, false), // 5 runs are not 6
            (30, 5, 31.0, false), // runs need 31 calls: only 4 days had one
            (30, 0, 5.0, false), // habits off
        ];
        for (observed, habit_days, run_calls, want) in cases {
            assert_eq!(
                drifting_run(&days, None, run_calls, habit_days, observed),
                want,
                "{observed} calls, habit_days {habit_days}, runs of {run_calls}"
            );
        }
    }

    #[test]
    fn a_habitual_run_is_expected_and_ten_times_it_is_not() {
        let days = [
            Some(62),
            Some(70),
            Some(0),
            Some(66),
            Some(71),
            Some(60),
            Some(68),
        ];
        let h = habit(&days, None, 5.0, 5).unwrap();
        assert_eq!((h.runs, h.days_seen, h.weekly_only), (6, 7, false));
        assert!((h.model.mean - 56.8).abs() < 0.2, "{h:?}");
        assert!(h.model.upper_tail(71) > 0.01, "{h:?}");
        assert!(h.model.upper_tail(650) < 1e-9, "{h:?}");
    }

    #[test]
    fn a_run_cut_by_the_model_window_is_unknown_not_missing() {
        let day = Minute(20_000 * MINUTES_PER_DAY);
        let floor = Minute(day.0 - 7 * MINUTES_PER_DAY);
        // (first minute, jitter, cut day)
        let cases = [
            (day, 15, Some(6)),                 // 00:00: the oldest day's 23:45-00:15 is cut
            (day.plus(14), 15, Some(6)),        // 00:14: 23:59 is before the floor
            (day.plus(15), 15, None),           // 00:15: 00:00-00:30, all seen
            (day.plus(12 * 60), 15, None),      // noon
            (day.plus(23 * 60 + 50), 15, None), // 23:50 of the day: 7 days back is seen
        ];
        for (first, jitter, want) in cases {
            assert_eq!(cut_day(first, jitter, floor), want, "{first:?}");
        }
        // Four runs, two quiet days, and a cut oldest day whose seen part holds 3 calls of a
        // run that began before midnight: a habit, fitted on the six days known.
        let days = [
            Some(60),
            Some(0),
            Some(62),
            Some(0),
            Some(58),
            Some(61),
            Some(3),
        ];
        let h = habit(&days, Some(6), 10.0, 5).unwrap();
        assert_eq!((h.runs, h.days_seen, h.weekly_only), (4, 6, false));
        assert!((h.model.mean - 40.2).abs() < 0.1, "{h:?}");
        // Uncut, the same days are four runs of seven: no habit.
        assert_eq!(habit(&days, None, 10.0, 5), None);
        // A cut day is unknown only when its seen part holds no run; three runs stay short.
        let three = [
            Some(60),
            Some(0),
            Some(62),
            Some(0),
            Some(58),
            Some(0),
            Some(3),
        ];
        assert_eq!(habit(&three, Some(6), 10.0, 5), None);
        // The same rule for a job that wanders.
        assert!(drifting_run(&days, Some(6), 10.0, 5, 60));
        assert!(!drifting_run(&days, None, 10.0, 5, 60));
    }
}
