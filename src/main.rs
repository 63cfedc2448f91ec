//! The `trailsight` binary: parse arguments, set up logging, run, print the summary, and map
//! the outcome to an exit code:
//! - 0: every object was read and the output written;
//! - 1: the output was written, but some objects could not be read (named in the summary);
//! - 2: the run failed (bad arguments, unreadable source, unwritable output, `--strict`, no log
//!   object in the source and days asked for);
//! - 3: some partitions are withheld (their logs could not all be read; a later run redoes them);
//! - 4: a delivery gap (a nightly day for which no partition delivered any log object);
//! - 5: a notification could not be delivered;
//! - 130, 143: stopped by SIGINT, SIGTERM (`stop`): no partial day written, the lock released.
//!
//! `report` uses the same codes: 1 when some Insight files or log objects could not be read.

use clap::Parser;
use std::process::ExitCode;
use std::time::Instant;
use trailsight::cli::{Cli, Command};
use trailsight::{pipeline, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    trailsight::stop::install();
    telemetry::init_tracing(cli.log_format.into(), cli.quiet);
    telemetry::progress::show_on_terminal(cli.log_format.into(), cli.quiet);
    if cli.stall_warn_secs > 0 {
        telemetry::waiting::watch(std::time::Duration::from_secs(cli.stall_warn_secs));
    }
    let outcome = run(cli);
    telemetry::progress::finish();
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trailsight: error: {e:#}");
            match trailsight::stop::requested() {
                Some(signal) => ExitCode::from(trailsight::stop::exit_code(signal)),
                None => ExitCode::from(2),
            }
        }
    }
}

/// glibc gives new threads their own malloc arenas, up to eight per core, and each keeps its own
/// free memory. The runtime's blocking threads come and go over a long run, so its memory crept
/// up with the number of days read (measured: 82 MiB over 9 days, 95 MiB over 36; with one
/// arena per core, 79 MiB for both). Set before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn one_malloc_arena_per_core() {
    let cores = trailsight::config::available_threads().max(2);
    let cores = i32::try_from(cores).unwrap_or(i32::MAX);
    // SAFETY: `mallopt` only sets a tuning parameter of the allocator; no thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn one_malloc_arena_per_core() {}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    one_malloc_arena_per_core();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (mut summary, summary_json) = match cli.command {
        Command::Analyze(args) => {
            let summary_json = args.run.summary_json.clone();
            let config = args.into_config()?;
            (runtime.block_on(pipeline::analyze(&config))?, summary_json)
        }
        Command::Nightly(args) => {
            let summary_json = args.run.summary_json.clone();
            let (config, plan) = args.into_config(chrono::Utc::now())?;
            (
                runtime.block_on(pipeline::nightly(&config, plan))?,
                summary_json,
            )
        }
        Command::Report(args) => {
            let config = args.into_config()?;
            let written = runtime.block_on(pipeline::report::report(&config))?;
            telemetry::progress::finish();
            if !cli.quiet {
                eprint!("{}", written.to_table());
            }
            return Ok(ExitCode::from(u8::from(written.skipped_total() > 0)));
        }
    };
    summary.finish(started);
    telemetry::progress::finish();
    if !cli.quiet {
        eprint!("{}", summary.to_table());
    }
    if let Some(path) = summary_json {
        let json = serde_json::to_vec_pretty(&summary)?;
        std::fs::write(&path, json)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(ExitCode::from(summary.exit_code()))
}
