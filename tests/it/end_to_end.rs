//! The committed sample data, end to end: the CloudTrail Insights launch example reproduced
//! exactly, every labelled anomaly found, output in AWS's format, and byte-identical re-runs.

use crate::aws_format::check;
use crate::support::*;
use serde_json::Value;

fn sample() -> std::path::PathBuf {
    repo_path("sample-data")
}

#[test]
fn the_runinstances_launch_example_matches_aws() {
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&sample(), out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = insights(out.path());
    let run_instances: Vec<&Value> = found
        .iter()
        .map(|(_, r)| r)
        .filter(|r| {
            r["insightDetails"]["eventName"] == "RunInstances"
                && r["awsRegion"] == "us-east-1"
                && r["recipientAccountId"] == ACCOUNT
        })
        .collect();
    assert_eq!(run_instances.len(), 2, "{run_instances:#?}");
    let (start, end) = (run_instances[0], run_instances[1]);
    assert_eq!(start["eventTime"], "2019-11-07T13:25:00Z");
    assert_eq!(start["insightDetails"]["state"], "Start");
    assert_eq!(end["eventTime"], "2019-11-07T13:26:00Z");
    assert_eq!(end["insightDetails"]["state"], "End");
    assert_eq!(start["sharedEventID"], end["sharedEventID"]);
    assert_ne!(start["eventID"], end["eventID"]);
    for record in [start, end] {
        let details = &record["insightDetails"];
        assert_eq!(details["eventSource"], "ec2.amazonaws.com");
        assert_eq!(details["insightType"], "ApiCallRateInsight");
        let stats = &details["insightContext"]["statistics"];
        assert_eq!(stats["baseline"]["average"], 0.0020833333);
        assert_eq!(stats["baselineDuration"], 10080);
        assert_eq!(stats["insight"]["average"], 6.0);
        assert_eq!(stats["insightDuration"], 1);
    }
}

#[test]
fn every_labelled_anomaly_is_found_and_nothing_else() {
    let labels: Value =
        serde_json::from_slice(&std::fs::read(sample().join("anomalies.json")).unwrap()).unwrap();
    let labels = labels
        .as_array()
        .or_else(|| labels["anomalies"].as_array())
        .cloned()
        .unwrap_or_default();
    assert!(labels.len() >= 2, "{labels:#?}");
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&sample(), out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let starts: Vec<Value> = insights(out.path())
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r["insightDetails"]["state"] == "Start")
        .collect();
    for label in &labels {
        let hit = starts.iter().find(|s| {
            s["recipientAccountId"] == label["account"]
                && s["awsRegion"] == label["region"]
                && s["insightDetails"]["eventName"] == label["eventName"]
                && s["insightDetails"]["insightType"] == label["insightType"]
        });
        let hit = hit.unwrap_or_else(|| panic!("missed {label:#}"));
        let found =
            chrono::DateTime::parse_from_rfc3339(hit["eventTime"].as_str().unwrap()).unwrap();
        let injected =
            chrono::DateTime::parse_from_rfc3339(label["start"].as_str().unwrap()).unwrap();
        assert!(
            (found - injected).num_minutes().abs() <= 2,
            "{label:#} found at {found}"
        );
    }
    assert_eq!(
        starts.len(),
        labels.len(),
        "unexpected insights: {starts:#?}"
    );
}

#[test]
fn output_is_aws_format_and_byte_identical_across_runs() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(analyze(&sample(), a.path(), &[]).code, 0);
    assert_eq!(analyze(&sample(), b.path(), &[]).code, 0);
    let first = files(a.path());
    assert!(!first.is_empty());
    assert_eq!(first, files(b.path()));
    let mut shared_ids = std::collections::BTreeSet::new();
    for key in first.keys().filter(|k| k.ends_with(".parquet")) {
        // The Parquet tree (tests/it/parquet_output.rs) sits beside AWS's layout.
        assert!(key.starts_with("insights/"), "{key}");
    }
    for (key, bytes) in first.iter().filter(|(k, _)| k.starts_with("AWSLogs/")) {
        assert!(key.contains("/CloudTrail-Insight/"), "{key}");
        for record in gunzip_records(bytes) {
            shared_ids.insert(check(&record).shared_event_id);
        }
    }
    // Every episode is explained, beside the Insights.
    let explained: std::collections::BTreeSet<String> = first
        .iter()
        .filter(|(k, _)| k.starts_with("explanations/account="))
        .flat_map(|(_, bytes)| {
            String::from_utf8(bytes.clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .map(|line| {
            serde_json::from_str::<Value>(&line).unwrap()["sharedEventID"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(explained, shared_ids);
    // A re-run into the same directory replaces files, never adds any.
    assert_eq!(analyze(&sample(), a.path(), &[]).code, 0);
    assert_eq!(files(a.path()), first);
}
