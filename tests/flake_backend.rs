//! The embedded backend, end to end through `envy print-dev-env` with `nix` absent from
//! `PATH`: the built-in package set through the registry, the lock file written with a
//! notice, the watch list (what the evaluation read, nothing else), sources read in place and
//! copied only when a derivation needs them, and the fallback to Nix (or a clear error) for
//! a flake the embedded engine cannot evaluate.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::flake::{FlakeWorld, path_without_nix};
use serde_json::Value;

fn print_dev_env(w: &FlakeWorld, dir: &Path, path: &str, extra: &[(&str, &str)]) -> Output {
    let mut cmd = w.envy(dir, &["print-dev-env", "--json"]);
    cmd.env("PATH", path)
        .env("ENVY_EVAL_LOG", w.path("eval.log"));
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.output().expect("run envy")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "envy failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn evaluations(w: &FlakeWorld) -> usize {
    fs_err::read_to_string(w.path("eval.log"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn var<'a>(doc: &'a Value, name: &str) -> Option<&'a str> {
    doc["variables"][name]["value"].as_str()
}

fn watched(doc: &Value) -> Vec<PathBuf> {
    doc["envy"]["watch"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect()
}

const SHELL_NIX: &str = r#"{ pkgs }: pkgs.mkShellNoCC { name = "demo"; FOO = import ./value.nix; }
"#;

/// A flake whose devShell is `shell.nix` on the package set (through the registry's `envy`).
const PACKAGE_SET_PROJECT: &str = "{\n  inputs.envy.url = \"envy\";\n  outputs = { self, envy }: {\n    devShells.x86_64-linux.default = import ./shell.nix { pkgs = envy.legacyPackages.x86_64-linux; };\n  };\n}\n";

#[test]
fn package_set_lock_notice_and_watch_list() {
    let w = FlakeWorld::new();
    let path = path_without_nix(w.root()).display().to_string();
    let dir = w.git_repo(
        "proj",
        &[
            ("flake.nix", PACKAGE_SET_PROJECT),
            ("shell.nix", SHELL_NIX),
            ("value.nix", "\"one\"\n"),
            ("README", "not read by the evaluation\n"),
        ],
    );
    let out = print_dev_env(&w, &dir, &path, &[]);
    let doc = json(&out);
    assert_eq!(var(&doc, "FOO"), Some("one"));
    // Every variable, as Nix prints them: `out` is the `-env` path that holds this
    // environment (as the output of Nix's `get-env` derivation does), `HOME` the build's.
    let env_path = PathBuf::from(var(&doc, "out").expect("`out` is printed"));
    assert!(env_path.starts_with(w.path("data")), "{env_path:?}");
    assert!(
        env_path.to_string_lossy().ends_with("-demo-env"),
        "{env_path:?}"
    );
    let kept: Value = serde_json::from_str(&fs_err::read_to_string(&env_path).unwrap()).unwrap();
    assert_eq!(kept["variables"]["FOO"]["value"], "one");
    assert_eq!(var(&doc, "HOME"), Some("/homeless-shelter"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "creating lock file '{}'",
            dir.join("flake.lock").display()
        )),
        "{stderr}"
    );
    let lock: Value =
        serde_json::from_str(&fs_err::read_to_string(dir.join("flake.lock")).unwrap()).unwrap();
    assert_eq!(lock["nodes"]["envy"]["original"]["id"], "envy");
    let files = watched(&doc);
    for f in ["flake.nix", "flake.lock", "shell.nix", "value.nix"] {
        assert!(files.contains(&dir.join(f)), "{f} watched: {files:?}");
    }
    assert!(!files.contains(&dir.join("README")), "{files:?}");
    assert!(
        files.iter().all(|f| !f.starts_with(w.path("data"))),
        "no store path is watched: {files:?}"
    );
    assert_eq!(evaluations(&w), 1);

    // Nothing read changed: the cache answers, no evaluation.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs_err::write(dir.join("README"), "touched\n").unwrap();
    let doc = json(&print_dev_env(&w, &dir, &path, &[]));
    assert_eq!(var(&doc, "FOO"), Some("one"));
    assert_eq!(evaluations(&w), 1, "an unrelated file causes no evaluation");

    // An imported file changed: evaluated again.
    fs_err::write(dir.join("value.nix"), "\"two\"\n").unwrap();
    let doc = json(&print_dev_env(&w, &dir, &path, &[]));
    assert_eq!(var(&doc, "FOO"), Some("two"));
    assert_eq!(evaluations(&w), 2);
}

/// The project's tree is hashed where it is: nothing is copied into envy's store for a
/// devShell that does not use it; one that does (`src = self`) gets the copy — tracked files
/// only — at Nix's store path for `self`.
#[test]
fn sources_are_copied_only_when_a_derivation_needs_them() {
    if !common::have_tool("nix") {
        return;
    }
    let w = FlakeWorld::new();
    let path = path_without_nix(w.root()).display().to_string();
    let flake = |with_src: bool| {
        format!(
            "{{\n  outputs = {{ self }}: {{\n    devShells.x86_64-linux.default = derivation {{\n      name = \"shell\"; system = \"x86_64-linux\"; builder = \"/bin/bash\"; outputs = [ \"out\" ];\n      PATH = \"/usr/bin:/bin\";{}\n    }};\n  }};\n}}\n",
            if with_src { " SRC = \"${self}\";" } else { "" }
        )
    };
    let dir = w.git_repo(
        "proj",
        &[("flake.nix", &flake(false)), ("data.txt", "tracked\n")],
    );
    fs_err::write(dir.join("untracked.txt"), "untracked\n").unwrap();
    let store = w.path("data/envy/store");
    let sources = || -> Vec<String> {
        fs_err::read_dir(&store)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with("-source"))
                    .collect()
            })
            .unwrap_or_default()
    };
    json(&print_dev_env(&w, &dir, &path, &[]));
    assert_eq!(sources(), Vec::<String>::new(), "nothing copied");

    fs_err::write(dir.join("flake.nix"), flake(true)).unwrap();
    w.git(&dir, &["commit", "-qam", "use self"]);
    let doc = json(&print_dev_env(&w, &dir, &path, &[]));
    let src = PathBuf::from(var(&doc, "SRC").unwrap());
    assert_eq!(sources().len(), 1, "{src:?}");
    assert!(src.join("data.txt").is_file() && !src.join("untracked.txt").exists());
    // The copy is Nix's `self` for the same tree: the same NAR hash.
    let nix = w.nix_json(&dir, &["flake", "metadata", "--json", "."]);
    let (hash, _) = envy_store::nar::nar_hash_path(&src).unwrap();
    assert_eq!(
        nix["locked"]["narHash"].as_str(),
        Some(hash.to_sri().as_str())
    );
}

#[test]
fn unsupported_flakes_fall_back_to_nix_or_fail_clearly() {
    if !common::have_tool("nix") {
        return;
    }
    let w = FlakeWorld::new();
    w.use_buildable_nix_store();
    // `other` is in Nix's user registry, not in envy's.
    let other = w.path("other");
    w.write(
        &other,
        &[(
            "flake.nix",
            "{ outputs = { self }: { value = \"from-other\"; }; }\n",
        )],
    );
    let reg = w.path("home/.config/nix/registry.json");
    fs_err::create_dir_all(reg.parent().unwrap()).unwrap();
    fs_err::write(
        &reg,
        format!(
            r#"{{"flakes":[{{"from":{{"id":"other","type":"indirect"}},"to":{{"path":"{}","type":"path"}}}}],"version":2}}"#,
            other.display()
        ),
    )
    .unwrap();
    let dir = w.path("proj");
    w.write(
        &dir,
        &[(
            "flake.nix",
            "{\n  outputs = { self, other }: {\n    devShells.x86_64-linux.default = derivation {\n      name = \"shell\"; system = \"x86_64-linux\"; builder = \"/bin/bash\"; outputs = [ \"out\" ];\n      PATH = \"/usr/bin:/bin\"; FOO = other.value;\n    };\n  };\n}\n",
        )],
    );
    // Nix installed: a notice, then Nix's result.
    let out = w
        .envy(&dir, &["print-dev-env", "--json"])
        .env("XDG_CONFIG_HOME", w.path("home/.config"))
        .output()
        .unwrap();
    let doc = json(&out);
    assert_eq!(var(&doc, "FOO"), Some("from-other"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("flake `flake:other` is not in envy's registry"),
        "{stderr}"
    );
    assert!(stderr.contains("using Nix for this flake"), "{stderr}");

    // Without Nix: a clear error with a hint (a fresh copy: the environment above is cached).
    let dir2 = w.path("proj2");
    common::flake::copy_tree(&dir, &dir2);
    // Nix locked `other` above in memory only: envy, which could not lock it, never lets Nix
    // write a lock file (the trust gate allows only locks envy wrote from allowed files).
    assert!(!dir2.join("flake.lock").exists());
    assert!(
        stderr.contains("flake.lock not updated"),
        "the notice says why: {stderr}"
    );
    let out = w
        .envy(&dir2, &["print-dev-env", "--json"])
        .env("PATH", path_without_nix(w.root()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is not in envy's registry"), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("install Nix"),
        "{stderr}"
    );

    // `ENVY_BACKEND=embedded` never falls back.
    let out = w
        .envy(&dir2, &["print-dev-env", "--json"])
        .env("ENVY_BACKEND", "embedded")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `envy build FLAKE#ATTR` builds a flake's package with the embedded engine.
#[test]
fn build_a_flake_package() {
    let w = FlakeWorld::new();
    let path = path_without_nix(w.root()).display().to_string();
    let dir = w.path("pkg");
    w.write(
        &dir,
        &[(
            "flake.nix",
            "{\n  outputs = { self }: {\n    packages.x86_64-linux.hello = derivation {\n      name = \"hello\"; system = \"x86_64-linux\"; builder = \"/bin/sh\";\n      args = [ \"-c\" \"echo hi > $out\" ];\n    };\n  };\n}\n",
        )],
    );
    let out = w
        .envy(&dir, &["build", ".#hello", "--no-out-link"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(built.ends_with("-hello"), "{built}");
    assert_eq!(fs_err::read_to_string(&built).unwrap(), "hi\n");
    let out = w
        .envy(&dir, &["build", ".#missing", "--no-out-link"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("packages.x86_64-linux.missing"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn many_builds_from_source_are_announced_before_building() {
    let w = FlakeWorld::new();
    let dir = w.path("proj");
    // A chain of 12 derivations no cache has, as the devShell's input.
    let chain = "let step = prev: n: derivation { name = \"step-${toString n}\"; system = \"x86_64-linux\"; builder = \"/bin/bash\"; args = [ \"-c\" \"echo ${prev} > $out\" ]; }; chain = builtins.foldl' step \"start\" (builtins.genList (n: n) 12); in chain";
    w.write(
        &dir,
        &[(
            "flake.nix",
            &format!(
                "{{\n  outputs = {{ self }}: {{\n    devShells.x86_64-linux.default = derivation {{\n      name = \"shell\"; system = \"x86_64-linux\"; builder = \"/bin/bash\"; outputs = [ \"out\" ];\n      PATH = \"/usr/bin:/bin\"; CHAIN = {chain};\n    }};\n  }};\n}}\n"
            ),
        )],
    );
    let out = print_dev_env(
        &w,
        &dir,
        &path_without_nix(w.root()).display().to_string(),
        &[("ENVY_BACKEND", "embedded")],
    );
    let doc = json(&out);
    assert!(var(&doc, "CHAIN").is_some_and(|c| c.contains("step-11")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 12 derivations must be built from source")
            && stderr.contains("envy store init"),
        "{stderr}"
    );
    // Built once, nothing more to say.
    let again = print_dev_env(
        &w,
        &dir,
        &path_without_nix(w.root()).display().to_string(),
        &[("ENVY_BACKEND", "embedded")],
    );
    json(&again);
    assert!(!String::from_utf8_lossy(&again.stderr).contains("must be built"));
}

/// The store an environment's paths live in is part of what it was built from: switching
/// `ENVY_STORE` (here between its default and an explicit `envy`, the same store, so that no
/// daemon is needed) evaluates again instead of reusing the other store's environment.
#[test]
fn switching_the_store_does_not_reuse_an_environment() {
    let w = FlakeWorld::new();
    let path = path_without_nix(w.root()).display().to_string();
    let dir = w.git_repo(
        "proj",
        &[
            ("flake.nix", PACKAGE_SET_PROJECT),
            ("shell.nix", SHELL_NIX),
            ("value.nix", "\"one\"\n"),
        ],
    );
    let doc = json(&print_dev_env(&w, &dir, &path, &[]));
    assert_eq!(var(&doc, "FOO"), Some("one"));
    let again = json(&print_dev_env(&w, &dir, &path, &[]));
    assert_eq!(var(&again, "FOO"), Some("one"));
    assert_eq!(evaluations(&w), 1, "the same store: cached");
    assert!(
        doc["envy"]["watch"]["env"]
            .as_array()
            .unwrap()
            .contains(&Value::from("ENVY_STORE")),
        "{}",
        doc["envy"]["watch"]
    );
    let other = json(&print_dev_env(&w, &dir, &path, &[("ENVY_STORE", "envy")]));
    assert_eq!(var(&other, "FOO"), Some("one"));
    assert_eq!(evaluations(&w), 2, "another store setting: evaluated again");
}
