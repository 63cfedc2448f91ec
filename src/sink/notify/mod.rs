//! Telling someone: each Insight record new to the output, and each finding (a withheld
//! partition, a delivery gap), published once to EventBridge (in CloudTrail's own shape), an SNS
//! topic and a webhook.
//!
//! A run calls `Notifications::after_day` once a day's files are written, with the records
//! written for the days rewritten, and `Notifications::finish` at the end. A notice is new when
//! its ID is not in the output's seen ledger (`ledger`): an identical re-run, a backfill over
//! days already published, or a nightly run that rewrites a day finds its records there and
//! publishes nothing. The ledger is kept whether or not a channel is configured, and the run
//! summary lists the new records either way.
//!
//! A delivery that still fails after its retries is kept in the output's outbox
//! (`ledger::pending_key`), counted and named in the summary (the run then exits 1), and tried
//! again by the next run before anything new. A channel that failed for good during a run is
//! not tried again in that run: its later notices go straight to the outbox.
//!
//! `message` builds what each channel is sent (pure), `publish` holds the EventBridge and SNS
//! clients, `webhook` the HTTPS client. Deliveries go out in `eventTime` order, one channel
//! after the other; SNS and webhook notices one request at a time (chat webhooks limit their
//! rate, and order matters to a reader).

pub mod ledger;
pub mod message;
mod publish;
pub mod webhook;

use crate::model::insight::InsightRecord;
use crate::model::parse_day;
use crate::source::layout;
use crate::store::retry::{self, Decision, Failure, RetryPolicy};
use anyhow::bail;
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt, stream};
use ledger::{LedgerStore, Pending};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use webhook::WebhookUrl;

/// The EventBridge `Source` by default (`aws.*` is reserved for AWS itself).
pub const DEFAULT_SOURCE: &str = "trailsight";
/// Ledger and outbox files read or written at once.
const FILES_IN_FLIGHT: usize = 16;

/// A kind of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    EventBridge,
    Sns,
    Webhook,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::EventBridge => "eventbridge",
            Channel::Sns => "sns",
            Channel::Webhook => "webhook",
        })
    }
}

/// How the channels' clients behave.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// The region when a target is not an ARN (else the standard AWS chain's).
    pub region: Option<String>,
    pub retry: RetryPolicy,
    /// Longest wait for one attempt's answer.
    pub request_timeout: Duration,
    /// The profile and the CA bundle (as the S3 client's).
    pub access: crate::store::aws::AwsAccess,
}

/// Where notices go. An empty configuration publishes nothing (the ledger is still kept).
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    pub eventbridge: Option<EventBridgeTarget>,
    pub sns_topic_arn: Option<String>,
    pub webhook: Option<WebhookUrl>,
    pub settings: ClientSettings,
}

/// An EventBridge bus (name, `default`, or ARN) and the `Source` of the events put on it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBridgeTarget {
    pub bus: String,
    pub source: String,
}

impl NotifyConfig {
    pub fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::new();
        if self.eventbridge.is_some() {
            channels.push(Channel::EventBridge);
        }
        if self.sns_topic_arn.is_some() {
            channels.push(Channel::Sns);
        }
        if self.webhook.is_some() {
            channels.push(Channel::Webhook);
        }
        channels
    }
}

/// An event bus: `default`, a name, or an `arn:...:events:REGION:ACCOUNT:event-bus/NAME`.
pub fn parse_bus(text: &str) -> Result<String, String> {
    let name_ok = |n: &str| {
        (1..=256).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    };
    let ok = match text.strip_prefix("arn:") {
        Some(_) => {
            let parts: Vec<&str> = text.splitn(6, ':').collect();
            parts.len() == 6
                && parts[2] == "events"
                && layout::is_region(parts[3])
                && layout::is_account(parts[4])
                && parts[5].strip_prefix("event-bus/").is_some_and(&name_ok)
        }
        None => name_ok(text),
    };
    ok.then(|| text.to_owned()).ok_or_else(|| {
        format!("--notify-eventbridge {text:?}: expected `default`, a bus name or an event bus ARN (arn:aws:events:REGION:ACCOUNT:event-bus/NAME)")
    })
}

/// An EventBridge `Source`: 1-256 characters, not `aws.*` (reserved for AWS's own events).
pub fn parse_source(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 256 || text.chars().any(char::is_control) {
        return Err(format!(
            "--notify-source {text:?}: expected 1 to 256 printable characters"
        ));
    }
    if text.to_ascii_lowercase().starts_with("aws.") {
        return Err(format!(
            "--notify-source {text:?}: EventBridge reserves aws.* for AWS itself; use your own, such as {DEFAULT_SOURCE:?}, and match it in your rules"
        ));
    }
    Ok(text.to_owned())
}

/// An SNS topic ARN: `arn:PARTITION:sns:REGION:ACCOUNT:NAME[.fifo]`.
pub fn parse_topic_arn(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && layout::is_region(parts[3])
        && layout::is_account(parts[4])
        && (1..=256).contains(&parts[5].len())
        && parts[5]
            .trim_end_matches(".fifo")
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| text.to_owned()).ok_or_else(|| {
        format!("--notify-sns {text:?}: expected a topic ARN, arn:aws:sns:REGION:ACCOUNT:NAME")
    })
}

/// Something trailsight noticed about its input rather than about the API calls in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FindingKind {
    /// An account and region whose Insights of a day were not written: some of its logs could
    /// not be fetched or listed (a later run redoes it).
    PartitionWithheld,
    /// Logs missing from a partition's delivery for a stretch of time.
    DeliveryGap,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FindingKind::PartitionWithheld => "PartitionWithheld",
            FindingKind::DeliveryGap => "DeliveryGap",
        })
    }
}

/// A finding, published with detail-type `trailsight Delivery Finding`; once per kind,
/// account, region and day (its `findingID` is derived from those).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Finding {
    #[serde(rename = "findingID")]
    pub finding_id: String,
    pub kind: FindingKind,
    pub account: String,
    pub region: String,
    /// YYYY-MM-DD (UTC).
    pub day: String,
    /// What happened, for a person.
    pub detail: String,
}

impl Finding {
    pub fn new(
        kind: FindingKind,
        account: &str,
        region: &str,
        day: NaiveDate,
        detail: impl Into<String>,
    ) -> Finding {
        let id = uuid::Uuid::new_v5(
            &crate::model::ID_NAMESPACE,
            format!("finding|{kind}|{account}|{region}|{day}").as_bytes(),
        );
        Finding {
            finding_id: id.to_string(),
            kind,
            account: account.to_owned(),
            region: region.to_owned(),
            day: day.to_string(),
            detail: detail.into(),
        }
    }
}

/// The findings for partitions withheld on `day` (`ACCOUNT/REGION`, as in the run summary).
pub fn withheld_findings(withheld: &BTreeSet<String>, day: NaiveDate) -> Vec<Finding> {
    withheld
        .iter()
        .filter_map(|p| p.split_once('/'))
        .map(|(account, region)| {
            Finding::new(
                FindingKind::PartitionWithheld,
                account,
                region,
                day,
                "Insights not written: some of its logs could not be fetched or listed; a later run redoes the day",
            )
        })
        .collect()
}

/// What is announced: an Insight record, or a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Notice {
    Insight(Box<InsightRecord>),
    Finding(Finding),
}

impl Notice {
    /// `eventID`, or `findingID`.
    pub fn id(&self) -> &str {
        match self {
            Notice::Insight(r) => &r.event_id,
            Notice::Finding(f) => &f.finding_id,
        }
    }

    /// What notices belong together: the episode (`sharedEventID`), or the finding.
    pub fn group(&self) -> &str {
        match self {
            Notice::Insight(r) => &r.shared_event_id,
            Notice::Finding(f) => &f.finding_id,
        }
    }

    pub fn account(&self) -> &str {
        match self {
            Notice::Insight(r) => &r.recipient_account_id,
            Notice::Finding(f) => &f.account,
        }
    }

    pub fn region(&self) -> &str {
        match self {
            Notice::Insight(r) => &r.aws_region,
            Notice::Finding(f) => &f.region,
        }
    }

    /// The day whose ledger holds it: the record's `eventTime` day, the finding's day.
    pub fn day(&self) -> Option<NaiveDate> {
        match self {
            Notice::Insight(r) => parse_day(r.event_time.get(..10)?),
            Notice::Finding(f) => parse_day(&f.day),
        }
    }

    pub fn detail_type(&self) -> &'static str {
        match self {
            Notice::Insight(_) => message::DETAIL_TYPE_INSIGHT,
            Notice::Finding(_) => message::DETAIL_TYPE_FINDING,
        }
    }

    /// The record (or finding) as compact JSON: exactly as in the Insights file.
    pub fn json(&self) -> String {
        match self {
            Notice::Insight(r) => serde_json::to_string(r),
            Notice::Finding(f) => serde_json::to_string(f),
        }
        .expect("serialising a notice into memory")
    }

    /// `eventTime` in seconds since the epoch.
    pub fn time(&self) -> Option<i64> {
        match self {
            Notice::Insight(r) => chrono::DateTime::parse_from_rfc3339(&r.event_time)
                .ok()
                .map(|t| t.timestamp()),
            Notice::Finding(_) => None,
        }
    }

    /// Delivery order: by time, a Start before an End of the same minute, findings first.
    fn order(&self) -> (String, bool) {
        match self {
            Notice::Insight(r) => (r.event_time.clone(), !r.is_start()),
            Notice::Finding(f) => (f.day.clone(), false),
        }
    }
}

/// A record new to the output, as the run summary lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewRecord {
    pub event_id: String,
    pub shared_event_id: String,
    pub event_time: String,
    pub state: String,
    pub insight_type: String,
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl From<&InsightRecord> for NewRecord {
    fn from(r: &InsightRecord) -> NewRecord {
        let d = &r.insight_details;
        NewRecord {
            event_id: r.event_id.clone(),
            shared_event_id: r.shared_event_id.clone(),
            event_time: r.event_time.clone(),
            state: d.state.clone(),
            insight_type: d.insight_type.clone(),
            account: r.recipient_account_id.clone(),
            region: r.aws_region.clone(),
            event_source: d.event_source.clone(),
            event_name: d.event_name.clone(),
            error_code: d.error_code.clone(),
        }
    }
}

/// A delivery that failed after its retries (kept in the outbox for the next run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedDelivery {
    pub channel: Channel,
    /// `eventID` or `findingID`.
    pub id: String,
    /// What it announces, in one line (the SNS subject).
    pub notice: String,
    /// Runs that have tried it, this one included.
    pub failed_runs: u32,
    pub error: String,
}

/// The notifications part of the run summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotifyReport {
    /// The configured channels: `eventbridge:BUS`, `sns:TOPIC_ARN`, `webhook:scheme://host/…`.
    pub channels: Vec<String>,
    /// Findings new to the output.
    pub new_findings: u64,
    /// Notices delivered, by channel (earlier runs' failures delivered now included).
    pub published: BTreeMap<String, u64>,
    /// Deliveries that failed after their retries; the next run tries them again. Any makes
    /// the run exit 1.
    pub failed: Vec<FailedDelivery>,
    /// Deliveries kept for a channel this run does not have configured.
    pub waiting: u64,
}

impl NotifyReport {
    /// One line for the summary table.
    pub fn describe(&self) -> String {
        let published: Vec<String> = self
            .published
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        let mut text = format!(
            "{} published ({})",
            self.published.values().sum::<u64>(),
            if published.is_empty() {
                "none".to_owned()
            } else {
                published.join(", ")
            }
        );
        if !self.failed.is_empty() {
            text.push_str(&format!(
                ", {} failed (kept; the next run retries them)",
                self.failed.len()
            ));
        }
        if self.waiting > 0 {
            text.push_str(&format!(
                ", {} waiting for a channel not configured",
                self.waiting
            ));
        }
        text
    }
}

/// The outcome of delivering one notice to one channel.
pub type Delivered = Result<(), DeliveryError>;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    pub message: String,
    /// The channel failed (unreachable, throttled past the retries, refused the credentials),
    /// not only this notice: it is not tried again in this run.
    pub channel_failed: bool,
}

impl DeliveryError {
    fn channel(message: String) -> DeliveryError {
        DeliveryError {
            message,
            channel_failed: true,
        }
    }

    /// Not sent, or not known to be: a signal asked the run to stop (`crate::stop`), which
    /// waits for no request. The notice is kept for the next run, like any failure.
    fn stopping() -> DeliveryError {
        let signal = crate::stop::requested().unwrap_or_default();
        DeliveryError::channel(format!(
            "not sent: the run was stopped by signal {signal} (kept for the next run)"
        ))
    }

    fn notice(message: String) -> DeliveryError {
        DeliveryError {
            message,
            channel_failed: false,
        }
    }
}

/// One failed attempt.
#[derive(Debug)]
struct Attempt {
    failure: Failure,
    message: String,
    /// How long the server asked us to wait (`Retry-After`).
    wait: Option<Duration>,
}

/// Run `attempt` until it succeeds, fails for good, or runs out of attempts.
async fn with_retries<F, Fut>(policy: &RetryPolicy, what: &str, mut attempt: F) -> Delivered
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Attempt>>,
{
    let mut failed = 0;
    loop {
        let error = match attempt().await {
            Ok(()) => return Ok(()),
            Err(error) => error,
        };
        failed += 1;
        let decision = retry::classify(&error.failure);
        if decision == Decision::GiveUp || failed >= policy.max_attempts.max(1) {
            let message = format!("{what} failed after {failed} attempt(s): {}", error.message);
            // A request refused for what it holds fails this notice only.
            let notice_only = matches!(
                error.failure,
                Failure::Status {
                    status: 400 | 413 | 422,
                    ..
                }
            ) && decision == Decision::GiveUp;
            return Err(DeliveryError {
                message,
                channel_failed: !notice_only,
            });
        }
        let wait = error
            .wait
            .unwrap_or_else(|| policy.backoff(decision, failed, retry::jitter_unit()));
        tracing::debug!(
            attempt = failed,
            "{what}: {}; retrying in {wait:?}",
            error.message
        );
        tokio::time::sleep(wait).await;
    }
}

/// The configured channels' clients.
#[derive(Debug)]
struct Publishers {
    eventbridge: Option<publish::EventBridge>,
    sns: Option<publish::Sns>,
    webhook: Option<webhook::Webhook>,
}

impl Publishers {
    fn new(config: &NotifyConfig) -> Publishers {
        let settings = &config.settings;
        Publishers {
            eventbridge: config.eventbridge.as_ref().map(|t| {
                publish::EventBridge::new(t.bus.clone(), t.source.clone(), settings.clone())
            }),
            sns: config
                .sns_topic_arn
                .as_ref()
                .map(|arn| publish::Sns::new(arn.clone(), settings.clone())),
            webhook: config
                .webhook
                .as_ref()
                .map(|url| webhook::Webhook::new(url.clone(), settings.clone())),
        }
    }

    fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(e) = &self.eventbridge {
            names.push(format!("eventbridge:{} (source {})", e.bus, e.source));
        }
        if let Some(s) = &self.sns {
            names.push(format!("sns:{}", s.topic_arn));
        }
        if let Some(w) = &self.webhook {
            names.push(format!("webhook:{}", w.url));
        }
        names
    }

    fn has(&self, channel: Channel) -> bool {
        match channel {
            Channel::EventBridge => self.eventbridge.is_some(),
            Channel::Sns => self.sns.is_some(),
            Channel::Webhook => self.webhook.is_some(),
        }
    }

    /// Deliver notices to one channel; one outcome per notice, in order.
    async fn deliver(&self, channel: Channel, notices: &[&Notice]) -> Vec<Delivered> {
        match channel {
            Channel::EventBridge => {
                if let Some(e) = &self.eventbridge {
                    return e.publish(notices).await;
                }
            }
            Channel::Sns => {
                if let Some(s) = &self.sns {
                    return one_by_one(notices, |n| s.publish(n)).await;
                }
            }
            Channel::Webhook => {
                if let Some(w) = &self.webhook {
                    return one_by_one(notices, |n| w.publish(n)).await;
                }
            }
        }
        let missing = DeliveryError::channel(format!("{channel} is not configured"));
        notices.iter().map(|_| Err(missing.clone())).collect()
    }
}

/// Send notices one at a time, in order; once the channel itself has failed, the rest fail
/// with the same error without a request.
async fn one_by_one<'n, F, Fut>(notices: &[&'n Notice], mut send: F) -> Vec<Delivered>
where
    F: FnMut(&'n Notice) -> Fut,
    Fut: Future<Output = Delivered>,
{
    let mut outcomes = Vec::with_capacity(notices.len());
    for notice in notices {
        if let Some(Err(e)) = outcomes.last().filter(|o: &&Delivered| {
            o.as_ref()
                .err()
                .is_some_and(|e: &DeliveryError| e.channel_failed)
        }) {
            let e: DeliveryError = e.clone();
            outcomes.push(Err(e));
            continue;
        }
        // A stop waits for no request, nor its retries: this and the rest fail as stopped.
        let outcome = crate::stop::until_stopped(send(notice)).await;
        outcomes.push(outcome.unwrap_or_else(|| Err(DeliveryError::stopping())));
    }
    outcomes
}

/// One partition's outbox as loaded.
#[derive(Debug, Default)]
struct Outbox {
    deliveries: Vec<Pending>,
    dirty: bool,
}

/// The notifications of one run (see the module doc).
#[derive(Debug)]
pub struct Notifications {
    publishers: Option<Publishers>,
    /// The run's partitions (account, region): their outboxes are retried.
    partitions: Vec<(String, String)>,
    outboxes: BTreeMap<(String, String), Outbox>,
    earlier_retried: bool,
    /// Channels that failed for good in this run, and why.
    down: BTreeMap<Channel, String>,
    /// Deliveries that failed in this run (by channel and ID).
    failed_now: BTreeSet<(Channel, String)>,
    new_records: Vec<NewRecord>,
    report: NotifyReport,
}

impl Notifications {
    /// `config` `None` (or without channels): the ledger is kept, nothing is published.
    pub fn new(
        config: Option<&NotifyConfig>,
        partitions: impl IntoIterator<Item = (String, String)>,
    ) -> Notifications {
        let publishers = config
            .filter(|c| !c.channels().is_empty())
            .map(Publishers::new);
        let report = NotifyReport {
            channels: publishers
                .as_ref()
                .map(Publishers::names)
                .unwrap_or_default(),
            ..NotifyReport::default()
        };
        Notifications {
            publishers,
            partitions: partitions.into_iter().collect(),
            outboxes: BTreeMap::new(),
            earlier_retried: false,
            down: BTreeMap::new(),
            failed_now: BTreeSet::new(),
            new_records: Vec::new(),
            report,
        }
    }

    /// After a day's files are written: find the notices new to the output among `records`
    /// (the records written for the days rewritten) and `findings`, publish them, keep what
    /// failed in the outbox and add them to the seen ledger. Earlier runs' failures go first.
    /// An error is the output's (a ledger that cannot be read or written); delivery failures
    /// are counted, not returned.
    pub async fn after_day<S: LedgerStore>(
        &mut self,
        store: &S,
        records: &[InsightRecord],
        findings: &[Finding],
    ) -> anyhow::Result<()> {
        self.retry_earlier(store).await?;
        // Findings are for the channels; without any, they leave no trace in the output (the
        // summary names withheld partitions itself).
        let findings = if self.publishers.is_some() {
            findings
        } else {
            &[]
        };
        let notices: Vec<Notice> = findings
            .iter()
            .cloned()
            .map(Notice::Finding)
            .chain(records.iter().map(|r| Notice::Insight(Box::new(r.clone()))))
            .collect();
        let mut groups: BTreeMap<String, Vec<&Notice>> = BTreeMap::new();
        for notice in &notices {
            let Some(day) = notice.day() else {
                bail!(
                    "notice {} has no valid day (eventTime); it cannot be recorded as published",
                    notice.id()
                );
            };
            let key = ledger::seen_key(notice.account(), notice.region(), day)?;
            groups.entry(key).or_default().push(notice);
        }
        let seen: Vec<BTreeSet<String>> = stream::iter(groups.keys())
            .map(|key| async move {
                match store.read(key).await? {
                    Some(bytes) => ledger::decode_seen(&bytes, &store.locate(key)),
                    None => Ok(BTreeSet::new()),
                }
            })
            .buffered(FILES_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut fresh: Vec<&Notice> = Vec::new();
        let mut updates: Vec<(String, Vec<u8>)> = Vec::new();
        for ((key, notices), mut seen) in groups.iter().zip(seen) {
            let new = ledger::new_notices(&seen, notices);
            if new.is_empty() {
                continue;
            }
            seen.extend(new.iter().map(|n| n.id().to_owned()));
            updates.push((key.clone(), ledger::encode_seen(&seen)));
            fresh.extend(new);
        }
        fresh.sort_by_key(|n| n.order());
        for notice in &fresh {
            match notice {
                Notice::Insight(r) => self.new_records.push(NewRecord::from(r.as_ref())),
                Notice::Finding(_) => self.report.new_findings += 1,
            }
        }
        if let Some(publishers) = &self.publishers {
            let work: Vec<(Channel, Notice, u32)> = publishers_channels(publishers)
                .into_iter()
                .flat_map(|c| fresh.iter().map(move |n| (c, (*n).clone(), 0)))
                .collect();
            let failed = self.deliver(work).await;
            for pending in failed {
                self.keep(store, pending).await?;
            }
            self.save_outboxes(store).await?;
        }
        stream::iter(updates)
            .map(|(key, bytes)| async move { store.write(&key, bytes).await })
            .buffer_unordered(FILES_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        Ok(())
    }

    /// At the end of a run (also one that analysed nothing): earlier runs' failures are tried
    /// if no day did it.
    pub async fn finish<S: LedgerStore>(&mut self, store: &S) -> anyhow::Result<()> {
        self.retry_earlier(store).await
    }

    /// The records new to the output in this run, in the order they were found.
    pub fn new_records(&self) -> &[NewRecord] {
        &self.new_records
    }

    /// The summary's notifications part.
    pub fn report(&self) -> NotifyReport {
        let mut report = self.report.clone();
        for outbox in self.outboxes.values() {
            for pending in &outbox.deliveries {
                let configured = self
                    .publishers
                    .as_ref()
                    .is_some_and(|p| p.has(pending.channel));
                if !configured {
                    report.waiting += 1;
                } else if self
                    .failed_now
                    .contains(&(pending.channel, pending.notice.id().to_owned()))
                {
                    report.failed.push(FailedDelivery {
                        channel: pending.channel,
                        id: pending.notice.id().to_owned(),
                        notice: message::sns_subject(&pending.notice),
                        failed_runs: pending.failed_runs,
                        error: pending.error.clone(),
                    });
                }
            }
        }
        report
    }

    /// Load the outboxes of the run's partitions and deliver what waits in them for a
    /// configured channel, once per run.
    async fn retry_earlier<S: LedgerStore>(&mut self, store: &S) -> anyhow::Result<()> {
        if self.earlier_retried || self.publishers.is_none() {
            return Ok(());
        }
        self.earlier_retried = true;
        let partitions = self.partitions.clone();
        let loaded: Vec<((String, String), Vec<Pending>)> = stream::iter(partitions)
            .map(|(account, region)| async move {
                let deliveries = load_outbox(store, &account, &region).await?;
                Ok::<_, anyhow::Error>(((account, region), deliveries))
            })
            .buffered(FILES_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut work = Vec::new();
        for (partition, deliveries) in loaded {
            let publishers = self.publishers.as_ref();
            let (retry, keep): (Vec<Pending>, Vec<Pending>) = deliveries
                .into_iter()
                .partition(|p| publishers.is_some_and(|x| x.has(p.channel)));
            if !keep.is_empty() {
                tracing::warn!(
                    partition = %format!("{}/{}", partition.0, partition.1),
                    "{} notifications wait in {} for a channel this run does not have configured",
                    keep.len(),
                    store.locate(&ledger::pending_key(&partition.0, &partition.1)?)
                );
            }
            let dirty = !retry.is_empty();
            work.extend(
                retry
                    .into_iter()
                    .map(|p| (p.channel, p.notice, p.failed_runs)),
            );
            self.outboxes.insert(
                partition,
                Outbox {
                    deliveries: keep,
                    dirty,
                },
            );
        }
        if !work.is_empty() {
            tracing::info!(
                "retrying {} notifications that earlier runs could not deliver",
                work.len()
            );
        }
        work.sort_by_key(|(c, n, _)| (*c, n.order()));
        let failed = self.deliver(work).await;
        for pending in failed {
            self.keep(store, pending).await?;
        }
        self.save_outboxes(store).await
    }

    /// Deliver `work` (channel, notice, runs that failed it before), channel by channel;
    /// returns what failed.
    async fn deliver(&mut self, work: Vec<(Channel, Notice, u32)>) -> Vec<Pending> {
        let Some(publishers) = &self.publishers else {
            return Vec::new();
        };
        let mut by_channel: BTreeMap<Channel, Vec<(Notice, u32)>> = BTreeMap::new();
        for (channel, notice, runs) in work {
            by_channel.entry(channel).or_default().push((notice, runs));
        }
        let mut failed = Vec::new();
        for (channel, items) in by_channel {
            let notices: Vec<&Notice> = items.iter().map(|(n, _)| n).collect();
            let outcomes = match self.down.get(&channel) {
                Some(why) => {
                    let e = DeliveryError::channel(format!(
                        "not sent: {channel} failed earlier in this run ({why})"
                    ));
                    vec![Err(e); notices.len()]
                }
                None => publishers.deliver(channel, &notices).await,
            };
            let mut delivered = 0u64;
            let mut first_error = None;
            for ((notice, runs), outcome) in items.iter().zip(outcomes) {
                match outcome {
                    Ok(()) => delivered += 1,
                    Err(e) => {
                        if e.channel_failed {
                            self.down
                                .entry(channel)
                                .or_insert_with(|| e.message.clone());
                        }
                        first_error.get_or_insert_with(|| e.message.clone());
                        self.failed_now.insert((channel, notice.id().to_owned()));
                        failed.push(Pending {
                            channel,
                            notice: notice.clone(),
                            failed_runs: runs + 1,
                            error: e.message,
                        });
                    }
                }
            }
            if delivered > 0 {
                *self
                    .report
                    .published
                    .entry(channel.to_string())
                    .or_default() += delivered;
                tracing::info!(%channel, "published {delivered} notifications to {channel}");
            }
            if let Some(error) = first_error {
                let count = items.len() as u64 - delivered;
                tracing::warn!(%channel, failed = count, "{count} notifications to {channel} failed and are kept for the next run: {error}");
            }
        }
        failed
    }

    /// Keep a failed delivery in its partition's outbox (loading the outbox first).
    async fn keep<S: LedgerStore>(&mut self, store: &S, pending: Pending) -> anyhow::Result<()> {
        let partition = (
            pending.notice.account().to_owned(),
            pending.notice.region().to_owned(),
        );
        if !self.outboxes.contains_key(&partition) {
            let deliveries = load_outbox(store, &partition.0, &partition.1).await?;
            self.outboxes.insert(
                partition.clone(),
                Outbox {
                    deliveries,
                    dirty: false,
                },
            );
        }
        let outbox = self.outboxes.entry(partition).or_default();
        ledger::enqueue(&mut outbox.deliveries, pending);
        outbox.dirty = true;
        Ok(())
    }

    /// Write the outboxes that changed (remove the empty ones).
    async fn save_outboxes<S: LedgerStore>(&mut self, store: &S) -> anyhow::Result<()> {
        let mut writes = Vec::new();
        for ((account, region), outbox) in self.outboxes.iter_mut().filter(|(_, o)| o.dirty) {
            let key = ledger::pending_key(account, region)?;
            let bytes =
                (!outbox.deliveries.is_empty()).then(|| ledger::encode_pending(&outbox.deliveries));
            writes.push((key, bytes));
            outbox.dirty = false;
        }
        stream::iter(writes)
            .map(|(key, bytes)| async move {
                match bytes {
                    Some(bytes) => store.write(&key, bytes).await,
                    None => store.delete(&key).await,
                }
            })
            .buffer_unordered(FILES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }
}

fn publishers_channels(publishers: &Publishers) -> Vec<Channel> {
    [Channel::EventBridge, Channel::Sns, Channel::Webhook]
        .into_iter()
        .filter(|c| publishers.has(*c))
        .collect()
}

async fn load_outbox<S: LedgerStore>(
    store: &S,
    account: &str,
    region: &str,
) -> anyhow::Result<Vec<Pending>> {
    let key = ledger::pending_key(account, region)?;
    match store.read(&key).await? {
        Some(bytes) => ledger::decode_pending(&bytes, &store.locate(&key)),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::insight::*;

    /// An Insight record at 2019-11-07T10:13:00Z in 123456789012/us-east-1.
    pub fn record(state: &str, source: &str, name: &str, error: Option<&str>) -> InsightRecord {
        let kind = match error {
            Some(_) => "ApiErrorRateInsight",
            None => "ApiCallRateInsight",
        };
        InsightRecord {
            event_version: EVENT_VERSION.into(),
            event_time: "2019-11-07T10:13:00Z".into(),
            aws_region: "us-east-1".into(),
            event_id: format!("id-{state}-{source}-{name}"),
            event_type: EVENT_TYPE.into(),
            recipient_account_id: "123456789012".into(),
            shared_event_id: format!("shared-{source}-{name}"),
            insight_details: InsightDetails {
                state: state.into(),
                event_source: source.into(),
                event_name: name.into(),
                insight_type: kind.into(),
                error_code: error.map(str::to_owned),
                source_event_category: Some(
                    crate::model::EventCategory::Management.as_str().into(),
                ),
                insight_context: InsightContext {
                    statistics: Statistics {
                        baseline: Average {
                            average: 0.0020833333,
                        },
                        insight: Average { average: 12.0 },
                        insight_duration: 1,
                        baseline_duration: 10080,
                    },
                    attributions: vec![],
                },
            },
            event_category: EVENT_CATEGORY.into(),
        }
    }

    #[tokio::test]
    async fn retries_stop_at_success_at_the_limit_or_at_what_a_retry_cannot_fix() {
        let status = |status: u16, code: &str| Failure::Status {
            status,
            code: Some(code.to_owned()),
        };
        // (attempts' failures in order, then success; attempts made; outcome: None = delivered,
        // Some(channel failed))
        let cases = [
            (vec![], 1, None),
            (vec![status(400, "ThrottlingException")], 2, None),
            (vec![status(503, ""), Failure::Timeout], 3, None),
            (vec![status(500, ""); 5], 3, Some(true)),
            (vec![Failure::Connection; 5], 3, Some(true)),
            (vec![status(403, "AccessDenied")], 1, Some(true)),
            (vec![status(400, "InvalidParameter")], 1, Some(false)),
            (vec![status(404, "NotFound")], 1, Some(true)),
        ];
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::ZERO,
        };
        for (failures, attempts, outcome) in cases {
            let made = std::sync::atomic::AtomicUsize::new(0);
            let delivered = with_retries(&policy, "test", || {
                let n = made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let failure = failures.get(n).cloned();
                async move {
                    match failure {
                        Some(failure) => Err(Attempt {
                            failure,
                            message: "no".into(),
                            wait: None,
                        }),
                        None => Ok(()),
                    }
                }
            })
            .await;
            let case = format!("{failures:?}");
            assert_eq!(made.into_inner(), attempts, "{case}");
            assert_eq!(delivered.err().map(|e| e.channel_failed), outcome, "{case}");
        }
    }

    #[test]
    fn targets_are_checked() {
        let bus = [
            ("default", true),
            ("ops-bus", true),
            ("arn:aws:events:us-east-1:123456789012:event-bus/ops", true),
            ("arn:aws:events:us-east-1:123456789012:rule/x", false),
            ("arn:aws:sns:us-east-1:123456789012:x", false),
            ("", false),
            ("has space", false),
        ];
        for (text, ok) in bus {
            assert_eq!(parse_bus(text).is_ok(), ok, "bus {text:?}");
        }
        let sources = [
            ("trailsight", true),
            ("com.example.insights", true),
            ("aws.cloudtrail", false),
            ("AWS.cloudtrail", false),
            ("", false),
        ];
        for (text, ok) in sources {
            assert_eq!(parse_source(text).is_ok(), ok, "source {text:?}");
        }
        let topics = [
            ("arn:aws:sns:us-east-1:123456789012:insights", true),
            ("arn:aws:sns:us-east-1:123456789012:insights.fifo", true),
            ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:t", true),
            ("arn:aws:sqs:us-east-1:123456789012:q", false),
            ("arn:aws:sns:us-east-1:1234:t", false),
            ("insights", false),
        ];
        for (text, ok) in topics {
            assert_eq!(parse_topic_arn(text).is_ok(), ok, "topic {text:?}");
        }
    }

    #[test]
    fn findings_have_stable_ids_per_kind_partition_and_day() {
        let day = parse_day("2019-11-07").unwrap();
        let a = Finding::new(
            FindingKind::PartitionWithheld,
            "123456789012",
            "us-east-1",
            day,
            "x",
        );
        let b = Finding::new(
            FindingKind::PartitionWithheld,
            "123456789012",
            "us-east-1",
            day,
            "y",
        );
        let c = Finding::new(
            FindingKind::DeliveryGap,
            "123456789012",
            "us-east-1",
            day,
            "x",
        );
        assert_eq!(a.finding_id, b.finding_id);
        assert_ne!(a.finding_id, c.finding_id);
        let withheld: BTreeSet<String> = ["123456789012/eu-west-1".to_owned()].into();
        let found = withheld_findings(&withheld, day);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].account.as_str(), found[0].region.as_str()),
            ("123456789012", "eu-west-1")
        );
        let notice = Notice::Finding(found[0].clone());
        assert_eq!(notice.day(), Some(day));
        let json: serde_json::Value = serde_json::from_str(&notice.json()).unwrap();
        assert_eq!(json["kind"], "PartitionWithheld");
        assert!(json["findingID"].is_string());
    }

    #[tokio::test]
    async fn records_are_new_once_and_the_summary_lists_them_without_channels() {
        let dir = tempfile::tempdir().unwrap();
        let output = crate::store::Store::local(dir.path().to_owned());
        let start = record("Start", "ec2.amazonaws.com", "RunInstances", None);
        let end = record("End", "ec2.amazonaws.com", "RunInstances", None);
        let partitions = [("123456789012".to_owned(), "us-east-1".to_owned())];
        let mut run = Notifications::new(None, partitions.clone());
        run.after_day(&output, std::slice::from_ref(&start), &[])
            .await
            .unwrap();
        // The next day rewrites the first: only the End is new.
        run.after_day(&output, &[start.clone(), end.clone()], &[])
            .await
            .unwrap();
        run.finish(&output).await.unwrap();
        let ids: Vec<&str> = run
            .new_records()
            .iter()
            .map(|r| r.event_id.as_str())
            .collect();
        assert_eq!(ids, [start.event_id.as_str(), end.event_id.as_str()]);
        assert_eq!(run.report(), NotifyReport::default());
        // A second run over the same days finds nothing new.
        let mut again = Notifications::new(None, partitions);
        again.after_day(&output, &[start, end], &[]).await.unwrap();
        assert!(again.new_records().is_empty());
        let ledger = dir
            .path()
            .join("_trailsight/notifications/seen/123456789012/us-east-1/2019/11/07.json");
        assert!(ledger.is_file());
    }
}
