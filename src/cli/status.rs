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
/// `--json` prints the same as an object, for scripts and prompts.
#[derive(clap::Args)]
pub struct Status {
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// A directory to look at (default: the current directory).
    dir: Option<PathBuf>,
}

impl Status {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let dir = crate::project::resolve_dir(self.dir.as_deref())?;
        let backend = backend::from_env();
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
