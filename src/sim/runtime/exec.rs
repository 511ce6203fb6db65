//! Runs a command inside a running container's namespaces (the CRI `Exec` call), through
//! `nsenter`, with the container's environment and working dir and, as root, the same
//! reduced capability bounding set as the container.

use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::{sandbox, Error, Isolation};

/// What to run in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecConfig {
    /// Command and args; must not be empty.
    pub argv: Vec<String>,
    /// Replaces the container's environment when set (the API's exec has no env of its own,
    /// so the kubelet leaves this `None`).
    pub env: Option<Vec<(String, String)>>,
    /// Overrides the container's working dir when set.
    pub working_dir: Option<String>,
    /// A TTY was requested; not supported (gives [`Error::TtyUnsupported`]).
    pub tty: bool,
}

/// A running exec'd command. Take each pipe once; dropping `stdin` closes it. Dropping the
/// `ExecProcess` (or [`ExecProcess::start_kill`]) kills the command.
#[derive(Debug)]
pub struct ExecProcess {
    /// Writable stdin of the command.
    pub stdin: Option<ChildStdin>,
    /// Readable stdout of the command.
    pub stdout: Option<ChildStdout>,
    /// Readable stderr of the command.
    pub stderr: Option<ChildStderr>,
    child: Child,
}

impl ExecProcess {
    /// Waits for the command; returns its exit code (`128 + signal` when killed).
    ///
    /// Drain stdout/stderr concurrently, or a chatty command blocks on a full pipe.
    pub async fn wait(&mut self) -> std::io::Result<i32> {
        // Close our stdin first so a command reading it to EOF cannot deadlock us.
        drop(self.stdin.take());
        let status = self.child.wait().await?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1))
    }

    /// Kills the command (SIGKILL); `nsenter` then reaps it and exits with 137.
    pub fn start_kill(&mut self) -> std::io::Result<()> {
        let Some(nsenter) = self.child.id() else {
            return Ok(()); // already exited and reaped
        };
        // Kill the command, not nsenter: a command orphaned by nsenter's death is adopted by
        // the host's init (it was forked outside the container's PID namespace), and the
        // container's PID namespace cannot be torn down until that init reaps it, which
        // took over a second in testing.
        let children = children_of(nsenter);
        if children.is_empty() {
            // Not forked yet (or already gone): nsenter itself is the command's future.
            return self.child.start_kill();
        }
        for pid in children {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        Ok(())
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        // tokio reaps the nsenter process in the background once it exits.
        let _ = self.start_kill();
    }
}

/// PIDs whose parent is `parent` (the kernel here lacks /proc/<pid>/task/<tid>/children).
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                // Fields after the parenthesised command: state, then ppid.
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

pub(crate) struct Target<'a> {
    pub id: &'a str,
    pub pid: i32,
    pub env: &'a [(String, String)],
    pub working_dir: &'a str,
    pub isolation: Isolation,
    pub nsenter: &'a Path,
}

pub(crate) fn spawn(t: Target<'_>, cfg: ExecConfig) -> Result<ExecProcess, Error> {
    if cfg.tty {
        return Err(Error::TtyUnsupported);
    }
    let Some(exe) = cfg.argv.first().filter(|a| !a.is_empty()) else {
        return Err(Error::InvalidConfig {
            id: t.id.into(),
            reason: "exec argv is empty".into(),
        });
    };
    let env = cfg
        .env
        .map(|e| sandbox::effective_env(&e))
        .unwrap_or_else(|| t.env.to_vec());
    let wd = cfg.working_dir.as_deref().unwrap_or(t.working_dir);
    let root = std::path::PathBuf::from(format!("/proc/{}/root", t.pid));
    if !sandbox::resolve_in_live_root(&root, exe, wd, &env) {
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map_or(String::new(), |(_, v)| v.clone());
        return Err(Error::ExecutableNotFound {
            id: t.id.into(),
            executable: exe.clone(),
            path,
        });
    }
    let wd_in_root = sandbox::normalize(wd)
        .and_then(|n| n.strip_prefix("/").ok().map(|r| root.join(r)))
        .is_some_and(|p| p.is_dir());
    if !wd_in_root {
        return Err(Error::InvalidConfig {
            id: t.id.into(),
            reason: format!("exec working dir {wd:?} is not a directory in the container"),
        });
    }
    let mut cmd = Command::new(t.nsenter);
    cmd.arg(format!("--target={}", t.pid));
    if t.isolation == Isolation::UserNamespace {
        cmd.args(["--user", "--preserve-credentials"]);
    }
    cmd.args(["--pid", "--mount", "--uts", "--ipc", "--root"])
        .arg(format!("--wdns={wd}"))
        .arg("--");
    // setpriv (util-linux, seen through the container's /usr) ties the command to its
    // nsenter parent, so killing or dropping the ExecProcess ends the command too, and, as
    // root, gives it the same capability bounding set as the container's PID 1.
    if root.join("usr/bin/setpriv").exists() {
        cmd.args(["/usr/bin/setpriv", "--pdeathsig", "KILL"]);
        if t.isolation == Isolation::Root {
            let caps: Vec<String> = sandbox::CAPS
                .iter()
                .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
                .collect();
            cmd.args(["--bounding-set", &format!("-all,{}", caps.join(","))]);
        }
        cmd.arg("--");
    }
    cmd.args(&cfg.argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid and prctl are async-signal-safe; run in the forked child before exec.
    // setsid: no controlling terminal of podrun's; PDEATHSIG: nsenter (and through setpriv
    // the command) dies if podrun does.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        what: "nsenter",
        source,
    })?;
    Ok(ExecProcess {
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        child,
    })
}
