//! S3 behind the store: the one module that talks to the AWS SDK for S3.
//!
//! Every request goes through one retry loop (`super::retry` holds its pure policy); for
//! GetObject the loop covers reading the body too, and never keeps more than the caller's cap.
//! `--expected-bucket-owner` is sent on every request, reads included, and `--sse-kms-key-id`
//! on every write. The SDK client is built on first use, from the standard AWS configuration
//! chain (environment, shared config and credentials files and `AWS_PROFILE`, SSO, web identity,
//! container and instance roles), so nothing here reads or logs a credential.
//!
//! `S3Client` is shared by everything a run reads or writes in S3: the log source (which walks
//! the trail's folders with `list`), and `S3Prefix`, the store's S3 side (sink, state, report).
//! Conditional writes (`If-None-Match: *`, `If-Match`) come back as `Put::ConditionFailed` on
//! 412/409, never retried: the caller decides.

pub use super::aws::AwsAccess;
use super::retry::{self, Decision, Failure, RetryPolicy};
use super::{Folder, Precondition, Put, StoreError, Tagged};
use crate::model::problem::SkipReason;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one request may take before an answer starts, and how long a body may stall.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest buffer reserved up front for an object body, whatever its announced length.
const MAX_PREALLOCATION: u64 = 64 << 20;

/// `s3://bucket[/prefix]`: a bucket and a key prefix that is empty or ends with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    pub prefix: String,
}

impl S3Url {
    /// `None` if `text` is not an `s3://` address; an error if it is one but malformed.
    pub fn parse(text: &str) -> Result<Option<S3Url>, String> {
        let Some(rest) = text.strip_prefix("s3://") else {
            return Ok(None);
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !is_bucket_name(bucket) {
            return Err(format!(
                "{text}: {bucket:?} is not an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)"
            ));
        }
        if prefix.starts_with('/') || prefix.contains("//") {
            return Err(format!("{text}: the key prefix has an empty folder name"));
        }
        let prefix = match prefix {
            "" => String::new(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        };
        Ok(Some(S3Url {
            bucket: bucket.to_owned(),
            prefix,
        }))
    }

    /// The bucket key of a key relative to this root.
    pub fn key(&self, relative: &str) -> String {
        format!("{}{relative}", self.prefix)
    }

    /// `s3://bucket/key` of a key relative to this root, for messages.
    pub fn display(&self, relative: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.key(relative))
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// How to reach S3. Credentials are not here: the SDK's chain finds them.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Overrides the region from the environment and the shared config.
    pub region: Option<String>,
    /// Overrides `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` and the shared config.
    pub endpoint_url: Option<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub force_path_style: bool,
    /// Sent as `x-amz-expected-bucket-owner` on every request.
    pub expected_bucket_owner: Option<String>,
    /// Written objects are encrypted with this KMS key (`aws:kms`).
    pub sse_kms_key_id: Option<String>,
    pub retry: RetryPolicy,
    /// Time to the start of an answer, and the longest pause inside a body.
    pub request_timeout: Duration,
    /// Listing requests in flight while discovering accounts, regions and days.
    pub list_concurrency: usize,
    /// The profile and the CA bundle (shared with the notification clients).
    pub access: AwsAccess,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            region: None,
            endpoint_url: None,
            force_path_style: false,
            expected_bucket_owner: None,
            sse_kms_key_id: None,
            retry: RetryPolicy::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            list_concurrency: 8,
            access: super::aws::AwsAccess::default(),
        }
    }
}

/// Requests made during a run, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Attempts sent, by operation (a retried request counts once per attempt).
    pub attempts: BTreeMap<String, u64>,
    /// Attempts that failed and were tried again, by what went wrong.
    pub retries: BTreeMap<String, u64>,
    /// Requests that still failed after their last attempt.
    pub failed: u64,
}

impl RequestCounts {
    pub fn attempts_total(&self) -> u64 {
        self.attempts.values().sum()
    }

    pub fn retries_total(&self) -> u64 {
        self.retries.values().sum()
    }
}

/// A request that failed for good, or a client that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("{0}")]
    Setup(String),
    #[error("{operation} failed after {attempts} attempt(s): {message}")]
    Request {
        operation: &'static str,
        attempts: u32,
        failure: Failure,
        message: String,
    },
    /// More bytes than the per-object limit: listed that large (nothing was downloaded), or
    /// more arrived than the limit (the rest was not read). The object is skipped, not retried.
    #[error("{0}; raise the limit if the object is genuine")]
    TooLarge(String),
}

impl S3Error {
    /// Why an object this error stopped was skipped.
    pub fn reason(&self) -> SkipReason {
        match self {
            S3Error::TooLarge(_) => SkipReason::OverSizeLimit,
            S3Error::Setup(_) | S3Error::Request { .. } => SkipReason::FetchFailed,
        }
    }

    /// Whether S3 answered that the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            S3Error::Request {
                failure: Failure::Status { status: 404, .. },
                ..
            }
        )
    }
}

/// One failed attempt: what went wrong, for the retry decision and the message.
#[derive(Debug)]
struct Attempt {
    failure: Failure,
    message: String,
}

impl Attempt {
    fn from_sdk<E>(error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Attempt
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let (failure, mut message) = sdk_failure(&error);
        if let Failure::Status { status: 403, .. } = failure {
            message.push_str(
                "; check the credentials, --expected-bucket-owner and the IAM policy (README: Least-privilege IAM policy)",
            );
        }
        Attempt { failure, message }
    }
}

/// What went wrong in a failed AWS SDK request (any service: they share the HTTP response type),
/// for the retry decision (`retry::classify`) and a redacted one-line message.
pub fn sdk_failure<E>(
    error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (Failure, String)
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = match error {
        SdkError::TimeoutError(_) => Failure::Timeout,
        SdkError::DispatchFailure(e) if e.is_timeout() => Failure::Timeout,
        SdkError::DispatchFailure(e) if e.is_io() || e.as_other().is_some() => Failure::Connection,
        SdkError::DispatchFailure(_) => Failure::Client,
        SdkError::ResponseError(_) => Failure::MalformedResponse,
        SdkError::ServiceError(e) => Failure::Status {
            status: e.raw().status().as_u16(),
            code: e.err().code().map(str::to_owned),
        },
        _ => Failure::Client,
    };
    let message = match error {
        SdkError::ServiceError(e) => {
            let err = e.err();
            summarise_error(&format!(
                "HTTP {} {}: {}",
                e.raw().status().as_u16(),
                err.code().unwrap_or("(no error code)"),
                err.message().unwrap_or("(no message)")
            ))
        }
        _ => error_chain(error),
    };
    (failure, message)
}

/// An error and its causes on one line, each cause once (SDK errors nest the same text),
/// summarised by `summarise_error` so no credential, process output or URL password is in it.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = e.source();
    }
    summarise_error(&text)
}

/// An SDK error's text fit for a log line or the summary (`telemetry::redact_secrets`): what a
/// `credential_process` printed is cut off (it may hold secrets; run the command by hand to see
/// it), and anything that looks like a credential, a signature or a URL password is redacted.
pub fn summarise_error(text: &str) -> String {
    crate::telemetry::redact_secrets(text)
}

/// A label for counting retries: the status and code, or the kind of transport failure.
fn failure_label(failure: &Failure) -> String {
    match failure {
        Failure::Timeout => "timeout".into(),
        Failure::Connection => "connection error".into(),
        Failure::BodyInterrupted => "body interrupted".into(),
        Failure::MalformedResponse => "malformed response".into(),
        Failure::Client => "client error".into(),
        Failure::Status { status, code } => match code {
            Some(code) => format!("{status} {code}"),
            None => status.to_string(),
        },
    }
}

/// The shared S3 client of a run (source and output use the same one), built on first use.
#[derive(Clone)]
pub struct S3Client {
    inner: Arc<Inner>,
}

struct Inner {
    settings: S3Settings,
    sdk: tokio::sync::OnceCell<aws_sdk_s3::Client>,
    counts: Mutex<RequestCounts>,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl S3Client {
    pub fn new(settings: S3Settings) -> S3Client {
        S3Client {
            inner: Arc::new(Inner {
                settings,
                sdk: tokio::sync::OnceCell::new(),
                counts: Mutex::new(RequestCounts::default()),
            }),
        }
    }

    pub fn settings(&self) -> &S3Settings {
        &self.inner.settings
    }

    /// The requests made so far.
    pub fn counts(&self) -> RequestCounts {
        self.inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn sdk(&self) -> Result<&aws_sdk_s3::Client, S3Error> {
        self.inner
            .sdk
            .get_or_try_init(|| connect(&self.inner.settings))
            .await
    }

    fn count(&self, update: impl FnOnce(&mut RequestCounts)) {
        update(&mut self.inner.counts.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Run `attempt` until it succeeds, fails for good, or runs out of attempts.
    async fn send<T, F, Fut>(
        &self,
        operation: &'static str,
        target: &str,
        mut attempt: F,
    ) -> Result<T, S3Error>
    where
        F: FnMut(aws_sdk_s3::Client) -> Fut,
        Fut: Future<Output = Result<T, Attempt>>,
    {
        let client = self.sdk().await?.clone();
        let policy = self.inner.settings.retry;
        let mut failed = 0;
        loop {
            self.count(|c| *c.attempts.entry(operation.to_owned()).or_default() += 1);
            let error = match attempt(client.clone()).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            failed += 1;
            let decision = retry::classify(&error.failure);
            if decision == Decision::GiveUp || failed >= policy.max_attempts.max(1) {
                self.count(|c| c.failed += 1);
                return Err(S3Error::Request {
                    operation,
                    attempts: failed,
                    failure: error.failure,
                    message: error.message,
                });
            }
            let label = failure_label(&error.failure);
            let wait = policy.backoff(decision, failed, retry::jitter_unit());
            tracing::debug!(
                operation, target, attempt = failed, reason = %label, wait_ms = wait.as_millis() as u64,
                "{operation} {target}: {}; retrying in {wait:?}", error.message
            );
            self.count(|c| *c.retries.entry(label).or_default() += 1);
            tokio::time::sleep(wait).await;
        }
    }

    /// Every common prefix and object directly under `prefix` (keys are full bucket keys).
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Listed, S3Error> {
        let settings = &self.inner.settings;
        let target = format!("s3://{bucket}/{prefix}");
        let mut folder = Listed::default();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .send("ListObjectsV2", &target, |client| {
                    let request = client
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix)
                        .delimiter("/")
                        .set_continuation_token(token.clone())
                        .set_expected_bucket_owner(settings.expected_bucket_owner.clone());
                    async move { request.send().await.map_err(Attempt::from_sdk) }
                })
                .await?;
            folder.prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            folder
                .objects
                .extend(page.contents().iter().filter_map(|o| {
                    let size = o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                    o.key().map(|k| (k.to_owned(), size))
                }));
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || page.is_truncated() == Some(false) {
                return Ok(folder);
            }
        }
    }

    /// The names of the sub-folders directly under `prefix`.
    pub async fn sub_folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, S3Error> {
        let folder = self.list(bucket, prefix).await?;
        Ok(folder
            .prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(prefix)?.strip_suffix('/'))
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .map(str::to_owned)
            .collect())
    }

    /// The whole object, retrying the request and the body read together; never more than
    /// `cap` bytes of it are kept (`S3Error::TooLarge`, not retried).
    pub async fn get(&self, bucket: &str, key: &str, cap: u64) -> Result<Vec<u8>, S3Error> {
        self.get_tagged(bucket, key, cap)
            .await
            .map(|(bytes, _)| bytes)
    }

    /// The whole object and its ETag, at most `cap` bytes.
    pub async fn get_tagged(
        &self,
        bucket: &str,
        key: &str,
        cap: u64,
    ) -> Result<(Vec<u8>, Option<String>), S3Error> {
        let settings = &self.inner.settings;
        let target = format!("s3://{bucket}/{key}");
        let read = self
            .send("GetObject", &target, |client| {
                let request = client
                    .get_object()
                    .bucket(bucket)
                    .key(key)
                    .set_expected_bucket_owner(settings.expected_bucket_owner.clone());
                let idle = settings.request_timeout;
                async move {
                    let output = request.send().await.map_err(Attempt::from_sdk)?;
                    let announced = output.content_length().and_then(|n| u64::try_from(n).ok());
                    if let Some(n) = announced.filter(|n| *n > cap) {
                        return Ok(Err(format!(
                            "the response announced {n} bytes, more than the per-object limit of \
                         {cap} bytes (--max-object-bytes); the body was not read"
                        )));
                    }
                    let etag = output.e_tag().map(str::to_owned);
                    let body = read_body(output.body, announced, idle, cap).await?;
                    Ok(body.map(|bytes| (bytes, etag)))
                }
            })
            .await?;
        read.map_err(S3Error::TooLarge)
    }

    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) -> Result<(), S3Error> {
        self.put_with(bucket, key, bytes, None).await.map(drop)
    }

    /// PutObject, with SSE-KMS and the bucket owner when configured, and an optional
    /// precondition (`If-None-Match: *` or `If-Match: ETAG`); returns the new ETag.
    pub async fn put_with(
        &self,
        bucket: &str,
        key: &str,
        bytes: Vec<u8>,
        precondition: Option<&Precondition>,
    ) -> Result<Option<String>, S3Error> {
        let settings = &self.inner.settings;
        let target = format!("s3://{bucket}/{key}");
        let kms = settings.sse_kms_key_id.clone();
        let (if_none_match, if_match) = match precondition {
            None => (None, None),
            Some(Precondition::Absent) => (Some("*".to_owned()), None),
            Some(Precondition::Matches(etag)) => (None, Some(etag.clone())),
        };
        self.send("PutObject", &target, |client| {
            let request = client
                .put_object()
                .bucket(bucket)
                .key(key)
                .content_type("application/gzip")
                .body(ByteStream::from(bytes.clone()))
                .set_expected_bucket_owner(settings.expected_bucket_owner.clone())
                .set_server_side_encryption(kms.as_ref().map(|_| ServerSideEncryption::AwsKms))
                .set_ssekms_key_id(kms.clone())
                .set_if_none_match(if_none_match.clone())
                .set_if_match(if_match.clone());
            async move {
                request
                    .send()
                    .await
                    .map(|output| output.e_tag().map(str::to_owned))
                    .map_err(Attempt::from_sdk)
            }
        })
        .await
    }

    /// Delete `key` if it exists; says whether it did. Existence is asked with a listing of
    /// the key itself (so the output needs ListBucket, not GetObject, and a missing key is a
    /// clean answer rather than a 403 without ListBucket).
    pub async fn delete_if_present(&self, bucket: &str, key: &str) -> Result<bool, S3Error> {
        let listed = self.list(bucket, key).await?;
        if !listed.objects.iter().any(|(k, _)| k == key) {
            return Ok(false);
        }
        self.delete(bucket, key).await?;
        Ok(true)
    }

    /// DeleteObject (S3 answers success for a key that is not there).
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let settings = &self.inner.settings;
        let target = format!("s3://{bucket}/{key}");
        self.send("DeleteObject", &target, |client| {
            let request = client
                .delete_object()
                .bucket(bucket)
                .key(key)
                .set_expected_bucket_owner(settings.expected_bucket_owner.clone());
            async move { request.send().await.map(drop).map_err(Attempt::from_sdk) }
        })
        .await
    }
}

/// Read a GetObject body to the end; a stall longer than `idle` or a short body is a failure
/// of this attempt, so the whole request is tried again.
/// A body read whole, or why reading it stopped at the per-object limit (not worth a retry).
type Capped<T> = Result<T, String>;

/// Read a GetObject body, keeping at most `cap` bytes: a server that sends more than it listed
/// or announced costs one network chunk past the cap, never the whole body.
async fn read_body(
    mut body: ByteStream,
    announced: Option<u64>,
    idle: Duration,
    cap: u64,
) -> Result<Capped<Vec<u8>>, Attempt> {
    let capacity = announced.unwrap_or(0).min(cap).min(MAX_PREALLOCATION) as usize;
    let mut bytes = Vec::with_capacity(capacity);
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                return Err(Attempt {
                    failure: Failure::Timeout,
                    message: format!("the body stalled for {idle:?} after {} bytes", bytes.len()),
                });
            }
            Ok(None) => break,
            Ok(Some(Ok(chunk))) if (bytes.len() + chunk.len()) as u64 > cap => {
                return Ok(Err(format!(
                    "more than the per-object limit of {cap} bytes (--max-object-bytes) arrived; \
                     the rest of the body was not read"
                )));
            }
            Ok(Some(Ok(chunk))) => bytes.extend_from_slice(&chunk),
            Ok(Some(Err(e))) => {
                return Err(Attempt {
                    failure: Failure::BodyInterrupted,
                    message: format!(
                        "reading the body broke off after {} bytes: {}",
                        bytes.len(),
                        error_chain(&e)
                    ),
                });
            }
        }
    }
    match announced {
        Some(n) if n != bytes.len() as u64 => Err(Attempt {
            failure: Failure::BodyInterrupted,
            message: format!("the body ended after {} of {n} bytes", bytes.len()),
        }),
        _ => Ok(Ok(bytes)),
    }
}

/// Build the SDK client from the standard configuration chain and our overrides.
async fn connect(settings: &S3Settings) -> Result<aws_sdk_s3::Client, S3Error> {
    let shared = super::aws::load(
        &settings.access,
        settings.region.as_deref(),
        settings.endpoint_url.as_deref(),
        "no AWS region: pass --region, or set AWS_REGION or a region in the AWS config profile",
    )
    .await
    .map_err(S3Error::Setup)?;
    let config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(settings.force_path_style)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(settings.request_timeout)
                .build(),
        )
        .build();
    let endpoint = shared
        .endpoint_url()
        .map(crate::telemetry::redact_url_passwords);
    tracing::debug!(
        region = shared.region().map(|r| r.as_ref()),
        endpoint,
        path_style = settings.force_path_style,
        "S3 client ready"
    );
    Ok(aws_sdk_s3::Client::from_conf(config))
}

/// What a key segment that is empty, `.` or `..` is, in a listing: a key no file system could
/// hold, never read or followed.
pub const NOT_A_PLAIN_NAME: &str = "a key segment that is empty, '.' or '..'";

/// One level of a bucket listing: sub-folders (common prefixes) and objects, as full keys.
#[derive(Debug, Default)]
pub struct Listed {
    pub prefixes: Vec<String>,
    pub objects: Vec<(String, u64)>,
}

/// The store's S3 side: objects addressed by key under one `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Prefix {
    client: S3Client,
    url: S3Url,
}

impl S3Prefix {
    pub fn new(client: S3Client, url: S3Url) -> S3Prefix {
        S3Prefix { client, url }
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    pub fn client(&self) -> &S3Client {
        &self.client
    }

    fn failed(&self, key: &str, source: S3Error) -> StoreError {
        StoreError::S3 {
            location: self.url.display(key),
            cause: source,
        }
    }

    /// One level under `folder`, every page (`ListObjectsV2` with `Delimiter=/`).
    pub async fn list(&self, folder: &str) -> Result<Folder, StoreError> {
        let full = self.url.key(folder);
        let listed = self
            .client
            .list(&self.url.bucket, &full)
            .await
            .map_err(|e| self.failed(folder, e))?;
        let plain = |name: &str| !name.is_empty() && name != "." && name != "..";
        let mut out = Folder::default();
        for name in listed
            .prefixes
            .iter()
            .filter_map(|p| p.strip_prefix(&full)?.strip_suffix('/'))
        {
            match plain(name) {
                true => out.folders.push(name.to_owned()),
                false => out.others.push((name.to_owned(), NOT_A_PLAIN_NAME)),
            }
        }
        for (key, size) in listed.objects {
            match key.strip_prefix(&full) {
                Some(name) if plain(name) => out.objects.push((name.to_owned(), size)),
                // The folder's own marker object (`folder/`), as consoles create.
                Some("") | None => {}
                Some(name) => out.others.push((name.to_owned(), NOT_A_PLAIN_NAME)),
            }
        }
        out.folders.sort();
        out.objects.sort();
        out.others.sort();
        Ok(out)
    }

    /// Whether the key exists, asked with a listing of the key itself.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let full = self.url.key(key);
        let listed = self
            .client
            .list(&self.url.bucket, &full)
            .await
            .map_err(|e| self.failed(key, e))?;
        Ok(listed.objects.iter().any(|(k, _)| *k == full))
    }

    /// The object and its ETag, or `None` on 404; at most `cap` bytes.
    pub async fn get(&self, key: &str, cap: u64) -> Result<Option<Tagged>, StoreError> {
        match self
            .client
            .get_tagged(&self.url.bucket, &self.url.key(key), cap)
            .await
        {
            Ok((bytes, etag)) => Ok(Some(Tagged { bytes, etag })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(S3Error::TooLarge(_)) => Err(StoreError::TooLarge {
                location: self.url.display(key),
                size: cap.saturating_add(1),
                cap,
            }),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    /// One PutObject (atomic by nature), replacing what was there.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.client
            .put(&self.url.bucket, &self.url.key(key), bytes)
            .await
            .map_err(|e| self.failed(key, e))
    }

    /// PutObject with `If-None-Match: *` or `If-Match`; 412 and 409 are `ConditionFailed`.
    pub async fn put_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<Put, StoreError> {
        let full = self.url.key(key);
        match self
            .client
            .put_with(&self.url.bucket, &full, bytes, Some(&precondition))
            .await
        {
            Ok(etag) => Ok(Put::Written(etag)),
            Err(S3Error::Request {
                failure:
                    Failure::Status {
                        status: 412 | 409, ..
                    },
                ..
            }) => Ok(Put::ConditionFailed),
            Err(e) => Err(self.failed(key, e)),
        }
    }

    /// Delete the key if it exists; says whether it did. Existence is asked with a listing of
    /// the key itself (so writing needs ListBucket, not GetObject, on the output).
    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.client
            .delete_if_present(&self.url.bucket, &self.url.key(key))
            .await
            .map_err(|e| self.failed(key, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_kept_only_up_to_the_cap() {
        let idle = Duration::from_secs(5);
        // (body length, announced length, cap, kept whole)
        let cases = [
            (10, Some(10), 10, true),
            (10, None, 10, true),
            (11, None, 10, false),
            (11, Some(10), 10, false),
            (0, None, 0, true),
        ];
        for (len, announced, cap, whole) in cases {
            let body = ByteStream::from(vec![7u8; len]);
            let read = read_body(body, announced, idle, cap).await;
            let case = format!("{len} bytes, announced {announced:?}, cap {cap}");
            match read {
                Ok(Ok(bytes)) => assert!(whole && bytes.len() == len, "{case}"),
                Ok(Err(why)) => assert!(
                    !whole && why.contains(&format!("limit of {cap} bytes")),
                    "{case}: {why}"
                ),
                Err(e) => panic!("{case}: {}", e.message),
            }
        }
    }

    #[test]
    fn s3_urls() {
        let ok = |bucket: &str, prefix: &str| {
            Ok(Some(S3Url {
                bucket: bucket.into(),
                prefix: prefix.into(),
            }))
        };
        let cases = [
            ("s3://trail-logs", ok("trail-logs", "")),
            ("s3://trail-logs/", ok("trail-logs", "")),
            ("s3://trail-logs/ct", ok("trail-logs", "ct/")),
            ("s3://trail-logs/ct/org/", ok("trail-logs", "ct/org/")),
            ("s3://my.bucket-1/a", ok("my.bucket-1", "a/")),
            ("/var/logs", Ok(None)),
            ("logs", Ok(None)),
        ];
        for (text, want) in cases {
            assert_eq!(S3Url::parse(text), want, "{text}");
        }
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Upper",
            "s3://b_ucket",
            "s3://bucket//x",
            "s3://-bucket",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
        let url = S3Url::parse("s3://b-1/ct").unwrap().unwrap();
        assert_eq!(url.key("AWSLogs/x"), "ct/AWSLogs/x");
        assert_eq!(url.display("AWSLogs/x"), "s3://b-1/ct/AWSLogs/x");
    }
}
