//! Shared vocabulary of the pipeline, with no I/O: minutes, day ranges, analysis windows,
//! the identity of an analysed API series, and the reference to one input object.
//!
//! Every stage imports from here and from nowhere downstream, so this module owns the types
//! that cross stage boundaries and the arithmetic on them (minute and day conversions).

pub mod explanation;
pub mod insight;
pub mod problem;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use std::fmt;

/// Minutes in a day.
pub const MINUTES_PER_DAY: i64 = 1440;
/// The reported baseline: the 7 days (10080 minutes) before an Insight's start, as AWS reports it.
pub const BASELINE_MINUTES: i64 = 7 * MINUTES_PER_DAY;
/// Days of history read before the first analysed day.
pub const BASELINE_DAYS: i64 = 7;
/// The namespace of every identifier trailsight derives (UUID v5 of an episode's identity, the
/// unique part of file names): the same input gives the same IDs and keys on every run.
pub const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5b0a3e6c_1f7d_4d8e_9a41_7c2f0e9b6d13);

/// A UTC minute, counted from the Unix epoch. Every per-minute rate is keyed by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minute(pub i64);

impl Minute {
    /// The minute that holds `seconds` since the Unix epoch (floored, also before 1970).
    pub fn from_unix_seconds(seconds: i64) -> Minute {
        Minute(seconds.div_euclid(60))
    }

    /// The first minute of a UTC day.
    pub fn start_of_day(day: NaiveDate) -> Minute {
        let days = day.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch"));
        Minute(days.num_days() * MINUTES_PER_DAY)
    }

    /// The UTC day this minute belongs to.
    pub fn day(self) -> NaiveDate {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
        epoch + Duration::days(self.0.div_euclid(MINUTES_PER_DAY))
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.0 * 60, 0)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// `YYYY-MM-DDTHH:MM:00Z`, the form of every Insight `eventTime`.
    pub fn to_rfc3339(self) -> String {
        let t = self.to_datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:00Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute()
        )
    }

    /// `YYYYMMDDTHHmmZ`, the time stamp in CloudTrail file names.
    pub fn to_file_stamp(self) -> String {
        let t = self.to_datetime();
        format!(
            "{:04}{:02}{:02}T{:02}{:02}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute()
        )
    }

    pub fn plus(self, minutes: i64) -> Minute {
        Minute(self.0 + minutes)
    }
}

impl fmt::Display for Minute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// An inclusive range of UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl DayRange {
    pub fn new(first: NaiveDate, last: NaiveDate) -> DayRange {
        DayRange { first, last }
    }

    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        let (first, last) = (self.first, self.last);
        first.iter_days().take_while(move |d| *d <= last)
    }

    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first <= day && day <= self.last
    }
}

/// What one run analyses: Insights may start in `[detect_from, detect_until)`, using records
/// whose minute lies in `[history_from, detect_until)`. Objects are read from the day folders of
/// `folders` (the analysed days, the baseline days before them, and the next day, because a file
/// is filed under its delivery time and may hold records from before midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub history_from: Minute,
    pub detect_from: Minute,
    pub detect_until: Minute,
    pub folders: DayRange,
}

impl Window {
    /// The window for analysing the days of `range`.
    pub fn for_days(range: DayRange) -> Window {
        let history_day = range.first - Duration::days(BASELINE_DAYS);
        let next_day = range.last + Duration::days(1);
        Window {
            history_from: Minute::start_of_day(history_day),
            detect_from: Minute::start_of_day(range.first),
            detect_until: Minute::start_of_day(next_day),
            folders: DayRange::new(history_day, next_day),
        }
    }

    /// Whether a record of this minute feeds the analysis.
    pub fn holds(&self, minute: Minute) -> bool {
        self.history_from <= minute && minute < self.detect_until
    }
}

/// The two kinds of Insight AWS defines, with the error code that keys an error-rate series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InsightKind {
    /// Write management calls per minute.
    CallRate,
    /// Management calls per minute that returned this error code.
    ErrorRate { error_code: String },
}

impl InsightKind {
    /// The `insightType` value AWS writes.
    pub fn insight_type(&self) -> &'static str {
        match self {
            InsightKind::CallRate => "ApiCallRateInsight",
            InsightKind::ErrorRate { .. } => "ApiErrorRateInsight",
        }
    }

    pub fn error_code(&self) -> Option<&str> {
        match self {
            InsightKind::CallRate => None,
            InsightKind::ErrorRate { error_code } => Some(error_code),
        }
    }
}

/// One analysed series: an API in an account and region, for one kind of Insight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    pub kind: InsightKind,
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {} {} {}",
            self.account,
            self.region,
            self.event_source,
            self.event_name,
            self.kind.insight_type()
        )?;
        if let Some(code) = self.kind.error_code() {
            write!(f, " {code}")?;
        }
        Ok(())
    }
}

/// Where CloudTrail filed a log object: the partition segments of its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    /// Everything before `AWSLogs/`, with its trailing slash (may be empty).
    pub prefix: String,
    /// The organization segment (`o-...`) of an organization trail.
    pub org_id: Option<String>,
    pub account: String,
    pub region: String,
}

impl Partition {
    /// `[prefix/]AWSLogs/[o-id/]ACCOUNT/CloudTrail/REGION/`
    pub fn log_prefix(&self) -> String {
        let org = self
            .org_id
            .as_deref()
            .map(|o| format!("{o}/"))
            .unwrap_or_default();
        format!(
            "{}AWSLogs/{org}{}/CloudTrail/{}/",
            self.prefix, self.account, self.region
        )
    }

    /// The folder of one delivery day: `.../REGION/YYYY/MM/DD/`
    pub fn day_prefix(&self, day: NaiveDate) -> String {
        format!(
            "{}{:04}/{:02}/{:02}/",
            self.log_prefix(),
            day.year(),
            day.month(),
            day.day()
        )
    }
}

/// One input object: where it is (for messages and fetching) and how big.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The key relative to the source root (`AWSLogs/...`), `/`-separated.
    pub key: String,
    /// What users see in messages: a path or `s3://bucket/key`.
    pub display: String,
    pub size: u64,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Parse `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        parse_day(s).unwrap()
    }

    #[test]
    fn minute_round_trips_through_days_and_text() {
        let m = Minute::start_of_day(day("2019-11-07")).plus(13 * 60 + 25);
        assert_eq!(m.to_rfc3339(), "2019-11-07T13:25:00Z");
        assert_eq!(m.to_file_stamp(), "20191107T1325Z");
        assert_eq!(m.day(), day("2019-11-07"));
        assert_eq!(Minute::from_unix_seconds(-1), Minute(-1));
        assert_eq!(Minute(-1).day(), day("1969-12-31"));
    }

    #[test]
    fn window_reads_seven_days_before_and_the_next_day() {
        let w = Window::for_days(DayRange::new(day("2019-11-07"), day("2019-11-08")));
        assert_eq!(
            w.folders,
            DayRange::new(day("2019-10-31"), day("2019-11-09"))
        );
        assert_eq!(w.detect_from.to_rfc3339(), "2019-11-07T00:00:00Z");
        assert_eq!(w.detect_until.to_rfc3339(), "2019-11-09T00:00:00Z");
        assert_eq!(w.detect_from.0 - w.history_from.0, BASELINE_MINUTES);
        assert!(!w.holds(w.detect_until));
        assert!(w.holds(w.history_from));
    }

    #[test]
    fn partition_prefixes_follow_the_cloudtrail_layout() {
        let p = Partition {
            prefix: "logs/".into(),
            org_id: Some("o-abc123".into()),
            account: "123456789012".into(),
            region: "us-east-1".into(),
        };
        assert_eq!(
            p.day_prefix(day("2019-11-07")),
            "logs/AWSLogs/o-abc123/123456789012/CloudTrail/us-east-1/2019/11/07/"
        );
    }
}
