//! Reading an output directory back: the Insight files (`AWSLogs/.../CloudTrail-Insight/...`,
//! gzip of `{"Records":[...]}`, trailsight's or AWS's own) and the explanations beside them
//! (`explanations/.../explanations.jsonl`). A file that cannot be read is named, counted and
//! skipped; the rest of the report is still written.
//!
//! The walk is the only I/O here; `parse_insight_file` and `parse_explanations` take bytes.

use crate::decode::gzip;
use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
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
/// Largest decompressed Insight file read.
const MAX_INSIGHT_FILE_BYTES: u64 = 200 << 20;

/// What an output directory holds.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<InsightRecord>,
    pub explanations: Vec<Explanation>,
    pub insight_files: u64,
    pub explanation_files: u64,
    pub skipped: Vec<SkippedObject>,
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
        let parsed = std::fs::read(&path)
            .map_err(|e| ("unreadable".to_owned(), e.to_string()))
            .and_then(|bytes| {
                if is_insight {
                    let records = parse_insight_file(&bytes)?;
                    loaded.records.extend(records);
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

#[derive(Deserialize)]
struct InsightFile {
    #[serde(rename = "Records")]
    records: Vec<InsightRecord>,
}

/// The records of one Insight file (gzip of `{"Records":[...]}`); the error is (reason, detail).
pub fn parse_insight_file(bytes: &[u8]) -> Result<Vec<InsightRecord>, (String, String)> {
    if !gzip::is_gzip(bytes) {
        return Err(("not gzip".into(), "an Insight file is gzip JSON".into()));
    }
    let json = gzip::gunzip_capped(bytes, MAX_INSIGHT_FILE_BYTES)
        .map_err(|e| ("corrupt gzip".to_owned(), e.to_string()))?;
    serde_json::from_slice::<InsightFile>(&json)
        .map(|file| file.records)
        .map_err(|e| ("not an Insight file".to_owned(), e.to_string()))
}

/// The explanations of one JSON Lines file.
pub fn parse_explanations(bytes: &[u8]) -> Result<Vec<Explanation>, (String, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| ("not UTF-8".to_owned(), e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                (
                    "invalid explanation".to_owned(),
                    format!("line {}: {e}", i + 1),
                )
            })
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
                Ok(records) => assert!(records.is_empty() && want.contains("fine"), "{want}"),
                Err((reason, _)) => assert_eq!(reason, want),
            }
        }
        let err = parse_explanations(b"{\"sharedEventID\": 1}\n").unwrap_err();
        assert_eq!(err.0, "invalid explanation");
        assert!(err.1.starts_with("line 1"), "{err:?}");
    }
}
