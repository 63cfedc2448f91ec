//! What happens when in an `eval-data` run: each stream's nightly batch runs and its labelled
//! anomalies, placed and with their calls per minute drawn before any record is written (so
//! labels are known up front and `--clean` changes nothing but the injected records).

use rand::Rng;
use rand_distr::{Distribution, Poisson};
use serde::Serialize;

use super::{
    ALB_LOGS_PER_MIN, ANALYSED_DAYS, Api, CLOUDFRONT_LOGS_PER_MIN, DENIED_LOGS_PER_MIN,
    INVOKE_PER_MIN, READER_PER_MIN, SECONDARY_WEIGHT, diurnal,
};
use crate::clock::{self, MINUTES_PER_DAY, MINUTES_PER_WEEK, Minute};
use crate::config::Config;
use crate::rng::{self, Rand};

/// Minutes kept free between an anomaly and a batch run or another anomaly.
const MARGIN: i64 = 90;
/// Share of nights the batch does not run.
const BATCH_SKIP: f64 = 0.1;

/// The first analysed minute: [`ANALYSED_DAYS`] before the end of the data.
pub fn analysed_from(config: &Config) -> Minute {
    (config.end - ANALYSED_DAYS * MINUTES_PER_DAY).max(config.start)
}

/// Every stream's plan, in account x region order.
#[derive(Debug)]
pub struct Plan {
    pub streams: Vec<StreamPlan>,
}

/// One account in one region.
#[derive(Debug)]
pub struct StreamPlan {
    pub account: String,
    pub region: String,
    /// Multiplies every background rate: run volume x account size x region weight.
    pub weight: f64,
    pub batch: Vec<BatchRun>,
    pub anomalies: Vec<Injected>,
}

/// One night's ETL batch: `[start, end)`, reading at `factor` x the reader's mean.
#[derive(Debug, Clone, Copy)]
pub struct BatchRun {
    pub start: Minute,
    pub end: Minute,
    pub factor: f64,
}

/// One labelled anomaly.
#[derive(Debug, Clone)]
pub struct Injected {
    pub id: String,
    pub scenario: &'static str,
    pub api: Api,
    pub error_code: Option<&'static str>,
    /// Injected calls per minute, contiguous minutes.
    pub burst: Vec<(Minute, u32)>,
    /// Planned multiple of the series' usual rate (bursts only).
    pub ratio: Option<f64>,
    /// `role/session` or an IAM user name (see `identity::scripted_actor`).
    pub principal: String,
    pub agent: &'static str,
    pub ip: String,
    pub description: String,
}

impl Injected {
    pub fn start(&self) -> Minute {
        self.burst[0].0
    }

    /// First minute after the anomaly.
    pub fn end(&self) -> Minute {
        self.burst[self.burst.len() - 1].0 + 1
    }

    pub fn calls_at(&self, minute: Minute) -> u32 {
        if minute < self.start() || minute >= self.end() {
            return 0;
        }
        self.burst[(minute - self.start()) as usize].1
    }

    /// Whether a background call counts toward this anomaly's baseline.
    pub fn matches(&self, api: Api, error_code: Option<&str>) -> bool {
        api == self.api && (self.error_code.is_none() || self.error_code == error_code)
    }

    /// The 7 days before the start, clipped to the data.
    pub fn baseline_window(&self, data_start: Minute) -> (Minute, Minute) {
        (
            (self.start() - MINUTES_PER_WEEK).max(data_start),
            self.start(),
        )
    }

    pub fn label(&self, s: &StreamPlan, baseline: Baseline, data_start: Minute) -> DataLabel {
        let (from, to) = self.baseline_window(data_start);
        let injected: u32 = self.burst.iter().map(|(_, n)| n).sum();
        let minutes = self.end() - self.start();
        let tod_minutes: i64 = crate::scenario::time_of_day_windows(self.start(), data_start)
            .iter()
            .map(|(a, b)| b - a)
            .sum();
        DataLabel {
            id: self.id.clone(),
            scenario: self.scenario,
            account: s.account.clone(),
            region: s.region.clone(),
            event_source: self.api.source(),
            event_name: self.api.name(),
            event_category: self.api.category(),
            insight_type: if self.error_code.is_some() {
                "ApiErrorRateInsight"
            } else {
                "ApiCallRateInsight"
            },
            error_code: self.error_code,
            start: clock::minute_label(self.start()),
            end: clock::minute_label(self.end()),
            last_minute: clock::minute_label(self.end() - 1),
            duration_minutes: minutes,
            injected_count: injected,
            injected_per_minute: round2(f64::from(injected) / minutes as f64),
            peak_per_minute: self.burst.iter().map(|(_, n)| *n).max().unwrap_or(0),
            ratio: self.ratio.map(round2),
            baseline_count: baseline.count,
            baseline_per_minute: round2(baseline.count as f64 / (to - from).max(1) as f64),
            baseline_window_start: clock::minute_label(from),
            baseline_window_minutes: to - from,
            baseline_time_of_day_count: baseline.time_of_day,
            baseline_time_of_day_minutes: tod_minutes,
            baseline_time_of_day_per_minute: round2(
                baseline.time_of_day as f64 / tod_minutes.max(1) as f64,
            ),
            principal: self.principal.clone(),
            user_agent: self.agent,
            source_ip_address: self.ip.clone(),
            description: self.description.clone(),
        }
    }
}

/// Background calls of an anomaly's series (API and error code) counted while generating.
#[derive(Debug, Default, Clone, Copy)]
pub struct Baseline {
    /// In the 7 days before the start.
    pub count: u64,
    /// Within +-60 minutes of the start's minute of the day on each of those days.
    pub time_of_day: u64,
}

/// One entry of `anomalies.json` (the management presets' fields plus `eventCategory` and
/// `ratio`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataLabel {
    pub id: String,
    pub scenario: &'static str,
    pub account: String,
    pub region: String,
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub event_category: &'static str,
    pub insight_type: &'static str,
    pub error_code: Option<&'static str>,
    pub start: String,
    pub end: String,
    pub last_minute: String,
    pub duration_minutes: i64,
    pub injected_count: u32,
    pub injected_per_minute: f64,
    pub peak_per_minute: u32,
    pub ratio: Option<f64>,
    pub baseline_count: u64,
    pub baseline_per_minute: f64,
    pub baseline_window_start: String,
    pub baseline_window_minutes: i64,
    pub baseline_time_of_day_count: u64,
    pub baseline_time_of_day_minutes: i64,
    pub baseline_time_of_day_per_minute: f64,
    pub principal: String,
    pub user_agent: &'static str,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub description: String,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One entry of `recurring.json`: a batch run in one series.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEntry<'a> {
    account: &'a str,
    region: &'a str,
    event_source: &'static str,
    event_name: &'static str,
    insight_type: &'static str,
    error_code: Option<&'static str>,
    job: &'static str,
    schedule: &'static str,
    start: String,
    last_minute: String,
}

impl Plan {
    pub fn new(config: &Config) -> Plan {
        let mut streams = Vec::new();
        for account in &config.accounts {
            for region in &config.regions {
                let region_weight = if &account.home_region == region {
                    1.0
                } else {
                    SECONDARY_WEIGHT
                };
                let label = format!("{}/{}", account.id, region);
                let mut s = StreamPlan {
                    account: account.id.clone(),
                    region: region.clone(),
                    weight: config.volume * account.size * region_weight,
                    batch: batch_runs(
                        &mut rng::derive(config.seed, &format!("data/batch/{label}")),
                        config,
                    ),
                    anomalies: Vec::new(),
                };
                let mut r = rng::derive(config.seed, &format!("data/anomalies/{label}"));
                s.anomalies = anomalies(&mut r, config, &s);
                streams.push(s);
            }
        }
        Plan { streams }
    }

    /// `recurring.json`: every batch run, in the `GetObject` and the `PutObject` series.
    pub fn recurring_doc(&self) -> serde_json::Value {
        let mut runs = Vec::new();
        for s in &self.streams {
            for b in &s.batch {
                for api in [Api::GetObject, Api::PutObject] {
                    runs.push(RunEntry {
                        account: &s.account,
                        region: &s.region,
                        event_source: api.source(),
                        event_name: api.name(),
                        insight_type: "ApiCallRateInsight",
                        error_code: None,
                        job: "nightly-batch",
                        schedule: "daily",
                        start: clock::minute_label(b.start),
                        last_minute: clock::minute_label(b.end - 1),
                    });
                }
            }
        }
        serde_json::json!({ "runs": runs })
    }
}

fn batch_runs(r: &mut Rand, config: &Config) -> Vec<BatchRun> {
    let at = r.random_range(0..MINUTES_PER_DAY);
    let mut runs = Vec::new();
    let mut day = config.start - config.start.rem_euclid(MINUTES_PER_DAY);
    while day < config.end {
        let skip = r.random_bool(BATCH_SKIP);
        let start = day + at + r.random_range(0..=10);
        let minutes = r.random_range(20..=30);
        let factor = r.random_range(15.0..25.0);
        if !skip && start >= config.start && start + minutes <= config.end {
            runs.push(BatchRun {
                start,
                end: start + minutes,
                factor,
            });
        }
        day += MINUTES_PER_DAY;
    }
    runs
}

/// A scenario: name, API, error code, ratio range (0: absolute level), minutes range.
type Spec = (
    &'static str,
    Api,
    Option<&'static str>,
    (f64, f64),
    (i64, i64),
);

fn log_uniform(r: &mut Rand, (lo, hi): (f64, f64)) -> f64 {
    (r.random_range(lo.ln()..=hi.ln())).exp()
}

fn anomalies(r: &mut Rand, config: &Config, s: &StreamPlan) -> Vec<Injected> {
    let recon = Api::recon();
    let (recon_api, recon_rate) = recon[r.random_range(0..recon.len())];
    let specs: [Spec; 6] = [
        ("exfil", Api::GetObject, None, (10.0, 100.0), (3, 15)),
        ("mass-delete", Api::DeleteObject, None, (0.0, 0.0), (3, 10)),
        ("reencrypt", Api::PutObject, None, (10.0, 50.0), (3, 10)),
        ("invoke-storm", Api::Invoke, None, (10.0, 50.0), (3, 20)),
        ("recon", recon_api, None, (10.0, 50.0), (3, 10)),
        (
            "error-stream",
            Api::GetObject,
            Some("AccessDenied"),
            (0.0, 0.0),
            (60, 180),
        ),
    ];
    let mut busy: Vec<(Minute, Minute)> = s.batch.iter().map(|b| (b.start, b.end)).collect();
    let first = analysed_from(config);
    let mut out = Vec::new();
    for (name, api, error_code, ratios, (lo, hi)) in specs {
        let minutes = log_uniform(r, (lo as f64, hi as f64)).round() as i64;
        let ratio = (ratios.0 > 0.0).then(|| log_uniform(r, ratios));
        let level = if name == "mass-delete" {
            r.random_range(30.0..300.0)
        } else {
            r.random_range(3.0..10.0)
        };
        let last = (config.end - minutes - 30).max(first + 1);
        let free = |start: Minute, busy: &[(Minute, Minute)]| {
            busy.iter()
                .all(|(a, b)| start + minutes + MARGIN <= *a || *b + MARGIN <= start)
        };
        let mut start = r.random_range(first..last);
        for _ in 0..1000 {
            if free(start, &busy) {
                break;
            }
            start = r.random_range(first..last);
        }
        busy.push((start, start + minutes));
        let w = s.weight;
        let usual_put = (ALB_LOGS_PER_MIN + CLOUDFRONT_LOGS_PER_MIN + DENIED_LOGS_PER_MIN) * w;
        let rate = |m: Minute| -> f64 {
            match name {
                "exfil" => READER_PER_MIN * w * diurnal(m) * ratio.unwrap_or(1.0),
                "reencrypt" => usual_put * ratio.unwrap_or(1.0),
                "invoke-storm" => INVOKE_PER_MIN * w * diurnal(m) * ratio.unwrap_or(1.0),
                "recon" => (recon_rate * w * diurnal(m) * ratio.unwrap_or(1.0)).max(5.0),
                _ => level,
            }
        };
        let burst = (start..start + minutes)
            .map(|m| {
                let n = Poisson::new(rate(m)).expect("positive rate").sample(r) as u32;
                (m, n.max(1))
            })
            .collect();
        let (principal, agent, ip, what) = actor_of(r, name);
        out.push(Injected {
            id: format!("{}-{name}", s.region),
            scenario: name,
            api,
            error_code,
            burst,
            ratio,
            principal,
            agent,
            ip,
            description: format!("{what} ({} {})", api.source(), api.name()),
        });
    }
    out
}

/// The anomaly's principal, user agent, source IP and a summary.
fn actor_of(r: &mut Rand, scenario: &str) -> (String, &'static str, String, &'static str) {
    let public_ip = |r: &mut Rand| format!("203.0.113.{}", r.random_range(2..250));
    match scenario {
        "exfil" => (
            format!("ReadOnlyAuditor/exfil-{}", rng::hex(r, 6)),
            "[aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off command/s3.sync]",
            public_ip(r),
            "Exfiltration: bulk GetObject on the data lake by a principal never seen",
        ),
        "mass-delete" => (
            "svc-backup-legacy".to_string(),
            "[aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off command/s3.rm]",
            public_ip(r),
            "Mass delete of data-lake objects with a leaked access key",
        ),
        "reencrypt" => (
            format!("LambdaImageResizer/ransom-{}", rng::hex(r, 6)),
            "[Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.11.8 Botocore/1.34.51]",
            public_ip(r),
            "Ransomware-style PutObject re-encrypting objects with a foreign KMS key",
        ),
        "invoke-storm" => (
            "intern-sandbox".to_string(),
            "[Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#5.15.0 md/arch#x86_64 lang/python#3.11.8 Botocore/1.34.51]",
            public_ip(r),
            "Lambda Invoke storm from a developer key (cost or denial-of-wallet attack)",
        ),
        "recon" => (
            "dev-temp".to_string(),
            "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79 exe/x86_64.amzn.2023 prompt/off",
            public_ip(r),
            "Read-only reconnaissance burst from a developer key",
        ),
        _ => (
            "scanner-key".to_string(),
            "curl/8.5.0",
            public_ip(r),
            "A new AccessDenied stream: a scanner probing object keys it may not read",
        ),
    }
}
