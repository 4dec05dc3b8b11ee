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

/// The name of the small executable the prompt hook runs, installed beside `envy`
/// (`src/bin/envy-hook.rs`).
pub const HOOK_EXECUTABLE: &str = "envy-hook";

impl HookShell {
    /// The hook script, calling the envy binary at `exe` — and, at every prompt, `envy-hook`
    /// beside it when it is there (it answers an unchanged prompt in what an empty program
    /// costs and hands everything else to `envy`), `exe` itself otherwise.
    pub fn hook(self, exe: &Path) -> String {
        let fast = exe.with_file_name(HOOK_EXECUTABLE);
        let fast = if fast.is_file() {
            fast
        } else {
            exe.to_path_buf()
        };
        let (exe, fast) = (exe.to_string_lossy(), fast.to_string_lossy());
        let (script, quote): (&str, fn(&str) -> String) = match self {
            HookShell::Bash => (BASH_HOOK, quote::posix),
            HookShell::Zsh => (ZSH_HOOK, quote::posix),
            HookShell::Fish => (FISH_HOOK, quote::fish),
            HookShell::Nu => (NU_HOOK, quote::nu),
            HookShell::Elvish => (ELVISH_HOOK, quote::elvish),
            HookShell::Xonsh => (XONSH_HOOK, quote::python),
        };
        script
            .replace("@ENVY_HOOK@", &quote(&fast))
            .replace("@ENVY@", &quote(&exe))
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
    /// The shell named on `envy export`'s command line (one of
    /// [`crate::hook::fast::EXPORT_SHELLS`]), if it is one the hook serves.
    pub fn from_export_arg(name: &std::ffi::OsStr) -> Option<Shell> {
        Some(match name.to_str()? {
            "bash" => Shell::Bash,
            "zsh" => Shell::Zsh,
            "fish" => Shell::Fish,
            "nu" => Shell::Nu,
            "elvish" => Shell::Elvish,
            "xonsh" => Shell::Xonsh,
            "json" => Shell::Json,
            _ => return None,
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_export_shell_the_fast_path_accepts_is_one_envy_renders() {
        for name in crate::hook::fast::EXPORT_SHELLS {
            assert!(Shell::from_export_arg(name.as_ref()).is_some(), "{name}");
        }
        assert_eq!(Shell::from_export_arg("tcsh".as_ref()), None);
    }

    #[test]
    fn the_prompt_runs_envy_hook_when_it_is_installed_beside_envy() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("envy");
        let without = HookShell::Bash.hook(&exe);
        let quoted = |p: &Path| quote::posix(&p.to_string_lossy());
        assert!(
            without.contains(&format!("{} export bash", quoted(&exe))),
            "{without}"
        );
        fs_err::write(dir.path().join(HOOK_EXECUTABLE), "").unwrap();
        for shell in [
            HookShell::Bash,
            HookShell::Zsh,
            HookShell::Fish,
            HookShell::Nu,
            HookShell::Elvish,
            HookShell::Xonsh,
        ] {
            let script = shell.hook(&exe);
            assert!(!script.contains("@ENVY"), "{shell:?}: {script}");
            assert!(script.contains(HOOK_EXECUTABLE), "{shell:?}: {script}");
        }
        let bash = HookShell::Bash.hook(&exe);
        let hook = dir.path().join(HOOK_EXECUTABLE);
        assert!(
            bash.contains(&format!("{} export bash", quoted(&hook))),
            "{bash}"
        );
    }
}
