//! The pod lifecycle against a Kubernetes API server: create (or adopt), start, logs,
//! completion, XCom, outcome, cleanup; plus detach and attach.
//!
//! Entry points: [`Kube::connect`] builds the process's one client, [`execute`] runs a
//! built pod to its [`Report`]. Everything that waits is driven by one watch on the pod
//! (no polling); every request goes through one retry policy ([`retry`]). Output goes
//! through [`Ui`]; the run-time hook points are the [`Hooks`] trait.

mod await_start;
mod cleanup;
pub mod conditions;
pub mod connect;
mod create_pod;
mod events;
mod hooks;
pub mod identity;
mod lifecycle;
pub mod log_cursor;
pub mod outcome;
mod params;
mod report;
pub mod retry;
mod sidecars;
mod stream_logs;
mod watch;
mod xcom;

pub use connect::{Connection, Kube};
pub use hooks::{Decision, Hooks, NoHooks};
pub use lifecycle::{execute, Interrupt, Mode};
pub use outcome::{Outcome, Status};
pub use params::{ContainerSelection, OnFinishAction, Params};
pub use report::{EventRecord, Report, Timestamps, Ui};

/// Why a run could not be carried to an outcome. Task failures are not errors: they are
/// an [`Outcome`] with [`Status::Failed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building the client from the configuration failed.
    #[error("cannot connect to the Kubernetes API")]
    Connect(#[source] connect::Error),
    /// Listing this run's existing pods failed.
    #[error("cannot look for existing pods of this run")]
    FindPod(#[source] kube::Error),
    /// The API server refused or failed the pod creation.
    #[error("cannot create pod {name} in namespace {namespace}")]
    CreatePod {
        /// Pod name.
        name: String,
        /// Namespace.
        namespace: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// A pod with our name exists but is not ours (409 on create, other identity).
    #[error("pod {name} already exists and does not carry this run's identity labels")]
    NameTaken {
        /// Pod name.
        name: String,
    },
    /// Reading a pod failed.
    #[error("cannot read pod {name}")]
    ReadPod {
        /// Pod name.
        name: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// The pod watch could not be (re)established.
    #[error("cannot watch pod {name}")]
    WatchPod {
        /// Pod name.
        name: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// Deleting the pod failed.
    #[error("cannot delete pod {name}")]
    DeletePod {
        /// Pod name.
        name: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// Patching the pod (checked label, cursor) failed.
    #[error("cannot patch pod {name}")]
    PatchPod {
        /// Pod name.
        name: String,
        /// The API's answer.
        #[source]
        source: kube::Error,
    },
    /// The pod handed to the runner has no name or namespace.
    #[error("the pod to run has no {0}")]
    PodIncomplete(&'static str),
    /// An attach handle or pod lacks what attach needs.
    #[error("cannot attach: {0}")]
    Attach(String),
    /// A hook failed.
    #[error("hook failed at {point}: {message}")]
    Hook {
        /// The hook point.
        point: &'static str,
        /// The hook's error.
        message: String,
    },
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Hook { .. } => crate::exit::HOOK_FAILED,
            _ => crate::exit::INFRASTRUCTURE,
        }
    }
}

/// Result alias for the runner.
pub type Result<T, E = Error> = std::result::Result<T, E>;
