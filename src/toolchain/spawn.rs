//! Entering a realised environment: running one command in it, or starting the user's shell
//! (bash, zsh or fish, from `$SHELL`) with the environment, a `(envy)` prompt marker and the
//! shell hook, the way `nix develop` does for bash.
//!
//! bash gets everything: typed variables, arrays, functions, PATH in front of the user's, the
//! shell hook. zsh and fish cannot run bash functions; they get the exported variables (after
//! the shell hook ran in bash, when there is one) and the prompt marker. The startup files
//! are generated once per cache entry, next to it, and load the user's own first.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::shell_cache::ShellEntry;
use super::var;
use crate::env::record::{EnvRecord, Variable};
use crate::env::vars as env_vars;

/// The prompt marker of an envy shell.
pub const PROMPT_MARKER: &str = "(envy) ";

/// The user's interactive shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserShell {
    Bash(PathBuf),
    Zsh(PathBuf),
    Fish(PathBuf),
}

impl UserShell {
    /// From `$SHELL`; anything that is not zsh or fish gets bash.
    pub fn from_env() -> Self {
        let shell = std::env::var_os(env_vars::SHELL)
            .map(PathBuf::from)
            .filter(|p| !p.as_os_str().is_empty());
        match shell
            .as_deref()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
        {
            Some("zsh") => Self::Zsh(shell.unwrap_or_default()),
            Some("fish") => Self::Fish(shell.unwrap_or_default()),
            Some("bash") => Self::Bash(shell.unwrap_or_default()),
            _ => Self::Bash(which::which("bash").unwrap_or_else(|_| PathBuf::from("/bin/bash"))),
        }
    }
}

/// The PATH inside the environment: the environment's own, then the user's.
fn joined_path(env: &EnvRecord) -> OsString {
    let mut path = OsString::from(var(env, "PATH").unwrap_or_default());
    if let Some(user) = std::env::var_os(env_vars::PATH).filter(|p| !p.is_empty()) {
        if !path.is_empty() {
            path.push(":");
        }
        path.push(user);
    }
    path
}

/// A command with the environment's exported variables (PATH joined with the user's).
fn command_in(
    entry: &ShellEntry,
    env: &EnvRecord,
    program: impl AsRef<std::ffi::OsStr>,
) -> Command {
    let mut cmd = Command::new(program);
    for (name, value) in env.exported() {
        if name != "PATH" {
            cmd.env(name, value);
        }
    }
    cmd.env(env_vars::PATH, joined_path(env));
    cmd.env(env_vars::ENVY_SHELL, &entry.target);
    cmd
}

/// Run `argv` in the environment, replacing this process. Returns only on failure to start.
pub fn exec_command(entry: &ShellEntry, dir: &Path, argv: &[String]) -> std::io::Error {
    let hook = var(&entry.env, "shellHook").unwrap_or_default();
    if hook.trim().is_empty() {
        return command_in(entry, &entry.env, &argv[0])
            .args(&argv[1..])
            .exec();
    }
    // The hook is bash: run it, then the command, in one bash.
    let rc = match ensure_file(dir, "bash-command", ".rc", &bash_rc(&entry.env, false)) {
        Ok(rc) => rc,
        Err(e) => return e,
    };
    command_in(entry, &entry.env, "bash")
        .args([
            "--norc",
            "--noprofile",
            "-c",
            "source \"$1\"; shift; exec \"$@\"",
            "envy-shell",
        ])
        .arg(rc)
        .args(argv)
        .exec()
}

/// Start the user's shell in the environment, replacing this process.
pub fn exec_shell(entry: &ShellEntry, dir: &Path, shell: &UserShell) -> std::io::Error {
    match shell {
        UserShell::Bash(bash) => {
            let rc = match ensure_file(dir, "bash", ".rc", &bash_rc(&entry.env, true)) {
                Ok(rc) => rc,
                Err(e) => return e,
            };
            // bash gets the user's PATH; the rc file puts the environment's in front after the
            // user's ~/.bashrc ran, as `nix develop` does.
            let mut cmd = Command::new(bash);
            cmd.env(env_vars::ENVY_SHELL, &entry.target);
            cmd.args(["--rcfile"]).arg(rc).arg("-i").exec()
        }
        UserShell::Zsh(zsh) => {
            let env = match env_after_hook(entry, dir) {
                Ok(env) => env,
                Err(e) => return e,
            };
            // zsh wants its startup files under fixed names: one directory per content.
            let zdotdir = match ensure_zdotdir(dir, &zshrc(&env)) {
                Ok(d) => d,
                Err(e) => return e,
            };
            let mut cmd = command_in(entry, &env, zsh);
            if let Some(orig) = std::env::var_os(env_vars::ZDOTDIR) {
                cmd.env(env_vars::ENVY_ORIG_ZDOTDIR, orig);
            }
            cmd.env(env_vars::ZDOTDIR, &zdotdir).arg("-i").exec()
        }
        UserShell::Fish(fish) => {
            let env = match env_after_hook(entry, dir) {
                Ok(env) => env,
                Err(e) => return e,
            };
            let config = match ensure_file(dir, "envy", ".fish", &fish_config(&env)) {
                Ok(c) => c,
                Err(e) => return e,
            };
            let init = format!("source {}", fish_quote(&config.to_string_lossy()));
            command_in(entry, &env, fish)
                .args(["-i", "-C", &init])
                .exec()
        }
    }
}

/// The environment as zsh and fish get it: when there is a shell hook, what bash exports after
/// running it; otherwise the captured environment.
fn env_after_hook(entry: &ShellEntry, dir: &Path) -> std::io::Result<EnvRecord> {
    let hook = var(&entry.env, "shellHook").unwrap_or_default();
    if hook.trim().is_empty() {
        return Ok(entry.env.clone());
    }
    let rc = ensure_file(dir, "bash-command", ".rc", &bash_rc(&entry.env, false))?;
    let output = command_in(entry, &entry.env, "bash")
        .args([
            "--norc",
            "--noprofile",
            "-c",
            "source \"$1\" >&2; env -0",
            "envy-shell",
        ])
        .arg(rc)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !output.status.success() {
        return Err(std::io::Error::other("the environment's shell hook failed"));
    }
    let mut env = EnvRecord::default();
    let user_path = std::env::var_os(env_vars::PATH).unwrap_or_default();
    for item in output.stdout.split(|b| *b == 0).filter(|i| !i.is_empty()) {
        let item = String::from_utf8_lossy(item);
        if let Some((name, value)) = item.split_once('=') {
            let mut value = value.to_owned();
            // `command_in` appends the user's PATH again; keep only the environment's part.
            if name == "PATH" {
                let user = format!(":{}", user_path.to_string_lossy());
                value = value.strip_suffix(&user).unwrap_or(&value).to_owned();
            }
            env.variables
                .insert(name.to_owned(), Variable::Exported(value));
        }
    }
    Ok(env)
}

/// `dir/<stem>-<hash of contents><ext>`, written unless it exists: the name follows the content,
/// so a newer envy that writes different startup files never reuses an older one's.
fn ensure_file(dir: &Path, stem: &str, ext: &str, contents: &str) -> std::io::Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let hash = super::hex(&Sha256::digest(contents.as_bytes()));
    let path = dir.join(format!("{stem}-{}{ext}", &hash[..16]));
    if !path.exists() {
        super::write_atomically(&path, contents.as_bytes())?;
    }
    Ok(path)
}

/// `dir/zsh-<hash>/` holding envy's `.zshenv` and this `.zshrc`.
fn ensure_zdotdir(dir: &Path, zshrc: &str) -> std::io::Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let hash = super::hex(&Sha256::digest(format!("{ZSHENV}\0{zshrc}").as_bytes()));
    let zdotdir = dir.join(format!("zsh-{}", &hash[..16]));
    if !zdotdir.join(".zshrc").exists() {
        super::write_atomically(&zdotdir.join(".zshenv"), ZSHENV.as_bytes())?;
        super::write_atomically(&zdotdir.join(".zshrc"), zshrc.as_bytes())?;
    }
    Ok(zdotdir)
}

/// A bash single-quoted word.
pub fn bash_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A bash startup file that recreates the environment: variables with their types, functions,
/// PATH in front of the user's, the prompt marker (interactive) and the shell hook.
pub fn bash_rc(env: &EnvRecord, interactive: bool) -> String {
    let mut rc = String::from("# envy shell environment (generated)\n");
    if interactive {
        rc.push_str("if [ -e ~/.bashrc ]; then . ~/.bashrc; fi\n");
    }
    rc.push_str("__envy_user_path=$PATH\nunset shellHook\n");
    for (name, var) in &env.variables {
        if !is_identifier(name) {
            continue;
        }
        match var {
            Variable::Exported(v) => rc.push_str(&format!("export {name}={}\n", bash_quote(v))),
            Variable::Var(v) => rc.push_str(&format!("{name}={}\n", bash_quote(v))),
            Variable::Array(values) => {
                let items: Vec<_> = values.iter().map(|v| bash_quote(v)).collect();
                rc.push_str(&format!("declare -a {name}=({})\n", items.join(" ")));
            }
            Variable::Associative(map) => {
                let items: Vec<_> = map
                    .iter()
                    .map(|(k, v)| format!("[{}]={}", bash_quote(k), bash_quote(v)))
                    .collect();
                rc.push_str(&format!("declare -A {name}=({})\n", items.join(" ")));
            }
        }
    }
    rc.push_str("export PATH=\"${PATH:+$PATH:}$__envy_user_path\"\nunset __envy_user_path\n");
    for (name, body) in &env.bash_functions {
        if is_identifier(name)
            || name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-:.".contains(c))
        {
            rc.push_str(&format!("{name} ()\n{{{body}}}\n"));
        }
    }
    if interactive {
        rc.push_str(&format!(
            "PS1={}\"${{PS1-\\\\s-\\\\v\\\\\\$ }}\"\n",
            bash_quote(PROMPT_MARKER)
        ));
    }
    rc.push_str("eval \"${shellHook:-}\"\n");
    rc
}

/// zsh's `.zshenv` in envy's ZDOTDIR: the user's `.zshenv`, read from their own ZDOTDIR.
const ZSHENV: &str = r#"# envy shell (generated): load the user's .zshenv from their own ZDOTDIR
__envy_zdotdir=$ZDOTDIR
ZDOTDIR=${__ENVY_ORIG_ZDOTDIR:-$HOME}
[[ -f $ZDOTDIR/.zshenv ]] && source $ZDOTDIR/.zshenv
ZDOTDIR=$__envy_zdotdir
unset __envy_zdotdir
"#;

/// zsh's `.zshrc` in envy's ZDOTDIR: the user's `.zshrc`, then the environment's PATH in
/// front again (in case the user's rc set PATH) and the prompt marker.
fn zshrc(env: &EnvRecord) -> String {
    let mut rc = String::from(
        "# envy shell (generated): the user's .zshrc, then envy's PATH and prompt marker\n\
         if [[ -n ${__ENVY_ORIG_ZDOTDIR+x} ]]; then ZDOTDIR=$__ENVY_ORIG_ZDOTDIR; else unset ZDOTDIR; fi\n\
         unset __ENVY_ORIG_ZDOTDIR\n\
         [[ -f ${ZDOTDIR:-$HOME}/.zshrc ]] && source ${ZDOTDIR:-$HOME}/.zshrc\n",
    );
    if let Some(path) = var(env, "PATH").filter(|p| !p.is_empty()) {
        rc.push_str(&format!(
            "export PATH={}:\"$PATH\"\ntypeset -U path\n",
            bash_quote(path)
        ));
    }
    rc.push_str(&format!("PS1={}\"$PS1\"\n", bash_quote(PROMPT_MARKER)));
    rc
}

/// fish's init file: the environment's PATH in front (config.fish ran already) and a
/// `fish_prompt` that prints the marker before the user's prompt.
fn fish_config(env: &EnvRecord) -> String {
    let mut rc = String::from("# envy shell (generated)\n");
    if let Some(path) = var(env, "PATH").filter(|p| !p.is_empty()) {
        let dirs: Vec<_> = path.split(':').map(fish_quote).collect();
        rc.push_str(&format!("set -gx PATH {} $PATH\n", dirs.join(" ")));
    }
    rc.push_str(&format!(
        "if functions -q fish_prompt\n    functions -c fish_prompt __envy_user_fish_prompt\nelse\n    function __envy_user_fish_prompt; echo -n '> '; end\nend\n\
         function fish_prompt\n    printf '%s' {}\n    __envy_user_fish_prompt\nend\n",
        fish_quote(PROMPT_MARKER)
    ));
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EnvRecord {
        let mut env = EnvRecord::default();
        let vars = [
            ("CC", Variable::Exported("cc".into())),
            ("PATH", Variable::Exported("/store/w/bin:/usr/bin".into())),
            ("quoted", Variable::Var("it's \"here\" $HOME".into())),
            ("list", Variable::Array(vec!["a b".into(), "c".into()])),
            (
                "map",
                Variable::Associative([("k".to_owned(), "v".to_owned())].into()),
            ),
            ("HOME", Variable::Exported("/homeless-shelter".into())),
            (
                "shellHook",
                Variable::Exported("greeting=\"hi from hook\"".into()),
            ),
        ];
        for (k, v) in vars {
            env.variables.insert(k.into(), v);
        }
        env.bash_functions
            .insert("hello".into(), " \n    echo \"hello $1\"\n".into());
        env
    }

    #[test]
    fn the_bash_rc_recreates_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join("rc");
        let mut env = sample();
        env.sanitize();
        fs_err::write(&rc, bash_rc(&env, false)).unwrap();
        let out = Command::new("/bin/bash")
            .args(["--norc", "--noprofile", "-c"])
            .arg(r#"source "$1"; printf '%s|' "$CC" "$PATH" "$quoted" "${list[0]}" "${map[k]}" "$HOME" "$greeting"; hello world"#)
            .arg("rc")
            .arg(&rc)
            .env("PATH", "/user/bin")
            .env("HOME", "/home/u")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "cc|/store/w/bin:/usr/bin:/user/bin|it's \"here\" $HOME|a b|v|/home/u|hi from hook|hello world\n"
        );
    }

    #[test]
    fn shells_are_chosen_from_the_shell_variable_name() {
        assert!(matches!(
            UserShell::from_env(),
            UserShell::Bash(_) | UserShell::Zsh(_) | UserShell::Fish(_)
        ));
        assert!(is_identifier("_a1") && !is_identifier("1a") && !is_identifier("a-b"));
    }
}
