//! Range checks on what `report` reads back through `sink::read` (pure). `report` also reads AWS's own Insight files
//! and folders anyone may have written to, so every number and time a record or explanation
//! holds is checked here, once, before anything is computed from it: a value out of range makes
//! its record (or explanation) skipped, named with the reason, and counted; the rest of the
//! page is still drawn. After these checks every time is a minute between `EARLIEST` and
//! `LATEST`, every duration is at most `MAX_DURATION_MINUTES`, and every average is a finite
//! number in `[0, MAX_AVERAGE]`, so no date arithmetic can overflow, no chart can have its ends
//! swapped and no count vector can grow past a bounded window.
//!
//! | check | reason |
//! |---|---|
//! | `insightDetails.state` is `Start` or `End` | `unknown state` |
//! | `eventTime` is an RFC 3339 time | `bad eventTime` |
//! | `eventTime` in [2013-11-01, 2100-01-01) | `eventTime out of range` |
//! | `insightDuration`, `baselineDuration` in [0, 366 days] | `duration out of range` |
//! | every average (baseline, insight, attributions) finite, in [0, 1e9] | `average out of range` |
//! | `recipientAccountId` 12 digits, `awsRegion` a region name | `bad account or region` |
//! | `sharedEventID`, `eventSource`, `eventName` non-empty, at most 256 bytes | `bad identifier` |
//! | at most 16 attributions of at most 64 values | `too many attributions` |
//! | an End not after its Start, or more than 366 days after it (checked by `pair`) | `End not after its Start`, `episode too long` |

use crate::model::Minute;
use crate::model::explanation::Explanation;
use crate::model::insight::InsightRecord;
use crate::source::layout;

/// CloudTrail was launched in November 2013: no Insight (and no log) is older.
pub const EARLIEST: &str = "2013-11-01T00:00:00Z";
/// Nothing this tool reads is dated this late.
pub const LATEST: &str = "2100-01-01T00:00:00Z";
/// The longest episode, baseline or explanation window believed: a leap year.
pub const MAX_DURATION_MINUTES: i64 = 366 * 1440;
/// The largest per-minute average believed (a billion calls a minute).
pub const MAX_AVERAGE: f64 = 1e9;
/// The longest `sharedEventID`, `eventSource` or `eventName` accepted, in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 256;
/// The most attributes, and values per attribute, a record may hold.
pub const MAX_ATTRIBUTIONS: usize = 16;
pub const MAX_ATTRIBUTION_VALUES: usize = 64;

/// Why a record or explanation is not used: a short stable reason and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub detail: String,
}

fn invalid(reason: &'static str, detail: String) -> Invalid {
    Invalid { reason, detail }
}

/// The first minute of `EARLIEST` and of `LATEST`.
pub fn time_bounds() -> (Minute, Minute) {
    let minute = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| Minute::from_unix_seconds(t.timestamp()))
            .expect("a valid bound")
    };
    (minute(EARLIEST), minute(LATEST))
}

/// An RFC 3339 time, as a minute within the bounds.
pub fn check_time(field: &str, time: &str) -> Result<Minute, Invalid> {
    let parsed = chrono::DateTime::parse_from_rfc3339(time).map_err(|_| {
        invalid(
            "bad eventTime",
            format!("{field} {:?} is not an RFC 3339 time", clip(time)),
        )
    })?;
    let minute = Minute::from_unix_seconds(parsed.timestamp());
    let (earliest, latest) = time_bounds();
    if minute < earliest || minute >= latest {
        return Err(invalid(
            "eventTime out of range",
            format!("{field} {time} is not between {EARLIEST} and {LATEST}"),
        ));
    }
    Ok(minute)
}

fn check_duration(field: &str, minutes: i64) -> Result<(), Invalid> {
    if (0..=MAX_DURATION_MINUTES).contains(&minutes) {
        Ok(())
    } else {
        Err(invalid(
            "duration out of range",
            format!("{field} {minutes} is not between 0 and {MAX_DURATION_MINUTES} minutes"),
        ))
    }
}

fn check_average(field: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && (0.0..=MAX_AVERAGE).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            "average out of range",
            format!("{field} {value} is not a number between 0 and {MAX_AVERAGE}"),
        ))
    }
}

fn check_identifier(field: &str, text: &str) -> Result<(), Invalid> {
    if !text.is_empty() && text.len() <= MAX_IDENTIFIER_BYTES {
        Ok(())
    } else {
        Err(invalid(
            "bad identifier",
            format!(
                "{field} is empty or longer than {MAX_IDENTIFIER_BYTES} bytes ({} bytes)",
                text.len()
            ),
        ))
    }
}

/// A text for a message: at most 64 characters of it.
fn clip(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

/// Check one Insight record; its `eventTime` as a minute if every value is in range.
pub fn check_record(r: &InsightRecord) -> Result<Minute, Invalid> {
    let d = &r.insight_details;
    if d.state != "Start" && d.state != "End" {
        return Err(invalid(
            "unknown state",
            format!(
                "insightDetails.state {:?} is neither Start nor End",
                clip(&d.state)
            ),
        ));
    }
    check_identifier("sharedEventID", &r.shared_event_id)?;
    check_identifier("insightDetails.eventSource", &d.event_source)?;
    check_identifier("insightDetails.eventName", &d.event_name)?;
    if !layout::is_account(&r.recipient_account_id) || !layout::is_region(&r.aws_region) {
        return Err(invalid(
            "bad account or region",
            format!(
                "recipientAccountId {:?} / awsRegion {:?} is not a 12-digit account and a region name",
                clip(&r.recipient_account_id),
                clip(&r.aws_region)
            ),
        ));
    }
    let minute = check_time("eventTime", &r.event_time)?;
    let s = &d.insight_context.statistics;
    check_duration("insightDuration", s.insight_duration)?;
    check_duration("baselineDuration", s.baseline_duration)?;
    check_average("baseline.average", s.baseline.average)?;
    check_average("insight.average", s.insight.average)?;
    let attributions = &d.insight_context.attributions;
    let too_many = attributions.len() > MAX_ATTRIBUTIONS
        || attributions
            .iter()
            .any(|a| a.insight.len().max(a.baseline.len()) > MAX_ATTRIBUTION_VALUES);
    if too_many {
        return Err(invalid(
            "too many attributions",
            format!(
                "more than {MAX_ATTRIBUTIONS} attributes or {MAX_ATTRIBUTION_VALUES} values per attribute"
            ),
        ));
    }
    for a in attributions {
        for v in a.insight.iter().chain(&a.baseline) {
            check_average("an attribution's average", v.average)?;
        }
    }
    Ok(minute)
}

/// Check the Start and End of one episode: the End after the Start, within the longest span.
pub fn check_episode(start: Minute, end: Minute) -> Result<(), Invalid> {
    if end <= start {
        return Err(invalid(
            "End not after its Start",
            format!(
                "the End at {} is not after the Start at {}",
                end.to_rfc3339(),
                start.to_rfc3339()
            ),
        ));
    }
    if end.0 - start.0 > MAX_DURATION_MINUTES {
        return Err(invalid(
            "episode too long",
            format!(
                "from {} to {} is longer than {MAX_DURATION_MINUTES} minutes",
                start.to_rfc3339(),
                end.to_rfc3339()
            ),
        ));
    }
    Ok(())
}

/// Check one explanation: its times, window and numbers.
pub fn check_explanation(x: &Explanation) -> Result<(), Invalid> {
    check_identifier("sharedEventID", &x.shared_event_id)?;
    check_time("startTime", &x.start_time)?;
    if let Some(end) = &x.end_time {
        check_time("endTime", end)?;
    }
    check_duration("windowMinutes", x.window_minutes)?;
    check_duration("baselineMinutes", x.baseline_minutes)?;
    for (field, value) in [
        ("expectedCalls", x.expected_calls),
        ("observedPerMinute", x.observed_per_minute),
        ("expectedPerMinute", x.expected_per_minute),
        ("dispersionSize", x.dispersion_size.unwrap_or(0.0)),
    ] {
        check_average(field, value)?;
    }
    if !(0.0..=1.0).contains(&x.tail_probability) {
        return Err(invalid(
            "average out of range",
            format!(
                "tailProbability {} is not between 0 and 1",
                x.tail_probability
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::insight::*;

    fn record() -> InsightRecord {
        let mut r = test_record(
            "s",
            "Start",
            "us-east-1",
            "RunInstances",
            "2019-11-07T13:25:00Z",
        );
        r.event_id = "e".into();
        r.insight_details.insight_context.attributions = vec![Attribution {
            attribute: "userAgent".into(),
            insight: vec![AttributedValue {
                value: "cli".into(),
                average: 6.0,
            }],
            baseline: vec![],
        }];
        r
    }

    #[test]
    fn every_number_and_time_is_range_checked() {
        type Change = fn(&mut InsightRecord);
        let cases: [(&str, Change, Option<&str>); 16] = [
            ("as written", |_| {}, None),
            (
                "AWS's older records: no durations",
                |r| {
                    let s = &mut r.insight_details.insight_context.statistics;
                    (s.insight_duration, s.baseline_duration) = (0, 0);
                },
                None,
            ),
            (
                "insightDuration i64::MAX",
                |r| {
                    r.insight_details
                        .insight_context
                        .statistics
                        .insight_duration = i64::MAX
                },
                Some("duration out of range"),
            ),
            (
                "insightDuration negative",
                |r| {
                    r.insight_details
                        .insight_context
                        .statistics
                        .insight_duration = -5
                },
                Some("duration out of range"),
            ),
            (
                "baselineDuration i64::MIN",
                |r| {
                    r.insight_details
                        .insight_context
                        .statistics
                        .baseline_duration = i64::MIN
                },
                Some("duration out of range"),
            ),
            (
                "year 9999",
                |r| r.event_time = "9999-12-31T23:59:00Z".into(),
                Some("eventTime out of range"),
            ),
            (
                "year 1",
                |r| r.event_time = "0001-01-01T00:00:00Z".into(),
                Some("eventTime out of range"),
            ),
            (
                "before CloudTrail",
                |r| r.event_time = "2013-10-31T23:59:00Z".into(),
                Some("eventTime out of range"),
            ),
            (
                "not a time",
                |r| r.event_time = "yesterday".into(),
                Some("bad eventTime"),
            ),
            (
                "negative average",
                |r| {
                    r.insight_details
                        .insight_context
                        .statistics
                        .baseline
                        .average = -1.0
                },
                Some("average out of range"),
            ),
            (
                "huge average",
                |r| r.insight_details.insight_context.statistics.insight.average = f64::MAX,
                Some("average out of range"),
            ),
            (
                "NaN attribution",
                |r| r.insight_details.insight_context.attributions[0].insight[0].average = f64::NAN,
                Some("average out of range"),
            ),
            (
                "state",
                |r| r.insight_details.state = "Middle".into(),
                Some("unknown state"),
            ),
            (
                "account",
                |r| r.recipient_account_id = "../../etc".into(),
                Some("bad account or region"),
            ),
            (
                "empty shared ID",
                |r| r.shared_event_id.clear(),
                Some("bad identifier"),
            ),
            (
                "many attributions",
                |r| {
                    let a = r.insight_details.insight_context.attributions[0].clone();
                    r.insight_details.insight_context.attributions = vec![a; 17];
                },
                Some("too many attributions"),
            ),
        ];
        for (case, change, want) in cases {
            let mut r = record();
            change(&mut r);
            let got = check_record(&r).err().map(|e| e.reason);
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn an_episode_ends_after_it_starts_and_within_a_year() {
        let start = check_time("t", "2019-11-07T13:25:00Z").unwrap();
        assert!(check_episode(start, start.plus(3)).is_ok());
        assert_eq!(
            check_episode(start, start).unwrap_err().reason,
            "End not after its Start"
        );
        assert_eq!(
            check_episode(start, start.plus(-60)).unwrap_err().reason,
            "End not after its Start"
        );
        assert_eq!(
            check_episode(start, start.plus(MAX_DURATION_MINUTES + 1))
                .unwrap_err()
                .reason,
            "episode too long"
        );
    }
}
