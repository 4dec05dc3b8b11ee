//! Error messages and value printing worded as Nix 2.36 words them (learned from Nix's
//! evaluator, its value printer and its language tests): the first difference an equality
//! assertion explains, builtins' type errors with the value printed, invalid derivation
//! names, the flake-reference builtins, `readDir` through a symlink, and how repeated values
//! print.

use std::path::Path;

use envy_eval::{Evaluator, Pos, print, run_with_stack};

/// Evaluate `text` strictly: the printed value, or the final `error:` line of the full
/// rendered error and the whole text.
fn eval(text: &str) -> Result<String, (String, String)> {
    let text = text.to_string();
    run_with_stack(move || {
        let mut ev = Evaluator::builder().build();
        let v = ev
            .eval_string(&text, "/")
            .and_then(|v| ev.force_deep(&v, Pos::NONE));
        match v {
            Ok(v) => Ok(String::from_utf8_lossy(&print::print_value(&v)).into_owned()),
            Err(e) => {
                let full = e.render(true);
                let last = full
                    .lines()
                    .rev()
                    .find_map(|l| l.trim_start().strip_prefix("error: "))
                    .unwrap_or_default()
                    .to_string();
                Err((last, full))
            }
        }
    })
}

fn error(text: &str) -> String {
    match eval(text) {
        Ok(v) => panic!("`{text}` evaluated to {v}"),
        Err((last, _)) => last,
    }
}

fn full_error(text: &str) -> String {
    match eval(text) {
        Ok(v) => panic!("`{text}` evaluated to {v}"),
        Err((_, full)) => full,
    }
}

#[test]
fn equality_assertions_explain_numbers() {
    for (expr, msg) in [
        (
            "assert 1 == 2; 0",
            "an integer with value '1' is not equal to an integer with value '2'",
        ),
        (
            "assert 1.0 == 1.01; 0",
            "a float with value '1' is not equal to a float with value '1.01'",
        ),
        (
            "assert 1 == 1.1; 0",
            "an integer with value '1' is not equal to a float with value '1.1'",
        ),
        (
            "assert 2.5 == 3; 0",
            "a float with value '2.5' is not equal to an integer with value '3'",
        ),
    ] {
        assert_eq!(error(expr), msg, "{expr}");
    }
    // Equal numbers of either type do not fail.
    assert_eq!(eval("assert 1 == 1.0; 7"), Ok("7".into()));
}

#[test]
fn equality_assertions_explain_other_types() {
    for (expr, msg) in [
        (
            "assert \"a\" == \"b\"; 0",
            "string '\"a\"' is not equal to string '\"b\"'",
        ),
        (
            "assert true == false; 0",
            "boolean 'true' is not equal to boolean 'false'",
        ),
        (
            "assert false == null; 0",
            "a Boolean of value 'false' is not equal to null of value 'null'",
        ),
        ("assert /a == /b; 0", "path '/a' is not equal to path '/b'"),
        (
            "assert [ 1 0 ] == [ 10 ]; 0",
            "list of size '2' is not equal to list of size '1', left hand side is '[ 1 0 ]', right hand side is '[ 10 ]'",
        ),
        (
            "assert (x: x) == (x: x); 0",
            "distinct functions and immediate comparisons of identical functions compare as unequal",
        ),
        (
            "assert { a = 1; b = 2; } == { a = 1; }; 0",
            "attribute names of attribute set '{ a = 1; b = 2; }' differs from attribute set '{ a = 1; }'",
        ),
        // Same size, different names: the name found on one side only, in `==`'s order
        // (symbols in the order they were first seen).
        (
            "assert { b = 1; } == { a = 1; }; 0",
            "attribute name 'b' is contained in '{ b = 1; }', but not in '{ a = 1; }'",
        ),
        (
            "let x = { a = 1; }; in assert x == { b = 1; }; 0",
            "attribute name 'a' is contained in '{ a = 1; }', but not in '{ b = 1; }'",
        ),
        (
            "assert { p = 1; q = 2; } == { q = 2; r = 3; }; 0",
            "attribute name 'p' is contained in '{ p = 1; q = 2; }', but not in '{ q = 2; r = 3; }'",
        ),
        (
            "assert { zeta1 = 1; omega1 = 2; } == { alpha1 = 2; omega1 = 3; }; 0",
            "attribute name 'zeta1' is contained in '{ omega1 = 2; zeta1 = 1; }', but not in '{ alpha1 = 2; omega1 = 3; }'",
        ),
        (
            "let r = { k1 = 1; m1 = 1; }; in assert { m1 = 1; n1 = 1; } == r; 0",
            "attribute name 'k1' is missing in '{ m1 = 1; n1 = 1; }', but is contained in '{ k1 = 1; m1 = 1; }'",
        ),
    ] {
        assert_eq!(error(expr), msg, "{expr}");
    }
}

#[test]
fn equality_assertions_show_where_the_difference_is() {
    let full =
        full_error("assert { a.b = [ { c = 1; } ]; } == { a.b = [ { c = 2; } ]; };\nabort \"x\"");
    let frames: Vec<&str> = full
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("… "))
        .collect();
    assert_eq!(
        frames,
        [
            "while evaluating the condition of the assertion '({ a = { b = [ ({ c = 1; }) ]; }; } == { a = { b = [ ({ c = 2; }) ]; }; })'",
            "while comparing attribute 'a'",
            "where left hand side is",
            "where right hand side is",
            "while comparing attribute 'b'",
            "where left hand side is",
            "where right hand side is",
            "while comparing list element 0",
            "while comparing attribute 'c'",
            "where left hand side is",
            "where right hand side is",
        ],
        "{full}"
    );
    // "while comparing" points at the `==` (column 34), the sides at their attributes.
    assert!(
        full.contains("… while comparing attribute 'a'\n         at «string»:1:34:"),
        "{full}"
    );
    assert!(
        full.ends_with(
            "error: an integer with value '1' is not equal to an integer with value '2'\n"
        ) || full.trim_end().ends_with(
            "error: an integer with value '1' is not equal to an integer with value '2'"
        ),
        "{full}"
    );
    // Derivations compare by their outPath.
    let drv = full_error(
        "assert { type = \"derivation\"; outPath = \"/nix/store/0\"; } == { type = \"derivation\"; outPath = \"/nix/store/1\"; x = 1; }; 0",
    );
    assert!(
        drv.contains("… while comparing a derivation by its 'outPath' attribute"),
        "{drv}"
    );
    assert!(
        drv.contains("string '\"/nix/store/0\"' is not equal to string '\"/nix/store/1\"'"),
        "{drv}"
    );
    // Any other failed condition is the plain message (`<` shown as Nix desugars it).
    assert_eq!(
        error("assert 1 < 0; 0"),
        "assertion '(__lessThan 1 0)' failed"
    );
    assert_eq!(error("assert false; 0"), "assertion 'false' failed");
}

#[test]
fn builtin_type_errors_print_the_value() {
    for (expr, msg) in [
        (
            "builtins.replaceStrings [ \"old\" ] [ \"new\" ] { }",
            "expected a string but found a set: { }",
        ),
        (
            "builtins.replaceStrings [ \"a\" ] [ \"b\" ] /some/path",
            "expected a string but found a path: /some/path",
        ),
        (
            "builtins.replaceStrings [ \"a\" ] [ \"b\" ] { __toString = self: \"a\"; }",
            "expected a string but found a set: { __toString = «lambda __toString @ «string»:1:56»; }",
        ),
        (
            "builtins.replaceStrings [ \"oo\" ] [ true ] \"foo\"",
            "expected a string but found a Boolean: true",
        ),
        (
            "builtins.stringLength [ 1 { a = \"x\"; } ]",
            // A set in a list literal is not evaluated yet (as in Nix).
            "cannot coerce a list to a string: [ 1 «thunk» ]",
        ),
        (
            "builtins.attrNames [ 1 2 3 4 5 6 7 8 9 10 11 12 ]",
            "expected a set but found a list: [ 1 2 3 4 5 6 7 8 9 10 «2 items elided» ]",
        ),
    ] {
        assert_eq!(error(expr), msg, "{expr}");
    }
    // Strings with context are still replaced in.
    assert_eq!(
        eval("builtins.replaceStrings [ \"o\" ] [ \"a\" ] \"foo\""),
        Ok("\"faa\"".into())
    );
}

#[test]
fn invalid_derivation_names_say_what_to_do() {
    assert_eq!(
        error("derivation { name = \"~jiggle~\"; system = \"x\"; builder = \"/bin/sh\"; }"),
        "invalid derivation name: name '~jiggle~' contains illegal character '~'. Please pass a different 'name'."
    );
    assert_eq!(
        error("derivation { name = \"\"; system = \"x\"; builder = \"/bin/sh\"; }"),
        "invalid derivation name: name must not be empty. Please pass a different 'name'."
    );
}

#[test]
fn parse_flake_ref_gives_the_attributes() {
    for (r, attrs, back) in [
        (
            "github:NixOS/nixpkgs/23.05?dir=lib",
            "{ dir = \"lib\"; owner = \"NixOS\"; ref = \"23.05\"; repo = \"nixpkgs\"; type = \"github\"; }",
            "github:NixOS/nixpkgs/23.05?dir=lib",
        ),
        (
            "nixpkgs/nixos-23.05",
            "{ id = \"nixpkgs\"; ref = \"nixos-23.05\"; type = \"indirect\"; }",
            "flake:nixpkgs/nixos-23.05",
        ),
        (
            "nixpkgs",
            "{ id = \"nixpkgs\"; type = \"indirect\"; }",
            "flake:nixpkgs",
        ),
        (
            "git+https://example.org/x.git?ref=main&rev=0123456789abcdef0123456789abcdef01234567",
            "{ ref = \"main\"; rev = \"0123456789abcdef0123456789abcdef01234567\"; type = \"git\"; url = \"https://example.org/x.git\"; }",
            "git+https://example.org/x.git?ref=main&rev=0123456789abcdef0123456789abcdef01234567",
        ),
        (
            "/abs/dir",
            "{ path = \"/abs/dir\"; type = \"path\"; }",
            "path:/abs/dir",
        ),
        (
            "path:/abs/dir?dir=sub",
            "{ dir = \"sub\"; path = \"/abs/dir\"; type = \"path\"; }",
            "path:/abs/dir?dir=sub",
        ),
    ] {
        assert_eq!(
            eval(&format!("builtins.parseFlakeRef \"{r}\"")),
            Ok(attrs.to_string()),
            "{r}"
        );
        // And back.
        assert_eq!(
            eval(&format!(
                "builtins.flakeRefToString (builtins.parseFlakeRef \"{r}\")"
            )),
            Ok(format!("\"{back}\"")),
            "{r}"
        );
    }
    assert_eq!(
        error("builtins.parseFlakeRef \"./relative\""),
        "flake reference './relative' is not an absolute path"
    );
    assert_eq!(
        error("builtins.parseFlakeRef \"github:a/b#frag\""),
        "unexpected fragment 'frag' in flake reference 'github:a/b#frag'"
    );
    assert_eq!(
        error("builtins.parseFlakeRef 1"),
        "expected a string but found an integer: 1"
    );
}

#[test]
fn flake_ref_to_string_checks_its_argument() {
    assert_eq!(
        eval(
            "builtins.flakeRefToString { dir = \"lib\"; owner = \"NixOS\"; ref = \"23.05\"; repo = \"nixpkgs\"; type = \"github\"; }"
        ),
        Ok("\"github:NixOS/nixpkgs/23.05?dir=lib\"".into())
    );
    assert_eq!(
        error(
            "builtins.flakeRefToString { type = \"github\"; owner = \"a\"; repo = \"b\"; x = [ ]; }"
        ),
        "flake reference attribute sets may only contain integers, Booleans, and strings, but attribute 'x' is a list"
    );
    assert_eq!(
        error(
            "builtins.flakeRefToString { type = \"tarball\"; url = \"https://x/y.tar.gz\"; revCount = -1; }"
        ),
        "negative value given for flake ref attr revCount: -1"
    );
    assert_eq!(
        error("builtins.flakeRefToString 1"),
        "expected a set but found an integer: 1"
    );
}

#[test]
fn read_dir_through_a_symlink_names_the_target() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().canonicalize().unwrap();
    fs_err::create_dir_all(root.join("foo")).unwrap();
    fs_err::write(root.join("foo/file"), "x").unwrap();
    std::os::unix::fs::symlink("foo/file", root.join("linked")).unwrap();
    std::os::unix::fs::symlink("foo", root.join("ldir")).unwrap();
    std::os::unix::fs::symlink(root.join("linked"), root.join("chain")).unwrap();
    let target = root.join("foo/file");
    for link in ["linked", "ldir/file", "chain"] {
        let p = root.join(link);
        assert_eq!(
            error(&format!("builtins.readDir {}", p.display())),
            format!("'{}' is not a directory", target.display()),
            "{link}"
        );
    }
    // Through a symlinked directory, it reads the directory.
    assert_eq!(
        eval(&format!("builtins.readDir {}", root.join("ldir").display())),
        Ok("{ file = \"regular\"; }".into())
    );
    assert!(Path::new(&target).exists());
}

#[test]
fn repeated_values_print_as_nix_prints_them() {
    // `nix-instantiate --eval --strict`: a set or list seen before is «repeated» (empty
    // ones are printed again); a set containing itself ends there.
    assert_eq!(
        eval("let a = { x = 1; }; l = [ 1 ]; in { p = a; q = a; r = l; s = l; e = { }; f = { }; n = [ ]; m = [ ]; }"),
        Ok("{ e = { }; f = { }; m = [ ]; n = [ ]; p = { x = 1; }; q = «repeated»; r = [ 1 ]; s = «repeated»; }".into())
    );
    assert_eq!(
        eval("let x = { a = 1; b = x; }; in x"),
        Ok("{ a = 1; b = «repeated»; }".into())
    );
    assert_eq!(
        eval("let l = [ 1 ]; in [ l l ]"),
        Ok("[ [ 1 ] «repeated» ]".into())
    );
    // In messages too (Nix's value printer tracks repeated sets and lists), which force
    // nothing: what was not evaluated yet is a «thunk».
    assert_eq!(
        error("let a = { x = 1; }; l = [ a a ]; in builtins.deepSeq l (builtins.attrNames l)"),
        "expected a set but found a list: [ { x = 1; } «repeated» ]"
    );
    assert_eq!(
        error("let a = { x = 1; }; in builtins.attrNames [ a a ]"),
        "expected a set but found a list: [ «thunk» «thunk» ]"
    );
}

#[test]
fn to_json_peels_out_path_and_to_string() {
    for (expr, json) in [
        ("{ outPath = \"/nix/store/x\"; a = 1; }", "\"/nix/store/x\""),
        ("{ __toString = self: \"str\"; a = 1; }", "\"str\""),
        // `__toString` is looked at before `outPath`.
        (
            "{ __toString = self: \"str\"; outPath = \"/o\"; }",
            "\"str\"",
        ),
        // `outPath` is peeled as long as it is a set.
        ("{ outPath = { outPath = \"/deep\"; }; }", "\"/deep\""),
        (
            "[ { outPath = \"/a\"; } { b = { outPath = \"/b\"; }; } ]",
            "[\"/a\",{\"b\":\"/b\"}]",
        ),
    ] {
        assert_eq!(
            eval(&format!("builtins.toJSON ({expr})")),
            Ok(format!("{:?}", json)),
            "{expr}"
        );
    }
}
