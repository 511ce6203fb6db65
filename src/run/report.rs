//! Everything a run prints, and the machine-readable run report.
//!
//! Container output goes to stdout, podrun's own messages to stderr. On a terminal,
//! stderr carries one live status line (phase, reason, elapsed, latest event) that is
//! cleared before any other line; otherwise state changes are plain lines. Nothing else
//! in `run` prints.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::outcome::Outcome;

/// One pod event seen during the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The event's reason (`Scheduled`, `Pulling`, `FailedScheduling`...).
    pub reason: String,
    /// The event's message.
    pub message: String,
}

/// Lifecycle timestamps (RFC 3339), each when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamps {
    /// The pod's creationTimestamp.
    pub created: Option<String>,
    /// When the PodScheduled condition became True.
    pub scheduled: Option<String>,
    /// When the base container started.
    pub started: Option<String>,
    /// When the base container finished.
    pub finished: Option<String>,
    /// When podrun saw the base container's end (its own clock, nanoseconds).
    pub completed: Option<String>,
    /// When podrun finished cleaning up.
    pub cleaned: Option<String>,
}

/// The run report (`--report FILE`, `-o json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// The pod's name.
    pub pod_name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's uid.
    pub uid: Option<String>,
    /// Whether an existing pod was adopted instead of created.
    pub adopted: bool,
    /// The outcome (absent when the run ended in an error before deciding one).
    #[serde(flatten)]
    pub outcome: Option<Outcome>,
    /// The XCom value (`null` for an empty result file); absent without do_xcom_push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xcom: Option<Value>,
    /// Lifecycle timestamps.
    pub timestamps: Timestamps,
    /// Lines written per container.
    pub log_lines: BTreeMap<String, u64>,
    /// Pod events seen.
    pub events: Vec<EventRecord>,
    /// Hook decisions and records.
    pub hooks: Vec<Value>,
    /// What the pod's cleanup did: `deleted`, `kept`, or `gone`.
    pub cleanup: Option<String>,
    /// An error that ended the run early, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The process exit code podrun ends with.
    pub exit_code_podrun: u8,
}

/// The one owner of stdout and stderr during a run.
pub struct Ui {
    tty: bool,
    quiet_status: bool,
    logs_to_stderr: bool,
    start: Instant,
    status: Mutex<String>,
    out: Mutex<std::io::BufWriter<std::io::Stdout>>,
}

impl Ui {
    /// A UI writing to this process's stdout and stderr. `status_line` enables the live
    /// status line when stderr is a terminal.
    pub fn new(status_line: bool) -> Self {
        Ui {
            tty: status_line && std::io::stderr().is_terminal(),
            quiet_status: false,
            logs_to_stderr: false,
            start: Instant::now(),
            status: Mutex::new(String::new()),
            out: Mutex::new(std::io::BufWriter::with_capacity(
                64 * 1024,
                std::io::stdout(),
            )),
        }
    }

    /// A UI that prints only messages, no status updates (attach of a detached run, json).
    pub fn quiet(mut self) -> Self {
        self.quiet_status = true;
        self
    }

    fn clear_status(&self, err: &mut impl Write) {
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
    }

    /// A podrun message line on stderr.
    pub fn message(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        self.clear_status(&mut err);
        let _ = writeln!(err, "{}", sanitize(text));
        if self.tty {
            let s = self.status.lock().map(|s| s.clone()).unwrap_or_default();
            let _ = write!(err, "{s}");
        }
    }

    /// Update the status: redrawn in place on a terminal, one plain line per change
    /// otherwise.
    pub fn status(&self, text: &str) {
        if self.quiet_status {
            return;
        }
        let line = format!(
            "podrun: {} [{:.1}s]",
            sanitize(text),
            self.start.elapsed().as_secs_f64()
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            self.clear_status(&mut err);
            let _ = write!(err, "{line}");
            if let Ok(mut s) = self.status.lock() {
                *s = line;
            }
        } else {
            let mut last = match self.status.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
            if *last != text {
                let _ = writeln!(err, "podrun: {}", sanitize(text));
                *last = text.to_string();
            }
        }
    }

    /// End the status line (before the final message).
    pub fn end_status(&self) {
        if self.tty {
            let mut err = std::io::stderr().lock();
            self.clear_status(&mut err);
            if let Ok(mut s) = self.status.lock() {
                s.clear();
            }
        }
    }

    /// Send container output to stderr (stdout is reserved for the JSON report).
    pub fn logs_to_stderr(mut self) -> Self {
        self.logs_to_stderr = true;
        self
    }

    /// Container output lines to stdout, prefixed `[container] ` when `prefix`.
    pub fn log_lines(&self, container: &str, lines: &[String], prefix: bool) {
        if self.logs_to_stderr {
            let mut err = std::io::stderr().lock();
            self.clear_status(&mut err);
            for l in lines {
                let _ = if prefix {
                    writeln!(err, "[{container}] {l}")
                } else {
                    writeln!(err, "{l}")
                };
            }
            return;
        }
        let Ok(mut out) = self.out.lock() else { return };
        if self.tty {
            let mut err = std::io::stderr().lock();
            self.clear_status(&mut err);
        }
        for l in lines {
            let _ = if prefix {
                writeln!(out, "[{container}] {l}")
            } else {
                writeln!(out, "{l}")
            };
        }
        let _ = out.flush();
    }

    /// Print a line of data (the detach handle, the JSON report) on stdout.
    pub fn data(&self, text: &str) {
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
    }
}

/// Neutralise terminal control characters in untrusted text (events, messages) bound for
/// stderr; newlines and tabs are kept.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_neutralised() {
        assert_eq!(sanitize("a\x1b[2Jb\nc"), "a\u{FFFD}[2Jb\nc");
    }

    #[test]
    fn report_serialises_outcome_flat() {
        let r = Report {
            pod_name: "p".into(),
            namespace: "ns".into(),
            outcome: Some(Outcome {
                status: super::super::outcome::Status::Skipped,
                exit_code: Some(42),
                reason: None,
                message: "m".into(),
            }),
            ..Default::default()
        };
        let v: Value = serde_json::to_value(&r).expect("serialise");
        assert_eq!(v["status"], "skipped");
        assert_eq!(v["exit_code"], 42);
        assert!(v.get("xcom").is_none());
    }
}
