//! Telemetry in one place: tracing setup, the one event per skipped object (and per object with
//! bad records, per ignored file), progress on a terminal (`progress`), the run summary (printed
//! as a table on stderr and, on request, written as JSON; its fields are listed in the README).
//! The summary reports; it never decides: what a run withholds or redoes is the pipeline's own
//! state.

pub mod progress;
pub mod stderr;
pub mod waiting;

use crate::decode::RecordStats;
use crate::model::problem::{DayProblems, SkipReason};
pub use crate::model::problem::{IgnoredFile, ObjectBadRecords, SkippedObject};
use crate::sink::notify::{NewRecord, NotifyReport};
use crate::source::layout;
use crate::store::s3::RequestCounts;
use serde::{Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Crates whose log events stop at WARN whatever `RUST_LOG` says (matched as a prefix of the
/// event's target): the AWS SDK (`aws_sigv4` logs canonical requests and the signing key's
/// scope, `aws_config` the credentials a profile resolves to, `aws_smithy_*` requests and
/// endpoints) and the HTTP and TLS stack under it (headers, including `Authorization`).
pub const CAPPED_TARGETS: [&str; 6] = ["aws_", "hyper", "h2", "rustls", "tower", "http_body"];
/// Under the cap, these stop at ERROR: the credential providers warn with a provider's raw
/// error, which quotes what a `credential_process` printed (our own error says what failed).
pub const CREDENTIAL_TARGETS: [&str; 2] = ["aws_config", "aws_credential_types"];

/// Whether an event may be logged under the hard cap on `CAPPED_TARGETS`.
pub fn below_the_cap(meta: &tracing::Metadata<'_>) -> bool {
    let target = meta.target();
    let level = *meta.level();
    if CREDENTIAL_TARGETS.iter().any(|p| target.starts_with(p)) {
        return level <= tracing::Level::ERROR;
    }
    level <= tracing::Level::WARN || !CAPPED_TARGETS.iter().any(|p| target.starts_with(p))
}

/// The level of trailsight's own log lines: `-q` (warnings and errors), `-v` (debug), `-vv`
/// (trace); without either, `RUST_LOG` when set, else info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
    VeryVerbose,
}

impl Verbosity {
    /// From `--quiet` and the number of `-v`s.
    pub fn from_flags(quiet: bool, verbose: u8) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::VeryVerbose,
        }
    }

    /// The filter directive a flag asks for; `None` (no flag) leaves it to `RUST_LOG`.
    fn directive(self) -> Option<&'static str> {
        match self {
            Verbosity::Quiet => Some("warn"),
            Verbosity::Normal => None,
            Verbosity::Verbose => Some("debug"),
            Verbosity::VeryVerbose => Some("trace"),
        }
    }
}

/// Logs go to stderr; `-q`/`-v`/`-vv` set the level, else `RUST_LOG`, else info. Plain text is
/// coloured only on a terminal (`stderr::colour`). Two guards keep credentials out of every
/// line, whatever the level asks for: a filter layered after the level's (so no directive,
/// however specific, can lift it) holds the AWS SDK and the HTTP stack at WARN, and every line
/// passes through `redact_secrets` on its way to stderr.
pub fn init_tracing(format: LogFormat, verbosity: Verbosity) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, filter::FilterExt, filter::filter_fn};
    let filter = || {
        let level = match verbosity.directive() {
            Some(directive) => EnvFilter::new(directive),
            None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        };
        level.and(filter_fn(below_the_cap))
    };
    let layer = || {
        tracing_subscriber::fmt::layer()
            .with_writer(progress::StderrAroundProgress)
            .with_target(false)
    };
    let registry = tracing_subscriber::registry();
    let _ = match format {
        LogFormat::Text => registry
            .with(
                layer()
                    .with_ansi(stderr::colour_on_stderr())
                    .with_filter(filter()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(layer().with_ansi(false).json().with_filter(filter()))
            .try_init(),
    };
}

/// One partition's delivery gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryGap {
    pub account: String,
    pub region: String,
    pub day: String,
    /// The median of its objects per day folder over the days before that delivered any.
    pub expected: u64,
    pub seen: u64,
}

/// Exit code: the output was written, but some objects could not be read (named).
pub const EXIT_SKIPPED: u8 = 1;
/// Exit code: the run failed (arguments, source, output, `--strict`).
pub const EXIT_FAILED: u8 = 2;
/// Exit code: some partitions' Insights are withheld (their logs could not all be read); every
/// other partition was written, and a later run completes them.
pub const EXIT_WITHHELD: u8 = 3;
/// Exit code: a delivery gap: an analysed day for which no partition delivered any log object
/// (a trail that stopped logging, a broken bucket policy). The output was written.
pub const EXIT_DELIVERY_GAP: u8 = 4;

/// Exit code: a notification could not be delivered (named in the summary; the next run sends
/// it again). The output was written.
pub const EXIT_NOT_DELIVERED: u8 = 5;

/// How many objects the summary lists by name (`skipped`, `bad_record_objects`); the
/// bad-objects report lists them all.
pub const MAX_LISTED_OBJECTS: usize = 1000;

fn first_listed<S: Serializer, T: Serialize>(list: &[T], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().take(MAX_LISTED_OBJECTS))
}

/// Positions in the summary's lists of problem objects (see `RunSummary::marks`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListMarks {
    pub skipped: usize,
    pub bad_record_objects: usize,
    pub ignored: usize,
}

/// Everything a run did, for people and for monitors.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub source: String,
    pub output: String,
    /// Why the run failed (exit 2, or 128 + a signal), with what it had done by then; absent
    /// when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The analysed days, inclusive.
    pub first_day: Option<String>,
    pub last_day: Option<String>,
    /// Wall-clock seconds of the whole run, and of each stage (summed over the days).
    pub elapsed_seconds: f64,
    pub stage_seconds: StageSeconds,
    /// Peak resident memory of the process (`VmHWM`), in bytes; `null` where the system does
    /// not say (not Linux).
    pub peak_memory_bytes: Option<u64>,
    pub partitions: u64,
    /// With `--shard`: this shard and how many partitions each shard got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<ShardCounts>,
    pub objects_listed: u64,
    pub objects_read: u64,
    pub bytes_read: u64,
    /// Log objects that could not be read, by reason.
    pub objects_skipped: BTreeMap<String, u64>,
    /// Each of them, in reading order (the first `MAX_LISTED_OBJECTS` in the JSON).
    #[serde(serialize_with = "first_listed")]
    pub skipped: Vec<SkippedObject>,
    /// Files in log folders that are not log files (digests, stray files), by reason.
    pub files_ignored: BTreeMap<String, u64>,
    /// Each of them (in the bad-objects report, not in the summary).
    #[serde(skip)]
    pub ignored: Vec<IgnoredFile>,
    /// Objects read that held at least one bad record.
    pub objects_with_bad_records: u64,
    /// Each of them with its counts by reason, in reading order (the first `MAX_LISTED_OBJECTS`
    /// in the JSON).
    #[serde(serialize_with = "first_listed")]
    pub bad_record_objects: Vec<ObjectBadRecords>,
    /// The bad-objects reports this run wrote (one per analysed day with something to report).
    pub bad_objects_reports: Vec<String>,
    pub records: u64,
    /// Write management events (call rate).
    pub write_events: u64,
    /// Management events with an error code (error rate).
    pub error_events: u64,
    /// Read-only management events counted toward call rate (`--call-rate-events all`).
    pub read_events: u64,
    /// Data events analysed (`--event-categories data`): call rate, read and write.
    pub data_events: u64,
    /// Data events with an error code (error rate).
    pub data_error_events: u64,
    pub duplicates_dropped: u64,
    /// Events whose `eventID` had already been counted for an event with another time or API:
    /// not dropped as copies (both count), and named in a warning per object.
    pub event_id_conflicts: u64,
    /// Events of excluded callers, not counted.
    pub events_excluded: u64,
    pub records_out_of_scope: u64,
    pub insight_records_in_input: u64,
    /// Escapes of lone UTF-16 surrogates in the logs' JSON, read as U+FFFD (JSON parsers
    /// refuse them; each object holding one is named in a warning).
    pub lone_surrogates_replaced: u64,
    pub bad_records: BTreeMap<String, u64>,
    pub series: u64,
    /// Episodes found, by Insight type; those on data events under `TYPE (data events)`.
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
    /// `ACCOUNT/REGION` partitions whose Insights were not written because one of their objects
    /// could not be fetched or one of their day folders listed; a later run redoes them.
    pub partitions_withheld: BTreeSet<String>,
    /// Analysed days (of a nightly run) for which no partition delivered any log object in the
    /// day's folder: a delivery gap (exit 4).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub days_without_logs: Vec<String>,
    /// Partitions that went quiet: they delivered log objects on most of the 7 days before an
    /// analysed day and none (or under a tenth of their usual count) that day (exit 4).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delivery_gaps: Vec<DeliveryGap>,
    /// S3 requests, retries and failures, when S3 was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_requests: Option<RequestCounts>,
    /// Insight records new to the output in this run (each record is new once, whether or not
    /// notifications are configured), in the order they were found.
    pub new_insight_records: Vec<NewRecord>,
    /// What was published, and what failed (kept for the next run; the run exits 1).
    pub notifications: NotifyReport,
}

/// How the partitions found were spread over the shards (`--shard I/N`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ShardCounts {
    /// This run's shard, `I/N`.
    pub shard: String,
    /// Partitions (after the account and region filters) of shard 0, 1, ... N-1.
    pub partitions_per_shard: Vec<u64>,
}

/// Where a run spends its time. Fetching and decoding overlap, so they are one stage. The
/// stages add up to the run's `elapsed_seconds`: what no stage timed is `other`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageSeconds {
    /// Discovering accounts and regions, listing day folders.
    pub list: f64,
    /// Fetching, gunzipping, parsing and counting objects.
    pub read_decode: f64,
    /// Ordering the day's series for detection (`Aggregator::series_view`), and forgetting the
    /// minutes and event IDs the next day no longer needs (`prune_before`, `forget_ids_before`).
    pub series: f64,
    pub detect: f64,
    /// Writing Insights, explanations, reports and notifications.
    pub write: f64,
    /// Reading and decoding the saved state (with its lock).
    pub state_load: f64,
    /// Encoding and writing the state.
    pub state_save: f64,
    /// Everything else: start-up, configuration, the summary.
    pub other: f64,
}

impl StageSeconds {
    /// The timed stages, without `other`.
    fn timed_total(&self) -> f64 {
        self.list
            + self.read_decode
            + self.series
            + self.detect
            + self.write
            + self.state_load
            + self.state_save
    }
}

/// A stage of a run, for `RunSummary::timed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    List,
    ReadDecode,
    Series,
    Detect,
    Write,
    StateLoad,
    StateSave,
}

impl RunSummary {
    /// Add the time since `since` to a stage.
    pub fn timed(&mut self, stage: Stage, since: Instant) {
        let seconds = since.elapsed().as_secs_f64();
        let s = &mut self.stage_seconds;
        let slot = match stage {
            Stage::List => &mut s.list,
            Stage::ReadDecode => &mut s.read_decode,
            Stage::Series => &mut s.series,
            Stage::Detect => &mut s.detect,
            Stage::Write => &mut s.write,
            Stage::StateLoad => &mut s.state_load,
            Stage::StateSave => &mut s.state_save,
        };
        *slot = round_millis(*slot + seconds);
    }

    /// Close the books at the end of a run: total time since `started`, and peak memory.
    pub fn finish(&mut self, started: Instant) {
        self.elapsed_seconds = round_millis(started.elapsed().as_secs_f64());
        let untimed = self.elapsed_seconds - self.stage_seconds.timed_total();
        self.stage_seconds.other = round_millis(untimed.max(0.0));
        self.peak_memory_bytes = peak_memory_bytes();
    }

    pub fn add_records(&mut self, stats: &RecordStats) {
        self.records += stats.records;
        self.write_events += stats.write_events;
        self.error_events += stats.error_events;
        self.read_events += stats.read_events;
        self.data_events += stats.data_events;
        self.data_error_events += stats.data_error_events;
        self.records_out_of_scope += stats.out_of_scope;
        self.insight_records_in_input += stats.insight_records;
        for (reason, n) in &stats.bad_records {
            *self.bad_records.entry((*reason).to_owned()).or_default() += n;
        }
    }

    /// Where the lists of problem objects stand now: what a day's step adds comes after it.
    pub fn marks(&self) -> ListMarks {
        ListMarks {
            skipped: self.skipped.len(),
            bad_record_objects: self.bad_record_objects.len(),
            ignored: self.ignored.len(),
        }
    }

    /// The problem objects listed since `marks` (a day's step), for its bad-objects report.
    pub fn problems_since(&self, marks: ListMarks) -> DayProblems<'_> {
        let tail = |len: usize, mark: usize| mark.min(len)..len;
        DayProblems {
            skipped: &self.skipped[tail(self.skipped.len(), marks.skipped)],
            bad_records: &self.bad_record_objects
                [tail(self.bad_record_objects.len(), marks.bad_record_objects)],
            ignored: &self.ignored[tail(self.ignored.len(), marks.ignored)],
        }
    }

    /// Forget listed problem objects beyond what the summary shows, once a day's bad-objects
    /// report holds them, so a long backfill's memory does not grow with them.
    pub fn forget_reported(&mut self) {
        self.skipped.truncate(MAX_LISTED_OBJECTS);
        self.bad_record_objects.truncate(MAX_LISTED_OBJECTS);
        self.ignored.clear();
    }

    /// Add the counts of one object that was read; one warning names it (`object` spells its
    /// name: only then) if it held bad records.
    pub fn add_object_records(&mut self, object: impl FnOnce() -> String, stats: &RecordStats) {
        self.add_records(stats);
        if stats.bad_total() == 0 && stats.lone_surrogates_replaced == 0 {
            return;
        }
        let object = object();
        if stats.lone_surrogates_replaced > 0 {
            self.lone_surrogates_replaced += stats.lone_surrogates_replaced;
            tracing::warn!(
                object,
                escapes = stats.lone_surrogates_replaced,
                "{object} holds {} escapes of lone UTF-16 surrogates, which JSON parsers refuse: read as U+FFFD",
                stats.lone_surrogates_replaced
            );
        }
        if stats.bad_total() == 0 {
            return;
        }
        let bad_records: BTreeMap<String, u64> = stats
            .bad_records
            .iter()
            .map(|(reason, n)| ((*reason).to_owned(), *n))
            .collect();
        tracing::warn!(
            object,
            bad_records = stats.bad_total(),
            "{} of {} records in {object} could not be used: {}",
            stats.bad_total(),
            stats.records,
            breakdown_parts(&bad_records)
        );
        self.objects_with_bad_records += 1;
        self.bad_record_objects.push(ObjectBadRecords {
            object: object.to_owned(),
            records: stats.records,
            bad_records,
        });
    }

    /// Record one unreadable object and log it once. The detail is cleared of anything that
    /// looks like a credential or a request signature before it is logged or kept.
    pub fn skip(&mut self, object: &str, reason: SkipReason, detail: &str) {
        let detail = redact_secrets(detail);
        let reason = reason.as_str();
        tracing::warn!(object, reason, "skipped {object}: {detail}");
        *self.objects_skipped.entry(reason.to_owned()).or_default() += 1;
        self.skipped.push(SkippedObject {
            object: object.to_owned(),
            reason: reason.to_owned(),
            detail,
        });
    }

    /// Count the events of one object whose `eventID` had been counted for another event (other
    /// time or API), and name the object once; `example` is one such ID's bits.
    pub fn id_conflicts(
        &mut self,
        object: impl FnOnce() -> String,
        events: u64,
        example: Option<u128>,
    ) {
        if events == 0 {
            return;
        }
        let object = object();
        self.event_id_conflicts += events;
        let example = example
            .map(|id| format!(" (e.g. eventID {})", uuid::Uuid::from_u128(id)))
            .unwrap_or_default();
        tracing::warn!(
            object,
            events,
            "{events} events in {object} reuse the eventID of an earlier event with another time or API{example}: both are counted, not dropped as copies"
        );
    }

    /// Withhold the Insights of a partition: one of its objects could not be fetched, or one of
    /// its day folders could not be listed.
    pub fn withhold(&mut self, account: &str, region: &str) {
        let partition = format!("{account}/{region}");
        if !self.partitions_withheld.contains(&partition) {
            tracing::warn!(
                partition,
                "Insights of {partition} withheld: some of its logs could not be fetched or listed"
            );
            self.partitions_withheld.insert(partition);
        }
    }

    /// Record a file of a log folder that is not read. CloudTrail's own digest and Insights
    /// files are expected there now and then (an info line); anything else is a warning.
    pub fn ignore(&mut self, object: &str, reason: &str) {
        if layout::is_trail_companion(reason) {
            tracing::info!(object, reason, "ignored {object}: {reason}");
        } else {
            tracing::warn!(object, reason, "ignored {object}: {reason}");
        }
        *self.files_ignored.entry(reason.to_owned()).or_default() += 1;
        self.ignored.push(IgnoredFile {
            object: object.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// The exit code this run's outcome maps to (the README's table): 3 when partitions are
    /// withheld (their logs could not all be read; a later run completes them), else 5 when a
    /// notification could not be delivered, else 1 when objects were skipped, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.partitions_withheld.is_empty() {
            EXIT_WITHHELD
        } else if !self.days_without_logs.is_empty() || !self.delivery_gaps.is_empty() {
            EXIT_DELIVERY_GAP
        } else if !self.notifications.failed.is_empty() {
            EXIT_NOT_DELIVERED
        } else if self.skipped_total() > 0 {
            EXIT_SKIPPED
        } else {
            0
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.objects_skipped.values().sum()
    }

    /// Ignored files that are not CloudTrail's own digest or Insights files.
    pub fn unexpected_files_total(&self) -> u64 {
        self.files_ignored
            .iter()
            .filter(|(reason, _)| !layout::is_trail_companion(reason))
            .map(|(_, n)| n)
            .sum()
    }

    /// What makes a `--strict` run fail: a skipped object, a bad record, or an ignored file that
    /// is not a digest or Insights file. Records out of scope, duplicates and Insight records
    /// among the logs are ordinary and do not count.
    pub fn strict_problems(&self) -> Option<String> {
        let (skipped, bad, unexpected) = (
            self.skipped_total(),
            self.bad_records_total(),
            self.unexpected_files_total(),
        );
        (skipped + bad + unexpected > 0).then(|| {
            format!(
                "{skipped} objects skipped, {bad} bad records in {} objects, {unexpected} unexpected files in log folders",
                self.objects_with_bad_records
            )
        })
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
        let s = &self.stage_seconds;
        row(
            "time",
            format!(
                "{:.1} s (list {:.1}, read/decode {:.1}, series {:.1}, detect {:.1}, write {:.1}, \
                 state load {:.1}, state save {:.1}, other {:.1})",
                self.elapsed_seconds,
                s.list,
                s.read_decode,
                s.series,
                s.detect,
                s.write,
                s.state_load,
                s.state_save,
                s.other
            ),
        );
        if let Some(bytes) = self.peak_memory_bytes {
            row(
                "peak memory",
                format!("{:.1} MiB", bytes as f64 / 1048576.0),
            );
        }
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
        if self.read_events > 0 {
            row("read-only management events", self.read_events.to_string());
        }
        if self.data_events > 0 {
            row("data events", self.data_events.to_string());
            row("data error events", self.data_error_events.to_string());
        }
        row("duplicates dropped", self.duplicates_dropped.to_string());
        if self.event_id_conflicts > 0 {
            row(
                "eventID conflicts",
                format!(
                    "{} (an eventID reused with another time or API: both counted)",
                    self.event_id_conflicts
                ),
            );
        }
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
        let mut bad = breakdown(self.bad_records_total(), &self.bad_records);
        if self.objects_with_bad_records > 0 {
            let _ = write!(bad, " in {} objects", self.objects_with_bad_records);
        }
        row("bad records", bad);
        if self.lone_surrogates_replaced > 0 {
            row(
                "lone surrogates",
                format!(
                    "{} escapes read as U+FFFD (JSON parsers refuse them)",
                    self.lone_surrogates_replaced
                ),
            );
        }
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
        if let Some(last) = self.bad_objects_reports.last() {
            let more = self.bad_objects_reports.len() - 1;
            let text = match more {
                0 => last.clone(),
                _ => format!("{last} and {more} more"),
            };
            row("bad-objects report", text);
        }
        row(
            "new insight records",
            self.new_insight_records.len().to_string(),
        );
        if !self.notifications.channels.is_empty() || self.notifications.waiting > 0 {
            row("notifications", self.notifications.describe());
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
    format!("{total} ({})", breakdown_parts(parts))
}

fn breakdown_parts(parts: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = parts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    parts.join(", ")
}

/// Query parameters and header values that carry credentials or signatures.
const SECRET_MARKERS: [&str; 7] = [
    "X-Amz-Signature=",
    "X-Amz-Credential=",
    "X-Amz-Security-Token=",
    "AWSAccessKeyId=",
    "Signature=",
    "Credential=",
    "x-amz-security-token:",
];

/// `text` with credential-looking parts replaced by `[redacted]`: the values of signature and
/// credential query parameters (a pre-signed URL), AWS access key IDs (`AKIA...`, `ASIA...`),
/// and the password of a URL's user info (`http://user:PASSWORD@host`). Error messages should
/// never hold these; this is the last line of defence before a detail or a log line is written.
pub fn redact_secrets(text: &str) -> String {
    if !text.contains(['=', ':', 'A']) {
        return text.to_owned();
    }
    redact_url_passwords(&redact_markers(&cut_process_output(text)))
}

/// Where the AWS SDK quotes what a `credential_process` printed in its errors: the stderr of a
/// failing process, or the reason its stdout could not be parsed (which may quote it).
const PROCESS_OUTPUT_MARKERS: [&str; 3] = [
    "Stderr:",
    "could not parse response:",
    "could not decode output as UTF-8:",
];

/// `text` cut after the first place it quotes a credential process's output (to its end: the
/// output may span lines), with a note saying how to see it.
fn cut_process_output(text: &str) -> std::borrow::Cow<'_, str> {
    match PROCESS_OUTPUT_MARKERS
        .iter()
        .filter_map(|m| text.find(m).map(|at| at + m.len()))
        .min()
    {
        Some(at) => std::borrow::Cow::Owned(format!(
            "{} [not shown: run the profile's credential_process by hand to see its output]{}",
            &text[..at],
            if text.ends_with('\n') { "\n" } else { "" }
        )),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// The user info of every `scheme://user:password@` in `text` replaced by `[redacted]`.
pub fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let authority_end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(after.len());
        match after[..authority_end].rfind('@') {
            Some(user_end) => {
                out.push_str("[redacted]");
                rest = &after[user_end..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out
}

fn redact_markers(text: &str) -> String {
    let mut out = text.to_owned();
    for marker in SECRET_MARKERS {
        let mut from = 0;
        while let Some(at) = out[from..].find(marker).map(|i| i + from) {
            let start = at + marker.len();
            let end = out[start..]
                .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
                .map_or(out.len(), |i| i + start);
            out.replace_range(start..end, "[redacted]");
            from = start + "[redacted]".len();
        }
    }
    redact_access_key_ids(&out)
}

/// `AKIA`/`ASIA` followed by 16 upper-case letters or digits, as a whole word.
fn redact_access_key_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let starts_word = i == 0 || !word(bytes[i - 1]);
        if starts_word
            && (rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA"))
            && rest.len() >= 20
            && rest[4..20].iter().all(|&b| word(b))
            && rest.get(20).is_none_or(|&b| !word(b))
        {
            out.push_str("[redacted]");
            i += 20;
            continue;
        }
        let len = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + len]);
        i += len;
    }
    out
}

fn round_millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The process's peak resident memory, from `VmHWM` in `/proc/self/status` (Linux).
pub fn peak_memory_bytes() -> Option<u64> {
    parse_vm_hwm(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// `VmHWM:   123456 kB` -> bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_peak_memory_from_proc_status() {
        let cases = [
            (
                "Name:\ttrailsight\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\n",
                Some(2 << 20),
            ),
            ("VmHWM: 1 kB", Some(1024)),
            ("VmHWM: 12 MB", None),
            ("Name: x\n", None),
        ];
        for (status, want) in cases {
            assert_eq!(parse_vm_hwm(status), want, "{status:?}");
        }
        if cfg!(target_os = "linux") {
            assert!(peak_memory_bytes().is_some_and(|b| b > 0));
        }
    }

    #[test]
    fn redacts_signatures_and_access_keys() {
        let cases = [
            (
                "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F2019&X-Amz-Signature=abc123 failed",
                "GET https://b.s3.amazonaws.com/k?X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted] failed",
            ),
            (
                "key AKIAIOSFODNN7EXAMPLE and ASIAXXXXXXXXXXXXXXXX, not AKIAshort",
                "key [redacted] and [redacted], not AKIAshort",
            ),
            (
                "x-amz-security-token:FwoGZX \u{e9}",
                "x-amz-security-token:[redacted] \u{e9}",
            ),
            (
                "truncated gzip: the data ends",
                "truncated gzip: the data ends",
            ),
            (
                "exited with code 3. Stderr: secret\nmore (ProviderError { source: \"secret\" })",
                "exited with code 3. Stderr: [not shown: run the profile's credential_process by hand to see its output]",
            ),
            (
                "endpoint http://user:pa%40ss@127.0.0.1:9000/b and https://host/x?y=z@w",
                "endpoint http://[redacted]@127.0.0.1:9000/b and https://host/x?y=z@w",
            ),
            (
                "Authorization: AWS4-HMAC-SHA256 Credential=KEYID/20191107/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abcdef",
                "Authorization: AWS4-HMAC-SHA256 Credential=[redacted] SignedHeaders=host, Signature=[redacted]",
            ),
            ("NOTAKIAIOSFODNN7EXAMPLE", "NOTAKIAIOSFODNN7EXAMPLE"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_secrets(text), want, "{text}");
        }
    }

    #[test]
    fn strict_ignores_companions_and_names_objects_with_bad_records() {
        let mut summary = RunSummary::default();
        summary.ignore("a/1_CloudTrail-Digest_x.json.gz", layout::DIGEST_FILE);
        assert_eq!(summary.strict_problems(), None);
        let mut stats = RecordStats {
            records: 5,
            ..RecordStats::default()
        };
        summary.add_object_records(|| "a/clean.json.gz".to_owned(), &stats);
        assert!(summary.bad_record_objects.is_empty());
        stats.bad_records.insert("record has no eventTime", 2);
        summary.add_object_records(|| "a/bad.json.gz".to_owned(), &stats);
        assert_eq!(summary.objects_with_bad_records, 1);
        assert_eq!(summary.bad_record_objects[0].object, "a/bad.json.gz");
        assert_eq!(summary.bad_record_objects[0].records, 5);
        assert!(
            summary
                .strict_problems()
                .unwrap()
                .contains("2 bad records in 1 objects")
        );
        let mut summary = RunSummary::default();
        summary.ignore("a/notes.txt", "not a .json.gz or .json file");
        assert!(
            summary
                .strict_problems()
                .unwrap()
                .contains("1 unexpected files")
        );
    }

    #[test]
    fn the_summary_lists_a_bounded_number_of_objects() {
        let mut summary = RunSummary::default();
        for i in 0..MAX_LISTED_OBJECTS + 5 {
            summary.skip(&format!("o{i}"), SkipReason::NotGzip, "d");
        }
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            json["skipped"].as_array().unwrap().len(),
            MAX_LISTED_OBJECTS
        );
        assert_eq!(
            json["objects_skipped"]["not gzip"],
            MAX_LISTED_OBJECTS as u64 + 5
        );
        assert!(json.get("ignored").is_none());
    }

    #[test]
    fn stage_times_add_up_per_stage() {
        let mut summary = RunSummary::default();
        let then = Instant::now() - std::time::Duration::from_millis(1500);
        summary.timed(Stage::Detect, then);
        summary.timed(Stage::Detect, then);
        assert!(
            summary.stage_seconds.detect >= 3.0,
            "{:?}",
            summary.stage_seconds
        );
        assert_eq!(summary.stage_seconds.list, 0.0);
        summary.finish(then);
        assert!(
            summary.stage_seconds.other < 0.1,
            "{:?}",
            summary.stage_seconds
        );
        assert!(
            summary.to_table().contains("detect 3."),
            "{}",
            summary.to_table()
        );
    }
}
