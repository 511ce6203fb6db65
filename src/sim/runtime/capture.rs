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

/// Bytes read from a pipe at once.
const READ_BUF: usize = 16 * 1024;

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

/// Stamps records with the time they are written, as containerd does per line (so lines
/// of one read get distinct, increasing times on a fine clock). Formatting the date part
/// once per second keeps a 200,000-line burst cheap.
pub(crate) struct Clock {
    /// A fixed stamp, for tests.
    fixed: Option<String>,
    second: i64,
    prefix: String,
}

impl Clock {
    /// The wall clock.
    pub(crate) fn system() -> Clock {
        Clock {
            fixed: None,
            second: i64::MIN,
            prefix: String::new(),
        }
    }

    #[cfg(test)]
    fn fixed(stamp: &str) -> Clock {
        Clock {
            fixed: Some(stamp.into()),
            ..Clock::system()
        }
    }

    /// Appends the current time as `2026-11-27T09:49:01.123456789Z`.
    fn stamp(&mut self, out: &mut Vec<u8>) {
        if let Some(f) = &self.fixed {
            out.extend_from_slice(f.as_bytes());
            return;
        }
        let now = jiff::Timestamp::now();
        if now.as_second() != self.second {
            self.second = now.as_second();
            // "YYYY-MM-DDTHH:MM:SS." from the full format (fixed width up to year 9999).
            let full = format_timestamp(now);
            self.prefix = full[..full.len() - 10].to_string();
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let nanos = now.subsec_nanosecond().unsigned_abs();
        let _ = write!(out, "{nanos:09}Z");
    }
}

/// Appends one CRI record to `out`.
fn record(out: &mut Vec<u8>, ts: &mut Clock, stream: Stream, partial: bool, content: &[u8]) {
    ts.stamp(out);
    out.push(b' ');
    out.extend_from_slice(stream.tag());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Moves every complete line of `pending` into records; at EOF the rest becomes `P`.
fn split(out: &mut Vec<u8>, pending: &mut Vec<u8>, ts: &mut Clock, stream: Stream, eof: bool) {
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
    // Small buffers: hundreds of mostly idle containers each hold a pair for their whole
    // life; `records` grows only when a container is chatty.
    let mut out_buf = vec![0u8; READ_BUF];
    let mut err_buf = vec![0u8; READ_BUF];
    let mut records = Vec::new();
    let mut clock = Clock::system();
    while out_open || err_open {
        let (stream, n) = tokio::select! {
            r = stdout.read(&mut out_buf), if out_open => (Stream::Stdout, r.unwrap_or(0)),
            r = stderr.read(&mut err_buf), if err_open => (Stream::Stderr, r.unwrap_or(0)),
        };
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
        split(&mut records, pending, &mut clock, stream, n == 0);
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
        let mut clock = Clock::fixed("T");
        for chunk in input {
            pending.extend_from_slice(chunk);
            split(&mut out, &mut pending, &mut clock, Stream::Stdout, false);
        }
        if eof {
            split(&mut out, &mut pending, &mut clock, Stream::Stdout, true);
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
    fn system_clock_stamps_like_the_kubelet_and_never_repeats_the_date_wrongly() {
        let mut clock = Clock::system();
        let mut out = Vec::new();
        clock.stamp(&mut out);
        let s = String::from_utf8(out).expect("utf8");
        assert_eq!(s.len(), 30);
        let parsed: jiff::Timestamp = s.parse().expect("rfc3339");
        assert_eq!(format_timestamp(parsed), s);
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
