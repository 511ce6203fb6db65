//! The connection to the API server: where the config comes from, the one client per
//! process, per-request timeouts, the retry layer, and credential refresh on 401.
//!
//! Config sources, first that applies: `in_cluster` (service account), an explicit
//! kubeconfig file (`--kubeconfig` / `config_file`), `KUBECONFIG` or `~/.kube/config`, and
//! when none of those exists but the pod environment does, in-cluster. `--context` /
//! `cluster_context` picks the kubeconfig context. Exec-credential plugins and token files
//! are kube's auth layer; they refresh on expiry by themselves.
//!
//! A 401 means the credentials went stale anyway (a revoked token, a plugin cache): the
//! client is rebuilt from the config source and the request retried once, without the
//! callers above noticing (log streams resume from their cursor, never from the start).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::RwLock;

use super::retry;

/// Where the client's configuration comes from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Connection {
    /// Use the in-cluster service account.
    pub in_cluster: bool,
    /// An explicit kubeconfig file; otherwise `KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; otherwise its current context.
    pub context: Option<String>,
}

/// Timeout for one attempt of a request, until its response headers arrive.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Timeout for a whole unary call, retries and body included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// TCP connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Failures to build a client from the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kubeconfig could not be read or has no usable context.
    #[error("cannot load kubeconfig{}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Kubeconfig {
        /// The file, when one was named.
        path: Option<PathBuf>,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The in-cluster service account environment is missing or broken.
    #[error("cannot load in-cluster configuration")]
    InCluster(#[source] kube::config::InClusterError),
    /// The client stack could not be built (TLS material, auth plugin setup).
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
}

/// Load the configuration from `conn`, with podrun's timeouts applied.
pub async fn load_config(conn: &Connection) -> Result<Config, Error> {
    let opts = KubeConfigOptions {
        context: conn.context.clone(),
        ..Default::default()
    };
    let mut config = if conn.in_cluster {
        Config::incluster().map_err(Error::InCluster)?
    } else if let Some(path) = &conn.kubeconfig {
        let kc = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
            path: Some(path.clone()),
            source,
        })?;
        Config::from_custom_kubeconfig(kc, &opts)
            .await
            .map_err(|source| Error::Kubeconfig {
                path: Some(path.clone()),
                source,
            })?
    } else {
        match Config::from_kubeconfig(&opts).await {
            Ok(c) => c,
            // No kubeconfig anywhere, but we run in a pod: the operator's fallback order.
            Err(_)
                if std::env::var_os("KUBECONFIG").is_none()
                    && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() =>
            {
                Config::incluster().map_err(Error::InCluster)?
            }
            Err(source) => return Err(Error::Kubeconfig { path: None, source }),
        }
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    // Our own retry layer replaces kube's, so one policy covers every request.
    config.default_retry = false;
    Ok(config)
}

/// Build a client from `config`: kube's stack plus a per-attempt timeout and our retry layer.
pub fn build_client(config: Config) -> Result<Client, Error> {
    let builder = kube::client::ClientBuilder::try_from(config).map_err(Error::Client)?;
    Ok(builder
        // Retry needs a cloneable inner service.
        .with_layer(&tower::buffer::BufferLayer::new(1024))
        .with_layer(&tower::timeout::TimeoutLayer::new(ATTEMPT_TIMEOUT))
        .with_layer(&tower::retry::RetryLayer::new(retry::Policy::default()))
        .build())
}

/// The process's one client, rebuilt in place when credentials go stale.
#[derive(Clone)]
pub struct Kube {
    conn: Connection,
    client: Arc<RwLock<Client>>,
    refreshes: Arc<std::sync::atomic::AtomicU32>,
}

impl Kube {
    /// Connect (no request is sent yet).
    pub async fn connect(conn: &Connection) -> Result<Self, Error> {
        let client = build_client(load_config(conn).await?)?;
        Ok(Kube {
            conn: conn.clone(),
            client: Arc::new(RwLock::new(client)),
            refreshes: Arc::default(),
        })
    }

    /// Wrap an existing client (tests, the embedded simulator). Refresh rebuilds from `conn`.
    pub fn from_client(client: Client, conn: Connection) -> Self {
        Kube {
            conn,
            client: Arc::new(RwLock::new(client)),
            refreshes: Arc::default(),
        }
    }

    /// The current client.
    pub async fn client(&self) -> Client {
        self.client.read().await.clone()
    }

    /// How many times credentials were refreshed.
    pub fn refreshes(&self) -> u32 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Rebuild the client from the config source, re-reading tokens and re-running plugins.
    pub async fn refresh(&self) -> Result<(), Error> {
        let fresh = build_client(load_config(&self.conn).await?)?;
        *self.client.write().await = fresh;
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::warn!("API server answered 401; credentials refreshed");
        Ok(())
    }

    /// Run one unary call with the call timeout; on 401 refresh the credentials and try
    /// once more.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, kube::Error>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let first = timed(f(self.client().await)).await;
        match first {
            Err(e) if is_unauthorized(&e) => {
                if self.refresh().await.is_err() {
                    return Err(e);
                }
                timed(f(self.client().await)).await
            }
            other => other,
        }
    }
}

async fn timed<T>(fut: impl Future<Output = Result<T, kube::Error>>) -> Result<T, kube::Error> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(elapsed) => Err(kube::Error::Service(Box::new(elapsed))),
    }
}

/// The API server's status code of an error, if it answered with one.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Whether the server said our credentials are not valid.
pub fn is_unauthorized(e: &kube::Error) -> bool {
    api_code(e) == Some(401)
}

/// Whether the server said the object does not exist.
pub fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}
