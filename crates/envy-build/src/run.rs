//! Running one builder: a build directory under the build root, Nix's environment and its
//! files, the sandbox (or a plain child in its own session), the builder's output copied to
//! the log and to progress events, and Nix's failure message with the log's last lines.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use envy_store::local::delete_path;
use envy_store::{Derivation, StorePath};

use crate::builder::{Builder, string_env};
use crate::env::{BuildEnv, EnvInputs, build_env};
use crate::error::BuildError;
use crate::log::LogWriter;
use crate::progress::BuildEvent;
use crate::sandbox::{HostPath, SANDBOX_BUILD_DIR, Sandbox, SandboxSpec};

static BUILD_DIR_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Builder<'_> {
    pub(crate) fn store_dir_print(&self, path: &StorePath) -> String {
        self.store_dir().print(path)
    }

    pub(crate) fn make_capture_top(&self, name: &str) -> Result<PathBuf, BuildError> {
        self.make_top_named(&format!("{name}-capture"))
    }

    pub(crate) fn make_top(&self, drv: &Derivation) -> Result<PathBuf, BuildError> {
        self.make_top_named(&drv.name)
    }

    fn make_top_named(&self, name: &str) -> Result<PathBuf, BuildError> {
        fs_err::create_dir_all(&self.config.build_root)?;
        clean_stale_build_dirs(&self.config.build_root);
        let n = BUILD_DIR_COUNTER.fetch_add(1, Ordering::SeqCst);
        let top = self
            .config
            .build_root
            .join(format!("{}-{n}-{name}", std::process::id()));
        delete_path(&top)?;
        fs_err::create_dir_all(top.join("build"))?;
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(top.join("build"), std::fs::Permissions::from_mode(0o700))?;
        Ok(top)
    }

    /// Run the derivation's builder in `top`. Returns the sandbox root when sandboxed (the
    /// outputs are inside it). `capture` replaces the builder's arguments and redirects the
    /// outputs (see [`crate::capture`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_builder(
        &self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        closure: &BTreeSet<StorePath>,
        fixed: bool,
        top: &Path,
        log: &mut LogWriter,
        capture: Option<&crate::capture::CaptureSetup>,
    ) -> Result<Option<PathBuf>, BuildError> {
        let printed = self.store_dir().print(drv_path);
        let sandboxed = self.use_sandbox()?;
        let host_build_dir = top.join("build");
        let build_dir = if sandboxed {
            PathBuf::from(SANDBOX_BUILD_DIR)
        } else {
            host_build_dir.clone()
        };
        let drv_env = string_env(drv);
        let mut output_strings: BTreeMap<String, String> = outputs
            .iter()
            .map(|(n, p)| (n.clone(), self.store_dir().print(p)))
            .collect();
        let mut drv_env = drv_env;
        if capture.is_some() {
            for (name, value) in output_strings.iter_mut() {
                *value = format!(
                    "{}/{}{name}",
                    build_dir.display(),
                    crate::capture::OUTPUT_PREFIX
                );
                if drv_env.contains_key(name) {
                    drv_env.insert(name.clone(), value.clone());
                }
            }
        }
        let env: BuildEnv = build_env(&EnvInputs {
            drv_path: &printed,
            drv_env: &drv_env,
            outputs: &output_strings,
            store_dir: self.store_dir().as_str(),
            build_dir: &build_dir.display().to_string(),
            cores: self.config.cores,
            fixed_output: fixed,
            host_env: &|name| std::env::var(name).ok(),
        })?;
        for (file, contents) in &env.files {
            fs_err::write(host_build_dir.join(file), contents)?;
        }
        let (program, args): (OsString, Vec<OsString>) = match capture {
            Some(c) => {
                fs_err::write(host_build_dir.join(crate::capture::SCRIPT_NAME), &c.script)?;
                (
                    OsString::from_vec(drv.builder.clone()),
                    vec![OsString::from(format!(
                        "{}/{}",
                        build_dir.display(),
                        crate::capture::SCRIPT_NAME
                    ))],
                )
            }
            None => (
                OsString::from_vec(drv.builder.clone()),
                drv.args
                    .iter()
                    .map(|a| OsString::from_vec(a.clone()))
                    .collect(),
            ),
        };
        let mut command = Command::new(&program);
        command
            .args(&args)
            .env_clear()
            .envs(env.vars.iter().map(|(k, v)| {
                let bytes = envy_store::text::bytes_from_text(v).into_owned();
                (k, OsString::from_vec(bytes))
            }))
            .stdin(Stdio::null());
        let (reader, writer) = std::io::pipe()?;
        command.stdout(writer.try_clone()?).stderr(writer);
        let mut sandbox_root = None;
        if sandboxed {
            let mut host_paths = self.config.sandbox_paths.clone();
            if let Some(deps) = drv_env.get("__impureHostDeps") {
                host_paths.extend(HostPath::parse_list(deps));
            }
            let root = top.join("root");
            let spec = SandboxSpec {
                root: root.clone(),
                build_dir: host_build_dir.clone(),
                store_dir: self.store_dir().as_path().to_path_buf(),
                inputs: closure
                    .iter()
                    .map(|p| self.store_dir().full_path(p))
                    .collect(),
                host_paths,
                network: fixed,
            };
            Sandbox::prepare(&spec)?.wrap(&mut command);
            sandbox_root = Some(root);
        } else {
            command.current_dir(&host_build_dir);
            // SAFETY: only async-signal-safe calls in the forked child.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                    nix::unistd::setsid()?;
                    Ok(())
                });
            }
        }
        let spawned = command.spawn();
        drop(command);
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                let mut reader = reader;
                let mut early = Vec::new();
                let _ = reader.read_to_end(&mut early);
                let _ = log.write(&early);
                let detail = String::from_utf8_lossy(&early).trim().to_string();
                let source = if detail.is_empty() {
                    source
                } else {
                    std::io::Error::new(source.kind(), format!("{source}: {detail}"))
                };
                return Err(BuildError::Spawn {
                    drv: printed,
                    builder: program.to_string_lossy().into_owned(),
                    source,
                });
            }
        };
        let tail = self.pump(&printed, reader, log)?;
        let status = child.wait()?;
        if status.success() {
            return Ok(sandbox_root);
        }
        use std::os::unix::process::ExitStatusExt;
        let status = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("signal {signal}"),
            _ => status.to_string(),
        };
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(
                ";\nlast {} log lines:\n{}",
                tail.len(),
                tail.iter().map(|l| format!("> {l}\n")).collect::<String>()
            )
        };
        Err(BuildError::BuilderFailed {
            drv: printed,
            status,
            tail: tail.trim_end().to_string(),
        })
    }

    /// Copy the builder's output to the log and to progress events; keep the last lines.
    fn pump(
        &self,
        drv: &str,
        mut reader: std::io::PipeReader,
        log: &mut LogWriter,
    ) -> Result<Vec<String>, BuildError> {
        const TAIL: usize = 10;
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut partial: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            log.write(&buf[..n])?;
            partial.extend_from_slice(&buf[..n]);
            while let Some(pos) = partial.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&partial[..pos]).into_owned();
                partial.drain(..=pos);
                self.progress.event(BuildEvent::Log {
                    drv: drv.to_string(),
                    line: line.clone(),
                });
                tail.push_back(line);
                if tail.len() > TAIL {
                    tail.pop_front();
                }
            }
        }
        if !partial.is_empty() {
            let line = String::from_utf8_lossy(&partial).into_owned();
            self.progress.event(BuildEvent::Log {
                drv: drv.to_string(),
                line: line.clone(),
            });
            tail.push_back(line);
            if tail.len() > TAIL {
                tail.pop_front();
            }
        }
        Ok(tail.into())
    }
}

pub(crate) fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Remove build directories left by envy processes that no longer exist (killed mid-build).
fn clean_stale_build_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = delete_path(&entry.path());
        }
    }
}
