//! Per-minute counts -> Insight episodes: when the rate leaves its normal range, and when it
//! comes back. Pure: a series in, episodes out. `assemble` turns episodes into AWS records.
//!
//! # The rule
//!
//! 1. **Baseline.** For a candidate window starting at `s`, the count model (`model`) is fitted
//!    on the 7 days before it, day-aligned (from 00:00 UTC seven days before `s`'s day), with a
//!    rate per coarse season (`baseline`), never before the trail's history starts. Nothing fires
//!    until an account and region have `warmup_minutes` of history (36 h, as CloudTrail Insights).
//! 2. **Start.** At each active minute `t`, windows of `scan_windows` minutes ending at `t` are
//!    tested, shortest first. A window with `S` calls opens an episode when: `S >= min_start_count`
//!    (`min_new_api_count` for an API with no call in the baseline); `S >= min_rate_ratio` times
//!    the expected calls; and `P(X >= S) <= start_probability / windows` under the model of
//!    blocks of the window's length, fitted on the baseline aggregated into such blocks (so APIs
//!    that are used in bursts spread over a few minutes are judged against their own bursts).
//!    The episode starts at the window's first minute that is itself elevated (see 3).
//!    A window that crosses a seasonal boundary is expected the calls of the minutes it covers,
//!    each at its own season's rate. A window that passes is then asked about *habits*
//!    (`habit`): if the same time of day held a run on at least `habit_days` of the last 7
//!    days (within `habit_jitter_minutes`), or at the same time of week a week before, it must
//!    also clear `min_rate_ratio` and `start_probability` against what those days held, so an
//!    ordinary run of a recurring job is expected and a run ten times its size still fires.
//!    Last, a window whose calls above the season are no more than the largest window of its
//!    length held (outside the habits' runs) on at least `clump_days` previous days is one of
//!    the series' ordinary clumps and opens nothing (`clump`).
//! 3. **Continue.** The per-minute baseline is frozen at the start. A minute is *elevated* while
//!    `P(X >= c) <= continue_probability` under it.
//! 4. **End.** After `quiet_minutes_to_end` minutes in a row that are not elevated, at the minute
//!    after the last elevated minute, so bursts separated by shorter lulls are one episode. An
//!    episode is cut at `max_episode_minutes`. An episode still elevated near the end of the
//!    analysed minutes stays open: only its Start is written, and a later run writes the End.
//! 5. **Drops** (off by default). A steady API (expected at least `min_drop_rate` calls a minute)
//!    that falls silent opens an episode once the silence has probability at most
//!    `start_probability` and lasts `min_drop_minutes`; it ends when calls resume.
//! 6. **Exclusions.** Excluded APIs are not analysed; no episode starts inside an excluded time
//!    window. (Excluded identities are dropped before counting, in `aggregate`.)
//!
//! Defaults and what each trades are on `DetectorConfig`; `docs/detector.md` has the reasoning.
//!
//! # Cost
//!
//! Every series of a day is asked first whether any window could hold enough calls to open
//! anything (`may_open_spike`); most cannot, and cost one pass over their minutes. For the
//! rest, the per-minute index (`baseline::BaselineIndex`) counts calls; the index of a longer
//! window, and the squares and per-bin sums a model is fitted from, are made only when a window
//! first has enough calls to be fitted, and the windows that share a block share its fit. None
//! of this changes a result: the sums are the same sums, made later or once.

pub mod assemble;
pub mod baseline;
pub mod clump;
pub mod habit;
pub mod model;

use crate::aggregate::Series;
use crate::model::{BASELINE_DAYS, BASELINE_MINUTES, MINUTES_PER_DAY, Minute, SeriesKey};
use baseline::{BaselineIndex, Fit, bin_of};
use chrono::{Datelike, Weekday};
use habit::Habit;
use model::CountModel;
use std::cell::{OnceCell, RefCell};

/// The detector's knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Minutes of history an account and region needs before anything fires. Default 2160
    /// (36 h, CloudTrail Insights' own warm-up).
    pub warmup_minutes: i64,
    /// Tail probability at or below which a window opens an episode (split over the windows).
    /// Default 1e-6.
    pub start_probability: f64,
    /// Tail probability at or below which a minute keeps an episode open. Default 0.01.
    pub continue_probability: f64,
    /// Fewest calls in the opening window. Default 5.
    pub min_start_count: u32,
    /// Fewest calls in the opening window for an API with no call in the baseline. Default 10.
    pub min_new_api_count: u32,
    /// The opening window must hold at least this multiple of the expected calls. Default 3.
    pub min_rate_ratio: f64,
    /// Window lengths tested for a start, in minutes, shortest first. Default 1, 5, 15.
    pub scan_windows: Vec<i64>,
    /// Consecutive ordinary minutes that end an episode. Default 5.
    pub quiet_minutes_to_end: i64,
    /// Longest episode. Default 1440 (a day).
    pub max_episode_minutes: i64,
    /// Also report an API that falls silent. Default off.
    pub detect_drops: bool,
    /// Expected calls per minute below which silence is never news. Default 1.
    pub min_drop_rate: f64,
    /// Shortest silence reported. Default 10 minutes.
    pub min_drop_minutes: i64,
    /// A job that ran at about the same time on this many of the last 7 days is a habit: its
    /// ordinary runs are expected (`habit`). 0 turns habits off (daily and weekly). Default 5.
    pub habit_days: u32,
    /// How many minutes earlier or later than the same time of day a previous day's run may
    /// start and still count for a habit. Default 15.
    pub habit_jitter_minutes: i64,
    /// A window no larger than windows of its length that the baseline held (outside the
    /// habits' runs) on at least this many of the previous days is not unusual (`clump`). 0
    /// turns the rule off. Default 2.
    pub clump_days: u32,
    pub exclusions: Exclusions,
}

/// Default of [`DetectorConfig::habit_days`]: 5 of the last 7 days.
pub const DEFAULT_HABIT_DAYS: u32 = 5;
/// Default of [`DetectorConfig::habit_jitter_minutes`].
pub const DEFAULT_HABIT_JITTER_MINUTES: i64 = 15;
/// Default of [`DetectorConfig::clump_days`].
pub const DEFAULT_CLUMP_DAYS: u32 = 2;

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            warmup_minutes: 36 * 60,
            start_probability: 1e-6,
            continue_probability: 0.01,
            min_start_count: 5,
            min_new_api_count: 10,
            min_rate_ratio: 3.0,
            scan_windows: vec![1, 5, 15],
            quiet_minutes_to_end: 5,
            max_episode_minutes: MINUTES_PER_DAY,
            detect_drops: false,
            min_drop_rate: 1.0,
            min_drop_minutes: 10,
            habit_days: DEFAULT_HABIT_DAYS,
            habit_jitter_minutes: DEFAULT_HABIT_JITTER_MINUTES,
            clump_days: DEFAULT_CLUMP_DAYS,
            exclusions: Exclusions::default(),
        }
    }
}

/// Seasonal bins are 4 hours long: every scan window must tile them exactly.
const SEASON_MINUTES: i64 = 240;

impl DetectorConfig {
    /// Check the rules the detector relies on; the message names the knob.
    pub fn validate(&self) -> Result<(), String> {
        let probability = |name: &str, p: f64| {
            if p > 0.0 && p < 1.0 {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1, got {p}"))
            }
        };
        probability("start_probability", self.start_probability)?;
        probability("continue_probability", self.continue_probability)?;
        if self.scan_windows.is_empty()
            || self
                .scan_windows
                .iter()
                .any(|&w| !(1..=SEASON_MINUTES).contains(&w) || SEASON_MINUTES % w != 0)
        {
            return Err(format!(
                "scan_windows must be window lengths in minutes that divide {SEASON_MINUTES}, such as [1, 5, 15]"
            ));
        }
        if self.quiet_minutes_to_end < 1 || self.max_episode_minutes < 1 || self.warmup_minutes < 0
        {
            return Err(
                "quiet_minutes_to_end and max_episode_minutes must be at least 1, warmup_minutes at least 0".into(),
            );
        }
        if self.habit_days > 7 || !(0..=120).contains(&self.habit_jitter_minutes) {
            return Err(
                "habit_days must be 0 (off) to 7 (of the last 7 days), habit_jitter_minutes 0 to 120"
                    .into(),
            );
        }
        if self.clump_days > clump::PEAK_DAYS as u32 {
            return Err(format!(
                "clump_days must be 0 (off) to {} (of the last {} days), got {}",
                clump::PEAK_DAYS,
                clump::PEAK_DAYS,
                self.clump_days
            ));
        }
        if !(self.min_rate_ratio >= 0.0 && self.min_drop_rate >= 0.0) {
            return Err("min_rate_ratio and min_drop_rate must not be negative".into());
        }
        Ok(())
    }
}

/// What the detector ignores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exclusions {
    /// `(eventSource, eventName)`; `*` matches any.
    pub apis: Vec<(String, String)>,
    pub windows: Vec<TimeWindow>,
}

/// A span of time in which no episode may start.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeWindow {
    /// Every day (or only on `days`), from one UTC minute of the day to another (may wrap
    /// past midnight).
    Daily {
        days: Vec<Weekday>,
        from: i64,
        to: i64,
    },
    /// Once, `[from, to)`.
    Once { from: Minute, to: Minute },
}

impl TimeWindow {
    pub fn contains(&self, t: Minute) -> bool {
        match self {
            TimeWindow::Once { from, to } => *from <= t && t < *to,
            TimeWindow::Daily { days, from, to } => {
                let of_day = t.0.rem_euclid(MINUTES_PER_DAY);
                let (inside, day) = if from <= to {
                    (*from <= of_day && of_day < *to, t.day())
                } else if of_day >= *from {
                    (true, t.day())
                } else {
                    (of_day < *to, t.day().pred_opt().unwrap_or(t.day()))
                };
                inside && (days.is_empty() || days.contains(&day.weekday()))
            }
        }
    }
}

impl Exclusions {
    pub fn excludes_api(&self, key: &SeriesKey) -> bool {
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        self.apis
            .iter()
            .any(|(s, n)| matches(s, &key.event_source) && matches(n, &key.event_name))
    }

    pub fn excludes_time(&self, t: Minute) -> bool {
        self.windows.iter().any(|w| w.contains(t))
    }
}

/// The reported baseline: the 10080 minutes before the start (fewer when history is shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedBaseline {
    pub calls: u64,
    pub minutes: i64,
}

/// Which way the rate left its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Spike,
    Drop,
}

/// Why an episode opened: what was expected in the opening window and what came.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub direction: Direction,
    /// The model of one block of the opening window's length.
    pub model: CountModel,
    pub window_minutes: i64,
    pub observed: u64,
    pub expected: f64,
    /// `P(X >= observed)` (a spike) or `P(X = 0)` (a drop) under the model.
    pub tail_probability: f64,
    /// The API had no call in the baseline.
    pub new_api: bool,
    /// The seasonal bin the model used (of the opening window's last minute).
    pub bin: usize,
    /// The time-of-day habit the window was also judged against, if it had one; `model`,
    /// `expected` and `tail_probability` are then the habit's.
    pub habit: Option<Habit>,
}

/// One span of unusual activity on one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub key: SeriesKey,
    pub start: Minute,
    /// The Start record covers `[start, confirmed_at)`: the minutes that opened the episode.
    pub confirmed_at: Minute,
    /// The minute after the last unusual minute; `None` while the episode is still open.
    pub end: Option<Minute>,
    pub baseline: ReportedBaseline,
    pub evidence: Evidence,
}

/// The analysed minutes and the rules.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub detect_from: Minute,
    pub detect_until: Minute,
}

/// Find the episodes of one series that start in `[detect_from, detect_until)`.
pub fn detect_series(
    series: &Series,
    detect_from: Minute,
    detect_until: Minute,
    config: &DetectorConfig,
) -> Vec<Episode> {
    if config.exclusions.excludes_api(&series.key) {
        return Vec::new();
    }
    let span = Span {
        detect_from,
        detect_until,
    };
    if !config.detect_drops && !may_open_spike(series, span, config) {
        return Vec::new();
    }
    let detector = Detector::new(series, config);
    let mut episodes = detector.spikes(span);
    if config.detect_drops {
        episodes.extend(detector.drops(span));
        episodes.sort_by_key(|e| e.start);
    }
    episodes
}

/// Whether some active minute `t` of `span` has, in the widest scan window ending at `t`, as
/// many calls as the smallest opening count. Windows ending at `t` are nested and never reach
/// back further than the widest, so without such a minute no window opens an episode and the
/// baseline need not be fitted: most series of a day have no busy quarter-hour, and this is
/// what keeps their detection cheap.
fn may_open_spike(series: &Series, span: Span, config: &DetectorConfig) -> bool {
    let fewest = u64::from(config.min_start_count.min(config.min_new_api_count));
    let widest = config
        .scan_windows
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let (minutes, cells) = (&series.minutes[..], &series.cells[..]);
    let first = minutes.partition_point(|m| *m < span.detect_from);
    let mut oldest = minutes.partition_point(|m| m.0 <= span.detect_from.0 - widest);
    let mut calls: u64 = cells[oldest..first]
        .iter()
        .map(|c| u64::from(c.count))
        .sum();
    for (i, t) in minutes.iter().enumerate().skip(first) {
        if *t >= span.detect_until {
            break;
        }
        calls += u64::from(cells[i].count);
        while minutes[oldest].0 <= t.0 - widest {
            calls -= u64::from(cells[oldest].count);
            oldest += 1;
        }
        if calls >= fewest {
            return true;
        }
    }
    false
}

/// One series with its baseline indexes, one per window length.
struct Detector<'a> {
    series: &'a Series<'a>,
    config: &'a DetectorConfig,
    per_minute: BaselineIndex<'a>,
    /// The index of each scan window length, built the first time a window of that length has
    /// enough calls to be tested against its baseline (most windows of most series never do);
    /// the 1-minute window's is `per_minute`.
    per_window: Vec<(i64, OnceCell<BaselineIndex<'a>>)>,
    /// Per block length and model window start: the habits' runs the seasonal fit leaves
    /// out (`habit::habitual_blocks`), computed once per analysed day.
    habitual: RefCell<Vec<(i64, Minute, habit::HabitualBlocks)>>,
    /// Per window length and model window start: each previous day's largest window outside
    /// the habits' runs (`clump::daily_peaks`), computed once per analysed day.
    peaks: RefCell<Vec<(i64, Minute, clump::Peaks)>>,
    /// Per block length, the last fit (`fit`) and the block it was fitted for: the windows
    /// ending at consecutive active minutes share their block, and so their fit.
    last_fit: RefCell<Vec<(i64, Minute, Fit)>>,
}

impl<'a> Detector<'a> {
    fn new(series: &'a Series<'a>, config: &'a DetectorConfig) -> Detector<'a> {
        let per_window = config
            .scan_windows
            .iter()
            .filter(|w| **w >= 1)
            .map(|w| (*w, OnceCell::new()))
            .collect();
        Detector {
            series,
            config,
            per_minute: BaselineIndex::new(series, 1),
            per_window,
            habitual: RefCell::new(Vec::new()),
            peaks: RefCell::new(Vec::new()),
            last_fit: RefCell::new(Vec::new()),
        }
    }

    /// The index of the window length `w` (one of `per_window`'s cells).
    fn window_index<'s>(
        &'s self,
        w: i64,
        cell: &'s OnceCell<BaselineIndex<'a>>,
    ) -> &'s BaselineIndex<'a> {
        if w == 1 {
            return &self.per_minute;
        }
        cell.get_or_init(|| BaselineIndex::new(self.series, w))
    }

    /// The seasonal model of one block of `index` starting at `at`, fitted on the model
    /// window before it without the runs of habits found in the whole days of that window
    /// (so the same for every window of a day, and never reading past `at`).
    fn fit(&self, index: &BaselineIndex, at: Minute) -> Fit {
        let block = index.block();
        let cached = (self.last_fit.borrow().iter())
            .find(|(b, a, _)| (*b, *a) == (block, at))
            .map(|(_, _, fit)| *fit);
        if let Some(fit) = cached {
            return fit;
        }
        let removed = self.with_habitual(index, at, |blocks| blocks.until(at));
        let fit = index.fit_without(self.model_from(at), at, &removed);
        let mut last = self.last_fit.borrow_mut();
        match last.iter_mut().find(|(b, _, _)| *b == block) {
            Some(entry) => *entry = (block, at, fit),
            None => last.push((block, at, fit)),
        }
        fit
    }

    /// `f` of the habits' runs of `index`'s block length in the model window of the minute
    /// `at` (`habit::habitual_blocks`), computed once per block length and analysed day.
    fn with_habitual<R>(
        &self,
        index: &BaselineIndex,
        at: Minute,
        f: impl FnOnce(&habit::HabitualBlocks) -> R,
    ) -> R {
        let from = self.model_from(at);
        let key = (index.block(), from);
        if let Some((_, _, blocks)) = self
            .habitual
            .borrow()
            .iter()
            .find(|(w, f, _)| (*w, *f) == key)
        {
            return f(blocks);
        }
        let rule = habit::RunRule {
            min_calls: f64::from(self.config.min_start_count),
            min_rate_ratio: self.config.min_rate_ratio,
            habit_days: self.config.habit_days,
            jitter: self.config.habit_jitter_minutes,
        };
        let day = Minute::start_of_day(at.day());
        let blocks = habit::habitual_blocks(index, from, day, rule);
        let out = f(&blocks);
        self.habitual.borrow_mut().push((key.0, key.1, blocks));
        out
    }

    /// The first minute of the model's window for a window starting at `s`.
    fn model_from(&self, s: Minute) -> Minute {
        Minute::start_of_day(s.day())
            .plus(-BASELINE_DAYS * MINUTES_PER_DAY)
            .max(self.series.history_from)
    }

    fn warmed_up(&self, t: Minute) -> bool {
        t.0 - self.series.history_from.0 >= self.config.warmup_minutes
    }

    fn reported_baseline(&self, start: Minute) -> ReportedBaseline {
        let from = start.plus(-BASELINE_MINUTES).max(self.series.history_from);
        ReportedBaseline {
            calls: self.per_minute.calls(from, start),
            minutes: start.0 - from.0,
        }
    }

    fn spikes(&self, span: Span) -> Vec<Episode> {
        let mut episodes = Vec::new();
        let mut resume_at = span.detect_from;
        let mut last_end = Minute(i64::MIN);
        for (i, &t) in self.series.minutes.iter().enumerate() {
            if t < resume_at || t >= span.detect_until || !self.warmed_up(t) {
                continue;
            }
            let Some((start, evidence)) = self.opening(i, resume_at, last_end) else {
                continue;
            };
            let frozen = self.fit(&self.per_minute, start).model;
            let end = self.find_end(i, frozen, span.detect_until);
            episodes.push(Episode {
                key: self.series.key.clone(),
                start,
                confirmed_at: t.plus(1),
                end,
                baseline: self.reported_baseline(start),
                evidence,
            });
            match end {
                Some(end) => (resume_at, last_end) = (end, end),
                None => break,
            }
        }
        episodes
    }

    /// The shortest window ending at the active minute `t` (the series' `i`th) that opens an
    /// episode, with the episode's first minute. Windows never reach back past `resume_at`, and
    /// a window whose baseline (which ends at the block boundary before it) would miss minutes
    /// of the previous episode, ended at `last_end`, is not tested: those minutes must count as
    /// baseline.
    fn opening(&self, i: usize, resume_at: Minute, last_end: Minute) -> Option<(Minute, Evidence)> {
        let t = self.series.minutes[i];
        let tests = self.per_window.len().max(1) as f64;
        let fewest = self
            .config
            .min_start_count
            .min(self.config.min_new_api_count);
        for (w, cell) in &self.per_window {
            let first = Minute(t.0 - w + 1).max(resume_at);
            let block_start = Minute(first.0.div_euclid(*w) * w);
            if block_start < last_end {
                continue;
            }
            let observed = self.per_minute.calls_through(first, i);
            if observed < u64::from(fewest) {
                continue; // too few calls whatever the baseline: not worth fitting it
            }
            let index = self.window_index(*w, cell);
            let fit = self.fit(index, block_start);
            let new_api = fit.baseline_calls == 0;
            let min_count = if new_api {
                self.config.min_new_api_count
            } else {
                self.config.min_start_count
            };
            // Each minute at its own season's rate; the tail is that of one window of length
            // `w` ending at `t`, as the baseline's blocks are (the whole window even when its
            // start is clipped by `resume_at`).
            let expected = fit.expected(first, t.plus(1), *w);
            let model = CountModel {
                mean: fit.expected(Minute(t.0 - w + 1), t.plus(1), *w),
                size: fit.model.size,
            };
            let threshold = self.config.start_probability / tests;
            let count = u32::try_from(observed).unwrap_or(u32::MAX);
            if observed < u64::from(min_count)
                || (observed as f64) < self.config.min_rate_ratio * expected
            {
                continue;
            }
            let tail = model.upper_tail(count);
            if tail > threshold {
                continue;
            }
            let (model, expected, tail, habit) = match self.habit(first, t, expected) {
                None if self.drifting_run(first, t, expected, observed) => continue,
                None => (model, expected, tail, None),
                Some(habit) => {
                    let usual = habit.model.mean;
                    let tail = habit.model.upper_tail(count);
                    if (observed as f64) < self.config.min_rate_ratio * usual || tail > threshold {
                        continue;
                    }
                    (habit.model, usual, tail, Some(habit))
                }
            };
            if self.seen_on_enough_days(index, first, observed as f64 - expected) {
                continue;
            }
            let start = self.first_elevated(first, t);
            if self.config.exclusions.excludes_time(start) {
                return None;
            }
            return Some((
                start,
                Evidence {
                    direction: Direction::Spike,
                    model,
                    window_minutes: t.0 + 1 - first.0,
                    observed,
                    expected,
                    tail_probability: tail,
                    new_api,
                    bin: bin_of(t),
                    habit,
                },
            ));
        }
        None
    }

    /// Whether windows of `index`'s length with at least `excess` calls above the season were
    /// held, outside the habits' runs, on at least `clump_days` of the whole days of the model
    /// window of a window starting at `first` (`clump`): such a window is one of the series'
    /// ordinary clumps, however improbable the fitted model finds it.
    fn seen_on_enough_days(&self, index: &BaselineIndex, first: Minute, excess: f64) -> bool {
        if self.config.clump_days == 0 {
            return false;
        }
        let (w, from) = (index.block(), self.model_from(first));
        let day = Minute::start_of_day(first.day());
        let cached = self
            .peaks
            .borrow()
            .iter()
            .find(|(l, f, _)| (*l, *f) == (w, from))
            .map(|(_, _, p)| *p);
        let peaks = cached.unwrap_or_else(|| {
            // The season per minute, fitted on the same days without the habits' runs.
            let season = self.fit(&self.per_minute, day);
            let peaks = self.with_habitual(index, first, |blocks| {
                clump::daily_peaks(
                    &self.per_minute,
                    from,
                    day,
                    w,
                    &blocks.before_blocks,
                    |a, b| season.expected(a, b, 1),
                )
            });
            self.peaks.borrow_mut().push((w, from, peaks));
            peaks
        });
        clump::days_seen(&peaks, excess) >= self.config.clump_days
    }

    /// The habit of the window `[first, t]` whose seasonal expectation is `expected`: what the
    /// same time held on the previous days of the model's window.
    fn habit(&self, first: Minute, t: Minute, expected: f64) -> Option<Habit> {
        if self.config.habit_days == 0 {
            return None;
        }
        let jitter = self.config.habit_jitter_minutes;
        let floor = self.model_from(first);
        let days = habit::previous_days(
            &self.per_minute,
            first,
            t,
            jitter,
            self.longest_window(),
            self.run_per_minute(first, t, expected),
            floor,
        );
        let cut = habit::cut_day(first, jitter, floor);
        habit::habit(&days, cut, self.run_calls(expected), self.config.habit_days)
    }

    /// Whether the window `[first, t]` of `observed` calls is an ordinary run of a job that
    /// wanders beyond the jitter (`habit::drifting_run`).
    fn drifting_run(&self, first: Minute, t: Minute, expected: f64, observed: u64) -> bool {
        if self.config.habit_days == 0 {
            return false;
        }
        let jitter = habit::DRIFT_JITTERS * self.config.habit_jitter_minutes;
        let floor = self.model_from(first);
        let days = habit::previous_days(
            &self.per_minute,
            first,
            t,
            jitter,
            self.longest_window(),
            self.run_per_minute(first, t, expected),
            floor,
        );
        habit::drifting_run(
            &days,
            habit::cut_day(first, jitter, floor),
            self.run_calls(expected),
            self.config.habit_days,
            observed,
        )
    }

    /// The fewest calls of a run on a previous day, for a window whose seasonal expectation
    /// is `expected`: what the window needs to open an episode by count alone.
    fn run_calls(&self, expected: f64) -> f64 {
        f64::from(self.config.min_start_count).max(self.config.min_rate_ratio * expected)
    }

    /// The fewest calls a minute of a previous day's run: `min_rate_ratio` times the season's
    /// rate of the window `[first, t]` (whose expectation is `expected`), and never less than
    /// one, so a clump of calls no denser than the season is not a job's run.
    fn run_per_minute(&self, first: Minute, t: Minute, expected: f64) -> f64 {
        let minutes = (t.0 - first.0 + 1) as f64;
        (self.config.min_rate_ratio * expected / minutes).max(1.0)
    }

    /// The longest scan window: the longest run of one job a habit measures whole.
    fn longest_window(&self) -> i64 {
        self.config.scan_windows.iter().copied().max().unwrap_or(1)
    }

    /// The first minute of `[first, t]` whose own count is elevated; `t` if none is.
    fn first_elevated(&self, first: Minute, t: Minute) -> Minute {
        let fit = self.fit(&self.per_minute, first);
        let a = self.series.minutes.partition_point(|m| *m < first);
        self.series.minutes[a..]
            .iter()
            .zip(&self.series.cells[a..])
            .take_while(|(m, _)| **m <= t)
            .find(|(m, cell)| {
                let at_its_season = CountModel {
                    mean: fit.rates[bin_of(**m)],
                    size: fit.model.size,
                };
                at_its_season.upper_tail(cell.count) <= self.config.continue_probability
            })
            .map_or(t, |(m, _)| *m)
    }

    /// The end of the episode confirmed at the active minute `opened` (an index): the minute
    /// after the last elevated minute, once `quiet_minutes_to_end` ordinary minutes follow it;
    /// `None` when the analysed minutes run out first.
    fn find_end(&self, opened: usize, model: CountModel, detect_until: Minute) -> Option<Minute> {
        let start = self.series.minutes[opened];
        let cap = start.plus(self.config.max_episode_minutes);
        let mut last_elevated = start;
        let later = self
            .series
            .minutes
            .iter()
            .zip(self.series.cells.iter())
            .skip(opened + 1);
        for (&t, cell) in later {
            if t >= detect_until {
                break;
            }
            let ordinary_minutes_between = t.0 - last_elevated.0 - 1;
            if ordinary_minutes_between >= self.config.quiet_minutes_to_end {
                return Some(last_elevated.plus(1));
            }
            if model.upper_tail(cell.count) <= self.config.continue_probability {
                if t >= cap {
                    return Some(cap);
                }
                last_elevated = t;
            }
        }
        let ordinary_minutes_after = detect_until.0 - last_elevated.0 - 1;
        (ordinary_minutes_after >= self.config.quiet_minutes_to_end).then(|| last_elevated.plus(1))
    }

    /// Silences of a steady API: each run of minutes without a call in the analysed span.
    fn drops(&self, span: Span) -> Vec<Episode> {
        let minutes = &self.series.minutes;
        let mut episodes = Vec::new();
        let mut previous = minutes.partition_point(|m| *m < span.detect_from);
        let mut silent_from = if previous == 0 {
            span.detect_from
        } else {
            minutes[previous - 1].plus(1).max(span.detect_from)
        };
        loop {
            let resumed = minutes
                .get(previous)
                .copied()
                .filter(|m| *m < span.detect_until);
            let silent_until = resumed.unwrap_or(span.detect_until);
            if let Some(episode) = self.silence(silent_from, silent_until, resumed.is_some()) {
                episodes.push(episode);
            }
            match resumed {
                Some(m) => {
                    silent_from = m.plus(1);
                    previous += 1;
                }
                None => break,
            }
        }
        episodes
    }

    /// An episode for the silence `[from, until)` if it is long and improbable enough.
    fn silence(&self, from: Minute, until: Minute, resumed: bool) -> Option<Episode> {
        if until.0 - from.0 < self.config.min_drop_minutes || !self.warmed_up(from) {
            return None;
        }
        if self.config.exclusions.excludes_time(from) {
            return None;
        }
        let fit = self.fit(&self.per_minute, from);
        if fit.model.mean < self.config.min_drop_rate {
            return None;
        }
        let quiet_minute = 1.0 - fit.model.upper_tail(1);
        let needed = (self.config.start_probability.ln() / quiet_minute.ln()).ceil();
        let length = (needed.max(self.config.min_drop_minutes as f64)) as i64;
        if !(length.is_positive() && from.0 + length <= until.0) {
            return None;
        }
        Some(Episode {
            key: self.series.key.clone(),
            start: from,
            confirmed_at: from.plus(length),
            end: resumed.then_some(until),
            baseline: self.reported_baseline(from),
            evidence: Evidence {
                direction: Direction::Drop,
                model: fit.model,
                window_minutes: length,
                observed: 0,
                expected: fit.model.mean * length as f64,
                tail_probability: quiet_minute.powf(length as f64),
                new_api: false,
                bin: fit.bin,
                habit: None,
            },
        })
    }
}

#[cfg(test)]
mod tests;
