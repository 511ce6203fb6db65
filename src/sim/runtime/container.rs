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
    /// `None` when PID 1 was already gone before the pidfd could be opened.
    pidfd: Option<OwnedFd>,
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

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("id", &self.inner.id)
            .field("pid", &self.inner.pid)
            .field("exit", &self.try_exit())
            .finish_non_exhaustive()
    }
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

/// Waits until bwrap's child has exec'd the entrypoint (or exited).
///
/// bwrap reports the child PID before the child has finished its setup, and only that
/// setup arms `PR_SET_PDEATHSIG` (--die-with-parent); if podrun died in between, the
/// container would outlive it (reproduced by `containers_die_with_a_killed_podrun`).
/// bwrap offers no event for "setup done", so this polls the child's `comm`/`exe` (a few
/// milliseconds at most in practice).
async fn exec_done(pid: i32, bwrap: &std::path::Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_micros(200);
    // The kernel keeps the first 15 bytes of the executable's name as `comm`.
    let name = bwrap
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(15).collect::<String>())
        .unwrap_or_default();
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"));
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"));
        match comm {
            // Gone or a zombie already: nothing left to arm; the monitor reports the exit.
            Err(_) => return true,
            Ok(c) if c.trim_end() != name => return true,
            Ok(_) if exe.is_ok_and(|e| e != bwrap) => return true,
            Ok(_) => {}
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(1));
    }
}

pub(crate) async fn start(
    bwrap: &std::path::Path,
    nsenter: &std::path::Path,
    isolation: Isolation,
    cfg: ContainerConfig,
) -> Result<Container, Error> {
    let plan = sandbox::plan(&cfg, isolation)?;
    if let Some(dir) = cfg.log_path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::OpenLog {
            path: cfg.log_path.clone(),
            source,
        })?;
    }
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
    // SAFETY: the closure only calls dup2 and setsid, which are async-signal-safe; it runs
    // in the forked child before exec. dup2 clears O_CLOEXEC on fd 3 so bwrap inherits it.
    // setsid detaches the container from podrun's controlling terminal (no /dev/tty
    // access, no TIOCSTI injection).
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(info_raw, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::setsid() < 0 {
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
    // Opened first, while bwrap (which reaps PID 1) is known to be alive. ESRCH means the
    // container already ended; there is then nothing left to signal.
    let pidfd = match pidfd_open(pid) {
        Ok(fd) => Some(fd),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => None,
        Err(source) => {
            return Err(Error::Spawn {
                what: "pidfd_open for container PID 1",
                source,
            })
        }
    };
    if !exec_done(pid, bwrap).await {
        return Err(Error::SandboxSetup {
            id: cfg.id,
            detail: "the sandbox did not exec the entrypoint within 10s".into(),
        });
    }
    let started_at = Timestamp::now();
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
        let Some(pidfd) = &self.inner.pidfd else {
            return Ok(());
        };
        // SAFETY: plain syscall on a pidfd we own; a null siginfo means "like kill(2)".
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
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

    /// Whether PID 1 is still running (signal 0 through the pidfd).
    fn alive(&self) -> bool {
        let Some(pidfd) = &self.inner.pidfd else {
            return false;
        };
        // SAFETY: plain syscall on a pidfd we own; signal 0 only checks existence.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        rc == 0
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
        // nsenter targets a PID number: make sure it is still this container's PID 1 (a
        // pidfd cannot be fooled by PID reuse) rather than trust the published exit alone.
        if self.try_exit().is_some() || !self.alive() {
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
