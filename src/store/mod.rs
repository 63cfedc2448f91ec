//! Bytes at rest: a local directory and an S3 prefix behind one small interface, used by every
//! stage that reads or writes whole objects (`sink` for the output tree, `state` for the state
//! and its lock, `report` through `sink`'s readers). The log source uses the same S3 client,
//! retry policy and byte budget, and a local walker of its own tuned for many small files.
//!
//! The interface, the same for both kinds:
//! - `list(folder)`: one level, with a delimiter, every page: sub-folders and objects (and, on
//!   disk, the entries that are neither, such as links and FIFOs, named so callers can report
//!   them; they are never followed or opened);
//! - `get(key, cap)`: the whole object and its ETag, never more than `cap` bytes held;
//!   `None` when there is none (`get_bytes`: the same without the ETag);
//! - `put(key, bytes)`: atomic replace (a reader sees the old object or the new one);
//! - `put_if(key, bytes, precondition)`: created only if absent, or replaced only if unchanged;
//! - `delete(key)`: removes it if present and says whether it was (`delete_all`: many keys).
//!
//! Keys are `/`-separated and relative to the store's root; every segment must be a plain name
//! (no empty, `.` or `..` segment), checked before any I/O. Locally nothing below the root is
//! ever followed through a symbolic link, and temporary files get unpredictable names created
//! exclusively (`local`). In S3 every request is retried by one policy (`retry`), and
//! `budget` bounds the bytes a concurrent read holds.

pub mod aws;
pub mod budget;
pub mod local;
pub mod retry;
pub mod s3;

use std::fmt;
use std::path::PathBuf;

/// Where objects are kept: a local directory or `s3://bucket[/prefix]`.
#[derive(Debug, Clone)]
pub enum Store {
    Local(local::LocalDir),
    S3(s3::S3Prefix),
}

/// One level of a listing. Names are relative to the listed folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folder {
    /// Sub-folders, sorted.
    pub folders: Vec<String>,
    /// Objects and their sizes, sorted by name.
    pub objects: Vec<(String, u64)>,
    /// Entries that are neither (links, FIFOs, sockets, devices, names that are not UTF-8),
    /// with what they are; sorted. Only a local directory has these.
    pub others: Vec<(String, &'static str)>,
}

/// An object's bytes and its ETag (locally, a digest of the bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

/// When a conditional put may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Only if no object has the key (S3's `If-None-Match: *`).
    Absent,
    /// Only if the object still has this ETag (S3's `If-Match`).
    Matches(String),
}

/// The outcome of a conditional put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Written; the new ETag when the store returned one.
    Written(Option<String>),
    /// The precondition did not hold: nothing was written by this request.
    ConditionFailed,
}

/// A store operation that failed, naming the object (path or `s3://bucket/key`) and what went
/// wrong, in one line (the cause is part of the message, not a separate link of the chain, so
/// the object is named once).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{location}: {cause}")]
    Io {
        location: String,
        cause: std::io::Error,
    },
    /// The S3 request and what went wrong.
    #[error("{location}: {cause}")]
    S3 {
        location: String,
        cause: s3::S3Error,
    },
    /// More than the caller's cap: listed that large or more arrived; the rest was not read.
    #[error("{location}: {size} bytes or more, more than the limit of {cap} bytes")]
    TooLarge {
        location: String,
        size: u64,
        cap: u64,
    },
    /// A symbolic link, FIFO or device where a folder or a regular file was expected: refused,
    /// never followed or opened.
    #[error("{location} is {what}; refusing to follow or open it (remove or replace it)")]
    NotPlain {
        location: String,
        what: &'static str,
    },
    /// A key with an empty, `.` or `..` segment (a bug, or hostile input): no I/O was done.
    #[error("{location}: not a plain key (an empty, '.' or '..' segment)")]
    BadKey { location: String },
}

impl StoreError {
    /// The object or folder the error is about.
    pub fn location(&self) -> &str {
        match self {
            StoreError::Io { location, .. }
            | StoreError::S3 { location, .. }
            | StoreError::TooLarge { location, .. }
            | StoreError::NotPlain { location, .. }
            | StoreError::BadKey { location } => location,
        }
    }
}

impl Store {
    /// A local directory (created on the first write).
    pub fn local(root: PathBuf) -> Store {
        Store::Local(local::LocalDir::new(root))
    }

    /// For messages: the root.
    pub fn describe(&self) -> String {
        match self {
            Store::Local(dir) => dir.root().display().to_string(),
            Store::S3(s3) => s3.url().to_string(),
        }
    }

    /// For messages: where `key` is (a path, or `s3://bucket/key`).
    pub fn display(&self, key: &str) -> String {
        match self {
            Store::Local(dir) => dir.root().join(key).display().to_string(),
            Store::S3(s3) => s3.url().display(key),
        }
    }

    /// The S3 requests made so far (all of the run's, as the client is shared).
    pub fn request_counts(&self) -> Option<s3::RequestCounts> {
        match self {
            Store::Local(_) => None,
            Store::S3(s3) => Some(s3.client().counts()),
        }
    }

    /// The entries directly under `folder` (`""` for the root, else ending in `/`).
    pub async fn list(&self, folder: &str) -> Result<Folder, StoreError> {
        check_key(folder.trim_end_matches('/'), true).map_err(|()| self.bad_key(folder))?;
        match self {
            Store::Local(dir) => {
                let folder = folder.to_owned();
                blocking(dir, move |dir| dir.list(&folder)).await
            }
            Store::S3(s3) => s3.list(folder).await,
        }
    }

    /// The object at `key` with its ETag, or `None` if there is none; never more than `cap`
    /// bytes are held (`StoreError::TooLarge`).
    pub async fn get(&self, key: &str, cap: u64) -> Result<Option<Tagged>, StoreError> {
        check_key(key, false).map_err(|()| self.bad_key(key))?;
        match self {
            Store::Local(dir) => {
                let key = key.to_owned();
                blocking(dir, move |dir| dir.get(&key, cap)).await
            }
            Store::S3(s3) => s3.get(key, cap).await,
        }
    }

    /// The object at `key` without its ETag (locally, no digest of its bytes is computed), or
    /// `None` if there is none; never more than `cap` bytes are held.
    pub async fn get_bytes(&self, key: &str, cap: u64) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key, false).map_err(|()| self.bad_key(key))?;
        match self {
            Store::Local(dir) => {
                let key = key.to_owned();
                blocking(dir, move |dir| dir.get_bytes(&key, cap)).await
            }
            Store::S3(s3) => Ok(s3.get(key, cap).await?.map(|tagged| tagged.bytes)),
        }
    }

    /// Whether an object has the key (in S3, asked with a listing of the key itself, so a role
    /// without GetObject on absent keys gets a clean answer).
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key, false).map_err(|()| self.bad_key(key))?;
        match self {
            Store::Local(dir) => {
                let key = key.to_owned();
                blocking(dir, move |dir| dir.exists(&key)).await
            }
            Store::S3(s3) => s3.exists(key).await,
        }
    }

    /// Store `bytes` at `key`, replacing what was there, atomically.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        check_key(key, false).map_err(|()| self.bad_key(key))?;
        match self {
            Store::Local(dir) => {
                let key = key.to_owned();
                blocking(dir, move |dir| dir.put(&key, &bytes)).await
            }
            Store::S3(s3) => s3.put(key, bytes).await,
        }
    }

    /// Store `bytes` at `key` only if `precondition` holds.
    pub async fn put_if(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<Put, StoreError> {
        check_key(key, false).map_err(|()| self.bad_key(key))?;
        match self {
            Store::Local(dir) => {
                let key = key.to_owned();
                blocking(dir, move |dir| dir.put_if(&key, &bytes, &precondition)).await
            }
            Store::S3(s3) => s3.put_if(key, bytes, precondition).await,
        }
    }

    /// Remove the object at `key` if there is one; says whether there was.
    pub async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key, false).map_err(|()| self.bad_key(key))?;
        match self {
            Store::Local(dir) => {
                let key = key.to_owned();
                blocking(dir, move |dir| dir.delete(&key)).await
            }
            Store::S3(s3) => s3.delete(key).await,
        }
    }

    /// `delete` of each of `keys`: whether each was there, in their order. A local store
    /// removes them in one blocking call (a day's cleanup names thousands of files, most of
    /// them not there, and a thread handoff for each cost more than the removals); S3 is sent
    /// up to `concurrency` requests at once.
    pub async fn delete_all(
        &self,
        keys: Vec<String>,
        concurrency: usize,
    ) -> Result<Vec<bool>, StoreError> {
        use futures::{StreamExt, TryStreamExt};
        for key in &keys {
            check_key(key, false).map_err(|()| self.bad_key(key))?;
        }
        match self {
            Store::Local(dir) => blocking(dir, move |dir| dir.delete_each(&keys)).await,
            Store::S3(s3) => {
                futures::stream::iter(&keys)
                    .map(|key| s3.delete(key))
                    .buffered(concurrency.max(1))
                    .try_collect()
                    .await
            }
        }
    }

    fn bad_key(&self, key: &str) -> StoreError {
        StoreError::BadKey {
            location: self.display(key),
        }
    }
}

/// Run a local file operation on the blocking pool (file system calls block).
async fn blocking<T: Send + 'static>(
    dir: &local::LocalDir,
    work: impl FnOnce(&local::LocalDir) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let dir = dir.clone();
    let location = dir.root().display().to_string();
    tokio::task::spawn_blocking(move || work(&dir))
        .await
        .unwrap_or_else(|e| {
            Err(StoreError::Io {
                location,
                cause: std::io::Error::other(format!("a file operation stopped: {e}")),
            })
        })
}

/// A key whose every segment is a plain name (`root_ok`: the empty key, the root, too).
fn check_key(key: &str, root_ok: bool) -> Result<(), ()> {
    if key.is_empty() {
        return if root_ok { Ok(()) } else { Err(()) };
    }
    let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('\0');
    if key.split('/').all(plain) {
        Ok(())
    } else {
        Err(())
    }
}

/// 128 bits from the operating system's random source, as hex: for names nobody can predict
/// (temporary files, lock nonces).
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled part of `bytes`.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // No random source (not expected on Linux): fall back to the per-process keys.
            let unit = retry::jitter_unit().to_bits() ^ u64::from(std::process::id());
            return format!("{unit:016x}{:016x}", retry::jitter_unit().to_bits());
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_before_any_io() {
        let cases = [
            ("a/b.json.gz", false, true),
            ("a", false, true),
            ("", false, false),
            ("", true, true),
            ("a//b", false, false),
            ("a/./b", false, false),
            ("a/../b", false, false),
            ("/a", false, false),
            ("a/", false, false),
            ("..", false, false),
            ("a/%2e%2e/b", false, true),
            ("a\0b", false, false),
        ];
        for (key, root_ok, ok) in cases {
            assert_eq!(
                check_key(key, root_ok).is_ok(),
                ok,
                "{key:?} root_ok={root_ok}"
            );
        }
    }

    /// Each key is removed if there, and said to have been, in the keys' order; a bad key is
    /// refused before any is removed.
    #[tokio::test]
    async fn delete_all_removes_each_key_and_says_which_were_there() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path().to_owned());
        for key in ["a/b/1.json", "a/b/3.json", "c/4.json"] {
            store.put(key, b"x".to_vec()).await.unwrap();
        }
        let keys = [
            "a/b/1.json",
            "a/b/2.json",
            "a/b/3.json",
            "x/y/z.json",
            "c/4.json",
        ];
        let keys = || keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let refused = store
            .delete_all([keys(), vec!["a/../c/4.json".into()]].concat(), 4)
            .await;
        assert!(
            matches!(refused, Err(StoreError::BadKey { .. })),
            "{refused:?}"
        );
        assert!(store.get_bytes("a/b/1.json", 10).await.unwrap().is_some());
        let removed = store.delete_all(keys(), 4).await.unwrap();
        assert_eq!(removed, [true, false, true, false, true]);
        let again = store.delete_all(keys(), 4).await.unwrap();
        assert_eq!(again, [false; 5]);
    }

    #[test]
    fn random_tokens_are_long_and_differ() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
