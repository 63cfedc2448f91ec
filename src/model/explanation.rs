//! Why an Insight fired: one record per episode, written beside the Insights (AWS's records
//! have no room for it) so a person can check the decision without rerunning anything.
//!
//! | field | meaning |
//! |---|---|
//! | `sharedEventID` | the episode's Insight pair |
//! | `recipientAccountId`, `awsRegion`, `eventSource`, `eventName`, `insightType`, `errorCode` | the series |
//! | `sourceEventCategory` | `Data` for data-event series; absent for management (AWS's default) |
//! | `callRateScope` | which calls a call rate counted, where not AWS's default (write management calls): `all` (read-only management calls too, `--call-rate-events all`; and every data call rate); absent otherwise |
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

use crate::model::{CallRateScope, EventCategory};
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
    /// `Data`, or absent for management events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_event_category: Option<String>,
    /// `all`, or absent for AWS's default (write management calls; not a call rate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_rate_scope: Option<String>,
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

impl Explanation {
    /// The series' category (management when absent).
    pub fn category(&self) -> EventCategory {
        self.source_event_category
            .as_deref()
            .and_then(EventCategory::parse)
            .unwrap_or_default()
    }

    /// Which calls a call rate counted; `None` for error rates.
    pub fn scope(&self) -> Option<CallRateScope> {
        if self.error_code.is_some() {
            return None;
        }
        Some(
            self.call_rate_scope
                .as_deref()
                .and_then(CallRateScope::parse)
                .unwrap_or(match self.category() {
                    EventCategory::Management => CallRateScope::Write,
                    EventCategory::Data => CallRateScope::All,
                }),
        )
    }
}
