//! The `podrun` command line: parse arguments, call the library, map errors to exit codes.
//!
//! Each subcommand's arguments and implementation live in `podrun::cli::<name>`; the exit
//! codes are the table in `podrun::exit` (documented in the README).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// mimalloc with lazily committed arenas (see `podrun::allocator`).
podrun::allocator!();

/// Run tasks as Kubernetes pods, with the KubernetesPodOperator's semantics.
#[derive(Debug, Parser)]
#[command(name = "podrun", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the pod a task would create, without contacting a cluster.
    Render(podrun::cli::render::Args),
    /// Run the local Kubernetes simulator until Ctrl-C.
    Sim(podrun::cli::sim::Args),
    /// Test and check Rhai and WASM hooks.
    Hooks(podrun::cli::hooks::Args),
    /// Run a task as a pod: create, start, logs, XCom, outcome, cleanup.
    Run(podrun::cli::run::Args),
    /// Resume a detached run (`podrun run --detach`): logs, completion, XCom, cleanup.
    Attach(podrun::cli::run::AttachArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: podrun::cli::Result = match cli.command {
        Command::Render(args) => podrun::cli::render::run(args),
        Command::Sim(args) => podrun::cli::sim::run(args),
        Command::Hooks(args) => podrun::cli::hooks::run(args),
        Command::Run(args) => podrun::cli::run::run(args),
        Command::Attach(args) => podrun::cli::run::attach(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {}", chain(&err));
            ExitCode::from(err.code)
        }
    }
}

/// The error and its causes on one line, `: `-separated, without repeating a cause that
/// the message already contains.
fn chain(err: &podrun::cli::Error) -> String {
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        let part = c.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}
