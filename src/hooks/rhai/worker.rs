//! Hook calls run on podrun's own "hook threads", which have large stacks.
//!
//! Rhai walks nested values recursively (size checks, cloning, dropping, serde), and a
//! script can nest maps or arrays thousands deep within its limits (`m = #{a: m}` in a
//! loop: Rhai's size limits count elements, not depth). On a 2 MiB thread (tokio's
//! blocking pool, test threads) that overflows the stack and aborts the process, so every
//! call runs on a thread with [`STACK_BYTES`] of stack (address space; only touched pages
//! use memory). The pool grows when all its threads are busy (up to [`MAX_THREADS`]), so
//! one tenant's hook burning its deadline never queues another tenant's call behind it.
//! A panic inside the engine (a Rhai bug) is caught and returned as an error.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Stack of each hook thread: 256 MiB of address space.
pub(crate) const STACK_BYTES: usize = 256 << 20;

/// Most hook threads at once; beyond this, calls queue.
pub(crate) const MAX_THREADS: usize = 64;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Pool {
    tx: Sender<Job>,
    rx: Arc<Mutex<Receiver<Job>>>,
    idle: AtomicUsize,
    total: AtomicUsize,
}

thread_local! {
    static ON_HOOK_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        Pool {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            idle: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        }
    })
}

/// Start one more hook thread; if the OS refuses the large stack, try smaller ones (still
/// far above the 2 MiB default).
fn spawn_worker(pool: &'static Pool) -> Result<(), std::io::Error> {
    let mut last = None;
    for stack in [STACK_BYTES, STACK_BYTES / 4, STACK_BYTES / 16] {
        match spawn_with_stack(pool, stack) {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no stack size tried")))
}

fn spawn_with_stack(pool: &'static Pool, stack: usize) -> Result<(), std::io::Error> {
    // Counted before the thread exists: a caller that sees the new thread idle must also
    // see it counted (or it would think no thread could be started).
    pool.total.fetch_add(1, Ordering::SeqCst);
    let rx = pool.rx.clone();
    let spawned = std::thread::Builder::new()
        .name("podrun-hook".into())
        .stack_size(stack)
        .spawn(move || {
            ON_HOOK_THREAD.with(|f| f.set(true));
            loop {
                pool.idle.fetch_add(1, Ordering::SeqCst);
                let job = next_job(&rx);
                pool.idle.fetch_sub(1, Ordering::SeqCst);
                match job {
                    Ok(job) => job(),
                    Err(_) => return,
                }
            }
        });
    spawned.map(|_| ()).inspect_err(|_| {
        pool.total.fetch_sub(1, Ordering::SeqCst);
    })
}

/// How long a hook thread polls for the next job, and a caller for its reply, before
/// sleeping. Waking a sleeping thread costs tens of microseconds on a VM (more than a
/// typical hook call); calls come in runs (log batches, a pipeline's hooks one after the
/// other), so a short poll usually finds the next one.
const SPIN: Duration = Duration::from_micros(50);

/// The next job: polled for [`SPIN`] (yielding the CPU, which the caller may need), then
/// waited for.
fn next_job(rx: &Mutex<Receiver<Job>>) -> Result<Job, mpsc::RecvError> {
    let lock = || rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    poll_then_wait(
        || lock().try_recv(),
        std::thread::yield_now,
        || lock().recv(),
    )
}

/// A reply: polled for [`SPIN`], then waited for.
fn wait_reply<R>(rx: &Receiver<R>) -> Result<R, mpsc::RecvError> {
    poll_then_wait(|| rx.try_recv(), std::hint::spin_loop, || rx.recv())
}

/// `try_recv` for up to [`SPIN`], calling `pause` between tries, then `recv`.
fn poll_then_wait<T>(
    mut try_recv: impl FnMut() -> Result<T, TryRecvError>,
    pause: fn(),
    recv: impl FnOnce() -> Result<T, mpsc::RecvError>,
) -> Result<T, mpsc::RecvError> {
    let until = Instant::now() + SPIN;
    while Instant::now() < until {
        match try_recv() {
            Ok(value) => return Ok(value),
            Err(TryRecvError::Disconnected) => return Err(mpsc::RecvError),
            Err(TryRecvError::Empty) => pause(),
        }
    }
    recv()
}

/// Run `job` on a hook thread and wait for its result. `Err` carries a panic's message.
///
/// Hook calls made inside `job` run inline (they are already on a hook thread), so a
/// caller making many calls (a log stream, a whole run) can pay the thread hand-off once.
pub fn run<R: Send + 'static>(job: impl FnOnce() -> R + Send + 'static) -> Result<R, String> {
    let guarded = move || {
        catch_unwind(AssertUnwindSafe(job)).map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into())
        })
    };
    if ON_HOOK_THREAD.with(std::cell::Cell::get) {
        return guarded();
    }
    let pool = pool();
    let mut spawn_error = None;
    if pool.idle.load(Ordering::SeqCst) == 0 && pool.total.load(Ordering::SeqCst) < MAX_THREADS {
        spawn_error = spawn_worker(pool).err();
    }
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    let sent = pool.tx.send(Box::new(move || {
        // The caller waits on `reply_rx`; if it went away there is no one to tell.
        let _ = reply_tx.send(guarded());
    }));
    if sent.is_err() || pool.total.load(Ordering::SeqCst) == 0 {
        return Err(match spawn_error {
            Some(e) => format!("no hook thread could be started: {e}"),
            None => "no hook thread could be started".into(),
        });
    }
    wait_reply(&reply_rx)
        .unwrap_or_else(|_| Err("the hook thread stopped without answering".into()))
}
