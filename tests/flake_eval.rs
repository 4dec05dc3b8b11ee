//! Flakes evaluated by envy's evaluator against Nix 2.8: output values through inputs of
//! every kind, and the attributes of `self` and of inputs (clean and dirty git, path,
//! tarball, `flake = false`) as `call-flake` gives them.

mod common;

use common::flake::{copy_tree, envy_flake_attr, examples, examples_registries, nix_world};
use envy_flake::Registries;
use serde_json::Value;

#[test]
fn reference_examples_evaluate_as_nix_does() {
    if !common::flake::have_examples() {
        return;
    }
    let Some(w) = nix_world() else { return };
    let ex = examples();
    let regs = examples_registries;
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
    let Some(w) = nix_world() else { return };
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
    w.tarball(&src, "t", "-z", &tar);
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
    w.nix_ok(&a, &["flake", "lock"]);
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
    if !common::flake::have_examples() {
        return;
    }
    let Some(w) = nix_world() else { return };
    let ex = examples();
    let regs = examples_registries();
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
    w.give_nix_user_registry(&regs);
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
    let Some(w) = nix_world() else { return };
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
