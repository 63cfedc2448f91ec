//! Nightly runs, backfills and shards give the same bytes: the invariants of incremental runs.

use crate::s3_server::{Fault, S3Server, Seen};
use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Output files, leaving out hidden (temporary) files.
fn visible(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .filter(|(k, _)| !k.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect()
}

/// The files that differ between two trees (present in one only, or with other bytes).
fn differing(a: &BTreeMap<String, Vec<u8>>, b: &BTreeMap<String, Vec<u8>>) -> Vec<String> {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// A tree with ordinary traffic for 12 days and an episode from 23:56 on 2019-11-06 to 00:04
/// on 2019-11-07, its first minutes delivered after midnight into the next day's folder.
fn midnight_tree() -> Tree {
    let tree = Tree::new();
    let start = chrono::NaiveDate::from_ymd_opt(2019, 10, 28).unwrap();
    let mut id = 0u64;
    for d in 0..12 {
        let day = (start + chrono::Duration::days(d)).to_string();
        let mut records = Vec::new();
        for hour in [3u32, 9, 15, 21] {
            id += 1;
            records.push(call(
                ACCOUNT,
                "us-east-1",
                &at(&day, hour * 60 + 7, 0),
                "CreateTags",
                id,
            ));
        }
        tree.write_log(
            &log_key("", None, ACCOUNT, "us-east-1", &day, "ordinary"),
            &records,
        );
    }
    let mut late = Vec::new();
    let mut early = Vec::new();
    for minute in 0..8u32 {
        let (day, m) = if minute < 4 {
            ("2019-11-06", 23 * 60 + 56 + minute)
        } else {
            ("2019-11-07", minute - 4)
        };
        for i in 0..9 {
            id += 1;
            let record = call(ACCOUNT, "us-east-1", &at(day, m, i * 5), "CreateTags", id);
            if minute < 4 {
                late.push(record)
            } else {
                early.push(record)
            }
        }
    }
    // Everything is delivered after midnight, in the 2019-11-07 folder.
    late.extend(early);
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", "2019-11-07", "burst"),
        &late,
    );
    tree
}

pub fn nightly(source: &Path, out: &Path, state: &Path, as_of: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "nightly",
        "--source",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--as-of",
        as_of,
    ];
    args.extend_from_slice(extra);
    trailsight(&args)
}

#[test]
fn consecutive_nightly_runs_equal_one_backfill_across_midnight() {
    let tree = midnight_tree();
    let backfill = tempfile::tempdir().unwrap();
    let run = analyze(
        tree.path(),
        backfill.path(),
        &["--from", "2019-11-04", "--to", "2019-11-08"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = visible(backfill.path());
    // The episode's activity, open after the first night and closed by the next, is compared
    // too.
    assert!(
        expected.contains_key(&format!(
            "activities/account={ACCOUNT}/region=us-east-1/date=2019-11-06/activities.jsonl"
        )),
        "{:?}",
        expected.keys()
    );
    let found = insights(backfill.path());
    let times: Vec<&str> = found
        .iter()
        .map(|(_, r)| r["eventTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        ["2019-11-06T23:56:00Z", "2019-11-07T00:04:00Z"],
        "{found:#?}"
    );

    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (night, as_of) in [
        "2019-11-05",
        "2019-11-06",
        "2019-11-07",
        "2019-11-08",
        "2019-11-09",
    ]
    .iter()
    .enumerate()
    {
        let first = if night == 0 {
            vec!["--first-day", "2019-11-04"]
        } else {
            vec![]
        };
        let run = nightly(
            tree.path(),
            out.path(),
            state.path(),
            &format!("{as_of}T01:30:00Z"),
            &first,
        );
        assert_eq!(run.code, 0, "{as_of}: {}", run.stderr);
        if *as_of == "2019-11-07" {
            // The night of 2019-11-06 sees the Start; the End is still to come.
            assert_eq!(run.summary["open_insights"], 1, "{:#}", run.summary);
        }
    }
    assert_eq!(visible(out.path()), expected);
}

#[test]
fn a_nightly_run_reads_only_what_is_new_and_an_idle_one_changes_nothing() {
    let sample = repo_path("sample-data");
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = nightly(
        &sample,
        out.path(),
        state.path(),
        "2019-11-07T02:00:00Z",
        &["--first-day", "2019-11-06"],
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = nightly(
        &sample,
        out.path(),
        state.path(),
        "2019-11-08T02:00:00Z",
        &[],
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    let (a, b) = (
        first.summary["objects_read"].as_u64().unwrap(),
        second.summary["objects_read"].as_u64().unwrap(),
    );
    assert!(
        b * 4 < a,
        "the second night read {b} objects, the first (with its baseline) {a}"
    );

    let before = (files(out.path()), files(state.path()));
    let mtimes = |dir: &Path| -> Vec<std::time::SystemTime> {
        files(dir)
            .keys()
            .map(|k| std::fs::metadata(dir.join(k)).unwrap().modified().unwrap())
            .collect()
    };
    let stamps = mtimes(out.path());
    let idle = nightly(
        &sample,
        out.path(),
        state.path(),
        "2019-11-08T05:00:00Z",
        &[],
    );
    assert_eq!(idle.code, 0, "{}", idle.stderr);
    assert_eq!(idle.summary["objects_read"], 0);
    assert_eq!((files(out.path()), files(state.path())), before);
    assert_eq!(mtimes(out.path()), stamps, "nothing was rewritten");
}

#[test]
fn the_union_of_shards_equals_the_unsharded_run() {
    let sample = repo_path("sample-data");
    let whole = tempfile::tempdir().unwrap();
    assert_eq!(analyze(&sample, whole.path(), &[]).code, 0);
    let mut union = BTreeMap::new();
    let mut partitions = 0;
    for shard in ["0/3", "1/3", "2/3"] {
        let out = tempfile::tempdir().unwrap();
        let run = analyze(&sample, out.path(), &["--shard", shard]);
        assert!(
            run.code == 0 || run.stderr.contains("no CloudTrail logs"),
            "{shard}: {}",
            run.stderr
        );
        partitions += run.summary["partitions"].as_u64().unwrap_or(0);
        for (key, bytes) in visible(out.path()) {
            assert!(
                union.insert(key.clone(), bytes).is_none(),
                "{key} written by two shards"
            );
        }
    }
    assert_eq!(
        partitions, 4,
        "every account/region pair is in exactly one shard"
    );
    assert_eq!(union, visible(whole.path()));
}

#[test]
fn a_backfill_killed_at_any_point_resumes_to_the_same_bytes() {
    let sample = repo_path("sample-data");
    let args = |out: &Path, state: &Path| -> Vec<String> {
        [
            "analyze",
            "--source",
            sample.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--from",
            "2019-11-02",
            "--to",
            "2019-11-08",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let (clean_out, clean_state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let started = std::time::Instant::now();
    let run = trailsight(
        &args(clean_out.path(), clean_state.path())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let clean_run_ms = started.elapsed().as_millis() as u64;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = (visible(clean_out.path()), visible(clean_state.path()));

    // Kills spread over the whole run, as long as it takes on this machine (fixed delays
    // outlived the run on a fast, quiet machine).
    let mut killed_mid_run = 0;
    for percent in [2u64, 15, 30, 50, 70] {
        let delay_ms = clean_run_ms * percent / 100;
        let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
            .args(args(out.path(), state.path()))
            .env("RUST_LOG", "error")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        killed_mid_run += usize::from(child.try_wait().unwrap().is_none());
        let _ = child.kill();
        let _ = child.wait();
        // Whatever is visible is whole: every Insight file decodes.
        for (key, bytes) in visible(out.path()) {
            if key.ends_with(".json.gz") {
                gunzip_records(&bytes);
            }
        }
        // The killed run's lock is still there: remove it as an operator would, then resume.
        for (key, _) in files(state.path())
            .iter()
            .filter(|(k, _)| k.ends_with(".lock"))
        {
            std::fs::remove_file(state.path().join(key)).unwrap();
        }
        let resumed = trailsight(
            &args(out.path(), state.path())
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!(resumed.code, 0, "after {delay_ms} ms: {}", resumed.stderr);
        let got = (visible(out.path()), visible(state.path()));
        assert!(
            got == expected,
            "killed after {delay_ms} ms, the resumed run differs: outputs {:?}, state {:?}",
            differing(&got.0, &expected.0),
            differing(&got.1, &expected.1),
        );
    }
    assert!(
        killed_mid_run >= 3,
        "only {killed_mid_run} of 5 kills landed before the run finished"
    );
}

/// A run killed after writing its last manifest, while removing the segments that manifest
/// replaced, leaves segments no manifest lists. The re-run has nothing left to analyse (so
/// nothing to save), and still removes them: it found the lock free.
#[test]
fn a_rerun_with_nothing_to_do_removes_segments_no_manifest_lists() {
    let sample = repo_path("sample-data");
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let state_arg = state.path().to_str().unwrap();
    let extra = [
        "--state",
        state_arg,
        "--from",
        "2019-11-05",
        "--to",
        "2019-11-06",
    ];
    let run = analyze(&sample, out.path(), &extra);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = (visible(out.path()), visible(state.path()));
    let days = state.path().join("trailsight-state.days");
    let listed = std::fs::read_dir(&days)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "gz"))
        .unwrap();
    let replaced = days.join("2019-11-04-0123456789abcdef0123456789abcdef.bin.gz");
    std::fs::copy(listed, &replaced).unwrap();

    let rerun = analyze(&sample, out.path(), &extra);
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_eq!(
        rerun.summary["objects_read"], 0,
        "the re-run had nothing to do"
    );
    assert!(!replaced.exists(), "the unlisted segment is left");
    assert_eq!((visible(out.path()), visible(state.path())), expected);
}

#[test]
fn a_second_run_against_a_locked_state_refuses() {
    let sample = repo_path("sample-data");
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        state.path().join("trailsight-state.lock"),
        format!("pid 1 on elsewhere\n{}\n", now_secs()),
    )
    .unwrap();
    let run = nightly(
        &sample,
        out.path(),
        state.path(),
        "2019-11-08T02:00:00Z",
        &[],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("locked by another run"),
        "{}",
        run.stderr
    );
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A record delivered long after its minute left the trailing window (here: a duplicate of an
/// event of 2019-10-29 03:07, already read by the first night, and a new event of that day, both
/// filed in the 2019-11-09 folder) is counted out of scope: it can change no Insight already
/// written, and the duplicate is not counted twice although its ID was pruned with its minute.
/// The nights of 2019-11-05 to 2019-11-08 (`nightly` at 02:00 the day after each, the first with
/// `--first-day 2019-11-05`) on `tree`: each night's summary.
fn four_nights_from_2019_11_05(tree: &Tree, out: &Path, state: &Path) -> Vec<serde_json::Value> {
    let nights = ["2019-11-06", "2019-11-07", "2019-11-08", "2019-11-09"];
    (nights.iter().enumerate())
        .map(|(night, as_of)| {
            let first: &[&str] = if night == 0 {
                &["--first-day", "2019-11-05"]
            } else {
                &[]
            };
            let as_of = format!("{as_of}T02:00:00Z");
            let run = nightly(tree.path(), out, state, &as_of, first);
            assert_eq!(run.code, 0, "{as_of}: {}", run.stderr);
            run.summary
        })
        .collect()
}

#[test]
fn a_record_delivered_after_its_window_is_out_of_scope_not_counted_twice() {
    let tree = midnight_tree();
    let stale = [
        call(
            ACCOUNT,
            "us-east-1",
            &at("2019-10-29", 3 * 60 + 7, 0),
            "CreateTags",
            5,
        ),
        call(
            ACCOUNT,
            "us-east-1",
            &at("2019-10-29", 600, 0),
            "CreateTags",
            90_001,
        ),
    ];
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", "2019-11-09", "very-late"),
        &stale,
    );
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut out_of_scope = Vec::new();
    // The first night reads the folders from 2019-10-29 (its baseline), the original included.
    for summary in four_nights_from_2019_11_05(&tree, out.path(), state.path()) {
        out_of_scope.push(summary["records_out_of_scope"].as_u64().unwrap());
        assert_eq!(summary["duplicates_dropped"], 0, "{summary:#}");
    }
    // The last night reads the 2019-11-09 folder (the day after 2019-11-08), when the window
    // starts on 2019-11-01: both stale records are out of scope, nothing else is.
    assert_eq!(out_of_scope[3], 2, "{out_of_scope:?}");
}

#[test]
fn a_copy_within_two_days_of_its_event_is_dropped_and_a_later_one_counts_in_its_baseline_day() {
    let tree = midnight_tree();
    // `midnight_tree`'s ordinary records of 2019-11-05 and 2019-11-06 at 03:07 (IDs 33 and 37).
    let of_day = |day: &str, id: u64| {
        call(
            ACCOUNT,
            "us-east-1",
            &at(day, 3 * 60 + 7, 0),
            "CreateTags",
            id,
        )
    };
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", "2019-11-06", "copy-soon"),
        &[of_day("2019-11-05", 33)],
    );
    // Read by the step of 2019-11-08, which keeps the IDs from 2019-11-06 on: the copy of
    // 2019-11-06's event is dropped, the one of 2019-11-05's (four days on) counts again.
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", "2019-11-09", "copy-late"),
        &[of_day("2019-11-05", 33), of_day("2019-11-06", 37)],
    );
    let backfill = tempfile::tempdir().unwrap();
    let run = analyze(
        tree.path(),
        backfill.path(),
        &["--from", "2019-11-05", "--to", "2019-11-08"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["duplicates_dropped"], 2, "{:#}", run.summary);
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let dropped: u64 = four_nights_from_2019_11_05(&tree, out.path(), state.path())
        .iter()
        .map(|summary| summary["duplicates_dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(dropped, 2);
    assert_eq!(visible(out.path()), visible(backfill.path()));
}

// The state in S3: the same bytes as a local state, a lock taken with `If-None-Match: *`, a
// compare-and-swap save, and a killed run's lock taken over with `If-Match` once stale.

const STATE_BUCKET: &str = "state";
const STATE_PREFIX: &str = "trailsight/nightly";
const STATE_URL: &str = "s3://state/trailsight/nightly";
const STATE_KEY: &str = "trailsight/nightly/trailsight-state.bin.gz";
const LOCK_KEY: &str = "trailsight/nightly/trailsight-state.lock";
/// The five nights of `midnight_tree`, the first starting at 2019-11-04.
const NIGHTS: [&str; 5] = [
    "2019-11-05",
    "2019-11-06",
    "2019-11-07",
    "2019-11-08",
    "2019-11-09",
];

/// `nightly` with `--state` in S3 (the test server), local source and output.
fn nightly_args<'a>(source: &'a Path, out: &'a Path, night: usize, as_of: &'a str) -> Vec<String> {
    let mut args: Vec<String> = [
        "nightly",
        "--source",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--state",
        STATE_URL,
        "--as-of",
        as_of,
        "--force-path-style",
        "--retry-base-delay-ms",
        "5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if night == 0 {
        args.extend(["--first-day".into(), "2019-11-04".into()]);
    }
    args
}

fn nightly_s3(server: &S3Server, source: &Path, out: &Path, night: usize) -> Run {
    let as_of = format!("{}T01:30:00Z", NIGHTS[night]);
    let args = nightly_args(source, out, night, &as_of);
    trailsight_env(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &server.env(),
    )
}

/// Files by path.
type Files = BTreeMap<String, Vec<u8>>;

/// The five nights with a local state: the reference output, the state's manifest bytes after
/// each night, and every file of the state at the end (its manifest and day segments).
fn local_nights(tree: &Tree) -> (Files, Vec<Vec<u8>>, Files) {
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut states = Vec::new();
    for (night, day) in NIGHTS.iter().enumerate() {
        let first = if night == 0 {
            vec!["--first-day", "2019-11-04"]
        } else {
            vec![]
        };
        let as_of = format!("{day}T01:30:00Z");
        let run = nightly(tree.path(), out.path(), state.path(), &as_of, &first);
        assert_eq!(run.code, 0, "{day}: {}", run.stderr);
        states.push(std::fs::read(state.path().join("trailsight-state.bin.gz")).unwrap());
    }
    (visible(out.path()), states, visible(state.path()))
}

/// The state objects in S3 (the lock left out), named relative to the state's prefix.
fn s3_state_files(server: &S3Server) -> BTreeMap<String, Vec<u8>> {
    server
        .objects(STATE_BUCKET, STATE_PREFIX)
        .into_iter()
        .filter(|(key, _)| !key.ends_with(".lock"))
        .collect()
}

fn s3_state(server: &S3Server) -> Option<Vec<u8>> {
    std::fs::read(server.object_path(STATE_BUCKET, STATE_KEY)).ok()
}

fn lock_path(server: &S3Server) -> std::path::PathBuf {
    server.object_path(STATE_BUCKET, LOCK_KEY)
}

/// The second night against the S3 state, as a process a test can kill (the requests seen so
/// far forgotten, so the test watches this night's alone).
fn spawn_second_night(
    tree: &Tree,
    out: &tempfile::TempDir,
    server: &S3Server,
) -> std::process::Child {
    let as_of = format!("{}T01:30:00Z", NIGHTS[1]);
    server.take_seen();
    std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
        .args(nightly_args(tree.path(), out.path(), 1, &as_of))
        .envs(server.env())
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Wait until the lock object exists (a run has taken it); its body.
fn wait_for_lock(server: &S3Server) -> String {
    for _ in 0..400 {
        if let Ok(body) = std::fs::read_to_string(lock_path(server))
            && body.lines().count() >= 2
        {
            return body;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("no run took the lock {LOCK_KEY}");
}

fn is_state_request(seen: &Seen, key: &str) -> bool {
    seen.bucket() == STATE_BUCKET && seen.path == format!("/{STATE_BUCKET}/{key}")
}

#[test]
fn nightly_runs_with_the_state_in_s3_equal_local_state_runs_byte_for_byte() {
    let tree = midnight_tree();
    let (expected, states, state_files) = local_nights(&tree);
    let server = S3Server::start(&[STATE_BUCKET]);
    let out = tempfile::tempdir().unwrap();
    let mut segments_written = 0;
    for night in 0..NIGHTS.len() {
        let run = nightly_s3(&server, tree.path(), out.path(), night);
        assert_eq!(run.code, 0, "{}: {}", NIGHTS[night], run.stderr);
        assert_eq!(
            s3_state(&server).as_ref(),
            Some(&states[night]),
            "the state after the night of {}",
            NIGHTS[night]
        );
        assert!(!lock_path(&server).exists(), "the lock is released");
        let seen = server.take_seen();
        // The lock: created only if absent, read back and deleted at the end.
        let lock_puts: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.method == "PUT" && is_state_request(s, LOCK_KEY))
            .collect();
        assert_eq!(lock_puts.len(), 1);
        assert_eq!(
            lock_puts[0]
                .headers
                .get("if-none-match")
                .map(String::as_str),
            Some("*")
        );
        assert_eq!(
            seen.iter()
                .filter(|s| s.method == "DELETE" && is_state_request(s, LOCK_KEY))
                .count(),
            1
        );
        // Each day segment is created only if absent, never replacing one.
        let segment_puts: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.method == "PUT" && s.path.contains("/trailsight-state.days/"))
            .collect();
        segments_written += segment_puts.len();
        for put in segment_puts {
            assert_eq!(
                put.headers.get("if-none-match").map(String::as_str),
                Some("*"),
                "{}",
                put.path
            );
        }
        // The state: compare-and-swap, from nothing on the first save, then on the ETag.
        let saves: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.method == "PUT" && is_state_request(s, STATE_KEY))
            .collect();
        assert!(!saves.is_empty());
        for (i, save) in saves.iter().enumerate() {
            let (none_match, matches) = (
                save.headers.get("if-none-match"),
                save.headers.get("if-match"),
            );
            if night == 0 && i == 0 {
                assert_eq!(none_match.map(String::as_str), Some("*"));
                assert!(matches.is_none());
            } else {
                assert!(none_match.is_none(), "{:?}", save.headers);
                assert!(matches.is_some_and(|e| !e.is_empty()), "{:?}", save.headers);
            }
        }
    }
    assert!(segments_written > NIGHTS.len(), "{segments_written}");
    assert_eq!(visible(out.path()), expected);
    // The state prefix holds the state and nothing else: its manifest and one segment a day of
    // the window, the same objects as the local state's.
    let files = server.objects(STATE_BUCKET, STATE_PREFIX);
    assert_eq!(files, state_files);
    let mut days: Vec<&str> = files
        .keys()
        .filter_map(|key| key.strip_prefix("trailsight-state.days/"))
        .map(|name| &name[..10])
        .collect();
    assert_eq!(days.len() + 1, files.len(), "{:?}", files.keys());
    let segments = days.len();
    days.dedup();
    assert_eq!(days.len(), segments, "one segment a day: {days:?}");
}

/// A night killed after writing its day segments but before replacing the manifest leaves the
/// previous state whole (the manifest and every segment it lists, untouched); the next runs
/// continue to the same output and state as runs never killed. Writes whose answers were lost
/// on the way back (a segment's create, the manifest's compare-and-swap) are recognised as
/// done by reading the object back, not failed.
#[test]
fn a_run_killed_between_its_segments_and_its_manifest_leaves_the_previous_s3_state() {
    let tree = midnight_tree();
    let (expected, states, state_files) = local_nights(&tree);
    let (server, out) = first_night_with_s3_state(&tree);
    let before = s3_state_files(&server);

    // The second night is killed while its manifest PUT is held, its segments written.
    server.fault(
        "PUT",
        &format!("/{STATE_BUCKET}/{STATE_KEY}"),
        Fault::Delay(Duration::from_secs(120)),
        1,
    );
    let mut child = spawn_second_night(&tree, &out, &server);
    let holder = wait_for_lock(&server);
    let saving = |s: &Seen| s.method == "PUT" && is_state_request(s, STATE_KEY);
    assert!(server.wait_for(Duration::from_secs(60), saving));
    child.kill().unwrap();
    child.wait().unwrap();
    let after = s3_state_files(&server);
    for (key, bytes) in &before {
        assert_eq!(after.get(key), Some(bytes), "{key} is untouched");
    }
    let written: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        !written.is_empty() && written.iter().all(|k| k.contains(".days/")),
        "the killed run wrote its segments only: {written:?}"
    );
    trailsight::state::RunState::decode(&after["trailsight-state.bin.gz"], STATE_KEY)
        .expect("the state is readable");

    // Its lock aged past the TTL; the next nights lose the answers to a segment's create and
    // to the manifest's compare-and-swap (both land).
    let taken_at: u64 = holder.lines().nth(1).unwrap().parse().unwrap();
    let stale = holder.replacen(
        &taken_at.to_string(),
        &(taken_at - trailsight::state::LOCK_TTL_SECS - 60).to_string(),
        1,
    );
    server.replace_object(STATE_BUCKET, LOCK_KEY, stale.as_bytes());
    server.fault("PUT", "/trailsight-state.days/", Fault::LoseAnswer, 1);
    server.fault(
        "PUT",
        &format!("/{STATE_BUCKET}/{STATE_KEY}"),
        Fault::LoseAnswer,
        1,
    );
    for night in 1..NIGHTS.len() {
        let run = nightly_s3(&server, tree.path(), out.path(), night);
        assert_eq!(run.code, 0, "{}: {}", NIGHTS[night], run.stderr);
        assert_eq!(s3_state(&server).as_ref(), Some(&states[night]));
    }
    assert_eq!(
        server.faults_applied(),
        3,
        "the held PUT and both lost answers"
    );
    assert_eq!(visible(out.path()), expected);
    assert_eq!(s3_state_files(&server), state_files);
}

/// A test S3 server holding the state of a first, successful night over `tree`, and the local
/// output directory it wrote.
fn first_night_with_s3_state(tree: &Tree) -> (S3Server, tempfile::TempDir) {
    let server = S3Server::start(&[STATE_BUCKET]);
    let out = tempfile::tempdir().unwrap();
    let first = nightly_s3(&server, tree.path(), out.path(), 0);
    assert_eq!(first.code, 0, "{}", first.stderr);
    (server, out)
}

#[test]
fn a_second_run_against_an_s3_state_is_refused_naming_the_lock_and_its_holder() {
    let tree = midnight_tree();
    let (server, out) = first_night_with_s3_state(&tree);
    // The next night pauses while reading the state, holding the lock.
    server.fault(
        "GET",
        &format!("/{STATE_BUCKET}/{STATE_KEY}"),
        Fault::Delay(Duration::from_secs(6)),
        1,
    );
    let holding = std::thread::scope(|scope| {
        let running = scope.spawn(|| nightly_s3(&server, tree.path(), out.path(), 1));
        let holder = wait_for_lock(&server);
        let second = nightly_s3(&server, tree.path(), out.path(), 1);
        assert_eq!(second.code, 2, "{}", second.stderr);
        let lock = format!("s3://{STATE_BUCKET}/{LOCK_KEY}");
        let name = holder.lines().next().unwrap();
        assert!(name.starts_with("pid "), "{holder}");
        for needle in ["locked by another run", lock.as_str(), name] {
            assert!(
                second.stderr.contains(needle),
                "{needle:?} in {}",
                second.stderr
            );
        }
        running.join().unwrap()
    });
    assert_eq!(holding.code, 0, "{}", holding.stderr);
    assert!(!lock_path(&server).exists());
    assert_eq!(holding.summary["last_day"], "2019-11-05");
}

#[test]
fn a_killed_run_leaves_the_s3_state_readable_and_its_stale_lock_is_taken_over() {
    let tree = midnight_tree();
    let (expected, states, _) = local_nights(&tree);
    let (server, out) = first_night_with_s3_state(&tree);
    let before = s3_state(&server).unwrap();

    // The second night is killed while it holds the lock.
    server.fault(
        "GET",
        &format!("/{STATE_BUCKET}/{STATE_KEY}"),
        Fault::Delay(Duration::from_secs(30)),
        1,
    );
    let mut child = spawn_second_night(&tree, &out, &server);
    let holder = wait_for_lock(&server);
    // Killed once its lock PUT was answered (it then asks for the state, which hangs): s3s-fs
    // writes an object's bytes and its checksum in two steps, and a PUT cut off between them
    // leaves an object it cannot serve (S3's PUT is atomic; this is the test server's limit).
    let asked_for_state = |s: &Seen| s.method == "GET" && is_state_request(s, STATE_KEY);
    assert!(server.wait_for(Duration::from_secs(20), asked_for_state));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        holder.starts_with(&format!("pid {} on ", child.id())),
        "{holder}"
    );
    let state = s3_state(&server).unwrap();
    assert_eq!(state, before, "the previous state is intact");
    trailsight::state::RunState::decode(&state, STATE_KEY).expect("the state is readable");

    // Its lock is fresh: the next run is refused.
    let refused = nightly_s3(&server, tree.path(), out.path(), 1);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(holder.lines().next().unwrap()),
        "{}",
        refused.stderr
    );
    // Once the lock is older than the TTL, the next run takes it over (If-Match on its ETag).
    let taken_at: u64 = holder.lines().nth(1).unwrap().parse().unwrap();
    let stale = holder.replacen(
        &taken_at.to_string(),
        &(taken_at - trailsight::state::LOCK_TTL_SECS - 60).to_string(),
        1,
    );
    server.replace_object(STATE_BUCKET, LOCK_KEY, stale.as_bytes());
    server.take_seen();
    for night in 1..NIGHTS.len() {
        let run = nightly_s3(&server, tree.path(), out.path(), night);
        assert_eq!(run.code, 0, "{}: {}", NIGHTS[night], run.stderr);
        if night == 1 {
            assert!(
                run.stderr.contains("taking over an abandoned lock"),
                "{}",
                run.stderr
            );
            let takeover = server
                .take_seen()
                .into_iter()
                .filter(|s| s.method == "PUT" && is_state_request(s, LOCK_KEY))
                .collect::<Vec<_>>();
            assert_eq!(takeover.len(), 2, "a refused create, then the takeover");
            assert!(
                takeover[1].headers.contains_key("if-match"),
                "{:?}",
                takeover[1].headers
            );
        }
        assert_eq!(s3_state(&server).as_ref(), Some(&states[night]));
    }
    assert_eq!(visible(out.path()), expected);
    assert!(!lock_path(&server).exists());
}

#[test]
fn a_run_whose_s3_state_was_replaced_meanwhile_does_not_overwrite_it() {
    let tree = midnight_tree();
    let (server, out) = first_night_with_s3_state(&tree);
    // While the next night saves, another writer replaces the state it read (as a run that
    // took over a lock this one held too long would).
    server.fault(
        "PUT",
        &format!("/{STATE_BUCKET}/{STATE_KEY}"),
        Fault::Delay(Duration::from_secs(2)),
        1,
    );
    let replaced = b"written by another run".to_vec();
    server.take_seen();
    let run = std::thread::scope(|scope| {
        let running = scope.spawn(|| nightly_s3(&server, tree.path(), out.path(), 1));
        assert!(
            server.wait_for(Duration::from_secs(20), |s| {
                s.method == "PUT" && is_state_request(s, STATE_KEY)
            }),
            "the save was never sent"
        );
        server.replace_object(STATE_BUCKET, STATE_KEY, &replaced);
        running.join().unwrap()
    });
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("was replaced by another run"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("s3://{STATE_BUCKET}/{STATE_KEY}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        s3_state(&server),
        Some(replaced),
        "the other run's state stands"
    );
    assert!(
        !lock_path(&server).exists(),
        "a failed run releases its lock"
    );
}

/// A state written by trailsight's layout 1 (gzip JSON: `tests/fixtures/state/`, the state of a
/// first night over the sample data, 2019-11-06, by the release before layout 2) is read and
/// migrated: the nights after it write the same output, and end with the same state bytes, as
/// nights that never had a layout-1 state; the old file is gone after the first save.
#[test]
fn a_layout_1_state_continues_to_the_same_bytes() {
    let sample = repo_path("sample-data");
    let run_nights = |out: &Path, state: &Path, nights: &[&str]| {
        for as_of in nights {
            let first: &[&str] = if *as_of == "2019-11-07T02:00:00Z" {
                &["--first-day", "2019-11-06"]
            } else {
                &[]
            };
            let run = nightly(&sample, out, state, as_of, first);
            assert_eq!(run.code, 0, "{as_of}: {}", run.stderr);
        }
    };
    let nights = [
        "2019-11-07T02:00:00Z",
        "2019-11-08T02:00:00Z",
        "2019-11-09T02:00:00Z",
    ];
    let (out, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_nights(out.path(), state.path(), &nights);

    let (migrated_out, migrated) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    run_nights(migrated_out.path(), migrated.path(), &nights[..1]);
    // The first night's state replaced by the one layout 1 wrote for it (its source named as
    // this checkout's sample data).
    std::fs::remove_file(migrated.path().join("trailsight-state.bin.gz")).unwrap();
    let old = std::fs::read(repo_path(
        "tests/fixtures/state/state-v1-sample-2019-11-06.json.gz",
    ))
    .unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&trailsight::decode::gzip::gunzip_capped(&old, 1 << 30).unwrap())
            .unwrap();
    assert_eq!(json["version"], 1);
    json["source"] = sample.to_str().unwrap().into();
    std::fs::write(
        migrated.path().join("trailsight-state.json.gz"),
        gzip(&serde_json::to_vec(&json).unwrap()),
    )
    .unwrap();
    run_nights(migrated_out.path(), migrated.path(), &nights[1..]);

    assert_eq!(visible(migrated_out.path()), visible(out.path()));
    assert_eq!(visible(migrated.path()), visible(state.path()));
    let keys: Vec<String> = visible(migrated.path()).into_keys().collect();
    assert_eq!(keys[0], "trailsight-state.bin.gz");
    assert!(
        keys.len() > 1
            && keys[1..]
                .iter()
                .all(|k| k.starts_with("trailsight-state.days/")),
        "{keys:?}"
    );
}

/// Shards spread an organization's partitions evenly, and a state sharded before the
/// assignment was recorded keeps the one it was made with (FNV-1a's bare remainder, which put
/// all four of the sample's partitions in shard 0 of 4): its partitions must not move, or their
/// counts would be lost and their silence called delivery gaps.
#[test]
fn a_state_sharded_by_an_earlier_version_keeps_its_partitions() {
    let sample = repo_path("sample-data");
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let shard = ["--shard", "0/4", "--first-day", "2019-11-06"];
    let run = nightly(&sample, &out, &state, "2019-11-07T02:00:00Z", &shard);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Pinned: a version that moved partitions between shards would orphan every sharded state.
    let spread = &run.summary["shards"]["partitions_per_shard"];
    assert_eq!(spread, &serde_json::json!([1, 2, 0, 1]), "{}", run.summary);

    // The manifest as an earlier version wrote it: no shardAssignment in its header.
    let manifest = state.join("trailsight-state-shard-0-of-4.bin.gz");
    let mut bytes =
        trailsight::decode::gzip::gunzip_capped(&std::fs::read(&manifest).unwrap(), 1 << 30)
            .unwrap();
    let key = b"\"shardAssignment\":2";
    let at = (bytes.windows(key.len()).position(|w| w == key)).expect("the assignment is recorded");
    bytes[at + 1..at + 16].copy_from_slice(b"anEarlierField_");
    std::fs::write(&manifest, gzip(&bytes)).unwrap();

    let run = nightly(&sample, &out, &state, "2019-11-08T02:00:00Z", &shard);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let kept = &run.summary["shards"]["partitions_per_shard"];
    assert_eq!(kept, &serde_json::json!([4, 0, 0, 0]), "{}", run.summary);
    let bytes =
        trailsight::decode::gzip::gunzip_capped(&std::fs::read(&manifest).unwrap(), 1 << 30)
            .unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("shardAssignment"),
        "the state stays with the assignment it was made with"
    );
}
