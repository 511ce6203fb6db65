//! `pods/{name}/exec`: the WebSocket remote-command protocol (v4/v5.channel.k8s.io).

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;

use crate::sim::server::api::{Query, Route};
use crate::sim::server::AppState;
use crate::sim::status::{ApiError, Result};

/// Serve an exec request.
pub async fn serve(
    app: Arc<AppState>,
    route: &Route,
    _q: &Query,
    _req: Request,
) -> Result<Response> {
    let name = route.name.as_deref().unwrap_or_default();
    app.store.get(
        route.kind,
        route.namespace.as_deref().unwrap_or_default(),
        name,
    )?;
    Err(ApiError::bad_request("exec needs the process kubelet"))
}
