//! Per-minute rates around episodes, counted again from decoded log objects (pure).
//!
//! Each episode asks for its series (its `SeriesKey`: the records' own `recipientAccountId` and
//! `awsRegion`, the API, calls or errors with its code, management or data events) over a
//! window of minutes. `Recount` feeds the decoded objects to the run's own `Aggregator`, so the
//! counts are the run's counts by construction: the same de-duplication by `eventID` (a copy
//! dropped, a conflicting ID counted), the same series keys, the same categories. Only the
//! events of a wanted API are handed on. A call-rate Insight counted write calls or every
//! management call (`--call-rate-events`): requests of each scope get their own aggregator,
//! and the write one sees read-only calls without their `READ` flag, as a write-only run would.

use crate::aggregate::Aggregator;
use crate::decode::{DecodedObject, NO_SYM, flags};
use crate::model::{CallRateScope, Minute, SeriesKey};
use std::collections::{HashMap, HashSet};

/// One episode's wanted series and minutes `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub key: SeriesKey,
    /// Which management calls the run counted toward call rate.
    pub scope: CallRateScope,
    pub from: Minute,
    pub until: Minute,
}

/// Counts a set of requests over decoded objects, through the run's `Aggregator`.
#[derive(Debug)]
pub struct Recount {
    requests: Vec<Request>,
    /// The event names asked for (an object's other events are not handed on).
    names: HashSet<String>,
    /// For requests that counted write calls only (and error rates, which scope does not touch).
    write: Option<Aggregator>,
    /// For call-rate requests that counted every management call.
    all: Option<Aggregator>,
}

impl Recount {
    pub fn new(requests: Vec<Request>) -> Recount {
        let names = requests
            .iter()
            .map(|r| r.key.event_name.to_string())
            .collect();
        let all_wanted = requests.iter().any(|r| r.scope == CallRateScope::All);
        let write_wanted = requests.iter().any(|r| r.scope == CallRateScope::Write);
        Recount {
            requests,
            names,
            write: write_wanted.then(Aggregator::new),
            all: all_wanted.then(Aggregator::new),
        }
    }

    /// Count the events of one object.
    pub fn add(&mut self, object: &DecodedObject) {
        let wanted: Vec<bool> = object
            .symbols
            .iter()
            .map(|s| self.names.contains(s))
            .collect();
        let keep = |read: bool| {
            let events = object
                .events
                .iter()
                .filter(|e| e.event_name != NO_SYM && wanted[e.event_name as usize])
                .map(|e| {
                    let mut e = *e;
                    if !read {
                        e.flags &= !flags::READ;
                    }
                    e
                })
                .collect();
            DecodedObject {
                symbols: object.symbols.clone(),
                events,
                coverage: object.coverage.clone(),
                ..DecodedObject::default()
            }
        };
        if let Some(all) = &mut self.all {
            all.add(&keep(true));
        }
        if let Some(write) = &mut self.write {
            write.add(&keep(false));
        }
    }

    /// The per-minute counts of every request, in request order.
    pub fn finish(self) -> Vec<Vec<u64>> {
        self.counts()
    }

    /// The per-minute counts of every request so far, in request order.
    pub fn counts(&self) -> Vec<Vec<u64>> {
        let index = |aggregator: &Option<Aggregator>| {
            let mut by_key: HashMap<SeriesKey, Vec<(Minute, u64)>> = HashMap::new();
            if let Some(a) = aggregator {
                for s in a.view(Minute(0)).series {
                    let cells = s
                        .minutes
                        .iter()
                        .zip(s.cells.iter())
                        .map(|(m, c)| (*m, u64::from(c.count)))
                        .collect();
                    by_key.insert(s.key, cells);
                }
            }
            by_key
        };
        let (write, all) = (index(&self.write), index(&self.all));
        self.requests
            .iter()
            .map(|r| {
                let mut counts = vec![0; (r.until.0 - r.from.0).max(0) as usize];
                let series = match r.scope {
                    CallRateScope::All => &all,
                    CallRateScope::Write => &write,
                };
                for (minute, n) in series.get(&r.key).into_iter().flatten() {
                    if r.from <= *minute && *minute < r.until {
                        counts[(minute.0 - r.from.0) as usize] = *n;
                    }
                }
                counts
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Event, Sym};
    use crate::model::{EventCategory, InsightKind};

    fn key(name: &str, kind: InsightKind) -> SeriesKey {
        SeriesKey {
            account: "123456789012".into(),
            region: "us-east-1".into(),
            event_source: "ec2.amazonaws.com".into(),
            event_name: name.into(),
            kind,
            category: EventCategory::Management,
        }
    }

    /// (id, minute, name, flags, error code)
    type Case<'a> = (Option<u128>, i64, &'a str, u8, Option<&'a str>);

    /// An object holding these events.
    fn object(events: &[Case<'_>]) -> DecodedObject {
        let mut symbols: Vec<String> = ["123456789012", "us-east-1", "ec2.amazonaws.com"]
            .map(String::from)
            .to_vec();
        let mut sym = |s: &str| match symbols.iter().position(|x| x == s) {
            Some(i) => i as Sym,
            None => {
                symbols.push(s.to_owned());
                (symbols.len() - 1) as Sym
            }
        };
        let events = events
            .iter()
            .map(|&(id, minute, name, flags, code)| Event {
                id,
                minute: Minute(minute),
                account: 0,
                region: 1,
                event_source: 2,
                event_name: sym(name),
                error_code: code.map_or(NO_SYM, &mut sym),
                identity: NO_SYM,
                user_agent: NO_SYM,
                flags,
            })
            .collect();
        DecodedObject {
            symbols: symbols.into_iter().collect(),
            events,
            ..DecodedObject::default()
        }
    }

    #[test]
    fn counts_each_series_by_the_run_rules() {
        let requests = vec![
            Request {
                key: key("RunInstances", InsightKind::CallRate),
                scope: CallRateScope::Write,
                from: Minute(100),
                until: Minute(104),
            },
            Request {
                key: key(
                    "RunInstances",
                    InsightKind::ErrorRate {
                        error_code: "Throttling".into(),
                    },
                ),
                scope: CallRateScope::Write,
                from: Minute(100),
                until: Minute(104),
            },
        ];
        let mut recount = Recount::new(requests);
        let (w, e) = (flags::WRITE, flags::ERROR);
        recount.add(&object(&[
            (Some(1), 100, "RunInstances", w, None),
            (Some(2), 101, "RunInstances", w | e, Some("Throttling")),
            (Some(3), 101, "RunInstances", e, Some("AccessDenied")),
            (Some(4), 103, "RunInstances", e, Some("Throttling")),
            (Some(5), 104, "RunInstances", w, None),
            (Some(6), 99, "RunInstances", w, None),
            (Some(7), 102, "TerminateInstances", w, None),
            (None, 102, "RunInstances", w, None),
        ]));
        // The same event delivered twice (an organization and an account trail) counts once.
        recount.add(&object(&[(Some(1), 100, "RunInstances", w, None)]));
        let counts = recount.finish();
        assert_eq!(counts[0], vec![1, 1, 1, 0], "calls: writes only");
        assert_eq!(counts[1], vec![0, 1, 0, 1], "errors: that code only");
    }

    #[test]
    fn read_only_calls_count_only_where_the_run_counted_them() {
        let request = |scope| Request {
            key: key("DescribeInstances", InsightKind::CallRate),
            scope,
            from: Minute(10),
            until: Minute(12),
        };
        let mut recount = Recount::new(vec![
            request(CallRateScope::Write),
            request(CallRateScope::All),
        ]);
        let (w, r) = (flags::WRITE, flags::READ);
        recount.add(&object(&[
            (Some(1), 10, "DescribeInstances", r, None),
            (Some(2), 10, "DescribeInstances", w, None),
            (Some(3), 11, "DescribeInstances", r, None),
        ]));
        let counts = recount.finish();
        assert_eq!(counts[0], vec![1, 0], "write scope: the write call only");
        assert_eq!(counts[1], vec![2, 1], "all: read-only calls too");
    }

    #[test]
    fn each_record_counts_under_its_own_account_whatever_folder_it_came_from() {
        // The object's events name account 123456789012; a request for another account
        // (say the folder's) gets nothing, the record's own account gets the call.
        let mut other = key("RunInstances", InsightKind::CallRate);
        other.account = "218007301253".into();
        let own = key("RunInstances", InsightKind::CallRate);
        let request = |key| Request {
            key,
            scope: CallRateScope::Write,
            from: Minute(0),
            until: Minute(1),
        };
        let mut recount = Recount::new(vec![request(other), request(own)]);
        recount.add(&object(&[(Some(1), 0, "RunInstances", flags::WRITE, None)]));
        assert_eq!(recount.finish(), vec![vec![0], vec![1]]);
    }
}
