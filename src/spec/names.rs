//! Name rules: Airflow keys (task ids, pod names before sanitising), the operator's
//! `_set_name`, and the Kubernetes syntaxes for names, label keys and label values.

use std::sync::LazyLock;

use regex::Regex;

// Patterns are literals checked by the unit tests below; a failure to compile is a bug.
static AIRFLOW_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[\w.-]+$").expect("literal regex"));
static NOT_NAME_CHARS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[^a-z0-9-]+").expect("literal regex"));
static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("literal regex"));
static LABEL_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$").expect("literal regex")
});

/// Airflow's `validate_key`: at most `max` characters of letters, digits, `_`, `.`, `-`,
/// and no `..`.
pub fn validate_airflow_key(key: &str, max: usize) -> Result<(), String> {
    if key.chars().count() > max {
        return Err(format!(
            "must be at most {max} characters (has {})",
            key.chars().count()
        ));
    }
    if !AIRFLOW_KEY.is_match(key) {
        return Err("may contain only letters, digits, `_`, `.` and `-`".to_string());
    }
    // Newer Airflow cores refuse consecutive dots (path traversal).
    if key.contains("..") {
        return Err("must not contain consecutive dots (`..`)".to_string());
    }
    Ok(())
}

/// The operator's `_set_name`: lowercase, then every run of characters outside
/// `[a-z0-9-]` becomes one `-` (so dots and underscores become dashes).
pub fn set_name(name: &str) -> String {
    NOT_NAME_CHARS
        .replace_all(&name.to_lowercase(), "-")
        .into_owned()
}

/// RFC 1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && DNS1123_LABEL.is_match(s)
}

/// RFC 1123 subdomain as Kubernetes checks it (`IsDNS1123Subdomain`): at most 253
/// characters of dot-separated `[a-z0-9]([-a-z0-9]*[a-z0-9])?` parts (no per-part limit).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(|p| DNS1123_LABEL.is_match(p))
}

/// Kubernetes label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name at
/// most 63 characters, alphanumeric at both ends with `-_.` inside.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if !is_dns1123_subdomain(p) {
            return Err(format!(
                "key prefix `{p}` must be a DNS subdomain (lowercase letters, digits, `-`, `.`)"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 || !LABEL_NAME.is_match(name) {
        return Err("key name must be 1-63 characters, letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit".to_string());
    }
    Ok(())
}

/// Kubernetes label value: empty, or at most 63 characters, alphanumeric at both ends
/// with `-_.` inside.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 || !LABEL_NAME.is_match(value) {
        return Err("a label value must be at most 63 characters, letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_name_matches_the_operator() {
        assert_eq!(set_name("My_Pod.Name"), "my-pod-name");
        assert_eq!(set_name("a__b"), "a-b");
        assert!(validate_airflow_key(&"a".repeat(221), 220).is_err());
        assert!(validate_airflow_key(&"a".repeat(220), 220).is_ok());
        assert!(validate_airflow_key("a b", 220).is_err());
        assert!(validate_airflow_key("a..b", 220).is_err());
    }

    #[test]
    fn kubernetes_syntaxes() {
        assert!(is_dns1123_label("base"));
        assert!(!is_dns1123_label("Base"));
        assert!(is_dns1123_subdomain("memory-demo.x"));
        assert!(validate_label_key("app.kubernetes.io/name").is_ok());
        assert!(validate_label_key("bad key").is_err());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("-x").is_err());
    }
}
