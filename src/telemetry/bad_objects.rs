//! The bad-objects report: every object a run skipped (and why), every object it read that held
//! bad records (counts by reason), and every file of a log folder it ignored, so an operator can
//! re-drive them. It is built from the run summary as bytes; the pipeline stores it next to the
//! output (`<out>/_trailsight/bad-objects/FIRST_LAST.json`) through the same `Output` as the
//! Insights, so a local write is atomic and an S3 write is one PutObject.
//!
//! Wire format (version 1), a JSON object:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `version` | integer | `1` |
//! | `source` | string | the source read (a directory or `s3://bucket/prefix`) |
//! | `first_day`, `last_day` | string | the days the run analysed (`YYYY-MM-DD`, UTC, inclusive) |
//! | `skipped` | array | objects not read: `object` (path or `s3://bucket/key`), `reason` (as in the summary's `objects_skipped`), `detail` |
//! | `bad_records` | array | objects read with unusable records: `object`, `records` (all its records), `bad_records` (counts by reason) |
//! | `ignored` | array | files of log folders not read: `object`, `reason` (as in the summary's `files_ignored`) |
//!
//! Each array is sorted by `object` (then `reason`), so the same run gives the same bytes. It
//! holds object names, reasons and error details only: no credentials, and details pass through
//! `redact_secrets` when they are recorded.

use super::{IgnoredFile, ObjectBadRecords, RunSummary, SkippedObject};
use serde::Serialize;

/// The report's format version.
pub const REPORT_VERSION: u32 = 1;
/// The folder under the output root that holds trailsight's own bookkeeping.
pub const REPORT_FOLDER: &str = "_trailsight/bad-objects";

#[derive(Debug, Serialize)]
struct Report<'s> {
    version: u32,
    source: &'s str,
    first_day: &'s str,
    last_day: &'s str,
    skipped: Vec<&'s SkippedObject>,
    bad_records: Vec<&'s ObjectBadRecords>,
    ignored: Vec<&'s IgnoredFile>,
}

/// The key of the report of a run over `first_day..=last_day`, relative to the output root.
pub fn report_key(first_day: &str, last_day: &str) -> String {
    format!("{REPORT_FOLDER}/{first_day}_{last_day}.json")
}

/// The report's key and bytes, or only its key when there is nothing to report (a clean run
/// removes the report an earlier run of the same days left). `None` when no day was analysed.
pub fn build(summary: &RunSummary) -> Option<(String, Option<Vec<u8>>)> {
    let (first_day, last_day) = (summary.first_day.as_deref()?, summary.last_day.as_deref()?);
    let key = report_key(first_day, last_day);
    if summary.skipped.is_empty()
        && summary.bad_record_objects.is_empty()
        && summary.ignored.is_empty()
    {
        return Some((key, None));
    }
    let mut skipped: Vec<_> = summary.skipped.iter().collect();
    skipped.sort_by(|a, b| (&a.object, &a.reason).cmp(&(&b.object, &b.reason)));
    let mut bad_records: Vec<_> = summary.bad_record_objects.iter().collect();
    bad_records.sort_by(|a, b| a.object.cmp(&b.object));
    let mut ignored: Vec<_> = summary.ignored.iter().collect();
    ignored.sort_by(|a, b| (&a.object, &a.reason).cmp(&(&b.object, &b.reason)));
    let report = Report {
        version: REPORT_VERSION,
        source: &summary.source,
        first_day,
        last_day,
        skipped,
        bad_records,
        ignored,
    };
    let mut bytes = serde_json::to_vec_pretty(&report).expect("serialising strings and counts");
    bytes.push(b'\n');
    Some((key, Some(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RecordStats;

    #[test]
    fn lists_everything_sorted_and_nothing_when_clean() {
        let mut summary = RunSummary {
            source: "/logs".into(),
            first_day: Some("2019-11-07".into()),
            last_day: Some("2019-11-08".into()),
            ..RunSummary::default()
        };
        assert_eq!(
            build(&summary),
            Some((
                "_trailsight/bad-objects/2019-11-07_2019-11-08.json".into(),
                None
            ))
        );
        summary.skip("/logs/b.json.gz", "not gzip", "it starts with bytes 7b 22");
        summary.skip("/logs/a.json.gz", "truncated gzip", "ends early");
        let mut stats = RecordStats {
            records: 4,
            ..RecordStats::default()
        };
        stats.bad_records.insert("record has no eventTime", 1);
        summary.add_object_records("/logs/c.json.gz", &stats);
        summary.ignore("/logs/notes.txt", "not a .json.gz or .json file");
        let (_, bytes) = build(&summary).unwrap();
        let report: serde_json::Value = serde_json::from_slice(&bytes.unwrap()).unwrap();
        assert_eq!(
            report,
            serde_json::json!({
                "version": 1,
                "source": "/logs",
                "first_day": "2019-11-07",
                "last_day": "2019-11-08",
                "skipped": [
                    {"object": "/logs/a.json.gz", "reason": "truncated gzip", "detail": "ends early"},
                    {"object": "/logs/b.json.gz", "reason": "not gzip", "detail": "it starts with bytes 7b 22"},
                ],
                "bad_records": [
                    {"object": "/logs/c.json.gz", "records": 4, "bad_records": {"record has no eventTime": 1}},
                ],
                "ignored": [
                    {"object": "/logs/notes.txt", "reason": "not a .json.gz or .json file"},
                ],
            })
        );
        summary.first_day = None;
        assert_eq!(build(&summary), None);
    }
}
