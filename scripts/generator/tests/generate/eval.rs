//! The `eval` preset, shrunk to one stream over 9 days so it runs in a second or two:
//! deterministic, the clean variant is exactly the background of the anomalous one, and every
//! label agrees with the records (injected calls minute by minute, baselines, series counts).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::{files, generate, gunzip, key_of};

const ARGS: &[&str] = &[
    "--preset",
    "eval",
    "--seed",
    "7",
    "--days",
    "9",
    "--accounts",
    "311111111111",
    "--regions",
    "us-east-1",
    "--volume",
    "0.2",
];

/// Distinct records by eventID.
fn records(root: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for path in files(root) {
        if key_of(root, &path).contains("/CloudTrail/") {
            let doc: Value = serde_json::from_str(&gunzip(&path)).unwrap();
            for r in doc["Records"].as_array().unwrap() {
                out.insert(r["eventID"].as_str().unwrap().to_string(), r.clone());
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

/// Minutes since the epoch of `YYYY-MM-DDTHH:MM...`.
fn epoch_minute(t: &str) -> i64 {
    let d = chrono::NaiveDateTime::parse_from_str(&t[..16], "%Y-%m-%dT%H:%M").unwrap();
    d.and_utc().timestamp() / 60
}

fn matches(label: &Value, r: &Value) -> bool {
    r["eventSource"] == label["eventSource"]
        && r["eventName"] == label["eventName"]
        && (label["errorCode"].is_null() || r["errorCode"] == label["errorCode"])
}

#[test]
fn eval_preset_is_deterministic_and_its_labels_match_the_records() {
    let (a, _) = generate("eval-a", ARGS);
    let (b, _) = generate("eval-b", &[ARGS, &["--threads", "1"]].concat());
    let (clean, _) = generate("eval-clean", &[ARGS, &["--clean"]].concat());
    for name in ["anomalies.json", "series.json", "recurring.json"] {
        assert_eq!(
            fs::read(a.join(name)).unwrap(),
            fs::read(b.join(name)).unwrap()
        );
    }
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.len(), fb.len());
    for (pa, pb) in fa.iter().zip(&fb) {
        assert!(
            fs::read(pa).unwrap() == fs::read(pb).unwrap(),
            "{}",
            pa.display()
        );
    }

    let labels = json(&a, "anomalies.json");
    assert_eq!(labels["preset"], "eval");
    let labels = labels["anomalies"].as_array().unwrap();
    assert_eq!(labels.len(), 17, "{labels:#?}");
    let scenarios: BTreeSet<&str> = labels
        .iter()
        .map(|l| l["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(scenarios.len(), 8, "{scenarios:?}");
    assert_eq!(json(&clean, "anomalies.json")["clean"], true);

    let all = records(&a);
    let background = records(&clean);
    // The clean variant is the anomalous one minus the injected calls, record for record.
    for (id, r) in &background {
        assert_eq!(all.get(id), Some(r), "background record {id} differs");
    }
    let injected: Vec<&Value> = all
        .iter()
        .filter(|(id, _)| !background.contains_key(*id))
        .map(|(_, r)| r)
        .collect();
    let total: u64 = labels
        .iter()
        .map(|l| l["injectedCount"].as_u64().unwrap())
        .sum();
    assert_eq!(injected.len() as u64, total);

    let data_start = epoch_minute("2024-03-04T00:00");
    for label in labels {
        let id = label["id"].as_str().unwrap();
        let principal = label["principal"].as_str().unwrap();
        let mine: Vec<&&Value> = injected
            .iter()
            .filter(|r| matches(label, r))
            .filter(|r| {
                r["userIdentity"]["arn"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(principal.split('/').next().unwrap())
            })
            .collect();
        assert_eq!(
            mine.len() as u64,
            label["injectedCount"].as_u64().unwrap(),
            "{id}"
        );
        let minutes: BTreeSet<String> = mine.iter().map(|r| minute_of(r)).collect();
        assert_eq!(
            minutes.first().unwrap(),
            label["start"].as_str().unwrap(),
            "{id}"
        );
        assert_eq!(
            minutes.last().unwrap(),
            label["lastMinute"].as_str().unwrap(),
            "{id}"
        );
        if let Some(code) = label["errorCode"].as_str() {
            assert!(mine.iter().all(|r| r["errorCode"] == code), "{id}");
        } else {
            assert!(mine.iter().all(|r| r["errorCode"].is_null()), "{id}");
        }
        // Baselines: ordinary events of the same API (and code) before the start.
        let start = epoch_minute(label["start"].as_str().unwrap());
        let ordinary: Vec<i64> = background
            .values()
            .filter(|r| matches(label, r) && r["recipientAccountId"] == label["account"])
            .map(|r| epoch_minute(r["eventTime"].as_str().unwrap()))
            .collect();
        let week = ordinary
            .iter()
            .filter(|m| (start - 10080).max(data_start) <= **m && **m < start)
            .count();
        assert_eq!(
            week as u64,
            label["baselineCount"].as_u64().unwrap(),
            "{id}"
        );
        let tod = ordinary
            .iter()
            .filter(|m| (1..=7).any(|d| (*m - (start - d * 1440)).abs() <= 60))
            .count();
        assert_eq!(
            tod as u64,
            label["baselineTimeOfDayCount"].as_u64().unwrap(),
            "{id}"
        );
    }

    // recurring.json: every run's calls are in the records, inside the run's minutes, and
    // the clean variant lists the same runs.
    let runs = json(&a, "recurring.json");
    assert_eq!(runs, json(&clean, "recurring.json"));
    let runs = runs["runs"].as_array().unwrap();
    let jobs: BTreeSet<&str> = runs.iter().map(|r| r["job"].as_str().unwrap()).collect();
    for job in [
        "nightly-create",
        "daily-on-boundary",
        "daily-across-boundary",
        "daily-fixed-minute",
        "hourly",
    ] {
        assert!(jobs.contains(job), "{job} missing from {jobs:?}");
    }
    for run in runs {
        let (from, to) = (
            epoch_minute(run["start"].as_str().unwrap()),
            epoch_minute(run["lastMinute"].as_str().unwrap()),
        );
        let inside = background
            .values()
            .filter(|r| matches(run, r) && r["recipientAccountId"] == run["account"])
            .filter(|r| (from..=to).contains(&epoch_minute(r["eventTime"].as_str().unwrap())))
            .count();
        assert!(
            inside as u64 >= run["calls"].as_u64().unwrap(),
            "{run}: {inside} records"
        );
    }
    let tenfold = labels
        .iter()
        .find(|l| l["scenario"] == "recurring-10x")
        .unwrap();
    assert!(
        runs.iter().any(|r| r["start"] == tenfold["start"]
            && r["eventName"] == tenfold["eventName"]
            && r["job"].as_str().unwrap().starts_with("daily-")),
        "{tenfold}"
    );

    // series.json counts every write and every error per UTC day.
    let series = json(&a, "series.json");
    let mut expected: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for r in all.values() {
        let day = r["eventTime"].as_str().unwrap()[..10].to_string();
        let api = format!("{}:{}", r["eventSource"], r["eventName"]);
        if r["readOnly"] == false {
            *expected
                .entry((api.clone(), String::new(), day.clone()))
                .or_default() += 1;
        }
        if let Some(code) = r["errorCode"].as_str() {
            *expected.entry((api, code.to_string(), day)).or_default() += 1;
        }
    }
    let mut written: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for s in series["series"].as_array().unwrap() {
        let api = format!("{}:{}", s["eventSource"], s["eventName"]);
        let code = s["errorCode"].as_str().unwrap_or_default().to_string();
        for (day, n) in s["days"].as_object().unwrap() {
            written.insert(
                (api.clone(), code.clone(), day.clone()),
                n.as_u64().unwrap(),
            );
        }
    }
    assert_eq!(written, expected);
}
