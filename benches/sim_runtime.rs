//! Benchmarks of the simulator's process runtime: container start→exit, start→running,
//! exec round trip, and reading a 200,000-line CRI log (plain and tail).
//!
//! Run with `cargo bench --bench sim_runtime` (needs bubblewrap: tools/setup-sim.sh).

use std::path::PathBuf;
use std::sync::LazyLock;

use futures::TryStreamExt;
use podrun::sim::runtime::{logs, ContainerConfig, ExecConfig, LogOptions, LogProgress, Runtime};

// Reports bytes allocated per benchmark iteration (the runtime's own memory per container).
#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

fn main() {
    divan::main();
}

struct Bed {
    tokio: tokio::runtime::Runtime,
    rt: Runtime,
    dir: tempfile::TempDir,
    big_log: PathBuf,
}

static BED: LazyLock<Bed> = LazyLock::new(|| {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio
        .block_on(async { Runtime::new(dir.path().join("rt")) })
        .expect("runtime (run tools/setup-sim.sh)");
    let big_log = dir.path().join("big.log");
    let cfg = config(&dir, "big", &["seq", "1", "200000"], big_log.clone());
    tokio.block_on(async {
        let c = rt.start(cfg).await.expect("start");
        assert_eq!(c.wait().await.code, 0);
    });
    Bed {
        tokio,
        rt,
        dir,
        big_log,
    }
});

fn config(dir: &tempfile::TempDir, id: &str, argv: &[&str], log: PathBuf) -> ContainerConfig {
    let _ = dir;
    ContainerConfig {
        id: id.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        working_dir: None,
        mounts: vec![],
        hostname: "bench".into(),
        log_path: log,
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

/// Start a container running `true` and wait for its exit (log drained).
#[divan::bench(sample_count = 50)]
fn start_to_exit() {
    let bed = &*BED;
    let id = unique("exit");
    let cfg = config(
        &bed.dir,
        &id,
        &["true"],
        bed.dir.path().join(format!("{id}.log")),
    );
    bed.tokio.block_on(async {
        let c = bed.rt.start(cfg).await.expect("start");
        assert_eq!(c.wait().await.code, 0);
    });
    bed.rt.remove(&id);
}

/// Kills and forgets a container when dropped, i.e. outside divan's timing.
struct Reap(podrun::sim::runtime::Container);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill_all();
        BED.rt.remove(self.0.id());
    }
}

/// Start a long-running container (returns once its entrypoint runs as PID 1); killed
/// outside the timing.
#[divan::bench(sample_count = 50)]
fn start_to_running(bencher: divan::Bencher) {
    let bed = &*BED;
    bencher
        .with_inputs(|| {
            let id = unique("run");
            let log = bed.dir.path().join(format!("{id}.log"));
            config(&bed.dir, &id, &["sleep", "1000"], log)
        })
        .bench_local_values(|cfg| Reap(bed.tokio.block_on(bed.rt.start(cfg)).expect("start")));
}

/// Start 100 sleeping containers concurrently (all running), then kill them untimed.
#[divan::bench(sample_count = 5)]
fn start_100_concurrently(bencher: divan::Bencher) {
    let bed = &*BED;
    bencher
        .with_inputs(|| {
            (0..100)
                .map(|_| {
                    let id = unique("many");
                    let log = bed.dir.path().join(format!("{id}.log"));
                    config(&bed.dir, &id, &["sleep", "1000"], log)
                })
                .collect::<Vec<_>>()
        })
        .bench_local_values(|cfgs| {
            let started = bed.tokio.block_on(futures::future::join_all(
                cfgs.into_iter().map(|cfg| bed.rt.start(cfg)),
            ));
            let containers: Vec<_> = started.into_iter().map(|r| r.expect("start")).collect();
            for c in &containers {
                c.kill_all().expect("kill");
            }
            bed.tokio.block_on(futures::future::join_all(
                containers.iter().map(|c| c.wait()),
            ));
            for c in containers {
                bed.rt.remove(c.id());
            }
        });
}

/// SIGKILL a running container whose log is being followed, until the follow ends
/// (compare with `kill_to_exit`: the difference is the follower's wake-up delay).
#[divan::bench(sample_count = 30)]
fn kill_to_follow_end(bencher: divan::Bencher) {
    let bed = &*BED;
    bencher
        .with_inputs(|| {
            let id = unique("follow");
            let log = bed.dir.path().join(format!("{id}.log"));
            let argv = ["sh", "-c", "echo up; exec sleep 1000"];
            let c = bed
                .tokio
                .block_on(bed.rt.start(config(&bed.dir, &id, &argv, log.clone())))
                .expect("start");
            let opts = LogOptions {
                follow: true,
                ..Default::default()
            };
            let mut stream = Box::pin(logs::read(log, opts, c.log_progress()));
            let (up_tx, up_rx) = tokio::sync::oneshot::channel();
            let follower = bed.tokio.spawn(async move {
                let first = stream.try_next().await.expect("read");
                let _ = up_tx.send(first.is_some());
                while stream.try_next().await.expect("read").is_some() {}
            });
            // The follower has seen "up" and is now waiting for more.
            assert!(bed.tokio.block_on(up_rx).expect("follower"));
            (c, follower)
        })
        .bench_local_values(|(c, follower)| {
            c.kill_all().expect("kill");
            bed.tokio.block_on(follower).expect("follower task");
            bed.rt.remove(c.id());
        });
}

/// Time from SIGKILL of a running container to its exit being published.
#[divan::bench(sample_count = 30)]
fn kill_to_exit(bencher: divan::Bencher) {
    let bed = &*BED;
    bencher
        .with_inputs(|| {
            let id = unique("kill");
            let log = bed.dir.path().join(format!("{id}.log"));
            bed.tokio
                .block_on(bed.rt.start(config(&bed.dir, &id, &["sleep", "1000"], log)))
                .expect("start")
        })
        .bench_local_values(|c| {
            c.kill_all().expect("kill");
            bed.tokio.block_on(c.wait());
            bed.rt.remove(c.id());
        });
}

/// Exec `true` in a running container and wait for its exit code.
#[divan::bench(sample_count = 50)]
fn exec_true(bencher: divan::Bencher) {
    let bed = &*BED;
    let id = unique("exec");
    let log = bed.dir.path().join(format!("{id}.log"));
    let c = bed
        .tokio
        .block_on(bed.rt.start(config(&bed.dir, &id, &["sleep", "1000"], log)))
        .expect("start");
    bencher.bench_local(|| {
        bed.tokio.block_on(async {
            let mut p = c
                .exec(ExecConfig {
                    argv: vec!["true".into()],
                    ..Default::default()
                })
                .await
                .expect("exec");
            assert_eq!(p.wait().await.expect("wait"), 0);
        })
    });
    c.kill_all().expect("kill");
    bed.tokio.block_on(c.wait());
    bed.rt.remove(&id);
}

fn read_big(opts: LogOptions) -> usize {
    let bed = &*BED;
    bed.tokio.block_on(async {
        let chunks: Vec<_> = logs::read(bed.big_log.clone(), opts, LogProgress::finished())
            .try_collect()
            .await
            .expect("read");
        chunks.iter().map(|c| c.len()).sum()
    })
}

/// Read all 200,000 lines of a finished container's log.
#[divan::bench(sample_count = 20)]
fn read_200k_lines() -> usize {
    read_big(LogOptions::default())
}

/// Read them with timestamps.
#[divan::bench(sample_count = 20)]
fn read_200k_lines_timestamps() -> usize {
    read_big(LogOptions {
        timestamps: true,
        ..Default::default()
    })
}

/// tailLines=100 of the 200,000-line log (seeks from the end).
#[divan::bench(sample_count = 50)]
fn tail_100_of_200k() -> usize {
    read_big(LogOptions {
        tail_lines: Some(100),
        ..Default::default()
    })
}
