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
use std::sync::Arc;

/// Minutes in a day.
pub const MINUTES_PER_DAY: i64 = 1440;
/// The reported baseline: the 7 days (10080 minutes) before an Insight's start, as AWS reports it.
pub const BASELINE_MINUTES: i64 = 7 * MINUTES_PER_DAY;
/// Days of history read before the first analysed day.
pub const BASELINE_DAYS: i64 = 7;
/// The namespace of every identifier trailsight derives (UUID v5 of an episode's identity, the
/// unique part of file names): the same input gives the same IDs and keys on every run.
pub const ID_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5b0a3e6c_1f7d_4d8e_9a41_7c2f0e9b6d13);

/// murmur3's 64-bit finaliser: a bijection whose every output bit depends on every input bit
/// (for hashes whose own bits are poorly mixed, or to fold two halves into one). Saved in
/// states (event-ID hashes, shard assignment), so it must not change between versions.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// `uuid::Uuid::new_v5(namespace, the parts joined)`: the same UUID, without joining the parts,
/// hashed by the `sha1` crate, which uses the CPU's SHA instructions where it has them (several
/// times faster than `uuid`'s portable SHA-1 on the keys and state objects hashed each night).
pub fn uuid_v5(namespace: &uuid::Uuid, parts: &[&[u8]]) -> uuid::Uuid {
    use sha1::Digest;
    let mut hasher = sha1::Sha1::new();
    hasher.update(namespace.as_bytes());
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

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
        epoch + Duration::days(self.day_number())
    }

    /// The UTC day this minute belongs to, as days since the epoch (what the aggregator's days
    /// are numbered by).
    pub fn day_number(self) -> i64 {
        self.0.div_euclid(MINUTES_PER_DAY)
    }

    /// The first minute of the UTC day `day` (days since the epoch), saturating.
    pub fn start_of_day_number(day: i64) -> Minute {
        Minute(day.saturating_mul(MINUTES_PER_DAY))
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
/// category of events. Its names are shared (`Arc<str>`): a day's view of 100 k series names
/// a few thousand distinct strings, each spelled out once, not once per series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub account: Arc<str>,
    pub region: Arc<str>,
    pub event_source: Arc<str>,
    pub event_name: Arc<str>,
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
/// object is 24 bytes: its folder's listing (`ObjectFolder`, shared by every object of it), where
/// its name sits in that listing's names, and its size. A listing stores its names end to end
/// in one buffer, without the head and tail every name of the folder shares (for CloudTrail's
/// `ACCOUNT_CloudTrail_REGION_YYYYMMDDT` and `.json.gz`, about 50 of a name's 73 bytes):
/// about 45 bytes an object instead of its key and display form in full (about 330). `key()`,
/// `display()` and `name()` spell them out; order, equality and hashing are those of the whole
/// strings.
#[derive(Debug, Clone)]
pub struct ObjectRef {
    folder: std::sync::Arc<ObjectFolder>,
    /// The name's bytes between the folder's `head` and `tail`: `folder.names[start..start + len]`.
    start: u32,
    len: u32,
    /// Its size in bytes as listed; 0 if the listing did not say (a local listing does not
    /// ask each file for its size: that is a system call an object).
    pub size: u64,
}

/// The folder a listing's objects are in: its key below the source root, what users see, and
/// the names of its objects.
#[derive(Debug, PartialEq, Eq)]
pub struct ObjectFolder {
    /// The folder's key relative to the source root (`AWSLogs/.../2019/11/07/`): an object's key
    /// is this and its name.
    pub key: String,
    /// The folder as users see it (a path or `s3://bucket/key`, with its separator): an
    /// object's display form is this and its name.
    pub display: String,
    /// What every name of the listing begins with, and what each ends with after that.
    head: Box<str>,
    tail: Box<str>,
    /// The rest of each name, end to end, in name order.
    names: Box<str>,
}

/// The objects of one folder, gathered name by name, then shared (`finish`).
#[derive(Debug)]
pub struct FolderBuilder {
    key: String,
    display: String,
    /// Every name whole, end to end, and each one's (start, length, size).
    names: String,
    objects: Vec<(usize, usize, u64)>,
}

impl FolderBuilder {
    /// Add the object named `name`, listed at `size` bytes.
    pub fn push(&mut self, name: &str, size: u64) {
        self.objects.push((self.names.len(), name.len(), size));
        self.names.push_str(name);
    }

    /// The folder as users see it (with its separator): an object's display form is this and
    /// its name.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The objects, in name order (which is key order: they share the folder), sharing one
    /// folder that stores their names without the head and tail they all share.
    pub fn finish(self) -> Vec<ObjectRef> {
        let whole = |&(start, len, _): &(usize, usize, u64)| &self.names[start..start + len];
        let mut objects = self.objects;
        objects.sort_by(|a, b| whole(a).cmp(whole(b)));
        let first = objects.first().map(whole).unwrap_or_default();
        let head = objects
            .iter()
            .map(whole)
            .fold(first.len(), |n, name| common_prefix(&first[..n], name));
        let rest = |o: &(usize, usize, u64)| &whole(o)[head..];
        let first_rest = objects.first().map(rest).unwrap_or_default();
        let tail = objects.iter().map(rest).fold(first_rest.len(), |n, name| {
            common_suffix(&first_rest[first_rest.len() - n..], name)
        });
        let mut names = String::with_capacity(objects.iter().map(|o| o.1 - head - tail).sum());
        let mut spans = Vec::with_capacity(objects.len());
        for o in &objects {
            let middle = rest(o);
            let middle = &middle[..middle.len() - tail];
            spans.push((names.len() as u32, middle.len() as u32, o.2));
            names.push_str(middle);
        }
        let folder = std::sync::Arc::new(ObjectFolder {
            head: first[..head].into(),
            tail: first_rest[first_rest.len() - tail..].into(),
            key: self.key,
            display: self.display,
            names: names.into_boxed_str(),
        });
        spans
            .into_iter()
            .map(|(start, len, size)| ObjectRef {
                folder: folder.clone(),
                start,
                len,
                size,
            })
            .collect()
    }
}

/// The length of the longest common prefix of `a` and `b`, at a character boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    let n = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    (0..=n).rev().find(|&i| a.is_char_boundary(i)).unwrap_or(0)
}

/// The length of the longest common suffix of `a` and `b`, at a character boundary.
fn common_suffix(a: &str, b: &str) -> usize {
    let n = a
        .bytes()
        .rev()
        .zip(b.bytes().rev())
        .take_while(|(x, y)| x == y)
        .count();
    (0..=n)
        .rev()
        .find(|&i| a.is_char_boundary(a.len() - i))
        .unwrap_or(0)
}

impl ObjectFolder {
    /// A folder at `key` (relative to the source root), shown as `display`, to gather objects in.
    pub fn builder(key: String, display: String) -> FolderBuilder {
        FolderBuilder {
            key,
            display,
            names: String::new(),
            objects: Vec::new(),
        }
    }
}

impl ObjectRef {
    /// A lone object (not from a listing) at `key` relative to the source root, shown as
    /// `display`: split after the key's last `/`, the display form cut before the same name.
    pub fn single(key: &str, display: &str, size: u64) -> ObjectRef {
        let name = key.rsplit('/').next().unwrap_or(key);
        let folder_key = &key[..key.len() - name.len()];
        let folder_display = display.strip_suffix(name).unwrap_or(display);
        let mut folder = ObjectFolder::builder(folder_key.to_owned(), folder_display.to_owned());
        folder.push(name, size);
        folder.finish().pop().expect("one object")
    }

    /// The parts of the name: the folder's head, this object's own bytes, the folder's tail.
    pub fn name_parts(&self) -> [&str; 3] {
        let f = &*self.folder;
        let start = self.start as usize;
        [&f.head, &f.names[start..start + self.len as usize], &f.tail]
    }

    /// The key relative to the source root (`AWSLogs/...`), `/`-separated.
    pub fn key(&self) -> String {
        self.key_parts().concat()
    }

    /// The key into `buffer` (replacing what it held): `key` without a new string, for what
    /// needs it for each of many objects.
    pub fn key_into<'b>(&self, buffer: &'b mut String) -> &'b str {
        buffer.clear();
        self.key_parts()
            .iter()
            .for_each(|part| buffer.push_str(part));
        buffer
    }

    /// The key in the four parts it is held in (the folder's key, then the name's parts), for
    /// what reads it once without needing it whole (a hash of it).
    pub fn key_parts(&self) -> [&str; 4] {
        let [head, middle, tail] = self.name_parts();
        [self.folder.key.as_str(), head, middle, tail]
    }

    /// What users see in messages: a path or `s3://bucket/key`.
    pub fn display(&self) -> String {
        let [head, middle, tail] = self.name_parts();
        [self.folder.display.as_str(), head, middle, tail].concat()
    }

    /// The file name (the key after its last `/`).
    pub fn name(&self) -> String {
        self.name_parts().concat()
    }

    pub fn folder(&self) -> &ObjectFolder {
        &self.folder
    }

    fn name_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.name_parts().into_iter().flat_map(str::bytes)
    }

    /// The key in its parts, compared as one string.
    fn key_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.folder.key.bytes().chain(self.name_bytes())
    }

    fn display_bytes(&self) -> impl Iterator<Item = u8> + '_ {
        self.folder.display.bytes().chain(self.name_bytes())
    }
}

/// Key order (then display form and size), as if the whole keys were compared.
impl Ord for ObjectRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if std::sync::Arc::ptr_eq(&self.folder, &other.folder) {
            // One folder: the same key and display form before the name, the same head.
            let [_, a, tail] = self.name_parts();
            let [_, b, _] = other.name_parts();
            let by_name = a
                .bytes()
                .chain(tail.bytes())
                .cmp(b.bytes().chain(tail.bytes()));
            return by_name.then(self.size.cmp(&other.size));
        }
        self.key_bytes()
            .cmp(other.key_bytes())
            .then_with(|| self.display_bytes().cmp(other.display_bytes()))
            .then(self.size.cmp(&other.size))
    }
}

impl PartialOrd for ObjectRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ObjectRef {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for ObjectRef {}

impl std::hash::Hash for ObjectRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
        self.display().hash(state);
        self.size.hash(state);
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.folder.display)?;
        self.name_parts().iter().try_for_each(|p| f.write_str(p))
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

    /// `uuid_v5` is `Uuid::new_v5` of the parts joined, for any split and around every SHA-1
    /// block boundary (55, 56, 63, 64 and 65 bytes with the 16-byte namespace before them).
    #[test]
    fn uuid_v5_is_uuids_new_v5_of_the_parts_joined() {
        let text: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        for len in [0, 1, 39, 40, 47, 48, 49, 55, 56, 63, 64, 65, 130, 4999] {
            for namespace in [ID_NAMESPACE, uuid::Uuid::NAMESPACE_OID] {
                let whole = &text[..len];
                let expected = uuid::Uuid::new_v5(&namespace, whole);
                assert_eq!(uuid_v5(&namespace, &[whole]), expected, "{len} bytes");
                for cut in [0, len / 3, len / 2, len] {
                    let (a, b) = whole.split_at(cut);
                    let (b, c) = b.split_at(b.len() / 2);
                    assert_eq!(uuid_v5(&namespace, &[a, b, c]), expected, "{len} at {cut}");
                }
            }
        }
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
        let folder = |key: &str, display: &str, names: &[(&str, u64)]| {
            let mut b = ObjectFolder::builder(key.into(), display.into());
            names.iter().for_each(|(n, s)| b.push(n, *s));
            b.finish()
        };
        let a = folder("P/a/", "/r/P/a/", &[("x.json.gz", 3), ("-.json.gz", 2)]);
        let ab = folder("P/a/b/", "/r/P/a/b/", &[("0.json.gz", 1)]);
        let objects = [
            a[1].clone(),
            ab[0].clone(),
            a[0].clone(),
            ObjectRef::single("P/a/y.json.gz", "/r/P/a/y.json.gz", 4),
            ObjectRef::single("top.json", "s3://b/top.json", 5),
        ];
        for o in &objects {
            assert_eq!(o.display(), o.to_string(), "{o:?}");
            assert_eq!(o.display(), format!("{}{}", o.folder().display, o.name()));
            assert!(o.display().ends_with(&o.key()), "{o:?}");
        }
        assert_eq!(a[0].name(), "-.json.gz");
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
        assert_eq!(std::mem::size_of::<ObjectRef>(), 24);
    }

    /// A folder's names come back whole and in name order, whatever head and tail they share:
    /// CloudTrail's names, names that share nothing, one name the others begin or end with,
    /// names that differ inside a multi-byte character.
    #[test]
    fn a_folder_keeps_every_name_whole_and_in_order() {
        let ct = |t: &str| format!("123456789012_CloudTrail_us-east-1_20191107T{t}.json.gz");
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec!["only.json.gz".into()],
            vec![
                ct("0005Z_a1B2c3D4e5F6g7H8"),
                ct("0010Z_zzzzzzzzzzzzzzzz"),
                ct("2355Z_0"),
            ],
            vec![
                ct("0005Z_x"),
                "notes.json".into(),
                ct("0005Z_x").replace(".gz", ""),
            ],
            vec![
                "a.json".into(),
                "a.json.json".into(),
                "json".into(),
                "".into(),
            ],
            vec![
                "x\u{e9}.json".into(),
                "x\u{e8}.json".into(),
                "x\u{65e5}.json".into(),
            ],
            vec!["ab".into(), "ab".into(), "abab".into(), "b".into()],
        ];
        for names in cases {
            let mut b = ObjectFolder::builder("K/".into(), "s3://b/K/".into());
            for (i, n) in names.iter().enumerate() {
                b.push(n, i as u64);
            }
            let objects = b.finish();
            let mut want: Vec<(String, u64)> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i as u64))
                .collect();
            want.sort();
            let got: Vec<(String, u64)> = objects.iter().map(|o| (o.name(), o.size)).collect();
            assert_eq!(got, want, "{names:?}");
            for o in &objects {
                assert_eq!(o.key(), format!("K/{}", o.name()), "{names:?}");
                assert_eq!(o.to_string(), format!("s3://b/K/{}", o.name()), "{names:?}");
            }
            assert!(objects.is_sorted(), "{names:?}");
            let stored: usize = objects.first().map_or(0, |o| o.folder().names.len());
            let whole: usize = names.iter().map(String::len).sum();
            assert!(stored <= whole, "{names:?}");
        }
    }
}
