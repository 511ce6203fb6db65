//! Getting the run's pod onto the cluster: adopt a live pod of the same run
//! (`reattach_on_restart`), re-evaluate a finished one that was kept, or create it.
//!
//! A create whose response was lost is retried by the retry layer and answered 409
//! AlreadyExists; the existing pod is adopted when it carries this run's identity labels
//! (the operator fails here instead).

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use super::connect::{self, Kube};
use super::identity::{self, Found};
use super::params::{OnFinishAction, Params};
use super::report::Ui;
use super::{Error, Result};

/// How the run came by its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// podrun created it.
    Created,
    /// A live pod of the same run was adopted.
    Adopted,
    /// A finished, kept, unchecked pod of the same run is evaluated again.
    Reevaluate,
}

/// Label a pod `already_checked=True`.
pub async fn mark_checked(kube: &Kube, ns: &str, name: &str) -> Result<Pod> {
    let patch = serde_json::json!({"metadata": {"labels": {identity::CHECKED: "True"}}});
    kube.call(|c| {
        let patch = patch.clone();
        async move {
            Api::<Pod>::namespaced(c, ns)
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
    })
    .await
    .map_err(|source| Error::PatchPod {
        name: name.into(),
        source,
    })
}

/// Delete a pod with an optional grace period; a pod already gone is fine.
pub async fn delete(kube: &Kube, ns: &str, name: &str, grace: Option<i64>) -> Result<()> {
    let mut dp = DeleteParams::default();
    if let Some(g) = grace {
        dp = dp.grace_period(u32::try_from(g.max(0)).unwrap_or(u32::MAX));
    }
    match kube
        .call(|c| {
            let dp = dp.clone();
            async move { Api::<Pod>::namespaced(c, ns).delete(name, &dp).await }
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if connect::is_not_found(&e) => Ok(()),
        Err(source) => Err(Error::DeletePod {
            name: name.into(),
            source,
        }),
    }
}

fn ns_name(pod: &Pod) -> Result<(String, String)> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .ok_or(Error::PodIncomplete("namespace"))?;
    let name = pod
        .metadata
        .name
        .clone()
        .ok_or(Error::PodIncomplete("name"))?;
    Ok((ns, name))
}

/// Find this run's pod or create `pod`. Returns the server's copy.
pub async fn create_or_adopt(
    kube: &Kube,
    pod: &Pod,
    params: &Params,
    ui: &Ui,
) -> Result<(Pod, Origin)> {
    let (ns, name) = ns_name(pod)?;
    if params.reattach_on_restart {
        if let Some(selector) = identity::find_selector(pod, true) {
            let lp = ListParams::default().labels(&selector);
            let found = kube
                .call(|c| {
                    let lp = lp.clone();
                    let ns = ns.clone();
                    async move { Api::<Pod>::namespaced(c, &ns).list(&lp).await }
                })
                .await
                .map_err(Error::FindPod)?;
            match identity::choose(found.items) {
                Found::None => {}
                Found::Adopt { pod: live, extra } => {
                    retire(kube, &ns, extra, params, ui).await;
                    ui.message(&format!(
                        "Reusing existing pod {} (reattach_on_restart)",
                        live.metadata.name.as_deref().unwrap_or("")
                    ));
                    return Ok((*live, Origin::Adopted));
                }
                Found::Finished { pod: done, extra } => {
                    retire(kube, &ns, extra, params, ui).await;
                    let done_name = done.metadata.name.clone().unwrap_or_default();
                    if identity::should_delete(
                        params.on_finish_action,
                        &done,
                        &params.base_container,
                    ) {
                        ui.message(&format!(
                            "Deleting finished pod {done_name} of an earlier attempt"
                        ));
                        delete(kube, &ns, &done_name, None).await?;
                    } else {
                        ui.message(&format!(
                            "Found finished pod {done_name} of this run that was never checked; evaluating it"
                        ));
                        return Ok((*done, Origin::Reevaluate));
                    }
                }
            }
        }
    }
    let created = kube
        .call(|c| {
            let ns = ns.clone();
            async move {
                Api::<Pod>::namespaced(c, &ns)
                    .create(&PostParams::default(), pod)
                    .await
            }
        })
        .await;
    match created {
        Ok(p) => Ok((p, Origin::Created)),
        Err(e) if connect::api_code(&e) == Some(409) => {
            let existing = kube
                .call(|c| {
                    let ns = ns.clone();
                    let name = name.clone();
                    async move { Api::<Pod>::namespaced(c, &ns).get(&name).await }
                })
                .await
                .map_err(|source| Error::ReadPod {
                    name: name.clone(),
                    source,
                })?;
            if identity::same_identity(pod, &existing) {
                ui.message(&format!(
                    "Pod {name} already exists with this run's identity (an earlier create's answer was lost); adopting it"
                ));
                Ok((existing, Origin::Adopted))
            } else {
                Err(Error::NameTaken { name })
            }
        }
        Err(source) => Err(Error::CreatePod {
            name,
            namespace: ns,
            source,
        }),
    }
}

/// Retire duplicate pods of the run: mark them checked, and delete the live ones unless
/// pods are kept. Best effort: a failure is reported, not fatal.
async fn retire(kube: &Kube, ns: &str, extra: Vec<Pod>, params: &Params, ui: &Ui) {
    for p in extra {
        let Some(name) = p.metadata.name.clone() else {
            continue;
        };
        ui.message(&format!("Retiring duplicate pod {name} of this run"));
        if let Err(e) = mark_checked(kube, ns, &name).await {
            ui.message(&format!("warning: {e}"));
        }
        if identity::is_live(&p) && params.on_finish_action != OnFinishAction::KeepPod {
            if let Err(e) = delete(kube, ns, &name, params.termination_grace_period).await {
                ui.message(&format!("warning: {e}"));
            }
        }
    }
}
