//! `envy wait [DIR]` and `envy exec [DIR] -- CMD…`: a project's environment, current, for
//! scripts, editors and CI (no hook needed).

use std::io::{Read, Seek, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::Context;
use crate::cache::{Generation, ProjectCache};
use crate::fsutil::FileLock;
use crate::project::Project;
use crate::trust::{self, Gate, TrustStore};

/// Wait until a project's environment is current
///
/// Follows the project's background build when one runs (its output goes to standard error),
/// or builds the environment here when it is out of date and none runs. Exits 0 once the
/// environment is current, 1 with the build's error when it failed. A project that is not
/// allowed is an error (run `envy allow`).
///
/// Examples:
///   envy wait                 # the project you are in
///   envy wait ~/src/app && code ~/src/app
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Wait {
    /// A directory in the project (default: the current directory).
    dir: Option<PathBuf>,
}

impl Wait {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        match current(&ctx, &project)? {
            Ok(generation) => {
                eprintln!(
                    "envy: `{}` is current (generation {})",
                    project.root().display(),
                    generation.number
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(message) => {
                eprintln!("{}", message.trim_end());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// Run a command in a project's environment
///
/// Waits for the environment first (as `envy wait`), then runs COMMAND with the devShell's
/// variables on top of yours, like `direnv exec`; no hook needed. The devShell's shellHook is
/// not run (it is shell code for interactive shells). Exits with COMMAND's status, or 1 when
/// the environment cannot be built.
///
/// Examples:
///   envy exec -- make test
///   envy exec ~/src/app -- cargo build
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Exec {
    /// A directory in the project (default: the current directory).
    dir: Option<PathBuf>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl Exec {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let project = ctx.project(self.dir.as_deref())?;
        let generation = match current(&ctx, &project)? {
            Ok(g) => g,
            Err(message) => {
                eprintln!("{}", message.trim_end());
                return Ok(ExitCode::FAILURE);
            }
        };
        let mut env = ctx.user_env();
        let diff = crate::env_diff::diff(&env, None, Some(&generation.record));
        for (name, value) in diff.changes {
            match value {
                Some(v) => env.insert(name, v),
                None => env.remove(&name),
            };
        }
        let (program, args) = self.command.split_first().expect("clap requires one");
        let err = std::process::Command::new(program)
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| {
                let bytes = crate::env_record::bytes_from_text(v).into_owned();
                (k, std::ffi::OsString::from_vec(bytes))
            }))
            .exec();
        Err(err).with_context(|| format!("cannot run `{program}`"))
    }
}

/// The project's environment once it is current: `Err` holds a failed build's message.
fn current(ctx: &Context, project: &Project) -> Result<Result<Generation, String>> {
    let selection = crate::settings::selection(&ctx.dirs, project)?;
    let pins = match trust::gate(&TrustStore::new(ctx.dirs.trust_dir()), project, &selection)? {
        Gate::Open(pins) => pins,
        closed => anyhow::bail!("{}", closed.message(false).unwrap_or_default()),
    };
    let cache = ProjectCache::new(&ctx.dirs, project);
    cache.ensure(&ctx.dirs)?;
    // Follow a running build until it lets go of the project; then keep the lock, so no
    // other build of it starts while this one decides (and maybe builds).
    let _lock = follow(&cache)?;
    let backend = crate::backend::from_env()?;
    let env = ctx.user_env();
    let envs = ctx.environments(backend.as_ref(), &env);
    if let Some(generation) = envs.cached(project, &selection, &pins)? {
        return Ok(Ok(generation));
    }
    if let Some(failure) = envs.known_failure(project, &selection, &pins) {
        return Ok(Err(failure.message));
    }
    let result = envs.resolve(project, &selection, false, &pins)?;
    // Shells in the project pick it up at their next prompt.
    cache.touch_stamp(&ctx.dirs)?;
    Ok(result.map_err(|e| e.message))
}

/// Copy the background build's log to stderr as it grows, until the build lock is free;
/// returns the lock, held.
fn follow(cache: &ProjectCache) -> Result<FileLock> {
    let lock_path = cache.build_lock_path();
    if let Some(lock) = FileLock::try_acquire(&lock_path)? {
        return Ok(lock);
    }
    eprintln!("envy: following the background build");
    let mut log = fs_err::File::open(cache.build_log_path()).ok();
    let mut stderr = std::io::stderr();
    let mut copy = |log: &mut Option<fs_err::File>| {
        if let Some(file) = log {
            let mut buf = Vec::new();
            if file.read_to_end(&mut buf).is_ok() {
                let _ = stderr.write_all(&buf);
            }
            // The worker truncates the log when it starts: start over.
            if let (Ok(pos), Ok(meta)) = (file.stream_position(), file.metadata())
                && meta.len() < pos
            {
                let _ = file.seek(std::io::SeekFrom::Start(0));
            }
        }
    };
    loop {
        copy(&mut log);
        if let Some(lock) = FileLock::try_acquire(&lock_path)? {
            copy(&mut log);
            return Ok(lock);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
