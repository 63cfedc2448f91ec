//! The contracts in `schemas/` against the code and the files: the JSON Schema validates our
//! records and AWS's published ones (and rejects broken ones); the Parquet DDL's columns and
//! types are the Parquet schema the code writes, read back from a real file; the JSON DDL's
//! columns are the JSON Schema's fields; the Parquet field doc names every column.

use crate::support::*;
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use trailsight::sink::parquet as sink;

// ---- Athena/Hive types -----------------------------------------------------------------------

/// A column type as Athena DDL spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hive {
    Scalar(String),
    Struct(Vec<(String, Hive)>),
    Array(Box<Hive>),
}

impl Hive {
    /// Struct fields sorted by name, for formats whose readers match fields by name.
    fn sorted(&self) -> Hive {
        match self {
            Hive::Scalar(s) => Hive::Scalar(s.clone()),
            Hive::Array(t) => Hive::Array(Box::new(t.sorted())),
            Hive::Struct(fields) => {
                let mut f: Vec<_> = fields
                    .iter()
                    .map(|(n, t)| (n.clone(), t.sorted()))
                    .collect();
                f.sort_by(|a, b| a.0.cmp(&b.0));
                Hive::Struct(f)
            }
        }
    }
}

/// The tokens of a DDL fragment: words (backticks removed) and single punctuation characters.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() || c == '_' || c == '`' {
            if c != '`' {
                word.push(c);
            }
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn parse_type(t: &[String], i: &mut usize) -> Hive {
    let name = t[*i].to_uppercase();
    *i += 1;
    let expect = |i: &mut usize, s: &str| {
        assert_eq!(t[*i], s, "DDL: expected {s} at token {i}: {:?}", &t[*i..]);
        *i += 1;
    };
    match name.as_str() {
        "ARRAY" => {
            expect(i, "<");
            let inner = parse_type(t, i);
            expect(i, ">");
            Hive::Array(Box::new(inner))
        }
        "STRUCT" => {
            expect(i, "<");
            let mut fields = Vec::new();
            loop {
                let field = t[*i].clone();
                *i += 1;
                expect(i, ":");
                fields.push((field, parse_type(t, i)));
                if t[*i] == ">" {
                    *i += 1;
                    return Hive::Struct(fields);
                }
                expect(i, ",");
            }
        }
        _ => Hive::Scalar(name),
    }
}

/// `name TYPE, name TYPE, ...` up to the closing parenthesis of the list.
fn parse_columns(t: &[String], i: &mut usize) -> Vec<(String, Hive)> {
    assert_eq!(t[*i], "(", "DDL: expected a column list: {:?}", &t[*i..]);
    *i += 1;
    let mut columns = Vec::new();
    loop {
        let name = t[*i].clone();
        *i += 1;
        columns.push((name, parse_type(t, i)));
        *i += 1;
        match t[*i - 1].as_str() {
            "," => continue,
            ")" => return columns,
            other => panic!(
                "DDL: unexpected {other:?} after column {:?}",
                columns.last()
            ),
        }
    }
}

struct Ddl {
    columns: Vec<(String, Hive)>,
    partitions: Vec<(String, Hive)>,
    location: String,
    properties: BTreeMap<String, String>,
}

/// Parse the one `CREATE EXTERNAL TABLE` statement of a file.
fn parse_ddl(relative: &str) -> Ddl {
    let text = std::fs::read_to_string(repo_path(relative)).unwrap();
    let sql: String = text
        .lines()
        .map(|l| l.split("--").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let start = sql
        .find("CREATE EXTERNAL TABLE")
        .expect("CREATE EXTERNAL TABLE");
    let body = &sql[start..];
    let columns_start = body.find('(').unwrap();
    let partitioned = body.find("PARTITIONED BY").expect("PARTITIONED BY");
    let t = tokens(&body[columns_start..partitioned]);
    let columns = parse_columns(&t, &mut 0);
    let t = tokens(&body[partitioned + "PARTITIONED BY".len()..]);
    let partitions = parse_columns(&t, &mut 0);
    let quoted = |after: &str| -> Vec<String> {
        let from = body.find(after).unwrap_or_else(|| panic!("no {after}")) + after.len();
        let rest = &body[from..];
        let end = if after == "LOCATION" {
            rest.find('\n').unwrap()
        } else {
            rest.rfind(')').unwrap()
        };
        rest[..end]
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let location = quoted("LOCATION").remove(0);
    let pairs = quoted("TBLPROPERTIES");
    let properties = pairs
        .chunks(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect();
    Ddl {
        columns,
        partitions,
        location,
        properties,
    }
}

/// The Athena type of an Arrow type, as the Parquet files carry it.
fn athena_type(data_type: &DataType) -> Hive {
    match data_type {
        DataType::Utf8 => Hive::Scalar("STRING".into()),
        DataType::Float64 => Hive::Scalar("DOUBLE".into()),
        DataType::Int64 => Hive::Scalar("BIGINT".into()),
        DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) if &**tz == "UTC" => {
            Hive::Scalar("TIMESTAMP".into())
        }
        DataType::Struct(fields) => Hive::Struct(
            fields
                .iter()
                .map(|f| (f.name().clone(), athena_type(f.data_type())))
                .collect(),
        ),
        DataType::List(element) => Hive::Array(Box::new(athena_type(element.data_type()))),
        other => panic!("no Athena type for {other:?}"),
    }
}

/// The Athena type of a JSON Schema node, field names lower-cased as Athena reads them.
fn json_schema_type(root: &Value, node: &Value) -> Hive {
    if let Some(reference) = node["$ref"].as_str() {
        let name = reference.strip_prefix("#/$defs/").unwrap();
        return json_schema_type(root, &root["$defs"][name]);
    }
    let kind = node["type"].as_str();
    let strings = node.get("const").is_some_and(Value::is_string)
        || node["enum"]
            .as_array()
            .is_some_and(|v| v.iter().all(Value::is_string));
    match kind {
        Some("string") => Hive::Scalar("STRING".into()),
        None if strings => Hive::Scalar("STRING".into()),
        Some("number") => Hive::Scalar("DOUBLE".into()),
        Some("integer") => Hive::Scalar("BIGINT".into()),
        Some("array") => Hive::Array(Box::new(json_schema_type(root, &node["items"]))),
        Some("object") => Hive::Struct(
            node["properties"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_lowercase(), json_schema_type(root, v)))
                .collect(),
        ),
        other => panic!("no Athena type for JSON Schema type {other:?}: {node}"),
    }
}

fn json_schema() -> Value {
    serde_json::from_slice(&std::fs::read(repo_path("schemas/insight-record.schema.json")).unwrap())
        .unwrap()
}

/// The schema of a Parquet file as an engine sees it without Arrow's embedded metadata.
fn file_columns(bytes: &[u8]) -> Vec<(String, Hive)> {
    let options = ArrowReaderOptions::new().with_skip_arrow_metadata(true);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(
        bytes::Bytes::from(bytes.to_vec()),
        options,
    )
    .unwrap();
    builder
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), athena_type(f.data_type())))
        .collect()
}

// ---- The Parquet DDL -------------------------------------------------------------------------

#[test]
fn the_parquet_ddl_matches_the_files_column_for_column() {
    let ddl = parse_ddl("schemas/athena-insights-parquet.sql");
    let code: Vec<(String, Hive)> = sink::schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), athena_type(f.data_type())))
        .collect();
    assert_eq!(ddl.columns, code);

    // And the files a real run writes carry exactly that schema.
    let out = tempfile::tempdir().unwrap();
    let run = analyze(
        &repo_path("sample-data"),
        out.path(),
        &["--format", "parquet"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = files(out.path());
    assert!(!written.is_empty());
    for (key, bytes) in written.iter().filter(|(k, _)| k.ends_with(".parquet")) {
        assert_eq!(file_columns(bytes), ddl.columns, "{key}");
    }
}

#[test]
fn the_parquet_ddl_projects_the_partitions_the_sink_writes() {
    let ddl = parse_ddl("schemas/athena-insights-parquet.sql");
    let names: Vec<&str> = ddl.partitions.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, sink::PARTITION_COLUMNS);
    for (name, kind) in &ddl.partitions {
        assert_eq!(kind, &Hive::Scalar("STRING".into()), "{name}");
        let projection = format!("projection.{name}.type");
        assert!(ddl.properties.contains_key(&projection), "no {projection}");
    }
    let p = &ddl.properties;
    assert_eq!(p["projection.enabled"], "true");
    assert_eq!(p["projection.date.type"], "date");
    assert_eq!(p["projection.date.format"], "yyyy-MM-dd");
    assert_eq!(p["projection.region.type"], "enum");
    assert!(
        p["projection.region.values"]
            .split(',')
            .any(|r| r == "us-east-1")
    );

    // The template, filled in, is the folder of the file the sink writes.
    let template = &p["storage.location.template"];
    assert!(
        template.starts_with(&ddl.location),
        "{template} vs {}",
        ddl.location
    );
    let relative = format!("{}{}", sink::PREFIX, &template[ddl.location.len()..]);
    let day = trailsight::model::parse_day("2019-11-07").unwrap();
    let key = sink::file_key(ACCOUNT, "us-east-1", day);
    let filled = relative
        .replace("${account}", ACCOUNT)
        .replace("${region}", "us-east-1")
        .replace("${date}", "2019-11-07");
    assert_eq!(format!("{filled}/"), key[..=key.rfind('/').unwrap()]);
    assert!(
        ddl.location.ends_with(&format!("/{}", sink::PREFIX)),
        "{}",
        ddl.location
    );
}

/// Every column of the Parquet schema, nested fields by their dotted path, is documented.
#[test]
fn the_parquet_field_doc_names_every_column() {
    fn paths(prefix: &str, data_type: &DataType, out: &mut Vec<String>) {
        match data_type {
            DataType::Struct(fields) => {
                for f in fields {
                    paths(&format!("{prefix}.{}", f.name()), f.data_type(), out);
                }
            }
            DataType::List(element) => paths(&format!("{prefix}[]"), element.data_type(), out),
            _ => out.push(prefix.to_owned()),
        }
    }
    let doc = std::fs::read_to_string(repo_path("schemas/insights-parquet.md")).unwrap();
    let mut all = Vec::new();
    for field in sink::schema().fields() {
        all.push(field.name().clone());
        paths(field.name(), field.data_type(), &mut all);
    }
    for path in all {
        assert!(
            doc.contains(&format!("`{path}`")),
            "schemas/insights-parquet.md does not document `{path}`"
        );
    }
}

// ---- The JSON Schema and the JSON DDL ---------------------------------------------------------

#[test]
fn the_json_ddl_reads_every_field_of_the_json_schema() {
    let ddl = parse_ddl("schemas/athena-insights-json.sql");
    let schema = json_schema();
    let Hive::Struct(expected) = json_schema_type(&schema, &schema).sorted() else {
        unreachable!()
    };
    let Hive::Struct(got) = Hive::Struct(ddl.columns.clone()).sorted() else {
        unreachable!()
    };
    assert_eq!(got, expected);
    let names: Vec<&str> = ddl.partitions.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["account", "region", "timestamp"]);
    let template = &ddl.properties["storage.location.template"];
    assert!(template.starts_with(&ddl.location), "{template}");
    assert!(
        template.ends_with("/${account}/CloudTrail-Insight/${region}/${timestamp}"),
        "{template}"
    );
    assert_eq!(ddl.properties["projection.timestamp.format"], "yyyy/MM/dd");
}

/// The Parquet record columns are the JSON record's fields (eventtime a timestamp, and without
/// insightSource, which only AWS's data-event Insights carry), plus the derived columns.
#[test]
fn the_parquet_columns_are_the_json_fields() {
    let schema = json_schema();
    let Hive::Struct(json_fields) = json_schema_type(&schema, &schema).sorted() else {
        unreachable!()
    };
    let parquet: BTreeMap<String, Hive> = sink::schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), athena_type(f.data_type()).sorted()))
        .collect();
    for (name, mut kind) in json_fields {
        if name == "eventtime" {
            kind = Hive::Scalar("TIMESTAMP".into());
        }
        if let Hive::Struct(fields) = &mut kind {
            fields.retain(|(n, _)| n != "insightsource");
        }
        assert_eq!(parquet.get(&name), Some(&kind), "{name}");
    }
}

fn validate(cases: &[(String, Value)]) -> Vec<(String, Vec<String>)> {
    let input: Vec<Value> = cases
        .iter()
        .map(|(name, record)| json!({ "name": name, "record": record }))
        .collect();
    let schema = repo_path("schemas/insight-record.schema.json");
    let stdout = python_tool(
        "validate_json_schema.py",
        &[schema.to_str().unwrap()],
        &serde_json::to_vec(&input).unwrap(),
    );
    let results: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    assert_eq!(results.len(), cases.len());
    results
        .into_iter()
        .map(|r| {
            let errors = r["errors"].as_array().unwrap();
            (
                r["name"].as_str().unwrap().to_owned(),
                errors
                    .iter()
                    .map(|e| e.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

fn fixture_records(name: &str) -> Vec<Value> {
    let path = repo_path(&format!("tests/fixtures/real-cloudtrail/{name}"));
    let file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    file["Records"].as_array().unwrap().clone()
}

fn our_records() -> Vec<Value> {
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&repo_path("sample-data"), out.path(), &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insights(out.path()).into_iter().map(|(_, r)| r).collect()
}

#[test]
fn the_json_schema_accepts_our_records_and_aws_published_ones() {
    let mut cases = Vec::new();
    let ours = our_records();
    assert_eq!(ours.len(), 6);
    for (i, r) in ours.into_iter().enumerate() {
        cases.push((format!("trailsight sample record {i}"), r));
    }
    for file in [
        "aws-insights-examples.Records.json",
        "aws-insights-examples-2023-2024.Records.json",
    ] {
        for (i, r) in fixture_records(file).into_iter().enumerate() {
            cases.push((format!("{file} record {i}"), r));
        }
    }
    assert_eq!(cases.len(), 6 + 9 + 5);
    for (name, errors) in validate(&cases) {
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn the_json_schema_rejects_broken_records() {
    let good = our_records().remove(0);
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit)> = vec![
        ("no eventTime", |r| {
            r.as_object_mut().unwrap().remove("eventTime");
        }),
        ("an unknown field", |r| {
            r["eventtime"] = json!("2019-11-07T13:25:00Z")
        }),
        ("eventTime not ISO", |r| {
            r["eventTime"] = json!("2019-11-07 13:25")
        }),
        ("wrong eventType", |r| r["eventType"] = json!("AwsApiCall")),
        ("short account", |r| {
            r["recipientAccountId"] = json!("12345")
        }),
        ("state Begin", |r| {
            r["insightDetails"]["state"] = json!("Begin")
        }),
        ("call rate with errorCode", |r| {
            r["insightDetails"]["errorCode"] = json!("AccessDenied")
        }),
        ("error rate without errorCode", |r| {
            r["insightDetails"]["insightType"] = json!("ApiErrorRateInsight")
        }),
        ("fractional duration", |r| {
            r["insightDetails"]["insightContext"]["statistics"]["insightDuration"] = json!(1.5)
        }),
        ("negative average", |r| {
            r["insightDetails"]["insightContext"]["statistics"]["baseline"]["average"] = json!(-1)
        }),
        ("average as text", |r| {
            r["insightDetails"]["insightContext"]["statistics"]["insight"]["average"] = json!("6")
        }),
        ("six attributed values", |r| {
            let values = Value::Array(vec![json!({"value": "a", "average": 1}); 6]);
            r["insightDetails"]["insightContext"]["attributions"][0]["insight"] = values;
        }),
        ("unknown attribute", |r| {
            r["insightDetails"]["insightContext"]["attributions"][0]["attribute"] =
                json!("sourceIp")
        }),
    ];
    let broken: Vec<(String, Value)> = cases
        .iter()
        .map(|(name, edit)| {
            let mut r = good.clone();
            edit(&mut r);
            assert_ne!(r, good, "{name}: the edit changed nothing");
            ((*name).to_owned(), r)
        })
        .collect();
    for ((name, errors), (_, record)) in validate(&broken).into_iter().zip(&broken) {
        assert!(!errors.is_empty(), "{name}: accepted {record:#}");
    }
}
