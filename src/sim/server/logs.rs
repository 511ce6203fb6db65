//! `GET pods/{name}/log`: reads the container's CRI log through the runtime's reader.

use std::sync::Arc;

use axum::response::Response;

use crate::sim::server::api::{Query, Route};
use crate::sim::server::AppState;
use crate::sim::status::{ApiError, Result};

/// Serve a pod log request.
pub async fn serve(app: Arc<AppState>, route: &Route, _q: &Query) -> Result<Response> {
    let name = route.name.as_deref().unwrap_or_default();
    app.store.get(
        route.kind,
        route.namespace.as_deref().unwrap_or_default(),
        name,
    )?;
    Err(ApiError::bad_request("pod logs need the process kubelet"))
}
