//! Bytes out: the `{"Records":[...]}` document, deterministic gzip, digest files, writing.
//!
//! Gzip headers carry mtime 0 and no file name, so equal inputs give equal bytes. The functions
//! that build bytes are separate from the one that touches the file system.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder};
use serde::Serialize;

use crate::delivery::Bytes;

/// Default gzip level for log and digest files (zlib's default).
pub const DEFAULT_GZIP_LEVEL: u32 = 6;

/// `{"Records":[r1,r2,...]}` from already serialised records.
pub fn log_json(records: &[Bytes]) -> Vec<u8> {
    let body: usize = records.iter().map(|r| r.len() + 1).sum();
    let mut out = Vec::with_capacity(body + 16);
    out.extend_from_slice(b"{\"Records\":[");
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(record);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Gzip at `level` (0-9) with a fixed header (mtime 0), so output depends on the input only.
pub fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut encoder = GzBuilder::new().mtime(0).write(
        Vec::with_capacity(data.len() / 6 + 64),
        Compression::new(level),
    );
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Writes `bytes` to `root/key`, creating folders as needed.
pub fn write_object(root: &Path, key: &str, bytes: &[u8]) -> Result<()> {
    let path = root.join(key);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("creating folder {}", parent.display()))?;
    }
    fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// A CloudTrail digest file (log file integrity validation). Readers of log files must skip
/// these; the generator writes one per account, region and day, with an empty `logFiles` list
/// and a fake signature, chained to the previous day's digest.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: &'static str,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    pub previous_digest_s3_bucket: Option<String>,
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<&'static str>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn log_json_wraps_records() {
        let records: Vec<Bytes> = vec![b"{\"a\":1}".to_vec().into(), b"{\"b\":2}".to_vec().into()];
        assert_eq!(log_json(&records), b"{\"Records\":[{\"a\":1},{\"b\":2}]}");
        assert_eq!(log_json(&[]), b"{\"Records\":[]}");
    }

    #[test]
    #[expect(
        clippy::disallowed_types,
        reason = "round-trips our own small, trusted output"
    )]
    fn gzip_is_deterministic_and_round_trips() {
        use flate2::read::GzDecoder;
        let data = b"{\"Records\":[]}".repeat(100);
        let a = gzip(&data, DEFAULT_GZIP_LEVEL);
        assert_eq!(a, gzip(&data, DEFAULT_GZIP_LEVEL));
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "mtime must be 0");
        let mut back = Vec::new();
        GzDecoder::new(&a[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
