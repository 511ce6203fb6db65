//! On-disk cache of compiled components, keyed by sha256(component) and wasmtime's
//! compatibility hash, in a directory only podrun writes (0700, owned by us).
//!
//! A cache file is `artifact ‖ crc32(artifact)` (4 bytes, little-endian), written to a
//! temp file, synced and renamed, so a reader never sees a partial one. Deserialising a
//! compiled artifact is `unsafe` (it is native code), so before every load the
//! directory's and the file's owner and mode are verified (only this user can have
//! written it, and this user can run code anyway) and the checksum catches a damaged
//! file; wasmtime itself rejects artifacts from another version or configuration.
//! Anything that does not load is removed and recompiled. (An earlier format prefixed a
//! sha256 of the artifact: re-hashing 3.7 MB took most of a cached load's time, and a
//! cryptographic digest guards against nobody this check does not.)

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
            .join(format!("{}-{}.v2.cwasm", hex::encode(digest), self.compat))
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
        let Some(artifact) = checked(&bytes) else {
            tracing::warn!(
                "WASM cache entry {} is damaged; recompiling",
                path.display()
            );
            let _ = fs::remove_file(&path);
            return None;
        };
        // SAFETY: the artifact was written (whole, by rename) by this program into a
        // directory only this user can write, the file is ours and not writable by others
        // (checked above), and its checksum matches; wasmtime also rejects artifacts from
        // another version or configuration.
        match unsafe { Component::deserialize(engine, artifact) } {
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
            f.write_all(&artifact)?;
            f.write_all(&crc32fast::hash(&artifact).to_le_bytes())?;
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

/// The artifact of a cache file whose trailing checksum matches.
fn checked(file: &[u8]) -> Option<&[u8]> {
    let (artifact, crc) = file.split_at_checked(file.len().checked_sub(4)?)?;
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    (crc32fast::hash(artifact) == crc).then_some(artifact)
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
