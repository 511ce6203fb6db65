//! Stopping sidecars once the base container has ended, so the pod can finish.
//!
//! - `airflow-xcom-sidecar`: SIGINT to its shell, which traps it and exits 0.
//! - `istio-proxy`: `POST localhost:15020/quitquitquit` through exec, as the operator's
//!   (unused) helper does.
//! - Any other container still running is not signalled: podrun cannot know what its
//!   PID 1 does with a signal. Completion never waits for it (it is judged by the base
//!   container), and `delete_pod` / `delete_succeeded_pod` / `delete_active_pod` remove it
//!   with the pod; with `keep_pod` it is left running and reported.
//!
//! Every step is bounded and failures are warnings: they never change the outcome.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use super::conditions;
use super::connect::Kube;
use super::report::Ui;
use super::xcom::{self, SIDECAR};

/// The istio sidecar's container name.
pub const ISTIO: &str = "istio-proxy";
/// What the quit endpoint answers on success.
const ISTIO_OK: &str = "HTTP/1.1 200";

/// Stop the known sidecars of `pod` that are still running; returns the names of other
/// containers left running.
pub async fn stop(kube: &Kube, pod: &Pod, base: &str, ui: &Ui, bound: Duration) -> Vec<String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let (containers, _) = conditions::container_names(pod);
    let mut others = Vec::new();
    for c in containers.iter().filter(|c| c.as_str() != base) {
        if !conditions::is_running(pod, c) {
            continue;
        }
        let cmd = match c.as_str() {
            SIDECAR => xcom::stop_command(),
            ISTIO => vec![
                "/bin/sh".into(),
                "-c".into(),
                "curl -fsI -X POST http://localhost:15020/quitquitquit".into(),
            ],
            _ => {
                others.push(c.clone());
                continue;
            }
        };
        match tokio::time::timeout(bound, xcom::exec(kube, ns, name, c, cmd)).await {
            Ok(Ok(out)) => {
                let text = String::from_utf8_lossy(&out.stdout);
                if c == ISTIO && !text.contains(ISTIO_OK) {
                    ui.message(&format!(
                        "warning: Error while deleting istio-proxy sidecar: {}",
                        text.trim()
                    ));
                }
            }
            Ok(Err(e)) => ui.message(&format!("warning: cannot stop sidecar {c}: {e}")),
            Err(_) => ui.message(&format!(
                "warning: stopping sidecar {c} did not finish within {}s",
                bound.as_secs()
            )),
        }
    }
    others
}
