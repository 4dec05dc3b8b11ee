//! `envy init [-t NAME] [DIR]` and `envy init --list`: start a project from one of the
//! templates embedded in envy (`templates/` in its repository, also the `templates` output of
//! the `envy` package-set flake).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::engine::pkgs::{self, Template};

/// Start a project from a template: a `flake.nix` with its devShell and a tiny program
///
/// Writes the template's files into DIR (created when missing; default: the current
/// directory). An existing file is never overwritten: when any file of the template is
/// there already with other contents, envy lists them and writes nothing. In a git work
/// tree the new files are `git add`ed (flakes in git see only tracked files). Then
/// `envy allow` the project, and entering it loads the shell.
///
/// Examples:
///   envy init --list                # the templates
///   envy init                       # the `default` template here
///   envy init -t c-static hello     # a static C program in ./hello
///   nix flake init -t envy#c-static # the same templates, through Nix
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Init {
    /// The template (see `envy init --list`).
    #[arg(
        short = 't',
        long = "template",
        value_name = "NAME",
        default_value = "default"
    )]
    template: String,
    /// List the templates instead.
    #[arg(long, conflicts_with = "dir")]
    list: bool,
    /// With `--list`: print JSON (name → description, welcomeText).
    #[arg(long, requires = "list")]
    json: bool,
    /// Where to write the project (default: the current directory).
    dir: Option<PathBuf>,
}

impl Init {
    pub fn run(self) -> Result<ExitCode> {
        if self.list {
            if self.json {
                println!("{}", serde_json::to_string_pretty(&list_json())?);
            } else {
                let width = pkgs::TEMPLATES
                    .iter()
                    .map(|t| t.name.len())
                    .max()
                    .unwrap_or(0);
                for t in pkgs::TEMPLATES {
                    println!("{:width$}  {}", t.name, t.description);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        let name = self
            .template
            .strip_prefix("envy#")
            .unwrap_or(&self.template);
        let Some(template) = pkgs::template(name) else {
            bail!(
                "there is no template `{name}`\nhint: the templates are: {} (`envy init --list`)",
                names()
            );
        };
        let dir = match self.dir {
            Some(d) => crate::project::current_dir()?.join(d),
            None => crate::project::current_dir()?,
        };
        let written = write_template(template, &dir)?;
        if !written.is_empty() {
            git_add(&dir, &written)?;
        }
        for path in &written {
            eprintln!("envy: wrote `{}`", dir.join(path).display());
        }
        print!("{}", template.welcome_text);
        let shown = if self_is_cwd(&dir) {
            "envy allow".to_owned()
        } else {
            format!(
                "cd {} && envy allow",
                crate::shell::quote::posix(&dir.display().to_string())
            )
        };
        println!("\nNext: `{shown}`, then the project's shell loads when you enter it.");
        Ok(ExitCode::SUCCESS)
    }
}

fn names() -> String {
    pkgs::TEMPLATES
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_json() -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for t in pkgs::TEMPLATES {
        map.insert(
            t.name.to_owned(),
            serde_json::json!({ "description": t.description, "welcomeText": t.welcome_text }),
        );
    }
    serde_json::Value::Object(map)
}

fn self_is_cwd(dir: &Path) -> bool {
    crate::project::current_dir().is_ok_and(|cwd| cwd == dir)
}

/// Write `template`'s files under `dir`, none when one of them exists with other contents
/// (the error lists them); the relative paths written (identical existing files are left
/// alone and not counted).
fn write_template(template: &Template, dir: &Path) -> Result<Vec<String>> {
    let mut conflicts = Vec::new();
    let mut todo = Vec::new();
    for file in template.files {
        let path = dir.join(file.path);
        match fs_err::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => todo.push(file),
            Err(e) => return Err(e.into()),
            Ok(meta) => {
                let same = meta.is_file()
                    && fs_err::read(&path).is_ok_and(|c| c == file.contents.as_bytes());
                if !same {
                    conflicts.push(path);
                }
            }
        }
    }
    if !conflicts.is_empty() {
        let list = conflicts
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n");
        bail!(
            "the template `{}` would overwrite {} existing file{}; nothing was written:\n{list}\nhint: move {} away, or initialise another directory: `envy init -t {} DIR`",
            template.name,
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" },
            if conflicts.len() == 1 { "it" } else { "them" },
            template.name
        );
    }
    let mut written = Vec::new();
    for file in todo {
        let path = dir.join(file.path);
        crate::toolchain::write_atomically(&path, file.contents.as_bytes())
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        written.push(file.path.to_owned());
    }
    Ok(written)
}

/// `git add` the new files when `dir` is in a git work tree (nothing otherwise, or without
/// git).
fn git_add(dir: &Path, files: &[String]) -> Result<()> {
    let inside = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--is-inside-work-tree"])
        .stderr(std::process::Stdio::null())
        .output();
    match inside {
        Ok(out) if out.status.success() && out.stdout.starts_with(b"true") => {}
        _ => return Ok(()),
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["add", "--"])
        .args(files)
        .output()
        .context("cannot run `git add`")?;
    if !out.status.success() {
        bail!(
            "`git add` of the new files in `{}` failed: {}\nhint: add them yourself: flakes in a git repository see only tracked files",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
