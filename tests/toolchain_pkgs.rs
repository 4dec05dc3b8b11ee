//! envy's package set (`pkgs/`), evaluated and built by envy's own engine and by real Nix
//! 2.8, the oracle, side by side: the nixpkgs-compatible names, host-tool identities in store
//! paths (the same `.drv` paths from both evaluators), stdenv phases and hooks, `mkShell`, the
//! trivial builders. None of these needs musl, so they are quick.

mod common;
#[path = "common/toolchain.rs"]
mod toolchain;

use std::path::PathBuf;

use toolchain::{Sandbox, assert_success, have_nix, host_tools_nix, pkgs_dir};

/// A sandbox, when real Nix (the oracle) is there.
fn nix_sandbox() -> Option<Sandbox> {
    have_nix().then(Sandbox::new)
}

fn with_pkgs(expr: &str, clang_version: &str) -> String {
    format!(
        "let pkgs = import {} {{ hostTools = {}; }}; in {expr}",
        pkgs_dir().display(),
        host_tools_nix(clang_version)
    )
}

/// `expr` (with `pkgs` in scope) evaluated strictly to JSON by envy's evaluator and by Nix,
/// which must agree (store paths are computed for Nix's store directory); the value.
fn eval_json(sandbox: &Sandbox, expr: &str, clang_version: &str) -> serde_json::Value {
    let full = with_pkgs(expr, clang_version);
    let store_dir = toolchain::shared_nix().store_dir.display().to_string();
    let envy = sandbox
        .envy(&[
            "eval",
            "--strict",
            "--json",
            "--store-dir",
            &store_dir,
            "-E",
            &full,
        ])
        .output()
        .unwrap();
    assert_success(&envy, &format!("envy eval {expr}"));
    let nix = sandbox
        .nix_command("nix-instantiate")
        .args([
            "--eval",
            "--strict",
            "--json",
            "--readonly-mode",
            "-E",
            &full,
        ])
        .output()
        .unwrap();
    assert_success(&nix, &format!("nix-instantiate --eval {expr}"));
    let envy: serde_json::Value = serde_json::from_slice(&envy.stdout).unwrap();
    let nix: serde_json::Value = serde_json::from_slice(&nix.stdout).unwrap();
    assert_eq!(envy, nix, "envy and Nix disagree on {expr}");
    envy
}

/// Build `expr` (with `pkgs` in scope) with `envy build` and with `nix-build`; both outputs,
/// envy's first.
fn build(sandbox: &Sandbox, expr: &str) -> [PathBuf; 2] {
    let file = sandbox.write("build.nix", &with_pkgs(expr, "14.0.6"));
    let envy = sandbox
        .envy(&["build", "--no-out-link"])
        .arg(&file)
        .output()
        .unwrap();
    assert_success(&envy, &format!("envy build {expr}"));
    let nix = sandbox
        .nix_command("nix-build")
        .arg("--no-out-link")
        .arg(&file)
        .output()
        .unwrap();
    assert_success(&nix, &format!("nix-build {expr}"));
    let path = |out: &[u8]| PathBuf::from(String::from_utf8_lossy(out).trim());
    let envy = path(&envy.stdout);
    assert!(
        envy.starts_with(&toolchain::shared_store().store_dir),
        "{}",
        envy.display()
    );
    [envy, path(&nix.stdout)]
}

#[test]
fn the_package_set_has_the_nixpkgs_names() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let got = eval_json(
        &sandbox,
        r#"let
          aarch64 = pkgs.pkgsCross.aarch64-multiplatform-musl;
          musl64 = pkgs.pkgsCross.musl64;
        in {
          lib = builtins.all (f: builtins.isFunction pkgs.lib.${f})
            [ "optional" "optionals" "concatStringsSep" "makeBinPath" "makeSearchPath" "mapAttrs" "attrValues" "optionalString" "filterAttrs" ];
          stdenv = pkgs.stdenv.type;
          mkDerivation = builtins.isFunction pkgs.stdenv.mkDerivation;
          clangStdenv = pkgs.clangStdenv.cc.isClang;
          mkShell = builtins.isFunction pkgs.mkShell;
          runCommand = builtins.isFunction pkgs.runCommand;
          writeShellScriptBin = builtins.isFunction pkgs.writeShellScriptBin;
          static = pkgs.pkgsStatic.stdenv.hostPlatform.isStatic;
          musl = pkgs.musl.name;
          musl64 = [ musl64.stdenv.hostPlatform.config musl64.musl.name (builtins.isFunction musl64.mkShell) ];
          aarch64 = [ aarch64.stdenv.hostPlatform.config aarch64.stdenv.cc.targetPrefix aarch64.musl.name (builtins.isFunction aarch64.mkShell) ];
          aarch64BuildsOn = aarch64.stdenv.buildPlatform.config;
          libc = pkgs.stdenv.cc.libc.name;
        }"#,
        "14.0.6",
    );
    let host = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
    let expected = serde_json::json!({
        "lib": true,
        "stdenv": "derivation",
        "mkDerivation": true,
        "clangStdenv": true,
        "mkShell": true,
        "runCommand": true,
        "writeShellScriptBin": true,
        "static": true,
        "musl": "musl-1.2.3",
        "musl64": ["x86_64-unknown-linux-musl", "musl-1.2.3", true],
        "aarch64": ["aarch64-unknown-linux-musl", if host.starts_with("aarch64") { "" } else { "aarch64-unknown-linux-musl-" }, "musl-1.2.3", true],
        "aarch64BuildsOn": host,
        "libc": "musl-1.2.3",
    });
    assert_eq!(got, expected);
}

#[test]
fn a_changed_host_compiler_gives_new_store_paths() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let expr = "[ pkgs.stdenv.cc.drvPath pkgs.musl.drvPath pkgs.stdenv.drvPath pkgs.musl.src.outPath pkgs.stdenvNoCC.drvPath ]";
    let old = eval_json(&sandbox, expr, "14.0.6");
    let new = eval_json(&sandbox, expr, "14.0.7");
    assert_ne!(
        old[0], new[0],
        "the compiler wrapper records the host compiler"
    );
    assert_ne!(old[1], new[1], "musl is compiled by the host compiler");
    assert_ne!(old[2], new[2], "the stdenv includes the compiler wrapper");
    assert_eq!(
        old[3], new[3],
        "musl's source does not depend on the compiler"
    );
    assert_eq!(
        old[4], new[4],
        "the compiler-less stdenv does not depend on the compiler"
    );
}

#[test]
fn without_host_tools_the_set_says_what_to_install() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let expr = format!(
        "(import {} {{ system = \"x86_64-linux\"; }}).stdenv.drvPath",
        pkgs_dir().display()
    );
    for mut cmd in [
        sandbox.envy(&["eval"]),
        sandbox.nix_command("nix-instantiate"),
    ] {
        let out = cmd.args(["--eval", "-E", &expr]).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("apt-get install clang lld llvm"),
            "{stderr}"
        );
    }
}

/// `go` is the host's Go when envy found one (`hostTools.optionalTools.go`); without it, the
/// set says what to install, and nothing else depends on it.
#[test]
fn without_a_host_go_the_go_package_says_what_to_install() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let expr = with_pkgs("pkgs.go.drvPath", "14.0.6");
    for mut cmd in [
        sandbox.envy(&["eval"]),
        sandbox.nix_command("nix-instantiate"),
    ] {
        let out = cmd.args(["--eval", "-E", &expr]).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("apt-get install golang-go"), "{stderr}");
    }
    // With one, its identity is in the derivation, and the stdenv's is not affected.
    let with_go = |go: &str| {
        let tools = toolchain::host_tools_nix("14.0.6");
        let tools = format!(
            "{} optionalTools.go = {{ path = \"/usr/bin/go\"; realPath = \"/usr/lib/go-1.19/bin/go\"; version = \"{go}\"; sha256 = \"0\"; }}; }}",
            tools.strip_suffix('}').unwrap()
        );
        format!(
            "let pkgs = import {} {{ hostTools = {tools}; }}; in [ pkgs.go.drvPath pkgs.stdenv.drvPath ]",
            pkgs_dir().display()
        )
    };
    let eval = |expr: &str| {
        let out = sandbox
            .envy(&["eval", "--strict", "--json", "-E", expr])
            .output()
            .unwrap();
        assert_success(&out, expr);
        serde_json::from_slice::<Vec<String>>(&out.stdout).unwrap()
    };
    let a = eval(&with_go("1.19.8"));
    let b = eval(&with_go("1.19.9"));
    assert!(a[0].ends_with("-go-1.19.8.drv"), "{a:?}");
    assert_ne!(a[0], b[0]);
    assert_eq!(a[1], b[1], "the stdenv does not depend on Go");
}

#[test]
fn stdenv_runs_phases_hooks_and_propagates_inputs() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let outs = build(
        &sandbox,
        r#"let
          dep = pkgs.stdenvNoCC.mkDerivation {
            name = "dep";
            dontUnpack = true;
            installPhase = ''
              mkdir -p $out/bin $out/lib
              printf '#!/bin/sh\necho from-dep\n' > $out/bin/dep-tool
              chmod +x $out/bin/dep-tool
            '';
            setupHook = pkgs.writeText "dep-hook.sh" ''
              depSeen() { DEP_SEEN+=" $(basename "$1")"; }
              addEnvHooks "$hostOffset" depSeen
              export DEP_HOOK_RAN=@out@
            '';
          };
          carrier = pkgs.runCommand "carrier" { propagatedBuildInputs = [ dep ]; } ''
            mkdir -p $out
            fixupPhase
          '';
        in pkgs.stdenvNoCC.mkDerivation {
          pname = "phases";
          version = "1";
          src = pkgs.runCommand "src" { } "mkdir -p $out; echo 'all:; echo built > made' > $out/Makefile";
          buildInputs = [ carrier ];
          preConfigure = "echo pre-configure >> $NIX_BUILD_TOP/log";
          postBuild = "echo post-build >> $NIX_BUILD_TOP/log";
          preInstallHooks = [ "echo pre-install-hook >> $NIX_BUILD_TOP/log" ];
          installPhase = ''
            runHook preInstall
            mkdir -p $out
            cp made $out/
            cat $NIX_BUILD_TOP/log > $out/log
            dep-tool > $out/tool-output
            echo "$DEP_HOOK_RAN" > $out/hook
            echo "$DEP_SEEN" > $out/seen
            runHook postInstall
          '';
        }"#,
    );
    for out in outs {
        let read = |f: &str| fs_err::read_to_string(out.join(f)).unwrap();
        assert_eq!(read("made"), "built\n");
        assert_eq!(read("log"), "pre-configure\npost-build\npre-install-hook\n");
        assert_eq!(
            read("tool-output"),
            "from-dep\n",
            "a propagated input's bin/ is on PATH"
        );
        assert!(
            read("hook").trim().ends_with("-dep"),
            "the setup hook ran, with @out@ substituted"
        );
        let seen = read("seen");
        assert!(
            seen.contains("-dep") && seen.contains("-carrier"),
            "env hooks see every input: {seen}"
        );
    }
}

#[test]
fn trivial_builders_produce_what_nixpkgs_would() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let outs = build(
        &sandbox,
        r#"pkgs.symlinkJoin {
          name = "joined";
          paths = [
            (pkgs.writeShellScriptBin "greet" ''echo "hello $1"'')
            (pkgs.writeTextFile { name = "data"; text = "payload"; destination = "/share/data.txt"; })
            (pkgs.runCommand "made" { value = "from env"; } "mkdir -p $out/share; echo $value > $out/share/made.txt")
          ];
        }"#,
    );
    for out in outs {
        let greet = sandbox
            .command(out.join("bin/greet"))
            .arg("world")
            .output()
            .unwrap();
        assert_success(&greet, "greet");
        assert_eq!(String::from_utf8_lossy(&greet.stdout), "hello world\n");
        assert_eq!(
            fs_err::read_to_string(out.join("share/data.txt")).unwrap(),
            "payload"
        );
        assert_eq!(
            fs_err::read_to_string(out.join("share/made.txt")).unwrap(),
            "from env\n"
        );
        let script = fs_err::read_to_string(out.join("bin/greet")).unwrap();
        assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    }
}

#[test]
fn mk_shell_merges_inputs_from_other_derivations() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let got = eval_json(
        &sandbox,
        r#"let
          a = pkgs.writeText "a" "a";
          b = pkgs.writeText "b" "b";
          c = pkgs.writeText "c" "c";
          project = pkgs.stdenv.mkDerivation { name = "project"; buildInputs = [ a ]; nativeBuildInputs = [ b ]; shellHook = "first"; };
          shell = pkgs.mkShell { inputsFrom = [ project ]; packages = [ c ]; shellHook = "second"; EXTRA = "x"; };
        in {
          native = map (d: d.name) shell.nativeBuildInputs;
          build = map (d: d.name) shell.buildInputs;
          hook = shell.shellHook;
          extra = shell.EXTRA;
          builder = shell.builder;
        }"#,
        "14.0.6",
    );
    assert_eq!(
        got,
        serde_json::json!({ "native": ["c", "b"], "build": ["a"], "hook": "first\nsecond", "extra": "x", "builder": "/bin/bash" })
    );
}

#[test]
fn envy_and_nix_instantiate_the_same_shells() {
    // The `.drv` of `envy shell`'s environment, host and cross, with packages: envy's
    // evaluator computes what Nix computes, down to the store path.
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let got = eval_json(
        &sandbox,
        &format!(
            r#"map (target: (import {}/shell.nix {{
                 hostTools = pkgs.hostTools; inherit target; packages = [ "hello" "musl" "buildPackages.hello" ];
               }}).drvPath) [ "x86_64-linux-musl" "aarch64-linux-musl" ]"#,
            pkgs_dir().display()
        ),
        "14.0.6",
    );
    let paths = got.as_array().unwrap();
    assert_eq!(paths.len(), 2);
    assert!(
        paths[1]
            .as_str()
            .unwrap()
            .ends_with("-envy-shell-aarch64-unknown-linux-musl.drv")
    );
}

/// The C++ runtimes, CMake and the libraries (host and aarch64): envy's evaluator computes
/// the `.drv` paths Nix computes, and the names are nixpkgs'.
#[test]
fn envy_and_nix_instantiate_the_same_libraries() {
    let Some(sandbox) = nix_sandbox() else {
        return;
    };
    let got = eval_json(
        &sandbox,
        r#"let
          names = [ "libcxx" "cmake" "leveldb" "zstd" "xz" "sqlite" ];
          of = set: map (n: set.${n}.drvPath) names;
        in {
          host = of pkgs;
          aarch64 = of pkgs.pkgsCross.aarch64-multiplatform-musl;
          aliases = [ (pkgs.llvmPackages.libcxx.name) (pkgs.lzma.name) ];
          cxxLinks = pkgs.stdenv.cc.libcxx.name;
        }"#,
        "14.0.6",
    );
    let host = got["host"].as_array().unwrap();
    let cross = got["aarch64"].as_array().unwrap();
    for (i, name) in [
        "libcxx-14.0.6",
        "cmake-3.25.1",
        "leveldb-1.23",
        "zstd-1.5.4",
        "xz-5.4.1",
        "sqlite-3.40.1",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            host[i].as_str().unwrap().ends_with(&format!("-{name}.drv")),
            "{got}"
        );
        assert!(
            cross[i]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{name}.drv")),
            "{got}"
        );
    }
    assert_eq!(
        host[1], cross[1],
        "CMake is a build tool, the same for every target"
    );
    if cfg!(target_arch = "x86_64") {
        assert_ne!(host[0], cross[0], "libc++ is built per target");
    }
    assert_eq!(
        got["aliases"],
        serde_json::json!(["libcxx-14.0.6", "xz-5.4.1"])
    );
    assert_eq!(got["cxxLinks"], "libcxx-14.0.6");
}
