//! Helpers for the builder's integration tests: a private envy store and state, a private
//! Nix store with the same store dir (real Nix 2.8 as the oracle), and `envy build` runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use super::assert_success;

/// One test's world: HOME, XDG dirs, envy's store/state, and Nix's state and real store.
pub struct BuildEnv {
    pub tmp: tempfile::TempDir,
}

impl BuildEnv {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        for dir in [
            "home", "config", "data", "cache", "store", "state", "nix/conf", "work",
        ] {
            fs_err::create_dir_all(tmp.path().join(dir)).unwrap();
        }
        // Nix sandboxes its builds where user namespaces exist (Nix 2.8 always asks for one;
        // a chroot or a container may have none, and there it builds unsandboxed, which it
        // does only in a store kept at its store dir: see `nix_build_in_place`).
        let sandbox = std::process::Command::new("unshare")
            .args(["-Ur", "true"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        fs_err::write(
            tmp.path().join("nix/conf/nix.conf"),
            format!(
                "{}sandbox = {sandbox}\nextra-sandbox-paths = /bin /usr /lib /lib64\n",
                super::nix::OFFLINE_SETTINGS
            ),
        )
        .unwrap();
        Self { tmp }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// envy's store directory (also the store dir of the private Nix store).
    pub fn store_dir(&self) -> PathBuf {
        self.path("store")
    }

    /// The `--store` URI of a Nix store with envy's store dir but its own real location.
    pub fn nix_store_uri(&self) -> String {
        format!(
            "local?store={}&real={}&state={}&log={}",
            self.store_dir().display(),
            self.path("nix/real").display(),
            self.path("nix/state").display(),
            self.path("nix/log").display()
        )
    }

    fn nix_command(&self, program: &str) -> Command {
        self.nix_command_at(program, &self.nix_store_uri())
    }

    /// A real Nix command with this world's Nix configuration, HOME and cache, on the store
    /// `store_uri`.
    pub fn nix_command_at(&self, program: &str, store_uri: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NIX_CONF_DIR", self.path("nix/conf"))
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("nix/cache"))
            .args(["--store", store_uri]);
        cmd
    }

    /// `nix-instantiate` a Nix expression (text); returns the `.drv` file in Nix's real store.
    pub fn instantiate(&self, expr: &str, attr: &str) -> PathBuf {
        let file = self.path("work/default.nix");
        fs_err::write(&file, expr).unwrap();
        let out = self
            .nix_command("nix-instantiate")
            .arg(&file)
            .arg("-A")
            .arg(attr)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nix-instantiate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8(out.stdout).unwrap();
        let drv = out.trim().split('!').next().unwrap().to_string();
        let base = Path::new(&drv).file_name().unwrap();
        self.path("nix/real").join(base)
    }

    /// `nix-build` the same attribute with real Nix; returns (output path, NAR hash) pairs.
    /// Nix 2.8 builds in this store (its files kept apart from its store dir) only inside its
    /// sandbox: where there are no user namespaces, see [`Self::nix_build_in_place`].
    pub fn nix_build(&self, attr: &str) -> Vec<(String, String)> {
        self.nix_build_at(attr, &self.nix_store_uri())
    }

    /// `nix-build` each of `attrs` of `work/default.nix` with real Nix before envy builds
    /// anything (see [`Self::with_nix_in_place`]). Returns each attribute's (output path, NAR
    /// hash) pairs.
    pub fn nix_build_in_place(&self, attrs: &[&str]) -> Vec<Vec<(String, String)>> {
        self.with_nix_in_place(|uri| attrs.iter().map(|a| self.nix_build_at(a, uri)).collect())
    }

    /// `nix-build` each of `attrs`, which must fail, as [`Self::nix_build_in_place`] does;
    /// returns Nix's stderr for each.
    pub fn nix_build_failures_in_place(&self, attrs: &[&str]) -> Vec<String> {
        self.with_nix_in_place(|uri| attrs.iter().map(|a| self.nix_failure_at(a, uri)).collect())
    }

    /// Run `f` with the URL of a Nix store kept at envy's store dir itself (Nix 2.8 builds in
    /// a store whose files live elsewhere only inside its sandbox, which needs user
    /// namespaces), before envy has built anything; then move Nix's files aside to where
    /// [`Self::nix_store_uri`] keeps them, leaving envy's store dir empty.
    fn with_nix_in_place<T>(&self, f: impl FnOnce(&str) -> T) -> T {
        let store_dir = self.store_dir();
        assert!(
            fs_err::read_dir(&store_dir).unwrap().next().is_none(),
            "Nix builds in place before envy builds"
        );
        let in_place = super::nix::local_store(&store_dir, &self.path("nix"));
        let result = f(&in_place);
        fs_err::rename(&store_dir, self.path("nix/real")).unwrap();
        fs_err::create_dir(&store_dir).unwrap();
        result
    }

    fn nix_build_at(&self, attr: &str, store_uri: &str) -> Vec<(String, String)> {
        let out = self.run_nix_build(attr, store_uri);
        assert!(
            out.status.success(),
            "nix-build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|path| {
                let q = self
                    .nix_command_at("nix-store", store_uri)
                    .args(["-q", "--hash", path])
                    .output()
                    .unwrap();
                (
                    path.to_string(),
                    String::from_utf8(q.stdout).unwrap().trim().to_string(),
                )
            })
            .collect()
    }

    /// `nix-build` an attribute that must fail; returns Nix's stderr.
    pub fn nix_build_failure(&self, attr: &str) -> String {
        self.nix_failure_at(attr, &self.nix_store_uri())
    }

    fn nix_failure_at(&self, attr: &str, store_uri: &str) -> String {
        let out = self.run_nix_build(attr, store_uri);
        assert!(!out.status.success(), "nix-build {attr} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `nix-build work/default.nix -A attr --no-out-link` on `store_uri`, finished.
    fn run_nix_build(&self, attr: &str, store_uri: &str) -> Output {
        self.nix_command_at("nix-build", store_uri)
            .arg(self.path("work/default.nix"))
            .arg("-A")
            .arg(attr)
            .arg("--no-out-link")
            .output()
            .unwrap()
    }

    /// An `envy` command in this world.
    pub fn envy(&self) -> Command {
        world_command(&super::envy_bin(), self.tmp.path(), "state")
    }

    /// `envy build --no-out-link FILE` (plus extra args); asserts success, returns stdout lines.
    pub fn envy_build(&self, drv: &Path, extra: &[&str]) -> Vec<String> {
        let out = self
            .envy()
            .arg("build")
            .arg("--no-out-link")
            .args(extra)
            .arg(drv)
            .output()
            .unwrap();
        assert_success(&out, "envy build");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The NAR hash envy registered for a store path.
    pub fn envy_nar_hash(&self, path: &str) -> String {
        self.store()
            .query_path_info(&store_path(path))
            .unwrap()
            .expect("valid in envy's store")
            .nar_hash
            .to_prefixed_nix32()
    }

    /// envy's store, opened in this process (as `envy store …` would open it).
    pub fn store(&self) -> envy_store::LocalStore {
        envy_store::LocalStore::open(&envy_store::StoreConfig::new(
            self.store_dir(),
            self.path("state"),
        ))
        .unwrap()
    }

    /// `envy store verify`: every valid path is on disk with its registered NAR hash.
    pub fn verify(&self) {
        let out = self.envy().args(["store", "verify"]).output().unwrap();
        assert_success(&out, "envy store verify");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("0 missing, 0 modified"), "{stderr}");
    }
}

/// `program` with only the environment of the test world under `root`: `PATH`, `HOME` and
/// the XDG dirs (`home`, `config`, `data`, `cache`), envy's store directory `store` and state
/// directory `state`, run in `work`.
pub fn world_command(program: &Path, root: &Path, state: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .env("XDG_DATA_HOME", root.join("data"))
        .env("XDG_CACHE_HOME", root.join("cache"))
        .env("ENVY_STORE_DIR", root.join("store"))
        .env("ENVY_STATE_DIR", root.join(state))
        .current_dir(root.join("work"));
    cmd
}

/// A printed store path (`/…/store/<hash>-<name>`) as a `StorePath`.
pub fn store_path(path: &str) -> envy_store::StorePath {
    envy_store::StorePath::from_base_name(Path::new(path).file_name().unwrap().to_str().unwrap())
        .unwrap()
}

/// Whether namespaces work here; otherwise the sandbox tests skip. `scripts/test` sets
/// `ENVY_TEST_REQUIRE_SANDBOX` where `unshare -Ur` works (CI), and then a failure is fatal.
pub fn have_sandbox() -> bool {
    match envy_build::sandbox::probe() {
        Ok(()) => true,
        Err(e) => {
            if std::env::var_os("ENVY_TEST_REQUIRE_SANDBOX").is_some() {
                panic!("the build sandbox needs user namespaces: {e}");
            }
            eprintln!("skipping: user namespaces unavailable: {e}");
            false
        }
    }
}
