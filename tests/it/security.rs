//! Security hardening beyond the log decoder (issue 16), each case run on the real binary.
//!
//! No credential in any output, whatever `RUST_LOG` asks for: runs against the real S3 test
//! server with known fake credentials (an access key ID, a secret and a session token), under
//! filters aimed at exactly the crates that handle them (`aws_sigv4::http_request::sign=trace`
//! logs canonical requests and the signing scope; `aws_config=trace` the credentials a profile
//! resolves to; `hyper=trace` headers), and every line of stderr and the summary is searched
//! for them. Also: a static-key profile at the default level, an endpoint URL with a password
//! in it, and a failing `credential_process` whose output must not be echoed.
//!
//! Also: S3 keys below a day folder named and counted; small denial-of-service paths closed
//! (`--config` from a device or FIFO, days before CloudTrail existed, output paths checked
//! before the run); and an `eventID` borrowed by a record with other content counted, not
//! dropped as a duplicate.

use crate::s3_server::{ACCESS_KEY, S3Server, SECRET_KEY};
use crate::support::*;

const TOKEN: &str = "FwoGZXIvYXdzEXAMPLEtrailsightSessionToken0123456789";
const DAY: &str = "2019-11-07";

/// A server whose `cloudtrail` bucket holds one day of one partition (a few write calls).
fn server_with_a_day() -> S3Server {
    let server = S3Server::start(&["cloudtrail", "insights"]);
    let tree = Tree::new();
    let calls: Vec<_> = (0..5)
        .map(|i| {
            call(
                "123456789012",
                "us-east-1",
                &at(DAY, 600 + i, 0),
                "RunInstances",
                u64::from(i) + 1,
            )
        })
        .collect();
    tree.write_log(
        &log_key("", None, "123456789012", "us-east-1", DAY, "a"),
        &calls,
    );
    server.upload_tree(tree.path(), "cloudtrail", "");
    server
}

fn args(out: &str) -> Vec<String> {
    [
        "analyze",
        "--source",
        "s3://cloudtrail",
        "--out",
        out,
        "--force-path-style",
        "--from",
        DAY,
        "--to",
        DAY,
        "--max-attempts",
        "1",
    ]
    .map(String::from)
    .to_vec()
}

/// The server's environment with the session token and this `RUST_LOG` (none: unset).
fn env(server: &S3Server, rust_log: Option<&str>) -> Vec<(&'static str, String)> {
    let mut env = server.env();
    env.retain(|(k, _)| *k != "AWS_SESSION_TOKEN");
    env.push(("AWS_SESSION_TOKEN", TOKEN.to_owned()));
    if let Some(filter) = rust_log {
        env.push(("RUST_LOG", filter.to_owned()));
    }
    env
}

/// Run with `env`; without `RUST_LOG` in it, with `RUST_LOG` removed (the default level).
fn run(args: &[String], env: &[(&str, String)]) -> (i32, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"));
    command.args(args).env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

/// Every text that must never be printed: the credentials, and what carries them.
const FORBIDDEN: [&str; 8] = [
    ACCESS_KEY,
    SECRET_KEY,
    TOKEN,
    "X-Amz-Signature",
    "Signature=",
    "Credential=",
    "aws4_request",
    "x-amz-security-token:",
];

fn assert_clean(case: &str, text: &str, extra: &[&str]) {
    for secret in FORBIDDEN.iter().chain(extra) {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{case}: {secret:?} printed:\n{}",
            text.lines()
                .filter(|l| l.to_lowercase().contains(&secret.to_lowercase()))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn no_credential_is_printed_under_any_targeted_log_filter() {
    let server = server_with_a_day();
    let filters = [
        "aws_sigv4=trace",
        "aws_sigv4::http_request::sign=trace",
        "aws_sigv4::http_request=trace",
        "aws_config=trace",
        "aws_config::profile=trace",
        "aws_smithy_runtime=trace",
        "aws_smithy_runtime_api=trace",
        "aws_smithy_http_client=trace",
        "aws_credential_types=trace",
        "aws_runtime=trace",
        "aws_sdk_s3=trace",
        "hyper=trace",
        "hyper_util=trace",
        "h2=trace",
        "trace",
        "warn,aws_sigv4::http_request::sign=trace,aws_config=trace,trailsight=trace",
    ];
    for (i, filter) in filters.iter().enumerate() {
        let (code, text) = run(
            &args(&format!("s3://insights/run{i}")),
            &env(&server, Some(filter)),
        );
        assert_eq!(code, 0, "RUST_LOG={filter}: {text}");
        assert_clean(&format!("RUST_LOG={filter}"), &text, &[]);
    }
}

#[test]
fn a_static_key_profile_is_not_logged_at_the_default_level() {
    let server = server_with_a_day();
    let dir = tempfile::tempdir().unwrap();
    let (config, credentials) = (dir.path().join("config"), dir.path().join("credentials"));
    std::fs::write(&config, "[default]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        &credentials,
        format!(
            "[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    for rust_log in [None, Some("info"), Some("debug"), Some("aws_config=info")] {
        let mut env = server.env();
        env.retain(|(k, _)| {
            !matches!(
                *k,
                "AWS_ACCESS_KEY_ID"
                    | "AWS_SECRET_ACCESS_KEY"
                    | "AWS_SESSION_TOKEN"
                    | "AWS_CONFIG_FILE"
                    | "AWS_SHARED_CREDENTIALS_FILE"
            )
        });
        env.push(("AWS_CONFIG_FILE", config.display().to_string()));
        env.push((
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials.display().to_string(),
        ));
        if let Some(filter) = rust_log {
            env.push(("RUST_LOG", filter.to_owned()));
        }
        let (code, text) = run(&args("s3://insights/profile"), &env);
        assert_eq!(code, 0, "RUST_LOG={rust_log:?}: {text}");
        assert_clean(&format!("profile, RUST_LOG={rust_log:?}"), &text, &[]);
    }
}

#[test]
fn a_password_in_the_endpoint_url_is_never_printed() {
    let server = server_with_a_day();
    const PASSWORD: &str = "Pa55wordInTheEndpointUrl";
    let endpoint = server
        .endpoint
        .replacen("http://", &format!("http://operator:{PASSWORD}@"), 1);
    for filter in ["debug", "trace", "trailsight=trace"] {
        let mut a = args("s3://insights/password");
        a.extend(["--endpoint-url".to_owned(), endpoint.clone()]);
        let (_, text) = run(&a, &env(&server, Some(filter)));
        assert_clean(&format!("endpoint, RUST_LOG={filter}"), &text, &[PASSWORD]);
    }
    // An endpoint that cannot be reached: its error names it, without the password.
    let mut a = args("s3://insights/password");
    a.extend([
        "--endpoint-url".to_owned(),
        format!("http://operator:{PASSWORD}@127.0.0.1:1"),
    ]);
    let (code, text) = run(&a, &env(&server, Some("debug")));
    assert_eq!(code, 2, "{text}");
    assert_clean("unreachable endpoint", &text, &[PASSWORD]);
}

#[test]
fn a_failing_credential_process_is_summarised_without_its_output() {
    let server = server_with_a_day();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "exits 3 after printing a secret on stderr",
            r#"sh -c "echo PROCESS-SECRET-ON-STDERR >&2; exit 3""#,
            "PROCESS-SECRET-ON-STDERR",
        ),
        (
            "prints half a credential on stdout",
            r#"sh -c "echo '{\"Version\": 1, \"AccessKeyId\": \"PROCESS-SECRET-ON-STDOUT\",'""#,
            "PROCESS-SECRET-ON-STDOUT",
        ),
    ];
    for (case, command, secret) in cases {
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!("[default]\nregion = us-east-1\ncredential_process = {command}\n"),
        )
        .unwrap();
        let mut env = server.env();
        env.retain(|(k, _)| {
            !matches!(
                *k,
                "AWS_ACCESS_KEY_ID"
                    | "AWS_SECRET_ACCESS_KEY"
                    | "AWS_SESSION_TOKEN"
                    | "AWS_CONFIG_FILE"
            )
        });
        env.push(("AWS_CONFIG_FILE", config.display().to_string()));
        for filter in ["warn", "debug"] {
            let mut env = env.clone();
            env.push(("RUST_LOG", filter.to_owned()));
            let (code, text) = run(&args("s3://insights/process"), &env);
            assert_eq!(code, 2, "{case}: {text}");
            assert_clean(case, &text, &[secret]);
            assert!(
                text.contains("credential"),
                "{case}: the error says what failed: {text}"
            );
        }
    }
}

/// Keys under a day folder with a `/` after the folder (`07/%2e%2e/x.json.gz`, `07/sub/...`):
/// named and counted in `files_ignored` like the local walker's sub-folders, and fatal under
/// `--strict`. (`07/./x` and `07//x` cannot be stored by the test server, which keeps objects
/// as files; `source::s3`'s unit test covers them.)
#[test]
fn s3_keys_below_a_day_folder_are_named_and_fail_strict() {
    let server = server_with_a_day();
    let folder = "AWSLogs/123456789012/CloudTrail/us-east-1/2019/11/07/";
    let body = gzip(
        serde_json::json!({"Records": [call("123456789012", "us-east-1", &at(DAY, 700, 0), "RunInstances", 99)]})
            .to_string()
            .as_bytes(),
    );
    for extra in [
        "%2e%2e/123456789012_CloudTrail_us-east-1_20191107T2355Z_x.json.gz",
        "sub/123456789012_CloudTrail_us-east-1_20191107T2355Z_y.json.gz",
    ] {
        server.put_raw("cloudtrail", &format!("{folder}{extra}"), &body);
    }
    let mut a = args("s3://insights/keys");
    a.retain(|x| x != "--max-attempts" && x != "1");
    let plain = trailsight_env(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &server.env(),
    );
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert_eq!(
        plain.summary["files_ignored"]["a directory, not a log file"], 2,
        "{:#}",
        plain.summary["files_ignored"]
    );
    for name in ["%2e%2e/", "sub/"] {
        assert!(
            plain
                .stderr
                .contains(&format!("s3://cloudtrail/{folder}{name}")),
            "{name} not named: {}",
            plain.stderr
        );
    }
    // Only the day's own object was read: the keys below it were not.
    assert_eq!(plain.summary["write_events"], 5, "{:#}", plain.summary);
    a.push("--strict".into());
    let strict = trailsight_env(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        &server.env(),
    );
    assert_eq!(strict.code, 2, "{}", strict.stderr);
    assert!(
        strict.stderr.contains("2 unexpected files"),
        "{}",
        strict.stderr
    );
}

/// Run the binary with exactly `args`, with a time limit; (exit code, stderr, seconds).
fn run_quick(args: &[&str]) -> (i32, String, f64) {
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_trailsight"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("{args:?}: still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn small_denial_of_service_paths_fail_fast_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (sample, out) = (repo_path("sample-data"), d.join("out"));
    let (sample, out_s) = (sample.to_str().unwrap(), out.to_str().unwrap());
    let fifo = d.join("config.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let big = d.join("big.toml");
    std::fs::write(&big, format!("# {}\n", "x".repeat(2 << 20))).unwrap();
    let state = d.join("state");
    let (fifo, big, state) = (
        fifo.to_str().unwrap(),
        big.to_str().unwrap(),
        state.to_str().unwrap(),
    );
    let analyze = ["analyze", "--source", sample, "--out", out_s];
    let nightly = [
        "nightly", "--source", sample, "--out", out_s, "--state", state,
    ];
    let html_dir = d.join("insights");
    std::fs::create_dir_all(&html_dir).unwrap();
    let insights = html_dir.to_str().unwrap();
    // (case, arguments, what stderr says)
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            "--config /dev/zero",
            [&analyze[..], &["--config", "/dev/zero"]].concat(),
            "--config /dev/zero: cannot read it: not a regular file",
        ),
        (
            "--config a FIFO",
            [&analyze[..], &["--config", fifo]].concat(),
            "not a regular file",
        ),
        (
            "--config of 2 MiB",
            [&analyze[..], &["--config", big]].concat(),
            "larger than 1048576 bytes",
        ),
        (
            "--from in year 1",
            [
                &analyze[..],
                &["--from", "0001-01-01", "--to", "0001-01-02"],
            ]
            .concat(),
            "--from 0001-01-01: not between 2013-11-01 (CloudTrail did not exist before November 2013)",
        ),
        (
            "--to in year 9999",
            [
                &analyze[..],
                &["--from", "2019-11-01", "--to", "9999-12-31"],
            ]
            .concat(),
            "--to 9999-12-31: not between",
        ),
        (
            "nightly --first-day in year 1",
            [&nightly[..], &["--first-day", "0001-01-01"]].concat(),
            "--first-day 0001-01-01: not between 2013-11-01",
        ),
        (
            "nightly --as-of in year 9999",
            [&nightly[..], &["--as-of", "9999-12-31T00:00:00Z"]].concat(),
            "--as-of 9999-12-31: not between",
        ),
        (
            "--summary-json into a missing folder",
            [
                &analyze[..],
                &["--summary-json", "/nonexistent/folder/summary.json"],
            ]
            .concat(),
            "--summary-json /nonexistent/folder/summary.json: the folder /nonexistent/folder does not exist",
        ),
        (
            "--summary-json naming a folder",
            [&analyze[..], &["--summary-json", insights]].concat(),
            "a folder, not a file name",
        ),
        (
            "report --html into a missing folder",
            vec![
                "report",
                "--insights",
                insights,
                "--html",
                "/nonexistent/folder/r.html",
            ],
            "--html /nonexistent/folder/r.html: the folder /nonexistent/folder does not exist",
        ),
    ];
    for (case, args, says) in cases {
        let (code, stderr, seconds) = run_quick(&args);
        assert_eq!(code, 2, "{case}: {stderr}");
        assert!(stderr.contains(says), "{case}: {says:?} not in:\n{stderr}");
        assert!(seconds < 10.0, "{case}: {seconds:.1} s");
        // Nothing was written: the checks come before the run.
        assert!(!out.exists(), "{case}: the output folder was written");
    }
}

#[test]
fn an_event_id_reused_for_other_content_is_counted_not_dropped() {
    let tree = Tree::new();
    let key = |unique: &str| log_key("", None, "123456789012", "us-east-1", DAY, unique);
    let mut real = call(
        "123456789012",
        "us-east-1",
        &at(DAY, 600, 5),
        "RunInstances",
        1,
    );
    let id = "3c9a8f4e-1d2b-4c5a-9e7f-0a1b2c3d4e5f";
    real["eventID"] = id.into();
    tree.write_log(&key("real"), std::slice::from_ref(&real));
    // (case, the second file's record, duplicates dropped, conflicts)
    let mut copy_upper = real.clone();
    copy_upper["eventID"] = id.to_uppercase().into();
    let mut braces = real.clone();
    braces["eventID"] = format!("{{{id}}}").into();
    let mut other_api = real.clone();
    other_api["eventName"] = "TerminateInstances".into();
    let mut other_time = real.clone();
    other_time["eventTime"] = at(DAY, 640, 0).into();
    let cases = [
        ("a true copy", real.clone(), 1, 0),
        ("the ID in upper case", copy_upper, 0, 0),
        ("the ID in braces", braces, 0, 0),
        ("another API", other_api, 0, 1),
        ("another time", other_time, 0, 1),
    ];
    for (case, second, duplicates, conflicts) in cases {
        let forged = key("forged");
        tree.write_log(&forged, &[second]);
        let out = tempfile::tempdir().unwrap();
        let run = analyze(tree.path(), out.path(), &["--from", DAY, "--to", DAY]);
        assert_eq!(run.code, 0, "{case}: {}", run.stderr);
        assert_eq!(run.summary["duplicates_dropped"], duplicates, "{case}");
        assert_eq!(run.summary["event_id_conflicts"], conflicts, "{case}");
        if conflicts > 0 {
            assert!(
                // The object read second is named (here the real one: `forged` lists first).
                run.stderr.contains("_real.json.gz reuse the eventID") && run.stderr.contains(id),
                "{case}: the conflict is not named: {}",
                run.stderr
            );
        }
    }
}
