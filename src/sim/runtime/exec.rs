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

    /// Kills the command (SIGKILL to its `nsenter` parent, which the command follows).
    pub fn start_kill(&mut self) -> std::io::Result<()> {
        self.child.start_kill()
    }
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
        .stderr(Stdio::piped())
        .kill_on_drop(true);
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
