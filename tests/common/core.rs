//! Helpers for the Core's integration tests (`tests/core_*.rs`, `tests/shell_*.rs`): a
//! sandbox per test (its own HOME, XDG directories and offline Nix store), fixture flakes,
//! the envy binary, and real interactive shells driven through a private tmux server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{envy_bin, nix};

/// The Nix system of this machine.
pub fn system() -> String {
    format!("{}-linux", std::env::consts::ARCH)
}

/// A devShell derivation Nix 2.8's `print-dev-env` accepts (builder named `bash`, one
/// output, a `PATH`), with `attrs` (Nix attribute bindings) added.
pub fn devshell(attrs: &str) -> String {
    let path = if attrs.contains("PATH = ") {
        ""
    } else {
        "PATH = \"/usr/bin:/bin\";"
    };
    format!(
        r#"derivation {{
      name = "shell";
      system = "{}";
      builder = "/bin/bash";
      outputs = [ "out" ];
      {path}
      {attrs}
    }}"#,
        system()
    )
}

/// A `flake.nix` with no inputs whose `devShells.<system>` are `shells` (name, attrs).
pub fn flake(shells: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, attrs) in shells {
        body.push_str(&format!("    {name} = {};\n", devshell(attrs)));
    }
    format!(
        "{{\n  outputs = {{ self }}: {{\n    devShells.{} = {{\n{body}    }};\n  }};\n}}\n",
        system()
    )
}

/// A `flake.nix` whose default devShell sets `FOO = "<foo>"` plus `attrs`.
pub fn simple_flake(foo_value: &str, attrs: &str) -> String {
    flake(&[("default", &format!("FOO = \"{foo_value}\";\n      {attrs}"))])
}

/// Give `project` a local stdenv (`stdenv = ./stdenv;` in its flake) whose setup script is
/// `setup`.
pub fn write_stdenv(project: &Path, setup: &str) {
    fs_err::create_dir_all(project.join("stdenv")).unwrap();
    fs_err::write(project.join("stdenv/setup"), setup).unwrap();
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// One test's world: HOME, XDG dirs, an offline Nix configuration with its own store, and a
/// `work` directory for projects. Nothing outside it is touched.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    pub work: PathBuf,
    pub id: usize,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("envy-test-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().to_path_buf();
        let home = root.join("home");
        let work = root.join("work");
        for d in [&home, &work] {
            fs_err::create_dir_all(d).unwrap();
        }
        let conf = root.join("nix-conf");
        let store = nix::local_store(&root.join("nix/store"), &root.join("nix"));
        nix::write_offline_conf(&conf, &conf.join("registry.json"), Some(&store));
        let id = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            tmp,
            home,
            work,
            id,
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn cache_home(&self) -> PathBuf {
        self.home.join(".cache")
    }

    pub fn data_home(&self) -> PathBuf {
        self.home.join(".local/share")
    }

    /// The Nix store directory.
    pub fn store(&self) -> PathBuf {
        self.root().join("nix/store")
    }

    /// The environment every process of this test runs with (a clean one: nothing from the
    /// developer's own environment leaks in).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.home.display().to_string()),
            (
                "XDG_CACHE_HOME".into(),
                self.cache_home().display().to_string(),
            ),
            (
                "XDG_DATA_HOME".into(),
                self.data_home().display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                self.home.join(".config").display().to_string(),
            ),
            (
                "NIX_CONF_DIR".into(),
                self.root().join("nix-conf").display().to_string(),
            ),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("TERM".into(), "xterm".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("ENVY_PROGRESS".into(), "plain".into()),
            // These tests check what a prompt loads right away: the blocking mode. Background
            // builds have their own tests (tests/background.rs).
            ("ENVY_SYNC".into(), "1".into()),
            // These tests are about the hook and compare with Nix's own output: they use the
            // Nix backend (the embedded one is tested in tests/flake_*.rs).
            ("ENVY_BACKEND".into(), "nix".into()),
        ]
    }

    /// Create `work/<rel>` with `flake.nix` = `text`; returns the directory.
    pub fn project(&self, rel: &str, text: &str) -> PathBuf {
        let dir = self.work.join(rel);
        fs_err::create_dir_all(&dir).unwrap();
        fs_err::write(dir.join("flake.nix"), text).unwrap();
        dir
    }

    /// A command running the envy binary in `dir`, with this sandbox's environment.
    pub fn envy(&self, dir: &Path, args: &[&str]) -> Command {
        crate::common::envy_in(dir, args, self.env())
    }

    /// envy in `dir` as a user's shell runs it with background builds (`ENVY_SYNC=0`), on the
    /// embedded backend.
    pub fn envy_background(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = self.envy(dir, args);
        cmd.env("ENVY_BACKEND", "embedded").env("ENVY_SYNC", "0");
        cmd
    }

    /// Run envy; panics with its output unless it succeeds.
    pub fn envy_ok(&self, dir: &Path, args: &[&str]) -> Output {
        let out = self.envy(dir, args).output().expect("run envy");
        assert!(
            out.status.success(),
            "envy {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

/// A command's status, stdout and stderr, for an assertion's message.
pub fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A shell the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sh {
    Bash,
    Zsh,
    Fish,
    Nu,
    Elvish,
    Xonsh,
}

impl Sh {
    pub fn name(self) -> &'static str {
        match self {
            Sh::Bash => "bash",
            Sh::Zsh => "zsh",
            Sh::Fish => "fish",
            Sh::Nu => "nu",
            Sh::Elvish => "elvish",
            Sh::Xonsh => "xonsh",
        }
    }

    /// The line exporting `NAME=value` (a plain value) in this shell.
    pub fn export(self, name: &str, value: &str) -> String {
        match self {
            Sh::Bash | Sh::Zsh => format!("export {name}='{value}'"),
            Sh::Fish => format!("set -gx {name} '{value}'"),
            Sh::Nu => format!("$env.{name} = '{value}'"),
            Sh::Elvish => format!("set-env {name} '{value}'"),
            Sh::Xonsh => format!("${name} = '{value}'"),
        }
    }

    /// `$?` in this shell.
    pub fn status_var(self) -> &'static str {
        match self {
            Sh::Fish => "$status",
            Sh::Nu => "$env.LAST_EXIT_CODE",
            _ => "$?",
        }
    }

    /// Whether this shell runs shellHooks and bash functions.
    pub fn runs_shell_hooks(self) -> bool {
        matches!(self, Sh::Bash | Sh::Zsh)
    }
}

/// An interactive shell in a private tmux server, with envy's hook installed.
pub struct Session<'a> {
    pub sandbox: &'a Sandbox,
    pub shell: Sh,
    socket: String,
    channel: usize,
    files: PathBuf,
}

impl<'a> Session<'a> {
    /// Start `shell` in `dir`, its rc file holding `rc_extra` and then the hook (sourced
    /// `hook_times` times).
    pub fn start_with(
        sandbox: &'a Sandbox,
        shell: Sh,
        dir: &Path,
        rc_extra: &str,
        hook_times: usize,
    ) -> Self {
        let files = sandbox.root().join(format!("session-{}", shell.name()));
        fs_err::create_dir_all(&files).unwrap();
        let envy = envy_bin().display().to_string();
        let argv: Vec<String> = match shell {
            Sh::Bash => {
                let rc = files.join("bashrc");
                let hook = format!("eval \"$('{envy}' hook bash)\"\n");
                fs_err::write(
                    &rc,
                    format!("PS1='$ '\n{rc_extra}\n{}", hook.repeat(hook_times)),
                )
                .unwrap();
                vec![
                    "bash".into(),
                    "--noprofile".into(),
                    "--rcfile".into(),
                    rc.display().to_string(),
                    "-i".into(),
                ]
            }
            Sh::Zsh => {
                let hook = format!("eval \"$('{envy}' hook zsh)\"\n");
                fs_err::write(
                    files.join(".zshrc"),
                    format!("PS1='$ '\n{rc_extra}\n{}", hook.repeat(hook_times)),
                )
                .unwrap();
                vec![
                    "env".into(),
                    format!("ZDOTDIR={}", files.display()),
                    "zsh".into(),
                    "-i".into(),
                ]
            }
            Sh::Fish => {
                let rc = files.join("config.fish");
                let hook = format!("'{envy}' hook fish | source\n");
                fs_err::write(
                    &rc,
                    format!(
                        "function fish_prompt; echo '$ '; end\n{rc_extra}\n{}",
                        hook.repeat(hook_times)
                    ),
                )
                .unwrap();
                vec![
                    "fish".into(),
                    "-N".into(),
                    "-C".into(),
                    format!("source {}", rc.display()),
                ]
            }
            Sh::Nu => {
                // nushell sources files named at parse time: the hook goes to a file first.
                let hook = files.join("envy-hook.nu");
                let out = crate::common::envy_in(dir, &["hook", "nu"], sandbox.env())
                    .output()
                    .expect("envy hook nu");
                assert!(out.status.success(), "envy hook nu failed");
                fs_err::write(&hook, out.stdout).unwrap();
                let rc = files.join("config.nu");
                let env_rc = files.join("env.nu");
                fs_err::write(&env_rc, "").unwrap();
                let source = format!("source '{}'\n", hook.display());
                fs_err::write(
                    &rc,
                    format!(
                        "$env.config.show_banner = false\n$env.PROMPT_COMMAND = {{|| '$ ' }}\n\
                         $env.PROMPT_COMMAND_RIGHT = ''\n$env.PROMPT_INDICATOR = ''\n\
                         {rc_extra}\n{}",
                        source.repeat(hook_times)
                    ),
                )
                .unwrap();
                vec![
                    "nu".into(),
                    "--config".into(),
                    rc.display().to_string(),
                    "--env-config".into(),
                    env_rc.display().to_string(),
                ]
            }
            Sh::Elvish => {
                let rc = files.join("rc.elv");
                let hook = format!("eval ('{envy}' hook elvish | slurp)\n");
                fs_err::write(
                    &rc,
                    format!(
                        "set edit:prompt = {{ put '$ ' }}\nset edit:rprompt = {{ }}\n{rc_extra}\n{}",
                        hook.repeat(hook_times)
                    ),
                )
                .unwrap();
                vec!["elvish".into(), "-rc".into(), rc.display().to_string()]
            }
            Sh::Xonsh => {
                let rc = files.join("xonshrc");
                let hook = format!("execx($('{envy}' hook xonsh))\n");
                fs_err::write(
                    &rc,
                    format!(
                        "$PROMPT = '$ '\n$RIGHT_PROMPT = ''\n$BOTTOM_TOOLBAR = ''\n\
                         $XONSH_SHOW_TRACEBACK = True\n$UPDATE_COMPLETIONS_ON_KEYPRESS = False\n\
                         $AUTO_SUGGEST = False\n{rc_extra}\n{}",
                        hook.repeat(hook_times)
                    ),
                )
                .unwrap();
                vec![
                    "xonsh".into(),
                    "--rc".into(),
                    rc.display().to_string(),
                    "-i".into(),
                ]
            }
        };
        let socket = format!(
            "envy-test-{}-{}-{}",
            std::process::id(),
            sandbox.id,
            shell.name()
        );
        let mut env_prefix: Vec<String> = vec!["env".into(), "-i".into()];
        env_prefix.extend(sandbox.env().into_iter().map(|(k, v)| format!("{k}={v}")));
        let command: Vec<String> = env_prefix.into_iter().chain(argv).collect();
        let command = command
            .iter()
            .map(|w| shell_words::quote(w).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let status = crate::common::tmux_new_session(&mut Command::new("tmux"), &socket, "S")
            .arg("-c")
            .arg(dir)
            .arg(&command)
            .status()
            .expect("start tmux");
        assert!(status.success(), "tmux failed to start");
        let mut s = Self {
            sandbox,
            shell,
            socket,
            channel: 0,
            files,
        };
        // The first prompt has run once this returns.
        s.run("true");
        s
    }

    /// Start `shell` in `dir` with the hook installed once.
    pub fn start(sandbox: &'a Sandbox, shell: Sh, dir: &Path) -> Self {
        Self::start_with(sandbox, shell, dir, "", 1)
    }

    /// Type `line` and wait until it has run (the hook runs before the next line).
    pub fn run(&mut self, line: &str) {
        self.type_and_wait(line, |signal| format!("{line}; {signal}"));
    }

    /// Type `line` with the wait signal `compose` puts around it, press Enter, and wait for
    /// the signal.
    fn type_and_wait(&mut self, line: &str, compose: impl FnOnce(&str) -> String) {
        self.channel += 1;
        let chan = format!("c{}", self.channel);
        let full = compose(&format!("tmux -L {} wait-for -S {chan}", self.socket));
        let sent = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "S", "-l", &full])
            .status()
            .unwrap();
        assert!(sent.success());
        Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "S", "Enter"])
            .status()
            .unwrap();
        let waited = Command::new("timeout")
            .args(["60", "tmux", "-L", &self.socket, "wait-for", &chan])
            .status()
            .unwrap();
        assert!(
            waited.success(),
            "timed out running `{line}` in {}; screen:\n{}",
            self.shell.name(),
            self.screen()
        );
    }

    /// Type `line` and press Enter without waiting for it (it may block the shell).
    pub fn type_line(&mut self, line: &str) {
        let sent = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "S", "-l", line])
            .status()
            .unwrap();
        assert!(sent.success());
        self.key("Enter");
    }

    /// Press `key` (tmux's name for it: `C-c`, `Enter`).
    pub fn key(&mut self, key: &str) {
        let sent = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys", "-t", "S", key])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Let a prompt pass, so that the hook sees a change made from outside the shell (a typed
    /// line runs before the prompt that follows it).
    pub fn prompt(&mut self) {
        self.run("true");
    }

    /// `cd` somewhere (the hook then runs at the next prompt, before the next `run`).
    pub fn cd(&mut self, dir: &Path) {
        self.run(&format!(
            "cd {}",
            shell_words::quote(&dir.display().to_string())
        ));
    }

    /// The shell's exported environment now (after the hook ran for the previous line).
    pub fn env(&mut self) -> BTreeMap<String, String> {
        let file = self.files.join(format!("env-{}", self.channel + 1));
        if self.shell == Sh::Nu {
            self.run(&format!("^env -0 | save -f '{}'", file.display()));
        } else {
            self.run(&format!("env -0 > {}", file.display()));
        }
        let bytes = fs_err::read(&file).unwrap();
        bytes
            .split(|b| *b == 0)
            .filter(|e| !e.is_empty())
            .filter_map(|e| {
                let e = String::from_utf8_lossy(e);
                let (k, v) = e.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect()
    }

    /// Run `command` in the shell with its stdout and stderr going to a file; return both.
    pub fn output(&mut self, command: &str) -> String {
        let file = self.files.join(format!("out-{}", self.channel + 1));
        let path = file.display();
        self.run(&match self.shell {
            Sh::Nu => format!("{command} o+e> '{path}'"),
            Sh::Elvish => format!("{command} > {path} 2>&1"),
            Sh::Xonsh => format!("{command} a> {path}"),
            _ => format!("{command} &> {path}"),
        });
        fs_err::read_to_string(&file).unwrap_or_default()
    }

    /// Type `line` after the wait signal, so that its exit status is the one the next prompt
    /// sees (for checking that the hook keeps `$?`).
    pub fn run_last(&mut self, line: &str) {
        self.type_and_wait(line, |signal| format!("{signal}; {line}"));
    }

    /// What tmux shows (for failure messages only: tests read state from files).
    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-t",
                "S",
                "-S",
                "-60",
            ])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // xonsh outlives the SIGHUP that closing its terminal sends: end the shell itself.
        let pane_pid = Command::new("tmux")
            .args(["-L", &self.socket, "list-panes", "-F", "#{pane_pid}"])
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<u32>().ok());
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
        if let Some(pid) = pane_pid.filter(|_| self.shell == Sh::Xonsh) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// The environment without what changes on every `cd` or command (`PWD`, `OLDPWD`, `_`,
/// nushell's `LAST_EXIT_CODE` and `CMD_DURATION_MS`).
pub fn stable(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "PWD" | "OLDPWD" | "_" | "LAST_EXIT_CODE" | "CMD_DURATION_MS"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Wait briefly so a file rewritten within the same clock tick still gets a new mtime.
pub fn tick() {
    std::thread::sleep(Duration::from_millis(20));
}
