//! envy-fetch against Nix 2.8: every fetcher's `narHash`, `source` store path and locked
//! attributes compared with what `builtins.fetchTree` returns for the same input.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::flake::{FlakeWorld, nix_world};
use envy_fetch::{Fetcher, Input};
use serde_json::Value;

fn envy_fetch(world: &FlakeWorld, url: &str) -> envy_fetch::Fetched {
    let fetcher = Fetcher::new(world.fetch_settings());
    fetcher
        .fetch(&Input::from_url(url).unwrap())
        .unwrap_or_else(|e| panic!("envy could not fetch {url}: {e}"))
}

/// narHash, store path and every attribute Nix reports (except the derived
/// `shortRev`/`lastModifiedDate`/`submodules`) must match.
fn assert_same(nix: &Value, envy: &envy_fetch::Fetched, what: &str) {
    assert_eq!(
        nix["narHash"],
        envy.input.get_str("narHash").unwrap(),
        "{what}: narHash"
    );
    assert_eq!(
        nix["path"],
        format!("/nix/store/{}", envy.tree.store_path().base_name()),
        "{what}: store path"
    );
    for key in ["lastModified", "revCount"] {
        assert_eq!(
            nix.get(key).and_then(Value::as_u64),
            envy.input.get_int(key),
            "{what}: {key}"
        );
    }
    assert_eq!(
        nix.get("rev").and_then(Value::as_str),
        envy.input.get_str("rev"),
        "{what}: rev"
    );
}

fn git_attrs(dir: &Path, extra: &str) -> String {
    format!(
        "{{ type = \"git\"; url = \"file://{}\"; {extra} }}",
        dir.display()
    )
}

#[test]
fn git_work_tree_clean_dirty_and_by_ref() {
    let Some(w) = nix_world() else { return };
    let repo = w.git_repo(
        "repo",
        &[
            ("flake.nix", "{ outputs = _: {}; }\n"),
            ("lib/a.nix", "1\n"),
            ("run.sh", "echo\n"),
        ],
    );
    fs_err::set_permissions(repo.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    w.commit(&repo, "exec bit");
    let url = format!("git+file://{}", repo.display());

    let clean = envy_fetch(&w, &url);
    assert_same(&w.nix_fetch_tree(&git_attrs(&repo, "")), &clean, "clean");
    assert_eq!(clean.input.get_str("ref"), Some("main"));
    assert_eq!(
        clean.tree.root(),
        repo,
        "a work tree is read in place, not copied"
    );

    // Dirty: an edit to a tracked file is in, an untracked file is out.
    w.write(&repo, &[("lib/a.nix", "2\n"), ("untracked.nix", "u\n")]);
    let dirty = envy_fetch(&w, &url);
    let nix = w.nix_fetch_tree(&git_attrs(&repo, ""));
    assert_same(&nix, &dirty, "dirty");
    assert!(dirty.input.get_str("rev").is_none());
    assert_ne!(
        dirty.input.get_str("narHash"),
        clean.input.get_str("narHash")
    );
    assert!(dirty.tree.resolve(Path::new("untracked.nix")).is_none());
    assert!(dirty.tree.resolve(Path::new("lib/a.nix")).is_some());

    // A ref exports the commit, ignoring the work tree.
    let by_ref = envy_fetch(&w, &format!("{url}?ref=main"));
    assert_same(
        &w.nix_fetch_tree(&git_attrs(&repo, "ref = \"main\";")),
        &by_ref,
        "ref",
    );
    assert_eq!(
        by_ref.input.get_str("narHash"),
        clean.input.get_str("narHash")
    );

    // An older commit by rev.
    w.git(&repo, &["commit", "-qam", "second"]);
    let first = w.git(&repo, &["rev-parse", "HEAD~1"]);
    let old = envy_fetch(&w, &format!("{url}?ref=main&rev={first}"));
    let nix = w.nix_fetch_tree(&git_attrs(
        &repo,
        &format!("ref = \"main\"; rev = \"{first}\";"),
    ));
    assert_same(&nix, &old, "rev");
    assert_eq!(old.input.get_int("revCount"), Some(2));
}

#[test]
fn git_export_attributes_and_bare_remote() {
    let Some(w) = nix_world() else { return };
    // `export-ignore` changes what a commit exports: the clean tree must follow `git archive`.
    let repo = w.git_repo(
        "attrs",
        &[
            ("flake.nix", "{ outputs = _: {}; }\n"),
            (".gitattributes", "secret export-ignore\n"),
            ("secret", "not exported\n"),
        ],
    );
    let got = envy_fetch(&w, &format!("git+file://{}", repo.display()));
    assert_same(
        &w.nix_fetch_tree(&git_attrs(&repo, "")),
        &got,
        "export-ignore",
    );

    // A bare repository is fetched like a remote one: cloned into the cache.
    let bare = w.path("bare.git");
    w.git(
        w.root(),
        &[
            "clone",
            "-q",
            "--bare",
            &repo.display().to_string(),
            &bare.display().to_string(),
        ],
    );
    let got = envy_fetch(&w, &format!("git+file://{}?ref=main", bare.display()));
    assert_same(
        &w.nix_fetch_tree(&git_attrs(&bare, "ref = \"main\";")),
        &got,
        "bare",
    );
    assert!(
        w.path("envy-cache/fetch-v1/git")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
}

#[test]
fn path_tree_with_links_modes_and_mtimes() {
    let Some(w) = nix_world() else { return };
    let dir = w.path("p");
    w.write(
        &dir,
        &[
            ("flake.nix", "{ outputs = _: {}; }\n"),
            ("sub/deep/x", "x"),
            ("exe", "#!/bin/sh\n"),
        ],
    );
    fs_err::set_permissions(dir.join("exe"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("sub/deep/x", dir.join("link")).unwrap();
    fs_err::create_dir(dir.join("empty")).unwrap();
    w.fix_mtimes(&dir, 1_706_832_000);
    let touched = dir.join("sub/deep/x");
    let out = std::process::Command::new("touch")
        .args(["-d", "@1706900000"])
        .arg(&touched)
        .output()
        .unwrap();
    assert!(out.status.success());
    let got = envy_fetch(&w, &format!("path:{}", dir.display()));
    let nix = w.nix_fetch_tree(&format!(
        "{{ type = \"path\"; path = \"{}\"; }}",
        dir.display()
    ));
    assert_same(&nix, &got, "path");
    assert_eq!(got.input.get_int("lastModified"), Some(1_706_900_000));
}

#[test]
fn tarballs_over_file_urls() {
    let Some(w) = nix_world() else { return };
    let src = w.path("src");
    w.write(
        &src,
        &[
            ("top/flake.nix", "{ outputs = _: {}; }\n"),
            ("top/a/b", "b"),
        ],
    );
    w.fix_mtimes(&src, 1_709_424_000);
    for (ext, flag) in [
        ("tar.gz", "-z"),
        ("tar.xz", "-J"),
        ("tar.bz2", "-j"),
        ("tar.zst", "--zstd"),
    ] {
        let file = w.path(&format!("t.{ext}"));
        w.tarball(&src, "top", flag, &file);
        let url = format!("file://{}", file.display());
        let got = envy_fetch(&w, &url);
        assert_eq!(got.input.input_type(), "tarball");
        if ext == "tar.zst" {
            // Nix 2.8's libarchive here reads zstd too, but keep the oracle to what 2.8 ships
            // everywhere: the same tree as the gzip one.
            assert_eq!(
                got.input.get_str("narHash"),
                envy_fetch(&w, &format!("file://{}", w.path("t.tar.gz").display()))
                    .input
                    .get_str("narHash")
            );
            continue;
        }
        let nix = w.nix_fetch_tree(&format!("{{ type = \"tarball\"; url = \"{url}\"; }}"));
        assert_same(&nix, &got, ext);
        // Locked by narHash: a second fetch with the hash is served from the cache.
        let locked = Fetcher::new(w.fetch_settings()).fetch(&got.input).unwrap();
        assert_eq!(locked.tree.root(), got.tree.root());
    }
}

#[test]
fn file_inputs_are_flat() {
    let Some(w) = nix_world() else { return };
    let file = w.path("data.json");
    fs_err::write(&file, "{\"a\":1}\n").unwrap();
    let got = envy_fetch(&w, &format!("file://{}", file.display()));
    assert_eq!(got.input.input_type(), "file");
    // Nix 2.8 has no `file` fetcher; its flat store path and NAR hash are Nix's all the same.
    let out = w.nix_ok(
        w.root(),
        &["store", "add-file", &file.display().to_string()],
    );
    let nix_path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let store_name = got.tree.store_path().base_name().to_string();
    // add-file names the path after the file; compare the hash of a `source`-named add.
    let out = w.nix_ok(
        w.root(),
        &[
            "eval",
            "--raw",
            "--impure",
            "--expr",
            &format!(
                "builtins.path {{ path = {}; name = \"source\"; recursive = false; }}",
                file.display()
            ),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("/nix/store/{store_name}")
    );
    let out = w.nix(w.root(), &["path-info", "--json", &nix_path]);
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nar = info[0]["narHash"].as_str().unwrap().to_string();
    let nar = envy_store::Hash::parse_any(&nar, None).unwrap().to_sri();
    assert_eq!(got.input.get_str("narHash"), Some(nar.as_str()));
}
