//! The simulator's object store: namespaces, pods, events, secrets, configmaps and
//! serviceaccounts as JSON objects, with one monotonic resourceVersion, the API server's
//! bookkeeping (uid, creationTimestamp, generation, deletionTimestamp) and a watch fan-out.
//!
//! The HTTP handlers and the process kubelet use this same Rust API, so the kubelet sees
//! exactly what a client sees (kwok's split: the store knows nothing of processes). Every
//! operation returns [`ApiError`], which renders as the API server's `Status`.
//!
//! # Usage by the kubelet
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<podrun::sim::store::Store>) -> Result<(), podrun::sim::ApiError> {
//! use podrun::sim::store::{ChangeType, EventRecord, Since};
//! use podrun::sim::Kind;
//!
//! // 1. Subscribe to pods: synthetic ADDED for every existing pod, then every change.
//! let mut watch = store.watch(Kind::Pod, None, Since::Initial)?;
//! while let Some(change) = watch.next().await {
//!     let pod = &change.object; // serde_json::Value (or `change.pod()` for a typed Pod)
//!     match change.change {
//!         ChangeType::Added | ChangeType::Modified => {
//!             if pod["metadata"]["deletionTimestamp"].is_string() {
//!                 // 5. Graceful delete: stop the containers (SIGTERM, SIGKILL after
//!                 //    metadata.deletionGracePeriodSeconds), then remove the object:
//!                 store.finalize_pod_delete(&change.namespace, &change.name, change.uid())?;
//!             }
//!         }
//!         // Grace 0 (or a namespace sweep) removed the pod at once: kill its processes.
//!         ChangeType::Deleted => {}
//!     }
//! }
//! // `next()` returned None: the store closed (shutdown) or this watcher lagged too far
//! // behind; re-list with `store.list` and watch again from its resourceVersion.
//!
//! // 2. Schedule: set spec.nodeName and the PodScheduled condition (the binding call).
//! store.bind_pod("default", "p", "uid-of-p", "sim-node")?;
//!
//! // 3. Status: read-modify-write of `.status` only; bumps resourceVersion and notifies
//! //    watchers (no write and no event when nothing changed).
//! store.modify_status(Kind::Pod, "default", "p", Some("uid-of-p"), |status| {
//!     status["phase"] = "Running".into();
//!     Ok(())
//! })?;
//!
//! // 4. Events, and the Secrets/ConfigMaps a pod refers to.
//! store.record_event(EventRecord::normal(&pod_ref(), "Started", "Started container base"))?;
//! let secret = store.get(Kind::Secret, "default", "creds")?; // 404 ApiError if missing
//! # fn pod_ref() -> podrun::sim::store::ObjectRef { unimplemented!() }
//! # Ok(()) }
//! ```
//!
//! # Deletion
//!
//! `delete(Kind::Pod, ..)` with a grace period > 0 on a scheduled, non-terminal pod only sets
//! `deletionTimestamp` (now + grace) and `deletionGracePeriodSeconds` and emits MODIFIED; the
//! kubelet stops the containers and calls [`Store::finalize_pod_delete`], which removes the
//! object and emits DELETED. Grace 0, an unscheduled pod (`spec.nodeName` empty) or a pod in
//! phase Succeeded/Failed is removed at once (DELETED) like the API server does; the kubelet
//! must then kill whatever still runs for that uid.
//!
//! # Watch history
//!
//! The last `Config::history` changes are kept for resourceVersion replay. A watch from an
//! older resourceVersion fails with 410 Expired (`too old resource version: X (Y)`);
//! [`Store::compact`] drops the history so tests can provoke that.

pub mod meta;
pub mod pod;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::sim::kind::Kind;
use crate::sim::status::{ApiError, Cause, Result};

/// Namespaces that exist when the simulator starts.
pub const INITIAL_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// Store settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Changes kept for watch replay (the API server's watch cache window). Default 10000.
    pub history: usize,
    /// Buffered changes per watcher before it is dropped as too slow. Default 16384.
    pub watch_buffer: usize,
    /// PEM of the cluster CA, published as `kube-root-ca.crt` in every namespace.
    pub root_ca_pem: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            history: 10_000,
            watch_buffer: 16_384,
            root_ca_pem: String::new(),
        }
    }
}

/// What happened to an object (the watch event type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created (or synthetic initial event).
    Added,
    /// Updated.
    Modified,
    /// Removed; the object is its last state with the deletion's resourceVersion.
    Deleted,
}

impl ChangeType {
    /// The watch event `type` text.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One change to one object, as broadcast to watchers.
#[derive(Debug, Clone)]
pub struct Change {
    /// The object's kind.
    pub kind: Kind,
    /// Namespace ("" for namespaces).
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// ADDED, MODIFIED or DELETED.
    pub change: ChangeType,
    /// The object after the change.
    pub object: Arc<Value>,
    /// resourceVersion of the change.
    pub rv: u64,
    /// The object before the change (None for ADDED).
    pub prev: Option<Arc<Value>>,
    /// The object serialized once, shared by every watcher.
    json: std::sync::OnceLock<Vec<u8>>,
}

impl Change {
    /// The object's `metadata.uid`.
    pub fn uid(&self) -> &str {
        self.object
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The object as JSON bytes (serialized once for all watchers).
    pub fn object_json(&self) -> &[u8] {
        self.json
            .get_or_init(|| serde_json::to_vec(&*self.object).unwrap_or_default())
    }

    /// The object decoded as a typed pod (for `Kind::Pod` changes).
    pub fn pod(&self) -> Option<k8s_openapi::api::core::v1::Pod> {
        serde_json::from_value((*self.object).clone()).ok()
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Synthetic ADDED for every existing object, then changes (resourceVersion unset or "0").
    Initial,
    /// Only changes after now.
    Now,
    /// Changes after this resourceVersion (410 Expired if no longer in history).
    Rv(u64),
}

/// Options of a delete call (`DeleteOptions` plus query parameters).
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `gracePeriodSeconds`; None = the pod's `terminationGracePeriodSeconds` (or 30).
    pub grace_period_seconds: Option<i64>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// Outcome of a delete.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// Removed now (DELETED emitted); the object's last state.
    Removed(Value),
    /// Marked for graceful deletion (deletionTimestamp set); the object now.
    Pending(Value),
}

/// A reference to the object an Event is about.
#[derive(Debug, Clone, Default)]
pub struct ObjectRef {
    /// `Pod`.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// uid.
    pub uid: String,
    /// resourceVersion of the object when the event happened.
    pub resource_version: String,
    /// e.g. `spec.containers{base}`.
    pub field_path: Option<String>,
}

impl ObjectRef {
    /// The reference to a pod object (JSON).
    pub fn pod(pod: &Value) -> ObjectRef {
        let m = &pod["metadata"];
        let s = |k: &str| m[k].as_str().unwrap_or_default().to_string();
        ObjectRef {
            kind: "Pod".into(),
            namespace: s("namespace"),
            name: s("name"),
            uid: s("uid"),
            resource_version: s("resourceVersion"),
            field_path: None,
        }
    }

    /// The same reference pointing at one container (`spec.containers{name}`).
    pub fn container(mut self, list: &str, name: &str) -> ObjectRef {
        self.field_path = Some(format!("spec.{list}{{{name}}}"));
        self
    }
}

/// An Event the kubelet (or scheduler) records.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// The object it is about.
    pub involved: ObjectRef,
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// Reason (`Scheduled`, `Pulled`, `Started`, `BackOff`...).
    pub reason: String,
    /// Message text.
    pub message: String,
    /// Source component: `kubelet` or `default-scheduler`.
    pub component: String,
    /// Source host (node name), for kubelet events.
    pub host: Option<String>,
}

impl EventRecord {
    /// A Normal kubelet event.
    pub fn normal(involved: &ObjectRef, reason: &str, message: &str) -> Self {
        EventRecord {
            involved: involved.clone(),
            type_: "Normal",
            reason: reason.into(),
            message: message.into(),
            component: "kubelet".into(),
            host: None,
        }
    }

    /// A Warning kubelet event.
    pub fn warning(involved: &ObjectRef, reason: &str, message: &str) -> Self {
        EventRecord {
            type_: "Warning",
            ..EventRecord::normal(involved, reason, message)
        }
    }
}

/// A snapshot list: the objects and the store's resourceVersion at that moment.
#[derive(Debug, Clone)]
pub struct List {
    /// Objects, ordered by namespace then name (etcd key order).
    pub items: Vec<Arc<Value>>,
    /// The list's resourceVersion.
    pub resource_version: u64,
}

type Key = (Kind, String, String);

struct State {
    rv: u64,
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Arc<Change>>,
    /// Highest resourceVersion dropped from history: watches from below it are Expired.
    compacted: u64,
}

/// The object store (see the module docs).
pub struct Store {
    state: Mutex<State>,
    tx: broadcast::Sender<Arc<Change>>,
    config: Config,
    closed: CancellationToken,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// A subscription to changes of one kind (optionally one namespace).
pub struct Watch {
    pending: VecDeque<Arc<Change>>,
    rx: broadcast::Receiver<Arc<Change>>,
    kind: Kind,
    namespace: Option<String>,
    after: u64,
    closed: CancellationToken,
    lagged: bool,
    progress: u64,
}

impl Watch {
    /// The next change, or None when the store shut down or this watcher fell more than
    /// `Config::watch_buffer` changes behind (see [`Watch::lagged`]).
    pub async fn next(&mut self) -> Option<Arc<Change>> {
        if let Some(c) = self.pending.pop_front() {
            return Some(c);
        }
        loop {
            let got = tokio::select! {
                biased;
                r = self.rx.recv() => r,
                _ = self.closed.cancelled() => return None,
            };
            match got {
                Ok(c) => {
                    self.progress = self.progress.max(c.rv);
                    if self.matches(&c) {
                        return Some(c);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.lagged = true;
                    return None;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The highest resourceVersion this watcher has seen (matching or not): every change
    /// of its kind up to here has been delivered, so it is a valid BOOKMARK version.
    pub fn progress(&self) -> u64 {
        self.progress
    }

    /// Take the events queued at subscription (initial ADDED or replay) at once.
    pub fn take_pending(&mut self) -> Vec<Arc<Change>> {
        self.pending.drain(..).collect()
    }

    /// Whether the watch ended because the watcher was too slow.
    pub fn lagged(&self) -> bool {
        self.lagged
    }

    fn matches(&self, c: &Change) -> bool {
        c.kind == self.kind
            && c.rv > self.after
            && self.namespace.as_deref().is_none_or(|ns| ns == c.namespace)
    }
}

fn ns_of(kind: Kind, namespace: &str) -> String {
    if kind.namespaced() {
        namespace.to_string()
    } else {
        String::new()
    }
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn set_meta(obj: &mut Value, key: &str, value: Value) {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"][key] = value;
}

fn remove_meta(obj: &mut Value, key: &str) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove(key);
    }
}

fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

impl Store {
    /// A store holding the initial namespaces, each with its `default` ServiceAccount and
    /// `kube-root-ca.crt` ConfigMap.
    pub fn new(config: Config) -> Arc<Store> {
        let (tx, _) = broadcast::channel(config.watch_buffer.max(16));
        let store = Arc::new(Store {
            state: Mutex::new(State {
                rv: 0,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 0,
            }),
            tx,
            config,
            closed: CancellationToken::new(),
        });
        for ns in INITIAL_NAMESPACES {
            // Creating a fresh namespace in an empty store cannot fail.
            let _ = store.create(Kind::Namespace, "", json!({"metadata": {"name": ns}}));
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps (every mutation is a
        // single insert/remove), so keep serving rather than poisoning the whole sim.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// End every watch (shutdown).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// The current (highest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// The highest resourceVersion no longer in the watch history.
    pub fn compacted(&self) -> u64 {
        self.lock().compacted
    }

    /// Atomic PATCH: `f` edits the whole current object; the result goes through the
    /// update path (or the status path with `status_only`). A patch that sets
    /// `metadata.resourceVersion` to another value fails with 409 Conflict.
    pub fn patch(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        status_only: bool,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Value> {
        let mut st = self.lock();
        let mut obj = Self::current(&st, kind, namespace, name)?;
        let before = meta_str(&obj, "resourceVersion").to_string();
        f(&mut obj)?;
        let after = meta_str(&obj, "resourceVersion");
        if !after.is_empty() && after != before {
            return Err(ApiError::stale(kind.plural(), name));
        }
        Self::check_type(kind, &obj)?;
        self.store_update(&mut st, kind, namespace, name, obj, status_only)
    }

    /// Forget the watch history: any watch from an older resourceVersion gets 410 Expired.
    pub fn compact(&self) {
        let mut st = self.lock();
        st.history.clear();
        st.compacted = st.rv;
    }

    /// Write the object (insert, or remove for Deleted) and broadcast the change with the
    /// previous state, so filtered watches can turn "stopped matching" into DELETED.
    fn commit(&self, st: &mut State, key: Key, change: ChangeType, object: Arc<Value>) {
        let kind = key.0;
        let prev = match change {
            ChangeType::Deleted => st.objects.remove(&key),
            _ => st.objects.insert(key, object.clone()),
        };
        let c = Arc::new(Change {
            kind,
            namespace: meta_str(&object, "namespace").to_string(),
            name: meta_str(&object, "name").to_string(),
            change,
            rv: st.rv,
            object,
            prev,
            json: std::sync::OnceLock::new(),
        });
        st.history.push_back(c.clone());
        while st.history.len() > self.config.history {
            if let Some(old) = st.history.pop_front() {
                st.compacted = old.rv;
            }
        }
        // No receivers is fine.
        let _ = self.tx.send(c);
    }

    fn next_rv(st: &mut State, obj: &mut Value) {
        st.rv += 1;
        set_meta(obj, "resourceVersion", json!(st.rv.to_string()));
    }

    /// Get one object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value> {
        let st = self.lock();
        st.objects
            .get(&(kind, ns_of(kind, namespace), name.to_string()))
            .map(|o| (**o).clone())
            .ok_or_else(|| ApiError::not_found(kind.plural(), name))
    }

    /// Get one pod as the typed `k8s_openapi` Pod.
    pub fn get_pod(&self, namespace: &str, name: &str) -> Result<k8s_openapi::api::core::v1::Pod> {
        let v = self.get(Kind::Pod, namespace, name)?;
        serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))
    }

    /// List objects of a kind in one namespace (or all when None).
    pub fn list(&self, kind: Kind, namespace: Option<&str>) -> List {
        let st = self.lock();
        let items = Self::select(&st, kind, namespace);
        List {
            items,
            resource_version: st.rv,
        }
    }

    fn select(st: &State, kind: Kind, namespace: Option<&str>) -> Vec<Arc<Value>> {
        match namespace.filter(|_| kind.namespaced()) {
            Some(ns) => {
                let lo = (kind, ns.to_string(), String::new());
                st.objects
                    .range(lo..)
                    .take_while(|((k, n, _), _)| *k == kind && n == ns)
                    .map(|(_, v)| v.clone())
                    .collect()
            }
            None => st
                .objects
                .range((kind, String::new(), String::new())..)
                .take_while(|((k, _, _), _)| *k == kind)
                .map(|(_, v)| v.clone())
                .collect(),
        }
    }

    /// Subscribe to changes of `kind` (in `namespace`, or all namespaces when None).
    pub fn watch(&self, kind: Kind, namespace: Option<&str>, since: Since) -> Result<Watch> {
        let st = self.lock();
        let namespace = namespace.filter(|_| kind.namespaced()).map(str::to_string);
        let mut pending = VecDeque::new();
        let after = match since {
            Since::Initial => {
                for obj in Self::select(&st, kind, namespace.as_deref()) {
                    let rv = meta_str(&obj, "resourceVersion").parse().unwrap_or(0);
                    pending.push_back(Arc::new(Change {
                        kind,
                        namespace: meta_str(&obj, "namespace").to_string(),
                        name: meta_str(&obj, "name").to_string(),
                        change: ChangeType::Added,
                        object: obj,
                        rv,
                        prev: None,
                        json: std::sync::OnceLock::new(),
                    }));
                }
                st.rv
            }
            Since::Now => st.rv,
            Since::Rv(from) => {
                if from < st.compacted {
                    return Err(ApiError::expired(from, st.compacted + 1));
                }
                for c in st.history.iter().filter(|c| {
                    c.rv > from
                        && c.kind == kind
                        && namespace.as_deref().is_none_or(|ns| ns == c.namespace)
                }) {
                    pending.push_back(c.clone());
                }
                from.max(st.rv)
            }
        };
        let rx = self.tx.subscribe();
        Ok(Watch {
            pending,
            rx,
            kind,
            namespace,
            after,
            closed: self.closed.clone(),
            lagged: false,
            progress: after,
        })
    }

    /// Whether the namespace exists and is not terminating; 404/403 like NamespaceLifecycle.
    fn check_namespace(st: &State, kind: Kind, namespace: &str, name: &str) -> Result<()> {
        if !kind.namespaced() {
            return Ok(());
        }
        let ns = st
            .objects
            .get(&(Kind::Namespace, String::new(), namespace.to_string()))
            .ok_or_else(|| ApiError::not_found("namespaces", namespace))?;
        if ns.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::forbidden(
                kind.plural(),
                name,
                &format!("unable to create new content in namespace {namespace} because it is being terminated"),
            ));
        }
        Ok(())
    }

    fn check_type(kind: Kind, obj: &Value) -> Result<()> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(format!(
                "{} in version \"v1\" cannot be handled as a {}: json: cannot unmarshal {} into Go value of type struct",
                kind.kind(),
                kind.kind(),
                match obj {
                    Value::Array(_) => "array",
                    Value::String(_) => "string",
                    Value::Number(_) => "number",
                    Value::Bool(_) => "bool",
                    _ => "null",
                }
            )));
        }
        if let Some(k) = obj.get("kind").and_then(Value::as_str) {
            if !k.is_empty() && k != kind.kind() {
                return Err(ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: kind {k} does not match the expected {}",
                    kind.kind()
                )));
            }
        }
        if let Some(v) = obj.get("apiVersion").and_then(Value::as_str) {
            if !v.is_empty() && v != "v1" {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version (v1)"
                )));
            }
        }
        Ok(())
    }

    /// Metadata checks shared by create and update.
    fn validate_meta(kind: Kind, obj: &Value, name: &str) -> Result<()> {
        let mut causes = Vec::new();
        if kind == Kind::Namespace {
            causes.extend(meta::label_name_errors("metadata.name", name));
        } else if kind != Kind::Event {
            causes.extend(meta::subdomain_errors("metadata.name", name));
        }
        if let Some(l) = obj.pointer("/metadata/labels") {
            causes.extend(meta::labels_errors("metadata.labels", l, true));
        }
        if let Some(a) = obj.pointer("/metadata/annotations") {
            causes.extend(meta::labels_errors("metadata.annotations", a, false));
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(kind.kind(), name, causes))
        }
    }

    /// Per-kind normalization and defaulting (other than pods' admission).
    fn prepare(kind: Kind, obj: Value) -> Result<Value> {
        let mut obj = obj;
        match kind {
            Kind::Pod => {
                obj = pod::normalize(obj)?;
                pod::apply_defaults(&mut obj);
            }
            Kind::Secret => prepare_secret(&mut obj)?,
            Kind::Namespace => {
                let name = meta_str(&obj, "name").to_string();
                if !obj
                    .pointer("/metadata/labels")
                    .is_some_and(Value::is_object)
                {
                    set_meta(&mut obj, "labels", json!({}));
                }
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
                if !obj.get("spec").is_some_and(Value::is_object) {
                    obj["spec"] = json!({"finalizers": ["kubernetes"]});
                }
            }
            Kind::Event | Kind::ConfigMap | Kind::ServiceAccount | Kind::Node => {}
        }
        obj["kind"] = json!(kind.kind());
        obj["apiVersion"] = json!("v1");
        Ok(obj)
    }

    /// Create an object in `namespace` ("" for namespaces): name or generateName, admission
    /// (namespace lifecycle, pods' ServiceAccount), defaults, validation, bookkeeping.
    pub fn create(&self, kind: Kind, namespace: &str, obj: Value) -> Result<Value> {
        self.create_opts(kind, namespace, obj, false)
    }

    /// [`Store::create`], or with `dry_run` every check and default without storing
    /// (`?dryRun=All`): the answer has no resourceVersion and nothing is watched.
    pub fn create_opts(
        &self,
        kind: Kind,
        namespace: &str,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value> {
        Self::check_type(kind, &obj)?;
        let mut obj = obj;
        let ns = ns_of(kind, namespace);
        let body_ns = meta_str(&obj, "namespace").to_string();
        if kind.namespaced() && !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut st = self.lock();
        let given = meta_str(&obj, "name").to_string();
        Self::check_namespace(&st, kind, &ns, &given)?;
        if kind == Kind::Pod {
            obj = pod::normalize(obj)?;
            let ns2 = ns.clone();
            pod::admit_service_account(&mut obj, &ns, &given, |sa| {
                st.objects
                    .get(&(Kind::ServiceAccount, ns2.clone(), sa.to_string()))
                    .map(|v| (**v).clone())
            })?;
        }
        let name = if given.is_empty() {
            let base = meta_str(&obj, "generateName").to_string();
            if base.is_empty() {
                return Err(ApiError::invalid(
                    kind.kind(),
                    "",
                    vec![Cause {
                        reason: "FieldValueRequired",
                        field: "metadata.name".into(),
                        message: "Required value: name or generateName is required".into(),
                    }],
                ));
            }
            meta::generate_name(&base)
        } else {
            given
        };
        set_meta(&mut obj, "name", json!(name));
        if kind.namespaced() {
            set_meta(&mut obj, "namespace", json!(ns));
        } else {
            remove_meta(&mut obj, "namespace");
        }
        let mut obj = Self::prepare(kind, obj)?;
        Self::validate_meta(kind, &obj, &name)?;
        if kind == Kind::Pod {
            pod::validate(&obj, &name)?;
        }
        let key = (kind, ns.clone(), name.clone());
        if st.objects.contains_key(&key) {
            return Err(ApiError::already_exists(kind.plural(), &name));
        }
        // Server-owned metadata: whatever the client sent is replaced.
        set_meta(&mut obj, "uid", json!(uuid::Uuid::new_v4().to_string()));
        set_meta(&mut obj, "creationTimestamp", json!(meta::now()));
        remove_meta(&mut obj, "deletionTimestamp");
        remove_meta(&mut obj, "deletionGracePeriodSeconds");
        remove_meta(&mut obj, "managedFields");
        remove_meta(&mut obj, "selfLink");
        match kind {
            Kind::Pod => {
                set_meta(&mut obj, "generation", json!(1));
                let qos = pod::qos_class(&obj["spec"]);
                obj["status"] = json!({"phase": "Pending", "qosClass": qos});
            }
            Kind::Namespace => {
                obj["status"] = json!({"phase": "Active"});
                remove_meta(&mut obj, "generation");
            }
            _ => remove_meta(&mut obj, "generation"),
        }
        if dry_run {
            remove_meta(&mut obj, "resourceVersion");
            return Ok(obj);
        }
        Self::next_rv(&mut st, &mut obj);
        let arc = Arc::new(obj);
        self.commit(&mut st, key, ChangeType::Added, arc.clone());
        if kind == Kind::Namespace {
            self.populate_namespace(&mut st, &name);
        }
        Ok((*arc).clone())
    }

    /// What the ServiceAccount and root-CA controllers add to a new namespace.
    fn populate_namespace(&self, st: &mut State, ns: &str) {
        let objs = [
            (
                Kind::ServiceAccount,
                json!({"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "default", "namespace": ns}}),
            ),
            (
                Kind::ConfigMap,
                json!({"kind": "ConfigMap", "apiVersion": "v1",
                       "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                                    "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                       "data": {"ca.crt": self.config.root_ca_pem}}),
            ),
        ];
        for (kind, mut obj) in objs {
            let name = meta_str(&obj, "name").to_string();
            set_meta(&mut obj, "uid", json!(uuid::Uuid::new_v4().to_string()));
            set_meta(&mut obj, "creationTimestamp", json!(meta::now()));
            Self::next_rv(st, &mut obj);
            let arc = Arc::new(obj);
            self.commit(st, (kind, ns.to_string(), name), ChangeType::Added, arc);
        }
    }

    /// Replace an object (PUT). `status` is kept from the stored object for kinds with a
    /// status subresource; a non-empty `metadata.resourceVersion` must match (409 Conflict).
    pub fn update(&self, kind: Kind, namespace: &str, name: &str, obj: Value) -> Result<Value> {
        self.update_inner(kind, namespace, name, obj, false)
    }

    /// Replace only `.status` (PUT pods/x/status); everything else is kept.
    pub fn update_status(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        obj: Value,
    ) -> Result<Value> {
        self.update_inner(kind, namespace, name, obj, true)
    }

    /// Atomic read-modify-write through the update path (validation included); `f` gets
    /// the current object. Returns the stored result.
    pub fn modify(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Value> {
        let mut st = self.lock();
        let mut obj = Self::current(&st, kind, namespace, name)?;
        f(&mut obj)?;
        self.store_update(&mut st, kind, namespace, name, obj, false)
    }

    /// Atomic read-modify-write of `.status` (`f` gets the status object, `{}` if absent).
    /// With `uid`, fails with 409 Conflict if the object was replaced by another of the
    /// same name. No write and no watch event when nothing changed.
    pub fn modify_status(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        uid: Option<&str>,
        f: impl FnOnce(&mut Value) -> Result<()>,
    ) -> Result<Value> {
        let mut st = self.lock();
        let mut obj = Self::current(&st, kind, namespace, name)?;
        if let Some(uid) = uid {
            if meta_str(&obj, "uid") != uid {
                return Err(ApiError::conflict(
                    kind.plural(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&obj, "uid")
                    ),
                ));
            }
        }
        if !obj.get("status").is_some_and(Value::is_object) {
            obj["status"] = json!({});
        }
        f(&mut obj["status"])?;
        self.store_update(&mut st, kind, namespace, name, obj, true)
    }

    fn current(st: &State, kind: Kind, namespace: &str, name: &str) -> Result<Value> {
        st.objects
            .get(&(kind, ns_of(kind, namespace), name.to_string()))
            .map(|o| (**o).clone())
            .ok_or_else(|| ApiError::not_found(kind.plural(), name))
    }

    fn update_inner(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        obj: Value,
        status_only: bool,
    ) -> Result<Value> {
        Self::check_type(kind, &obj)?;
        let mut st = self.lock();
        let old = Self::current(&st, kind, namespace, name)?;
        let given_rv = meta_str(&obj, "resourceVersion");
        if !given_rv.is_empty() && given_rv != meta_str(&old, "resourceVersion") {
            return Err(ApiError::stale(kind.plural(), name));
        }
        let body_name = meta_str(&obj, "name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_ns = meta_str(&obj, "namespace");
        if kind.namespaced() && !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        self.store_update(&mut st, kind, namespace, name, obj, status_only)
    }

    /// The shared tail of every update: merge server-owned fields from the stored object,
    /// validate, bump generation/resourceVersion only on a real change, emit MODIFIED, and
    /// complete a finalizer-blocked deletion.
    fn store_update(
        &self,
        st: &mut State,
        kind: Kind,
        namespace: &str,
        name: &str,
        obj: Value,
        status_only: bool,
    ) -> Result<Value> {
        let old = Self::current(st, kind, namespace, name)?;
        let mut new = if status_only {
            let mut n = old.clone();
            n["status"] = obj.get("status").cloned().unwrap_or(json!({}));
            n
        } else {
            let mut n = Self::prepare(kind, obj)?;
            if kind.has_status() {
                match old.get("status") {
                    Some(s) => n["status"] = s.clone(),
                    None => {
                        if let Some(m) = n.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            n
        };
        if kind == Kind::Pod && status_only {
            // The status path is typed too: reject what the API server could not decode.
            new = pod::normalize(new)?;
        }
        // Server-owned metadata always comes from the stored object.
        for key in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old.pointer(&format!("/metadata/{key}")) {
                Some(v) => set_meta(&mut new, key, v.clone()),
                None => remove_meta(&mut new, key),
            }
        }
        if !status_only {
            Self::validate_meta(kind, &new, name)?;
            if kind == Kind::Pod {
                pod::validate(&new, name)?;
                if pod::check_update(&old, &new, name)? {
                    let g = old
                        .pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    set_meta(&mut new, "generation", json!(g + 1));
                }
            }
            if meta_str(&old, "deletionTimestamp").is_empty() {
            } else {
                // Finalizers can only be removed once deleting; adding new ones is refused.
                let old_f = old
                    .pointer("/metadata/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                let new_f = new
                    .pointer("/metadata/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                let added = new_f.as_array().is_some_and(|n| {
                    n.iter()
                        .any(|f| !old_f.as_array().is_some_and(|o| o.contains(f)))
                });
                if added {
                    return Err(ApiError::invalid(
                        kind.kind(),
                        name,
                        vec![Cause::forbidden(
                            "metadata.finalizers",
                            "no new finalizers can be added if the object is being deleted",
                        )],
                    ));
                }
            }
        }
        if new == old {
            return Ok(old);
        }
        Self::next_rv(st, &mut new);
        let key = (kind, ns_of(kind, namespace), name.to_string());
        let deleting = !meta_str(&new, "deletionTimestamp").is_empty();
        let grace0 = new
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .is_none_or(|g| g == 0);
        if deleting && !has_finalizers(&new) && (kind != Kind::Pod || grace0) {
            // The last finalizer went away on an object whose delete was waiting for it.
            let arc = Arc::new(new.clone());
            self.commit(st, key, ChangeType::Deleted, arc);
            self.after_removal(st, kind, namespace);
            return Ok(new);
        }
        let arc = Arc::new(new.clone());
        self.commit(st, key, ChangeType::Modified, arc);
        Ok(new)
    }

    /// Delete an object (see the module docs for pods' graceful path).
    pub fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted> {
        let mut st = self.lock();
        self.delete_locked(&mut st, kind, namespace, name, opts)
    }

    fn delete_locked(
        &self,
        st: &mut State,
        kind: Kind,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted> {
        let mut obj = Self::current(st, kind, namespace, name)?;
        if let Some(uid) = &opts.uid {
            if meta_str(&obj, "uid") != uid {
                return Err(ApiError::conflict(
                    kind.plural(),
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&obj, "uid")
                    ),
                ));
            }
        }
        if let Some(rv) = &opts.resource_version {
            if meta_str(&obj, "resourceVersion") != rv {
                return Err(ApiError::conflict(
                    kind.plural(),
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta_str(&obj, "resourceVersion")
                    ),
                ));
            }
        }
        let key = (kind, ns_of(kind, namespace), name.to_string());
        let grace = match kind {
            Kind::Pod => {
                let mut g = opts.grace_period_seconds.unwrap_or_else(|| {
                    obj.pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(30)
                });
                if g < 0 {
                    g = 1;
                }
                let unscheduled = obj
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .is_empty();
                let phase = obj
                    .pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if unscheduled || phase == "Succeeded" || phase == "Failed" {
                    g = 0;
                }
                g
            }
            Kind::Namespace => return self.delete_namespace(st, name, obj, opts),
            _ => 0,
        };
        let already = !meta_str(&obj, "deletionTimestamp").is_empty();
        if grace > 0 || has_finalizers(&obj) {
            // Graceful: mark, or shorten an existing, longer grace period.
            let current = obj
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if already && current.is_some_and(|c| c <= grace) {
                return Ok(Deleted::Pending(obj));
            }
            if already && grace == 0 && kind != Kind::Pod {
                return Ok(Deleted::Pending(obj));
            }
            let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            set_meta(
                &mut obj,
                "deletionTimestamp",
                json!(meta::format_time(when)),
            );
            set_meta(&mut obj, "deletionGracePeriodSeconds", json!(grace));
            if let Some(g) = obj.pointer("/metadata/generation").and_then(Value::as_i64) {
                if !already {
                    set_meta(&mut obj, "generation", json!(g + 1));
                }
            }
            if grace == 0 && !has_finalizers(&obj) {
                // A pod being gracefully deleted, now forced: remove it.
                return Ok(Deleted::Removed(self.remove(st, key, kind, namespace, obj)));
            }
            Self::next_rv(st, &mut obj);
            let arc = Arc::new(obj.clone());
            self.commit(st, key, ChangeType::Modified, arc);
            return Ok(Deleted::Pending(obj));
        }
        Ok(Deleted::Removed(self.remove(st, key, kind, namespace, obj)))
    }

    fn remove(
        &self,
        st: &mut State,
        key: Key,
        kind: Kind,
        namespace: &str,
        mut obj: Value,
    ) -> Value {
        Self::next_rv(st, &mut obj);
        let arc = Arc::new(obj.clone());
        self.commit(st, key, ChangeType::Deleted, arc);
        self.after_removal(st, kind, namespace);
        obj
    }

    /// A terminating namespace goes away once its last pod has.
    fn after_removal(&self, st: &mut State, kind: Kind, namespace: &str) {
        if kind != Kind::Pod {
            return;
        }
        let key = (Kind::Namespace, String::new(), namespace.to_string());
        let terminating = st
            .objects
            .get(&key)
            .is_some_and(|n| n.pointer("/metadata/deletionTimestamp").is_some());
        if terminating && Self::select(st, Kind::Pod, Some(namespace)).is_empty() {
            if let Some(ns) = st.objects.get(&key).map(|n| (**n).clone()) {
                self.remove(st, key, Kind::Namespace, "", ns);
            }
        }
    }

    /// Namespace deletion: mark Terminating, delete its contents (pods gracefully), and
    /// remove the namespace when no pods remain (what the namespace controller does).
    fn delete_namespace(
        &self,
        st: &mut State,
        name: &str,
        mut obj: Value,
        opts: &DeleteOptions,
    ) -> Result<Deleted> {
        // NamespaceLifecycle admission protects the system namespaces.
        if ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::forbidden(
                "namespaces",
                name,
                "this namespace may not be deleted",
            ));
        }
        let key = (Kind::Namespace, String::new(), name.to_string());
        if meta_str(&obj, "deletionTimestamp").is_empty() {
            set_meta(&mut obj, "deletionTimestamp", json!(meta::now()));
            set_meta(&mut obj, "deletionGracePeriodSeconds", json!(0));
            obj["status"] = json!({"phase": "Terminating"});
            Self::next_rv(st, &mut obj);
            let arc = Arc::new(obj.clone());
            self.commit(st, key.clone(), ChangeType::Modified, arc);
        }
        for kind in Kind::ALL.into_iter().filter(|k| k.namespaced()) {
            let names: Vec<String> = Self::select(st, kind, Some(name))
                .iter()
                .map(|o| meta_str(o, "name").to_string())
                .collect();
            for n in names {
                let o = DeleteOptions {
                    grace_period_seconds: opts.grace_period_seconds,
                    ..DeleteOptions::default()
                };
                self.delete_locked(st, kind, name, &n, &o)?;
            }
        }
        if Self::select(st, Kind::Pod, Some(name)).is_empty() {
            if let Some(ns) = st.objects.get(&key).map(|n| (**n).clone()) {
                return Ok(Deleted::Removed(self.remove(
                    st,
                    key,
                    Kind::Namespace,
                    "",
                    ns,
                )));
            }
        }
        Ok(Deleted::Pending(obj))
    }

    /// The kubelet's last step of a graceful pod delete: remove the pod (DELETED) if it
    /// still has this uid and is marked for deletion. Returns false when it was already gone.
    pub fn finalize_pod_delete(&self, namespace: &str, name: &str, uid: &str) -> Result<bool> {
        let mut st = self.lock();
        let key = (Kind::Pod, namespace.to_string(), name.to_string());
        let Some(obj) = st.objects.get(&key).map(|o| (**o).clone()) else {
            return Ok(false);
        };
        if meta_str(&obj, "uid") != uid {
            return Ok(false);
        }
        if meta_str(&obj, "deletionTimestamp").is_empty() {
            return Err(ApiError::conflict(
                "pods",
                name,
                "the pod is not being deleted",
            ));
        }
        if has_finalizers(&obj) {
            // Like the kubelet's grace-0 delete: the finalizers hold the object.
            let mut o = obj;
            set_meta(&mut o, "deletionGracePeriodSeconds", json!(0));
            Self::next_rv(&mut st, &mut o);
            let arc = Arc::new(o);
            self.commit(&mut st, key, ChangeType::Modified, arc);
            return Ok(true);
        }
        self.remove(&mut st, key, Kind::Pod, namespace, obj);
        Ok(true)
    }

    /// The scheduler's binding: set `spec.nodeName` and condition PodScheduled=True.
    /// 409 Conflict if already bound to a node.
    pub fn bind_pod(&self, namespace: &str, name: &str, uid: &str, node: &str) -> Result<Value> {
        let mut st = self.lock();
        let mut obj = Self::current(&st, Kind::Pod, namespace, name)?;
        if meta_str(&obj, "uid") != uid {
            return Err(ApiError::conflict("pods", name, "the pod was replaced"));
        }
        if !obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
        {
            return Err(ApiError::conflict(
                "pods",
                name,
                &format!(
                    "pod {name} is already assigned to node {:?}",
                    obj["spec"]["nodeName"].as_str().unwrap_or_default()
                ),
            ));
        }
        obj["spec"]["nodeName"] = json!(node);
        if !obj.get("status").is_some_and(Value::is_object) {
            obj["status"] = json!({});
        }
        let conds = obj["status"]
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(cs)) = conds {
            cs.retain(|c| c["type"] != "PodScheduled");
            cs.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now()}));
        }
        Self::next_rv(&mut st, &mut obj);
        let arc = Arc::new(obj.clone());
        self.commit(
            &mut st,
            (Kind::Pod, namespace.to_string(), name.to_string()),
            ChangeType::Modified,
            arc,
        );
        Ok(obj)
    }

    /// Record an Event about an object. An identical event (same object, reason, message,
    /// type, source) within the namespace is aggregated: `count` + 1 and a new
    /// `lastTimestamp` (MODIFIED), like the kubelet's event recorder.
    pub fn record_event(&self, ev: EventRecord) -> Result<Value> {
        let ns = if ev.involved.namespace.is_empty() {
            "default".to_string()
        } else {
            ev.involved.namespace.clone()
        };
        let existing = {
            let st = self.lock();
            Self::select(&st, Kind::Event, Some(&ns))
                .into_iter()
                .find(|e| {
                    e["involvedObject"]["uid"] == json!(ev.involved.uid)
                        && e["reason"] == json!(ev.reason)
                        && e["message"] == json!(ev.message)
                        && e["type"] == json!(ev.type_)
                        && e["source"]["component"] == json!(ev.component)
                        && e["involvedObject"]["fieldPath"].as_str()
                            == ev.involved.field_path.as_deref()
                })
        };
        if let Some(e) = existing {
            let name = meta_str(&e, "name").to_string();
            return self.modify(Kind::Event, &ns, &name, |o| {
                let c = o["count"].as_i64().unwrap_or(1);
                o["count"] = json!(c + 1);
                o["lastTimestamp"] = json!(meta::now());
                Ok(())
            });
        }
        let mut involved = json!({
            "kind": ev.involved.kind,
            "namespace": ev.involved.namespace,
            "name": ev.involved.name,
            "uid": ev.involved.uid,
            "apiVersion": "v1",
            "resourceVersion": ev.involved.resource_version,
        });
        if let Some(fp) = &ev.involved.field_path {
            involved["fieldPath"] = json!(fp);
        }
        let mut source = json!({"component": ev.component});
        if let Some(h) = &ev.host {
            source["host"] = json!(h);
        }
        let now = meta::now();
        // The recorder names events <object>.<unix nanos in hex>.
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let obj = json!({
            "metadata": {"name": format!("{}.{:x}", ev.involved.name, nanos), "namespace": ns},
            "involvedObject": involved,
            "reason": ev.reason,
            "message": ev.message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": ev.type_,
            "eventTime": null,
            "reportingComponent": ev.component,
            "reportingInstance": ev.host.clone().unwrap_or_default(),
        });
        self.create(Kind::Event, &ns, obj)
    }
}

/// Secrets: `stringData` is merged into base64 `data`; `data` values must be base64; the
/// type defaults to Opaque.
fn prepare_secret(obj: &mut Value) -> Result<()> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let s = v.as_str().unwrap_or_default();
            if engine.decode(s).is_err() {
                return Err(ApiError::bad_request(format!(
                    "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0 (key {k:?})"
                )));
            }
        }
    }
    if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
        if !obj.get("data").is_some_and(Value::is_object) {
            obj["data"] = json!({});
        }
        for (k, v) in sd {
            obj["data"][k] = json!(engine.encode(v.as_str().unwrap_or_default()));
        }
    }
    if obj
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        obj["type"] = json!("Opaque");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
