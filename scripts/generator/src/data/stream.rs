//! One `eval-data` stream (account x region), minute by minute: the background of
//! [`super`]'s model, then the planned anomalies' calls, rendered, posted to the outbox and
//! written per delivery tick exactly as the management streams do ([`crate::stream`]).
//!
//! The background, the injected calls and the file layout draw from three generators, so the
//! background records are identical with and without `--clean`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use rand::Rng;
use rand_distr::{Distribution, Gamma, Poisson};

use super::plan::{Baseline, StreamPlan};
use super::record::{self, Target};
use super::{
    ALB_LOGS_PER_MIN, Api, BATCH_PUT_RATIO, CLOUDFRONT_LOGS_PER_MIN, DENIED_LOGS_PER_MIN,
    GAMMA_SHAPE, INVOKE_PER_MIN, JANITOR_PER_MIN, READER_PER_MIN, SeriesKey, diurnal,
};
use crate::catalogue::APIS;
use crate::clock::{self, MINUTES_PER_DAY, Minute};
use crate::config::Config;
use crate::delivery::{Outbox, Schedule};
use crate::identity::{self, Actor};
use crate::inventory::Inventory;
use crate::rng::{self, Rand};
use crate::stream::{StreamReport, write_delivery, write_digest_chain};

/// What a stream produced.
#[derive(Debug, Default)]
pub struct Report {
    pub totals: StreamReport,
    /// Per anomaly of the stream (plan order): its series' background calls.
    pub baselines: Vec<Baseline>,
    /// Per series, calls per UTC day (injected included).
    pub series: BTreeMap<SeriesKey, BTreeMap<Minute, u64>>,
}

/// Who calls what in the background.
struct Cast {
    reader: Actor,
    etl: Actor,
    alb: Actor,
    cloudfront: Actor,
    api_gateway: Actor,
    janitor: Actor,
    monitor: Actor,
    /// One per planned anomaly.
    intruders: Vec<Actor>,
}

struct Buckets {
    lake: String,
    curated: String,
    alb_logs: String,
    cf_logs: String,
    cf_legacy: String,
    secrets: String,
}

/// What a background or injected call is, before rendering.
enum Kind {
    Data {
        api: Api,
        actor: usize,
        target: Target,
        error_code: Option<&'static str>,
        kms_key: Option<String>,
    },
    Management {
        api: Api,
        actor: usize,
    },
}

struct Stream<'a> {
    config: &'a Config,
    plan: &'a StreamPlan,
    bg: Rand,
    inject: Rand,
    files: Rand,
    inventory: Inventory,
    cast: Cast,
    buckets: Buckets,
    recon: Vec<(Api, f64)>,
    outbox: Outbox,
    delivery_days: BTreeSet<Minute>,
    report: Report,
    /// Each anomaly's baseline window and time-of-day windows.
    windows: Vec<(Span, Vec<Span>)>,
}

/// Generates and writes the whole stream.
pub fn generate(config: &Config, plan: &StreamPlan) -> Result<Report> {
    let mut s = Stream::new(config, plan);
    for minute in config.start..config.end {
        let calls = s.background(minute);
        for kind in calls {
            s.emit(minute, kind, false);
        }
        if !config.clean {
            for (i, a) in plan.anomalies.iter().enumerate() {
                for _ in 0..a.calls_at(minute) {
                    let kind = s.injected(i);
                    s.emit(minute, kind, true);
                }
            }
        }
        for (tick, records) in s.outbox.due(minute) {
            s.deliver(tick, records)?;
        }
    }
    for (tick, records) in s.outbox.drain() {
        s.deliver(tick, records)?;
    }
    let (account, region) = (plan.account.as_str(), plan.region.as_str());
    write_digest_chain(
        config,
        account,
        region,
        &mut s.files,
        &s.delivery_days,
        &mut s.report.totals,
    )?;
    s.report.totals.duplicates = s.outbox.duplicates;
    Ok(s.report)
}

fn gamma_poisson(rng: &mut Rand, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    let rate = Gamma::new(GAMMA_SHAPE, mean / GAMMA_SHAPE)
        .expect("valid gamma")
        .sample(rng);
    poisson(rng, rate)
}

fn poisson(rng: &mut Rand, mean: f64) -> u32 {
    if mean > 0.0 {
        Poisson::new(mean).expect("valid mean").sample(rng) as u32
    } else {
        0
    }
}

impl<'a> Stream<'a> {
    fn new(config: &'a Config, plan: &'a StreamPlan) -> Stream<'a> {
        let label = format!("{}/{}", plan.account, plan.region);
        let mut bg = rng::derive(config.seed, &format!("data/stream/{label}"));
        let mut inject = rng::derive(config.seed, &format!("data/inject/{label}"));
        let files = rng::derive(config.seed, &format!("data/files/{label}"));
        let inventory = Inventory::build(&mut bg, &plan.account, &plan.region);
        let private_ip =
            |r: &mut Rand| format!("10.0.{}.{}", r.random_range(0..64), r.random_range(4..250));
        let instance = |r: &mut Rand| format!("i-0{}", rng::hex(r, 16));
        let java = "[aws-sdk-java/1.12.470 Linux/5.10.219-208.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS java/17.0.9 vendor/Amazon.com_Inc. cfg/retry-mode/standard]";
        let reader_session = instance(&mut bg);
        let reader_ip = private_ip(&mut bg);
        let monitor_session = instance(&mut bg);
        let monitor_ip = private_ip(&mut bg);
        let etl_ip = private_ip(&mut bg);
        let janitor_ip = private_ip(&mut bg);
        let cast = Cast {
            reader: identity::scripted_actor(
                &mut bg,
                &format!("DataLakeReader/{reader_session}"),
                java,
                &reader_ip,
            ),
            etl: identity::scripted_actor(
                &mut bg,
                "GlueJobRole/GlueJobRunnerSession",
                &format!("{java} spark/3.3.0"),
                &etl_ip,
            ),
            alb: identity::service_actor("logdelivery.elasticloadbalancing.amazonaws.com"),
            cloudfront: identity::service_actor("delivery.logs.amazonaws.com"),
            api_gateway: identity::service_actor("apigateway.amazonaws.com"),
            janitor: identity::scripted_actor(
                &mut bg,
                "S3Janitor/s3-janitor",
                identity::UA_LAMBDA_PYTHON,
                &janitor_ip,
            ),
            monitor: identity::scripted_actor(
                &mut bg,
                &format!("MonitoringAgent/{monitor_session}"),
                "aws-sdk-go/1.44.327 (go1.20.7; linux; amd64)",
                &monitor_ip,
            ),
            intruders: plan
                .anomalies
                .iter()
                .map(|a| identity::scripted_actor(&mut inject, &a.principal, a.agent, &a.ip))
                .collect(),
        };
        let c = &inventory.company;
        let a = &plan.account;
        let r = &plan.region;
        let buckets = Buckets {
            lake: format!("{c}-data-lake-{a}-{r}"),
            curated: format!("{c}-curated-{a}-{r}"),
            alb_logs: format!("{c}-alb-logs-{a}-{r}"),
            cf_logs: format!("{c}-cloudfront-logs-{a}"),
            cf_legacy: format!("{c}-cloudfront-logs-legacy-{a}"),
            secrets: format!("{c}-secrets-backup-{a}-{r}"),
        };
        let schedule = Schedule {
            interval: config.delivery.interval,
            phase: bg.random_range(0..config.delivery.interval),
            late_share: config.delivery.late_share,
            duplicate_rate: config.delivery.duplicate_rate,
        };
        let windows = plan
            .anomalies
            .iter()
            .map(|a| {
                (
                    a.baseline_window(config.start),
                    crate::scenario::time_of_day_windows(a.start(), config.start),
                )
            })
            .collect();
        Stream {
            config,
            plan,
            bg,
            inject,
            files,
            inventory,
            cast,
            buckets,
            recon: Api::recon(),
            outbox: Outbox::new(schedule),
            delivery_days: BTreeSet::new(),
            report: Report {
                baselines: vec![Baseline::default(); plan.anomalies.len()],
                ..Report::default()
            },
            windows,
        }
    }

    /// The background calls of `minute`.
    fn background(&mut self, minute: Minute) -> Vec<Kind> {
        let w = self.plan.weight;
        let day = diurnal(minute);
        let rng = &mut self.bg;
        let mut calls = Vec::new();
        let data = |rng: &mut Rand,
                    calls: &mut Vec<Kind>,
                    n: u32,
                    api: Api,
                    actor: usize,
                    error_code: Option<&'static str>,
                    target: &dyn Fn(&mut Rand) -> Target| {
            for _ in 0..n {
                calls.push(Kind::Data {
                    api,
                    actor,
                    target: target(rng),
                    error_code,
                    kms_key: None,
                });
            }
        };
        let b = &self.buckets;
        let lake = |r: &mut Rand| object(&b.lake, lake_key(r));
        let n = gamma_poisson(rng, READER_PER_MIN * w * day);
        data(rng, &mut calls, n, Api::GetObject, READER, None, &lake);
        if let Some(run) = self
            .plan
            .batch
            .iter()
            .find(|r| (r.start..r.end).contains(&minute))
        {
            let n = gamma_poisson(rng, READER_PER_MIN * w * run.factor);
            data(rng, &mut calls, n, Api::GetObject, ETL, None, &lake);
            let date = clock::minute_label(minute)[..10].to_string();
            let curated = |r: &mut Rand| {
                object(
                    &b.curated,
                    format!(
                        "curated/dt={date}/part-{:05}-{}.snappy.parquet",
                        r.random_range(0..100_000),
                        rng::hex(r, 8)
                    ),
                )
            };
            let n = gamma_poisson(rng, READER_PER_MIN * w * BATCH_PUT_RATIO);
            data(rng, &mut calls, n, Api::PutObject, ETL, None, &curated);
        }
        let account = &self.plan.account;
        let region = &self.plan.region;
        let alb = |r: &mut Rand| {
            let stamp = clock::file_stamp(minute);
            object(
                &b.alb_logs,
                format!(
                    "AWSLogs/{account}/elasticloadbalancing/{region}/{}/{account}_elasticloadbalancing_{region}_app.web-alb.{}_{stamp}_10.0.{}.{}_{}.log.gz",
                    clock::folder_date(minute),
                    rng::hex(r, 16),
                    r.random_range(0..64),
                    r.random_range(4..250),
                    rng::alnum(r, 8).to_lowercase()
                ),
            )
        };
        let cf_key = |r: &mut Rand| {
            format!(
                "cf/E2QWRUHAPOMQZL.{}.{}.gz",
                &clock::minute_label(minute)[..13].replace('T', "-"),
                rng::hex(r, 8)
            )
        };
        let n = poisson(rng, ALB_LOGS_PER_MIN * w);
        data(rng, &mut calls, n, Api::PutObject, ALB, None, &alb);
        let n = poisson(rng, CLOUDFRONT_LOGS_PER_MIN * w);
        data(rng, &mut calls, n, Api::PutObject, CLOUDFRONT, None, &|r| {
            object(&b.cf_logs, cf_key(r))
        });
        let n = poisson(rng, DENIED_LOGS_PER_MIN * w);
        let denied = Some("AccessDenied");
        data(
            rng,
            &mut calls,
            n,
            Api::PutObject,
            CLOUDFRONT,
            denied,
            &|r| object(&b.cf_legacy, cf_key(r)),
        );
        let n = gamma_poisson(rng, INVOKE_PER_MIN * w * day);
        data(rng, &mut calls, n, Api::Invoke, API_GATEWAY, None, &|_| {
            Target::Function("orders-api".to_string())
        });
        let n = poisson(rng, JANITOR_PER_MIN * w);
        data(rng, &mut calls, n, Api::DeleteObject, JANITOR, None, &|r| {
            object(&b.lake, format!("tmp/{}.json", rng::uuid(r)))
        });
        for &(api, rate) in &self.recon {
            for _ in 0..gamma_poisson(rng, rate * w * day) {
                calls.push(Kind::Management {
                    api,
                    actor: MONITOR,
                });
            }
        }
        calls
    }

    /// One call of anomaly `i`.
    fn injected(&mut self, i: usize) -> Kind {
        let a = &self.plan.anomalies[i];
        let r = &mut self.inject;
        let b = &self.buckets;
        let actor = INTRUDER + i;
        let (target, kms_key) = match a.scenario {
            "exfil" | "mass-delete" => (object(&b.lake, lake_key(r)), None),
            "reencrypt" => (
                object(&b.lake, lake_key(r)),
                Some(format!(
                    "arn:aws:kms:{}:999988887777:key/{}",
                    self.plan.region,
                    rng::stable_token(&a.id, 8).to_lowercase()
                )),
            ),
            "invoke-storm" => (Target::Function("orders-api".to_string()), None),
            "recon" => return Kind::Management { api: a.api, actor },
            _ => (
                object(
                    &b.secrets,
                    format!("db/prod-{:04}.sql.gz", r.random_range(0..10_000)),
                ),
                None,
            ),
        };
        Kind::Data {
            api: a.api,
            actor,
            target,
            error_code: a.error_code,
            kms_key,
        }
    }

    /// Renders and posts one call; background calls count toward the anomalies' baselines.
    fn emit(&mut self, minute: Minute, kind: Kind, injected: bool) {
        let rng = if injected {
            &mut self.inject
        } else {
            &mut self.bg
        };
        let second = rng.random_range(0..60);
        let (api, error_code, bytes) = match &kind {
            Kind::Data {
                api,
                actor,
                target,
                error_code,
                kms_key,
            } => {
                let call = record::Call {
                    api: *api,
                    minute,
                    second,
                    actor: cast_actor(&self.cast, *actor),
                    error_code: *error_code,
                    target: target.clone(),
                    kms_key: kms_key.as_deref(),
                };
                let bytes = record::render(rng, &self.plan.account, &self.plan.region, &call);
                (*api, *error_code, bytes)
            }
            Kind::Management { api, actor } => {
                let Api::Management(i) = *api else {
                    unreachable!("management calls carry a catalogue API")
                };
                let call = crate::record::Call {
                    api: &APIS[i],
                    name: None,
                    minute,
                    second,
                    actor: cast_actor(&self.cast, *actor),
                    failure: None,
                };
                (
                    *api,
                    None,
                    crate::record::render(rng, &self.inventory, &call),
                )
            }
        };
        if !injected {
            for (i, a) in self.plan.anomalies.iter().enumerate() {
                if !a.matches(api, error_code) {
                    continue;
                }
                let ((from, to), tod) = &self.windows[i];
                let b = &mut self.report.baselines[i];
                b.count += u64::from((*from..*to).contains(&minute));
                b.time_of_day += u64::from(tod.iter().any(|(f, t)| (*f..*t).contains(&minute)));
            }
        }
        let t = &mut self.report.totals;
        t.records += 1;
        t.errors += u64::from(error_code.is_some());
        t.writes += u64::from(!api.read_only());
        self.outbox.post(rng, minute, second, bytes, !injected);
        let day = minute - minute.rem_euclid(MINUTES_PER_DAY);
        let mut tally = |error_code| {
            *self
                .report
                .series
                .entry(SeriesKey { api, error_code })
                .or_default()
                .entry(day)
                .or_default() += 1;
        };
        tally(None);
        if error_code.is_some() {
            tally(error_code);
        }
    }

    fn deliver(&mut self, tick: Minute, records: Vec<crate::delivery::Bytes>) -> Result<()> {
        write_delivery(
            self.config,
            &self.plan.account,
            &self.plan.region,
            &mut self.files,
            tick,
            records,
            &mut self.report.totals,
        )?;
        self.delivery_days
            .insert(tick - tick.rem_euclid(MINUTES_PER_DAY));
        Ok(())
    }
}

/// Minutes `[from, to)`.
type Span = (Minute, Minute);

/// Background actor or anomaly principal number `i`.
fn cast_actor(c: &Cast, i: usize) -> &Actor {
    match i {
        READER => &c.reader,
        ETL => &c.etl,
        ALB => &c.alb,
        CLOUDFRONT => &c.cloudfront,
        API_GATEWAY => &c.api_gateway,
        JANITOR => &c.janitor,
        MONITOR => &c.monitor,
        n => &c.intruders[n - INTRUDER],
    }
}

const READER: usize = 0;
const ETL: usize = 1;
const ALB: usize = 2;
const CLOUDFRONT: usize = 3;
const API_GATEWAY: usize = 4;
const JANITOR: usize = 5;
const MONITOR: usize = 6;
/// Anomaly i's principal is actor `INTRUDER + i`.
const INTRUDER: usize = 7;

fn object(bucket: &str, key: String) -> Target {
    Target::Object {
        bucket: bucket.to_string(),
        key,
    }
}

/// A data-lake object: a wide key space, so a bulk read touches mostly distinct objects.
fn lake_key(r: &mut Rand) -> String {
    format!(
        "raw/year=2024/month=03/part-{:06}.snappy.parquet",
        r.random_range(0..200_000)
    )
}
