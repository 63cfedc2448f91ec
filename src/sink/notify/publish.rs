//! The AWS channels: EventBridge `PutEvents` and SNS `Publish`, each client built on first use
//! from the standard AWS configuration chain (as the S3 client is: rustls with ring, the SDK's
//! own retries off), and every request retried here with the S3 client's policy
//! (`store::retry`): throttling and 5xx wait and try again, what a retry cannot fix gives up
//! at once.
//!
//! `PutEvents` can succeed as a request and fail for some entries (`FailedEntryCount`, an
//! `ErrorCode` per entry): entries failed by throttling or an internal error are sent again,
//! alone, with the same backoff; entries refused for what they are fail at once.

use super::message::{self, Entry};
use super::{Attempt, ClientSettings, Delivered, DeliveryError, Notice, with_retries};
use crate::store::retry::{self, Decision, Failure};
use aws_config::SdkConfig;
use aws_sdk_eventbridge::config::http::HttpResponse;
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::OnceCell;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The shared AWS configuration, in `region` when given (the region of an ARN), else from the
/// standard chain.
async fn sdk_config(
    access: &crate::store::aws::AwsAccess,
    region: Option<&str>,
) -> Result<SdkConfig, DeliveryError> {
    crate::store::aws::load(
        access,
        region,
        None,
        "no AWS region: use an ARN, pass --region, or set AWS_REGION",
    )
    .await
    .map_err(DeliveryError::channel)
}

fn timeouts(settings: &ClientSettings) -> aws_sdk_eventbridge::config::timeout::TimeoutConfig {
    aws_sdk_eventbridge::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(settings.request_timeout)
        .build()
}

/// One failed AWS request, reduced to what the retry decision and the message need.
fn attempt_of<E>(error: SdkError<E, HttpResponse>) -> Attempt
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (failure, message) = crate::store::s3::sdk_failure(&error);
    Attempt {
        failure,
        message,
        wait: None,
    }
}

/// An error and its causes on one line, each cause once, redacted: the store's.
pub(super) use crate::store::s3::error_chain;

/// The region named by an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
pub fn arn_region(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn" && !parts[3].is_empty()).then(|| parts[3])
}

/// Whether a `PutEvents` entry that failed with `code` is worth sending again.
pub fn entry_retriable(code: &str) -> bool {
    let failure = Failure::Status {
        status: 400,
        code: Some(code.to_owned()),
    };
    retry::classify(&failure) != Decision::GiveUp
        || code.contains("Internal")
        || code.contains("ServiceUnavailable")
}

/// Publishes to an EventBridge bus.
#[derive(Debug)]
pub struct EventBridge {
    pub bus: String,
    pub source: String,
    settings: ClientSettings,
    client: OnceCell<aws_sdk_eventbridge::Client>,
}

impl EventBridge {
    pub fn new(bus: String, source: String, settings: ClientSettings) -> EventBridge {
        EventBridge {
            bus,
            source,
            settings,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<&aws_sdk_eventbridge::Client, DeliveryError> {
        self.client
            .get_or_try_init(|| async {
                let region = arn_region(&self.bus).or(self.settings.region.as_deref());
                let shared = sdk_config(&self.settings.access, region).await?;
                let config = aws_sdk_eventbridge::config::Builder::from(&shared)
                    .retry_config(aws_sdk_eventbridge::config::retry::RetryConfig::disabled())
                    .timeout_config(timeouts(&self.settings))
                    .build();
                Ok(aws_sdk_eventbridge::Client::from_conf(config))
            })
            .await
    }

    /// Put every notice on the bus, in batches; one outcome per notice, in order.
    pub async fn publish(&self, notices: &[&Notice]) -> Vec<Delivered> {
        let entries: Vec<Entry> = notices
            .iter()
            .map(|n| Entry::new(n, &self.source))
            .collect();
        let mut outcomes: Vec<Option<Delivered>> = vec![None; entries.len()];
        let client = match self.client().await {
            Ok(client) => client,
            Err(e) => return vec![Err(e); entries.len()],
        };
        let sizes: Vec<usize> = entries.iter().map(Entry::size).collect();
        let (batches, too_large) = message::batches(&sizes);
        for i in too_large {
            outcomes[i] = Some(Err(DeliveryError::notice(format!(
                "the event is {} bytes, more than PutEvents takes ({} bytes)",
                sizes[i],
                message::MAX_PUT_BYTES
            ))));
        }
        let mut down: Option<DeliveryError> = None;
        for batch in batches {
            if let Some(e) = &down {
                for i in batch {
                    outcomes[i] = Some(Err(e.clone()));
                }
                continue;
            }
            // A stop waits for no request, nor its retries: what the batch left unsent then
            // fails as stopped, and so does every later batch.
            let sent = batch.clone();
            let failed =
                crate::stop::until_stopped(self.put_batch(client, &entries, batch, &mut outcomes))
                    .await
                    .unwrap_or_else(|| {
                        let stopped = DeliveryError::stopping();
                        for i in sent {
                            outcomes[i].get_or_insert_with(|| Err(stopped.clone()));
                        }
                        Some(stopped)
                    });
            down = failed;
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(DeliveryError::channel("not sent".into()))))
            .collect()
    }

    /// Send one batch until every entry is in or has failed; entries that failed by
    /// throttling or an internal error go again. Returns the channel's failure, if it failed.
    async fn put_batch(
        &self,
        client: &aws_sdk_eventbridge::Client,
        entries: &[Entry],
        batch: Vec<usize>,
        outcomes: &mut [Option<Delivered>],
    ) -> Option<DeliveryError> {
        let policy = self.settings.retry;
        let mut waiting = batch;
        let mut failed_attempts = 0;
        loop {
            let request = client.put_events().set_entries(Some(
                waiting
                    .iter()
                    .map(|&i| self.sdk_entry(&entries[i]))
                    .collect(),
            ));
            let (decision, message) = match request.send().await {
                Err(e) => {
                    let attempt = attempt_of(e);
                    (retry::classify(&attempt.failure), attempt.message)
                }
                Ok(output) => {
                    let mut again = Vec::new();
                    let mut last = String::new();
                    for (k, &i) in waiting.iter().enumerate() {
                        let entry = output.entries().get(k);
                        match entry.and_then(|e| e.error_code()) {
                            None if entry.is_some() => outcomes[i] = Some(Ok(())),
                            None => again.push(i),
                            Some(code) => {
                                let text = format!(
                                    "{code}: {}",
                                    entry.and_then(|e| e.error_message()).unwrap_or("")
                                );
                                if entry_retriable(code) {
                                    again.push(i);
                                    last = text;
                                } else {
                                    outcomes[i] = Some(Err(DeliveryError::notice(format!(
                                        "PutEvents refused the entry: {text}"
                                    ))));
                                }
                            }
                        }
                    }
                    if again.is_empty() {
                        return None;
                    }
                    waiting = again;
                    (
                        Decision::Throttled,
                        format!("{} entries failed ({last})", waiting.len()),
                    )
                }
            };
            failed_attempts += 1;
            if decision == Decision::GiveUp || failed_attempts >= policy.max_attempts.max(1) {
                let error = DeliveryError::channel(format!(
                    "PutEvents to {} failed after {failed_attempts} attempt(s): {message}",
                    self.bus
                ));
                for &i in &waiting {
                    outcomes[i] = Some(Err(error.clone()));
                }
                return Some(error);
            }
            let wait = policy.backoff(decision, failed_attempts, retry::jitter_unit());
            tracing::debug!(bus = %self.bus, attempt = failed_attempts, "PutEvents: {message}; retrying in {wait:?}");
            tokio::time::sleep(wait).await;
        }
    }

    fn sdk_entry(&self, entry: &Entry) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
        aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source(&entry.source)
            .detail_type(entry.detail_type)
            .detail(&entry.detail)
            .event_bus_name(&self.bus)
            .set_time(
                entry
                    .time
                    .map(aws_sdk_eventbridge::primitives::DateTime::from_secs),
            )
            .build()
    }
}

/// Publishes to an SNS topic, one message per notice.
#[derive(Debug)]
pub struct Sns {
    pub topic_arn: String,
    settings: ClientSettings,
    client: OnceCell<aws_sdk_sns::Client>,
}

impl Sns {
    pub fn new(topic_arn: String, settings: ClientSettings) -> Sns {
        Sns {
            topic_arn,
            settings,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<&aws_sdk_sns::Client, DeliveryError> {
        self.client
            .get_or_try_init(|| async {
                let region = arn_region(&self.topic_arn).or(self.settings.region.as_deref());
                let shared = sdk_config(&self.settings.access, region).await?;
                let config = aws_sdk_sns::config::Builder::from(&shared)
                    .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
                    .timeout_config(timeouts(&self.settings))
                    .build();
                Ok(aws_sdk_sns::Client::from_conf(config))
            })
            .await
    }

    /// Publish one notice: its JSON as the message, a subject, filterable attributes; on a FIFO
    /// topic, grouped by episode and de-duplicated by the notice's ID.
    pub async fn publish(&self, notice: &Notice) -> Delivered {
        let client = self.client().await?;
        let attributes: HashMap<String, aws_sdk_sns::types::MessageAttributeValue> =
            message::sns_attributes(notice)
                .into_iter()
                .filter_map(|(name, value)| {
                    aws_sdk_sns::types::MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(value)
                        .build()
                        .ok()
                        .map(|v| (name.to_owned(), v))
                })
                .collect();
        let fifo = self.topic_arn.ends_with(".fifo");
        let (json, subject) = (notice.json(), message::sns_subject(notice));
        let what = format!("Publish to {}", self.topic_arn);
        with_retries(&self.settings.retry, &what, || {
            let request = client
                .publish()
                .topic_arn(&self.topic_arn)
                .message(&json)
                .subject(&subject)
                .set_message_attributes(Some(attributes.clone()))
                .set_message_group_id(fifo.then(|| notice.group().to_owned()))
                .set_message_deduplication_id(fifo.then(|| notice.id().to_owned()));
            async move { request.send().await.map(drop).map_err(attempt_of) }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_from_arns() {
        let cases = [
            (
                "arn:aws:events:eu-west-1:123456789012:event-bus/ops",
                Some("eu-west-1"),
            ),
            (
                "arn:aws:sns:us-east-1:123456789012:insights",
                Some("us-east-1"),
            ),
            ("default", None),
            ("arn:aws:sns::123456789012:x", None),
        ];
        for (arn, want) in cases {
            assert_eq!(arn_region(arn), want, "{arn}");
        }
    }

    #[test]
    fn throttled_and_internal_entries_are_sent_again_refused_ones_are_not() {
        let cases = [
            ("ThrottlingException", true),
            ("InternalFailure", true),
            ("InternalException", true),
            ("ValidationException", false),
            ("MalformedDetail", false),
            ("AccessDeniedException", false),
            ("NotAuthorizedForSourceException", false),
        ];
        for (code, want) in cases {
            assert_eq!(entry_retriable(code), want, "{code}");
        }
    }
}
