//! Waiting for the pod to start: the schedule timeout, then the startup timeout, and the
//! early-failure conditions, applied to each state the pod watch delivers (no polling).
//!
//! Like the operator, a pod counts as started once it leaves Pending (straight to
//! Succeeded or Failed included), and the startup clock starts when it is first seen
//! scheduled. Unlike it, fatal waiting reasons, failed init containers, phase Unknown and
//! Unschedulable end the wait at once.

use std::time::Duration;

use tokio::time::Instant;

use super::conditions;
use super::outcome::Problem;
use super::params::Params;
use super::report::Ui;
use super::watch::StateRx;

/// Why the pod did not start.
#[derive(Debug, Clone, PartialEq)]
pub enum NotStarted {
    /// The pod will not start (early failure or timeout): a task failure.
    Problem(Problem),
    /// The watch gave up: an infrastructure failure.
    Watch(String),
}

/// The operator's schedule-timeout message.
pub fn schedule_timeout_message(secs: u64) -> String {
    format!(
        "Pod took too long to be scheduled on the cluster, giving up. More than {secs}s. Check the pod events in kubernetes."
    )
}

/// The operator's startup-timeout message.
pub fn startup_timeout_message(secs: u64) -> String {
    format!("Pod took too long to start. More than {secs}s. Check the pod events in kubernetes.")
}

/// Wait until the pod has started, failed early, or timed out.
pub async fn await_start(rx: &mut StateRx, params: &Params, ui: &Ui) -> Result<(), NotStarted> {
    let schedule = params.schedule_timeout();
    let startup = params.startup_timeout;
    let sched_deadline = Instant::now() + schedule;
    let mut start_deadline: Option<Instant> = None;
    let mut ended = false;
    loop {
        let state = rx.borrow_and_update().clone();
        if state.gone {
            return Err(NotStarted::Problem(Problem::new(
                "Deleted",
                "Pod was deleted before it started",
            )));
        }
        if let Some(msg) = state.failed {
            return Err(NotStarted::Watch(msg));
        }
        if let Some(pod) = state.pod.as_deref() {
            if conditions::phase(pod) == "Unknown" || !conditions::is_started(pod) {
                if let Some(f) = conditions::early_failure(pod) {
                    return Err(NotStarted::Problem(Problem::new(f.reason, f.message)));
                }
            }
            if conditions::is_started(pod) {
                return Ok(());
            }
            if start_deadline.is_none() && conditions::is_scheduled(pod) {
                start_deadline = Some(Instant::now() + startup);
                ui.message(&format!(
                    "Waiting {}s to get the POD running...",
                    startup.as_secs()
                ));
            }
            ui.status(&conditions::summary(pod, &params.base_container));
        }
        if ended {
            return Err(NotStarted::Watch("pod watch ended".into()));
        }
        let (deadline, message) = match start_deadline {
            Some(d) => (d, startup_timeout_message(startup.as_secs())),
            None => (sched_deadline, schedule_timeout_message(schedule.as_secs())),
        };
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    ended = true;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let reason = if start_deadline.is_some() { "StartupTimeout" } else { "ScheduleTimeout" };
                return Err(NotStarted::Problem(Problem::new(reason, message)));
            }
            // Redraw the elapsed time on the status line.
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Pod;
    use tokio::sync::watch;

    use super::super::watch::PodState;
    use super::*;

    fn pod(status: &str) -> Arc<Pod> {
        Arc::new(
            serde_yaml_ng::from_str(&format!(
                "metadata: {{name: p}}\nspec: {{containers: [{{name: base}}]}}\nstatus:\n{status}"
            ))
            .expect("test pod"),
        )
    }

    fn state(status: &str) -> PodState {
        PodState {
            pod: Some(pod(status)),
            ..Default::default()
        }
    }

    fn params(startup: u64, schedule: Option<u64>) -> Params {
        let mut p = Params::new("t");
        p.startup_timeout = Duration::from_secs(startup);
        p.schedule_timeout = schedule.map(Duration::from_secs);
        p
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_timeout_fires_with_the_operators_message() {
        let (_tx, mut rx) = watch::channel(state("  phase: Pending\n"));
        let ui = Ui::new(false).quiet();
        let start = Instant::now();
        let err = await_start(&mut rx, &params(120, Some(5)), &ui)
            .await
            .expect_err("times out");
        assert_eq!(start.elapsed().as_secs(), 5);
        assert_eq!(
            err,
            NotStarted::Problem(Problem::new("ScheduleTimeout", schedule_timeout_message(5)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn startup_clock_starts_when_scheduled() {
        let (tx, mut rx) = watch::channel(state("  phase: Pending\n"));
        let ui = Ui::new(false).quiet();
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            tx.send_replace(state(
                "  phase: Pending\n  conditions: [{type: PodScheduled, status: 'True'}]\n",
            ));
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(tx);
        });
        let err = await_start(&mut rx, &params(10, Some(5)), &ui)
            .await
            .expect_err("times out");
        assert_eq!(start.elapsed().as_secs(), 13);
        assert_eq!(
            err,
            NotStarted::Problem(Problem::new("StartupTimeout", startup_timeout_message(10)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn early_failure_and_start_end_the_wait_at_once() {
        let ui = Ui::new(false).quiet();
        let (_tx, mut rx) = watch::channel(state(
            "  phase: Pending\n  containerStatuses:\n  - {name: base, image: x, imageID: '', ready: false, restartCount: 0, state: {waiting: {reason: CreateContainerConfigError, message: secret missing}}}\n",
        ));
        match await_start(&mut rx, &params(120, None), &ui).await {
            Err(NotStarted::Problem(p)) => assert_eq!(p.reason, "CreateContainerConfigError"),
            other => panic!("unexpected {other:?}"),
        }
        let (_tx, mut rx) = watch::channel(state("  phase: Succeeded\n"));
        assert_eq!(await_start(&mut rx, &params(120, None), &ui).await, Ok(()));
        let (_tx, mut rx) = watch::channel(PodState {
            gone: true,
            ..state("  phase: Pending\n")
        });
        assert!(matches!(
            await_start(&mut rx, &params(120, None), &ui).await,
            Err(NotStarted::Problem(p)) if p.reason == "Deleted"
        ));
    }
}
