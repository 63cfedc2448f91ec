//! `--preset eval-data`: data-event traffic (S3 object calls, Lambda `Invoke`) with labelled
//! data-event anomalies, for the data-event part of the detector evaluation (issue 18;
//! `scripts/eval`, `docs/evaluation.md`).
//!
//! ```text
//! config ──> plan     nightly batch per stream, labelled anomalies (placed, counts drawn)
//!        ──> stream   minute by minute: background (traffic) + injected calls
//!                       record   data-event JSON (resources: object + bucket, or function)
//!                       delivery / sink, as the management streams
//!        ──> anomalies.json, series.json, recurring.json
//! ```
//!
//! # Background (per stream = account x region; the home region at full volume, others at half)
//!
//! Rates are gamma-mixed Poisson (shape 8: overdispersed like real traffic) around a UTC
//! day/night swing of +-60 % peaking at 15:00, except the log deliveries, which are plain
//! Poisson (a log writer is as steady as the traffic it logs is large):
//!
//! - a steady high-volume reader: `GetObject` on the data-lake bucket, 30/min at the mean;
//! - a nightly ETL batch in the same `GetObject` series at a fixed UTC minute per stream (20-30
//!   minutes at 15-25x the reader's mean, start 0-10 minutes late, 10 % of nights skipped),
//!   writing `PutObject` to the curated bucket at 3x the reader's mean while it runs;
//! - log delivery: ALB access logs `PutObject` 6/min, CloudFront standard logs 3/min, and a
//!   steady `AccessDenied` stream of 1/min (CloudFront delivering to a bucket whose policy lost
//!   the grant);
//! - per-request Lambda `Invoke` from API Gateway (6/min, day/night swing); a janitor's
//!   `DeleteObject` (one an hour);
//! - read-only management calls of a monitoring agent (`DescribeInstances` 1/min, `ListBuckets`
//!   0.05, `GetSecretValue` 0.5, KMS `Decrypt` 4), which only `--call-rate-events all` counts.
//!
//! # Labelled anomalies (one of each per stream, in the last 3 days, by a principal never seen)
//!
//! | scenario | what |
//! |---|---|
//! | `exfil` | `GetObject` on the data lake at R x the reader's rate, R log-uniform 10-100, 3-15 min |
//! | `mass-delete` | `DeleteObject` 30-300/min, 3-10 min |
//! | `reencrypt` | `PutObject` with the attacker's KMS key at R x the usual `PutObject` rate, R 10-50, 3-10 min |
//! | `invoke-storm` | Lambda `Invoke` at R x its rate, R 10-50, 3-20 min |
//! | `recon` | one monitoring read (`DescribeInstances`, `ListBuckets`, `GetSecretValue`, `Decrypt`) at R x its rate (at least 5/min), R 10-50, 3-10 min: a call-rate anomaly only under `--call-rate-events all` |
//! | `error-stream` | a new error stream: `GetObject` `AccessDenied` 3-10/min for 1-3 hours (one Insight, at its start) |
//!
//! Anomalies never start within 90 minutes of a batch run or of each other. The plan, the
//! batch nights and the injected calls draw from generators of their own, so `--clean` writes
//! record for record the same background without the anomalies.

pub mod plan;
pub mod record;
pub mod stream;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::catalogue::{APIS, find};
use crate::clock::{self, Minute};
use crate::config::Config;
use crate::run::{LABELS_FILE, RECURRING_FILE, SERIES_FILE, Summary, run_parallel};
use crate::sink;

pub use plan::{DataLabel, Plan, StreamPlan};

/// The preset's account (an account trail, one account in two regions).
pub const ACCOUNT: &str = "444455556666";
/// Days of data; the last [`ANALYSED_DAYS`] hold the anomalies, the rest is their baseline.
pub const DAYS: i64 = 10;
pub const ANALYSED_DAYS: i64 = 3;
/// Traffic weight of regions other than the account's home region.
pub const SECONDARY_WEIGHT: f64 = 0.5;

/// The reader's mean `GetObject` per minute (home region, volume 1).
pub const READER_PER_MIN: f64 = 30.0;
/// The batch's `PutObject` per minute, in units of the reader's mean.
pub const BATCH_PUT_RATIO: f64 = 3.0;
pub const ALB_LOGS_PER_MIN: f64 = 6.0;
pub const CLOUDFRONT_LOGS_PER_MIN: f64 = 3.0;
pub const DENIED_LOGS_PER_MIN: f64 = 1.0;
pub const INVOKE_PER_MIN: f64 = 6.0;
pub const JANITOR_PER_MIN: f64 = 1.0 / 60.0;
/// Gamma shape of the rate mixing (variance of the rate = mean^2 / shape).
pub const GAMMA_SHAPE: f64 = 8.0;
/// The monitoring agent's read-only management calls, per minute at the mean.
pub const RECON: &[(&str, &str, f64)] = &[
    ("ec2.amazonaws.com", "DescribeInstances", 1.0),
    ("s3.amazonaws.com", "ListBuckets", 0.05),
    ("secretsmanager.amazonaws.com", "GetSecretValue", 0.5),
    ("kms.amazonaws.com", "Decrypt", 4.0),
];

/// One API of the preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Api {
    GetObject,
    PutObject,
    DeleteObject,
    Invoke,
    /// A read-only management API of the catalogue (index into [`APIS`]).
    Management(usize),
}

impl Api {
    pub fn source(self) -> &'static str {
        match self {
            Api::GetObject | Api::PutObject | Api::DeleteObject => "s3.amazonaws.com",
            Api::Invoke => "lambda.amazonaws.com",
            Api::Management(i) => APIS[i].source(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Api::GetObject => "GetObject",
            Api::PutObject => "PutObject",
            Api::DeleteObject => "DeleteObject",
            Api::Invoke => "Invoke",
            Api::Management(i) => APIS[i].name,
        }
    }

    /// Data events (`managementEvent` false, `eventCategory` "Data").
    pub fn is_data(self) -> bool {
        !matches!(self, Api::Management(_))
    }

    pub fn read_only(self) -> bool {
        match self {
            Api::GetObject => true,
            Api::PutObject | Api::DeleteObject | Api::Invoke => false,
            Api::Management(i) => APIS[i].read_only,
        }
    }

    pub fn category(self) -> &'static str {
        if self.is_data() { "Data" } else { "Management" }
    }

    /// The monitoring reads of [`RECON`], with their mean rates.
    pub fn recon() -> Vec<(Api, f64)> {
        RECON
            .iter()
            .map(|(source, name, rate)| {
                let i = find(source, name).expect("recon APIs are in the catalogue");
                (Api::Management(i), *rate)
            })
            .collect()
    }
}

/// The UTC day/night swing: 0.4 at 03:00, 1.6 at 15:00.
pub fn diurnal(minute: Minute) -> f64 {
    let m = minute.rem_euclid(clock::MINUTES_PER_DAY) as f64;
    1.0 + 0.6 * ((m - 540.0) / 1440.0 * std::f64::consts::TAU).sin()
}

/// A series as the data-event evaluation counts it: every call of an API (error code None;
/// read and write, as `--event-categories management,data --call-rate-events all` counts them)
/// or its calls failing with one error code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    pub api: Api,
    pub error_code: Option<&'static str>,
}

/// Generates every stream, then writes the labels, the series and the batch runs.
pub fn run(config: &Config) -> Result<Summary> {
    let plan = Plan::new(config);
    let reports = run_parallel(config.threads, plan.streams.len(), |i| {
        let s = &plan.streams[i];
        stream::generate(config, s)
            .with_context(|| format!("generating account {} region {}", s.account, s.region))
    })?;
    let mut summary = Summary::default();
    for r in &reports {
        summary.add(&r.totals);
    }
    let labels: Vec<DataLabel> = if config.clean {
        Vec::new()
    } else {
        plan.streams
            .iter()
            .zip(&reports)
            .flat_map(|(s, r)| {
                s.anomalies
                    .iter()
                    .zip(&r.baselines)
                    .map(|(a, b)| a.label(s, *b, config.start))
            })
            .collect()
    };
    summary.anomalies = labels.len();
    write_json(config, LABELS_FILE, &labels_doc(config, labels), true)?;
    write_json(config, SERIES_FILE, &series_doc(&plan, &reports), false)?;
    write_json(config, RECURRING_FILE, &plan.recurring_doc(), false)?;
    Ok(summary)
}

/// The labels document: the management presets' plus `analyseFrom`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LabelsDoc {
    generator: String,
    preset: &'static str,
    seed: u64,
    data_start: String,
    data_end: String,
    /// The first analysed day: the anomalies lie in [analyseFrom, dataEnd).
    analyse_from: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    clean: bool,
    anomalies: Vec<DataLabel>,
}

fn labels_doc(config: &Config, anomalies: Vec<DataLabel>) -> LabelsDoc {
    LabelsDoc {
        generator: format!("trailsight-gen {}", env!("CARGO_PKG_VERSION")),
        preset: config.preset.name(),
        seed: config.seed,
        data_start: clock::minute_label(config.start),
        data_end: clock::minute_label(config.end),
        analyse_from: clock::minute_label(plan::analysed_from(config)),
        clean: config.clean,
        anomalies,
    }
}

fn series_doc(plan: &Plan, reports: &[stream::Report]) -> serde_json::Value {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Entry<'a> {
        account: &'a str,
        region: &'a str,
        event_source: &'static str,
        event_name: &'static str,
        event_category: &'static str,
        insight_type: &'static str,
        error_code: Option<&'static str>,
        days: BTreeMap<String, u64>,
    }
    let mut series = Vec::new();
    for (s, r) in plan.streams.iter().zip(reports) {
        for (key, days) in &r.series {
            series.push(Entry {
                account: &s.account,
                region: &s.region,
                event_source: key.api.source(),
                event_name: key.api.name(),
                event_category: key.api.category(),
                insight_type: if key.error_code.is_some() {
                    "ApiErrorRateInsight"
                } else {
                    "ApiCallRateInsight"
                },
                error_code: key.error_code,
                days: days
                    .iter()
                    .map(|(day, n)| (clock::minute_label(*day)[..10].to_string(), *n))
                    .collect(),
            });
        }
    }
    serde_json::json!({ "series": series })
}

fn write_json(config: &Config, name: &str, doc: &impl Serialize, pretty: bool) -> Result<()> {
    let mut bytes = if pretty {
        serde_json::to_vec_pretty(doc)
    } else {
        serde_json::to_vec(doc)
    }
    .with_context(|| format!("serialising {name}"))?;
    bytes.push(b'\n');
    sink::write_object(&config.out, name, &bytes)
}
