//! Nix's own language tests as Nix 2.8 released them (`tests/lang` of the `nix-2.8.0` release
//! tarball, pinned by hash), run by the rules of that release's `tests/lang.sh`: parse-okay
//! must parse, parse-fail and eval-fail must fail, eval-okay must print its `.exp` (with
//! `--eval --strict` and its `.flags`, `NIX_PATH=lang/dir3:lang/dir4`) and its `.exp.xml`
//! (with `--xml --no-location`).
//!
//! The data does not live in this repository: `scripts/test` fetches and verifies it into
//! `.fixtures/` and points `ENVY_TEST_NIX_LANG` at the directory holding `lang/`. Without it
//! this test says so and skips (it fails when `ENVY_TEST_REQUIRE_NIX_LANG` is set, as
//! `scripts/test` sets it once the data is there). Failures envy is known to have on this
//! older suite are in `tests/eval_conformance_upstream_known_failures.txt`, each with why.

mod common;
#[path = "common/eval.rs"]
mod eval_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eval_common::envy_eval;

const KNOWN_FAILURES: &str = include_str!("eval_conformance_upstream_known_failures.txt");

fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os("ENVY_TEST_NIX_LANG")?);
    dir.join("lang").is_dir().then_some(dir)
}

fn read(p: &Path) -> Option<Vec<u8>> {
    fs_err::read(p).ok()
}

/// Whether envy passes one test, and what it printed when it does not.
fn run_one(dir: &Path, home: &Path, name: &str) -> Result<(), String> {
    let lang = dir.join("lang");
    let env = [("TEST_VAR", "foo"), ("NIX_PATH", "lang/dir3:lang/dir4")];
    let store = ["--store-dir", "/nix/store", "--read-only"].map(String::from);
    let run = |args: Vec<String>, stdin: Option<Vec<u8>>| {
        let mut args = args;
        args.extend(store.iter().cloned());
        let mut cmd = envy_eval(dir, home, &env, &args);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            let _ = input.write_all(&stdin.unwrap_or_default());
        }
        child.wait_with_output().unwrap()
    };
    let file = format!("lang/{name}.nix");
    let show = |out: &std::process::Output| {
        format!(
            "exit {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    if name.starts_with("parse-") {
        let out = run(
            vec!["--parse".into(), "-".into()],
            read(&lang.join(format!("{name}.nix"))),
        );
        let ok = out.status.success() == name.starts_with("parse-okay");
        return if ok { Ok(()) } else { Err(show(&out)) };
    }
    if name.starts_with("eval-fail") {
        let out = run(vec!["--eval".into(), file], None);
        return if out.status.success() {
            Err(show(&out))
        } else {
            Ok(())
        };
    }
    if let Some(exp) = read(&lang.join(format!("{name}.exp"))) {
        let mut args: Vec<String> = read(&lang.join(format!("{name}.flags")))
            .map(|f| {
                String::from_utf8_lossy(&f)
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        args.extend(["--eval".into(), "--strict".into(), file.clone()]);
        let out = run(args, None);
        if !out.status.success() || out.stdout != exp {
            return Err(format!(
                "{}--- expected\n{}",
                show(&out),
                String::from_utf8_lossy(&exp)
            ));
        }
    }
    if let Some(exp) = read(&lang.join(format!("{name}.exp.xml"))) {
        let args = ["--eval", "--xml", "--no-location", "--strict"].map(String::from);
        let mut args = args.to_vec();
        args.push(file);
        let out = run(args, None);
        if !out.status.success() || out.stdout != exp {
            return Err(format!(
                "(xml) {}--- expected\n{}",
                show(&out),
                String::from_utf8_lossy(&exp)
            ));
        }
    }
    Ok(())
}

#[test]
fn nix_2_8_language_suite() {
    let Some(dir) = data_dir() else {
        let why = "no Nix 2.8 language tests: ENVY_TEST_NIX_LANG is unset or has no lang/ \
                   (scripts/test fetches them into .fixtures/; offline it cannot)";
        if std::env::var_os("ENVY_TEST_REQUIRE_NIX_LANG").is_some() {
            panic!("{why}");
        }
        std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("SKIPPED: {why}\n").as_bytes(),
        )
        .unwrap();
        return;
    };
    let dir = fs_err::canonicalize(dir).unwrap();
    let mut names: Vec<String> = fs_err::read_dir(dir.join("lang"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".nix").map(str::to_string))
        .filter(|n| {
            ["parse-okay-", "parse-fail-", "eval-okay-", "eval-fail-"]
                .iter()
                .any(|c| n.starts_with(c))
        })
        .collect();
    names.sort();
    let known: BTreeMap<&str, &str> = KNOWN_FAILURES
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split_once(':')
                .map_or((l, ""), |(n, r)| (n.trim(), r.trim()))
        })
        .collect();
    let home = tempfile::tempdir().unwrap();
    let (mut passed, mut unexpected, mut fixed) = (0, Vec::new(), Vec::new());
    for name in &names {
        match (
            run_one(&dir, home.path(), name),
            known.contains_key(name.as_str()),
        ) {
            (Ok(()), false) => passed += 1,
            (Ok(()), true) => fixed.push(name.clone()),
            (Err(_), true) => {}
            (Err(detail), false) => unexpected.push((name.clone(), detail)),
        }
    }
    let summary = format!(
        "Nix 2.8 language suite: {passed} of {} passed, {} known failures\n",
        names.len(),
        names.len() - passed - unexpected.len() - fixed.len()
    );
    std::io::Write::write_all(&mut std::io::stderr(), summary.as_bytes()).unwrap();
    for (name, detail) in &unexpected {
        println!("=== UNEXPECTED FAILURE {name}\n{detail}");
    }
    assert!(
        names.len() > 100,
        "only {} tests in {}",
        names.len(),
        dir.display()
    );
    assert!(
        fixed.is_empty(),
        "known failures now pass, remove them: {fixed:?}"
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures",
        unexpected.len()
    );
}

fn fetch(url: &str, dest: &Path) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-nix-lang-tests");
    std::process::Command::new(script)
        .arg(dest)
        .env("ENVY_TEST_NIX_LANG_TESTS", url)
        .output()
        .unwrap()
}

#[test]
fn fetching_checks_the_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let bogus = tmp.path().join("nix_2.8.0.orig.tar.xz");
    fs_err::write(&bogus, b"not nix").unwrap();
    let dest = tmp.path().join("tests");
    let out = fetch(&format!("file://{}", bogus.display()), &dest);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not have sha256"), "{err}");
    assert!(!dest.exists());
}

#[test]
fn fetching_from_a_local_copy() {
    // The tarball scripts/test fetched and verified, if it did.
    let Some(tarball) = data_dir()
        .map(|d| d.join("nix_2.8.0.orig.tar.xz"))
        .filter(|t| t.is_file())
    else {
        std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: no verified Nix 2.8 tarball (ENVY_TEST_NIX_LANG unset: scripts/test fetches it)\n",
        )
        .unwrap();
        assert!(std::env::var_os("ENVY_TEST_REQUIRE_NIX_LANG").is_none());
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("tests");
    let out = fetch(&format!("file://{}", tarball.display()), &dest);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |d: &Path| fs_err::read_dir(d.join("lang")).unwrap().count();
    assert_eq!(count(&dest), count(&data_dir().unwrap()));
}
