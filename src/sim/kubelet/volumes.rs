//! Pod volumes on the host and each container's mounts of them.
//!
//! Every volume is a directory under the pod's dir, filled the way the kubelet's volume
//! plugins fill theirs: emptyDir empty and shared by the pod's containers; secret,
//! configMap, downwardAPI and projected (the service-account token volume) written as
//! files with their modes; hostPath the host path itself. Files are written plainly,
//! not through the kubelet's `..data` symlink swap. PersistentVolumeClaims never get
//! here: the scheduler leaves such pods Pending (the sim serves no PVCs).
//!
//! A failure carries the kubelet's `FailedMount` wording:
//! `MountVolume.SetUp failed for volume "v" : secret "s" not found`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume, VolumeProjection,
};

use super::env::{self, Objects, Placement};

/// Default file mode of secret, configMap, downwardAPI and projected volumes (0644).
const DEFAULT_MODE: u32 = 0o644;

/// A volume that cannot be set up (event `FailedMount`; the pod stays ContainerCreating).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MountVolume.SetUp failed for volume \"{volume}\" : {detail}")]
pub struct MountError {
    /// The volume name.
    pub volume: String,
    /// What went wrong, in the plugin's words.
    pub detail: String,
}

/// Extra inputs for projected service-account volumes.
#[derive(Debug, Clone)]
pub struct Extras<'a> {
    /// The token written for `serviceAccountToken` sources.
    pub token: &'a str,
    /// `ca.crt` when the `kube-root-ca.crt` ConfigMap is missing.
    pub root_ca_pem: &'a str,
}

/// Creates or refreshes every volume of `pod` under `pod_dir/volumes`, returning each
/// volume's host path by name.
pub fn set_up(
    pod: &Pod,
    pod_dir: &Path,
    objects: &dyn Objects,
    placement: &Placement<'_>,
    extras: &Extras<'_>,
) -> Result<BTreeMap<String, PathBuf>, MountError> {
    let mut out = BTreeMap::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let path = set_up_one(pod, v, pod_dir, objects, placement, extras)?;
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

fn io_err(volume: &str, e: std::io::Error) -> MountError {
    MountError {
        volume: volume.to_string(),
        detail: e.to_string(),
    }
}

/// Files a volume source wants: relative path -> (bytes, mode).
type Files = BTreeMap<String, (Vec<u8>, u32)>;

fn set_up_one(
    pod: &Pod,
    v: &Volume,
    pod_dir: &Path,
    objects: &dyn Objects,
    placement: &Placement<'_>,
    extras: &Extras<'_>,
) -> Result<PathBuf, MountError> {
    let fail = |detail: String| MountError {
        volume: v.name.clone(),
        detail,
    };
    if let Some(hp) = &v.host_path {
        let p = PathBuf::from(&hp.path);
        match hp.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" => std::fs::create_dir_all(&p).map_err(|e| io_err(&v.name, e))?,
            "FileOrCreate" if !p.exists() => {
                std::fs::write(&p, b"").map_err(|e| io_err(&v.name, e))?;
            }
            "Directory" if !p.is_dir() => {
                return Err(fail(format!(
                    "hostPath type check failed: {} is not a directory",
                    hp.path
                )))
            }
            "File" if !p.is_file() => {
                return Err(fail(format!(
                    "hostPath type check failed: {} is not a file",
                    hp.path
                )))
            }
            _ => {}
        }
        return Ok(p);
    }
    let dir = pod_dir.join("volumes").join(&v.name);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let files: Option<Files> = if v.empty_dir.is_some() || v.ephemeral.is_some() {
        None
    } else if let Some(s) = &v.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let mode = s.default_mode.map_or(DEFAULT_MODE, |m| m as u32);
        Some(secret_files(objects, ns, &name, s.items.as_deref(), s.optional, mode).map_err(fail)?)
    } else if let Some(c) = &v.config_map {
        let mode = c.default_mode.map_or(DEFAULT_MODE, |m| m as u32);
        Some(
            config_map_files(objects, ns, &c.name, c.items.as_deref(), c.optional, mode)
                .map_err(fail)?,
        )
    } else if let Some(d) = &v.downward_api {
        let mode = d.default_mode.map_or(DEFAULT_MODE, |m| m as u32);
        Some(
            downward_files(pod, d.items.as_deref().unwrap_or(&[]), mode, placement)
                .map_err(fail)?,
        )
    } else if let Some(p) = &v.projected {
        let mode = p.default_mode.map_or(DEFAULT_MODE, |m| m as u32);
        let mut all = Files::new();
        for src in p.sources.iter().flatten() {
            all.extend(
                projected_files(pod, ns, src, mode, objects, placement, extras).map_err(fail)?,
            );
        }
        Some(all)
    } else {
        return Err(fail(
            "volume type is not supported by the podrun simulator".into(),
        ));
    };
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&v.name, e))?;
    // emptyDir is world-writable like the kubelet's (0777).
    let dir_mode = if files.is_none() { 0o777 } else { 0o755 };
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(dir_mode))
        .map_err(|e| io_err(&v.name, e))?;
    for (rel, (bytes, mode)) in files.into_iter().flatten() {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(&v.name, e))?;
        }
        std::fs::write(&path, &bytes).map_err(|e| io_err(&v.name, e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io_err(&v.name, e))?;
    }
    Ok(dir)
}

/// Maps keys to files: every key, or only `items` (each key must exist unless optional).
fn pick(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
    missing_key: impl Fn(&str) -> String,
    optional: bool,
) -> Result<Files, String> {
    match items {
        None | Some([]) => Ok(data.into_iter().map(|(k, v)| (k, (v, mode))).collect()),
        Some(items) => {
            let mut out = Files::new();
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        out.insert(
                            it.path.clone(),
                            (v.clone(), it.mode.map_or(mode, |m| m as u32)),
                        );
                    }
                    None if optional => {}
                    None => return Err(missing_key(&it.key)),
                }
            }
            Ok(out)
        }
    }
}

fn secret_files(
    objects: &dyn Objects,
    ns: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    mode: u32,
) -> Result<Files, String> {
    let optional = optional.unwrap_or(false);
    match objects.secret(ns, name) {
        None if optional => Ok(Files::new()),
        None => Err(format!("secret \"{name}\" not found")),
        Some(s) => pick(
            env::secret_data(&s),
            items,
            mode,
            |k| format!("references non-existent secret key: {k}"),
            optional,
        ),
    }
}

fn config_map_files(
    objects: &dyn Objects,
    ns: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: Option<bool>,
    mode: u32,
) -> Result<Files, String> {
    let optional = optional.unwrap_or(false);
    match objects.config_map(ns, name) {
        None if optional => Ok(Files::new()),
        None => Err(format!("configmap \"{name}\" not found")),
        Some(cm) => {
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect();
            for (k, v) in cm.binary_data.iter().flatten() {
                data.insert(k.clone(), v.0.clone());
            }
            pick(
                data,
                items,
                mode,
                |k| format!("configmap references non-existent config key: {k}"),
                optional,
            )
        }
    }
}

fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    mode: u32,
    placement: &Placement<'_>,
) -> Result<Files, String> {
    let mut out = Files::new();
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            env::field_value(pod, f, placement).map_err(|e| e.0)?
        } else if let Some(r) = &it.resource_field_ref {
            let first = pod
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .cloned()
                .unwrap_or_default();
            env::resource_value(pod, &first, r, placement).map_err(|e| e.0)?
        } else {
            String::new()
        };
        out.insert(
            it.path.clone(),
            (value.into_bytes(), it.mode.map_or(mode, |m| m as u32)),
        );
    }
    Ok(out)
}

fn projected_files(
    pod: &Pod,
    ns: &str,
    src: &VolumeProjection,
    mode: u32,
    objects: &dyn Objects,
    placement: &Placement<'_>,
    extras: &Extras<'_>,
) -> Result<Files, String> {
    if let Some(s) = &src.secret {
        return secret_files(objects, ns, &s.name, s.items.as_deref(), s.optional, mode);
    }
    if let Some(c) = &src.config_map {
        if c.name == "kube-root-ca.crt" && objects.config_map(ns, &c.name).is_none() {
            return Ok(Files::from([(
                "ca.crt".to_string(),
                (extras.root_ca_pem.as_bytes().to_vec(), mode),
            )]));
        }
        return config_map_files(objects, ns, &c.name, c.items.as_deref(), c.optional, mode);
    }
    if let Some(d) = &src.downward_api {
        return downward_files(pod, d.items.as_deref().unwrap_or(&[]), mode, placement);
    }
    if let Some(t) = &src.service_account_token {
        return Ok(Files::from([(
            t.path.clone(),
            (extras.token.as_bytes().to_vec(), mode),
        )]));
    }
    Ok(Files::new())
}

/// One bind mount of a volume (or part of one) into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Host file or directory.
    pub host_path: PathBuf,
    /// Absolute path inside the container.
    pub container_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// The container's bind mounts: its volumeMounts (with subPath / subPathExpr expanded
/// against its env), parents first.
pub fn mounts(
    container: &Container,
    volumes: &BTreeMap<String, PathBuf>,
    env: &[(String, String)],
) -> Result<Vec<Mount>, String> {
    let mut out = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let Some(base) = volumes.get(&m.name) else {
            return Err(format!(
                "cannot find volume \"{}\" to mount into container \"{}\"",
                m.name, container.name
            ));
        };
        let sub = match (&m.sub_path, &m.sub_path_expr) {
            (Some(s), _) if !s.is_empty() => s.clone(),
            (_, Some(e)) if !e.is_empty() => super::expand::expand(e, |n| {
                env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
            }),
            _ => String::new(),
        };
        let host_path = if sub.is_empty() {
            base.clone()
        } else {
            if Path::new(&sub).is_absolute() || sub.split('/').any(|c| c == "..") {
                return Err(format!(
                    "invalid subpath \"{sub}\": must be a relative path without '..'"
                ));
            }
            let p = base.join(&sub);
            if !p.exists() {
                std::fs::create_dir_all(&p).map_err(|e| format!("failed to create subPath directory for volumeMount \"{}\" of container \"{}\": {e}", m.name, container.name))?;
            }
            p
        };
        out.push(Mount {
            host_path,
            container_path: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false),
        });
    }
    out.sort_by_key(|m| m.container_path.trim_end_matches('/').matches('/').count());
    Ok(out)
}
