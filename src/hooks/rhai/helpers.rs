//! The functions podrun gives Rhai hooks: `regex_match`, `regex_replace` (linear-time
//! `regex` crate with a bounded per-engine cache), `parse_json`, `to_json`, `log`, `deny`.
//!
//! These are the only host functions a hook can call: none reads files, the environment,
//! the clock or the network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::{Regex, RegexBuilder};
use rhai::{Dynamic, Engine, EvalAltResult, Map, Position};

use super::harden::{past_deadline, write_log};
use crate::hooks::Limits;

/// The key of the map `deny(reason)` throws; the engine turns it into a deny verdict.
pub(crate) const DENY_KEY: &str = "podrun_deny";

/// Compiled size allowed for one pattern (the `regex` crate's default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiled patterns of one engine (one tenant). Cleared when full: simple and bounded.
struct RegexCache {
    /// `Arc`, not clones: a cloned `Regex` starts with an empty match cache (its lazy DFA
    /// would be rebuilt on every call); sharing one keeps the cache warm.
    patterns: Mutex<HashMap<String, Arc<Regex>>>,
    capacity: usize,
}

impl RegexCache {
    fn get(&self, pattern: &str) -> Result<Arc<Regex>, Box<EvalAltResult>> {
        let mut patterns = self
            .patterns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(re) = patterns.get(pattern) {
            return Ok(re.clone());
        }
        let re = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| runtime_error(format!("invalid regex {pattern:?}: {e}")))?;
        let re = Arc::new(re);
        if patterns.len() >= self.capacity {
            patterns.clear();
        }
        patterns.insert(pattern.to_owned(), re.clone());
        Ok(re)
    }
}

fn runtime_error(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE))
}

fn too_large() -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorDataTooLarge(
        "Length of string".into(),
        Position::NONE,
    ))
}

/// Register every helper into `engine`.
pub(crate) fn register(engine: &mut Engine, limits: &Limits) {
    let cache = Arc::new(RegexCache {
        patterns: Mutex::new(HashMap::new()),
        capacity: limits.rhai_regex_cache.max(1),
    });
    let max_string = limits.rhai_max_string_bytes;

    let c = cache.clone();
    engine.register_fn(
        "regex_match",
        move |text: &str, pattern: &str| -> Result<bool, Box<EvalAltResult>> {
            Ok(c.get(pattern)?.is_match(text))
        },
    );

    let c = cache;
    engine.register_fn(
        "regex_replace",
        move |text: &str, pattern: &str, replacement: &str| -> Result<String, Box<EvalAltResult>> {
            replace_bounded(&*c.get(pattern)?, text, replacement, max_string)
        },
    );

    engine.register_fn(
        "parse_json",
        |text: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| runtime_error(format!("parse_json: {e}")))?;
            rhai::serde::to_dynamic(value)
        },
    );

    engine.register_fn(
        "to_json",
        move |value: Dynamic| -> Result<String, Box<EvalAltResult>> {
            let value: serde_json::Value = rhai::serde::from_dynamic(&value)
                .map_err(|e| runtime_error(format!("to_json: {e}")))?;
            let text = value.to_string();
            if text.len() > max_string {
                return Err(too_large());
            }
            Ok(text)
        },
    );

    engine.register_fn("log", |value: Dynamic| {
        if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
            write_log("log", &text);
        } else {
            write_log("log", &value.to_string());
        }
    });

    engine.register_fn(
        "deny",
        |reason: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            let mut marker = Map::new();
            marker.insert(DENY_KEY.into(), reason.into());
            Err(Box::new(EvalAltResult::ErrorRuntime(
                marker.into(),
                Position::NONE,
            )))
        },
    );
}

/// `Regex::replace_all`, but stopping as soon as the result would exceed `max` bytes (a
/// 1 MiB replacement at every position of a 1 MiB text would otherwise build terabytes
/// before Rhai could check its size) and when the call's deadline has passed.
fn replace_bounded(
    re: &Regex,
    text: &str,
    replacement: &str,
    max: usize,
) -> Result<String, Box<EvalAltResult>> {
    let mut out = String::new();
    let mut last = 0;
    let mut step = |n: usize, range: std::ops::Range<usize>, out: &mut String| {
        out.push_str(&text[last..range.start]);
        last = range.end;
        if out.len() > max {
            return Err(too_large());
        }
        if n % 1024 == 1023 && past_deadline() {
            return Err(Box::new(EvalAltResult::ErrorTerminated(
                crate::hooks::Limit::Deadline.as_str().into(),
                Position::NONE,
            )));
        }
        Ok(())
    };
    let mut matched = false;
    if replacement.contains('$') {
        for (n, caps) in re.captures_iter(text).enumerate() {
            matched = true;
            let range = caps.get(0).map_or(0..0, |m| m.range());
            step(n, range, &mut out)?;
            caps.expand(replacement, &mut out);
        }
    } else {
        for (n, m) in re.find_iter(text).enumerate() {
            matched = true;
            step(n, m.range(), &mut out)?;
            out.push_str(replacement);
        }
    }
    if !matched {
        return Ok(text.to_owned());
    }
    out.push_str(&text[last..]);
    if out.len() > max {
        return Err(too_large());
    }
    Ok(out)
}
