//! A private real Nix 2.8 for the oracle tests: an offline configuration (flakes on, no
//! substituters, no build users, an empty flake registry) and, for [`PrivateNix`], its own
//! store, state, log, HOME and caches under a temporary directory — never `/nix/store` or the
//! user's files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The settings every test's Nix shares: flakes on, nothing downloaded, no build users.
pub const OFFLINE_SETTINGS: &str =
    "experimental-features = nix-command flakes\nsubstituters =\nbuild-users-group =\n";

/// An empty flake registry, so Nix never downloads the global one.
pub const EMPTY_REGISTRY: &str = r#"{"flakes":[],"version":2}"#;

/// `nix.conf` for an offline Nix without a build sandbox, reading the flake registry at
/// `registry` and using `store` when given.
pub fn offline_conf(registry: &Path, store: Option<&str>) -> String {
    let mut conf = format!(
        "{OFFLINE_SETTINGS}sandbox = false\nflake-registry = {}\n",
        registry.display()
    );
    if let Some(store) = store {
        conf.push_str(&format!("store = {store}\n"));
    }
    conf
}

/// Write an empty flake registry at `registry` and [`offline_conf`] as `conf_dir/nix.conf`.
pub fn write_offline_conf(conf_dir: &Path, registry: &Path, store: Option<&str>) {
    fs_err::create_dir_all(conf_dir).unwrap();
    fs_err::write(registry, EMPTY_REGISTRY).unwrap();
    fs_err::write(conf_dir.join("nix.conf"), offline_conf(registry, store)).unwrap();
}

/// Why real Nix 2.8 cannot run its helpers here, if it cannot: run as root, Nix saves its
/// mount namespace at start and `setns`es back into it in every helper it starts (git, …). In
/// a chroot that leaves the chroot, so git runs on the host's tree and fails with "cannot
/// change to '…'" (NixOS/nix#7602, fixed in Nix 2.16). Without `CAP_SYS_CHROOT` the `setns`
/// fails, Nix ignores that, and its helpers stay inside: `scripts/test` runs the tests so
/// (`setpriv --bounding-set -sys_chroot`).
pub fn chroot_escape() -> Option<String> {
    let status = fs_err::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let root = field("Uid:").split_whitespace().next() == Some("0");
    const CAP_SYS_CHROOT: u32 = 18;
    let can_chroot =
        u64::from_str_radix(&field("CapBnd:"), 16).is_ok_and(|b| b & (1 << CAP_SYS_CHROOT) != 0);
    // In a chroot the root is not a mount of the mount namespace: no mount shows at `/`.
    let mounts = fs_err::read_to_string("/proc/self/mountinfo").ok()?;
    let chrooted = !mounts.lines().any(|l| l.split(' ').nth(4) == Some("/"));
    (root && can_chroot && chrooted).then(|| {
        "Nix 2.8 run as root in a chroot escapes it when it starts git (NixOS/nix#7602); \
         run the tests without CAP_SYS_CHROOT, as scripts/test does \
         (`setpriv --bounding-set -sys_chroot -- cargo test …`)"
            .to_owned()
    })
}

/// A local store URL: the store at `store_dir`, its state and logs in `dir/state`, `dir/log`.
pub fn local_store(store_dir: &Path, dir: &Path) -> String {
    format!(
        "local?store={}&state={}&log={}",
        store_dir.display(),
        dir.join("state").display(),
        dir.join("log").display()
    )
}

/// A real Nix with a store of its own under a temporary directory.
pub struct PrivateNix {
    pub root: tempfile::TempDir,
    pub store_dir: PathBuf,
}

impl PrivateNix {
    /// A fresh one in a temporary directory named `prefix…`.
    pub fn new(prefix: &str) -> PrivateNix {
        let root = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
        let r = root.path();
        for d in [
            "home",
            "cache",
            "config",
            "data",
            "state",
            "log",
            "nix/store",
        ] {
            fs_err::create_dir_all(r.join(d)).unwrap();
        }
        write_offline_conf(&r.join("conf"), &r.join("registry.json"), None);
        let store_dir = r.join("nix/store");
        PrivateNix { root, store_dir }
    }

    /// `local?store=…&state=…&log=…` for `--store`.
    pub fn store_url(&self) -> String {
        self.store_url_for(&self.store_dir)
    }

    /// Like [`Self::store_url`], computing paths for `store_dir` instead.
    pub fn store_url_for(&self, store_dir: &Path) -> String {
        local_store(store_dir, self.root.path())
    }

    /// Point `cmd` at this Nix's config, HOME and caches.
    pub fn set_env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        let r = self.root.path();
        cmd.env("NIX_CONF_DIR", r.join("conf"))
            .env("HOME", r.join("home"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_DATA_HOME", r.join("data"))
    }

    /// A Nix command with this environment (config, HOME and caches private).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.set_env(&mut cmd)
            .env_remove("NIX_REMOTE")
            .env_remove("NIX_PATH");
        cmd
    }

    /// Run a Nix command that takes `--store`, expecting success; stdout trimmed.
    pub fn run_store(&self, program: &str, args: &[&str]) -> String {
        let url = self.store_url();
        let mut full = vec!["--store", url.as_str()];
        full.extend_from_slice(args);
        self.run(program, &full)
    }

    /// Run a Nix command, expecting success; stdout trimmed.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap();
        super::assert_success(&out, program);
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }
}
