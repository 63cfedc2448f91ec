//! Command-line flags and their conversion into a validated [`Config`]; nothing else.

use std::path::PathBuf;

use anyhow::{Result, bail};
use chrono::NaiveDate;
use clap::{Parser, ValueEnum};

use crate::config::{
    self, Config, DEFAULT_DUPLICATE_RATE, DEFAULT_LATE_SHARE, DEFAULT_MAX_RECORDS_PER_FILE,
    Delivery, LongTail, Preset,
};
use crate::layout::Trail;
use crate::sink::DEFAULT_GZIP_LEVEL;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PresetArg {
    /// The committed sample-data/ tree: org trail, 2 accounts x 2 regions x 9 days, 3 anomalies.
    Sample,
    /// Throughput data sized by --scale (1 = ~1 M records, ~1.5 GB JSON, 9 days).
    Bench,
    /// One account in us-east-1; shape it with the flags below.
    Custom,
    /// Detector evaluation: 3 accounts x 2 regions x 14 days with bursty routines and 16
    /// labelled scenarios per seed (see scripts/eval and docs/evaluation.md).
    Eval,
    /// Data-event evaluation: S3/Lambda data events, 1 account x 2 regions x 10 days, 6
    /// labelled data-event scenarios per region in the last 3 days (see src/data/mod.rs).
    EvalData,
}

/// Generate a realistic, deterministic CloudTrail archive (S3 layout, gzip JSON) with labelled
/// anomalies in <out>/anomalies.json.
#[derive(Debug, Parser)]
#[command(name = "trailsight-gen", version, about)]
pub struct Args {
    /// Where to write; objects land under <out>/[prefix/]AWSLogs/...
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "custom")]
    pub preset: PresetArg,
    /// Bench size: 1.0 is about one million records over 9 days.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First day (UTC), YYYY-MM-DD.
    #[arg(long)]
    pub start: Option<NaiveDate>,
    /// Number of days of events.
    #[arg(long)]
    pub days: Option<i64>,
    /// Comma-separated 12-digit account ids.
    #[arg(long, value_delimiter = ',')]
    pub accounts: Option<Vec<String>>,
    /// Comma-separated regions.
    #[arg(long, value_delimiter = ',')]
    pub regions: Option<Vec<String>>,
    /// Key prefix before AWSLogs/ (the trail's S3 key prefix).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Organization id (o-...) for an organization trail layout.
    #[arg(long, conflicts_with = "no_org_id")]
    pub org_id: Option<String>,
    /// Write an account trail layout even if the preset is an organization trail.
    #[arg(long)]
    pub no_org_id: bool,
    /// Minutes between log file deliveries per account and region.
    #[arg(long)]
    pub delivery_interval: Option<i64>,
    /// Multiplier of office-hours and machine traffic.
    #[arg(long)]
    pub volume: Option<f64>,
    /// Rarely called APIs added to each account x region, beside the catalogue's: each is a
    /// catalogued write API under a numbered name, called `--long-tail-calls-per-day` times a
    /// day on average (an organization with many short series).
    #[arg(long, default_value_t = 0)]
    pub long_tail_apis: usize,
    /// Average calls a day of each long-tail API.
    #[arg(long, default_value_t = 3.0)]
    pub long_tail_calls_per_day: f64,
    /// Fraction of records delivered twice.
    #[arg(long, default_value_t = DEFAULT_DUPLICATE_RATE)]
    pub duplicate_rate: f64,
    /// Bucket name written into digest files.
    #[arg(long, default_value = "example-org-cloudtrail")]
    pub bucket: String,
    /// Trail name used in digest file names.
    #[arg(long, default_value = "org-trail")]
    pub trail_name: String,
    /// Gzip level 0-9 (1 is about twice as fast as the default for big bench runs).
    #[arg(long, default_value_t = DEFAULT_GZIP_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub gzip_level: u32,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Inject no anomaly. With --preset eval the background is exactly that of the same seed
    /// with anomalies (the false-positive variant).
    #[arg(long)]
    pub clean: bool,
}

impl Args {
    /// Validates the flags and resolves them against the preset's defaults.
    pub fn into_config(self) -> Result<Config> {
        let preset = match self.preset {
            PresetArg::Sample => Preset::Sample,
            PresetArg::Bench => Preset::Bench { scale: self.scale },
            PresetArg::Custom => Preset::Custom,
            PresetArg::Eval => Preset::Eval,
            PresetArg::EvalData => Preset::EvalData,
        };
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            bail!("--scale must be a positive number, got {}", self.scale);
        }
        let defaults = config::defaults(preset, self.seed);
        let regions = self.regions.unwrap_or(defaults.regions);
        let accounts = match self.accounts {
            Some(ids) => ids
                .iter()
                .map(|id| config::generated_account(self.seed, id, &regions))
                .collect(),
            None => defaults.accounts,
        };
        validate_accounts(&accounts.iter().map(|a| a.id.clone()).collect::<Vec<_>>())?;
        validate_regions(&regions)?;
        let days = self.days.unwrap_or(defaults.days);
        if !(1..=366).contains(&days) {
            bail!("--days must be between 1 and 366, got {days}");
        }
        let interval = self.delivery_interval.unwrap_or(defaults.interval);
        if !(1..=1440).contains(&interval) {
            bail!("--delivery-interval must be 1..=1440 minutes, got {interval}");
        }
        if !(0.0..=0.5).contains(&self.duplicate_rate) {
            bail!(
                "--duplicate-rate must be within 0..=0.5, got {}",
                self.duplicate_rate
            );
        }
        let volume = self.volume.unwrap_or(defaults.volume);
        if !(volume >= 0.0 && volume.is_finite()) {
            bail!("--volume must be a non-negative number, got {volume}");
        }
        if !(self.long_tail_calls_per_day >= 0.0 && self.long_tail_calls_per_day <= 1440.0) {
            bail!(
                "--long-tail-calls-per-day must be within 0..=1440, got {}",
                self.long_tail_calls_per_day
            );
        }
        if self.long_tail_apis > 100_000 {
            bail!(
                "--long-tail-apis must be at most 100000, got {}",
                self.long_tail_apis
            );
        }
        let org_id = if self.no_org_id {
            None
        } else {
            self.org_id.or(defaults.org_id)
        };
        if let Some(org) = &org_id {
            validate_org_id(org)?;
        }
        let span = config::span_of(self.start.unwrap_or(defaults.start), days);
        let anomalies = if self.clean {
            Vec::new()
        } else {
            config::plan_anomalies(preset, self.seed, span, &accounts, &regions, volume)
        };
        Ok(Config {
            preset,
            seed: self.seed,
            out: self.out,
            trail: Trail {
                bucket: self.bucket,
                prefix: self.prefix.filter(|p| !p.trim_matches('/').is_empty()),
                org_id,
                name: self.trail_name,
            },
            start: span.start,
            end: span.end,
            accounts,
            regions,
            volume,
            long_tail: LongTail {
                apis: self.long_tail_apis,
                per_day: self.long_tail_calls_per_day,
            },
            delivery: Delivery {
                interval,
                late_share: DEFAULT_LATE_SHARE,
                duplicate_rate: self.duplicate_rate,
            },
            max_records_per_file: DEFAULT_MAX_RECORDS_PER_FILE,
            gzip_level: self.gzip_level,
            anomalies,
            clean: self.clean,
            threads: self
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1),
        })
    }
}

fn validate_accounts(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        bail!("--accounts needs at least one account id");
    }
    for id in ids {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            bail!("account id {id:?} is not 12 digits");
        }
    }
    Ok(())
}

fn validate_regions(regions: &[String]) -> Result<()> {
    if regions.is_empty() {
        bail!("--regions needs at least one region");
    }
    for region in regions {
        let ok = region.split('-').count() >= 3
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            bail!("region {region:?} does not look like an AWS region (e.g. us-east-1)");
        }
    }
    Ok(())
}

fn validate_org_id(org: &str) -> Result<()> {
    let body = org.strip_prefix("o-").unwrap_or("");
    if !(10..=32).contains(&body.len())
        || !body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        bail!(
            "--org-id {org:?} is not an organization id (o- then 10-32 lower-case letters or digits)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BENCH_VOLUME;

    fn parse(args: &[&str]) -> Result<Config> {
        let mut argv = vec!["trailsight-gen", "--out", "/tmp/x"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)?.into_config()
    }

    #[test]
    fn sample_preset_resolves() {
        let config = parse(&["--preset", "sample"]).unwrap();
        assert_eq!(config.accounts.len(), 2);
        assert_eq!(config.regions, ["us-east-1", "eu-west-1"]);
        assert_eq!(config.trail.org_id.as_deref(), Some("o-a1b2c3d4e5"));
        assert_eq!(config.delivery.interval, 60);
        assert_eq!(config.anomalies.len(), 3);
        assert_eq!(config.end - config.start, 9 * 1440);
    }

    #[test]
    fn bad_flags_are_rejected() {
        let cases: &[&[&str]] = &[
            &["--accounts", "1234"],
            &["--regions", "mars"],
            &["--days", "0"],
            &["--org-id", "org-1"],
            &["--delivery-interval", "0"],
            &["--preset", "bench", "--scale", "0"],
        ];
        for args in cases {
            assert!(parse(args).is_err(), "{args:?} should be rejected");
        }
    }

    #[test]
    fn bench_scale_sets_accounts_and_volume() {
        let config = parse(&["--preset", "bench", "--scale", "0.5"]).unwrap();
        assert_eq!(config.accounts.len(), 4);
        assert_eq!(config.regions.len(), 3);
        assert!((config.volume - BENCH_VOLUME).abs() < 1e-9);
        assert!(config.anomalies.len() >= 3);
    }
}
