//! The slow path of `envy export`: something changed (or the fast path could not tell), so
//! find the project, check trust, get its environment, and print the shell code that moves
//! the shell from what is loaded to what should be.
//!
//! Failures keep what works: a blocked, denied or failing project never loses the shell's
//! prompt, and a project that fails to build keeps its last good environment.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum as _;

use super::background;
use super::interrupt::{InterruptGuard, Interrupted};
use super::state::{self, Entry, Loaded, State, Status, Watch};
use crate::backend::{self, Backend, BackendError, ErrorKind};
use crate::cache::live::Lease;
use crate::cache::restore::Restore;
use crate::cache::{Generation, ProjectCache};
use crate::env::diff as env_diff;
use crate::env::record::EnvRecord;
use crate::env::vars as env_vars;
use crate::project::environment::Environments;
use crate::project::settings;
use crate::project::{self, Project};
use crate::shell::{Script, Shell};
use crate::trust::{self, Gate, Trust, TrustStore};
use crate::util::dirs::Dirs;
use crate::util::fsutil;
use crate::util::progress;

/// Run the slow path and print the code for `shell` on stdout.
pub fn export(shell: Shell) -> Result<()> {
    let dirs = Dirs::from_env()?;
    // A bad `ENVY_BACKEND` only matters where something must be built.
    let backend = backend::from_env();
    let hook = Hook {
        dirs: &dirs,
        backend: backend.as_deref().map_err(|e| e.to_string()),
        env: process_env(),
        pwd: project::current_dir()?,
        pid: shell_pid(),
        previous: std::env::var(env_vars::__ENVY_STATE)
            .ok()
            .and_then(|s| State::decode(&s)),
        shell,
    };
    let code = hook.run()?;
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (the shell went away) is not an error worth reporting.
    let _ = stdout
        .write_all(&if shell.is_json() {
            // JSON is text: escaped bytes stay characters there.
            std::borrow::Cow::Borrowed(code.as_bytes())
        } else {
            crate::env::record::bytes_from_text(&code)
        })
        .and_then(|()| stdout.flush());
    Ok(())
}

/// The shell's exported environment as envy sees it, without envy's own variables.
pub fn process_env() -> BTreeMap<String, String> {
    use std::os::unix::ffi::OsStrExt;
    std::env::vars_os()
        .filter_map(|(k, v)| {
            Some((
                k.into_string().ok()?,
                crate::env::record::text_from_bytes(v.as_bytes()),
            ))
        })
        .filter(|(k, _)| !env_vars::is_internal(k) && k != "_")
        .collect()
}

/// The state this process inherited, when it names a loaded environment: `(state, loaded)`.
pub fn loaded_state() -> Option<(State, Loaded)> {
    let state = State::decode(&std::env::var(env_vars::__ENVY_STATE).ok()?)?;
    let loaded = state.loaded.clone()?;
    Some((state, loaded))
}

/// The interactive shell's pid: `__ENVY_PID` from the hook, else our parent.
fn shell_pid() -> u32 {
    std::env::var(env_vars::__ENVY_PID)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(std::os::unix::process::parent_id)
}

struct Hook<'a> {
    dirs: &'a Dirs,
    backend: Result<&'a dyn Backend, String>,
    env: BTreeMap<String, String>,
    pwd: PathBuf,
    pid: u32,
    previous: Option<State>,
    shell: Shell,
}

/// The environment loaded in the shell now.
struct Current {
    root: PathBuf,
    loaded: Loaded,
    restore: Restore,
}

/// What the shell should end up with.
struct Plan {
    /// Keep the loaded environment as it is (same project, nothing to reload).
    keep: bool,
    /// A generation to load (replacing whatever is loaded).
    load: Option<Generation>,
    /// Status and watched inputs for the new state (`None`: no project, unset the state).
    status: Option<(Status, Project, Vec<Entry>)>,
    /// Signatures of the trust inputs taken before they were read (see
    /// [`state::digest_with`]).
    early: Vec<(PathBuf, state::Signature)>,
}

impl Hook<'_> {
    fn run(&self) -> Result<String> {
        let current = self.current();
        let plan = match Project::find(&self.pwd) {
            None => Plan {
                keep: false,
                load: None,
                status: None,
                early: Vec::new(),
            },
            Some(project) => self.plan(&project, current.as_ref())?,
        };
        self.finish(current, plan)
    }

    /// What is loaded, with its restore data (rebuilt from the generation if the restore file
    /// is gone).
    fn current(&self) -> Option<Current> {
        let state = self.previous.as_ref()?;
        let loaded = state.loaded.clone()?;
        let restore = match Restore::load(self.dirs, &loaded.restore) {
            Ok(r) => r,
            Err(_) => {
                let cache = ProjectCache::new(self.dirs, &Project::at(state.root.clone()));
                let record = cache
                    .load_generation(loaded.generation)
                    .map(|g| g.record)
                    .unwrap_or_default();
                eprintln!(
                    "envy: the restore file of `{}` is gone; restoring what can be inferred",
                    state.root.display()
                );
                fallback_restore(&self.env, &record)
            }
        };
        Some(Current {
            root: state.root.clone(),
            loaded,
            restore,
        })
    }

    fn plan(&self, project: &Project, current: Option<&Current>) -> Result<Plan> {
        let same = current.is_some_and(|c| c.root == project.root());
        let cache = ProjectCache::new(self.dirs, project);
        let trust_inputs = vec![
            Entry::Path(project::FLAKE_NIX.into()),
            Entry::Path(project::FLAKE_LOCK.into()),
            Entry::Path(cache.stamp_path()),
        ];
        let selection = settings::selection(self.dirs, project)?;
        // The flake `envy use` picked is under the gate too: watch what decides it.
        let selected_inputs: Vec<Entry> = trust::selected_flake(&selection)
            .map(|other| {
                vec![
                    Entry::Path(other.flake_nix()),
                    Entry::Path(other.flake_lock()),
                    Entry::Path(ProjectCache::new(self.dirs, &other).stamp_path()),
                ]
            })
            .unwrap_or_default();
        let mut trust_inputs = trust_inputs;
        trust_inputs.extend(selected_inputs.iter().cloned());
        // `stat` before reading: a change from here on shows at the next prompt.
        let early: Vec<(PathBuf, state::Signature)> = trust_inputs
            .iter()
            .filter_map(|e| match e {
                Entry::Path(p) => Some((p.clone(), state::signature(project.root(), p))),
                Entry::Env(_) => None,
            })
            .collect();
        let store = TrustStore::new(self.dirs.trust_dir());
        match trust::gate(&store, project, &selection)? {
            Gate::Closed {
                trust: Trust::Denied,
                selected: false,
                ..
            } => Ok(Plan {
                keep: false,
                load: None,
                status: Some((Status::Denied, project.clone(), trust_inputs)),
                early,
            }),
            closed @ (Gate::Closed { .. } | Gate::Unreadable(_)) => {
                if let Some(message) = closed.message(same) {
                    eprintln!("envy: {message}");
                }
                Ok(Plan {
                    keep: same,
                    load: None,
                    status: Some((Status::Blocked, project.clone(), trust_inputs)),
                    early,
                })
            }
            Gate::Open(pins) => {
                let backend = match self.backend.as_ref() {
                    Ok(b) => *b,
                    Err(e) => {
                        eprintln!("envy: error: {}", e.replace('\n', "\n      "));
                        return Ok(Plan {
                            keep: same,
                            load: None,
                            status: Some((Status::Failed, project.clone(), trust_inputs)),
                            early,
                        });
                    }
                };
                let base = env_diff::base_env(&self.env, current.map(|c| &c.restore));
                let envs = Environments {
                    dirs: self.dirs,
                    backend,
                    env: &base,
                    system: backend::current_system(),
                    progress: progress::Mode::from_env(),
                };
                let outcome = if background::sync_mode() {
                    let key_ctx = crate::cache::KeyContext {
                        backend: backend.name(),
                        system: &envs.system,
                        selection: &selection,
                        env: &base,
                        pinned: &pins,
                    };
                    if Interrupted::holding(&cache, &key_ctx).is_some()
                        && envs.cached(project, &selection, &pins)?.is_none()
                    {
                        // Ctrl-C stopped this very build: not again until something changes.
                        let told = self.previous.as_ref().is_some_and(|s| {
                            s.status == Status::Failed && s.root == project.root()
                        });
                        if !told {
                            eprintln!(
                                "envy: the build of {} was interrupted (Ctrl-C); it starts again when a watched file changes, or with `envy reload`",
                                project.root().display()
                            );
                        }
                        let mut inputs = trust_inputs;
                        for file in Interrupted::load(&cache)
                            .map(|m| m.watch.files)
                            .unwrap_or_default()
                        {
                            let entry = relative_entry(project.root(), file);
                            if !inputs.contains(&entry) {
                                inputs.push(entry);
                            }
                        }
                        return Ok(Plan {
                            keep: same,
                            load: None,
                            status: Some((Status::Failed, project.clone(), inputs)),
                            early,
                        });
                    }
                    let guard = {
                        let (cache, project) = (cache.clone(), project.clone());
                        let (backend_name, system) = (backend.name(), envs.system.clone());
                        let (selection, base, pins) =
                            (selection.clone(), base.clone(), pins.clone());
                        InterruptGuard::install(move || {
                            let ctx = crate::cache::KeyContext {
                                backend: backend_name,
                                system: &system,
                                selection: &selection,
                                env: &base,
                                pinned: &pins,
                            };
                            // The build's processes got the signal too: what it says is no
                            // failure of the flake.
                            let _ = cache.clear_failure();
                            let _ = Interrupted::record(&cache, &project, &ctx);
                            eprintln!(
                                "\nenvy: interrupted; {} is not built again until a watched file changes or `envy reload` runs",
                                project.root().display()
                            );
                        })
                    };
                    let outcome = envs.resolve(project, &selection, false, &pins)?;
                    drop(guard);
                    outcome
                } else if let Some(generation) = envs.cached(project, &selection, &pins)? {
                    Ok(generation)
                } else if let Some(failure) = envs.known_failure(project, &selection, &pins) {
                    // It failed on these very inputs: say so, and build nothing until they
                    // change.
                    Err(BackendError::new(ErrorKind::Build, failure.message)
                        .with_watch(failure.watch.files))
                } else {
                    // Never block the prompt: one build in the background, shared by every
                    // shell; its end touches the stamp, which this state watches.
                    let cache = ProjectCache::new(self.dirs, project);
                    let was_running = background::running(&cache);
                    let worker = background::start(self.dirs, project, &base)?;
                    let told = self
                        .previous
                        .as_ref()
                        .is_some_and(|s| s.status == Status::Building && s.root == project.root());
                    if told && !was_running && previous_worker_died(self.previous.as_ref()) {
                        eprintln!(
                            "envy: the background build of {} stopped without a result (`envy log --project` shows its output); building again",
                            project.root().display()
                        );
                    }
                    // The worker's `/proc` entry: when it dies without touching the stamp,
                    // the prompt's `stat` check sees it gone and comes back here (also when
                    // the project root's listing changes meanwhile: one more slow path).
                    let mut trust_inputs = trust_inputs;
                    if let Some(pid) = worker {
                        trust_inputs.push(Entry::Path(worker_proc(pid)));
                    }
                    if !told {
                        let kept = if same {
                            "; keeping the environment loaded now"
                        } else {
                            ""
                        };
                        eprintln!(
                            "envy: building {} in the background (envy wait to follow it){kept}",
                            project.root().display()
                        );
                    }
                    return Ok(Plan {
                        keep: same,
                        load: None,
                        status: Some((Status::Building, project.clone(), trust_inputs)),
                        early,
                    });
                };
                match outcome {
                    Ok(resolved) => {
                        let mut inputs = watch_entries(project, &resolved.record);
                        inputs.push(Entry::Path(cache.stamp_path()));
                        for entry in &selected_inputs {
                            if !inputs.contains(entry) {
                                inputs.push(entry.clone());
                            }
                        }
                        // Choosing another backend or system is a change worth a rebuild.
                        inputs.push(Entry::Env(env_vars::ENVY_BACKEND.to_string()));
                        inputs.push(Entry::Env(env_vars::ENVY_SYSTEM.to_string()));
                        let unchanged = same
                            && current.is_some_and(|c| c.loaded.generation == resolved.number)
                            && self.previous.as_ref().is_some_and(|s| s.pid == self.pid);
                        // Rebuild on a change without waiting for a prompt (background mode).
                        if let Err(e) = super::watch::start(self.dirs, project, &base) {
                            eprintln!("envy: warning: cannot start the file watcher: {e:#}");
                        }
                        Ok(Plan {
                            keep: unchanged,
                            load: (!unchanged).then_some(resolved),
                            status: Some((Status::Active, project.clone(), inputs)),
                            early,
                        })
                    }
                    Err(error) => {
                        eprintln!("envy: {}", error.summary().replace('\n', "\n      "));
                        if let (true, Some(c)) = (same, current) {
                            eprintln!(
                                "envy: keeping the last good environment (generation {})",
                                c.loaded.generation
                            );
                        }
                        let mut inputs = trust_inputs;
                        for file in error.watch {
                            let entry = relative_entry(project.root(), file);
                            if !inputs.contains(&entry) {
                                inputs.push(entry);
                            }
                        }
                        Ok(Plan {
                            keep: same,
                            load: None,
                            status: Some((Status::Failed, project.clone(), inputs)),
                            early,
                        })
                    }
                }
            }
        }
    }

    fn finish(&self, current: Option<Current>, plan: Plan) -> Result<String> {
        let unload = current.as_ref().filter(|_| !plan.keep).map(|c| &c.restore);
        let record = plan.load.as_ref().map(|g| &g.record);
        let diff = env_diff::diff(&self.env, unload, record);

        let loaded = match (&plan.load, &diff.restore) {
            (Some(generation), Some(restore)) => Some(Loaded {
                generation: generation.number,
                restore: restore.save(self.dirs)?,
            }),
            _ if plan.keep => current.as_ref().map(|c| c.loaded.clone()),
            _ => None,
        };

        let mut target = self.env.clone();
        for (name, value) in &diff.changes {
            match value {
                Some(v) => target.insert(name.clone(), v.clone()),
                None => target.remove(name),
            };
        }
        let state = match plan.status {
            None => None,
            Some((status, project, entries)) => {
                let digest = state::digest_with(
                    project.root(),
                    &entries,
                    &|n| target.get(n).cloned(),
                    &plan.early,
                );
                let watch = self.store_watch(entries)?;
                Some(State {
                    status,
                    pid: self.pid,
                    loaded: loaded.clone(),
                    root: project.root().to_path_buf(),
                    digest,
                    watch,
                })
            }
        };

        // Leases: gc must not free what a live shell uses. A cache directory that cannot be
        // written (read-only, full) costs the lease, never the shell its environment change:
        // leaving must restore the shell whatever the disk says.
        let lease = match (&state, &loaded) {
            (Some(s), Some(l)) => Lease {
                pid: self.pid,
                project_key: project::key_for_path(&s.root),
                generation: l.generation,
                restore: l.restore.clone(),
            }
            .write(self.dirs),
            _ => Lease::remove(self.dirs, self.pid),
        };
        if let Err(e) = lease {
            eprintln!("envy: warning: cannot update this shell's lease: {e:#}");
        }

        let loaded_at = plan
            .load
            .as_ref()
            .zip(state.as_ref().map(|s| s.root.as_path()));
        self.report(current.as_ref(), loaded_at, plan.keep, &diff.changes);
        let encoded = state.as_ref().map(State::encode);
        let script = Script {
            unload,
            changes: &diff.changes,
            load: record,
            state: encoded.as_deref(),
        };
        Ok(self.shell.render(&script))
    }

    /// Keep the watch list inline when short, else in a content-addressed file.
    fn store_watch(&self, entries: Vec<Entry>) -> Result<Watch> {
        let text = state::encode_entries(&entries);
        if text.len() <= state::INLINE_WATCH_MAX {
            return Ok(Watch::Inline(entries));
        }
        let path = self
            .dirs
            .watch_dir()
            .join(&fsutil::sha256_hex(text.as_bytes())[..32]);
        let written = self
            .dirs
            .ensure_cache_root()
            .and_then(|()| fsutil::write_immutable(&path, text.as_bytes()));
        // Unwritable cache: the state carries the list itself (longer, but it works).
        Ok(match written {
            Ok(()) => Watch::File(path, entries),
            Err(_) => Watch::Inline(entries),
        })
    }

    fn report(
        &self,
        current: Option<&Current>,
        load: Option<(&Generation, &Path)>,
        keep: bool,
        changes: &[env_diff::Change],
    ) {
        let quiet = std::env::var_os(env_vars::ENVY_QUIET).is_some_and(|v| !v.is_empty());
        if let Some((generation, root)) = load {
            if !quiet {
                eprintln!(
                    "envy: loaded {} (generation {}){}",
                    root.display(),
                    generation.number,
                    summarize(changes, &self.env)
                );
            }
            if self.shell != Shell::Json
                && !self.shell.runs_bash()
                && generation.record.has_bash_only_parts()
            {
                let name = self.shell.to_possible_value().expect("a named shell");
                let name = name.get_name();
                eprintln!(
                    "envy: this devShell has a shellHook or bash functions, which {name} cannot run; {name} gets its variables"
                );
            }
        } else if let Some(c) = current.filter(|_| !keep)
            && !quiet
        {
            eprintln!("envy: unloaded {}", c.root.display());
        }
    }
}

/// The path whose `stat` tells whether process `pid` still runs: its working directory (the
/// project root), which a process that ended no longer has, even while nobody has reaped it.
fn worker_proc(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/cwd"))
}

/// Whether the state was waiting for a worker that no longer runs.
fn previous_worker_died(previous: Option<&State>) -> bool {
    previous.is_some_and(|s| {
        s.watch.entries().iter().any(|e| match e {
            Entry::Path(p) => {
                p.file_name().is_some_and(|n| n == "cwd")
                    && p.parent().and_then(Path::parent) == Some(Path::new("/proc"))
                    && std::fs::metadata(p).is_err()
            }
            Entry::Env(_) => false,
        })
    })
}

/// `+NEW ~CHANGED -REMOVED`, at most a dozen names.
fn summarize(changes: &[env_diff::Change], before: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<String> = changes
        .iter()
        .map(|(name, value)| match (before.contains_key(name), value) {
            (false, Some(_)) => format!("+{name}"),
            (true, Some(_)) => format!("~{name}"),
            (_, None) => format!("-{name}"),
        })
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    if parts.len() > 12 {
        let more = parts.len() - 12;
        parts.truncate(12);
        parts.push(format!("and {more} more"));
    }
    format!(": {}", parts.join(" "))
}

/// The watch list of `record` as state entries (paths under the root made relative).
fn watch_entries(project: &Project, record: &EnvRecord) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for path in record.watch.files.iter().chain(&record.watch.dirs) {
        let entry = relative_entry(project.root(), path.clone());
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    entries.extend(record.watch.env.iter().cloned().map(Entry::Env));
    entries
}

fn relative_entry(root: &Path, path: PathBuf) -> Entry {
    match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => Entry::Path(rel.to_path_buf()),
        _ => Entry::Path(path),
    }
}

/// Restore data inferred from a generation when its restore file is gone: variables it set
/// are unset, and its entries are taken back out of `PATH` and `XDG_DATA_DIRS`.
fn fallback_restore(env: &BTreeMap<String, String>, record: &EnvRecord) -> Restore {
    let mut restore = Restore::default();
    for (name, value) in record.exported() {
        let previous = if env_vars::is_prepended(name) {
            env.get(name).map(|now| {
                now.strip_prefix(value)
                    .map(|r| r.trim_start_matches(':'))
                    .unwrap_or(now)
                    .to_string()
            })
        } else {
            None
        };
        restore.vars.insert(name.to_string(), previous);
    }
    restore.locals = record.shell_locals().map(|(n, _)| n.to_string()).collect();
    restore.functions = record.bash_functions.keys().cloned().collect();
    restore.shell_hook = record.shell_hook().is_some();
    restore
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::record::Variable;

    #[test]
    fn fallback_takes_the_record_back_out_of_path() {
        let mut r = EnvRecord::default();
        r.variables
            .insert("PATH".into(), Variable::Exported("/nix/a/bin".into()));
        r.variables
            .insert("FOO".into(), Variable::Exported("x".into()));
        let env: BTreeMap<String, String> =
            [("PATH".to_string(), "/nix/a/bin:/usr/bin".to_string())]
                .into_iter()
                .collect();
        let restore = fallback_restore(&env, &r);
        assert_eq!(restore.vars["PATH"].as_deref(), Some("/usr/bin"));
        assert_eq!(restore.vars["FOO"], None);
    }

    #[test]
    fn summary_marks_new_changed_and_removed() {
        let before: BTreeMap<String, String> = [("PATH".to_string(), "/b".to_string())]
            .into_iter()
            .collect();
        let changes = vec![
            ("FOO".to_string(), Some("1".to_string())),
            ("PATH".to_string(), Some("/a:/b".to_string())),
            ("GONE".to_string(), None),
        ];
        assert_eq!(summarize(&changes, &before), ": +FOO ~PATH -GONE");
    }
}
