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
use trailsight::cli::{self, Cli, Command};
use trailsight::pipeline;
use trailsight::telemetry::{self, LogFormat, Verbosity, stderr};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(e),
    };
    let format: LogFormat = cli.log_format.into();
    trailsight::stop::install();
    telemetry::init_tracing(format, Verbosity::from_flags(cli.quiet, cli.verbose));
    telemetry::progress::show_on_terminal(format, cli.quiet);
    if cli.stall_warn_secs > 0 {
        telemetry::waiting::watch(std::time::Duration::from_secs(cli.stall_warn_secs));
    }
    let outcome = run(cli);
    telemetry::progress::finish();
    match outcome {
        Ok(code) => code,
        Err(e) => {
            stderr::print_error(format, &format!("{e:#}"));
            match trailsight::stop::requested() {
                Some(signal) => ExitCode::from(trailsight::stop::exit_code(signal)),
                None => ExitCode::from(2),
            }
        }
    }
}

/// A command line clap refused: its message (and usage) on stderr, as one JSON line when the
/// command line or `TRAILSIGHT_LOG_FORMAT` asks for JSON logs; exit 2. `--help` and
/// `--version` print on stdout and exit 0, as clap does.
fn argument_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() {
        e.exit();
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let env = std::env::var("TRAILSIGHT_LOG_FORMAT").ok();
    match cli::log_format_asked(&args, env.as_deref()) {
        LogFormat::Json => {
            let text = e.render().to_string();
            stderr::print_error(LogFormat::Json, text.trim_end());
            ExitCode::from(2)
        }
        LogFormat::Text => e.exit(),
    }
}

/// Text made from the command line itself (completions, the man page), on stdout.
fn print_or_fail(format: LogFormat, text: anyhow::Result<Vec<u8>>) -> ExitCode {
    use std::io::Write;
    let written = text.and_then(|bytes| Ok(std::io::stdout().lock().write_all(&bytes)?));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            stderr::print_error(format, &format!("{e:#}"));
            ExitCode::from(2)
        }
    }
}

/// glibc's malloc, tuned so memory freed goes back:
/// - New threads get their own arenas, up to eight per core, and each keeps its own free memory.
///   The runtime's blocking threads come and go over a long run, so its memory crept up with the
///   number of days read (measured: 82 MiB over 9 days, 95 MiB over 36; with one arena per
///   core, 79 MiB for both).
/// - A block of 1 MiB or more is mapped on its own, and unmapped when freed. By default the
///   threshold rises to the largest such block freed (up to 32 MiB), and after a day's event-ID
///   table was freed the next ones came from the arena, which kept their memory: the
///   organization backfill's peak RSS was 5 MiB (3 %) higher.
///
/// Set before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    let cores = trailsight::config::available_threads().max(2);
    let cores = i32::try_from(cores).unwrap_or(i32::MAX);
    // SAFETY: `mallopt` only sets tuning parameters of the allocator; no thread runs yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    tune_malloc();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = run_on(&runtime, cli, started);
    // Dropping the runtime would wait for its blocking threads, and one may be stuck for good
    // (the listing of a mount that stopped answering, left behind by a stop): the run is over.
    runtime.shutdown_background();
    result
}

fn run_on(
    runtime: &tokio::runtime::Runtime,
    cli: Cli,
    started: Instant,
) -> anyhow::Result<ExitCode> {
    let format: LogFormat = cli.log_format.into();
    let (outcome, summary_json) = match cli.command {
        Command::Analyze(args) => {
            let summary_json = args.run.summary_json.clone();
            let config = args.into_config()?;
            (runtime.block_on(pipeline::analyze(&config)), summary_json)
        }
        Command::Nightly(args) => {
            let summary_json = args.run.summary_json.clone();
            let (config, plan) = args.into_config(chrono::Utc::now())?;
            (
                runtime.block_on(pipeline::nightly(&config, plan)),
                summary_json,
            )
        }
        Command::Report(args) => {
            let config = args.into_config()?;
            let written = runtime.block_on(pipeline::report::report(&config))?;
            telemetry::progress::finish();
            if !cli.quiet {
                stderr::print_summary(format, "report summary", &written.to_table(), &written)?;
            }
            return Ok(ExitCode::from(u8::from(written.skipped_total() > 0)));
        }
        Command::Completions(args) => {
            return Ok(print_or_fail(format, cli::completions(args.shell)));
        }
        Command::Man => return Ok(print_or_fail(format, cli::man_page())),
    };
    let mut summary = match outcome {
        Ok(summary) => summary,
        // A monitor reads --summary-json whatever the exit code: it gets what the run did and
        // why it failed, not the last run's file.
        Err(pipeline::Failed { error, mut summary }) => {
            summary.finish(started);
            summary.error = Some(telemetry::redact_secrets(&format!("{error:#}")));
            if let Some(path) = summary_json
                && let Err(e) = write_summary_json(&path, &summary)
            {
                tracing::warn!("{e:#}");
            }
            return Err(error);
        }
    };
    summary.finish(started);
    telemetry::progress::finish();
    if !cli.quiet {
        stderr::print_summary(format, "run summary", &summary.to_table(), &summary)?;
    }
    if let Some(path) = summary_json {
        write_summary_json(&path, &summary)?;
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// `--summary-json`: the summary, pretty, to `path` or stdout (`-`).
fn write_summary_json(
    path: &std::path::Path,
    summary: &telemetry::RunSummary,
) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(summary)?;
    if cli::is_stdout(path) {
        use std::io::Write;
        json.push(b'\n');
        std::io::stdout()
            .lock()
            .write_all(&json)
            .map_err(|e| anyhow::anyhow!("cannot write the summary to stdout: {e}"))
    } else {
        std::fs::write(path, json)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }
}
