//! `envy build` on Nix build machines over `ssh-ng://`: a real sshd on 127.0.0.1 whose forced
//! command runs real Nix 2.8's `nix-daemon --stdio` on its own store (tests/common/sshd.rs),
//! spoken to with the worker protocol. With `-j 0` a 3-derivation chain builds remotely (the
//! remote store has it, envy's store gets it, `envy store verify` passes) over one
//! connection; an `aarch64-linux` derivation goes to the machine declaring that system; a
//! machine that is down is skipped with one warning; a remote failure's log (the daemon's
//! log messages) reaches the user.

mod common;

use common::build::{BuildEnv, assert_success};
use common::sshd::{BuildMachine, have_sshd};

const EXPR: &str = r#"
let
  sh = system: name: script: derivation {
    inherit name system; builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  };
in rec {
  a = sh "x86_64-linux" "ng-a" "echo a > $out";
  b = sh "x86_64-linux" "ng-b" "echo building b remotely; cat ${a} > $out; echo b >> $out";
  c = sh "x86_64-linux" "ng-c" "cat ${b} > $out; echo ${b} >> $out";
  bad = sh "x86_64-linux" "ng-bad" "echo the daemon says why; exit 7";
  arm = sh "aarch64-linux" "ng-arm" "cat ${a} > $out; echo arm >> $out";
}
"#;

fn setup() -> Option<(BuildEnv, BuildMachine)> {
    if !common::have_tool("nix-daemon") || !have_sshd() {
        return None;
    }
    let env = BuildEnv::new();
    fs_err::write(env.path("work/default.nix"), EXPR).unwrap();
    let machine = BuildMachine::start(&env.path("machine"), &env.store_dir());
    Some((env, machine))
}

fn envy_build(
    env: &BuildEnv,
    machine: &BuildMachine,
    attr: &str,
    args: &[&str],
) -> std::process::Output {
    env.envy()
        .env("NIX_SSHOPTS", machine.sshopts())
        .args(["build", "--no-out-link", "default.nix", "-A", attr])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn chain_builds_over_ssh_ng_with_j0() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let out = envy_build(
        &env,
        &machine,
        "c",
        &["-j", "0", "--builders", "ssh-ng://farm x86_64-linux - 1 1"],
    );
    assert_success(&out, "envy build -j 0 over ssh-ng://");
    let c = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let sd = env.store_dir();
    assert!(machine.has(&sd, &c), "the remote store has {c}");
    let store = env.store();
    let info = store.path_info(&common::build::store_path(&c)).unwrap();
    let b = info.references.iter().next().expect("c refers to b");
    let b = env.store_dir().join(b.to_string());
    assert!(machine.has(&sd, &b.to_string_lossy()));
    assert_eq!(
        fs_err::read_to_string(&c).unwrap(),
        format!("a\nb\n{}\n", b.display())
    );
    // The daemon protocol, over one connection (one job: the chain builds one at a time).
    let commands = fs_err::read_to_string(machine.dir.join("commands")).unwrap();
    let lines: Vec<&str> = commands.lines().collect();
    assert_eq!(lines, ["nix-daemon --stdio"], "{commands}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    env.verify();
    // The remote's log of `b` (the daemon's log messages) is envy's log of it.
    let log = env
        .envy()
        .args(["log", &b.to_string_lossy()])
        .output()
        .unwrap();
    assert_success(&log, "envy log of a remote build");
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(text.contains("building b remotely"), "{text}");
}

#[test]
fn a_remote_failure_over_ssh_ng_shows_the_daemon_log() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let out = envy_build(
        &env,
        &machine,
        "bad",
        &[
            "-j",
            "0",
            "--builders",
            "ssh-ng://down x86_64-linux - 1 2; ssh-ng://farm",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The faster machine is down (a closed port): one warning, ssh's reason, and on.
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ssh-ng://down"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("skipping it"), "{stderr}");
    assert!(warnings[0].contains("Connection refused"), "{stderr}");
    assert!(stderr.contains("failed on `ssh-ng://farm`"), "{stderr}");
    assert!(stderr.contains("the daemon says why"), "{stderr}");
}

#[test]
fn aarch64_goes_to_its_ssh_ng_machine() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let out = envy_build(
        &env,
        &machine,
        "arm",
        &[
            "-j",
            "0",
            "--builders",
            "ssh-ng://farm x86_64-linux; ssh-ng://farm-arm aarch64-linux",
        ],
    );
    assert_success(
        &out,
        "envy build of an aarch64-linux derivation over ssh-ng://",
    );
    let arm = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(machine.has(&env.store_dir(), &arm));
    assert_eq!(fs_err::read_to_string(&arm).unwrap(), "a\narm\n");
    env.verify();
}
