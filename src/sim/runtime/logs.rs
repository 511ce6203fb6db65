//! Reads a container's CRI-format log file the way the kubelet's log endpoint does
//! (`pkg/kubelet/kuberuntime/logs`): content lines, partial records joined, optional
//! RFC3339Nano timestamps, `sinceTime`/`sinceSeconds`, `tailLines`, `limitBytes`, and
//! `follow` until the container has exited and the file is drained.
//!
//! Reading never blocks the writer: followers wake on the writer's [`LogProgress`]
//! notifications (with a slow poll as a safety net), so a follow ends as soon as the
//! capture task marks the log done.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use futures::Stream;
use hyper::body::Bytes;
use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::watch;

/// Query options of the pod log endpoint (`PodLogOptions`), minus `container`/`previous`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming new lines until the container exits.
    pub follow: bool,
    /// Prefix each line with its RFC3339Nano timestamp (always 9 fractional digits) and a space.
    pub timestamps: bool,
    /// Only lines logged at or after this time.
    pub since_time: Option<Timestamp>,
    /// Only lines logged in the last N seconds (relative to when reading starts).
    pub since_seconds: Option<i64>,
    /// Only the last N lines, counted as logical lines (a trailing unterminated line counts).
    /// The kubelet counts file records instead, so a line longer than 16 KiB (several `P`
    /// records) differs: it counts as 1 here and as several there.
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes of output, possibly mid-line.
    pub limit_bytes: Option<u64>,
}

/// What the writer has done so far; shared through a watch channel.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogState {
    /// Bytes appended to the file by the capture task.
    pub written: u64,
    /// The container has exited and every byte of its output is in the file.
    pub done: bool,
}

/// Tells a log reader when new data may be in the file and when the log is complete.
#[derive(Debug, Clone)]
pub struct LogProgress {
    rx: watch::Receiver<LogState>,
}

impl LogProgress {
    pub(crate) fn new(rx: watch::Receiver<LogState>) -> LogProgress {
        LogProgress { rx }
    }

    /// For a log whose container is known to have exited (nothing more will be written).
    pub fn finished() -> LogProgress {
        let (_tx, rx) = watch::channel(LogState {
            written: 0,
            done: true,
        });
        LogProgress { rx }
    }

    /// Whether the log is complete (container exited, output fully written).
    pub fn is_done(&self) -> bool {
        // A dropped writer also means nothing more will come.
        self.rx.borrow().done || self.rx.has_changed().is_err()
    }

    /// Waits for new data or completion (at most `max`, as a safety net).
    async fn changed(&mut self, max: Duration) {
        let _ = tokio::time::timeout(max, self.rx.changed()).await;
    }
}

/// Formats a timestamp like the kubelet: `2026-11-27T09:49:01.123456789Z`.
pub(crate) fn format_timestamp(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

/// One parsed CRI log record.
struct Record<'a> {
    timestamp: &'a [u8],
    partial: bool,
    content: &'a [u8],
}

/// Parses `<ts> <stream> <tags> <content>` (without the trailing newline).
fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let timestamp = parts.next()?;
    let stream = parts.next()?;
    if stream != b"stdout" && stream != b"stderr" {
        return None;
    }
    let tags = parts.next()?;
    let partial = tags.split(|&b| b == b':').any(|t| t == b"P");
    Some(Record {
        timestamp,
        partial,
        content: parts.next().unwrap_or_default(),
    })
}

fn parse_timestamp(raw: &[u8]) -> Option<Timestamp> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// The kubelet's output format needs exactly 9 fractional digits; our writer already
/// writes that, so only foreign formats (containerd trims zeros) are re-rendered.
fn output_timestamp(raw: &[u8], out: &mut Vec<u8>) {
    if raw.len() == 30 && raw[19] == b'.' && raw[29] == b'Z' {
        out.extend_from_slice(raw);
    } else if let Some(ts) = parse_timestamp(raw) {
        out.extend_from_slice(format_timestamp(ts).as_bytes());
    } else {
        out.extend_from_slice(raw);
    }
}

/// Byte offset where the last `n` lines start (a line ends at an `F` record, or at EOF).
fn tail_offset(file: &mut std::fs::File, n: u64) -> io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    // `buf` holds the file bytes [pos, end): the not yet classified records before `end`.
    let (mut pos, mut end) = (len, len);
    let mut buf: Vec<u8> = Vec::new();
    let mut lines = 0u64;
    let mut is_last = true;
    let mut count = |record: &[u8], is_last: &mut bool| {
        let rec = record.strip_suffix(b"\n").unwrap_or(record);
        let counted = parse(rec).is_some_and(|r| !r.partial) || *is_last;
        *is_last = false;
        if counted {
            lines += 1;
        }
        lines > n
    };
    loop {
        let body = buf.len().saturating_sub(1);
        if let Some(i) = buf[..body].iter().rposition(|&b| b == b'\n') {
            if count(&buf[i + 1..], &mut is_last) {
                return Ok(end);
            }
            buf.truncate(i + 1);
            end = pos + i as u64 + 1;
            continue;
        }
        if pos == 0 {
            if !buf.is_empty() && count(&buf, &mut is_last) {
                return Ok(end);
            }
            return Ok(0);
        }
        let start = pos.saturating_sub(BLOCK);
        let mut block = vec![0u8; (pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        block.extend_from_slice(&buf);
        buf = block;
        pos = start;
    }
}

/// Reader state for the unfold stream.
struct Reader {
    file: BufReader<tokio::fs::File>,
    opts: LogOptions,
    since: Option<Timestamp>,
    progress: LogProgress,
    /// The next output byte starts a line (timestamps go only there, as the kubelet does).
    at_line_start: bool,
    remaining: Option<u64>,
    record: Vec<u8>,
    /// The writer was done before the last read reached EOF: that EOF is final.
    final_pass: bool,
    ended: bool,
}

const BATCH: usize = 32 * 1024;

impl Reader {
    /// Appends the output for one complete record; returns false when the limit is hit.
    fn emit(&mut self, out: &mut Vec<u8>) -> bool {
        let line = self.record.strip_suffix(b"\n").unwrap_or(&self.record);
        let Some(rec) = parse(line) else {
            return true;
        };
        let new_line_next = !rec.partial;
        if let Some(since) = self.since {
            if parse_timestamp(rec.timestamp).is_some_and(|t| t < since) {
                self.at_line_start = new_line_next;
                return true;
            }
        }
        let before = out.len();
        if self.opts.timestamps && self.at_line_start {
            output_timestamp(rec.timestamp, out);
            out.push(b' ');
        }
        out.extend_from_slice(rec.content);
        if !rec.partial {
            out.push(b'\n');
        }
        self.at_line_start = new_line_next;
        if let Some(rem) = self.remaining.as_mut() {
            let added = (out.len() - before) as u64;
            if added >= *rem {
                out.truncate(before + *rem as usize);
                *rem = 0;
                return false;
            }
            *rem -= added;
        }
        true
    }

    /// Produces the next chunk of output, or `None` at the end of the stream.
    async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        if self.ended {
            return None;
        }
        let mut out = Vec::with_capacity(BATCH);
        loop {
            let n = match self.file.read_until(b'\n', &mut self.record).await {
                Ok(n) => n,
                Err(e) => {
                    self.ended = true;
                    return Some(Err(e));
                }
            };
            if self.record.last() == Some(&b'\n') {
                let more = self.emit(&mut out);
                self.record.clear();
                if !more {
                    self.ended = true;
                    return (!out.is_empty()).then(|| Ok(Bytes::from(out)));
                }
                if out.len() >= BATCH {
                    return Some(Ok(Bytes::from(out)));
                }
                continue;
            }
            // EOF (possibly inside a record still being written).
            debug_assert!(n == 0 || !self.record.is_empty());
            if !out.is_empty() {
                return Some(Ok(Bytes::from(out)));
            }
            if !self.opts.follow || self.final_pass {
                self.ended = true;
                return None;
            }
            if self.progress.is_done() {
                // Everything is written; one more pass drains what arrived since.
                self.final_pass = true;
                continue;
            }
            self.progress.changed(Duration::from_millis(250)).await;
        }
    }
}

/// Streams the log at `path` as the pod log endpoint would (see [`LogOptions`]).
///
/// # Errors
///
/// The first item is an error if the file cannot be opened (e.g. `NotFound`).
///
/// # Caveats
///
/// Adds no timeout of its own: a follow ends only when `progress` says the log is done.
pub fn read(
    path: PathBuf,
    opts: LogOptions,
    progress: LogProgress,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    enum State {
        Start(PathBuf, LogOptions, LogProgress),
        Reading(Box<Reader>),
        Done,
    }
    futures::stream::unfold(State::Start(path, opts, progress), |state| async move {
        let mut reader = match state {
            State::Done => return None,
            State::Reading(r) => r,
            State::Start(path, opts, progress) => match open(path, opts, progress).await {
                Ok(r) => Box::new(r),
                Err(e) => return Some((Err(e), State::Done)),
            },
        };
        reader
            .next_chunk()
            .await
            .map(|item| (item, State::Reading(reader)))
    })
}

async fn open(path: PathBuf, opts: LogOptions, progress: LogProgress) -> io::Result<Reader> {
    let since_seconds = opts.since_seconds.and_then(|s| {
        Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(s))
            .ok()
    });
    // The API server rejects both at once; if both arrive anyway, the later bound wins.
    let since = match (opts.since_time, since_seconds) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let mut std_file = std::fs::File::open(&path)?;
    let offset = match opts.tail_lines {
        Some(n) => tokio::task::spawn_blocking(move || {
            let off = tail_offset(&mut std_file, n);
            off.map(|o| (o, std_file))
        })
        .await
        .map_err(io::Error::other)??,
        None => (0, std_file),
    };
    let (offset, std_file) = offset;
    let mut file = tokio::fs::File::from_std(std_file);
    file.seek(SeekFrom::Start(offset)).await?;
    let remaining = opts.limit_bytes;
    Ok(Reader {
        file: BufReader::with_capacity(64 * 1024, file),
        ended: remaining == Some(0),
        opts,
        since,
        progress,
        at_line_start: true,
        remaining,
        record: Vec::new(),
        final_pass: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::io::Write;

    fn log_file(records: &[&str]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        for r in records {
            writeln!(f, "{r}").expect("write");
        }
        f
    }

    async fn read_all(path: PathBuf, opts: LogOptions) -> String {
        let chunks: Vec<Bytes> = read(path, opts, LogProgress::finished())
            .try_collect()
            .await
            .expect("read");
        String::from_utf8(chunks.concat()).expect("utf8")
    }

    const RECS: &[&str] = &[
        "2026-01-01T00:00:01.000000000Z stdout F one",
        "2026-01-01T00:00:02.5Z stderr F two",
        "2026-01-01T00:00:03.000000000Z stdout P thr",
        "2026-01-01T00:00:03.000000001Z stdout F ee",
        "2026-01-01T00:00:04.000000000Z stdout P four",
    ];

    #[tokio::test]
    async fn joins_partials_and_prefixes_timestamps_once_per_line() {
        let f = log_file(RECS);
        let path = f.path().to_path_buf();
        assert_eq!(
            read_all(path.clone(), LogOptions::default()).await,
            "one\ntwo\nthree\nfour"
        );
        let opts = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            read_all(path, opts).await,
            "2026-01-01T00:00:01.000000000Z one\n2026-01-01T00:00:02.500000000Z two\n\
             2026-01-01T00:00:03.000000000Z three\n2026-01-01T00:00:04.000000000Z four"
        );
    }

    #[tokio::test]
    async fn tail_counts_logical_lines() {
        let f = log_file(RECS);
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..Default::default()
        };
        let p = f.path().to_path_buf();
        assert_eq!(read_all(p.clone(), tail(0)).await, "");
        assert_eq!(read_all(p.clone(), tail(1)).await, "four");
        assert_eq!(read_all(p.clone(), tail(2)).await, "three\nfour");
        assert_eq!(read_all(p.clone(), tail(3)).await, "two\nthree\nfour");
        assert_eq!(read_all(p, tail(10)).await, "one\ntwo\nthree\nfour");
    }

    #[tokio::test]
    async fn since_and_limit() {
        let f = log_file(RECS);
        let p = f.path().to_path_buf();
        let since = LogOptions {
            since_time: Some("2026-01-01T00:00:02.5Z".parse().expect("ts")),
            ..Default::default()
        };
        assert_eq!(read_all(p.clone(), since).await, "two\nthree\nfour");
        let limit = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(read_all(p, limit).await, "one\ntw");
    }
}
