//! A series' active minutes and their cells, compact: most of an organization's memory.
//!
//! The window holds a cell for every active minute of every series (about 2.5 M at the issue's
//! organization of 960 partitions), and almost every one counts calls of one caller, with one
//! user agent and one outcome. So a `Cell` is 20 bytes: the count, and for each of its three
//! tallies (identities, user agents, error codes) the one value it holds when that value was
//! counted as often as the cell itself (`Tally::One`). The rest (a tally of two or more values,
//! or one counted less often than the cell, and a data-event minute's resource ARNs) is a
//! `Spill`, in a table beside the series' cells that the cell points into. With its minute
//! (8 bytes in the series' `minutes`, which detection reads as a slice) an active minute
//! costs 28 bytes, where a cell of three inline tallies and a boxed resource tally cost 72.
//!
//! Cells and spills grow by a quarter rather than doubling (the room doubling leaves in each of
//! many short series is held through the day), and pruning drops the spills of the minutes it
//! drops, so memory follows the window. Between reads every series' minutes are packed
//! (`frozen`), at about 3 bytes an active minute: the 28 are paid only for what one step counts.

use crate::decode::Sym;
use crate::model::Minute;
use frozen::Frozen;
pub use frozen::{DayBlock, DayBlocks, Stitcher};
use std::borrow::Cow;

mod frozen;

/// `Cell::one`'s mark for a tally that holds nothing.
const EMPTY: Sym = Sym::MAX - 1;
/// `Cell::one`'s mark for a tally held in the cell's spill.
const SPILLED: Sym = Sym::MAX - 2;
/// `Cell::spill` for a cell without one.
const NO_SPILL: u32 = u32::MAX;

/// Whether a slot of `Cell::one` holds a value (`NO_SYM` is one: a missing caller or agent, a
/// success). The aggregator's string table never reaches the two marks above `NO_SYM`: four
/// billion strings would need over 64 GB of offsets and hashes alone.
fn is_value(one: Sym) -> bool {
    one != EMPTY && one != SPILLED
}

/// What `Cell::one` holds for a tally of `entries` in a cell counting `count` calls: nothing,
/// its one value if counted as often as the cell, else `SPILLED`.
fn inline_value(entries: &[(Sym, u32)], count: u32) -> Sym {
    match entries {
        [] => EMPTY,
        [(value, n)] if *n == count => *value,
        _ => SPILLED,
    }
}

/// The tallies a cell keeps, in the order they are saved and read.
const IDENTITIES: usize = 0;
const USER_AGENTS: usize = 1;
const ERROR_CODES: usize = 2;
/// A spill's resource ARNs come after the three tallies.
const RESOURCES: usize = 3;

/// One minute of one series: its count and its tallies (read with `Cell::tallies`, given the
/// series' spills).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    pub count: u32,
    /// Identities, user agents and error codes: each the one value its tally holds, counted
    /// `count` times; `EMPTY`; or `SPILLED` (the tally is in the spill).
    one: [Sym; 3],
    /// The cell's place in its series' spills, or `NO_SPILL`.
    spill: u32,
}

impl Default for Cell {
    fn default() -> Cell {
        Cell::with_count(0)
    }
}

impl Cell {
    /// A cell counting `count` calls, with empty tallies.
    pub fn with_count(count: u32) -> Cell {
        Cell {
            count,
            one: [EMPTY; 3],
            spill: NO_SPILL,
        }
    }

    /// The cell's tallies; `spills` are its series' (`Series::spills`).
    pub fn tallies<'a>(&self, spills: &'a [Spill]) -> Tallies<'a> {
        let spill = spills.get(self.spill as usize);
        let tally = |k: usize| match self.one[k] {
            EMPTY => Tally::List(&[]),
            SPILLED => Tally::List(spill.map_or(&[], |s| s.tally(k))),
            value => Tally::One(value, self.count),
        };
        Tallies {
            identities: tally(IDENTITIES),
            user_agents: tally(USER_AGENTS),
            error_codes: tally(ERROR_CODES),
            resources: spill.and_then(Spill::resources).map(Tally::List),
        }
    }
}

/// A cell's tallies that do not fit in it: the entries of each spilled tally one after the
/// other (identities, user agents, error codes), then the resource ARNs'.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spill {
    entries: Vec<(Sym, u32)>,
    /// How many entries each of the three tallies has here (0 for one the cell holds).
    lens: [u32; 3],
    /// Whether the cell has a resource tally (a data-event series' cell), even an empty one.
    resources: bool,
}

impl Spill {
    /// Where tally `k`'s entries start.
    fn start(&self, k: usize) -> usize {
        self.lens[..k].iter().map(|n| *n as usize).sum()
    }

    fn tally(&self, k: usize) -> &[(Sym, u32)] {
        let start = self.start(k);
        &self.entries[start..start + self.lens[k] as usize]
    }

    fn resources(&self) -> Option<&[(Sym, u32)]> {
        self.resources.then(|| self.arns())
    }

    /// Count `value` `count` times more in tally `k` (or the resources): a new value goes last.
    fn add(&mut self, k: usize, value: Sym, count: u32) {
        let start = self.start(k);
        let end = match self.lens.get(k) {
            Some(len) => start + *len as usize,
            None => self.entries.len(),
        };
        match self.entries[start..end]
            .iter_mut()
            .find(|(v, _)| *v == value)
        {
            Some((_, n)) => *n += count,
            None => {
                self.entries.insert(end, (value, count));
                if let Some(len) = self.lens.get_mut(k) {
                    *len += 1;
                }
            }
        }
    }

    /// The resource ARNs counted so far.
    pub(super) fn arns(&self) -> &[(Sym, u32)] {
        &self.entries[self.start(RESOURCES)..]
    }

    /// Count the resource ARN `arn` once more.
    pub(super) fn add_arn(&mut self, arn: Sym) {
        self.add(RESOURCES, arn, 1);
    }
}

/// One tally of a cell: its values and their counts, in the order first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally<'a> {
    One(Sym, u32),
    List(&'a [(Sym, u32)]),
}

impl<'a> Tally<'a> {
    pub fn iter(self) -> impl Iterator<Item = (Sym, u32)> + 'a {
        let (one, list) = match self {
            Tally::One(value, n) => (Some((value, n)), &[][..]),
            Tally::List(list) => (None, list),
        };
        one.into_iter().chain(list.iter().copied())
    }

    pub fn len(self) -> usize {
        match self {
            Tally::One(..) => 1,
            Tally::List(list) => list.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn to_vec(self) -> Vec<(Sym, u32)> {
        self.iter().collect()
    }
}

/// A cell's tallies, read through `Cell::tallies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tallies<'a> {
    pub identities: Tally<'a>,
    pub user_agents: Tally<'a>,
    /// Only for call-rate series; `NO_SYM` stands for success (AWS's `"null"`).
    pub error_codes: Tally<'a>,
    /// Only for data-event series: `resources[].ARN`, at most `MAX_RESOURCES_PER_MINUTE`.
    pub resources: Option<Tally<'a>>,
}

impl Tallies<'_> {
    /// Every symbol the tallies name, in order (identities, user agents, error codes,
    /// resources).
    pub fn each_symbol(&self, mut f: impl FnMut(Sym)) {
        let tallies = [self.identities, self.user_agents, self.error_codes];
        for tally in tallies.into_iter().chain(self.resources) {
            tally.iter().for_each(|(sym, _)| f(sym));
        }
    }
}

/// A cell spelled out, as a saved state holds it: what `Minutes::push` stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellParts {
    pub count: u32,
    /// Identities, user agents, error codes.
    pub tallies: [Vec<(Sym, u32)>; 3],
    /// Whether the cell has a resource tally, and its entries.
    pub has_resources: bool,
    pub resources: Vec<(Sym, u32)>,
}

impl CellParts {
    /// Parts spelled out in tests: a count, three tallies, and resources if any.
    #[cfg(test)]
    pub fn of(
        count: u32,
        tallies: [&[(Sym, u32)]; 3],
        resources: Option<&[(Sym, u32)]>,
    ) -> CellParts {
        CellParts {
            count,
            tallies: tallies.map(<[_]>::to_vec),
            has_resources: resources.is_some(),
            resources: resources.unwrap_or_default().to_vec(),
        }
    }

    /// Empty, keeping the room its lists have (one is reused for every cell read).
    pub fn clear(&mut self) {
        self.count = 0;
        self.tallies.iter_mut().for_each(Vec::clear);
        self.has_resources = false;
        self.resources.clear();
    }
}

/// Active minutes of a series, ascending, their cells, and the cells' spills: kept in order as
/// they are counted (records arrive nearly in time order, so a minute is almost always the last
/// one or new at the end).
#[derive(Debug, Clone, Default)]
pub struct Minutes {
    pub minutes: Vec<Minute>,
    pub cells: Vec<Cell>,
    pub spills: Vec<Spill>,
}

/// Nothing held, to borrow.
static NO_MINUTES: Minutes = Minutes {
    minutes: Vec::new(),
    cells: Vec::new(),
    spills: Vec::new(),
};

/// One series' minutes as the aggregator holds them: those counted into since its minutes were
/// last packed (`live`, none between reads), and the rest packed (`frozen`, all earlier). 24
/// bytes in the series map, where the three tables took 72 for the few series a step counts.
/// Read them through `span` or `whole`.
#[derive(Debug, Clone, Default)]
pub struct SeriesMinutes {
    live: Option<Box<Minutes>>,
    frozen: Frozen,
}

/// Some minutes of a series, their cells and the spills those point to: borrowed where they
/// are not packed, else unpacked.
pub type Span<'a> = (Cow<'a, [Minute]>, Cow<'a, [Cell]>, Cow<'a, [Spill]>);

/// Room for a quarter more, not double: see the module doc.
fn grow<T>(list: &mut Vec<T>) {
    if list.len() == list.capacity() {
        list.reserve_exact(grown(list.len()) - list.len());
    }
}

/// The room a full list of `n` grows to: a quarter more (and a few).
pub fn grown(n: usize) -> usize {
    n + n / 4 + 4
}

impl Minutes {
    /// The position of `minute`'s cell, made (empty) if the minute is new.
    pub fn at(&mut self, minute: Minute) -> usize {
        let at = match self.minutes.last() {
            Some(last) if *last < minute => self.minutes.len(),
            Some(last) if *last == minute => self.minutes.len() - 1,
            _ => self.minutes.partition_point(|m| *m < minute),
        };
        if self.minutes.get(at) != Some(&minute) {
            if self.cells.len() == self.cells.capacity() {
                grow(&mut self.cells);
                self.minutes
                    .reserve_exact(self.cells.capacity() - self.minutes.len());
            }
            self.minutes.insert(at, minute);
            self.cells.insert(at, Cell::default());
        }
        at
    }

    /// Count one call in the cell at `at`: its identity, user agent and error code (`None`:
    /// the tally is not kept for this series, an error-rate series' error codes).
    pub fn count(&mut self, at: usize, values: [Option<Sym>; 3]) {
        let before = self.cells[at].count;
        self.cells[at].count += 1;
        for (k, value) in values.into_iter().enumerate() {
            let one = self.cells[at].one[k];
            match value {
                // Still one value, counted as often as the cell.
                Some(value) if value == one => {}
                Some(value) if one == EMPTY && before == 0 => self.cells[at].one[k] = value,
                None if !is_value(one) => {}
                _ => self.spill_and_count(at, k, before, value),
            }
        }
    }

    /// `count`'s rare case: tally `k` of the cell at `at` no longer fits in the cell (it gains
    /// a second value, or its one value falls behind the cell's count).
    #[cold]
    fn spill_and_count(&mut self, at: usize, k: usize, before: u32, value: Option<Sym>) {
        let one = self.cells[at].one[k];
        self.cells[at].one[k] = SPILLED;
        let spill = self.spill(at);
        if is_value(one) {
            spill.add(k, one, before);
        }
        if let Some(value) = value {
            spill.add(k, value, 1);
        }
    }

    /// The spill of the cell at `at`, made if it has none.
    fn spill(&mut self, at: usize) -> &mut Spill {
        let cell = &mut self.cells[at];
        if cell.spill == NO_SPILL {
            grow(&mut self.spills);
            cell.spill = self.spills.len() as u32;
            self.spills.push(Spill::default());
        }
        &mut self.spills[cell.spill as usize]
    }

    /// The resource tally of the cell at `at` (a data-event series' cell), made if it has none.
    pub fn resources(&mut self, at: usize) -> &mut Spill {
        let spill = self.spill(at);
        spill.resources = true;
        spill
    }

    /// Hold nothing, keeping the room of the tables (one is reused for many series).
    pub fn clear(&mut self) {
        self.minutes.clear();
        self.cells.clear();
        self.spills.clear();
    }

    /// Append `minutes` (all later than those held) and their `cells`, and the spills of
    /// `spills` they point to.
    fn append(&mut self, minutes: &[Minute], cells: &[Cell], spills: &[Spill]) {
        self.minutes.extend_from_slice(minutes);
        self.cells.reserve_exact(cells.len());
        for cell in cells {
            let mut cell = *cell;
            if let Some(spill) = spills.get(cell.spill as usize) {
                cell.spill = self.spills.len() as u32;
                self.spills.push(spill.clone());
            }
            self.cells.push(cell);
        }
    }

    /// Append the cell `parts` spells out at `minute`, after every minute held.
    pub fn push(&mut self, minute: Minute, parts: &CellParts) {
        let mut cell = Cell::with_count(parts.count);
        let mut spill = Spill {
            resources: parts.has_resources,
            ..Spill::default()
        };
        for (k, tally) in parts.tallies.iter().enumerate() {
            cell.one[k] = inline_value(tally, parts.count);
            if cell.one[k] == SPILLED {
                spill.lens[k] = tally.len() as u32;
            }
        }
        if spill.resources || spill.lens != [0; 3] {
            let spilled = spill.lens.iter().map(|n| *n as usize).sum::<usize>();
            spill.entries.reserve_exact(spilled + parts.resources.len());
            for (k, tally) in parts.tallies.iter().enumerate() {
                if cell.one[k] == SPILLED {
                    spill.entries.extend_from_slice(tally);
                }
            }
            spill.entries.extend_from_slice(&parts.resources);
            cell.spill = self.spills.len() as u32;
            self.spills.push(spill);
        }
        self.minutes.push(minute);
        self.cells.push(cell);
    }

    /// Every symbol the cells' tallies name, cell by cell in order.
    pub fn each_symbol(&self, mut f: impl FnMut(Sym)) {
        for cell in &self.cells {
            cell.tallies(&self.spills).each_symbol(&mut f);
        }
    }

    /// Every symbol the cells' tallies name, in no particular order and some more than once:
    /// what marking the strings in use needs (`Aggregator::compact_symbols`), read straight
    /// from the cells' own values and the spills' entries, without spelling out each cell's
    /// tallies as `each_symbol` does for the orders that are saved.
    pub fn each_symbol_unordered(&self, mut f: impl FnMut(Sym)) {
        for cell in &self.cells {
            cell.one
                .iter()
                .copied()
                .filter(|s| is_value(*s))
                .for_each(&mut f);
        }
        for spill in &self.spills {
            spill.entries.iter().for_each(|(sym, _)| f(*sym));
        }
    }

    /// Every symbol the cells' tallies name, renumbered by `new` (their order kept).
    pub fn renumber(&mut self, new: &impl Fn(Sym) -> Sym) {
        for one in self.cells.iter_mut().flat_map(|cell| &mut cell.one) {
            if is_value(*one) {
                *one = new(*one);
            }
        }
        for (sym, _) in self.spills.iter_mut().flat_map(|spill| &mut spill.entries) {
            *sym = new(*sym);
        }
    }

    /// Drop the minutes before `minute`, their spills, and the room a longer window needed:
    /// memory follows the window, not the longest window the run has seen.
    pub fn prune_before(&mut self, minute: Minute) {
        let gone = self.minutes.partition_point(|m| *m < minute);
        let spills_gone = self.cells[..gone].iter().any(|c| c.spill != NO_SPILL);
        self.minutes.drain(..gone);
        self.cells.drain(..gone);
        if spills_gone {
            self.keep_only_used_spills();
        }
        let room = self.minutes.len() + self.minutes.len() / 4;
        self.minutes.shrink_to(room);
        self.cells.shrink_to(room);
    }

    /// The spills the cells still point to, moved into a table of their own size, in the
    /// cells' order.
    fn keep_only_used_spills(&mut self) {
        let mut old = std::mem::take(&mut self.spills);
        let used = self.cells.iter().filter(|c| c.spill != NO_SPILL).count();
        self.spills = Vec::with_capacity(used);
        for cell in self.cells.iter_mut().filter(|c| c.spill != NO_SPILL) {
            let spill = std::mem::take(&mut old[cell.spill as usize]);
            cell.spill = self.spills.len() as u32;
            self.spills.push(spill);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }
}

impl SeriesMinutes {
    /// The unpacked minutes to count `minute` into. A minute at or before the last packed one
    /// (a late record: rare) unpacks the series' packed days from its day on first.
    pub fn live_for(&mut self, minute: Minute) -> &mut Minutes {
        let live_from = self.live.as_ref().and_then(|live| live.minutes.first());
        if live_from.is_none_or(|first| minute < *first)
            && self.frozen.last_minute().is_some_and(|last| minute <= last)
        {
            self.thaw_from(minute.day_number());
        }
        self.live.get_or_insert_default()
    }

    /// Append the cell `parts` spells out at `minute`, after every minute held, unpacked.
    pub fn push(&mut self, minute: Minute, parts: &CellParts) {
        self.live.get_or_insert_default().push(minute, parts);
    }

    /// Minutes read whole, unpacked (an older layout of the state).
    pub fn unpacked_from(minutes: Minutes) -> SeriesMinutes {
        SeriesMinutes {
            live: Some(Box::new(minutes)),
            frozen: Frozen::default(),
        }
    }

    /// Whether every minute held is packed (none unpacked, nor their tables).
    #[cfg(debug_assertions)]
    pub fn is_packed(&self) -> bool {
        self.live.is_none()
    }

    fn live(&self) -> &Minutes {
        self.live.as_deref().unwrap_or(&NO_MINUTES)
    }

    /// Pack every minute held: nothing is counted into them until the next read, and packed
    /// they take a few bytes each instead of 28 (see `frozen`), their tables freed (most series
    /// count nothing for days).
    pub fn freeze(&mut self) {
        if let Some(live) = self.live.take() {
            self.frozen.pack(&live.minutes, &live.cells, &live.spills);
        }
    }

    /// Pack `block` (of a day after every minute held) after the minutes held.
    pub fn append_day(&mut self, block: &DayBlock) {
        self.freeze();
        self.frozen.append_block(block);
    }

    /// Unpack the packed minutes, to count into them.
    fn thaw(&mut self) {
        self.thaw_from(i64::MIN);
    }

    /// Unpack the packed days from `day` on (those before stay packed), to count into them: a
    /// late record around midnight unpacks a day or two of a busy series, not its window.
    fn thaw_from(&mut self, day: i64) {
        if !self.frozen.holds_days(day..i64::MAX) {
            return;
        }
        let mut live = Minutes::default();
        self.frozen.unpack_days(day..i64::MAX, &mut live);
        if let Some(counted) = self.live.take() {
            live.append(&counted.minutes, &counted.cells, &counted.spills);
        }
        self.frozen.truncate_days_from(day);
        self.live = Some(Box::new(live));
    }

    /// Every minute held, unpacked, if any is packed.
    fn unpacked(&self) -> Option<Minutes> {
        if self.frozen.is_empty() {
            return None;
        }
        let live = self.live();
        let mut whole = Minutes::default();
        let cells = self.frozen.len() + live.minutes.len();
        whole.minutes.reserve_exact(cells);
        whole.cells.reserve_exact(cells);
        self.frozen.unpack(&mut whole);
        whole.append(&live.minutes, &live.cells, &live.spills);
        Some(whole)
    }

    /// Every minute held, read in place if none is packed.
    pub fn whole(&self) -> Cow<'_, Minutes> {
        match self.unpacked() {
            Some(whole) => Cow::Owned(whole),
            None => Cow::Borrowed(self.live()),
        }
    }

    /// The minutes of the UTC days in `days` (since the epoch), with their cells and spills;
    /// `None` if there is none.
    pub fn span(&self, days: std::ops::Range<i64>) -> Option<Span<'_>> {
        let (minutes, cells, spills) = self.live_span(days.clone());
        if !self.frozen.holds_days(days.clone()) {
            let borrowed = (Cow::Borrowed(minutes), Cow::Borrowed(cells));
            return (!minutes.is_empty()).then_some((
                borrowed.0,
                borrowed.1,
                Cow::Borrowed(spills),
            ));
        }
        let mut out = Minutes::default();
        self.frozen.unpack_days(days, &mut out);
        out.append(minutes, cells, spills);
        Some((
            Cow::Owned(out.minutes),
            Cow::Owned(out.cells),
            Cow::Owned(out.spills),
        ))
    }

    /// `span`, unpacked into `scratch` (cleared first, its room kept for the next series)
    /// rather than into tables of its own; empty if there is none.
    pub fn span_in<'s>(
        &'s self,
        days: std::ops::Range<i64>,
        scratch: &'s mut Minutes,
    ) -> (&'s [Minute], &'s [Cell], &'s [Spill]) {
        let (minutes, cells, spills) = self.live_span(days.clone());
        if !self.frozen.holds_days(days.clone()) {
            return (minutes, cells, spills);
        }
        scratch.clear();
        self.frozen.unpack_days(days, scratch);
        scratch.append(minutes, cells, spills);
        (&scratch.minutes, &scratch.cells, &scratch.spills)
    }

    /// The unpacked minutes of the UTC days in `days`, their cells, and the unpacked spills.
    fn live_span(&self, days: std::ops::Range<i64>) -> (&[Minute], &[Cell], &[Spill]) {
        let live = self.live();
        let from = Minute::start_of_day_number(days.start);
        let start = live.minutes.partition_point(|m| *m < from);
        let end = start
            + live.minutes[start..].partition_point(|m| *m < Minute::start_of_day_number(days.end));
        (
            &live.minutes[start..end],
            &live.cells[start..end],
            &live.spills,
        )
    }

    /// Whether a minute of the UTC days in `days` is held, packed or not.
    pub fn holds_days(&self, days: std::ops::Range<i64>) -> bool {
        let live = self.live();
        let (from, to) = (
            Minute::start_of_day_number(days.start),
            Minute::start_of_day_number(days.end),
        );
        // Most series end before a recent day or start after an old one: two comparisons
        // before a search.
        let in_live = match (live.minutes.first(), live.minutes.last()) {
            (Some(first), Some(last)) if *last >= from && *first < to => {
                let start = live.minutes.partition_point(|m| *m < from);
                live.minutes.get(start).is_some_and(|m| *m < to)
            }
            _ => false,
        };
        in_live || self.frozen.holds_days(days)
    }

    /// Ask the CPU to fetch the start of what the series holds (packed, else its minutes): each
    /// series' is an allocation of its own, read in turn by passes over every series.
    pub fn prefetch(&self) {
        match &self.live {
            Some(live) if self.frozen.is_empty() => super::saved::prefetch(live.minutes.as_ptr()),
            _ => super::saved::prefetch(self.frozen.as_ptr()),
        }
    }

    /// Whether minutes were counted since the series was last packed.
    pub fn is_counted(&self) -> bool {
        self.live.is_some()
    }

    /// Ask the CPU to fetch the header of the unpacked tables (then `prefetch_counted_tables`).
    pub fn prefetch_counted(&self) {
        if let Some(live) = &self.live {
            super::saved::prefetch(&**live as *const Minutes);
        }
    }

    /// Ask the CPU to fetch the unpacked tables and the packed bytes they are packed after.
    pub fn prefetch_counted_tables(&self) {
        if let Some(live) = &self.live {
            super::saved::prefetch(live.minutes.as_ptr());
            super::saved::prefetch(live.cells.as_ptr());
        }
        super::saved::prefetch(self.frozen.as_ptr());
    }

    /// How many minutes are held, packed or not.
    pub fn len(&self) -> usize {
        self.frozen.len() + self.live().minutes.len()
    }

    /// The last minute held, packed or not.
    pub fn last_minute(&self) -> Option<Minute> {
        self.live()
            .minutes
            .last()
            .copied()
            .or(self.frozen.last_minute())
    }

    /// Each UTC day (since the epoch) holding a minute, ascending, some more than once.
    pub fn each_day(&self, mut f: impl FnMut(i64)) {
        self.frozen.days().for_each(&mut f);
        let mut last = None;
        for minute in &self.live().minutes {
            let day = minute.day_number();
            if last != Some(day) {
                f(day);
                last = Some(day);
            }
        }
    }

    /// Every symbol the cells' tallies name, cell by cell in order.
    pub fn each_symbol(&self, f: impl FnMut(Sym)) {
        self.whole().each_symbol(f);
    }

    /// Every symbol the cells' tallies name, in no particular order and some more than once
    /// (see `Minutes::each_symbol_unordered`); the packed minutes read where they lie.
    pub fn each_symbol_unordered(&self, mut f: impl FnMut(Sym)) {
        self.frozen.each_symbol_unordered(&mut f);
        self.live().each_symbol_unordered(f);
    }

    /// Every symbol the cells' tallies name, renumbered by `new` (their order kept); the
    /// packed minutes stay packed.
    pub fn renumber(&mut self, new: impl Fn(Sym) -> Sym) {
        if !self.frozen.is_empty() {
            let mut packed = Minutes::default();
            self.frozen.unpack(&mut packed);
            packed.renumber(&new);
            self.frozen = Frozen::default();
            self.frozen
                .pack(&packed.minutes, &packed.cells, &packed.spills);
        }
        if let Some(live) = &mut self.live {
            live.renumber(&new);
        }
    }

    /// Drop the minutes before `minute` (see `Minutes::prune_before`). Packed days go whole (a
    /// series is unpacked first for a `minute` within one of its packed days).
    pub fn prune_before(&mut self, minute: Minute) {
        let day = minute.day_number();
        if minute != Minute::start_of_day_number(day) && self.frozen.holds_days(day..day + 1) {
            self.thaw();
        }
        self.frozen.drop_days_before(day);
        if let Some(live) = &mut self.live {
            live.prune_before(minute);
            if live.is_empty() {
                self.live = None;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.live().is_empty() && self.frozen.is_empty()
    }
}

/// Ask the CPU to fetch a series' entry in the series map (then `SeriesMinutes::prefetch`).
pub fn prefetch_entry(entry: &SeriesMinutes) {
    super::saved::prefetch(entry as *const SeriesMinutes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::NO_SYM;

    /// A cell's four tallies spelled out (`None`: no resource tally).
    type Spelled = [Option<Vec<(Sym, u32)>>; 4];

    /// The tallies of a cell, spelled out.
    fn spelled(data: &Minutes, at: usize) -> Spelled {
        let t = data.cells[at].tallies(&data.spills);
        [
            Some(t.identities.to_vec()),
            Some(t.user_agents.to_vec()),
            Some(t.error_codes.to_vec()),
            t.resources.map(Tally::to_vec),
        ]
    }

    /// A cell is held for every active minute of every series in the window.
    #[test]
    fn a_cell_is_20_bytes() {
        assert_eq!(std::mem::size_of::<Cell>(), 20);
        assert_eq!(std::mem::size_of::<Spill>(), 40);
    }

    /// Calls counted one by one: (identity, user agent, error code or None) each; the tallies
    /// read back in the order first seen, whether they stay in the cell or spill.
    #[test]
    fn tallies_count_in_order_in_the_cell_or_spilled() {
        type Case<'a> = (&'a str, &'a [[Option<Sym>; 3]], [&'a [(Sym, u32)]; 3], bool);
        let cases: [Case; 6] = [
            (
                "one caller",
                &[[Some(1), Some(2), Some(NO_SYM)]; 3],
                [&[(1, 3)], &[(2, 3)], &[(NO_SYM, 3)]],
                false,
            ),
            (
                "no error code kept",
                &[[Some(1), Some(2), None]; 2],
                [&[(1, 2)], &[(2, 2)], &[]],
                false,
            ),
            (
                "a second caller",
                &[
                    [Some(1), Some(2), Some(NO_SYM)],
                    [Some(3), Some(2), Some(NO_SYM)],
                    [Some(1), Some(2), Some(NO_SYM)],
                ],
                [&[(1, 2), (3, 1)], &[(2, 3)], &[(NO_SYM, 3)]],
                true,
            ),
            (
                "three of each",
                &[
                    [Some(1), Some(4), Some(7)],
                    [Some(2), Some(5), Some(8)],
                    [Some(3), Some(6), Some(9)],
                    [Some(2), Some(6), Some(7)],
                ],
                [
                    &[(1, 1), (2, 2), (3, 1)],
                    &[(4, 1), (5, 1), (6, 2)],
                    &[(7, 2), (8, 1), (9, 1)],
                ],
                true,
            ),
            (
                "an error code only later",
                &[[Some(1), Some(2), None], [Some(1), Some(2), Some(5)]],
                [&[(1, 2)], &[(2, 2)], &[(5, 1)]],
                true,
            ),
            (
                "an error code only at first",
                &[[Some(1), Some(2), Some(5)], [Some(1), Some(2), None]],
                [&[(1, 2)], &[(2, 2)], &[(5, 1)]],
                true,
            ),
        ];
        for (case, calls, expected, spills) in cases {
            let mut data = Minutes::default();
            for values in calls {
                let at = data.at(Minute(10));
                data.count(at, *values);
            }
            assert_eq!(data.cells[0].count, calls.len() as u32, "{case}");
            let want = expected.map(|t| Some(t.to_vec()));
            assert_eq!(
                spelled(&data, 0),
                [want[0].clone(), want[1].clone(), want[2].clone(), None],
                "{case}"
            );
            assert_eq!(data.spills.len(), usize::from(spills), "{case}");
        }
    }

    /// Resource ARNs go to the spill after the spilled tallies, which can still grow.
    #[test]
    fn resource_arns_follow_the_spilled_tallies() {
        let mut data = Minutes::default();
        let at = data.at(Minute(3));
        data.count(at, [Some(1), Some(2), Some(NO_SYM)]);
        data.resources(at).add_arn(10);
        data.resources(at).add_arn(11);
        data.resources(at).add_arn(10);
        data.count(at, [Some(4), Some(2), Some(NO_SYM)]);
        data.resources(at).add_arn(12);
        assert_eq!(
            spelled(&data, at),
            [
                Some(vec![(1, 1), (4, 1)]),
                Some(vec![(2, 2)]),
                Some(vec![(NO_SYM, 2)]),
                Some(vec![(10, 2), (11, 1), (12, 1)])
            ]
        );
        assert_eq!(data.spills[0].arns(), [(10, 2), (11, 1), (12, 1)]);
        // A data-event cell without ARNs still has its (empty) resource tally.
        let empty = data.at(Minute(4));
        data.count(empty, [Some(1), Some(2), Some(NO_SYM)]);
        data.resources(empty);
        assert_eq!(spelled(&data, empty)[3], Some(vec![]));
    }

    /// Cells pushed from their parts read back the same, one value inline only when it was
    /// counted as often as the cell.
    #[test]
    fn pushed_cells_read_back_their_parts() {
        let parts = CellParts::of;
        let cases = [
            (
                parts(3, [&[(1, 3)], &[(2, 3)], &[(NO_SYM, 3)]], None),
                false,
            ),
            (parts(3, [&[(1, 2)], &[(2, 3)], &[]], None), true),
            (parts(3, [&[(1, 2), (1, 1)], &[], &[(2, 3)]], None), true),
            (parts(0, [&[], &[], &[]], Some(&[])), true),
            (
                parts(
                    2,
                    [&[(1, 2)], &[(2, 1), (3, 1)], &[(NO_SYM, 2)]],
                    Some(&[(9, 2), (8, 1)]),
                ),
                true,
            ),
        ];
        let mut data = Minutes::default();
        for (i, (cell, spills)) in cases.iter().enumerate() {
            let before = data.spills.len();
            data.push(Minute(i as i64), cell);
            assert_eq!(data.spills.len() - before, usize::from(*spills), "{cell:?}");
            let read = spelled(&data, i);
            let want = [
                Some(cell.tallies[0].clone()),
                Some(cell.tallies[1].clone()),
                Some(cell.tallies[2].clone()),
                cell.has_resources.then(|| cell.resources.clone()),
            ];
            assert_eq!(read, want, "{cell:?}");
            assert_eq!(data.cells[i].count, cell.count);
        }
    }

    /// Renumbering changes every value, inline or spilled, and no mark.
    #[test]
    fn renumbering_reaches_inline_and_spilled_values() {
        let mut data = Minutes::default();
        let at = data.at(Minute(0));
        data.count(at, [Some(1), Some(2), None]);
        data.count(at, [Some(3), Some(2), None]);
        data.resources(at).add_arn(4);
        let second = data.at(Minute(1));
        data.count(second, [Some(NO_SYM), Some(2), Some(NO_SYM)]);
        data.renumber(&|s| if s == NO_SYM { NO_SYM } else { s * 10 });
        assert_eq!(
            spelled(&data, at),
            [
                Some(vec![(10, 1), (30, 1)]),
                Some(vec![(20, 2)]),
                Some(vec![]),
                Some(vec![(40, 1)])
            ]
        );
        assert_eq!(
            spelled(&data, second),
            [
                Some(vec![(NO_SYM, 1)]),
                Some(vec![(20, 1)]),
                Some(vec![(NO_SYM, 1)]),
                None
            ]
        );
        let mut seen = Vec::new();
        data.each_symbol(|s| seen.push(s));
        assert_eq!(seen, [10, 30, 20, 40, NO_SYM, 20, NO_SYM]);
        let mut unordered = Vec::new();
        data.each_symbol_unordered(|s| unordered.push(s));
        unordered.sort_unstable();
        unordered.dedup();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(unordered, seen);
    }

    /// Pruning frees the spills of the minutes it drops and keeps the others' right, also when
    /// a late minute spilled before earlier ones.
    #[test]
    fn pruning_frees_the_spills_of_dropped_minutes() {
        let mut data = Minutes::default();
        for minute in [5, 1, 3, 2, 4] {
            let at = data.at(Minute(minute));
            data.count(at, [Some(1), Some(2), None]);
            data.resources(at).add_arn(100 + minute as Sym);
        }
        let second = data.at(Minute(2));
        data.count(second, [Some(7), Some(2), None]);
        assert_eq!(data.spills.len(), 5);
        data.prune_before(Minute(3));
        assert_eq!(data.minutes, [Minute(3), Minute(4), Minute(5)]);
        assert_eq!(
            data.spills.len(),
            3,
            "the dropped minutes' spills are freed"
        );
        for (at, minute) in [(0, 3), (1, 4), (2, 5)] {
            assert_eq!(spelled(&data, at)[3], Some(vec![(100 + minute, 1)]));
        }
        // A prune that drops no spilled minute keeps the table as it is.
        let mut plain = Minutes::default();
        for minute in 0..4 {
            let at = plain.at(Minute(minute));
            plain.count(at, [Some(1), Some(2), None]);
        }
        plain.prune_before(Minute(2));
        assert_eq!(plain.minutes, [Minute(2), Minute(3)]);
        assert!(plain.spills.is_empty());
        data.prune_before(Minute(6));
        assert!(data.is_empty() && data.spills.is_empty());
    }

    /// Every minute held and its tallies, spelled out (packed or not).
    fn everything(data: &SeriesMinutes) -> Vec<(Minute, u32, Spelled)> {
        let whole = data.whole();
        (0..whole.minutes.len())
            .map(|at| {
                (
                    whole.minutes[at],
                    whole.cells[at].count,
                    spelled(&whole, at),
                )
            })
            .collect()
    }

    const DAY: i64 = crate::model::MINUTES_PER_DAY;

    /// Count one call at `minute` as the aggregator does.
    fn count_at(data: &mut SeriesMinutes, minute: i64, values: [Option<Sym>; 3]) -> usize {
        let live = data.live_for(Minute(minute));
        let at = live.at(Minute(minute));
        live.count(at, values);
        at
    }

    /// Cells of every shape over three days, unpacked: one caller, one repeated or changed
    /// from the minute before, spilled tallies, resources, `NO_SYM`, large counts and symbols,
    /// long gaps.
    fn cells_of_every_shape() -> SeriesMinutes {
        let mut data = SeriesMinutes::default();
        let big = 4_000_000_000;
        for (minute, calls) in [
            (DAY + 5, 1),
            (DAY + 6, 3),
            (DAY + 7, 200),
            (DAY + 1439, 1),
            (2 * DAY, 2),
            (2 * DAY + 900, 1),
            (3 * DAY + 17, 1),
        ] {
            for call in 0..calls {
                let caller = if minute % 3 == 0 { 1 + call % 2 } else { 1 };
                count_at(&mut data, minute, [Some(caller), Some(big), Some(NO_SYM)]);
            }
        }
        let at = count_at(&mut data, DAY + 6, [Some(NO_SYM), Some(big), None]);
        let live = data.live_for(Minute(DAY + 6));
        live.resources(at).add_arn(77);
        live.resources(at).add_arn(big + 1);
        let empty = live.at(Minute(2 * DAY + 900));
        live.resources(empty);
        data.push(
            Minute(3 * DAY + 600),
            &CellParts::of(5, [&[(1, 2), (9, 3)], &[], &[(3, 4)]], Some(&[(8, 5)])),
        );
        assert!(data.frozen.is_empty());
        data
    }

    /// Packed minutes read back as they were counted, whether packed at once or day by day,
    /// and a series stays packed while later minutes are counted.
    #[test]
    fn packed_minutes_read_back_the_same() {
        let counted = cells_of_every_shape();
        let want = everything(&counted);
        assert_eq!(want.len(), 8);
        let mut at_once = counted.clone();
        at_once.freeze();
        assert!(at_once.live.is_none() && at_once.len() == 8);
        assert_eq!(everything(&at_once), want);
        assert_eq!(at_once.last_minute(), Some(Minute(3 * DAY + 600)));
        // Packed days 1 to 3: asked of the last day, before, within, after and empty ranges.
        for (days, held) in [
            (3..4, true),
            (2..3, true),
            (0..2, true),
            (0..1, false),
            (4..9, false),
            (0..9, true),
            (2..2, false),
        ] {
            assert_eq!(at_once.frozen.holds_days(days.clone()), held, "{days:?}");
        }
        // Packed as a saved state's days are read: each day's cells packed as read, appended
        // day by day, or stitched once every day is read; the same bytes either way.
        let mut by_day = SeriesMinutes::default();
        let mut block = DayBlock::default();
        let mut days: Vec<DayBlocks> = Vec::new();
        let whole = counted.whole();
        for (minute, cell) in whole.minutes.iter().zip(&whole.cells) {
            let day = minute.day_number();
            if days.last().is_none_or(|d| d.day() != day) {
                if let Some(read) = days.last_mut() {
                    read.add(1, &block);
                    by_day.append_day(&block);
                }
                days.push(DayBlocks::new(day));
                block.start(day);
            }
            let tallies = cell.tallies(&whole.spills);
            let parts = CellParts {
                count: cell.count,
                tallies: [tallies.identities, tallies.user_agents, tallies.error_codes]
                    .map(Tally::to_vec),
                has_resources: tallies.resources.is_some(),
                resources: tallies.resources.map(Tally::to_vec).unwrap_or_default(),
            };
            block.push(*minute, &parts);
        }
        days.last_mut().unwrap().add(1, &block);
        by_day.append_day(&block);
        assert_eq!(by_day.frozen, at_once.frozen);
        assert_eq!(everything(&by_day), want);
        // Stitched: the series at place 1 (none at 0 or 2).
        let mut stitcher = Stitcher::new(days);
        assert!(stitcher.series(0).is_empty());
        let stitched = stitcher.series(1);
        assert!(stitched.live.is_none() && stitched.frozen == at_once.frozen);
        assert!(stitcher.series(2).is_empty());
        let mut days = Vec::new();
        by_day.each_day(|d| days.push(d));
        assert_eq!(days, [1, 2, 3]);
        // A later minute is counted beside the packed ones, which stay packed.
        count_at(
            &mut at_once,
            3 * DAY + 601,
            [Some(1), Some(2), Some(NO_SYM)],
        );
        assert!(!at_once.frozen.is_empty() && at_once.live().minutes.len() == 1);
        assert_eq!(everything(&at_once)[..8], want[..]);
        at_once.freeze();
        assert_eq!(everything(&at_once).len(), 9);
    }

    /// Packed minutes name the symbols they held unpacked, read from their bytes.
    #[test]
    fn packed_minutes_name_the_symbols_they_hold() {
        let symbols = |data: &SeriesMinutes| {
            let mut named = std::collections::BTreeSet::new();
            data.each_symbol_unordered(|sym| {
                named.insert(sym);
            });
            named
        };
        let counted = cells_of_every_shape();
        let mut want = std::collections::BTreeSet::new();
        counted.whole().each_symbol_unordered(|sym| {
            want.insert(sym);
        });
        assert_eq!(symbols(&counted), want);
        assert!(want.len() >= 8, "{want:?}");
        let mut packed = counted.clone();
        packed.freeze();
        assert!(packed.live.is_none());
        assert_eq!(symbols(&packed), want);
        // Part packed, part counted since.
        count_at(&mut packed, 4 * DAY, [Some(123), None, Some(NO_SYM)]);
        want.insert(123);
        assert!(!packed.frozen.is_empty() && packed.live.is_some());
        assert_eq!(symbols(&packed), want);
    }

    /// A minute at or before the last packed one unpacks its series' packed days from its day
    /// on, and is counted in place; the days before stay packed, all before the unpacked ones.
    #[test]
    fn a_late_minute_unpacks_its_series_from_its_day() {
        for lates in [
            &[DAY + 6][..],
            &[DAY + 8],
            &[2 * DAY + 10],
            &[3 * DAY + 600],
            &[3 * DAY + 600, 2 * DAY + 900, DAY + 7],
        ] {
            let mut data = cells_of_every_shape();
            let mut expected = data.clone();
            data.freeze();
            for &late in lates {
                count_at(&mut data, late, [Some(1), Some(2), Some(NO_SYM)]);
                count_at(&mut expected, late, [Some(1), Some(2), Some(NO_SYM)]);
                let first_unpacked = data.live().minutes.first().copied();
                assert!(
                    first_unpacked.is_some_and(|m| m.day_number() <= Minute(late).day_number())
                );
                assert!(
                    (data.frozen.last_minute()).is_none_or(|last| Some(last) < first_unpacked),
                    "{lates:?}"
                );
                let packed: Vec<i64> = data.frozen.days().collect();
                assert!(
                    packed.iter().all(|d| *d < Minute(late).day_number()),
                    "{lates:?}"
                );
                assert_eq!(everything(&data), everything(&expected), "{lates:?}");
            }
            let earliest = lates.iter().map(|m| Minute(*m).day_number()).min();
            assert_eq!(data.frozen.is_empty(), earliest <= Some(1), "{lates:?}");
            data.freeze();
            assert_eq!(everything(&data), everything(&expected), "{lates:?}");
        }
    }

    /// Pruning drops packed days whole (a prune within a packed day unpacks it), renumbering
    /// reaches packed values, and a day's span joins its packed and unpacked minutes.
    #[test]
    fn packed_days_prune_renumber_and_span() {
        for from in [Minute(2 * DAY), Minute(2 * DAY + 1), Minute(3 * DAY + 18)] {
            let mut data = cells_of_every_shape();
            let mut expected = data.clone();
            data.freeze();
            data.prune_before(from);
            expected.prune_before(from);
            assert_eq!(everything(&data), everything(&expected), "{from:?}");
            assert_eq!(data.frozen.is_empty(), from.0 % DAY != 0, "{from:?}");
        }
        let mut data = cells_of_every_shape();
        let mut expected = data.clone();
        data.freeze();
        let renumber = |s: Sym| if s == NO_SYM { NO_SYM } else { s / 2 + 3 };
        data.renumber(renumber);
        expected.renumber(renumber);
        assert_eq!(everything(&data), everything(&expected));
        assert!(!data.frozen.is_empty());
        let mut symbols = (Vec::new(), Vec::new());
        data.each_symbol(|s| symbols.0.push(s));
        expected.each_symbol(|s| symbols.1.push(s));
        assert_eq!(symbols.0, symbols.1);
        // Day 3 packed in part, then counted into later.
        count_at(&mut data, 3 * DAY + 700, [Some(1), Some(2), Some(NO_SYM)]);
        count_at(
            &mut expected,
            3 * DAY + 700,
            [Some(1), Some(2), Some(NO_SYM)],
        );
        for day in 0..5 {
            let spelled_span = |data: &SeriesMinutes| {
                data.span(day..day + 1).map(|(minutes, cells, spills)| {
                    let tallies = |c: &Cell| {
                        let t = c.tallies(&spills);
                        let mut all = Vec::new();
                        t.each_symbol(|s| all.push(s));
                        (c.count, all)
                    };
                    (
                        minutes.to_vec(),
                        cells.iter().map(tallies).collect::<Vec<_>>(),
                    )
                })
            };
            assert_eq!(spelled_span(&data), spelled_span(&expected), "day {day}");
            assert_eq!(data.holds_days(day..day + 1), (1..4).contains(&day));
        }
    }

    /// Days packed in steps (a day in two blocks, days apart, days far from the epoch's zero),
    /// then the first of them pruned: each block's day, said as the days since the one before,
    /// reads back, and the first block left says its day whole.
    #[test]
    fn days_packed_in_steps_and_pruned_keep_their_days() {
        let days = [-3, 0, 20_454, 20_455, 20_455, 20_458, 20_700];
        for prune in 0..days.len() {
            let mut data = SeriesMinutes::default();
            let mut expected = SeriesMinutes::default();
            for (step, day) in days.iter().enumerate() {
                // The fifth step counts later into the day the fourth packed.
                let minute = day * DAY + 60 * step as i64;
                for data in [&mut data, &mut expected] {
                    count_at(data, minute, [Some(step as Sym), None, None]);
                }
                data.freeze();
            }
            let from = Minute(days[prune] * DAY);
            data.prune_before(from);
            expected.prune_before(from);
            assert_eq!(everything(&data), everything(&expected), "from {prune}");
            let kept: Vec<i64> = data.frozen.days().collect();
            let want: Vec<i64> = days.into_iter().filter(|d| *d >= days[prune]).collect();
            assert_eq!(kept, want, "from {prune}");
        }
    }

    /// The series map holds a series' minutes in 24 bytes.
    #[test]
    fn series_minutes_are_24_bytes() {
        assert_eq!(std::mem::size_of::<SeriesMinutes>(), 24);
    }
}
