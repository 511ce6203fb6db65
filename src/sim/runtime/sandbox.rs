//! Builds the bubblewrap command line that gives a container its namespaces and filesystem
//! view, and answers "what does the container see at this path" for pre-start checks.
//!
//! Pure argument building (plus read-only looks at the host's system dirs); spawning is
//! `container.rs`'s job. The view is: tmpfs root, read-only host system dirs, fresh
//! `/proc`, minimal `/dev`, tmpfs `/tmp`, then the pod's volumes, parents first.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use super::{ContainerConfig, Error, Isolation, Mount};

/// `PATH` given to containers whose env does not set one (containerd's default).
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host dirs exposed read-only; symlinks (merged /usr) are recreated as symlinks.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Capabilities kept when running as root: Docker's default set minus `CAP_MKNOD` (there is
/// no device cgroup to make device nodes harmless) and `CAP_NET_RAW` (the network
/// namespace is the host's).
pub(crate) const CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_SETFCAP",
    "CAP_AUDIT_WRITE",
];

/// Finds an executable on the host's PATH (or the usual sbin dirs).
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Runs a trivial sandbox to prove namespaces can be created in this environment.
pub(crate) fn probe(bwrap: &Path, isolation: Isolation) -> Result<(), Error> {
    if isolation == Isolation::UserNamespace {
        let max = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
        if max.trim() == "0" {
            return Err(Error::IsolationUnavailable(
                "not running as root and unprivileged user namespaces are disabled \
                 (/proc/sys/user/max_user_namespaces is 0); run as root or raise it"
                    .into(),
            ));
        }
    }
    let mut args = namespace_args(isolation, "probe");
    args.extend(system_args());
    args.extend(["--", "/usr/bin/true"].map(OsString::from));
    let out = std::process::Command::new(bwrap)
        .args(&args)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            what: "bwrap probe",
            source,
        })?;
    if out.status.success() {
        return Ok(());
    }
    let how = match isolation {
        Isolation::Root => "as root (missing CAP_SYS_ADMIN, or seccomp forbids unshare?)",
        Isolation::UserNamespace => {
            "with an unprivileged user namespace (run as root, or enable unprivileged user \
             namespaces: sysctl kernel.unprivileged_userns_clone=1 / \
             kernel.apparmor_restrict_unprivileged_userns=0)"
        }
    };
    Err(Error::IsolationUnavailable(format!(
        "bwrap could not create PID/mount/UTS/IPC namespaces {how}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

fn namespace_args(isolation: Isolation, hostname: &str) -> Vec<OsString> {
    let mut a: Vec<OsString> = [
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--as-pid-1",
        // Not --new-session: with it, bwrap 0.8's --die-with-parent no longer reaches the
        // container's PID 1 (tested); the spawner calls setsid() itself instead.
        "--die-with-parent",
    ]
    .map(OsString::from)
    .into();
    match isolation {
        Isolation::Root => {
            a.extend(["--cap-drop", "ALL"].map(OsString::from));
            for cap in CAPS {
                a.extend(["--cap-add", cap].map(OsString::from));
            }
        }
        Isolation::UserNamespace => {
            // Real containers run as root by default; map the caller to uid/gid 0 inside.
            a.extend(["--unshare-user", "--uid", "0", "--gid", "0"].map(OsString::from));
        }
    }
    if !hostname.is_empty() {
        a.extend(["--hostname", hostname].map(OsString::from));
    }
    a
}

/// One host system dir as the container will see it.
enum SystemEntry {
    Dir(&'static str),
    Symlink(&'static str, PathBuf),
}

fn system_entries() -> Vec<SystemEntry> {
    SYSTEM_DIRS
        .iter()
        .filter_map(|d| {
            let meta = std::fs::symlink_metadata(d).ok()?;
            if meta.file_type().is_symlink() {
                Some(SystemEntry::Symlink(d, std::fs::read_link(d).ok()?))
            } else if meta.is_dir() {
                Some(SystemEntry::Dir(d))
            } else {
                None
            }
        })
        .collect()
}

fn system_args() -> Vec<OsString> {
    let mut a = Vec::new();
    for e in system_entries() {
        match e {
            SystemEntry::Dir(d) => a.extend([OsString::from("--ro-bind"), d.into(), d.into()]),
            SystemEntry::Symlink(d, target) => {
                a.extend([OsString::from("--symlink"), target.into(), d.into()])
            }
        }
    }
    a.extend(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"].map(OsString::from));
    a
}

/// The hostname as the kubelet sets it: at most 63 bytes, without a trailing `-` or `.`
/// left by the cut (pod names may be up to 253 characters; `sethostname` takes 64).
pub(crate) fn pod_hostname(name: &str) -> &str {
    if name.len() <= 63 {
        return name;
    }
    let mut end = 63;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].trim_end_matches(['-', '.'])
}

/// Lexically normalises an absolute container path; `None` if relative or it uses `..`.
pub(crate) fn normalize(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Rewrites a path through symlinked system dirs (`/bin/x` → `/usr/bin/x` on merged /usr).
fn through_symlinks(p: &Path) -> PathBuf {
    for e in system_entries() {
        if let SystemEntry::Symlink(d, target) = e {
            if let Ok(rest) = p.strip_prefix(d) {
                let base = if target.is_absolute() {
                    target
                } else {
                    Path::new("/").join(target)
                };
                return base.join(rest);
            }
        }
    }
    p.to_path_buf()
}

/// The system dir (a real directory, not a symlink) containing `p`, if any.
fn system_dir_of(p: &Path) -> Option<&'static str> {
    system_entries().into_iter().find_map(|e| match e {
        SystemEntry::Dir(d) if p.starts_with(d) => Some(d),
        _ => None,
    })
}

/// Where the container's path `p` lives on the host at start, if it is host-backed.
fn host_path_of(p: &Path, mounts: &[(PathBuf, &Mount)]) -> Option<PathBuf> {
    let p = through_symlinks(p);
    let by_mount = mounts
        .iter()
        .filter(|(target, _)| p.starts_with(target))
        .max_by_key(|(target, _)| target.components().count());
    if let Some((target, m)) = by_mount {
        let rest = p.strip_prefix(target).ok()?;
        return Some(if rest.as_os_str().is_empty() {
            m.host_path.clone()
        } else {
            m.host_path.join(rest)
        });
    }
    system_dir_of(&p).map(|_| p)
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The config checked and resolved: what `container.rs` needs to spawn it.
pub(crate) struct Plan {
    /// bwrap arguments, then `env -i -- K=V...` and argv.
    pub args: Vec<OsString>,
    /// The effective environment (config env plus default PATH).
    pub env: Vec<(String, String)>,
    /// The effective working dir inside the container.
    pub working_dir: String,
}

/// The effective environment: exactly the configured one, plus PATH if it is absent.
pub(crate) fn effective_env(env: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env
}

fn env_path(env: &[(String, String)]) -> &str {
    // Last definition wins, as with execve's environment and the kubelet's env merge.
    env.iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str())
}

/// Validates `cfg`, resolves its executable and builds the bwrap command line.
pub(crate) fn plan(cfg: &ContainerConfig, isolation: Isolation) -> Result<Plan, Error> {
    let invalid = |reason: String| Error::InvalidConfig {
        id: cfg.id.clone(),
        reason,
    };
    let Some(exe) = cfg.argv.first() else {
        return Err(invalid(
            "argv is empty (a container needs a command)".into(),
        ));
    };
    if exe.is_empty() {
        return Err(invalid("argv[0] is empty".into()));
    }
    let mut mounts = Vec::with_capacity(cfg.mounts.len());
    for m in &cfg.mounts {
        let target = normalize(&m.container_path).ok_or_else(|| {
            invalid(format!(
                "mount path {:?} must be absolute without '..'",
                m.container_path
            ))
        })?;
        if target == Path::new("/") {
            return Err(invalid("a volume cannot be mounted at /".into()));
        }
        if !m.host_path.exists() {
            return Err(invalid(format!(
                "volume source {} does not exist",
                m.host_path.display()
            )));
        }
        mounts.push((through_symlinks(&target), m));
    }
    // Parents before children, like the CRI's mount ordering.
    mounts.sort_by_key(|(t, _)| t.components().count());
    let wd_str = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
    let wd = normalize(&wd_str)
        .ok_or_else(|| invalid(format!("working dir {wd_str:?} must be absolute")))?;
    let env = effective_env(&cfg.env);
    if let Some((k, _)) = env
        .iter()
        .find(|(k, v)| k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0'))
    {
        return Err(invalid(format!(
            "environment variable {k:?} is not a valid name (or its value holds a NUL)"
        )));
    }
    if let Some(a) = cfg.argv.iter().find(|a| a.contains('\0')) {
        return Err(invalid(format!("argument {a:?} contains a NUL byte")));
    }

    if resolve_executable(exe, &wd, &env, &mounts).is_none() {
        return Err(Error::ExecutableNotFound {
            id: cfg.id.clone(),
            executable: exe.clone(),
            path: env_path(&env).to_string(),
        });
    }

    let mut args = namespace_args(isolation, pod_hostname(&cfg.hostname));
    args.extend(system_args());
    // Volumes whose mount point is missing inside a read-only system dir: the deepest
    // existing ancestor becomes a tmpfs re-populated with read-only binds of its entries,
    // so bwrap can create the mount point; it is remounted read-only afterwards.
    let mut expanded: Vec<PathBuf> = Vec::new();
    for (target, _) in &mounts {
        let Some(sys) = system_dir_of(target) else {
            continue;
        };
        if target.exists() {
            continue;
        }
        let ancestor = target
            .ancestors()
            .find(|a| a.exists())
            .unwrap_or_else(|| Path::new(sys))
            .to_path_buf();
        if !expanded.contains(&ancestor) {
            expanded.push(ancestor);
        }
    }
    expanded.sort_by_key(|a| a.components().count());
    for dir in &expanded {
        args.extend([OsString::from("--tmpfs"), dir.into()]);
        let entries = std::fs::read_dir(dir)
            .map_err(|e| invalid(format!("reading {} to place a volume: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_symlink() => {
                    if let Ok(link) = std::fs::read_link(&path) {
                        args.extend([OsString::from("--symlink"), link.into(), path.into()]);
                    }
                }
                Ok(t) if t.is_dir() || t.is_file() => args.extend([
                    OsString::from("--ro-bind"),
                    path.clone().into(),
                    path.into(),
                ]),
                _ => {}
            }
        }
    }
    for (target, m) in &mounts {
        let flag = if m.read_only { "--ro-bind" } else { "--bind" };
        args.extend([
            OsString::from(flag),
            m.host_path.clone().into(),
            target.clone().into(),
        ]);
    }
    for dir in &expanded {
        args.extend([OsString::from("--remount-ro"), dir.into()]);
    }

    // Like runc, create a missing working dir, unless that would need a write to a
    // read-only system dir.
    let wd_real = through_symlinks(&wd);
    let under_mount = mounts.iter().any(|(t, _)| wd_real.starts_with(t));
    if under_mount {
        if !host_path_of(&wd_real, &mounts).is_some_and(|h| h.is_dir()) {
            args.extend([OsString::from("--dir"), wd_real.clone().into()]);
        }
    } else if system_dir_of(&wd_real).is_some() {
        if !wd_real.is_dir() {
            return Err(invalid(format!(
                "working dir {wd_str:?} does not exist and is inside a read-only system dir"
            )));
        }
    } else if wd_real != Path::new("/") {
        args.extend([OsString::from("--dir"), wd_real.clone().into()]);
    }
    args.extend([OsString::from("--chdir"), wd_real.into()]);
    args.extend(["--info-fd", "3", "--"].map(OsString::from));
    // bwrap always exports PWD, which runc does not; `env -i` (exec'd in place, so the
    // entrypoint stays PID 1) sets exactly the configured environment, in order.
    if exe.contains('=') {
        return Err(invalid(format!("argv[0] {exe:?} must not contain '='")));
    }
    let env_tool = ["/usr/bin/env", "/bin/env"]
        .into_iter()
        .find(|p| is_executable(Path::new(p)))
        .ok_or_else(|| invalid("the host has no /usr/bin/env to set the environment".into()))?;
    args.extend([env_tool, "-i", "--"].map(OsString::from));
    args.extend(env.iter().map(|(k, v)| OsString::from(format!("{k}={v}"))));
    args.extend(cfg.argv.iter().map(OsString::from));
    Ok(Plan {
        args,
        env,
        working_dir: wd.to_string_lossy().into_owned(),
    })
}

/// Resolves `argv[0]` the way execvp inside the container would, on host-backed paths.
fn resolve_executable(
    exe: &str,
    wd: &Path,
    env: &[(String, String)],
    mounts: &[(PathBuf, &Mount)],
) -> Option<PathBuf> {
    let check = |container_path: &Path| {
        let p = normalize(&container_path.to_string_lossy())?;
        host_path_of(&p, mounts).filter(|h| is_executable(h))
    };
    if exe.contains('/') {
        return check(&wd.join(exe));
    }
    env_path(env)
        .split(':')
        .filter(|d| d.starts_with('/'))
        .find_map(|d| check(&Path::new(d).join(exe)))
}

/// Resolves `argv[0]` for exec, looking through `/proc/<pid>/root` at the live container.
pub(crate) fn resolve_in_live_root(
    root: &Path,
    exe: &str,
    wd: &str,
    env: &[(String, String)],
) -> bool {
    let in_root = |p: &Path| {
        normalize(&p.to_string_lossy())
            .and_then(|n| n.strip_prefix("/").ok().map(|r| root.join(r)))
            .is_some_and(|h| is_executable(&h))
    };
    if exe.contains('/') {
        return in_root(&Path::new(wd).join(exe));
    }
    env_path(env)
        .split(':')
        .filter(|d| d.starts_with('/'))
        .any(|d| in_root(&Path::new(d).join(exe)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(argv: &[&str]) -> ContainerConfig {
        ContainerConfig {
            id: "c".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![("A".into(), "1".into())],
            working_dir: None,
            mounts: vec![],
            hostname: "pod".into(),
            log_path: "/dev/null".into(),
        }
    }

    #[test]
    fn long_hostnames_are_cut_like_the_kubelet() {
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(100));
        assert_eq!(pod_hostname(&long), "a".repeat(62));
        assert_eq!(pod_hostname("pod"), "pod");
    }

    #[test]
    fn bad_env_names_are_rejected() {
        let mut c = cfg(&["true"]);
        c.env = vec![("A=B".into(), "1".into())];
        assert!(matches!(
            plan(&c, Isolation::Root),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn normalize_rejects_relative_and_dotdot() {
        assert_eq!(normalize("/a/./b/"), Some(PathBuf::from("/a/b")));
        assert_eq!(normalize("a/b"), None);
        assert_eq!(normalize("/a/../b"), None);
    }

    #[test]
    fn env_gets_default_path_only_when_absent() {
        let e = effective_env(&[("A".into(), "1".into())]);
        assert_eq!(e.last().map(|(k, _)| k.as_str()), Some("PATH"));
        let e = effective_env(&[("PATH".into(), "/x".into())]);
        assert_eq!(e, vec![("PATH".to_string(), "/x".to_string())]);
    }

    #[test]
    fn plan_resolves_path_and_rejects_missing_executables() {
        assert!(plan(&cfg(&["sh", "-c", "true"]), Isolation::Root).is_ok());
        assert!(plan(&cfg(&["/bin/sh"]), Isolation::Root).is_ok());
        assert!(matches!(
            plan(&cfg(&["no-such-binary-xyz"]), Isolation::Root),
            Err(Error::ExecutableNotFound { .. })
        ));
        assert!(matches!(
            plan(&cfg(&[]), Isolation::Root),
            Err(Error::InvalidConfig { .. })
        ));
    }

    #[test]
    fn plan_ends_with_argv_after_separator() {
        let p = plan(&cfg(&["sh", "-c", "echo hi"]), Isolation::Root).expect("plan");
        let n = p.args.len();
        let path = format!("PATH={DEFAULT_PATH}");
        let tail = ["-i", "--", "A=1", path.as_str(), "sh", "-c", "echo hi"].map(OsString::from);
        assert_eq!(p.args[n - 7..], tail);
        assert!(p.args.contains(&OsString::from("--unshare-pid")));
        assert!(!p.args.iter().any(|a| a == "/work" || a == "/root"));
    }
}
