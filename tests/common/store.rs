//! Helpers for the store's tests: a private real-Nix 2.8 store (its own store dir, state, log,
//! config and caches, never `/nix/store` or the user's files) to use as the oracle, and an
//! envy command with its own store and XDG dirs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The private real Nix the store's oracle tests use.
#[allow(unused_imports)]
pub use crate::common::{assert_success, nix::PrivateNix as NixEnv};

/// A directory tree with files, an executable, symlinks (one dangling), nested and empty
/// directories, and names that sort differently as bytes and as text.
pub fn sample_tree(root: &Path) {
    use std::os::unix::fs::{PermissionsExt, symlink};
    fs_err::create_dir_all(root.join("sub/deeper/deepest")).unwrap();
    fs_err::create_dir_all(root.join("empty-dir")).unwrap();
    fs_err::write(root.join("a.txt"), b"hello\n").unwrap();
    fs_err::write(root.join("B.txt"), b"upper case sorts first\n").unwrap();
    fs_err::write(root.join("empty"), b"").unwrap();
    fs_err::write(
        root.join("sub/big.bin"),
        (0..300_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    fs_err::write(root.join("sub/run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs_err::set_permissions(
        root.join("sub/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fs_err::write(root.join("sub/deeper/deepest/x"), b"x").unwrap();
    fs_err::write(root.join("caf\u{e9}"), b"unicode name\n").unwrap();
    symlink("a.txt", root.join("link")).unwrap();
    symlink("../a.txt", root.join("sub/up")).unwrap();
    symlink("/nonexistent/dangling", root.join("dangling")).unwrap();
}

/// An envy with its own HOME, XDG dirs, store and state (store dir `store_dir`).
pub struct EnvyEnv {
    pub root: tempfile::TempDir,
    pub store_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl EnvyEnv {
    pub fn new() -> EnvyEnv {
        let root = tempfile::Builder::new()
            .prefix("envy-store-")
            .tempdir()
            .unwrap();
        let store_dir = root.path().join("store");
        let state_dir = root.path().join("state");
        EnvyEnv {
            root,
            store_dir,
            state_dir,
        }
    }

    /// With a given store directory (shared with a Nix store elsewhere, say).
    pub fn with_store_dir(store_dir: &Path) -> EnvyEnv {
        let mut env = EnvyEnv::new();
        env.store_dir = store_dir.to_owned();
        env
    }

    pub fn command(&self) -> Command {
        let r = self.root.path();
        let mut cmd = Command::new(crate::common::envy_bin());
        cmd.env("HOME", r.join("home"))
            .env("XDG_DATA_HOME", r.join("data"))
            .env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("ENVY_STORE_DIR", &self.store_dir)
            .env("ENVY_STATE_DIR", &self.state_dir)
            .env_remove("ENVY_SUBSTITUTERS")
            .env_remove("ENVY_TRUSTED_PUBLIC_KEYS");
        cmd
    }

    /// Run `envy ARGS`, expecting success; stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert_success(&out, &format!("envy {}", args.join(" ")));
        String::from_utf8(out.stdout).unwrap()
    }
}
