//! Backends: what turns a project's `flake.nix` into an [`EnvRecord`].
//!
//! The hook, the cache and the shells only ever see this trait. A backend evaluates the
//! flake's devShell, builds it, captures its environment the way `nix print-dev-env --json`
//! does, reports what the evaluation read (the [`WatchList`](crate::env::record::WatchList)),
//! and keeps the result alive against garbage collection with roots under a directory envy
//! gives it. Two implement it:
//!
//! - [`nix::NixBackend`] runs the real Nix CLI (`nix print-dev-env --json`);
//! - [`embedded::EmbeddedBackend`] runs envy's own engine (envy-flake, envy-eval, envy-store,
//!   envy-build): the default, falling back to Nix for flakes it cannot handle.
//!
//! Contract, for implementers:
//! - Never print: report through the [`ProgressSink`]; put Nix-style text (`error: …`, an
//!   `at FILE:LINE:COL:` line) in [`BackendError::message`], with paths in the user's project
//!   (not in a store copy of it).
//! - Return the record *unsanitized or sanitized* — the caller runs
//!   [`EnvRecord::sanitize`](crate::env::record::EnvRecord::sanitize) either way — and with a
//!   watch list of absolute paths that includes `flake.nix` and `flake.lock` (present or not).
//! - Create GC roots only under [`BuildRequest::roots_dir`], return them in
//!   [`BuildOutput::roots`], and free them in [`Backend::release_root`] (called by `envy gc`).
//! - Be safe to run concurrently for different projects; envy holds a per-project lock.

pub mod embedded;
pub mod nix;
pub mod nix_cli;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::record::EnvRecord;
use crate::trust::Snapshot;
use crate::util::progress::ProgressSink;

/// Which devShell of which flake a project uses (`envy use [FLAKE_REF#]NAME`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShellSelection {
    /// A flake reference other than the project itself (`github:o/r`, an absolute path), or
    /// `None` for the project's own `flake.nix`.
    pub flake_ref: Option<String>,
    /// The devShell name: `devShells.<system>.<name>`; `default` unless `envy use` said else.
    pub name: String,
}

impl ShellSelection {
    /// The project's own `default` devShell.
    pub fn default_shell() -> Self {
        Self {
            flake_ref: None,
            name: "default".to_string(),
        }
    }

    /// `FLAKE_REF#NAME` as the user would write it (`.#NAME` for the project itself).
    pub fn display(&self) -> String {
        format!("{}#{}", self.flake_ref.as_deref().unwrap_or("."), self.name)
    }
}

/// Everything a backend needs to build one project's environment.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The project's directory (holds `flake.nix`); absolute, as the user's shell sees it.
    pub project_root: &'a Path,
    /// Which devShell.
    pub selection: &'a ShellSelection,
    /// The Nix system to pick the devShell for (`x86_64-linux`).
    pub system: &'a str,
    /// The environment evaluation and build tools should see: the user's environment with any
    /// envy-loaded project environment taken back out.
    pub env: &'a BTreeMap<String, String>,
    /// A directory owned by this project's cache where the backend keeps its GC roots.
    pub roots_dir: &'a Path,
    /// The allowed flakes' `flake.nix` / `flake.lock` as the trust gate read them: the backend
    /// evaluates these bytes, never the files read again (empty: no gate, e.g. a flake named
    /// on the command line).
    pub pins: &'a [Snapshot],
    /// `--override-input INPUT FLAKE_REF` pairs: inputs taken from elsewhere for this build
    /// only (no lock file is written).
    pub input_overrides: &'a [(String, String)],
}

/// What a successful build yields.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The captured environment, with the watch list filled in.
    pub record: EnvRecord,
    /// GC roots created for this environment (freed by [`Backend::release_root`]).
    pub roots: Vec<GcRoot>,
    /// One-line notices for the user (`creating lock file …`, a fallback to Nix).
    pub notices: Vec<String>,
    /// The `flake.lock` envy wrote while evaluating a pinned `flake.nix`: the flake's
    /// directory and the bytes written (the only lock an allow carries over to).
    pub wrote_lock: Option<(PathBuf, Vec<u8>)>,
}

/// A GC root a backend made to keep a built environment alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRoot {
    /// The backend that made it (`nix`, `embedded`).
    pub backend: String,
    /// The root itself (for Nix: a profile generation link whose target is the env path).
    pub path: PathBuf,
    /// The store path it keeps alive, for display.
    pub target: Option<String>,
}

/// What went wrong, in Nix's words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// Kind of failure.
    pub kind: ErrorKind,
    /// Nix-style text: starts with `error:`, may span lines (location, code frame, log tail).
    pub message: String,
    /// Files the evaluation read before it failed: a change to any of them is worth a retry.
    pub watch: Vec<PathBuf>,
}

/// Kinds of [`BackendError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The flake did not evaluate (syntax, type, `throw`, missing attribute).
    Eval,
    /// A derivation failed to build.
    Build,
    /// The backend itself could not run (Nix missing, I/O).
    Setup,
}

impl BackendError {
    /// An error of `kind` with `message` (given an `error: ` prefix if it lacks one).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = if message.starts_with("error:") {
            message
        } else {
            format!("error: {message}")
        };
        Self {
            kind,
            message,
            watch: Vec::new(),
        }
    }

    /// The same error, noting the files read before the failure.
    pub fn with_watch(mut self, files: Vec<PathBuf>) -> Self {
        self.watch = files;
        self
    }

    /// The short form the hook prints: the `error:` line and the location (or build log)
    /// lines after it, each trimmed.
    pub fn summary(&self) -> String {
        // Nix's traced form: a bare `error:`, the trace, then `error: <the message>` last.
        // The message itself and the innermost location in a real file are what matter.
        let all: Vec<&str> = self
            .message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if all.first() == Some(&"error:")
            && let Some(last) = all.iter().rposition(|l| l.starts_with("error: "))
        {
            let mut out = all[last].to_string();
            if let Some(location) = all[..last].iter().rev().find_map(|l| {
                l.strip_prefix("at ")
                    .filter(|at| !at.contains("«nix-internal»") && !at.starts_with('«'))
            }) {
                out.push_str("\nat ");
                out.push_str(location.trim_end_matches(':'));
            }
            for line in &all[last + 1..] {
                out.push('\n');
                out.push_str(line);
            }
            return out;
        }
        let mut lines = self
            .message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty());
        let mut out = lines.next().unwrap_or("error: unknown failure").to_string();
        for line in lines {
            if let Some(location) = line.strip_prefix("at ") {
                out.push_str("\nat ");
                out.push_str(location.trim_end_matches(':'));
                break;
            } else if line.starts_with("last ")
                || line.starts_with('>')
                || line.starts_with("hint:")
            {
                out.push('\n');
                out.push_str(line);
            } else if !line.starts_with("(use") && !line.starts_with("For full logs") {
                break;
            }
        }
        out
    }
}

/// Turns a project into an environment.
pub trait Backend: Send + Sync {
    /// Short name (`nix`, `embedded`), recorded in generations and cache keys.
    fn name(&self) -> &'static str;

    /// Evaluate the selected devShell, build it, capture its environment, and root it.
    /// Blocking; report progress through `progress`.
    fn build(
        &self,
        request: &BuildRequest<'_>,
        progress: &dyn ProgressSink,
    ) -> Result<BuildOutput, BackendError>;

    /// Free a root this backend made. The default removes the file or link at `root.path`.
    fn release_root(&self, root: &GcRoot) -> std::io::Result<()> {
        match fs_err::remove_file(&root.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Backend names `ENVY_BACKEND` accepts.
pub const BACKENDS: &[&str] = &["embedded", "nix"];

/// The backend named by `ENVY_BACKEND`. Unset: the embedded engine, handing a flake it
/// cannot evaluate to Nix when Nix is installed (with a notice).
pub fn from_env() -> anyhow::Result<Box<dyn Backend>> {
    let name = std::env::var(crate::env::vars::ENVY_BACKEND).unwrap_or_default();
    if name.is_empty() {
        return Ok(Box::new(embedded::EmbeddedBackend {
            fallback_to_nix: true,
        }));
    }
    by_name(&name)
}

/// The backend called `name` (`embedded` alone never falls back to Nix).
pub fn by_name(name: &str) -> anyhow::Result<Box<dyn Backend>> {
    match name {
        "nix" => Ok(Box::new(nix::NixBackend::from_env())),
        "embedded" => Ok(Box::new(embedded::EmbeddedBackend {
            fallback_to_nix: false,
        })),
        other => anyhow::bail!(
            "unknown backend `{other}` in `ENVY_BACKEND`\nhint: use one of: {}",
            BACKENDS.join(", ")
        ),
    }
}

/// The backend that made `root`, for freeing it.
pub fn for_root(root: &GcRoot) -> Option<Box<dyn Backend>> {
    by_name(&root.backend).ok()
}

/// The system this envy was built for, as Nix spells it (`ENVY_SYSTEM` overrides).
pub fn current_system() -> String {
    if let Ok(s) = std::env::var(crate::env::vars::ENVY_SYSTEM)
        && !s.is_empty()
    {
        return s;
    }
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_keeps_the_error_and_its_location() {
        let e = BackendError::new(
            ErrorKind::Eval,
            "error: syntax error, unexpected ';'\n\n       at /p/flake.nix:3:41:\n\n            2|   outputs\n",
        );
        assert_eq!(
            e.summary(),
            "error: syntax error, unexpected ';'\nat /p/flake.nix:3:41"
        );
        let e = BackendError::new(
            ErrorKind::Eval,
            "error: boom\n(use '--show-trace' to show detailed location information)",
        );
        assert_eq!(e.summary(), "error: boom");
        let e = BackendError::new(ErrorKind::Setup, "cannot find `nix`\nhint: install Nix");
        assert_eq!(e.summary(), "error: cannot find `nix`\nhint: install Nix");
        assert_eq!(
            BackendError::new(ErrorKind::Setup, "no nix").message,
            "error: no nix"
        );
        // The traced form: the message comes last, after a bare `error:` and the trace.
        let e = BackendError::new(
            ErrorKind::Eval,
            "error:\n       … while calling the 'derivationStrict' builtin\n         at «nix-internal»/derivation-internal.nix:12:12:\n\n       … while evaluating attribute 'FOO' of derivation 'shell'\n         at /p/flake.nix:5:7:\n              5|       FOO = throw \"boom\";\n\n       (stack trace truncated; use '--show-trace' to show the full, detailed trace)\n\n       error: boom\n",
        );
        assert_eq!(e.summary(), "error: boom\nat /p/flake.nix:5:7");
    }

    #[test]
    fn system_is_nix_shaped() {
        let s = current_system();
        assert!(s.ends_with("-linux") || s.ends_with("-macos"), "{s}");
    }
}
