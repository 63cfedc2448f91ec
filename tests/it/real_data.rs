//! Real CloudTrail records (see tests/fixtures/real-cloudtrail/README.md): counts checked
//! against an independent decoder written with serde_json's DOM, and odd real-world files read
//! without a crash.

use crate::support::*;
use serde_json::Value;

/// What the summary should say, computed from a plain DOM of the records.
fn oracle(records: &[Value]) -> (u64, u64, u64) {
    let mut writes = 0;
    let mut errors = 0;
    for r in records {
        let management = match (r.get("managementEvent"), r.get("eventCategory")) {
            (Some(Value::Bool(b)), _) => *b,
            (_, Some(Value::String(c))) => c == "Management",
            _ => true,
        };
        if !management || r["eventType"] == "AwsCloudTrailInsight" {
            continue;
        }
        if r["readOnly"] == Value::Bool(false) || r["readOnly"] == "false" {
            writes += 1;
        }
        if r["errorCode"].as_str().is_some_and(|c| !c.is_empty()) {
            errors += 1;
        }
    }
    (records.len() as u64, writes, errors)
}

#[test]
fn a_real_delivered_tree_is_counted_exactly() {
    let root = repo_path("tests/fixtures/real-cloudtrail/invictus");
    let mut all = Vec::new();
    for bytes in files(&root).values() {
        all.extend(gunzip_records(bytes));
    }
    let (records, writes, errors) = oracle(&all);
    assert_eq!(records, 2900);
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&root, out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = &run.summary;
    assert_eq!(s["objects_read"], 55);
    assert_eq!(s["records"], records);
    assert_eq!(s["write_events"], writes);
    assert_eq!(s["error_events"], errors);
    assert_eq!(s["bad_records"], serde_json::json!({}));
    assert_eq!(s["first_day"], "2023-07-10");
    // One hour of logs is inside the 36-hour warm-up: nothing may fire.
    assert!(insights(out.path()).is_empty());
}

#[test]
fn odd_real_world_files_are_read_without_a_crash() {
    let cases = [
        ("stratus-all-detonations.Records.json.gz", 310),
        ("traildiscover-unique.Records.json.gz", 314),
        ("panther-test-logs.Records.json.gz", 464),
        ("otrf-ec2-proxy-s3-exfiltration.Records.json.gz", 103),
    ];
    for (name, count) in cases {
        let tree = Tree::new();
        let bytes =
            std::fs::read(repo_path(&format!("tests/fixtures/real-cloudtrail/{name}"))).unwrap();
        tree.write_raw(
            &log_key("", None, ACCOUNT, "us-east-1", "2024-07-30", "real"),
            &bytes,
        );
        let out = tempfile::tempdir().unwrap();
        let run = analyze(
            tree.path(),
            out.path(),
            &["--from", "2024-07-30", "--to", "2024-07-30"],
        );
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.summary["records"], count, "{name}");
        assert!(!run.stderr.contains("panicked"), "{name}");
    }
    // The Logstash-processed records have no eventTime: each is a counted bad record.
    let tree = Tree::new();
    let bytes = std::fs::read(repo_path(
        "tests/fixtures/real-cloudtrail/otrf-ec2-proxy-s3-exfiltration.Records.json.gz",
    ))
    .unwrap();
    tree.write_raw(
        &log_key("", None, ACCOUNT, "us-east-1", "2020-09-14", "otrf"),
        &bytes,
    );
    let out = tempfile::tempdir().unwrap();
    let run = analyze(
        tree.path(),
        out.path(),
        &["--from", "2020-09-14", "--to", "2020-09-14"],
    );
    assert_eq!(
        run.summary["bad_records"]["record has no eventTime"], 103,
        "{:#}",
        run.summary
    );
}
