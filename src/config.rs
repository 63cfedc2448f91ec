//! The validated configuration of a run, built from the stages' own parameter types. The CLI
//! produces it; the pipeline consumes it; nothing else sees command-line arguments.

use crate::detect::DetectorConfig;
use crate::model::{DayRange, EventSelection};
use crate::sink::Sink;
use crate::sink::notify::NotifyConfig;
use crate::source::Source;
use crate::source::layout::PartitionFilter;
use crate::state::StateStore;
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// Objects (or batches of small local files) read at once by default from a directory.
pub const DEFAULT_FETCH_CONCURRENCY: usize = 16;
/// Objects fetched at once by default from S3: each GetObject waits tens of milliseconds for
/// its first byte and CloudTrail objects are small, so many requests in flight hide that wait
/// (docs/benchmarks.md: 16, 32, 64, 128, 256 measured). Memory is bounded by
/// `max_bytes_in_flight`, not by this.
pub const DEFAULT_S3_FETCH_CONCURRENCY: usize = 128;
/// Listing requests (and output writes) in flight by default.
pub const DEFAULT_LIST_CONCURRENCY: usize = 8;
/// Listing requests (and output writes) in flight by default when reading from S3: a day's
/// folders (two per partition) are then listed in one round of requests, not several.
pub const DEFAULT_S3_LIST_CONCURRENCY: usize = 32;

/// Everything `analyze` needs.
#[derive(Debug, Clone)]
pub struct AnalyzeConfig {
    pub source: Source,
    /// Where and in which formats the output is written.
    pub output: Sink,
    /// The days Insights may start on (`--from`, `--to`); an open end is the first or last
    /// delivery day found.
    pub days: DaysAsked,
    pub filter: PartitionFilter,
    pub detector: DetectorConfig,
    /// Callers whose events are dropped before counting: exact attributed ARNs, or prefixes
    /// ending in `*`.
    pub excluded_identities: Vec<String>,
    pub fetch_concurrency: usize,
    /// Compressed bytes fetched from S3 and not yet decoded, at most (`store::budget`).
    pub max_bytes_in_flight: u64,
    pub list_concurrency: usize,
    /// Objects decoded at once: the CPU threads given to gunzip and parsing.
    pub decode_threads: usize,
    /// Largest object accepted, stored or decompressed.
    pub max_object_bytes: u64,
    /// Any unreadable object, bad record or ignored file fails the run before output is written.
    pub strict: bool,
    /// Where progress is kept between days and runs (required by nightly runs).
    pub state: Option<StateStore>,
    /// Runs that may fail to read a stuck partition's objects before they are given up
    /// (quarantined) and the partition's Insights are written without them.
    pub quarantine_after_runs: u32,
    /// Where new Insights and findings are published (`None`: nowhere; the ledger is kept).
    pub notify: Option<NotifyConfig>,
    /// Which events are analysed: categories and the call-rate scope.
    pub selection: EventSelection,
}

/// The days asked for: `--from` and `--to`, each optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaysAsked {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DaysAsked {
    /// Whether both ends are given (no need to look for delivery days).
    pub fn range(self) -> Option<DayRange> {
        Some(DayRange::new(self.from?, self.to?))
    }

    /// The days to analyse, given the first and last delivery days found (`None`: no day
    /// folder at all): an end not asked for is the one found. `None` when nothing is left
    /// (no folder, or every folder outside the days asked for).
    pub fn resolve(self, found: Option<DayRange>) -> Option<DayRange> {
        if let Some(range) = self.range() {
            return Some(range);
        }
        let found = found?;
        let first = self.from.unwrap_or(found.first);
        let last = self.to.unwrap_or(found.last);
        (first <= last).then(|| DayRange::new(first, last))
    }
}

/// Runs that retry an object that cannot be fetched before it is quarantined, by default.
pub const DEFAULT_QUARANTINE_AFTER_RUNS: u32 = 3;

/// When a nightly run happens and what it may finalize.
#[derive(Debug, Clone, Copy)]
pub struct NightlyPlan {
    /// The wall-clock time of the run (read by `main`, passed in).
    pub as_of: DateTime<Utc>,
    /// A day is analysed only once this many minutes of the next day have passed, so records
    /// delivered late into the next day's folder are in.
    pub finalize_after_minutes: i64,
    /// The first day to analyse when there is no state yet (default: the last complete day).
    pub first_day: Option<NaiveDate>,
}

impl NightlyPlan {
    /// The last day that may be analysed now.
    pub fn last_complete_day(&self) -> NaiveDate {
        let settled = self.as_of - Duration::minutes(self.finalize_after_minutes);
        settled.date_naive() - Duration::days(1)
    }
}

/// The CPU threads available to this process.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_day;

    #[test]
    fn an_open_end_is_the_first_or_last_delivery_day_found() {
        let day = |t: &str| parse_day(t).unwrap();
        let range = |a: &str, b: &str| Some(DayRange::new(day(a), day(b)));
        let found = range("2019-10-31", "2019-11-09");
        let cases = [
            // (--from, --to, days found, expected)
            (None, None, found, found),
            (None, None, None, None),
            (
                Some("2019-11-03"),
                None,
                found,
                range("2019-11-03", "2019-11-09"),
            ),
            (
                None,
                Some("2019-11-03"),
                found,
                range("2019-10-31", "2019-11-03"),
            ),
            (
                Some("2019-11-02"),
                Some("2019-11-04"),
                found,
                range("2019-11-02", "2019-11-04"),
            ),
            // Both given: the days asked for, found or not (the run then says nothing is there).
            (
                Some("2030-01-01"),
                Some("2030-01-02"),
                found,
                range("2030-01-01", "2030-01-02"),
            ),
            // One end past everything found: nothing to analyse.
            (Some("2030-01-01"), None, found, None),
            (None, Some("2001-01-01"), found, None),
            (Some("2019-11-03"), None, None, None),
        ];
        for (from, to, found, expected) in cases {
            let asked = DaysAsked {
                from: from.map(day),
                to: to.map(day),
            };
            assert_eq!(asked.resolve(found), expected, "{from:?} {to:?} {found:?}");
        }
    }
}
