//! `envy status [--json]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};

use super::Context;
use crate::backend;
use crate::cache::{KeyContext, ProjectCache, cache_key};
use crate::project::Project;
use crate::trust::TrustStore;
use crate::util::humanize;

/// Show the project here, its trust and generation, and what this shell has loaded
///
/// The project's activity is one of: building (since when, its worker, what it builds now),
/// failed (the first line of the error; `envy log --project` has it all), watching (a file
/// watcher rebuilds it when a watched file changes), or idle. `--all` lists the activity of
/// every project envy has built. `--json` prints the same as an object, for scripts and
/// prompts.
#[derive(clap::Args)]
pub struct Status {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Every project envy has a cache for, with its activity.
    #[arg(long)]
    all: bool,
    /// A directory to look at (default: the current directory).
    dir: Option<PathBuf>,
}

impl Status {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let backend = backend::from_env();
        if self.all {
            return all(&ctx, backend.as_deref().ok(), self.json);
        }
        let dir = crate::project::resolve_dir(self.dir.as_deref())?;
        let backend_name = match &backend {
            Ok(b) => b.name().to_string(),
            Err(e) => format!("error: {e}"),
        };

        let loaded = crate::hook::slow::loaded_state().map(|(state, loaded)| {
            json!({
                "root": state.root,
                "generation": loaded.generation,
                "status": state.status.as_str(),
            })
        });
        let blocked = std::env::var(crate::env::vars::__ENVY_STATE)
            .ok()
            .and_then(|s| crate::hook::state::State::decode(&s))
            .map(|s| s.status.as_str());

        let project = Project::find(&dir).map(|project| -> Result<Value> {
            let cache = ProjectCache::new(&ctx.dirs, &project);
            let selection = crate::project::settings::selection(&ctx.dirs, &project)?;
            let gate =
                crate::trust::gate(&TrustStore::new(ctx.dirs.trust_dir()), &project, &selection)?;
            let trust = match &gate {
                crate::trust::Gate::Open(_) => "allowed".to_string(),
                crate::trust::Gate::Closed {
                    trust,
                    selected: false,
                    ..
                } => trust.as_str().to_string(),
                crate::trust::Gate::Closed { trust, flake, .. } => {
                    format!(
                        "{} (`{}`, picked by `envy use`)",
                        trust.as_str(),
                        flake.display()
                    )
                }
                crate::trust::Gate::Unreadable(e) => format!("unreadable: {e}"),
            };
            let current = cache.current()?;
            let generation = match &current {
                Some(pointer) => {
                    let g = cache.load_generation(pointer.generation)?;
                    let up_to_date = backend.as_ref().ok().map(|b| {
                        let env = ctx.user_env();
                        let system = backend::current_system();
                        let kctx = KeyContext {
                            backend: b.name(),
                            system: &system,
                            selection: &selection,
                            env: &env,
                            pinned: &[],
                        };
                        cache_key(&pointer.watch, &kctx) == pointer.key
                    });
                    json!({
                        "number": g.number,
                        "created": g.created,
                        "hash": g.env_hash_hex(),
                        "up_to_date": up_to_date,
                        "watch": g.record.watch.files,
                        "roots": g.roots.iter().map(|r| r.path.clone()).collect::<Vec<_>>(),
                    })
                }
                None => Value::Null,
            };
            Ok(json!({
                "root": project.root(),
                "activity": activity(&ctx, &cache, backend.as_deref().ok(), &selection),
                "trust": trust,
                "devShell": selection.display(),
                "generation": generation,
                "generations": cache.generation_numbers().len(),
                "cache": cache.dir(),
            }))
        });
        let project = project.transpose()?;

        let doc = json!({
            "directory": dir,
            "project": project,
            "loaded": loaded,
            "shell_status": blocked,
            "backend": backend_name,
            "store": store_json(),
            "cache_dir": ctx.dirs.cache_root(),
            "data_dir": ctx.dirs.data_root(),
        });
        if self.json {
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            print_human(&doc);
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn print_human(doc: &Value) {
    let s = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    match doc["project"].as_object() {
        None => println!(
            "project:     none (no flake.nix in {} or above)",
            s(&doc["directory"])
        ),
        Some(p) => {
            println!("project:     {}", s(&p["root"]));
            println!("activity:    {}", activity_line(&p["activity"]));
            println!("trust:       {}", s(&p["trust"]));
            println!("devShell:    {}", s(&p["devShell"]));
            match p["generation"].as_object() {
                None => println!("generation:  none built yet"),
                Some(g) => {
                    let fresh = match g["up_to_date"].as_bool() {
                        Some(true) => "up to date",
                        Some(false) => "stale: rebuilds at the next prompt",
                        None => "unknown",
                    };
                    println!(
                        "generation:  {} of {} (built {}, hash {}, {fresh})",
                        g["number"],
                        p["generations"],
                        humanize::time(g["created"].as_u64().unwrap_or(0)),
                        &s(&g["hash"])[..12.min(s(&g["hash"]).len())]
                    );
                    let watch: Vec<String> =
                        g["watch"].as_array().into_iter().flatten().map(s).collect();
                    println!("watching:    {}", watch.join(", "));
                }
            }
            println!("cache:       {}", s(&p["cache"]));
        }
    }
    match doc["loaded"].as_object() {
        Some(l) => println!(
            "this shell:  generation {} of {} ({})",
            l["generation"],
            s(&l["root"]),
            s(&l["status"])
        ),
        None => match doc["shell_status"].as_str() {
            Some(status) => println!("this shell:  nothing loaded ({status})"),
            None => println!("this shell:  nothing loaded"),
        },
    }
    println!("backend:     {}", s(&doc["backend"]));
    println!("store:       {}", s(&doc["store"]["description"]));
}

/// What is happening to a project now: building, failed, watching or idle.
fn activity(
    ctx: &Context,
    cache: &ProjectCache,
    backend: Option<&dyn backend::Backend>,
    selection: &crate::backend::ShellSelection,
) -> Value {
    use crate::hook::{background, watch};
    let watching = watch::watching(cache);
    if background::running(cache) {
        let (pid, since) = background::worker(cache).unzip();
        let phase = fs_err::read_to_string(cache.build_phase_path()).unwrap_or_default();
        let mut lines = phase.lines();
        let (phase, left) = (
            lines.next().filter(|p| !p.is_empty()),
            lines.next().and_then(|n| n.parse::<u64>().ok()),
        );
        return json!({
            "state": "building",
            "since": since,
            "pid": pid,
            "phase": phase,
            "builds_left": left,
            "watching": watching,
        });
    }
    // A failure counts while the inputs it failed on are unchanged.
    let failure = cache.last_failure().filter(|f| match backend {
        Some(b) => {
            let env = ctx.user_env();
            let system = backend::current_system();
            let kctx = KeyContext {
                backend: b.name(),
                system: &system,
                selection,
                env: &env,
                pinned: &[],
            };
            cache_key(&f.watch, &kctx) == f.key
        }
        None => true,
    });
    if let Some(f) = failure {
        let first = f
            .message
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_string();
        return json!({
            "state": "failed",
            "since": f.when,
            "error": first,
            "watching": watching,
        });
    }
    if let Some(interrupted) = crate::hook::interrupt::Interrupted::load(cache) {
        return json!({
            "state": "interrupted",
            "since": interrupted.when,
            "watching": watching,
        });
    }
    json!({
        "state": if watching { "watching" } else { "idle" },
        "watching": watching,
    })
}

/// One line for `activity` (see [`activity`]).
fn activity_line(a: &Value) -> String {
    let since = |a: &Value| {
        a["since"]
            .as_u64()
            .map(|t| format!(" since {}", humanize::time(t)))
            .unwrap_or_default()
    };
    let watching = if a["watching"].as_bool() == Some(true) {
        "; watching its files"
    } else {
        ""
    };
    match a["state"].as_str().unwrap_or("idle") {
        "building" => {
            let pid = a["pid"]
                .as_u64()
                .map(|p| format!(" (worker {p})"))
                .unwrap_or_default();
            let phase = a["phase"]
                .as_str()
                .map(|p| format!(": {p}"))
                .unwrap_or_default();
            let left = match a["builds_left"].as_u64() {
                Some(1) => ", 1 build left".to_string(),
                Some(n) if n > 1 => format!(", {n} builds left"),
                _ => String::new(),
            };
            format!(
                "building{}{pid}{phase}{left}{watching} (`envy wait` follows it)",
                since(a)
            )
        }
        "failed" => format!(
            "failed{}: {}{watching} (`envy log --project` shows it all)",
            since(a),
            a["error"].as_str().unwrap_or("")
        ),
        "interrupted" => format!(
            "interrupted{} (Ctrl-C); `envy reload` or a change to a watched file builds it again",
            since(a)
        ),
        "watching" => "watching its files: a change is rebuilt before the next prompt".into(),
        _ => "idle".into(),
    }
}

/// `envy status --all`: every project with a cache, and what happens to it.
fn all(ctx: &Context, backend: Option<&dyn backend::Backend>, json_out: bool) -> Result<ExitCode> {
    let mut projects = Vec::new();
    for dir in crate::util::fsutil::list_dir(&ctx.dirs.env_dir()) {
        let Some(cache) = ProjectCache::from_dir(dir) else {
            continue;
        };
        let project = Project::at(cache.root().to_path_buf());
        let selection = crate::project::settings::selection(&ctx.dirs, &project)?;
        projects.push(json!({
            "root": cache.root(),
            "activity": activity(ctx, &cache, backend, &selection),
            "generation": cache.current().ok().flatten().map(|p| p.generation),
        }));
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "projects": projects }))?
        );
    } else if projects.is_empty() {
        println!("no projects yet");
    } else {
        for p in &projects {
            println!(
                "{}: {}",
                p["root"].as_str().unwrap_or(""),
                activity_line(&p["activity"])
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store envy evaluates into and builds in (`ENVY_STORE`), without opening it.
fn store_json() -> Value {
    use crate::engine::daemon_store::StoreChoice;
    match StoreChoice::from_env() {
        Ok(StoreChoice::Daemon(address)) => json!({
            "kind": "nix-daemon",
            "store_dir": address.store_dir.as_str(),
            "socket": address.socket,
            "found_by": address.origin,
            "description": StoreChoice::Daemon(address.clone()).describe(),
        }),
        Ok(StoreChoice::Envy) => {
            let dir = envy_store::StoreConfig::from_env(None).map(|c| c.store_dir);
            json!({
                "kind": "envy",
                "store_dir": dir,
                "description": match &dir {
                    Some(d) => format!("envy's own store `{}`", d.display()),
                    None => "envy's own store (no data directory: set HOME)".to_owned(),
                },
            })
        }
        Err(e) => json!({ "kind": "error", "description": format!("error: {e:#}") }),
    }
}
