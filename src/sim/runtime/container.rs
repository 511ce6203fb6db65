//! Starts one container (a bubblewrap sandbox), tracks its PID 1, delivers signals and
//! publishes its exit once its output is fully in the log.
//!
//! The monitor task owns the sandbox process (killed if the task is dropped) and the log
//! capture; the [`Container`] handle owns the monitor task.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use nix::sys::signal::Signal;
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::watch;

use super::logs::{LogProgress, LogState};
use super::{capture, sandbox, ContainerConfig, Error, Isolation};

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Exit status; `128 + signal` when killed by a signal (as runc reports it).
    pub code: i32,
    /// The signal that killed PID 1, when it was sent through [`Container::signal`] or
    /// [`Container::kill_all`].
    pub signal: Option<i32>,
    /// When the runtime saw PID 1 end.
    pub finished_at: Timestamp,
}

/// A started container; clones share it. Dropping every handle (and removing it from the
/// runtime) kills it.
#[derive(Clone)]
pub struct Container {
    inner: Arc<Inner>,
}

struct Inner {
    id: String,
    pid: i32,
    pidfd: OwnedFd,
    started_at: Timestamp,
    env: Vec<(String, String)>,
    working_dir: String,
    isolation: Isolation,
    nsenter: PathBuf,
    exit: watch::Receiver<Option<Exit>>,
    progress: watch::Receiver<LogState>,
    sent: Arc<Mutex<Vec<i32>>>,
    monitor: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping the monitor drops the bwrap child (kill_on_drop), whose death kills the
        // sandbox through --die-with-parent.
        self.monitor.abort();
    }
}

fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; a non-negative return is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(std::io::Error::other)?;
    // SAFETY: fd was just returned by pidfd_open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads bwrap's `--info-fd` JSON until it names the child PID (or the pipe ends).
async fn read_child_pid(info: OwnedFd) -> Option<i32> {
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(info).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        // bwrap writes one JSON object; stop at its closing brace rather than EOF, since a
        // copy of the fd may stay open longer than bwrap's own.
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf) {
            return v
                .get("child-pid")?
                .as_i64()
                .and_then(|p| i32::try_from(p).ok());
        }
        let n = rx.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub(crate) async fn start(
    bwrap: &std::path::Path,
    nsenter: &std::path::Path,
    isolation: Isolation,
    cfg: ContainerConfig,
) -> Result<Container, Error> {
    let plan = sandbox::plan(&cfg, isolation)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.log_path)
        .map_err(|source| Error::OpenLog {
            path: cfg.log_path.clone(),
            source,
        })?;
    let spawn_err = |source| Error::Spawn {
        what: "bwrap",
        source,
    };
    let (info_r, info_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
    let mut cmd = Command::new(bwrap);
    cmd.args(&plan.args)
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let info_raw = info_w.as_raw_fd();
    // SAFETY: the closure only calls dup2, which is async-signal-safe; it runs in the
    // forked child before exec. dup2 clears O_CLOEXEC on fd 3 so bwrap inherits it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(info_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(spawn_err)?;
    drop(info_w);
    let Some(pid) = read_child_pid(info_r).await else {
        let mut detail = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut detail).await;
        }
        let status = child.wait().await;
        return Err(Error::SandboxSetup {
            id: cfg.id,
            detail: format!("{} ({status:?})", detail.trim()),
        });
    };
    let started_at = Timestamp::now();
    let pidfd = pidfd_open(pid).map_err(|source| Error::Spawn {
        what: "pidfd_open for container PID 1",
        source,
    })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::SandboxSetup {
            id: cfg.id,
            detail: "stdout/stderr pipes missing".into(),
        });
    };
    let (progress_tx, progress_rx) = watch::channel(LogState::default());
    let (exit_tx, exit_rx) = watch::channel(None);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sent_monitor = sent.clone();
    let monitor = tokio::spawn(async move {
        let capture = capture::run(stdout, stderr, log, &progress_tx);
        let (status, ()) = tokio::join!(child.wait(), capture);
        let finished_at = Timestamp::now();
        progress_tx.send_modify(|s| s.done = true);
        let code = match status {
            Ok(s) => {
                use std::os::unix::process::ExitStatusExt;
                s.code()
                    .or_else(|| s.signal().map(|sig| 128 + sig))
                    .unwrap_or(-1)
            }
            Err(_) => -1,
        };
        let signal = (code > 128)
            .then_some(code - 128)
            .filter(|s| sent_monitor.lock().is_ok_and(|sent| sent.contains(s)));
        let _ = exit_tx.send(Some(Exit {
            code,
            signal,
            finished_at,
        }));
    });
    Ok(Container {
        inner: Arc::new(Inner {
            id: cfg.id,
            pid,
            pidfd,
            started_at,
            env: plan.env,
            working_dir: plan.working_dir,
            isolation,
            nsenter: nsenter.to_path_buf(),
            exit: exit_rx,
            progress: progress_rx,
            sent,
            monitor,
        }),
    })
}

impl Container {
    /// The id from the config.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Host PID of the container's PID 1 (its entrypoint).
    pub fn pid(&self) -> i32 {
        self.inner.pid
    }

    /// When PID 1 was started.
    pub fn started_at(&self) -> Timestamp {
        self.inner.started_at
    }

    /// The exit, if the container has finished (output fully logged).
    pub fn try_exit(&self) -> Option<Exit> {
        *self.inner.exit.borrow()
    }

    /// Waits until the container has exited and its output is fully in the log.
    ///
    /// Adds no timeout; wrap it in `tokio::time::timeout` if needed.
    pub async fn wait(&self) -> Exit {
        let mut rx = self.inner.exit.clone();
        let exit = match rx.wait_for(Option::is_some).await {
            Ok(exit) => *exit,
            // The monitor was aborted (runtime dropped): the sandbox was killed with it.
            Err(_) => None,
        };
        exit.unwrap_or_else(unreachable_exit)
    }

    /// Sends `sig` to PID 1. Like any container init, PID 1 ignores signals it has no
    /// handler for, except SIGKILL. Signalling an exited container is a no-op.
    pub fn signal(&self, sig: Signal) -> Result<(), Error> {
        if self.try_exit().is_some() {
            return Ok(());
        }
        if let Ok(mut sent) = self.inner.sent.lock() {
            sent.push(sig as i32);
        }
        // SAFETY: plain syscall on a pidfd we own; a null siginfo means "like kill(2)".
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.inner.pidfd.as_raw_fd(),
                sig as i32,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            let errno = nix::errno::Errno::last();
            // ESRCH: PID 1 already exited; its exit is about to be published.
            if errno != nix::errno::Errno::ESRCH {
                return Err(Error::Signal {
                    id: self.inner.id.clone(),
                    signal: sig as i32,
                    source: errno,
                });
            }
        }
        Ok(())
    }

    /// SIGKILLs PID 1, which makes the kernel kill every process of the container.
    pub fn kill_all(&self) -> Result<(), Error> {
        self.signal(Signal::SIGKILL)
    }

    pub(crate) fn kill_on_drop_of_runtime(&self) {
        let _ = self.kill_all();
    }

    /// A [`LogProgress`] for following this container's log with [`super::logs::read`].
    pub fn log_progress(&self) -> LogProgress {
        LogProgress::new(self.inner.progress.clone())
    }

    /// Runs a command inside this container (see [`super::ExecConfig`]).
    pub async fn exec(&self, cfg: super::ExecConfig) -> Result<super::ExecProcess, Error> {
        if self.try_exit().is_some() {
            return Err(Error::NotRunning {
                id: self.inner.id.clone(),
            });
        }
        super::exec::spawn(
            super::exec::Target {
                id: &self.inner.id,
                pid: self.inner.pid,
                env: &self.inner.env,
                working_dir: &self.inner.working_dir,
                isolation: self.inner.isolation,
                nsenter: &self.inner.nsenter,
            },
            cfg,
        )
    }
}

fn unreachable_exit() -> Exit {
    // Only reachable if the monitor task was aborted before publishing: the container was
    // killed along with it (kill_on_drop), so report it as SIGKILLed.
    Exit {
        code: 137,
        signal: Some(9),
        finished_at: Timestamp::now(),
    }
}
