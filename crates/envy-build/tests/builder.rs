//! The builder end to end against an in-memory store: real derivations (ATerm files in a
//! temporary store directory), real builders (`/bin/sh`), the sandbox when the kernel allows.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use envy_build::{
    BuildConfig, BuildError, BuildStore, Builder, NoProgress, OutputInfo, SandboxMode, StoreError,
};
use envy_store::content_address::{ContentAddressMethod, FileIngestionMethod};
use envy_store::{
    ContentAddress, Derivation, DerivationOutput, DrvHashes, Hash, HashAlgo, OutputSet, StoreDir,
    StorePath,
};

struct MemStore {
    dir: StoreDir,
    valid: Mutex<BTreeMap<StorePath, OutputInfo>>,
}

impl BuildStore for MemStore {
    fn store_dir(&self) -> &StoreDir {
        &self.dir
    }
    fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError> {
        Ok(self.valid.lock().unwrap().contains_key(path))
    }
    fn references(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        Ok(self
            .valid
            .lock()
            .unwrap()
            .get(path)
            .map(|i| i.references.clone())
            .unwrap_or_default())
    }
    fn register_outputs(&self, outputs: &[OutputInfo]) -> Result<(), StoreError> {
        let mut valid = self.valid.lock().unwrap();
        for info in outputs {
            valid.insert(info.path.clone(), info.clone());
        }
        Ok(())
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store: MemStore,
    config: BuildConfig,
    hashes: DrvHashes,
}

impl Fixture {
    fn new(sandbox: SandboxMode) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StoreDir::new(tmp.path().join("store")).unwrap();
        fs_err::create_dir_all(dir.as_path()).unwrap();
        let mut config = BuildConfig::new(&tmp.path().join("state"));
        config.sandbox = sandbox;
        config.jobs = 2;
        Self {
            store: MemStore {
                dir,
                valid: Mutex::default(),
            },
            config,
            _tmp: tmp,
            hashes: DrvHashes::new(),
        }
    }

    /// Write a derivation running `/bin/sh -c script` with extra env; returns its path.
    fn drv(
        &mut self,
        name: &str,
        script: &str,
        env: &[(&str, &str)],
        inputs: &[&StorePath],
        fixed: Option<ContentAddress>,
    ) -> StorePath {
        let mut drv = Derivation {
            name: name.into(),
            ..Derivation::default()
        };
        drv.builder = b"/bin/sh".to_vec();
        drv.platform = envy_build::builder::host_system().into_bytes();
        drv.args = vec![b"-c".to_vec(), script.as_bytes().to_vec()];
        for (k, v) in [
            ("name", name),
            ("builder", "/bin/sh"),
            ("system", &envy_build::builder::host_system()),
        ]
        .into_iter()
        .chain(env.iter().copied())
        {
            drv.env.insert(k.as_bytes().to_vec(), v.as_bytes().to_vec());
        }
        drv.outputs.insert(
            "out".into(),
            match fixed {
                Some(ca) => DerivationOutput::CaFixed(ca),
                None => DerivationOutput::Deferred,
            },
        );
        for input in inputs {
            drv.input_drvs
                .insert((*input).clone(), OutputSet::of(["out"]));
        }
        let dir = self.store.dir.clone();
        let path = drv
            .finalize(&dir, &mut self.hashes, &mut |p| {
                panic!("unexpected load of {p}")
            })
            .unwrap();
        fs_err::write(dir.full_path(&path), drv.to_aterm(&dir)).unwrap();
        path
    }

    fn out(&self, results: &envy_build::BuildResults, drv: &StorePath) -> std::path::PathBuf {
        self.store.dir.full_path(&results[drv]["out"])
    }
}

fn sandbox_modes() -> Vec<SandboxMode> {
    if envy_build::sandbox::probe().is_ok() {
        vec![SandboxMode::Enabled, SandboxMode::Disabled]
    } else {
        eprintln!("namespaces unavailable: testing unsandboxed builds only");
        vec![SandboxMode::Disabled]
    }
}

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
        let info = fx.store.valid.lock().unwrap()[&results[&b]["out"]].clone();
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

impl Fixture {
    fn drv_out(&self, drv: &StorePath) -> String {
        let text = fs_err::read(self.store.dir.full_path(drv)).unwrap();
        let parsed = Derivation::parse(
            &self.store.dir,
            &text,
            drv.name().strip_suffix(".drv").unwrap(),
        )
        .unwrap();
        match &parsed.outputs["out"] {
            DerivationOutput::InputAddressed(p) => self.store.dir.print(p),
            DerivationOutput::CaFixed(_) => self.store.dir.print(
                &parsed.outputs["out"]
                    .path(&self.store.dir, &parsed.name, "out")
                    .unwrap()
                    .unwrap(),
            ),
            other => panic!("{other:?}"),
        }
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
        let info = fx.store.valid.lock().unwrap()[&results[&d]["out"]].clone();
        assert_eq!(info.ca, Some(ca(good)));

        let wrong = fx.drv("fod2", "echo other > $out", &[], &[], Some(ca(good)));
        let builder = Builder::new(&fx.store, &fx.config, &NoProgress);
        let err = builder.build(std::slice::from_ref(&wrong)).unwrap_err();
        let got = Hash::of(HashAlgo::Sha256, b"other\n");
        assert!(matches!(err, BuildError::HashMismatch { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "hash mismatch in fixed-output derivation `{}`:\n  specified: {}\n  got:       {}",
                fx.store.dir.print(&wrong),
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
    let mut d = fx.drv(
        "src.tar",
        "",
        &[("url", "https://unreachable.invalid/src.tar")],
        &[],
        Some(ca),
    );
    // Make it builtin: rewrite builder.
    let text = fs_err::read_to_string(fx.store.dir.full_path(&d)).unwrap();
    let mut drv = Derivation::parse(&fx.store.dir, text.as_bytes(), "src.tar").unwrap();
    drv.builder = b"builtin:fetchurl".to_vec();
    drv.platform = b"builtin".to_vec();
    let dir = fx.store.dir.clone();
    d = drv
        .finalize(&dir, &mut fx.hashes, &mut |p| panic!("{p}"))
        .unwrap();
    fs_err::write(dir.full_path(&d), drv.to_aterm(&dir)).unwrap();
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
