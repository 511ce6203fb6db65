//! Pod names and label values exactly as the operator makes them: `create_unique_id`
//! (task id slugified, cut to 63), `add_unique_suffix` (base cut to 54, `-.` stripped,
//! `-` + 8 CSPRNG characters from `[a-z0-9]`) and `make_safe_label_value`.

use std::sync::LazyLock;

use md5::{Digest, Md5};
use rand::Rng;
use regex::Regex;

/// `POD_NAME_MAX_LENGTH`: Linux's HOST_NAME_MAX minus 1.
pub const POD_NAME_MAX_LENGTH: usize = 63;
/// Length of the random suffix (without its `-`).
pub const SUFFIX_LEN: usize = 8;
/// `MAX_LABEL_LEN`.
const MAX_LABEL_LEN: usize = 63;

const ALPHANUM_LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `rand_str`: `n` characters from `[a-z0-9]`, drawn from the thread-local CSPRNG
/// (ChaCha seeded by the OS), as the operator uses `secrets.choice`.
fn rand_str(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHANUM_LOWER[rng.random_range(0..ALPHANUM_LOWER.len())]))
        .collect()
}

/// Python's `s.strip("-.")` (and `strip(".-")`).
fn strip_dash_dot(s: &str) -> &str {
    s.trim_matches(|c| c == '-' || c == '.')
}

/// First `n` characters (Python slicing counts characters).
fn cut(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `add_unique_suffix(name=...)`: at most 63 characters, ending in `-` + 8 random characters.
pub fn add_unique_suffix(name: &str) -> String {
    let suffix = format!("-{}", rand_str(SUFFIX_LEN));
    let base = strip_dash_dot(cut(name, POD_NAME_MAX_LENGTH - suffix.len()));
    format!("{base}{suffix}")
}

/// python-slugify's `slugify(text, lowercase=True)` for Airflow keys: lowercase, every run
/// of characters outside `[a-z0-9]` becomes `-`, dashes trimmed. (Non-ASCII letters, which
/// slugify transliterates, are treated as separators.)
pub fn slugify(text: &str) -> String {
    static NOT_SLUG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[^a-z0-9]+").expect("literal regex"));
    let lower = text.replace('\'', "").to_lowercase();
    NOT_SLUG
        .replace_all(&lower, "-")
        .trim_matches('-')
        .to_string()
}

/// `create_unique_id(task_id=..., unique=...)`: the pod name when none was given.
pub fn create_unique_id(task_id: &str, unique: bool) -> String {
    let slug = slugify(task_id);
    let base = strip_dash_dot(cut(&slug, POD_NAME_MAX_LENGTH));
    if unique {
        add_unique_suffix(base)
    } else {
        base.to_string()
    }
}

/// `make_safe_label_value`: strip leading non-alphanumerics, drop characters outside
/// `[A-Za-z0-9_.-]`, strip trailing non-alphanumerics; if that changed anything or is
/// longer than 63, cut to 53 and append `-` + the first 9 hex digits of md5(original).
pub fn make_safe_label_value(s: &str) -> String {
    static UNSAFE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^[^a-z0-9A-Z]*|[^a-zA-Z0-9_\-\.]|[^a-z0-9A-Z]*$").expect("literal regex")
    });
    let safe = UNSAFE.replace_all(s, "").into_owned();
    if safe.len() > MAX_LABEL_LEN || safe != s {
        let digest = hex::encode(Md5::digest(s.as_bytes()));
        let hash = &digest[..9];
        format!("{}-{hash}", cut(&safe, MAX_LABEL_LEN - hash.len() - 1))
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_label_matches_the_system_test() {
        assert_eq!(
            make_safe_label_value("manual__2016-01-01T01:00:00+01:00"),
            "manual__2016-01-01T0100000100-da4d1ce7b"
        );
        assert_eq!(make_safe_label_value("plain-value_1.0"), "plain-value_1.0");
        let long = "a".repeat(70);
        let out = make_safe_label_value(&long);
        assert_eq!(out.len(), 63);
        assert!(out.starts_with(&"a".repeat(53)));
    }

    #[test]
    fn suffix_rules() {
        let n = add_unique_suffix(&format!("{}-x", "a".repeat(53)));
        // base cut to 54 characters ("a"*53 + "-"), then "-" stripped.
        assert_eq!(&n[..53], "a".repeat(53));
        assert_eq!(n.len(), 62);
        assert!(n[54..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_eq!(create_unique_id("My_Task.v2", false), "my-task-v2");
        let id = create_unique_id("hello", true);
        assert!(id.starts_with("hello-") && id.len() == 14, "{id}");
    }
}
