//! Where Insights go: the output root (a local directory or `s3://bucket[/prefix]`) and the
//! formats written to it.
//!
//! `json` builds AWS's files as bytes, `parquet` the analysts' Parquet tree (under its own
//! `insights/` prefix); `Output` stores bytes under a key. Every key is built from
//! validated parts (a 12-digit account, a region name, a date), and a local write goes to a
//! hidden temporary file that is renamed into place, so a reader never sees half a file. An S3
//! write is one PutObject (atomic by nature), made by `source::s3`, the one module that uses
//! the AWS SDK. `notify` publishes what is new in the output (EventBridge, SNS, a webhook) and
//! keeps its ledger beside it.

pub mod explain;
pub mod json;
pub mod notify;
pub mod parquet;

use crate::source::s3::{RequestCounts, S3Target};
use std::path::{Path, PathBuf};

/// Which formats a run writes. A format that is not selected is left untouched in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// AWS's gzip JSON under `AWSLogs/.../CloudTrail-Insight/`.
    pub json: bool,
    /// Hive-partitioned Parquet under `insights/`.
    pub parquet: bool,
}

impl Default for Formats {
    fn default() -> Self {
        Formats {
            json: true,
            parquet: true,
        }
    }
}

/// The output root.
#[derive(Debug, Clone)]
pub enum Output {
    Local(PathBuf),
    S3(S3Target),
}

#[derive(Debug, thiserror::Error)]
/// The cause follows in the error chain (printed once by `main`).
#[error("cannot write {location} (check that the output location is writable)")]
pub struct SinkError {
    pub location: String,
    #[source]
    pub source: std::io::Error,
}

impl Output {
    pub fn describe(&self) -> String {
        match self {
            Output::Local(root) => root.display().to_string(),
            Output::S3(target) => target.url.to_string(),
        }
    }

    /// The S3 requests made so far, when writing to S3.
    pub fn request_counts(&self) -> Option<RequestCounts> {
        match self {
            Output::Local(_) => None,
            Output::S3(target) => Some(target.client.counts()),
        }
    }

    /// Store `bytes` at `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        match self {
            Output::Local(root) => write_local(&root.join(key), &bytes).await,
            Output::S3(target) => target.put(key, bytes).await.map_err(|e| SinkError {
                location: target.url.display(key),
                source: std::io::Error::other(e),
            }),
        }
    }

    /// Remove the object at `key` if it exists; says whether it did.
    pub async fn remove(&self, key: &str) -> Result<bool, SinkError> {
        match self {
            Output::Local(root) => {
                let path = root.join(key);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                    Err(e) => Err(SinkError {
                        location: path.display().to_string(),
                        source: e,
                    }),
                }
            }
            Output::S3(target) => target.remove(key).await.map_err(|e| SinkError {
                location: target.url.display(key),
                source: std::io::Error::other(e),
            }),
        }
    }
}

async fn write_local(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let error = |source| SinkError {
        location: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await.map_err(error)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    tokio::fs::write(&temporary, bytes).await.map_err(error)?;
    tokio::fs::rename(&temporary, path).await.map_err(error)
}
