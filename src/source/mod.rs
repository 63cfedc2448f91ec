//! Where log objects come from: discovering partitions (organization, account, region),
//! listing only the day folders a run needs, and fetching object bytes.
//!
//! `layout` holds the pure rules of CloudTrail's key layout; each source kind (a local
//! directory, an S3 bucket) applies them to its own storage. The pipeline talks to the `Source`
//! enum only. S3 requests, retries and capped downloads are the store's (`store::s3`); the local
//! walker is this module's own, tuned for many small files (one open folder, `openat`).

pub mod layout;
pub mod local;
pub mod s3;

use crate::model::problem::{ReadFailure, SkipReason};
use crate::model::{FolderBuilder, ObjectFolder, ObjectRef, Partition};
use crate::store::s3::{RequestCounts, S3Error};
use chrono::NaiveDate;
use layout::PartitionFilter;

/// Where the logs are read from.
#[derive(Debug, Clone)]
pub enum Source {
    Local(local::LocalSource),
    S3(s3::S3Source),
}

/// A file found in a day folder that is not a log file (a digest copied into `CloudTrail/`,
/// a stray text file): reported, never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub display: String,
    pub reason: String,
}

/// The result of listing one day folder.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectRef>,
    pub ignored: Vec<Ignored>,
}

/// A day folder's listing as it is read, entry by entry (`Listing` once `finish`ed).
#[derive(Debug)]
pub struct ListingBuilder {
    objects: FolderBuilder,
    ignored: Vec<Ignored>,
}

impl ListingBuilder {
    /// The listing of the folder at `key` (relative to the source root), shown as `display`
    /// (a path or `s3://bucket/key`, with its separator).
    pub fn new(key: String, display: String) -> ListingBuilder {
        ListingBuilder {
            objects: ObjectFolder::builder(key, display),
            ignored: Vec::new(),
        }
    }

    /// File the folder's entry named `name`, of `size` bytes: a log file to read, or a file to
    /// ignore.
    pub fn add(&mut self, name: &str, size: u64) {
        let reason = match layout::classify_file_name(name) {
            layout::FileKind::Log => return self.objects.push(name, size),
            layout::FileKind::Foreign(why) => why,
            layout::FileKind::Other => "not a .json.gz or .json file",
        };
        let display = format!("{}{name}", self.objects.display());
        self.ignore(display, reason);
    }

    /// Name an entry that is not read (`display`: as users see it) and why.
    pub fn ignore(&mut self, display: String, reason: &str) {
        self.ignored.push(Ignored {
            display,
            reason: reason.to_owned(),
        });
    }

    /// The listing, in key order, so every run reads the same objects in the same order.
    pub fn finish(self) -> Listing {
        let mut ignored = self.ignored;
        ignored.sort_by(|a, b| a.display.cmp(&b.display));
        Listing {
            objects: self.objects.finish(),
            ignored,
        }
    }
}

/// A listing that failed: the run cannot know what it missed, so this is fatal for the run.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot list {location}: {source}; check that it exists and is readable")]
    List {
        location: String,
        #[source]
        source: std::io::Error,
    },
    /// The cause (the S3 request and what went wrong) follows in the error chain.
    #[error("cannot list {location}")]
    S3 {
        location: String,
        #[source]
        source: S3Error,
    },
}

impl SourceError {
    pub fn list(location: String, source: std::io::Error) -> SourceError {
        SourceError::List { location, source }
    }

    /// The folder that could not be listed.
    pub fn location(&self) -> &str {
        match self {
            SourceError::List { location, .. } | SourceError::S3 { location, .. } => location,
        }
    }
}

impl Source {
    /// For messages: the root being read.
    pub fn describe(&self) -> String {
        match self {
            Source::Local(local) => local.root().display().to_string(),
            Source::S3(s3) => s3.url().to_string(),
        }
    }

    /// The S3 requests made so far, when reading from S3.
    pub fn request_counts(&self) -> Option<RequestCounts> {
        match self {
            Source::Local(_) => None,
            Source::S3(s3) => Some(s3.client().counts()),
        }
    }

    pub async fn partitions(
        &self,
        filter: &PartitionFilter,
    ) -> Result<Vec<Partition>, SourceError> {
        match self {
            Source::Local(local) => local.partitions(filter).await,
            Source::S3(s3) => s3.partitions(filter).await.map_err(|e| SourceError::S3 {
                location: s3.url().to_string(),
                source: e,
            }),
        }
    }

    pub async fn days(&self, partition: &Partition) -> Result<Vec<NaiveDate>, SourceError> {
        match self {
            Source::Local(local) => local.days(partition).await,
            Source::S3(s3) => s3.days(partition).await.map_err(|e| SourceError::S3 {
                location: s3.url().display(&partition.log_prefix()),
                source: e,
            }),
        }
    }

    pub async fn objects(
        &self,
        partition: &Partition,
        day: NaiveDate,
    ) -> Result<Listing, SourceError> {
        match self {
            Source::Local(local) => local.objects(partition, day).await,
            Source::S3(s3) => s3
                .objects(partition, day)
                .await
                .map_err(|e| SourceError::S3 {
                    location: s3.url().display(&partition.day_prefix(day)),
                    source: e,
                }),
        }
    }

    /// The reference of the object at `key` (relative to the root), listed at `size` bytes.
    pub fn object_ref(&self, key: &str, size: u64) -> ObjectRef {
        let display = match self {
            Source::Local(local) => local.root().join(key).display().to_string(),
            Source::S3(s3) => s3.url().display(key),
        };
        ObjectRef::single(key, &display, size)
    }

    /// For an object on this machine, its path: the pipeline then reads it on the same blocking
    /// thread that decodes it, instead of handing it between threads.
    /// The root of a local archive (`None` from S3).
    pub fn local_root(&self) -> Option<&std::path::Path> {
        match self {
            Source::Local(local) => Some(local.root()),
            Source::S3(_) => None,
        }
    }

    /// The bytes of one object, at most `cap` of them (`--max-object-bytes`): an object larger
    /// than that, by its size or by what arrives, is refused without being held in memory.
    pub async fn fetch(&self, object: &ObjectRef, cap: u64) -> Result<Vec<u8>, ReadFailure> {
        let failure = |reason: SkipReason, detail: String| ReadFailure { reason, detail };
        match self {
            Source::Local(local) => local
                .fetch(object, cap)
                .await
                .map_err(|e| failure(e.reason(), e.to_string())),
            Source::S3(s3) => s3
                .fetch(object, cap)
                .await
                .map_err(|e| failure(e.reason(), e.to_string())),
        }
    }
}
