//! The `trailsight` binary: parse arguments, set up logging, run, print the summary, and map
//! the outcome to an exit code:
//! - 0: every object was read and the output written;
//! - 1: the output was written, but some objects could not be read (named in the summary);
//!   when an object could not be fetched at all, its account and region were withheld (not
//!   written, named in the summary) and a later run redoes them;
//! - 2: the run failed (bad arguments, unreadable source, unwritable output, `--strict`).

use clap::Parser;
use std::process::ExitCode;
use trailsight::cli::{Cli, Command};
use trailsight::{pipeline, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing(cli.log_format.into(), cli.quiet);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trailsight: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (summary, summary_json) = match cli.command {
        Command::Analyze(args) => {
            let summary_json = args.run.summary_json.clone();
            let config = args.into_config()?;
            (runtime.block_on(pipeline::analyze(&config))?, summary_json)
        }
        Command::Nightly(args) => {
            let summary_json = args.run.summary_json.clone();
            let as_of = args.as_of()?.unwrap_or_else(chrono::Utc::now);
            let (config, first_day, finalize_after_minutes) = args.into_config()?;
            let plan = pipeline::NightlyPlan {
                as_of,
                finalize_after_minutes,
                first_day,
            };
            (
                runtime.block_on(pipeline::nightly(&config, plan))?,
                summary_json,
            )
        }
    };
    if !cli.quiet {
        eprint!("{}", summary.to_table());
    }
    if let Some(path) = summary_json {
        let json = serde_json::to_vec_pretty(&summary)?;
        std::fs::write(&path, json)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(if summary.skipped_total() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
