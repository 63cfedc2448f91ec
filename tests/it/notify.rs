//! Notifications against real servers on 127.0.0.1: moto's standalone AWS server (an
//! EventBridge rule with an SQS target, an SNS topic with an SQS subscription, read back from
//! SQS), a local webhook receiver, and the fault-injecting proxy in front of moto for
//! throttling and 5xx. Each Insight record arrives once on each channel; re-runs, backfills
//! and nightly runs over the same days send nothing more; a failed delivery is sent once by the
//! next run.

use crate::s3_server::{Fault, S3Server, Seen};
use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The secret part of the test webhook's URL: it must never appear in logs or outputs.
const WEBHOOK_SECRET: &str = "T0TRAILSIGHT/B0TEST/s3cr3tW3bh00kPath";

/// moto's server, stopped on drop.
struct Moto {
    address: SocketAddr,
    endpoint: String,
    child: Child,
}

impl Moto {
    fn start() -> Moto {
        let venv = repo_path(".venv-test/bin/moto_server");
        let program = if venv.exists() {
            venv
        } else {
            "moto_server".into()
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {}: {e}; run the tests with scripts/test, which installs moto[server] (scripts/test-requirements.txt)", program.display())
            });
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(address).is_err() {
            assert!(Instant::now() < deadline, "moto's server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            address,
            endpoint: format!("http://{address}"),
            child,
        }
    }

    /// The rule, topic and queues; their names.
    fn setup(&self) -> Value {
        serde_json::from_str(&python_tool("moto_aws.py", &["setup", &self.endpoint], b"")).unwrap()
    }

    /// Every message waiting in a queue (removed), each body decoded.
    fn drain(&self, queue: &Value) -> Vec<Value> {
        let out = python_tool(
            "moto_aws.py",
            &["drain", &self.endpoint, queue.as_str().unwrap()],
            b"",
        );
        let bodies: Vec<String> = serde_json::from_str(&out).unwrap();
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).unwrap())
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A webhook receiver: keeps every body it accepted, and answers chosen statuses first.
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Default)]
struct ReceiverState {
    accepted: Vec<Value>,
    requests: usize,
    /// Statuses to answer next, in order, before accepting again.
    answers: VecDeque<u16>,
    /// Answer this to everything, when set.
    always: Option<u16>,
    /// Take each request and never answer it.
    hang: bool,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let shared = state.clone();
        let address = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            receive(request, state.clone())
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(socket), service)
                            .await;
                    });
                }
            });
            address
        });
        Receiver {
            url: format!("http://{address}/services/{WEBHOOK_SECRET}"),
            state,
            _runtime: runtime,
        }
    }

    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut self.state.lock().unwrap().accepted)
    }

    fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }
}

async fn receive(
    request: Request<Incoming>,
    state: Arc<Mutex<ReceiverState>>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let path = request.uri().path().to_owned();
    let json = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/json");
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let hang = {
        let mut state = state.lock().unwrap();
        state.requests += 1;
        state.hang
    };
    if hang {
        std::future::pending::<()>().await;
    }
    let mut state = state.lock().unwrap();
    let status = state.always.or_else(|| state.answers.pop_front());
    if let Some(status) = status {
        let mut response = Response::new(Full::new(Bytes::from_static(b"try later")));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        if status == 429 {
            response
                .headers_mut()
                .insert("retry-after", "0".parse().unwrap());
        }
        return Ok(response);
    }
    assert_eq!(path, format!("/services/{WEBHOOK_SECRET}"));
    assert!(json, "the webhook is sent JSON");
    state
        .accepted
        .push(serde_json::from_slice(&body).expect("a JSON body"));
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// What trailsight needs to reach `endpoint` with moto's test credentials, and nothing else.
fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_SESSION_TOKEN", String::new()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
    ]
}

fn sample() -> std::path::PathBuf {
    repo_path("sample-data")
}

/// Every Insight record written under `out`, by eventID.
fn written(out: &Path) -> BTreeMap<String, Value> {
    let records: BTreeMap<String, Value> = insights(out)
        .into_iter()
        .map(|(_, r)| (r["eventID"].as_str().unwrap().to_owned(), r))
        .collect();
    assert!(!records.is_empty(), "sample-data gives Insights");
    records
}

/// The eventIDs of notices, each expected once: a repeat fails.
fn once_each(ids: impl IntoIterator<Item = String>, channel: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for id in ids {
        assert!(seen.insert(id.clone()), "{channel}: {id} arrived twice");
    }
    seen
}

/// EventBridge events read from the rule's queue: CloudTrail's shape, the record as the detail.
fn eventbridge_ids(events: &[Value], records: &BTreeMap<String, Value>) -> BTreeSet<String> {
    let ids = events.iter().map(|e| {
        assert_eq!(e["detail-type"], "AWS Insight via CloudTrail", "{e}");
        assert_eq!(e["source"], "trailsight", "{e}");
        let id = e["detail"]["eventID"].as_str().unwrap().to_owned();
        assert_eq!(
            e["detail"], records[&id],
            "the detail is the record as written"
        );
        assert_eq!(e["time"], records[&id]["eventTime"], "{e}");
        id
    });
    once_each(ids.collect::<Vec<_>>(), "eventbridge")
}

/// SNS notifications read from the subscribed queue: the record as the message, a subject,
/// filterable attributes.
fn sns_ids(notifications: &[Value], records: &BTreeMap<String, Value>) -> BTreeSet<String> {
    let ids = notifications.iter().map(|n| {
        let record: Value = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
        let id = record["eventID"].as_str().unwrap().to_owned();
        assert_eq!(record, records[&id]);
        let d = &record["insightDetails"];
        let subject = n["Subject"].as_str().unwrap();
        let service = d["eventSource"]
            .as_str()
            .unwrap()
            .trim_end_matches(".amazonaws.com");
        assert!(
            subject.starts_with(&format!(
                "{} {}: {service} {}",
                d["insightType"].as_str().unwrap(),
                d["state"].as_str().unwrap(),
                d["eventName"].as_str().unwrap()
            )),
            "{subject}"
        );
        assert!(subject.len() <= 100, "{subject}");
        let attributes = &n["MessageAttributes"];
        for (name, value) in [
            ("insightType", &d["insightType"]),
            ("state", &d["state"]),
            ("eventSource", &d["eventSource"]),
            ("eventName", &d["eventName"]),
            ("account", &record["recipientAccountId"]),
            ("region", &record["awsRegion"]),
            ("sourceEventCategory", &d["sourceEventCategory"]),
        ] {
            assert_eq!(&attributes[name]["Value"], value, "{name} of {n}");
        }
        id
    });
    once_each(ids.collect::<Vec<_>>(), "sns")
}

/// Webhook bodies: one readable line, and the record.
fn webhook_ids(bodies: &[Value], records: &BTreeMap<String, Value>) -> BTreeSet<String> {
    let ids = bodies.iter().map(|b| {
        let id = b["record"]["eventID"].as_str().unwrap().to_owned();
        assert_eq!(b["record"], records[&id]);
        let text = b["text"].as_str().unwrap();
        assert!(
            !text.contains('\n') && text.contains("CloudTrail Insight"),
            "{text}"
        );
        assert!(
            text.contains(
                records[&id]["insightDetails"]["eventName"]
                    .as_str()
                    .unwrap()
            )
        );
        id
    });
    once_each(ids.collect::<Vec<_>>(), "webhook")
}

/// The summary's new records, by eventID.
fn new_in_summary(run: &Run) -> BTreeSet<String> {
    run.summary["new_insight_records"]
        .as_array()
        .unwrap_or_else(|| panic!("no new_insight_records in {}", run.summary))
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Neither the log nor the summary nor any output file holds the webhook's secret path.
fn assert_secret_kept(run: &Run, out: &Path) {
    assert!(!run.stderr.contains(WEBHOOK_SECRET), "{}", run.stderr);
    assert!(!run.summary.to_string().contains(WEBHOOK_SECRET));
    for (key, bytes) in files(out) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(WEBHOOK_SECRET), "{key}");
    }
}

/// The IAM action a notification request needs, and the resource it names.
fn notify_action(seen: &Seen) -> (String, String) {
    if let Some(target) = seen.headers.get("x-amz-target") {
        let action = target
            .strip_prefix("AWSEvents.")
            .expect("an EventBridge call");
        let body: Value = serde_json::from_slice(&seen.body).unwrap();
        let bus = body["Entries"][0]["EventBusName"].as_str().unwrap();
        return (format!("events:{action}"), bus.to_owned());
    }
    let form = String::from_utf8_lossy(&seen.body).into_owned();
    let field = |name: &str| {
        form.split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(|v| v.replace("%3A", ":"))
            .unwrap_or_default()
    };
    (format!("sns:{}", field("Action")), field("TopicArn"))
}

/// The README's notification policy: (action, resource) pairs with placeholders filled in.
fn readme_notify_grants(bus_arn: &str, topic_arn: &str) -> BTreeSet<(String, String)> {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let section = &readme[readme.find("#### IAM policy for notifications").unwrap()..];
    let start = section.find("```json\n").unwrap() + "```json\n".len();
    let json = section[start..start + section[start..].find("```").unwrap()]
        .replace("BUS-ARN", bus_arn)
        .replace("TOPIC-ARN", topic_arn);
    let policy: Value = serde_json::from_str(&json).expect("the README's policy is JSON");
    let mut grants = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        let action = statement["Action"].as_str().unwrap().to_owned();
        grants.insert((action, statement["Resource"].as_str().unwrap().to_owned()));
    }
    grants
}

#[test]
fn each_new_record_arrives_once_on_each_channel_and_later_runs_send_nothing_more() {
    let moto = Moto::start();
    let names = moto.setup();
    // EventBridge and SNS go through the fault proxy: the first two PutEvents are throttled.
    let proxy = S3Server::proxy_to(moto.address);
    proxy.fault("POST", "/", Fault::Error(400, "ThrottlingException"), 2);
    let receiver = Receiver::start();
    receiver.state.lock().unwrap().answers = [429, 503].into();
    let out = tempfile::tempdir().unwrap();
    let args = |command: &str| -> Vec<String> {
        [
            command,
            "--source",
            sample().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--notify-eventbridge",
            "default",
            "--notify-sns",
            names["topic_arn"].as_str().unwrap(),
            "--notify-webhook",
            &receiver.url,
            "--retry-base-delay-ms",
            "1",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let env = aws_env(&proxy.endpoint);
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        trailsight_env(&args, &env)
    };
    let first = run(args("analyze"));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let records = written(out.path());
    let ids: BTreeSet<String> = records.keys().cloned().collect();
    assert_eq!(proxy.faults_applied(), 2, "both throttles were met");
    assert_eq!(
        eventbridge_ids(&moto.drain(&names["eventbridge_queue"]), &records),
        ids
    );
    assert_eq!(sns_ids(&moto.drain(&names["sns_queue"]), &records), ids);
    assert_eq!(webhook_ids(&receiver.take(), &records), ids);
    assert_eq!(
        receiver.requests(),
        ids.len() + 2,
        "a 429 and a 503, then each once"
    );
    assert_eq!(new_in_summary(&first), ids);
    let n = ids.len() as u64;
    assert_eq!(
        first.summary["notifications"]["published"],
        serde_json::json!({"eventbridge": n, "sns": n, "webhook": n})
    );
    assert_eq!(
        first.summary["notifications"]["failed"],
        serde_json::json!([])
    );
    assert_secret_kept(&first, out.path());
    eprintln!(
        "first run's notifications: {}",
        first.summary["notifications"]
    );

    // Every call is allowed by the README's notification policy, and every grant is used.
    let grants = readme_notify_grants(
        names["bus_arn"].as_str().unwrap(),
        names["topic_arn"].as_str().unwrap(),
    );
    let used: BTreeSet<(String, String)> = proxy
        .take_seen()
        .iter()
        .map(|seen| {
            let (action, resource) = notify_action(seen);
            // A bus named by name is the account's bus of that name.
            let resource = match resource.as_str() {
                "default" => names["bus_arn"].as_str().unwrap().to_owned(),
                _ => resource,
            };
            (action, resource)
        })
        .collect();
    assert_eq!(used, grants, "calls made vs the README's grants");

    // An identical re-run publishes nothing and finds nothing new.
    let again = run(args("analyze"));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(new_in_summary(&again).is_empty());
    assert_eq!(
        again.summary["notifications"]["published"],
        serde_json::json!({})
    );

    // A nightly sequence over the same days (its own state, the same output) neither.
    let day = |v: &Value| chrono::NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d");
    let (first_day, last_day) = (
        day(&first.summary["first_day"]).unwrap(),
        day(&first.summary["last_day"]).unwrap(),
    );
    let state = tempfile::tempdir().unwrap();
    let mut night = first_day;
    while night <= last_day {
        let mut nightly = args("nightly");
        nightly.extend([
            "--state".to_owned(),
            state.path().to_str().unwrap().to_owned(),
            "--as-of".to_owned(),
            format!("{}T02:00:00Z", night + chrono::Duration::days(1)),
        ]);
        if night == first_day {
            nightly.extend(["--first-day".to_owned(), first_day.to_string()]);
        }
        let run = run(nightly);
        assert_eq!(run.code, 0, "{night}: {}", run.stderr);
        assert!(new_in_summary(&run).is_empty(), "{night}: {}", run.summary);
        night += chrono::Duration::days(1);
    }
    assert!(moto.drain(&names["eventbridge_queue"]).is_empty());
    assert!(moto.drain(&names["sns_queue"]).is_empty());
    assert!(receiver.take().is_empty());
    assert_eq!(written(out.path()), records, "the same Insights throughout");
}

#[test]
fn a_failed_delivery_is_counted_kept_and_sent_once_by_the_next_run() {
    let moto = Moto::start();
    let names = moto.setup();
    let proxy = S3Server::proxy_to(moto.address);
    // EventBridge fails with 500s past the retries; the webhook works.
    proxy.fault("POST", "/", Fault::Error(500, "InternalFailure"), 1000);
    let receiver = Receiver::start();
    let out = tempfile::tempdir().unwrap();
    let source = sample();
    let args = [
        "analyze",
        "--source",
        source.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--notify-eventbridge",
        "default",
        "--notify-webhook",
        &receiver.url,
        "--max-attempts",
        "2",
        "--retry-base-delay-ms",
        "1",
    ];
    let env = aws_env(&proxy.endpoint);
    let first = trailsight_env(&args, &env);
    assert_eq!(first.code, 5, "a failed delivery exits 5: {}", first.stderr);
    let records = written(out.path());
    let ids: BTreeSet<String> = records.keys().cloned().collect();
    let failed = first.summary["notifications"]["failed"].as_array().unwrap();
    let failed_ids: BTreeSet<String> = failed
        .iter()
        .map(|f| {
            assert_eq!(f["channel"], "eventbridge", "{f}");
            assert!(f["error"].as_str().unwrap().contains("500"), "{f}");
            f["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        failed_ids, ids,
        "every record's EventBridge delivery is named"
    );
    // Once the bus failed for good, the run stops trying it: one batch, two attempts.
    assert_eq!(proxy.faults_applied(), 2);
    assert!(moto.drain(&names["eventbridge_queue"]).is_empty());
    assert_eq!(webhook_ids(&receiver.take(), &records), ids);
    assert_eq!(new_in_summary(&first), ids);
    let pending = files(out.path())
        .into_keys()
        .filter(|k| k.starts_with("_trailsight/notifications/pending/"))
        .count();
    assert!(pending > 0, "the failures are kept in the output's outbox");
    assert!(
        first.stderr.contains("kept for the next run"),
        "{}",
        first.stderr
    );

    // The next run, with the bus back: the kept events go out once, the webhook gets nothing
    // again, and nothing is new.
    proxy.clear_faults();
    let second = trailsight_env(&args, &env);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        eventbridge_ids(&moto.drain(&names["eventbridge_queue"]), &records),
        ids
    );
    assert!(receiver.take().is_empty());
    assert!(new_in_summary(&second).is_empty());
    assert_eq!(
        second.summary["notifications"]["published"],
        serde_json::json!({"eventbridge": ids.len()})
    );
    assert!(
        !files(out.path())
            .keys()
            .any(|k| k.starts_with("_trailsight/notifications/pending/")),
        "the outbox is emptied"
    );
    let third = trailsight_env(&args, &env);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(moto.drain(&names["eventbridge_queue"]).is_empty());
    assert!(receiver.take().is_empty());
    assert_secret_kept(&third, out.path());
}

#[test]
fn a_webhook_that_keeps_failing_is_retried_by_the_next_run_without_resending_the_rest() {
    let receiver = Receiver::start();
    receiver.state.lock().unwrap().always = Some(503);
    let out = tempfile::tempdir().unwrap();
    let source = sample();
    let args = [
        "analyze",
        "--source",
        source.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--notify-webhook",
        &receiver.url,
        "--max-attempts",
        "3",
        "--retry-base-delay-ms",
        "1",
    ];
    let first = trailsight(&args);
    assert_eq!(first.code, 5, "a failed delivery exits 5: {}", first.stderr);
    assert_eq!(
        receiver.requests(),
        3,
        "one notice, three attempts, then the channel is down"
    );
    assert_secret_kept(&first, out.path());
    let records = written(out.path());
    receiver.state.lock().unwrap().always = None;
    let second = trailsight(&args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let ids: BTreeSet<String> = records.keys().cloned().collect();
    assert_eq!(webhook_ids(&receiver.take(), &records), ids);
    // A run that analyses nothing new still delivers what waits: here, nothing is left.
    let third = trailsight(&args);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(receiver.take().is_empty());
}

/// A webhook that takes the POST and never answers must not hold a run asked to stop: SIGTERM
/// ends it within seconds, not after the request's timeout and its retries (2.5 minutes by
/// default, past Kubernetes' grace period), with its lock released and the notices kept; the
/// next run delivers each record once.
#[test]
fn a_stop_does_not_wait_for_a_webhook_that_never_answers() {
    let receiver = Receiver::start();
    receiver.state.lock().unwrap().hang = true;
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let source = sample();
    let args = [
        "analyze",
        "--source",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--notify-webhook",
        &receiver.url,
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_trailsight"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while receiver.requests() == 0 {
        assert!(Instant::now() < deadline, "no notice was sent");
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: the pid is our own child's, which has not been waited for.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let signalled = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if signalled.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the run was still waiting on the webhook 20 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by signal"), "{stderr}");
    assert!(
        !state.join("trailsight-state.lock").exists(),
        "the lock is released"
    );
    assert_eq!(
        receiver.requests(),
        1,
        "nothing more was sent after the stop"
    );

    receiver.state.lock().unwrap().hang = false;
    let run = trailsight(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let records = written(&out);
    let ids: BTreeSet<String> = records.keys().cloned().collect();
    assert_eq!(webhook_ids(&receiver.take(), &records), ids);
}

#[test]
fn a_withheld_partition_is_announced_once_as_a_finding_and_its_records_once_it_is_read() {
    let server = S3Server::start(&["cloudtrail"]);
    server.upload_tree(&sample(), "cloudtrail", "");
    // Every object of one day folder of one partition fails, past the retries.
    let folder = "/cloudtrail/AWSLogs/o-a1b2c3d4e5/123456789012/CloudTrail/us-east-1/2019/11/07/";
    server.fault("GET", folder, Fault::Error(500, "InternalError"), 100_000);
    let receiver = Receiver::start();
    let out = tempfile::tempdir().unwrap();
    let args = [
        "analyze",
        "--source",
        "s3://cloudtrail",
        "--out",
        out.path().to_str().unwrap(),
        "--force-path-style",
        "--notify-webhook",
        &receiver.url,
        "--max-attempts",
        "2",
        "--retry-base-delay-ms",
        "1",
    ];
    let mut findings = Vec::new();
    let mut records = Vec::new();
    // 3: the partition is withheld (its logs could not all be read).
    for (run, code) in [(1, 3), (2, 3)] {
        let result = trailsight_env(&args, &server.env());
        assert_eq!(result.code, code, "run {run}: {}", result.stderr);
        assert_eq!(
            result.summary["partitions_withheld"],
            serde_json::json!(["123456789012/us-east-1"]),
            "run {run}"
        );
        take(&receiver, &mut findings, &mut records);
    }
    assert_eq!(
        findings.len(),
        1,
        "announced once over two runs: {findings:?}"
    );
    let finding = &findings[0];
    assert_eq!(finding["kind"], "PartitionWithheld");
    assert_eq!(
        (finding["account"].as_str(), finding["region"].as_str()),
        (Some("123456789012"), Some("us-east-1"))
    );
    assert!(finding["findingID"].is_string() && finding["day"].is_string());

    server.clear_faults();
    let last = trailsight_env(&args, &server.env());
    assert_eq!(last.code, 0, "{}", last.stderr);
    take(&receiver, &mut findings, &mut records);
    assert_eq!(findings.len(), 1, "no finding once the logs are read");
    let all: BTreeSet<String> = written(out.path()).into_keys().collect();
    assert_eq!(
        once_each(records, "webhook"),
        all,
        "each record once, over the three runs"
    );
}

/// Webhook bodies received so far, into findings and record IDs.
fn take(receiver: &Receiver, findings: &mut Vec<Value>, records: &mut Vec<String>) {
    for body in receiver.take() {
        assert!(!body["text"].as_str().unwrap().contains('\n'), "{body}");
        match (body.get("finding"), body.get("record")) {
            (Some(f), None) => findings.push(f.clone()),
            (None, Some(r)) => records.push(r["eventID"].as_str().unwrap().to_owned()),
            _ => panic!("neither a finding nor a record: {body}"),
        }
    }
}

/// A trail that goes dark (no log object in any partition's folder for the night's days, as
/// after StopLogging) is announced, not only counted: a DeliveryGap finding for each partition
/// that delivered regularly, once per partition and day, matching the summary's
/// `delivery_gaps`; a night with logs announces nothing.
#[test]
fn a_trail_that_goes_dark_is_announced_per_partition_once() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let (out, state) = (dir.path().join("out"), dir.path().join("state"));
    let webhook = ["--notify-webhook", receiver.url.as_str()];
    let night = |as_of: &str, extra: &[&str]| {
        let flags: Vec<&str> = webhook.iter().chain(extra).copied().collect();
        crate::incremental::nightly(&sample(), &out, &state, as_of, &flags)
    };
    let (mut findings, mut records) = (Vec::new(), Vec::new());
    let run = night("2019-11-10T12:00:00Z", &["--first-day", "2019-11-09"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    take(&receiver, &mut findings, &mut records);
    assert!(findings.is_empty(), "{findings:?}");

    let run = night("2019-11-12T12:00:00Z", &[]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    take(&receiver, &mut findings, &mut records);
    let gaps: BTreeSet<(String, String, String)> = run.summary["delivery_gaps"]
        .as_array()
        .expect("delivery_gaps in the summary")
        .iter()
        .map(|g| {
            let field = |k: &str| g[k].as_str().unwrap().to_owned();
            (field("account"), field("region"), field("day"))
        })
        .collect();
    let days: BTreeSet<&str> = gaps.iter().map(|(_, _, d)| d.as_str()).collect();
    assert_eq!(
        days,
        BTreeSet::from(["2019-11-10", "2019-11-11"]),
        "{gaps:?}"
    );
    assert_eq!(
        gaps.len() / 2,
        run.summary["partitions"].as_u64().unwrap() as usize,
        "every partition of the sample delivers regularly: {gaps:?}"
    );
    let announced: Vec<(String, String, String)> = findings
        .iter()
        .map(|f| {
            assert_eq!(f["kind"], "DeliveryGap", "{f}");
            let field = |k: &str| f[k].as_str().unwrap().to_owned();
            (field("account"), field("region"), field("day"))
        })
        .collect();
    assert_eq!(announced.len(), gaps.len(), "each once: {announced:?}");
    assert_eq!(announced.into_iter().collect::<BTreeSet<_>>(), gaps);
}
