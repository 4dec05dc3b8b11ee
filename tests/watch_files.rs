//! The file watcher, a worker that dies, `envy status`'s activity, and Ctrl-C in the blocking
//! mode. Real bash in tmux, the embedded backend.
//!
//! Nothing here is timed: waiting for the watcher polls `envy status --json` (with a generous
//! limit that only turns a hang into a failure), and no prompt runs in between.

mod common;
#[path = "common/core.rs"]
mod corekit;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use corekit::{Sandbox, Session, Sh, system, text};

fn tools() -> bool {
    common::have_tool("tmux") && common::have_tool("bash")
}

fn allow(sb: &Sandbox, dir: &Path) {
    let ok = sb.envy_background(dir, &["allow"]).output().unwrap();
    assert!(ok.status.success(), "{}", text(&ok));
}

/// `envy status --json` of the project at `dir`.
fn status(sb: &Sandbox, dir: &Path) -> serde_json::Value {
    let out = sb
        .envy_background(dir, &["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Poll `envy status --json` until `done` holds (at most two minutes: a hang, not a timing).
fn poll(sb: &Sandbox, dir: &Path, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    for _ in 0..1200 {
        if done(&status(sb, dir)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = status(sb, dir);
    let watch_log = s["project"]["cache"]
        .as_str()
        .and_then(|c| fs_err::read_to_string(Path::new(c).join("watch.log")).ok())
        .unwrap_or_default();
    let leases: Vec<String> = fs_err::read_dir(sb.cache_home().join("envy/live-v1"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    format!(
                        "{:?}: {:?}",
                        e.file_name(),
                        fs_err::read_to_string(e.path()).ok()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    panic!("{what} never happened; status: {s:#}\nwatch.log:\n{watch_log}\nleases: {leases:?}");
}

fn generation(s: &serde_json::Value) -> u64 {
    s["project"]["generation"]["number"].as_u64().unwrap_or(0)
}

fn rc(extra: &str) -> String {
    let bin = common::envy_bin();
    format!(
        "export ENVY_BACKEND=embedded PATH={}:$PATH {extra}",
        bin.parent().unwrap().display()
    )
}

/// A devShell whose FOO is `value.txt`, and BAR the flake's own `bar`.
fn file_flake(bar: &str) -> String {
    corekit::simple_flake("unused", &format!("BAR = \"{bar}\";"))
        .replace("FOO = \"unused\";", "FOO = builtins.readFile ./value.txt;")
}

#[test]
fn the_watcher_rebuilds_a_changed_file_before_the_next_prompt_and_exits_with_its_shell() {
    if !tools() {
        return;
    }
    let sb = Sandbox::new();
    let project = sb.project("proj", &file_flake("b1"));
    fs_err::write(project.join("value.txt"), "one").unwrap();
    allow(&sb, &project);
    let mut shell = Session::start_with(&sb, Sh::Bash, &sb.work, &rc("ENVY_SYNC=0"), 1);
    shell.cd(&project);
    let waited = shell.output("{ envy wait; echo exit=$?; }");
    assert!(waited.contains("exit=0"), "{waited}");
    let env = shell.env();
    assert_eq!(env.get("FOO").map(String::as_str), Some("one"));
    poll(&sb, &project, "the watcher starting", |s| {
        s["project"]["activity"]["watching"] == true
    });
    assert_eq!(generation(&status(&sb, &project)), 1);

    // A watched file changes; no prompt runs: the watcher builds it.
    fs_err::write(project.join("value.txt"), "two").unwrap();
    poll(&sb, &project, "the rebuild of value.txt", |s| {
        generation(s) == 2 && s["project"]["generation"]["up_to_date"] == true
    });
    // The next prompt only loads it.
    shell.prompt();
    let env = shell.env();
    assert_eq!(env.get("FOO").map(String::as_str), Some("two"));

    // flake.nix: built once it is allowed (`envy allow` from another terminal).
    fs_err::write(project.join("flake.nix"), file_flake("b2")).unwrap();
    allow(&sb, &project);
    poll(&sb, &project, "the rebuild of flake.nix", |s| {
        generation(s) == 3 && s["project"]["generation"]["up_to_date"] == true
    });
    shell.prompt();
    let env = shell.env();
    assert_eq!(env.get("BAR").map(String::as_str), Some("b2"));

    // The shell leaves: its lease goes, and the watcher with it.
    shell.cd(&sb.work);
    poll(&sb, &project, "the watcher exiting", |s| {
        s["project"]["activity"]["watching"] == false
    });
    assert_eq!(
        status(&sb, &project)["project"]["activity"]["state"],
        "idle"
    );
}

/// A devShell whose input sleeps `secs` seconds (`tag` makes it a new derivation).
fn slow_flake(value: &str, secs: u32, tag: &str) -> String {
    corekit::simple_flake(
        value,
        &format!(
            "SLOW = derivation {{ name = \"slow-{tag}\"; system = \"{}\"; builder = \"/bin/bash\"; args = [ \"-c\" \"/usr/bin/sleep {secs}; echo > $out\" ]; }};",
            system()
        ),
    )
}

fn kill_group(pid: u64) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(std::process::Stdio::null())
        .status();
}

#[test]
fn a_killed_worker_does_not_leave_the_shell_building() {
    if !tools() {
        return;
    }
    let sb = Sandbox::new();
    let project = sb.project("proj", &slow_flake("v", 60, "killed"));
    allow(&sb, &project);
    let mut shell = Session::start_with(&sb, Sh::Bash, &sb.work, &rc("ENVY_SYNC=0"), 1);
    shell.cd(&project);
    // The hook returned at once; the worker it started takes the project's lock.
    poll(&sb, &project, "the build starting", |s| {
        s["project"]["activity"]["pid"].is_u64()
    });
    let building = status(&sb, &project);
    let activity = &building["project"]["activity"];
    assert_eq!(activity["state"], "building", "{building:#}");
    assert!(activity["since"].as_u64().is_some(), "{building:#}");
    let first = activity["pid"].as_u64().expect("the worker's pid");
    // What it builds, and how much is left (the slow derivation at least).
    poll(&sb, &project, "the build phase", |s| {
        s["project"]["activity"]["phase"]
            .as_str()
            .is_some_and(|p| p.contains("slow-killed"))
    });
    let building = status(&sb, &project);
    assert!(
        building["project"]["activity"]["builds_left"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{building:#}"
    );
    let human = sb.envy_background(&project, &["status"]).output().unwrap();
    let human = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(
        human.contains("activity:    building since") && human.contains("left"),
        "{human}"
    );
    kill_group(first);
    poll(&sb, &project, "the worker's lock being free", |s| {
        s["project"]["activity"]["state"] != "building"
    });
    // The prompt's stat check sees the worker gone; the slow path says so and starts again
    // (a typed line runs before the prompt's hook: the second one runs after it).
    shell.prompt();
    shell.prompt();
    let screen = shell.screen();
    assert!(screen.contains("stopped without a result"), "{screen}");
    let again = status(&sb, &project);
    let activity = &again["project"]["activity"];
    assert_eq!(activity["state"], "building", "{again:#}");
    let second = activity["pid"].as_u64().unwrap();
    assert_ne!(second, first);
    // Leave nothing running behind the test.
    kill_group(second);
    poll(&sb, &project, "the second worker ending", |s| {
        s["project"]["activity"]["state"] != "building"
    });
}

#[test]
fn ctrl_c_in_sync_mode_stops_the_build_until_a_watched_file_changes() {
    if !tools() {
        return;
    }
    let sb = Sandbox::new();
    let project = sb.project("proj", &slow_flake("v", 60, "ctrlc"));
    allow(&sb, &project);
    let log = sb.root().join("eval.log");
    let evaluations = || {
        fs_err::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let mut shell = Session::start_with(
        &sb,
        Sh::Bash,
        &sb.work,
        &rc(&format!("ENVY_SYNC=1 ENVY_EVAL_LOG={}", log.display())),
        1,
    );
    shell.type_line(&format!("cd {}", project.display()));
    for _ in 0..1200 {
        if evaluations() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(evaluations(), 1, "the blocking build started");
    shell.key("C-c");
    // The prompt is back; further prompts do not start the build again.
    shell.prompt();
    shell.prompt();
    shell.prompt();
    let env = shell.env();
    assert_eq!(env.get("FOO"), None);
    assert_eq!(evaluations(), 1, "not started again: {}", shell.screen());
    let screen = shell.screen();
    assert!(screen.contains("interrupted"), "{screen}");
    assert_eq!(
        status(&sb, &project)["project"]["activity"]["state"],
        "interrupted"
    );
    // A watched file changes (and is allowed): the next prompt builds.
    fs_err::write(
        project.join("flake.nix"),
        corekit::simple_flake("after", ""),
    )
    .unwrap();
    allow(&sb, &project);
    shell.prompt();
    let env = shell.env();
    assert_eq!(
        env.get("FOO").map(String::as_str),
        Some("after"),
        "{}",
        shell.screen()
    );
    assert_eq!(evaluations(), 2);
}
