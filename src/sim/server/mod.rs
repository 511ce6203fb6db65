//! The HTTPS API server: [`router`] builds the axum app over the shared [`AppState`]
//! (bearer-token check and body limit as layers), [`serve`] accepts TLS connections on a
//! listener and serves HTTP/2 or HTTP/1.1 (chosen by ALPN; WebSocket upgrades on 1.1).
//!
//! The routes are few: discovery (`/version`, `/api`, `/api/v1`, `/apis`, health) and one
//! dispatcher for everything under `/api/v1/`, which parses the path itself so unknown
//! paths and methods get the API server's exact 404/405 `Status` bodies.

mod api;
pub use api::evict;
mod discovery;
mod exec;
mod logs;
pub mod patch;
mod protobuf;
pub mod tls;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::sim::faults::{Faults, RequestCounts};
use crate::sim::status::ApiError;
use crate::sim::store::Store;

/// Largest request body accepted (the API server's 3 MiB limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Server tunables.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Interval between BOOKMARK events on watches that allow them. Default 60 s.
    pub bookmark_interval: Duration,
    /// Longest watch when the client gives no `timeoutSeconds`. Default 30 min.
    pub watch_timeout: Duration,
    /// `host:port` the server listens on (for `/api` `serverAddressByClientCIDRs`).
    pub address: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bookmark_interval: Duration::from_secs(60),
            watch_timeout: Duration::from_secs(1800),
            address: String::new(),
        }
    }
}

/// Everything the handlers share.
pub struct AppState {
    /// The object store.
    pub store: Arc<Store>,
    /// The bearer token every request must carry.
    pub token: String,
    /// Injected faults and their counters.
    pub faults: Arc<Faults>,
    /// Requests served per verb and resource.
    pub requests: Arc<RequestCounts>,
    /// Finds running containers for logs and exec (None: API-only simulator).
    pub containers: Option<Arc<dyn crate::sim::containers::Lookup>>,
    /// Tunables.
    pub settings: Settings,
    /// Cancelled on shutdown: ends watches and log follows.
    pub shutdown: CancellationToken,
}

/// Closes the current connection without an answer when cancelled (fault injection).
#[derive(Clone)]
pub struct ConnKill(pub CancellationToken);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, axum::Json(self.to_status())).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timing.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), app.token.as_bytes()));
    if !ok {
        return ApiError::unauthorized().into_response();
    }
    next.run(req).await
}

/// The simulator's axum app (no socket; tests may drive it with `oneshot`).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/version", get(discovery::version))
        .route("/version/", get(discovery::version))
        .route("/api", get(discovery::api_versions))
        .route("/api/", get(discovery::api_versions))
        .route("/apis", get(discovery::api_groups))
        .route("/apis/", get(discovery::api_groups))
        .route("/api/v1", get(discovery::api_v1))
        .route("/api/v1/", get(discovery::api_v1))
        .route("/healthz", get(discovery::ok))
        .route("/livez", get(discovery::ok))
        .route("/readyz", get(discovery::ok))
        .route("/api/v1/{*path}", axum::routing::any(api::dispatch))
        .fallback(|| async { ApiError::path_not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
}

/// Serve `router` over TLS on `listener` until `shutdown` is cancelled. Each connection is
/// a task owned by this future (aborted when it ends).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: CancellationToken,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((tcp, _peer)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let shutdown = shutdown.clone();
        conns.spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let kill = CancellationToken::new();
            let k2 = kill.clone();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnKill(k2.clone()));
                    router.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
            tokio::select! {
                _ = conn => {}
                _ = kill.cancelled() => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
    conns.abort_all();
}
