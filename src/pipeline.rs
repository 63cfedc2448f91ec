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
//! and the output is written.

use crate::aggregate::{Aggregated, Aggregator, IdentityFilter, Series};
use crate::config::AnalyzeConfig;
use crate::decode::{DecodeError, DecodeOptions, DecodedObject, decode_object};
use crate::detect::{self, assemble};
use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
use crate::model::{
    BASELINE_DAYS, CallRateScope, EventCategory, EventSelection, Minute, parse_day,
};
use crate::model::{DayRange, ObjectRef, Partition, Window};
use crate::sink::{explain, json, parquet};
use crate::source::s3::budget::FetchBudget;
use crate::source::{FETCH_FAILED, Source, SourceError, layout};
use crate::state::{RunState, STATE_VERSION, StateLock};
use crate::telemetry::{self, RunSummary, Stage};
use anyhow::{Context, bail};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;

mod local_read;
pub mod reread;

/// Analyse a range of days (a backfill): day by day, with memory bounded by the window, not
/// the range. With a state store the run is resumable: it continues after the last day a
/// previous (interrupted) run completed, and gives the same output as an uninterrupted run.
pub async fn analyze(config: &AnalyzeConfig) -> anyhow::Result<RunSummary> {
    let mut run = Run::start(config).await?;
    let started = Instant::now();
    let Some(days) = analysed_days(config, &run.source, &run.partitions).await? else {
        tracing::warn!("no day folders found: nothing to analyse");
        return Ok(run.summary);
    };
    run.summary.timed(Stage::List, started);
    let lock = lock_state(config).await?;
    let result = analyze_locked(config, &mut run, days, lock.as_ref()).await;
    release(lock).await;
    result.map(|()| run.summary)
}

/// `analyze` once the state (if any) is locked.
async fn analyze_locked(
    config: &AnalyzeConfig,
    run: &mut Run<'_>,
    days: DayRange,
    lock: Option<&StateLock>,
) -> anyhow::Result<()> {
    let mut progress = match load_state(config, &run.summary.source).await? {
        Some(progress) => progress,
        None => Progress::fresh(days.first, config),
    };
    let first = match progress.analysed_through {
        Some(done) if done >= days.last => {
            tracing::info!("already analysed through {done}: nothing to do");
            return Ok(());
        }
        Some(done) => (done + Duration::days(1)).max(days.first),
        None => days.first,
    };
    run.advance_through(&mut progress, DayRange::new(first, days.last), lock)
        .await
}

/// When a nightly run happens and what it may finalize.
#[derive(Debug, Clone, Copy)]
pub struct NightlyPlan {
    /// The wall-clock time of the run (read by `main`, passed in).
    pub as_of: DateTime<Utc>,
    /// A day is analysed only once this many minutes of the next day have passed, so records
    /// delivered late into the next day's folder are in.
    pub finalize_after_minutes: i64,
    /// The first day to analyse when there is no state yet (default: the last complete day).
    pub first_day: Option<NaiveDate>,
}

impl NightlyPlan {
    /// The last day that may be analysed now.
    pub fn last_complete_day(&self) -> NaiveDate {
        let settled = self.as_of - Duration::minutes(self.finalize_after_minutes);
        settled.date_naive() - Duration::days(1)
    }
}

/// The nightly run: read only what is new since the last run (kept in the state), analyse every
/// day that became complete, and save the state last.
pub async fn nightly(config: &AnalyzeConfig, plan: NightlyPlan) -> anyhow::Result<RunSummary> {
    if config.state.is_none() {
        bail!("a nightly run needs --state: it is where the run remembers what it has read");
    }
    let mut run = Run::start(config).await?;
    let lock = lock_state(config).await?;
    let result = nightly_locked(config, plan, &mut run, lock.as_ref()).await;
    release(lock).await;
    result.map(|()| run.summary)
}

/// `nightly` once the state is locked.
async fn nightly_locked(
    config: &AnalyzeConfig,
    plan: NightlyPlan,
    run: &mut Run<'_>,
    lock: Option<&StateLock>,
) -> anyhow::Result<()> {
    let last = plan.last_complete_day();
    let mut progress = match load_state(config, &run.summary.source).await? {
        Some(progress) => progress,
        None => Progress::fresh(plan.first_day.unwrap_or(last), config),
    };
    let first = match progress.analysed_through {
        Some(done) => done + Duration::days(1),
        None => plan.first_day.unwrap_or(last),
    };
    if first > last {
        tracing::info!("already analysed through {last}: nothing new to do");
        return Ok(());
    }
    run.advance_through(&mut progress, DayRange::new(first, last), lock)
        .await
}

/// Give the state lock up, whether the run succeeded or not.
async fn release(lock: Option<StateLock>) {
    if let Some(lock) = lock {
        lock.release().await;
    }
}

async fn lock_state(config: &AnalyzeConfig) -> anyhow::Result<Option<StateLock>> {
    let Some(store) = &config.state else {
        return Ok(None);
    };
    let holder = format!("pid {} on {}", std::process::id(), hostname());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    store.lock(&holder, now).await.map(Some)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown host".into())
}

async fn load_state(config: &AnalyzeConfig, source: &str) -> anyhow::Result<Option<Progress>> {
    let Some(store) = &config.state else {
        return Ok(None);
    };
    let Some(state) = store.load().await? else {
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
    Progress::from_state(state, config).map(Some)
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
    /// Objects of that folder already read.
    processed: BTreeSet<String>,
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
        }
    }

    /// The first minute the aggregator holds: the baseline of the oldest day detection may
    /// still redo. Earlier minutes (and their event IDs) are pruned because no detection reads
    /// them again; a record that arrives for one of them, however late, is out of scope, so it
    /// is neither counted twice nor able to change an Insight already written.
    fn kept_from(&self) -> Minute {
        let baseline_of =
            |day: NaiveDate| Minute::start_of_day(day - Duration::days(BASELINE_DAYS));
        self.redetect_from.map_or(self.history_floor, |day| {
            baseline_of(day).max(self.history_floor)
        })
    }

    fn from_state(state: RunState, config: &AnalyzeConfig) -> anyhow::Result<Progress> {
        let day = |text: &str| {
            parse_day(text)
                .ok_or_else(|| anyhow::anyhow!("the state holds a malformed day {text:?}"))
        };
        Ok(Progress {
            aggregator: Aggregator::from_state(
                state.aggregate,
                IdentityFilter::new(config.excluded_identities.clone()),
            )?,
            history_floor: Minute(state.history_floor),
            analysed_through: Some(day(&state.analysed_through)?),
            redetect_from: Some(day(&state.redetect_from)?),
            folders_read_through: Some(day(&state.folders_read_through)?),
            processed: state.processed.into_iter().collect(),
        })
    }

    fn to_state(&self, source: &str, config: &AnalyzeConfig) -> Option<RunState> {
        let text = |d: Option<NaiveDate>| d.map(|d| d.to_string());
        Some(RunState {
            version: STATE_VERSION,
            source: source.to_owned(),
            shard: config.filter.shard.map(|s| s.label()),
            history_floor: self.history_floor.0,
            analysed_through: text(self.analysed_through)?,
            redetect_from: text(self.redetect_from)?,
            folders_read_through: text(self.folders_read_through)?,
            processed: self.processed.iter().cloned().collect(),
            aggregate: self.aggregator.to_state(),
            events: (config.selection != EventSelection::default())
                .then(|| config.selection.label()),
        })
    }
}

/// One run: its configuration, source, partitions and summary.
struct Run<'c> {
    config: &'c AnalyzeConfig,
    source: Arc<Source>,
    partitions: Vec<Partition>,
    summary: RunSummary,
    /// Final record counts per output file and episodes by shared ID (type, still open).
    files: BTreeMap<String, u64>,
    episodes: BTreeMap<String, (String, bool)>,
    /// The last day folder this run listed whose day had already ended (see `is_settled`).
    settled_listed_through: Option<NaiveDate>,
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
        let partitions = source
            .partitions(&config.filter)
            .await
            .context("discovering accounts and regions")?;
        if partitions.is_empty() {
            bail!(
                "no CloudTrail logs under {}: expected [prefix/]AWSLogs/[o-orgid/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ \
                 (check the path and the --accounts/--regions/--shard filters)",
                summary.source
            );
        }
        summary.partitions = partitions.len() as u64;
        summary.timed(Stage::List, started);
        Ok(Run {
            config,
            source,
            partitions,
            summary,
            files: BTreeMap::new(),
            episodes: BTreeMap::new(),
            settled_listed_through: None,
        })
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
            telemetry::progress::day(day);
            let marks = self.summary.marks();
            self.advance(progress, day).await?;
            self.summary.last_day = Some(day.to_string());
            let started = Instant::now();
            write_bad_objects_report(self.config, &mut self.summary, day, marks).await?;
            self.summary.timed(Stage::Write, started);
            let unread = |reason: &str| self.summary.objects_skipped.contains_key(reason);
            if unread(FETCH_FAILED) || unread(LIST_FAILED) {
                tracing::warn!(
                    "stopping after {day}: objects could not be fetched or folders listed; the state stays before them and the next run retries"
                );
                break;
            }
            if let (Some(store), Some(lock)) = (&self.config.state, lock)
                && let Some(state) = progress.to_state(&self.summary.source, self.config)
            {
                let started = Instant::now();
                store.save(&state, lock).await?;
                self.summary.timed(Stage::Write, started);
            }
        }
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
        for (kind, open) in self.episodes.values() {
            *self.summary.insights.entry(kind.clone()).or_default() += 1;
            self.summary.open_insights += u64::from(*open);
        }
        self.summary.s3_requests = self
            .config
            .source
            .request_counts()
            .or_else(|| self.config.output.request_counts());
        Ok(())
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
        let listed = list(
            &self.source,
            &self.partitions,
            unlisted,
            self.config,
            &mut self.summary,
        )
        .await?;
        if is_settled(next, Utc::now()) {
            self.settled_listed_through = Some(next);
        }
        let new: Vec<ObjectRef> = listed
            .into_iter()
            .filter(|o| !progress.processed.contains(&o.key))
            .collect();
        self.summary.timed(Stage::List, started);
        self.summary.objects_listed += new.len() as u64;
        telemetry::progress::listed(&new);
        let scope = Window {
            history_from: progress.kept_from(),
            detect_from: Minute::start_of_day(day),
            detect_until: Minute::start_of_day(next + Duration::days(1)),
            folders,
        };
        let next_folders: HashSet<String> =
            self.partitions.iter().map(|p| p.day_prefix(next)).collect();
        // Prefix lookups by length (a few distinct lengths), not a scan of every partition.
        let lengths: BTreeSet<usize> = next_folders.iter().map(String::len).collect();
        let in_next = |key: &str| {
            lengths
                .iter()
                .any(|&n| key.get(..n).is_some_and(|p| next_folders.contains(p)))
        };
        let in_next_folder: Vec<String> = new
            .iter()
            .filter(|o| in_next(&o.key))
            .map(|o| o.key.clone())
            .collect();
        let started = Instant::now();
        let failed = read(
            &self.source,
            new,
            scope,
            self.config,
            &mut self.summary,
            &mut progress.aggregator,
        )
        .await;
        self.summary.timed(Stage::ReadDecode, started);
        if self.config.strict {
            strict_check(&self.summary)?;
        }
        if first_folder < next {
            progress.processed.clear();
        }
        progress
            .processed
            .extend(in_next_folder.into_iter().filter(|k| !failed.contains(k)));
        progress.folders_read_through = Some(next);

        let redetect_from = progress.redetect_from.unwrap_or(day).min(day);
        let window = Window {
            history_from: progress.history_floor,
            detect_from: Minute::start_of_day(redetect_from),
            detect_until: Minute::start_of_day(next),
            folders,
        };
        let aggregated = progress.aggregator.view(progress.history_floor);
        self.summary.series = self.summary.series.max(aggregated.series.len() as u64);
        telemetry::progress::doing("detecting");
        let started = Instant::now();
        let threads = self.config.decode_threads;
        let detected = detect_all(
            &aggregated,
            window,
            &self.config.detector,
            self.config.selection.call_rate,
            threads,
        )?;
        drop(aggregated);
        self.summary.timed(Stage::Detect, started);
        let changed = DayRange::new(redetect_from, day);
        let insight_records = detected.records.len();
        for (id, kind, open) in &detected.episodes {
            self.episodes.insert(id.clone(), (kind.clone(), *open));
        }
        telemetry::progress::doing("writing");
        let started = Instant::now();
        let files = write(
            self.config,
            detected.records,
            &self.partitions,
            changed,
            &mut self.summary,
        )
        .await?;
        for (key, records) in files {
            self.files.insert(key, records);
        }
        write_explanations(
            self.config,
            &detected.explanations,
            &self.partitions,
            changed,
            &self.summary,
        )
        .await?;
        self.summary.timed(Stage::Write, started);

        progress.redetect_from = Some(detected.oldest_open.unwrap_or(next));
        progress.analysed_through = Some(day);
        let kept_from = progress.kept_from();
        progress.aggregator.prune_before(kept_from);
        tracing::info!(%day, insights = insight_records, "analysed {day}");
        Ok(())
    }
}

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

/// The skip reason of a day folder that could not be listed (after the source's retries).
pub const LIST_FAILED: &str = "list failed";

/// List the day folders of every partition, in parallel, returning objects in key order.
/// A folder that cannot be listed is not taken for an empty one: it is named in the summary
/// (reason `list failed`) and its partition is withheld, like an object that cannot be fetched.
async fn list(
    source: &Source,
    partitions: &[Partition],
    folders: Option<DayRange>,
    config: &AnalyzeConfig,
    summary: &mut RunSummary,
) -> anyhow::Result<Vec<ObjectRef>> {
    let Some(folders) = folders else {
        return Ok(Vec::new());
    };
    let requests: Vec<_> = partitions
        .iter()
        .flat_map(|p| folders.days().map(move |d| (p, d)))
        .collect();
    let listings: Vec<_> = stream::iter(requests)
        .map(|(p, d)| async move { (p, source.objects(p, d).await) })
        .buffered(config.list_concurrency)
        .collect()
        .await;
    let mut objects = Vec::new();
    for (partition, listing) in listings {
        let listing = match listing {
            Ok(listing) => listing,
            Err(e) => {
                let folder = match &e {
                    SourceError::S3 { location, .. } | SourceError::List { location, .. } => {
                        location.clone()
                    }
                };
                summary.withhold(&partition.account, &partition.region);
                summary.skip(
                    &folder,
                    LIST_FAILED,
                    &format!("{:#}", anyhow::Error::new(e)),
                );
                continue;
            }
        };
        for ignored in &listing.ignored {
            summary.ignore(&ignored.display, &ignored.reason);
        }
        objects.extend(listing.objects);
    }
    Ok(objects)
}

/// Fetch and decode every object (bounded), aggregating in listing order.
/// A decoded object and its size, or why it was skipped.
type Outcome = Result<(DecodedObject, u64), (String, String)>;

fn decode_outcome(decoded: Result<DecodedObject, DecodeError>, bytes: &[u8]) -> Outcome {
    match decoded {
        Ok(decoded) => Ok((decoded, bytes.len() as u64)),
        Err(e) => Err((e.reason().to_owned(), e.to_string())),
    }
}

/// Fetch and decode every object (bounded), adding them to `aggregator` in listing order.
/// Returns the keys of the objects that could not be fetched (to be retried by a later run).
async fn read(
    source: &Arc<Source>,
    objects: Vec<ObjectRef>,
    window: Window,
    config: &AnalyzeConfig,
    summary: &mut RunSummary,
    aggregator: &mut Aggregator,
) -> BTreeSet<String> {
    let options = Arc::new(DecodeOptions {
        window,
        filter: config.filter.clone(),
        max_object_bytes: config.max_object_bytes,
        selection: config.selection,
    });
    let mut failed = BTreeSet::new();
    if matches!(source.as_ref(), Source::Local(_)) {
        let mut slots = local_read::start(source.clone(), objects, options, config.decode_threads);
        while let Some(slot) = slots.recv().await {
            match slot.await {
                Ok(batch) => batch
                    .into_iter()
                    .for_each(|(o, outcome)| count(o, outcome, summary, aggregator, &mut failed)),
                // Not expected (a reader catches decoder panics): the batch's objects are
                // unknown here, so the day counts as not fully read and the state stays before
                // it (the next run reads it again).
                Err(_) => summary.skip(
                    "a batch of local objects",
                    FETCH_FAILED,
                    "a reading thread stopped before handing back its results",
                ),
            }
        }
    } else {
        let cpu = Arc::new(Semaphore::new(config.decode_threads.max(1)));
        let budget = FetchBudget::new(config.max_bytes_in_flight);
        let mut results = stream::iter(objects)
            .map(|object| {
                let (options, cpu, budget) = (options.clone(), cpu.clone(), budget.clone());
                let source = source.clone();
                async move {
                    let outcome = fetch_and_decode(&source, &object, options, cpu, &budget).await;
                    (object, outcome)
                }
            })
            .buffered(config.fetch_concurrency.max(1));
        while let Some((object, outcome)) = results.next().await {
            count(object, outcome, summary, aggregator, &mut failed);
        }
    }
    summary.duplicates_dropped = aggregator.stats.duplicates;
    summary.events_excluded = aggregator.stats.excluded;
    failed
}

/// Count one object's outcome: its events into `aggregator`, itself into `summary`; an object
/// that could not be fetched into `failed` (its partition withheld).
fn count(
    object: ObjectRef,
    outcome: Outcome,
    summary: &mut RunSummary,
    aggregator: &mut Aggregator,
    failed: &mut BTreeSet<String>,
) {
    match outcome {
        Ok((decoded, size)) => {
            telemetry::progress::object_done(size, decoded.stats.records);
            summary.objects_read += 1;
            summary.bytes_read += size;
            summary.add_object_records(&object.display, &decoded.stats);
            aggregator.add(&decoded);
        }
        Err((reason, detail)) => {
            telemetry::progress::object_done(object.size, 0);
            if reason == FETCH_FAILED {
                failed.insert(object.key.clone());
                if let Ok(key) = layout::parse_log_key(&object.key) {
                    summary.withhold(&key.partition.account, &key.partition.region);
                }
            }
            summary.skip(&object.display, &reason, &detail);
        }
    }
}

/// Fetch one object (from a source read an object at a time) and decode it on a blocking
/// thread. It holds its listed size from `budget` from before its GET until it is decoded, and
/// a permit of `cpu` while it is decoded, so at most `decode_threads` objects are decoded at
/// once while more are fetched. An object over the size cap is skipped (not withheld: a retry
/// cannot help). A run's S3 reads and `report`'s re-reads both come here.
async fn fetch_and_decode(
    source: &Source,
    object: &ObjectRef,
    options: Arc<DecodeOptions>,
    cpu: Arc<Semaphore>,
    budget: &FetchBudget,
) -> Outcome {
    let _in_flight = budget.reserve(object.size).await;
    let bytes = source
        .fetch(object, options.max_object_bytes)
        .await
        .map_err(|e| (e.reason.to_owned(), e.message))?;
    let _permit = cpu.acquire_owned().await;
    let key = object.key.clone();
    tokio::task::spawn_blocking(move || {
        decode_outcome(decode_object(&bytes, &key, &options), &bytes)
    })
    .await
    .unwrap_or_else(|e| Err(("decoder crashed".to_owned(), e.to_string())))
}

fn strict_check(summary: &RunSummary) -> anyhow::Result<()> {
    match summary.strict_problems() {
        Some(problems) => bail!("--strict: {problems}; nothing was written"),
        None => Ok(()),
    }
}

/// Write the bad-objects report of one analysed day next to the output: what its step could not
/// read (since `marks`), or, when there is nothing to report, remove the report an earlier run
/// of the same day left (a redone day that now reads cleanly has no stale report).
async fn write_bad_objects_report(
    config: &AnalyzeConfig,
    summary: &mut RunSummary,
    day: NaiveDate,
    marks: telemetry::ListMarks,
) -> anyhow::Result<()> {
    let (key, bytes) = telemetry::bad_objects::build(summary, day, marks);
    match bytes {
        Some(bytes) => {
            config.output.put(&key, bytes).await?;
            let root = summary.output.trim_end_matches('/');
            summary.bad_objects_reports.push(format!("{root}/{key}"));
        }
        None => {
            config.output.remove(&key).await?;
        }
    }
    summary.forget_reported();
    Ok(())
}

/// What detection produced.
#[derive(Debug, Default)]
struct Detected {
    records: Vec<InsightRecord>,
    explanations: Vec<Explanation>,
    /// (sharedEventID, insight type, still open) of every episode.
    episodes: Vec<(String, String, bool)>,
    /// The day of the oldest episode still open at the end of the window.
    oldest_open: Option<NaiveDate>,
}

/// Series handed to a detection thread at a time: small enough to balance the threads.
const DETECT_CHUNK: usize = 32;

/// Detect episodes in every series and assemble their records and explanations, in series
/// order. The window is read in place (borrowed from the aggregator), so detection runs on
/// `threads` scoped threads taking chunks of series in turn while this task waits: nothing
/// else runs during detection, and the whole window is never copied.
fn detect_all(
    data: &Aggregated<'_>,
    window: Window,
    config: &detect::DetectorConfig,
    scope: CallRateScope,
    threads: usize,
) -> anyhow::Result<Detected> {
    let chunks: Vec<&[Series<'_>]> = data.series.chunks(DETECT_CHUNK).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let at = next.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = chunks.get(at) else {
                return done;
            };
            let mut detected = Detected::default();
            for series in *chunk {
                detect_one(series, data, window, config, scope, &mut detected);
            }
            done.push((at, detected));
        }
    };
    let threads = threads.clamp(1, chunks.len().max(1));
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
    data: &Aggregated<'_>,
    window: Window,
    config: &detect::DetectorConfig,
    scope: CallRateScope,
    detected: &mut Detected,
) {
    let episodes = detect::detect_series(series, window.detect_from, window.detect_until, config);
    for episode in episodes {
        // Episodes on data events are counted apart in the summary.
        let kind = match episode.key.category {
            EventCategory::Management => episode.key.kind.insight_type().to_owned(),
            EventCategory::Data => format!("{} (data events)", episode.key.kind.insight_type()),
        };
        let open = episode.end.is_none();
        if open {
            let day = episode.start.day();
            detected.oldest_open = Some(detected.oldest_open.map_or(day, |d| d.min(day)));
        }
        let explanation = assemble::explain(&episode, scope);
        detected
            .episodes
            .push((explanation.shared_event_id.clone(), kind, open));
        let records = assemble::episode_records(&episode, series, data);
        detected.records.extend(records);
        detected.explanations.push(explanation);
    }
}

/// Write the explanations; like the Insights, stale files of analysed days are removed.
async fn write_explanations(
    config: &AnalyzeConfig,
    explanations: &[Explanation],
    partitions: &[Partition],
    days: DayRange,
    summary: &RunSummary,
) -> anyhow::Result<()> {
    let kept: Vec<Explanation> = explanations
        .iter()
        .filter(|e| !summary.is_withheld(&e.recipient_account_id, &e.aws_region))
        .cloned()
        .collect();
    let files = explain::plan_files(&kept);
    let written: BTreeSet<String> = files.iter().map(|(key, _)| key.clone()).collect();
    for (key, bytes) in files {
        config.output.put(&key, bytes).await?;
    }
    for p in partitions
        .iter()
        .filter(|p| !summary.is_withheld(&p.account, &p.region))
    {
        for day in days.days() {
            let key = explain::file_key(&p.account, &p.region, day);
            if !written.contains(&key) {
                config.output.remove(&key).await?;
            }
        }
    }
    Ok(())
}

/// Write one file per account, region, day and format; remove our own files for analysed days
/// that now have no Insights, so a re-run with other settings leaves no stale output. Withheld
/// partitions are left as they are. Writes and removals run with a bounded number in flight.
async fn write(
    config: &AnalyzeConfig,
    records: Vec<InsightRecord>,
    partitions: &[Partition],
    days: DayRange,
    summary: &mut RunSummary,
) -> anyhow::Result<Vec<(String, u64)>> {
    let orgs: BTreeMap<String, String> = partitions
        .iter()
        .filter_map(|p| p.org_id.clone().map(|o| (p.account.clone(), o)))
        .collect();
    let formats = config.formats;
    let mut files = json::plan_files(records, &orgs);
    files.retain(|f| !summary.is_withheld(&f.account, &f.region));
    let mut outputs: Vec<(String, Vec<u8>, u64)> = Vec::new();
    for file in &files {
        let records = file.records.len() as u64;
        if formats.json {
            outputs.push((file.key.clone(), json::encode_file(&file.records), records));
        }
        if formats.parquet {
            let key = parquet::file_key(&file.account, &file.region, file.day);
            let bytes = parquet::encode_file(&file.records, config.selection.call_rate)
                .with_context(|| format!("writing {key} in {}", summary.output))?;
            outputs.push((key, bytes, records));
        }
    }
    let in_flight = config.list_concurrency.max(1);
    let written: BTreeMap<String, u64> = outputs
        .iter()
        .map(|(key, _, n)| (key.clone(), *n))
        .collect();
    stream::iter(outputs)
        .map(|(key, bytes, _)| async move { config.output.put(&key, bytes).await })
        .buffer_unordered(in_flight)
        .try_collect::<()>()
        .await?;
    let analysed: BTreeSet<(&str, &str)> = partitions
        .iter()
        .map(|p| (p.account.as_str(), p.region.as_str()))
        .filter(|(account, region)| !summary.is_withheld(account, region))
        .collect();
    let candidates: Vec<String> = analysed
        .into_iter()
        .flat_map(|(account, region)| {
            let org = orgs.get(account).map(String::as_str);
            days.days().flat_map(move |day| {
                [
                    formats
                        .json
                        .then(|| json::file_key(org, account, region, day)),
                    formats
                        .parquet
                        .then(|| parquet::file_key(account, region, day)),
                ]
                .into_iter()
                .flatten()
            })
        })
        .filter(|key| !written.contains_key(key))
        .collect();
    let removed: Vec<bool> = stream::iter(&candidates)
        .map(|key| config.output.remove(key))
        .buffer_unordered(in_flight)
        .try_collect()
        .await?;
    summary.stale_files_removed += removed.into_iter().filter(|r| *r).count() as u64;
    Ok(written.into_iter().collect())
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
}
