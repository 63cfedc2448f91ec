//! What went wrong with an input object, in the words the run summary, the log and the
//! bad-objects report use: why an object was skipped (`SkipReason`), and the named problem
//! objects themselves. Stages produce these; `telemetry` counts them and `sink` writes them.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Why a log object (or a day folder) was not read. `as_str` is the stable text of the summary's
/// `objects_skipped` keys and of the bad-objects report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    NotGzip,
    TruncatedGzip,
    CorruptGzip,
    /// Larger than `--max-object-bytes`, stored or decompressed: a retry cannot help.
    OverSizeLimit,
    InvalidJson,
    NotCloudTrailLog,
    /// Replaced by a FIFO, socket or device since it was listed.
    NotARegularFile,
    /// The bytes could not be fetched (after the store's retries): a later run retries it.
    FetchFailed,
    /// A day folder could not be listed (after the retries): a later run retries it.
    ListFailed,
    /// The decoder stopped unexpectedly on this object (a bug): only this object is lost.
    DecoderCrashed,
    /// Could not be fetched (or its folder listed) by several runs in a row: given up, so its
    /// partition's Insights are written without it.
    Quarantined,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NotGzip => "not gzip",
            SkipReason::TruncatedGzip => "truncated gzip",
            SkipReason::CorruptGzip => "corrupt gzip",
            SkipReason::OverSizeLimit => "over the size limit",
            SkipReason::InvalidJson => "invalid JSON",
            SkipReason::NotCloudTrailLog => "not a CloudTrail log file",
            SkipReason::NotARegularFile => "not a regular file",
            SkipReason::FetchFailed => "fetch failed",
            SkipReason::ListFailed => "list failed",
            SkipReason::DecoderCrashed => "decoder crashed",
            SkipReason::Quarantined => "quarantined",
        }
    }

    /// Whether the object's records may still exist and be readable by a later run: its
    /// partition's Insights are then withheld rather than written without them.
    pub fn is_transient(self) -> bool {
        matches!(self, SkipReason::FetchFailed | SkipReason::ListFailed)
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why one object could not be read: the reason and the error's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFailure {
    pub reason: SkipReason,
    pub detail: String,
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// An object that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedObject {
    pub object: String,
    pub reason: String,
    pub detail: String,
}

/// An object that was read but held records that could not be used, counted by reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectBadRecords {
    pub object: String,
    /// Every record of the object.
    pub records: u64,
    pub bad_records: BTreeMap<String, u64>,
}

/// A file in a log folder that was not read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredFile {
    pub object: String,
    pub reason: String,
}

/// The problem objects of one analysed day's step, as the bad-objects report lists them.
#[derive(Debug, Clone, Copy, Default)]
pub struct DayProblems<'a> {
    pub skipped: &'a [SkippedObject],
    pub bad_records: &'a [ObjectBadRecords],
    pub ignored: &'a [IgnoredFile],
}

impl DayProblems<'_> {
    pub fn is_empty(&self) -> bool {
        self.skipped.is_empty() && self.bad_records.is_empty() && self.ignored.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fetch_and_list_failures_are_transient() {
        let all = [
            SkipReason::NotGzip,
            SkipReason::TruncatedGzip,
            SkipReason::CorruptGzip,
            SkipReason::OverSizeLimit,
            SkipReason::InvalidJson,
            SkipReason::NotCloudTrailLog,
            SkipReason::NotARegularFile,
            SkipReason::FetchFailed,
            SkipReason::ListFailed,
            SkipReason::DecoderCrashed,
            SkipReason::Quarantined,
        ];
        let texts: std::collections::BTreeSet<&str> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(texts.len(), all.len(), "every reason has its own text");
        for reason in all {
            assert_eq!(
                reason.is_transient(),
                matches!(reason, SkipReason::FetchFailed | SkipReason::ListFailed),
                "{reason}"
            );
        }
    }
}
