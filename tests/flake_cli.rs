//! `envy flake lock|update|metadata|show` against Nix 2.8, run as a user would: with `nix`
//! absent from `PATH`, envy's lock files are Nix's byte for byte, Nix accepts them, and
//! metadata and outputs print as Nix prints them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::flake::{FlakeWorld, copy_tree, examples};
use serde_json::Value;

/// A `PATH` holding `git` (and what it needs) but not `nix`.
fn path_without_nix(w: &FlakeWorld) -> String {
    let bin = w.path("bin-no-nix");
    fs_err::create_dir_all(&bin).unwrap();
    for tool in ["git", "tar", "sh"] {
        if let Some(p) = common::which(tool) {
            let _ = std::os::unix::fs::symlink(p, bin.join(tool));
        }
    }
    bin.display().to_string()
}

fn envy(w: &FlakeWorld, dir: &Path, args: &[&str]) -> Output {
    w.envy(dir, args)
        .env("PATH", path_without_nix(w))
        .env("ENVY_STORE_DIR", "/nix/store")
        .output()
        .expect("run envy")
}

fn envy_ok(w: &FlakeWorld, dir: &Path, args: &[&str]) -> Output {
    let out = envy(w, dir, args);
    assert!(
        out.status.success(),
        "envy {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

/// envy's registry knows `mylib`, like the user registry the examples were made with; so
/// does Nix's in this world.
fn with_registry(w: &FlakeWorld) {
    let text = format!(
        r#"{{"flakes":[{{"from":{{"id":"mylib","type":"indirect"}},"to":{{"type":"git","url":"file://{}/deps/lib"}}}}],"version":2}}"#,
        examples().display()
    );
    for p in ["config/envy/registry.json", "config/nix/registry.json"] {
        let p = w.path(p);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(p, &text).unwrap();
    }
}

fn copy_without_lock(w: &FlakeWorld, name: &str) -> PathBuf {
    let dir = w.path(name);
    copy_tree(&examples().join(name), &dir);
    if dir.join("flake.lock").exists() {
        w.git(&dir, &["rm", "-q", "flake.lock"]);
        w.commit(&dir, "no lock");
    }
    dir
}

#[test]
fn lock_metadata_and_update_without_nix() {
    if !common::flake::have_examples() {
        return;
    }
    if !common::have_tool("nix") {
        return;
    }
    let w = FlakeWorld::new();
    with_registry(&w);
    for name in ["ex3-inputs", "ex4-follows", "ex6-relpath"] {
        let dir = copy_without_lock(&w, name);
        let out = envy_ok(&w, &dir, &["flake", "lock"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("creating lock file"),
            "{name}"
        );
        let expected =
            fs_err::read_to_string(examples().join(format!("artifacts/{name}.flake.lock")))
                .unwrap();
        assert_eq!(
            fs_err::read_to_string(dir.join("flake.lock")).unwrap(),
            expected,
            "{name}"
        );
        // Up to date: nothing written, nothing said.
        let out = envy_ok(&w, &dir, &["flake", "lock"]);
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: Value =
            serde_json::from_slice(&envy_ok(&w, &dir, &["flake", "metadata", "--json"]).stdout)
                .unwrap();
        let nix = w.nix_json(
            &dir,
            &["flake", "metadata", "--json", "--no-update-lock-file", "."],
        );
        assert_eq!(ours, nix, "{name}");
        let text =
            String::from_utf8_lossy(&envy_ok(&w, &dir, &["flake", "metadata"]).stdout).to_string();
        let nix_text = w.nix(&dir, &["flake", "metadata", "--no-update-lock-file", "."]);
        let strip = |s: &str| regex_lite_strip(s);
        assert_eq!(
            strip(&text),
            strip(&String::from_utf8_lossy(&nix_text.stdout)),
            "{name}"
        );
    }
    // `update` re-locks; `update INPUT` only that input.
    let dir = w.path("ex3-inputs");
    let lock = fs_err::read_to_string(dir.join("flake.lock")).unwrap();
    envy_ok(&w, &dir, &["flake", "update"]);
    assert_eq!(
        fs_err::read_to_string(dir.join("flake.lock")).unwrap(),
        lock
    );
    envy_ok(&w, &dir, &["flake", "update", "lib"]);
    assert_eq!(
        fs_err::read_to_string(dir.join("flake.lock")).unwrap(),
        lock
    );

    // No inputs, no lock file.
    let dir = copy_without_lock(&w, "ex1-noinputs");
    envy_ok(&w, &dir, &["flake", "lock"]);
    assert!(!dir.join("flake.lock").exists());
}

/// Drop ANSI escapes (Nix colours even when piped).
fn regex_lite_strip(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn show_matches_nix() {
    if !common::have_tool("nix") {
        return;
    }
    let w = FlakeWorld::new();
    let dir = w.path("show");
    w.write(
        &dir,
        &[(
            "flake.nix",
            r#"{
  description = "show";
  outputs = { self }: let
    drv = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
  in {
    packages.x86_64-linux.hello = drv "hello-1.0";
    packages.aarch64-linux.default = drv "hello-1.0";
    devShells.x86_64-linux.default = drv "nix-shell";
    legacyPackages.x86_64-linux.a = drv "a";
    lib.f = x: x;
    checks.x86_64-linux.t = drv "t";
    apps.x86_64-linux.default = { type = "app"; program = "/bin/sh"; };
    overlays.default = final: prev: { };
    nixosModules.m = { };
    templates.default = { path = ./.; description = "tmpl"; };
    formatter.x86_64-linux = drv "fmt";
  };
}
"#,
        )],
    );
    let ours: Value =
        serde_json::from_slice(&envy_ok(&w, &dir, &["flake", "show", "--json"]).stdout).unwrap();
    let nix = w.nix_json(
        &dir,
        &[
            "flake",
            "show",
            "--json",
            &format!("path:{}", dir.display()),
        ],
    );
    assert_eq!(ours, nix);
    let text = String::from_utf8_lossy(&envy_ok(&w, &dir, &["flake", "show"]).stdout).to_string();
    let nix_text = w.nix(&dir, &["flake", "show", &format!("path:{}", dir.display())]);
    assert_eq!(
        text,
        regex_lite_strip(&String::from_utf8_lossy(&nix_text.stdout))
    );
}

#[test]
fn schema_errors_name_the_attribute() {
    let w = FlakeWorld::new();
    let dir = w.path("bad");
    w.write(
        &dir,
        &[("flake.nix", "{ outputs = { self }: { }; packages = 1; }\n")],
    );
    let out = envy(&w, &dir, &["flake", "metadata"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported attribute `packages`"), "{err}");
    assert!(
        err.contains(&dir.join("flake.nix").display().to_string()),
        "{err}"
    );
}

/// An error in a flake output (`envy eval`, and the devShell through the embedded backend)
/// names the user's own files (`…/proj/bad.nix:3:11`), never the
/// store path of a lazy copy that does not exist, nor the evaluator's `«nix-internal»` code.
#[test]
fn eval_errors_name_the_users_files() {
    let w = FlakeWorld::new();
    let dir = w.path("proj");
    w.write(
        &dir,
        &[
            ("bad.nix", "{ x }:\n{\n  v = x + \"s\";\n}\n"),
            (
                "flake.nix",
                r#"{
  outputs = { self }: {
    bad = (import ./bad.nix { x = 1; }).v;
    shell = derivation { name = "s"; system = "x86_64-linux"; builder = "/bin/sh"; FOO = (import ./bad.nix { x = 1; }).v; };
    devShells.x86_64-linux.default = self.shell;
  };
}
"#,
            ),
        ],
    );
    let no_nix = common::flake::path_without_nix(w.root());
    let runs: [&[&str]; 3] = [
        &["eval", ".#bad"],
        &["eval", ".#shell.drvPath"],
        &["print-dev-env"],
    ];
    for args in runs {
        let attr = args.join(" ");
        let out = w
            .envy(&dir, args)
            .env("PATH", &no_nix)
            .env("ENVY_BACKEND", "")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{attr}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!("at {}:3:11:", dir.join("bad.nix").display());
        assert!(stderr.contains(&want), "{attr}: {stderr}");
        assert!(
            stderr.contains("cannot add a string to an integer"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("-source/"),
            "{attr}: a lazy copy: {stderr}"
        );
        assert!(!stderr.contains("nix-internal"), "{attr}: {stderr}");
    }
}
