//! The trust gate against an attacker: each hole found by probing `envy allow` has a test
//! here that reproduced it before the fix. Real git repositories, the embedded backend, and a
//! real bash in tmux where the prompt is involved.
//!
//! - a lock changed while a build runs is not allowed (and a lockless allow is used up by the
//!   lock envy writes, so deleting that lock does not relock to the inputs' current state);
//! - a flake `envy use` points at is under the gate with its own allow;
//! - `flake.nix` swapped between the check and the evaluation never loads (200 tries);
//! - an untrusted `flake.lock` that is a FIFO, `/dev/zero` or `/dev/stdin` cannot hang or
//!   exhaust the shell;
//! - a devShell cannot take the hook's `PROMPT_COMMAND` or functions;
//! - a corrupt generation heals once; a read-only cache directory still lets leaving unload.

mod common;
#[path = "common/core.rs"]
mod corekit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corekit::{Sandbox, Session, Sh, devshell, system, tick};
use serde_json::Value;

fn tools(names: &[&str]) -> bool {
    names.iter().all(|n| common::have_tool(n))
}

/// envy with the embedded backend (no Nix involved).
fn envy(sb: &Sandbox, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = sb.envy(dir, args);
    cmd.env("ENVY_BACKEND", "embedded");
    cmd
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn envy_ok(sb: &Sandbox, dir: &Path, args: &[&str]) -> Output {
    ok(
        envy(sb, dir, args).output().unwrap(),
        &format!("envy {args:?}"),
    )
}

/// Wait for `child`, failing (and killing it) if it hangs: a hang is the bug under test, so
/// the limit is generous and never a speed assertion.
fn wait_or_hang(mut child: std::process::Child, what: &str) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} hung (killed after 60 s); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `envy export json` in `dir` with the hook's variables: (changes, stderr).
fn export_with(mut cmd: Command, state: Option<&str>) -> (BTreeMap<String, Value>, String) {
    cmd.env("__ENVY_PID", "4242");
    if let Some(state) = state {
        cmd.env("__ENVY_STATE", state);
    }
    let out = wait_or_hang(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        "envy export",
    );
    let out = ok(out, "envy export json");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let map = if stdout.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&stdout).unwrap()
    };
    (map, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn export(sb: &Sandbox, dir: &Path, state: Option<&str>) -> (BTreeMap<String, Value>, String) {
    export_with(envy(sb, dir, &["export", "json"]), state)
}

fn state_of(changes: &BTreeMap<String, Value>) -> String {
    changes["__ENVY_STATE"]
        .as_str()
        .expect("a state")
        .to_string()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A git repository `work/<rel>` holding `files`, committed.
fn repo(sb: &Sandbox, rel: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = sb.work.join(rel);
    fs_err::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q"]);
    for (name, text) in files {
        fs_err::write(dir.join(name), text).unwrap();
    }
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "init"]);
    dir
}

fn commit_all(dir: &Path, msg: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", msg]);
}

fn dep_flake(value: &str) -> String {
    format!("{{ outputs = _: {{ value = \"{value}\"; }}; }}\n")
}

/// A flake whose default devShell sets `FOO = dep.value` and, with `slow`, first builds a
/// derivation that takes a few seconds.
fn flake_on_dep(dep: &Path, slow: bool) -> String {
    let slow = if slow {
        format!(
            "SLOW = derivation {{ name = \"slow\"; system = \"{}\"; builder = \"/bin/bash\"; args = [ \"-c\" \"/usr/bin/sleep 4; echo > $out\" ]; }};",
            system()
        )
    } else {
        String::new()
    };
    format!(
        "{{\n  inputs.dep.url = \"git+file://{}\";\n  outputs = {{ self, dep }}: {{\n    devShells.{}.default = {};\n  }};\n}}\n",
        dep.display(),
        system(),
        devshell(&format!("FOO = dep.value; {slow}"))
    )
}

fn foo(changes: &BTreeMap<String, Value>) -> Option<&str> {
    changes.get("FOO").and_then(Value::as_str)
}

#[test]
fn a_lock_changed_while_a_build_runs_is_not_allowed() {
    if !tools(&["git"]) {
        return;
    }
    let sb = Sandbox::new();
    let dep = repo(&sb, "dep", &[("flake.nix", &dep_flake("A"))]);
    let project = repo(&sb, "proj", &[("flake.nix", &flake_on_dep(&dep, true))]);
    envy_ok(&sb, &project, &["flake", "lock"]);
    commit_all(&project, "lock A");
    // Branch `b` differs only in flake.lock: it pins another commit of the input.
    fs_err::write(dep.join("flake.nix"), dep_flake("B")).unwrap();
    commit_all(&dep, "B");
    git(&project, &["checkout", "-q", "-b", "b"]);
    envy_ok(&sb, &project, &["flake", "update"]);
    commit_all(&project, "lock B");
    git(&project, &["checkout", "-q", "main"]);
    envy_ok(&sb, &project, &["allow"]);

    // Start the slow build, and switch branches while it runs.
    let mut cmd = envy(&sb, &project, &["export", "json"]);
    cmd.env("__ENVY_PID", "4242")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    git(&project, &["checkout", "-q", "b"]);
    let out = ok(wait_or_hang(child, "envy export"), "envy export json");
    let changes: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        foo(&changes),
        Some("A"),
        "the build evaluates the allowed lock: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The next prompt sees a lock nobody allowed: blocked, nothing from it loaded.
    let (again, stderr) = export(&sb, &project, Some(&state_of(&changes)));
    assert_ne!(foo(&again), Some("B"), "{stderr}");
    assert!(stderr.contains("changed since it was allowed"), "{stderr}");
    let status: Value =
        serde_json::from_slice(&envy_ok(&sb, &project, &["status", "--json"]).stdout).unwrap();
    assert_eq!(status["project"]["trust"], "changed since allowed");
}

#[test]
fn a_lockless_allow_is_used_up_by_the_lock_envy_writes() {
    if !tools(&["git"]) {
        return;
    }
    let sb = Sandbox::new();
    let dep = repo(&sb, "dep", &[("flake.nix", &dep_flake("A"))]);
    let project = repo(&sb, "proj", &[("flake.nix", &flake_on_dep(&dep, false))]);
    envy_ok(&sb, &project, &["allow"]);
    let (changes, stderr) = export(&sb, &project, None);
    assert_eq!(foo(&changes), Some("A"), "{stderr}");
    assert!(project.join("flake.lock").is_file());
    assert!(stderr.contains("carries over"), "{stderr}");
    let state = state_of(&changes);
    // Still allowed: nothing to say, nothing changes (the new lock only refreshes the state).
    let (again, stderr) = export(&sb, &project, Some(&state));
    assert!(
        again.keys().all(|k| k == "__ENVY_STATE") && stderr.is_empty(),
        "{again:?} {stderr}"
    );
    let state = again
        .get("__ENVY_STATE")
        .and_then(Value::as_str)
        .map_or(state, str::to_string);

    // The input moves on; deleting the lock must not relock to it with the old allow.
    fs_err::write(dep.join("flake.nix"), dep_flake("B")).unwrap();
    commit_all(&dep, "B");
    fs_err::remove_file(project.join("flake.lock")).unwrap();
    let (after, stderr) = export(&sb, &project, Some(&state));
    assert_ne!(foo(&after), Some("B"), "{stderr}");
    assert!(stderr.contains("changed since it was allowed"), "{stderr}");
    assert!(
        !project.join("flake.lock").exists(),
        "nothing was evaluated"
    );
}

#[test]
fn a_flake_that_envy_use_points_at_needs_its_own_allow() {
    let sb = Sandbox::new();
    let project = sb.project("proj", &corekit::simple_flake("own", ""));
    let other = sb.project("tools", &corekit::flake(&[("x", "FOO = \"other-1\";")]));
    envy_ok(&sb, &project, &["allow"]);
    let reference = format!("{}#x", other.display());
    envy_ok(&sb, &project, &["use", &reference]);
    let (changes, stderr) = export(&sb, &project, None);
    assert_eq!(foo(&changes), None, "never evaluated before its allow");
    assert!(
        stderr.contains(&other.join("flake.nix").display().to_string())
            && stderr.contains(&format!("envy allow {}", other.display())),
        "{stderr}"
    );
    let state = state_of(&changes);

    // Allowing it (from anywhere) reaches the shell in the project at its next prompt.
    envy_ok(&sb, &other, &["allow"]);
    let (loaded, stderr) = export(&sb, &project, Some(&state));
    assert_eq!(foo(&loaded), Some("other-1"), "{stderr}");
    let state = state_of(&loaded);

    // A later edit of that flake (a new shellHook) is blocked until it is allowed again.
    tick();
    fs_err::write(
        other.join("flake.nix"),
        corekit::flake(&[("x", "FOO = \"other-2\"; shellHook = \"touch /tmp/pwned\";")]),
    )
    .unwrap();
    let (edited, stderr) = export(&sb, &project, Some(&state));
    assert_ne!(foo(&edited), Some("other-2"), "{stderr}");
    assert!(stderr.contains("changed since it was allowed"), "{stderr}");
}

#[test]
fn flake_nix_swapped_during_evaluation_never_loads_unallowed_content() {
    let sb = Sandbox::new();
    let allowed = |i: usize| corekit::simple_flake(&format!("allowed-{i}"), "");
    let evil = corekit::simple_flake("evil", "");
    let project = sb.project("proj", &allowed(0));
    let nix = project.join("flake.nix");
    let stop = Arc::new(AtomicBool::new(false));
    // The allowed text of this round; held while the test allows it, so the attacker never
    // swaps during `envy allow` (the user allows what they looked at).
    let current = Arc::new(std::sync::Mutex::new(allowed(0)));
    // The attacker: swaps flake.nix between the allowed text and its own, atomically, as
    // fast as it can, while the prompt checks and evaluates.
    let swapper = {
        let (stop, current, nix, evil) = (stop.clone(), current.clone(), nix.clone(), evil.clone());
        let dir = project.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                {
                    let allowed = current.lock().unwrap();
                    let text = if n.is_multiple_of(2) {
                        &evil
                    } else {
                        &*allowed
                    };
                    let tmp = dir.join(".swap");
                    fs_err::write(&tmp, text).unwrap();
                    fs_err::rename(&tmp, &nix).unwrap();
                }
                n += 1;
                std::thread::sleep(Duration::from_micros(50 + (n % 7) * 150));
            }
        })
    };
    let (mut loads, mut blocked, mut evil_loads) = (0, 0, 0);
    for i in 0..200 {
        // Allow this round's content, then let a fresh shell enter: a cache miss, so the
        // prompt checks and evaluates while the attacker swaps.
        {
            let mut text = current.lock().unwrap();
            *text = allowed(i);
            fs_err::write(project.join(".allow-me"), &*text).unwrap();
            fs_err::rename(project.join(".allow-me"), &nix).unwrap();
            envy_ok(&sb, &project, &["allow"]);
        }
        let (changes, _stderr) = export(&sb, &project, None);
        match foo(&changes) {
            Some("evil") => evil_loads += 1,
            Some(v) => {
                assert_eq!(v, format!("allowed-{i}"));
                loads += 1;
            }
            None => blocked += 1,
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    eprintln!("swap race: {loads} allowed loads, {blocked} blocked, {evil_loads} unallowed");
    assert_eq!(evil_loads, 0, "unallowed content loaded");
    assert!(loads > 0, "some rounds must load the allowed content");
    // Once cached, the evil text is still not "up to date": it is blocked.
    fs_err::write(&nix, &evil).unwrap();
    let (changes, stderr) = export(&sb, &project, None);
    assert_eq!(foo(&changes), None, "{stderr}");
}

#[test]
fn an_untrusted_lock_file_that_is_a_device_or_fifo_cannot_hang_the_shell() {
    if !tools(&["tmux", "bash"]) {
        return;
    }
    let sb = Sandbox::new();
    let mut projects = Vec::new();
    for (name, target) in [
        ("fifo", None),
        ("zero", Some("/dev/zero")),
        ("stdin", Some("/dev/stdin")),
        ("tty", Some("/dev/tty")),
    ] {
        let dir = sb.project(name, &corekit::simple_flake("x", ""));
        let lock = dir.join("flake.lock");
        match target {
            None => nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::S_IRWXU).unwrap(),
            Some(t) => std::os::unix::fs::symlink(t, &lock).unwrap(),
        }
        projects.push(dir);
    }
    for dir in &projects {
        // stdin stays open and silent: a read from it would block forever.
        let mut cmd = envy(&sb, dir, &["export", "json"]);
        cmd.env("__ENVY_PID", "4242")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let _stdin = child.stdin.take();
        let out = ok(wait_or_hang(child, "envy export"), "envy export json");
        let stderr = String::from_utf8_lossy(&out.stderr);
        // A device or FIFO is refused after `fstat`; `/dev/tty` without a controlling
        // terminal already fails to open. Either way: said, and nothing more is read.
        assert!(
            stderr.contains("is not a regular file") || stderr.contains("cannot read"),
            "{dir:?}: {stderr}"
        );
        assert!(
            stderr.contains("envy reads nothing more of an untrusted project"),
            "{stderr}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("\"FOO\""));
        let allow = wait_or_hang(
            envy(&sb, dir, &["allow"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
            "envy allow",
        );
        assert!(!allow.status.success(), "allowing an unreadable lock fails");
    }
    // And in a real shell: the prompt comes back and typed input is not eaten.
    let mut shell = Session::start(&sb, Sh::Bash, &sb.work);
    for dir in &projects {
        shell.cd(dir);
        let out = shell.output("echo typed-ok");
        assert!(out.contains("typed-ok"), "{out}");
    }
}

#[test]
fn a_devshell_cannot_take_the_hooks_prompt_command_or_functions() {
    if !tools(&["tmux", "bash", "zsh"]) {
        return;
    }
    let sb = Sandbox::new();
    let project = sb.project(
        "proj",
        &corekit::simple_flake(
            "loaded",
            r#"PROMPT_COMMAND = "true"; precmd_functions = "true"; _envy_hook = "x"; shellHook = "PROMPT_COMMAND=true; precmd_functions=(); chpwd_functions=(); _envy_hook() { :; }; unset -f _envy_unhook";"#,
        ),
    );
    envy_ok(&sb, &project, &["allow"]);
    for (sh, check) in [
        (
            Sh::Bash,
            "{ declare -p PROMPT_COMMAND; declare -f _envy_hook; }",
        ),
        (
            Sh::Zsh,
            "{ print -r -- precmd=$precmd_functions chpwd=$chpwd_functions; functions _envy_hook; }",
        ),
    ] {
        let mut shell = Session::start_with(&sb, sh, &sb.work, "export ENVY_BACKEND=embedded", 1);
        shell.cd(&project);
        let env = shell.env();
        assert_eq!(env.get("FOO").map(String::as_str), Some("loaded"), "{sh:?}");
        let hooks = shell.output(check);
        assert!(hooks.contains("_envy_hook"), "{sh:?}: {hooks}");
        assert!(
            hooks.contains(&format!("export {}", sh.name())),
            "{sh:?}: the hook's own function: {hooks}"
        );
        if sh == Sh::Zsh {
            assert!(
                hooks.contains("precmd=_envy_hook") && hooks.contains("chpwd=_envy_hook"),
                "{hooks}"
            );
        }
        shell.cd(&sb.work);
        let env = shell.env();
        assert_eq!(env.get("FOO"), None, "{sh:?}: leaving unloads");
    }
}

#[test]
fn non_utf8_bytes_in_a_devshell_value_reach_the_shell_as_bytes() {
    if !tools(&["tmux", "bash", "zsh"]) {
        return;
    }
    let sb = Sandbox::new();
    let project = sb.project(
        "proj",
        &corekit::simple_flake("x", "LATIN1 = builtins.readFile ./latin1;"),
    );
    fs_err::write(project.join("latin1"), b"caf\xe9 \xff").unwrap();
    envy_ok(&sb, &project, &["allow"]);
    for sh in [Sh::Bash, Sh::Zsh] {
        let mut shell = Session::start_with(&sb, sh, &sb.work, "export ENVY_BACKEND=embedded", 1);
        shell.cd(&project);
        let hex = shell.output("printf %s \"$LATIN1\" | od -An -tx1");
        assert_eq!(
            hex.split_whitespace().collect::<Vec<_>>(),
            ["63", "61", "66", "e9", "20", "ff"],
            "{sh:?}: {hex}"
        );
        shell.cd(&sb.work);
        let gone = shell.output("echo ${LATIN1-unset}");
        assert!(gone.contains("unset"), "{sh:?}: {gone}");
    }
}

#[test]
fn a_corrupt_generation_heals_once() {
    let sb = Sandbox::new();
    let project = sb.project("proj", &corekit::simple_flake("v", ""));
    envy_ok(&sb, &project, &["allow"]);
    let (changes, _) = export(&sb, &project, None);
    assert_eq!(foo(&changes), Some("v"));
    let env_dir = sb.cache_home().join("envy");
    let generations: Vec<PathBuf> = walk(&env_dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    assert_eq!(generations.len(), 1, "{generations:?}");
    fs_err::write(&generations[0], b"\x07garbage").unwrap();
    // A new shell enters: one line, a rebuild, loaded.
    let (changes, stderr) = export(&sb, &project, None);
    assert_eq!(foo(&changes), Some("v"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.contains("corrupt")).count(),
        1,
        "one line about it: {stderr}"
    );
    // And the prompt after that is quiet.
    let (again, stderr) = export(&sb, &project, Some(&state_of(&changes)));
    assert!(again.is_empty() && stderr.is_empty(), "{again:?} {stderr}");
}

#[test]
fn leaving_unloads_even_when_the_cache_directory_is_read_only() {
    let sb = Sandbox::new();
    let project = sb.project("proj", &corekit::simple_flake("v", ""));
    envy_ok(&sb, &project, &["allow"]);
    let (changes, _) = export(&sb, &project, None);
    assert_eq!(foo(&changes), Some("v"));
    let state = state_of(&changes);
    let cache = sb.cache_home();
    let chmod = |mode: &str| {
        assert!(
            Command::new("chmod")
                .args(["-R", mode])
                .arg(&cache)
                .status()
                .unwrap()
                .success()
        );
    };
    chmod("a-w");
    // Root ignores permission bits; without CAP_DAC_OVERRIDE it obeys them like anyone.
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--bounding-set",
            "-dac_override,-dac_read_search",
            "--inh-caps",
            "-dac_override,-dac_read_search",
            "--",
        ])
        .arg(common::envy_bin());
        c
    } else {
        Command::new(common::envy_bin())
    };
    cmd.args(["export", "json"])
        .current_dir(&sb.work)
        .env_clear()
        .envs(sb.env())
        .env("PWD", &sb.work)
        .env("ENVY_BACKEND", "embedded")
        .env("FOO", "v");
    let (after, stderr) = export_with(cmd, Some(&state));
    chmod("u+w");
    assert!(
        after.contains_key("FOO"),
        "FOO is unset: {after:?} {stderr}"
    );
    assert_eq!(after["FOO"], Value::Null, "{stderr}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs_err::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
