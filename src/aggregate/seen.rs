//! The analysed events' IDs: one table per UTC day of the events' time, to tell a copy of an
//! event (the same event delivered by an organization trail and an account trail, or a file
//! delivered twice) from a new one.
//!
//! A day's table is a frozen part, held as the state's day segment stores it (`PackedIds`:
//! about 9.7 bytes an ID at 360 k IDs a day), and a fresh hash map of the IDs added since it was
//! last frozen. The fresh map holds at most `FRESH_MOST` IDs: when full, its IDs are merged into
//! the frozen part in place and it starts again, so a day being read costs about 1 MB of hash
//! table on top of its packed IDs, where a table of the whole day's IDs took 19-39 bytes each.
//! After each day the aggregator freezes the tables whole: a saved day is loaded and saved as
//! copies of its columns.

mod packed;

pub(super) use packed::{PackedIds, Parts, api_width};

use super::{MINUTES_PER_DAY, Minute};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::collections::hash_map::Entry;

/// What is kept beside a counted event's ID hash: enough to tell a copy from a different event
/// with the same ID.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SeenEvent {
    /// The event's minute within its UTC day (the table is the day's).
    pub minute_of_day: u16,
    /// `api_fingerprint` of its `eventSource` and `eventName`; 0 when not known (an ID restored
    /// from a state saved before fingerprints were kept: only its minute is compared).
    pub api: u32,
}

impl SeenEvent {
    /// What finding `self` again means for an event at the same ID, minute and API as `other`.
    fn sighting(self, other: SeenEvent) -> Sighting {
        let same_api = self.api == other.api || self.api == 0 || other.api == 0;
        if self.minute_of_day == other.minute_of_day && same_api {
            Sighting::Copy
        } else {
            Sighting::Conflict
        }
    }
}

/// What `SeenIds::insert` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sighting {
    New,
    /// The same ID, minute and API: a copy, dropped.
    Copy,
    /// The same ID with another minute or API: counted, and reported.
    Conflict,
}

/// The most IDs a day's fresh map holds before they are merged into its frozen part: 7/8 of
/// 2^16, the most a hash table of 2^16 slots (about 1.1 MB) holds. A merge moves the day's
/// frozen IDs once (a 360 k-event day is merged six times), and each lookup searches the
/// frozen part before the map (its group of a few IDs: `PackedIds::find`).
const FRESH_MOST: usize = 57_344;

/// One day's IDs: the frozen part (`PackedIds`) and the IDs added since it was frozen.
#[derive(Debug, Default)]
pub(super) struct DayIds {
    frozen: PackedIds,
    fresh: FxHashMap<u64, SeenEvent>,
}

impl DayIds {
    /// A day's table holding `ids`, which must be ascending and distinct, frozen.
    pub fn frozen(ids: Vec<u64>, minutes: Vec<u16>, apis: Vec<u32>) -> DayIds {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(ids.len() == minutes.len() && ids.len() == apis.len());
        let seen = (ids.iter().zip(minutes.iter().zip(&apis))).map(|(id, (minute, api))| {
            let seen = SeenEvent {
                minute_of_day: *minute,
                api: *api,
            };
            (*id, seen)
        });
        DayIds::packed(PackedIds::from_ascending(ids.len(), seen))
    }

    /// A day's table holding `frozen`.
    pub fn packed(frozen: PackedIds) -> DayIds {
        DayIds {
            frozen,
            fresh: FxHashMap::default(),
        }
    }

    /// A day's table holding `ids` in any order, frozen; of two equal IDs the first is kept.
    pub fn from_unsorted(mut ids: Vec<(u64, SeenEvent)>) -> DayIds {
        ids.sort_by_key(|(id, _)| *id);
        ids.dedup_by_key(|(id, _)| *id);
        DayIds::packed(PackedIds::from_ascending(ids.len(), ids.iter().copied()))
    }

    pub fn len(&self) -> usize {
        self.frozen.len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remember `id` seen as `seen` unless the day already holds it.
    fn insert(&mut self, id: u64, seen: SeenEvent) -> Sighting {
        if let Some(first) = self.frozen.find(id) {
            return first.sighting(seen);
        }
        match self.fresh.entry(id) {
            Entry::Occupied(first) => return first.get().sighting(seen),
            Entry::Vacant(new) => new.insert(seen),
        };
        if self.fresh.len() >= FRESH_MOST {
            self.merge_fresh();
        }
        Sighting::New
    }

    /// Merge the fresh IDs into the frozen part (in place: `PackedIds::merge`), keeping the
    /// fresh map's room for the next ones.
    fn merge_fresh(&mut self) {
        let fresh = self.fresh_ascending();
        self.fresh.clear();
        self.frozen.merge(&fresh);
    }

    /// The fresh IDs, ascending.
    fn fresh_ascending(&self) -> Vec<(u64, SeenEvent)> {
        let fresh = self.fresh.iter().map(|(id, seen)| (*id, *seen));
        sorted_by_hash(self.fresh.len(), fresh)
    }

    /// Every ID with what was seen of it, ascending.
    pub fn ascending(&self) -> impl Iterator<Item = (u64, SeenEvent)> + Clone + '_ {
        merge_ascending(self.frozen.ascending(), self.fresh_ascending().into_iter())
    }

    /// Every ID packed: the frozen part itself when nothing was added since the day was frozen
    /// (a saved day is written from its columns without a copy), else a packed copy.
    pub fn packed_ids(&self) -> Cow<'_, PackedIds> {
        if self.fresh.is_empty() {
            return Cow::Borrowed(&self.frozen);
        }
        Cow::Owned(PackedIds::from_ascending(self.len(), self.ascending()))
    }

    /// The API fingerprints of the IDs, each at least once, in no order.
    pub fn apis(&self) -> impl Iterator<Item = u32> + '_ {
        let fresh = self.fresh.values().map(|seen| seen.api);
        self.frozen.apis().iter().copied().chain(fresh)
    }

    /// Move the fresh IDs into the frozen part and free their hash table.
    fn freeze(&mut self) {
        if self.fresh.is_empty() {
            return;
        }
        self.merge_fresh();
        self.fresh = FxHashMap::default();
    }

    /// Keep only the IDs seen at `minute_of_day` or later.
    fn retain_from(&mut self, minute_of_day: i64) {
        self.frozen.retain_from(minute_of_day);
        self.fresh
            .retain(|_, seen| i64::from(seen.minute_of_day) >= minute_of_day);
    }
}

/// The `n` `items` sorted by their keys, which are hashes (uniform over 64 bits, as the lookups
/// also assume): one pass counts the keys by their top bits into about two per bucket, a second
/// puts each item in its bucket's part of the result, and each bucket (a few items) is sorted on
/// its own. Half the time of a comparison sort, and the items (a day's fresh IDs, read from
/// their hash map) are not copied first. Keys that are not uniform only fill some buckets more
/// (each is still sorted in `n log n`).
fn sorted_by_hash<T: Copy + Default>(
    n: usize,
    items: impl Iterator<Item = (u64, T)> + Clone,
) -> Vec<(u64, T)> {
    if n < 64 {
        let mut items: Vec<(u64, T)> = items.collect();
        items.sort_unstable_by_key(|(key, _)| *key);
        return items;
    }
    let bits = (n / 2).ilog2();
    let bucket = |key: u64| (key >> (64 - bits)) as usize;
    // starts[b]: where bucket b begins in the sorted order; then where its next item goes.
    let mut starts = vec![0usize; (1 << bits) + 1];
    for (key, _) in items.clone() {
        starts[bucket(key) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut sorted = vec![(0, T::default()); n];
    let mut next = starts.clone();
    for item in items {
        let b = bucket(item.0);
        sorted[next[b]] = item;
        next[b] += 1;
    }
    for b in starts.windows(2) {
        if b[1] - b[0] > 1 {
            sorted[b[0]..b[1]].sort_unstable_by_key(|(key, _)| *key);
        }
    }
    sorted
}

/// Two ascending sequences of distinct keys, merged ascending.
fn merge_ascending<T: Clone>(
    a: impl Iterator<Item = (u64, T)> + Clone,
    b: impl Iterator<Item = (u64, T)> + Clone,
) -> impl Iterator<Item = (u64, T)> + Clone {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some((x, _)), Some((y, _))) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// The analysed events' ID hashes with their minute and API, one table per day of the events'
/// time. A copy of an event has the event's own `eventTime`, so it is looked up in its day's
/// table only; forgetting a day drops its table whole, with no pass over the others.
#[derive(Debug, Default)]
pub(super) struct SeenIds {
    by_day: BTreeMap<i64, DayIds>,
    /// The most IDs a day's table has held.
    largest_day: usize,
}

impl SeenIds {
    /// Remember the ID hashed `id` (`event_id_hash`) at `minute` for the API fingerprinted
    /// `api`, unless it is already known.
    pub fn insert(&mut self, id: u64, minute: Minute, api: u32) -> Sighting {
        let day = minute.day_number();
        let seen = SeenEvent {
            minute_of_day: minute.0.rem_euclid(MINUTES_PER_DAY) as u16,
            api,
        };
        let ids = match self.by_day.entry(day) {
            btree_map::Entry::Occupied(ids) => ids.into_mut(),
            // A new day's map starts at the size it will reach, from the largest day's (the
            // day before, in a backfill), instead of growing to it.
            btree_map::Entry::Vacant(slot) => slot.insert(DayIds {
                fresh: FxHashMap::with_capacity_and_hasher(
                    self.largest_day.min(FRESH_MOST),
                    Default::default(),
                ),
                ..DayIds::default()
            }),
        };
        let sighting = ids.insert(id, seen);
        self.largest_day = self.largest_day.max(ids.len());
        sighting
    }

    /// Forget the IDs of events before `minute`.
    pub fn forget_before(&mut self, minute: Minute) {
        let day = minute.day_number();
        self.by_day = self.by_day.split_off(&day);
        let minute_of_day = minute.0.rem_euclid(MINUTES_PER_DAY);
        if let Some(first) = self.by_day.get_mut(&day)
            && minute_of_day > 0
        {
            first.retain_from(minute_of_day);
        }
    }

    /// Freeze the tables of every day but the newest (after a day is analysed: the IDs added
    /// to it after that are few). The newest is the next day's, begun by its first events, and
    /// keeps its fresh map, made at the size it will reach, for the rest of them.
    pub fn freeze(&mut self) {
        let newest = self.by_day.keys().next_back().copied();
        for (day, ids) in &mut self.by_day {
            if Some(*day) != newest {
                ids.freeze();
            }
        }
    }

    /// Freeze every day's table, the newest too: when no ID is looked up for a while (while a
    /// day is detected), the packed columns hold an ID in about 9.7 bytes where the hash table
    /// took 19-39.
    pub fn freeze_all(&mut self) {
        self.by_day.values_mut().for_each(DayIds::freeze);
    }

    /// The table of `day`, restored from a saved state; an error if the day already has one.
    pub fn restore_day(&mut self, day: i64, ids: DayIds) -> anyhow::Result<()> {
        self.largest_day = self.largest_day.max(ids.len());
        if self.by_day.insert(day, ids).is_some() {
            anyhow::bail!("the saved state holds the event IDs of a day twice");
        }
        Ok(())
    }

    /// The days' tables, oldest first.
    pub fn days(&self) -> impl Iterator<Item = (i64, &DayIds)> {
        self.by_day.iter().map(|(day, ids)| (*day, ids))
    }

    pub fn day(&self, day: i64) -> Option<&DayIds> {
        self.by_day.get(&day)
    }

    /// IDs held, over all days.
    pub fn len(&self) -> usize {
        self.by_day.values().map(DayIds::len).sum()
    }

    /// Every ID hash with its minute and API fingerprint.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Minute, u32)> + '_ {
        self.by_day.iter().flat_map(|(day, ids)| {
            ids.ascending().map(move |(id, seen)| {
                let minute = Minute(day * MINUTES_PER_DAY + i64::from(seen.minute_of_day));
                (id, minute, seen.api)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(minute_of_day: u16, api: u32) -> SeenEvent {
        SeenEvent { minute_of_day, api }
    }

    fn frozen_ids(day: &DayIds) -> Vec<u64> {
        day.frozen.ascending().map(|(id, _)| id).collect()
    }

    /// Pseudo-random 64-bit values (xorshift) from `seed`: hashes, as IDs are.
    pub(super) fn hashes(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// Uniform keys, keys sharing their top bits, and the few that take the short way: the
    /// same order as a comparison sort, each item with its own value.
    #[test]
    fn sorted_by_hash_sorts_any_keys() {
        let mut next = hashes(0x2545_f491_4f6c_dd1d);
        let uniform: Vec<u64> = (0..10_000).map(|_| next()).collect();
        let clustered: Vec<u64> = (0..5_000).map(|_| next() >> 20).collect();
        let cases: [(&str, Vec<u64>); 4] = [
            ("uniform", uniform),
            ("in one bucket", clustered),
            ("few", vec![5, 3, u64::MAX, 0, 9]),
            ("none", vec![]),
        ];
        for (case, keys) in cases {
            let items: Vec<(u64, u64)> = keys.iter().map(|k| (*k, k.wrapping_mul(3))).collect();
            let mut want = items.clone();
            want.sort_unstable();
            assert_eq!(
                sorted_by_hash(items.len(), items.into_iter()),
                want,
                "{case}"
            );
        }
    }

    #[test]
    fn a_frozen_day_tells_copies_and_conflicts_as_a_fresh_one_does() {
        let events = [
            (7u64, seen(10, 1)),
            (3, seen(20, 2)),
            (99, seen(30, 0)),
            (50, seen(40, 3)),
        ];
        let again = [
            (7, seen(10, 1), Sighting::Copy),
            (7, seen(11, 1), Sighting::Conflict),
            (3, seen(20, 9), Sighting::Conflict),
            (99, seen(30, 5), Sighting::Copy),
            (50, seen(40, 0), Sighting::Copy),
            (51, seen(40, 3), Sighting::New),
        ];
        for freeze in [false, true] {
            let mut day = DayIds::default();
            for (id, s) in events {
                assert_eq!(day.insert(id, s), Sighting::New);
            }
            if freeze {
                day.freeze();
                assert!(day.fresh.is_empty());
                assert_eq!(frozen_ids(&day), vec![3, 7, 50, 99]);
            }
            for (id, s, want) in again {
                assert_eq!(day.insert(id, s), want, "freeze {freeze}: {id}");
            }
            // 51 went to the fresh part; the whole day still reads back ascending.
            let all: Vec<u64> = day.ascending().map(|(id, _)| id).collect();
            assert_eq!(all, vec![3, 7, 50, 51, 99], "freeze {freeze}");
            assert_eq!(day.len(), 5);
        }
    }

    /// A day of more IDs than the fresh map holds: merged in place each time it fills, every
    /// ID still found, with its own minute and API, and the day reads back ascending.
    #[test]
    fn a_day_larger_than_the_fresh_map_is_merged_as_it_fills() {
        let mut next = hashes(0x9e37_79b9_7f4a_7c15);
        let n = 3 * FRESH_MOST + 123;
        let events: Vec<(u64, SeenEvent)> = (0..n)
            .map(|i| (next(), seen((i % 1440) as u16, (i % 7) as u32 + 1)))
            .collect();
        let mut day = DayIds::default();
        for (at, (id, s)) in events.iter().enumerate() {
            assert_eq!(day.insert(*id, *s), Sighting::New);
            assert!(day.fresh.len() < FRESH_MOST);
            assert_eq!(day.len(), at + 1);
        }
        assert_eq!(day.frozen.len(), 3 * FRESH_MOST, "merged three times");
        assert_eq!(day.fresh.len(), 123);
        for (id, s) in &events {
            assert_eq!(day.insert(*id, *s), Sighting::Copy);
            let moved = seen((s.minute_of_day + 1) % 1440, s.api);
            assert_eq!(day.insert(*id, moved), Sighting::Conflict);
        }
        let mut want = events.clone();
        want.sort_by_key(|(id, _)| *id);
        let got: Vec<(u64, SeenEvent)> = day.ascending().collect();
        assert_eq!(got, want);
        day.freeze();
        assert!(day.fresh.is_empty() && day.fresh.capacity() == 0);
        assert_eq!(day.ascending().collect::<Vec<_>>(), want);
    }

    #[test]
    fn forgetting_part_of_a_day_keeps_its_later_ids_in_both_parts() {
        let mut ids = SeenIds::default();
        let day = 20_000;
        let at = |minute: i64| Minute(day * MINUTES_PER_DAY + minute);
        ids.insert(1, at(5), 1);
        ids.insert(2, at(50), 1);
        ids.insert(5, at(MINUTES_PER_DAY + 1), 1);
        ids.freeze();
        assert_eq!(
            frozen_ids(&ids.by_day[&day]),
            vec![1, 2],
            "the older day frozen"
        );
        assert_eq!(
            ids.by_day[&(day + 1)].fresh.len(),
            1,
            "the newest day left fresh"
        );
        ids.insert(3, at(6), 1);
        ids.insert(4, at(60), 1);
        ids.forget_before(at(30));
        let left: Vec<(u64, Minute)> = ids.iter().map(|(id, m, _)| (id, m)).collect();
        assert_eq!(
            left,
            vec![(2, at(50)), (4, at(60)), (5, at(MINUTES_PER_DAY + 1))]
        );
        assert_eq!(ids.insert(2, at(50), 1), Sighting::Copy);
        assert_eq!(ids.insert(1, at(5), 1), Sighting::New);
    }
}
