//! What an incremental run remembers between nights, and how it is stored.
//!
//! The state holds the per-minute counts of the trailing window (so a night reads only new
//! objects, not eight days of raw logs), how far the analysis has gone, the day from which
//! detection must be redone (the start of the oldest episode still open), and which objects of
//! the last, partly read, day folder were already counted.
//!
//! Layout 6 (this one) is a manifest and one segment per UTC day of the window, so a save
//! costs what changed, not the window:
//! - the manifest, `trailsight-state[-shard-I-of-N].bin.gz`, is a gzip stream of the line
//!   `TRAILSIGHT STATE`, the layout version (a varint), a JSON header with everything but the
//!   counts (source, shard, days, stuck partitions, delivery counts: any tool can read it after
//!   the magic line), the objects already read in the last folder as 128-bit hashes of their
//!   keys (`object_key_hash`), each account and region's first minute (the coverage), the
//!   series directory (every series' key and number of cells, in key order: loading finds a
//!   day's series by walking it in step with the day's, not by a lookup each, and makes each
//!   series' tables once, not day by day),
//!   and the segments: each one's day, object name, size and gzip trailer (the CRC-32 and size
//!   of what it holds), by day;
//! - a segment, `trailsight-state[...].days/YYYY-MM-DD-DIGEST.bin.gz` (segment layout 5), is two
//!   gzip members: the first stored, not compressed, holding the line `TRAILSIGHT STATE DAY`, the
//!   version, the day and the day's event IDs as 64-bit hashes packed in fixed-width columns
//!   (about 9 bytes each: random hashes, which deflate barely shrank, read back without decoding
//!   each), the second compressed, holding that day's counts in the aggregator's compact binary
//!   form (`aggregate::saved`: the day's own string table, the series with cells in the day and
//!   those cells). `zcat` reads it whole. Its name ends with the digest of its bytes: the same
//!   counts give the same object, and an object a manifest lists is never written again.
//!
//! The aggregator notes the days where a cell or an event ID was added, or that were pruned in
//! part, since the state was read (`Aggregator::save_plan`). A save encodes and writes those
//! days' segments one at a time (a day left empty gets none), keeps the manifest's other
//! segments of the days still in the window, writes the manifest, and then removes the
//! segments no manifest lists. Loading reads the manifest, then the segments one at a time,
//! each checked against its size and gzip trailer in the manifest (the decoder then checks the
//! CRC-32 of what it holds) and added to the counts: one
//! segment's bytes are held at a time, never the whole state's. A missing or damaged segment
//! is an error naming it and the manifest, never a partial state.
//!
//! Layout 5 was the same with segments of segment layout 4 (one gzip member: the magic line, the
//! version, the day, the cells, then the IDs as gaps of about 10 bytes each), which layout 6 still
//! reads and keeps until their day changes. Layout 4 was layout 5 with a series directory without
//! the cells' numbers. Layout 3 was a single file, the manifest's header and object
//! hashes followed by all the counts; layout 2 was the same with every event ID in 16 bytes and its
//! minute and API in 6 more; layout 1 was gzip-compressed JSON throughout, under `.json.gz`, with
//! every event ID in hex and every object key in full. Each is read (layout 2's IDs hashed, layout
//! 1's keys hashed) and migrated: the next save writes layout 6 (a `.json.gz` is then removed); any
//! other version is refused, not misread. A state object is encoded whole and compressed whole
//! (libdeflate's fastest level, one gzip member); a day segment is inflated whole (capped) into a
//! buffer reused from one segment to the next, and any other state object is decoded from a capped
//! streaming gzip decoder, straight into the aggregator: at most one day's (or the manifest's)
//! uncompressed form is held beside the counts (a save whose answer was lost compares what is there
//! by digest).
//!
//! The state lives in a store (a local directory or an S3 prefix, `store::Store`) beside a
//! lock `trailsight-state[...].lock` whose body names the holder, the time it was taken and a
//! random nonce. The same rules hold for
//! both kinds, built on the store's conditional writes:
//! - the state is written last in a run's step (after each day's outputs), so a run that fails
//!   or is killed leaves the previous state intact and the next run redoes the work;
//! - a run holds an exclusive lock for its whole duration, so two runs against the same state
//!   cannot interleave; a second run is refused with a message naming the lock and its holder;
//!   a lock older than `LOCK_TTL_SECS` (`--lock-ttl-secs`; a run that was killed) is taken over
//!   with a warning, and so is, at once, a local lock whose holder (`pid N on HOST`) ran on this
//!   host and is gone (no `/proc/N`; a pid reused by another process keeps the age rule);
//! - the lock is created with `put_if(Absent)` (S3's `If-None-Match: *`; locally a hard link of
//!   a complete temporary file), so it exists whole or not at all and of two runs only one gets
//!   it; an abandoned lock is replaced with `put_if(Matches(etag read))`, so of two runs taking
//!   it over at once only one wins;
//! - the manifest is saved with a compare-and-swap: `Matches` the ETag read at the start of
//!   the run (or of the previous save), or `Absent` when there was none. A run that lost its
//!   lock (it outlived `LOCK_TTL_SECS` and was taken over) therefore cannot overwrite the newer
//!   run's state: its save fails and says so. Each save replaces the manifest atomically, after
//!   every segment it lists is written (`put_if(Absent)`, under a name no listed segment has):
//!   a run killed in between leaves the previous manifest and its segments whole, and segments
//!   nothing lists, which the next successful save removes (only after its own manifest is in
//!   place, so a run that lost its lock cannot have its segments removed under a manifest it
//!   could still write); the next run removes them as soon as it has loaded the state when it
//!   found the lock free or its holder gone from this host (no such run can exist), so a run
//!   killed after its last manifest leaves no leftovers behind a re-run with nothing to save;
//! - the lock is released by reading it back and deleting it only if it is still this run's.
//!
//! A condition that fails because an earlier attempt of the same request landed (only its
//! answer was lost) is recognised by reading the object back and finding this run's bytes
//! (compared by digest).

use crate::aggregate::{AggregateState, Aggregator, DaySegments, IdentityFilter, Reader, Writer};
use crate::decode::gzip;
use crate::model::ObjectRef;
use crate::store::{Precondition, Put, Store, StoreError, random_token};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// The layout version of the state (a manifest and day segments); layouts 1 to 3 (a single
/// file), 4 (a manifest whose series directory has no cell counts) and 5 (the same as 6, but
/// only segments of segment layout 4) are migrated, any other refused.
pub const STATE_VERSION: u32 = 6;
/// The layout version of a day segment (5: its event IDs packed in a stored gzip member before
/// its cells); segments of layout 4 (the IDs as gaps after the cells, one member) are read too,
/// so a migrated state's segments (named by the digest of their bytes) are kept, not written
/// again.
const SEGMENT_VERSION: u32 = 5;
/// The first line of a layout-2 (or later) state, or of a manifest (layouts 4 to 6), after gunzip.
const MAGIC: &[u8] = b"TRAILSIGHT STATE\n";
/// The first line of a day segment (state layouts 4 to 6), after gunzip.
const SEGMENT_MAGIC: &[u8] = b"TRAILSIGHT STATE DAY\n";
/// A lock older than this is considered abandoned.
pub const LOCK_TTL_SECS: u64 = 6 * 3600;
/// Largest state file accepted when reading.
const MAX_STATE_BYTES: u64 = 8 << 30;

/// Everything the next run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    pub version: u32,
    /// The source this state was built from; a state is never applied to another source.
    pub source: String,
    /// `I/N` when the run is one shard of N.
    pub shard: Option<String>,
    /// How partitions were assigned to shards (`ShardAssignment::version`) when `shard` is
    /// set: absent in a state sharded before it was recorded, which keeps that assignment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard_assignment: Option<u32>,
    /// The first minute the analysis ever read (the floor of every series' history).
    pub history_floor: i64,
    /// The last day whose Insights have been written (YYYY-MM-DD).
    pub analysed_through: String,
    /// Detection restarts at 00:00 of this day (the oldest episode still open, else the day
    /// after `analysed_through`).
    pub redetect_from: String,
    /// The latest delivery-day folder read; it may have been read only in part.
    pub folders_read_through: String,
    /// The objects already read in that folder, as `object_key_hash`es (in the binary part).
    #[serde(skip)]
    pub processed: Vec<u128>,
    /// The events analysed (`EventSelection::label`) when not AWS's default; a state is never
    /// continued with other events, whose counts it does not hold. Absent in older states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    /// Partitions some of whose logs could not be read: withheld until a later run reads them
    /// (or gives them up). Absent when there are none, so such a state is the same bytes as
    /// one written before this field existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stuck: Vec<StuckPartition>,
    /// Log objects each partition delivered in its recent day folders (YYYY-MM-DD to count), the
    /// history the delivery-gap rule reads. Absent when there is none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<PartitionDeliveries>,
}

/// Objects one partition delivered in its recent day folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionDeliveries {
    pub account: String,
    pub region: String,
    pub days: std::collections::BTreeMap<String, u64>,
}

/// A partition whose logs could not all be read (after the retries), in the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckPartition {
    pub account: String,
    pub region: String,
    /// Its detection restarts at 00:00 of this day (YYYY-MM-DD) once its logs are read.
    pub redetect_from: String,
    /// Its Insights are withheld from this day on.
    pub withheld_from: String,
    /// Objects to read again: bucket-relative key and listed size (0 if listed without one).
    pub objects: Vec<StuckObject>,
    /// Day folders (YYYY-MM-DD) whose listing failed, to list again.
    pub folders: Vec<String>,
    /// Runs that failed to read them (the first failure counts).
    pub attempts: u32,
}

/// An object a stuck partition must read again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckObject {
    pub key: String,
    pub size: u64,
}

/// A layout-1 state: the same header, with the counts and the object keys in JSON.
#[derive(Deserialize)]
struct RunStateV1 {
    #[serde(flatten)]
    header: RunState,
    processed: Vec<String>,
    aggregate: AggregateState,
}

/// A stable 128-bit name of an object key (its UUIDv5, SHA-1 based, in a namespace of ours):
/// what the state keeps of an object already read, 16 bytes instead of a ~150-byte key.
pub fn object_key_hash(key: &str) -> u128 {
    key_hash(&[key.as_bytes()])
}

/// `object_key_hash` of `object`'s key, without building the key.
pub fn object_hash(object: &ObjectRef) -> u128 {
    key_hash(&object.key_parts().map(str::as_bytes))
}

/// `object_key_hash` of the key made of `parts`.
fn key_hash(parts: &[&[u8]]) -> u128 {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7f1c_2b9a_5e4d_4c1b_9a3e_2d6f_0b8c_4e51);
    crate::model::uuid_v5(&NAMESPACE, parts).as_u128()
}

/// The most bytes `compressed` bytes of deflate can inflate to (at most 1032 to 1), within `cap`.
fn inflated_bound(compressed: usize, cap: u64) -> u64 {
    (compressed as u64)
        .saturating_mul(1032)
        .saturating_add(1024)
        .min(cap)
}

/// What a saved state is compared by when a write's answer was lost: its SHA-1 (a UUIDv5),
/// rather than a second copy of its bytes.
fn content_digest(bytes: &[u8]) -> uuid::Uuid {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x2d0e_61c4_93a7_4f58_b1c6_7e3a_95d2_0f84);
    crate::model::uuid_v5(&NAMESPACE, &[bytes])
}

/// One day's segment of a state of day segments (layouts 4 and 5), as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentRef {
    /// The UTC day (days since 1970-01-01) whose counts and event IDs it holds.
    pub day: i64,
    /// Its object name in the state's segment folder: `YYYY-MM-DD-DIGEST.bin.gz`.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its last 8 bytes: the gzip trailer, the CRC-32 and size of what it holds, which the
    /// decoder checks as it reads; so a segment read is the one the manifest lists, whole,
    /// without a digest of its bytes computed on every load.
    pub trailer: [u8; 8],
    /// `content_digest` of its bytes, which its name ends with (not kept in the manifest: nil
    /// for a segment read from one).
    digest: uuid::Uuid,
}

impl SegmentRef {
    /// The segment of `day` holding `bytes`: named by the day and the bytes' digest, so the
    /// same counts give the same name and different counts never share one.
    fn of(day: i64, bytes: &[u8]) -> SegmentRef {
        let digest = content_digest(bytes);
        SegmentRef {
            day,
            name: format!("{}-{}.bin.gz", day_label(day), digest.simple()),
            size: bytes.len() as u64,
            trailer: trailer(bytes),
            digest,
        }
    }

    /// Whether `bytes` are the segment the manifest lists: its size, and its trailer, which the
    /// inflating checks the cells against.
    fn is_listed_as(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.size && trailer(bytes) == self.trailer
    }

    /// The most it can inflate to: its trailer's size (the size modulo 2^32), plus as many
    /// 4 GiB as the cap and deflate's largest ratio (1032:1) allow.
    fn inflated_size(&self) -> u64 {
        const WRAP: u64 = 1 << 32;
        let listed = u64::from(u32::from_le_bytes([
            self.trailer[4],
            self.trailer[5],
            self.trailer[6],
            self.trailer[7],
        ]));
        let most = MAX_STATE_BYTES.min(self.size.saturating_mul(1032));
        listed + most.saturating_sub(listed) / WRAP * WRAP
    }
}

/// The last 8 bytes of `bytes` (a gzip stream's CRC-32 and size), zeros before if shorter.
fn trailer(bytes: &[u8]) -> [u8; 8] {
    let mut last = [0u8; 8];
    let tail = &bytes[bytes.len().saturating_sub(8)..];
    last[8 - tail.len()..].copy_from_slice(tail);
    last
}

/// `YYYY-MM-DD` of a day number (days since 1970-01-01), or `day-N` out of chrono's range.
fn day_label(day: i64) -> String {
    chrono::Duration::try_days(day)
        .and_then(|d| chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(d))
        .map_or_else(|| format!("day{day}"), |date| date.to_string())
}

/// A state object as read: a single-file state (layouts 1 to 3) with its counts, or a
/// manifest (layout 4 or 5), its counts (the coverage so far) to be completed from its segments.
#[derive(Debug)]
pub enum Decoded {
    Whole(RunState, Aggregator),
    Manifest {
        state: RunState,
        counts: Aggregator,
        segments: Vec<SegmentRef>,
    },
}

impl RunState {
    /// The layout-5 manifest: gzip of the magic line, the version, the JSON header, the object
    /// hashes, the coverage (`Aggregator::write_coverage`), the series directory
    /// (`DaySegments::write_directory`) and the segments (count, then each day, name, size and
    /// 8-byte gzip trailer), in ascending order of day.
    pub fn encode_manifest(
        &self,
        counts: &Aggregator,
        days: &DaySegments<'_>,
        segments: &[SegmentRef],
    ) -> Vec<u8> {
        self.encode_manifest_of_layout(STATE_VERSION, counts, days, segments)
    }

    /// A manifest of layout 6 or 5, or of layout 4 (its series directory without cell counts), as
    /// the releases before wrote it: for the migration tests.
    fn encode_manifest_of_layout(
        &self,
        layout: u32,
        counts: &Aggregator,
        days: &DaySegments<'_>,
        segments: &[SegmentRef],
    ) -> Vec<u8> {
        let mut out = Writer::default();
        out.bytes.extend_from_slice(MAGIC);
        out.varint(u64::from(layout));
        let header = serde_json::to_string(self).expect("serialising the state header");
        out.text(&header);
        out.varint(self.processed.len() as u64);
        for hash in &self.processed {
            out.bytes.extend_from_slice(&hash.to_le_bytes());
        }
        counts.write_coverage(&mut out);
        days.write_directory(&mut out, layout >= 5);
        out.varint(segments.len() as u64);
        for segment in segments {
            out.signed(segment.day);
            out.text(&segment.name);
            out.varint(segment.size);
            out.bytes.extend_from_slice(&segment.trailer);
        }
        gzip::gzip_fast(&out.bytes)
    }

    /// Layout 3 (a single file: the header, the object hashes and all the counts), as the
    /// release before layout 4 wrote it: for the migration tests.
    #[cfg(test)]
    pub fn encode_layout_3(&self, counts: &Aggregator) -> Vec<u8> {
        let mut out = Writer::default();
        out.bytes.extend_from_slice(MAGIC);
        out.varint(3);
        out.text(&serde_json::to_string(self).expect("serialising the state header"));
        out.varint(self.processed.len() as u64);
        for hash in &self.processed {
            out.bytes.extend_from_slice(&hash.to_le_bytes());
        }
        counts.write_saved(&mut out);
        gzip::gzip_fast(&out.bytes)
    }

    /// The header of a state object of any layout (for a manifest of day segments, without reading
    /// its segments; for older layouts, its counts read, checked and dropped).
    pub fn decode(bytes: &[u8], location: &str) -> anyhow::Result<RunState> {
        Ok(
            match Self::decode_object(bytes, location, IdentityFilter::default())? {
                Decoded::Whole(state, _) | Decoded::Manifest { state, .. } => state,
            },
        )
    }

    /// A state object: a manifest of layout 6, 5 or 4, or a single-file state of layout 3, or 1 or 2
    /// migrated to it, with its counts (an aggregator excluding `excluded`). A binary layout is
    /// read through a streaming, capped gzip decoder straight into the aggregator, so its
    /// uncompressed form is never held whole.
    pub fn decode_object(
        bytes: &[u8],
        location: &str,
        excluded: IdentityFilter,
    ) -> anyhow::Result<Decoded> {
        let inflated = gzip::gunzip_capped_reader(bytes, MAX_STATE_BYTES);
        let mut input = Reader::streaming(inflated, inflated_bound(bytes.len(), MAX_STATE_BYTES));
        let decoded = match input.peek(MAGIC.len()) {
            Ok(head) if head == MAGIC => Self::decode_binary(&mut input, location, excluded),
            Ok(_) => input
                .read_to_end()
                .and_then(|json| Self::decode_v1(&json, location, excluded))
                .map(|(state, counts)| Decoded::Whole(state, counts)),
            Err(e) => Err(e),
        };
        decoded.map_err(|e| anyhow::anyhow!("state {location}: {e:#}"))
    }

    /// `input` (after gunzip) starts with `MAGIC`.
    fn decode_binary(
        input: &mut Reader<'_>,
        location: &str,
        excluded: IdentityFilter,
    ) -> anyhow::Result<Decoded> {
        input.take(MAGIC.len(), "the magic line")?;
        let version = input.varint("the layout version")?;
        if !(2..=u64::from(STATE_VERSION)).contains(&version) {
            anyhow::bail!(
                "layout version {version}, this trailsight reads versions 1 to {STATE_VERSION}; \
                 use the trailsight that wrote {location}, or start a new state directory \
                 (a backfill rebuilds it)"
            );
        }
        let mut state: RunState = serde_json::from_str(input.text("the header")?)
            .map_err(|e| anyhow::anyhow!("not a trailsight state header ({e})"))?;
        state.version = STATE_VERSION;
        let n = input.count("the number of objects read", 16)?;
        let mut processed = Vec::with_capacity(Reader::reservable(n));
        for _ in 0..n {
            let raw = input.take(16, "an object hash")?;
            processed.push(u128::from_le_bytes(raw.try_into()?));
        }
        state.processed = processed;
        let decoded = if version >= 4 {
            let mut counts = Aggregator::with_excluded_identities(excluded);
            counts.read_coverage(input)?;
            counts.read_directory(input, version >= 5)?;
            let n = input.count("the number of day segments", 11)?;
            let mut segments: Vec<SegmentRef> = Vec::with_capacity(Reader::reservable(n));
            for _ in 0..n {
                let day = input.signed("a segment's day")?;
                let name = input.text("a segment's name")?.to_owned();
                let size = input.varint("a segment's size")?;
                let trailer: [u8; 8] = input.take(8, "a segment's trailer")?.try_into()?;
                anyhow::ensure!(
                    segments.last().is_none_or(|last| last.day < day),
                    "the state lists its day segments out of order"
                );
                anyhow::ensure!(
                    plain_segment_name(&name),
                    "the state lists a day segment named {name:?}, not a segment's name"
                );
                segments.push(SegmentRef {
                    day,
                    name,
                    size,
                    trailer,
                    digest: uuid::Uuid::nil(),
                });
            }
            let inflated: u64 = segments.iter().map(SegmentRef::inflated_size).sum();
            counts.check_directory_cells(inflated)?;
            Decoded::Manifest {
                state,
                counts,
                segments,
            }
        } else {
            Decoded::Whole(
                state,
                Aggregator::read_saved(input, version as u32, excluded)?,
            )
        };
        anyhow::ensure!(
            input.is_done()?,
            "the saved state has bytes after its counts"
        );
        Ok(decoded)
    }

    /// Layout 1 (gzip JSON), migrated: the object keys hashed, the counts re-encoded.
    fn decode_v1(
        json: &[u8],
        location: &str,
        excluded: IdentityFilter,
    ) -> anyhow::Result<(RunState, Aggregator)> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version = serde_json::from_slice(json)
            .map_err(|e| anyhow::anyhow!("not a trailsight state ({e})"))?;
        if version.version != 1 {
            anyhow::bail!(
                "layout version {}, this trailsight reads versions 1 to {STATE_VERSION}; \
                 use the trailsight that wrote {location}, or start a new state directory \
                 (a backfill rebuilds it)",
                version.version
            );
        }
        let old: RunStateV1 = serde_json::from_slice(json)
            .map_err(|e| anyhow::anyhow!("not a trailsight state of layout 1 ({e})"))?;
        let aggregator = Aggregator::from_state(old.aggregate, excluded)?;
        let mut processed: Vec<u128> = old.processed.iter().map(|k| object_key_hash(k)).collect();
        processed.sort_unstable();
        let state = RunState {
            version: STATE_VERSION,
            processed,
            ..old.header
        };
        Ok((state, aggregator))
    }
}

/// Whether `name` is a plain object name a manifest may list (one path segment, not hidden).
fn plain_segment_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

/// The segment of `day` (segment layout 5): two gzip members, the first stored (not
/// compressed) holding the segment's magic line, the version, the day and the day's event IDs
/// packed in fixed-width columns (random hashes, which deflate barely shrinks), the second
/// compressed whole (`gzip::gzip_fast`) holding the day's strings, series and cells
/// (`DaySegments::write`). No time in either header, so the same counts are the same bytes;
/// the cells' member last, so the manifest's copy of the segment's gzip trailer (the size of
/// the last member) bounds what its cells can inflate to. `None` when the day holds nothing.
pub fn encode_segment(day: i64, days: &DaySegments<'_>) -> Option<Vec<u8>> {
    let (mut head, mut cells) = (segment_head(day), Writer::default());
    if !days.write(day, &mut head, &mut cells) {
        return None;
    }
    // Each part is let go once framed, and the members are written into the segment's own
    // bytes: at the end of a night this is the run's largest holding.
    let mut bytes = Vec::new();
    gzip::gzip_stored_onto(&head.bytes, &mut bytes);
    drop(head);
    gzip::gzip_fast_onto(&cells.bytes, &mut bytes);
    drop(cells);
    bytes.shrink_to_fit();
    Some(bytes)
}

/// The start of `day`'s segment (layout 5), before its event IDs: the magic line, the version
/// and the day.
fn segment_head(day: i64) -> Writer<'static> {
    let mut head = Writer::default();
    head.bytes.extend_from_slice(SEGMENT_MAGIC);
    head.varint(u64::from(SEGMENT_VERSION));
    head.signed(day);
    head
}

/// `day`'s segment as `encode_segment` writes it, when the day's cells are those `saved` (the
/// day's segment saved before) holds and only its event IDs changed (`SavePlan::cells_kept`):
/// the IDs' member made again, then `saved`'s cells member as it is, without decoding and
/// compressing the cells again (the same cells give the same member). `None` when `saved` is
/// not a segment of `day` of this layout (encode the day instead); `Some(None)` when the day
/// now holds nothing.
pub fn encode_segment_keeping_cells(
    day: i64,
    days: &DaySegments<'_>,
    saved: &[u8],
) -> Option<Option<Vec<u8>>> {
    let (cells_at, start) = gzip::stored_member(saved, SEGMENT_MAGIC.len() + 20)?;
    let mut input = Reader::new(&start);
    let same_layout = input.take(SEGMENT_MAGIC.len(), "").ok()? == SEGMENT_MAGIC
        && input.varint("").ok()? == u64::from(SEGMENT_VERSION)
        && input.signed("").ok()? == day;
    // The cells member is checked whole (its CRC) before it is kept: the bytes read again are
    // in all likelihood those loaded (the size and trailer the manifest lists), but a copy
    // damaged since would be saved under a new name and fail every later load.
    let cells = &saved[cells_at..];
    if !same_layout || !gzip::is_one_member(cells, MAX_STATE_BYTES) {
        return None;
    }
    let mut head = segment_head(day);
    if !days.write_ids(day, &mut head) && cells == gzip::gzip_fast(&DaySegments::no_cells()) {
        return Some(None);
    }
    let mut bytes = Vec::with_capacity(head.bytes.len() + cells.len() + 64);
    gzip::gzip_stored_onto(&head.bytes, &mut bytes);
    bytes.extend_from_slice(cells);
    Some(Some(bytes))
}

/// A segment of layout 4 (one gzip member: the magic line, version 4, the day, the cells and
/// then the IDs as gaps), as the releases before segment layout 5 wrote it: for the migration
/// tests.
#[cfg(test)]
fn encode_segment_layout_4(day: i64, days: &DaySegments<'_>) -> Option<Vec<u8>> {
    let mut out = Writer::default();
    out.bytes.extend_from_slice(SEGMENT_MAGIC);
    out.varint(4);
    out.signed(day);
    if !days.write_layout_4(day, &mut out) {
        return None;
    }
    Some(gzip::gzip_fast(&out.bytes))
}

/// Add the segment `segment` (its bytes, `location` for messages) to `counts`, after checking
/// that they are the bytes the manifest names. The segment is inflated whole (libdeflate, about
/// twice as fast as streaming) into `buffer`, which the caller keeps from one segment to the
/// next: one day's uncompressed form is held at a time, never the window's.
pub fn decode_segment(
    bytes: &[u8],
    segment: &SegmentRef,
    location: &str,
    counts: &mut Aggregator,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<()> {
    decode_segment_capped(bytes, segment, location, counts, buffer, MAX_STATE_BYTES)
}

/// `decode_segment`, refusing a segment that inflates to more than `cap` bytes.
fn decode_segment_capped(
    bytes: &[u8],
    segment: &SegmentRef,
    location: &str,
    counts: &mut Aggregator,
    buffer: &mut Vec<u8>,
    cap: u64,
) -> anyhow::Result<()> {
    if !segment.is_listed_as(bytes) {
        anyhow::bail!(
            "the state segment {location} is damaged: it is {} bytes and not the {} bytes its \
             manifest lists (or its checksum differs); restore it from a copy, or start a new \
             state directory (a backfill rebuilds it)",
            bytes.len(),
            segment.size
        );
    }
    let read = (|| {
        let inflated = gzip::gunzip_capped_into(bytes, cap, buffer).map_err(|e| match e {
            gzip::GzipError::TooLarge { cap } => {
                anyhow::anyhow!("it inflates to more than {cap} bytes")
            }
            other => anyhow::anyhow!("{other}"),
        })?;
        let mut input = Reader::new(inflated);
        anyhow::ensure!(
            input.take(SEGMENT_MAGIC.len(), "the magic line")? == SEGMENT_MAGIC,
            "not a trailsight state segment"
        );
        let version = input.varint("the layout version")?;
        anyhow::ensure!(
            version == 4 || version == u64::from(SEGMENT_VERSION),
            "a segment of layout version {version}, this trailsight reads 4 and {SEGMENT_VERSION}"
        );
        let day = input.signed("the day")?;
        anyhow::ensure!(
            day == segment.day,
            "the segment holds {}, its manifest lists it for {}",
            day_label(day),
            day_label(segment.day)
        );
        if version == 4 {
            counts.read_day(day, &mut input)?;
        } else {
            counts.read_day_packed(day, &mut input)?;
        }
        anyhow::ensure!(input.is_done()?, "the segment has bytes after its counts");
        Ok(())
    })();
    read.map_err(|e| {
        anyhow::anyhow!(
            "state segment {location}: {e:#}; restore it from a copy, or start a new state \
             directory (a backfill rebuilds it)"
        )
    })
}

/// Where the state lives: a store and the state's name in it.
#[derive(Debug, Clone)]
pub struct StateStore {
    store: Store,
    name: String,
    /// The ETag of the state as this run last read or wrote it: `None` until loaded,
    /// `Some(None)` when there was no state.
    etag: Arc<Mutex<Option<Option<String>>>>,
    /// Age after which a lock is abandoned (`LOCK_TTL_SECS` unless `--lock-ttl-secs`).
    lock_ttl_secs: u64,
    /// The state was read from a layout-1 file, removed once a binary state is saved.
    migrating: Arc<Mutex<bool>>,
    /// The day segments the state's manifest lists, as this run last read or wrote it (none
    /// for a single-file state).
    segments: Arc<Mutex<Vec<SegmentRef>>>,
}

/// Proof that this run holds the lock. Call `release` to give it up; a local lock is also
/// released when dropped.
#[derive(Debug)]
pub struct StateLock {
    store: Store,
    name: String,
    /// What this run wrote into the lock: released only if the lock still holds it.
    body: Vec<u8>,
    /// No run that may still be alive held the lock before this one: it was free, or its
    /// holder's process is gone from this host (not taken over by age from a holder that may
    /// still be running, and so still write a manifest).
    clean: bool,
    released: bool,
}

impl StateLock {
    /// Give the lock up. A lock that another run has taken over (this run outlived
    /// `LOCK_TTL_SECS`) is left alone, with a warning.
    pub async fn release(mut self) {
        self.released = true;
        let lock = self.store.display(&self.name);
        let outcome = match self.store.get(&self.name, MAX_LOCK_BYTES).await {
            Ok(Some(current)) if current.bytes == self.body => {
                self.store.delete(&self.name).await.map(drop)
            }
            Ok(Some(current)) => {
                tracing::warn!(
                    %lock,
                    "the state lock was taken over by another run ({}); leaving it",
                    Holder::parse(&current.bytes).name
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            tracing::warn!(%lock, "cannot release the state lock: {e:#}; delete it by hand, or the next run takes it over after {} h", LOCK_TTL_SECS / 3600);
        }
    }
}

impl Drop for StateLock {
    /// A local lock is released even when the run ends without calling `release` (an error
    /// unwinding through the pipeline); an S3 lock needs the network, so only `release` does.
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Store::Local(dir) = &self.store
            && let Ok(Some(current)) = dir.get(&self.name, MAX_LOCK_BYTES)
            && current.bytes == self.body
        {
            let _ = dir.delete(&self.name);
        }
    }
}

/// Largest lock body read.
const MAX_LOCK_BYTES: u64 = 64 << 10;

/// Who holds a lock, and since when, as written in the lock's body.
struct Holder {
    name: String,
    taken_at: u64,
}

impl Holder {
    /// `holder\nunix seconds\nnonce\n`.
    fn body(holder: &str, now_secs: u64, nonce: &str) -> Vec<u8> {
        format!("{holder}\n{now_secs}\n{nonce}\n").into_bytes()
    }

    fn parse(bytes: &[u8]) -> Holder {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.lines();
        Holder {
            name: lines.next().unwrap_or("unknown").to_owned(),
            taken_at: lines.next().and_then(|l| l.parse().ok()).unwrap_or(0),
        }
    }

    fn is_stale(&self, now_secs: u64, ttl_secs: u64) -> bool {
        now_secs.saturating_sub(self.taken_at) >= ttl_secs
    }

    /// The pid and host of a holder named `pid N on HOST` (as `pipeline` names a run).
    fn pid_and_host(name: &str) -> Option<(u32, &str)> {
        let (pid, host) = name.strip_prefix("pid ")?.split_once(" on ")?;
        Some((pid.parse().ok()?, host))
    }

    /// Whether the holder is a process of this host (`this`, named like a holder) that is gone:
    /// its lock is abandoned whatever its age. `alive` asks the system about a pid.
    fn is_dead_here(&self, this: &str, alive: impl Fn(u32) -> bool) -> bool {
        let (Some((pid, host)), Some((_, this_host))) =
            (Self::pid_and_host(&self.name), Self::pid_and_host(this))
        else {
            return false;
        };
        host == this_host && !alive(pid)
    }

    fn since(&self) -> String {
        chrono::DateTime::from_timestamp(i64::try_from(self.taken_at).unwrap_or(0), 0)
            .map_or_else(|| "an unknown time".into(), |t| t.to_rfc3339())
    }
}

/// Whether process `pid` of this host exists: `/proc/PID`, else `kill(pid, 0)` (which fails
/// with ESRCH only when there is no such process).
fn process_alive(pid: u32) -> bool {
    if std::path::Path::new("/proc/self").exists() {
        return std::path::Path::new(&format!("/proc/{pid}")).exists();
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let failed = unsafe { libc::kill(pid, 0) } != 0;
    !(failed && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH))
}

/// The name of the state of one shard (or of the whole run), without its extension.
fn state_name(shard: Option<&str>) -> String {
    match shard {
        Some(shard) => format!("trailsight-state-shard-{}", shard.replace('/', "-of-")),
        None => "trailsight-state".to_owned(),
    }
}

/// `cannot WHAT LOCATION: CAUSE` (the store error names the object).
fn failure(what: &str, e: StoreError) -> anyhow::Error {
    anyhow::anyhow!("cannot {what} {e}")
}

impl StateStore {
    /// The state of one shard (or of the whole run) in `store`.
    pub fn new(store: Store, shard: Option<&str>) -> StateStore {
        StateStore {
            store,
            name: state_name(shard),
            etag: Arc::new(Mutex::new(None)),
            lock_ttl_secs: LOCK_TTL_SECS,
            migrating: Arc::new(Mutex::new(false)),
            segments: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The shard assignment of the saved state (`RunState::shard_assignment`), read without
    /// the lock (a state's shard never changes): `None` when there is no sharded state to read
    /// (a state that cannot be read is named by the run's own load).
    pub async fn saved_shard_assignment(&self) -> Option<Option<u32>> {
        for file in [self.file(), self.legacy_file()] {
            if let Ok(Some(tagged)) = self.get_if_exists(&file).await {
                let state = RunState::decode(&tagged.bytes, &self.store.display(&file)).ok()?;
                return state.shard.is_some().then_some(state.shard_assignment);
            }
        }
        None
    }

    /// A lock (of another host, or whose holder may be alive) older than `secs` is taken over.
    pub fn with_lock_ttl(mut self, secs: u64) -> StateStore {
        self.lock_ttl_secs = secs;
        self
    }

    fn file(&self) -> String {
        format!("{}.bin.gz", self.name)
    }

    /// Where layout 1 kept the state: read (and migrated) when there is no binary state (layout
    /// 2 or 3), and removed after the first save.
    fn legacy_file(&self) -> String {
        format!("{}.json.gz", self.name)
    }

    /// The folder of the day segments (layouts 4 and 5), ending in `/`.
    fn segment_folder(&self) -> String {
        format!("{}.days/", self.name)
    }

    fn segment_key(&self, segment: &SegmentRef) -> String {
        format!("{}{}", self.segment_folder(), segment.name)
    }

    /// Remove the temporary files (of this store's naming, older than `min_age`) that a killed
    /// earlier run left beside a local state or among its segments. Nothing to do on S3 (a put
    /// is whole or absent).
    pub fn remove_stale_temporaries(&self, min_age: std::time::Duration) {
        let Store::Local(dir) = &self.store else {
            return;
        };
        let folder = self.name.rsplit_once('/').map_or("", |(f, _)| f);
        let segments = self.segment_folder();
        for folder in [folder, &segments] {
            dir.sweep_stale_temporaries(folder, min_age);
        }
    }

    fn lock_name(&self) -> String {
        format!("{}.lock", self.name)
    }

    /// The state object, for messages.
    pub fn describe(&self) -> String {
        self.store.display(&self.file())
    }

    fn remember(&self, etag: Option<String>) {
        *self.etag.lock().unwrap_or_else(|e| e.into_inner()) = Some(etag);
    }

    /// Take the lock, or fail naming the lock and who holds it. `holder` says who this run is.
    pub async fn lock(&self, holder: &str, now_secs: u64) -> anyhow::Result<StateLock> {
        let name = self.lock_name();
        let lock = self.store.display(&name);
        let body = Holder::body(holder, now_secs, &random_token());
        let held = |clean| StateLock {
            store: self.store.clone(),
            name: name.clone(),
            body: body.clone(),
            clean,
            released: false,
        };
        let failed = |e| failure("take the state lock", e);
        for _ in 0..2 {
            let put = self.store.put_if(&name, body.clone(), Precondition::Absent);
            if let Put::Written(_) = put.await.map_err(failed)? {
                return Ok(held(true));
            }
            let Some(current) = self
                .store
                .get(&name, MAX_LOCK_BYTES)
                .await
                .map_err(failed)?
            else {
                continue; // released in between: try again
            };
            if current.bytes == body {
                return Ok(held(true)); // an earlier attempt of this request took it
            }
            let owner = Holder::parse(&current.bytes);
            let dead =
                matches!(self.store, Store::Local(_)) && owner.is_dead_here(holder, process_alive);
            if dead {
                tracing::warn!(%lock, "the lock's holder ({}, since {}) is no longer running on this host", owner.name, owner.since());
            } else if !owner.is_stale(now_secs, self.lock_ttl_secs) {
                anyhow::bail!(
                    "the state {} is locked by another run ({}, since {}): the lock is {lock}; \
                     if no run is active, delete it (it is taken over automatically after {} s, \
                     --lock-ttl-secs, or at once on its own host once its process is gone)",
                    self.describe(),
                    owner.name,
                    owner.since(),
                    self.lock_ttl_secs
                );
            }
            let Some(etag) = current.etag else {
                anyhow::bail!(
                    "cannot take over the abandoned lock {lock}: the store returned no ETag"
                );
            };
            tracing::warn!(%lock, "taking over an abandoned lock of {} (since {})", owner.name, owner.since());
            let takeover = self
                .store
                .put_if(&name, body.clone(), Precondition::Matches(etag));
            if let Put::Written(_) = takeover.await.map_err(failed)? {
                return Ok(held(dead));
            }
            anyhow::bail!(
                "the state {}: another run took over the abandoned lock {lock} at the same time; this run stops",
                self.describe()
            );
        }
        anyhow::bail!("cannot take the state lock {lock}: it keeps changing")
    }

    /// The saved state, if any. Existence is asked first with `exists` (in S3 a listing of the
    /// key itself), so a first run gets a clean "none" where the role may not read what is
    /// absent. A manifest's day segments are then read one at a time, each checked
    /// against the manifest and added to the counts (one segment's bytes held at a time).
    /// A single-file state (layout 3, 2, or layout 1 under its old name) is read and migrated
    /// (`RunState::decode_object`): the first save writes layout 6 over it (a layout-1 file is
    /// then removed).
    pub async fn load(
        &self,
        excluded: IdentityFilter,
    ) -> anyhow::Result<Option<(RunState, Aggregator)>> {
        let failed = |e| failure("read the state", e);
        let file = self.file();
        self.set_segments(Vec::new());
        if let Some(tagged) = self.get_if_exists(&file).await.map_err(failed)? {
            self.remember(tagged.etag);
            let decoded = RunState::decode_object(&tagged.bytes, &self.describe(), excluded)?;
            drop(tagged.bytes);
            return match decoded {
                Decoded::Whole(state, counts) => {
                    tracing::info!(
                        "read the state {} of a single-file layout; it is saved in layout {STATE_VERSION} (day segments) from now on",
                        self.describe()
                    );
                    Ok(Some((state, counts)))
                }
                Decoded::Manifest {
                    state,
                    mut counts,
                    segments,
                } => {
                    self.read_segments(&mut counts, &segments).await?;
                    counts
                        .finish_loading()
                        .map_err(|e| anyhow::anyhow!("state {}: {e:#}", self.describe()))?;
                    self.set_segments(segments);
                    Ok(Some((state, counts)))
                }
            };
        }
        self.remember(None);
        let legacy = self.legacy_file();
        let Some(tagged) = self.get_if_exists(&legacy).await.map_err(failed)? else {
            return Ok(None);
        };
        let location = self.store.display(&legacy);
        let Decoded::Whole(state, counts) =
            RunState::decode_object(&tagged.bytes, &location, excluded)?
        else {
            anyhow::bail!(
                "state {location}: a manifest of day segments under the name of a layout-1 \
                 state; remove it, or start a new state directory (a backfill rebuilds it)"
            );
        };
        tracing::info!(
            "read the state {location} of layout 1; it is saved as {} from now on",
            self.describe()
        );
        *self.migrating.lock().unwrap_or_else(|e| e.into_inner()) = true;
        Ok(Some((state, counts)))
    }

    fn set_segments(&self, segments: Vec<SegmentRef>) {
        *self.segments.lock().unwrap_or_else(|e| e.into_inner()) = segments;
    }

    /// Read each of `segments` into `counts`, in order of day: a missing or damaged one is an
    /// error naming it and the manifest, never a partial state.
    async fn read_segments(
        &self,
        counts: &mut Aggregator,
        segments: &[SegmentRef],
    ) -> anyhow::Result<()> {
        let mut buffer = Vec::new();
        for segment in segments {
            let key = self.segment_key(segment);
            let location = self.store.display(&key);
            let got = self
                .store
                .get_bytes(&key, MAX_STATE_BYTES)
                .await
                .map_err(|e| failure("read the state segment", e))?;
            let Some(bytes) = got else {
                anyhow::bail!(
                    "the state {} lists the day segment {location}, which is missing; restore \
                     it from a copy, or start a new state directory (a backfill rebuilds it)",
                    self.describe()
                );
            };
            decode_segment(&bytes, segment, &location, counts, &mut buffer)?;
        }
        Ok(())
    }

    /// An object, if it exists (asked first with `exists`, so a role that may not read what is
    /// absent gets a clean "none").
    async fn get_if_exists(&self, name: &str) -> Result<Option<crate::store::Tagged>, StoreError> {
        if !self.store.exists(name).await? {
            return Ok(None);
        }
        self.store.get(name, MAX_STATE_BYTES).await
    }

    /// After the first save of a migrated state, remove the layout-1 file (a failure only
    /// warns: the old file is never read again while the new one exists).
    async fn finish_migration(&self) {
        if !std::mem::take(&mut *self.migrating.lock().unwrap_or_else(|e| e.into_inner())) {
            return;
        }
        let legacy = self.legacy_file();
        if let Err(e) = self.store.delete(&legacy).await {
            tracing::warn!(
                "the state was migrated to {}, but the layout-1 file could not be removed ({e}); \
                 it is no longer read, delete it by hand",
                self.describe()
            );
        }
    }

    /// Save the state: the day segments of the days that changed since the counts were loaded
    /// or last saved (`Aggregator::save_plan`), each encoded and written in turn under a name
    /// of its day and digest (never one the current manifest lists), then the manifest,
    /// replaced atomically only if it is still the version this run read or last wrote; then
    /// the segments no manifest lists any more (this save's leftovers, and those of a run
    /// killed between its segments and its manifest) are removed.
    pub async fn save(
        &self,
        state: &RunState,
        counts: &mut Aggregator,
        _lock: &StateLock,
    ) -> anyhow::Result<()> {
        let plan = counts.save_plan();
        let current = self
            .segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut segments: Vec<SegmentRef> = match plan.keep_from {
            None => Vec::new(),
            Some(first) => current
                .iter()
                .filter(|s| s.day >= first && plan.write.binary_search(&s.day).is_err())
                .cloned()
                .collect(),
        };
        let bytes = {
            let days = counts.day_segments();
            for &day in &plan.write {
                let kept = match plan.cells_kept.binary_search(&day) {
                    Ok(_) => self.keeping_cells(day, &current, &days).await,
                    Err(_) => None,
                };
                let Some(bytes) = kept.unwrap_or_else(|| encode_segment(day, &days)) else {
                    continue;
                };
                let segment = SegmentRef::of(day, &bytes);
                if !current.iter().any(|s| s.name == segment.name) {
                    self.write_segment(&segment, bytes, &days).await?;
                }
                segments.push(segment);
            }
            segments.sort_unstable_by_key(|s| s.day);
            state.encode_manifest(counts, &days, &segments)
        };
        self.write_manifest(bytes).await?;
        counts.mark_saved();
        self.set_segments(segments);
        self.collect_segments().await;
        self.finish_migration().await;
        Ok(())
    }

    /// `day`'s segment with the cells of its segment in `current` kept as they are
    /// (`encode_segment_keeping_cells`), when only its event IDs changed; `None` if that
    /// segment cannot be read as the manifest lists it (the day is then encoded whole).
    async fn keeping_cells(
        &self,
        day: i64,
        current: &[SegmentRef],
        days: &DaySegments<'_>,
    ) -> Option<Option<Vec<u8>>> {
        let segment = current.iter().find(|s| s.day == day)?;
        let key = self.segment_key(segment);
        let saved = match self.store.get_bytes(&key, MAX_STATE_BYTES).await {
            Ok(Some(saved)) => saved,
            Ok(None) => return None,
            Err(e) => {
                let at = self.store.display(&key);
                tracing::debug!("{at} not read again ({e}): the day is encoded whole");
                return None;
            }
        };
        if !segment.is_listed_as(&saved) {
            return None;
        }
        let kept = encode_segment_keeping_cells(day, days, &saved)?;
        debug_assert_eq!(
            kept,
            encode_segment(day, days),
            "a kept cells member is what encoding the day gives"
        );
        Some(kept)
    }

    /// Write a new segment: created only if absent. An object already there under its name
    /// (an earlier attempt of this request whose answer was lost, or the same day's segment
    /// left by a killed run) is kept if it holds these bytes, else replaced (no manifest
    /// lists it: a manifest's segments are never written again).
    async fn write_segment(
        &self,
        segment: &SegmentRef,
        bytes: Vec<u8>,
        days: &DaySegments<'_>,
    ) -> anyhow::Result<()> {
        let key = self.segment_key(segment);
        let failed = |e| failure("write the state segment", e);
        let put = self.store.put_if(&key, bytes, Precondition::Absent);
        if let Put::Written(_) = put.await.map_err(failed)? {
            return Ok(());
        }
        let there = self
            .store
            .get(&key, MAX_STATE_BYTES)
            .await
            .map_err(failed)?;
        if there.is_some_and(|t| content_digest(&t.bytes) == segment.digest) {
            return Ok(());
        }
        tracing::warn!(
            "replacing {}: a damaged copy of a state segment no manifest lists",
            self.store.display(&key)
        );
        let bytes = encode_segment(segment.day, days).expect("the day was just encoded");
        self.store.put(&key, bytes).await.map_err(failed)
    }

    /// Replace the manifest with a compare-and-swap on the ETag this run read or last wrote.
    async fn write_manifest(&self, bytes: Vec<u8>) -> anyhow::Result<()> {
        let location = self.describe();
        let file = self.file();
        let digest = content_digest(&bytes);
        let known = self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let precondition = match known.flatten() {
            Some(etag) => Precondition::Matches(etag),
            None => Precondition::Absent,
        };
        let failed = |e| failure("write the state", e);
        match self
            .store
            .put_if(&file, bytes, precondition)
            .await
            .map_err(failed)?
        {
            Put::Written(Some(etag)) => self.remember(Some(etag)),
            Put::Written(None) | Put::ConditionFailed => {
                // No ETag returned, or the condition failed: read back what is there now.
                match self
                    .store
                    .get(&file, MAX_STATE_BYTES)
                    .await
                    .map_err(failed)?
                {
                    Some(current) if content_digest(&current.bytes) == digest => {
                        self.remember(current.etag)
                    }
                    _ => anyhow::bail!(
                        "the state {location} was replaced by another run since this run read it, \
                         so this run did not save its state (its output is written, and a re-run \
                         writes the same); make sure only one run uses this state, then run again"
                    ),
                }
            }
        }
        Ok(())
    }

    /// Once the state is loaded, remove the segments its manifest does not list, when no run
    /// that wrote them can still list them: the lock was `clean`. A run killed after writing
    /// its last manifest, while removing the segments that manifest replaced, leaves them for
    /// the next run, which may have nothing to save (and a save is what removes them
    /// otherwise). With a lock taken over by age, they are left to this run's first save.
    pub async fn remove_leftovers(&self, lock: &StateLock) {
        if lock.clean {
            self.collect_segments().await;
        }
    }

    /// Remove the segments the manifest just written does not list (best effort: a failure
    /// warns, and a later save removes them). Any run that wrote them is done with them: a
    /// run that was killed, or one whose lock was taken over, whose manifest can no longer
    /// replace this one (its ETag is gone).
    async fn collect_segments(&self) {
        let folder = self.segment_folder();
        let listed = match self.store.list(&folder).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!("cannot list the state's day segments to remove old ones: {e}");
                return;
            }
        };
        let keep = self
            .segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (name, _) in listed.objects {
            if !plain_segment_name(&name) || keep.iter().any(|s| s.name == name) {
                continue;
            }
            let key = format!("{folder}{name}");
            if let Err(e) = self.store.delete(&key).await {
                tracing::warn!("cannot remove {name}, a state segment no longer used: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, GzBuilder};
    use std::io::Write;

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// Counts of one series over two minutes and two event IDs, in layout 1's form.
    fn counts() -> AggregateState {
        use crate::aggregate::{CellState, SeriesState};
        AggregateState {
            symbols: [
                "123456789012",
                "us-east-1",
                "ec2.amazonaws.com",
                "RunInstances",
                "arn:a",
            ]
            .map(String::from)
            .to_vec(),
            series: vec![SeriesState {
                key: [0, 1, 2, 3, crate::decode::NO_SYM],
                cells: vec![
                    CellState(26_206_560, 3, vec![(4, 3)], vec![], vec![]),
                    CellState(26_206_561, 1, vec![(4, 1)], vec![], vec![]),
                ],
                data: false,
                resources: Vec::new(),
            }],
            coverage: vec![(0, 1, 26_206_560)],
            seen: vec![
                (format!("{:032x}", 1), 26_206_560),
                (format!("{:032x}", u128::MAX), 26_206_561),
            ],
            seen_apis: vec![7, 9],
        }
    }

    fn aggregator() -> Aggregator {
        Aggregator::from_state(counts(), IdentityFilter::default()).unwrap()
    }

    /// `counts()` as a layout-2 or 3 state holds them: each event ID as its 64-bit hash.
    fn counts_hashed() -> AggregateState {
        let mut seen: Vec<(String, i64, u32)> = [(1, 26_206_560, 7), (u128::MAX, 26_206_561, 9)]
            .into_iter()
            .map(|(id, minute, api)| {
                let hash = crate::aggregate::event_id_hash(id);
                (format!("{hash:016x}"), minute, api)
            })
            .collect();
        seen.sort();
        AggregateState {
            seen_apis: seen.iter().map(|(_, _, api)| *api).collect(),
            seen: seen
                .into_iter()
                .map(|(id, minute, _)| (id, minute))
                .collect(),
            ..counts()
        }
    }

    /// A loaded state with its counts in a comparable form.
    fn comparable(loaded: Option<(RunState, Aggregator)>) -> Option<(RunState, AggregateState)> {
        loaded.map(|(state, counts)| (state, counts.to_state()))
    }

    fn state() -> RunState {
        RunState {
            version: STATE_VERSION,
            source: "sample-data".into(),
            shard: None,
            shard_assignment: None,
            history_floor: 0,
            analysed_through: "2019-11-07".into(),
            redetect_from: "2019-11-08".into(),
            folders_read_through: "2019-11-08".into(),
            processed: vec![object_key_hash("AWSLogs/x.json.gz")],
            events: None,
            stuck: vec![StuckPartition {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                redetect_from: "2019-11-06".into(),
                withheld_from: "2019-11-07".into(),
                objects: vec![StuckObject {
                    key: "AWSLogs/y.json.gz".into(),
                    size: 12,
                }],
                folders: vec!["2019-11-08".into()],
                attempts: 2,
            }],
            deliveries: vec![PartitionDeliveries {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                days: [("2019-11-07".to_string(), 40)].into(),
            }],
        }
    }

    /// `state()` as layout 1 wrote it: gzip JSON with the keys and counts spelled out.
    fn state_v1() -> Vec<u8> {
        let mut json = serde_json::to_value(state()).unwrap();
        json["version"] = 1.into();
        json["processed"] = serde_json::json!(["AWSLogs/x.json.gz"]);
        json["aggregate"] = serde_json::to_value(counts()).unwrap();
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
        serde_json::to_writer(&mut gz, &json).unwrap();
        gz.finish().unwrap()
    }

    /// `state()` as layout 2 wrote it: its counts are layout 3's up to the event IDs, which it
    /// wrote whole (16 bytes little-endian), with 2 bytes of minute of the day and 4 of API.
    fn state_v2() -> Vec<u8> {
        let no_ids = AggregateState {
            seen: Vec::new(),
            seen_apis: Vec::new(),
            ..counts()
        };
        let no_ids = Aggregator::from_state(no_ids, IdentityFilter::default()).unwrap();
        let mut out = Writer::default();
        out.bytes.extend_from_slice(MAGIC);
        out.varint(2);
        out.text(&serde_json::to_string(&state()).unwrap());
        out.varint(state().processed.len() as u64);
        for hash in state().processed {
            out.bytes.extend_from_slice(&hash.to_le_bytes());
        }
        no_ids.write_saved(&mut out);
        assert_eq!(out.bytes.pop(), Some(0), "no days of IDs");
        out.varint(1);
        out.signed(26_206_560 / 1440);
        out.varint(2);
        for (id, minute_of_day, api) in [(1u128, 0u16, 7u32), (u128::MAX, 1, 9)] {
            out.bytes.extend_from_slice(&id.to_le_bytes());
            out.bytes.extend_from_slice(&minute_of_day.to_le_bytes());
            out.bytes.extend_from_slice(&api.to_le_bytes());
        }
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
        gz.write_all(&out.bytes).unwrap();
        gz.finish().unwrap()
    }

    /// A single-file state as read, with its counts.
    fn whole(bytes: &[u8]) -> (RunState, Aggregator) {
        match RunState::decode_object(bytes, "old", IdentityFilter::default()).unwrap() {
            Decoded::Whole(state, counts) => (state, counts),
            other => panic!("not a single-file state: {other:?}"),
        }
    }

    /// The names in the state's segment folder (hidden temporaries left out).
    fn segment_files(dir: &std::path::Path, store: &StateStore) -> Vec<String> {
        let folder = dir.join(store.segment_folder());
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// A layout-2 or layout-3 state (a single file) reads as the same state (layout 2's event
    /// IDs hashed, the rest unchanged), and the next save writes layout 6 over it: a manifest
    /// under the same name, and a segment for the one day of counts.
    #[test]
    fn a_layout_2_or_3_state_is_migrated() {
        let default = IdentityFilter::default;
        let expected = Some((state(), counts_hashed()));
        let layout_3 = state().encode_layout_3(&aggregator());
        // The same counts as a layout-1 state migrated, or as counted by this layout.
        let (state_2, counts_2) = whole(&state_v2());
        assert_eq!(state_2.encode_layout_3(&counts_2), layout_3);
        for (case, old) in [("layout 2", state_v2()), ("layout 3", layout_3)] {
            assert_eq!(comparable(Some(whole(&old))), expected, "{case}");
            let dir = tempfile::tempdir().unwrap();
            let store = StateStore::new(Store::local(dir.path().to_owned()), None);
            std::fs::write(dir.path().join(store.file()), &old).unwrap();
            let load = || comparable(block_on(store.load(default())).unwrap());
            assert_eq!(load(), expected, "{case}");
            let lock = block_on(store.lock("test", 1000)).unwrap();
            let (loaded, mut counts) = block_on(store.load(default())).unwrap().unwrap();
            block_on(store.save(&loaded, &mut counts, &lock)).unwrap();
            let saved = std::fs::read(dir.path().join(store.file())).unwrap();
            let raw = gzip::gunzip_capped(&saved, 1 << 20).unwrap();
            assert_eq!(u32::from(raw[MAGIC.len()]), STATE_VERSION, "{case}");
            let day = 26_206_560 / 1440;
            let segments = segment_files(dir.path(), &store);
            assert_eq!(segments.len(), 1, "{case}: {segments:?}");
            assert!(segments[0].starts_with(&day_label(day)), "{segments:?}");
            assert_eq!(load(), expected, "{case}");
            assert_eq!(RunState::decode(&saved, "new").unwrap(), state());
        }
    }

    /// A layout-1 state reads as the same state (keys and event IDs hashed, counts re-encoded,
    /// the counts themselves unchanged), and the store moves it to the new file on the first
    /// save, removing the old one.
    #[test]
    fn a_layout_1_state_is_migrated() {
        let default = IdentityFilter::default;
        let migrated = whole(&state_v1());
        assert_eq!(RunState::decode(&state_v1(), "old").unwrap(), state());
        let expected = Some((state(), counts_hashed()));
        assert_eq!(comparable(Some(migrated)), expected);

        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(Store::local(dir.path().to_owned()), None);
        std::fs::write(dir.path().join(store.legacy_file()), state_v1()).unwrap();
        let load = || comparable(block_on(store.load(default())).unwrap());
        assert_eq!(load(), expected);
        let lock = block_on(store.lock("test", 1000)).unwrap();
        block_on(store.save(&state(), &mut aggregator(), &lock)).unwrap();
        assert!(!dir.path().join(store.legacy_file()).exists());
        assert!(dir.path().join(store.file()).exists());
        assert_eq!(load(), expected);
        block_on(store.save(&state(), &mut aggregator(), &lock)).unwrap();
        assert_eq!(load(), expected);
        assert_eq!(segment_files(dir.path(), &store).len(), 1);
    }

    #[test]
    fn saves_loads_and_refuses_other_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(Store::local(dir.path().to_owned()), None);
        let load = || block_on(store.load(IdentityFilter::default()));
        assert!(load().unwrap().is_none());
        let lock = block_on(store.lock("test", 1000)).unwrap();
        block_on(store.save(&state(), &mut aggregator(), &lock)).unwrap();
        assert_eq!(
            comparable(load().unwrap()),
            Some((state(), counts_hashed()))
        );
        // Another layout version (after the magic line, or in a JSON state) is refused; a cut or
        // garbled state is an error, not a panic.
        let manifest = std::fs::read(dir.path().join(store.file())).unwrap();
        let mut raw = gzip::gunzip_capped(&manifest, 1 << 20).unwrap();
        raw[MAGIC.len()] = 99;
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
        gz.write_all(&raw).unwrap();
        let future = gz.finish().unwrap();
        let old_json = |version: u32| {
            let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
            write!(gz, r#"{{"version":{version},"source":"x"}}"#).unwrap();
            gz.finish().unwrap()
        };
        let cut = {
            let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
            gz.write_all(&raw[..raw.len() - 3]).unwrap();
            gz.finish().unwrap()
        };
        let cases: [(&str, Vec<u8>, &str); 4] = [
            ("layout 99", future, "layout version 99"),
            ("JSON layout 7", old_json(7), "layout version 7"),
            ("garbage", b"garbage".to_vec(), "trailsight-state.bin.gz"),
            ("cut short", cut, "layout version 99"),
        ];
        for (case, bytes, expected) in cases {
            std::fs::write(dir.path().join(store.file()), bytes).unwrap();
            let err = format!("{:#}", load().unwrap_err());
            assert!(err.contains(expected), "{case}: {err}");
        }
        raw[MAGIC.len()] = STATE_VERSION as u8;
        // Cut in the header, in the object hashes, the coverage or the segment list, or with
        // bytes after them.
        let mut longer = raw.clone();
        longer.push(0);
        for end in [
            MAGIC.len() + 1,
            MAGIC.len() + 10,
            raw.len() - 40,
            raw.len() - 1,
            raw.len() + 1,
        ] {
            let decoded = RunState::decode_binary(
                &mut Reader::new(&longer[..end]),
                "x",
                IdentityFilter::default(),
            );
            let err = format!("{:#}", decoded.unwrap_err());
            let expected = if end > raw.len() {
                "bytes after"
            } else {
                "cut short"
            };
            assert!(err.contains(expected), "{end}: {err}");
        }
        // A stream inflating past the cap is refused once it gets there.
        let bomb = {
            let mut gz = GzBuilder::new().write(Vec::new(), Compression::fast());
            gz.write_all(&vec![0; 1 << 20]).unwrap();
            gz.finish().unwrap()
        };
        let mut capped = gzip::gunzip_capped_reader(&bomb, 1000);
        let err = std::io::copy(&mut capped, &mut std::io::sink()).unwrap_err();
        assert!(err.to_string().contains("more than 1000 bytes"), "{err}");
        assert!(inflated_bound(bomb.len(), u64::MAX) >= 1 << 20);
    }

    /// A layout-4 state (a manifest whose series directory has no cell counts) reads as the
    /// same counts; the next save writes a layout-5 manifest and keeps its segments, which are
    /// unchanged. A layout-5 directory that counts more cells than its segments can hold is
    /// refused before any table is sized by it.
    #[test]
    fn a_layout_4_manifest_is_migrated_and_its_segments_kept() {
        let default = IdentityFilter::default;
        let (dir, store, lock) = locked_local_state();
        let mut written = two_days();
        block_on(store.save(&state(), &mut written, &lock)).unwrap();
        let segments_5 = segment_files(dir.path(), &store);
        let manifest_5 = std::fs::read(dir.path().join(store.file())).unwrap();
        let (state_5, loaded_5) = block_on(store.load(default())).unwrap().unwrap();
        let listed = store.segments.lock().unwrap().clone();
        assert_eq!(listed.len(), 2);

        let days = written.day_segments();
        let manifest_4 = state_5.encode_manifest_of_layout(4, &written, &days, &listed);
        drop(days);
        let inflated = |bytes: &[u8]| gzip::gunzip_capped(bytes, 1 << 20).unwrap();
        let (raw_4, raw_5) = (inflated(&manifest_4), inflated(&manifest_5));
        assert_eq!((raw_4[MAGIC.len()], raw_5[MAGIC.len()]), (4, 6));
        assert!(raw_4.len() < raw_5.len());
        std::fs::write(dir.path().join(store.file()), &manifest_4).unwrap();
        let (state_4, mut loaded_4) = block_on(store.load(default())).unwrap().unwrap();
        assert_eq!(state_4, state_5);
        assert_eq!(loaded_4.to_state(), loaded_5.to_state());
        assert_eq!(loaded_4.save_plan().write, Vec::<i64>::new());
        block_on(store.save(&state_4, &mut loaded_4, &lock)).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(store.file())).unwrap(),
            manifest_5
        );
        assert_eq!(segment_files(dir.path(), &store), segments_5);

        // A directory counting more cells than two small segments can hold.
        let mut more = two_days();
        let mut counts = more.to_state();
        for _ in 0..400 {
            let mut cell = counts.series[0].cells.last().unwrap().clone();
            cell.0 += 1;
            counts.series[0].cells.push(cell);
        }
        more = Aggregator::from_state(counts, default()).unwrap();
        let days = more.day_segments();
        let lying = state_5.encode_manifest(&more, &days, &listed);
        drop(days);
        std::fs::write(dir.path().join(store.file()), &lying).unwrap();
        let err = format!("{:#}", block_on(store.load(default())).unwrap_err());
        assert!(err.contains("series directory counts"), "{err}");
    }

    /// A layout-5 state (a manifest whose segments are of segment layout 4: one gzip member,
    /// the IDs as gaps after the cells) reads as the same counts. A save keeps the segment of a
    /// day that did not change as it is, writes the changed day's in segment layout 5 (the IDs
    /// packed in a stored member before the cells' member) and the manifest in layout 6; what it
    /// wrote reads back the same.
    #[test]
    fn a_layout_5_state_keeps_its_layout_4_segments_until_their_day_changes() {
        use crate::aggregate::CellState;
        let default = IdentityFilter::default;
        let (dir, store, lock) = locked_local_state();
        let (d0, d1) = TWO_DAYS;
        let mut spread = counts();
        spread.series[0].cells[1].0 += 1440;
        let third = CellState(26_206_565, 2, vec![(4, 2)], vec![], vec![]);
        spread.series[0].cells.insert(1, third);
        spread.seen[1].1 += 1440;
        let written = Aggregator::from_state(spread, default()).unwrap();
        let days = written.day_segments();
        let folder = dir.path().join(store.segment_folder());
        std::fs::create_dir_all(&folder).unwrap();
        let listed: Vec<SegmentRef> = [d0, d1]
            .map(|day| {
                let bytes = encode_segment_layout_4(day, &days).unwrap();
                let segment = SegmentRef::of(day, &bytes);
                std::fs::write(folder.join(&segment.name), &bytes).unwrap();
                segment
            })
            .into();
        let manifest = state().encode_manifest_of_layout(5, &written, &days, &listed);
        drop(days);
        std::fs::write(dir.path().join(store.file()), &manifest).unwrap();
        let (loaded_state, mut loaded) = block_on(store.load(default())).unwrap().unwrap();
        assert_eq!(loaded.to_state(), written.to_state());

        // Pruned in part, the first day changes; the second does not.
        loaded.prune_before(crate::model::Minute(26_206_561));
        block_on(store.save(&loaded_state, &mut loaded, &lock)).unwrap();
        let inflated = |bytes: &[u8]| gzip::gunzip_capped(bytes, 1 << 20).unwrap();
        let files = segment_files(dir.path(), &store);
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files.contains(&listed[1].name), "{files:?}");
        assert!(!files.contains(&listed[0].name), "{files:?}");
        for name in &files {
            let raw = inflated(&std::fs::read(folder.join(name)).unwrap());
            let want = if *name == listed[1].name { 4 } else { 5 };
            assert_eq!(raw[SEGMENT_MAGIC.len()], want, "{name}");
        }
        let raw = inflated(&std::fs::read(dir.path().join(store.file())).unwrap());
        assert_eq!(raw[MAGIC.len()], 6);
        let (_, again) = block_on(store.load(default())).unwrap().unwrap();
        assert_eq!(again.to_state(), loaded.to_state());
        assert_eq!(again.to_state().series[0].cells.len(), 2);
    }

    /// The days of `two_days()`.
    const TWO_DAYS: (i64, i64) = (26_206_560 / 1440, 26_206_560 / 1440 + 1);

    /// A state in a new local folder, and its lock taken: the folder (removed when dropped),
    /// the state's store and the lock.
    fn locked_local_state() -> (tempfile::TempDir, StateStore, StateLock) {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(Store::local(dir.path().to_owned()), None);
        let lock = block_on(store.lock("test", 1000)).unwrap();
        (dir, store, lock)
    }

    /// `counts()` spread over two days: its second minute and second event ID a day later.
    fn two_days() -> Aggregator {
        let mut counts = counts();
        counts.series[0].cells[1].0 += 1440;
        counts.seen[1].1 += 1440;
        Aggregator::from_state(counts, IdentityFilter::default()).unwrap()
    }

    /// A segment no manifest lists (a run killed after its last manifest, while removing the
    /// segments it replaced) is removed by the next run as soon as it has loaded the state,
    /// with nothing to save, when it found the lock free; a lock taken over by age (its holder
    /// may still be running and write a manifest naming it) leaves it to that run's saves.
    #[test]
    fn leftover_segments_are_removed_after_loading_only_under_a_lock_found_free() {
        let default = IdentityFilter::default;
        let (dir, store, lock) = locked_local_state();
        block_on(store.save(&state(), &mut two_days(), &lock)).unwrap();
        block_on(lock.release());
        let listed = segment_files(dir.path(), &store);
        let folder = dir.path().join(store.segment_folder());
        std::fs::write(folder.join("2019-10-01-0123.bin.gz"), b"replaced").unwrap();
        let with_leftover = segment_files(dir.path(), &store);
        assert_eq!(with_leftover.len(), listed.len() + 1);

        let abandoned = Holder::body("pid 7 on elsewhere", 1000, "n");
        std::fs::write(dir.path().join(store.lock_name()), abandoned).unwrap();
        let taken_over = block_on(store.lock("test", 1000 + LOCK_TTL_SECS + 1)).unwrap();
        block_on(store.load(default())).unwrap().unwrap();
        block_on(store.remove_leftovers(&taken_over));
        assert_eq!(segment_files(dir.path(), &store), with_leftover);
        block_on(taken_over.release());

        let free = block_on(store.lock("test", 1000)).unwrap();
        block_on(store.load(default())).unwrap().unwrap();
        block_on(store.remove_leftovers(&free));
        assert_eq!(segment_files(dir.path(), &store), listed);
        block_on(free.release());
    }

    /// A save writes the segments of the days that changed only, never one the manifest
    /// lists; a segment already there under its name (an earlier attempt whose answer was
    /// lost, a killed run's) is kept if whole and replaced if not; what no manifest lists is
    /// removed after the manifest is written; a missing or damaged segment is an error naming
    /// it.
    #[test]
    fn segments_are_written_when_their_day_changed_and_collected_when_unlisted() {
        let default = IdentityFilter::default;
        let (dir, store, lock) = locked_local_state();
        let (d0, d1) = TWO_DAYS;
        let mut written = two_days();
        // What an earlier attempt left: the first day's segment whole, the second's damaged.
        let days = written.day_segments();
        let names: Vec<(String, Vec<u8>)> = [d0, d1]
            .map(|day| {
                let bytes = encode_segment(day, &days).unwrap();
                (SegmentRef::of(day, &bytes).name, bytes)
            })
            .into();
        drop(days);
        let folder = dir.path().join(store.segment_folder());
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(&names[0].0), &names[0].1).unwrap();
        std::fs::write(folder.join(&names[1].0), b"cut").unwrap();
        // And a killed run's segment of another day, and a temporary file being written.
        std::fs::write(folder.join("2019-10-01-0123.bin.gz"), b"old").unwrap();
        std::fs::write(folder.join(".x.bin.gz.00ff.tmp"), b"partial").unwrap();
        block_on(store.save(&state(), &mut written, &lock)).unwrap();
        let listed: Vec<String> = names.iter().map(|(name, _)| name.clone()).collect();
        assert_eq!(segment_files(dir.path(), &store), listed);
        assert_eq!(std::fs::read(folder.join(&names[1].0)).unwrap(), names[1].1);
        assert!(folder.join(".x.bin.gz.00ff.tmp").exists());

        // Loaded, the counts are the same; saved unchanged, nothing is written.
        let (state, mut loaded) = block_on(store.load(default())).unwrap().unwrap();
        assert_eq!(loaded.to_state(), written.to_state());
        assert_eq!(loaded.save_plan().write, Vec::<i64>::new());
        let manifest = std::fs::read(dir.path().join(store.file())).unwrap();
        std::fs::write(folder.join(&names[0].0), b"not written again").unwrap();
        block_on(store.save(&state, &mut loaded, &lock)).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(store.file())).unwrap(),
            manifest
        );
        assert_eq!(
            std::fs::read(folder.join(&names[0].0)).unwrap(),
            b"not written again"
        );
        // A damaged segment, then a missing one, are errors naming them.
        let err = format!("{:#}", block_on(store.load(default())).unwrap_err());
        assert!(
            err.contains("damaged") && err.contains(&names[0].0),
            "{err}"
        );
        std::fs::remove_file(folder.join(&names[0].0)).unwrap();
        let err = format!("{:#}", block_on(store.load(default())).unwrap_err());
        assert!(
            err.contains("missing") && err.contains(&names[0].0),
            "{err}"
        );
        std::fs::write(folder.join(&names[0].0), &names[0].1).unwrap();

        // The first day pruned: only the manifest is written, and the first day's segment removed.
        let (state, mut loaded) = block_on(store.load(default())).unwrap().unwrap();
        loaded.prune_before(crate::model::Minute(d1 * 1440));
        assert_eq!(loaded.save_plan().write, Vec::<i64>::new());
        block_on(store.save(&state, &mut loaded, &lock)).unwrap();
        assert_eq!(segment_files(dir.path(), &store), [names[1].0.clone()]);
        let (_, again) = block_on(store.load(default())).unwrap().unwrap();
        assert_eq!(again.to_state(), loaded.to_state());
        assert_eq!(again.days().into_iter().collect::<Vec<_>>(), [d1]);

        // A save whose manifest was replaced meanwhile fails and leaves the other's standing;
        // its new segment is removed by the next save that succeeds.
        let (state, _) = block_on(store.load(default())).unwrap().unwrap();
        let mut fresh = two_days();
        let other = RunState {
            analysed_through: "2019-11-09".into(),
            ..state.clone()
        };
        let other_store = StateStore::new(Store::local(dir.path().to_owned()), None);
        block_on(other_store.load(default())).unwrap();
        block_on(other_store.save(&other, &mut fresh, &lock)).unwrap();
        let theirs = std::fs::read(dir.path().join(store.file())).unwrap();
        let mut changed = counts();
        changed.series[0].cells[0].1 = 5;
        let mut loaded = Aggregator::from_state(changed, default()).unwrap();
        let err = format!(
            "{:#}",
            block_on(store.save(&state, &mut loaded, &lock)).unwrap_err()
        );
        assert!(err.contains("replaced by another run"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join(store.file())).unwrap(),
            theirs
        );
        assert_eq!(segment_files(dir.path(), &store).len(), 3);
        let (state, mut loaded) = block_on(other_store.load(default())).unwrap().unwrap();
        assert_eq!(state.analysed_through, "2019-11-09");
        assert_eq!(loaded.to_state(), two_days().to_state());
        block_on(other_store.save(&state, &mut loaded, &lock)).unwrap();
        assert_eq!(segment_files(dir.path(), &store), listed);
    }

    /// A day whose only change since it was saved is its event IDs forgotten is saved with the
    /// cells member of its saved segment kept as it is: the bytes encoding it whole gives. A
    /// saved segment of another day or layout, or not a whole gzip member, is not used; a day
    /// that held event IDs only has no segment once they are forgotten.
    #[test]
    fn a_day_whose_ids_were_forgotten_keeps_its_saved_cells() {
        use crate::model::Minute;
        let default = IdentityFilter::default;
        let (dir, store, lock) = locked_local_state();
        let (d0, d1) = TWO_DAYS;
        // `two_days()` and an event ID alone the day before (its event not analysed).
        let mut counts = two_days().to_state();
        let alone = (format!("{:032x}", 2), 26_206_560 - 1440);
        counts.seen.insert(0, alone);
        counts.seen_apis.insert(0, 7);
        let mut written = Aggregator::from_state(counts, default()).unwrap();
        block_on(store.save(&state(), &mut written, &lock)).unwrap();
        let saved = |day: i64| {
            let segment = store.segments.lock().unwrap().clone();
            let segment = segment.into_iter().find(|s| s.day == day).unwrap();
            std::fs::read(dir.path().join(store.segment_key(&segment))).unwrap()
        };
        let (saved_before, saved_d0) = (saved(d0 - 1), saved(d0));

        let (state, mut loaded) = block_on(store.load(default())).unwrap().unwrap();
        loaded.forget_ids_before(Minute(d1 * 1440));
        let plan = loaded.save_plan();
        assert_eq!(
            (plan.write, plan.cells_kept),
            (vec![d0 - 1, d0], vec![d0 - 1, d0])
        );
        let days = loaded.day_segments();
        let whole = encode_segment(d0, &days).unwrap();
        assert_ne!(whole, saved_d0);
        let kept = encode_segment_keeping_cells(d0, &days, &saved_d0);
        assert_eq!(kept, Some(Some(whole.clone())));
        let (cells_at, _) = gzip::stored_member(&saved_d0, 0).unwrap();
        assert!(whole.ends_with(&saved_d0[cells_at..]));
        assert_eq!(encode_segment(d0 - 1, &days), None);
        assert_eq!(
            encode_segment_keeping_cells(d0 - 1, &days, &saved_before),
            Some(None)
        );
        // Not a segment of this day and layout, or not whole: encoded instead.
        let layout_4 = encode_segment_layout_4(d0, &days).unwrap();
        let mut damaged = saved_d0.clone();
        damaged[cells_at + 12] ^= 1;
        let mut two_cells = saved_d0.clone();
        two_cells.extend_from_slice(&saved_d0[cells_at..]);
        for other in [
            &saved(d1)[..],
            &layout_4,
            &saved_d0[..cells_at],
            &saved_d0[..saved_d0.len() - 1],
            &damaged,
            &two_cells,
            b"cut",
        ] {
            assert_eq!(encode_segment_keeping_cells(d0, &days, other), None);
        }
        drop(days);

        // Saved, the day's new segment is listed and the IDs-only day has none.
        block_on(store.save(&state, &mut loaded, &lock)).unwrap();
        assert_eq!(saved(d0), whole);
        assert!(store.segments.lock().unwrap().iter().all(|s| s.day >= d0));
        let (_, again) = block_on(store.load(default())).unwrap().unwrap();
        assert_eq!(again.to_state(), loaded.to_state());
        assert_eq!(again.to_state().seen.len(), 1);
    }

    /// An object's hash is the hash of its key, built or not, and the same as in every earlier
    /// release (saved states list these hashes): UUIDv5 in our namespace, as Python's
    /// `uuid.uuid5` computes it.
    #[test]
    fn an_objects_hash_is_the_saved_hash_of_its_key() {
        let folder = "AWSLogs/111122223333/CloudTrail/us-east-1/2019/11/08/";
        let key =
            format!("{folder}111122223333_CloudTrail_us-east-1_20191108T0005Z_abcd1234.json.gz");
        assert_eq!(
            object_key_hash(&key),
            0x8f7b_acf8_4ffa_5ee4_99a4_7a55_f434_be1e
        );
        let mut listed = crate::model::ObjectFolder::builder(folder.into(), folder.into());
        for name in [
            "111122223333_CloudTrail_us-east-1_20191108T0005Z_abcd1234.json.gz",
            "111122223333_CloudTrail_us-east-1_20191108T0010Z_ef567890.json.gz",
            "111122223333_CloudTrail_us-east-1_20191108T2355Z_00000000.json.gz",
            "x",
        ] {
            listed.push(name, 1);
        }
        for object in listed.finish() {
            assert_eq!(
                object_hash(&object),
                object_key_hash(&object.key()),
                "{}",
                object.key()
            );
        }
        let single = ObjectRef::single(&key, &key, 1);
        assert_eq!(object_hash(&single), object_key_hash(&key));
    }

    /// A segment that is the one its manifest lists (size and trailer) but whose gzip stream is
    /// damaged (cut, its checksum or a byte inside changed, or inflating past the cap) is an
    /// error naming it and what is wrong, whatever the reused buffer held before.
    #[test]
    fn a_damaged_segment_is_named_with_what_is_wrong() {
        let day = 26_206_560 / 1440;
        let written = two_days();
        let whole = encode_segment(day, &written.day_segments()).unwrap();
        let flipped = |at: usize| {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x55;
            bytes
        };
        let cases: [(&str, Vec<u8>, u64, &str); 6] = [
            ("whole", whole.clone(), MAX_STATE_BYTES, ""),
            (
                "cut",
                whole[..whole.len() - 12].to_vec(),
                MAX_STATE_BYTES,
                "truncated gzip",
            ),
            (
                "header only",
                whole[..10].to_vec(),
                MAX_STATE_BYTES,
                "truncated gzip",
            ),
            (
                "wrong checksum",
                flipped(whole.len() - 8),
                MAX_STATE_BYTES,
                "corrupt gzip",
            ),
            (
                "byte flipped inside",
                flipped(whole.len() / 2),
                MAX_STATE_BYTES,
                "corrupt gzip",
            ),
            (
                "over the cap",
                whole.clone(),
                100,
                "inflates to more than 100 bytes",
            ),
        ];
        for (case, bytes, cap, expected) in cases {
            let segment = SegmentRef::of(day, &bytes);
            let mut counts = Aggregator::new();
            let mut buffer = vec![0xaa; 1 << 16];
            let read = decode_segment_capped(
                &bytes,
                &segment,
                "days/x.bin.gz",
                &mut counts,
                &mut buffer,
                cap,
            );
            if expected.is_empty() {
                read.unwrap();
                continue;
            }
            let err = format!("{:#}", read.unwrap_err());
            assert!(
                err.starts_with("state segment days/x.bin.gz: ")
                    && err.contains(expected)
                    && err.contains("restore it from a copy"),
                "{case}: {err}"
            );
        }
    }

    #[test]
    fn a_second_run_cannot_take_a_held_lock_but_takes_an_abandoned_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(Store::local(dir.path().to_owned()), Some("1/4"));
        let held = block_on(store.lock("first", 1000)).unwrap();
        let err = block_on(store.lock("second", 2000)).unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("locked by another run (first, since 1970-01-01T00:16:40+00:00)"),
            "{err:#}"
        );
        std::mem::forget(held);
        assert!(block_on(store.lock("third", 1000 + LOCK_TTL_SECS + 1)).is_ok());
        assert!(
            store
                .describe()
                .ends_with("trailsight-state-shard-1-of-4.bin.gz")
        );
    }

    #[test]
    fn a_holder_is_dead_only_on_this_host_with_its_pid_gone() {
        let this = "pid 1 on here";
        let cases = [
            // (holder, its pid alive, dead here)
            ("pid 7 on here", false, true),
            ("pid 7 on here", true, false),
            ("pid 7 on there", false, false),
            ("someone else", false, false),
            ("pid x on here", false, false),
        ];
        for (name, alive, dead) in cases {
            let holder = Holder::parse(format!("{name}\n0\n").as_bytes());
            assert_eq!(holder.is_dead_here(this, |_| alive), dead, "{name} {alive}");
        }
        assert!(process_alive(std::process::id()));
    }

    #[test]
    fn lock_bodies_name_their_holder_and_age() {
        let cases: [(&[u8], &str, u64, bool); 5] = [
            (b"pid 7 on host\n1000\n", "pid 7 on host", 1000, false),
            (
                b"pid 7 on host\n1000\n00ff00ff00ff00ff\n",
                "pid 7 on host",
                1000,
                false,
            ),
            (b"pid 7 on host\n", "pid 7 on host", 0, true),
            (b"", "unknown", 0, true),
            (b"\xff\xfe\n12\n", "\u{fffd}\u{fffd}", 12, true),
        ];
        let now = 1000 + LOCK_TTL_SECS - 1;
        for (body, name, taken_at, stale) in cases {
            let holder = Holder::parse(body);
            assert_eq!(
                (
                    holder.name.as_str(),
                    holder.taken_at,
                    holder.is_stale(now, LOCK_TTL_SECS)
                ),
                (name, taken_at, stale),
                "{body:?}"
            );
        }
        assert!(Holder::parse(b"x\n1000\n").is_stale(1000 + LOCK_TTL_SECS, LOCK_TTL_SECS));
        assert!(Holder::parse(b"x\n1000\n").is_stale(1060, 60));
        assert_eq!(
            Holder::body("pid 1 on h", 5, "00ff"),
            b"pid 1 on h\n5\n00ff\n"
        );
    }
}
