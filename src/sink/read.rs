//! Reading an output tree back, for `report`: the Insight files (`AWSLogs/.../CloudTrail-Insight/...`,
//! gzip of `{"Records":[...]}`, trailsight's or AWS's own) and the explanations beside them
//! (`explanations/.../explanations.jsonl`), from a local directory or an S3 prefix alike.
//!
//! The input is not always trailsight's, so the walk is defensive: it goes through the store
//! (nothing below the root is followed through a link, FIFOs and devices are never opened),
//! at most `MAX_DEPTH` folders deep and `MAX_FILES` files, and every read is capped. A file that
//! cannot be read is named, counted and skipped; the rest is still read. `parse_insight_file`
//! and `parse_explanations` take bytes.

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
}

/// Which kind of file `key` is, if the report reads it.
fn wanted(key: &str) -> Option<Wanted> {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name == EXPLANATIONS_FILE {
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
            (key, read)
        })
        .buffered(READ_CONCURRENCY);
    while let Some((key, read)) = reads.next().await {
        match read {
            Ok(Parsed::Insights(records)) => {
                loaded.records.extend(records);
                loaded.insight_files += 1;
            }
            Ok(Parsed::Explanations(explanations)) => {
                loaded.explanations.extend(explanations);
                loaded.explanation_files += 1;
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

/// The keys of the files the report reads, sorted; entries that look like them but are not
/// regular files (links, FIFOs, devices) are named in `skipped`.
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
        for (name, what) in &listed.others {
            let key = format!("{folder}{name}");
            if !name.starts_with('.') && wanted(&key).is_some() {
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
    Insights(Vec<InsightRecord>),
    Explanations(Vec<Explanation>),
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
    }
}

#[derive(Deserialize)]
struct InsightFile {
    #[serde(rename = "Records")]
    records: Vec<InsightRecord>,
}

/// The records of one Insight file (gzip of `{"Records":[...]}`).
pub fn parse_insight_file(bytes: &[u8]) -> Result<Vec<InsightRecord>, FileProblem> {
    if !gzip::is_gzip(bytes) {
        return Err(problem("not gzip", "an Insight file is gzip JSON"));
    }
    let json = gzip::gunzip_capped(bytes, MAX_FILE_BYTES)
        .map_err(|e| problem("corrupt gzip", e.to_string()))?;
    serde_json::from_slice::<InsightFile>(&json)
        .map(|file| file.records)
        .map_err(|e| problem("not an Insight file", e.to_string()))
}

/// The explanations of one JSON Lines file.
pub fn parse_explanations(bytes: &[u8]) -> Result<Vec<Explanation>, FileProblem> {
    let text = std::str::from_utf8(bytes).map_err(|e| problem("not UTF-8", e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| problem("invalid explanation", format!("line {}: {e}", i + 1)))
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
            ("_trailsight/bad-objects/2019-11-07.json", None),
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
        assert_eq!(loaded.skipped.len(), 1, "{:?}", loaded.skipped);
        assert!(loaded.skipped[0].object.ends_with("zero.json.gz"));
        assert_eq!(loaded.skipped[0].reason, "not a regular file");
    }
}
