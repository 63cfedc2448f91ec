//! Command-line types (clap) and their conversion into a validated `AnalyzeConfig`; nothing else.

use crate::config::{self, AnalyzeConfig};
use crate::decode::DEFAULT_MAX_OBJECT_BYTES;
use crate::detect::DetectorConfig;
use crate::model::{DayRange, parse_day};
use crate::sink::Output;
use crate::source::layout::{self, PartitionFilter};
use crate::source::s3::{self, S3Client, S3Settings, S3Source, S3Target, S3Url, retry};
use crate::source::{Source, local::LocalSource};
use crate::telemetry::LogFormat;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// CloudTrail Insights, offline: find unusual API call and error rates in a CloudTrail archive
/// and write them as AWS's own Insights events.
#[derive(Debug, Parser)]
#[command(name = "trailsight", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: text for people, json for cron and log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
    /// Only warnings and errors in the log.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a range of days and write Start/End Insight events.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Where the CloudTrail logs are ([prefix/]AWSLogs/...): a directory or s3://BUCKET[/PREFIX].
    #[arg(long, value_name = "DIR|S3URL")]
    pub source: PathBuf,
    /// Where to write Insights (AWSLogs/.../CloudTrail-Insight/...): a directory or
    /// s3://BUCKET[/PREFIX].
    #[arg(long, value_name = "DIR|S3URL")]
    pub out: PathBuf,
    /// First day to analyse (YYYY-MM-DD, UTC); the 7 days before it are read as baseline.
    /// Default: the first delivery day found.
    #[arg(long, value_name = "DATE")]
    pub from: Option<String>,
    /// Last day to analyse (YYYY-MM-DD, UTC, inclusive). Default: the last delivery day found.
    #[arg(long, value_name = "DATE")]
    pub to: Option<String>,
    /// Only these accounts (comma-separated 12-digit IDs).
    #[arg(long, value_delimiter = ',', value_name = "ID,..")]
    pub accounts: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "REGION,..")]
    pub regions: Vec<String>,
    /// Objects fetched at once.
    #[arg(long, default_value_t = config::DEFAULT_FETCH_CONCURRENCY, value_name = "N")]
    pub concurrency: usize,
    /// Objects decoded at once (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Largest decompressed object, in bytes; larger ones are skipped and reported.
    #[arg(long, default_value_t = DEFAULT_MAX_OBJECT_BYTES, value_name = "BYTES")]
    pub max_object_bytes: u64,
    /// Fail (exit 2, nothing written) if any object, record or file had to be skipped.
    #[arg(long)]
    pub strict: bool,
    /// Also write the run summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
}

/// How to reach S3; credentials come from the standard AWS chain, never from flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "S3")]
pub struct S3Args {
    /// AWS region of the buckets (default: AWS_REGION, AWS_DEFAULT_REGION, the profile).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// S3 endpoint of an S3-compatible store (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
    /// the profile's endpoint_url, or AWS).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Path-style addressing (endpoint/bucket/key), for S3-compatible stores.
    #[arg(long)]
    pub force_path_style: bool,
    /// The account that must own the buckets; sent with every request (reads and writes).
    #[arg(long, value_name = "ACCOUNT")]
    pub expected_bucket_owner: Option<String>,
    /// Encrypt written Insights with this KMS key (SSE-KMS): key ID, ARN or alias.
    #[arg(long, value_name = "KEY")]
    pub sse_kms_key_id: Option<String>,
    /// Attempts per S3 request before the object (or the run, for listings) fails.
    #[arg(long, default_value_t = retry::DEFAULT_MAX_ATTEMPTS, value_name = "N")]
    pub max_attempts: u32,
    /// First backoff step between attempts, in milliseconds (doubling, with jitter;
    /// throttled requests wait five times longer).
    #[arg(long, default_value_t = retry::DEFAULT_BASE_DELAY.as_millis() as u64, value_name = "MS")]
    pub retry_base_delay_ms: u64,
    /// Seconds an S3 request may wait for an answer, and a download may stall.
    #[arg(long, default_value_t = s3::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_name = "SECS")]
    pub request_timeout_secs: u64,
}

impl S3Args {
    fn into_settings(self) -> anyhow::Result<S3Settings> {
        if let Some(owner) = &self.expected_bucket_owner
            && !layout::is_account(owner)
        {
            bail!("--expected-bucket-owner: {owner:?} is not a 12-digit account ID");
        }
        if self.max_attempts == 0 {
            bail!("--max-attempts must be at least 1");
        }
        if self.request_timeout_secs == 0 {
            bail!("--request-timeout-secs must be at least 1");
        }
        Ok(S3Settings {
            region: self.region,
            endpoint_url: self.endpoint_url,
            force_path_style: self.force_path_style,
            expected_bucket_owner: self.expected_bucket_owner,
            sse_kms_key_id: self.sse_kms_key_id,
            retry: retry::RetryPolicy {
                max_attempts: self.max_attempts,
                base_delay: Duration::from_millis(self.retry_base_delay_ms),
            },
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            list_concurrency: config::DEFAULT_LIST_CONCURRENCY,
        })
    }
}

/// `s3://...` as an S3 address, anything else as a path.
fn s3_url(flag: &str, path: &Path) -> anyhow::Result<Option<S3Url>> {
    let Some(text) = path.to_str() else {
        return Ok(None);
    };
    S3Url::parse(text).map_err(|e| anyhow::anyhow!("{flag} {e}"))
}

impl AnalyzeArgs {
    pub fn into_config(self) -> anyhow::Result<AnalyzeConfig> {
        let days = day_range(self.from.as_deref(), self.to.as_deref())?;
        let accounts = self
            .accounts
            .iter()
            .map(|a| a.trim().to_owned())
            .collect::<BTreeSet<_>>();
        if let Some(bad) = accounts.iter().find(|a| !layout::is_account(a)) {
            bail!("--accounts: {bad:?} is not a 12-digit account ID");
        }
        let regions = self
            .regions
            .iter()
            .map(|r| r.trim().to_owned())
            .collect::<BTreeSet<_>>();
        if let Some(bad) = regions.iter().find(|r| !layout::is_region(r)) {
            bail!("--regions: {bad:?} is not a region name such as us-east-1");
        }
        let source_url = s3_url("--source", &self.source)?;
        let out_url = s3_url("--out", &self.out)?;
        if out_url.is_none() && self.s3.sse_kms_key_id.is_some() {
            bail!("--sse-kms-key-id applies to S3 output only: --out is not an s3:// address");
        }
        // One client for both ends, built on first use.
        let client = S3Client::new(self.s3.into_settings()?);
        let source = match source_url {
            Some(url) => Source::S3(S3Source::new(client.clone(), url)),
            None if self.source.is_dir() => Source::Local(LocalSource::new(self.source)),
            None => bail!("--source {}: not a directory", self.source.display()),
        };
        let output = match out_url {
            Some(url) => Output::S3(S3Target { client, url }),
            None => Output::Local(self.out),
        };
        Ok(AnalyzeConfig {
            source,
            output,
            days,
            filter: PartitionFilter {
                accounts: (!accounts.is_empty()).then_some(accounts),
                regions: (!regions.is_empty()).then_some(regions),
            },
            detector: DetectorConfig::default(),
            fetch_concurrency: self.concurrency.max(1),
            list_concurrency: config::DEFAULT_LIST_CONCURRENCY,
            decode_threads: self
                .threads
                .unwrap_or_else(config::available_threads)
                .max(1),
            max_object_bytes: self.max_object_bytes,
            strict: self.strict,
        })
    }
}

fn day_range(from: Option<&str>, to: Option<&str>) -> anyhow::Result<Option<DayRange>> {
    let parse = |flag: &str, text: &str| {
        parse_day(text).with_context(|| format!("{flag} {text:?}: expected a date as YYYY-MM-DD"))
    };
    match (from, to) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) => {
            let (first, last) = (parse("--from", from)?, parse("--to", to)?);
            if last < first {
                bail!("--to {to} is before --from {from}");
            }
            Ok(Some(DayRange::new(first, last)))
        }
        (Some(day), None) | (None, Some(day)) => {
            let day = parse("--from/--to", day)?;
            Ok(Some(DayRange::new(day, day)))
        }
    }
}
