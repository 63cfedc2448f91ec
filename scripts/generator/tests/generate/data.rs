//! The `eval-data` preset (data events, issue 18), shrunk to a low volume: records are data
//! events as CloudTrail writes them, every label agrees with the records (injected calls minute
//! by minute, principal, baseline), the clean variant is exactly the background, `series.json`
//! and `recurring.json` agree with the records, and the output does not depend on threads.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::{files, generate, gunzip, key_of};

const ARGS: &[&str] = &[
    "--preset",
    "eval-data",
    "--seed",
    "5",
    "--days",
    "8",
    "--regions",
    "us-east-1",
    "--volume",
    "0.05",
];

/// Distinct records by eventID, with their raw JSON text.
fn read_records(root: &Path) -> BTreeMap<String, (Value, String)> {
    let mut out = BTreeMap::new();
    for path in files(root) {
        if key_of(root, &path).contains("/CloudTrail/") {
            let doc: Value = serde_json::from_str(&gunzip(&path)).unwrap();
            for r in doc["Records"].as_array().unwrap() {
                let id = r["eventID"].as_str().unwrap().to_string();
                let text = serde_json::to_string(r).unwrap();
                out.insert(id, (r.clone(), text));
            }
        }
    }
    out
}

fn json(root: &Path, name: &str) -> Value {
    serde_json::from_str(&fs::read_to_string(root.join(name)).unwrap()).unwrap()
}

fn minute_of(r: &Value) -> String {
    format!("{}00Z", &r["eventTime"].as_str().unwrap()[..17])
}

/// Whether `r` was made by the label's principal (`role/session` or an IAM user).
fn by_principal(label: &Value, r: &Value) -> bool {
    let principal = label["principal"].as_str().unwrap();
    let arn = r["userIdentity"]["arn"].as_str().unwrap_or("");
    if principal.contains('/') {
        arn.ends_with(&format!("assumed-role/{principal}"))
    } else {
        arn.ends_with(&format!(":user/{principal}"))
    }
}

fn same_series(label: &Value, r: &Value) -> bool {
    r["eventSource"] == label["eventSource"]
        && r["eventName"] == label["eventName"]
        && (label["errorCode"].is_null() || r["errorCode"] == label["errorCode"])
}

#[test]
fn records_are_data_events_as_cloudtrail_writes_them() {
    let (root, summary) = generate("eval-data-shape", ARGS);
    let records = read_records(&root);
    assert_eq!(records.len() as u64, summary.records);
    let mut kinds = BTreeSet::new();
    for (r, _) in records.values() {
        let name = r["eventName"].as_str().unwrap();
        let data = matches!(name, "GetObject" | "PutObject" | "DeleteObject" | "Invoke");
        assert_eq!(r["managementEvent"], !data, "{r}");
        assert_eq!(r["eventCategory"], if data { "Data" } else { "Management" });
        assert_eq!(
            r["readOnly"],
            name != "PutObject" && name != "DeleteObject" && name != "Invoke"
        );
        if data {
            let arns: Vec<&str> = r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["ARN"].as_str().unwrap())
                .collect();
            if name == "Invoke" {
                assert_eq!(arns.len(), 1);
                assert!(arns[0].starts_with("arn:aws:lambda:us-east-1:444455556666:function:"));
                assert_eq!(r["requestParameters"]["functionName"], arns[0]);
            } else {
                let bucket = r["requestParameters"]["bucketName"].as_str().unwrap();
                let key = r["requestParameters"]["key"].as_str().unwrap();
                assert_eq!(
                    arns,
                    [
                        format!("arn:aws:s3:::{bucket}/{key}"),
                        format!("arn:aws:s3:::{bucket}")
                    ]
                );
            }
            if r["errorCode"].is_string() {
                assert!(r["responseElements"].is_null());
                assert_eq!(r["errorMessage"], "Access Denied");
            }
        }
        kinds.insert((
            name.to_string(),
            r["userIdentity"]["type"].as_str().unwrap().to_string(),
            r["errorCode"].as_str().unwrap_or("").to_string(),
        ));
    }
    for want in [
        ("GetObject", "AssumedRole", ""),
        ("PutObject", "AWSService", ""),
        ("PutObject", "AWSService", "AccessDenied"),
        ("PutObject", "AssumedRole", ""),
        ("Invoke", "AWSService", ""),
        ("DeleteObject", "AssumedRole", ""),
        ("DeleteObject", "IAMUser", ""),
        ("GetObject", "IAMUser", "AccessDenied"),
        ("Decrypt", "AssumedRole", ""),
    ] {
        let want = (want.0.to_string(), want.1.to_string(), want.2.to_string());
        assert!(kinds.contains(&want), "no {want:?} in {kinds:?}");
    }
}

#[test]
fn labels_agree_with_records_and_clean_is_the_background() {
    let (root, summary) = generate("eval-data-anomalous", ARGS);
    let mut clean_args = ARGS.to_vec();
    clean_args.push("--clean");
    let (clean_root, _) = generate("eval-data-clean", &clean_args);
    let labels = json(&root, "anomalies.json");
    assert_eq!(labels["preset"], "eval-data");
    assert_eq!(labels["analyseFrom"], "2024-03-09T00:00:00Z");
    let anomalies = labels["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), summary.anomalies);
    let scenarios: BTreeSet<&str> = anomalies
        .iter()
        .map(|a| a["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(
        scenarios,
        BTreeSet::from([
            "error-stream",
            "exfil",
            "invoke-storm",
            "mass-delete",
            "recon",
            "reencrypt"
        ])
    );
    let records = read_records(&root);
    let background = read_records(&clean_root);
    assert_eq!(
        json(&clean_root, "anomalies.json")["anomalies"],
        Value::Array(vec![])
    );
    let mut injected_total = 0;
    for label in anomalies {
        let start = label["start"].as_str().unwrap();
        let last = label["lastMinute"].as_str().unwrap();
        assert!(start >= "2024-03-09T00:00:00Z", "{label}");
        let mut per_minute: BTreeMap<String, u64> = BTreeMap::new();
        for (r, _) in records.values().filter(|(r, _)| by_principal(label, r)) {
            assert!(same_series(label, r), "{label} {r}");
            *per_minute.entry(minute_of(r)).or_default() += 1;
        }
        let count: u64 = per_minute.values().sum();
        assert_eq!(count, label["injectedCount"].as_u64().unwrap(), "{label}");
        assert_eq!(per_minute.keys().next().unwrap(), start);
        assert_eq!(per_minute.keys().last().unwrap(), last);
        assert_eq!(
            per_minute.len() as i64,
            label["durationMinutes"].as_i64().unwrap(),
            "one minute without calls in {label}"
        );
        assert_eq!(
            *per_minute.values().max().unwrap(),
            label["peakPerMinute"].as_u64().unwrap()
        );
        let from = label["baselineWindowStart"].as_str().unwrap();
        let baseline = background
            .values()
            .filter(|(r, _)| {
                same_series(label, r) && (from..start).contains(&minute_of(r).as_str())
            })
            .count();
        assert_eq!(
            baseline as u64,
            label["baselineCount"].as_u64().unwrap(),
            "{label}"
        );
        injected_total += count;
        if label["scenario"] == "recon" {
            assert_eq!(label["eventCategory"], "Management");
        } else {
            assert_eq!(label["eventCategory"], "Data");
        }
    }
    // The clean variant is record for record the background of the anomalous one.
    for (id, (_, text)) in &background {
        assert_eq!(Some(text), records.get(id).map(|(_, t)| t), "{id}");
    }
    assert_eq!(
        records.len() as u64,
        background.len() as u64 + injected_total
    );
}

#[test]
fn series_and_batch_runs_agree_with_records() {
    let (root, _) = generate("eval-data-series", ARGS);
    let records = read_records(&root);
    let mut counted: BTreeMap<(String, String, String), BTreeMap<String, u64>> = BTreeMap::new();
    for (r, _) in records.values() {
        let day = r["eventTime"].as_str().unwrap()[..10].to_string();
        let key = |code: &str| {
            (
                r["eventSource"].as_str().unwrap().to_string(),
                r["eventName"].as_str().unwrap().to_string(),
                code.to_string(),
            )
        };
        *counted
            .entry(key(""))
            .or_default()
            .entry(day.clone())
            .or_default() += 1;
        if let Some(code) = r["errorCode"].as_str() {
            *counted
                .entry(key(code))
                .or_default()
                .entry(day)
                .or_default() += 1;
        }
    }
    let mut listed = BTreeMap::new();
    for s in json(&root, "series.json")["series"].as_array().unwrap() {
        let key = (
            s["eventSource"].as_str().unwrap().to_string(),
            s["eventName"].as_str().unwrap().to_string(),
            s["errorCode"].as_str().unwrap_or("").to_string(),
        );
        assert_eq!(
            s["insightType"],
            if key.2.is_empty() {
                "ApiCallRateInsight"
            } else {
                "ApiErrorRateInsight"
            }
        );
        let days: BTreeMap<String, u64> = serde_json::from_value(s["days"].clone()).unwrap();
        listed.insert(key, days);
    }
    assert_eq!(listed, counted);

    // The ETL role reads and writes only within the listed batch runs, and in each of them.
    let runs = json(&root, "recurring.json")["runs"]
        .as_array()
        .unwrap()
        .clone();
    assert!(runs.len() >= 2 * 6, "{} runs", runs.len());
    let within = |r: &Value| {
        let m = minute_of(r);
        runs.iter().any(|run| {
            run["eventName"] == r["eventName"]
                && (run["start"].as_str().unwrap()..=run["lastMinute"].as_str().unwrap())
                    .contains(&m.as_str())
        })
    };
    let etl: Vec<&Value> = records
        .values()
        .map(|(r, _)| r)
        .filter(|r| {
            r["userIdentity"]["arn"]
                .as_str()
                .is_some_and(|a| a.contains("assumed-role/GlueJobRole/"))
        })
        .collect();
    assert!(etl.iter().all(|r| within(r)));
    for run in &runs {
        let (from, to) = (
            run["start"].as_str().unwrap(),
            run["lastMinute"].as_str().unwrap(),
        );
        assert!(
            etl.iter().any(|r| r["eventName"] == run["eventName"]
                && (from..=to).contains(&minute_of(r).as_str())),
            "no ETL call in {run}"
        );
    }
}

#[test]
fn output_does_not_depend_on_threads() {
    let args = |threads: &'static str| {
        vec![
            "--preset",
            "eval-data",
            "--seed",
            "2",
            "--days",
            "2",
            "--volume",
            "0.02",
            "--threads",
            threads,
        ]
    };
    let (one, _) = generate("eval-data-threads-1", &args("1"));
    let (two, _) = generate("eval-data-threads-2", &args("2"));
    let tree = |root: &Path| -> BTreeMap<String, Vec<u8>> {
        files(root)
            .into_iter()
            .map(|p| (key_of(root, &p), fs::read(&p).unwrap()))
            .collect()
    };
    let (a, b) = (tree(&one), tree(&two));
    assert!(a.keys().any(|k| k.contains("/eu-west-1/")));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(a == b, "the output differs between 1 and 2 threads");
}
