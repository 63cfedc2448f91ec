//! Telemetry in one place: tracing setup, the one event per skipped object, and the run
//! summary (printed as a table on stderr and, on request, written as JSON).

use crate::decode::RecordStats;
use crate::source::s3::RequestCounts;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs go to stderr; `RUST_LOG` overrides the level.
pub fn init_tracing(format: LogFormat, quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Whatever RUST_LOG asks for, the AWS SDK's request signing and wire logs stay quiet:
    // credentials and signed headers are never logged.
    for quiet in [
        "aws_sigv4=warn",
        "aws_smithy_runtime=info",
        "aws_smithy_http_client=info",
        "aws_config=info",
        "hyper=info",
        "hyper_util=info",
    ] {
        filter = filter.add_directive(quiet.parse().expect("a valid log directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// An object that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedObject {
    pub object: String,
    pub reason: String,
    pub detail: String,
}

/// Everything a run did, for people and for monitors.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub source: String,
    pub output: String,
    /// The analysed days, inclusive.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    pub partitions: u64,
    pub objects_listed: u64,
    pub objects_read: u64,
    pub bytes_read: u64,
    /// Log objects that could not be read, by reason.
    pub objects_skipped: BTreeMap<String, u64>,
    pub skipped: Vec<SkippedObject>,
    /// Files in log folders that are not log files (digests, stray files), by reason.
    pub files_ignored: BTreeMap<String, u64>,
    pub records: u64,
    pub write_events: u64,
    pub error_events: u64,
    pub duplicates_dropped: u64,
    /// Events of excluded callers, not counted.
    pub events_excluded: u64,
    pub records_out_of_scope: u64,
    pub insight_records_in_input: u64,
    pub bad_records: BTreeMap<String, u64>,
    pub series: u64,
    /// Episodes found, by Insight type.
    pub insights: BTreeMap<String, u64>,
    /// Episodes still open at the end of the analysed days (Start written, End pending).
    pub open_insights: u64,
    pub insight_records_written: u64,
    /// AWS-format JSON files written.
    pub files_written: u64,
    /// Parquet files written (one per account, region and day, like the JSON files).
    pub parquet_files_written: u64,
    /// Our own files (either format) for analysed days that no longer have Insights.
    pub stale_files_removed: u64,
    /// `ACCOUNT/REGION` partitions whose Insights were not written because an object of theirs
    /// could not be fetched; a later run redoes them.
    pub partitions_withheld: BTreeSet<String>,
    /// S3 requests, retries and failures, when S3 was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_requests: Option<RequestCounts>,
}

impl RunSummary {
    pub fn add_records(&mut self, stats: &RecordStats) {
        self.records += stats.records;
        self.write_events += stats.write_events;
        self.error_events += stats.error_events;
        self.records_out_of_scope += stats.out_of_scope;
        self.insight_records_in_input += stats.insight_records;
        for (reason, n) in &stats.bad_records {
            *self.bad_records.entry((*reason).to_owned()).or_default() += n;
        }
    }

    /// Record one unreadable object and log it once.
    pub fn skip(&mut self, object: &str, reason: &str, detail: &str) {
        tracing::warn!(object, reason, "skipped {object}: {detail}");
        *self.objects_skipped.entry(reason.to_owned()).or_default() += 1;
        self.skipped.push(SkippedObject {
            object: object.to_owned(),
            reason: reason.to_owned(),
            detail: detail.to_owned(),
        });
    }

    /// Withhold the Insights of a partition: one of its objects could not be fetched.
    pub fn withhold(&mut self, account: &str, region: &str) {
        let partition = format!("{account}/{region}");
        if !self.partitions_withheld.contains(&partition) {
            tracing::warn!(
                partition,
                "Insights of {partition} withheld: one of its objects could not be fetched"
            );
            self.partitions_withheld.insert(partition);
        }
    }

    pub fn is_withheld(&self, account: &str, region: &str) -> bool {
        self.partitions_withheld
            .contains(&format!("{account}/{region}"))
    }

    pub fn ignore(&mut self, object: &str, reason: &str) {
        tracing::debug!(object, reason, "ignored {object}: {reason}");
        *self.files_ignored.entry(reason.to_owned()).or_default() += 1;
    }

    pub fn skipped_total(&self) -> u64 {
        self.objects_skipped.values().sum()
    }

    pub fn bad_records_total(&self) -> u64 {
        self.bad_records.values().sum()
    }

    /// A plain table for a terminal or a cron mail.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let mut row = |name: &str, value: String| {
            let _ = writeln!(t, "  {name:<28} {value}");
        };
        let days = match (&self.first_day, &self.last_day) {
            (Some(a), Some(b)) => format!("{a} .. {b}"),
            _ => "none".into(),
        };
        row("days analysed", days);
        row("source", self.source.clone());
        row("output", self.output.clone());
        row("partitions", self.partitions.to_string());
        row("objects listed", self.objects_listed.to_string());
        row(
            "objects read",
            format!("{} ({} bytes)", self.objects_read, self.bytes_read),
        );
        row(
            "objects skipped",
            breakdown(self.skipped_total(), &self.objects_skipped),
        );
        row(
            "files ignored",
            breakdown(self.files_ignored.values().sum(), &self.files_ignored),
        );
        row("records", self.records.to_string());
        row("write management events", self.write_events.to_string());
        row("error events", self.error_events.to_string());
        row("duplicates dropped", self.duplicates_dropped.to_string());
        if self.events_excluded > 0 {
            row(
                "events of excluded callers",
                self.events_excluded.to_string(),
            );
        }
        row(
            "records out of scope",
            self.records_out_of_scope.to_string(),
        );
        row(
            "bad records",
            breakdown(self.bad_records_total(), &self.bad_records),
        );
        row("series analysed", self.series.to_string());
        row(
            "insights",
            breakdown(self.insights.values().sum(), &self.insights),
        );
        row("insights still open", self.open_insights.to_string());
        row(
            "insight records written",
            format!(
                "{} in {} JSON files",
                self.insight_records_written, self.files_written
            ),
        );
        row(
            "parquet files written",
            self.parquet_files_written.to_string(),
        );
        if !self.partitions_withheld.is_empty() {
            let list: Vec<&str> = self
                .partitions_withheld
                .iter()
                .map(String::as_str)
                .collect();
            row(
                "partitions withheld",
                format!(
                    "{} ({}): not written, run again",
                    list.len(),
                    list.join(", ")
                ),
            );
        }
        if let Some(s3) = &self.s3_requests {
            row(
                "s3 requests",
                format!("{} attempts, {} failed", s3.attempts_total(), s3.failed),
            );
            row("s3 retries", breakdown(s3.retries_total(), &s3.retries));
        }
        format!("trailsight run summary\n{t}")
    }
}

fn breakdown(total: u64, parts: &BTreeMap<String, u64>) -> String {
    if parts.is_empty() {
        return total.to_string();
    }
    let parts: Vec<String> = parts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{total} ({})", parts.join(", "))
}
