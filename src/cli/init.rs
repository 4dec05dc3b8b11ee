//! `envy init [-t NAME] [DIR]` and `envy init --list`: start a project from one of the
//! templates embedded in envy (`templates/` in its repository, also the `templates` output of
//! the `envy` package-set flake); and the writing half of `envy flake init -t FLAKE#NAME`,
//! which takes any flake's template (`src/cli/flake.rs` evaluates the flake).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::engine::pkgs;

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
        let files: Vec<(String, Vec<u8>, bool)> = template
            .files
            .iter()
            .map(|f| (f.path.to_owned(), f.contents.as_bytes().to_vec(), false))
            .collect();
        let hint = format!("envy init -t {} DIR", template.name);
        let written = write_files(template.name, &files, &dir, &hint)?;
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

/// Write a template's files (relative path, contents, executable) under `dir`, none when one
/// of them exists with other contents (the error lists them); the relative paths written
/// (identical existing files are left alone and not counted).
fn write_files(
    name: &str,
    files: &[(String, Vec<u8>, bool)],
    dir: &Path,
    hint: &str,
) -> Result<Vec<String>> {
    let mut conflicts = Vec::new();
    let mut todo = Vec::new();
    for file in files {
        let path = dir.join(&file.0);
        match fs_err::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => todo.push(file),
            Err(e) => return Err(e.into()),
            Ok(meta) => {
                let same = meta.is_file() && fs_err::read(&path).is_ok_and(|c| c == file.1);
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
            "the template `{name}` would overwrite {} existing file{}; nothing was written:\n{list}\nhint: move {} away, or initialise another directory: `{hint}`",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" },
            if conflicts.len() == 1 { "it" } else { "them" },
        );
    }
    let mut written = Vec::new();
    for (rel, contents, executable) in todo {
        let path = dir.join(rel);
        crate::toolchain::write_atomically(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        written.push(rel.clone());
    }
    Ok(written)
}

/// Copy a flake's template into a directory: `envy flake init -t FLAKE#NAME`, as
/// `nix flake init -t` does
///
/// FLAKE is any flake reference (`envy`, `.`, `path:/some/dir`, `git+file:…`, a registry
/// name); NAME picks `templates.NAME` (or the output `NAME`); without `#NAME`,
/// `templates.default` (or `defaultTemplate`). The template's `path` is copied into DIR
/// (default: the current directory): an existing file is never overwritten (envy lists the
/// conflicts and writes nothing), new files are `git add`ed in a git work tree, and the
/// template's `welcomeText` is printed.
///
/// Examples:
///   envy flake init -t envy#cpp-static       # envy's own templates (as `envy init -t`)
///   envy flake init -t path:../mine#service  # a template of a local flake
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct FlakeInitArgs {
    /// The template: `FLAKE#NAME`, or `FLAKE` for its default template.
    #[arg(short = 't', long = "template", value_name = "FLAKE#NAME")]
    pub template: String,
    /// Where to write the project (default: the current directory).
    pub dir: Option<PathBuf>,
}

/// A flake's template, evaluated: its attribute path, the directory its `path` names, and
/// its `welcomeText`.
pub struct FlakeTemplate {
    pub attr_path: String,
    pub source: PathBuf,
    pub welcome_text: Option<String>,
}

/// Write `template`'s tree as `envy flake init` does.
pub fn init_from_flake(template: &FlakeTemplate, args: &FlakeInitArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => crate::project::current_dir()?.join(d),
        None => crate::project::current_dir()?,
    };
    let mut files = Vec::new();
    collect_tree(&template.source, &template.source, &mut files).with_context(|| {
        format!(
            "cannot read the template `{}` at `{}`",
            template.attr_path,
            template.source.display()
        )
    })?;
    files.sort();
    let hint = format!("envy flake init -t {} DIR", args.template);
    let written = write_files(&template.attr_path, &files, &dir, &hint)?;
    if !written.is_empty() {
        git_add(&dir, &written)?;
    }
    for path in &written {
        eprintln!("envy: wrote `{}`", dir.join(path).display());
    }
    if let Some(text) = &template.welcome_text {
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
    }
    Ok(())
}

/// Every regular file under `dir` (relative path, contents, executable); symlinks and other
/// special files are refused, as a template is copied, not linked.
fn collect_tree(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>, bool)>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs_err::metadata(dir)?;
    if !meta.is_dir() {
        bail!("`{}` is not a directory", dir.display());
    }
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = fs_err::symlink_metadata(&path)?;
        if meta.is_dir() {
            collect_tree(root, &path, out)?;
        } else if meta.is_file() {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let executable = meta.permissions().mode() & 0o111 != 0;
            out.push((rel, fs_err::read(&path)?, executable));
        } else {
            bail!(
                "`{}` in the template is not a regular file or directory",
                path.display()
            );
        }
    }
    Ok(())
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
