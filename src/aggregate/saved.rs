//! The aggregator's saved form (state layout 2): a compact binary encoding written and read
//! straight from and into the aggregator's own tables, with no intermediate copy of every
//! string and ID (layout 1, `AggregateState`, spelled each event ID as 32 hex digits in JSON).
//!
//! Integers are LEB128 varints (signed ones zigzag-encoded); a symbol is written as `sym + 1`,
//! `0` standing for `NO_SYM`. In order:
//! - the strings still referenced: count, then each as length and UTF-8 bytes (symbols below
//!   are positions in this list);
//! - the series: count, then each as its five key symbols (account, region, eventSource,
//!   eventName, errorCode), a data flag byte, its cell count and its cells: the minute (the
//!   first absolute, the others as the gap from the one before), count, the identity,
//!   user-agent and error-code tallies (length, then (symbol, count) pairs), and a resource
//!   tally behind a presence byte;
//! - the coverage: count, then (account, region, first minute);
//! - the event IDs by UTC day of the event: day count, then each day number, its ID count and
//!   each ID as 16 bytes little-endian, its minute of the day and its API fingerprint.
//!
//! Reading checks every length and symbol against what the buffer holds: a damaged state is an
//! error naming what is wrong, never a panic.

use super::{Aggregator, Cell, IdentityFilter, Minutes, SeenEvent, SeriesId, Tally};
use crate::decode::{NO_SYM, Sym};
use crate::model::{MINUTES_PER_DAY, Minute};
use rustc_hash::FxHashMap;

/// Append-only writer of the layout's integers.
#[derive(Debug, Default)]
pub struct Writer {
    pub bytes: Vec<u8>,
}

impl Writer {
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

/// Reader of the layout's integers; each read fails, naming what it read, past the end.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// How many bytes have been read.
    pub fn position(&self) -> usize {
        self.at
    }

    pub fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn truncated(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!("the saved state is cut short at byte {} ({what})", self.at)
    }

    pub fn varint(&mut self, what: &str) -> anyhow::Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| self.truncated(what))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        anyhow::bail!(
            "the saved state holds a malformed number at byte {} ({what})",
            self.at
        )
    }

    pub fn signed(&mut self, what: &str) -> anyhow::Result<i64> {
        let raw = self.varint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A count of items each at least `min_bytes` long: more than the rest of the buffer can
    /// hold is refused before anything is allocated for them.
    pub fn count(&mut self, what: &str, min_bytes: usize) -> anyhow::Result<usize> {
        let n = self.varint(what)?;
        let room = (self.bytes.len() - self.at) / min_bytes.max(1);
        match usize::try_from(n) {
            Ok(n) if n <= room => Ok(n),
            _ => Err(self.truncated(what)),
        }
    }

    pub fn take(&mut self, n: usize, what: &str) -> anyhow::Result<&'a [u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let end = end.ok_or_else(|| self.truncated(what))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    pub fn text(&mut self, what: &str) -> anyhow::Result<&'a str> {
        let n = self.count(what, 1)?;
        let bytes = self.take(n, what)?;
        std::str::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!("the saved state holds a string that is not UTF-8 ({what})")
        })
    }

    fn byte(&mut self, what: &str) -> anyhow::Result<u8> {
        Ok(self.take(1, what)?[0])
    }
}

impl Aggregator {
    /// Append the aggregator's saved form (layout 2) to `out`. Only strings still referenced
    /// are written. The bytes depend on what is counted, not on the order it was counted in
    /// (nor on a restore in between): series in `SeriesKey` order, strings numbered by first
    /// use in that order, coverage by name, IDs ascending within their day.
    pub fn write_saved(&self, out: &mut Writer) {
        let strings = self.symbols.strings();
        let series = self.series_in_order();
        let text = |sym: Sym| strings.get(sym).unwrap_or_default();
        let mut coverage: Vec<(&(Sym, Sym), &Minute)> = self.coverage.iter().collect();
        coverage.sort_unstable_by(|((a1, r1), _), ((a2, r2), _)| {
            (text(*a1), text(*r1)).cmp(&(text(*a2), text(*r2)))
        });
        let mut remap: Vec<Sym> = vec![NO_SYM; strings.len()];
        let mut kept: Vec<Sym> = Vec::new();
        let mut keep = |sym: Sym| {
            if sym != NO_SYM && remap[sym as usize] == NO_SYM {
                remap[sym as usize] = kept.len() as Sym;
                kept.push(sym);
            }
        };
        for (id, data) in &series {
            for sym in [
                id.account,
                id.region,
                id.event_source,
                id.event_name,
                id.error_code,
            ] {
                keep(sym);
            }
            for cell in &data.cells {
                let resources = cell.resources.as_deref().map_or(&[][..], Tally::entries);
                let tallies = [&cell.identities, &cell.user_agents, &cell.error_codes];
                for (sym, _) in tallies
                    .into_iter()
                    .flat_map(Tally::entries)
                    .chain(resources)
                {
                    keep(*sym);
                }
            }
        }
        for ((account, region), _) in &coverage {
            keep(*account);
            keep(*region);
        }
        let new = |sym: Sym| {
            if sym == NO_SYM {
                NO_SYM
            } else {
                remap[sym as usize]
            }
        };
        // Room for the whole form at once (about 10 bytes a cell, 22 an ID), rather than doubling
        // into twice what it needs: the state's bytes sit beside the counts at their largest.
        let cells: usize = series.iter().map(|(_, data)| data.cells.len()).sum();
        let ids: usize = self.seen.by_day.values().map(|ids| ids.len()).sum();
        let text_bytes: usize = kept.iter().map(|sym| strings[*sym].len() + 2).sum();
        out.bytes.reserve(
            text_bytes + series.len() * 8 + cells * 10 + ids * 22 + coverage.len() * 8 + 64,
        );
        out.varint(kept.len() as u64);
        for sym in &kept {
            out.text(&strings[*sym]);
        }
        out.varint(series.len() as u64);
        let tally = |out: &mut Writer, tally: &Tally| {
            out.varint(tally.len() as u64);
            for (sym, n) in tally.entries() {
                out.sym(new(*sym));
                out.varint(u64::from(*n));
            }
        };
        for (id, data) in series {
            for sym in [
                id.account,
                id.region,
                id.event_source,
                id.event_name,
                id.error_code,
            ] {
                out.sym(new(sym));
            }
            out.bytes.push(u8::from(id.data));
            out.varint(data.minutes.len() as u64);
            let mut previous = None;
            for (minute, cell) in data.minutes.iter().zip(&data.cells) {
                match previous {
                    None => out.signed(minute.0),
                    Some(Minute(p)) => out.varint((minute.0 - p) as u64),
                }
                previous = Some(*minute);
                out.varint(u64::from(cell.count));
                tally(out, &cell.identities);
                tally(out, &cell.user_agents);
                tally(out, &cell.error_codes);
                match &cell.resources {
                    None => out.bytes.push(0),
                    Some(resources) => {
                        out.bytes.push(1);
                        tally(out, resources);
                    }
                }
            }
        }
        out.varint(coverage.len() as u64);
        for ((account, region), minute) in coverage {
            out.sym(new(*account));
            out.sym(new(*region));
            out.signed(minute.0);
        }
        out.varint(self.seen.by_day.len() as u64);
        for (day, ids) in &self.seen.by_day {
            out.signed(*day);
            out.varint(ids.len() as u64);
            let mut ids: Vec<(&u128, &SeenEvent)> = ids.iter().collect();
            ids.sort_unstable_by_key(|(id, _)| **id);
            for (id, seen) in ids {
                out.bytes.extend_from_slice(&id.to_le_bytes());
                out.bytes
                    .extend_from_slice(&seen.minute_of_day.to_le_bytes());
                out.bytes.extend_from_slice(&seen.api.to_le_bytes());
            }
        }
    }

    /// An aggregator holding what `write_saved` wrote.
    pub fn read_saved(
        input: &mut Reader<'_>,
        excluded: IdentityFilter,
    ) -> anyhow::Result<Aggregator> {
        let mut aggregator = Aggregator::with_excluded_identities(excluded);
        let symbols = input.count("the number of strings", 1)?;
        let mut global: Vec<Sym> = Vec::with_capacity(symbols);
        for _ in 0..symbols {
            global.push(aggregator.symbols.intern(input.text("a string")?));
        }
        let sym = |input: &mut Reader<'_>, what: &str| -> anyhow::Result<Sym> {
            match input.varint(what)? {
                0 => Ok(NO_SYM),
                n => global.get((n - 1) as usize).copied().ok_or_else(|| {
                    anyhow::anyhow!(
                        "the saved state refers to string {} ({what}), but holds only {}",
                        n - 1,
                        global.len()
                    )
                }),
            }
        };
        let tally = |input: &mut Reader<'_>| -> anyhow::Result<Tally> {
            let n = input.count("a tally's length", 2)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                let value = sym(input, "a tallied value")?;
                let count = u32::try_from(input.varint("a tallied count")?)?;
                entries.push((value, count));
            }
            Ok(Tally::from_entries(entries))
        };
        let series = input.count("the number of series", 7)?;
        aggregator.series.reserve(series);
        for _ in 0..series {
            let mut key = [NO_SYM; 5];
            for slot in &mut key {
                *slot = sym(input, "a series key")?;
            }
            let [account, region, event_source, event_name, error_code] = key;
            let id = SeriesId {
                account,
                region,
                event_source,
                event_name,
                error_code,
                data: input.byte("a series' data flag")? != 0,
            };
            let cells = input.count("a series' minute count", 6)?;
            let mut data = Minutes {
                minutes: Vec::with_capacity(cells),
                cells: Vec::with_capacity(cells),
            };
            for _ in 0..cells {
                let minute = match data.minutes.last() {
                    None => Minute(input.signed("a minute")?),
                    Some(Minute(p)) => {
                        let gap = i64::try_from(input.varint("a minute gap")?)?;
                        anyhow::ensure!(gap > 0, "the saved state holds minutes out of order");
                        Minute(p + gap)
                    }
                };
                let count = u32::try_from(input.varint("a count")?)?;
                let identities = tally(input)?;
                let user_agents = tally(input)?;
                let error_codes = tally(input)?;
                let resources = match input.byte("a resource flag")? {
                    0 => None,
                    _ => Some(Box::new(tally(input)?)),
                };
                data.minutes.push(minute);
                data.cells.push(Cell {
                    count,
                    identities,
                    user_agents,
                    error_codes,
                    resources,
                });
            }
            if aggregator.series.insert(id, data).is_some() {
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
            let n = input.count("a day's ID count", 22)?;
            let mut ids: FxHashMap<u128, SeenEvent> = FxHashMap::default();
            ids.reserve(n);
            for _ in 0..n {
                let raw = input.take(22, "an event ID")?;
                let id = u128::from_le_bytes(raw[..16].try_into()?);
                let minute_of_day = u16::from_le_bytes(raw[16..18].try_into()?);
                anyhow::ensure!(
                    i64::from(minute_of_day) < MINUTES_PER_DAY,
                    "the saved state holds an event minute {minute_of_day} past the end of its day"
                );
                let api = u32::from_le_bytes(raw[18..22].try_into()?);
                ids.insert(id, SeenEvent { minute_of_day, api });
            }
            aggregator.seen.by_day.insert(day, ids);
        }
        Ok(aggregator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(input.is_done());
        // Cut anywhere, the aggregator's form fails cleanly.
        let mut saved = Writer::default();
        Aggregator::new().write_saved(&mut saved);
        let cut = &saved.bytes[..saved.bytes.len() - 1];
        assert!(Aggregator::read_saved(&mut Reader::new(cut), IdentityFilter::default()).is_err());
        let huge = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = Aggregator::read_saved(&mut Reader::new(&huge), IdentityFilter::default());
        assert!(format!("{:#}", err.unwrap_err()).contains("cut short"));
    }
}
