//! A series' minutes that are no longer counted into, packed: a few bytes an active minute
//! instead of the 28 its minute and cell take (plus their spill).
//!
//! Once a step has read its objects, nothing is counted until the next step reads, and what
//! the next reads falls almost entirely after every minute held; so between reads every series'
//! cells are packed (`Minutes::freeze`), as are, while a step reads, those of the partitions it
//! has read (`Aggregator::pack_counted`). Detection and the state's writer read them unpacked
//! one series at a time, and a record for a minute at or before the last packed one (a late
//! delivery, a stuck partition read again) unpacks its series first (`Minutes::thaw`). A saved
//! state's cells are packed as they are read (`DayBlock`), and each series' days stitched once
//! every day is read (`Stitcher`).
//!
//! The bytes: the last minute held (8 bytes, little-endian), then one block per UTC day in
//! ascending order (a day may have more than one): its day (the first block's as a zigzag
//! varint, each other's as the days since the block before: one byte where a day number takes
//! three), its number of cells, its length in bytes, then its cells. A cell is its minute (the
//! minute of the day for the block's first, else the gap from the one before), a tag byte, its
//! count unless the tag says 1, then the values the tag announces. Each tally of the tag's three is empty, the same
//! value the cell before in the block held inline, a new value inline, or spilled (its list
//! follows); a tag bit announces the resource tally. Symbols are written `sym + 1`, `0` for
//! `NO_SYM`, as in the saved state. Pruning drops whole blocks without reading their cells.

use super::{
    Cell, CellParts, EMPTY, Minutes, NO_SPILL, SPILLED, SeriesMinutes, Spill, inline_value,
    is_value,
};
use crate::decode::{NO_SYM, Sym};
use crate::model::{MINUTES_PER_DAY, Minute};

/// A tally's two bits in a cell's tag.
const MODE_EMPTY: u8 = 0;
const MODE_SAME: u8 = 1;
const MODE_NEW: u8 = 2;
const MODE_SPILLED: u8 = 3;
/// The cell has a resource tally (its list follows the spilled tallies').
const HAS_RESOURCES: u8 = 1 << 6;
/// The cell counts one call: no count follows.
const COUNT_ONE: u8 = 1 << 7;

/// Bytes before the first block: the last minute held.
const HEADER: usize = 8;

/// The packed minutes of one series; empty (no allocation) when none is packed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Frozen(Box<[u8]>);

/// One day's block: where it starts, where its number of cells starts (after its day) and where
/// it ends (after `HEADER`), its day, its number of cells and their bytes.
struct Block<'a> {
    start: usize,
    after_day: usize,
    end: usize,
    day: i64,
    cells: usize,
    bytes: &'a [u8],
}

/// The blocks of a series' packed bytes, in order (`Frozen::blocks`).
struct Blocks<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The day of the block before, if any: the others' days are the days since it.
    previous: Option<i64>,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Block<'a>;

    #[inline]
    fn next(&mut self) -> Option<Block<'a>> {
        let (bytes, at) = (self.bytes, &mut self.at);
        if *at >= bytes.len() {
            return None;
        }
        let start = *at;
        let day = match self.previous {
            None => unzigzag(varint(bytes, at)),
            Some(day) => day + varint(bytes, at) as i64,
        };
        self.previous = Some(day);
        let after_day = *at;
        let cells = varint(bytes, at) as usize;
        let len = varint(bytes, at) as usize;
        let block = Block {
            start,
            after_day,
            end: *at + len,
            day,
            cells,
            bytes: &bytes[*at..*at + len],
        };
        *at += len;
        Some(block)
    }
}

impl Frozen {
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Where the packed bytes start (dangling when empty).
    pub(super) fn as_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }

    /// The last minute packed.
    pub(super) fn last_minute(&self) -> Option<Minute> {
        let header = self.0.get(..HEADER)?;
        Some(Minute(i64::from_le_bytes(header.try_into().ok()?)))
    }

    fn blocks(&self) -> Blocks<'_> {
        Blocks {
            bytes: self.0.get(HEADER..).unwrap_or_default(),
            at: 0,
            previous: None,
        }
    }

    /// Every symbol the packed cells' tallies name, in no particular order and some more than
    /// once (see `Minutes::each_symbol_unordered`), read from the packed bytes: marking the
    /// strings in use makes no cell or spill.
    pub(super) fn each_symbol_unordered(&self, mut f: impl FnMut(Sym)) {
        self.blocks()
            .for_each(|block| each_block_symbol(&block, &mut f));
    }

    /// How many minutes are packed.
    pub(super) fn len(&self) -> usize {
        self.blocks().map(|b| b.cells).sum()
    }

    /// The days packed, ascending (a day once for each of its blocks).
    pub(super) fn days(&self) -> impl Iterator<Item = i64> + '_ {
        self.blocks().map(|b| b.day)
    }

    /// Whether a block of a day in `days` is packed.
    pub(super) fn holds_days(&self, days: std::ops::Range<i64>) -> bool {
        // The last block is the last minute's day: a save asks this of every series for each
        // recent day it writes, and most answer without a walk over their blocks.
        let Some(last_day) = self.last_minute().map(Minute::day_number) else {
            return false;
        };
        if days.contains(&last_day) {
            return true;
        }
        if last_day < days.start {
            return false;
        }
        self.days().any(|day| days.contains(&day))
    }

    /// Append the packed minutes of the days in `days` to `out`, after any it holds (which
    /// must all be earlier).
    pub(super) fn unpack_days(&self, days: std::ops::Range<i64>, out: &mut Minutes) {
        let blocks = || self.blocks().filter(|b| days.contains(&b.day));
        let cells: usize = blocks().map(|b| b.cells).sum();
        out.minutes.reserve_exact(cells);
        out.cells.reserve_exact(cells);
        for block in blocks() {
            unpack_block(&block, out);
        }
    }

    /// Append the packed minutes to `out` (see `unpack_days`).
    pub(super) fn unpack(&self, out: &mut Minutes) {
        self.unpack_days(i64::MIN..i64::MAX, out);
    }

    /// Pack `minutes` and their `cells` (whose spills are `spills`) after those held (every
    /// one later than the last held).
    pub(super) fn pack(&mut self, minutes: &[Minute], cells: &[Cell], spills: &[Spill]) {
        let Some(last) = minutes.last() else {
            return;
        };
        // The new blocks are made in buffers kept from series to series, then the packed bytes
        // in one allocation of their exact size: packing is a pass over every series a step.
        thread_local! {
            static BUFFERS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> = Default::default();
        }
        // The last block's day is that of the last minute packed (no walk over the blocks).
        let mut previous = self.last_minute().map(Minute::day_number);
        debug_assert_eq!(previous, self.blocks().last().map(|block| block.day));
        BUFFERS.with_borrow_mut(|(blocks, block)| {
            blocks.clear();
            let mut start = 0;
            while start < minutes.len() {
                let day = minutes[start].day_number();
                let end = start + minutes[start..].partition_point(|m| m.day_number() == day);
                block.clear();
                pack_cells(&minutes[start..end], &cells[start..end], spills, day, block);
                push_block(blocks, day, previous, end - start, block);
                previous = Some(day);
                start = end;
            }
            self.append(last.0, blocks.len(), |bytes| {
                bytes.extend_from_slice(blocks)
            });
        });
    }

    /// Replace the packed bytes with those held followed by what `write` appends (about
    /// `len` bytes), `last` the new last minute held: one allocation of their size.
    fn append(&mut self, last: i64, len: usize, write: impl FnOnce(&mut Vec<u8>)) {
        let old = self.0.get(HEADER..).unwrap_or_default();
        let mut bytes = Vec::with_capacity(HEADER + old.len() + len);
        bytes.extend_from_slice(&last.to_le_bytes());
        bytes.extend_from_slice(old);
        write(&mut bytes);
        self.0 = bytes.into_boxed_slice();
    }

    /// Append `block` (of a day after every one held) after the blocks held.
    pub(super) fn append_block(&mut self, block: &DayBlock) {
        if block.is_empty() {
            return;
        }
        let previous = self.last_minute().map(Minute::day_number);
        // A block's header (its day, cell count and length) is a few bytes beside its cells.
        self.append(block.last, 16 + block.bytes.len(), |bytes| {
            push_block(bytes, block.day, previous, block.cells, &block.bytes);
        });
    }

    /// Drop the blocks of `day` and the days after (they were unpacked).
    pub(super) fn truncate_days_from(&mut self, day: i64) {
        let kept = {
            let Some(last_kept) = self.blocks().take_while(|b| b.day < day).last() else {
                self.0 = Box::default();
                return;
            };
            // The new last minute held: the last of the last block kept.
            let mut scratch = Minutes::default();
            unpack_block(&last_kept, &mut scratch);
            let last = scratch.minutes.last().copied().unwrap_or(Minute(i64::MIN));
            (last, HEADER + last_kept.end)
        };
        let (last, end) = kept;
        let mut bytes = Vec::with_capacity(end);
        bytes.extend_from_slice(&last.0.to_le_bytes());
        bytes.extend_from_slice(&self.0[HEADER..end]);
        self.0 = bytes.into_boxed_slice();
    }

    /// Drop the blocks of the days before `day`.
    pub(super) fn drop_days_before(&mut self, day: i64) {
        let Some(first_kept) = self.blocks().find(|b| b.day >= day) else {
            self.0 = Box::default();
            return;
        };
        if first_kept.start == 0 {
            return;
        }
        // The first block kept says its day whole; the others' stay as days since the one before.
        let rest = HEADER + first_kept.after_day;
        let mut bytes = Vec::with_capacity(HEADER + 4 + self.0.len() - rest);
        bytes.extend_from_slice(&self.0[..HEADER]);
        push_day(&mut bytes, first_kept.day, None);
        bytes.extend_from_slice(&self.0[rest..]);
        self.0 = bytes.into_boxed_slice();
    }
}

/// One series' cells of one day packed as they are read (a saved day being loaded), with no
/// table of cells and spills between: the block `pack` would make of the cells
/// `Minutes::push` makes of the same parts.
#[derive(Debug, Default)]
pub struct DayBlock {
    day: i64,
    cells: usize,
    /// The last minute pushed (the start of the block's day before any).
    last: i64,
    /// The values the cells pushed held inline, the last of each tally (see `PackedCell`).
    previous: [Sym; 3],
    bytes: Vec<u8>,
}

impl DayBlock {
    /// Start the block of `day`, empty (keeping the room of the one before).
    pub fn start(&mut self, day: i64) {
        self.day = day;
        self.cells = 0;
        self.last = day * MINUTES_PER_DAY;
        self.previous = [EMPTY; 3];
        self.bytes.clear();
    }

    /// Append the cell `parts` spells out at `minute`: of the block's day, after every minute
    /// pushed (the caller checks both).
    pub fn push(&mut self, minute: Minute, parts: &CellParts) {
        debug_assert!(minute.day_number() == self.day && (self.cells == 0 || minute.0 > self.last));
        let cell = PackedCell {
            gap: (minute.0 - self.last) as u64,
            count: parts.count,
            one: parts
                .tallies
                .each_ref()
                .map(|t| inline_value(t, parts.count)),
            spilled: |k| &parts.tallies[k][..],
            resources: parts.has_resources.then_some(&parts.resources[..]),
        };
        cell.write(&mut self.previous, &mut self.bytes);
        self.cells += 1;
        self.last = minute.0;
    }

    pub fn is_empty(&self) -> bool {
        self.cells == 0
    }
}

/// The blocks of one saved day for the series a directory lists (in its order), kept until
/// every day is read, then stitched into each series' packed bytes at once (`Stitcher`):
/// appending each day's block as it was read copied a series' earlier days once for each day
/// after (most of a night's loading was that copy and its allocations). Each is the series'
/// place in the directory (the gap from the one before), its last minute of the day, its
/// number of cells, their length, and the cells' bytes.
///
/// The blocks are held in chunks of about `CHUNK` bytes (a block never spans two), each freed
/// once stitching has passed it: the days' blocks and the series stitched from them are never
/// both held whole, so loading peaks at about the packed minutes' size, not twice it.
#[derive(Debug)]
pub struct DayBlocks {
    day: i64,
    /// The place after the last series added.
    next: usize,
    chunks: Vec<Vec<u8>>,
}

/// The size of a `DayBlocks` chunk (one holding a larger block is that block's size).
const CHUNK: usize = 256 << 10;
/// The most bytes a block's four numbers before its cells take.
const BLOCK_NUMBERS: usize = 4 * 10;

impl DayBlocks {
    pub fn new(day: i64) -> DayBlocks {
        DayBlocks {
            day,
            next: 0,
            chunks: Vec::new(),
        }
    }

    pub fn day(&self) -> i64 {
        self.day
    }

    /// Add the block of the series at `place` in the directory: after every place added.
    pub fn add(&mut self, place: usize, block: &DayBlock) {
        debug_assert!(place >= self.next && block.day == self.day);
        if block.is_empty() {
            return;
        }
        let size = BLOCK_NUMBERS + block.bytes.len();
        let chunk = match self.chunks.last_mut() {
            Some(chunk) if chunk.len() + size <= chunk.capacity() => chunk,
            _ => {
                self.chunks.push(Vec::with_capacity(size.max(CHUNK)));
                self.chunks.last_mut().expect("just pushed")
            }
        };
        push_varint(chunk, (place - self.next) as u64);
        self.next = place + 1;
        push_varint(chunk, (block.last - self.day * MINUTES_PER_DAY) as u64);
        push_varint(chunk, block.cells as u64);
        push_varint(chunk, block.bytes.len() as u64);
        chunk.extend_from_slice(&block.bytes);
    }
}

/// Each listed series' packed bytes, made from the days' blocks (`DayBlocks`, days ascending)
/// in the directory's order.
pub struct Stitcher {
    days: Vec<DayCursor>,
    scratch: Vec<u8>,
}

/// Where stitching is in one day's blocks: the chunk and the place in it of the next block,
/// and the place of its series in the directory (`None`: no block left).
struct DayCursor {
    blocks: DayBlocks,
    chunk: usize,
    at: usize,
    place: Option<usize>,
}

impl DayCursor {
    /// Move to the next block, of a series at `after` or later, freeing each chunk passed.
    fn advance(&mut self, after: usize) {
        let chunks = &mut self.blocks.chunks;
        while chunks.get(self.chunk).is_some_and(|c| self.at >= c.len()) {
            chunks[self.chunk] = Vec::new();
            self.chunk += 1;
            self.at = 0;
        }
        self.place = chunks
            .get(self.chunk)
            .map(|chunk| after + varint(chunk, &mut self.at) as usize);
    }
}

impl Stitcher {
    pub fn new(days: Vec<DayBlocks>) -> Stitcher {
        let days = days
            .into_iter()
            .map(|blocks| {
                let mut cursor = DayCursor {
                    blocks,
                    chunk: 0,
                    at: 0,
                    place: None,
                };
                cursor.advance(0);
                cursor
            })
            .collect();
        Stitcher {
            days,
            scratch: Vec::new(),
        }
    }

    /// The minutes of the series at `place` (asked in ascending order), packed: empty if no
    /// day holds it.
    pub fn series(&mut self, place: usize) -> SeriesMinutes {
        let out = &mut self.scratch;
        out.clear();
        out.extend_from_slice(&[0; HEADER]);
        let mut previous = None;
        let mut last = None;
        for cursor in &mut self.days {
            if cursor.place != Some(place) {
                continue;
            }
            let day = cursor.blocks.day;
            let (bytes, at) = (&cursor.blocks.chunks[cursor.chunk], &mut cursor.at);
            let last_of_day = varint(bytes, at) as i64;
            let cells = varint(bytes, at) as usize;
            let len = varint(bytes, at) as usize;
            push_block(out, day, previous, cells, &bytes[*at..*at + len]);
            *at += len;
            previous = Some(day);
            last = Some(day * MINUTES_PER_DAY + last_of_day);
            cursor.advance(place + 1);
        }
        let frozen = match last {
            None => Frozen::default(),
            Some(last) => {
                out[..HEADER].copy_from_slice(&last.to_le_bytes());
                Frozen(Box::from(&out[..]))
            }
        };
        SeriesMinutes { live: None, frozen }
    }
}

/// Pack `minutes`, all of `day`, and their `cells` into `out` (a block's cells).
fn pack_cells(minutes: &[Minute], cells: &[Cell], spills: &[Spill], day: i64, out: &mut Vec<u8>) {
    let mut previous_minute = day * MINUTES_PER_DAY;
    let mut previous = [EMPTY; 3];
    for (minute, cell) in minutes.iter().zip(cells) {
        let spill = spills.get(cell.spill as usize);
        let packed = PackedCell {
            gap: (minute.0 - previous_minute) as u64,
            count: cell.count,
            one: cell.one,
            spilled: |k| spill.map_or(&[][..], |s| s.tally(k)),
            resources: spill.and_then(Spill::resources),
        };
        packed.write(&mut previous, out);
        previous_minute = minute.0;
    }
}

/// One cell as a block holds it: its minute (the gap from the one before, or from the block's
/// day), its count, the values its tallies hold inline (`Cell::one`), the lists of those
/// spilled, and its resource tally if it has one.
struct PackedCell<'a, F: Fn(usize) -> &'a [(Sym, u32)]> {
    gap: u64,
    count: u32,
    one: [Sym; 3],
    spilled: F,
    resources: Option<&'a [(Sym, u32)]>,
}

impl<'a, F: Fn(usize) -> &'a [(Sym, u32)]> PackedCell<'a, F> {
    /// Append the cell to `out`; `previous` holds the values the cells before it in the block
    /// held inline (a tally repeating one is written as the same).
    #[inline]
    fn write(&self, previous: &mut [Sym; 3], out: &mut Vec<u8>) {
        push_varint(out, self.gap);
        let mut tag = 0;
        let mut modes = [MODE_EMPTY; 3];
        for (k, mode) in modes.iter_mut().enumerate() {
            *mode = match self.one[k] {
                EMPTY => MODE_EMPTY,
                SPILLED => MODE_SPILLED,
                value if value == previous[k] => MODE_SAME,
                _ => MODE_NEW,
            };
            tag |= *mode << (2 * k);
        }
        if self.resources.is_some() {
            tag |= HAS_RESOURCES;
        }
        if self.count == 1 {
            tag |= COUNT_ONE;
        }
        out.push(tag);
        if self.count != 1 {
            push_varint(out, u64::from(self.count));
        }
        for k in 0..3 {
            if modes[k] == MODE_NEW {
                push_sym(out, self.one[k]);
            }
            if is_value(self.one[k]) {
                previous[k] = self.one[k];
            }
        }
        let spilled = (0..3).filter(|k| modes[*k] == MODE_SPILLED);
        let lists = spilled.map(|k| (self.spilled)(k));
        for list in lists.chain(self.resources) {
            push_varint(out, list.len() as u64);
            for &(sym, n) in list {
                push_sym(out, sym);
                push_varint(out, u64::from(n));
            }
        }
    }
}

/// Append a block's cells to `out`.
fn unpack_block(block: &Block<'_>, out: &mut Minutes) {
    let bytes = block.bytes;
    let mut at = 0;
    let mut minute = block.day * MINUTES_PER_DAY;
    let mut previous = [EMPTY; 3];
    for _ in 0..block.cells {
        minute += varint(bytes, &mut at) as i64;
        let tag = bytes[at];
        at += 1;
        let count = match tag & COUNT_ONE {
            0 => varint(bytes, &mut at) as u32,
            _ => 1,
        };
        let mut cell = Cell::with_count(count);
        let mut spilled = [false; 3];
        for k in 0..3 {
            cell.one[k] = match (tag >> (2 * k)) & 3 {
                MODE_EMPTY => EMPTY,
                MODE_SAME => previous[k],
                MODE_NEW => read_sym(bytes, &mut at),
                _ => {
                    spilled[k] = true;
                    SPILLED
                }
            };
            if is_value(cell.one[k]) {
                previous[k] = cell.one[k];
            }
        }
        let resources = tag & HAS_RESOURCES != 0;
        if resources || spilled.contains(&true) {
            let mut spill = Spill {
                resources,
                ..Spill::default()
            };
            let lists = spilled.iter().filter(|s| **s).count() + usize::from(resources);
            let mut k = 0;
            for _ in 0..lists {
                while k < 3 && !spilled[k] {
                    k += 1;
                }
                let len = varint(bytes, &mut at) as usize;
                if k < 3 {
                    spill.lens[k] = len as u32;
                    k += 1;
                }
                spill.entries.reserve_exact(len);
                for _ in 0..len {
                    let sym = read_sym(bytes, &mut at);
                    let n = varint(bytes, &mut at) as u32;
                    spill.entries.push((sym, n));
                }
            }
            cell.spill = out.spills.len() as u32;
            out.spills.push(spill);
        } else {
            cell.spill = NO_SPILL;
        }
        out.minutes.push(Minute(minute));
        out.cells.push(cell);
    }
}

/// The symbols `unpack_block` would put in a block's cells (a tally's value where it is
/// given, not where a cell repeats the one before) and spills, read past everything else.
fn each_block_symbol(block: &Block<'_>, f: &mut impl FnMut(Sym)) {
    let bytes = block.bytes;
    let mut at = 0;
    for _ in 0..block.cells {
        varint(bytes, &mut at); // the minute
        let tag = bytes[at];
        at += 1;
        if tag & COUNT_ONE == 0 {
            varint(bytes, &mut at);
        }
        let mut lists = usize::from(tag & HAS_RESOURCES != 0);
        for k in 0..3 {
            match (tag >> (2 * k)) & 3 {
                MODE_EMPTY | MODE_SAME => {}
                MODE_NEW => {
                    let sym = read_sym(bytes, &mut at);
                    if is_value(sym) {
                        f(sym);
                    }
                }
                _ => lists += 1,
            }
        }
        for _ in 0..lists {
            for _ in 0..varint(bytes, &mut at) {
                f(read_sym(bytes, &mut at));
                varint(bytes, &mut at); // its count
            }
        }
    }
}

/// A block of `day` (after a block of day `previous`, if any): its day, its number of
/// `cells`, its length, and the cells' `bytes`.
fn push_block(out: &mut Vec<u8>, day: i64, previous: Option<i64>, cells: usize, bytes: &[u8]) {
    push_day(out, day, previous);
    push_varint(out, cells as u64);
    push_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A block's day: whole if it is the first (no day `previous`), else the days since `previous`.
fn push_day(out: &mut Vec<u8>, day: i64, previous: Option<i64>) {
    match previous {
        None => push_varint(out, zigzag(day)),
        Some(previous) => push_varint(out, (day - previous) as u64),
    }
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A varint of bytes this module wrote (so never cut short).
fn varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
        shift += 7;
    }
}

fn push_sym(out: &mut Vec<u8>, sym: Sym) {
    push_varint(out, u64::from(sym.wrapping_add(1)));
}

fn read_sym(bytes: &[u8], at: &mut usize) -> Sym {
    match varint(bytes, at) {
        0 => NO_SYM,
        n => (n - 1) as Sym,
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cells of the series at `place` on `day` (none on some days; one series' block far
    /// larger than a chunk, by its resource tallies).
    fn block_of(place: usize, day: i64, block: &mut DayBlock) {
        block.start(day);
        if (place as i64 + day) % 3 == 0 {
            return;
        }
        let huge = place == 1235 && day == 11;
        let cells = if huge { 200 } else { 1 + place % 7 };
        for i in 0..cells {
            let sym = (place % 50 + i % 3) as Sym;
            let parts = CellParts {
                count: 1 + (i % 2) as u32,
                tallies: [
                    vec![(sym, 1 + (i % 2) as u32)],
                    vec![(7, 1), (8, 1)],
                    vec![],
                ],
                has_resources: huge,
                resources: if huge {
                    (0..1000).map(|r| (100_000 + r as Sym, 1)).collect()
                } else {
                    Vec::new()
                },
            };
            block.push(Minute(day * MINUTES_PER_DAY + 3 * i as i64), &parts);
        }
    }

    /// Stitching many series over several chunks a day gives each the bytes its days appended
    /// one by one give, and frees every chunk it has passed.
    #[test]
    fn stitching_across_chunks_gives_the_appended_bytes_and_frees_what_it_passed() {
        let (series, days) = (60_000, [10, 11, 12]);
        let mut block = DayBlock::default();
        let mut read: Vec<DayBlocks> = Vec::new();
        let mut expected = vec![Frozen::default(); series];
        for day in days {
            let mut blocks = DayBlocks::new(day);
            for (place, want) in expected.iter_mut().enumerate() {
                block_of(place, day, &mut block);
                blocks.add(place, &block);
                want.append_block(&block);
            }
            read.push(blocks);
        }
        let chunks: Vec<usize> = read.iter().map(|day| day.chunks.len()).collect();
        assert!(
            chunks.iter().all(|n| *n > 2),
            "several chunks a day: {chunks:?}"
        );
        let mut stitcher = Stitcher::new(read);
        for (place, want) in expected.iter().enumerate() {
            let stitched = stitcher.series(place);
            assert!(stitched.live.is_none());
            assert_eq!(stitched.frozen, *want, "series {place}");
            if place == series / 2 {
                let freed = |c: &DayCursor| c.blocks.chunks.iter().any(|b| b.capacity() == 0);
                assert!(stitcher.days.iter().all(freed), "chunks passed are freed");
            }
        }
        for cursor in &stitcher.days {
            assert!(cursor.place.is_none());
            assert!(cursor.blocks.chunks.iter().all(|c| c.capacity() == 0));
        }
    }
}
