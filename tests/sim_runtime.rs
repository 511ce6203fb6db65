//! Integration tests of the simulator's process runtime (`podrun::sim::runtime`): real
//! sandboxed processes, their isolation, exit codes, signals, exec and CRI logs.
//!
//! They need bubblewrap (tools/setup-sim.sh) and root or unprivileged user namespaces.
//! Every wait is on an event (exit, log completion, pipe EOF), never a sleep.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use nix::sys::signal::Signal;
use podrun::sim::runtime::{
    logs, Container, ContainerConfig, Error, ExecConfig, LogOptions, LogProgress, Mount, Runtime,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A runtime in a fresh temp dir, plus a place for volumes and logs.
struct Bed {
    rt: Runtime,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt =
            Runtime::new(dir.path().join("runtime")).expect("runtime (run tools/setup-sim.sh)");
        Bed { rt, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cfg(&self, id: &str, argv: &[&str]) -> ContainerConfig {
        ContainerConfig {
            id: id.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            working_dir: None,
            mounts: vec![],
            hostname: "mypod".into(),
            log_path: self.path(&format!("{id}.log")),
        }
    }

    fn sh(&self, id: &str, script: &str) -> ContainerConfig {
        self.cfg(id, &["sh", "-c", script])
    }

    async fn run(&self, cfg: ContainerConfig) -> (i32, String) {
        let log = cfg.log_path.clone();
        let c = self.rt.start(cfg).await.expect("start");
        let exit = c.wait().await;
        (exit.code, read_log(&log, LogOptions::default()).await)
    }
}

async fn read_log(path: &Path, opts: LogOptions) -> String {
    let chunks: Vec<_> = logs::read(path.to_path_buf(), opts, LogProgress::finished())
        .try_collect()
        .await
        .expect("read log");
    String::from_utf8(chunks.concat()).expect("utf8 log")
}

async fn exec_output(c: &Container, argv: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, Vec<u8>) {
    let mut p = c
        .exec(ExecConfig {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .await
        .expect("exec");
    let mut sin = p.stdin.take().expect("stdin");
    let mut sout = p.stdout.take().expect("stdout");
    let mut serr = p.stderr.take().expect("stderr");
    let input = stdin.to_vec();
    let writer = async move {
        sin.write_all(&input).await.expect("write stdin");
        drop(sin);
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let ((), r1, r2) = tokio::join!(
        writer,
        sout.read_to_end(&mut out),
        serr.read_to_end(&mut err)
    );
    r1.expect("stdout");
    r2.expect("stderr");
    let code = p.wait().await.expect("wait");
    (code, out, err)
}

#[tokio::test]
async fn exit_codes_are_reported() {
    let bed = Bed::new();
    assert_eq!(bed.run(bed.sh("ok", "exit 0")).await.0, 0);
    assert_eq!(bed.run(bed.sh("three", "exit 3")).await.0, 3);
    let c = bed.rt.start(bed.sh("t", "exit 42")).await.expect("start");
    let exit = c.wait().await;
    assert_eq!((exit.code, exit.signal), (42, None));
    assert!(exit.finished_at >= c.started_at());
    // Several waiters see the same exit.
    assert_eq!(c.wait().await, exit);
    assert_eq!(c.try_exit(), Some(exit));
}

#[tokio::test]
async fn entrypoint_is_pid_1_with_its_own_hostname() {
    let bed = Bed::new();
    let (code, out) = bed
        .run(bed.sh(
            "pid",
            "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '",
        ))
        .await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "1\nmypod\nsh -c echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' ' "
    );
}

#[tokio::test]
async fn missing_executable_is_a_distinct_error() {
    let bed = Bed::new();
    let err = bed
        .rt
        .start(bed.cfg("x", &["no-such-command-here"]))
        .await
        .err();
    assert!(
        matches!(err, Some(Error::ExecutableNotFound { ref executable, .. }) if executable == "no-such-command-here"),
        "{err:?}"
    );
    let err = bed.rt.start(bed.cfg("y", &["/opt/nope/bin"])).await.err();
    assert!(
        matches!(err, Some(Error::ExecutableNotFound { .. })),
        "{err:?}"
    );
    // A host path that exists but is not in the container's view is also missing.
    let err = bed
        .rt
        .start(bed.cfg("z", &["/root/.cargo/bin/cargo"]))
        .await
        .err();
    assert!(
        matches!(err, Some(Error::ExecutableNotFound { .. })),
        "{err:?}"
    );
    let err = bed.rt.start(bed.cfg("e", &[])).await.err();
    assert!(matches!(err, Some(Error::InvalidConfig { .. })), "{err:?}");
}

#[tokio::test]
async fn sigterm_with_trap_runs_the_handler() {
    let bed = Bed::new();
    let cfg = bed.sh(
        "trap",
        "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.01; done",
    );
    let log = cfg.log_path.clone();
    let c = bed.rt.start(cfg).await.expect("start");
    wait_for_log_line(&c, &log, "ready").await;
    c.signal(Signal::SIGTERM).expect("signal");
    let exit = c.wait().await;
    assert_eq!((exit.code, exit.signal), (7, None));
    assert_eq!(
        read_log(&log, LogOptions::default()).await,
        "ready\ngot TERM\n"
    );
}

#[tokio::test]
async fn sigterm_without_handler_is_ignored_by_pid_1_and_sigkill_gives_137() {
    let bed = Bed::new();
    let cfg = bed.sh("notrap", "echo ready; exec sleep 1000");
    let log = cfg.log_path.clone();
    let c = bed.rt.start(cfg).await.expect("start");
    wait_for_log_line(&c, &log, "ready").await;
    c.signal(Signal::SIGTERM).expect("signal");
    // PID 1 has no handler: SIGTERM is dropped, as in a real container. Prove it is still
    // running by exec'ing into it after the signal was delivered.
    let (code, out, _) =
        exec_output(&c, &["sh", "-c", "cat /proc/1/status | grep '^State'"], b"").await;
    assert_eq!(code, 0);
    assert!(c.try_exit().is_none(), "{}", String::from_utf8_lossy(&out));
    c.kill_all().expect("kill");
    let exit = c.wait().await;
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
}

#[tokio::test]
async fn kill_inside_cannot_hurt_the_host_or_pid_1() {
    let bed = Bed::new();
    // `kill -9 1` inside targets the container's own init, which ignores it; host PIDs are
    // not even visible.
    let (code, out) = bed
        .run(bed.sh("k", "kill -9 1; echo alive; ls /proc | grep -c '^[0-9]'"))
        .await;
    assert_eq!(code, 0);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("alive"));
    let procs: u32 = lines.next().and_then(|l| l.parse().ok()).expect("count");
    assert!(procs <= 4, "container sees {procs} processes");
}

#[tokio::test]
async fn host_directories_are_invisible() {
    let bed = Bed::new();
    let script = "for d in /work /root /home /opt /var /old_root /mnt; do [ -e $d ] && echo visible $d; done; \
                  ls /; echo done";
    let (code, out) = bed.run(bed.sh("hide", script)).await;
    assert_eq!(code, 0);
    assert!(!out.contains("visible"), "{out}");
    let mut top: Vec<&str> = out.lines().take_while(|l| *l != "done").collect();
    top.sort_unstable();
    for entry in &top {
        assert!(
            [
                "bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp",
                "usr"
            ]
            .contains(entry),
            "unexpected top-level entry {entry:?} in {top:?}"
        );
    }
    // The runtime's own root dir is not visible either.
    let rt_root = bed.rt.root_dir().to_string_lossy().into_owned();
    let (_, out) = bed
        .run(bed.sh(
            "hide2",
            &format!("[ -e {rt_root} ] && echo visible; echo ok"),
        ))
        .await;
    assert_eq!(out, "ok\n");
    // System dirs are read-only, /tmp is private and writable.
    let (code, out) = bed
        .run(bed.sh(
            "ro",
            "touch /usr/x 2>/dev/null || echo ro-usr; touch /etc/x 2>/dev/null || echo ro-etc; \
                           echo hi > /tmp/f && cat /tmp/f",
        ))
        .await;
    assert_eq!((code, out.as_str()), (0, "ro-usr\nro-etc\nhi\n"));
}

#[tokio::test]
async fn volumes_are_mounted_writable_or_read_only() {
    let bed = Bed::new();
    let data = bed.path("data");
    let conf = bed.path("conf");
    let other = bed.path("other");
    for d in [&data, &conf, &other] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(conf.join("key"), "value").expect("write");
    std::fs::write(other.join("secret"), "s3cret").expect("write");
    let mut cfg = bed.sh(
        "vol",
        "echo written > /data/out; cat /etc/config/key; echo; \
         { echo x > /etc/config/new; } 2>/dev/null || echo ro-config; \
         ls /etc/passwd >/dev/null && echo etc-intact; echo end",
    );
    cfg.mounts = vec![
        Mount {
            host_path: data.clone(),
            container_path: "/data".into(),
            read_only: false,
        },
        Mount {
            host_path: conf.clone(),
            container_path: "/etc/config".into(),
            read_only: true,
        },
    ];
    let (code, out) = bed.run(cfg).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "value\nro-config\netc-intact\nend\n")
    );
    assert_eq!(
        std::fs::read_to_string(data.join("out")).expect("out"),
        "written\n"
    );
    assert!(!conf.join("new").exists());
    // Another pod's volume is nowhere in the view: not at its host path, not by content.
    let other_path = other.to_string_lossy().into_owned();
    let script = format!("[ -e {other_path} ] && echo visible; grep -rl s3cret /tmp /etc/config /data 2>/dev/null; echo end");
    let mut cfg = bed.sh("vol2", &script);
    cfg.mounts = vec![Mount {
        host_path: data.clone(),
        container_path: "/data".into(),
        read_only: false,
    }];
    assert_eq!(bed.run(cfg).await.1, "end\n");
}

#[tokio::test]
async fn env_is_exactly_the_configured_one_and_working_dir_applies() {
    let bed = Bed::new();
    // SAFETY: set before any container starts; proves the host env does not leak.
    unsafe { std::env::set_var("PODRUN_HOST_ONLY", "leak") };
    let mut cfg = bed.cfg("env", &["/usr/bin/env"]);
    cfg.env = vec![("B".into(), "2".into()), ("A".into(), "x y=z".into())];
    let (_, out) = bed.run(cfg).await;
    assert_eq!(
        out,
        "B=2\nA=x y=z\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
    let mut cfg = bed.cfg("env2", &["/usr/bin/env"]);
    cfg.env = vec![("PATH".into(), "/usr/bin".into())];
    assert_eq!(bed.run(cfg).await.1, "PATH=/usr/bin\n");

    let mut cfg = bed.cfg("wd", &["pwd"]);
    cfg.working_dir = Some("/usr/share".into());
    assert_eq!(bed.run(cfg).await.1, "/usr/share\n");
    // A missing working dir outside read-only dirs is created, like runc does.
    let mut cfg = bed.cfg("wd2", &["pwd"]);
    cfg.working_dir = Some("/work/dir".into());
    assert_eq!(bed.run(cfg).await.1, "/work/dir\n");
}

/// Waits (on log progress events, not time) until `needle` appears as a line of the log.
async fn wait_for_log_line(c: &Container, log: &Path, needle: &str) {
    let opts = LogOptions {
        follow: true,
        ..Default::default()
    };
    let mut stream = std::pin::pin!(logs::read(log.to_path_buf(), opts, c.log_progress()));
    let mut seen = String::new();
    while let Some(chunk) = stream.try_next().await.expect("follow") {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.lines().any(|l| l == needle) {
            return;
        }
    }
    panic!("log ended without {needle:?}: {seen:?}");
}

#[tokio::test]
async fn exec_runs_inside_the_container() {
    let bed = Bed::new();
    let data = bed.path("vol");
    std::fs::create_dir_all(&data).expect("mkdir");
    let mut cfg = bed.sh(
        "ex",
        "echo from-main > /data/f; echo ready; exec sleep 1000",
    );
    cfg.env = vec![("GREETING".into(), "hello".into())];
    cfg.working_dir = Some("/data".into());
    cfg.mounts = vec![Mount {
        host_path: data,
        container_path: "/data".into(),
        read_only: false,
    }];
    let log = cfg.log_path.clone();
    let c = bed.rt.start(cfg).await.expect("start");
    wait_for_log_line(&c, &log, "ready").await;

    let (code, out, err) = exec_output(
        &c,
        &["sh", "-c", "echo $GREETING; pwd; cat f; hostname; [ -d /proc/1 ] && echo $$; echo oops >&2; exit 3"],
        b"",
    )
    .await;
    assert_eq!(code, 3);
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, pid) = out
        .rsplit_once(
            "mypod
",
        )
        .expect("hostname line");
    assert_eq!(
        head,
        "hello
/data
from-main
"
    );
    // The exec'd shell lives in the container's PID namespace, beside its PID 1.
    let pid: u32 = pid.trim().parse().expect("pid");
    assert!((2..100).contains(&pid), "exec pid {pid}");
    assert_eq!(err, b"oops\n");
    // Host dirs stay invisible to exec too.
    let (code, _, _) = exec_output(&c, &["ls", "/work"], b"").await;
    assert_ne!(code, 0);

    // stdin round trip.
    let (code, out, _) = exec_output(&c, &["cat"], b"line1\nline2").await;
    assert_eq!((code, out.as_slice()), (0, b"line1\nline2".as_slice()));

    // 5 MiB of output arrives intact.
    let (code, out, _) = exec_output(&c, &["head", "-c", "5242880", "/dev/urandom"], b"").await;
    assert_eq!((code, out.len()), (0, 5 * 1024 * 1024));
    let mut big_in: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (code, out, _) = exec_output(&c, &["cat"], &big_in).await;
    assert_eq!(code, 0);
    assert!(out == big_in, "5 MiB round trip differs");
    big_in.clear();

    // A missing executable in exec is the same distinct error.
    let err = c
        .exec(ExecConfig {
            argv: vec!["nope-not-here".into()],
            ..Default::default()
        })
        .await
        .err();
    assert!(
        matches!(err, Some(Error::ExecutableNotFound { .. })),
        "{err:?}"
    );

    c.kill_all().expect("kill");
    assert_eq!(c.wait().await.code, 137);
    let err = c
        .exec(ExecConfig {
            argv: vec!["true".into()],
            ..Default::default()
        })
        .await
        .err();
    assert!(matches!(err, Some(Error::NotRunning { .. })), "{err:?}");
}
