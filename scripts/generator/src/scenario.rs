//! The evaluation's labelled anomalies (`--preset eval`): what is injected into the background
//! of [`crate::traffic`] and [`crate::routine`], drawn per seed.
//!
//! Every anomaly lies in the last seven days of the data (the analysed week, each day of which
//! has a full seven-day baseline before it), at any hour, with at most one anomaly per API and
//! stream so that no anomaly sits in another's baseline. Per-minute counts are Poisson draws
//! around the planned rate (the first and last minute hold at least one call). The planned
//! rate is set against the API's *expected* background at that time of day: the mean calls per
//! minute, over the same +-60 minutes of the day on each of the seven days before, of the
//! smooth traffic model plus the stream's routines (known exactly, see [`crate::routine`]).
//! The label then reports the *observed* background over the same minutes, which is what the
//! scorer classifies with.
//!
//! | scenario | per seed | what | rate | minutes |
//! |---|---|---|---|---|
//! | `spike` | 8 | call-rate spike on a write API with a background | max((R-1) x expected, f), R log-uniform 10-100, f log-uniform 2.5-10 /min | log-uniform 3-60 |
//! | `spike-moderate` | 1 | the same on a busy write API (>= 0.15 calls/min expected), only 3-8x | (R-1) x expected, R 3-8 | 5-30 |
//! | `spike-short` | 1 | a >= 10x spike too short for the target class | as `spike`, f 3-10 | 1-2 |
//! | `spike-faint` | 1 | >= 10x on a sparse API but below the absolute floor | 0.3-1.2 /min | 5-30 |
//! | `error-storm` | 3 | a misconfigured client: one error code on one API (read or write) | log-uniform 2-40 /min | log-uniform 3-90 |
//! | `ramp` | 1 | a slow ramp from nothing to max(10 x expected, 3-8 /min), then a plateau | linear | 30-120 ramp + 10-30 plateau |
//! | `new-api` | 1 | a burst on an API the account has never called | log-uniform 1-20 /min | log-uniform 3-30 |
//! | `recurring-10x` | 1 | one run of a daily recurring job (see [`crate::routine`]) ten times its usual size: nine times its calls added over the run's own minutes | 9 x the run's calls / its minutes | the run's, 3-6 |
//!
//! Error storms use the service's access-denied code (60 %), its throttling code (20 %) or the
//! API's own commonest error (20 %, access denied when it has none).

use std::collections::BTreeSet;

use rand::Rng;

use crate::anomaly::{Anomaly, InsightType, Span};
use crate::catalogue::{APIS, EventKind, Pattern};
use crate::clock::{MINUTES_PER_DAY, MINUTES_PER_WEEK, Minute};
use crate::config::{Account, SECONDARY_REGION_WEIGHT};
use crate::errors;
use crate::identity::{UA_JAVA, UA_LAMBDA_PYTHON};
use crate::record::Failure;
use crate::rng::{self, Rand};
use crate::routine::{self, Routines};
use crate::traffic::{self, Shape};

/// Minutes either side of the start's minute of the day that make its time-of-day baseline.
pub const TIME_OF_DAY_HALF_WIDTH: i64 = 60;

/// Planned calls per minute of an anomaly: (minute index, expected background) -> rate.
type RateFn = Box<dyn Fn(i64, f64) -> f64>;

/// Expected calls per minute an API needs at that time of day to get a `spike-moderate`.
const MODERATE_MIN_RATE: f64 = 0.15;

/// The scenario mix of one seed, in planning order.
const MIX: &[(&str, usize)] = &[
    ("spike", 8),
    ("spike-moderate", 1),
    ("spike-short", 1),
    ("spike-faint", 1),
    ("error-storm", 3),
    ("ramp", 1),
    ("new-api", 1),
    ("recurring-10x", 1),
];

/// The time-of-day baseline windows of an anomaly starting at `start`: the same minute of the
/// day +-60 minutes on each of the seven days before, clipped to the data.
pub fn time_of_day_windows(start: Minute, data_start: Minute) -> Vec<(Minute, Minute)> {
    (1..=7)
        .map(|d| {
            let centre = start - d * MINUTES_PER_DAY;
            (
                (centre - TIME_OF_DAY_HALF_WIDTH).max(data_start),
                (centre + TIME_OF_DAY_HALF_WIDTH + 1).max(data_start),
            )
        })
        .filter(|(a, b)| a < b)
        .collect()
}

/// One stream as the planner sees it.
struct Stream<'a> {
    account: &'a Account,
    region: &'a str,
    shape: Shape,
    routines: Routines,
}

impl Stream<'_> {
    /// Expected background calls per minute of `api` (successful or not) at `start`'s time of
    /// day, over the time-of-day windows.
    fn expected(&self, api: usize, start: Minute, data_start: Minute) -> f64 {
        let pattern = &APIS[api].pattern;
        let (mut calls, mut minutes) = (0.0, 0);
        for (from, to) in time_of_day_windows(start, data_start) {
            for m in from..to {
                calls += traffic::rate(pattern, self.shape, m)
                    + f64::from(traffic::scheduled(pattern, self.shape, m));
            }
            calls += self.routines.count(api, from, to) as f64;
            minutes += to - from;
        }
        calls / minutes.max(1) as f64
    }
}

fn log_uniform(rng: &mut Rand, low: f64, high: f64) -> f64 {
    rng.random_range(low.ln()..high.ln()).exp()
}

/// Per-minute Poisson counts around `rates`, with at least one call in the first and last
/// minute so that the label's start and end are minutes with calls.
fn draw(rng: &mut Rand, start: Minute, rates: &[f64]) -> Vec<(Minute, u32)> {
    let last = rates.len() - 1;
    rates
        .iter()
        .enumerate()
        .map(|(i, &rate)| {
            let n = traffic::poisson(rng, rate);
            let n = if i == 0 || i == last { n.max(1) } else { n };
            (start + i as i64, n)
        })
        .collect()
}

/// The labelled anomalies of one `eval` seed.
pub fn eval(
    seed: u64,
    span: Span,
    accounts: &[Account],
    regions: &[String],
    volume: f64,
) -> Vec<Anomaly> {
    let streams: Vec<Stream> = accounts
        .iter()
        .flat_map(|account| {
            regions.iter().map(move |region| Stream {
                account,
                region,
                shape: Shape {
                    volume: volume
                        * account.size
                        * if &account.home_region == region {
                            1.0
                        } else {
                            SECONDARY_REGION_WEIGHT
                        },
                    utc_offset: account.utc_offset,
                },
                routines: routine::plan(seed, account, region, span),
            })
        })
        .collect();
    let week_start = if span.end - span.start > MINUTES_PER_WEEK + MINUTES_PER_DAY {
        span.end - MINUTES_PER_WEEK
    } else {
        span.start + (span.end - span.start) / 2
    };
    let mut rng = rng::derive(seed, "eval/anomalies");
    let mut used: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut anomalies = Vec::new();
    for &(kind, count) in MIX {
        for _ in 0..count {
            let n = anomalies.len();
            for _attempt in 0..50 {
                let s = rng.random_range(0..streams.len());
                if let Some(a) = plan_one(&mut rng, kind, n, &streams[s], span, week_start)
                    && used.insert((s, a.api))
                {
                    anomalies.push(a);
                    break;
                }
            }
        }
    }
    anomalies
}

fn candidates(region: &str, keep: impl Fn(usize) -> bool) -> Vec<usize> {
    (0..APIS.len())
        .filter(|&i| APIS[i].recorded_in(region) && APIS[i].kind == EventKind::ApiCall && keep(i))
        .collect()
}

fn plan_one(
    rng: &mut Rand,
    kind: &'static str,
    n: usize,
    stream: &Stream,
    span: Span,
    week_start: Minute,
) -> Option<Anomaly> {
    let writes = candidates(stream.region, |i| {
        !APIS[i].read_only && APIS[i].pattern.is_ordinary()
    });
    let pick = |rng: &mut Rand, list: &[usize]| -> Option<usize> {
        (!list.is_empty()).then(|| list[rng.random_range(0..list.len())])
    };
    // Minutes of the plan, then a start that leaves them (and a margin) inside the data.
    let (api, failure, minutes, rates): (usize, Option<Failure>, i64, RateFn);
    let mut fixed_start = None;
    match kind {
        "spike" | "spike-short" => {
            api = pick(rng, &writes)?;
            let ratio = log_uniform(rng, 10.0, 100.0);
            let floor = if kind == "spike" {
                log_uniform(rng, 2.5, 10.0)
            } else {
                rng.random_range(3.0..10.0)
            };
            minutes = if kind == "spike" {
                log_uniform(rng, 3.0, 61.0).floor() as i64
            } else {
                rng.random_range(1..=2)
            };
            failure = None;
            rates = Box::new(move |_, expected| ((ratio - 1.0) * expected).max(floor));
        }
        "spike-moderate" => {
            // A busy write API at a start chosen first: a few times a busy rate is observable.
            minutes = rng.random_range(5..=30);
            let start = rng.random_range(week_start..span.end - minutes - 30);
            let busy: Vec<usize> = writes
                .iter()
                .copied()
                .filter(|&i| stream.expected(i, start, span.start) >= MODERATE_MIN_RATE)
                .collect();
            api = pick(rng, &busy)?;
            fixed_start = Some(start);
            let ratio = rng.random_range(3.0..8.0);
            failure = None;
            rates = Box::new(move |_, expected| (ratio - 1.0) * expected);
        }
        "spike-faint" => {
            let sparse = candidates(stream.region, |i| {
                !APIS[i].read_only && matches!(APIS[i].pattern, Pattern::Sparse { .. })
            });
            api = pick(rng, &sparse)?;
            let rate = rng.random_range(0.3..1.2);
            minutes = rng.random_range(5..=30);
            failure = None;
            rates = Box::new(move |_, _| rate);
        }
        "error-storm" => {
            let any = candidates(stream.region, |i| APIS[i].pattern.is_ordinary());
            api = pick(rng, &any)?;
            let u: f64 = rng.random();
            let service = APIS[api].service;
            failure = Some(if u < 0.6 || (u >= 0.8 && APIS[api].errors.is_empty()) {
                errors::denied(rng, &APIS[api])
            } else if u < 0.8 {
                Failure {
                    code: service.throttle_code.to_string(),
                    message: Some(service.throttle_message.to_string()),
                }
            } else {
                let spec = &APIS[api].errors[0];
                Failure {
                    code: spec.code.to_string(),
                    message: spec.message.filter(|m| !m.is_empty()).map(str::to_string),
                }
            });
            let rate = log_uniform(rng, 2.0, 40.0);
            minutes = log_uniform(rng, 3.0, 91.0).floor() as i64;
            rates = Box::new(move |_, _| rate);
        }
        "ramp" => {
            api = pick(rng, &writes)?;
            let ramp = rng.random_range(30..=120);
            let hold = rng.random_range(10..=30);
            let floor = rng.random_range(3.0..8.0);
            minutes = ramp + hold;
            failure = None;
            rates = Box::new(move |i, expected| {
                let peak = (10.0 * expected).max(floor);
                peak * ((i + 1) as f64 / ramp as f64).min(1.0)
            });
        }
        "new-api" => {
            let never = candidates(stream.region, |i| !APIS[i].pattern.is_ordinary());
            api = pick(rng, &never)?;
            let rate = log_uniform(rng, 1.0, 20.0);
            minutes = log_uniform(rng, 3.0, 31.0).floor() as i64;
            failure = None;
            rates = Box::new(move |_, _| rate);
        }
        "recurring-10x" => {
            // A daily job's run in the analysed week, lasting at least 3 minutes.
            let runs: Vec<&routine::JobRun> = stream
                .routines
                .runs
                .iter()
                .filter(|r| {
                    r.job.starts_with("daily-")
                        && r.last - r.start >= 2
                        && r.start >= week_start
                        && r.last < span.end - 30
                })
                .collect();
            if runs.is_empty() {
                return None;
            }
            let run = runs[rng.random_range(0..runs.len())];
            api = run.api;
            minutes = run.last - run.start + 1;
            fixed_start = Some(run.start);
            let rate = 9.0 * f64::from(run.calls) / minutes as f64;
            failure = None;
            rates = Box::new(move |_, _| rate);
        }
        _ => unreachable!("unknown scenario {kind}"),
    }
    let latest = span.end - minutes - 30;
    if latest <= week_start {
        return None;
    }
    let start = fixed_start.unwrap_or_else(|| rng.random_range(week_start..latest));
    let expected = stream.expected(api, start, span.start);
    let planned: Vec<f64> = (0..minutes).map(|i| rates(i, expected)).collect();
    let burst = draw(rng, start, &planned);
    let name = APIS[api].name;
    let (principal, agent, ip, insight, description) = match kind {
        "error-storm" => (
            format!(
                "misconfigured-{}/task-{}",
                rng::hex(rng, 4),
                rng::hex(rng, 6)
            ),
            UA_JAVA.to_string(),
            format!(
                "3.{}.{}.{}",
                rng.random_range(80..240),
                rng.random_range(0..255),
                rng.random_range(1..255)
            ),
            InsightType::ApiErrorRateInsight,
            format!(
                "A misconfigured client retries {name} and fails with {} every time.",
                failure.as_ref().map_or("", |f| f.code.as_str())
            ),
        ),
        "new-api" => (
            format!("intruder-{}", rng::hex(rng, 4)),
            "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22".to_string(),
            format!("203.0.113.{}", rng.random_range(2..250)),
            InsightType::ApiCallRateInsight,
            format!("A burst of {name}, an API this account has never called."),
        ),
        _ => (
            format!("automation-{}/burst-{}", rng::hex(rng, 4), rng::hex(rng, 6)),
            UA_LAMBDA_PYTHON.to_string(),
            format!("198.51.100.{}", rng.random_range(2..250)),
            InsightType::ApiCallRateInsight,
            format!(
                "{kind} on {name}: planned {:.2} calls/min against an expected {:.4} at this time of day.",
                planned.iter().sum::<f64>() / minutes as f64,
                expected
            ),
        ),
    };
    Some(Anomaly {
        id: format!("{kind}-{n}"),
        account: stream.account.id.clone(),
        region: stream.region.to_string(),
        api,
        insight,
        failure,
        burst,
        principal,
        agent,
        ip,
        description,
        scripted_until: None,
        history: Vec::new(),
        scenario: Some(kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::minute_of_date;
    use chrono::NaiveDate;

    #[test]
    fn time_of_day_windows_are_seven_121_minute_windows_before_the_start() {
        let data_start = minute_of_date(NaiveDate::from_ymd_opt(2024, 3, 4).unwrap());
        let start = data_start + 10 * MINUTES_PER_DAY + 30;
        let w = time_of_day_windows(start, data_start);
        assert_eq!(w.len(), 7);
        assert!(w.iter().all(|(a, b)| b - a == 121 && *b <= start));
        // Seven days before 00:30 on day 3: the first window is clipped at the data start.
        let early = time_of_day_windows(data_start + 7 * MINUTES_PER_DAY + 30, data_start);
        assert_eq!(early.last().unwrap(), &(data_start, data_start + 91));
    }
}
