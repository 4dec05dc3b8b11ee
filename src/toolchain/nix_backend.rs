//! Realising an `envy shell` environment with the installed Nix: `nix print-dev-env --json`
//! on the materialised package set's `shell.nix`, with Nix's internal-json log turned into
//! envy-build's [`BuildEvent`]s (drawn by the engine's `Render`, as envy's own builds are),
//! and a Nix profile as the environment's GC root.
//!
//! The embedded engine produces the same [`EnvRecord`] from the same Nix files; this backend
//! is what `ENVY_SHELL_BACKEND=nix` selects, and the oracle the embedded one is tested against.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use envy_build::{BuildEvent, Progress};

use super::shell_cache::ShellRequest;
use crate::engine::render::derivation_name;
use crate::env_record::EnvRecord;

/// Nix's activity types and result types in `--log-format internal-json` (src/libutil/logging.hh).
const ACT_BUILDS: u64 = 104;
const ACT_BUILD: u64 = 105;
const RES_BUILD_LOG_LINE: u64 = 101;
const RES_PROGRESS: u64 = 105;

/// How many log lines of a failing build to show.
const LOG_TAIL: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum NixBackendError {
    #[error("cannot run `{nix}`")]
    Spawn {
        nix: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`nix print-dev-env` failed: {message}{}", log_tail(.log))]
    Failed { message: String, log: Vec<String> },
    #[error("`nix print-dev-env` printed an environment envy cannot read")]
    BadJson(#[source] crate::env_record::RecordError),
}

fn log_tail(log: &[String]) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("\nlast lines of the build log:\n{}", log.join("\n"))
    }
}

/// The installed Nix.
pub struct NixBackend {
    nix: PathBuf,
}

impl NixBackend {
    /// `ENVY_NIX`, else `nix` on PATH.
    pub fn find() -> Option<Self> {
        let nix = match std::env::var_os(crate::env_vars::ENVY_NIX).filter(|v| !v.is_empty()) {
            Some(path) => PathBuf::from(path),
            None => which::which("nix").ok()?,
        };
        Some(Self { nix })
    }

    /// Evaluate and build the shell for `request` from the package set in `pkgs_dir`, keep
    /// it alive with a Nix profile at `profile`, and return its environment.
    pub fn realise(
        &self,
        pkgs_dir: &Path,
        request: &ShellRequest,
        profile: &Path,
        progress: &dyn Progress,
    ) -> Result<EnvRecord, NixBackendError> {
        let packages = format!(
            "[ {} ]",
            request
                .packages
                .iter()
                .map(|p| crate::engine::eval::nix_string(p))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut child = Command::new(&self.nix)
            .args([
                "--extra-experimental-features",
                "nix-command",
                "print-dev-env",
                "--json",
            ])
            .args(["--log-format", "internal-json", "-v"])
            .arg("--file")
            .arg(pkgs_dir.join("shell.nix"))
            .args(["--argstr", "target", request.target.triple()])
            .args(["--arg", "packages", &packages])
            .arg("--profile")
            .arg(profile)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NixBackendError::Spawn {
                nix: self.nix.clone(),
                source,
            })?;

        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).map(|_| out)
        });

        let mut log = NixLog::default();
        for line in BufReader::new(child.stderr.take().expect("piped stderr")).lines() {
            let Ok(line) = line else { break };
            match line.strip_prefix("@nix ") {
                Some(json) => log.handle_event(json, progress),
                None => log.log_line(line),
            }
        }
        let status = child.wait().map_err(|source| NixBackendError::Spawn {
            nix: self.nix.clone(),
            source,
        })?;
        let stdout = reader.join().ok().and_then(Result::ok).unwrap_or_default();
        if !status.success() {
            let message = if log.errors.is_empty() {
                format!("exit status {status}")
            } else {
                log.errors.join("\n")
            };
            return Err(NixBackendError::Failed {
                message,
                log: log.tail.into(),
            });
        }
        EnvRecord::from_json(&String::from_utf8_lossy(&stdout)).map_err(NixBackendError::BadJson)
    }
}

/// What Nix's internal-json log said so far.
#[derive(Default)]
struct NixLog {
    /// Activities by id: their type, and for builds the `.drv` and start time.
    activities: HashMap<u64, (u64, Option<(String, Instant)>)>,
    /// Builds finished.
    finished: usize,
    /// Error messages (level 0).
    errors: Vec<String>,
    /// The last lines of build output.
    tail: VecDeque<String>,
}

impl NixLog {
    fn log_line(&mut self, line: String) {
        if self.tail.len() == LOG_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    fn handle_event(&mut self, json: &str, progress: &dyn Progress) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(json) else {
            return;
        };
        let id = event["id"].as_u64().unwrap_or(0);
        match event["action"].as_str() {
            Some("start") => {
                let kind = event["type"].as_u64().unwrap_or(0);
                let build = (kind == ACT_BUILD).then(|| {
                    let drv = event["fields"][0].as_str().unwrap_or_default().to_owned();
                    progress.event(BuildEvent::Started {
                        name: derivation_name(&drv).to_owned(),
                        drv: drv.clone(),
                    });
                    (drv, Instant::now())
                });
                self.activities.insert(id, (kind, build));
            }
            Some("stop") => {
                if let Some((_, Some((drv, started)))) = self.activities.remove(&id) {
                    self.finished += 1;
                    progress.event(BuildEvent::Finished {
                        drv,
                        ok: true,
                        elapsed: started.elapsed(),
                    });
                }
            }
            Some("result") => {
                let kind = event["type"].as_u64().unwrap_or(0);
                let fields = &event["fields"];
                if kind == RES_BUILD_LOG_LINE {
                    self.log_line(fields[0].as_str().unwrap_or_default().to_owned());
                } else if kind == RES_PROGRESS
                    && self.activities.get(&id).map(|a| a.0) == Some(ACT_BUILDS)
                {
                    let expected = fields[1].as_u64().unwrap_or(0) as usize;
                    progress.event(BuildEvent::Planned {
                        to_build: expected.saturating_sub(self.finished),
                    });
                }
            }
            Some("msg") if event["level"].as_u64() == Some(0) => {
                let text = event["msg"].as_str().unwrap_or_default();
                self.errors.push(strip_ansi(text));
            }
            _ => {}
        }
    }
}

/// `text` without terminal escape sequences (Nix colours its error messages).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
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

    #[test]
    fn internal_json_events_become_build_events() {
        let events = std::sync::Mutex::new(Vec::new());
        let progress = |e: BuildEvent| events.lock().unwrap().push(e);
        let mut log = NixLog::default();
        for line in [
            r#"{"action":"start","id":1,"level":0,"text":"","type":104}"#,
            r#"{"action":"result","fields":[0,3,0,0],"id":1,"type":105}"#,
            r#"{"action":"start","id":2,"level":3,"text":"building","type":105,"fields":["/s/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.drv","",1,1]}"#,
            r#"{"action":"result","fields":["checking for clang"],"id":2,"type":101}"#,
            r#"{"action":"stop","id":2}"#,
            r#"{"action":"result","fields":[1,3,0,0],"id":1,"type":105}"#,
            r#"{"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m builder failed"}"#,
        ] {
            log.handle_event(line, &progress);
        }
        let events = events.into_inner().unwrap();
        assert_eq!(events[0], BuildEvent::Planned { to_build: 3 });
        assert_eq!(
            events[1],
            BuildEvent::Started {
                drv: "/s/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.drv".into(),
                name: "musl-1.2.3".into()
            }
        );
        assert!(matches!(&events[2], BuildEvent::Finished { ok: true, .. }));
        assert_eq!(events[3], BuildEvent::Planned { to_build: 2 });
        assert_eq!(log.finished, 1);
        assert_eq!(log.tail, ["checking for clang"]);
        assert_eq!(log.errors, ["error: builder failed"]);
    }
}
