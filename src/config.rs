//! The validated configuration of a run, built from the stages' own parameter types. The CLI
//! produces it; the pipeline consumes it; nothing else sees command-line arguments.

use crate::detect::DetectorConfig;
use crate::model::{DayRange, EventSelection};
use crate::sink::{Formats, Output};
use crate::source::Source;
use crate::source::layout::PartitionFilter;
use crate::state::StateStore;

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
    pub output: Output,
    /// The days Insights may start on; `None` means every delivery day found.
    pub days: Option<DayRange>,
    pub filter: PartitionFilter,
    pub detector: DetectorConfig,
    /// Callers whose events are dropped before counting: exact attributed ARNs, or prefixes
    /// ending in `*`.
    pub excluded_identities: Vec<String>,
    pub fetch_concurrency: usize,
    /// Compressed bytes fetched from S3 and not yet decoded, at most (`source::s3::budget`).
    pub max_bytes_in_flight: u64,
    pub list_concurrency: usize,
    /// Objects decoded at once: the CPU threads given to gunzip and parsing.
    pub decode_threads: usize,
    /// Largest object accepted, stored or decompressed.
    pub max_object_bytes: u64,
    /// Any unreadable object, bad record or ignored file fails the run before output is written.
    pub strict: bool,
    /// The output formats written (JSON and Parquet by default).
    pub formats: Formats,
    /// Where progress is kept between days and runs (required by nightly runs).
    pub state: Option<StateStore>,
    /// Which events are analysed: categories and the call-rate scope.
    pub selection: EventSelection,
}

impl AnalyzeConfig {
    /// `I/N` when this run is one shard.
    pub fn shard_label(&self) -> Option<String> {
        self.filter.shard.map(|s| s.label())
    }
}

/// The CPU threads available to this process.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
