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
    /// The plan: `to_build` derivations must be built (or fetched).
    fn planned(&self, _to_build: usize) {}
    /// One planned derivation is done (built, fetched, or found built by another process).
    fn done_one(&self) {}
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
        match std::env::var(crate::env::vars::ENVY_PROGRESS).as_deref() {
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
    /// Derivations planned and done (for a background build's phase file).
    planned: usize,
    built: usize,
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

impl Progress {
    /// A background build tells `envy status` what it is doing (best effort): the phase,
    /// then how many planned derivations are left, one per line.
    fn publish(shared: &Shared) {
        if let Some(file) =
            std::env::var_os(crate::env::vars::__ENVY_PHASE_FILE).filter(|f| !f.is_empty())
        {
            let left = shared.planned.saturating_sub(shared.built);
            let text = format!("{}\n{left}\n", shared.phase);
            let _ = crate::util::fsutil::write_atomic(std::path::Path::new(&file), text.as_bytes());
        }
    }
}

impl ProgressSink for Progress {
    fn phase(&self, phase: &str) {
        if let Ok(mut s) = self.shared.0.lock() {
            s.phase = phase.to_string();
            Self::publish(&s);
        }
    }
    fn log_line(&self, line: &str) {
        if let Ok(mut s) = self.shared.0.lock() {
            s.last_line = line.chars().take(120).collect();
        }
    }
    fn planned(&self, to_build: usize) {
        if let Ok(mut s) = self.shared.0.lock() {
            s.planned = to_build;
            s.built = 0;
            Self::publish(&s);
        }
    }
    fn done_one(&self) {
        if let Ok(mut s) = self.shared.0.lock() {
            s.built += 1;
            Self::publish(&s);
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
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let mut frame = 0;
    let mut shown_phase = String::new();
    loop {
        let phase = if guard.phase.is_empty() {
            "evaluating".to_string()
        } else {
            guard.phase.clone()
        };
        let elapsed = start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        match mode {
            Mode::Spinner => {
                let mut line = format!(
                    "{} envy: {what}: {phase} ({elapsed:.1}s)",
                    FRAMES[frame % FRAMES.len()]
                );
                if !guard.last_line.is_empty() {
                    line.push_str(" — ");
                    line.push_str(&guard.last_line);
                }
                // One terminal line: clear it and redraw in place.
                let line: String = line
                    .chars()
                    .take(terminal_width().saturating_sub(1))
                    .collect();
                let _ = write!(err, "\r\x1b[2K{line}");
                let _ = err.flush();
                frame += 1;
            }
            _ if phase != shown_phase => {
                let _ = writeln!(err, "envy: {what}: {phase} ({elapsed:.1}s)");
                shown_phase = phase;
            }
            _ => {}
        }
        drop(err);
        guard = match cvar.wait_timeout(guard, Duration::from_millis(100)) {
            Ok((g, _)) => g,
            Err(_) => return,
        };
        if guard.done {
            break;
        }
    }
    if mode == Mode::Spinner {
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
}

/// Columns of the terminal on stderr (80 when unknown).
fn terminal_width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the pointer we pass, nothing else.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}
