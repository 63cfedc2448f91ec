//! Single objects by key, with S3's conditional writes: what a state kept in S3 needs (the
//! `state` module builds its lock and its compare-and-swap save on these).
//!
//! - `If-None-Match: *` creates an object only if the key is free (a lock, a first save);
//! - `If-Match: ETAG` replaces an object only if it is still the version read (a takeover of an
//!   abandoned lock, every later save).
//!
//! S3 answers a failed condition with 412 PreconditionFailed (and, when two conditional writes
//! to one key race, 409 ConditionalRequestConflict); both come back as `Put::ConditionFailed`,
//! never retried: the caller decides. A condition can also fail because an earlier attempt of
//! the same request did land and only its answer was lost; callers tell that case apart by
//! reading the object back.

use super::{S3Client, S3Error, S3Url};
use crate::source::s3::retry::Failure;

/// When a PutObject may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Only if no object has the key (`If-None-Match: *`).
    Absent,
    /// Only if the object still has this ETag (`If-Match`).
    Matches(String),
}

/// An object's bytes and its ETag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

/// The outcome of a conditional PutObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    /// Written; the new ETag when S3 returned one.
    Written(Option<String>),
    /// The precondition did not hold (412 or 409): nothing was written by this request.
    ConditionFailed,
}

/// Objects addressed by key under one `s3://bucket/prefix`.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: S3Client,
    url: S3Url,
}

impl S3Objects {
    pub fn new(client: S3Client, url: S3Url) -> S3Objects {
        S3Objects { client, url }
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// Whether `name` exists, asked with a listing of that key (so a missing object is a clean
    /// answer even where the role may not read what is absent).
    pub async fn exists(&self, name: &str) -> Result<bool, S3Error> {
        let key = self.url.key(name);
        let listed = self.client.list(&self.url.bucket, &key).await?;
        Ok(listed.objects.iter().any(|(k, _)| *k == key))
    }

    /// The object `name`, or `None` if there is none (404). These are trailsight's own files
    /// (state, manifests), read without the per-object limit of log objects.
    pub async fn get(&self, name: &str) -> Result<Option<Tagged>, S3Error> {
        match self
            .client
            .get_tagged(&self.url.bucket, &self.url.key(name), u64::MAX)
            .await
        {
            Ok((bytes, etag)) => Ok(Some(Tagged { bytes, etag })),
            Err(S3Error::Request {
                failure: Failure::Status { status: 404, .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PutObject `name` if `precondition` holds.
    pub async fn put_if(
        &self,
        name: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
    ) -> Result<Put, S3Error> {
        let key = self.url.key(name);
        match self
            .client
            .put_with(&self.url.bucket, &key, bytes, Some(&precondition))
            .await
        {
            Ok(etag) => Ok(Put::Written(etag)),
            Err(S3Error::Request {
                failure:
                    Failure::Status {
                        status: 412 | 409, ..
                    },
                ..
            }) => Ok(Put::ConditionFailed),
            Err(e) => Err(e),
        }
    }

    /// DeleteObject `name`.
    pub async fn delete(&self, name: &str) -> Result<(), S3Error> {
        self.client
            .delete(&self.url.bucket, &self.url.key(name))
            .await
    }
}
