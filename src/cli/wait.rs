//! `envy wait [DIR]` and `envy exec [DIR] -- CMD…`: a project's environment, current, for
//! scripts, editors and CI (no hook needed).

use std::io::{Read, Seek, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};

use super::Context;
use crate::cache::{Generation, ProjectCache};
use crate::hook::background;
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
        let diff = crate::env::diff::diff(&env, None, Some(&generation.record));
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
                let bytes = crate::env::record::bytes_from_text(v).into_owned();
                (k, std::ffi::OsString::from_vec(bytes))
            }))
            .exec();
        Err(err).with_context(|| format!("cannot run `{program}`"))
    }
}

/// The project's environment once it is current: `Err` holds a failed build's message.
///
/// Every build goes through the project's background worker (started here when none runs),
/// so its output is always the project's `build.log`; this follows that log until the worker
/// lets go of the project and a result is there.
fn current(ctx: &Context, project: &Project) -> Result<Result<Generation, String>> {
    let selection = crate::project::settings::selection(&ctx.dirs, project)?;
    let pins = match trust::gate(&TrustStore::new(ctx.dirs.trust_dir()), project, &selection)? {
        Gate::Open(pins) => pins,
        closed => anyhow::bail!("{}", closed.message(false).unwrap_or_default()),
    };
    let cache = ProjectCache::new(&ctx.dirs, project);
    cache.ensure(&ctx.dirs)?;
    let backend = crate::backend::from_env()?;
    let env = ctx.user_env();
    let envs = ctx.environments(backend.as_ref(), &env);
    let mut log = LogFollower::default();
    let mut started: Option<Instant> = None;
    let mut seen_running = false;
    loop {
        let running = background::running(&cache);
        if running && !seen_running {
            seen_running = true;
            eprintln!("envy: following the background build");
        }
        // Only this build's log: a log from before it is not copied.
        if seen_running || started.is_some() {
            log.copy(&cache.build_log_path());
        }
        if !running {
            if let Some(generation) = envs.cached(project, &selection, &pins)? {
                return Ok(Ok(generation));
            }
            if let Some(failure) = envs.known_failure(project, &selection, &pins) {
                return Ok(Err(failure.message));
            }
            match started {
                None => {
                    // The log is the next build's from here on.
                    let _ = fs_err::write(cache.build_log_path(), b"");
                    background::start(&ctx.dirs, project, &env)?;
                    started = Some(Instant::now());
                }
                // It ran (or had time to) and left no result: say where to look.
                Some(at) if seen_running || at.elapsed() > Duration::from_secs(30) => {
                    anyhow::bail!(
                        "the build of `{}` ended without a result\nhint: `envy log --project` shows its output",
                        project.root().display()
                    )
                }
                Some(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Copies a growing log to stderr (starting over when the worker truncates it).
#[derive(Default)]
struct LogFollower {
    file: Option<fs_err::File>,
}

impl LogFollower {
    fn copy(&mut self, path: &std::path::Path) {
        if self.file.is_none() {
            self.file = fs_err::File::open(path).ok();
        }
        let Some(file) = &mut self.file else {
            return;
        };
        if let (Ok(pos), Ok(meta)) = (file.stream_position(), file.metadata())
            && meta.len() < pos
        {
            let _ = file.seek(std::io::SeekFrom::Start(0));
        }
        let mut buf = Vec::new();
        if file.read_to_end(&mut buf).is_ok() && !buf.is_empty() {
            let _ = std::io::stderr().write_all(&buf);
        }
    }
}
