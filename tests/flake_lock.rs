//! Lock files written by envy's locker against the ones Nix 2.8 writes for the same flakes,
//! byte for byte: the shared reference examples (git, path, tarball, `follows`,
//! `flake = false`, an indirect input through the registry, a relative path) and fixtures
//! of our own (`follows = ""`, nested overrides, dirty git inputs, updates).

mod common;

use std::path::{Path, PathBuf};

use common::flake::{
    FlakeWorld, NixFlakeReader, copy_tree, examples, examples_registries, nix_world,
};
use envy_fetch::Fetcher;
use envy_flake::{FlakeRef, LockFlags, Locker, Registries};

/// Lock `dir` with envy; returns the notices.
fn envy_lock(w: &FlakeWorld, dir: &Path, regs: &Registries, flags: &LockFlags) -> Vec<String> {
    let fetcher = Fetcher::new(w.fetch_settings());
    let reader = NixFlakeReader { env: w.env() };
    let locker = Locker::new(&fetcher, regs, &reader);
    let top = FlakeRef::parse(".", Some(dir)).unwrap();
    locker
        .lock_flake(&top, flags)
        .unwrap_or_else(|e| panic!("envy could not lock {}: {e}", dir.display()))
        .notices
}

fn read(p: &Path) -> String {
    fs_err::read_to_string(p).unwrap()
}

/// A copy of reference example `name` without its lock file.
fn example_copy(w: &FlakeWorld, name: &str) -> PathBuf {
    let dir = w.path(name);
    copy_tree(&examples().join(name), &dir);
    if dir.join("flake.lock").exists() {
        w.git(&dir, &["rm", "-q", "flake.lock"]);
        w.commit(&dir, "drop lock");
    }
    dir
}

#[test]
fn reference_examples_lock_byte_for_byte() {
    if !common::flake::have_examples() {
        return;
    }
    let Some(w) = nix_world() else { return };
    let ex = examples();
    let regs = examples_registries();
    for name in ["ex3-inputs", "ex4-follows", "ex6-relpath"] {
        let dir = example_copy(&w, name);
        let notices = envy_lock(&w, &dir, &regs, &LockFlags::default());
        let expected = read(&ex.join(format!("artifacts/{name}.flake.lock")));
        assert_eq!(read(&dir.join("flake.lock")), expected, "{name}");
        assert_eq!(
            notices,
            vec![format!(
                "creating lock file '{}'",
                dir.join("flake.lock").display()
            )]
        );
        // Nothing changed: no rewrite.
        let mtime = fs_err::metadata(dir.join("flake.lock"))
            .unwrap()
            .modified()
            .unwrap();
        assert!(
            envy_lock(&w, &dir, &regs, &LockFlags::default()).is_empty(),
            "{name}: relock is a no-op"
        );
        assert_eq!(
            fs_err::metadata(dir.join("flake.lock"))
                .unwrap()
                .modified()
                .unwrap(),
            mtime
        );
        // The lock file was made visible to git, as Nix does.
        let staged = w.git(&dir, &["ls-files", "flake.lock"]);
        assert_eq!(staged, "flake.lock", "{name}");
    }
    // A flake without inputs gets no lock file.
    let dir = example_copy(&w, "ex1-noinputs");
    assert!(envy_lock(&w, &dir, &regs, &LockFlags::default()).is_empty());
    assert!(!dir.join("flake.lock").exists());
}

/// Fixture flakes beyond the reference set, locked by Nix on one copy and envy on another.
#[test]
fn follows_root_nested_overrides_noflake_and_updates_match_nix() {
    let Some(w) = nix_world() else { return };
    let lib = w.git_repo(
        "deps/lib",
        &[("flake.nix", "{ outputs = { self }: { v = 1; }; }\n")],
    );
    let mid = w.git_repo(
        "deps/mid",
        &[(
            "flake.nix",
            &format!(
                "{{ inputs.lib.url = \"git+file://{}\";\n  inputs.top.follows = \"\";\n  outputs = {{ self, lib, top }}: {{ }}; }}\n",
                lib.display()
            ),
        )],
    );
    let data = w.path("deps/data");
    w.write(&data, &[("a.txt", "a\n")]);
    w.fix_mtimes(&data, 1_706_832_000);
    let flake = format!(
        r#"{{
  inputs = {{
    lib.url = "git+file://{lib}";
    mid.url = "git+file://{mid}";
    mid.inputs.lib.follows = "lib";
    data = {{ url = "path:{data}"; flake = false; }};
    self2.follows = "";
  }};
  outputs = {{ self, ... }}: {{ }};
}}
"#,
        lib = lib.display(),
        mid = mid.display(),
        data = data.display()
    );
    let a = w.git_repo("a", &[("flake.nix", &flake)]);
    let b = w.path("b");
    copy_tree(&a, &b);
    w.nix_ok(&a, &["flake", "lock"]);
    let regs = Registries::default();
    envy_lock(&w, &b, &regs, &LockFlags::default());
    assert_eq!(read(&b.join("flake.lock")), read(&a.join("flake.lock")));
    assert!(read(&b.join("flake.lock")).contains("\"self2\": []"));

    // Update one input after its repository moved on.
    w.write(
        &lib,
        &[("flake.nix", "{ outputs = { self }: { v = 2; }; }\n")],
    );
    w.git(&lib, &["commit", "-qam", "v2"]);
    w.nix_ok(&a, &["flake", "lock", "--update-input", "lib"]);
    let flags = LockFlags {
        input_updates: [vec!["lib".to_string()]].into_iter().collect(),
        ..LockFlags::default()
    };
    let notices = envy_lock(&w, &b, &regs, &flags);
    assert_eq!(
        read(&b.join("flake.lock")),
        read(&a.join("flake.lock")),
        "update-input"
    );
    assert!(notices[0].starts_with("updating lock file"), "{notices:?}");
    assert!(notices[0].contains("• Updated input 'lib':"), "{notices:?}");

    // Recreate from scratch (`nix flake update`).
    w.nix_ok(&a, &["flake", "update"]);
    let flags = LockFlags {
        recreate_lock_file: true,
        ..LockFlags::default()
    };
    envy_lock(&w, &b, &regs, &flags);
    assert_eq!(
        read(&b.join("flake.lock")),
        read(&a.join("flake.lock")),
        "update"
    );
}

#[test]
fn dirty_git_inputs_and_tarballs_match_nix() {
    let Some(w) = nix_world() else { return };
    let dep = w.git_repo(
        "deps/dep",
        &[("flake.nix", "{ outputs = { self }: { }; }\n")],
    );
    w.write(
        &dep,
        &[
            ("flake.nix", "{ outputs = { self }: { dirty = true; }; }\n"),
            ("untracked", "x"),
        ],
    );
    let src = w.path("tarsrc");
    w.write(&src, &[("t/flake.nix", "{ outputs = { self }: { }; }\n")]);
    w.fix_mtimes(&src, 1_709_424_000);
    let tar = w.path("deps/t.tar.gz");
    w.tarball(&src, "t", "-z", &tar);
    let flake = format!(
        "{{ inputs.dep.url = \"git+file://{}\";\n  inputs.t.url = \"file://{}\";\n  outputs = {{ self, dep, t }}: {{ }}; }}\n",
        dep.display(),
        tar.display()
    );
    let a = w.git_repo("a", &[("flake.nix", &flake)]);
    let b = w.path("b");
    copy_tree(&a, &b);
    let out = w.nix_ok(&a, &["flake", "lock"]);
    let nix_err = String::from_utf8_lossy(&out.stderr).to_string();
    envy_lock(&w, &b, &Registries::default(), &LockFlags::default());
    assert_eq!(
        a.join("flake.lock").exists(),
        b.join("flake.lock").exists(),
        "nix said: {nix_err}"
    );
    if a.join("flake.lock").exists() {
        assert_eq!(read(&b.join("flake.lock")), read(&a.join("flake.lock")));
    }
}

/// `flake metadata --json` for the reference examples: envy's JSON is Nix's, and Nix 2.8
/// accepts the lock file envy wrote without changing it (`--no-update-lock-file`).
#[test]
fn metadata_matches_nix_and_nix_accepts_envys_lock() {
    if !common::flake::have_examples() {
        return;
    }
    let Some(w) = nix_world() else { return };
    let regs = examples_registries();
    for name in ["ex1-noinputs", "ex3-inputs", "ex4-follows", "ex6-relpath"] {
        let dir = example_copy(&w, name);
        let fetcher = Fetcher::new(w.fetch_settings());
        let reader = NixFlakeReader { env: w.env() };
        let locker = Locker::new(&fetcher, &regs, &reader);
        let top = FlakeRef::parse(".", Some(&dir)).unwrap();
        let locked = locker.lock_flake(&top, &LockFlags::default()).unwrap();
        let ours = envy_flake::metadata::metadata_json(&locked);
        // Nix reads the lock envy wrote and must not want to change it. Its user registry
        // knows `mylib` too.
        w.give_nix_user_registry(&regs);
        let nix = w.nix_json(
            &dir,
            &["flake", "metadata", "--json", "--no-update-lock-file", "."],
        );
        assert_eq!(ours, nix, "{name}");
    }
}

/// `follows` in an override two levels down (Nix 2.18+ semantics; 2.8 fails on these): the
/// target is relative to the flake that declares the override, here the root.
#[test]
fn deep_overrides_follow_from_the_declaring_flake() {
    let w = FlakeWorld::new();
    let c = w.git_repo(
        "deps/c",
        &[("flake.nix", "{ outputs = { self }: { v = \"c\"; }; }\n")],
    );
    let x = w.git_repo(
        "deps/x",
        &[("flake.nix", "{ outputs = { self }: { v = \"x\"; }; }\n")],
    );
    let b = w.git_repo(
        "deps/b",
        &[(
            "flake.nix",
            &format!("{{ inputs.c.url = \"git+file://{}\"; outputs = {{ self, c }}: {{ v = c.v; }}; }}\n", c.display()),
        )],
    );
    let a = w.git_repo(
        "deps/a",
        &[(
            "flake.nix",
            &format!("{{ inputs.b.url = \"git+file://{}\"; outputs = {{ self, b }}: {{ v = b.v; }}; }}\n", b.display()),
        )],
    );
    let root = w.git_repo(
        "root",
        &[(
            "flake.nix",
            &format!(
                "{{\n  inputs.a.url = \"git+file://{}\";\n  inputs.x.url = \"git+file://{}\";\n  inputs.a.inputs.b.inputs.c.follows = \"x\";\n  outputs = {{ self, a, x }}: {{ v = a.v; }};\n}}\n",
                a.display(),
                x.display()
            ),
        )],
    );
    let regs = Registries::default();
    let (mut ev, session) = common::flake::eval_session(&w, regs.clone());
    let top = FlakeRef::parse(".", Some(&root)).unwrap();
    let locked = session.lock(&mut ev, &top, &LockFlags::default()).unwrap();
    let lock = &locked.lock;
    let b_node = lock.find_input(&["a".into(), "b".into()]).unwrap();
    assert_eq!(
        lock.node(b_node).inputs.get("c"),
        Some(&envy_flake::Edge::Follows(vec!["x".to_string()])),
        "{}",
        lock.to_text()
    );
    // And the value goes through the follows.
    let v = common::flake::envy_flake_attr(&w, regs, &root, "v").unwrap();
    assert_eq!(v, serde_json::Value::String("x".into()));
}
