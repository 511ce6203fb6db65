//! `spec::Error`: why a task file could not be loaded, naming the file, the key path and
//! what was expected. Every validation problem is gathered before returning, so one run
//! shows them all.

use std::fmt;
use std::path::PathBuf;

use super::path::KeyPath;

/// One thing wrong with a task file: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where in the file (or in the pod template file, see `message`).
    pub path: KeyPath,
    /// What was wrong and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_root() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Loading a task file failed. All variants are bad input (exit code 2).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task file could not be read.
    #[error("{}: cannot read the task file", file.display())]
    Read {
        /// The task file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed YAML or JSON.
    #[error("{}: not valid {format}: {message}", file.display())]
    Syntax {
        /// The file that failed to parse (the task file or its pod template file).
        file: PathBuf,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parsed, but keys or values are wrong.
    #[error("{}", render_problems(file, problems))]
    Invalid {
        /// The task file.
        file: PathBuf,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// A command-line override (`--param`, `--var`, `--logical-date`) is malformed.
    #[error("{0}")]
    Option(String),
}

fn render_problems(file: &std::path::Path, problems: &[Problem]) -> String {
    match problems {
        [one] => format!("{}: {one}", file.display()),
        many => {
            let mut text = format!("{}: {} problems:", file.display(), many.len());
            for p in many {
                text.push_str("\n  ");
                text.push_str(&p.to_string());
            }
            text
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
