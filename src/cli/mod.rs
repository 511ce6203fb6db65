//! Library side of the command line: one file per subcommand, each with its clap `Args`
//! struct and a `run` function that does the work and returns an exit code.
//!
//! `main.rs` only parses arguments, calls these functions and prints errors. Every
//! command maps its own failures to the codes in [`crate::exit`] through [`Error`].

pub mod hooks;
pub mod render;
pub mod run;
mod run_hooks;
pub mod sim;

use std::fmt;

/// A command's failure together with the exit code it should end the process with.
#[derive(Debug)]
pub struct Error {
    /// Exit code from [`crate::exit`].
    pub code: u8,
    /// What went wrong; `main.rs` prints the whole source chain.
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl Error {
    /// Wrap `source` with the exit code it maps to.
    pub fn new(code: u8, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error {
            code,
            source: source.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

/// What every subcommand returns: the exit code on a normal end, or an error with its code.
pub type Result<T = u8, E = Error> = std::result::Result<T, E>;
