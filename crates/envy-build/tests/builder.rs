//! The builder end to end against a real envy store in a temporary directory: real
//! derivations, real builders (`/bin/sh`), the sandbox when the kernel allows.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{Fixture, sandbox_modes};
use envy_build::{BuildError, Builder, NoProgress, SandboxMode};
use envy_store::content_address::{ContentAddressMethod, FileIngestionMethod};
use envy_store::{ContentAddress, Hash, HashAlgo};

#[test]
fn builds_a_chain_with_references_and_canonical_outputs() {
    for mode in sandbox_modes() {
        let mut fx = Fixture::new(mode);
        let a = fx.drv("a", "echo hello > $out", &[], &[], None);
        let a_out = fx.drv_out(&a);
        let b = fx.drv(
            "b",
            "/bin/mkdir $out; echo \"$dep\" > $out/ref; /bin/cat $dep > $out/copy; echo $NIX_BUILD_CORES > $out/cores",
            &[("dep", &a_out)],
            &[&a],
            None,
        );
        let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
        let results = builder.build(std::slice::from_ref(&b)).unwrap();
        assert_eq!(builder.built_count(), 2, "{mode:?}");
        let out_b = fx.out(&results, &b);
        assert_eq!(
            fs_err::read_to_string(out_b.join("copy")).unwrap(),
            "hello\n"
        );
        let info = fx.info(&results[&b]["out"]);
        assert_eq!(
            info.references,
            BTreeSet::from([results[&a]["out"].clone()]),
            "{mode:?}"
        );
        assert_eq!(info.deriver, Some(b.clone()));
        let (hash, size) = envy_store::nar::nar_hash_path(&out_b).unwrap();
        assert_eq!((info.nar_hash, info.nar_size), (hash, size));
        let meta = fs_err::metadata(out_b.join("copy")).unwrap();
        assert_eq!(
            (meta.permissions().mode() & 0o777, meta.mtime()),
            (0o444, 1)
        );
        assert!(fx.config.logs.exists(b.base_name()));
        // Everything valid now: a second build builds nothing.
        let again = Builder::new(&fx.store, &fx.config, &NoProgress);
        again.build(std::slice::from_ref(&b)).unwrap();
        assert_eq!(again.built_count(), 0);
    }
}

#[test]
fn stale_output_is_replaced_and_failures_show_the_log_tail() {
    let mut fx = Fixture::new(SandboxMode::Disabled);
    let d = fx.drv("stale", "echo fresh > $out", &[], &[], None);
    let out = fx.drv_out(&d);
    fs_err::write(&out, "half-written by a killed build").unwrap();
    let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
    builder.build(std::slice::from_ref(&d)).unwrap();
    assert_eq!(fs_err::read_to_string(&out).unwrap(), "fresh\n");

    let bad = fx.drv(
        "bad",
        "echo line one; echo oops >&2; exit 3",
        &[],
        &[],
        None,
    );
    let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
    let err = builder
        .build(std::slice::from_ref(&bad))
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed with exit code 3"), "{err}");
    assert!(err.contains("> line one\n> oops"), "{err}");
    let log = String::from_utf8(fx.config.logs.read(bad.base_name()).unwrap()).unwrap();
    assert!(log.starts_with("line one\noops\n"), "{log}");
    assert!(!Path::new(&fx.drv_out(&bad)).exists());
}

#[test]
fn fixed_output_hash_is_checked() {
    for mode in sandbox_modes() {
        let mut fx = Fixture::new(mode);
        let good = Hash::of(HashAlgo::Sha256, b"fixed\n");
        let ca = |hash| ContentAddress {
            method: ContentAddressMethod::Fixed(FileIngestionMethod::Flat),
            hash,
        };
        let d = fx.drv("fod", "echo fixed > $out", &[], &[], Some(ca(good)));
        let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
        let results = builder.build(std::slice::from_ref(&d)).unwrap();
        let info = fx.info(&results[&d]["out"]);
        assert_eq!(info.ca, Some(ca(good)));

        let wrong = fx.drv("fod2", "echo other > $out", &[], &[], Some(ca(good)));
        let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
        let err = builder.build(std::slice::from_ref(&wrong)).unwrap_err();
        let got = Hash::of(HashAlgo::Sha256, b"other\n");
        assert!(matches!(err, BuildError::HashMismatch { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "hash mismatch in fixed-output derivation `{}`:\n  specified: {}\n     got:    {}",
                fx.dir().print(&wrong),
                good.to_sri(),
                got.to_sri()
            )
        );
        assert!(!Path::new(&fx.drv_out(&wrong)).exists());
    }
}

#[test]
fn builtin_fetchurl_prefers_hashed_mirrors() {
    let mut fx = Fixture::new(SandboxMode::Auto);
    let tmp = tempfile::tempdir().unwrap();
    let data = b"tarball bytes";
    let hash = Hash::of(HashAlgo::Sha256, data);
    let mirror = tmp.path().join("mirror");
    fs_err::create_dir_all(mirror.join("sha256")).unwrap();
    fs_err::write(mirror.join("sha256").join(hash.to_hex()), data).unwrap();
    fx.config.hashed_mirrors = vec![format!("file://{}", mirror.display())];
    let ca = ContentAddress {
        method: ContentAddressMethod::Fixed(FileIngestionMethod::Flat),
        hash,
    };
    let d = fetchurl_drv(
        &mut fx,
        "src.tar",
        &[("url", "https://unreachable.invalid/src.tar")],
        ca,
    );
    let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
    let results = builder.build(std::slice::from_ref(&d)).unwrap();
    assert_eq!(fs_err::read(fx.out(&results, &d)).unwrap(), data);
    let log = String::from_utf8(fx.config.logs.read(d.base_name()).unwrap()).unwrap();
    assert!(log.contains("fetched from hashed mirror"), "{log}");
}

#[test]
fn capture_runs_a_script_in_the_build_environment() {
    for mode in sandbox_modes() {
        let mut fx = Fixture::new(mode);
        let a = fx.drv("dep", "echo dep > $out", &[], &[], None);
        let a_out = fx.drv_out(&a);
        let shell = fx.drv(
            "shell",
            "exit 1",
            &[("dep", &a_out), ("passAsFile", "big"), ("big", "B")],
            &[&a],
            None,
        );
        let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
        let script = "echo \"name=$name home=$HOME dep=$(/bin/cat $dep) big=$(/bin/cat $bigPath)\" > $out; echo logged";
        let captured = builder.capture(&shell, script).unwrap();
        assert_eq!(
            String::from_utf8(captured.output).unwrap(),
            "name=shell home=/homeless-shelter dep=dep big=B\n",
            "{mode:?}"
        );
        assert_eq!(captured.log, b"logged\n");
        // The shell derivation itself was not built.
        assert!(!Path::new(&fx.drv_out(&shell)).exists());
    }
}

/// A `builtin:fetchurl` derivation with these attributes.
fn fetchurl_drv(
    fx: &mut Fixture,
    name: &str,
    env: &[(&str, &str)],
    ca: ContentAddress,
) -> envy_store::StorePath {
    let d = fx.drv(name, "", env, &[], Some(ca));
    let mut drv = fx.store.read_derivation(&d).unwrap();
    drv.builder = b"builtin:fetchurl".to_vec();
    drv.platform = b"builtin".to_vec();
    fx.write(drv)
}

/// `unpack = true`: the download is a NAR (xz-compressed when the URL ends in `.xz`) restored
/// at the output; `executable = true`: the fetched file is executable. Both are recursive
/// fixed outputs, checked against the NAR hash.
#[test]
fn builtin_fetchurl_unpacks_nars_and_makes_executables() {
    use envy_store::cache::Compression;
    use std::io::Write;
    let mut fx = Fixture::new(SandboxMode::Auto);
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    fs_err::create_dir_all(tree.join("bin")).unwrap();
    fs_err::write(tree.join("bin/run"), "#!/bin/sh\necho run\n").unwrap();
    fs_err::set_permissions(tree.join("bin/run"), std::fs::Permissions::from_mode(0o755)).unwrap();
    fs_err::write(tree.join("README"), "read me\n").unwrap();
    fs_err::os::unix::fs::symlink("bin/run", tree.join("run")).unwrap();
    let mut nar = Vec::new();
    envy_store::nar::dump_path(&tree, &mut nar).unwrap();
    let recursive = |hash| ContentAddress {
        method: ContentAddressMethod::Fixed(FileIngestionMethod::Recursive),
        hash,
    };
    let nar_hash = Hash::of(HashAlgo::Sha256, &nar);
    let mut xz = Compression::Xz.encoder(Vec::new()).unwrap();
    xz.write_all(&nar).unwrap();
    fs_err::write(tmp.path().join("tree.nar.xz"), xz.finish().unwrap()).unwrap();
    fs_err::write(tmp.path().join("tree.nar"), &nar).unwrap();

    for (name, file) in [("unpacked-xz", "tree.nar.xz"), ("unpacked", "tree.nar")] {
        let url = format!("file://{}", tmp.path().join(file).display());
        let d = fetchurl_drv(
            &mut fx,
            name,
            &[("url", &url), ("unpack", "1")],
            recursive(nar_hash),
        );
        let results = Builder::new(&fx.store, &fx.config, &NoProgress)
            .build(std::slice::from_ref(&d))
            .unwrap();
        let out = fx.out(&results, &d);
        assert_eq!(
            envy_store::nar::nar_hash_path(&out).unwrap().0,
            nar_hash,
            "{name}"
        );
        assert_eq!(
            fs_err::read_to_string(out.join("run")).unwrap(),
            "#!/bin/sh\necho run\n"
        );
        assert!(
            fs_err::symlink_metadata(out.join("run"))
                .unwrap()
                .is_symlink()
        );
    }

    let script = b"#!/bin/sh\necho hi\n";
    fs_err::write(tmp.path().join("script"), script).unwrap();
    let mut exe_nar = Vec::new();
    envy_store::nar::dump_bytes(script, true, &mut exe_nar).unwrap();
    let url = format!("file://{}", tmp.path().join("script").display());
    let d = fetchurl_drv(
        &mut fx,
        "script",
        &[("url", &url), ("executable", "1")],
        recursive(Hash::of(HashAlgo::Sha256, &exe_nar)),
    );
    let results = Builder::new(&fx.store, &fx.config, &NoProgress)
        .build(std::slice::from_ref(&d))
        .unwrap();
    let meta = fs_err::metadata(fx.out(&results, &d)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o555);

    // Not a NAR: the unpack fails with the URL in the message, and nothing is left behind.
    let url = format!("file://{}", tmp.path().join("script").display());
    let d = fetchurl_drv(
        &mut fx,
        "not-a-nar",
        &[("url", &url), ("unpack", "1")],
        recursive(nar_hash),
    );
    let err = Builder::new(&fx.store, &fx.config, &NoProgress)
        .build(std::slice::from_ref(&d))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("cannot download `{url}`")),
        "{err}"
    );
    assert!(!Path::new(&fx.drv_out(&d)).exists());
}
