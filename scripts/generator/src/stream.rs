//! One stream: one account in one region, from the first minute to the last.
//!
//! Minute by minute: draw the ordinary calls (traffic), give each a principal (identity) and
//! maybe a background error (errors), add the injected calls of this stream's anomalies, render
//! the records, post them to the outbox (delivery) and write every file whose delivery tick has
//! passed (sink). Memory stays bounded by the records awaiting delivery. A stream uses only its
//! own generator, so streams can run on any thread in any order.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::anomaly::Anomaly;
use crate::catalogue::{APIS, Caller};
use crate::clock::{self, MINUTES_PER_DAY, Minute};
use crate::config::{Account, Config};
use crate::delivery::{Bytes, Outbox, Schedule};
use crate::errors;
use crate::identity::{self, Actor, Roster};
use crate::inventory::Inventory;
use crate::layout::Trail;
use crate::record::{self, Failure};
use crate::rng::{self, Rand};
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
    for minute in config.start..config.end {
        stream.ordinary_minute(&apis, shape, minute);
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
        let scripted = spec
            .anomalies
            .iter()
            .map(|a| identity::scripted_actor(&mut rng, &a.principal, &a.agent, &a.ip))
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
                ..StreamReport::default()
            },
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
            let mut seconds: Vec<u32> = (0..calls).map(|_| self.rng.random_range(0..60)).collect();
            seconds.sort_unstable();
            for second in seconds {
                self.emit_injected(anomaly, minute, second, &actor);
            }
        }
    }

    fn emit_injected(&mut self, anomaly: &Anomaly, minute: Minute, second: u32, actor: &Actor) {
        let call = record::Call {
            api: &APIS[anomaly.api],
            minute,
            second,
            actor,
            failure: anomaly.failure.clone(),
        };
        self.post(&call, false);
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
            let (from, to) = anomaly.baseline_window(self.config.start);
            if (from..to).contains(&minute) && anomaly.matches(api, failure.as_ref()) {
                self.report.baseline[i] += 1;
            }
        }
        let call = record::Call {
            api: &APIS[api],
            minute,
            second,
            actor,
            failure,
        };
        self.post(&call, may_duplicate);
    }

    fn post(&mut self, call: &record::Call, may_duplicate: bool) {
        let bytes = record::render(&mut self.rng, &self.inventory, call);
        self.report.records += 1;
        self.report.errors += u64::from(call.failure.is_some());
        self.report.writes += u64::from(!call.api.read_only);
        self.outbox.post(
            &mut self.rng,
            call.minute,
            call.second,
            bytes,
            may_duplicate,
        );
    }

    fn trail(&self) -> &Trail {
        &self.config.trail
    }

    /// Writes the records delivered at `tick`, shuffled, in files of at most
    /// `max_records_per_file` records.
    fn deliver(&mut self, tick: Minute, mut records: Vec<Bytes>) -> Result<()> {
        records.shuffle(&mut self.rng);
        for chunk in records.chunks(self.config.max_records_per_file) {
            let unique = rng::alnum(&mut self.rng, 16);
            let key = self
                .trail()
                .log_key(&self.spec.account.id, self.spec.region, tick, &unique);
            let json = sink::log_json(chunk);
            let gz = sink::gzip(&json, self.config.gzip_level);
            sink::write_object(&self.config.out, &key, &gz)?;
            self.report.log_files += 1;
            self.report.json_bytes += json.len() as u64;
            self.report.gzip_bytes += gz.len() as u64;
        }
        self.delivery_days
            .insert(tick - tick.rem_euclid(MINUTES_PER_DAY));
        Ok(())
    }

    /// One digest per day with data or deliveries, each chained to the previous one.
    fn write_digests(&mut self) -> Result<()> {
        let mut days: BTreeSet<Minute> = (self.config.start..self.config.end)
            .step_by(MINUTES_PER_DAY as usize)
            .collect();
        days.extend(self.delivery_days.iter().copied());
        let mut previous: Option<String> = None;
        for day in days {
            let second = self.rng.random_range(0..60);
            let (key, bytes) = self.digest(day, second, previous.take());
            write_digest(&self.config.out, &key, &bytes)?;
            self.report.digest_files += 1;
            previous = Some(key);
        }
        Ok(())
    }

    fn digest(&mut self, day: Minute, second: u32, previous: Option<String>) -> (String, Vec<u8>) {
        let account = &self.spec.account.id;
        let end = day + MINUTES_PER_DAY - 1;
        let key = self
            .trail()
            .digest_key(account, self.spec.region, end, second);
        let bucket = self.trail().bucket.clone();
        let chained = previous.is_some();
        let digest = Digest {
            aws_account_id: account.clone(),
            digest_start_time: clock::event_time(day, 0),
            digest_end_time: clock::event_time(end, second),
            digest_s3_bucket: bucket.clone(),
            digest_s3_object: key.clone(),
            digest_public_key_fingerprint: rng::hex(&mut self.rng, 32),
            digest_signature_algorithm: "SHA256withRSA",
            newest_event_time: None,
            oldest_event_time: None,
            previous_digest_s3_bucket: chained.then_some(bucket),
            previous_digest_s3_object: previous,
            previous_digest_hash_value: chained.then(|| rng::hex(&mut self.rng, 64)),
            previous_digest_hash_algorithm: chained.then_some("SHA-256"),
            previous_digest_signature: chained.then(|| rng::hex(&mut self.rng, 512)),
            log_files: Vec::new(),
        };
        let bytes = serde_json::to_vec(&digest).expect("digests serialise");
        (key, sink::gzip(&bytes, self.config.gzip_level))
    }
}

fn write_digest(root: &Path, key: &str, bytes: &[u8]) -> Result<()> {
    sink::write_object(root, key, bytes)
}

fn pick_class(rng: &mut Rand, callers: &[(Caller, u8)]) -> Caller {
    let weights: Vec<f64> = callers.iter().map(|(_, w)| f64::from(*w)).collect();
    callers[rng::weighted(rng, &weights)].0
}
