//! podrun: run one task as a Kubernetes pod, with the KubernetesPodOperator's semantics
//! and sandboxed hooks.
//!
//! A task flows through the modules in this order:
//!
//! 1. [`spec`] reads the task file (YAML or JSON), renders its Jinja template fields and
//!    validates every key. Nothing here touches the network.
//! 2. [`build`] turns the validated task into the exact `Pod` the operator would build
//!    (template merge, naming, labels, secrets, XCom sidecar). Pure, no network.
//! 3. [`hooks`] runs tenant and platform hooks (Rhai or WASM) on the pod, log lines,
//!    the XCom value and the outcome. It knows nothing of Kubernetes clients.
//! 4. [`run`] creates the pod and follows its lifecycle to an outcome and cleanup.
//! 5. [`sim`] is a local Kubernetes API server with a process kubelet, used by
//!    `podrun run --local`, `podrun sim` and the test suite. It never imports `run`.
//!
//! [`exit`] is the one table that maps outcomes and errors to process exit codes.

pub mod build;
pub mod cli;
pub mod exit;
pub mod hooks;
pub mod run;
pub mod sim;
pub mod spec;
