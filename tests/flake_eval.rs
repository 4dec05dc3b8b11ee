//! Flakes evaluated by envy's evaluator against Nix 2.8: output values through inputs of
//! every kind, and the attributes of `self` and of inputs (clean and dirty git, path,
//! tarball, `flake = false`) as `call-flake` gives them.

mod common;

use common::flake::{FlakeWorld, copy_tree, envy_flake_attr, examples};
use envy_flake::registry::Registry;
use envy_flake::{FlakeRef, Registries};
use serde_json::Value;

fn registries(entries: &[(&str, &str)]) -> Registries {
    let mut r = Registry::default();
    for (id, to) in entries {
        r.add(
            envy_fetch::Input::from_url(&format!("flake:{id}")).unwrap(),
            FlakeRef::parse(to, None).unwrap(),
        );
    }
    Registries {
        layers: vec![("user".into(), r)],
        lazy: Vec::new(),
    }
}

#[test]
fn reference_examples_evaluate_as_nix_does() {
    if !common::have_tool("nix") {
        return;
    }
    let ex = examples();
    let w = FlakeWorld::new();
    let regs = || registries(&[("mylib", &format!("git+file://{}/deps/lib", ex.display()))]);
    let dir = w.path("ex3");
    copy_tree(&ex.join("ex3-inputs"), &dir);
    let values = envy_flake_attr(&w, regs(), &dir, "values").unwrap();
    let expected: Value = serde_json::from_str(
        &fs_err::read_to_string(ex.join("artifacts/ex3-inputs.values.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(values, expected);

    let dir = w.path("ex4");
    copy_tree(&ex.join("ex4-follows"), &dir);
    let names = envy_flake_attr(&w, regs(), &dir, "names").unwrap();
    let nix = w.nix_json(&dir, &["eval", "--json", ".#names"]);
    assert_eq!(names, nix);

    let dir = w.path("ex6");
    copy_tree(&ex.join("ex6-relpath"), &dir);
    assert_eq!(
        envy_flake_attr(&w, regs(), &dir, "value").unwrap(),
        Value::String("sub".into())
    );
}

/// The attribute names and values of `self` and of each input, for every kind of source.
#[test]
fn self_and_input_attributes_match_nix() {
    if !common::have_tool("nix") {
        return;
    }
    let w = FlakeWorld::new();
    let gitdep = w.git_repo(
        "deps/gitdep",
        &[("flake.nix", "{ outputs = { self }: { x = 1; }; }\n")],
    );
    let pathdep = w.path("deps/pathdep");
    w.write(
        &pathdep,
        &[("flake.nix", "{ outputs = { self }: { y = 2; }; }\n")],
    );
    w.fix_mtimes(&pathdep, 1_706_832_000);
    let data = w.path("deps/data");
    w.write(&data, &[("a.txt", "a\n")]);
    w.fix_mtimes(&data, 1_706_832_000);
    let src = w.path("tarsrc");
    w.write(
        &src,
        &[("t/flake.nix", "{ outputs = { self }: { z = 3; }; }\n")],
    );
    w.fix_mtimes(&src, 1_709_424_000);
    let tar = w.path("deps/t.tar.gz");
    let out = std::process::Command::new("tar")
        .args([
            "-C",
            &src.display().to_string(),
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-czf",
        ])
        .arg(&tar)
        .arg("t")
        .output()
        .unwrap();
    assert!(out.status.success());
    // Everything but store paths of inputs that differ only by their location.
    let describe = r#"
      let show = v: map (n: let x = v.${n}; in [ n (
            if builtins.isFunction x then "<lambda>"
            else if builtins.isAttrs x then builtins.attrNames x
            else x) ]) (builtins.attrNames v);
      in {
        self = show (builtins.removeAttrs self [ "outputs" "inputs" "sourceInfo" ]);
        inputNames = builtins.attrNames self.inputs;
        gitdep = show (builtins.removeAttrs gitdep [ "outputs" "inputs" "sourceInfo" ]);
        pathdep = show (builtins.removeAttrs pathdep [ "outputs" "inputs" "sourceInfo" ]);
        tardep = show (builtins.removeAttrs tardep [ "outputs" "inputs" "sourceInfo" ]);
        data = show data;
        dataFile = builtins.readFile "${data}/a.txt";
        sourceInfoNames = builtins.attrNames self.sourceInfo;
      }"#;
    let flake = format!(
        "{{\n  description = \"attrs\";\n  inputs.gitdep.url = \"git+file://{}\";\n  inputs.pathdep.url = \"path:{}\";\n  inputs.tardep.url = \"file://{}\";\n  inputs.data = {{ url = \"path:{}\"; flake = false; }};\n  outputs = {{ self, gitdep, pathdep, tardep, data }}: {{ info = {describe}; }};\n}}\n",
        gitdep.display(),
        pathdep.display(),
        tar.display(),
        data.display()
    );
    let a = w.git_repo("a", &[("flake.nix", &flake), ("lib.nix", "1\n")]);
    let out = w.nix(&a, &["flake", "lock"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.commit(&a, "lock");
    // Clean, then dirty (an edit and an untracked file).
    for state in ["clean", "dirty"] {
        if state == "dirty" {
            w.write(&a, &[("lib.nix", "2\n"), ("untracked.nix", "u\n")]);
        }
        let b = w.path(&format!("b-{state}"));
        copy_tree(&a, &b);
        let nix = w.nix_json(&a, &["eval", "--json", ".#info"]);
        let ours = envy_flake_attr(&w, Registries::default(), &b, "info").unwrap();
        // `outPath` of self differs only when the directory name is part of the tree: it is
        // not, so everything must match.
        assert_eq!(ours, nix, "{state}");
    }
}

#[test]
fn get_flake_and_fetch_builtins_match_nix() {
    if !common::have_tool("nix") {
        return;
    }
    let ex = examples();
    let w = FlakeWorld::new();
    let regs = registries(&[("mylib", &format!("git+file://{}/deps/lib", ex.display()))]);
    // The locked examples (their lock files are committed).
    let exprs = [
        format!(
            "(builtins.getFlake \"git+file://{}/ex3-inputs\").values",
            ex.display()
        ),
        format!(
            "builtins.attrNames (builtins.getFlake \"git+file://{}/ex4-follows\")",
            ex.display()
        ),
        format!(
            "builtins.attrNames (builtins.getFlake \"path:{}/ex2-pathflake\")",
            ex.display()
        ),
        format!(
            "let t = builtins.fetchGit {}/deps/lib; in [ t.rev t.revCount t.narHash t.outPath ]",
            ex.display()
        ),
        format!(
            "\"${{builtins.fetchTarball \"file://{}/deps/tardep.tar.gz\"}}\"",
            ex.display()
        ),
        format!(
            "let t = builtins.fetchTree {{ type = \"git\"; url = \"file://{}/deps/gitdep\"; ref = \"main\"; }}; in [ t.lastModifiedDate t.shortRev t.outPath ]",
            ex.display()
        ),
    ];
    // Nix needs the registry for `mylib` too.
    let reg = w.path("config/nix/registry.json");
    fs_err::create_dir_all(reg.parent().unwrap()).unwrap();
    regs.layers[0].1.write(&reg).unwrap();
    for expr in &exprs {
        let nix = w.nix_json(w.root(), &["eval", "--impure", "--json", "--expr", expr]);
        let (mut ev, _session) = common::flake::eval_session(&w, regs.clone());
        let v = ev
            .eval_string(expr, "/")
            .unwrap_or_else(|e| panic!("{expr}: {}", e.render(false)));
        let ours = envy_flake::nix_value::to_json(&mut ev, &v, envy_eval::Pos::NONE)
            .unwrap_or_else(|e| panic!("{expr}: {}", e.render(false)));
        assert_eq!(ours, nix, "{expr}");
    }
    // A stale lock is an error for getFlake, as in Nix.
    let dir = w.path("stale");
    copy_tree(&ex.join("ex3-inputs"), &dir);
    let text = fs_err::read_to_string(dir.join("flake.nix")).unwrap();
    fs_err::write(
        dir.join("flake.nix"),
        text.replace(
            "indirect.url = \"mylib\";",
            "indirect.url = \"mylib\"; extra.url = \"mylib\";",
        ),
    )
    .unwrap();
    let (mut ev, _session) = common::flake::eval_session(&w, regs.clone());
    let e = ev
        .eval_string(
            &format!("builtins.getFlake \"git+file://{}\"", dir.display()),
            "/",
        )
        .and_then(|v| ev.force_deep(&v, envy_eval::Pos::NONE))
        .unwrap_err()
        .render(false);
    assert!(e.contains("requires lock file changes"), "{e}");
}

/// Paths in a flake are copied when interpolated, as Nix 2.8 does: `"${./.}"` is a new
/// `<hash>-<hash>-source` path and `"${./flake.nix}"` a `<hash>-flake.nix` one; `"${self}"`
/// is the source itself.
#[test]
fn paths_inside_a_flake_copy_as_in_nix() {
    if !common::have_tool("nix") {
        return;
    }
    let w = FlakeWorld::new();
    let dir = w.path("p");
    w.write(
        &dir,
        &[(
            "flake.nix",
            "{ outputs = { self }: { v = [ \"${./.}\" \"${./flake.nix}\" \"${self}\" ]; }; }\n",
        )],
    );
    let ours = envy_flake_attr(&w, Registries::default(), &dir, "v").unwrap();
    let nix = w.nix_json(
        &dir,
        &["eval", "--json", &format!("path:{}#v", dir.display())],
    );
    assert_eq!(ours, nix);
}
