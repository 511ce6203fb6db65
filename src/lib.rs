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

/// What [`allocator!`] expands to refers to these (a binary need not depend on them).
#[doc(hidden)]
pub mod __allocator {
    pub use libmimalloc_sys::{mi_option_set, mi_option_t};
    pub use mimalloc::MiMalloc;

    /// `mi_option_arena_eager_commit` in mimalloc v3's `mimalloc.h` (the crate exports no
    /// constant for it).
    pub const ARENA_EAGER_COMMIT: mi_option_t = 4;
}

/// Declares podrun's global allocator in a binary: mimalloc instead of glibc's (hook calls
/// convert whole pods and log batches between JSON and script values and are dominated by
/// small allocations; mimalloc cuts a Rhai `mutate_pod` call by about a quarter, see
/// BENCHMARKS.md), with arenas committed as they are used rather than up front (up front
/// costs `podrun run` about 10 MB of resident memory). The option must be set before the
/// first allocation creates an arena, which happens before `main`, so it is set from an
/// ELF constructor (the same as `MIMALLOC_ARENA_EAGER_COMMIT=0` in the environment). Used
/// by the `podrun` binary and the hook benchmarks; tests keep the system allocator.
#[macro_export]
macro_rules! allocator {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::__allocator::MiMalloc = $crate::__allocator::MiMalloc;

        extern "C" fn podrun_lazy_arena_commit() {
            // SAFETY: sets one of mimalloc's option slots; no other thread exists yet.
            unsafe {
                $crate::__allocator::mi_option_set($crate::__allocator::ARENA_EAGER_COMMIT, 0)
            };
        }

        #[used]
        #[link_section = ".init_array"]
        static PODRUN_LAZY_ARENA_COMMIT: extern "C" fn() = podrun_lazy_arena_commit;
    };
}
