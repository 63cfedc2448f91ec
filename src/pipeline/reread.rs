//! Reading log objects again, for `trailsight report`: the day folders around each episode are
//! fetched with a bounded number in flight and decoded on blocking threads, like a run's own
//! reads (and, like them, never holding more than `--max-object-bytes` of an object), and
//! every decoded object is handed to the caller in listing order. Nothing is
//! aggregated or written here; the report counts what it needs.

use crate::decode::{DecodeOptions, DecodedObject, decode_object};
use crate::model::ObjectRef;
use crate::source::Source;
use crate::telemetry;
use futures::{StreamExt, stream};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Why an object could not be read: (reason, detail), as in the run summary.
pub type ReadFailure = (String, String);

/// How many objects at once.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub fetch_concurrency: usize,
    pub decode_threads: usize,
}

/// Fetch and decode `objects`, calling `on_object` for each one in order.
pub async fn decode_objects(
    source: Arc<Source>,
    objects: Vec<ObjectRef>,
    options: DecodeOptions,
    bounds: Bounds,
    mut on_object: impl FnMut(&ObjectRef, Result<DecodedObject, ReadFailure>),
) {
    telemetry::progress::listed(&objects);
    let options = Arc::new(options);
    let cpu = Arc::new(Semaphore::new(bounds.decode_threads.max(1)));
    let mut results = stream::iter(objects)
        .map(|object| {
            let (source, options, cpu) = (source.clone(), options.clone(), cpu.clone());
            async move {
                let bytes = match source.fetch(&object, options.max_object_bytes).await {
                    Ok(bytes) => bytes,
                    Err(e) => return (object, Err((e.reason.to_owned(), e.message))),
                };
                let _permit = cpu.acquire_owned().await;
                let key = object.key.clone();
                let decoded =
                    tokio::task::spawn_blocking(move || decode_object(&bytes, &key, &options))
                        .await;
                let outcome = match decoded {
                    Ok(Ok(decoded)) => Ok(decoded),
                    Ok(Err(e)) => Err((e.reason().to_owned(), e.to_string())),
                    Err(e) => Err(("decoder crashed".to_owned(), e.to_string())),
                };
                (object, outcome)
            }
        })
        .buffered(bounds.fetch_concurrency.max(1));
    while let Some((object, outcome)) = results.next().await {
        let records = outcome.as_ref().map_or(0, |d| d.stats.records);
        telemetry::progress::object_done(object.size, records);
        on_object(&object, outcome);
    }
}
