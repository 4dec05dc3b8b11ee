//! Realising an `envy shell` environment with the installed Nix: `nix print-dev-env --json`
//! on the materialised package set's `shell.nix`, with Nix's internal-json log turned into
//! envy's progress display, and a Nix profile as the environment's GC root.
//!
//! The embedded engine produces the same [`DevEnv`] from the same Nix files; this backend is
//! what machines with Nix use, and the oracle the embedded one is tested against.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::DevEnv;
use super::progress::{Progress, derivation_name};
use super::shell_cache::ShellRequest;

/// Nix's activity types and result types in `--log-format internal-json` (src/libutil/logging.hh).
const ACT_BUILDS: u64 = 104;
const ACT_BUILD: u64 = 105;
const RES_BUILD_LOG_LINE: u64 = 101;
const RES_PROGRESS: u64 = 105;

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
    BadJson(#[source] serde_json::Error),
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
        progress: &mut Progress,
    ) -> Result<DevEnv, NixBackendError> {
        let packages = format!(
            "[ {} ]",
            request
                .packages
                .iter()
                .map(|p| super::host_tools::nix_string(p))
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

        let mut errors = Vec::new();
        let mut activities = std::collections::HashMap::new();
        for line in BufReader::new(child.stderr.take().expect("piped stderr")).lines() {
            let Ok(line) = line else { break };
            match line.strip_prefix("@nix ") {
                Some(json) => handle_event(json, &mut activities, progress, &mut errors),
                None => progress.log_line(line),
            }
        }
        let status = child.wait().map_err(|source| NixBackendError::Spawn {
            nix: self.nix.clone(),
            source,
        })?;
        let stdout = reader.join().ok().and_then(Result::ok).unwrap_or_default();
        progress.finish();
        if !status.success() {
            let message = if errors.is_empty() {
                format!("exit status {status}")
            } else {
                errors.join("\n")
            };
            return Err(NixBackendError::Failed {
                message,
                log: progress.log_tail(),
            });
        }
        DevEnv::from_json(&stdout).map_err(NixBackendError::BadJson)
    }
}

fn handle_event(
    json: &str,
    activities: &mut std::collections::HashMap<u64, u64>,
    progress: &mut Progress,
    errors: &mut Vec<String>,
) {
    let Ok(event) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    let id = event["id"].as_u64().unwrap_or(0);
    match event["action"].as_str() {
        Some("start") => {
            let kind = event["type"].as_u64().unwrap_or(0);
            activities.insert(id, kind);
            if kind == ACT_BUILD {
                let drv = event["fields"][0].as_str().unwrap_or_default();
                progress.build_started(id, derivation_name(drv));
            }
        }
        Some("stop") => {
            activities.remove(&id);
            progress.stopped(id);
        }
        Some("result") => {
            let kind = event["type"].as_u64().unwrap_or(0);
            let fields = &event["fields"];
            if kind == RES_BUILD_LOG_LINE {
                progress.log_line(fields[0].as_str().unwrap_or_default().to_owned());
            } else if kind == RES_PROGRESS && activities.get(&id) == Some(&ACT_BUILDS) {
                progress.expect(fields[1].as_u64().unwrap_or(0));
            }
        }
        Some("msg") if event["level"].as_u64() == Some(0) => {
            let text = event["msg"].as_str().unwrap_or_default();
            errors.push(strip_ansi(text));
        }
        _ => {}
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
    fn internal_json_events_drive_the_progress() {
        let mut progress = Progress::new(true);
        let mut acts = std::collections::HashMap::new();
        let mut errors = Vec::new();
        for line in [
            r#"{"action":"start","id":1,"level":0,"text":"","type":104}"#,
            r#"{"action":"result","fields":[0,3,0,0],"id":1,"type":105}"#,
            r#"{"action":"start","id":2,"level":3,"text":"building","type":105,"fields":["/s/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.drv","",1,1]}"#,
            r#"{"action":"result","fields":["checking for clang"],"id":2,"type":101}"#,
            r#"{"action":"stop","id":2}"#,
            r#"{"action":"result","fields":[1,3,0,0],"id":1,"type":105}"#,
            r#"{"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m builder failed"}"#,
        ] {
            handle_event(line, &mut acts, &mut progress, &mut errors);
        }
        assert_eq!(progress.builds_done(), 1);
        assert_eq!(progress.log_tail(), ["checking for clang"]);
        assert_eq!(errors, ["error: builder failed"]);
    }
}
