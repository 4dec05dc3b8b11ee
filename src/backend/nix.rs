//! The Nix CLI backend: `nix print-dev-env --json`, found on `PATH` with the `which` crate
//! (or at `ENVY_NIX`).
//!
//! One run does everything: `--profile <roots_dir>/<shell>` makes Nix register the built
//! `-env` path as an indirect GC root (a profile generation link), `--log-format
//! internal-json -vvv` gives structured progress and the files the evaluator opened
//! ("evaluating file", "checking access to"), and `--no-eval-cache` makes sure those messages
//! come even when Nix's own evaluation cache would skip the evaluation. Nix evaluates a copy
//! of the flake in its store; every path it reports is mapped back into the project.

use std::path::{Path, PathBuf};
use std::process::Command;

use envy_build::BuildEvent;

use super::{Backend, BackendError, BuildOutput, BuildRequest, ErrorKind, GcRoot};
use crate::backend::nix_cli::{self, NixProgress};
use crate::env::record::EnvRecord;
use crate::project::{FLAKE_LOCK, FLAKE_NIX};
use crate::trust::Snapshot;
use crate::util::progress::ProgressSink;

/// Most files a copied source directory (`./dir` in a flake) adds to the watch list.
const MAX_DIR_FILES: usize = 256;

/// The Nix CLI backend.
pub struct NixBackend {
    nix: Option<PathBuf>,
}

impl NixBackend {
    /// `ENVY_NIX`, or `nix` on `PATH`.
    pub fn from_env() -> Self {
        Self {
            nix: nix_cli::find(),
        }
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

        // Under the trust gate Nix must not write a lock nobody allowed: envy locks the top
        // flake itself from the allowed files (its locker writes what Nix 2.8 writes), the
        // allow carries over to exactly those bytes, and Nix only reads the lock.
        let mut pins: Vec<Snapshot> = request.pins.to_vec();
        let mut notices = Vec::new();
        let mut wrote_lock = None;
        let top = match crate::trust::selected_flake(request.selection) {
            Some(flake) => pins.iter().position(|p| p.root == flake.root()),
            None if request.selection.flake_ref.is_none() => {
                pins.iter().position(|p| p.root == request.project_root)
            }
            None => None,
        };
        if let Some(i) = top {
            progress.phase("locking flake.nix");
            match crate::engine::flakes::lock_snapshot(&pins[i], &envy_flake::LockFlags::default())
            {
                Ok((Some(bytes), lock_notices)) => {
                    notices.extend(
                        lock_notices
                            .iter()
                            .map(|n| n.lines().next().unwrap_or_default().to_string()),
                    );
                    wrote_lock = Some((pins[i].root.clone(), bytes.clone()));
                    pins[i] = pins[i].with_lock(bytes);
                }
                Ok((None, _)) => {}
                // Nix locks what envy cannot, in memory only.
                Err(e) => notices.push(format!(
                    "flake.lock not updated ({}); Nix locks the inputs for this build only",
                    format!("{e:#}").lines().next().unwrap_or_default()
                )),
            }
        }

        progress.phase("evaluating flake.nix");
        let mut command = Command::new(nix);
        command
            .args([
                "print-dev-env",
                "--json",
                "--log-format",
                "internal-json",
                "-vvv",
                "--no-eval-cache",
            ])
            .args(if pins.is_empty() && request.input_overrides.is_empty() {
                &[][..]
            } else {
                &["--no-write-lock-file"][..]
            })
            .args(
                request
                    .input_overrides
                    .iter()
                    .flat_map(|(input, reference)| ["--override-input", input, reference]),
            )
            .arg("--profile")
            .arg(&profile)
            .arg(&installable)
            .current_dir(request.project_root)
            .env_clear()
            .envs(request.env);
        let run = nix_cli::run(&mut command, &Phases(progress)).map_err(|e| match e {
            nix_cli::RunError::Spawn(e) => BackendError::new(
                ErrorKind::Setup,
                format!("cannot run `{}`: {e}", nix.display()),
            ),
            nix_cli::RunError::Wait(e) => {
                BackendError::new(ErrorKind::Setup, format!("cannot wait for `nix`: {e}"))
            }
        })?;
        let (status, log) = (run.status, run.log);
        // Nix prints a value's bytes as they are, UTF-8 or not.
        let stdout = crate::env::record::text_from_bytes(&run.stdout);
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
            Some(dir) => SourceMapper::new(log.flake_dir.as_deref(), dir),
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

        // Nix read the files itself: they must still be the allowed bytes, or what it
        // evaluated may not be what was allowed.
        for pinned in &pins {
            let now = Snapshot::read(&crate::project::Project::at(pinned.root.clone()));
            if now.as_ref().ok() != Some(pinned) {
                return Err(BackendError::new(
                    ErrorKind::Eval,
                    format!(
                        "error: `{}` or its `flake.lock` changed while Nix evaluated it; not loading what may not be allowed\nhint: check the files, then `envy allow` them",
                        pinned.root.join(FLAKE_NIX).display()
                    ),
                ));
            }
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
            notices,
            wrote_lock,
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
        for entry in crate::util::fsutil::list_dir(&d) {
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

/// Nix's progress as phases: "building <name>", the activities and build phases Nix
/// announces, and the build's log lines.
struct Phases<'a>(&'a dyn ProgressSink);

impl NixProgress for Phases<'_> {
    fn event(&self, event: BuildEvent) {
        match event {
            BuildEvent::Started { name, .. } => self.0.phase(&format!("building {name}")),
            BuildEvent::Log { line, .. } => self.0.log_line(&nix_cli::strip_ansi(&line)),
            _ => {}
        }
    }
    fn phase(&self, phase: &str) {
        self.0.phase(phase);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::nix_cli::NixLog;
    use crate::util::progress::NoProgress;

    #[test]
    fn parses_files_errors_and_maps_them_into_the_project() {
        let mut p = NixLog::default();
        for line in [
            r#"@nix {"action":"msg","level":4,"msg":"evaluating file '/s/abcd-source/sub/flake.nix'"}"#,
            r#"@nix {"action":"msg","level":6,"msg":"checking access to '/s/abcd-source/sub/data.txt'"}"#,
            r#"@nix {"action":"msg","level":4,"msg":"evaluating file '/s/abcd-source/common.nix'"}"#,
            r#"@nix {"action":"msg","level":5,"msg":"copied source '/s/abcd-source/sub/stdenv' -> '/s/x-stdenv'"}"#,
            r#"@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m boom\n       at /s/abcd-source/sub/flake.nix:3:4:"}"#,
        ] {
            p.line(line, &Phases(&NoProgress));
        }
        let m = SourceMapper::new(p.flake_dir.as_deref(), Path::new("/home/u/repo/sub"));
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
            pins: &[],
            input_overrides: &[],
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
    fn builds_and_nix_activities_become_phases() {
        #[derive(Default)]
        struct Seen(std::sync::Mutex<Vec<String>>);
        impl ProgressSink for Seen {
            fn phase(&self, phase: &str) {
                self.0.lock().unwrap().push(format!("phase {phase}"));
            }
            fn log_line(&self, line: &str) {
                self.0.lock().unwrap().push(format!("line {line}"));
            }
        }
        let seen = Seen::default();
        let mut log = NixLog::default();
        for line in [
            r#"@nix {"action":"start","id":1,"level":3,"text":"copying path '/s/x'","type":100}"#,
            r#"@nix {"action":"start","id":2,"level":3,"text":"building '/nix/store/ybp7d7ynpa4a08j0k2jgw0s907qwk6sc-x-env.drv'","type":105,"fields":["/nix/store/ybp7d7ynpa4a08j0k2jgw0s907qwk6sc-x-env.drv","",1,1]}"#,
            r#"@nix {"action":"result","fields":["buildPhase"],"id":2,"type":104}"#,
            r#"@nix {"action":"result","fields":["\u001b[1mmake\u001b[0m all"],"id":2,"type":101}"#,
            r#"@nix {"action":"stop","id":2}"#,
        ] {
            log.line(line, &Phases(&seen));
        }
        assert_eq!(
            seen.0.into_inner().unwrap(),
            [
                "phase copying path '/s/x'",
                "phase building x-env",
                "phase buildPhase",
                "line make all"
            ]
        );
    }
}
