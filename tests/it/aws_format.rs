//! Our Insight records against AWS's: a test-only struct that denies unknown fields, written
//! from AWS's documentation, must read both AWS's published examples and our output.

use crate::support::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Every field is declared so that unknown ones are rejected.
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsInsight {
    pub event_version: String,
    pub event_time: String,
    pub aws_region: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub event_type: String,
    pub recipient_account_id: Option<String>,
    #[serde(rename = "sharedEventID")]
    pub shared_event_id: String,
    pub insight_details: AwsDetails,
    pub event_category: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Every field is declared so that unknown ones are rejected.
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsDetails {
    pub state: String,
    pub event_source: String,
    pub event_name: String,
    pub insight_type: String,
    pub error_code: Option<String>,
    pub source_event_category: Option<String>,
    pub insight_source: Option<String>,
    pub insight_context: AwsContext,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Every field is declared so that unknown ones are rejected.
#[serde(deny_unknown_fields)]
pub struct AwsContext {
    pub statistics: AwsStatistics,
    pub attributions: Option<Vec<AwsAttribution>>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Every field is declared so that unknown ones are rejected.
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsStatistics {
    pub baseline: AwsAverage,
    pub insight: AwsAverage,
    pub insight_duration: Option<u64>,
    pub baseline_duration: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Every field is declared so that unknown ones are rejected.
#[serde(deny_unknown_fields)]
pub struct AwsAverage {
    pub average: f64,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Every field is declared so that unknown ones are rejected.
#[serde(deny_unknown_fields)]
pub struct AwsAttribution {
    pub attribute: String,
    pub insight: Vec<AwsValue>,
    pub baseline: Vec<AwsValue>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)] // Every field is declared so that unknown ones are rejected.
#[serde(deny_unknown_fields)]
pub struct AwsValue {
    pub value: String,
    pub average: f64,
}

/// Check one record against the rules AWS documents, beyond field names and types.
pub fn check(record: &serde_json::Value) -> AwsInsight {
    let r: AwsInsight =
        serde_json::from_value(record.clone()).unwrap_or_else(|e| panic!("{e}: {record:#}"));
    assert_eq!(r.event_type, "AwsCloudTrailInsight");
    assert_eq!(r.event_category, "Insight");
    assert!(["Start", "End"].contains(&r.insight_details.state.as_str()));
    assert!(
        ["ApiCallRateInsight", "ApiErrorRateInsight"]
            .contains(&r.insight_details.insight_type.as_str())
    );
    assert_eq!(
        r.insight_details.error_code.is_some(),
        r.insight_details.insight_type == "ApiErrorRateInsight"
    );
    assert!(
        r.event_time.len() == 20 && r.event_time.ends_with(":00Z"),
        "{}",
        r.event_time
    );
    for attribution in r
        .insight_details
        .insight_context
        .attributions
        .iter()
        .flatten()
    {
        assert!(attribution.insight.len() <= 5 && attribution.baseline.len() <= 5);
        let sorted = |v: &[AwsValue]| v.windows(2).all(|w| w[0].average >= w[1].average);
        assert!(sorted(&attribution.insight) && sorted(&attribution.baseline));
    }
    r
}

#[test]
fn the_strict_struct_reads_every_aws_example() {
    let bytes = std::fs::read(repo_path(
        "tests/fixtures/real-cloudtrail/aws-insights-examples.Records.json",
    ))
    .unwrap();
    let examples: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let records = examples["Records"].as_array().unwrap();
    assert_eq!(records.len(), 9);
    for record in records {
        check(record);
    }
}

#[test]
fn our_records_have_every_field_aws_documents_and_no_other() {
    let tree = Tree::new();
    let day = "2019-11-07";
    let mut records = Vec::new();
    for d in 0..7u32 {
        let day = format!("2019-11-0{}", d + 1);
        records.push(call(
            ACCOUNT,
            "us-east-1",
            &at(&day, 600, 1),
            "RunInstances",
            u64::from(d),
        ));
    }
    let mut burst: Vec<_> = (0..8)
        .map(|i| {
            call(
                ACCOUNT,
                "us-east-1",
                &at("2019-11-08", 700, i),
                "RunInstances",
                100 + u64::from(i),
            )
        })
        .collect();
    burst[0]["errorCode"] = "Client.InstanceLimitExceeded".into();
    records.extend(burst);
    tree.write_log(&log_key("", None, ACCOUNT, "us-east-1", day, "a"), &records);
    let out = tempfile::tempdir().unwrap();
    let run = analyze(
        tree.path(),
        out.path(),
        &["--from", "2019-11-08", "--to", "2019-11-08"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = insights(out.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    for (_, record) in &found {
        let r = check(record);
        let stats = &r.insight_details.insight_context.statistics;
        assert!(stats.insight_duration.is_some() && stats.baseline_duration.is_some());
        let attributes: Vec<_> = r
            .insight_details
            .insight_context
            .attributions
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| a.attribute.as_str())
            .collect();
        assert_eq!(attributes, ["userIdentityArn", "userAgent", "errorCode"]);
        assert_eq!(
            r.insight_details.source_event_category.as_deref(),
            Some("Management")
        );
    }
    let start = &found[0].1;
    let errors = &start["insightDetails"]["insightContext"]["attributions"][2]["insight"];
    assert_eq!(
        errors,
        &serde_json::json!([
            {"value": "null", "average": 7.0},
            {"value": "Client.InstanceLimitExceeded", "average": 1.0}
        ])
    );
    let identities = &start["insightDetails"]["insightContext"]["attributions"][0]["insight"];
    assert_eq!(
        identities[0]["value"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/deployer")
    );
    assert_eq!(identities[0]["average"], 8.0);
}

/// A data event (S3 `GetObject`) as CloudTrail logs it: `managementEvent` false, category
/// `Data`, the object and its bucket in `resources`.
fn data_call(time: &str, name: &str, bucket: &str, object: &str, id: u64) -> serde_json::Value {
    let mut r = call(ACCOUNT, "us-east-1", time, name, id);
    r["eventSource"] = "s3.amazonaws.com".into();
    r["readOnly"] = true.into();
    r["managementEvent"] = false.into();
    r["eventCategory"] = "Data".into();
    r["resources"] = serde_json::json!([
        {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{object}")},
        {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")}
    ]);
    r
}

/// A week of one `GetObject` a day, then a burst of reads (every other one denied) on
/// 2019-11-08.
fn data_event_tree() -> Tree {
    let tree = Tree::new();
    let mut records = Vec::new();
    for d in 0..7u32 {
        let day = format!("2019-11-0{}", d + 1);
        records.push(data_call(
            &at(&day, 600, 1),
            "GetObject",
            "logs",
            "a",
            u64::from(d),
        ));
    }
    for i in 0..24u32 {
        let mut r = data_call(
            &at("2019-11-08", 700 + i / 12, i % 60),
            "GetObject",
            "payroll",
            &format!("obj-{i}"),
            100 + u64::from(i),
        );
        if i % 2 == 0 {
            r["errorCode"] = "AccessDenied".into();
        }
        records.push(r);
    }
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", "2019-11-08", "a"),
        &records,
    );
    tree
}

#[test]
fn data_event_insights_say_data_and_attribute_resource_arns() {
    let tree = data_event_tree();
    let out = tempfile::tempdir().unwrap();
    let days = ["--from", "2019-11-08", "--to", "2019-11-08"];
    // AWS's default analyses management events only: nothing here is analysed.
    let run = analyze(tree.path(), out.path(), &days);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(insights(out.path()).is_empty());

    let out = tempfile::tempdir().unwrap();
    let extra = [&days[..], &["--event-categories", "management,data"]].concat();
    let run = analyze(tree.path(), out.path(), &extra);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = insights(out.path());
    let kinds: Vec<(String, String)> = found
        .iter()
        .map(|(_, r)| {
            let d = &r["insightDetails"];
            (
                d["insightType"].as_str().unwrap().to_owned(),
                d["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = |t: &str, s: &str| kinds.contains(&(t.to_owned(), s.to_owned()));
    assert!(
        want("ApiCallRateInsight", "Start") && want("ApiCallRateInsight", "End"),
        "{found:#?}"
    );
    assert!(want("ApiErrorRateInsight", "Start"), "{found:#?}");
    for (_, record) in &found {
        let r = check(record);
        let d = &r.insight_details;
        assert_eq!(d.source_event_category.as_deref(), Some("Data"));
        assert_eq!(d.insight_source, None, "no trail ARN is known offline");
        let attributions = d.insight_context.attributions.as_ref().unwrap();
        let attributes: Vec<_> = attributions.iter().map(|a| a.attribute.as_str()).collect();
        let resources = attributions.last().unwrap();
        if d.insight_type == "ApiCallRateInsight" {
            assert_eq!(
                attributes,
                ["userIdentityArn", "userAgent", "errorCode", "resourceArn"]
            );
        } else {
            assert_eq!(attributes, ["userIdentityArn", "userAgent", "resourceArn"]);
        }
        // Every call names its bucket: the bucket leads, at the Insight's own average.
        assert_eq!(resources.insight[0].value, "arn:aws:s3:::payroll");
        assert_eq!(
            resources.insight[0].average,
            d.insight_context.statistics.insight.average
        );
        assert!(resources.insight.len() <= 5);
        if d.insight_type == "ApiCallRateInsight" {
            let baseline: Vec<_> = resources.baseline.iter().map(|v| &v.value).collect();
            assert_eq!(baseline, ["arn:aws:s3:::logs", "arn:aws:s3:::logs/a"]);
        }
    }
    let end = found
        .iter()
        .map(|(_, r)| r)
        .find(|r| {
            r["insightDetails"]["state"] == "End"
                && r["insightDetails"]["insightType"] == "ApiCallRateInsight"
        })
        .unwrap();
    let stats = &end["insightDetails"]["insightContext"]["statistics"];
    assert_eq!(stats["insightDuration"], 2, "{end:#}");
    assert_eq!(stats["insight"]["average"], 12.0, "{end:#}");
    // The summary counts data events apart from management ones.
    let summary = &run.summary;
    assert_eq!(summary["data_events"], 31);
    assert_eq!(summary["data_error_events"], 12);
    assert_eq!(summary["write_events"], 0);
    assert_eq!(summary["insights"]["ApiCallRateInsight (data events)"], 1);
    assert_eq!(summary["insights"]["ApiErrorRateInsight (data events)"], 1);
}

#[test]
fn read_only_management_calls_count_toward_call_rate_only_when_asked() {
    let tree = Tree::new();
    let mut records = Vec::new();
    for d in 0..7u32 {
        let mut r = call(
            ACCOUNT,
            "us-east-1",
            &at(&format!("2019-11-0{}", d + 1), 600, 1),
            "DescribeInstances",
            u64::from(d),
        );
        r["readOnly"] = true.into();
        records.push(r);
    }
    for i in 0..30u32 {
        let mut r = call(
            ACCOUNT,
            "us-east-1",
            &at("2019-11-08", 700, i),
            "DescribeInstances",
            100 + u64::from(i),
        );
        r["readOnly"] = true.into();
        records.push(r);
    }
    tree.write_log(
        &log_key("", None, ACCOUNT, "us-east-1", "2019-11-08", "a"),
        &records,
    );
    let days = ["--from", "2019-11-08", "--to", "2019-11-08"];
    let out = tempfile::tempdir().unwrap();
    let run = analyze(tree.path(), out.path(), &days);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        insights(out.path()).is_empty(),
        "AWS counts write calls only"
    );

    let out = tempfile::tempdir().unwrap();
    let extra = [&days[..], &["--call-rate-events", "all"]].concat();
    let run = analyze(tree.path(), out.path(), &extra);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = insights(out.path());
    assert_eq!(found.len(), 2, "{found:#?}");
    for (_, record) in &found {
        let r = check(record);
        assert_eq!(
            r.insight_details.source_event_category.as_deref(),
            Some("Management")
        );
    }
    let explanations: Vec<serde_json::Value> = files(out.path())
        .into_iter()
        .filter(|(key, _)| key.starts_with("explanations/"))
        .flat_map(|(_, bytes)| {
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(explanations.len(), 1);
    assert_eq!(explanations[0]["callRateScope"], "all");
    assert!(
        explanations[0]["reason"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{:#}",
        explanations[0]
    );
    let summary = &run.summary;
    assert_eq!(summary["read_events"], 37);
}
