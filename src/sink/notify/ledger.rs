//! What has been announced, kept under the output root so that every run against the same
//! output agrees on it (a re-run, a backfill over published days, a nightly that rewrites a day):
//!
//! - the seen ledger, `_trailsight/notifications/seen/ACCOUNT/REGION/YYYY/MM/DD.json`: the IDs
//!   (`eventID` of an Insight record, `findingID` of a finding) of every notice of that account,
//!   region and day (the record's `eventTime` day) that was ever new to the output. A notice is
//!   new when its ID is not there; the ledger is kept whether or not notifications are
//!   configured, so turning them on later does not announce the past;
//! - the outbox, `_trailsight/notifications/pending/ACCOUNT/REGION.json`: deliveries that failed
//!   after their retries, with the notice itself, retried by the next run (which may never
//!   rewrite that day) before anything new is sent.
//!
//! Both are JSON (`{"version":1,...}`), written whole through the output (a local file is
//! written to a temporary name and renamed; an S3 PutObject is atomic). Per account and region,
//! so shards of one output never write the same file. The outbox of a run is written before
//! its seen ledger: a run stopped between the two announces those records again rather than
//! losing them. A run stopped after a delivery and before the ledger is written (or a process
//! killed mid-request) can deliver a notice twice; consumers can drop repeats by `eventID`.

use super::{Channel, Notice};
use crate::source::layout;
use crate::store::{Store, StoreError};
use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::future::Future;

/// Where the ledger and the outbox live, under the output root.
pub const ROOT: &str = "_trailsight/notifications";
/// The layout version of both files; another version is refused, not misread.
pub const LEDGER_VERSION: u32 = 1;
/// Largest ledger or outbox file read.
const MAX_LEDGER_BYTES: u64 = 256 << 20;

/// The bytes of trailsight's own small files under the output root: read whole, written
/// atomically, removed. The store (`store::Store`) is one.
pub trait LedgerStore: Sync {
    /// The file at `key`, or `None` if there is none.
    fn read(&self, key: &str) -> impl Future<Output = anyhow::Result<Option<Vec<u8>>>> + Send;
    /// Store `bytes` at `key`, replacing what was there, atomically.
    fn write(&self, key: &str, bytes: Vec<u8>) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// Remove `key` if it exists.
    fn delete(&self, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
    /// `key` as a path or `s3://` address, for messages.
    fn locate(&self, key: &str) -> String;
}

impl LedgerStore for Store {
    async fn read(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        // Asked with `exists` first, like the output's other existence checks: in S3 a
        // missing key is then a clean "none" under the output's ListBucket grant.
        let read = async {
            if !self.exists(key).await? {
                return Ok(None);
            }
            self.get(key, MAX_LEDGER_BYTES)
                .await
                .map(|o| o.map(|o| o.bytes))
        };
        read.await.map_err(|e: StoreError| {
            anyhow::anyhow!("cannot read {e} (in S3 this needs s3:GetObject on it)")
        })
    }

    async fn write(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.put(key, bytes)
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {e}"))
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        Store::delete(self, key)
            .await
            .map(drop)
            .map_err(|e| anyhow::anyhow!("cannot remove {e}"))
    }

    fn locate(&self, key: &str) -> String {
        self.display(key)
    }
}

/// An account and region as they appear in keys, checked so a key cannot leave its folder.
fn checked<'a>(account: &'a str, region: &'a str) -> anyhow::Result<(&'a str, &'a str)> {
    if !layout::is_account(account) || !layout::is_region(region) {
        bail!(
            "a notice names account {account:?} and region {region:?}, which are not an account ID and a region"
        );
    }
    Ok((account, region))
}

/// The seen ledger of one account, region and day.
pub fn seen_key(account: &str, region: &str, day: NaiveDate) -> anyhow::Result<String> {
    let (account, region) = checked(account, region)?;
    Ok(format!(
        "{ROOT}/seen/{account}/{region}/{:04}/{:02}/{:02}.json",
        day.year(),
        day.month(),
        day.day()
    ))
}

/// The outbox of one account and region.
pub fn pending_key(account: &str, region: &str) -> anyhow::Result<String> {
    let (account, region) = checked(account, region)?;
    Ok(format!("{ROOT}/pending/{account}/{region}.json"))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeenFile {
    version: u32,
    ids: BTreeSet<String>,
}

/// Decode a seen ledger (sorted IDs).
pub fn decode_seen(bytes: &[u8], location: &str) -> anyhow::Result<BTreeSet<String>> {
    let file: SeenFile = serde_json::from_slice(bytes).with_context(|| {
        format!("{location} is not a trailsight notification ledger; move it away and run again (its notices are then announced again)")
    })?;
    check_version(file.version, location)?;
    Ok(file.ids)
}

pub fn encode_seen(ids: &BTreeSet<String>) -> Vec<u8> {
    serde_json::to_vec(&SeenFile {
        version: LEDGER_VERSION,
        ids: ids.clone(),
    })
    .expect("serialising a ledger into memory")
}

fn check_version(version: u32, location: &str) -> anyhow::Result<()> {
    if version != LEDGER_VERSION {
        bail!(
            "{location} has layout version {version}, this trailsight reads version {LEDGER_VERSION}"
        );
    }
    Ok(())
}

/// A delivery that has not happened yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pending {
    pub channel: Channel,
    pub notice: Notice,
    /// Runs that tried it and failed.
    pub failed_runs: u32,
    /// The last failure.
    pub error: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PendingFile {
    version: u32,
    deliveries: Vec<Pending>,
}

pub fn decode_pending(bytes: &[u8], location: &str) -> anyhow::Result<Vec<Pending>> {
    let file: PendingFile = serde_json::from_slice(bytes).with_context(|| {
        format!("{location} is not a trailsight notification outbox; move it away (its deliveries are then lost) and run again")
    })?;
    check_version(file.version, location)?;
    Ok(file.deliveries)
}

pub fn encode_pending(deliveries: &[Pending]) -> Vec<u8> {
    serde_json::to_vec_pretty(&PendingFile {
        version: LEDGER_VERSION,
        deliveries: deliveries.to_vec(),
    })
    .expect("serialising an outbox into memory")
}

/// The notices not in `seen`, each once, in their order.
pub fn new_notices<'n>(seen: &BTreeSet<String>, notices: &[&'n Notice]) -> Vec<&'n Notice> {
    let mut taken = BTreeSet::new();
    notices
        .iter()
        .filter(|n| !seen.contains(n.id()) && taken.insert(n.id()))
        .copied()
        .collect()
}

/// Add `delivery` to an outbox unless the same notice already waits for the same channel.
pub fn enqueue(outbox: &mut Vec<Pending>, delivery: Pending) {
    match outbox
        .iter_mut()
        .find(|p| p.channel == delivery.channel && p.notice.id() == delivery.notice.id())
    {
        Some(existing) => {
            existing.error = delivery.error;
            existing.failed_runs = existing.failed_runs.max(delivery.failed_runs);
        }
        None => outbox.push(delivery),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_day;
    use crate::sink::notify::tests::record;

    #[test]
    fn keys_are_per_account_region_and_day_and_refuse_odd_names() {
        let day = parse_day("2019-11-07").unwrap();
        assert_eq!(
            seen_key("123456789012", "us-east-1", day).unwrap(),
            "_trailsight/notifications/seen/123456789012/us-east-1/2019/11/07.json"
        );
        assert_eq!(
            pending_key("123456789012", "eu-west-1").unwrap(),
            "_trailsight/notifications/pending/123456789012/eu-west-1.json"
        );
        for (account, region) in [("../../x", "us-east-1"), ("123456789012", "us/east")] {
            assert!(
                seen_key(account, region, day).is_err(),
                "{account} {region}"
            );
            assert!(pending_key(account, region).is_err(), "{account} {region}");
        }
    }

    #[test]
    fn only_notices_missing_from_the_ledger_are_new_each_once() {
        let a = Notice::Insight(Box::new(record(
            "Start",
            "ec2.amazonaws.com",
            "RunInstances",
            None,
        )));
        let b = Notice::Insight(Box::new(record(
            "End",
            "ec2.amazonaws.com",
            "RunInstances",
            None,
        )));
        let ids = |n: &[&Notice]| n.iter().map(|n| n.id().to_owned()).collect::<Vec<_>>();
        let seen_a: BTreeSet<String> = [a.id().to_owned()].into();
        // (seen, notices, new)
        let cases: Vec<(BTreeSet<String>, Vec<&Notice>, Vec<&Notice>)> = vec![
            (BTreeSet::new(), vec![&a, &b], vec![&a, &b]),
            (seen_a.clone(), vec![&a, &b], vec![&b]),
            (seen_a.clone(), vec![&a], vec![]),
            (BTreeSet::new(), vec![&a, &a], vec![&a]),
            (BTreeSet::new(), vec![], vec![]),
        ];
        for (seen, notices, want) in cases {
            assert_eq!(
                ids(&new_notices(&seen, &notices)),
                ids(&want),
                "{seen:?} {:?}",
                ids(&notices)
            );
        }
    }

    #[test]
    fn ledgers_and_outboxes_round_trip_and_refuse_other_files() {
        let ids: BTreeSet<String> = ["b".to_owned(), "a".to_owned()].into();
        let bytes = encode_seen(&ids);
        assert_eq!(bytes, br#"{"version":1,"ids":["a","b"]}"#);
        assert_eq!(decode_seen(&bytes, "x").unwrap(), ids);
        let notice = Notice::Insight(Box::new(record(
            "Start",
            "ec2.amazonaws.com",
            "RunInstances",
            None,
        )));
        let outbox = vec![Pending {
            channel: Channel::Sns,
            notice,
            failed_runs: 1,
            error: "HTTP 500".into(),
        }];
        assert_eq!(
            decode_pending(&encode_pending(&outbox), "x").unwrap(),
            outbox
        );
        for bad in [&b"{}"[..], b"not json", br#"{"version":2,"ids":[]}"#] {
            let err = decode_seen(bad, "s3://b/_trailsight/x.json").unwrap_err();
            assert!(
                format!("{err:#}").contains("s3://b/_trailsight/x.json"),
                "{err:#}"
            );
        }
    }

    #[test]
    fn the_outbox_holds_a_delivery_once() {
        let notice = Notice::Insight(Box::new(record(
            "Start",
            "ec2.amazonaws.com",
            "RunInstances",
            None,
        )));
        let pending = |channel, error: &str, runs| Pending {
            channel,
            notice: notice.clone(),
            failed_runs: runs,
            error: error.into(),
        };
        let mut outbox = Vec::new();
        enqueue(&mut outbox, pending(Channel::Sns, "first", 1));
        enqueue(&mut outbox, pending(Channel::Webhook, "other", 1));
        enqueue(&mut outbox, pending(Channel::Sns, "second", 2));
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox[0].error, "second");
        assert_eq!(outbox[0].failed_runs, 2);
    }

    #[tokio::test]
    async fn a_local_output_reads_what_it_wrote_and_none_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let output = Store::local(dir.path().to_owned());
        let key = "_trailsight/notifications/seen/123456789012/us-east-1/2019/11/07.json";
        assert_eq!(output.read(key).await.unwrap(), None);
        output.write(key, b"{}".to_vec()).await.unwrap();
        assert_eq!(output.read(key).await.unwrap(), Some(b"{}".to_vec()));
        output.delete(key).await.unwrap();
        assert_eq!(output.read(key).await.unwrap(), None);
    }
}
