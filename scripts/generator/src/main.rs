//! `trailsight-gen` binary: parse flags, generate, print a summary. Exit code 0 on success,
//! 1 on any error (bad flags exit with clap's code 2).

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use trailsight_gen::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.into_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("trailsight-gen: {err:#}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match trailsight_gen::run(&config) {
        Ok(summary) => {
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "trailsight-gen: {} streams, {} records (+{} duplicate deliveries), {} log files, {} digests, \
                 {:.1} MB JSON -> {:.1} MB gzip, {} anomalies, {:.1}s ({:.0} records/s, {:.1} MB/s JSON) -> {}",
                summary.streams,
                summary.records,
                summary.duplicates,
                summary.log_files,
                summary.digest_files,
                summary.json_bytes as f64 / 1e6,
                summary.gzip_bytes as f64 / 1e6,
                summary.anomalies,
                secs,
                summary.records as f64 / secs,
                summary.json_bytes as f64 / 1e6 / secs,
                config.out.display(),
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("trailsight-gen: {err:#}");
            ExitCode::FAILURE
        }
    }
}
