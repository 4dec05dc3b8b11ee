//! Code for fish: environment variables only (fish cannot run a bash shellHook or bash
//! functions; the caller prints a one-line note when a record has them). Variables whose name
//! ends in `PATH` become fish lists, as fish itself does when it imports them.

use std::fmt::Write as _;

use super::Script;
use super::quote::fish as q;

/// Names fish reserves (read-only or special); never set or unset.
const RESERVED: &[&str] = &[
    "status",
    "pipestatus",
    "history",
    "version",
    "FISH_VERSION",
    "fish_pid",
    "hostname",
    "_",
    "PWD",
    "SHLVL",
    "argv",
    "umask",
    "last_pid",
    "CMD_DURATION",
    "COLUMNS",
    "LINES",
    "fish_kill_signal",
    "status_generation",
    "fish_killring",
    "fish_private_mode",
];

/// Render `script` as fish code.
pub fn render(script: &Script<'_>) -> String {
    let mut out = String::new();
    for (name, value) in script.changes {
        if RESERVED.contains(&name.as_str()) {
            continue;
        }
        match value {
            Some(v) if name.ends_with("PATH") => {
                let _ = writeln!(out, "set -gx {name} (string split -- : {});", q(v));
            }
            Some(v) => {
                let _ = writeln!(out, "set -gx {name} {};", q(v));
            }
            None => {
                let _ = writeln!(out, "set -e {name};");
            }
        }
    }
    match script.state {
        Some(state) => {
            let _ = writeln!(
                out,
                "set -gx {} {};",
                crate::env::vars::__ENVY_STATE,
                q(state)
            );
        }
        None => {
            let _ = writeln!(out, "set -e {};", crate::env::vars::__ENVY_STATE);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_lists() {
        let changes = vec![
            ("PATH".to_string(), Some("/a:/b".to_string())),
            ("FOO".to_string(), Some("x'y".to_string())),
            ("GONE".to_string(), None),
            ("status".to_string(), Some("0".to_string())),
        ];
        let s = Script {
            unload: None,
            changes: &changes,
            load: None,
            state: Some("st"),
        };
        assert_eq!(
            render(&s),
            "set -gx PATH (string split -- : '/a:/b');\nset -gx FOO 'x\\'y';\nset -e GONE;\nset -gx __ENVY_STATE 'st';\n"
        );
    }
}
