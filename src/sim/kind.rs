//! The resource kinds the simulator serves and their static facts (plural, kind, short
//! names, verbs, scope), shared by the store, the HTTP routes and discovery.

/// A resource kind served by the simulator (all in the core `v1` group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `namespaces` (cluster-scoped).
    Namespace,
    /// `pods`.
    Pod,
    /// `events` (core/v1).
    Event,
    /// `secrets`.
    Secret,
    /// `configmaps`.
    ConfigMap,
    /// `serviceaccounts`.
    ServiceAccount,
    /// `nodes` (cluster-scoped; the kubelet's one node).
    Node,
}

impl Kind {
    /// Every kind, in discovery order.
    pub const ALL: [Kind; 7] = [
        Kind::ConfigMap,
        Kind::Event,
        Kind::Namespace,
        Kind::Node,
        Kind::Pod,
        Kind::Secret,
        Kind::ServiceAccount,
    ];

    /// The URL plural (`pods`), also used as `details.kind` in NotFound errors.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::Event => "events",
            Kind::Secret => "secrets",
            Kind::ConfigMap => "configmaps",
            Kind::ServiceAccount => "serviceaccounts",
            Kind::Node => "nodes",
        }
    }

    /// The object `kind` (`Pod`).
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::Event => "Event",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::Node => "Node",
        }
    }

    /// The singular name used in discovery.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Pod => "pod",
            Kind::Event => "event",
            Kind::Secret => "secret",
            Kind::ConfigMap => "configmap",
            Kind::ServiceAccount => "serviceaccount",
            Kind::Node => "node",
        }
    }

    /// Short names advertised by discovery (`po`, `ns`, ...).
    pub fn short_names(self) -> &'static [&'static str] {
        match self {
            Kind::Namespace => &["ns"],
            Kind::Pod => &["po"],
            Kind::Event => &["ev"],
            Kind::Secret => &[],
            Kind::ConfigMap => &["cm"],
            Kind::ServiceAccount => &["sa"],
            Kind::Node => &["no"],
        }
    }

    /// Verbs advertised by discovery, as the API server lists them.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            Kind::Namespace => &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            _ => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
        }
    }

    /// Categories advertised by discovery (`kubectl get all`).
    pub fn categories(self) -> &'static [&'static str] {
        match self {
            Kind::Pod => &["all"],
            _ => &[],
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }

    /// Whether the kind has a `status` the main update path must not change.
    pub fn has_status(self) -> bool {
        matches!(self, Kind::Pod | Kind::Namespace | Kind::Node)
    }

    /// The kind for a URL plural.
    pub fn from_plural(plural: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == plural)
    }
}
