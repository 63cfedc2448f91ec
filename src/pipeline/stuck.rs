//! Partitions whose logs could not all be read: withheld from the day of the failure, kept
//! in the state as stuck with what to read again, read again by each later run (which then
//! writes them from that day on as an uninterrupted run would have), and given up
//! (quarantined) after `--quarantine-after-runs` runs.

use super::{
    Duration, NaiveDate, ObjectRef, Partition, PartitionId, Progress, Run, SkipReason, Stuck,
    Window,
};
use crate::source::layout;
use std::collections::{BTreeMap, BTreeSet};

impl Run<'_> {
    /// Withhold a partition's Insights: some of its logs could not be read.
    fn withhold(&mut self, account: &str, region: &str) {
        if self
            .withheld
            .insert((account.to_owned(), region.to_owned()))
        {
            self.summary.withhold(account, region);
        }
    }

    /// File what the step of `day` could not read (detection of that step started at
    /// `redetect_from`) under each partition's `Stuck`, and withhold those partitions.
    pub(super) fn stick_failures(
        &mut self,
        progress: &mut Progress,
        day: NaiveDate,
        redetect_from: NaiveDate,
    ) {
        let objects = std::mem::take(&mut self.failed_objects);
        let folders = std::mem::take(&mut self.failed_folders);
        let fresh = || Stuck {
            redetect_from,
            withheld_from: day,
            objects: BTreeMap::new(),
            folders: BTreeSet::new(),
            attempts: 1,
        };
        for object in objects {
            let object_key = object.key();
            match layout::parse_log_key(&object_key) {
                Ok(key) => {
                    let id = (key.partition.account, key.partition.region);
                    let stuck = progress.stuck.entry(id).or_insert_with(fresh);
                    stuck.objects.insert(object_key, object.size);
                }
                Err(_) => self.unread = true,
            }
        }
        let next = day + Duration::days(1);
        for (id, folder) in folders {
            let stuck = progress.stuck.entry(id).or_insert_with(fresh);
            // The next day's folder is listed again by the next step anyway.
            if folder < next {
                stuck.folders.insert(folder);
            }
        }
        let stuck: Vec<PartitionId> = progress.stuck.keys().cloned().collect();
        for (account, region) in stuck {
            self.recovered.remove(&(account.clone(), region.clone()));
            self.withhold(&account, &region);
        }
    }

    /// Read again what the state's stuck partitions could not read (once per run). A partition
    /// read whole is recovered: its detection restarts, and its output is rewritten, from its
    /// day. One that fails again stays withheld; after `quarantine_after_runs` runs its objects
    /// are given up (named in the summary and the bad-objects report) and it is recovered
    /// without them.
    pub(super) async fn retry_stuck(&mut self, progress: &mut Progress, scope: Window) {
        self.retried = true;
        if progress.stuck.is_empty() {
            return;
        }
        let mut objects = Vec::new();
        let stuck: Vec<(PartitionId, Stuck)> = progress
            .stuck
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((account, region), s) in &stuck {
            tracing::info!(
                partition = format!("{account}/{region}"),
                "reading again what {account}/{region} could not read (withheld since {})",
                s.withheld_from
            );
            objects.extend(
                s.objects
                    .iter()
                    .map(|(key, size)| self.source.object_ref(key, *size)),
            );
            let partitions: Vec<Partition> = self
                .partitions
                .iter()
                .filter(|p| &p.account == account && &p.region == region)
                .cloned()
                .collect();
            for folder in &s.folders {
                for partition in &partitions {
                    match self.source.objects(partition, *folder).await {
                        Ok(listing) => objects.extend(listing.objects),
                        Err(e) => {
                            let detail = format!("{:#}", anyhow::Error::new(e));
                            tracing::warn!("{account}/{region}: listing again failed: {detail}");
                            self.failed_folders
                                .push(((account.clone(), region.clone()), *folder));
                        }
                    }
                }
            }
        }
        self.summary.objects_listed += objects.len() as u64;
        let _ = self.read(objects, scope, &mut progress.aggregator).await;
        let mut still: BTreeMap<PartitionId, (Vec<ObjectRef>, Vec<NaiveDate>)> = BTreeMap::new();
        for object in std::mem::take(&mut self.failed_objects) {
            if let Ok(key) = layout::parse_log_key(&object.key()) {
                let id = (key.partition.account, key.partition.region);
                still.entry(id).or_default().0.push(object);
            }
        }
        for (id, folder) in std::mem::take(&mut self.failed_folders) {
            still.entry(id).or_default().1.push(folder);
        }
        for (id, s) in stuck {
            let Some((objects, folders)) = still.remove(&id) else {
                tracing::info!(
                    "{}/{}: read whole again; its Insights are written from {}",
                    id.0,
                    id.1,
                    s.redetect_from
                );
                progress.stuck.remove(&id);
                self.recovered.insert(id, s.redetect_from);
                continue;
            };
            let attempts = s.attempts + 1;
            if attempts >= self.config.quarantine_after_runs {
                for object in &objects {
                    self.summary.skip(
                        &object.display(),
                        SkipReason::Quarantined,
                        &format!("could not be read in {attempts} runs; given up: the Insights of {}/{} are written without it", id.0, id.1),
                    );
                }
                for folder in &folders {
                    self.summary.skip(
                        &format!("{}/{} day folder {folder}", id.0, id.1),
                        SkipReason::Quarantined,
                        &format!("could not be listed in {attempts} runs; given up"),
                    );
                }
                progress.stuck.remove(&id);
                self.recovered.insert(id, s.redetect_from);
                continue;
            }
            let entry = progress.stuck.get_mut(&id).expect("a stuck partition");
            entry.attempts = attempts;
            entry.objects = objects.into_iter().map(|o| (o.key(), o.size)).collect();
            entry.folders = folders.into_iter().collect();
            self.withhold(&id.0, &id.1);
        }
    }
}
