//! Reading an output tree back, for `report`: the Insight files (`AWSLogs/.../CloudTrail-Insight/...`,
//! gzip of `{"Records":[...]}`, trailsight's or AWS's own), the explanations beside them
//! (`explanations/.../explanations.jsonl`), and trailsight's records of what the runs could not
//! see (`_trailsight/runs/*.json`, `_trailsight/bad-objects/*.json`), from a local directory or
//! an S3 prefix alike. A run record or bad-objects report that cannot be used is named in
//! `coverage_skipped` with a warning; it never fails the report.
//!
//! The input is not always trailsight's, so the walk is defensive: it goes through the store
//! (nothing below the root is followed through a link, FIFOs and devices are never opened),
//! at most `MAX_DEPTH` folders deep and `MAX_FILES` files, and every read is capped. A file that
//! cannot be read is named, counted and skipped; the rest is still read. `parse_insight_file`
//! and `parse_explanations` take bytes.

use super::validate::{self, Invalid};
use crate::decode::gzip;
use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
use crate::model::problem::SkippedObject;
use crate::store::{Store, StoreError};
use futures::{StreamExt, stream};
use serde::Deserialize;

/// The folder that holds Insight files in AWS's layout.
pub const INSIGHT_FOLDER: &str = "CloudTrail-Insight";
/// The name of each explanations file.
pub const EXPLANATIONS_FILE: &str = "explanations.jsonl";
/// How deep the walk goes: `[prefix/]AWSLogs/o-org/ACCOUNT/CloudTrail-Insight/REGION/Y/M/D/file`.
const MAX_DEPTH: usize = 16;
/// At most this many files are read; beyond it the walk stops and says so.
const MAX_FILES: usize = 1_000_000;
/// Largest Insight or explanations file read, stored or decompressed.
pub const MAX_FILE_BYTES: u64 = 200 << 20;
/// Files read at once.
const READ_CONCURRENCY: usize = 8;

/// What an output tree holds.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<InsightRecord>,
    pub explanations: Vec<Explanation>,
    pub insight_files: u64,
    pub explanation_files: u64,
    pub skipped: Vec<SkippedObject>,
    /// The runs' records (`sink::runs`), by key (oldest run first).
    pub runs: Vec<(String, super::runs::RunSeen)>,
    /// The bad-objects reports (`sink::bad_objects`), by day.
    pub bad_objects: Vec<super::bad_objects::DaySeen>,
    /// Run records and bad-objects reports that could not be used, each named.
    pub coverage_skipped: Vec<SkippedObject>,
    /// Records of files that were read, not used because a value is out of range (or the
    /// record is not an Insight record): each named by its file and position.
    pub rejected_records: Vec<SkippedObject>,
}

impl Loaded {
    /// Name, log and keep the records of `file` that were not used.
    fn reject(&mut self, file: &str, rejected: Vec<RejectedRecord>) {
        for r in rejected {
            let object = r.name(file);
            let (reason, detail) = (r.why.reason.to_owned(), r.why.detail);
            tracing::warn!(object, reason, "record not used: {object}: {detail}");
            self.rejected_records.push(SkippedObject {
                object,
                reason,
                detail,
            });
        }
    }
}

/// Why one file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub reason: &'static str,
    pub detail: String,
}

fn problem(reason: &'static str, detail: impl Into<String>) -> FileProblem {
    FileProblem {
        reason,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Wanted {
    Insights,
    Explanations,
    Run,
    BadObjects,
}

/// Which kind of file `key` is, if the report reads it.
fn wanted(key: &str) -> Option<Wanted> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let under = |folder: &str| {
        key.strip_prefix(folder)
            .and_then(|k| k.strip_prefix('/'))
            .is_some_and(|rest| !rest.contains('/') && rest.ends_with(".json"))
    };
    if under(super::runs::RUNS_FOLDER) {
        Some(Wanted::Run)
    } else if under(super::bad_objects::REPORT_FOLDER) {
        Some(Wanted::BadObjects)
    } else if name == EXPLANATIONS_FILE {
        Some(Wanted::Explanations)
    } else if name.ends_with(".json.gz") && key.split('/').any(|s| s == INSIGHT_FOLDER) {
        Some(Wanted::Insights)
    } else {
        None
    }
}

/// Every Insight and explanations file under the store's root, in key order. Fails only when
/// the root itself cannot be listed.
pub async fn load(store: &Store) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    let keys = walk(store, &mut loaded.skipped).await?;
    let mut reads = stream::iter(keys)
        .map(|(key, kind)| async move {
            let read = read_file(store, &key, kind).await;
            (key, kind, read)
        })
        .buffered(READ_CONCURRENCY);
    while let Some((key, kind, read)) = reads.next().await {
        match read {
            Ok(Parsed::Insights(file)) => {
                loaded.records.extend(file.records);
                loaded.reject(&store.display(&key), file.rejected);
                loaded.insight_files += 1;
            }
            Ok(Parsed::Explanations(explanations)) => {
                loaded.explanations.extend(explanations);
                loaded.explanation_files += 1;
            }
            Ok(Parsed::Run(run)) => loaded.runs.push((key, run)),
            Ok(Parsed::BadObjects(day)) => loaded.bad_objects.push(day),
            Err(p) if matches!(kind, Wanted::Run | Wanted::BadObjects) => {
                skip(&mut loaded.coverage_skipped, store.display(&key), p);
            }
            Err(p) => skip(&mut loaded.skipped, store.display(&key), p),
        }
    }
    Ok(loaded)
}

fn skip(skipped: &mut Vec<SkippedObject>, object: String, p: FileProblem) {
    tracing::warn!(object, reason = p.reason, "skipped {object}: {}", p.detail);
    skipped.push(SkippedObject {
        object,
        reason: p.reason.to_owned(),
        detail: p.detail,
    });
}

/// The keys of the files the report reads, sorted; entries that are not regular files or
/// folders (links, FIFOs, devices) are named in `skipped`, never followed.
async fn walk(
    store: &Store,
    skipped: &mut Vec<SkippedObject>,
) -> Result<Vec<(String, Wanted)>, StoreError> {
    let mut found = Vec::new();
    let mut folders = vec![(String::new(), 0usize)];
    while let Some((folder, depth)) = folders.pop() {
        let listed = match store.list(&folder).await {
            Ok(listed) => listed,
            Err(e) if folder.is_empty() => return Err(e),
            Err(e) => {
                skip(
                    skipped,
                    store.display(&folder),
                    problem("unreadable", format!("{e:#}")),
                );
                continue;
            }
        };
        for (name, _) in &listed.objects {
            let key = format!("{folder}{name}");
            if !name.starts_with('.')
                && let Some(kind) = wanted(&key)
            {
                if found.len() >= MAX_FILES {
                    tracing::warn!(
                        "more than {MAX_FILES} files under {store}: the rest are not read"
                    );
                    return Ok(found);
                }
                found.push((key, kind));
            }
        }
        // Links (to files or folders), FIFOs and devices are never followed or opened; each is
        // named, so a link loop or a planted link cannot go unnoticed.
        for (name, what) in &listed.others {
            let key = format!("{folder}{name}");
            if !name.starts_with('.') {
                skip(
                    skipped,
                    store.display(&key),
                    problem("not a regular file", format!("it is {what}; not read")),
                );
            }
        }
        if depth < MAX_DEPTH {
            for name in listed.folders.iter().rev().filter(|n| !n.starts_with('.')) {
                folders.push((format!("{folder}{name}/"), depth + 1));
            }
        }
    }
    found.sort();
    Ok(found)
}

enum Parsed {
    Insights(InsightFileRecords),
    Explanations(Vec<Explanation>),
    Run(super::runs::RunSeen),
    BadObjects(super::bad_objects::DaySeen),
}

async fn read_file(store: &Store, key: &str, kind: Wanted) -> Result<Parsed, FileProblem> {
    let bytes = match store.get(key, MAX_FILE_BYTES).await {
        Ok(Some(tagged)) => tagged.bytes,
        Ok(None) => {
            return Err(problem(
                "unreadable",
                "it disappeared while the report was read",
            ));
        }
        Err(StoreError::TooLarge { .. }) => {
            return Err(problem(
                "over the size limit",
                format!("larger than {MAX_FILE_BYTES} bytes; not read"),
            ));
        }
        Err(StoreError::NotPlain { what, .. }) => {
            return Err(problem(
                "not a regular file",
                format!("it is {what}; not read"),
            ));
        }
        Err(e) => return Err(problem("unreadable", format!("{e:#}"))),
    };
    match kind {
        Wanted::Insights => parse_insight_file(&bytes).map(Parsed::Insights),
        Wanted::Explanations => parse_explanations(&bytes).map(Parsed::Explanations),
        Wanted::Run => super::runs::parse(&bytes)
            .map(Parsed::Run)
            .map_err(|e| problem("not a run record", e)),
        Wanted::BadObjects => super::bad_objects::parse(&bytes)
            .map(Parsed::BadObjects)
            .map_err(|e| problem("not a bad-objects report", e)),
    }
}

/// A record of an Insight file that is not used, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedRecord {
    /// Its position in `Records` (0-based).
    pub index: usize,
    /// Its `eventID`, when it has a string one (at most 64 characters of it).
    pub event_id: Option<String>,
    pub why: Invalid,
}

impl RejectedRecord {
    /// `FILE record N (eventID X)`.
    pub fn name(&self, file: &str) -> String {
        match &self.event_id {
            Some(id) => format!("{file} record {} (eventID {id})", self.index),
            None => format!("{file} record {}", self.index),
        }
    }
}

/// The records of one Insight file: those whose every value is in range
/// (`validate::check_record`), and the others.
#[derive(Debug, Default)]
pub struct InsightFileRecords {
    pub records: Vec<InsightRecord>,
    pub rejected: Vec<RejectedRecord>,
}

#[derive(Deserialize)]
struct InsightFile {
    #[serde(rename = "Records", deserialize_with = "each_record")]
    records: InsightFileRecords,
}

/// `Records`, one element at a time: an element that is not an Insight record, or holds a
/// value out of range, is set aside with its reason instead of failing the whole file. Only one
/// element is held as a JSON tree at a time.
fn each_record<'de, D: serde::Deserializer<'de>>(d: D) -> Result<InsightFileRecords, D::Error> {
    struct Elements;
    impl<'de> serde::de::Visitor<'de> for Elements {
        type Value = InsightFileRecords;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of Insight records")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<InsightFileRecords, A::Error> {
            let mut out = InsightFileRecords::default();
            let mut index = 0;
            while let Some(element) = seq.next_element::<serde_json::Value>()? {
                let event_id = element
                    .get("eventID")
                    .and_then(serde_json::Value::as_str)
                    .map(|id| id.chars().take(64).collect());
                let checked = serde_json::from_value::<InsightRecord>(element)
                    .map_err(|e| Invalid {
                        reason: "not an Insight record",
                        detail: e.to_string(),
                    })
                    .and_then(|r| validate::check_record(&r).map(|_| r));
                match checked {
                    Ok(record) => out.records.push(record),
                    Err(why) => out.rejected.push(RejectedRecord {
                        index,
                        event_id,
                        why,
                    }),
                }
                index += 1;
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Elements)
}

/// The records of one Insight file (gzip of `{"Records":[...]}`): those in range, and the
/// others named; the error is for a file that cannot be read at all.
pub fn parse_insight_file(bytes: &[u8]) -> Result<InsightFileRecords, FileProblem> {
    if !gzip::is_gzip(bytes) {
        return Err(problem("not gzip", "an Insight file is gzip JSON"));
    }
    let json = gzip::gunzip_capped(bytes, MAX_FILE_BYTES)
        .map_err(|e| problem("corrupt gzip", e.to_string()))?;
    serde_json::from_slice::<InsightFile>(&json)
        .map(|file| file.records)
        .map_err(|e| problem("not an Insight file", e.to_string()))
}

/// The explanations of one JSON Lines file (trailsight's own): every line must be one, with
/// its values in range (`validate::check_explanation`), or the file is not used.
pub fn parse_explanations(bytes: &[u8]) -> Result<Vec<Explanation>, FileProblem> {
    let text = std::str::from_utf8(bytes).map_err(|e| problem("not UTF-8", e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let explanation: Explanation = serde_json::from_str(line)
                .map_err(|e| problem("invalid explanation", format!("line {}: {e}", i + 1)))?;
            validate::check_explanation(&explanation)
                .map_err(|why| problem(why.reason, format!("line {}: {}", i + 1, why.detail)))?;
            Ok(explanation)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_files_are_named_with_a_reason() {
        let cases: [(&[u8], &str); 3] = [
            (b"{\"Records\":[]}", "not gzip"),
            (&[0x1f, 0x8b, 8, 0, 0, 0], "corrupt gzip"),
            (
                &crate::sink::json::encode_file(&[])[..],
                "the empty file is fine",
            ),
        ];
        for (bytes, want) in cases {
            match parse_insight_file(bytes) {
                Ok(file) => assert!(file.records.is_empty() && want.contains("fine"), "{want}"),
                Err(p) => assert_eq!(p.reason, want),
            }
        }
        let err = parse_explanations(b"{\"sharedEventID\": 1}\n").unwrap_err();
        assert_eq!(err.reason, "invalid explanation");
        assert!(err.detail.starts_with("line 1"), "{err:?}");
    }

    #[test]
    fn only_insight_and_explanation_files_are_read() {
        let cases = [
            (
                "AWSLogs/1/CloudTrail-Insight/us-east-1/2019/11/07/x.json.gz",
                Some(Wanted::Insights),
            ),
            ("AWSLogs/1/CloudTrail/us-east-1/2019/11/07/x.json.gz", None),
            (
                "explanations/account=1/region=r/date=d/explanations.jsonl",
                Some(Wanted::Explanations),
            ),
            ("insights/account=1/part-x.parquet", None),
            (
                "_trailsight/bad-objects/2019-11-07.json",
                Some(Wanted::BadObjects),
            ),
            (
                "_trailsight/runs/20261206T061528.123Z-ab.json",
                Some(Wanted::Run),
            ),
            ("x/_trailsight/runs/20261206T061528.123Z-ab.json", None),
        ];
        for (key, want) in cases {
            assert_eq!(wanted(key), want, "{key}");
        }
    }

    #[tokio::test]
    async fn links_fifos_and_loops_are_named_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let folder = root.join("AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/07");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("good.json.gz"),
            crate::sink::json::encode_file(&[]),
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/zero", folder.join("zero.json.gz")).unwrap();
        for i in 0..3 {
            std::os::unix::fs::symlink(".", folder.join(format!("loop{i}"))).unwrap();
        }
        let loaded = load(&Store::local(root.to_owned())).await.unwrap();
        assert_eq!(loaded.insight_files, 1);
        let mut named: Vec<&str> = loaded
            .skipped
            .iter()
            .map(|s| s.object.rsplit('/').next().unwrap())
            .collect();
        named.sort();
        assert_eq!(named, ["loop0", "loop1", "loop2", "zero.json.gz"]);
        assert!(
            loaded
                .skipped
                .iter()
                .all(|s| s.reason == "not a regular file")
        );
    }
}
