//! One pod on the node, from admission to its last status: the kubelet's pod worker.
//!
//! A worker owns everything about its pod (container processes, per-container back-off,
//! timers) and is reached only through [`Input`] messages from the kubelet loop, so no
//! state is shared. It reacts to three kinds of happening — a pod update, a container
//! exit, a timer — and after each one runs [`Worker::sync`], which decides the next
//! steps from the current state (like the kubelet's `SyncPod`), then writes the whole
//! status once through the store. Every status write is one resourceVersion bump, in
//! the order things happened.
//!
//! # Caveats
//!
//! Probes are not run: a running container is ready and started at once. Sidecars are
//! stopped together with app containers, not after them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec,
    PodStatus, VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nix::sys::signal::Signal;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::env::{self, Placement};
use super::image;
use super::status::{self, is_sidecar};
use super::termination;
use super::transitions::{self, Severity, Step, Vars};
use super::volumes;
use super::Shared;
use crate::sim::runtime::{self, ContainerConfig, Exit};
use crate::sim::store::{EventRecord, ObjectRef};
use crate::sim::Kind;

/// What the kubelet loop tells a worker.
#[derive(Debug)]
pub enum Input {
    /// The pod object changed (spec, metadata, deletionTimestamp).
    Updated(Box<Pod>),
    /// The pod object is gone from the store: kill everything now.
    Gone,
    /// Node-pressure eviction with this message.
    Evict(String),
}

/// Which list a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum List {
    Init,
    App,
}

impl List {
    fn field(self) -> &'static str {
        match self {
            List::Init => "initContainers",
            List::App => "containers",
        }
    }
}

/// A running container process.
struct Proc {
    handle: runtime::Container,
    attempt: u32,
    started_at: Time,
    container_id: String,
    message_file: PathBuf,
    log_path: PathBuf,
}

/// Per-container bookkeeping across restarts.
#[derive(Default)]
struct Slot {
    /// How many times a process was started (restartCount = starts - 1).
    starts: u32,
    /// Not before this instant may the next start be tried.
    next_try: Option<Instant>,
    /// Consecutive failed pulls.
    pull_failures: u32,
    /// ImagePullBackOff until then.
    pull_backoff_until: Option<Instant>,
    /// Whether the next start is a restart after an exit (restartCount++ and lastState).
    restart_pending: bool,
}

/// Why the kubelet is stopping the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stop {
    /// deletionTimestamp set: stop, then remove the object.
    Delete,
    /// activeDeadlineSeconds passed.
    Deadline,
    /// Evicted with this message.
    Evict(String),
    /// All regular containers finished; only sidecars are left to stop.
    Completed,
}

type ExitFuture = BoxFuture<'static, (List, String, u32, Exit)>;

/// The pod worker (see the module docs).
pub struct Worker {
    sh: Arc<Shared>,
    pod: Pod,
    uid: String,
    namespace: String,
    name: String,
    pod_dir: PathBuf,
    init: Vec<ContainerStatus>,
    app: Vec<ContainerStatus>,
    slots: HashMap<(List, String), Slot>,
    procs: HashMap<(List, String), Proc>,
    exits: FuturesUnordered<ExitFuture>,
    volumes: Option<BTreeMap<String, PathBuf>>,
    volume_retry: Option<Instant>,
    start_time: Time,
    started: Instant,
    stop: Option<Stop>,
    grace_deadline: Option<Instant>,
    killed: bool,
    /// The pod will run nothing more; its last status is written.
    done: bool,
    conditions: Vec<PodCondition>,
    disruption: Option<PodCondition>,
    synced_at: Instant,
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn restart_policy(spec: &PodSpec) -> &str {
    spec.restart_policy.as_deref().unwrap_or("Always")
}

impl Worker {
    /// Runs the pod until it is gone from the store. Returns when the worker is finished.
    pub async fn run(sh: Arc<Shared>, pod: Pod, mut rx: mpsc::UnboundedReceiver<Input>) {
        let mut w = Worker::new(sh, pod);
        w.admit();
        loop {
            w.sync().await;
            if w.finished() {
                break;
            }
            let wake = w.next_wake();
            tokio::select! {
                input = rx.recv() => match input {
                    None | Some(Input::Gone) => {
                        w.kill_now();
                        break;
                    }
                    Some(Input::Updated(p)) => w.on_update(*p),
                    Some(Input::Evict(msg)) => w.on_evict(msg),
                },
                Some((list, name, attempt, exit)) = w.exits.next(), if !w.exits.is_empty() => {
                    w.on_exit(list, &name, attempt, exit);
                }
                _ = sleep_until(wake), if wake.is_some() => {}
            }
        }
        w.cleanup();
    }

    fn new(sh: Arc<Shared>, pod: Pod) -> Self {
        let meta = &pod.metadata;
        let uid = meta.uid.clone().unwrap_or_default();
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone().unwrap_or_default();
        let pod_dir = sh.root.join("pods").join(&uid);
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .unwrap_or_else(now);
        Worker {
            sh,
            uid,
            namespace,
            name,
            pod_dir,
            init: Vec::new(),
            app: Vec::new(),
            slots: HashMap::new(),
            procs: HashMap::new(),
            exits: FuturesUnordered::new(),
            volumes: None,
            volume_retry: None,
            start_time,
            started: Instant::now(),
            stop: None,
            grace_deadline: None,
            killed: false,
            done: false,
            conditions: Vec::new(),
            disruption: None,
            synced_at: Instant::now(),
            pod,
        }
    }

    fn spec(&self) -> PodSpec {
        self.pod.spec.clone().unwrap_or_default()
    }

    /// First status: every container waiting, nothing started yet.
    fn admit(&mut self) {
        let spec = self.spec();
        let has_init = spec.init_containers.as_ref().is_some_and(|v| !v.is_empty());
        let app_reason = if has_init {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        self.init = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| self.fresh_status(c, "PodInitializing"))
            .collect();
        self.app = spec
            .containers
            .iter()
            .map(|c| self.fresh_status(c, app_reason))
            .collect();
        if self.pod.metadata.deletion_timestamp.is_some() {
            self.begin_stop(Stop::Delete);
        }
        self.write_status();
    }

    fn fresh_status(&self, c: &Container, reason: &str) -> ContainerStatus {
        ContainerStatus {
            name: c.name.clone(),
            image: status_image(&c.image.clone().unwrap_or_default()),
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            state: Some(status::waiting(reason, None)),
            last_state: Some(ContainerState::default()),
            volume_mounts: mount_statuses(c),
            ..ContainerStatus::default()
        }
    }

    fn finished(&self) -> bool {
        self.done && self.stop == Some(Stop::Delete)
    }

    fn on_update(&mut self, pod: Pod) {
        let deleting = pod.metadata.deletion_timestamp.is_some();
        self.pod = pod;
        if deleting && !matches!(self.stop, Some(Stop::Delete)) {
            if self.done {
                // Already terminal: nothing runs, just remove the object.
                self.stop = Some(Stop::Delete);
            } else {
                self.begin_stop(Stop::Delete);
            }
        } else if deleting {
            // A shorter grace period on a second delete call.
            let grace = self.grace_seconds();
            let new_deadline = Instant::now() + Duration::from_secs(grace);
            if self.grace_deadline.is_none_or(|d| new_deadline < d) {
                self.grace_deadline = Some(new_deadline);
            }
        }
    }

    fn on_evict(&mut self, message: String) {
        if self.done || self.stop.is_some() {
            return;
        }
        self.disruption = Some(PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("TerminationByKubelet".into()),
            message: Some(message.clone()),
            last_transition_time: Some(now()),
            ..PodCondition::default()
        });
        self.pod_event(Severity::Warning, "Evicted", &message);
        self.begin_stop(Stop::Evict(message));
    }

    fn grace_seconds(&self) -> u64 {
        let meta = self.pod.metadata.deletion_grace_period_seconds;
        let spec = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds);
        meta.or(spec).unwrap_or(30).max(0) as u64
    }

    /// SIGTERM every running container (event Killing) and arm the SIGKILL deadline.
    fn begin_stop(&mut self, why: Stop) {
        let grace = match &why {
            Stop::Delete => self.grace_seconds(),
            _ => self
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(0) as u64,
        };
        self.stop = Some(why);
        self.grace_deadline = Some(Instant::now() + Duration::from_secs(grace));
        let names: Vec<(List, String)> = self.procs.keys().cloned().collect();
        for (list, name) in names {
            self.container_event(list, &name, Step::Killing, "");
            if let Some(p) = self.procs.get(&(list, name.clone())) {
                let sig = if grace == 0 {
                    Signal::SIGKILL
                } else {
                    Signal::SIGTERM
                };
                let _ = p.handle.signal(sig);
            }
        }
        if grace == 0 {
            self.killed = true;
        }
    }

    /// The pod vanished: SIGKILL whatever runs, without waiting.
    fn kill_now(&mut self) {
        let names: Vec<(List, String)> = self.procs.keys().cloned().collect();
        for (list, name) in names {
            if self.stop.is_none() {
                self.container_event(list, &name, Step::Killing, "");
            }
            if let Some(p) = self.procs.get(&(list, name)) {
                let _ = p.handle.kill_all();
            }
        }
    }

    fn cleanup(&mut self) {
        for p in self.procs.values() {
            let _ = p.handle.kill_all();
            self.sh.runtime.remove(p.handle.id());
        }
        self.sh.registry.forget_pod(&self.uid);
        let _ = std::fs::remove_dir_all(&self.pod_dir);
        let _ = std::fs::remove_dir_all(self.log_dir());
    }

    fn log_dir(&self) -> PathBuf {
        self.sh
            .root
            .join("logs")
            .join(format!("{}_{}_{}", self.namespace, self.name, self.uid))
    }

    /// The earliest timer set after the last sync began (earlier ones were handled by it
    /// or are blocked on something else, which will wake the worker itself).
    fn next_wake(&self) -> Option<Instant> {
        let mut wakes: Vec<Instant> = self.slots.values().filter_map(|s| s.next_try).collect();
        wakes.extend(self.volume_retry);
        if self.stop.is_some() && !self.killed {
            wakes.extend(self.grace_deadline);
        }
        if self.stop.is_none() && !self.done {
            wakes.extend(self.deadline());
        }
        wakes.into_iter().filter(|t| *t > self.synced_at).min()
    }

    fn deadline(&self) -> Option<Instant> {
        let secs = self.pod.spec.as_ref()?.active_deadline_seconds?;
        Some(self.started + Duration::from_secs(secs.max(0) as u64))
    }

    fn on_exit(&mut self, list: List, name: &str, attempt: u32, exit: Exit) {
        let key = (list, name.to_string());
        let Some(p) = self.procs.get(&key) else {
            return;
        };
        if p.attempt != attempt {
            return;
        }
        let Some(p) = self.procs.remove(&key) else {
            return;
        };
        let spec_c = self.container_spec(list, name);
        let policy = spec_c
            .as_ref()
            .and_then(|c| c.termination_message_policy.clone());
        let message =
            termination::message(&p.message_file, &p.log_path, policy.as_deref(), exit.code);
        let state = status::terminated(
            exit.code,
            None,
            message,
            Some(p.started_at.clone()),
            Time(exit.finished_at),
            Some(p.container_id.clone()),
        );
        self.sh.registry.exited(&self.uid, name);
        if let Some(s) = self.status_mut(list, name) {
            s.state = Some(state);
            s.ready =
                list == List::Init && exit.code == 0 && !spec_c.as_ref().is_some_and(is_sidecar);
            s.started = Some(false);
        }
        if self.stop.is_none() && self.plan_restart(list, name, exit.code) {
            // Show the exit before the restart; otherwise the sync that follows writes
            // the next status (terminal, or the next init container starting).
            self.write_status();
        }
    }

    /// After an exit: whether and when the container runs again (CrashLoopBackOff).
    /// Returns whether it will be restarted.
    fn plan_restart(&mut self, list: List, name: &str, code: i32) -> bool {
        let spec = self.spec();
        let Some(c) = self.container_spec(list, name) else {
            return false;
        };
        let restart = match (list, is_sidecar(&c), restart_policy(&spec)) {
            (List::Init, true, _) => true,
            (_, _, "Always") if list == List::App => true,
            (List::Init, false, "Never") => false,
            (List::Init, false, _) => code != 0,
            (List::App, _, "OnFailure") => code != 0,
            _ => false,
        };
        if !restart {
            return false;
        }
        let base = self.sh.config.crash_loop_backoff;
        let max = self.sh.config.max_backoff;
        let slot = self.slots.entry((list, name.to_string())).or_default();
        slot.restart_pending = true;
        // The kubelet restarts at once after the first exit, then backs off 10s, 20s, ...
        let restarts = slot.starts.saturating_sub(1);
        let delay = if restarts == 0 {
            Duration::ZERO
        } else {
            backoff(base, max, restarts - 1)
        };
        slot.next_try = Some(Instant::now() + delay);
        if delay > Duration::ZERO {
            let pod = format!("{}_{}({})", self.name, self.namespace, self.uid);
            let d = transitions::go_duration(delay);
            let vars = Vars {
                container: name,
                pod: &pod,
                delay: &d,
                ..Vars::default()
            };
            self.apply(list, name, Step::CrashBackOff, &vars);
        }
        true
    }

    fn container_spec(&self, list: List, name: &str) -> Option<Container> {
        let spec = self.pod.spec.as_ref()?;
        match list {
            List::Init => spec
                .init_containers
                .iter()
                .flatten()
                .find(|c| c.name == name)
                .cloned(),
            List::App => spec.containers.iter().find(|c| c.name == name).cloned(),
        }
    }

    fn status_mut(&mut self, list: List, name: &str) -> Option<&mut ContainerStatus> {
        let v = match list {
            List::Init => &mut self.init,
            List::App => &mut self.app,
        };
        v.iter_mut().find(|s| s.name == name)
    }

    fn status_of(&self, list: List, name: &str) -> Option<&ContainerStatus> {
        let v = match list {
            List::Init => &self.init,
            List::App => &self.app,
        };
        v.iter().find(|s| s.name == name)
    }

    fn due(&self, list: List, name: &str) -> bool {
        self.slots
            .get(&(list, name.to_string()))
            .and_then(|s| s.next_try)
            .is_none_or(|t| t <= Instant::now())
    }

    /// Decides and performs the next steps from the current state, then writes status.
    async fn sync(&mut self) {
        self.synced_at = Instant::now();
        if self.stop.is_some() {
            self.sync_stopping();
            return;
        }
        if self.done {
            return;
        }
        if self.deadline().is_some_and(|d| d <= Instant::now()) {
            let msg = "Pod was active on the node longer than the specified deadline";
            self.pod_event(Severity::Normal, "DeadlineExceeded", msg);
            self.begin_stop(Stop::Deadline);
            self.write_status();
            self.sync_stopping();
            return;
        }
        if self.volumes.is_none() && !self.set_up_volumes() {
            return;
        }
        let spec = self.spec();
        let mut init_done = true;
        for c in spec.init_containers.iter().flatten() {
            let key = (List::Init, c.name.clone());
            if self.procs.contains_key(&key) {
                if is_sidecar(c) {
                    continue;
                }
                init_done = false;
                break;
            }
            let code = self.status_of(List::Init, &c.name).and_then(exit_code);
            if !is_sidecar(c) && code == Some(0) {
                continue;
            }
            let restart_pending = self.slots.get(&key).is_some_and(|s| s.restart_pending);
            if code.is_some() && !restart_pending {
                // Failed and not restarted (restartPolicy Never): the pod is Failed.
                init_done = false;
                break;
            }
            if self.due(List::Init, &c.name) {
                self.try_start(List::Init, c).await;
            }
            if is_sidecar(c) && self.procs.contains_key(&key) {
                continue;
            }
            init_done = false;
            break;
        }
        if init_done {
            for c in &spec.containers {
                let key = (List::App, c.name.clone());
                if self.procs.contains_key(&key) {
                    continue;
                }
                let slot = self.slots.get(&key);
                let never_started = slot.is_none_or(|s| s.starts == 0);
                let restart = slot.is_some_and(|s| s.restart_pending);
                if (never_started || restart) && self.due(List::App, &c.name) {
                    self.try_start(List::App, c).await;
                }
            }
            // Regular containers done for good: stop the sidecars, then the pod is terminal.
            let app_running = self.procs.keys().any(|(l, _)| *l == List::App);
            let app_pending = spec.containers.iter().any(|c| {
                self.slots
                    .get(&(List::App, c.name.clone()))
                    .is_none_or(|s| s.starts == 0 || s.restart_pending)
            });
            if !app_running && !app_pending {
                self.begin_stop(Stop::Completed);
                self.sync_stopping();
                return;
            }
        } else {
            let failed_init = spec.init_containers.iter().flatten().any(|c| {
                !is_sidecar(c)
                    && self
                        .status_of(List::Init, &c.name)
                        .and_then(exit_code)
                        .is_some_and(|x| x != 0)
                    && !self
                        .slots
                        .get(&(List::Init, c.name.clone()))
                        .is_some_and(|s| s.restart_pending)
            });
            if failed_init && restart_policy(&spec) == "Never" {
                self.begin_stop(Stop::Completed);
                self.sync_stopping();
                return;
            }
        }
        self.write_status();
    }

    /// While stopping: SIGKILL at the grace deadline; once nothing runs, the final status.
    fn sync_stopping(&mut self) {
        if !self.killed && self.grace_deadline.is_some_and(|d| d <= Instant::now()) {
            for p in self.procs.values() {
                let _ = p.handle.kill_all();
            }
            self.killed = true;
        }
        if !self.procs.is_empty() {
            self.write_status();
            return;
        }
        if !self.done {
            self.done = true;
            self.mark_unstarted_unknown();
            self.write_status();
        }
        if self.stop == Some(Stop::Delete) {
            if let Err(e) =
                self.sh
                    .store
                    .finalize_pod_delete(&self.namespace, &self.name, &self.uid)
            {
                tracing::warn!(pod = %self.name, error = %e, "finalizing pod delete");
            }
        }
    }

    /// A terminal pod's containers that never ran report `ContainerStatusUnknown` (137).
    fn mark_unstarted_unknown(&mut self) {
        let finished = now();
        let only_if_stopped = matches!(self.stop, Some(Stop::Completed));
        for s in self.init.iter_mut().chain(self.app.iter_mut()) {
            let waiting = s.state.as_ref().is_some_and(|x| x.waiting.is_some());
            if !waiting || only_if_stopped {
                continue;
            }
            if s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
            {
                // Waiting to restart: its last run is its final state.
                s.state = s.last_state.take();
                s.last_state = Some(ContainerState::default());
                continue;
            }
            s.state = Some(status::terminated(
                137,
                Some("ContainerStatusUnknown"),
                Some("The container could not be located when the pod was terminated".into()),
                None,
                finished.clone(),
                None,
            ));
        }
    }

    /// Writes every volume; on failure a FailedMount event and a retry later.
    fn set_up_volumes(&mut self) -> bool {
        if self.volume_retry.is_some_and(|t| t > Instant::now()) {
            return false;
        }
        let placement = self.placement();
        let extras = volumes::Extras {
            token: &self.sh.config.service_account_token,
            root_ca_pem: &self.sh.config.root_ca_pem,
        };
        match volumes::set_up(
            &self.pod,
            &self.pod_dir,
            self.sh.store.as_ref(),
            &placement,
            &extras,
        ) {
            Ok(v) => {
                self.volumes = Some(v);
                self.volume_retry = None;
                true
            }
            Err(e) => {
                self.pod_event(Severity::Warning, "FailedMount", &e.to_string());
                self.volume_retry = Some(Instant::now() + self.sh.config.retry_interval);
                self.write_status();
                false
            }
        }
    }

    fn placement(&self) -> Placement<'_> {
        Placement {
            host_ip: &self.sh.config.host_ip,
            pod_ip: &self.sh.config.host_ip,
            allocatable: &self.sh.node.allocatable,
            service_env: &self.sh.service_env,
        }
    }

    /// One attempt at starting a container: image, config, create, start.
    async fn try_start(&mut self, list: List, c: &Container) {
        let key = (list, c.name.clone());
        self.slots.entry(key.clone()).or_default().next_try = None;
        let image_str = c.image.clone().unwrap_or_default();
        let reference = match image::parse(&image_str) {
            Ok(r) => r,
            Err(e) => {
                let vars = Vars {
                    container: &c.name,
                    image: &image_str,
                    error: &e,
                    ..Vars::default()
                };
                self.apply(list, &c.name, Step::InvalidImage, &vars);
                self.retry_later(&key, self.sh.config.retry_interval);
                return;
            }
        };
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            if reference.tag.as_deref() == Some("latest") {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let missing = self
            .sh
            .node
            .pull_failures
            .iter()
            .any(|p| p.matches(&image_str));
        if missing {
            self.pull_failed(list, c, &image_str, &reference, &policy);
            return;
        }
        let step = if policy == "Always" {
            Step::ImagePulled
        } else {
            Step::ImagePresent
        };
        let took = transitions::go_duration(Duration::from_micros(rand::random_range(300..900)));
        let vars = Vars {
            container: &c.name,
            image: &image_str,
            delay: &took,
            ..Vars::default()
        };
        self.apply(list, &c.name, step, &vars);

        let pod = self.pod.clone();
        let placement = self.placement();
        let mut envs = match env::environment(&pod, c, self.sh.store.as_ref(), &placement) {
            Ok(e) => e,
            Err(e) => {
                let vars = Vars {
                    container: &c.name,
                    error: &e.0,
                    ..Vars::default()
                };
                self.apply(list, &c.name, Step::ConfigError, &vars);
                self.retry_later(&key, self.sh.config.retry_interval);
                return;
            }
        };
        if !envs.iter().any(|(k, _)| k == "HOSTNAME") {
            envs.insert(0, ("HOSTNAME".into(), self.name.clone()));
        }
        if !envs.iter().any(|(k, _)| k == "PATH") {
            envs.insert(0, ("PATH".into(), env::DEFAULT_PATH.into()));
        }
        let Some(argv) = env::argv(c, &envs) else {
            let err = format!(
                "no command specified: the podrun simulator has no images to read an entrypoint \
                 from, so container \"{}\" must set command (or args)",
                c.name
            );
            let vars = Vars {
                container: &c.name,
                error: &err,
                ..Vars::default()
            };
            self.apply(list, &c.name, Step::CreateError, &vars);
            self.retry_later(&key, self.sh.config.retry_interval);
            return;
        };
        let volumes = self.volumes.clone().unwrap_or_default();
        let mut mounts = match volumes::mounts(c, &volumes, &envs) {
            Ok(m) => m,
            Err(err) => {
                let vars = Vars {
                    container: &c.name,
                    error: &err,
                    ..Vars::default()
                };
                self.apply(list, &c.name, Step::CreateError, &vars);
                self.retry_later(&key, self.sh.config.retry_interval);
                return;
            }
        };
        let attempt = self.slots.get(&key).map_or(0, |s| s.starts);
        let id = format!("{}_{}_{}_{}", self.uid, list.field(), c.name, attempt);
        let container_id = hex::encode(Sha256::digest(id.as_bytes()));
        let message_file = self
            .pod_dir
            .join("containers")
            .join(&c.name)
            .join(&container_id[..8]);
        let log_path = self.log_dir().join(&c.name).join(format!("{attempt}.log"));
        for dir in [message_file.parent(), log_path.parent()]
            .into_iter()
            .flatten()
        {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&message_file, b"");
        let tm_path = c
            .termination_message_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/dev/termination-log".into());
        mounts.push(volumes::Mount {
            host_path: message_file.clone(),
            container_path: tm_path,
            read_only: false,
        });
        let cfg = ContainerConfig {
            id: id.clone(),
            argv,
            env: envs,
            working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
            mounts: mounts
                .into_iter()
                .map(|m| runtime::Mount {
                    host_path: m.host_path,
                    container_path: m.container_path,
                    read_only: m.read_only,
                })
                .collect(),
            hostname: self.name.clone(),
            log_path: log_path.clone(),
        };
        // A previous run of the same attempt number cannot exist, but a stale handle
        // from a failed start might: drop it.
        self.sh.runtime.remove(&id);
        let started = self.sh.runtime.start(cfg).await;
        let full_id = format!("podrun://{container_id}");
        let restart = {
            let slot = self.slots.entry(key.clone()).or_default();
            slot.starts += 1;
            let r = slot.restart_pending && slot.starts > 1;
            slot.restart_pending = false;
            slot.pull_failures = 0;
            slot.pull_backoff_until = None;
            r
        };
        let image_id = reference.image_id();
        let status_image = reference.status_image();
        if let Some(s) = self.status_mut(list, &c.name) {
            if restart {
                s.restart_count += 1;
                let last = s.state.take().filter(|x| x.terminated.is_some());
                if let Some(last) = last {
                    s.last_state = Some(last);
                }
            }
            s.image = status_image;
            s.image_id = image_id;
            s.container_id = Some(full_id.clone());
        }
        self.container_event(list, &c.name, Step::Created, "");
        match started {
            Ok(handle) => {
                let started_at = Time(handle.started_at());
                if let Some(s) = self.status_mut(list, &c.name) {
                    s.state = Some(status::running(started_at.clone()));
                    s.ready = true;
                    s.started = Some(true);
                }
                self.sh.registry.started(
                    &self.uid,
                    &self.namespace,
                    &self.name,
                    &c.name,
                    handle.clone(),
                    log_path.clone(),
                );
                let h = handle.clone();
                let name = c.name.clone();
                self.exits.push(Box::pin(async move {
                    let exit = h.wait().await;
                    (list, name, attempt, exit)
                }));
                self.procs.insert(
                    key,
                    Proc {
                        handle,
                        attempt,
                        started_at,
                        container_id: full_id,
                        message_file,
                        log_path,
                    },
                );
                self.container_event(list, &c.name, Step::Started, "");
            }
            Err(e) => {
                let err = start_error(&e);
                let finished = now();
                if let Some(s) = self.status_mut(list, &c.name) {
                    s.state = Some(status::terminated(
                        128,
                        Some("StartError"),
                        Some(err.clone()),
                        Some(Time(jiff::Timestamp::UNIX_EPOCH)),
                        finished,
                        Some(full_id),
                    ));
                    s.ready = false;
                    s.started = Some(false);
                }
                self.container_event(list, &c.name, Step::StartFailed, &err);
                self.plan_restart(list, &c.name, 128);
            }
        }
    }

    fn retry_later(&mut self, key: &(List, String), after: Duration) {
        self.slots.entry(key.clone()).or_default().next_try = Some(Instant::now() + after);
    }

    /// ErrImagePull, then ImagePullBackOff until the back-off expires, then pull again.
    fn pull_failed(
        &mut self,
        list: List,
        c: &Container,
        image_str: &str,
        r: &image::Reference,
        policy: &str,
    ) {
        let key = (list, c.name.clone());
        let error = image::pull_error(r);
        let vars = Vars {
            container: &c.name,
            image: image_str,
            error: &error,
            ..Vars::default()
        };
        if policy == "Never" {
            self.apply(list, &c.name, Step::NeverPull, &vars);
            self.retry_later(&key, self.sh.config.retry_interval);
            return;
        }
        let now = Instant::now();
        let (base, max, resync) = (
            self.sh.config.image_pull_backoff,
            self.sh.config.max_backoff,
            self.sh.config.resync_delay,
        );
        let slot = self.slots.entry(key.clone()).or_default();
        if let Some(until) = slot.pull_backoff_until.filter(|u| *u > now) {
            slot.next_try = Some(until);
            self.apply(list, &c.name, Step::PullBackOff, &vars);
            return;
        }
        slot.pull_failures += 1;
        slot.pull_backoff_until = Some(now + backoff(base, max, slot.pull_failures - 1));
        slot.next_try = Some(now + resync);
        self.apply(list, &c.name, Step::PullFailed, &vars);
    }

    /// Applies a table row: the waiting state it leaves (if any) and its events.
    fn apply(&mut self, list: List, name: &str, step: Step, vars: &Vars<'_>) {
        let row = transitions::row(step);
        if let Some(reason) = row.waiting {
            let msg = row.waiting_message.map(|m| transitions::render(m, vars));
            let crash = step == Step::CrashBackOff;
            if let Some(s) = self.status_mut(list, name) {
                if crash {
                    // The exit just seen becomes lastState while waiting to restart.
                    if let Some(t) = s.state.take().filter(|x| x.terminated.is_some()) {
                        s.last_state = Some(t);
                    }
                }
                s.state = Some(status::waiting(reason, msg));
                s.ready = false;
                s.started = Some(false);
            }
        }
        for (sev, reason, template) in row.events {
            self.record(
                Some((list, name)),
                *sev,
                reason,
                &transitions::render(template, vars),
            );
        }
    }

    fn container_event(&mut self, list: List, name: &str, step: Step, error: &str) {
        let vars = Vars {
            container: name,
            error,
            ..Vars::default()
        };
        let row = transitions::row(step);
        for (sev, reason, template) in row.events {
            self.record(
                Some((list, name)),
                *sev,
                reason,
                &transitions::render(template, &vars),
            );
        }
    }

    fn pod_event(&self, sev: Severity, reason: &str, message: &str) {
        self.record(None, sev, reason, message);
    }

    fn record(&self, container: Option<(List, &str)>, sev: Severity, reason: &str, message: &str) {
        let meta = &self.pod.metadata;
        let mut involved = ObjectRef {
            kind: "Pod".into(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            field_path: None,
        };
        if let Some((list, name)) = container {
            involved = involved.container(list.field(), name);
        }
        let mut ev = match sev {
            Severity::Normal => EventRecord::normal(&involved, reason, message),
            Severity::Warning => EventRecord::warning(&involved, reason, message),
        };
        ev.host = Some(self.sh.node.name.clone());
        if let Err(e) = self.sh.store.record_event(ev) {
            tracing::debug!(pod = %self.name, error = %e, "recording event");
        }
    }

    /// Builds the whole status from the worker's state and writes it in one store call.
    fn write_status(&mut self) {
        let spec = self.spec();
        let terminal = self.done;
        let mut phase = status::phase(&spec, &self.init, &self.app, terminal);
        let (mut reason, mut message) = (None, None);
        match &self.stop {
            Some(Stop::Deadline) => {
                phase = status::FAILED;
                reason = Some("DeadlineExceeded".to_string());
                message = Some(
                    "Pod was active on the node longer than the specified deadline".to_string(),
                );
            }
            Some(Stop::Evict(m)) => {
                phase = status::FAILED;
                reason = Some("Evicted".to_string());
                message = Some(m.clone());
            }
            _ => {}
        }
        let sandbox_ready = self.volumes.is_some() && !self.done;
        let facts = status::Facts {
            spec: &spec,
            init: &self.init,
            app: &self.app,
            phase,
            sandbox_ready,
        };
        let t = now();
        self.conditions = status::conditions(facts, &self.conditions, &t);
        let mut app = self.app.clone();
        app.sort_by(|a, b| a.name.cmp(&b.name));
        let ip = &self.sh.config.host_ip;
        let has_ip = self.volumes.is_some();
        let st = PodStatus {
            phase: Some(phase.to_string()),
            reason,
            message,
            host_ip: Some(ip.clone()),
            host_ips: Some(vec![HostIP { ip: ip.clone() }]),
            pod_ip: has_ip.then(|| ip.clone()),
            pod_ips: has_ip.then(|| vec![PodIP { ip: ip.clone() }]),
            start_time: Some(self.start_time.clone()),
            init_container_statuses: (!self.init.is_empty()).then(|| self.init.clone()),
            container_statuses: Some(app),
            ..PodStatus::default()
        };
        let mut conditions = self.conditions.clone();
        if let Some(d) = &self.disruption {
            conditions.insert(0, d.clone());
        }
        let generation = self.pod.metadata.generation;
        let result = self.sh.store.modify_status(
            Kind::Pod,
            &self.namespace,
            &self.name,
            Some(&self.uid),
            move |status| {
                let existing: Vec<Value> = status
                    .get("conditions")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let qos = status.get("qosClass").cloned();
                let mut new = serde_json::to_value(&st).unwrap_or(Value::Null);
                let mut conds: Vec<Value> = conditions
                    .iter()
                    .map(|c| {
                        let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
                        v["lastProbeTime"] = Value::Null;
                        v
                    })
                    .collect();
                // Like the kubelet's status manager, keep conditions others own
                // (PodScheduled, the Eviction API's DisruptionTarget, readiness gates)
                // unless this write sets the same type itself.
                for c in existing {
                    if !conds.iter().any(|n| n["type"] == c["type"]) {
                        conds.push(c);
                    }
                }
                if !conds.iter().any(|c| c["type"] == "PodScheduled") {
                    conds.push(serde_json::json!({"type": "PodScheduled", "status": "True",
                        "lastProbeTime": null, "lastTransitionTime": t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}));
                }
                new["conditions"] = Value::Array(conds);
                if let Some(q) = qos {
                    new["qosClass"] = q;
                }
                if let Some(g) = generation {
                    new["observedGeneration"] = g.into();
                }
                *status = new;
                Ok(())
            },
        );
        if let Err(e) = result {
            tracing::debug!(pod = %self.name, error = %e, "writing pod status");
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// `base * 2^n`, capped.
fn backoff(base: Duration, max: Duration, n: u32) -> Duration {
    base.checked_mul(1u32 << n.min(20)).unwrap_or(max).min(max)
}

fn exit_code(s: &ContainerStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|x| x.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn status_image(image: &str) -> String {
    image::parse(image).map_or_else(|_| image.to_string(), |r| r.status_image())
}

fn mount_statuses(c: &Container) -> Option<Vec<VolumeMountStatus>> {
    let ms: Vec<VolumeMountStatus> = c
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| VolumeMountStatus {
            name: m.name.clone(),
            mount_path: m.mount_path.clone(),
            read_only: m.read_only.filter(|r| *r),
            recursive_read_only: m.read_only.filter(|r| *r).map(|_| "Disabled".to_string()),
            volume_status: None,
        })
        .collect();
    (!ms.is_empty()).then_some(ms)
}

/// The runtime's start failure in containerd's words where there is an equivalent.
fn start_error(e: &runtime::Error) -> String {
    match e {
        runtime::Error::ExecutableNotFound { executable, .. } => {
            let what = if executable.contains('/') {
                format!("exec: \"{executable}\": stat {executable}: no such file or directory")
            } else {
                format!("exec: \"{executable}\": executable file not found in $PATH")
            };
            format!(
                "failed to create containerd task: failed to create shim task: OCI runtime create \
                 failed: runc create failed: unable to start container process: {what}: unknown"
            )
        }
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(cause) = src {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                src = cause.source();
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(10);
        let max = Duration::from_secs(300);
        assert_eq!(backoff(base, max, 0), Duration::from_secs(10));
        assert_eq!(backoff(base, max, 1), Duration::from_secs(20));
        assert_eq!(backoff(base, max, 5), Duration::from_secs(300));
        assert_eq!(backoff(base, max, 40), Duration::from_secs(300));
    }
}
