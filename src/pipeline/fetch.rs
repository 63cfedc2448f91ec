//! Fetching objects one request at a time (S3, and `report`'s re-reads from either kind of
//! source) and decoding them on blocking threads while the next ones download: at most
//! `fetch_concurrency` requests in flight, at most `max_bytes_in_flight` compressed bytes held
//! (`store::budget`), at most `decode_threads` objects decoded at once, results in listing order.
//! Local runs read through `local_read` instead, which needs no budget.

use crate::decode::{DecodeOptions, DecodedObject, decode_object};
use crate::model::ObjectRef;
use crate::model::problem::{ReadFailure, SkipReason};
use crate::source::Source;
use crate::store::budget::FetchBudget;
use futures::{Stream, StreamExt, stream};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A decoded object and its size as stored, or why it was skipped.
pub type Outcome = Result<(DecodedObject, u64), ReadFailure>;

/// How much may be in flight at once.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub fetch_concurrency: usize,
    pub decode_threads: usize,
    pub max_bytes_in_flight: u64,
}

/// Fetch and decode `objects`, yielding each with its outcome in the order given.
pub fn fetch_decoded(
    source: Arc<Source>,
    objects: Vec<ObjectRef>,
    options: Arc<DecodeOptions>,
    bounds: Bounds,
) -> impl Stream<Item = (ObjectRef, Outcome)> {
    let cpu = Arc::new(Semaphore::new(bounds.decode_threads.max(1)));
    let budget = FetchBudget::new(bounds.max_bytes_in_flight);
    stream::iter(objects)
        .map(move |object| {
            let (source, options) = (source.clone(), options.clone());
            let (cpu, budget) = (cpu.clone(), budget.clone());
            async move {
                let outcome = fetch_and_decode(&source, &object, options, cpu, &budget).await;
                (object, outcome)
            }
        })
        .buffered(bounds.fetch_concurrency.max(1))
}

/// The outcome of decoding `bytes`.
pub fn decode_outcome(
    decoded: Result<DecodedObject, crate::decode::DecodeError>,
    bytes: &[u8],
) -> Outcome {
    match decoded {
        Ok(decoded) => Ok((decoded, bytes.len() as u64)),
        Err(e) => Err(ReadFailure {
            reason: e.reason(),
            detail: e.to_string(),
        }),
    }
}

/// Fetch one object and decode it on a blocking thread. It holds its listed size from `budget`
/// from before its GET until it is decoded, and a permit of `cpu` while it is decoded. An
/// object over the size cap is skipped (not withheld: a retry cannot help).
async fn fetch_and_decode(
    source: &Source,
    object: &ObjectRef,
    options: Arc<DecodeOptions>,
    cpu: Arc<Semaphore>,
    budget: &FetchBudget,
) -> Outcome {
    let _in_flight = budget.reserve(object.size).await;
    let waiting = crate::telemetry::waiting::on(object);
    let bytes = source.fetch(object, options.max_object_bytes).await?;
    drop(waiting);
    let _permit = cpu.acquire_owned().await;
    let key = object.key();
    tokio::task::spawn_blocking(move || {
        decode_outcome(decode_object(&bytes, &key, &options), &bytes)
    })
    .await
    .unwrap_or_else(|e| {
        Err(ReadFailure {
            reason: SkipReason::DecoderCrashed,
            detail: e.to_string(),
        })
    })
}
