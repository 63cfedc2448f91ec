//! The validated run configuration and the presets it is built from.
//!
//! `sample` is the committed `sample-data/` tree (small, labelled, exact RunInstances
//! scenario); `bench` is sized by `--scale` for throughput tests (X = 1 is about one million
//! records, 1.5 GB of JSON, over 9 days); `custom` is a single-account starting point for flags.

use std::path::PathBuf;

use chrono::NaiveDate;
use rand::Rng;

use crate::anomaly::{self, Anomaly, Span, Target};
use crate::clock::{MINUTES_PER_DAY, Minute, minute_of_date};
use crate::layout::Trail;
use crate::rng;

/// Weight of an account's regions other than its home region.
pub const SECONDARY_REGION_WEIGHT: f64 = 0.45;
/// Default minutes between deliveries (CloudTrail's "about every 5 minutes").
pub const DEFAULT_DELIVERY_INTERVAL_MIN: i64 = 5;
/// The sample's delivery interval: one file per account-region per hour keeps the tree small.
pub const SAMPLE_DELIVERY_INTERVAL_MIN: i64 = 60;
/// Fraction of records delayed 5-15 extra minutes.
pub const DEFAULT_LATE_SHARE: f64 = 0.06;
/// Fraction of ordinary records delivered twice (same eventID).
pub const DEFAULT_DUPLICATE_RATE: f64 = 0.002;
/// Records per log file before a delivery is split into several files.
pub const DEFAULT_MAX_RECORDS_PER_FILE: usize = 2_000;
/// Office/Machine rate multiplier of the sample (low traffic, small tree).
pub const SAMPLE_VOLUME: f64 = 0.06;
/// Volume of one bench account at scale 1.
pub const BENCH_VOLUME: f64 = 1.27;
/// Bench accounts per unit of scale.
pub const BENCH_ACCOUNTS_PER_SCALE: f64 = 8.0;
pub const BENCH_REGIONS: &[&str] = &["us-east-1", "eu-west-1", "ap-southeast-2"];
/// UTC offsets (minutes) accounts are spread over.
const UTC_OFFSETS: &[i64] = &[-480, -300, -300, 0, 60, 60, 330, 540];

/// The data generator's presets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Preset {
    Sample,
    Bench {
        scale: f64,
    },
    Custom,
    /// The detector evaluation: routines on top of the traffic model, labelled scenarios.
    Eval,
    /// The data-event evaluation (issue 18): S3 and Lambda data events with labelled
    /// data-event anomalies ([`crate::data`]).
    EvalData,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Sample => "sample",
            Preset::Bench { .. } => "bench",
            Preset::Custom => "custom",
            Preset::Eval => "eval",
            Preset::EvalData => "eval-data",
        }
    }

    /// Whether streams carry the evaluation routines and keep anomalies off the ordinary random
    /// stream (so a clean variant has exactly the same background).
    pub fn is_eval(self) -> bool {
        matches!(self, Preset::Eval)
    }
}

/// The eval preset's accounts (timezone, size and home region are drawn from the seed).
pub const EVAL_ACCOUNTS: &[&str] = &["311111111111", "322222222222", "333333333333"];
/// The eval preset's delivery interval: 15 minutes keeps the file count (and run time) down;
/// the detector reads eventTime, not delivery time.
pub const EVAL_DELIVERY_INTERVAL_MIN: i64 = 15;

/// One AWS account and its habits.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    /// Local time = UTC + offset (minutes).
    pub utc_offset: i64,
    /// Multiplies the account's Office/Machine traffic.
    pub size: f64,
    pub home_region: String,
}

/// Delivery parameters.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub interval: i64,
    pub late_share: f64,
    pub duplicate_rate: f64,
}

/// Many rarely called APIs beside the catalogue's (`--long-tail-apis`): an organization whose
/// accounts use many services has about a hundred write APIs a region, each called a few times
/// a day, so its series are many and short. Each is rendered as a catalogued write API of the
/// stream's region (cycled through in catalogue order), under that API's name with a number
/// (`CreateTags02`); their calls are Poisson at `per_day` each, any hour, not scaled by volume.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LongTail {
    /// Long-tail APIs per stream (account x region); 0 adds none and changes nothing.
    pub apis: usize,
    /// Calls a day of each.
    pub per_day: f64,
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub preset: Preset,
    pub seed: u64,
    pub out: PathBuf,
    pub trail: Trail,
    pub start: Minute,
    pub end: Minute,
    pub accounts: Vec<Account>,
    pub regions: Vec<String>,
    pub volume: f64,
    pub long_tail: LongTail,
    pub delivery: Delivery,
    pub max_records_per_file: usize,
    /// Gzip level of every object (0-9).
    pub gzip_level: u32,
    pub anomalies: Vec<Anomaly>,
    /// No anomalies were injected on purpose (`--clean`).
    pub clean: bool,
    pub threads: usize,
}

impl Config {
    /// Traffic weight of `region` for `account`.
    pub fn region_weight(&self, account: &Account, region: &str) -> f64 {
        if account.home_region == region {
            1.0
        } else {
            SECONDARY_REGION_WEIGHT
        }
    }

    pub fn span(&self) -> Span {
        Span {
            start: self.start,
            end: self.end,
        }
    }
}

/// Preset values before flags override them.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub start: NaiveDate,
    pub days: i64,
    pub accounts: Vec<Account>,
    pub regions: Vec<String>,
    pub org_id: Option<String>,
    pub interval: i64,
    pub volume: f64,
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid preset date")
}

fn account(id: &str, utc_offset: i64, size: f64, home: &str) -> Account {
    Account {
        id: id.to_string(),
        utc_offset,
        size,
        home_region: home.to_string(),
    }
}

/// The defaults of `preset`.
pub fn defaults(preset: Preset, seed: u64) -> Defaults {
    match preset {
        Preset::Sample => Defaults {
            start: date(2019, 10, 31),
            days: 9,
            accounts: vec![
                account("123456789012", -300, 1.0, "us-east-1"),
                account("210987654321", 0, 0.8, "eu-west-1"),
            ],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            org_id: Some("o-a1b2c3d4e5".into()),
            interval: SAMPLE_DELIVERY_INTERVAL_MIN,
            volume: SAMPLE_VOLUME,
        },
        Preset::Bench { scale } => {
            let n = (scale * BENCH_ACCOUNTS_PER_SCALE).round().max(1.0) as usize;
            let regions: Vec<String> = BENCH_REGIONS.iter().map(|r| r.to_string()).collect();
            let ids = bench_account_ids(seed, n);
            Defaults {
                start: date(2019, 10, 31),
                days: 9,
                accounts: ids
                    .iter()
                    .map(|id| generated_account(seed, id, &regions))
                    .collect(),
                regions,
                org_id: Some("o-7x2kq9bench".into()),
                interval: DEFAULT_DELIVERY_INTERVAL_MIN,
                volume: BENCH_VOLUME * scale * BENCH_ACCOUNTS_PER_SCALE / n as f64,
            }
        }
        Preset::Eval => {
            let regions: Vec<String> = vec!["us-east-1".into(), "eu-west-1".into()];
            Defaults {
                // A Monday: the second week (analysed) runs Monday to Sunday.
                start: date(2024, 3, 4),
                days: 14,
                accounts: EVAL_ACCOUNTS
                    .iter()
                    .map(|id| generated_account(seed, id, &regions))
                    .collect(),
                regions,
                org_id: Some("o-eval7h4rn355".into()),
                interval: EVAL_DELIVERY_INTERVAL_MIN,
                volume: 1.0,
            }
        }
        Preset::EvalData => Defaults {
            // A Monday; the last three days are analysed.
            start: date(2024, 3, 4),
            days: crate::data::DAYS,
            accounts: vec![account(crate::data::ACCOUNT, 0, 1.0, "us-east-1")],
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            org_id: None,
            interval: DEFAULT_DELIVERY_INTERVAL_MIN,
            volume: 1.0,
        },
        Preset::Custom => {
            let regions = vec!["us-east-1".to_string()];
            Defaults {
                start: date(2019, 10, 31),
                days: 9,
                accounts: vec![generated_account(seed, "111122223333", &regions)],
                regions,
                org_id: None,
                interval: DEFAULT_DELIVERY_INTERVAL_MIN,
                volume: 1.0,
            }
        }
    }
}

fn bench_account_ids(seed: u64, n: usize) -> Vec<String> {
    let mut rng = rng::derive(seed, "bench/accounts");
    (0..n)
        .map(|_| {
            format!(
                "{:012}",
                rng.random_range(100_000_000_000u64..999_999_999_999)
            )
        })
        .collect()
}

/// An account given only by id: its timezone, size and home region are drawn from the seed.
pub fn generated_account(seed: u64, id: &str, regions: &[String]) -> Account {
    let mut rng = rng::derive(seed, &format!("account/{id}"));
    Account {
        id: id.to_string(),
        utc_offset: UTC_OFFSETS[rng.random_range(0..UTC_OFFSETS.len())],
        size: rng.random_range(0.5..1.5),
        home_region: regions[rng.random_range(0..regions.len())].clone(),
    }
}

/// The anomalies of a run: the sample's three when its streams exist, the evaluation's
/// scenarios for `eval`, otherwise about one per four streams placed at random.
pub fn plan_anomalies(
    preset: Preset,
    seed: u64,
    span: Span,
    accounts: &[Account],
    regions: &[String],
    volume: f64,
) -> Vec<Anomaly> {
    let has_stream =
        |a: &Anomaly| accounts.iter().any(|x| x.id == a.account) && regions.contains(&a.region);
    match preset {
        Preset::Sample => anomaly::sample(seed, span)
            .into_iter()
            .filter(has_stream)
            .collect(),
        Preset::Eval => crate::scenario::eval(seed, span, accounts, regions, volume),
        // Planned by `data::Plan` (labels are written whether or not `--clean` is given).
        Preset::EvalData => Vec::new(),
        Preset::Bench { .. } | Preset::Custom => {
            let targets: Vec<Target> = accounts
                .iter()
                .flat_map(|a| {
                    regions.iter().map(|r| Target {
                        account: a.id.clone(),
                        region: r.clone(),
                    })
                })
                .collect();
            let count = targets.len().div_ceil(4).max(2);
            anomaly::random(seed, span, &targets, count)
        }
    }
}

/// The first and end (exclusive) minutes of `days` days from `start`.
pub fn span_of(start: NaiveDate, days: i64) -> Span {
    let first = minute_of_date(start);
    Span {
        start: first,
        end: first + days * MINUTES_PER_DAY,
    }
}
