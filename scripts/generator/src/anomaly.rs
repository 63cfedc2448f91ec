//! Injected anomalies and their labels (`anomalies.json`).
//!
//! An [`Anomaly`] is a burst of calls to one API in one account and region, from one unusual
//! principal, either a call-rate spike (successful write calls, `ApiCallRateInsight`) or an
//! error storm (calls that all fail with one error code, `ApiErrorRateInsight`). Its schedule
//! (calls per minute) is drawn up front from a generator derived from the seed and the anomaly
//! id, so labels are known before any record is written.
//!
//! The sample's RunInstances scenario is *exact*: the API's ordinary calls in that stream are
//! replaced, until the minute after the burst, by a scripted history of 21 single calls at
//! distinct random minutes of the 7 days before the burst; then 6 calls in one minute.
//!
//! Injected and scripted records are never duplicated by the delivery model, so counting raw
//! records or distinct eventIDs gives the same numbers for them.

use rand::Rng;
use rand::seq::index;
use serde::Serialize;

use crate::catalogue::{self, APIS, Pattern};
use crate::clock::{self, MINUTES_PER_DAY, MINUTES_PER_HOUR, MINUTES_PER_WEEK, Minute};
use crate::errors;
use crate::identity::{UA_JAVA, UA_LAMBDA_PYTHON};
use crate::record::Failure;
use crate::rng::{self, Rand};

/// The two Insights types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InsightType {
    ApiCallRateInsight,
    ApiErrorRateInsight,
}

/// One injected anomaly.
#[derive(Debug, Clone)]
pub struct Anomaly {
    pub id: String,
    pub account: String,
    pub region: String,
    /// Catalogue index of the API.
    pub api: usize,
    pub insight: InsightType,
    /// Every injected call fails with this error (error storms only).
    pub failure: Option<Failure>,
    /// Injected calls per minute, minutes strictly increasing and contiguous.
    pub burst: Vec<(Minute, u32)>,
    /// `role/session` or an IAM user name.
    pub principal: String,
    pub agent: String,
    pub ip: String,
    pub description: String,
    /// Exact scenarios: ordinary calls to `api` in this stream are suppressed before this minute
    /// and replaced by `history` (one call per listed minute).
    pub scripted_until: Option<Minute>,
    pub history: Vec<Minute>,
    /// The evaluation scenario (`--preset eval`), e.g. `spike` or `error-storm`; labels of
    /// such anomalies also carry the time-of-day baseline.
    pub scenario: Option<&'static str>,
}

impl Anomaly {
    pub fn start(&self) -> Minute {
        self.burst[0].0
    }

    /// The first minute after the anomaly (exclusive end).
    pub fn end(&self) -> Minute {
        self.burst[self.burst.len() - 1].0 + 1
    }

    pub fn injected(&self) -> u32 {
        self.burst.iter().map(|(_, n)| n).sum()
    }

    /// Calls injected in `minute`.
    pub fn calls_at(&self, minute: Minute) -> u32 {
        if minute < self.start() || minute >= self.end() {
            return 0;
        }
        self.burst[(minute - self.start()) as usize].1
    }

    /// Whether `minute` is in the scripted history.
    pub fn history_at(&self, minute: Minute) -> bool {
        self.history.binary_search(&minute).is_ok()
    }

    /// Whether ordinary calls to `api` are suppressed in `minute`.
    pub fn suppresses(&self, api: usize, minute: Minute) -> bool {
        api == self.api && self.scripted_until.is_some_and(|until| minute < until)
    }

    /// Whether an ordinary or scripted event counts towards this anomaly's baseline.
    pub fn matches(&self, api: usize, failure: Option<&Failure>) -> bool {
        if api != self.api {
            return false;
        }
        match (&self.failure, failure) {
            (None, _) => true,
            (Some(want), Some(got)) => want.code == got.code,
            (Some(_), None) => false,
        }
    }

    /// The baseline window: the 7 days before the start, clipped to the data.
    pub fn baseline_window(&self, data_start: Minute) -> (Minute, Minute) {
        (
            (self.start() - MINUTES_PER_WEEK).max(data_start),
            self.start(),
        )
    }

    /// Whether `minute` is in the time-of-day baseline (`scenario::time_of_day_windows`).
    pub fn in_time_of_day_baseline(&self, minute: Minute, data_start: Minute) -> bool {
        crate::scenario::time_of_day_windows(self.start(), data_start)
            .iter()
            .any(|(from, to)| (*from..*to).contains(&minute))
    }
}

/// Where the generated data lies, for placing anomalies.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub start: Minute,
    pub end: Minute,
}

fn burst(rng: &mut Rand, start: Minute, minutes: i64, low: u32, high: u32) -> Vec<(Minute, u32)> {
    (0..minutes)
        .map(|i| (start + i, rng.random_range(low..=high)))
        .collect()
}

fn api_index(source: &str, name: &str) -> usize {
    catalogue::find(source, name).expect("anomaly API is in the catalogue")
}

/// The three labelled anomalies of `--preset sample`, placed relative to the data start
/// (2019-10-31 for the committed sample). Anomalies that fall outside the data are dropped.
pub fn sample(seed: u64, span: Span) -> Vec<Anomaly> {
    let day = |d: i64, h: i64, m: i64| span.start + d * MINUTES_PER_DAY + h * MINUTES_PER_HOUR + m;
    let run_instances = run_instances_burst(seed, day(7, 13, 25));
    let mut rng = rng::derive(seed, "anomaly/sample-sg-ingress-spike");
    let ingress = Anomaly {
        id: "sample-sg-ingress-spike".to_string(),
        account: "210987654321".to_string(),
        region: "eu-west-1".to_string(),
        api: api_index("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
        insight: InsightType::ApiCallRateInsight,
        failure: None,
        burst: burst(&mut rng, day(6, 2, 14), 12, 30, 40),
        principal: "contractor-temp".to_string(),
        agent: "Boto3/1.10.2 Python/2.7.16 Linux/3.10.0-1062.1.2.el7.x86_64 Botocore/1.13.2"
            .to_string(),
        ip: "198.51.100.201".to_string(),
        description:
            "Night-time burst of security-group ingress rules from an IAM user that never \
                      calls EC2 write APIs, against a baseline of a few calls per day."
                .to_string(),
        scripted_until: None,
        history: Vec::new(),
        scenario: None,
    };
    let mut rng = rng::derive(seed, "anomaly/sample-kms-decrypt-denied");
    let decrypt = api_index("kms.amazonaws.com", "Decrypt");
    let storm = Anomaly {
        id: "sample-kms-decrypt-denied".to_string(),
        account: "210987654321".to_string(),
        region: "us-east-1".to_string(),
        api: decrypt,
        insight: InsightType::ApiErrorRateInsight,
        failure: Some(errors::denied(&mut rng, &APIS[decrypt])),
        burst: burst(&mut rng, day(5, 14, 40), 20, 22, 28),
        principal: "reporting-etl/etl-task-7f2c".to_string(),
        agent: UA_JAVA.to_string(),
        ip: "3.92.14.201".to_string(),
        description:
            "A misconfigured reporting job retries kms:Decrypt without permission on the key: \
                      an AccessDeniedException storm against near-zero such errors."
                .to_string(),
        scripted_until: None,
        history: Vec::new(),
        scenario: None,
    };
    [run_instances, ingress, storm]
        .into_iter()
        .filter(|a| a.start() >= span.start && a.end() <= span.end)
        .filter(|a| a.history.first().is_none_or(|first| *first >= span.start))
        .collect()
}

/// The exact RunInstances scenario: 21 scripted calls in the week before `burst_minute`, then 6
/// calls inside `burst_minute`, all 6 from `ci-deployer/session-x`.
pub fn run_instances_burst(seed: u64, burst_minute: Minute) -> Anomaly {
    let mut rng = rng::derive(seed, "anomaly/sample-runinstances-burst");
    let history_start = burst_minute - MINUTES_PER_WEEK;
    let mut history: Vec<Minute> = index::sample(&mut rng, MINUTES_PER_WEEK as usize, 21)
        .into_iter()
        .map(|offset| history_start + offset as i64)
        .collect();
    history.sort_unstable();
    Anomaly {
        id: "sample-runinstances-burst".to_string(),
        account: "123456789012".to_string(),
        region: "us-east-1".to_string(),
        api: api_index("ec2.amazonaws.com", "RunInstances"),
        insight: InsightType::ApiCallRateInsight,
        failure: None,
        burst: vec![(burst_minute, 6)],
        principal: "ci-deployer/session-x".to_string(),
        agent: "aws-cli/1.16.263 Python/3.7.5 Linux/4.14.146-119.123.amzn2.x86_64 botocore/1.12.253 command/ec2.run-instances".to_string(),
        ip: "192.0.2.77".to_string(),
        description: "Exactly 21 RunInstances calls in the 7 days before, then 6 in one minute from \
                      one CI session: the smallest burst a call-rate detector should flag."
            .to_string(),
        scripted_until: Some(burst_minute + 1),
        history,
        scenario: None,
    }
}

/// A stream an anomaly may be placed in.
#[derive(Debug, Clone)]
pub struct Target {
    pub account: String,
    pub region: String,
}

/// `count` anomalies in distinct streams, alternating call-rate spikes on rarely called write
/// APIs and error storms on busy read APIs, each starting after a full week of data when the
/// span allows it.
pub fn random(seed: u64, span: Span, targets: &[Target], count: usize) -> Vec<Anomaly> {
    let mut rng = rng::derive(seed, "anomaly/random");
    let chosen = index::sample(&mut rng, targets.len(), count.min(targets.len())).into_vec();
    let mut anomalies = Vec::new();
    for (n, target) in chosen.into_iter().map(|i| &targets[i]).enumerate() {
        let spike = n % 2 == 0;
        let earliest = if span.end - span.start > MINUTES_PER_WEEK + MINUTES_PER_DAY {
            span.start + MINUTES_PER_WEEK
        } else {
            span.start + (span.end - span.start) / 2
        };
        let latest = (span.end - 2 * MINUTES_PER_HOUR).max(earliest + 1);
        let start = rng.random_range(earliest..latest);
        anomalies.push(if spike {
            spike_anomaly(&mut rng, n, target, start)
        } else {
            storm_anomaly(&mut rng, n, target, start)
        });
    }
    anomalies
}

fn candidates(region: &str, keep: impl Fn(&catalogue::Api) -> bool) -> Vec<usize> {
    (0..APIS.len())
        .filter(|&i| {
            APIS[i].recorded_in(region)
                && APIS[i].kind == catalogue::EventKind::ApiCall
                && keep(&APIS[i])
        })
        .collect()
}

fn spike_anomaly(rng: &mut Rand, n: usize, target: &Target, start: Minute) -> Anomaly {
    let apis = candidates(&target.region, |a| {
        !a.read_only && matches!(a.pattern, Pattern::Sparse { .. })
    });
    let api = apis[rng.random_range(0..apis.len())];
    let minutes = rng.random_range(5..=15);
    Anomaly {
        id: format!("spike-{n}"),
        account: target.account.clone(),
        region: target.region.clone(),
        api,
        insight: InsightType::ApiCallRateInsight,
        failure: None,
        burst: burst(rng, start, minutes, 15, 40),
        principal: format!("automation-{}/burst-{}", rng::hex(rng, 4), rng::hex(rng, 6)),
        agent: UA_LAMBDA_PYTHON.to_string(),
        ip: format!("198.51.100.{}", rng.random_range(2..250)),
        description: format!(
            "Call-rate spike on {} from an unusual role.",
            APIS[api].name
        ),
        scripted_until: None,
        history: Vec::new(),
        scenario: None,
    }
}

fn storm_anomaly(rng: &mut Rand, n: usize, target: &Target, start: Minute) -> Anomaly {
    let apis = candidates(&target.region, |a| {
        a.read_only && matches!(a.pattern, Pattern::Machine { .. })
    });
    let api = apis[rng.random_range(0..apis.len())];
    let minutes = rng.random_range(10..=25);
    Anomaly {
        id: format!("storm-{n}"),
        account: target.account.clone(),
        region: target.region.clone(),
        api,
        insight: InsightType::ApiErrorRateInsight,
        failure: Some(errors::denied(rng, &APIS[api])),
        burst: burst(rng, start, minutes, 15, 30),
        principal: format!(
            "misconfigured-{}/task-{}",
            rng::hex(rng, 4),
            rng::hex(rng, 6)
        ),
        agent: UA_JAVA.to_string(),
        ip: format!(
            "3.{}.{}.{}",
            rng.random_range(80..240),
            rng.random_range(0..255),
            rng.random_range(1..255)
        ),
        description: format!(
            "Access-denied storm on {} from a misconfigured client.",
            APIS[api].name
        ),
        scripted_until: None,
        history: Vec::new(),
        scenario: None,
    }
}

/// One entry of `anomalies.json`. Times are UTC minutes; `end` is exclusive (the first minute
/// after the anomaly) and `lastMinute` is the last minute with injected calls.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    pub id: String,
    pub account: String,
    pub region: String,
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub insight_type: InsightType,
    pub error_code: Option<String>,
    pub start: String,
    pub end: String,
    pub last_minute: String,
    pub duration_minutes: i64,
    pub injected_count: u32,
    pub injected_per_minute: f64,
    pub peak_per_minute: u32,
    /// Observed mean per minute of the same API (and error code) in the baseline window,
    /// excluding the injected calls.
    pub baseline_per_minute: f64,
    pub baseline_count: u64,
    pub baseline_window_start: String,
    pub baseline_window_minutes: i64,
    pub principal: String,
    pub user_agent: String,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: String,
    pub description: String,
    /// Evaluation scenario (`--preset eval` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<&'static str>,
    /// Observed ordinary events of the same API (and error code) in the time-of-day baseline:
    /// the start's minute of the day +-60 minutes on each of the 7 days before (`eval` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_time_of_day_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_time_of_day_minutes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_time_of_day_per_minute: Option<f64>,
}

impl Label {
    /// The label of `anomaly`, given the baseline events counted while generating its stream.
    pub fn new(
        anomaly: &Anomaly,
        baseline_count: u64,
        time_of_day_count: u64,
        data_start: Minute,
    ) -> Label {
        let api = &APIS[anomaly.api];
        let (window_start, window_end) = anomaly.baseline_window(data_start);
        let minutes = anomaly.end() - anomaly.start();
        let window = (window_end - window_start).max(1);
        let time_of_day_minutes: i64 =
            crate::scenario::time_of_day_windows(anomaly.start(), data_start)
                .iter()
                .map(|(a, b)| b - a)
                .sum();
        let scenario = anomaly.scenario;
        Label {
            id: anomaly.id.clone(),
            account: anomaly.account.clone(),
            region: anomaly.region.clone(),
            event_source: api.source(),
            event_name: api.name,
            insight_type: anomaly.insight,
            error_code: anomaly.failure.as_ref().map(|f| f.code.clone()),
            start: clock::minute_label(anomaly.start()),
            end: clock::minute_label(anomaly.end()),
            last_minute: clock::minute_label(anomaly.end() - 1),
            duration_minutes: minutes,
            injected_count: anomaly.injected(),
            injected_per_minute: round4(f64::from(anomaly.injected()) / minutes as f64),
            peak_per_minute: anomaly.burst.iter().map(|(_, n)| *n).max().unwrap_or(0),
            baseline_per_minute: round4(baseline_count as f64 / window as f64),
            baseline_count,
            baseline_window_start: clock::minute_label(window_start),
            baseline_window_minutes: window,
            principal: anomaly.principal.clone(),
            user_agent: anomaly.agent.clone(),
            source_ip_address: anomaly.ip.clone(),
            description: anomaly.description.clone(),
            scenario,
            baseline_time_of_day_count: scenario.map(|_| time_of_day_count),
            baseline_time_of_day_minutes: scenario.map(|_| time_of_day_minutes),
            baseline_time_of_day_per_minute: scenario
                .map(|_| round4(time_of_day_count as f64 / time_of_day_minutes.max(1) as f64)),
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::minute_of_date;
    use chrono::NaiveDate;

    fn sample_span() -> Span {
        let start = minute_of_date(NaiveDate::from_ymd_opt(2019, 10, 31).unwrap());
        Span {
            start,
            end: start + 9 * MINUTES_PER_DAY,
        }
    }

    #[test]
    fn run_instances_history_is_21_distinct_minutes_in_the_week_before() {
        let span = sample_span();
        let anomaly = run_instances_burst(1, span.start + 7 * MINUTES_PER_DAY + 13 * 60 + 25);
        assert_eq!(clock::minute_label(anomaly.start()), "2019-11-07T13:25:00Z");
        assert_eq!(anomaly.history.len(), 21);
        assert!(anomaly.history.windows(2).all(|w| w[0] < w[1]));
        assert!(anomaly.history[0] >= anomaly.start() - MINUTES_PER_WEEK);
        assert!(*anomaly.history.last().unwrap() < anomaly.start());
        assert_eq!(anomaly.injected(), 6);
    }

    #[test]
    fn sample_has_three_anomalies_inside_the_data() {
        let anomalies = sample(1, sample_span());
        let ids: Vec<&str> = anomalies.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "sample-runinstances-burst",
                "sample-sg-ingress-spike",
                "sample-kms-decrypt-denied"
            ]
        );
        let short = Span {
            start: sample_span().start,
            end: sample_span().start + 3 * MINUTES_PER_DAY,
        };
        assert!(sample(1, short).is_empty());
    }

    #[test]
    fn random_anomalies_use_distinct_streams() {
        let targets: Vec<Target> = (0..6)
            .map(|i| Target {
                account: format!("{i:012}"),
                region: "us-east-1".to_string(),
            })
            .collect();
        let anomalies = random(3, sample_span(), &targets, 4);
        assert_eq!(anomalies.len(), 4);
        let mut accounts: Vec<&str> = anomalies.iter().map(|a| a.account.as_str()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        assert_eq!(accounts.len(), 4);
        assert!(
            anomalies
                .iter()
                .all(|a| a.start() >= sample_span().start + MINUTES_PER_WEEK)
        );
    }
}
