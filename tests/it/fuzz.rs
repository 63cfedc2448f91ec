//! A structure-aware fuzzer for `trailsight::decode::decode_object`: bytes in, a result out,
//! never a panic, and the result consistent with itself.
//!
//! Inputs are generated from a seeded PRNG: CloudTrail-shaped files whose fields take random
//! types (strings, numbers, bools, null, objects, arrays), random times (valid, zoned, without a
//! zone, out of range, garbage), unicode and escapes, deep nesting, other top-level shapes; then
//! gzip'd (one or several members) or not, and then, often, damaged: truncated, bit-flipped,
//! spliced, padded with garbage. Raw random bytes are mixed in, and so are the committed hostile
//! cases (tests/hostile/corpus/), damaged the same way. Every result is checked:
//! - `Ok`: no more events than records; write/error counts match the events' flags; every symbol
//!   index is in the table; accounts and regions are valid; every event is inside the window
//!   and its account/region has a coverage minute no later than it; bad + out-of-scope + Insight
//!   records + events never exceed the records.
//! - When the input is valid JSON (checked with serde_json's DOM) of shape `{"Records":[...]}`,
//!   the decoder must accept it and count exactly the array's length.
//! - `Err`: a known, non-empty reason and message.
//! - The container skipper (`decode::structure`) answers the same at every dispatch level
//!   (portable, SSE2, AVX2 where the CPU has it) for the first objects and arrays of the JSON.
//!
//! In `cargo test` it runs a fixed number of cases from a fixed seed (reproducible, well under a
//! minute). `scripts/fuzz --minutes N` runs it for N minutes from a fresh seed
//! (`TRAILSIGHT_FUZZ_SECONDS`, `TRAILSIGHT_FUZZ_SEED`), printing executions and crashes; a
//! failing input is saved under `target/fuzz-crashes/` with its seed and case number.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use trailsight::decode::{
    DEFAULT_MAX_OBJECT_BYTES, DecodeOptions, DecodedObject, NO_SYM, decode_object, flags,
};
use trailsight::model::{DayRange, Window, parse_day};
use trailsight::source::layout::{self, PartitionFilter};

/// Cases run by `cargo test` (a fixed seed, so a failure reproduces).
const CI_CASES: u64 = 20_000;
const CI_SEED: u64 = 0x7a11_5167_u64;

/// splitmix64: small, fast, and the same on every platform.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(crate) fn chance(&mut self, in_: u64) -> bool {
        self.below(in_) == 0
    }
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FIELDS: [&str; 14] = [
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
    "userIdentity",
    "requestParameters",
];

const STRINGS: [&str; 24] = [
    "",
    "2019-11-07T13:25:41Z",
    "2019-11-07T13:25:41.123Z",
    "2019-11-07T14:25:41+01:00",
    "2019-11-07T13:25:41",
    "1970-01-01T00:00:00Z",
    "2999-12-31T23:59:59Z",
    "2019-02-30T00:00:00Z",
    "+275760-09-13T00:00:00Z",
    "123456789012",
    "us-east-1",
    "../../etc",
    "ec2.amazonaws.com",
    "RunInstances",
    "false",
    "true",
    "FALSE",
    "AwsCloudTrailInsight",
    "Management",
    "AccessDenied",
    "arn:aws:sts::123456789012:assumed-role/R/s",
    "ab8bd7e3-6e25-4bd3-b8b3-a1c2f7f1c4f0",
    "\u{1F600}\u{202e}日本\u{0}",
    "\\ud800",
];

/// A JSON string literal: a known string, random unicode, escapes, or a long run.
pub(crate) fn string(rng: &mut Rng) -> String {
    match rng.below(6) {
        0..=2 => serde_json::to_string(rng.pick(&STRINGS)).unwrap(),
        3 => {
            let s: String = (0..rng.below(12))
                .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}'))
                .collect();
            serde_json::to_string(&s).unwrap()
        }
        4 if rng.chance(8) => rng.pick(&[r#""\ud800""#, r#""\udc00\ud800x""#]).to_string(),
        4 => r#""\u0041\n\t\\\"\/\ud83d\ude00\u00e9""#.to_owned(),
        _ => format!("\"{}\"", "x".repeat(rng.below(5000) as usize)),
    }
}

/// A JSON value of a random type; `depth` bounds the nesting.
pub(crate) fn value(rng: &mut Rng, depth: u32) -> String {
    let kinds = if depth == 0 { 6 } else { 8 };
    match rng.below(kinds) {
        0 | 1 => string(rng),
        2 => rng.pick(&["true", "false", "null"]).to_string(),
        3 => rng
            .pick(&[
                "0",
                "-1",
                "123456789012",
                "1.5e300",
                "-0.0",
                "18446744073709551616",
            ])
            .to_string(),
        4 => (rng.next() as i64).to_string(),
        5 => format!("{}", f64::from_bits(rng.next() & 0x7fef_ffff_ffff_ffff)),
        6 => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| value(rng, depth - 1)).collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let items: Vec<String> = (0..rng.below(4))
                .map(|_| format!("{}:{}", key(rng), value(rng, depth - 1)))
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

fn key(rng: &mut Rng) -> String {
    if rng.chance(2) {
        format!("\"{}\"", rng.pick(&FIELDS))
    } else {
        string(rng)
    }
}

/// A record: mostly plausible fields, each with a plausible or a random value. Half the
/// records are nearly valid (a field rarely missing or odd), so events are produced too.
fn record(rng: &mut Rng) -> String {
    if rng.chance(12) {
        return value(rng, 3);
    }
    let odds = if rng.chance(2) { 40 } else { 4 };
    let mut fields = Vec::new();
    for field in FIELDS {
        if rng.chance(odds + 2) {
            continue;
        }
        let v = match (field, rng.below(odds)) {
            (_, 0) => value(rng, 3),
            ("eventTime", _) if rng.chance(2) => "\"2019-11-07T13:25:41Z\"".into(),
            ("eventTime", _) => serde_json::to_string(rng.pick(&STRINGS[1..9])).unwrap(),
            ("eventName" | "eventSource", _) if rng.chance(2) => "\"RunInstances\"".into(),
            ("eventType", _) if rng.chance(2) => "\"AwsApiCall\"".into(),
            ("eventCategory", _) if rng.chance(2) => "\"Management\"".into(),
            ("errorCode", _) if rng.chance(2) => "\"AccessDenied\"".into(),
            ("recipientAccountId", _) => "\"123456789012\"".into(),
            ("awsRegion", _) => "\"us-east-1\"".into(),
            ("readOnly", _) => rng
                .pick(&["false", "false", "true", "\"false\""])
                .to_string(),
            ("managementEvent", _) => rng.pick(&["true", "true", "false", "\"true\""]).to_string(),
            ("userIdentity", _) => format!(
                r#"{{"type":"AssumedRole","arn":{},"invokedBy":{}}}"#,
                string(rng),
                string(rng)
            ),
            _ => string(rng),
        };
        fields.push(format!("\"{field}\":{v}"));
    }
    for _ in 0..rng.below(3) {
        let key = if odds > 4 { string(rng) } else { key(rng) };
        fields.push(format!("{key}:{}", value(rng, 4)));
    }
    format!("{{{}}}", fields.join(","))
}

/// A whole file's JSON text, in one of the shapes the decoder may meet. The second value says
/// whether it was built to be `{"Records":[...]}` with nesting the parser accepts.
fn file_json(rng: &mut Rng) -> (String, bool) {
    let records: Vec<String> = (0..rng.below(8)).map(|_| record(rng)).collect();
    let list = records.join(",");
    match rng.below(10) {
        0 => (format!("[{list}]"), false),
        1 => (value(rng, 4), false),
        2 => (
            format!(
                r#"{{"other":{},"Records":{}}}"#,
                value(rng, 3),
                value(rng, 2)
            ),
            false,
        ),
        3 => {
            let depth = if rng.chance(8) {
                100_000
            } else {
                rng.below(3000)
            } as usize;
            (
                format!(
                    r#"{{"Records":[{{"x":{}{}}}]}}"#,
                    "[".repeat(depth),
                    "]".repeat(depth)
                ),
                false,
            )
        }
        _ => (format!(r#"{{"Records":[{list}]}}"#), true),
    }
}

pub(crate) fn gzip(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    use std::io::Write;
    let level = flate2::Compression::new(rng.below(10) as u32);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Damage the bytes in one of several ways (or not at all).
pub(crate) fn mutate(mut bytes: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    for _ in 0..rng.below(4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(6) {
            0 => bytes.truncate(at),
            1 => bytes[at] ^= 1 << rng.below(8),
            2 => bytes[at] = rng.next() as u8,
            3 => {
                let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, junk);
            }
            4 => {
                let end = (at + rng.below(64) as usize).min(bytes.len());
                bytes.drain(at..end);
            }
            _ => bytes.extend((0..rng.below(32)).map(|_| rng.next() as u8)),
        }
    }
    bytes
}

const GZ_KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/123456789012_CloudTrail_us-east-1_20191107T1330Z_f.json.gz";
const JSON_KEY: &str = "AWSLogs/o-abc123/123456789012/CloudTrail/eu-west-1/2019/11/07/f.json";
const ODD_KEY: &str = "somewhere/else.json";
const ODD_GZ_KEY: &str = "somewhere/else.json.gz";

/// One input: its bytes, its key, the cap, and (for valid `{"Records":[...]}`) the record count.
struct Input {
    bytes: Vec<u8>,
    key: &'static str,
    cap: u64,
    records: Option<u64>,
}

/// The committed hostile corpus (tests/hostile/corpus/), as seeds: (is it named .gz, bytes).
fn seeds() -> &'static [(bool, Vec<u8>)] {
    static SEEDS: std::sync::OnceLock<Vec<(bool, Vec<u8>)>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/corpus");
        let mut seeds = Vec::new();
        for case in std::fs::read_dir(corpus).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(case.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                if let Ok(bytes) = std::fs::read(file.path()) {
                    seeds.push((name.ends_with(".gz"), bytes));
                }
            }
        }
        seeds.sort();
        seeds
    })
}

fn input(rng: &mut Rng) -> Input {
    let cap = if rng.chance(8) {
        rng.below(4096)
    } else {
        DEFAULT_MAX_OBJECT_BYTES
    };
    if rng.chance(8) && !seeds().is_empty() {
        let (gz, bytes) = rng.pick(seeds());
        let bytes = mutate(bytes.clone(), rng);
        let key = if *gz { GZ_KEY } else { JSON_KEY };
        // The bomb seed would cost 64 MiB of gunzip per run: a smaller cap still trips on it.
        return Input {
            bytes,
            key,
            cap: cap.min(4 << 20),
            records: None,
        };
    }
    if rng.chance(10) {
        let bytes = (0..rng.below(512)).map(|_| rng.next() as u8).collect();
        let key = *rng.pick(&[GZ_KEY, JSON_KEY, ODD_KEY, ODD_GZ_KEY]);
        // The bomb seed would cost 64 MiB of gunzip per run: a smaller cap still trips on it.
        return Input {
            bytes,
            key,
            cap: cap.min(4 << 20),
            records: None,
        };
    }
    let (json, records_shape) = file_json(rng);
    let mut expected = None;
    if records_shape
        && let Ok(dom) = serde_json::from_str::<serde_json::Value>(&json)
        && let Some(array) = dom.get("Records").and_then(|r| r.as_array())
    {
        expected = Some(array.len() as u64);
    }
    let compressed = rng.below(4) != 0;
    let mut bytes = if compressed {
        let mut out = Vec::new();
        let cut = rng.below(json.len() as u64 + 1) as usize;
        let cut = (0..=cut)
            .rev()
            .find(|i| json.is_char_boundary(*i))
            .unwrap_or(0);
        if rng.chance(3) {
            out.extend(gzip(&json.as_bytes()[..cut], rng));
            out.extend(gzip(&json.as_bytes()[cut..], rng));
        } else {
            out.extend(gzip(json.as_bytes(), rng));
        }
        out
    } else {
        json.into_bytes()
    };
    let key = if compressed {
        *rng.pick(&[GZ_KEY, ODD_GZ_KEY])
    } else {
        *rng.pick(&[JSON_KEY, ODD_KEY])
    };
    if rng.chance(2) {
        let mutated = mutate(bytes.clone(), rng);
        if mutated != bytes {
            expected = None;
        }
        bytes = mutated;
    }
    // Generated files are far below the default cap; a small cap may reject anything.
    let records = expected.filter(|_| cap == DEFAULT_MAX_OBJECT_BYTES);
    Input {
        bytes,
        key,
        cap,
        records,
    }
}

fn options(cap: u64) -> DecodeOptions {
    let day = parse_day("2019-11-07").unwrap();
    DecodeOptions {
        window: Window::for_days(DayRange::new(day, day)),
        filter: PartitionFilter::default(),
        max_object_bytes: cap,
        selection: Default::default(),
    }
}

const REASONS: [&str; 6] = [
    "not gzip",
    "truncated gzip",
    "corrupt gzip",
    "over the size limit",
    "invalid JSON",
    "not a CloudTrail log file",
];

/// What is wrong with the decoder's answer to `input`, if anything; else 1 if it decoded it.
fn judge(input: &Input) -> Result<u64, String> {
    levels_agree(input)?;
    let options = options(input.cap);
    match decode_object(&input.bytes, input.key, &options) {
        Ok(decoded) => {
            consistent(&decoded, &options)?;
            if let Some(n) = input.records
                && decoded.stats.records != n
            {
                return Err(format!(
                    "counted {} records, the array holds {n}",
                    decoded.stats.records
                ));
            }
            Ok(1)
        }
        Err(e) if input.records.is_some() => Err(format!("rejected a valid log file: {e}")),
        Err(e) if !REASONS.contains(&e.reason().as_str()) || e.to_string().is_empty() => {
            Err(format!("unknown reason {:?}: {e}", e.reason()))
        }
        Err(_) => Ok(0),
    }
}

/// Every dispatch level of the container skipper gives the same answer for the first 16 `{`
/// and `[` of the input's JSON (gunzipped when it is gzip), cut at 8 KiB (the levels must
/// agree on any bytes; the cut keeps the fuzzer's rate).
fn levels_agree(input: &Input) -> Result<(), String> {
    use trailsight::decode::structure::{Level, skip_container_with};
    let json = if trailsight::decode::gzip::is_gzip(&input.bytes) {
        match trailsight::decode::gzip::gunzip_capped(&input.bytes, 1 << 24) {
            Ok(json) => json,
            Err(_) => return Ok(()),
        }
    } else {
        input.bytes.clone()
    };
    let json = &json[..json.len().min(8 << 10)];
    let opens = json
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, b'{' | b'['));
    for (at, _) in opens.take(16) {
        let answers: Vec<_> = Level::available()
            .into_iter()
            .map(|level| (level, skip_container_with(level, json, at)))
            .collect();
        if answers.iter().any(|(_, answer)| *answer != answers[0].1) {
            return Err(format!(
                "the skipper's levels disagree at byte {at}: {answers:?}"
            ));
        }
    }
    Ok(())
}

fn consistent(d: &DecodedObject, options: &DecodeOptions) -> Result<(), String> {
    let s = &d.stats;
    let n = d.events.len() as u64;
    let used = s.bad_total() + s.out_of_scope + s.insight_records + n;
    if used > s.records {
        return Err(format!("{used} records accounted for, {} read", s.records));
    }
    let writes = d
        .events
        .iter()
        .filter(|e| e.flags & flags::WRITE != 0)
        .count() as u64;
    let errors = d
        .events
        .iter()
        .filter(|e| e.flags & flags::ERROR != 0)
        .count() as u64;
    if writes != s.write_events || errors != s.error_events {
        return Err(format!(
            "flags count {writes}/{errors}, stats {}/{}",
            s.write_events, s.error_events
        ));
    }
    let coverage: HashMap<_, _> = d.coverage.iter().copied().collect();
    let symbol = |sym: u32, optional: bool| -> Result<Option<&str>, String> {
        if optional && sym == NO_SYM {
            return Ok(None);
        }
        d.symbols
            .get(sym)
            .map(Some)
            .ok_or(format!("symbol {sym} of {}", d.symbols.len()))
    };
    for e in &d.events {
        if e.flags == 0 || e.flags & !(flags::WRITE | flags::ERROR) != 0 {
            return Err(format!("event flags {}", e.flags));
        }
        let account = symbol(e.account, false)?.unwrap_or_default();
        let region = symbol(e.region, false)?.unwrap_or_default();
        if !layout::is_account(account) || !layout::is_region(region) {
            return Err(format!("event of account {account:?} region {region:?}"));
        }
        symbol(e.event_source, false)?;
        symbol(e.event_name, false)?;
        symbol(e.error_code, true)?;
        symbol(e.identity, true)?;
        symbol(e.user_agent, true)?;
        if !options.window.holds(e.minute) {
            return Err(format!("event at minute {} outside the window", e.minute.0));
        }
        match coverage.get(&(e.account, e.region)) {
            Some(first) if *first <= e.minute => {}
            other => return Err(format!("coverage {other:?} for an event at {}", e.minute.0)),
        }
    }
    Ok(())
}

/// One fuzzer as [`drive`] runs it: how a case is built from its seed, what is wrong with the
/// code's answer to it, and how a failing case is kept.
pub(crate) struct Target<C> {
    pub(crate) name: &'static str,
    /// The fixed seed and number of cases `cargo test` runs (so a failure reproduces).
    pub(crate) ci_seed: u64,
    pub(crate) ci_cases: u64,
    pub(crate) case: fn(&mut Rng) -> C,
    /// `Ok(n)`: the answer is right, and `n` of the case's inputs were accepted (a fuzzer
    /// whose inputs are all refused proves little; the count shows it).
    pub(crate) judge: fn(&C) -> Result<u64, String>,
    /// Saves a failing case under `target/fuzz-crashes/`; a line describing it and where.
    pub(crate) keep: fn(&C, u64) -> String,
}

/// What a [`drive`] ran: how many cases, how many inputs accepted, and whether it ran for a
/// time (`TRAILSIGHT_FUZZ_SECONDS`) rather than the fixed CI count.
pub(crate) struct Outcome {
    pub(crate) executions: u64,
    pub(crate) accepted: u64,
    pub(crate) timed: bool,
}

/// Runs `target`'s cases (the CI count from its fixed seed, or for `TRAILSIGHT_FUZZ_SECONDS`
/// from `TRAILSIGHT_FUZZ_SEED` or a fresh seed), and fails naming up to ten failing cases,
/// each kept for replay.
pub(crate) fn drive<C>(target: &Target<C>) -> Outcome {
    let (seconds, seed) = fuzz_settings(target.ci_seed);
    let started = Instant::now();
    let more = |executions| match seconds {
        Some(s) => started.elapsed() < Duration::from_secs(s),
        None => executions < target.ci_cases,
    };
    let mut rng = Rng(seed);
    let (mut executions, mut accepted) = (0, 0);
    let mut failures = Vec::new();
    while more(executions) && failures.len() < 10 {
        let case_seed = rng.next();
        let case = (target.case)(&mut Rng(case_seed));
        executions += 1;
        // A panic is caught and reported with its case; the default hook also prints it (the
        // hook is process-wide, so it is left alone for the tests running next to this one).
        let verdict = std::panic::catch_unwind(AssertUnwindSafe(|| (target.judge)(&case)))
            .unwrap_or_else(|panic| Err(format!("panic: {}", panic_text(&panic))));
        match verdict {
            Ok(n) => accepted += n,
            Err(problem) => failures.push(format!(
                "case seed {case_seed:#x}: {problem}; {}",
                (target.keep)(&case, case_seed)
            )),
        }
    }
    println!(
        "fuzz: {}: seed {seed:#x}: {executions} executions ({accepted} inputs accepted) in {:.1} s, {} failures",
        target.name,
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{}: seed {seed:#x}:\n{}",
        target.name,
        failures.join("\n")
    );
    Outcome {
        executions,
        accepted,
        timed: seconds.is_some(),
    }
}

pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-string panic".into())
}

fn keep(input: &Input, case_seed: u64) -> String {
    let saved = save_bytes(&input.bytes, &format!("{case_seed:016x}.bin"));
    format!(
        "{} bytes, key {}, cap {}; input saved to {saved}",
        input.bytes.len(),
        input.key,
        input.cap
    )
}

/// Keep a failing input under target/fuzz-crashes/; its path.
pub(crate) fn save_bytes(bytes: &[u8], name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    let path = dir.join(name);
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, bytes));
    path.display().to_string()
}

/// The fuzzers' settings from the environment: (seconds to run, if set; seed).
fn fuzz_settings(ci_seed: u64) -> (Option<u64>, u64) {
    let seconds: Option<u64> = std::env::var("TRAILSIGHT_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let seed = std::env::var("TRAILSIGHT_FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(if seconds.is_some() {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        } else {
            ci_seed
        });
    (seconds, seed)
}

#[test]
fn fuzz_decoder_never_panics_and_stays_consistent() {
    drive(&Target {
        name: "decoder",
        ci_seed: CI_SEED,
        ci_cases: CI_CASES,
        case: input,
        judge,
        keep,
    });
}

#[test]
fn fuzz_generator_reaches_every_outcome() {
    // A fuzzer that only ever produced rejects would prove nothing: check that the fixed seed's
    // inputs are decoded, rejected for each kind of reason, and checked against the DOM.
    let mut rng = Rng(CI_SEED);
    let mut reasons = std::collections::BTreeSet::new();
    let (mut ok, mut with_events, mut oracle) = (0, 0, 0);
    for _ in 0..3000 {
        let input = input(&mut Rng(rng.next()));
        oracle += u32::from(input.records.is_some());
        match decode_object(&input.bytes, input.key, &options(input.cap)) {
            Ok(d) => {
                ok += 1;
                with_events += u32::from(!d.events.is_empty());
            }
            Err(e) => {
                reasons.insert(e.reason().as_str());
            }
        }
    }
    assert!(
        ok > 300 && with_events > 100 && oracle > 300,
        "ok {ok}, with events {with_events}, oracle {oracle}"
    );
    assert_eq!(reasons.len(), REASONS.len(), "{reasons:?}");
}
