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
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

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

    // Env and working dir can be overridden per exec.
    let mut p = c
        .exec(ExecConfig {
            argv: ["sh", "-c", "echo \"$Z|$GREETING|$(pwd)\""]
                .map(String::from)
                .into(),
            env: Some(vec![("Z".into(), "9".into())]),
            working_dir: Some("/usr/share".into()),
            tty: false,
        })
        .await
        .expect("exec");
    let mut out = String::new();
    p.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    assert_eq!(
        (p.wait().await.expect("wait"), out.as_str()),
        (0, "9||/usr/share\n")
    );
    let err = c
        .exec(ExecConfig {
            argv: vec!["true".into()],
            working_dir: Some("/nope".into()),
            ..Default::default()
        })
        .await
        .err();
    assert!(matches!(err, Some(Error::InvalidConfig { .. })), "{err:?}");
    let err = c
        .exec(ExecConfig {
            argv: vec!["true".into()],
            tty: true,
            ..Default::default()
        })
        .await
        .err();
    assert!(matches!(err, Some(Error::TtyUnsupported)), "{err:?}");

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

/// The raw CRI records of a log file: (timestamp, stream, tag, content).
fn records(path: &Path) -> Vec<(String, String, String, String)> {
    std::fs::read_to_string(path)
        .expect("log file")
        .lines()
        .map(|l| {
            let mut p = l.splitn(4, ' ');
            let mut next = || p.next().unwrap_or_default().to_string();
            (next(), next(), next(), next())
        })
        .collect()
}

fn is_kubelet_timestamp(ts: &str) -> bool {
    // 2026-11-27T09:49:01.123456789Z: always 9 fractional digits, UTC.
    let b = ts.as_bytes();
    b.len() == 30
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            29 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
        && ts.parse::<jiff::Timestamp>().is_ok()
}

#[tokio::test]
async fn logs_are_cri_records_with_partial_last_line() {
    let bed = Bed::new();
    let cfg = bed.sh("fmt", "printf 'one\\ntwo\\n'; echo err >&2; printf last");
    let log = cfg.log_path.clone();
    let (code, out) = bed.run(cfg).await;
    assert_eq!(code, 0);
    let recs = records(&log);
    assert!(recs.iter().all(|r| is_kubelet_timestamp(&r.0)), "{recs:?}");
    let mut stdout: Vec<(&str, &str)> = recs
        .iter()
        .filter(|r| r.1 == "stdout")
        .map(|r| (r.2.as_str(), r.3.as_str()))
        .collect();
    let stderr: Vec<(&str, &str)> = recs
        .iter()
        .filter(|r| r.1 == "stderr")
        .map(|r| (r.2.as_str(), r.3.as_str()))
        .collect();
    assert_eq!(stderr, [("F", "err")]);
    assert_eq!(stdout, [("F", "one"), ("F", "two"), ("P", "last")]);
    // Both streams are in one log, each in its own order (their relative order is the
    // order the runtime read the pipes in); the API output is the records joined in file
    // order, with a newline after each full one.
    let joined: String = recs
        .iter()
        .map(|r| format!("{}{}", r.3, if r.2 == "F" { "\n" } else { "" }))
        .collect();
    assert_eq!(out, joined);
    stdout.clear();

    let ts = read_log(
        &log,
        LogOptions {
            timestamps: true,
            ..Default::default()
        },
    )
    .await;
    let lines: Vec<&str> = ts.split_inclusive('\n').collect();
    assert_eq!(lines.len(), 4, "{ts:?}");
    for (line, rec) in lines.iter().zip(&recs) {
        let (stamp, content) = line.split_once(' ').expect("timestamp prefix");
        assert_eq!(stamp, rec.0);
        assert_eq!(content.trim_end_matches('\n'), rec.3);
    }
}

#[tokio::test]
async fn long_lines_are_split_into_partials_and_joined_on_read() {
    let bed = Bed::new();
    let cfg = bed.sh(
        "long",
        "head -c 40000 /dev/zero | tr '\\0' x; echo; echo short",
    );
    let log = cfg.log_path.clone();
    let (_, out) = bed.run(cfg).await;
    assert_eq!(out, format!("{}\nshort\n", "x".repeat(40000)));
    let tags: Vec<String> = records(&log).into_iter().map(|r| r.2).collect();
    assert_eq!(tags, ["P", "P", "F", "F"]);
    // Timestamps are prefixed once per logical line, not per record.
    let ts = read_log(
        &log,
        LogOptions {
            timestamps: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ts.len(), out.len() + 2 * 31);
    // tailLines counts logical lines.
    let tail = read_log(
        &log,
        LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tail, out);
}

#[tokio::test]
async fn tail_since_and_limit_bytes() {
    let bed = Bed::new();
    let cfg = bed.sh("tsl", "seq 1 10");
    let log = cfg.log_path.clone();
    bed.run(cfg).await;
    let read = |opts| read_log(&log, opts);
    let tail = |n| LogOptions {
        tail_lines: Some(n),
        ..Default::default()
    };
    assert_eq!(read(tail(3)).await, "8\n9\n10\n");
    assert_eq!(read(tail(0)).await, "");
    assert_eq!(read(tail(100)).await.lines().count(), 10);
    let limit = |n| LogOptions {
        limit_bytes: Some(n),
        ..Default::default()
    };
    assert_eq!(read(limit(5)).await, "1\n2\n3");
    assert_eq!(read(limit(1)).await, "1");
    let both = LogOptions {
        tail_lines: Some(2),
        limit_bytes: Some(3),
        ..Default::default()
    };
    assert_eq!(read(both).await, "9\n1");
    let since_hour = LogOptions {
        since_seconds: Some(3600),
        ..Default::default()
    };
    assert_eq!(read(since_hour).await.lines().count(), 10);
    let future = LogOptions {
        since_time: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3600)),
        ..Default::default()
    };
    assert_eq!(read(future).await, "");
}

/// A container that prints `first`, then blocks until the test writes a line into a fifo
/// in its volume, then prints `got <line>` and exits.
async fn gated(bed: &Bed, id: &str) -> (Container, PathBuf, PathBuf) {
    let vol = bed.path(&format!("{id}-vol"));
    std::fs::create_dir_all(&vol).expect("mkdir");
    let fifo = vol.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let mut cfg = bed.sh(id, "echo first; read line < /v/fifo; echo \"got $line\"");
    cfg.mounts = vec![Mount {
        host_path: vol,
        container_path: "/v".into(),
        read_only: false,
    }];
    let log = cfg.log_path.clone();
    (bed.rt.start(cfg).await.expect("start"), log, fifo)
}

async fn release(fifo: PathBuf, line: &str) {
    // Opening a fifo for writing blocks until the container opens it for reading.
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .open(fifo)
        .await
        .expect("open fifo");
    f.write_all(format!("{line}\n").as_bytes())
        .await
        .expect("write fifo");
}

#[tokio::test]
async fn follow_streams_new_lines_and_ends_when_the_container_exits() {
    let bed = Bed::new();
    let (c, log, fifo) = gated(&bed, "follow").await;
    let opts = LogOptions {
        follow: true,
        ..Default::default()
    };
    let mut stream = std::pin::pin!(logs::read(log.clone(), opts, c.log_progress()));
    let first = stream.try_next().await.expect("read").expect("chunk");
    assert_eq!(first.as_ref(), b"first\n");
    // Nothing more until the container writes again: the follow is waiting, not ended.
    release(fifo, "x").await;
    let mut rest = Vec::new();
    // A guard against a hang (not a correctness timer): the stream must end by itself.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(chunk) = stream.try_next().await.expect("read") {
            rest.extend_from_slice(&chunk);
        }
    })
    .await;
    assert!(ended.is_ok(), "follow did not end after exit");
    assert_eq!(rest, b"got x\n");
    assert_eq!(c.wait().await.code, 0);

    // sinceTime filters by record time: from the second record on, only it.
    let second = records(&log)[1].0.parse::<jiff::Timestamp>().expect("ts");
    let since = LogOptions {
        since_time: Some(second),
        ..Default::default()
    };
    assert_eq!(read_log(&log, since).await, "got x\n");
    // A follow on a finished container returns everything and ends.
    let again = LogOptions {
        follow: true,
        ..Default::default()
    };
    let all: Vec<_> = logs::read(log, again, c.log_progress())
        .try_collect()
        .await
        .expect("read");
    assert_eq!(all.concat(), b"first\ngot x\n");
}

#[tokio::test]
async fn follow_ends_when_the_container_is_killed() {
    let bed = Bed::new();
    let (c, log, _fifo) = gated(&bed, "killed").await;
    let opts = LogOptions {
        follow: true,
        timestamps: true,
        ..Default::default()
    };
    let mut stream = std::pin::pin!(logs::read(log, opts, c.log_progress()));
    let first = stream.try_next().await.expect("read").expect("chunk");
    assert!(first.ends_with(b" first\n"));
    c.kill_all().expect("kill");
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), stream.try_next()).await;
    assert!(matches!(next, Ok(Ok(None))), "{next:?}");
    assert_eq!(c.wait().await.code, 137);
}

#[tokio::test]
async fn two_hundred_thousand_lines_survive_capture_and_read() {
    let bed = Bed::new();
    let cfg = bed.sh("big", "seq 1 200000; seq 1 1000 >&2");
    let log = cfg.log_path.clone();
    let (code, out) = bed.run(cfg).await;
    assert_eq!(code, 0);
    let mut stdout_lines: Vec<u32> = Vec::with_capacity(200_000);
    let mut stderr_lines = 0;
    let recs = records(&log);
    // Each record is stamped when written (like containerd, per line): in file order the
    // stamps never go back, and lines of one read are not all given one stamp.
    assert!(recs.windows(2).all(|w| w[0].0 <= w[1].0));
    let distinct: std::collections::HashSet<&str> = recs.iter().map(|r| r.0.as_str()).collect();
    assert!(
        distinct.len() > recs.len() / 2,
        "{} distinct stamps",
        distinct.len()
    );
    for r in recs {
        assert_eq!(r.2, "F");
        match r.1.as_str() {
            "stdout" => stdout_lines.push(r.3.parse().expect("number")),
            _ => stderr_lines += 1,
        }
    }
    assert_eq!(stdout_lines, (1..=200_000).collect::<Vec<u32>>());
    assert_eq!(stderr_lines, 1000);
    assert_eq!(out.lines().count(), 201_000);
    let tail = read_log(
        &log,
        LogOptions {
            tail_lines: Some(200_500),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tail.lines().count(), 200_500);
}

#[tokio::test]
async fn dropping_the_runtime_kills_its_containers_and_leaves_no_zombies() {
    let bed = Bed::new();
    let c = bed
        .rt
        .start(bed.cfg("long", &["sleep", "1000"]))
        .await
        .expect("start");
    let done = bed
        .rt
        .start(bed.sh("short", "exit 0"))
        .await
        .expect("start");
    assert_eq!(done.wait().await.code, 0);
    let root = bed.rt.root_dir().to_path_buf();
    assert!(root.exists());
    let Bed { rt, dir } = bed;
    drop(rt);
    assert!(!root.exists(), "runtime root dir left behind");
    let exit = c.wait().await;
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    assert!(!Path::new(&format!("/proc/{}", c.pid())).exists());
    // Every child the runtime spawned has been reaped once its exit is reported. Other
    // tests in this process may have a child between exit and reap for an instant, so a
    // zombie only counts if it is still there after a bounded wait.
    let me = std::process::id().to_string();
    let zombies = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
                let fields: Vec<&str> = rest.split(' ').collect();
                fields.first() == Some(&"Z") && fields.get(1) == Some(&me.as_str())
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !zombies().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(zombies(), Vec::<String>::new());
    drop(dir);
}

#[tokio::test]
async fn dropping_an_exec_kills_its_command_and_file_mounts_work() {
    let bed = Bed::new();
    let term = bed.path("termination-log");
    std::fs::write(&term, "").expect("touch");
    let mut cfg = bed.sh(
        "tl",
        "echo done > /dev/termination-log; echo ready; exec sleep 1000",
    );
    // A file volume, the way the kubelet mounts terminationMessagePath.
    cfg.mounts = vec![Mount {
        host_path: term.clone(),
        container_path: "/dev/termination-log".into(),
        read_only: false,
    }];
    let log = cfg.log_path.clone();
    let c = bed.rt.start(cfg).await.expect("start");
    wait_for_log_line(&c, &log, "ready").await;
    assert_eq!(std::fs::read_to_string(&term).expect("read"), "done\n");

    let mut p = c
        .exec(ExecConfig {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo started; exec sleep 1000".into(),
            ],
            ..Default::default()
        })
        .await
        .expect("exec");
    let mut out = p.stdout.take().expect("stdout");
    let mut first = [0u8; 8];
    out.read_exact(&mut first).await.expect("started");
    assert_eq!(&first, b"started\n");
    drop(p);
    // EOF arrives only once every holder of the pipe, the exec'd sleep included, is dead.
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).await.expect("eof");
    assert!(rest.is_empty());
    assert!(c.try_exit().is_none(), "the container itself keeps running");
    c.kill_all().expect("kill");
    assert_eq!(c.wait().await.code, 137);
}

/// Run by `unprivileged_users_get_user_namespace_isolation` as uid 65534; skipped otherwise.
#[tokio::test]
async fn child_as_unprivileged_user() {
    if std::env::var_os("PODRUN_SIM_RUNTIME_CHILD").is_none() {
        return;
    }
    assert!(!nix::unistd::geteuid().is_root());
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = match Runtime::new(dir.path().join("rt")) {
        Ok(rt) => rt,
        Err(e @ Error::IsolationUnavailable(_)) => {
            // Allowed outcome on kernels without unprivileged user namespaces, as long as
            // the error says what is missing.
            assert!(e.to_string().contains("user namespace"), "{e}");
            println!("ISOLATION-UNAVAILABLE");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        rt.isolation(),
        podrun::sim::runtime::Isolation::UserNamespace
    );
    let mut cfg = ContainerConfig {
        id: "u".into(),
        argv: ["sh", "-c", "echo $$ $(id -u) $(hostname); [ -e /work ] || echo hidden; echo ready; exec sleep 1000"]
            .map(String::from)
            .into(),
        env: vec![],
        working_dir: None,
        mounts: vec![],
        hostname: "upod".into(),
        log_path: dir.path().join("u.log"),
    };
    cfg.env.push(("X".into(), "1".into()));
    let log = cfg.log_path.clone();
    let c = rt.start(cfg).await.expect("start");
    wait_for_log_line(&c, &log, "ready").await;
    let (code, out, _) = exec_output(&c, &["sh", "-c", "echo $X; hostname"], b"").await;
    assert_eq!((code, out.as_slice()), (0, b"1\nupod\n".as_slice()));
    c.kill_all().expect("kill");
    assert_eq!(c.wait().await.code, 137);
    assert_eq!(
        read_log(&log, LogOptions::default()).await,
        "1 0 upod\nhidden\nready\n"
    );
    println!("USERNS-OK");
}

#[tokio::test]
async fn unprivileged_users_get_user_namespace_isolation() {
    if !nix::unistd::geteuid().is_root() || std::env::var_os("PODRUN_SIM_RUNTIME_CHILD").is_some() {
        return;
    }
    // Re-run this test binary's child test as nobody, from a copy nobody can read.
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("sim_runtime_test");
    std::fs::copy(std::env::current_exe().expect("exe"), &exe).expect("copy");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = tokio::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args(["--exact", "child_as_unprivileged_user", "--nocapture"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TMPDIR", "/tmp")
        .env("PODRUN_SIM_RUNTIME_CHILD", "1")
        .output()
        .await
        .expect("setpriv");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && (stdout.contains("USERNS-OK") || stdout.contains("ISOLATION-UNAVAILABLE")),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run by `containers_die_with_a_killed_podrun` in a child process; skipped otherwise.
#[tokio::test]
async fn child_holding_a_container() {
    if std::env::var_os("PODRUN_SIM_RUNTIME_HOLD").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(dir.path().join("rt")).expect("runtime");
    let c = rt
        .start(ContainerConfig {
            id: "held".into(),
            argv: vec!["sleep".into(), "1000".into()],
            env: vec![],
            working_dir: None,
            mounts: vec![],
            hostname: "held".into(),
            log_path: dir.path().join("held.log"),
        })
        .await
        .expect("start");
    println!("CONTAINER-PID {}", c.pid());
    // Park until killed by the parent test.
    std::future::pending::<()>().await;
}

/// Whether a process that is not our child exits within `timeout_ms` (pidfd poll: an
/// event, the timeout only guards against a hang).
async fn pid_exits_within(pid: i32, timeout_ms: i32) -> bool {
    tokio::task::spawn_blocking(move || {
        // SAFETY: plain syscall; a non-negative result is a new fd we own.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return true; // already gone (and reaped)
        }
        let fd = fd as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; the fd is closed right after.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        // SAFETY: fd is ours and not used after this.
        unsafe { libc::close(fd) };
        n == 1
    })
    .await
    .expect("poll task")
}

#[tokio::test]
async fn containers_die_with_a_killed_podrun() {
    if std::env::var_os("PODRUN_SIM_RUNTIME_HOLD").is_some()
        || std::env::var_os("PODRUN_SIM_RUNTIME_CHILD").is_some()
    {
        return;
    }
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--exact", "child_holding_a_container", "--nocapture"])
        .env("PODRUN_SIM_RUNTIME_HOLD", "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn child test");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let pid: i32 = loop {
        let line = lines
            .next_line()
            .await
            .expect("read")
            .expect("child printed its pid");
        if let Some(p) = line.strip_prefix("CONTAINER-PID ") {
            break p.trim().parse().expect("pid");
        }
    };
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // SIGKILL: no destructor runs in the holder; only PR_SET_PDEATHSIG can clean up.
    child.start_kill().expect("kill child");
    child.wait().await.expect("reap child");
    let state = || std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        pid_exits_within(pid, 10_000).await,
        "container PID 1 {pid} survived its runtime's process: {}",
        state()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_containers_start_concurrently_without_crosstalk() {
    let bed = Bed::new();
    let starts = (0..40).map(|i| {
        let mut cfg = bed.sh(
            &format!("c{i}"),
            &format!("echo $(hostname) $$ $N; exit {i}"),
        );
        cfg.hostname = format!("pod-{i}");
        cfg.env = vec![("N".into(), i.to_string())];
        let rt = bed.rt.clone();
        async move { rt.start(cfg).await.expect("start") }
    });
    let containers = futures::future::join_all(starts).await;
    for (i, c) in containers.iter().enumerate() {
        let exit = c.wait().await;
        assert_eq!(exit.code, i as i32);
        let log = read_log(&bed.path(&format!("c{i}.log")), LogOptions::default()).await;
        assert_eq!(log, format!("pod-{i} 1 {i}\n"));
    }
}

#[test]
fn missing_tools_and_failing_namespaces_are_reported_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nsenter = PathBuf::from("/usr/bin/nsenter");
    let err = Runtime::with_tools(
        dir.path().join("rt"),
        dir.path().join("no-bwrap"),
        nsenter.clone(),
    )
    .err();
    assert!(
        matches!(err, Some(Error::SandboxToolMissing { tool: "bwrap", .. })),
        "{err:?}"
    );
    assert!(err
        .map(|e| e.to_string())
        .is_some_and(|m| m.contains("tools/setup-sim.sh")));

    // A sandbox tool that cannot create namespaces (as in a container without
    // CAP_SYS_ADMIN): the error carries its message and says what is needed.
    let fake = dir.path().join("bwrap");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A test thread forking meanwhile can briefly hold the just-written file open
    // (ETXTBSY on exec); that is this test's race, not the runtime's, so retry it.
    let mut err = None;
    for _ in 0..50 {
        err = Runtime::with_tools(dir.path().join("rt"), fake.clone(), nsenter.clone()).err();
        let busy = matches!(&err, Some(Error::Spawn { source, .. })
            if source.kind() == std::io::ErrorKind::ExecutableFileBusy);
        if !busy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let msg = err.as_ref().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        matches!(err, Some(Error::IsolationUnavailable(_))),
        "{err:?}"
    );
    assert!(msg.contains("Operation not permitted"), "{msg}");
    assert!(
        !dir.path().join("rt").exists(),
        "nothing created on failure"
    );
}
