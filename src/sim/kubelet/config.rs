//! The kubelet's part of the sim config: the one node, its capacity, labels and taints,
//! image pull-failure patterns, back-off timings and where pod files live.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

use super::image::PullFailure;
use super::quantity::{self, Milli};

/// How the simulated node looks and how its kubelet behaves. `Default` is a node named
/// `podrun-sim` with the host's CPU count and memory, no taints and no failing images.
#[derive(Debug, Clone)]
pub struct Config {
    /// `metadata.name` of the node; pods get `spec.nodeName` set to it.
    pub node_name: String,
    /// Allocatable CPU, a quantity (`"4"`, `"3500m"`). Default: the host's CPU count.
    pub cpu: String,
    /// Allocatable memory, a quantity (`"16Gi"`). Default: the host's `MemTotal`.
    pub memory: String,
    /// Allocatable ephemeral storage. Default `100Gi`.
    pub ephemeral_storage: String,
    /// How many pods fit on the node. Default 1000 (the real default of 110 would stop
    /// the 500-pod benchmark).
    pub max_pods: u32,
    /// Labels besides the well-known `kubernetes.io/{hostname,os,arch}` ones.
    pub labels: BTreeMap<String, String>,
    /// Node taints (none by default) checked against pod tolerations when scheduling.
    pub taints: Vec<Taint>,
    /// Images whose pull fails: globs (`*missing*`) or regexes prefixed `re:`,
    /// matched against the image exactly as written in the pod.
    pub image_pull_failures: Vec<String>,
    /// Directory for pod volumes, termination-message files and container logs. Default:
    /// a fresh directory under the system temp dir, made by [`super::Kubelet::start`].
    pub root_dir: Option<PathBuf>,
    /// First CrashLoopBackOff delay (kubelet: 10s), doubled per restart.
    pub crash_loop_backoff: Duration,
    /// First ImagePullBackOff delay (kubelet: 10s), doubled per failed pull.
    pub image_pull_backoff: Duration,
    /// Cap for both back-offs (kubelet: 300s).
    pub max_backoff: Duration,
    /// How long after ErrImagePull the kubelet's next sync reports ImagePullBackOff.
    pub resync_delay: Duration,
    /// Retry interval for config errors and failed mounts (a missing Secret may appear).
    pub retry_interval: Duration,
    /// The node and pod IP (host networking). Default `127.0.0.1`.
    pub host_ip: String,
    /// Token written into projected `serviceAccountToken` volumes.
    pub service_account_token: String,
    /// PEM written as `ca.crt` when the `kube-root-ca.crt` ConfigMap does not exist.
    pub root_ca_pem: String,
    /// The API server's address, published to containers as the `kubernetes` service
    /// (`KUBERNETES_SERVICE_HOST`/`_PORT`...) so in-cluster clients reach the sim.
    /// Default: none (no service variables).
    pub api_endpoint: Option<std::net::SocketAddr>,
    /// A registry made before the kubelet (e.g. handed to the API server's logs/exec
    /// endpoints first); default: a new one, see [`super::Kubelet::registry`].
    pub registry: Option<std::sync::Arc<super::Registry>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_name: "podrun-sim".into(),
            cpu: host_cpus().to_string(),
            memory: host_memory(),
            ephemeral_storage: "100Gi".into(),
            max_pods: 1000,
            labels: BTreeMap::new(),
            taints: Vec::new(),
            image_pull_failures: Vec::new(),
            root_dir: None,
            crash_loop_backoff: Duration::from_secs(10),
            image_pull_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
            resync_delay: Duration::from_millis(500),
            retry_interval: Duration::from_secs(1),
            host_ip: "127.0.0.1".into(),
            service_account_token: "podrun-sim-service-account-token".into(),
            root_ca_pem: String::new(),
            registry: None,
            api_endpoint: None,
        }
    }
}

/// A config value the kubelet cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A capacity field is not a Kubernetes quantity.
    #[error("kubelet config {field}: {source}")]
    Quantity {
        /// Which field (`cpu`, `memory`, `ephemeral_storage`).
        field: &'static str,
        /// The parse failure.
        #[source]
        source: quantity::InvalidQuantity,
    },
    /// An image pull-failure pattern does not compile.
    #[error("kubelet config image_pull_failures: pattern {pattern:?}")]
    Pattern {
        /// The pattern as configured.
        pattern: String,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
}

/// The node as the scheduler and kubelet see it, checked and parsed from [`Config`].
#[derive(Debug, Clone)]
pub struct Node {
    /// Node name.
    pub name: String,
    /// All node labels, well-known ones included.
    pub labels: BTreeMap<String, String>,
    /// Taints.
    pub taints: Vec<Taint>,
    /// Allocatable resources in milli-units, keyed by resource name.
    pub allocatable: BTreeMap<String, Milli>,
    /// Pod capacity.
    pub max_pods: u32,
    /// Compiled pull-failure patterns.
    pub pull_failures: Vec<PullFailure>,
}

impl Node {
    /// Validates `config` into a node.
    pub fn from_config(config: &Config) -> Result<Self, Error> {
        let q = |field: &'static str, v: &str| {
            quantity::parse(v).map_err(|source| Error::Quantity { field, source })
        };
        let mut allocatable = BTreeMap::new();
        allocatable.insert("cpu".to_string(), q("cpu", &config.cpu)?);
        allocatable.insert("memory".to_string(), q("memory", &config.memory)?);
        allocatable.insert(
            "ephemeral-storage".to_string(),
            q("ephemeral_storage", &config.ephemeral_storage)?,
        );
        let mut labels = BTreeMap::from([
            (
                "kubernetes.io/hostname".to_string(),
                config.node_name.clone(),
            ),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), go_arch().to_string()),
            ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
            ("beta.kubernetes.io/arch".to_string(), go_arch().to_string()),
        ]);
        labels.extend(config.labels.clone());
        let pull_failures = config
            .image_pull_failures
            .iter()
            .map(|p| {
                PullFailure::new(p).map_err(|source| Error::Pattern {
                    pattern: p.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            name: config.node_name.clone(),
            labels,
            taints: config.taints.clone(),
            allocatable,
            max_pods: config.max_pods,
            pull_failures,
        })
    }
}

/// The host architecture in Go's spelling, as `kubernetes.io/arch` uses it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn host_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `MemTotal` from /proc/meminfo as a quantity, or `16Gi` when it cannot be read.
fn host_memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .map(|v| format!("{}Ki", v.trim()))
        })
        .unwrap_or_else(|| "16Gi".into())
}
