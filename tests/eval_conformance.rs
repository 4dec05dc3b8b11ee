//! Nix's language test suite (`../shared/conformance/nix/lang`, from NixOS/nix) run against
//! `envy eval` exactly as that folder's README describes. Prints `N passed, N failed` per
//! category. Tests known to fail are listed with a reason in
//! `tests/eval_conformance_known_failures.txt`; this test fails when a test not on the list
//! fails, and when a listed test passes (so the list only shrinks).
//!
//! Pass criteria: parse tests compare the whole output; eval-okay compares stdout and
//! stderr; eval-fail requires exit code 1 and the same final `error: …` line (the whole
//! text matching is counted and printed too).

mod common;
#[path = "common/eval.rs"]
mod eval_common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eval_common::{combined, envy_eval, final_error_line};

const KNOWN_FAILURES: &str = include_str!("eval_conformance_known_failures.txt");

#[derive(Debug)]
struct Outcome {
    category: &'static str,
    name: String,
    passed: bool,
    full_text: bool,
    detail: String,
}

fn category(name: &str) -> Option<&'static str> {
    ["parse-okay", "parse-fail", "eval-okay", "eval-fail"]
        .into_iter()
        .find(|c| name.starts_with(&format!("{c}-")))
}

fn read(p: &Path) -> Option<String> {
    fs_err::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn flags_of(dir: &Path, name: &str) -> Option<Vec<String>> {
    let text = read(&dir.join(format!("{name}.flags")))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        out.extend(line.split_whitespace().map(str::to_string));
    }
    Some(out)
}

fn run_one(nix_dir: &Path, home: &Path, name: &str) -> Outcome {
    let lang = nix_dir.join("lang");
    let cat = category(name).expect("categorised");
    let pwd = nix_dir.to_string_lossy().into_owned();
    let rewrite = |s: String| s.replace(&pwd, "/pwd");
    let file = format!("lang/{name}.nix");
    let store = [
        "--store-dir".to_string(),
        "/nix/store".into(),
        "--read-only".into(),
    ];
    let home_s = home.to_string_lossy().into_owned();
    let mut o = Outcome {
        category: cat,
        name: name.to_string(),
        passed: false,
        full_text: false,
        detail: String::new(),
    };
    match cat {
        "parse-okay" | "parse-fail" => {
            let input = fs_err::read(lang.join(format!("{name}.nix"))).unwrap();
            let mut cmd = envy_eval(
                nix_dir,
                home,
                &[("TEST_VAR", "foo")],
                &["--parse".into(), "-".into()],
            );
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            {
                use std::io::Write;
                let _ = child.stdin.take().unwrap().write_all(&input);
            }
            let out = child.wait_with_output().unwrap();
            if cat == "parse-okay" {
                let exp = read(&lang.join(format!("{name}.exp"))).unwrap_or_default();
                let got = rewrite(String::from_utf8_lossy(&out.stdout).into_owned());
                o.passed = out.status.code() == Some(0) && got == exp;
                o.detail = format!(
                    "exit {:?}\n--- got\n{got}{}\n--- expected\n{exp}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                );
            } else {
                let exp = read(&lang.join(format!("{name}.err.exp"))).unwrap_or_default();
                let got = rewrite(combined(&out));
                o.passed = out.status.code() == Some(1) && got.trim_end() == exp.trim_end();
                o.detail = format!(
                    "exit {:?}\n--- got\n{got}\n--- expected\n{exp}",
                    out.status.code()
                );
            }
            o.full_text = o.passed;
        }
        "eval-fail" => {
            let mut args = flags_of(&lang, name)
                .unwrap_or_else(|| vec!["--eval".into(), "--strict".into(), "--show-trace".into()]);
            if !args
                .iter()
                .any(|a| a == "--no-show-trace" || a == "--show-trace")
            {
                args.push("--show-trace".into());
            }
            args.extend(store.iter().cloned());
            args.push(file);
            let out = envy_eval(nix_dir, home, &[("TEST_VAR", "foo")], &args)
                .output()
                .unwrap();
            let exp = read(&lang.join(format!("{name}.err.exp"))).unwrap_or_default();
            let got = rewrite(combined(&out));
            let failed = out.status.code() == Some(1);
            o.passed = failed
                && final_error_line(&got) == final_error_line(&exp)
                && final_error_line(&exp).is_some();
            o.full_text = failed && got.trim_end() == exp.trim_end();
            o.detail = format!(
                "exit {:?}\n--- got\n{got}\n--- expected\n{exp}",
                out.status.code()
            );
        }
        _ => {
            if lang.join(format!("{name}.exp-disabled")).exists() {
                o.passed = true;
                o.full_text = true;
                o.detail = "disabled".into();
                return o;
            }
            let xml = lang.join(format!("{name}.exp.xml"));
            let (args, exp_path, env): (Vec<String>, PathBuf, Vec<(&str, &str)>) = if xml.exists() {
                let mut a: Vec<String> = ["--eval", "--xml", "--no-location", "--strict"]
                    .map(String::from)
                    .to_vec();
                a.extend(store.iter().cloned());
                a.push(file);
                (a, xml, vec![("TEST_VAR", "foo")])
            } else {
                let mut a = flags_of(&lang, name).unwrap_or_default();
                a.extend(["--eval", "--strict"].map(String::from));
                a.extend(store.iter().cloned());
                a.push(file);
                (
                    a,
                    lang.join(format!("{name}.exp")),
                    vec![
                        ("TEST_VAR", "foo"),
                        ("NIX_PATH", "lang/dir3:lang/dir4"),
                        ("HOME", "/fake-home"),
                    ],
                )
            };
            let mut cmd = envy_eval(nix_dir, home, &env, &args);
            let _ = &home_s;
            let out = cmd.output().unwrap();
            let exp = read(&exp_path).unwrap_or_default();
            let exp_err = read(&lang.join(format!("{name}.err.exp"))).unwrap_or_default();
            let got = rewrite(String::from_utf8_lossy(&out.stdout).into_owned());
            let got_err = rewrite(String::from_utf8_lossy(&out.stderr).into_owned());
            o.passed = out.status.code() == Some(0)
                && got == exp
                && got_err.trim_end() == exp_err.trim_end();
            o.full_text = o.passed;
            o.detail = format!(
                "exit {:?}\n--- got\n{got}\n--- stderr\n{got_err}\n--- expected\n{exp}\n--- expected stderr\n{exp_err}",
                out.status.code()
            );
        }
    }
    o
}

/// Whether this copy of Nix's test data kept its symlinks (a copy made without them holds
/// each link's target as a regular file). Which tests can pass depends on what the data is,
/// not on where it came from.
fn data_has_symlinks(nix_dir: &Path) -> bool {
    fs_err::symlink_metadata(nix_dir.join("lang/readDir/ldir")).is_ok_and(|m| m.is_symlink())
}

/// The known-failure list: `name: reason` lines; a name followed by `[without symlinks]`
/// is expected to fail only on data that lost its symlinks.
fn known_failures(list: &str, symlinks: bool) -> BTreeMap<&str, &str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, reason) = l
                .split_once(':')
                .map(|(n, r)| (n.trim(), r.trim()))
                .unwrap_or((l, ""));
            match name.strip_suffix("[without symlinks]") {
                Some(name) => (!symlinks).then_some((name.trim(), reason)),
                None => Some((name, reason)),
            }
        })
        .collect()
}

#[test]
fn known_failures_follow_the_data() {
    let list = "# comment\na: reason\nb [without symlinks]: no links\n";
    let with = known_failures(list, true);
    assert_eq!(with.keys().copied().collect::<Vec<_>>(), ["a"]);
    let without = known_failures(list, false);
    assert_eq!(without.keys().copied().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(without["b"], "no links");
}

#[test]
fn nix_language_suite() {
    // A fresh clone without ../shared runs everything else and says what it skipped;
    // tests/eval_conformance_upstream.rs runs Nix's own suite instead.
    let Some(nix_dir) = common::shared_data("conformance/nix", "Nix's language suite") else {
        return;
    };
    let nix_dir = fs_err::canonicalize(&nix_dir).unwrap();
    let mut names: Vec<String> = fs_err::read_dir(nix_dir.join("lang"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter_map(|n| n.strip_suffix(".nix").map(str::to_string))
        .filter(|n| category(n).is_some())
        .collect();
    names.sort();
    if let Ok(filter) = std::env::var("ENVY_CONFORMANCE_FILTER") {
        names.retain(|n| n.contains(&filter));
    }

    let home = tempfile::tempdir().unwrap();
    let queue = Mutex::new(names.clone());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let Some(name) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let o = run_one(&nix_dir, home.path(), &name);
                    results.lock().unwrap().push(o);
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.name.cmp(&b.name));

    let symlinks = data_has_symlinks(&nix_dir);
    if !symlinks {
        eprintln!(
            "note: this copy of the conformance data lost its symlinks \
             (lang/readDir/ldir is a regular file): the tests that need them are expected to fail"
        );
    }
    let known = known_failures(KNOWN_FAILURES, symlinks);

    let mut per_cat: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    for o in &results {
        let e = per_cat.entry(o.category).or_default();
        if o.passed {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        if o.full_text {
            e.2 += 1;
        }
        match (o.passed, known.contains_key(o.name.as_str())) {
            (false, false) => unexpected.push(o),
            (true, true) => fixed.push(o.name.clone()),
            _ => {}
        }
    }
    // Written to the process's stderr directly (not through `println!`, which the test
    // harness captures), so the counts show in every run, passing or not.
    let mut summary = String::new();
    for (cat, (p, f, full)) in &per_cat {
        summary.push_str(&format!(
            "{cat}: {p} passed, {f} failed ({full} with identical full output)\n"
        ));
    }
    std::io::Write::write_all(&mut std::io::stderr(), summary.as_bytes()).unwrap();
    for o in &unexpected {
        println!("=== UNEXPECTED FAILURE {}\n{}", o.name, o.detail);
    }
    if std::env::var_os("ENVY_CONFORMANCE_FILTER").is_none() {
        assert!(
            fixed.is_empty(),
            "tests on the known-failure list now pass, remove them: {fixed:?}"
        );
    }
    assert!(
        unexpected.is_empty(),
        "{} tests failed that are not on the known-failure list",
        unexpected.len()
    );
    // The targets: every parse test; at least 95% of eval-okay and of eval-fail (the final
    // `error:` line as in the `.err.exp`).
    if std::env::var_os("ENVY_CONFORMANCE_FILTER").is_none() {
        for (cat, min_percent) in [
            ("parse-okay", 100),
            ("parse-fail", 100),
            ("eval-okay", 95),
            ("eval-fail", 95),
        ] {
            let (p, f, _) = per_cat.get(cat).copied().unwrap_or_default();
            assert!(
                p + f > 0 && p * 100 >= min_percent * (p + f),
                "{cat}: {p} of {} passed, below the {min_percent}% target",
                p + f
            );
        }
    }
}

/// The eval-fail criterion compares the final `error: …` line: with `--show-trace` Nix prints a
/// bare `error:` header and the trace frames before it, and those must not be what is compared.
#[test]
fn final_error_line_skips_the_trace_header() {
    let exp = "error:\n       … while calling the 'abort' builtin\n         at /pwd/lang/x.nix:1:14:\n\n       error: evaluation aborted with the following error message: 'x'\n";
    assert_eq!(
        final_error_line(exp).as_deref(),
        Some("error: evaluation aborted with the following error message: 'x'")
    );
    let other = "error: evaluation aborted with the following error message: 'y'\n";
    assert_ne!(final_error_line(exp), final_error_line(other));
    assert_eq!(
        final_error_line("error:\n       … while evaluating\n"),
        None
    );
}
