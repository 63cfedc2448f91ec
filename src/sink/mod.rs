//! The one owner of the output tree: every key written under `--out`, in which format, the
//! removal of our own stale files, the write concurrency, and reading the tree back.
//!
//! | what | key under the output root | module |
//! |---|---|---|
//! | AWS's Insight files | `AWSLogs/[o-org/]ACCOUNT/CloudTrail-Insight/REGION/YYYY/MM/DD/...json.gz` | `json` |
//! | the same records as Parquet | `insights/account=/region=/date=/part-<uuid>.parquet` | `parquet` |
//! | why each Insight fired | `explanations/account=/region=/date=/explanations.jsonl` | `explain` |
//! | the Insights grouped into activities | `activities/account=/region=/date=/activities.jsonl` | `activities` |
//! | what a day's step could not read | `_trailsight/bad-objects/YYYY-MM-DD.json` | `bad_objects` |
//! | what was announced, and what waits to be | `_trailsight/notifications/...` | `notify` |
//! | each run's summary (every run, whatever its exit code) | `_trailsight/runs/<started>-<token>.json` | `runs` |
//!
//! Every key is built from validated parts (a 12-digit account, a region name, a date), and is
//! written through the store (`store`): atomically, never through a link inside the output
//! root, in S3 as one PutObject. The pipeline decides *when* a day's output is written; this
//! module decides *what* and *where*. `read` walks a tree back (trailsight's or AWS's own
//! Insight files) for `report`. `notify` publishes what is new in the output (EventBridge,
//! SNS, a webhook) and keeps its ledger beside it.

pub mod activities;
pub mod bad_objects;
pub mod explain;
pub mod json;
pub mod notify;
pub mod parquet;
pub mod read;
pub mod runs;
pub mod validate;

use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
use crate::model::problem::DayProblems;
use crate::model::{CallRateScope, DayRange, Partition};
use crate::store::{Store, StoreError};
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Which formats a run writes. A format that is not selected is left untouched in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formats {
    /// AWS's gzip JSON under `AWSLogs/.../CloudTrail-Insight/`.
    pub json: bool,
    /// Hive-partitioned Parquet under `insights/`.
    pub parquet: bool,
}

impl Default for Formats {
    fn default() -> Self {
        Formats {
            json: true,
            parquet: true,
        }
    }
}

/// Writing the output failed: fatal for the run (the state does not move past it).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The message names the object and the cause.
    #[error("cannot write {0}; check that the output location is writable")]
    Store(StoreError),
    #[error("cannot encode {key}")]
    Encode {
        key: String,
        #[source]
        source: parquet::ParquetSinkError,
    },
}

/// The output: where it is, which formats, how many writes at once.
impl From<StoreError> for SinkError {
    fn from(e: StoreError) -> SinkError {
        SinkError::Store(e)
    }
}

#[derive(Debug, Clone)]
pub struct Sink {
    store: Store,
    formats: Formats,
    /// Writes and removals in flight at once.
    concurrency: usize,
    /// Local folders this run has cleaned of stale temporaries (once per folder per run).
    swept: Arc<Mutex<BTreeSet<String>>>,
}

/// A temporary file older than this was left by a run that was killed (a write takes
/// milliseconds): the first write of a run into its folder removes it.
pub const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// One day-step's detection results, to be written for the days they may have changed.
#[derive(Debug, Clone, Copy)]
pub struct DayResults<'a> {
    pub records: &'a [InsightRecord],
    pub explanations: &'a [Explanation],
    /// The activities of `records` (`report::activity_data::activity_lines`).
    pub activities: &'a [activities::ActivityLine],
    /// The partitions analysed: their days' stale files are removed.
    pub partitions: &'a [Partition],
    /// The days whose output is rewritten.
    pub days: DayRange,
    /// Partitions rewritten from an earlier day than `days.first` (read whole again after
    /// some of their logs could not be read).
    pub earlier: &'a BTreeMap<(String, String), NaiveDate>,
    /// What call-rate Insights counted (a Parquet column).
    pub call_rate: CallRateScope,
}

/// What one write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// Every Insight file written (JSON and Parquet) and its record count.
    pub files: Vec<(String, u64)>,
    /// Stale Insight files (JSON or Parquet) removed.
    pub stale_removed: u64,
}

/// What kind of file a key is, for stale-file removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileKind {
    Json,
    Parquet,
    Explanations,
    Activities,
}

impl Sink {
    pub fn new(store: Store, formats: Formats, concurrency: usize) -> Sink {
        Sink {
            store,
            formats,
            concurrency: concurrency.max(1),
            swept: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn describe(&self) -> String {
        self.store.describe()
    }

    /// Write one file per account, region, day and format, and the explanations beside them;
    /// remove our own files of `days` that now have nothing, so a re-run with other settings
    /// leaves no stale output. Partitions `keep` refuses (withheld) are neither written nor
    /// cleaned: their earlier output stays as it was.
    pub async fn write_day_results(
        &self,
        results: DayResults<'_>,
        keep: impl Fn(&str, &str) -> bool,
    ) -> Result<Written, SinkError> {
        let orgs: BTreeMap<String, String> = results
            .partitions
            .iter()
            .filter_map(|p| p.org_id.clone().map(|o| (p.account.clone(), o)))
            .collect();
        let records: Vec<InsightRecord> = results
            .records
            .iter()
            .filter(|r| keep(&r.recipient_account_id, &r.aws_region))
            .cloned()
            .collect();
        let mut outputs: Vec<(String, Vec<u8>, u64)> = Vec::new();
        for file in json::plan_files(records, &orgs) {
            let count = file.records.len() as u64;
            if self.formats.json {
                outputs.push((file.key.clone(), json::encode_file(&file.records), count));
            }
            if self.formats.parquet {
                let key = parquet::file_key(&file.account, &file.region, file.day);
                let bytes =
                    parquet::encode_file(&file.records, results.call_rate).map_err(|source| {
                        SinkError::Encode {
                            key: self.store.display(&key),
                            source,
                        }
                    })?;
                outputs.push((key, bytes, count));
            }
        }
        let written: Vec<(String, u64)> = outputs.iter().map(|(k, _, n)| (k.clone(), *n)).collect();
        let explanations: Vec<Explanation> = results
            .explanations
            .iter()
            .filter(|e| keep(&e.recipient_account_id, &e.aws_region))
            .cloned()
            .collect();
        let explained = explain::plan_files(&explanations);
        let activity_lines: Vec<activities::ActivityLine> = results
            .activities
            .iter()
            .filter(|a| keep(&a.recipient_account_id, &a.aws_region))
            .cloned()
            .collect();
        let grouped = activities::plan_files(&activity_lines);
        let mut kept: BTreeSet<String> = written.iter().map(|(k, _)| k.clone()).collect();
        kept.extend(explained.iter().map(|(k, _)| k.clone()));
        kept.extend(grouped.iter().map(|(k, _)| k.clone()));
        let puts = outputs
            .into_iter()
            .map(|(key, bytes, _)| (key, bytes))
            .chain(explained)
            .chain(grouped);
        self.put_all(puts).await?;
        let stale = self.stale_candidates(&results, &orgs, &keep, &kept);
        let stale_removed = self.remove_all(stale).await?;
        Ok(Written {
            files: written,
            stale_removed,
        })
    }

    /// Our own keys of the analysed partitions and days that this write did not produce.
    fn stale_candidates(
        &self,
        results: &DayResults<'_>,
        orgs: &BTreeMap<String, String>,
        keep: &impl Fn(&str, &str) -> bool,
        written: &BTreeSet<String>,
    ) -> Vec<(String, FileKind)> {
        let analysed: BTreeSet<(&str, &str)> = results
            .partitions
            .iter()
            .map(|p| (p.account.as_str(), p.region.as_str()))
            .filter(|(account, region)| keep(account, region))
            .collect();
        let mut candidates = Vec::new();
        for (account, region) in analysed {
            let org = orgs.get(account).map(String::as_str);
            let days = match results
                .earlier
                .get(&(account.to_owned(), region.to_owned()))
            {
                Some(first) => DayRange::new((*first).min(results.days.first), results.days.last),
                None => results.days,
            };
            for day in days.days() {
                let kinds = [
                    self.formats
                        .json
                        .then(|| (json::file_key(org, account, region, day), FileKind::Json)),
                    self.formats
                        .parquet
                        .then(|| (parquet::file_key(account, region, day), FileKind::Parquet)),
                    Some((
                        explain::file_key(account, region, day),
                        FileKind::Explanations,
                    )),
                    Some((
                        activities::file_key(account, region, day),
                        FileKind::Activities,
                    )),
                ];
                candidates.extend(kinds.into_iter().flatten());
            }
        }
        candidates.retain(|(key, _)| !written.contains(key));
        candidates
    }

    async fn put_all(
        &self,
        files: impl Iterator<Item = (String, Vec<u8>)>,
    ) -> Result<(), SinkError> {
        stream::iter(files)
            .map(|(key, bytes)| async move {
                self.sweep_folder_of(&key);
                self.store.put(&key, bytes).await
            })
            .buffer_unordered(self.concurrency)
            .try_collect::<()>()
            .await?;
        Ok(())
    }

    /// Remove each key if present; counts the Insight files (not explanations or activities)
    /// removed.
    async fn remove_all(&self, keys: Vec<(String, FileKind)>) -> Result<u64, SinkError> {
        let (keys, kinds): (Vec<String>, Vec<FileKind>) = keys.into_iter().unzip();
        let removed = self.store.delete_all(keys, self.concurrency).await?;
        let insight_files = removed
            .into_iter()
            .zip(kinds)
            .filter(|(removed, kind)| {
                *removed && !matches!(kind, FileKind::Explanations | FileKind::Activities)
            })
            .count();
        Ok(insight_files as u64)
    }

    /// The first time this run writes into the local folder of `key`: remove the temporary
    /// files an earlier, killed run left there (`STALE_TEMPORARY_AGE`). A fresh one may be a
    /// concurrent writer's and is kept.
    fn sweep_folder_of(&self, key: &str) {
        let Store::Local(dir) = &self.store else {
            return;
        };
        let folder = key.rsplit_once('/').map_or("", |(f, _)| f);
        let first = self
            .swept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(folder.to_owned());
        if !first {
            return;
        }
        dir.sweep_stale_temporaries(folder, STALE_TEMPORARY_AGE);
    }

    /// Write the record of a run that started at `started` (`runs`): its summary, exit code
    /// and fatal error, under a new key. Returns where it was written.
    pub async fn write_run<S: serde::Serialize>(
        &self,
        command: &str,
        started: chrono::DateTime<chrono::Utc>,
        exit_code: u8,
        error: Option<String>,
        summary: &S,
    ) -> Result<String, SinkError> {
        let key = runs::run_key(started, &crate::store::random_token());
        let bytes = runs::build(command, started, exit_code, error, summary);
        self.sweep_folder_of(&key);
        self.store.put(&key, bytes).await?;
        Ok(self.store.display(&key))
    }

    /// Write the bad-objects report of one analysed day (the problems its step met), or remove
    /// the one an earlier run of the same day left when there is nothing to report. Returns
    /// where the report was written.
    pub async fn write_bad_objects(
        &self,
        source: &str,
        day: NaiveDate,
        problems: DayProblems<'_>,
    ) -> Result<Option<String>, SinkError> {
        let (key, bytes) = bad_objects::build(source, day, problems);
        match bytes {
            Some(bytes) => {
                self.sweep_folder_of(&key);
                self.store.put(&key, bytes).await?;
                Ok(Some(self.store.display(&key)))
            }
            None => {
                self.store.delete(&key).await?;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_day;

    #[tokio::test]
    async fn stale_files_of_analysed_days_are_removed_and_withheld_partitions_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::new(Store::local(dir.path().to_owned()), Formats::default(), 4);
        let day = parse_day("2019-11-07").unwrap();
        let partition = |account: &str| Partition {
            prefix: String::new(),
            org_id: None,
            account: account.into(),
            region: "us-east-1".into(),
        };
        let partitions = [partition("111111111111"), partition("222222222222")];
        // Earlier output of both partitions on the analysed day.
        let stale: Vec<String> = partitions
            .iter()
            .flat_map(|p| {
                [
                    json::file_key(None, &p.account, &p.region, day),
                    parquet::file_key(&p.account, &p.region, day),
                    explain::file_key(&p.account, &p.region, day),
                    activities::file_key(&p.account, &p.region, day),
                ]
            })
            .collect();
        for key in &stale {
            sink.store().put(key, b"old".to_vec()).await.unwrap();
        }
        let results = DayResults {
            records: &[],
            explanations: &[],
            activities: &[],
            partitions: &partitions,
            days: DayRange::new(day, day),
            earlier: &BTreeMap::new(),
            call_rate: CallRateScope::Write,
        };
        let written = sink
            .write_day_results(results, |account, _| account == "111111111111")
            .await
            .unwrap();
        assert_eq!(written.files, []);
        assert_eq!(
            written.stale_removed, 2,
            "JSON and Parquet, not explanations or activities"
        );
        for key in &stale {
            let present = sink.store().get(key, 10).await.unwrap().is_some();
            assert_eq!(present, key.contains("222222222222"), "{key}");
        }
    }

    #[tokio::test]
    async fn activities_are_written_for_kept_partitions_only() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::new(Store::local(dir.path().to_owned()), Formats::default(), 4);
        let day = parse_day("2019-11-07").unwrap();
        let line = |account: &str| activities::ActivityLine {
            recipient_account_id: account.into(),
            aws_region: "us-east-1".into(),
            start_time: "2019-11-07T10:00:00Z".into(),
            end_time: "2019-11-07T10:05:00Z".into(),
            open: false,
            shared_event_ids: vec![format!("{account}-1")],
            apis: vec!["ec2.amazonaws.com:RunInstances".into()],
            event_sources: vec!["ec2.amazonaws.com".into()],
            event_names: vec!["RunInstances".into()],
            insight_types: vec!["ApiCallRateInsight".into()],
            top_callers: vec![],
            severity_score: 4.0,
            rarity: 0.0,
            magnitude: 4.0,
            new_api: true,
            new_caller: false,
            error_rate_insights: 0,
            reasons: vec![],
            reason_texts: vec![],
        };
        let lines = [line("111111111111"), line("222222222222")];
        let results = DayResults {
            records: &[],
            explanations: &[],
            activities: &lines,
            partitions: &[],
            days: DayRange::new(day, day),
            earlier: &BTreeMap::new(),
            call_rate: CallRateScope::Write,
        };
        sink.write_day_results(results, |account, _| account == "111111111111")
            .await
            .unwrap();
        let kept = activities::file_key("111111111111", "us-east-1", day);
        let bytes = sink.store().get(&kept, 1 << 20).await.unwrap().unwrap();
        let read: activities::ActivityLine =
            serde_json::from_slice(bytes.bytes.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(read, lines[0]);
        let withheld = activities::file_key("222222222222", "us-east-1", day);
        assert!(sink.store().get(&withheld, 10).await.unwrap().is_none());
    }
}
