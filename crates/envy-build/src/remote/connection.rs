//! `Connection`: one open connection to a build machine, in the protocol its URI names.
//! `ssh://` runs `nix-store --serve --write` there (the serve protocol,
//! [`envy_store::serve`]); `ssh-ng://` runs `nix-daemon --stdio` (the worker protocol,
//! [`envy_store::daemon`], whose log messages become the build log). Both through the system
//! `ssh`, as Nix runs it, and both offer the same four steps of a remote build: copy the
//! input closure there, build, take the log, copy the outputs back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use envy_store::daemon::log::{Field, ResultKind};
use envy_store::daemon::{ClientOptions, DaemonClient, DaemonError, LogEvent};
use envy_store::serve::{
    self, BuildSettings, BuildStatus, RemoteProcess, ServeConnection, ServeError,
};
use envy_store::{Derivation, LocalStore, StoreDir, StorePath, ValidPathInfo};

use super::machines::{Machine, Protocol};

/// What went wrong with a build machine.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The daemon protocol failed; `message` has the cause chain and what ssh said.
    #[error("{message}")]
    Daemon { message: String },
}

/// An open connection to a build machine.
pub enum Connection {
    Serve(ServeConnection),
    Daemon(Box<DaemonConnection>),
}

/// `nix-daemon --stdio` on a machine, through ssh.
pub struct DaemonConnection {
    // Declared first so it drops first: its end of the pipes closes before ssh is ended.
    client: DaemonClient,
    log: Arc<Mutex<Vec<u8>>>,
    process: RemoteProcess,
}

impl Connection {
    /// Connect to `machine` through ssh (`NIX_SSHOPTS` as Nix reads it; the machine's host
    /// key, when its line gives one, written to a known-hosts file in `known_hosts_dir`).
    ///
    /// # Errors
    /// ssh cannot start, the machine cannot be reached, or it does not speak the protocol.
    pub fn open(
        machine: &Machine,
        store_dir: &StoreDir,
        known_hosts_dir: &Path,
    ) -> Result<Self, RemoteError> {
        let known_hosts = match &machine.host_key {
            Some(key) => Some(
                serve::write_known_hosts(known_hosts_dir, &machine.host, key).map_err(
                    |source| ServeError::Spawn {
                        program: "ssh".into(),
                        source,
                    },
                )?,
            ),
            None => None,
        };
        let sshopts = std::env::var("NIX_SSHOPTS").unwrap_or_default();
        let remote_command = match machine.protocol {
            Protocol::Daemon => "nix-daemon --stdio",
            _ => "nix-store --serve --write",
        };
        let cmd = serve::ssh_command(
            &machine.host,
            machine.ssh_key.as_deref(),
            known_hosts.as_deref(),
            &sshopts,
            remote_command,
        );
        if machine.protocol != Protocol::Daemon {
            return Ok(Connection::Serve(ServeConnection::open(
                cmd,
                store_dir.clone(),
            )?));
        }
        let (process, stdin, stdout) =
            RemoteProcess::spawn(cmd).map_err(|source| ServeError::Spawn {
                program: "ssh".into(),
                source,
            })?;
        let label = PathBuf::from(&machine.uri);
        let client =
            DaemonClient::over(label, store_dir.clone(), Box::new(stdout), Box::new(stdin));
        let mut client = match client {
            Ok(c) => c,
            Err(e) => return Err(daemon_error(&e, &process)),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        client.set_log_sink(Box::new(move |event: LogEvent| {
            if let Some(line) = log_line(&event) {
                let mut log = sink.lock().expect("remote log");
                log.extend_from_slice(line.as_bytes());
                log.push(b'\n');
            }
        }));
        if let Err(e) = client.set_options(&ClientOptions::default()) {
            return Err(daemon_error(&e, &process));
        }
        Ok(Connection::Daemon(Box::new(DaemonConnection {
            client,
            log,
            process,
        })))
    }

    /// Copy the closure of `paths` the machine lacks, references first; with `substitute`
    /// the machine first substitutes what it can from its own caches. Returns how many
    /// paths were copied.
    ///
    /// # Errors
    /// The connection broke, or the machine refused a path.
    pub fn copy_closure_to(
        &mut self,
        store: &LocalStore,
        paths: &BTreeSet<StorePath>,
        substitute: bool,
    ) -> Result<usize, RemoteError> {
        match self {
            Connection::Serve(c) => Ok(c.copy_closure_to(store, paths, substitute)?),
            Connection::Daemon(d) => d
                .client
                .copy_closure_to(store, paths, substitute)
                .map(|copied| copied.len())
                .map_err(|e| daemon_error(&e, &d.process)),
        }
    }

    /// Build the basic derivation `drv` as `drv_path` there; its log is in
    /// [`Self::take_log`] afterwards.
    ///
    /// # Errors
    /// The connection broke. A failed build is an `Ok` status that is not a success.
    pub fn build_derivation(
        &mut self,
        drv_path: &StorePath,
        drv: &Derivation,
    ) -> Result<BuildStatus, RemoteError> {
        match self {
            Connection::Serve(c) => {
                Ok(c.build_derivation(drv_path, drv, BuildSettings::default())?)
            }
            Connection::Daemon(d) => {
                let mut status = d
                    .client
                    .build_derivation(drv_path, drv)
                    .map_err(|e| daemon_error(&e, &d.process))?;
                status.error = without_log_tail(&status.error);
                Ok(status)
            }
        }
    }

    /// The machine's log since the last call: the build's output, and ssh's own messages.
    #[must_use]
    pub fn take_log(&self) -> Vec<u8> {
        match self {
            Connection::Serve(c) => c.take_log(),
            Connection::Daemon(d) => {
                let mut log = std::mem::take(&mut *d.log.lock().expect("remote log"));
                log.extend(d.process.take_stderr());
                log
            }
        }
    }

    /// Copy `paths` (valid there) into `store`, each checked against the machine's NAR hash
    /// and size; returns their infos as registered.
    ///
    /// # Errors
    /// The connection broke, the machine lacks a path, or a NAR does not match its info.
    pub fn copy_paths_from(
        &mut self,
        store: &LocalStore,
        paths: &BTreeSet<StorePath>,
    ) -> Result<Vec<ValidPathInfo>, RemoteError> {
        match self {
            Connection::Serve(c) => Ok(c.copy_paths_from(store, paths)?),
            Connection::Daemon(d) => d
                .client
                .copy_paths_from(store, paths)
                .map_err(|e| daemon_error(&e, &d.process)),
        }
    }
}

/// A daemon's build error without the log tail Nix appends (`;\nlast N log lines:\n> …\nFor
/// full logs, run 'nix log …'.`): envy shows the tail of the log it kept, and `envy log`.
fn without_log_tail(error: &str) -> String {
    match error.find(";\nlast ") {
        Some(i) if error[i..].contains(" log lines:") => error[..i].to_string(),
        _ => error.to_string(),
    }
}

/// The daemon's log lines as a build log: its messages and the builder's output.
fn log_line(event: &LogEvent) -> Option<&str> {
    match event {
        LogEvent::Message { text } => Some(text),
        LogEvent::Result {
            kind: ResultKind::BuildLogLine | ResultKind::PostBuildLogLine,
            fields,
            ..
        } => fields.first().and_then(Field::as_str),
        _ => None,
    }
}

/// `err` with its causes, and the last lines ssh (or the remote shell) wrote on stderr.
fn daemon_error(err: &DaemonError, process: &RemoteProcess) -> RemoteError {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    let stderr = process.stderr_text();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if !lines.is_empty() {
        let start = lines.len().saturating_sub(10);
        message.push_str(&format!("; it said:\n{}", lines[start..].join("\n")));
    }
    RemoteError::Daemon { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_log_tail_is_dropped_from_its_error() {
        let nix = "builder for '/s/x.drv' failed with exit code 7;\nlast 1 log lines:\n> why\nFor full logs, run 'nix log /s/x.drv'.";
        assert_eq!(
            without_log_tail(nix),
            "builder for '/s/x.drv' failed with exit code 7"
        );
        assert_eq!(without_log_tail("no tail; here"), "no tail; here");
    }
}
