//! Nightly runs, backfills and shards give the same bytes: the invariants of incremental runs.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Output files, leaving out hidden (temporary) files.
fn visible(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files(dir)
        .into_iter()
        .filter(|(k, _)| !k.rsplit('/').next().unwrap_or("").starts_with('.'))
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

fn nightly(source: &Path, out: &Path, state: &Path, as_of: &str, extra: &[&str]) -> Run {
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
    let run = trailsight(
        &args(clean_out.path(), clean_state.path())
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let expected = (visible(clean_out.path()), visible(clean_state.path()));

    let mut killed_mid_run = 0;
    for delay_ms in [5u64, 40, 90, 160, 260] {
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
        assert_eq!(
            (visible(out.path()), visible(state.path())),
            expected,
            "killed after {delay_ms} ms"
        );
    }
    assert!(
        killed_mid_run >= 3,
        "only {killed_mid_run} of 5 kills landed before the run finished"
    );
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
    for (night, as_of) in ["2019-11-06", "2019-11-07", "2019-11-08", "2019-11-09"]
        .iter()
        .enumerate()
    {
        let first: &[&str] = if night == 0 {
            &["--first-day", "2019-11-05"]
        } else {
            &[]
        };
        let run = nightly(
            tree.path(),
            out.path(),
            state.path(),
            &format!("{as_of}T02:00:00Z"),
            first,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        out_of_scope.push(run.summary["records_out_of_scope"].as_u64().unwrap());
        assert_eq!(run.summary["duplicates_dropped"], 0, "{:#}", run.summary);
    }
    // The last night reads the 2019-11-09 folder (the day after 2019-11-08), when the window
    // starts on 2019-11-01: both stale records are out of scope, nothing else is.
    assert_eq!(out_of_scope[3], 2, "{out_of_scope:?}");
}
