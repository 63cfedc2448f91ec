//! The only place that owns concurrency: list the needed day folders, fetch objects with a
//! bounded number in flight, decode them on blocking threads while the next ones download,
//! aggregate in listing order, detect, and write the output.
//!
//! Every run, a backfill (`analyze`) or a nightly run (`nightly`), goes day by day through the
//! same step (`Run::advance`): read the objects not read yet, up to the folder of the day after
//! (late deliveries), detect from the day of the oldest episode still open, rewrite the output of
//! the days that may have changed, forget minutes the next day no longer needs, and save the
//! state last. So N nightly runs give the same bytes as one backfill, and a backfill killed part
//! way and resumed gives the same bytes as one that was not.
//!
//! An object that cannot be fetched, or a day folder that cannot be listed (after the source's
//! retries), withholds the Insights of its account and region: they could be wrong without
//! those records, so none of that partition's files are written or removed, the summary names
//! the object or folder and the partition, and the run stops before the state moves past that
//! day, so a later run redoes it. A corrupt object is different: it is counted and skipped,
//! and the output is written. These decisions come from the run's own record of what it could
//! not read (`Run::withheld`, `Run::unread`); the summary only reports them.
//!
//! `report` is driven from here too (`report`): it reads the output through `sink`, the logs
//! through `source` and `fetch`, and hands them to the `report` module's pure stages.

use crate::aggregate::{Aggregator, IdentityFilter, Names, Series, SeriesView};
use crate::config::{AnalyzeConfig, NightlyPlan};
use crate::decode::{DecodeOptions, Strings};
use crate::detect::{self, assemble};
use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
use crate::model::problem::{ReadFailure, SkipReason};
use crate::model::{
    BASELINE_DAYS, CallRateScope, EventCategory, EventSelection, Minute, parse_day,
};
use crate::model::{DayRange, ObjectRef, Partition, Window};
use crate::sink::{DayResults, notify};
use crate::source::Source;
use crate::source::layout::{PartitionFilter, Shard, ShardAssignment};
use crate::state::{
    PartitionDeliveries, RunState, STATE_VERSION, StateLock, StuckObject, StuckPartition,
    object_hash,
};
use crate::stop::until_stopped;
use crate::telemetry::{self, DeliveryGap, RunSummary, ShardCounts, Stage};
use anyhow::{Context, bail};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use fetch::{Bounds, Outcome};
use futures::{StreamExt, TryStreamExt, stream};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

mod deliveries;
mod fetch;
mod local_read;
mod record;
pub mod report;
mod stuck;

/// Analyse a range of days (a backfill): day by day, with memory bounded by the window, not
/// the range. With a state store the run is resumable: it continues after the last day a
/// previous (interrupted) run completed, and gives the same output as an uninterrupted run.
pub async fn analyze(config: &AnalyzeConfig) -> Result<RunSummary, Failed> {
    let config = &*with_state_shard_assignment(config).await;
    let recorder = record::Recorder::start("analyze");
    let mut seen = None;
    let result = analyze_run(config, &mut seen).await;
    recorder.finish(config, seen.clone(), &result).await;
    result.map_err(|error| Failed::new(config, seen, error))
}

/// A run that failed: why, and what it had done (for `--summary-json`, which a monitor reads
/// whatever the exit code).
#[derive(Debug)]
pub struct Failed {
    pub error: anyhow::Error,
    pub summary: RunSummary,
}

impl Failed {
    fn new(config: &AnalyzeConfig, seen: Option<RunSummary>, error: anyhow::Error) -> Failed {
        Failed {
            summary: record::summary_so_far(config, seen),
            error,
        }
    }
}

/// `analyze`; after a failure mid-run, `seen` holds the summary so far (for the run's record).
async fn analyze_run(
    config: &AnalyzeConfig,
    seen: &mut Option<RunSummary>,
) -> anyhow::Result<RunSummary> {
    let mut run = Run::start(config).await?;
    if run.is_empty_shard() {
        return Ok(run.summary);
    }
    let started = Instant::now();
    let Some(days) = analysed_days(config, &run.source, &run.partitions).await? else {
        bail!(
            "no CloudTrail day folders under {} for the days asked for (--from {}, --to {}) in any of its {} partition(s): nothing to analyse",
            run.summary.source,
            config
                .days
                .from
                .map_or("(first found)".into(), |d| d.to_string()),
            config
                .days
                .to
                .map_or("(last found)".into(), |d| d.to_string()),
            run.partitions.len()
        );
    };
    run.summary.timed(Stage::List, started);
    let started = Instant::now();
    let lock = lock_state(config).await?;
    run.summary.timed(Stage::StateLoad, started);
    let result = analyze_locked(config, &mut run, days, lock.as_ref()).await;
    let result = match result {
        Ok(()) => match run.found_nothing() {
            Some(searched) => Err(anyhow::anyhow!(
                "no CloudTrail log objects under {} in the day folders {} to {} of its {} partition(s) \
                 (the days {} to {}, their {BASELINE_DAYS} baseline days and the day after): nothing was analysed; check --source and --from/--to",
                run.summary.source,
                searched.first,
                searched.last,
                run.partitions.len(),
                days.first,
                days.last
            )),
            None => Ok(()),
        },
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(()) => run.finish_notifications().await,
        Err(e) => Err(e),
    };
    let started = Instant::now();
    release(lock).await;
    run.summary.timed(Stage::StateSave, started);
    match result {
        Ok(()) => Ok(run.summary),
        Err(e) => {
            *seen = Some(run.summary);
            Err(e)
        }
    }
}

/// `analyze` once the state (if any) is locked.
async fn analyze_locked(
    config: &AnalyzeConfig,
    run: &mut Run<'_>,
    days: DayRange,
    lock: Option<&StateLock>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let loaded = load_state(config, &run.summary.source, lock).await?;
    run.summary.timed(Stage::StateLoad, started);
    let mut progress = match loaded {
        Some(progress) => progress,
        None => Progress::fresh(days.first, config),
    };
    let first = match progress.analysed_through {
        Some(done) if done >= days.last && !progress.stuck.is_empty() => {
            return run.recover(&mut progress, done, lock).await;
        }
        Some(done) if done >= days.last => {
            tracing::info!("already analysed through {done}: nothing to do");
            return Ok(());
        }
        Some(done) => (done + Duration::days(1)).max(days.first),
        None => days.first,
    };
    let result = run
        .advance_through(&mut progress, DayRange::new(first, days.last), lock)
        .await;
    free_aside(progress);
    result
}

/// The nightly run: read only what is new since the last run (kept in the state), analyse every
/// day that became complete, and save the state last.
pub async fn nightly(config: &AnalyzeConfig, plan: NightlyPlan) -> Result<RunSummary, Failed> {
    let config = &*with_state_shard_assignment(config).await;
    let recorder = record::Recorder::start("nightly");
    let mut seen = None;
    let result = nightly_run(config, plan, &mut seen).await;
    recorder.finish(config, seen.clone(), &result).await;
    result.map_err(|error| Failed::new(config, seen, error))
}

/// `nightly`; after a failure mid-run, `seen` holds the summary so far (for the run's record).
async fn nightly_run(
    config: &AnalyzeConfig,
    plan: NightlyPlan,
    seen: &mut Option<RunSummary>,
) -> anyhow::Result<RunSummary> {
    if config.state.is_none() {
        bail!("a nightly run needs --state: it is where the run remembers what it has read");
    }
    let mut run = Run::start(config).await?;
    if run.is_empty_shard() {
        return Ok(run.summary);
    }
    run.nightly = true;
    let started = Instant::now();
    let lock = lock_state(config).await?;
    run.summary.timed(Stage::StateLoad, started);
    let result = nightly_locked(config, plan, &mut run, lock.as_ref()).await;
    let result = match result {
        Ok(()) => run.finish_notifications().await,
        Err(e) => Err(e),
    };
    let started = Instant::now();
    release(lock).await;
    run.summary.timed(Stage::StateSave, started);
    match result {
        Ok(()) => Ok(run.summary),
        Err(e) => {
            *seen = Some(run.summary);
            Err(e)
        }
    }
}

/// `nightly` once the state is locked.
async fn nightly_locked(
    config: &AnalyzeConfig,
    plan: NightlyPlan,
    run: &mut Run<'_>,
    lock: Option<&StateLock>,
) -> anyhow::Result<()> {
    let last = plan.last_complete_day();
    let started = Instant::now();
    let loaded = load_state(config, &run.summary.source, lock).await?;
    run.summary.timed(Stage::StateLoad, started);
    let mut progress = match loaded {
        Some(progress) => progress,
        None => Progress::fresh(plan.first_day.unwrap_or(last), config),
    };
    let first = match progress.analysed_through {
        Some(done) => done + Duration::days(1),
        None => plan.first_day.unwrap_or(last),
    };
    if first > last {
        if let Some(done) = progress.analysed_through
            && !progress.stuck.is_empty()
        {
            return run.recover(&mut progress, done, lock).await;
        }
        match progress.analysed_through {
            // Ahead of the clock: a night replayed with a future --as-of (refused now, but an
            // older version took it) or a clock that ran fast. Said each night until it passes.
            Some(done) if done > last => tracing::warn!(
                "the state {} is analysed through {done}, after {last}, the last day ended at {}: nothing is analysed until the clock passes {done} (if a run whose clock or --as-of was in the future moved it ahead, start the state again with a backfill)",
                config
                    .state
                    .as_ref()
                    .map_or_else(String::new, |s| s.describe()),
                plan.as_of
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            Some(done) => tracing::info!("already analysed through {done}: nothing new to do"),
            None => tracing::info!(
                "nothing to analyse yet: the first day, {first}, has not ended (the last day ended is {last})"
            ),
        }
        return Ok(());
    }
    let result = run
        .advance_through(&mut progress, DayRange::new(first, last), lock)
        .await;
    free_aside(progress);
    result
}

/// Whether `object` may lie in the day folder of `day`: not when its folder's name ends in
/// another day. The objects already read (`Progress::processed`) are all of one folder, so an
/// object of another folder is not hashed to be looked up among them (a SHA-1 an object).
fn may_be_in_folder(object: &ObjectRef, day: Option<NaiveDate>) -> bool {
    let folder = &object.folder().key;
    let named = folder
        .strip_suffix('/')
        .and_then(|f| f.len().checked_sub(10).and_then(|at| f.get(at..)))
        .and_then(|ymd| {
            crate::source::layout::parse_folder_day(ymd.get(..4)?, ymd.get(5..7)?, ymd.get(8..)?)
        });
    match (named, day) {
        (Some(named), Some(day)) => named == day,
        _ => true,
    }
}

/// `test` of an object's folder, run once for each run of objects in the same folder (a
/// listing is in key order, a folder's objects together): a night lists tens of thousands of
/// objects in a thousand folders.
fn once_a_folder<T: Copy>(mut test: impl FnMut(&ObjectRef) -> T) -> impl FnMut(&ObjectRef) -> T {
    let mut last: Option<(String, T)> = None;
    move |object| {
        let key = &object.folder().key;
        match &last {
            Some((folder, found)) if folder == key => *found,
            _ => {
                let found = test(object);
                last = Some((key.clone(), found));
                found
            }
        }
    }
}

/// Drop the run's counts on a thread of their own: freeing a backfill's millions of cells and
/// IDs one by one is work nobody waits for, after the last output was written (and if the
/// process ends first, it frees them all at once). Without a thread, they are dropped here.
fn free_aside(progress: Progress) {
    let spawned = std::thread::Builder::new()
        .name("trailsight-free".into())
        .spawn(move || drop(progress));
    drop(spawned);
}

/// Give the state lock up, whether the run succeeded or not.
async fn release(lock: Option<StateLock>) {
    if let Some(lock) = lock {
        lock.release().await;
    }
}

/// `config` with the shard assignment its state was made with: a state sharded before the
/// assignment was recorded keeps its partitions (`ShardAssignment::Remainder`), since moving
/// them would drop their counts and call them delivery gaps.
async fn with_state_shard_assignment(config: &AnalyzeConfig) -> Cow<'_, AnalyzeConfig> {
    let (Some(shard), Some(store)) = (config.filter.shard, &config.state) else {
        return Cow::Borrowed(config);
    };
    if store.saved_shard_assignment().await != Some(None) {
        return Cow::Borrowed(config);
    }
    tracing::info!(
        "the state {} keeps the assignment of partitions to shards it was made with, which can leave some shards with few or none; a new state directory spreads them evenly",
        store.describe()
    );
    let mut config = config.clone();
    config.filter.shard = Some(Shard {
        assignment: ShardAssignment::Remainder,
        ..shard
    });
    Cow::Owned(config)
}

async fn lock_state(config: &AnalyzeConfig) -> anyhow::Result<Option<StateLock>> {
    let Some(store) = &config.state else {
        return Ok(None);
    };
    let holder = format!("pid {} on {}", std::process::id(), hostname());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let lock = store.lock(&holder, now).await?;
    store.remove_stale_temporaries(crate::sink::STALE_TEMPORARY_AGE);
    Ok(Some(lock))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown host".into())
}

async fn load_state(
    config: &AnalyzeConfig,
    source: &str,
    lock: Option<&StateLock>,
) -> anyhow::Result<Option<Progress>> {
    let (Some(store), Some(lock)) = (&config.state, lock) else {
        return Ok(None);
    };
    let excluded = IdentityFilter::new(config.excluded_identities.clone());
    let Some((state, counts)) = store.load(excluded).await? else {
        store.remove_leftovers(lock).await;
        return Ok(None);
    };
    if state.source != source {
        bail!(
            "the state {} was built from {}, not {source}; use another --state directory",
            store.describe(),
            state.source
        );
    }
    let events = config.selection.label();
    let saved = state
        .events
        .clone()
        .unwrap_or_else(|| EventSelection::default().label());
    if saved != events {
        bail!(
            "the state {} holds the counts of a run with {saved}, not {events}; run with the same \
             settings or use another --state directory",
            store.describe()
        );
    }
    let shard = config.filter.shard.map(|s| s.label());
    if state.shard != shard {
        bail!(
            "the state {} belongs to shard {:?}, this run is shard {shard:?}",
            store.describe(),
            state.shard
        );
    }
    let progress = Progress::from_state(state, counts)
        .with_context(|| format!("state {}", store.describe()))?;
    store.remove_leftovers(lock).await;
    // Loading freed each segment's inflated bytes and each day's cells once packed.
    release_free_heap_pages();
    Ok(Some(progress))
}

/// Days before the oldest day detection may still redo whose event IDs are kept, so a copy of
/// an event is dropped when it arrives within about this many days of the original (CloudTrail
/// delivers an event within minutes; a copy comes in the same or a close delivery, or from a
/// second trail writing the same events). A later copy counts again, in a baseline day only:
/// no Insight already written can change, and the IDs of the rest of the 7-day window (a quarter
/// of the aggregator's memory, a third of the state) are not kept for it.
const ID_DAYS: i64 = 2;

/// Give the allocator's free pages back to the system. Packing a day's minutes (or loading a
/// saved one) frees every series' earlier bytes a few at a time, and glibc keeps those pages
/// resident for reuse unless told otherwise (its automatic trim only releases the top of the
/// heap), so the next day read on top of them peaked 3-4 MiB higher on the organization set
/// (`docs/benchmarks.md`, session 21). A walk of the free lists once a day; a no-op where the
/// allocator is not glibc's.
fn release_free_heap_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free memory to the system; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the day-by-day analysis carries from one day to the next and, saved, between runs.
struct Progress {
    aggregator: Aggregator,
    /// The first minute ever read: the floor of every series' history.
    history_floor: Minute,
    analysed_through: Option<NaiveDate>,
    /// Detection restarts here: the day of the oldest episode still open.
    redetect_from: Option<NaiveDate>,
    /// The latest delivery-day folder read, perhaps only in part.
    folders_read_through: Option<NaiveDate>,
    /// Objects of that folder already read, by `object_key_hash` (`object_hash`).
    processed: BTreeSet<u128>,
    /// Partitions some of whose logs could not be read, by (account, region).
    stuck: BTreeMap<PartitionId, Stuck>,
    /// Log objects each partition delivered in its recent day folders (the gap rule's history).
    deliveries: BTreeMap<PartitionId, BTreeMap<NaiveDate, u64>>,
}

/// An (account, region) pair.
type PartitionId = (String, String);

/// A partition whose logs could not all be read: its Insights are withheld until a later run
/// reads what is missing, or gives it up after `AnalyzeConfig::quarantine_after_runs` runs.
#[derive(Debug, Clone, PartialEq)]
struct Stuck {
    /// Its detection restarts here once it is whole again (the detection start of the step
    /// that failed, so the days it rewrites come out as an uninterrupted run writes them).
    redetect_from: NaiveDate,
    /// Its output is withheld from this day on.
    withheld_from: NaiveDate,
    /// Objects to read again, by key, with their listed sizes.
    objects: BTreeMap<String, u64>,
    /// Day folders whose listing failed, to list again.
    folders: BTreeSet<NaiveDate>,
    /// Runs that failed to read it (this run's first failure counts).
    attempts: u32,
}

impl Progress {
    fn fresh(first_day: NaiveDate, config: &AnalyzeConfig) -> Progress {
        Progress {
            aggregator: Aggregator::with_excluded_identities(IdentityFilter::new(
                config.excluded_identities.clone(),
            )),
            history_floor: Minute::start_of_day(first_day - Duration::days(BASELINE_DAYS)),
            analysed_through: None,
            redetect_from: None,
            folders_read_through: None,
            processed: BTreeSet::new(),
            stuck: BTreeMap::new(),
            deliveries: BTreeMap::new(),
        }
    }

    /// The first minute the aggregator holds: the baseline of the oldest day detection may
    /// still redo. Earlier minutes (and their event IDs) are pruned because no detection reads
    /// them again; a record that arrives for one of them, however late, is out of scope, so it
    /// is neither counted twice nor able to change an Insight already written.
    fn kept_from(&self) -> Minute {
        let baseline_of =
            |day: NaiveDate| Minute::start_of_day(day - Duration::days(BASELINE_DAYS));
        self.oldest_redetect().map_or(self.history_floor, |day| {
            baseline_of(day).max(self.history_floor)
        })
    }

    /// The oldest day detection may still redo: the next day's, or a stuck partition's.
    fn oldest_redetect(&self) -> Option<NaiveDate> {
        (self.stuck.values().map(|s| s.redetect_from))
            .chain(self.redetect_from)
            .min()
    }

    /// Once a step has read its objects, no event ID is looked up and nothing is counted until
    /// the next step reads: forget the event IDs of the days more than `ID_DAYS` before the
    /// oldest day detection may still redo (`detecting` for the detection about to run, or the
    /// next), and pack the rest, and every series' minutes; free what decoding kept for the
    /// next objects, and give the free pages back.
    fn between_reads(&mut self, detecting: NaiveDate) {
        let oldest = self
            .oldest_redetect()
            .map_or(detecting, |d| d.min(detecting));
        let first = Minute::start_of_day(oldest - Duration::days(ID_DAYS));
        self.aggregator.forget_ids_before(first);
        self.aggregator.freeze();
        crate::decode::release_spares();
        release_free_heap_pages();
    }

    /// The progress `state` holds, with its counts (read with the run's excluded identities).
    fn from_state(state: RunState, counts: Aggregator) -> anyhow::Result<Progress> {
        let day = |text: &str| {
            parse_day(text)
                .ok_or_else(|| anyhow::anyhow!("the state holds a malformed day {text:?}"))
        };
        let mut progress = Progress {
            aggregator: counts,
            history_floor: Minute(state.history_floor),
            analysed_through: Some(day(&state.analysed_through)?),
            redetect_from: Some(day(&state.redetect_from)?),
            folders_read_through: Some(day(&state.folders_read_through)?),
            processed: state.processed.into_iter().collect(),
            deliveries: state
                .deliveries
                .into_iter()
                .map(|p| {
                    let days = p
                        .days
                        .iter()
                        .map(|(d, n)| Ok((day(d)?, *n)))
                        .collect::<anyhow::Result<_>>()?;
                    Ok(((p.account, p.region), days))
                })
                .collect::<anyhow::Result<_>>()?,
            stuck: state
                .stuck
                .into_iter()
                .map(|s| {
                    let stuck = Stuck {
                        redetect_from: day(&s.redetect_from)?,
                        withheld_from: day(&s.withheld_from)?,
                        objects: s.objects.into_iter().map(|o| (o.key, o.size)).collect(),
                        folders: s.folders.iter().map(|f| day(f)).collect::<Result<_, _>>()?,
                        attempts: s.attempts,
                    };
                    Ok(((s.account, s.region), stuck))
                })
                .collect::<anyhow::Result<_>>()?,
        };
        // A state saved by an earlier build holds the IDs of its whole window: the run goes on
        // with those a run of this build would have kept (and, from a single-file layout, its
        // minutes unpacked).
        let redetect = day(&state.redetect_from)?;
        progress.between_reads(redetect);
        Ok(progress)
    }

    fn to_state(&self, source: &str, config: &AnalyzeConfig) -> Option<RunState> {
        let text = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        Some(RunState {
            version: STATE_VERSION,
            source: source.to_owned(),
            shard: config.filter.shard.map(|s| s.label()),
            shard_assignment: config.filter.shard.and_then(|s| s.assignment.version()),
            history_floor: self.history_floor.0,
            analysed_through: text(self.analysed_through)?,
            redetect_from: text(self.redetect_from)?,
            folders_read_through: text(self.folders_read_through)?,
            processed: self.processed.iter().copied().collect(),
            deliveries: self
                .deliveries
                .iter()
                .filter(|(_, days)| !days.is_empty())
                .map(|((account, region), days)| PartitionDeliveries {
                    account: account.clone(),
                    region: region.clone(),
                    days: days.iter().map(|(d, n)| (d.to_string(), *n)).collect(),
                })
                .collect(),
            stuck: self
                .stuck
                .iter()
                .map(|((account, region), s)| StuckPartition {
                    account: account.clone(),
                    region: region.clone(),
                    redetect_from: s.redetect_from.to_string(),
                    withheld_from: s.withheld_from.to_string(),
                    objects: s
                        .objects
                        .iter()
                        .map(|(key, size)| StuckObject {
                            key: key.clone(),
                            size: *size,
                        })
                        .collect(),
                    folders: s.folders.iter().map(ToString::to_string).collect(),
                    attempts: s.attempts,
                })
                .collect(),
            events: (config.selection != EventSelection::default())
                .then(|| config.selection.label()),
        })
    }
}

/// One run: its configuration, source, partitions, what it could not read, and its summary.
struct Run<'c> {
    config: &'c AnalyzeConfig,
    source: Arc<Source>,
    partitions: Vec<Partition>,
    summary: RunSummary,
    /// (account, region) pairs whose Insights are withheld: an object could not be fetched or
    /// a day folder listed. Their output is neither written nor removed.
    withheld: BTreeSet<PartitionId>,
    /// Partitions read whole again by this run (or given up on): their detection restarts at
    /// the day, and their output is rewritten from it, in the next write.
    recovered: BTreeMap<PartitionId, NaiveDate>,
    /// Whether this run has retried the stuck partitions of the state yet.
    retried: bool,
    /// What the current step could not read: objects (with sizes) and day folders, by
    /// partition; filed into `Progress::stuck` after the step's reading.
    failed_objects: Vec<ObjectRef>,
    failed_folders: Vec<(PartitionId, NaiveDate)>,
    /// Whether something could not be read that no partition can be blamed for (a lost batch
    /// of local objects): the run stops after the day, before the state moves past it.
    unread: bool,
    /// Final record counts per output file and episodes by shared ID.
    files: BTreeMap<String, u64>,
    episodes: BTreeMap<String, EpisodeOutcome>,
    /// The last day folder this run listed whose day had already ended (see `is_settled`).
    settled_listed_through: Option<NaiveDate>,
    /// What is new in the output, and its publication (`sink::notify`).
    notifications: notify::Notifications,
    /// Log objects found in each listed day folder, by partition (the latest listing).
    found: BTreeMap<(usize, NaiveDate), u64>,
    /// The first and last day folders this run listed.
    searched: Option<DayRange>,
    /// A nightly run: an analysed day with no object in any partition's folder is a gap.
    nightly: bool,
    /// The size of the local objects read lately, for the length of a batch (`local_read`).
    recent_size: Arc<local_read::RecentSize>,
}

impl<'c> Run<'c> {
    async fn start(config: &'c AnalyzeConfig) -> anyhow::Result<Run<'c>> {
        let started = Instant::now();
        let mut summary = RunSummary {
            source: config.source.describe(),
            output: config.output.describe(),
            ..RunSummary::default()
        };
        let source = Arc::new(config.source.clone());
        // Discovered without the shard filter, so an empty shard (a success: another shard
        // has the partitions) is told apart from a source with no logs (a failure).
        let unsharded = PartitionFilter {
            shard: None,
            ..config.filter.clone()
        };
        let mut partitions = source
            .partitions(&unsharded)
            .await
            .context("discovering accounts and regions")?;
        if partitions.is_empty() {
            bail!(
                "no CloudTrail logs under {}: expected [prefix/]AWSLogs/[o-orgid/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ \
                 (check the path and the --accounts/--regions filters)",
                summary.source
            );
        }
        if let Some(shard) = config.filter.shard {
            let mut counts = vec![0_u64; shard.count as usize];
            for p in &partitions {
                let of = (0..shard.count)
                    .find(|&index| Shard { index, ..shard }.holds(&p.account, &p.region));
                if let Some(of) = of {
                    counts[of as usize] += 1;
                }
            }
            partitions.retain(|p| shard.holds(&p.account, &p.region));
            summary.shards = Some(ShardCounts {
                shard: shard.label(),
                partitions_per_shard: counts,
            });
        }
        summary.partitions = partitions.len() as u64;
        summary.timed(Stage::List, started);
        let notifications = notify::Notifications::new(
            config.notify.as_ref(),
            partitions
                .iter()
                .map(|p| (p.account.clone(), p.region.clone())),
        );
        Ok(Run {
            config,
            source,
            partitions,
            summary,
            withheld: BTreeSet::new(),
            recovered: BTreeMap::new(),
            retried: false,
            failed_objects: Vec::new(),
            failed_folders: Vec::new(),
            unread: false,
            files: BTreeMap::new(),
            episodes: BTreeMap::new(),
            settled_listed_through: None,
            notifications,
            found: BTreeMap::new(),
            searched: None,
            nightly: false,
            recent_size: Arc::default(),
        })
    }

    /// Whether this run is a shard that holds no partition: nothing to do, and a success
    /// (the other shards hold them). Says so in one line.
    fn is_empty_shard(&self) -> bool {
        let Some(shards) = &self.summary.shards else {
            return false;
        };
        if !self.partitions.is_empty() {
            return false;
        }
        let total: u64 = shards.partitions_per_shard.iter().sum();
        tracing::info!(
            "shard {} holds no (account, region) partition ({total} found, per shard {:?}): nothing to do",
            shards.shard,
            shards.partitions_per_shard
        );
        true
    }

    /// At the end of a run: retry earlier runs' failed notifications if no day did, and put
    /// the new records and the notifications in the summary.
    async fn finish_notifications(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        self.notifications
            .finish(self.config.output.store())
            .await?;
        self.summary.timed(Stage::Write, started);
        self.summary.new_insight_records = self.notifications.new_records().to_vec();
        self.summary.notifications = self.notifications.report();
        Ok(())
    }

    /// Analyse each day of `days` in turn, saving the state after each one.
    async fn advance_through(
        &mut self,
        progress: &mut Progress,
        days: DayRange,
        lock: Option<&StateLock>,
    ) -> anyhow::Result<()> {
        self.summary.first_day = Some(days.first.to_string());
        tracing::info!(
            first_day = %days.first, last_day = %days.last, partitions = self.partitions.len(),
            "analysing {} to {}", days.first, days.last
        );
        telemetry::progress::plan_days(days.days().count() as u64);
        for day in days.days() {
            crate::stop::check()?;
            telemetry::progress::day(day);
            let marks = self.summary.marks();
            self.advance(progress, day).await?;
            self.summary.last_day = Some(day.to_string());
            let started = Instant::now();
            let problems = self.summary.problems_since(marks);
            let report = self
                .config
                .output
                .write_bad_objects(&self.summary.source, day, problems)
                .await?;
            self.summary.bad_objects_reports.extend(report);
            self.summary.forget_reported();
            self.summary.timed(Stage::Write, started);
            if self.unread {
                tracing::warn!(
                    "stopping after {day}: objects could not be read and their partition is unknown; the state stays before them and the next run retries"
                );
                break;
            }
            let started = Instant::now();
            if let (Some(store), Some(lock)) = (&self.config.state, lock)
                && let Some(state) = progress.to_state(&self.summary.source, self.config)
            {
                store.save(&state, &mut progress.aggregator, lock).await?;
                self.summary.timed(Stage::StateSave, started);
            }
        }
        self.summarise_output();
        Ok(())
    }

    /// With no new day to analyse, still read again what stuck partitions could not read: the
    /// last analysed day's step is taken again (it lists only what is new, and rewrites the
    /// days that may have changed), which recovers them.
    async fn recover(
        &mut self,
        progress: &mut Progress,
        done: NaiveDate,
        lock: Option<&StateLock>,
    ) -> anyhow::Result<()> {
        tracing::info!(
            "already analysed through {done}; reading again what {} partition(s) could not read",
            progress.stuck.len()
        );
        self.advance_through(progress, DayRange::new(done, done), lock)
            .await
    }

    /// The output's totals, for the summary and the log.
    fn summarise_output(&mut self) {
        let is_parquet = |key: &String| key.ends_with(".parquet");
        let (parquet, json): (Vec<_>, Vec<_>) = self.files.iter().partition(|(k, _)| is_parquet(k));
        let counted = if json.is_empty() { &parquet } else { &json };
        self.summary.insight_records_written = counted.iter().map(|(_, n)| **n).sum();
        self.summary.files_written = json.len() as u64;
        self.summary.parquet_files_written = parquet.len() as u64;
        tracing::info!(
            records = self.summary.insight_records_written,
            files = self.summary.files_written,
            parquet_files = self.summary.parquet_files_written,
            "wrote {} Insight records in {} JSON and {} Parquet files to {}",
            self.summary.insight_records_written,
            self.summary.files_written,
            self.summary.parquet_files_written,
            self.summary.output
        );
        for episode in self.episodes.values() {
            *self
                .summary
                .insights
                .entry(episode.insight_type.clone())
                .or_default() += 1;
            self.summary.open_insights += u64::from(episode.open);
        }
        self.summary.s3_requests = self
            .config
            .source
            .request_counts()
            .or_else(|| self.config.output.store().request_counts());
    }

    /// Analyse one more day: read what is new up to the day after it, detect from the oldest
    /// open episode's day, write the days that may have changed.
    async fn advance(&mut self, progress: &mut Progress, day: NaiveDate) -> anyhow::Result<()> {
        let next = day + Duration::days(1);
        let first_folder = progress
            .folders_read_through
            .unwrap_or(day - Duration::days(BASELINE_DAYS));
        let folders = DayRange::new(first_folder, next);
        let started = Instant::now();
        let unlisted = folders_to_list(folders, self.settled_listed_through);
        let listed = self.list(unlisted).await;
        if is_settled(next, Utc::now()) {
            self.settled_listed_through = Some(next);
        }
        if self.nightly {
            self.check_delivered(day);
        }
        self.check_partition_deliveries(progress, day);
        // One pass hashes each listed key that needs it once: an object of the folder read in
        // part is dropped if already read, and one of the next day's folder is remembered as
        // read (below).
        let mut new = listed;
        let (processed, folder) = (&progress.processed, progress.folders_read_through);
        let in_next = self.in_folder_of(next);
        let mut folder_of = once_a_folder(|o| {
            let maybe_read = !processed.is_empty() && may_be_in_folder(o, folder);
            (maybe_read, in_next(o))
        });
        let mut in_next_folder = Vec::new();
        new.retain(|o| {
            let (maybe_read, remembered) = folder_of(o);
            if !maybe_read && !remembered {
                return true;
            }
            let hash = object_hash(o);
            if maybe_read && processed.contains(&hash) {
                return false;
            }
            if remembered {
                in_next_folder.push(hash);
            }
            true
        });
        drop(folder_of);
        self.summary.timed(Stage::List, started);
        self.summary.objects_listed += new.len() as u64;
        telemetry::progress::listed(&new);
        let scope = Window {
            history_from: progress.kept_from(),
            detect_from: Minute::start_of_day(day),
            detect_until: Minute::start_of_day(next + Duration::days(1)),
            folders,
        };
        // What this step reads of the next day's folder is remembered as read, so the next
        // step does not read it again. Remembered before the reading (which then holds no second
        // copy of it): the state is saved only after a step that read its day whole, and a step
        // that does not leaves the run before any save.
        if first_folder < next {
            progress.processed.clear();
        }
        if progress.processed.is_empty() {
            progress.processed = in_next_folder.into_iter().collect();
        } else {
            progress.processed.extend(in_next_folder);
        }
        let started = Instant::now();
        if !self.retried {
            self.retry_stuck(progress, scope).await;
        }
        self.read(new, scope, &mut progress.aggregator).await;
        self.summary.timed(Stage::ReadDecode, started);
        // Stopped while reading: the day is not whole, so nothing of it is written or saved.
        crate::stop::check()?;
        if self.config.strict {
            strict_check(&self.summary, &self.files)?;
        }
        // Objects that could not be read are remembered by their partition's `Stuck`, which the
        // next run reads again; they count as read (`processed`) so they are not read twice.
        progress.folders_read_through = Some(next);

        let redetect_from = progress.redetect_from.unwrap_or(day).min(day);
        self.stick_failures(progress, day, redetect_from);
        // Before detection's peak: the IDs are of no use to it.
        let started = Instant::now();
        progress.between_reads(redetect_from);
        #[cfg(debug_assertions)]
        assert!(
            progress.aggregator.is_packed(),
            "detection reads packed minutes"
        );
        self.summary.timed(Stage::Series, started);
        let window = Window {
            history_from: progress.history_floor,
            detect_from: Minute::start_of_day(redetect_from),
            detect_until: Minute::start_of_day(next),
            folders,
        };
        let started = Instant::now();
        let view = progress.aggregator.series_view(progress.history_floor);
        self.summary.timed(Stage::Series, started);
        self.summary.series = self.summary.series.max(view.len() as u64);
        telemetry::progress::doing("detecting");
        let started = Instant::now();
        let threads = self.config.decode_threads;
        let recovered = &self.recovered;
        let stuck = &progress.stuck;
        let plan = DetectPlan {
            window,
            scope: self.config.selection.call_rate,
            detect_from_of: &|account: &str, region: &str| {
                let id = (account.to_owned(), region.to_owned());
                recovered.get(&id).map_or(window.detect_from, |day| {
                    Minute::start_of_day(*day).min(window.detect_from)
                })
            },
            counts_for_redetect: &|account: &str, region: &str| {
                !stuck.contains_key(&(account.to_owned(), region.to_owned()))
            },
        };
        let detected = detect_all(&view, &plan, &self.config.detector, threads)?;
        drop(view);
        self.summary.timed(Stage::Detect, started);
        let insight_records = detected.records.len();
        for episode in &detected.episodes {
            self.episodes
                .insert(episode.shared_event_id.clone(), episode.clone());
        }
        telemetry::progress::doing("writing");
        let started = Instant::now();
        let activities =
            crate::report::activity_data::activity_lines(&detected.records, &detected.explanations);
        let results = DayResults {
            records: &detected.records,
            explanations: &detected.explanations,
            activities: &activities,
            partitions: &self.partitions,
            days: DayRange::new(redetect_from, day),
            earlier: &self.recovered,
            call_rate: self.config.selection.call_rate,
        };
        let withheld = &self.withheld;
        let keep = |account: &str, region: &str| {
            !withheld.contains(&(account.to_owned(), region.to_owned()))
        };
        let written = self.config.output.write_day_results(results, &keep).await?;
        self.summary.stale_files_removed += written.stale_removed;
        self.files.extend(written.files);
        self.recovered.clear();
        let new: Vec<InsightRecord> = detected
            .records
            .iter()
            .filter(|r| keep(&r.recipient_account_id, &r.aws_region))
            .cloned()
            .collect();
        // One finding per stuck partition, dated the day it is withheld from: announced once
        // however many days and runs it stays withheld.
        let findings: Vec<notify::Finding> = progress
            .stuck
            .iter()
            .map(|((account, region), stuck)| {
                notify::Finding::new(
                    notify::FindingKind::PartitionWithheld,
                    account,
                    region,
                    stuck.withheld_from,
                    "Insights withheld from this day on: some of its logs could not be fetched or listed; each run reads them again",
                )
            })
            .chain(
                self.summary
                    .delivery_gaps
                    .iter()
                    .filter(|gap| gap.day == day.to_string())
                    .map(|gap| {
                        notify::Finding::new(
                            notify::FindingKind::DeliveryGap,
                            &gap.account,
                            &gap.region,
                            day,
                            format!(
                                "{} log object(s) delivered where it usually delivers {}: has the trail stopped logging here, or its bucket policy changed?",
                                gap.seen, gap.expected
                            ),
                        )
                    }),
            )
            .collect();
        self.notifications
            .after_day(self.config.output.store(), &new, &findings)
            .await?;
        self.summary.timed(Stage::Write, started);

        progress.redetect_from = Some(detected.oldest_open.unwrap_or(next));
        progress.analysed_through = Some(day);
        let started = Instant::now();
        let kept_from = progress.kept_from();
        progress.aggregator.prune_before(kept_from);
        progress.between_reads(next);
        self.summary.timed(Stage::Series, started);
        tracing::info!(%day, insights = insight_records, "analysed {day}");
        Ok(())
    }

    /// Whether an object is in the delivery folder of `day` (what the step reads of it is
    /// remembered as read, so the next step does not read it again). Prefix lookups by length
    /// (a few distinct lengths), not a scan of every partition.
    fn in_folder_of(&self, day: NaiveDate) -> impl Fn(&ObjectRef) -> bool + use<> {
        let folders: HashSet<String> = self.partitions.iter().map(|p| p.day_prefix(day)).collect();
        let lengths: BTreeSet<usize> = folders.iter().map(String::len).collect();
        move |object: &ObjectRef| {
            let key = &object.folder().key;
            lengths
                .iter()
                .any(|&n| key.get(..n).is_some_and(|p| folders.contains(p)))
        }
    }

    /// List the day folders of every partition, in parallel, returning objects in key order.
    /// A folder that cannot be listed is not taken for an empty one: it is named in the summary
    /// (reason `list failed`) and its partition is withheld, like an object that cannot be
    /// fetched.
    async fn list(&mut self, folders: Option<DayRange>) -> Vec<ObjectRef> {
        let Some(folders) = folders else {
            return Vec::new();
        };
        let requests: Vec<_> = self
            .partitions
            .iter()
            .enumerate()
            .flat_map(|(i, p)| folders.days().map(move |d| (i, p, d)))
            .collect();
        let source = &self.source;
        // A stop waits for no listing (a folder on a mount that stopped answering): the day's
        // stop check after reading ends the run.
        let listings: Option<Vec<_>> = match source.as_ref() {
            // On disk, folders are listed in groups, one blocking call a group.
            Source::Local(local) => {
                until_stopped(
                    stream::iter(requests.chunks(LOCAL_FOLDERS_A_CALL))
                        .map(|group| async move {
                            let folders: Vec<_> = group.iter().map(|&(_, p, d)| (p, d)).collect();
                            let listed = local.objects_of(&folders).await;
                            group
                                .iter()
                                .zip(listed)
                                .map(|(&(i, p, d), listing)| (i, p.clone(), d, listing))
                                .collect::<Vec<_>>()
                        })
                        .buffered(self.config.list_concurrency)
                        .flat_map(stream::iter)
                        .collect(),
                )
                .await
            }
            Source::S3(_) => until_stopped(
                stream::iter(requests)
                    .map(|(i, p, d)| async move { (i, p.clone(), d, source.objects(p, d).await) })
                    .buffered(self.config.list_concurrency)
                    .collect(),
            )
            .await,
        };
        let Some(listings) = listings else {
            return Vec::new();
        };
        self.searched = Some(match self.searched {
            Some(s) => DayRange::new(s.first.min(folders.first), s.last.max(folders.last)),
            None => folders,
        });
        let listed = listings
            .iter()
            .map(|(_, _, _, l)| l.as_ref().map_or(0, |l| l.objects.len()));
        let mut objects = Vec::with_capacity(listed.sum());
        for (index, partition, day, listing) in listings {
            let listing = match listing {
                Ok(listing) => listing,
                Err(e) => {
                    let folder = e.location().to_owned();
                    let detail = format!("{:#}", anyhow::Error::new(e));
                    self.summary.skip(&folder, SkipReason::ListFailed, &detail);
                    let id = (partition.account.clone(), partition.region.clone());
                    self.failed_folders.push((id, day));
                    continue;
                }
            };
            for ignored in &listing.ignored {
                self.summary.ignore(&ignored.display, &ignored.reason);
            }
            self.found
                .insert((index, day), listing.objects.len() as u64);
            objects.extend(listing.objects);
        }
        objects
    }

    /// Fetch and decode every object (bounded), adding them to `aggregator` in listing order.
    /// Objects that could not be fetched go to `failed_objects` (their partitions are withheld).
    async fn read(&mut self, objects: Vec<ObjectRef>, window: Window, aggregator: &mut Aggregator) {
        let config = self.config;
        let options = Arc::new(DecodeOptions {
            window,
            filter: config.filter.clone(),
            max_object_bytes: config.max_object_bytes,
            selection: config.selection,
        });
        if matches!(self.source.as_ref(), Source::Local(_)) {
            let mut results = local_read::start(
                self.source.clone(),
                objects,
                options,
                config.decode_threads,
                self.recent_size.clone(),
            );
            // A stop leaves the rest of the day's objects, even one whose read hangs.
            while let Some(outcomes) = until_stopped(results.next()).await.flatten() {
                match outcomes {
                    Ok(mut outcomes) => {
                        for (o, outcome) in outcomes.drain(..) {
                            self.count(o, outcome, aggregator);
                        }
                        results.give_back(outcomes);
                    }
                    // Not expected (a reader catches decoder panics): the batch's objects are
                    // unknown here, so the day counts as not fully read and the state stays
                    // before it (the next run reads it again).
                    Err(_) => {
                        self.unread = true;
                        self.summary.skip(
                            "a batch of local objects",
                            SkipReason::FetchFailed,
                            "a reading thread stopped before handing back its results",
                        );
                    }
                }
            }
        } else {
            let bounds = Bounds {
                fetch_concurrency: config.fetch_concurrency,
                decode_threads: config.decode_threads,
                max_bytes_in_flight: config.max_bytes_in_flight,
            };
            let results = fetch::fetch_decoded(self.source.clone(), objects, options, bounds);
            let mut results = std::pin::pin!(results);
            while let Some((object, outcome)) = until_stopped(results.next()).await.flatten() {
                self.count(object, outcome, aggregator);
            }
        }
        self.summary.duplicates_dropped = aggregator.stats.duplicates;
        self.summary.events_excluded = aggregator.stats.excluded;
    }

    /// Count one object's outcome: its events into `aggregator`, itself into the summary; an
    /// object that could not be fetched into `failed_objects` (its partition withheld).
    fn count(&mut self, object: ObjectRef, outcome: Outcome, aggregator: &mut Aggregator) {
        match outcome {
            Ok((decoded, size)) => {
                telemetry::progress::object_done(size, decoded.stats.records);
                self.summary.objects_read += 1;
                self.summary.bytes_read += size;
                self.summary
                    .add_object_records(|| object.display(), &decoded.stats);
                let conflicts = aggregator.stats.id_conflicts;
                aggregator.add(&decoded);
                let conflicts = aggregator.stats.id_conflicts - conflicts;
                self.summary.id_conflicts(
                    || object.display(),
                    conflicts,
                    aggregator.stats.last_conflict,
                );
                decoded.recycle();
            }
            Err(ReadFailure { reason, detail }) => {
                telemetry::progress::object_done(object.size, 0);
                self.summary.skip(&object.display(), reason, &detail);
                if reason.is_transient() {
                    self.failed_objects.push(object);
                }
            }
        }
    }
}

/// Local day folders listed in one blocking call (`LocalSource::objects_of`): enough that the
/// thread handoffs cost little beside the listing, few enough that the groups spread over the
/// cores.
const LOCAL_FOLDERS_A_CALL: usize = 32;

/// The folders of `folders` a step must list, when this run has already listed the settled
/// folders through `settled_listed_through`. Each step lists the folder of the day after it
/// (late deliveries), and the next step lists that folder again, to find what was delivered
/// there since. A folder whose day had ended when this run listed it holds nothing new: every
/// object in it was read (or the run stopped), so it is not listed a second time. That halves
/// a backfill's listing (and its S3 LIST requests).
fn folders_to_list(
    folders: DayRange,
    settled_listed_through: Option<NaiveDate>,
) -> Option<DayRange> {
    let first = match settled_listed_through {
        Some(listed) if listed >= folders.first => listed + Duration::days(1),
        _ => folders.first,
    };
    (first <= folders.last).then(|| DayRange::new(first, folders.last))
}

/// Whether the day folder of `day` is complete at `now`: CloudTrail files an object under its
/// delivery time, so nothing arrives in a folder once its UTC day is over. An hour's margin
/// covers clocks that are a little off.
fn is_settled(day: NaiveDate, now: DateTime<Utc>) -> bool {
    day < (now - Duration::hours(1)).date_naive()
}

/// The requested days, an open end being the first or last delivery day found in the source.
async fn analysed_days(
    config: &AnalyzeConfig,
    source: &Source,
    partitions: &[Partition],
) -> anyhow::Result<Option<DayRange>> {
    if let Some(days) = config.days.range() {
        return Ok(Some(days));
    }
    let found: Vec<_> = stream::iter(partitions)
        .map(|p| source.days(p))
        .buffer_unordered(config.list_concurrency)
        .try_collect()
        .await
        .context("listing day folders")?;
    let all: BTreeSet<_> = found.into_iter().flatten().collect();
    let found = match (all.first(), all.last()) {
        (Some(first), Some(last)) => Some(DayRange::new(*first, *last)),
        _ => None,
    };
    Ok(config.days.resolve(found))
}

/// Fail a `--strict` run at its first problem, saying what earlier days of this run already
/// wrote (`files`: the Insight files written so far) and what the state holds.
fn strict_check(summary: &RunSummary, files: &BTreeMap<String, u64>) -> anyhow::Result<()> {
    let Some(problems) = summary.strict_problems() else {
        return Ok(());
    };
    bail!("--strict: {problems}; {}", written_so_far(summary, files))
}

/// What a run stopped now leaves written: "nothing was written", or the Insight files and
/// reports of the days it analysed.
fn written_so_far(summary: &RunSummary, files: &BTreeMap<String, u64>) -> String {
    let (Some(first), Some(last)) = (&summary.first_day, &summary.last_day) else {
        return "nothing was written".into();
    };
    let parquet = files.keys().filter(|k| k.ends_with(".parquet")).count();
    let json = files.len() - parquet;
    let reports = summary.bad_objects_reports.len();
    format!(
        "already written, for the days {first} to {last} analysed before: {json} JSON and {parquet} Parquet Insight file(s) \
         and {reports} bad-objects report(s) under {}, and the state (if any) through {last}",
        summary.output
    )
}

/// One episode as the run summary counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EpisodeOutcome {
    shared_event_id: String,
    /// The `insightType`, with ` (data events)` for an Insight on data events.
    insight_type: String,
    /// Start written, End pending.
    open: bool,
}

/// What detection produced.
#[derive(Debug, Default)]
struct Detected {
    records: Vec<InsightRecord>,
    explanations: Vec<Explanation>,
    episodes: Vec<EpisodeOutcome>,
    /// The day of the oldest episode still open at the end of the window.
    oldest_open: Option<NaiveDate>,
}

/// Series handed to a detection thread at a time: small enough to balance the threads.
const DETECT_CHUNK: usize = 32;

/// Where detection runs, per partition.
struct DetectPlan<'a> {
    window: Window,
    /// What a call-rate Insight counted (for the explanations).
    scope: CallRateScope,
    /// Where a partition's detection starts (earlier than the window for one read whole
    /// again after it was stuck).
    detect_from_of: &'a (dyn Fn(&str, &str) -> Minute + Sync),
    /// Whether a partition's open episodes hold the next step's detection back (not for a
    /// stuck partition: its own restart day is kept with it).
    counts_for_redetect: &'a (dyn Fn(&str, &str) -> bool + Sync),
}

/// Detect episodes in every series and assemble their records and explanations, in series
/// order. The window is read in place (borrowed from the aggregator), so detection runs on
/// `threads` scoped threads taking chunks of series in turn while this task waits: nothing
/// else runs during detection, the whole window is never copied, and each chunk's series are
/// made (their keys spelt out) by the thread that takes it and dropped after.
fn detect_all(
    view: &SeriesView<'_>,
    plan: &DetectPlan<'_>,
    config: &detect::DetectorConfig,
    threads: usize,
) -> anyhow::Result<Detected> {
    let symbols = view.strings();
    let chunks = view.len().div_ceil(DETECT_CHUNK);
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        let mut names = Names::default();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            if at >= chunks {
                return done;
            }
            let mut detected = Detected::default();
            let range = at * DETECT_CHUNK..(at + 1) * DETECT_CHUNK;
            for series in view.series(range, &mut names) {
                detect_one(&series, symbols, plan, config, &mut detected);
            }
            done.push((at, detected));
        }
    };
    let threads = threads.clamp(1, chunks.max(1));
    let mut parts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
        workers
            .into_iter()
            .map(|worker| worker.join())
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|_| anyhow::anyhow!("detection stopped unexpectedly (a detection thread failed)"))?
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    parts.sort_by_key(|(at, _)| *at);
    let mut all = Detected::default();
    for (_, part) in parts {
        all.records.extend(part.records);
        all.explanations.extend(part.explanations);
        all.episodes.extend(part.episodes);
        all.oldest_open = match (all.oldest_open, part.oldest_open) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(all)
}

/// Detect the episodes of one series into `detected`.
fn detect_one(
    series: &Series<'_>,
    symbols: &Strings,
    plan: &DetectPlan<'_>,
    config: &detect::DetectorConfig,
    detected: &mut Detected,
) {
    let (account, region) = (&series.key.account, &series.key.region);
    let from = (plan.detect_from_of)(account, region);
    let episodes = detect::detect_series(series, from, plan.window.detect_until, config);
    let holds_back = (plan.counts_for_redetect)(account, region);
    for episode in episodes {
        // Episodes on data events are counted apart in the summary.
        let kind = match episode.key.category {
            EventCategory::Management => episode.key.kind.insight_type().to_owned(),
            EventCategory::Data => format!("{} (data events)", episode.key.kind.insight_type()),
        };
        let open = episode.end.is_none();
        if open && holds_back {
            let day = episode.start.day();
            detected.oldest_open = Some(detected.oldest_open.map_or(day, |d| d.min(day)));
        }
        let explanation = assemble::explain(&episode, plan.scope);
        detected.episodes.push(EpisodeOutcome {
            shared_event_id: explanation.shared_event_id.clone(),
            insight_type: kind,
            open,
        });
        let records = assemble::episode_records(&episode, series, symbols);
        detected.records.extend(records);
        detected.explanations.push(explanation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        parse_day(text).unwrap()
    }

    #[test]
    fn a_folder_is_settled_an_hour_after_its_utc_day_ends() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let folder = day("2024-03-10");
        assert!(!is_settled(folder, at("2024-03-10T23:59:00Z")));
        assert!(!is_settled(folder, at("2024-03-11T00:59:00Z")));
        assert!(is_settled(folder, at("2024-03-11T01:00:00Z")));
        assert!(is_settled(folder, at("2025-01-01T00:00:00Z")));
    }

    #[test]
    fn a_settled_folder_this_run_listed_is_not_listed_again() {
        let range = |a: &str, b: &str| DayRange::new(day(a), day(b));
        let step = range("2024-03-10", "2024-03-11");
        // Nothing listed yet, or only folders before this step's: all of its folders.
        assert_eq!(folders_to_list(step, None), Some(step));
        assert_eq!(folders_to_list(step, Some(day("2024-03-09"))), Some(step));
        // The previous step listed the 10th: only the 11th.
        assert_eq!(
            folders_to_list(step, Some(day("2024-03-10"))),
            Some(range("2024-03-11", "2024-03-11"))
        );
        // Everything already listed: nothing.
        assert_eq!(folders_to_list(step, Some(day("2024-03-11"))), None);
    }

    #[test]
    fn only_objects_of_the_read_folder_may_have_been_read() {
        let object = |key: &str| ObjectRef::single(key, key, 1);
        let read = Some(day("2024-03-10"));
        let of_the_10th =
            object("p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/10/a.json.gz");
        let of_the_11th =
            object("p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/11/a.json.gz");
        assert!(may_be_in_folder(&of_the_10th, read));
        assert!(!may_be_in_folder(&of_the_11th, read));
        // A folder whose name does not end in a day, or no folder read yet: looked up.
        assert!(may_be_in_folder(&object("elsewhere/a.json.gz"), read));
        assert!(may_be_in_folder(&object("a.json.gz"), read));
        assert!(may_be_in_folder(&of_the_11th, None));
    }

    /// A folder's test runs once for each run of its objects, and answers as it would for
    /// each of them.
    #[test]
    fn a_folder_is_tested_once_for_a_run_of_its_objects() {
        let keys = ["a/1", "a/2", "b/1", "b/2", "b/3", "a/3"];
        let objects: Vec<ObjectRef> = keys.iter().map(|k| ObjectRef::single(k, k, 1)).collect();
        let mut tested = Vec::new();
        let mut test = once_a_folder(|o: &ObjectRef| {
            tested.push(o.key());
            o.folder().key.starts_with('b')
        });
        let found: Vec<bool> = objects.iter().map(&mut test).collect();
        drop(test);
        assert_eq!(found, [false, false, true, true, true, false]);
        assert_eq!(tested, ["a/1", "b/1", "a/3"]);
    }
}
