//! The wire shape of a CloudTrail log file, read in one pass without building a DOM.
//!
//! `{"Records":[...]}` is walked with serde visitors that hand each record to a callback as
//! soon as it is parsed, borrowing its strings from the input. Only the fields the analysis
//! needs are kept; every other field is skipped. Fields are read leniently (a string where a
//! bool was expected, a number where a string was expected, a duplicate key) so one odd record
//! is judged on its own instead of failing the whole file.
//!
//! Two walkers, one verdict (`walk_log_file`). Most of a record is fields the analysis never
//! reads (`requestParameters`, `responseElements`, `resources`, ...), and serde_json spends
//! about half the decode time going through them token by token. The fast walker (`fast`)
//! reads the common shape of a file directly: plain keys, kept fields that are plain strings,
//! bools or null, skipped strings and scalars checked as serde_json checks them, and skipped
//! objects and arrays passed over by their strings and brackets alone, 64 bytes at a time
//! (`super::structure`). On anything else (an escape or a number in a kept field, a record that
//! is not an object, a syntax error outside a skipped object or array) it gives up and
//! serde_json walks the file. So every file serde_json reads is read the same, and every file
//! it refuses is refused, except one whose only fault lies inside an object or array nobody
//! reads (tokens out of order between sound strings and brackets): that one is read as if the
//! fault were not there, since nothing counted depends on it (simdjson's On-Demand API and
//! sonic-rs skip the same way).

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
    /// `resources[].ARN`, in order: read only when the sink asks for them
    /// (`RecordSink::wants_resources`, data events analysed), else left empty (no allocation).
    pub resources: Vec<Scalar<'a>>,
}

impl RawRecord<'_> {
    /// Every field absent again, keeping the allocation of `resources`. Field by field: a
    /// field the fast walker wrote borrows its text, so each costs a test, not a call.
    #[inline(always)]
    fn clear(&mut self) {
        for field in [
            &mut self.event_time,
            &mut self.event_source,
            &mut self.event_name,
            &mut self.aws_region,
            &mut self.recipient_account_id,
            &mut self.event_id,
            &mut self.event_type,
            &mut self.event_category,
            &mut self.management_event,
            &mut self.read_only,
            &mut self.error_code,
            &mut self.user_agent,
        ] {
            *field = None;
        }
        self.user_identity = None;
        self.resources.clear();
    }
}

/// `resources`: the `ARN` of each element that is an object; anything else gives nothing.
struct ResourcesVisitor;

impl<'de> Visitor<'de> for ResourcesVisitor {
    type Value = Vec<Scalar<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the resources array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut arns = Vec::new();
        while let Some(arn) = seq.next_element::<ResourceArn<'de>>()? {
            if let Some(arn) = arn.0 {
                arns.push(arn);
            }
        }
        Ok(arns)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_map(map).map(|_| Vec::new())
    }
    other_shapes_are!(Vec::new());
}

/// One element of `resources`: its `ARN` (the last, if repeated), when it is an object.
struct ResourceArn<'a>(Option<Scalar<'a>>);

struct ResourceArnVisitor;

impl<'de> Visitor<'de> for ResourceArnVisitor {
    type Value = ResourceArn<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a resource")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut arn = None;
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            if key.as_str() == Some("ARN") {
                arn = Some(map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(ResourceArn(arn))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor.visit_seq(seq).map(|_| ResourceArn(None))
    }
    other_shapes_are!(ResourceArn(None));
}

impl<'de> de::Deserialize<'de> for ResourceArn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ResourceArnVisitor)
    }
}

/// Reads `resources` with `ResourcesVisitor`.
struct ResourcesSeed;

impl<'de> DeserializeSeed<'de> for ResourcesSeed {
    type Value = Vec<Scalar<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ResourcesVisitor)
    }
}

/// One element of `Records`: a record, or something that is not a JSON object.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // handed on by value, never stored: a box costs more
pub enum RecordSlot<'a> {
    Record(RawRecord<'a>),
    NotAnObject,
}

/// Reads one record; `resources` says whether `resources[].ARN` is kept.
#[derive(Clone, Copy)]
struct RecordVisitor {
    resources: bool,
}

impl<'de> DeserializeSeed<'de> for RecordVisitor {
    type Value = RecordSlot<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

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
                Some("resources") if self.resources => {
                    r.resources = map.next_value_seed(ResourcesSeed)?;
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(RecordSlot::Record(r))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        ScalarVisitor
            .visit_seq(seq)
            .map(|_| RecordSlot::NotAnObject)
    }
    other_shapes_are!(RecordSlot::NotAnObject);
}

impl<'de> de::Deserialize<'de> for RecordSlot<'de> {
    /// A record without its `resources`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RecordVisitor { resources: false })
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

impl<'de, F: RecordSink<'de>> DeserializeSeed<'de> for LogFileSeed<'_, F> {
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

impl<'de, F: RecordSink<'de>> Visitor<'de> for LogFileVisitor<'_, F> {
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

fn each_record<'de, A: SeqAccess<'de>, F: RecordSink<'de>>(
    mut seq: A,
    on_record: &mut F,
) -> Result<(), A::Error> {
    let seed = RecordVisitor {
        resources: on_record.wants_resources(),
    };
    while let Some(slot) = seq.next_element_seed(seed)? {
        on_record.record(&slot);
    }
    Ok(())
}

/// The value of `Records`; yields whether it was an array.
struct RecordsSeed<'f, F> {
    on_record: &'f mut F,
}

impl<'de, F: RecordSink<'de>> DeserializeSeed<'de> for RecordsSeed<'_, F> {
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

impl<'de, F: RecordSink<'de>> Visitor<'de> for RecordsVisitor<'_, F> {
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

/// Where the walkers hand each element of `Records`, in order.
pub trait RecordSink<'de> {
    /// One element of `Records`, lent for the call: the fast walker fills the same record
    /// again for the next element (no copy of it, no drop per record).
    fn record(&mut self, slot: &RecordSlot<'de>);

    /// Whether records should carry `resources[].ARN` (read only for data events: most
    /// records' `resources` are skipped unread otherwise).
    fn wants_resources(&self) -> bool {
        false
    }
}

impl<'de> RecordSink<'de> for Vec<RecordSlot<'de>> {
    fn record(&mut self, slot: &RecordSlot<'de>) {
        self.push(slot.clone());
    }
}

/// Collects the records with their `resources[].ARN` (for tests and tools).
#[derive(Debug, Default, PartialEq)]
pub struct WithResources<'de>(pub Vec<RecordSlot<'de>>);

impl<'de> RecordSink<'de> for WithResources<'de> {
    fn record(&mut self, slot: &RecordSlot<'de>) {
        self.0.push(slot.clone());
    }

    fn wants_resources(&self) -> bool {
        true
    }
}

/// Walk a whole log file, handing each element of `Records` (or of a bare array) to a sink made
/// by `new_sink`: the fast walker when it can read the file, serde_json when it cannot. Records
/// stream through the sink as they are read; when the fast walker gives up part-way, its sink
/// is dropped and serde_json starts again with a new one, so the sink returned has seen each
/// record exactly once. An error is serde_json's message.
pub fn walk_log_file<'de, S: RecordSink<'de>>(
    json: &'de [u8],
    mut new_sink: impl FnMut() -> S,
) -> Result<(FileShape, S), String> {
    let mut sink = new_sink();
    if let Some(shape) = fast::walk(json, &mut sink) {
        return Ok((shape, sink));
    }
    let mut sink = new_sink();
    let shape = serde_walk(json, &mut sink)?;
    Ok((shape, sink))
}

/// `json` with every `\u` escape of a lone UTF-16 surrogate (a high one not followed by a low
/// one's escape, or a low one not after a high one) replaced by `\ufffd`, U+FFFD, and how many
/// were; `None` when there is none. serde_json refuses a lone surrogate, which would cost the
/// whole object for one odd string (a client's `userAgent` is its own to write), where Go's
/// `encoding/json` reads it as U+FFFD and loses nothing counted. The bytes keep their length
/// and place. A backslash outside a string is a syntax error either way, so strings need not be
/// tracked: each escape is stepped over whole, and `\\u` is an escaped backslash.
pub fn repair_lone_surrogates(json: &[u8]) -> Option<(Vec<u8>, u64)> {
    fn unit(json: &[u8], at: usize) -> Option<u16> {
        let hex = json.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let is_high = |u: u16| (0xD800..0xDC00).contains(&u);
    let is_low = |u: u16| (0xDC00..0xE000).contains(&u);
    let mut repaired: Option<Vec<u8>> = None;
    let mut replaced = 0;
    let mut at = 0;
    while let Some(found) = (json.get(at..)).and_then(|rest| rest.iter().position(|b| *b == b'\\'))
    {
        at += found;
        let lone = match unit(json, at) {
            Some(u) if is_high(u) && unit(json, at + 6).is_some_and(is_low) => {
                at += 12;
                continue;
            }
            Some(u) => is_high(u) || is_low(u),
            None => {
                at += 2;
                continue;
            }
        };
        if lone {
            repaired.get_or_insert_with(|| json.to_vec())[at + 2..at + 6].copy_from_slice(b"fffd");
            replaced += 1;
        }
        at += 6;
    }
    repaired.map(|bytes| (bytes, replaced))
}

/// The serde walker: the reference behaviour for every input.
fn serde_walk<'de, F: RecordSink<'de>>(
    json: &'de [u8],
    on_record: &mut F,
) -> Result<FileShape, String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    LogFileSeed { on_record }
        .deserialize(&mut de)
        .and_then(|shape| de.end().map(|()| shape))
        .map_err(|e| e.to_string())
}

/// The fast walker: a byte scanner for the common shape of a CloudTrail file. `None` means
/// "not sure": the caller then lets serde_json decide, so this walker only has to be right
/// when it answers, and it answers only for input serde_json accepts with the same result.
///
/// What it costs is a chain: one token's end is the next one's start, so a record is read as
/// some fifty short string scans in a row, each waiting on the one before. What shortens the
/// chain (issue 23, session 11; `docs/benchmarks.md`): the member loops keep the position in a
/// register (the key reader, `plain_string`, `skip_value`, `userIdentity`'s loop and a skipped
/// string without escapes are inlined into them; escapes and whitespace are read out of line,
/// since CloudTrail writes compact JSON), and one record is lent to the sink and filled again
/// for the next element, not built, moved and dropped per element.
mod fast {
    use super::{FileShape, Identity, RawRecord, RecordSink, RecordSlot, Scalar};
    use std::borrow::Cow;

    /// Hands each record to `sink` as soon as it is read; `None` (not sure) may come after some
    /// records were handed on.
    pub fn walk<'de, S: RecordSink<'de>>(json: &'de [u8], sink: &mut S) -> Option<FileShape> {
        let mut w = Walker { b: json, i: 0 };
        let shape = match w.peek()? {
            b'{' => {
                w.i += 1;
                w.file_object(sink)?
            }
            b'[' => {
                w.i += 1;
                w.records(sink)?;
                FileShape::BareArray
            }
            _ => return None,
        };
        // Only whitespace may follow.
        w.peek().is_none().then_some(shape)
    }

    /// The record fields the walker reads, told apart by length first, then by their bytes
    /// (one or two fixed-size compares, not a chain of string compares).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(super) enum Field {
        EventTime,
        EventSource,
        EventName,
        AwsRegion,
        RecipientAccountId,
        EventId,
        EventType,
        EventCategory,
        ManagementEvent,
        ReadOnly,
        ErrorCode,
        UserAgent,
        UserIdentity,
        Resources,
        Other,
    }

    impl Field {
        #[inline(always)]
        pub(super) fn of(key: &[u8]) -> Field {
            let is = |name: &[u8]| key == name;
            match key.len() {
                7 if is(b"eventID") => Field::EventId,
                8 if is(b"readOnly") => Field::ReadOnly,
                9 => match key[0] {
                    b'e' if is(b"eventTime") => Field::EventTime,
                    b'e' if is(b"eventName") => Field::EventName,
                    b'e' if is(b"eventType") => Field::EventType,
                    b'e' if is(b"errorCode") => Field::ErrorCode,
                    b'a' if is(b"awsRegion") => Field::AwsRegion,
                    b'u' if is(b"userAgent") => Field::UserAgent,
                    b'r' if is(b"resources") => Field::Resources,
                    _ => Field::Other,
                },
                11 if is(b"eventSource") => Field::EventSource,
                12 if is(b"userIdentity") => Field::UserIdentity,
                13 if is(b"eventCategory") => Field::EventCategory,
                15 if is(b"managementEvent") => Field::ManagementEvent,
                18 if is(b"recipientAccountId") => Field::RecipientAccountId,
                _ => Field::Other,
            }
        }
    }

    struct Walker<'de> {
        b: &'de [u8],
        i: usize,
    }

    impl<'de> Walker<'de> {
        /// The next byte after JSON whitespace, not consumed; `None` at the end. CloudTrail
        /// writes compact JSON, so the first byte is tested alone first.
        #[inline(always)]
        fn peek(&mut self) -> Option<u8> {
            let c = *self.b.get(self.i)?;
            if c > b' ' {
                return Some(c);
            }
            self.peek_past_whitespace()
        }

        #[cold]
        fn peek_past_whitespace(&mut self) -> Option<u8> {
            while let Some(&c) = self.b.get(self.i) {
                if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                    return Some(c);
                }
                self.i += 1;
            }
            None
        }

        fn eat(&mut self, c: u8) -> Option<()> {
            (self.peek()? == c).then(|| self.i += 1)
        }

        /// After a member: `,` (true, more follow) or the closing bracket (false).
        fn next_member(&mut self, close: u8) -> Option<bool> {
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    Some(true)
                }
                c if c == close => {
                    self.i += 1;
                    Some(false)
                }
                _ => None,
            }
        }

        /// `{` was read: the members up to the closing `}`, each key handed to `member`, which
        /// reads or skips its value.
        fn members(
            &mut self,
            mut member: impl FnMut(&mut Self, &'de str) -> Option<()>,
        ) -> Option<()> {
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(());
            }
            loop {
                let key = self.key()?;
                member(self, key)?;
                if !self.next_member(b'}')? {
                    return Some(());
                }
            }
        }

        /// `{` was read: the top-level object's members, with `Records` read as records.
        fn file_object<S: RecordSink<'de>>(&mut self, sink: &mut S) -> Option<FileShape> {
            let mut shape = FileShape::NoRecords;
            self.members(|w, key| {
                if key != "Records" {
                    return w.skip_value();
                }
                w.eat(b'[')?;
                w.records(sink)?;
                shape = FileShape::Records;
                Some(())
            })?;
            Some(shape)
        }

        /// `[` was read: records up to the closing `]`.
        fn records<S: RecordSink<'de>>(&mut self, sink: &mut S) -> Option<()> {
            if self.peek()? == b']' {
                self.i += 1;
                return Some(());
            }
            let resources = sink.wants_resources();
            // One record, filled again for each element and lent to the sink: no copy of it
            // per record, and its `resources` keep their allocation.
            let mut slot = RecordSlot::Record(RawRecord::default());
            loop {
                self.eat(b'{')?;
                if let RecordSlot::Record(r) = &mut slot {
                    r.clear();
                    self.record(r, resources)?;
                }
                sink.record(&slot);
                if !self.next_member(b']')? {
                    return Some(());
                }
            }
        }

        /// `{` was read: one record's members (`resources[].ARN` too when `resources`) into
        /// `r`, which is empty.
        fn record(&mut self, r: &mut RawRecord<'de>, resources: bool) -> Option<()> {
            self.members(|w, key| {
                let slot = match Field::of(key.as_bytes()) {
                    Field::EventTime => &mut r.event_time,
                    Field::EventSource => &mut r.event_source,
                    Field::EventName => &mut r.event_name,
                    Field::AwsRegion => &mut r.aws_region,
                    Field::RecipientAccountId => &mut r.recipient_account_id,
                    Field::EventId => &mut r.event_id,
                    Field::EventType => &mut r.event_type,
                    Field::EventCategory => &mut r.event_category,
                    Field::ManagementEvent => &mut r.management_event,
                    Field::ReadOnly => &mut r.read_only,
                    Field::ErrorCode => &mut r.error_code,
                    Field::UserAgent => &mut r.user_agent,
                    Field::UserIdentity => {
                        w.eat(b'{')?;
                        r.user_identity = Some(w.identity()?);
                        return Some(());
                    }
                    Field::Resources if resources => {
                        // A repeated key: the last one counts, as in serde_json.
                        r.resources.clear();
                        return w.resources(&mut r.resources);
                    }
                    Field::Resources | Field::Other => return w.skip_value(),
                };
                w.scalar_into(slot)
            })
        }

        /// `{` was read: the `userIdentity` members used for attribution.
        #[inline(always)]
        fn identity(&mut self) -> Option<Identity<'de>> {
            let mut identity = Identity::default();
            self.members(|w, key| {
                match key {
                    "arn" => w.scalar_into(&mut identity.arn)?,
                    "invokedBy" => w.scalar_into(&mut identity.invoked_by)?,
                    _ => w.skip_value()?,
                }
                Some(())
            })?;
            Some(identity)
        }

        /// The `resources` value: the `ARN` of each element that is an object (the last one
        /// when repeated); a value that is not an array gives none.
        fn resources(&mut self, arns: &mut Vec<Scalar<'de>>) -> Option<()> {
            if self.peek()? != b'[' {
                return self.skip_visited();
            }
            self.i += 1;
            if self.peek()? == b']' {
                self.i += 1;
                return Some(());
            }
            loop {
                if self.peek()? == b'{' {
                    self.i += 1;
                    let mut arn = None;
                    self.members(|w, key| {
                        if key == "ARN" {
                            w.scalar_into(&mut arn)
                        } else {
                            w.skip_value()
                        }
                    })?;
                    arns.extend(arn);
                } else {
                    self.skip_visited()?;
                }
                if !self.next_member(b']')? {
                    return Some(());
                }
            }
        }

        /// Skip a value that serde_json hands to a visitor (not one it ignores): it checks the
        /// UTF-8 of a string and of an object's keys there, so a string is read as a kept one
        /// and an object is left to serde_json. Arrays are skipped as serde_json ignores their
        /// elements.
        fn skip_visited(&mut self) -> Option<()> {
            match self.peek()? {
                b'{' => None,
                b'"' => {
                    self.i += 1;
                    self.plain_string().map(|_| ())
                }
                _ => self.skip_value(),
            }
        }

        /// A member's key and its `:`. Keys with escapes are left to serde_json.
        #[inline(always)]
        fn key(&mut self) -> Option<&'de str> {
            self.eat(b'"')?;
            let key = self.plain_string()?;
            self.eat(b':')?;
            Some(key)
        }

        /// A kept field's value into its slot: a plain string, a bool or null (other shapes:
        /// serde_json). Written in place: a `Scalar` returned by value and then moved costs
        /// a store-forwarding stall per field.
        #[inline(always)]
        fn scalar_into(&mut self, slot: &mut Option<Scalar<'de>>) -> Option<()> {
            let value = match self.peek()? {
                b'"' => {
                    self.i += 1;
                    let text = self.plain_string()?;
                    *slot = Some(Scalar::Str(Cow::Borrowed(text)));
                    return Some(());
                }
                b't' => self.literal(b"true").map(|()| Scalar::Bool(true)),
                b'f' => self.literal(b"false").map(|()| Scalar::Bool(false)),
                b'n' => self.literal(b"null").map(|()| Scalar::Null),
                _ => None,
            };
            *slot = Some(value?);
            Some(())
        }

        /// The rest of a string after its `"`, when it has no escape and is valid UTF-8.
        #[inline(always)]
        fn plain_string(&mut self) -> Option<&'de str> {
            let start = self.i;
            let (end, ascii) = string_stop(self.b, start);
            if self.b.get(end) != Some(&b'"') {
                return None;
            }
            self.i = end + 1;
            let bytes = &self.b[start..end];
            if ascii {
                // SAFETY: every byte is below 0x80 (checked by `string_stop`): ASCII is UTF-8.
                return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
            }
            std::str::from_utf8(bytes).ok()
        }

        /// `true`, `false` or `null`: a fixed-size compare (a slice of either length was a call
        /// to `memcmp` for each of a record's bools).
        #[inline(always)]
        fn literal<const N: usize>(&mut self, word: &[u8; N]) -> Option<()> {
            let rest = self.b.get(self.i..)?;
            (rest.first_chunk::<N>()? == word).then(|| self.i += N)
        }

        /// Skip one value. Strings and scalars are checked as serde_json checks an ignored
        /// value (escapes and control characters, literals, number syntax; not UTF-8, which
        /// serde_json does not check in ignored strings either); objects and arrays are
        /// skipped by their strings and brackets alone (`structure`), 64 bytes at a time.
        #[inline(always)]
        fn skip_value(&mut self) -> Option<()> {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    self.skip_string()
                }
                b'{' | b'[' => {
                    self.i = crate::decode::structure::skip_container(self.b, self.i)?;
                    Some(())
                }
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                b'n' => self.literal(b"null"),
                b'-' | b'0'..=b'9' => self.skip_number(),
                _ => None,
            }
        }

        /// The rest of a string after its `"`: valid escapes, no control characters. A
        /// string without an escape (nearly all) costs one scan, inlined; escapes are read
        /// out of line.
        #[inline(always)]
        fn skip_string(&mut self) -> Option<()> {
            let stop = string_stop(self.b, self.i).0;
            if self.b.get(stop) == Some(&b'"') {
                self.i = stop + 1;
                return Some(());
            }
            self.skip_string_with_escapes()
        }

        #[cold]
        fn skip_string_with_escapes(&mut self) -> Option<()> {
            loop {
                self.i = string_stop(self.b, self.i).0;
                match *self.b.get(self.i)? {
                    b'"' => {
                        self.i += 1;
                        return Some(());
                    }
                    b'\\' => {
                        let escape = *self.b.get(self.i + 1)?;
                        self.i += 2;
                        match escape {
                            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                            b'u' => {
                                let hex = self.b.get(self.i..self.i + 4)?;
                                if !hex.iter().all(u8::is_ascii_hexdigit) {
                                    return None;
                                }
                                self.i += 4;
                            }
                            _ => return None,
                        }
                    }
                    _ => return None,
                }
            }
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        fn skip_number(&mut self) -> Option<()> {
            if self.b[self.i] == b'-' {
                self.i += 1;
            }
            match *self.b.get(self.i)? {
                b'0' => {
                    self.i += 1;
                    if self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                        return None;
                    }
                }
                b'1'..=b'9' => self.digits(),
                _ => return None,
            }
            if self.b.get(self.i) == Some(&b'.') {
                self.i += 1;
                self.b.get(self.i).filter(|c| c.is_ascii_digit())?;
                self.digits();
            }
            if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                self.b.get(self.i).filter(|c| c.is_ascii_digit())?;
                self.digits();
            }
            Some(())
        }

        fn digits(&mut self) {
            while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
        }
    }

    /// The index of the first `"`, `\` or control character at or after `from` (the end of
    /// the input if none), and whether the bytes before it are all ASCII (`false` may also mean
    /// a non-ASCII byte just after the stop). Sixteen bytes at a time with SSE2 (part of every
    /// x86-64 CPU), eight at a time elsewhere.
    #[cfg(target_arch = "x86_64")]
    pub(super) fn string_stop(b: &[u8], from: usize) -> (usize, bool) {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        let mut i = from;
        let mut non_ascii = 0u32;
        while let Some(chunk) = b.get(i..).and_then(|rest| rest.first_chunk::<16>()) {
            // SAFETY: SSE2 is part of the x86-64 baseline (always enabled on this target), and
            // `chunk` is 16 readable bytes (an unaligned load has no alignment requirement).
            let (stops, high) = unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                let limit = _mm_set1_epi8(0x1f);
                let control = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
                let stops = _mm_or_si128(_mm_or_si128(quote, backslash), control);
                (_mm_movemask_epi8(stops), _mm_movemask_epi8(v) as u32)
            };
            if stops != 0 {
                let at = stops.trailing_zeros();
                let before = high & ((1u32 << at) - 1);
                return (i + at as usize, non_ascii | before == 0);
            }
            non_ascii |= high;
            i += 16;
        }
        let (stop, ascii) = string_stop_bytewise(b, i);
        (stop, ascii && non_ascii == 0)
    }

    /// `string_stop` eight bytes at a time, as serde_json does.
    #[cfg(not(target_arch = "x86_64"))]
    pub(super) fn string_stop(b: &[u8], from: usize) -> (usize, bool) {
        const ONES: u64 = u64::MAX / 255;
        const HIGH: u64 = ONES << 7;
        let mut i = from;
        let mut seen = 0u64;
        while let Some(chunk) = b.get(i..).and_then(|rest| rest.first_chunk::<8>()) {
            let w = u64::from_le_bytes(*chunk);
            seen |= w;
            let control = w.wrapping_sub(ONES * 0x20) & !w;
            let quote = w ^ (ONES * u64::from(b'"'));
            let quote = quote.wrapping_sub(ONES) & !quote;
            let backslash = w ^ (ONES * u64::from(b'\\'));
            let backslash = backslash.wrapping_sub(ONES) & !backslash;
            let found = (control | quote | backslash) & HIGH;
            if found != 0 {
                return (i + found.trailing_zeros() as usize / 8, seen & HIGH == 0);
            }
            i += 8;
        }
        let (stop, ascii) = string_stop_bytewise(b, i);
        (stop, ascii && seen & HIGH == 0)
    }

    /// `string_stop` one byte at a time: the end of the input.
    pub(super) fn string_stop_bytewise(b: &[u8], from: usize) -> (usize, bool) {
        let mut i = from;
        let mut ascii = true;
        while let Some(&c) = b.get(i)
            && c != b'"'
            && c != b'\\'
            && c >= 0x20
        {
            ascii &= c.is_ascii();
            i += 1;
        }
        (i, ascii)
    }
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

/// `parse_event_time`, remembering the day of the last plain UTC time read (`last_day`: its
/// `YYYY-MM-DD` and its day number): a file's records share a date or two, so most times have
/// only their hour, minute and second read. The same answer as `parse_event_time`.
pub fn parse_event_time_after(
    text: &str,
    last_day: &mut Option<([u8; 10], i64)>,
) -> Result<i64, &'static str> {
    let b = text.as_bytes();
    if let Some(date) = b.first_chunk::<10>()
        && b.len() == 20
        && b[19] == b'Z'
        && b[10] == b'T'
    {
        let day = match *last_day {
            Some((last, day)) if last == *date => Some(day),
            _ => plain_day(b),
        };
        if let Some(day) = day
            && let Some(seconds) = plain_second_of_day(b)
        {
            *last_day = Some((*date, day));
            return Ok(day * 86_400 + seconds);
        }
    }
    parse_event_time(text)
}

/// The digits of `b[range]` as a number, if they are all digits.
fn plain_number(b: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    b[range].iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// The fast path for `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_plain_utc(b: &[u8]) -> Option<i64> {
    Some(plain_day(b)? * 86_400 + plain_second_of_day(b)?)
}

/// The day number (days since 1970-01-01) of `YYYY-MM-DD` at the start of `b`.
fn plain_day(b: &[u8]) -> Option<i64> {
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i64::from(plain_number(b, 0..4)?);
    let (month, day) = (plain_number(b, 5..7)?, plain_number(b, 8..10)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// The second of the day of `HH:MM:SS` at `b[11..19]`.
fn plain_second_of_day(b: &[u8]) -> Option<i64> {
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute) = (plain_number(b, 11..13)?, plain_number(b, 14..16)?);
    let second = plain_number(b, 17..19)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None; // a leap second (:60) is left to chrono
    }
    Some(i64::from(hour * 3600 + minute * 60 + second))
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(json: &str) -> (Result<FileShape, String>, Vec<RecordSlot<'_>>) {
        match walk_log_file(json.as_bytes(), Vec::new) {
            Ok((shape, slots)) => (Ok(shape), slots),
            Err(e) => (Err(e), Vec::new()),
        }
    }

    /// What a walker reads of a file for a sink that skips `resources`, and for one that reads
    /// them (the fast walker may read a file for one and leave it to serde_json for the other).
    type Read<'a> = (
        Option<(FileShape, Vec<RecordSlot<'a>>)>,
        Option<(FileShape, WithResources<'a>)>,
    );

    fn fast_read(json: &[u8]) -> Read<'_> {
        let (mut slots, mut with) = (Vec::new(), WithResources::default());
        let without = fast::walk(json, &mut slots).map(|shape| (shape, slots));
        (
            without,
            fast::walk(json, &mut with).map(|shape| (shape, with)),
        )
    }

    fn serde_read(json: &[u8]) -> Result<Read<'_>, String> {
        let (mut slots, mut with) = (Vec::new(), WithResources::default());
        let without = serde_walk(json, &mut slots).map(|shape| (shape, slots))?;
        let with = serde_walk(json, &mut with).map(|shape| (shape, with))?;
        Ok((Some(without), Some(with)))
    }

    /// Where serde_json reads a file, the fast walker reads it the same or leaves it to
    /// serde_json. Where serde_json refuses it, the fast walker may read it only when what is
    /// broken lies inside an object or array it skips (`structure`): then it reads what it
    /// reads of `sound`, the same file unbroken. Returns whether the fast walker read it (for
    /// both sinks).
    fn assert_walkers_agree_or_skip(json: &[u8], sound: Option<&[u8]>) -> bool {
        let text = String::from_utf8_lossy(json);
        let (without, with) = fast_read(json);
        if without.is_none() && with.is_none() {
            return false;
        }
        let reference = match serde_read(json) {
            Ok(serde) => serde,
            Err(e) => {
                let sound =
                    sound.unwrap_or_else(|| panic!("read a file serde_json refuses ({e}): {text}"));
                serde_read(sound).expect("the sound file is valid")
            }
        };
        let read_both = without.is_some() && with.is_some();
        if let Some(without) = without {
            assert_eq!(Some(without), reference.0, "{text}");
        }
        if let Some(with) = with {
            assert_eq!(Some(with), reference.1, "with resources: {text}");
        }
        read_both
    }

    fn assert_walkers_agree(json: &[u8]) -> bool {
        assert_walkers_agree_or_skip(json, None)
    }

    /// Realistic records: skipped values of every JSON kind, escapes and unicode in them, kept
    /// fields as strings, bools and null, a string "false", an AWS service caller.
    const REALISTIC: &str = r#"{"Records": [
      {"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA:s",
       "arn":"arn:aws:sts::123456789012:assumed-role/Deploy/i-0abc","accountId":"123456789012",
       "sessionContext":{"sessionIssuer":{"type":"Role","userName":"Deploy"},"webIdFederationData":{},
       "attributes":{"creationDate":"2019-11-07T12:00:00Z","mfaAuthenticated":"false"}}},
       "eventTime":"2019-11-07T13:25:01Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances",
       "awsRegion":"us-east-1","sourceIPAddress":"203.0.113.7\u00e9","userAgent":"aws-cli/2.0 Python/3.8 é",
       "requestParameters":{"instancesSet":{"items":[{"imageId":"ami-1","minCount":1,"maxCount":-2}]},
         "ratio":1.5e-3,"big":12E+2,"zero":0,"neg":-0.25,"flag":true,"none":null,"empty":[],
         "policy":"{\"Version\":\"2012-10-17\",\"Statement\":[]}\n\t\\ \/ \b\f\r","name":"日本 é"},
       "responseElements":null,"requestID":"r-1","eventID":"3c9a8f4e-1d2b-4c5a-9e7f-0a1b2c3d4e5f",
       "readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012",
       "eventCategory":"Management","tlsDetails":{"tlsVersion":"TLSv1.2"},"resources":[{"ARN":"x","type":"t"}]},
      {"eventTime":"2019-11-07T13:25:02Z","eventSource":"s3.amazonaws.com","eventName":"PutObject",
       "userIdentity":{"type":"AWSService","invokedBy":"cloudtrail.amazonaws.com"},"readOnly":"false",
       "errorCode":"AccessDenied","errorMessage":"Access Denied","additionalEventData":{"bytes":[1,2,3]},
       "awsRegion":"eu-west-1","recipientAccountId":"123456789012","eventID":"e2","userAgent":null,
       "managementEvent":false,"eventName":"PutObjectAcl",
       "resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::b/kéy"},{"accountId":"1",
         "type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::b"},{"ARNPrefix":"arn:aws:s3:::b/p"},7,[],
         {"ARN":null},{"ARN":"x","ARN":"y"}]},
      {"eventTime":"2019-11-07T13:25:03Z","resources":"not an array","eventName":"Invoke"},
      {"eventTime":"2019-11-07T13:25:03Z","resources":[],"eventName":"Invoke"},
      { }
    ], "other": {"a": [true, false, null, "x"]} }
"#;

    #[test]
    fn the_fast_walker_agrees_with_serde_json() {
        assert!(
            assert_walkers_agree(REALISTIC.as_bytes()),
            "the fast walker reads it"
        );
        let bare = r#"[{"eventTime":"2019-11-07T13:25:01Z","eventName":"X",
            "requestParameters":{"a":[1,{"b":"\"q\""}]}}, {}]"#;
        assert!(assert_walkers_agree(bare.as_bytes()), "{bare}");
        for odd in [
            r#"{"Records":[{"eventName":"a\u0042"}]}"#,
            r#"{"Records":[{"recipientAccountId":123456789012}]}"#,
            r#"{"Records":[{"eventName":{"a":1}}]}"#,
            r#"{"Records":[7, "x", []]}"#,
            r#"{"Records":{}}"#,
            r#"{"records":[]}"#,
            r#""just a string""#,
            r#"{"Records":[{"x":1e999}]}"#,
            r#"{"Records":[{"x":01}]}"#,
            r#"{"Records":[{"x":"\q"}]}"#,
            r#"{"Records":[{"x":["\q"]}]}"#,
            r#"{"Records":[{"x":[1,}]}"#,
            r#"{"Records":[],}"#,
            r#"{"Records":[{"x":tru}]}"#,
        ] {
            assert_walkers_agree(odd.as_bytes());
        }
        // Out of order inside a skipped array, but its strings and brackets are sound.
        let broken = r#"{"Records":[{"x":[1,],"eventName":"a"}]}"#;
        let sound = r#"{"Records":[{"x":[1],"eventName":"a"}]}"#;
        assert!(assert_walkers_agree_or_skip(
            broken.as_bytes(),
            Some(sound.as_bytes())
        ));
        let bytes = REALISTIC.as_bytes();
        for at in 0..bytes.len() {
            assert_walkers_agree(&bytes[..at]);
            for c in [
                b'"', b'\\', b',', b':', b'{', b'}', b'[', b']', b'0', b'-', b'e', b'.', b'x',
                b' ', 0x01, 0xff,
            ] {
                let mut mutated = bytes.to_vec();
                mutated[at] = c;
                assert_walkers_agree_or_skip(&mutated, Some(bytes));
            }
        }
    }

    /// Each kept key is told apart from the others and from its near misses (same length, one
    /// byte changed, a prefix, a different case).
    #[test]
    fn record_keys_are_told_apart() {
        use fast::Field;
        let kept = [
            ("eventTime", Field::EventTime),
            ("eventSource", Field::EventSource),
            ("eventName", Field::EventName),
            ("awsRegion", Field::AwsRegion),
            ("recipientAccountId", Field::RecipientAccountId),
            ("eventID", Field::EventId),
            ("eventType", Field::EventType),
            ("eventCategory", Field::EventCategory),
            ("managementEvent", Field::ManagementEvent),
            ("readOnly", Field::ReadOnly),
            ("errorCode", Field::ErrorCode),
            ("userAgent", Field::UserAgent),
            ("userIdentity", Field::UserIdentity),
            ("resources", Field::Resources),
        ];
        for (name, field) in kept {
            assert_eq!(Field::of(name.as_bytes()), field, "{name}");
            let bytes = name.as_bytes();
            for at in 0..bytes.len() {
                let mut near = bytes.to_vec();
                near[at] ^= 0x20;
                assert_eq!(
                    Field::of(&near),
                    Field::Other,
                    "{}",
                    String::from_utf8_lossy(&near)
                );
                assert_eq!(Field::of(&bytes[..at]), Field::Other, "{}", &name[..at]);
            }
            assert_eq!(Field::of(format!("{name}x").as_bytes()), Field::Other);
        }
        for other in [
            "",
            "eventVersion",
            "errorMessage",
            "requestID",
            "sourceIPAddress",
            "ARN",
        ] {
            assert_eq!(Field::of(other.as_bytes()), Field::Other, "{other}");
        }
    }

    /// The vector scan (16 bytes at a time, or 8) finds the same stop as the byte loop, and
    /// the same answer on ASCII, for every stop and non-ASCII byte at every position of strings
    /// up to 100 bytes, from every starting offset in a 16-byte window.
    #[test]
    fn the_vector_string_scan_agrees_with_the_byte_loop() {
        let check = |b: &[u8], from: usize| {
            let (stop, ascii) = fast::string_stop(b, from);
            let (want_stop, want_ascii) = fast::string_stop_bytewise(b, from);
            assert_eq!(stop, want_stop, "{b:?} from {from}");
            // `false` may also mean a non-ASCII byte just after the stop.
            if want_ascii {
                let after_stop = b.get(stop + 1..).unwrap_or_default();
                assert!(ascii || after_stop.iter().any(|c| !c.is_ascii()), "{b:?}");
            } else {
                assert!(!ascii, "{b:?} from {from}");
            }
        };
        for len in 0..100 {
            for from in 0..16.min(len + 1) {
                let plain = vec![b'a'; len];
                check(&plain, from);
                for at in from..len {
                    for c in [b'"', b'\\', 0x00, 0x1f, 0x7f, 0x80, 0xff] {
                        let mut b = plain.clone();
                        b[at] = c;
                        check(&b, from);
                        // A non-ASCII byte before a stop further on.
                        if at + 1 < len {
                            b[at + 1] = b'"';
                            check(&b, from);
                        }
                    }
                }
            }
        }
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
    fn repairs_only_lone_surrogate_escapes_in_place() {
        let repair = |json: &str| {
            repair_lone_surrogates(json.as_bytes())
                .map(|(bytes, n)| (String::from_utf8(bytes).unwrap(), n))
        };
        for kept in [
            r#"{"a":"\ud83d\ude00","b":"\u00e9\\ud800","c":"\"","d":"\\"}"#,
            r#"no escape"#,
            "ends with a backslash \\",
            r#"short \ud8"#,
        ] {
            assert_eq!(repair(kept), None, "{kept}");
        }
        for (json, want, n) in [
            (r#"["\ud800"]"#, r#"["\ufffd"]"#, 1),
            (r#"["\uDC00\uD83D"]"#, r#"["\ufffd\ufffd"]"#, 2),
            (
                r#"["\ud800\u0041\ud83d\ude00"]"#,
                r#"["\ufffd\u0041\ud83d\ude00"]"#,
                1,
            ),
            (r#"["\\\udbff x"]"#, r#"["\\\ufffd x"]"#, 1),
        ] {
            assert_eq!(repair(json), Some((want.to_owned(), n)), "{json}");
        }
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
    fn the_plain_utc_path_agrees_with_chrono() {
        let mut day = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        let last = chrono::NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
        while day < last {
            let text = format!("{}T23:59:59Z", day.format("%Y-%m-%d"));
            let want = day.and_hms_opt(23, 59, 59).unwrap().and_utc().timestamp();
            assert_eq!(parse_event_time(&text), Ok(want), "{text}");
            day += chrono::Duration::days(7);
        }
        for text in [
            "2019-02-29T00:00:00Z",
            "2020-02-30T00:00:00Z",
            "2019-04-31T00:00:00Z",
            "2019-00-10T00:00:00Z",
            "2019-11-00T00:00:00Z",
            "2019-11-07T24:00:00Z",
            "2019-11-07T23:60:00Z",
            "2019-11-07T23:59:60Z",
            "1900-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2019-1a-07T13:25:41Z",
        ] {
            let chrono = chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp());
            assert_eq!(parse_event_time(text).ok(), chrono.ok(), "{text}");
        }
    }

    /// With the last date remembered, every time reads as on its own: a run of times on one
    /// date, dates changing, and bad times after good ones on the same date.
    #[test]
    fn a_remembered_date_reads_as_parse_event_time() {
        let mut last_day = None;
        let mut times = Vec::new();
        for date in [
            "2019-11-07",
            "2019-11-08",
            "2020-02-29",
            "2019-02-29",
            "2019-1a-07",
        ] {
            for time in [
                "13:25:41Z",
                "00:00:00Z",
                "23:59:59Z",
                "24:00:00Z",
                "23:60:00Z",
                "23:59:60Z",
                "1a:00:00Z",
                "13-25:41Z",
                "13:25:41.123Z",
                "13:25:41",
            ] {
                times.push(format!("{date}T{time}"));
            }
            times.push(format!("{date} 13:25:41Z"));
        }
        times.push("redacted".to_string());
        times.push("2019-11-07T13:25:41Z".to_string());
        for text in &times {
            assert_eq!(
                parse_event_time_after(text, &mut last_day),
                parse_event_time(text),
                "{text}"
            );
        }
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

#[cfg(test)]
mod real_files {
    use super::*;

    /// The fast walker reads real CloudTrail files (tests/fixtures/real-cloudtrail: AWS's own
    /// examples, attack simulations, a SIEM's test logs), not only the generator's: a file it
    /// hands to serde_json is parsed twice. Where it answers, it answers as serde_json does.
    #[test]
    fn the_fast_walker_reads_real_cloudtrail_files() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-cloudtrail");
        let mut files = Vec::new();
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.to_string_lossy().contains(".json") {
                    files.push(path);
                }
            }
        }
        let (mut read, mut records, mut arns, mut fallbacks) = (0, 0, 0, Vec::new());
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            let json = if crate::decode::gzip::is_gzip(&bytes) {
                crate::decode::gzip::gunzip_capped(&bytes, 1 << 30).unwrap()
            } else {
                bytes
            };
            let mut slots = Vec::new();
            match fast::walk(&json, &mut slots) {
                Some(shape) => {
                    let mut reference = Vec::new();
                    assert_eq!(serde_walk(&json, &mut reference), Ok(shape), "{path:?}");
                    assert_eq!(slots, reference, "{path:?}");
                    let (mut fast_with, mut serde_with) =
                        (WithResources::default(), WithResources::default());
                    assert_eq!(fast::walk(&json, &mut fast_with), Some(shape), "{path:?}");
                    assert_eq!(serde_walk(&json, &mut serde_with), Ok(shape), "{path:?}");
                    assert_eq!(fast_with, serde_with, "{path:?}");
                    arns += fast_with
                        .0
                        .iter()
                        .map(|s| match s {
                            RecordSlot::Record(r) => r.resources.len(),
                            RecordSlot::NotAnObject => 0,
                        })
                        .sum::<usize>();
                    read += 1;
                    records += slots.len();
                }
                None => fallbacks.push(path.display().to_string()),
            }
        }
        assert!(
            read >= 60 && records >= 4000,
            "{read} files, {records} records"
        );
        assert!(fallbacks.is_empty(), "serde_json had to read {fallbacks:?}");
        assert!(arns >= 100, "{arns} resource ARNs read");
    }
}
