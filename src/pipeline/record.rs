//! Leaving the record of a run under its output (`sink::runs`): at the end of every `analyze`
//! and `nightly`, whatever the exit code, and after a fatal error when the output can still be
//! written. A record that cannot be written is warned about; it never changes the run's
//! outcome, and it waits at most `RECORD_TIMEOUT` (a stopped run still exits promptly).

use crate::config::AnalyzeConfig;
use crate::telemetry::{RunSummary, redact_secrets};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// The longest a run waits for its record to be written.
pub const RECORD_TIMEOUT: Duration = Duration::from_secs(10);

/// The summary of a run that failed: what it had done (`seen`, when it got that far), else
/// only where it read and wrote.
pub fn summary_so_far(config: &AnalyzeConfig, seen: Option<RunSummary>) -> RunSummary {
    seen.unwrap_or_else(|| RunSummary {
        source: config.source.describe(),
        output: config.output.describe(),
        ..RunSummary::default()
    })
}

/// When a run started, for its record.
pub struct Recorder {
    command: &'static str,
    started: DateTime<Utc>,
    instant: Instant,
}

impl Recorder {
    pub fn start(command: &'static str) -> Recorder {
        Recorder {
            command,
            started: Utc::now(),
            instant: Instant::now(),
        }
    }

    /// Write the record of the run: its summary when it got one (`seen` holds it after a
    /// failure that happened mid-run), its exit code and its error.
    pub async fn finish(
        self,
        config: &AnalyzeConfig,
        seen: Option<RunSummary>,
        result: &anyhow::Result<RunSummary>,
    ) {
        let (summary, exit_code, error) = match result {
            Ok(summary) => (summary.clone(), summary.exit_code(), None),
            Err(e) => (
                summary_so_far(config, seen),
                crate::stop::requested().map_or(2, crate::stop::exit_code),
                Some(redact_secrets(&format!("{e:#}"))),
            ),
        };
        let mut summary = summary;
        summary.finish(self.instant);
        let write = config
            .output
            .write_run(self.command, self.started, exit_code, error, &summary);
        match tokio::time::timeout(RECORD_TIMEOUT, write).await {
            Ok(Ok(key)) => tracing::info!(record = key, "run summary written to {key}"),
            Ok(Err(e)) => {
                tracing::warn!("the run summary could not be written under the output: {e:#}")
            }
            Err(_) => tracing::warn!(
                "the run summary was not written under the output within {} s",
                RECORD_TIMEOUT.as_secs()
            ),
        }
    }
}
