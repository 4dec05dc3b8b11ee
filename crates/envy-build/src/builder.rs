//! Realising derivations in envy's [`LocalStore`]: plan the graph of what is not valid yet
//! (substituting from binary caches where possible), build it on `jobs` threads, and register
//! each derivation's outputs.
//!
//! One derivation's build, in order (crash-safe: a path becomes valid only at the last step,
//! and a path present on disk but not valid is deleted before its derivation is built):
//!
//! 1. take the store's path locks on its outputs (wait if another process holds them), then
//!    re-check: if another process built them meanwhile, done;
//! 2. delete stale (present but invalid) outputs; make a build dir (and a sandbox root);
//! 3. run the builder (sandboxed, or not) with Nix's environment, logging its output;
//! 4. move outputs out of the sandbox root; check fixed-output hashes;
//! 5. scan references, canonicalise and hash (envy-store's `finalize_output`), apply the
//!    derivation's output checks (`allowedReferences`, …);
//! 6. register every output in one store transaction; compress the log; unlock.
//!
//! Against a concurrent `envy store gc`: every input and every valid output the build relies
//! on is made a temporary root of this process *before* its validity is checked, outputs
//! being built are held under their path locks (gc skips locked paths), and registering
//! makes the new outputs temporary roots in the same step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use envy_store::cache::Substituter;
use envy_store::content_address::{ContentAddressMethod, FileIngestionMethod};
use envy_store::hash::Hasher;
use envy_store::local::{PathLock, delete_path};
use envy_store::{
    ContentAddress, Derivation, DerivationOutput, LocalStore, StoreDir, StorePath, ValidPathInfo,
};

use crate::error::BuildError;
use crate::fetchurl::{self, FetchRequest};
use crate::fsutil;
use crate::log::{LogDir, LogWriter};
use crate::output_checks::{CheckInputs, check_outputs};
use crate::progress::{BuildEvent, Progress};
use crate::remote::{Connection, Farm, Machine, Needs, Place, RemoteError, Slot};
use crate::run::under;
use crate::sandbox::{self, HostPath};
use crate::schedule::{self, Outcome};

/// Whether builds run in the namespace sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Always; a kernel that refuses namespaces fails the build.
    Enabled,
    /// Never.
    Disabled,
    /// When the kernel allows it; otherwise build unsandboxed with a warning.
    Auto,
}

impl SandboxMode {
    /// Parse `true`/`false`/`auto` (as in Nix's `sandbox` setting, plus `auto`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "true" | "1" | "yes" => Some(Self::Enabled),
            "false" | "0" | "no" => Some(Self::Disabled),
            "auto" | "" => Some(Self::Auto),
            _ => None,
        }
    }
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Where build directories and sandbox roots are made (best on the store's file system,
    /// so outputs move out with a rename).
    pub build_root: PathBuf,
    pub logs: LogDir,
    pub sandbox: SandboxMode,
    /// Host paths visible in the sandbox.
    pub sandbox_paths: Vec<HostPath>,
    /// `NIX_BUILD_CORES`.
    pub cores: u32,
    /// Derivations built at once on this machine (0: none, `-j 0`: build machines only).
    pub jobs: usize,
    /// Keep building independent derivations after a failure.
    pub keep_going: bool,
    /// Base URLs of hashed mirrors for `builtin:fetchurl`.
    pub hashed_mirrors: Vec<String>,
    /// This machine's system (`x86_64-linux`).
    pub system: String,
    /// Build machines (`builders`); with `jobs` 0 only they build (and `builtin:` fetches).
    pub machines: Vec<Machine>,
    /// Let a build machine substitute the inputs it lacks from its own caches before envy
    /// copies what is still missing (Nix's `builders-use-substitutes`).
    pub builders_use_substitutes: bool,
}

impl BuildConfig {
    /// Defaults under the store's state directory: `builds/` and `log/`.
    #[must_use]
    pub fn new(state_dir: &Path) -> Self {
        Self {
            build_root: state_dir.join("builds"),
            logs: LogDir::new(state_dir.join("log")),
            sandbox: SandboxMode::Auto,
            sandbox_paths: sandbox::DEFAULT_SANDBOX_PATHS
                .iter()
                .map(|p| HostPath::parse(p))
                .collect(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            jobs: 1,
            keep_going: false,
            hashed_mirrors: Vec::new(),
            system: host_system(),
            machines: Vec::new(),
            builders_use_substitutes: false,
        }
    }
}

/// Nix's name for this machine's platform.
#[must_use]
pub fn host_system() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// The outputs a build produced (or found valid, or substituted), by derivation.
pub type BuildResults = BTreeMap<StorePath, BTreeMap<String, StorePath>>;

/// Builds derivations into envy's store.
pub struct Builder<'a> {
    store: &'a LocalStore,
    pub(crate) config: &'a BuildConfig,
    pub(crate) progress: &'a dyn Progress,
    pub(crate) substituter: Option<&'a Substituter>,
    warned_unsandboxed: AtomicBool,
    built: AtomicUsize,
    pub(crate) substituted: AtomicUsize,
    farm: Option<Farm>,
}

impl<'a> Builder<'a> {
    #[must_use]
    pub fn new(store: &'a LocalStore, config: &'a BuildConfig, progress: &'a dyn Progress) -> Self {
        Self {
            store,
            config,
            progress,
            substituter: None,
            warned_unsandboxed: AtomicBool::new(false),
            built: AtomicUsize::new(0),
            substituted: AtomicUsize::new(0),
            farm: (!config.machines.is_empty()).then(|| {
                Farm::new(
                    config.machines.clone(),
                    config.jobs,
                    &config.system,
                    config.build_root.join("known-hosts"),
                )
            }),
        }
    }

    /// Try these binary caches for each derivation's outputs before building it (a
    /// derivation whose outputs are all substituted is not built, nor are its inputs).
    #[must_use]
    pub fn with_substituter(mut self, substituter: &'a Substituter) -> Self {
        self.substituter = (!substituter.is_empty()).then_some(substituter);
        self
    }

    /// The store this builder builds into.
    #[must_use]
    pub fn store(&self) -> &'a LocalStore {
        self.store
    }

    pub(crate) fn store_dir(&self) -> &StoreDir {
        self.store.store_dir()
    }

    /// How many derivations this builder has actually built (not found valid or substituted).
    #[must_use]
    pub fn built_count(&self) -> usize {
        self.built.load(Ordering::SeqCst)
    }

    /// How many derivations had all their outputs substituted from a binary cache.
    #[must_use]
    pub fn substituted_count(&self) -> usize {
        self.substituted.load(Ordering::SeqCst)
    }

    /// Read a valid `.drv` from the store, first making it a temporary root (so gc keeps it
    /// for as long as this process lives).
    ///
    /// # Errors
    /// The derivation is not valid, cannot be read, or is not a derivation.
    pub fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, BuildError> {
        self.store.add_temp_root(drv_path)?;
        if !self.store.is_valid(drv_path)? {
            return Err(BuildError::DerivationNotValid {
                drv: self.store_dir().print(drv_path),
            });
        }
        let drv = self.store.read_derivation(drv_path)?;
        Ok(drv)
    }

    /// The output paths of a derivation (all must be known before building).
    ///
    /// # Errors
    /// An output whose path is not known in advance (floating content-addressed, impure).
    pub fn output_paths(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
    ) -> Result<BTreeMap<String, StorePath>, BuildError> {
        drv.outputs
            .iter()
            .map(|(name, output)| {
                let path = output.path(self.store_dir(), &drv.name, name).ok().flatten().ok_or_else(|| {
                    BuildError::InvalidDerivation {
                        drv: self.store_dir().print(drv_path),
                        reason: format!("output `{name}` has no path known before building (content-addressed derivations are not supported)"),
                    }
                })?;
                Ok((name.clone(), path))
            })
            .collect()
    }

    /// Build these derivations and everything they need that is not valid yet. Every output
    /// in the result is a temporary root of this process.
    ///
    /// # Errors
    /// A derivation failed (the first failure is returned; with several, a summary).
    pub fn build(&self, targets: &[StorePath]) -> Result<BuildResults, BuildError> {
        let mut drvs = BTreeMap::new();
        let mut graph: BTreeMap<StorePath, Vec<StorePath>> = BTreeMap::new();
        let mut results = BuildResults::new();
        for target in targets {
            self.plan(target, &mut drvs, &mut graph, &mut results)?;
        }
        self.progress.event(BuildEvent::Planned {
            to_build: graph.len(),
        });
        let threads = match &self.farm {
            Some(farm) => farm.capacity(self.config.jobs),
            None => self.config.jobs.max(1),
        };
        let outcomes = schedule::run(&graph, threads, self.config.keep_going, |drv_path| {
            self.build_one(drv_path, &drvs[drv_path])
        });
        let total = outcomes.len();
        let mut failures: Vec<BuildError> = Vec::new();
        for (drv_path, outcome) in outcomes {
            match outcome {
                Outcome::Done => {
                    results.insert(
                        drv_path.clone(),
                        self.output_paths(&drv_path, &drvs[&drv_path])?,
                    );
                }
                Outcome::Failed(e) => failures.push(e),
                Outcome::Skipped => {}
            }
        }
        match failures.len() {
            0 => Ok(results),
            1 => Err(failures.remove(0)),
            n => Err(BuildError::DependenciesFailed { failed: n, total }),
        }
    }

    /// Add `drv_path` and what it needs to the graph unless its outputs are all valid or can
    /// all be substituted.
    fn plan(
        &self,
        drv_path: &StorePath,
        drvs: &mut BTreeMap<StorePath, Derivation>,
        graph: &mut BTreeMap<StorePath, Vec<StorePath>>,
        done: &mut BuildResults,
    ) -> Result<bool, BuildError> {
        if graph.contains_key(drv_path) {
            return Ok(true);
        }
        if done.contains_key(drv_path) {
            return Ok(false);
        }
        let drv = self.read_derivation(drv_path)?;
        let outputs = self.output_paths(drv_path, &drv)?;
        if self.invalid_outputs(&outputs)?.is_empty() || self.try_substitute(drv_path, &outputs) {
            done.insert(drv_path.clone(), outputs);
            return Ok(false);
        }
        let mut deps = Vec::new();
        for input in drv.input_drvs.keys() {
            if self.plan(input, drvs, graph, done)? {
                deps.push(input.clone());
            }
        }
        graph.insert(drv_path.clone(), deps);
        drvs.insert(drv_path.clone(), drv);
        Ok(true)
    }

    /// The outputs that are not valid. Each output is made a temporary root before its
    /// validity is checked, so one found valid stays valid.
    fn invalid_outputs<'o>(
        &self,
        outputs: &'o BTreeMap<String, StorePath>,
    ) -> Result<BTreeMap<&'o String, &'o StorePath>, BuildError> {
        let mut invalid = BTreeMap::new();
        for (name, path) in outputs {
            self.store.add_temp_root(path)?;
            if !self.store.is_valid(path)? {
                invalid.insert(name, path);
            }
        }
        Ok(invalid)
    }

    /// The closure of a derivation's inputs: its sources and its input derivations' outputs,
    /// with everything they reference. All must be valid; each is made a temporary root
    /// first.
    ///
    /// # Errors
    /// An input is not valid or the store cannot be read.
    pub fn input_closure(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
    ) -> Result<BTreeSet<StorePath>, BuildError> {
        let printed = || self.store_dir().print(drv_path);
        let mut direct: Vec<StorePath> = drv.input_srcs.iter().cloned().collect();
        for (input, wanted) in &drv.input_drvs {
            let input_drv = self.read_derivation(input)?;
            let outputs = self.output_paths(input, &input_drv)?;
            for name in &wanted.outputs {
                let path = outputs
                    .get(name)
                    .ok_or_else(|| BuildError::InvalidDerivation {
                        drv: printed(),
                        reason: format!(
                            "input `{}` has no output `{name}`",
                            self.store_dir().print(input)
                        ),
                    })?;
                direct.push(path.clone());
            }
        }
        for path in &direct {
            self.store.add_temp_root(path)?;
            if !self.store.is_valid(path)? {
                return Err(BuildError::InputNotValid {
                    drv: printed(),
                    input: self.store_dir().print(path),
                });
            }
        }
        Ok(self.store.closure(&direct)?)
    }

    /// Whether to sandbox this build; warns once when falling back.
    pub(crate) fn use_sandbox(&self) -> Result<bool, BuildError> {
        match self.config.sandbox {
            SandboxMode::Disabled => Ok(false),
            SandboxMode::Enabled => sandbox::probe()
                .map(|()| true)
                .map_err(|source| BuildError::SandboxUnavailable { source }),
            SandboxMode::Auto => match sandbox::probe() {
                Ok(()) => Ok(true),
                Err(e) => {
                    if !self.warned_unsandboxed.swap(true, Ordering::SeqCst) {
                        self.progress.event(BuildEvent::Warning {
                            message: format!(
                                "building without a sandbox: this kernel refuses user namespaces ({e}); builders can see the whole file system and the network"
                            ),
                        });
                    }
                    Ok(false)
                }
            },
        }
    }

    /// Take the store's locks on these outputs, saying so when another process holds one.
    fn lock_outputs(
        &self,
        printed: &str,
        outputs: &BTreeMap<String, StorePath>,
    ) -> Result<Vec<PathLock>, BuildError> {
        let sorted: BTreeSet<&StorePath> = outputs.values().collect();
        let mut held = Vec::with_capacity(sorted.len());
        for path in &sorted {
            match self.store.try_lock_path(path)? {
                Some(lock) => held.push(lock),
                None => {
                    drop(held);
                    self.progress.event(BuildEvent::WaitingForLock {
                        drv: printed.to_string(),
                    });
                    return Ok(self.store.lock_paths(sorted)?);
                }
            }
        }
        Ok(held)
    }

    /// Where to build: a slot here or on a build machine (with a connection to it). Machines
    /// that cannot be reached are skipped (one warning each) and the choice made again.
    #[allow(clippy::type_complexity)]
    fn place(
        &self,
        printed: &str,
        drv: &Derivation,
    ) -> Result<(Option<Slot<'_>>, Option<Connection>), BuildError> {
        let Some(farm) = &self.farm else {
            if self.config.jobs == 0 && !drv.builder.starts_with(b"builtin:") {
                return Err(BuildError::NoMachine {
                    drv: printed.to_string(),
                    reason: "local builds are off (`-j 0`) and no build machines are configured"
                        .into(),
                });
            }
            return Ok((None, None));
        };
        let needs = Needs::of(drv);
        loop {
            let slot = farm.place(&needs).map_err(|e| BuildError::NoMachine {
                drv: printed.to_string(),
                reason: e.reason,
            })?;
            let Place::Remote(i) = slot.place else {
                return Ok((Some(slot), None));
            };
            match farm.connect(i, self.store_dir()) {
                Ok(conn) => return Ok((Some(slot), Some(conn))),
                Err(e) => {
                    if farm.mark_down(i) {
                        self.progress.event(BuildEvent::Warning {
                            message: format!(
                                "cannot reach the build machine `{}`, skipping it for a minute: {}",
                                farm.machines()[i].uri,
                                last_line(&e.to_string())
                            ),
                        });
                    }
                }
            }
        }
    }

    /// Build on machine `i`: copy the input closure it lacks, build there (its log into
    /// `log`), copy the `invalid` outputs back, checked against the machine's NAR hashes, and
    /// check their references.
    #[allow(clippy::too_many_arguments)]
    fn build_remote(
        &self,
        i: usize,
        mut conn: Connection,
        locks: Vec<PathLock>,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        invalid: &BTreeMap<String, StorePath>,
        log: &mut LogWriter,
    ) -> Result<(), BuildError> {
        let farm = self
            .farm
            .as_ref()
            .expect("a remote place comes from the farm");
        let machine = farm.machines()[i].uri.clone();
        let printed = self.store_dir().print(drv_path);
        let closure = self.input_closure(drv_path, drv)?;
        let remote_err = |e: RemoteError| {
            farm.mark_down(i);
            BuildError::Remote {
                drv: printed.clone(),
                machine: machine.clone(),
                message: e.to_string(),
            }
        };
        log.write(format!("building `{printed}` on `{machine}`\n").as_bytes())?;
        conn.copy_closure_to(self.store, &closure, self.config.builders_use_substitutes)
            .map_err(remote_err)?;
        let mut basic = drv.clone();
        // As Nix's build hook: the remote sees the whole input closure as sources.
        basic.input_srcs = closure.clone();
        // What the machine said while taking the inputs (its substitutions, say).
        log.write(&conn.take_log())?;
        let status = conn
            .build_derivation(drv_path, &basic)
            .map_err(remote_err)?;
        let remote_log = conn.take_log();
        log.write(&remote_log)?;
        let text = String::from_utf8_lossy(&remote_log);
        for line in text.lines() {
            self.progress.event(BuildEvent::Log {
                drv: printed.clone(),
                line: line.to_string(),
            });
        }
        if !status.success() {
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let last = &lines[lines.len().saturating_sub(10)..];
            let tail = if last.is_empty() {
                String::new()
            } else {
                format!(
                    ";\nlast {} log lines:\n{}",
                    last.len(),
                    last.iter().map(|l| format!("> {l}\n")).collect::<String>()
                )
            };
            farm.release(i, conn);
            return Err(BuildError::RemoteFailed {
                drv: printed,
                machine,
                message: format!("{} ({})", status.error.trim(), status.name()),
                tail: tail.trim_end().to_string(),
            });
        }
        let wanted: BTreeSet<StorePath> = invalid.values().cloned().collect();
        // Importing takes each output's lock itself (and re-checks validity under it).
        drop(locks);
        let infos = conn
            .copy_paths_from(self.store, &wanted)
            .map_err(remote_err)?;
        farm.release(i, conn);
        for info in &infos {
            if let Some(bad) = info
                .references
                .iter()
                .find(|r| !closure.contains(*r) && !outputs.values().any(|o| o == *r))
            {
                return Err(BuildError::InvalidDerivation {
                    drv: printed,
                    reason: format!(
                        "output `{}` built on `{machine}` refers to `{}`, which is not an input",
                        self.store_dir().print(&info.path),
                        self.store_dir().print(bad)
                    ),
                });
            }
        }
        Ok(())
    }

    fn build_one(&self, drv_path: &StorePath, drv: &Derivation) -> Result<(), BuildError> {
        let printed = self.store_dir().print(drv_path);
        let outputs = self.output_paths(drv_path, drv)?;
        let mut locks = Some(self.lock_outputs(&printed, &outputs)?);
        let invalid: BTreeMap<String, StorePath> = self
            .invalid_outputs(&outputs)?
            .into_iter()
            .map(|(n, p)| (n.clone(), p.clone()))
            .collect();
        if invalid.is_empty() {
            self.progress
                .event(BuildEvent::AlreadyValid { drv: printed });
            return Ok(());
        }
        let (slot, conn) = self.place(&printed, drv)?;
        let place = slot.as_ref().map_or(Place::Local, |s| s.place);
        if place == Place::Local {
            let platform = String::from_utf8_lossy(&drv.platform).into_owned();
            let builder = String::from_utf8_lossy(&drv.builder).into_owned();
            if platform != self.config.system
                && platform != "builtin"
                && !builder.starts_with("builtin:")
            {
                return Err(BuildError::WrongSystem {
                    drv: printed,
                    system: platform,
                    host: self.config.system.clone(),
                });
            }
        }
        for path in invalid.values() {
            self.store.delete_invalid_path(path)?;
        }
        let started = Instant::now();
        self.progress.event(BuildEvent::Started {
            drv: printed.clone(),
            name: drv.name.clone(),
        });
        let mut log = self.config.logs.create(drv_path.base_name())?;
        let result = match (place, conn) {
            (Place::Remote(i), Some(conn)) => {
                let locks = locks.take().unwrap_or_default();
                self.build_remote(i, conn, locks, drv_path, drv, &outputs, &invalid, &mut log)
            }
            _ => self.run_and_register(drv_path, drv, &outputs, &invalid, &mut log),
        };
        drop(slot);
        if let Err(e) = &result {
            let _ = log.write(format!("error: {e}\n").as_bytes());
            // A remote build gave its locks to the imports, which leave nothing partial.
            if place == Place::Local {
                for path in invalid.values() {
                    let _ = delete_path(&self.store_dir().full_path(path));
                }
            }
        } else {
            self.built.fetch_add(1, Ordering::SeqCst);
        }
        log.finish()?;
        self.progress.event(BuildEvent::Finished {
            drv: printed,
            ok: result.is_ok(),
            elapsed: started.elapsed(),
        });
        result
    }

    /// Build `invalid` (a subset of `outputs`; the others are valid already) and register them.
    fn run_and_register(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        invalid: &BTreeMap<String, StorePath>,
        log: &mut LogWriter,
    ) -> Result<(), BuildError> {
        let printed = self.store_dir().print(drv_path);
        let fixed = drv.is_fixed_output();
        let builder = String::from_utf8_lossy(&drv.builder).into_owned();
        let closure = self.input_closure(drv_path, drv)?;
        if let Some(name) = builder.strip_prefix("builtin:") {
            if name != "fetchurl" {
                return Err(BuildError::UnsupportedBuiltin {
                    drv: printed,
                    builder,
                });
            }
            self.builtin_fetchurl(drv_path, drv, outputs, log)?;
        } else {
            if invalid.len() != outputs.len() && !self.use_sandbox()? {
                // Without a sandbox the builder would write over the valid outputs.
                let valid: Vec<String> = outputs
                    .keys()
                    .filter(|n| !invalid.contains_key(*n))
                    .map(|n| format!("`{n}`"))
                    .collect();
                return Err(BuildError::PartlyValid {
                    drv: printed,
                    valid: valid.join(", "),
                });
            }
            let top = self.make_top(drv)?;
            let run = self.run_builder(drv_path, drv, outputs, &closure, fixed, &top, log, None);
            let moved = run.and_then(|sandbox_root| {
                if let Some(root) = sandbox_root {
                    for path in invalid.values() {
                        let inside = under(&root, &self.store_dir().full_path(path));
                        if std::fs::symlink_metadata(&inside).is_ok() {
                            fsutil::move_path(&inside, &self.store_dir().full_path(path))?;
                        }
                    }
                }
                Ok(())
            });
            let cleaned = delete_path(&top);
            moved?;
            cleaned?;
        }
        let candidates: BTreeSet<StorePath> =
            closure.iter().chain(outputs.values()).cloned().collect();
        let mut built: BTreeMap<String, ValidPathInfo> = BTreeMap::new();
        for (name, path) in invalid {
            let real = self.store_dir().full_path(path);
            if std::fs::symlink_metadata(&real).is_err() {
                return Err(BuildError::MissingOutput {
                    drv: printed.clone(),
                    output: name.clone(),
                    path: real.display().to_string(),
                });
            }
            let ca = match &drv.outputs[name] {
                DerivationOutput::CaFixed(ca) => Some(self.check_fixed(&printed, &real, ca)?),
                _ => None,
            };
            let references =
                envy_store::references::scan_references(&real, &candidates).map_err(|source| {
                    BuildError::Store(envy_store::StoreError::Nar {
                        path: self.store_dir().print(path),
                        source,
                    })
                })?;
            let info = self
                .store
                .finalize_output(path, references, Some(drv_path.clone()), ca)?;
            built.insert(name.clone(), info);
        }
        check_outputs(&CheckInputs {
            store: self.store,
            drv_path,
            drv,
            outputs,
            built: &built,
        })?;
        let infos: Vec<ValidPathInfo> = built.into_values().collect();
        self.store.register_valid_paths(&infos)?;
        Ok(())
    }

    /// Check a fixed output's hash; returns its content address.
    fn check_fixed(
        &self,
        printed: &str,
        real: &Path,
        ca: &ContentAddress,
    ) -> Result<ContentAddress, BuildError> {
        let mut hasher = Hasher::new(ca.hash.algo());
        match ca.method {
            ContentAddressMethod::Fixed(FileIngestionMethod::Recursive) => {
                envy_store::nar::dump_path(real, &mut hasher).map_err(|e| BuildError::Io {
                    path: real.into(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            }
            _ => {
                use std::os::unix::fs::PermissionsExt;
                let meta = fs_err::symlink_metadata(real)?;
                if !meta.is_file() || meta.permissions().mode() & 0o100 != 0 {
                    return Err(BuildError::FlatOutputNotFile {
                        drv: printed.into(),
                        path: real.display().to_string(),
                    });
                }
                std::io::copy(&mut fs_err::File::open(real)?, &mut hasher)?;
            }
        }
        let got = hasher.finish();
        if got != ca.hash {
            let _ = delete_path(real);
            return Err(BuildError::HashMismatch {
                path: printed.into(),
                specified: ca.hash.to_sri(),
                got: got.to_sri(),
            });
        }
        Ok(*ca)
    }

    fn builtin_fetchurl(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        log: &mut LogWriter,
    ) -> Result<(), BuildError> {
        let printed = self.store_dir().print(drv_path);
        let env = string_env(drv);
        let invalid = |reason: &str| BuildError::InvalidDerivation {
            drv: printed.clone(),
            reason: reason.into(),
        };
        let out = outputs
            .get("out")
            .ok_or_else(|| invalid("`builtin:fetchurl` requires an `out` output"))?;
        let Some(DerivationOutput::CaFixed(ca)) = drv.outputs.get("out") else {
            return Err(invalid(
                "`builtin:fetchurl` must be a fixed-output derivation",
            ));
        };
        let url = env
            .get("url")
            .ok_or_else(|| invalid("`builtin:fetchurl` requires a `url` attribute"))?;
        let flat = matches!(
            ca.method,
            ContentAddressMethod::Fixed(FileIngestionMethod::Flat)
        );
        let request = FetchRequest {
            url: url.clone(),
            hashed_mirrors: self.config.hashed_mirrors.clone(),
            flat_hash: flat.then(|| (ca.hash.algo().name().to_string(), ca.hash.to_hex())),
            executable: env.get("executable").is_some_and(|v| v == "1"),
            unpack: env.get("unpack").is_some_and(|v| v == "1"),
        };
        log.write(format!("downloading '{url}'\n").as_bytes())?;
        let used = fetchurl::fetch(&request, &self.store_dir().full_path(out))?;
        if used != *url {
            log.write(format!("fetched from hashed mirror '{used}'\n").as_bytes())?;
        }
        Ok(())
    }
}

/// The last non-empty line of a message.
fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
}

/// The derivation's environment as strings (Nix strings are bytes: what is not UTF-8 is
/// carried as escaped bytes, see `envy_store::text`, and the builder gets the bytes).
pub(crate) fn string_env(drv: &Derivation) -> BTreeMap<String, String> {
    drv.env
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                envy_store::text::text_from_bytes(v),
            )
        })
        .collect()
}
