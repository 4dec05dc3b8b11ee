//! Crash safety: `kill -9` envy at random points of a build, again and again; after each kill
//! the store verifies (every valid path still has exactly its registered contents, as
//! `envy store verify` checks), and a rebuild succeeds with a complete output (a
//! present-but-invalid leftover is deleted and rebuilt).

mod common;

use std::time::Duration;

use common::build::BuildEnv;

#[test]
fn kill_at_random_points_then_rebuild() {
    if !common::have_tool("nix-instantiate") {
        return;
    }
    let env = BuildEnv::new();
    let mut seed = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut expr = String::from("{\n");
    for i in 0..6 {
        expr += &format!(
            "  d{i} = derivation {{ name = \"crash{i}\"; system = \"x86_64-linux\"; builder = \"/bin/bash\";\n\
             args = [ \"-c\" \"/bin/mkdir $out; for n in $(/usr/bin/seq 1 60); do echo $n > $out/f$n; /bin/sleep 0.005; done; echo done > $out/end\" ]; }};\n"
        );
    }
    expr += "}\n";
    for i in 0..6 {
        let drv = env.instantiate(&expr, &format!("d{i}"));
        // Kill somewhere between start-up and the end of the build (~0.5 s).
        let delay = Duration::from_millis(next() % 600);
        let mut child = env
            .envy()
            .args(["build", "--no-out-link"])
            .arg(&drv)
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        env.verify();
        let out = env.envy_build(&drv, &[]);
        let end = std::path::Path::new(&out[0]).join("end");
        assert_eq!(
            fs_err::read_to_string(&end).unwrap(),
            "done\n",
            "rebuilt after a kill at {delay:?}"
        );
        assert_eq!(fs_err::read_dir(&out[0]).unwrap().count(), 61);
        env.verify();
    }
}
