//! The only place with threads: streams fan out over a fixed pool, labels are written last.
//!
//! Workers pull the next stream index from an atomic counter; each stream is independent and
//! writes its own files, so the output does not depend on which worker ran which stream.
//! Reports are gathered by stream index, keeping the summary and labels in a stable order.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::anomaly::Label;
use crate::catalogue::APIS;
use crate::clock;
use crate::config::{Config, Preset};
use crate::routine;
use crate::sink;
use crate::stream::{self, StreamReport, StreamSpec};

/// File name of the labels, at the root of the output (outside AWSLogs/).
pub const LABELS_FILE: &str = "anomalies.json";
/// `eval` only: every series (write calls of an API, or its calls failing with one error code)
/// with its events per UTC day, so a scorer can count the series present in any days.
pub const SERIES_FILE: &str = "series.json";
/// `eval` only: every run of a scheduled job (nightly, weekly, failing cron and the recurring
/// jobs of [`crate::routine`]), so a scorer can tell false Insights on recurring jobs apart.
pub const RECURRING_FILE: &str = "recurring.json";

/// Totals of a run.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub streams: usize,
    pub records: u64,
    pub duplicates: u64,
    pub errors: u64,
    pub writes: u64,
    pub log_files: u64,
    pub digest_files: u64,
    pub json_bytes: u64,
    pub gzip_bytes: u64,
    pub anomalies: usize,
}

impl Summary {
    /// Adds one stream's totals.
    pub fn add(&mut self, r: &StreamReport) {
        self.streams += 1;
        self.records += r.records;
        self.duplicates += r.duplicates;
        self.errors += r.errors;
        self.writes += r.writes;
        self.log_files += r.log_files;
        self.digest_files += r.digest_files;
        self.json_bytes += r.json_bytes;
        self.gzip_bytes += r.gzip_bytes;
    }
}

/// The labels document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Labels {
    generator: String,
    preset: &'static str,
    seed: u64,
    data_start: String,
    data_end: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    clean: bool,
    anomalies: Vec<Label>,
}

/// One entry of `series.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SeriesEntry<'a> {
    account: &'a str,
    region: &'a str,
    event_source: &'static str,
    event_name: &'static str,
    insight_type: &'static str,
    error_code: Option<&'a str>,
    /// Events per UTC day, `YYYY-MM-DD` -> count.
    days: BTreeMap<String, u64>,
}

/// Generates every stream of `config`, then writes `anomalies.json`.
pub fn run(config: &Config) -> Result<Summary> {
    if config.preset == Preset::EvalData {
        return crate::data::run(config);
    }
    let specs = stream_specs(config);
    let reports = run_streams(config, &specs)?;
    let mut summary = Summary::default();
    reports.iter().for_each(|r| summary.add(r));
    summary.anomalies = config.anomalies.len();
    write_labels(config, &specs, &reports)?;
    if config.preset.is_eval() {
        write_series(config, &specs, &reports)?;
        write_recurring(config, &specs)?;
    }
    Ok(summary)
}

fn stream_specs(config: &Config) -> Vec<StreamSpec<'_>> {
    let mut specs = Vec::new();
    for account in &config.accounts {
        for region in &config.regions {
            let anomalies = config
                .anomalies
                .iter()
                .filter(|a| a.account == account.id && &a.region == region)
                .collect();
            specs.push(StreamSpec {
                account,
                region,
                anomalies,
            });
        }
    }
    specs
}

fn run_streams(config: &Config, specs: &[StreamSpec]) -> Result<Vec<StreamReport>> {
    run_parallel(config.threads, specs.len(), |i| {
        let spec = &specs[i];
        stream::generate(config, spec).with_context(|| {
            format!(
                "generating account {} region {}",
                spec.account.id, spec.region
            )
        })
    })
}

/// Runs `job(0..n)` on up to `threads` workers; results in index order, the first error wins.
pub fn run_parallel<T: Send>(
    threads: usize,
    n: usize,
    job: impl Fn(usize) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.min(n).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let result = job(i);
                    results
                        .lock()
                        .expect("no worker panics while holding the lock")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("workers finished")
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}

fn write_labels(config: &Config, specs: &[StreamSpec], reports: &[StreamReport]) -> Result<()> {
    let mut anomalies = Vec::new();
    for anomaly in &config.anomalies {
        for (spec, report) in specs.iter().zip(reports) {
            if let Some(i) = spec.anomalies.iter().position(|a| a.id == anomaly.id) {
                anomalies.push(Label::new(
                    anomaly,
                    report.baseline[i],
                    report.baseline_time_of_day[i],
                    config.start,
                ));
            }
        }
    }
    let labels = Labels {
        generator: format!("trailsight-gen {}", env!("CARGO_PKG_VERSION")),
        preset: config.preset.name(),
        seed: config.seed,
        data_start: clock::minute_label(config.start),
        data_end: clock::minute_label(config.end),
        clean: config.clean,
        anomalies,
    };
    let mut bytes = serde_json::to_vec_pretty(&labels).context("serialising labels")?;
    bytes.push(b'\n');
    sink::write_object(&config.out, LABELS_FILE, &bytes)
}

fn write_series(config: &Config, specs: &[StreamSpec], reports: &[StreamReport]) -> Result<()> {
    let mut series = Vec::new();
    for (spec, report) in specs.iter().zip(reports) {
        for (key, days) in &report.series {
            series.push(SeriesEntry {
                account: &spec.account.id,
                region: spec.region,
                event_source: key.event_source,
                event_name: key.event_name,
                insight_type: if key.error_code.is_some() {
                    "ApiErrorRateInsight"
                } else {
                    "ApiCallRateInsight"
                },
                error_code: key.error_code.as_deref(),
                days: days
                    .iter()
                    .map(|(day, n)| (clock::minute_label(*day)[..10].to_string(), *n))
                    .collect(),
            });
        }
    }
    let mut bytes = serde_json::to_vec(&serde_json::json!({ "series": series }))
        .context("serialising series")?;
    bytes.push(b'\n');
    sink::write_object(&config.out, SERIES_FILE, &bytes)
}

/// One entry of `recurring.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunEntry<'a> {
    account: &'a str,
    region: &'a str,
    event_source: &'static str,
    event_name: &'static str,
    insight_type: &'static str,
    error_code: Option<String>,
    job: &'static str,
    schedule: &'static str,
    start: String,
    last_minute: String,
    calls: u32,
}

/// The runs of every stream's scheduled jobs (the routines are planned again: they depend only
/// on the seed, the account and the region).
fn write_recurring(config: &Config, specs: &[StreamSpec]) -> Result<()> {
    let mut runs = Vec::new();
    for spec in specs {
        let routines = routine::plan(config.seed, spec.account, spec.region, config.span());
        for run in routines.runs {
            let api = &APIS[run.api];
            runs.push(RunEntry {
                account: &spec.account.id,
                region: spec.region,
                event_source: api.source(),
                event_name: api.name,
                insight_type: if run.error_code.is_some() {
                    "ApiErrorRateInsight"
                } else {
                    "ApiCallRateInsight"
                },
                error_code: run.error_code,
                job: run.job,
                schedule: run.schedule,
                start: clock::minute_label(run.start),
                last_minute: clock::minute_label(run.last),
                calls: run.calls,
            });
        }
    }
    let mut bytes = serde_json::to_vec(&serde_json::json!({ "runs": runs }))
        .context("serialising recurring job runs")?;
    bytes.push(b'\n');
    sink::write_object(&config.out, RECURRING_FILE, &bytes)
}
