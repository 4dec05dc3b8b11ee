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
use crate::env::diff::Change;
use crate::env::record::EnvRecord;

/// A shell envy can hook into (plus `json` for `envy export json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Nu,
    Elvish,
    Xonsh,
    Json,
}

/// A shell envy can install a hook in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookShell {
    Bash,
    Zsh,
    Fish,
    Nu,
    Elvish,
    Xonsh,
}

const BASH_HOOK: &str = include_str!("../../shell-hooks/envy.bash");
const ZSH_HOOK: &str = include_str!("../../shell-hooks/envy.zsh");
const FISH_HOOK: &str = include_str!("../../shell-hooks/envy.fish");
const NU_HOOK: &str = include_str!("../../shell-hooks/envy.nu");
const ELVISH_HOOK: &str = include_str!("../../shell-hooks/envy.elv");
const XONSH_HOOK: &str = include_str!("../../shell-hooks/envy.xsh");

impl HookShell {
    /// The hook script, calling the envy binary at `exe`.
    pub fn hook(self, exe: &Path) -> String {
        let exe = exe.to_string_lossy();
        match self {
            HookShell::Bash => BASH_HOOK.replace("@ENVY@", &quote::posix(&exe)),
            HookShell::Zsh => ZSH_HOOK.replace("@ENVY@", &quote::posix(&exe)),
            HookShell::Fish => FISH_HOOK.replace("@ENVY@", &quote::fish(&exe)),
            HookShell::Nu => NU_HOOK.replace("@ENVY@", &quote::nu(&exe)),
            HookShell::Elvish => ELVISH_HOOK.replace("@ENVY@", &quote::elvish(&exe)),
            HookShell::Xonsh => XONSH_HOOK.replace("@ENVY@", &quote::python(&exe)),
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
            // These hooks apply the JSON object themselves.
            Shell::Nu | Shell::Elvish | Shell::Xonsh | Shell::Json => render_json(script),
        }
    }

    /// Whether this shell gets JSON (text: escaped bytes stay characters there).
    pub fn is_json(self) -> bool {
        matches!(self, Shell::Nu | Shell::Elvish | Shell::Xonsh | Shell::Json)
    }

    /// Whether this shell runs a devShell's shellHook and bash functions (bash and zsh do;
    /// the others get its variables).
    pub fn runs_bash(self) -> bool {
        matches!(self, Shell::Bash | Shell::Zsh)
    }
}

fn render_json(script: &Script<'_>) -> String {
    let mut map = serde_json::Map::new();
    for (name, value) in script.changes {
        map.insert(name.clone(), value.clone().into());
    }
    map.insert(
        crate::env::vars::__ENVY_STATE.to_string(),
        script.state.map(str::to_string).into(),
    );
    let mut out = serde_json::Value::Object(map).to_string();
    out.push('\n');
    out
}
