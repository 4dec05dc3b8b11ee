//! Code for bash and zsh (one renderer, two flavours: they differ only in how shell variables
//! are declared and which names are reserved).
//!
//! Loading and unloading functions, shell variables and the shellHook rely on helpers the
//! hook script defines (`shell-hooks/envy.bash`, `envy.zsh`): `_envy_save_defs` /
//! `_envy_restore_defs` keep and put back the user's own definitions of names the
//! environment reuses, `_envy_shellhook` runs the hook once and records what it defined, and
//! `_envy_unhook` undoes that.

use std::fmt::Write as _;

use super::Script;
use super::quote::posix as q;
use crate::env::record::{EnvRecord, Variable};

/// bash or zsh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Bash,
    Zsh,
}

/// Names zsh gives a special meaning (assigning them changes the shell, or fails).
const ZSH_RESERVED: &[&str] = &[
    "path",
    "fpath",
    "cdpath",
    "manpath",
    "mailpath",
    "module_path",
    "status",
    "pipestatus",
    "argv",
    "ARGC",
    "options",
    "functions",
    "aliases",
    "galiases",
    "saliases",
    "parameters",
    "commands",
    "builtins",
    "history",
    "historywords",
    "jobstates",
    "jobtexts",
    "jobdirs",
    "dirstack",
    "signals",
    "terminfo",
    "termcap",
    "userdirs",
    "nameddirs",
    "reswords",
    "errnos",
    "sysparams",
    "psvar",
    "watch",
    "prompt",
    "funcstack",
    "funcfiletrace",
    "funcsourcetrace",
    "functrace",
    "epochtime",
    "widgets",
    "keymaps",
    "modules",
    "mapfile",
    "match",
    "mbegin",
    "mend",
    "reply",
    "REPLY",
    "GID",
    "EGID",
    "USERNAME",
    "TTY",
    "TTYIDLE",
    "ERRNO",
    "HOST",
    "ZSH_NAME",
    "ZSH_VERSION",
    "ZSH_SUBSHELL",
    "ZSH_ARGZERO",
    "ZSH_PATCHLEVEL",
    "precmd_functions",
    "chpwd_functions",
    "preexec_functions",
    "histchars",
    "KEYTIMEOUT",
    "PROMPT",
    "RPROMPT",
];

/// Whether this flavour may set shell variable or environment variable `name`.
pub fn may_set(flavor: Flavor, name: &str) -> bool {
    !(name.starts_with("_envy_") || flavor == Flavor::Zsh && ZSH_RESERVED.contains(&name))
}

/// Render `script` as bash or zsh code.
pub fn render(script: &Script<'_>, flavor: Flavor) -> String {
    let mut out = String::new();
    if let Some(restore) = script.unload {
        if restore.shell_hook {
            out.push_str("_envy_unhook;\n");
        }
        let functions: Vec<&str> = restore.functions.iter().map(String::as_str).collect();
        let locals: Vec<&str> = restore
            .locals
            .iter()
            .map(String::as_str)
            .filter(|n| may_set(flavor, n))
            .collect();
        if !functions.is_empty() {
            let _ = writeln!(out, "unset -f {} 2>/dev/null;", words(&functions));
        }
        if !locals.is_empty() {
            let _ = writeln!(out, "unset -v {} 2>/dev/null;", words(&locals));
        }
        if !functions.is_empty() || !locals.is_empty() {
            out.push_str("_envy_restore_defs;\n");
        }
    }
    for (name, value) in script.changes {
        if !may_set(flavor, name) {
            continue;
        }
        match value {
            Some(v) => {
                let _ = writeln!(out, "export {name}={};", q(v));
            }
            None => {
                let _ = writeln!(out, "unset -v {name};");
            }
        }
    }
    if let Some(record) = script.load {
        load(&mut out, record, flavor);
    }
    match script.state {
        Some(state) => {
            let _ = writeln!(
                out,
                "export {}={};",
                crate::env::vars::__ENVY_STATE,
                q(state)
            );
        }
        None => {
            let _ = writeln!(out, "unset -v {};", crate::env::vars::__ENVY_STATE);
        }
    }
    out
}

fn load(out: &mut String, record: &EnvRecord, flavor: Flavor) {
    let locals: Vec<(&str, &Variable)> = record
        .shell_locals()
        .filter(|(n, _)| may_set(flavor, n))
        .collect();
    let functions: Vec<&str> = record
        .bash_functions
        .keys()
        .map(String::as_str)
        .filter(|n| !crate::env::record::is_hook_owned(n))
        .collect();
    if !locals.is_empty() || !functions.is_empty() {
        let names: Vec<&str> = locals.iter().map(|(n, _)| *n).collect();
        let _ = writeln!(
            out,
            "_envy_save_defs {} -- {};",
            words(&names),
            words(&functions)
        );
    }
    for (name, var) in &locals {
        let _ = writeln!(out, "unset -v {name} 2>/dev/null;");
        out.push_str(&declare_flavored(name, var, flavor));
    }
    // Each function in its own `eval`: one the shell cannot parse loses only itself.
    for (name, body) in &record.bash_functions {
        if crate::env::record::is_hook_owned(name) {
            continue;
        }
        let def = format!("function {name} {{\n{body}\n}}");
        let _ = writeln!(out, "eval {};", q(&def));
    }
    if let Some(hook) = record.shell_hook() {
        let _ = writeln!(out, "_envy_shellhook {};", q(hook));
    }
}

/// A global declaration of shell variable `name` for bash (a script line).
pub fn declare(name: &str, var: &Variable) -> String {
    declare_flavored(name, var, Flavor::Bash)
}

fn declare_flavored(name: &str, var: &Variable, flavor: Flavor) -> String {
    match (var, flavor) {
        (Variable::Var(v) | Variable::Exported(v), Flavor::Bash) => {
            format!("declare -g {name}={};\n", q(v))
        }
        (Variable::Var(v) | Variable::Exported(v), Flavor::Zsh) => {
            format!("typeset -g {name}={};\n", q(v))
        }
        (Variable::Array(items), Flavor::Bash) => {
            let items: Vec<String> = items.iter().map(|i| q(i)).collect();
            format!("declare -ga {name}=({});\n", items.join(" "))
        }
        (Variable::Array(items), Flavor::Zsh) => {
            let items: Vec<String> = items.iter().map(|i| q(i)).collect();
            format!("typeset -ga {name}; {name}=({});\n", items.join(" "))
        }
        (Variable::Associative(map), Flavor::Bash) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("[{}]={}", q(k), q(v)))
                .collect();
            format!("declare -gA {name}=({});\n", items.join(" "))
        }
        (Variable::Associative(map), Flavor::Zsh) => {
            let items: Vec<String> = map.iter().flat_map(|(k, v)| [q(k), q(v)]).collect();
            format!("typeset -gA {name}; {name}=({});\n", items.join(" "))
        }
    }
}

fn words(names: &[&str]) -> String {
    names.iter().map(|n| q(n)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::restore::Restore;

    #[test]
    fn exports_unsets_and_state() {
        let changes = vec![
            ("FOO".to_string(), Some("it's".to_string())),
            ("BAR".to_string(), None),
        ];
        let s = Script {
            unload: None,
            changes: &changes,
            load: None,
            state: Some("1|A"),
        };
        assert_eq!(
            render(&s, Flavor::Bash),
            "export FOO='it'\\''s';\nunset -v BAR;\nexport __ENVY_STATE='1|A';\n"
        );
        let s = Script { state: None, ..s };
        assert!(render(&s, Flavor::Zsh).ends_with("unset -v __ENVY_STATE;\n"));
    }

    #[test]
    fn load_defines_locals_functions_and_runs_the_hook() {
        let mut r = EnvRecord::default();
        r.variables.insert(
            "arr".into(),
            Variable::Array(vec!["a b".into(), "c".into()]),
        );
        r.variables
            .insert("status".into(), Variable::Var("x".into()));
        r.variables.insert(
            "shellHook".into(),
            Variable::Exported("hi() { echo hi; }".into()),
        );
        r.bash_functions
            .insert("greet".into(), " echo hello\n".into());
        let s = Script {
            unload: None,
            changes: &[],
            load: Some(&r),
            state: Some("s"),
        };
        let zsh = render(&s, Flavor::Zsh);
        assert!(zsh.contains("_envy_save_defs 'arr' -- 'greet';"), "{zsh}");
        assert!(zsh.contains("typeset -ga arr; arr=('a b' 'c');"), "{zsh}");
        assert!(
            !zsh.contains("status"),
            "zsh's `status` is read-only: {zsh}"
        );
        assert!(
            zsh.contains("eval 'function greet {\n echo hello\n\n}';"),
            "{zsh}"
        );
        assert!(
            zsh.contains("_envy_shellhook 'hi() { echo hi; }';"),
            "{zsh}"
        );
        let bash = render(&s, Flavor::Bash);
        assert!(bash.contains("declare -ga arr=('a b' 'c');"), "{bash}");
        assert!(bash.contains("declare -g status='x';"), "{bash}");
    }

    #[test]
    fn unload_undoes_hook_functions_and_locals() {
        let r = Restore {
            locals: vec!["arr".into()],
            functions: vec!["greet".into()],
            shell_hook: true,
            ..Default::default()
        };
        let s = Script {
            unload: Some(&r),
            changes: &[],
            load: None,
            state: None,
        };
        assert_eq!(
            render(&s, Flavor::Bash),
            "_envy_unhook;\nunset -f 'greet' 2>/dev/null;\nunset -v 'arr' 2>/dev/null;\n_envy_restore_defs;\nunset -v __ENVY_STATE;\n"
        );
    }
}
