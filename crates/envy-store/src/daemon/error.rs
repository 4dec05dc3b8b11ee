//! What can go wrong talking to a Nix daemon: the socket, the handshake, the daemon refusing
//! an operation (with Nix's own message), or a reply envy cannot read.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::nar::NarError;
use crate::store_path::StorePathError;

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("cannot connect to the Nix daemon at `{socket}`")]
    Connect {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("lost the connection to the Nix daemon at `{socket}` during `{op}`")]
    Io {
        socket: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the Nix daemon at `{socket}` does not speak a protocol envy knows: {detail}")]
    Handshake { socket: PathBuf, detail: String },
    /// The daemon ran the operation and failed; `message` is Nix's error text.
    #[error("the Nix daemon failed `{op}`: {message}")]
    Daemon {
        op: &'static str,
        message: String,
        /// Nix's trace lines (`while …`), innermost last.
        traces: Vec<String>,
    },
    #[error("unexpected reply from the Nix daemon to `{op}`: {detail}")]
    Protocol { op: &'static str, detail: String },
    #[error("the Nix daemon returned `{path}`, which is not a path in store `{store_dir}`")]
    BadPath {
        path: String,
        store_dir: String,
        #[source]
        source: StorePathError,
    },
    #[error("cannot archive `{path}` for the Nix daemon")]
    Nar {
        path: PathBuf,
        #[source]
        source: NarError,
    },
    /// envy's own store failed while a path was being copied to or from the daemon.
    #[error(transparent)]
    Store(#[from] Box<crate::StoreError>),
    #[error("cannot make the gc root `{link}`")]
    Root {
        link: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DaemonError {
    /// Nix's own message when the daemon refused or failed the operation.
    #[must_use]
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            DaemonError::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}
