//! End-to-end checks on the `sample` preset: determinism, the exact RunInstances scenario,
//! the S3 layout, duplicates, late-evening records in the next day's folder, and the labels.
//!
//! The sample is generated once per test binary (well under a second) and decoded once; each
//! test reads the shared decoded view.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use crate::{files, generate, gunzip, key_of};

const ACCOUNT: &str = "123456789012";
const BURST_MINUTE: &str = "2019-11-07T13:25";

/// One decoded log file.
struct LogFile {
    key: String,
    raw: String,
    records: Vec<Value>,
}

struct Sample {
    root: PathBuf,
    logs: Vec<LogFile>,
    other_keys: Vec<String>,
}

fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let (root, _) = generate(
            "sample-a",
            &["--preset", "sample", "--seed", "1", "--threads", "2"],
        );
        let mut logs = Vec::new();
        let mut other_keys = Vec::new();
        for path in files(&root) {
            let key = key_of(&root, &path);
            if key.contains("/CloudTrail/") {
                let raw = gunzip(&path);
                let doc: Value = serde_json::from_str(&raw).unwrap();
                let records = doc["Records"].as_array().unwrap().clone();
                logs.push(LogFile { key, raw, records });
            } else {
                other_keys.push(key);
            }
        }
        Sample {
            root,
            logs,
            other_keys,
        }
    })
}

/// Distinct records (by eventID) with the key of the first file that delivered them.
fn distinct() -> BTreeMap<String, (&'static Value, &'static str)> {
    let mut out = BTreeMap::new();
    for file in &sample().logs {
        for record in &file.records {
            let id = record["eventID"].as_str().unwrap().to_string();
            out.entry(id).or_insert((record, file.key.as_str()));
        }
    }
    out
}

#[test]
fn same_seed_gives_byte_identical_trees() {
    let a = &sample().root;
    let (b, _) = generate(
        "sample-b",
        &["--preset", "sample", "--seed", "1", "--threads", "1"],
    );
    let (fa, fb) = (files(a), files(&b));
    let keys_a: Vec<String> = fa.iter().map(|p| key_of(a, p)).collect();
    let keys_b: Vec<String> = fb.iter().map(|p| key_of(&b, p)).collect();
    assert_eq!(keys_a, keys_b, "different object keys");
    for (pa, pb) in fa.iter().zip(&fb) {
        assert!(
            fs::read(pa).unwrap() == fs::read(pb).unwrap(),
            "{} differs",
            pa.display()
        );
    }
}

#[test]
fn a_different_seed_gives_different_data() {
    let (c, _) = generate(
        "sample-c",
        &["--preset", "sample", "--seed", "2", "--days", "2"],
    );
    let keys: BTreeSet<String> = files(&c).iter().map(|p| key_of(&c, p)).collect();
    let first: BTreeSet<String> = files(&sample().root)
        .iter()
        .map(|p| key_of(&sample().root, p))
        .collect();
    assert!(
        keys.intersection(&first)
            .filter(|k| k.contains("/CloudTrail/"))
            .count()
            == 0
    );
}

#[test]
fn run_instances_scenario_is_exact() {
    let calls: Vec<&Value> = distinct()
        .values()
        .map(|(r, _)| *r)
        .filter(|r| {
            r["eventName"] == "RunInstances"
                && r["recipientAccountId"] == ACCOUNT
                && r["awsRegion"] == "us-east-1"
        })
        .collect();
    let time = |r: &Value| r["eventTime"].as_str().unwrap().to_string();
    let before: Vec<&&Value> = calls
        .iter()
        .filter(|r| time(r).as_str() < "2019-11-07T13:25:00Z")
        .collect();
    let burst: Vec<&&Value> = calls
        .iter()
        .filter(|r| time(r).starts_with(BURST_MINUTE))
        .collect();
    assert_eq!(before.len(), 21, "calls before the burst");
    assert!(
        before
            .iter()
            .all(|r| time(r).as_str() >= "2019-10-31T13:25:00Z")
    );
    let minutes: BTreeSet<String> = before.iter().map(|r| time(r)[..16].to_string()).collect();
    assert_eq!(
        minutes.len(),
        21,
        "at most one call per minute before the burst"
    );
    assert_eq!(burst.len(), 6, "calls in the burst minute");
    let who: BTreeSet<(String, String)> = burst
        .iter()
        .map(|r| {
            (
                r["userIdentity"]["arn"].to_string(),
                r["userAgent"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        who.len(),
        1,
        "one identity and user agent in the burst: {who:?}"
    );
    assert!(
        burst
            .iter()
            .all(|r| r["readOnly"] == false && r.get("errorCode").is_none())
    );
    // Raw deliveries agree with distinct events for the scripted calls (they are never duplicated).
    let raw = sample()
        .logs
        .iter()
        .flat_map(|f| &f.records)
        .filter(|r| {
            r["eventName"] == "RunInstances"
                && r["recipientAccountId"] == ACCOUNT
                && r["awsRegion"] == "us-east-1"
        })
        .filter(|r| r["eventTime"].as_str().unwrap() < "2019-11-07T13:26:00Z")
        .count();
    assert_eq!(raw, 27);
}

/// Splits `ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHmmZ_UNIQUE16.json.gz` into its parts.
fn parse_file_name(name: &str) -> Option<(&str, &str, &str, &str)> {
    let stem = name.strip_suffix(".json.gz")?;
    let mut parts = stem.split('_');
    let (account, service, region, stamp, unique) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let ok = parts.next().is_none()
        && service == "CloudTrail"
        && stamp.len() == 14
        && stamp.as_bytes()[8] == b'T'
        && stamp.ends_with('Z')
        && unique.len() == 16
        && unique.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some((account, region, stamp, unique))
}

#[test]
fn keys_follow_the_cloudtrail_layout() {
    for file in &sample().logs {
        let parts: Vec<&str> = file.key.split('/').collect();
        assert_eq!(parts.len(), 9, "{}", file.key);
        assert_eq!(&parts[..2], ["AWSLogs", "o-a1b2c3d4e5"], "{}", file.key);
        assert_eq!(parts[3], "CloudTrail", "{}", file.key);
        let (account, region, stamp, _) =
            parse_file_name(parts[8]).unwrap_or_else(|| panic!("bad name {}", file.key));
        assert_eq!(account, parts[2], "{}", file.key);
        assert_eq!(region, parts[4], "{}", file.key);
        assert_eq!(
            &stamp[..8],
            format!("{}{}{}", parts[5], parts[6], parts[7]),
            "{}",
            file.key
        );
        assert!(!file.records.is_empty(), "{}", file.key);
        assert!(
            file.raw.starts_with("{\"Records\":[{\"eventVersion\":\"1."),
            "{}",
            file.key
        );
        for record in &file.records {
            assert_eq!(record["recipientAccountId"], account, "{}", file.key);
            assert_eq!(record["awsRegion"], region, "{}", file.key);
            // Delivered at or after the event: the file stamp (minute) is never before eventTime's minute.
            let event = record["eventTime"]
                .as_str()
                .unwrap()
                .replace(['-', ':'], "");
            assert!(
                event[..13] <= stamp[..13],
                "{} holds a record from {}",
                file.key,
                event
            );
        }
    }
    assert!(
        sample().logs.len() > 500 && sample().logs.len() < 1500,
        "{} log files",
        sample().logs.len()
    );
}

#[test]
fn siblings_are_digests_and_labels() {
    let keys = &sample().other_keys;
    assert!(keys.contains(&"anomalies.json".to_string()));
    let digests: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("/CloudTrail-Digest/"))
        .collect();
    assert_eq!(
        digests.len() + 1,
        keys.len(),
        "unexpected objects: {keys:?}"
    );
    assert!(digests.len() >= 2 * 2 * 9, "{} digests", digests.len());
    let doc: Value = serde_json::from_str(&gunzip(&sample().root.join(digests[0]))).unwrap();
    assert!(doc.get("Records").is_none() && doc["digestS3Object"] == digests[0].as_str());
}

#[test]
fn duplicates_exist_and_are_identical() {
    let mut seen: BTreeMap<&str, &Value> = BTreeMap::new();
    let mut duplicates = 0;
    for record in sample().logs.iter().flat_map(|f| &f.records) {
        let id = record["eventID"].as_str().unwrap();
        if let Some(first) = seen.insert(id, record) {
            assert_eq!(first, record, "duplicate {id} differs");
            duplicates += 1;
        }
    }
    let share = f64::from(duplicates) / seen.len() as f64;
    assert!(
        duplicates > 0 && share < 0.005,
        "{duplicates} duplicates of {}",
        seen.len()
    );
}

#[test]
fn late_evening_records_land_in_the_next_days_folder() {
    let crossing = distinct()
        .values()
        .filter(|(record, key)| {
            let folder = key.split('/').skip(5).take(3).collect::<Vec<_>>().join("-");
            record["eventTime"].as_str().unwrap()[..10] < *folder
        })
        .count();
    assert!(crossing > 10, "{crossing} records in a later day's folder");
}

#[test]
fn records_look_like_cloudtrail() {
    let records = distinct();
    let n = records.len() as f64;
    let writes = records
        .values()
        .filter(|(r, _)| r["readOnly"] == false)
        .count() as f64;
    let errors = records
        .values()
        .filter(|(r, _)| r.get("errorCode").is_some())
        .count() as f64;
    assert!(
        (0.2..=0.35).contains(&(writes / n)),
        "write share {}",
        writes / n
    );
    assert!(
        (0.01..=0.1).contains(&(errors / n)),
        "error share {}",
        errors / n
    );
    for (record, key) in records.values() {
        for field in [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "sourceIPAddress",
            "eventID",
            "eventType",
            "recipientAccountId",
            "eventCategory",
        ] {
            assert!(
                record.get(field).is_some(),
                "{field} missing in a record of {key}"
            );
        }
        assert_eq!(record["managementEvent"], true);
        let time = record["eventTime"].as_str().unwrap();
        assert!(time.len() == 20 && time.ends_with('Z'), "{time}");
    }
    let mean = sample().logs.iter().map(|f| f.raw.len()).sum::<usize>() as f64 / n;
    assert!((1000.0..=2000.0).contains(&mean), "mean record size {mean}");
}

#[test]
fn labels_describe_the_three_anomalies() {
    let labels: Value =
        serde_json::from_str(&fs::read_to_string(sample().root.join("anomalies.json")).unwrap())
            .unwrap();
    let anomalies = labels["anomalies"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = anomalies
        .iter()
        .map(|a| {
            (
                a["eventName"].as_str().unwrap().into(),
                a["insightType"].as_str().unwrap().into(),
                a["start"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "RunInstances".into(),
                "ApiCallRateInsight".into(),
                "2019-11-07T13:25:00Z".into()
            ),
            (
                "AuthorizeSecurityGroupIngress".into(),
                "ApiCallRateInsight".into(),
                "2019-11-06T02:14:00Z".into()
            ),
            (
                "Decrypt".into(),
                "ApiErrorRateInsight".into(),
                "2019-11-05T14:40:00Z".into()
            ),
        ]
    );
    assert_eq!(anomalies[0]["baselineCount"], 21);
    assert_eq!(anomalies[2]["errorCode"], "AccessDeniedException");
    // The labelled error storm is really in the data, from one principal.
    let storm = distinct()
        .values()
        .filter(|(r, _)| r["errorCode"] == "AccessDeniedException" && r["eventName"] == "Decrypt")
        .filter(|(r, _)| {
            r["eventTime"]
                .as_str()
                .unwrap()
                .starts_with("2019-11-05T14:")
        })
        .count();
    assert_eq!(
        storm as u64,
        anomalies[2]["injectedCount"].as_u64().unwrap()
    );
}
