//! `envy print-dev-env [--json] [FLAKE_REF]`.

use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::backend::{self, BuildRequest, ShellSelection};
use crate::env_record::EnvRecord;
use crate::progress::Progress;
use crate::project::Project;

/// Print a devShell's environment, as `nix print-dev-env` does
///
/// Without FLAKE_REF, the project here (with the devShell `envy use` picked); `PATH#NAME`
/// for a local flake, or any flake reference the backend understands. Local projects go
/// through envy's cache. Naming a flake here is consent to evaluate it, as with `nix
/// develop`. The JSON is Nix's shape (`variables`, `bashFunctions`) plus an `envy` object
/// with the watch list; without `--json`, a bash script to `source`.
///
/// Examples:
///   envy print-dev-env --json | jq '.variables | keys'
///   envy print-dev-env .#ci > ci-env.sh
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct PrintDevEnv {
    /// Print JSON instead of a bash script.
    #[arg(long)]
    json: bool,
    /// The flake and devShell (`[FLAKE_REF][#NAME]`; default: the project here).
    #[arg(value_name = "FLAKE_REF")]
    flake_ref: Option<String>,
}

impl PrintDevEnv {
    pub fn run(self) -> Result<ExitCode> {
        let ctx = Context::new()?;
        let backend = backend::from_env()?;
        let env = ctx.user_env();
        let arg = self.flake_ref.unwrap_or_default();
        let (reference, name) = match arg.rsplit_once('#') {
            Some((r, n)) => (r.to_string(), Some(n.to_string())),
            None => (arg, None),
        };
        let local = if reference.is_empty() {
            Some(ctx.project(None)?)
        } else {
            let path = reference.strip_prefix("path:").unwrap_or(&reference);
            let dir = crate::project::current_dir()?.join(path);
            dir.join(crate::project::FLAKE_NIX)
                .is_file()
                .then(|| Project::at(crate::project::normalize(&dir)))
        };
        let record = match local {
            Some(project) => {
                let selection = match name {
                    Some(name) => ShellSelection {
                        flake_ref: None,
                        name,
                    },
                    None => crate::settings::selection(&ctx.dirs, &project)?,
                };
                // Asking for it is the consent; what is read once is what is evaluated.
                let pins = [crate::trust::Snapshot::read(&project)?];
                let resolved = ctx
                    .environments(backend.as_ref(), &env)
                    .resolve(&project, &selection, false, &pins)?;
                resolved
                    .map_err(|e| anyhow::anyhow!("{}", e.message))?
                    .record
            }
            None => {
                let selection = ShellSelection {
                    flake_ref: Some(reference.clone()),
                    name: name.unwrap_or_else(|| "default".into()),
                };
                let roots = tempfile_dir()?;
                let cwd = crate::project::current_dir()?;
                let system = backend::current_system();
                let request = BuildRequest {
                    project_root: &cwd,
                    selection: &selection,
                    system: &system,
                    env: &env,
                    roots_dir: &roots,
                    pins: &[],
                };
                let progress = Progress::start(reference, crate::progress::Mode::from_env());
                let result = backend.build(&request, &progress);
                progress.finish();
                let _ = fs_err::remove_dir_all(&roots);
                let mut record = result.map_err(|e| anyhow::anyhow!("{}", e.message))?.record;
                record.sanitize();
                record
            }
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&record.to_json())?);
        } else {
            print!("{}", script(&record));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A bash script that sets the environment, defines the functions and runs the shellHook.
fn script(record: &EnvRecord) -> String {
    use crate::shell::quote::posix as q;
    let mut out = String::new();
    for (name, value) in record.exported() {
        if crate::env_vars::is_prepended(name) {
            out.push_str(&format!(
                "export {name}={}\"${{{name}:+:${name}}}\"\n",
                q(value)
            ));
        } else {
            out.push_str(&format!("export {name}={}\n", q(value)));
        }
    }
    for (name, var) in record.shell_locals() {
        out.push_str(&crate::shell::bash::declare(name, var));
    }
    for (name, body) in &record.bash_functions {
        out.push_str(&format!("{name} () {{\n{body}\n}}\n"));
    }
    if let Some(hook) = record.shell_hook() {
        out.push_str(&format!("shellHook={}\neval \"$shellHook\"\n", q(hook)));
    }
    out
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("envy-roots-{}", std::process::id()));
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}
