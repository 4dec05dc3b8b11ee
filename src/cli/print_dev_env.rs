//! `envy print-dev-env [--json] [FLAKE_REF]`.

use std::process::ExitCode;

use anyhow::Result;

use super::Context;
use crate::backend::{self, BuildRequest, ShellSelection};
use crate::env::record::EnvRecord;
use crate::project::Project;
use crate::util::progress::Progress;

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
    #[command(flatten)]
    overrides: super::flake::InputOverrides,
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
        let overrides: Vec<(String, String)> = self
            .overrides
            .override_input
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        // With overrides it is another environment than the project's: built on its own,
        // not through (or into) the project's cache.
        let local = if !overrides.is_empty() {
            None
        } else if reference.is_empty() {
            Some(ctx.project(None)?)
        } else {
            let path = reference.strip_prefix("path:").unwrap_or(&reference);
            let dir = crate::project::current_dir()?.join(path);
            dir.join(crate::project::FLAKE_NIX)
                .is_file()
                .then(|| Project::at(crate::project::normalize(&dir)))
        };
        // The environment as the backend captured it (what `--json` prints, as Nix prints
        // every variable) and the one a shell gets (sanitized).
        let (raw, record) = match local {
            Some(project) => {
                let selection = match name {
                    Some(name) => ShellSelection {
                        flake_ref: None,
                        name,
                    },
                    None => crate::project::settings::selection(&ctx.dirs, &project)?,
                };
                // Asking for it is the consent; what is read once is what is evaluated.
                let pins = [crate::trust::Snapshot::read(&project)?];
                let resolved = ctx
                    .environments(backend.as_ref(), &env)
                    .resolve(&project, &selection, false, &pins)?;
                let generation = resolved.map_err(|e| anyhow::anyhow!("{}", e.message))?;
                (captured(&generation), generation.record)
            }
            None => {
                let reference = if reference.is_empty() {
                    ".".to_string()
                } else {
                    reference
                };
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
                    input_overrides: &overrides,
                };
                let progress = Progress::start(reference, crate::util::progress::Mode::from_env());
                let result = backend.build(&request, &progress);
                progress.finish();
                let _ = fs_err::remove_dir_all(&roots);
                let raw = result.map_err(|e| anyhow::anyhow!("{}", e.message))?.record;
                let mut record = raw.clone();
                record.sanitize();
                (Some(raw), record)
            }
        };
        if self.json {
            let json = match raw {
                Some(mut raw) => {
                    raw.watch = record.watch;
                    raw.to_json()
                }
                None => record.to_json(),
            };
            println!("{}", serde_json::to_string_pretty(&json)?);
        } else {
            print!("{}", script(&record, &crate::project::current_dir()?));
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The environment a generation was captured as, before envy cleaned it for shells: the
/// JSON its GC root keeps (the `-env` path, as Nix's dev-shell profiles keep theirs), when
/// that is still readable.
fn captured(generation: &crate::cache::Generation) -> Option<EnvRecord> {
    generation.roots.iter().find_map(|root| {
        let target = root.target.as_deref()?;
        let bytes = crate::trust::read_regular_up_to(std::path::Path::new(target), 64 << 20)
            .ok()
            .flatten()?;
        let mut record = EnvRecord::from_json(std::str::from_utf8(&bytes).ok()?).ok()?;
        name_outputs_as_nix(&mut record, target);
        Some(record)
    })
}

/// envy's engine captures a devShell with its outputs redirected into the build directory
/// (`$NIX_BUILD_TOP/.envy-capture-out`); Nix's `get-env` derivation has real outputs, `out`
/// being the `-env` path that holds the JSON. Name them so: `out` is `env_path` (envy's
/// `-env` path, which holds this JSON), another output `dev` is `env_path-dev`.
fn name_outputs_as_nix(record: &mut EnvRecord, env_path: &str) {
    use crate::env::record::Variable;
    let Some(Variable::Exported(top) | Variable::Var(top)) = record.variables.get("NIX_BUILD_TOP")
    else {
        return;
    };
    let prefix = format!("{top}/{}", envy_build::capture::OUTPUT_PREFIX);
    let renames: Vec<(String, String)> = record
        .output_names()
        .into_iter()
        .map(|o| {
            let to = match o.as_str() {
                "out" => env_path.to_string(),
                other => format!("{env_path}-{other}"),
            };
            (format!("{prefix}{o}"), to)
        })
        .collect();
    let fix = |s: &mut String| {
        if s.contains(&prefix) {
            for (from, to) in &renames {
                *s = s.replace(from, to);
            }
        }
    };
    for var in record.variables.values_mut() {
        match var {
            Variable::Exported(s) | Variable::Var(s) => fix(s),
            Variable::Array(a) => a.iter_mut().for_each(fix),
            Variable::Associative(m) => m.values_mut().for_each(fix),
        }
    }
}

/// A bash script that sets the environment, defines the functions and runs the shellHook,
/// as Nix's `print-dev-env` writes it: the outputs point into `DIR/outputs`, and the build
/// directory and `TMPDIR` are a fresh temporary directory.
fn script(record: &EnvRecord, dir: &std::path::Path) -> String {
    use crate::shell::quote::posix as q;
    let mut out = String::new();
    for (name, value) in record.exported() {
        if crate::env::vars::is_prepended(name) {
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
    for output in record.output_names() {
        let path = dir.join("outputs").join(&output);
        out.push_str(&format!(
            "{output}={}\nexport {output}\n",
            q(&path.display().to_string())
        ));
    }
    out.push_str("export NIX_BUILD_TOP=\"$(mktemp -d -t nix-shell.XXXXXX)\"\n");
    for name in ["TMP", "TMPDIR", "TEMP", "TEMPDIR"] {
        out.push_str(&format!("export {name}=\"$NIX_BUILD_TOP\"\n"));
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
