//! Discovery documents: `/version`, `/api`, `/apis`, `/api/v1`, health endpoints.
//!
//! Only legacy (unaggregated) discovery is served, always as `application/json`: clients
//! asking for aggregated discovery (`as=APIGroupDiscoveryList`) see a plain document and
//! fall back, as they do against an API server without it. `/openapi/*` is 404, so
//! kubectl needs `--validate=false` for `create -f`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::sim::kind::Kind;
use crate::sim::server::AppState;

/// The Kubernetes version the simulator reports (its behaviour follows this release).
pub const GIT_VERSION: &str = "v1.34.1";

pub async fn version() -> Json<Value> {
    Json(json!({
        "major": "1",
        "minor": "34",
        "emulationMajor": "1",
        "emulationMinor": "34",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "33",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-09-09T00:00:00Z",
        "goVersion": "go1.24.6",
        "compiler": "gc",
        "platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" })
    }))
}

pub async fn api_versions(State(app): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": app.settings.address}]
    }))
}

pub async fn api_groups() -> Json<Value> {
    Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))
}

pub async fn ok() -> &'static str {
    "ok"
}

fn resource(name: String, kind: &str, namespaced: bool, verbs: &[&str]) -> Value {
    json!({"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs})
}

/// The APIResourceList for core/v1.
pub fn resource_list() -> Value {
    let mut list = Vec::new();
    for k in Kind::ALL {
        let mut r = json!({
            "name": k.plural(),
            "singularName": k.singular(),
            "namespaced": k.namespaced(),
            "kind": k.kind(),
            "verbs": k.verbs(),
        });
        if !k.short_names().is_empty() {
            r["shortNames"] = json!(k.short_names());
        }
        if !k.categories().is_empty() {
            r["categories"] = json!(k.categories());
        }
        r["storageVersionHash"] = json!(match k {
            Kind::Pod => "xPOwRZ+Yhw8=",
            Kind::Namespace => "Q3oi5N2YM8M=",
            Kind::Event => "r2yiGXH7wu8=",
            Kind::Secret => "S6u1pOWzb84=",
            Kind::ConfigMap => "qFsyl6wFWjQ=",
            Kind::ServiceAccount => "pbx9ZvyFpBE=",
            Kind::Node => "XwShjMxG9Fs=",
        });
        list.push(r);
        match k {
            Kind::Namespace => {
                list.push(resource(
                    "namespaces/finalize".into(),
                    "Namespace",
                    false,
                    &["update"],
                ));
                list.push(resource(
                    "namespaces/status".into(),
                    "Namespace",
                    false,
                    &["get", "patch", "update"],
                ));
            }
            Kind::Pod => {
                list.push(resource(
                    "pods/binding".into(),
                    "Binding",
                    true,
                    &["create"],
                ));
                list.push(
                    json!({"name": "pods/eviction", "singularName": "", "namespaced": true,
                    "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
                );
                list.push(resource(
                    "pods/exec".into(),
                    "PodExecOptions",
                    true,
                    &["create", "get"],
                ));
                list.push(resource("pods/log".into(), "Pod", true, &["get"]));
                list.push(resource(
                    "pods/status".into(),
                    "Pod",
                    true,
                    &["get", "patch", "update"],
                ));
            }
            _ => {}
        }
    }
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": list})
}

pub async fn api_v1() -> Json<Value> {
    Json(resource_list())
}
