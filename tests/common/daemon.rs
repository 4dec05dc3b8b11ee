//! A private real `nix-daemon` (Debian's Nix 2.8) for the daemon tests: its own store
//! directory, state, logs, config, HOME and socket under one temporary directory (see
//! REFERENCE-daemon-farms.md), killed when dropped. The directory is world-readable so a
//! client run as another user (`nobody`, through `setpriv`) can reach the socket.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running daemon.
pub struct NixDaemon {
    pub root: tempfile::TempDir,
    pub store_dir: PathBuf,
    pub socket: PathBuf,
    child: Child,
}

impl NixDaemon {
    /// Start a daemon whose `nix.conf` has the offline settings plus `extra` lines
    /// (`substituters = …`, `trusted-users = …`).
    pub fn start(extra: &str) -> NixDaemon {
        NixDaemon::start_with(|_| extra.to_owned())
    }

    /// Like [`Self::start`], with `extra` computed from the daemon's directory (for files such
    /// as keys that must exist before it starts).
    pub fn start_with(extra: impl FnOnce(&Path) -> String) -> NixDaemon {
        NixDaemon::start_in(None, extra)
    }

    /// Like [`Self::start_with`], with the store at `store_dir` (a directory whose paths a
    /// binary cache was made for) instead of one of its own. The directory must be empty or
    /// absent, and world-readable up to it.
    pub fn start_with_store(store_dir: &Path, extra: impl FnOnce(&Path) -> String) -> NixDaemon {
        NixDaemon::start_in(Some(store_dir), extra)
    }

    fn start_in(store_dir: Option<&Path>, extra: impl FnOnce(&Path) -> String) -> NixDaemon {
        // Short and under /tmp: a unix socket path is limited to 108 bytes.
        let root = tempfile::Builder::new()
            .prefix("envy-d")
            .tempdir_in("/tmp")
            .unwrap();
        let r = root.path();
        fs_err::set_permissions(r, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["conf", "home", "state", "log", "store"] {
            fs_err::create_dir_all(r.join(d)).unwrap();
        }
        let mut conf = String::from(
            "experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\n",
        );
        let extra = extra(r);
        if !extra.contains("substituters") {
            conf.push_str("substituters =\n");
        }
        conf.push_str(&extra);
        conf.push('\n');
        fs_err::write(r.join("conf/nix.conf"), conf).unwrap();
        let socket = r.join("sock");
        let store_dir = store_dir.map_or_else(|| r.join("store"), Path::to_owned);
        let mut cmd = Command::new("nix-daemon");
        daemon_env(&mut cmd, r)
            .env("NIX_STORE_DIR", &store_dir)
            .env("NIX_DAEMON_SOCKET_PATH", &socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                fs_err::File::create(r.join("daemon.log"))
                    .unwrap()
                    .into_parts()
                    .0,
            );
        let child = cmd.spawn().expect("cannot start nix-daemon");
        let daemon = NixDaemon {
            store_dir,
            socket,
            root,
            child,
        };
        daemon.wait_for_socket();
        daemon
    }

    fn wait_for_socket(&self) {
        // Not a timing assertion: the daemon creates its socket right after start-up; a
        // minute without it means it failed, and its log says why.
        for _ in 0..600 {
            if self.socket.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "nix-daemon did not create `{}`:\n{}",
            self.socket.display(),
            fs_err::read_to_string(self.root.path().join("daemon.log")).unwrap_or_default()
        );
    }

    /// The variables a Nix client (or envy) needs to find this daemon.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("NIX_REMOTE".into(), "daemon".into()),
            (
                "NIX_DAEMON_SOCKET_PATH".into(),
                self.socket.display().to_string(),
            ),
            ("NIX_STORE_DIR".into(), self.store_dir.display().to_string()),
        ]
    }

    /// A Nix command talking to this daemon (as root, so trusted when `trusted-users` has
    /// root), with the daemon's config and HOME.
    pub fn nix(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        daemon_env(&mut cmd, self.root.path())
            .env("NIX_STORE_DIR", &self.store_dir)
            .env_remove("NIX_PATH")
            .envs(self.client_env());
        cmd
    }

    /// Run a Nix command against this daemon, expecting success; stdout trimmed.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.nix(program).args(args).output().unwrap();
        super::assert_success(&out, program);
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    /// Where the store's files are.
    pub fn dir(&self) -> &Path {
        self.root.path()
    }
}

fn daemon_env<'c>(cmd: &'c mut Command, r: &Path) -> &'c mut Command {
    cmd.env("NIX_CONF_DIR", r.join("conf"))
        .env("NIX_STORE_DIR", r.join("store"))
        .env("NIX_STATE_DIR", r.join("state"))
        .env("NIX_LOG_DIR", r.join("log"))
        .env("HOME", r.join("home"))
        .env("XDG_CACHE_HOME", r.join("home/.cache"))
        .env("XDG_CONFIG_HOME", r.join("home/.config"))
        .env_remove("NIX_REMOTE")
}

impl Drop for NixDaemon {
    fn drop(&mut self) {
        // Only the daemon this test started; its per-connection children exit with their
        // connections.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
