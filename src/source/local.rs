//! A local directory laid out exactly as CloudTrail delivers to S3.
//!
//! The walker finds every `AWSLogs/` folder under the root (behind any prefix), then descends
//! only through folders the layout allows (organization, account, `CloudTrail`, region) and
//! opens only the day folders a run asks for. Symbolic links are followed, but every folder is
//! visited at most once, so a link loop cannot make the walk endless.

use super::layout::{self, AWSLOGS, CLOUDTRAIL, PartitionFilter};
use super::{Ignored, Listing, SourceError};
use crate::model::{ObjectRef, Partition};
use chrono::NaiveDate;
use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// How deep below the root an `AWSLogs/` folder may sit (the depth of the trail's prefix).
pub const MAX_PREFIX_DEPTH: usize = 8;

#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
}

impl LocalSource {
    pub fn new(root: PathBuf) -> LocalSource {
        LocalSource { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every (prefix, organization, account, region) under the root that the filter wants.
    pub async fn partitions(
        &self,
        filter: &PartitionFilter,
    ) -> Result<Vec<Partition>, SourceError> {
        let mut found = BTreeSet::new();
        for (prefix, awslogs) in self.find_awslogs().await? {
            for (org_id, account_dir, account) in self.accounts(&awslogs).await? {
                if !filter.wants_account(&account) {
                    continue;
                }
                let trail_dir = account_dir.join(CLOUDTRAIL);
                for region in self.child_dirs(&trail_dir).await? {
                    if layout::is_region(&region) && filter.wants(&account, &region) {
                        found.insert(Partition {
                            prefix: prefix.clone(),
                            org_id: org_id.clone(),
                            account: account.clone(),
                            region,
                        });
                    }
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    /// The delivery days present for a partition.
    pub async fn days(&self, partition: &Partition) -> Result<Vec<NaiveDate>, SourceError> {
        let region_dir = self.root.join(partition.log_prefix());
        let mut days = Vec::new();
        for year in self.child_dirs(&region_dir).await? {
            for month in self.child_dirs(&region_dir.join(&year)).await? {
                for day in self
                    .child_dirs(&region_dir.join(&year).join(&month))
                    .await?
                {
                    if let Some(date) = layout::parse_folder_day(&year, &month, &day) {
                        days.push(date);
                    }
                }
            }
        }
        days.sort();
        Ok(days)
    }

    /// The files of one delivery day folder, sorted by key. A missing folder is an empty day.
    /// The folder is read in one blocking call: a day folder holds hundreds of files, and one
    /// thread hand-off per file costs more than the reading.
    pub async fn objects(
        &self,
        partition: &Partition,
        day: NaiveDate,
    ) -> Result<Listing, SourceError> {
        let prefix = partition.day_prefix(day);
        let dir = self.root.join(&prefix);
        tokio::task::spawn_blocking(move || list_folder(&dir, &prefix))
            .await
            .map_err(|e| SourceError::list(String::new(), std::io::Error::other(e)))?
    }

    /// The path of an object, for reading it on a blocking thread with its decoding.
    pub fn path(&self, object: &ObjectRef) -> PathBuf {
        self.root.join(&object.key)
    }

    pub async fn fetch(&self, object: &ObjectRef) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.root.join(&object.key)).await
    }

    /// Breadth-first search for `AWSLogs` folders, returning (prefix, path).
    async fn find_awslogs(&self) -> Result<Vec<(String, PathBuf)>, SourceError> {
        let mut found = Vec::new();
        let mut visited = HashSet::new();
        let mut level = vec![(String::new(), self.root.clone())];
        for _ in 0..=MAX_PREFIX_DEPTH {
            let mut next = Vec::new();
            for (prefix, dir) in level {
                let canonical = tokio::fs::canonicalize(&dir).await.unwrap_or(dir.clone());
                if !visited.insert(canonical) {
                    continue;
                }
                for name in self.child_dirs(&dir).await? {
                    if name == AWSLOGS {
                        found.push((prefix.clone(), dir.join(&name)));
                    } else if !name.starts_with('.') {
                        next.push((format!("{prefix}{name}/"), dir.join(&name)));
                    }
                }
            }
            level = next;
        }
        found.sort();
        Ok(found)
    }

    /// The accounts under an `AWSLogs` folder: (org, account folder, account).
    async fn accounts(
        &self,
        awslogs: &Path,
    ) -> Result<Vec<(Option<String>, PathBuf, String)>, SourceError> {
        let mut accounts = Vec::new();
        for name in self.child_dirs(awslogs).await? {
            if layout::is_account(&name) {
                accounts.push((None, awslogs.join(&name), name));
            } else if layout::is_org_id(&name) {
                let org_dir = awslogs.join(&name);
                for account in self.child_dirs(&org_dir).await? {
                    if layout::is_account(&account) {
                        accounts.push((Some(name.clone()), org_dir.join(&account), account));
                    }
                }
            }
        }
        Ok(accounts)
    }

    /// Names of the sub-folders of `dir` (following links), sorted; none if it does not exist.
    async fn child_dirs(&self, dir: &Path) -> Result<Vec<String>, SourceError> {
        let mut entries = match tokio::fs::read_dir(dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => return Ok(Vec::new()),
            Err(e) => return Err(SourceError::list(dir.display().to_string(), e)),
        };
        let mut names = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| SourceError::list(dir.display().to_string(), e))?
        {
            let is_dir = tokio::fs::metadata(entry.path())
                .await
                .map(|m| m.is_dir())
                .unwrap_or(false);
            if is_dir {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// List one day folder (blocking).
fn list_folder(dir: &Path, prefix: &str) -> Result<Listing, SourceError> {
    let mut listing = Listing::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(SourceError::list(dir.display().to_string(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::list(dir.display().to_string(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            listing.ignored.push(Ignored {
                display: path.display().to_string(),
                reason: "unreadable directory entry (broken link?)".into(),
            });
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let object = ObjectRef {
            key: format!("{prefix}{name}"),
            display: path.display().to_string(),
            size: meta.len(),
        };
        listing.add(&name, object);
    }
    listing.sort();
    Ok(listing)
}
