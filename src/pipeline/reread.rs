//! Reading log objects again, for `trailsight report`: the day folders around each episode are
//! fetched with a bounded number (and bytes) in flight and decoded on blocking threads, by the
//! same `fetch_and_decode` as a run's S3 reads (never holding more than `--max-object-bytes` of
//! an object), and
//! every decoded object is handed to the caller in listing order. Nothing is
//! aggregated or written here; the report counts what it needs.

use super::fetch_and_decode;
use crate::decode::{DecodeOptions, DecodedObject};
use crate::model::ObjectRef;
use crate::source::Source;
use crate::source::s3::budget::{DEFAULT_MAX_BYTES_IN_FLIGHT, FetchBudget};
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
    let budget = FetchBudget::new(DEFAULT_MAX_BYTES_IN_FLIGHT);
    let mut results = stream::iter(objects)
        .map(|object| {
            let (source, options, cpu, budget) =
                (source.clone(), options.clone(), cpu.clone(), budget.clone());
            async move {
                let outcome = fetch_and_decode(&source, &object, options, cpu, &budget).await;
                (object, outcome.map(|(decoded, _size)| decoded))
            }
        })
        .buffered(bounds.fetch_concurrency.max(1));
    while let Some((object, outcome)) = results.next().await {
        let records = outcome.as_ref().map_or(0, |d| d.stats.records);
        telemetry::progress::object_done(object.size, records);
        on_object(&object, outcome);
    }
}
