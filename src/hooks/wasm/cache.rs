//! On-disk cache of compiled components, keyed by sha256(component) and wasmtime's
//! compatibility hash, in a directory only podrun writes (0700, owned by us).
//!
//! A cache file is `sha256(artifact) ‖ artifact`. Deserialising a compiled artifact is
//! `unsafe` (it is native code), so the digest is re-checked and the directory's owner and
//! mode verified before every load; anything that does not match is recompiled.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// A directory of compiled components for one engine configuration.
pub(crate) struct DiskCache {
    dir: PathBuf,
    compat: String,
}

impl DiskCache {
    /// Opens (creating 0700) `dir`; `None` with a warning if it is not safe to load from.
    pub(crate) fn open(engine: &Engine, dir: &Path) -> Option<DiskCache> {
        if let Err(e) = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            tracing::warn!("WASM cache disabled: cannot create {}: {e}", dir.display());
            return None;
        }
        if let Err(why) = check_private(dir) {
            tracing::warn!("WASM cache disabled: {}: {why}", dir.display());
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Some(DiskCache {
            dir: dir.to_path_buf(),
            compat: format!("{:016x}", h.finish()),
        })
    }

    fn path(&self, digest: &[u8; 32]) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hex::encode(digest), self.compat))
    }

    /// The cached component for this wasm digest, if present and intact.
    pub(crate) fn get(&self, engine: &Engine, digest: &[u8; 32]) -> Option<Component> {
        let path = self.path(digest);
        // Re-check ownership each time: the directory could have been chmod-ed meanwhile.
        check_private(&self.dir).ok()?;
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() || meta.uid() != euid() || meta.mode() & 0o022 != 0 {
            return None;
        }
        let bytes = fs::read(&path).ok()?;
        if bytes.len() < 32 || Sha256::digest(&bytes[32..]).as_slice() != &bytes[..32] {
            tracing::warn!(
                "WASM cache entry {} is corrupt; recompiling",
                path.display()
            );
            let _ = fs::remove_file(&path);
            return None;
        }
        // SAFETY: the artifact was written by this program into a directory only this user
        // can write (checked above), and its digest matches what we wrote; wasmtime also
        // rejects artifacts from another version or configuration.
        match unsafe { Component::deserialize(engine, &bytes[32..]) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(
                    "WASM cache entry {} unusable ({e}); recompiling",
                    path.display()
                );
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component (atomically: temp file then rename; failures only warn).
    pub(crate) fn put(&self, digest: &[u8; 32], component: &Component) {
        let result = (|| -> std::io::Result<()> {
            let artifact = component
                .serialize()
                .map_err(|e| std::io::Error::other(format!("{e}")))?;
            let tmp = self.dir.join(format!(
                ".{}-{}.tmp",
                hex::encode(digest),
                std::process::id()
            ));
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&Sha256::digest(&artifact))?;
            f.write_all(&artifact)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(digest))
        })();
        if let Err(e) = result {
            tracing::warn!(
                "cannot write WASM cache entry in {}: {e}",
                self.dir.display()
            );
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The directory must be ours and writable by nobody else.
fn check_private(dir: &Path) -> Result<(), String> {
    let meta = fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a directory (or a symlink)".into());
    }
    if meta.uid() != euid() {
        return Err(format!("owned by uid {}, not by us", meta.uid()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "mode {:o} lets others in; expected 0700",
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}
