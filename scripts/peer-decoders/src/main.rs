//! `peer-decoders DIR [MB] [data]`: the peers of trailsight's JSON walker on the same files
//! (`scripts/bench --peers`). Gunzips the first MB (default 200) megabytes of JSON of the
//! CloudTrail objects under DIR (sorted by path, as `examples/bench.rs decode` takes them) into
//! memory, then, on one thread, five passes each (the fastest printed, in MB/s of JSON), reads
//! from every record the fields trailsight reads: eventTime, eventSource, eventName, awsRegion,
//! recipientAccountId, eventID, eventType, eventCategory, managementEvent, readOnly, errorCode,
//! userAgent, userIdentity.arn and .invokedBy, and with `data` resources[].ARN, with
//! - `sonic-rs lazy`: sonic-rs's skipping iterators (`to_array_iter`, `to_object_iter`): each
//!   unused value skipped by its SIMD skipper, the kept ones read in place;
//! - `sonic-rs serde`: sonic-rs's serde deserializer into borrowed structs (unknown fields
//!   skipped by the same skipper);
//! - `simd-json serde`: simd-json's tape (stage 1 and 2 over the whole file) read into the same
//!   structs; simd-json parses in place, so each pass copies the text first (the copy is timed).
//!
//! Prints `NAME MB/s CPU-MB/s records fields` per peer (wall, then the thread's CPU time); `fields` counts the kept values that were
//! present, so the peers can be checked against each other.

use serde::Deserialize;
use sonic_rs::JsonValueTrait;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = PathBuf::from(args.first().expect("usage: peer-decoders DIR [MB] [data]"));
    let megabytes: u64 = args.get(1).map_or(200, |mb| mb.parse().expect("MB"));
    let data = args.get(2).is_some_and(|a| a == "data");
    let mut objects = Vec::new();
    log_objects(&dir, &mut objects);
    objects.sort();
    let mut texts = Vec::new();
    let mut total = 0u64;
    for path in &objects {
        if total >= megabytes << 20 {
            break;
        }
        let mut json = Vec::new();
        let bytes = std::fs::read(path).expect("readable object");
        std::io::Read::read_to_end(
            &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
            &mut json,
        )
        .expect("gzip");
        total += json.len() as u64;
        texts.push(json);
    }
    let peers: [(&str, fn(&[Vec<u8>], bool) -> (u64, u64)); 3] = [
        ("sonic-rs-lazy", sonic_lazy),
        ("sonic-rs-serde", sonic_serde),
        ("simd-json-serde", simd_serde),
    ];
    for (name, run) in peers {
        let (mut fastest, mut fastest_cpu) = (f64::MAX, f64::MAX);
        let mut counts = (0, 0);
        for _ in 0..5 {
            let (started, cpu) = (Instant::now(), thread_cpu_seconds());
            counts = std::hint::black_box(run(&texts, data));
            fastest = fastest.min(started.elapsed().as_secs_f64());
            fastest_cpu = fastest_cpu.min(thread_cpu_seconds() - cpu);
        }
        let mb = total as f64 / 1e6;
        println!(
            "{name} {:.0} {:.0} {} {}",
            mb / fastest,
            mb / fastest_cpu,
            counts.0,
            counts.1
        );
    }
}

fn log_objects(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            log_objects(&path, out);
        } else if path.to_string_lossy().ends_with(".json.gz")
            && path.components().any(|c| c.as_os_str() == "CloudTrail")
        {
            out.push(path);
        }
    }
}

const KEPT: [&str; 12] = [
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "recipientAccountId",
    "eventID",
    "eventType",
    "eventCategory",
    "managementEvent",
    "readOnly",
    "errorCode",
    "userAgent",
];

/// sonic-rs's lazy iterators: (records, kept values present).
fn sonic_lazy(texts: &[Vec<u8>], data: bool) -> (u64, u64) {
    let (mut records, mut fields) = (0, 0);
    for json in texts {
        let list = sonic_rs::get(json.as_slice(), &["Records"]).expect("a Records array");
        for record in sonic_rs::to_array_iter(list.as_raw_str()) {
            let record = record.expect("a record");
            records += 1;
            for member in sonic_rs::to_object_iter(record.as_raw_str()) {
                let (key, value) = member.expect("a member");
                let key: &str = &key;
                if KEPT.contains(&key) {
                    fields += u64::from(value.as_str().is_some() || value.as_bool().is_some());
                } else if key == "userIdentity" {
                    for member in sonic_rs::to_object_iter(value.as_raw_str()) {
                        let (key, value) = member.expect("a member");
                        if &*key == "arn" || &*key == "invokedBy" {
                            fields += u64::from(value.as_str().is_some());
                        }
                    }
                } else if data && key == "resources" {
                    for resource in sonic_rs::to_array_iter(value.as_raw_str()) {
                        let resource = resource.expect("a resource");
                        if let Ok(arn) = sonic_rs::get(resource.as_raw_str(), &["ARN"]) {
                            fields += u64::from(arn.as_str().is_some());
                        }
                    }
                }
            }
        }
    }
    (records, fields)
}

/// A file's records with the kept fields; `$resources` is how `resources` is read.
macro_rules! file_type {
    ($file:ident, $record:ident, $count:expr, $($resources:tt)*) => {
        #[derive(Deserialize)]
        struct $file<'a> {
            #[serde(rename = "Records", borrow)]
            records: Vec<$record<'a>>,
        }

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct $record<'a> {
            #[serde(borrow)]
            event_time: Option<Cow<'a, str>>,
            #[serde(borrow)]
            event_source: Option<Cow<'a, str>>,
            #[serde(borrow)]
            event_name: Option<Cow<'a, str>>,
            #[serde(borrow)]
            aws_region: Option<Cow<'a, str>>,
            #[serde(borrow)]
            recipient_account_id: Option<Cow<'a, str>>,
            #[serde(rename = "eventID", borrow)]
            event_id: Option<Cow<'a, str>>,
            #[serde(borrow)]
            event_type: Option<Cow<'a, str>>,
            #[serde(borrow)]
            event_category: Option<Cow<'a, str>>,
            management_event: Option<bool>,
            read_only: Option<bool>,
            #[serde(borrow)]
            error_code: Option<Cow<'a, str>>,
            #[serde(borrow)]
            user_agent: Option<Cow<'a, str>>,
            #[serde(borrow)]
            user_identity: Option<Identity<'a>>,
            $($resources)*
        }

        impl<'a> $file<'a> {
            fn tally(&self) -> (u64, u64) {
                let mut fields = 0;
                for r in &self.records {
                    let strings = [
                        &r.event_time,
                        &r.event_source,
                        &r.event_name,
                        &r.aws_region,
                        &r.recipient_account_id,
                        &r.event_id,
                        &r.event_type,
                        &r.event_category,
                        &r.error_code,
                        &r.user_agent,
                    ];
                    fields += strings.iter().filter(|s| s.is_some()).count() as u64;
                    fields += u64::from(r.management_event.is_some());
                    fields += u64::from(r.read_only.is_some());
                    if let Some(id) = &r.user_identity {
                        fields += u64::from(id.arn.is_some()) + u64::from(id.invoked_by.is_some());
                    }
                    let count: fn(&$record<'a>) -> u64 = $count;
                    fields += count(r);
                }
                (self.records.len() as u64, fields)
            }
        }
    };
}

file_type!(FileM, RecordM, |_| 0,);
file_type!(FileD, RecordD, |r| r.resources.as_ref().map_or(0, |arns| {
    arns.iter().filter(|a| a.arn.is_some()).count() as u64
}), #[serde(borrow)] resources: Option<Vec<Arn<'a>>>,);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    #[serde(borrow)]
    arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    invoked_by: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Arn<'a> {
    #[serde(rename = "ARN", borrow)]
    arn: Option<Cow<'a, str>>,
}

fn sonic_serde(texts: &[Vec<u8>], data: bool) -> (u64, u64) {
    let (mut records, mut fields) = (0, 0);
    for json in texts {
        let (r, f) = if data {
            sonic_rs::from_slice::<FileD>(json).expect("a file").tally()
        } else {
            sonic_rs::from_slice::<FileM>(json).expect("a file").tally()
        };
        records += r;
        fields += f;
    }
    (records, fields)
}

fn simd_serde(texts: &[Vec<u8>], data: bool) -> (u64, u64) {
    let (mut records, mut fields) = (0, 0);
    let mut copy = Vec::new();
    for json in texts {
        copy.clear();
        copy.extend_from_slice(json);
        let (r, f) = if data {
            simd_json::serde::from_slice::<FileD>(&mut copy)
                .expect("a file")
                .tally()
        } else {
            simd_json::serde::from_slice::<FileM>(&mut copy)
                .expect("a file")
                .tally()
        };
        records += r;
        fields += f;
    }
    (records, fields)
}

/// This thread's CPU time in seconds (a shared machine deschedules it often).
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write; the clock is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}
