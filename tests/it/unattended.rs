//! Runs nobody watches: one unreadable object costs only its own partition, and a later run
//! completes (or, after `--quarantine-after-runs`, gives up on) it.

use crate::incremental::nightly;
use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;

const STUCK: &str = "210987654321/us-east-1";
const BROKEN: &str = "AWSLogs/o-a1b2c3d4e5/210987654321/CloudTrail/us-east-1/2019/11/05/210987654321_CloudTrail_us-east-1_20191105T1200Z_brokenobjectxxxx.json.gz";

/// A copy of the sample with, in one partition's day folder, a link named like a log file to
/// `/proc/self/mem`, whose read fails with EIO (tests run as root, so a mode 000 file would
/// still be read).
fn sample_with_an_unreadable_object() -> tempfile::TempDir {
    let dir = copy_of_sample();
    std::os::unix::fs::symlink("/proc/self/mem", dir.path().join("logs").join(BROKEN)).unwrap();
    dir
}

/// A copy of `sample-data/` under `DIR/logs`.
fn copy_of_sample() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .args(["-r", "--"])
        .arg(repo_path("sample-data"))
        .arg(dir.path().join("logs"))
        .status()
        .unwrap();
    assert!(copied.success());
    dir
}

/// The output files of one (account, region) (`ACCOUNT/REGION`), by key.
fn of_partition(files: &BTreeMap<String, Vec<u8>>, partition: &str) -> BTreeMap<String, Vec<u8>> {
    let (account, region) = partition.split_once('/').unwrap();
    files
        .iter()
        .filter(|(k, _)| {
            k.contains(account)
                && (k.contains(&format!("/{region}/")) || k.contains(&format!("region={region}/")))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn without_partition(
    files: &BTreeMap<String, Vec<u8>>,
    partition: &str,
) -> BTreeMap<String, Vec<u8>> {
    let theirs = of_partition(files, partition);
    files
        .iter()
        .filter(|(k, _)| !theirs.contains_key(*k) && !k.starts_with("_trailsight/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The Insights, Parquet and explanations under `out` (not trailsight's own bookkeeping).
fn outputs(out: &Path) -> BTreeMap<String, Vec<u8>> {
    files(out)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_trailsight/"))
        .collect()
}

fn analyze_with_state(logs: &Path, out: &Path, state: &Path) -> Run {
    analyze(logs, out, &["--state", state.to_str().unwrap()])
}

#[test]
fn one_unreadable_object_withholds_only_its_partition_and_a_later_run_completes_it() {
    let clean = tempfile::tempdir().unwrap();
    let run = analyze(&repo_path("sample-data"), clean.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let reference = outputs(clean.path());
    assert!(!of_partition(&reference, STUCK).is_empty());

    let dir = sample_with_an_unreadable_object();
    let logs = dir.path().join("logs");
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let run = analyze_with_state(&logs, &out, &state);
    assert_eq!(run.code, 3, "a withheld partition exits 3: {}", run.stderr);
    let s = &run.summary;
    assert_eq!(
        s["partitions_withheld"],
        serde_json::json!([STUCK]),
        "{s:#}"
    );
    assert_eq!(s["objects_skipped"]["fetch failed"], 1, "{s:#}");
    assert_eq!(s["last_day"], "2019-11-09", "every day is analysed: {s:#}");
    assert!(run.stderr.contains(BROKEN), "{}", run.stderr);
    let written = outputs(&out);
    // Every other partition is written in full, as the clean run writes it.
    assert_eq!(
        without_partition(&written, STUCK),
        without_partition(&reference, STUCK)
    );
    // The stuck partition: its days before the broken object's are written, none after.
    let stuck: Vec<String> = of_partition(&written, STUCK).into_keys().collect();
    for key in &stuck {
        assert!(
            [
                "2019/10/",
                "2019/11/01",
                "2019/11/02",
                "2019/11/03",
                "2019/11/04",
                "date=2019-10",
                "date=2019-11-0"
            ]
            .iter()
            .any(|d| key.contains(d))
                && !key.contains("2019/11/05")
                && !key.contains("2019-11-05"),
            "{key} written for a withheld day"
        );
    }

    // The next run tries again (the link is still there): still withheld, nothing else redone.
    let run = analyze_with_state(&logs, &out, &state);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        run.summary["partitions_withheld"],
        serde_json::json!([STUCK])
    );

    // The object becomes readable (an empty log file): the next run reads it, the partition
    // is written from its day on, and the output is the clean run's, byte for byte.
    let broken = logs.join(BROKEN);
    std::fs::remove_file(&broken).unwrap();
    std::fs::write(&broken, gzip(br#"{"Records":[]}"#)).unwrap();
    let run = analyze_with_state(&logs, &out, &state);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["partitions_withheld"], serde_json::json!([]));
    assert_eq!(outputs(&out), reference);
}

#[test]
fn an_object_that_never_becomes_readable_is_quarantined_and_its_partition_written() {
    let clean = tempfile::tempdir().unwrap();
    assert_eq!(
        analyze(&repo_path("sample-data"), clean.path(), &[]).code,
        0
    );
    let reference = outputs(clean.path());

    let dir = sample_with_an_unreadable_object();
    let logs = dir.path().join("logs");
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let codes: Vec<i32> = (0..3)
        .map(|_| {
            let run = analyze(
                &logs,
                &out,
                &[
                    "--state",
                    state.to_str().unwrap(),
                    "--quarantine-after-runs",
                    "2",
                ],
            );
            run.code
        })
        .collect();
    // Run 1 fails to read it, run 2 tries again and gives up: the partition is written
    // without it (exit 1: an object was skipped), and run 3 has nothing left to retry.
    assert_eq!(codes, [3, 1, 0]);
    let written = outputs(&out);
    assert_eq!(
        written, reference,
        "the object held nothing: the output is the clean run's"
    );
    let report =
        std::fs::read_to_string(out.join("_trailsight/bad-objects/2019-11-09.json")).unwrap();
    assert!(
        report.contains("quarantined") && report.contains("brokenobjectxxxx"),
        "{report}"
    );
}

#[test]
fn every_shard_of_eight_succeeds_and_their_union_is_the_unsharded_run() {
    let sample = repo_path("sample-data");
    let whole = tempfile::tempdir().unwrap();
    assert_eq!(analyze(&sample, whole.path(), &[]).code, 0);
    let reference = outputs(whole.path());
    let mut union = BTreeMap::new();
    let mut empty = 0;
    let mut per_shard = None;
    for index in 0..8 {
        let out = tempfile::tempdir().unwrap();
        let shard = format!("{index}/8");
        let args = [
            "analyze",
            "--source",
            sample.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--shard",
            &shard,
        ];
        let run = trailsight_env(&args, &[("RUST_LOG", "info")]);
        assert_eq!(run.code, 0, "shard {shard}: {}", run.stderr);
        let counts = run.summary["shards"]["partitions_per_shard"].clone();
        assert_eq!(run.summary["shards"]["shard"], shard.as_str());
        assert_eq!(counts.as_array().map(Vec::len), Some(8), "{counts}");
        // Every shard sees the same spread, and its own count is its partitions.
        assert_eq!(
            per_shard.get_or_insert_with(|| counts.clone()),
            &counts,
            "{shard}"
        );
        assert_eq!(counts[index], run.summary["partitions"], "{shard}");
        if run.summary["partitions"] == 0 {
            empty += 1;
            assert!(
                run.stderr.contains(&format!("shard {shard} holds no")),
                "{}",
                run.stderr
            );
        }
        for (key, bytes) in outputs(out.path()) {
            assert!(union.insert(key.clone(), bytes).is_none(), "{key} twice");
        }
    }
    assert!(empty > 0, "the sample leaves some of 8 shards empty");
    assert_eq!(union, reference);
}

#[test]
fn from_and_to_default_to_the_first_and_last_delivery_days_found() {
    // The sample's delivery days run from 2019-10-31 to 2019-11-09.
    let cases: [(&[&str], &str, &str); 4] = [
        (&[], "2019-10-31", "2019-11-09"),
        (&["--from", "2019-11-03"], "2019-11-03", "2019-11-09"),
        (&["--to", "2019-11-03"], "2019-10-31", "2019-11-03"),
        (
            &["--from", "2019-11-02", "--to", "2019-11-04"],
            "2019-11-02",
            "2019-11-04",
        ),
    ];
    for (flags, first, last) in cases {
        let out = tempfile::tempdir().unwrap();
        let run = analyze(&repo_path("sample-data"), out.path(), flags);
        assert_eq!(run.code, 0, "{flags:?}: {}", run.stderr);
        let s = &run.summary;
        assert_eq!(
            (s["first_day"].as_str(), s["last_day"].as_str()),
            (Some(first), Some(last)),
            "{flags:?}"
        );
    }
}

#[test]
fn a_range_with_no_log_objects_fails_naming_the_path_and_the_folders_searched() {
    let sample = repo_path("sample-data");
    let out = tempfile::tempdir().unwrap();
    let run = analyze(
        &sample,
        out.path(),
        &["--from", "2030-01-01", "--to", "2030-01-02"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(sample.to_str().unwrap())
            && run.stderr.contains("2029-12-25 to 2030-01-03"),
        "{}",
        run.stderr
    );
    // An open end past every delivery day: no day to analyse at all.
    let run = analyze(&sample, out.path(), &["--from", "2030-01-01"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(sample.to_str().unwrap()),
        "{}",
        run.stderr
    );
}

#[test]
fn a_nightly_day_with_no_delivered_object_is_a_delivery_gap() {
    let sample = repo_path("sample-data");
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    // The last delivered day: all clear.
    let run = nightly(
        &sample,
        &out,
        &state,
        "2019-11-10T12:00:00Z",
        &["--first-day", "2019-11-09"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.summary.get("days_without_logs").is_none(),
        "{}",
        run.summary
    );
    // The two nights after: nothing was delivered for either day.
    let run = nightly(&sample, &out, &state, "2019-11-12T12:00:00Z", &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(
        run.summary["days_without_logs"],
        serde_json::json!(["2019-11-10", "2019-11-11"])
    );
    assert!(run.stderr.contains("delivery gap"), "{}", run.stderr);
}

#[test]
fn strict_names_what_earlier_days_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let copied = std::process::Command::new("cp")
        .args(["-r", "--"])
        .arg(repo_path("sample-data"))
        .arg(&logs)
        .status()
        .unwrap();
    assert!(copied.success());
    // A corrupt object in the last folder, which the step of 2019-11-08 reads: the days
    // before, with the sample's Insights of 2019-11-05 to 07, are written by then.
    let corrupt = BROKEN
        .replace("11/05", "11/09")
        .replace("20191105", "20191109");
    std::fs::write(logs.join(corrupt), b"not gzip at all").unwrap();
    let out = dir.path().join("out");
    let run = analyze(&logs, &out, &["--strict"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let written = outputs(&out);
    let json = written
        .keys()
        .filter(|k| k.ends_with(".json.gz") && k.contains("CloudTrail-Insight"))
        .count();
    let parquet = written.keys().filter(|k| k.ends_with(".parquet")).count();
    assert!(json > 0, "earlier days were written");
    assert!(
        !run.stderr.contains("nothing was written"),
        "{}",
        run.stderr
    );
    let said = format!(
        "for the days 2019-10-31 to 2019-11-07 analysed before: {json} JSON and {parquet} Parquet Insight file(s)"
    );
    assert!(run.stderr.contains(&said), "{said}\n{}", run.stderr);
}

#[test]
fn a_run_removes_stale_temporaries_from_its_output_folders_and_state_and_keeps_fresh_ones() {
    let sample = repo_path("sample-data");
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    assert_eq!(analyze(&sample, &out, &[]).code, 0);
    let insight = outputs(&out)
        .into_keys()
        .find(|k| k.ends_with(".json.gz") && k.contains("CloudTrail-Insight"))
        .unwrap();
    let day_folder = out.join(Path::new(&insight).parent().unwrap());
    std::fs::create_dir_all(&state).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let plant = |folder: &Path, name: &str, old: bool| {
        let path = folder.join(name);
        let file = std::fs::File::create(&path).unwrap();
        if old {
            file.set_modified(two_hours_ago).unwrap();
        }
        path
    };
    let stale = [
        plant(&day_folder, ".x.json.gz.1234.tmp", true),
        plant(&state, ".trailsight-state.json.gz.5678.tmp", true),
    ];
    let fresh = [
        plant(&day_folder, ".y.json.gz.abcd.tmp", false),
        plant(&state, ".trailsight-state.json.gz.9abc.tmp", false),
    ];
    // Not of this store's naming: never touched.
    let foreign = plant(&day_folder, "notes.tmp", true);
    let run = analyze_with_state(&sample, &out, &state);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for path in &stale {
        assert!(!path.exists(), "{} left", path.display());
    }
    for path in fresh.iter().chain([&foreign]) {
        assert!(path.exists(), "{} removed", path.display());
    }
}

/// A lock body as a run on `host` with `pid` that took it `age_secs` ago writes it.
fn plant_lock(state: &Path, pid: u32, host: &str, age_secs: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::create_dir_all(state).unwrap();
    std::fs::write(
        state.join("trailsight-state.lock"),
        format!("pid {pid} on {host}\n{}\n00ff00ff\n", now - age_secs),
    )
    .unwrap();
}

#[test]
fn a_lock_of_a_process_gone_from_this_host_is_taken_over_at_once() {
    let sample = repo_path("sample-data");
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown host".into());
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    let gone = exited.id();
    assert!(exited.wait().unwrap().success());
    let cases: [(u32, &str, u64, &[&str], bool); 5] = [
        // (holder pid, host, age, flags, taken over)
        (gone, &host, 10, &[], true),
        (std::process::id(), &host, 10, &[], false),
        (gone, "another-host", 10, &[], false),
        (gone, "another-host", 120, &["--lock-ttl-secs", "60"], true),
        (
            std::process::id(),
            &host,
            120,
            &["--lock-ttl-secs", "60"],
            true,
        ),
    ];
    for (pid, holder_host, age, flags, taken) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (out, state) = (dir.path().join("out"), dir.path().join("state"));
        plant_lock(&state, pid, holder_host, age);
        let mut args = vec!["--state", state.to_str().unwrap()];
        args.extend_from_slice(flags);
        let run = analyze(&sample, &out, &args);
        let case = format!("pid {pid} on {holder_host}, {age} s, {flags:?}");
        if taken {
            assert_eq!(run.code, 0, "{case}: {}", run.stderr);
            assert!(!state.join("trailsight-state.lock").exists(), "{case}");
        } else {
            assert_eq!(run.code, 2, "{case}: {}", run.stderr);
            assert!(
                run.stderr.contains("locked by another run"),
                "{case}: {}",
                run.stderr
            );
        }
    }
}

/// A tree of `days` days from 2024-03-01, two partitions, `objects` objects of `records` each
/// per day folder: big enough that a run takes a while.
fn big_tree(days: u32, objects: u32, records: u32) -> Tree {
    let tree = Tree::new();
    let mut id = 0;
    for d in 0..days {
        let day = (chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap()
            + chrono::Duration::days(i64::from(d)))
        .to_string();
        for (account, region) in [("111122223333", "us-east-1"), ("111122223333", "eu-west-1")] {
            for o in 0..objects {
                let batch: Vec<_> = (0..records)
                    .map(|r| {
                        id += 1;
                        let minute = (o * records + r) % 1440;
                        call(
                            account,
                            region,
                            &at(&day, minute, r % 60),
                            "DescribeInstances",
                            id,
                        )
                    })
                    .collect();
                tree.write_log(
                    &log_key("", None, account, region, &day, &format!("o{o}")),
                    &batch,
                );
            }
        }
    }
    tree
}

#[test]
fn a_run_stopped_by_sigterm_exits_143_releases_its_lock_and_resumes_to_the_same_output() {
    let tree = big_tree(14, 6, 500);
    let reference = tempfile::tempdir().unwrap();
    let slow = ["--threads", "1", "--concurrency", "1"];
    assert_eq!(analyze(tree.path(), reference.path(), &slow).code, 0);

    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
        .args([
            "analyze",
            "--source",
            tree.path().to_str().unwrap(),
            "--out",
        ])
        .arg(&out)
        .arg("--state")
        .arg(&state)
        .args(slow)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = state.join("trailsight-state.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never locked its state"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the signal"
    );
    // SAFETY: the pid is our own child's, which has not been waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by signal"), "{stderr}");
    assert!(!lock.exists(), "the lock is released");

    let run = analyze_with_state(tree.path(), &out, &state);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(outputs(&out), outputs(reference.path()));
}

#[test]
fn a_nightly_that_only_retries_a_stuck_partition_is_no_delivery_gap() {
    let dir = sample_with_an_unreadable_object();
    let logs = dir.path().join("logs");
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let night = "2019-11-10T12:00:00Z";
    let first = ["--first-day", "2019-11-01"];
    let run = nightly(&logs, &out, &state, night, &first);
    assert_eq!(run.code, 3, "{}", run.stderr);
    // The same night again, the object readable now: nothing new to analyse, the stuck
    // partition is read again (its day's folder is not listed again, which is no gap).
    let broken = logs.join(BROKEN);
    std::fs::remove_file(&broken).unwrap();
    std::fs::write(&broken, gzip(br#"{"Records":[]}"#)).unwrap();
    let run = nightly(&logs, &out, &state, night, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.summary.get("days_without_logs").is_none(),
        "{}",
        run.summary
    );
}

/// One (account, region) of an organization trail goes quiet for a day while the others go
/// on: a delivery gap, named in the summary with what it usually delivers, exit 4; the day
/// after it delivers again and is no gap.
#[test]
fn a_partition_that_goes_quiet_while_the_trail_goes_on_is_a_delivery_gap() {
    let dir = copy_of_sample();
    let quiet = "AWSLogs/o-a1b2c3d4e5/210987654321/CloudTrail/eu-west-1/2019/11/07";
    std::fs::remove_dir_all(dir.path().join("logs").join(quiet)).unwrap();
    let run = analyze(&dir.path().join("logs"), &dir.path().join("out"), &[]);
    assert_eq!(run.code, 4, "a delivery gap exits 4: {}", run.stderr);
    let gaps = run.summary["delivery_gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let gap = &gaps[0];
    assert_eq!(
        (
            gap["account"].as_str(),
            gap["region"].as_str(),
            gap["day"].as_str()
        ),
        (Some("210987654321"), Some("eu-west-1"), Some("2019-11-07"))
    );
    assert_eq!(gap["seen"], 0);
    assert!(gap["expected"].as_u64().unwrap() >= 12, "{gap}");
    assert!(
        run.stderr.contains("delivery gap: 210987654321/eu-west-1"),
        "{}",
        run.stderr
    );
    // The untouched sample has none.
    let clean = analyze(&repo_path("sample-data"), &dir.path().join("clean"), &[]);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    assert!(clean.summary.get("delivery_gaps").is_none());
}

/// Many runs started at once against one state folder, as overlapping cron entries or a job
/// retried while its first attempt still runs: each time exactly one runs and every other is
/// refused naming the lock, and the lock is gone once the one is done. Separate processes,
/// as in production (a lock that is only safe between threads would pass a threaded test).
#[test]
fn of_many_runs_started_at_once_against_one_state_exactly_one_runs() {
    const TRIALS: usize = 10;
    const RUNS: usize = 8;
    // Long enough (about a second) that the one that wins still holds the lock when the
    // last of the others starts.
    let tree = big_tree(9, 4, 400);
    for trial in 0..TRIALS {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let children: Vec<_> = (0..RUNS)
            .map(|i| {
                std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
                    .args([
                        "analyze",
                        "--source",
                        tree.path().to_str().unwrap(),
                        "--out",
                    ])
                    .arg(dir.path().join(format!("out{i}")))
                    .arg("--state")
                    .arg(&state)
                    .args(["--threads", "1"])
                    .env("RUST_LOG", "warn")
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let ended: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let ran = ended.iter().filter(|o| o.status.success()).count();
        let stderrs: Vec<_> = ended
            .iter()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .collect();
        assert_eq!(ran, 1, "trial {trial}: {ran} of {RUNS} ran: {stderrs:#?}");
        for (o, stderr) in ended.iter().zip(&stderrs) {
            if !o.status.success() {
                assert_eq!(o.status.code(), Some(2), "trial {trial}: {stderr}");
                assert!(
                    stderr.contains("locked by another run"),
                    "trial {trial}: {stderr}"
                );
            }
        }
        assert!(
            !state.join("trailsight-state.lock").exists(),
            "trial {trial}"
        );
    }
}
