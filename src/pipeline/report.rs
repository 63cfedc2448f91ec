//! Driving `trailsight report`: read the output tree through `sink::read` (a directory or an S3
//! prefix), pair the records, read the log folders around each episode again through `source`
//! and `fetch` (bounded, as a run reads), count each episode's series with `report::series`,
//! and write the page drawn by `report::html`. Only the reading is concurrent, and it is here.

use super::fetch::{self, Bounds};
use crate::decode::DecodeOptions;
use crate::model::problem::{ReadFailure, SkippedObject};
use crate::model::{
    CallRateScope, DayRange, EventCategory, EventSelection, Minute, ObjectRef, Partition, Window,
};
use crate::report::{self, Episode, ReportConfig, ReportSummary, html, series};
use crate::sink;
use crate::source::Source;
use crate::source::layout::PartitionFilter;
use crate::store::Store;
use crate::telemetry;
use anyhow::Context;
use chrono::Duration;
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

/// Read the Insights (and, with a source, the logs around them) and write the page.
pub async fn report(config: &ReportConfig) -> anyhow::Result<ReportSummary> {
    let started = Instant::now();
    let insights = config.insights.describe();
    let loaded = sink::read::load(&config.insights)
        .await
        .with_context(|| format!("--insights {insights}: cannot list it"))?;
    let coverage = report::coverage::coverage(
        &loaded
            .runs
            .iter()
            .map(|(_, r)| r.clone())
            .collect::<Vec<_>>(),
        &loaded.bad_objects,
    );
    let coverage_skipped = loaded.coverage_skipped;
    let mut summary = ReportSummary {
        html: config.html.display().to_string(),
        insight_files: loaded.insight_files,
        explanation_files: loaded.explanation_files,
        skipped: loaded.skipped,
        bad_records: loaded.rejected_records.len() as u64,
        rejected_records: loaded.rejected_records,
        ..ReportSummary::default()
    };
    if loaded.insight_files == 0 && coverage.runs == 0 {
        tracing::warn!(
            "no Insight files under {insights} (expected AWSLogs/.../CloudTrail-Insight/...): the report is empty"
        );
    }
    let paired = report::pair(loaded.records, loaded.explanations);
    summary.episodes = paired.episodes.len() as u64;
    summary.open_episodes = paired.episodes.iter().filter(|e| e.end.is_none()).count() as u64;
    summary.ends_without_start = paired.ends_without_start;
    summary.duplicates = paired.duplicates;
    summary.bad_records += paired.bad_records;
    summary.rejected_records.extend(paired.rejected);
    let counts = match &config.source {
        Some(source) if !paired.episodes.is_empty() => {
            let counted = count_from_logs(config, source, &paired.episodes).await?;
            summary.log_objects_read = counted.objects_read;
            summary.skipped.extend(counted.skipped);
            Some(counted.counts)
        }
        _ => None,
    };
    telemetry::progress::doing("drawing");
    let page = html::Page {
        insights_dir: &insights,
        source: config.source.as_ref().map(Source::describe),
        episodes: &paired.episodes,
        counts: counts.as_deref(),
        context_minutes: config.context_minutes,
        page_size: config.page_size,
        coverage: &coverage,
        coverage_skipped: &coverage_skipped,
    };
    let text = html::render(&page)?;
    write_page(&config.html, text.as_bytes()).await?;
    summary.html_bytes = text.len() as u64;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Write the page through the store of its folder: atomically, under an unpredictable
/// temporary name, never through a link in the file's place.
async fn write_page(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    if crate::cli::is_stdout(path) {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .context("--html -: cannot write the page to standard output");
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("--html {}: not a file name", path.display()))?;
    Store::local(folder)
        .put(name, bytes.to_vec())
        .await
        .with_context(|| format!("--html {}: cannot write it", path.display()))
}

/// The events to decode to count every episode again: data events when one is on data events,
/// read-only calls when a call-rate Insight counted them.
fn recount_selection(requests: &[series::Request]) -> EventSelection {
    let all = requests
        .iter()
        .any(|r| r.key.category == EventCategory::Management && r.scope == CallRateScope::All);
    EventSelection {
        management: true,
        data: requests
            .iter()
            .any(|r| r.key.category == EventCategory::Data),
        call_rate: if all {
            CallRateScope::All
        } else {
            CallRateScope::Write
        },
    }
}

/// Per-minute counts for every episode, over its `report::count_windows` window.
struct Counted {
    counts: Vec<Vec<u64>>,
    objects_read: u64,
    skipped: Vec<SkippedObject>,
}

/// Read the day folders around every episode once, and count each episode's series.
///
/// Records are counted under their own `recipientAccountId` and `awsRegion`, as a run counts
/// them, wherever they are filed. First the folders named like the records' account and region
/// are read (the usual layout); an episode whose own minutes then hold no call of its series is
/// looked for in every other folder of its days (logs copied under another account's folder,
/// as some public data sets are). Each object is read at most once.
async fn count_from_logs(
    config: &ReportConfig,
    source: &Source,
    episodes: &[Episode],
) -> anyhow::Result<Counted> {
    let windows = report::count_windows(episodes, config.context_minutes);
    let requests: Vec<series::Request> = episodes
        .iter()
        .zip(windows)
        .map(|(e, (from, until))| series::Request {
            key: e.key(),
            scope: e.call_rate_scope().unwrap_or_default(),
            from,
            until,
        })
        .collect();
    let folders = report::day_folders(&requests);
    // Decoding keeps the records of the Insights' accounts and regions, by the records' own
    // fields, whatever folder holds them.
    let filter = PartitionFilter {
        accounts: Some(folders.keys().map(|(a, _)| a.clone()).collect()),
        regions: Some(folders.keys().map(|(_, r)| r.clone()).collect()),
        shard: None,
    };
    let partitions = source
        .partitions(&PartitionFilter::default())
        .await
        .context("--source: discovering accounts and regions")?;
    let (own, others): (Vec<_>, Vec<_>) = partitions
        .into_iter()
        .partition(|p| folders.contains_key(&(p.account.clone(), p.region.clone())));
    let from = requests.iter().map(|r| r.from).min().unwrap_or(Minute(0));
    let until = requests.iter().map(|r| r.until).max().unwrap_or(Minute(0));
    let options = Arc::new(DecodeOptions {
        window: Window {
            history_from: from,
            detect_from: from,
            detect_until: until,
            folders: DayRange::new(from.day(), until.day() + Duration::days(1)),
        },
        filter,
        max_object_bytes: config.max_object_bytes,
        selection: recount_selection(&requests),
    });
    let mut counted = Counted {
        counts: Vec::new(),
        objects_read: 0,
        skipped: Vec::new(),
    };
    let mut recount = series::Recount::new(requests.clone());

    let own_folders = own.iter().flat_map(|p| {
        let days = folders.get(&(p.account.clone(), p.region.clone()));
        days.into_iter().flatten().map(move |day| (p, *day))
    });
    let objects = list_folders(source, own_folders).await?;
    read_into(
        config,
        source,
        objects,
        &options,
        &mut recount,
        &mut counted,
    )
    .await;

    // Episodes with no call in their own minutes: look in every other folder of their days.
    let counts = recount.counts();
    let missing: Vec<series::Request> = requests
        .iter()
        .zip(episodes)
        .zip(&counts)
        .filter(|((r, e), c)| own_minutes_total(r, e, c) == 0)
        .map(|((r, _), _)| r.clone())
        .collect();
    if !missing.is_empty() && !others.is_empty() {
        let days: BTreeSet<chrono::NaiveDate> = report::day_folders(&missing)
            .into_values()
            .flatten()
            .collect();
        tracing::info!(
            episodes = missing.len(),
            folders = others.len(),
            "{} episodes have no call in the folders of their own account and region: reading the other folders of their days",
            missing.len()
        );
        let other_folders = others
            .iter()
            .flat_map(|p| days.iter().map(move |day| (p, *day)));
        let objects = list_folders(source, other_folders).await?;
        read_into(
            config,
            source,
            objects,
            &options,
            &mut recount,
            &mut counted,
        )
        .await;
    }
    counted.counts = recount.finish();
    for ((r, e), c) in requests.iter().zip(episodes).zip(&counted.counts) {
        if own_minutes_total(r, e, c) == 0 {
            tracing::warn!(
                shared_event_id = e.shared_event_id(),
                "the logs read hold no {} of {} {} in account {} region {} during its Insight ({}): its chart shows the Insight records' averages",
                if e.is_error_rate() { "error" } else { "call" },
                r.key.event_source,
                r.key.event_name,
                r.key.account,
                r.key.region,
                e.start_minute.to_rfc3339(),
            );
        }
    }
    Ok(counted)
}

/// The calls counted in an episode's own minutes (`counts` are its request's, from `r.from`).
fn own_minutes_total(r: &series::Request, e: &Episode, counts: &[u64]) -> u64 {
    let (start, end) = e.own_minutes();
    let lo = (start.0 - r.from.0).clamp(0, counts.len() as i64) as usize;
    let hi = (end.0 - r.from.0).clamp(lo as i64, counts.len() as i64) as usize;
    counts[lo..hi].iter().sum()
}

/// The log objects of each (partition, day) folder, in order.
async fn list_folders(
    source: &Source,
    folders: impl IntoIterator<Item = (&Partition, chrono::NaiveDate)>,
) -> anyhow::Result<Vec<ObjectRef>> {
    let mut objects = Vec::new();
    for (partition, day) in folders {
        let listing = source
            .objects(partition, day)
            .await
            .context("--source: listing log objects")?;
        objects.extend(listing.objects);
    }
    Ok(objects)
}

/// Fetch and decode `objects` (bounded, as a run reads), counting each into `recount`.
async fn read_into(
    config: &ReportConfig,
    source: &Source,
    objects: Vec<crate::model::ObjectRef>,
    options: &Arc<DecodeOptions>,
    recount: &mut series::Recount,
    counted: &mut Counted,
) {
    let bounds = Bounds {
        fetch_concurrency: config.fetch_concurrency,
        decode_threads: config.decode_threads,
        max_bytes_in_flight: config.max_bytes_in_flight,
    };
    telemetry::progress::listed(&objects);
    let results = fetch::fetch_decoded(Arc::new(source.clone()), objects, options.clone(), bounds);
    let mut results = std::pin::pin!(results);
    while let Some((object, outcome)) = results.next().await {
        let records = outcome.as_ref().map_or(0, |(d, _)| d.stats.records);
        telemetry::progress::object_done(object.size, records);
        match outcome {
            Ok((decoded, _)) => {
                counted.objects_read += 1;
                recount.add(&decoded);
            }
            Err(ReadFailure { reason, detail }) => {
                tracing::warn!(object = %object, reason = reason.as_str(), "skipped {object}: {detail}");
                counted.skipped.push(SkippedObject {
                    object: object.display(),
                    reason: reason.as_str().to_owned(),
                    detail,
                });
            }
        }
    }
}
