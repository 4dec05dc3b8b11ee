//! Background builds: the prompt never waits for a build.
//!
//! When the hook's slow path finds no cached environment for a project's inputs, it starts
//! one detached worker (`envy __build DIR`, its own session, output in the project's
//! `build.log`) and returns at once; the shell keeps what it had. The worker holds the
//! project's `build.lock` for as long as it builds, so ten shells entering the same project
//! start one build; it passes the trust gate itself, builds through [`Environments`], and
//! touches the project's stamp when done — a `stat` the prompt already watches, so the first
//! prompt after the build loads the new generation (or shows the failure, once). A change
//! made while it builds is built once more after it.
//!
//! The worker records who it is and when it started in `build.pid` (`<pid> <unix seconds>`)
//! and its phase in `build.phase`, for `envy status`; the shell's state watches
//! `/proc/<pid>/cwd` of the worker it waits for, so a worker that dies without finishing (killed,
//! out of memory) is noticed by the prompt's `stat` check and the next prompt starts the
//! build again.
//!
//! `ENVY_SYNC=1` (or `sync = true` in `config.toml`) keeps the blocking behaviour.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::cache::ProjectCache;
use crate::project::Project;
use crate::project::environment::Environments;
use crate::trust::{self, Gate, TrustStore};
use crate::util::dirs::Dirs;
use crate::util::fsutil::FileLock;

/// Whether builds block the prompt: `ENVY_SYNC` (`1`/`true` or `0`/`false`), else `sync` in
/// `$XDG_CONFIG_HOME/envy/config.toml`, else no.
pub fn sync_mode() -> bool {
    match std::env::var(crate::env::vars::ENVY_SYNC).as_deref() {
        Ok("1" | "true" | "yes") => return true,
        Ok("0" | "false" | "no") => return false,
        _ => {}
    }
    let Some(file) = envy_store::cache::CacheConfig::default_file() else {
        return false;
    };
    let Ok(text) = fs_err::read_to_string(&file) else {
        return false;
    };
    text.parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("sync").and_then(toml::Value::as_bool))
        .unwrap_or(false)
}

/// Whether a background build of `project` is running now.
pub fn running(cache: &ProjectCache) -> bool {
    matches!(FileLock::try_acquire(&cache.build_lock_path()), Ok(None))
}

/// The running worker's pid and start time (seconds since the epoch), from `build.pid`.
pub fn worker(cache: &ProjectCache) -> Option<(u32, u64)> {
    let text = fs_err::read_to_string(cache.build_pid_path()).ok()?;
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Start the background build of `project` (unless one runs already), with `env` as the
/// environment its evaluation sees. Returns once the worker is started, never waiting for it,
/// with the pid of the process that builds (`None` when it cannot be told).
pub fn start(
    dirs: &Dirs,
    project: &Project,
    env: &BTreeMap<String, String>,
) -> Result<Option<u32>> {
    let cache = ProjectCache::new(dirs, project);
    cache.ensure(dirs)?;
    if running(&cache) {
        return Ok(worker(&cache).map(|(pid, _)| pid));
    }
    Ok(Some(spawn(dirs, project, env)?.id()))
}

/// Start a worker for `project` whatever runs (it exits at once when another one builds).
pub fn spawn(
    dirs: &Dirs,
    project: &Project,
    env: &BTreeMap<String, String>,
) -> Result<std::process::Child> {
    let cache = ProjectCache::new(dirs, project);
    cache.ensure(dirs)?;
    let log = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cache.build_log_path())?
        .into_parts()
        .0;
    let exe = std::env::current_exe().context("cannot find envy's own executable")?;
    let mut command = Command::new(exe);
    command
        .arg("__build")
        .arg(project.root())
        .env_clear()
        .envs(env)
        .env(crate::env::vars::ENVY_PROGRESS, "plain")
        .env(
            crate::env::vars::__ENVY_PHASE_FILE,
            cache.build_phase_path(),
        )
        .current_dir(project.root())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    detach(&mut command);
    command.spawn().context("cannot start the background build")
}

/// The worker: build `root` while holding its build lock, then touch its stamp. At most one
/// rebuild follows, when the inputs changed while it built.
pub fn work(root: &Path) -> Result<()> {
    let dirs = Dirs::from_env()?;
    let project = Project::at(root.to_path_buf());
    let cache = ProjectCache::new(&dirs, &project);
    cache.ensure(&dirs)?;
    let Some(_lock) = FileLock::try_acquire_patiently(&cache.build_lock_path())? else {
        return Ok(());
    };
    crate::util::fsutil::write_atomic(
        &cache.build_pid_path(),
        format!("{} {}\n", std::process::id(), crate::cache::now_unix()).as_bytes(),
    )?;
    let _ = fs_err::remove_file(cache.build_phase_path());
    let mut truncated = false;
    let backend = crate::backend::from_env()?;
    let env = crate::hook::slow::process_env();
    let envs = Environments {
        dirs: &dirs,
        backend: backend.as_ref(),
        env: &env,
        system: crate::backend::current_system(),
        progress: crate::util::progress::Mode::Lines,
    };
    for _ in 0..2 {
        let selection = crate::project::settings::selection(&dirs, &project)?;
        let pins = match trust::gate(&TrustStore::new(dirs.trust_dir()), &project, &selection)? {
            Gate::Open(pins) => pins,
            closed => {
                eprintln!("envy: {}", closed.message(false).unwrap_or_default());
                break;
            }
        };
        if envs.cached(&project, &selection, &pins)?.is_some() {
            break;
        }
        if !truncated {
            // This build's output only (our stdout/stderr append to the log).
            fs_err::OpenOptions::new()
                .write(true)
                .open(cache.build_log_path())?
                .set_len(0)?;
            truncated = true;
        }
        let result = envs.resolve(&project, &selection, false, &pins)?;
        cache.touch_stamp(&dirs)?;
        match result {
            Ok(generation) => eprintln!("envy: built generation {}", generation.number),
            Err(e) => {
                eprintln!("{}", e.message);
                break;
            }
        }
    }
    Ok(())
}

/// Run `command` in a session of its own: Ctrl-C at the prompt and closing the terminal do
/// not reach it (the build worker, the file watcher).
pub(crate) fn detach(command: &mut Command) {
    // SAFETY: `setsid` is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid()
                .map(|_| ())
                .map_err(std::io::Error::from)
        });
    }
}
