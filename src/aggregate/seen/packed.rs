//! A day's frozen event IDs, held in memory as the state's day segment stores them
//! (`saved::write_packed_ids`): the hashes ascending and grouped by their top bits, each kept
//! without those bits, beside each ID's minute and its API as a position in the day's list of
//! APIs. About 9.7 bytes an ID at 360 k IDs a day, where plain columns took 14, and a saved day
//! is loaded and saved as copies of its columns.
//!
//! The layout is canonical, so a day's bytes depend on its IDs only: grouped by `bucket_bits` of
//! the count, the API list exactly the IDs' distinct APIs, ascending, its positions `api_width`
//! bytes each.

use super::SeenEvent;
use crate::model::MINUTES_PER_DAY;
use rustc_hash::FxHashSet;

/// Bytes kept past the last ID's, so each ID's hash is read with one 8-byte load.
const PAD: usize = 2;

/// The most IDs of a group searched one after another (a group of a large day holds two to
/// eight, in a cache line or two); larger groups are searched from a guess (`position_by`).
const SCANNED: usize = 16;

/// How many top bits of the hashes the IDs are grouped by: 0, 8 or 16, whole bytes, so the rest
/// of each hash is whole bytes too; about one group for every two to four IDs once there are
/// enough of them for the groups' counts to cost less than the byte each saves.
pub(in crate::aggregate) fn bucket_bits(ids: usize) -> u32 {
    match ids {
        n if n >= 1 << 17 => 16,
        n if n >= 1 << 9 => 8,
        _ => 0,
    }
}

/// The bytes a position in a day's list of `apis` takes.
pub(in crate::aggregate) fn api_width(apis: usize) -> usize {
    match apis {
        n if n <= 1 << 8 => 1,
        n if n <= 1 << 16 => 2,
        _ => 4,
    }
}

/// One day's frozen IDs (see the module doc).
#[derive(Debug, Clone, Default)]
pub(in crate::aggregate) struct PackedIds {
    /// The IDs' distinct API fingerprints, ascending.
    apis: Vec<u32>,
    /// The top bits the hashes are grouped by (`bucket_bits` of the count).
    bits: u32,
    /// Where each group's IDs begin, and the count after the last: `2^bits + 1` entries, or none
    /// when the day holds no ID.
    starts: Vec<u32>,
    /// Each hash without its top `bits`, little-endian, `kept()` bytes each, then `PAD` zeros.
    low: Vec<u8>,
    /// Each ID's minute of the day.
    minutes: Vec<u16>,
    /// Each ID's API as a position in `apis`, little-endian, `api_width` bytes each.
    positions: Vec<u8>,
}

impl PackedIds {
    pub fn len(&self) -> usize {
        self.minutes.len()
    }

    /// The bytes of each hash kept (those below its group's bits).
    fn kept(&self) -> usize {
        8 - self.bits as usize / 8
    }

    fn width(&self) -> usize {
        api_width(self.apis.len())
    }

    /// The bits of a hash kept in `low`.
    fn low_mask(&self) -> u64 {
        u64::MAX >> self.bits
    }

    fn group(&self, id: u64) -> usize {
        match self.bits {
            0 => 0,
            bits => (id >> (64 - bits)) as usize,
        }
    }

    /// The top bits of the hashes of group `group`.
    fn high(&self, group: usize) -> u64 {
        match self.bits {
            0 => 0,
            bits => (group as u64) << (64 - bits),
        }
    }

    /// The kept bits of the `at`th hash.
    fn low_at(&self, at: usize) -> u64 {
        let from = at * self.kept();
        let raw: [u8; 8] = self.low[from..from + 8].try_into().expect("padded");
        u64::from_le_bytes(raw) & self.low_mask()
    }

    fn position_at(&self, at: usize) -> usize {
        read_position(&self.positions, at, self.width())
    }

    fn event_at(&self, at: usize) -> SeenEvent {
        SeenEvent {
            minute_of_day: self.minutes[at],
            api: self.apis[self.position_at(at)],
        }
    }

    fn group_range(&self, group: usize) -> (usize, usize) {
        (self.starts[group] as usize, self.starts[group + 1] as usize)
    }

    /// What was seen of `id`, if the day holds it: its group is scanned (a few IDs), or, when
    /// large, searched from a guess at its place.
    pub fn find(&self, id: u64) -> Option<SeenEvent> {
        if self.is_empty() {
            return None;
        }
        let (from, to) = self.group_range(self.group(id));
        let low = id & self.low_mask();
        if to - from <= SCANNED {
            let at = (from..to).find(|at| self.low_at(*at) >= low)?;
            return (self.low_at(at) == low).then(|| self.event_at(at));
        }
        let span = 64 - self.bits;
        let at = position_by(to - from, |k| self.low_at(from + k), low, span);
        at.ok().map(|k| self.event_at(from + k))
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    /// Every ID with what was seen of it, ascending.
    pub fn ascending(&self) -> impl Iterator<Item = (u64, SeenEvent)> + Clone + '_ {
        let groups = self.starts.len().saturating_sub(1);
        (0..groups).flat_map(move |group| {
            let (from, to) = self.group_range(group);
            let high = self.high(group);
            (from..to).map(move |at| (high | self.low_at(at), self.event_at(at)))
        })
    }

    /// The IDs' distinct APIs, ascending.
    pub fn apis(&self) -> &[u32] {
        &self.apis
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Each group's ID count, in order.
    pub fn group_counts(&self) -> impl Iterator<Item = u32> + '_ {
        self.starts.windows(2).map(|pair| pair[1] - pair[0])
    }

    /// The hashes' kept bytes, ascending.
    pub fn low_bytes(&self) -> &[u8] {
        &self.low[..self.len() * self.kept()]
    }

    pub fn minutes(&self) -> &[u16] {
        &self.minutes
    }

    pub fn position_bytes(&self) -> &[u8] {
        &self.positions
    }

    /// The `n` IDs of `ascending` (ascending and distinct), packed. Two passes: the day's APIs
    /// and groups, then the columns.
    pub fn from_ascending(
        n: usize,
        ascending: impl Iterator<Item = (u64, SeenEvent)> + Clone,
    ) -> PackedIds {
        // A day's APIs are a few hundred among its hundreds of thousands of IDs.
        let mut apis: Vec<u32> = Vec::new();
        let mut known: FxHashSet<u32> = FxHashSet::default();
        for (_, seen) in ascending.clone() {
            if known.insert(seen.api) {
                apis.push(seen.api);
            }
        }
        drop(known);
        apis.sort_unstable();
        let mut packed = PackedIds {
            apis,
            bits: bucket_bits(n),
            ..PackedIds::default()
        };
        let (kept, width, mask) = (packed.kept(), packed.width(), packed.low_mask());
        let mut counts = vec![0u32; 1 << packed.bits];
        packed.low.reserve_exact(n * kept + PAD);
        packed.minutes.reserve_exact(n);
        packed.positions.reserve_exact(n * width);
        for (id, seen) in ascending {
            counts[packed.group(id)] += 1;
            packed
                .low
                .extend_from_slice(&(id & mask).to_le_bytes()[..kept]);
            packed.minutes.push(seen.minute_of_day);
            let at = packed.apis.binary_search(&seen.api).unwrap_or_default();
            push_position(&mut packed.positions, at, width);
        }
        packed.low.extend_from_slice(&[0; PAD]);
        if packed.is_empty() {
            return PackedIds::default();
        }
        packed.starts = starts_of(&counts);
        debug_assert_eq!(packed.len(), n);
        packed
    }

    /// A day's IDs from the columns of a saved segment, checked: each group's hashes ascending,
    /// minutes within the day, API positions within the list. A day saved in another layout
    /// than the canonical one (grouped by other bits, or an API list not exactly the IDs' own,
    /// ascending) is packed again.
    pub fn from_parts(parts: Parts<'_>) -> anyhow::Result<PackedIds> {
        let n = parts.minutes.len() / 2;
        let (width, kept) = (api_width(parts.apis.len()), 8 - parts.bits as usize / 8);
        anyhow::ensure!(
            u32::try_from(n).is_ok(),
            "the saved state holds {n} event IDs in a day, more than this build keeps"
        );
        debug_assert!(parts.low.len() == n * kept && parts.positions.len() == n * width);
        let mut low = Vec::with_capacity(parts.low.len() + PAD);
        low.extend_from_slice(parts.low);
        low.extend_from_slice(&[0; PAD]);
        let packed = PackedIds {
            apis: parts.apis,
            bits: parts.bits,
            starts: starts_of(&parts.group_counts),
            low,
            minutes: (parts.minutes.as_chunks::<2>().0.iter())
                .map(|m| u16::from_le_bytes(*m))
                .collect(),
            positions: parts.positions.to_vec(),
        };
        packed.check()?;
        if packed.is_canonical() {
            Ok(packed)
        } else {
            Ok(PackedIds::from_ascending(n, packed.ascending()))
        }
    }

    /// What `from_parts` checks.
    fn check(&self) -> anyhow::Result<()> {
        for group in 0..self.starts.len().saturating_sub(1) {
            let (from, to) = self.group_range(group);
            anyhow::ensure!(
                (from + 1..to).all(|at| self.low_at(at - 1) < self.low_at(at)),
                "the saved state holds event IDs out of order"
            );
        }
        if let Some(late) = self
            .minutes
            .iter()
            .find(|m| i64::from(**m) >= MINUTES_PER_DAY)
        {
            anyhow::bail!("the saved state holds an event minute {late} past the end of its day");
        }
        if let Some(beyond) = (0..self.len())
            .map(|at| self.position_at(at))
            .find(|at| *at >= self.apis.len())
        {
            anyhow::bail!(
                "the saved state refers to API {beyond} of a day, but that day holds only {}",
                self.apis.len()
            );
        }
        Ok(())
    }

    /// Whether the layout is the one `from_ascending` makes of the same IDs.
    fn is_canonical(&self) -> bool {
        let mut used = vec![false; self.apis.len()];
        (0..self.len()).for_each(|at| used[self.position_at(at)] = true);
        self.bits == bucket_bits(self.len())
            && self.apis.windows(2).all(|pair| pair[0] < pair[1])
            && used.iter().all(|used| *used)
    }

    /// Add `fresh` (ascending, none of them already held), in place: the old IDs are first
    /// regrouped and their APIs renumbered for the day's new size (`regroup`, `renumber`), then
    /// the columns grow by exactly the fresh IDs' bytes and are merged from the back, so a day
    /// is never held twice.
    pub fn merge(&mut self, fresh: &[(u64, SeenEvent)]) {
        if fresh.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = PackedIds::from_ascending(fresh.len(), fresh.iter().copied());
            return;
        }
        let n = self.len() + fresh.len();
        let mut known: FxHashSet<u32> = self.apis.iter().copied().collect();
        let mut apis = self.apis.clone();
        for (_, seen) in fresh {
            if known.insert(seen.api) {
                apis.push(seen.api);
            }
        }
        apis.sort_unstable();
        self.regroup(bucket_bits(n));
        self.renumber(apis);
        let mut counts: Vec<u32> = self.group_counts().collect();
        for (id, _) in fresh {
            counts[self.group(*id)] += 1;
        }
        let (old, kept, width, mask) = (self.len(), self.kept(), self.width(), self.low_mask());
        grow_to(&mut self.low, n * kept + PAD);
        grow_to(&mut self.minutes, n);
        grow_to(&mut self.positions, n * width);
        // `from`: the old IDs not yet moved; `next`: the fresh IDs not yet placed; `group`: the
        // group of the old ID at `from - 1`. Each write lands past every ID not yet read.
        let (mut from, mut next) = (old, fresh.len());
        let mut group = counts.len() - 1;
        for to in (0..n).rev() {
            if next == 0 {
                break;
            }
            while from > 0 && self.starts[group] as usize > from - 1 {
                group -= 1;
            }
            let (id, seen) = fresh[next - 1];
            let old_id = (from > 0).then(|| self.high(group) | self.low_at(from - 1));
            if old_id.is_some_and(|old_id| old_id > id) {
                from -= 1;
                self.low
                    .copy_within(from * kept..from * kept + kept, to * kept);
                self.minutes[to] = self.minutes[from];
                self.positions
                    .copy_within(from * width..from * width + width, to * width);
            } else {
                next -= 1;
                self.low[to * kept..to * kept + kept]
                    .copy_from_slice(&(id & mask).to_le_bytes()[..kept]);
                self.minutes[to] = seen.minute_of_day;
                let at = self.apis.binary_search(&seen.api).unwrap_or_default();
                write_position(&mut self.positions, to, at, width);
            }
        }
        self.starts = starts_of(&counts);
        debug_assert!(self.is_canonical());
        debug_assert!(
            self.ascending()
                .zip(self.ascending().skip(1))
                .all(|(a, b)| a.0 < b.0)
        );
    }

    /// Group the IDs by `bits` top bits (as many as now or more), in place: each hash keeps
    /// fewer bytes, so each moves towards the front, past none not yet read.
    fn regroup(&mut self, bits: u32) {
        if bits == self.bits {
            return;
        }
        debug_assert!(bits > self.bits);
        let (n, kept, mask) = (self.len(), 8 - bits as usize / 8, u64::MAX >> bits);
        let mut counts = vec![0u32; 1 << bits];
        for group in 0..self.starts.len() - 1 {
            let (from, to) = self.group_range(group);
            let high = self.high(group);
            for at in from..to {
                let id = high | self.low_at(at);
                counts[(id >> (64 - bits)) as usize] += 1;
                self.low[at * kept..at * kept + kept]
                    .copy_from_slice(&(id & mask).to_le_bytes()[..kept]);
            }
        }
        self.low.truncate(n * kept);
        self.low.extend_from_slice(&[0; PAD]);
        self.bits = bits;
        self.starts = starts_of(&counts);
    }

    /// Refer to the APIs by their positions in `apis` (ascending, and holding every API of the
    /// day's), in place: positions only widen, so each moves towards the back, from the last.
    fn renumber(&mut self, apis: Vec<u32>) {
        if apis == self.apis {
            return;
        }
        let (old_width, width) = (self.width(), api_width(apis.len()));
        debug_assert!(width >= old_width);
        let new_position: Vec<usize> = (self.apis.iter())
            .map(|api| apis.binary_search(api).unwrap_or_default())
            .collect();
        let n = self.len();
        grow_to(&mut self.positions, n * width);
        for at in (0..n).rev() {
            let old = read_position(&self.positions, at, old_width);
            write_position(&mut self.positions, at, new_position[old], width);
        }
        self.apis = apis;
    }

    /// Keep only the IDs seen at `minute_of_day` or later (packed again: rare, a run that
    /// starts within a day).
    pub fn retain_from(&mut self, minute_of_day: i64) {
        let keep = |seen: &SeenEvent| i64::from(seen.minute_of_day) >= minute_of_day;
        let n = self
            .minutes
            .iter()
            .filter(|m| i64::from(**m) >= minute_of_day)
            .count();
        if n == self.len() {
            return;
        }
        let kept = self.ascending().filter(|(_, seen)| keep(seen));
        *self = PackedIds::from_ascending(n, kept);
    }
}

/// A day's IDs as a saved segment's columns hold them (`PackedIds::from_parts`).
pub(in crate::aggregate) struct Parts<'a> {
    pub apis: Vec<u32>,
    pub bits: u32,
    pub group_counts: Vec<u32>,
    pub low: &'a [u8],
    pub minutes: &'a [u8],
    pub positions: &'a [u8],
}

/// Where each group begins, from each group's count, and the total after the last.
fn starts_of(counts: &[u32]) -> Vec<u32> {
    let mut starts = Vec::with_capacity(counts.len() + 1);
    let mut total = 0;
    starts.push(0);
    for count in counts {
        total += count;
        starts.push(total);
    }
    starts
}

/// `column` grown to `len` items, with room for exactly them (a day's columns are large).
fn grow_to<T: Copy + Default>(column: &mut Vec<T>, len: usize) {
    column.reserve_exact(len.saturating_sub(column.len()));
    column.resize(len, T::default());
}

fn read_position(positions: &[u8], at: usize, width: usize) -> usize {
    match width {
        1 => usize::from(positions[at]),
        2 => usize::from(u16::from_le_bytes([
            positions[2 * at],
            positions[2 * at + 1],
        ])),
        _ => {
            let raw: [u8; 4] = positions[4 * at..4 * at + 4].try_into().expect("4 bytes");
            u32::from_le_bytes(raw) as usize
        }
    }
}

fn push_position(positions: &mut Vec<u8>, position: usize, width: usize) {
    positions.extend_from_slice(&(position as u32).to_le_bytes()[..width]);
}

fn write_position(positions: &mut [u8], at: usize, position: usize, width: usize) {
    positions[at * width..at * width + width]
        .copy_from_slice(&(position as u32).to_le_bytes()[..width]);
}

/// The position of `id` among `n` ascending keys (`key(i)`, each below `2^span`), or where it
/// would go. The keys are hashes, uniform over their span, so `id`'s share of it guesses its
/// place within a few entries; the search gallops out from the guess and stays logarithmic
/// however the keys lie.
#[inline]
pub(super) fn position_by(
    n: usize,
    key: impl Fn(usize) -> u64,
    id: u64,
    span: u32,
) -> Result<usize, usize> {
    if n == 0 {
        return Err(0);
    }
    let guess = (((u128::from(id) * n as u128) >> span) as usize).min(n - 1);
    let (from, to) = if key(guess) < id {
        // Everything before `from` is below `id`.
        let (mut from, mut step) = (guess + 1, 1);
        let to = loop {
            let probe = from + step - 1;
            if probe >= n {
                break n;
            }
            if key(probe) >= id {
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
            if key(probe) < id {
                break probe + 1;
            }
            last = probe;
            step *= 2;
        };
        (from, last + 1)
    };
    // Binary search of [from, to).
    let (mut low, mut high) = (from, to);
    while low < high {
        let mid = low + (high - low) / 2;
        match key(mid).cmp(&id) {
            std::cmp::Ordering::Less => low = mid + 1,
            std::cmp::Ordering::Greater => high = mid,
            std::cmp::Ordering::Equal => return Ok(mid),
        }
    }
    Err(low)
}

#[cfg(test)]
mod tests {
    use super::super::tests::hashes;
    use super::*;

    fn position(keys: &[u64], id: u64) -> Result<usize, usize> {
        position_by(keys.len(), |at| keys[at], id, 64)
    }

    #[test]
    fn position_finds_every_key_and_every_gap_however_the_keys_lie() {
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

    /// `n` distinct IDs, ascending, with minutes and APIs from `apis` fingerprints.
    fn day(seed: u64, n: usize, apis: u32) -> Vec<(u64, SeenEvent)> {
        let mut next = hashes(seed);
        let mut ids: Vec<(u64, SeenEvent)> = (0..n)
            .map(|i| {
                let seen = SeenEvent {
                    minute_of_day: (next() % 1440) as u16,
                    api: 1000 + (i as u32 % apis) * 7,
                };
                (next(), seen)
            })
            .collect();
        ids.sort_by_key(|(id, _)| *id);
        ids.dedup_by_key(|(id, _)| *id);
        ids
    }

    /// Every column one after another, so two days compare as the bytes a segment would hold.
    fn columns(packed: &PackedIds) -> Vec<u8> {
        let mut bytes: Vec<u8> = packed.apis().iter().flat_map(|a| a.to_le_bytes()).collect();
        bytes.push(packed.bits() as u8);
        bytes.extend(packed.group_counts().flat_map(|count| count.to_le_bytes()));
        bytes.extend_from_slice(packed.low_bytes());
        bytes.extend(packed.minutes().iter().flat_map(|m| m.to_le_bytes()));
        bytes.extend_from_slice(packed.position_bytes());
        bytes
    }

    /// Days merged from parts of every size, across the layouts' thresholds (the group bits at
    /// 512 and 131,072 IDs, the API width at 256 APIs) and with APIs new to the day: each merge
    /// gives the very columns packing the whole day at once gives, and finds every ID (in groups
    /// scanned and in groups searched from a guess).
    #[test]
    fn merged_days_hold_the_columns_of_the_whole_day_packed_at_once() {
        let cases = [
            // (IDs, APIs, IDs in each part, each part an API's own)
            (400, 5, 60, false),
            (700, 3, 100, false),
            (600, 300, 250, false),
            (140_000, 200, 20_000, false),
            (3_000, 270, 1_000, false),
            (3_000, 50, 300, true),
        ];
        for (seed, (n, apis, part, by_api)) in cases.into_iter().enumerate() {
            let ids = day(seed as u64 + 1, n, apis);
            let mut merged = PackedIds::default();
            let mut next = hashes(seed as u64 + 77);
            let mut parts: Vec<Vec<(u64, SeenEvent)>> = vec![Vec::new(); ids.len() / part + 1];
            for id in &ids {
                // Each part a random share of the day, as a day's reading fills its fresh map,
                // or its APIs' (new APIs in each part: the old IDs' positions renumbered).
                let count = parts.len() as u64;
                let pick = if by_api {
                    u64::from(id.1.api) / 7
                } else {
                    next()
                };
                parts[(pick % count) as usize].push(*id);
            }
            let mut so_far: Vec<(u64, SeenEvent)> = Vec::new();
            for part in parts {
                merged.merge(&part);
                so_far.extend(part);
                so_far.sort_by_key(|(id, _)| *id);
                let whole = PackedIds::from_ascending(so_far.len(), so_far.iter().copied());
                assert_eq!(columns(&merged), columns(&whole), "case {seed}");
            }
            assert_eq!(merged.ascending().collect::<Vec<_>>(), ids, "case {seed}");
            for (id, seen) in &ids {
                assert_eq!(merged.find(*id), Some(*seen), "case {seed}");
                assert_eq!(merged.find(id ^ 1), None, "case {seed}");
            }
        }
    }

    #[test]
    fn a_day_keeps_its_later_ids_in_the_layout_of_what_is_left() {
        let ids = day(5, 1_000, 300);
        let mut packed = PackedIds::from_ascending(ids.len(), ids.iter().copied());
        packed.retain_from(1_200);
        let left: Vec<(u64, SeenEvent)> = (ids.iter().copied())
            .filter(|(_, seen)| seen.minute_of_day >= 1_200)
            .collect();
        let want = PackedIds::from_ascending(left.len(), left.iter().copied());
        assert!(left.len() < 512 && want.bits() == 0 && want.apis().len() <= 256);
        assert_eq!(columns(&packed), columns(&want));
    }

    fn le_bytes(minutes: &[u16]) -> Vec<u8> {
        minutes.iter().flat_map(|m| m.to_le_bytes()).collect()
    }

    fn parts_of<'a>(packed: &'a PackedIds, minutes: &'a [u8]) -> Parts<'a> {
        Parts {
            apis: packed.apis().to_vec(),
            bits: packed.bits(),
            group_counts: packed.group_counts().collect(),
            low: packed.low_bytes(),
            minutes,
            positions: packed.position_bytes(),
        }
    }

    /// Read back from its columns, a day is the same; columns in another layout (an API the
    /// IDs do not use, APIs out of order) are packed again; damage is an error.
    #[test]
    fn columns_read_back_and_are_checked() {
        let ids = day(9, 2_000, 40);
        let packed = PackedIds::from_ascending(ids.len(), ids.iter().copied());
        let minutes = le_bytes(packed.minutes());
        let back = PackedIds::from_parts(parts_of(&packed, &minutes)).unwrap();
        assert_eq!(columns(&back), columns(&packed));

        let mut odd = parts_of(&packed, &minutes);
        // The list reversed, with an unused API, and the positions pointed at the same APIs.
        let width = api_width(odd.apis.len() + 1);
        assert_eq!(width, 1);
        let mut apis = odd.apis.clone();
        apis.push(7);
        apis.reverse();
        let positions: Vec<u8> = odd
            .positions
            .iter()
            .map(|at| (apis.len() - 1 - usize::from(*at)) as u8)
            .collect();
        odd.apis = apis;
        odd.positions = &positions;
        let back = PackedIds::from_parts(odd).unwrap();
        assert_eq!(columns(&back), columns(&packed));

        let mut swapped = packed.low_bytes().to_vec();
        let kept = 8 - packed.bits() as usize / 8;
        let (first, second) = swapped.split_at_mut(kept);
        first.swap_with_slice(&mut second[..kept]);
        let damaged = Parts {
            low: &swapped,
            ..parts_of(&packed, &minutes)
        };
        let error = PackedIds::from_parts(damaged).unwrap_err().to_string();
        assert!(error.contains("out of order"), "{error}");

        let mut late = packed.minutes().to_vec();
        late[3] = 1440;
        let late = le_bytes(&late);
        let damaged = Parts {
            minutes: &late,
            ..parts_of(&packed, &minutes)
        };
        let error = PackedIds::from_parts(damaged).unwrap_err().to_string();
        assert!(error.contains("past the end of its day"), "{error}");

        let beyond = vec![40u8; packed.len()];
        let damaged = Parts {
            positions: &beyond,
            ..parts_of(&packed, &minutes)
        };
        let error = PackedIds::from_parts(damaged).unwrap_err().to_string();
        assert!(error.contains("refers to API 40"), "{error}");
    }
}
