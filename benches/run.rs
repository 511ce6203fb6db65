//! `podrun run` benchmarks against the simulator (`cargo bench --bench run`).
//!
//! divan times the whole `podrun run` process for a trivial task (create → completion →
//! delete) and for one with XCom. Before that, `main` measures what divan cannot time and
//! prints it: the delay between the container's exit and podrun noticing it (the
//! container prints its own clock as its last line; the report's `timestamps.completed`
//! is podrun's), the peak RSS of a `podrun run` process (`VmHWM`, sampled while it runs),
//! and the API requests per task from the simulator's counters. Figures go to
//! BENCHMARKS.md with the date and command.

use std::path::PathBuf;
use std::process::Command;
use std::sync::LazyLock;

use podrun::sim::{Config, Sim};

struct Env {
    _rt: tokio::runtime::Runtime,
    sim: Sim,
    dir: tempfile::TempDir,
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // The simulator runs its process kubelet by default.
    let sim = rt
        .block_on(Sim::start(Config::default()))
        .expect("simulator starts (tools/setup-sim.sh)");
    let dir = tempfile::tempdir().expect("temp dir");
    Env { _rt: rt, sim, dir }
});

fn task(name: &str, yaml: &str) -> PathBuf {
    let p = ENV.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&p, yaml).expect("write task");
    p
}

const TRIVIAL: &str = "task_id: trivial\nimage: alpine\ncmds: [\"true\"]\n";
const XCOM: &str = "task_id: trivialx\nimage: alpine\ncmds: [sh, -c, \"echo '{\\\"ok\\\": 1}' > /airflow/xcom/return.json\"]\ndo_xcom_push: true\n";
const CLOCK: &str = "task_id: clock\nimage: alpine\ncmds: [sh, -c, \"date +%s%N\"]\ncontainer_name_log_prefix_enabled: false\n";

/// Largest peak RSS (KiB) of any `podrun run` process so far: the `VmHWM` of its own
/// address space, sampled every millisecond while it runs. (`getrusage`/`wait4` figures
/// are useless here: Linux carries the RSS of the forking process, this benchmark with
/// its simulator, into the child's `ru_maxrss` across `exec`.)
static PEAK_RSS_KIB: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Sample `VmHWM` of `pid` until the process has exited (a zombie has no `VmHWM`).
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<i64> {
    std::thread::spawn(move || {
        let path = format!("/proc/{pid}/status");
        let mut peak = 0;
        loop {
            let hwm = std::fs::read_to_string(&path).ok().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            });
            match hwm {
                Some(k) => peak = peak.max(k),
                None => return peak,
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    })
}

/// Run `podrun run TASK` to the end; its stdout and report.
fn podrun(task: &PathBuf) -> (String, serde_json::Value) {
    use std::io::Read;
    let report = ENV.dir.path().join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_podrun"))
        .arg("run")
        .arg(task)
        .arg("--kubeconfig")
        .arg(ENV.sim.kubeconfig_path())
        .arg("--report")
        .arg(&report)
        .env_remove("KUBECONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("podrun runs");
    let rss = watch_peak_rss(child.id());
    let mut stderr = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let stderr = err_reader.join().expect("stderr thread");
    let status = child.wait().expect("wait");
    PEAK_RSS_KIB.fetch_max(
        rss.join().expect("rss thread"),
        std::sync::atomic::Ordering::Relaxed,
    );
    assert!(status.success(), "podrun failed: {stderr}");
    let r = std::fs::read_to_string(&report).expect("report");
    (stdout, serde_json::from_str(&r).expect("report json"))
}

fn total_requests() -> u64 {
    ENV.sim.request_counts().values().sum()
}

fn requests_for(task: &PathBuf) -> (u64, std::collections::BTreeMap<String, u64>) {
    let before = ENV.sim.request_counts();
    podrun(task);
    let after = ENV.sim.request_counts();
    let diff: std::collections::BTreeMap<String, u64> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect();
    (diff.values().sum(), diff)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure() {
    let trivial = task("trivial", TRIVIAL);
    let xcom = task("xcom", XCOM);
    let clock = task("clock", CLOCK);
    podrun(&trivial); // warm up
    let (n, by) = requests_for(&trivial);
    eprintln!("api requests, trivial task: {n} {by:?}");
    let (n, by) = requests_for(&xcom);
    eprintln!("api requests, trivial task with XCom: {n} {by:?}");
    let mut lat = Vec::new();
    for _ in 0..20 {
        let (stdout, report) = podrun(&clock);
        let exited: i128 = stdout.trim().parse().expect("container clock");
        let noticed: jiff::Timestamp = report["timestamps"]["completed"]
            .as_str()
            .expect("completed timestamp")
            .parse()
            .expect("timestamp");
        lat.push((noticed.as_nanosecond() - exited) as f64 / 1e6);
    }
    eprintln!(
        "completion noticed after container exit: median {:.1} ms, max {:.1} ms (20 runs)",
        median(lat.clone()),
        lat.iter().cloned().fold(0.0, f64::max)
    );
    eprintln!(
        "peak RSS of a podrun run process: {:.1} MiB ({:.1} MB)",
        PEAK_RSS_KIB.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        PEAK_RSS_KIB.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1024.0 / 1e6
    );
    let _ = total_requests();
}

fn main() {
    measure();
    divan::main();
}

/// A trivial task end to end: create → completion → delete, process start included.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn trivial_task() {
    static T: LazyLock<PathBuf> = LazyLock::new(|| task("trivial", TRIVIAL));
    podrun(&T);
}

/// The same with XCom: create → completion → XCom read → sidecar stop → delete.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn trivial_task_with_xcom() {
    static T: LazyLock<PathBuf> = LazyLock::new(|| task("xcom", XCOM));
    podrun(&T);
}
