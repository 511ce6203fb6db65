//! Writes the kubeconfig that points clients at the simulator: CA data, server URL,
//! bearer token, one context with namespace `default`. The file holds the token, so it is
//! created with mode 0600 (and re-set to 0600 if it already existed).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine as _;

/// The context, cluster and user name in the kubeconfig.
pub const CONTEXT: &str = "podrun-sim";

/// The kubeconfig text.
pub fn render(server: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT}\n  cluster:\n    certificate-authority-data: {ca}\n    server: {server}\nusers:\n- name: {CONTEXT}\n  user:\n    token: {token}\ncontexts:\n- name: {CONTEXT}\n  context:\n    cluster: {CONTEXT}\n    user: {CONTEXT}\n    namespace: default\ncurrent-context: {CONTEXT}\npreferences: {{}}\n"
    )
}

/// Write the kubeconfig to `path` with mode 0600.
pub fn write(path: &Path, server: &str, ca_pem: &str, token: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // An existing file keeps its old mode on open; tighten it before writing the token.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(render(server, ca_pem, token).as_bytes())?;
    f.sync_all()
}
