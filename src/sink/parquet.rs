//! Insight records -> Parquet for Athena, Glue, Spark, DuckDB and Polars, in Hive-style
//! partitions: `insights/account=ACCOUNT/region=REGION/date=YYYY-MM-DD/part-UUID.parquet`.
//!
//! One row per Insight record (Start or End). The columns are the JSON record's fields, nested
//! where the JSON nests, every name lower-case (Athena lower-cases identifiers and older engines
//! return NULL for mixed-case Parquet names); `eventtime` is a UTC instant in milliseconds (the
//! only precision Athena reads), and a few derived columns follow the record's fields. The
//! contract, field by field with units, is `schemas/insights-parquet.md`; the Athena DDL that
//! reads these files is `schemas/athena-insights-parquet.sql`, checked against [`schema`] by a
//! test.
//!
//! The files are grouped like the JSON ones (one per account, region and UTC day of
//! `eventTime`), and the name is a pure function of those three, so a re-run replaces a file
//! instead of adding one. The bytes are deterministic too: no time stamp is written.

use crate::model::insight::{
    AttributedValue, Attribution, InsightDetails, InsightRecord, Statistics,
};
use crate::model::{CallRateScope, EventCategory};
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMillisecondArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use std::io::Write;
use std::sync::Arc;

/// Where the Parquet tree starts under the output root; the JSON lives under `AWSLogs/`.
pub const PREFIX: &str = "insights/";
/// The Hive partition columns, in path order: `account=.../region=.../date=YYYY-MM-DD/`.
pub const PARTITION_COLUMNS: [&str; 3] = ["account", "region", "date"];
/// Snappy: pure Rust, the Athena/Glue/Spark default, readable by every engine version
/// (the library default is no compression at all).
pub const COMPRESSION: Compression = Compression::SNAPPY;
/// Rows per row group. A file holds one account-region-day, a few rows in practice; the cap
/// only matters for a pathological day, where it keeps a row group well under 128 MiB.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Time zone of `eventtime`: Parquet `TIMESTAMP(MILLIS, isAdjustedToUTC=true)`.
pub const TIME_ZONE: &str = "UTC";

#[derive(Debug, thiserror::Error)]
pub enum ParquetSinkError {
    #[error("Insight record {event_id}: eventTime {event_time:?} is not an RFC 3339 time")]
    EventTime {
        event_id: String,
        event_time: String,
    },
    #[error("building the Arrow batch: {0}")]
    Arrow(#[from] ArrowError),
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] ParquetError),
}

/// The key of the Parquet file holding one account's Insights of one region and day.
pub fn file_key(account: &str, region: &str, day: NaiveDate) -> String {
    let id = uuid::Uuid::new_v5(
        &crate::model::ID_NAMESPACE,
        format!("insight-parquet|{account}|{region}|{day}").as_bytes(),
    );
    let [a, r, d] = PARTITION_COLUMNS;
    format!("{PREFIX}{a}={account}/{r}={region}/{d}={day}/part-{id}.parquet")
}

/// The writer settings: Parquet 1.0 data pages (read by every engine), Snappy, dictionary
/// encoding, chunk and page statistics, spec-compliant list names (`element`).
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(COMPRESSION)
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_coerce_types(true)
        .build()
}

/// Write `records` as one Parquet file to `out`, returning `out`. `scope` is which management
/// calls the run counted toward call rate (the `callratescope` column).
pub fn write_parquet<W: Write + Send>(
    records: &[InsightRecord],
    scope: CallRateScope,
    out: W,
) -> Result<W, ParquetSinkError> {
    let batch = to_record_batch(records, scope)?;
    // The Parquet types alone give back this exact Arrow schema (tested), so Arrow's own
    // base64 copy of it in the footer would only add bytes.
    let options = ArrowWriterOptions::new()
        .with_properties(writer_properties())
        .with_skip_arrow_metadata(true);
    let mut writer = ArrowWriter::try_new_with_options(out, batch.schema(), options)?;
    writer.write(&batch)?;
    Ok(writer.into_inner()?)
}

/// One Parquet file in memory.
pub fn encode_file(
    records: &[InsightRecord],
    scope: CallRateScope,
) -> Result<Vec<u8>, ParquetSinkError> {
    write_parquet(records, scope, Vec::new())
}

/// The category of a record's series: its `sourceEventCategory`, management when absent.
pub fn category(record: &InsightRecord) -> EventCategory {
    record
        .insight_details
        .source_event_category
        .as_deref()
        .and_then(EventCategory::parse)
        .unwrap_or_default()
}

/// Which calls a call-rate record counted (`write` or `all`), given the run's management
/// `scope`; `None` for an error rate. Data call rates count read and write calls, as AWS.
pub fn call_rate_scope(record: &InsightRecord, scope: CallRateScope) -> Option<CallRateScope> {
    if record.insight_details.error_code.is_some() {
        return None;
    }
    Some(match category(record) {
        EventCategory::Management => scope,
        EventCategory::Data => CallRateScope::All,
    })
}

// ---- The schema -------------------------------------------------------------------------------

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn optional_utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn float64(name: &str) -> Field {
    Field::new(name, DataType::Float64, false)
}

fn int64(name: &str) -> Field {
    Field::new(name, DataType::Int64, false)
}

fn structure(name: &str, fields: Fields) -> Field {
    Field::new(name, DataType::Struct(fields), false)
}

fn list(name: &str, element: FieldRef) -> Field {
    Field::new(name, DataType::List(element), false)
}

fn event_time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(TIME_ZONE.into()))
}

/// `{average}`: `statistics.baseline` and `statistics.insight`.
fn average_fields() -> Fields {
    Fields::from(vec![float64("average")])
}

/// The element of `attributions[].insight` and `.baseline`: `{value, average}`.
fn value_element() -> FieldRef {
    Arc::new(structure(
        "element",
        Fields::from(vec![utf8("value"), float64("average")]),
    ))
}

fn attribution_fields() -> Fields {
    Fields::from(vec![
        utf8("attribute"),
        list("insight", value_element()),
        list("baseline", value_element()),
    ])
}

fn attribution_element() -> FieldRef {
    Arc::new(structure("element", attribution_fields()))
}

fn statistics_fields() -> Fields {
    Fields::from(vec![
        structure("baseline", average_fields()),
        structure("insight", average_fields()),
        int64("insightduration"),
        int64("baselineduration"),
    ])
}

fn context_fields() -> Fields {
    Fields::from(vec![
        structure("statistics", statistics_fields()),
        list("attributions", attribution_element()),
    ])
}

fn details_fields() -> Fields {
    Fields::from(vec![
        utf8("state"),
        utf8("eventsource"),
        utf8("eventname"),
        utf8("insighttype"),
        optional_utf8("errorcode"),
        optional_utf8("sourceeventcategory"),
        structure("insightcontext", context_fields()),
    ])
}

/// The Arrow schema of every file: the JSON record's fields in AWS's order, then the derived
/// columns (`eventtime_iso` and the flattened hot fields).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("eventversion"),
        Field::new("eventtime", event_time_type(), false),
        utf8("awsregion"),
        utf8("eventid"),
        utf8("eventtype"),
        utf8("recipientaccountid"),
        utf8("sharedeventid"),
        structure("insightdetails", details_fields()),
        utf8("eventcategory"),
        // Derived: the JSON `eventTime` text, and flat copies of the most queried fields.
        utf8("eventtime_iso"),
        utf8("state"),
        utf8("eventsource"),
        utf8("eventname"),
        utf8("insighttype"),
        optional_utf8("errorcode"),
        float64("baselineaverage"),
        float64("insightaverage"),
        int64("insightduration"),
        int64("baselineduration"),
        utf8("sourceeventcategory"),
        optional_utf8("callratescope"),
    ]))
}

// ---- Records -> columns -----------------------------------------------------------------------

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn optional_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn floats(values: impl Iterator<Item = f64>) -> ArrayRef {
    Arc::new(values.collect::<Float64Array>())
}

fn ints(values: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(values.collect::<Int64Array>())
}

fn struct_of(fields: Fields, columns: Vec<ArrayRef>) -> Result<ArrayRef, ArrowError> {
    Ok(Arc::new(StructArray::try_new(fields, columns, None)?))
}

/// A list column from each row's items, given the column of all items end to end.
fn list_of(
    element: FieldRef,
    lengths: Vec<usize>,
    items: ArrayRef,
) -> Result<ArrayRef, ArrowError> {
    let offsets = OffsetBuffer::from_lengths(lengths);
    Ok(Arc::new(ListArray::try_new(element, offsets, items, None)?))
}

fn epoch_millis(record: &InsightRecord) -> Result<i64, ParquetSinkError> {
    chrono::DateTime::parse_from_rfc3339(&record.event_time)
        .map(|t| t.timestamp_millis())
        .map_err(|_| ParquetSinkError::EventTime {
            event_id: record.event_id.clone(),
            event_time: record.event_time.clone(),
        })
}

fn values_column(rows: &[&[AttributedValue]]) -> Result<ArrayRef, ArrowError> {
    let all: Vec<&AttributedValue> = rows.iter().flat_map(|v| v.iter()).collect();
    let element = value_element();
    let DataType::Struct(fields) = element.data_type() else {
        unreachable!("value_element is a struct")
    };
    let items = struct_of(
        fields.clone(),
        vec![
            strings(all.iter().map(|v| v.value.as_str())),
            floats(all.iter().map(|v| v.average)),
        ],
    )?;
    list_of(element, rows.iter().map(|v| v.len()).collect(), items)
}

fn attributions_column(rows: &[&[Attribution]]) -> Result<ArrayRef, ArrowError> {
    let all: Vec<&Attribution> = rows.iter().flat_map(|a| a.iter()).collect();
    let insight: Vec<&[AttributedValue]> = all.iter().map(|a| a.insight.as_slice()).collect();
    let baseline: Vec<&[AttributedValue]> = all.iter().map(|a| a.baseline.as_slice()).collect();
    let items = struct_of(
        attribution_fields(),
        vec![
            strings(all.iter().map(|a| a.attribute.as_str())),
            values_column(&insight)?,
            values_column(&baseline)?,
        ],
    )?;
    list_of(
        attribution_element(),
        rows.iter().map(|a| a.len()).collect(),
        items,
    )
}

fn details_column(records: &[InsightRecord]) -> Result<ArrayRef, ArrowError> {
    let d: Vec<_> = records.iter().map(|r| &r.insight_details).collect();
    let s: Vec<_> = d.iter().map(|d| &d.insight_context.statistics).collect();
    let statistics = struct_of(
        statistics_fields(),
        vec![
            struct_of(
                average_fields(),
                vec![floats(s.iter().map(|s| s.baseline.average))],
            )?,
            struct_of(
                average_fields(),
                vec![floats(s.iter().map(|s| s.insight.average))],
            )?,
            ints(s.iter().map(|s| s.insight_duration)),
            ints(s.iter().map(|s| s.baseline_duration)),
        ],
    )?;
    let attributions: Vec<&[Attribution]> = d
        .iter()
        .map(|d| d.insight_context.attributions.as_slice())
        .collect();
    let context = struct_of(
        context_fields(),
        vec![statistics, attributions_column(&attributions)?],
    )?;
    struct_of(
        details_fields(),
        vec![
            strings(d.iter().map(|d| d.state.as_str())),
            strings(d.iter().map(|d| d.event_source.as_str())),
            strings(d.iter().map(|d| d.event_name.as_str())),
            strings(d.iter().map(|d| d.insight_type.as_str())),
            optional_strings(d.iter().map(|d| d.error_code.as_deref())),
            optional_strings(d.iter().map(|d| d.source_event_category.as_deref())),
            context,
        ],
    )
}

fn d(r: &InsightRecord) -> &InsightDetails {
    &r.insight_details
}

fn s(r: &InsightRecord) -> &Statistics {
    &r.insight_details.insight_context.statistics
}

/// The records as one Arrow batch of [`schema`], field by field.
pub fn to_record_batch(
    records: &[InsightRecord],
    scope: CallRateScope,
) -> Result<RecordBatch, ParquetSinkError> {
    let times = records
        .iter()
        .map(epoch_millis)
        .collect::<Result<Vec<i64>, _>>()?;
    let event_time = TimestampMillisecondArray::from(times).with_timezone(TIME_ZONE);
    let r = records.iter();
    let columns: Vec<ArrayRef> = vec![
        strings(r.clone().map(|r| r.event_version.as_str())),
        Arc::new(event_time),
        strings(r.clone().map(|r| r.aws_region.as_str())),
        strings(r.clone().map(|r| r.event_id.as_str())),
        strings(r.clone().map(|r| r.event_type.as_str())),
        strings(r.clone().map(|r| r.recipient_account_id.as_str())),
        strings(r.clone().map(|r| r.shared_event_id.as_str())),
        details_column(records)?,
        strings(r.clone().map(|r| r.event_category.as_str())),
        strings(r.clone().map(|r| r.event_time.as_str())),
        strings(r.clone().map(|r| d(r).state.as_str())),
        strings(r.clone().map(|r| d(r).event_source.as_str())),
        strings(r.clone().map(|r| d(r).event_name.as_str())),
        strings(r.clone().map(|r| d(r).insight_type.as_str())),
        optional_strings(r.clone().map(|r| d(r).error_code.as_deref())),
        floats(r.clone().map(|r| s(r).baseline.average)),
        floats(r.clone().map(|r| s(r).insight.average)),
        ints(r.clone().map(|r| s(r).insight_duration)),
        ints(r.clone().map(|r| s(r).baseline_duration)),
        strings(r.clone().map(|r| category(r).as_str())),
        optional_strings(
            r.clone()
                .map(|r| call_rate_scope(r, scope).map(CallRateScope::as_str)),
        ),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

#[cfg(test)]
mod tests;
