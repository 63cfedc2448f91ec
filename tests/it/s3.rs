//! S3 end to end, against a real S3 server (s3s-fs on 127.0.0.1) behind a fault-injecting
//! proxy: the same bytes as the local run, a careful listing, pagination, retries, and an
//! object that keeps failing.

use crate::s3_server::{Fault, S3Server, Seen};
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
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
    for request in &seen {
        assert_eq!(
            request
                .headers
                .get("x-amz-expected-bucket-owner")
                .map(String::as_str),
            Some(OWNER),
            "{} {} {:?}",
            request.method,
            request.path,
            request.query
        );
    }
    let puts: Vec<&Seen> = seen.iter().filter(|s| s.method == "PUT").collect();
    assert_eq!(puts.len(), 9, "3 JSON, 3 Parquet and 3 explanation files");
    for put in puts {
        assert_eq!(put.headers["x-amz-server-side-encryption"], "aws:kms");
        assert_eq!(
            put.headers["x-amz-server-side-encryption-aws-kms-key-id"],
            "alias/trailsight-test"
        );
    }
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
    let injected = 3 + 2 + 2 + 3 + 2 + 1 + 1 + 1;
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
    assert_eq!(requests["retries"]["500 InternalError"], 2);
    assert_eq!(requests["retries"]["timeout"], 1);
    assert_eq!(requests["retries"]["body interrupted"], 3);
    assert_eq!(requests["retries"]["connection error"], 3);
}

#[test]
fn an_object_that_keeps_failing_is_named_and_its_partition_withheld() {
    let (_tree, local_out, server) = org_setup();
    let failing = log_key("ct/", Some(ORG), ACCOUNT, "us-east-1", "2019-11-05", "h");
    server.fault(
        "GET",
        &format!("/cloudtrail/{failing}"),
        Fault::Error(500, "InternalError"),
        usize::MAX,
    );
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
    assert_eq!(run.code, 1, "{}", run.stderr);
    let s = &run.summary;
    let display = format!("s3://cloudtrail/{failing}");
    assert_eq!(s["objects_skipped"]["fetch failed"], 1, "{s:#}");
    assert_eq!(s["skipped"][0]["object"], display.as_str());
    assert!(
        s["skipped"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("3 attempt"),
        "{s:#}"
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
    expected.retain(|k, _| !k.contains(&withheld_partition));
    expected.insert(withheld_key.clone(), b"from an earlier run".to_vec());
    // The bad-objects report, written to the output bucket, names the object for a re-run.
    let mut written = server.objects("insights", "");
    let report_key = format!(
        "_trailsight/bad-objects/{}_{}.json",
        s["first_day"].as_str().unwrap(),
        s["last_day"].as_str().unwrap()
    );
    let report = written.remove(&report_key).expect("the bad-objects report");
    assert!(String::from_utf8_lossy(&report).contains(&display));
    assert_eq!(written, expected);
    assert_eq!(s["stale_files_removed"], 1);
    let seen = server.take_seen();
    let attempts = seen
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&failing))
        .count();
    assert_eq!(attempts, 3);
    assert!(!seen.iter().any(|r| r.path.contains(&withheld_key)));
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
    assert_eq!(server.take_seen().len(), 1, "a 403 is not retried");
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
