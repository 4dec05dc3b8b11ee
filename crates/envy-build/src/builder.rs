//! Realising derivations: plan the graph of what is not valid yet, build it on `jobs`
//! threads, and register each derivation's outputs.
//!
//! One derivation's build, in order (crash-safe: a path becomes valid only at the last step,
//! and a path present on disk but not valid is deleted before its derivation is built):
//!
//! 1. lock its outputs (per-output `flock`; wait if another process holds them), then
//!    re-check: if another process built them meanwhile, done;
//! 2. delete stale (present but invalid) outputs; make a build dir (and a sandbox root);
//! 3. run the builder (sandboxed, or not) with Nix's environment, logging its output;
//! 4. move outputs out of the sandbox root; check fixed-output hashes;
//! 5. canonicalise (read-only, mtime 1), hash the NAR and scan references in one pass;
//! 6. register every output in one store transaction; compress the log; unlock.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use envy_store::content_address::{ContentAddressMethod, FileIngestionMethod};
use envy_store::hash::{HashSink, Hasher};
use envy_store::references::RefScanner;
use envy_store::{ContentAddress, Derivation, DerivationOutput, HashAlgo, StoreDir, StorePath};

use crate::build_store::{BuildStore, OutputInfo};
use crate::env::{BuildEnv, EnvInputs, build_env};
use crate::error::BuildError;
use crate::fetchurl::{self, FetchRequest};
use crate::fsutil;
use crate::lock::LockDir;
use crate::log::{LogDir, LogWriter};
use crate::progress::{BuildEvent, Progress};
use crate::sandbox::{self, HostPath, SANDBOX_BUILD_DIR, Sandbox, SandboxSpec};
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
    pub locks: LockDir,
    pub sandbox: SandboxMode,
    /// Host paths visible in the sandbox.
    pub sandbox_paths: Vec<HostPath>,
    /// `NIX_BUILD_CORES`.
    pub cores: u32,
    /// Derivations built at once.
    pub jobs: usize,
    /// Keep building independent derivations after a failure.
    pub keep_going: bool,
    /// Base URLs of hashed mirrors for `builtin:fetchurl`.
    pub hashed_mirrors: Vec<String>,
    /// This machine's system (`x86_64-linux`).
    pub system: String,
}

impl BuildConfig {
    /// Defaults under a state directory: `builds/`, `log/`, `locks/`.
    #[must_use]
    pub fn new(state_dir: &Path) -> Self {
        Self {
            build_root: state_dir.join("builds"),
            logs: LogDir::new(state_dir.join("log")),
            locks: LockDir::new(state_dir.join("locks")),
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
        }
    }
}

/// Nix's name for this machine's platform.
#[must_use]
pub fn host_system() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// The outputs a build produced (or found valid), by derivation.
pub type BuildResults = BTreeMap<StorePath, BTreeMap<String, StorePath>>;

/// Builds derivations into a store.
pub struct Builder<'a> {
    store: &'a dyn BuildStore,
    config: &'a BuildConfig,
    progress: &'a dyn Progress,
    warned_unsandboxed: AtomicBool,
    built: AtomicUsize,
}

static BUILD_DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl<'a> Builder<'a> {
    #[must_use]
    pub fn new(
        store: &'a dyn BuildStore,
        config: &'a BuildConfig,
        progress: &'a dyn Progress,
    ) -> Self {
        Self {
            store,
            config,
            progress,
            warned_unsandboxed: AtomicBool::new(false),
            built: AtomicUsize::new(0),
        }
    }

    fn store_dir(&self) -> &StoreDir {
        self.store.store_dir()
    }

    /// How many derivations this builder has actually built (not found valid).
    #[must_use]
    pub fn built_count(&self) -> usize {
        self.built.load(Ordering::SeqCst)
    }

    /// Read and parse a `.drv` file from the store.
    ///
    /// # Errors
    /// The file cannot be read or is not a derivation.
    pub fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, BuildError> {
        let file = self.store_dir().full_path(drv_path);
        let text = fs_err::read(&file)?;
        let name = drv_path
            .name()
            .strip_suffix(".drv")
            .unwrap_or(drv_path.name());
        Derivation::parse(self.store_dir(), &text, name).map_err(|e| {
            BuildError::InvalidDerivation {
                drv: file.display().to_string(),
                reason: e.to_string(),
            }
        })
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

    /// Build these derivations and everything they need that is not valid yet.
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
        let outcomes = schedule::run(
            &graph,
            self.config.jobs,
            self.config.keep_going,
            |drv_path| self.build_one(drv_path, &drvs[drv_path]),
        );
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

    /// Add `drv_path` and what it needs to the graph unless its outputs are all valid.
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
        if self.all_valid(drv_path, &outputs)? {
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

    fn all_valid(
        &self,
        drv_path: &StorePath,
        outputs: &BTreeMap<String, StorePath>,
    ) -> Result<bool, BuildError> {
        for path in outputs.values() {
            if !self
                .store
                .is_valid(path)
                .map_err(|e| self.store_error(drv_path, &e))?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn store_error(&self, drv_path: &StorePath, e: &dyn std::fmt::Display) -> BuildError {
        BuildError::Store {
            drv: self.store_dir().print(drv_path),
            message: e.to_string(),
        }
    }

    /// The closure of a derivation's inputs: its sources and its input derivations' outputs,
    /// with everything they reference. All must be valid.
    ///
    /// # Errors
    /// An input is not valid or the store cannot be read.
    pub fn input_closure(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
    ) -> Result<BTreeSet<StorePath>, BuildError> {
        let mut todo: Vec<StorePath> = drv.input_srcs.iter().cloned().collect();
        for (input, wanted) in &drv.input_drvs {
            let input_drv = self.read_derivation(input)?;
            let outputs = self.output_paths(input, &input_drv)?;
            for name in &wanted.outputs {
                let path = outputs
                    .get(name)
                    .ok_or_else(|| BuildError::InvalidDerivation {
                        drv: self.store_dir().print(drv_path),
                        reason: format!(
                            "input `{}` has no output `{name}`",
                            self.store_dir().print(input)
                        ),
                    })?;
                todo.push(path.clone());
            }
        }
        let mut closure = BTreeSet::new();
        while let Some(path) = todo.pop() {
            if closure.insert(path.clone()) {
                let refs = self
                    .store
                    .references(&path)
                    .map_err(|e| self.store_error(drv_path, &e))?;
                todo.extend(refs.into_iter().filter(|r| !closure.contains(r)));
            }
        }
        Ok(closure)
    }

    /// Whether to sandbox this build; warns once when falling back.
    fn use_sandbox(&self) -> Result<bool, BuildError> {
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

    fn build_one(&self, drv_path: &StorePath, drv: &Derivation) -> Result<(), BuildError> {
        let printed = self.store_dir().print(drv_path);
        let outputs = self.output_paths(drv_path, drv)?;
        let keys: Vec<String> = outputs
            .values()
            .map(|p| p.base_name().to_string())
            .collect();
        let _locks = match self.config.locks.try_lock(&keys)? {
            Some(locks) => locks,
            None => {
                self.progress.event(BuildEvent::WaitingForLock {
                    drv: printed.clone(),
                });
                self.config.locks.lock(&keys)?
            }
        };
        if self.all_valid(drv_path, &outputs)? {
            self.progress
                .event(BuildEvent::Substituted { drv: printed });
            return Ok(());
        }
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
        for path in outputs.values() {
            fsutil::delete_path(&self.store_dir().full_path(path))?;
        }
        let started = Instant::now();
        self.progress.event(BuildEvent::Started {
            drv: printed.clone(),
            name: drv.name.clone(),
        });
        let mut log = self.config.logs.create(drv_path.base_name())?;
        let result = self.run_and_register(drv_path, drv, &outputs, &mut log);
        if let Err(e) = &result {
            let _ = log.write(format!("error: {e}\n").as_bytes());
            for path in outputs.values() {
                let _ = fsutil::delete_path(&self.store_dir().full_path(path));
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

    fn run_and_register(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
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
            let top = self.make_top(drv)?;
            let run = self.run_builder(drv_path, drv, outputs, &closure, fixed, &top, log, None);
            let moved = run.and_then(|sandbox_root| {
                if let Some(root) = sandbox_root {
                    for path in outputs.values() {
                        let inside = under(&root, &self.store_dir().full_path(path));
                        if std::fs::symlink_metadata(&inside).is_ok() {
                            fsutil::move_path(&inside, &self.store_dir().full_path(path))?;
                        }
                    }
                }
                Ok(())
            });
            let cleaned = fsutil::delete_path(&top);
            moved?;
            cleaned?;
        }
        let mut infos = Vec::new();
        let candidates: BTreeSet<StorePath> =
            closure.iter().chain(outputs.values()).cloned().collect();
        for (name, path) in outputs {
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
            fsutil::canonicalise(&real)?;
            let mut sink = HashSink::new(HashAlgo::Sha256);
            let mut scanner = RefScanner::new(candidates.iter());
            envy_store::nar::dump_path(&real, &mut Tee(&mut sink, &mut scanner)).map_err(|e| {
                BuildError::Io {
                    path: real.clone(),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
            let (nar_hash, nar_size) = sink.finish();
            let references = scanner.into_found();
            infos.push(OutputInfo {
                path: path.clone(),
                nar_hash,
                nar_size,
                references,
                deriver: Some(drv_path.clone()),
                ca,
            });
        }
        self.store
            .register_outputs(&infos)
            .map_err(|e| self.store_error(drv_path, &e))
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
            let _ = fsutil::delete_path(real);
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
        if env.get("unpack").is_some_and(|v| v == "1") {
            return Err(invalid(
                "`builtin:fetchurl` with `unpack = true` is not supported yet",
            ));
        }
        let flat = matches!(
            ca.method,
            ContentAddressMethod::Fixed(FileIngestionMethod::Flat)
        );
        let request = FetchRequest {
            url: url.clone(),
            hashed_mirrors: self.config.hashed_mirrors.clone(),
            flat_hash: flat.then(|| (ca.hash.algo().name().to_string(), ca.hash.to_hex())),
            executable: env.get("executable").is_some_and(|v| v == "1"),
        };
        log.write(format!("downloading '{url}'\n").as_bytes())?;
        let used = fetchurl::fetch(&request, &self.store_dir().full_path(out))?;
        if used != *url {
            log.write(format!("fetched from hashed mirror '{used}'\n").as_bytes())?;
        }
        Ok(())
    }

    pub(crate) fn store_dir_print(&self, path: &StorePath) -> String {
        self.store_dir().print(path)
    }

    pub(crate) fn make_capture_top(&self, name: &str) -> Result<PathBuf, BuildError> {
        self.make_top_named(&format!("{name}-capture"))
    }

    fn make_top(&self, drv: &Derivation) -> Result<PathBuf, BuildError> {
        self.make_top_named(&drv.name)
    }

    fn make_top_named(&self, name: &str) -> Result<PathBuf, BuildError> {
        fs_err::create_dir_all(&self.config.build_root)?;
        clean_stale_build_dirs(&self.config.build_root);
        let n = BUILD_DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
        let top = self
            .config
            .build_root
            .join(format!("{}-{n}-{name}", std::process::id()));
        fsutil::delete_path(&top)?;
        fs_err::create_dir_all(top.join("build"))?;
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(top.join("build"), std::fs::Permissions::from_mode(0o700))?;
        Ok(top)
    }

    /// Run the derivation's builder in `top`. Returns the sandbox root when sandboxed (the
    /// outputs are inside it). `capture` replaces the builder's arguments and redirects the
    /// outputs (see [`crate::capture`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_builder(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        closure: &BTreeSet<StorePath>,
        fixed: bool,
        top: &Path,
        log: &mut LogWriter,
        capture: Option<&crate::capture::CaptureSetup>,
    ) -> Result<Option<PathBuf>, BuildError> {
        let printed = self.store_dir().print(drv_path);
        let sandboxed = self.use_sandbox()?;
        let host_build_dir = top.join("build");
        let build_dir = if sandboxed {
            PathBuf::from(SANDBOX_BUILD_DIR)
        } else {
            host_build_dir.clone()
        };
        let drv_env = string_env(drv);
        let mut output_strings: BTreeMap<String, String> = outputs
            .iter()
            .map(|(n, p)| (n.clone(), self.store_dir().print(p)))
            .collect();
        let mut drv_env = drv_env;
        if capture.is_some() {
            for (name, value) in output_strings.iter_mut() {
                *value = format!(
                    "{}/{}{name}",
                    build_dir.display(),
                    crate::capture::OUTPUT_PREFIX
                );
                if drv_env.contains_key(name) {
                    drv_env.insert(name.clone(), value.clone());
                }
            }
        }
        let env: BuildEnv = build_env(&EnvInputs {
            drv_path: &printed,
            drv_env: &drv_env,
            outputs: &output_strings,
            store_dir: self.store_dir().as_str(),
            build_dir: &build_dir.display().to_string(),
            cores: self.config.cores,
            fixed_output: fixed,
            host_env: &|name| std::env::var(name).ok(),
        })?;
        for (file, contents) in &env.files {
            fs_err::write(host_build_dir.join(file), contents)?;
        }
        let (program, args): (OsString, Vec<OsString>) = match capture {
            Some(c) => {
                fs_err::write(host_build_dir.join(crate::capture::SCRIPT_NAME), &c.script)?;
                (
                    OsString::from_vec(drv.builder.clone()),
                    vec![OsString::from(format!(
                        "{}/{}",
                        build_dir.display(),
                        crate::capture::SCRIPT_NAME
                    ))],
                )
            }
            None => (
                OsString::from_vec(drv.builder.clone()),
                drv.args
                    .iter()
                    .map(|a| OsString::from_vec(a.clone()))
                    .collect(),
            ),
        };
        let mut command = Command::new(&program);
        command
            .args(&args)
            .env_clear()
            .envs(&env.vars)
            .stdin(Stdio::null());
        let (reader, writer) = std::io::pipe()?;
        command.stdout(writer.try_clone()?).stderr(writer);
        let mut sandbox_root = None;
        if sandboxed {
            let mut host_paths = self.config.sandbox_paths.clone();
            if let Some(deps) = drv_env.get("__impureHostDeps") {
                host_paths.extend(HostPath::parse_list(deps));
            }
            let root = top.join("root");
            let spec = SandboxSpec {
                root: root.clone(),
                build_dir: host_build_dir.clone(),
                store_dir: self.store_dir().as_path().to_path_buf(),
                inputs: closure
                    .iter()
                    .map(|p| self.store_dir().full_path(p))
                    .collect(),
                host_paths,
                network: fixed,
            };
            Sandbox::prepare(&spec)?.wrap(&mut command);
            sandbox_root = Some(root);
        } else {
            command.current_dir(&host_build_dir);
            // SAFETY: only async-signal-safe calls in the forked child.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                    nix::unistd::setsid()?;
                    Ok(())
                });
            }
        }
        let spawned = command.spawn();
        drop(command);
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                let mut reader = reader;
                let mut early = Vec::new();
                let _ = reader.read_to_end(&mut early);
                let _ = log.write(&early);
                let detail = String::from_utf8_lossy(&early).trim().to_string();
                let source = if detail.is_empty() {
                    source
                } else {
                    std::io::Error::new(source.kind(), format!("{source}: {detail}"))
                };
                return Err(BuildError::Spawn {
                    drv: printed,
                    builder: program.to_string_lossy().into_owned(),
                    source,
                });
            }
        };
        let tail = self.pump(&printed, reader, log)?;
        let status = child.wait()?;
        if status.success() {
            return Ok(sandbox_root);
        }
        use std::os::unix::process::ExitStatusExt;
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            _ => status.to_string(),
        };
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(
                ";\nlast {} log lines:\n{}",
                tail.len(),
                tail.iter().map(|l| format!("> {l}\n")).collect::<String>()
            )
        };
        Err(BuildError::BuilderFailed {
            drv: printed,
            status,
            tail: tail.trim_end().to_string(),
        })
    }

    /// Copy the builder's output to the log and to progress events; keep the last lines.
    fn pump(
        &self,
        drv: &str,
        mut reader: std::io::PipeReader,
        log: &mut LogWriter,
    ) -> Result<Vec<String>, BuildError> {
        const TAIL: usize = 10;
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut partial: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            log.write(&buf[..n])?;
            partial.extend_from_slice(&buf[..n]);
            while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&partial[..pos]).into_owned();
                partial.drain(..=pos);
                self.progress.event(BuildEvent::Log {
                    drv: drv.to_string(),
                    line: line.clone(),
                });
                tail.push_back(line);
                if tail.len() > TAIL {
                    tail.pop_front();
                }
            }
        }
        if !partial.is_empty() {
            let line = String::from_utf8_lossy(&partial).into_owned();
            self.progress.event(BuildEvent::Log {
                drv: drv.to_string(),
                line: line.clone(),
            });
            tail.push_back(line);
            if tail.len() > TAIL {
                tail.pop_front();
            }
        }
        Ok(tail.into())
    }
}

/// The derivation's environment as strings (Nix strings are bytes; envy's builders and
/// package set use UTF-8, and anything else is replaced rather than refused).
pub(crate) fn string_env(drv: &Derivation) -> BTreeMap<String, String> {
    drv.env
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Remove build directories left by envy processes that no longer exist (killed mid-build).
fn clean_stale_build_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fsutil::delete_path(&entry.path());
        }
    }
}

/// Writes everything to two writers (the NAR hash and the reference scanner in one pass).
struct Tee<'a, A, B>(&'a mut A, &'a mut B);

impl<A: std::io::Write, B: std::io::Write> std::io::Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}
