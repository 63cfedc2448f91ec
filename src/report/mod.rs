//! `trailsight report`: the Insights of an output directory as one self-contained HTML page,
//! so a person sees each anomaly's chart and attributions without reading any JSON.
//!
//! ```text
//!  load ──► pair ──► [count from the logs] ──► chart ──► html
//!  Insight   Start+End   per-minute rate around   SVG      one file: inline CSS,
//!  files,    by shared   each episode (--source,  (plot-   SVG and a little JS,
//!  explan-   event ID    through source/decode)   ters)    no network
//!  ations
//! ```
//!
//! `load` reads the files back, `series` counts the rate again from the logs (the same rules as
//! a run), `chart` draws, `html` writes the page. Reading the logs again is the only concurrent
//! part and goes through `pipeline::reread`.

pub mod chart;
pub mod html;
pub mod load;
pub mod series;

use crate::decode::DecodeOptions;
use crate::model::explanation::Explanation;
use crate::model::insight::{Attribution, InsightRecord};
use crate::model::{
    CallRateScope, DayRange, EventCategory, EventSelection, InsightKind, Minute, SeriesKey, Window,
};
use crate::pipeline::reread::{self, Bounds};
use crate::source::Source;
use crate::source::layout::PartitionFilter;
use crate::telemetry::{self, SkippedObject};
use anyhow::Context;
use chrono::{Duration, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Hours charted before and after each episode by default.
pub const DEFAULT_CONTEXT_HOURS: u32 = 3;
/// At most this many hours of context.
pub const MAX_CONTEXT_HOURS: u32 = 7 * 24;
/// Episodes per page by default.
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// Everything `report` needs.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// The output directory of a run.
    pub insights: PathBuf,
    /// The logs, to chart the real per-minute rate.
    pub source: Option<Source>,
    pub html: PathBuf,
    /// Minutes charted before the Start and after the End.
    pub context_minutes: i64,
    pub page_size: usize,
    pub fetch_concurrency: usize,
    pub decode_threads: usize,
    pub max_object_bytes: u64,
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
            account: self.start.recipient_account_id.clone(),
            region: self.start.aws_region.clone(),
            event_source: d.event_source.clone(),
            event_name: d.event_name.clone(),
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

    pub fn baseline_average(&self) -> f64 {
        self.start
            .insight_details
            .insight_context
            .statistics
            .baseline
            .average
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
            None => self
                .start
                .insight_details
                .insight_context
                .statistics
                .insight_duration
                .max(1),
        }
    }

    /// The minutes charted: the context before the Start and after the End.
    pub fn chart_window(&self, context_minutes: i64) -> (Minute, Minute) {
        let last = self
            .end_minute
            .unwrap_or(self.start_minute.plus(self.duration_minutes().max(1)));
        (
            self.start_minute.plus(-context_minutes),
            last.plus(context_minutes),
        )
    }
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
    /// Records whose `eventTime` or `state` is not understood.
    pub bad_records: u64,
}

/// Pair Start and End records by `sharedEventID` and attach the explanations.
pub fn pair(records: Vec<InsightRecord>, explanations: Vec<Explanation>) -> Paired {
    let mut paired = Paired::default();
    let mut starts: BTreeMap<String, InsightRecord> = BTreeMap::new();
    let mut ends: BTreeMap<String, InsightRecord> = BTreeMap::new();
    for record in records {
        let slot = match record.insight_details.state.as_str() {
            "Start" => &mut starts,
            "End" => &mut ends,
            _ => {
                paired.bad_records += 1;
                continue;
            }
        };
        if parse_minute(&record.event_time).is_none() {
            paired.bad_records += 1;
        } else if slot.contains_key(&record.shared_event_id) {
            paired.duplicates += 1;
        } else {
            slot.insert(record.shared_event_id.clone(), record);
        }
    }
    let mut explanations: BTreeMap<String, Explanation> = explanations
        .into_iter()
        .map(|e| (e.shared_event_id.clone(), e))
        .collect();
    for (id, start) in starts {
        let end = ends.remove(&id);
        paired.episodes.push(Episode {
            start_minute: parse_minute(&start.event_time).unwrap_or(Minute(0)),
            end_minute: end.as_ref().and_then(|e| parse_minute(&e.event_time)),
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

/// What `report` did, printed on stderr.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportSummary {
    pub html: String,
    pub html_bytes: u64,
    pub insight_files: u64,
    pub explanation_files: u64,
    pub episodes: u64,
    pub open_episodes: u64,
    pub ends_without_start: u64,
    pub duplicates: u64,
    pub bad_records: u64,
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
                    "{} Ends without a Start, {} duplicates, {} unreadable",
                    self.ends_without_start, self.duplicates, self.bad_records
                ),
            );
        }
        row("skipped", self.skipped_total().to_string());
        row("time", format!("{:.1} s", self.seconds));
        t
    }
}

/// Read the Insights (and, with a source, the logs around them) and write the page.
pub async fn write_report(config: &ReportConfig) -> anyhow::Result<ReportSummary> {
    let started = Instant::now();
    let loaded = load::load_dir(&config.insights)?;
    let mut summary = ReportSummary {
        html: config.html.display().to_string(),
        insight_files: loaded.insight_files,
        explanation_files: loaded.explanation_files,
        skipped: loaded.skipped,
        ..ReportSummary::default()
    };
    if loaded.insight_files == 0 {
        tracing::warn!(
            "no Insight files under {} (expected AWSLogs/.../CloudTrail-Insight/...): the report is empty",
            config.insights.display()
        );
    }
    let paired = pair(loaded.records, loaded.explanations);
    summary.episodes = paired.episodes.len() as u64;
    summary.open_episodes = paired.episodes.iter().filter(|e| e.end.is_none()).count() as u64;
    summary.ends_without_start = paired.ends_without_start;
    summary.duplicates = paired.duplicates;
    summary.bad_records = paired.bad_records;
    let counts = match &config.source {
        Some(source) if !paired.episodes.is_empty() => {
            let counted = count_from_logs(config, source, &paired.episodes).await?;
            summary.log_objects_read = counted.objects_read;
            summary.skipped.extend(counted.skipped);
            Some(counted.counts)
        }
        _ => None,
    };
    telemetry::progress::doing("drawing");
    let page = html::Page {
        insights_dir: &config.insights.display().to_string(),
        source: config.source.as_ref().map(Source::describe),
        episodes: &paired.episodes,
        counts: counts.as_deref(),
        context_minutes: config.context_minutes,
        page_size: config.page_size,
    };
    let text = html::render(&page)?;
    write_file(&config.html, text.as_bytes())?;
    summary.html_bytes = text.len() as u64;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Write through a temporary name, so a reader never sees half a page.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)
        .and_then(|()| std::fs::rename(&temporary, path))
        .with_context(|| format!("--html {}: cannot write it", path.display()))
}

/// Per-minute counts for every episode's chart window.
struct Counted {
    counts: Vec<Vec<u64>>,
    objects_read: u64,
    skipped: Vec<SkippedObject>,
}

/// Read the day folders around every episode once, and count each episode's series.
async fn count_from_logs(
    config: &ReportConfig,
    source: &Source,
    episodes: &[Episode],
) -> anyhow::Result<Counted> {
    let requests: Vec<series::Request> = episodes
        .iter()
        .map(|e| {
            let (from, until) = e.chart_window(config.context_minutes);
            series::Request {
                key: e.key(),
                scope: e.call_rate_scope().unwrap_or_default(),
                from,
                until,
            }
        })
        .collect();
    let folders = day_folders(&requests);
    let filter = PartitionFilter {
        accounts: Some(folders.keys().map(|(a, _)| a.clone()).collect()),
        regions: Some(folders.keys().map(|(_, r)| r.clone()).collect()),
        shard: None,
    };
    let partitions = source
        .partitions(&filter)
        .await
        .context("--source: discovering accounts and regions")?;
    let mut objects = Vec::new();
    for p in &partitions {
        let Some(days) = folders.get(&(p.account.clone(), p.region.clone())) else {
            continue;
        };
        for day in days {
            let listing = source
                .objects(p, *day)
                .await
                .context("--source: listing log objects")?;
            objects.extend(listing.objects);
        }
    }
    let from = requests.iter().map(|r| r.from).min().unwrap_or(Minute(0));
    let until = requests.iter().map(|r| r.until).max().unwrap_or(Minute(0));
    let options = DecodeOptions {
        window: Window {
            history_from: from,
            detect_from: from,
            detect_until: until,
            folders: DayRange::new(from.day(), until.day() + Duration::days(1)),
        },
        filter,
        max_object_bytes: config.max_object_bytes,
        selection: EventSelection {
            management: true,
            data: requests
                .iter()
                .any(|r| r.key.category == EventCategory::Data),
            call_rate: if requests.iter().any(|r| {
                r.key.category == EventCategory::Management && r.scope == CallRateScope::All
            }) {
                CallRateScope::All
            } else {
                CallRateScope::Write
            },
        },
    };
    let bounds = Bounds {
        fetch_concurrency: config.fetch_concurrency,
        decode_threads: config.decode_threads,
    };
    let mut recount = series::Recount::new(requests);
    let (mut objects_read, mut skipped) = (0, Vec::new());
    reread::decode_objects(
        Arc::new(source.clone()),
        objects,
        options,
        bounds,
        |object, outcome| match outcome {
            Ok(decoded) => {
                objects_read += 1;
                recount.add(&decoded);
            }
            Err((reason, detail)) => {
                tracing::warn!(object = %object, reason, "skipped {object}: {detail}");
                skipped.push(SkippedObject {
                    object: object.display.clone(),
                    reason,
                    detail,
                });
            }
        },
    )
    .await;
    Ok(Counted {
        counts: recount.finish(),
        objects_read,
        skipped,
    })
}

/// The delivery-day folders to read for each (account, region): every day a window touches,
/// and the day after its last (a file is filed under its delivery time).
fn day_folders(requests: &[series::Request]) -> BTreeMap<(String, String), BTreeSet<NaiveDate>> {
    let mut folders: BTreeMap<(String, String), BTreeSet<NaiveDate>> = BTreeMap::new();
    for r in requests {
        let days = folders
            .entry((r.key.account.clone(), r.key.region.clone()))
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
        InsightRecord {
            event_version: EVENT_VERSION.into(),
            event_time: time.into(),
            aws_region: "us-east-1".into(),
            event_id: format!("{id}-{state}"),
            event_type: EVENT_TYPE.into(),
            recipient_account_id: "123456789012".into(),
            shared_event_id: id.into(),
            insight_details: InsightDetails {
                state: state.into(),
                event_source: "ec2.amazonaws.com".into(),
                event_name: "RunInstances".into(),
                insight_type: "ApiCallRateInsight".into(),
                error_code: None,
                source_event_category: None,
                insight_context: InsightContext {
                    statistics: Statistics {
                        baseline: Average { average: 0.1 },
                        insight: Average { average: 6.0 },
                        insight_duration: if state == "Start" { 1 } else { 3 },
                        baseline_duration: 10080,
                    },
                    attributions: vec![],
                },
            },
            event_category: EVENT_CATEGORY.into(),
        }
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
