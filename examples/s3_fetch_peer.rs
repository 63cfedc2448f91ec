//! The network-time peer of `scripts/bench-s3`: what `trailsight analyze --source s3://...` does
//! minus the decoding. It walks the bucket the way the pipeline does (partitions, delivery days,
//! the day folders, as many listings at a time as trailsight) and downloads every log object
//! through the same `Source::fetch` (the same SDK client, retries and body reading),
//! `--concurrency` at once in listing order, each holding its size from the same bytes-in-flight
//! budget while it downloads, then drops the bytes. It prints one JSON line: objects, bytes,
//! seconds.
//!
//!   cargo run --release --example s3_fetch_peer -- s3://BUCKET[/PREFIX] ENDPOINT_URL \
//!     [CONCURRENCY [MAX_BYTES_IN_FLIGHT]]
//!
//! Credentials and the region come from the environment, as for trailsight.

use futures::{StreamExt, TryStreamExt, stream};
use std::collections::BTreeSet;
use std::time::Instant;
use trailsight::config::{DEFAULT_S3_FETCH_CONCURRENCY, DEFAULT_S3_LIST_CONCURRENCY};
use trailsight::decode::DEFAULT_MAX_OBJECT_BYTES;
use trailsight::source::Source;
use trailsight::source::layout::PartitionFilter;
use trailsight::source::s3::S3Source;
use trailsight::store::budget::{DEFAULT_MAX_BYTES_IN_FLIGHT, FetchBudget};
use trailsight::store::s3::{S3Client, S3Settings, S3Url};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, endpoint, rest @ ..] = args.as_slice() else {
        anyhow::bail!(
            "usage: s3_fetch_peer s3://BUCKET[/PREFIX] ENDPOINT_URL [CONCURRENCY [MAX_BYTES_IN_FLIGHT]]"
        );
    };
    let concurrency = match rest.first() {
        Some(n) => n.parse::<usize>()?.max(1),
        None => DEFAULT_S3_FETCH_CONCURRENCY,
    };
    let budget = match rest.get(1) {
        Some(n) => FetchBudget::new(n.parse()?),
        None => FetchBudget::new(DEFAULT_MAX_BYTES_IN_FLIGHT),
    };
    let Some(url) = S3Url::parse(url).map_err(anyhow::Error::msg)? else {
        anyhow::bail!("{url}: not an s3:// address");
    };
    let client = S3Client::new(S3Settings {
        endpoint_url: Some(endpoint.clone()),
        force_path_style: true,
        list_concurrency: DEFAULT_S3_LIST_CONCURRENCY,
        ..S3Settings::default()
    });
    let source = Source::S3(S3Source::new(client, url));

    let started = Instant::now();
    let partitions = source.partitions(&PartitionFilter::default()).await?;
    let days: Vec<Vec<_>> = stream::iter(&partitions)
        .map(|p| source.days(p))
        .buffer_unordered(DEFAULT_S3_LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let days: BTreeSet<_> = days.into_iter().flatten().collect();
    let folders: Vec<_> = partitions
        .iter()
        .flat_map(|p| days.iter().map(move |d| (p, *d)))
        .collect();
    let listings: Vec<_> = stream::iter(folders)
        .map(|(p, d)| source.objects(p, d))
        .buffered(DEFAULT_S3_LIST_CONCURRENCY)
        .try_collect()
        .await?;
    let mut objects: Vec<_> = listings.into_iter().flat_map(|l| l.objects).collect();
    objects.sort();
    let listed = started.elapsed().as_secs_f64();

    let (source, budget) = (&source, &budget);
    let sizes: Vec<usize> = stream::iter(objects)
        .map(|object| async move {
            let _in_flight = budget.reserve(object.size).await;
            match source.fetch(&object, DEFAULT_MAX_OBJECT_BYTES).await {
                Ok(bytes) => Ok(bytes.len()),
                Err(e) => Err(anyhow::anyhow!("{object}: {e}")),
            }
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    let bytes: usize = sizes.iter().sum();
    println!(
        "{{\"objects\": {}, \"bytes\": {bytes}, \"list_seconds\": {listed:.3}, \"seconds\": {:.3}, \"concurrency\": {concurrency}, \"max_bytes_in_flight\": {}}}",
        sizes.len(),
        started.elapsed().as_secs_f64(),
        budget.bytes()
    );
    Ok(())
}
