//! The embedded backend: envy's own engine, no Nix needed. The flake is locked (writing
//! `flake.lock` for the root flake when it is missing or out of date, as Nix does) and
//! evaluated by envy-eval with its sources mounted in place (hashed, not copied); the
//! devShell derivation is instantiated into envy's store — mounted sources it refers to are
//! copied then, and only then — its inputs are built by envy-build and its environment is
//! captured the way `nix print-dev-env` does (read back instead when that derivation was
//! captured before) — all of which is `crate::engine`'s, shared with `envy shell`; this file
//! adds the flake: locking, mounted inputs, the devShell's attribute, the watch list and the
//! fallback to Nix.
//!
//! The watch list is exactly what the evaluation read: every file, directory listing and
//! environment variable in the evaluator's read record, mapped from mounted store paths back
//! to the user's files; immutable inputs (store paths, the fetch cache) are left out.
//!
//! With `ENVY_STORE=daemon` (or `auto` and a Nix daemon found) the same evaluation writes
//! into Nix's store instead and the daemon realises the environment (substituting from its
//! caches); see [`build_through_daemon`].
//!
//! When the flake needs what the embedded engine cannot provide (an input type it does not
//! fetch, a flake id its registry does not know, a builtin it lacks) and Nix is installed,
//! [`EmbeddedBackend`] hands the build to the Nix backend with a one-line notice.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use envy_build::{BuildEvent, NoProgress};
use envy_eval::EvalStore;
use envy_eval::symbol::Sym;
use envy_eval::{Evaluator, Pos, Value};
use envy_fetch::FetchError;
use envy_fetch::tree::SourceTree;
use envy_flake::mounts::Mounts;
use envy_flake::{FlakeError, FlakeRef, LockFlags};
use envy_store::daemon::{DaemonAddress, DaemonError};
use envy_store::{LocalStore, StoreDir, StorePath};

use super::nix::NixBackend;
use super::{Backend, BackendError, BuildOutput, BuildRequest, ErrorKind, GcRoot};
use crate::engine::daemon_store::{DaemonStore, StoreChoice};
use crate::engine::eval_store::{LazySources, LocalEvalStore};
use crate::engine::{BuildRealiser, Engine, EngineError};
use crate::env::record::WatchList;
use crate::util::progress::ProgressSink;

/// The embedded backend.
pub struct EmbeddedBackend {
    /// Hand unsupported flakes to Nix when it is installed.
    pub fallback_to_nix: bool,
}

/// Why the embedded engine did not produce an environment.
enum Failure {
    /// A real error in the flake or its build: shown as it is.
    Failed(BackendError),
    /// Something the embedded engine does not support (`what`, one line).
    Unsupported { what: String, watch: Vec<PathBuf> },
}

impl From<BackendError> for Failure {
    fn from(e: BackendError) -> Self {
        Failure::Failed(e)
    }
}

/// The `flake.lock` envy wrote for the top flake: its directory and bytes.
type WroteLock = Option<(PathBuf, Vec<u8>)>;

/// What the evaluation thread hands back.
struct Evaluated {
    drv_path: StorePath,
    watch: WatchList,
    notices: Vec<String>,
    wrote_lock: WroteLock,
}

/// What the evaluation thread needs (owned: it runs on its own big stack).
struct Job {
    root: PathBuf,
    flake_ref: Option<String>,
    /// Attribute paths to try, in order (`devShells.<system>.<name>`, …).
    candidates: Vec<String>,
    /// What the attribute is, for messages (`devShell \`default\``).
    what: String,
    system: String,
    /// Files to evaluate from these bytes instead of the disk (the trust gate's snapshots).
    pins: Vec<(PathBuf, Option<Vec<u8>>)>,
    /// `--override-input` pairs (input path, flake reference).
    input_overrides: Vec<(String, String)>,
}

fn setup(e: impl std::fmt::Display) -> BackendError {
    BackendError::new(ErrorKind::Setup, e.to_string())
}

impl Backend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        "embedded"
    }

    fn build(
        &self,
        request: &BuildRequest<'_>,
        progress: &dyn ProgressSink,
    ) -> Result<BuildOutput, BackendError> {
        match build(request, progress) {
            Ok(out) => Ok(out),
            Err(Failure::Failed(e)) => Err(e),
            Err(Failure::Unsupported { what, watch }) => {
                let nix = NixBackend::from_env();
                if self.fallback_to_nix && nix.is_available() {
                    // Nix failing too: say both, the reason for handing over first.
                    let mut out = nix.build(request, progress).map_err(|mut e| {
                        e.message = format!(
                            "error: {what}, and Nix (used instead) failed too:\n{}",
                            e.message
                        );
                        e
                    })?;
                    out.notices
                        .insert(0, format!("{what}; using Nix for this flake"));
                    return Ok(out);
                }
                Err(BackendError::new(
                    ErrorKind::Setup,
                    format!(
                        "error: {what}\nhint: envy's own engine cannot evaluate this flake; install Nix (Debian: `apt install nix-bin`) and envy uses it for such flakes, or set `ENVY_BACKEND=nix`"
                    ),
                )
                .with_watch(watch))
            }
        }
    }
}

/// Where the evaluation writes and the build happens: envy's store, or Nix's through its
/// daemon (`ENVY_STORE`).
enum Target {
    Envy {
        store: Arc<LocalStore>,
        realiser: BuildRealiser,
    },
    Daemon(DaemonStore),
}

impl Target {
    /// Where a valid store path's files are, and its NAR size: a locked input whose tree is
    /// already in the store is not fetched again.
    fn lookup(&self) -> envy_fetch::StoreLookup {
        let find: Arc<envy_fetch::FindInStore> = match self {
            Target::Envy { store, .. } => {
                let store = store.clone();
                Arc::new(move |path| {
                    let info = store.query_path_info(path).ok()??;
                    Some((store.real_path(path), info.nar_size))
                })
            }
            Target::Daemon(store) => {
                let store = store.clone();
                Arc::new(move |path| {
                    // The daemon's files are read where its store directory says they are.
                    let real = PathBuf::from(store.store_dir().print(path));
                    if !real.exists() {
                        return None;
                    }
                    let info = store.client().query_path_info(path).ok()??;
                    Some((real, info.nar_size))
                })
            }
        };
        envy_fetch::StoreLookup(find)
    }

    fn store_dir(&self) -> StoreDir {
        match self {
            Target::Envy { store, .. } => store.store_dir().clone(),
            Target::Daemon(store) => store.store_dir().clone(),
        }
    }
}

fn build(request: &BuildRequest<'_>, progress: &dyn ProgressSink) -> Result<BuildOutput, Failure> {
    match StoreChoice::from_env().map_err(|e| setup(format!("{e:#}")))? {
        StoreChoice::Daemon(address) => build_through_daemon(request, progress, &address),
        StoreChoice::Envy => build_in_envy_store(request, progress),
    }
}

/// The evaluation of the requested devShell.
fn shell_job(request: &BuildRequest<'_>) -> Job {
    let (sys, name) = (request.system, request.selection.name.as_str());
    let mut candidates = vec![format!("devShells.{sys}.{name}")];
    if name == "default" {
        candidates.push(format!("devShell.{sys}"));
    }
    candidates.push(format!("packages.{sys}.{name}"));
    candidates.push(format!("legacyPackages.{sys}.{name}"));
    Job {
        root: request.project_root.to_owned(),
        flake_ref: request.selection.flake_ref.clone(),
        candidates,
        what: format!("devShell `{name}`"),
        system: request.system.to_string(),
        pins: request.pins.iter().flat_map(|s| s.pins()).collect(),
        input_overrides: request.input_overrides.to_vec(),
    }
}

fn build_in_envy_store(
    request: &BuildRequest<'_>,
    progress: &dyn ProgressSink,
) -> Result<BuildOutput, Failure> {
    // Builds during evaluation (import from derivation) are not shown: the sink is borrowed
    // for this call, the engine's display lives as long as the engine.
    let engine = Engine::from_env(Arc::new(NoProgress)).map_err(|e| setup(format!("{e:#}")))?;
    let job = shell_job(request);
    progress.phase("evaluating flake.nix");
    log_evaluation(request.project_root);
    let target = Target::Envy {
        store: engine.store_handle(),
        realiser: engine.realiser(),
    };
    let evaluated = envy_eval::run_with_stack(move || evaluate(job, target))?;

    progress.phase(&format!("building {}", evaluated.drv_path.name()));
    let store_dir = engine.store().store_dir().to_string();
    let render = |event: BuildEvent| match event {
        BuildEvent::Started { name, .. } => progress.phase(&format!("building {name}")),
        BuildEvent::Log { line, .. } => progress.log_line(&line),
        BuildEvent::Planned { to_build } => {
            progress.planned(to_build);
            // Say it before it hurts: these are what no configured cache has.
            if to_build > MANY_BUILDS {
                eprintln!("envy: warning: {}", many_builds(to_build, &store_dir));
            }
        }
        BuildEvent::Finished { ok: true, .. }
        | BuildEvent::Substituted { .. }
        | BuildEvent::AlreadyValid { .. } => progress.done_one(),
        _ => {}
    };
    let failed = |e: EngineError| {
        BackendError::new(ErrorKind::Build, format!("{e}"))
            .with_watch(evaluated.watch.files.clone())
    };
    let (mut record, anchor) = engine
        .capture_and_keep(&evaluated.drv_path, &render)
        .map_err(failed)?;
    let roots = add_root(engine.store(), &anchor, request.roots_dir)?;
    record.watch = evaluated.watch;
    Ok(BuildOutput {
        record,
        roots,
        notices: evaluated.notices,
        wrote_lock: evaluated.wrote_lock,
    })
}

/// The devShell through Nix's daemon: envy evaluates, writing the `.drv`s and sources
/// (mounted flake inputs included) into Nix's store; the daemon builds or substitutes (its
/// substituters apply) the shell's `-env` twin, whose output is the environment and is
/// rooted with an indirect root in the project's roots directory. What the daemon refuses
/// becomes [`Failure::Unsupported`]: said, then handed to the Nix CLI.
fn build_through_daemon(
    request: &BuildRequest<'_>,
    progress: &dyn ProgressSink,
    address: &DaemonAddress,
) -> Result<BuildOutput, Failure> {
    let refused = |what: String, watch: &[PathBuf]| Failure::Unsupported {
        what: format!(
            "Nix's daemon at `{}` refused envy: {what}",
            address.socket.display()
        ),
        watch: watch.to_vec(),
    };
    let store = DaemonStore::connect(address).map_err(|e| {
        // The daemon's error and its causes, without the hint meant for `envy build`.
        let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
        refused(causes.join(": "), &[])
    })?;
    let job = shell_job(request);
    progress.phase("evaluating flake.nix");
    log_evaluation(request.project_root);
    let target = Target::Daemon(store.clone());
    let evaluated = match envy_eval::run_with_stack(move || evaluate(job, target)) {
        Ok(evaluated) => evaluated,
        Err(Failure::Failed(e)) => {
            return Err(match store.refusal() {
                Some(what) => refused(what, &e.watch),
                None => Failure::Failed(e),
            });
        }
        Err(other) => return Err(other),
    };
    let watch = evaluated.watch.files.clone();
    progress.phase(&format!(
        "building {} through Nix's daemon",
        evaluated.drv_path.name()
    ));
    let store_dir = store.store_dir().to_string();
    let captured = store
        .capture_env(&evaluated.drv_path, &mut |missing| {
            // The `-env` twin is always built; the rest is what no substituter of the
            // daemon has.
            let to_build = missing.will_build.len().saturating_sub(1);
            if to_build > MANY_BUILDS {
                eprintln!(
                    "envy: warning: {}",
                    many_builds_in_nix_store(to_build, &store_dir)
                );
            }
        })
        .map_err(|e| match e.downcast_ref::<DaemonError>() {
            Some(DaemonError::Daemon { op, message, .. }) if *op != "buildPaths" => {
                refused(format!("`{op}`: {message}"), &watch)
            }
            _ => Failure::Failed(
                BackendError::new(ErrorKind::Build, format!("{e:#}")).with_watch(watch.clone()),
            ),
        })?;
    fs_err::create_dir_all(request.roots_dir).map_err(setup)?;
    let link = request
        .roots_dir
        .join(format!("embedded-{}", captured.anchor.base_name()));
    store
        .client()
        .add_perm_root(&captured.anchor, &link)
        .map_err(|e| refused(format!("{e}: {}", innermost(&e)), &watch))?;
    let mut record = captured.env;
    record.watch = evaluated.watch;
    Ok(BuildOutput {
        record,
        roots: vec![GcRoot {
            backend: "embedded".to_string(),
            path: link,
            target: Some(store.store_dir().print(&captured.anchor)),
        }],
        notices: evaluated.notices,
        wrote_lock: evaluated.wrote_lock,
    })
}

/// The innermost cause of an error (what a one-line message needs).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// More derivations to build from source than this is worth a warning before building.
const MANY_BUILDS: usize = 10;

/// The warning for `count` derivations no substituter of Nix's daemon has.
fn many_builds_in_nix_store(count: usize, store_dir: &str) -> String {
    format!(
        "{count} derivations must be built from source by Nix's daemon in `{store_dir}`: none of its substituters has them\nhint: add a binary cache that has them to Nix's `substituters` (and its key to `trusted-public-keys`) in nix.conf, then restart the daemon"
    )
}

/// The warning for `count` derivations no cache has, building into `store_dir`.
fn many_builds(count: usize, store_dir: &str) -> String {
    let fix = if store_dir == "/nix/store" {
        "add a binary cache that has them (`substituters` in envy's config.toml), or use Nix's daemon and its caches (`ENVY_STORE=daemon`)"
    } else {
        "`envy store init` gives envy a /nix/store of its own with cache.nixos.org as its binary cache, or `ENVY_STORE=daemon` uses the Nix daemon's store and caches"
    };
    format!(
        "{count} derivations must be built from source in `{store_dir}`: no configured binary cache has them (for a nixpkgs devShell in a private store that is the whole bootstrap, hours of building)\nhint: {fix}"
    )
}

/// Instantiate `attr` of the flake `reference` (resolved against `cwd`) into envy's store:
/// `packages.<system>.<attr>`, `legacyPackages.<system>.<attr>`, or `<attr>` itself, as
/// `nix build FLAKE#ATTR` looks them up. Returns the `.drv` and the lock notices.
pub fn instantiate_flake_attr(
    engine: &Engine,
    cwd: &Path,
    reference: &str,
    attr: &str,
    system: &str,
) -> anyhow::Result<(StorePath, Vec<String>)> {
    let attr = if attr == "default" { "" } else { attr };
    let candidates = crate::engine::flakes::installable_attr_paths(attr, system);
    let job = Job {
        root: cwd.to_owned(),
        flake_ref: Some(if reference.is_empty() {
            ".".to_string()
        } else {
            reference.to_string()
        }),
        candidates,
        what: format!("attribute `{attr}`"),
        system: system.to_string(),
        pins: Vec::new(),
        input_overrides: Vec::new(),
    };
    let target = Target::Envy {
        store: engine.store_handle(),
        realiser: engine.realiser(),
    };
    match envy_eval::run_with_stack(move || evaluate(job, target)) {
        Ok(e) => Ok((e.drv_path, e.notices)),
        Err(Failure::Failed(e)) => Err(anyhow::anyhow!("{}", e.message)),
        Err(Failure::Unsupported { what, .. }) => Err(anyhow::anyhow!(
            "{what}\nhint: envy's own engine cannot evaluate this flake; use `nix build`"
        )),
    }
}

/// One line in `ENVY_EVAL_LOG`, if set (best effort: diagnostics never fail a build).
fn log_evaluation(root: &Path) {
    use std::io::Write;
    let Some(file) = std::env::var_os(crate::env::vars::ENVY_EVAL_LOG).filter(|v| !v.is_empty())
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Ok(mut f) = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = writeln!(f, "{now} {}", root.display());
    }
}

/// Keep the environment alive: a gc root in `dir` on its `-env` store path, which refers to
/// the devShell's sources and its inputs' outputs.
fn add_root(
    store: &LocalStore,
    anchor: &StorePath,
    dir: &Path,
) -> Result<Vec<GcRoot>, BackendError> {
    fs_err::create_dir_all(dir).map_err(setup)?;
    let link = dir.join(format!("embedded-{}", anchor.base_name()));
    store.add_root(&link, anchor).map_err(setup)?;
    Ok(vec![GcRoot {
        backend: "embedded".to_string(),
        path: link,
        target: Some(store.store_dir().print(anchor)),
    }])
}

/// Lock, call the flake, pick the devShell and instantiate it.
fn evaluate(job: Job, target: Target) -> Result<Evaluated, Failure> {
    let store_dir = target.store_dir();
    let session =
        crate::engine::flakes::session_with_store(store_dir.clone(), Some(target.lookup()))
            .map_err(|e| setup(format!("{e:#}")))?;
    let mounts = session.mounts().clone();
    for (path, bytes) in &job.pins {
        mounts.pin(path, bytes.clone());
    }
    let lazy = MountedSources(mounts.clone());
    let (eval_store, realiser): (Box<dyn EvalStore>, Box<dyn envy_eval::Realiser>) = match target {
        Target::Envy { store, realiser } => (
            Box::new(LocalEvalStore::with_lazy_sources(store, lazy)),
            Box::new(realiser),
        ),
        Target::Daemon(store) => (
            Box::new(store.eval_store_with(lazy)),
            Box::new(store.realiser()),
        ),
    };
    let mut ev =
        crate::engine::flakes::evaluator(&session, eval_store, Some(realiser), &job.system);
    let result = evaluate_in(&job, &session, &mut ev, &mounts);
    let record = ev.take_record();
    let watch = watch_list(&record, &mounts, &store_dir);
    match result {
        Ok((drv_path, mut notices, wrote_lock)) => {
            notices.extend(session.builtins().take_notices());
            Ok(Evaluated {
                drv_path,
                watch,
                notices,
                wrote_lock,
            })
        }
        Err(Failure::Failed(e)) => Err(Failure::Failed(e.with_watch(watch.files))),
        Err(Failure::Unsupported { what, .. }) => Err(Failure::Unsupported {
            what,
            watch: watch.files,
        }),
    }
}

fn evaluate_in(
    job: &Job,
    session: &envy_flake::FlakeSession,
    ev: &mut Evaluator,
    mounts: &Mounts,
) -> Result<(StorePath, Vec<String>, WroteLock), Failure> {
    let reference = job
        .flake_ref
        .clone()
        .unwrap_or_else(|| job.root.display().to_string());
    let top = FlakeRef::parse(&reference, Some(&job.root)).map_err(|e| flake_failure(e, mounts))?;
    let mut flags = LockFlags::default();
    for (input, reference) in &job.input_overrides {
        let path =
            envy_flake::flake_nix::parse_input_path(input).map_err(|e| flake_failure(e, mounts))?;
        let reference =
            FlakeRef::parse(reference, Some(&job.root)).map_err(|e| flake_failure(e, mounts))?;
        flags.input_overrides.insert(path, reference);
        flags.write_lock_file = false;
    }
    let locked = session
        .lock(ev, &top, &flags)
        .map_err(|e| flake_failure(e, mounts))?;
    let notices: Vec<String> = locked
        .notices
        .iter()
        .map(|n| n.lines().next().unwrap_or_default().to_string())
        .collect();
    // The lock envy just wrote is what the rest of the evaluation reads as `flake.lock`.
    let wrote_lock = match envy_flake::lock::source_path(&top.input) {
        Some(dir) if locked.wrote_lock_file => {
            let dir = if top.subdir.is_empty() {
                dir
            } else {
                dir.join(&top.subdir)
            };
            let bytes = locked.lock.to_text().into_bytes();
            mounts.pin(&dir.join("flake.lock"), Some(bytes.clone()));
            Some((dir, bytes))
        }
        _ => None,
    };
    let eval_err = |e: Box<envy_eval::EvalError>| eval_failure(&e, mounts);
    let flake = session.call(ev, &locked).map_err(eval_err)?;
    let candidates = &job.candidates;
    let mut shell = None;
    for c in candidates {
        if let Some(v) = get_path(ev, &flake, c).map_err(eval_err)? {
            shell = Some(v);
            break;
        }
    }
    let Some(shell) = shell else {
        let quoted: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
        return Err(Failure::Failed(BackendError::new(
            ErrorKind::Eval,
            format!(
                "error: flake `{}` does not provide attribute {}",
                locked.flake.original,
                quoted.join(", ")
            ),
        )));
    };
    let drv_path = get_path(ev, &shell, "drvPath")
        .map_err(eval_err)?
        .ok_or_else(|| {
            Failure::Failed(BackendError::new(
                ErrorKind::Eval,
                format!(
                    "error: the {} is not a derivation (it has no `drvPath`)",
                    job.what
                ),
            ))
        })?;
    let drv_path = ev
        .force_string(
            &drv_path,
            Pos::NONE,
            "while evaluating the devShell's `drvPath`",
        )
        .map_err(eval_err)?;
    let drv_path = mounts
        .store_dir()
        .parse(&drv_path.to_str_lossy())
        .map_err(|e| Failure::Failed(setup(e)))?;
    Ok((drv_path, notices, wrote_lock))
}

/// `a.b.c` of `v`, or `None` when an attribute on the way is missing.
fn get_path(ev: &mut Evaluator, v: &Value, path: &str) -> envy_eval::EvalResult<Option<Value>> {
    let mut cur = v.clone();
    for part in path.split('.') {
        let attrs = ev.force_attrs(&cur, Pos::NONE, "while looking up the devShell")?;
        match attrs.get(Sym::new(part)) {
            Some(next) => cur = next.clone(),
            None => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// The innermost cause of a flake error.
fn root_cause(e: &FlakeError) -> &FlakeError {
    match e {
        FlakeError::Context { source, .. } => root_cause(source),
        other => other,
    }
}

fn flake_failure(e: FlakeError, mounts: &Mounts) -> Failure {
    let unsupported = match root_cause(&e) {
        FlakeError::NotInRegistry { reference } => Some(format!(
            "flake `{reference}` is not in envy's registry (`~/.config/envy/registry.json`)"
        )),
        FlakeError::FetchPlain(FetchError::UnsupportedInput { input })
        | FlakeError::Fetch {
            source: FetchError::UnsupportedInput { input },
            ..
        } => Some(format!("envy cannot fetch input `{input}`")),
        FlakeError::Eval { message } if is_unsupported_eval(message) => {
            Some(first_line(message).to_string())
        }
        _ => None,
    };
    match unsupported {
        Some(what) => Failure::Unsupported {
            what,
            watch: Vec::new(),
        },
        None => Failure::Failed(BackendError::new(
            ErrorKind::Eval,
            mounts.user_paths(&format!("{e}")),
        )),
    }
}

fn eval_failure(e: &envy_eval::EvalError, mounts: &Mounts) -> Failure {
    let text = mounts.render_error(e, false);
    if is_unsupported_eval(&text) {
        return Failure::Unsupported {
            what: first_line(&text).trim_start_matches("error: ").to_string(),
            watch: Vec::new(),
        };
    }
    Failure::Failed(BackendError::new(ErrorKind::Eval, text))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Errors that mean "envy's evaluator lacks this", not "the flake is wrong".
fn is_unsupported_eval(message: &str) -> bool {
    let line = first_line(message);
    line.contains("is not available in this evaluator")
        || line.contains("not implemented")
        || line.contains("is unsupported")
}

/// Flake inputs read in place by the evaluation, copied into the store when a derivation or
/// text refers to them.
struct MountedSources(Rc<Mounts>);

impl LazySources for MountedSources {
    fn ensure_in_store(&self, path: &StorePath, store: &LocalStore) -> Result<(), String> {
        self.0
            .ensure_in_store(path, store)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn is_lazy(&self, path: &StorePath) -> bool {
        self.0.tree(path).is_some()
    }

    fn tree(&self, path: &StorePath) -> Option<SourceTree> {
        self.0.tree(path)
    }
}

/// The evaluator's read record as a watch list of the user's files.
fn watch_list(record: &envy_eval::ReadRecord, mounts: &Mounts, store_dir: &StoreDir) -> WatchList {
    let store_dir = store_dir.as_path().to_owned();
    let cache = crate::engine::flakes::cache_dir().ok();
    let keep = |p: &Path| -> Option<PathBuf> {
        let real = if p.starts_with(&store_dir) {
            mounts.real_path(p)?
        } else {
            p.to_owned()
        };
        // Store paths and the fetch cache never change under a name.
        if real.starts_with(&store_dir) || cache.as_ref().is_some_and(|c| real.starts_with(c)) {
            return None;
        }
        Some(real)
    };
    let mut watch = WatchList::default();
    for path in record.files.keys() {
        if let Some(p) = keep(path) {
            watch.add_file(p);
        }
    }
    for dir in &record.dirs {
        if let Some(p) = keep(dir) {
            watch.add_dir(p);
        }
    }
    watch.env = record.env.keys().cloned().collect();
    // Which store the environment's paths live in: switching it (`ENVY_STORE=daemon`, a
    // store directory from `envy store init`, another Nix daemon) must not reuse an
    // environment whose paths are in the other store.
    for name in [
        crate::env::vars::ENVY_STORE,
        crate::env::vars::ENVY_STORE_DIR,
        "NIX_REMOTE",
        "NIX_DAEMON_SOCKET_PATH",
    ] {
        if !watch.env.iter().any(|e| e == name) {
            watch.env.push(name.to_string());
        }
    }
    // A flake in a git work tree sees only tracked files, and `self.rev` follows `HEAD`:
    // `git add` and `git commit` change what it evaluates without touching a file it read.
    for tree in mounts.trees() {
        if tree.tracked().is_some() && !cache.as_ref().is_some_and(|c| tree.root().starts_with(c)) {
            for file in git_state_files(tree.root()) {
                watch.add_file(file);
            }
        }
    }
    watch.normalize();
    watch
}

/// The files of the git repository at `work_tree` that decide what a flake there sees: the
/// index (which files are tracked; the cache key covers its list of paths, see
/// `cache::cache_key`), `HEAD` and the branch it points to.
fn git_state_files(work_tree: &Path) -> Vec<PathBuf> {
    let dot_git = work_tree.join(".git");
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        // A linked work tree or submodule: `.git` is a file naming the real directory.
        match fs_err::read_to_string(&dot_git) {
            Ok(text) => match text.trim().strip_prefix("gitdir: ") {
                Some(dir) => work_tree.join(dir),
                None => return Vec::new(),
            },
            Err(_) => return Vec::new(),
        }
    };
    let mut files = vec![git_dir.join("index"), git_dir.join("HEAD")];
    // Refs live in the common directory of linked work trees.
    let common = match fs_err::read_to_string(git_dir.join("commondir")) {
        Ok(dir) => git_dir.join(dir.trim()),
        Err(_) => git_dir.clone(),
    };
    if let Ok(head) = fs_err::read_to_string(git_dir.join("HEAD"))
        && let Some(reference) = head.trim().strip_prefix("ref: ")
    {
        let loose = common.join(reference);
        files.push(if loose.is_file() {
            loose
        } else {
            common.join("packed-refs")
        });
    }
    files
}
