//! Coverage: what the runs could not see, from their records (`sink::runs`) and the
//! bad-objects reports (`sink::bad_objects`), so the page says where an absence of Insights
//! may only be an absence of logs (pure).
//!
//! A day can be analysed by several runs (a nightly run, then a backfill over it): the newest
//! run whose analysed days hold a day speaks for it, so a gap a later run filled is not shown.
//! Withheld partitions are those of the newest run that analysed anything (a later run
//! writes them once it can read their logs). Objects skipped come from the bad-objects reports,
//! which each day's step rewrites (or removes) when the day is redone.

use crate::sink::bad_objects::DaySeen;
use crate::sink::runs::{Gap, RunSeen};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

/// What the page shows in its coverage section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Run records read.
    pub runs: usize,
    /// The newest run: command, start, exit code and fatal error.
    pub latest: Option<RunSeen>,
    /// The days the runs analysed, first and last.
    pub days: Option<(NaiveDate, NaiveDate)>,
    pub days_without_logs: Vec<NaiveDate>,
    pub delivery_gaps: Vec<Gap>,
    /// `account/region` withheld by the newest run that analysed days, and when it ran.
    pub withheld: Vec<String>,
    pub withheld_by: Option<DateTime<Utc>>,
    /// Objects not read, by day: (object, reason).
    pub skipped: BTreeMap<NaiveDate, Vec<(String, String)>>,
    /// Objects read with bad records, and files ignored, over every day.
    pub bad_record_objects: u64,
    pub ignored: u64,
}

impl Coverage {
    /// Something the analyst should know: a day or partition without its logs, or an object
    /// not read.
    pub fn has_gaps(&self) -> bool {
        !self.days_without_logs.is_empty()
            || !self.delivery_gaps.is_empty()
            || !self.withheld.is_empty()
            || !self.skipped.is_empty()
    }

    pub fn skipped_total(&self) -> usize {
        self.skipped.values().map(Vec::len).sum()
    }
}

/// Coverage from the runs' records (any order) and the bad-objects reports.
pub fn coverage(runs: &[RunSeen], bad_objects: &[DaySeen]) -> Coverage {
    let mut runs: Vec<&RunSeen> = runs.iter().collect();
    runs.sort_by_key(|r| r.started);
    // The newest run that analysed a day speaks for it.
    let speaker = |day: NaiveDate| -> Option<DateTime<Utc>> {
        runs.iter()
            .rev()
            .find(|r| r.days.is_some_and(|(a, b)| a <= day && day <= b))
            .map(|r| r.started)
    };
    let mut c = Coverage {
        runs: runs.len(),
        latest: runs.last().map(|r| (*r).clone()),
        ..Coverage::default()
    };
    for r in &runs {
        if let Some((a, b)) = r.days {
            c.days = Some(match c.days {
                Some((x, y)) => (x.min(a), y.max(b)),
                None => (a, b),
            });
        }
        for &day in &r.days_without_logs {
            if speaker(day).is_none_or(|s| s == r.started) && !c.days_without_logs.contains(&day) {
                c.days_without_logs.push(day);
            }
        }
        for g in &r.delivery_gaps {
            let same = |x: &Gap| (x.day, &x.account, &x.region) == (g.day, &g.account, &g.region);
            if speaker(g.day).is_none_or(|s| s == r.started) {
                c.delivery_gaps.retain(|x| !same(x));
                c.delivery_gaps.push(g.clone());
            }
        }
    }
    c.days_without_logs.sort();
    c.delivery_gaps
        .sort_by(|a, b| (a.day, &a.account, &a.region).cmp(&(b.day, &b.account, &b.region)));
    if let Some(r) = runs.iter().rev().find(|r| r.days.is_some()) {
        c.withheld = r.partitions_withheld.clone();
        c.withheld.sort();
        c.withheld_by = Some(r.started);
    }
    for d in bad_objects {
        if !d.skipped.is_empty() {
            c.skipped
                .entry(d.day)
                .or_default()
                .extend(d.skipped.clone());
        }
        c.bad_record_objects += d.bad_record_objects;
        c.ignored += d.ignored;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_day;

    fn day(s: &str) -> NaiveDate {
        parse_day(s).unwrap()
    }

    fn run(
        started: &str,
        days: (&str, &str),
        without: &[&str],
        gaps: &[&str],
        withheld: &[&str],
    ) -> RunSeen {
        RunSeen {
            command: "nightly".into(),
            started: DateTime::parse_from_rfc3339(started)
                .unwrap()
                .with_timezone(&Utc),
            exit_code: 0,
            error: None,
            days: Some((day(days.0), day(days.1))),
            days_without_logs: without.iter().map(|d| day(d)).collect(),
            delivery_gaps: gaps
                .iter()
                .map(|d| Gap {
                    account: "123456789012".into(),
                    region: "us-east-1".into(),
                    day: day(d),
                    expected: 40,
                    seen: 1,
                })
                .collect(),
            partitions_withheld: withheld.iter().map(|p| p.to_string()).collect(),
            objects_skipped: vec![],
        }
    }

    #[test]
    fn the_newest_run_of_a_day_speaks_for_it() {
        let runs = [
            // Night 1 saw no logs on the 8th and a gap on the 9th, and withheld a partition.
            run(
                "2019-11-10T01:30:00Z",
                ("2019-11-08", "2019-11-09"),
                &["2019-11-08"],
                &["2019-11-09"],
                &["123456789012/eu-west-1"],
            ),
            // A backfill later re-analysed the 9th (the late logs arrived): no gap any more.
            run(
                "2019-11-12T01:30:00Z",
                ("2019-11-09", "2019-11-09"),
                &[],
                &[],
                &[],
            ),
            // Night 3 saw a gap on the 11th.
            run(
                "2019-11-11T01:30:00Z",
                ("2019-11-10", "2019-11-11"),
                &[],
                &["2019-11-11"],
                &["123456789012/eu-west-1"],
            ),
        ];
        let bad = [DaySeen {
            day: day("2019-11-09"),
            skipped: vec![("s3://logs/a.json.gz".into(), "quarantined".into())],
            bad_record_objects: 2,
            ignored: 1,
        }];
        let c = coverage(&runs, &bad);
        assert_eq!(c.runs, 3);
        assert_eq!(c.days, Some((day("2019-11-08"), day("2019-11-11"))));
        assert_eq!(c.days_without_logs, [day("2019-11-08")]);
        let gaps: Vec<NaiveDate> = c.delivery_gaps.iter().map(|g| g.day).collect();
        assert_eq!(gaps, [day("2019-11-11")]);
        assert!(
            c.withheld.is_empty(),
            "the newest run withheld nothing: {c:?}"
        );
        assert_eq!(c.skipped_total(), 1);
        assert_eq!((c.bad_record_objects, c.ignored), (2, 1));
        assert!(c.has_gaps());
        assert_eq!(coverage(&[], &[]), Coverage::default());
    }
}
