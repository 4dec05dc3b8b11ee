//! Parity with real Nix 2.8: the same `.drv` built by `nix-build` (in a Nix store with envy's
//! store dir, sandboxed) and by `envy build` gives the same output paths with the same NAR
//! hashes. The builders dump what a builder can observe: its environment, ids, host name,
//! `/etc` files, `passAsFile` and structured-attrs files, inputs.

mod common;

use common::build::{BuildEnv, have_sandbox};

const EXPR: &str = r#"
let
  sh = script: extra: derivation ({
    name = extra.name or "t";
    system = "x86_64-linux";
    builder = "/bin/bash";
    args = [ "-c" ("export PATH=/usr/bin:/bin; " + script) ];
  } // extra);
in rec {
  triv = sh "echo hello > $out" { name = "triv"; };
  observe = sh ''
    { env | sort; id; hostname; pwd; ls -A /build; cat "$bigPath"; echo;
      cat /etc/passwd /etc/group /etc/hosts; ulimit -c; ls -A /tmp; } > $out
  '' { name = "observe"; passAsFile = [ "big" ]; big = "a\nbig value"; };
  multi = sh ''mkdir $out $dev; echo lib > $out/lib; echo "$out" > $dev/ref'' {
    name = "multi"; outputs = [ "out" "dev" ];
  };
  structured = sh ''source .attrs.sh; mkdir ''${outputs[out]}; cp .attrs.json .attrs.sh ''${outputs[out]}/; echo "$name ''${list[1]}" > ''${outputs[out]}/sh'' {
    name = "structured"; __structuredAttrs = true; list = [ 1 "two" ]; obj = { a = true; b = null; };
  };
  chain = sh "cat ${triv} > $out; echo ${multi.dev} >> $out; cat ${multi.dev}/ref >> $out" { name = "chain"; };
  fixed = sh "echo fixed > $out" {
    name = "fixed"; outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=";
  };
}
"#;

#[test]
fn envy_and_nix_build_the_same_outputs() {
    if !common::have_tool("nix-build") || !have_sandbox() {
        return;
    }
    let env = BuildEnv::new();
    for attr in [
        "triv",
        "observe",
        "multi",
        "multi.dev",
        "structured",
        "chain",
        "fixed",
    ] {
        let drv = env.instantiate(EXPR, attr);
        let ours = env.envy_build(&drv, &[]);
        let theirs = env.nix_build(attr);
        // envy prints every output; nix-build the selected one.
        for (path, _) in &theirs {
            assert!(
                ours.contains(path),
                "{attr}: Nix built `{path}`, envy built {ours:?}"
            );
        }
        for (path, hash) in &theirs {
            let real = env
                .path("nix/real")
                .join(std::path::Path::new(path).file_name().unwrap());
            assert_eq!(
                &env.envy_nar_hash(path),
                hash,
                "{attr}: `{path}` differs from Nix's:\n--- envy\n{}\n--- nix\n{}",
                show(std::path::Path::new(path)),
                show(&real)
            );
        }
    }
}

/// A readable dump of an output for the failure message.
fn show(path: &std::path::Path) -> String {
    if path.is_file() {
        return fs_err::read_to_string(path).unwrap_or_default();
    }
    let mut out = String::new();
    for entry in fs_err::read_dir(path).into_iter().flatten().flatten() {
        out += &format!(
            "== {}\n{}\n",
            entry.file_name().to_string_lossy(),
            show(&entry.path())
        );
    }
    out
}

const REJECTED: &str = r#"
let
  sh = name: script: extra: derivation ({
    inherit name;
    system = "x86_64-linux";
    builder = "/bin/bash";
    args = [ "-c" ("export PATH=/usr/bin:/bin; " + script) ];
  } // extra);
  dep = sh "dep" "echo dep > $out" { };
in {
  refs = sh "refs" "echo ${dep} > $out" { allowedReferences = [ ]; };
  requisites = sh "requisites" "echo ${dep} > $out" { disallowedRequisites = [ dep ]; };
  spec = sh "spec" "echo ${dep} > $out" { allowedReferences = [ "nonsense" ]; };
  size = sh "size" "source .attrs.sh; echo 0123456789 > \${outputs[out]}" {
    __structuredAttrs = true; outputChecks.out.maxSize = 10;
  };
  closure = sh "closure" "source .attrs.sh; echo ${dep} > \${outputs[out]}" {
    __structuredAttrs = true; outputChecks.out.maxClosureSize = 200;
  };
  cycle = sh "cycle" "echo $dev > $out; echo $out > $dev; echo $dev > $lib" {
    outputs = [ "out" "dev" "lib" ];
  };
  fixed = sh "fixed" "echo other > $out" {
    outputHashMode = "flat"; outputHashAlgo = "sha256";
    outputHash = "sha256-DDBxQY5jVuYUiYyE7QZMqV6IVRvAgRtTS98ZUuza5TQ=";
  };
}
"#;

/// Outputs Nix rejects (reference and size checks, outputs referring to each other in a
/// cycle, a wrong fixed-output hash) envy rejects
/// with the same message: Nix's `error:` lines, with envy's backticks for Nix's quotes.
#[test]
fn envy_and_nix_reject_the_same_outputs_with_the_same_message() {
    // No sandbox needed: Nix builds in place first (these checks happen after the builder).
    if !common::have_tool("nix-build") {
        return;
    }
    let env = BuildEnv::new();
    let normalise = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| {
                let l = l.trim();
                l.strip_prefix("error: ").unwrap_or(l).replace('\'', "`")
            })
            .collect()
    };
    let attrs = [
        "refs",
        "requisites",
        "spec",
        "size",
        "closure",
        "cycle",
        "fixed",
    ];
    fs_err::write(env.path("work/default.nix"), REJECTED).unwrap();
    let failures = env.nix_build_failures_in_place(&attrs);
    for (attr, nix) in attrs.into_iter().zip(failures) {
        let drv = env.instantiate(REJECTED, attr);
        let nix: Vec<String> = normalise(&nix[nix.find("error: ").expect(&nix)..]);
        let out = env
            .envy()
            .args(["build", "--no-out-link"])
            .arg(&drv)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{attr}: envy built it");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ours = normalise(&stderr);
        assert!(
            ours.windows(nix.len()).any(|w| w == nix.as_slice()),
            "{attr}: Nix says\n{}\nenvy says\n{stderr}",
            nix.join("\n")
        );
    }
}
