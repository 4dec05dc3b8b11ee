//! `envy store …` end to end, against real Nix 2.8 where there is a peer: `add` gives the
//! path `nix-store --add` gives, `dump` is byte-identical to `nix-store --dump`, `hash` equals
//! `nix-hash --type sha256 --base32`; and path-info, verify, gc and copy behave.

mod common;
#[path = "common/store.rs"]
mod store_common;

use serde_json::Value;
use store_common::{EnvyEnv, NixEnv, assert_success, sample_tree};

#[test]
fn add_dump_and_hash_match_nix() {
    if !common::have_tool("nix-store") {
        return;
    }
    let nix = NixEnv::new("envy-nix-");
    let r = nix.root.path().to_owned();
    let tree = r.join("tree");
    sample_tree(&tree);
    // Nix adds into the same logical store dir envy uses, keeping its files elsewhere.
    let store_dir = r.join("shared/store");
    let nix_store = format!(
        "local?store={}&real={}&state={}&log={}",
        store_dir.display(),
        r.join("real").display(),
        r.join("nstate").display(),
        r.join("nlog").display()
    );
    let envy = EnvyEnv::with_store_dir(&store_dir);
    for path in [tree.clone(), tree.join("a.txt"), tree.join("sub/run.sh")] {
        let p = path.to_string_lossy();
        let theirs = nix.run("nix-store", &["--store", &nix_store, "--add", &p]);
        let ours = envy.run(&["store", "add", &p]);
        assert_eq!(ours.trim(), theirs, "envy store add {p}");

        let dump = envy.command().args(["store", "dump", &p]).output().unwrap();
        assert_success(&dump, "envy store dump");
        let nix_dump = nix
            .command("nix-store")
            .args(["--dump", &p])
            .output()
            .unwrap();
        assert!(
            dump.stdout == nix_dump.stdout,
            "envy store dump {p} differs from nix-store --dump"
        );

        let hash = envy.run(&["store", "hash", &p]);
        assert_eq!(
            hash.trim(),
            nix.run("nix-hash", &["--type", "sha256", "--base32", &p]),
            "envy store hash {p}"
        );
        let hex = envy.run(&["store", "hash", "--base16", &p]);
        assert_eq!(hex.trim(), nix.run("nix-hash", &["--type", "sha256", &p]));
    }
    let flat = tree.join("a.txt").to_string_lossy().into_owned();
    let theirs = nix.run(
        "nix-store",
        &["--store", &nix_store, "--add-fixed", "sha256", &flat],
    );
    assert_eq!(envy.run(&["store", "add", "--flat", &flat]).trim(), theirs);
    // `path-info --json` matches `nix path-info --json` (but for the registration time).
    let added = envy
        .run(&["store", "add", &tree.to_string_lossy()])
        .trim()
        .to_owned();
    let strip = |text: &str| {
        let mut v: Value = serde_json::from_str(text).unwrap();
        v[0].as_object_mut().unwrap().remove("registrationTime");
        v
    };
    let ours = strip(&envy.run(&["store", "path-info", "--json", &added]));
    let theirs = strip(&nix.run(
        "nix",
        &["path-info", "--store", &nix_store, "--json", &added],
    ));
    assert_eq!(ours, theirs);
    // The store dumps what it holds identically too.
    let stored = envy.run(&["store", "add", &tree.to_string_lossy()]);
    let a = envy
        .command()
        .args(["store", "dump", stored.trim()])
        .output()
        .unwrap();
    let b = nix
        .command("nix-store")
        .args(["--dump", &tree.to_string_lossy()])
        .output()
        .unwrap();
    assert!(a.stdout == b.stdout);
}

#[test]
fn path_info_verify_and_gc() {
    let envy = EnvyEnv::new();
    let tree = envy.root.path().join("t");
    sample_tree(&tree);
    let path = envy
        .run(&["store", "add", &tree.to_string_lossy()])
        .trim()
        .to_owned();
    assert!(path.starts_with(&envy.store_dir.to_string_lossy().into_owned()));

    let json: Value =
        serde_json::from_str(&envy.run(&["store", "path-info", "--json", &path])).unwrap();
    let item = &json[0];
    assert_eq!(item["path"], path.as_str());
    let nix32 = envy.run(&["store", "hash", &path]).trim().to_owned();
    let sri = envy
        .run(&["store", "hash", "--sri", &path])
        .trim()
        .to_owned();
    assert_eq!(item["narHash"].as_str().unwrap(), sri);
    assert!(item["narSize"].as_u64().unwrap() > 300_000);
    assert_eq!(
        item["ca"].as_str().unwrap(),
        format!("fixed:r:sha256:{nix32}")
    );
    // A symlink to the path (like a result link) names it too.
    let link = envy.root.path().join("result");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(
        envy.run(&["store", "path-info", &link.to_string_lossy()])
            .trim(),
        path
    );

    let verify = envy.command().args(["store", "verify"]).output().unwrap();
    assert_success(&verify, "envy store verify");

    // Unrooted: gc --dry-run lists it, gc deletes it.
    assert_eq!(envy.run(&["store", "gc", "--dry-run"]).trim(), path);
    assert!(std::path::Path::new(&path).exists());
    let gc = envy.command().args(["store", "gc"]).output().unwrap();
    assert_success(&gc, "envy store gc");
    assert_eq!(String::from_utf8_lossy(&gc.stdout).trim(), path);
    assert!(
        String::from_utf8_lossy(&gc.stderr).contains("deleted 1 store path"),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert!(!std::path::Path::new(&path).exists());
    let info = envy
        .command()
        .args(["store", "path-info", &path])
        .output()
        .unwrap();
    assert!(!info.status.success());
    assert!(String::from_utf8_lossy(&info.stderr).contains("is not valid"));
}

#[test]
fn verify_reports_a_modified_path() {
    let envy = EnvyEnv::new();
    let file = envy.root.path().join("f");
    fs_err::write(&file, "original\n").unwrap();
    let path = envy
        .run(&["store", "add", &file.to_string_lossy()])
        .trim()
        .to_owned();
    fs_err::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    fs_err::write(&path, "changed\n").unwrap();
    let out = envy.command().args(["store", "verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("modified: {path}")));
}

#[test]
fn refuses_a_store_dir_it_does_not_own() {
    let envy = EnvyEnv::new();
    fs_err::create_dir_all(
        envy.store_dir
            .join("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-not-ours"),
    )
    .unwrap();
    let file = envy.root.path().join("f");
    fs_err::write(&file, "x").unwrap();
    let out = envy
        .command()
        .args(["store", "add", &file.to_string_lossy()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to use") && stderr.contains("hint:"),
        "{stderr}"
    );
}

#[test]
fn copy_to_and_from_a_cache() {
    if !common::have_tool("nix") {
        return;
    }
    let nix = NixEnv::new("envy-nix-");
    let r = nix.root.path().to_owned();
    let secret = nix.run(
        "nix",
        &["key", "generate-secret", "--key-name", "cli-test-1"],
    );
    fs_err::write(r.join("sk"), &secret).unwrap();
    let public = {
        let out = nix
            .command("nix")
            .args(["key", "convert-secret-to-public"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut child = out;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(secret.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_success(&out, "nix key convert-secret-to-public");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let store_dir = r.join("team/store");
    let cache = format!("file://{}", r.join("cache").display());
    let tree = r.join("tree");
    sample_tree(&tree);

    let path = {
        let writer = EnvyEnv::with_store_dir(&store_dir);
        let path = writer
            .run(&["store", "add", &tree.to_string_lossy()])
            .trim()
            .to_owned();
        writer.run(&[
            "store",
            "copy",
            "--to",
            &cache,
            "--secret-key",
            &r.join("sk").to_string_lossy(),
            &path,
        ]);
        path
    };
    envy_store::local::delete_path(&store_dir).unwrap();

    // A second machine with the same store dir. Content-addressed paths need no signature,
    // so reading without the key works here; with signature checks disabled too.
    let reader = EnvyEnv::with_store_dir(&store_dir);
    let out = reader
        .command()
        .args(["store", "copy", "--from", &cache, &path])
        .env("ENVY_TRUSTED_PUBLIC_KEYS", &public)
        .output()
        .unwrap();
    assert_success(&out, "envy store copy --from");
    assert!(std::path::Path::new(&path).join("sub/run.sh").exists());
    let narinfo = fs_err::read_to_string(r.join("cache").join(format!(
        "{}.narinfo",
        &path[store_dir.to_string_lossy().len() + 1..][..32]
    )))
    .unwrap();
    assert!(narinfo.contains("Sig: cli-test-1:"), "{narinfo}");
    assert!(narinfo.contains("Compression: xz"), "{narinfo}");
}

#[test]
fn envy_gc_collects_envy_store() {
    let envy = EnvyEnv::new();
    // `envy gc` with no store yet creates none.
    envy.run(&["gc"]);
    assert!(!envy.store_dir.exists());
    let file = envy.root.path().join("f");
    fs_err::write(&file, "x\n").unwrap();
    let path = envy
        .run(&["store", "add", &file.to_string_lossy()])
        .trim()
        .to_owned();
    let dry = envy.run(&["gc", "--dry-run"]);
    assert!(
        dry.contains("would free 1 unreachable store path of envy's store"),
        "{dry}"
    );
    assert!(std::path::Path::new(&path).exists());
    let done = envy.run(&["gc"]);
    assert!(
        done.contains("freed 1 unreachable store path of envy's store"),
        "{done}"
    );
    assert!(!std::path::Path::new(&path).exists());
}
