//! S3 end to end, against a real S3 server (s3s-fs on 127.0.0.1) behind a fault-injecting
//! proxy: the same bytes as the local run, a careful listing, pagination, retries, and an
//! object that keeps failing.

use crate::s3_server::{Fault, S3Server, Seen};
use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const ORG: &str = "o-a1b2c3d4e5";
const THIRD_ACCOUNT: &str = "333344445555";
const SPIKE_DAY: &str = "2019-11-08";
const OWNER: &str = "111122223333";

/// Run trailsight against the test server, with short retry waits.
fn run_s3(server: &S3Server, source: &str, out: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "analyze",
        "--source",
        source,
        "--out",
        out,
        "--force-path-style",
        "--retry-base-delay-ms",
        "5",
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let run = trailsight_env(&args, &server.env());
    eprintln!(
        "trailsight {args:?}: exit {} in {:?}",
        run.code,
        started.elapsed()
    );
    run
}

/// One call a day at 10:00 for the 7 days before the spike day, then `burst` calls in one
/// minute of the spike day (none if 0), each day in its own delivery folder.
/// `ids` keeps event IDs unique across the partitions of one account.
fn partition_logs(tree: &Tree, account: &str, region: &str, burst: u32, ids: u64) {
    let spike = chrono::NaiveDate::parse_from_str(SPIKE_DAY, "%Y-%m-%d").unwrap();
    for back in 1..=7 {
        let day = (spike - chrono::Duration::days(back)).to_string();
        let record = call(
            account,
            region,
            &at(&day, 600, 0),
            "RunInstances",
            ids + back as u64,
        );
        tree.write_log(
            &log_key("ct/", Some(ORG), account, region, &day, "h"),
            &[record],
        );
    }
    let records: Vec<Value> = (0..burst)
        .map(|i| {
            let time = at(SPIKE_DAY, 13 * 60 + 25, i);
            call(
                account,
                region,
                &time,
                "RunInstances",
                ids + 100 + u64::from(i),
            )
        })
        .collect();
    if !records.is_empty() {
        tree.write_log(
            &log_key("ct/", Some(ORG), account, region, SPIKE_DAY, "b"),
            &records,
        );
    }
    // Days far outside the analysis window: a careful run never lists them.
    for day in ["2019-10-20", "2019-11-15"] {
        let record = call(account, region, &at(day, 600, 0), "RunInstances", ids + 900);
        tree.write_log(
            &log_key("ct/", Some(ORG), account, region, day, "f"),
            &[record],
        );
    }
}

/// An organization trail under the prefix `ct/`: two accounts in two regions analysed, and a
/// third account and a third region that `--accounts` and `--regions` leave out.
fn org_tree() -> Tree {
    let tree = Tree::new();
    partition_logs(&tree, ACCOUNT, "us-east-1", 12, 0);
    partition_logs(&tree, ACCOUNT, "eu-west-1", 9, 1000);
    partition_logs(&tree, OTHER_ACCOUNT, "us-east-1", 15, 0);
    partition_logs(&tree, OTHER_ACCOUNT, "eu-west-1", 0, 1000);
    partition_logs(&tree, ACCOUNT, "ap-south-1", 20, 2000);
    partition_logs(&tree, THIRD_ACCOUNT, "us-east-1", 20, 0);
    tree
}

const ORG_FILTERS: [&str; 8] = [
    "--from",
    SPIKE_DAY,
    "--to",
    SPIKE_DAY,
    "--accounts",
    "123456789012,210987654321",
    "--regions",
    "us-east-1,eu-west-1",
];

/// The org tree analysed locally, and the same tree uploaded to `s3://cloudtrail/ct/`.
fn org_setup() -> (Tree, tempfile::TempDir, S3Server) {
    let tree = org_tree();
    let local_out = tempfile::tempdir().unwrap();
    let local = analyze(tree.path(), local_out.path(), &ORG_FILTERS);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let server = S3Server::start(&["cloudtrail", "insights"]);
    server.upload_tree(&tree.path().join("ct"), "cloudtrail", "ct/");
    (tree, local_out, server)
}

/// The prefixes listed in `bucket`, in order.
fn list_prefixes(seen: &[Seen], bucket: &str) -> Vec<String> {
    seen.iter()
        .filter(|s| s.bucket() == bucket)
        .filter_map(|s| s.list_prefix().map(str::to_owned))
        .collect()
}

/// The day folders (`.../CloudTrail/REGION/YYYY/MM/DD/`) among listed prefixes.
fn day_prefixes(prefixes: &[String]) -> BTreeSet<String> {
    prefixes
        .iter()
        .filter(|p| {
            let s: Vec<&str> = p.trim_end_matches('/').split('/').collect();
            let n = s.len();
            let digits =
                |t: &str, len: usize| t.len() == len && t.bytes().all(|b| b.is_ascii_digit());
            n >= 5
                && s[n - 5] == "CloudTrail"
                && digits(s[n - 3], 4)
                && digits(s[n - 2], 2)
                && digits(s[n - 1], 2)
        })
        .cloned()
        .collect()
}

#[test]
fn sample_data_from_s3_gives_the_same_bytes_as_the_local_run() {
    let sample = repo_path("sample-data");
    let local_out = tempfile::tempdir().unwrap();
    let local = analyze(&sample, local_out.path(), &[]);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let expected = files(local_out.path());
    assert!(!expected.is_empty());

    let server = S3Server::start(&["cloudtrail", "insights"]);
    server.upload_tree(&sample, "cloudtrail", "org/trail/");
    let run = run_s3(
        &server,
        "s3://cloudtrail/org/trail",
        "s3://insights/out",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.objects("insights", "out"), expected);
    for field in [
        "objects_read",
        "records",
        "insight_records_written",
        "files_written",
    ] {
        assert_eq!(run.summary[field], local.summary[field], "{field}");
    }
    let seen = server.take_seen();
    let prefixes = list_prefixes(&seen, "cloudtrail");
    for prefix in &prefixes {
        assert!(prefix.starts_with("org/trail/"), "listed {prefix:?}");
    }
    // Days were discovered (no --from/--to); the day folders read are the analysed days, the
    // 7 before them and the one after, nothing else.
    let day = |v: &Value| chrono::NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d");
    let first = day(&run.summary["first_day"]).unwrap() - chrono::Duration::days(7);
    let last = day(&run.summary["last_day"]).unwrap() + chrono::Duration::days(1);
    let days = day_prefixes(&prefixes);
    assert_eq!(days.len() as i64, 4 * ((last - first).num_days() + 1));
    // Each day folder is listed once (one page each here), although each day's step reads the
    // folder of the day after it and the next step starts from that folder: a folder whose day
    // is over holds nothing new the second time.
    for prefix in &days {
        let listings = prefixes.iter().filter(|p| *p == prefix).count();
        assert_eq!(listings, 1, "{prefix} listed {listings} times");
    }
    for prefix in &days {
        let folder = &prefix[prefix.len() - 11..prefix.len() - 1];
        let date = chrono::NaiveDate::parse_from_str(folder, "%Y/%m/%d").unwrap();
        assert!(
            first <= date && date <= last,
            "listed {prefix} outside {first}..{last}"
        );
    }
    let requests = &run.summary["s3_requests"];
    eprintln!("sample data over S3: {requests}");
    assert_eq!(requests["failed"], 0);

    // A second run replaces the same keys: nothing is added, nothing changes.
    let again = run_s3(
        &server,
        "s3://cloudtrail/org/trail",
        "s3://insights/out",
        &[],
    );
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(server.objects("insights", "out"), expected);
}

/// `trailsight report` with the Insights and the logs in S3 (read through the same store and
/// source as `analyze`, with the same S3 flags) draws the page it draws from disk.
#[test]
fn a_report_read_from_s3_is_the_page_read_from_disk() {
    let sample = repo_path("sample-data");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = analyze(&sample, &out, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let server = S3Server::start(&["cloudtrail", "insights"]);
    server.upload_tree(&sample, "cloudtrail", "org/trail/");
    server.upload_tree(&out, "insights", "runs/out/");
    let (local_html, s3_html) = (dir.path().join("local.html"), dir.path().join("s3.html"));
    let report = |insights: &str, source: &str, html: &std::path::Path, env: &[(&str, String)]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
            .args([
                "report",
                "--insights",
                insights,
                "--source",
                source,
                "--html",
            ])
            .arg(html)
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("episodes                     3"),
            "{stderr}"
        );
        assert!(stderr.contains("log objects read"), "{stderr}");
        std::fs::read_to_string(html).unwrap()
    };
    let from_disk = report(
        out.to_str().unwrap(),
        sample.to_str().unwrap(),
        &local_html,
        &[],
    );
    let from_s3 = report(
        "s3://insights/runs/out",
        "s3://cloudtrail/org/trail",
        &s3_html,
        &server.env(),
    );
    // The page names where it read from; everything else is the same bytes but the coverage
    // section of the run's record (`upload_tree` copies no run record, as `files` lists none).
    let without_run_time = |page: &str| match page.find(r#"<section class="panel" id="coverage">"#)
    {
        Some(at) => {
            let end = at + page[at..].find("</section>\n").unwrap() + "</section>\n".len();
            format!("{}{}", &page[..at], &page[end..])
        }
        None => page.to_owned(),
    };
    let from_disk = from_disk
        .replace(out.to_str().unwrap(), "s3://insights/runs/out/")
        .replace(sample.to_str().unwrap(), "s3://cloudtrail/org/trail/");
    assert!(from_s3.contains("s3://insights/runs/out/"));
    assert_eq!(without_run_time(&from_s3), without_run_time(&from_disk));
    let seen = server.take_seen();
    assert!(
        seen.iter()
            .any(|s| s.is_get_object() && s.bucket() == "insights")
    );
    assert!(
        seen.iter()
            .all(|s| s.method != "PUT" && s.method != "DELETE"),
        "report never writes to S3"
    );
}

#[test]
fn org_trail_lists_only_the_day_folders_it_needs_and_sends_the_bucket_owner() {
    let (_tree, local_out, server) = org_setup();
    let mut args = ORG_FILTERS.to_vec();
    args.extend([
        "--expected-bucket-owner",
        OWNER,
        "--sse-kms-key-id",
        "alias/trailsight-test",
    ]);
    let run = run_s3(&server, "s3://cloudtrail/ct", "s3://insights", &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = server.objects("insights", "");
    assert_eq!(written, files(local_out.path()));
    let insight_files = written.keys().filter(|k| k.starts_with("AWSLogs/")).count();
    assert_eq!(insight_files, 3, "{:?}", written.keys());
    assert_eq!(run.summary["partitions"], 4);

    let seen = server.take_seen();
    let prefixes = list_prefixes(&seen, "cloudtrail");
    let lists = seen
        .iter()
        .filter(|s| s.bucket() == "cloudtrail" && s.list_prefix().is_some());
    for (prefix, request) in prefixes.iter().zip(lists) {
        assert!(prefix.starts_with("ct/"), "unprefixed listing {prefix:?}");
        assert_eq!(
            request.query.get("delimiter").map(String::as_str),
            Some("/"),
            "{prefix}"
        );
        assert!(
            !prefix.contains(THIRD_ACCOUNT),
            "pruned account listed: {prefix}"
        );
        assert!(
            !prefix.contains("ap-south-1"),
            "pruned region listed: {prefix}"
        );
    }
    let mut expected_days = BTreeSet::new();
    for account in [ACCOUNT, OTHER_ACCOUNT] {
        for region in ["us-east-1", "eu-west-1"] {
            for day in 1..=9 {
                expected_days.insert(format!(
                    "ct/AWSLogs/{ORG}/{account}/CloudTrail/{region}/2019/11/{day:02}/"
                ));
            }
        }
    }
    assert_eq!(day_prefixes(&prefixes), expected_days);
    // With --from/--to, no year or month folder is listed, and each day folder once.
    assert_eq!(
        prefixes.len(),
        expected_days.len() + 1 + 1 + 1 + 2,
        "root, AWSLogs/, the organization, two CloudTrail/ folders, and the days: {prefixes:#?}"
    );

    assert!(!seen.is_empty());
    assert_owner_on_every_request_and_kms_on_every_write(&seen);
    let puts = seen.iter().filter(|s| s.method == "PUT").count();
    assert_eq!(
        puts, 16,
        "3 JSON, 3 Parquet, 3 explanation and 3 activities files, 3 notification ledgers and the run's record"
    );
    assert!(!run.stderr.contains(crate::s3_server::SECRET_KEY));
}

#[test]
fn a_day_folder_with_more_than_1000_objects_is_read_page_by_page() {
    const OBJECTS: u64 = 1150;
    let day = "2019-11-08";
    let server = S3Server::start(&["cloudtrail", "insights"]);
    for i in 0..OBJECTS {
        let key = log_key("", None, ACCOUNT, "us-east-1", day, &format!("{i:016}"));
        let record = call(
            ACCOUNT,
            "us-east-1",
            &at(day, 600, (i % 60) as u32),
            "RunInstances",
            i,
        );
        let body = gzip(
            serde_json::json!({ "Records": [record] })
                .to_string()
                .as_bytes(),
        );
        server.put_raw("cloudtrail", &key, &body);
    }
    let run = run_s3(
        &server,
        "s3://cloudtrail",
        "s3://insights",
        &["--from", day, "--to", day],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["objects_listed"], OBJECTS);
    assert_eq!(run.summary["objects_read"], OBJECTS);
    assert_eq!(run.summary["write_events"], OBJECTS);
    let seen = server.take_seen();
    let day_prefix = format!("AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2019/11/08/");
    let pages: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.list_prefix() == Some(day_prefix.as_str()))
        .collect();
    assert_eq!(pages.len(), 2, "1000 keys per page");
    assert!(!pages[0].query.contains_key("continuation-token"));
    assert!(pages[1].query.contains_key("continuation-token"));
    assert_eq!(
        seen.iter().filter(|s| s.is_get_object()).count() as u64,
        OBJECTS
    );
}

#[test]
fn throttling_errors_and_dropped_connections_are_survived_with_identical_output() {
    let (_tree, local_out, server) = org_setup();
    let get = "/cloudtrail/ct/AWSLogs/";
    server.fault("GET", "list-type=2", Fault::Error(503, "SlowDown"), 3);
    server.fault("GET", get, Fault::Error(503, "SlowDown"), 2);
    server.fault("GET", get, Fault::Error(500, "InternalError"), 2);
    server.fault("GET", get, Fault::CutBody, 3);
    server.fault("GET", get, Fault::Drop, 2);
    server.fault("GET", get, Fault::Delay(Duration::from_secs(4)), 1);
    server.fault("PUT", "/insights/", Fault::Error(503, "SlowDown"), 1);
    server.fault("PUT", "/insights/", Fault::Drop, 1);
    // The same kinds of fault on listings: 5xx, an answer slower than the timeout, a listing
    // cut off mid-body, a dropped connection.
    server.fault("GET", "list-type=2", Fault::Error(500, "InternalError"), 2);
    server.fault(
        "GET",
        "list-type=2",
        Fault::Delay(Duration::from_secs(4)),
        1,
    );
    server.fault("GET", "list-type=2", Fault::CutBody, 2);
    server.fault("GET", "list-type=2", Fault::Drop, 1);
    let injected = 3 + 2 + 2 + 3 + 2 + 1 + 1 + 1 + 2 + 1 + 2 + 1;
    let mut args = ORG_FILTERS.to_vec();
    args.extend(["--max-attempts", "12", "--request-timeout-secs", "2"]);
    let run = run_s3(&server, "s3://cloudtrail/ct", "s3://insights", &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.faults_applied(), injected);
    assert_eq!(server.objects("insights", ""), files(local_out.path()));
    let requests = &run.summary["s3_requests"];
    eprintln!("with {injected} faults injected: {requests}");
    assert_eq!(requests["failed"], 0);
    let retries: u64 = requests["retries"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        retries, injected as u64,
        "one retry per injected fault: {requests}"
    );
    assert_eq!(requests["retries"]["503 SlowDown"], 6);
    assert_eq!(requests["retries"]["500 InternalError"], 4);
    assert_eq!(requests["retries"]["timeout"], 2);
    assert_eq!(requests["retries"]["body interrupted"], 3);
    assert_eq!(requests["retries"]["connection error"], 4);
    assert_eq!(
        requests["retries"]["malformed response"], 2,
        "listings cut mid-body"
    );
}

/// One object that S3 keeps refusing, whether with a server error (retried) or a 403 (one object
/// under a KMS key or bucket policy the run may not use: not retried): only its partition is
/// withheld.
#[test]
fn an_object_that_keeps_failing_is_named_and_its_partition_withheld() {
    for (fault, attempts) in [
        (Fault::Error(500, "InternalError"), 3),
        (Fault::Error(403, "AccessDenied"), 1),
    ] {
        an_object_that_keeps_failing(fault, attempts);
    }
}

fn an_object_that_keeps_failing(fault: Fault, attempts: usize) {
    let (_tree, local_out, server) = org_setup();
    let failing = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", "2019-11-05", "h");
    let case = format!("{fault:?}");
    server.fault("GET", &format!("/cloudtrail/{failing}"), fault, usize::MAX);
    // Output left by an earlier run: the withheld partition's file must stay as it was, and a
    // partition that now has no Insights loses its stale file.
    let day = chrono::NaiveDate::parse_from_str(SPIKE_DAY, "%Y-%m-%d").unwrap();
    let withheld_key = trailsight::sink::json::file_key(Some(ORG), ACCOUNT, "us-east-1", day);
    let stale_key = trailsight::sink::json::file_key(Some(ORG), OTHER_ACCOUNT, "eu-west-1", day);
    server.put_raw("insights", &withheld_key, b"from an earlier run");
    server.put_raw("insights", &stale_key, b"stale");

    let mut args = ORG_FILTERS.to_vec();
    args.extend(["--max-attempts", "3"]);
    let run = run_s3(&server, "s3://cloudtrail/ct", "s3://insights", &args);
    assert_eq!(
        run.code, 3,
        "{case}: a withheld partition exits 3: {}",
        run.stderr
    );
    let s = &run.summary;
    let display = format!("s3://cloudtrail/{failing}");
    assert_eq!(s["objects_skipped"]["fetch failed"], 1, "{s:#}");
    assert_eq!(s["skipped"][0]["object"], display.as_str());
    assert!(
        s["skipped"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("{attempts} attempt")),
        "{case}: {s:#}"
    );
    assert_eq!(
        s["partitions_withheld"],
        serde_json::json!([format!("{ACCOUNT}/us-east-1")])
    );
    assert!(run.stderr.contains(&display), "{}", run.stderr);
    assert!(run.stderr.contains("withheld"), "{}", run.stderr);

    let mut expected = files(local_out.path());
    assert!(
        expected.contains_key(&withheld_key),
        "the withheld partition has Insights"
    );
    assert!(!expected.contains_key(&stale_key));
    // Nothing of the withheld partition is written in any format.
    let withheld_partition = format!("account={ACCOUNT}/region=us-east-1/");
    let withheld_ledger = format!("_trailsight/notifications/seen/{ACCOUNT}/us-east-1/");
    expected.retain(|k, _| !k.contains(&withheld_partition) && !k.starts_with(&withheld_ledger));
    expected.insert(withheld_key.clone(), b"from an earlier run".to_vec());
    // The bad-objects report, written to the output bucket, names the object for a re-run.
    let mut written = server.objects("insights", "");
    let report_key = format!("_trailsight/bad-objects/{SPIKE_DAY}.json");
    let report = written.remove(&report_key).expect("the bad-objects report");
    assert!(String::from_utf8_lossy(&report).contains(&display));
    assert_eq!(written, expected);
    assert_eq!(s["stale_files_removed"], 1);
    let seen = server.take_seen();
    let seen_attempts = seen
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&failing))
        .count();
    assert_eq!(seen_attempts, attempts, "{case}");
    assert!(!seen.iter().any(|r| r.path.contains(&withheld_key)));
}

#[test]
fn an_object_over_the_size_limit_is_skipped_without_downloading_it() {
    let (_tree, local_out, server) = org_setup();
    // Listed at 8 MiB (a sparse file): never asked for. A 20-byte object the server then sends
    // with 2 MiB more behind it: read only up to the cap. The cap is 1 MiB.
    let huge = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", SPIKE_DAY, "huge");
    sparse_file(&server.object_path("cloudtrail", &huge), 8 << 20);
    let liar = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", SPIKE_DAY, "liar");
    server.put_raw("cloudtrail", &liar, &gzip(br#"{"Records":[]}"#));
    server.fault(
        "GET",
        &format!("/cloudtrail/{liar}"),
        Fault::Inflate(2 << 20),
        usize::MAX,
    );
    let mut args = ORG_FILTERS.to_vec();
    args.extend(["--max-object-bytes", "1048576"]);
    let run = run_s3(&server, "s3://cloudtrail/ct", "s3://insights", &args);
    assert_eq!(run.code, 1, "skipped objects give exit 1: {}", run.stderr);
    let s = &run.summary;
    assert_eq!(s["objects_skipped"]["over the size limit"], 2, "{s:#}");
    assert_eq!(s["partitions_withheld"], serde_json::json!([]), "{s:#}");
    let detail = |key: &str| {
        let display = format!("s3://cloudtrail/{key}");
        assert!(run.stderr.contains(&display), "{}", run.stderr);
        let skipped = s["skipped"].as_array().unwrap().iter();
        let entry = skipped.clone().find(|e| e["object"] == display.as_str());
        entry.unwrap_or_else(|| panic!("{display} not in {s:#}"))["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mentions_all = |detail: String, parts: [&str; 3]| {
        for part in parts {
            assert!(detail.contains(part), "{detail}");
        }
    };
    mentions_all(
        detail(&huge),
        [
            "listed at 8388608 bytes",
            "limit of 1048576 bytes",
            "not downloaded",
        ],
    );
    mentions_all(
        detail(&liar),
        [
            "limit of 1048576 bytes",
            "--max-object-bytes",
            "arrived; the rest",
        ],
    );
    // The rest of the run is the local run's output, plus the report naming both objects.
    let mut written = server.objects("insights", "");
    let report_key = format!("_trailsight/bad-objects/{SPIKE_DAY}.json");
    let report = String::from_utf8(written.remove(&report_key).expect("the report")).unwrap();
    for key in [&huge, &liar] {
        assert!(
            report.contains(&format!("s3://cloudtrail/{key}")),
            "{report}"
        );
    }
    assert!(report.contains("over the size limit"), "{report}");
    assert_eq!(written, files(local_out.path()));
    // No GetObject for the object listed over the cap; one (no retry) for the liar.
    let seen = server.take_seen();
    let gets = |key: &str| {
        seen.iter()
            .filter(|r| r.is_get_object() && r.path == format!("/cloudtrail/{key}"))
            .count()
    };
    assert_eq!(gets(&huge), 0);
    assert_eq!(gets(&liar), 1);
}

/// The org tree plus one object of a few hundred records (several KiB compressed, where the
/// others are a few hundred bytes), analysed locally, and uploaded to `s3://cloudtrail/ct/`.
fn org_setup_with_a_large_object() -> (tempfile::TempDir, S3Server, String) {
    let tree = org_tree();
    let day = "2019-11-05";
    let records: Vec<Value> = (0..400u32)
        .map(|i| {
            let time = at(day, (i * 7) % 1440, i % 60);
            call(
                ACCOUNT,
                "us-east-1",
                &time,
                "RunInstances",
                5000 + u64::from(i),
            )
        })
        .collect();
    let large = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", day, "large");
    tree.write_log(&large, &records);
    let local_out = tempfile::tempdir().unwrap();
    let local = analyze(tree.path(), local_out.path(), &ORG_FILTERS);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let server = S3Server::start(&["cloudtrail"]);
    server.upload_tree(&tree.path().join("ct"), "cloudtrail", "ct/");
    (local_out, server, large)
}

#[test]
fn bytes_in_flight_stay_within_the_budget_and_an_object_larger_than_it_is_still_read() {
    let (local_out, server, large) = org_setup_with_a_large_object();
    let expected = files(local_out.path());
    let size = |path: &str| {
        let key = path.trim_start_matches("/cloudtrail/");
        std::fs::metadata(server.object_path("cloudtrail", key)).map_or(0, |m| m.len())
    };
    let large_size = size(&format!("/cloudtrail/{large}"));
    // Every GetObject answered 150 ms late, so fetches that may overlap do.
    server.fault(
        "GET",
        ".json.gz",
        Fault::Delay(Duration::from_millis(150)),
        usize::MAX,
    );
    assert!(large_size > 2048, "the large object has {large_size} bytes");
    // (bytes in flight allowed, or the default; the most GetObjects at once that allows)
    let budgets = [(Some(1u64), 1usize), (Some(2048), 2), (None, 16)];
    let mut most = Vec::new();
    for (budget, at_most) in budgets {
        let out = tempfile::tempdir().unwrap();
        let mut args = ORG_FILTERS.to_vec();
        args.extend(["--concurrency", "16"]);
        let budget_text = budget.map(|b| b.to_string());
        if let Some(text) = &budget_text {
            args.extend(["--max-bytes-in-flight", text.as_str()]);
        }
        let run = run_s3(
            &server,
            "s3://cloudtrail/ct",
            out.path().to_str().unwrap(),
            &args,
        );
        let case = format!("budget {budget:?}");
        assert_eq!(run.code, 0, "{case}: {}", run.stderr);
        assert_eq!(files(out.path()), expected, "{case}: the local run's bytes");
        let spans = server.take_get_spans();
        assert!(
            spans
                .iter()
                .any(|s| s.path == format!("/cloudtrail/{large}")),
            "{case}: the large object was fetched"
        );
        assert_eq!(
            run.summary["objects_read"].as_u64(),
            Some(spans.len() as u64),
            "{case}: one GetObject per object read"
        );
        // What each object reserves: its size in whole KiB, and at most the whole budget (at
        // least 1 KiB), so one larger than the budget is fetched alone.
        let whole = budget.map_or(u64::MAX, |b| b.div_ceil(1024).max(1) * 1024);
        let reserved = |path: &str| (size(path).div_ceil(1024) * 1024).min(whole);
        let (count, bytes) = crate::s3_server::most_in_flight(&spans, reserved);
        eprintln!("{case}: at most {count} GetObjects and {bytes} bytes reserved at once");
        assert!(bytes <= whole, "{case}: {bytes} bytes reserved at once");
        assert!(count <= at_most, "{case}: {count} GetObjects at once");
        most.push(count);
    }
    // Not a vacuous bound: with the default budget, the same run overlaps many more fetches.
    assert!(most[2] >= 4, "GetObjects at once by budget: {most:?}");
}

#[test]
fn bad_s3_arguments_and_a_missing_region_fail_before_any_request() {
    let server = S3Server::start(&["cloudtrail"]);
    let cases: [&[&str]; 4] = [
        &["--source", "s3://Not_A_Bucket/x", "--out", "s3://insights"],
        &[
            "--source",
            "s3://cloudtrail",
            "--out",
            "/tmp/x",
            "--sse-kms-key-id",
            "k",
        ],
        &[
            "--source",
            "s3://cloudtrail",
            "--out",
            "s3://insights",
            "--expected-bucket-owner",
            "123",
        ],
        &[
            "--source",
            "s3://cloudtrail",
            "--out",
            "s3://insights",
            "--max-attempts",
            "0",
        ],
    ];
    for args in cases {
        let mut all = vec!["analyze"];
        all.extend_from_slice(args);
        let run = trailsight_env(&all, &server.env());
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
    }
    let no_region: Vec<(&str, String)> = server
        .env()
        .into_iter()
        .filter(|(k, _)| *k != "AWS_REGION")
        .collect();
    let run = trailsight_env(
        &[
            "analyze",
            "--source",
            "s3://cloudtrail",
            "--out",
            "s3://insights",
        ],
        &no_region,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no AWS region"), "{}", run.stderr);
    assert!(server.take_seen().is_empty());
}

#[test]
fn wrong_credentials_fail_the_run_at_once_without_retries() {
    let server = S3Server::start(&["cloudtrail", "insights"]);
    server.put_raw(
        "cloudtrail",
        &log_key("", None, ACCOUNT, "us-east-1", SPIKE_DAY, "x"),
        b"",
    );
    let mut env = server.env();
    env.retain(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_SECRET_ACCESS_KEY", "not-the-secret".into()));
    let run = trailsight_env(
        &[
            "analyze",
            "--source",
            "s3://cloudtrail",
            "--out",
            "s3://insights",
            "--force-path-style",
        ],
        &env,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 403"), "{}", run.stderr);
    assert!(run.stderr.contains("s3://cloudtrail/"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-secret"), "{}", run.stderr);
    let seen = server.take_seen();
    let reads: Vec<&str> = seen
        .iter()
        .filter(|s| s.path.starts_with("/cloudtrail"))
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(reads.len(), 1, "a 403 is not retried: {reads:?}");
    // The run's record is tried once under the output (refused with the same credentials).
    let records = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.path.starts_with("/insights/_trailsight/runs/"))
        .count();
    assert_eq!(records, 1);
    assert_eq!(seen.len(), 2);
}

#[test]
fn an_output_bucket_that_refuses_writes_fails_the_run() {
    let (_tree, _local_out, server) = org_setup();
    server.fault(
        "PUT",
        "/insights/",
        Fault::Error(403, "AccessDenied"),
        usize::MAX,
    );
    let run = run_s3(&server, "s3://cloudtrail/ct", "s3://insights", &ORG_FILTERS);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot write s3://insights/"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("HTTP 403"), "{}", run.stderr);
}

/// `nightly` from `s3://cloudtrail/ct` into `s3://insights/OUT`, with its state in
/// `s3://state/STATE`, at 01:30 on `night`.
fn nightly_s3(server: &S3Server, out: &str, state: &str, night: &str, extra: &[&str]) -> Run {
    let out = format!("s3://insights/{out}");
    let state = format!("s3://state/{state}");
    let as_of = format!("{night}T01:30:00Z");
    let mut args = vec![
        "nightly",
        "--source",
        "s3://cloudtrail/ct",
        "--out",
        &out,
        "--state",
        &state,
        "--as-of",
        &as_of,
        "--force-path-style",
        "--retry-base-delay-ms",
        "5",
    ];
    args.extend_from_slice(extra);
    let run = trailsight_env(&args, &server.env());
    eprintln!("nightly {night} into {out}: exit {}", run.code);
    run
}

/// More than two pages (1000 keys each) of objects in one day folder.
const BIG_FOLDER_OBJECTS: u64 = 2100;

/// Three partitions of the organization trail, one of which has `BIG_FOLDER_OBJECTS` objects
/// (a burst) in its 2019-11-08 folder.
fn three_pages_tree() -> Tree {
    let tree = Tree::new();
    partition_logs(&tree, ACCOUNT, "us-east-1", 0, 0);
    partition_logs(&tree, ACCOUNT, "eu-west-1", 9, 1000);
    partition_logs(&tree, OTHER_ACCOUNT, "us-east-1", 15, 0);
    for i in 0..BIG_FOLDER_OBJECTS {
        let record = call(
            ACCOUNT,
            "us-east-1",
            &at(SPIKE_DAY, 13 * 60 + 25, (i % 60) as u32),
            "RunInstances",
            10_000 + i,
        );
        tree.write_log(
            &log_key(
                "ct/",
                Some(ORG),
                ACCOUNT,
                "us-east-1",
                SPIKE_DAY,
                &format!("{i:05}"),
            ),
            &[record],
        );
    }
    tree
}

#[test]
fn what_still_fails_withholds_its_partitions_and_the_next_night_catches_them_up_byte_for_byte() {
    let tree = three_pages_tree();
    let server = S3Server::start(&["cloudtrail", "insights", "state"]);
    server.upload_tree(&tree.path().join("ct"), "cloudtrail", "ct/");
    let nights = ["2019-11-07", "2019-11-08", "2019-11-09"];
    // Output prefixes stay short: s3s-fs keeps each object's metadata in a file named after
    // the base64 of its key, which must fit in 255 bytes.
    let first = ["--first-day", "2019-11-06", "--max-attempts", "3"];
    let later = ["--max-attempts", "3"];

    // Uninterrupted: three nights without faults.
    let mut reference_states = Vec::new();
    for (i, night) in nights.iter().enumerate() {
        let extra: &[&str] = if i == 0 { &first } else { &later };
        let run = nightly_s3(&server, "r", "reference", night, extra);
        assert_eq!(run.code, 0, "{night}: {}", run.stderr);
        reference_states.push(server.objects("state", "reference"));
    }
    assert!(
        server
            .objects("insights", "r")
            .keys()
            .any(|k| k.contains(ACCOUNT) && k.contains("us-east-1") && k.contains("2019/11/08")),
        "the big folder's burst is an Insight"
    );
    server.take_seen();

    // Night 1 as before.
    let run = nightly_s3(&server, "f", "faulty", nights[0], &first);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let after_night_1 = server.objects("state", "faulty");
    assert_eq!(after_night_1, reference_states[0]);

    // Night 2: page 3 of the big folder's listing fails on every attempt, and one object of
    // another partition answers slower than the timeout on every attempt.
    let big_folder = format!("ct/AWSLogs/{ORG}/{ACCOUNT}/CloudTrail/us-east-1/2019/11/08/");
    let page_3 = [
        "list-type=2",
        "continuation-token=",
        &format!("prefix={big_folder}"),
    ];
    server.fault_when("GET", &page_3, 1, Fault::Error(500, "InternalError"), 3);
    let failing = log_key("ct/", Some(ORG), OTHER_ACCOUNT, "us-east-1", SPIKE_DAY, "b");
    server.fault(
        "GET",
        &format!("/cloudtrail/{failing}"),
        Fault::Delay(Duration::from_secs(5)),
        3,
    );
    server.take_seen();
    let started = Instant::now();
    let run = nightly_s3(
        &server,
        "f",
        "faulty",
        nights[1],
        &["--max-attempts", "3", "--request-timeout-secs", "1"],
    );
    assert_eq!(run.code, 3, "partitions withheld: {}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the retries are bounded: {:?}",
        started.elapsed()
    );
    assert_eq!(server.faults_applied(), 6);
    let s = &run.summary;
    let folder = format!("s3://cloudtrail/{big_folder}");
    let object = format!("s3://cloudtrail/{failing}");
    let skipped: Vec<(&str, &str)> = s["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["object"].as_str().unwrap(), k["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        skipped,
        [
            (folder.as_str(), "list failed"),
            (object.as_str(), "fetch failed")
        ],
        "{s:#}"
    );
    assert_eq!(s["objects_skipped"]["list failed"], 1);
    assert_eq!(s["objects_skipped"]["fetch failed"], 1);
    assert_eq!(
        s["partitions_withheld"],
        serde_json::json!([
            format!("{ACCOUNT}/us-east-1"),
            format!("{OTHER_ACCOUNT}/us-east-1")
        ])
    );
    let detail = |reason: &str| {
        s["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["reason"] == reason)
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        detail("list failed").contains("ListObjectsV2 failed after 3 attempt(s): HTTP 500"),
        "{s:#}"
    );
    assert!(
        detail("fetch failed").contains("GetObject failed after 3 attempt(s)"),
        "{s:#}"
    );
    assert_eq!(s["s3_requests"]["retries"]["timeout"], 2, "{s:#}");
    for needle in [&folder, &object, &"3 attempt".to_owned()] {
        assert!(
            run.stderr.contains(needle.as_str()),
            "{needle} in {}",
            run.stderr
        );
    }
    // The failed page was tried 3 times, with its continuation token; no later page exists.
    let pages: Vec<Seen> = server
        .take_seen()
        .into_iter()
        .filter(|r| r.list_prefix() == Some(big_folder.as_str()))
        .collect();
    assert_eq!(
        pages.len(),
        1 + 1 + 3,
        "pages 1 and 2, then page 3 three times"
    );
    assert!(
        pages[2..]
            .iter()
            .all(|p| p.query["continuation-token"] == pages[2].query["continuation-token"])
    );
    // The state moved on for every other partition and remembers what the two withheld ones
    // must read again.
    let state = server.objects("state", "faulty");
    let state =
        trailsight::state::RunState::decode(&state["trailsight-state.bin.gz"], "faulty").unwrap();
    assert_eq!(state.analysed_through, nights[0]);
    let stuck: Vec<(String, Vec<String>)> = state
        .stuck
        .iter()
        .map(|p| {
            let keys = p.objects.iter().map(|o| o.key.clone()).collect();
            (format!("{}/{}", p.account, p.region), keys)
        })
        .collect();
    assert_eq!(
        stuck,
        [
            (format!("{ACCOUNT}/us-east-1"), vec![]),
            (
                format!("{OTHER_ACCOUNT}/us-east-1"),
                vec![failing.trim_start_matches("ct/").to_owned()]
            ),
        ],
        "the next day's folder is listed again by the next night anyway"
    );
    assert!(
        !server
            .object_path("state", "faulty/trailsight-state.lock")
            .exists()
    );

    // Night 3, the faults gone (one more throttled page 3, retried): it reads what night 2
    // could not and rewrites the two partitions from night 2's day.
    server.fault_when("GET", &page_3, 1, Fault::Error(503, "SlowDown"), 1);
    let run = nightly_s3(&server, "f", "faulty", nights[2], &later);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["partitions_withheld"], serde_json::json!([]));
    assert_eq!(run.summary["s3_requests"]["retries"]["503 SlowDown"], 1);
    assert_eq!(server.objects("state", "faulty"), reference_states[2]);
    // The same Insights, Parquet and explanations; the bad-objects report of night 2's day
    // still says what that night could not read.
    let output = |prefix: &str| -> BTreeMap<String, Vec<u8>> {
        server
            .objects("insights", prefix)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("_trailsight/"))
            .collect()
    };
    assert_eq!(output("f"), output("r"));
}

/// One IAM permission a request needs: the action, the resource ARN and, for ListBucket, the
/// `s3:prefix` the condition is checked against.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Needed {
    action: &'static str,
    resource: String,
    prefix: Option<String>,
}

/// The IAM permission a request the proxy saw needs (path-style requests).
fn needed(seen: &Seen) -> Needed {
    let bucket = seen.bucket().to_owned();
    let key = seen.path.trim_start_matches('/')[bucket.len()..].trim_start_matches('/');
    let object = |action| Needed {
        action,
        resource: format!("arn:aws:s3:::{bucket}/{key}"),
        prefix: None,
    };
    let extra: Vec<&String> = seen
        .query
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "list-type" | "prefix" | "delimiter" | "continuation-token" | "x-id"
            )
        })
        .collect();
    assert!(
        extra.is_empty(),
        "a request with sub-resources {extra:?}: {seen:?}"
    );
    match seen.method.as_str() {
        "GET" if seen.list_prefix().is_some() => Needed {
            action: "s3:ListBucket",
            resource: format!("arn:aws:s3:::{bucket}"),
            prefix: seen.list_prefix().map(str::to_owned),
        },
        "GET" | "HEAD" => object("s3:GetObject"),
        "PUT" => object("s3:PutObject"),
        "DELETE" => object("s3:DeleteObject"),
        other => panic!("a request no IAM action is mapped for: {other} {seen:?}"),
    }
}

/// IAM's `StringLike` and resource matching: `*` any run of characters, `?` one.
fn iam_like(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A string or a list of strings in a policy.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap().to_owned())
            .collect(),
        other => panic!("not a string or a list: {other}"),
    }
}

/// The README's least-privilege policy, its placeholders filled in.
fn readme_policy(names: &[(&str, &str)]) -> Vec<Value> {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let section = &readme[readme.find("#### Least-privilege IAM policy").unwrap()..];
    let start = section.find("```json\n").unwrap() + "```json\n".len();
    let mut json = section[start..start + section[start..].find("```").unwrap()].to_owned();
    for (placeholder, name) in names {
        json = json.replace(placeholder, name);
    }
    let policy: Value = serde_json::from_str(&json).expect("the README's policy is JSON");
    policy["Statement"].as_array().unwrap().clone()
}

/// Which (statement, action, resource, prefix pattern) grants allow `need`.
fn grants(statements: &[Value], need: &Needed) -> Vec<(usize, String, String, Option<String>)> {
    let mut found = Vec::new();
    for (i, statement) in statements.iter().enumerate() {
        assert_eq!(statement["Effect"], "Allow");
        let condition = &statement["Condition"];
        let prefixes = (!condition.is_null()).then(|| {
            let keys: Vec<&String> = condition.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                ["StringLike"],
                "only StringLike conditions are evaluated here"
            );
            strings(&condition["StringLike"]["s3:prefix"])
        });
        for action in strings(&statement["Action"]) {
            if !iam_like(&action, need.action) {
                continue;
            }
            for resource in strings(&statement["Resource"]) {
                if !iam_like(&resource, &need.resource) {
                    continue;
                }
                match (&prefixes, &need.prefix) {
                    (None, _) => found.push((i, action.clone(), resource.clone(), None)),
                    (Some(patterns), Some(prefix)) => {
                        for pattern in patterns.iter().filter(|p| iam_like(p, prefix)) {
                            found.push((
                                i,
                                action.clone(),
                                resource.clone(),
                                Some(pattern.clone()),
                            ));
                        }
                    }
                    // A prefix condition on a request without s3:prefix does not match.
                    (Some(_), None) => {}
                }
            }
        }
    }
    found
}

/// `--expected-bucket-owner` was sent on every request, and every PUT asked for SSE-KMS with the
/// test's key.
fn assert_owner_on_every_request_and_kms_on_every_write(seen: &[Seen]) {
    for request in seen {
        assert_eq!(
            request
                .headers
                .get("x-amz-expected-bucket-owner")
                .map(String::as_str),
            Some(OWNER),
            "{request:?}"
        );
        if request.method == "PUT" {
            assert_eq!(
                request.headers["x-amz-server-side-encryption"], "aws:kms",
                "{request:?}"
            );
            assert_eq!(
                request.headers["x-amz-server-side-encryption-aws-kms-key-id"],
                "alias/trailsight-test",
                "{request:?}"
            );
        }
    }
}

#[test]
fn the_readme_iam_policy_allows_every_call_and_grants_nothing_unused() {
    let (_tree, _local_out, server) = org_setup();
    std::fs::create_dir_all(server.object_path("state", "")).unwrap();
    // Stale output of an analysed day without Insights, in each of the four output trees, and a
    // bad-objects report of a day that now reads cleanly, so the removal path (a listing of the
    // key, then DeleteObject) runs too.
    let day = chrono::NaiveDate::parse_from_str(SPIKE_DAY, "%Y-%m-%d").unwrap();
    for key in [
        trailsight::sink::json::file_key(Some(ORG), OTHER_ACCOUNT, "eu-west-1", day),
        trailsight::sink::parquet::file_key(OTHER_ACCOUNT, "eu-west-1", day),
        trailsight::sink::explain::file_key(OTHER_ACCOUNT, "eu-west-1", day),
        trailsight::sink::activities::file_key(OTHER_ACCOUNT, "eu-west-1", day),
        trailsight::sink::bad_objects::report_key(day),
    ] {
        server.put_raw("insights", &format!("out/{key}"), b"stale");
    }
    let owner = [
        "--expected-bucket-owner",
        OWNER,
        "--sse-kms-key-id",
        "alias/trailsight-test",
    ];
    let mut args = ORG_FILTERS.to_vec();
    args.extend(owner);
    args.extend(["--state", "s3://state/trailsight"]);
    let backfill = run_s3(&server, "s3://cloudtrail/ct", "s3://insights/out", &args);
    assert_eq!(backfill.code, 0, "{}", backfill.stderr);
    assert_eq!(
        backfill.summary["stale_files_removed"], 2,
        "JSON and Parquet"
    );
    // The same backfill again (without a state) reads the notification ledger it wrote.
    let no_state = &args[..args.len() - 2];
    let again = run_s3(&server, "s3://cloudtrail/ct", "s3://insights/out", no_state);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.summary["new_insight_records"], serde_json::json!([]));
    assert!(
        server
            .objects("insights", "out")
            .values()
            .all(|b| b != b"stale")
    );
    let mut extra = vec![
        "--first-day",
        "2019-11-07",
        "--accounts",
        "123456789012,210987654321",
        "--regions",
        "us-east-1,eu-west-1",
    ];
    extra.extend(owner);
    // A broken object read by the second night, so its bad-objects report is written too.
    server.put_raw(
        "cloudtrail",
        &format!("ct/AWSLogs/{ORG}/{ACCOUNT}/CloudTrail/us-east-1/2019/11/10/broken.json.gz"),
        b"not gzip",
    );
    // The tree holds no log delivered on 2019-11-09: the second night is a delivery gap (exit
    // 4, which outranks the broken object's 1).
    for (night, code) in [("2019-11-09", 0), ("2019-11-10", 4)] {
        let nightly = nightly_s3(&server, "out", "trailsight", night, &extra);
        assert_eq!(nightly.code, code, "{}", nightly.stderr);
        extra.drain(..2);
    }
    let written = server.objects("insights", "out/");
    assert!(
        written.contains_key("_trailsight/bad-objects/2019-11-09.json"),
        "{:?}",
        written.keys()
    );
    let seen = server.take_seen();

    // (c) The bucket owner on every request, (d) SSE-KMS on every write, state and lock included.
    assert_owner_on_every_request_and_kms_on_every_write(&seen);
    let state_puts = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.bucket() == "state")
        .count();
    assert!(state_puts >= 4, "state and lock writes: {state_puts}");

    // Every request is allowed by the README's policy, and every grant in it is used.
    let statements = readme_policy(&[
        ("LOG-BUCKET", "cloudtrail"),
        ("TRAIL-PREFIX", "ct"),
        ("OUT-BUCKET", "insights"),
        ("OUT-PREFIX", "out"),
        ("STATE-BUCKET", "state"),
        ("STATE-PREFIX", "trailsight"),
    ]);
    let mut used = BTreeSet::new();
    let mut by_kind: std::collections::BTreeMap<(&str, String), u64> = Default::default();
    for request in &seen {
        let need = needed(request);
        let allowed = grants(&statements, &need);
        assert!(
            !allowed.is_empty(),
            "not allowed by the README policy: {need:?}"
        );
        *by_kind
            .entry((need.action, request.bucket().to_owned()))
            .or_default() += 1;
        used.extend(allowed);
    }
    eprintln!(
        "requests seen over a backfill and a nightly run, by IAM action and bucket: {by_kind:#?}"
    );
    for (i, statement) in statements.iter().enumerate() {
        let prefixes = (!statement["Condition"].is_null())
            .then(|| strings(&statement["Condition"]["StringLike"]["s3:prefix"]));
        for action in strings(&statement["Action"]) {
            for resource in strings(&statement["Resource"]) {
                let patterns: Vec<Option<String>> = match &prefixes {
                    Some(p) => p.iter().cloned().map(Some).collect(),
                    None => vec![None],
                };
                for pattern in patterns {
                    let grant = (i, action.clone(), resource.clone(), pattern.clone());
                    assert!(
                        used.contains(&grant),
                        "statement {} grants {action} on {resource} (prefix {pattern:?}), which no request used",
                        statement["Sid"]
                    );
                }
            }
        }
    }
}

/// Run the binary with this environment; its exit code, stdout, stderr and JSON summary.
fn run_capturing(args: &[&str], env: &[(&str, String)]) -> (i32, String, String, String) {
    let summary = tempfile::NamedTempFile::new().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
        .args(args)
        .arg("--summary-json")
        .arg(summary.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        std::fs::read_to_string(summary.path()).unwrap_or_default(),
    )
}

#[test]
fn no_credential_token_or_signature_reaches_logs_summaries_errors_or_the_report() {
    use crate::s3_server::{ACCESS_KEY, SECRET_KEY};
    const TOKEN: &str = "IQoJb3JpZ2luX2VjTRAILSIGHTtestSessionToken0123456789abcdef";
    let (_tree, _local_out, server) = org_setup();
    std::fs::create_dir_all(server.object_path("state", "")).unwrap();
    let env = |level: &str, secret: &str| -> Vec<(&'static str, String)> {
        let mut env = server.env();
        env.retain(|(k, _)| !matches!(*k, "AWS_SESSION_TOKEN" | "AWS_SECRET_ACCESS_KEY"));
        env.extend([
            ("AWS_SESSION_TOKEN", TOKEN.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
            ("RUST_LOG", level.to_owned()),
        ]);
        env
    };
    // Each case has its own output and state prefix (`s3://insights/CASE`, `s3://state/CASE`).
    let base = |case: &'static str| -> Vec<String> {
        let mut args: Vec<String> = [
            "analyze",
            "--source",
            "s3://cloudtrail/ct",
            "--out",
            &format!("s3://insights/{case}"),
            "--state",
            &format!("s3://state/{case}"),
            "--force-path-style",
            "--retry-base-delay-ms",
            "5",
            "--max-attempts",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(ORG_FILTERS.iter().map(|s| s.to_string()));
        args
    };
    let run = |case: &'static str, env: &[(&str, String)]| {
        let args = base(case);
        run_capturing(&args.iter().map(String::as_str).collect::<Vec<_>>(), env)
    };
    let failing = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", "2019-11-05", "h");
    let forbidden = [
        SECRET_KEY,
        TOKEN,
        ACCESS_KEY,
        "X-Amz-Signature",
        "X-Amz-Credential",
        "x-amz-security-token",
        "Signature=",
        "Credential=",
    ];
    let mut checked = Vec::new();
    let mut check = |case: &str, result: (i32, String, String, String), code: i32| {
        let (exit, stdout, stderr, summary) = result;
        assert_eq!(exit, code, "{case}: {stderr}");
        for (stream, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("summary", &summary),
        ] {
            for secret in forbidden {
                assert!(
                    !text.to_lowercase().contains(&secret.to_lowercase()),
                    "{case}: {secret:?} in {stream}:\n{text}"
                );
            }
        }
        checked.push((case.to_owned(), stderr.len()));
        stderr
    };

    // A successful run with S3 source, output and state, at trace level.
    check("success at trace", run("ok", &env("trace", SECRET_KEY)), 0);
    // The HTML report of the Insights that run wrote.
    let html = tempfile::tempdir().unwrap();
    let page = html.path().join("report.html");
    let (code, _, stderr) = run_binary(&[
        "report",
        "--insights",
        server.object_path("insights", "ok").to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let page = std::fs::read_to_string(page).unwrap();
    assert!(page.contains("RunInstances"));
    for secret in forbidden {
        assert!(!page.contains(secret), "{secret:?} in the report");
    }
    let seen = server.take_seen();
    assert!(
        seen.iter()
            .all(|s| s.headers.get("x-amz-security-token").map(String::as_str) == Some(TOKEN))
    );
    // 5xx until the attempts run out, on an object: exit 1, the object named.
    server.fault(
        "GET",
        &format!("/cloudtrail/{failing}"),
        Fault::Error(500, "InternalError"),
        usize::MAX,
    );
    let stderr = check(
        "5xx exhausted at debug",
        run("five", &env("debug", SECRET_KEY)),
        3,
    );
    assert!(stderr.contains(&failing), "{stderr}");
    assert!(
        stderr.contains("retrying in"),
        "the debug log is on (each retry is logged): {stderr}"
    );
    // 403 on writing the output and on the first listing: exit 2.
    server.fault(
        "PUT",
        "/insights/",
        Fault::Error(403, "AccessDenied"),
        usize::MAX,
    );
    let stderr = check(
        "403 on PutObject at trace",
        run("denied-put", &env("trace", SECRET_KEY)),
        2,
    );
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    server.fault(
        "GET",
        "list-type=2",
        Fault::Error(403, "AccessDenied"),
        usize::MAX,
    );
    check(
        "403 on ListObjectsV2 at trace",
        run("denied-list", &env("trace", SECRET_KEY)),
        2,
    );
    // A wrong secret: the real server refuses the signature.
    let server = S3Server::start(&["cloudtrail", "insights", "state"]);
    server.put_raw(
        "cloudtrail",
        &log_key("ct/", None, ACCOUNT, "us-east-1", SPIKE_DAY, "x"),
        b"",
    );
    let wrong = "wrong/secret/key/that/must/not/be/logged0";
    let mut wrong_env = env("trace", wrong);
    wrong_env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    wrong_env.push(("AWS_ENDPOINT_URL", server.endpoint.clone()));
    let (code, stdout, stderr, summary) = run("wrong", &wrong_env);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    for text in [&stdout, &stderr, &summary] {
        assert!(!text.contains(wrong), "{text}");
    }
    check("wrong secret at trace", (code, stdout, stderr, summary), 2);
    eprintln!("checked: {checked:?}");
}

/// The org tree in `s3://cloudtrail/ct/` of a server that also has a `state` bucket, and the
/// local run's output to compare with.
fn org_setup_with_state_bucket() -> (tempfile::TempDir, S3Server) {
    let tree = org_tree();
    let local_out = tempfile::tempdir().unwrap();
    let local = analyze(tree.path(), local_out.path(), &ORG_FILTERS);
    assert_eq!(local.code, 0, "{}", local.stderr);
    let server = S3Server::start(&["cloudtrail", "insights", "state"]);
    server.upload_tree(&tree.path().join("ct"), "cloudtrail", "ct/");
    (local_out, server)
}

/// Insights, Parquet and explanations, without trailsight's own bookkeeping (`_trailsight/`).
fn analysis_outputs(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    files
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_trailsight/"))
        .collect()
}

/// A run from S3 stopped by SIGTERM while a GetObject of its day hangs (as an AWS Batch retry
/// or a Kubernetes eviction would stop it): it exits 143 without waiting for the request,
/// writes nothing of the unfinished day, and deletes its S3 lock, so the retry that follows at
/// once runs (no "locked by another run") and writes what an uninterrupted run writes.
#[test]
fn an_s3_run_stopped_mid_day_releases_its_lock_and_the_retry_writes_the_same_output() {
    let (local_out, server) = org_setup_with_state_bucket();
    let hanging = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", SPIKE_DAY, "b");
    server.fault(
        "GET",
        &format!("/cloudtrail/{hanging}"),
        Fault::Delay(Duration::from_secs(120)),
        1,
    );
    let mut args = vec![
        "analyze",
        "--source",
        "s3://cloudtrail/ct",
        "--out",
        "s3://insights",
        "--state",
        "s3://state/run",
        "--force-path-style",
        "--retry-base-delay-ms",
        "5",
        // The request itself would wait out the hang.
        "--request-timeout-secs",
        "600",
    ];
    args.extend_from_slice(&ORG_FILTERS);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
        .args(&args)
        .envs(server.env())
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let hangs = |s: &Seen| s.method == "GET" && s.path.ends_with(&hanging);
    assert!(
        server.wait_for(Duration::from_secs(60), hangs),
        "the run never asked for {hanging}"
    );
    assert!(
        server
            .objects("state", "run/")
            .contains_key("trailsight-state.lock"),
        "the run holds its lock"
    );
    let signalled = Instant::now();
    // SAFETY: the pid is our own child's, which has not been waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stopped = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(143), "{stderr}");
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "the stop waited {:?} for the hanging request",
        signalled.elapsed()
    );
    assert!(stderr.contains("stopped by signal"), "{stderr}");
    assert!(
        analysis_outputs(server.objects("insights", "")).is_empty(),
        "nothing of the unfinished day is written"
    );
    assert!(
        !server
            .objects("state", "run/")
            .contains_key("trailsight-state.lock"),
        "the lock is released"
    );

    server.clear_faults();
    let mut retry = ORG_FILTERS.to_vec();
    retry.extend(["--state", "s3://state/run"]);
    let run = run_s3(&server, "s3://cloudtrail/ct", "s3://insights", &retry);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = analysis_outputs(server.objects("insights", ""));
    assert!(!written.is_empty());
    assert_eq!(written, analysis_outputs(files(local_out.path())));
}

/// From S3 as from a folder: a range that holds no log object fails naming the bucket path and
/// the day folders searched; a nightly whose days have no delivered object in any partition
/// is a delivery gap (exit 4), named in the summary.
#[test]
fn from_s3_a_range_without_logs_fails_and_a_night_without_deliveries_is_a_gap() {
    let (_local_out, server) = org_setup_with_state_bucket();
    let run = run_s3(
        &server,
        "s3://cloudtrail/ct",
        "s3://insights/none",
        &["--from", "2030-01-01", "--to", "2030-01-02"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    for needle in ["s3://cloudtrail/ct", "2029-12-25 to 2030-01-03"] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(server.objects("insights", "none").is_empty());

    let run = nightly_s3(&server, "n", "n", "2019-11-09", &["--first-day", SPIKE_DAY]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.summary.get("days_without_logs").is_none(),
        "{}",
        run.summary
    );
    let run = nightly_s3(&server, "n", "n", "2019-11-11", &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(
        run.summary["days_without_logs"],
        serde_json::json!(["2019-11-09", "2019-11-10"])
    );
    assert!(run.stderr.contains("delivery gap"), "{}", run.stderr);
}

/// A request that hangs is not silent: past `--stall-warn-secs` the log names the object it
/// waits for (an unwatched run's log says where it is stuck), and the run completes when it
/// is answered.
#[test]
fn a_request_that_hangs_is_named_in_the_log_while_it_lasts() {
    let (_tree, local_out, server) = org_setup();
    let slow = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", SPIKE_DAY, "b");
    server.fault(
        "GET",
        &format!("/cloudtrail/{slow}"),
        Fault::Delay(Duration::from_secs(4)),
        1,
    );
    let mut args = ORG_FILTERS.to_vec();
    args.extend(["--stall-warn-secs", "1", "--request-timeout-secs", "60"]);
    let run = run_s3(&server, "s3://cloudtrail/ct", "s3://insights", &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let named = format!("for s3://cloudtrail/{slow}");
    let warnings = run.stderr.matches("still waiting after").count();
    assert!(
        run.stderr.contains(&named) && warnings >= 2,
        "{warnings} warnings: {}",
        run.stderr
    );
    assert_eq!(
        analysis_outputs(server.objects("insights", "")),
        analysis_outputs(files(local_out.path()))
    );
}
