//! The aggregator's saved form (state layouts 2 to 4): a compact binary encoding written and
//! read straight from and into the aggregator's own tables, with no intermediate copy of every
//! string and ID (layout 1, `AggregateState`, spelled each event ID as 32 hex digits in JSON).
//!
//! Integers are LEB128 varints (signed ones zigzag-encoded); a symbol is written as `sym + 1`,
//! `0` standing for `NO_SYM`. A cell (`write_cell`) is its count, the identity, user-agent and
//! error-code tallies (length, then (symbol, count) pairs), and a resource tally behind a
//! presence byte. A day's event IDs (`write_ids`) are the day's distinct API fingerprints
//! (count, then each as 4 bytes little-endian), its ID count, then each ID's 64-bit hash
//! (`event_id_hash`) in ascending order as the gap from the one before (the first from 0), its
//! minute of the day, and its API as a position in the day's list; about 10 bytes an ID (7 of
//! gap at 360 k IDs a day).
//!
//! Layouts 4 and 5 keep the counts in one segment per UTC day (`DaySegments::write`, read back with
//! `Aggregator::read_day`, days in ascending order): the strings the day's series and cells name
//! (count, then each as length and UTF-8 bytes: the segment's own table, so the aggregator's
//! renumbering never invalidates a saved segment), the series with cells in the day (count, then
//! each as its five key symbols, a data flag byte, its cell count and its cells, each after its
//! minute: the first absolute, the others as the gap from the one before), and the day's event IDs.
//! The coverage (each account and region's first minute, the names spelled out) is written once, in
//! the state's manifest (`write_coverage`). What changed since the counts were saved or loaded is
//! noted as they change (`Unsaved`), so a save writes the segments of those days only
//! (`Aggregator::save_plan`). The manifest also holds a series directory
//! (`DaySegments::write_directory`: every series' key, in key order, and from layout 5 on its
//! number of cells), so loading finds a day's series by walking it in step with the day's, not by a
//! lookup each, and makes each series' packed bytes once.
//!
//! Layouts 2 and 3 (read, and migrated; `write_saved` still writes layout 3, for tests) held
//! all the counts in one form: the strings still referenced, the series (key, flag, cells),
//! the coverage (count, then (account, region, first minute) as symbols), and the event IDs by
//! UTC day of the event (day count, then each day number and its IDs). Layout 3's IDs are as
//! above; layout 2 wrote each ID as 16 bytes little-endian (hashed when read), 2 of minute of
//! the day and 4 of API fingerprint, 22 bytes an ID.
//!
//! Both directions can stream: `Writer::streaming` hands the bytes to a sink in 64 KiB chunks,
//! and `Reader::streaming` reads them from a source (a capped gzip decoder) through a window of
//! about as much, so an uncompressed form need not be held whole beside the counts. (The state
//! writes each object, one day's or its manifest, whole and compresses it at once, and inflates
//! each day's segment whole: `state`.)
//!
//! Reading checks every length and symbol against what the input can hold (for a stream, what
//! its compressed size can inflate to) and reserves room for at most `RESERVE_CAP` items ahead
//! of reading them: a damaged state is an error naming what is wrong, never a panic.

use super::seen::{DayIds, PackedIds, Parts, SeenEvent, api_width};
use super::{
    Aggregator, CellParts, DayBlock, DayBlocks, IdentityFilter, Minutes, SeriesId, SeriesMinutes,
    Stitcher, Tallies, Tally, event_id_hash,
};
use crate::decode::{Interner, NO_SYM, Strings, Sym};
use crate::model::{MINUTES_PER_DAY, Minute};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::{Read, Write};

/// How many bytes a `Writer` gathers before handing them to its sink.
const CHUNK: usize = 64 << 10;
/// The layout `Aggregator::write_saved` writes (`Aggregator::read_saved` reads it and 2); the
/// state's layouts 4 and 5 are made of day segments instead (`DaySegments`).
pub const SAVED_LAYOUT: u32 = 3;
/// Most items a count read from a stream reserves room for at once: a damaged count (the
/// stream's checksum is only checked at its end) cannot allocate more before its items are
/// actually read; larger tables grow as they are filled.
const RESERVE_CAP: usize = 1 << 20;

/// Append-only writer of the layout's integers: into `bytes`, or, made with `streaming`, in
/// chunks of about 64 KiB into a sink (a gzip encoder), so the whole form is never held.
#[derive(Default)]
pub struct Writer<'s> {
    pub bytes: Vec<u8>,
    sink: Option<&'s mut dyn Write>,
    error: Option<std::io::Error>,
}

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("buffered", &self.bytes.len())
            .field("streaming", &self.sink.is_some())
            .finish()
    }
}

impl<'s> Writer<'s> {
    /// A writer handing its bytes to `sink` as they are written; call `finish` at the end.
    pub fn streaming(sink: &'s mut dyn Write) -> Writer<'s> {
        Writer {
            bytes: Vec::with_capacity(CHUNK + 1024),
            sink: Some(sink),
            error: None,
        }
    }

    pub fn is_streaming(&self) -> bool {
        self.sink.is_some()
    }

    /// Hand what is gathered to the sink once a chunk is full (the first error is kept for
    /// `finish`; nothing more is written after it).
    pub fn spill(&mut self) {
        if self.bytes.len() >= CHUNK {
            self.flush_buffer();
        }
    }

    fn flush_buffer(&mut self) {
        if let Some(sink) = &mut self.sink {
            if self.error.is_none()
                && let Err(e) = sink.write_all(&self.bytes)
            {
                self.error = Some(e);
            }
            self.bytes.clear();
        }
    }

    /// Hand the rest to the sink; the first error of any write.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.flush_buffer();
        self.error.map_or(Ok(()), Err)
    }

    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    pub fn signed(&mut self, value: i64) {
        self.varint(((value << 1) ^ (value >> 63)) as u64);
    }

    fn sym(&mut self, sym: Sym) {
        self.varint(if sym == NO_SYM { 0 } else { u64::from(sym) + 1 });
    }

    pub fn text(&mut self, text: &str) {
        self.varint(text.len() as u64);
        self.bytes.extend_from_slice(text.as_bytes());
    }
}

/// Reader of the layout's integers, from a byte slice or a stream (a capped gzip decoder),
/// holding only a window of it; each read fails, naming what it read, past the end.
pub struct Reader<'a> {
    source: Box<dyn Read + 'a>,
    /// The window: bytes read from the source, `at` the next unread one; for a slice, the
    /// slice itself (read in place, never copied).
    window: Cow<'a, [u8]>,
    at: usize,
    /// Bytes of the source before the window.
    before: u64,
    /// The most bytes the whole input can hold (exact for a slice; for a stream, what its
    /// compressed size can inflate to): a count of more items than that is refused.
    bound: u64,
    ended: bool,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("position", &self.position())
            .field("bound", &self.bound)
            .finish()
    }
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader {
            source: Box::new(std::io::empty()),
            window: Cow::Borrowed(bytes),
            at: 0,
            before: 0,
            bound: bytes.len() as u64,
            ended: true,
        }
    }

    /// A reader of `source`, which holds at most `bound` bytes.
    pub fn streaming(source: impl Read + 'a, bound: u64) -> Reader<'a> {
        Reader {
            source: Box::new(source),
            window: Cow::Owned(Vec::with_capacity(CHUNK)),
            at: 0,
            before: 0,
            bound,
            ended: false,
        }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> u64 {
        self.before + self.at as u64
    }

    /// At least `n` unread bytes in the window, unless the source ends first (then all it
    /// had). A failure of the source (a damaged gzip stream, the cap) is an error.
    fn fill(&mut self, n: usize) -> anyhow::Result<()> {
        if self.window.len() - self.at >= n || self.ended {
            return Ok(());
        }
        self.before += self.at as u64;
        let window = self.window.to_mut();
        window.drain(..self.at);
        self.at = 0;
        let want = n.max(CHUNK);
        while window.len() < want {
            let have = window.len();
            window.resize(want, 0);
            let read = loop {
                match self.source.read(&mut window[have..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            match read {
                Ok(0) => {
                    window.truncate(have);
                    self.ended = true;
                    break;
                }
                Ok(read) => window.truncate(have + read),
                Err(e) => {
                    window.truncate(have);
                    anyhow::bail!(
                        "the saved state cannot be read past byte {}: {e}",
                        self.before + have as u64
                    );
                }
            }
        }
        Ok(())
    }

    /// The next `n` bytes (fewer if the input ends first), not consumed.
    pub fn peek(&mut self, n: usize) -> anyhow::Result<&[u8]> {
        self.fill(n)?;
        let end = self.window.len().min(self.at + n);
        Ok(&self.window[self.at..end])
    }

    /// The rest of the input, whole (a layout-1 state, read once to be migrated).
    pub fn read_to_end(mut self) -> anyhow::Result<Vec<u8>> {
        let mut rest = self.window[self.at..].to_vec();
        if !self.ended {
            self.source
                .read_to_end(&mut rest)
                .map_err(|e| anyhow::anyhow!("the saved state cannot be read to its end: {e}"))?;
        }
        Ok(rest)
    }

    /// Whether the input is read to its end (for a gzip stream: its checksum checked).
    pub fn is_done(&mut self) -> anyhow::Result<bool> {
        self.fill(1)?;
        Ok(self.at == self.window.len())
    }

    fn truncated(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "the saved state is cut short at byte {} ({what})",
            self.position()
        )
    }

    /// Inlined for the one-byte numbers most of the state is (counts, gaps, lengths, most
    /// symbols); longer ones are read out of line.
    #[inline(always)]
    pub fn varint(&mut self, what: &str) -> anyhow::Result<u64> {
        if let Some(&byte) = self.window.get(self.at)
            && byte < 0x80
        {
            self.at += 1;
            return Ok(u64::from(byte));
        }
        self.varint_long(what)
    }

    #[inline(never)]
    fn varint_long(&mut self, what: &str) -> anyhow::Result<u64> {
        // Most numbers are read here, with the longest a number can be already in the window.
        if let Some(ahead) = self.window.get(self.at..self.at + 10) {
            let mut value = 0u64;
            for (i, byte) in ahead.iter().enumerate() {
                value |= u64::from(byte & 0x7f) << (7 * i);
                if byte & 0x80 == 0 {
                    self.at += i + 1;
                    return Ok(value);
                }
            }
        }
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte(what)?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        anyhow::bail!(
            "the saved state holds a malformed number at byte {} ({what})",
            self.position()
        )
    }

    pub fn signed(&mut self, what: &str) -> anyhow::Result<i64> {
        let raw = self.varint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A count of items each at least `min_bytes` long: more than the rest of the input can
    /// hold is refused before anything is allocated for them.
    pub fn count(&mut self, what: &str, min_bytes: usize) -> anyhow::Result<usize> {
        let n = self.varint(what)?;
        // `n * min_bytes <= rest`, not `n <= rest / min_bytes`: the same answer without a
        // division for each of the millions of tallies a state holds.
        let rest = self.bound.saturating_sub(self.position());
        match usize::try_from(n) {
            Ok(n) if (n as u64).saturating_mul(min_bytes.max(1) as u64) <= rest => Ok(n),
            _ => Err(self.truncated(what)),
        }
    }

    /// Room to reserve for `n` counted items: all of them, up to `RESERVE_CAP`.
    pub fn reservable(n: usize) -> usize {
        n.min(RESERVE_CAP)
    }

    pub fn take(&mut self, n: usize, what: &str) -> anyhow::Result<&[u8]> {
        self.fill(n)?;
        if self.window.len() - self.at < n {
            return Err(self.truncated(what));
        }
        let taken = &self.window[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    pub fn text(&mut self, what: &str) -> anyhow::Result<&str> {
        let n = self.count(what, 1)?;
        let bytes = self.take(n, what)?;
        std::str::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!("the saved state holds a string that is not UTF-8 ({what})")
        })
    }

    fn byte(&mut self, what: &str) -> anyhow::Result<u8> {
        if self.at < self.window.len() {
            self.at += 1;
            return Ok(self.window[self.at - 1]);
        }
        Ok(self.take(1, what)?[0])
    }
}

impl Aggregator {
    /// Append the aggregator's saved form (layout 3) to `out`. Only strings still referenced
    /// are written. The bytes depend on what is counted, not on the order it was counted in
    /// (nor on a restore in between): series in `SeriesKey` order, strings numbered by first
    /// use in that order, coverage by name, IDs ascending within their day.
    pub fn write_saved(&self, out: &mut Writer<'_>) {
        let strings = self.symbols.strings();
        let series = self.series_in_order();
        let text = |sym: Sym| strings.get(sym).unwrap_or_default();
        let mut coverage: Vec<(&(Sym, Sym), &Minute)> = self.coverage.iter().collect();
        coverage.sort_unstable_by(|((a1, r1), _), ((a2, r2), _)| {
            (text(*a1), text(*r1)).cmp(&(text(*a2), text(*r2)))
        });
        let mut table = StringsOut::default();
        for (id, data) in &series {
            id.symbols().into_iter().for_each(|sym| table.keep(sym));
            data.each_symbol(|sym| table.keep(sym));
        }
        for ((account, region), _) in &coverage {
            table.keep(*account);
            table.keep(*region);
        }
        let mut new = |sym: Sym| table.new_sym(sym);
        if !out.is_streaming() {
            // Room for the whole form at once (about 10 bytes a cell, 22 an ID), rather than
            // doubling into twice what it needs. (A state is saved streaming, never whole.)
            let cells: usize = series.iter().map(|(_, data)| data.len()).sum();
            let ids = self.seen.len();
            let text_bytes: usize = table.kept.iter().map(|sym| strings[*sym].len() + 2).sum();
            out.bytes.reserve(
                text_bytes + series.len() * 8 + cells * 10 + ids * 12 + coverage.len() * 8 + 64,
            );
        }
        table.write(out, strings);
        out.varint(series.len() as u64);
        for (id, data) in series {
            write_series_id(out, id, &mut new);
            let data = data.whole();
            out.varint(data.minutes.len() as u64);
            let mut previous = None;
            for (minute, cell) in data.minutes.iter().zip(&data.cells) {
                match previous {
                    None => out.signed(minute.0),
                    Some(Minute(p)) => out.varint((minute.0 - p) as u64),
                }
                previous = Some(*minute);
                write_cell(out, cell.count, cell.tallies(&data.spills), &mut new);
                out.spill();
            }
        }
        out.varint(coverage.len() as u64);
        for ((account, region), minute) in coverage {
            out.sym(new(*account));
            out.sym(new(*region));
            out.signed(minute.0);
        }
        self.write_saved_ids(out);
    }

    /// The event IDs' part of layout 3 (see the module doc).
    fn write_saved_ids(&self, out: &mut Writer<'_>) {
        out.varint(self.seen.days().count() as u64);
        for (day, ids) in self.seen.days() {
            out.signed(day);
            write_ids(out, Some(ids));
        }
    }

    /// An aggregator holding what `write_saved` wrote (`layout` 3), or layout 2's form of it
    /// (its event IDs hashed as they are read).
    pub fn read_saved(
        input: &mut Reader<'_>,
        layout: u32,
        excluded: IdentityFilter,
    ) -> anyhow::Result<Aggregator> {
        anyhow::ensure!(
            layout == 2 || layout == SAVED_LAYOUT,
            "the counts of layout {layout} cannot be read"
        );
        let mut aggregator = Aggregator::with_excluded_identities(excluded);
        let strings = SavedStrings::read(input, &mut aggregator.symbols)?;
        let sym = |input: &mut Reader<'_>, what: &str| strings.sym(input, what);
        let series = input.count("the number of series", 7)?;
        aggregator.series.reserve(Reader::reservable(series));
        let mut parts = CellParts::default();
        for _ in 0..series {
            let id = strings.series_id(input)?;
            let cells = input.count("a series' minute count", 6)?;
            let mut data = Minutes::default();
            data.minutes.reserve_exact(Reader::reservable(cells));
            data.cells.reserve_exact(Reader::reservable(cells));
            for _ in 0..cells {
                let minute = match data.minutes.last() {
                    None => Minute(input.signed("a minute")?),
                    Some(Minute(p)) => {
                        let gap = i64::try_from(input.varint("a minute gap")?)?;
                        anyhow::ensure!(gap > 0, "the saved state holds minutes out of order");
                        Minute(p + gap)
                    }
                };
                read_cell(input, &sym, &mut parts)?;
                data.push(minute, &parts);
            }
            if (aggregator.series)
                .insert(id, SeriesMinutes::unpacked_from(data))
                .is_some()
            {
                anyhow::bail!("the saved state holds a series twice");
            }
        }
        let coverage = input.count("the coverage count", 3)?;
        for _ in 0..coverage {
            let account = sym(input, "a coverage account")?;
            let region = sym(input, "a coverage region")?;
            let minute = Minute(input.signed("a coverage minute")?);
            aggregator.coverage.insert((account, region), minute);
        }
        let days = input.count("the number of ID days", 2)?;
        for _ in 0..days {
            let day = input.signed("an ID day")?;
            let ids = match layout {
                2 => read_ids_layout_2(input)?,
                _ => read_ids(input)?,
            };
            aggregator.seen.restore_day(day, ids)?;
        }
        Ok(aggregator)
    }
}

/// What changed in the counts since they were last saved, or loaded, as day segments (state
/// layouts 4 and 5): the UTC days a save must write again, and from which day on the segments
/// saved before stay valid.
#[derive(Debug, Default, Clone)]
pub(super) struct Unsaved {
    /// Whether the counts are those of the last segments saved or loaded but for `days`;
    /// `false` (a new aggregator, or one read from a single-file layout): every day is unsaved.
    tracked: bool,
    /// Days (since the epoch) where a cell or an event ID was added, or that were pruned in part.
    days: BTreeSet<i64>,
    /// The day last added to `days` (most events of an object fall in one day).
    last: Option<i64>,
    /// Days whose event IDs were forgotten (`Aggregator::forget_ids_before`): written again,
    /// without them; their cells are those saved unless the day is also in `days`.
    ids_forgotten: BTreeSet<i64>,
    /// The latest minute pruned before (the most of them): the segments saved for the days
    /// before its day are gone whole.
    pruned_before: Option<Minute>,
}

impl Unsaved {
    /// Something was counted (or an event ID remembered) at `minute`.
    pub(super) fn note(&mut self, minute: Minute) {
        let day = minute.day_number();
        if self.last != Some(day) {
            self.days.insert(day);
            self.last = Some(day);
        }
    }

    /// The event IDs of `day` were forgotten, and nothing else of the day changed.
    pub(super) fn ids_forgotten(&mut self, day: i64) {
        self.ids_forgotten.insert(day);
    }

    /// Everything before `minute` was forgotten.
    pub(super) fn pruned(&mut self, minute: Minute) {
        if minute.0.rem_euclid(MINUTES_PER_DAY) != 0 {
            self.note(minute);
        }
        self.pruned_before = Some(self.pruned_before.map_or(minute, |m| m.max(minute)));
    }
}

/// The series directory of a state being loaded (`Aggregator::read_directory`): each series
/// in key order; from layout 5 on, how many cells each series had when saved (`cells`, beside
/// `series`; empty when the directory does not say), checked against the segments' size; and
/// the listed series' blocks of each day read, stitched into their packed minutes once every
/// day is read (`finish_loading`).
#[derive(Debug, Default)]
pub(super) struct Loading {
    series: Vec<SeriesId>,
    cells: Vec<u32>,
    days: Vec<DayBlocks>,
    /// One series' cells of the day being read, packed as they are read.
    block: DayBlock,
}

/// The fewest bytes a cell takes in a day segment (its minute, count, three tally lengths and
/// resource byte): a directory that counts more cells than its segments hold at this size is
/// damaged, and its counts are not used to size anything.
const MIN_CELL_BYTES: u64 = 6;

/// What a save of day segments writes (`Aggregator::save_plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavePlan {
    /// The days to write again, ascending (a day left empty gets no segment).
    pub write: Vec<i64>,
    /// The segments saved before stay valid for the other days from this one on; `None`: none
    /// of them does (every day with counts is in `write`).
    pub keep_from: Option<i64>,
    /// The days of `write` whose cells are those of their segment saved before: only their
    /// event IDs changed (were forgotten), so that segment's cells member can be kept as it is
    /// (`state::encode_segment_keeping_cells`), the bytes encoding them would give.
    pub cells_kept: Vec<i64>,
}

/// The aggregator's series in key order, for writing day segments one at a time
/// (`Aggregator::day_segments`).
pub struct DaySegments<'a> {
    aggregator: &'a Aggregator,
    series: Vec<(&'a SeriesId, &'a SeriesMinutes)>,
}

impl DaySegments<'_> {
    /// Append the body of `day`'s segment (segment layout 5) in its two parts: the day's event
    /// IDs packed (`write_packed_ids`) to `ids`, and the strings its series and cells name, the
    /// series with cells in the day and those cells to `cells`. Returns whether the day holds
    /// anything (if not, what was written is of no use). The bytes depend only on the day's
    /// counts: series in key order, strings numbered by first use, IDs ascending.
    pub fn write(&self, day: i64, ids: &mut Writer<'_>, cells: &mut Writer<'_>) -> bool {
        let day_ids = self.aggregator.seen.day(day);
        if !self.write_cells(day, day_ids, cells) {
            return false;
        }
        write_packed_ids(ids, day_ids);
        true
    }

    /// Append `day`'s event IDs, the first part of its segment body (see `write`), to `ids`;
    /// whether it holds any.
    pub fn write_ids(&self, day: i64, ids: &mut Writer<'_>) -> bool {
        let day_ids = self.aggregator.seen.day(day);
        write_packed_ids(ids, day_ids);
        day_ids.is_some_and(|ids| !ids.is_empty())
    }

    /// The cells part of the body of a day with no series (see `write`): it has a segment only
    /// when it holds event IDs.
    pub fn no_cells() -> Vec<u8> {
        let mut out = Writer::default();
        StringsOut::default().write(&mut out, &Strings::default());
        out.varint(0);
        out.spill();
        out.bytes
    }

    /// The body of `day`'s segment as layout 4 wrote it (the cells, then the IDs as gaps):
    /// for the migration tests.
    #[cfg(test)]
    pub fn write_layout_4(&self, day: i64, out: &mut Writer<'_>) -> bool {
        let ids = self.aggregator.seen.day(day);
        if !self.write_cells(day, ids, out) {
            return false;
        }
        write_ids(out, ids);
        true
    }

    /// The strings, series and cells of `day` (both layouts); whether the day holds anything,
    /// cells or `ids`.
    fn write_cells(&self, day: i64, ids: Option<&DayIds>, out: &mut Writer<'_>) -> bool {
        let series = &self.series;
        let in_day: Vec<(&SeriesId, &SeriesMinutes)> = (series.iter().enumerate())
            .filter_map(|(at, (id, data))| {
                // Each series' tables, and their minutes, are allocations of their own: those a
                // few series ahead are fetched into the cache while these are read (waiting for
                // them was most of this pass).
                if let Some((key, ahead)) = series.get(at + 8) {
                    prefetch(*key as *const SeriesId);
                    prefetch(*ahead as *const SeriesMinutes);
                }
                if let Some((_, ahead)) = series.get(at + 4) {
                    ahead.prefetch();
                }
                data.holds_days(day..day + 1).then_some((*id, *data))
            })
            .collect();
        if in_day.is_empty() && ids.is_none_or(|ids| ids.is_empty()) {
            return false;
        }
        // The series and cells are written first, numbering each string at its first use as
        // they go (one pass over the cells, not one to number them and one to write them);
        // then the table, moved before them in place (a copy of the day's cells beside them
        // was most of a save's peak memory).
        let start = out.bytes.len();
        let mut table = StringsOut::default();
        let body = &mut *out;
        let mut new = |sym: Sym| table.number(sym);
        body.varint(in_day.len() as u64);
        let mut scratch = Minutes::default();
        for (at, &(id, data)) in in_day.iter().enumerate() {
            if let Some((key, ahead)) = in_day.get(at + 2) {
                prefetch(*key as *const SeriesId);
                ahead.prefetch();
            }
            let (minutes, cells, spills) = data.span_in(day..day + 1, &mut scratch);
            write_series_id(body, id, &mut new);
            body.varint(minutes.len() as u64);
            let mut previous = None;
            for (minute, cell) in minutes.iter().zip(cells) {
                match previous {
                    None => body.signed(minute.0),
                    Some(Minute(p)) => body.varint((minute.0 - p) as u64),
                }
                previous = Some(*minute);
                write_cell(body, cell.count, cell.tallies(spills), &mut new);
            }
        }
        let mut strings = Writer::default();
        table.write(&mut strings, self.aggregator.symbols.strings());
        out.bytes.extend_from_slice(&strings.bytes);
        out.bytes[start..].rotate_right(strings.bytes.len());
        out.spill();
        true
    }
}

impl DaySegments<'_> {
    /// Append the series directory of the state's manifest to `out`: the strings the series
    /// keys name (count, then each), then each series' key (count, then the five key symbols
    /// and the data flag byte), in key order, each followed by its number of cells when
    /// `with_cells` (layout 5; layout 4 had none). Loading finds each day's series by walking it
    /// in step with the day's (`Aggregator::read_directory`), not by a lookup each.
    pub fn write_directory(&self, out: &mut Writer<'_>, with_cells: bool) {
        // Written beside the table, numbering strings as they come (see `write_cells`).
        let mut table = StringsOut::default();
        let mut body = Writer::default();
        body.varint(self.series.len() as u64);
        for (at, (id, data)) in self.series.iter().enumerate() {
            if let Some((key, ahead)) = self.series.get(at + 8) {
                prefetch(*key as *const SeriesId);
                prefetch(*ahead as *const SeriesMinutes);
            }
            // Counting the cells walks the packed bytes' block headers, an allocation a series.
            if let Some((_, ahead)) = self.series.get(at + 4).filter(|_| with_cells) {
                ahead.prefetch();
            }
            write_series_id(&mut body, id, &mut |sym| table.number(sym));
            if with_cells {
                body.varint(data.len() as u64);
            }
        }
        table.write(out, self.aggregator.symbols.strings());
        out.bytes.extend_from_slice(&body.bytes);
        out.spill();
    }
}

impl Aggregator {
    /// Read the series directory `DaySegments::write_directory` wrote, for the days read next
    /// (`read_day`): a day's series are found by walking the directory in step with them (both
    /// in key order), not looked up, and join the counts once every day is read
    /// (`finish_loading`).
    ///
    /// `with_cells` (layout 5): each key is followed by the series' number of cells, kept and
    /// checked (`check_directory_cells`, given what the segments can hold before any day is
    /// read), so a damaged manifest is an error.
    pub fn read_directory(
        &mut self,
        input: &mut Reader<'_>,
        with_cells: bool,
    ) -> anyhow::Result<()> {
        let strings = SavedStrings::read(input, &mut self.symbols)?;
        let series = input.count("the number of series", 6)?;
        self.loading.series.reserve(Reader::reservable(series));
        if with_cells {
            self.loading.cells.reserve(Reader::reservable(series));
        }
        for _ in 0..series {
            let id = strings.series_id(input)?;
            self.loading.series.push(id);
            if with_cells {
                let cells = input.varint("a series' cell count")?;
                self.loading
                    .cells
                    .push(u32::try_from(cells).unwrap_or(u32::MAX));
            }
        }
        Ok(())
    }

    /// The directory's cell counts against what the day segments about to be read can hold
    /// (`inflated_bytes`, the sum of their uncompressed sizes): counts that cannot be right are
    /// an error, so a damaged manifest never sizes a table past what its segments can fill.
    pub fn check_directory_cells(&self, inflated_bytes: u64) -> anyhow::Result<()> {
        let counted: u64 = self.loading.cells.iter().map(|n| u64::from(*n)).sum();
        anyhow::ensure!(
            counted <= inflated_bytes / MIN_CELL_BYTES,
            "the saved state's series directory counts {counted} cells, more than its day \
             segments ({inflated_bytes} bytes) can hold"
        );
        Ok(())
    }

    /// After the days are read: the series read in the directory's order join the counts,
    /// each series' days stitched into its packed minutes (a series the directory named but no
    /// day held, a state whose parts disagree, is dropped); the counts are now those of the
    /// state (`mark_saved`).
    pub fn finish_loading(&mut self) -> anyhow::Result<()> {
        let loading = std::mem::take(&mut self.loading);
        let mut days = Stitcher::new(loading.days);
        self.series.reserve(loading.series.len());
        for (place, id) in loading.series.into_iter().enumerate() {
            let data = days.series(place);
            if data.is_empty() {
                continue;
            }
            if self.series.insert(id, data).is_some() {
                anyhow::bail!("the saved state's series directory names a series twice");
            }
        }
        self.mark_saved();
        Ok(())
    }

    /// The series in key order, to write day segments from.
    pub fn day_segments(&self) -> DaySegments<'_> {
        DaySegments {
            aggregator: self,
            series: self.series_in_order(),
        }
    }

    /// Which days a save must write (see `Unsaved`).
    pub fn save_plan(&self) -> SavePlan {
        if !self.unsaved.tracked {
            return SavePlan {
                write: self.days().into_iter().collect(),
                keep_from: None,
                cells_kept: Vec::new(),
            };
        }
        let unsaved = &self.unsaved;
        let first = unsaved.pruned_before.map_or(i64::MIN, Minute::day_number);
        // Every day noted, also one before the prune (counted after it: a day with nothing
        // left gets no segment). A day pruned whole or in part has lost cells: it is noted, or
        // before `first`.
        let cells_kept = (unsaved.ids_forgotten.iter().copied())
            .filter(|day| *day >= first && !unsaved.days.contains(day))
            .collect();
        SavePlan {
            write: unsaved
                .days
                .union(&unsaved.ids_forgotten)
                .copied()
                .collect(),
            keep_from: Some(first),
            cells_kept,
        }
    }

    /// The days holding a cell or an event ID.
    pub fn days(&self) -> BTreeSet<i64> {
        let mut days: BTreeSet<i64> = self
            .seen
            .days()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(day, _)| day)
            .collect();
        for data in self.series.values() {
            data.each_day(|day| {
                days.insert(day);
            });
        }
        days
    }

    /// The counts are now those of the segments just saved, or loaded.
    pub fn mark_saved(&mut self) {
        self.unsaved = Unsaved {
            tracked: true,
            ..Unsaved::default()
        };
    }

    /// Append the coverage (each account and region's first minute) to `out`: count, then
    /// (account, region, minute), the names spelled out, in name order.
    pub fn write_coverage(&self, out: &mut Writer<'_>) {
        let strings = self.symbols.strings();
        let text = |sym: Sym| strings.get(sym).unwrap_or_default();
        let mut coverage: Vec<(&str, &str, Minute)> = self
            .coverage
            .iter()
            .map(|((account, region), minute)| (text(*account), text(*region), *minute))
            .collect();
        coverage.sort_unstable();
        out.varint(coverage.len() as u64);
        for (account, region, minute) in coverage {
            out.text(account);
            out.text(region);
            out.signed(minute.0);
        }
    }

    /// Read the coverage `write_coverage` wrote.
    pub fn read_coverage(&mut self, input: &mut Reader<'_>) -> anyhow::Result<()> {
        let n = input.count("the coverage count", 3)?;
        for _ in 0..n {
            let account = self.symbols.intern(input.text("a coverage account")?);
            let region = self.symbols.intern(input.text("a coverage region")?);
            let minute = Minute(input.signed("a coverage minute")?);
            if self.coverage.insert((account, region), minute).is_some() {
                anyhow::bail!("the saved state holds an account and region's coverage twice");
            }
        }
        Ok(())
    }

    /// Add `day`'s segment body of layout 4 (its cells, then its IDs as gaps) to the counts.
    /// Days are read in ascending order: each series' cells are appended after those of the
    /// days before.
    pub fn read_day(&mut self, day: i64, input: &mut Reader<'_>) -> anyhow::Result<()> {
        self.read_day_cells(day, input)?;
        self.restore_ids(day, read_ids(input)?)
    }

    /// Add `day`'s segment body of layout 5 (`DaySegments::write`: its IDs packed, then its
    /// cells) to the counts, days in ascending order as `read_day`.
    pub fn read_day_packed(&mut self, day: i64, input: &mut Reader<'_>) -> anyhow::Result<()> {
        let ids = read_packed_ids(input)?;
        self.restore_ids(day, ids)?;
        self.read_day_cells(day, input)
    }

    fn restore_ids(&mut self, day: i64, ids: DayIds) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.seen.restore_day(day, ids)
    }

    /// The strings, series and cells of a day's segment body (both layouts). The cells are
    /// packed as they are read (`DayBlock`), a loaded state held packed day by day as a run
    /// that counted it would have left it, so loading never holds the window unpacked: for the
    /// series of a directory, kept aside per day until every day is read (`finish_loading`).
    fn read_day_cells(&mut self, day: i64, input: &mut Reader<'_>) -> anyhow::Result<()> {
        let (from, to) = (
            Minute::start_of_day_number(day),
            Minute::start_of_day_number(day + 1),
        );
        let strings = SavedStrings::read(input, &mut self.symbols)?;
        let sym = |input: &mut Reader<'_>, what: &str| strings.sym(input, what);
        let series = input.count("the number of series", 7)?;
        let listed = !self.loading.series.is_empty();
        if listed {
            anyhow::ensure!(
                self.loading.days.last().is_none_or(|read| read.day() < day),
                "the saved state holds a day twice, or its days out of order"
            );
            self.loading.days.push(DayBlocks::new(day));
        }
        let mut block = std::mem::take(&mut self.loading.block);
        let mut cursor = 0;
        let mut parts = CellParts::default();
        for _ in 0..series {
            let id = strings.series_id(input)?;
            let cells = input.count("a series' minute count", 6)?;
            anyhow::ensure!(cells > 0, "the saved state holds a series without minutes");
            // The directory and the day both list their series in key order, each once.
            let place = if listed {
                let listed = &self.loading.series;
                while listed.get(cursor).is_some_and(|listed| *listed != id) {
                    cursor += 1;
                }
                anyhow::ensure!(
                    cursor < listed.len(),
                    "the saved state holds a series in a day that its series directory does \
                     not list (or not in the same order, or twice)"
                );
                cursor += 1;
                Some(cursor - 1)
            } else {
                None
            };
            let held_until = match place {
                Some(_) => None,
                None => self.series.get(&id).and_then(SeriesMinutes::last_minute),
            };
            block.start(day);
            let mut previous: Option<Minute> = None;
            for _ in 0..cells {
                let minute = match previous {
                    None => Minute(input.signed("a minute")?),
                    Some(Minute(p)) => {
                        let gap = i64::try_from(input.varint("a minute gap")?)?;
                        anyhow::ensure!(gap > 0, "the saved state holds minutes out of order");
                        Minute(p.saturating_add(gap))
                    }
                };
                anyhow::ensure!(
                    minute >= from && minute < to,
                    "the saved state holds a minute outside its day"
                );
                anyhow::ensure!(
                    held_until.is_none_or(|last| last < minute),
                    "the saved state holds a series' minutes out of order (or a series twice)"
                );
                previous = Some(minute);
                if read_plain_cell(input, &strings, &mut parts).is_none() {
                    read_cell(input, &sym, &mut parts)?;
                }
                block.push(minute, &parts);
            }
            match (place, self.loading.days.last_mut()) {
                (Some(place), Some(read)) => read.add(place, &block),
                _ => self.series.entry(id).or_default().append_day(&block),
            }
        }
        self.loading.block = block;
        Ok(())
    }
}

/// Ask the CPU to fetch the cache line at `at` (it need not be readable: a hint, never a read).
#[inline(always)]
pub(super) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing the program sees, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// A number of at most three bytes at `bytes[*at..]` (past it after), without a check that
/// names anything: `None` if longer or cut short.
#[inline(always)]
fn small_number(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0;
    for shift in [0, 7, 14] {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// Most cells read in one go, into `parts`: a count and tallies of at most one value counted
/// as often as the cell, no resources (what `write_cell` writes for a cell whose values were
/// all the same in its minute), each number at most three bytes, each symbol in the table.
/// `None`, with nothing read, for any other cell: `read_cell` reads it (and names what is wrong
/// with it), so both read the same cells the same way.
#[inline]
fn read_plain_cell(
    input: &mut Reader<'_>,
    strings: &SavedStrings,
    parts: &mut CellParts,
) -> Option<()> {
    let bytes = input.window.get(input.at..)?;
    let mut at = 0;
    let count = small_number(bytes, &mut at)?;
    parts.clear();
    parts.count = count as u32;
    for entries in &mut parts.tallies {
        match *bytes.get(at)? {
            0 => at += 1,
            1 => {
                at += 1;
                let value = match small_number(bytes, &mut at)? {
                    0 => NO_SYM,
                    n => *strings.0.get(n as usize - 1)?,
                };
                if small_number(bytes, &mut at)? != count {
                    return None;
                }
                entries.push((value, count as u32));
            }
            _ => return None,
        }
    }
    if *bytes.get(at)? != 0 {
        return None;
    }
    input.at += at + 1;
    Some(())
}

/// One cell after its minute: its count, its identity, user-agent and error-code tallies, and
/// its resource tally behind a presence byte (symbols renumbered by `new`).
fn write_cell(
    out: &mut Writer<'_>,
    count: u32,
    tallies: Tallies<'_>,
    new: &mut impl FnMut(Sym) -> Sym,
) {
    let mut tally = |out: &mut Writer, tally: Tally| {
        out.varint(tally.len() as u64);
        for (sym, n) in tally.iter() {
            out.sym(new(sym));
            out.varint(u64::from(n));
        }
    };
    out.varint(u64::from(count));
    tally(out, tallies.identities);
    tally(out, tallies.user_agents);
    tally(out, tallies.error_codes);
    match tallies.resources {
        None => out.bytes.push(0),
        Some(resources) => {
            out.bytes.push(1);
            tally(out, resources);
        }
    }
}

/// A saved string table, interned: the symbol each of its positions stands for.
struct SavedStrings(Vec<Sym>);

impl SavedStrings {
    /// The table (its count, then each string) interned into `symbols`.
    fn read(input: &mut Reader<'_>, symbols: &mut Interner) -> anyhow::Result<SavedStrings> {
        let n = input.count("the number of strings", 1)?;
        let mut table = Vec::with_capacity(Reader::reservable(n));
        for _ in 0..n {
            table.push(symbols.intern(input.text("a string")?));
        }
        Ok(SavedStrings(table))
    }

    /// A symbol as written (`sym + 1`, `0` for `NO_SYM`), checked against the table.
    fn sym(&self, input: &mut Reader<'_>, what: &str) -> anyhow::Result<Sym> {
        match input.varint(what)? {
            0 => Ok(NO_SYM),
            n => self.0.get((n - 1) as usize).copied().ok_or_else(|| {
                anyhow::anyhow!(
                    "the saved state refers to string {} ({what}), but holds only {}",
                    n - 1,
                    self.0.len()
                )
            }),
        }
    }

    /// A series' key as `write_series_id` wrote it.
    fn series_id(&self, input: &mut Reader<'_>) -> anyhow::Result<SeriesId> {
        let mut key = [NO_SYM; 5];
        for slot in &mut key {
            *slot = self.sym(input, "a series key")?;
        }
        let [account, region, event_source, event_name, error_code] = key;
        Ok(SeriesId {
            account,
            region,
            event_source,
            event_name,
            error_code,
            data: input.byte("a series' data flag")? != 0,
        })
    }
}

/// The strings a saved table names, numbered by first use (`keep` each, then `write` the table
/// and each symbol as `new_sym` of it), so the bytes follow what is counted, not the order the
/// aggregator's own table was filled in.
#[derive(Default)]
struct StringsOut {
    /// Each symbol's number in the table, indexed by the symbol (symbols are dense: an array
    /// lookup, not a hash, for the millions of symbols a day's cells name); `NO_SYM` where not
    /// kept.
    numbers: Vec<Sym>,
    kept: Vec<Sym>,
}

impl StringsOut {
    fn keep(&mut self, sym: Sym) {
        if sym == NO_SYM {
            return;
        }
        let at = sym as usize;
        if at >= self.numbers.len() {
            self.numbers.resize(at + 1, NO_SYM);
        }
        if self.numbers[at] == NO_SYM {
            self.numbers[at] = self.kept.len() as Sym;
            self.kept.push(sym);
        }
    }

    /// `sym`'s number in the table, numbered now if it is not yet kept: for a table written
    /// after what names it. `NO_SYM` stays itself.
    #[inline]
    fn number(&mut self, sym: Sym) -> Sym {
        if sym == NO_SYM {
            return NO_SYM;
        }
        self.keep(sym);
        self.numbers[sym as usize]
    }

    /// `sym`'s number in the table (`keep` it first); `NO_SYM` stays itself.
    fn new_sym(&self, sym: Sym) -> Sym {
        if sym == NO_SYM {
            NO_SYM
        } else {
            let number = self.numbers[sym as usize];
            assert!(number != NO_SYM, "a symbol written before it was kept");
            number
        }
    }

    /// The table: its count, then each string.
    fn write(&self, out: &mut Writer<'_>, strings: &Strings) {
        out.varint(self.kept.len() as u64);
        for sym in &self.kept {
            out.text(&strings[*sym]);
            out.spill();
        }
    }
}

/// A series' key: its five symbols (renumbered by `new`) and its data flag.
fn write_series_id(out: &mut Writer<'_>, id: &SeriesId, new: &mut impl FnMut(Sym) -> Sym) {
    for sym in id.symbols() {
        out.sym(new(sym));
    }
    out.bytes.push(u8::from(id.data));
}

/// One cell as `write_cell` wrote it, into `parts` (cleared first); `sym` reads a symbol.
fn read_cell(
    input: &mut Reader<'_>,
    sym: &impl Fn(&mut Reader<'_>, &str) -> anyhow::Result<Sym>,
    parts: &mut CellParts,
) -> anyhow::Result<()> {
    let tally = |input: &mut Reader<'_>, entries: &mut Vec<(Sym, u32)>| -> anyhow::Result<()> {
        let n = input.count("a tally's length", 2)?;
        entries.reserve(Reader::reservable(n));
        for _ in 0..n {
            let value = sym(input, "a tallied value")?;
            let count = u32::try_from(input.varint("a tallied count")?)?;
            entries.push((value, count));
        }
        Ok(())
    };
    parts.clear();
    parts.count = u32::try_from(input.varint("a count")?)?;
    for entries in &mut parts.tallies {
        tally(input, entries)?;
    }
    parts.has_resources = input.byte("a resource flag")? != 0;
    if parts.has_resources {
        tally(input, &mut parts.resources)?;
    }
    Ok(())
}

/// One day's event IDs in layout 3 and 4: the day's distinct API fingerprints, then the IDs
/// ascending as gaps, each with its minute of the day and its API's position in the list.
fn write_ids(out: &mut Writer<'_>, ids: Option<&DayIds>) {
    let Some(ids) = ids else {
        out.varint(0);
        out.varint(0);
        return;
    };
    let mut apis: Vec<u32> = ids.apis().collect();
    apis.sort_unstable();
    apis.dedup();
    out.varint(apis.len() as u64);
    for api in &apis {
        out.bytes.extend_from_slice(&api.to_le_bytes());
        out.spill();
    }
    out.varint(ids.len() as u64);
    let mut previous = 0;
    for (id, seen) in ids.ascending() {
        out.varint(id - previous);
        previous = id;
        out.varint(u64::from(seen.minute_of_day));
        let api = apis.binary_search(&seen.api).unwrap_or_default();
        out.varint(api as u64);
        out.spill();
    }
}

/// A minute of the day read from a state, checked.
fn minute_of_day(minute: u64) -> anyhow::Result<u16> {
    match u16::try_from(minute) {
        Ok(m) if i64::from(m) < MINUTES_PER_DAY => Ok(m),
        _ => {
            anyhow::bail!("the saved state holds an event minute {minute} past the end of its day")
        }
    }
}

/// One day's event IDs in layout 3: API list, then (hash gap, minute, API position) each.
fn read_ids(input: &mut Reader<'_>) -> anyhow::Result<DayIds> {
    let n = input.count("a day's API count", 4)?;
    let mut apis = Vec::with_capacity(Reader::reservable(n));
    for _ in 0..n {
        apis.push(u32::from_le_bytes(input.take(4, "an API")?.try_into()?));
    }
    let n = input.count("a day's ID count", 3)?;
    let room = Reader::reservable(n);
    let (mut ids, mut minutes, mut day_apis) = (
        Vec::with_capacity(room),
        Vec::with_capacity(room),
        Vec::with_capacity(room),
    );
    let mut id = 0u64;
    for i in 0..n {
        let gap = input.varint("an event ID")?;
        anyhow::ensure!(
            i == 0 || gap > 0,
            "the saved state holds event IDs out of order"
        );
        id = id
            .checked_add(gap)
            .ok_or_else(|| anyhow::anyhow!("the saved state holds event IDs out of order"))?;
        let minute_of_day = minute_of_day(input.varint("an event minute")?)?;
        let api = input.varint("an event API")?;
        let api = usize::try_from(api)
            .ok()
            .and_then(|api| apis.get(api))
            .copied()
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the saved state refers to API {api} of a day, but that day holds only {}",
                    apis.len()
                )
            })?;
        ids.push(id);
        minutes.push(minute_of_day);
        day_apis.push(api);
    }
    Ok(DayIds::frozen(ids, minutes, day_apis))
}

/// One day's event IDs in layout 2: (128-bit ID, minute, API) in 22 bytes each, the IDs hashed.
fn read_ids_layout_2(input: &mut Reader<'_>) -> anyhow::Result<DayIds> {
    let n = input.count("a day's ID count", 22)?;
    let mut ids = Vec::with_capacity(Reader::reservable(n));
    for _ in 0..n {
        let raw = input.take(22, "an event ID")?;
        let id = event_id_hash(u128::from_le_bytes(raw[..16].try_into()?));
        let minute_of_day = minute_of_day(u64::from(u16::from_le_bytes(raw[16..18].try_into()?)))?;
        let api = u32::from_le_bytes(raw[18..22].try_into()?);
        ids.push((id, SeenEvent { minute_of_day, api }));
    }
    Ok(DayIds::from_unsorted(ids))
}

/// One day's event IDs in segment layout 5, in columns of fixed width that are read back without
/// decoding each number and are not compressed (the hashes are random: deflate gained a tenth of
/// their bytes at most of a state's compression and inflation time): the day's distinct API
/// fingerprints ascending (count, then each as 4 bytes little-endian), the ID count, the number of
/// top bits the hashes are grouped by (one byte: 0, 8 or 16, `bucket_bits`) and each group's ID
/// count (2^bits varints, in order), then each hash ascending without its top bits (8 - bits/8
/// bytes, little-endian), each ID's minute of the day (2 bytes little-endian) and each ID's API as
/// a position in the list (1, 2 or 4 bytes, `api_width`), in the hashes' order. About 9 bytes an
/// ID at 350 k IDs a day. These are the columns a frozen day holds (`PackedIds`): written whole,
/// as copies.
fn write_packed_ids(out: &mut Writer<'_>, ids: Option<&DayIds>) {
    let Some(ids) = ids.filter(|ids| !ids.is_empty()) else {
        out.varint(0);
        out.varint(0);
        return;
    };
    let packed = ids.packed_ids();
    out.varint(packed.apis().len() as u64);
    for api in packed.apis() {
        out.bytes.extend_from_slice(&api.to_le_bytes());
    }
    out.varint(packed.len() as u64);
    out.bytes.push(packed.bits() as u8);
    if packed.bits() > 0 {
        for count in packed.group_counts() {
            out.varint(u64::from(count));
        }
    }
    let (low, positions) = (packed.low_bytes(), packed.position_bytes());
    out.bytes
        .reserve(low.len() + packed.len() * 2 + positions.len());
    out.bytes.extend_from_slice(low);
    for minute in packed.minutes() {
        out.bytes.extend_from_slice(&minute.to_le_bytes());
    }
    out.bytes.extend_from_slice(positions);
}

/// One day's event IDs as `write_packed_ids` wrote them, checked (`PackedIds::from_parts`):
/// hashes ascending and distinct, minutes within the day, API positions within the list.
fn read_packed_ids(input: &mut Reader<'_>) -> anyhow::Result<DayIds> {
    let n = input.count("a day's API count", 4)?;
    let mut apis = Vec::with_capacity(Reader::reservable(n));
    for _ in 0..n {
        apis.push(u32::from_le_bytes(input.take(4, "an API")?.try_into()?));
    }
    // 9 bytes an ID at least: 6 of hash, 2 of minute, 1 of API.
    let n = input.count("a day's ID count", 9)?;
    if n == 0 {
        return Ok(DayIds::default());
    }
    let bits = u32::from(input.byte("the IDs' group bits")?);
    anyhow::ensure!(
        matches!(bits, 0 | 8 | 16),
        "the saved state groups event IDs by {bits} bits, not 0, 8 or 16"
    );
    let mut group_counts = Vec::new();
    if bits > 0 {
        group_counts.reserve_exact(1 << bits);
        let mut total = 0u64;
        for _ in 0..1u32 << bits {
            let count = input.varint("an ID group's count")?;
            total = total.saturating_add(count);
            group_counts.push(u32::try_from(count).unwrap_or(u32::MAX));
        }
        anyhow::ensure!(
            total == n as u64,
            "the saved state's ID groups count {total} IDs, not the day's {n}"
        );
    } else {
        group_counts.push(u32::try_from(n).unwrap_or(u32::MAX));
    }
    let (kept, width) = (8 - bits as usize / 8, api_width(apis.len()));
    let columns = input.take(n * (kept + 2 + width), "the event IDs")?;
    let (low, rest) = columns.split_at(n * kept);
    let (minutes, positions) = rest.split_at(n * 2);
    let parts = Parts {
        apis,
        bits,
        group_counts,
        low,
        minutes,
        positions,
    };
    Ok(DayIds::packed(PackedIds::from_parts(parts)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day's IDs packed in columns read back as the same IDs, minutes and APIs, whatever
    /// the number of IDs (each way of grouping the hashes) or of APIs (each width of a
    /// position); damage is an error naming what is wrong.
    #[test]
    fn packed_ids_round_trip_and_damage_is_an_error() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let cases = [
            (0, 1),
            (1, 1),
            (5, 3),
            (700, 20),
            (1000, 300),
            (3000, 70_000),
            (140_000, 200),
        ];
        for (n, apis) in cases {
            let events: Vec<(u64, SeenEvent)> = (0..n)
                .map(|_| {
                    let id = next();
                    let seen = SeenEvent {
                        minute_of_day: (id % 1440) as u16,
                        api: (id >> 7) as u32 % apis + 1,
                    };
                    (id, seen)
                })
                .collect();
            let ids = DayIds::from_unsorted(events);
            let mut out = Writer::default();
            write_packed_ids(&mut out, Some(&ids));
            let mut input = Reader::new(&out.bytes);
            let back = read_packed_ids(&mut input).unwrap();
            assert!(input.is_done().unwrap(), "{n}");
            assert!(back.ascending().eq(ids.ascending()), "{n} IDs, {apis} APIs");
            if n >= 100_000 {
                // 6 bytes of hash, 2 of minute and 1 of API an ID, and 2^16 group counts.
                assert!(out.bytes.len() < n * 10, "{n}: {} bytes", out.bytes.len());
            }
        }
        // The fresh IDs of a day not frozen are written in order with the frozen ones.
        let mut day = DayIds::from_unsorted(vec![(
            9,
            SeenEvent {
                minute_of_day: 1,
                api: 5,
            },
        )]);
        let mut seen = super::super::seen::SeenIds::default();
        for (id, minute) in [(40, 3), (2, 4)] {
            seen.insert(id, Minute(minute), 6);
        }
        seen.restore_day(1, std::mem::take(&mut day)).unwrap();
        let mut out = Writer::default();
        write_packed_ids(&mut out, seen.day(0));
        let back = read_packed_ids(&mut Reader::new(&out.bytes)).unwrap();
        assert_eq!(
            back.ascending()
                .map(|(id, s)| (id, s.minute_of_day))
                .collect::<Vec<_>>(),
            vec![(2, 4), (40, 3)]
        );

        // Three IDs, two APIs, no groups: 2 APIs, 3 IDs, 0 bits, hashes, minutes, positions.
        let bytes = |hashes: [u64; 3], minutes: [u16; 3], positions: [u8; 3], bits: u8| {
            let mut out = vec![2, 7, 0, 0, 0, 9, 0, 0, 0, 3, bits];
            hashes
                .iter()
                .for_each(|h| out.extend_from_slice(&h.to_le_bytes()));
            minutes
                .iter()
                .for_each(|m| out.extend_from_slice(&m.to_le_bytes()));
            out.extend_from_slice(&positions);
            out
        };
        let read = |bytes: &[u8]| {
            read_packed_ids(&mut Reader::new(bytes))
                .map(|ids| ids.len())
                .map_err(|e| format!("{e:#}"))
        };
        assert_eq!(read(&bytes([1, 5, 9], [0, 1439, 3], [0, 1, 0], 0)), Ok(3));
        let whole = bytes([1, 5, 9], [0, 1439, 3], [0, 1, 0], 0);
        let damaged: [(&str, Vec<u8>, &str); 6] = [
            (
                "out of order",
                bytes([1, 9, 5], [0, 1, 3], [0, 1, 0], 0),
                "out of order",
            ),
            (
                "twice",
                bytes([1, 5, 5], [0, 1, 3], [0, 1, 0], 0),
                "out of order",
            ),
            (
                "minute",
                bytes([1, 5, 9], [0, 1440, 3], [0, 1, 0], 0),
                "past the end",
            ),
            (
                "API",
                bytes([1, 5, 9], [0, 1, 3], [0, 2, 0], 0),
                "holds only 2",
            ),
            (
                "bits",
                bytes([1, 5, 9], [0, 1, 3], [0, 1, 0], 3),
                "by 3 bits",
            ),
            ("cut", whole[..whole.len() - 1].to_vec(), "cut short"),
        ];
        for (case, bytes, expected) in damaged {
            let err = read(&bytes).unwrap_err();
            assert!(err.contains(expected), "{case}: {err}");
        }
        // Groups that do not add up to the day's count (388 IDs, 256 empty groups).
        let mut grouped = vec![0, 0b1000_0000 | 4, 0b11, 8];
        grouped.extend(std::iter::repeat_n(0, 256 + 388 * 9));
        let err = read(&grouped).unwrap_err();
        assert!(err.contains("count 0 IDs"), "{err}");
    }

    #[test]
    fn integers_round_trip_and_damage_is_an_error() {
        let mut out = Writer::default();
        let values = [0i64, 1, -1, 63, -64, 1 << 40, i64::MIN, i64::MAX];
        for v in values {
            out.signed(v);
            out.varint(v as u64);
        }
        out.text("héllo");
        let mut input = Reader::new(&out.bytes);
        for v in values {
            assert_eq!(input.signed("s").unwrap(), v, "{v}");
            assert_eq!(input.varint("u").unwrap(), v as u64, "{v}");
        }
        assert_eq!(input.text("t").unwrap(), "héllo");
        assert!(input.is_done().unwrap());
        // A number longer than 10 bytes is malformed, with room after it or without.
        for len in [10, 11, 20] {
            let long = vec![0xffu8; len];
            let err = Reader::new(&long).varint("u").unwrap_err();
            assert!(
                format!("{err:#}").contains("malformed number"),
                "{len}: {err:#}"
            );
        }
        // Cut anywhere, the aggregator's form fails cleanly.
        let mut saved = Writer::default();
        Aggregator::new().write_saved(&mut saved);
        let cut = &saved.bytes[..saved.bytes.len() - 1];
        assert!(
            Aggregator::read_saved(
                &mut Reader::new(cut),
                SAVED_LAYOUT,
                IdentityFilter::default()
            )
            .is_err()
        );
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = Aggregator::read_saved(
            &mut Reader::new(&huge),
            SAVED_LAYOUT,
            IdentityFilter::default(),
        );
        assert!(format!("{:#}", err.unwrap_err()).contains("cut short"));
    }

    /// One cell's bytes, as the module doc spells them: count, the three tallies (length, then
    /// symbol + 1 and count each), and the resource tally behind a presence byte; read back
    /// into the same parts.
    #[test]
    fn a_cell_is_written_as_the_layout_says() {
        let parts = CellParts::of;
        let cases: [(CellParts, &[u8]); 5] = [
            (
                parts(130, [&[(200, 130)], &[], &[(NO_SYM, 130)]], None),
                &[0x82, 1, 1, 0xc9, 1, 0x82, 1, 0, 1, 0, 0x82, 1, 0],
            ),
            (
                parts(3, [&[(1, 3)], &[(2, 3)], &[(NO_SYM, 3)]], None),
                &[3, 1, 2, 3, 1, 3, 3, 1, 0, 3, 0],
            ),
            (
                parts(2, [&[(1, 1), (4, 1)], &[(2, 2)], &[]], Some(&[])),
                &[2, 2, 2, 1, 5, 1, 1, 3, 2, 0, 1, 0],
            ),
            (
                parts(
                    1,
                    [&[(1, 1)], &[(2, 1)], &[(NO_SYM, 1)]],
                    Some(&[(200, 1), (7, 300)]),
                ),
                &[1, 1, 2, 1, 1, 3, 1, 1, 0, 1, 1, 2, 201, 1, 1, 8, 172, 2],
            ),
            (parts(0, [&[], &[], &[]], None), &[0, 0, 0, 0, 0]),
        ];
        for (cell, bytes) in cases {
            let mut data = Minutes::default();
            data.push(Minute(0), &cell);
            let mut out = Writer::default();
            write_cell(
                &mut out,
                cell.count,
                data.cells[0].tallies(&data.spills),
                &mut |s| s,
            );
            assert_eq!(out.bytes, bytes, "{cell:?}");
            let sym = |input: &mut Reader<'_>, what: &str| -> anyhow::Result<Sym> {
                Ok(match input.varint(what)? {
                    0 => NO_SYM,
                    n => (n - 1) as Sym,
                })
            };
            let mut read = parts(9, [&[(5, 5)], &[], &[]], Some(&[(6, 6)]));
            let mut input = Reader::new(&out.bytes);
            read_cell(&mut input, &sym, &mut read).unwrap();
            assert!(input.is_done().unwrap());
            assert_eq!(read, cell);
            // The quick reading takes the cells whose tallies hold one value counted as often
            // as the cell, and reads them the same; it leaves the others untouched.
            let table = SavedStrings((0..300).collect());
            let mut input = Reader::new(&out.bytes);
            let plain = cell.tallies.iter().all(|t| match t.as_slice() {
                [] => true,
                [(_, n)] => *n == cell.count,
                _ => false,
            }) && !cell.has_resources;
            let quick = read_plain_cell(&mut input, &table, &mut read);
            assert_eq!(quick.is_some(), plain, "{cell:?}");
            if plain {
                assert!(input.is_done().unwrap());
                assert_eq!(read, cell);
            } else {
                assert_eq!(input.position(), 0);
            }
        }
    }

    /// Damaged event IDs of layout 3 are errors naming what is wrong.
    #[test]
    fn damaged_event_ids_are_errors() {
        // No strings, series or coverage; one day (0) with the API list [7]; then its IDs as
        // (hash gap, minute of the day, API position).
        let day = |ids: &[(u64, u64, u64)]| {
            let mut out = Writer::default();
            for n in [0, 0, 0, 1, 0, 1] {
                out.varint(n);
            }
            out.bytes.extend_from_slice(&7u32.to_le_bytes());
            out.varint(ids.len() as u64);
            for (gap, minute, api) in ids {
                out.varint(*gap);
                out.varint(*minute);
                out.varint(*api);
            }
            out.bytes
        };
        type Case<'a> = (&'a str, &'a [(u64, u64, u64)], Option<&'a str>);
        let cases: [Case; 5] = [
            ("two IDs", &[(0, 3, 0), (u64::MAX, 1439, 0)], None),
            (
                "the same ID twice",
                &[(5, 0, 0), (0, 1, 0)],
                Some("out of order"),
            ),
            (
                "past the last hash",
                &[(u64::MAX, 0, 0), (1, 1, 0)],
                Some("out of order"),
            ),
            (
                "an API not in the day's list",
                &[(5, 0, 1)],
                Some("API 1 of a day"),
            ),
            (
                "a minute past the day",
                &[(5, 1440, 0)],
                Some("minute 1440"),
            ),
        ];
        for (case, ids, error) in cases {
            let bytes = day(ids);
            let read = Aggregator::read_saved(
                &mut Reader::new(&bytes),
                SAVED_LAYOUT,
                IdentityFilter::default(),
            );
            match (read, error) {
                (Ok(agg), None) => {
                    let mut again = Writer::default();
                    agg.write_saved(&mut again);
                    assert_eq!(again.bytes, bytes, "{case}");
                }
                (Err(e), Some(error)) => assert!(format!("{e:#}").contains(error), "{case}: {e:#}"),
                (Ok(_), Some(_)) => panic!("{case}: read"),
                (Err(e), None) => panic!("{case}: {e:#}"),
            }
        }
    }

    /// An object of one record per (event ID, `YYYY-MM-DDTHH:MM`), one API and identity.
    fn object(records: &[(u32, &str)]) -> crate::decode::DecodedObject {
        use crate::decode::{DecodeOptions, decode_object};
        use crate::model::{DayRange, EventSelection, Window, parse_day};
        let records: Vec<String> = records
            .iter()
            .map(|(id, time)| {
                format!(
                    r#"{{"eventTime":"{time}:10Z","eventSource":"ec2.amazonaws.com",
                    "eventName":"RunInstances","awsRegion":"us-east-1",
                    "recipientAccountId":"123456789012",
                    "eventID":"00000000-0000-0000-0000-{id:012}","readOnly":false,
                    "userAgent":"cli","userIdentity":{{"arn":"arn:aws:iam::1:user/u{id}"}}}}"#
                )
            })
            .collect();
        let options = DecodeOptions {
            window: Window::for_days(DayRange::new(
                parse_day("2019-11-05").unwrap(),
                parse_day("2019-11-09").unwrap(),
            )),
            filter: Default::default(),
            max_object_bytes: 1 << 20,
            selection: EventSelection::default(),
        };
        let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        decode_object(
            json.as_bytes(),
            "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json",
            &options,
        )
        .unwrap()
    }

    fn day_of(date: &str) -> i64 {
        Minute::start_of_day(crate::model::parse_day(date).unwrap()).0 / MINUTES_PER_DAY
    }

    /// The counts written as coverage and one segment a day, and read back.
    fn through_segments(agg: &Aggregator) -> (Aggregator, Vec<Vec<u8>>) {
        let days = agg.day_segments();
        let mut head = Writer::default();
        agg.write_coverage(&mut head);
        days.write_directory(&mut head, true);
        let mut restored = Aggregator::new();
        let mut input = Reader::new(&head.bytes);
        restored.read_coverage(&mut input).unwrap();
        restored.read_directory(&mut input, true).unwrap();
        assert!(input.is_done().unwrap());
        let mut segments = Vec::new();
        for day in agg.days() {
            let (mut ids, mut cells) = (Writer::default(), Writer::default());
            assert!(days.write(day, &mut ids, &mut cells));
            let mut body = ids.bytes;
            body.extend_from_slice(&cells.bytes);
            {
                let mut input = Reader::new(&body);
                restored.read_day_packed(day, &mut input).unwrap();
                assert!(input.is_done().unwrap());
            }
            segments.push(body);
        }
        restored.finish_loading().unwrap();
        (restored, segments)
    }

    /// Day segments hold the counts whole, one day each, and a save plan names the days that
    /// changed since the counts were loaded or saved: where cells or IDs were added, or a day
    /// pruned in part; the days before a prune are dropped whole.
    #[test]
    fn day_segments_round_trip_and_the_plan_follows_the_changes() {
        let (d6, d7, d8) = (
            day_of("2019-11-06"),
            day_of("2019-11-07"),
            day_of("2019-11-08"),
        );
        let mut agg = Aggregator::new();
        agg.add(&object(&[
            (1, "2019-11-06T23:59"),
            (2, "2019-11-07T00:00"),
            (3, "2019-11-07T00:00"),
            (4, "2019-11-08T10:30"),
        ]));
        let all = SavePlan {
            write: vec![d6, d7, d8],
            keep_from: None,
            cells_kept: vec![],
        };
        assert_eq!(agg.save_plan(), all);
        let (mut restored, segments) = through_segments(&agg);
        assert_eq!(restored.to_state(), agg.to_state());
        // Loaded packed, day by day: no series holds an unpacked table, nor does loading.
        assert!((restored.series.values()).all(|data| data.is_packed() && !data.is_empty()));
        assert!(restored.loading.series.is_empty() && restored.loading.days.is_empty());
        // The same counts give the same bytes, whatever the string numbers.
        assert_eq!(through_segments(&restored).1, segments);
        // A day without counts has no segment.
        let mut nothing = Writer::default();
        assert!(
            !agg.day_segments()
                .write(d8 + 1, &mut Writer::default(), &mut nothing)
        );

        let plan = |write: Vec<i64>, keep_from: i64| SavePlan {
            write,
            keep_from: Some(keep_from),
            cells_kept: vec![],
        };
        assert_eq!(restored.save_plan(), plan(vec![], i64::MIN));
        restored.add(&object(&[(5, "2019-11-07T12:00"), (2, "2019-11-07T00:00")]));
        assert_eq!(restored.save_plan(), plan(vec![d7], i64::MIN));
        restored.prune_before(Minute(d7 * MINUTES_PER_DAY));
        assert_eq!(restored.save_plan(), plan(vec![d7], d7));
        restored.mark_saved();
        restored.prune_before(Minute(d8 * MINUTES_PER_DAY + 600));
        assert_eq!(restored.save_plan(), plan(vec![d8], d8));
        // What is left reads back the same from its segments.
        let (again, _) = through_segments(&restored);
        assert_eq!(again.to_state(), restored.to_state());
    }

    /// Forgetting the event IDs of the days before one keeps those days' counts and plans
    /// their segments again, saved without the IDs, their cells as saved (until a cell of the
    /// day changes); a copy of one of their events then counts again, and a copy of a later
    /// day's is still dropped.
    #[test]
    fn forgotten_ids_keep_their_days_counts_and_are_saved_without_them() {
        let (d5, d6, d7) = (
            day_of("2019-11-05"),
            day_of("2019-11-06"),
            day_of("2019-11-07"),
        );
        let mut agg = Aggregator::new();
        agg.add(&object(&[
            (0, "2019-11-05T10:00"),
            (1, "2019-11-06T10:00"),
            (2, "2019-11-07T10:00"),
        ]));
        let (mut restored, _) = through_segments(&agg);
        restored.forget_ids_before(Minute(d7 * MINUTES_PER_DAY));
        let plan = SavePlan {
            write: vec![d5, d6],
            keep_from: Some(i64::MIN),
            cells_kept: vec![d5, d6],
        };
        assert_eq!(restored.save_plan(), plan);
        // A day pruned (whole or in part) has not kept its cells.
        let pruned_before = |minute: Minute| {
            let (mut pruned, _) = through_segments(&agg);
            pruned.forget_ids_before(Minute(d7 * MINUTES_PER_DAY));
            pruned.prune_before(minute);
            pruned.save_plan().cells_kept
        };
        assert!(pruned_before(Minute(d6 * MINUTES_PER_DAY + 60)).is_empty());
        assert_eq!(pruned_before(Minute(d6 * MINUTES_PER_DAY)), [d6]);
        let (kept, forgotten) = (restored.to_state(), agg.to_state());
        assert_eq!(kept.series, forgotten.series);
        assert_eq!(kept.seen.len(), 1);
        assert_eq!(through_segments(&restored).0.to_state(), kept);
        restored.add(&object(&[(1, "2019-11-06T10:00"), (2, "2019-11-07T10:00")]));
        assert_eq!(restored.stats.duplicates, 1);
        assert_eq!(restored.save_plan().cells_kept, [d5]);
        let counts: Vec<u32> = restored.view(Minute(0)).series[0]
            .cells
            .iter()
            .map(|c| c.count)
            .collect();
        assert_eq!(counts, [1, 2, 1]);
    }

    /// Every one-byte change and every cut of a day segment of layout 5 (packed IDs, then cells
    /// of every kind: plain ones, read in one go, and spilled ones) reads as an error or as
    /// counts, never a panic: a state on disk is input like any other.
    #[test]
    fn any_damage_to_a_packed_day_segment_is_read_without_a_panic() {
        let d7 = day_of("2019-11-07");
        let mut agg = Aggregator::new();
        agg.add(&object(&[
            (1, "2019-11-07T10:00"),
            (2, "2019-11-07T10:00"),
            (3, "2019-11-07T10:01"),
            (4, "2019-11-07T23:59"),
            (5, "2019-11-07T00:00"),
        ]));
        let days = agg.day_segments();
        let mut head = Writer::default();
        agg.write_coverage(&mut head);
        days.write_directory(&mut head, true);
        let (mut ids, mut cells) = (Writer::default(), Writer::default());
        assert!(days.write(d7, &mut ids, &mut cells));
        let mut body = ids.bytes;
        body.extend_from_slice(&cells.bytes);
        let read = |segment: &[u8]| {
            let mut restored = Aggregator::new();
            let mut input = Reader::new(&head.bytes);
            restored.read_coverage(&mut input).unwrap();
            restored.read_directory(&mut input, true).unwrap();
            let mut input = Reader::new(segment);
            restored
                .read_day_packed(d7, &mut input)
                .and_then(|()| restored.finish_loading())
                .is_ok()
        };
        assert!(read(&body));
        let mut read_anyway = 0;
        for at in 0..body.len() {
            for flip in [0x01, 0x02, 0x10, 0x80, 0xff] {
                let mut damaged = body.clone();
                damaged[at] ^= flip;
                read_anyway += usize::from(read(&damaged));
            }
            // A segment cut short is always an error.
            assert!(!read(&body[..at]), "cut at {at} of {}", body.len());
        }
        // Most changes are caught (a hash out of order, a minute past the day, a count that
        // does not add up); some read as other counts (another identity's number, say).
        let changes = body.len() * 5;
        assert!(read_anyway < changes / 2, "{read_anyway} of {changes}");
    }

    /// A damaged segment is an error naming what is wrong, never a panic or a partial read.
    #[test]
    fn damaged_day_segments_are_errors() {
        let d7 = day_of("2019-11-07");
        let mut agg = Aggregator::new();
        agg.add(&object(&[(1, "2019-11-07T10:00"), (2, "2019-11-07T10:05")]));
        let mut out = Writer::default();
        assert!(agg.day_segments().write_layout_4(d7, &mut out));
        let bytes = out.bytes;
        let read = |day: i64, bytes: &[u8]| {
            let mut input = Reader::new(bytes);
            Aggregator::new()
                .read_day(day, &mut input)
                .and_then(|()| {
                    anyhow::ensure!(input.is_done()?, "bytes after");
                    Ok(())
                })
                .map_err(|e| format!("{e:#}"))
        };
        assert_eq!(read(d7, &bytes), Ok(()));
        let cases: [(&str, i64, Vec<u8>, &str); 3] = [
            ("another day", d7 + 1, bytes.clone(), "outside its day"),
            (
                "cut short",
                d7,
                bytes[..bytes.len() - 2].to_vec(),
                "cut short",
            ),
            ("empty", d7, Vec::new(), "cut short"),
        ];
        for (case, day, bytes, expected) in cases {
            let err = read(day, &bytes).unwrap_err();
            assert!(err.contains(expected), "{case}: {err}");
        }
        // A day holding a series the directory does not list is refused. The directory lists
        // one series, written by hand (its strings, then the key's symbols and data flag).
        let texts = [
            "123456789012",
            "us-east-1",
            "ec2.amazonaws.com",
            "StopInstances",
        ];
        let mut one_series = Writer::default();
        one_series.varint(4);
        texts.iter().for_each(|text| one_series.text(text));
        for n in [1, 1, 2, 3, 4, 0] {
            one_series.varint(n);
        }
        one_series.bytes.push(0);
        let mut listed = Aggregator::new();
        listed
            .read_directory(&mut Reader::new(&one_series.bytes), false)
            .unwrap();
        let err = listed.read_day(d7, &mut Reader::new(&bytes)).unwrap_err();
        assert!(format!("{err:#}").contains("does not list"), "{err:#}");
        // The same day read twice into one aggregator is refused.
        let mut twice = Aggregator::new();
        twice.read_day(d7, &mut Reader::new(&bytes)).unwrap();
        let err = twice.read_day(d7, &mut Reader::new(&bytes)).unwrap_err();
        assert!(format!("{err:#}").contains("out of order"), "{err:#}");
        // So is it with a directory (whose series are kept aside until every day is read),
        // and so is a day before the one read last.
        let mut directory = Writer::default();
        agg.day_segments().write_directory(&mut directory, true);
        for (first, then) in [(d7, d7), (d7, d7 - 1)] {
            let mut twice = Aggregator::new();
            (twice.read_directory(&mut Reader::new(&directory.bytes), true)).unwrap();
            twice.read_day(first, &mut Reader::new(&bytes)).unwrap();
            let err = twice.read_day(then, &mut Reader::new(&bytes)).unwrap_err();
            assert!(format!("{err:#}").contains("day twice"), "{err:#}");
        }
        // A day naming that listed series twice is refused.
        let mut day = Writer::default();
        day.varint(4);
        texts.iter().for_each(|text| day.text(text));
        day.varint(2);
        for minute in [0, 5] {
            [1, 2, 3, 4, 0].iter().for_each(|n| day.varint(*n));
            day.bytes.push(0);
            day.varint(1);
            day.signed(d7 * MINUTES_PER_DAY + minute);
            day.bytes.extend_from_slice(&[1, 0, 0, 0, 0]);
        }
        write_ids(&mut day, None);
        let mut listed = Aggregator::new();
        (listed.read_directory(&mut Reader::new(&one_series.bytes), false)).unwrap();
        let err = listed
            .read_day(d7, &mut Reader::new(&day.bytes))
            .unwrap_err();
        assert!(format!("{err:#}").contains("twice"), "{err:#}");
    }
}
