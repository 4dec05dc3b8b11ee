//! Running the installed Nix CLI with `--log-format internal-json`: finding `nix`, spawning
//! it, and turning its structured log into envy-build's [`BuildEvent`]s, activity phases,
//! error messages, a build-log tail and the files the evaluator opened.
//!
//! Both Nix backends use it: the devShell backend (`crate::backend::nix`, `nix print-dev-env`
//! on a flake) and `envy shell`'s (`crate::toolchain::nix_backend`, `ENVY_SHELL_BACKEND=nix`).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use envy_build::BuildEvent;
use serde_json::Value;

use crate::engine::render::derivation_name;

/// Nix's activity types and result types in `--log-format internal-json` (src/libutil/logging.hh).
const ACT_BUILDS: u64 = 104;
const ACT_BUILD: u64 = 105;
const RES_BUILD_LOG_LINE: u64 = 101;
const RES_SET_PHASE: u64 = 104;
const RES_PROGRESS: u64 = 105;

/// How many log lines of a failing build [`NixLog::tail`] keeps.
pub const LOG_TAIL: usize = 25;

/// `ENVY_NIX`, else `nix` on `PATH`.
pub fn find() -> Option<PathBuf> {
    match std::env::var_os(crate::env::vars::ENVY_NIX).filter(|v| !v.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => which::which("nix").ok(),
    }
}

/// Where a Nix run reports progress.
pub trait NixProgress {
    /// A build event: derivations planned, started, finished, and their log lines.
    fn event(&self, event: BuildEvent);
    /// An activity Nix announced ("copying path …") or a phase a build set ("buildPhase").
    fn phase(&self, _phase: &str) {}
}

/// Only the build events, for an envy-build [`envy_build::Progress`].
pub struct Events<'a>(pub &'a dyn envy_build::Progress);

impl NixProgress for Events<'_> {
    fn event(&self, event: BuildEvent) {
        self.0.event(event);
    }
}

/// Why a Nix run could not be watched to its end.
#[derive(Debug)]
pub enum RunError {
    /// `nix` could not be started.
    Spawn(std::io::Error),
    /// Waiting for `nix` to exit failed.
    Wait(std::io::Error),
}

/// A finished Nix run.
pub struct Finished {
    pub status: ExitStatus,
    /// Everything it printed on standard output.
    pub stdout: Vec<u8>,
    /// What its log said.
    pub log: NixLog,
}

/// Run `command` (a `nix` invocation with `--log-format internal-json`) with standard input
/// closed, reporting its log to `progress` as it comes.
pub fn run(command: &mut Command, progress: &dyn NixProgress) -> Result<Finished, RunError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RunError::Spawn)?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).map(|_| out)
    });
    let mut log = NixLog::default();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            log.line(&line, progress);
        }
    }
    let status = child.wait().map_err(RunError::Wait)?;
    let stdout = reader.join().ok().and_then(Result::ok).unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        log,
    })
}

/// What Nix's internal-json log said so far.
#[derive(Default)]
pub struct NixLog {
    /// Store paths of files the evaluator opened (`-vvv`).
    pub files: Vec<String>,
    /// Store paths of directories copied from a flake's source (`./dir` references).
    pub copied_dirs: Vec<String>,
    /// Error messages (level 0, or unstructured lines from the first `error:` on), ANSI
    /// colours removed.
    pub errors: Vec<String>,
    /// The store directory holding the flake's own `flake.nix` (`…-source[/subdir]`).
    pub flake_dir: Option<String>,
    /// The last [`LOG_TAIL`] lines of build output (and other unstructured output).
    pub tail: VecDeque<String>,
    /// Activities by id: their type, and for builds the `.drv` and start time.
    activities: HashMap<u64, (u64, Option<(String, Instant)>)>,
    /// Builds finished.
    finished: usize,
}

impl NixLog {
    /// Take one line of Nix's standard error.
    pub fn line(&mut self, line: &str, progress: &dyn NixProgress) {
        match line.strip_prefix("@nix ") {
            Some(json) => self.event(json, progress),
            // Not structured (an old Nix, or a message printed before logging was set up).
            None if line.starts_with("error:") || !self.errors.is_empty() => {
                self.errors.push(strip_ansi(line));
            }
            None => self.tail_line(line.to_owned()),
        }
    }

    fn tail_line(&mut self, line: String) {
        if self.tail.len() == LOG_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    fn event(&mut self, json: &str, progress: &dyn NixProgress) {
        let Ok(v) = serde_json::from_str::<Value>(json) else {
            return;
        };
        let id = v["id"].as_u64().unwrap_or(0);
        let fields = &v["fields"];
        match v["action"].as_str() {
            Some("msg") => {
                let level = v["level"].as_u64().unwrap_or(9);
                let msg = v["msg"].as_str().unwrap_or_default();
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
                let kind = v["type"].as_u64().unwrap_or(0);
                let text = v["text"].as_str().unwrap_or_default();
                let build = (kind == ACT_BUILD).then(|| {
                    let drv = fields[0].as_str().unwrap_or_default().to_owned();
                    progress.event(BuildEvent::Started {
                        name: derivation_name(&drv).to_owned(),
                        drv: drv.clone(),
                    });
                    (drv, Instant::now())
                });
                if build.is_none() && !text.is_empty() && v["level"].as_u64().unwrap_or(9) <= 3 {
                    progress.phase(&strip_ansi(text));
                }
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
            Some("result") => match v["type"].as_u64().unwrap_or(0) {
                RES_BUILD_LOG_LINE => {
                    let Some(line) = fields[0].as_str() else {
                        return;
                    };
                    let drv = match self.activities.get(&id) {
                        Some((_, Some((drv, _)))) => drv.clone(),
                        _ => String::new(),
                    };
                    progress.event(BuildEvent::Log {
                        drv,
                        line: line.to_owned(),
                    });
                    self.tail_line(line.to_owned());
                }
                RES_SET_PHASE => {
                    if let Some(phase) = fields[0].as_str() {
                        progress.phase(phase);
                    }
                }
                RES_PROGRESS if self.activities.get(&id).map(|a| a.0) == Some(ACT_BUILDS) => {
                    let expected = fields[1].as_u64().unwrap_or(0) as usize;
                    progress.event(BuildEvent::Planned {
                        to_build: expected.saturating_sub(self.finished),
                    });
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// The text between `prefix` and the next `'`.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    Some(&rest[..rest.find('\'')?])
}

/// `text` without ANSI escape sequences (Nix colours its messages, even in JSON); the daemon
/// client's log reader strips them the same way.
pub use envy_store::daemon::log::strip_ansi;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records events and phases.
    #[derive(Default)]
    struct Recorder {
        events: Mutex<Vec<BuildEvent>>,
        phases: Mutex<Vec<String>>,
    }

    impl NixProgress for Recorder {
        fn event(&self, event: BuildEvent) {
            self.events.lock().unwrap().push(event);
        }
        fn phase(&self, phase: &str) {
            self.phases.lock().unwrap().push(phase.to_owned());
        }
    }

    #[test]
    fn internal_json_events_become_build_events_and_phases() {
        let rec = Recorder::default();
        let mut log = NixLog::default();
        for line in [
            r#"@nix {"action":"start","id":1,"level":0,"text":"","type":104}"#,
            r#"@nix {"action":"result","fields":[0,3,0,0],"id":1,"type":105}"#,
            r#"@nix {"action":"start","id":2,"level":3,"text":"building '/s/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.drv'","type":105,"fields":["/s/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.drv","",1,1]}"#,
            r#"@nix {"action":"result","fields":["configurePhase"],"id":2,"type":104}"#,
            r#"@nix {"action":"result","fields":["checking for clang"],"id":2,"type":101}"#,
            r#"@nix {"action":"stop","id":2}"#,
            r#"@nix {"action":"result","fields":[1,3,0,0],"id":1,"type":105}"#,
            r#"@nix {"action":"start","id":3,"level":3,"text":"copying path '/s/x'","type":100}"#,
            r#"@nix {"action":"start","id":4,"level":4,"text":"querying info","type":100}"#,
            r#"@nix {"action":"msg","level":0,"msg":"\u001b[31;1merror:\u001b[0m builder failed"}"#,
        ] {
            log.line(line, &rec);
        }
        let events = rec.events.into_inner().unwrap();
        let drv = "/s/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.drv";
        assert_eq!(events[0], BuildEvent::Planned { to_build: 3 });
        assert_eq!(
            events[1],
            BuildEvent::Started {
                drv: drv.into(),
                name: "musl-1.2.3".into()
            }
        );
        assert_eq!(
            events[2],
            BuildEvent::Log {
                drv: drv.into(),
                line: "checking for clang".into()
            }
        );
        assert!(matches!(&events[3], BuildEvent::Finished { ok: true, .. }));
        assert_eq!(events[4], BuildEvent::Planned { to_build: 2 });
        assert_eq!(events.len(), 5);
        assert_eq!(
            rec.phases.into_inner().unwrap(),
            ["configurePhase", "copying path '/s/x'"]
        );
        assert_eq!(log.finished, 1);
        assert_eq!(log.tail, ["checking for clang"]);
        assert_eq!(log.errors, ["error: builder failed"]);
    }

    #[test]
    fn records_opened_files_and_unstructured_errors() {
        let rec = Recorder::default();
        let mut log = NixLog::default();
        for line in [
            r#"@nix {"action":"msg","level":4,"msg":"evaluating file '/s/abcd-source/sub/flake.nix'"}"#,
            r#"@nix {"action":"msg","level":6,"msg":"checking access to '/s/abcd-source/sub/data.txt'"}"#,
            r#"@nix {"action":"msg","level":5,"msg":"copied source '/s/abcd-source/sub/stdenv' -> '/s/x-stdenv'"}"#,
            "some warning",
            "error: unrecognised flag",
            "  more of it",
        ] {
            log.line(line, &rec);
        }
        assert_eq!(log.flake_dir.as_deref(), Some("/s/abcd-source/sub"));
        assert_eq!(
            log.files,
            [
                "/s/abcd-source/sub/flake.nix",
                "/s/abcd-source/sub/data.txt"
            ]
        );
        assert_eq!(log.copied_dirs, ["/s/abcd-source/sub/stdenv"]);
        assert_eq!(log.tail, ["some warning"]);
        assert_eq!(log.errors, ["error: unrecognised flag", "  more of it"]);
    }

    #[test]
    fn ansi_colours_are_removed() {
        assert_eq!(strip_ansi("\u{1b}[31;1merror:\u{1b}[0m x"), "error: x");
    }
}
