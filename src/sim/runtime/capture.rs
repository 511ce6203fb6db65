//! Captures a container's stdout and stderr into its CRI-format log file, as containerd's
//! `redirectLogs` does: one record per line, `F` for a full line, `P` for a piece of a line
//! longer than [`MAX_LINE`] or a last line with no newline.
//!
//! One task reads both pipes so records from the two streams are ordered by read time.
//! It owns the file; readers learn about new data through the [`LogState`] watch channel.

use std::io::Write;

use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::logs::{format_timestamp, LogState};

/// Longest content per record; longer lines are split into `P` records (containerd's
/// default `max_container_log_line_size`).
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// Which stream a record came from (the CRI log's second field).
#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }
}

/// Appends one CRI record to `out`.
fn record(out: &mut Vec<u8>, ts: &str, stream: Stream, partial: bool, content: &[u8]) {
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.tag());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Moves every complete line of `pending` into records; at EOF the rest becomes `P`.
fn split(out: &mut Vec<u8>, pending: &mut Vec<u8>, ts: &str, stream: Stream, eof: bool) {
    let mut start = 0;
    while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
        let mut line = &pending[start..start + pos];
        while line.len() > MAX_LINE {
            record(out, ts, stream, true, &line[..MAX_LINE]);
            line = &line[MAX_LINE..];
        }
        record(out, ts, stream, false, line);
        start += pos + 1;
    }
    let mut rest = &pending[start..];
    while rest.len() > MAX_LINE {
        record(out, ts, stream, true, &rest[..MAX_LINE]);
        rest = &rest[MAX_LINE..];
    }
    if eof && !rest.is_empty() {
        // containerd: a stream ending without a newline leaves a partial line.
        record(out, ts, stream, true, rest);
        rest = &[];
    }
    let keep = rest.len();
    let len = pending.len();
    pending.copy_within(len - keep.., 0);
    pending.truncate(keep);
}

/// Copies both pipes into `file` until both reach EOF. The caller marks the log done once
/// the container has also exited (a container may close its output and keep running).
pub(crate) async fn run<O, E>(
    mut stdout: O,
    mut stderr: E,
    mut file: std::fs::File,
    progress: &watch::Sender<LogState>,
) where
    O: tokio::io::AsyncRead + Unpin,
    E: tokio::io::AsyncRead + Unpin,
{
    let (mut out_open, mut err_open) = (true, true);
    let (mut out_pending, mut err_pending) = (Vec::new(), Vec::new());
    let mut out_buf = vec![0u8; 64 * 1024];
    let mut err_buf = vec![0u8; 64 * 1024];
    let mut records = Vec::with_capacity(128 * 1024);
    while out_open || err_open {
        let (stream, n) = tokio::select! {
            r = stdout.read(&mut out_buf), if out_open => (Stream::Stdout, r.unwrap_or(0)),
            r = stderr.read(&mut err_buf), if err_open => (Stream::Stderr, r.unwrap_or(0)),
        };
        let ts = format_timestamp(jiff::Timestamp::now());
        let (pending, buf, open) = match stream {
            Stream::Stdout => (&mut out_pending, &out_buf, &mut out_open),
            Stream::Stderr => (&mut err_pending, &err_buf, &mut err_open),
        };
        if n == 0 {
            *open = false;
        } else {
            pending.extend_from_slice(&buf[..n]);
        }
        records.clear();
        split(&mut records, pending, &ts, stream, n == 0);
        if !records.is_empty() {
            // A failed write (disk full) loses log lines but must not stall the container,
            // whose pipes would otherwise fill up; keep draining.
            if file.write_all(&records).is_ok() {
                let n = records.len() as u64;
                progress.send_modify(|s| s.written += n);
            }
        }
    }
    let _ = file.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[&[u8]], eof: bool) -> String {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for chunk in input {
            pending.extend_from_slice(chunk);
            split(&mut out, &mut pending, "T", Stream::Stdout, false);
        }
        if eof {
            split(&mut out, &mut pending, "T", Stream::Stdout, true);
        }
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn splits_full_lines_and_keeps_pending() {
        assert_eq!(
            lines(&[b"a\nb", b"c\n"], false),
            "T stdout F a\nT stdout F bc\n"
        );
        assert_eq!(lines(&[b"a\nb"], false), "T stdout F a\n");
        assert_eq!(lines(&[b"a\nb"], true), "T stdout F a\nT stdout P b\n");
        assert_eq!(lines(&[b"\n"], true), "T stdout F \n");
    }

    #[test]
    fn long_lines_become_partials() {
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let mut input = long.clone();
        input.push(b'\n');
        let out = lines(&[&input], true);
        let tags: Vec<&str> = out.lines().map(|l| &l[9..10]).collect();
        assert_eq!(tags, ["P", "P", "F"]);
        assert_eq!(out.len(), long.len() + 3 * "T stdout F \n".len());
    }
}
