//! The trust gate: before envy evaluates anything for a project, every flake that evaluation
//! would read code from must be allowed — the project's own `flake.nix`, and a local flake
//! that `envy use` points at (`envy use ../tools#x`), with that flake's own allow, so its
//! later edits (a new `shellHook`) are blocked until it is allowed again.
//!
//! A flake `envy use` names by a remote reference (`github:o/r`) is not a file on this
//! machine that can change under the user: typing it is the consent, as with `nix develop`.

use std::path::PathBuf;

use anyhow::Result;

use super::{Snapshot, SnapshotError, Trust, TrustStore};
use crate::backend::ShellSelection;
use crate::project::{self, Project};

/// What the gate decided.
#[derive(Debug)]
pub enum Gate {
    /// Every flake is allowed: evaluate exactly these files (the project's first).
    Open(Vec<Snapshot>),
    /// A flake is not allowed (its `flake.nix`, and whether `envy use` selected it).
    Closed {
        trust: Trust,
        flake: PathBuf,
        selected: bool,
    },
    /// A file the decision needs cannot be read safely (a device, a FIFO, too large).
    Unreadable(SnapshotError),
}

impl Gate {
    /// The one-line message a blocked or unreadable project shows (`None` when open).
    pub fn message(&self, keeping: bool) -> Option<String> {
        let kept = if keeping {
            " (keeping the environment loaded before the change)"
        } else {
            ""
        };
        match self {
            Gate::Open(_) => None,
            Gate::Closed {
                trust,
                flake,
                selected,
            } => {
                let what = match trust {
                    Trust::Changed => "changed since it was allowed",
                    Trust::Denied => "denied",
                    _ => "is not allowed",
                };
                let (what, hint) = match (selected, flake.parent()) {
                    (true, Some(dir)) => (
                        format!("(picked by `envy use`) {what}"),
                        format!("envy allow {}", dir.display()),
                    ),
                    _ => (what.to_string(), "envy allow".to_string()),
                };
                Some(format!(
                    "`{}` {what}: run `{hint}` to trust it{kept}",
                    flake.display()
                ))
            }
            Gate::Unreadable(e) => Some(format!(
                "{e}: envy reads nothing more of an untrusted project{kept}"
            )),
        }
    }
}

/// The local flake `selection` points at, as a project (`None`: the project's own flake, or
/// a remote reference).
pub fn selected_flake(selection: &ShellSelection) -> Option<Project> {
    let reference = selection.flake_ref.as_deref()?;
    let parsed = envy_flake::FlakeRef::parse(reference, None).ok()?;
    let dir = envy_flake::lock::source_path(&parsed.input)?;
    let dir = if parsed.subdir.is_empty() {
        dir
    } else {
        dir.join(&parsed.subdir)
    };
    Some(Project::at(project::normalize(&dir)))
}

/// Pass `project` with `selection` through the gate.
pub fn gate(store: &TrustStore, project: &Project, selection: &ShellSelection) -> Result<Gate> {
    let mut open = Vec::new();
    let selected = selected_flake(selection).filter(|p| p != project);
    for (flake, is_selected) in
        std::iter::once((project, false)).chain(selected.iter().map(|p| (p, true)))
    {
        let snapshot = match Snapshot::read(flake) {
            Ok(s) => s,
            Err(e) => return Ok(Gate::Unreadable(e)),
        };
        match store.check_snapshot(&snapshot) {
            Trust::Allowed => open.push(snapshot),
            trust => {
                return Ok(Gate::Closed {
                    trust,
                    flake: flake.flake_nix(),
                    selected: is_selected,
                });
            }
        }
    }
    Ok(Gate::Open(open))
}
