//! Per-project settings, kept in envy's data directory (never in the user's repository):
//! which devShell `envy use` picked.
//!
//! `$XDG_DATA_HOME/envy/projects-v1/<project-key>.json`:
//! `{"root": "/abs/path", "flake_ref": null, "shell": "ci"}`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::backend::ShellSelection;
use crate::project::Project;
use crate::util::dirs::Dirs;

#[derive(Debug, Serialize, Deserialize)]
struct SettingsFile {
    root: PathBuf,
    #[serde(default)]
    flake_ref: Option<String>,
    shell: String,
}

fn path(dirs: &Dirs, project: &Project) -> PathBuf {
    dirs.projects_dir().join(format!("{}.json", project.key()))
}

/// The devShell `project` uses (its `default` unless `envy use` said otherwise).
pub fn selection(dirs: &Dirs, project: &Project) -> Result<ShellSelection> {
    let path = path(dirs, project);
    let text = match fs_err::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ShellSelection::default_shell());
        }
        Err(e) => return Err(e.into()),
    };
    let file: SettingsFile = serde_json::from_str(&text)
        .with_context(|| format!("invalid settings in `{}`", path.display()))?;
    Ok(ShellSelection {
        flake_ref: file.flake_ref,
        name: file.shell,
    })
}

/// Record `selection` for `project`; the project's own `default` removes the file.
pub fn set_selection(dirs: &Dirs, project: &Project, selection: &ShellSelection) -> Result<()> {
    let path = path(dirs, project);
    if *selection == ShellSelection::default_shell() {
        if path.exists() {
            fs_err::remove_file(&path)?;
        }
        return Ok(());
    }
    let file = SettingsFile {
        root: project.root().to_path_buf(),
        flake_ref: selection.flake_ref.clone(),
        shell: selection.name.clone(),
    };
    crate::util::fsutil::write_atomic(
        &path,
        format!("{}\n", serde_json::to_string_pretty(&file)?).as_bytes(),
    )
}

/// Parse `envy use`'s argument: `NAME`, `#NAME`, or `FLAKE_REF#NAME`. A relative path flake
/// reference (`./x`, `../x`) is made absolute against `base`, so it means the same from
/// any directory.
pub fn parse_selection(arg: &str, base: &std::path::Path) -> Result<ShellSelection> {
    let (flake_ref, name) = match arg.rsplit_once('#') {
        Some((r, n)) => (Some(r), n),
        None => (None, arg),
    };
    if name.is_empty() {
        anyhow::bail!(
            "missing devShell name in `{arg}`\nhint: write `envy use NAME` or `envy use FLAKE_REF#NAME`"
        );
    }
    let flake_ref = match flake_ref {
        None | Some("" | ".") => None,
        Some(r) if r.starts_with("./") || r.starts_with("../") || r == ".." => {
            Some(base.join(r).display().to_string())
        }
        Some(r) => Some(r.to_string()),
    };
    Ok(ShellSelection {
        flake_ref,
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parse_forms() {
        let base = Path::new("/p");
        assert_eq!(
            parse_selection("ci", base).unwrap(),
            ShellSelection {
                flake_ref: None,
                name: "ci".into()
            }
        );
        assert_eq!(parse_selection(".#ci", base).unwrap().flake_ref, None);
        assert_eq!(parse_selection("#ci", base).unwrap().flake_ref, None);
        assert_eq!(
            parse_selection("../o#x", base)
                .unwrap()
                .flake_ref
                .as_deref(),
            Some("/p/../o")
        );
        assert_eq!(
            parse_selection("github:a/b#x", base)
                .unwrap()
                .flake_ref
                .as_deref(),
            Some("github:a/b")
        );
        assert!(parse_selection("github:a/b#", base).is_err());
    }

    #[test]
    fn round_trip_and_reset() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(tmp.path().join("c"), tmp.path().join("d"));
        let project = Project::at(tmp.path().join("proj"));
        assert_eq!(
            selection(&dirs, &project).unwrap(),
            ShellSelection::default_shell()
        );
        let ci = ShellSelection {
            flake_ref: None,
            name: "ci".into(),
        };
        set_selection(&dirs, &project, &ci).unwrap();
        assert_eq!(selection(&dirs, &project).unwrap(), ci);
        set_selection(&dirs, &project, &ShellSelection::default_shell()).unwrap();
        assert_eq!(
            selection(&dirs, &project).unwrap(),
            ShellSelection::default_shell()
        );
    }
}
