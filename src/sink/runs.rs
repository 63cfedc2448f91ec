//! The record of each run: `analyze` and `nightly` leave their run summary under the output
//! (`<out>/_trailsight/runs/<started>-<token>.json`) at the end of every run, whatever its exit
//! code (and, after a fatal error, when the output can still be written), so `--out` always
//! exists after a run and `report` can show what the runs could not see (days without logs,
//! delivery gaps, withheld partitions). The key starts with the run's start time (UTC, to the
//! millisecond), so keys sort in run order; a random token keeps two runs of one millisecond
//! (shards) apart. It is written through the same store as the Insights: atomic locally, one
//! PutObject in S3.
//!
//! Wire format (version 1), a JSON object:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `version` | integer | `1` |
//! | `command` | string | `analyze` or `nightly` |
//! | `started` | string | when the run started (RFC 3339, UTC, milliseconds) |
//! | `exit_code` | integer | the run's exit code (0 to 5, 2 after a fatal error, 130/143 when stopped) |
//! | `error` | string or null | the fatal error, if the run failed |
//! | `summary` | object | the run summary, as `--summary-json` writes it (its `source`, `output`, `first_day`, `last_day`, `days_without_logs`, `delivery_gaps`, `partitions_withheld`, `objects_skipped`, ...) |
//!
//! `parse` reads one back for `report`: only the fields the page shows, each checked (days are
//! dates, accounts 12 digits, regions plain names, counts in range); a file that is not such a
//! record is refused with the reason, never trusted.

use crate::model::parse_day;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The record's format version.
pub const RUN_VERSION: u32 = 1;
/// The folder under the output root that holds one record per run.
pub const RUNS_FOLDER: &str = "_trailsight/runs";
/// At most this many entries of each list are read from one record.
pub const MAX_LIST_ENTRIES: usize = 10_000;

/// The key of the record of a run that started at `started`, with a random `token`.
pub fn run_key(started: DateTime<Utc>, token: &str) -> String {
    let token: String = token
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!(
        "{RUNS_FOLDER}/{}-{token}.json",
        started.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// How a run ended, for its record.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord<'a, S: Serialize> {
    pub version: u32,
    pub command: &'a str,
    pub started: String,
    pub exit_code: u8,
    pub error: Option<String>,
    pub summary: &'a S,
}

/// The bytes of a run's record.
pub fn build<S: Serialize>(
    command: &str,
    started: DateTime<Utc>,
    exit_code: u8,
    error: Option<String>,
    summary: &S,
) -> Vec<u8> {
    let record = RunRecord {
        version: RUN_VERSION,
        command,
        started: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        exit_code,
        error,
        summary,
    };
    let mut bytes = serde_json::to_vec_pretty(&record).expect("serialising a run summary");
    bytes.push(b'\n');
    bytes
}

/// A delivery gap as a run saw it: a partition that delivered fewer objects on `day` than
/// its recent days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub account: String,
    pub region: String,
    pub day: NaiveDate,
    pub expected: u64,
    pub seen: u64,
}

/// What `report` shows of one run, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSeen {
    pub command: String,
    pub started: DateTime<Utc>,
    pub exit_code: u8,
    pub error: Option<String>,
    /// The days it analysed, when it analysed any.
    pub days: Option<(NaiveDate, NaiveDate)>,
    pub days_without_logs: Vec<NaiveDate>,
    pub delivery_gaps: Vec<Gap>,
    /// `account/region`.
    pub partitions_withheld: Vec<String>,
    /// Objects not read, by reason.
    pub objects_skipped: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct RawRun {
    version: u32,
    command: String,
    started: String,
    exit_code: u8,
    #[serde(default)]
    error: Option<String>,
    summary: RawSummary,
}

#[derive(Deserialize)]
struct RawSummary {
    #[serde(default)]
    first_day: Option<String>,
    #[serde(default)]
    last_day: Option<String>,
    #[serde(default)]
    days_without_logs: Vec<String>,
    #[serde(default)]
    delivery_gaps: Vec<RawGap>,
    #[serde(default)]
    partitions_withheld: Vec<String>,
    #[serde(default)]
    objects_skipped: std::collections::BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct RawGap {
    account: String,
    region: String,
    day: String,
    expected: u64,
    seen: u64,
}

/// Longest error text kept from a record.
const MAX_ERROR_CHARS: usize = 2000;
/// Largest count believed (objects per day, per reason).
const MAX_COUNT: u64 = 1 << 40;

fn account_ok(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

fn region_ok(r: &str) -> bool {
    (1..=32).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn day(field: &str, text: &str) -> Result<NaiveDate, String> {
    parse_day(text)
        .filter(|d| (2013..2100).contains(&chrono::Datelike::year(d)))
        .ok_or_else(|| format!("{field} {text:?} is not a day (YYYY-MM-DD, 2013 to 2099)"))
}

fn limited<T>(field: &str, list: Vec<T>) -> Result<Vec<T>, String> {
    if list.len() > MAX_LIST_ENTRIES {
        return Err(format!(
            "{field} has {} entries, more than {MAX_LIST_ENTRIES}",
            list.len()
        ));
    }
    Ok(list)
}

/// One run record read back, or why it cannot be used.
pub fn parse(bytes: &[u8]) -> Result<RunSeen, String> {
    let raw: RawRun =
        serde_json::from_slice(bytes).map_err(|e| format!("not a run record: {e}"))?;
    if raw.version != RUN_VERSION {
        return Err(format!(
            "version {} (this trailsight reads {RUN_VERSION})",
            raw.version
        ));
    }
    if !matches!(raw.command.as_str(), "analyze" | "nightly") {
        return Err(format!(
            "command {:?} is not analyze or nightly",
            raw.command
        ));
    }
    let started = DateTime::parse_from_rfc3339(&raw.started)
        .map_err(|e| format!("started {:?}: {e}", raw.started))?
        .with_timezone(&Utc);
    if !(2013..2100).contains(&chrono::Datelike::year(&started)) {
        return Err(format!("started {:?} is out of range", raw.started));
    }
    let s = raw.summary;
    let days = match (&s.first_day, &s.last_day) {
        (Some(first), Some(last)) => {
            let (first, last) = (day("first_day", first)?, day("last_day", last)?);
            if first > last {
                return Err(format!("first_day {first} is after last_day {last}"));
            }
            Some((first, last))
        }
        _ => None,
    };
    let days_without_logs = limited("days_without_logs", s.days_without_logs)?
        .iter()
        .map(|d| day("days_without_logs", d))
        .collect::<Result<Vec<_>, _>>()?;
    let delivery_gaps = limited("delivery_gaps", s.delivery_gaps)?
        .into_iter()
        .map(|g| {
            if !account_ok(&g.account) || !region_ok(&g.region) {
                return Err(format!(
                    "delivery gap of {:?}/{:?}: not an account and a region",
                    g.account, g.region
                ));
            }
            if g.expected > MAX_COUNT || g.seen > MAX_COUNT {
                return Err("delivery gap counts out of range".to_owned());
            }
            Ok(Gap {
                day: day("delivery gap day", &g.day)?,
                account: g.account,
                region: g.region,
                expected: g.expected,
                seen: g.seen,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let partitions_withheld = limited("partitions_withheld", s.partitions_withheld)?
        .into_iter()
        .map(|p| match p.split_once('/') {
            Some((a, r)) if account_ok(a) && region_ok(r) => Ok(p),
            _ => Err(format!("withheld partition {p:?} is not ACCOUNT/REGION")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let objects_skipped = limited("objects_skipped", s.objects_skipped.into_iter().collect())?
        .into_iter()
        .map(|(reason, n)| {
            if reason.len() > 64 || n > MAX_COUNT {
                Err(format!("objects_skipped {reason:?}: out of range"))
            } else {
                Ok((reason, n))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunSeen {
        command: raw.command,
        started,
        exit_code: raw.exit_code,
        error: raw.error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect()),
        days,
        days_without_logs,
        delivery_gaps,
        partitions_withheld,
        objects_skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_run_order() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let a = run_key(t("2026-12-06T06:15:28.123Z"), "ab/../cd");
        let b = run_key(t("2026-12-06T06:15:28.124Z"), "00");
        assert_eq!(a, "_trailsight/runs/20261206T061528.123Z-abcd.json");
        assert!(a < b, "{a} {b}");
    }

    #[test]
    fn a_record_round_trips_and_bad_ones_are_refused_with_the_reason() {
        let started = DateTime::parse_from_rfc3339("2026-12-06T06:15:28.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let summary = serde_json::json!({
            "first_day": "2019-11-07", "last_day": "2019-11-09",
            "days_without_logs": ["2019-11-08"],
            "delivery_gaps": [{"account": "123456789012", "region": "us-east-1", "day": "2019-11-09", "expected": 40, "seen": 2}],
            "partitions_withheld": ["123456789012/eu-west-1"],
            "objects_skipped": {"fetch_failed": 3},
        });
        let bytes = build("nightly", started, 4, None, &summary);
        let seen = parse(&bytes).unwrap();
        assert_eq!(seen.exit_code, 4);
        assert_eq!(seen.days.unwrap().1.to_string(), "2019-11-09");
        assert_eq!(seen.delivery_gaps[0].expected, 40);
        assert_eq!(seen.partitions_withheld, ["123456789012/eu-west-1"]);
        assert_eq!(seen.objects_skipped, [("fetch_failed".to_owned(), 3)]);

        let bad = [
            (r#"{}"#, "not a run record"),
            (
                r#"{"version":2,"command":"analyze","started":"2026-12-06T06:15:28Z","exit_code":0,"summary":{}}"#,
                "version 2",
            ),
            (
                r#"{"version":1,"command":"rm","started":"2026-12-06T06:15:28Z","exit_code":0,"summary":{}}"#,
                "command",
            ),
            (
                r#"{"version":1,"command":"analyze","started":"9999-12-06T06:15:28Z","exit_code":0,"summary":{}}"#,
                "out of range",
            ),
            (
                r#"{"version":1,"command":"analyze","started":"2026-12-06T06:15:28Z","exit_code":0,"summary":{"days_without_logs":["<script>"]}}"#,
                "not a day",
            ),
            (
                r#"{"version":1,"command":"analyze","started":"2026-12-06T06:15:28Z","exit_code":0,"summary":{"partitions_withheld":["../../x"]}}"#,
                "ACCOUNT/REGION",
            ),
            (
                r#"{"version":1,"command":"analyze","started":"2026-12-06T06:15:28Z","exit_code":0,"summary":{"delivery_gaps":[{"account":"1","region":"us-east-1","day":"2019-11-09","expected":1,"seen":0}]}}"#,
                "not an account",
            ),
            (
                r#"{"version":1,"command":"analyze","started":"2026-12-06T06:15:28Z","exit_code":0,"summary":{"first_day":"2019-11-09","last_day":"2019-11-07"}}"#,
                "after",
            ),
        ];
        for (text, want) in bad {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
