//! The on-disk artifact cache (SPEC §8): compiled code keyed by the sha256 of the binary and
//! the engine's compatibility hash, so a second start deserializes instead of compiling, and a
//! wasmtime or configuration change misses. Writes go to a temporary file renamed into place,
//! so several processes can share one directory. Each file ends with the sha256 of the
//! artifact before it: wasmtime checks an artifact's header and layout but not its code bytes,
//! so a truncated or corrupted file would otherwise run; one that fails the check is compiled
//! again and rewritten.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use sha2::Digest;
use wasmtime::component::Component;
use wasmtime::Module;

use super::Build;

/// Compilations and cache hits since the process started (`wippy.stats()`).
pub static COMPILED: AtomicU64 = AtomicU64::new(0);
pub static CACHE_HITS: AtomicU64 = AtomicU64::new(0);

/// The process-wide directory set by `wippy.configure{ cache_dir = }` (`Some(None)` = off).
static CONFIGURED: Mutex<Option<Option<PathBuf>>> = Mutex::new(None);

/// Sets the process-wide cache directory (`None` disables the cache).
pub fn configure(dir: Option<PathBuf>) {
    if let Ok(mut c) = CONFIGURED.lock() {
        *c = Some(dir);
    }
}

/// The directory a load uses: its own option (`Some(None)`: no cache), else the configured
/// one, else the default.
pub fn dir_for(load_option: Option<Option<PathBuf>>) -> Option<PathBuf> {
    if let Some(dir) = load_option {
        return dir;
    }
    if let Some(dir) = CONFIGURED.lock().ok().and_then(|c| c.clone()) {
        return dir;
    }
    default_dir()
}

/// `$XDG_CACHE_HOME/wippy`, else `~/.cache/wippy`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("wippy"));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".cache").join("wippy"))
}

fn artifact_path(bytes: &[u8], kind: &str, digest: Option<[u8; 32]>, build: &Build) -> Option<PathBuf> {
    let dir = build.cache_dir.clone()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    build.engine().precompile_compatibility_hash().hash(&mut h);
    let digest: [u8; 32] = digest.unwrap_or_else(|| sha2::Sha256::digest(bytes).into());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(dir.join(format!("{hex}-{:016x}.{kind}", h.finish())))
}

/// Bytes of the checksum that ends every artifact file.
const SUM_LEN: usize = 32;

/// The artifact in a cache file, when its checksum matches (`None` for a truncated or
/// corrupted file).
fn verified(file: &[u8]) -> Option<&[u8]> {
    let body_len = file.len().checked_sub(SUM_LEN)?;
    let (body, sum) = file.split_at(body_len);
    (sha2::Sha256::digest(body).as_slice() == sum).then_some(body)
}

/// Writes `data` and its checksum to `path` atomically; failures (a read-only or full
/// directory) only cost the next start a compile.
fn store(path: &Path, data: &[u8]) {
    let Some(dir) = path.parent() else { return };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(
        ".{}.{}.{:?}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("artifact"),
        std::process::id(),
        std::thread::current().id()
    ));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(data)?;
        f.write_all(&sha2::Sha256::digest(data))?;
        f.flush()
    });
    if written.is_ok() && std::fs::rename(&tmp, path).is_ok() {
        return;
    }
    let _ = std::fs::remove_file(&tmp);
}

/// An exclusive lock on the artifact `path` (a `.NAME.lock` file beside it), held until the
/// file is dropped; `None` when the directory cannot have one (then nothing is shared).
fn lock(path: &Path) -> Option<std::fs::File> {
    lock_file(path.parent()?, &format!(".{}.lock", path.file_name()?.to_str()?))
}

/// An exclusive lock on the cache directory `dir` for a whole `wippy.load` (`.load.lock`), so
/// that processes loading the same registry at once (nginx's workers) do not split the
/// compiling between them: the second finds everything compiled.
pub fn lock_dir(dir: &Path) -> Option<std::fs::File> {
    lock_file(dir, ".load.lock")
}

fn lock_file(dir: &Path, name: &str) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(dir).ok()?;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(name)).ok()?;
    // SAFETY: flock on a descriptor this function owns; it blocks until the lock is ours.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0;
    locked.then_some(file)
}

/// Loads an artifact from the cache or compiles it (and then caches it).
fn cached<T>(
    bytes: &[u8],
    digest: Option<[u8; 32]>,
    build: &Build,
    kind: &str,
    deserialize: impl Fn(&Path) -> wasmtime::Result<T>,
    compile: impl FnOnce() -> wasmtime::Result<T>,
    serialize: impl FnOnce(&T) -> wasmtime::Result<Vec<u8>>,
) -> wasmtime::Result<T> {
    let path = artifact_path(bytes, kind, digest, build);
    // The file is mapped (not copied) once its checksum matches: wasmtime reads the ELF image
    // by its own headers, so the checksum after it is never looked at, and memory images can
    // map straight from the file. A file renamed over this one meanwhile is another whole one.
    let whole = |p: &PathBuf| std::fs::read(p).is_ok_and(|file| verified(&file).is_some());
    if let Some(p) = path.as_ref().filter(|p| whole(p)) {
        if let Ok(t) = deserialize(p) {
            CACHE_HITS.fetch_add(1, Ordering::Relaxed);
            return Ok(t);
        }
    }
    // Processes starting together (nginx's workers) compile each artifact once: the others
    // wait for the lock, then read what the first one wrote.
    let held = path.as_deref().and_then(lock);
    if let Some(p) = path.as_ref().filter(|p| held.is_some() && whole(p)) {
        if let Ok(t) = deserialize(p) {
            CACHE_HITS.fetch_add(1, Ordering::Relaxed);
            return Ok(t);
        }
    }
    let t = compile()?;
    COMPILED.fetch_add(1, Ordering::Relaxed);
    if let (Some(p), Ok(data)) = (path, serialize(&t)) {
        store(&p, &data);
    }
    Ok(t)
}

// SAFETY (both deserializations below): the file was written by this cache, keyed by the
// binary's hash and the engine's compatibility hash, in a directory the user chose, and its
// bytes match the checksum written after them; wasmtime checks the header and version, and a
// file it rejects is compiled again.

/// A core module, from the cache or compiled (and then cached). `digest` is the sha256 of
/// `bytes` when the caller has it already.
///
/// # Errors
/// The compiler's error for an invalid module.
pub fn module(bytes: &[u8], digest: Option<[u8; 32]>, build: &Build) -> wasmtime::Result<Module> {
    cached(
        bytes,
        digest,
        build,
        "cwasm",
        // SAFETY: an artifact this cache wrote for this engine's compatibility hash, whole (its
        // checksum matches); wasmtime checks its header and version.
        |p| unsafe { Module::deserialize_file(build.engine(), p) },
        || Module::from_binary(build.engine(), bytes),
        |m| m.serialize(),
    )
}

/// A component, from the cache or compiled (and then cached).
///
/// # Errors
/// The compiler's error for an invalid component.
pub fn component(bytes: &[u8], digest: Option<[u8; 32]>, build: &Build) -> wasmtime::Result<Component> {
    cached(
        bytes,
        digest,
        build,
        "ccwasm",
        // SAFETY: as for modules above: this cache's own artifact, whole, checked by wasmtime.
        |p| unsafe { Component::deserialize_file(build.engine(), p) },
        || Component::new(build.engine(), bytes),
        |c| c.serialize(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Flavor;

    /// Calls the module's export `f` (a fresh instance on the plain engine).
    fn call_f(m: &Module) -> i32 {
        let mut store = wasmtime::Store::new(m.engine(), ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = wasmtime::Instance::new(&mut store, m, &[]).expect("instantiates");
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").expect("exports f");
        f.call(&mut store, ()).expect("runs")
    }

    #[test]
    fn a_truncated_or_corrupted_artifact_is_compiled_again_and_rewritten() {
        let dir = std::env::temp_dir().join(format!("wippy-cache-unit-{}", std::process::id()));
        let build = Build { flavor: Flavor::default(), cache_dir: Some(dir.clone()) };
        let wasm = wat::parse_str(r#"(module (func (export "f") (result i32) i32.const 7))"#).expect("valid WAT");
        assert_eq!(call_f(&module(&wasm, None, &build).expect("compiles")), 7);
        let path = artifact_path(&wasm, "cwasm", None, &build).expect("a cache path");
        let good = std::fs::read(&path).expect("the artifact was written");
        assert!(verified(&good).is_some(), "a fresh artifact passes its checksum");
        // SAFETY: the artifact this cache just wrote for this engine.
        let mapped = unsafe { Module::deserialize_file(build.engine(), &path) };
        assert_eq!(call_f(&mapped.expect("wasmtime maps the file, checksum and all")), 7);
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x40;
        let damaged: [(&str, Vec<u8>); 4] = [
            ("truncated to half", good[..good.len() / 2].to_vec()),
            ("a byte flipped in the middle", flipped),
            ("its checksum cut off", good[..good.len() - SUM_LEN].to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, bytes) in damaged {
            std::fs::write(&path, &bytes).expect("writable");
            assert!(verified(&bytes).is_none(), "{what}: fails the checksum");
            assert_eq!(call_f(&module(&wasm, None, &build).expect("compiles again")), 7, "{what}");
            let now = std::fs::read(&path).expect("rewritten");
            assert!(verified(&now).is_some(), "{what}: the rewritten artifact is whole");
            assert_ne!(now, bytes, "{what}: the damaged file was replaced");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
