//! `trailsight report` on hostile Insight folders (`report` also reads AWS's own files and
//! folders others can write to). One row per case: the case is put into an output folder that
//! also holds one good episode, and the real binary draws the page (with `--source` when the
//! row says so), under a time limit and a cap on its address space. Every row checks that it
//! did not panic, hang or run out of memory, that the exit code is the row's, that stderr names
//! the bad file or record and the reason, and that the good episode is still drawn.
//!
//! The cases about the walk itself (link loops) are in `report_walk_hostile.rs`.

use crate::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run of `report` that takes longer than this has hung.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);
/// Address space allowed to `report`: far above what a page of a few episodes needs, far below
/// what an unbounded window allocates.
pub const ADDRESS_SPACE_LIMIT: u64 = 4 << 30;

const DAY_FOLDER: &str = "AWSLogs/123456789012/CloudTrail-Insight/us-east-1/2019/11/07";

/// An Insight record of episode `shared` in `state` at `time`, with fields overridden by
/// `patch` (a JSON object merged into the record; `insightDetails.insightContext.statistics`
/// is patched through the key `statistics`).
pub fn record(shared: &str, state: &str, time: &str, patch: Value) -> Value {
    let mut r = json!({
        "eventVersion": "1.09",
        "eventTime": time,
        "awsRegion": "us-east-1",
        "eventID": format!("{shared}-{state}"),
        "eventType": "AwsCloudTrailInsight",
        "recipientAccountId": "123456789012",
        "sharedEventID": shared,
        "insightDetails": {
            "state": state,
            "eventSource": "ec2.amazonaws.com",
            "eventName": "RunInstances",
            "insightType": "ApiCallRateInsight",
            "insightContext": {
                "statistics": {
                    "baseline": {"average": 0.1},
                    "insight": {"average": 6.0},
                    "insightDuration": if state == "Start" { 1 } else { 3 },
                    "baselineDuration": 10080
                },
                "attributions": []
            }
        },
        "eventCategory": "Insight"
    });
    for (key, value) in patch.as_object().cloned().unwrap_or_default() {
        match key.as_str() {
            "statistics" => {
                let stats = &mut r["insightDetails"]["insightContext"]["statistics"];
                for (k, v) in value.as_object().cloned().unwrap_or_default() {
                    stats[k] = v;
                }
            }
            "attributions" => r["insightDetails"]["insightContext"]["attributions"] = value,
            _ => r[key] = value,
        }
    }
    r
}

/// Write `records` as an Insight file named `name` in the day folder of `out`; its path.
pub fn insight_file(out: &Path, name: &str, records: &[Value]) -> PathBuf {
    insight_bytes(
        out,
        name,
        &gzip(json!({ "Records": records }).to_string().as_bytes()),
    )
}

/// Write raw bytes as an Insight file named `name`; its path.
pub fn insight_bytes(out: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = out.join(DAY_FOLDER).join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The path of an Insight file named `name` (its folder made).
pub fn insight_path(out: &Path, name: &str) -> PathBuf {
    let path = out.join(DAY_FOLDER).join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    path
}

/// An output folder with one good episode (Start 13:25, End 13:28).
pub fn good_output(out: &Path) {
    insight_file(
        out,
        "123456789012_CloudTrail-Insight_us-east-1_20191107T2359Z_good.json.gz",
        &[
            record("good", "Start", "2019-11-07T13:25:00Z", json!({})),
            record("good", "End", "2019-11-07T13:28:00Z", json!({})),
        ],
    );
}

/// What a run of `report` did.
pub struct ReportRun {
    pub code: i32,
    pub stderr: String,
    pub html: String,
    pub seconds: f64,
}

/// Run `report` on `out` (with an empty `--source` folder when `source`), within the time
/// limit and the address-space cap; a run that exceeds the time is killed and fails the test.
pub fn report(out: &Path, source: bool) -> ReportRun {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("r.html");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let stderr_path = dir.path().join("stderr");
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailsight"));
    command
        .args(["report", "--insights"])
        .arg(out)
        .arg("--html")
        .arg(&html)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    if source {
        command.arg("--source").arg(&logs);
    }
    // SAFETY: setrlimit is async-signal-safe; it only lowers this child's own limit.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_LIMIT,
                rlim_max: ADDRESS_SPACE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = command.spawn().expect("run trailsight report");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "report did not finish in {TIME_LIMIT:?} on {}; stderr:\n{}",
                out.display(),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ReportRun {
        code: status.code().unwrap_or(-1),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        html: std::fs::read_to_string(&html).unwrap_or_default(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Check one run against a row: no panic, the exit code, every `named` text in stderr, and the
/// good episode still drawn.
pub fn check(case: &str, run: &ReportRun, code: i32, named: &[&str]) {
    assert!(
        !run.stderr.contains("panicked") && run.code != 101 && run.code >= 0,
        "{case}: crashed (exit {}):\n{}",
        run.code,
        run.stderr
    );
    assert_eq!(run.code, code, "{case}: exit code; stderr:\n{}", run.stderr);
    for text in named {
        assert!(
            run.stderr.contains(text),
            "{case}: {text:?} not in stderr:\n{}",
            run.stderr
        );
    }
    assert!(
        run.html.contains(r#"data-shared-event-id="good""#),
        "{case}: the good episode is not drawn"
    );
    eprintln!("{case}: exit {} in {:.2} s", run.code, run.seconds);
}

/// How a case is set up: what it writes into the output folder.
type Setup = fn(&Path);

struct Case {
    name: &'static str,
    setup: Setup,
    /// Run with `--source` (an empty logs folder): the window is counted again.
    source: bool,
    code: i32,
    /// Texts stderr must hold: the file or record, and the reason.
    named: &'static [&'static str],
}

const BAD: &str = "123456789012_CloudTrail-Insight_us-east-1_20191107T2359Z_bad.json.gz";

/// The bad file holds these records (and the good file its episode).
fn bad_records(out: &Path, records: &[Value]) {
    insight_file(out, BAD, records);
}

fn start_with(out: &Path, patch: Value) {
    bad_records(
        out,
        &[record("bad", "Start", "2019-11-07T13:25:00Z", patch)],
    );
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a Start with insightDuration i64::MAX",
            setup: |out| start_with(out, json!({"statistics": {"insightDuration": i64::MAX}})),
            source: false,
            code: 0,
            named: &[
                "_bad.json.gz record 0 (eventID bad-Start)",
                "duration out of range",
            ],
        },
        Case {
            name: "a Start with insightDuration i64::MAX, counted from the logs",
            setup: |out| start_with(out, json!({"statistics": {"insightDuration": i64::MAX}})),
            source: true,
            code: 0,
            named: &["_bad.json.gz record 0", "duration out of range"],
        },
        Case {
            name: "an End dated 9999-12-31, counted from the logs",
            setup: |out| {
                bad_records(
                    out,
                    &[
                        record("bad", "Start", "2019-11-07T13:25:00Z", json!({})),
                        record("bad", "End", "9999-12-31T23:59:00Z", json!({})),
                    ],
                )
            },
            source: true,
            code: 0,
            named: &[
                "_bad.json.gz record 1 (eventID bad-End)",
                "eventTime out of range",
            ],
        },
        Case {
            name: "a negative insightDuration",
            setup: |out| start_with(out, json!({"statistics": {"insightDuration": -5}})),
            source: true,
            code: 0,
            named: &["_bad.json.gz record 0", "duration out of range"],
        },
        Case {
            name: "baselineDuration i64::MIN",
            setup: |out| start_with(out, json!({"statistics": {"baselineDuration": i64::MIN}})),
            source: false,
            code: 0,
            named: &["_bad.json.gz record 0", "duration out of range"],
        },
        Case {
            name: "an insightDuration past i64 (not a record, the file still read)",
            setup: |out| {
                let text = json!({"Records": [
                    record("bad", "Start", "2019-11-07T13:25:00Z", json!({"statistics": {"insightDuration": 1}})),
                    record("other", "Start", "2019-11-07T14:00:00Z", json!({})),
                ]})
                .to_string()
                .replacen(r#""insightDuration":1"#, r#""insightDuration":9223372036854775808"#, 1);
                insight_bytes(out, BAD, &gzip(text.as_bytes()));
            },
            source: false,
            code: 0,
            named: &["_bad.json.gz record 0", "not an Insight record"],
        },
        Case {
            name: "an eventTime in year 1, counted from the logs",
            setup: |out| {
                bad_records(
                    out,
                    &[record("bad", "Start", "0001-01-01T00:00:00Z", json!({}))],
                )
            },
            source: true,
            code: 0,
            named: &["_bad.json.gz record 0", "eventTime out of range"],
        },
        Case {
            name: "an eventTime before CloudTrail existed",
            setup: |out| {
                bad_records(
                    out,
                    &[record("bad", "Start", "2013-10-31T23:59:00Z", json!({}))],
                )
            },
            source: false,
            code: 0,
            named: &["_bad.json.gz record 0", "eventTime out of range"],
        },
        Case {
            name: "an End before its Start, counted from the logs",
            setup: |out| {
                bad_records(
                    out,
                    &[
                        record("bad", "Start", "2019-11-07T13:25:00Z", json!({})),
                        record("bad", "End", "2019-11-07T13:20:00Z", json!({})),
                    ],
                )
            },
            source: true,
            code: 0,
            named: &[
                r#"the End record of sharedEventID "bad""#,
                "End not after its Start",
            ],
        },
        Case {
            name: "an End at its Start's minute",
            setup: |out| {
                bad_records(
                    out,
                    &[
                        record("bad", "Start", "2019-11-07T13:25:00Z", json!({})),
                        record("bad", "End", "2019-11-07T13:25:00Z", json!({})),
                    ],
                )
            },
            source: false,
            code: 0,
            named: &[
                r#"the End record of sharedEventID "bad""#,
                "End not after its Start",
            ],
        },
        Case {
            name: "an End two years after its Start, counted from the logs",
            setup: |out| {
                bad_records(
                    out,
                    &[
                        record("bad", "Start", "2019-11-07T13:25:00Z", json!({})),
                        record("bad", "End", "2021-11-07T13:25:00Z", json!({})),
                    ],
                )
            },
            source: true,
            code: 0,
            named: &[
                r#"the End record of sharedEventID "bad""#,
                "episode too long",
            ],
        },
        Case {
            name: "a negative and a huge average",
            setup: |out| {
                bad_records(
                    out,
                    &[
                        record(
                            "bad",
                            "Start",
                            "2019-11-07T13:25:00Z",
                            json!({"statistics": {"baseline": {"average": -1.0}}}),
                        ),
                        record(
                            "bad2",
                            "Start",
                            "2019-11-07T13:25:00Z",
                            json!({"statistics": {"insight": {"average": 1e308}}}),
                        ),
                    ],
                )
            },
            source: false,
            code: 0,
            named: &[
                "_bad.json.gz record 0",
                "_bad.json.gz record 1",
                "average out of range",
            ],
        },
        Case {
            name: "a number too large for a double (the file is not read)",
            setup: |out| {
                let text =
                    json!({"Records": [record("bad", "Start", "2019-11-07T13:25:00Z", json!({}))]})
                        .to_string()
                        .replacen("0.1", "1e400", 1);
                insight_bytes(out, BAD, &gzip(text.as_bytes()));
            },
            source: false,
            code: 1,
            named: &["_bad.json.gz", "not an Insight file"],
        },
        Case {
            name: "an account that climbs out of the folder",
            setup: |out| start_with(out, json!({"recipientAccountId": "../../etc"})),
            source: true,
            code: 0,
            named: &["_bad.json.gz record 0", "bad account or region"],
        },
        Case {
            name: "a thousand attribution values",
            setup: |out| {
                let values: Vec<Value> = (0..1000)
                    .map(|i| json!({"value": format!("agent-{i}"), "average": 0.1}))
                    .collect();
                start_with(
                    out,
                    json!({"attributions": [{"attribute": "userAgent", "insight": values, "baseline": []}]}),
                )
            },
            source: false,
            code: 0,
            named: &["_bad.json.gz record 0", "too many attributions"],
        },
        Case {
            name: "an explanation with windowMinutes i64::MAX",
            setup: |out| {
                let path =
                    out.join("explanations/123456789012/us-east-1/2019/11/07/explanations.jsonl");
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                let line = json!({
                    "sharedEventID": "good", "recipientAccountId": "123456789012",
                    "awsRegion": "us-east-1", "eventSource": "ec2.amazonaws.com",
                    "eventName": "RunInstances", "insightType": "ApiCallRateInsight",
                    "direction": "increase", "startTime": "2019-11-07T13:25:00Z",
                    "endTime": null, "windowMinutes": i64::MAX, "observedCalls": 6,
                    "expectedCalls": 0.5, "observedPerMinute": 6.0, "expectedPerMinute": 0.1,
                    "tailProbability": 1e-9, "distribution": "poisson", "season": "all",
                    "newApi": false, "baselineCalls": 3, "baselineMinutes": 10080,
                    "reason": "because"
                });
                std::fs::write(path, format!("{line}\n")).unwrap();
            },
            source: false,
            code: 1,
            named: &["explanations.jsonl", "duration out of range", "line 1"],
        },
        Case {
            name: "a FIFO named like an Insight file",
            setup: |out| {
                let fifo = insight_path(out, BAD);
                let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
                assert!(made.success(), "mkfifo");
            },
            source: false,
            code: 1,
            named: &["_bad.json.gz", "not a regular file"],
        },
        Case {
            name: "a FIFO named explanations.jsonl",
            setup: |out| {
                let dir = out.join("explanations/123456789012/us-east-1/2019/11/07");
                std::fs::create_dir_all(&dir).unwrap();
                let made = Command::new("mkfifo")
                    .arg(dir.join("explanations.jsonl"))
                    .status()
                    .unwrap();
                assert!(made.success(), "mkfifo");
            },
            source: false,
            code: 1,
            named: &["explanations.jsonl", "not a regular file"],
        },
        Case {
            name: "a link to /dev/zero as an Insight file",
            setup: |out| std::os::unix::fs::symlink("/dev/zero", insight_path(out, BAD)).unwrap(),
            source: false,
            code: 1,
            named: &["_bad.json.gz", "not a regular file"],
        },
        Case {
            name: "a link to /dev/zero as explanations.jsonl",
            setup: |out| {
                let dir = out.join("explanations/123456789012/us-east-1/2019/11/07");
                std::fs::create_dir_all(&dir).unwrap();
                std::os::unix::fs::symlink("/dev/zero", dir.join("explanations.jsonl")).unwrap();
            },
            source: false,
            code: 1,
            named: &["explanations.jsonl", "not a regular file"],
        },
        Case {
            name: "a 300 MB sparse Insight file",
            setup: |out| sparse_file(&insight_path(out, BAD), 300 << 20),
            source: false,
            code: 1,
            named: &["_bad.json.gz", "over the size limit"],
        },
        Case {
            name: "an Insight file that gunzips past the cap",
            setup: |out| {
                let zeros = vec![0u8; 1 << 20];
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                for _ in 0..220 {
                    std::io::Write::write_all(&mut e, &zeros).unwrap();
                }
                insight_bytes(out, BAD, &e.finish().unwrap());
            },
            source: false,
            code: 1,
            named: &["_bad.json.gz", "corrupt gzip"],
        },
        Case {
            name: "two files linked to each other in a circle",
            setup: |out| {
                let a = insight_path(out, BAD);
                let b = insight_path(
                    out,
                    "123456789012_CloudTrail-Insight_us-east-1_20191107T2359Z_bad2.json.gz",
                );
                std::os::unix::fs::symlink(&b, &a).unwrap();
                std::os::unix::fs::symlink(&a, &b).unwrap();
            },
            source: false,
            code: 1,
            named: &["_bad.json.gz", "_bad2.json.gz", "symbolic link"],
        },
    ]
}

#[test]
fn report_survives_every_hostile_insight_folder_and_names_what_it_skipped() {
    let cases = cases();
    assert!(cases.len() >= 15);
    let mut failed = Vec::new();
    for case in &cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        good_output(&out);
        (case.setup)(&out);
        let result = std::panic::catch_unwind(|| {
            let run = report(&out, case.source);
            check(case.name, &run, case.code, case.named);
        });
        if let Err(panic) = result {
            failed.push(format!(
                "{}: {}",
                case.name,
                crate::fuzz::panic_text(&panic)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n\n")
    );
}

#[test]
fn a_good_folder_reports_cleanly_under_the_same_limits() {
    // The limits above do not fail an ordinary page: the harness itself is sound.
    let dir = tempfile::tempdir().unwrap();
    good_output(dir.path());
    let run = report(dir.path(), true);
    check("good", &run, 0, &[]);
    // The one warning: the empty --source folder holds no call of the Insight's minutes, and
    // the page says so instead of drawing a zero line.
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert!(
        warnings.len() == 1 && warnings[0].contains("the logs read hold no call"),
        "{}",
        run.stderr
    );
    assert!(run.html.contains(r#"data-no-calls="true""#), "{}", run.html);
}
