//! The command line as the Unix and AWS toolboxes expect it: `--log-format json` lines only
//! (a run, a failing run, a refused command line), colour only where asked, `-` for stdout,
//! `TRAILSIGHT_*` variables, help headings, completions and a man page; and the AWS CLI's
//! `--profile`, `--ca-bundle`/`AWS_CA_BUNDLE` and `HTTP(S)_PROXY`/`NO_PROXY`, each against
//! servers the test starts on 127.0.0.1 (s3s-fs, a forward proxy, a TLS front with a
//! certificate made by `openssl` at test time).

use crate::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use crate::support::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Run the binary with exactly these extra variables (RUST_LOG and colour settings cleared).
fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailsight"));
    command.args(args);
    for name in [
        "RUST_LOG",
        "NO_COLOR",
        "CLICOLOR_FORCE",
        "CLICOLOR",
        "TRAILSIGHT_LOG_FORMAT",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command.output().expect("run trailsight")
}

/// A copy of sample-data in a temporary folder.
fn sample_copy() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for (key, bytes) in files(&repo_path("sample-data")) {
        let path = copy.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    copy
}

/// Every stderr line as JSON, failing on the first that is not one JSON object.
fn json_lines(stderr: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.trim().is_empty(), "nothing on stderr");
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nin:\n{text}"));
            assert!(value.is_object(), "{line}");
            assert!(value["level"].is_string(), "{line}");
            assert!(value["fields"]["message"].is_string(), "{line}");
            value
        })
        .collect()
}

#[test]
fn with_log_format_json_every_stderr_line_of_a_run_is_json_and_the_summary_is_one_of_them() {
    let source = sample_copy();
    let out = tempfile::tempdir().unwrap();
    let summary_file = out.path().join("summary.json");
    let output = run(
        &[
            "analyze",
            "--source",
            source.path().to_str().unwrap(),
            "--out",
            out.path().join("insights").to_str().unwrap(),
            "--summary-json",
            summary_file.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let lines = json_lines(&output.stderr);
    let summaries: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "run summary")
        .collect();
    assert_eq!(summaries.len(), 1, "one summary line: {lines:?}");
    let written: Value = serde_json::from_slice(&std::fs::read(&summary_file).unwrap()).unwrap();
    assert_eq!(summaries[0]["fields"]["summary"], written);
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["fields"]["message"] != "run summary")
    );

    // A failing run: the fatal error is a JSON line too.
    let output = run(
        &[
            "analyze",
            "--source",
            out.path().join("no-such-folder").to_str().unwrap(),
            "--out",
            out.path().join("x").to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let lines = json_lines(&output.stderr);
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("an ERROR line");
    assert!(
        error["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-folder"),
        "{error}"
    );

    // A command line clap refuses, with JSON asked for by the flag or the variable.
    for (args, env) in [
        (
            vec!["analyze", "--log-format=json", "--no-such-flag"],
            vec![],
        ),
        (
            vec!["analyze", "--no-such-flag"],
            vec![("TRAILSIGHT_LOG_FORMAT", "json".to_owned())],
        ),
    ] {
        let output = run(&args, &env);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let lines = json_lines(&output.stderr);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0]["fields"]["message"]
                .as_str()
                .unwrap()
                .contains("--no-such-flag")
        );
    }

    // `report` closes with one JSON summary line as well.
    let output = run(
        &[
            "report",
            "--insights",
            out.path().join("insights").to_str().unwrap(),
            "--html",
            out.path().join("report.html").to_str().unwrap(),
            "--log-format",
            "json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let lines = json_lines(&output.stderr);
    let summary = lines
        .iter()
        .find(|l| l["fields"]["message"] == "report summary")
        .expect("a report summary line");
    assert!(
        summary["fields"]["summary"]["episodes"].as_u64().unwrap() > 0,
        "{summary}"
    );
}

#[test]
fn plain_logs_are_coloured_only_when_asked_off_a_terminal() {
    let out = tempfile::tempdir().unwrap();
    let sample = repo_path("sample-data");
    let args = [
        "analyze",
        "--source",
        sample.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--to",
        "2019-10-31",
    ];
    // (environment, coloured)
    let cases: [(&[(&str, &str)], bool); 4] = [
        (&[], false),
        (&[("CLICOLOR_FORCE", "1")], true),
        (&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")], false),
        (&[("CLICOLOR_FORCE", "0")], false),
    ];
    for (env, coloured) in cases {
        let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let output = run(&args, &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{env:?}: {stderr}");
        assert!(stderr.contains("INFO"), "{stderr}");
        assert_eq!(stderr.contains("\u{1b}["), coloured, "{env:?}: {stderr}");
    }
}

#[test]
fn a_dash_writes_the_summary_to_stdout_and_variables_stand_for_flags() {
    let out = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "TRAILSIGHT_SOURCE",
            repo_path("sample-data").display().to_string(),
        ),
        ("TRAILSIGHT_OUT", out.path().display().to_string()),
        ("TRAILSIGHT_FORMAT", "json".to_owned()),
        ("TRAILSIGHT_QUIET", "true".to_owned()),
    ];
    let output = run(&["analyze", "--summary-json", "-"], &env);
    assert!(output.status.success(), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).expect("the summary on stdout");
    assert_eq!(
        summary["parquet_files_written"], 0,
        "TRAILSIGHT_FORMAT=json"
    );
    assert!(summary["files_written"].as_u64().unwrap() > 0, "{summary}");
    assert!(!out.path().join("-").exists());
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("days analysed"),
        "TRAILSIGHT_QUIET: no table"
    );
}

/// `report --html -` writes the page to stdout (a pipe into a mailer or an upload), nothing
/// named `-`, and the same bytes as a page written to a file.
#[test]
fn report_html_dash_writes_the_page_to_stdout() {
    let out = tempfile::tempdir().unwrap();
    let sample = repo_path("sample-data");
    let analysed = run(
        &[
            "analyze",
            "--source",
            sample.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(analysed.status.success(), "{analysed:?}");
    let page = out.path().join("page.html");
    let report = |html: &str| {
        run(
            &[
                "report",
                "--insights",
                out.path().to_str().unwrap(),
                "--html",
                html,
                "-q",
            ],
            &[],
        )
    };
    let to_stdout = report("-");
    assert!(to_stdout.status.success(), "{to_stdout:?}");
    let to_file = report(page.to_str().unwrap());
    assert!(to_file.status.success(), "{to_file:?}");
    let text = String::from_utf8_lossy(&to_stdout.stdout);
    assert!(text.starts_with("<!DOCTYPE html>") || text.starts_with("<!doctype html>"));
    assert!(
        text.contains("ApiCallRateInsight"),
        "the page, with its Insights"
    );
    assert!(!std::env::current_dir().unwrap().join("-").exists());
    assert!(!out.path().join("-").exists());
    assert!(
        std::fs::read(&page).unwrap() == to_stdout.stdout,
        "the same page either way"
    );
}

#[test]
fn help_groups_options_and_completions_and_the_man_page_come_from_the_same_definitions() {
    let output = run(&["nightly", "--help"], &[]);
    let help = String::from_utf8_lossy(&output.stdout);
    let heading = |name: &str| {
        help.find(&format!("\n{name}:\n"))
            .unwrap_or_else(|| panic!("{name}: {help}"))
    };
    let (days, s3) = (heading("Days and state"), heading("S3 and AWS"));
    for flag in ["--state", "--first-day", "--as-of"] {
        let at = help.find(&format!("\n      {flag} ")).unwrap();
        assert!(
            at > days && (s3 < days || at < s3),
            "{flag} under Days and state: {help}"
        );
    }
    for flag in ["--profile", "--ca-bundle", "--endpoint-url"] {
        assert!(
            help.find(&format!("\n      {flag} ")).unwrap() > s3,
            "{flag}: {help}"
        );
    }
    assert!(help.contains("[env: TRAILSIGHT_STATE=]"), "{help}");
    assert!(help.contains("[env: AWS_PROFILE="), "{help}");

    for shell in ["bash", "zsh", "fish"] {
        let output = run(&["completions", shell], &[]);
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{shell}: {output:?}");
        for word in ["trailsight", "nightly", "summary-json"] {
            assert!(script.contains(word), "{shell}: {word}");
        }
    }
    let output = run(&["man"], &[]);
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for word in [".TH trailsight", "trailsight\\-nightly", "\\-\\-as\\-of"] {
        assert!(page.contains(word), "{word} not in the man page");
    }
}

#[test]
fn as_of_takes_a_date_as_its_midnight() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let sample = repo_path("sample-data");
    let output = run(
        &[
            "nightly",
            "--source",
            sample.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--state",
            state.path().to_str().unwrap(),
            "--as-of",
            "2019-11-02",
            "--finalize-after-minutes",
            "0",
            "--summary-json",
            "-",
            "-q",
        ],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["last_day"], "2019-11-01", "{summary}");
}

/// A night replayed with an `--as-of` after the host's clock would analyse days still to come
/// and move the state past them, so every real night after it would do nothing: it is refused
/// before anything is read or written. A state already ahead of the night's last ended day
/// (a replay of an earlier night here) is said in a warning, with the day it is at.
#[test]
fn a_future_as_of_is_refused_and_a_state_ahead_of_the_night_is_named() {
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let sample = repo_path("sample-data");
    let night = |as_of: &str| {
        run(
            &[
                "nightly",
                "--source",
                sample.to_str().unwrap(),
                "--out",
                out.path().to_str().unwrap(),
                "--state",
                state.path().to_str().unwrap(),
                "--first-day",
                "2019-11-08",
                "--as-of",
                as_of,
            ],
            &[],
        )
    };
    let future = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let refused = night(&future);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is after this host's clock"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "nothing was saved"
    );

    let done = night("2019-11-10T02:00:00Z");
    assert!(done.status.success(), "{done:?}");
    let earlier = night("2019-11-06T02:00:00Z");
    let stderr = String::from_utf8_lossy(&earlier.stderr);
    assert!(earlier.status.success(), "{stderr}");
    assert!(
        stderr.contains("is analysed through 2019-11-09, after 2019-11-05"),
        "{stderr}"
    );
}

/// A test S3 server holding the sample under `cloudtrail`, and its environment without the
/// credentials and region (each test adds its own).
fn sample_bucket() -> (S3Server, Vec<(&'static str, String)>) {
    let server = S3Server::start(&["cloudtrail", "insights"]);
    server.upload_tree(&repo_path("sample-data"), "cloudtrail", "");
    let mut env = server.env();
    env.retain(|(k, _)| {
        !matches!(
            *k,
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_REGION"
        )
    });
    (server, env)
}

fn analyze_s3(env: &[(&'static str, String)], extra: &[&str]) -> Output {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "analyze",
        "--source",
        "s3://cloudtrail",
        "--out",
        out.path().to_str().unwrap(),
        "--force-path-style",
        "--retry-base-delay-ms",
        "5",
        "--max-attempts",
        "2",
        "--to",
        "2019-10-31",
        "-q",
    ];
    args.extend_from_slice(extra);
    let env: Vec<(&str, String)> = env.to_vec();
    run(&args, &env)
}

fn with_keys(env: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = env.to_vec();
    env.extend([
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
    ]);
    env
}

#[test]
fn profile_picks_credentials_and_region_from_the_shared_files_and_a_missing_one_is_named() {
    let (_server, mut env) = sample_bucket();
    let files = tempfile::tempdir().unwrap();
    let config = files.path().join("config");
    let credentials = files.path().join("credentials");
    std::fs::write(&config, format!("[profile audit]\nregion = {REGION}\n")).unwrap();
    std::fs::write(
        &credentials,
        format!(
            "[audit]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    env.retain(|(k, _)| !k.starts_with("AWS_CONFIG_FILE") && !k.starts_with("AWS_SHARED"));
    env.push(("AWS_CONFIG_FILE", config.display().to_string()));
    env.push((
        "AWS_SHARED_CREDENTIALS_FILE",
        credentials.display().to_string(),
    ));

    let output = analyze_s3(&env, &["--profile", "audit"]);
    assert!(output.status.success(), "--profile: {output:?}");
    let mut by_variable = env.clone();
    by_variable.push(("AWS_PROFILE", "audit".to_owned()));
    let output = analyze_s3(&by_variable, &[]);
    assert!(output.status.success(), "AWS_PROFILE: {output:?}");

    let output = analyze_s3(&env, &["--profile", "adit"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"adit\"") && stderr.contains("there are: audit"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET_KEY), "{stderr}");
}

/// A forward proxy on 127.0.0.1: reads a request's head, counts it, connects to the host its
/// absolute URI (or CONNECT) names on 127.0.0.1, and relays both ways.
fn forward_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || relay(client, &seen));
        }
    });
    (address, count)
}

fn relay(mut client: TcpStream, seen: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    seen.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut parts = text.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authority = match method {
        "CONNECT" => target.to_owned(),
        _ => target
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned(),
    };
    assert!(
        authority.starts_with("127.0.0.1:") || authority.starts_with("localhost:"),
        "{text}"
    );
    let Ok(mut upstream) = TcpStream::connect(&authority) else {
        return;
    };
    if method == "CONNECT" {
        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    } else {
        let _ = upstream.write_all(&head);
    }
    let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

#[test]
fn requests_go_through_the_proxy_of_http_proxy_unless_no_proxy_names_the_host() {
    let (_server, env) = sample_bucket();
    let (proxy, count) = forward_proxy();
    let mut proxied = with_keys(&env);
    proxied.push(("HTTP_PROXY", proxy.clone()));
    proxied.push(("NO_PROXY", String::new()));
    let output = analyze_s3(&proxied, &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        count.load(Ordering::SeqCst) > 0,
        "no request reached the proxy"
    );

    let before = count.load(Ordering::SeqCst);
    let mut bypassed = with_keys(&env);
    bypassed.push(("http_proxy", proxy));
    bypassed.push(("no_proxy", "127.0.0.1".to_owned()));
    let output = analyze_s3(&bypassed, &[]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        before,
        "NO_PROXY bypasses the proxy"
    );
}

/// A certificate authority and a server certificate for localhost and 127.0.0.1 signed by it,
/// made by `openssl` in `dir`: (CA PEM path, server chain PEM, server key PEM).
fn certificates(dir: &Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian's openssl package) makes the test certificates");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &[
                "req",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=trailsight test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ][..],
            &ec,
        ]
        .concat(),
    );
    openssl(
        &[
            &[
                "req",
                "-subj",
                "/CN=localhost",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ][..],
            &ec,
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        std::fs::read(dir.join("server.pem")).unwrap(),
        std::fs::read(dir.join("server.key")).unwrap(),
    )
}

/// A TLS front on 127.0.0.1 for the plain-HTTP server at `upstream` (`http://HOST:PORT`);
/// counts completed handshakes. Runs on its own runtime, kept alive by the returned value.
fn tls_front(
    upstream: &str,
    chain: &[u8],
    key: &[u8],
) -> (String, Arc<AtomicUsize>, tokio::runtime::Runtime) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let handshakes = count.clone();
    let port = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (acceptor, upstream, handshakes) =
                    (acceptor.clone(), upstream.clone(), handshakes.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    handshakes.fetch_add(1, Ordering::SeqCst);
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        port
    });
    (format!("https://localhost:{port}"), count, runtime)
}

#[test]
fn a_ca_bundle_from_the_flag_or_aws_ca_bundle_is_trusted_and_without_it_tls_fails() {
    let (server, env) = sample_bucket();
    let dir = tempfile::tempdir().unwrap();
    let (ca, chain, key) = certificates(dir.path());
    let (endpoint, handshakes, _runtime) = tls_front(&server.endpoint, &chain, &key);
    let mut env = with_keys(&env);
    env.retain(|(k, _)| *k != "AWS_ENDPOINT_URL");
    env.push(("AWS_ENDPOINT_URL", endpoint));

    let output = analyze_s3(&env, &[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an unknown CA is refused: {output:?}"
    );
    assert_eq!(handshakes.load(Ordering::SeqCst), 0);

    let output = analyze_s3(&env, &["--ca-bundle", ca.to_str().unwrap()]);
    assert!(output.status.success(), "--ca-bundle: {output:?}");
    let after_flag = handshakes.load(Ordering::SeqCst);
    assert!(after_flag > 0);

    let mut by_variable = env.clone();
    by_variable.push(("AWS_CA_BUNDLE", ca.display().to_string()));
    let output = analyze_s3(&by_variable, &[]);
    assert!(output.status.success(), "AWS_CA_BUNDLE: {output:?}");
    assert!(handshakes.load(Ordering::SeqCst) > after_flag);

    // A bundle that is not one is named, not a panic.
    let output = analyze_s3(
        &env,
        &[
            "--ca-bundle",
            dir.path().join("server.ext").to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("server.ext") && stderr.contains("no certificate"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
