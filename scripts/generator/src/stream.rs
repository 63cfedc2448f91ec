//! One stream: one account in one region, from the first minute to the last.
//!
//! Minute by minute: draw the ordinary calls (traffic), give each a principal (identity) and
//! maybe a background error (errors), add the injected calls of this stream's anomalies, render
//! the records, post them to the outbox (delivery) and write every file whose delivery tick has
//! passed (sink). Memory stays bounded by the records awaiting delivery. A stream uses only its
//! own generator, so streams can run on any thread in any order.
//!
//! With `--preset eval` a stream also plays its planned routines ([`crate::routine`]), and the
//! injected calls and the file layout draw from generators of their own, so the ordinary
//! records (eventIDs included) are identical with and without anomalies (`--clean`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::anomaly::Anomaly;
use crate::catalogue::{APIS, Caller, EventKind};
use crate::clock::{self, MINUTES_PER_DAY, Minute};
use crate::config::{Account, Config};
use crate::delivery::{Bytes, Outbox, Schedule};
use crate::errors;
use crate::identity::{self, Actor, Roster};
use crate::inventory::Inventory;
use crate::record::{self, Failure};
use crate::rng::{self, Rand};
use crate::routine::{self, Routines, Who};
use crate::sink::{self, Digest};
use crate::traffic::{self, Shape};

/// What a stream produced.
#[derive(Debug, Default, Clone)]
pub struct StreamReport {
    /// Distinct records (events).
    pub records: u64,
    /// Extra deliveries of already delivered records.
    pub duplicates: u64,
    /// Records with an errorCode, and write (readOnly false) records.
    pub errors: u64,
    pub writes: u64,
    pub log_files: u64,
    pub digest_files: u64,
    pub json_bytes: u64,
    pub gzip_bytes: u64,
    /// Baseline events counted for each anomaly of the stream, in the stream's anomaly order.
    pub baseline: Vec<u64>,
    /// The same over each anomaly's time-of-day baseline (`eval` only).
    pub baseline_time_of_day: Vec<u64>,
    /// `eval` only: per series, events per UTC day (see [`SeriesKey`]).
    pub series: BTreeMap<SeriesKey, BTreeMap<Minute, u64>>,
}

/// A series as an Insights detector counts it: write calls of an API (`error_code` None) or
/// calls of an API failing with one error code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesKey {
    pub event_source: &'static str,
    pub event_name: &'static str,
    pub error_code: Option<String>,
}

/// One account in one region, with the anomalies placed in it.
pub struct StreamSpec<'a> {
    pub account: &'a Account,
    pub region: &'a str,
    pub anomalies: Vec<&'a Anomaly>,
}

struct Stream<'a> {
    config: &'a Config,
    spec: &'a StreamSpec<'a>,
    rng: Rand,
    roster: Roster,
    inventory: Inventory,
    scripted: Vec<Actor>,
    outbox: Outbox,
    delivery_days: BTreeSet<Minute>,
    report: StreamReport,
    /// `eval`: the generator of injected calls, apart from the ordinary one.
    inject_rng: Option<Rand>,
    /// `eval`: the generator of file order, names and digests.
    files_rng: Option<Rand>,
    routines: Routines,
    next_routine: usize,
    session_actors: Vec<Option<Actor>>,
    /// Each anomaly's time-of-day baseline windows (`eval` only).
    time_of_day: Vec<Vec<(Minute, Minute)>>,
}

/// `n` long-tail APIs for a stream calling `apis`: the catalogued write API calls among them in
/// turn, each under its name and a number (`CreateTags02`, `CreateTags03`, ...).
fn long_tail_apis(apis: &[usize], n: usize) -> Vec<(usize, String)> {
    let writes: Vec<usize> = apis
        .iter()
        .copied()
        .filter(|&i| {
            let api = &APIS[i];
            !api.read_only && api.kind == EventKind::ApiCall && api.pattern.is_ordinary()
        })
        .collect();
    if writes.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|k| {
            let api = writes[k % writes.len()];
            (
                api,
                format!("{}{:02}", APIS[api].name, k / writes.len() + 2),
            )
        })
        .collect()
}

/// Generates and writes the whole stream.
pub fn generate(config: &Config, spec: &StreamSpec) -> Result<StreamReport> {
    let mut stream = Stream::new(config, spec);
    let apis: Vec<usize> = (0..APIS.len())
        .filter(|&i| APIS[i].recorded_in(spec.region))
        .collect();
    let shape = Shape {
        volume: config.volume * spec.account.size * config.region_weight(spec.account, spec.region),
        utc_offset: spec.account.utc_offset,
    };
    let long_tail = long_tail_apis(&apis, config.long_tail.apis);
    let mut long_tail_rng = rng::derive(
        config.seed,
        &format!("long-tail/{}/{}", spec.account.id, spec.region),
    );
    for minute in config.start..config.end {
        stream.ordinary_minute(&apis, shape, minute);
        for (k, second) in traffic::long_tail_in_minute(
            &mut long_tail_rng,
            long_tail.len(),
            config.long_tail.per_day,
        ) {
            let (api, name) = &long_tail[k];
            stream.emit_long_tail(*api, name, minute, second);
        }
        stream.routine_minute(minute);
        stream.injected_minute(minute);
        for (tick, records) in stream.outbox.due(minute) {
            stream.deliver(tick, records)?;
        }
    }
    for (tick, records) in stream.outbox.drain() {
        stream.deliver(tick, records)?;
    }
    stream.write_digests()?;
    stream.report.duplicates = stream.outbox.duplicates;
    Ok(stream.report)
}

impl<'a> Stream<'a> {
    fn new(config: &'a Config, spec: &'a StreamSpec<'a>) -> Stream<'a> {
        let mut rng = rng::derive(
            config.seed,
            &format!("stream/{}/{}", spec.account.id, spec.region),
        );
        let roster = Roster::build(&mut rng, &spec.account.id, spec.region);
        let inventory = Inventory::build(&mut rng, &spec.account.id, spec.region);
        let eval = config.preset.is_eval();
        let label = format!("{}/{}", spec.account.id, spec.region);
        let mut inject_rng =
            eval.then(|| rng::derive(config.seed, &format!("eval/inject/{label}")));
        let files_rng = eval.then(|| rng::derive(config.seed, &format!("eval/files/{label}")));
        let scripted = spec
            .anomalies
            .iter()
            .map(|a| {
                let r = inject_rng.as_mut().unwrap_or(&mut rng);
                identity::scripted_actor(r, &a.principal, &a.agent, &a.ip)
            })
            .collect();
        let routines = if eval {
            routine::plan(config.seed, spec.account, spec.region, config.span())
        } else {
            Routines::default()
        };
        let time_of_day = spec
            .anomalies
            .iter()
            .map(|a| {
                if eval {
                    crate::scenario::time_of_day_windows(a.start(), config.start)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let schedule = Schedule {
            interval: config.delivery.interval,
            phase: rng.random_range(0..config.delivery.interval),
            late_share: config.delivery.late_share,
            duplicate_rate: config.delivery.duplicate_rate,
        };
        Stream {
            config,
            spec,
            rng,
            roster,
            inventory,
            scripted,
            outbox: Outbox::new(schedule),
            delivery_days: BTreeSet::new(),
            report: StreamReport {
                baseline: vec![0; spec.anomalies.len()],
                baseline_time_of_day: vec![0; spec.anomalies.len()],
                ..StreamReport::default()
            },
            inject_rng,
            files_rng,
            session_actors: vec![None; routines.sessions.len()],
            routines,
            next_routine: 0,
            time_of_day,
        }
    }

    /// The generator of injected calls: its own under `eval`, else the stream's.
    fn anomaly_rng(&mut self) -> &mut Rand {
        self.inject_rng.as_mut().unwrap_or(&mut self.rng)
    }

    /// Plays the routine calls planned for `minute`.
    fn routine_minute(&mut self, minute: Minute) {
        while let Some(call) = self.routines.calls.get(self.next_routine) {
            if call.minute != minute {
                break;
            }
            let call = call.clone();
            self.next_routine += 1;
            let (actor, class) = match call.who {
                Who::Class(class) => (self.roster.pick(&mut self.rng, class), class),
                Who::Session(i) => {
                    let class = self.routines.sessions[i];
                    if self.session_actors[i].is_none() {
                        self.session_actors[i] = Some(self.roster.pick(&mut self.rng, class));
                    }
                    (self.session_actors[i].clone().expect("just set"), class)
                }
            };
            let failure = match call.failure {
                Some(f) => Some(f),
                None if call.background_errors => {
                    errors::background(&mut self.rng, &APIS[call.api], class)
                }
                None => None,
            };
            self.emit(call.api, minute, call.second, &actor, failure, true);
        }
    }

    fn ordinary_minute(&mut self, apis: &[usize], shape: Shape, minute: Minute) {
        let anomalies = &self.spec.anomalies;
        let calls = traffic::calls_in_minute(&mut self.rng, apis, shape, minute, |api| {
            anomalies.iter().any(|a| a.suppresses(api, minute))
        });
        for call in calls {
            let class = pick_class(&mut self.rng, APIS[call.api].callers);
            let actor = self.roster.pick(&mut self.rng, class);
            let failure = errors::background(&mut self.rng, &APIS[call.api], class);
            self.emit(call.api, minute, call.second, &actor, failure, true);
        }
    }

    /// One call of a long-tail API: rendered as `api` under `name`, by a caller of `api`'s
    /// classes, with its background errors.
    fn emit_long_tail(&mut self, api: usize, name: &str, minute: Minute, second: u32) {
        let class = pick_class(&mut self.rng, APIS[api].callers);
        let actor = self.roster.pick(&mut self.rng, class);
        let failure = errors::background(&mut self.rng, &APIS[api], class);
        let call = record::Call {
            api: &APIS[api],
            name: Some(name),
            minute,
            second,
            actor: &actor,
            failure,
        };
        self.post(&call, true, false);
    }

    fn injected_minute(&mut self, minute: Minute) {
        for (i, anomaly) in self.spec.anomalies.iter().enumerate() {
            if anomaly.history_at(minute) {
                let class = pick_class(&mut self.rng, APIS[anomaly.api].callers);
                let actor = self.roster.pick(&mut self.rng, class);
                let second = self.rng.random_range(0..60);
                self.emit(anomaly.api, minute, second, &actor, None, false);
            }
            let calls = anomaly.calls_at(minute);
            if calls == 0 {
                continue;
            }
            let actor = self.scripted[i].clone();
            let rng = self.anomaly_rng();
            let mut seconds: Vec<u32> = (0..calls).map(|_| rng.random_range(0..60)).collect();
            seconds.sort_unstable();
            for second in seconds {
                self.emit_injected(anomaly, minute, second, &actor);
            }
        }
    }

    fn emit_injected(&mut self, anomaly: &Anomaly, minute: Minute, second: u32, actor: &Actor) {
        let call = record::Call {
            api: &APIS[anomaly.api],
            name: None,
            minute,
            second,
            actor,
            failure: anomaly.failure.clone(),
        };
        self.post(&call, false, true);
    }

    /// Renders and posts an ordinary or scripted call, counting it towards anomaly baselines.
    fn emit(
        &mut self,
        api: usize,
        minute: Minute,
        second: u32,
        actor: &Actor,
        failure: Option<Failure>,
        may_duplicate: bool,
    ) {
        for (i, anomaly) in self.spec.anomalies.iter().enumerate() {
            if !anomaly.matches(api, failure.as_ref()) {
                continue;
            }
            let (from, to) = anomaly.baseline_window(self.config.start);
            if (from..to).contains(&minute) {
                self.report.baseline[i] += 1;
            }
            if self.time_of_day[i]
                .iter()
                .any(|(from, to)| (*from..*to).contains(&minute))
            {
                self.report.baseline_time_of_day[i] += 1;
            }
        }
        let call = record::Call {
            api: &APIS[api],
            name: None,
            minute,
            second,
            actor,
            failure,
        };
        self.post(&call, may_duplicate, false);
    }

    /// Renders and posts a call; `injected` calls draw from the injection generator.
    fn post(&mut self, call: &record::Call, may_duplicate: bool, injected: bool) {
        let rng = match (&mut self.inject_rng, injected) {
            (Some(r), true) => r,
            _ => &mut self.rng,
        };
        let bytes = record::render(rng, &self.inventory, call);
        self.report.records += 1;
        self.report.errors += u64::from(call.failure.is_some());
        self.report.writes += u64::from(!call.api.read_only);
        self.outbox
            .post(rng, call.minute, call.second, bytes, may_duplicate);
        if self.config.preset.is_eval() {
            let day = call.minute - call.minute.rem_euclid(MINUTES_PER_DAY);
            let mut tally = |error_code: Option<String>| {
                let key = SeriesKey {
                    event_source: call.api.source(),
                    event_name: call.api.name,
                    error_code,
                };
                *self
                    .report
                    .series
                    .entry(key)
                    .or_default()
                    .entry(day)
                    .or_default() += 1;
            };
            if !call.api.read_only {
                tally(None);
            }
            if let Some(f) = &call.failure {
                tally(Some(f.code.clone()));
            }
        }
    }

    /// Writes the records delivered at `tick` (see [`write_delivery`]).
    fn deliver(&mut self, tick: Minute, records: Vec<Bytes>) -> Result<()> {
        let rng = match &mut self.files_rng {
            Some(r) => r,
            None => &mut self.rng,
        };
        write_delivery(
            self.config,
            &self.spec.account.id,
            self.spec.region,
            rng,
            tick,
            records,
            &mut self.report,
        )?;
        self.delivery_days
            .insert(tick - tick.rem_euclid(MINUTES_PER_DAY));
        Ok(())
    }

    /// One digest per day with data or deliveries (see [`write_digest_chain`]).
    fn write_digests(&mut self) -> Result<()> {
        let rng = match &mut self.files_rng {
            Some(r) => r,
            None => &mut self.rng,
        };
        write_digest_chain(
            self.config,
            &self.spec.account.id,
            self.spec.region,
            rng,
            &self.delivery_days,
            &mut self.report,
        )
    }
}

/// Writes the records delivered at `tick`, shuffled, in files of at most
/// `max_records_per_file` records, counting them in `report`.
pub fn write_delivery(
    config: &Config,
    account: &str,
    region: &str,
    rng: &mut Rand,
    tick: Minute,
    mut records: Vec<Bytes>,
    report: &mut StreamReport,
) -> Result<()> {
    records.shuffle(rng);
    for chunk in records.chunks(config.max_records_per_file) {
        let unique = rng::alnum(rng, 16);
        let key = config.trail.log_key(account, region, tick, &unique);
        let json = sink::log_json(chunk);
        let gz = sink::gzip(&json, config.gzip_level);
        sink::write_object(&config.out, &key, &gz)?;
        report.log_files += 1;
        report.json_bytes += json.len() as u64;
        report.gzip_bytes += gz.len() as u64;
    }
    Ok(())
}

/// One digest per day of the data and per day with deliveries, each chained to the previous
/// one.
pub fn write_digest_chain(
    config: &Config,
    account: &str,
    region: &str,
    rng: &mut Rand,
    delivery_days: &BTreeSet<Minute>,
    report: &mut StreamReport,
) -> Result<()> {
    let mut days: BTreeSet<Minute> = (config.start..config.end)
        .step_by(MINUTES_PER_DAY as usize)
        .collect();
    days.extend(delivery_days.iter().copied());
    let mut previous: Option<String> = None;
    for day in days {
        let second = rng.random_range(0..60);
        let (key, bytes) = digest(config, account, region, rng, day, second, previous.take());
        write_digest(&config.out, &key, &bytes)?;
        report.digest_files += 1;
        previous = Some(key);
    }
    Ok(())
}

fn digest(
    config: &Config,
    account: &str,
    region: &str,
    rng: &mut Rand,
    day: Minute,
    second: u32,
    previous: Option<String>,
) -> (String, Vec<u8>) {
    let end = day + MINUTES_PER_DAY - 1;
    let key = config.trail.digest_key(account, region, end, second);
    let bucket = config.trail.bucket.clone();
    let chained = previous.is_some();
    let digest = Digest {
        aws_account_id: account.to_string(),
        digest_start_time: clock::event_time(day, 0),
        digest_end_time: clock::event_time(end, second),
        digest_s3_bucket: bucket.clone(),
        digest_s3_object: key.clone(),
        digest_public_key_fingerprint: rng::hex(rng, 32),
        digest_signature_algorithm: "SHA256withRSA",
        newest_event_time: None,
        oldest_event_time: None,
        previous_digest_s3_bucket: chained.then_some(bucket),
        previous_digest_s3_object: previous,
        previous_digest_hash_value: chained.then(|| rng::hex(rng, 64)),
        previous_digest_hash_algorithm: chained.then_some("SHA-256"),
        previous_digest_signature: chained.then(|| rng::hex(rng, 512)),
        log_files: Vec::new(),
    };
    let bytes = serde_json::to_vec(&digest).expect("digests serialise");
    (key, sink::gzip(&bytes, config.gzip_level))
}

fn write_digest(root: &Path, key: &str, bytes: &[u8]) -> Result<()> {
    sink::write_object(root, key, bytes)
}

fn pick_class(rng: &mut Rand, callers: &[(Caller, u8)]) -> Caller {
    let weights: Vec<f64> = callers.iter().map(|(_, w)| f64::from(*w)).collect();
    callers[rng::weighted(rng, &weights)].0
}
