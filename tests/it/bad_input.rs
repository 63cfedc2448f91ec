//! Broken objects and records: each is named, counted by reason, and costs nothing else.

use crate::support::*;

const DAY: &str = "2019-11-07";

fn good_records() -> Vec<serde_json::Value> {
    (0..3)
        .map(|i| {
            call(
                ACCOUNT,
                "us-east-1",
                &at(DAY, 600 + i, 0),
                "RunInstances",
                u64::from(i),
            )
        })
        .collect()
}

/// A tree with one good file and one of each broken object.
fn broken_tree() -> (Tree, Vec<(String, &'static str)>) {
    let tree = Tree::new();
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", DAY, "good"),
        &good_records(),
    );
    let whole = gzip(
        serde_json::json!({"Records": good_records()})
            .to_string()
            .as_bytes(),
    );
    let mut corrupt = whole.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x55;
    corrupt[middle + 1] ^= 0xaa;
    let cases: Vec<(&str, Vec<u8>, &'static str)> = vec![
        ("notgzip", b"{\"Records\":[]}".to_vec(), "not gzip"),
        ("empty", Vec::new(), "not gzip"),
        (
            "truncated",
            whole[..whole.len() - 20].to_vec(),
            "truncated gzip",
        ),
        ("corrupt", corrupt, "corrupt gzip"),
        (
            "badjson",
            gzip(b"{\"Records\":[{\"eventTime\":"),
            "invalid JSON",
        ),
        (
            "norecords",
            gzip(b"{\"events\":[]}"),
            "not a CloudTrail log file",
        ),
        ("toplevel", gzip(b"42"), "not a CloudTrail log file"),
    ];
    let mut expected = Vec::new();
    for (name, bytes, reason) in cases {
        let key = log_key("", None, ACCOUNT, "us-east-1", DAY, name);
        tree.write_raw(&key, &bytes);
        expected.push((key, reason));
    }
    // Bad records inside an otherwise good file.
    let mut records = good_records();
    for (i, r) in records.iter_mut().enumerate() {
        r["eventID"] = format!("00000000-0000-4000-8000-1000000000{i:02}").into();
    }
    records[0].as_object_mut().unwrap().remove("eventTime");
    records[1]["eventTime"] = "yesterday".into();
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", DAY, "badrecords"),
        &records,
    );
    (tree, expected)
}

#[test]
fn each_broken_object_is_named_and_counted_and_the_rest_is_read() {
    let (tree, expected) = broken_tree();
    let out = tempfile::tempdir().unwrap();
    let run = analyze(tree.path(), out.path(), &["--from", DAY, "--to", DAY]);
    assert_eq!(run.code, 1, "objects were skipped: {}", run.stderr);
    let s = &run.summary;
    assert_eq!(s["objects_read"], 2, "{s:#}");
    assert_eq!(
        s["write_events"], 4,
        "3 good + 1 good record of the bad-records file"
    );
    assert_eq!(s["bad_records"]["record has no eventTime"], 1);
    assert_eq!(s["bad_records"]["eventTime is not an RFC 3339 time"], 1);
    let skipped = s["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), expected.len(), "{skipped:#?}");
    for (key, reason) in &expected {
        let entry = skipped
            .iter()
            .find(|e| e["object"].as_str().unwrap().ends_with(key.as_str()))
            .unwrap_or_else(|| panic!("{key} not reported: {skipped:#?}"));
        assert_eq!(entry["reason"], *reason, "{key}");
        assert!(
            run.stderr.contains(key.as_str()),
            "{key} not named on stderr"
        );
    }
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn strict_mode_fails_without_writing() {
    let (tree, _) = broken_tree();
    let out = tempfile::tempdir().unwrap();
    let run = analyze(
        tree.path(),
        out.path(),
        &["--from", DAY, "--to", DAY, "--strict"],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--strict"), "{}", run.stderr);
    assert!(files(out.path()).is_empty());
    // --summary-json says why, with what the run had read, not the last run's file.
    let error = run.summary["error"].as_str().unwrap_or_default();
    assert!(error.contains("--strict"), "{}", run.summary);
    assert!(
        run.summary["objects_read"].as_u64() > Some(0),
        "{}",
        run.summary
    );
}

#[test]
fn bad_arguments_fail_clearly() {
    let tree = Tree::new();
    let out = tempfile::tempdir().unwrap();
    for (args, message) in [
        (vec!["--from", "2019-13-01"], "expected a date"),
        (
            vec!["--from", "2019-11-08", "--to", "2019-11-01"],
            "before --from",
        ),
        (vec!["--accounts", "12345"], "12-digit"),
        (vec!["--regions", "../etc"], "region"),
    ] {
        let run = analyze(tree.path(), out.path(), &args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let run = analyze(tree.path(), out.path(), &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no CloudTrail logs"), "{}", run.stderr);
}
