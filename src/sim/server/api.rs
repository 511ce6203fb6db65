//! Everything under `/api/v1/`: path parsing, verb resolution, request counting, request
//! faults, and the resource handlers (list, watch, get, create, update, patch, delete,
//! deletecollection, status, eviction, binding), plus kubectl's Table rendering.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::sim::faults::FaultKind;
use crate::sim::kind::Kind;
use crate::sim::selector::{FieldSelector, LabelSelector};
use crate::sim::server::patch::{self, PatchType};
use crate::sim::server::{watch, AppState, ConnKill, MAX_BODY};
use crate::sim::status::{self, ApiError, Cause, Result};
use crate::sim::store::{meta, DeleteOptions, Deleted, Since};

/// A parsed `/api/v1/...` path.
#[derive(Debug, Clone)]
pub struct Route {
    /// The resource kind.
    pub kind: Kind,
    /// Namespace from the path (None: cluster-scoped or all namespaces).
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `log`, `exec`, `eviction`, `binding`, `finalize`).
    pub sub: Option<String>,
}

impl Route {
    /// `pods`, `pods/log`, ... for request counting.
    pub fn resource(&self) -> String {
        match &self.sub {
            Some(s) => format!("{}/{s}", self.kind.plural()),
            None => self.kind.plural().to_string(),
        }
    }

    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }
}

fn parse_route(path: &str) -> Result<Route> {
    let rest = path.strip_prefix("/api/v1/").unwrap_or_default();
    let segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(ApiError::path_not_found());
    }
    let kind_of = |s: &str| Kind::from_plural(s).ok_or_else(ApiError::path_not_found);
    let route = match segs.as_slice() {
        [res] => Route {
            kind: kind_of(res)?,
            namespace: None,
            name: None,
            sub: None,
        },
        ["namespaces", ns, res] if Kind::from_plural(res).is_some_and(Kind::namespaced) => Route {
            kind: kind_of(res)?,
            namespace: Some(ns.to_string()),
            name: None,
            sub: None,
        },
        ["namespaces", name, sub @ ("status" | "finalize")] => Route {
            kind: Kind::Namespace,
            namespace: None,
            name: Some(name.to_string()),
            sub: Some(sub.to_string()),
        },
        [res, name] => {
            let kind = kind_of(res)?;
            if kind.namespaced() {
                return Err(ApiError::path_not_found());
            }
            Route {
                kind,
                namespace: None,
                name: Some(name.to_string()),
                sub: None,
            }
        }
        ["namespaces", ns, res, name] => {
            let kind = kind_of(res)?;
            if !kind.namespaced() {
                return Err(ApiError::path_not_found());
            }
            Route {
                kind,
                namespace: Some(ns.to_string()),
                name: Some(name.to_string()),
                sub: None,
            }
        }
        ["namespaces", ns, res, name, sub] => {
            let kind = kind_of(res)?;
            let ok = match kind {
                Kind::Pod => matches!(*sub, "status" | "log" | "exec" | "eviction" | "binding"),
                _ => false,
            };
            if !ok {
                return Err(ApiError::path_not_found());
            }
            Route {
                kind,
                namespace: Some(ns.to_string()),
                name: Some(name.to_string()),
                sub: Some(sub.to_string()),
            }
        }
        _ => return Err(ApiError::path_not_found()),
    };
    Ok(route)
}

/// Query parameters (repeated keys kept in order).
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let pairs = q
            .map(|q| {
                axum::extract::Query::<Vec<(String, String)>>::try_from_uri(
                    &format!("/?{q}").parse().unwrap_or_default(),
                )
                .map(|axum::extract::Query(v)| v)
                .unwrap_or_default()
            })
            .unwrap_or_default();
        Query(pairs)
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (exec's repeated `command`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    /// An integer parameter (400 when malformed).
    pub fn int(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "strconv.ParseInt: parsing {v:?}: invalid syntax"
                    ))
                })
            })
            .transpose()
    }
}

fn verb_of(method: &Method, route: &Route, q: &Query) -> Result<&'static str> {
    let item = route.name.is_some();
    let v = match (route.sub.as_deref(), method.as_str(), item) {
        (None, "GET", false) => {
            if q.flag("watch") {
                "watch"
            } else {
                "list"
            }
        }
        (None, "POST", false) => "create",
        (None, "DELETE", false) if route.kind.namespaced() => "deletecollection",
        (None, "GET", true) => "get",
        (None, "PUT", true) => "update",
        (None, "PATCH", true) => "patch",
        (None, "DELETE", true) => "delete",
        (Some("status"), "GET", _) => "get",
        (Some("status" | "finalize"), "PUT", _) => "update",
        (Some("status"), "PATCH", _) => "patch",
        (Some("log"), "GET", _) => "get",
        (Some("exec"), "GET", _) => "get",
        (Some("exec"), "POST", _) => "create",
        (Some("eviction" | "binding"), "POST", _) => "create",
        _ => return Err(ApiError::method_not_allowed()),
    };
    Ok(v)
}

/// The single handler for `/api/v1/*`.
pub async fn dispatch(State(app): State<Arc<AppState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let route = match parse_route(&path) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let verb = match verb_of(req.method(), &route, &query) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    app.requests.add(verb, &route.resource());
    let kill = req.extensions().get::<ConnKill>().cloned();

    // Request faults, in the order a client would notice them.
    let early = |k: &FaultKind| {
        matches!(
            k,
            FaultKind::Status { .. } | FaultKind::Delay(_) | FaultKind::Hang(_)
        )
    };
    if let Some(f) = app.faults.take(verb, &path, early) {
        match f {
            FaultKind::Status { code, retry_after } => {
                let e = match code {
                    429 => ApiError::too_many_requests(retry_after),
                    503 => ApiError::service_unavailable(
                        "the server is currently unable to handle the request",
                    ),
                    504 => ApiError::timeout(
                        "Timeout: request did not complete within the allotted timeout",
                    ),
                    _ => ApiError::internal("injected fault"),
                };
                let mut e = e;
                if code != 429 {
                    e.retry_after = Some(retry_after);
                }
                return e.into_response();
            }
            FaultKind::Delay(d) => tokio::time::sleep(d).await,
            FaultKind::Hang(d) => {
                tokio::time::sleep(d).await;
                return drop_connection(kill).await;
            }
            _ => {}
        }
    }
    let drop_response = app
        .faults
        .take(verb, &path, |k| matches!(k, FaultKind::DropResponse))
        .is_some();

    let resp = match handle(&app, verb, route, query, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if drop_response {
        return drop_connection(kill).await;
    }
    resp
}

/// Close the connection without answering (the request's effects stay done).
async fn drop_connection(kill: Option<ConnKill>) -> Response {
    if let Some(ConnKill(k)) = kill {
        k.cancel();
        // The connection task drops this future with the connection.
        std::future::pending::<()>().await;
    }
    ApiError::internal("connection dropped").into_response()
}

async fn body_bytes(req: Request) -> Result<(HeaderMap, Bytes)> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large())?;
    Ok((parts.headers, bytes))
}

/// Decode a request body (JSON, or YAML when the Content-Type says so).
fn decode(kind: Kind, headers: &HeaderMap, body: &[u8]) -> Result<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.starts_with("application/vnd.kubernetes.protobuf") {
        return crate::sim::server::protobuf::decode(kind, body);
    }
    if ct.contains("yaml") {
        return serde_yaml_ng::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        });
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("as=Table"))
}

fn ok(code: StatusCode, v: Value) -> Response {
    (code, Json(v)).into_response()
}

fn name_of(route: &Route) -> &str {
    route.name.as_deref().unwrap_or_default()
}

async fn handle(
    app: &Arc<AppState>,
    verb: &str,
    route: Route,
    q: Query,
    req: Request,
) -> Result<Response> {
    let store = &app.store;
    if verb != "create" && q.get("dryRun").is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "dryRun is only supported for create by the simulator (got it on {verb})"
        )));
    }
    match (verb, route.sub.as_deref()) {
        ("list", _) => list(app, &route, &q, req.headers()),
        ("watch", _) => watch_start(app, &route, &q, req.headers(), req.uri().path()),
        ("get", None) => {
            let obj = store.get(route.kind, route.ns(), name_of(&route))?;
            if wants_table(req.headers()) {
                let rv = store.resource_version();
                return Ok(ok(StatusCode::OK, table(route.kind, &[Arc::new(obj)], rv)));
            }
            Ok(ok(StatusCode::OK, obj))
        }
        ("get", Some("status")) => Ok(ok(
            StatusCode::OK,
            store.get(route.kind, route.ns(), name_of(&route))?,
        )),
        ("get", Some("log")) => crate::sim::server::logs::serve(app.clone(), &route, &q).await,
        (_, Some("exec")) => crate::sim::server::exec::serve(app.clone(), &route, &q, req).await,
        ("create", None) => {
            let (headers, body) = body_bytes(req).await?;
            let obj = decode(route.kind, &headers, &body)?;
            let dry_run = match q.get("dryRun").unwrap_or_default() {
                "" => false,
                "All" => true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "Invalid dry run value: {other:?}; supported values: \"All\""
                    )))
                }
            };
            let created = store.create_opts(route.kind, route.ns(), obj, dry_run)?;
            Ok(ok(StatusCode::CREATED, created))
        }
        ("update", sub) => {
            let (headers, body) = body_bytes(req).await?;
            let obj = decode(route.kind, &headers, &body)?;
            let name = name_of(&route);
            let updated = if sub == Some("status") {
                store.update_status(route.kind, route.ns(), name, obj)?
            } else {
                store.update(route.kind, route.ns(), name, obj)?
            };
            Ok(ok(StatusCode::OK, updated))
        }
        ("patch", sub) => {
            let (headers, body) = body_bytes(req).await?;
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let ty = PatchType::from_content_type(ct)?;
            let name = name_of(&route).to_string();
            let status_only = sub == Some("status");
            let patched = store.patch(route.kind, route.ns(), &name, status_only, |doc| {
                patch::apply(doc, ty, &body)
            })?;
            Ok(ok(StatusCode::OK, patched))
        }
        ("delete", None) => {
            let (headers, body) = body_bytes(req).await?;
            let opts = delete_options(&q, &headers, &body)?;
            let name = name_of(&route);
            let uid = store
                .get(route.kind, route.ns(), name)
                .ok()
                .and_then(|o| {
                    o.pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .unwrap_or_default();
            let out = store.delete(route.kind, route.ns(), name, &opts)?;
            let obj = match out {
                Deleted::Removed(o) | Deleted::Pending(o) => o,
            };
            // Pods, namespaces and serviceaccounts return the object; others a Status.
            let returns_object = matches!(
                route.kind,
                Kind::Pod | Kind::Namespace | Kind::ServiceAccount
            );
            if returns_object {
                Ok(ok(StatusCode::OK, obj))
            } else {
                Ok(ok(
                    StatusCode::OK,
                    status::success(route.kind.plural(), name, &uid),
                ))
            }
        }
        ("deletecollection", None) => {
            let (headers, body) = body_bytes(req).await?;
            let opts = delete_options(&q, &headers, &body)?;
            let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
            let fields =
                FieldSelector::parse(q.get("fieldSelector").unwrap_or_default(), route.kind)?;
            let list = store.list(route.kind, route.namespace.as_deref());
            let mut items = Vec::new();
            for o in list
                .items
                .iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
            {
                let ns = o
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let n = o
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match store.delete(route.kind, ns, n, &opts) {
                    Ok(Deleted::Removed(o) | Deleted::Pending(o)) => items.push(strip_type(o)),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(ok(
                StatusCode::OK,
                list_body(route.kind, items, store.resource_version(), None, None),
            ))
        }
        ("create", Some("eviction")) => {
            let (headers, body) = body_bytes(req).await?;
            let ev = if body.is_empty() {
                json!({})
            } else {
                decode(route.kind, &headers, &body)?
            };
            let grace = ev
                .pointer("/deleteOptions/gracePeriodSeconds")
                .and_then(Value::as_i64);
            evict(app, route.ns(), name_of(&route), grace)?;
            Ok(ok(
                StatusCode::CREATED,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        ("create", Some("binding")) => {
            let (headers, body) = body_bytes(req).await?;
            let b = decode(route.kind, &headers, &body)?;
            let node = b
                .pointer("/target/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = name_of(&route);
            let uid = store.get(Kind::Pod, route.ns(), name)?["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            store.bind_pod(route.ns(), name, &uid, node)?;
            Ok(ok(
                StatusCode::CREATED,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            ))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The Eviction API: mark the pod with DisruptionTarget and delete it gracefully.
pub fn evict(app: &AppState, ns: &str, name: &str, grace: Option<i64>) -> Result<()> {
    let store = &app.store;
    store.get(Kind::Pod, ns, name)?;
    let _ = store.modify_status(Kind::Pod, ns, name, None, |st| {
        let conds = st
            .as_object_mut()
            .map(|m| m.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(cs)) = conds {
            cs.retain(|c| c["type"] != "DisruptionTarget");
            cs.push(
                json!({"type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
                "lastTransitionTime": meta::now(), "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting"}),
            );
        }
        Ok(())
    });
    store.delete(
        Kind::Pod,
        ns,
        name,
        &DeleteOptions {
            grace_period_seconds: grace,
            ..DeleteOptions::default()
        },
    )?;
    Ok(())
}

fn delete_options(q: &Query, headers: &HeaderMap, body: &[u8]) -> Result<DeleteOptions> {
    let mut opts = DeleteOptions {
        grace_period_seconds: q.int("gracePeriodSeconds")?,
        ..DeleteOptions::default()
    };
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("protobuf"));
    // Typed clients may send DeleteOptions as protobuf; only JSON options are read.
    if !body.is_empty() && !protobuf {
        let b = decode(Kind::Pod, headers, body)?;
        if let Some(g) = b.get("gracePeriodSeconds").and_then(Value::as_i64) {
            opts.grace_period_seconds = Some(g);
        }
        opts.uid = b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
        opts.resource_version = b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from);
    }
    Ok(opts)
}

fn strip_type(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    v
}

fn list_body(
    kind: Kind,
    items: Vec<Value>,
    rv: u64,
    cont: Option<String>,
    remaining: Option<usize>,
) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(r) = remaining {
        meta["remainingItemCount"] = json!(r);
    }
    json!({"kind": format!("{}List", kind.kind()), "apiVersion": "v1", "metadata": meta, "items": items})
}

fn parse_rv(v: &str) -> Result<u64> {
    v.parse::<u64>().map_err(|_| {
        ApiError::invalid(
            "ListOptions.meta.k8s.io",
            "",
            vec![Cause::invalid(
                "resourceVersion",
                &json!(v),
                "must be a non-negative integer",
            )],
        )
    })
}

fn check_rv_match(q: &Query) -> Result<()> {
    if let Some(m) = q.get("resourceVersionMatch").filter(|m| !m.is_empty()) {
        if q.get("resourceVersion").unwrap_or_default().is_empty() {
            return Err(ApiError::invalid(
                "ListOptions.meta.k8s.io",
                "",
                vec![Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                )],
            ));
        }
        if m != "NotOlderThan" && m != "Exact" {
            return Err(ApiError::invalid(
                "ListOptions.meta.k8s.io",
                "",
                vec![Cause::unsupported(
                    "resourceVersionMatch",
                    m,
                    &["Exact", "NotOlderThan", ""],
                )],
            ));
        }
    }
    Ok(())
}

fn list(app: &AppState, route: &Route, q: &Query, headers: &HeaderMap) -> Result<Response> {
    check_rv_match(q)?;
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default(), route.kind)?;
    let current = app.store.resource_version();
    if let Some(rv) = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
    {
        let rv = parse_rv(rv)?;
        if q.get("resourceVersionMatch") == Some("Exact") && rv != current {
            // Only the latest state is kept, so an exact read of the past is too old.
            return Err(ApiError::expired(rv, current));
        }
        if rv > current {
            let mut e = ApiError::timeout(format!(
                "Too large resource version: {rv}, current: {current}"
            ));
            e.details = Some(Box::new(
                json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
            ));
            return Err(e);
        }
    }
    let list = app.store.list(route.kind, route.namespace.as_deref());
    let mut items: Vec<Arc<Value>> = list
        .items
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    // limit/continue: the token is the last returned key plus the list's resourceVersion.
    let mut cont = None;
    let mut remaining = None;
    if let Some(token) = q.get("continue").filter(|c| !c.is_empty()) {
        let (rv, after) = decode_continue(token)?;
        if rv < app.store.compacted() {
            return Err(ApiError::continue_expired());
        }
        items.retain(|o| key_of(o) > after);
    }
    if let Some(limit) = q.int("limit")?.filter(|l| *l > 0) {
        let limit = limit as usize;
        if items.len() > limit {
            let rest = items.len() - limit;
            items.truncate(limit);
            if let Some(last) = items.last() {
                cont = Some(encode_continue(list.resource_version, &key_of(last)));
            }
            if labels.is_empty() && q.get("fieldSelector").unwrap_or_default().is_empty() {
                remaining = Some(rest);
            }
        }
    }
    if wants_table(headers) {
        let mut t = table(route.kind, &items, list.resource_version);
        if let Some(c) = cont {
            t["metadata"]["continue"] = json!(c);
        }
        return Ok(ok(StatusCode::OK, t));
    }
    let items: Vec<Value> = items.iter().map(|o| strip_type((**o).clone())).collect();
    Ok(ok(
        StatusCode::OK,
        list_body(route.kind, items, list.resource_version, cont, remaining),
    ))
}

fn key_of(o: &Value) -> String {
    let ns = o
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let n = o
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!("{ns}/{n}")
}

fn encode_continue(rv: u64, key: &str) -> String {
    use base64::Engine as _;
    let t = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{key}\u{0}")});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String)> {
    use base64::Engine as _;
    let bad = || ApiError::bad_request(format!("invalid continue token: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let start = v["start"]
        .as_str()
        .ok_or_else(bad)?
        .trim_end_matches('\u{0}')
        .to_string();
    Ok((rv, start))
}

fn watch_start(
    app: &Arc<AppState>,
    route: &Route,
    q: &Query,
    headers: &HeaderMap,
    path: &str,
) -> Result<Response> {
    let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?;
    let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or_default(), route.kind)?;
    let rv = q.get("resourceVersion").unwrap_or_default();
    let send_initial = q.get("sendInitialEvents").map(|v| v == "true");
    let bookmarks = q.flag("allowWatchBookmarks");
    if let Some(m) = q.get("resourceVersionMatch").filter(|m| !m.is_empty()) {
        if send_initial.is_none() && m != "NotOlderThan" {
            return Err(ApiError::invalid(
                "ListOptions.meta.k8s.io",
                "",
                vec![Cause::unsupported(
                    "resourceVersionMatch",
                    m,
                    &["NotOlderThan", ""],
                )],
            ));
        }
    }
    if let Some(si) = send_initial {
        let mut causes = Vec::new();
        if q.get("resourceVersionMatch") != Some("NotOlderThan") {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if si && !bookmarks {
            causes.push(Cause::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid("ListOptions.meta.k8s.io", "", causes));
        }
    }
    let since = match (rv, send_initial) {
        (_, Some(true)) => Since::Initial,
        ("" | "0", Some(false)) => Since::Now,
        ("" | "0", None) => Since::Initial,
        (v, _) => Since::Rv(parse_rv(v)?),
    };
    let timeout = q
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(app.settings.watch_timeout);
    let p = watch::Params {
        kind: route.kind,
        namespace: route.namespace.clone(),
        since,
        bookmarks,
        initial_events_end: send_initial == Some(true),
        timeout,
        labels,
        fields,
        table: wants_table(headers),
        path: path.to_string(),
    };
    Ok(watch::serve(app.clone(), p))
}

fn age(ts: &str) -> String {
    let Ok(t) = ts.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    human_duration(secs)
}

/// kubectl's `duration.HumanDuration` short form.
fn human_duration(secs: i64) -> String {
    if secs < 120 {
        format!("{secs}s")
    } else if secs < 600 {
        let (m, s) = (secs / 60, secs % 60);
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if secs < 3 * 3600 {
        format!("{}m", secs / 60)
    } else if secs < 8 * 3600 {
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        if m == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{m}m")
        }
    } else if secs < 48 * 3600 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86400)
    }
}

fn pod_row(p: &Value) -> Vec<Value> {
    let containers = p
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    let statuses = p
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses.iter().filter(|s| s["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum();
    let mut reason = p
        .pointer("/status/reason")
        .and_then(Value::as_str)
        .or_else(|| p.pointer("/status/phase").and_then(Value::as_str))
        .unwrap_or("Unknown")
        .to_string();
    let init = p
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let n_init = init.len();
    let mut initializing = false;
    for (i, s) in init.iter().enumerate() {
        let term = &s["state"]["terminated"];
        if term.is_object() && term["exitCode"] == 0 {
            continue;
        }
        initializing = true;
        reason = if term.is_object() {
            match term["reason"].as_str() {
                Some(r) if !r.is_empty() => format!("Init:{r}"),
                _ => format!("Init:ExitCode:{}", term["exitCode"]),
            }
        } else if let Some(r) = s["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            format!("Init:{r}")
        } else {
            format!("Init:{i}/{n_init}")
        };
        break;
    }
    if !initializing {
        let mut has_running = false;
        for s in statuses.iter().rev() {
            if let Some(r) = s["state"]["waiting"]["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
            {
                reason = r.to_string();
            } else if let Some(t) = s["state"]["terminated"].as_object() {
                reason = match t.get("reason").and_then(Value::as_str) {
                    Some(r) if !r.is_empty() => r.to_string(),
                    _ => match t.get("signal").and_then(Value::as_i64).filter(|s| *s != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!(
                            "ExitCode:{}",
                            t.get("exitCode").cloned().unwrap_or(json!(0))
                        ),
                    },
                };
            } else if s["ready"] == true && s["state"]["running"].is_object() {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".into();
        }
    }
    if p.pointer("/metadata/deletionTimestamp").is_some() {
        reason = "Terminating".into();
    }
    let s = |ptr: &str| {
        p.pointer(ptr)
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string()
    };
    vec![
        json!(s("/metadata/name")),
        json!(format!("{ready}/{containers}")),
        json!(reason),
        json!(restarts.to_string()),
        json!(age(&s("/metadata/creationTimestamp"))),
        json!(s("/status/podIP")),
        json!(s("/spec/nodeName")),
        json!("<none>"),
        json!("<none>"),
    ]
}

/// Render objects as a `meta.k8s.io/v1` Table with the API server's columns.
pub fn table(kind: Kind, items: &[Arc<Value>], rv: u64) -> Value {
    let col = |name: &str, ty: &str, format: &str, priority: i64| json!({"name": name, "type": ty, "format": format, "description": "", "priority": priority});
    let columns = match kind {
        Kind::Pod => vec![
            col("Name", "string", "name", 0),
            col("Ready", "string", "", 0),
            col("Status", "string", "", 0),
            col("Restarts", "string", "", 0),
            col("Age", "string", "", 0),
            col("IP", "string", "", 1),
            col("Node", "string", "", 1),
            col("Nominated Node", "string", "", 1),
            col("Readiness Gates", "string", "", 1),
        ],
        Kind::Namespace => vec![
            col("Name", "string", "name", 0),
            col("Status", "string", "", 0),
            col("Age", "string", "", 0),
        ],
        Kind::Event => vec![
            col("Last Seen", "string", "", 0),
            col("Type", "string", "", 0),
            col("Reason", "string", "", 0),
            col("Object", "string", "", 0),
            col("Message", "string", "", 0),
        ],
        Kind::Secret => vec![
            col("Name", "string", "name", 0),
            col("Type", "string", "", 0),
            col("Data", "string", "", 0),
            col("Age", "string", "", 0),
        ],
        Kind::ConfigMap => vec![
            col("Name", "string", "name", 0),
            col("Data", "string", "", 0),
            col("Age", "string", "", 0),
        ],
        Kind::ServiceAccount => vec![
            col("Name", "string", "name", 0),
            col("Secrets", "string", "", 0),
            col("Age", "string", "", 0),
        ],
        Kind::Node => vec![
            col("Name", "string", "name", 0),
            col("Status", "string", "", 0),
            col("Roles", "string", "", 0),
            col("Age", "string", "", 0),
            col("Version", "string", "", 0),
            col("Internal-IP", "string", "", 1),
        ],
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let s = |ptr: &str| o.pointer(ptr).and_then(Value::as_str).unwrap_or_default().to_string();
            let created = age(&s("/metadata/creationTimestamp"));
            let count = |ptr: &str| o.pointer(ptr).and_then(Value::as_object).map(|m| m.len()).unwrap_or(0);
            let cells = match kind {
                Kind::Pod => pod_row(o),
                Kind::Namespace => vec![json!(s("/metadata/name")), json!(s("/status/phase")), json!(created)],
                Kind::Event => {
                    let last = o.pointer("/lastTimestamp").and_then(Value::as_str).map(age).unwrap_or_else(|| "<unknown>".into());
                    vec![
                        json!(last),
                        json!(s("/type")),
                        json!(s("/reason")),
                        json!(format!("{}/{}", s("/involvedObject/kind").to_lowercase(), s("/involvedObject/name"))),
                        json!(s("/message")),
                    ]
                }
                Kind::Secret => vec![json!(s("/metadata/name")), json!(s("/type")), json!(count("/data")), json!(created)],
                Kind::ConfigMap => vec![
                    json!(s("/metadata/name")),
                    json!(count("/data") + count("/binaryData")),
                    json!(created),
                ],
                Kind::Node => {
                    let ready = o
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                        .is_some_and(|c| c["status"] == "True");
                    let ip = o
                        .pointer("/status/addresses")
                        .and_then(Value::as_array)
                        .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
                        .and_then(|x| x["address"].as_str())
                        .unwrap_or("<none>")
                        .to_string();
                    vec![
                        json!(s("/metadata/name")),
                        json!(if ready { "Ready" } else { "NotReady" }),
                        json!("<none>"),
                        json!(created),
                        json!(s("/status/nodeInfo/kubeletVersion")),
                        json!(ip),
                    ]
                }
                Kind::ServiceAccount => vec![
                    json!(s("/metadata/name")),
                    json!(o.get("secrets").and_then(Value::as_array).map(Vec::len).unwrap_or(0)),
                    json!(created),
                ],
            };
            let mut metadata = o.get("metadata").cloned().unwrap_or(json!({}));
            if let Some(m) = metadata.as_object_mut() {
                m.remove("managedFields");
            }
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv.to_string()},
           "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = parse_route("/api/v1/namespaces/default/pods/p/log").expect("route");
        assert_eq!((r.kind, r.resource()), (Kind::Pod, "pods/log".to_string()));
        let r = parse_route("/api/v1/namespaces/default").expect("route");
        assert_eq!(
            (r.kind, r.name.as_deref()),
            (Kind::Namespace, Some("default"))
        );
        let r = parse_route("/api/v1/namespaces/default/status").expect("route");
        assert_eq!(r.sub.as_deref(), Some("status"));
        let r = parse_route("/api/v1/pods").expect("route");
        assert!(r.namespace.is_none());
        assert_eq!(parse_route("/api/v1/pods/x").expect_err("404").code, 404);
        assert_eq!(parse_route("/api/v1/services").expect_err("404").code, 404);
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(7, "default/b");
        assert_eq!(
            decode_continue(&t).expect("decode"),
            (7, "default/b".to_string())
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3 * 86400), "3d");
    }
}
