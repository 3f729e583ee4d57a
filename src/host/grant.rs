//! What one entry may reach: its [`Grant`], resolved at load from `imports`, `wasi` and the
//! `fs.directory` / `env.variable` entries it names, and turned into a WASI context for each
//! new instance.
//!
//! Defaults, as `WasiCtxBuilder::new()` documents its own: a grant gives **nothing** that is not
//! written in the entry —
//! - no interface outside the `imports` profiles (they link, and fail when called: see
//!   [`super::deny`]);
//! - no arguments but `wasi.args` (the whole argv, program name included), none by default;
//! - no environment variable but those of `wasi.env`, each read from the host's environment
//!   at call time (its `default` when unset or empty; left out when neither, or the call
//!   fails if `required`);
//! - no directory but `wasi.mounts`, each confined to its `fs.directory` (no `..`, absolute
//!   host path or symbolic link leads out), read-only when `read_only`; `wasi.cwd` is the
//!   guest's initial directory (`wasi:cli/environment.initial-cwd`), and relative paths open
//!   under it when it lies inside a mount;
//! - stdin closed; stdout and stderr go to the host's stderr, each line prefixed with the
//!   entry ID (reachable only with `wasi:cli`);
//! - no network unless `wasi:sockets` or `wasi:http`: then `wasi.allowed_hosts`, or public
//!   addresses only ([`super::net`]);
//! - clocks and random numbers of the host (only with `wasi:clocks` / `wasi:random`).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::net::Policy;
use super::sockets::NameBook;
use crate::registry::{Common, Entry, Id, Profile, Profiles, Spec};

/// How a process runs, besides its grant (SPEC §7): a command's real stdio and argv, or a
/// spawned process's argv. Calls of functions have none.
#[derive(Clone, Default)]
pub struct Launch {
    /// The whole argv (the program's name first); `None`: the grant's `wasi.args`.
    pub argv: Option<Vec<String>>,
    /// The process's own stdin, stdout and stderr (a command), instead of a function's: no
    /// stdin, output to the host's stderr prefixed with the entry's ID.
    pub inherit_stdio: bool,
    /// Variables set for this run on top of the grant's `wasi.env` (the launcher's `--env`).
    pub env: Vec<(String, String)>,
    /// An actor's mailbox (`wippy:actor/process`).
    pub mailbox: Option<Arc<crate::mailbox::Mailbox>>,
}

/// An entry's capabilities.
#[derive(Debug, Default)]
pub struct Grant {
    /// The `imports` profiles with the ones they bring along.
    pub profiles: Profiles,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    /// Where `cwd` lies, when inside a mount: the mount's directory, the path beneath it, and
    /// read-only (opened as the guest's `.`).
    cwd_dir: Option<(PathBuf, String, bool)>,
    pub env: Vec<EnvGrant>,
    /// Sorted by guest path.
    pub mounts: Vec<MountGrant>,
    pub net: Arc<Policy>,
    /// References that no longer resolve (an `fs.directory` removed after load): calls fail.
    pub broken: Vec<String>,
    /// Every `fs.directory` and `env.variable` entry the `wasi` settings name, resolved or not.
    refs: Vec<String>,
    /// Equal for grants that give the same (resources may pass only between such entries).
    pub fingerprint: u64,
}

/// One `wasi.env` item, with its `env.variable` entry resolved.
#[derive(Debug, Clone, Hash)]
pub struct EnvGrant {
    /// The `env.variable` entry.
    pub entry: String,
    /// The name inside the guest.
    pub name: String,
    /// The host's variable.
    pub variable: String,
    pub default: Option<String>,
    pub required: bool,
}

/// One `wasi.mounts` item, with its `fs.directory` entry resolved.
#[derive(Debug, Clone, Hash)]
pub struct MountGrant {
    /// The `fs.directory` entry.
    pub entry: String,
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// The environment of one call: the values of its `wasi.env`, read when the call starts.
#[derive(Clone, Debug, Default)]
pub struct Env {
    /// Identifies the values (0: no variables): an instance built with other values is not
    /// reused.
    pub stamp: u64,
    pub pairs: Option<Arc<Vec<(String, String)>>>,
}

impl Env {
    /// The environment of an entry without `wasi.env`.
    pub const NONE: Env = Env { stamp: 0, pairs: None };
}

impl Grant {
    /// Resolves an entry's grant; `find` gives the entries its references name.
    pub fn new(common: &Common, find: &dyn Fn(&Id) -> Option<Arc<Entry>>) -> Grant {
        let wasi = &common.wasi;
        let mut broken = Vec::new();
        let mut env = Vec::new();
        for e in &wasi.env {
            match find(&e.id).as_deref().map(|x| &x.spec) {
                Some(Spec::EnvVariable(v)) => env.push(EnvGrant {
                    entry: e.id.to_string(),
                    name: e.name.clone().unwrap_or_else(|| v.variable.clone()),
                    variable: v.variable.clone(),
                    default: v.default.clone(),
                    required: e.required,
                }),
                _ => broken.push(format!("env.variable {} no longer exists", e.id)),
            }
        }
        let mut mounts = Vec::new();
        for m in &wasi.mounts {
            match find(&m.fs).as_deref().map(|x| &x.spec) {
                Some(Spec::FsDirectory(d)) => mounts.push(MountGrant {
                    entry: m.fs.to_string(),
                    host: d.path.clone(),
                    guest: m.guest.clone(),
                    read_only: m.read_only,
                }),
                _ => broken.push(format!("fs.directory {} no longer exists", m.fs)),
            }
        }
        mounts.sort_by(|a, b| a.guest.cmp(&b.guest));
        let refs =
            wasi.env.iter().map(|e| e.id.to_string()).chain(wasi.mounts.iter().map(|m| m.fs.to_string())).collect();
        let profiles = Profiles::granted(&common.imports);
        let network = profiles.has(Profile::Sockets) || profiles.has(Profile::Http);
        let cwd_dir = wasi.cwd.as_deref().and_then(|cwd| cwd_dir(cwd, &mounts));
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (profiles, &wasi.args, &wasi.cwd, &env, &mounts, &wasi.allowed_hosts).hash(&mut h);
        Grant {
            profiles,
            args: wasi.args.clone(),
            cwd: wasi.cwd.clone(),
            cwd_dir,
            env,
            mounts,
            net: Arc::new(Policy::new(network, wasi.allowed_hosts.as_deref())),
            broken,
            refs,
            fingerprint: h.finish(),
        }
    }

    /// Names the entries this grant depends on (an update of one re-resolves it).
    pub fn depends_on(&self, id: &str) -> bool {
        self.refs.iter().any(|r| r == id)
    }

    /// The guest can reach files (`wasi:filesystem`, or `wasi1` for core modules): only then
    /// are the mounts opened.
    pub fn files(&self) -> bool {
        self.profiles.has(Profile::Filesystem) || self.profiles.has(Profile::Wasi1)
    }

    /// The guest can read its environment (`wasi:cli`, or `wasi1`): only then are the
    /// `wasi.env` variables read (and a missing required one fails the call).
    pub fn cli(&self) -> bool {
        self.profiles.has(Profile::Cli) || self.profiles.has(Profile::Wasi1)
    }

    /// Reads this call's environment (cheap when the entry has no `wasi.env`).
    ///
    /// # Errors
    /// A `required` variable that is unset or empty and has no default.
    #[inline]
    pub fn env_values(&self) -> Result<Env, String> {
        if self.env.is_empty() || !self.cli() {
            return Ok(Env::NONE);
        }
        self.read_env()
    }

    fn read_env(&self) -> Result<Env, String> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut pairs = Vec::with_capacity(self.env.len());
        for e in &self.env {
            let host = std::env::var_os(&e.variable).filter(|v| !v.is_empty());
            let value = match (host, &e.default) {
                (Some(v), _) => v.to_string_lossy().into_owned(),
                (None, Some(d)) => d.clone(),
                (None, None) if e.required => return Err(format!("required wasi env variable not found: {}", e.entry)),
                (None, None) => continue,
            };
            (&e.name, &value).hash(&mut h);
            pairs.push((e.name.clone(), value));
        }
        Ok(Env { stamp: h.finish() | 1, pairs: Some(Arc::new(pairs)) })
    }

    /// A WASI builder holding exactly what this grant gives, for one new instance.
    ///
    /// # Errors
    /// A mount whose directory cannot be opened.
    pub fn wasi_builder(
        &self,
        entry: &str,
        env: &Env,
        names: &Arc<NameBook>,
        caller: &Arc<super::net::Caller>,
        stderr: &Arc<super::output::Tail>,
        launch: Option<&Launch>,
    ) -> Result<WasiCtxBuilder, String> {
        if let Some(why) = self.broken.first() {
            return Err(why.clone());
        }
        let mut b = WasiCtxBuilder::new();
        b.stdout(super::output::Prefixed::new(entry)).stderr(super::output::Prefixed::stderr(entry, stderr));
        // The builder appends arguments: a launch's argv replaces `wasi.args`.
        match launch.and_then(|l| l.argv.as_ref()) {
            Some(argv) => b.args(argv),
            None => b.args(&self.args),
        };
        if let Some(pairs) = &env.pairs {
            b.envs(pairs);
        }
        if let Some(l) = launch {
            if l.inherit_stdio {
                b.inherit_stdio();
            }
            b.envs(&l.env);
        }
        if self.files() {
            for m in &self.mounts {
                open(&mut b, &m.host, &m.guest, m.read_only)
                    .map_err(|e| format!("cannot open mount {} ({} at {}): {e}", m.guest, m.entry, m.host.display()))?;
            }
        }
        if let Some(cwd) = &self.cwd {
            b.initial_cwd(cwd);
            if let (Some((mount, rest, read_only)), true) = (&self.cwd_dir, self.files()) {
                // The guest may have replaced a directory of the path with a symbolic link:
                // open it beneath the mount without following any, and preopen that directory.
                let dir = beneath(mount, rest).map_err(|e| format!("cannot open wasi.cwd {cwd}: {e}"))?;
                let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir));
                open(&mut b, Path::new(&path), ".", *read_only)
                    .map_err(|e| format!("cannot open wasi.cwd {cwd}: {e}"))?;
            }
        }
        if self.net.enabled {
            super::sockets::allow(&mut b, &self.net, names, caller);
        }
        Ok(b)
    }
}

fn open(b: &mut WasiCtxBuilder, host: &Path, guest: &str, read_only: bool) -> Result<(), String> {
    let perms = if read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
    b.preopened_dir(host, guest, perms).map(|_| ()).map_err(|e| format!("{e:#}"))
}

/// Where `cwd` lies: the host directory of the mount with the longest guest path that holds it,
/// the rest of the path inside it, and whether that mount is read-only.
fn cwd_dir(cwd: &str, mounts: &[MountGrant]) -> Option<(PathBuf, String, bool)> {
    let inside = |m: &&MountGrant| {
        let g = m.guest.trim_end_matches('/');
        cwd == m.guest || g.is_empty() || cwd.strip_prefix(g).is_some_and(|rest| rest.starts_with('/'))
    };
    let m = mounts.iter().filter(inside).max_by_key(|m| m.guest.len())?;
    let rest = cwd.strip_prefix(m.guest.trim_end_matches('/')).unwrap_or("").trim_matches('/');
    if rest.split('/').any(|c| c == "..") {
        return None;
    }
    Some((m.host.clone(), rest.to_string(), m.read_only))
}

/// Opens the directory `rest` beneath `root`, one component at a time, following no symbolic
/// link (`O_NOFOLLOW` on each step, each looked up in the directory opened before it through
/// `/proc/self/fd`): whatever the guest did inside the mount, the result lies beneath `root`.
fn beneath(root: &Path, rest: &str) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    const O_DIRECTORY: i32 = 0o200000;
    const O_NOFOLLOW: i32 = 0o400000;
    let open = |p: &Path, nofollow: bool| {
        let flags = O_DIRECTORY | if nofollow { O_NOFOLLOW } else { 0 };
        std::fs::OpenOptions::new().read(true).custom_flags(flags).open(p)
    };
    // The mount's own path is the author's, not the guest's: it may go through links.
    let mut dir = open(root, false)?;
    for part in rest.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let step = format!("/proc/self/fd/{}/{part}", std::os::fd::AsRawFd::as_raw_fd(&dir));
        dir = open(Path::new(&step), true)?;
    }
    Ok(dir)
}

/// Whether `wasi.cwd` lies inside one of the mounts (else relative paths reach nothing).
pub fn cwd_in_mounts(cwd: &str, mounts: &[crate::registry::Mount]) -> bool {
    let grants: Vec<MountGrant> = mounts
        .iter()
        .map(|m| MountGrant { entry: String::new(), host: PathBuf::new(), guest: m.guest.clone(), read_only: false })
        .collect();
    cwd_dir(cwd, &grants).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(guest: &str, host: &str) -> MountGrant {
        MountGrant { entry: "app:d".into(), host: host.into(), guest: guest.into(), read_only: false }
    }

    #[test]
    fn cwd_maps_into_the_innermost_mount() {
        let mounts = [mount("/data", "/srv/data"), mount("/data/logs", "/var/log/app")];
        let at = |cwd: &str| cwd_dir(cwd, &mounts).map(|d| (d.0, d.1));
        assert_eq!(at("/data"), Some((PathBuf::from("/srv/data"), String::new())));
        assert_eq!(at("/data/in/"), Some((PathBuf::from("/srv/data"), "in".to_string())));
        assert_eq!(at("/data/logs/x"), Some((PathBuf::from("/var/log/app"), "x".to_string())));
        assert_eq!(at("/database"), None);
        assert_eq!(at("/data/../etc"), None);
        assert_eq!(at("/"), None);
    }

    #[test]
    fn cwd_opens_beneath_its_mount_without_following_links() {
        let root = std::env::temp_dir().join(format!("wippy-beneath-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("mount/a/b")).unwrap_or_default();
        std::fs::create_dir_all(root.join("outside")).unwrap_or_default();
        let _ = std::os::unix::fs::symlink("../outside", root.join("mount/link"));
        assert!(beneath(&root.join("mount"), "a/b").is_ok());
        assert!(beneath(&root.join("mount"), "").is_ok());
        assert!(beneath(&root.join("mount"), "link").is_err(), "a link inside the mount is not followed");
        assert!(beneath(&root.join("mount"), "missing").is_err());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn env_reads_defaults_and_requires() {
        let mut g = Grant { profiles: Profiles::granted(&[Profile::Cli]), ..Grant::default() };
        g.env.push(EnvGrant {
            entry: "app:missing".into(),
            name: "X".into(),
            variable: "WIPPY_TEST_SURELY_UNSET_1".into(),
            default: Some("d".into()),
            required: true,
        });
        let env = g.env_values().map(|e| e.pairs.map(|p| p.to_vec()));
        assert_eq!(env, Ok(Some(vec![("X".to_string(), "d".to_string())])));
        g.env[0].default = None;
        assert_eq!(g.env_values().err(), Some("required wasi env variable not found: app:missing".into()));
        g.env[0].required = false;
        assert_eq!(g.env_values().map(|e| e.pairs.map(|p| p.len())), Ok(Some(0)));
        // Without a profile that reaches the environment, nothing is read (and nothing fails).
        g.env[0].required = true;
        g.profiles = Profiles::granted(&[Profile::Filesystem]);
        assert_eq!(g.env_values().map(|e| e.stamp), Ok(0));
    }
}
