//! `trailsight report`: the Insights of an output tree as one self-contained HTML page, so a
//! person sees each anomaly's chart and attributions without reading any JSON.
//!
//! ```text
//!  sink::read ──► pair ──► [count from the logs] ──► chart ──► html
//!  Insight        Start+End   per-minute rate around   SVG      one file: inline CSS,
//!  files,         by shared   each episode (--source,  (plot-   SVG and a little JS,
//!  explanations   event ID    read by the pipeline)    ters)    no network
//! ```
//!
//! Everything here is pure: `pair` assembles episodes, `activity` groups them, `series` counts
//! the rate again from decoded logs (the same rules as a run) over `count_windows`, `chart`
//! draws an Insight's chart and `activity_chart` an activity's, `html` writes the page. The pipeline
//! drives it (`pipeline::report`): it reads the output through `sink`, the logs through
//! `source`, and hands both to these stages.

pub mod activity;
pub mod activity_chart;
pub mod activity_data;
pub mod chart;
pub mod coverage;
pub mod html;
pub mod series;

use crate::model::explanation::Explanation;
use crate::model::insight::{Attribution, InsightRecord, Statistics};
use crate::model::problem::SkippedObject;
use crate::model::{CallRateScope, DayRange, EventCategory, InsightKind, Minute, SeriesKey};
use crate::source::Source;
use crate::store::Store;
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

/// Hours charted before and after each episode by default.
pub const DEFAULT_CONTEXT_HOURS: u32 = 3;
/// At most this many hours of context.
pub const MAX_CONTEXT_HOURS: u32 = 7 * 24;
/// Episodes per page by default.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// At most this many minutes of an episode are charted (and, with `--source`, counted again
/// from the logs): a week; a longer episode is charted from its Start, its End beyond the chart.
pub const MAX_CHARTED_EPISODE_MINUTES: i64 = 7 * 1440;

/// Everything `report` needs.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The output of a run (a directory or an S3 prefix).
    pub insights: Store,
    /// The logs, to chart the real per-minute rate.
    pub source: Option<Source>,
    pub html: PathBuf,
    /// Minutes charted before the Start and after the End.
    pub context_minutes: i64,
    pub page_size: usize,
    pub fetch_concurrency: usize,
    pub decode_threads: usize,
    pub max_object_bytes: u64,
    /// Compressed log bytes fetched and not yet decoded, at most.
    pub max_bytes_in_flight: u64,
}

/// One Insight episode: its Start, its End once it ended, and why it fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub start: InsightRecord,
    pub end: Option<InsightRecord>,
    pub explanation: Option<Explanation>,
    pub start_minute: Minute,
    /// The End's `eventTime`: the first minute after the episode.
    pub end_minute: Option<Minute>,
}

impl Episode {
    pub fn shared_event_id(&self) -> &str {
        &self.start.shared_event_id
    }

    pub fn key(&self) -> SeriesKey {
        let d = &self.start.insight_details;
        SeriesKey {
            account: self.start.recipient_account_id.as_str().into(),
            region: self.start.aws_region.as_str().into(),
            event_source: d.event_source.as_str().into(),
            event_name: d.event_name.as_str().into(),
            kind: match &d.error_code {
                Some(code) => InsightKind::ErrorRate {
                    error_code: code.clone(),
                },
                None => InsightKind::CallRate,
            },
            category: self.category(),
        }
    }

    /// The category of the events analysed (`sourceEventCategory`; management when absent).
    pub fn category(&self) -> EventCategory {
        crate::sink::parquet::category(&self.start)
    }

    /// Which calls a call rate counted (from the explanation: `write` when it does not say, as
    /// AWS; `all` for data); `None` for an error rate.
    pub fn call_rate_scope(&self) -> Option<CallRateScope> {
        match &self.explanation {
            Some(e) => e.scope(),
            None => crate::sink::parquet::call_rate_scope(&self.start, CallRateScope::Write),
        }
    }

    pub fn is_error_rate(&self) -> bool {
        self.start.insight_details.error_code.is_some()
    }

    /// The record describing the whole episode: the End, or the Start while open.
    pub fn summary_record(&self) -> &InsightRecord {
        self.end.as_ref().unwrap_or(&self.start)
    }

    /// The Start's statistics: the minutes that confirmed the episode, and its baseline.
    pub fn start_statistics(&self) -> &Statistics {
        &self.start.insight_details.insight_context.statistics
    }

    /// The statistics of the whole episode ([`Episode::summary_record`]'s).
    pub fn statistics(&self) -> &Statistics {
        &self
            .summary_record()
            .insight_details
            .insight_context
            .statistics
    }

    pub fn baseline_average(&self) -> f64 {
        self.start_statistics().baseline.average
    }

    pub fn attributions(&self) -> &[Attribution] {
        &self
            .summary_record()
            .insight_details
            .insight_context
            .attributions
    }

    /// Minutes the episode lasted: from Start to End, or (open) the minutes the Start covers.
    pub fn duration_minutes(&self) -> i64 {
        match self.end_minute {
            Some(end) => (end.0 - self.start_minute.0).max(1),
            None => self.start_statistics().insight_duration.max(1),
        }
    }

    /// The episode's own minutes `[start, end)`: to its End, or the minutes its Start covers
    /// while open, at most `MAX_CHARTED_EPISODE_MINUTES`.
    pub fn own_minutes(&self) -> (Minute, Minute) {
        let end = self
            .end_minute
            .unwrap_or(self.start_minute.plus(self.duration_minutes()))
            .min(self.start_minute.plus(MAX_CHARTED_EPISODE_MINUTES));
        (self.start_minute, end.max(self.start_minute.plus(1)))
    }

    /// The minutes charted: the context before the Start and after the End, the episode itself
    /// cut at `MAX_CHARTED_EPISODE_MINUTES`, so a window is at most that and twice
    /// `MAX_CONTEXT_HOURS` long whatever the records say.
    pub fn chart_window(&self, context_minutes: i64) -> (Minute, Minute) {
        let context_minutes = context_minutes.clamp(0, i64::from(MAX_CONTEXT_HOURS) * 60);
        let longest = self.start_minute.plus(MAX_CHARTED_EPISODE_MINUTES);
        let last = self
            .end_minute
            .unwrap_or(self.start_minute.plus(self.duration_minutes().max(1)))
            .min(longest);
        (
            self.start_minute.plus(-context_minutes),
            last.plus(context_minutes),
        )
    }
}

/// The minutes counted from the logs for each episode (same order), `[from, until)`: its own
/// chart window, widened to its activity's combined chart window when it shares an activity
/// with other Insights, so one count serves both charts.
pub fn count_windows(episodes: &[Episode], context_minutes: i64) -> Vec<(Minute, Minute)> {
    let mut windows: Vec<(Minute, Minute)> = episodes
        .iter()
        .map(|e| e.chart_window(context_minutes))
        .collect();
    for a in activity::group(episodes) {
        if a.members.len() < 2 {
            continue;
        }
        let (from, until) = a.chart_window(context_minutes);
        for &i in &a.members {
            let w = &mut windows[i];
            *w = (w.0.min(from), w.1.max(until));
        }
    }
    windows
}

/// The part `[from, until)` of per-minute `counts` that start at `counted_from` (empty where
/// they do not reach).
pub fn counts_within(
    counts: &[u64],
    counted_from: Minute,
    (from, until): (Minute, Minute),
) -> &[u64] {
    let index = |m: Minute| (m.0 - counted_from.0).clamp(0, counts.len() as i64) as usize;
    let lo = index(from);
    &counts[lo..index(until).max(lo)]
}

/// `YYYY-MM-DDTHH:MM:SSZ` -> its minute.
pub fn parse_minute(time: &str) -> Option<Minute> {
    let t = chrono::DateTime::parse_from_rfc3339(time).ok()?;
    Some(Minute::from_unix_seconds(t.timestamp()))
}

/// Episodes assembled from records, and what did not fit.
#[derive(Debug, Default)]
pub struct Paired {
    /// Newest first.
    pub episodes: Vec<Episode>,
    /// End records whose Start is not in the directory.
    pub ends_without_start: u64,
    /// Records seen twice (the same state of the same episode).
    pub duplicates: u64,
    /// Records not used: a value out of range (`validate`), or an End that is not after its
    /// Start; each named in `rejected`.
    pub bad_records: u64,
    pub rejected: Vec<SkippedObject>,
}

/// Pair Start and End records by `sharedEventID` and attach the explanations. Every record is
/// checked again (`crate::sink::validate::check_record`), so what the page computes is in range whoever
/// built the list; an End that is not after its Start (or too long after it) is not used, and
/// its episode is shown as still open.
pub fn pair(records: Vec<InsightRecord>, explanations: Vec<Explanation>) -> Paired {
    let mut paired = Paired::default();
    let mut starts: BTreeMap<String, (Minute, InsightRecord)> = BTreeMap::new();
    let mut ends: BTreeMap<String, (Minute, InsightRecord)> = BTreeMap::new();
    let reject =
        |paired: &mut Paired, record: &InsightRecord, why: crate::sink::validate::Invalid| {
            let object = format!(
                "the {} record of sharedEventID {:?}",
                record.insight_details.state, record.shared_event_id
            );
            tracing::warn!(
                object,
                reason = why.reason,
                "record not used: {object}: {}",
                why.detail
            );
            paired.bad_records += 1;
            paired.rejected.push(SkippedObject {
                object,
                reason: why.reason.to_owned(),
                detail: why.detail,
            });
        };
    for record in records {
        let minute = match crate::sink::validate::check_record(&record) {
            Ok(minute) => minute,
            Err(why) => {
                reject(&mut paired, &record, why);
                continue;
            }
        };
        let slot = if record.is_start() {
            &mut starts
        } else {
            &mut ends
        };
        if slot.contains_key(&record.shared_event_id) {
            paired.duplicates += 1;
        } else {
            slot.insert(record.shared_event_id.clone(), (minute, record));
        }
    }
    let mut explanations: BTreeMap<String, Explanation> = explanations
        .into_iter()
        .map(|e| (e.shared_event_id.clone(), e))
        .collect();
    for (id, (start_minute, start)) in starts {
        let end = match ends.remove(&id) {
            Some((end_minute, end)) => {
                match crate::sink::validate::check_episode(start_minute, end_minute) {
                    Ok(()) => Some((end_minute, end)),
                    Err(why) => {
                        reject(&mut paired, &end, why);
                        None
                    }
                }
            }
            None => None,
        };
        let (end_minute, end) = end.unzip();
        paired.episodes.push(Episode {
            start_minute,
            end_minute,
            explanation: explanations.remove(&id),
            start,
            end,
        });
    }
    paired.ends_without_start = ends.len() as u64;
    paired.episodes.sort_by(|a, b| {
        (b.start_minute, a.shared_event_id()).cmp(&(a.start_minute, b.shared_event_id()))
    });
    paired
}

/// What `report` did, printed on stderr (a table, or with `--log-format json` this object).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ReportSummary {
    pub html: String,
    pub html_bytes: u64,
    pub insight_files: u64,
    pub explanation_files: u64,
    pub episodes: u64,
    pub open_episodes: u64,
    pub ends_without_start: u64,
    pub duplicates: u64,
    /// Records not used (a value out of range, not an Insight record, an End before its
    /// Start), each named in `rejected_records`.
    pub bad_records: u64,
    pub rejected_records: Vec<SkippedObject>,
    /// Log objects read again to chart the per-minute rate (with `--source`).
    pub log_objects_read: u64,
    /// Insight files and log objects that could not be read.
    pub skipped: Vec<SkippedObject>,
    pub seconds: f64,
}

impl ReportSummary {
    pub fn skipped_total(&self) -> u64 {
        self.skipped.len() as u64
    }

    pub fn to_table(&self) -> String {
        let mut t = String::from("trailsight report\n");
        let mut row = |name: &str, value: String| {
            let _ = writeln!(t, "  {name:<28} {value}");
        };
        row(
            "html",
            format!("{} ({} KiB)", self.html, self.html_bytes.div_ceil(1024)),
        );
        row(
            "episodes",
            format!("{} ({} still open)", self.episodes, self.open_episodes),
        );
        row(
            "files read",
            format!(
                "{} Insight, {} explanations",
                self.insight_files, self.explanation_files
            ),
        );
        if self.log_objects_read > 0 {
            row("log objects read", self.log_objects_read.to_string());
        }
        if self.ends_without_start + self.duplicates + self.bad_records > 0 {
            row(
                "records not used",
                format!(
                    "{} Ends without a Start, {} duplicates, {} out of range or unreadable",
                    self.ends_without_start, self.duplicates, self.bad_records
                ),
            );
        }
        row("skipped", self.skipped_total().to_string());
        row("time", format!("{:.1} s", self.seconds));
        t
    }
}

/// The delivery-day folders to read for each (account, region): every day a window touches,
/// and the day after its last (a file is filed under its delivery time).
pub fn day_folders(
    requests: &[series::Request],
) -> BTreeMap<(String, String), BTreeSet<NaiveDate>> {
    let mut folders: BTreeMap<(String, String), BTreeSet<NaiveDate>> = BTreeMap::new();
    for r in requests {
        let days = folders
            .entry((r.key.account.to_string(), r.key.region.to_string()))
            .or_default();
        let last = r.until.plus(-1).day() + Duration::days(1);
        days.extend(DayRange::new(r.from.day(), last).days());
    }
    folders
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::insight::*;

    fn record(id: &str, state: &str, time: &str) -> InsightRecord {
        test_record(id, state, "us-east-1", "RunInstances", time)
    }

    fn key_of(start: InsightRecord) -> SeriesKey {
        let episode = Episode {
            start_minute: Minute(0),
            end_minute: None,
            explanation: None,
            end: None,
            start,
        };
        episode.key()
    }

    #[test]
    fn starts_and_ends_pair_by_shared_event_id() {
        let records = vec![
            record("a", "End", "2019-11-07T13:28:00Z"),
            record("a", "Start", "2019-11-07T13:25:00Z"),
            record("b", "Start", "2019-11-08T01:00:00Z"),
            record("b", "Start", "2019-11-08T01:00:00Z"),
            record("c", "End", "2019-11-06T00:00:00Z"),
            record("d", "Start", "yesterday"),
        ];
        let paired = pair(records, vec![]);
        let ids: Vec<&str> = paired
            .episodes
            .iter()
            .map(|e| e.shared_event_id())
            .collect();
        assert_eq!(ids, ["b", "a"], "newest first");
        let a = &paired.episodes[1];
        assert_eq!(a.end_minute, parse_minute("2019-11-07T13:28:00Z"));
        assert_eq!(a.duration_minutes(), 3);
        let (from, until) = a.chart_window(60);
        assert_eq!(from.to_rfc3339(), "2019-11-07T12:25:00Z");
        assert_eq!(until.to_rfc3339(), "2019-11-07T14:28:00Z");
        let b = &paired.episodes[0];
        assert!(b.end.is_none());
        assert_eq!(b.chart_window(60).1.to_rfc3339(), "2019-11-08T02:01:00Z");
        assert_eq!(
            (
                paired.ends_without_start,
                paired.duplicates,
                paired.bad_records
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn folders_cover_the_window_and_the_next_delivery_day() {
        let request = |from: &str, until: &str| series::Request {
            key: key_of(record("a", "Start", from)),
            scope: CallRateScope::Write,
            from: parse_minute(from).unwrap(),
            until: parse_minute(until).unwrap(),
        };
        let folders = day_folders(&[
            request("2019-11-07T10:25:00Z", "2019-11-07T16:26:00Z"),
            request("2019-11-05T22:00:00Z", "2019-11-06T00:00:00Z"),
        ]);
        let days: Vec<String> = folders
            .values()
            .flatten()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            days,
            ["2019-11-05", "2019-11-06", "2019-11-07", "2019-11-08"]
        );
    }
}
