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
    /// Calls per minute: write management calls (or every management call, with
    /// `CallRateScope::All`), read and write data calls.
    CallRate,
    /// Calls per minute that returned this error code.
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

/// The category of the events a series counts: AWS's `sourceEventCategory`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventCategory {
    /// Management events (`managementEvent` true, `eventCategory` "Management").
    #[default]
    Management,
    /// Data events (`managementEvent` false, `eventCategory` "Data").
    Data,
}

impl EventCategory {
    /// The `sourceEventCategory` value AWS writes.
    pub fn as_str(self) -> &'static str {
        match self {
            EventCategory::Management => "Management",
            EventCategory::Data => "Data",
        }
    }

    /// `Management` or `Data` (as AWS writes it), any case.
    pub fn parse(text: &str) -> Option<EventCategory> {
        if text.eq_ignore_ascii_case("management") {
            Some(EventCategory::Management)
        } else if text.eq_ignore_ascii_case("data") {
            Some(EventCategory::Data)
        } else {
            None
        }
    }
}

/// Which management calls count toward a call rate. Data calls always count read and write,
/// as AWS defines them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CallRateScope {
    /// Write management calls only (`readOnly` false), as AWS.
    #[default]
    Write,
    /// Every management call, read-only ones included (beyond AWS, opt-in).
    All,
}

impl CallRateScope {
    pub fn as_str(self) -> &'static str {
        match self {
            CallRateScope::Write => "write",
            CallRateScope::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<CallRateScope> {
        match text.to_ascii_lowercase().as_str() {
            "write" => Some(CallRateScope::Write),
            "all" => Some(CallRateScope::All),
            _ => None,
        }
    }
}

/// What a run analyses: AWS's `InsightSelector` `EventCategories`, and (beyond AWS) whether
/// read-only management calls count toward call rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventSelection {
    pub management: bool,
    pub data: bool,
    pub call_rate: CallRateScope,
}

impl Default for EventSelection {
    /// Management events, write calls for call rate: AWS's default.
    fn default() -> Self {
        EventSelection {
            management: true,
            data: false,
            call_rate: CallRateScope::Write,
        }
    }
}

impl EventSelection {
    /// `management`, `data` or `management,data`, for messages and the state.
    pub fn categories_label(&self) -> String {
        let mut parts = Vec::new();
        if self.management {
            parts.push("management");
        }
        if self.data {
            parts.push("data");
        }
        parts.join(",")
    }

    /// `--event-categories X --call-rate-events Y`, as a user would type it.
    pub fn label(&self) -> String {
        format!(
            "--event-categories {} --call-rate-events {}",
            self.categories_label(),
            self.call_rate.as_str()
        )
    }

    /// Which calls produced a call-rate series of `category`: `write` or `all` (management, as
    /// selected), `all` for data (AWS analyses read and write data calls).
    pub fn call_rate_scope(&self, category: EventCategory) -> CallRateScope {
        match category {
            EventCategory::Management => self.call_rate,
            EventCategory::Data => CallRateScope::All,
        }
    }
}

/// One analysed series: an API in an account and region, for one kind of Insight, over one
/// category of events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    pub kind: InsightKind,
    pub category: EventCategory,
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
        if self.category == EventCategory::Data {
            f.write_str(" (data events)")?;
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
///
/// An organization's day folder lists about 100 k objects, all held until they are read, so an
/// object keeps only its file name and size and shares its folder (`ObjectFolder`) with the
/// other objects of its listing: 32 bytes and the name (about 70 bytes) instead of its key and
/// its display form in full (about 280 bytes). `key()` and `display()` spell them out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    folder: std::sync::Arc<ObjectFolder>,
    name: Box<str>,
    pub size: u64,
}

/// The folder an object is in: its key below the source root and what users see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectFolder {
    /// The folder's key relative to the source root (`AWSLogs/.../2019/11/07/`): an object's key
    /// is this and its name.
    pub key: String,
    /// The folder as users see it (a path or `s3://bucket/key`, with its separator): an
    /// object's display form is this and its name.
    pub display: String,
}

impl ObjectFolder {
    pub fn new(key: String, display: String) -> std::sync::Arc<ObjectFolder> {
        std::sync::Arc::new(ObjectFolder { key, display })
    }
}

impl ObjectRef {
    /// The object named `name` in `folder`, listed at `size` bytes.
    pub fn new(folder: &std::sync::Arc<ObjectFolder>, name: &str, size: u64) -> ObjectRef {
        ObjectRef {
            folder: folder.clone(),
            name: name.into(),
            size,
        }
    }

    /// A lone object (not from a listing) at `key` relative to the source root, shown as
    /// `display`: split after the key's last `/`, the display form cut before the same name.
    pub fn single(key: &str, display: &str, size: u64) -> ObjectRef {
        let name = key.rsplit('/').next().unwrap_or(key);
        let folder_key = &key[..key.len() - name.len()];
        let folder_display = display.strip_suffix(name).unwrap_or(display);
        ObjectRef {
            folder: ObjectFolder::new(folder_key.to_owned(), folder_display.to_owned()),
            name: name.into(),
            size,
        }
    }

    /// The key relative to the source root (`AWSLogs/...`), `/`-separated.
    pub fn key(&self) -> String {
        [self.folder.key.as_str(), &self.name].concat()
    }

    /// What users see in messages: a path or `s3://bucket/key`.
    pub fn display(&self) -> String {
        [self.folder.display.as_str(), &self.name].concat()
    }

    /// The file name (the key after its last `/`).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn folder(&self) -> &ObjectFolder {
        &self.folder
    }

    /// The key in two parts, compared as one string.
    fn key_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.folder.key.bytes().chain(self.name.bytes())
    }

    fn display_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.folder.display.bytes().chain(self.name.bytes())
    }
}

/// Key order (then display form and size), as if the whole keys were compared.
impl Ord for ObjectRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let by_key = if std::sync::Arc::ptr_eq(&self.folder, &other.folder) {
            self.name.cmp(&other.name)
        } else {
            self.key_bytes().cmp(other.key_bytes())
        };
        by_key
            .then_with(|| self.display_bytes().cmp(other.display_bytes()))
            .then(self.size.cmp(&other.size))
    }
}

impl PartialOrd for ObjectRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.folder.display)?;
        f.write_str(&self.name)
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

    /// An object keeps its name and shares its folder, yet its key, display form and order are
    /// those of the whole strings; a lone object is split the same way.
    #[test]
    fn objects_share_their_folder_and_sort_by_whole_key() {
        let a = ObjectFolder::new("P/a/".into(), "/r/P/a/".into());
        let ab = ObjectFolder::new("P/a/b/".into(), "/r/P/a/b/".into());
        let objects = [
            ObjectRef::new(&a, "x.json.gz", 3),
            ObjectRef::new(&ab, "0.json.gz", 1),
            ObjectRef::new(&a, "-.json.gz", 2),
            ObjectRef::single("P/a/y.json.gz", "/r/P/a/y.json.gz", 4),
            ObjectRef::single("top.json", "s3://b/top.json", 5),
        ];
        for o in &objects {
            assert_eq!(o.display(), o.to_string(), "{o:?}");
            assert_eq!(o.display(), format!("{}{}", o.folder().display, o.name()));
            assert!(o.display().ends_with(&o.key()), "{o:?}");
        }
        assert_eq!(objects[3].folder().key, "P/a/");
        assert_eq!(objects[3].name(), "y.json.gz");
        assert_eq!(objects[4].folder().display, "s3://b/");
        let mut sorted = objects.to_vec();
        sorted.sort();
        let mut by_key: Vec<String> = objects.iter().map(ObjectRef::key).collect();
        by_key.sort();
        let sorted: Vec<String> = sorted.iter().map(ObjectRef::key).collect();
        // "P/a/-" < "P/a/b/0" < "P/a/x" as whole strings, though folder "P/a/" < "P/a/b/".
        assert_eq!(sorted, by_key);
        assert_eq!(sorted[1], "P/a/b/0.json.gz");
        assert_eq!(std::mem::size_of::<ObjectRef>(), 32);
    }
}
