//! What a run reports about itself: the JSON run summary of the sample run (a golden file, with
//! times, memory and paths masked), and progress drawn on a terminal but never off one.

use crate::support::*;
use serde_json::Value;
use std::process::Command;

/// Replace what differs between machines and runs, after checking it is sensible.
fn mask(mut summary: Value) -> Value {
    let elapsed = summary["elapsed_seconds"]
        .as_f64()
        .expect("elapsed_seconds");
    let stages = summary["stage_seconds"].as_object_mut().expect("stages");
    let mut total = 0.0;
    for (stage, seconds) in stages.iter_mut() {
        let s = seconds.as_f64().unwrap_or(-1.0);
        assert!(s >= 0.0, "{stage}: {seconds}");
        total += s;
        *seconds = Value::from("[seconds]");
    }
    assert!(
        total <= elapsed + 0.01,
        "stages {total} s within the run's {elapsed} s"
    );
    summary["elapsed_seconds"] = Value::from("[seconds]");
    if cfg!(target_os = "linux") {
        let peak = summary["peak_memory_bytes"].as_u64().expect("peak memory");
        assert!(peak > 1 << 20, "{peak}");
    }
    summary["peak_memory_bytes"] = Value::from("[bytes]");
    summary["output"] = Value::from("[output]");
    summary["source"] = Value::from("sample-data");
    summary
}

#[test]
fn the_sample_run_summary_matches_the_golden_file() {
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&repo_path("sample-data"), out.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = serde_json::to_string_pretty(&mask(run.summary)).unwrap();
    insta::assert_snapshot!("sample_run_summary", summary);
}

#[test]
fn the_summary_table_shows_time_per_stage_and_peak_memory() {
    let out = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_binary(&[
        "analyze",
        "--source",
        repo_path("sample-data").to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let time = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("time "))
        .unwrap_or_else(|| panic!("no time row: {stderr}"));
    for stage in ["list", "read/decode", "detect", "write"] {
        assert!(time.contains(stage), "{time}");
    }
    if cfg!(target_os = "linux") {
        assert!(stderr.contains("peak memory"), "{stderr}");
    }
}

/// The `analyze` command line for the sample into `out`.
fn sample_command(out: &std::path::Path) -> String {
    format!(
        "stty cols 200 rows 40; {} analyze --source {} --out {}",
        env!("CARGO_BIN_EXE_trailsight"),
        repo_path("sample-data").display(),
        out.display()
    )
}

#[test]
fn progress_is_drawn_on_a_terminal_only() {
    // Off a terminal (tests, cron): not a trace of it.
    let out = tempfile::tempdir().unwrap();
    let run = analyze(&repo_path("sample-data"), out.path(), &[]);
    assert_eq!(run.code, 0);
    for mark in ["ETA", "records, ", "\u{1b}["] {
        assert!(!run.stderr.contains(mark), "{mark:?} in {}", run.stderr);
    }
    // On a terminal: `script` gives the run a pseudo-terminal and records what it draws.
    let typescript = out.path().join("typescript");
    let status = Command::new("script")
        .args(["-q", "-e", "-c", &sample_command(&out.path().join("tty"))])
        .arg(&typescript)
        .env("RUST_LOG", "warn")
        .output()
        .expect("util-linux `script` (Debian's bsdutils) runs a command on a pseudo-terminal");
    assert!(status.status.success(), "{status:?}");
    let drawn = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    for mark in ["ETA", "objects ", "records, ", "/s"] {
        assert!(drawn.contains(mark), "{mark:?} not drawn: {drawn}");
    }
    // ... and `--log-format json` keeps the terminal for the JSON lines alone.
    let json_run = Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!(
                "{} --log-format json",
                sample_command(&out.path().join("json"))
            ),
        ])
        .arg(out.path().join("typescript-json"))
        .output()
        .unwrap();
    assert!(json_run.status.success());
    let drawn = std::fs::read_to_string(out.path().join("typescript-json")).unwrap();
    assert!(!drawn.contains("ETA"), "{drawn}");
    assert!(drawn.contains("\"level\":\"INFO\""), "{drawn}");
}
