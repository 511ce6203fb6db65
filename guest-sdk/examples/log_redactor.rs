//! Log redactor (`filter_log`): masks secrets in log lines and drops noise.
//!
//! Replaces `password=...`, `token=...`, `secret=...` and `Authorization: Bearer ...` values
//! (and any extra patterns in `config.patterns`) with `***`; drops lines containing one of
//! `config.drop_containing` (strings). Lines with nothing to redact are kept untouched.

use std::cell::RefCell;

use podrun_guest::{Context, Hook, LineAction};
use regex::Regex;

/// Compiled rules, built from the first batch's config and reused for the task's later batches.
struct Rules {
    redact: Vec<Regex>,
    drop: Vec<String>,
}

thread_local! {
    static RULES: RefCell<Option<Rules>> = const { RefCell::new(None) };
}

const BUILTIN: &[&str] = &[
    r"(?i)((?:password|passwd|token|secret|api[_-]?key)\s*[=:]\s*)[^\s,;]+",
    r"(?i)(authorization:\s*bearer\s+)[A-Za-z0-9._~+/=-]+",
];

fn rules(ctx: &Context) -> Result<Rules, String> {
    let mut redact = Vec::new();
    let extra = ctx
        .config
        .get("patterns")
        .and_then(|p| p.as_array())
        .cloned()
        .unwrap_or_default();
    for p in BUILTIN.iter().map(|s| s.to_string()).chain(
        extra.iter().filter_map(|v| v.as_str().map(|s| format!("()({s})"))),
    ) {
        redact.push(Regex::new(&p).map_err(|e| format!("bad pattern {p:?}: {e}"))?);
    }
    let drop = ctx
        .config
        .get("drop_containing")
        .and_then(|d| d.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    Ok(Rules { redact, drop })
}

fn apply(rules: &Rules, line: &str) -> LineAction {
    if rules.drop.iter().any(|d| line.contains(d.as_str())) {
        return LineAction::Drop;
    }
    let mut out: Option<String> = None;
    for re in &rules.redact {
        let cur = out.as_deref().unwrap_or(line);
        if re.is_match(cur) {
            out = Some(re.replace_all(cur, "${1}***").into_owned());
        }
    }
    match out {
        Some(s) => LineAction::Replace(s),
        None => LineAction::Keep,
    }
}

struct LogRedactor;

impl Hook for LogRedactor {
    fn filter_log(lines: Vec<String>, ctx: &Context) -> Result<Vec<LineAction>, String> {
        RULES.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(rules(ctx)?);
            }
            let r = slot.as_ref().ok_or("rules missing")?;
            Ok(lines.iter().map(|l| apply(r, l)).collect())
        })
    }
}

podrun_guest::export!(LogRedactor: filter_log);
