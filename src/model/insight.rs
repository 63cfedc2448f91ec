//! The Insights event record, field for field as AWS writes it to a trail's S3 bucket.
//!
//! Wire format (JSON keys, in AWS's order; see `schemas/` for the full contract):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `eventVersion` | string | `"1.09"` |
//! | `eventTime` | string | `YYYY-MM-DDTHH:MM:00Z`: the first unusual minute (Start) or the first minute after it (End) |
//! | `awsRegion` | string | region of the analysed events |
//! | `eventID` | string | UUID v5 of the `sharedEventID` and the state: re-runs give the same ID |
//! | `eventType` | string | `"AwsCloudTrailInsight"` |
//! | `recipientAccountId` | string | account of the analysed events |
//! | `sharedEventID` | string | UUID v5 of the episode's identity, shared by Start and End |
//! | `insightDetails.state` | string | `"Start"` or `"End"` |
//! | `insightDetails.eventSource`, `.eventName` | string | the API |
//! | `insightDetails.insightType` | string | `"ApiCallRateInsight"` or `"ApiErrorRateInsight"` |
//! | `insightDetails.errorCode` | string | error-rate Insights only |
//! | `insightDetails.sourceEventCategory` | string | `"Management"` or `"Data"` (data events, with `--event-categories data`) |
//! | `...statistics.baseline.average` | number | calls (or errors) per minute over the baseline |
//! | `...statistics.insight.average` | number | per minute: the first minute (Start), the whole episode (End) |
//! | `...statistics.insightDuration` | integer | minutes: 1 (Start), the episode's length (End) |
//! | `...statistics.baselineDuration` | integer | minutes of baseline: 10080, or less when history is shorter |
//! | `...attributions[]` | array | `userIdentityArn`, `userAgent`, (call rate only) `errorCode`, and (data events only) `resourceArn` |
//! | `eventCategory` | string | `"Insight"` |
//!
//! Averages are rounded to 10 decimal places, as in AWS's published examples.

use serde::{Deserialize, Serialize};

pub const EVENT_VERSION: &str = "1.09";
pub const EVENT_TYPE: &str = "AwsCloudTrailInsight";
pub const EVENT_CATEGORY: &str = "Insight";
/// The attribution value AWS writes for calls that returned no error.
pub const NO_ERROR: &str = "null";
/// At most this many values per attribute, as AWS documents.
pub const MAX_ATTRIBUTION_VALUES: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightRecord {
    pub event_version: String,
    pub event_time: String,
    pub aws_region: String,
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub event_type: String,
    pub recipient_account_id: String,
    #[serde(rename = "sharedEventID")]
    pub shared_event_id: String,
    pub insight_details: InsightDetails,
    pub event_category: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightDetails {
    pub state: String,
    pub event_source: String,
    pub event_name: String,
    pub insight_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_event_category: Option<String>,
    pub insight_context: InsightContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsightContext {
    pub statistics: Statistics,
    #[serde(default)]
    pub attributions: Vec<Attribution>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statistics {
    pub baseline: Average,
    pub insight: Average,
    /// Always written; absent (read as 0) in some of AWS's own, older records.
    #[serde(default)]
    pub insight_duration: i64,
    /// Always written; absent (read as 0) in some of AWS's own, older records.
    #[serde(default)]
    pub baseline_duration: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Average {
    pub average: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub attribute: String,
    pub insight: Vec<AttributedValue>,
    pub baseline: Vec<AttributedValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributedValue {
    pub value: String,
    pub average: f64,
}

impl InsightRecord {
    pub fn is_start(&self) -> bool {
        self.insight_details.state == "Start"
    }
}

/// Round a per-minute average to 10 decimal places.
pub fn round_average(value: f64) -> f64 {
    const SCALE: f64 = 1e10;
    let rounded = (value * SCALE).round() / SCALE;
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// A call-rate Start or End record of one episode of `name` in `region` at `time`, for the
/// tests of whatever reads or builds on Insight records.
#[cfg(test)]
pub(crate) fn test_record(
    id: &str,
    state: &str,
    region: &str,
    name: &str,
    time: &str,
) -> InsightRecord {
    InsightRecord {
        event_version: EVENT_VERSION.into(),
        event_time: time.into(),
        aws_region: region.into(),
        event_id: format!("{id}-{state}"),
        event_type: EVENT_TYPE.into(),
        recipient_account_id: "123456789012".into(),
        shared_event_id: id.into(),
        insight_details: InsightDetails {
            state: state.into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: name.into(),
            insight_type: "ApiCallRateInsight".into(),
            error_code: None,
            source_event_category: None,
            insight_context: InsightContext {
                statistics: Statistics {
                    baseline: Average { average: 0.1 },
                    insight: Average { average: 6.0 },
                    insight_duration: if state == "Start" { 1 } else { 3 },
                    baseline_duration: 10080,
                },
                attributions: vec![],
            },
        },
        event_category: EVENT_CATEGORY.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_like_aws() {
        assert_eq!(round_average(21.0 / 10080.0), 0.0020833333);
        assert_eq!(round_average(861036.0 / 10080.0), 85.4202380952);
        assert_eq!(round_average(6.0), 6.0);
        assert_eq!(round_average(-0.0), 0.0);
    }
}
