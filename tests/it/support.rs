//! Helpers shared by the integration tests: building CloudTrail trees, running the binary,
//! reading the Insights it wrote.

use flate2::{Compression, write::GzEncoder};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const ACCOUNT: &str = "123456789012";
pub const OTHER_ACCOUNT: &str = "210987654321";

/// A temporary directory laid out like a CloudTrail bucket.
pub struct Tree {
    pub dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `{"Records":[...]}` gzipped at `key`.
    pub fn write_log(&self, key: &str, records: &[Value]) {
        self.write_raw(
            key,
            &gzip(json!({ "Records": records }).to_string().as_bytes()),
        );
    }

    pub fn write_raw(&self, key: &str, bytes: &[u8]) {
        let path = self.dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// A sparse file of `len` bytes at `path` (zeros, taking no disk space): an object that is
/// huge by its size only.
pub fn sparse_file(path: &Path, len: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `[prefix]AWSLogs/[org/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_<stamp>_<unique>.json.gz`
pub fn log_key(
    prefix: &str,
    org: Option<&str>,
    account: &str,
    region: &str,
    day: &str,
    unique: &str,
) -> String {
    let org = org.map(|o| format!("{o}/")).unwrap_or_default();
    let folder = day.replace('-', "/");
    let stamp = day.replace('-', "");
    format!(
        "{prefix}AWSLogs/{org}{account}/CloudTrail/{region}/{folder}/{account}_CloudTrail_{region}_{stamp}T2355Z_{unique}.json.gz"
    )
}

/// A write management call record.
pub fn call(account: &str, region: &str, time: &str, name: &str, id: u64) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": format!("arn:aws:sts::{account}:assumed-role/deployer/session-{id}"),
            "accountId": account
        },
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.13.0",
        "requestParameters": {"instanceType": "t3.micro"},
        "responseElements": null,
        "requestID": format!("req-{id}"),
        "eventID": format!("{}-0000-4000-8000-{id:012}", &account[4..]),
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management"
    })
}

/// `minute` minutes after midnight of `day`, plus `second` seconds, as an eventTime.
pub fn at(day: &str, minute: u32, second: u32) -> String {
    format!("{day}T{:02}:{:02}:{:02}Z", minute / 60, minute % 60, second)
}

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stderr: String,
    pub summary: Value,
}

pub fn trailsight(args: &[&str]) -> Run {
    trailsight_env::<&str>(args, &[])
}

const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// Run the binary with extra environment variables.
pub fn trailsight_env<V: AsRef<std::ffi::OsStr>>(args: &[&str], env: &[(&str, V)]) -> Run {
    let summary_file = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailsight"));
    command
        .args(args)
        .arg("--summary-json")
        .arg(summary_file.path())
        .env("RUST_LOG", "warn");
    // The tests' servers are on 127.0.0.1: a developer's own proxy must not see their traffic
    // (a test of proxies sets its own).
    for proxy in PROXY_VARIABLES {
        command.env_remove(proxy);
    }
    let output = command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run trailsight");
    let summary = std::fs::read(summary_file.path())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    Run {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        summary,
    }
}

pub fn analyze(source: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "analyze",
        "--source",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    trailsight(&args)
}

/// Every file under `dir`, by relative path, with its bytes; without the runs' records
/// (`_trailsight/runs/`), which name each run's own start time.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out.retain(|k, _| !k.starts_with("_trailsight/runs/"));
    out
}

/// The `Records` of a gzip JSON file.
pub fn gunzip_records(bytes: &[u8]) -> Vec<Value> {
    let json = trailsight::decode::gzip::gunzip_capped(bytes, 1 << 30).unwrap();
    let v: Value = serde_json::from_slice(&json).unwrap();
    v["Records"].as_array().cloned().unwrap_or_default()
}

/// Every Insight record written under `out`, with the key of its file.
pub fn insights(out: &Path) -> Vec<(String, Value)> {
    files(out)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".json.gz"))
        .flat_map(|(k, bytes)| {
            gunzip_records(&bytes)
                .into_iter()
                .map(move |r| (k.clone(), r))
        })
        .collect()
}

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The test environment's Python: the project's `.venv-test/` (which scripts/test prepares
/// from scripts/test-requirements.txt) when it is there, else `python3` on PATH.
pub fn python() -> PathBuf {
    let venv = repo_path(".venv-test/bin/python3");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// Run one of the Python helpers in `tests/tools/` and return its stdout. Python packages come
/// from scripts/test-requirements.txt (installed by scripts/test); a missing one fails the test
/// with the helper's own message saying so, never skips it.
pub fn python_tool(script: &str, args: &[&str], stdin: &[u8]) -> String {
    use std::process::Stdio;
    let path = repo_path("tests/tools").join(script);
    let mut child = Command::new(python())
        .arg(&path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start python3 for {script}: {e}; install Python 3 and run scripts/test")
        });
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{}\n(run the tests with scripts/test, which installs scripts/test-requirements.txt)",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The exit code, stdout and stderr of the binary run with exactly `args`.
pub fn run_binary(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_trailsight"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run trailsight");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// What `report` did: its exit code, its stderr, and the page it wrote (empty when none).
pub struct Report {
    pub code: i32,
    pub stderr: String,
    pub page: String,
}

/// `report --insights out --html html` plus `extra`.
pub fn run_report(out: &Path, html: &Path, extra: &[&str]) -> Report {
    let mut args = vec![
        "report",
        "--insights",
        out.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, _, stderr) = run_binary(&args);
    Report {
        code,
        stderr,
        page: std::fs::read_to_string(html).unwrap_or_default(),
    }
}

/// `analyze` the real attack simulation (`tests/fixtures/real-cloudtrail/invictus`, filed under
/// account folder 218007301253, its records saying 123837392027) into `dir/out`: with no
/// warm-up when `fires`, so its hour of logs opens Insights, else with the defaults, under which
/// it opens none. Returns (logs, out).
pub fn invictus_run(dir: &Path, fires: bool) -> (PathBuf, PathBuf) {
    let logs = repo_path("tests/fixtures/real-cloudtrail/invictus");
    let config = dir.join("detector.toml");
    std::fs::write(&config, "[detector]\nwarmup_minutes = 0\n").unwrap();
    let extra = ["--config", config.to_str().unwrap()];
    let out = dir.join("out");
    let run = analyze(&logs, &out, if fires { &extra } else { &[] });
    assert_eq!(run.code, 0, "{}", run.stderr);
    (logs, out)
}
