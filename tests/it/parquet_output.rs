//! The Parquet output of real runs: the Hive-partitioned tree, its agreement with the JSON files,
//! `--format`, stale partitions, and DuckDB reading the tree and answering the example queries
//! of `schemas/athena-example-queries.sql`.

use crate::support::*;
use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn sample() -> std::path::PathBuf {
    repo_path("sample-data")
}

/// The rows of one Parquet file, through the parquet crate.
fn read_parquet(bytes: &[u8]) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.to_vec()))
        .unwrap()
        .build()
        .unwrap();
    let mut batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    // A file holds one account-region-day: a few rows, one batch.
    assert_eq!(batches.len(), 1, "expected one batch");
    batches.remove(0)
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..array.len())
        .map(|i| array.value(i).to_owned())
        .collect()
}

/// `insights/account=A/region=R/date=D/part-....parquet` -> (A, R, D).
fn partition(key: &str) -> (String, String, String) {
    let parts: Vec<&str> = key.split('/').collect();
    assert_eq!(parts.len(), 5, "{key}");
    assert_eq!(parts[0], "insights", "{key}");
    let value = |segment: &str, name: &str| {
        segment
            .strip_prefix(&format!("{name}="))
            .unwrap_or_else(|| panic!("{key}: expected {name}=..."))
            .to_owned()
    };
    assert!(
        parts[4].starts_with("part-") && parts[4].ends_with(".parquet"),
        "{key}"
    );
    (
        value(parts[1], "account"),
        value(parts[2], "region"),
        value(parts[3], "date"),
    )
}

#[test]
fn the_parquet_tree_is_hive_partitioned_and_holds_the_json_records() {
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&sample(), out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = files(out.path());
    // trailsight's own bookkeeping (the notification ledger) is hidden from Athena on purpose.
    for key in all.keys().filter(|k| !k.starts_with("_trailsight/")) {
        for segment in key.split('/') {
            assert!(
                !segment.starts_with(['_', '.']),
                "hidden from Athena: {key}"
            );
        }
    }
    // JSON records by (account, region, day), in file order.
    let mut json_files: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
    for (key, record) in insights(out.path()) {
        assert!(key.starts_with("AWSLogs/"), "{key}");
        let day = record["eventTime"].as_str().unwrap()[..10].to_owned();
        let id = (
            record["recipientAccountId"].as_str().unwrap().to_owned(),
            record["awsRegion"].as_str().unwrap().to_owned(),
            day,
        );
        json_files.entry(id).or_default().push(record);
    }
    let parquet: BTreeMap<_, _> = all
        .iter()
        .filter(|(k, _)| k.ends_with(".parquet"))
        .map(|(k, bytes)| (partition(k), read_parquet(bytes)))
        .collect();
    assert_eq!(
        parquet.keys().collect::<Vec<_>>(),
        json_files.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        all.keys()
            .filter(|k| {
                !k.starts_with("explanations/")
                    && !k.starts_with("activities/")
                    && !k.starts_with("_trailsight/")
            })
            .count(),
        2 * parquet.len(),
        "only JSON and Parquet files: {:?}",
        all.keys()
    );
    assert_eq!(run.summary["parquet_files_written"], parquet.len());
    for ((account, region, date), batch) in &parquet {
        let records = &json_files[&(account.clone(), region.clone(), date.clone())];
        let field = |name: &str| -> Vec<String> {
            records
                .iter()
                .map(|r| r[name].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(strings(batch, "eventid"), field("eventID"));
        assert_eq!(strings(batch, "eventtime_iso"), field("eventTime"));
        assert_eq!(
            strings(batch, "recipientaccountid"),
            vec![account.clone(); records.len()]
        );
        assert_eq!(
            strings(batch, "awsregion"),
            vec![region.clone(); records.len()]
        );
        for iso in strings(batch, "eventtime_iso") {
            assert!(
                iso.starts_with(date.as_str()),
                "{iso} filed under date={date}"
            );
        }
    }
}

#[test]
fn format_selects_what_is_written() {
    let cases: [(&[&str], bool, bool); 4] = [
        (&[], true, true),
        (&["--format", "json,parquet"], true, true),
        (&["--format", "json"], true, false),
        (&["--format", "parquet"], false, true),
    ];
    for (args, json, parquet) in cases {
        let out = tempfile::tempdir().unwrap();
        let run = analyze(&sample(), out.path(), args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let keys: Vec<String> = files(out.path()).into_keys().collect();
        let has = |suffix: &str| keys.iter().any(|k| k.ends_with(suffix));
        assert_eq!(has(".json.gz"), json, "{args:?}: {keys:?}");
        assert_eq!(has(".parquet"), parquet, "{args:?}: {keys:?}");
    }
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&sample(), out.path(), &["--format", "csv"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("csv"), "{}", run.stderr);
}

/// A week of one call a day, then `burst` calls in one minute of 2019-11-08.
fn write_history(tree: &Tree, burst: u32) {
    for d in 1..=8u32 {
        let day = format!("2019-11-0{d}");
        let calls: Vec<Value> = if d < 8 {
            vec![call(
                ACCOUNT,
                "us-east-1",
                &at(&day, 600, 0),
                "RunInstances",
                d.into(),
            )]
        } else {
            (0..burst)
                .map(|i| {
                    call(
                        ACCOUNT,
                        "us-east-1",
                        &at(&day, 700, i),
                        "RunInstances",
                        100 + u64::from(i),
                    )
                })
                .collect()
        };
        tree.write_log(&log_key("", None, ACCOUNT, "us-east-1", &day, "a"), &calls);
    }
}

#[test]
fn a_rerun_removes_partitions_of_analysed_days_that_lost_their_insights() {
    let tree = Tree::new();
    write_history(&tree, 12);
    let out = tempfile::tempdir().unwrap();
    let day = ["--from", "2019-11-08", "--to", "2019-11-08"];
    let run = analyze(tree.path(), out.path(), &day);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let parquet: Vec<String> = files(out.path())
        .into_keys()
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    assert_eq!(parquet.len(), 1, "{parquet:?}");
    assert!(
        parquet[0].starts_with(&format!(
            "insights/account={ACCOUNT}/region=us-east-1/date=2019-11-08/"
        )),
        "{parquet:?}"
    );
    let activities =
        format!("activities/account={ACCOUNT}/region=us-east-1/date=2019-11-08/activities.jsonl");
    assert!(files(out.path()).contains_key(&activities), "{activities}");
    // The same day without its burst: no Insight, so neither file may survive (nor its
    // explanations and activities).
    write_history(&tree, 1);
    let run = analyze(tree.path(), out.path(), &day);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.summary["stale_files_removed"], 2, "{:#}", run.summary);
    // Only the ledger of what was announced stays (a later run must not announce it again).
    let left: BTreeMap<String, Vec<u8>> = files(out.path())
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_trailsight/notifications/seen/"))
        .collect();
    assert_eq!(left, BTreeMap::new());
}

/// DuckDB, an engine that shares no code with trailsight, reads the Hive-partitioned tree of a
/// sample run and answers the documented example queries.
#[test]
fn duckdb_reads_the_partitioned_tree_and_answers_the_example_queries() {
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&sample(), out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let queries = repo_path("schemas/athena-example-queries.sql");
    let stdout = python_tool(
        "duckdb_queries.py",
        &[out.path().to_str().unwrap(), queries.to_str().unwrap()],
        b"",
    );
    let results: Value = serde_json::from_str(&stdout).unwrap();
    let rows = |name: &str| results[name]["rows"].as_array().cloned().unwrap();

    // Three Insights, each a Start and an End, with the partition columns from the paths.
    assert_eq!(results["_table"], 6, "{results:#}");
    let runinstances = rows("_partitions")
        .into_iter()
        .find(|r| r[3] == "RunInstances" && r[4] == "Start")
        .unwrap();
    assert_eq!(
        runinstances,
        json!([
            "123456789012",
            "us-east-1",
            "2019-11-07",
            "RunInstances",
            "Start",
            "2019-11-07T13:25:00Z",
            "2019-11-07T13:25:00Z"
        ])
    );

    let weekly = rows("insights_per_api_per_week");
    assert_eq!(weekly.len(), 3, "{weekly:#?}");
    assert!(
        weekly
            .iter()
            .all(|r| r[0] == "2019-11-04T00:00:00Z" && r[5] == 1),
        "{weekly:#?}"
    );
    assert!(
        weekly.contains(&json!([
            "2019-11-04T00:00:00Z",
            "123456789012",
            "ec2.amazonaws.com",
            "RunInstances",
            "ApiCallRateInsight",
            1
        ])),
        "{weekly:#?}"
    );

    // The longest Insights are the labelled anomalies, longest first: the 20-minute KMS
    // Decrypt error burst, the 12-minute AuthorizeSecurityGroupIngress spike, RunInstances.
    let labels: Value =
        serde_json::from_slice(&std::fs::read(sample().join("anomalies.json")).unwrap()).unwrap();
    let mut expected: Vec<Value> = labels["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            json!([
                l["account"],
                l["region"],
                l["eventSource"],
                l["eventName"],
                l["insightType"],
                l["errorCode"],
                l["start"],
                l["end"],
                l["durationMinutes"]
            ])
        })
        .collect();
    expected.sort_by_key(|l| std::cmp::Reverse(l[8].as_u64()));
    let longest = rows("longest_episodes");
    let found: Vec<Value> = longest
        .iter()
        .map(|r| json!(r.as_array().unwrap()[..9]))
        .collect();
    assert_eq!(found, expected, "{longest:#?}");
    assert_eq!(longest[0][3], "Decrypt");
    assert_eq!(longest[1][3], "AuthorizeSecurityGroupIngress");
    assert_eq!(longest[1][8], 12);
    let run_instances = longest.iter().find(|r| r[3] == "RunInstances").unwrap();
    assert_eq!(run_instances[6], "2019-11-07T13:25:00Z");
    assert_eq!(run_instances[7], "2019-11-07T13:26:00Z");
    assert_eq!(run_instances[8], 1);
    assert_eq!(run_instances[9], 0.0020833333);
    assert_eq!(run_instances[10], 6.0);

    let identities = rows("top_attributed_identities");
    assert!(!identities.is_empty(), "{results:#}");
    assert!(
        identities.contains(&json!([
            "123456789012",
            "arn:aws:sts::123456789012:assumed-role/ci-deployer",
            1,
            6.0
        ])),
        "{identities:#?}"
    );
}
