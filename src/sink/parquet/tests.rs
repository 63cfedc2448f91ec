//! Round trips: records -> Parquet bytes -> the parquet crate's reader -> records again, plus
//! the physical schema other engines see (names, timestamp type, compression, statistics).

use super::*;
use crate::model::insight::{
    Average, EVENT_CATEGORY, EVENT_TYPE, EVENT_VERSION, InsightContext, InsightDetails, Statistics,
};
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMillisecondType;
use arrow_array::{Array, StructArray};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{
    LogicalType, TimeUnit as ParquetTimeUnit, TimestampType, Type as PhysicalType,
};
use parquet::file::reader::{FileReader, SerializedFileReader};

fn values(pairs: &[(&str, f64)]) -> Vec<AttributedValue> {
    pairs
        .iter()
        .map(|(value, average)| AttributedValue {
            value: (*value).to_owned(),
            average: *average,
        })
        .collect()
}

fn attribution(attribute: &str, insight: &[(&str, f64)], baseline: &[(&str, f64)]) -> Attribution {
    Attribution {
        attribute: attribute.to_owned(),
        insight: values(insight),
        baseline: values(baseline),
    }
}

#[allow(clippy::too_many_arguments)]
fn record(
    time: &str,
    state: &str,
    name: &str,
    error_code: Option<&str>,
    source_category: Option<&str>,
    averages: (f64, f64),
    durations: (i64, i64),
    attributions: Vec<Attribution>,
) -> InsightRecord {
    let insight_type = if error_code.is_some() {
        "ApiErrorRateInsight"
    } else {
        "ApiCallRateInsight"
    };
    InsightRecord {
        event_version: EVENT_VERSION.to_owned(),
        event_time: time.to_owned(),
        aws_region: "us-east-1".to_owned(),
        event_id: format!("{name}-{state}-{time}"),
        event_type: EVENT_TYPE.to_owned(),
        recipient_account_id: "123456789012".to_owned(),
        shared_event_id: format!("{name}-{time}"),
        insight_details: InsightDetails {
            state: state.to_owned(),
            event_source: "ec2.amazonaws.com".to_owned(),
            event_name: name.to_owned(),
            insight_type: insight_type.to_owned(),
            error_code: error_code.map(str::to_owned),
            source_event_category: source_category.map(str::to_owned),
            insight_context: InsightContext {
                statistics: Statistics {
                    baseline: Average {
                        average: averages.0,
                    },
                    insight: Average {
                        average: averages.1,
                    },
                    insight_duration: durations.0,
                    baseline_duration: durations.1,
                },
                attributions,
            },
        },
        event_category: EVENT_CATEGORY.to_owned(),
    }
}

/// Every shape a record can take: three attributions, an empty baseline list, an error-rate
/// record, no attributions at all, no `sourceEventCategory`, non-ASCII text.
fn records() -> Vec<InsightRecord> {
    let role = "arn:aws:sts::123456789012:assumed-role/ci-deployer";
    vec![
        record(
            "2019-11-07T13:25:00Z",
            "Start",
            "RunInstances",
            None,
            Some("Management"),
            (0.0020833333, 6.0),
            (1, 10080),
            vec![
                attribution("userIdentityArn", &[(role, 6.0)], &[(role, 0.0010912698)]),
                attribution(
                    "userAgent",
                    &[("aws-cli/2.13.0", 4.0), ("Boto3/1.28 (é ✓)", 2.0)],
                    &[],
                ),
                attribution("errorCode", &[("null", 6.0)], &[("null", 0.0020833333)]),
            ],
        ),
        record(
            "2019-11-07T13:26:00Z",
            "End",
            "RunInstances",
            None,
            Some("Management"),
            (0.0020833333, 6.0),
            (1, 10080),
            vec![attribution("userIdentityArn", &[(role, 6.0)], &[])],
        ),
        record(
            "2019-11-07T23:59:00Z",
            "Start",
            "DeleteBucket",
            Some("AccessDenied"),
            None,
            (0.0, 1.2),
            (5, 9000),
            vec![],
        ),
    ]
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn child<'a>(parent: &'a StructArray, name: &str) -> &'a ArrayRef {
    parent
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no field {name}"))
}

fn text(array: &ArrayRef, row: usize) -> String {
    array.as_string::<i32>().value(row).to_owned()
}

fn optional_text(array: &ArrayRef, row: usize) -> Option<String> {
    (!array.is_null(row)).then(|| text(array, row))
}

fn float(array: &ArrayRef, row: usize) -> f64 {
    array
        .as_primitive::<arrow_array::types::Float64Type>()
        .value(row)
}

fn int(array: &ArrayRef, row: usize) -> i64 {
    array
        .as_primitive::<arrow_array::types::Int64Type>()
        .value(row)
}

fn average(parent: &StructArray, name: &str, row: usize) -> Average {
    Average {
        average: float(child(child(parent, name).as_struct(), "average"), row),
    }
}

fn decode_values(list: &ArrayRef, row: usize) -> Vec<AttributedValue> {
    let items = list.as_list::<i32>().value(row);
    let items = items.as_struct();
    (0..items.len())
        .map(|i| AttributedValue {
            value: text(child(items, "value"), i),
            average: float(child(items, "average"), i),
        })
        .collect()
}

/// Test-only reader: rebuild the records from the nested columns alone, the derived ones unused.
fn decode(batch: &RecordBatch) -> Vec<InsightRecord> {
    let details = column(batch, "insightdetails").as_struct();
    let context = child(details, "insightcontext").as_struct();
    let statistics = child(context, "statistics").as_struct();
    let times = column(batch, "eventtime").as_primitive::<TimestampMillisecondType>();
    (0..batch.num_rows())
        .map(|row| {
            let list = child(context, "attributions").as_list::<i32>().value(row);
            let attributions = list.as_struct();
            InsightRecord {
                event_version: text(column(batch, "eventversion"), row),
                event_time: chrono::DateTime::from_timestamp_millis(times.value(row))
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%SZ")
                    .to_string(),
                aws_region: text(column(batch, "awsregion"), row),
                event_id: text(column(batch, "eventid"), row),
                event_type: text(column(batch, "eventtype"), row),
                recipient_account_id: text(column(batch, "recipientaccountid"), row),
                shared_event_id: text(column(batch, "sharedeventid"), row),
                insight_details: InsightDetails {
                    state: text(child(details, "state"), row),
                    event_source: text(child(details, "eventsource"), row),
                    event_name: text(child(details, "eventname"), row),
                    insight_type: text(child(details, "insighttype"), row),
                    error_code: optional_text(child(details, "errorcode"), row),
                    source_event_category: optional_text(
                        child(details, "sourceeventcategory"),
                        row,
                    ),
                    insight_context: InsightContext {
                        statistics: Statistics {
                            baseline: average(statistics, "baseline", row),
                            insight: average(statistics, "insight", row),
                            insight_duration: int(child(statistics, "insightduration"), row),
                            baseline_duration: int(child(statistics, "baselineduration"), row),
                        },
                        attributions: (0..attributions.len())
                            .map(|i| Attribution {
                                attribute: text(child(attributions, "attribute"), i),
                                insight: decode_values(child(attributions, "insight"), i),
                                baseline: decode_values(child(attributions, "baseline"), i),
                            })
                            .collect(),
                    },
                },
                event_category: text(column(batch, "eventcategory"), row),
            }
        })
        .collect()
}

fn read_back(bytes: Vec<u8>, skip_arrow_metadata: bool) -> (SchemaRef, Vec<RecordBatch>) {
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(skip_arrow_metadata);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new_with_options(bytes::Bytes::from(bytes), options)
            .unwrap();
    let schema = builder.schema().clone();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (schema, batches)
}

#[test]
fn records_round_trip_through_parquet() {
    let input = records();
    let bytes = write_parquet(&input, CallRateScope::Write, Vec::new()).unwrap();
    let (read_schema, batches) = read_back(bytes, false);
    assert_eq!(read_schema, schema());
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.schema(), schema());
    assert_eq!(decode(batch), input);
    assert_eq!(
        batch,
        &to_record_batch(&input, CallRateScope::Write).unwrap()
    );
}

#[test]
fn derived_columns_repeat_the_nested_fields() {
    let input = records();
    let (_, batches) = read_back(encode_file(&input, CallRateScope::Write).unwrap(), false);
    let batch = &batches[0];
    for (row, r) in input.iter().enumerate() {
        let d = &r.insight_details;
        let s = &d.insight_context.statistics;
        let case = format!("row {row}: {r:?}");
        assert_eq!(
            text(column(batch, "eventtime_iso"), row),
            r.event_time,
            "{case}"
        );
        assert_eq!(text(column(batch, "state"), row), d.state, "{case}");
        assert_eq!(
            text(column(batch, "eventsource"), row),
            d.event_source,
            "{case}"
        );
        assert_eq!(
            text(column(batch, "eventname"), row),
            d.event_name,
            "{case}"
        );
        assert_eq!(
            text(column(batch, "insighttype"), row),
            d.insight_type,
            "{case}"
        );
        assert_eq!(
            optional_text(column(batch, "errorcode"), row),
            d.error_code,
            "{case}"
        );
        assert_eq!(
            float(column(batch, "baselineaverage"), row),
            s.baseline.average,
            "{case}"
        );
        assert_eq!(
            float(column(batch, "insightaverage"), row),
            s.insight.average,
            "{case}"
        );
        assert_eq!(
            int(column(batch, "insightduration"), row),
            s.insight_duration,
            "{case}"
        );
        assert_eq!(
            int(column(batch, "baselineduration"), row),
            s.baseline_duration,
            "{case}"
        );
    }
}

/// What an engine that ignores the embedded Arrow schema sees must be the same schema: the
/// Parquet types alone carry the names, nesting, nullability and the UTC millisecond time.
#[test]
fn the_parquet_schema_alone_gives_the_arrow_schema() {
    let (native, batches) = read_back(encode_file(&records(), CallRateScope::Write).unwrap(), true);
    assert_eq!(native, schema());
    assert_eq!(decode(&batches[0]), records());
}

#[test]
fn files_are_snappy_with_statistics_lower_case_names_and_millisecond_utc_time() {
    let bytes = encode_file(&records(), CallRateScope::Write).unwrap();
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    let metadata = reader.metadata();
    assert_eq!(metadata.file_metadata().num_rows(), 3);
    assert_eq!(metadata.num_row_groups(), 1);
    let descr = metadata.file_metadata().schema_descr();
    for column in descr.columns() {
        for part in column.path().parts() {
            assert_eq!(part, &part.to_lowercase(), "{}", column.path());
            assert!(!part.starts_with(['_', '.']), "{}", column.path());
        }
    }
    let time = descr
        .columns()
        .iter()
        .find(|c| c.path().string() == "eventtime")
        .unwrap();
    assert_eq!(time.physical_type(), PhysicalType::INT64);
    assert_eq!(
        time.logical_type_ref(),
        Some(&LogicalType::Timestamp(TimestampType {
            is_adjusted_to_u_t_c: true,
            unit: ParquetTimeUnit::MILLIS,
        }))
    );
    let group = metadata.row_group(0);
    for chunk in group.columns() {
        assert_eq!(chunk.compression(), COMPRESSION, "{}", chunk.column_path());
        assert!(chunk.statistics().is_some(), "{}", chunk.column_path());
    }
    let stats = group
        .columns()
        .iter()
        .find(|c| c.column_path().string() == "eventtime")
        .and_then(|c| c.statistics())
        .unwrap();
    let (min, max) = (
        chrono::DateTime::parse_from_rfc3339("2019-11-07T13:25:00Z").unwrap(),
        chrono::DateTime::parse_from_rfc3339("2019-11-07T23:59:00Z").unwrap(),
    );
    assert_eq!(
        stats.min_bytes_opt(),
        Some(&min.timestamp_millis().to_le_bytes()[..])
    );
    assert_eq!(
        stats.max_bytes_opt(),
        Some(&max.timestamp_millis().to_le_bytes()[..])
    );
}

#[test]
fn no_records_still_make_a_readable_file_with_the_schema() {
    let (read_schema, batches) = read_back(encode_file(&[], CallRateScope::Write).unwrap(), false);
    assert_eq!(read_schema, schema());
    assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
}

#[test]
fn the_same_records_give_the_same_bytes() {
    assert_eq!(
        encode_file(&records(), CallRateScope::Write).unwrap(),
        encode_file(&records(), CallRateScope::Write).unwrap()
    );
}

#[test]
fn a_bad_event_time_names_the_record() {
    let mut bad = records();
    bad[1].event_time = "2019-11-07 13:26".to_owned();
    let error = encode_file(&bad, CallRateScope::Write)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("RunInstances-End-") && error.contains("2019-11-07 13:26"),
        "{error}"
    );
}

#[test]
fn keys_are_hive_partitions_with_deterministic_visible_names() {
    let day = |d| crate::model::parse_day(d).unwrap();
    let cases = [
        ("123456789012", "us-east-1", "2019-11-07"),
        ("210987654321", "eu-west-1", "2019-11-06"),
        ("123456789012", "us-east-1", "2020-02-29"),
    ];
    let mut names = std::collections::BTreeSet::new();
    for (account, region, date) in cases {
        let key = file_key(account, region, day(date));
        let prefix = format!("insights/account={account}/region={region}/date={date}/part-");
        assert!(key.starts_with(&prefix), "{key}");
        assert!(key.ends_with(".parquet"), "{key}");
        assert_eq!(key, file_key(account, region, day(date)), "{key}");
        for segment in key.split('/') {
            assert!(!segment.starts_with(['_', '.']), "{key}");
        }
        assert!(
            names.insert(key.rsplit('/').next().unwrap().to_owned()),
            "{key}"
        );
    }
}
