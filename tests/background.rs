//! Background builds (the default): the prompt comes back while a slow build runs and the
//! first prompt after it loads the new generation; a failing rebuild keeps the last good
//! environment and shows its message once; ten shells entering one project start one build;
//! `envy wait` and `envy exec` exit codes. Real bash in tmux, the embedded backend.
//!
//! Nothing here is timed: "the prompt came back during the build" is proved by the shell
//! running commands, and not having the environment yet, while the build still holds its lock.

mod common;
#[path = "common/core.rs"]
mod corekit;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use corekit::{Sandbox, Session, Sh, system, text, tick};

fn tools() -> bool {
    common::have_tool("tmux") && common::have_tool("bash")
}

fn run(sb: &Sandbox, dir: &Path, args: &[&str]) -> Output {
    sb.envy_background(dir, args).output().unwrap()
}

/// A devShell with `FOO = value`, whose input takes `secs` seconds to build (`tag` makes the
/// derivation new, so nothing is cached).
fn slow_flake(value: &str, secs: u32, tag: &str) -> String {
    corekit::simple_flake(
        value,
        &format!(
            "SLOW = derivation {{ name = \"slow-{tag}\"; system = \"{}\"; builder = \"/bin/bash\"; args = [ \"-c\" \"/usr/bin/sleep {secs}; echo > $out\" ]; }};",
            system()
        ),
    )
}

/// The shell's rc: background builds, the embedded backend, `envy` on `PATH`.
fn rc() -> String {
    let bin = common::envy_bin();
    format!(
        "export ENVY_SYNC=0 ENVY_BACKEND=embedded PATH={}:$PATH",
        bin.parent().unwrap().display()
    )
}

#[test]
fn the_prompt_is_back_while_a_build_runs_and_a_later_prompt_loads_it() {
    if !tools() {
        return;
    }
    let sb = Sandbox::new();
    let project = sb.project("proj", &slow_flake("one", 6, "a"));
    let ok = run(&sb, &project, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let mut shell = Session::start_with(&sb, Sh::Bash, &sb.work, &rc(), 1);
    shell.cd(&project);
    // The prompt is back and usable, without the environment: the build is still running.
    let env = shell.env();
    assert_eq!(
        env.get("FOO"),
        None,
        "the prompt must not wait for the build"
    );
    let status = shell.output("envy status --json");
    assert!(
        status.contains("\"building\"") || status.contains("building"),
        "{status}"
    );
    assert!(
        shell
            .screen()
            .contains("in the background (envy wait to follow it)"),
        "{}",
        shell.screen()
    );
    // `envy wait` follows it and exits 0 once the environment is current.
    let waited = shell.output("{ envy wait; echo exit=$?; }");
    assert!(waited.contains("exit=0"), "{waited}");
    // The first prompt after the build applies it.
    let env = shell.env();
    assert_eq!(env.get("FOO").map(String::as_str), Some("one"));

    // A failing rebuild keeps the last good environment and says why, once.
    tick();
    fs_err::write(
        project.join("flake.nix"),
        slow_flake("two", 1, "b").replace(
            "FOO = \"two\";",
            "FOO = throw \"boom: the build cannot work\";",
        ),
    )
    .unwrap();
    let ok = run(&sb, &project, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    shell.prompt();
    let waited = shell.output("{ envy wait; echo exit=$?; }");
    assert!(
        waited.contains("exit=1") && waited.contains("boom: the build cannot work"),
        "{waited}"
    );
    let env = shell.env();
    assert_eq!(env.get("FOO").map(String::as_str), Some("one"), "kept");
    let screen = shell.screen();
    // At the prompt (`envy wait`'s copy went to its file): the message and where, once.
    assert_eq!(
        screen.matches("error: boom: the build cannot work").count(),
        1,
        "{screen}"
    );
    // Where: the `throw` in the `FOO = …` line.
    assert!(screen.contains("flake.nix:10:13"), "{screen}");
    shell.prompt();
    shell.prompt();
    assert_eq!(
        shell
            .screen()
            .matches("boom: the build cannot work")
            .count(),
        1,
        "not repeated"
    );
}

#[test]
fn ten_shells_entering_one_project_start_one_build() {
    let sb = Sandbox::new();
    let project = sb.project("proj", &slow_flake("v", 3, "ten"));
    let ok = run(&sb, &project, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let log = sb.root().join("eval.log");
    let children: Vec<_> = (0..10)
        .map(|i| {
            sb.envy_background(&project, &["export", "json"])
                .env("__ENVY_PID", (5000 + i).to_string())
                .env("ENVY_EVAL_LOG", &log)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("\"FOO\""),
            "no prompt waits for the build"
        );
    }
    let waited = sb
        .envy_background(&project, &["wait"])
        .env("ENVY_EVAL_LOG", &log)
        .output()
        .unwrap();
    assert!(waited.status.success(), "{}", text(&waited));
    let evaluations = fs_err::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();
    assert_eq!(evaluations, 1, "one build for ten shells");
}

#[test]
fn wait_and_exec_exit_codes() {
    let sb = Sandbox::new();
    let project = sb.project("proj", &corekit::simple_flake("v", ""));
    // Not allowed: an error with the hint, for both.
    for args in [&["wait"][..], &["exec", "--", "true"][..]] {
        let out = run(&sb, &project, args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("envy allow"));
    }
    let ok = run(&sb, &project, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let out = run(
        &sb,
        &project,
        &["exec", "--", "sh", "-c", "test \"$FOO\" = v && exit 7"],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "the command's status: {}",
        text(&out)
    );
    let out = run(&sb, &project, &["wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A failing build: 1, with the message.
    tick();
    fs_err::write(
        project.join("flake.nix"),
        corekit::simple_flake("v", "").replace("FOO = \"v\";", "FOO = throw \"exec-boom\";"),
    )
    .unwrap();
    let ok = run(&sb, &project, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    for args in [&["wait"][..], &["exec", "--", "true"][..]] {
        let out = run(&sb, &project, args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("exec-boom"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn envy_log_project_shows_the_whole_output_of_the_last_background_build() {
    let sb = Sandbox::new();
    let project = sb.project(
        "proj",
        &corekit::simple_flake("v", "").replace("FOO = \"v\";", "FOO = throw \"log-boom\";"),
    );
    let ok = run(&sb, &project, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let out = run(&sb, &project, &["log", "--project"]);
    assert!(!out.status.success(), "no build yet: {}", text(&out));
    let out = sb
        .envy_background(&project, &["export", "json"])
        .env("__ENVY_PID", "77")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let waited = run(&sb, &project, &["wait"]);
    assert_eq!(waited.status.code(), Some(1), "{}", text(&waited));
    let log = run(
        &sb,
        &project,
        &["log", "--project", project.to_str().unwrap()],
    );
    assert!(log.status.success(), "{}", text(&log));
    let log = String::from_utf8_lossy(&log.stdout);
    // The whole message, trace included, not the prompt's summary.
    assert!(
        log.contains("log-boom") && log.contains("while evaluating"),
        "{log}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

/// `envy export json` (blocking mode, so each prompt decides at once) with `state`.
fn prompt(
    sb: &Sandbox,
    dir: &Path,
    state: Option<&str>,
    log: &Path,
) -> serde_json::Map<String, serde_json::Value> {
    let mut cmd = sb.envy_background(dir, &["export", "json"]);
    cmd.env("ENVY_SYNC", "1")
        .env("__ENVY_PID", "99")
        .env("ENVY_EVAL_LOG", log);
    if let Some(s) = state {
        cmd.env("__ENVY_STATE", s);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    if out.stdout.is_empty() {
        return Default::default();
    }
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn git_add_and_git_commit_refresh_and_unrelated_git_work_does_not_evaluate() {
    let sb = Sandbox::new();
    let dir = sb.work.join("proj");
    fs_err::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q"]);
    // FOO comes from a file the flake imports; REV from `self.rev` (a clean tree has one).
    let flake = corekit::simple_flake(
        "x",
        "REV = self.rev or \"dirty\"; EXTRA = import ./extra.nix;",
    );
    fs_err::write(dir.join("flake.nix"), &flake).unwrap();
    fs_err::write(dir.join("extra.nix"), "\"extra-1\"\n").unwrap();
    git(&dir, &["add", "flake.nix"]);
    git(&dir, &["commit", "-q", "-m", "one"]);
    let ok = run(&sb, &dir, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let log = sb.root().join("eval.log");
    let evaluations = || {
        fs_err::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };

    // extra.nix is not tracked: the flake cannot see it (as in Nix), so the build fails.
    let first = prompt(&sb, &dir, None, &log);
    assert!(!first.contains_key("EXTRA"), "{first:?}");
    let mut state = first["__ENVY_STATE"].as_str().unwrap().to_string();

    // `git add` changes no file the evaluation read, but it changes what the flake sees.
    git(&dir, &["add", "extra.nix"]);
    let added = prompt(&sb, &dir, Some(&state), &log);
    assert_eq!(
        added.get("EXTRA").and_then(|v| v.as_str()),
        Some("extra-1"),
        "{added:?}"
    );
    assert_eq!(added.get("REV").and_then(|v| v.as_str()), Some("dirty"));
    state = added["__ENVY_STATE"].as_str().unwrap().to_string();

    // `git commit`: a clean tree has `self.rev`.
    git(&dir, &["commit", "-q", "-m", "two"]);
    let committed = prompt(&sb, &dir, Some(&state), &log);
    let rev = committed
        .get("REV")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(rev.len(), 40, "{committed:?}");
    state = committed["__ENVY_STATE"].as_str().unwrap().to_string();

    // Git work that changes nothing the flake sees: no evaluation.
    let before = evaluations();
    fs_err::write(dir.join("notes.txt"), "unrelated\n").unwrap();
    let status = Command::new("git")
        .arg("status")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(status.status.success());
    let quiet = prompt(&sb, &dir, Some(&state), &log);
    if let Some(s) = quiet.get("__ENVY_STATE").and_then(|v| v.as_str()) {
        state = s.to_string();
    }
    assert!(
        !quiet.contains_key("EXTRA") && !quiet.contains_key("REV"),
        "{quiet:?}"
    );
    let again = prompt(&sb, &dir, Some(&state), &log);
    assert!(!again.contains_key("EXTRA"), "{again:?}");
    assert_eq!(
        evaluations(),
        before,
        "untracked edits and `git status` evaluate nothing"
    );
}

/// Regression: the worker keyed the environment from the watched files as they were after the
/// build, so an edit made during the build was taken as built and never rebuilt.
#[test]
fn an_edit_during_a_build_queues_exactly_one_rebuild() {
    let sb = Sandbox::new();
    let project = sb.project(
        "proj",
        &slow_flake("unused", 4, "during")
            .replace("FOO = \"unused\";", "FOO = builtins.readFile ./value.txt;"),
    );
    fs_err::write(project.join("value.txt"), "before").unwrap();
    let ok = run(&sb, &project, &["allow"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let log = sb.root().join("eval.log");
    let evaluations = || {
        fs_err::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let out = sb
        .envy_background(&project, &["export", "json"])
        .env("__ENVY_PID", "4242")
        .env("ENVY_EVAL_LOG", &log)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The worker has started evaluating (its builder then sleeps 4 s): edit now.
    let mut polls = 0;
    while evaluations() == 0 {
        polls += 1;
        assert!(polls < 1200, "the background build never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    fs_err::write(project.join("value.txt"), "after").unwrap();
    // Ten more shells and `envy wait` during the build share the one worker.
    for i in 0..10 {
        let out = sb
            .envy_background(&project, &["export", "json"])
            .env("__ENVY_PID", (6000 + i).to_string())
            .env("ENVY_EVAL_LOG", &log)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let waited = sb
        .envy_background(&project, &["wait"])
        .env("ENVY_EVAL_LOG", &log)
        .output()
        .unwrap();
    assert!(waited.status.success(), "{}", text(&waited));
    let out = sb
        .envy_background(&project, &["exec", "--", "printenv", "FOO"])
        .env("ENVY_EVAL_LOG", &log)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "after\n",
        "{}",
        text(&out)
    );
    assert_eq!(evaluations(), 2, "the build, and one more for the edit");
}
