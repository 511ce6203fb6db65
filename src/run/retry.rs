//! The one retry policy for every API request podrun sends: exponential backoff on 429
//! (honouring `Retry-After`), 500/502/503/504, connection errors and per-attempt timeouts.
//!
//! It is installed once, as a tower layer on the client (see `connect.rs`), so no call site
//! sleeps or retries by itself. Loops that re-open long-lived streams (watch, log follow)
//! pace themselves with the same [`Backoff`].
//!
//! It does not handle 401 (credentials are refreshed by rebuilding the client, see
//! `connect.rs`) nor 409/410, which carry meaning the caller acts on.

use std::time::Duration;

use hyper::{Request, Response, StatusCode};
use kube::client::Body;
use tower::BoxError;

/// Exponential backoff with a cap and an attempt limit. `Default` is the API policy.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Largest delay between attempts.
    pub max: Duration,
    /// Attempts after the first one; `None` retries forever.
    pub max_retries: Option<u32>,
    attempt: u32,
}

impl Default for Backoff {
    /// 100 ms doubling to 4 s, 6 retries: a dead server fails in about 6 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(4), Some(6))
    }
}

impl Backoff {
    /// A backoff with the given bounds.
    pub fn new(initial: Duration, max: Duration, max_retries: Option<u32>) -> Self {
        Backoff {
            initial,
            max,
            max_retries,
            attempt: 0,
        }
    }

    /// The delay before the next attempt, or `None` when attempts are used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.max_retries.is_some_and(|m| self.attempt >= m) {
            return None;
        }
        let factor = 2u32.saturating_pow(self.attempt.min(16));
        self.attempt += 1;
        Some(self.initial.saturating_mul(factor).min(self.max))
    }

    /// Forget earlier failures after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Attempts used so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// Largest `Retry-After` honoured; a server asking for longer gets this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What to do with one attempt's result.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Final: hand the result to the caller.
    Done,
    /// Retry after the backoff delay.
    Backoff,
    /// Retry after the server's `Retry-After`.
    After(Duration),
}

/// Classify a response status (and its `Retry-After` header value).
pub fn classify_status(status: StatusCode, retry_after: Option<&str>) -> Verdict {
    match status.as_u16() {
        429 => match retry_after.and_then(parse_retry_after) {
            Some(d) => Verdict::After(d.min(MAX_RETRY_AFTER)),
            None => Verdict::Backoff,
        },
        500 | 502 | 503 | 504 => Verdict::Backoff,
        _ => Verdict::Done,
    }
}

/// `Retry-After` as delay-seconds (the form API servers send); HTTP dates are ignored.
fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Whether a transport error is worth another attempt: connection failures, resets and
/// our own per-attempt timeout. Anything else (TLS, auth plugin) is final.
pub fn is_transient(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if e.is::<tower::timeout::error::Elapsed>() {
            return true;
        }
        if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            if h.is_connect() {
                return true;
            }
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::BrokenPipe
                    | K::TimedOut
                    | K::UnexpectedEof
            ) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// The tower retry policy built on [`Backoff`] and [`classify_status`].
#[derive(Debug, Clone, Default)]
pub struct Policy {
    backoff: Backoff,
}

impl Policy {
    /// A policy with the given backoff.
    pub fn new(backoff: Backoff) -> Self {
        Policy { backoff }
    }
}

impl<B> tower::retry::Policy<Request<Body>, Response<B>, BoxError> for Policy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        req: &mut Request<Body>,
        result: &mut Result<Response<B>, BoxError>,
    ) -> Option<Self::Future> {
        let verdict = match result {
            Ok(resp) => classify_status(
                resp.status(),
                resp.headers()
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            ),
            Err(e) if is_transient(e.as_ref()) => Verdict::Backoff,
            Err(_) => Verdict::Done,
        };
        let delay = match verdict {
            Verdict::Done => return None,
            Verdict::Backoff => self.backoff.next_delay()?,
            // Still counts as an attempt so a server that always says "later" ends.
            Verdict::After(d) => self.backoff.next_delay().map(|_| d)?,
        };
        tracing::debug!(method = %req.method(), uri = %req.uri(), ?delay, "retrying API request");
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Only buffered bodies can be replayed; every podrun request has one.
        let body = req.body().try_clone()?;
        let mut new = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version())
            .body(body)
            .ok()?;
        *new.headers_mut() = req.headers().clone();
        *new.extensions_mut() = req.extensions().clone();
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_ends() {
        let mut b = Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(350),
            Some(4),
        );
        let got: Vec<_> = std::iter::from_fn(|| b.next_delay()).collect();
        assert_eq!(
            got,
            [100, 200, 350, 350].map(Duration::from_millis).to_vec()
        );
        b.reset();
        assert_eq!(b.next_delay(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, Some("2")),
            Verdict::After(Duration::from_secs(2))
        );
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, Some("3600")),
            Verdict::After(MAX_RETRY_AFTER)
        );
        assert_eq!(
            classify_status(StatusCode::TOO_MANY_REQUESTS, None),
            Verdict::Backoff
        );
        for s in [500, 502, 503, 504] {
            assert_eq!(
                classify_status(StatusCode::from_u16(s).expect("valid"), None),
                Verdict::Backoff
            );
        }
        for s in [200, 201, 401, 404, 409, 410, 422] {
            assert_eq!(
                classify_status(StatusCode::from_u16(s).expect("valid"), None),
                Verdict::Done
            );
        }
    }

    #[test]
    fn io_resets_are_transient_but_others_are_not() {
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "x");
        assert!(is_transient(&reset));
        let other = std::io::Error::new(std::io::ErrorKind::InvalidData, "x");
        assert!(!is_transient(&other));
    }

    #[tokio::test(start_paused = true)]
    async fn policy_honours_retry_after_then_gives_up() {
        use tower::retry::Policy as _;
        let mut p = Policy::new(Backoff::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
            Some(2),
        ));
        let mut req = Request::new(Body::empty());
        let resp = || -> Result<Response<()>, BoxError> {
            Ok(Response::builder()
                .status(429)
                .header("Retry-After", "5")
                .body(())
                .expect("valid response"))
        };
        let start = tokio::time::Instant::now();
        let sleep = p.retry(&mut req, &mut resp()).expect("first retry");
        assert_eq!(sleep.deadline() - start, Duration::from_secs(5));
        assert!(p.retry(&mut req, &mut resp()).is_some());
        assert!(p.retry(&mut req, &mut resp()).is_none(), "attempts used up");
        assert!(
            tower::retry::Policy::<Request<Body>, Response<()>, BoxError>::clone_request(
                &mut p, &req
            )
            .is_some()
        );
    }
}
