//! The evaluator's file system behaviour with real symlinks (the shared copy of Nix's test
//! data lost its symlinks, so these four conformance tests are re-created here), the read
//! record every evaluation returns, and fetching (local sources, hash checks, offline mode).

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use envy_eval::{EvalSettings, Evaluator, FileAccess, MemoryIO, Offline, Pos, RealIO, print};

fn eval_in(dir: &Path, expr: &str) -> Result<String, String> {
    let dir = dir.to_path_buf();
    let expr = expr.to_string();
    envy_eval::run_with_stack(move || {
        let settings = EvalSettings {
            cwd: dir.clone(),
            ..EvalSettings::default()
        };
        let mut ev = Evaluator::builder()
            .settings(settings)
            .io(Box::new(RealIO))
            .build();
        let v = ev
            .eval_string(&expr, &dir.to_string_lossy())
            .and_then(|v| ev.force_deep(&v, Pos::NONE))
            .map_err(|e| e.render(false))?;
        Ok(String::from_utf8_lossy(&print::print_value(&v)).into_owned())
    })
}

/// `lang/readDir` and `lang/symlink-resolution` as they are in Nix's repository.
fn nix_lang_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs_err::create_dir_all(d.join("readDir/foo")).unwrap();
    fs_err::write(d.join("readDir/bar"), "").unwrap();
    fs_err::write(d.join("readDir/foo/git-hates-directories"), "").unwrap();
    symlink("foo", d.join("readDir/ldir")).unwrap();
    symlink("foo/git-hates-directories", d.join("readDir/linked")).unwrap();
    fs_err::create_dir_all(d.join("symlink-resolution/foo/lib")).unwrap();
    fs_err::create_dir_all(d.join("symlink-resolution/overlays")).unwrap();
    fs_err::write(
        d.join("symlink-resolution/foo/lib/default.nix"),
        "\"test\"\n",
    )
    .unwrap();
    fs_err::write(
        d.join("symlink-resolution/overlays/overlay.nix"),
        "import ../lib\n",
    )
    .unwrap();
    symlink("../overlays", d.join("symlink-resolution/foo/overlays")).unwrap();
    symlink("nonexistent", d.join("symlink-resolution/broken")).unwrap();
    fs_err::write(d.join("lib.nix"), "{ }\n").unwrap();
    t
}

#[test]
fn read_dir_follows_a_symlinked_directory() {
    let t = nix_lang_tree();
    assert_eq!(
        eval_in(t.path(), "builtins.readDir ./readDir/ldir").unwrap(),
        r#"{ git-hates-directories = "regular"; }"#
    );
}

#[test]
fn read_file_type_does_not_follow_symlinks() {
    let t = nix_lang_tree();
    let got = eval_in(
        t.path(),
        "{ bar = builtins.readFileType ./readDir/bar; foo = builtins.readFileType ./readDir/foo; linked = builtins.readFileType ./readDir/linked; ldir = builtins.readFileType ./readDir/ldir; }",
    )
    .unwrap();
    assert_eq!(
        got,
        r#"{ bar = "regular"; foo = "directory"; ldir = "symlink"; linked = "symlink"; }"#
    );
}

#[test]
fn imports_resolve_relative_paths_without_following_symlinks() {
    let t = nix_lang_tree();
    assert_eq!(
        eval_in(
            t.path(),
            "import ./symlink-resolution/foo/overlays/overlay.nix"
        )
        .unwrap(),
        "\"test\""
    );
}

#[test]
fn path_exists_with_symlinks() {
    let t = nix_lang_tree();
    let cases = [
        (
            "builtins.pathExists ./symlink-resolution/foo/overlays/overlay.nix",
            "true",
        ),
        ("builtins.pathExists ./symlink-resolution/broken", "true"),
        (
            "builtins.pathExists (builtins.toString ./symlink-resolution/foo/overlays + \"/.\")",
            "true",
        ),
        (
            "builtins.pathExists (builtins.toString ./lib.nix + \"/\")",
            "false",
        ),
        ("builtins.pathExists ./nope", "false"),
    ];
    for (e, want) in cases {
        assert_eq!(eval_in(t.path(), e).unwrap(), want, "{e}");
    }
}

#[test]
fn the_read_record_lists_files_directories_and_variables() {
    let mut io = MemoryIO::new();
    io.add_file("/p/default.nix", "let a = import ./a.nix; in a + builtins.readFile ./b.txt + builtins.getEnv \"V\" + (if builtins.pathExists ./c then \"c\" else \"\") + toString (builtins.attrNames (builtins.readDir ./d))");
    io.add_file("/p/a.nix", "\"a\"");
    io.add_file("/p/b.txt", "b");
    io.add_file("/p/d/x", "");
    io.env.insert("V".into(), "v".into());
    let (out, record) = envy_eval::run_with_stack(move || {
        let mut ev = Evaluator::builder().io(Box::new(io)).build();
        let v = ev.eval_file(Path::new("/p/default.nix")).unwrap();
        (
            String::from_utf8_lossy(&print::print_value(&v)).into_owned(),
            ev.take_record(),
        )
    });
    assert_eq!(out, "\"abvx\"");
    let files: Vec<PathBuf> = record.files.keys().cloned().collect();
    for f in ["/p/default.nix", "/p/a.nix", "/p/b.txt", "/p/c"] {
        assert!(
            files.contains(&PathBuf::from(f)),
            "{f} missing from {files:?}"
        );
    }
    let b = &record.files[Path::new("/p/b.txt")];
    assert!(
        b.iter()
            .any(|a| matches!(a, FileAccess::Contents { len: 1, .. })),
        "{b:?}"
    );
    assert!(record.files[Path::new("/p/c")].contains(&FileAccess::Type(None)));
    assert!(record.dirs.contains(Path::new("/p/d")));
    assert_eq!(record.env.get("V"), Some(&Some("v".to_string())));
}

fn fetch_eval(dir: &Path, expr: &str) -> Result<String, String> {
    let dir = dir.to_path_buf();
    let expr = expr.to_string();
    envy_eval::run_with_stack(move || {
        let store_dir = envy_store::StoreDir::nix_default();
        let fetcher =
            envy_fetch::Fetcher::new(envy_fetch::FetchSettings::new(store_dir, dir.join("cache")));
        let mut ev = Evaluator::builder()
            .fetcher(Box::new(Offline(fetcher)))
            .build();
        let v = ev
            .eval_string(&expr, &dir.to_string_lossy())
            .and_then(|v| ev.force_deep(&v, Pos::NONE))
            .map_err(|e| e.render(false))?;
        Ok(String::from_utf8_lossy(&print::print_value(&v)).into_owned())
    })
}

#[test]
fn fetchers_check_hashes_and_stay_offline() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs_err::write(d.join("f.txt"), "hello\n").unwrap();
    let url = format!("file://{}/f.txt", d.display());
    // The right hash (sha256 of "hello\n").
    let ok = fetch_eval(
        d,
        &format!(
            r#"builtins.fetchurl {{ url = "{url}"; sha256 = "00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq"; name = "f"; }}"#
        ),
    );
    assert!(ok.is_ok(), "{ok:?}");
    let bad = fetch_eval(d, &format!(r#"builtins.fetchurl {{ url = "{url}"; sha256 = "0000000000000000000000000000000000000000000000000000"; }}"#)).unwrap_err();
    assert!(
        bad.contains("hash mismatch in file downloaded from"),
        "{bad}"
    );
    let net = fetch_eval(d, r#"builtins.fetchurl "https://example.com/x""#).unwrap_err();
    assert!(net.contains("network access is disabled"), "{net}");
}
