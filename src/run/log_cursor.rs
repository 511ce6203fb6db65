//! Exact log resume: the position after the last emitted line, and the de-duplication of a
//! re-opened stream against it.
//!
//! Logs are requested with `timestamps=true`, so every line starts with the kubelet's
//! RFC 3339 timestamp (nanoseconds). The cursor is (last timestamp, lines emitted with
//! exactly that timestamp). A resumed stream starts at `sinceTime` = the cursor's second,
//! rounded *down* (the API's precision is one second), and drops every line before the
//! cursor plus the first `count` lines at its timestamp. Several lines sharing a
//! timestamp, and a resume inside such a run, therefore come out exactly once.
//!
//! Unlike the operator (`since_seconds`, whole-second overlap re-printed, or `+2 s`
//! skipped), nothing is repeated and nothing is dropped.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where a container's log output stands: after `count` lines stamped `ts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Timestamp of the last emitted line; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Timestamp>,
    /// How many emitted lines carry exactly `ts`.
    #[serde(default)]
    pub count: u64,
}

impl Cursor {
    /// The `sinceTime` to resume from: the cursor's second, rounded down.
    pub fn since_time(&self) -> Option<Timestamp> {
        let ts = self.ts?;
        let secs = ts.as_second();
        // A negative fraction would round up; timestamps before 1970 do not occur.
        Timestamp::from_second(secs).ok()
    }

    fn advance(&mut self, ts: Timestamp) {
        if self.ts == Some(ts) {
            self.count += 1;
        } else {
            self.ts = Some(ts);
            self.count = 1;
        }
    }
}

/// Split a `timestamps=true` log line into its timestamp and text.
///
/// A line without a valid leading timestamp yields `None` and the whole line as text.
pub fn split_line(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((head, rest)) => match head.parse::<Timestamp>() {
            Ok(ts) => (Some(ts), rest),
            Err(_) => (None, line),
        },
        None => match line.parse::<Timestamp>() {
            // A timestamp alone: an empty line.
            Ok(ts) => (Some(ts), ""),
            Err(_) => (None, line),
        },
    }
}

/// The de-duplicating filter over one stream (initial or resumed) of a container's log.
#[derive(Debug, Clone)]
pub struct Dedup {
    cursor: Cursor,
    /// While resuming: the cursor the stream was opened at, and how many lines at its
    /// timestamp this stream has skipped so far.
    resume: Option<(Cursor, u64)>,
}

impl Dedup {
    /// Start from `cursor` (the default cursor for a first stream).
    pub fn new(cursor: Cursor) -> Self {
        Dedup {
            cursor,
            resume: None,
        }
    }

    /// The position after the last accepted line.
    pub fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    /// Whether the current stream has not yet re-reached the cursor: a stream that ends
    /// in this state was cut short (the log holds at least everything up to the cursor).
    pub fn resuming(&self) -> bool {
        matches!(&self.resume, Some((at, skipped)) if *skipped < at.count)
    }

    /// A new stream is about to be read from [`Cursor::since_time`]: skip what was seen.
    pub fn begin_stream(&mut self) {
        self.resume = self.cursor.ts.is_some().then(|| (self.cursor.clone(), 0));
    }

    /// Whether a line with this timestamp is new; advances the cursor when it is.
    ///
    /// A line without a timestamp (should not happen with `timestamps=true`) is accepted
    /// and does not move the cursor.
    pub fn accept(&mut self, ts: Option<Timestamp>) -> bool {
        let Some(ts) = ts else { return true };
        if let Some((at, skipped)) = &mut self.resume {
            let Some(at_ts) = at.ts else {
                self.resume = None;
                self.cursor.advance(ts);
                return true;
            };
            if ts < at_ts {
                return false;
            }
            if ts == at_ts && *skipped < at.count {
                *skipped += 1;
                return false;
            }
            self.resume = None;
        }
        self.cursor.advance(ts);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn splits_timestamp_and_text() {
        let (t, text) = split_line("2026-01-01T00:00:01.500000000Z hello world");
        assert_eq!(t, Some(ts("2026-01-01T00:00:01.5Z")));
        assert_eq!(text, "hello world");
        assert_eq!(split_line("no timestamp here"), (None, "no timestamp here"));
        assert_eq!(split_line("2026-01-01T00:00:01Z").1, "");
    }

    #[test]
    fn since_time_rounds_down_to_the_second() {
        let c = Cursor {
            ts: Some(ts("2026-01-01T00:00:01.999Z")),
            count: 1,
        };
        assert_eq!(c.since_time(), Some(ts("2026-01-01T00:00:01Z")));
        assert_eq!(Cursor::default().since_time(), None);
    }

    /// Simulate a stream cut after `cut` lines and a resume from `sinceTime`: every line
    /// comes out exactly once, including runs of equal timestamps across the cut.
    #[test]
    fn resume_at_every_cut_point_is_exact() {
        let stamps: Vec<Timestamp> = [
            "2026-01-01T00:00:00.1Z",
            "2026-01-01T00:00:00.1Z",
            "2026-01-01T00:00:00.7Z",
            "2026-01-01T00:00:01.2Z",
            "2026-01-01T00:00:01.2Z",
            "2026-01-01T00:00:01.2Z",
            "2026-01-01T00:00:01.9Z",
            "2026-01-01T00:00:02Z",
        ]
        .iter()
        .map(|s| ts(s))
        .collect();
        for cut in 0..=stamps.len() {
            let mut d = Dedup::new(Cursor::default());
            d.begin_stream();
            let mut out: Vec<usize> = Vec::new();
            for (i, t) in stamps.iter().enumerate().take(cut) {
                if d.accept(Some(*t)) {
                    out.push(i);
                }
            }
            // The server re-sends from the cursor's whole second.
            let since = d.cursor().since_time();
            d.begin_stream();
            for (i, t) in stamps.iter().enumerate() {
                if since.is_some_and(|s| *t < s) {
                    continue;
                }
                if d.accept(Some(*t)) {
                    out.push(i);
                }
            }
            assert_eq!(
                out,
                (0..stamps.len()).collect::<Vec<_>>(),
                "cut after {cut}"
            );
        }
    }

    #[test]
    fn a_stream_ending_before_the_cursor_is_still_resuming() {
        let t1 = ts("2026-01-01T00:00:00.1Z");
        let t2 = ts("2026-01-01T00:00:00.2Z");
        let mut d = Dedup::new(Cursor::default());
        d.begin_stream();
        for t in [t1, t2, t2] {
            assert!(d.accept(Some(t)));
        }
        d.begin_stream();
        assert!(d.resuming());
        assert!(!d.accept(Some(t1)));
        assert!(!d.accept(Some(t2)));
        assert!(d.resuming(), "one of two lines at the cursor still to come");
        assert!(!d.accept(Some(t2)));
        assert!(
            !d.resuming(),
            "exactly at the cursor: the stream may end here"
        );
    }

    #[test]
    fn cursor_round_trips_as_json() {
        let c = Cursor {
            ts: Some(ts("2026-01-01T00:00:01.123456789Z")),
            count: 2,
        };
        let s = serde_json::to_string(&c).expect("serialise");
        assert_eq!(serde_json::from_str::<Cursor>(&s).expect("parse"), c);
    }
}
