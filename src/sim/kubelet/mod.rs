//! The process kubelet: the simulator's one node, its default scheduler and its kubelet.
//!
//! It watches pods through the API store exactly like any other client
//! ([`Store::watch`]), binds schedulable pods to the node ([`Store::bind_pod`]), runs
//! each bound pod in its own pod worker that starts the containers as isolated
//! processes through [`crate::sim::runtime`], and writes status and Events back through
//! the store. It never touches HTTP, and the store knows nothing of processes.
//!
//! # Usage
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use podrun::sim::{kubelet, runtime::Runtime, store::{self, Store}};
//! let store = Store::new(store::Config::default());
//! let runtime = Runtime::new(std::env::temp_dir().join("podrun-runtime"))?;
//! let kubelet = kubelet::Kubelet::start(store.clone(), runtime, kubelet::Config::default())?;
//! // Logs/exec endpoints find a pod's containers here (`containers::Lookup`):
//! let lookup: std::sync::Arc<dyn podrun::sim::containers::Lookup> = kubelet.registry();
//! let run = lookup.lookup("default", "my-pod", "base", false);
//! # Ok(()) }
//! ```
//!
//! Dropping the [`Kubelet`] stops its loop and every pod worker (their processes are
//! killed by the runtime) and removes the node's root dir if it made one.
//!
//! # Fidelity
//!
//! | Area | Like the real scheduler/kubelet | Differs |
//! |------|-------------------------------|---------|
//! | Scheduling | one node (`podrun-sim`, labels `kubernetes.io/{hostname,os,arch}`); filters in plugin order: scheduling gates (`SchedulingGated`), PVCs (prefilter), taints vs tolerations, nodeSelector + required node affinity (`In NotIn Exists DoesNotExist Gt Lt`, matchFields), requests (max of init/app, sidecars, overhead, limits as requests) vs allocatable and the pods already bound; `PodScheduled=False/Unschedulable` with the `FitError` text (`0/1 nodes are available: ... preemption: ...`) and a Warning `FailedScheduling` from `default-scheduler`; retried when a bound pod ends or goes; `Scheduled` event on bind | no preemption, priorities, topology spread or pod (anti-)affinity; pods with another `schedulerName` stay unscheduled |
//! | Images | none exist: every image is present (`Pulled "already present on machine"` for IfNotPresent/Never, `Pulling`+`Pulled "Successfully pulled ..."` for Always); names matching `Config::image_pull_failures` go `ErrImagePull` -> `ImagePullBackOff` (10s doubling to 300s) with the kubelet's events; invalid references `InvalidImageName` (`InspectFailed`); Never + failing pattern `ErrImageNeverPull` | `imageID` is a stable fake digest |
//! | Container config | envFrom then env in order, `$(VAR)` expansion (`$$` escape, unknown kept), fieldRef (name, namespace, uid, labels/annotations[...], nodeName, serviceAccountName, hostIP(s), podIP(s)), resourceFieldRef (limits default to allocatable, divisor), secretKeyRef/configMapKeyRef (optional), `CreateContainerConfigError` with `secret "x" not found` / `couldn't find key k in Secret ns/x`, retried until the object appears; workingDir; `HOSTNAME`, `PATH`; the `kubernetes` service variables when `Config::api_endpoint` is set | no image ENTRYPOINT: a container without `command` runs its `args`, and without both is `CreateContainerError` |
//! | Volumes | emptyDir (shared), secret, configMap (items, modes, optional), downwardAPI, projected (service-account token, `kube-root-ca.crt`, namespace), hostPath, subPath/subPathExpr, readOnly; a missing source gives `FailedMount` (`MountVolume.SetUp failed for volume ...`) and ContainerCreating, retried | files written directly (no `..data` symlink swap); PVCs are not served (pod stays Pending); other volume types fail to mount |
//! | Lifecycle | init containers in order, native sidecars (`restartPolicy: Always`) started in order and stopped after the app containers; `Created`/`Started` events; Terminated `Completed`/`Error`/`StartError` (128) with startedAt/finishedAt; termination message from the per-container file at `terminationMessagePath` or, with `FallbackToLogsOnError`, the last 80 lines / 2048 bytes of the log; restarts per `restartPolicy` with `restartCount`, `lastState` and `CrashLoopBackOff` (first restart at once, then 10s doubling to 300s) | probes are not run: running means ready and started; no OOMKilled |
//! | Status | phase by the kubelet's `getPhase`, conditions `PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled` with their reasons/messages and kept `lastTransitionTime`, `startTime`, `hostIP(s)`/`podIP(s)` 127.0.0.1, app statuses sorted by name, `volumeMounts`, `observedGeneration`; each change is one status write | host networking: every pod has the node's IP |
//! | Stopping | delete: `Killing "Stopping container x"`, SIGTERM, SIGKILL after the grace period, final status (waiting containers `ContainerStatusUnknown` 137), then the object is removed (DELETED); grace 0: killed at once; `activeDeadlineSeconds`: `DeadlineExceeded` (phase Failed, event); [`Kubelet::evict`]: node-pressure eviction (`Evicted`, `DisruptionTarget/TerminationByKubelet`, object kept) | no preStop hooks |
//! | Node | registers a `v1 Node` (capacity = allocatable, Ready) | no heartbeats or leases |

mod config;
mod env;
mod expand;
mod image;
mod objects;
mod quantity;
mod registry;
mod schedule;
mod status;
mod termination;
pub mod transitions;
mod volumes;
mod worker;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

pub use config::{Config, Error as ConfigError, Node};
pub use env::Objects;
pub use registry::Registry;

use crate::sim::runtime::Runtime;
use crate::sim::store::{ChangeType, EventRecord, ObjectRef, Since, Store};
use crate::sim::{ApiError, Kind};
use quantity::Milli;
use schedule::Usage;
use worker::{Input, Worker};

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The node config is invalid.
    #[error("invalid kubelet config")]
    Config(#[source] ConfigError),
    /// The node's root directory could not be created.
    #[error("creating kubelet root dir {path}")]
    RootDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Subscribing to pods failed.
    #[error("watching pods")]
    Watch(#[source] ApiError),
    /// Creating the Node object failed.
    #[error("registering the node")]
    RegisterNode(#[source] ApiError),
}

/// What the workers share (read-only after start).
pub(crate) struct Shared {
    store: Arc<Store>,
    runtime: Runtime,
    node: Node,
    config: Config,
    root: PathBuf,
    registry: Arc<Registry>,
    service_env: Vec<(String, String)>,
}

enum Command {
    Evict {
        namespace: String,
        name: String,
        message: String,
        reply: oneshot::Sender<bool>,
    },
}

/// The running kubelet (see the module docs).
pub struct Kubelet {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
    owns_root: bool,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("node", &self.shared.node.name)
            .field("root", &self.shared.root)
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// Starts the kubelet loop on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a bad node config, [`Error::RootDir`] when its directory
    /// cannot be made, [`Error::Watch`] when the store refuses the pod watch.
    pub fn start(store: Arc<Store>, runtime: Runtime, config: Config) -> Result<Kubelet, Error> {
        let node = Node::from_config(&config).map_err(Error::Config)?;
        let (root, owns_root) = match &config.root_dir {
            Some(r) => (r.clone(), false),
            None => (
                std::env::temp_dir()
                    .join(format!("podrun-kubelet-{}", uuid::Uuid::new_v4().simple())),
                true,
            ),
        };
        std::fs::create_dir_all(&root).map_err(|source| Error::RootDir {
            path: root.clone(),
            source,
        })?;
        let watch = store
            .watch(Kind::Pod, None, Since::Initial)
            .map_err(Error::Watch)?;
        // Node registration, as a kubelet does at start (kept if it already exists).
        match store.create(Kind::Node, "", node_object(&node, &config)) {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(Error::RegisterNode(e)),
        }
        let registry = config.registry.clone().unwrap_or_default();
        let shared = Arc::new(Shared {
            store,
            runtime,
            node,
            root,
            registry,
            service_env: config
                .api_endpoint
                .map(env::service_env)
                .unwrap_or_default(),
            config,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(Loop::new(shared.clone()).run(watch, rx));
        Ok(Kubelet {
            shared,
            commands: tx,
            task,
            owns_root,
        })
    }

    /// Where the logs and exec endpoints find each pod's containers.
    pub fn registry(&self) -> Arc<Registry> {
        self.shared.registry.clone()
    }

    /// The node as parsed from the config.
    pub fn node(&self) -> &Node {
        &self.shared.node
    }

    /// The node as a `v1 Node` object (for `GET /api/v1/nodes`).
    pub fn node_object(&self) -> Value {
        node_object(&self.shared.node, &self.shared.config)
    }

    /// Evicts a running pod like node-pressure eviction: event Evicted, condition
    /// DisruptionTarget, containers stopped, phase Failed with reason Evicted and
    /// `message`. The pod object stays until a client deletes it. Returns false when no
    /// such pod runs on the node.
    pub async fn evict(&self, namespace: &str, name: &str, message: &str) -> bool {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Evict {
            namespace: namespace.into(),
            name: name.into(),
            message: message.into(),
            reply,
        };
        if self.commands.send(cmd).is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        // Aborting the loop drops its JoinSet, which aborts every pod worker.
        self.task.abort();
        if self.owns_root {
            let _ = std::fs::remove_dir_all(&self.shared.root);
        }
    }
}

struct WorkerRef {
    tx: mpsc::UnboundedSender<Input>,
    /// The pod's DELETED has been seen.
    deleted: bool,
    namespace: String,
    name: String,
}

/// The kubelet loop's state: workers by pod uid, the scheduler's bookkeeping.
struct Loop {
    sh: Arc<Shared>,
    workers: HashMap<String, WorkerRef>,
    set: JoinSet<String>,
    /// Requests of the non-terminal pods bound to the node, by uid.
    bound: HashMap<String, BTreeMap<String, Milli>>,
    usage: Usage,
    /// Pods waiting for a node, with the last message reported for each.
    unschedulable: BTreeMap<String, (String, String, String)>,
    /// Pods whose worker has finished: changes still queued for them (the worker's last
    /// status writes) must not start a new worker. Cleared by the pod's DELETED.
    finished: std::collections::HashSet<String>,
}

impl Loop {
    fn new(sh: Arc<Shared>) -> Self {
        Loop {
            sh,
            workers: HashMap::new(),
            set: JoinSet::new(),
            bound: HashMap::new(),
            usage: Usage::default(),
            unschedulable: BTreeMap::new(),
            finished: std::collections::HashSet::new(),
        }
    }

    async fn run(
        mut self,
        mut watch: crate::sim::store::Watch,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        loop {
            tokio::select! {
                change = watch.next() => match change {
                    Some(c) => {
                        if c.kind == Kind::Pod {
                            self.on_change(c.change, c.pod());
                        }
                    }
                    None if watch.lagged() => {
                        // Relist: synthetic ADDED for everything, handled idempotently.
                        match self.sh.store.watch(Kind::Pod, None, Since::Initial) {
                            Ok(w) => watch = w,
                            Err(_) => break,
                        }
                    }
                    None => break,
                },
                Some(cmd) = commands.recv() => self.on_command(cmd),
                Some(done) = self.set.join_next(), if !self.set.is_empty() => {
                    if let Ok(uid) = done {
                        let deleted = self.workers.remove(&uid).is_some_and(|w| w.deleted);
                        if !deleted {
                            // Its DELETED is still queued and will clear this.
                            self.finished.insert(uid);
                        }
                    }
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Evict {
                namespace,
                name,
                message,
                reply,
            } => {
                let w = self
                    .workers
                    .values()
                    .find(|w| w.namespace == namespace && w.name == name);
                let sent = w.is_some_and(|w| w.tx.send(Input::Evict(message)).is_ok());
                let _ = reply.send(sent);
            }
        }
    }

    fn on_change(&mut self, change: ChangeType, pod: Option<Pod>) {
        let Some(pod) = pod else { return };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let terminal = phase == status::SUCCEEDED || phase == status::FAILED;
        let ours = node_name == self.sh.node.name;
        // Keep the node's usage current: a bound pod counts until it ends or goes.
        if change == ChangeType::Deleted || terminal || !ours {
            if let Some(req) = self.bound.remove(&uid) {
                self.usage.remove(&req);
                self.retry_unschedulable();
            }
        } else if !self.bound.contains_key(&uid) {
            let req = schedule::pod_requests(pod.spec.as_ref().unwrap_or(&Default::default()));
            self.usage.add(&req);
            self.bound.insert(uid.clone(), req);
        }
        if change == ChangeType::Deleted {
            self.unschedulable.remove(&uid);
            self.finished.remove(&uid);
            if let Some(w) = self.workers.get_mut(&uid) {
                w.deleted = true;
                let _ = w.tx.send(Input::Gone);
            }
            return;
        }
        if schedule::is_ours_to_schedule(&pod) {
            self.schedule(&pod);
            return;
        }
        if !ours {
            return;
        }
        self.unschedulable.remove(&uid);
        if let Some(w) = self.workers.get(&uid) {
            let _ = w.tx.send(Input::Updated(Box::new(pod)));
            return;
        }
        if terminal || self.finished.contains(&uid) {
            // Finished before this kubelet saw it, after a relist, or its worker is done
            // and this is one of its own last writes: nothing to run.
            return;
        }
        self.start_worker(pod);
    }

    /// Starts the pod worker for a pod bound to this node.
    fn start_worker(&mut self, pod: Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.workers.contains_key(&uid) {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.workers.insert(
            uid.clone(),
            WorkerRef {
                tx,
                deleted: false,
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                name: pod.metadata.name.clone().unwrap_or_default(),
            },
        );
        let sh = self.sh.clone();
        self.set.spawn(async move {
            Worker::run(sh, pod, rx).await;
            uid
        });
    }

    /// Binds `pod` to the node, or reports why it cannot be placed (once per message).
    fn schedule(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let store = &self.sh.store;
        let pod_json = serde_json::to_value(pod).unwrap_or(Value::Null);
        let involved = ObjectRef::pod(&pod_json);
        match schedule::schedule(pod, &self.sh.node, &self.usage) {
            Ok(()) => {
                self.unschedulable.remove(&uid);
                if let Ok(bound) = store.bind_pod(&ns, &name, &uid, &self.sh.node.name) {
                    let msg = format!("Successfully assigned {ns}/{name} to {}", self.sh.node.name);
                    let mut ev = EventRecord::normal(&involved, "Scheduled", &msg);
                    ev.component = "default-scheduler".into();
                    let _ = store.record_event(ev);
                    // Count it at once (the next pod may be scheduled before this
                    // binding's MODIFIED comes back), and start it without waiting for that.
                    let req =
                        schedule::pod_requests(pod.spec.as_ref().unwrap_or(&Default::default()));
                    if !self.bound.contains_key(&uid) {
                        self.usage.add(&req);
                        self.bound.insert(uid.clone(), req);
                    }
                    if let Ok(p) = serde_json::from_value::<Pod>(bound) {
                        self.start_worker(p);
                    }
                }
            }
            Err(u) => {
                let known = self
                    .unschedulable
                    .get(&uid)
                    .is_some_and(|(_, _, m)| *m == u.message);
                self.unschedulable
                    .insert(uid.clone(), (ns.clone(), name.clone(), u.message.clone()));
                if known {
                    return;
                }
                // The event first, so a client that sees the condition finds it too.
                if u.reason == "Unschedulable" {
                    let mut ev = EventRecord::warning(&involved, "FailedScheduling", &u.message);
                    ev.component = "default-scheduler".into();
                    let _ = store.record_event(ev);
                }
                let cond = json!({
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": null,
                    "lastTransitionTime": jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "reason": u.reason,
                    "message": u.message,
                });
                let _ = store.modify_status(Kind::Pod, &ns, &name, Some(&uid), |status| {
                    if !status.get("phase").is_some_and(Value::is_string) {
                        status["phase"] = json!("Pending");
                    }
                    let conds = status
                        .as_object_mut()
                        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
                    if let Some(Value::Array(cs)) = conds {
                        let same = cs.iter().any(|c| {
                            c["type"] == "PodScheduled"
                                && c["status"] == "False"
                                && c["message"] == cond["message"]
                        });
                        if !same {
                            cs.retain(|c| c["type"] != "PodScheduled");
                            cs.push(cond.clone());
                        }
                    }
                    Ok(())
                });
            }
        }
    }

    /// Resources were freed: try the waiting pods again, oldest uid order.
    fn retry_unschedulable(&mut self) {
        let waiting: Vec<(String, String)> = self
            .unschedulable
            .values()
            .map(|(ns, name, _)| (ns.clone(), name.clone()))
            .collect();
        for (ns, name) in waiting {
            if let Ok(p) = self.sh.store.get_pod(&ns, &name) {
                if schedule::is_ours_to_schedule(&p) {
                    self.schedule(&p);
                }
            }
        }
    }
}

/// A `v1 Node` describing the simulated node.
fn node_object(node: &Node, config: &Config) -> Value {
    let alloc: serde_json::Map<String, Value> = node
        .allocatable
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.to_string())))
        .chain(std::iter::once((
            "pods".to_string(),
            json!(node.max_pods.to_string()),
        )))
        .collect();
    let spec = if node.taints.is_empty() {
        json!({})
    } else {
        json!({"taints": node.taints})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": node.labels},
        "spec": spec,
        "status": {
            "capacity": alloc,
            "allocatable": alloc,
            "addresses": [
                {"type": "InternalIP", "address": config.host_ip},
                {"type": "Hostname", "address": node.name},
            ],
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
            }],
            "nodeInfo": {
                "kubeletVersion": "v1.34.0-podrun",
                "containerRuntimeVersion": "podrun://0.1.0",
                "operatingSystem": "linux",
                "architecture": node.labels.get("kubernetes.io/arch"),
            },
        },
    })
}
