//! Smoke tests of the non-sample presets and layout flags: they run, spread over several
//! streams, honour `--prefix` / `--no-org-id`, and label their anomalies.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::generate;

fn subdirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn bench_preset_spreads_over_accounts_and_regions() {
    let (root, summary) = generate(
        "bench-small",
        &[
            "--preset", "bench", "--scale", "0.25", "--days", "1", "--volume", "0.3",
        ],
    );
    assert_eq!(summary.streams, 2 * 3);
    assert!(summary.records > 2_000, "{summary:?}");
    let org = root.join("AWSLogs").join("o-7x2kq9bench");
    let accounts = subdirs(&org);
    assert_eq!(accounts.len(), 2, "{accounts:?}");
    let regions = subdirs(&org.join(&accounts[0]).join("CloudTrail"));
    assert_eq!(regions, ["ap-southeast-2", "eu-west-1", "us-east-1"]);
    let labels: Value =
        serde_json::from_str(&fs::read_to_string(root.join("anomalies.json")).unwrap()).unwrap();
    let anomalies = labels["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), summary.anomalies);
    assert!(
        anomalies
            .iter()
            .any(|a| a["insightType"] == "ApiErrorRateInsight" && a["errorCode"].is_string())
    );
    assert!(
        anomalies
            .iter()
            .any(|a| a["insightType"] == "ApiCallRateInsight" && a["errorCode"].is_null())
    );
}

#[test]
fn prefix_and_account_trail_layout() {
    let args = [
        "--accounts",
        "111122223333",
        "--regions",
        "eu-central-1",
        "--days",
        "1",
        "--prefix",
        "team/ct",
        "--delivery-interval",
        "15",
    ];
    let (root, summary) = generate("custom-prefix", &args);
    assert_eq!(summary.streams, 1);
    let region = root.join("team/ct/AWSLogs/111122223333/CloudTrail/eu-central-1/2019/10/31");
    let files = subdirs(&region);
    assert!(files.len() > 50, "{} files", files.len());
    assert!(files.iter().all(
        |f| f.starts_with("111122223333_CloudTrail_eu-central-1_20191031T")
            && f.ends_with(".json.gz")
    ));
    assert!(
        root.join("team/ct/AWSLogs/111122223333/CloudTrail-Digest/eu-central-1")
            .is_dir()
    );
}

/// `--long-tail-apis` adds that many numbered write APIs to each stream, each called about
/// `--long-tail-calls-per-day` times a day; the same flags give the same calls.
#[test]
fn long_tail_adds_many_rarely_called_apis() {
    let base = [
        "--accounts",
        "111122223333",
        "--regions",
        "eu-west-1",
        "--days",
        "4",
        "--volume",
        "0.05",
        "--seed",
        "7",
    ];
    let names = |root: &Path| {
        let mut calls = std::collections::BTreeMap::<String, u64>::new();
        for path in crate::files(root) {
            if path.to_string_lossy().contains("/CloudTrail/") {
                let log: Value = serde_json::from_str(&crate::gunzip(&path)).unwrap();
                for r in log["Records"].as_array().unwrap() {
                    *calls
                        .entry(r["eventName"].as_str().unwrap().into())
                        .or_default() += 1;
                }
            }
        }
        calls
    };
    let (plain, _) = generate("long-tail-none", &base);
    let mut with = base.to_vec();
    with.extend(["--long-tail-apis", "40", "--long-tail-calls-per-day", "5"]);
    let (tail, _) = generate("long-tail-40", &with);
    let (plain, tail) = (names(&plain), names(&tail));
    let catalogued = |n: &str| trailsight_gen::catalogue::APIS.iter().any(|a| a.name == n);
    assert!(plain.keys().all(|n| catalogued(n)), "{plain:?}");
    let added: Vec<(&String, &u64)> = tail.iter().filter(|(n, _)| !catalogued(n)).collect();
    assert_eq!(added.len(), 40, "{added:?}");
    // Each is a catalogued write API's name and a number.
    assert!(
        added.iter().all(|(n, _)| catalogued(&n[..n.len() - 2])),
        "{added:?}"
    );
    // 40 APIs x 5 calls x 4 days = 800 calls, Poisson (sd about 28).
    let calls: u64 = added.iter().map(|(_, c)| **c).sum();
    assert!((650..=950).contains(&calls), "{calls}");
    let (again, _) = generate("long-tail-none-again", &base);
    assert_eq!(names(&again), plain);
}
