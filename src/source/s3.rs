//! CloudTrail logs in S3: the trail's folders walked the way a careful operator would, one
//! level at a time with `ListObjectsV2` and `Delimiter=/`: find `[prefix/]AWSLogs/`, then
//! organizations, accounts (pruned by `--accounts`) and regions (pruned by `--regions`), using
//! the same `layout` rules as the local walker (which also looks beside the first `AWSLogs/` it
//! finds; this does not). Only the day folders a run needs are then listed in full, page by
//! page. The bucket is never listed without a prefix and a delimiter, except for those day
//! folders. Requests, retries and capped downloads are the store's (`store::s3`).

use super::layout::{self, AWSLOGS, CLOUDTRAIL, PartitionFilter};
use super::local::MAX_PREFIX_DEPTH;
use super::{Listing, ListingBuilder};
use crate::model::{ObjectRef, Partition};
use crate::store::s3::{Listed, S3Client, S3Error, S3Url};
use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt, stream};
use std::collections::BTreeSet;

/// File a delimited listing of one day folder (`full`, the bucket key of the folder;
/// `relative`, the same below the source's root): each object directly in it by its name, and
/// each common prefix (a key with a `/` after the folder, which CloudTrail never writes) as an
/// ignored sub-folder, named by its `s3://` address.
pub fn classify_day_folder(bucket: &str, full: &str, relative: &str, folder: Listed) -> Listing {
    let mut listing = ListingBuilder::new(relative.to_owned(), format!("s3://{bucket}/{full}"));
    for (key, size) in folder.objects {
        let name = match key.strip_prefix(full) {
            Some(name) if !name.is_empty() && !name.contains('/') => name,
            // Not under the folder, or the folder's own marker object (`.../07/`).
            _ => continue,
        };
        listing.add(name, size);
    }
    for prefix in folder.prefixes {
        if prefix.starts_with(full) && prefix.len() > full.len() {
            listing.ignore(format!("s3://{bucket}/{prefix}"), super::local::DIRECTORY);
        }
    }
    listing.finish()
}

/// CloudTrail logs under `s3://bucket[/prefix]`.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: S3Client,
    url: S3Url,
}

impl S3Source {
    pub fn new(client: S3Client, url: S3Url) -> S3Source {
        S3Source { client, url }
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    pub fn client(&self) -> &S3Client {
        &self.client
    }

    fn fan_out(&self) -> usize {
        self.client.settings().list_concurrency.max(1)
    }

    /// Sub-folders of a folder relative to the root.
    async fn children(&self, relative: &str) -> Result<Vec<String>, S3Error> {
        self.client
            .sub_folders(&self.url.bucket, &self.url.key(relative))
            .await
    }

    /// Every (prefix, organization, account, region) under the root that the filter wants.
    pub async fn partitions(&self, filter: &PartitionFilter) -> Result<Vec<Partition>, S3Error> {
        let mut accounts = Vec::new();
        for prefix in self.find_awslogs().await? {
            let awslogs = format!("{prefix}{AWSLOGS}/");
            for name in self.children(&awslogs).await? {
                if layout::is_account(&name) {
                    accounts.push((prefix.clone(), None, name));
                } else if layout::is_org_id(&name) {
                    for account in self.children(&format!("{awslogs}{name}/")).await? {
                        if layout::is_account(&account) {
                            accounts.push((prefix.clone(), Some(name.clone()), account));
                        }
                    }
                }
            }
        }
        accounts.retain(|(_, _, account)| filter.wants_account(account));
        let found: Vec<Vec<Partition>> = stream::iter(accounts)
            .map(|(prefix, org_id, account)| async move {
                let org = org_id
                    .as_deref()
                    .map(|o| format!("{o}/"))
                    .unwrap_or_default();
                let trail = format!("{prefix}{AWSLOGS}/{org}{account}/{CLOUDTRAIL}/");
                let regions = self.children(&trail).await?;
                Ok::<_, S3Error>(
                    regions
                        .into_iter()
                        .filter(|r| layout::is_region(r) && filter.wants_region(r))
                        .map(|region| Partition {
                            prefix: prefix.clone(),
                            org_id: org_id.clone(),
                            account: account.clone(),
                            region,
                        })
                        .collect(),
                )
            })
            .buffer_unordered(self.fan_out())
            .try_collect()
            .await?;
        let found: BTreeSet<Partition> = found.into_iter().flatten().collect();
        Ok(found.into_iter().collect())
    }

    /// Breadth-first search for `AWSLogs/` folders below the root, at most `MAX_PREFIX_DEPTH`
    /// levels deep, one delimited listing per folder; returns the prefixes before them. Unlike
    /// the local walker, the search stops at the first level that has one: the folders beside
    /// a trail's `AWSLogs/` in a shared bucket are other data, often not readable by this role.
    async fn find_awslogs(&self) -> Result<Vec<String>, S3Error> {
        let mut found = Vec::new();
        let mut level = vec![String::new()];
        for _ in 0..=MAX_PREFIX_DEPTH {
            if level.is_empty() || !found.is_empty() {
                break;
            }
            let listed: Vec<(String, Vec<String>)> = stream::iter(level)
                .map(|prefix| async move {
                    let children = self.children(&prefix).await?;
                    Ok::<_, S3Error>((prefix, children))
                })
                .buffer_unordered(self.fan_out())
                .try_collect()
                .await?;
            level = Vec::new();
            for (prefix, children) in listed {
                for name in children {
                    if name == AWSLOGS {
                        found.push(prefix.clone());
                    } else if !name.starts_with('.') {
                        level.push(format!("{prefix}{name}/"));
                    }
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// The delivery days present for a partition: the `YYYY/`, `MM/` and `DD/` folders.
    pub async fn days(&self, partition: &Partition) -> Result<Vec<NaiveDate>, S3Error> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let region = &partition.log_prefix();
        let mut months = Vec::new();
        for year in self.children(region).await? {
            if digits(&year, 4) {
                for month in self.children(&format!("{region}{year}/")).await? {
                    if digits(&month, 2) {
                        months.push((year.clone(), month));
                    }
                }
            }
        }
        let days: Vec<Vec<NaiveDate>> = stream::iter(months)
            .map(|(year, month)| async move {
                let days = self.children(&format!("{region}{year}/{month}/")).await?;
                Ok::<_, S3Error>(
                    days.iter()
                        .filter_map(|d| layout::parse_folder_day(&year, &month, d))
                        .collect(),
                )
            })
            .buffer_unordered(self.fan_out())
            .try_collect()
            .await?;
        let mut days: Vec<NaiveDate> = days.into_iter().flatten().collect();
        days.sort();
        Ok(days)
    }

    /// The objects of one delivery day folder, sorted by key; every page of the listing.
    /// A key with a `/` after the day folder (`07/./x`, `07//x`, `07/%2e%2e/x`, `07/sub/x`) is
    /// not a file of the folder: it is named once per sub-folder and ignored, as the local
    /// walker ignores a sub-folder (`classify_day_folder`).
    pub async fn objects(&self, partition: &Partition, day: NaiveDate) -> Result<Listing, S3Error> {
        let relative = partition.day_prefix(day);
        let full = self.url.key(&relative);
        let folder = self.client.list(&self.url.bucket, &full).await?;
        Ok(classify_day_folder(
            &self.url.bucket,
            &full,
            &relative,
            folder,
        ))
    }

    /// The object's bytes, at most `cap` of them. An object listed larger than `cap` is skipped
    /// without a GetObject: the cap bounds the decompressed size, and gzip only makes data
    /// smaller, except for a few bytes of framing on incompressible data (a CloudTrail file
    /// compresses about tenfold), so the stored size is held to the same limit, as for a local
    /// file.
    pub async fn fetch(&self, object: &ObjectRef, cap: u64) -> Result<Vec<u8>, S3Error> {
        if object.size > cap {
            return Err(S3Error::TooLarge(format!(
                "the object is listed at {} bytes, more than the per-object limit of {cap} \
                 bytes (--max-object-bytes); not downloaded",
                object.size
            )));
        }
        self.client
            .get(&self.url.bucket, &self.url.key(&object.key()), cap)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_a_slash_after_the_day_folder_are_named_sub_folders() {
        let full = "ct/AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/";
        let relative = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/";
        let key = |rest: &str| format!("{full}{rest}");
        let folder = Listed {
            prefixes: ["./", "/", "%2e%2e/", "sub/"].map(key).to_vec(),
            objects: vec![(key("a.json.gz"), 10), (key(""), 0), (key("notes.txt"), 3)],
        };
        let listing = classify_day_folder("b", full, relative, folder);
        let keys: Vec<String> = listing.objects.iter().map(ObjectRef::key).collect();
        assert_eq!(keys, [format!("{relative}a.json.gz")]);
        assert_eq!(
            listing.objects[0].display(),
            format!("s3://b/{full}a.json.gz")
        );
        let ignored: Vec<(String, &str)> = listing
            .ignored
            .iter()
            .map(|i| (i.display.replace(full, "DAY/"), i.reason.as_str()))
            .collect();
        let dir = super::super::local::DIRECTORY;
        assert_eq!(
            ignored,
            [
                ("s3://b/DAY/%2e%2e/".to_owned(), dir),
                ("s3://b/DAY/./".to_owned(), dir),
                ("s3://b/DAY//".to_owned(), dir),
                (
                    "s3://b/DAY/notes.txt".to_owned(),
                    "not a .json.gz or .json file"
                ),
                ("s3://b/DAY/sub/".to_owned(), dir),
            ]
        );
    }
}
