//! The Nix CLI backend: `nix print-dev-env --json`, found on `PATH` with the `which` crate
//! (or at `ENVY_NIX`).
//!
//! One run does everything: `--profile <roots_dir>/<shell>` makes Nix register the built
//! `-env` path as an indirect GC root (a profile generation link), `--log-format
//! internal-json -vvv` gives structured progress and the files the evaluator opened
//! ("evaluating file", "checking access to"), and `--no-eval-cache` makes sure those messages
//! come even when Nix's own evaluation cache would skip the evaluation. Nix evaluates a copy
//! of the flake in its store; every path it reports is mapped back into the project.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Backend, BackendError, BuildOutput, BuildRequest, ErrorKind, GcRoot};
use crate::env_record::EnvRecord;
use crate::progress::ProgressSink;
use crate::project::{FLAKE_LOCK, FLAKE_NIX};

/// Most files a copied source directory (`./dir` in a flake) adds to the watch list.
const MAX_DIR_FILES: usize = 256;

/// The Nix CLI backend.
pub struct NixBackend {
    nix: Option<PathBuf>,
}

impl NixBackend {
    /// `ENVY_NIX`, or `nix` on `PATH`.
    pub fn from_env() -> Self {
        let nix = std::env::var_os(crate::env_vars::ENVY_NIX)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| which::which("nix").ok());
        Self { nix }
    }

    /// Whether a `nix` binary was found.
    pub fn is_available(&self) -> bool {
        self.nix.is_some()
    }

    fn installable(request: &BuildRequest<'_>) -> String {
        let flake = match &request.selection.flake_ref {
            Some(r) => r.clone(),
            None => request.project_root.display().to_string(),
        };
        let name = &request.selection.name;
        if request.system != super::current_system() {
            format!("{flake}#devShells.{}.{name}", request.system)
        } else if name == "default" {
            flake
        } else {
            format!("{flake}#{name}")
        }
    }
}

impl Backend for NixBackend {
    fn name(&self) -> &'static str {
        "nix"
    }

    fn build(
        &self,
        request: &BuildRequest<'_>,
        progress: &dyn ProgressSink,
    ) -> Result<BuildOutput, BackendError> {
        let nix = self.nix.as_ref().ok_or_else(|| {
            BackendError::new(
                ErrorKind::Setup,
                "cannot find `nix` on `PATH`\nhint: install Nix, or set `ENVY_NIX` to its path",
            )
        })?;
        fs_err::create_dir_all(request.roots_dir)
            .map_err(|e| BackendError::new(ErrorKind::Setup, e.to_string()))?;
        let profile = request
            .roots_dir
            .join(profile_name(&request.selection.name));
        let installable = Self::installable(request);

        progress.phase("evaluating flake.nix");
        let mut child = Command::new(nix)
            .args([
                "print-dev-env",
                "--json",
                "--log-format",
                "internal-json",
                "-vvv",
                "--no-eval-cache",
            ])
            .arg("--profile")
            .arg(&profile)
            .arg(&installable)
            .current_dir(request.project_root)
            .env_clear()
            .envs(request.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                BackendError::new(
                    ErrorKind::Setup,
                    format!("cannot run `{}`: {e}", nix.display()),
                )
            })?;

        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut buf = String::new();
            stdout.read_to_string(&mut buf).map(|_| buf)
        });
        let mut log = LogParser::default();
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                log.line(&line, progress);
            }
        }
        let status = child.wait().map_err(|e| {
            BackendError::new(ErrorKind::Setup, format!("cannot wait for `nix`: {e}"))
        })?;
        let stdout = reader.join().ok().and_then(Result::ok).unwrap_or_default();
        // Paths Nix reports are in its store copy of the flake; map them back to the local
        // checkout the flake came from (none for a remote flake reference).
        let local_flake = match &request.selection.flake_ref {
            None => Some(request.project_root.to_path_buf()),
            Some(r) => {
                let path = r.strip_prefix("path:").unwrap_or(r);
                let path = path.split(['?', '#']).next().unwrap_or(path);
                path.starts_with('/')
                    .then(|| crate::project::normalize(Path::new(path)))
            }
        };
        let mapper = match &local_flake {
            Some(dir) => log.source_mapper(dir),
            None => SourceMapper { mapping: None },
        };

        if !status.success() {
            let text = if log.errors.is_empty() {
                format!("error: `nix print-dev-env` failed ({status})")
            } else {
                log.errors.join("\n")
            };
            let kind = if text.contains("builder for") || text.contains("build of") {
                ErrorKind::Build
            } else {
                ErrorKind::Eval
            };
            let files = log
                .files
                .iter()
                .filter_map(|f| mapper.map_path(f))
                .collect();
            return Err(BackendError::new(kind, mapper.map_text(&text)).with_watch(files));
        }

        let mut record = EnvRecord::from_json(&stdout).map_err(|e| {
            BackendError::new(
                ErrorKind::Setup,
                format!("`nix print-dev-env --json` printed {e}"),
            )
        })?;
        record.watch.add_file(request.project_root.join(FLAKE_NIX));
        record.watch.add_file(request.project_root.join(FLAKE_LOCK));
        for file in &log.files {
            if let Some(local) = mapper.map_path(file) {
                record.watch.add_file(local);
            }
        }
        for dir in &log.copied_dirs {
            // `./dir` below the flake; never the whole flake (`./.`), which is every file.
            if let (Some(local), Some(flake_dir)) = (mapper.map_path(dir), &local_flake)
                && local.starts_with(flake_dir)
                && local != *flake_dir
            {
                record.watch.add_dir(local.clone());
                for file in files_below(&local, MAX_DIR_FILES) {
                    record.watch.add_file(file);
                }
            }
        }
        record.watch.normalize();

        let roots = profile_root(&profile).into_iter().collect();
        Ok(BuildOutput {
            record,
            roots,
            notices: Vec::new(),
        })
    }
}

/// A file-name-safe profile name for a devShell name.
fn profile_name(shell: &str) -> String {
    let safe: String = shell
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("shell-{safe}")
}

/// The generation link the profile points at now (`<profile>-<n>-link`): the GC root that
/// keeps this build's environment alive.
fn profile_root(profile: &Path) -> Option<GcRoot> {
    let generation = std::fs::read_link(profile).ok()?;
    let link = profile.parent()?.join(generation);
    let target = std::fs::read_link(&link)
        .ok()
        .map(|t| t.display().to_string());
    Some(GcRoot {
        backend: "nix".to_string(),
        path: link,
        target,
    })
}

/// Up to `max` regular files below `dir` (sorted), skipping `.git`.
fn files_below(dir: &Path, max: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in crate::fsutil::list_dir(&d) {
            if out.len() >= max {
                return out;
            }
            if entry.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            match std::fs::symlink_metadata(&entry) {
                Ok(m) if m.is_dir() => stack.push(entry),
                Ok(_) => out.push(entry),
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Reads Nix's `--log-format internal-json` stream.
#[derive(Default)]
struct LogParser {
    /// Store paths of files the evaluator opened.
    files: Vec<String>,
    /// Store paths of directories copied from the flake source (`./dir` references).
    copied_dirs: Vec<String>,
    /// Error messages (level 0), ANSI colours removed.
    errors: Vec<String>,
    /// The store directory holding the flake's own `flake.nix` (`…-source[/subdir]`).
    flake_dir: Option<String>,
}

impl LogParser {
    fn line(&mut self, line: &str, progress: &dyn ProgressSink) {
        let Some(json) = line.strip_prefix("@nix ") else {
            // Not structured (an old Nix, or a message printed before logging was set up).
            if line.starts_with("error:") || !self.errors.is_empty() {
                self.errors.push(strip_ansi(line));
            }
            return;
        };
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            return;
        };
        match v.get("action").and_then(Value::as_str) {
            Some("msg") => {
                let level = v.get("level").and_then(Value::as_u64).unwrap_or(9);
                let msg = v.get("msg").and_then(Value::as_str).unwrap_or_default();
                if level == 0 {
                    self.errors.push(strip_ansi(msg));
                } else if let Some(path) = quoted_after(msg, "evaluating file '") {
                    if self.flake_dir.is_none()
                        && path.ends_with("/flake.nix")
                        && path.contains("-source")
                    {
                        self.flake_dir = Some(path.trim_end_matches("/flake.nix").to_string());
                    }
                    self.files.push(path.to_string());
                } else if let Some(path) = quoted_after(msg, "checking access to '") {
                    self.files.push(path.to_string());
                } else if let Some(path) = quoted_after(msg, "copied source '") {
                    self.copied_dirs.push(path.to_string());
                }
            }
            Some("start") => {
                let text = v.get("text").and_then(Value::as_str).unwrap_or_default();
                if text.starts_with("building '") {
                    progress.phase(&format!(
                        "building {}",
                        short_store_name(quoted_after(text, "building '").unwrap_or(text))
                    ));
                } else if !text.is_empty()
                    && v.get("level").and_then(Value::as_u64).unwrap_or(9) <= 3
                {
                    progress.phase(&strip_ansi(text));
                }
            }
            Some("result") => {
                let fields = v.get("fields").and_then(Value::as_array);
                let first = fields.and_then(|f| f.first()).and_then(Value::as_str);
                match (v.get("type").and_then(Value::as_u64), first) {
                    // resBuildLogLine
                    (Some(101), Some(line)) => progress.log_line(&strip_ansi(line)),
                    // resSetPhase
                    (Some(104), Some(phase)) => progress.phase(phase),
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn source_mapper(&self, project_root: &Path) -> SourceMapper {
        SourceMapper::new(self.flake_dir.as_deref(), project_root)
    }
}

/// Maps paths inside Nix's store copy of the flake source back into the user's checkout.
struct SourceMapper {
    /// `(store source root, local directory it is a copy of)`.
    mapping: Option<(String, PathBuf)>,
}

impl SourceMapper {
    fn new(flake_dir: Option<&str>, project_root: &Path) -> Self {
        let mapping = flake_dir.and_then(|flake_dir| {
            // `/store/<hash>-source/sub/dir` → source root `/store/<hash>-source`, subdir `sub/dir`.
            let idx = flake_dir.find("-source")? + "-source".len();
            let (source_root, subdir) = flake_dir.split_at(idx);
            let mut local = project_root.to_path_buf();
            for _ in Path::new(subdir.trim_start_matches('/')).components() {
                local.pop();
            }
            Some((source_root.to_string(), local))
        });
        Self { mapping }
    }

    fn map_path(&self, path: &str) -> Option<PathBuf> {
        let (source_root, local) = self.mapping.as_ref()?;
        let rest = path.strip_prefix(source_root.as_str())?;
        if rest.is_empty() {
            return Some(local.clone());
        }
        Some(local.join(rest.strip_prefix('/')?))
    }

    fn map_text(&self, text: &str) -> String {
        match &self.mapping {
            Some((source_root, local)) => {
                text.replace(source_root.as_str(), &local.display().to_string())
            }
            None => text.to_string(),
        }
    }
}

/// The text between `prefix` and the next `'`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('\'')?])
}

/// `/nix/store/<hash>-shell-env.drv` → `shell-env`.
fn short_store_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name,
        _ => base,
    }
}

/// Remove ANSI escape sequences (Nix colours its messages even in JSON).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn parses_files_errors_and_maps_them_into_the_project() {
        let mut p = LogParser::default();
        for line in [
            r#"@nix {"action":"msg","level":4,"msg":"evaluating file '/s/abcd-source/sub/flake.nix'"}"#,
            r#"@nix {"action":"msg","level":6,"msg":"checking access to '/s/abcd-source/sub/data.txt'"}"#,
            r#"@nix {"action":"msg","level":4,"msg":"evaluating file '/s/abcd-source/common.nix'"}"#,
            r#"@nix {"action":"msg","level":5,"msg":"copied source '/s/abcd-source/sub/stdenv' -> '/s/x-stdenv'"}"#,
            r#"@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m boom\n       at /s/abcd-source/sub/flake.nix:3:4:"}"#,
        ] {
            p.line(line, &NoProgress);
        }
        let m = p.source_mapper(Path::new("/home/u/repo/sub"));
        assert_eq!(
            m.map_path(&p.files[1]),
            Some(PathBuf::from("/home/u/repo/sub/data.txt"))
        );
        assert_eq!(
            m.map_path(&p.files[2]),
            Some(PathBuf::from("/home/u/repo/common.nix"))
        );
        assert_eq!(
            m.map_path(&p.copied_dirs[0]),
            Some(PathBuf::from("/home/u/repo/sub/stdenv"))
        );
        assert_eq!(m.map_path("/s/other-source/x.nix"), None);
        assert_eq!(
            m.map_text(&p.errors[0]),
            "error: boom\n       at /home/u/repo/sub/flake.nix:3:4:"
        );
    }

    #[test]
    fn installable_names_the_devshell() {
        let env = Default::default();
        let sel = crate::backend::ShellSelection {
            flake_ref: None,
            name: "ci".into(),
        };
        let sys = crate::backend::current_system();
        let req = BuildRequest {
            project_root: Path::new("/p"),
            selection: &sel,
            system: &sys,
            env: &env,
            roots_dir: Path::new("/r"),
        };
        assert_eq!(NixBackend::installable(&req), "/p#ci");
        let default = crate::backend::ShellSelection::default_shell();
        assert_eq!(
            NixBackend::installable(&BuildRequest {
                selection: &default,
                ..req.clone()
            }),
            "/p"
        );
        assert_eq!(
            NixBackend::installable(&BuildRequest {
                system: "riscv64-linux",
                ..req
            }),
            "/p#devShells.riscv64-linux.ci"
        );
    }

    #[test]
    fn short_names_and_ansi() {
        assert_eq!(
            short_store_name("/nix/store/ybp7d7ynpa4a08j0k2jgw0s907qwk6sc-x-env.drv"),
            "x-env"
        );
        assert_eq!(strip_ansi("\u{1b}[31;1merror:\u{1b}[0m x"), "error: x");
    }
}
