//! One run from pod to report: create or adopt, start, logs, completion, XCom, outcome,
//! cleanup; and the interruptions around it (signals, `execution_timeout`).
//!
//! Order, and why:
//! 1. create or adopt (`create_pod.rs`); the pod watch starts from the create response's
//!    resourceVersion, the events watch beside it;
//! 2. init-container logs are followed during the start wait, but the wait's timeouts
//!    bound them (the operator waited on init logs first, with no timeout: #68445);
//! 3. the start wait (`await_start.rs`), then the selected containers' logs, all at once;
//! 4. completion is the base container's terminated state (or a terminal or vanished pod);
//! 5. XCom is read before the sidecar is stopped, and a failed stop never loses it;
//! 6. other sidecars are stopped, remaining followers drained within a bound;
//! 7. the outcome is decided, the `decide` hook may override it, then cleanup.
//!
//! A signal or the execution timeout abandons the lifecycle wherever it is, deletes the
//! pod (whatever `on_finish_action` says, as the operator's `on_kill`) with the
//! termination grace period, and ends as failed. That is never reported as success.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;

use super::await_start::{await_start, NotStarted};
use super::cleanup::cleanup;
use super::conditions;
use super::connect::Kube;
use super::create_pod::{create_or_adopt, delete, Origin};
use super::events;
use super::hooks::Hooks;
use super::identity;
use super::log_cursor::Cursor;
use super::outcome::{self, Outcome, Problem, Status};
use super::params::{ContainerSelection, Params};
use super::report::{Report, Timestamps, Ui};
use super::sidecars;
use super::stream_logs::{self, End, Sink};
use super::watch::{self, Owned, PodState};
use super::xcom;
use super::Result;

/// What the run does with its pod.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Create (or adopt) and follow it to the end.
    Run,
    /// Create (or adopt), wait until it started, store the parameters on the pod and
    /// return its handle.
    Detach,
    /// Resume a detached run on this existing pod, logs from these cursors.
    Attach(BTreeMap<String, Cursor>),
}

/// Why the lifecycle was abandoned from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT or SIGTERM (the name).
    Signal(String),
}

/// Run `pod` to its report. `interrupt` resolves when the run must stop (a signal).
///
/// Errors are returned only when no pod came to exist (connection, creation); after that
/// every failure is in the report, with its exit code, and the pod is cleaned up.
pub async fn execute(
    kube: &Kube,
    pod: Pod,
    params: &Params,
    hooks: Arc<dyn Hooks>,
    ui: Arc<Ui>,
    mode: Mode,
    interrupt: impl Future<Output = Interrupt>,
) -> Result<Report> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .ok_or(super::Error::PodIncomplete("namespace"))?;
    let name = pod
        .metadata
        .name
        .clone()
        .ok_or(super::Error::PodIncomplete("name"))?;
    // The pod to delete when interrupted: the requested name until another is adopted.
    let target = Arc::new(Mutex::new(name.clone()));
    let report = Arc::new(Mutex::new(Report {
        pod_name: name.clone(),
        namespace: ns.clone(),
        ..Default::default()
    }));
    let deadline = async {
        match params.execution_timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let life = lifecycle(
        kube,
        pod,
        params,
        hooks,
        ui.clone(),
        mode,
        target.clone(),
        report.clone(),
    );
    let stopped: Option<(Problem, u8)> = tokio::select! {
        r = life => { r?; None }
        i = interrupt => {
            let Interrupt::Signal(sig) = i;
            Some((Problem::new("Interrupted", format!("podrun received {sig}; the pod was deleted")), crate::exit::INTERRUPTED))
        }
        _ = deadline => {
            let secs = params.execution_timeout.map(|d| d.as_secs()).unwrap_or_default();
            Some((Problem::new("ExecutionTimeout", format!("Task exceeded its execution_timeout of {secs}s; the pod was deleted")), crate::exit::TASK_FAILED))
        }
    };
    let mut report = report.lock().map(|r| r.clone()).unwrap_or_default();
    if let Some((problem, code)) = stopped {
        ui.end_status();
        let victim = target.lock().map(|t| t.clone()).unwrap_or(name);
        ui.message(&format!("{}; deleting pod {victim}", problem.message));
        report.cleanup = Some(
            match delete(kube, &ns, &victim, params.termination_grace_period).await {
                Ok(()) => "deleted".into(),
                Err(e) => {
                    ui.message(&format!("warning: {e}"));
                    "failed".into()
                }
            },
        );
        report.pod_name = victim.clone();
        report.outcome = Some(Outcome {
            status: Status::Failed,
            exit_code: None,
            reason: Some(problem.reason.clone()),
            message: format!("Pod {victim} returned a failure.\n{}", problem.message),
        });
        report.timestamps.cleaned = Some(jiff::Timestamp::now().to_string());
        report.exit_code_podrun = code;
    }
    Ok(report)
}

fn set(report: &Mutex<Report>, f: impl FnOnce(&mut Report)) {
    if let Ok(mut r) = report.lock() {
        f(&mut r);
    }
}

fn timestamps(pod: &Pod, base: &str, t: &mut Timestamps) {
    if let Some(c) = &pod.metadata.creation_timestamp {
        t.created = Some(c.0.to_string());
    }
    if let Some(c) = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "True")
        })
        .and_then(|c| c.last_transition_time.as_ref())
    {
        t.scheduled = Some(c.0.to_string());
    }
    if let Some(st) = conditions::container_status(pod, base).and_then(|s| s.state.as_ref()) {
        if let Some(at) = st.running.as_ref().and_then(|r| r.started_at.as_ref()) {
            t.started = Some(at.0.to_string());
        }
        if let Some(term) = &st.terminated {
            if let Some(at) = &term.started_at {
                t.started = Some(at.0.to_string());
            }
            if let Some(at) = &term.finished_at {
                t.finished = Some(at.0.to_string());
            }
        }
    }
}

/// The containers to follow, from the pod's spec and the selection, XCom sidecar excluded.
fn select(names: &[String], sel: &ContainerSelection, ui: &Ui) -> Vec<String> {
    match sel {
        ContainerSelection::None => Vec::new(),
        ContainerSelection::All => names
            .iter()
            .filter(|n| *n != xcom::SIDECAR)
            .cloned()
            .collect(),
        ContainerSelection::Names(wanted) => {
            for w in wanted {
                if !names.contains(w) {
                    ui.message(&format!(
                        "warning: container {w} is not in the pod; no logs for it"
                    ));
                }
            }
            // Spec order, whatever the order asked.
            names
                .iter()
                .filter(|n| wanted.contains(n))
                .cloned()
                .collect()
        }
    }
}

#[allow(clippy::too_many_arguments)] // internal; mirrors `execute`
async fn lifecycle(
    kube: &Kube,
    pod: Pod,
    params: &Params,
    hooks: Arc<dyn Hooks>,
    ui: Arc<Ui>,
    mode: Mode,
    target: Arc<Mutex<String>>,
    report: Arc<Mutex<Report>>,
) -> Result<()> {
    let base = params.base_container.clone();
    let detach = matches!(mode, Mode::Detach);
    let (live, origin, cursors) = match mode {
        Mode::Attach(cursors) => (pod, Origin::Adopted, cursors),
        Mode::Run | Mode::Detach => {
            let (p, o) = create_or_adopt(kube, &pod, params, &ui).await?;
            (p, o, BTreeMap::new())
        }
    };
    let ns = live.metadata.namespace.clone().unwrap_or_default();
    let name = live.metadata.name.clone().unwrap_or_default();
    if let Ok(mut t) = target.lock() {
        t.clone_from(&name);
    }
    set(&report, |r| {
        r.pod_name.clone_from(&name);
        r.uid.clone_from(&live.metadata.uid);
        r.adopted = origin != Origin::Created;
        timestamps(&live, &base, &mut r.timestamps);
    });

    if origin == Origin::Reevaluate {
        let out = outcome::decide(
            &name,
            Some(&live),
            &base,
            &params.skip_on_exit_code,
            None,
            params.log_pod_spec_on_failure,
        );
        return finish(
            kube,
            params,
            &hooks,
            &ui,
            &report,
            &ns,
            &name,
            Some(&live),
            out,
            None,
        )
        .await;
    }

    let pw = watch::spawn(kube.clone(), &live);
    let mut rx = pw.rx.clone();
    let ev = events::spawn(kube.clone(), &ns, &name, ui.clone());
    let sink = Sink::new(ui.clone(), hooks.clone(), params.log_prefix);
    let (main_names, init_names) = conditions::container_names(&live);

    // Init containers run one after another; so are their logs, in spec order.
    let init_sel = select(&init_names, &params.init_container_logs, &ui);
    let init_task = (!init_sel.is_empty() && !detach).then(|| {
        let (kube, ns, name, rx, sink, cursors, stall) = (
            kube.clone(),
            ns.clone(),
            name.clone(),
            rx.clone(),
            sink.clone(),
            cursors.clone(),
            params.log_stall_timeout,
        );
        Owned(tokio::spawn(async move {
            for c in init_sel {
                let start = cursors.get(&c).cloned().unwrap_or_default();
                let end = stream_logs::follow(
                    kube.clone(),
                    ns.clone(),
                    name.clone(),
                    c,
                    rx.clone(),
                    sink.clone(),
                    start,
                    stall,
                )
                .await;
                if matches!(end, End::PodGone | End::HookFailed) {
                    break;
                }
            }
        }))
    });

    ui.status("Pending");
    if let Err(not) = await_start(&mut rx, params, &ui).await {
        ev.seen
            .echo
            .store(false, std::sync::atomic::Ordering::Relaxed);
        drop(init_task);
        let last = rx.borrow().clone();
        let problem = match not {
            NotStarted::Problem(p) => p,
            NotStarted::Watch(msg) => {
                set(&report, |r| {
                    r.error = Some(msg.clone());
                    r.exit_code_podrun = crate::exit::INFRASTRUCTURE;
                });
                Problem::new("WatchFailed", msg)
            }
        };
        let out = outcome::decide(
            &name,
            last.pod.as_deref(),
            &base,
            &params.skip_on_exit_code,
            Some(&problem),
            params.log_pod_spec_on_failure,
        );
        set(&report, |r| r.events = ev.seen.snapshot());
        return finish(
            kube,
            params,
            &hooks,
            &ui,
            &report,
            &ns,
            &name,
            last.pod.as_deref(),
            out,
            Some(&ev.seen),
        )
        .await;
    }
    ev.seen
        .echo
        .store(false, std::sync::atomic::Ordering::Relaxed);
    if let Some(p) = rx.borrow().pod.as_deref() {
        set(&report, |r| timestamps(p, &base, &mut r.timestamps));
    }

    if detach {
        let handle = format!("{ns}/{name}");
        let params_json = serde_json::to_string(params).unwrap_or_default();
        let patch = serde_json::json!({"metadata": {"annotations": {
            identity::PARAMS_ANNOTATION: params_json,
            identity::CURSOR_ANNOTATION: "{}",
        }}});
        kube.call(|c| {
            let patch = patch.clone();
            let (ns, name) = (ns.clone(), name.clone());
            async move {
                Api::<Pod>::namespaced(c, &ns)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
            }
        })
        .await
        .map_err(|source| super::Error::PatchPod {
            name: name.clone(),
            source,
        })?;
        ui.end_status();
        ui.data(&handle);
        ui.message(&format!(
            "Pod {handle} started; detached. Resume with: podrun attach {handle}"
        ));
        set(&report, |r| {
            r.events = ev.seen.snapshot();
            r.cleanup = Some("detached".into());
        });
        return Ok(());
    }

    // Follow the selected containers, all at once.
    let main_sel = select(&main_names, &params.container_logs, &ui);
    let mut followers: Vec<(String, tokio::task::JoinHandle<End>)> = main_sel
        .into_iter()
        .map(|c| {
            let start = cursors.get(&c).cloned().unwrap_or_default();
            let h = tokio::spawn(stream_logs::follow(
                kube.clone(),
                ns.clone(),
                name.clone(),
                c.clone(),
                rx.clone(),
                sink.clone(),
                start,
                params.log_stall_timeout,
            ));
            (c, h)
        })
        .collect();
    let _abort_followers = AbortAll(followers.iter().map(|(_, h)| h.abort_handle()).collect());

    // Completion: the base container, not the pod phase.
    let done = loop {
        let s = rx.borrow_and_update().clone();
        if let Some(p) = s.pod.as_deref() {
            ui.status(&conditions::summary(p, &base));
        }
        if s.gone
            || s.failed.is_some()
            || s.pod
                .as_deref()
                .is_some_and(|p| conditions::is_complete(p, &base))
        {
            break s;
        }
        if rx.changed().await.is_err() {
            break rx.borrow().clone();
        }
    };
    set(&report, |r| {
        r.timestamps.completed = Some(jiff::Timestamp::now().to_string())
    });
    let mut problem: Option<Problem> = None;
    if let Some(msg) = &done.failed {
        set(&report, |r| {
            r.error = Some(msg.clone());
            r.exit_code_podrun = crate::exit::INFRASTRUCTURE;
        });
        problem = Some(Problem::new("WatchFailed", msg.clone()));
    } else if done.gone
        && !done
            .pod
            .as_deref()
            .is_some_and(|p| conditions::is_complete(p, &base))
    {
        problem = Some(Problem::new(
            "Deleted",
            "Pod was deleted before its base container finished",
        ));
    } else if let Some(p) = done
        .pod
        .as_deref()
        .filter(|p| conditions::is_terminal(p) && conditions::exit_code(p, &base).is_none())
    {
        // The pod ended without its base container ending (DeadlineExceeded, Evicted):
        // judged on this state, whatever the container does afterwards.
        let reason = conditions::pod_reason(p).unwrap_or("Failed").to_string();
        let msg = p
            .status
            .as_ref()
            .and_then(|s| s.message.clone())
            .unwrap_or_default();
        problem = Some(Problem::new(
            reason.clone(),
            format!("Pod {} ({reason}) {msg}", conditions::phase(p))
                .trim_end()
                .to_string(),
        ));
    } else if done.pod.as_deref().is_some_and(|p| {
        p.metadata.deletion_timestamp.is_some() && conditions::exit_code(p, &base) != Some(0)
    }) {
        // Someone else deleted (or evicted) the pod; its containers were killed.
        let why = done
            .pod
            .as_deref()
            .and_then(conditions::pod_reason)
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        problem = Some(Problem::new(
            "Deleted",
            format!("Pod was deleted while running{why}"),
        ));
    }

    // The base container's log ends with it; wait for the rest of its lines (bounded).
    if let Some(i) = followers.iter().position(|(c, _)| *c == base) {
        let (_, h) = followers.swap_remove(i);
        match tokio::time::timeout(params.completion_timeout, h).await {
            Ok(Ok(End::GaveUp(why))) => ui.message(&format!("warning: {why}")),
            Ok(_) => {}
            Err(_) => ui.message(&format!(
                "warning: logs of {base} did not end within {}s after it finished",
                params.completion_timeout.as_secs()
            )),
        }
    }

    // XCom before stopping the sidecar; a failed stop never loses the value.
    let mut xcom_value: Option<Value> = None;
    if params.do_xcom_push && !done.gone && done.failed.is_none() {
        ui.status("reading XCom result");
        match xcom::read(kube, &ns, &name, &mut rx, params.xcom_sidecar_timeout).await {
            Ok(v) => match hooks.process_xcom(v.unwrap_or(Value::Null)) {
                Ok(v) => {
                    xcom_value = Some(v.clone());
                    set(&report, |r| r.xcom = Some(v));
                }
                Err(e) => {
                    set(&report, |r| {
                        r.error = Some(format!("hook failed at process_xcom: {e}"));
                        r.exit_code_podrun = crate::exit::HOOK_FAILED;
                    });
                }
            },
            Err(e) => {
                if problem.is_none() {
                    problem = Some(Problem::new(
                        match e {
                            xcom::Error::InvalidJson(_) => "XComInvalidJson",
                            _ => "XComReadFailed",
                        },
                        e.to_string(),
                    ));
                }
            }
        }
    }
    let _ = xcom_value;

    let latest = rx.borrow().clone();
    let mut left_running: Vec<String> = Vec::new();
    if let Some(p) = latest.pod.as_deref().filter(|_| !latest.gone) {
        left_running = sidecars::stop(kube, p, &base, &ui, params.completion_timeout).await;
        if !left_running.is_empty()
            && params.on_finish_action == super::params::OnFinishAction::KeepPod
        {
            ui.message(&format!(
                "note: containers {} are still running; podrun does not signal unknown sidecars (keep_pod)",
                left_running.join(", ")
            ));
        }
    }
    // Followers of stopped containers end with them (bounded); those of containers left
    // running have printed what was written so far and get a moment to flush.
    for (c, h) in followers.iter_mut() {
        let bound = if left_running.contains(c) {
            std::time::Duration::from_secs(1)
        } else {
            params.completion_timeout
        };
        let _ = tokio::time::timeout(bound, h).await;
    }

    let last: PodState = rx.borrow().clone();
    if let Some(p) = last.pod.as_deref() {
        set(&report, |r| timestamps(p, &base, &mut r.timestamps));
    }
    set(&report, |r| {
        r.log_lines = sink.counts.lock().map(|c| c.clone()).unwrap_or_default();
        r.events = ev.seen.snapshot();
    });
    if let Some(e) = sink.hook_error.lock().ok().and_then(|h| h.clone()) {
        set(&report, |r| {
            r.error = Some(format!("hook failed at filter_log: {e}"));
            r.exit_code_podrun = crate::exit::HOOK_FAILED;
        });
    }
    let out = outcome::decide(
        &name,
        last.pod.as_deref(),
        &base,
        &params.skip_on_exit_code,
        problem.as_ref(),
        params.log_pod_spec_on_failure,
    );
    let gone = last.gone;
    drop(pw);
    if gone {
        set(&report, |r| r.cleanup = Some("gone".into()));
    }
    finish(
        kube,
        params,
        &hooks,
        &ui,
        &report,
        &ns,
        &name,
        last.pod.as_deref().filter(|_| !gone),
        out,
        Some(&ev.seen),
    )
    .await
}

/// Aborts every follower still running when the lifecycle ends.
struct AbortAll(Vec<tokio::task::AbortHandle>);

impl Drop for AbortAll {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Outcome hooks, failure logging, cleanup, and the report's final fields.
#[allow(clippy::too_many_arguments)] // internal; one call per ending
async fn finish(
    kube: &Kube,
    params: &Params,
    hooks: &Arc<dyn Hooks>,
    ui: &Ui,
    report: &Mutex<Report>,
    ns: &str,
    name: &str,
    last: Option<&Pod>,
    mut out: Outcome,
    seen: Option<&events::Seen>,
) -> Result<()> {
    let xcom = report.lock().ok().and_then(|r| r.xcom.clone());
    match hooks.decide(&out, last, xcom.as_ref()) {
        Ok(Some(d)) => {
            set(report, |r| {
                r.hooks.push(serde_json::json!({"point": "decide", "status": d.status, "message": d.message}))
            });
            out.status = d.status;
            if let Some(m) = d.message {
                out.message = m;
            }
        }
        Ok(None) => {}
        Err(e) => set(report, |r| {
            r.error = Some(format!("hook failed at decide: {e}"));
            r.exit_code_podrun = crate::exit::HOOK_FAILED;
        }),
    }
    ui.end_status();
    if out.status == Status::Failed && params.log_events_on_failure {
        if let Some(p) = last {
            ui.message(&format!("Pod {name} has phase {}", conditions::phase(p)));
            for cs in p
                .status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
            {
                let st = cs.state.as_ref();
                if let Some(t) = st.and_then(|s| s.terminated.as_ref()) {
                    ui.message(&format!(
                        "Container {}: TERMINATED reason={} exit_code={} message={}",
                        cs.name,
                        t.reason.as_deref().unwrap_or(""),
                        t.exit_code,
                        t.message.as_deref().unwrap_or("")
                    ));
                } else if let Some(w) = st.and_then(|s| s.waiting.as_ref()) {
                    ui.message(&format!(
                        "Container {}: WAITING reason={} message={}",
                        cs.name,
                        w.reason.as_deref().unwrap_or(""),
                        w.message.as_deref().unwrap_or("")
                    ));
                } else if st.and_then(|s| s.running.as_ref()).is_some() {
                    ui.message(&format!("Container {}: RUNNING", cs.name));
                }
            }
        }
        let mut evs = seen.map(|s| s.snapshot()).unwrap_or_default();
        if evs.is_empty() {
            evs = events::list(kube, ns, name).await;
        }
        for e in &evs {
            ui.message(&format!("Pod Event: {} - {}", e.reason, e.message));
        }
        set(report, |r| {
            if r.events.is_empty() {
                r.events = evs.clone();
            }
        });
    }
    let already_gone = report.lock().map(|r| r.cleanup.is_some()).unwrap_or(false);
    if !already_gone {
        match cleanup(kube, ns, name, last, params, ui).await {
            Ok(done) => set(report, |r| r.cleanup = Some(done.as_str().into())),
            Err(e) => {
                ui.message(&format!("warning: cleanup failed: {e}"));
                set(report, |r| r.cleanup = Some("failed".into()));
            }
        }
    }
    match out.status {
        Status::Success => {}
        Status::Skipped | Status::Failed => ui.message(&out.message),
    }
    set(report, |r| {
        r.timestamps.cleaned = Some(jiff::Timestamp::now().to_string());
        r.hooks.extend(hooks.records());
        if r.exit_code_podrun == 0 {
            r.exit_code_podrun = out.status.exit_code();
        }
        r.outcome = Some(out);
    });
    Ok(())
}
