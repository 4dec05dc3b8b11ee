//! Helpers for the toolchain and `envy shell` tests: one envy store shared by every test of a
//! run (so musl is built once per architecture, not once per test), a `PATH` without Nix, a
//! per-test HOME, XDG dirs and envy cache, a runner for `envy shell`, and an offline Nix 2.8
//! for the tests that use it as the oracle.
//!
//! The shared store lives under cargo's target tmp dir (`envy-toolchain-store/`): the
//! builder's path locks let parallel tests wait for one build of a path instead of repeating
//! it, and a later run reuses what an earlier one built when the package set did not change.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub use crate::common::assert_success;
use crate::common::{self, nix};

/// musl 1.2.3's source tarball, as named in the hashed mirror.
pub const MUSL_SHA256: &str = "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4";

/// Every other pinned source of the package set (`scripts/fill-mirror` lists the same):
/// pkgconf (in every stdenv), zlib and OpenSSL.
pub const OTHER_SOURCES_SHA256: &[&str] = &[
    "644361ada2942be05655d4452eb018791647c31bba429b287f1f68deb2dc6840",
    "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1",
    "c80a01dfc70ece4dc21168932c37739042d404d46ccc81a5986dd75314ecda6f",
];

/// The hashed mirror holding musl's source (`scripts/test` fills it from Debian).
pub fn mirror_dir() -> PathBuf {
    match std::env::var_os("ENVY_TEST_MIRROR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".fixtures/mirror"),
    }
}

/// Whether everything the toolchain tests need is here; otherwise skip (or fail under
/// `ENVY_TEST_REQUIRE_TOOLS`) with the reason. Nix is not among them.
#[must_use]
pub fn have_toolchain_prerequisites(extra_tools: &[&str]) -> bool {
    for tool in ["clang", "ld.lld", "llvm-ar", "file", "bash"]
        .iter()
        .chain(extra_tools)
    {
        if !common::have_tool(tool) {
            return false;
        }
    }
    let missing: Vec<&str> = std::iter::once(MUSL_SHA256)
        .chain(OTHER_SOURCES_SHA256.iter().copied())
        .filter(|sha| !mirror_dir().join("sha256").join(sha).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let reason = format!(
        "the package set's pinned sources {missing:?} are not in the test mirror `{}`",
        mirror_dir().display()
    );
    if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{reason} (ENVY_TEST_REQUIRE_TOOLS is set); run scripts/test to create it");
    }
    eprintln!("skipping: {reason}; run scripts/test to create it");
    false
}

/// Whether real Nix (the oracle) is here.
#[must_use]
pub fn have_nix() -> bool {
    common::have_tool("nix")
        && common::have_tool("nix-instantiate")
        && common::have_tool("nix-build")
}

/// envy's store shared by the tests of this run (and reused by later runs); the directory
/// `ENVY_TEST_TOOLCHAIN_STORE` names instead, when set (to build from scratch, or elsewhere).
pub struct SharedStore {
    pub store_dir: PathBuf,
    pub state_dir: PathBuf,
}

pub fn shared_store() -> &'static SharedStore {
    static STORE: OnceLock<SharedStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let root = match std::env::var_os("ENVY_TEST_TOOLCHAIN_STORE") {
            Some(dir) => PathBuf::from(dir),
            None => Path::new(env!("CARGO_TARGET_TMPDIR")).join("envy-toolchain-store"),
        };
        SharedStore {
            store_dir: root.join("store"),
            state_dir: root.join("state"),
        }
    })
}

/// A `PATH` with everything of the test's own `PATH` except Nix's programs: the directory
/// of the host's clang first (so the package set records the real tools, which the build
/// sandbox sees under `/usr`), then a directory of links to every other program.
pub fn path_without_nix() -> &'static OsString {
    static PATH: OnceLock<OsString> = OnceLock::new();
    PATH.get_or_init(|| {
        let original = std::env::var_os("PATH").unwrap_or_default();
        // Every program of PATH but Nix's, the first directory winning as in a lookup.
        let mut programs: Vec<(OsString, PathBuf)> = Vec::new();
        for dir in std::env::split_paths(&original) {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            names.sort();
            for name in names {
                if !name.to_string_lossy().starts_with("nix")
                    && !programs.iter().any(|(n, _)| *n == name)
                {
                    programs.push((name.clone(), dir.join(&name)));
                }
            }
        }
        // Named after what it holds, so a changed PATH gets a new directory.
        let key = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            programs.hash(&mut h);
            h.finish()
        };
        let links =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("envy-toolchain-path-{key:016x}"));
        if !links.is_dir() {
            let tmp = links.with_extension(format!("tmp-{}", std::process::id()));
            let _ = fs_err::remove_dir_all(&tmp);
            fs_err::create_dir_all(&tmp).unwrap();
            for (name, target) in &programs {
                std::os::unix::fs::symlink(target, tmp.join(name)).unwrap();
            }
            if fs_err::rename(&tmp, &links).is_err() {
                let _ = fs_err::remove_dir_all(&tmp);
            }
        }
        let mut dirs = Vec::new();
        if let Some(clang) = common::which("clang").and_then(|c| fs_err::canonicalize(c).ok()) {
            dirs.push(clang.parent().unwrap().to_path_buf());
        }
        dirs.push(links);
        std::env::join_paths(dirs).unwrap()
    })
}

/// The offline Nix configuration and store of the oracle tests (no envy store in it).
pub struct SharedNix {
    pub root: PathBuf,
    pub conf_dir: PathBuf,
    pub store_dir: PathBuf,
}

pub fn shared_nix() -> &'static SharedNix {
    static NIX: OnceLock<SharedNix> = OnceLock::new();
    NIX.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("envy-toolchain-nix");
        let conf_dir = root.join("etc");
        fs_err::create_dir_all(&conf_dir).unwrap();
        let registry = root.join("registry.json");
        fs_err::write(&registry, nix::EMPTY_REGISTRY).unwrap();
        let store = nix::local_store(&root.join("store"), &root);
        let conf = nix::offline_conf(&registry, Some(&store));
        write_if_changed(&conf_dir.join("nix.conf"), &conf);
        // Create Nix's state (database, gcroots, profiles) once, here: Nix 2.8 processes that
        // start together on a fresh state directory race creating it ("creating symlink …
        // File exists").
        if common::which("nix-store").is_some() {
            let home = root.join("home");
            fs_err::create_dir_all(&home).unwrap();
            let out = Command::new("nix-store")
                .arg("--init")
                .env("HOME", &home)
                .env("XDG_CACHE_HOME", root.join("nix-cache"))
                .env("NIX_CONF_DIR", &conf_dir)
                .env_remove("NIX_REMOTE")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "nix-store --init: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        SharedNix {
            store_dir: root.join("store"),
            root,
            conf_dir,
        }
    })
}

fn write_if_changed(path: &Path, contents: &str) {
    if fs_err::read_to_string(path).ok().as_deref() != Some(contents) {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        fs_err::write(&tmp, contents).unwrap();
        fs_err::rename(&tmp, path).unwrap();
    }
}

/// One test's world: its own HOME, XDG dirs and envy cache; the shared envy store.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "cache", "config", "data", "state", "work"] {
            fs_err::create_dir_all(dir.path().join(sub)).unwrap();
        }
        Self { dir }
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Where `envy shell` records each run (`cache=hit|miss builds=N`).
    pub fn stats_file(&self) -> PathBuf {
        self.dir.path().join("shell-stats")
    }

    /// The lines of [`Sandbox::stats_file`] so far.
    pub fn stats(&self) -> Vec<String> {
        fs_err::read_to_string(self.stats_file())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A command with this sandbox's environment: no Nix on `PATH`, the shared envy store,
    /// musl's source in the hashed mirror.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let store = shared_store();
        let mut cmd = Command::new(program);
        cmd.current_dir(self.work())
            .env("HOME", self.home())
            .env("XDG_CACHE_HOME", self.cache())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("PATH", path_without_nix())
            .env("ENVY_STORE_DIR", &store.store_dir)
            .env("ENVY_STATE_DIR", &store.state_dir)
            .env(
                "ENVY_HASHED_MIRRORS",
                format!("file://{}/", mirror_dir().display()),
            )
            .env("__ENVY_SHELL_STATS", self.stats_file())
            .env("SHELL", "/bin/bash")
            .env_remove("ENVY_SHELL_BACKEND")
            .env_remove("ENVY_NIX")
            .env_remove("ENVY_SUBSTITUTERS")
            .env_remove("NIX_CONF_DIR")
            .env_remove("NIX_REMOTE")
            .env_remove("NIX_PATH")
            .env_remove("ZDOTDIR");
        cmd
    }

    /// A command for real Nix, the oracle: the test's own `PATH`, the shared Nix store.
    pub fn nix_command(&self, program: &str) -> Command {
        let nix = shared_nix();
        let mut cmd = Command::new(program);
        cmd.current_dir(self.work())
            .env("HOME", self.home())
            .env("XDG_CACHE_HOME", self.dir.path().join("nix-cache"))
            .env("NIX_CONF_DIR", &nix.conf_dir)
            .env_remove("NIX_REMOTE")
            .env_remove("NIX_PATH");
        cmd
    }

    /// `envy ARGS…`
    pub fn envy(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(common::envy_bin());
        cmd.args(args);
        cmd
    }

    /// `envy shell SHELL_ARGS… -- bash -c SCRIPT`, which must succeed; its stdout.
    pub fn shell_script(&self, shell_args: &[&str], script: &str) -> String {
        let out = self
            .envy(&["shell"])
            .args(shell_args)
            .args(["--", "bash", "-c", script])
            .output()
            .unwrap();
        assert_success(
            &out,
            &format!("envy shell {shell_args:?} -- bash -c {script:?}"),
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Write a file into the work directory.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.work().join(name);
        fs_err::write(&path, contents).unwrap();
        path
    }
}

/// A host-tools attribute set for evaluating `pkgs/` directly (`hostTools = …`), with one
/// tool's version overridable.
pub fn host_tools_nix(clang_version: &str) -> String {
    let tool = |attr: &str, path: &str, version: &str| {
        format!(
            r#"{attr} = {{ path = "{path}"; realPath = "{path}"; version = "{version}"; sha256 = "0"; }};"#
        )
    };
    let arch = std::env::consts::ARCH;
    format!(
        "{{ system = \"{arch}-linux\"; tools = {{ {} {} {} {} {} {} {} {} {} }}; optionalTools.{} }}",
        tool("clang", "/usr/bin/clang", clang_version),
        tool("lld", "/usr/bin/ld.lld", "14.0.6"),
        tool("ar", "/usr/bin/llvm-ar", "14.0.6"),
        tool("ranlib", "/usr/bin/llvm-ranlib", "14.0.6"),
        tool("nm", "/usr/bin/llvm-nm", "14.0.6"),
        tool("strip", "/usr/bin/llvm-strip", "14.0.6"),
        tool("objcopy", "/usr/bin/llvm-objcopy", "14.0.6"),
        tool("objdump", "/usr/bin/llvm-objdump", "14.0.6"),
        tool("readelf", "/usr/bin/llvm-readelf", "14.0.6"),
        tool("cmake", "/usr/bin/cmake", "3.25.1"),
    )
}

/// The repository's package set.
pub fn pkgs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pkgs")
}
