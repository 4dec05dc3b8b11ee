//! Shells: the hook scripts (embedded from `shell-hooks/`) and the code `envy export` prints
//! for each shell.
//!
//! A [`Script`] says what to do — undo a loaded environment, set/unset variables, load a new
//! record's shell variables, functions and shellHook, update the state variable — and each
//! shell module renders it. Only shell code is produced here; messages are the caller's.

pub mod bash;
pub mod fish;
pub mod quote;

use std::path::Path;

use crate::cache::restore::Restore;
use crate::env_diff::Change;
use crate::env_record::EnvRecord;

/// A shell envy can hook into (plus `json` for `envy export json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Json,
}

/// A shell envy can install a hook in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookShell {
    Bash,
    Zsh,
    Fish,
}

const BASH_HOOK: &str = include_str!("../../shell-hooks/envy.bash");
const ZSH_HOOK: &str = include_str!("../../shell-hooks/envy.zsh");
const FISH_HOOK: &str = include_str!("../../shell-hooks/envy.fish");

impl HookShell {
    /// The hook script, calling the envy binary at `exe`.
    pub fn hook(self, exe: &Path) -> String {
        let exe = exe.to_string_lossy();
        match self {
            HookShell::Bash => BASH_HOOK.replace("@ENVY@", &quote::posix(&exe)),
            HookShell::Zsh => ZSH_HOOK.replace("@ENVY@", &quote::posix(&exe)),
            HookShell::Fish => FISH_HOOK.replace("@ENVY@", &quote::fish(&exe)),
        }
    }
}

/// What to change in the shell, in order.
#[derive(Debug, Clone, Copy)]
pub struct Script<'a> {
    /// The loaded environment to undo (its functions, shell variables, shellHook effects;
    /// its environment variables are part of `changes`).
    pub unload: Option<&'a Restore>,
    /// Environment variables to set or unset.
    pub changes: &'a [Change],
    /// The record whose shell variables, functions and shellHook to load.
    pub load: Option<&'a EnvRecord>,
    /// The new value of `__ENVY_STATE` (`None`: unset it).
    pub state: Option<&'a str>,
}

impl Shell {
    /// Render `script` for this shell.
    pub fn render(self, script: &Script<'_>) -> String {
        match self {
            Shell::Bash => bash::render(script, bash::Flavor::Bash),
            Shell::Zsh => bash::render(script, bash::Flavor::Zsh),
            Shell::Fish => fish::render(script),
            Shell::Json => render_json(script),
        }
    }
}

fn render_json(script: &Script<'_>) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in script.changes {
        map.insert(name.clone(), value.clone().into());
    }
    map.insert(
        crate::env_vars::__ENVY_STATE.to_string(),
        script.state.map(str::to_string).into(),
    );
    let mut out = serde_json::Value::Object(map).to_string();
    out.push('\n');
    out
}
