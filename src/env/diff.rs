//! The environment diff: from the shell's environment now, the restore data of what is loaded,
//! and the record to load, compute which variables to set or unset and what the new restore
//! data is.
//!
//! The shell's environment is taken back to how it was before the loaded project (its restore
//! data applied), the new record is applied on top (`PATH` and `XDG_DATA_DIRS` prepended to
//! the user's own), and only variables whose final value differs from now are emitted.

use std::collections::{BTreeMap, BTreeSet};

use crate::cache::restore::Restore;
use crate::env::record::EnvRecord;
use crate::env::vars as env_vars;

/// One environment change: set to a value, or unset.
pub type Change = (String, Option<String>);

/// The result of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Changes to make, sorted by name.
    pub changes: Vec<Change>,
    /// Restore data for the newly loaded record (`None` when nothing is loaded after this).
    pub restore: Option<Restore>,
    /// The environment the user had before any project: what evaluation should see.
    pub base: BTreeMap<String, String>,
}

/// The environment with `restore` applied: as it was before the loaded project.
pub fn base_env(
    now: &BTreeMap<String, String>,
    restore: Option<&Restore>,
) -> BTreeMap<String, String> {
    let mut base = now.clone();
    if let Some(restore) = restore {
        for (name, value) in &restore.vars {
            match value {
                Some(v) => base.insert(name.clone(), v.clone()),
                None => base.remove(name),
            };
        }
    }
    base
}

/// Diff `now` (the shell's environment) against: unload `unload`, then load `load`.
pub fn diff(
    now: &BTreeMap<String, String>,
    unload: Option<&Restore>,
    load: Option<&EnvRecord>,
) -> Diff {
    let base = base_env(now, unload);
    let mut target = base.clone();
    let mut touched: BTreeSet<String> = unload
        .map(|r| r.vars.keys().cloned().collect())
        .unwrap_or_default();
    let restore = load.map(|record| {
        let mut restore = Restore::default();
        for (name, value) in record.exported() {
            if env_vars::is_internal(name) {
                continue;
            }
            let previous = base.get(name).cloned();
            let new = match (&previous, env_vars::is_prepended(name)) {
                (Some(user), true) if !user.is_empty() => format!("{value}:{user}"),
                (None, true) if name == env_vars::XDG_DATA_DIRS => {
                    format!("{value}:/usr/local/share:/usr/share")
                }
                _ => value.to_string(),
            };
            target.insert(name.to_string(), new);
            restore.vars.insert(name.to_string(), previous);
            touched.insert(name.to_string());
        }
        restore.locals = record.shell_locals().map(|(n, _)| n.to_string()).collect();
        restore.functions = record.bash_functions.keys().cloned().collect();
        restore.shell_hook = record.shell_hook().is_some();
        restore
    });
    let changes = touched
        .into_iter()
        .filter(|name| target.get(name) != now.get(name))
        .map(|name| {
            let value = target.get(&name).cloned();
            (name, value)
        })
        .collect();
    Diff {
        changes,
        restore,
        base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::record::Variable;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn record(pairs: &[(&str, &str)]) -> EnvRecord {
        let mut r = EnvRecord::default();
        for (k, v) in pairs {
            r.variables
                .insert(k.to_string(), Variable::Exported(v.to_string()));
        }
        r
    }

    #[test]
    fn load_prepends_path_and_remembers_previous_values() {
        let now = env(&[("PATH", "/usr/bin"), ("FOO", "old")]);
        let d = diff(
            &now,
            None,
            Some(&record(&[
                ("PATH", "/nix/a/bin"),
                ("FOO", "new"),
                ("BAR", "b"),
            ])),
        );
        assert_eq!(
            d.changes,
            vec![
                ("BAR".to_string(), Some("b".to_string())),
                ("FOO".to_string(), Some("new".to_string())),
                ("PATH".to_string(), Some("/nix/a/bin:/usr/bin".to_string())),
            ]
        );
        let r = d.restore.unwrap();
        assert_eq!(r.vars["BAR"], None);
        assert_eq!(r.vars["FOO"].as_deref(), Some("old"));
        assert_eq!(r.vars["PATH"].as_deref(), Some("/usr/bin"));
    }

    #[test]
    fn unload_restores_exactly() {
        let before = env(&[("PATH", "/usr/bin"), ("FOO", "old")]);
        let loaded = diff(
            &before,
            None,
            Some(&record(&[
                ("PATH", "/nix/a/bin"),
                ("FOO", "new"),
                ("BAR", "b"),
            ])),
        );
        let mut inside = before.clone();
        for (k, v) in &loaded.changes {
            match v {
                Some(v) => inside.insert(k.clone(), v.clone()),
                None => inside.remove(k),
            };
        }
        let left = diff(&inside, loaded.restore.as_ref(), None);
        let mut after = inside.clone();
        for (k, v) in &left.changes {
            match v {
                Some(v) => after.insert(k.clone(), v.clone()),
                None => after.remove(k),
            };
        }
        assert_eq!(after, before);
        assert_eq!(left.restore, None);
    }

    #[test]
    fn switching_projects_applies_the_new_on_the_original_base() {
        let before = env(&[("PATH", "/usr/bin")]);
        let a = diff(
            &before,
            None,
            Some(&record(&[("PATH", "/a/bin"), ("A", "1")])),
        );
        let mut inside_a = before.clone();
        for (k, v) in &a.changes {
            inside_a.insert(k.clone(), v.clone().unwrap());
        }
        let b = diff(
            &inside_a,
            a.restore.as_ref(),
            Some(&record(&[("PATH", "/b/bin")])),
        );
        assert_eq!(
            b.changes,
            vec![
                ("A".to_string(), None),
                ("PATH".to_string(), Some("/b/bin:/usr/bin".to_string()))
            ]
        );
        assert_eq!(b.restore.unwrap().vars["PATH"].as_deref(), Some("/usr/bin"));
        assert_eq!(b.base, before);
    }

    #[test]
    fn shell_hook_is_not_exported_and_internal_names_are_never_touched() {
        let d = diff(
            &env(&[]),
            None,
            Some(&record(&[("shellHook", "echo"), ("__ENVY_STATE", "x")])),
        );
        assert!(d.changes.is_empty());
        assert!(d.restore.unwrap().shell_hook);
    }

    #[test]
    fn xdg_data_dirs_keeps_the_system_default_when_unset() {
        let d = diff(
            &env(&[]),
            None,
            Some(&record(&[("XDG_DATA_DIRS", "/nix/share")])),
        );
        assert_eq!(
            d.changes[0].1.as_deref(),
            Some("/nix/share:/usr/local/share:/usr/share")
        );
    }
}
