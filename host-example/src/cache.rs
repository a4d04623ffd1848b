//! A cache of compiled components: the serialized artifact is keyed by the
//! SHA-256 of the component and the engine's compatibility hash, so a command
//! against a warm cache skips Cranelift entirely.
//!
//! An artifact is native code that is run as it is, so the folder must be
//! private: it is created with mode 0700, and one that another user owns or
//! that others can write is refused (as is an artifact another user owns).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where compiled components are kept: `LD_DYNAMODB_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/ld-dynamodb`, else `~/.cache/ld-dynamodb`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("LD_DYNAMODB_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("ld-dynamodb")))
        .or_else(|| var("HOME").map(|d| d.join(".cache/ld-dynamodb")))
}

/// The cache file for these component bytes on this engine.
fn entry(dir: &Path, engine: &Engine, bytes: &[u8]) -> PathBuf {
    let mut settings = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{hex}-{:016x}.cwasm", settings.finish()))
}

/// The compiled component, from the cache when possible; a fresh compilation
/// is stored for next time (cache failures only cost the compile). Artifacts
/// are written to a temporary file and renamed into place, never rewritten in
/// place, because a loaded artifact stays mapped into the processes using it.
pub fn load(engine: &Engine, bytes: &[u8], dir: Option<&Path>) -> Result<Component> {
    let Some(dir) = dir else {
        return compile(engine, bytes);
    };
    private_dir(dir)?;
    let path = entry(dir, engine, bytes);
    if path.exists() {
        check_owner(&path)?;
        // SAFETY: the file was written by `Component::serialize` of this same
        // engine configuration (its compatibility hash is in the name), and
        // wasmtime checks the artifact's header before using it.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let component = compile(engine, bytes)?;
    if let Ok(serialized) = component.serialize() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let stored = std::fs::write(&tmp, serialized).and_then(|()| std::fs::rename(&tmp, &path));
        if stored.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(component)
}

/// Creates the folder (mode 0700) if needed, then checks that it belongs to this
/// user and that no one else can write to it.
fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create the compile cache folder {}", dir.display()))?;
    }
    check_owner(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o022 != 0 {
        bail!(
            "the compile cache folder {} is writable by other users (mode {:o}): refusing to load native code from it; make it private (chmod 700) or set LD_DYNAMODB_CACHE_DIR",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// Fails when `path` belongs to another user.
fn check_owner(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if owner != me {
        bail!(
            "{} in the compile cache belongs to another user (uid {owner}): refusing to load native code from it",
            path.display()
        );
    }
    Ok(())
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::new(engine, bytes).map_err(|e| anyhow!("cannot compile the component: {e}"))
}
