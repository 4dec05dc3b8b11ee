//! `envy flake lock|update|metadata|show|init`: a flake's lock file and what it declares, with
//! envy's own engine (no Nix needed); `init` copies one of a flake's templates. Lock files are written exactly as Nix 2.8 writes them.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use envy_eval::symbol::Sym;
use envy_eval::{DummyStore, Evaluator, Pos};
use envy_flake::lockfile::{Edge, LockFile, NodeId};
use envy_flake::{FlakeRef, FlakeSession, LockFlags, LockedFlake};

use crate::trust::{Snapshot, Trust, TrustStore};

/// Work with flakes: lock their inputs, update them, show metadata and outputs.
#[derive(Debug, clap::Args)]
pub struct FlakeArgs {
    #[command(subcommand)]
    command: FlakeCommand,
}

#[derive(Debug, clap::Subcommand)]
enum FlakeCommand {
    Lock(LockArgs),
    Update(UpdateArgs),
    Metadata(MetadataArgs),
    Show(ShowArgs),
    Init(crate::cli::init::FlakeInitArgs),
}

/// Create or update `flake.lock` so that it records every input (nothing changes when it is
/// up to date; a flake without inputs gets no lock file).
#[derive(Debug, clap::Args)]
struct LockArgs {
    #[command(flatten)]
    overrides: InputOverrides,
    /// The flake (default: the one in the current directory)
    #[arg(default_value = ".")]
    flake: String,
    /// Re-lock this input (an input path such as `nixpkgs` or `dep/nixpkgs`)
    #[arg(long = "update-input", value_name = "INPUT")]
    update_input: Vec<String>,
    /// Ignore the existing lock file and lock every input afresh
    #[arg(long)]
    recreate_lock_file: bool,
    /// Compute the lock but do not write it
    #[arg(long)]
    no_write_lock_file: bool,
}

/// Update inputs to their latest versions: the named ones, or all of them.
#[derive(Debug, clap::Args)]
struct UpdateArgs {
    #[command(flatten)]
    overrides: InputOverrides,
    /// Inputs to update (input paths); all when none is given
    #[arg(value_name = "INPUT")]
    inputs: Vec<String>,
    /// The flake (default: the one in the current directory)
    #[arg(long, default_value = ".")]
    flake: String,
}

/// Show a flake's references, source, revision and locked inputs.
#[derive(Debug, clap::Args)]
struct MetadataArgs {
    #[command(flatten)]
    overrides: InputOverrides,
    /// The flake (default: the one in the current directory)
    #[arg(default_value = ".")]
    flake: String,
    /// Print JSON, as `nix flake metadata --json` does
    #[arg(long)]
    json: bool,
    /// Fail instead of changing the lock file
    #[arg(long)]
    no_update_lock_file: bool,
    /// Do not write a changed lock file
    #[arg(long)]
    no_write_lock_file: bool,
}

/// Show a flake's outputs as a tree.
#[derive(Debug, clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    overrides: InputOverrides,
    /// The flake (default: the one in the current directory)
    #[arg(default_value = ".")]
    flake: String,
    /// Print JSON, as `nix flake show --json` does
    #[arg(long)]
    json: bool,
}

impl FlakeArgs {
    pub fn run(self) -> Result<()> {
        match self.command {
            FlakeCommand::Lock(a) => {
                let mut flags = LockFlags {
                    recreate_lock_file: a.recreate_lock_file,
                    write_lock_file: !a.no_write_lock_file,
                    input_updates: a
                        .update_input
                        .iter()
                        .map(|s| input_path(s))
                        .collect::<Result<_>>()?,
                    ..LockFlags::default()
                };
                // `flake lock` writes the overridden lock, as Nix's does.
                a.overrides.apply(&mut flags, true)?;
                lock_keeping_allow(&a.flake, &flags)
            }
            FlakeCommand::Update(a) => {
                let mut flags = if a.inputs.is_empty() {
                    LockFlags {
                        recreate_lock_file: true,
                        ..LockFlags::default()
                    }
                } else {
                    LockFlags {
                        input_updates: a
                            .inputs
                            .iter()
                            .map(|s| input_path(s))
                            .collect::<Result<_>>()?,
                        ..LockFlags::default()
                    }
                };
                a.overrides.apply(&mut flags, false)?;
                lock_keeping_allow(&a.flake, &flags)
            }
            FlakeCommand::Metadata(a) => {
                let mut flags = LockFlags {
                    update_lock_file: !a.no_update_lock_file,
                    write_lock_file: !a.no_write_lock_file,
                    ..LockFlags::default()
                };
                a.overrides.apply(&mut flags, false)?;
                let locked = Engine::open()?.lock(&a.flake, &flags)?;
                if a.json {
                    println!("{}", envy_flake::metadata::metadata_json(&locked));
                } else {
                    print!(
                        "{}",
                        metadata_text(&locked, std::io::stdout().is_terminal())
                    );
                }
                Ok(())
            }
            FlakeCommand::Init(a) => {
                let (reference, fragment) = match a.template.rsplit_once('#') {
                    Some((r, f)) => (r, f),
                    None => (a.template.as_str(), ""),
                };
                let mut engine = Engine::open()?;
                let locked = engine.lock(reference, &LockFlags::default())?;
                let template = template_of(&mut engine, &locked, fragment)
                    .with_context(|| format!("cannot use template `{}`", a.template))?;
                crate::cli::init::init_from_flake(&template, &a)
            }
            FlakeCommand::Show(a) => {
                let mut engine = Engine::open()?;
                let mut flags = LockFlags::default();
                a.overrides.apply(&mut flags, false)?;
                let locked = engine.lock(&a.flake, &flags)?;
                let value = engine
                    .session
                    .call(&mut engine.ev, &locked)
                    .map_err(|e| anyhow::anyhow!("{}", e.render(false)))?;
                let attrs = engine
                    .ev
                    .force_attrs(&value, Pos::NONE, "while evaluating the flake")
                    .map_err(|e| anyhow::anyhow!("{}", e.render(false)))?;
                let outputs = attrs.get(Sym::new("outputs")).cloned().unwrap_or(value);
                let color = std::io::stdout().is_terminal() && !a.json;
                let shown = envy_flake::show::show(&mut engine.ev, &outputs, color)
                    .map_err(|e| anyhow::anyhow!("{}", e.render(false)))?;
                if a.json {
                    println!("{}", shown.json);
                } else {
                    for w in &shown.warnings {
                        eprintln!("envy: warning: {w}");
                    }
                    println!("{}", bold(color, &locked.flake.locked.to_string()));
                    for line in &shown.lines {
                        println!("{line}");
                    }
                }
                Ok(())
            }
        }
    }
}

/// The template `fragment` of a locked flake, looked up as Nix 2.8 does: `templates.NAME` then
/// `NAME`; without a name `templates.default` then `defaultTemplate`.
fn template_of(
    engine: &mut Engine,
    locked: &LockedFlake,
    fragment: &str,
) -> Result<crate::cli::init::FlakeTemplate> {
    let render = |e: Box<envy_eval::EvalError>| anyhow::anyhow!("{}", e.render(false));
    let value = engine
        .session
        .call(&mut engine.ev, locked)
        .map_err(render)?;
    let attrs = engine
        .ev
        .force_attrs(&value, Pos::NONE, "while evaluating the flake")
        .map_err(render)?
        .clone();
    let outputs = attrs.get(Sym::new("outputs")).cloned().unwrap_or(value);
    let candidates: Vec<Vec<&str>> = if fragment.is_empty() {
        vec![vec!["templates", "default"], vec!["defaultTemplate"]]
    } else {
        let path: Vec<&str> = fragment.split('.').collect();
        let mut prefixed = vec!["templates"];
        prefixed.extend(&path);
        vec![prefixed, path]
    };
    for candidate in &candidates {
        let mut current = outputs.clone();
        let mut found = true;
        for name in candidate {
            let set = engine
                .ev
                .force_attrs(&current, Pos::NONE, "while looking up the template")
                .map_err(render)?;
            match set.get(Sym::new(name)) {
                Some(v) => current = v.clone(),
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let attr_path = candidate.join(".");
        let set = engine
            .ev
            .force_attrs(&current, Pos::NONE, "while evaluating the template")
            .map_err(render)?
            .clone();
        let Some(path) = set.get(Sym::new("path")) else {
            anyhow::bail!(
                "`{attr_path}` of flake `{}` has no `path`",
                locked.flake.locked
            );
        };
        let path = engine
            .ev
            .coerce_to_path(path, Pos::NONE, "while evaluating the template's path")
            .map_err(render)?;
        let text = |engine: &mut Engine, name: &str| -> Result<Option<String>> {
            match set.get(Sym::new(name)) {
                None => Ok(None),
                Some(v) => Ok(Some(
                    engine
                        .ev
                        .force_string(v, Pos::NONE, "while evaluating the template")
                        .map_err(render)?
                        .to_str_lossy()
                        .into_owned(),
                )),
            }
        };
        let welcome_text = text(engine, "welcomeText")?;
        return Ok(crate::cli::init::FlakeTemplate {
            attr_path,
            source: source_dir(&locked.flake, &path),
            welcome_text,
        });
    }
    let tried = candidates
        .iter()
        .map(|c| format!("`{}`", c.join(".")))
        .collect::<Vec<_>>()
        .join(", ");
    anyhow::bail!(
        "flake `{}` has no template at {tried}\nhint: `envy flake show {}` lists its outputs",
        locked.flake.locked,
        locked.flake.original
    )
}

/// Where a path value of a flake's outputs is on disk: envy evaluates a flake in its source
/// tree, but a path may also name the tree by its store path.
fn source_dir(flake: &envy_flake::Flake, path: &str) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(path);
    if path.exists() {
        return path;
    }
    let root = flake.tree.root();
    let store_dir = crate::engine::flakes::store_dir().ok();
    if let Some(store_dir) = store_dir
        && let Ok(rest) = path.strip_prefix(store_dir.as_path())
    {
        // `<store>/<hash>-source/sub` is `<tree root>/sub`.
        let mut parts = rest.components();
        parts.next();
        return root.join(parts.as_path());
    }
    path
}

/// Lock `reference`. For an allowed local project the user just asked for this lock, so the
/// allow carries over to exactly the bytes written (the files are read once and locked from
/// those bytes); anything else is locked as it is.
fn lock_keeping_allow(reference: &str, flags: &LockFlags) -> Result<()> {
    let cwd = crate::project::current_dir()?;
    let top = FlakeRef::parse(reference, Some(&cwd))
        .with_context(|| format!("cannot use flake reference `{reference}`"))?;
    let local = envy_flake::lock::source_path(&top.input)
        .map(|dir| match top.subdir.as_str() {
            "" => dir,
            sub => dir.join(sub),
        })
        .map(|dir| crate::project::Project::at(crate::project::normalize(&dir)))
        .filter(|p| p.flake_nix().is_file());
    if flags.write_lock_file
        && let Some(project) = local
    {
        let dirs = crate::util::dirs::Dirs::from_env()?;
        let store = TrustStore::new(dirs.trust_dir());
        let snapshot = Snapshot::read(&project)?;
        if store.check_snapshot(&snapshot) == Trust::Allowed {
            let (wrote, notices) = crate::engine::flakes::lock_snapshot(&snapshot, flags)?;
            for n in &notices {
                eprintln!("envy: {n}");
            }
            if let Some(bytes) = wrote
                && store.carry_over(&snapshot, bytes)?
            {
                crate::cache::ProjectCache::new(&dirs, &project).touch_stamp(&dirs)?;
                eprintln!(
                    "envy: `{}` stays allowed with the lock you asked for",
                    project.flake_nix().display()
                );
            }
            return Ok(());
        }
    }
    Engine::open()?.lock(reference, flags).map(|_| ())
}

/// `--override-input INPUT FLAKE_REF`, for every command that locks a flake.
#[derive(Debug, Default, clap::Args)]
pub struct InputOverrides {
    /// Take the input at INPUT (an input path such as `nixpkgs` or `dep/nixpkgs`) from
    /// FLAKE_REF instead of what the flake says. Implies --no-write-lock-file, except for
    /// `envy flake lock`
    #[arg(long, num_args = 2, value_names = ["INPUT", "FLAKE_REF"])]
    pub override_input: Vec<String>,
}

impl InputOverrides {
    /// Add the overrides to `flags`; `write` says whether the lock may still be written.
    pub fn apply(&self, flags: &mut LockFlags, write: bool) -> Result<()> {
        let cwd = crate::project::current_dir()?;
        for pair in self.override_input.chunks(2) {
            let reference = FlakeRef::parse(&pair[1], Some(&cwd))
                .with_context(|| format!("cannot use flake reference `{}`", pair[1]))?;
            flags
                .input_overrides
                .insert(input_path(&pair[0])?, reference);
            flags.write_lock_file &= write;
        }
        Ok(())
    }
}

/// `a/b` → `["a", "b"]`.
fn input_path(s: &str) -> Result<Vec<String>> {
    envy_flake::flake_nix::parse_input_path(s).with_context(|| format!("bad input path `{s}`"))
}

/// An evaluator and flake session on envy's store directory (nothing is built).
struct Engine {
    session: FlakeSession,
    ev: Evaluator,
}

impl Engine {
    fn open() -> Result<Engine> {
        let store_dir = crate::engine::flakes::store_dir()?;
        let session = crate::engine::flakes::session(store_dir.clone())?;
        let ev = crate::engine::flakes::evaluator(
            &session,
            Box::new(DummyStore::new(store_dir)),
            None,
            &crate::backend::current_system(),
        );
        Ok(Engine { session, ev })
    }

    /// Lock the flake `reference` (relative to the current directory), printing Nix's notices.
    fn lock(&mut self, reference: &str, flags: &LockFlags) -> Result<LockedFlake> {
        let cwd = crate::project::current_dir()?;
        let top = FlakeRef::parse(reference, Some(&cwd))
            .with_context(|| format!("cannot use flake reference `{reference}`"))?;
        let locked = self
            .session
            .lock(&mut self.ev, &top, flags)
            .with_context(|| format!("cannot lock flake `{top}`"))?;
        for n in &locked.notices {
            eprintln!("envy: {n}");
        }
        Ok(locked)
    }
}

fn bold(color: bool, s: &str) -> String {
    if color {
        format!("\x1b[1m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

/// `nix flake metadata` without `--json`.
fn metadata_text(locked: &LockedFlake, color: bool) -> String {
    let f = &locked.flake;
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{} {value}\n", bold(color, label)));
    };
    line("Resolved URL: ", f.resolved.to_string());
    line("Locked URL:   ", f.locked.to_string());
    if let Some(d) = &f.nix.description {
        line("Description:  ", d.clone());
    }
    line(
        "Path:         ",
        f.tree.store_dir().print(f.tree.store_path()),
    );
    if let Some(r) = f.locked.input.get_str("rev") {
        line("Revision:     ", r.to_string());
    }
    if let Some(n) = f.locked.input.rev_count() {
        line("Revisions:    ", n.to_string());
    }
    if let Some(t) = f.locked.input.last_modified() {
        line("Last modified:", local_time(t));
    }
    out.push_str(&format!("{}\n", bold(color, "Inputs:")));
    let lock = &locked.lock;
    let mut visited = vec![lock.root()];
    tree(lock, lock.root(), "", color, &mut visited, &mut out);
    out
}

fn tree(
    lock: &LockFile,
    node: NodeId,
    prefix: &str,
    color: bool,
    visited: &mut Vec<NodeId>,
    out: &mut String,
) {
    let inputs = &lock.node(node).inputs;
    for (i, (name, edge)) in inputs.iter().enumerate() {
        let last = i + 1 == inputs.len();
        let branch = if last { "└───" } else { "├───" };
        match edge {
            Edge::Node(child) => {
                let locked = lock
                    .node(*child)
                    .locked
                    .as_ref()
                    .map(|l| l.locked.to_string())
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{prefix}{branch}{}: {locked}\n",
                    bold(color, name)
                ));
                if !visited.contains(child) {
                    visited.push(*child);
                    let next = format!("{prefix}{}", if last { "    " } else { "│   " });
                    tree(lock, *child, &next, color, visited, out);
                }
            }
            Edge::Follows(path) => {
                out.push_str(&format!(
                    "{prefix}{branch}{} follows input '{}'\n",
                    bold(color, name),
                    path.join("/")
                ));
            }
        }
    }
}

/// `%F %T` in local time.
fn local_time(secs: u64) -> String {
    let t = secs as libc::time_t;
    // SAFETY: `localtime_r` writes only into `tm`, which outlives the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return secs.to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}
