//! Integration tests of the process kubelet (`podrun::sim::kubelet`): pods created in the
//! API store run as real sandboxed processes, and the statuses, reasons, messages and
//! Events they produce are asserted exactly, as clients see them through the store.
//!
//! They need bubblewrap (tools/setup-sim.sh) and root or unprivileged user namespaces.
//! Every wait is on a watch event, never a sleep.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use podrun::sim::containers::Lookup;
use podrun::sim::kubelet::{Config, Kubelet};
use podrun::sim::runtime::{logs, Runtime};
use podrun::sim::store::{self, ChangeType, DeleteOptions, Since, Store};
use podrun::sim::Kind;
use pretty_assertions::assert_eq;
use serde_json::{json, Value};

const NS: &str = "default";

/// A store plus a kubelet on a fresh runtime.
struct Sim {
    store: Arc<Store>,
    kubelet: Kubelet,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(Config::default())
    }

    fn with(mut config: Config) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime =
            Runtime::new(dir.path().join("runtime")).expect("runtime (run tools/setup-sim.sh)");
        config.root_dir = Some(dir.path().join("kubelet"));
        let store = Store::new(store::Config::default());
        let kubelet = Kubelet::start(store.clone(), runtime, config).expect("kubelet starts");
        Sim {
            store,
            kubelet,
            _dir: dir,
        }
    }

    fn create(&self, kind: Kind, yaml: &str) -> Value {
        let obj: Value = serde_yaml_ng::from_str(yaml).expect("test object parses");
        self.store.create(kind, NS, obj).expect("create")
    }

    fn pod(&self, yaml: &str) -> Value {
        self.create(Kind::Pod, yaml)
    }

    /// Every state of pod `name` seen by a watch until `done` holds (or it is deleted).
    async fn until(&self, name: &str, done: impl Fn(&Value) -> bool) -> Vec<(ChangeType, Value)> {
        let mut watch = self
            .store
            .watch(Kind::Pod, Some(NS), Since::Initial)
            .expect("watch");
        let mut seen = Vec::new();
        let result = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(c) = watch.next().await {
                if c.name != name {
                    continue;
                }
                let obj = (*c.object).clone();
                let stop = c.change == ChangeType::Deleted || done(&obj);
                seen.push((c.change, obj));
                if stop {
                    return;
                }
            }
        })
        .await;
        if result.is_err() {
            let last = seen.last().map(|(_, o)| o["status"].clone());
            panic!("timed out waiting on pod {name}; last status: {last:#?}");
        }
        seen
    }

    /// The pod once `done` holds.
    async fn wait(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        let seen = self.until(name, done).await;
        seen.last()
            .map(|(_, o)| o.clone())
            .expect("at least one state")
    }

    /// (type, reason, message, source component, fieldPath) of the pod's events, in order.
    fn events(&self, name: &str) -> Vec<(String, String, String, String, String)> {
        let list = self.store.list(Kind::Event, Some(NS));
        let mut evs: Vec<&Value> = list
            .items
            .iter()
            .map(|e| &**e)
            .filter(|e| e["involvedObject"]["name"] == name)
            .collect();
        evs.sort_by_key(|e| {
            e["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        });
        evs.iter()
            .map(|e| {
                let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
                (
                    s(&e["type"]),
                    s(&e["reason"]),
                    s(&e["message"]),
                    s(&e["source"]["component"]),
                    s(&e["involvedObject"]["fieldPath"]),
                )
            })
            .collect()
    }

    /// Waits until container `c` of pod `name` has printed `line` (so its signal
    /// handlers are installed), following its log through the kubelet's registry.
    async fn wait_for_log(&self, name: &str, c: &str, line: &str) {
        let run = self
            .kubelet
            .registry()
            .lookup(NS, name, c, false)
            .expect("the running container is registered");
        let opts = logs::LogOptions {
            follow: true,
            ..logs::LogOptions::default()
        };
        let mut stream = Box::pin(logs::read(
            run.log_path.clone(),
            opts,
            run.container.log_progress(),
        ));
        let mut text = String::new();
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(chunk)) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                if text.lines().any(|l| l == line) {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "log of {name}/{c}");
    }

    fn reasons(&self, name: &str) -> Vec<String> {
        self.events(name).into_iter().map(|e| e.1).collect()
    }
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or_default()
}

fn is_phase(want: &'static str) -> impl Fn(&Value) -> bool {
    move |p| phase(p) == want
}

fn container<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn init_container<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["status"]["initContainerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn waiting_reason(p: &Value, name: &str) -> String {
    container(p, name)["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// (type, status, reason, message) of each condition, in order.
fn conditions(p: &Value) -> Vec<(String, String, String, String)> {
    p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("type"), s("status"), s("reason"), s("message"))
        })
        .collect()
}

fn cond(t: &str, s: &str, r: &str, m: &str) -> (String, String, String, String) {
    (t.into(), s.into(), r.into(), m.into())
}

fn ev(t: &str, r: &str, m: &str, src: &str, fp: &str) -> (String, String, String, String, String) {
    (t.into(), r.into(), m.into(), src.into(), fp.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successful_pod_goes_pending_running_succeeded_with_kubelet_events() {
    let sim = Sim::new();
    sim.pod(
        "metadata: {name: ok}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: busybox, command: [sh, -c, 'echo hello; sleep 0.2']}",
    );
    let seen = sim.until("ok", is_phase("Succeeded")).await;
    let phases: Vec<&str> = seen.iter().map(|(_, p)| phase(p)).collect();
    let mut distinct = phases.clone();
    distinct.dedup();
    assert_eq!(distinct, ["Pending", "Running", "Succeeded"]);
    // The first kubelet status: scheduled, container creating.
    let creating = seen
        .iter()
        .map(|(_, p)| p)
        .find(|p| waiting_reason(p, "main") == "ContainerCreating")
        .expect("a ContainerCreating status was written");
    assert_eq!(creating["spec"]["nodeName"], "podrun-sim");
    assert_eq!(creating["status"]["hostIP"], "127.0.0.1");
    let running = seen
        .iter()
        .map(|(_, p)| p)
        .find(|p| phase(p) == "Running")
        .expect("running");
    let c = container(running, "main");
    assert_eq!(c["ready"], true);
    assert_eq!(c["started"], true);
    assert!(c["state"]["running"]["startedAt"].is_string());
    assert_eq!(running["status"]["podIP"], "127.0.0.1");
    assert_eq!(running["status"]["podIPs"], json!([{"ip": "127.0.0.1"}]));
    assert_eq!(
        conditions(running),
        [
            cond("PodReadyToStartContainers", "True", "", ""),
            cond("Initialized", "True", "", ""),
            cond("Ready", "True", "", ""),
            cond("ContainersReady", "True", "", ""),
            cond("PodScheduled", "True", "", ""),
        ]
    );
    let done = &seen.last().expect("final").1;
    let c = container(done, "main");
    assert_eq!(c["image"], "docker.io/library/busybox:latest");
    assert!(c["imageID"]
        .as_str()
        .is_some_and(|s| s.starts_with("docker.io/library/busybox@sha256:")));
    assert!(c["containerID"]
        .as_str()
        .is_some_and(|s| s.starts_with("podrun://")));
    assert_eq!(c["restartCount"], 0);
    assert_eq!(c["ready"], false);
    assert_eq!(c["started"], false);
    let t = &c["state"]["terminated"];
    assert_eq!(t["exitCode"], 0);
    assert_eq!(t["reason"], "Completed");
    assert!(t["startedAt"].is_string() && t["finishedAt"].is_string());
    assert_eq!(done["status"]["qosClass"], "BestEffort");
    assert!(done["status"]["startTime"].is_string());
    assert_eq!(
        conditions(done),
        [
            cond("PodReadyToStartContainers", "False", "", ""),
            cond("Initialized", "True", "", ""),
            cond("Ready", "False", "PodCompleted", ""),
            cond("ContainersReady", "False", "PodCompleted", ""),
            cond("PodScheduled", "True", "", ""),
        ]
    );
    let events = sim.events("ok");
    let fp = "spec.containers{main}";
    assert_eq!(
        events[0],
        ev(
            "Normal",
            "Scheduled",
            "Successfully assigned default/ok to podrun-sim",
            "default-scheduler",
            ""
        )
    );
    assert_eq!(
        events[1],
        ev(
            "Normal",
            "Pulling",
            "Pulling image \"busybox\"",
            "kubelet",
            fp
        )
    );
    assert!(
        events[2]
            .2
            .starts_with("Successfully pulled image \"busybox\" in "),
        "{:?}",
        events[2]
    );
    assert_eq!(
        events[3],
        ev(
            "Normal",
            "Created",
            "Created container: main",
            "kubelet",
            fp
        )
    );
    assert_eq!(
        events[4],
        ev("Normal", "Started", "Started container main", "kubelet", fp)
    );
    assert_eq!(events.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_container_reports_its_exit_code_and_termination_message() {
    let sim = Sim::new();
    sim.pod(
        "metadata: {name: bad}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, 'echo -n boom > /dev/termination-log; exit 3']",
    );
    let p = sim.wait("bad", is_phase("Failed")).await;
    let t = &container(&p, "main")["state"]["terminated"];
    assert_eq!(t["exitCode"], 3, "{t:#}");
    assert_eq!(t["reason"], "Error");
    assert_eq!(t["message"], "boom");
    assert_eq!(
        conditions(&p)[2..4],
        [
            cond("Ready", "False", "PodFailed", ""),
            cond("ContainersReady", "False", "PodFailed", ""),
        ]
    );
    // IfNotPresent (a tagged image): no pull.
    assert_eq!(
        sim.events("bad")[1],
        ev(
            "Normal",
            "Pulled",
            "Container image \"busybox:1.36\" already present on machine",
            "kubelet",
            "spec.containers{main}"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_to_logs_on_error_uses_the_log_tail_and_a_custom_path_works() {
    let sim = Sim::new();
    sim.pod(
        "metadata: {name: logs}
spec:
  restartPolicy: Never
  containers:
  - name: a
    image: busybox:1.36
    terminationMessagePolicy: FallbackToLogsOnError
    command: [sh, -c, 'for i in $(seq 1 100); do echo line $i; done; echo oops; exit 2']
  - name: b
    image: busybox:1.36
    terminationMessagePath: /tmp/msg
    command: [sh, -c, 'echo -n custom > /tmp/msg']",
    );
    let p = sim.wait("logs", is_phase("Failed")).await;
    let msg = container(&p, "a")["state"]["terminated"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let want: String = (22..=100)
        .map(|i| format!("line {i}\n"))
        .collect::<String>()
        + "oops\n";
    assert_eq!(msg, want);
    let b = &container(&p, "b")["state"]["terminated"];
    assert_eq!(
        (b["exitCode"].clone(), b["message"].clone()),
        (json!(0), json!("custom"))
    );
    // Container statuses are sorted by name, like the kubelet's.
    let names: Vec<&str> = p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_value_from_env_from_and_var_expansion() {
    let sim = Sim::new();
    sim.create(
        Kind::Secret,
        "metadata: {name: creds}\nstringData: {user: admin, pass: s3cr3t}",
    );
    sim.create(
        Kind::ConfigMap,
        "metadata: {name: settings}\ndata: {MODE: fast, LEVEL: '3'}",
    );
    sim.pod(
        r#"metadata: {name: envs, labels: {app: web}}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    workingDir: /work/dir
    command: [sh, -c]
    args: ['echo -n "$(GREETING)|$LITERAL|$POD|$NS|$APP|$NODE|$IP|$PASS|$CFG_MODE|$user|$LEVEL|$MEM|$(pwd)|$UNSET" > /dev/termination-log']
    resources: {limits: {memory: 64Mi}}
    envFrom:
    - {configMapRef: {name: settings}, prefix: CFG_}
    - {secretRef: {name: creds}}
    env:
    - {name: NAME, value: world}
    - {name: GREETING, value: "hello $(NAME)"}
    - {name: LITERAL, value: "$$(GREETING) $(MISSING) $(user)"}
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: PASS, valueFrom: {secretKeyRef: {name: creds, key: pass}}}
    - {name: LEVEL, valueFrom: {configMapKeyRef: {name: settings, key: LEVEL}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: OPT, valueFrom: {secretKeyRef: {name: absent, key: k, optional: true}}}
"#,
    );
    let p = sim.wait("envs", is_phase("Succeeded")).await;
    assert_eq!(
        container(&p, "main")["state"]["terminated"]["message"],
        "hello world|$(GREETING) $(MISSING) admin|envs|default|web|podrun-sim|127.0.0.1|s3cr3t|fast|admin|3|64|/work/dir|"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_secret_configmap_downward_api_and_a_shared_empty_dir() {
    let sim = Sim::new();
    sim.create(
        Kind::Secret,
        "metadata: {name: tls}\nstringData: {key.pem: KEY, other: x}",
    );
    sim.create(
        Kind::ConfigMap,
        "metadata: {name: app}\ndata: {app.conf: 'a=1'}",
    );
    sim.pod(
        r#"metadata: {name: vols, labels: {tier: db, app: x}}
spec:
  restartPolicy: Never
  volumes:
  - {name: shared, emptyDir: {}}
  - {name: sec, secret: {secretName: tls, items: [{key: key.pem, path: keys/k.pem}]}}
  - {name: conf, configMap: {name: app}}
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
  containers:
  - name: writer
    image: busybox:1.36
    command: [sh, -c, 'echo -n from-writer > /shared/note']
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: reader
    image: busybox:1.36
    command: [sh, -c, 'while [ ! -s /data/note ]; do sleep 0.05; done; printf "%s|%s|%s|%s|%s|%s" "$(cat /data/note)" "$(cat /etc/tls/keys/k.pem)" "$(cat /etc/app/app.conf)" "$(cat /info/labels)" "$(cat /info/name)" "$(ls /var/run/secrets/kubernetes.io/serviceaccount | tr "\n" ,)" > /dev/termination-log; touch /etc/tls/x 2>/dev/null && echo writable >> /dev/termination-log; true']
    volumeMounts:
    - {name: shared, mountPath: /data}
    - {name: sec, mountPath: /etc/tls, readOnly: true}
    - {name: conf, mountPath: /etc/app/app.conf, subPath: app.conf}
    - {name: info, mountPath: /info}
"#,
    );
    let p = sim.wait("vols", is_phase("Succeeded")).await;
    assert_eq!(
        container(&p, "reader")["state"]["terminated"]["message"],
        "from-writer|KEY|a=1|app=\"x\"\ntier=\"db\"|vols|ca.crt,namespace,token,"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_a_config_error_until_it_exists() {
    let sim = Sim::with(Config {
        retry_interval: Duration::from_millis(100),
        ..Config::default()
    });
    sim.pod(
        "metadata: {name: cfg}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, 'echo -n $TOKEN > /dev/termination-log']
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: later, key: token}}}]",
    );
    let p = sim
        .wait("cfg", |p| {
            waiting_reason(p, "main") == "CreateContainerConfigError"
        })
        .await;
    assert_eq!(phase(&p), "Pending");
    assert_eq!(
        container(&p, "main")["state"]["waiting"]["message"],
        "secret \"later\" not found"
    );
    let events = sim.events("cfg");
    assert!(events.contains(&ev(
        "Warning",
        "Failed",
        "Error: secret \"later\" not found",
        "kubelet",
        "spec.containers{main}"
    )));
    sim.create(
        Kind::Secret,
        "metadata: {name: later}\nstringData: {token: abc}",
    );
    let p = sim.wait("cfg", is_phase("Succeeded")).await;
    assert_eq!(
        container(&p, "main")["state"]["terminated"]["message"],
        "abc"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_configmap_and_no_command_errors() {
    let sim = Sim::new();
    sim.pod(
        "metadata: {name: cm}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ['true']
    envFrom: [{configMapRef: {name: nowhere}}]",
    );
    let p = sim
        .wait("cm", |p| {
            waiting_reason(p, "main") == "CreateContainerConfigError"
        })
        .await;
    assert_eq!(
        container(&p, "main")["state"]["waiting"]["message"],
        "configmap \"nowhere\" not found"
    );
    sim.pod("metadata: {name: nocmd}\nspec: {containers: [{name: main, image: busybox:1.36}]}");
    let p = sim
        .wait("nocmd", |p| {
            waiting_reason(p, "main") == "CreateContainerError"
        })
        .await;
    let msg = container(&p, "main")["state"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        msg,
        "no command specified: the podrun simulator has no images to read an entrypoint from, \
         so container \"main\" must set command (or args)"
    );
    assert!(sim.events("nocmd").contains(&ev(
        "Warning",
        "Failed",
        &format!("Error: {msg}"),
        "kubelet",
        "spec.containers{main}"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_failures_back_off_and_invalid_names_are_reported() {
    let sim = Sim::with(Config {
        image_pull_failures: vec!["*does-not-exist*".into()],
        resync_delay: Duration::from_millis(50),
        image_pull_backoff: Duration::from_secs(30),
        ..Config::default()
    });
    sim.pod(
        "metadata: {name: pull}
spec:
  containers: [{name: main, image: 'registry.example/does-not-exist:1.0', command: ['true']}]",
    );
    let seen = sim
        .until("pull", |p| waiting_reason(p, "main") == "ImagePullBackOff")
        .await;
    let err = seen
        .iter()
        .map(|(_, p)| p)
        .find(|p| waiting_reason(p, "main") == "ErrImagePull")
        .expect("ErrImagePull before the back-off");
    let pull_error = "rpc error: code = NotFound desc = failed to pull and unpack image \
        \"registry.example/does-not-exist:1.0\": failed to resolve reference \
        \"registry.example/does-not-exist:1.0\": registry.example/does-not-exist:1.0: not found";
    assert_eq!(
        container(err, "main")["state"]["waiting"]["message"],
        pull_error
    );
    let last = &seen.last().expect("last").1;
    assert_eq!(
        container(last, "main")["state"]["waiting"]["message"],
        "Back-off pulling image \"registry.example/does-not-exist:1.0\""
    );
    assert_eq!(phase(last), "Pending");
    let fp = "spec.containers{main}";
    let image = "registry.example/does-not-exist:1.0";
    assert_eq!(
        sim.events("pull")[1..],
        [
            ev(
                "Normal",
                "Pulling",
                &format!("Pulling image \"{image}\""),
                "kubelet",
                fp
            ),
            ev(
                "Warning",
                "Failed",
                &format!("Failed to pull image \"{image}\": {pull_error}"),
                "kubelet",
                fp
            ),
            ev("Warning", "Failed", "Error: ErrImagePull", "kubelet", fp),
            ev(
                "Normal",
                "BackOff",
                &format!("Back-off pulling image \"{image}\""),
                "kubelet",
                fp
            ),
            ev(
                "Warning",
                "Failed",
                "Error: ImagePullBackOff",
                "kubelet",
                fp
            ),
        ]
    );

    sim.pod("metadata: {name: badname}\nspec: {containers: [{name: main, image: busyBOX, command: ['true']}]}");
    let p = sim
        .wait("badname", |p| {
            waiting_reason(p, "main") == "InvalidImageName"
        })
        .await;
    let msg =
        "Failed to apply default image tag \"busyBOX\": couldn't parse image name \"busyBOX\": \
        invalid reference format: repository name (library/busyBOX) must be lowercase";
    assert_eq!(container(&p, "main")["state"]["waiting"]["message"], msg);
    assert_eq!(
        sim.events("badname")[1..3],
        [
            ev("Warning", "InspectFailed", msg, "kubelet", fp),
            ev(
                "Warning",
                "Failed",
                "Error: InvalidImageName",
                "kubelet",
                fp
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_stay_pending_with_the_scheduler_message() {
    let sim = Sim::with(Config {
        cpu: "2".into(),
        memory: "4Gi".into(),
        ..Config::default()
    });
    sim.pod(
        "metadata: {name: picky}
spec:
  nodeSelector: {disktype: ssd}
  containers: [{name: main, image: busybox, command: ['true']}]",
    );
    let msg = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. \
        preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
    let p = sim.wait("picky", |p| !conditions(p).is_empty()).await;
    assert_eq!(phase(&p), "Pending");
    assert!(p["spec"]["nodeName"].is_null());
    assert_eq!(
        conditions(&p),
        [cond("PodScheduled", "False", "Unschedulable", msg)]
    );
    assert_eq!(
        sim.events("picky"),
        [ev(
            "Warning",
            "FailedScheduling",
            msg,
            "default-scheduler",
            ""
        )]
    );

    sim.pod(
        "metadata: {name: huge}
spec:
  containers:
  - {name: main, image: busybox, command: ['true'], resources: {requests: {cpu: '100', memory: 1Ti}}}",
    );
    let p = sim.wait("huge", |p| !conditions(p).is_empty()).await;
    assert_eq!(
        conditions(&p),
        [cond(
            "PodScheduled",
            "False",
            "Unschedulable",
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_containers_run_in_order_before_the_app_containers() {
    let sim = Sim::new();
    sim.pod(
        "metadata: {name: inits}
spec:
  restartPolicy: Never
  volumes: [{name: w, emptyDir: {}}]
  initContainers:
  - {name: one, image: busybox:1.36, command: [sh, -c, 'echo -n 1 >> /w/order'], volumeMounts: [{name: w, mountPath: /w}]}
  - {name: two, image: busybox:1.36, command: [sh, -c, 'sleep 0.1; echo -n 2 >> /w/order'], volumeMounts: [{name: w, mountPath: /w}]}
  containers:
  - {name: main, image: busybox:1.36, command: [sh, -c, 'echo -n 3 >> /w/order; cat /w/order > /dev/termination-log'], volumeMounts: [{name: w, mountPath: /w}]}",
    );
    let seen = sim.until("inits", is_phase("Succeeded")).await;
    let during = seen
        .iter()
        .map(|(_, p)| p)
        .find(|p| init_container(p, "two")["state"]["running"].is_object())
        .expect("init two ran");
    assert_eq!(
        init_container(during, "one")["state"]["terminated"]["reason"],
        "Completed"
    );
    assert_eq!(waiting_reason(during, "main"), "PodInitializing");
    assert_eq!(
        conditions(during)[1],
        cond(
            "Initialized",
            "False",
            "ContainersNotInitialized",
            "containers with incomplete status: [two]"
        )
    );
    let done = &seen.last().expect("done").1;
    assert_eq!(
        container(done, "main")["state"]["terminated"]["message"],
        "123"
    );
    assert_eq!(
        conditions(done)[1],
        cond("Initialized", "True", "PodCompleted", "")
    );
    assert_eq!(init_container(done, "two")["ready"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_init_container_fails_a_never_restart_pod() {
    let sim = Sim::new();
    sim.pod(
        "metadata: {name: initfail}
spec:
  restartPolicy: Never
  initContainers:
  - {name: setup, image: busybox:1.36, command: [sh, -c, 'exit 7']}
  - {name: later, image: busybox:1.36, command: ['true']}
  containers:
  - {name: main, image: busybox:1.36, command: ['true']}",
    );
    let p = sim.wait("initfail", is_phase("Failed")).await;
    let t = &init_container(&p, "setup")["state"]["terminated"];
    assert_eq!(
        (t["exitCode"].clone(), t["reason"].clone()),
        (json!(7), json!("Error"))
    );
    assert_eq!(
        init_container(&p, "later")["state"]["waiting"]["reason"],
        "PodInitializing"
    );
    assert_eq!(waiting_reason(&p, "main"), "PodInitializing");
    assert_eq!(
        conditions(&p)[1],
        cond(
            "Initialized",
            "False",
            "ContainersNotInitialized",
            "containers with incomplete status: [setup later]"
        )
    );
    assert!(!sim.reasons("initfail").iter().any(|r| r == "Killing"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_deadline_seconds_fails_the_pod() {
    let sim = Sim::new();
    sim.pod(
        r#"metadata: {name: slow}
spec:
  restartPolicy: Never
  activeDeadlineSeconds: 1
  terminationGracePeriodSeconds: 5
  containers: [{name: main, image: busybox:1.36, command: [sh, -c, "trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done"]}]"#,
    );
    sim.wait("slow", is_phase("Running")).await;
    sim.wait_for_log("slow", "main", "ready").await;
    let seen = sim
        .until("slow", |p| {
            container(p, "main")["state"]["terminated"].is_object()
        })
        .await;
    let failed = seen
        .iter()
        .map(|(_, p)| p)
        .find(|p| phase(p) == "Failed")
        .expect("Failed");
    assert_eq!(failed["status"]["reason"], "DeadlineExceeded");
    assert_eq!(
        failed["status"]["message"],
        "Pod was active on the node longer than the specified deadline"
    );
    let last = &seen.last().expect("last").1;
    assert_eq!(phase(last), "Failed");
    assert_eq!(
        container(last, "main")["state"]["terminated"]["exitCode"],
        0
    );
    let events = sim.events("slow");
    assert!(events.contains(&ev(
        "Normal",
        "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline",
        "kubelet",
        ""
    )));
    assert!(events.contains(&ev(
        "Normal",
        "Killing",
        "Stopping container main",
        "kubelet",
        "spec.containers{main}"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_delete_sends_sigterm_then_the_pod_disappears() {
    let sim = Sim::new();
    sim.pod(
        r#"metadata: {name: trap}
spec:
  containers: [{name: main, image: busybox:1.36, command: [sh, -c, "trap 'echo -n bye > /dev/termination-log; exit 0' TERM; echo ready; while true; do sleep 0.05; done"]}]"#,
    );
    sim.wait("trap", is_phase("Running")).await;
    sim.wait_for_log("trap", "main", "ready").await;
    let opts = DeleteOptions {
        grace_period_seconds: Some(10),
        ..DeleteOptions::default()
    };
    sim.store
        .delete(Kind::Pod, NS, "trap", &opts)
        .expect("delete");
    let seen = sim.until("trap", |_| false).await;
    let (last_change, gone) = seen.last().expect("deleted");
    assert_eq!(*last_change, ChangeType::Deleted);
    let t = &container(gone, "main")["state"]["terminated"];
    assert_eq!(
        (t["exitCode"].clone(), t["message"].clone()),
        (json!(0), json!("bye")),
        "{:#?}",
        sim.events("trap")
    );
    assert_eq!(phase(gone), "Succeeded");
    assert!(sim.events("trap").contains(&ev(
        "Normal",
        "Killing",
        "Stopping container main",
        "kubelet",
        "spec.containers{main}"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_follows_when_the_grace_period_runs_out() {
    let sim = Sim::new();
    // PID 1 without a TERM handler ignores SIGTERM, as in a real container.
    sim.pod("metadata: {name: stubborn}\nspec: {containers: [{name: main, image: busybox:1.36, command: [sleep, '1000']}]}");
    sim.wait("stubborn", is_phase("Running")).await;
    let opts = DeleteOptions {
        grace_period_seconds: Some(1),
        ..DeleteOptions::default()
    };
    let started = std::time::Instant::now();
    sim.store
        .delete(Kind::Pod, NS, "stubborn", &opts)
        .expect("delete");
    let seen = sim.until("stubborn", |_| false).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    let (last_change, gone) = seen.last().expect("deleted");
    assert_eq!(*last_change, ChangeType::Deleted);
    let t = &container(gone, "main")["state"]["terminated"];
    assert_eq!(
        (t["exitCode"].clone(), t["reason"].clone()),
        (json!(137), json!("Error"))
    );
    assert_eq!(phase(gone), "Failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eviction_fails_the_pod_with_reason_evicted() {
    let sim = Sim::new();
    sim.pod("metadata: {name: victim}\nspec: {terminationGracePeriodSeconds: 1, containers: [{name: main, image: busybox:1.36, command: [sleep, '1000']}]}");
    sim.wait("victim", is_phase("Running")).await;
    let msg = "The node was low on resource: memory. ";
    assert!(sim.kubelet.evict(NS, "victim", msg).await);
    let p = sim
        .wait("victim", |p| {
            container(p, "main")["state"]["terminated"].is_object()
        })
        .await;
    assert_eq!(phase(&p), "Failed");
    assert_eq!(p["status"]["reason"], "Evicted");
    assert_eq!(p["status"]["message"], msg);
    assert_eq!(
        conditions(&p)[0],
        cond("DisruptionTarget", "True", "TerminationByKubelet", msg)
    );
    assert!(sim
        .events("victim")
        .contains(&ev("Warning", "Evicted", msg, "kubelet", "")));
    assert!(!sim.kubelet.evict(NS, "nobody", msg).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_restarts_with_crash_loop_back_off() {
    let sim = Sim::with(Config {
        crash_loop_backoff: Duration::from_millis(300),
        ..Config::default()
    });
    sim.pod(
        "metadata: {name: crash}
spec:
  restartPolicy: OnFailure
  containers: [{name: main, image: busybox:1.36, command: [sh, -c, 'exit 1']}]",
    );
    let p = sim
        .wait("crash", |p| waiting_reason(p, "main") == "CrashLoopBackOff")
        .await;
    let c = container(&p, "main");
    assert_eq!(c["restartCount"], 1);
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 1);
    let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
    assert_eq!(
        c["state"]["waiting"]["message"],
        format!("back-off 300ms restarting failed container=main pod=crash_default({uid})")
    );
    assert_eq!(phase(&p), "Running");
    let p = sim
        .wait("crash", |p| container(p, "main")["restartCount"] == 2)
        .await;
    assert_eq!(phase(&p), "Running");
    assert!(sim.events("crash").contains(&ev(
        "Warning",
        "BackOff",
        &format!("Back-off restarting failed container main in pod crash_default({uid})"),
        "kubelet",
        "spec.containers{main}"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_sidecars_start_first_keep_running_and_stop_after_the_app() {
    let sim = Sim::new();
    sim.pod(
        r#"metadata: {name: side}
spec:
  restartPolicy: Never
  volumes: [{name: s, emptyDir: {}}]
  initContainers:
  - name: proxy
    image: busybox:1.36
    restartPolicy: Always
    command: [sh, -c, "trap 'exit 0' TERM; echo -n up > /s/proxy; while true; do sleep 0.05; done"]
    volumeMounts: [{name: s, mountPath: /s}]
  containers:
  - name: main
    image: busybox:1.36
    command: [sh, -c, 'while [ ! -s /s/proxy ]; do sleep 0.05; done; cat /s/proxy > /dev/termination-log; sleep 0.2']
    volumeMounts: [{name: s, mountPath: /s}]
"#,
    );
    let seen = sim.until("side", is_phase("Succeeded")).await;
    let both = seen
        .iter()
        .map(|(_, p)| p)
        .find(|p| {
            init_container(p, "proxy")["state"]["running"].is_object()
                && container(p, "main")["state"]["running"].is_object()
        })
        .expect("sidecar and app ran together");
    assert_eq!(phase(both), "Running");
    assert_eq!(
        conditions(both)[1],
        cond("Initialized", "True", "PodCompleted", "")
    );
    assert_eq!(init_container(both, "proxy")["ready"], true);
    let done = &seen.last().expect("done").1;
    assert_eq!(
        container(done, "main")["state"]["terminated"]["message"],
        "up"
    );
    assert_eq!(
        init_container(done, "proxy")["state"]["terminated"]["exitCode"],
        0
    );
    assert!(sim.events("side").contains(&ev(
        "Normal",
        "Killing",
        "Stopping container proxy",
        "kubelet",
        "spec.initContainers{proxy}"
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_volume_claims_leave_the_pod_pending() {
    let sim = Sim::new();
    sim.pod(
        "metadata: {name: pvc}
spec:
  volumes: [{name: data, persistentVolumeClaim: {claimName: data}}]
  containers: [{name: main, image: busybox, command: ['true']}]",
    );
    let p = sim.wait("pvc", |p| !conditions(p).is_empty()).await;
    assert_eq!(
        conditions(&p),
        [cond(
            "PodScheduled",
            "False",
            "Unschedulable",
            "0/1 nodes are available: persistentvolumeclaim \"data\" not found. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )]
    );
}

// ---- Over HTTPS: the API server with this kubelet behind it, driven by kube-rs ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_sees_the_lifecycle_logs_exec_and_the_node() {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, AttachParams, LogParams, PostParams};
    use kube::runtime::wait::{await_condition, conditions};
    use tokio::io::AsyncReadExt;

    // The simulator starts this kubelet itself, wired to its logs/exec endpoints and
    // with its address and token for in-cluster clients.
    let sim = podrun::sim::Sim::start(podrun::sim::Config::default())
        .await
        .expect("sim starts");
    let client = sim.client().await.expect("client");
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes
        .get("podrun-sim")
        .await
        .expect("the kubelet registered its node");
    let labels = node.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("kubernetes.io/os").map(String::as_str),
        Some("linux")
    );

    let pods: Api<Pod> = Api::namespaced(client, NS);
    let job: Pod = serde_yaml_ng::from_str(
        "metadata: {name: job}
spec:
  restartPolicy: Never
  containers:
  - {name: base, image: busybox:1.36, command: [sh, -c, 'echo one; echo two'], env: [{name: X, value: '1'}]}",
    )
    .expect("pod yaml");
    pods.create(&PostParams::default(), &job)
        .await
        .expect("create");
    let p = tokio::time::timeout(
        Duration::from_secs(20),
        await_condition(pods.clone(), "job", |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Succeeded")
        }),
    )
    .await
    .expect("in time")
    .expect("watch")
    .expect("pod");
    let cs = &p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()[0];
    assert_eq!(
        cs.state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(0)
    );
    let logs = pods.logs("job", &LogParams::default()).await.expect("logs");
    assert_eq!(logs, "one\ntwo\n");

    let svc: Pod = serde_yaml_ng::from_str(
        "metadata: {name: svc}
spec:
  containers:
  - {name: base, image: busybox:1.36, command: [sh, -c, 'echo ready; exec sleep 600'], env: [{name: GREETING, value: hi}]}",
    )
    .expect("pod yaml");
    pods.create(&PostParams::default(), &svc)
        .await
        .expect("create");
    tokio::time::timeout(
        Duration::from_secs(20),
        await_condition(pods.clone(), "svc", conditions::is_pod_running()),
    )
    .await
    .expect("in time")
    .expect("watch");
    // Exec once the entrypoint runs (the runtime's start returns as PID 1 appears).
    let mut lines = pods
        .log_stream(
            "svc",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("log stream")
        .lines();
    use futures::AsyncBufReadExt;
    let first = futures::TryStreamExt::try_next(&mut lines)
        .await
        .expect("log line");
    assert_eq!(first.as_deref(), Some("ready"));
    let mut exec = pods
        .exec(
            "svc",
            ["sh", "-c", "echo $GREETING $HOSTNAME; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace"],
            &AttachParams::default().stderr(false),
        )
        .await
        .expect("exec");
    let mut out = String::new();
    exec.stdout()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    let status = exec.take_status().expect("status").await;
    assert_eq!(out, "hi svc\ndefault", "{status:?}");
    exec.join().await.expect("join");

    // In-cluster access: the kubernetes service variables, token and CA reach the sim.
    let script = "SA=/var/run/secrets/kubernetes.io/serviceaccount; \
        curl -sf --cacert $SA/ca.crt -H \"Authorization: Bearer $(cat $SA/token)\" \
        https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/$(cat $SA/namespace)/pods/svc \
        | grep -o '\"phase\": *\"Running\"'";
    let mut exec = pods
        .exec(
            "svc",
            ["sh", "-c", script],
            &AttachParams::default().stderr(false),
        )
        .await
        .expect("exec");
    let mut out = String::new();
    exec.stdout()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    let status = exec.take_status().expect("status").await;
    assert_eq!(
        out.replace(' ', ""),
        "\"phase\":\"Running\"\n",
        "{status:?}"
    );
    exec.join().await.expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_grace_zero_kills_at_once() {
    let sim = Sim::new();
    sim.pod("metadata: {name: now}\nspec: {containers: [{name: main, image: busybox:1.36, command: [sleep, '1000']}]}");
    sim.wait("now", is_phase("Running")).await;
    let run = sim
        .kubelet
        .registry()
        .lookup(NS, "now", "main", false)
        .expect("registered");
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        ..DeleteOptions::default()
    };
    sim.store
        .delete(Kind::Pod, NS, "now", &opts)
        .expect("delete");
    let exit = tokio::time::timeout(Duration::from_secs(5), run.container.wait())
        .await
        .expect("the process is killed at once");
    assert_eq!(exit.code, 137);
    assert!(sim.reasons("now").contains(&"Killing".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_pod_that_never_started_reports_unknown_container_status() {
    let sim = Sim::with(Config {
        image_pull_failures: vec!["*missing*".into()],
        ..Config::default()
    });
    sim.pod("metadata: {name: stuck}\nspec: {containers: [{name: main, image: 'missing:1', command: ['true']}]}");
    sim.wait("stuck", |p| waiting_reason(p, "main") == "ErrImagePull")
        .await;
    sim.store
        .delete(Kind::Pod, NS, "stuck", &DeleteOptions::default())
        .expect("delete");
    let seen = sim.until("stuck", |_| false).await;
    let (change, last) = seen.last().expect("deleted");
    assert_eq!(*change, ChangeType::Deleted);
    assert_eq!(phase(last), "Failed");
    let t = &container(last, "main")["state"]["terminated"];
    assert_eq!(
        (
            t["exitCode"].clone(),
            t["reason"].clone(),
            t["message"].clone()
        ),
        (
            json!(137),
            json!("ContainerStatusUnknown"),
            json!("The container could not be located when the pod was terminated")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policy_always_restarts_completed_containers() {
    let sim = Sim::with(Config {
        crash_loop_backoff: Duration::from_millis(100),
        ..Config::default()
    });
    sim.pod("metadata: {name: again}\nspec: {containers: [{name: main, image: busybox:1.36, command: [sh, -c, 'sleep 0.1']}]}");
    let p = sim
        .wait("again", |p| container(p, "main")["restartCount"] == 2)
        .await;
    assert_eq!(phase(&p), "Running");
    let last = &container(&p, "main")["lastState"]["terminated"];
    assert_eq!(
        (last["exitCode"].clone(), last["reason"].clone()),
        (json!(0), json!("Completed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_of_bound_pods_count_and_freed_resources_schedule_waiting_pods() {
    let sim = Sim::with(Config {
        cpu: "2".into(),
        ..Config::default()
    });
    let pod = |name: &str| {
        format!(
            "metadata: {{name: {name}}}
spec:
  containers:
  - {{name: main, image: busybox:1.36, command: [sleep, '1000'], resources: {{requests: {{cpu: 1500m}}}}}}"
        )
    };
    sim.pod(&pod("first"));
    sim.pod(&pod("second"));
    let p = sim.wait("second", |p| !conditions(p).is_empty()).await;
    assert_eq!(
        conditions(&p),
        [cond(
            "PodScheduled",
            "False",
            "Unschedulable",
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        )]
    );
    sim.wait("first", is_phase("Running")).await;
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        ..DeleteOptions::default()
    };
    sim.store
        .delete(Kind::Pod, NS, "first", &opts)
        .expect("delete");
    let p = sim.wait("second", is_phase("Running")).await;
    assert_eq!(p["spec"]["nodeName"], "podrun-sim");
    assert_eq!(
        sim.reasons("second"),
        [
            "FailedScheduling",
            "Scheduled",
            "Pulled",
            "Created",
            "Started"
        ]
    );
}
