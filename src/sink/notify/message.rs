//! What each channel is sent, built from a notice without I/O: EventBridge entries and their
//! batches, the SNS subject and message attributes, the webhook's JSON body and its one readable
//! line, and the webhook URL as it may be logged.
//!
//! EventBridge (`PutEvents`): one entry per notice; `DetailType` is
//! `AWS Insight via CloudTrail` for an Insight record (as CloudTrail itself sends them) and
//! `trailsight Delivery Finding` for a finding; `Detail` is the record exactly as in the JSON
//! file; `Time` is its `eventTime`. A request holds at most `MAX_ENTRIES_PER_PUT` entries whose
//! sizes add up to less than `MAX_PUT_BYTES`, each entry's size counted as EventBridge counts it
//! (the UTF-8 bytes of `Source`, `DetailType`, `Detail` and each resource, plus 14 bytes for a
//! `Time`).
//!
//! SNS (`Publish`): the message is the record's JSON; the subject is one ASCII line of at most
//! `MAX_SUBJECT_CHARS`; the message attributes are the fields subscription filters need.
//!
//! Webhook: `{"text": ONE LINE, "record": {...}}` (or `"finding"`): Slack and Teams incoming
//! webhooks show `text`; a program reads the record.

use super::{Finding, Notice};
use crate::model::insight::InsightRecord;
use serde_json::json;

/// `DetailType` of an Insight record, as CloudTrail sends it to EventBridge.
pub const DETAIL_TYPE_INSIGHT: &str = "AWS Insight via CloudTrail";
/// `DetailType` of a finding (a delivery gap, a withheld partition).
pub const DETAIL_TYPE_FINDING: &str = "trailsight Delivery Finding";
/// Entries per `PutEvents` request, at most (an EventBridge limit).
pub const MAX_ENTRIES_PER_PUT: usize = 10;
/// The entries of one `PutEvents` request must add up to less than this (256 KB).
pub const MAX_PUT_BYTES: usize = 256 * 1024;
/// What a `Time` adds to an entry's size.
const TIME_BYTES: usize = 14;
/// SNS subjects: at most 100 printable ASCII characters, no line break.
pub const MAX_SUBJECT_CHARS: usize = 100;

/// One `PutEvents` entry, before it becomes an SDK value.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub source: String,
    pub detail_type: &'static str,
    pub detail: String,
    /// Seconds since the epoch.
    pub time: Option<i64>,
}

impl Entry {
    pub fn new(notice: &Notice, source: &str) -> Entry {
        Entry {
            source: source.to_owned(),
            detail_type: notice.detail_type(),
            detail: notice.json(),
            time: notice.time(),
        }
    }

    /// The entry's size as EventBridge counts it.
    pub fn size(&self) -> usize {
        self.source.len()
            + self.detail_type.len()
            + self.detail.len()
            + self.time.map_or(0, |_| TIME_BYTES)
    }
}

/// Split entries (given by size, in order) into `PutEvents` requests: at most
/// `MAX_ENTRIES_PER_PUT` each, sizes adding up to less than `MAX_PUT_BYTES`, order kept. An entry
/// too large to be sent at all is in the second list, by index.
pub fn batches(sizes: &[usize]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut too_large = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = 0;
    for (i, &size) in sizes.iter().enumerate() {
        if size >= MAX_PUT_BYTES {
            too_large.push(i);
            continue;
        }
        if current.len() == MAX_ENTRIES_PER_PUT || bytes + size >= MAX_PUT_BYTES {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += size;
    }
    if !current.is_empty() {
        batches.push(current);
    }
    (batches, too_large)
}

/// `ec2.amazonaws.com` -> `ec2`.
fn service(event_source: &str) -> &str {
    event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source)
}

/// The SNS subject: "ApiCallRateInsight Start: ec2 RunInstances in 123456789012/us-east-1".
pub fn sns_subject(notice: &Notice) -> String {
    let text = match notice {
        Notice::Insight(r) => {
            let d = &r.insight_details;
            let error = d
                .error_code
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default();
            format!(
                "{} {}: {} {}{error} in {}/{}",
                d.insight_type,
                d.state,
                service(&d.event_source),
                d.event_name,
                r.recipient_account_id,
                r.aws_region
            )
        }
        Notice::Finding(f) => format!(
            "trailsight {}: {}/{} on {}",
            f.kind, f.account, f.region, f.day
        ),
    };
    subject_safe(&text)
}

/// Printable ASCII only, one line, at most `MAX_SUBJECT_CHARS` (SNS refuses anything else).
fn subject_safe(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            ' '..='~' => c,
            _ => '?',
        })
        .take(MAX_SUBJECT_CHARS)
        .collect();
    if out.len() == MAX_SUBJECT_CHARS && text.chars().count() > MAX_SUBJECT_CHARS {
        out.truncate(MAX_SUBJECT_CHARS - 3);
        out.push_str("...");
    }
    out
}

/// SNS message attributes (all `String`) for subscription filter policies; an empty value is
/// left out (SNS refuses it).
pub fn sns_attributes(notice: &Notice) -> Vec<(&'static str, String)> {
    let attributes = match notice {
        Notice::Insight(r) => {
            let d = &r.insight_details;
            vec![
                ("insightType", d.insight_type.clone()),
                ("state", d.state.clone()),
                ("eventSource", d.event_source.clone()),
                ("eventName", d.event_name.clone()),
                ("account", r.recipient_account_id.clone()),
                ("region", r.aws_region.clone()),
                (
                    "sourceEventCategory",
                    d.source_event_category.clone().unwrap_or_default(),
                ),
                ("errorCode", d.error_code.clone().unwrap_or_default()),
            ]
        }
        Notice::Finding(f) => vec![
            ("findingKind", f.kind.to_string()),
            ("account", f.account.clone()),
            ("region", f.region.clone()),
        ],
    };
    attributes
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// A per-minute average, short: `12`, `3.5`, `0.0021`.
fn rate(value: f64) -> String {
    let text = if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.4}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// One readable line for a person (a chat message).
pub fn one_line(notice: &Notice) -> String {
    match notice {
        Notice::Insight(r) => insight_line(r),
        Notice::Finding(f) => finding_line(f),
    }
}

fn insight_line(r: &InsightRecord) -> String {
    let d = &r.insight_details;
    let stats = &d.insight_context.statistics;
    let what = match &d.error_code {
        Some(code) => format!("{code} errors of {} {}", d.event_source, d.event_name),
        None => format!("{} {} calls", d.event_source, d.event_name),
    };
    let numbers = if r.is_start() {
        format!(
            "{}/min against a baseline of {}/min",
            rate(stats.insight.average),
            rate(stats.baseline.average)
        )
    } else {
        format!(
            "{}/min on average over {} min (baseline {}/min)",
            rate(stats.insight.average),
            stats.insight_duration,
            rate(stats.baseline.average)
        )
    };
    let verb = if r.is_start() { "started" } else { "ended" };
    format!(
        "CloudTrail Insight {verb} ({} {}): {what} in {}/{} at {}: {numbers}",
        d.insight_type, d.state, r.recipient_account_id, r.aws_region, r.event_time
    )
}

fn finding_line(f: &Finding) -> String {
    format!(
        "trailsight {}: {}/{} on {}: {}",
        f.kind, f.account, f.region, f.day, f.detail
    )
}

/// The webhook's JSON body.
pub fn webhook_body(notice: &Notice) -> Vec<u8> {
    let body = match notice {
        Notice::Insight(r) => json!({ "text": one_line(notice), "record": r }),
        Notice::Finding(f) => json!({ "text": one_line(notice), "finding": f }),
    };
    serde_json::to_vec(&body).expect("serialising a notice into memory")
}

/// `scheme://host[:port]/…`: a webhook URL as it may be logged or written in a summary. The
/// path and query of an incoming webhook are its secret, so they never appear.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("?", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // user:password@ before the host is a secret too.
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}/…")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::notify::FindingKind;
    use crate::sink::notify::tests::record;

    #[test]
    fn batches_keep_order_within_the_entry_and_byte_limits() {
        let big = MAX_PUT_BYTES / 2;
        // (entry sizes, batches, too large)
        type Case = (Vec<usize>, Vec<Vec<usize>>, Vec<usize>);
        let cases: Vec<Case> = vec![
            (vec![], vec![], vec![]),
            (vec![100; 3], vec![vec![0, 1, 2]], vec![]),
            (vec![100; 12], vec![(0..10).collect(), vec![10, 11]], vec![]),
            (vec![100; 10], vec![(0..10).collect()], vec![]),
            // Two halves make exactly the limit, which is not "less than": split.
            (vec![big, big], vec![vec![0], vec![1]], vec![]),
            (vec![big, big - 1], vec![vec![0, 1]], vec![]),
            (vec![10, MAX_PUT_BYTES, 10], vec![vec![0, 2]], vec![1]),
            (vec![big, 100, big], vec![vec![0, 1], vec![2]], vec![]),
        ];
        for (sizes, want, too_large) in cases {
            assert_eq!(batches(&sizes), (want, too_large), "{sizes:?}");
        }
    }

    #[test]
    fn entries_carry_the_record_exactly_and_count_their_size_like_eventbridge() {
        let r = record("Start", "ec2.amazonaws.com", "RunInstances", None);
        let notice = Notice::Insight(Box::new(r.clone()));
        let entry = Entry::new(&notice, "trailsight");
        assert_eq!(entry.detail_type, "AWS Insight via CloudTrail");
        assert_eq!(entry.detail, serde_json::to_string(&r).unwrap());
        assert_eq!(entry.time, Some(1573121580));
        assert_eq!(
            entry.size(),
            "trailsight".len() + "AWS Insight via CloudTrail".len() + entry.detail.len() + 14
        );
        let finding = Notice::Finding(Finding::new(
            FindingKind::PartitionWithheld,
            "123456789012",
            "us-east-1",
            crate::model::parse_day("2019-11-07").unwrap(),
            "x",
        ));
        assert_eq!(
            Entry::new(&finding, "s").detail_type,
            "trailsight Delivery Finding"
        );
    }

    #[test]
    fn sns_subjects_are_short_ascii_lines() {
        let cases = [
            (
                record("Start", "ec2.amazonaws.com", "RunInstances", None),
                "ApiCallRateInsight Start: ec2 RunInstances in 123456789012/us-east-1",
            ),
            (
                record("End", "iam.amazonaws.com", "GetRole", Some("AccessDenied")),
                "ApiErrorRateInsight End: iam GetRole AccessDenied in 123456789012/us-east-1",
            ),
            (
                record("Start", "custom.example", "Do\u{e9}\nIt", None),
                "ApiCallRateInsight Start: custom.example Do??It in 123456789012/us-east-1",
            ),
        ];
        for (r, want) in cases {
            assert_eq!(sns_subject(&Notice::Insight(Box::new(r))), want);
        }
        let long = record("Start", "ec2.amazonaws.com", &"X".repeat(200), None);
        let subject = sns_subject(&Notice::Insight(Box::new(long)));
        assert_eq!(subject.len(), MAX_SUBJECT_CHARS, "{subject}");
        assert!(subject.ends_with("..."), "{subject}");
    }

    #[test]
    fn sns_attributes_serve_filter_policies_and_leave_empty_values_out() {
        let r = record("Start", "ec2.amazonaws.com", "RunInstances", None);
        let names: Vec<&str> = sns_attributes(&Notice::Insight(Box::new(r)))
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(
            names,
            [
                "insightType",
                "state",
                "eventSource",
                "eventName",
                "account",
                "region",
                "sourceEventCategory"
            ]
        );
        let r = record("End", "iam.amazonaws.com", "GetRole", Some("AccessDenied"));
        let attributes = sns_attributes(&Notice::Insight(Box::new(r)));
        assert!(attributes.contains(&("errorCode", "AccessDenied".into())));
        assert!(attributes.contains(&("state", "End".into())));
    }

    #[test]
    fn the_webhook_text_is_one_readable_line_and_the_body_carries_the_record() {
        let cases = [
            (
                record("Start", "ec2.amazonaws.com", "RunInstances", None),
                "CloudTrail Insight started (ApiCallRateInsight Start): ec2.amazonaws.com RunInstances calls in 123456789012/us-east-1 at 2019-11-07T10:13:00Z: 12/min against a baseline of 0.0021/min",
            ),
            (
                record("End", "iam.amazonaws.com", "GetRole", Some("AccessDenied")),
                "CloudTrail Insight ended (ApiErrorRateInsight End): AccessDenied errors of iam.amazonaws.com GetRole in 123456789012/us-east-1 at 2019-11-07T10:13:00Z: 12/min on average over 1 min (baseline 0.0021/min)",
            ),
        ];
        for (r, want) in cases {
            let notice = Notice::Insight(Box::new(r.clone()));
            assert_eq!(one_line(&notice), want);
            let body: serde_json::Value = serde_json::from_slice(&webhook_body(&notice)).unwrap();
            assert_eq!(body["text"], want);
            assert_eq!(body["record"], serde_json::to_value(&r).unwrap());
        }
    }

    #[test]
    fn rates_are_short() {
        for (value, want) in [
            (12.0, "12"),
            (3.5, "3.5"),
            (0.0020833333, "0.0021"),
            (250.4, "250"),
            (0.0, "0"),
        ] {
            assert_eq!(rate(value), want, "{value}");
        }
    }

    #[test]
    fn webhook_urls_are_logged_without_their_secret() {
        let cases = [
            (
                "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                "https://hooks.slack.com/…",
            ),
            (
                "https://user:pw@example.com:8443/hook?token=SECRET",
                "https://example.com:8443/…",
            ),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000/…"),
            ("not a url", "?://not a url/…"),
        ];
        for (url, want) in cases {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
