//! The process's WASM engine: one wasmtime `Engine`, the epoch ticker, the linker offering
//! `podrun:hooks/host` and empty WASI, and the compiled-component caches (disk and memory).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, StoreContextMut};

use super::cache::DiskCache;
use super::config::{default_cache_dir, engine_config, engine_error, WasmConfig};
use super::error::{Error, Result};
use super::hook::{Loaded, WasmHook};
use super::store::{HostState, LogLevel};
use super::{Point, WIT_VERSION};

/// The WASI monotonic-clock interface as wasmtime-wasi defines it (older 0.2.x imports
/// resolve to it).
const WASI_MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Import names a hook may have besides WASI.
const HOST_IMPORT: &str = "podrun:hooks/host@0.1.0";

/// WASI 0.2 packages linked (with an empty capability set) for language runtimes.
const WASI_PACKAGES: &[&str] = &[
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
];

/// The WASM hook engine. Cheap to clone; one per process.
#[derive(Clone)]
pub struct WasmEngine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) engine: Engine,
    pub(crate) config: WasmConfig,
    linker: Linker<HostState>,
    disk: Option<DiskCache>,
    loaded: Mutex<HashMap<[u8; 32], Arc<Loaded>>>,
}

impl WasmEngine {
    /// Builds the engine (pooling allocator reserved up front) and starts its epoch ticker.
    pub fn new(config: WasmConfig) -> Result<WasmEngine> {
        let engine = Engine::new(&engine_config(&config)?).map_err(engine_error)?;
        let mut linker: Linker<HostState> = Linker::new(&engine);
        linker
            .instance(HOST_IMPORT)
            .and_then(|mut host| {
                host.func_wrap(
                    "log",
                    |mut cx: StoreContextMut<'_, HostState>,
                     (level, message): (LogLevel, String)| {
                        cx.data_mut().push_log(level, &message);
                        Ok(())
                    },
                )
            })
            .map_err(engine_error)?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
        cap_wasi_sleeps(&mut linker).map_err(engine_error)?;
        let disk = if config.disk_cache {
            config
                .cache_dir
                .clone()
                .or_else(default_cache_dir)
                .and_then(|dir| DiskCache::open(&engine, &dir))
        } else {
            None
        };
        spawn_ticker(&engine, config.epoch_tick)?;
        Ok(WasmEngine {
            inner: Arc::new(EngineInner {
                engine,
                config,
                linker,
                disk,
                loaded: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The engine's configuration.
    pub fn config(&self) -> &WasmConfig {
        &self.inner.config
    }

    /// Loads a hook file (component binary or WAT text): compiled once per process and
    /// cached on disk; its imports checked; its points found. Runs no guest code.
    pub fn load(&self, path: &Path) -> Result<WasmHook> {
        let meta = std::fs::metadata(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.len() > self.inner.config.max_component_size as u64 {
            return Err(Error::Load {
                path: path.to_path_buf(),
                message: format!(
                    "file of {} bytes exceeds the limit of {} bytes",
                    meta.len(),
                    self.inner.config.max_component_size
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(path, &bytes)
    }

    /// Like [`WasmEngine::load`] for bytes already read; `path` names the hook in errors.
    pub fn load_bytes(&self, path: &Path, bytes: &[u8]) -> Result<WasmHook> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let cached = self.lock_loaded().get(&digest).cloned();
        let loaded = match cached {
            Some(l) => l,
            None => {
                let l = Arc::new(self.compile(path, &digest, bytes)?);
                self.lock_loaded().insert(digest, l.clone());
                l
            }
        };
        Ok(WasmHook::new(
            self.clone(),
            loaded,
            path.to_path_buf(),
            self.inner.config.limits.clone(),
        ))
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Loaded>>> {
        // A panic while holding this lock cannot leave the map inconsistent (insert/get only).
        self.inner
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn compile(&self, path: &Path, digest: &[u8; 32], bytes: &[u8]) -> Result<Loaded> {
        let inner = &self.inner;
        let from_disk = inner
            .disk
            .as_ref()
            .and_then(|d| d.get(&inner.engine, digest));
        let component = match from_disk {
            Some(c) => c,
            None => {
                let c = Component::new(&inner.engine, bytes).map_err(|e| Error::Load {
                    path: path.to_path_buf(),
                    message: format!("{e:#}"),
                })?;
                // Check imports before caching so a rejected component is not kept.
                check_imports(&inner.engine, &c, path)?;
                if let Some(d) = &inner.disk {
                    d.put(digest, &c);
                }
                c
            }
        };
        check_imports(&inner.engine, &component, path)?;
        let points = find_points(&inner.engine, &component, path)?;
        let pre = inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| Error::Load {
                path: path.to_path_buf(),
                message: format!("{e:#}"),
            })?;
        let imports = component
            .component_type()
            .imports(&inner.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        Ok(Loaded {
            pre,
            points,
            imports,
        })
    }
}

/// Rejects any import that is not `podrun:hooks/host` or a WASI 0.2 interface we link.
fn check_imports(engine: &Engine, component: &Component, path: &Path) -> Result<()> {
    for (name, _) in component.component_type().imports(engine) {
        let ok = name == HOST_IMPORT
            || (WASI_PACKAGES.iter().any(|p| name.starts_with(p)) && name.contains("@0.2."));
        if !ok {
            return Err(Error::ForbiddenImport {
                path: path.to_path_buf(),
                name: name.to_string(),
            });
        }
    }
    Ok(())
}

/// Finds the hook points a component exports, with their export indices.
fn find_points(
    engine: &Engine,
    component: &Component,
    path: &Path,
) -> Result<Vec<(Point, wasmtime::component::ComponentExportIndex)>> {
    let mut points = Vec::new();
    for (name, _) in component.component_type().exports(engine) {
        let Some(rest) = name.strip_prefix("podrun:hooks/") else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        if version != WIT_VERSION {
            return Err(Error::Version {
                path: path.to_path_buf(),
                found: name.to_string(),
                supported: WIT_VERSION,
            });
        }
        let Some(point) = super::point_from_interface(iface) else {
            continue;
        };
        let func = component
            .get_export_index(None, name)
            .and_then(|i| component.get_export_index(Some(&i), super::interface(point)))
            .ok_or_else(|| Error::Load {
                path: path.to_path_buf(),
                message: format!(
                    "export {name} has no function `{}`",
                    super::interface(point)
                ),
            })?;
        points.push((point, func));
    }
    Ok(points)
}

/// One thread per engine bumps the epoch every tick; it holds a weak reference and ends
/// when the engine is dropped.
fn spawn_ticker(engine: &Engine, tick: Duration) -> Result<()> {
    let weak = engine.weak();
    let tick = tick.max(Duration::from_millis(1));
    std::thread::Builder::new()
        .name("podrun-wasm-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .map(drop)
        .map_err(|e| Error::Engine {
            message: format!("cannot start the epoch thread: {e}"),
        })
}

/// Replaces WASI's monotonic-clock subscriptions with ones capped at the call's deadline.
/// A guest blocked in `poll` on a sleep runs no wasm, so epoch interruption cannot reach
/// it; with the cap, the sleep ends at the deadline and the guest traps when it resumes.
fn cap_wasi_sleeps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(WASI_MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut cx: StoreContextMut<'_, HostState>, (nanos,): (u64,)| {
            Ok((cx.data_mut().capped_sleep(Duration::from_nanos(nanos))?,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut cx: StoreContextMut<'_, HostState>, (when,): (u64,)| {
            Ok((cx.data_mut().capped_sleep_until(when)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
