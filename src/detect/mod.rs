//! Per-minute counts -> Insight episodes: when the rate leaves its normal range, and when it
//! comes back. Pure: a series in, episodes out. `assemble` turns episodes into AWS records.
//!
//! # The rule
//!
//! For each minute `t` of the analysed days with `c` calls (or errors):
//!
//! 1. **Baseline.** The model is fitted on the minutes from 00:00 UTC seven days before `t`'s
//!    day up to `t` (a day-aligned window of 7 to 8 days, so a weekly job a few minutes late is
//!    still inside it), never before the trail's history starts. Nothing fires until the series'
//!    account and region have `warmup_minutes` of history (36 h, as CloudTrail Insights).
//! 2. **Start.** An episode opens at `t` when all of these hold:
//!    `P(X >= c) <= start_probability` under the fitted count model (see `model`);
//!    `c >= min_start_count` (or `min_new_api_count` when the API had no call in the baseline);
//!    `c >= min_rate_ratio x` the expected rate.
//! 3. **Continue.** The baseline is frozen at the start. A later minute is *elevated* while
//!    `P(X >= c) <= continue_probability` under that frozen model.
//! 4. **End.** The episode ends after `quiet_minutes_to_end` consecutive minutes that are not
//!    elevated, at the minute after its last elevated minute, so bursts separated by shorter lulls
//!    are one episode. An episode is cut at `max_episode_minutes`; then the next minute is judged
//!    afresh. An episode still elevated near the end of the analysed days stays open (only its
//!    Start is written); a later run that sees its end writes the End.
//!
//! Defaults and what each trades are documented on `DetectorConfig`; `docs/detector.md` gives
//! the reasoning.

pub mod assemble;
pub mod model;

use crate::aggregate::Series;
use crate::model::{BASELINE_DAYS, BASELINE_MINUTES, MINUTES_PER_DAY, Minute, SeriesKey};
use model::{CountModel, WindowSums};

/// The detector's knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorConfig {
    /// Minutes of history an account and region needs before anything fires. Default 2160
    /// (36 h, CloudTrail Insights' own warm-up); lower finds more in young trails, with a less
    /// reliable baseline.
    pub warmup_minutes: i64,
    /// Tail probability at or below which a minute opens an episode. Default 1e-6: with 10080
    /// minutes a week, a perfectly modelled API fires by chance about once in 100 weeks.
    pub start_probability: f64,
    /// Tail probability at or below which a minute keeps an episode open. Default 0.01.
    pub continue_probability: f64,
    /// Fewest calls in the opening minute. Default 5: fewer is rarely worth a person's look.
    pub min_start_count: u32,
    /// Fewest calls in the opening minute for an API with no call in the baseline. Default 10:
    /// new APIs appear with every deployment; only a burst of them is news.
    pub min_new_api_count: u32,
    /// The opening minute must be at least this multiple of the expected rate. Default 3.
    pub min_rate_ratio: f64,
    /// Consecutive ordinary minutes that end an episode. Default 5.
    pub quiet_minutes_to_end: i64,
    /// Longest episode. Default 1440 (a day).
    pub max_episode_minutes: i64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            warmup_minutes: 36 * 60,
            start_probability: 1e-6,
            continue_probability: 0.01,
            min_start_count: 5,
            min_new_api_count: 10,
            min_rate_ratio: 3.0,
            quiet_minutes_to_end: 5,
            max_episode_minutes: MINUTES_PER_DAY,
        }
    }
}

/// The reported baseline: the 10080 minutes before the start (fewer when history is shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportedBaseline {
    pub calls: u64,
    pub minutes: i64,
}

/// Why an episode opened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub model: CountModel,
    /// `P(X >= first minute's count)` under the model.
    pub tail_probability: f64,
    /// The API had no call in the model's baseline window.
    pub new_api: bool,
}

/// One span of unusual activity on one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub key: SeriesKey,
    pub start: Minute,
    /// The minute after the last unusual minute; `None` while the episode is still open.
    pub end: Option<Minute>,
    pub baseline: ReportedBaseline,
    pub evidence: Evidence,
}

/// Prefix sums over a series' active minutes, for O(log n) window sums.
struct Prefix<'s> {
    minutes: &'s [Minute],
    calls: Vec<u64>,
    squares: Vec<f64>,
}

impl<'s> Prefix<'s> {
    fn new(series: &'s Series) -> Prefix<'s> {
        let mut calls = vec![0u64];
        let mut squares = vec![0f64];
        for cell in &series.cells {
            let c = u64::from(cell.count);
            calls.push(calls.last().unwrap_or(&0) + c);
            squares.push(squares.last().unwrap_or(&0.0) + (c * c) as f64);
        }
        Prefix {
            minutes: &series.minutes,
            calls,
            squares,
        }
    }

    /// Sums over minutes in `[from, to)`.
    fn sums(&self, from: Minute, to: Minute) -> WindowSums {
        let a = self.minutes.partition_point(|m| *m < from);
        let b = self.minutes.partition_point(|m| *m < to);
        WindowSums {
            calls: self.calls[b] - self.calls[a],
            squares: self.squares[b] - self.squares[a],
            minutes: (to.0 - from.0).max(0),
        }
    }
}

/// Find the episodes of one series that start in `[detect_from, detect_until)`.
pub fn detect_series(
    series: &Series,
    detect_from: Minute,
    detect_until: Minute,
    config: &DetectorConfig,
) -> Vec<Episode> {
    let prefix = Prefix::new(series);
    let mut episodes = Vec::new();
    let mut resume_at = detect_from;
    for (i, (&t, cell)) in series.minutes.iter().zip(&series.cells).enumerate() {
        if t < resume_at || t >= detect_until {
            continue;
        }
        if t.0 - series.history_from.0 < config.warmup_minutes {
            continue;
        }
        let model_from = Minute::start_of_day(t.day())
            .plus(-BASELINE_DAYS * MINUTES_PER_DAY)
            .max(series.history_from);
        let sums = prefix.sums(model_from, t);
        let model = CountModel::fit(sums);
        let Some(evidence) = opens(cell.count, sums.calls == 0, model, config) else {
            continue;
        };
        let end = find_end(series, i, model, detect_until, config);
        let reported_from = t.plus(-BASELINE_MINUTES).max(series.history_from);
        let reported = prefix.sums(reported_from, t);
        episodes.push(Episode {
            key: series.key.clone(),
            start: t,
            end,
            baseline: ReportedBaseline {
                calls: reported.calls,
                minutes: reported.minutes,
            },
            evidence,
        });
        match end {
            Some(end) => resume_at = end,
            None => break,
        }
    }
    episodes
}

/// Whether a minute with `count` calls opens an episode under `model`.
fn opens(
    count: u32,
    new_api: bool,
    model: CountModel,
    config: &DetectorConfig,
) -> Option<Evidence> {
    let min_count = if new_api {
        config.min_new_api_count
    } else {
        config.min_start_count
    };
    if count < min_count || f64::from(count) < config.min_rate_ratio * model.mean {
        return None;
    }
    let tail_probability = model.upper_tail(count);
    (tail_probability <= config.start_probability).then_some(Evidence {
        model,
        tail_probability,
        new_api,
    })
}

/// The end of the episode opened at the active minute `opened` (an index into the series):
/// the minute after the last elevated minute, once `quiet_minutes_to_end` ordinary minutes
/// follow it; `None` when the analysed minutes run out first.
fn find_end(
    series: &Series,
    opened: usize,
    model: CountModel,
    detect_until: Minute,
    config: &DetectorConfig,
) -> Option<Minute> {
    let start = series.minutes[opened];
    let cap = start.plus(config.max_episode_minutes);
    let mut last_elevated = start;
    for (&t, cell) in series.minutes.iter().zip(&series.cells).skip(opened + 1) {
        if t >= detect_until {
            break;
        }
        let ordinary_minutes_between = t.0 - last_elevated.0 - 1;
        if ordinary_minutes_between >= config.quiet_minutes_to_end {
            return Some(last_elevated.plus(1));
        }
        if model.upper_tail(cell.count) <= config.continue_probability {
            if t >= cap {
                return Some(cap);
            }
            last_elevated = t;
        }
    }
    let ordinary_minutes_after = detect_until.0 - last_elevated.0 - 1;
    (ordinary_minutes_after >= config.quiet_minutes_to_end).then(|| last_elevated.plus(1))
}

#[cfg(test)]
mod tests;
