//! Helpers for `scripts/bench`, built on trailsight's own decode stage.
//!
//! `bench gunzip DIR [THREADS]`: the floor. Reads and gunzips every log object under DIR with
//! the decompressor trailsight uses (`decode::gzip`), on all cores, and does nothing else.
//! Prints `objects compressed_bytes json_bytes`.
//!
//! `bench counts DIR`: what DuckDB is checked against. Decodes every object with
//! `decode::decode_object` and prints, as CSV, the write management events per account,
//! region, eventSource, eventName and minute (Unix minutes), before de-duplication (as a plain
//! SQL count sees them).
//!
//! `bench decode DIR [MB] [data]`: the decoder alone, for profiling it. Gunzips the first MB
//! (default 200) megabytes of JSON into memory, then times `decode::decode_object` over them on
//! one thread, five times, and prints the fastest pass in MB/s. With `data`, data events are
//! analysed too (`--event-categories management,data`).
//!
//! `bench after DIR [data]`: the job's work after the decoder, for profiling it (issues 23 and
//! 18). Decodes every object into memory (all cores), then times, on one thread, the
//! aggregation of all of them in listing order (`aggregate::Aggregator::add`) and the detection
//! of every series for each day of the data (`detect::detect_series` with the default
//! detector), five times each, and prints the fastest pass of each in CPU seconds with the
//! episodes found (the same on every build that gives the same output).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use trailsight::aggregate::Aggregator;
use trailsight::decode::{self, DecodeOptions, flags};
use trailsight::detect::{self, DetectorConfig};
use trailsight::model::{DayRange, Minute, Window, parse_day};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, dir) = match args.as_slice() {
        [mode, dir, ..] => (mode.as_str(), PathBuf::from(dir)),
        _ => anyhow::bail!("usage: bench gunzip|counts|decode DIR [THREADS|MB]"),
    };
    let threads = match args.get(2) {
        Some(_) if mode == "decode" || mode == "after" => 1,
        Some(n) => n.parse()?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut objects = Vec::new();
    log_objects(&dir, &mut objects)?;
    objects.sort();
    match mode {
        "gunzip" => gunzip(&objects, threads),
        "counts" => counts(&objects, threads),
        "decode" => decode_only(
            &objects,
            args.get(2).map_or(Ok(200), |mb| mb.parse())?,
            args.get(3).is_some_and(|what| what == "data"),
        ),
        "after" => after_decode(&objects, args.get(2).is_some_and(|what| what == "data")),
        _ => anyhow::bail!("unknown mode {mode}: gunzip, counts, decode or after"),
    }
}

/// Every `.json.gz` under a `CloudTrail/` folder (not digests, not Insights).
fn log_objects(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            log_objects(&path, out)?;
        } else if path.to_string_lossy().ends_with(".json.gz")
            && path.components().any(|c| c.as_os_str() == "CloudTrail")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Run `work` over the objects on `threads` threads, each taking the next unclaimed object.
fn each_object<T: Send>(
    objects: &[PathBuf],
    threads: usize,
    init: impl Fn() -> T + Sync,
    work: impl Fn(&mut T, &Path, &[u8]) + Sync,
) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut state = init();
                while let Some(path) = objects.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let bytes = std::fs::read(path).expect("readable object");
                    work(&mut state, path, &bytes);
                }
                results.lock().expect("no poisoned lock").push(state);
            });
        }
    });
    results.into_inner().expect("no poisoned lock")
}

fn gunzip(objects: &[PathBuf], threads: usize) -> anyhow::Result<()> {
    let totals = each_object(
        objects,
        threads,
        || (0u64, 0u64),
        |(compressed, json), path, bytes| {
            let out = decode::gzip::gunzip_capped(bytes, decode::DEFAULT_MAX_OBJECT_BYTES)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            *compressed += bytes.len() as u64;
            *json += out.len() as u64;
        },
    );
    let (compressed, json) = totals
        .iter()
        .fold((0, 0), |(c, j), (tc, tj)| (c + tc, j + tj));
    println!("{} {compressed} {json}", objects.len());
    Ok(())
}

/// Options that take every record, whatever its time (no detection window applies here).
fn every_record(max_object_bytes: u64) -> DecodeOptions {
    let any_day = parse_day("2000-01-01").expect("a day");
    DecodeOptions {
        window: Window {
            history_from: Minute(i64::MIN),
            detect_from: Minute(i64::MIN),
            detect_until: Minute(i64::MAX),
            folders: DayRange::new(any_day, any_day),
        },
        filter: Default::default(),
        max_object_bytes,
        selection: Default::default(),
    }
}

/// An object's key as the job sees it: its path from `AWSLogs/` on.
fn log_key(path: &Path) -> String {
    let text = path.to_string_lossy();
    text.find("AWSLogs/")
        .map_or(&*text, |at| &text[at..])
        .to_owned()
}

type Key = (String, String, String, String, i64);

fn counts(objects: &[PathBuf], threads: usize) -> anyhow::Result<()> {
    let options = every_record(decode::DEFAULT_MAX_OBJECT_BYTES);
    let root = objects.first().map(|p| p.to_string_lossy().into_owned());
    let tallies = each_object(
        objects,
        threads,
        BTreeMap::<Key, u64>::new,
        |tally, path, bytes| {
            let object = decode::decode_object(bytes, &log_key(path), &options)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = |sym: decode::Sym| object.symbols[sym].to_owned();
            for event in object.events.iter().filter(|e| e.flags & flags::WRITE != 0) {
                let key = (
                    name(event.account),
                    name(event.region),
                    name(event.event_source),
                    name(event.event_name),
                    event.minute.0,
                );
                *tally.entry(key).or_default() += 1;
            }
        },
    );
    let mut all = BTreeMap::<Key, u64>::new();
    for tally in tallies {
        for (key, n) in tally {
            *all.entry(key).or_default() += n;
        }
    }
    eprintln!(
        "{} objects from {}",
        objects.len(),
        root.unwrap_or_default()
    );
    println!("account,region,event_source,event_name,minute,count");
    for ((account, region, source, name, minute), n) in all {
        println!("{account},{region},{source},{name},{minute},{n}");
    }
    Ok(())
}

fn decode_only(objects: &[PathBuf], megabytes: u64, data: bool) -> anyhow::Result<()> {
    let mut texts = Vec::new();
    let mut total = 0u64;
    for path in objects {
        if total >= megabytes << 20 {
            break;
        }
        let json = decode::gzip::gunzip_capped(&std::fs::read(path)?, u64::MAX)?;
        total += json.len() as u64;
        let key = log_key(path);
        texts.push((key.trim_end_matches(".gz").to_owned(), json));
    }
    let mut options = every_record(u64::MAX);
    options.selection.data = data;
    // CPU time of this thread as well as wall time: on a shared machine the thread is often
    // descheduled, and only its own CPU seconds measure the decoder.
    let (mut fastest, mut fastest_cpu) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let (started, cpu) = (std::time::Instant::now(), thread_cpu_seconds());
        let mut events = 0;
        for (key, json) in &texts {
            events += decode::decode_object(json, key, &options)?.events.len();
        }
        fastest = fastest.min(started.elapsed().as_secs_f64());
        fastest_cpu = fastest_cpu.min(thread_cpu_seconds() - cpu);
        std::hint::black_box(events);
    }
    println!(
        "{} objects, {:.0} MB of JSON: {:.3} s, {:.0} MB/s; CPU {:.3} s, {:.0} MB/s",
        texts.len(),
        total as f64 / 1e6,
        fastest,
        total as f64 / 1e6 / fastest,
        fastest_cpu,
        total as f64 / 1e6 / fastest_cpu
    );
    Ok(())
}

fn after_decode(objects: &[PathBuf], data: bool) -> anyhow::Result<()> {
    let mut options = every_record(decode::DEFAULT_MAX_OBJECT_BYTES);
    options.selection.data = data;
    let decoded = Mutex::new(Vec::new());
    each_object(
        objects,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        || (),
        |(), path, bytes| {
            let object = decode::decode_object(bytes, &log_key(path), &options)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (decoded.lock().expect("no poisoned lock")).push((path.to_path_buf(), object));
        },
    );
    let mut decoded = decoded.into_inner().expect("no poisoned lock");
    decoded.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut add_cpu, mut detect_cpu, mut episodes) = (f64::MAX, f64::MAX, 0);
    for _ in 0..5 {
        let cpu = thread_cpu_seconds();
        let mut aggregator = Aggregator::new();
        for (_, object) in &decoded {
            aggregator.add(object);
        }
        add_cpu = add_cpu.min(thread_cpu_seconds() - cpu);
        let floor = Minute(i64::MIN / 2);
        let view = aggregator.view(floor);
        let minutes = view.series.iter().flat_map(|s| s.minutes.iter().copied());
        let (first, last) = minutes.fold((Minute(i64::MAX), Minute(i64::MIN)), |(a, b), m| {
            (a.min(m), b.max(m))
        });
        let config = DetectorConfig::default();
        let cpu = thread_cpu_seconds();
        episodes = 0;
        let mut day = first.day();
        while first <= last && day <= last.day() {
            let next = day.succ_opt().expect("a next day");
            let (from, until) = (Minute::start_of_day(day), Minute::start_of_day(next));
            for series in &view.series {
                episodes += detect::detect_series(series, from, until, &config).len();
            }
            day = next;
        }
        detect_cpu = detect_cpu.min(thread_cpu_seconds() - cpu);
    }
    println!(
        "{} objects, {} events: aggregate CPU {add_cpu:.3} s; detect CPU {detect_cpu:.3} s, {episodes} episodes",
        decoded.len(),
        decoded.iter().map(|(_, o)| o.events.len()).sum::<usize>(),
    );
    Ok(())
}

/// This thread's CPU time in seconds.
fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec to write; the clock is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}
