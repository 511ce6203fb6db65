//! Unit tests of the store's semantics through its Rust API (the kubelet's view).

use serde_json::json;

use super::*;

fn store() -> Arc<Store> {
    Store::new(Config::default())
}

fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "base", "image": "busybox"}]}})
}

#[test]
fn create_pod_sets_defaults_and_bookkeeping() {
    let s = store();
    let p = s.create(Kind::Pod, "default", pod("p")).expect("create");
    assert_eq!(p["metadata"]["generation"], 1);
    assert_eq!(
        p["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"})
    );
    assert_eq!(p["spec"]["serviceAccountName"], "default");
    assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
    let vol = p["spec"]["volumes"][0]["name"]
        .as_str()
        .expect("token volume");
    assert!(vol.starts_with("kube-api-access-"));
    assert_eq!(p["spec"]["containers"][0]["volumeMounts"][0]["name"], vol);
    assert!(p["metadata"]["uid"].is_string());
    let again = s
        .create(Kind::Pod, "default", pod("p"))
        .expect_err("duplicate");
    assert_eq!(again.code, 409);
    assert_eq!(again.message, "pods \"p\" already exists");
}

#[test]
fn create_checks_namespace_and_service_account() {
    let s = store();
    let e = s
        .create(Kind::Pod, "nope", pod("p"))
        .expect_err("missing ns");
    assert_eq!(e.message, "namespaces \"nope\" not found");
    let mut p = pod("p");
    p["spec"]["serviceAccountName"] = json!("foobar");
    let e = s.create(Kind::Pod, "default", p).expect_err("missing sa");
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "pods \"p\" is forbidden: error looking up service account default/foobar: serviceaccount \"foobar\" not found"
    );
    let e = s
        .create(
            Kind::Pod,
            "default",
            json!({"metadata": {"name": "q"}, "spec": {}}),
        )
        .expect_err("no containers");
    assert_eq!(
        e.message,
        "Pod \"q\" is invalid: spec.containers: Required value"
    );
}

#[test]
fn generate_name_and_stale_update() {
    let s = store();
    let p = s
        .create(
            Kind::ConfigMap,
            "default",
            json!({"metadata": {"generateName": "cm-"}, "data": {"a": "1"}}),
        )
        .expect("create");
    let name = p["metadata"]["name"].as_str().expect("name").to_string();
    assert!(name.starts_with("cm-") && name.len() == 8);
    let mut upd = p.clone();
    upd["data"]["a"] = json!("2");
    let u = s
        .update(Kind::ConfigMap, "default", &name, upd.clone())
        .expect("update");
    assert_ne!(
        u["metadata"]["resourceVersion"],
        p["metadata"]["resourceVersion"]
    );
    let e = s
        .update(Kind::ConfigMap, "default", &name, upd)
        .expect_err("stale");
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
}

#[tokio::test]
async fn watch_replays_and_expires() {
    let s = store();
    let rv = s.resource_version();
    s.create(Kind::Pod, "default", pod("a")).expect("create");
    let mut w = s
        .watch(Kind::Pod, Some("default"), Since::Rv(rv))
        .expect("watch");
    let c = w.next().await.expect("replayed");
    assert_eq!((c.change, c.name.as_str()), (ChangeType::Added, "a"));
    s.compact();
    let e = s
        .watch(Kind::Pod, None, Since::Rv(rv))
        .err()
        .expect("expired");
    assert_eq!(e.code, 410);
    assert_eq!(e.reason, "Expired");
}

#[tokio::test]
async fn graceful_delete_waits_for_the_kubelet() {
    let s = store();
    let p = s.create(Kind::Pod, "default", pod("a")).expect("create");
    let uid = p["metadata"]["uid"].as_str().expect("uid").to_string();
    // Unscheduled pods go at once.
    let d = s
        .delete(Kind::Pod, "default", "a", &DeleteOptions::default())
        .expect("delete");
    assert!(matches!(d, Deleted::Removed(_)));
    let p = s.create(Kind::Pod, "default", pod("a")).expect("create");
    let uid2 = p["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_ne!(uid, uid2);
    s.bind_pod("default", "a", &uid2, "node").expect("bind");
    let mut w = s.watch(Kind::Pod, None, Since::Now).expect("watch");
    let d = s
        .delete(Kind::Pod, "default", "a", &DeleteOptions::default())
        .expect("delete");
    let Deleted::Pending(obj) = d else {
        panic!("expected graceful delete")
    };
    assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(obj["metadata"]["generation"], 2);
    assert_eq!(
        w.next().await.expect("modified").change,
        ChangeType::Modified
    );
    assert!(s
        .finalize_pod_delete("default", "a", &uid2)
        .expect("finalize"));
    assert_eq!(w.next().await.expect("deleted").change, ChangeType::Deleted);
    assert_eq!(
        s.get(Kind::Pod, "default", "a").expect_err("gone").code,
        404
    );
}

#[test]
fn modify_status_only_writes_changes() {
    let s = store();
    let p = s.create(Kind::Pod, "default", pod("a")).expect("create");
    let uid = p["metadata"]["uid"].as_str().expect("uid");
    let a = s
        .modify_status(Kind::Pod, "default", "a", Some(uid), |st| {
            st["phase"] = json!("Running");
            Ok(())
        })
        .expect("status");
    let b = s
        .modify_status(Kind::Pod, "default", "a", Some(uid), |st| {
            st["phase"] = json!("Running");
            Ok(())
        })
        .expect("status");
    assert_eq!(
        a["metadata"]["resourceVersion"],
        b["metadata"]["resourceVersion"]
    );
    assert_eq!(b["status"]["phase"], "Running");
}

#[test]
fn events_aggregate() {
    let s = store();
    let p = s.create(Kind::Pod, "default", pod("a")).expect("create");
    let r = ObjectRef::pod(&p);
    s.record_event(EventRecord::warning(&r, "BackOff", "Back-off"))
        .expect("event");
    let e = s
        .record_event(EventRecord::warning(&r, "BackOff", "Back-off"))
        .expect("event");
    assert_eq!(e["count"], 2);
    assert_eq!(s.list(Kind::Event, Some("default")).items.len(), 1);
}

#[test]
fn namespace_delete_removes_contents() {
    let s = store();
    s.create(Kind::Namespace, "", json!({"metadata": {"name": "t"}}))
        .expect("ns");
    assert!(s.get(Kind::ServiceAccount, "t", "default").is_ok());
    s.create(Kind::Pod, "t", pod("a")).expect("pod");
    s.delete(Kind::Namespace, "", "t", &DeleteOptions::default())
        .expect("delete");
    assert_eq!(s.get(Kind::Namespace, "", "t").expect_err("gone").code, 404);
}

#[test]
fn system_namespaces_cannot_be_deleted() {
    let s = store();
    let e = s
        .delete(Kind::Namespace, "", "default", &DeleteOptions::default())
        .expect_err("protected");
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            403,
            "namespaces \"default\" is forbidden: this namespace may not be deleted"
        )
    );
}
