//! Where Insights go: the output root (a local directory here) and the formats written to it.
//!
//! `json` builds AWS's files as bytes, `parquet` the analysts' Parquet tree (under its own
//! `insights/` prefix); `Output` stores bytes under a key. Every key is built from
//! validated parts (a 12-digit account, a region name, a date), and a local write goes to a
//! hidden temporary file that is renamed into place, so a reader never sees half a file.

pub mod explain;
pub mod json;
pub mod parquet;

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
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write {location}: {source}; check that the output location is writable")]
pub struct SinkError {
    pub location: String,
    #[source]
    pub source: std::io::Error,
}

impl Output {
    pub fn describe(&self) -> String {
        match self {
            Output::Local(root) => root.display().to_string(),
        }
    }

    /// Store `bytes` at `key`, replacing what was there.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), SinkError> {
        match self {
            Output::Local(root) => write_local(&root.join(key), &bytes).await,
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
