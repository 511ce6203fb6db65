//! The `podrun` command line: parse arguments, call the library, map errors to exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run tasks as Kubernetes pods.
#[derive(Debug, Parser)]
#[command(name = "podrun", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {}
}
