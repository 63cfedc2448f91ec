//! Reading an output directory back: the Insight files (`AWSLogs/.../CloudTrail-Insight/...`,
//! gzip of `{"Records":[...]}`, trailsight's or AWS's own) and the explanations beside them
//! (`explanations/.../explanations.jsonl`). A file that cannot be read is named, counted and
//! skipped; the rest of the report is still written.
//!
//! The walk is the only I/O here; `parse_insight_file` and `parse_explanations` take bytes.

use super::validate::{self, Invalid};
use crate::decode::gzip;
use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
use crate::source::local::ReadError;
use crate::telemetry::SkippedObject;
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The folder that holds Insight files in AWS's layout.
pub const INSIGHT_FOLDER: &str = "CloudTrail-Insight";
/// The name of each explanations file.
pub const EXPLANATIONS_FILE: &str = "explanations.jsonl";
/// How deep the walk goes: `[prefix/]AWSLogs/o-org/ACCOUNT/CloudTrail-Insight/REGION/Y/M/D/file`.
const MAX_DEPTH: usize = 16;
/// Largest Insight file (stored or decompressed) and explanations file read.
pub const MAX_INSIGHT_FILE_BYTES: u64 = 200 << 20;

/// What an output directory holds.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<InsightRecord>,
    pub explanations: Vec<Explanation>,
    pub insight_files: u64,
    pub explanation_files: u64,
    pub skipped: Vec<SkippedObject>,
    /// Records of files that were read, not used because a value is out of range (or the
    /// record is not an Insight record): each named by its file and position.
    pub rejected_records: Vec<SkippedObject>,
}

impl Loaded {
    /// Name, log and keep the records of `file` that were not used.
    fn reject(&mut self, file: &Path, rejected: Vec<RejectedRecord>) {
        for r in rejected {
            let object = r.name(&file.display().to_string());
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

/// Read every Insight and explanations file under `root`, in path order.
pub fn load_dir(root: &Path) -> anyhow::Result<Loaded> {
    let mut files = Vec::new();
    walk(root, 0, &mut files)
        .with_context(|| format!("--insights {}: cannot list it", root.display()))?;
    files.sort();
    let mut loaded = Loaded::default();
    for path in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let is_insight = name.ends_with(".json.gz")
            && path.components().any(|c| c.as_os_str() == INSIGHT_FOLDER);
        let is_explanation = name == EXPLANATIONS_FILE;
        if !is_insight && !is_explanation {
            continue;
        }
        // Capped, and refused unless a regular file (a FIFO or a device is never read).
        let parsed = crate::source::local::read_object(&path, MAX_INSIGHT_FILE_BYTES)
            .map_err(|e| {
                let reason = match e {
                    ReadError::Io(_) => "unreadable",
                    _ => e.reason(),
                };
                (reason.to_owned(), e.to_string())
            })
            .and_then(|bytes| {
                if is_insight {
                    let file = parse_insight_file(&bytes)?;
                    loaded.records.extend(file.records);
                    loaded.reject(&path, file.rejected);
                    loaded.insight_files += 1;
                } else {
                    let explanations = parse_explanations(&bytes)?;
                    loaded.explanations.extend(explanations);
                    loaded.explanation_files += 1;
                }
                Ok(())
            });
        if let Err((reason, detail)) = parsed {
            let object = path.display().to_string();
            tracing::warn!(object, reason, "skipped {object}: {detail}");
            loaded.skipped.push(SkippedObject {
                object,
                reason,
                detail,
            });
        }
    }
    Ok(loaded)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, depth + 1, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
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

/// The records of one Insight file (gzip of `{"Records":[...]}`); the error is (reason,
/// detail) for a file that cannot be read at all.
pub fn parse_insight_file(bytes: &[u8]) -> Result<InsightFileRecords, (String, String)> {
    if !gzip::is_gzip(bytes) {
        return Err(("not gzip".into(), "an Insight file is gzip JSON".into()));
    }
    let json = gzip::gunzip_capped(bytes, MAX_INSIGHT_FILE_BYTES)
        .map_err(|e| ("corrupt gzip".to_owned(), e.to_string()))?;
    serde_json::from_slice::<InsightFile>(&json)
        .map(|file| file.records)
        .map_err(|e| ("not an Insight file".to_owned(), e.to_string()))
}

/// The explanations of one JSON Lines file (trailsight's own): every line must be one, with
/// its values in range (`validate::check_explanation`), or the file is not used.
pub fn parse_explanations(bytes: &[u8]) -> Result<Vec<Explanation>, (String, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| ("not UTF-8".to_owned(), e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let explanation: Explanation = serde_json::from_str(line).map_err(|e| {
                (
                    "invalid explanation".to_owned(),
                    format!("line {}: {e}", i + 1),
                )
            })?;
            validate::check_explanation(&explanation).map_err(|why| {
                (
                    why.reason.to_owned(),
                    format!("line {}: {}", i + 1, why.detail),
                )
            })?;
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
                Err((reason, _)) => assert_eq!(reason, want),
            }
        }
        let err = parse_explanations(b"{\"sharedEventID\": 1}\n").unwrap_err();
        assert_eq!(err.0, "invalid explanation");
        assert!(err.1.starts_with("line 1"), "{err:?}");
    }
}
