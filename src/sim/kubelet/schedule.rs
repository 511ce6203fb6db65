//! The default scheduler's decision for the one node, with its exact words.
//!
//! Filters run in the scheduler's plugin order and stop at the first that fails
//! (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit), so the
//! `FailedScheduling` message names the same reason a real one-node cluster would:
//! `0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.
//! preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.`

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint, Toleration,
};

use super::config::Node;
use super::quantity::{self, Milli};

/// Why the pod cannot be placed: the `PodScheduled=False` reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    /// Condition reason: `Unschedulable` or `SchedulingGated`.
    pub reason: &'static str,
    /// Condition and event message.
    pub message: String,
}

/// Whether this scheduler is responsible for `pod` (default scheduler, not yet bound).
pub fn is_ours_to_schedule(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else { return false };
    spec.node_name.as_deref().unwrap_or("").is_empty()
        && spec
            .scheduler_name
            .as_deref()
            .is_none_or(|s| s == "default-scheduler")
        && pod.metadata.deletion_timestamp.is_none()
}

/// What the pods already bound to the node use.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    /// Number of non-terminal pods on the node.
    pub pods: u32,
    /// Sum of their effective requests.
    pub requests: BTreeMap<String, Milli>,
}

impl Usage {
    /// Usage of these pods.
    #[cfg(test)]
    pub fn of<'a>(pods: impl Iterator<Item = &'a Pod>) -> Self {
        let mut u = Usage::default();
        for p in pods {
            u.add(&pod_requests(
                p.spec.as_ref().unwrap_or(&PodSpec::default()),
            ));
        }
        u
    }

    /// Adds one pod's requests.
    pub fn add(&mut self, requests: &BTreeMap<String, Milli>) {
        self.pods += 1;
        merge_add(&mut self.requests, requests.clone());
    }

    /// Removes one pod's requests.
    pub fn remove(&mut self, requests: &BTreeMap<String, Milli>) {
        self.pods = self.pods.saturating_sub(1);
        for (k, v) in requests {
            let e = self.requests.entry(k.clone()).or_default();
            *e = Milli(e.0 - v.0);
        }
    }
}

/// Decides whether `pod` fits on `node`, given what the pods bound there use.
pub fn schedule(pod: &Pod, node: &Node, used: &Usage) -> Result<(), Unschedulable> {
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    if spec
        .scheduling_gates
        .as_ref()
        .is_some_and(|g| !g.is_empty())
    {
        return Err(Unschedulable {
            reason: "SchedulingGated",
            message: "Scheduling is blocked due to non-empty scheduling gates".into(),
        });
    }
    // PreFilter (VolumeBinding): the sim serves no PersistentVolumeClaims.
    for v in spec.volumes.iter().flatten() {
        if let Some(pvc) = &v.persistent_volume_claim {
            return Err(unschedulable(
                None,
                &format!("persistentvolumeclaim \"{}\" not found", pvc.claim_name),
                false,
            ));
        }
    }
    if let Some(taint) = untolerated_taint(&node.taints, spec.tolerations.as_deref()) {
        let value = taint.value.as_deref().unwrap_or("");
        return Err(unschedulable(
            Some(vec![format!(
                "node(s) had untolerated taint {{{}: {value}}}",
                taint.key
            )]),
            "",
            false,
        ));
    }
    if !matches_node_selector(spec, &node.labels, &node.name) {
        return Err(unschedulable(
            Some(vec![
                "node(s) didn't match Pod's node affinity/selector".into()
            ]),
            "",
            false,
        ));
    }
    let (reasons, helpful) = insufficient(spec, node, used);
    if !reasons.is_empty() {
        return Err(unschedulable(Some(reasons), "", helpful));
    }
    Ok(())
}

/// Formats the scheduler's `FitError` for one node.
fn unschedulable(
    filter: Option<Vec<String>>,
    prefilter: &str,
    preemption_helps: bool,
) -> Unschedulable {
    let mut message = String::from("0/1 nodes are available:");
    match filter {
        Some(mut reasons) => {
            let mut counted: Vec<String> = reasons.drain(..).map(|r| format!("1 {r}")).collect();
            counted.sort();
            message.push_str(&format!(" {}.", counted.join(", ")));
        }
        None => message.push_str(&format!(" {prefilter}.")),
    }
    let post = if preemption_helps {
        "1 No preemption victims found for incoming pod"
    } else {
        "1 Preemption is not helpful for scheduling"
    };
    message.push_str(&format!(" preemption: 0/1 nodes are available: {post}."));
    Unschedulable {
        reason: "Unschedulable",
        message,
    }
}

/// The first NoSchedule/NoExecute taint no toleration covers.
fn untolerated_taint<'t>(
    taints: &'t [Taint],
    tolerations: Option<&[Toleration]>,
) -> Option<&'t Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| {
            !tolerations
                .unwrap_or(&[])
                .iter()
                .any(|tol| tolerates(tol, t))
        })
}

/// `Toleration.ToleratesTaint` from k8s.io/api/core/v1.
fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect = tol.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// nodeSelector AND required node affinity.
fn matches_node_selector(
    spec: &PodSpec,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    if let Some(sel) = &spec.node_selector {
        if !sel.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, node_name)),
    }
}

/// One nodeSelectorTerm: all expressions and fields must match; an empty term matches nothing.
fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(node_name);
            requirement_matches(r, value)
        })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => match (
            value.and_then(number),
            values.first().and_then(|s| number(s)),
        ) {
            (Some(v), Some(x)) => v > x,
            _ => false,
        },
        "Lt" => match (
            value.and_then(number),
            values.first().and_then(|s| number(s)),
        ) {
            (Some(v), Some(x)) => v < x,
            _ => false,
        },
        _ => false,
    }
}

/// The pod's effective requests: max(sum of app containers and sidecars, each init
/// container with the sidecars started before it), plus overhead.
pub fn pod_requests(spec: &PodSpec) -> BTreeMap<String, Milli> {
    let mut total: BTreeMap<String, Milli> = BTreeMap::new();
    for c in &spec.containers {
        merge_add(&mut total, container_requests(c));
    }
    let mut sidecars: BTreeMap<String, Milli> = BTreeMap::new();
    let mut init_peak: BTreeMap<String, Milli> = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        if c.restart_policy.as_deref() == Some("Always") {
            merge_add(&mut sidecars, container_requests(c));
        } else {
            let mut here = sidecars.clone();
            merge_add(&mut here, container_requests(c));
            merge_max(&mut init_peak, here);
        }
    }
    merge_add(&mut total, sidecars);
    merge_max(&mut total, init_peak);
    if let Some(overhead) = &spec.overhead {
        let o = overhead
            .iter()
            .filter_map(|(k, q)| quantity::parse(&q.0).ok().map(|m| (k.clone(), m)))
            .collect();
        merge_add(&mut total, o);
    }
    total
}

fn merge_add(into: &mut BTreeMap<String, Milli>, from: BTreeMap<String, Milli>) {
    for (k, v) in from {
        let e = into.entry(k).or_default();
        *e = *e + v;
    }
}

fn merge_max(into: &mut BTreeMap<String, Milli>, from: BTreeMap<String, Milli>) {
    for (k, v) in from {
        let e = into.entry(k).or_default();
        *e = (*e).max(v);
    }
}

/// A container's requests, taking limits as requests where requests are unset (the API
/// server's defaulting).
pub fn container_requests(c: &Container) -> BTreeMap<String, Milli> {
    let mut out = BTreeMap::new();
    let Some(res) = &c.resources else { return out };
    for (k, q) in res.limits.iter().flatten() {
        if let Ok(m) = quantity::parse(&q.0) {
            out.insert(k.clone(), m);
        }
    }
    for (k, q) in res.requests.iter().flatten() {
        if let Ok(m) = quantity::parse(&q.0) {
            out.insert(k.clone(), m);
        }
    }
    out
}

/// NodeResourcesFit: which resources are short, and whether evicting other pods could help.
fn insufficient(spec: &PodSpec, node: &Node, usage: &Usage) -> (Vec<String>, bool) {
    let (used, count) = (&usage.requests, usage.pods);
    let mut reasons = Vec::new();
    let mut helpful = true;
    if count + 1 > node.max_pods {
        reasons.push("Too many pods".to_string());
    }
    let want = pod_requests(spec);
    let order = ["cpu", "memory", "ephemeral-storage"];
    let mut names: Vec<&String> = want.keys().collect();
    names.sort_by_key(|k| {
        (
            order.iter().position(|o| o == k).unwrap_or(order.len()),
            (*k).clone(),
        )
    });
    for name in names {
        let req = want[name];
        if req.0 <= 0 {
            continue;
        }
        let alloc = node.allocatable.get(name).copied().unwrap_or_default();
        let in_use = used.get(name).copied().unwrap_or_default();
        if req.0 > alloc.0 - in_use.0 {
            reasons.push(format!("Insufficient {name}"));
            if req.0 > alloc.0 {
                helpful = false;
            }
        }
    }
    (reasons, helpful)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::kubelet::config::Config;

    fn pod(yaml: &str) -> Pod {
        serde_yaml_ng::from_str(yaml).expect("test pod parses")
    }

    fn node() -> Node {
        let cfg = Config {
            cpu: "2".into(),
            memory: "4Gi".into(),
            ..Config::default()
        };
        Node::from_config(&cfg).expect("valid config")
    }

    #[test]
    fn node_selector_mismatch_has_the_scheduler_message() {
        let p =
            pod("spec: {nodeSelector: {disktype: ssd}, containers: [{name: c, image: busybox}]}");
        let err = schedule(&p, &node(), &Usage::default()).expect_err("unschedulable");
        assert_eq!(err.reason, "Unschedulable");
        assert_eq!(
            err.message,
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        let ok = pod(
            "spec: {nodeSelector: {kubernetes.io/os: linux}, containers: [{name: c, image: b}]}",
        );
        assert_eq!(schedule(&ok, &node(), &Usage::default()), Ok(()));
    }

    #[test]
    fn huge_requests_are_insufficient() {
        let p = pod(
            "spec: {containers: [{name: c, image: b, resources: {requests: {cpu: '64', memory: 1Ti}}}]}",
        );
        let err = schedule(&p, &node(), &Usage::default()).expect_err("unschedulable");
        assert_eq!(
            err.message,
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn requests_used_by_bound_pods_count() {
        let big =
            pod("spec: {containers: [{name: c, image: b, resources: {requests: {cpu: 1500m}}}]}");
        let p = pod("spec: {containers: [{name: c, image: b, resources: {limits: {cpu: '1'}}}]}");
        let err = schedule(&p, &node(), &Usage::of([&big].into_iter())).expect_err("unschedulable");
        assert_eq!(
            err.message,
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn affinity_taints_and_gates() {
        let aff = pod("spec:
  containers: [{name: c, image: b}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: zone, operator: In, values: [a]}]
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [podrun-sim]}]");
        assert_eq!(schedule(&aff, &node(), &Usage::default()), Ok(()));
        let mut tainted = node();
        tainted.taints.push(Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        });
        let p = pod("spec: {containers: [{name: c, image: b}]}");
        let err = schedule(&p, &tainted, &Usage::default()).expect_err("tainted");
        assert!(err.message.starts_with(
            "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}."
        ));
        let tol = pod(
            "spec: {containers: [{name: c, image: b}], tolerations: [{key: dedicated, operator: Exists}]}",
        );
        assert_eq!(schedule(&tol, &tainted, &Usage::default()), Ok(()));
        let gated = pod("spec: {containers: [{name: c, image: b}], schedulingGates: [{name: x}]}");
        assert_eq!(
            schedule(&gated, &node(), &Usage::default()).map_err(|e| e.reason),
            Err("SchedulingGated")
        );
    }
}
