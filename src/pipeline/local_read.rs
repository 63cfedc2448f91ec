//! Local objects read and decoded on threads of their own.
//!
//! A day of a local archive is thousands of small files, read in small batches. Handing every
//! batch from the counting task to a blocking thread and back cost two cross-thread wake-ups per
//! batch, and with them a quarter of a 2-core machine sat idle. Here `threads` threads take the
//! batches from one queue, in listing order, themselves, and each says which thread has each
//! batch in the same order; each thread hands its results back through a channel of its own
//! (one made a batch cost 1% of a run), so the counting task takes the batches in listing order
//! from the thread that has each, at most `AHEAD` batches ahead of it (so memory stays bounded
//! however far the readers could run).
//!
//! A local listing does not give the files' sizes, so a batch's length is guessed from the
//! objects read lately (`RecentSize`), and what a batch holds is bounded by what its reader has
//! read: the results come back in chunks of about `BATCH_BYTES`, and at most `AHEAD` chunks
//! wait to be counted in all (a reader waits to send more). A bad guess (small files, then
//! large ones) costs some reading in parallel for a batch or two, never memory.

use super::fetch::{Outcome, decode_outcome};
use crate::decode::{DecodeOptions, decode_object};
use crate::model::ObjectRef;
use crate::model::problem::{ReadFailure, SkipReason};
use crate::source::{Source, local};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;

/// Batches read but not yet counted, at most.
const AHEAD: usize = 16;

/// A batch is at most this many consecutive files ...
const BATCH_OBJECTS: usize = 32;
/// ... and about this many compressed bytes: one handoff per batch, not per file (CloudTrail
/// writes many small files; a handoff per file costs as much as decoding it). Also the most a
/// chunk of a batch's results holds, but for its last object.
const BATCH_BYTES: u64 = 4 << 20;

/// The size taken for an object before any has been read: a run's first batches are short.
const FIRST_GUESS: u64 = BATCH_BYTES / 8;

/// The largest buffer for an object's (compressed) bytes a reading thread keeps between
/// objects; CloudTrail's objects are far smaller.
const KEPT_READ_BUFFER: usize = 8 << 20;

/// Consecutive objects and what became of each, in listing order.
pub(super) type Outcomes = Vec<(ObjectRef, Outcome)>;

/// Part of a batch's results; the `last` ends the batch.
struct Chunk {
    outcomes: Outcomes,
    last: bool,
}

/// The size of the objects read lately, for the length of the next batch: an average that
/// follows the last few objects. Kept by the run from day to day.
#[derive(Debug)]
pub(super) struct RecentSize(AtomicU64);

impl Default for RecentSize {
    fn default() -> RecentSize {
        RecentSize(AtomicU64::new(FIRST_GUESS))
    }
}

impl RecentSize {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// An object of `size` bytes was read. Not atomic as a whole: when two readers update it at
    /// once one update is lost, which only makes a guess a little older.
    fn read(&self, size: u64) {
        let recent = self.get();
        self.0
            .store(recent - recent / 4 + size / 4, Ordering::Relaxed);
    }
}

/// Emptied result vectors, handed back by the counting task (`Results::give_back`) for the
/// readers' next chunks. A chunk's vector is made on a reading thread and dropped on the
/// counting one: a fresh one for each chunk cost about 1.4 % of a backfill's CPU, glibc
/// consolidating its small free chunks before each allocation of that size.
type SpareOutcomes = Mutex<Vec<Outcomes>>;

/// A vector for a chunk's results, a spare one if any.
fn spare_outcomes(spare: &SpareOutcomes) -> Outcomes {
    let taken = spare.lock().ok().and_then(|mut spare| spare.pop());
    taken.unwrap_or_else(|| Vec::with_capacity(BATCH_OBJECTS))
}

/// What the counting task receives: the batches' results in listing order.
pub(super) struct Results {
    /// For each batch, in listing order, the reading thread that has it.
    slots: mpsc::Receiver<usize>,
    /// Each reading thread's results: its batches' chunks, in the order it took the batches.
    chunks: Vec<mpsc::Receiver<Chunk>>,
    /// The thread whose batch is being received.
    receiving: Option<usize>,
    spare: Arc<SpareOutcomes>,
}

/// A batch whose reader stopped before handing back all of its results: which of its objects
/// were counted is unknown.
#[derive(Debug)]
pub(super) struct BatchLost;

impl Results {
    /// The next objects' results, in listing order; `None` once every object is; `BatchLost`
    /// once for a batch whose reader stopped (not expected: a reader catches decoder panics).
    /// Cancel-safe: a result is taken only when it is returned.
    pub(super) async fn next(&mut self) -> Option<Result<Outcomes, BatchLost>> {
        let thread = match self.receiving {
            Some(thread) => thread,
            None => *self.receiving.insert(self.slots.recv().await?),
        };
        let chunk = match self.chunks.get_mut(thread) {
            Some(chunks) => chunks.recv().await,
            None => None,
        };
        if chunk.as_ref().is_none_or(|c| c.last) {
            self.receiving = None;
        }
        Some(chunk.map(|c| c.outcomes).ok_or(BatchLost))
    }

    /// Hand back a chunk's vector, its results taken, for the readers' next chunks.
    pub(super) fn give_back(&self, mut outcomes: Outcomes) {
        outcomes.clear();
        if let Ok(mut spare) = self.spare.lock()
            && spare.len() < AHEAD
        {
            spare.push(outcomes);
        }
    }
}

/// Start reading `objects` on `threads` threads, in batches as long as `recent` guesses. Every
/// object's result comes back unless `Results` is dropped first.
pub(super) fn start(
    source: Arc<Source>,
    objects: Vec<ObjectRef>,
    options: Arc<DecodeOptions>,
    threads: usize,
    recent: Arc<RecentSize>,
) -> Results {
    let (slots, ordered) = mpsc::channel(AHEAD);
    let queue = Arc::new(Mutex::new(VecDeque::from(objects)));
    let spare = Arc::new(SpareOutcomes::default());
    let readers_spare = spare.clone();
    let work = move |me: usize, fill: mpsc::Sender<Chunk>| {
        let slot = (&slots, me);
        reader(
            &source,
            &queue,
            &options,
            &recent,
            slot,
            (&fill, &readers_spare),
        );
    };
    let mut chunks = Vec::new();
    let room = (AHEAD / threads.max(1)).max(1);
    for n in 0..threads.max(1) {
        let (fill, receiver) = mpsc::channel(room);
        let (work, me) = (work.clone(), chunks.len());
        let spawned = std::thread::Builder::new()
            .name(format!("trailsight-read-{n}"))
            .spawn(move || work(me, fill));
        match spawned {
            Ok(_) => chunks.push(receiver),
            Err(e) => tracing::warn!("cannot start a reading thread ({e}); reading with fewer"),
        }
    }
    if chunks.is_empty() {
        // No thread of our own: read on the runtime's blocking pool instead.
        let (fill, receiver) = mpsc::channel(AHEAD);
        chunks.push(receiver);
        drop(tokio::task::spawn_blocking(move || work(0, fill)));
    }
    Results {
        slots: ordered,
        chunks,
        receiving: None,
        spare,
    }
}

/// The next batch: the first objects of `queue`, at most `BATCH_OBJECTS` of them and about
/// `BATCH_BYTES` (at least one object), an object counted at its listed size, or at `recent`
/// when it was listed without one. Taken as the readers go, so the day's objects are held once,
/// not a second time cut into batches.
fn next_batch(queue: &mut VecDeque<ObjectRef>, recent: u64) -> Option<Vec<ObjectRef>> {
    let mut bytes = 0;
    let mut n = 0;
    for object in queue.iter() {
        let size = if object.size > 0 { object.size } else { recent };
        if n == BATCH_OBJECTS || (n > 0 && bytes + size > BATCH_BYTES) {
            break;
        }
        bytes += size;
        n += 1;
    }
    (n > 0).then(|| queue.drain(..n).collect())
}

/// One reading thread, thread `me`: takes the next batch (saying it has it under the queue's
/// lock, so the slots keep the listing order), reads it, sends its results in chunks; until the
/// queue is empty or nobody counts any more.
fn reader(
    source: &Source,
    queue: &Mutex<VecDeque<ObjectRef>>,
    options: &DecodeOptions,
    recent: &RecentSize,
    (slots, me): (&mpsc::Sender<usize>, usize),
    (fill, spare): (&mpsc::Sender<Chunk>, &SpareOutcomes),
) {
    let mut folder = local::FolderReader::default();
    let mut bytes = Vec::new();
    let mut key = String::new();
    loop {
        let batch = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(batch) = next_batch(&mut queue, recent.get()) else {
                return;
            };
            // Waits while `AHEAD` batches wait to be counted.
            if slots.blocking_send(me).is_err() {
                return;
            }
            batch
        };
        let mut left = batch.len();
        let mut chunk = spare_outcomes(spare);
        let mut chunk_bytes = 0;
        for object in batch {
            let waiting = crate::telemetry::waiting::on(&object);
            let outcome = read_one(source, &object, options, &mut folder, &mut bytes, &mut key);
            drop(waiting);
            if bytes.capacity() > KEPT_READ_BUFFER {
                bytes = Vec::new(); // not held for the rest of the run after a large object
            }
            if let Ok((_, size)) = &outcome {
                recent.read(*size);
                chunk_bytes += size;
            }
            chunk.push((object, outcome));
            left -= 1;
            let last = left == 0;
            if last || chunk_bytes >= BATCH_BYTES {
                let next = if last {
                    Vec::new()
                } else {
                    spare_outcomes(spare)
                };
                let outcomes = std::mem::replace(&mut chunk, next);
                if fill.blocking_send(Chunk { outcomes, last }).is_err() {
                    return;
                }
                chunk_bytes = 0;
            }
        }
    }
}

/// Read and decode one file. A panic in the decoder costs this object only (`decoder crashed`),
/// never the batch or the run.
fn read_one(
    source: &Source,
    object: &ObjectRef,
    options: &DecodeOptions,
    folder: &mut local::FolderReader,
    bytes: &mut Vec<u8>,
    key: &mut String,
) -> Outcome {
    let read = || {
        let root = source.local_root().unwrap_or(std::path::Path::new(""));
        match folder.read_listed(root, object, options.max_object_bytes, bytes) {
            Ok(()) => {
                let key = object.key_into(key);
                decode_outcome(decode_object(bytes, key, options), bytes)
            }
            Err(e) => Err(ReadFailure {
                reason: e.reason(),
                detail: e.to_string(),
            }),
        }
    };
    catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(ReadFailure {
            reason: SkipReason::DecoderCrashed,
            detail: "the decoder stopped on this object (a bug in trailsight: please report it)"
                .to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DayRange, Window, parse_day};

    /// Batches hold at most `BATCH_OBJECTS` objects and `BATCH_BYTES`, and at least one object;
    /// an object listed without a size counts as large as the recent ones.
    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        const MIB: u64 = 1 << 20;
        let cases: [(&str, Vec<u64>, u64, Vec<usize>); 7] = [
            ("small files", vec![10; 70], MIB, vec![32, 32, 6]),
            ("by bytes", vec![MIB; 9], 1, vec![4, 4, 1]),
            ("one over the limit", vec![1, 5 * MIB, 1], 1, vec![1, 1, 1]),
            ("none", vec![], 1, vec![]),
            ("no sizes, small recent ones", vec![0; 40], 10, vec![32, 8]),
            (
                "no sizes, large recent ones",
                vec![0; 9],
                MIB,
                vec![4, 4, 1],
            ),
            (
                "no sizes, huge recent ones",
                vec![0; 2],
                5 * MIB,
                vec![1, 1],
            ),
        ];
        for (case, sizes, recent, want) in cases {
            let mut queue: VecDeque<ObjectRef> = sizes
                .iter()
                .map(|s| ObjectRef::single("k", "k", *s))
                .collect();
            let got: Vec<usize> = std::iter::from_fn(|| next_batch(&mut queue, recent))
                .map(|b| b.len())
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    /// The recent size follows what is read, and soon.
    #[test]
    fn the_recent_size_follows_the_objects_read() {
        let recent = RecentSize::default();
        assert_eq!(recent.get(), FIRST_GUESS);
        (0..40).for_each(|_| recent.read(100));
        assert!((100..110).contains(&recent.get()), "{recent:?}");
        (0..8).for_each(|_| recent.read(4 << 20));
        assert!(recent.get() > 3 << 20, "{recent:?}");
    }

    /// Start reading `files` (name, body, listed size) written to a day folder under `dir`, on
    /// `threads` threads; with their keys in listing order.
    fn read_files(
        dir: &std::path::Path,
        files: impl Iterator<Item = (String, String, u64)>,
        threads: usize,
        recent: Arc<RecentSize>,
    ) -> (Results, Vec<String>) {
        let folder = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07";
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        let mut objects = Vec::new();
        for (name, body, size) in files {
            std::fs::write(dir.join(folder).join(&name), &body).unwrap();
            objects.push(ObjectRef::single(&format!("{folder}/{name}"), &name, size));
        }
        let keys = objects.iter().map(ObjectRef::key).collect();
        let day = parse_day("2019-11-07").unwrap();
        let options = Arc::new(DecodeOptions {
            window: Window::for_days(DayRange::new(day, day)),
            filter: Default::default(),
            max_object_bytes: 4 << 20,
            selection: Default::default(),
        });
        let source = Arc::new(Source::Local(local::LocalSource::new(dir.into())));
        (start(source, objects, options, threads, recent), keys)
    }

    /// Slots come back in listing order whatever order the threads finish in, every object is
    /// accounted for, and a bad object is named without stopping its batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_back_in_listing_order() {
        let dir = tempfile::tempdir().unwrap();
        // 400 files make 13 batches; larger files first, so later batches tend to finish first.
        let files = (0..400).map(|n| {
            let records = vec![r#"{"eventName":"x"}"#; (400 - n) * 4].join(",");
            let body = if n == 70 {
                "not json".to_owned()
            } else {
                format!(r#"{{"Records":[{records}]}}"#)
            };
            let size = body.len() as u64;
            (format!("f{n:03}.json"), body, size)
        });
        let (mut results, listed) = read_files(dir.path(), files, 4, Arc::default());
        let mut seen = Vec::new();
        while let Some(outcomes) = results.next().await {
            for (object, outcome) in outcomes.unwrap() {
                let bad = object.key().ends_with("f070.json");
                assert_eq!(outcome.is_err(), bad, "{}", object.key());
                seen.push(object.key());
            }
        }
        assert_eq!(seen, listed);
    }

    /// A batch longer than its guess (small files read lately, then large ones, listed without
    /// sizes) comes back in chunks of `BATCH_BYTES` and one object at most, in order: its
    /// results are never held whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_comes_back_in_chunks_of_bounded_bytes() {
        let dir = tempfile::tempdir().unwrap();
        const SIZE: usize = 1 << 20;
        let files = (0..10).map(|n| {
            let body = format!(r#"{{"Records":[{}]}}"#, " ".repeat(SIZE - 14));
            (format!("f{n:02}.json"), body, 0)
        });
        let recent = Arc::new(RecentSize(AtomicU64::new(1)));
        let (mut results, listed) = read_files(dir.path(), files, 1, recent.clone());
        let mut chunks = Vec::new();
        let mut seen = Vec::new();
        while let Some(outcomes) = results.next().await {
            let outcomes = outcomes.unwrap();
            chunks.push(outcomes.len());
            for (object, outcome) in outcomes {
                assert_eq!(outcome.unwrap().1, SIZE as u64, "{}", object.key());
                seen.push(object.key());
            }
        }
        assert_eq!(seen, listed);
        // One batch of all ten (guessed at a byte each), in chunks of four 1 MiB objects.
        assert_eq!(chunks, [4, 4, 2]);
        assert!(recent.get() > SIZE as u64 / 2, "{recent:?}");
    }
}
