//! Finding Nix's daemon as Nix 2.8 does: `NIX_REMOTE` (`daemon`, `unix://PATH`), else the
//! `store` setting of nix.conf, else (`auto`) the default socket if it exists; the socket is
//! `NIX_DAEMON_SOCKET_PATH`, else `$NIX_STATE_DIR/daemon-socket/socket` (state dir
//! `/nix/var/nix`); the store directory is `NIX_STORE_DIR` (or the older `NIX_STORE`), else
//! `/nix/store`, or a `?store=` parameter of the store URI.

use std::path::{Path, PathBuf};

use crate::store_dir::{StoreDir, StoreDirError};

/// `daemon`, `unix://PATH` or `auto` (or empty): which store Nix uses.
pub const NIX_REMOTE: &str = "NIX_REMOTE";
/// The daemon socket for `NIX_REMOTE=daemon`.
pub const NIX_DAEMON_SOCKET_PATH: &str = "NIX_DAEMON_SOCKET_PATH";
/// Nix's store directory.
pub const NIX_STORE_DIR: &str = "NIX_STORE_DIR";
/// Nix's state directory (the default socket lives under it).
pub const NIX_STATE_DIR: &str = "NIX_STATE_DIR";
/// The directory holding Nix's system `nix.conf` (default `/etc/nix`).
pub const NIX_CONF_DIR: &str = "NIX_CONF_DIR";

/// Where a Nix daemon listens and which store directory it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonAddress {
    pub socket: PathBuf,
    pub store_dir: StoreDir,
    /// Why this socket: `NIX_REMOTE=daemon`, `store = … in /etc/nix/nix.conf`, …
    pub origin: String,
}

/// The part of the environment that decides where the daemon is (read once, so tests can
/// give their own).
#[derive(Debug, Clone, Default)]
pub struct NixEnv {
    pub nix_remote: Option<String>,
    pub socket_path: Option<String>,
    pub store_dir: Option<String>,
    pub state_dir: Option<String>,
    /// The `store` setting from nix.conf, with the file it came from.
    pub conf_store: Option<(String, PathBuf)>,
}

impl NixEnv {
    /// The process environment, and `store` from `$NIX_CONF_DIR/nix.conf` (or
    /// `/etc/nix/nix.conf`) and the user's `$XDG_CONFIG_HOME/nix/nix.conf` (later wins).
    #[must_use]
    pub fn from_process() -> NixEnv {
        let var = |name: &str| std::env::var(name).ok();
        let conf_dir = var(NIX_CONF_DIR).unwrap_or_else(|| "/etc/nix".to_owned());
        let mut files = vec![Path::new(&conf_dir).join("nix.conf")];
        if let Some(config) = dirs::config_dir() {
            files.push(config.join("nix/nix.conf"));
        }
        let conf_store =
            files.into_iter().fold(None, |found, file| {
                match fs_err::read_to_string(&file)
                    .ok()
                    .and_then(|text| conf_setting(&text, "store"))
                {
                    Some(value) => Some((value, file)),
                    None => found,
                }
            });
        NixEnv {
            nix_remote: var(NIX_REMOTE),
            socket_path: var(NIX_DAEMON_SOCKET_PATH),
            store_dir: var(NIX_STORE_DIR).or_else(|| var("NIX_STORE")),
            state_dir: var(NIX_STATE_DIR),
            conf_store,
        }
    }
}

/// A store URI that names a daemon envy cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("Nix's store directory is unusable")]
    StoreDir(#[from] StoreDirError),
}

impl DaemonAddress {
    /// The daemon Nix would talk to in this environment, or `None` when Nix would not use
    /// one (a `local` or remote store is configured, or `auto` finds no socket).
    pub fn find(env: &NixEnv) -> Result<Option<DaemonAddress>, AddressError> {
        let (uri, origin) = match env.nix_remote.as_deref().filter(|s| !s.is_empty()) {
            Some(uri) => (uri.to_owned(), format!("{NIX_REMOTE}={uri}")),
            None => match &env.conf_store {
                Some((uri, file)) => (uri.clone(), format!("store = {uri} in {}", file.display())),
                None => ("auto".to_owned(), "the default socket".to_owned()),
            },
        };
        let (scheme, params) = uri.split_once('?').unwrap_or((&uri, ""));
        let store_param = params
            .split('&')
            .find_map(|p| p.strip_prefix("store="))
            .map(str::to_owned);
        let store_dir = StoreDir::new(
            store_param
                .or_else(|| env.store_dir.clone())
                .unwrap_or_else(|| crate::store_dir::NIX_STORE_DIR.to_owned()),
        )?;
        let default_socket = || {
            env.socket_path.clone().map_or_else(
                || {
                    Path::new(env.state_dir.as_deref().unwrap_or("/nix/var/nix"))
                        .join("daemon-socket/socket")
                },
                PathBuf::from,
            )
        };
        let socket = if scheme == "daemon" {
            default_socket()
        } else if let Some(path) = scheme.strip_prefix("unix://") {
            PathBuf::from(path)
        } else if scheme == "auto" {
            let socket = default_socket();
            if !socket.exists() {
                return Ok(None);
            }
            socket
        } else {
            return Ok(None);
        };
        Ok(Some(DaemonAddress {
            socket,
            store_dir,
            origin,
        }))
    }
}

/// The last value of `name` in a nix.conf text (`name = value`, `#` comments).
fn conf_setting(text: &str, name: &str) -> Option<String> {
    text.lines().rev().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let (key, value) = line.split_once('=')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(env: &NixEnv) -> Option<DaemonAddress> {
        DaemonAddress::find(env).unwrap()
    }

    #[test]
    fn nix_remote_daemon_uses_the_socket_variable_and_store_dir() {
        let env = NixEnv {
            nix_remote: Some("daemon".into()),
            socket_path: Some("/tmp/w/sock".into()),
            store_dir: Some("/tmp/w/store".into()),
            ..NixEnv::default()
        };
        let addr = find(&env).unwrap();
        assert_eq!(addr.socket, Path::new("/tmp/w/sock"));
        assert_eq!(addr.store_dir.as_str(), "/tmp/w/store");
    }

    #[test]
    fn daemon_socket_defaults_under_the_state_dir() {
        let env = NixEnv {
            nix_remote: Some("daemon".into()),
            state_dir: Some("/s".into()),
            ..NixEnv::default()
        };
        let addr = find(&env).unwrap();
        assert_eq!(addr.socket, Path::new("/s/daemon-socket/socket"));
        assert_eq!(addr.store_dir.as_str(), "/nix/store");
    }

    #[test]
    fn unix_uri_and_store_parameter() {
        let env = NixEnv {
            conf_store: Some((
                "unix:///run/d.sock?store=/x/store".into(),
                "/etc/nix/nix.conf".into(),
            )),
            ..NixEnv::default()
        };
        let addr = find(&env).unwrap();
        assert_eq!(addr.socket, Path::new("/run/d.sock"));
        assert_eq!(addr.store_dir.as_str(), "/x/store");
        assert!(addr.origin.contains("/etc/nix/nix.conf"), "{}", addr.origin);
    }

    #[test]
    fn local_store_or_missing_socket_is_no_daemon() {
        let local = NixEnv {
            nix_remote: Some("local".into()),
            ..NixEnv::default()
        };
        assert_eq!(find(&local), None);
        let auto = NixEnv {
            socket_path: Some("/nonexistent/envy-test/socket".into()),
            ..NixEnv::default()
        };
        assert_eq!(find(&auto), None);
    }

    #[test]
    fn conf_setting_takes_the_last_value_without_comments() {
        let text = "store = local\n# store = daemon\nstore = daemon # the daemon\n";
        assert_eq!(conf_setting(text, "store").as_deref(), Some("daemon"));
        assert_eq!(conf_setting("stores = x", "store"), None);
    }
}
