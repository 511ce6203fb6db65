//! The simulator's API over real HTTPS with kube-rs: discovery, CRUD with the API
//! server's defaults and errors, list/watch semantics, patches, deletes, selectors, and
//! every request fault kind. Each test starts its own simulator on an ephemeral port.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Pod, Secret, ServiceAccount};
use kube::api::{
    Api, AttachParams, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::Client;
use podrun::sim::faults::{Fault, FaultKind};
use podrun::sim::{Config, Sim};

/// The API server alone: pods stay unscheduled and Pending, deletes are immediate.
fn api_only() -> Config {
    Config {
        kubelet: None,
        ..Config::default()
    }
}
use serde_json::{json, Value};

async fn start() -> (Sim, Client) {
    let sim = Sim::start(api_only()).await.expect("sim starts");
    let client = sim.client().await.expect("client from kubeconfig");
    (sim, client)
}

/// A client that does not retry 429/503/504 itself (kube-rs does by default).
async fn no_retry_client(sim: &Sim) -> Client {
    let kc = kube::config::Kubeconfig::read_from(sim.kubeconfig_path()).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    cfg.default_retry = false;
    Client::try_from(cfg).expect("client")
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "spec": {"containers": [{"name": "base", "image": "busybox", "command": ["sleep", "60"]}]}
    }))
    .expect("pod literal")
}

fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn kubeconfig_is_private_and_token_required() {
    use std::os::unix::fs::PermissionsExt;
    let (sim, client) = start().await;
    let mode = std::fs::metadata(sim.kubeconfig_path())
        .expect("kubeconfig")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(sim.kubeconfig_path()).expect("read");
    assert!(text.contains(&sim.base_url()) && text.contains("namespace: default"));
    assert!(sim.base_url().starts_with("https://127.0.0.1:"));
    // With the token: fine.
    let v = client.apiserver_version().await.expect("version");
    assert_eq!(v.major, "1");
    // Without: 401 Status.
    let mut cfg = kube::Config::new(sim.base_url().parse().expect("url"));
    cfg.root_cert = Some(vec![pem_to_der(sim.ca_pem())]);
    let anon = Client::try_from(cfg).expect("client");
    let err = Api::<Pod>::namespaced(anon, "default")
        .list(&ListParams::default())
        .await
        .expect_err("401");
    let s = api_err(err);
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    // A wrong token is refused the same way.
    let mut cfg = kube::Config::new(sim.base_url().parse().expect("url"));
    cfg.root_cert = Some(vec![pem_to_der(sim.ca_pem())]);
    cfg.auth_info.token = Some(format!("{}x", sim.token()).into());
    let wrong = Client::try_from(cfg).expect("client");
    let err = wrong.apiserver_version().await.expect_err("401");
    assert_eq!(api_err(err).code, 401);
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("pem")
}

#[tokio::test]
async fn discovery_lists_core_resources() {
    let (_sim, client) = start().await;
    let list = client.list_core_api_resources("v1").await.expect("api/v1");
    let pods = list
        .resources
        .iter()
        .find(|r| r.name == "pods")
        .expect("pods");
    assert!(pods.namespaced);
    assert_eq!(pods.short_names.as_deref(), Some(&["po".to_string()][..]));
    assert!(pods.verbs.contains(&"watch".to_string()));
    for sub in [
        "pods/log",
        "pods/exec",
        "pods/status",
        "pods/eviction",
        "namespaces",
        "events",
        "secrets",
        "configmaps",
        "serviceaccounts",
    ] {
        assert!(
            list.resources.iter().any(|r| r.name == sub),
            "{sub} missing"
        );
    }
    let groups = client.list_api_groups().await.expect("apis");
    assert!(groups.groups.is_empty());
}

#[tokio::test]
async fn pod_create_applies_api_server_defaults() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let p = pods
        .create(&PostParams::default(), &pod("web"))
        .await
        .expect("create");
    let spec = p.spec.as_ref().expect("spec");
    let c = &spec.containers[0];
    assert_eq!(spec.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert_eq!(spec.termination_grace_period_seconds, Some(30));
    assert_eq!(spec.enable_service_links, Some(true));
    assert_eq!(spec.priority, Some(0));
    assert_eq!(
        spec.preemption_policy.as_deref(),
        Some("PreemptLowerPriority")
    );
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    let tol = spec.tolerations.as_ref().expect("tolerations");
    assert_eq!(tol.len(), 2);
    assert!(tol
        .iter()
        .all(|t| t.toleration_seconds == Some(300) && t.effect.as_deref() == Some("NoExecute")));
    let vol = &spec.volumes.as_ref().expect("volumes")[0];
    assert!(vol.name.starts_with("kube-api-access-"));
    let mount = &c.volume_mounts.as_ref().expect("mounts")[0];
    assert_eq!(
        mount.mount_path,
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    let status = p.status.as_ref().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
    assert_eq!(p.metadata.generation, Some(1));
    assert!(p.metadata.uid.is_some() && p.metadata.creation_timestamp.is_some());
}

#[tokio::test]
async fn create_errors_match_the_api_server() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("dup"))
        .await
        .expect("create");
    let s = api_err(
        pods.create(&PostParams::default(), &pod("dup"))
            .await
            .expect_err("409"),
    );
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (409, "AlreadyExists", "pods \"dup\" already exists")
    );

    let missing: Api<Pod> = Api::namespaced(client.clone(), "nope");
    let s = api_err(
        missing
            .create(&PostParams::default(), &pod("x"))
            .await
            .expect_err("404"),
    );
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (404, "NotFound", "namespaces \"nope\" not found")
    );

    let mut p = pod("sa");
    p.spec.as_mut().expect("spec").service_account_name = Some("foobar".into());
    let s = api_err(
        pods.create(&PostParams::default(), &p)
            .await
            .expect_err("403"),
    );
    assert_eq!(s.code, 403);
    assert_eq!(s.message, "pods \"sa\" is forbidden: error looking up service account default/foobar: serviceaccount \"foobar\" not found");

    let s = api_err(
        pods.create(&PostParams::default(), &pod("Bad_Name"))
            .await
            .expect_err("422"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(s.message.starts_with("Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", s.message);

    let no_image: Pod = serde_json::from_value(
        json!({"metadata": {"name": "ni"}, "spec": {"containers": [{"name": "c"}]}}),
    )
    .expect("pod");
    let s = api_err(
        pods.create(&PostParams::default(), &no_image)
            .await
            .expect_err("422"),
    );
    assert_eq!(
        s.message,
        "Pod \"ni\" is invalid: spec.containers[0].image: Required value"
    );
    let causes = s.details.expect("details").causes;
    assert_eq!(causes[0].field, "spec.containers[0].image");
    assert_eq!(causes[0].reason, "FieldValueRequired");

    let s = api_err(pods.get("ghost").await.expect_err("404"));
    assert_eq!(
        (s.code, s.message.as_str()),
        (404, "pods \"ghost\" not found")
    );

    let gen: Pod = serde_json::from_value(json!({"metadata": {"generateName": "task-"}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}})).expect("pod");
    let p = pods
        .create(&PostParams::default(), &gen)
        .await
        .expect("generateName");
    let name = p.metadata.name.expect("name");
    assert!(name.starts_with("task-") && name.len() == 10, "{name}");
    assert_eq!(
        p.spec.expect("spec").containers[0]
            .image_pull_policy
            .as_deref(),
        Some("IfNotPresent")
    );
}

/// Raw HTTPS requests for what kube-rs cannot send (malformed bodies, odd methods).
async fn raw(sim: &Sim, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
    let client = sim.client().await.expect("client");
    let req = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ct)
        .body(body.as_bytes().to_vec())
        .expect("request");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("send");
    let code = resp.status().as_u16();
    let bytes = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), usize::MAX)
        .await
        .expect("body");
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_bodies_and_unknown_paths_get_status_objects() {
    let (sim, _client) = start().await;
    let (code, s) = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/default/pods",
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(s["kind"], "Status");
    let (code, s) = raw(&sim, "GET", "/api/v1/services", "application/json", "").await;
    assert_eq!((code, s["reason"].as_str()), (404, Some("NotFound")));
    let (code, s) = raw(
        &sim,
        "PUT",
        "/api/v1/namespaces/default/pods",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(
        (code, s["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
    let (code, s) = raw(
        &sim,
        "PATCH",
        "/api/v1/namespaces/default",
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(
        (code, s["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
}

#[tokio::test]
async fn update_conflicts_and_patches() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let p = pods
        .create(&PostParams::default(), &pod("p"))
        .await
        .expect("create");

    // Merge patch on labels; strategic patch on a container image; JSON patch on annotations.
    let merged = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "fe"}}})),
        )
        .await
        .expect("merge");
    assert_eq!(
        merged
            .metadata
            .labels
            .as_ref()
            .expect("labels")
            .get("tier")
            .map(String::as_str),
        Some("fe")
    );
    assert_eq!(
        merged.metadata.generation,
        Some(1),
        "metadata changes keep generation"
    );
    let smp = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "base", "image": "busybox:1.36"}]}}),
            ),
        )
        .await
        .expect("strategic");
    assert_eq!(
        smp.spec.as_ref().expect("spec").containers[0]
            .image
            .as_deref(),
        Some("busybox:1.36")
    );
    assert_eq!(
        smp.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    let jp: json_patch::Patch = serde_json::from_value(
        json!([{"op": "add", "path": "/metadata/annotations", "value": {"a": "b"}}]),
    )
    .expect("patch");
    let j = pods
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(jp))
        .await
        .expect("json patch");
    assert_eq!(
        j.metadata
            .annotations
            .as_ref()
            .expect("ann")
            .get("a")
            .map(String::as_str),
        Some("b")
    );

    // Illegal spec change: 422 with the API server's text.
    let s = api_err(
        pods.patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"restartPolicy": "Never"}})),
        )
        .await
        .expect_err("immutable"),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message
            .contains("spec: Forbidden: pod updates may not change fields other than"),
        "{}",
        s.message
    );

    // Stale resourceVersion on replace: 409 Conflict.
    let mut stale = p.clone();
    stale.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
    let s = api_err(
        pods.replace("p", &PostParams::default(), &stale)
            .await
            .expect_err("409"),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(s.message, "Operation cannot be fulfilled on pods \"p\": the object has been modified; please apply your changes to the latest version and try again");

    // Status subresource: only status changes.
    let st = pods
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"phase": "Running"}, "metadata": {"labels": {"ignored": "yes"}}}),
            ),
        )
        .await
        .expect("status patch");
    assert_eq!(
        st.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    assert!(st
        .metadata
        .labels
        .as_ref()
        .expect("labels")
        .get("ignored")
        .is_none());
    let got = pods.get_status("p").await.expect("get status");
    assert_eq!(got.status.and_then(|s| s.phase).as_deref(), Some("Running"));
}

#[tokio::test]
async fn delete_is_graceful_for_scheduled_pods() {
    let (sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    // Unscheduled: removed at once.
    pods.create(&PostParams::default(), &pod("now"))
        .await
        .expect("create");
    pods.delete("now", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(api_err(pods.get("now").await.expect_err("gone")).code, 404);

    // Scheduled: deletionTimestamp + grace, until the kubelet finalizes.
    let p = pods
        .create(&PostParams::default(), &pod("later"))
        .await
        .expect("create");
    let uid = p.metadata.uid.clone().expect("uid");
    sim.store()
        .bind_pod("default", "later", &uid, "sim-node")
        .expect("bind");
    let d = pods
        .delete(
            "later",
            &DeleteParams {
                grace_period_seconds: Some(7),
                ..DeleteParams::default()
            },
        )
        .await
        .expect("delete");
    let marked = d.left().expect("graceful delete returns the pod");
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(7));
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(pods.get("later").await.is_ok());
    assert!(sim
        .store()
        .finalize_pod_delete("default", "later", &uid)
        .expect("finalize"));
    assert_eq!(
        api_err(pods.get("later").await.expect_err("gone")).code,
        404
    );
    let s = api_err(
        pods.delete("later", &DeleteParams::default())
            .await
            .expect_err("404"),
    );
    assert_eq!(s.message, "pods \"later\" not found");

    // Other kinds return a Success Status.
    let cms: Api<ConfigMap> = Api::namespaced(sim.client().await.expect("client"), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}}))
            .expect("cm"),
    )
    .await
    .expect("cm");
    let st = cms
        .delete("c", &DeleteParams::default())
        .await
        .expect("delete")
        .right()
        .expect("status");
    assert_eq!(
        st.status,
        Some(kube::core::response::StatusSummary::Success)
    );
}

#[tokio::test]
async fn list_selectors_and_pagination() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (n, app) in [("a", "web"), ("b", "db"), ("c", "web")] {
        let mut p = pod(n);
        p.metadata.labels = Some([("app".to_string(), app.to_string())].into());
        pods.create(&PostParams::default(), &p)
            .await
            .expect("create");
    }
    let names = |l: kube::core::ObjectList<Pod>| {
        l.items
            .into_iter()
            .map(|p| p.metadata.name.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app=web"))
                .await
                .expect("list")
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app!=web"))
                .await
                .expect("list")
        ),
        ["b"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app in (db,x)"))
                .await
                .expect("list")
        ),
        ["b"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("app notin (db)"))
                .await
                .expect("list")
        ),
        ["a", "c"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().labels("!app"))
                .await
                .expect("list")
        )
        .len(),
        0
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .expect("list")
        ),
        ["b"]
    );
    assert_eq!(
        names(
            pods.list(&ListParams::default().fields("status.phase=Pending"))
                .await
                .expect("list")
        )
        .len(),
        3
    );
    let s = api_err(
        pods.list(&ListParams::default().fields("spec.bogus=1"))
            .await
            .expect_err("400"),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (400, "field label not supported: spec.bogus")
    );

    let page = pods
        .list(&ListParams::default().limit(2))
        .await
        .expect("page 1");
    let token = page.metadata.continue_.clone().expect("continue");
    assert_eq!(page.metadata.remaining_item_count, Some(1));
    assert_eq!(names(page), ["a", "b"]);
    let rest = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    assert!(rest.metadata.continue_.is_none());
    assert_eq!(names(rest), ["c"]);

    // Cluster-wide list.
    let all: Api<Pod> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default())
            .await
            .expect("all")
            .items
            .len(),
        3
    );
    let ns: Api<Namespace> = Api::all(client);
    let nsl = ns.list(&ListParams::default()).await.expect("ns");
    assert!(nsl
        .items
        .iter()
        .any(|n| n.metadata.name.as_deref() == Some("kube-system")));
}

#[tokio::test]
async fn resource_versions_are_monotonic() {
    let (_sim, client) = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut last = 0u64;
    for i in 0..5 {
        let c = cms
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}}))
                    .expect("cm"),
            )
            .await
            .expect("create");
        let rv: u64 = c
            .metadata
            .resource_version
            .expect("rv")
            .parse()
            .expect("numeric rv");
        assert!(rv > last);
        last = rv;
    }
    let l = cms.list(&ListParams::default()).await.expect("list");
    let list_rv: u64 = l
        .metadata
        .resource_version
        .expect("rv")
        .parse()
        .expect("numeric");
    assert!(list_rv >= last);
}

#[tokio::test]
async fn watch_streams_replays_and_expires() {
    let (sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let list = pods.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");
    pods.create(&PostParams::default(), &pod("w1"))
        .await
        .expect("create");
    pods.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .expect("patch");
    pods.delete("w1", &DeleteParams::default())
        .await
        .expect("delete");

    // Replay from the list's resourceVersion.
    let mut s = pods
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut kinds = Vec::new();
    while let Some(ev) = s.try_next().await.expect("event") {
        kinds.push(match ev {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        });
        if kinds.len() == 3 {
            break;
        }
    }
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);

    // Too old: an ERROR event carrying 410 Expired.
    sim.store().compact();
    let mut s = pods
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    match s.try_next().await.expect("event") {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version: "),
                "{}",
                e.message
            );
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_selector_transitions_and_bookmarks() {
    let sim = Sim::start(Config {
        kubelet: None,
        bookmark_interval: Duration::from_millis(200),
        ..Config::default()
    })
    .await
    .expect("sim");
    let client = sim.client().await.expect("client");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let wp = WatchParams::default().labels("app=demo").timeout(10);
    let wp = WatchParams {
        bookmarks: true,
        ..wp
    };
    let mut s = pods.watch(&wp, &rv).await.expect("watch").boxed();
    pods.create(&PostParams::default(), &pod("sel"))
        .await
        .expect("create");
    // Relabel out of the selector: the watcher sees DELETED.
    pods.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .expect("patch");
    let mut seen = Vec::new();
    let mut bookmark = false;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(5), s.try_next())
        .await
        .expect("in time")
        .expect("event")
    {
        match ev {
            WatchEvent::Added(_) => seen.push("ADDED"),
            WatchEvent::Deleted(_) => seen.push("DELETED"),
            WatchEvent::Modified(_) => seen.push("MODIFIED"),
            WatchEvent::Bookmark(b) => {
                assert!(!b.metadata.resource_version.is_empty());
                bookmark = true;
            }
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
        if seen.len() == 2 && bookmark {
            break;
        }
    }
    assert_eq!(seen, ["ADDED", "DELETED"]);
}

#[tokio::test]
async fn kube_runtime_watcher_sees_lifecycle() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for strategy in [
        watcher::InitialListStrategy::ListWatch,
        watcher::InitialListStrategy::StreamingList,
    ] {
        let name = format!(
            "rt-{}",
            matches!(strategy, watcher::InitialListStrategy::StreamingList) as u8
        );
        let cfg = watcher::Config {
            initial_list_strategy: strategy,
            ..watcher::Config::default()
        };
        let mut stream = watcher(pods.clone(), cfg).boxed();
        let mut created = false;
        let mut saw_apply = false;
        loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
                .await
                .expect("in time")
                .expect("no watcher error")
                .expect("stream open");
            match ev {
                watcher::Event::InitDone if !created => {
                    pods.create(&PostParams::default(), &pod(&name))
                        .await
                        .expect("create");
                    created = true;
                }
                watcher::Event::Apply(p) if p.metadata.name.as_deref() == Some(name.as_str()) => {
                    saw_apply = true;
                    pods.delete(&name, &DeleteParams::default())
                        .await
                        .expect("delete");
                }
                watcher::Event::Delete(p) if p.metadata.name.as_deref() == Some(name.as_str()) => {
                    break
                }
                _ => {}
            }
        }
        assert!(saw_apply);
    }
}

#[tokio::test]
async fn send_initial_events_requires_bookmarks() {
    let (sim, _client) = start().await;
    let (code, s) = raw(
        &sim,
        "GET",
        "/api/v1/namespaces/default/pods?watch=true&sendInitialEvents=true",
        "application/json",
        "",
    )
    .await;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    assert!(s["message"]
        .as_str()
        .unwrap_or_default()
        .contains("sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"));
}

#[tokio::test]
async fn namespaces_secrets_configmaps_serviceaccounts_events() {
    let (sim, client) = start().await;
    let ns: Api<Namespace> = Api::all(client.clone());
    let created = ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "team", "labels": {"env": "dev"}}}),
            )
            .expect("ns"),
        )
        .await
        .expect("create ns");
    let labels = created.metadata.labels.expect("labels");
    assert_eq!(
        labels
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some("team")
    );
    assert_eq!(
        created.status.and_then(|s| s.phase).as_deref(),
        Some("Active")
    );
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "team");
    sas.get("default")
        .await
        .expect("default SA exists in new namespace");

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team");
    let s = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "creds"}, "stringData": {"user": "me"}}),
            )
            .expect("secret"),
        )
        .await
        .expect("secret");
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        s.data.expect("data").get("user").map(|b| b.0.clone()),
        Some(b"me".to_vec())
    );
    assert!(s.string_data.is_none());
    secrets
        .delete("creds", &DeleteParams::default())
        .await
        .expect("delete secret");
    assert_eq!(
        api_err(secrets.get("creds").await.expect_err("gone")).message,
        "secrets \"creds\" not found"
    );

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    assert!(cms
        .get("kube-root-ca.crt")
        .await
        .expect("root ca")
        .data
        .expect("data")
        .contains_key("ca.crt"));

    // Events recorded through the store show up over HTTP, selectable by involvedObject.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team");
    let p = pods
        .create(&PostParams::default(), &pod("evp"))
        .await
        .expect("pod");
    let pv = serde_json::to_value(&p).expect("json");
    let r = podrun::sim::store::ObjectRef::pod(&pv);
    sim.store()
        .record_event(podrun::sim::store::EventRecord::normal(
            &r,
            "Scheduled",
            "Successfully assigned team/evp to sim-node",
        ))
        .expect("event");
    let events: Api<Event> = Api::namespaced(client.clone(), "team");
    let l = events
        .list(&ListParams::default().fields("involvedObject.name=evp"))
        .await
        .expect("events");
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.items[0].reason.as_deref(), Some("Scheduled"));
    assert!(events
        .list(&ListParams::default().fields("involvedObject.name=other"))
        .await
        .expect("events")
        .items
        .is_empty());

    // Deleting the namespace removes it with its contents (pods unscheduled: at once).
    ns.delete("team", &DeleteParams::default())
        .await
        .expect("delete ns");
    assert_eq!(api_err(ns.get("team").await.expect_err("gone")).code, 404);
}

#[tokio::test]
async fn eviction_deletes_with_disruption_target() {
    let (sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let p = pods
        .create(&PostParams::default(), &pod("ev"))
        .await
        .expect("create");
    sim.store()
        .bind_pod(
            "default",
            "ev",
            p.metadata.uid.as_deref().expect("uid"),
            "sim-node",
        )
        .expect("bind");
    pods.evict("ev", &Default::default()).await.expect("evict");
    let p = pods.get("ev").await.expect("still terminating");
    assert!(p.metadata.deletion_timestamp.is_some());
    let cond = p.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(cond
        .iter()
        .any(|c| c.type_ == "DisruptionTarget"
            && c.reason.as_deref() == Some("EvictionByEvictionAPI")));
}

#[tokio::test]
async fn status_faults_are_answered_and_counted() {
    let (sim, retrying) = start().await;
    let pods: Api<Pod> = Api::namespaced(no_retry_client(&sim).await, "default");
    for code in [429u16, 500, 503, 504] {
        sim.faults().add(
            Fault::new(FaultKind::Status {
                code,
                retry_after: 2,
            })
            .verb("list")
            .path("/api/v1/namespaces/*/pods")
            .times(1),
        );
        let s = api_err(pods.list(&ListParams::default()).await.expect_err("fault"));
        assert_eq!(s.code, code);
        // Only the next one: the following list succeeds.
        pods.list(&ListParams::default())
            .await
            .expect("fault consumed");
        assert_eq!(sim.fault_counts().get(&format!("status_{code}")), Some(&1));
    }
    // A fraction of 0 never fires.
    sim.faults().add(
        Fault::new(FaultKind::Status {
            code: 500,
            retry_after: 1,
        })
        .fraction(0.0),
    );
    pods.list(&ListParams::default()).await.expect("fraction 0");
    sim.faults().clear();
    let counts = sim.request_counts();
    assert_eq!(counts.get("list pods"), Some(&9));
    // kube-rs retries a 503 by itself and succeeds; the fault still happened.
    sim.faults().add(
        Fault::new(FaultKind::Status {
            code: 503,
            retry_after: 0,
        })
        .times(1),
    );
    Api::<Pod>::namespaced(retrying, "default")
        .list(&ListParams::default())
        .await
        .expect("retried");
    assert_eq!(sim.fault_counts().get("status_503"), Some(&2));
}

#[tokio::test]
async fn retry_after_header_on_429() {
    let (sim, _client) = start().await;
    sim.faults().add(
        Fault::new(FaultKind::Status {
            code: 429,
            retry_after: 3,
        })
        .times(1),
    );
    let client = no_retry_client(&sim).await;
    let req = axum::http::Request::get("/api/v1/namespaces/default/pods")
        .body(Vec::new())
        .expect("req");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(
        resp.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("3")
    );
}

#[tokio::test]
async fn delay_hang_and_dropped_create() {
    let (sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    sim.faults().add(
        Fault::new(FaultKind::Delay(Duration::from_millis(300)))
            .verb("get")
            .times(1),
    );
    let t = std::time::Instant::now();
    assert_eq!(api_err(pods.get("x").await.expect_err("404")).code, 404);
    assert!(t.elapsed() >= Duration::from_millis(300));

    sim.faults().add(
        Fault::new(FaultKind::Hang(Duration::from_millis(200)))
            .verb("list")
            .times(1),
    );
    let err = pods
        .list(&ListParams::default())
        .await
        .expect_err("connection closed");
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");

    sim.faults()
        .add(Fault::new(FaultKind::DropResponse).verb("create").times(1));
    let err = pods
        .create(&PostParams::default(), &pod("lost"))
        .await
        .expect_err("response lost");
    assert!(!matches!(err, kube::Error::Api(_)), "{err:?}");
    // ...but the pod was created.
    let fresh: Api<Pod> = Api::namespaced(sim.client().await.expect("client"), "default");
    fresh
        .get("lost")
        .await
        .expect("created despite the lost response");
    let counts = sim.fault_counts();
    assert_eq!(
        (
            counts.get("delay"),
            counts.get("hang"),
            counts.get("drop_response")
        ),
        (Some(&1), Some(&1), Some(&1))
    );
}

#[tokio::test]
async fn close_watch_fault_after_events_and_time() {
    let (sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    for n in ["a", "b", "c"] {
        pods.create(&PostParams::default(), &pod(n))
            .await
            .expect("create");
    }
    sim.faults().add(
        Fault::new(FaultKind::CloseWatch {
            after_events: Some(2),
            after: None,
        })
        .times(1),
    );
    let s = pods
        .watch(&WatchParams::default().timeout(30), "0")
        .await
        .expect("watch");
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(5), s.collect::<Vec<_>>())
        .await
        .expect("closed early");
    assert_eq!(got.len(), 2);

    sim.faults().add(
        Fault::new(FaultKind::CloseWatch {
            after_events: None,
            after: Some(Duration::from_millis(300)),
        })
        .times(1),
    );
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let s = pods
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .expect("watch");
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(5), s.collect::<Vec<_>>())
        .await
        .expect("closed by time");
    assert!(got.is_empty());
    assert_eq!(sim.fault_counts().get("close_watch"), Some(&2));
}

#[tokio::test]
async fn watch_timeout_seconds_ends_the_stream() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let t = std::time::Instant::now();
    let s = pods
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .expect("watch");
    let got: Vec<_> = tokio::time::timeout(Duration::from_secs(5), s.collect::<Vec<_>>())
        .await
        .expect("ends");
    assert!(got.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(900));
}

// ---- Logs and exec over HTTPS, with containers started on the runtime by the test ----
// (the process kubelet does this for real pods; here the test plays the kubelet's part)

#[path = "sim_api/runtime_pod.rs"]
mod runtime_pod;
use runtime_pod::with_running_pod;

#[tokio::test]
async fn logs_over_https_with_options_and_faults() {
    use futures::AsyncBufReadExt;
    let (sim, pods, _rt, _dir) =
        with_running_pod("lg", "echo alpha; echo beta; sleep 1; echo gamma").await;
    let follow = pods
        .log_stream(
            "lg",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("follow");
    let lines: Vec<String> =
        tokio::time::timeout(Duration::from_secs(15), follow.lines().try_collect())
            .await
            .expect("follow ends when the container exits")
            .expect("lines");
    assert_eq!(lines, ["alpha", "beta", "gamma"]);
    assert_eq!(
        pods.logs("lg", &LogParams::default()).await.expect("logs"),
        "alpha\nbeta\ngamma\n"
    );
    assert_eq!(
        pods.logs(
            "lg",
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            }
        )
        .await
        .expect("tail"),
        "gamma\n"
    );
    assert_eq!(
        pods.logs(
            "lg",
            &LogParams {
                limit_bytes: Some(3),
                ..LogParams::default()
            }
        )
        .await
        .expect("limit"),
        "alp"
    );
    let ts = pods
        .logs(
            "lg",
            &LogParams {
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("timestamps");
    for line in ts.lines() {
        let (stamp, _) = line.split_once(' ').expect("timestamp prefix");
        assert!(
            stamp.parse::<jiff::Timestamp>().is_ok() && stamp.len() == 30,
            "{stamp}"
        );
    }
    let s = api_err(
        pods.logs(
            "lg",
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .expect_err("no previous"),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (
            400,
            "previous terminated container \"base\" in pod \"lg\" not found"
        )
    );
    let s = api_err(
        pods.logs(
            "lg",
            &LogParams {
                container: Some("nope".into()),
                ..LogParams::default()
            },
        )
        .await
        .expect_err("bad container"),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (400, "container nope is not valid for pod lg")
    );

    // A clean cut ends the response at the cut point.
    sim.faults().add(
        Fault::new(FaultKind::CutLog {
            after_lines: Some(2),
            after_bytes: None,
            clean: true,
        })
        .times(1),
    );
    assert_eq!(
        pods.logs("lg", &LogParams::default())
            .await
            .expect("cut lines"),
        "alpha\nbeta\n"
    );
    sim.faults().add(
        Fault::new(FaultKind::CutLog {
            after_lines: None,
            after_bytes: Some(8),
            clean: true,
        })
        .times(1),
    );
    assert_eq!(
        pods.logs("lg", &LogParams::default())
            .await
            .expect("cut bytes"),
        "alpha\nbe"
    );
    assert_eq!(sim.fault_counts().get("cut_log"), Some(&2));
    // A cut that a stream never reaches is not used up; the default cut aborts the
    // connection mid-response, which a client sees as an error, not as an end.
    sim.faults().add(
        Fault::new(FaultKind::CutLog {
            after_lines: Some(1_000),
            after_bytes: None,
            clean: false,
        })
        .times(1),
    );
    assert!(pods.logs("lg", &LogParams::default()).await.is_ok());
    assert_eq!(sim.fault_counts().get("cut_log"), Some(&2));
    sim.faults().clear();
    sim.faults().add(
        Fault::new(FaultKind::CutLog {
            after_lines: Some(1),
            after_bytes: None,
            clean: false,
        })
        .times(1),
    );
    pods.logs("lg", &LogParams::default())
        .await
        .expect_err("an aborted response is an error");
    assert_eq!(sim.fault_counts().get("cut_log"), Some(&3));
    assert_eq!(sim.request_counts().get("get pods/log"), Some(&11));
}

#[tokio::test]
async fn logs_wait_for_a_started_container() {
    let (sim, pods, _rt, _dir) = with_running_pod("wt", "sleep 30").await;
    sim.store()
        .modify_status(podrun::sim::Kind::Pod, "default", "wt", None, |st| {
            st["containerStatuses"][0]["state"] =
                json!({"waiting": {"reason": "ContainerCreating"}});
            Ok(())
        })
        .expect("status");
    let s = api_err(
        pods.logs("wt", &LogParams::default())
            .await
            .expect_err("waiting"),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (
            400,
            "container \"base\" in pod \"wt\" is waiting to start: ContainerCreating"
        )
    );
}

#[tokio::test]
async fn exec_over_websocket_with_status_and_stdin() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (sim, pods, _rt, _dir) = with_running_pod("ex", "sleep 60").await;
    let mut p = pods
        .exec(
            "ex",
            ["sh", "-c", "echo out $GREETING; echo err >&2; exit 3"],
            &AttachParams::default().stderr(true),
        )
        .await
        .expect("exec");
    let mut out = String::new();
    p.stdout()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    let mut err = String::new();
    p.stderr()
        .expect("stderr")
        .read_to_string(&mut err)
        .await
        .expect("read");
    let status = p.take_status().expect("status").await.expect("status sent");
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("out hi\n", "err\n"),
        "{status:?}"
    );
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &status.details.expect("details").causes.expect("causes")[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("3"))
    );
    p.join().await.expect("join");

    let mut p = pods
        .exec(
            "ex",
            ["cat"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .expect("exec with stdin");
    let mut stdin = p.stdin().expect("stdin");
    stdin.write_all(b"hello stdin").await.expect("write");
    stdin.shutdown().await.expect("close stdin");
    drop(stdin);
    let mut out = String::new();
    p.stdout()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    assert_eq!(out, "hello stdin");
    let status = p.take_status().expect("status").await.expect("status");
    assert_eq!(status.status.as_deref(), Some("Success"));

    sim.faults().add(Fault::new(FaultKind::FailExec).times(1));
    assert!(pods
        .exec("ex", ["true"], &AttachParams::default())
        .await
        .is_err());
    assert_eq!(sim.fault_counts().get("fail_exec"), Some(&1));
    match pods.exec("ghost", ["true"], &AttachParams::default()).await {
        Err(e) => assert!(
            e.to_string().contains("404") || e.to_string().contains("not found"),
            "{e}"
        ),
        Ok(_) => panic!("exec into a missing pod succeeded"),
    }
}

#[tokio::test]
async fn podrun_sim_cli_prints_kubeconfig_and_stops_on_ctrl_c() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_podrun"))
        .args(["sim", "--kubeconfig"])
        .arg(&kc)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("podrun sim");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut export = None;
    while let Some(l) = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("output")
        .expect("line")
    {
        if let Some(p) = l.strip_prefix("export KUBECONFIG=") {
            export = Some(p.to_string());
            break;
        }
    }
    assert_eq!(export.as_deref(), Some(kc.to_str().expect("utf-8")));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&kc)
            .expect("kubeconfig")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kc).expect("read"),
        &Default::default(),
    )
    .await
    .expect("config");
    let pods: Api<Pod> = Api::namespaced(Client::try_from(cfg).expect("client"), "default");
    pods.create(&PostParams::default(), &pod("cli"))
        .await
        .expect("create through podrun sim");
    // One status line per pod change.
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("status line")
        .expect("line");
    assert!(line.expect("line").starts_with("default/cli Pending"));
    let pid = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops")
        .expect("status");
    assert_eq!(status.code(), Some(0));

    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_podrun"))
        .args(["sim", "--fault", "kind=nope"])
        .output()
        .await
        .expect("podrun sim");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown fault kind \"nope\""));
}

// ---- With the process kubelet: logs, exec, graceful delete, log/exec/evict faults ----

async fn start_kubelet() -> (Sim, Client) {
    let sim = Sim::start(Config::default())
        .await
        .expect("sim with kubelet starts");
    let client = sim.client().await.expect("client");
    (sim, client)
}

fn sh_pod(name: &str, script: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "base", "image": "busybox", "command": ["sh", "-c", script]}]}
    }))
    .expect("pod literal")
}

async fn wait_phase(pods: &Api<Pod>, name: &str, want: &str) -> Pod {
    let cond = move |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            == Some(want)
    };
    let p = tokio::time::timeout(
        Duration::from_secs(20),
        kube::runtime::wait::await_condition(pods.clone(), name, cond),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} did not reach {want}"))
    .expect("await condition");
    p.expect("pod exists")
}

#[tokio::test]
async fn log_stream_follows_until_exit() {
    use futures::AsyncBufReadExt;
    let (_sim, client) = start_kubelet().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(
        &PostParams::default(),
        &sh_pod("follow", "echo first; sleep 1; echo second"),
    )
    .await
    .expect("create");
    wait_phase(&pods, "follow", "Running").await;
    let stream = pods
        .log_stream(
            "follow",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("stream");
    let lines: Vec<String> =
        tokio::time::timeout(Duration::from_secs(15), stream.lines().try_collect())
            .await
            .expect("follow ends when the container exits")
            .expect("lines");
    assert_eq!(lines, ["first", "second"]);
}

#[tokio::test]
async fn logs_need_a_container_name_and_a_started_container() {
    let sim = Sim::start(Config {
        kubelet: Some(podrun::sim::kubelet::Config {
            image_pull_failures: vec!["*missing*".into()],
            ..Default::default()
        }),
        ..Config::default()
    })
    .await
    .expect("sim");
    let pods: Api<Pod> = Api::namespaced(sim.client().await.expect("client"), "default");
    let two: Pod =
        serde_json::from_value(json!({"metadata": {"name": "two"}, "spec": {"containers": [
        {"name": "a", "image": "busybox", "command": ["sleep", "30"]},
        {"name": "b", "image": "busybox", "command": ["sleep", "30"]}]}}))
        .expect("pod");
    pods.create(&PostParams::default(), &two)
        .await
        .expect("create");
    wait_phase(&pods, "two", "Running").await;
    let s = api_err(
        pods.logs("two", &LogParams::default())
            .await
            .expect_err("ambiguous"),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (
            400,
            "a container name must be specified for pod two, choose one of: [a b]"
        )
    );
    pods.logs(
        "two",
        &LogParams {
            container: Some("b".into()),
            ..LogParams::default()
        },
    )
    .await
    .expect("named container");

    let missing: Pod = serde_json::from_value(
        json!({"metadata": {"name": "noimg"}, "spec": {"containers": [
        {"name": "base", "image": "registry.local/missing:1", "command": ["true"]}]}}),
    )
    .expect("pod");
    pods.create(&PostParams::default(), &missing)
        .await
        .expect("create");
    let cond = |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.state.as_ref().and_then(|s| s.waiting.as_ref()).is_some())
            })
    };
    tokio::time::timeout(
        Duration::from_secs(20),
        kube::runtime::wait::await_condition(pods.clone(), "noimg", cond),
    )
    .await
    .expect("waiting status")
    .expect("condition");
    let s = api_err(
        pods.logs("noimg", &LogParams::default())
            .await
            .expect_err("waiting"),
    );
    assert_eq!(s.code, 400);
    assert!(
        s.message
            .starts_with("container \"base\" in pod \"noimg\" is waiting to start: "),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn kubelet_pod_exec_streams_and_reports_exit_codes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_sim, client) = start_kubelet().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &sh_pod("ex", "sleep 60"))
        .await
        .expect("create");
    wait_phase(&pods, "ex", "Running").await;

    let mut p = pods
        .exec(
            "ex",
            ["sh", "-c", "echo out; echo err >&2; exit 3"],
            &AttachParams::default().stderr(true),
        )
        .await
        .expect("exec");
    let mut out = String::new();
    p.stdout()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    let mut err = String::new();
    p.stderr()
        .expect("stderr")
        .read_to_string(&mut err)
        .await
        .expect("read");
    let status = p.take_status().expect("status").await.expect("status sent");
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &status.details.expect("details").causes.expect("causes")[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("3"))
    );
    p.join().await.expect("join");

    let mut p = pods
        .exec(
            "ex",
            ["cat"],
            &AttachParams::default().stdin(true).stderr(false),
        )
        .await
        .expect("exec with stdin");
    let mut stdin = p.stdin().expect("stdin");
    stdin.write_all(b"hello stdin").await.expect("write");
    // Shutting the writer down sends the v5 close for stdin: cat sees EOF.
    stdin.shutdown().await.expect("close stdin");
    drop(stdin);
    let mut out = String::new();
    p.stdout()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    assert_eq!(out, "hello stdin");
    let status = p.take_status().expect("status").await.expect("status");
    assert_eq!(status.status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn graceful_delete_with_kubelet_ends_in_deleted() {
    let (_sim, client) = start_kubelet().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &sh_pod("gd", "sleep 60"))
        .await
        .expect("create");
    let p = wait_phase(&pods, "gd", "Running").await;
    let uid = p.metadata.uid.expect("uid");
    let marked = pods
        .delete("gd", &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("graceful");
    assert_eq!(marked.metadata.deletion_grace_period_seconds, Some(2));
    tokio::time::timeout(
        Duration::from_secs(20),
        kube::runtime::wait::await_condition(
            pods.clone(),
            "gd",
            kube::runtime::wait::conditions::is_deleted(&uid),
        ),
    )
    .await
    .expect("kubelet finished the delete")
    .expect("condition");
}

#[tokio::test]
async fn exec_handshake_fault_and_eviction_fault() {
    let (sim, client) = start_kubelet().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &sh_pod("fx", "sleep 60"))
        .await
        .expect("create");
    wait_phase(&pods, "fx", "Running").await;
    sim.faults().add(Fault::new(FaultKind::FailExec).times(1));
    assert!(pods
        .exec("fx", ["true"], &AttachParams::default())
        .await
        .is_err());
    assert_eq!(sim.fault_counts().get("fail_exec"), Some(&1));

    sim.faults()
        .add(Fault::new(FaultKind::EvictRunning).path("default/victim"));
    pods.create(&PostParams::default(), &sh_pod("victim", "sleep 60"))
        .await
        .expect("create");
    let p = tokio::time::timeout(
        Duration::from_secs(20),
        kube::runtime::wait::await_condition(pods.clone(), "victim", |p: Option<&Pod>| {
            p.is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        }),
    )
    .await
    .expect("evicted")
    .expect("condition");
    if let Some(p) = p {
        let conds = p.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(conds.iter().any(|c| c.type_ == "DisruptionTarget"));
    }
    assert_eq!(sim.fault_counts().get("evict"), Some(&1));
}

#[tokio::test]
async fn oversized_bodies_and_terminating_namespaces() {
    let (sim, client) = start().await;
    let big = "x".repeat(4 * 1024 * 1024);
    let body = json!({"metadata": {"name": "big"}, "data": {"k": big}}).to_string();
    let (code, s) = raw(
        &sim,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        &body,
    )
    .await;
    assert_eq!(
        (code, s["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );

    // A namespace whose pods are still terminating refuses new content with 403.
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "going"}})).expect("ns"),
    )
    .await
    .expect("ns");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "going");
    let p = pods
        .create(&PostParams::default(), &pod("stay"))
        .await
        .expect("pod");
    sim.store()
        .bind_pod(
            "going",
            "stay",
            p.metadata.uid.as_deref().expect("uid"),
            "sim-node",
        )
        .expect("bind");
    ns.delete("going", &DeleteParams::default())
        .await
        .expect("delete ns");
    let phase = ns
        .get("going")
        .await
        .expect("still there")
        .status
        .and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Terminating"));
    let s = api_err(
        pods.create(&PostParams::default(), &pod("late"))
            .await
            .expect_err("403"),
    );
    assert_eq!(s.code, 403);
    assert_eq!(s.message, "pods \"late\" is forbidden: unable to create new content in namespace going because it is being terminated");
    // Once the kubelet's part is done, the namespace goes.
    sim.store()
        .finalize_pod_delete("going", "stay", p.metadata.uid.as_deref().expect("uid"))
        .expect("finalize");
    assert_eq!(api_err(ns.get("going").await.expect_err("gone")).code, 404);
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let (sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let rv = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let s = pods
        .watch(&WatchParams::default().timeout(300), &rv)
        .await
        .expect("watch");
    let dir = sim.dir().to_path_buf();
    let collect = tokio::spawn(async move { s.collect::<Vec<_>>().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.shutdown().await;
    tokio::time::timeout(Duration::from_secs(5), collect)
        .await
        .expect("watch ended with the sim")
        .expect("task");
    assert!(!dir.exists(), "temp dir removed");
}

#[tokio::test]
async fn dry_run_create_stores_nothing() {
    let (_sim, client) = start().await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let p = pods.create(&pp, &pod("dry")).await.expect("dry-run create");
    assert_eq!(
        p.spec.expect("spec").dns_policy.as_deref(),
        Some("ClusterFirst")
    );
    assert!(p.metadata.resource_version.is_none());
    assert_eq!(
        api_err(pods.get("dry").await.expect_err("not stored")).code,
        404
    );
    let s = api_err(
        pods.create(&pp, &pod("Bad_Name"))
            .await
            .expect_err("still validated"),
    );
    assert_eq!(s.code, 422);
}
