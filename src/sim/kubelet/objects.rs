//! Secrets and ConfigMaps read from the API store for env, envFrom and volumes.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::env::Objects;
use crate::sim::store::Store;
use crate::sim::Kind;

impl Objects for Store {
    fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        let v = self.get(Kind::Secret, namespace, name).ok()?;
        serde_json::from_value(v).ok()
    }

    fn config_map(&self, namespace: &str, name: &str) -> Option<ConfigMap> {
        let v = self.get(Kind::ConfigMap, namespace, name).ok()?;
        serde_json::from_value(v).ok()
    }
}
