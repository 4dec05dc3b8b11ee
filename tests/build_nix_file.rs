//! `envy build FILE.nix -A ATTR`: envy's evaluator instantiates into envy's store and the
//! builder builds; against real Nix 2.8 (`nix-build` of the same file, in a Nix store with
//! envy's store dir), the same output paths with the same NAR hashes — with a source file,
//! `builtins.toFile`, a dependency chain, two outputs and import from derivation.

mod common;

use common::build::{BuildEnv, assert_success};

const EXPR: &str = r#"
let
  sh = name: script: extra: derivation ({
    inherit name; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  } // extra);
in rec {
  a = sh "a" "echo hello > $out" { };
  script = derivation { name = "script"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ ./script.sh ]; dep = a; };
  text = builtins.toFile "t.txt" "some text";
  chain = sh "chain" "cat ${text} ${script} > $out; echo ${a} >> $out" { };
  multi = sh "multi" "echo o > $out; echo d > $dev" { outputs = [ "out" "dev" ]; };
  ifd = sh "ifd" "echo ${builtins.readFile a} > $out" { };
}
"#;

#[test]
fn envy_builds_nix_files_like_nix_build() {
    if !common::have_tool("nix-build") {
        return;
    }
    let env = BuildEnv::new();
    fs_err::write(
        env.path("work/script.sh"),
        "PATH=/bin; echo from-script $dep > $out\n",
    )
    .unwrap();
    fs_err::write(env.path("work/default.nix"), EXPR).unwrap();
    let attrs = ["chain", "multi", "ifd"];
    let theirs = env.nix_build_in_place(&attrs);
    for (attr, theirs) in attrs.into_iter().zip(theirs) {
        let out = env
            .envy()
            .args(["build", "--no-out-link", "-A", attr])
            .output()
            .unwrap();
        assert_success(&out, attr);
        let ours: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        for (path, hash) in theirs {
            assert!(
                ours.contains(&path),
                "{attr}: Nix built `{path}`, envy {ours:?}"
            );
            assert_eq!(env.envy_nar_hash(&path), hash, "{attr}: `{path}`");
        }
    }
    // The result links are gc roots named as nix-build names them.
    let out = env.envy().args(["build", "-A", "multi"]).output().unwrap();
    assert_success(&out, "multi with links");
    assert_eq!(
        fs_err::read_to_string(env.path("work/result-dev")).unwrap(),
        "d\n"
    );
    let out = env
        .envy()
        .args(["build", "-A", "a.nonexistent"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot evaluate `default.nix`")
            && stderr
                .contains("attribute 'nonexistent' in selection path 'a.nonexistent' not found"),
        "{stderr}"
    );
}
