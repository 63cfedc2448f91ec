//! The wire shape of a CloudTrail log file, read in one pass without building a DOM.
//!
//! `{"Records":[...]}` is walked with serde visitors that hand each record to a callback as
//! soon as it is parsed, borrowing its strings from the input. Only the fields the analysis
//! needs are kept; every other field is skipped. Fields are read leniently (a string where a
//! bool was expected, a number where a string was expected, a duplicate key) so one odd record
//! is judged on its own instead of failing the whole file.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The `visit_*` methods for every scalar shape (strings, bools, numbers, null), each answering
/// `$value`: what a visitor says when it meets a value that is not the shape it reads.
macro_rules! other_shapes_are {
    ($value:expr) => {
        fn visit_borrowed_str<E>(self, _: &'de str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// A JSON value read where a string or a bool is expected.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Bool(bool),
    Null,
    /// A number that is not an integer, an object or an array.
    Other,
}

impl<'a> Scalar<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A bool, also when written as the string `"true"` or `"false"`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Scalar::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// The parts of `userIdentity` used for attribution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity<'a> {
    pub arn: Option<Scalar<'a>>,
    pub invoked_by: Option<Scalar<'a>>,
}

struct IdentityVisitor;

impl<'de> Visitor<'de> for IdentityVisitor {
    type Value = Identity<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a userIdentity object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut identity = Identity::default();
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            match key.as_str() {
                Some("arn") => identity.arn = Some(map.next_value()?),
                Some("invokedBy") => identity.invoked_by = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(identity)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(|_| Identity::default())
    }
    other_shapes_are!(Identity::default());
}

impl<'de> de::Deserialize<'de> for Identity<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdentityVisitor)
    }
}

/// The fields of one CloudTrail record that the analysis reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawRecord<'a> {
    pub event_time: Option<Scalar<'a>>,
    pub event_source: Option<Scalar<'a>>,
    pub event_name: Option<Scalar<'a>>,
    pub aws_region: Option<Scalar<'a>>,
    pub recipient_account_id: Option<Scalar<'a>>,
    pub event_id: Option<Scalar<'a>>,
    pub event_type: Option<Scalar<'a>>,
    pub event_category: Option<Scalar<'a>>,
    pub management_event: Option<Scalar<'a>>,
    pub read_only: Option<Scalar<'a>>,
    pub error_code: Option<Scalar<'a>>,
    pub user_agent: Option<Scalar<'a>>,
    pub user_identity: Option<Identity<'a>>,
}

/// One element of `Records`: a record, or something that is not a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordSlot<'a> {
    Record(Box<RawRecord<'a>>),
    NotAnObject,
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = RecordSlot<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail record")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = RawRecord::default();
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            let slot = match key.as_str() {
                Some("eventTime") => &mut r.event_time,
                Some("eventSource") => &mut r.event_source,
                Some("eventName") => &mut r.event_name,
                Some("awsRegion") => &mut r.aws_region,
                Some("recipientAccountId") => &mut r.recipient_account_id,
                Some("eventID") => &mut r.event_id,
                Some("eventType") => &mut r.event_type,
                Some("eventCategory") => &mut r.event_category,
                Some("managementEvent") => &mut r.management_event,
                Some("readOnly") => &mut r.read_only,
                Some("errorCode") => &mut r.error_code,
                Some("userAgent") => &mut r.user_agent,
                Some("userIdentity") => {
                    r.user_identity = Some(map.next_value()?);
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(RecordSlot::Record(Box::new(r)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor
            .visit_seq(seq)
            .map(|_| RecordSlot::NotAnObject)
    }
    other_shapes_are!(RecordSlot::NotAnObject);
}

impl<'de> de::Deserialize<'de> for RecordSlot<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordVisitor)
    }
}

/// What the top level of a file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileShape {
    /// `{"Records": [...]}`: every element was handed to the callback.
    Records,
    /// An object without a `Records` key.
    NoRecords,
    /// `Records` is not an array.
    RecordsNotArray,
    /// The top level is not an object.
    NotAnObject,
    /// A bare array of records (how some tools export CloudTrail): every element was handed on.
    BareArray,
}

/// Walks a whole log file, calling `on_record` for each element of `Records`.
pub struct LogFileSeed<'f, F> {
    pub on_record: &'f mut F,
}

impl<'de, F: FnMut(RecordSlot<'de>)> DeserializeSeed<'de> for LogFileSeed<'_, F> {
    type Value = FileShape;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FileShape, D::Error> {
        d.deserialize_any(LogFileVisitor {
            on_record: self.on_record,
        })
    }
}

struct LogFileVisitor<'f, F> {
    on_record: &'f mut F,
}

impl<'de, F: FnMut(RecordSlot<'de>)> Visitor<'de> for LogFileVisitor<'_, F> {
    type Value = FileShape;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CloudTrail log file")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FileShape, A::Error> {
        let mut shape = FileShape::NoRecords;
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            if key.as_str() == Some("Records") {
                let seed = RecordsSeed {
                    on_record: &mut *self.on_record,
                };
                shape = if map.next_value_seed(seed)? {
                    FileShape::Records
                } else {
                    FileShape::RecordsNotArray
                };
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(shape)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<FileShape, A::Error> {
        each_record(seq, self.on_record)?;
        Ok(FileShape::BareArray)
    }
    other_shapes_are!(FileShape::NotAnObject);
}

fn each_record<'de, A: SeqAccess<'de>, F: FnMut(RecordSlot<'de>)>(
    mut seq: A,
    on_record: &mut F,
) -> Result<(), A::Error> {
    while let Some(slot) = seq.next_element::<RecordSlot<'de>>()? {
        on_record(slot);
    }
    Ok(())
}

/// The value of `Records`; yields whether it was an array.
struct RecordsSeed<'f, F> {
    on_record: &'f mut F,
}

impl<'de, F: FnMut(RecordSlot<'de>)> DeserializeSeed<'de> for RecordsSeed<'_, F> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(RecordsVisitor {
            on_record: self.on_record,
        })
    }
}

struct RecordsVisitor<'f, F> {
    on_record: &'f mut F,
}

impl<'de, F: FnMut(RecordSlot<'de>)> Visitor<'de> for RecordsVisitor<'_, F> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the Records array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        each_record(seq, self.on_record)?;
        Ok(true)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        ScalarVisitor.visit_map(map).map(|_| false)
    }
    other_shapes_are!(false);
}

/// Parse `eventTime` to seconds since the Unix epoch. CloudTrail writes
/// `YYYY-MM-DDTHH:MM:SSZ`; fractional seconds and numeric offsets are accepted too.
pub fn parse_event_time(text: &str) -> Result<i64, &'static str> {
    let b = text.as_bytes();
    if b.len() == 20
        && b[19] == b'Z'
        && b[10] == b'T'
        && let Some(seconds) = parse_plain_utc(b)
    {
        return Ok(seconds);
    }
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => Ok(t.timestamp()),
        Err(_) if chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").is_ok() => {
            Err("eventTime has no time zone")
        }
        Err(_) => Err("eventTime is not an RFC 3339 time"),
    }
}

/// The fast path for `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_plain_utc(b: &[u8]) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let time = date.and_hms_opt(num(11..13)?, num(14..16)?, num(17..19)?)?;
    Some(time.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(json: &str) -> (Result<FileShape, String>, Vec<RecordSlot<'_>>) {
        let mut slots = Vec::new();
        let mut on_record = |s| slots.push(s);
        let mut de = serde_json::Deserializer::from_str(json);
        let shape = LogFileSeed {
            on_record: &mut on_record,
        }
        .deserialize(&mut de)
        .and_then(|shape| de.end().map(|_| shape))
        .map_err(|e| e.to_string());
        (shape, slots)
    }

    #[test]
    fn reads_records_and_skips_the_rest() {
        let (shape, slots) = walk(
            r#"{"Records":[{"eventTime":"2019-11-07T13:25:01Z","eventName":"RunInstances",
            "readOnly":false,"requestParameters":{"a":[1,{"b":null}]},"userIdentity":{"type":"AssumedRole",
            "arn":"arn:aws:sts::1:assumed-role/R/s","sessionContext":{"x":1}}}, 7, "x"], "other": {}}"#,
        );
        assert_eq!(shape, Ok(FileShape::Records));
        assert_eq!(slots.len(), 3);
        let RecordSlot::Record(r) = &slots[0] else {
            panic!("first slot is a record")
        };
        assert_eq!(
            r.event_name.as_ref().unwrap().as_str(),
            Some("RunInstances")
        );
        assert_eq!(r.read_only.as_ref().unwrap().as_bool(), Some(false));
        assert_eq!(
            r.user_identity
                .as_ref()
                .unwrap()
                .arn
                .as_ref()
                .unwrap()
                .as_str(),
            Some("arn:aws:sts::1:assumed-role/R/s")
        );
        assert_eq!(slots[1], RecordSlot::NotAnObject);
    }

    #[test]
    fn tolerates_odd_types_escapes_and_duplicate_keys() {
        let (shape, slots) = walk(
            r#"{"Records":[{"readOnly":"false","recipientAccountId":123456789012,
            "eventName":"A","eventName":"B","eventSource":"ec2\u002eamazonaws.com","userIdentity":"x"}]}"#,
        );
        assert_eq!(shape, Ok(FileShape::Records));
        let RecordSlot::Record(r) = &slots[0] else {
            panic!("a record")
        };
        assert_eq!(r.read_only.as_ref().unwrap().as_bool(), Some(false));
        assert_eq!(
            r.recipient_account_id.as_ref().unwrap().as_str(),
            Some("123456789012")
        );
        assert_eq!(r.event_name.as_ref().unwrap().as_str(), Some("B"));
        assert_eq!(
            r.event_source.as_ref().unwrap().as_str(),
            Some("ec2.amazonaws.com")
        );
    }

    #[test]
    fn reports_file_shapes() {
        for (json, want) in [
            (r#"{"Records":[]}"#, Ok(FileShape::Records)),
            (r#"{"Records":{}}"#, Ok(FileShape::RecordsNotArray)),
            (r#"{"records":[]}"#, Ok(FileShape::NoRecords)),
            (r#"[{"eventName":"X"}]"#, Ok(FileShape::BareArray)),
            (r#""just a string""#, Ok(FileShape::NotAnObject)),
        ] {
            assert_eq!(walk(json).0, want, "{json}");
        }
        assert!(walk(r#"{"Records":[{"a":1}"#).0.is_err());
        assert!(walk(r#"{"Records":[]} trailing"#).0.is_err());
        // Deep nesting must neither overflow the stack nor stop the walk.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let _ = walk(&format!(r#"{{"Records":[{{"x":{deep}}}]}}"#));
        let _ = walk(&format!(r#"{{"Records":[{{"eventName":{deep}}}]}}"#));
    }

    #[test]
    fn parses_event_times() {
        for (text, want) in [
            ("2019-11-07T13:25:41Z", Ok(1573133141)),
            ("2019-11-07T13:25:41.123Z", Ok(1573133141)),
            ("2019-11-07T14:25:41+01:00", Ok(1573133141)),
            ("1970-01-01T00:00:00Z", Ok(0)),
            ("2019-11-07T13:25:41", Err("eventTime has no time zone")),
            (
                "2019-13-07T13:25:41Z",
                Err("eventTime is not an RFC 3339 time"),
            ),
            (
                "2025-03-05 21:19:44.000000000",
                Err("eventTime is not an RFC 3339 time"),
            ),
            ("redacted", Err("eventTime is not an RFC 3339 time")),
        ] {
            assert_eq!(parse_event_time(text), want, "{text}");
        }
    }
}
