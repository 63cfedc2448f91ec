//! A structure-aware fuzzer for `report`'s readers and everything they feed: bytes in
//! (`parse_insight_file`, `parse_explanations`), then `pair`, the chart windows, the recount's
//! buffers and the whole HTML page, never a panic, and the answers consistent.
//!
//! Inputs are Insight files built from a valid record whose fields are swapped, often, for
//! hostile values (durations of `i64::MAX` or below zero, times in year 1 or 9999, an End
//! before its Start, averages out of range, other types, random JSON), a few records sharing
//! `sharedEventID`s so Starts and Ends pair; then gzip'd, and often damaged (`fuzz::mutate`).
//! Explanations files are built the same way. Every result is checked:
//! - an Insight file is either refused with a known reason, or read: every record kept passes
//!   `validate::check_record`, every record set aside has a known reason;
//! - every episode `pair` builds has its minutes in range and its End after its Start; every
//!   chart window is non-empty and at most `MAX_CHARTED_EPISODE_MINUTES` plus twice the context;
//! - the page renders, with the records' averages and with per-minute counts.
//!
//! `cargo test` runs a fixed number of cases from a fixed seed; `scripts/fuzz --minutes N`
//! runs it (and the decoder's fuzzer) from a fresh seed (`TRAILSIGHT_FUZZ_SECONDS`,
//! `TRAILSIGHT_FUZZ_SEED`); a failing input is saved under `target/fuzz-crashes/`.

use crate::fuzz::{Rng, Target, drive, gzip, mutate, save_bytes, string, value};
use trailsight::report::html::{self, Page};
use trailsight::report::{MAX_CHARTED_EPISODE_MINUTES, MAX_CONTEXT_HOURS, pair, series};
use trailsight::sink::read::{parse_explanations, parse_insight_file};
use trailsight::sink::validate;

const CI_CASES: u64 = 1500;
const CI_SEED: u64 = 0x4e90_27f1_u64;

const TIMES: [&str; 12] = [
    "\"2019-11-07T13:25:00Z\"",
    "\"2019-11-07T13:28:00Z\"",
    "\"2019-11-08T01:00:00Z\"",
    "\"2019-11-07T13:24:00Z\"",
    "\"9999-12-31T23:59:00Z\"",
    "\"0001-01-01T00:00:00Z\"",
    "\"2013-10-31T23:59:00Z\"",
    "\"2099-12-31T23:59:00Z\"",
    "\"2019-11-07T13:25:00+14:00\"",
    "\"yesterday\"",
    "\"\"",
    "null",
];
const DURATIONS: [&str; 12] = [
    "1",
    "3",
    "0",
    "10080",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "527040",
    "527041",
    "\"5\"",
    "1.5",
];
const AVERAGES: [&str; 10] = [
    "0",
    "0.1",
    "6.0",
    "-1",
    "1e308",
    "1e9",
    "1000000000.5",
    "-0.0",
    "\"6\"",
    "null",
];
const STATES: [&str; 6] = [
    "\"Start\"",
    "\"End\"",
    "\"Start\"",
    "\"End\"",
    "\"start\"",
    "\"\"",
];
const SHARED_IDS: [&str; 4] = ["\"a\"", "\"b\"", "\"c\"", "\"\""];

/// A plausible value from `plausible` most of the time, else anything.
fn pick(rng: &mut Rng, plausible: &[&str]) -> String {
    if rng.chance(10) {
        value(rng, 2)
    } else {
        rng.pick(plausible).to_string()
    }
}

/// A value that is usually right, one in `odds` times one of the hostile ones.
fn usually(rng: &mut Rng, odds: u64, right: &str, hostile: &[&str]) -> String {
    if rng.chance(odds) {
        pick(rng, hostile)
    } else {
        right.to_owned()
    }
}

fn attributions(rng: &mut Rng, odds: u64) -> String {
    let attributes: Vec<String> = (0..rng.below(4))
        .map(|_| {
            let values = |rng: &mut Rng| -> String {
                let n = if rng.chance(odds * 5) {
                    70
                } else {
                    rng.below(4)
                };
                let v: Vec<String> = (0..n)
                    .map(|_| {
                        format!(
                            r#"{{"value":{},"average":{}}}"#,
                            string(rng),
                            usually(rng, odds, "0.5", &AVERAGES)
                        )
                    })
                    .collect();
                format!("[{}]", v.join(","))
            };
            format!(
                r#"{{"attribute":{},"insight":{},"baseline":{}}}"#,
                pick(
                    rng,
                    &["\"userAgent\"", "\"userIdentityArn\"", "\"errorCode\""]
                ),
                values(rng),
                values(rng)
            )
        })
        .collect();
    format!("[{}]", attributes.join(","))
}

/// One Insight record: valid in shape, with hostile values swapped in (half the records
/// rarely, the others often).
fn record(rng: &mut Rng) -> String {
    if rng.chance(15) {
        return value(rng, 3);
    }
    let odds = if rng.chance(2) { 60 } else { 3 };
    let clean = odds > 3;
    let error_code = if rng.chance(3) {
        r#""errorCode":"AccessDenied","#
    } else {
        ""
    };
    format!(
        r#"{{"eventVersion":"1.09","eventTime":{time},"awsRegion":{region},"eventID":{id},"eventType":"AwsCloudTrailInsight","recipientAccountId":{account},"sharedEventID":{shared},"insightDetails":{{"state":{state},"eventSource":"ec2.amazonaws.com","eventName":{name},"insightType":"ApiCallRateInsight",{error_code}"insightContext":{{"statistics":{{"baseline":{{"average":{baseline}}},"insight":{{"average":{insight}}},"insightDuration":{duration},"baselineDuration":{baseline_duration}}},"attributions":{attributions}}}}},"eventCategory":"Insight"}}"#,
        time = if clean {
            rng.pick(&TIMES[..4]).to_string()
        } else {
            pick(rng, &TIMES)
        },
        region = usually(rng, odds, "\"us-east-1\"", &["\"../x\"", "\"\"", "1"]),
        id = usually(rng, odds, "\"e-1\"", &["\"\"", "null", "7"]),
        account = usually(
            rng,
            odds,
            "\"123456789012\"",
            &["\"12345\"", "\"../../etc\""]
        ),
        shared = if clean {
            rng.pick(&SHARED_IDS[..2]).to_string()
        } else {
            pick(rng, &SHARED_IDS)
        },
        state = if clean {
            rng.pick(&STATES[..4]).to_string()
        } else {
            pick(rng, &STATES)
        },
        name = usually(rng, odds, "\"RunInstances\"", &["\"\"", "\"<script>\""]),
        baseline = usually(rng, odds, "0.1", &AVERAGES),
        insight = usually(rng, odds, "6.0", &AVERAGES),
        duration = usually(rng, odds, "1", &DURATIONS),
        baseline_duration = usually(rng, odds, "10080", &DURATIONS),
        attributions = attributions(rng, odds),
    )
}

/// One explanation line: valid in shape, with hostile values swapped in.
fn explanation(rng: &mut Rng) -> String {
    if rng.chance(15) {
        return value(rng, 2);
    }
    let odds = if rng.chance(2) { 60 } else { 3 };
    format!(
        r#"{{"sharedEventID":{shared},"recipientAccountId":"123456789012","awsRegion":"us-east-1","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiCallRateInsight","direction":"increase","startTime":{start},"endTime":{end},"windowMinutes":{window},"observedCalls":{observed},"expectedCalls":{expected},"observedPerMinute":1.0,"expectedPerMinute":{expected},"tailProbability":{p},"distribution":"poisson","season":"all","newApi":false,"baselineCalls":3,"baselineMinutes":{baseline},"reason":{reason}}}"#,
        shared = pick(rng, &SHARED_IDS),
        start = pick(rng, &TIMES),
        end = pick(rng, &TIMES),
        window = usually(rng, odds, "5", &DURATIONS),
        observed = usually(rng, odds, "12", &["-1", "18446744073709551616", "1e3"]),
        expected = usually(rng, odds, "0.5", &AVERAGES),
        p = usually(rng, odds, "1e-9", &["2", "-0.5", "1e-400", "null"]),
        baseline = usually(rng, odds, "10080", &DURATIONS),
        reason = string(rng),
    )
}

/// One case: an Insight file's bytes, an explanations file's bytes, the context minutes.
struct Input {
    insight_file: Vec<u8>,
    explanations: Vec<u8>,
    context_minutes: i64,
    counted: bool,
}

fn input(rng: &mut Rng) -> Input {
    let records: Vec<String> = (0..rng.below(7)).map(|_| record(rng)).collect();
    let json = match rng.below(12) {
        0 => value(rng, 3),
        1 => format!("[{}]", records.join(",")),
        _ => format!(r#"{{"Records":[{}]}}"#, records.join(",")),
    };
    let mut insight_file = if rng.chance(12) {
        json.into_bytes()
    } else {
        gzip(json.as_bytes(), rng)
    };
    if rng.chance(4) {
        insight_file = mutate(insight_file, rng);
    }
    let lines: Vec<String> = (0..rng.below(4)).map(|_| explanation(rng)).collect();
    let mut explanations = lines.join("\n").into_bytes();
    if rng.chance(8) {
        explanations = mutate(explanations, rng);
    }
    let context_minutes = *rng.pick(&[60, 180, i64::from(MAX_CONTEXT_HOURS) * 60, 0, -5]);
    Input {
        insight_file,
        explanations,
        context_minutes,
        counted: rng.chance(2),
    }
}

const FILE_REASONS: [&str; 3] = ["not gzip", "corrupt gzip", "not an Insight file"];
const RECORD_REASONS: [&str; 9] = [
    "not an Insight record",
    "unknown state",
    "bad eventTime",
    "eventTime out of range",
    "duration out of range",
    "average out of range",
    "bad account or region",
    "bad identifier",
    "too many attributions",
];

/// What is wrong with the readers' (and the page's) answers to `input`, if anything; else 1
/// if the Insight file was read.
fn judge(input: &Input) -> Result<u64, String> {
    let file = match parse_insight_file(&input.insight_file) {
        Ok(file) => file,
        Err(p) if FILE_REASONS.contains(&p.reason) && !p.detail.is_empty() => {
            return Ok(0);
        }
        Err(p) => return Err(format!("file refused: {:?}: {}", p.reason, p.detail)),
    };
    for r in &file.records {
        validate::check_record(r).map_err(|e| format!("kept a record out of range: {e:?}"))?;
    }
    if let Some(r) = file
        .rejected
        .iter()
        .find(|r| !RECORD_REASONS.contains(&r.why.reason))
    {
        return Err(format!("unknown record reason {:?}", r.why));
    }
    let explanations = parse_explanations(&input.explanations).unwrap_or_default();
    let paired = pair(file.records, explanations);
    let (earliest, latest) = validate::time_bounds();
    let longest = MAX_CHARTED_EPISODE_MINUTES + 2 * i64::from(MAX_CONTEXT_HOURS) * 60;
    let mut requests = Vec::new();
    for e in &paired.episodes {
        if e.start_minute < earliest || e.start_minute >= latest {
            return Err(format!("episode starts at {:?}", e.start_minute));
        }
        if let Some(end) = e.end_minute
            && end <= e.start_minute
        {
            return Err(format!("End {end:?} not after Start {:?}", e.start_minute));
        }
        let (from, until) = e.chart_window(input.context_minutes);
        if until <= from || until.0 - from.0 > longest {
            return Err(format!("chart window {from:?}..{until:?}"));
        }
        requests.push(series::Request {
            key: e.key(),
            scope: e.call_rate_scope().unwrap_or_default(),
            from,
            until,
        });
    }
    let counts = series::Recount::new(requests).finish();
    let page = Page {
        insights_dir: "fuzz",
        source: None,
        episodes: &paired.episodes,
        counts: input.counted.then_some(counts.as_slice()),
        context_minutes: input.context_minutes.max(60),
        page_size: 2,
        coverage: &Default::default(),
        coverage_skipped: &[],
    };
    html::render(&page).map_err(|e| format!("the page failed: {e:#}"))?;
    Ok(1)
}

fn keep(input: &Input, case_seed: u64) -> String {
    let saved = save_bytes(
        &input.insight_file,
        &format!("report-{case_seed:016x}.json.gz"),
    );
    save_bytes(
        &input.explanations,
        &format!("report-{case_seed:016x}.jsonl"),
    );
    format!(
        "context {} min; input saved to {saved}",
        input.context_minutes
    )
}

#[test]
fn fuzz_report_readers_never_panic_and_stay_in_range() {
    drive(&Target {
        name: "report",
        ci_seed: CI_SEED,
        ci_cases: CI_CASES,
        case: input,
        judge,
        keep,
    });
}

#[test]
fn fuzz_report_generator_reaches_records_episodes_and_every_reason() {
    // A fuzzer whose records were all rejected would prove nothing about the page.
    let mut rng = Rng(CI_SEED);
    let (mut kept, mut episodes, mut ended) = (0, 0, 0);
    let mut reasons = std::collections::BTreeSet::new();
    for _ in 0..1500 {
        let input = input(&mut Rng(rng.next()));
        let Ok(file) = parse_insight_file(&input.insight_file) else {
            continue;
        };
        kept += file.records.len();
        reasons.extend(file.rejected.iter().map(|r| r.why.reason));
        let paired = pair(file.records, vec![]);
        episodes += paired.episodes.len();
        ended += paired.episodes.iter().filter(|e| e.end.is_some()).count();
    }
    assert!(
        kept > 200 && episodes > 100 && ended > 10,
        "kept {kept}, episodes {episodes}, ended {ended}"
    );
    for reason in RECORD_REASONS {
        assert!(
            reasons.contains(reason),
            "{reason:?} never reached: {reasons:?}"
        );
    }
}

const DAYS: [&str; 8] = [
    "\"2019-11-07\"",
    "\"2019-11-08\"",
    "\"2012-12-31\"",
    "\"2100-01-01\"",
    "\"2019-02-30\"",
    "\"<script>alert(1)</script>\"",
    "\"\"",
    "7",
];
const ACCOUNTS: [&str; 5] = [
    "\"123456789012\"",
    "\"210987654321\"",
    "\"12345678901\"",
    "\"<img src=x onerror=alert(1)>\"",
    "null",
];
const REGIONS: [&str; 4] = [
    "\"us-east-1\"",
    "\"eu-west-1\"",
    "\"US-EAST-1\"",
    "\"\\\"><script>\"",
];
const COUNTS: [&str; 6] = ["0", "12", "1099511627777", "-1", "1e30", "\"3\""];

/// A run record (`_trailsight/runs/`) whose fields are often hostile.
fn run_record(rng: &mut Rng) -> String {
    let gaps: Vec<String> = (0..rng.below(4))
        .map(|_| {
            format!(
                r#"{{"account":{},"region":{},"day":{},"expected":{},"seen":{}}}"#,
                usually(rng, 8, "\"123456789012\"", &ACCOUNTS),
                usually(rng, 8, "\"us-east-1\"", &REGIONS),
                usually(rng, 8, "\"2019-11-08\"", &DAYS),
                usually(rng, 8, "12", &COUNTS),
                usually(rng, 8, "0", &COUNTS)
            )
        })
        .collect();
    let days: Vec<String> = (0..rng.below(3))
        .map(|_| usually(rng, 8, "\"2019-11-09\"", &DAYS))
        .collect();
    let withheld: Vec<String> = (0..rng.below(3))
        .map(|_| {
            usually(
                rng,
                8,
                "\"123456789012/us-east-1\"",
                &["\"a/b\"", "\"</td>\""],
            )
        })
        .collect();
    let command = usually(
        rng,
        8,
        "\"nightly\"",
        &["\"analyze\"", "\"report\"", "\"<b>\""],
    );
    let started = usually(
        rng,
        8,
        "\"2019-11-09T01:30:00.000Z\"",
        &["\"0001-01-01T00:00:00Z\"", "\"yesterday\""],
    );
    format!(
        r#"{{"version":{},"command":{command},"started":{started},"exit_code":{},"error":{},"summary":{{"first_day":{},"last_day":{},"days_without_logs":[{}],"delivery_gaps":[{}],"partitions_withheld":[{}],"objects_skipped":{{{}:{}}}}}}}"#,
        usually(rng, 20, "1", &["2", "0", "\"1\""]),
        usually(rng, 8, "4", &["0", "3", "255", "256", "-1"]),
        usually(rng, 3, "null", &["\"boom <script>alert\"", "\"\""]),
        usually(rng, 8, "\"2019-11-08\"", &DAYS),
        usually(rng, 8, "\"2019-11-09\"", &DAYS),
        days.join(","),
        gaps.join(","),
        withheld.join(","),
        usually(rng, 4, "\"fetch failed\"", &["\"<i>\"", "\"\""]),
        usually(rng, 8, "1", &COUNTS),
    )
}

/// A bad-objects report (`_trailsight/bad-objects/`) whose fields are often hostile.
fn bad_objects_report(rng: &mut Rng) -> String {
    let skipped: Vec<String> = (0..rng.below(4))
        .map(|_| {
            format!(
                r#"{{"object":{},"reason":{}}}"#,
                usually(
                    rng,
                    4,
                    "\"s3://b/k.json.gz\"",
                    &["\"<script>alert</script>\"", "\"\""]
                ),
                usually(rng, 4, "\"quarantined\"", &["\"fetch failed\"", "\"<b>\""])
            )
        })
        .collect();
    format!(
        r#"{{"version":{},"day":{},"skipped":[{}]}}"#,
        usually(rng, 20, "1", &["2", "\"1\""]),
        usually(rng, 8, "\"2019-11-08\"", &DAYS),
        skipped.join(",")
    )
}

/// A coverage case: a run record and a bad-objects report, as bytes.
struct CoverageCase {
    run: Vec<u8>,
    report: Vec<u8>,
}

fn coverage_case(case: &mut Rng) -> CoverageCase {
    let (run, report) = (run_record(case), bad_objects_report(case));
    if case.chance(3) {
        CoverageCase {
            run: mutate(run.into_bytes(), case),
            report: mutate(report.into_bytes(), case),
        }
    } else {
        CoverageCase {
            run: run.into_bytes(),
            report: report.into_bytes(),
        }
    }
}

/// What is wrong with the coverage readers' and the page's answers, if anything; else how
/// many of the two files were accepted.
fn judge_coverage(case: &CoverageCase) -> Result<u64, String> {
    use trailsight::report::coverage::coverage;
    use trailsight::sink::{bad_objects, runs};
    let runs: Vec<_> = runs::parse(&case.run).into_iter().collect();
    let days: Vec<_> = bad_objects::parse(&case.report).into_iter().collect();
    let accepted = runs.len() + days.len();
    let in_range = |d: &chrono::NaiveDate| (2013..2100).contains(&chrono::Datelike::year(d));
    for r in &runs {
        if !r.days_without_logs.iter().all(in_range)
            || !r.delivery_gaps.iter().all(|g| {
                in_range(&g.day)
                    && g.account.len() == 12
                    && g.account.bytes().all(|b| b.is_ascii_digit())
            })
        {
            return Err(format!("out of range: {r:?}"));
        }
    }
    let covered = coverage(&runs, &days);
    let page = Page {
        insights_dir: "out",
        source: None,
        episodes: &[],
        counts: None,
        context_minutes: 60,
        page_size: 2,
        coverage: &covered,
        coverage_skipped: &[],
    };
    let text = html::render(&page).map_err(|e| format!("the page failed: {e:#}"))?;
    for raw in ["<script>alert", "<img src=x", "<b>", "<i>", "</td>\""] {
        if text.contains(raw) {
            return Err(format!("{raw:?} reached the page unescaped"));
        }
    }
    Ok(accepted as u64)
}

fn keep_coverage(case: &CoverageCase, case_seed: u64) -> String {
    let saved = save_bytes(&case.run, &format!("coverage-run-{case_seed:016x}.json"));
    save_bytes(&case.report, &format!("coverage-bad-{case_seed:016x}.json"));
    format!("saved to {saved}")
}

/// Run records and bad-objects reports, hostile and often damaged, never panic their parsers,
/// what they accept is in range, and the page's coverage section renders with every text
/// escaped.
#[test]
fn fuzz_coverage_readers_never_panic_and_escape_everything() {
    let ran = drive(&Target {
        name: "coverage",
        ci_seed: CI_SEED ^ 0x5eed,
        ci_cases: CI_CASES,
        case: coverage_case,
        judge: judge_coverage,
        keep: keep_coverage,
    });
    // A fuzzer whose inputs were all refused would prove nothing about the page.
    assert!(
        ran.timed || ran.accepted > ran.executions / 4,
        "only {} of {} cases accepted",
        ran.accepted,
        ran.executions
    );
}
