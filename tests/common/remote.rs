//! `envy build` on Nix build machines, the same tests over both protocols
//! (tests/remote_build.rs runs them over `ssh://`, tests/remote_ssh_ng.rs over `ssh-ng://`):
//! a real sshd on 127.0.0.1 whose forced command runs real Nix 2.8 (tests/common/sshd.rs).
//! - with `-j 0` a 3-derivation chain builds remotely (the remote store has it, envy's store
//!   gets it, `envy store verify` passes, `envy log` has the machine's log), and without
//!   machines `-j 0` says there is nowhere to build;
//! - an `aarch64-linux` derivation goes to the machine declaring that system, a machine that
//!   is down is skipped with one warning (and ssh's reason), and without a machine declaring
//!   the system the build says so;
//! - a remote failure's log reaches the user.

use super::build::{BuildEnv, assert_success, store_path};
use super::sshd::{BuildMachine, world_with_machine};

/// The protocol envy speaks to the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `ssh://`: `nix-store --serve --write` on the machine.
    Ssh,
    /// `ssh-ng://`: `nix-daemon --stdio` on the machine, the worker protocol.
    SshNg,
}

impl Protocol {
    /// The machine's URI for the host alias `host`, e.g. `ssh-ng://farm`.
    pub fn uri(self, host: &str) -> String {
        match self {
            Protocol::Ssh => format!("ssh://{host}"),
            Protocol::SshNg => format!("ssh-ng://{host}"),
        }
    }

    /// The command the machine's forced command runs for this protocol.
    pub fn remote_command(self) -> &'static str {
        match self {
            Protocol::Ssh => "nix-store --serve --write",
            Protocol::SshNg => "nix-daemon --stdio",
        }
    }

    /// The real Nix tool the machine runs.
    fn tool(self) -> &'static str {
        match self {
            Protocol::Ssh => "nix-store",
            Protocol::SshNg => "nix-daemon",
        }
    }
}

pub const EXPR: &str = r#"
let
  sh = system: name: script: derivation {
    inherit name system; builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  };
in rec {
  a = sh "x86_64-linux" "remote-a" "echo a > $out";
  b = sh "x86_64-linux" "remote-b" "echo building b remotely; cat ${a} > $out; echo b >> $out";
  c = sh "x86_64-linux" "remote-c" "cat ${b} > $out; echo ${b} >> $out";
  arm = sh "aarch64-linux" "remote-arm" "echo arm; cat ${a} > $out; echo arm >> $out";
  bad = sh "x86_64-linux" "remote-bad" "echo the remote says why; exit 7";
}
"#;

/// A build world with [`EXPR`] as `work/default.nix` and a machine speaking `proto`.
pub fn setup(proto: Protocol) -> Option<(BuildEnv, BuildMachine)> {
    let (env, machine) = world_with_machine(proto.tool())?;
    fs_err::write(env.path("work/default.nix"), EXPR).unwrap();
    Some((env, machine))
}

/// `envy build --no-out-link default.nix -A attr` plus `args`, finished.
pub fn envy_build(
    env: &BuildEnv,
    machine: &BuildMachine,
    attr: &str,
    args: &[&str],
) -> std::process::Output {
    machine
        .envy(env)
        .args(["build", "--no-out-link", "default.nix", "-A", attr])
        .args(args)
        .output()
        .unwrap()
}

pub fn chain_builds_on_the_machine_with_j0(proto: Protocol) {
    let Some((env, machine)) = setup(proto) else {
        return;
    };
    // One job over `ssh-ng://`: the chain builds one at a time over one connection.
    let jobs = if proto == Protocol::Ssh { 2 } else { 1 };
    let builders = format!("{} x86_64-linux - {jobs} 1", proto.uri("farm"));
    let out = envy_build(&env, &machine, "c", &["-j", "0", "--builders", &builders]);
    assert_success(&out, &format!("envy build -j 0 on {builders}"));
    let c = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let sd = env.store_dir();
    assert!(machine.has(&sd, &c), "the remote store has {c}");
    let store = env.store();
    let info = store.path_info(&store_path(&c)).unwrap();
    let b = info.references.iter().next().expect("c refers to b");
    let b = env.store_dir().join(b.to_string());
    assert!(machine.has(&sd, &b.to_string_lossy()));
    let text = fs_err::read_to_string(&c).unwrap();
    assert_eq!(text, format!("a\nb\n{}\n", b.display()));
    // Nothing was built locally: each derivation ran on the machine.
    let commands = fs_err::read_to_string(machine.dir.join("commands")).unwrap();
    match proto {
        Protocol::Ssh => assert!(commands.contains(proto.remote_command()), "{commands}"),
        Protocol::SshNg => {
            let lines: Vec<&str> = commands.lines().collect();
            assert_eq!(
                lines,
                [proto.remote_command()],
                "one connection: {commands}"
            );
        }
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    env.verify();
    // The machine's log of `b` is envy's log of it.
    let log = env
        .envy()
        .args(["log", &b.to_string_lossy()])
        .output()
        .unwrap();
    assert_success(&log, "envy log of a remote build");
    let text = String::from_utf8_lossy(&log.stdout);
    assert!(text.contains("building b remotely"), "{text}");

    // `-j 0` without build machines: nowhere to build, said clearly.
    fs_err::write(
        env.path("work/default.nix"),
        EXPR.replace("echo a > $out", "echo a2 > $out"),
    )
    .unwrap();
    let out = envy_build(&env, &machine, "a", &["-j", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("local builds are off"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

pub fn aarch64_goes_to_its_machine_and_a_down_machine_is_skipped(proto: Protocol) {
    let Some((env, machine)) = setup(proto) else {
        return;
    };
    // `down` (closed port) is the fastest x86_64 machine: tried first, skipped with one
    // warning, and `a` builds locally; `arm` can only go to `farm-arm`.
    let down = proto.uri("down");
    let builders = format!(
        "{down} x86_64-linux - 1 2; {} aarch64-linux",
        proto.uri("farm-arm")
    );
    let out = envy_build(&env, &machine, "arm", &["-j", "1", "--builders", &builders]);
    assert_success(
        &out,
        &format!("envy build of an aarch64-linux derivation on {builders}"),
    );
    let arm = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(&down)).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning line for the down machine: {stderr}"
    );
    assert!(warnings[0].contains("skipping it"), "{stderr}");
    // ssh's reason.
    assert!(warnings[0].contains("Connection refused"), "{stderr}");
    let sd = env.store_dir();
    assert!(
        machine.has(&sd, &arm),
        "built on the machine declaring aarch64-linux"
    );
    assert_eq!(fs_err::read_to_string(&arm).unwrap(), "a\narm\n");
    env.verify();

    // Without a machine declaring it, an aarch64-linux derivation cannot build here.
    fs_err::write(
        env.path("work/default.nix"),
        EXPR.replace("echo arm;", "echo arm2;"),
    )
    .unwrap();
    let builders = format!("{} x86_64-linux", proto.uri("farm"));
    let out = envy_build(&env, &machine, "arm", &["--builders", &builders]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no build machine declares `aarch64-linux`"),
        "{stderr}"
    );
}

pub fn a_remote_failure_shows_the_remote_log(proto: Protocol) {
    let Some((env, machine)) = setup(proto) else {
        return;
    };
    // The faster machine is down (a closed port): one warning, ssh's reason, and on.
    let (down, farm) = (proto.uri("down"), proto.uri("farm"));
    let builders = format!("{down} x86_64-linux - 1 2; {farm}");
    let out = envy_build(&env, &machine, "bad", &["-j", "0", "--builders", &builders]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(&down)).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("skipping it"), "{stderr}");
    assert!(warnings[0].contains("Connection refused"), "{stderr}");
    assert!(stderr.contains(&format!("failed on `{farm}`")), "{stderr}");
    assert!(stderr.contains("the remote says why"), "{stderr}");
}
