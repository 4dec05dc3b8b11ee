//! The fixture the builder's integration tests share: a real envy store (SQLite database,
//! locks, temporary roots) in a temporary directory, and derivations written into it.
#![allow(dead_code)]

use envy_build::{BuildConfig, SandboxMode};
use envy_store::{
    ContentAddress, Derivation, DerivationOutput, DrvHashes, LocalStore, OutputSet, StoreConfig,
    StoreDir, StorePath, ValidPathInfo,
};

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub store: LocalStore,
    pub config: BuildConfig,
    pub hashes: DrvHashes,
}

impl Fixture {
    pub fn new(sandbox: SandboxMode) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Self::in_dir(tmp, sandbox)
    }

    /// A store under `tmp/<name>` with the store dir `tmp/store` shared by every fixture made
    /// with the same `tmp` path (for substitution between two stores).
    fn in_dir(tmp: tempfile::TempDir, sandbox: SandboxMode) -> Self {
        let store = LocalStore::open(&StoreConfig::new(
            tmp.path().join("store"),
            tmp.path().join("state"),
        ))
        .unwrap();
        let mut config = BuildConfig::new(&tmp.path().join("state"));
        config.sandbox = sandbox;
        config.jobs = 2;
        Self {
            store,
            config,
            tmp,
            hashes: DrvHashes::new(),
        }
    }

    /// Throw the store away (files and database) and start an empty one at the same place:
    /// the same store dir, so binary caches filled from the old one serve the new one.
    pub fn reset(&mut self) {
        for sub in ["store", "state"] {
            envy_store::local::delete_path(&self.tmp.path().join(sub)).unwrap();
        }
        self.store = LocalStore::open(&StoreConfig::new(
            self.tmp.path().join("store"),
            self.tmp.path().join("state"),
        ))
        .unwrap();
        self.hashes = DrvHashes::new();
    }

    pub fn dir(&self) -> &StoreDir {
        self.store.store_dir()
    }

    pub fn info(&self, path: &StorePath) -> ValidPathInfo {
        self.store.path_info(path).unwrap()
    }

    /// Write a derivation running `/bin/sh -c script` with extra env; returns its path.
    pub fn drv(
        &mut self,
        name: &str,
        script: &str,
        env: &[(&str, &str)],
        inputs: &[&StorePath],
        fixed: Option<ContentAddress>,
    ) -> StorePath {
        self.drv_outputs(name, script, env, inputs, &["out"], fixed)
    }

    /// Like `drv`, with these outputs (`fixed` applies to a single `out`).
    pub fn drv_outputs(
        &mut self,
        name: &str,
        script: &str,
        env: &[(&str, &str)],
        inputs: &[&StorePath],
        outputs: &[&str],
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
        if outputs != ["out"] {
            drv.env
                .insert(b"outputs".to_vec(), outputs.join(" ").into_bytes());
        }
        for output in outputs {
            drv.outputs.insert(
                (*output).into(),
                match fixed {
                    Some(ca) => DerivationOutput::CaFixed(ca),
                    None => DerivationOutput::Deferred,
                },
            );
        }
        for input in inputs {
            drv.input_drvs
                .insert((*input).clone(), OutputSet::of(["out"]));
        }
        self.write(drv)
    }

    /// Fill in a derivation's output paths and write it to the store.
    pub fn write(&mut self, mut drv: Derivation) -> StorePath {
        let dir = self.dir().clone();
        let path = drv
            .finalize(&dir, &mut self.hashes, &mut |p| {
                panic!("unexpected load of {p}")
            })
            .unwrap();
        assert_eq!(self.store.write_derivation(&drv).unwrap(), path);
        path
    }

    pub fn out(&self, results: &envy_build::BuildResults, drv: &StorePath) -> std::path::PathBuf {
        self.dir().full_path(&results[drv]["out"])
    }
}

impl Fixture {
    /// The path of output `out` of a derivation in the store.
    pub fn drv_out(&self, drv: &StorePath) -> String {
        self.drv_output(drv, "out")
    }

    /// The path of an output of a derivation in the store.
    pub fn drv_output(&self, drv: &StorePath, output: &str) -> String {
        let parsed = self.store.read_derivation(drv).unwrap();
        let path = parsed.outputs[output]
            .path(self.dir(), &parsed.name, output)
            .unwrap()
            .unwrap();
        self.dir().print(&path)
    }
}

pub fn sandbox_modes() -> Vec<SandboxMode> {
    if envy_build::sandbox::probe().is_ok() {
        vec![SandboxMode::Enabled, SandboxMode::Disabled]
    } else {
        eprintln!("namespaces unavailable: testing unsandboxed builds only");
        vec![SandboxMode::Disabled]
    }
}
