//! Progress on a terminal for long runs: one line on stderr with the day being analysed,
//! objects listed and read, bytes read, records per second and an ETA (indicatif, redrawn at
//! most a few times a second).
//!
//! Nothing is drawn unless stderr is a terminal, logs are plain text and `--quiet` is off, so
//! cron mails, CI logs, tests and log shippers never see it. The pipeline reports through the
//! free functions below (once per object, never per record); they do nothing while no bar is
//! shown. Log lines reach stderr through `StderrAroundProgress`, which lifts the bar while a
//! line prints, so the two never garble each other.
//!
//! The ETA is over objects: the bar's length is the objects listed so far plus, for the days
//! not listed yet, the objects of an average day (the first listing also holds the baseline
//! days). Not over bytes: a local listing does not ask its files for their sizes.

use super::LogFormat;
use crate::model::{BASELINE_DAYS, ObjectRef};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Redraws per second at most.
const REFRESH_PER_SECOND: u8 = 8;

static TRACKER: Mutex<Option<Tracker>> = Mutex::new(None);

/// Show progress from now on if stderr is a terminal and the logs are for people. Says whether
/// it does.
pub fn show_on_terminal(format: LogFormat, quiet: bool) -> bool {
    if quiet || format != LogFormat::Text || !std::io::stderr().is_terminal() {
        return false;
    }
    let bar = ProgressBar::with_draw_target(
        Some(1),
        ProgressDrawTarget::stderr_with_hz(REFRESH_PER_SECOND),
    );
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:20}] {percent:>3}% ETA {eta:<3} {wide_msg}")
            .expect("a valid progress template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    *lock() = Some(Tracker::new(bar));
    true
}

/// The run will analyse this many days (for the ETA).
pub fn plan_days(days: u64) {
    update(|t| t.days_total = days);
}

/// Analysis of a day begins.
pub fn day(day: chrono::NaiveDate) {
    update(|t| {
        t.days_started += 1;
        t.day = Some(day);
        t.doing = None;
    });
}

/// Objects listed and about to be read.
pub fn listed(objects: &[ObjectRef]) {
    update(|t| {
        if t.listings == 0 {
            t.first_listing_objects = objects.len() as u64;
        }
        t.listings += 1;
        t.objects_listed += objects.len() as u64;
    });
}

/// One object done (read, or skipped): its bytes and the records it held.
pub fn object_done(bytes: u64, records: u64) {
    update(|t| {
        t.objects_read += 1;
        t.bytes_read += bytes;
        t.records += records;
    });
}

/// What the run is doing now, when it is not reading (detecting, writing, drawing).
pub fn doing(what: &str) {
    update(|t| t.doing = Some(what.to_owned()));
}

/// Remove the bar (at the end of a run, or before an error is printed).
pub fn finish() {
    if let Some(tracker) = lock().take() {
        tracker.bar.finish_and_clear();
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Tracker>> {
    TRACKER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn update(change: impl FnOnce(&mut Tracker)) {
    if let Some(tracker) = lock().as_mut() {
        change(tracker);
        tracker.redraw();
    }
}

/// What the bar shows.
struct Tracker {
    bar: ProgressBar,
    started: Instant,
    days_total: u64,
    days_started: u64,
    day: Option<chrono::NaiveDate>,
    listings: u64,
    first_listing_objects: u64,
    objects_listed: u64,
    objects_read: u64,
    bytes_read: u64,
    records: u64,
    doing: Option<String>,
}

impl Tracker {
    fn new(bar: ProgressBar) -> Tracker {
        Tracker {
            bar,
            started: Instant::now(),
            days_total: 0,
            days_started: 0,
            day: None,
            listings: 0,
            first_listing_objects: 0,
            objects_listed: 0,
            objects_read: 0,
            bytes_read: 0,
            records: 0,
            doing: None,
        }
    }

    fn redraw(&mut self) {
        self.bar.set_length(self.estimated_total_objects());
        self.bar.set_position(self.objects_read);
        self.bar.set_message(self.message());
    }

    /// Objects listed, plus an average day for every day not listed yet.
    fn estimated_total_objects(&self) -> u64 {
        let listed_days = self.days_started.min(self.days_total);
        let remaining = self.days_total - listed_days;
        if remaining == 0 || self.listings == 0 {
            return self.objects_listed.max(self.objects_read).max(1);
        }
        let per_day = if self.listings > 1 {
            (self.objects_listed - self.first_listing_objects) / (self.listings - 1)
        } else {
            self.first_listing_objects / (BASELINE_DAYS as u64 + 2)
        };
        self.objects_listed + remaining * per_day
    }

    fn message(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let mut parts = Vec::new();
        if let Some(day) = self.day {
            parts.push(if self.days_total > 0 {
                format!("day {}/{} ({day})", self.days_started, self.days_total)
            } else {
                format!("{day}")
            });
        }
        parts.push(format!(
            "objects {}/{}",
            self.objects_read, self.objects_listed
        ));
        parts.push(format!("{} read", HumanBytes(self.bytes_read)));
        parts.push(format!(
            "{} records, {:.0}/s",
            self.records,
            self.records as f64 / seconds
        ));
        if let Some(doing) = &self.doing
            && self.objects_read >= self.objects_listed
        {
            parts.push(doing.clone());
        }
        parts.join(" · ")
    }
}

/// The tracing writer: stderr, with the progress bar lifted while a log line prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrAroundProgress;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrAroundProgress {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One log event, written to stderr in one piece when dropped, cleared of anything that looks
/// like a credential (`redact_secrets`) on the way.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let line = super::stderr::redact_line(&String::from_utf8_lossy(&self.0));
        let write = || {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        };
        match lock().as_ref() {
            Some(tracker) => tracker.bar.suspend(write),
            None => write(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(size: u64) -> ObjectRef {
        ObjectRef::single("", "", size)
    }

    #[test]
    fn the_eta_counts_days_not_listed_yet_at_an_average_day() {
        let mut t = Tracker::new(ProgressBar::hidden());
        t.days_total = 3;
        // Day 1 lists its folder, the next one, and the 7 baseline days: 9 folders of 100.
        t.days_started = 1;
        t.listings = 1;
        t.first_listing_objects = 900;
        t.objects_listed = 900;
        assert_eq!(t.estimated_total_objects(), 900 + 2 * 100);
        // Day 2 lists one new folder of 150: that is the average day now.
        t.days_started = 2;
        t.listings = 2;
        t.objects_listed = 1050;
        assert_eq!(t.estimated_total_objects(), 1050 + 150);
        t.days_started = 3;
        assert_eq!(t.estimated_total_objects(), 1050);
    }

    #[test]
    fn the_message_names_objects_bytes_and_records_per_second() {
        let mut t = Tracker::new(ProgressBar::hidden());
        t.days_total = 9;
        t.days_started = 2;
        t.day = chrono::NaiveDate::from_ymd_opt(2019, 11, 7);
        t.objects_listed = 10;
        t.objects_read = 4;
        t.bytes_read = 2048;
        t.records = 100;
        let message = t.message();
        for part in [
            "day 2/9 (2019-11-07)",
            "objects 4/10",
            "2.00 KiB read",
            "100 records",
            "/s",
        ] {
            assert!(message.contains(part), "{part:?} in {message:?}");
        }
    }

    #[test]
    fn nothing_is_shown_off_a_terminal() {
        // Test output is captured, so stderr is not a terminal here.
        if !std::io::stderr().is_terminal() {
            assert!(!show_on_terminal(LogFormat::Text, false));
        }
        assert!(!show_on_terminal(LogFormat::Json, false));
        assert!(!show_on_terminal(LogFormat::Text, true));
        listed(&[object(10)]);
        object_done(10, 5);
        finish();
    }
}
