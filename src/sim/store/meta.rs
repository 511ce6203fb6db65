//! Object metadata rules shared by every kind: name and label validation as the API
//! server's `apimachinery/pkg/util/validation` words them, generated names, timestamps.

use rand::Rng;
use serde_json::Value;

use crate::sim::status::Cause;

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// Characters the API server's `SimpleNameGenerator` picks from (no vowels, no 0/1/3).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Problems with `value` as an RFC 1123 subdomain (at most 253 characters).
pub fn subdomain_errors(field: &str, value: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let v = Value::String(value.to_string());
    if value.len() > 253 {
        out.push(Cause::invalid(
            field,
            &v,
            "must be no more than 253 characters",
        ));
    }
    if !value.split('.').all(is_label_any_len) {
        out.push(Cause::invalid(field, &v, DNS1123_SUBDOMAIN_MSG));
    }
    out
}

fn is_label_any_len(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Problems with `value` as an RFC 1123 label (at most 63 characters).
pub fn label_name_errors(field: &str, value: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let v = Value::String(value.to_string());
    if value.len() > 63 {
        out.push(Cause::invalid(
            field,
            &v,
            "must be no more than 63 characters",
        ));
    }
    if !is_label_any_len(value) {
        out.push(Cause::invalid(field, &v, DNS1123_LABEL_MSG));
    }
    out
}

/// Whether `s` is a valid RFC 1123 label.
pub fn is_dns_label(s: &str) -> bool {
    is_label(s)
}

fn is_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Problems with the label (or annotation, when `values` is false) map at `field`.
pub fn labels_errors(field: &str, labels: &Value, values: bool) -> Vec<Cause> {
    let mut out = Vec::new();
    let Some(map) = labels.as_object() else {
        return out;
    };
    for (k, v) in map {
        let (prefix, name) = match k.rsplit_once('/') {
            Some((p, n)) => (Some(p), n),
            None => (None, k.as_str()),
        };
        let key_ok =
            is_qualified_part(name) && prefix.is_none_or(|p| subdomain_errors("", p).is_empty());
        if !key_ok {
            out.push(Cause::invalid(
                field,
                &Value::String(k.clone()),
                QUALIFIED_NAME_MSG,
            ));
        }
        if values {
            let s = v.as_str().unwrap_or_default();
            let ok = s.is_empty() || (s.len() <= 63 && is_qualified_part(s));
            if !ok {
                out.push(Cause::invalid(field, v, LABEL_VALUE_MSG));
            }
        }
    }
    out
}

/// A random 5-character suffix like the API server's name generator makes.
pub fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect()
}

/// `generateName` plus a random suffix, with the base cut to 58 characters as the API
/// server does.
pub fn generate_name(base: &str) -> String {
    let cut: String = base.chars().take(58).collect();
    format!("{cut}{}", random_suffix())
}

/// Now as RFC 3339 with second precision (`metav1.Time`).
pub fn now() -> String {
    format_time(jiff::Timestamp::now())
}

/// A timestamp as `metav1.Time` text (seconds, `Z`).
pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now as RFC 3339 with microseconds (`metav1.MicroTime`, used by events' `eventTime`).
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomain_rules() {
        assert!(subdomain_errors("metadata.name", "a.b-c").is_empty());
        assert_eq!(subdomain_errors("metadata.name", "Foo").len(), 1);
        assert_eq!(subdomain_errors("metadata.name", "-a").len(), 1);
        assert_eq!(subdomain_errors("metadata.name", &"a".repeat(254)).len(), 1);
        assert!(subdomain_errors("metadata.name", &"a".repeat(253)).is_empty());
    }

    #[test]
    fn label_rules() {
        let good = serde_json::json!({"app": "x", "example.com/a_b": "V.1", "e": ""});
        assert!(labels_errors("metadata.labels", &good, true).is_empty());
        let bad = serde_json::json!({"-a": "ok", "b": "bad value"});
        assert_eq!(labels_errors("metadata.labels", &bad, true).len(), 2);
    }

    #[test]
    fn generated_names_use_the_alphabet() {
        let n = generate_name("task-");
        assert_eq!(n.len(), 10);
        assert!(n[5..].bytes().all(|c| NAME_ALPHABET.contains(&c)));
    }
}
