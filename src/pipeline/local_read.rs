//! Local objects read and decoded on threads of their own.
//!
//! A day of a local archive is thousands of small files, read in small batches. Handing every
//! batch from the counting task to a blocking thread and back cost two cross-thread wake-ups per
//! batch, and with them a quarter of a 2-core machine sat idle. Here `threads` threads take the
//! batches from one queue, in listing order, themselves; each batch's results come back through
//! a slot of its own, and the slots reach the counting task in listing order, at most `AHEAD`
//! batches ahead of it (so memory stays bounded however far the readers could run).

use super::fetch::{Outcome, decode_outcome};
use crate::decode::{DecodeOptions, decode_object};
use crate::model::ObjectRef;
use crate::model::problem::{ReadFailure, SkipReason};
use crate::source::{Source, local};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// Batches read but not yet counted, at most.
const AHEAD: usize = 16;

/// A batch is at most this many consecutive files ...
const BATCH_OBJECTS: usize = 32;
/// ... and at most this many compressed bytes: one handoff per batch, not per file (CloudTrail
/// writes many small files; a handoff per file costs as much as decoding it).
const BATCH_BYTES: u64 = 4 << 20;

/// The largest buffer for an object's (compressed) bytes a reading thread keeps between
/// objects; CloudTrail's objects are far smaller.
const KEPT_READ_BUFFER: usize = 8 << 20;

/// The objects of one batch and what became of each, in listing order.
pub(super) type BatchOutcome = Vec<(ObjectRef, Outcome)>;

/// Start reading `objects` on `threads` threads, in batches. The receiver yields one slot per
/// batch, in order; every slot is filled unless the receiver is dropped first.
pub(super) fn start(
    source: Arc<Source>,
    objects: Vec<ObjectRef>,
    options: Arc<DecodeOptions>,
    threads: usize,
) -> mpsc::Receiver<oneshot::Receiver<BatchOutcome>> {
    let (slots, ordered) = mpsc::channel(AHEAD);
    let queue = Arc::new(Mutex::new(VecDeque::from(objects)));
    let work = move || reader(&source, &queue, &options, &slots);
    let started = (0..threads.max(1))
        .filter(|n| {
            let spawned = std::thread::Builder::new()
                .name(format!("trailsight-read-{n}"))
                .spawn(work.clone());
            if let Err(e) = &spawned {
                tracing::warn!("cannot start a reading thread ({e}); reading with fewer");
            }
            spawned.is_ok()
        })
        .count();
    if started == 0 {
        // No thread of our own: read on the runtime's blocking pool instead.
        drop(tokio::task::spawn_blocking(work));
    }
    ordered
}

/// The next batch: the first objects of `queue`, at most `BATCH_OBJECTS` of them and
/// `BATCH_BYTES` (at least one object). Taken as the readers go, so the day's objects are held
/// once, not a second time cut into batches.
fn next_batch(queue: &mut VecDeque<ObjectRef>) -> Option<Vec<ObjectRef>> {
    let mut bytes = 0;
    let mut n = 0;
    for object in queue.iter() {
        if n == BATCH_OBJECTS || (n > 0 && bytes + object.size > BATCH_BYTES) {
            break;
        }
        bytes += object.size;
        n += 1;
    }
    (n > 0).then(|| queue.drain(..n).collect())
}

/// One reading thread: takes the next batch (handing its slot on under the queue's lock, so
/// slots keep the listing order), reads it, fills the slot; until the queue is empty or
/// nobody counts any more.
fn reader(
    source: &Source,
    queue: &Mutex<VecDeque<ObjectRef>>,
    options: &DecodeOptions,
    slots: &mpsc::Sender<oneshot::Receiver<BatchOutcome>>,
) {
    let mut folder = local::FolderReader::default();
    let mut bytes = Vec::new();
    let mut key = String::new();
    loop {
        let (batch, fill) = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(batch) = next_batch(&mut queue) else {
                return;
            };
            let (fill, slot) = oneshot::channel();
            // Waits while `AHEAD` batches wait to be counted.
            if slots.blocking_send(slot).is_err() {
                return;
            }
            (batch, fill)
        };
        let outcomes = batch
            .into_iter()
            .map(|object| {
                let waiting = crate::telemetry::waiting::on(&object);
                let outcome = read_one(source, &object, options, &mut folder, &mut bytes, &mut key);
                drop(waiting);
                if bytes.capacity() > KEPT_READ_BUFFER {
                    bytes = Vec::new(); // not held for the rest of the run after a large object
                }
                (object, outcome)
            })
            .collect();
        if fill.send(outcomes).is_err() {
            return;
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

    /// Batches hold at most `BATCH_OBJECTS` objects and `BATCH_BYTES`, and at least one object.
    #[test]
    fn batches_are_bounded_by_count_and_bytes() {
        const MIB: u64 = 1 << 20;
        let cases: [(&str, Vec<u64>, Vec<usize>); 4] = [
            ("small files", vec![10; 70], vec![32, 32, 6]),
            ("by bytes", vec![MIB; 9], vec![4, 4, 1]),
            ("one over the limit", vec![1, 5 * MIB, 1], vec![1, 1, 1]),
            ("none", vec![], vec![]),
        ];
        for (case, sizes, want) in cases {
            let mut queue: VecDeque<ObjectRef> = sizes
                .iter()
                .map(|s| ObjectRef::single("k", "k", *s))
                .collect();
            let got: Vec<usize> = std::iter::from_fn(|| next_batch(&mut queue))
                .map(|b| b.len())
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    /// Slots come back in listing order whatever order the threads finish in, every object is
    /// accounted for, and a bad object is named without stopping its batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn results_come_back_in_listing_order() {
        let dir = tempfile::tempdir().unwrap();
        let folder = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07";
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        // 400 files make 13 batches; larger files first, so later batches tend to finish first.
        let mut objects = Vec::new();
        for n in 0..400 {
            let name = format!("f{n:03}.json");
            let records = vec![r#"{"eventName":"x"}"#; (400 - n) * 4].join(",");
            let body = if n == 70 {
                "not json".to_owned()
            } else {
                format!(r#"{{"Records":[{records}]}}"#)
            };
            std::fs::write(dir.path().join(folder).join(&name), &body).unwrap();
            let key = format!("{folder}/{name}");
            objects.push(ObjectRef::single(&key, &name, body.len() as u64));
        }
        let listed: Vec<String> = objects.iter().map(ObjectRef::key).collect();
        let day = parse_day("2019-11-07").unwrap();
        let options = Arc::new(DecodeOptions {
            window: Window::for_days(DayRange::new(day, day)),
            filter: Default::default(),
            max_object_bytes: 1 << 20,
            selection: Default::default(),
        });
        let source = Arc::new(Source::Local(local::LocalSource::new(dir.path().into())));
        let mut slots = start(source, objects, options, 4);
        let mut seen = Vec::new();
        while let Some(slot) = slots.recv().await {
            for (object, outcome) in slot.await.unwrap() {
                let bad = object.key().ends_with("f070.json");
                assert_eq!(outcome.is_err(), bad, "{}", object.key());
                seen.push(object.key());
            }
        }
        assert_eq!(seen, listed);
    }
}
