//! The end of every run that got a pod: mark it checked and delete it per
//! `on_finish_action`, deciding on a fresh read of the pod.
//!
//! The operator decides with the snapshot it took before the failure (a Pending pod after
//! a start timeout is then left running, #49466/#59083). podrun reads the pod again when
//! the action depends on its state (`delete_succeeded_pod`, `delete_active_pod`);
//! `delete_pod` and `keep_pod` do not depend on it. The `already_checked` label is set
//! as the operator sets it, except on a pod being deleted anyway.

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;

use super::connect::{self, Kube};
use super::create_pod::{delete, mark_checked};
use super::identity;
use super::params::{OnFinishAction, Params};
use super::report::Ui;
use super::Result;

/// What cleanup did to the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Deleted.
    Deleted,
    /// Kept (and marked checked when the rule says so).
    Kept,
    /// It was already gone.
    Gone,
}

impl Done {
    /// The report's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Deleted => "deleted",
            Done::Kept => "kept",
            Done::Gone => "gone",
        }
    }
}

/// Clean up pod `ns/name`; `last` is the newest state the watch delivered.
pub async fn cleanup(
    kube: &Kube,
    ns: &str,
    name: &str,
    last: Option<&Pod>,
    params: &Params,
    ui: &Ui,
) -> Result<Done> {
    let action = params.on_finish_action;
    let fresh = match action {
        OnFinishAction::DeletePod | OnFinishAction::KeepPod => None,
        OnFinishAction::DeleteSucceededPod | OnFinishAction::DeleteActivePod => {
            match kube
                .call(|c| async move { Api::<Pod>::namespaced(c, ns).get(name).await })
                .await
            {
                Ok(p) => Some(p),
                Err(e) if connect::is_not_found(&e) => return Ok(Done::Gone),
                Err(source) => {
                    return Err(super::Error::ReadPod {
                        name: name.into(),
                        source,
                    })
                }
            }
        }
    };
    let Some(pod) = fresh.as_ref().or(last) else {
        return Ok(Done::Gone);
    };
    let deleting = identity::should_delete(action, pod, &params.base_container);
    if identity::should_mark_checked(action, pod, deleting) {
        match mark_checked(kube, ns, name).await {
            Ok(_) => {}
            Err(super::Error::PatchPod { source, .. }) if connect::is_not_found(&source) => {
                return Ok(Done::Gone)
            }
            Err(e) => ui.message(&format!("warning: {e}")),
        }
    }
    if deleting {
        delete(kube, ns, name, None).await?;
        Ok(Done::Deleted)
    } else {
        ui.message(&format!("Skipping deleting pod: {name}"));
        Ok(Done::Kept)
    }
}
