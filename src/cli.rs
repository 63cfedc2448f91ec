//! Command-line types (clap) and their conversion into a validated `AnalyzeConfig`; nothing else.

use crate::config::{self, AnalyzeConfig};
use crate::decode::DEFAULT_MAX_OBJECT_BYTES;
use crate::detect::DetectorConfig;
use crate::model::{DayRange, parse_day};
use crate::sink::{Formats, Output};
use crate::source::layout::{self, PartitionFilter};
use crate::source::{Source, local::LocalSource};
use crate::telemetry::LogFormat;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::collections::BTreeSet;
use std::path::PathBuf;

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
    /// Directory holding the CloudTrail logs ([prefix/]AWSLogs/...).
    #[arg(long, value_name = "DIR")]
    pub source: PathBuf,
    /// Directory to write Insights to (AWSLogs/.../CloudTrail-Insight/...).
    #[arg(long, value_name = "DIR")]
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
    /// Output formats (comma-separated): json (AWS's files under AWSLogs/.../CloudTrail-Insight/),
    /// parquet (Hive-partitioned under insights/, for Athena).
    #[arg(long = "format", value_enum, value_delimiter = ',', value_name = "FORMAT,..",
          default_values_t = [FormatArg::Json, FormatArg::Parquet])]
    pub formats: Vec<FormatArg>,
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
        if !self.source.is_dir() {
            bail!("--source {}: not a directory", self.source.display());
        }
        Ok(AnalyzeConfig {
            source: Source::Local(LocalSource::new(self.source)),
            output: Output::Local(self.out),
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
            formats: formats(&self.formats),
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
