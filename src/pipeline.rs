//! The only place that owns concurrency: list the needed day folders, fetch objects with a
//! bounded number in flight, decode them on blocking threads while the next ones download,
//! aggregate in listing order, detect, and write the output.
//!
//! An object that cannot be fetched (after the source's retries) withholds the Insights of its
//! account and region: they could be wrong without its records, so none of that partition's
//! files are written or removed, and the summary names the partition for a later run. A
//! corrupt object is different: it is counted and skipped, and the output is written.

use crate::aggregate::{Aggregated, Aggregator};
use crate::config::AnalyzeConfig;
use crate::decode::{DecodeOptions, decode_object};
use crate::detect::{self, assemble};
use crate::model::insight::InsightRecord;
use crate::model::{DayRange, ObjectRef, Partition, Window};
use crate::sink::json;
use crate::source::{Listing, Source, layout};
use crate::telemetry::RunSummary;
use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Run one analysis: read, detect, write. Errors are fatal (listing, output); unreadable
/// objects are counted in the summary instead.
pub async fn analyze(config: &AnalyzeConfig) -> anyhow::Result<RunSummary> {
    let mut summary = RunSummary {
        source: config.source.describe(),
        output: config.output.describe(),
        ..RunSummary::default()
    };
    let source = Arc::new(config.source.clone());
    let partitions = source
        .partitions(&config.filter)
        .await
        .context("discovering accounts and regions")?;
    if partitions.is_empty() {
        bail!(
            "no CloudTrail logs under {}: expected [prefix/]AWSLogs/[o-orgid/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ \
             (check the path and the --accounts/--regions filters)",
            summary.source
        );
    }
    summary.partitions = partitions.len() as u64;
    let Some(days) = analysed_days(config, &source, &partitions).await? else {
        tracing::warn!("no day folders found: nothing to analyse");
        return Ok(summary);
    };
    summary.first_day = Some(days.first.to_string());
    summary.last_day = Some(days.last.to_string());
    let window = Window::for_days(days);
    tracing::info!(
        first_day = %days.first, last_day = %days.last, partitions = partitions.len(),
        "analysing {} to {} (reading {} to {})", days.first, days.last, window.folders.first, window.folders.last
    );

    let objects = list(&source, &partitions, window.folders, config, &mut summary).await?;
    let aggregated = read(&source, objects, window, config, &mut summary).await;
    if config.strict {
        strict_check(&summary)?;
    }
    summary.series = aggregated.series.len() as u64;
    let detector = config.detector.clone();
    let (records, counts) =
        tokio::task::spawn_blocking(move || detect_all(&aggregated, window, &detector))
            .await
            .context("detection stopped unexpectedly")?;
    summary.insights = counts.by_type;
    summary.open_insights = counts.open;
    write(config, records, &partitions, days, &mut summary).await?;
    summary.s3_requests = config
        .source
        .request_counts()
        .or_else(|| config.output.request_counts());
    Ok(summary)
}

/// The skip reason of an object whose bytes could not be fetched.
pub const FETCH_FAILED: &str = "fetch failed";

/// The requested days, or every delivery day found in the source.
async fn analysed_days(
    config: &AnalyzeConfig,
    source: &Source,
    partitions: &[Partition],
) -> anyhow::Result<Option<DayRange>> {
    if let Some(days) = config.days {
        return Ok(Some(days));
    }
    let found: Vec<_> = stream::iter(partitions)
        .map(|p| source.days(p))
        .buffer_unordered(config.list_concurrency)
        .try_collect()
        .await
        .context("listing day folders")?;
    let all: BTreeSet<_> = found.into_iter().flatten().collect();
    Ok(match (all.first(), all.last()) {
        (Some(first), Some(last)) => Some(DayRange::new(*first, *last)),
        _ => None,
    })
}

/// List the day folders of every partition, in parallel, returning objects in key order.
async fn list(
    source: &Source,
    partitions: &[Partition],
    folders: DayRange,
    config: &AnalyzeConfig,
    summary: &mut RunSummary,
) -> anyhow::Result<Vec<ObjectRef>> {
    let requests: Vec<_> = partitions
        .iter()
        .flat_map(|p| folders.days().map(move |d| (p, d)))
        .collect();
    let listings: Vec<Listing> = stream::iter(requests)
        .map(|(p, d)| source.objects(p, d))
        .buffered(config.list_concurrency)
        .try_collect()
        .await
        .context("listing log objects")?;
    let mut objects = Vec::new();
    for listing in listings {
        for ignored in &listing.ignored {
            summary.ignore(&ignored.display, &ignored.reason);
        }
        objects.extend(listing.objects);
    }
    summary.objects_listed = objects.len() as u64;
    Ok(objects)
}

/// Fetch and decode every object (bounded), aggregating in listing order.
async fn read(
    source: &Arc<Source>,
    objects: Vec<ObjectRef>,
    window: Window,
    config: &AnalyzeConfig,
    summary: &mut RunSummary,
) -> Aggregated {
    let options = Arc::new(DecodeOptions {
        window,
        filter: config.filter.clone(),
        max_object_bytes: config.max_object_bytes,
    });
    let cpu = Arc::new(Semaphore::new(config.decode_threads.max(1)));
    let mut results = stream::iter(objects)
        .map(|object| {
            let (source, options, cpu) = (source.clone(), options.clone(), cpu.clone());
            async move {
                let bytes = match source.fetch(&object).await {
                    Ok(bytes) => bytes,
                    Err(e) => return (object, Err((FETCH_FAILED.to_owned(), e.to_string()))),
                };
                let size = bytes.len() as u64;
                let _permit = cpu.acquire_owned().await;
                let key = object.key.clone();
                let decoded =
                    tokio::task::spawn_blocking(move || decode_object(&bytes, &key, &options))
                        .await;
                let outcome = match decoded {
                    Ok(Ok(decoded)) => Ok((decoded, size)),
                    Ok(Err(e)) => Err((e.reason().to_owned(), e.to_string())),
                    Err(e) => Err(("decoder crashed".to_owned(), e.to_string())),
                };
                (object, outcome)
            }
        })
        .buffered(config.fetch_concurrency.max(1));
    let mut aggregator = Aggregator::new();
    while let Some((object, outcome)) = results.next().await {
        match outcome {
            Ok((decoded, size)) => {
                summary.objects_read += 1;
                summary.bytes_read += size;
                summary.add_records(&decoded.stats);
                aggregator.add(&decoded);
            }
            Err((reason, detail)) => {
                if reason == FETCH_FAILED
                    && let Ok(key) = layout::parse_log_key(&object.key)
                {
                    summary.withhold(&key.partition.account, &key.partition.region);
                }
                summary.skip(&object.display, &reason, &detail);
            }
        }
    }
    summary.duplicates_dropped = aggregator.stats.duplicates;
    aggregator.finish(window.history_from)
}

fn strict_check(summary: &RunSummary) -> anyhow::Result<()> {
    let ignored: u64 = summary.files_ignored.values().sum();
    if summary.skipped_total() + summary.bad_records_total() + ignored > 0 {
        bail!(
            "--strict: {} objects skipped, {} bad records, {} files ignored; nothing was written",
            summary.skipped_total(),
            summary.bad_records_total(),
            ignored
        );
    }
    Ok(())
}

#[derive(Debug, Default)]
struct EpisodeCounts {
    by_type: BTreeMap<String, u64>,
    open: u64,
}

/// Detect episodes in every series and assemble their records.
fn detect_all(
    data: &Aggregated,
    window: Window,
    config: &detect::DetectorConfig,
) -> (Vec<InsightRecord>, EpisodeCounts) {
    let mut records = Vec::new();
    let mut counts = EpisodeCounts::default();
    for series in &data.series {
        for episode in
            detect::detect_series(series, window.detect_from, window.detect_until, config)
        {
            *counts
                .by_type
                .entry(episode.key.kind.insight_type().to_owned())
                .or_default() += 1;
            counts.open += u64::from(episode.end.is_none());
            records.extend(assemble::episode_records(&episode, series, data));
        }
    }
    (records, counts)
}

/// Write one file per account, region and day; remove our own files for analysed days that
/// now have no Insights, so a re-run with other settings leaves no stale output. Withheld
/// partitions are left as they are. Writes and removals run with a bounded number in flight.
async fn write(
    config: &AnalyzeConfig,
    records: Vec<InsightRecord>,
    partitions: &[Partition],
    days: DayRange,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let orgs: BTreeMap<String, String> = partitions
        .iter()
        .filter_map(|p| p.org_id.clone().map(|o| (p.account.clone(), o)))
        .collect();
    let mut files = json::plan_files(records, &orgs);
    files.retain(|f| !summary.is_withheld(&f.account, &f.region));
    summary.insight_records_written = files.iter().map(|f| f.records.len() as u64).sum();
    let written: BTreeSet<String> = files.iter().map(|f| f.key.clone()).collect();
    let in_flight = config.list_concurrency.max(1);
    stream::iter(&files)
        .map(|file| {
            config
                .output
                .put(&file.key, json::encode_file(&file.records))
        })
        .buffer_unordered(in_flight)
        .try_collect::<()>()
        .await?;
    summary.files_written = files.len() as u64;
    let analysed: BTreeSet<(&str, &str)> = partitions
        .iter()
        .map(|p| (p.account.as_str(), p.region.as_str()))
        .filter(|(account, region)| !summary.is_withheld(account, region))
        .collect();
    let candidates: Vec<String> = analysed
        .into_iter()
        .flat_map(|(account, region)| {
            let org = orgs.get(account).map(String::as_str);
            days.days()
                .map(move |day| json::file_key(org, account, region, day))
        })
        .filter(|key| !written.contains(key))
        .collect();
    let removed: Vec<bool> = stream::iter(&candidates)
        .map(|key| config.output.remove(key))
        .buffer_unordered(in_flight)
        .try_collect()
        .await?;
    summary.stale_files_removed = removed.into_iter().filter(|r| *r).count() as u64;
    tracing::info!(
        records = summary.insight_records_written,
        files = summary.files_written,
        "wrote {} Insight records in {} files to {}",
        summary.insight_records_written,
        summary.files_written,
        summary.output
    );
    Ok(())
}
