//! The webhook channel: one JSON POST per notice (`message::webhook_body`), over HTTPS (rustls
//! with ring and the system's root certificates) or plain HTTP, with a time limit per attempt
//! and the shared retry policy: a 429 or a 5xx, a timeout or a broken connection is tried
//! again (after the `Retry-After` the server asks for, when it says, up to the policy's
//! longest wait); any other answer gives up at once.
//!
//! An incoming webhook's path is its secret: the URL is only ever shown as
//! `scheme://host/…` (`message::redact_url`), in logs, errors and the summary.

use super::message::{self, redact_url};
use super::{Attempt, ClientSettings, Delivered, Notice, with_retries};
use crate::store::retry::{Failure, MAX_DELAY};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A webhook URL: the whole of it is a secret, so `Debug` and `Display` show `scheme://host/…`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// An `http://` or `https://` URL with a host.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let shown = redact_url(text);
        let uri: hyper::Uri = text
            .parse()
            .map_err(|_| format!("the webhook URL {shown} is not a URL"))?;
        match uri.scheme_str() {
            Some("https" | "http") if uri.host().is_some_and(|h| !h.is_empty()) => {
                Ok(WebhookUrl(text.to_owned()))
            }
            _ => Err(format!(
                "the webhook URL {shown} must start with https:// (or http://) and name a host"
            )),
        }
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    /// `http://` to a host other than this machine.
    pub fn is_plain_http_elsewhere(&self) -> bool {
        let Ok(uri) = self.0.parse::<hyper::Uri>() else {
            return false;
        };
        let host = uri.host().unwrap_or("").trim_matches(['[', ']']);
        uri.scheme_str() == Some("http") && !matches!(host, "127.0.0.1" | "localhost" | "::1")
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", redact_url(&self.0))
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", redact_url(&self.0))
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Posts to a webhook.
pub struct Webhook {
    pub url: WebhookUrl,
    settings: ClientSettings,
    client: HttpsClient,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook").field("url", &self.url).finish()
    }
}

/// Most of an error answer's body kept for the message.
const MAX_ERROR_BODY: usize = 300;

impl Webhook {
    pub fn new(url: WebhookUrl, settings: ClientSettings) -> Webhook {
        if url.is_plain_http_elsewhere() {
            tracing::warn!(
                webhook = %url,
                "the webhook URL {url} is plain HTTP: its secret path crosses the network unencrypted; use https://"
            );
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_provider_and_native_roots(provider.clone()) {
            Ok(builder) => builder,
            Err(e) => {
                // No system certificates: plain HTTP still works, HTTPS fails with a clear
                // handshake error when it is tried.
                tracing::warn!("no root certificates for the webhook's HTTPS: {e}");
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map(|b| {
                        b.with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth()
                    })
                    .unwrap_or_else(|_| {
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth()
                    });
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
        let https = builder.https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Webhook {
            url,
            settings,
            client,
        }
    }

    /// POST one notice.
    pub async fn publish(&self, notice: &Notice) -> Delivered {
        let body = Bytes::from(message::webhook_body(notice));
        let what = format!("POST {}", self.url);
        with_retries(&self.settings.retry, &what, || self.attempt(body.clone())).await
    }

    async fn attempt(&self, body: Bytes) -> Result<(), Attempt> {
        let request = hyper::Request::post(self.url.secret())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("trailsight/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(body))
            .map_err(|_| Attempt {
                failure: Failure::Client,
                message: "the webhook URL cannot be requested".into(),
                wait: None,
            })?;
        let limit = self.settings.request_timeout;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| Attempt {
                failure: Failure::Connection,
                message: self.scrub(&super::publish::error_chain(&e)),
                wait: None,
            })?;
            let status = response.status();
            let retry_after = retry_after(response.headers());
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if status.is_success() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&body[..body.len().min(MAX_ERROR_BODY)])
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            Err(Attempt {
                failure: Failure::Status {
                    status: status.as_u16(),
                    code: None,
                },
                message: self.scrub(&format!("HTTP {status}: {text}")),
                wait: retry_after,
            })
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Attempt {
                failure: Failure::Timeout,
                message: format!("no complete answer within {limit:?}"),
                wait: None,
            }),
        }
    }

    /// `text` without the URL's secret parts, should an error quote them.
    fn scrub(&self, text: &str) -> String {
        let url = self.url.secret();
        let mut out = text.replace(url, &redact_url(url));
        if let Ok(uri) = url.parse::<hyper::Uri>()
            && let Some(pq) = uri.path_and_query()
            && pq.as_str().len() > 1
        {
            out = out.replace(pq.as_str(), "/…");
        }
        out
    }
}

/// `Retry-After: SECONDS`, at most the longest backoff.
fn retry_after(headers: &hyper::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_checked_and_never_shown_whole() {
        let ok = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/SECRET").unwrap();
        assert_eq!(
            format!("{ok:?} {ok}"),
            "https://hooks.slack.com/… https://hooks.slack.com/…"
        );
        assert!(!ok.is_plain_http_elsewhere());
        for (url, plain) in [
            ("http://hooks.example.com/x", true),
            ("http://127.0.0.1:8080/x", false),
            ("http://[::1]:8080/x", false),
            ("https://hooks.example.com/x", false),
        ] {
            let parsed = WebhookUrl::parse(url).unwrap();
            assert_eq!(parsed.is_plain_http_elsewhere(), plain, "{url}");
        }
        for bad in [
            "ftp://example.com/x",
            "hooks.slack.com/services/SECRET",
            "https:///SECRET",
        ] {
            let err = WebhookUrl::parse(bad).unwrap_err();
            assert!(!err.contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut headers = hyper::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(hyper::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(hyper::header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(MAX_DELAY));
        headers.insert(
            hyper::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
