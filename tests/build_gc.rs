//! A garbage collection while `envy build` runs takes nothing the build uses: not its `.drv`
//! files, not the inputs it found valid, not the output being written into the store (the
//! builder runs unsandboxed here, so the output grows in the store dir itself). Afterwards
//! the `result` link is a gc root; without it, everything goes.

mod common;

use std::time::{Duration, Instant};

use common::build::{BuildEnv, assert_success, store_path};
use envy_store::local::GcOptions;

const EXPR: &str = r#"
rec {
  base = derivation { name = "base"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" "echo base > $out" ]; };
  slow = derivation { name = "slow"; system = "x86_64-linux"; builder = "/bin/sh"; inherit base;
    args = [ "-c" "/bin/mkdir $out; echo partial > $out/first; /bin/sleep 1.5; /bin/cat $base > $out/copy; echo $base > $out/ref" ]; };
}
"#;

#[test]
fn gc_during_a_build_takes_nothing_it_uses() {
    if !common::have_tool("nix-instantiate") {
        return;
    }
    let env = BuildEnv::new();
    let base_drv = env.instantiate(EXPR, "base");
    let slow_drv = env.instantiate(EXPR, "slow");
    let base_out = env.envy_build(&base_drv, &[])[0].clone();
    let store = env.store();
    assert!(store.is_valid(&store_path(&base_out)).unwrap());

    let child = env
        .envy()
        .env("ENVY_SANDBOX", "false")
        .args(["build", "--out-link", "result"])
        .arg(&slow_drv)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Collect while the builder sleeps (its partial output already in the store dir).
    let slow_out = env.store_dir().join(
        fs_err::read_to_string(&slow_drv)
            .unwrap()
            .split('"')
            .find(|s| s.ends_with("-slow"))
            .map(|s| s.rsplit('/').next().unwrap().to_string())
            .unwrap(),
    );
    let start = Instant::now();
    while !slow_out.join("first").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the build never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = store.collect_garbage(&GcOptions::default()).unwrap();
    assert!(
        report.deleted.is_empty() && report.leftovers.is_empty(),
        "gc during the build took {:?} and {:?}",
        report.deleted,
        report.leftovers
    );
    assert!(
        slow_out.join("first").exists(),
        "gc deleted the output being built"
    );
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "envy build during gc");
    assert_eq!(
        fs_err::read_to_string(slow_out.join("copy")).unwrap(),
        "base\n"
    );
    env.verify();

    // The result link keeps the output and its closure alive (and their derivations).
    let report = store.collect_garbage(&GcOptions::default()).unwrap();
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    fs_err::remove_file(env.path("work/result")).unwrap();
    let report = store.collect_garbage(&GcOptions::default()).unwrap();
    let deleted: Vec<&str> = report.deleted.iter().map(|p| p.name()).collect();
    for name in ["base", "slow", "base.drv", "slow.drv"] {
        assert!(deleted.contains(&name), "{name} not collected: {deleted:?}");
    }
}
