//! Build progress on standard error: nothing for builds that finish within a second, then
//! the current phase and the elapsed time — a spinner on a terminal, plain lines otherwise.
//!
//! Backends report through the [`ProgressSink`] trait and know nothing of terminals; the
//! display lives here. Standard output is never touched (it carries shell code).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a backend reports what it is doing. Implementations must be cheap: a backend may
/// call them for every log line.
pub trait ProgressSink: Send + Sync {
    /// A new phase: "evaluating flake.nix", "building shell-env", "buildPhase" …
    fn phase(&self, phase: &str);
    /// One line of build output.
    fn log_line(&self, line: &str);
}

/// A sink that shows nothing (tests).
#[cfg(test)]
pub struct NoProgress;

#[cfg(test)]
impl ProgressSink for NoProgress {
    fn phase(&self, _: &str) {}
    fn log_line(&self, _: &str) {}
}

/// How progress is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An updating spinner line.
    Spinner,
    /// One line per phase change.
    Lines,
    /// Nothing.
    Off,
}

impl Mode {
    /// From `ENVY_PROGRESS` (`auto`, `plain`, `none`) and whether stderr is a terminal.
    pub fn from_env() -> Self {
        match std::env::var(crate::env_vars::ENVY_PROGRESS).as_deref() {
            Ok("none") => Mode::Off,
            Ok("plain") => Mode::Lines,
            _ if std::io::stderr().is_terminal() => Mode::Spinner,
            _ => Mode::Lines,
        }
    }
}

/// How long a build runs before progress shows.
const DELAY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Shared {
    phase: String,
    last_line: String,
    done: bool,
}

/// The standard-error display. Drop (or [`Progress::finish`]) clears it.
pub struct Progress {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start the clock; `what` names the project being built.
    pub fn start(what: String, mode: Mode) -> Self {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let thread = (mode != Mode::Off).then(|| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || display(&shared, &what, mode))
        });
        Self { shared, thread }
    }

    /// Stop and clear the display.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        {
            let (lock, cvar) = &*self.shared;
            if let Ok(mut s) = lock.lock() {
                s.done = true;
            }
            cvar.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

impl ProgressSink for Progress {
    fn phase(&self, phase: &str) {
        if let Ok(mut s) = self.shared.0.lock() {
            s.phase = phase.to_string();
        }
    }
    fn log_line(&self, line: &str) {
        if let Ok(mut s) = self.shared.0.lock() {
            s.last_line = line.chars().take(120).collect();
        }
    }
}

fn display(shared: &(Mutex<Shared>, Condvar), what: &str, mode: Mode) {
    let (lock, cvar) = shared;
    let start = Instant::now();
    let Ok(mut guard) = lock.lock() else { return };
    // Wait out the first second: quick builds show nothing.
    while !guard.done && start.elapsed() < DELAY {
        let left = DELAY.saturating_sub(start.elapsed());
        guard = match cvar.wait_timeout(guard, left) {
            Ok((g, _)) => g,
            Err(_) => return,
        };
    }
    if guard.done {
        return;
    }
    let bar = (mode == Mode::Spinner).then(|| {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} envy: {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut shown_phase = String::new();
    loop {
        let phase = if guard.phase.is_empty() {
            "evaluating".to_string()
        } else {
            guard.phase.clone()
        };
        match &bar {
            Some(bar) => {
                let mut msg = format!("{what}: {phase}");
                if !guard.last_line.is_empty() {
                    msg.push_str(&format!(" — {}", guard.last_line));
                }
                bar.set_message(msg);
            }
            None if phase != shown_phase => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(
                    err,
                    "envy: {what}: {phase} ({:.1}s)",
                    start.elapsed().as_secs_f64()
                );
                shown_phase = phase;
            }
            None => {}
        }
        guard = match cvar.wait_timeout(guard, Duration::from_millis(100)) {
            Ok((g, _)) => g,
            Err(_) => return,
        };
        if guard.done {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
