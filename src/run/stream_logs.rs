//! Following one container's log to its end, exactly once, across any interruption.
//!
//! Each stream is `follow=true&timestamps=true`, resumed with `sinceTime` from the
//! [`Cursor`] and de-duplicated by [`Dedup`] (see `log_cursor.rs`). Bytes after the last
//! newline of a broken stream are discarded, never emitted as a line: the resumed stream
//! sends the whole line again. A stream that ends cleanly is the container's end when the
//! watch says the container has finished: the node ends a follow exactly then, so the
//! common case costs one request per container. Once any stream of the follow was cut
//! (a proxy or load balancer can also end a stream cleanly), a clean end is trusted only
//! from a stream opened after the container finished that brought no new line; otherwise
//! the log is opened once more from the cursor. A stream that ends before re-reaching the
//! cursor was cut. A trailing
//! line without a newline is emitted only when a `tailLines=1` read shows it is the
//! log's last line. A stream silent for `log_stall_timeout` while its container
//! has finished (or ten times that while it runs) is presumed stuck and re-opened.
//!
//! Lines go through [`Hooks::filter_log`] in batches (what one read delivered, at most
//! [`BATCH`]) and then to stdout through [`Ui`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncBufReadExt, FutureExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

use super::conditions;
use super::connect::{self, Kube};
use super::hooks::Hooks;
use super::log_cursor::{split_line, Cursor, Dedup};
use super::report::Ui;
use super::retry::Backoff;
use super::watch::{wait_for, PodState, StateRx};

/// Largest batch of lines handed to the log filter at once.
pub const BATCH: usize = 512;

/// Where followed lines go, shared by all followers of a run.
#[derive(Clone)]
pub struct Sink {
    /// Output.
    pub ui: Arc<Ui>,
    /// Log filter.
    pub hooks: Arc<dyn Hooks>,
    /// Prefix lines with `[container] `.
    pub prefix: bool,
    /// Lines written per container.
    pub counts: Arc<Mutex<BTreeMap<String, u64>>>,
    /// The latest cursor per container (for detach and attach).
    pub cursors: Arc<Mutex<BTreeMap<String, Cursor>>>,
    /// The first hook failure, which stops every follower.
    pub hook_error: Arc<Mutex<Option<String>>>,
}

impl Sink {
    /// A sink writing to `ui`, filtering with `hooks`.
    pub fn new(ui: Arc<Ui>, hooks: Arc<dyn Hooks>, prefix: bool) -> Self {
        Sink {
            ui,
            hooks,
            prefix,
            counts: Arc::default(),
            cursors: Arc::default(),
            hook_error: Arc::default(),
        }
    }

    fn emit(&self, container: &str, lines: Vec<String>, cursor: &Cursor) -> Result<(), String> {
        if let Ok(mut c) = self.cursors.lock() {
            c.insert(container.to_string(), cursor.clone());
        }
        if lines.is_empty() {
            return Ok(());
        }
        let n = lines.len();
        let kept = match self.hooks.filter_log(container, lines) {
            Ok(k) if k.len() == n => k,
            Ok(k) => {
                return Err(format!(
                    "filter_log returned {} entries for {n} lines",
                    k.len()
                ))
            }
            Err(e) => return Err(e),
        };
        let out: Vec<String> = kept.into_iter().flatten().collect();
        self.ui.log_lines(container, &out, self.prefix);
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(container.to_string()).or_default() += out.len() as u64;
        }
        Ok(())
    }
}

/// How a follow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The container finished and every line was read.
    Complete,
    /// The container never ran (the pod finished or failed without it).
    NeverStarted,
    /// The pod is gone; what was read was written.
    PodGone,
    /// The log filter hook failed.
    HookFailed,
    /// Retries ran out; the message says why.
    GaveUp(String),
}

/// Why one stream stopped.
enum StreamEnd {
    Eof,
    Broken(String),
    Stalled,
    Hook,
}

/// Follow `container` of pod `ns/pod` from `start` until it ends.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these
pub async fn follow(
    kube: Kube,
    ns: String,
    pod: String,
    container: String,
    mut rx: StateRx,
    sink: Sink,
    start: Cursor,
    stall: Duration,
) -> End {
    let ready = wait_for(&mut rx, |s| {
        s.gone
            || s.failed.is_some()
            || s.pod.as_deref().is_some_and(|p| {
                conditions::has_begun(p, &container)
                    || conditions::is_terminal(p)
                    || conditions::early_failure(p).is_some()
            })
    })
    .await;
    if ready.gone {
        return End::PodGone;
    }
    if !ready
        .pod
        .as_deref()
        .is_some_and(|p| conditions::has_begun(p, &container))
    {
        return End::NeverStarted;
    }
    let mut dedup = Dedup::new(start);
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5), Some(60));
    // Whether any stream of this follow has ended short of the log's end.
    let mut interrupted = false;
    loop {
        let finished_at_open = finished_or_gone(&rx.borrow(), &container);
        let lp = LogParams {
            container: Some(container.clone()),
            follow: true,
            timestamps: true,
            since_time: dedup.cursor().since_time(),
            ..Default::default()
        };
        let opened = kube
            .call(|c| {
                let lp = lp.clone();
                let ns = ns.clone();
                let pod = pod.clone();
                async move { Api::<Pod>::namespaced(c, &ns).log_stream(&pod, &lp).await }
            })
            .await;
        let reader = match opened {
            Ok(r) => r,
            Err(e) => {
                if rx.borrow().gone || connect::is_not_found(&e) {
                    return End::PodGone;
                }
                // A finished container whose log the node refuses (it never really ran,
                // or its node is gone) has no more lines to give.
                let finished = rx
                    .borrow()
                    .pod
                    .as_deref()
                    .is_some_and(|p| conditions::is_finished(p, &container));
                if finished && connect::api_code(&e) == Some(400) && backoff.attempts() >= 2 {
                    return End::Complete;
                }
                match backoff.next_delay() {
                    Some(d) => {
                        tracing::debug!(error = %e, container, "log stream failed to open; retrying");
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    None => {
                        return End::GaveUp(format!(
                            "cannot read logs of container {container}: {e}"
                        ))
                    }
                }
            }
        };
        dedup.begin_stream();
        let (end, partial, accepted) =
            read_stream(reader, &container, &mut dedup, &sink, &rx, stall).await;
        tracing::debug!(
            container,
            since = ?lp.since_time,
            accepted,
            partial = partial.is_some(),
            resuming = dedup.resuming(),
            finished_at_open,
            end = match &end {
                StreamEnd::Eof => "eof",
                StreamEnd::Broken(_) => "broken",
                StreamEnd::Stalled => "stalled",
                StreamEnd::Hook => "hook",
            },
            "log stream ended"
        );
        match end {
            StreamEnd::Hook => return End::HookFailed,
            // A stream that ended before re-reaching the cursor was certainly cut.
            StreamEnd::Eof if dedup.resuming() => {
                interrupted = true;
                match backoff.next_delay() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => {
                        return End::GaveUp(format!(
                            "log streams of {container} keep ending before the last line read"
                        ))
                    }
                }
            }
            StreamEnd::Eof => {
                // The node ends a follow when the container has exited and its log is
                // read to the end; a clean end while the container still runs is a
                // proxy's or load balancer's cut. The watch may report the exit a moment
                // after the log ends, so wait for it (bounded) before judging.
                let finished = finished_at_open
                    || tokio::time::timeout(
                        Duration::from_secs(1),
                        wait_for(&mut rx, |s| finished_or_gone(s, &container)),
                    )
                    .await
                    .is_ok();
                // Once something on the way has cut a stream, a clean end could be one
                // more cut: it is trusted only from a stream opened after the container
                // finished that brought nothing new (one more request, paid only on
                // connections that have already shown they cut).
                let trusted = finished && (!interrupted || (finished_at_open && accepted == 0));
                if !trusted {
                    interrupted = true;
                    backoff.reset();
                    continue;
                }
                match partial {
                    None => return End::Complete,
                    // Bytes after the cursor without a newline: the log's unterminated
                    // last line, or a stream cut mid-line. A short `tailLines=1` read
                    // (another request shape, which a cut at the same offset cannot fake)
                    // decides.
                    Some(p) if is_last_line(&kube, &ns, &pod, &container, &p).await => {
                        let (ts, text) = split_line(&p);
                        if dedup.accept(ts) {
                            if let Err(e) =
                                sink.emit(&container, vec![text.to_string()], dedup.cursor())
                            {
                                record_hook_error(&sink, e);
                                return End::HookFailed;
                            }
                        }
                        return End::Complete;
                    }
                    Some(_) => {
                        interrupted = true;
                        match backoff.next_delay() {
                            Some(d) => tokio::time::sleep(d).await,
                            None => {
                                return End::GaveUp(format!(
                                    "log streams of {container} keep ending in the middle of a line"
                                ))
                            }
                        }
                    }
                }
            }
            StreamEnd::Broken(why) => {
                interrupted = true;
                tracing::debug!(
                    container,
                    why,
                    "log stream interrupted; resuming from cursor"
                );
                if rx.borrow().gone {
                    return End::PodGone;
                }
                // A stream that brought new lines before it broke is resumed at once; only
                // streams that keep failing without progress back off (and give up).
                if accepted > 0 {
                    backoff.reset();
                    continue;
                }
                match backoff.next_delay() {
                    Some(d) => tokio::time::sleep(d).await,
                    None => {
                        return End::GaveUp(format!(
                            "log stream of {container} kept failing: {why}"
                        ))
                    }
                }
            }
            StreamEnd::Stalled => {
                interrupted = true;
                tracing::debug!(container, "log stream stalled; resuming from cursor");
                if rx.borrow().gone {
                    return End::PodGone;
                }
            }
        }
    }
}

/// Whether `container` has finished, or its pod is gone (no more lines will come).
fn finished_or_gone(s: &PodState, container: &str) -> bool {
    s.gone
        || s.pod
            .as_deref()
            .is_some_and(|p| conditions::is_finished(p, container))
}

/// Whether `partial` (a timestamped line without its newline) is the log's last line, as
/// a non-following `tailLines=1` read returns it (also without a newline).
async fn is_last_line(kube: &Kube, ns: &str, pod: &str, container: &str, partial: &str) -> bool {
    let lp = LogParams {
        container: Some(container.to_string()),
        timestamps: true,
        tail_lines: Some(1),
        ..Default::default()
    };
    kube.call(|c| {
        let lp = lp.clone();
        async move { Api::<Pod>::namespaced(c, ns).logs(pod, &lp).await }
    })
    .await
    .is_ok_and(|tail| tail == partial)
}

fn record_hook_error(sink: &Sink, e: String) {
    if let Ok(mut h) = sink.hook_error.lock() {
        h.get_or_insert(e);
    }
}

/// Read one stream to its end; returns why it ended and any trailing bytes without a
/// newline.
async fn read_stream(
    reader: impl futures::AsyncBufRead,
    container: &str,
    dedup: &mut Dedup,
    sink: &Sink,
    rx: &StateRx,
    stall: Duration,
) -> (StreamEnd, Option<String>, u64) {
    let mut reader = std::pin::pin!(reader);
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut batch: Vec<String> = Vec::new();
    let mut accepted: u64 = 0;
    let flush = |batch: &mut Vec<String>, dedup: &Dedup| -> bool {
        let lines = std::mem::take(batch);
        match sink.emit(container, lines, dedup.cursor()) {
            Ok(()) => true,
            Err(e) => {
                record_hook_error(sink, e);
                false
            }
        }
    };
    loop {
        // Lines already buffered are taken without waiting; when the next read would
        // block, the batch so far is flushed first.
        let read = match reader.as_mut().read_until(b'\n', &mut buf).now_or_never() {
            Some(r) => Some(r),
            None => {
                if !batch.is_empty() && !flush(&mut batch, dedup) {
                    return (StreamEnd::Hook, None, accepted);
                }
                let finished = finished_or_gone(&rx.borrow(), container);
                let limit = if finished { stall } else { stall * 10 };
                tokio::time::timeout(limit, reader.as_mut().read_until(b'\n', &mut buf))
                    .await
                    .ok()
            }
        };
        let end = match read {
            None => Some(StreamEnd::Stalled),
            Some(Ok(0)) => Some(StreamEnd::Eof),
            Some(Ok(_)) if buf.last() == Some(&b'\n') => {
                buf.pop();
                let line = String::from_utf8_lossy(&buf);
                let (ts, text) = split_line(&line);
                if dedup.accept(ts) {
                    accepted += 1;
                    batch.push(text.to_string());
                }
                buf.clear();
                if batch.len() >= BATCH && !flush(&mut batch, dedup) {
                    return (StreamEnd::Hook, None, accepted);
                }
                None
            }
            // Bytes without a newline: the stream ended right after them.
            Some(Ok(_)) => None,
            Some(Err(e)) => Some(StreamEnd::Broken(e.to_string())),
        };
        if let Some(end) = end {
            if !batch.is_empty() && !flush(&mut batch, dedup) {
                return (StreamEnd::Hook, None, accepted);
            }
            if let Ok(mut c) = sink.cursors.lock() {
                c.insert(container.to_string(), dedup.cursor().clone());
            }
            let partial = (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned());
            return (end, partial, accepted);
        }
    }
}
