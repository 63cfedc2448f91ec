//! Bytes of one log object -> the compact events the analysis counts.
//!
//! `decode_object` is pure and synchronous: it opens gzip (through `gzip`, with a size cap),
//! walks the records (`record`), classifies each one, and keeps only what feeds an Insight:
//! write management calls (call rate), management calls with an error code (error rate), and,
//! when the run selects them, data calls (call rate, read and write, as AWS) with their
//! `resources[].ARN`, and read-only management calls (`--call-rate-events all`).
//! Strings are interned per object, so an event is a few integers; the aggregate stage maps
//! them into its own table.
//!
//! Classification, in one place:
//! - management: `managementEvent` when present, else `eventCategory == "Management"`, else
//!   (records older than 1.06) every event type but Insight events, except the data-event APIs
//!   of that time (S3 object-level calls and Lambda `Invoke`, [`is_early_data_api`]): a trail
//!   that logged data events before 1.06 wrote them without either field.
//! - data: `managementEvent` false with `eventCategory` "Data" or absent (1.06 records), or no
//!   `managementEvent` and `eventCategory` "Data". Other categories (`NetworkActivity`) are
//!   neither and never analysed.
//! - write: `readOnly` is `false` (bool or string); a record without `readOnly` is not a write.
//! - error: a non-empty `errorCode`. A record with an `errorMessage` but no `errorCode` (a failed
//!   console sign-in) is not an error-rate event, because AWS keys error rates by error code; it
//!   still counts toward the call rate when it is a write.
//! - account and region: the record's own `recipientAccountId` and `awsRegion`, falling back to
//!   the folder's when a record lacks them.
//!
//! Hostile input (tests/hostile/README.md has the whole corpus): a whole object fails with one
//! `DecodeError` (not gzip, truncated or corrupt gzip, over the size cap, invalid JSON, not a
//! CloudTrail file), counted under its `reason()`; invalid UTF-8 in a field or key that is read,
//! and text after the JSON, are invalid JSON; inside an object or array that is skipped, only
//! its strings and brackets are checked (`structure`), so tokens out of order there cost
//! nothing. Nested arrays and objects are skipped without recursion, however deep: a deep value where a field is read leaves that field unusable (`record
//! has no eventName`), a deep field that is not read costs nothing. A record that cannot be used
//! is counted under a `Skip::Bad` reason and costs nothing else; one whose time is outside the
//! analysed minutes (1970, 2999) is out of scope, not bad.

pub mod gzip;
pub mod record;
pub mod structure;

use crate::model::problem::SkipReason;
use crate::model::{CallRateScope, EventCategory, EventSelection, Minute, Window};
use crate::source::layout::PartitionFilter;
use record::{FileShape, RawRecord, RecordSlot, Scalar};
use std::collections::BTreeMap;
use std::hash::BuildHasher;

/// Default cap on the decompressed size of one object: four times CloudTrail's 50 MB file limit.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 200 << 20;

/// An index into a `DecodedObject`'s symbol table.
pub type Sym = u32;
/// "No value" in a symbol slot.
pub const NO_SYM: Sym = Sym::MAX;

/// What makes an event count.
pub mod flags {
    /// A write management call: counts toward its API's call rate.
    pub const WRITE: u8 = 1;
    /// A call with an error code: counts toward its error rate.
    pub const ERROR: u8 = 2;
    /// A management call not known to be a write (`readOnly` true or absent): counts toward
    /// its call rate only with `--call-rate-events all` (set only then).
    pub const READ: u8 = 4;
    /// A data event (set only when data events are selected): counts toward its call rate,
    /// read or write, and with `ERROR` toward its error rate, in data-event series.
    pub const DATA: u8 = 8;
    /// Any of these makes an event count toward its call rate.
    pub const CALL: u8 = WRITE | READ | DATA;
}

/// One analysed event, with its strings as symbols of the object's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The `eventID` as 128 bits (a UUID's own bits; other strings are hashed). `None` when
    /// the record has no `eventID`, and then it cannot be de-duplicated.
    pub id: Option<u128>,
    pub minute: Minute,
    pub account: Sym,
    pub region: Sym,
    pub event_source: Sym,
    pub event_name: Sym,
    pub error_code: Sym,
    pub identity: Sym,
    pub user_agent: Sym,
    pub flags: u8,
}

/// Counts of what one object held; summed over the run for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordStats {
    pub records: u64,
    /// Write management events (call rate).
    pub write_events: u64,
    /// Management events with an error code (error rate).
    pub error_events: u64,
    /// Read-only management events counted toward call rate (`--call-rate-events all`).
    pub read_events: u64,
    /// Data events analysed (call rate, read and write).
    pub data_events: u64,
    /// Data events with an error code (error rate).
    pub data_error_events: u64,
    /// Records outside the analysed minutes or outside the account/region filter.
    pub out_of_scope: u64,
    /// Insight records (`AwsCloudTrailInsight`) found among the logs: not analysed.
    pub insight_records: u64,
    /// Records that could not be used, by reason.
    pub bad_records: BTreeMap<&'static str, u64>,
    /// Escapes of lone UTF-16 surrogates in the object's JSON, read as U+FFFD
    /// (`record::repair_lone_surrogates`).
    pub lone_surrogates_replaced: u64,
}

impl RecordStats {
    pub fn add(&mut self, other: &RecordStats) {
        self.records += other.records;
        self.write_events += other.write_events;
        self.error_events += other.error_events;
        self.read_events += other.read_events;
        self.data_events += other.data_events;
        self.data_error_events += other.data_error_events;
        self.out_of_scope += other.out_of_scope;
        self.insight_records += other.insight_records;
        self.lone_surrogates_replaced += other.lone_surrogates_replaced;
        for (reason, n) in &other.bad_records {
            *self.bad_records.entry(reason).or_default() += n;
        }
    }

    pub fn bad_total(&self) -> u64 {
        self.bad_records.values().sum()
    }
}

/// The result of decoding one object.
#[derive(Debug, Clone, Default)]
pub struct DecodedObject {
    pub symbols: Strings,
    pub events: Vec<Event>,
    /// For each (account, region) symbol pair, the earliest minute of any in-scope record:
    /// evidence of how far back the trail's history reaches.
    pub coverage: Vec<((Sym, Sym), Minute)>,
    /// `resources[].ARN` of data events: (index into `events`, symbol of `resource_symbols`),
    /// in event order, each ARN once per event. Empty unless data events are selected.
    pub resources: Vec<(u32, Sym)>,
    /// The ARNs' own table: kept apart so the aggregator interns only the ARNs it keeps (a
    /// bulk read names thousands of distinct objects).
    pub resource_symbols: Strings,
    /// `Interner::hash` of each of `resource_symbols`, by symbol (or empty: then the aggregator
    /// hashes them itself), so an ARN is hashed once on its way to the aggregator's table.
    pub resource_hashes: Vec<u64>,
    pub stats: RecordStats,
}

/// What decoding needs to know about the run.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    pub window: Window,
    pub filter: PartitionFilter,
    pub max_object_bytes: u64,
    /// Which events are analysed (default: management, write calls for call rate).
    pub selection: EventSelection,
}

/// Why a whole object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "not a gzip file although named .gz (it starts with {0}); CloudTrail delivers gzip JSON"
    )]
    NotGzip(String),
    #[error(transparent)]
    Gzip(#[from] gzip::GzipError),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("not a CloudTrail log file: {0}")]
    Shape(&'static str),
}

impl DecodeError {
    /// A short, stable reason for the run summary.
    pub fn reason(&self) -> SkipReason {
        match self {
            DecodeError::NotGzip(_) => SkipReason::NotGzip,
            DecodeError::Gzip(gzip::GzipError::Truncated) => SkipReason::TruncatedGzip,
            DecodeError::Gzip(gzip::GzipError::Corrupt(_)) => SkipReason::CorruptGzip,
            DecodeError::Gzip(gzip::GzipError::TooLarge { .. }) => SkipReason::OverSizeLimit,
            DecodeError::Json(_) => SkipReason::InvalidJson,
            DecodeError::Shape(_) => SkipReason::NotCloudTrailLog,
        }
    }
}

/// Decode one object. `key` decides whether it must be gzip and gives the folder's account and
/// region for records that lack their own.
pub fn decode_object(
    bytes: &[u8],
    key: &str,
    options: &DecodeOptions,
) -> Result<DecodedObject, DecodeError> {
    let mut buffer = JsonBuffers::take();
    let decoded = decode_with(bytes, key, options, &mut buffer);
    JsonBuffers::give_back(buffer);
    decoded
}

impl DecodedObject {
    /// Hand a counted object back: the next objects decoded fill its tables instead of
    /// allocating their own. An object is made on a reading thread and dropped on the counting
    /// one, and malloc pays for memory that crosses threads: a fresh allocation for each object
    /// on one side, a free into another thread's arena on the other (most of a small object's
    /// allocation cost).
    pub fn recycle(self) {
        SpareObjects::give_back(self);
    }

    /// The bytes its tables hold room for.
    fn capacity_bytes(&self) -> usize {
        use std::mem::size_of;
        self.symbols.capacity_bytes()
            + self.events.capacity() * size_of::<Event>()
            + self.coverage.capacity() * size_of::<((Sym, Sym), Minute)>()
            + self.resources.capacity() * size_of::<(u32, Sym)>()
            + self.resource_symbols.capacity_bytes()
            + self.resource_hashes.capacity() * size_of::<u64>()
    }
}

/// Free the tables and buffers kept for the next objects decoded (`DecodedObject::recycle`,
/// `JsonBuffers`). Between a day's reads nothing is decoded, and they would otherwise be held
/// through its detection and the state's save (6 MB at an organization's night's peak).
pub fn release_spares() {
    if let Ok(mut spare) = SPARE_OBJECTS.lock() {
        spare.objects = Vec::new();
        spare.bytes = 0;
    }
    if let Ok(mut pool) = JSON_BUFFERS.lock() {
        *pool = Vec::new();
    }
}

thread_local! {
    /// The hashes and index of the last object's table decoded on this thread (they do not
    /// leave it with the object).
    static OBJECT_INDEX: std::cell::Cell<(Vec<u64>, hashbrown::HashTable<Sym>)> =
        const { std::cell::Cell::new((Vec::new(), hashbrown::HashTable::new())) };
}

/// Counted objects kept for their tables (`DecodedObject::recycle`), and the bytes those
/// hold room for.
struct SpareObjects {
    objects: Vec<DecodedObject>,
    bytes: usize,
}

static SPARE_OBJECTS: std::sync::Mutex<SpareObjects> = std::sync::Mutex::new(SpareObjects {
    objects: Vec::new(),
    bytes: 0,
});

impl SpareObjects {
    /// At most this many bytes kept: all the objects the reading threads run ahead of the
    /// counting, when they are small (about 550 on an organization trail of small files: kept
    /// fewer, half of them were made anew, the other half freed) ...
    const KEPT_BYTES: usize = 8 << 20;
    /// ... and only small objects: a large object's allocations are a small part of its cost.
    const KEPT_OBJECT_BYTES: usize = 64 << 10;

    fn take() -> Option<DecodedObject> {
        let mut spare = SPARE_OBJECTS.lock().ok()?;
        let object = spare.objects.pop()?;
        spare.bytes -= object.capacity_bytes();
        Some(object)
    }

    fn give_back(object: DecodedObject) {
        let bytes = object.capacity_bytes();
        if bytes > Self::KEPT_OBJECT_BYTES {
            return;
        }
        if let Ok(mut spare) = SPARE_OBJECTS.lock()
            && spare.bytes + bytes <= Self::KEPT_BYTES
        {
            spare.bytes += bytes;
            spare.objects.push(object);
        }
    }
}

/// Buffers for gunzipped JSON, reused from object to object (no allocation, page faults or
/// zeroing per object). A pool rather than one per thread: decoding runs on whichever blocking
/// thread is free, and a run may see dozens of them, each of which would keep its own buffer.
struct JsonBuffers;

static JSON_BUFFERS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

impl JsonBuffers {
    /// Buffers kept for reuse (more than the decoding threads of most machines) ...
    const KEPT: usize = 8;
    /// ... and the largest kept: one grown past this by an unusually large object is freed.
    const KEPT_BYTES: usize = 16 << 20;

    fn take() -> Vec<u8> {
        let pooled = JSON_BUFFERS.lock().ok().and_then(|mut pool| pool.pop());
        pooled.unwrap_or_default()
    }

    fn give_back(buffer: Vec<u8>) {
        if buffer.len() > Self::KEPT_BYTES {
            return;
        }
        if let Ok(mut pool) = JSON_BUFFERS.lock()
            && pool.len() < Self::KEPT
        {
            pool.push(buffer);
        }
    }
}

fn decode_with(
    bytes: &[u8],
    key: &str,
    options: &DecodeOptions,
    buffer: &mut Vec<u8>,
) -> Result<DecodedObject, DecodeError> {
    let json = open_json(bytes, key, options.max_object_bytes, buffer)?;
    let folder = crate::source::layout::parse_log_key_parts_in_turn(key).ok();
    let new_builder = || ObjectBuilder::new(options, folder.as_ref());
    let repaired;
    let (shape, builder, replaced) = match record::walk_log_file(json, new_builder) {
        Ok((shape, builder)) => (shape, builder, 0),
        // Refused for a lone surrogate's escape, perhaps: read again with each one replaced.
        Err(error) => match record::repair_lone_surrogates(json) {
            Some((bytes, replaced)) => {
                repaired = bytes;
                let (shape, builder) =
                    record::walk_log_file(&repaired, new_builder).map_err(DecodeError::Json)?;
                (shape, builder, replaced)
            }
            None => return Err(DecodeError::Json(error)),
        },
    };
    match shape {
        FileShape::Records | FileShape::BareArray => {
            let mut decoded = builder.finish();
            decoded.stats.lone_surrogates_replaced = replaced;
            Ok(decoded)
        }
        FileShape::NoRecords => Err(DecodeError::Shape("the top-level object has no Records")),
        FileShape::RecordsNotArray => Err(DecodeError::Shape("Records is not an array")),
        FileShape::NotAnObject => Err(DecodeError::Shape("the top level is not a JSON object")),
    }
}

/// The JSON text of an object: gunzipped (into `buffer`) when it is gzip; `.json.gz` must be
/// gzip.
fn open_json<'a>(
    bytes: &'a [u8],
    key: &str,
    cap: u64,
    buffer: &'a mut Vec<u8>,
) -> Result<&'a [u8], DecodeError> {
    if gzip::is_gzip(bytes) {
        return Ok(gzip::gunzip_capped_into(bytes, cap, buffer)?);
    }
    if key.ends_with(".gz") {
        return Err(DecodeError::NotGzip(describe_start(bytes)));
    }
    if bytes.len() as u64 > cap {
        return Err(gzip::GzipError::TooLarge { cap }.into());
    }
    Ok(bytes)
}

fn describe_start(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing: the file is empty".into();
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("bytes {}", head.join(" "))
}

/// Distinct strings of a typical object (accounts, regions, APIs, callers, user agents).
const OBJECT_STRINGS: usize = 32;

/// Builds a `DecodedObject` record by record.
struct ObjectBuilder<'o> {
    options: &'o DecodeOptions,
    folder_account: Option<&'o str>,
    folder_region: Option<&'o str>,
    interner: Interner,
    events: Vec<Event>,
    /// Earliest minute per (account, region): almost always one pair per object.
    coverage: Vec<((Sym, Sym), Minute)>,
    resources: Vec<(u32, Sym)>,
    resource_interner: Interner,
    stats: RecordStats,
    /// The last analysed record's (account, region) symbols: checked and interned once for the
    /// run of records that share them.
    last_place: Option<(Sym, Sym)>,
    /// The symbols of the eventSource, eventName, caller and user agent values met lately
    /// (`Interner::intern_recent`).
    recent: Recent,
    /// The date of the last eventTime read and its day (`record::parse_event_time_after`).
    last_day: Option<([u8; 10], i64)>,
}

/// Why a record is not used.
enum Skip {
    Bad(&'static str),
    OutOfScope,
    Insight,
    NotAnalysed,
}

/// How large the last object a thread decoded grew: the next one's lists start at that size
/// instead of doubling their way up (a trail's files are alike), up to `SizeHint::CAP` entries.
#[derive(Debug, Clone, Copy, Default)]
struct SizeHint {
    events: usize,
    resources: usize,
    arns: usize,
    arn_bytes: usize,
}

thread_local! {
    static LAST_SIZES: std::cell::Cell<SizeHint> = const {
        std::cell::Cell::new(SizeHint { events: 0, resources: 0, arns: 0, arn_bytes: 0 })
    };
}

impl SizeHint {
    /// The most entries a list is started with (a 50 MB file holds about 30 k records).
    const CAP: usize = 1 << 15;

    fn get() -> SizeHint {
        LAST_SIZES.with(std::cell::Cell::get)
    }

    fn set(object: &DecodedObject) {
        let cap = |n: usize| n.min(Self::CAP);
        LAST_SIZES.with(|last| {
            last.set(SizeHint {
                events: cap(object.events.len()),
                resources: cap(object.resources.len()),
                arns: cap(object.resource_symbols.len()),
                arn_bytes: cap(object.resource_symbols.text.len() / 64) * 64,
            })
        });
    }
}

impl<'o> ObjectBuilder<'o> {
    fn new(
        options: &'o DecodeOptions,
        folder: Option<&crate::source::layout::LogKeyParts<'o>>,
    ) -> Self {
        let hint = SizeHint::get();
        let DecodedObject {
            symbols,
            mut events,
            mut coverage,
            mut resources,
            resource_symbols,
            resource_hashes,
            stats: _,
        } = SpareObjects::take().unwrap_or_default();
        events.clear();
        events.reserve(hint.events);
        coverage.clear();
        resources.clear();
        resources.reserve(hint.resources);
        ObjectBuilder {
            options,
            folder_account: folder.map(|k| k.account),
            folder_region: folder.map(|k| k.region),
            interner: Interner::reusing(symbols, OBJECT_STRINGS, OBJECT_STRINGS * 32),
            events,
            coverage,
            resources,
            resource_interner: Interner::emptied(
                resource_symbols,
                resource_hashes,
                hashbrown::HashTable::new(),
                hint.arns,
                hint.arn_bytes,
            ),
            stats: RecordStats::default(),
            last_place: None,
            recent: Recent::default(),
            last_day: None,
        }
    }
}

impl<'de> record::RecordSink<'de> for ObjectBuilder<'_> {
    #[inline(always)]
    fn record(&mut self, slot: &RecordSlot<'de>) {
        self.stats.records += 1;
        let outcome = match slot {
            RecordSlot::Record(record) => self.classify(record),
            RecordSlot::NotAnObject => Err(Skip::Bad("record is not a JSON object")),
        };
        match outcome {
            Ok(()) | Err(Skip::NotAnalysed) => {}
            Err(Skip::Bad(reason)) => *self.stats.bad_records.entry(reason).or_default() += 1,
            Err(Skip::OutOfScope) => self.stats.out_of_scope += 1,
            Err(Skip::Insight) => self.stats.insight_records += 1,
        }
    }

    fn wants_resources(&self) -> bool {
        self.options.selection.data
    }
}

impl ObjectBuilder<'_> {
    fn classify(&mut self, r: &RawRecord<'_>) -> Result<(), Skip> {
        if r.event_type.as_ref().and_then(Scalar::as_str) == Some("AwsCloudTrailInsight") {
            return Err(Skip::Insight);
        }
        let time = r
            .event_time
            .as_ref()
            .ok_or(Skip::Bad("record has no eventTime"))?
            .as_str()
            .ok_or(Skip::Bad("eventTime is not a string"))?;
        let seconds =
            record::parse_event_time_after(time, &mut self.last_day).map_err(Skip::Bad)?;
        let minute = Minute::from_unix_seconds(seconds);
        let event_source = text(&r.event_source).ok_or(Skip::Bad("record has no eventSource"))?;
        let event_name = text(&r.event_name).ok_or(Skip::Bad("record has no eventName"))?;
        let account = text(&r.recipient_account_id)
            .or(self.folder_account)
            .ok_or(Skip::Bad("record has no recipientAccountId"))?;
        let region = text(&r.aws_region)
            .or(self.folder_region)
            .ok_or(Skip::Bad("record has no awsRegion"))?;
        // The last record's account and region, already checked and interned, are almost
        // always this one's too.
        let place = self.last_place.filter(|&(a, r)| {
            same_bytes(self.interner.strings.bytes(a), account.as_bytes())
                && same_bytes(self.interner.strings.bytes(r), region.as_bytes())
        });
        if place.is_none() {
            if !crate::source::layout::is_account(account) {
                return Err(Skip::Bad("recipientAccountId is not a 12-digit account ID"));
            }
            if !crate::source::layout::is_region(region) {
                return Err(Skip::Bad("awsRegion is not a region name"));
            }
        }
        // The last record's place passed the filter (it is remembered only then).
        if !self.options.window.holds(minute)
            || (place.is_none() && !self.options.filter.wants(account, region))
        {
            return Err(Skip::OutOfScope);
        }
        let (account, region) = match place {
            Some(place) => place,
            None => (self.interner.intern(account), self.interner.intern(region)),
        };
        self.last_place = Some((account, region));
        match self
            .coverage
            .iter_mut()
            .find(|(pair, _)| *pair == (account, region))
        {
            Some((_, earliest)) => *earliest = (*earliest).min(minute),
            None => self.coverage.push(((account, region), minute)),
        }

        let error_code = text(&r.error_code);
        let selection = &self.options.selection;
        let mut event_flags = 0;
        match category(r) {
            Some(EventCategory::Management) if selection.management => {
                if r.read_only.as_ref().and_then(Scalar::as_bool) == Some(false) {
                    event_flags |= flags::WRITE;
                } else if selection.call_rate == CallRateScope::All {
                    event_flags |= flags::READ;
                }
                if error_code.is_some() {
                    event_flags |= flags::ERROR;
                }
            }
            Some(EventCategory::Data) if selection.data => {
                event_flags |= flags::DATA;
                if error_code.is_some() {
                    event_flags |= flags::ERROR;
                }
            }
            _ => {}
        }
        if event_flags == 0 {
            return Err(Skip::NotAnalysed);
        }
        let error = u64::from(event_flags & flags::ERROR != 0);
        if event_flags & flags::DATA != 0 {
            self.stats.data_events += 1;
            self.stats.data_error_events += error;
            let index = self.events.len() as u32;
            let first = self.resources.len();
            for arn in r.resources.iter().filter_map(Scalar::as_str) {
                if arn.is_empty() {
                    continue;
                }
                let sym = self.resource_interner.intern(arn);
                if !self.resources[first..].iter().any(|(_, s)| *s == sym) {
                    self.resources.push((index, sym));
                }
            }
        } else {
            self.stats.write_events += u64::from(event_flags & flags::WRITE != 0);
            self.stats.read_events += u64::from(event_flags & flags::READ != 0);
            self.stats.error_events += error;
        }
        let identity = r.user_identity.as_ref().and_then(attributed_identity);
        let event = Event {
            id: text(&r.event_id).map(event_id_bits),
            minute,
            account,
            region,
            event_source: self.interner.intern_recent(&mut self.recent, event_source),
            event_name: self.interner.intern_recent(&mut self.recent, event_name),
            error_code: self.interner.intern_opt(error_code),
            identity: identity.map_or(NO_SYM, |s| self.interner.intern_recent(&mut self.recent, s)),
            user_agent: (text(&r.user_agent))
                .map_or(NO_SYM, |s| self.interner.intern_recent(&mut self.recent, s)),
            flags: event_flags,
        };
        self.events.push(event);
        Ok(())
    }

    fn finish(self) -> DecodedObject {
        let mut coverage = self.coverage;
        coverage.sort();
        let (resource_symbols, resource_hashes) = self.resource_interner.into_parts();
        let Interner {
            strings: symbols,
            hashes,
            index,
        } = self.interner;
        OBJECT_INDEX.set((hashes, index));
        let object = DecodedObject {
            symbols,
            events: self.events,
            coverage,
            resources: self.resources,
            resource_symbols,
            resource_hashes,
            stats: self.stats,
        };
        SizeHint::set(&object);
        object
    }
}

/// Strings stored end to end in one buffer, named by their position (a `Sym`): a table of
/// many short strings in two allocations, not one per string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strings {
    text: String,
    /// Where each string ends in `text` (it starts where the one before ends).
    ends: Vec<usize>,
}

impl Strings {
    /// The bytes its buffers hold room for.
    fn capacity_bytes(&self) -> usize {
        self.text.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
    }

    /// The string named `sym`, if there is one.
    pub fn get(&self, sym: Sym) -> Option<&str> {
        let i = sym as usize;
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }

    /// The bytes of the string named `sym`, which must be in the table: the interner's key
    /// compare, without `get`'s check that the range falls on character boundaries (it does).
    fn bytes(&self, sym: Sym) -> &[u8] {
        let i = sym as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text.as_bytes()[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The strings in symbol order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.text[start..end])
    }

    fn push(&mut self, s: &str) -> Sym {
        self.text.push_str(s);
        self.ends.push(self.text.len());
        (self.ends.len() - 1) as Sym
    }
}

impl std::ops::Index<Sym> for Strings {
    type Output = str;

    fn index(&self, sym: Sym) -> &str {
        self.get(sym).expect("a symbol of this table")
    }
}

impl<S: AsRef<str>> FromIterator<S> for Strings {
    fn from_iter<I: IntoIterator<Item = S>>(strings: I) -> Strings {
        let mut table = Strings::default();
        for s in strings {
            table.push(s.as_ref());
        }
        table
    }
}

/// A string table: each distinct string stored once and named by a `Sym`. Decoding keeps one
/// per object; the aggregate stage keeps one for the run. The index holds only symbols (hashed
/// and compared through the table), so a new string costs no allocation of its own. Each
/// string's hash (`Interner::hash`) is kept beside it: the index grows without hashing every
/// string again, and an object hands its resource ARNs' hashes to the aggregator with them.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    strings: Strings,
    /// `Interner::hash` of each string, by symbol.
    hashes: Vec<u64>,
    index: hashbrown::HashTable<Sym>,
}

impl Interner {
    /// An object's table in `table`'s buffers (a spent object's), its hashes and index those
    /// the last object decoded on this thread had (they stay on the thread), with room for
    /// `strings` strings of `bytes` bytes in all.
    fn reusing(table: Strings, strings: usize, bytes: usize) -> Interner {
        // Not an index grown large by one object: emptying it costs by its size.
        const KEPT: usize = 1 << 10;
        let (hashes, mut index) = OBJECT_INDEX.take();
        if index.capacity() > KEPT {
            index = hashbrown::HashTable::new();
        }
        Interner::emptied(table, hashes, index, strings, bytes)
    }

    /// An empty table in the buffers `table`, `hashes` and `index` (whatever they held), with
    /// room for `strings` strings of `bytes` bytes in all.
    fn emptied(
        mut table: Strings,
        mut hashes: Vec<u64>,
        mut index: hashbrown::HashTable<Sym>,
        strings: usize,
        bytes: usize,
    ) -> Interner {
        table.text.clear();
        table.text.reserve(bytes);
        table.ends.clear();
        table.ends.reserve(strings);
        hashes.clear();
        hashes.reserve(strings);
        index.clear();
        index.reserve(strings, |_| 0);
        Interner {
            strings: table,
            hashes,
            index,
        }
    }

    /// The hash the table files `s` under (FxHash).
    pub fn hash(s: &str) -> u64 {
        rustc_hash::FxBuildHasher.hash_one(s)
    }

    /// Keep only the strings `keep` marks (by symbol), renumbered in their order, in place: the
    /// kept text moves toward the front of its buffer (no second copy of the table), and the
    /// index is rebuilt from the kept hashes. The table keeps room for as many strings and bytes
    /// as it held before (a table compacted as it grows, as the aggregator's is after each day,
    /// fills again to about that size: with the room kept it does so without moving its text or
    /// rebuilding its index on the way, and never holds more than at its last peak). The new
    /// symbol of each old one (`NO_SYM` for one dropped).
    pub fn retain(&mut self, keep: &[bool]) -> Vec<Sym> {
        let strings = &mut self.strings;
        let (held, held_bytes) = (strings.ends.len(), strings.text.len());
        let mut renumbered = vec![NO_SYM; strings.ends.len()];
        let (mut kept, mut written, mut start) = (0usize, 0usize, 0usize);
        // SAFETY: whole strings move to earlier positions and the text is cut after the last
        // one moved, so it stays a sequence of whole UTF-8 strings.
        let text = unsafe { strings.text.as_mut_vec() };
        for (sym, new) in renumbered.iter_mut().enumerate() {
            let end = strings.ends[sym];
            if keep.get(sym).copied().unwrap_or(false) {
                text.copy_within(start..end, written);
                written += end - start;
                strings.ends[kept] = written;
                self.hashes[kept] = self.hashes[sym];
                *new = kept as Sym;
                kept += 1;
            }
            start = end;
        }
        text.truncate(written);
        text.shrink_to(held_bytes);
        strings.ends.truncate(kept);
        strings.ends.shrink_to(held);
        self.hashes.truncate(kept);
        self.hashes.shrink_to(held);
        let hashes = &self.hashes;
        self.index = hashbrown::HashTable::with_capacity(held);
        for sym in 0..kept as Sym {
            self.index
                .insert_unique(hashes[sym as usize], sym, |&s| hashes[s as usize]);
        }
        renumbered
    }

    pub fn intern(&mut self, s: &str) -> Sym {
        self.intern_hashed(s, Self::hash(s))
    }

    /// `intern` with `s`'s `Interner::hash` already known.
    pub fn intern_hashed(&mut self, s: &str, hash: u64) -> Sym {
        let (strings, hashes) = (&self.strings, &self.hashes);
        let entry = self.index.entry(
            hash,
            |&sym| strings.bytes(sym) == s.as_bytes(),
            |&sym| hashes[sym as usize],
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => *found.get(),
            hashbrown::hash_table::Entry::Vacant(slot) => {
                let sym = self.strings.push(s);
                self.hashes.push(hash);
                slot.insert(sym);
                sym
            }
        }
    }

    /// The symbol of `s`, if it is in the table (nothing is added).
    pub fn find(&self, s: &str) -> Option<Sym> {
        self.find_hashed(s, Self::hash(s))
    }

    /// `find` with `s`'s `Interner::hash` already known.
    pub fn find_hashed(&self, s: &str, hash: u64) -> Option<Sym> {
        self.index
            .find(hash, |&sym| self.strings.bytes(sym) == s.as_bytes())
            .copied()
    }

    /// `intern`, first comparing `s` with the string in its slot of `recent`, which it then
    /// names: a value met lately (an object's few APIs, callers and user agents, in turn) costs
    /// one compare, no hash.
    pub fn intern_recent(&mut self, recent: &mut Recent, s: &str) -> Sym {
        let slot = &mut recent.slots[Recent::slot(s.as_bytes())];
        if *slot != NO_SYM && same_bytes(self.strings.bytes(*slot), s.as_bytes()) {
            return *slot;
        }
        *slot = self.intern(s);
        *slot
    }

    pub fn intern_opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NO_SYM, |s| self.intern(s))
    }

    /// The strings, indexed by symbol.
    pub fn strings(&self) -> &Strings {
        &self.strings
    }

    /// The strings and their hashes (`Interner::hash`), by symbol.
    pub fn into_parts(self) -> (Strings, Vec<u64>) {
        (self.strings, self.hashes)
    }
}

/// Symbols of one interner, each in a slot chosen by its string's length and end bytes: what
/// `Interner::intern_recent` looks at before hashing. The values of one field mostly differ in
/// length or at an end (`GetObject` and `PutObject`, user agents of different lengths), so the
/// few values of an object's fields rarely share a slot; when two do, each takes the slot in
/// turn and is hashed as without it.
#[derive(Debug, Clone)]
pub struct Recent {
    slots: [Sym; Recent::SLOTS],
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            slots: [NO_SYM; Recent::SLOTS],
        }
    }
}

impl Recent {
    const SLOTS: usize = 128;

    /// A slot by the string's length, first, middle and last bytes, mixed by a multiply.
    fn slot(s: &[u8]) -> usize {
        let byte = |at: usize| u64::from(s.get(at).copied().unwrap_or(0));
        let key = (s.len() as u64) << 24
            ^ byte(0)
            ^ byte(s.len() / 2) << 8
            ^ byte(s.len().wrapping_sub(1)) << 16;
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - Self::SLOTS.trailing_zeros())) as usize
    }
}

/// `a == b`, for the short strings compared once per record (an account ID, a region, the
/// previous record's eventSource and eventName): up to 32 bytes by two overlapping loads of
/// each, without a call to `memcmp` (2% of the decoder's time when it was one).
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    fn ends<const N: usize>(s: &[u8]) -> Option<(&[u8; N], &[u8; N])> {
        Some((s.first_chunk::<N>()?, s.last_chunk::<N>()?))
    }
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0..4 => a == b,
        4..8 => ends::<4>(a) == ends::<4>(b),
        8..16 => ends::<8>(a) == ends::<8>(b),
        16..=32 => ends::<16>(a) == ends::<16>(b),
        _ => a == b,
    }
}

/// A non-empty string field.
fn text<'r>(field: &'r Option<Scalar<'_>>) -> Option<&'r str> {
    field.as_ref()?.as_str().filter(|s| !s.is_empty())
}

/// The record's category: see the module doc.
fn category(r: &RawRecord<'_>) -> Option<EventCategory> {
    let named = text(&r.event_category);
    match r.management_event.as_ref().and_then(Scalar::as_bool) {
        Some(true) => Some(EventCategory::Management),
        Some(false) => match named {
            None | Some("Data") => Some(EventCategory::Data),
            Some(_) => None,
        },
        None => match named {
            None if is_early_data_api(text(&r.event_source), text(&r.event_name)) => {
                Some(EventCategory::Data)
            }
            Some("Management") | None => Some(EventCategory::Management),
            Some("Data") => Some(EventCategory::Data),
            Some(_) => None,
        },
    }
}

/// The APIs CloudTrail logged as data events before records said so (eventVersion < 1.06, no
/// `managementEvent` nor `eventCategory`): S3 object-level calls and Lambda `Invoke`, the only
/// data events of that time. Without this, an old trail's `GetObject`/`PutObject` stream would
/// count as management calls (a `PutObject` as a write) in the default run.
pub fn is_early_data_api(source: Option<&str>, name: Option<&str>) -> bool {
    const S3_OBJECT_APIS: &[&str] = &[
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
        "CreateMultipartUpload",
        "DeleteObject",
        "DeleteObjectTagging",
        "DeleteObjects",
        "GetObject",
        "GetObjectAcl",
        "GetObjectTagging",
        "GetObjectTorrent",
        "HeadObject",
        "ListObjectVersions",
        "ListObjects",
        "ListObjectsV2",
        "ListParts",
        "PostObject",
        "PutObject",
        "PutObjectAcl",
        "PutObjectTagging",
        "RestoreObject",
        "SelectObjectContent",
        "UploadPart",
        "UploadPartCopy",
    ];
    match (source, name) {
        (Some("s3.amazonaws.com"), Some(name)) => S3_OBJECT_APIS.contains(&name),
        (Some("lambda.amazonaws.com"), Some(name)) => name.starts_with("Invoke"),
        _ => false,
    }
}

/// The value attributed as `userIdentityArn`: the caller's ARN with an assumed-role session
/// name removed (as AWS's Insights show it); for AWS services without an ARN, `invokedBy`.
pub fn attributed_identity<'r>(identity: &'r record::Identity<'_>) -> Option<&'r str> {
    if let Some(arn) = text(&identity.arn) {
        return Some(strip_session_name(arn));
    }
    text(&identity.invoked_by)
}

/// `arn:aws:sts::ACCT:assumed-role/Role/Session` -> `arn:aws:sts::ACCT:assumed-role/Role`.
/// The mark is looked for at each `:` (an ARN has about five), found eight bytes at a time
/// (`colons`): every event's caller goes through here.
pub fn strip_session_name(arn: &str) -> &str {
    const MARK: &[u8] = b":assumed-role/";
    let b = arn.as_bytes();
    let mut at = None;
    for start in (0..b.len()).step_by(8) {
        let word = match b.get(start..start + 8) {
            Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
            None => {
                let mut tail = [0u8; 8];
                tail[..b.len() - start].copy_from_slice(&b[start..]);
                u64::from_le_bytes(tail)
            }
        };
        let mut candidates = colons(word);
        while candidates != 0 {
            let i = start + (candidates.trailing_zeros() / 8) as usize;
            if b[i..].starts_with(MARK) {
                at = Some(i);
                break;
            }
            candidates &= candidates - 1;
        }
        if at.is_some() {
            break;
        }
    }
    let Some(at) = at else {
        return arn;
    };
    let role_start = at + MARK.len();
    match b[role_start..].iter().position(|&c| c == b'/') {
        Some(slash) => &arn[..role_start + slash],
        None => arn,
    }
}

/// The high bit of each byte of `word` that may be a `:` (every `:` byte's, and perhaps some
/// bytes' after one: the caller checks each candidate).
fn colons(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = word ^ (u64::from(b':') * ONES);
    x.wrapping_sub(ONES) & !x & (0x80 * ONES)
}

/// 128 bits for de-duplication, one-to-one with the string CloudTrail wrote: a UUID in its
/// canonical form (36 characters, lower-case hex, hyphens) is its own value; any other string
/// (upper case, braces, `urn:uuid:`, no hyphens, not a UUID) is hashed (a v5 UUID of it), so two
/// spellings of one UUID are two IDs, as they are two strings.
pub fn event_id_bits(id: &str) -> u128 {
    canonical_uuid(id.as_bytes())
        .unwrap_or_else(|| uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes()).as_u128())
}

/// The bits of a canonical UUID (`8-4-4-4-12` lower-case hex digits). Every event has one, so
/// its 32 digits are read eight at a time, as the bytes of a 64-bit word (`hex_word`).
fn canonical_uuid(b: &[u8]) -> Option<u128> {
    let b: &[u8; 36] = b.try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    // The digits' bytes, eight to a word, the first digit in the word's highest byte.
    let eight = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let four = |at: usize| u64::from(u32::from_be_bytes(b[at..at + 4].try_into().expect("4")));
    let words = [
        eight(0),
        four(9) << 32 | four(14),
        four(19) << 32 | four(24),
        eight(28),
    ];
    let mut bits = 0u128;
    for word in words {
        bits = bits << 32 | u128::from(hex_word(word)?);
    }
    Some(bits)
}

/// Eight lower-case hex digits, the first in the word's highest byte, as a 32-bit number; `None`
/// if any byte is not one (`0-9`, `a-f`). Each byte is tested and converted in place: for a byte
/// below 0x80, adding `0x80 - bound` sets its high bit exactly when it is at least `bound`,
/// without a carry into the next byte.
fn hex_word(word: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x80 * ONES;
    let at_least = |bound: u64| word.wrapping_add((0x80 - bound) * ONES) & HIGH;
    let digit = at_least(b'0' as u64) & !at_least(b'9' as u64 + 1);
    let letter = at_least(b'a' as u64) & !at_least(b'f' as u64 + 1);
    if word & HIGH != 0 || digit | letter != HIGH {
        return None;
    }
    // '0'-'9' are 0x30-0x39 and 'a'-'f' 0x61-0x66: the low nibble, plus 9 for a letter.
    let mut v = (word & (0x0f * ONES)) + (letter >> 7) * 9;
    // Each byte's nibble packed next to its neighbour's, in order: 8 nibbles, 32 bits.
    v = (v | v >> 4) & 0x00ff_00ff_00ff_00ff;
    v = (v | v >> 8) & 0x0000_ffff_0000_ffff;
    v = (v | v >> 16) & 0x0000_0000_ffff_ffff;
    Some(v as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `same_bytes` answers as `==` for every length up to 40 (each of its load widths and the
    /// fallback), with a difference at every position and with a shorter string.
    #[test]
    fn same_bytes_agrees_with_eq() {
        for len in 0..40u8 {
            let a: Vec<u8> = (0..len).map(|i| b'a' + i % 26).collect();
            assert!(same_bytes(&a, &a.clone()), "{len}");
            for at in 0..a.len() {
                let mut b = a.clone();
                b[at] ^= 1;
                assert!(!same_bytes(&a, &b), "{len} at {at}");
            }
            if let Some((_, shorter)) = a.split_last() {
                assert!(!same_bytes(&a, shorter), "{len}");
            }
        }
    }

    #[test]
    fn a_string_table_holds_each_string_once_and_names_it_by_position() {
        let mut interner = Interner::default();
        let words = ["us-east-1", "", "日本", "us-east-1", "", "x"];
        let syms: Vec<Sym> = words.iter().map(|w| interner.intern(w)).collect();
        assert_eq!(syms, vec![0, 1, 2, 0, 1, 3]);
        let strings = interner.strings();
        assert_eq!(strings.len(), 4);
        assert_eq!(
            strings.iter().collect::<Vec<_>>(),
            vec!["us-east-1", "", "日本", "x"]
        );
        for (word, sym) in words.iter().zip(&syms) {
            assert_eq!(&strings[*sym], *word);
        }
        assert_eq!(strings.get(4), None);
        assert_eq!(strings.get(NO_SYM), None);
        let rebuilt: Strings = strings.iter().collect();
        assert_eq!(&rebuilt, strings);
        assert!(Strings::default().is_empty());
        // A known hash finds and interns the same; each string's hash is kept beside it.
        assert_eq!(interner.find("x"), Some(3));
        assert_eq!(
            interner.find_hashed("日本", Interner::hash("日本")),
            Some(2)
        );
        assert_eq!(interner.find("y"), None);
        assert_eq!(interner.intern_hashed("y", Interner::hash("y")), 4);
        // `intern_recent` names the same symbols as `intern`, whatever its slots hold: "ab" and
        // "ao" share a slot, as do "x" and the string of 70 "x".
        let mut recent = Recent::default();
        assert_eq!(Recent::slot(b"ab"), Recent::slot(b"ao"));
        let long = "x".repeat(70);
        assert_eq!(Recent::slot(b"x"), Recent::slot(long.as_bytes()));
        for (word, want) in [
            ("x", 3),
            ("x", 3),
            ("", 1),
            ("z", 5),
            ("us-east-1", 0),
            ("z", 5),
            ("ab", 6),
            ("ao", 7),
            ("ab", 6),
            ("ab", 6),
            (&long, 8),
            ("x", 3),
            (&long, 8),
        ] {
            assert_eq!(interner.intern_recent(&mut recent, word), want, "{word:?}");
            assert_eq!(recent.slots[Recent::slot(word.as_bytes())], want);
        }
        let (strings, hashes) = interner.into_parts();
        let want: Vec<u64> = strings.iter().map(Interner::hash).collect();
        assert_eq!(hashes, want);
    }

    /// An object's record of its account and region, checked once for a run of records that
    /// share them, is still checked when they change.
    #[test]
    fn checks_each_new_account_and_region() {
        let other = |account: &str, region: &str| {
            record(r#","readOnly":false"#)
                .replace(
                    r#""recipientAccountId":"123456789012""#,
                    &format!(r#""recipientAccountId":"{account}""#),
                )
                .replace(
                    r#""awsRegion":"us-east-1""#,
                    &format!(r#""awsRegion":"{region}""#),
                )
        };
        let records = [
            other("123456789012", "us-east-1"),
            other("123456789012", "us-east-1"),
            other("12345678901x", "us-east-1"),
            other("123456789012", "../../etc"),
            other("123456789012", "us-east-1"),
            other("210987654321", "eu-west-1"),
        ];
        let out = decode(&format!(r#"{{"Records":[{}]}}"#, records.join(","))).unwrap();
        assert_eq!(out.events.len(), 4);
        assert_eq!(out.stats.bad_total(), 2);
        let places: Vec<(&str, &str)> = out
            .events
            .iter()
            .map(|e| (&out.symbols[e.account], &out.symbols[e.region]))
            .collect();
        assert_eq!(places[3], ("210987654321", "eu-west-1"));
        assert_eq!(out.coverage.len(), 2);
    }
    use crate::model::{DayRange, parse_day};

    fn options() -> DecodeOptions {
        let day = parse_day("2019-11-07").unwrap();
        DecodeOptions {
            window: Window::for_days(DayRange::new(day, day)),
            filter: PartitionFilter::default(),
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            selection: EventSelection::default(),
        }
    }

    const KEY: &str = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json";

    fn decode(json: &str) -> Result<DecodedObject, DecodeError> {
        decode_object(json.as_bytes(), KEY, &options())
    }

    fn record(fields: &str) -> String {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!(
            r#"{{"eventTime":"2019-11-07T13:25:10Z","eventSource":"ec2.amazonaws.com",
            "eventName":"RunInstances","awsRegion":"us-east-1","eventID":"{}",
            "recipientAccountId":"123456789012","eventType":"AwsApiCall"{fields}}}"#,
            uuid::Uuid::from_u128(u128::from(id))
        )
    }

    #[test]
    fn classifies_records() {
        let cases = [
            (r#","readOnly":false,"managementEvent":true"#, flags::WRITE),
            (r#","readOnly":"false""#, flags::WRITE),
            (
                r#","readOnly":true,"errorCode":"AccessDenied""#,
                flags::ERROR,
            ),
            (
                r#","readOnly":false,"errorCode":"AccessDenied","eventCategory":"Management""#,
                flags::WRITE | flags::ERROR,
            ),
            (r#","readOnly":false,"errorCode":"""#, flags::WRITE),
            (r#","errorCode":"Throttling""#, flags::ERROR),
        ];
        for (fields, want) in cases {
            let out = decode(&format!(r#"{{"Records":[{}]}}"#, record(fields))).unwrap();
            assert_eq!(out.events.len(), 1, "{fields}");
            assert_eq!(out.events[0].flags, want, "{fields}");
        }
        let not_analysed = [
            r#","readOnly":true"#,
            r#""#,
            r#","readOnly":false,"managementEvent":false"#,
            r#","readOnly":false,"eventCategory":"Data""#,
            r#","readOnly":false,"errorMessage":"Failed authentication","managementEvent":false"#,
        ];
        for fields in not_analysed {
            let out = decode(&format!(r#"{{"Records":[{}]}}"#, record(fields))).unwrap();
            assert!(out.events.is_empty(), "{fields}");
            assert_eq!(out.stats.records, 1);
            assert_eq!(out.stats.bad_total(), 0, "{fields}");
        }
    }

    /// Records older than 1.06 carry neither `managementEvent` nor `eventCategory`; the data
    /// events of that time (S3 object-level calls, Lambda `Invoke`) are known by their API.
    #[test]
    fn early_records_without_a_category_are_data_events_by_api() {
        let data = EventSelection {
            management: true,
            data: true,
            call_rate: CallRateScope::Write,
        };
        let cases: [(&str, &str, &str, u8, u8); 5] = [
            ("s3.amazonaws.com", "PutObject", "false", 0, flags::DATA),
            ("s3.amazonaws.com", "GetObject", "true", 0, flags::DATA),
            ("lambda.amazonaws.com", "Invoke", "false", 0, flags::DATA),
            (
                "s3.amazonaws.com",
                "PutBucketPolicy",
                "false",
                flags::WRITE,
                flags::WRITE,
            ),
            (
                "lambda.amazonaws.com",
                "CreateFunction20150331",
                "false",
                flags::WRITE,
                flags::WRITE,
            ),
        ];
        for (source, name, read_only, by_default, with_data) in cases {
            let json = format!(
                r#"{{"Records":[{{"eventVersion":"1.05","eventTime":"2019-11-07T13:25:10Z",
                "eventSource":"{source}","eventName":"{name}","awsRegion":"us-east-1",
                "eventID":"{}","recipientAccountId":"123456789012","eventType":"AwsApiCall",
                "readOnly":{read_only}}}]}}"#,
                uuid::Uuid::from_u128(0x1_06)
            );
            for (selection, want) in [(EventSelection::default(), by_default), (data, with_data)] {
                let options = DecodeOptions {
                    selection,
                    ..options()
                };
                let out = decode_object(json.as_bytes(), KEY, &options).unwrap();
                let got = out.events.first().map_or(0, |e| e.flags);
                assert_eq!(got, want, "{name} with {selection:?}");
            }
        }
    }

    /// Data events and read-only management calls count only when the run selects them; a
    /// data event carries its `resources[].ARN`, each once.
    /// An object decoded into a counted object's tables (`recycle`) holds nothing of that
    /// object's: the same as decoded into new tables.
    #[test]
    fn a_recycled_object_leaves_nothing_in_the_next() {
        let options = DecodeOptions {
            selection: EventSelection {
                management: true,
                data: true,
                call_rate: CallRateScope::All,
            },
            ..options()
        };
        let decode = |records: Vec<String>| {
            let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
            decode_object(json.as_bytes(), KEY, &options).unwrap()
        };
        let spent = |n: usize| {
            let get = |i: usize| {
                format!(
                    r#","readOnly":true,"managementEvent":false,"eventCategory":"Data",
                    "userAgent":"spent-agent-{i}","errorCode":"Spent{i}",
                    "resources":[{{"ARN":"arn:aws:s3:::spent/{i}"}}]"#
                )
            };
            decode((0..n).map(|i| record(&get(i))).collect())
        };
        let next = || {
            let get = r#","readOnly":true,"managementEvent":false,"eventCategory":"Data",
                "resources":[{"ARN":"arn:aws:s3:::next/k"}]"#;
            decode(vec![record(r#","readOnly":false"#), record(get)])
        };
        let shown = |object: &DecodedObject| {
            // The IDs differ from decode to decode (`record` numbers them).
            let events: Vec<_> = object
                .events
                .iter()
                .map(|e| Event { id: None, ..*e })
                .collect();
            format!(
                "{:?}",
                DecodedObject {
                    events,
                    ..object.clone()
                }
            )
        };
        let fresh = shown(&next());
        for n in [1, 40, 300] {
            for _ in 0..100 {
                spent(n).recycle();
            }
            let reused = next();
            assert_eq!(shown(&reused), fresh, "after objects of {n} records");
            assert!(!reused.symbols.iter().any(|s| s.contains("pent")));
            assert_eq!(reused.resource_symbols.len(), 1);
            assert_eq!(reused.resource_hashes.len(), 1);
        }
    }

    #[test]
    fn classifies_data_events_and_read_only_calls_by_selection() {
        let all = EventSelection {
            management: true,
            data: true,
            call_rate: CallRateScope::All,
        };
        let data_only = EventSelection {
            management: false,
            data: true,
            call_rate: CallRateScope::Write,
        };
        let get = r#","readOnly":true,"managementEvent":false,"eventCategory":"Data",
            "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/k"},
            {"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"},{"ARN":"arn:aws:s3:::b"},{"ARN":""}]"#;
        let cases: [(&str, EventSelection, u8); 10] = [
            (get, EventSelection::default(), 0),
            (get, all, flags::DATA),
            (get, data_only, flags::DATA),
            (
                r#","managementEvent":false,"errorCode":"AccessDenied""#,
                all,
                flags::DATA | flags::ERROR,
            ),
            (
                r#","eventCategory":"Data","readOnly":false"#,
                all,
                flags::DATA,
            ),
            (
                r#","managementEvent":false,"eventCategory":"NetworkActivity""#,
                all,
                0,
            ),
            (r#","readOnly":true"#, all, flags::READ),
            (r#""#, all, flags::READ),
            (r#","readOnly":false"#, all, flags::WRITE),
            (r#","readOnly":false"#, data_only, 0),
        ];
        for (fields, selection, want) in cases {
            let options = DecodeOptions {
                selection,
                ..options()
            };
            let json = format!(r#"{{"Records":[{}]}}"#, record(fields));
            let out = decode_object(json.as_bytes(), KEY, &options).unwrap();
            let got = out.events.first().map_or(0, |e| e.flags);
            assert_eq!(got, want, "{fields} with {selection:?}");
            let arns: Vec<&str> = out
                .resources
                .iter()
                .map(|(i, sym)| {
                    assert_eq!(*i, 0);
                    &out.resource_symbols[*sym]
                })
                .collect();
            if want & flags::DATA != 0 && fields == get {
                assert_eq!(arns, ["arn:aws:s3:::b/k", "arn:aws:s3:::b"]);
                assert_eq!(out.stats.data_events, 1);
            } else {
                assert!(arns.is_empty(), "{fields}");
            }
        }
    }

    #[test]
    fn counts_bad_records_by_reason_and_keeps_the_rest() {
        let good = record(r#","readOnly":false"#);
        let json = format!(
            r#"{{"Records":[{good},{{"eventSource":"x"}},{{"eventTime":"nope"}},{{"eventTime":true}},
            {{"eventTime":"2019-11-07T13:25:10"}},3,{{"eventTime":"2019-11-07T13:25:10Z"}},
            {{"eventTime":"1970-01-01T00:00:00Z","eventSource":"a","eventName":"b"}},
            {{"eventType":"AwsCloudTrailInsight"}},
            {{"eventTime":"2019-11-07T13:25:10Z","eventSource":"a","eventName":"b","awsRegion":"../../etc"}}]}}"#
        );
        let out = decode(&json).unwrap();
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.stats.records, 10);
        assert_eq!(out.stats.out_of_scope, 1);
        assert_eq!(out.stats.insight_records, 1);
        let bad: Vec<_> = out.stats.bad_records.into_iter().collect();
        assert_eq!(
            bad,
            vec![
                ("awsRegion is not a region name", 1),
                ("eventTime has no time zone", 1),
                ("eventTime is not a string", 1),
                ("eventTime is not an RFC 3339 time", 1),
                ("record has no eventSource", 1),
                ("record has no eventTime", 1),
                ("record is not a JSON object", 1),
            ]
        );
    }

    /// A lone surrogate's escape costs neither the object nor its record: read as U+FFFD,
    /// counted; a pair is kept as the character it spells; and a file broken otherwise is
    /// still refused.
    #[test]
    fn a_lone_surrogate_is_read_as_a_replacement_character() {
        let json = format!(
            r#"{{"Records":[{},{}]}}"#,
            record(r#","readOnly":false,"userAgent":"bad \ud800 x""#),
            record(r#","readOnly":false,"userAgent":"\ud83d\ude00 \udc00\\ud800""#)
        );
        let out = decode(&json).unwrap();
        assert_eq!(out.events.len(), 2);
        assert_eq!(out.stats.lone_surrogates_replaced, 2);
        let agent = |i: usize| out.symbols.get(out.events[i].user_agent).unwrap();
        assert_eq!(agent(0), "bad \u{fffd} x");
        assert_eq!(agent(1), "\u{1f600} \u{fffd}\\ud800");
        let broken = format!(r#"{{"Records":[{}"#, record(r#","userAgent":"\ud800""#));
        assert!(matches!(decode(&broken), Err(DecodeError::Json(_))));
        let clean = decode(&format!(r#"{{"Records":[{}]}}"#, record(""))).unwrap();
        assert_eq!(clean.stats.lone_surrogates_replaced, 0);
    }

    #[test]
    fn falls_back_to_the_folder_for_account_and_region() {
        let json = r#"{"Records":[{"eventTime":"2019-11-07T13:25:10Z","eventSource":"s",
            "eventName":"n","readOnly":false}]}"#;
        let out = decode(json).unwrap();
        let e = out.events[0];
        assert_eq!(&out.symbols[e.account], "123456789012");
        assert_eq!(&out.symbols[e.region], "us-east-1");
        assert_eq!(e.id, None);
    }

    #[test]
    fn names_whole_object_failures() {
        let gz_key = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json.gz";
        let cases: [(&[u8], &str, &str); 6] = [
            (b"{\"Records\":[]}", gz_key, "not gzip"),
            (b"", gz_key, "not gzip"),
            (b"{\"Records\":[", KEY, "invalid JSON"),
            (b"\xff\xfe", KEY, "invalid JSON"),
            (b"[1,2]x", KEY, "invalid JSON"),
            (b"{\"Records\":5}", KEY, "not a CloudTrail log file"),
        ];
        for (bytes, key, reason) in cases {
            let err = decode_object(bytes, key, &options()).unwrap_err();
            assert_eq!(err.reason().as_str(), reason, "{bytes:?}: {err}");
        }
    }

    #[test]
    fn strips_assumed_role_session_names() {
        for (arn, want) in [
            (
                "arn:aws:sts::123456789012:assumed-role/CodeDeployRole1/i-0abc",
                "arn:aws:sts::123456789012:assumed-role/CodeDeployRole1",
            ),
            (
                "arn:aws-us-gov:sts::123456789012:assumed-role/Admin/jane@example.com",
                "arn:aws-us-gov:sts::123456789012:assumed-role/Admin",
            ),
            (
                "arn:aws:iam::123456789012:user/Alice",
                "arn:aws:iam::123456789012:user/Alice",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/NoSession",
                "arn:aws:sts::123456789012:assumed-role/NoSession",
            ),
            (
                "arn:aws:sts::1:assumed-role/",
                "arn:aws:sts::1:assumed-role/",
            ),
            (
                "x:assumed-role:assumed-role/R/s",
                "x:assumed-role:assumed-role/R",
            ),
            ("é:assumed-role/ロール/s", "é:assumed-role/ロール"),
            (":assumed-role", ":assumed-role"),
            ("", ""),
        ] {
            assert_eq!(strip_session_name(arn), want);
        }
        // The mark and the colons before it at every place of the 8-byte words read, beside
        // `;` (a colon's neighbour, which the word test may take for one).
        for pad in 0..20 {
            for filler in ["x", ":", ";", "é"] {
                let head = filler.repeat(pad);
                let arn = format!("{head};:assumed-role/Role/session");
                let want = format!("{head};:assumed-role/Role");
                assert_eq!(strip_session_name(&arn), want, "{arn}");
                let partial = format!("{head}:assumed-rol");
                assert_eq!(strip_session_name(&partial), partial);
            }
        }
    }

    /// A canonical UUID is its own bits (as the uuid crate reads it); anything else is hashed.
    #[test]
    fn event_ids_are_their_uuid_bits_or_a_hash() {
        for id in [
            "3c9a8f4e-1d2b-4c5a-9e7f-0a1b2c3d4e5f",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "3C9A8F4E-1D2B-4C5A-9E7F-0A1B2C3D4E5F",
            "{3c9a8f4e-1d2b-4c5a-9e7f-0a1b2c3d4e5f}",
            "3c9a8f4e1d2b4c5a9e7f0a1b2c3d4e5f",
            "3c9a8f4e-1d2b-4c5a-9e7f-0a1b2c3d4e5g",
            "3c9a8f4e-1d2b-4c5a-9e7f+0a1b2c3d4e5f",
            "3c9a8f4e11d2b-4c5a-9e7f-0a1b2c3d4e5f",
            "e2",
            "",
        ] {
            let canonical = id.len() == 36
                && id.bytes().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => b == b'-',
                    _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
                });
            let want = match uuid::Uuid::try_parse(id) {
                Ok(uuid) if canonical => uuid.as_u128(),
                _ => uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id.as_bytes()).as_u128(),
            };
            assert_eq!(event_id_bits(id), want, "{id}");
        }
    }

    /// Every byte at every position of a canonical UUID: the table-driven reader agrees with
    /// the uuid crate on what is canonical and on its bits.
    #[test]
    fn a_canonical_uuid_is_read_as_the_uuid_crate_reads_it() {
        let base = *b"0123abcd-ef45-6789-abcd-ef0123456789";
        for at in 0..base.len() {
            for byte in 0..=255u8 {
                let mut id = base;
                id[at] = byte;
                let canonical = id.iter().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => *b == b'-',
                    _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
                });
                let want = canonical.then(|| uuid::Uuid::try_parse_ascii(&id).unwrap().as_u128());
                assert_eq!(canonical_uuid(&id), want, "byte {byte:#x} at {at}");
            }
        }
        assert_eq!(canonical_uuid(&base[..35]), None);
    }
}
