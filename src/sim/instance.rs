//! One running simulator: [`Sim::start`] generates the PKI and token, binds 127.0.0.1,
//! serves the API, writes the 0600 kubeconfig into its own temp dir (or the given path),
//! and hands back a handle with the counters, the fault list and [`Sim::shutdown`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::sim::containers::Lookup;
use crate::sim::faults::{Fault, Faults, RequestCounts};
use crate::sim::kubelet::{self, Kubelet};
use crate::sim::runtime::Runtime;
use crate::sim::server::{self, tls, AppState, Settings};
use crate::sim::store::{self, Store};
use crate::sim::{kubeconfig, ApiError, Kind};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Generating certificates or the TLS config failed.
    #[error("setting up TLS")]
    Tls(#[source] tls::Error),
    /// The port could not be bound.
    #[error("binding 127.0.0.1:{port}")]
    Bind {
        /// The port asked for (0 = ephemeral).
        port: u16,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The simulator's temp dir could not be created.
    #[error("creating temp dir {path}")]
    TempDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The container runtime is unusable (no isolation, sandbox tool missing...).
    #[error("starting the container runtime")]
    Runtime(#[source] crate::sim::runtime::Error),
    /// The kubelet could not start.
    #[error("starting the kubelet")]
    Kubelet(#[source] crate::sim::kubelet::Error),
    /// The kubeconfig could not be written.
    #[error("writing kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Simulator settings; `Config::default()` is an ephemeral port and a temp kubeconfig.
#[derive(Clone)]
pub struct Config {
    /// Port on 127.0.0.1; 0 (default) picks a free one.
    pub port: u16,
    /// Where to write the kubeconfig; default `<temp dir>/kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// Interval of BOOKMARK events on watches that allow them (default 60 s).
    pub bookmark_interval: Duration,
    /// Changes kept for watch replay (default 10000).
    pub history: usize,
    /// The process kubelet's settings; None runs the API server alone (pods stay
    /// Pending and unscheduled, deletes are immediate). Default: a kubelet with defaults.
    pub kubelet: Option<kubelet::Config>,
    /// Where logs/exec find containers when no built-in kubelet runs (tests that drive
    /// the runtime themselves). Ignored when `kubelet` is set.
    pub containers: Option<Arc<dyn Lookup>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("port", &self.port)
            .field("kubeconfig", &self.kubeconfig)
            .field("faults", &self.faults)
            .field("bookmark_interval", &self.bookmark_interval)
            .field("history", &self.history)
            .field("kubelet", &self.kubelet.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 0,
            kubeconfig: None,
            faults: Vec::new(),
            bookmark_interval: Duration::from_secs(60),
            history: store::Config::default().history,
            kubelet: Some(kubelet::Config::default()),
            containers: None,
        }
    }
}

/// A running simulator (see the module docs). Dropping it stops the server and removes
/// its temp dir, like [`Sim::shutdown`] without waiting.
pub struct Sim {
    state: Arc<AppState>,
    addr: SocketAddr,
    ca_pem: String,
    kubeconfig: PathBuf,
    dir: PathBuf,
    server: Option<JoinHandle<()>>,
    evictor: JoinHandle<()>,
    kubelet: Option<Kubelet>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("addr", &self.addr)
            .field("kubeconfig", &self.kubeconfig)
            .finish_non_exhaustive()
    }
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

impl Sim {
    /// Start a simulator on 127.0.0.1.
    pub async fn start(config: Config) -> Result<Sim, Error> {
        let pki = tls::generate().map_err(Error::Tls)?;
        let dir = std::env::temp_dir().join(format!("podrun-sim-{}", random_hex(6)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .map_err(|source| Error::TempDir {
                path: dir.clone(),
                source,
            })?;
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|source| Error::Bind {
                port: config.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            port: config.port,
            source,
        })?;
        let store = Store::new(store::Config {
            history: config.history,
            root_ca_pem: pki.ca_pem.clone(),
            ..store::Config::default()
        });
        let faults = Arc::new(Faults::default());
        for f in config.faults {
            faults.add(f);
        }
        let token = random_hex(32);
        let shutdown = CancellationToken::new();
        // The kubelet first: without isolation there is no simulator (exit 6 in the CLI).
        let mut containers = config.containers.clone();
        let kubelet = match config.kubelet.clone() {
            Some(mut kc) => {
                let runtime = Runtime::new(dir.join("runtime")).map_err(Error::Runtime)?;
                kc.root_ca_pem = pki.ca_pem.clone();
                // In-cluster clients in pods reach this API server with the sim's token.
                kc.api_endpoint = Some(addr);
                kc.service_account_token = token.clone();
                if kc.root_dir.is_none() {
                    kc.root_dir = Some(dir.join("kubelet"));
                }
                let k = Kubelet::start(store.clone(), runtime, kc).map_err(Error::Kubelet)?;
                // The node object, so `kubectl get nodes` shows where pods run.
                let _ = store.create(Kind::Node, "", k.node_object());
                containers = Some(k.registry() as Arc<dyn Lookup>);
                Some(k)
            }
            None => None,
        };
        let state = Arc::new(AppState {
            store,
            token: token.clone(),
            faults,
            requests: Arc::new(RequestCounts::default()),
            containers,
            settings: Settings {
                bookmark_interval: config.bookmark_interval,
                address: addr.to_string(),
                ..Settings::default()
            },
            shutdown: shutdown.clone(),
        });
        let server = tokio::spawn(server::serve(
            listener,
            pki.server_config,
            server::router(state.clone()),
            shutdown,
        ));
        let kubeconfig = config.kubeconfig.unwrap_or_else(|| dir.join("kubeconfig"));
        let url = format!("https://{addr}");
        kubeconfig::write(&kubeconfig, &url, &pki.ca_pem, &token).map_err(|source| {
            Error::Kubeconfig {
                path: kubeconfig.clone(),
                source,
            }
        })?;
        let evictor = tokio::spawn(evict_running(state.clone()));
        Ok(Sim {
            state,
            addr,
            ca_pem: pki.ca_pem,
            kubeconfig,
            dir,
            server: Some(server),
            evictor,
            kubelet,
        })
    }

    /// Path of the kubeconfig (mode 0600).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The simulator's scratch dir (removed at shutdown).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The object store (the same one the HTTP API serves).
    pub fn store(&self) -> &Arc<Store> {
        &self.state.store
    }

    /// The fault list; add faults at any time.
    pub fn faults(&self) -> &Faults {
        &self.state.faults
    }

    /// Faults injected so far, by kind label (`status_429`, `close_watch`, ...).
    pub fn fault_counts(&self) -> BTreeMap<String, u64> {
        self.state.faults.counts()
    }

    /// Requests served so far, by `verb resource` (`list pods`, `get pods/log`, ...).
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        self.state.requests.snapshot()
    }

    /// Evict a pod through the Eviction API path (DisruptionTarget, graceful delete).
    pub fn evict(&self, namespace: &str, name: &str) -> Result<(), ApiError> {
        server::evict(&self.state, namespace, name, None)
    }

    /// Evict a running pod the kubelet's way (node pressure): phase Failed, reason
    /// Evicted, `message`; the object stays. False without a kubelet or such a pod.
    pub async fn evict_node_pressure(&self, namespace: &str, name: &str, message: &str) -> bool {
        match &self.kubelet {
            Some(k) => k.evict(namespace, name, message).await,
            None => false,
        }
    }

    /// A kube client for this simulator (from the written kubeconfig).
    pub async fn client(&self) -> Result<kube::Client, kube::Error> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(kube::Error::InferKubeconfig)?;
        let cfg =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(kube::Error::InferKubeconfig)?;
        kube::Client::try_from(cfg)
    }

    /// Stop serving: end watches and log follows, close connections, remove the temp dir.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }

    fn stop(&mut self) {
        self.evictor.abort();
        self.state.shutdown.cancel();
        self.state.store.close();
        // Dropping the kubelet stops its pod workers; the runtime kills their processes.
        self.kubelet = None;
        // Best effort: only our own scratch files live here.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
        if let Some(h) = self.server.take() {
            h.abort();
        }
    }
}

/// The `EvictRunning` fault: once a pod whose `namespace/name` matches a rule's path is
/// Running, evict it through the Eviction API path.
async fn evict_running(state: Arc<AppState>) {
    use crate::sim::faults::FaultKind;
    use crate::sim::store::{ChangeType, Since};
    use crate::sim::Kind;
    // Each pod (by uid) is evicted at most once, even though it stays Running while it
    // terminates.
    let mut evicted = std::collections::HashSet::new();
    loop {
        let Ok(mut watch) = state.store.watch(Kind::Pod, None, Since::Initial) else {
            return;
        };
        while let Some(c) = watch.next().await {
            let running = c
                .object
                .pointer("/status/phase")
                .and_then(serde_json::Value::as_str)
                == Some("Running");
            let deleting = c.object.pointer("/metadata/deletionTimestamp").is_some();
            if c.change == ChangeType::Deleted || !running || deleting || evicted.contains(c.uid())
            {
                continue;
            }
            let key = format!("{}/{}", c.namespace, c.name);
            if state
                .faults
                .take("evict", &key, |k| matches!(k, FaultKind::EvictRunning))
                .is_some()
            {
                evicted.insert(c.uid().to_string());
                let _ = server::evict(&state, &c.namespace, &c.name, None);
            }
        }
        if !watch.lagged() {
            return;
        }
    }
}
