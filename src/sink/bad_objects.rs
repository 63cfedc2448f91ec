//! The bad-objects report of one analysed day: every object its step skipped (and why), every
//! object it read that held bad records (counts by reason), and every file of a log folder it
//! ignored, so an operator can re-drive them. The step of day D reads the objects not read yet
//! up to D+1's folder, so each object is reported under the one day whose step read it, and a
//! day that is redone (after a failed fetch) rewrites, or removes, its own report: nightly runs
//! and a backfill leave the same reports. It is built as bytes from the day's problems (which
//! the run summary collects) and stored next to the output
//! (`<out>/_trailsight/bad-objects/YYYY-MM-DD.json`) through the same store as the Insights, so
//! a local write is atomic and an S3 write is one PutObject.
//!
//! Wire format (version 1), a JSON object:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `version` | integer | `1` |
//! | `source` | string | the source read (a directory or `s3://bucket/prefix`) |
//! | `day` | string | the analysed day whose step read these objects (`YYYY-MM-DD`, UTC) |
//! | `skipped` | array | objects not read: `object` (path or `s3://bucket/key`), `reason` (as in the summary's `objects_skipped`), `detail` |
//! | `bad_records` | array | objects read with unusable records: `object`, `records` (all its records), `bad_records` (counts by reason) |
//! | `ignored` | array | files of log folders not read: `object`, `reason` (as in the summary's `files_ignored`) |
//!
//! Each array is sorted by `object` (then `reason`), so the same run gives the same bytes. It
//! holds object names, reasons and error details only: no credentials, and details pass through
//! `redact_secrets` when they are recorded.

use crate::model::problem::{DayProblems, IgnoredFile, ObjectBadRecords, SkippedObject};
use chrono::NaiveDate;
use serde::Serialize;

/// The report's format version.
pub const REPORT_VERSION: u32 = 1;
/// The folder under the output root that holds trailsight's own bookkeeping.
pub const REPORT_FOLDER: &str = "_trailsight/bad-objects";

#[derive(Debug, Serialize)]
struct Report<'s> {
    version: u32,
    source: &'s str,
    day: String,
    skipped: Vec<&'s SkippedObject>,
    bad_records: Vec<&'s ObjectBadRecords>,
    ignored: Vec<&'s IgnoredFile>,
}

/// The key of the report of one analysed day, relative to the output root.
pub fn report_key(day: NaiveDate) -> String {
    format!("{REPORT_FOLDER}/{day}.json")
}

/// The key and bytes of `day`'s report of `problems` read from `source`; no bytes when there is
/// nothing to report (the caller removes the report an earlier run left).
pub fn build(source: &str, day: NaiveDate, problems: DayProblems<'_>) -> (String, Option<Vec<u8>>) {
    let key = report_key(day);
    if problems.is_empty() {
        return (key, None);
    }
    let DayProblems {
        skipped,
        bad_records,
        ignored,
    } = problems;
    let mut skipped: Vec<_> = skipped.iter().collect();
    skipped.sort_by(|a, b| (&a.object, &a.reason).cmp(&(&b.object, &b.reason)));
    let mut bad_records: Vec<_> = bad_records.iter().collect();
    bad_records.sort_by(|a, b| a.object.cmp(&b.object));
    let mut ignored: Vec<_> = ignored.iter().collect();
    ignored.sort_by(|a, b| (&a.object, &a.reason).cmp(&(&b.object, &b.reason)));
    let report = Report {
        version: REPORT_VERSION,
        source,
        day: day.to_string(),
        skipped,
        bad_records,
        ignored,
    };
    let mut bytes = serde_json::to_vec_pretty(&report).expect("serialising strings and counts");
    bytes.push(b'\n');
    (key, Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::RecordStats;
    use crate::model::problem::SkipReason;
    use crate::telemetry::RunSummary;

    #[test]
    fn lists_what_the_day_added_sorted_and_nothing_when_clean() {
        let day = crate::model::parse_day("2019-11-07").unwrap();
        let mut summary = RunSummary {
            source: "/logs".into(),
            ..RunSummary::default()
        };
        summary.skip(
            "/logs/earlier.json.gz",
            SkipReason::NotGzip,
            "an earlier day's object",
        );
        let marks = summary.marks();
        assert_eq!(
            build(&summary.source, day, summary.problems_since(marks)),
            ("_trailsight/bad-objects/2019-11-07.json".into(), None)
        );
        summary.skip(
            "/logs/b.json.gz",
            SkipReason::NotGzip,
            "it starts with bytes 7b 22",
        );
        summary.skip("/logs/a.json.gz", SkipReason::TruncatedGzip, "ends early");
        let mut stats = RecordStats {
            records: 4,
            ..RecordStats::default()
        };
        stats.bad_records.insert("record has no eventTime", 1);
        summary.add_object_records(|| "/logs/c.json.gz".to_owned(), &stats);
        summary.ignore("/logs/notes.txt", "not a .json.gz or .json file");
        let (_, bytes) = build(&summary.source, day, summary.problems_since(marks));
        let report: serde_json::Value = serde_json::from_slice(&bytes.unwrap()).unwrap();
        assert_eq!(
            report,
            serde_json::json!({
                "version": 1,
                "source": "/logs",
                "day": "2019-11-07",
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
    }
}

/// One day's bad-objects report read back for `report`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySeen {
    pub day: NaiveDate,
    /// Objects not read: (object, reason), as the report lists them.
    pub skipped: Vec<(String, String)>,
    /// Objects read that held bad records.
    pub bad_record_objects: u64,
    /// Files of log folders not read.
    pub ignored: u64,
}

/// At most this many entries of a report are read back.
pub const MAX_ENTRIES: usize = 100_000;
/// Longest object name or reason kept (longer ones are cut).
const MAX_NAME_CHARS: usize = 1024;

#[derive(serde::Deserialize)]
struct RawReport {
    version: u32,
    day: String,
    #[serde(default)]
    skipped: Vec<RawSkipped>,
    #[serde(default)]
    bad_records: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    ignored: Vec<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct RawSkipped {
    object: String,
    reason: String,
}

/// A bad-objects report read back, or why it cannot be used.
pub fn parse(bytes: &[u8]) -> Result<DaySeen, String> {
    let raw: RawReport =
        serde_json::from_slice(bytes).map_err(|e| format!("not a bad-objects report: {e}"))?;
    if raw.version != REPORT_VERSION {
        return Err(format!(
            "version {} (this trailsight reads {REPORT_VERSION})",
            raw.version
        ));
    }
    let day = crate::model::parse_day(&raw.day)
        .filter(|d| (2013..2100).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| format!("day {:?} is not a day (YYYY-MM-DD, 2013 to 2099)", raw.day))?;
    let n = raw.skipped.len() + raw.bad_records.len() + raw.ignored.len();
    if n > MAX_ENTRIES {
        return Err(format!("{n} entries, more than {MAX_ENTRIES}"));
    }
    let cut = |s: String| -> String { s.chars().take(MAX_NAME_CHARS).collect() };
    Ok(DaySeen {
        day,
        skipped: raw
            .skipped
            .into_iter()
            .map(|s| (cut(s.object), cut(s.reason)))
            .collect(),
        bad_record_objects: raw.bad_records.len() as u64,
        ignored: raw.ignored.len() as u64,
    })
}

#[cfg(test)]
mod read_tests {
    use super::*;

    #[test]
    fn a_report_reads_back_and_bad_ones_are_refused() {
        let skipped = [SkippedObject {
            object: "s3://logs/a.json.gz".into(),
            reason: "quarantined".into(),
            detail: "3 runs".into(),
        }];
        let day = crate::model::parse_day("2019-11-09").unwrap();
        let (_, bytes) = build(
            "s3://logs",
            day,
            DayProblems {
                skipped: &skipped,
                bad_records: &[],
                ignored: &[],
            },
        );
        let seen = parse(&bytes.unwrap()).unwrap();
        assert_eq!(seen.day, day);
        assert_eq!(
            seen.skipped,
            [("s3://logs/a.json.gz".to_owned(), "quarantined".to_owned())]
        );
        for (text, want) in [
            ("[]", "not a bad-objects report"),
            (r#"{"version":9,"day":"2019-11-09"}"#, "version 9"),
            (r#"{"version":1,"day":"<b>"}"#, "not a day"),
        ] {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
