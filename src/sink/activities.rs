//! Activities -> JSON Lines files beside the explanations, one per account, region and day of
//! the activities' first Starts, under Hive-style folders so DuckDB or Athena can read them as a
//! table: `activities/account=ACCOUNT/region=REGION/date=YYYY-MM-DD/activities.jsonl`.
//!
//! The grouping itself is the report's (`report::activity`, built into lines by
//! `report::activity_data`); the pipeline hands the lines here, so the sink only decides what
//! is written where.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One activity as a line: the Insights (by `sharedEventID`) that tell one story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityLine {
    pub recipient_account_id: String,
    pub aws_region: String,
    /// The first minute of its first Insight, `YYYY-MM-DDTHH:MM:SSZ`.
    pub start_time: String,
    /// The first minute after its last Insight (the Ends' `eventTime`, or while an Insight is
    /// still open the minutes its Start covers).
    pub end_time: String,
    /// Whether one of its Insights is still open (has no End yet).
    pub open: bool,
    /// The Insights it groups, sorted.
    #[serde(rename = "sharedEventIDs")]
    pub shared_event_ids: Vec<String>,
    /// Each Insight's API, `eventSource:eventName`, sorted and without repeats.
    pub apis: Vec<String>,
    pub event_sources: Vec<String>,
    pub event_names: Vec<String>,
    /// `ApiCallRateInsight`, `ApiErrorRateInsight`.
    pub insight_types: Vec<String>,
    /// The top caller (`userIdentityArn` with the highest Insight average) of each Insight.
    pub top_callers: Vec<String>,
    /// The documented severity (`report::activity::Severity`): `score` is the sum of the parts.
    pub severity_score: f64,
    pub rarity: f64,
    pub magnitude: f64,
    pub new_api: bool,
    pub new_caller: bool,
    pub error_rate_insights: u64,
    /// Why its Insights were put together (codes, sorted; empty for a single Insight).
    pub reasons: Vec<String>,
    /// The same reasons in words.
    pub reason_texts: Vec<String>,
}

impl ActivityLine {
    /// The day it is filed under: the day of its first Start.
    pub fn day(&self) -> NaiveDate {
        crate::model::parse_day(self.start_time.get(..10).unwrap_or_default())
            .unwrap_or(NaiveDate::MIN)
    }
}

/// The key of the activities of one account, region and day.
pub fn file_key(account: &str, region: &str, day: NaiveDate) -> String {
    format!("activities/account={account}/region={region}/date={day}/activities.jsonl")
}

/// (key, bytes) for every file to write, in key order; lines by start, then first
/// `sharedEventID`, so the bytes depend only on the activities.
pub fn plan_files(activities: &[ActivityLine]) -> Vec<(String, Vec<u8>)> {
    let mut files: BTreeMap<String, Vec<&ActivityLine>> = BTreeMap::new();
    for a in activities {
        files
            .entry(file_key(&a.recipient_account_id, &a.aws_region, a.day()))
            .or_default()
            .push(a);
    }
    files
        .into_iter()
        .map(|(key, mut lines)| {
            lines.sort_by(|a, b| {
                (&a.start_time, &a.shared_event_ids).cmp(&(&b.start_time, &b.shared_event_ids))
            });
            let mut bytes = Vec::new();
            for line in lines {
                // Strings, booleans and finite numbers only (the severity parts are clamped).
                serde_json::to_writer(&mut bytes, line).expect("serialising an activity");
                bytes.push(b'\n');
            }
            (key, bytes)
        })
        .collect()
}
