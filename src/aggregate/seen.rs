//! The analysed events' IDs: one table per UTC day of the events' time, to tell a copy of an
//! event (the same event delivered by an organization trail and an account trail, or a file
//! delivered twice) from a new one.
//!
//! A day's table is a frozen part, its IDs ascending in packed arrays (14 bytes an ID), and a
//! fresh hash map of the IDs added since it was last frozen. The fresh map holds at most
//! `FRESH_MOST` IDs: when full, its IDs are merged into the frozen part in place and it starts
//! again, so a day being read costs about 1 MB of hash table on top of its 14 bytes an ID,
//! where a table of the whole day's IDs took 19-39 bytes each. After each day the aggregator
//! freezes the tables whole: a saved day is read back without hashing its IDs, and a frozen
//! day is written without sorting.

use super::{MINUTES_PER_DAY, Minute};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::collections::hash_map::Entry;

/// What is kept beside a counted event's ID hash: enough to tell a copy from a different event
/// with the same ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
/// frozen part before the map (a guess and a step or two: `position`).
const FRESH_MOST: usize = 57_344;

/// A day's IDs ascending, their minutes and their APIs, side by side (`DayIds::columns`).
pub(super) type Columns<'a> = (Cow<'a, [u64]>, Cow<'a, [u16]>, Cow<'a, [u32]>);

/// One day's IDs: the frozen part ascending (`ids`, with `minutes` and `apis` beside them) and
/// the IDs added since it was frozen.
#[derive(Debug, Default)]
pub(super) struct DayIds {
    ids: Vec<u64>,
    minutes: Vec<u16>,
    apis: Vec<u32>,
    fresh: FxHashMap<u64, SeenEvent>,
}

impl DayIds {
    /// A day's table holding `ids`, which must be ascending and distinct, frozen.
    pub fn frozen(ids: Vec<u64>, minutes: Vec<u16>, apis: Vec<u32>) -> DayIds {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(ids.len() == minutes.len() && ids.len() == apis.len());
        DayIds {
            ids,
            minutes,
            apis,
            fresh: FxHashMap::default(),
        }
    }

    /// A day's table holding `ids` in any order, frozen; of two equal IDs the first is kept.
    pub fn from_unsorted(mut ids: Vec<(u64, SeenEvent)>) -> DayIds {
        ids.sort_by_key(|(id, _)| *id);
        ids.dedup_by_key(|(id, _)| *id);
        DayIds::frozen(
            ids.iter().map(|(id, _)| *id).collect(),
            ids.iter().map(|(_, seen)| seen.minute_of_day).collect(),
            ids.iter().map(|(_, seen)| seen.api).collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.ids.len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remember `id` seen as `seen` unless the day already holds it.
    fn insert(&mut self, id: u64, seen: SeenEvent) -> Sighting {
        if let Ok(at) = position(&self.ids, id) {
            return self.frozen_at(at).sighting(seen);
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

    /// Merge the fresh IDs into the frozen part in place, keeping the fresh map's room for
    /// the next ones: the frozen columns grow by exactly the fresh IDs' number (large, they
    /// are the allocator's own mappings and grow without a copy) and are merged from the back.
    fn merge_fresh(&mut self) {
        let fresh: Vec<(u64, SeenEvent)> = self.fresh.drain().collect();
        let fresh = sorted_by_hash(fresh);
        let old = self.ids.len();
        let n = old + fresh.len();
        self.ids.reserve_exact(fresh.len());
        self.minutes.reserve_exact(fresh.len());
        self.apis.reserve_exact(fresh.len());
        self.ids.resize(n, 0);
        self.minutes.resize(n, 0);
        self.apis.resize(n, 0);
        // The fresh IDs are not in the frozen part (`insert` looks there first): no ties.
        let (mut frozen, mut next) = (old, fresh.len());
        for to in (0..n).rev() {
            if next == 0 {
                break;
            }
            if frozen > 0 && self.ids[frozen - 1] > fresh[next - 1].0 {
                frozen -= 1;
                self.ids[to] = self.ids[frozen];
                self.minutes[to] = self.minutes[frozen];
                self.apis[to] = self.apis[frozen];
            } else {
                next -= 1;
                let (id, seen) = fresh[next];
                self.ids[to] = id;
                self.minutes[to] = seen.minute_of_day;
                self.apis[to] = seen.api;
            }
        }
        debug_assert!(self.ids.windows(2).all(|w| w[0] < w[1]));
    }

    fn frozen_at(&self, at: usize) -> SeenEvent {
        SeenEvent {
            minute_of_day: self.minutes[at],
            api: self.apis[at],
        }
    }

    /// The fresh IDs, ascending.
    fn fresh_ascending(&self) -> Vec<(u64, SeenEvent)> {
        let fresh: Vec<(u64, SeenEvent)> = self.fresh.iter().map(|(id, s)| (*id, *s)).collect();
        sorted_by_hash(fresh)
    }

    /// Every ID with what was seen of it, ascending.
    pub fn ascending(&self) -> impl Iterator<Item = (u64, SeenEvent)> + '_ {
        let frozen = (0..self.ids.len()).map(|at| (self.ids[at], self.frozen_at(at)));
        merge_ascending(frozen, self.fresh_ascending().into_iter())
    }

    /// Every ID ascending, with its minute and API beside it, as three columns: the frozen
    /// arrays themselves when nothing was added since the day was frozen (a saved day is
    /// written from them without a copy), else a merged copy.
    pub fn columns(&self) -> Columns<'_> {
        if self.fresh.is_empty() {
            return (
                Cow::Borrowed(&self.ids),
                Cow::Borrowed(&self.minutes),
                Cow::Borrowed(&self.apis),
            );
        }
        let (ids, minutes, apis) = self.merged();
        (Cow::Owned(ids), Cow::Owned(minutes), Cow::Owned(apis))
    }

    /// The frozen and the fresh IDs together, ascending, with their minutes and APIs beside.
    fn merged(&self) -> (Vec<u64>, Vec<u16>, Vec<u32>) {
        in_columns(self.len(), self.ascending())
    }

    /// The API fingerprint of every ID, in no order.
    pub fn apis(&self) -> impl Iterator<Item = u32> + '_ {
        let fresh = self.fresh.values().map(|seen| seen.api);
        self.apis.iter().copied().chain(fresh)
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
        let keep = |minute: u16| i64::from(minute) >= minute_of_day;
        let mut kept = 0;
        for at in 0..self.ids.len() {
            if keep(self.minutes[at]) {
                self.ids[kept] = self.ids[at];
                self.minutes[kept] = self.minutes[at];
                self.apis[kept] = self.apis[at];
                kept += 1;
            }
        }
        self.ids.truncate(kept);
        self.minutes.truncate(kept);
        self.apis.truncate(kept);
        self.fresh.retain(|_, seen| keep(seen.minute_of_day));
    }
}

/// `n` IDs with what was seen of them, as three columns: IDs, minutes, APIs.
fn in_columns(
    n: usize,
    seen: impl Iterator<Item = (u64, SeenEvent)>,
) -> (Vec<u64>, Vec<u16>, Vec<u32>) {
    let (mut ids, mut minutes, mut apis) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, seen) in seen {
        ids.push(id);
        minutes.push(seen.minute_of_day);
        apis.push(seen.api);
    }
    (ids, minutes, apis)
}

/// The position of `id` in `ids` (ascending), or where it would go. The IDs are hashes, uniform
/// over 64 bits, so `id`'s share of 2^64 guesses its place within a few entries; the search
/// gallops out from the guess and stays logarithmic however the IDs lie.
fn position(ids: &[u64], id: u64) -> Result<usize, usize> {
    let n = ids.len();
    if n == 0 {
        return Err(0);
    }
    let guess = ((u128::from(id) * n as u128) >> 64) as usize;
    let (from, to) = if ids[guess] < id {
        // Everything before `from` is below `id`.
        let (mut from, mut step) = (guess + 1, 1);
        let to = loop {
            let probe = from + step - 1;
            if probe >= n {
                break n;
            }
            if ids[probe] >= id {
                break probe + 1;
            }
            from = probe + 1;
            step *= 2;
        };
        (from, to)
    } else {
        // Everything from `to - 1` on is `id` or above.
        let (mut last, mut step) = (guess, 1);
        let from = loop {
            if last < step {
                break 0;
            }
            let probe = last - step;
            if ids[probe] < id {
                break probe + 1;
            }
            last = probe;
            step *= 2;
        };
        (from, last + 1)
    };
    match ids[from..to].binary_search(&id) {
        Ok(at) => Ok(from + at),
        Err(at) => Err(from + at),
    }
}

/// `items` sorted by their keys, which are hashes (uniform over 64 bits, as `position` also
/// assumes): one pass counts the keys by their top bits into about two per bucket, one moves
/// each item to its bucket's place, and each bucket (a few items) is sorted on its own. Half
/// the time of a comparison sort of a day's IDs when it is frozen. Keys that are not uniform
/// only fill some buckets more (each is still sorted in `n log n`).
fn sorted_by_hash<T: Copy>(mut items: Vec<(u64, T)>) -> Vec<(u64, T)> {
    let n = items.len();
    if n < 64 {
        items.sort_unstable_by_key(|(key, _)| *key);
        return items;
    }
    let bits = (n / 2).ilog2();
    let bucket = |key: u64| (key >> (64 - bits)) as usize;
    // starts[b]: where bucket b begins in the sorted order; then where its next item goes.
    let mut starts = vec![0usize; (1 << bits) + 1];
    for (key, _) in &items {
        starts[bucket(*key) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut sorted = items.clone();
    let mut next = starts.clone();
    for item in &items {
        let b = bucket(item.0);
        sorted[next[b]] = *item;
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
fn merge_ascending<T>(
    a: impl Iterator<Item = (u64, T)>,
    b: impl Iterator<Item = (u64, T)>,
) -> impl Iterator<Item = (u64, T)> {
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
    /// day is detected), the packed arrays hold an ID in 14 bytes where the hash table took
    /// 19-39.
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

    /// Pseudo-random 64-bit values (xorshift) from `seed`: hashes, as IDs are.
    fn hashes(mut seed: u64) -> impl FnMut() -> u64 {
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
            assert_eq!(sorted_by_hash(items), want, "{case}");
        }
    }

    #[test]
    fn position_finds_every_id_and_every_gap_however_the_ids_lie() {
        let uniform: Vec<u64> = (1..=500u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let mut uniform = uniform;
        uniform.sort_unstable();
        let cases: Vec<(&str, Vec<u64>)> = vec![
            ("empty", vec![]),
            ("one", vec![42]),
            ("uniform", uniform),
            ("bunched low", (0..300).collect()),
            (
                "bunched high",
                (0..300).map(|i| u64::MAX - 600 + 2 * i).collect(),
            ),
            ("both ends", vec![0, 1, 2, u64::MAX - 1, u64::MAX]),
        ];
        for (case, ids) in cases {
            for (at, id) in ids.iter().enumerate() {
                assert_eq!(position(&ids, *id), Ok(at), "{case}: {id}");
            }
            let mut probes: Vec<u64> = ids
                .iter()
                .flat_map(|id| [id.wrapping_sub(1), id.wrapping_add(1)])
                .collect();
            probes.extend([0, 1, u64::MAX / 2, u64::MAX]);
            for probe in probes {
                let want = ids.binary_search(&probe);
                assert_eq!(position(&ids, probe), want, "{case}: {probe}");
            }
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
                assert_eq!(day.ids, vec![3, 7, 50, 99]);
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
        assert_eq!(day.ids.len(), 3 * FRESH_MOST, "merged three times");
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
        assert_eq!(ids.by_day[&day].ids, vec![1, 2], "the older day frozen");
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
