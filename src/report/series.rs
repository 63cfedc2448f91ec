//! Per-minute rates around episodes, counted again from decoded log objects (pure).
//!
//! Each episode asks for its API's series (calls, or errors with its error code) over a window
//! of minutes; `Recount` takes decoded objects one by one and counts every event of a wanted
//! series into the minutes of every window that holds it. Events are counted by the same rules
//! as a run (write management calls, or every management call with `--call-rate-events all`;
//! read and write data calls; calls of the series' category with that error code) and
//! de-duplicated by `eventID`, as the aggregate stage does, so the bars add up to the run's own
//! counts.

use crate::decode::{DecodedObject, NO_SYM, Sym, flags};
use crate::model::{CallRateScope, EventCategory, InsightKind, Minute, SeriesKey};
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

/// Whether an event with `event_flags` counts toward the series of `request`.
fn counts_toward(request: &Request, event_flags: u8) -> bool {
    let data = event_flags & flags::DATA != 0;
    if data != (request.key.category == EventCategory::Data) {
        return false;
    }
    match (&request.key.kind, request.scope) {
        (InsightKind::ErrorRate { .. }, _) => event_flags & flags::ERROR != 0,
        _ if data => true,
        (InsightKind::CallRate, CallRateScope::Write) => event_flags & flags::WRITE != 0,
        (InsightKind::CallRate, CallRateScope::All) => {
            event_flags & (flags::WRITE | flags::READ) != 0
        }
    }
}

/// Counts a set of requests over decoded objects.
#[derive(Debug)]
pub struct Recount {
    requests: Vec<Request>,
    /// `account \0 region \0 source \0 name` -> the requests of that API.
    by_api: HashMap<String, Vec<usize>>,
    names: HashSet<String>,
    counts: Vec<Vec<u64>>,
    seen: HashSet<u128>,
}

fn api_key(account: &str, region: &str, source: &str, name: &str) -> String {
    format!("{account}\0{region}\0{source}\0{name}")
}

impl Recount {
    pub fn new(requests: Vec<Request>) -> Recount {
        let mut by_api: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in requests.iter().enumerate() {
            let k = &r.key;
            by_api
                .entry(api_key(
                    &k.account,
                    &k.region,
                    &k.event_source,
                    &k.event_name,
                ))
                .or_default()
                .push(i);
        }
        let names = requests.iter().map(|r| r.key.event_name.clone()).collect();
        let counts = requests
            .iter()
            .map(|r| vec![0; (r.until.0 - r.from.0).max(0) as usize])
            .collect();
        Recount {
            requests,
            by_api,
            names,
            counts,
            seen: HashSet::new(),
        }
    }

    /// Count the events of one object.
    pub fn add(&mut self, object: &DecodedObject) {
        let symbol = |s: Sym| (s != NO_SYM).then(|| &object.symbols[s]);
        let wanted_name: Vec<bool> = object
            .symbols
            .iter()
            .map(|s| self.names.contains(s))
            .collect();
        for event in &object.events {
            if !wanted_name[event.event_name as usize] {
                continue;
            }
            let key = api_key(
                symbol(event.account).unwrap_or_default(),
                symbol(event.region).unwrap_or_default(),
                symbol(event.event_source).unwrap_or_default(),
                symbol(event.event_name).unwrap_or_default(),
            );
            let Some(wanting) = self.by_api.get(&key) else {
                continue;
            };
            if let Some(id) = event.id
                && !self.seen.insert(id)
            {
                continue;
            }
            for &i in wanting {
                let request = &self.requests[i];
                let counted = counts_toward(request, event.flags)
                    && match &request.key.kind {
                        InsightKind::CallRate => true,
                        InsightKind::ErrorRate { error_code } => {
                            symbol(event.error_code) == Some(error_code.as_str())
                        }
                    };
                if counted && request.from <= event.minute && event.minute < request.until {
                    self.counts[i][(event.minute.0 - request.from.0) as usize] += 1;
                }
            }
        }
    }

    /// The per-minute counts of every request, in request order.
    pub fn finish(self) -> Vec<Vec<u64>> {
        self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Event;

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
}
