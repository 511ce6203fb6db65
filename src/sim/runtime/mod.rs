//! The simulator's container runtime: the part containerd and runc play on a real node.
//!
//! It runs a pod's containers as real host processes, each isolated by Linux namespaces
//! (through bubblewrap), captures their stdout/stderr into CRI-format log files, reads
//! those files back the way the kubelet's log endpoint does, and execs commands inside a
//! running container. It knows nothing of Kubernetes objects or HTTP: the sim kubelet
//! translates a pod spec into [`ContainerConfig`]s and container events into status.
//!
//! # Public API
//!
//! - [`Runtime::new`]`(root_dir) -> Result<Runtime, Error>` checks that `bwrap` and `nsenter`
//!   exist and that namespaces can be created (as root, or through unprivileged user
//!   namespaces), failing with [`Error::SandboxToolMissing`] or
//!   [`Error::IsolationUnavailable`] naming what is missing. [`Runtime::isolation`] says
//!   which mode is in use; [`Runtime::with_tools`] takes explicit tool paths. `Runtime` is cheap to clone; when the last clone drops, every
//!   container it started is killed, and its root dir removed if `new` created it.
//! - [`Runtime::start`]`(ContainerConfig) -> Result<Container, Error>` starts a container
//!   and returns once its entrypoint has been exec'd as PID 1. A missing executable is
//!   [`Error::ExecutableNotFound`] (the analogue of the kubelet's `RunContainerError` /
//!   `CreateContainerError`), checked before anything is spawned; an unusable config (empty
//!   argv, relative or `..` mount paths, missing volume source, bad env names, duplicate id)
//!   is [`Error::InvalidConfig`]; a sandbox that fails during setup is
//!   [`Error::SandboxSetup`] with bwrap's message.
//! - [`Container`] (clone-able handle): [`Container::id`], [`Container::pid`] (host PID of
//!   the container's PID 1), [`Container::started_at`], [`Container::wait`]`() -> Exit`
//!   (any number of waiters; resolves once the output is fully in the log),
//!   [`Container::try_exit`], [`Container::signal`]`(nix Signal)` (to PID 1; like a real
//!   container, PID 1 ignores signals it has no handler for, except SIGKILL; a no-op once
//!   exited), [`Container::kill_all`] (SIGKILL PID 1, which kills the whole PID namespace),
//!   [`Container::exec`], [`Container::log_progress`] (for following its log).
//! - [`Exit`]` { code, signal, finished_at }`: `code` is `128 + n` when killed by signal `n`.
//! - [`Runtime::get`]`(id)`, [`Runtime::remove`]`(id)` (kills if running, forgets it, keeps
//!   the log file; the id can then be reused, e.g. for a restart).
//! - [`Container::exec`]`(ExecConfig { argv, env, working_dir, tty }) -> Result<ExecProcess,
//!   Error>` runs a command inside the container's PID, mount, UTS and IPC namespaces with
//!   the container's env and working dir (each overridable; `tty: true` is
//!   [`Error::TtyUnsupported`]; an exited container is [`Error::NotRunning`]; a missing
//!   executable is [`Error::ExecutableNotFound`]). [`ExecProcess`] has public `stdin`,
//!   `stdout`, `stderr` (tokio pipes, `take()` them) and [`ExecProcess::wait`] gives the exit
//!   code (`128 + n` when killed). Dropping it, or [`ExecProcess::start_kill`], kills the
//!   command.
//! - [`logs::read`]`(path, LogOptions, LogProgress) -> impl Stream<Item = io::Result<Bytes>>`
//!   yields exactly what `GET /api/v1/namespaces/{ns}/pods/{pod}/log` returns (content
//!   lines, partial records joined, `timestamps` as `2026-11-27T09:49:01.123456789Z `,
//!   `since_time`/`since_seconds` by record time, `tail_lines` counting logical lines,
//!   `limit_bytes` cutting mid-line). With `follow`, it ends once the container has exited
//!   and the file is drained (woken by the writer, no polling delay). Use
//!   [`Container::log_progress`] while the container may still run, or
//!   [`LogProgress::finished`] for a log whose container is known to have exited.
//!
//! # Log file format
//!
//! The CRI format containerd writes: `<RFC3339Nano UTC, 9 digits> <stdout|stderr> <F|P>
//! <content>` per record, each stamped when written. Lines longer than 16 KiB are split
//! into `P` records; a last line without a newline is a `P` record; records of both
//! streams are in read order.
//!
//! # Container view
//!
//! Each container gets its own PID namespace (its entrypoint is PID 1), mount namespace,
//! UTS namespace (hostname from the config, cut to 63 bytes like the kubelet) and IPC
//! namespace; the network namespace is the host's. Its root is a fresh tmpfs holding
//! read-only binds of the host's `/usr`, `/etc`, `/bin`, `/sbin`, `/lib*`, a fresh `/proc`,
//! a minimal `/dev`, a private tmpfs `/tmp`, and the configured mounts (parents first; a
//! file mount such as `/dev/termination-log` works; a mount point missing inside a
//! read-only system dir, e.g. `/etc/config`, is made possible without exposing anything
//! more); nothing else of the host (no `/root`, `/work`, `/home`, runtime root dir, other
//! containers' volumes). A missing working dir is created (like runc) unless it would be
//! inside a read-only system dir. The environment is exactly the configured one, in order,
//! plus `PATH` (containerd's default) when the config does not set it, because there is no
//! image to supply one (no `HOSTNAME`/`HOME` are added: that is the kubelet's choice). As
//! root, the capability set is Docker's default minus `CAP_MKNOD` and `CAP_NET_RAW` (there
//! is no device cgroup and the network is the host's); exec'd commands get the same
//! bounding set. Containers run in their own session, without podrun's terminal.
//!
//! # Lifetime
//!
//! Containers die with podrun: bwrap's `--die-with-parent` arms `PR_SET_PDEATHSIG`, and
//! `start` returns only after that is armed (tested by killing a process that holds a
//! container with SIGKILL). Dropping the last `Runtime` clone SIGKILLs every container.
//! Every spawned process is reaped (tokio reaps bwrap and nsenter; bwrap reaps PID 1).
//!
//! # Caveats
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that spawned the sandbox exits, so call
//! [`Runtime::start`] and [`Container::exec`] from a tokio worker, not from a short-lived
//! `spawn_blocking` thread. `Exit::signal` is only known for signals sent through this
//! API; a container killed by another signal reports `code = 128 + signal` with
//! `signal = None`. Log writes are plain blocking writes from the capture task (they go to
//! the page cache). Needs bubblewrap and util-linux (`tools/setup-sim.sh`).

mod capture;
mod container;
mod exec;
pub mod logs;
mod sandbox;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use container::{Container, Exit};
pub use exec::{ExecConfig, ExecProcess};
pub use logs::{LogOptions, LogProgress};

/// Everything that can go wrong in the runtime, named after the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A host tool the runtime needs is not installed.
    #[error("{tool} not found on PATH; install it with tools/setup-sim.sh ({package} package)")]
    SandboxToolMissing {
        /// The executable looked for.
        tool: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// Neither root nor unprivileged user namespaces are available.
    #[error("container isolation unavailable: {0}")]
    IsolationUnavailable(String),
    /// The runtime root dir could not be created.
    #[error("creating runtime root dir {path}")]
    CreateRootDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The container config is unusable (empty argv, relative paths, duplicate id...).
    #[error("invalid container config for {id:?}: {reason}")]
    InvalidConfig {
        /// The container id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The entrypoint does not exist in the container's view (CreateContainerError).
    #[error("executable {executable:?} not found in container {id:?}{}", if executable.contains('/') { String::new() } else { format!(" ($PATH={path})") })]
    ExecutableNotFound {
        /// The container id.
        id: String,
        /// The `argv[0]` asked for.
        executable: String,
        /// The PATH that was searched.
        path: String,
    },
    /// The log file could not be opened.
    #[error("opening container log {path}")]
    OpenLog {
        /// The log path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Spawning the sandbox or exec process failed.
    #[error("spawning {what}")]
    Spawn {
        /// Which process.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox did not report its PID 1 (it failed to set up the container).
    #[error("sandbox setup failed for container {id:?}: {detail}")]
    SandboxSetup {
        /// The container id.
        id: String,
        /// bwrap's stderr or the reason.
        detail: String,
    },
    /// Delivering a signal failed.
    #[error("sending signal {signal} to container {id:?}")]
    Signal {
        /// The container id.
        id: String,
        /// The signal number.
        signal: i32,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// Exec into a container that has exited.
    #[error("container {id:?} is not running")]
    NotRunning {
        /// The container id.
        id: String,
    },
    /// Exec with a TTY was asked for; only pipes are supported.
    #[error("exec with a TTY is not supported by the simulator")]
    TtyUnsupported,
}

/// How containers are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Running as root: namespaces are created directly, capabilities reduced.
    Root,
    /// Not root: an unprivileged user namespace maps the caller to uid 0 inside.
    UserNamespace,
}

/// A bind mount into the container (a pod volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Host file or directory to expose.
    pub host_path: PathBuf,
    /// Absolute path inside the container.
    pub container_path: String,
    /// Mount read-only.
    pub read_only: bool,
}

/// What to run and how (the runtime's view of one container of a pod).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    /// Unique id within this runtime (e.g. `<ns>_<pod>_<uid>_<container>`).
    pub id: String,
    /// Command followed by args; must not be empty.
    pub argv: Vec<String>,
    /// The whole environment, in order (nothing is inherited from the host).
    pub env: Vec<(String, String)>,
    /// Working directory inside the container (default `/`); created if missing unless it
    /// would be inside a read-only system dir.
    pub working_dir: Option<String>,
    /// Volumes, mounted parents first.
    pub mounts: Vec<Mount>,
    /// Hostname inside the container (the pod name).
    pub hostname: String,
    /// Where the runtime writes the CRI-format log of stdout and stderr (created/appended).
    pub log_path: PathBuf,
}

/// Handle to the runtime; clones share the same containers.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    root_dir: PathBuf,
    created_root: bool,
    isolation: Isolation,
    bwrap: PathBuf,
    nsenter: PathBuf,
    containers: Mutex<HashMap<String, Container>>,
}

impl Runtime {
    /// Creates the runtime, checking tools and namespace support (see [`Error`]).
    pub fn new(root_dir: PathBuf) -> Result<Runtime, Error> {
        let bwrap = sandbox::find_tool("bwrap").ok_or(Error::SandboxToolMissing {
            tool: "bwrap",
            package: "bubblewrap",
        })?;
        let nsenter = sandbox::find_tool("nsenter").ok_or(Error::SandboxToolMissing {
            tool: "nsenter",
            package: "util-linux",
        })?;
        Runtime::with_tools(root_dir, bwrap, nsenter)
    }

    /// Like [`Runtime::new`] with explicit paths to `bwrap` and `nsenter`.
    pub fn with_tools(
        root_dir: PathBuf,
        bwrap: PathBuf,
        nsenter: PathBuf,
    ) -> Result<Runtime, Error> {
        // Canonical, so the setup wait can recognise the sandbox before it execs.
        let bwrap = std::fs::canonicalize(&bwrap).map_err(|_| Error::SandboxToolMissing {
            tool: "bwrap",
            package: "bubblewrap",
        })?;
        if !nsenter.exists() {
            return Err(Error::SandboxToolMissing {
                tool: "nsenter",
                package: "util-linux",
            });
        }
        let isolation = if nix::unistd::geteuid().is_root() {
            Isolation::Root
        } else {
            Isolation::UserNamespace
        };
        sandbox::probe(&bwrap, isolation)?;
        let created_root = !root_dir.exists();
        std::fs::create_dir_all(&root_dir).map_err(|source| Error::CreateRootDir {
            path: root_dir.clone(),
            source,
        })?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                root_dir,
                created_root,
                isolation,
                bwrap,
                nsenter,
                containers: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Which isolation mode containers get.
    pub fn isolation(&self) -> Isolation {
        self.inner.isolation
    }

    /// The runtime's scratch directory (removed when the runtime drops if `new` created it).
    pub fn root_dir(&self) -> &Path {
        &self.inner.root_dir
    }

    /// Starts a container; returns once its entrypoint has been exec'd as PID 1 inside the
    /// sandbox (so it is armed to die with podrun) and log capture is running.
    pub async fn start(&self, cfg: ContainerConfig) -> Result<Container, Error> {
        if self.get(&cfg.id).is_some() {
            return Err(Error::InvalidConfig {
                id: cfg.id.clone(),
                reason: "a container with this id already exists".into(),
            });
        }
        let container = container::start(
            &self.inner.bwrap,
            &self.inner.nsenter,
            self.inner.isolation,
            cfg,
        )
        .await?;
        self.lock()
            .insert(container.id().to_string(), container.clone());
        Ok(container)
    }

    /// The container with this id, if started and not removed.
    pub fn get(&self, id: &str) -> Option<Container> {
        self.lock().get(id).cloned()
    }

    /// Forgets a container, killing it first if it still runs. Its log file is kept.
    pub fn remove(&self, id: &str) -> Option<Container> {
        let removed = self.lock().remove(id);
        if let Some(c) = &removed {
            c.kill_on_drop_of_runtime();
        }
        removed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Container>> {
        // A poisoned map only means a panic elsewhere mid-insert; the map itself is intact.
        self.inner
            .containers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        let containers = std::mem::take(
            self.containers
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for c in containers.values() {
            c.kill_on_drop_of_runtime();
        }
        // Only a dir this runtime created is removed; a caller-provided one may hold
        // other things (logs, volumes) that outlive the runtime.
        if self.created_root {
            let _ = std::fs::remove_dir_all(&self.root_dir);
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("root_dir", &self.inner.root_dir)
            .field("isolation", &self.inner.isolation)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn handles_are_shareable_across_tasks() {
        send_sync::<Runtime>();
        send_sync::<Container>();
        send_sync::<LogProgress>();
        send_sync::<Error>();
    }

    #[test]
    fn read_is_a_send_stream() {
        fn send<T: Send + 'static>(_: T) {}
        send(logs::read(
            PathBuf::from("/nonexistent"),
            LogOptions::default(),
            LogProgress::finished(),
        ));
    }
}
