//! Build progress on stderr while an `envy shell` environment is realised: what is building,
//! how many builds are left, and the time since the start. A terminal gets one status line
//! rewritten in place; anything else gets a line per change. Backends report through
//! [`Progress`]; the last lines of a failed build's log are kept for the error message.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::time::Instant;

/// How many log lines of a failing build to show.
const LOG_TAIL: usize = 25;

/// Progress of one realisation.
pub struct Progress {
    started: Instant,
    tty: bool,
    quiet: bool,
    running: BTreeMap<u64, String>,
    /// Builds that finished.
    done: u64,
    /// The most builds the backend said it expects.
    expected: u64,
    log_tail: VecDeque<String>,
    last_line: String,
}

impl Progress {
    /// `quiet`: print nothing (the log tail is still kept).
    pub fn new(quiet: bool) -> Self {
        Self {
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            quiet,
            running: BTreeMap::new(),
            done: 0,
            expected: 0,
            log_tail: VecDeque::new(),
            last_line: String::new(),
        }
    }

    /// A build (activity `id`) of the derivation named `name` started.
    pub fn build_started(&mut self, id: u64, name: String) {
        self.running.insert(id, name);
        self.render();
    }

    /// Activity `id` ended (a build finished, or another activity we did not track).
    pub fn stopped(&mut self, id: u64) {
        if self.running.remove(&id).is_some() {
            self.done += 1;
            self.render();
        }
    }

    /// The backend's count of builds it expects to run changed.
    pub fn expect(&mut self, expected: u64) {
        if expected > self.expected {
            self.expected = expected;
            self.render();
        }
    }

    /// A line of a build's log.
    pub fn log_line(&mut self, line: String) {
        if self.log_tail.len() == LOG_TAIL {
            self.log_tail.pop_front();
        }
        self.log_tail.push_back(line);
    }

    /// The last log lines seen, oldest first.
    pub fn log_tail(&self) -> Vec<String> {
        self.log_tail.iter().cloned().collect()
    }

    /// How many builds ran.
    #[cfg(test)]
    pub fn builds_done(&self) -> u64 {
        self.done
    }

    /// End the status line and say how long it took.
    pub fn finish(&mut self) {
        if self.quiet || self.done == 0 {
            return;
        }
        let line = format!(
            "envy: built {} derivation{} in {}",
            self.done,
            plural(self.done),
            self.elapsed()
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}\n");
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    fn elapsed(&self) -> String {
        let secs = self.started.elapsed().as_secs();
        format!("{}:{:02}", secs / 60, secs % 60)
    }

    fn render(&mut self) {
        if self.quiet {
            return;
        }
        if self.running.is_empty() {
            return;
        }
        let what = self
            .running
            .values()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let left = self.expected.max(self.done + self.running.len() as u64) - self.done;
        let status = format!(
            "envy: building {what} ({left} of {} left)",
            self.expected.max(self.done + left)
        );
        if status == self.last_line {
            return;
        }
        self.last_line.clone_from(&status);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{status} [{}]", self.elapsed());
        } else {
            let _ = writeln!(err, "{status} [{}]", self.elapsed());
        }
        let _ = err.flush();
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The name of a derivation from its store path: `/…/abc…-musl-1.2.3.drv` → `musl-1.2.3`.
pub fn derivation_name(drv_path: &str) -> String {
    let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name.to_owned(),
        _ => base.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_names_drop_the_hash() {
        assert_eq!(
            derivation_name("/nix/store/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.tar.gz.drv"),
            "musl-1.2.3.tar.gz"
        );
        assert_eq!(derivation_name("odd"), "odd");
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines() {
        let mut p = Progress::new(true);
        for i in 0..40 {
            p.log_line(format!("line {i}"));
        }
        let tail = p.log_tail();
        assert_eq!(tail.len(), LOG_TAIL);
        assert_eq!(tail.last().unwrap(), "line 39");
    }
}
