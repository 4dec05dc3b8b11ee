//! Binary cache interop with real Nix 2.8, both ways, over `file://` and `http://`:
//! a cache written by `nix copy --to 'file://…?secret-key=…'` is substituted by envy when the
//! key is trusted and refused when it is not; a cache written by envy (signed, xz and zstd) is
//! read by `nix copy --from` with envy's key trusted, and refused without it.

mod common;
#[path = "common/store.rs"]
mod store_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use envy_store::cache::{
    BinaryCache, CacheError, Compression, PublicKey, SecretKey, Substituter, UploadOptions,
    copy_to_cache,
};
use envy_store::{FileIngestionMethod, Hash, LocalStore, StoreConfig, StorePath, nar};
use store_common::NixEnv;

fn no_progress(_: envy_store::cache::CacheEvent<'_>) {}

/// Nix builds a path with a dependency into its store at `dir`, copies both to a signed
/// cache, and leaves the directory free for envy.
struct NixCache {
    nix: NixEnv,
    cache: std::path::PathBuf,
    public_key: String,
    top: String,
    dep: String,
}

fn nix_cache() -> NixCache {
    let nix = NixEnv::new("envy-nix-");
    let r = nix.root.path().to_owned();
    let sk = nix.run(
        "nix",
        &["key", "generate-secret", "--key-name", "nix-test-1"],
    );
    fs_err::write(r.join("sk"), &sk).unwrap();
    let pk = nix
        .command("nix")
        .args(["key", "convert-secret-to-public"])
        .stdin(fs_err::File::open(r.join("sk")).unwrap().into_parts().0)
        .output()
        .unwrap();
    store_common::assert_success(&pk, "nix key convert-secret-to-public");
    let public_key = String::from_utf8(pk.stdout).unwrap().trim().to_owned();
    let expr = r#"let dep = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "echo dependency > $out" ]; };
                   in derivation { name = "top"; system = "x86_64-linux"; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" "mkdir -p $out/bin; echo ${dep} > $out/ref; printf '#!/bin/sh\necho hi\n' > $out/bin/hi; chmod +x $out/bin/hi; ln -s ref $out/link" ]; }"#;
    let top = nix.run_store("nix-build", &["--no-out-link", "--expr", expr]);
    let dep = nix.run_store("nix-store", &["--query", "--references", &top]);
    assert_eq!(dep.lines().count(), 1, "{dep}");
    let cache = r.join("cache");
    let to = format!(
        "file://{}?secret-key={}&store={}",
        cache.display(),
        r.join("sk").display(),
        nix.store_dir.display()
    );
    nix.run_store("nix", &["copy", "--to", &to, &top]);
    // Free the store directory for envy (Nix's state stays aside).
    envy_store::local::delete_path(&nix.store_dir).unwrap();
    NixCache {
        cache,
        public_key,
        top,
        dep: dep.trim().to_owned(),
        nix,
    }
}

fn envy_store_at(dir: &Path, state: &Path) -> LocalStore {
    LocalStore::open(&StoreConfig::new(dir, state)).unwrap()
}

#[test]
fn envy_substitutes_from_a_nix_written_cache() {
    if !common::have_tool("nix") {
        return;
    }
    let nc = nix_cache();
    let store = envy_store_at(&nc.nix.store_dir, &nc.nix.root.path().join("envy-state"));
    let sd = store.store_dir().clone();
    let top = sd.parse(&nc.top).unwrap();
    let dep = sd.parse(&nc.dep).unwrap();
    let url = format!("file://{}", nc.cache.display());

    // envy prints Nix's .narinfo files back byte for byte.
    let mut narinfos = 0;
    for entry in fs_err::read_dir(&nc.cache).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_some_and(|e| e == "narinfo") {
            let text = fs_err::read_to_string(&file).unwrap();
            let parsed =
                envy_store::cache::NarInfo::parse(&sd, &text, &file.display().to_string()).unwrap();
            assert_eq!(parsed.to_text(&sd), text);
            narinfos += 1;
        }
    }
    assert_eq!(narinfos, 2);

    // Without the key: the signed paths are refused.
    let untrusting = Substituter::new(std::slice::from_ref(&url), vec![]).unwrap();
    assert!(
        untrusting
            .substitute(&store, &top, &no_progress)
            .unwrap()
            .is_none()
    );
    let err = untrusting
        .substitute_closure(&store, std::slice::from_ref(&top), true, &no_progress)
        .unwrap_err();
    assert!(matches!(err, CacheError::Untrusted { .. }), "{err}");
    let other_key = SecretKey::from_seed("nix-test-1", &[3u8; 32]).public();
    let wrong = Substituter::new(std::slice::from_ref(&url), vec![other_key]).unwrap();
    assert!(
        wrong
            .substitute(&store, &top, &no_progress)
            .unwrap()
            .is_none()
    );
    assert!(!store.is_valid(&top).unwrap() && !store.is_valid(&dep).unwrap());

    // With it: the closure arrives, references first, byte for byte.
    let key = PublicKey::parse(&nc.public_key).unwrap();
    let subst = Substituter::new(std::slice::from_ref(&url), vec![key]).unwrap();
    let outcome = subst
        .substitute(&store, &top, &no_progress)
        .unwrap()
        .unwrap();
    assert_eq!(outcome.fetched, vec![dep.clone(), top.clone()]);
    let info = store.path_info(&top).unwrap();
    assert_eq!(info.references, BTreeSet::from([dep.clone()]));
    assert!(info.deriver.as_ref().is_some_and(|d| d.is_derivation()));
    assert_eq!(
        nar::nar_hash_path(&store.real_path(&top)).unwrap().0,
        info.nar_hash
    );
    assert_eq!(
        fs_err::read_to_string(store.real_path(&top).join("ref"))
            .unwrap()
            .trim(),
        nc.dep
    );
    assert!(store.verify(true, &mut |_, _| {}).unwrap().is_ok());
}

struct HttpServer(Child, u16);

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 -m http.server` on a free port, serving `dir` read-only.
fn serve(dir: &Path) -> HttpServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    #[allow(clippy::zombie_processes)] // `HttpServer::drop` kills and waits for it
    let child = Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return HttpServer(child, port);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("http server on port {port} did not start");
}

#[test]
fn envy_substitutes_over_http() {
    if !common::have_tool("nix") || !common::have_tool("python3") {
        return;
    }
    let nc = nix_cache();
    let server = serve(&nc.cache);
    let store = envy_store_at(&nc.nix.store_dir, &nc.nix.root.path().join("envy-state"));
    let top = store.store_dir().parse(&nc.top).unwrap();
    let url = format!("http://127.0.0.1:{}", server.1);
    let subst = Substituter::new(
        std::slice::from_ref(&url),
        vec![PublicKey::parse(&nc.public_key).unwrap()],
    )
    .unwrap();
    let outcome = subst
        .substitute(&store, &top, &no_progress)
        .unwrap()
        .unwrap();
    assert_eq!(outcome.fetched.len(), 2);
    // A path the cache does not have: no substitute, no error.
    let missing = StorePath::from_base_name("00000000000000000000000000000000-missing").unwrap();
    assert!(
        subst
            .substitute(&store, &missing, &no_progress)
            .unwrap()
            .is_none()
    );
    assert!(
        BinaryCache::open(&url)
            .unwrap()
            .cache_info()
            .unwrap()
            .is_some()
    );
}

#[test]
fn nix_reads_an_envy_written_cache() {
    if !common::have_tool("nix") {
        return;
    }
    let nix = NixEnv::new("envy-nix-");
    let r = nix.root.path().to_owned();
    let store_dir = r.join("shared/store");
    let store = envy_store_at(&store_dir, &r.join("envy-state"));
    let sd = store.store_dir().clone();

    // A content-addressed tree, a text file referring to it, and an input-addressed "output"
    // referring to both (made as the builder makes outputs).
    let tree = r.join("tree");
    store_common::sample_tree(&tree);
    let src = store
        .add_path(&tree, "tree", FileIngestionMethod::Recursive, None)
        .unwrap()
        .path;
    let text = store
        .add_text(
            "note",
            format!("see {}", sd.print(&src)).as_bytes(),
            &BTreeSet::from([src.clone()]),
        )
        .unwrap();
    let out = sd
        .make_output_path("out", &Hash::sha256(b"some derivation"), "built")
        .unwrap();
    let lock = store.lock_path(&out).unwrap();
    fs_err::create_dir_all(store.real_path(&out)).unwrap();
    fs_err::write(
        store.real_path(&out).join("refs"),
        format!("{}\n{}\n", sd.print(&src), sd.print(&text)),
    )
    .unwrap();
    let info = store
        .finalize_output(
            &out,
            BTreeSet::from([src.clone(), text.clone()]),
            None,
            None,
        )
        .unwrap();
    store.register_valid_paths(&[info]).unwrap();
    drop(lock);

    let secret = SecretKey::from_seed("envy-test-1", &[42u8; 32]);
    for (compression, name) in [(Compression::Xz, "xz"), (Compression::Zstd, "zstd")] {
        let cache_dir = r.join(format!("cache-{name}"));
        let cache = BinaryCache::open(&format!("file://{}", cache_dir.display())).unwrap();
        let options = UploadOptions {
            compression,
            secret_key: Some(secret.clone()),
        };
        let report = copy_to_cache(
            &store,
            &cache,
            std::slice::from_ref(&out),
            &options,
            &no_progress,
        )
        .unwrap();
        assert_eq!(report.uploaded.len(), 3);
        // Copying again finds everything present.
        assert_eq!(
            copy_to_cache(
                &store,
                &cache,
                std::slice::from_ref(&out),
                &options,
                &no_progress
            )
            .unwrap()
            .present,
            3
        );

        // Nix, with the same logical store dir (files kept elsewhere), reads it.
        let nix_store = |tag: &str| {
            format!(
                "local?store={}&real={}&state={}&log={}",
                sd,
                r.join(format!("real-{tag}")).display(),
                r.join(format!("nstate-{tag}")).display(),
                r.join(format!("nlog-{tag}")).display()
            )
        };
        // Nix opens the cache as a store of its own: tell it the store dir.
        let from = format!("file://{}?store={}", cache_dir.display(), sd);
        let refused = nix
            .command("nix")
            .args([
                "copy",
                "--from",
                &from,
                "--to",
                &nix_store(&format!("{name}-untrusted")),
                &sd.print(&out),
            ])
            .output()
            .unwrap();
        assert!(
            !refused.status.success(),
            "nix accepted an unsigned-by-trusted-key path"
        );
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains("signature"), "{stderr}");
        let trusted = nix_store(&format!("{name}-trusted"));
        nix.run(
            "nix",
            &[
                "copy",
                "--option",
                "trusted-public-keys",
                &secret.public().to_text(),
                "--from",
                &from,
                "--to",
                &trusted,
                &sd.print(&out),
            ],
        );
        // Nix has the whole closure, with the hashes envy registered.
        let closure = nix.run(
            "nix",
            &[
                "path-info",
                "--store",
                &trusted,
                "--recursive",
                &sd.print(&out),
            ],
        );
        assert_eq!(closure.lines().count(), 3, "{closure}");
        for p in [&out, &src, &text] {
            let ours = store.path_info(p).unwrap().nar_hash;
            let theirs = nix.run(
                "nix-store",
                &["--store", &trusted, "--query", "--hash", &sd.print(p)],
            );
            assert_eq!(theirs, ours.to_string(), "{p}");
        }
    }
}

#[test]
fn envy_store_copy_from_a_nix_cache_needs_the_key() {
    if !common::have_tool("nix") {
        return;
    }
    let nc = nix_cache();
    let envy = store_common::EnvyEnv::with_store_dir(&nc.nix.store_dir);
    let from = format!("file://{}", nc.cache.display());
    let refused = envy
        .command()
        .args(["store", "copy", "--from", &from, &nc.top])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no signature by a trusted key") && stderr.contains("hint:"),
        "{stderr}"
    );
    assert!(!Path::new(&nc.top).exists());

    // The key in envy's config file is enough.
    let config = envy.root.path().join("config/envy/config.toml");
    fs_err::create_dir_all(config.parent().unwrap()).unwrap();
    fs_err::write(
        &config,
        format!("trusted-public-keys = [\"{}\"]\n", nc.public_key),
    )
    .unwrap();
    let out = envy
        .command()
        .args(["store", "copy", "--from", &from, &nc.top])
        .output()
        .unwrap();
    store_common::assert_success(&out, "envy store copy --from");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("copied 2 paths"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value =
        serde_json::from_str(&envy.run(&["store", "path-info", "--json", "--recursive", &nc.top]))
            .unwrap();
    assert_eq!(info.as_array().unwrap().len(), 2);
    // ENVY_TRUSTED_PUBLIC_KEYS, when set, replaces the file's keys.
    envy_store::local::delete_path(&nc.nix.store_dir).unwrap();
    envy_store::local::delete_path(&envy.state_dir).unwrap();
    let out = envy
        .command()
        .args(["store", "copy", "--from", &from, &nc.top])
        .env("ENVY_TRUSTED_PUBLIC_KEYS", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
