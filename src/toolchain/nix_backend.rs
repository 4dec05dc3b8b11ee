//! Realising an `envy shell` environment with the installed Nix: `nix print-dev-env --json`
//! on the materialised package set's `shell.nix`, with Nix's internal-json log turned into
//! envy-build's [`BuildEvent`](envy_build::BuildEvent)s (drawn by the engine's `Render`, as envy's own builds are),
//! and a Nix profile as the environment's GC root.
//!
//! The embedded engine produces the same [`EnvRecord`] from the same Nix files; this backend
//! is what `ENVY_SHELL_BACKEND=nix` selects, and the oracle the embedded one is tested against.

use std::path::{Path, PathBuf};
use std::process::Command;

use envy_build::Progress;

use super::shell_cache::ShellRequest;
use crate::backend::nix_cli;
use crate::env::record::EnvRecord;

#[derive(Debug, thiserror::Error)]
pub enum NixBackendError {
    #[error("cannot run `{nix}`")]
    Spawn {
        nix: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`nix print-dev-env` failed: {message}{}", log_tail(.log))]
    Failed { message: String, log: Vec<String> },
    #[error("`nix print-dev-env` printed an environment envy cannot read")]
    BadJson(#[source] crate::env::record::RecordError),
}

fn log_tail(log: &[String]) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("\nlast lines of the build log:\n{}", log.join("\n"))
    }
}

/// The installed Nix.
pub struct NixBackend {
    nix: PathBuf,
}

impl NixBackend {
    /// `ENVY_NIX`, else `nix` on PATH.
    pub fn find() -> Option<Self> {
        nix_cli::find().map(|nix| Self { nix })
    }

    /// Evaluate and build the shell for `request` from the package set in `pkgs_dir`, keep
    /// it alive with a Nix profile at `profile`, and return its environment.
    pub fn realise(
        &self,
        pkgs_dir: &Path,
        request: &ShellRequest,
        profile: &Path,
        progress: &dyn Progress,
    ) -> Result<EnvRecord, NixBackendError> {
        let packages = format!(
            "[ {} ]",
            request
                .packages
                .iter()
                .map(|p| crate::engine::eval::nix_string(p))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut command = Command::new(&self.nix);
        command
            .args([
                "--extra-experimental-features",
                "nix-command",
                "print-dev-env",
                "--json",
            ])
            .args(["--log-format", "internal-json", "-v"])
            .arg("--file")
            .arg(pkgs_dir.join("shell.nix"))
            .args(["--argstr", "target", request.target.triple()])
            .args(["--arg", "packages", &packages])
            .arg("--profile")
            .arg(profile);
        let run = nix_cli::run(&mut command, &nix_cli::Events(progress)).map_err(|e| {
            let (nix_cli::RunError::Spawn(source) | nix_cli::RunError::Wait(source)) = e;
            NixBackendError::Spawn {
                nix: self.nix.clone(),
                source,
            }
        })?;
        if !run.status.success() {
            let message = if run.log.errors.is_empty() {
                format!("exit status {}", run.status)
            } else {
                run.log.errors.join("\n")
            };
            return Err(NixBackendError::Failed {
                message,
                log: run.log.tail.into(),
            });
        }
        EnvRecord::from_json(&String::from_utf8_lossy(&run.stdout))
            .map_err(NixBackendError::BadJson)
    }
}
