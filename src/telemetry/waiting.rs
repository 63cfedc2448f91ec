//! What the run is waiting for: every object being fetched or read, and every local folder
//! being listed, is registered here while it is, so that a run that hangs on one (a file system
//! that stopped answering, a connection that keeps its retries going) says which, in the log,
//! instead of going silent. A watch thread
//! warns about each object waited on longer than the stall time, again each time that passes,
//! until it is answered; the run itself goes on (or stops cleanly on SIGTERM).
//!
//! Registering is a short lock and a slot of a table taken per object (CloudTrail objects take
//! tens of microseconds each to decode; slots are reused, so a registration allocates nothing),
//! holding the object itself (a shared reference to its listing), not its name: the name is
//! spelled out only when the log names it.

use crate::model::ObjectRef;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Seconds waited on one object before the log says so, unless `--stall-warn-secs`.
pub const DEFAULT_STALL_WARN_SECS: u64 = 120;

/// What is waited on.
enum What {
    Object(ObjectRef),
    /// The listing of a local folder (its path).
    Folder(std::path::PathBuf),
}

impl std::fmt::Display for What {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Object(object) => object.fmt(f),
            What::Folder(path) => write!(f, "the listing of {}", path.display()),
        }
    }
}

struct Waited {
    what: What,
    since: Instant,
    /// When the log last named it.
    warned: Option<Instant>,
}

/// Everything waited on, each in a slot of its own until it is answered; free slots are taken
/// again first.
struct Table {
    slots: Vec<Option<Waited>>,
    free: Vec<usize>,
}

static WAITING: Mutex<Table> = Mutex::new(Table {
    slots: Vec::new(),
    free: Vec::new(),
});

fn waiting() -> std::sync::MutexGuard<'static, Table> {
    WAITING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registration of one object waited on; dropping it (answered, failed or abandoned) ends it.
#[must_use]
pub struct Waiting(usize);

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut table = waiting();
        if let Some(slot) = table.slots.get_mut(self.0) {
            // Its object is dropped after the lock is let go: the last reference to a listing
            // frees it.
            let waited = slot.take();
            table.free.push(self.0);
            drop(table);
            drop(waited);
        }
    }
}

/// The run waits for `object` (its display name, as in the summary) from now on.
pub fn on(object: &ObjectRef) -> Waiting {
    register(What::Object(object.clone()))
}

/// The run waits for the listing of the local folder at `path` from now on.
pub fn on_folder(path: &std::path::Path) -> Waiting {
    register(What::Folder(path.to_owned()))
}

fn register(what: What) -> Waiting {
    let waited = Waited {
        what,
        since: Instant::now(),
        warned: None,
    };
    let mut table = waiting();
    let slot = match table.free.pop() {
        Some(slot) => slot,
        None => {
            table.slots.push(None);
            table.slots.len() - 1
        }
    };
    table.slots[slot] = Some(waited);
    Waiting(slot)
}

/// The objects waited on for `stall` or longer and not named in the last `stall`, with how
/// long each has been waited on, the longest first; they count as named from `now`.
fn overdue(now: Instant, stall: Duration) -> Vec<(String, Duration)> {
    let mut table = waiting();
    let mut overdue: Vec<(String, Duration)> = table
        .slots
        .iter_mut()
        .flatten()
        .filter(|w| {
            now.duration_since(w.since) >= stall
                && w.warned.is_none_or(|at| now.duration_since(at) >= stall)
        })
        .map(|w| {
            w.warned = Some(now);
            (w.what.to_string(), now.duration_since(w.since))
        })
        .collect();
    drop(table);
    overdue.sort_by_key(|(_, waited)| std::cmp::Reverse(*waited));
    overdue
}

/// Watch for stalls from now on, on a thread of its own, for the rest of the process: each
/// object waited on for `stall` is named in a warning, again every `stall` while it lasts.
pub fn watch(stall: Duration) {
    let tick = (stall / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
    let spawned = std::thread::Builder::new()
        .name("trailsight-stall-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                for (object, waited) in overdue(Instant::now(), stall) {
                    tracing::warn!(
                        object = %object,
                        waited_secs = waited.as_secs(),
                        "still waiting after {} s for {object}: a file system or connection that \
                         stopped answering? The run goes on when it answers; SIGTERM stops it \
                         cleanly",
                        waited.as_secs()
                    );
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the stall watch ({e}); long waits are not logged");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_waited_on_past_the_stall_is_named_once_per_stall_until_answered() {
        let stall = Duration::from_secs(60);
        let object = ObjectRef::single(
            "a-test-object-of-waiting",
            "s3://bucket/a-test-object-of-waiting",
            1,
        );
        let waited = on(&object);
        let is_ours = |o: &Vec<(String, Duration)>| {
            o.iter()
                .any(|(name, _)| name == "s3://bucket/a-test-object-of-waiting")
        };
        let start = Instant::now();
        assert!(!is_ours(&overdue(start + Duration::from_secs(59), stall)));
        assert!(is_ours(&overdue(start + Duration::from_secs(61), stall)));
        // Named again only once another stall has passed.
        assert!(!is_ours(&overdue(start + Duration::from_secs(90), stall)));
        assert!(is_ours(&overdue(start + Duration::from_secs(122), stall)));
        drop(waited);
        assert!(!is_ours(&overdue(start + Duration::from_secs(999), stall)));
    }

    /// A run registers every object it reads: the table holds what is waited on at once, not
    /// everything ever waited on.
    #[test]
    fn slots_are_taken_again() {
        let object = |name: &str| ObjectRef::single(name, name, 1);
        for n in 0..10_000 {
            drop(on(&object(&format!("a-test-object-read-{n}"))));
        }
        // Other tests may hold a few slots at the same time.
        let slots = waiting().slots.len();
        assert!(slots < 100, "{slots}");
    }

    #[test]
    fn a_folder_listed_past_the_stall_is_named() {
        let stall = Duration::from_secs(60);
        let path = std::path::Path::new("/archive/a-test-folder-of-waiting/2019/11/07");
        let waited = on_folder(path);
        let start = Instant::now();
        let named = |at: u64| {
            overdue(start + Duration::from_secs(at), stall)
                .iter()
                .any(|(name, _)| {
                    name == "the listing of /archive/a-test-folder-of-waiting/2019/11/07"
                })
        };
        assert!(!named(59));
        assert!(named(61));
        drop(waited);
        assert!(!named(999));
    }
}
