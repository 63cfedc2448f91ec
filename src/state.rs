//! What an incremental run remembers between nights, and how it is stored.
//!
//! The state holds the per-minute counts of the trailing window (so a night reads only new
//! objects, not eight days of raw logs), how far the analysis has gone, the day from which
//! detection must be redone (the start of the oldest episode still open), and which objects of
//! the last, partly read, day folder were already counted. It is gzip-compressed JSON: an open
//! format any tool can inspect.
//!
//! Storage rules (`StateStore`):
//! - the state is written last in a run, to a temporary name renamed into place, so a run that
//!   fails or is killed leaves the previous state intact and the next run redoes the work;
//! - a run holds an exclusive lock (a lock file created only if absent) for its whole duration,
//!   so two runs against the same state cannot interleave; a lock older than `LOCK_TTL_SECS`
//!   (a run that was killed) is taken over with a warning.

use crate::aggregate::AggregateState;
use crate::decode::gzip;
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// The layout version of the state file; a different version is refused, not misread.
pub const STATE_VERSION: u32 = 1;
/// A lock older than this is considered abandoned.
pub const LOCK_TTL_SECS: u64 = 6 * 3600;
/// Largest state file accepted when reading.
const MAX_STATE_BYTES: u64 = 8 << 30;

/// Everything the next run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub version: u32,
    /// The source this state was built from; a state is never applied to another source.
    pub source: String,
    /// `I/N` when the run is one shard of N.
    pub shard: Option<String>,
    /// The first minute the analysis ever read (the floor of every series' history).
    pub history_floor: i64,
    /// The last day whose Insights have been written (YYYY-MM-DD).
    pub analysed_through: String,
    /// Detection restarts at 00:00 of this day (the oldest episode still open, else the day
    /// after `analysed_through`).
    pub redetect_from: String,
    /// The latest delivery-day folder read; it may have been read only in part.
    pub folders_read_through: String,
    /// Keys of the objects already read in that folder.
    pub processed: Vec<String>,
    pub aggregate: AggregateState,
}

impl RunState {
    pub fn encode(&self) -> Vec<u8> {
        let mut gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::fast());
        serde_json::to_writer(&mut gz, self)
            .and_then(|()| gz.flush().map_err(serde_json::Error::io))
            .expect("serialising the state into memory");
        gz.finish().expect("finishing a gzip stream in memory")
    }

    pub fn decode(bytes: &[u8], location: &str) -> anyhow::Result<RunState> {
        let json = gzip::gunzip_capped(bytes, MAX_STATE_BYTES)
            .map_err(|e| anyhow::anyhow!("state {location}: {e}"))?;
        let state: RunState = serde_json::from_slice(&json)
            .map_err(|e| anyhow::anyhow!("state {location}: not a trailsight state ({e})"))?;
        if state.version != STATE_VERSION {
            anyhow::bail!(
                "state {location} has layout version {}, this trailsight reads version {STATE_VERSION}; \
                 start a new state directory (a backfill rebuilds it)",
                state.version
            );
        }
        Ok(state)
    }
}

/// Where the state lives: a local directory.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    name: String,
}

/// Proof that this run holds the lock; released on drop.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl StateStore {
    /// The state of one shard (or of the whole run) in `dir`.
    pub fn new(dir: PathBuf, shard: Option<&str>) -> StateStore {
        let name = match shard {
            Some(shard) => format!("trailsight-state-shard-{}", shard.replace('/', "-of-")),
            None => "trailsight-state".to_owned(),
        };
        StateStore { dir, name }
    }

    pub fn describe(&self) -> String {
        self.file().display().to_string()
    }

    fn file(&self) -> PathBuf {
        self.dir.join(format!("{}.json.gz", self.name))
    }

    /// Take the lock, or fail naming who holds it.
    pub fn lock(&self, holder: &str, now_secs: u64) -> anyhow::Result<StateLock> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the state directory {}: {e}",
                self.dir.display()
            )
        })?;
        let path = self.dir.join(format!("{}.lock", self.name));
        let body = format!("{holder}\n{now_secs}\n");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(body.as_bytes()).map_err(|e| {
                        anyhow::anyhow!("cannot write the lock {}: {e}", path.display())
                    })?;
                    return Ok(StateLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let existing = std::fs::read_to_string(&path).unwrap_or_default();
                    let taken_at: u64 = existing
                        .lines()
                        .nth(1)
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(0);
                    if now_secs.saturating_sub(taken_at) < LOCK_TTL_SECS {
                        anyhow::bail!(
                            "the state {} is locked by another run ({}); if no run is active, remove {}",
                            self.describe(),
                            existing.lines().next().unwrap_or("unknown"),
                            path.display()
                        );
                    }
                    tracing::warn!(lock = %path.display(), "taking over an abandoned lock: {}", existing.trim());
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => anyhow::bail!("cannot create the lock {}: {e}", path.display()),
            }
        }
        anyhow::bail!("cannot take the lock {}", path.display())
    }

    /// The saved state, if any.
    pub fn load(&self) -> anyhow::Result<Option<RunState>> {
        match std::fs::read(self.file()) {
            Ok(bytes) => RunState::decode(&bytes, &self.describe()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => anyhow::bail!("cannot read the state {}: {e}", self.describe()),
        }
    }

    /// Replace the saved state atomically.
    pub fn save(&self, state: &RunState, _lock: &StateLock) -> anyhow::Result<()> {
        let path = self.file();
        let temporary = self
            .dir
            .join(format!(".{}.{}.tmp", self.name, std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temporary)?;
            file.write_all(&state.encode())?;
            file.sync_all()?;
            std::fs::rename(&temporary, &path)
        };
        write().map_err(|e| anyhow::anyhow!("cannot write the state {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RunState {
        RunState {
            version: STATE_VERSION,
            source: "sample-data".into(),
            shard: None,
            history_floor: 0,
            analysed_through: "2019-11-07".into(),
            redetect_from: "2019-11-08".into(),
            folders_read_through: "2019-11-08".into(),
            processed: vec!["AWSLogs/x.json.gz".into()],
            aggregate: AggregateState::default(),
        }
    }

    #[test]
    fn saves_loads_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().to_owned(), None);
        assert_eq!(store.load().unwrap(), None);
        let lock = store.lock("test", 1000).unwrap();
        store.save(&state(), &lock).unwrap();
        assert_eq!(store.load().unwrap(), Some(state()));
        let mut other = state();
        other.version = 99;
        std::fs::write(store.file(), other.encode()).unwrap();
        assert!(format!("{:#}", store.load().unwrap_err()).contains("version 99"));
        std::fs::write(store.file(), b"garbage").unwrap();
        assert!(store.load().is_err());
    }

    #[test]
    fn a_second_run_cannot_take_a_held_lock_but_takes_an_abandoned_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().to_owned(), Some("1/4"));
        let held = store.lock("first", 1000).unwrap();
        let err = store.lock("second", 2000).unwrap_err();
        assert!(
            format!("{err:#}").contains("locked by another run (first)"),
            "{err:#}"
        );
        std::mem::forget(held);
        assert!(store.lock("third", 1000 + LOCK_TTL_SECS + 1).is_ok());
        assert!(
            store
                .describe()
                .ends_with("trailsight-state-shard-1-of-4.json.gz")
        );
    }
}
