//! Two `envy build` processes asking for the same output at once: one build, both succeed
//! with the same path. Counted from what each process reports (`building '…'` is printed only
//! by the one that runs the builder), never from timing.

mod common;

use std::process::Stdio;

use common::build::{BuildEnv, assert_success};

#[test]
fn two_processes_one_build() {
    if !common::have_tool("nix-instantiate") {
        return;
    }
    let env = BuildEnv::new();
    let drv = env.instantiate(
        r#"{ slow = derivation { name = "slow"; system = "x86_64-linux"; builder = "/bin/sh";
             args = [ "-c" "/bin/sleep 1; echo $RANDOM$$ > $out" ]; }; }"#,
        "slow",
    );
    let spawn = || {
        env.envy()
            .args(["build", "--no-out-link"])
            .arg(&drv)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_success(&a, "first envy build");
    assert_success(&b, "second envy build");
    assert_eq!(a.stdout, b.stdout, "both report the same output");
    let builds: usize = [&a, &b]
        .iter()
        .map(|o| {
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .filter(|l| l.starts_with("building '"))
                .count()
        })
        .sum();
    assert_eq!(
        builds,
        1,
        "exactly one process ran the builder:\n{}\n{}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    let out = String::from_utf8(a.stdout).unwrap();
    assert!(!fs_err::read_to_string(out.trim()).unwrap().is_empty());
}
