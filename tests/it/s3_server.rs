//! A real S3 server for the tests, on 127.0.0.1: s3s-fs (an S3 implementation over a local
//! directory, with signature checking) behind a small fault-injecting HTTP proxy.
//!
//! trailsight talks to the proxy. The proxy forwards every request unchanged to s3s-fs and
//! records it (method, path, decoded query, headers), so tests can assert which prefixes were
//! listed and which headers were sent. Fault rules answer chosen requests with an S3 error,
//! delay them, drop the connection before answering, or cut the body off halfway.
//!
//! Objects are placed by writing files under `root/BUCKET/KEY` (s3s-fs serves them as they are)
//! and written objects are read back the same way.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub const ACCESS_KEY: &str = "AKIDTRAILSIGHTTEST01";
pub const SECRET_KEY: &str = "trailsight/test/secret/key/0123456789abcd";
pub const REGION: &str = "us-east-1";

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The URL path, percent-decoded: `/bucket/key`.
    pub path: String,
    /// Query parameters, percent-decoded.
    pub query: BTreeMap<String, String>,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The request body (a form or JSON request names its operation there).
    pub body: Bytes,
}

impl Seen {
    /// The prefix of a ListObjectsV2 request, if this is one.
    pub fn list_prefix(&self) -> Option<&str> {
        (self.method == "GET" && self.query.get("list-type").map(String::as_str) == Some("2"))
            .then(|| self.query.get("prefix").map(String::as_str).unwrap_or(""))
    }

    /// The bucket of a path-style request.
    pub fn bucket(&self) -> &str {
        self.path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
    }

    pub fn is_get_object(&self) -> bool {
        self.method == "GET" && !self.query.contains_key("list-type")
    }
}

/// What to do to a request that matches a rule.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and S3 error code, without forwarding.
    Error(u16, &'static str),
    /// Wait, then forward.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Forward, then send the headers and half the body, and reset the connection.
    CutBody,
    /// Forward, then send the body followed by this many more bytes, in 64 KiB chunks and
    /// without a Content-Length: a server sending more than the object it listed.
    Inflate(usize),
    /// Forward (the request takes effect), then close the connection without answering: an
    /// answer lost on the way back.
    LoseAnswer,
}

/// Apply `fault` to the next `times` requests whose method is `method` and whose path and query
/// (percent-decoded) contain every one of `needles`, after letting the first `after` of them through.
#[derive(Debug, Clone)]
struct Rule {
    method: &'static str,
    needles: Vec<String>,
    after: usize,
    fault: Fault,
    times: usize,
}

impl Rule {
    fn matches(&self, method: &hyper::Method, target: &str) -> bool {
        self.times > 0 && self.method == method && self.needles.iter().all(|n| target.contains(n))
    }
}

#[derive(Default)]
struct ProxyState {
    seen: Vec<Seen>,
    rules: Vec<Rule>,
    faults_applied: usize,
    gets: Vec<GetSpan>,
}

/// When the proxy held one GetObject: from the request's arrival to its answer being ready
/// (always inside the time the client waits for, and then holds, the object).
#[derive(Debug, Clone)]
pub struct GetSpan {
    /// `/bucket/key`, percent-decoded.
    pub path: String,
    pub start: Instant,
    pub end: Instant,
}

/// The most GetObject requests the proxy held at once, and the most bytes among them (each
/// request counted at `size(path)`).
pub fn most_in_flight(spans: &[GetSpan], size: impl Fn(&str) -> u64) -> (usize, u64) {
    // Ends sort before starts at the same instant: touching spans do not overlap.
    let mut events: Vec<(Instant, bool, u64)> = spans
        .iter()
        .flat_map(|s| {
            [
                (s.start, true, size(&s.path)),
                (s.end, false, size(&s.path)),
            ]
        })
        .collect();
    events.sort_by_key(|(at, starts, _)| (*at, *starts));
    let (mut count, mut bytes, mut most) = (0usize, 0u64, (0usize, 0u64));
    for (_, starts, size) in events {
        if starts {
            count += 1;
            bytes += size;
            most = (most.0.max(count), most.1.max(bytes));
        } else {
            count -= 1;
            bytes -= size;
        }
    }
    most
}

/// The server, the proxy and their runtime; everything stops when this is dropped.
pub struct S3Server {
    pub root: tempfile::TempDir,
    /// The proxy's address: what trailsight is pointed at.
    pub endpoint: String,
    state: Arc<Mutex<ProxyState>>,
    _runtime: tokio::runtime::Runtime,
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

impl S3Server {
    /// Only the fault-injecting proxy, in front of another server on 127.0.0.1 (moto's, for the
    /// notification tests); `root` is an unused empty directory.
    pub fn proxy_to(upstream: SocketAddr) -> S3Server {
        let root = tempfile::tempdir().expect("server root");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let endpoint = runtime.block_on(async {
            let proxy = serve_proxy(upstream, state.clone()).await;
            format!("http://{proxy}")
        });
        S3Server {
            root,
            endpoint,
            state,
            _runtime: runtime,
        }
    }

    /// Start s3s-fs and the proxy on ephemeral ports, with these buckets.
    pub fn start(buckets: &[&str]) -> S3Server {
        let root = tempfile::tempdir().expect("server root");
        for bucket in buckets {
            std::fs::create_dir_all(root.path().join(bucket)).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let endpoint = runtime.block_on(async {
            let server = serve_s3s(root.path()).await;
            let proxy = serve_proxy(server, state.clone()).await;
            format!("http://{proxy}")
        });
        S3Server {
            root,
            endpoint,
            state,
            _runtime: runtime,
        }
    }

    /// The file behind `s3://bucket/key`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.path().join(bucket).join(key)
    }

    pub fn put_raw(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let path = self.object_path(bucket, key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Copy every file of a local tree into `bucket` under `prefix`.
    pub fn upload_tree(&self, local: &Path, bucket: &str, prefix: &str) {
        for (key, bytes) in crate::support::files(local) {
            self.put_raw(bucket, &format!("{prefix}{key}"), &bytes);
        }
    }

    /// Every object under `s3://bucket/prefix`, keyed relative to the prefix.
    pub fn objects(&self, bucket: &str, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        crate::support::files(&self.object_path(bucket, prefix))
    }

    pub fn fault(&self, method: &'static str, needle: &str, fault: Fault, times: usize) {
        self.fault_when(method, &[needle], 0, fault, times);
    }

    /// Like `fault`, for requests matching all `needles`, letting the first `after` through
    /// (page 3 of a listing: the second request with a continuation token).
    pub fn fault_when(
        &self,
        method: &'static str,
        needles: &[&str],
        after: usize,
        fault: Fault,
        times: usize,
    ) {
        self.state.lock().unwrap().rules.push(Rule {
            method,
            needles: needles.iter().map(|n| (*n).to_owned()).collect(),
            after,
            fault,
            times,
        });
    }

    /// Replace an object behind the server's back, as another writer would: the file and the
    /// ETag s3s-fs keeps for it (it then derives the ETag from the new bytes).
    pub fn replace_object(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let info = format!(
            ".bucket-{}.object-{}.internal.json",
            encode(bucket),
            encode(key)
        );
        let _ = std::fs::remove_file(self.root.path().join(info));
        self.put_raw(bucket, key, bytes);
    }

    /// Every request seen so far, in arrival order; clears the record.
    pub fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut self.state.lock().unwrap().seen)
    }

    /// Wait until a request matching `pred` has been seen (without clearing the record).
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.state.lock().unwrap().seen.iter().any(&pred) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Every GetObject answered so far, with when the proxy held it; clears the record.
    pub fn take_get_spans(&self) -> Vec<GetSpan> {
        std::mem::take(&mut self.state.lock().unwrap().gets)
    }

    /// Forget every fault rule not used up yet.
    pub fn clear_faults(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    pub fn faults_applied(&self) -> usize {
        self.state.lock().unwrap().faults_applied
    }

    /// The environment that points trailsight (and the AWS SDK in it) at this server with the
    /// test credentials, and away from any real AWS configuration and instance metadata.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            // Blank is none: a developer's own session token must not ride along.
            ("AWS_SESSION_TOKEN", String::new()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ]
    }
}

async fn serve_s3s(root: &Path) -> SocketAddr {
    let fs = s3s_fs::FileSystem::new(root).expect("s3s-fs root");
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let service = service.clone();
            tokio::spawn(async move {
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    address
}

async fn serve_proxy(server: SocketAddr, state: Arc<Mutex<ProxyState>>) -> SocketAddr {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let (client, state) = (client.clone(), state.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    handle(request, server, client.clone(), state.clone())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    address
}

async fn handle(
    request: Request<Incoming>,
    server: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    state: Arc<Mutex<ProxyState>>,
) -> Result<Response<ProxyBody>, std::io::Error> {
    let (mut parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let request = Request::from_parts(parts.clone(), ());
    let mut seen = record(&request);
    seen.body = body.clone();
    let get = seen
        .is_get_object()
        .then(|| (seen.path.clone(), Instant::now()));
    let target = percent_decode(&format!(
        "{}?{}",
        request.uri().path(),
        request.uri().query().unwrap_or("")
    ));
    let fault = {
        let mut state = state.lock().unwrap();
        state.seen.push(seen);
        let mut fault = None;
        for rule in state.rules.iter_mut() {
            if rule.matches(request.method(), &target) {
                if rule.after > 0 {
                    rule.after -= 1;
                    continue;
                }
                rule.times -= 1;
                fault = Some(rule.fault.clone());
                break;
            }
        }
        state.faults_applied += usize::from(fault.is_some());
        fault
    };
    match &fault {
        Some(Fault::Error(status, code)) => {
            let content_type = parts.headers.get(hyper::header::CONTENT_TYPE);
            let protocol = content_type.and_then(|v| v.to_str().ok()).unwrap_or("");
            return Ok(error_response(*status, code, protocol));
        }
        Some(Fault::Drop) => return Err(std::io::Error::other("injected: connection dropped")),
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        Some(Fault::CutBody | Fault::Inflate(_) | Fault::LoseAnswer) | None => {}
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{server}{path_and_query}").parse().unwrap();
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts.headers.remove(hyper::header::CONNECTION);
    let response = client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .map_err(std::io::Error::other)?;
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    if matches!(fault, Some(Fault::LoseAnswer)) {
        return Err(std::io::Error::other("injected: the answer is lost"));
    }
    if let Some((path, start)) = get {
        let end = Instant::now();
        state
            .lock()
            .unwrap()
            .gets
            .push(GetSpan { path, start, end });
    }
    if matches!(fault, Some(Fault::CutBody)) && body.len() > 1 {
        // The headers announce the whole body; half of it arrives, then the connection dies.
        parts.headers.insert(
            hyper::header::CONTENT_LENGTH,
            body.len().to_string().parse().unwrap(),
        );
        let half = body.slice(..body.len() / 2);
        // The pause lets hyper flush the headers and the first half before the reset.
        let frames = futures::stream::once(async move { Ok(Frame::data(half)) }).chain(
            futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("injected: connection reset mid-body"))
            }),
        );
        let body = StreamBody::new(frames);
        return Ok(Response::from_parts(parts, BodyExt::boxed(body)));
    }
    if let Some(Fault::Inflate(extra)) = fault {
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
        let chunk = Bytes::from(vec![b' '; 64 << 10]);
        let padding = (0..extra.div_ceil(chunk.len()))
            .map(move |i| chunk.slice(..chunk.len().min(extra - i * chunk.len())));
        let frames = futures::stream::iter(std::iter::once(body).chain(padding))
            .map(|bytes| Ok(Frame::data(bytes)));
        return Ok(Response::from_parts(
            parts,
            BodyExt::boxed(StreamBody::new(frames)),
        ));
    }
    Ok(Response::from_parts(
        parts,
        Full::new(body).map_err(|never| match never {}).boxed(),
    ))
}

/// An error answer in the protocol of the request (by its content type): S3's XML, a JSON
/// protocol's `__type` (EventBridge), or the query protocol's `ErrorResponse` (SNS).
fn error_response(status: u16, code: &str, request_type: &str) -> Response<ProxyBody> {
    let (content_type, body) = if request_type.starts_with("application/x-amz-json") {
        (
            "application/x-amz-json-1.1",
            format!("{{\"__type\":\"{code}\",\"message\":\"injected by the test proxy\"}}"),
        )
    } else if request_type.starts_with("application/x-www-form-urlencoded") {
        (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>test</RequestId></ErrorResponse>"
            ),
        )
    } else {
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>test</RequestId></Error>"
            ),
        )
    };
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", content_type)
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .unwrap()
}

fn record(request: &Request<()>) -> Seen {
    let query = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Seen {
        method: request.method().to_string(),
        path: percent_decode(request.uri().path()),
        query,
        headers,
        body: Bytes::new(),
    }
}

/// URL-safe base64 without padding, as s3s-fs names its metadata files.
fn encode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
