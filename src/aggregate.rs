//! Decoded objects -> per-minute counts, keyed by account, region, API and Insight kind.
//!
//! The `Aggregator` is fed objects in listing order (so the run is deterministic whatever the
//! fetch order), drops events whose `eventID` it has already counted, and keeps, for each
//! series and minute, the count and small tallies of the attributed values (caller ARN, user
//! agent, error code, and for data events the resource ARNs). Memory grows with series x active
//! minutes x distinct values, plus one 128-bit ID per analysed event for de-duplication. Data
//! events name a new object in almost every call, so a minute keeps at most
//! `MAX_RESOURCES_PER_MINUTE` distinct resource ARNs (the first seen; later ones in that minute
//! are not attributed), and only the ARNs kept are interned.

use crate::decode::{DecodedObject, Interner, NO_SYM, Strings, Sym, flags};
use crate::model::{EventCategory, InsightKind, MINUTES_PER_DAY, Minute, SeriesKey};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;

/// Counts per value of one attribute within one minute: a short list, almost always of one
/// value (one caller, one user agent, one outcome), which is kept inline: the window holds three
/// tallies for every active minute of every series, and a heap list each would triple its memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Tally {
    #[default]
    Empty,
    One((Sym, u32)),
    Many(Vec<(Sym, u32)>),
}

impl Tally {
    fn add(&mut self, value: Sym) {
        match self {
            Tally::Empty => *self = Tally::One((value, 1)),
            Tally::One((v, n)) if *v == value => *n += 1,
            Tally::One(first) => *self = Tally::Many(vec![*first, (value, 1)]),
            Tally::Many(entries) => match entries.iter_mut().find(|(v, _)| *v == value) {
                Some((_, n)) => *n += 1,
                None => entries.push((value, 1)),
            },
        }
    }

    /// The values and their counts, in the order first seen.
    pub fn entries(&self) -> &[(Sym, u32)] {
        match self {
            Tally::Empty => &[],
            Tally::One(entry) => std::slice::from_ref(entry),
            Tally::Many(entries) => entries,
        }
    }

    fn len(&self) -> usize {
        self.entries().len()
    }

    fn from_entries(mut entries: Vec<(Sym, u32)>) -> Tally {
        match entries.len() {
            0 => Tally::Empty,
            1 => Tally::One(entries.remove(0)),
            _ => Tally::Many(entries),
        }
    }
}

/// One minute of one series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub count: u32,
    pub identities: Tally,
    pub user_agents: Tally,
    /// Only for call-rate series; `NO_SYM` stands for success (AWS's `"null"`).
    pub error_codes: Tally,
    /// Only for data-event series: `resources[].ARN`, at most `MAX_RESOURCES_PER_MINUTE`.
    /// Boxed: management series never have one, and their cells stay small.
    pub resources: Option<Box<Tally>>,
}

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

/// One series' active minutes, ascending, and their cells: kept in order as they are counted
/// (records arrive nearly in time order, so a minute is almost always the last one or new at
/// the end), so detection can read them in place.
#[derive(Debug, Clone, Default)]
struct Minutes {
    minutes: Vec<Minute>,
    cells: Vec<Cell>,
}

impl Minutes {
    fn cell(&mut self, minute: Minute) -> &mut Cell {
        let at = match self.minutes.last() {
            Some(last) if *last < minute => self.minutes.len(),
            Some(last) if *last == minute => self.minutes.len() - 1,
            _ => self.minutes.partition_point(|m| *m < minute),
        };
        if self.minutes.get(at) != Some(&minute) {
            self.minutes.insert(at, minute);
            self.cells.insert(at, Cell::default());
        }
        &mut self.cells[at]
    }

    /// Drop the minutes before `minute`, and the room a longer window needed: memory follows
    /// the window, not the longest window the run has seen.
    fn prune_before(&mut self, minute: Minute) {
        let gone = self.minutes.partition_point(|m| *m < minute);
        self.minutes.drain(..gone);
        self.cells.drain(..gone);
        let room = self.minutes.len() + self.minutes.len() / 4;
        self.minutes.shrink_to(room);
        self.cells.shrink_to(room);
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

/// Counters the summary reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub duplicates: u64,
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

    pub fn excludes(&self, identity: &str) -> bool {
        self.patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => identity.starts_with(prefix),
            None => identity == p,
        })
    }
}

/// The analysed events' IDs with their minute, one table per day of the events' time. A copy
/// of an event (the same event delivered by an organization trail and an account trail, or a
/// file delivered twice) has the event's own `eventTime`, so it is looked up in its day's table
/// only; forgetting a day drops its table whole, with no pass over the others.
#[derive(Debug, Default)]
struct SeenIds {
    by_day: BTreeMap<i64, FxHashMap<u128, Minute>>,
}

impl SeenIds {
    /// Remember `id` at `minute`; false if it was already remembered (a duplicate).
    fn insert(&mut self, id: u128, minute: Minute) -> bool {
        let day = minute.0.div_euclid(MINUTES_PER_DAY);
        match self.by_day.entry(day).or_default().entry(id) {
            Entry::Occupied(_) => false,
            Entry::Vacant(new) => {
                new.insert(minute);
                true
            }
        }
    }

    /// Forget the IDs of events before `minute`.
    fn forget_before(&mut self, minute: Minute) {
        let day = minute.0.div_euclid(MINUTES_PER_DAY);
        self.by_day = self.by_day.split_off(&day);
        if let Some(first) = self.by_day.get_mut(&day)
            && minute.0 > day * MINUTES_PER_DAY
        {
            first.retain(|_, m| *m >= minute);
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&u128, &Minute)> {
        self.by_day.values().flatten()
    }
}

#[derive(Debug, Default)]
pub struct Aggregator {
    symbols: Interner,
    /// The analysed events' IDs, with their minute (for pruning).
    seen: SeenIds,
    series: FxHashMap<SeriesId, Minutes>,
    coverage: FxHashMap<(Sym, Sym), Minute>,
    excluded_identities: IdentityFilter,
    pub stats: AggregateStats,
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
        let excluded: Vec<bool> = object
            .symbols
            .iter()
            .map(|s| self.excluded_identities.excludes(s))
            .collect();
        let map: Vec<Sym> = object.symbols.iter().map(|s| self.intern(s)).collect();
        let global = |sym: Sym| {
            if sym == NO_SYM {
                NO_SYM
            } else {
                map[sym as usize]
            }
        };
        // Resource ARNs: (event index, ARN symbol of the object's own table), in event order.
        let mut resources = object.resources.as_slice();
        for &((account, region), minute) in &object.coverage {
            let first = self
                .coverage
                .entry((global(account), global(region)))
                .or_insert(minute);
            *first = (*first).min(minute);
        }
        for (index, event) in object.events.iter().enumerate() {
            let at = resources.partition_point(|(i, _)| (*i as usize) < index);
            let (_, rest) = resources.split_at(at);
            let arns_end = rest.partition_point(|(i, _)| *i as usize == index);
            let (arns, rest) = rest.split_at(arns_end);
            resources = rest;
            match event.id {
                Some(id) if !self.seen.insert(id, event.minute) => {
                    self.stats.duplicates += 1;
                    continue;
                }
                Some(_) => {}
                None => self.stats.events_without_id += 1,
            }
            if event.identity != NO_SYM && excluded[event.identity as usize] {
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
                let cell = self.cell(id, event.minute);
                cell.count += 1;
                cell.identities.add(identity);
                cell.user_agents.add(agent);
                cell.error_codes.add(error);
                if id.data {
                    self.attribute_resources(id, event.minute, arns, object);
                }
            }
            if event.flags & flags::ERROR != 0 {
                let id = SeriesId {
                    error_code: error,
                    ..id
                };
                let cell = self.cell(id, event.minute);
                cell.count += 1;
                cell.identities.add(identity);
                cell.user_agents.add(agent);
                if id.data {
                    self.attribute_resources(id, event.minute, arns, object);
                }
            }
        }
    }

    /// Tally one data event's resource ARNs in its cell (which exists): an ARN already kept is
    /// counted; a new one only while the minute has room, and only then interned.
    fn attribute_resources(
        &mut self,
        id: SeriesId,
        minute: Minute,
        arns: &[(u32, Sym)],
        object: &DecodedObject,
    ) {
        // One lookup of the cell for all the event's ARNs (the table and the series are
        // separate fields, borrowed apart).
        let tally = self
            .series
            .entry(id)
            .or_default()
            .cell(minute)
            .resources
            .get_or_insert_with(Box::default);
        for &(_, arn) in arns {
            let text = &object.resource_symbols[arn];
            let known = self.symbols.find(text);
            let kept = known.is_some_and(|sym| tally.entries().iter().any(|(s, _)| *s == sym));
            if !kept && tally.len() >= MAX_RESOURCES_PER_MINUTE {
                continue;
            }
            let sym = match known {
                Some(sym) => sym,
                None => self.symbols.intern(text),
            };
            tally.add(sym);
        }
    }

    fn cell(&mut self, id: SeriesId, minute: Minute) -> &mut Cell {
        self.series.entry(id).or_default().cell(minute)
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
                    ..s
                })
                .collect(),
        }
    }

    /// The series in a stable order, borrowing their minutes. `history_floor` is the first
    /// minute the run read; a series' history starts at the later of it and the start of the
    /// first day with any record of its account and region (history is counted in whole days).
    pub fn view(&self, history_floor: Minute) -> Aggregated<'_> {
        let name = |sym: Sym| self.symbols.strings()[sym].to_owned();
        let mut series: Vec<Series<'_>> = self
            .series
            .iter()
            .map(|(id, data)| {
                let first_seen = self
                    .coverage
                    .get(&(id.account, id.region))
                    .copied()
                    .unwrap_or(history_floor);
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
                                error_code: name(id.error_code),
                            }
                        },
                        category: if id.data {
                            EventCategory::Data
                        } else {
                            EventCategory::Management
                        },
                    },
                    history_from: Minute::start_of_day(first_seen.day()).max(history_floor),
                    minutes: Cow::Borrowed(&data.minutes),
                    cells: Cow::Borrowed(&data.cells),
                }
            })
            .collect();
        series.sort_by(|a, b| a.key.cmp(&b.key));
        Aggregated {
            symbols: Cow::Borrowed(self.symbols.strings()),
            series,
        }
    }

    /// Forget minutes (and event IDs) before `minute`: an incremental run keeps only the window
    /// its next detection needs. What each account and region's history reaches back to is kept.
    pub fn prune_before(&mut self, minute: Minute) {
        for data in self.series.values_mut() {
            data.prune_before(minute);
        }
        self.series.retain(|_, data| !data.minutes.is_empty());
        self.seen.forget_before(minute);
    }

    /// Everything the aggregator holds, in an open, compact, stable form (only the strings
    /// still referenced are kept).
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
        let mut ids: Vec<(&SeriesId, &Minutes)> = self.series.iter().collect();
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
            let cells = (data.minutes.iter().zip(&data.cells))
                .map(|(m, c)| {
                    let mut tally =
                        |t: &Tally| t.entries().iter().map(|(s, n)| (remap(*s), *n)).collect();
                    if let Some(arns) = &c.resources {
                        resources.push((m.0, tally(arns)));
                    }
                    CellState(
                        m.0,
                        c.count,
                        tally(&c.identities),
                        tally(&c.user_agents),
                        tally(&c.error_codes),
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
        let mut seen: Vec<(String, i64)> = self
            .seen
            .iter()
            .map(|(id, m)| (format!("{id:032x}"), m.0))
            .collect();
        seen.sort();
        AggregateState {
            symbols,
            series,
            coverage,
            seen,
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
            let entry = aggregator.series.entry(id).or_default();
            let tally = |t: Vec<(Sym, u32)>| -> anyhow::Result<Tally> {
                t.into_iter()
                    .map(|(s, n)| Ok((check(s)?, n)))
                    .collect::<anyhow::Result<_>>()
                    .map(Tally::from_entries)
            };
            for CellState(minute, count, identities, agents, errors) in series.cells {
                *entry.cell(Minute(minute)) = Cell {
                    count,
                    identities: tally(identities)?,
                    user_agents: tally(agents)?,
                    error_codes: tally(errors)?,
                    resources: None,
                };
            }
            for (minute, arns) in series.resources {
                entry.cell(Minute(minute)).resources = Some(Box::new(tally(arns)?));
            }
        }
        for (account, region, minute) in state.coverage {
            aggregator
                .coverage
                .insert((check(account)?, check(region)?), Minute(minute));
        }
        for (id, minute) in state.seen {
            let id = u128::from_str_radix(&id, 16).map_err(|_| {
                anyhow::anyhow!("the saved state holds a malformed event ID {id:?}")
            })?;
            aggregator.seen.insert(id, Minute(minute));
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
    /// (event ID as 32 hex digits, minute).
    pub seen: Vec<(String, i64)>,
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
            max_object_bytes: 1 << 20,
            selection: crate::model::EventSelection::default(),
        };
        decode_object(
            json.as_bytes(),
            "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/f.json",
            &options,
        )
        .unwrap()
    }

    fn record(id: u32, minute: &str, extra: &str) -> String {
        format!(
            r#"{{"eventTime":"2019-11-07T13:{minute}:10Z","eventSource":"ec2.amazonaws.com",
            "eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"123456789012",
            "eventID":"00000000-0000-0000-0000-{id:012}","readOnly":false,"userAgent":"cli",
            "userIdentity":{{"arn":"arn:aws:sts::123456789012:assumed-role/Dev/s{id}"}}{extra}}}"#
        )
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
        let saved = serde_json::to_string(&agg.to_state()).unwrap();
        let restored = Aggregator::from_state(
            serde_json::from_str(&saved).unwrap(),
            IdentityFilter::default(),
        )
        .unwrap();
        assert_eq!(restored.to_state(), agg.to_state());
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
        let identities = calls.cells[0].identities.entries();
        assert_eq!(identities.len(), 1);
        assert_eq!(
            out.symbol(identities[0].0),
            Some("arn:aws:sts::123456789012:assumed-role/Dev")
        );
        assert_eq!(identities[0].1, 3);
        let errors: Vec<_> = calls.cells[0]
            .error_codes
            .entries()
            .iter()
            .map(|(s, n)| (out.symbol(*s), *n))
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

    /// Data events count in series of their own, with their resource ARNs (at most
    /// `MAX_RESOURCES_PER_MINUTE` distinct ones a minute, an ARN already kept still counted),
    /// and survive the saved state.
    #[test]
    fn data_events_keep_their_own_series_and_a_bounded_resource_tally() {
        let day = parse_day("2019-11-07").unwrap();
        let options = DecodeOptions {
            window: Window::for_days(DayRange::new(day, day)),
            filter: PartitionFilter::default(),
            max_object_bytes: 1 << 20,
            selection: crate::model::EventSelection {
                data: true,
                ..Default::default()
            },
        };
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
        let saved = serde_json::to_string(&agg.to_state()).unwrap();
        let restored = Aggregator::from_state(
            serde_json::from_str(&saved).unwrap(),
            IdentityFilter::default(),
        )
        .unwrap();
        assert_eq!(restored.to_state(), agg.to_state());
        let out = restored.finish(Minute(0));
        let categories: Vec<EventCategory> = out.series.iter().map(|s| s.key.category).collect();
        assert_eq!(
            categories,
            [EventCategory::Management, EventCategory::Data],
            "one management write, twenty data reads of the same API"
        );
        let data = &out.series[1].cells[0];
        assert_eq!(data.count, 20);
        let tally = data.resources.as_ref().unwrap().entries();
        assert_eq!(tally.len(), MAX_RESOURCES_PER_MINUTE);
        let counted: Vec<(&str, u32)> = tally
            .iter()
            .map(|(s, n)| (out.symbol(*s).unwrap(), *n))
            .collect();
        assert_eq!(counted[0], ("arn:aws:s3:::b/o0", 1));
        assert_eq!(counted[1], ("arn:aws:s3:::b", 20), "{counted:?}");
        assert!(out.series[0].cells[0].resources.is_none());
        // Only the ARNs kept were interned.
        assert!(out.symbols.iter().all(|s| s != "arn:aws:s3:::b/o19"));
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
            let kept = |id: u128| saved.contains(&format!("{id:032x}"));
            assert_eq!(kept(1), !forgotten, "cut {cut:?}");
            assert_eq!(kept(2), cut <= day.plus(13 * 60 + 40), "cut {cut:?}");
            agg.add(&early);
            agg.add(&early);
            let copies = if forgotten { 1 } else { 2 };
            assert_eq!(agg.stats.duplicates, copies, "cut {cut:?}");
        }
    }
}
