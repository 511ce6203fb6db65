//! Fault injection for reliability tests: a per-simulator list of [`Fault`]s matched
//! against each request (verb and path pattern), plus counters of every fault injected
//! and every request served (per verb and resource).
//!
//! ```no_run
//! # fn demo(sim: &podrun::sim::Sim) {
//! use podrun::sim::faults::{Fault, FaultKind};
//! // The next two pod creates get 429 with Retry-After: 1.
//! sim.faults().add(Fault::new(FaultKind::Status { code: 429, retry_after: 1 })
//!     .verb("create").path("/api/v1/namespaces/*/pods").times(2));
//! // ...
//! assert_eq!(sim.fault_counts().get("status_429"), Some(&2));
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer with this status (429, 500, 503, 504) instead of serving the request;
    /// `retry_after` seconds go into `Retry-After` (and the Status details for 429).
    Status {
        /// HTTP status code.
        code: u16,
        /// Retry-After seconds.
        retry_after: u64,
    },
    /// Wait this long, then serve the request normally.
    Delay(Duration),
    /// Wait this long, then close the connection without an answer.
    Hang(Duration),
    /// Perform the request (e.g. a create), then close the connection without the answer.
    DropResponse,
    /// End matching watch streams after this many events and/or this long.
    CloseWatch {
        /// Events sent before the stream is closed.
        after_events: Option<u64>,
        /// Time after which the stream is closed.
        after: Option<Duration>,
    },
    /// Cut matching log streams after this many lines and/or bytes (bytes may cut
    /// mid-line). A cut aborts the connection without ending the response, as a dropped
    /// connection or an idle-timeout proxy does; with `clean` the response ends normally
    /// at the cut instead (a proxy that closes streams cleanly). A stream that ends before
    /// its cut point uses up nothing: `times(n)` means n streams actually cut.
    CutLog {
        /// Complete lines sent before the cut.
        after_lines: Option<u64>,
        /// Bytes sent before the cut.
        after_bytes: Option<u64>,
        /// End the response normally instead of aborting the connection.
        clean: bool,
    },
    /// Refuse the exec WebSocket handshake (500 before the upgrade).
    FailExec,
    /// Once a matching pod is Running, evict it through the Eviction API path
    /// (DisruptionTarget condition, then graceful delete). `path` is matched against
    /// `namespace/name`.
    EvictRunning,
}

impl FaultKind {
    /// The name under which injections are counted (`status_429`, `delay`, ...).
    pub fn label(&self) -> String {
        match self {
            FaultKind::Status { code, .. } => format!("status_{code}"),
            FaultKind::Delay(_) => "delay".into(),
            FaultKind::Hang(_) => "hang".into(),
            FaultKind::DropResponse => "drop_response".into(),
            FaultKind::CloseWatch { .. } => "close_watch".into(),
            FaultKind::CutLog { .. } => "cut_log".into(),
            FaultKind::FailExec => "fail_exec".into(),
            FaultKind::EvictRunning => "evict".into(),
        }
    }
}

/// One fault rule: what to do, to which requests, how often.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The effect.
    pub kind: FaultKind,
    /// Verb to match (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`); None = any.
    pub verb: Option<String>,
    /// Path pattern with `*` wildcards (any run of characters); None = any path.
    pub path: Option<String>,
    /// Apply to the next N matching requests only; None = every one.
    pub times: Option<u64>,
    /// Apply to each matching request with this probability (0..=1); None = always.
    pub fraction: Option<f64>,
}

impl Fault {
    /// A fault applying to every request.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            verb: None,
            path: None,
            times: None,
            fraction: None,
        }
    }

    /// Only requests with this verb.
    #[must_use]
    pub fn verb(mut self, verb: &str) -> Fault {
        self.verb = Some(verb.to_string());
        self
    }

    /// Only request paths matching this `*` pattern.
    #[must_use]
    pub fn path(mut self, pattern: &str) -> Fault {
        self.path = Some(pattern.to_string());
        self
    }

    /// Only the next `n` matching requests.
    #[must_use]
    pub fn times(mut self, n: u64) -> Fault {
        self.times = Some(n);
        self
    }

    /// Only this fraction of matching requests (random).
    #[must_use]
    pub fn fraction(mut self, f: f64) -> Fault {
        self.fraction = Some(f);
        self
    }

    /// Whether this rule matches a request and has injections left.
    fn applies_to(&self, verb: &str, path: &str) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self.path.as_deref().is_none_or(|p| glob(p, path))
            && self.times != Some(0)
    }

    /// Parse a CLI spec: `KIND[:ARG][@VERB][ PATH]`-free form is awkward on a command line,
    /// so the flags use `key=value` lists: `kind=429,verb=create,path=/api/v1/*,times=2`.
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let mut kind = None;
        let mut fault = Fault::new(FaultKind::FailExec);
        let num = |k: &str, v: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{k}={v}: expected a whole number"))
        };
        let mut args: BTreeMap<String, String> = BTreeMap::new();
        for part in spec.split(',') {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected key=value"))?;
            args.insert(k.trim().to_string(), v.trim().to_string());
        }
        let secs = |v: &str| -> Result<Duration, String> {
            v.trim_end_matches('s')
                .parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|_| format!("{v:?}: expected seconds"))
        };
        for (k, v) in &args {
            match k.as_str() {
                "kind" => kind = Some(v.clone()),
                "verb" => fault.verb = Some(v.clone()),
                "path" => fault.path = Some(v.clone()),
                "times" => fault.times = Some(num(k, v)?),
                "fraction" => {
                    fault.fraction = Some(
                        v.parse::<f64>()
                            .map_err(|_| format!("fraction={v}: expected a number"))?,
                    )
                }
                "retry_after" | "after_events" | "after_lines" | "after_bytes" | "seconds"
                | "clean" => {}
                other => return Err(format!("unknown fault key {other:?}")),
            }
        }
        let get = |k: &str| args.get(k).map(String::as_str);
        let kind = kind.ok_or("missing kind=")?;
        fault.kind = match kind.as_str() {
            "429" | "500" | "503" | "504" => FaultKind::Status {
                code: kind.parse().map_err(|_| "bad code")?,
                retry_after: get("retry_after").map(|v| num("retry_after", v)).transpose()?.unwrap_or(1),
            },
            "delay" => FaultKind::Delay(secs(get("seconds").ok_or("delay needs seconds=")?)?),
            "hang" => FaultKind::Hang(secs(get("seconds").ok_or("hang needs seconds=")?)?),
            "drop_response" => FaultKind::DropResponse,
            "close_watch" => FaultKind::CloseWatch {
                after_events: get("after_events").map(|v| num("after_events", v)).transpose()?,
                after: get("seconds").map(secs).transpose()?,
            },
            "cut_log" => FaultKind::CutLog {
                after_lines: get("after_lines").map(|v| num("after_lines", v)).transpose()?,
                after_bytes: get("after_bytes").map(|v| num("after_bytes", v)).transpose()?,
                clean: match get("clean") {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(v) => return Err(format!("clean={v}: expected true or false")),
                },
            },
            "fail_exec" => FaultKind::FailExec,
            "evict" => FaultKind::EvictRunning,
            other => {
                return Err(format!(
                    "unknown fault kind {other:?} (expected 429, 500, 503, 504, delay, hang, drop_response, close_watch, cut_log, fail_exec, evict)"
                ))
            }
        };
        Ok(fault)
    }
}

/// `*` glob match (no other metacharacters).
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(p) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            match rest.find(p) {
                Some(at) => rest = &rest[at + p.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The faults of one simulator and the counters.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Faults {
    /// Add a fault rule (applies from the next request on).
    pub fn add(&self, fault: Fault) {
        lock(&self.rules).push(fault);
    }

    /// Remove every rule (counters are kept).
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// Injections so far, by [`FaultKind::label`].
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    /// Record one injection of `kind` (for faults applied outside [`Faults::take`]).
    pub fn count(&self, kind: &FaultKind) {
        *lock(&self.counts).entry(kind.label()).or_default() += 1;
    }

    /// The first rule of the selected sort matching this request, consumed (times - 1)
    /// and counted. `want` picks which kinds the caller can apply at its point.
    pub fn take(
        &self,
        verb: &str,
        path: &str,
        want: impl Fn(&FaultKind) -> bool,
    ) -> Option<FaultKind> {
        let mut rules = lock(&self.rules);
        let mut hit = None;
        for (i, f) in rules.iter_mut().enumerate() {
            if !want(&f.kind) || !f.applies_to(verb, path) {
                continue;
            }
            if let Some(frac) = f.fraction {
                if rand::rng().random::<f64>() >= frac {
                    continue;
                }
            }
            // A log cut is used up when it cuts (`claim`), not when a stream is opened.
            if !matches!(f.kind, FaultKind::CutLog { .. }) {
                if let Some(t) = f.times.as_mut() {
                    *t -= 1;
                }
            }
            hit = Some((i, f.kind.clone()));
            break;
        }
        let (i, kind) = hit?;
        if rules[i].times == Some(0) {
            rules.remove(i);
        }
        drop(rules);
        // Watch/log cut faults are counted when they actually cut, not when armed.
        if !matches!(
            kind,
            FaultKind::CloseWatch { .. } | FaultKind::CutLog { .. }
        ) {
            self.count(&kind);
        }
        Some(kind)
    }

    /// Use up one injection of the rule that [`Faults::take`] returned for a fault
    /// applied later in a response (a log cut), and count it. False when the rule has
    /// been used up meanwhile (by another stream); then the fault must not be applied.
    pub fn claim(&self, verb: &str, path: &str, kind: &FaultKind) -> bool {
        let mut rules = lock(&self.rules);
        let Some(i) = rules
            .iter()
            .position(|f| &f.kind == kind && f.applies_to(verb, path))
        else {
            return false;
        };
        if let Some(t) = rules[i].times.as_mut() {
            *t -= 1;
            if *t == 0 {
                rules.remove(i);
            }
        }
        drop(rules);
        self.count(kind);
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters and rules stay consistent across a panic elsewhere.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Requests served, per `verb resource` (e.g. `list pods`, `get pods/log`).
#[derive(Debug, Default)]
pub struct RequestCounts(Mutex<BTreeMap<String, u64>>);

impl RequestCounts {
    /// Count one request.
    pub fn add(&self, verb: &str, resource: &str) {
        *lock(&self.0)
            .entry(format!("{verb} {resource}"))
            .or_default() += 1;
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.0).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob(
            "/api/v1/namespaces/*/pods",
            "/api/v1/namespaces/default/pods"
        ));
        assert!(glob("*/pods/*", "/api/v1/namespaces/d/pods/x"));
        assert!(!glob(
            "/api/v1/namespaces/*/pods",
            "/api/v1/namespaces/default/pods/x"
        ));
        assert!(glob("*", "anything"));
    }

    #[test]
    fn times_are_consumed_and_counted() {
        let f = Faults::default();
        f.add(
            Fault::new(FaultKind::Status {
                code: 503,
                retry_after: 1,
            })
            .verb("list")
            .times(2),
        );
        let any = |_: &FaultKind| true;
        assert!(f.take("get", "/x", any).is_none());
        assert!(f.take("list", "/x", any).is_some());
        assert!(f.take("list", "/x", any).is_some());
        assert!(f.take("list", "/x", any).is_none());
        assert_eq!(f.counts().get("status_503"), Some(&2));
    }

    #[test]
    fn parse_cli_specs() {
        let f = Fault::parse("kind=429,verb=create,path=/api/v1/*,times=2,retry_after=3")
            .expect("parse");
        assert_eq!(
            f.kind,
            FaultKind::Status {
                code: 429,
                retry_after: 3
            }
        );
        assert_eq!(f.times, Some(2));
        let f = Fault::parse("kind=cut_log,after_bytes=10").expect("parse");
        assert_eq!(
            f.kind,
            FaultKind::CutLog {
                after_lines: None,
                after_bytes: Some(10),
                clean: false,
            }
        );
        let f = Fault::parse("kind=cut_log,after_lines=3,clean=true").expect("parse");
        assert_eq!(
            f.kind,
            FaultKind::CutLog {
                after_lines: Some(3),
                after_bytes: None,
                clean: true,
            }
        );
        assert!(Fault::parse("kind=nope").is_err());
    }
}
