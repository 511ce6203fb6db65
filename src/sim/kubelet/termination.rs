//! A terminated container's `message`: its termination-message file, or with
//! `FallbackToLogsOnError` and a failure, the tail of its log (the kubelet's last 80
//! lines, at most 2048 bytes).

use std::io::Read;
use std::path::Path;

/// Most bytes read from a termination-message file (the kubelet's per-container cap).
const MAX_FILE_MESSAGE: u64 = 4096;
/// Lines of log used as the fallback message.
const TAIL_LINES: usize = 80;
/// Bytes of log used as the fallback message.
const TAIL_BYTES: usize = 2048;

/// The message for a container that exited with `exit_code`.
pub fn message(file: &Path, log: &Path, policy: Option<&str>, exit_code: i32) -> Option<String> {
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open(file) {
        let mut buf = Vec::new();
        if f.take(MAX_FILE_MESSAGE).read_to_end(&mut buf).is_ok() {
            text = String::from_utf8_lossy(&buf).into_owned();
        }
    }
    if text.is_empty() && exit_code != 0 && policy == Some("FallbackToLogsOnError") {
        text = log_tail(log);
    }
    (!text.is_empty()).then_some(text)
}

/// The last lines of a CRI-format log (`<time> <stream> <P|F> <content>`), joined.
pub fn log_tail(log: &Path) -> String {
    let Ok(raw) = std::fs::read(log) else {
        return String::new();
    };
    let raw = String::from_utf8_lossy(&raw);
    let mut lines: Vec<String> = Vec::new();
    let mut partial = String::new();
    for record in raw.lines() {
        let mut parts = record.splitn(4, ' ');
        let (_time, _stream, tag) = (parts.next(), parts.next(), parts.next());
        let content = parts.next().unwrap_or("");
        partial.push_str(content);
        if tag != Some("P") {
            partial.push('\n');
            lines.push(std::mem::take(&mut partial));
        }
    }
    if !partial.is_empty() {
        lines.push(partial);
    }
    let start = lines.len().saturating_sub(TAIL_LINES);
    let joined: String = lines[start..].concat();
    if joined.len() <= TAIL_BYTES {
        return joined;
    }
    let mut cut = joined.len() - TAIL_BYTES;
    while !joined.is_char_boundary(cut) {
        cut += 1;
    }
    joined[cut..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_joins_partial_lines_and_keeps_the_last_80() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("0.log");
        let mut s = String::new();
        for i in 0..100 {
            s.push_str(&format!(
                "2024-01-01T00:00:00.000000000Z stdout F line {i}\n"
            ));
        }
        s.push_str("2024-01-01T00:00:00.000000000Z stderr P half \n");
        s.push_str("2024-01-01T00:00:00.000000000Z stderr F done\n");
        std::fs::write(&log, s).expect("write log");
        let tail = log_tail(&log);
        assert!(tail.starts_with("line 21\n"), "{tail}");
        assert!(tail.ends_with("line 99\nhalf done\n"));
        let missing = dir.path().join("none");
        assert_eq!(message(&missing, &log, Some("File"), 1), None);
        assert_eq!(
            message(&missing, &log, Some("FallbackToLogsOnError"), 0),
            None
        );
        assert_eq!(
            message(&missing, &log, Some("FallbackToLogsOnError"), 1).as_deref(),
            Some(tail.as_str())
        );
        let file = dir.path().join("msg");
        std::fs::write(&file, "bye").expect("write msg");
        assert_eq!(
            message(&file, &log, Some("FallbackToLogsOnError"), 1).as_deref(),
            Some("bye")
        );
    }
}
