//! Local objects read and decoded on threads of their own.
//!
//! A day of a local archive is thousands of small files, read in small batches. Handing every
//! batch from the counting task to a blocking thread and back cost two cross-thread wake-ups per
//! batch, and with them a quarter of a 2-core machine sat idle. Here `threads` threads take the
//! batches from one queue, in listing order, themselves; each batch's results come back through
//! a slot of its own, and the slots reach the counting task in listing order, at most `AHEAD`
//! batches ahead of it (so memory stays bounded however far the readers could run).

use super::{Outcome, decode_outcome};
use crate::decode::{DecodeOptions, decode_object};
use crate::model::ObjectRef;
use crate::source::{Source, local};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// Batches read but not yet counted, at most.
const AHEAD: usize = 16;

/// The objects of one batch and what became of each, in listing order.
pub(super) type BatchOutcome = Vec<(ObjectRef, Outcome)>;

/// Start reading `batches` on `threads` threads. The receiver yields one slot per batch, in
/// order; every slot is filled unless the receiver is dropped first.
pub(super) fn start(
    source: Arc<Source>,
    batches: Vec<Vec<ObjectRef>>,
    options: Arc<DecodeOptions>,
    threads: usize,
) -> mpsc::Receiver<oneshot::Receiver<BatchOutcome>> {
    let (slots, ordered) = mpsc::channel(AHEAD);
    let queue = Arc::new(Mutex::new(VecDeque::from(batches)));
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

/// One reading thread: takes the next batch (handing its slot on under the queue's lock, so
/// slots keep the listing order), reads it, fills the slot; until the queue is empty or
/// nobody counts any more.
fn reader(
    source: &Source,
    queue: &Mutex<VecDeque<Vec<ObjectRef>>>,
    options: &DecodeOptions,
    slots: &mpsc::Sender<oneshot::Receiver<BatchOutcome>>,
) {
    loop {
        let (batch, fill) = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(batch) = queue.pop_front() else {
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
                let outcome = read_one(source, &object, options);
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
fn read_one(source: &Source, object: &ObjectRef, options: &DecodeOptions) -> Outcome {
    let read = || {
        let path = source.local_path(object).unwrap_or_default();
        match local::read_object(&path, options.max_object_bytes) {
            Ok(bytes) => decode_outcome(decode_object(&bytes, &object.key, options), &bytes),
            Err(e) => Err((e.reason().to_owned(), e.to_string())),
        }
    };
    catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err((
            "decoder crashed".to_owned(),
            "the decoder stopped on this object (a bug in trailsight: please report it)".to_owned(),
        ))
    })
}
