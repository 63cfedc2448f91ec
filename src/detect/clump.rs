//! The detector's memory of *how large* an API's bursts get at any time of day: per previous
//! day, the most calls any window of a given length held, outside the runs of habits. A window
//! no larger than windows the baseline held on at least `clump_days` separate days is not
//! unusual, whatever the fitted count model says.
//!
//! The count model (`model`, `baseline`) has one negative-binomial size per series, fitted by
//! moments over the whole week. A series that is Poisson most of the time and clumps a few
//! times a day (log streams created by the instances of a scale-out, throttled retries on a
//! busy write API, a deploy's handful of function updates) gets a size near 1, whose tail falls
//! off geometrically, so its ordinary clumps look like one-in-a-million events: 20
//! `CreateLogStream` calls in 5 minutes at p = 1e-7 on a series whose seven baseline days held
//! 5-minute windows of 17, 20, 24, 19, 22, 11 and 4 calls. A count the last week reached on
//! several days is plainly not that rare; the model's tail is wrong there, not the week. So the
//! empirical tail is asked as well: how many of the last days held a window as large.
//!
//! - **A day's peak**, for a window length `w`: the most calls in any `w` consecutive minutes
//!   ending on that day (sliding, not aligned to blocks, so a clump is measured whole), leaving
//!   out every window that overlaps a habit's run (`habit::habitual_blocks`): a nightly job is
//!   expected at its time by the habit, and a burst of its size at another time of day must
//!   still be judged by the season.
//! - **Seen**: at least `clump_days` (2) of the previous days inside the model window had a
//!   peak at least as large as the window. Two days, not one: a single earlier burst of that
//!   size may itself have been the incident (an attack yesterday must not hide its repeat
//!   today), while a size reached on two separate days is a routine of the account. A window
//!   larger than every peak but one is still judged by the model.
//!
//! Only whole days before the analysed day are read (the model window's), so a Start still
//! depends only on data up to its confirmation. The peaks are computed once per window length
//! and analysed day, and only for a series with a window the model would open on.

use super::baseline::BaselineIndex;
use crate::model::{MINUTES_PER_DAY, Minute};

/// Days of peaks kept: the whole days of the model window.
pub const PEAK_DAYS: usize = crate::model::BASELINE_DAYS as usize;

/// Per previous day (index 0 = the day before), its peak; `None` before the history.
pub type Peaks = [Option<f64>; PEAK_DAYS];

/// For each whole day of `[from, day)` (index 0 = the day before `day`), the most calls above
/// the season's expectation (`expected(first, end)`: the expected calls of `[first, end)`) in a
/// window of `length` consecutive minutes ending on that day, from the per-minute `index`,
/// leaving out windows that overlap a block `[m, m + length)` for `m` in `habitual`
/// (ascending); `None` for a day before `from`.
pub fn daily_peaks(
    index: &BaselineIndex,
    from: Minute,
    day: Minute,
    length: i64,
    habitual: &[Minute],
    expected: impl Fn(Minute, Minute) -> f64,
) -> Peaks {
    let length = length.max(1);
    let mut peaks = [None; PEAK_DAYS];
    for (d, peak) in peaks.iter_mut().enumerate() {
        let start = day.plus(-(d as i64 + 1) * MINUTES_PER_DAY);
        if start >= from {
            *peak = Some(0.0);
        }
    }
    let active: Vec<(Minute, u64)> = index.blocks(from, day).collect();
    let (mut tail, mut calls) = (0, 0u64);
    for &(end, c) in &active {
        calls += c;
        while active[tail].0.0 <= end.0 - length {
            calls -= active[tail].1;
            tail += 1;
        }
        let first = end.0 - length + 1;
        // A habit's block [m, m + length) overlaps [first, end] when first - length < m <= end.
        let at = habitual.partition_point(|m| m.0 <= first - length);
        if habitual.get(at).is_some_and(|m| m.0 <= end.0) {
            continue;
        }
        let d = (day.0 - 1 - end.0).div_euclid(MINUTES_PER_DAY) as usize;
        if let Some(Some(peak)) = peaks.get_mut(d) {
            let excess = calls as f64 - expected(Minute(first), end.plus(1));
            *peak = f64::max(*peak, excess);
        }
    }
    peaks
}

/// How many of the days' `peaks` held at least `excess` calls above the season.
pub fn days_seen(peaks: &Peaks, excess: f64) -> u32 {
    peaks.iter().flatten().filter(|p| **p >= excess).count() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Series;
    use crate::model::parse_day;

    fn series(points: &[(i64, u32)]) -> Series<'static> {
        let day0 = Minute::start_of_day(parse_day("2019-11-04").unwrap());
        crate::detect::tests::series_from(day0, ("logs.amazonaws.com", "CreateLogStream"), points)
    }

    #[test]
    fn a_days_peak_is_its_largest_sliding_window_outside_habits() {
        const D: i64 = MINUTES_PER_DAY;
        // Day 0: a clump of 4+5+6 over 10:00-10:02 (one 5-minute window holds all 15, no
        // aligned block does). Day 1: single calls. Day 2: a clump of 9 at 23:59 and 00:00
        // of day 3 (the window ends on day 3) and a job's run of 30 at 02:00 of day 3.
        let points = [
            (600, 4),
            (601, 5),
            (602, 6),
            (D + 100, 1),
            (D + 700, 1),
            (3 * D - 1, 4),
            (3 * D, 5),
            (3 * D + 120, 30),
        ];
        let s = series(&points);
        let index = BaselineIndex::new(&s, 1);
        let from = s.history_from;
        let day = from.plus(4 * D);
        let habit = [from.plus(3 * D + 120)];
        let none = |_: Minute, _: Minute| 0.0;
        // A season of 0.2 calls a minute.
        let season = |a: Minute, b: Minute| 0.2 * (b.0 - a.0) as f64;
        let peaks = |length, habitual, per_minute: f64| {
            daily_peaks(
                &index,
                from,
                day,
                length,
                habitual,
                |a: Minute, b: Minute| {
                    if per_minute == 0.0 {
                        none(a, b)
                    } else {
                        season(a, b)
                    }
                },
            )
        };
        // (window length, habitual blocks, season's rate, peaks from the day before `day`
        // backwards)
        let cases: [(i64, &[Minute], f64, Peaks); 5] = [
            (
                5,
                &habit,
                0.0,
                [
                    Some(9.0),
                    Some(4.0),
                    Some(1.0),
                    Some(15.0),
                    None,
                    None,
                    None,
                ],
            ),
            (
                1,
                &habit,
                0.0,
                [Some(5.0), Some(4.0), Some(1.0), Some(6.0), None, None, None],
            ),
            (
                5,
                &[],
                0.0,
                [
                    Some(30.0),
                    Some(4.0),
                    Some(1.0),
                    Some(15.0),
                    None,
                    None,
                    None,
                ],
            ),
            (
                15,
                &habit,
                0.0,
                [
                    Some(9.0),
                    Some(4.0),
                    Some(1.0),
                    Some(15.0),
                    None,
                    None,
                    None,
                ],
            ),
            // Above a season of 0.2 calls a minute (1 call per 5 minutes).
            (
                5,
                &habit,
                0.2,
                [
                    Some(8.0),
                    Some(3.0),
                    Some(0.0),
                    Some(14.0),
                    None,
                    None,
                    None,
                ],
            ),
        ];
        for (length, habitual, rate, want) in cases {
            let got = peaks(length, habitual, rate);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    match (g, w) {
                        (Some(g), Some(w)) => (g - w).abs() < 1e-9,
                        (g, w) => g.is_none() && w.is_none(),
                    },
                    "{length}-minute windows, habits {habitual:?}, season {rate}: {got:?}"
                );
            }
        }
        let peaks = peaks(5, &habit, 0.0);
        // (calls above the season, days with a peak at least as large)
        for (excess, want) in [(1.0, 4), (5.0, 2), (9.0, 2), (10.0, 1), (16.0, 0)] {
            assert_eq!(days_seen(&peaks, excess), want, "{excess} calls");
        }
    }
}
