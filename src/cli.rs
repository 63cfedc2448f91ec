//! Command-line types (clap) and their conversion into a validated `AnalyzeConfig` (or, for
//! `report`, a `ReportConfig`); nothing else.

use crate::config::{self, AnalyzeConfig, DaysAsked, NightlyPlan};
use crate::decode::DEFAULT_MAX_OBJECT_BYTES;
use crate::detect::{DetectorConfig, TimeWindow};
use crate::model::{CallRateScope, EventCategory, EventSelection, parse_day};
use crate::report::{self, ReportConfig};
use crate::sink::{Formats, Sink, notify};
use crate::source::layout::{self, PartitionFilter, Shard, ShardAssignment};
use crate::source::s3::S3Source;
use crate::source::{Source, local::LocalSource};
use crate::state::StateStore;
use crate::store::s3::{self, S3Client, S3Prefix, S3Settings, S3Url};
use crate::store::{Store, budget, retry};
use crate::telemetry::LogFormat;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
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
    #[arg(help_heading = "Logging", env = "TRAILSIGHT_LOG_FORMAT", long, global = true, value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
    /// Only warnings and errors in the log.
    #[arg(help_heading = "Logging", env = "TRAILSIGHT_QUIET", value_parser = clap::builder::FalseyValueParser::new(), long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail in the log: -v for debug, -vv for trace (over RUST_LOG, which sets the level
    /// without either flag). The AWS SDK and the HTTP stack stay at warnings whatever is asked,
    /// so no credential is ever logged.
    #[arg(help_heading = "Logging", long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Seconds one object may be waited on (a file read, or an S3 request with its retries)
    /// before a warning names it, again every as many seconds while it lasts; 0: never.
    #[arg(help_heading = "Logging", env = "TRAILSIGHT_STALL_WARN_SECS", long, global = true, value_name = "SECS",
          default_value_t = crate::telemetry::waiting::DEFAULT_STALL_WARN_SECS)]
    pub stall_warn_secs: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse a range of days (a backfill) and write Start/End Insight events.
    Analyze(AnalyzeArgs),
    /// Analyse what is new since the last run: every day completed since, from a saved state.
    Nightly(NightlyArgs),
    /// Draw the Insights of an output directory as one self-contained HTML page.
    Report(ReportArgs),
    /// Print a shell completion script on stdout (e.g. `trailsight completions bash >
    /// /etc/bash_completion.d/trailsight`).
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout (e.g. `trailsight man > trailsight.1; man ./trailsight.1`).
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script for `shell`, generated from the command-line definitions.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<Vec<u8>> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "trailsight", &mut out);
    Ok(out)
}

/// The man page (roff), generated from the command-line definitions: the top-level page with
/// each subcommand's options appended.
pub fn man_page() -> anyhow::Result<Vec<u8>> {
    let command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        // clap names commands with &'static str: leaked once, by a command that then exits.
        let name: &'static str =
            Box::leak(format!("trailsight-{}", sub.get_name()).into_boxed_str());
        let sub = sub.clone().name(name).display_name(name);
        out.extend_from_slice(b".bp\n");
        let man = clap_mangen::Man::new(sub);
        man.render_title(&mut out)?;
        man.render_name_section(&mut out)?;
        man.render_synopsis_section(&mut out)?;
        man.render_description_section(&mut out)?;
        man.render_options_section(&mut out)?;
    }
    Ok(out)
}

/// The log format a command line asks for, read without clap (for reporting clap's own
/// errors): `--log-format json`, `--log-format=json`, else `TRAILSIGHT_LOG_FORMAT`.
pub fn log_format_asked(args: &[std::ffi::OsString], env: Option<&str>) -> LogFormat {
    let mut asked = env.map(str::to_owned);
    let mut args = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--log-format" {
            asked = args.next().map(|v| v.into_owned());
        } else if let Some(value) = arg.strip_prefix("--log-format=") {
            asked = Some(value.to_owned());
        }
    }
    match asked.as_deref().map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// `-` in place of an output file: standard output.
pub fn is_stdout(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A time on the command line: RFC 3339 (`2019-11-05T09:30:00Z`), or a date (`2019-11-05`)
/// meaning its midnight, UTC.
pub fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&chrono::Utc));
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(day.and_time(chrono::NaiveTime::MIN).and_utc())
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

/// What every run takes.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where the CloudTrail logs are ([prefix/]AWSLogs/...): a directory or s3://BUCKET[/PREFIX].
    #[arg(
        help_heading = "Input and output",
        env = "TRAILSIGHT_SOURCE",
        long,
        value_name = "DIR|S3URL"
    )]
    pub source: PathBuf,
    /// Where to write Insights (AWSLogs/.../CloudTrail-Insight/...): a directory or
    /// s3://BUCKET[/PREFIX].
    #[arg(
        help_heading = "Input and output",
        env = "TRAILSIGHT_OUT",
        long,
        value_name = "DIR|S3URL"
    )]
    pub out: PathBuf,
    /// Only these accounts (comma-separated 12-digit IDs).
    #[arg(
        help_heading = "What to analyse",
        env = "TRAILSIGHT_ACCOUNTS",
        long,
        value_delimiter = ',',
        value_name = "ID,.."
    )]
    pub accounts: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(
        help_heading = "What to analyse",
        env = "TRAILSIGHT_REGIONS",
        long,
        value_delimiter = ',',
        value_name = "REGION,.."
    )]
    pub regions: Vec<String>,
    /// Only shard I of N (0-based) of the account/region pairs. Default: from
    /// AWS_BATCH_JOB_ARRAY_INDEX and AWS_BATCH_JOB_ARRAY_SIZE, or JOB_COMPLETION_INDEX and
    /// TRAILSIGHT_SHARDS (Kubernetes Indexed Jobs), when set.
    #[arg(
        help_heading = "What to analyse",
        env = "TRAILSIGHT_SHARD",
        long,
        value_name = "I/N"
    )]
    pub shard: Option<String>,
    /// Objects fetched at once [default: 16 from a directory, 128 from S3].
    #[arg(
        help_heading = "Performance and limits",
        env = "TRAILSIGHT_CONCURRENCY",
        long,
        value_name = "N"
    )]
    pub concurrency: Option<usize>,
    /// Objects decoded at once (default: the number of CPUs).
    #[arg(
        help_heading = "Performance and limits",
        env = "TRAILSIGHT_THREADS",
        long,
        value_name = "N"
    )]
    pub threads: Option<usize>,
    /// Largest object, stored or decompressed, in bytes; larger ones are skipped and reported.
    #[arg(help_heading = "Performance and limits", env = "TRAILSIGHT_MAX_OBJECT_BYTES", long, default_value_t = DEFAULT_MAX_OBJECT_BYTES, value_name = "BYTES")]
    pub max_object_bytes: u64,
    /// Fail (exit 2, nothing written) if any object, record or file had to be skipped.
    #[arg(help_heading = "Input and output", env = "TRAILSIGHT_STRICT", value_parser = clap::builder::FalseyValueParser::new(), long)]
    pub strict: bool,
    /// Runs (with --state) that may fail to fetch an object (or list a day folder) of a
    /// partition before it is given up (quarantined) and the partition's Insights are written
    /// without it; until then the partition is withheld and each run retries it.
    #[arg(help_heading = "Days and state", env = "TRAILSIGHT_QUARANTINE_AFTER_RUNS", long, default_value_t = config::DEFAULT_QUARANTINE_AFTER_RUNS, value_name = "RUNS")]
    pub quarantine_after_runs: u32,
    /// With --state: a lock older than this (seconds) is taken over as abandoned. A local lock
    /// whose holder ran on this host and is gone is taken over at once.
    #[arg(help_heading = "Days and state", env = "TRAILSIGHT_LOCK_TTL_SECS", long, default_value_t = crate::state::LOCK_TTL_SECS, value_name = "SECONDS")]
    pub lock_ttl_secs: u64,
    /// Also write the run summary as JSON to this file (`-`: standard output).
    #[arg(
        help_heading = "Input and output",
        env = "TRAILSIGHT_SUMMARY_JSON",
        long,
        value_name = "PATH"
    )]
    pub summary_json: Option<PathBuf>,
    /// Output formats (comma-separated): json (AWS's files under AWSLogs/.../CloudTrail-Insight/),
    /// parquet (Hive-partitioned under insights/, for Athena).
    #[arg(help_heading = "Input and output", env = "TRAILSIGHT_FORMAT", long = "format", value_enum, value_delimiter = ',', value_name = "FORMAT,..",
          default_values_t = [FormatArg::Json, FormatArg::Parquet])]
    pub formats: Vec<FormatArg>,
    /// Event categories analysed (comma-separated): management, data. As AWS's InsightSelector
    /// EventCategories [default: management, or `[insights] event_categories` in --config].
    #[arg(
        help_heading = "What to analyse",
        env = "TRAILSIGHT_EVENT_CATEGORIES",
        long,
        value_delimiter = ',',
        value_name = "CATEGORY,.."
    )]
    pub event_categories: Vec<String>,
    /// Management calls counted toward call rate: write (as AWS) or all (read-only calls too,
    /// beyond AWS). Data call rates always count read and write calls [default: write, or
    /// `[insights] call_rate_events` in --config].
    #[arg(
        help_heading = "What to analyse",
        env = "TRAILSIGHT_CALL_RATE_EVENTS",
        long,
        value_name = "write|all"
    )]
    pub call_rate_events: Option<String>,
    #[command(flatten)]
    pub detector: DetectorArgs,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// Where new Insights are published; each flag overrides the config file's `[notify]` table.
#[derive(Debug, Clone, Default, Args)]
pub struct NotifyArgs {
    /// Put each new Insight record on this EventBridge bus (`default`, a name or an ARN), with
    /// detail-type "AWS Insight via CloudTrail".
    #[arg(
        help_heading = "Notifications",
        env = "TRAILSIGHT_NOTIFY_EVENTBRIDGE",
        long,
        value_name = "BUS"
    )]
    pub notify_eventbridge: Option<String>,
    /// The EventBridge `Source` of those events [default: trailsight] (aws.* is reserved).
    #[arg(
        help_heading = "Notifications",
        env = "TRAILSIGHT_NOTIFY_SOURCE",
        long,
        value_name = "SOURCE"
    )]
    pub notify_source: Option<String>,
    /// Publish each new Insight record to this SNS topic.
    #[arg(
        help_heading = "Notifications",
        env = "TRAILSIGHT_NOTIFY_SNS",
        long,
        value_name = "TOPIC_ARN"
    )]
    pub notify_sns: Option<String>,
    /// POST each new Insight record to this webhook (Slack, Teams or any JSON receiver); the
    /// URL is a secret and is never logged whole (also: TRAILSIGHT_NOTIFY_WEBHOOK).
    #[arg(
        help_heading = "Notifications",
        long,
        value_name = "URL",
        env = "TRAILSIGHT_NOTIFY_WEBHOOK",
        hide_env_values = true
    )]
    pub notify_webhook: Option<String>,
}

/// The config file's `[notify]` table: the same keys as the flags.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyFile {
    eventbridge: Option<String>,
    source: Option<String>,
    sns: Option<String>,
    webhook: Option<String>,
}

/// The notification targets from the flags and the config file, checked; `None` when there
/// are none.
fn notify_config(
    args: &NotifyArgs,
    file: Option<&Path>,
    settings: &S3Settings,
) -> anyhow::Result<Option<notify::NotifyConfig>> {
    let file = load_config(file)?.notify;
    let pick = |flag: &Option<String>, key: Option<String>| flag.clone().or(key);
    let bus = pick(&args.notify_eventbridge, file.eventbridge);
    let source = pick(&args.notify_source, file.source);
    let sns = pick(&args.notify_sns, file.sns);
    let webhook = pick(&args.notify_webhook, file.webhook).filter(|w| !w.is_empty());
    if bus.is_none() && source.is_some() {
        bail!("--notify-source applies to --notify-eventbridge, which is not set");
    }
    let error = |e: String| anyhow::anyhow!(e);
    let eventbridge = match bus {
        Some(bus) => Some(notify::EventBridgeTarget {
            bus: notify::parse_bus(&bus).map_err(error)?,
            source: notify::parse_source(source.as_deref().unwrap_or(notify::DEFAULT_SOURCE))
                .map_err(error)?,
        }),
        None => None,
    };
    let config = notify::NotifyConfig {
        eventbridge,
        sns_topic_arn: sns
            .map(|arn| notify::parse_topic_arn(&arn))
            .transpose()
            .map_err(error)?,
        webhook: webhook
            .map(|url| notify::WebhookUrl::parse(&url))
            .transpose()
            .map_err(|e| anyhow::anyhow!("--notify-webhook: {e}"))?,
        settings: notify::ClientSettings {
            region: settings.region.clone(),
            retry: settings.retry,
            request_timeout: settings.request_timeout,
            access: settings.access.clone(),
        },
    };
    Ok((!config.channels().is_empty()).then_some(config))
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// First day to analyse (YYYY-MM-DD, UTC); the 7 days before it are read as baseline.
    /// Default: the first delivery day found.
    #[arg(
        help_heading = "Days and state",
        env = "TRAILSIGHT_FROM",
        long,
        value_name = "DATE"
    )]
    pub from: Option<String>,
    /// Last day to analyse (YYYY-MM-DD, UTC, inclusive). Default: the last delivery day found.
    #[arg(
        help_heading = "Days and state",
        env = "TRAILSIGHT_TO",
        long,
        value_name = "DATE"
    )]
    pub to: Option<String>,
    /// Keep progress here after each day, so an interrupted backfill resumes where it stopped:
    /// a directory or s3://BUCKET[/PREFIX].
    #[arg(
        help_heading = "Days and state",
        env = "TRAILSIGHT_STATE",
        long,
        value_name = "DIR|S3URL"
    )]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct NightlyArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Where the run remembers what it has read (created on the first run): a directory or
    /// s3://BUCKET[/PREFIX].
    #[arg(
        help_heading = "Days and state",
        env = "TRAILSIGHT_STATE",
        long,
        value_name = "DIR|S3URL"
    )]
    pub state: PathBuf,
    /// With no state yet, start at this day (default: the last complete day).
    #[arg(
        help_heading = "Days and state",
        env = "TRAILSIGHT_FIRST_DAY",
        long,
        value_name = "DATE"
    )]
    pub first_day: Option<String>,
    /// A day is complete once this many minutes of the next day have passed (late deliveries).
    #[arg(
        help_heading = "Days and state",
        env = "TRAILSIGHT_FINALIZE_AFTER_MINUTES",
        long,
        default_value_t = 60,
        value_name = "MINUTES"
    )]
    pub finalize_after_minutes: i64,
    /// Run as if the clock said this time (RFC 3339, or a date meaning its 00:00Z), e.g. to
    /// replay a missed night.
    #[arg(
        help_heading = "Days and state",
        env = "TRAILSIGHT_AS_OF",
        long,
        value_name = "TIME"
    )]
    pub as_of: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Json,
    Parquet,
}

fn formats(selected: &[FormatArg]) -> Formats {
    Formats {
        json: selected.contains(&FormatArg::Json),
        parquet: selected.contains(&FormatArg::Parquet),
    }
}

/// How to reach S3; credentials come from the standard AWS chain, never from flags.
#[derive(Debug, Args)]
pub struct S3Args {
    /// The profile of the AWS config files (~/.aws/config, ~/.aws/credentials) for
    /// credentials, region and endpoint, as the AWS CLI's --profile.
    #[arg(
        help_heading = "S3 and AWS",
        long,
        env = "AWS_PROFILE",
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// Certificates (PEM) trusted besides the system's, e.g. of a TLS-inspecting proxy or a
    /// private S3-compatible store, as the AWS CLI's --ca-bundle. Proxies come from
    /// HTTPS_PROXY, HTTP_PROXY and NO_PROXY.
    #[arg(
        help_heading = "S3 and AWS",
        long,
        env = "AWS_CA_BUNDLE",
        value_name = "FILE"
    )]
    pub ca_bundle: Option<PathBuf>,
    /// AWS region of the buckets (default: AWS_REGION, AWS_DEFAULT_REGION, the profile).
    #[arg(
        help_heading = "S3 and AWS",
        env = "TRAILSIGHT_REGION",
        long,
        value_name = "REGION"
    )]
    pub region: Option<String>,
    /// S3 endpoint of an S3-compatible store (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL,
    /// the profile's endpoint_url, or AWS).
    #[arg(
        help_heading = "S3 and AWS",
        env = "TRAILSIGHT_ENDPOINT_URL",
        long,
        value_name = "URL"
    )]
    pub endpoint_url: Option<String>,
    /// Path-style addressing (endpoint/bucket/key), for S3-compatible stores.
    #[arg(help_heading = "S3 and AWS", env = "TRAILSIGHT_FORCE_PATH_STYLE", value_parser = clap::builder::FalseyValueParser::new(), long)]
    pub force_path_style: bool,
    /// The account that must own the buckets; sent with every request (reads and writes).
    #[arg(
        help_heading = "S3 and AWS",
        env = "TRAILSIGHT_EXPECTED_BUCKET_OWNER",
        long,
        value_name = "ACCOUNT"
    )]
    pub expected_bucket_owner: Option<String>,
    /// Encrypt written Insights with this KMS key (SSE-KMS): key ID, ARN or alias.
    #[arg(
        help_heading = "S3 and AWS",
        env = "TRAILSIGHT_SSE_KMS_KEY_ID",
        long,
        value_name = "KEY"
    )]
    pub sse_kms_key_id: Option<String>,
    /// Attempts per S3 request before the object (or the run, for listings) fails.
    #[arg(help_heading = "S3 and AWS", env = "TRAILSIGHT_MAX_ATTEMPTS", long, default_value_t = retry::DEFAULT_MAX_ATTEMPTS, value_name = "N")]
    pub max_attempts: u32,
    /// First backoff step between attempts, in milliseconds (doubling, with jitter;
    /// throttled requests wait five times longer).
    #[arg(help_heading = "S3 and AWS", env = "TRAILSIGHT_RETRY_BASE_DELAY_MS", long, default_value_t = retry::DEFAULT_BASE_DELAY.as_millis() as u64, value_name = "MS")]
    pub retry_base_delay_ms: u64,
    /// Seconds an S3 request may wait for an answer, and a download may stall.
    #[arg(help_heading = "S3 and AWS", env = "TRAILSIGHT_REQUEST_TIMEOUT_SECS", long, default_value_t = s3::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_name = "SECS")]
    pub request_timeout_secs: u64,
    /// Compressed bytes fetched from S3 and not yet decoded, at most: bounds the memory of
    /// many fetches in flight (an object larger than this is fetched alone).
    #[arg(help_heading = "S3 and AWS", env = "TRAILSIGHT_MAX_BYTES_IN_FLIGHT", long, default_value_t = budget::DEFAULT_MAX_BYTES_IN_FLIGHT, value_name = "BYTES")]
    pub max_bytes_in_flight: u64,
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
        if self.max_bytes_in_flight == 0 {
            bail!("--max-bytes-in-flight must be at least 1");
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
            list_concurrency: config::DEFAULT_S3_LIST_CONCURRENCY,
            access: s3::AwsAccess {
                profile: self.profile.filter(|p| !p.trim().is_empty()),
                ca_bundle: self.ca_bundle.filter(|p| !p.as_os_str().is_empty()),
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The output of `analyze`/`nightly` (AWSLogs/.../CloudTrail-Insight/... and
    /// explanations/): a directory or s3://bucket[/prefix].
    #[arg(
        help_heading = "Input and output",
        env = "TRAILSIGHT_INSIGHTS",
        long,
        value_name = "DIR|S3"
    )]
    pub insights: PathBuf,
    /// The CloudTrail logs the Insights came from, a directory or s3://bucket[/prefix]: chart
    /// each episode's real per-minute rate. Without it, charts show the averages the Insight
    /// records hold.
    #[arg(
        help_heading = "Input and output",
        env = "TRAILSIGHT_SOURCE",
        long,
        value_name = "DIR|S3"
    )]
    pub source: Option<PathBuf>,
    /// The HTML file to write (`-`: standard output).
    #[arg(
        help_heading = "Input and output",
        env = "TRAILSIGHT_HTML",
        long,
        value_name = "FILE"
    )]
    pub html: PathBuf,
    /// Hours of context charted before and after each episode.
    #[arg(help_heading = "Report", env = "TRAILSIGHT_CONTEXT_HOURS", long, default_value_t = report::DEFAULT_CONTEXT_HOURS, value_name = "HOURS")]
    pub context_hours: u32,
    /// Episodes per page of the report.
    #[arg(help_heading = "Report", env = "TRAILSIGHT_PAGE_SIZE", long, default_value_t = report::DEFAULT_PAGE_SIZE, value_name = "N")]
    pub page_size: usize,
    /// Largest log object, stored or decompressed, read with --source, in bytes.
    #[arg(help_heading = "Performance and limits", env = "TRAILSIGHT_MAX_OBJECT_BYTES", long, default_value_t = DEFAULT_MAX_OBJECT_BYTES, value_name = "BYTES")]
    pub max_object_bytes: u64,
    #[command(flatten)]
    pub s3: S3Args,
}

impl ReportArgs {
    pub fn into_config(self) -> anyhow::Result<ReportConfig> {
        if !is_stdout(&self.html) {
            check_output_file("--html", &self.html)?;
        }
        if !(1..=report::MAX_CONTEXT_HOURS).contains(&self.context_hours) {
            bail!(
                "--context-hours must be between 1 and {}",
                report::MAX_CONTEXT_HOURS
            );
        }
        let max_bytes_in_flight = self.s3.max_bytes_in_flight;
        let client = S3Client::new(self.s3.into_settings()?);
        let insights = match s3_url("--insights", &self.insights)? {
            Some(url) => Store::S3(S3Prefix::new(client.clone(), url)),
            None if self.insights.is_dir() => Store::local(self.insights),
            // Every analyze or nightly run leaves its --out folder (its run summary is in it).
            None if self.insights.symlink_metadata().is_err() => bail!(
                "--insights {}: no such directory (give the --out folder of an analyze run)",
                self.insights.display()
            ),
            None => bail!(
                "--insights {}: not a directory (give the --out folder of an analyze run)",
                self.insights.display()
            ),
        };
        let source = match &self.source {
            None => None,
            Some(path) => Some(log_source("--source", path, &client)?),
        };
        let fetch_concurrency = match source {
            Some(Source::S3(_)) => config::DEFAULT_S3_FETCH_CONCURRENCY,
            _ => config::DEFAULT_FETCH_CONCURRENCY,
        };
        Ok(ReportConfig {
            insights,
            source,
            html: self.html,
            context_minutes: i64::from(self.context_hours) * 60,
            page_size: self.page_size.max(1),
            fetch_concurrency,
            decode_threads: config::available_threads(),
            max_object_bytes: self.max_object_bytes,
            max_bytes_in_flight,
        })
    }
}

/// The logs at `path`: `s3://bucket[/prefix]` or a local directory.
fn log_source(flag: &str, path: &Path, client: &S3Client) -> anyhow::Result<Source> {
    match s3_url(flag, path)? {
        Some(url) => Ok(Source::S3(S3Source::new(client.clone(), url))),
        None if path.is_dir() => Ok(Source::Local(LocalSource::new(path.to_owned()))),
        None => bail!("{flag} {}: not a directory", path.display()),
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
        let mut config = self
            .run
            .into_config(&std::env::vars().collect(), self.state)?;
        config.days = days;
        Ok(config)
    }
}

/// How far `--as-of` may be ahead of the host's clock (a time copied from another host).
const AS_OF_CLOCK_SKEW_MINUTES: i64 = 5;

impl NightlyArgs {
    /// The `--as-of` time, if given.
    pub fn as_of(&self) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
        self.as_of
            .as_deref()
            .map(|t| {
                let time = parse_time(t).with_context(|| {
                    format!(
                        "--as-of {t:?}: expected an RFC 3339 time (2019-11-05T09:30:00Z) or a date (2019-11-05, meaning 00:00Z)"
                    )
                })?;
                check_day_bounds("--as-of", time.date_naive())?;
                Ok(time)
            })
            .transpose()
    }

    /// The run's configuration and its plan; `now` is the wall clock (read by `main`), used
    /// unless `--as-of` replays another time.
    pub fn into_config(
        self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<(AnalyzeConfig, NightlyPlan)> {
        let as_of = self.as_of()?.unwrap_or(now);
        // A replay is of a past night: a later time would analyse days still to come (each a
        // delivery gap) and move the state past them, so the real nights after it would find
        // nothing to do until the clock caught up.
        if as_of > now + chrono::Duration::minutes(AS_OF_CLOCK_SKEW_MINUTES) {
            bail!(
                "--as-of {} is after this host's clock ({}): a nightly run analyses only days that have ended; give a past time to replay a missed night, or leave --as-of out",
                as_of.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        let first_day = self
            .first_day
            .as_deref()
            .map(|d| {
                parse_day(d)
                    .with_context(|| format!("--first-day {d:?}: expected YYYY-MM-DD"))
                    .and_then(|day| check_day_bounds("--first-day", day))
            })
            .transpose()?;
        if !(0..=7 * 1440).contains(&self.finalize_after_minutes) {
            bail!("--finalize-after-minutes must be between 0 and 10080");
        }
        let plan = NightlyPlan {
            as_of,
            finalize_after_minutes: self.finalize_after_minutes,
            first_day,
        };
        let config = self
            .run
            .into_config(&std::env::vars().collect(), Some(self.state))?;
        Ok((config, plan))
    }
}

impl RunArgs {
    /// The run's configuration; `state` is the `--state` directory or S3 address, if any.
    fn into_config(
        self,
        env: &BTreeMap<String, String>,
        state: Option<PathBuf>,
    ) -> anyhow::Result<AnalyzeConfig> {
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
        let shard = resolve_shard(self.shard.as_deref(), env)?;
        if let Some(path) = self.summary_json.as_deref().filter(|p| !is_stdout(p)) {
            check_output_file("--summary-json", path)?;
        }
        let (detector, excluded_identities) = detector_config(&self.detector)?;
        let selection = event_selection(
            &self.event_categories,
            self.call_rate_events.as_deref(),
            self.detector.config.as_deref(),
        )?;
        let source_url = s3_url("--source", &self.source)?;
        let out_url = s3_url("--out", &self.out)?;
        let state_url = match &state {
            Some(path) => s3_url("--state", path)?,
            None => None,
        };
        if out_url.is_none() && state_url.is_none() && self.s3.sse_kms_key_id.is_some() {
            bail!(
                "--sse-kms-key-id applies to S3 writes only: neither --out nor --state is an s3:// address"
            );
        }
        let max_bytes_in_flight = self.s3.max_bytes_in_flight;
        let settings = self.s3.into_settings()?;
        let notify = notify_config(&self.notify, self.detector.config.as_deref(), &settings)?;
        // One client for both ends, built on first use.
        let client = S3Client::new(settings);
        let source = match source_url {
            Some(url) => Source::S3(S3Source::new(client.clone(), url)),
            None if self.source.is_dir() => Source::Local(LocalSource::new(self.source)),
            None => bail!("--source {}: not a directory", self.source.display()),
        };
        let store = |url: Option<S3Url>, path: PathBuf| match url {
            Some(url) => Store::S3(S3Prefix::new(client.clone(), url)),
            None => Store::local(path),
        };
        let fetch_concurrency = self
            .concurrency
            .unwrap_or(match source {
                Source::Local(_) => config::DEFAULT_FETCH_CONCURRENCY,
                Source::S3(_) => config::DEFAULT_S3_FETCH_CONCURRENCY,
            })
            .max(1);
        let list_concurrency = match source {
            Source::Local(_) => config::DEFAULT_LIST_CONCURRENCY,
            Source::S3(_) => config::DEFAULT_S3_LIST_CONCURRENCY,
        };
        let output = Sink::new(
            store(out_url, self.out),
            formats(&self.formats),
            list_concurrency,
        );
        let shard_label = shard.map(|s| s.label());
        let state = state.map(|path| {
            StateStore::new(store(state_url, path), shard_label.as_deref())
                .with_lock_ttl(self.lock_ttl_secs)
        });
        Ok(AnalyzeConfig {
            source,
            output,
            days: DaysAsked::default(),
            filter: PartitionFilter {
                accounts: (!accounts.is_empty()).then_some(accounts),
                regions: (!regions.is_empty()).then_some(regions),
                shard,
            },
            detector,
            excluded_identities,
            fetch_concurrency,
            max_bytes_in_flight,
            list_concurrency,
            decode_threads: self
                .threads
                .unwrap_or_else(config::available_threads)
                .max(1),
            max_object_bytes: self.max_object_bytes,
            strict: self.strict,
            state,
            quarantine_after_runs: self.quarantine_after_runs.max(1),
            notify,
            selection,
        })
    }
}

/// `--shard I/N`, else the array index of an AWS Batch array job or a Kubernetes Indexed Job.
pub fn resolve_shard(
    flag: Option<&str>,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Option<Shard>> {
    let parse = |index: &str, count: &str, from: &str| -> anyhow::Result<Shard> {
        let wrong =
            || anyhow::anyhow!("{from}: expected a shard I/N with 0 <= I < N, got {index}/{count}");
        let index: u32 = index.trim().parse().map_err(|_| wrong())?;
        let count: u32 = count.trim().parse().map_err(|_| wrong())?;
        if count == 0 || index >= count {
            return Err(wrong());
        }
        Ok(Shard {
            index,
            count,
            assignment: ShardAssignment::default(),
        })
    };
    if let Some(flag) = flag {
        let (index, count) = flag.split_once('/').unwrap_or((flag, ""));
        return parse(index, count, "--shard").map(Some);
    }
    for (index_var, count_var) in [
        ("AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE"),
        ("JOB_COMPLETION_INDEX", "TRAILSIGHT_SHARDS"),
    ] {
        if let Some(index) = env.get(index_var) {
            let Some(count) = env.get(count_var) else {
                bail!(
                    "{index_var} is set, so this is a shard, but {count_var} (the number of shards) is not"
                );
            };
            return parse(index, count, index_var).map(Some);
        }
    }
    Ok(None)
}

fn day_range(from: Option<&str>, to: Option<&str>) -> anyhow::Result<DaysAsked> {
    let parse = |flag: &str, text: &str| {
        parse_day(text)
            .with_context(|| format!("{flag} {text:?}: expected a date as YYYY-MM-DD"))
            .and_then(|day| check_day_bounds(flag, day))
    };
    let asked = DaysAsked {
        from: from.map(|d| parse("--from", d)).transpose()?,
        to: to.map(|d| parse("--to", d)).transpose()?,
    };
    if let (Some(first), Some(last)) = (asked.from, asked.to)
        && last < first
    {
        bail!("--to {last} is before --from {first}");
    }
    Ok(asked)
}

/// Detector tuning on the command line; each flag overrides the config file and the preset.
#[derive(Debug, Clone, Default, Args)]
pub struct DetectorArgs {
    /// A TOML file with [detector] and [exclude] tables (see docs/detector.md).
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_CONFIG",
        long,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Preset for how readily Insights fire: low, medium (default) or high.
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_SENSITIVITY",
        long,
        value_enum
    )]
    pub sensitivity: Option<Sensitivity>,
    /// Tail probability at or below which a window opens an episode.
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_START_PROBABILITY",
        long,
        value_name = "P"
    )]
    pub start_probability: Option<f64>,
    /// Fewest calls in the window that opens an episode.
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_MIN_START_COUNT",
        long,
        value_name = "N"
    )]
    pub min_start_count: Option<u32>,
    /// Fewest calls in the opening window for an API with no call in the baseline.
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_MIN_NEW_API_COUNT",
        long,
        value_name = "N"
    )]
    pub min_new_api_count: Option<u32>,
    /// The opening window must hold this multiple of the expected calls.
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_MIN_RATE_RATIO",
        long,
        value_name = "X"
    )]
    pub min_rate_ratio: Option<f64>,
    /// Ordinary minutes in a row that end an episode.
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_QUIET_MINUTES_TO_END",
        long,
        value_name = "MINUTES"
    )]
    pub quiet_minutes_to_end: Option<i64>,
    /// A job that ran at about this time on this many of the last 7 days is expected at its
    /// usual size (0 turns habits off).
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_HABIT_DAYS",
        long,
        value_name = "DAYS"
    )]
    pub habit_days: Option<u32>,
    /// Minutes a recurring job may start earlier or later than on previous days.
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_HABIT_JITTER_MINUTES",
        long,
        value_name = "MINUTES"
    )]
    pub habit_jitter_minutes: Option<i64>,
    /// A burst no larger than bursts the last 7 days held on this many separate days (at any
    /// time, outside recurring jobs' runs) is ordinary (0 turns the rule off).
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_CLUMP_DAYS",
        long,
        value_name = "DAYS"
    )]
    pub clump_days: Option<u32>,
    /// Also report steady APIs that fall silent.
    #[arg(help_heading = "Detector", env = "TRAILSIGHT_DETECT_DROPS", value_parser = clap::builder::FalseyValueParser::new(), long)]
    pub detect_drops: bool,
    /// Never analyse this API: SOURCE:NAME, `*` for any (repeatable).
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_EXCLUDE_API",
        long,
        value_name = "SOURCE:NAME"
    )]
    pub exclude_api: Vec<String>,
    /// Drop calls by this caller before counting: an ARN as attributed (assumed-role session
    /// removed), or a prefix ending in `*` (repeatable).
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_EXCLUDE_IDENTITY",
        long,
        value_name = "ARN"
    )]
    pub exclude_identity: Vec<String>,
    /// No Insight starts in this window: `HH:MM-HH:MM` daily (UTC), `Sat,Sun HH:MM-HH:MM`, or
    /// `START/END`, each an RFC 3339 time or a date meaning its 00:00Z (repeatable).
    #[arg(
        help_heading = "Detector",
        env = "TRAILSIGHT_EXCLUDE_WINDOW",
        long,
        value_name = "WINDOW"
    )]
    pub exclude_window: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Low,
    Medium,
    High,
}

impl Sensitivity {
    fn apply(self, config: &mut DetectorConfig) {
        let (p, count, ratio) = match self {
            Sensitivity::Low => (1e-9, 10, 5.0),
            Sensitivity::Medium => (1e-6, 5, 3.0),
            Sensitivity::High => (1e-4, 3, 2.0),
        };
        config.start_probability = p;
        config.min_start_count = count;
        config.min_rate_ratio = ratio;
    }
}

/// The config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    detector: DetectorFile,
    #[serde(default)]
    exclude: ExcludeFile,
    #[serde(default)]
    notify: NotifyFile,
    #[serde(default)]
    insights: InsightsFile,
}

/// `[insights]`: which events are analysed (AWS's InsightSelector, and the read-only option).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InsightsFile {
    event_categories: Option<Vec<String>>,
    call_rate_events: Option<String>,
}

/// The `--config` file, parsed (read with `read_config_file`'s bounds); the defaults without one.
fn load_config(path: Option<&Path>) -> anyhow::Result<ConfigFile> {
    match path {
        Some(path) => {
            let text = read_config_file(path)?;
            toml::from_str(&text).with_context(|| format!("--config {}", path.display()))
        }
        None => Ok(ConfigFile::default()),
    }
}

/// The events a run analyses, from the flags, else the config file's `[insights]`, else AWS's
/// default (management events, write calls for call rate).
pub fn event_selection(
    categories: &[String],
    call_rate_events: Option<&str>,
    config: Option<&Path>,
) -> anyhow::Result<EventSelection> {
    let file = load_config(config)?.insights;
    let (categories, from) = if categories.is_empty() {
        match file.event_categories {
            Some(list) => (list, "[insights] event_categories"),
            None => (vec!["management".to_owned()], "--event-categories"),
        }
    } else {
        (categories.to_vec(), "--event-categories")
    };
    let mut selection = EventSelection {
        management: false,
        data: false,
        call_rate: CallRateScope::Write,
    };
    for name in &categories {
        match EventCategory::parse(name.trim()) {
            Some(EventCategory::Management) => selection.management = true,
            Some(EventCategory::Data) => selection.data = true,
            None => bail!("{from}: {name:?} is not an event category (management, data)"),
        }
    }
    if !selection.management && !selection.data {
        bail!("{from}: name at least one event category (management, data)");
    }
    let (scope, from) = match call_rate_events {
        Some(scope) => (Some(scope.to_owned()), "--call-rate-events"),
        None => (file.call_rate_events, "[insights] call_rate_events"),
    };
    if let Some(scope) = scope {
        selection.call_rate = CallRateScope::parse(scope.trim())
            .with_context(|| format!("{from}: {scope:?} is neither write nor all"))?;
    }
    Ok(selection)
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectorFile {
    sensitivity: Option<Sensitivity>,
    start_probability: Option<f64>,
    continue_probability: Option<f64>,
    min_start_count: Option<u32>,
    min_new_api_count: Option<u32>,
    min_rate_ratio: Option<f64>,
    scan_windows: Option<Vec<i64>>,
    quiet_minutes_to_end: Option<i64>,
    max_episode_minutes: Option<i64>,
    warmup_minutes: Option<i64>,
    detect_drops: Option<bool>,
    min_drop_rate: Option<f64>,
    min_drop_minutes: Option<i64>,
    habit_days: Option<u32>,
    habit_jitter_minutes: Option<i64>,
    clump_days: Option<u32>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ExcludeFile {
    #[serde(default)]
    apis: Vec<String>,
    #[serde(default)]
    identities: Vec<String>,
    #[serde(default)]
    windows: Vec<String>,
}

/// The detector configuration and the identities to drop, from preset, file and flags.
pub fn detector_config(args: &DetectorArgs) -> anyhow::Result<(DetectorConfig, Vec<String>)> {
    let file = load_config(args.config.as_deref())?;
    let mut config = DetectorConfig::default();
    if let Some(s) = args.sensitivity.or(file.detector.sensitivity) {
        s.apply(&mut config);
    }
    let d = &file.detector;
    macro_rules! set {
        ($field:ident, $value:expr) => {
            if let Some(v) = $value {
                config.$field = v;
            }
        };
    }
    set!(
        start_probability,
        args.start_probability.or(d.start_probability)
    );
    set!(continue_probability, d.continue_probability);
    set!(min_start_count, args.min_start_count.or(d.min_start_count));
    set!(
        min_new_api_count,
        args.min_new_api_count.or(d.min_new_api_count)
    );
    set!(min_rate_ratio, args.min_rate_ratio.or(d.min_rate_ratio));
    set!(scan_windows, d.scan_windows.clone());
    set!(
        quiet_minutes_to_end,
        args.quiet_minutes_to_end.or(d.quiet_minutes_to_end)
    );
    set!(max_episode_minutes, d.max_episode_minutes);
    set!(warmup_minutes, d.warmup_minutes);
    set!(min_drop_rate, d.min_drop_rate);
    set!(min_drop_minutes, d.min_drop_minutes);
    set!(habit_days, args.habit_days.or(d.habit_days));
    set!(
        habit_jitter_minutes,
        args.habit_jitter_minutes.or(d.habit_jitter_minutes)
    );
    set!(clump_days, args.clump_days.or(d.clump_days));
    config.detect_drops = args.detect_drops || d.detect_drops.unwrap_or(false);
    config.validate().map_err(|e| anyhow::anyhow!(e))?;

    let exclude = |flags: &[String], file: &[String]| -> Vec<String> {
        file.iter()
            .chain(flags)
            .map(|s| s.trim().to_owned())
            .collect()
    };
    for api in exclude(&args.exclude_api, &file.exclude.apis) {
        config.exclusions.apis.push(parse_api_pattern(&api)?);
    }
    for window in exclude(&args.exclude_window, &file.exclude.windows) {
        config.exclusions.windows.push(parse_time_window(&window)?);
    }
    let identities = exclude(&args.exclude_identity, &file.exclude.identities);
    Ok((config, identities))
}

/// The largest `--config` file read: a detector configuration is a few hundred bytes.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Read the `--config` file: a regular file of at most `MAX_CONFIG_BYTES`, in UTF-8. A FIFO or a
/// device (`/dev/zero`) is refused by its type without being read, so it cannot hang the run.
fn read_config_file(path: &Path) -> anyhow::Result<String> {
    let bytes = crate::source::local::read_object(path, MAX_CONFIG_BYTES).map_err(|e| {
        let why = match e {
            crate::source::local::ReadError::TooLarge { .. } => {
                format!("larger than {MAX_CONFIG_BYTES} bytes; a detector configuration is a small TOML file")
            }
            crate::source::local::ReadError::NotAFile => {
                "not a regular file (a FIFO, a device?); pass a TOML file".to_owned()
            }
            other => other.to_string(),
        };
        anyhow::anyhow!("--config {}: cannot read it: {why}", path.display())
    })?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("--config {}: not UTF-8 text", path.display()))
}

/// A day given on the command line must fall when CloudTrail can have logs: from November 2013
/// (its launch) to 2099, so a typo such as `0001-01-01` cannot make a run walk millennia of
/// empty days.
pub fn check_day_bounds(flag: &str, day: chrono::NaiveDate) -> anyhow::Result<chrono::NaiveDate> {
    let (earliest, latest) = crate::sink::validate::time_bounds();
    let (first, last) = (earliest.day(), latest.plus(-1).day());
    if day < first || day > last {
        bail!(
            "{flag} {day}: not between {first} (CloudTrail did not exist before November 2013) and {last}"
        );
    }
    Ok(day)
}

/// An output file given on the command line (`--summary-json`, `--html`), checked before the run
/// starts, so a typo fails at once rather than after all the work: its folder must exist and be
/// writable, and it must not be a folder itself.
pub fn check_output_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().is_empty() || path.is_dir() {
        bail!(
            "{flag} {}: a folder, not a file name; pass the path of the file to write",
            path.display()
        );
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        bail!(
            "{flag} {}: the folder {} does not exist; create it first",
            path.display(),
            folder.display()
        );
    }
    let mut c_path = folder.as_os_str().as_bytes().to_vec();
    c_path.push(0);
    let c_path = std::ffi::CStr::from_bytes_with_nul(&c_path)
        .map_err(|_| anyhow::anyhow!("{flag} {}: not a usable path", path.display()))?;
    // SAFETY: `access` only reads the NUL-terminated path it is given.
    let writable = unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) } == 0;
    if !writable {
        bail!(
            "{flag} {}: the folder {} is not writable by this user",
            path.display(),
            folder.display()
        );
    }
    Ok(())
}

/// `ec2.amazonaws.com:RunInstances`, `ec2.amazonaws.com:*`.
pub fn parse_api_pattern(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once(':') {
        Some((source, name)) if !source.is_empty() && !name.is_empty() => {
            Ok((source.to_owned(), name.to_owned()))
        }
        _ => bail!(
            "--exclude-api {text:?}: expected SOURCE:NAME, such as ec2.amazonaws.com:RunInstances"
        ),
    }
}

/// `02:00-04:00`, `Sat,Sun 02:00-04:00`, or `2019-11-05T09:00:00Z/2019-11-05T11:00:00Z`.
pub fn parse_time_window(text: &str) -> anyhow::Result<TimeWindow> {
    let wrong = || {
        anyhow::anyhow!(
            "--exclude-window {text:?}: expected HH:MM-HH:MM, DAYS HH:MM-HH:MM (DAYS like Sat,Sun) or START/END, each an RFC 3339 time or a date (00:00Z)"
        )
    };
    if let Some((from, to)) = text.split_once('/') {
        let parse = |t: &str| {
            parse_time(t)
                .map(|t| crate::model::Minute::from_unix_seconds(t.timestamp()))
                .ok_or_else(wrong)
        };
        let (from, to) = (parse(from)?, parse(to)?);
        if to <= from {
            return Err(wrong());
        }
        return Ok(TimeWindow::Once { from, to });
    }
    let (days, span) = match text.trim().rsplit_once(' ') {
        Some((days, span)) => (days, span),
        None => ("", text.trim()),
    };
    let days = days
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse::<chrono::Weekday>().map_err(|_| wrong()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (from, to) = span.split_once('-').ok_or_else(wrong)?;
    let minute_of_day = |t: &str| {
        chrono::NaiveTime::parse_from_str(t.trim(), "%H:%M")
            .map(|t| i64::from(chrono::Timelike::num_seconds_from_midnight(&t)) / 60)
            .map_err(|_| wrong())
    };
    Ok(TimeWindow::Daily {
        days,
        from: minute_of_day(from)?,
        to: minute_of_day(to)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exclusion_windows() {
        use chrono::Weekday::{Sat, Sun};
        let cases = [
            (
                "02:00-04:00",
                Some(TimeWindow::Daily {
                    days: vec![],
                    from: 120,
                    to: 240,
                }),
            ),
            (
                "Sat,Sun 23:30-01:00",
                Some(TimeWindow::Daily {
                    days: vec![Sat, Sun],
                    from: 1410,
                    to: 60,
                }),
            ),
            ("Funday 02:00-04:00", None),
            ("25:00-26:00", None),
            ("2019-11-05T11:00:00Z/2019-11-05T09:00:00Z", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_time_window(text).ok(), want, "{text}");
        }
        let once = parse_time_window("2019-11-05T09:00:00Z/2019-11-05T11:00:00Z").unwrap();
        assert!(matches!(once, TimeWindow::Once { from, to } if to.0 - from.0 == 120));
    }

    #[test]
    fn a_time_flag_takes_rfc_3339_or_a_date_meaning_its_midnight() {
        // (text, the time as RFC 3339 in UTC, or None when refused)
        let cases = [
            ("2019-11-05", Some("2019-11-05T00:00:00+00:00")),
            (" 2019-11-05 ", Some("2019-11-05T00:00:00+00:00")),
            ("2019-11-05T09:30:00Z", Some("2019-11-05T09:30:00+00:00")),
            (
                "2019-11-05T09:30:00+02:00",
                Some("2019-11-05T07:30:00+00:00"),
            ),
            ("2019-11-5x", None),
            ("2019-13-01", None),
            ("", None),
        ];
        for (text, want) in cases {
            let got = parse_time(text).map(|t| t.to_rfc3339());
            assert_eq!(got.as_deref(), want, "{text:?}");
        }
        let once = parse_time_window("2019-11-05/2019-11-06").unwrap();
        assert!(matches!(once, TimeWindow::Once { from, to } if to.0 - from.0 == 1440));
    }

    #[test]
    fn the_log_format_for_clap_errors_is_read_from_the_flag_or_the_variable() {
        use std::ffi::OsString;
        // (arguments, TRAILSIGHT_LOG_FORMAT, JSON asked)
        let cases: [(&[&str], Option<&str>, bool); 7] = [
            (&["analyze", "--log-format", "json"], None, true),
            (&["analyze", "--log-format=json"], None, true),
            (&["analyze", "--log-format", "text"], Some("json"), false),
            (&["analyze"], Some("json"), true),
            (&["analyze"], Some("JSON"), true),
            (&["analyze"], None, false),
            (&["analyze", "--", "--log-format=json"], None, false),
        ];
        for (args, env, json) in cases {
            let args: Vec<OsString> = std::iter::once("trailsight")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            let want = if json {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
            assert_eq!(log_format_asked(&args, env), want, "{args:?} {env:?}");
        }
    }

    #[test]
    fn fetch_and_list_concurrency_default_by_source_and_the_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().to_str().unwrap();
        // (source, extra flags, fetch concurrency, bytes in flight)
        let cases = [
            (local, vec![], config::DEFAULT_FETCH_CONCURRENCY, None),
            (
                "s3://logs",
                vec![],
                config::DEFAULT_S3_FETCH_CONCURRENCY,
                None,
            ),
            ("s3://logs", vec!["--concurrency", "8"], 8, None),
            (local, vec!["--concurrency", "0"], 1, None),
            (
                "s3://logs",
                vec!["--max-bytes-in-flight", "1048576"],
                config::DEFAULT_S3_FETCH_CONCURRENCY,
                Some(1 << 20),
            ),
        ];
        for (source, extra, concurrency, in_flight) in cases {
            let mut argv = vec!["trailsight", "analyze", "--source", source, "--out", local];
            argv.extend(&extra);
            let Command::Analyze(args) = Cli::parse_from(&argv).command else {
                panic!("{argv:?}: not analyze");
            };
            let config = args.run.into_config(&BTreeMap::new(), None).unwrap();
            assert_eq!(config.fetch_concurrency, concurrency, "{argv:?}");
            let listings = match source.starts_with("s3://") {
                true => config::DEFAULT_S3_LIST_CONCURRENCY,
                false => config::DEFAULT_LIST_CONCURRENCY,
            };
            assert_eq!(config.list_concurrency, listings, "{argv:?}");
            let want = in_flight.unwrap_or(budget::DEFAULT_MAX_BYTES_IN_FLIGHT);
            assert_eq!(config.max_bytes_in_flight, want, "{argv:?}");
        }
        let argv = [
            "trailsight",
            "analyze",
            "--source",
            "s3://logs",
            "--out",
            local,
        ];
        let Command::Analyze(args) =
            Cli::parse_from(argv.iter().chain(&["--max-bytes-in-flight", "0"])).command
        else {
            panic!("not analyze");
        };
        let err = args.run.into_config(&BTreeMap::new(), None).unwrap_err();
        assert!(err.to_string().contains("--max-bytes-in-flight"), "{err:#}");
    }

    #[test]
    fn notification_targets_come_from_the_flags_over_the_config_file_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trailsight.toml");
        std::fs::write(
            &path,
            "[notify]\neventbridge = \"ops\"\nsns = \"arn:aws:sns:eu-west-1:123456789012:insights\"\nwebhook = \"https://hooks.example.com/services/SECRET\"\n",
        )
        .unwrap();
        let settings = S3Settings::default();
        let file = Some(path.as_path());
        let config = notify_config(&NotifyArgs::default(), file, &settings)
            .unwrap()
            .unwrap();
        let bus = config.eventbridge.as_ref().unwrap();
        assert_eq!(
            (bus.bus.as_str(), bus.source.as_str()),
            ("ops", "trailsight")
        );
        assert_eq!(
            config.sns_topic_arn.as_deref(),
            Some("arn:aws:sns:eu-west-1:123456789012:insights")
        );
        assert!(!format!("{config:?}").contains("SECRET"));
        let args = NotifyArgs {
            notify_eventbridge: Some("default".into()),
            notify_source: Some("com.example.insights".into()),
            ..NotifyArgs::default()
        };
        let config = notify_config(&args, file, &settings).unwrap().unwrap();
        let bus = config.eventbridge.unwrap();
        assert_eq!(
            (bus.bus.as_str(), bus.source.as_str()),
            ("default", "com.example.insights")
        );
        assert_eq!(
            notify_config(&NotifyArgs::default(), None, &settings).unwrap(),
            None
        );
        // (flags, what the error names)
        let cases = [
            (
                NotifyArgs {
                    notify_eventbridge: Some("default".into()),
                    notify_source: Some("aws.cloudtrail".into()),
                    ..NotifyArgs::default()
                },
                "reserves aws.*",
            ),
            (
                NotifyArgs {
                    notify_source: Some("trailsight".into()),
                    ..NotifyArgs::default()
                },
                "--notify-eventbridge, which is not set",
            ),
            (
                NotifyArgs {
                    notify_sns: Some("arn:aws:sqs:us-east-1:123456789012:q".into()),
                    ..NotifyArgs::default()
                },
                "--notify-sns",
            ),
            (
                NotifyArgs {
                    notify_webhook: Some("ftp://example.com/SECRET".into()),
                    ..NotifyArgs::default()
                },
                "--notify-webhook",
            ),
        ];
        for (args, want) in cases {
            let err = format!("{:#}", notify_config(&args, None, &settings).unwrap_err());
            assert!(err.contains(want), "{args:?}: {err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn flags_override_the_file_which_overrides_the_preset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trailsight.toml");
        std::fs::write(
            &path,
            "[detector]\nsensitivity = \"high\"\nmin_start_count = 4\nscan_windows = [1, 10]\n\n[exclude]\napis = [\"s3.amazonaws.com:*\"]\nidentities = [\"arn:aws:iam::123456789012:user/scanner\"]\n",
        )
        .unwrap();
        let args = DetectorArgs {
            config: Some(path.clone()),
            min_start_count: Some(7),
            exclude_api: vec!["ec2.amazonaws.com:RunInstances".into()],
            ..DetectorArgs::default()
        };
        let (config, identities) = detector_config(&args).unwrap();
        assert_eq!(
            config.start_probability, 1e-4,
            "from the high preset in the file"
        );
        assert_eq!(config.min_start_count, 7, "the flag wins");
        assert_eq!(config.scan_windows, vec![1, 10]);
        assert_eq!(config.exclusions.apis.len(), 2);
        assert_eq!(
            identities,
            vec!["arn:aws:iam::123456789012:user/scanner".to_owned()]
        );
        std::fs::write(&path, "[detector]\nstart_probabilty = 0.1\n").unwrap();
        let err = detector_config(&args).unwrap_err();
        assert!(format!("{err:#}").contains("start_probabilty"), "{err:#}");
    }

    /// The event selection: flags over the config file's `[insights]`, AWS's default without
    /// either, and clear errors for unknown values.
    #[test]
    fn event_selection_from_flags_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trailsight.toml");
        std::fs::write(
            &path,
            "[insights]\nevent_categories = [\"management\", \"data\"]\ncall_rate_events = \"all\"\n",
        )
        .unwrap();
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let selection = |m: bool, d: bool, all: bool| EventSelection {
            management: m,
            data: d,
            call_rate: if all {
                CallRateScope::All
            } else {
                CallRateScope::Write
            },
        };
        let cases: [(&[&str], Option<&str>, bool, EventSelection); 5] = [
            (&[], None, false, EventSelection::default()),
            (&[], None, true, selection(true, true, true)),
            (
                &["data"],
                Some("write"),
                true,
                selection(false, true, false),
            ),
            (
                &["Management", "DATA"],
                None,
                false,
                selection(true, true, false),
            ),
            (
                &["management"],
                Some("all"),
                false,
                selection(true, false, true),
            ),
        ];
        for (categories, scope, with_file, want) in cases {
            let config = with_file.then_some(path.as_path());
            let got = event_selection(&strings(categories), scope, config).unwrap();
            assert_eq!(got, want, "{categories:?} {scope:?} {with_file}");
        }
        for (categories, scope, message) in [
            (&["insight"][..], None, "not an event category"),
            (&["management"][..], Some("reads"), "neither write nor all"),
        ] {
            let err = event_selection(&strings(categories), scope, None).unwrap_err();
            assert!(format!("{err:#}").contains(message), "{err:#}");
        }
    }

    #[test]
    fn habit_knobs_come_from_the_file_and_flags_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trailsight.toml");
        std::fs::write(
            &path,
            "[detector]\nhabit_days = 4\nhabit_jitter_minutes = 5\nclump_days = 3\n",
        )
        .unwrap();
        let file_only = DetectorArgs {
            config: Some(path.clone()),
            ..DetectorArgs::default()
        };
        let (config, _) = detector_config(&file_only).unwrap();
        assert_eq!(
            (
                config.habit_days,
                config.habit_jitter_minutes,
                config.clump_days
            ),
            (4, 5, 3)
        );
        let flag = DetectorArgs {
            habit_days: Some(0),
            ..file_only.clone()
        };
        assert_eq!(detector_config(&flag).unwrap().0.habit_days, 0);
        let flag = DetectorArgs {
            clump_days: Some(0),
            ..file_only.clone()
        };
        assert_eq!(detector_config(&flag).unwrap().0.clump_days, 0);
        let (defaults, _) = detector_config(&DetectorArgs::default()).unwrap();
        assert_eq!(
            (
                defaults.habit_days,
                defaults.habit_jitter_minutes,
                defaults.clump_days
            ),
            (5, 15, 2)
        );
        for bad in [
            DetectorArgs {
                habit_days: Some(8),
                ..DetectorArgs::default()
            },
            DetectorArgs {
                habit_jitter_minutes: Some(-1),
                ..DetectorArgs::default()
            },
            DetectorArgs {
                clump_days: Some(8),
                ..DetectorArgs::default()
            },
        ] {
            let err = detector_config(&bad).unwrap_err();
            assert!(
                format!("{err:#}").contains("habit_") || format!("{err:#}").contains("clump_days"),
                "{err:#}"
            );
        }
    }
}
