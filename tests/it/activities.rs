//! The activities written as data (`activities/account=/region=/date=/activities.jsonl`): read
//! back from a real run, every Insight in exactly one activity, the same groups as the report
//! page, and a query engine that shares no code with trailsight (DuckDB) reads them.

use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every activity line, with the (account, region, date) of its file's key.
fn activity_lines(out: &Path) -> Vec<((String, String, String), Value)> {
    let mut lines = Vec::new();
    for (key, bytes) in files(out) {
        let Some(rest) = key.strip_prefix("activities/") else {
            continue;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let [account, region, date, "activities.jsonl"] = parts[..] else {
            panic!("unexpected key {key}");
        };
        let value = |part: &str, name: &str| {
            part.strip_prefix(&format!("{name}="))
                .unwrap_or_else(|| panic!("{key}: no {name}="))
                .to_owned()
        };
        let partition = (
            value(account, "account"),
            value(region, "region"),
            value(date, "date"),
        );
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.ends_with('\n'), "{key}: one JSON object per line");
        for line in text.lines() {
            lines.push((partition.clone(), serde_json::from_str(line).unwrap()));
        }
    }
    lines
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The `sharedEventID`s of each activity on the report page (its `<section class="activity...">`
/// and the episode articles inside it), each sorted, without repeats.
fn page_groups(html: &str) -> BTreeSet<Vec<String>> {
    html.split(r#"<section class="activity"#)
        .skip(1)
        .map(|section| {
            let mut ids: Vec<String> = section
                .split(r#"data-shared-event-id=""#)
                .skip(1)
                .map(|rest| rest.split('"').next().unwrap().to_owned())
                .collect();
            ids.sort();
            // An article names its ID in more than one attribute.
            ids.dedup();
            ids
        })
        .collect()
}

#[test]
fn activities_are_written_as_hive_partitioned_lines_and_match_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = invictus_run(dir.path(), true).1;
    let lines = activity_lines(&out);
    let insight_ids: BTreeSet<String> = insights(&out)
        .iter()
        .map(|(_, r)| r["sharedEventID"].as_str().unwrap().to_owned())
        .collect();
    assert!(insight_ids.len() > 5, "{insight_ids:?}");
    assert!(
        lines.len() < insight_ids.len(),
        "fewer activities ({}) than Insights ({})",
        lines.len(),
        insight_ids.len()
    );

    // Every Insight of the run in exactly one activity, and nothing else.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for ((account, region, date), line) in &lines {
        assert_eq!(line["recipientAccountId"], account.as_str(), "{line}");
        assert_eq!(line["awsRegion"], region.as_str(), "{line}");
        let start = line["startTime"].as_str().unwrap();
        assert_eq!(
            &start[..10],
            date,
            "filed under its first Start's day: {line}"
        );
        assert!(line["endTime"].as_str().unwrap() > start, "{line}");
        let ids = strings(&line["sharedEventIDs"]);
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted, "sorted, without repeats: {line}");
        for id in ids {
            *seen.entry(id).or_default() += 1;
        }
        let score = line["severityScore"].as_f64().unwrap();
        assert!(score.is_finite() && score >= 0.0, "{line}");
        let reasons = strings(&line["reasons"]);
        assert_eq!(
            reasons.is_empty(),
            line["sharedEventIDs"].as_array().unwrap().len() == 1,
            "a group says why, a single Insight has no reason: {line}"
        );
        assert_eq!(reasons.len(), line["reasonTexts"].as_array().unwrap().len());
    }
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), insight_ids);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");

    // The same groups as the page shows.
    let html = dir.path().join("r.html");
    let Report {
        code,
        stderr,
        page: text,
    } = run_report(&out, &html, &[]);
    assert_eq!(code, 0, "{stderr}");
    let page = page_groups(&text);
    let data: BTreeSet<Vec<String>> = lines
        .iter()
        .map(|(_, l)| strings(&l["sharedEventIDs"]))
        .collect();
    assert_eq!(data, page);

    // The secrets' teardown: one activity naming its APIs and why they belong together.
    let teardown = lines
        .iter()
        .map(|(_, l)| l)
        .find(|l| strings(&l["eventNames"]).contains(&"DeleteSecret".to_owned()))
        .expect("an activity with DeleteSecret");
    let names = strings(&teardown["eventNames"]);
    assert!(
        names.contains(&"StartSecretVersionDelete".to_owned()),
        "{teardown}"
    );
    assert!(!strings(&teardown["reasons"]).is_empty(), "{teardown}");

    // The same logs give the same bytes.
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let second = invictus_run(&again, true).1;
    let only = |out: &Path| -> BTreeMap<String, Vec<u8>> {
        files(out)
            .into_iter()
            .filter(|(k, _)| k.starts_with("activities/"))
            .collect()
    };
    assert_eq!(only(&out), only(&second));
}

/// The README's DuckDB query over the activities, with the partition columns from the paths.
#[test]
fn duckdb_reads_the_activities_with_their_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let out = invictus_run(dir.path(), true).1;
    let lines = activity_lines(&out);
    let sql = format!(
        "SELECT account, region, \"date\", count(*) AS activities, \
         sum(len(sharedEventIDs)) AS insights, max(severityScore) AS worst \
         FROM read_json_auto('{}/activities/*/*/*/*.jsonl', hive_partitioning = true, \
         hive_types = {{'account': VARCHAR, 'region': VARCHAR, 'date': VARCHAR}}) \
         GROUP BY ALL ORDER BY ALL",
        out.display()
    );
    let result: Value = serde_json::from_str(&python_tool("duckdb_sql.py", &[&sql], b"")).unwrap();
    let mut expected: BTreeMap<(String, String, String), (u64, u64, f64)> = BTreeMap::new();
    for (partition, line) in &lines {
        let e = expected.entry(partition.clone()).or_default();
        e.0 += 1;
        e.1 += line["sharedEventIDs"].as_array().unwrap().len() as u64;
        e.2 = e.2.max(line["severityScore"].as_f64().unwrap());
    }
    let rows: Vec<Value> = result["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), expected.len(), "{result}");
    for (row, ((account, region, date), (n, insights, worst))) in rows.iter().zip(&expected) {
        assert_eq!(row[0], account.as_str(), "{row}");
        assert_eq!(row[1], region.as_str(), "{row}");
        assert_eq!(row[2].as_str().unwrap(), date.as_str(), "{row}");
        assert_eq!(row[3], *n, "{row}");
        assert_eq!(row[4], *insights, "{row}");
        assert_eq!(row[5].as_f64().unwrap(), *worst, "{row}");
    }
}

/// The README's DuckDB query over the activities runs as written (on this run's output) and
/// lists every activity, most severe first.
#[test]
fn the_readme_query_over_the_activities_runs_in_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let out = invictus_run(dir.path(), true).1;
    let lines = activity_lines(&out);
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let section = &readme[readme.find("### Activities as data").unwrap()..];
    let start = section.find("```sql\n").unwrap() + "```sql\n".len();
    let sql = section[start..start + section[start..].find("```").unwrap()].replace(
        "insights/activities/",
        &format!("{}/activities/", out.display()),
    );
    let result: Value = serde_json::from_str(&python_tool("duckdb_sql.py", &[&sql], b"")).unwrap();
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), lines.len(), "{result}");
    let scores: Vec<f64> = rows.iter().map(|r| r[4].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(
        rows.iter().all(|r| r[0] == "123837392027"),
        "the account from the path, as a string: {result}"
    );
}

/// `schemas/athena-activities-json.sql` declares exactly the keys of the lines a run writes,
/// each with a type that reads its values.
#[test]
fn the_athena_table_declares_every_key_of_the_lines() {
    let ddl = std::fs::read_to_string(repo_path("schemas/athena-activities-json.sql")).unwrap();
    let body =
        &ddl[ddl.find("trailsight_activities (").unwrap()..ddl.find("PARTITIONED BY").unwrap()];
    let declared: BTreeMap<String, String> = body
        .lines()
        .skip(1)
        .filter_map(|l| {
            let l = l.trim().trim_end_matches(',');
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_owned(), kind.to_owned()))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = invictus_run(dir.path(), true).1;
    let lines = activity_lines(&out);
    let (_, line) = lines.first().expect("an activity");
    let written: BTreeMap<String, String> = line
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let kind = match v {
                Value::Bool(_) => "BOOLEAN",
                Value::String(_) => "STRING",
                Value::Array(_) => "ARRAY<STRING>",
                // serde writes an f64 with a decimal point, a count without.
                Value::Number(n) if n.is_u64() => "BIGINT",
                Value::Number(_) => "DOUBLE",
                other => panic!("{k}: {other}"),
            };
            (k.to_lowercase(), kind.to_owned())
        })
        .collect();
    assert_eq!(declared, written);
}
