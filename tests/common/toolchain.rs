//! Helpers for the toolchain and `envy shell` tests: an offline Nix 2.8 whose store is shared
//! by every test of a run (so musl is built once, not once per test), a per-test HOME, XDG
//! dirs and envy cache, and a runner for `envy shell`.
//!
//! The shared store lives under cargo's target tmp dir (`envy-toolchain-nix/`): Nix's own
//! locking lets parallel tests wait for one build of a path instead of repeating it, and
//! a later run reuses what an earlier one built when the package set did not change.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common;

/// musl 1.2.3's source tarball, as named in the hashed mirror.
pub const MUSL_SHA256: &str = "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4";

/// The hashed mirror holding musl's source (`scripts/test` fills it from Debian).
pub fn mirror_dir() -> PathBuf {
    match std::env::var_os("ENVY_TEST_MIRROR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".fixtures/mirror"),
    }
}

/// Whether everything the toolchain tests need is here; otherwise skip (or fail under
/// `ENVY_TEST_REQUIRE_TOOLS`) with the reason.
#[must_use]
pub fn have_toolchain_prerequisites(extra_tools: &[&str]) -> bool {
    for tool in ["nix", "nix-build", "clang", "ld.lld", "llvm-ar", "file"]
        .iter()
        .chain(extra_tools)
    {
        if !common::have_tool(tool) {
            return false;
        }
    }
    if mirror_dir().join("sha256").join(MUSL_SHA256).is_file() {
        return true;
    }
    let reason = format!(
        "musl's source is not in the test mirror `{}`",
        mirror_dir().display()
    );
    if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{reason} (ENVY_TEST_REQUIRE_TOOLS is set); run scripts/test to create it");
    }
    eprintln!("skipping: {reason}; run scripts/test to create it");
    false
}

/// The offline Nix configuration and store shared by the tests of this run.
pub struct SharedNix {
    pub root: PathBuf,
    pub conf_dir: PathBuf,
    pub store_uri: String,
}

pub fn shared_nix() -> &'static SharedNix {
    static NIX: OnceLock<SharedNix> = OnceLock::new();
    NIX.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("envy-toolchain-nix");
        let conf_dir = root.join("etc");
        fs_err::create_dir_all(&conf_dir).unwrap();
        let registry = root.join("registry.json");
        fs_err::write(&registry, r#"{"flakes":[],"version":2}"#).unwrap();
        let r = root.display();
        let store_uri = format!("local?store={r}/store&state={r}/state&log={r}/log");
        let mirror = mirror_dir();
        let sandbox_paths: Vec<String> = ["/bin", "/lib", "/lib64", "/usr"]
            .iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| (*p).to_owned())
            .chain([mirror.display().to_string()])
            .collect();
        let conf = format!(
            "experimental-features = nix-command flakes\n\
             sandbox = true\n\
             extra-sandbox-paths = {}\n\
             substituters =\n\
             build-users-group =\n\
             flake-registry = {}\n\
             hashed-mirrors = file://{}/\n\
             store = {store_uri}\n",
            sandbox_paths.join(" "),
            registry.display(),
            mirror.display(),
        );
        common_write_if_changed(&conf_dir.join("nix.conf"), &conf);
        SharedNix {
            root,
            conf_dir,
            store_uri,
        }
    })
}

fn common_write_if_changed(path: &Path, contents: &str) {
    if fs_err::read_to_string(path).ok().as_deref() != Some(contents) {
        let tmp = path.with_extension("tmp");
        fs_err::write(&tmp, contents).unwrap();
        fs_err::rename(&tmp, path).unwrap();
    }
}

/// One test's world: its own HOME, XDG dirs and envy cache, the shared Nix.
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

    /// A command with this sandbox's environment (and the shared Nix).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let nix = shared_nix();
        let mut cmd = Command::new(program);
        cmd.current_dir(self.work())
            .env("HOME", self.home())
            .env("XDG_CACHE_HOME", self.cache())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("XDG_STATE_HOME", self.dir.path().join("state"))
            .env("NIX_CONF_DIR", &nix.conf_dir)
            // envy's own builder fetches musl's source from the same mirror.
            .env(
                "ENVY_HASHED_MIRRORS",
                format!("file://{}/", mirror_dir().display()),
            )
            .env("SHELL", "/bin/bash")
            .env_remove("ENVY_CACHE_DIR")
            .env_remove("ENVY_SHELL_BACKEND")
            .env_remove("NIX_REMOTE")
            .env_remove("ZDOTDIR");
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

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A host-tools attribute set for evaluating `pkgs/` directly with Nix (`--arg hostTools`),
/// with one tool's version overridable.
pub fn host_tools_nix(clang_version: &str) -> String {
    let tool = |attr: &str, path: &str, version: &str| {
        format!(
            r#"{attr} = {{ path = "{path}"; realPath = "{path}"; version = "{version}"; sha256 = "0"; }};"#
        )
    };
    let arch = std::env::consts::ARCH;
    format!(
        "{{ system = \"{arch}-linux\"; tools = {{ {} {} {} {} {} {} {} {} {} }}; }}",
        tool("clang", "/usr/bin/clang", clang_version),
        tool("lld", "/usr/bin/ld.lld", "14.0.6"),
        tool("ar", "/usr/bin/llvm-ar", "14.0.6"),
        tool("ranlib", "/usr/bin/llvm-ranlib", "14.0.6"),
        tool("nm", "/usr/bin/llvm-nm", "14.0.6"),
        tool("strip", "/usr/bin/llvm-strip", "14.0.6"),
        tool("objcopy", "/usr/bin/llvm-objcopy", "14.0.6"),
        tool("objdump", "/usr/bin/llvm-objdump", "14.0.6"),
        tool("readelf", "/usr/bin/llvm-readelf", "14.0.6"),
    )
}

/// The repository's package set.
pub fn pkgs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pkgs")
}
