//! Why an Insight fired: one record per episode, written beside the Insights (AWS's records
//! have no room for it) so a person can check the decision without rerunning anything.
//!
//! | field | meaning |
//! |---|---|
//! | `sharedEventID` | the episode's Insight pair |
//! | `recipientAccountId`, `awsRegion`, `eventSource`, `eventName`, `insightType`, `errorCode` | the series |
//! | `direction` | `increase` or `decrease` (a drop, only with drop detection on) |
//! | `startTime`, `endTime` | as in the Start and End records; `endTime` null while open |
//! | `windowMinutes`, `observedCalls`, `expectedCalls` | the window that opened the episode |
//! | `observedPerMinute`, `expectedPerMinute` | the same as rates |
//! | `tailProbability` | `P(X >= observed)` (increase) or `P(no call)` (decrease) under the model |
//! | `distribution`, `dispersionSize` | `poisson`, or `negative-binomial` with its size |
//! | `season` | the seasonal bin the expected rate came from |
//! | `newApi` | the API had no call in the baseline (judged with `minNewApiCount`) |
//! | `baselineCalls`, `baselineMinutes` | the reported baseline |
//! | `reason` | one sentence for people |

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    #[serde(rename = "sharedEventID")]
    pub shared_event_id: String,
    pub recipient_account_id: String,
    pub aws_region: String,
    pub event_source: String,
    pub event_name: String,
    pub insight_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    pub direction: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub window_minutes: i64,
    pub observed_calls: u64,
    pub expected_calls: f64,
    pub observed_per_minute: f64,
    pub expected_per_minute: f64,
    pub tail_probability: f64,
    pub distribution: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispersion_size: Option<f64>,
    pub season: String,
    pub new_api: bool,
    pub baseline_calls: u64,
    pub baseline_minutes: i64,
    pub reason: String,
}
