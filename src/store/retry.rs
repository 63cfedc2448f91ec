//! When to try an S3 request again, and how long to wait first: pure functions on a reduced
//! description of what went wrong, so the whole policy is one table test.
//!
//! The SDK's own retries are switched off for the S3 client: one loop (in `s3`) retries every
//! request, and for GetObject the loop also covers reading the body, which the SDK cannot
//! retry once it has handed the stream over. Throttling (503 SlowDown, 429) waits longer than
//! other transient failures; everything a retry cannot fix (403, 404, a request that cannot
//! be signed) gives up at once.

use std::time::Duration;

/// Attempts per request by default (the first one included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// The first backoff step for transient failures; throttling waits `THROTTLE_FACTOR` times longer.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(200);
/// No single wait is longer than this.
pub const MAX_DELAY: Duration = Duration::from_secs(20);
/// How much longer a throttled request waits than one that failed transiently.
pub const THROTTLE_FACTOR: u32 = 5;

/// S3 error codes that mean "slow down".
const THROTTLING_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottledException",
];

/// S3 error codes that mean "try again" whatever the status says.
const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeoutException",
];

/// What went wrong with one attempt, reduced to what the retry decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer in time: connecting, waiting for the response, or a body that stalled.
    Timeout,
    /// The connection failed, or was closed or reset before a response arrived.
    Connection,
    /// The response body broke off while it was being read (reset, short body).
    BodyInterrupted,
    /// A response arrived but could not be read (often a truncated error document).
    MalformedResponse,
    /// The service answered with an error status and, usually, an S3 error code.
    Status { status: u16, code: Option<String> },
    /// The request could not be built, signed or sent: credentials, region, endpoint.
    Client,
}

/// Whether to try again, and which backoff applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The service asked us to slow down.
    Throttled,
    /// A failure that usually goes away by itself.
    Transient,
    /// Trying again cannot help.
    GiveUp,
}

/// The retry policy for one failure.
pub fn classify(failure: &Failure) -> Decision {
    match failure {
        Failure::Timeout
        | Failure::Connection
        | Failure::BodyInterrupted
        | Failure::MalformedResponse => Decision::Transient,
        Failure::Client => Decision::GiveUp,
        Failure::Status { status, code } => {
            let code = code.as_deref().unwrap_or_default();
            if THROTTLING_CODES.contains(&code) || *status == 429 || *status == 503 {
                Decision::Throttled
            } else if TRANSIENT_CODES.contains(&code) || (500..600).contains(status) {
                Decision::Transient
            } else {
                Decision::GiveUp
            }
        }
    }
}

/// How many attempts and how long to wait between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff step for transient failures.
    pub base_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `failed_attempts + 1`, with "full jitter": a uniform draw
    /// (`unit` in [0, 1)) below an exponentially growing ceiling, so that many workers
    /// throttled at once do not come back at once.
    pub fn backoff(&self, decision: Decision, failed_attempts: u32, unit: f64) -> Duration {
        let base = match decision {
            Decision::Throttled => self.base_delay * THROTTLE_FACTOR,
            Decision::Transient | Decision::GiveUp => self.base_delay,
        };
        let exponent = failed_attempts.saturating_sub(1).min(20);
        let ceiling = base.saturating_mul(1 << exponent).min(MAX_DELAY);
        ceiling.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A uniform draw in [0, 1) for jitter, from the standard library's per-process random keys.
pub fn jitter_unit() -> f64 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = RandomState::new().hash_one(CALLS.fetch_add(1, Ordering::Relaxed));
    (n >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, code: &str) -> Failure {
        Failure::Status {
            status,
            code: (!code.is_empty()).then(|| code.to_owned()),
        }
    }

    #[test]
    fn classification_table() {
        use Decision::*;
        let cases = [
            (status(503, "SlowDown"), Throttled),
            (status(503, ""), Throttled),
            (status(429, ""), Throttled),
            (status(400, "ThrottlingException"), Throttled),
            (status(400, "RequestLimitExceeded"), Throttled),
            (status(500, "InternalError"), Transient),
            (status(500, ""), Transient),
            (status(502, ""), Transient),
            (status(504, ""), Transient),
            (status(400, "RequestTimeout"), Transient),
            (status(403, "AccessDenied"), GiveUp),
            (status(403, "InvalidAccessKeyId"), GiveUp),
            (status(403, "SignatureDoesNotMatch"), GiveUp),
            (status(400, "ExpiredToken"), GiveUp),
            (status(404, "NoSuchKey"), GiveUp),
            (status(404, "NoSuchBucket"), GiveUp),
            (status(301, "PermanentRedirect"), GiveUp),
            (status(412, "PreconditionFailed"), GiveUp),
            (status(409, "ConditionalRequestConflict"), GiveUp),
            (status(400, "InvalidRequest"), GiveUp),
            (Failure::Timeout, Transient),
            (Failure::Connection, Transient),
            (Failure::BodyInterrupted, Transient),
            (Failure::MalformedResponse, Transient),
            (Failure::Client, GiveUp),
        ];
        for (failure, want) in cases {
            assert_eq!(classify(&failure), want, "{failure:?}");
        }
    }

    #[test]
    fn backoff_grows_exponentially_under_a_cap_with_full_jitter() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
        };
        let ms = |d: Duration| d.as_millis();
        let cases = [
            (Decision::Transient, 1, 1.0, 100),
            (Decision::Transient, 2, 1.0, 200),
            (Decision::Transient, 3, 1.0, 400),
            (Decision::Transient, 3, 0.5, 200),
            (Decision::Transient, 3, 0.0, 0),
            (Decision::Throttled, 1, 1.0, 500),
            (Decision::Throttled, 4, 1.0, 4000),
            (Decision::Throttled, 30, 1.0, 20_000),
            (Decision::Transient, 0, 1.0, 100),
        ];
        for (decision, failed, unit, want) in cases {
            assert_eq!(
                ms(policy.backoff(decision, failed, unit)),
                want,
                "{decision:?} after {failed} failures, jitter {unit}"
            );
        }
    }

    #[test]
    fn jitter_stays_in_the_unit_interval_and_varies() {
        let draws: Vec<f64> = (0..100).map(|_| jitter_unit()).collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)), "{draws:?}");
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}
