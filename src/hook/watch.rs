//! The file watcher: while a project is loaded in some live shell, one process per project
//! (`envy __watch DIR`) watches exactly its watch list with inotify and starts the background
//! build when a watched file changes, so the new environment is often ready before the next
//! prompt.
//!
//! It holds no state the prompt needs: the prompt's `stat` check stays the authority, and a
//! build the watcher starts is the ordinary worker of [`super::background`] (one per project,
//! shared with every shell and `envy wait`; its end touches the stamp the prompt watches).
//! The watcher holds the project's `watch.lock` for as long as it runs, and exits when no live
//! shell has the project loaded (the leases in `live-v1/`; a lease whose shell is gone does
//! not count).
//!
//! What it watches: the files and directory listings of the current generation's watch list
//! and of the last failure's, the project's `flake.nix` and `flake.lock`, and the project's
//! stamp (touched by `envy allow`, so an edit of `flake.nix` is built once it is allowed).
//! It watches each file's directory, not the file, so editors that replace files by renaming
//! are seen too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use notify::{EventKind, RecursiveMode, Watcher as _};

use super::background;
use crate::cache::ProjectCache;
use crate::cache::live::Lease;
use crate::project::Project;
use crate::util::dirs::Dirs;
use crate::util::fsutil::FileLock;

/// How often the watcher looks for a live shell using its project.
const LEASE_CHECK: Duration = Duration::from_secs(1);

/// Quiet time after a change before building: editors write a file in several steps.
const SETTLE: Duration = Duration::from_millis(150);

/// The longest a stream of changes delays the build.
const MAX_SETTLE: Duration = Duration::from_secs(2);

/// Whether the watcher is wanted: background mode, and not turned off by `ENVY_WATCH=0`.
pub fn enabled() -> bool {
    let off = matches!(
        std::env::var(crate::env::vars::ENVY_WATCH).as_deref(),
        Ok("0" | "false" | "no")
    );
    !off && !background::sync_mode()
}

/// Whether a watcher runs for the project of `cache`.
pub fn watching(cache: &ProjectCache) -> bool {
    matches!(FileLock::try_acquire(&cache.watch_lock_path()), Ok(None))
}

/// Start the watcher of `project` unless one runs (or watching is off), with `env` as the
/// environment its builds see. Never waits for it.
pub fn start(dirs: &Dirs, project: &Project, env: &BTreeMap<String, String>) -> Result<()> {
    if !enabled() {
        return Ok(());
    }
    let cache = ProjectCache::new(dirs, project);
    if watching(&cache) {
        return Ok(());
    }
    // What it did and why, for `envy status` readers and bug reports (the last watcher's).
    let log = fs_err::File::create(cache.watch_log_path())?.into_parts().0;
    let exe = std::env::current_exe().context("cannot find envy's own executable")?;
    let mut command = Command::new(exe);
    command
        .arg("__watch")
        .arg(project.root())
        .env_clear()
        .envs(env)
        .current_dir(project.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    background::detach(&mut command);
    // A watcher that cannot start costs only the early rebuild: the prompt still decides.
    let _ = command.spawn();
    Ok(())
}

/// What one round of watching looks at.
#[derive(Debug, Default)]
struct Targets {
    files: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl Targets {
    fn of(dirs: &Dirs, project: &Project) -> Self {
        let cache = ProjectCache::new(dirs, project);
        let mut t = Targets::default();
        t.files.insert(project.flake_nix());
        t.files.insert(project.flake_lock());
        t.files.insert(cache.stamp_path());
        let watches = cache
            .current()
            .ok()
            .flatten()
            .map(|p| p.watch)
            .into_iter()
            .chain(cache.last_failure().map(|f| f.watch));
        for watch in watches {
            t.files.extend(watch.files);
            t.dirs.extend(watch.dirs);
        }
        t
    }

    /// The directories to hand to inotify.
    fn watched_dirs(&self) -> BTreeSet<PathBuf> {
        let mut out: BTreeSet<PathBuf> = self
            .files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        out.extend(self.dirs.iter().cloned());
        out
    }

    fn matches(&self, event: &notify::Event) -> bool {
        // Reads (the build's own, anyone's) change nothing.
        if matches!(event.kind, EventKind::Access(_)) {
            return false;
        }
        event.paths.iter().any(|p| {
            self.files.contains(p)
                || self.dirs.contains(p)
                || p.parent().is_some_and(|d| self.dirs.contains(d))
        })
    }

    /// Whether any target changed at or after `since` (a change between rounds).
    fn changed_since(&self, since: SystemTime) -> bool {
        self.files
            .iter()
            .chain(&self.dirs)
            .filter_map(|p| std::fs::symlink_metadata(p).ok())
            .any(|m| m.modified().is_ok_and(|t| t >= since))
    }
}

/// Whether a live shell has `project_key` loaded.
fn in_use(dirs: &Dirs, project_key: &str) -> bool {
    Lease::all(dirs)
        .iter()
        .any(|(lease, alive)| *alive && lease.project_key == project_key)
}

/// The watcher process (`envy __watch DIR`).
pub fn run(root: &Path) -> Result<()> {
    let dirs = Dirs::from_env()?;
    let project = Project::at(root.to_path_buf());
    let cache = ProjectCache::new(&dirs, &project);
    cache.ensure(&dirs)?;
    let Some(_lock) = FileLock::try_acquire_patiently(&cache.watch_lock_path())? else {
        return Ok(());
    };
    let env = super::slow::process_env();
    let key = project.key();
    // The shell that started us writes its lease right after: look from the first check on.
    let mut checked = Instant::now();
    // A change made before the first round armed its watches is seen by no event: the first
    // round starts with a worker, which finds the inputs built (and exits) or builds them.
    let mut first = true;
    // When the last worker started: a change since then, up to the moment the next round's
    // watches are armed, is seen by its time instead.
    let mut last_worker: Option<SystemTime> = None;
    loop {
        let targets = Targets::of(&dirs, &project);
        let (tx, rx) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .context("cannot start the file watcher")?;
        for dir in targets.watched_dirs() {
            // A directory that does not exist (yet) has nothing to say.
            let _ = watcher.watch(&dir, RecursiveMode::NonRecursive);
        }
        // Armed: what changed before this is found by its time (the worker touches the stamp
        // when it ends, which is no reason to build again).
        let mut changed = std::mem::take(&mut first)
            || last_worker.is_some_and(|started| {
                let mut since = Targets::of(&dirs, &project);
                since.files.remove(&cache.stamp_path());
                since.changed_since(started)
            });
        if changed && last_worker.is_some() {
            eprintln!("envy: a watched file changed while the worker ran");
        }
        while !changed {
            if checked.elapsed() >= LEASE_CHECK {
                if !in_use(&dirs, &key) {
                    eprintln!("envy: no live shell has the project loaded: the watcher exits");
                    return Ok(());
                }
                checked = Instant::now();
            }
            match rx.recv_timeout(LEASE_CHECK.saturating_sub(checked.elapsed())) {
                Ok(Ok(event)) => {
                    changed = targets.matches(&event);
                    if changed {
                        eprintln!("envy: changed: {:?}", event.paths);
                    }
                }
                Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
        // Settle: wait until the watched files have been quiet for a moment (events about
        // anything else, like `envy status` probing the locks, do not count), but not forever.
        let give_up = Instant::now() + MAX_SETTLE;
        let mut quiet_from = Instant::now();
        loop {
            let now = Instant::now();
            let until = (quiet_from + SETTLE).min(give_up);
            if now >= until {
                break;
            }
            match rx.recv_timeout(until - now) {
                Ok(Ok(event)) if targets.matches(&event) => quiet_from = Instant::now(),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        drop(watcher);
        if !in_use(&dirs, &key) {
            eprintln!("envy: no live shell has the project loaded: the watcher exits");
            return Ok(());
        }
        eprintln!("envy: starting the build worker");
        let started = crate::cache::file_clock_now();
        // The worker builds what the prompt would (or finds the inputs built, and exits).
        let mut child = background::spawn(&dirs, &project, &env)?;
        let _ = child.wait();
        // It found another worker building: let that one finish, it re-checks the inputs.
        while background::running(&cache) {
            std::thread::sleep(Duration::from_millis(100));
        }
        last_worker = Some(started);
    }
}
