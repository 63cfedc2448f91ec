//! Decoded objects -> per-minute counts, keyed by account, region, API and Insight kind.
//!
//! The `Aggregator` is fed objects in listing order (so the run is deterministic whatever the
//! fetch order), drops events whose `eventID` it has already counted, and keeps, for each
//! series and minute, the count and small tallies of the attributed values (caller ARN, user
//! agent, error code, and for data events the resource ARNs). Memory grows with series x active
//! minutes x distinct values, plus one 64-bit hash of the ID of each analysed event for
//! de-duplication (`event_id_hash`). Data
//! events name a new object in almost every call, so a minute keeps at most
//! `MAX_RESOURCES_PER_MINUTE` distinct resource ARNs (the first seen; later ones in that minute
//! are not attributed), and only the ARNs kept are interned.
//!
//! Duplicates are copies: an event whose `eventID` was already counted is dropped only when it
//! also has the same `eventTime` minute, `eventSource` and `eventName` (kept beside the ID as a
//! 16-bit minute of the day and a 32-bit fingerprint of the API: 14 bytes an ID once its day is
//! frozen, `seen`). An ID seen again with another time or API is a conflict: both events count,
//! and the conflict is counted (`AggregateStats::id_conflicts`), so a forged record cannot hide
//! a real event by borrowing its ID. IDs are compared per UTC day of the event's time; an ID
//! reused on another day is never dropped, and not reported as a conflict either. The IDs of a
//! day can be forgotten before its counts (`forget_ids_before`): the pipeline keeps them only
//! for the days around what it detects next.

use crate::decode::{DecodedObject, Interner, NO_SYM, Strings, Sym, flags};
use crate::model::{EventCategory, InsightKind, MINUTES_PER_DAY, Minute, SeriesKey};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

mod cells;
mod saved;
mod seen;
pub use cells::{Cell, Spill, Tallies, Tally};
use cells::{CellParts, DayBlock, DayBlocks, Minutes, SeriesMinutes, Stitcher};
pub use saved::{DaySegments, Reader, SAVED_LAYOUT, SavePlan, Writer};
use seen::{SeenIds, Sighting};

/// Distinct resource ARNs kept per minute of a data-event series. Five are reported; a few more
/// keep the top five right when the busiest ARNs are not the first seen in a minute.
pub const MAX_RESOURCES_PER_MINUTE: usize = 8;

/// One analysed series, its active minutes in order: borrowed from the aggregator by `view`
/// (detection reads the window in place, without a copy), owned after `finish`.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub key: SeriesKey,
    /// The first minute of history the trail has for this account and region.
    pub history_from: Minute,
    pub minutes: Cow<'a, [Minute]>,
    pub cells: Cow<'a, [Cell]>,
    /// What of the cells' tallies does not fit in them (see `Cell::tallies`).
    pub spills: Cow<'a, [Spill]>,
}

impl Series<'_> {
    /// The tallies of the cell at `at`.
    pub fn tallies(&self, at: usize) -> Tallies<'_> {
        self.cells[at].tallies(&self.spills)
    }
}

/// Everything the detect stage needs: the series and the strings their tallies point to.
#[derive(Debug, Clone, Default)]
pub struct Aggregated<'a> {
    pub symbols: Cow<'a, Strings>,
    pub series: Vec<Series<'a>>,
}

impl Aggregated<'_> {
    pub fn symbol(&self, sym: Sym) -> Option<&str> {
        self.symbols.get(sym)
    }
}

/// The series of an aggregator in `SeriesKey` order, made on demand (`Aggregator::series_view`).
pub struct SeriesView<'a> {
    strings: &'a Strings,
    coverage: &'a FxHashMap<(Sym, Sym), Minute>,
    order: Vec<(&'a SeriesId, &'a SeriesMinutes)>,
    history_floor: Minute,
}

/// The names series' keys use, each spelt out once and shared by every series made with it
/// that names it. A map of the names keys use, not a slot per string: the table also holds every
/// kept ARN of a data-event trail, millions of strings no key names. One for each thread that
/// makes series: a name shared between threads would have its count bounce between their caches
/// at every series made and dropped.
#[derive(Default)]
pub struct Names(FxHashMap<Sym, Arc<str>>);

impl<'a> SeriesView<'a> {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The strings the series' tallies point to: what an Insight's attributions are spelt with.
    pub fn strings(&self) -> &'a Strings {
        self.strings
    }

    /// The series at `range` of the order (clamped to it), made now with `names`.
    pub fn series<'v>(
        &'v self,
        range: std::ops::Range<usize>,
        names: &'v mut Names,
    ) -> impl Iterator<Item = Series<'a>> + use<'v, 'a> {
        let range = range.start.min(self.len())..range.end.min(self.len());
        let order = &self.order[range.start..];
        order[..range.len()]
            .iter()
            .enumerate()
            .map(move |(at, (id, data))| {
                // Each series' entry and packed bytes are in no order the view follows: those of
                // the series a few ahead are fetched into the cache while this one is made.
                if let Some((_, ahead)) = order.get(at + 8) {
                    cells::prefetch_entry(ahead);
                }
                if let Some((_, ahead)) = order.get(at + 4) {
                    ahead.prefetch();
                }
                self.make(id, data, names)
            })
    }

    fn make(&self, id: &SeriesId, data: &'a SeriesMinutes, names: &mut Names) -> Series<'a> {
        let (minutes, cells, spills) = data.span(i64::MIN..i64::MAX).unwrap_or_default();
        let mut name = |sym: Sym| {
            let text = || Arc::from(self.strings.get(sym).unwrap_or_default());
            names.0.entry(sym).or_insert_with(text).clone()
        };
        let first_seen = self
            .coverage
            .get(&(id.account, id.region))
            .copied()
            .unwrap_or(self.history_floor);
        Series {
            key: SeriesKey {
                account: name(id.account),
                region: name(id.region),
                event_source: name(id.event_source),
                event_name: name(id.event_name),
                kind: if id.error_code == NO_SYM {
                    InsightKind::CallRate
                } else {
                    InsightKind::ErrorRate {
                        error_code: self
                            .strings
                            .get(id.error_code)
                            .unwrap_or_default()
                            .to_owned(),
                    }
                },
                category: if id.data {
                    EventCategory::Data
                } else {
                    EventCategory::Management
                },
            },
            history_from: Minute::start_of_day(first_seen.day()).max(self.history_floor),
            minutes,
            cells,
            spills,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesId {
    account: Sym,
    region: Sym,
    event_source: Sym,
    event_name: Sym,
    /// `NO_SYM` for the call-rate series.
    error_code: Sym,
    /// A data-event series (else management).
    data: bool,
}

impl SeriesId {
    /// The symbols the key names: account, region, event source, event name, error code.
    fn symbols(&self) -> [Sym; 5] {
        [
            self.account,
            self.region,
            self.event_source,
            self.event_name,
            self.error_code,
        ]
    }
}

/// Counters the summary reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub duplicates: u64,
    /// Events whose `eventID` was already counted for an event with another time or API: both
    /// counted.
    pub id_conflicts: u64,
    /// The ID of the last such event (its UUID bits; see `decode::Event::id`).
    pub last_conflict: Option<u128>,
    pub events_without_id: u64,
    /// Events dropped because their caller is excluded.
    pub excluded: u64,
}

/// Callers whose events are not counted: exact attributed ARNs, or prefixes ending in `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityFilter {
    patterns: Vec<String>,
}

impl IdentityFilter {
    pub fn new(patterns: Vec<String>) -> IdentityFilter {
        IdentityFilter { patterns }
    }

    /// Whether no caller is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn excludes(&self, identity: &str) -> bool {
        self.patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => identity.starts_with(prefix),
            None => identity == p,
        })
    }
}

/// Tally one data event's resource ARNs (`arns`, symbols of `object`'s resource table) in its
/// cell: an ARN already kept is counted; a new one only while the minute has room, and only
/// then interned in `symbols`. `arn_map` holds the global symbol of each of the object's ARNs
/// once known (`NO_SYM` before).
fn attribute_resources(
    symbols: &mut Interner,
    tally: &mut Spill,
    arns: &[(u32, Sym)],
    object: &DecodedObject,
    arn_map: &mut [Sym],
) {
    for &(_, arn) in arns {
        let text = &object.resource_symbols[arn];
        let hash = || {
            (object.resource_hashes.get(arn as usize).copied())
                .unwrap_or_else(|| Interner::hash(text))
        };
        let room = tally.arns().len() < MAX_RESOURCES_PER_MINUTE;
        let sym = match arn_map[arn as usize] {
            NO_SYM if room => symbols.intern_hashed(text, hash()),
            NO_SYM => match symbols.find_hashed(text, hash()) {
                Some(sym) => sym,
                // Not in the table, so not kept in this full minute: not attributed.
                None => continue,
            },
            sym => sym,
        };
        arn_map[arn as usize] = sym;
        if room || tally.arns().iter().any(|(s, _)| *s == sym) {
            tally.add_arn(sym);
        }
    }
}

/// A stable 32-bit fingerprint of an API (its source's and name's FNV-1a hashes, mixed), never
/// 0. It is saved in the state, so it must not change between versions.
pub fn api_fingerprint(event_source: &str, event_name: &str) -> u32 {
    combine_api(string_hash(event_source), string_hash(event_name))
}

/// FNV-1a, 32 bits.
fn string_hash(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

fn combine_api(source: u32, name: u32) -> u32 {
    (source.rotate_left(13) ^ name)
        .wrapping_mul(0x9e37_79b1)
        .max(1)
}

/// 64 bits naming an event ID (its 128 bits from `decode::event_id_bits`, folded and mixed):
/// what the aggregator and the state keep of it, half the memory of the whole ID. Saved in the
/// state, so it must not change between versions.
///
/// Two different IDs share a hash with odds of 2^-64, and only IDs of one UTC day's table are
/// compared: n IDs a day collide with odds of about n^2 / 2^65 (4e-9 a day at 360 k IDs, an
/// organization of 60 accounts x 16 regions; 3e-4 a day at 100 M). A collision is harmless
/// unless the two events also share their minute and API (then the second is taken for a copy
/// and not counted); otherwise both count, reported as an ID conflict. The 128 bits of a
/// canonical UUID are its own, random for the v4 UUIDs CloudTrail writes, and any other string is
/// a SHA-1 (v5 UUID) of it, so the folded bits are uniform; the mix is murmur3's finaliser, a
/// bijection, so no two IDs differing in only one half share a hash.
pub fn event_id_hash(bits: u128) -> u64 {
    use crate::model::mix64;
    mix64((bits >> 64) as u64 ^ mix64(bits as u64))
}

/// What `Aggregator::add` works out for one object, by the object's own symbols: whether each
/// string is an excluded caller (empty when none is), its symbol in the aggregator's table,
/// and each resource ARN's (`NO_SYM` until known).
#[derive(Debug, Default)]
struct Scratch {
    excluded: Vec<bool>,
    map: Vec<Sym>,
    arn_map: Vec<Sym>,
}

#[derive(Debug, Default)]
pub struct Aggregator {
    symbols: Interner,
    /// `api_fingerprint`'s FNV hash of interned strings, by symbol; 0 where not computed. Only
    /// the source and name of an event are hashed: see `api_of`.
    string_hashes: Vec<u32>,
    /// The analysed events' ID hashes, with their minute (for pruning) and API (to tell copies).
    seen: SeenIds,
    series: FxHashMap<SeriesId, SeriesMinutes>,
    coverage: FxHashMap<(Sym, Sym), Minute>,
    excluded_identities: IdentityFilter,
    /// How many strings the table held after it was last compacted (`compact_symbols`).
    symbols_kept: usize,
    /// The days changed since the counts were last saved or loaded (`saved::Unsaved`).
    unsaved: saved::Unsaved,
    /// `add`'s lists for one object, kept for the next.
    scratch: Scratch,
    /// The series directory while a saved state is read (`saved::Loading`); else empty.
    loading: saved::Loading,
    /// The series counted into since their minutes were last packed (see `PACK_COUNTED`).
    counted: Vec<SeriesId>,
    pub stats: AggregateStats,
}

/// How many series a step counts into before it packs them (`Aggregator::pack_counted`). A
/// step reads its objects in listing order, partition by partition, so the series counted
/// are those of the partitions read since the last pack, and packing them early bounds the
/// unpacked minutes a step holds (about 200 bytes a series on top of their cells: on an
/// organization's trail they were the largest thing its reading held). The partition being
/// read is left unpacked: its next objects overlap the last ones in time, and a record at or
/// before its series' last packed minute unpacks that day again. A trail of few partitions
/// never reaches it.
const PACK_COUNTED: usize = 8192;

/// The unpacked minutes of series `id` to count `minute` into, made if the series is new;
/// `counted` gains `id` if they were packed.
fn counting<'a>(
    series: &'a mut FxHashMap<SeriesId, SeriesMinutes>,
    counted: &mut Vec<SeriesId>,
    id: SeriesId,
    minute: Minute,
) -> &'a mut Minutes {
    let data = series.entry(id).or_default();
    if !data.is_counted() {
        counted.push(id);
    }
    data.live_for(minute)
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    pub fn with_excluded_identities(filter: IdentityFilter) -> Aggregator {
        Aggregator {
            excluded_identities: filter,
            ..Aggregator::default()
        }
    }

    /// Count one decoded object.
    pub fn add(&mut self, object: &DecodedObject) {
        for event in &object.events {
            self.unsaved.note(event.minute);
        }
        // The object's scratch lists, in buffers kept from the last object (taken out of `self`
        // while they are filled from it, and put back at the end).
        let Scratch {
            mut excluded,
            mut map,
            mut arn_map,
        } = std::mem::take(&mut self.scratch);
        excluded.clear();
        if !self.excluded_identities.is_empty() {
            let filter = &self.excluded_identities;
            excluded.extend(object.symbols.iter().map(|s| filter.excludes(s)));
        }
        map.clear();
        map.extend(object.symbols.iter().map(|s| self.symbols.intern(s)));
        let global = |sym: Sym| {
            if sym == NO_SYM {
                NO_SYM
            } else {
                map[sym as usize]
            }
        };
        // Resource ARNs: (event index, ARN symbol of the object's own table), in event order,
        // read with a cursor as the events go by.
        let resources = object.resources.as_slice();
        let mut next_arn = 0;
        // Each of the object's ARNs' global symbol, once it is known: an ARN many of its
        // events name (their bucket) is looked up once.
        arn_map.clear();
        arn_map.resize(object.resource_symbols.len(), NO_SYM);
        for &((account, region), minute) in &object.coverage {
            let first = self
                .coverage
                .entry((global(account), global(region)))
                .or_insert(minute);
            *first = (*first).min(minute);
        }
        for (index, event) in object.events.iter().enumerate() {
            while resources
                .get(next_arn)
                .is_some_and(|(i, _)| (*i as usize) < index)
            {
                next_arn += 1;
            }
            let first_arn = next_arn;
            while resources
                .get(next_arn)
                .is_some_and(|(i, _)| *i as usize == index)
            {
                next_arn += 1;
            }
            let arns = &resources[first_arn..next_arn];
            match event.id {
                Some(id) => {
                    let api = self.api_of(global(event.event_source), global(event.event_name));
                    match self.seen.insert(event_id_hash(id), event.minute, api) {
                        Sighting::New => {}
                        Sighting::Copy => {
                            self.stats.duplicates += 1;
                            continue;
                        }
                        Sighting::Conflict => {
                            self.stats.id_conflicts += 1;
                            self.stats.last_conflict = Some(id);
                        }
                    }
                }
                None => self.stats.events_without_id += 1,
            }
            if event.identity != NO_SYM && excluded.get(event.identity as usize) == Some(&true) {
                self.stats.excluded += 1;
                continue;
            }
            let id = SeriesId {
                account: global(event.account),
                region: global(event.region),
                event_source: global(event.event_source),
                event_name: global(event.event_name),
                error_code: NO_SYM,
                data: event.flags & flags::DATA != 0,
            };
            let (identity, agent, error) = (
                global(event.identity),
                global(event.user_agent),
                global(event.error_code),
            );
            if event.flags & flags::CALL != 0 {
                let data = counting(&mut self.series, &mut self.counted, id, event.minute);
                let at = data.at(event.minute);
                data.count(at, [Some(identity), Some(agent), Some(error)]);
                if id.data {
                    let tally = data.resources(at);
                    attribute_resources(&mut self.symbols, tally, arns, object, &mut arn_map);
                }
            }
            if event.flags & flags::ERROR != 0 {
                let id = SeriesId {
                    error_code: error,
                    ..id
                };
                let data = counting(&mut self.series, &mut self.counted, id, event.minute);
                let at = data.at(event.minute);
                data.count(at, [Some(identity), Some(agent), None]);
                if id.data {
                    let tally = data.resources(at);
                    attribute_resources(&mut self.symbols, tally, arns, object, &mut arn_map);
                }
            }
        }
        if self.counted.len() >= PACK_COUNTED {
            let reading: Vec<(Sym, Sym)> = (object.coverage.iter())
                .map(|((account, region), _)| (global(*account), global(*region)))
                .collect();
            self.pack_counted(&reading);
        }
        self.scratch = Scratch {
            excluded,
            map,
            arn_map,
        };
    }

    /// Pack the minutes of the series counted into since they were last packed, but for
    /// those of the partitions (account, region) in `reading`.
    fn pack_counted(&mut self, reading: &[(Sym, Sym)]) {
        let series = &mut self.series;
        self.counted.retain(|id| {
            if reading.contains(&(id.account, id.region)) {
                return true;
            }
            if let Some(data) = series.get_mut(id) {
                data.freeze();
            }
            false
        });
    }

    /// The API fingerprint of an event's (global) source and name symbols: `api_fingerprint`,
    /// from each string's hash, computed the first time the string names an API (not for
    /// the other strings of the table, such as resource ARNs).
    fn api_of(&mut self, event_source: Sym, event_name: Sym) -> u32 {
        combine_api(
            self.string_hash_of(event_source),
            self.string_hash_of(event_name),
        )
    }

    /// `string_hash` of the string named `sym` (0 for none), kept by symbol; 0 in the list
    /// stands for not yet computed.
    fn string_hash_of(&mut self, sym: Sym) -> u32 {
        match self.string_hashes.get(sym as usize) {
            Some(&hash) if hash != 0 => hash,
            _ => self.new_string_hash(sym),
        }
    }

    /// `string_hash_of` the first time: the string is read and hashed.
    #[cold]
    fn new_string_hash(&mut self, sym: Sym) -> u32 {
        let strings = self.symbols.strings();
        let Some(text) = strings.get(sym) else {
            return 0;
        };
        if self.string_hashes.len() <= sym as usize {
            self.string_hashes.resize(strings.len(), 0);
        }
        let hash = string_hash(text);
        self.string_hashes[sym as usize] = hash;
        hash
    }

    fn intern(&mut self, s: &str) -> Sym {
        self.symbols.intern(s)
    }

    /// The series in a stable order, consuming the aggregator. See `view`.
    pub fn finish(self, history_floor: Minute) -> Aggregated<'static> {
        let view = self.view(history_floor);
        Aggregated {
            symbols: Cow::Owned(view.symbols.into_owned()),
            series: view
                .series
                .into_iter()
                .map(|s| Series {
                    minutes: Cow::Owned(s.minutes.into_owned()),
                    cells: Cow::Owned(s.cells.into_owned()),
                    spills: Cow::Owned(s.spills.into_owned()),
                    ..s
                })
                .collect(),
        }
    }

    /// The series in `SeriesKey` order, found on integers: the few distinct strings that name
    /// series (accounts, regions, APIs, error codes) are ranked once, and the series sorted by
    /// their ranks.
    fn series_in_order(&self) -> Vec<(&SeriesId, &SeriesMinutes)> {
        let strings = self.symbols.strings();
        let text = |sym: Sym| strings.get(sym).unwrap_or_default();
        let mut named: Vec<Sym> = self
            .series
            .keys()
            .flat_map(|id| {
                [
                    id.account,
                    id.region,
                    id.event_source,
                    id.event_name,
                    id.error_code,
                ]
            })
            .collect();
        named.sort_unstable();
        named.dedup();
        named.sort_by(|a, b| text(*a).cmp(text(*b)));
        let rank: FxHashMap<Sym, u32> = named
            .iter()
            .enumerate()
            .map(|(i, sym)| (*sym, i as u32))
            .collect();
        // Five symbols a series: let go before the sort, the peak of a day's detection.
        drop(named);
        let order = |id: &SeriesId| {
            let kind = match id.error_code {
                NO_SYM => (0, 0),
                code => (1, rank[&code]),
            };
            (
                rank[&id.account],
                rank[&id.region],
                rank[&id.event_source],
                rank[&id.event_name],
                kind,
                id.data,
            )
        };
        let mut ids: Vec<(&SeriesId, &SeriesMinutes)> = self.series.iter().collect();
        // Each key's ranks looked up once, not at every comparison (five hash lookups a side:
        // most of a night's sorting at 100 k series). Keys are distinct, so the order is the same.
        ids.sort_by_cached_key(|(id, _)| order(id));
        ids
    }

    /// The series in a stable order (`SeriesKey`'s), borrowing their minutes: `series_view`
    /// with every series made.
    pub fn view(&self, history_floor: Minute) -> Aggregated<'_> {
        let view = self.series_view(history_floor);
        let mut names = Names::default();
        Aggregated {
            symbols: Cow::Borrowed(view.strings),
            series: view.series(0..view.len(), &mut names).collect(),
        }
    }

    /// The series in a stable order (`SeriesKey`'s), each made (its key spelt out, its minutes
    /// borrowed) only when asked for (`SeriesView::series`): detection makes a few at a time, so
    /// the day's view never holds every series' key at once (at 100 k series, 17 MB the day's
    /// peak held). `history_floor` is the first minute the run read; a series' history starts at
    /// the later of it and the start of the first day with any record of its account and
    /// region (history is counted in whole days). The keys are sorted once, before
    /// (`series_in_order`).
    pub fn series_view(&self, history_floor: Minute) -> SeriesView<'_> {
        SeriesView {
            strings: self.symbols.strings(),
            coverage: &self.coverage,
            order: self.series_in_order(),
            history_floor,
        }
    }

    /// Forget the event IDs of the days before `minute`'s day, and keep their counts: a copy of
    /// one of their events that arrives later is counted again (how long IDs are kept is the
    /// pipeline's choice). Every day whose IDs go is saved again, without them, so a state's
    /// bytes are the same whatever runs made it (a night's save writes one day more). The IDs left
    /// are frozen (`SeenIds::freeze_all`): this is called when none is looked up for a while.
    pub fn forget_ids_before(&mut self, minute: Minute) {
        let day = minute.day_number();
        for (old, ids) in self.seen.days() {
            if old >= day {
                break;
            }
            if !ids.is_empty() {
                self.unsaved.ids_forgotten(old);
            }
        }
        self.seen.forget_before(Minute::start_of_day_number(day));
        self.seen.freeze_all();
    }

    /// Pack every series' minutes (`SeriesMinutes::freeze`): called once a step's objects are
    /// read, as nothing is counted until the next step reads.
    pub fn freeze(&mut self) {
        // Each series' tables and packed bytes are allocations of their own, in no order the
        // map follows: those of the series a few ahead are fetched into the cache while these
        // are packed (the tables' place is known only once their header is fetched).
        let mut counted: Vec<&mut SeriesMinutes> = self
            .series
            .values_mut()
            .filter(|d| d.is_counted())
            .collect();
        for at in 0..counted.len() {
            if let Some(ahead) = counted.get(at + 8) {
                ahead.prefetch_counted();
            }
            if let Some(ahead) = counted.get(at + 4) {
                ahead.prefetch_counted_tables();
            }
            counted[at].freeze();
        }
        self.counted.clear();
    }

    /// Whether every series' minutes are packed: checked by the pipeline's tests at each step.
    #[cfg(debug_assertions)]
    pub fn is_packed(&self) -> bool {
        self.series.values().all(SeriesMinutes::is_packed)
    }

    /// Forget minutes (and event IDs) before `minute`: an incremental run keeps only the window
    /// its next detection needs. What each account and region's history reaches back to is kept.
    pub fn prune_before(&mut self, minute: Minute) {
        self.unsaved.pruned(minute);
        let mut all: Vec<&mut SeriesMinutes> = self.series.values_mut().collect();
        for at in 0..all.len() {
            // What each series holds is an allocation of its own (see `freeze`).
            if let Some(ahead) = all.get(at + 8) {
                ahead.prefetch();
            }
            all[at].prune_before(minute);
        }
        self.series.retain(|_, data| !data.is_empty());
        self.seen.forget_before(minute);
        self.seen.freeze();
        let strings = self.symbols.strings().len();
        if strings > self.symbols_kept + self.symbols_kept / 4 + Self::COMPACT_SLACK {
            let used = self.symbols_in_use();
            let unused = used.iter().filter(|u| !**u).count();
            if unused >= strings / Self::COMPACT_SHARE {
                self.compact_symbols_with(used);
            } else {
                // Too few strings to free for the cost of moving every kept one and renumbering
                // every cell (a run shorter than its window prunes no minute, and its table
                // holds only strings in use): the table is taken as compacted at its size, so
                // it is looked at again only after it grows by a quarter more.
                self.symbols_kept = strings;
            }
        }
    }

    /// Strings the table may gain beyond a quarter more than it last kept before it is
    /// compacted.
    const COMPACT_SLACK: usize = 4096;

    /// A table is compacted only if at least this share of its strings (one in so many) is
    /// unused: at most an eighth of it is then held for nothing, until it grows by a quarter.
    const COMPACT_SHARE: usize = 8;

    /// `compact_symbols_with` the strings in use, however few are not.
    #[cfg(test)]
    fn compact_symbols(&mut self) {
        let used = self.symbols_in_use();
        self.compact_symbols_with(used);
    }

    /// Which strings of the table a series key, a cell or a coverage entry names, by symbol.
    fn symbols_in_use(&self) -> Vec<bool> {
        let mut used = vec![false; self.symbols.strings().len()];
        let mut mark = |sym: Sym| {
            if let Some(u) = used.get_mut(sym as usize) {
                *u = true;
            }
        };
        for (id, data) in &self.series {
            id.symbols().into_iter().for_each(&mut mark);
            data.each_symbol_unordered(&mut mark);
        }
        for &(account, region) in self.coverage.keys() {
            mark(account);
            mark(region);
        }
        used
    }

    /// Drop the strings not `used` (no series, cell or coverage entry names them any more), and
    /// renumber the rest in their order, in place (`Interner::retain`). A data-event backfill
    /// keeps up to eight ARNs a minute of every series, nearly all distinct: without this the
    /// table held every ARN of every day the run had passed, and its memory grew with the
    /// backfill's length. Nothing outside the aggregator holds its symbols across days (a day's
    /// detection reads them through `view` and resolves them to text), and no output depends on
    /// their numbers.
    fn compact_symbols_with(&mut self, used: Vec<bool>) {
        let renumbered = self.symbols.retain(&used);
        let new = |sym: Sym| match sym {
            NO_SYM => NO_SYM,
            sym => renumbered[sym as usize],
        };
        let mut hashes = Vec::with_capacity(self.symbols.strings().len());
        for (old, &keep) in used.iter().enumerate() {
            if keep {
                hashes.push(self.string_hashes.get(old).copied().unwrap_or(0));
            }
        }
        self.string_hashes = hashes;
        self.series = std::mem::take(&mut self.series)
            .into_iter()
            .map(|(id, mut data)| {
                data.renumber(new);
                let id = SeriesId {
                    account: new(id.account),
                    region: new(id.region),
                    event_source: new(id.event_source),
                    event_name: new(id.event_name),
                    error_code: new(id.error_code),
                    data: id.data,
                };
                (id, data)
            })
            .collect();
        self.coverage = std::mem::take(&mut self.coverage)
            .into_iter()
            .map(|((account, region), minute)| ((new(account), new(region)), minute))
            .collect();
        self.symbols_kept = self.symbols.strings().len();
    }

    /// Everything the aggregator holds, in an open, compact, stable form (only the strings
    /// still referenced are kept; event IDs as their hashes). Layout 1 of the state was this in
    /// JSON; it is no longer written, but is what tests compare counts by.
    pub fn to_state(&self) -> AggregateState {
        let strings = self.symbols.strings();
        let mut used: Vec<Option<Sym>> = vec![None; strings.len()];
        let mut symbols = Vec::new();
        let mut remap = |sym: Sym| -> Sym {
            if sym == NO_SYM {
                return NO_SYM;
            }
            *used[sym as usize].get_or_insert_with(|| {
                symbols.push(strings[sym].to_owned());
                (symbols.len() - 1) as Sym
            })
        };
        let mut ids: Vec<(&SeriesId, &SeriesMinutes)> = self.series.iter().collect();
        ids.sort_by_key(|(id, _)| {
            let name = |s: Sym| strings.get(s).unwrap_or_default().to_owned();
            (
                name(id.account),
                name(id.region),
                name(id.event_source),
                name(id.event_name),
                name(id.error_code),
                id.data,
            )
        });
        let mut series = Vec::new();
        for (id, data) in ids {
            let key = [
                id.account,
                id.region,
                id.event_source,
                id.event_name,
                id.error_code,
            ]
            .map(&mut remap);
            let mut resources = Vec::new();
            let data = data.whole();
            let cells = (data.minutes.iter().zip(&data.cells))
                .map(|(m, c)| {
                    let mut tally = |t: Tally| t.iter().map(|(s, n)| (remap(s), n)).collect();
                    let tallies = c.tallies(&data.spills);
                    if let Some(arns) = tallies.resources {
                        resources.push((m.0, tally(arns)));
                    }
                    CellState(
                        m.0,
                        c.count,
                        tally(tallies.identities),
                        tally(tallies.user_agents),
                        tally(tallies.error_codes),
                    )
                })
                .collect();
            series.push(SeriesState {
                key,
                cells,
                data: id.data,
                resources,
            });
        }
        let mut coverage: Vec<(Sym, Sym, i64)> = self
            .coverage
            .iter()
            .map(|((a, r), m)| (remap(*a), remap(*r), m.0))
            .collect();
        coverage.sort();
        let mut seen: Vec<(String, i64, u32)> = self
            .seen
            .iter()
            .map(|(id, m, api)| (format!("{id:016x}"), m.0, api))
            .collect();
        seen.sort();
        let seen_apis = seen.iter().map(|(_, _, api)| *api).collect();
        AggregateState {
            symbols,
            series,
            coverage,
            seen: seen.into_iter().map(|(id, m, _)| (id, m)).collect(),
            seen_apis,
        }
    }

    /// An aggregator holding a saved state.
    pub fn from_state(
        state: AggregateState,
        excluded: IdentityFilter,
    ) -> anyhow::Result<Aggregator> {
        let symbol_count = state.symbols.len();
        let check = |sym: Sym| -> anyhow::Result<Sym> {
            if sym == NO_SYM || (sym as usize) < symbol_count {
                Ok(sym)
            } else {
                anyhow::bail!(
                    "the saved state refers to string {sym}, but holds only {symbol_count}"
                )
            }
        };
        let mut aggregator = Aggregator::with_excluded_identities(excluded);
        for symbol in &state.symbols {
            aggregator.intern(symbol);
        }
        // Each series' cells by minute: a minute (or a series) listed twice is its last
        // listing, resources apart.
        let mut by_id: FxHashMap<SeriesId, BTreeMap<i64, CellParts>> = FxHashMap::default();
        for series in state.series {
            let [account, region, event_source, event_name, error_code] = series.key;
            let id = SeriesId {
                account: check(account)?,
                region: check(region)?,
                event_source: check(event_source)?,
                event_name: check(event_name)?,
                error_code: check(error_code)?,
                data: series.data,
            };
            let tally = |t: Vec<(Sym, u32)>| -> anyhow::Result<Vec<(Sym, u32)>> {
                t.into_iter().map(|(s, n)| Ok((check(s)?, n))).collect()
            };
            let cells = by_id.entry(id).or_default();
            for CellState(minute, count, identities, agents, errors) in series.cells {
                let parts = CellParts {
                    count,
                    tallies: [tally(identities)?, tally(agents)?, tally(errors)?],
                    ..CellParts::default()
                };
                cells.insert(minute, parts);
            }
            for (minute, arns) in series.resources {
                let parts = cells.entry(minute).or_default();
                parts.has_resources = true;
                parts.resources = tally(arns)?;
            }
        }
        for (id, cells) in by_id {
            let data = aggregator.series.entry(id).or_default();
            for (minute, parts) in &cells {
                data.push(Minute(*minute), parts);
            }
        }
        for (account, region, minute) in state.coverage {
            aggregator
                .coverage
                .insert((check(account)?, check(region)?), Minute(minute));
        }
        // A state saved before API fingerprints were kept has none: 0, compared by minute only.
        let apis = match state.seen_apis.len() == state.seen.len() {
            true => state.seen_apis,
            false => vec![0; state.seen.len()],
        };
        for ((id, minute), api) in state.seen.into_iter().zip(apis) {
            let malformed = || anyhow::anyhow!("the saved state holds a malformed event ID {id:?}");
            // 32 hex digits: a whole ID (layout 1), hashed; 16: its hash (`to_state`).
            let id = match id.len() {
                32 => event_id_hash(u128::from_str_radix(&id, 16).map_err(|_| malformed())?),
                16 => u64::from_str_radix(&id, 16).map_err(|_| malformed())?,
                _ => return Err(malformed()),
            };
            aggregator.seen.insert(id, Minute(minute), api);
        }
        Ok(aggregator)
    }
}

/// The saved form of an `Aggregator`: strings once, then integers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateState {
    pub symbols: Vec<String>,
    pub series: Vec<SeriesState>,
    /// (account, region, first minute with a record).
    pub coverage: Vec<(Sym, Sym, i64)>,
    /// (event ID as 32 hex digits (layout 1) or its `event_id_hash` as 16, minute).
    pub seen: Vec<(String, i64)>,
    /// The API fingerprint (`api_fingerprint`) of each of `seen`, in the same order; absent in
    /// states saved before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen_apis: Vec<u32>,
}

/// One series: `[account, region, eventSource, eventName, errorCode or NO_SYM]` and its minutes;
/// for a data-event series, `data` and the resource ARNs of its minutes (absent otherwise, so a
/// management-only state reads and writes as before).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesState {
    pub key: [Sym; 5],
    pub cells: Vec<CellState>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data: bool,
    /// (minute, resource ARNs as (symbol, count)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<(i64, Vec<(Sym, u32)>)>,
}

/// (minute, count, identities, user agents, error codes), tallies as (symbol, count).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellState(
    pub i64,
    pub u32,
    pub Vec<(Sym, u32)>,
    pub Vec<(Sym, u32)>,
    pub Vec<(Sym, u32)>,
);

#[cfg(test)]
mod tests {
    use super::*;

    use crate::decode::{DecodeOptions, decode_object};
    use crate::model::{DayRange, Window, parse_day};
    use crate::source::layout::PartitionFilter;

    fn decode(json: &str) -> DecodedObject {
        let day = parse_day("2019-11-07").unwrap();
        let options = DecodeOptions {
            window: Window::for_days(DayRange::new(day, day)),
            filter: PartitionFilter::default(),
            max_object_bytes: 16 << 20,
            selection: crate::model::EventSelection::default(),
        };
        decode_object(
            json.as_bytes(),
            "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json",
            &options,
        )
        .unwrap()
    }

    /// `agg` written in the saved form (layout 2) and read back.
    /// `agg` saved and restored through layout 1 (JSON), checked equal to it, and through
    /// layout 2 (`through_saved`) too; the JSON-restored one.
    fn through_both_layouts(agg: &Aggregator) -> Aggregator {
        let saved = serde_json::to_string(&agg.to_state()).unwrap();
        let restored = Aggregator::from_state(
            serde_json::from_str(&saved).unwrap(),
            IdentityFilter::default(),
        )
        .unwrap();
        assert_eq!(restored.to_state(), agg.to_state());
        assert_eq!(through_saved(agg).to_state(), agg.to_state());
        restored
    }

    fn through_saved(agg: &Aggregator) -> Aggregator {
        let mut out = Writer::default();
        agg.write_saved(&mut out);
        let mut input = Reader::new(&out.bytes);
        let restored =
            Aggregator::read_saved(&mut input, SAVED_LAYOUT, IdentityFilter::default()).unwrap();
        assert!(input.is_done().unwrap());
        // A restored aggregator saves to the same bytes, streamed or not.
        let mut again = Vec::new();
        let mut streamed = Writer::streaming(&mut again);
        restored.write_saved(&mut streamed);
        streamed.finish().unwrap();
        assert_eq!(again, out.bytes);
        // Read as a stream that hands out a few bytes at a time, it is the same.
        struct Dribble<'a>(&'a [u8]);
        impl std::io::Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut input = Reader::streaming(Dribble(&out.bytes), out.bytes.len() as u64);
        let dribbled =
            Aggregator::read_saved(&mut input, SAVED_LAYOUT, IdentityFilter::default()).unwrap();
        assert!(input.is_done().unwrap());
        assert_eq!(dribbled.to_state(), restored.to_state());
        restored
    }

    fn record(id: u32, minute: &str, extra: &str) -> String {
        format!(
            r#"{{"eventTime":"2019-11-07T13:{minute}:10Z","eventSource":"ec2.amazonaws.com",
            "eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"123456789012",
            "eventID":"00000000-0000-0000-0000-{id:012}","readOnly":false,"userAgent":"cli",
            "userIdentity":{{"arn":"arn:aws:sts::123456789012:assumed-role/Dev/s{id}"}}{extra}}}"#
        )
    }

    /// A step that counts into more series than `PACK_COUNTED` packs them as it goes, but
    /// for those of the partition it is reading: the counts equal one object's holding the
    /// same events, late records (before and at the last packed minute of their series)
    /// included.
    #[test]
    fn packing_as_a_step_counts_keeps_every_count() {
        let apis = PACK_COUNTED + 100;
        let event = |id: usize, account: u64, api: usize, minute: u32| {
            format!(
                r#"{{"eventTime":"2019-11-07T13:{minute:02}:10Z","eventSource":"ec2.amazonaws.com",
                "eventName":"Api{api}","awsRegion":"us-east-1","recipientAccountId":"{account}",
                "eventID":"00000000-0000-0000-0000-{id:012}","readOnly":false,"userAgent":"cli",
                "userIdentity":{{"arn":"arn:aws:sts::{account}:assumed-role/R{}/s"}}}}"#,
                id % 3
            )
        };
        let (a, b) = (123456789012, 210987654321);
        let first: Vec<String> = (0..apis).map(|api| event(api, a, api, 5)).collect();
        let mut second: Vec<String> = (0..apis).map(|api| event(apis + api, a, api, 6)).collect();
        let other = vec![event(2 * apis, b, 0, 5), event(2 * apis + 1, b, 1, 7)];
        for api in (0..apis).step_by(97) {
            second.push(event(3 * apis + api, a, api, 4));
            second.push(event(4 * apis + api, a, api, 5));
        }
        let object =
            |events: &[String]| decode(&format!(r#"{{"Records":[{}]}}"#, events.join(",")));
        let mut stepwise = Aggregator::new();
        stepwise.add(&object(&first));
        assert_eq!(
            stepwise.counted.len(),
            apis,
            "the partition read left unpacked"
        );
        stepwise.add(&object(&other));
        assert_eq!(stepwise.counted.len(), 2, "the others packed");
        let unpacked = stepwise.series.values().filter(|s| s.is_counted()).count();
        assert_eq!(unpacked, 2);
        stepwise.add(&object(&second));
        let mut at_once = Aggregator::new();
        at_once.add(&object(&[first, other, second].concat()));
        assert_eq!(stepwise.to_state(), at_once.to_state());
        assert_eq!(stepwise.to_state().series.len(), apis + 2);
        // Packed whole, a day of a series may be in two blocks (its minutes packed, then the
        // later ones): the saved state holds the same as the one-object counts'.
        stepwise.freeze();
        let mut out = Writer::default();
        stepwise.write_saved(&mut out);
        let mut input = Reader::new(&out.bytes);
        let restored =
            Aggregator::read_saved(&mut input, SAVED_LAYOUT, IdentityFilter::default()).unwrap();
        assert_eq!(restored.to_state(), at_once.to_state());
    }

    #[test]
    fn counts_per_minute_and_drops_duplicate_event_ids() {
        let a = decode(&format!(
            r#"{{"Records":[{},{},{}]}}"#,
            record(1, "25", ""),
            record(2, "25", r#","errorCode":"AccessDenied""#),
            record(3, "26", "")
        ));
        let b = decode(&format!(
            r#"{{"Records":[{},{}]}}"#,
            record(1, "25", ""),
            record(4, "25", "")
        ));
        let mut agg = Aggregator::new();
        agg.add(&a);
        agg.add(&b);
        assert_eq!(agg.stats.duplicates, 1);
        let mut filtered = Aggregator::with_excluded_identities(IdentityFilter::new(vec![
            "arn:aws:sts::123456789012:assumed-role/D*".into(),
        ]));
        filtered.add(&a);
        assert_eq!(filtered.stats.excluded, 3);
        assert!(filtered.finish(Minute(0)).series.is_empty());
        // The saved state round-trips, through JSON, to the same series.
        let restored = through_both_layouts(&agg);
        let (before, after) = (agg.view(Minute(0)), restored.view(Minute(0)));
        assert_eq!(
            format!(
                "{:?}",
                before
                    .series
                    .iter()
                    .map(|s| (&s.key, &s.minutes))
                    .collect::<Vec<_>>()
            ),
            format!(
                "{:?}",
                after
                    .series
                    .iter()
                    .map(|s| (&s.key, &s.minutes))
                    .collect::<Vec<_>>()
            )
        );
        // Pruning keeps only the later minutes.
        let mut pruned = restored;
        pruned.prune_before(
            Minute::start_of_day(parse_day("2019-11-07").unwrap()).plus(13 * 60 + 26),
        );
        let view = pruned.view(Minute(0));
        assert_eq!(view.series.len(), 1);
        assert_eq!(view.series[0].cells[0].count, 1);
        let out = agg.finish(Minute(0));
        assert_eq!(out.series.len(), 2);
        let calls = &out.series[0];
        assert_eq!(calls.key.kind, InsightKind::CallRate);
        let counts: Vec<u32> = calls.cells.iter().map(|c| c.count).collect();
        assert_eq!(counts, vec![3, 1]);
        let identities = calls.tallies(0).identities.to_vec();
        assert_eq!(identities.len(), 1);
        assert_eq!(
            out.symbol(identities[0].0),
            Some("arn:aws:sts::123456789012:assumed-role/Dev")
        );
        assert_eq!(identities[0].1, 3);
        let errors: Vec<_> = (calls.tallies(0).error_codes.iter())
            .map(|(s, n)| (out.symbol(s), n))
            .collect();
        assert_eq!(errors, vec![(None, 2), (Some("AccessDenied"), 1)]);
        let failures = &out.series[1];
        assert_eq!(
            failures.key.kind,
            InsightKind::ErrorRate {
                error_code: "AccessDenied".into()
            }
        );
        assert_eq!(failures.cells[0].count, 1);
        assert_eq!(
            failures.history_from,
            Minute::start_of_day(parse_day("2019-11-07").unwrap())
        );
    }

    /// The view lists the series in `SeriesKey` order, whatever order their strings were first
    /// seen in (ranks, not symbols, decide).
    #[test]
    fn the_view_is_in_series_key_order() {
        let mut records = Vec::new();
        let names = ["Zeta", "alpha", "Alpha", "CreateTags", "Beta"];
        let errors = [
            "",
            r#","errorCode":"Throttling""#,
            r#","errorCode":"AccessDenied""#,
        ];
        for (i, name) in names.iter().enumerate() {
            for (j, error) in errors.iter().enumerate() {
                let id = (i * 10 + j) as u32;
                records.push(
                    record(id, "25", error)
                        .replace("RunInstances", name)
                        .replace(
                            "123456789012",
                            if j == 1 {
                                "999999999999"
                            } else {
                                "123456789012"
                            },
                        ),
                );
            }
        }
        let mut agg = Aggregator::new();
        agg.add(&decode(&format!(
            r#"{{"Records":[{}]}}"#,
            records.join(",")
        )));
        let keys: Vec<SeriesKey> = agg
            .view(Minute(0))
            .series
            .into_iter()
            .map(|s| s.key)
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys.len(), 20, "{keys:#?}");
        assert_eq!(keys, sorted);
        // Made a few at a time (as detection takes them), the series are the same, in the same
        // order; a range past the end is cut to it.
        let whole = agg.view(Minute(0)).series;
        let view = agg.series_view(Minute(0));
        for chunk in [1, 3, 7, 20, 32] {
            let mut names = Names::default();
            let made: Vec<Series> = (0..view.len().div_ceil(chunk))
                .flat_map(|at| {
                    let range = at * chunk..(at + 1) * chunk;
                    view.series(range, &mut names).collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(
                format!("{made:?}"),
                format!("{whole:?}"),
                "chunks of {chunk}"
            );
        }
        let mut names = Names::default();
        assert_eq!(view.series(19..40, &mut names).count(), 1);
        assert_eq!(view.series(25..40, &mut names).count(), 0);
    }

    /// A record that borrows a counted event's ID with another time or API is not a copy: both
    /// count and the conflict is counted; a true copy is dropped. IDs compare as the strings
    /// CloudTrail wrote: other spellings of one UUID are other IDs.
    #[test]
    fn duplicates_are_copies_and_an_id_reused_for_other_content_counts_both() {
        let with_id = |id: &str, minute: &str, name: &str| {
            record(0, minute, "")
                .replace("00000000-0000-0000-0000-000000000000", id)
                .replace("RunInstances", name)
        };
        let real = "3c9a8f4e-1d2b-4c5a-9e7f-0a1b2c3d4e5f";
        // (case, second record, counted events, duplicates, conflicts)
        let cases = [
            ("a copy", with_id(real, "25", "RunInstances"), 1, 1, 0),
            (
                "another minute",
                with_id(real, "26", "RunInstances"),
                2,
                0,
                1,
            ),
            (
                "another API",
                with_id(real, "25", "TerminateInstances"),
                2,
                0,
                1,
            ),
            (
                "upper case",
                with_id(&real.to_uppercase(), "25", "RunInstances"),
                2,
                0,
                0,
            ),
            (
                "braces",
                with_id(&format!("{{{real}}}"), "25", "RunInstances"),
                2,
                0,
                0,
            ),
            (
                "urn",
                with_id(&format!("urn:uuid:{real}"), "25", "RunInstances"),
                2,
                0,
                0,
            ),
            (
                "no hyphens",
                with_id(&real.replace('-', ""), "25", "RunInstances"),
                2,
                0,
                0,
            ),
        ];
        for (case, second, counted, duplicates, conflicts) in cases {
            let mut agg = Aggregator::new();
            agg.add(&decode(&format!(
                r#"{{"Records":[{}]}}"#,
                with_id(real, "25", "RunInstances")
            )));
            agg.add(&decode(&format!(r#"{{"Records":[{second}]}}"#)));
            let total: u32 = agg
                .view(Minute(0))
                .series
                .iter()
                .flat_map(|s| s.cells.iter().map(|c| c.count))
                .sum();
            assert_eq!(total, counted, "{case}");
            assert_eq!(agg.stats.duplicates, duplicates, "{case}");
            assert_eq!(agg.stats.id_conflicts, conflicts, "{case}");
            // The fingerprints survive a saved state: the same second record finds the same.
            let restores = [
                Aggregator::from_state(agg.to_state(), IdentityFilter::default()).unwrap(),
                through_saved(&agg),
            ];
            for mut restored in restores {
                restored.add(&decode(&format!(r#"{{"Records":[{second}]}}"#)));
                assert_eq!(
                    restored.stats.duplicates + restored.stats.id_conflicts,
                    1,
                    "{case}: after a restore"
                );
            }
        }
        // An ID's entry in a fresh table: its hash and what is kept beside it, 16 bytes.
        assert_eq!(std::mem::size_of::<(u64, seen::SeenEvent)>(), 16);
        assert_eq!(
            api_fingerprint("ec2.amazonaws.com", "RunInstances"),
            combine_api(
                string_hash("ec2.amazonaws.com"),
                string_hash("RunInstances")
            )
        );
    }

    /// Options that analyse data events too, for the records of `day`.
    fn data_event_options(day: chrono::NaiveDate) -> DecodeOptions {
        DecodeOptions {
            window: Window::for_days(DayRange::new(day, day)),
            filter: PartitionFilter::default(),
            max_object_bytes: 1 << 20,
            selection: crate::model::EventSelection {
                data: true,
                ..Default::default()
            },
        }
    }

    /// Pruning drops the strings only pruned minutes named (every caller and ARN of a data
    /// series' minute is its own here): the table keeps what the window names, renumbered, and
    /// the counts read the same.
    #[test]
    fn compacting_keeps_only_the_strings_the_window_names() {
        let day = parse_day("2019-11-07").unwrap();
        let options = data_event_options(day);
        let data = r#","managementEvent":false,"eventCategory":"Data","errorCode":"E","resources":[{"ARN":"arn:aws:s3:::b/MINUTE/ID"}]"#;
        let records: Vec<String> = (0..60)
            .flat_map(|minute| (0..3).map(move |n| (minute, minute * 3 + n)))
            .map(|(minute, id)| {
                let extra = data
                    .replace("MINUTE", &minute.to_string())
                    .replace("ID", &id.to_string());
                record(id, &format!("{minute:02}"), &extra)
            })
            .collect();
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let key = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json";
        let object = decode_object(json.as_bytes(), key, &options).unwrap();
        let mut agg = Aggregator::new();
        agg.add(&object);
        let cut =
            Minute::from_unix_seconds(day.and_hms_opt(13, 50, 0).unwrap().and_utc().timestamp());
        let strings_before = agg.symbols.strings().len();
        agg.prune_before(cut);
        let pruned = agg.to_state();
        assert_eq!(
            agg.symbols.strings().len(),
            strings_before,
            "too few to compact yet"
        );
        agg.compact_symbols();
        assert_eq!(agg.to_state(), pruned, "the same counts, tallies and names");
        // The 30 ARNs of the 10 minutes kept; the account, region, API, error code, caller (its
        // session name stripped) and user agent.
        let kept: Vec<&str> = agg.symbols.strings().iter().collect();
        assert_eq!(kept.len(), 10 * 3 + 7, "{kept:?}");
        let minute_of = |arn: &str| arn.split('/').nth(1).map(|m| m.parse::<u32>().unwrap());
        assert!(
            kept.iter()
                .filter_map(|s| s.strip_prefix("arn:aws:s3:::"))
                .all(|arn| minute_of(arn) >= Some(50)),
            "{kept:?}"
        );
        assert_eq!(agg.symbols_kept, kept.len());
        // New strings after compacting are numbered after the kept ones, and counted as before.
        agg.add(&object);
        assert_eq!(agg.symbols.strings().len(), strings_before);
    }

    /// Pruning compacts the string table only when enough of it is unused: a prune that drops
    /// no minute (a run shorter than its window) leaves the table as it is, and takes it as
    /// compacted at its size; a prune that frees most of it compacts it. The counts read the
    /// same either way.
    #[test]
    fn pruning_compacts_the_strings_only_when_enough_are_unused() {
        let day = parse_day("2019-11-07").unwrap();
        let options = DecodeOptions {
            max_object_bytes: 16 << 20,
            ..data_event_options(day)
        };
        // Each minute of an hour, ten error codes, eight distinct ARNs each: 4,800 ARNs, every
        // one kept by its error-rate series' minute, more than the table's slack.
        let mut records = Vec::new();
        for minute in 0..60 {
            for code in 0..10 {
                for n in 0..8 {
                    let id = records.len() as u32;
                    let extra = format!(
                        r#","managementEvent":false,"eventCategory":"Data","errorCode":"E{code}","resources":[{{"ARN":"arn:aws:s3:::b/{minute}/{code}/{n}"}}]"#
                    );
                    records.push(record(id, &format!("{minute:02}"), &extra));
                }
            }
        }
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let key = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json";
        let object = decode_object(json.as_bytes(), key, &options).unwrap();
        let at = |hh_mm: (u32, u32)| {
            let time = day.and_hms_opt(hh_mm.0, hh_mm.1, 0).unwrap();
            Minute::from_unix_seconds(time.and_utc().timestamp())
        };
        // Account, region, event source and name, ten error codes, the caller, the user agent.
        let others = 16;
        // (cut, the strings the table holds after). Pruning 5 minutes of the 60 frees 400 of
        // the 4,816 strings, fewer than an eighth: kept; 8 minutes free 640: compacted.
        let cases = [
            (at((12, 0)), 60 * 10 * 8 + others),
            (at((13, 0)), 60 * 10 * 8 + others),
            (at((13, 5)), 60 * 10 * 8 + others),
            (at((13, 8)), 52 * 10 * 8 + others),
            (at((13, 50)), 10 * 10 * 8 + others),
        ];
        for (cut, held) in cases {
            let mut agg = Aggregator::new();
            agg.add(&object);
            let before = agg.symbols.strings().len();
            assert_eq!(before, 60 * 10 * 8 + others);
            agg.prune_before(cut);
            assert_eq!(agg.symbols.strings().len(), held, "cut {cut:?}");
            assert_eq!(agg.symbols_kept, held, "cut {cut:?}");
            // The same counts as a table compacted whatever it held.
            let mut compacted = Aggregator::new();
            compacted.add(&object);
            compacted.prune_before(cut);
            compacted.compact_symbols();
            assert_eq!(agg.to_state(), compacted.to_state(), "cut {cut:?}");
            // And the same saved bytes: only the strings in use are written.
            let saved = |agg: &Aggregator| {
                let mut out = Writer::default();
                agg.write_saved(&mut out);
                out.bytes
            };
            assert_eq!(saved(&agg), saved(&compacted), "cut {cut:?}");
        }
    }

    /// Data events count in series of their own, with their resource ARNs (at most
    /// `MAX_RESOURCES_PER_MINUTE` distinct ones a minute, an ARN already kept still counted),
    /// and survive the saved state.
    #[test]
    fn data_events_keep_their_own_series_and_a_bounded_resource_tally() {
        let day = parse_day("2019-11-07").unwrap();
        let options = data_event_options(day);
        let get = |id: u32, object: u32| {
            record(
                id,
                "25",
                &format!(
                    r#","managementEvent":false,"eventCategory":"Data","resources":[
                    {{"ARN":"arn:aws:s3:::b/o{object}"}},{{"ARN":"arn:aws:s3:::b"}}]"#
                ),
            )
        };
        let records: Vec<String> = (0..20)
            .map(|i| get(i, i))
            .chain([record(100, "25", "")])
            .collect();
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let object = decode_object(
            json.as_bytes(),
            "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json",
            &options,
        )
        .unwrap();
        let mut agg = Aggregator::new();
        agg.add(&object);
        // An object without its ARNs' hashes (built by hand) is counted the same.
        let mut unhashed = Aggregator::new();
        unhashed.add(&DecodedObject {
            resource_hashes: Vec::new(),
            ..object.clone()
        });
        assert_eq!(unhashed.to_state(), agg.to_state());
        let restored = through_both_layouts(&agg);
        let out = restored.finish(Minute(0));
        let categories: Vec<EventCategory> = out.series.iter().map(|s| s.key.category).collect();
        assert_eq!(
            categories,
            [EventCategory::Management, EventCategory::Data],
            "one management write, twenty data reads of the same API"
        );
        assert_eq!(out.series[1].cells[0].count, 20);
        let tally = out.series[1].tallies(0).resources.unwrap().to_vec();
        assert_eq!(tally.len(), MAX_RESOURCES_PER_MINUTE);
        let counted: Vec<(&str, u32)> = tally
            .iter()
            .map(|(s, n)| (out.symbol(*s).unwrap(), *n))
            .collect();
        assert_eq!(counted[0], ("arn:aws:s3:::b/o0", 1));
        assert_eq!(counted[1], ("arn:aws:s3:::b", 20), "{counted:?}");
        assert!(out.series[0].tallies(0).resources.is_none());
        // Only the ARNs kept were interned.
        assert!(out.symbols.iter().all(|s| s != "arn:aws:s3:::b/o19"));
    }

    /// Every shape a cell's tallies take survives the saved state (both layouts, the same bytes
    /// again), pruning (which frees the spills of the minutes it drops) and compaction: one value
    /// counted as often as its cell (held in the cell), one counted less often, several, a
    /// value repeated, resource tallies (an empty one too) and a minute with resources only.
    #[test]
    fn cells_of_every_shape_survive_the_saved_state_pruning_and_compaction() {
        let m = 26_206_560;
        let names = [
            "123456789012",
            "us-east-1",
            "s3.amazonaws.com",
            "GetObject",
            "arn:a",
        ];
        let names = names
            .iter()
            .chain(&["arn:b", "cli", "arn:aws:s3:::b", "AccessDenied"]);
        type Tallied = Vec<(Sym, u32)>;
        // (minute offset, count, identities, user agents, error codes), as `CellState`.
        let cells: [(i64, u32, Tallied, Tallied, Tallied); 6] = [
            (0, 3, vec![(4, 3)], vec![(6, 3)], vec![(NO_SYM, 3)]),
            (1, 3, vec![(4, 2)], vec![(6, 3)], vec![]),
            (
                2,
                5,
                vec![(4, 2), (5, 3)],
                vec![(6, 5)],
                vec![(NO_SYM, 4), (8, 1)],
            ),
            (
                3,
                2,
                vec![(4, 1), (4, 1)],
                vec![(NO_SYM, 2)],
                vec![(NO_SYM, 2)],
            ),
            (4, 0, vec![], vec![], vec![]),
            (5, 1, vec![(NO_SYM, 1)], vec![(6, 1)], vec![(8, 1)]),
        ];
        let series = |data: bool| SeriesState {
            key: [0, 1, 2, 3, NO_SYM],
            cells: (cells.iter().cloned())
                .map(|(at, n, ids, agents, errors)| CellState(m + at, n, ids, agents, errors))
                .collect(),
            data,
            resources: match data {
                true => vec![
                    (m, vec![(7, 3)]),
                    (m + 1, vec![]),
                    (m + 4, vec![(7, 1), (6, 2)]),
                ],
                false => Vec::new(),
            },
        };
        let state = AggregateState {
            symbols: names.map(|s| s.to_string()).collect(),
            series: vec![series(false), series(true)],
            coverage: vec![(0, 1, m)],
            ..AggregateState::default()
        };
        let agg = Aggregator::from_state(state.clone(), IdentityFilter::default()).unwrap();
        let restored = through_both_layouts(&agg);
        // Each tally and resource list reads back as the state spelled it.
        let spelled = |agg: &Aggregator| {
            let view = agg.view(Minute(0));
            let text = |t: Tally| -> Vec<(Option<String>, u32)> {
                t.iter()
                    .map(|(s, n)| (view.symbol(s).map(str::to_owned), n))
                    .collect()
            };
            (view.series.iter())
                .flat_map(|s| (0..s.cells.len()).map(move |i| (s, i)))
                .map(|(s, i)| {
                    let t = s.tallies(i);
                    let tallies = [t.identities, t.user_agents, t.error_codes];
                    (
                        s.minutes[i].0 - m,
                        s.cells[i].count,
                        tallies.map(text),
                        t.resources.map(text),
                    )
                })
                .collect::<Vec<_>>()
        };
        let text = |t: &Tallied| -> Vec<(Option<String>, u32)> {
            t.iter()
                .map(|(s, n)| (state.symbols.get(*s as usize).cloned(), *n))
                .collect()
        };
        let mut expected = Vec::new();
        for data in [false, true] {
            for (at, n, ids, agents, errors) in &cells {
                let resources = (state.series[1].resources.iter())
                    .find(|(minute, _)| data && *minute == m + at)
                    .map(|(_, arns)| text(arns));
                expected.push((*at, *n, [text(ids), text(agents), text(errors)], resources));
            }
        }
        assert_eq!(spelled(&agg), expected);
        assert_eq!(spelled(&restored), expected);
        // Only the cells that need one have a spill: the management series' three whose tallies
        // do not fit, and the data series' cells with resources.
        let spills = |agg: &Aggregator| {
            let mut by_kind: Vec<(bool, usize)> = (agg.series.iter())
                .map(|(id, d)| (id.data, d.whole().spills.len()))
                .collect();
            by_kind.sort();
            by_kind
        };
        assert_eq!(spills(&agg), [(false, 3), (true, 5)]);
        // Pruning the first three minutes frees their spills; compaction keeps the rest's names.
        let mut pruned = restored;
        pruned.prune_before(Minute(m + 3));
        assert_eq!(spills(&pruned), [(false, 1), (true, 2)]);
        let before = spelled(&pruned);
        pruned.compact_symbols();
        assert_eq!(spelled(&pruned), before);
        assert!(
            pruned.symbols.find("arn:b").is_none(),
            "named only by pruned minutes"
        );
        through_both_layouts(&pruned);
        // Packed, the same cells read back, save, prune and compact the same.
        let mut packed = through_both_layouts(&agg);
        packed.freeze();
        assert_eq!(spelled(&packed), expected);
        assert_eq!(packed.to_state(), agg.to_state());
        packed.prune_before(Minute(m + 3));
        assert_eq!(spelled(&packed), before);
        packed.compact_symbols();
        assert_eq!(spelled(&packed), before);
        assert_eq!(through_both_layouts(&packed).to_state(), packed.to_state());
    }

    /// An event ID is forgotten with its minute: a copy seen after the prune is counted again
    /// (and remembered again), a later ID stays remembered, and a forgotten ID is not saved.
    /// Pruning at a minute inside a day keeps that day's later IDs.
    #[test]
    fn forgotten_event_ids_count_again_and_are_not_saved() {
        let early = decode(&format!(r#"{{"Records":[{}]}}"#, record(1, "25", "")));
        let late = decode(&format!(r#"{{"Records":[{}]}}"#, record(2, "40", "")));
        let day = Minute::start_of_day(parse_day("2019-11-07").unwrap());
        for (cut, forgotten) in [
            (day.plus(13 * 60 + 30), true),
            (day, false),
            (day.plus(-MINUTES_PER_DAY), false),
            (day.plus(MINUTES_PER_DAY), true),
        ] {
            let mut agg = Aggregator::new();
            agg.add(&early);
            agg.add(&late);
            agg.prune_before(cut);
            let saved: Vec<String> = agg.to_state().seen.into_iter().map(|(id, _)| id).collect();
            let kept = |id: u128| saved.contains(&format!("{:016x}", event_id_hash(id)));
            assert_eq!(kept(1), !forgotten, "cut {cut:?}");
            assert_eq!(kept(2), cut <= day.plus(13 * 60 + 40), "cut {cut:?}");
            agg.add(&early);
            agg.add(&early);
            let copies = if forgotten { 1 } else { 2 };
            assert_eq!(agg.stats.duplicates, copies, "cut {cut:?}");
        }
    }
}
