//! Build progress on standard error, from envy-build's [`BuildEvent`]s: what is building, how
//! many builds are left, and the time since the start. A terminal gets a spinner line
//! rewritten in place; anything else gets a `building '…'...` line per build (Nix's wording,
//! with the count and the elapsed time after it). Used by `envy build`, `envy shell` and the
//! embedded backend alike. Standard output is never touched.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use envy_build::{BuildEvent, Progress};

/// Draws build progress on stderr.
pub struct Render {
    bar: Option<indicatif::ProgressBar>,
    state: Mutex<RenderState>,
    start: Instant,
}

#[derive(Default)]
struct RenderState {
    /// Derivations planned so far (one engine may run several plans: IFD, then the shell).
    total: usize,
    done: usize,
    /// Derivations this process built (the rest of `done` were built by another).
    built: usize,
    running: Vec<String>,
}

impl Default for Render {
    fn default() -> Self {
        Self::new()
    }
}

impl Render {
    pub fn new() -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            state: Mutex::default(),
            start: Instant::now(),
        }
    }

    /// Remove the spinner (nothing to do without a terminal).
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Remove the spinner and, when anything was built, say how many and how long it took.
    pub fn finish(&self) {
        self.clear();
        let done = self.built();
        if done > 0 {
            eprintln!(
                "envy: built {done} derivation{} in {}",
                if done == 1 { "" } else { "s" },
                self.elapsed()
            );
        }
    }

    /// How many derivations finished building successfully so far.
    pub fn built(&self) -> usize {
        self.state.lock().map(|s| s.built).unwrap_or(0)
    }

    fn elapsed(&self) -> String {
        let secs = self.start.elapsed().as_secs();
        format!("{}:{:02}", secs / 60, secs % 60)
    }

    fn redraw(&self, st: &RenderState) {
        if let Some(bar) = &self.bar {
            let left = st.total.saturating_sub(st.done);
            bar.set_message(format!(
                "building {} ({left} of {} left, {})",
                st.running.join(", "),
                st.total,
                self.elapsed()
            ));
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

/// `/…/<hash>-musl-1.2.3.drv` → `musl-1.2.3`.
pub fn derivation_name(drv: &str) -> &str {
    let base = drv.rsplit('/').next().unwrap_or(drv);
    let base = base.strip_suffix(".drv").unwrap_or(base);
    match base.split_once('-') {
        Some((hash, name)) if hash.len() == 32 => name,
        _ => base,
    }
}

impl Progress for Render {
    fn event(&self, event: BuildEvent) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match event {
            BuildEvent::Planned { to_build } => st.total = st.done + to_build,
            BuildEvent::Started { drv, name } => {
                st.running.push(name);
                if self.bar.is_none() {
                    let left = st.total.saturating_sub(st.done);
                    self.line(&format!(
                        "building '{drv}'... ({left} of {} left, {})",
                        st.total,
                        self.elapsed()
                    ));
                }
            }
            BuildEvent::Finished { drv, ok, elapsed } => {
                st.done += 1;
                st.built += usize::from(ok);
                let name = derivation_name(&drv);
                if let Some(i) = st.running.iter().position(|r| r == name) {
                    st.running.remove(i);
                }
                if !ok {
                    self.line(&format!(
                        "error: build of '{drv}' failed after {:.1}s",
                        elapsed.as_secs_f64()
                    ));
                }
            }
            BuildEvent::WaitingForLock { drv } => {
                self.line(&format!(
                    "waiting for another envy to finish building '{drv}'..."
                ));
            }
            BuildEvent::Downloading { path, url } => {
                self.line(&format!("copying path '{path}' from '{url}'..."));
            }
            BuildEvent::AlreadyValid { .. } => {
                // Another process built it while we waited: one fewer to go.
                st.done += 1;
            }
            BuildEvent::Substituted { .. } | BuildEvent::Log { .. } => {}
            BuildEvent::Warning { message } => self.line(&format!("warning: {message}")),
        }
        self.redraw(&st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_names_drop_the_hash_and_the_extension() {
        assert_eq!(
            derivation_name("/s/h14n01yq941iliaky16k8rg40ka3371r-musl-1.2.3.tar.gz.drv"),
            "musl-1.2.3.tar.gz"
        );
        assert_eq!(derivation_name("odd"), "odd");
    }

    #[test]
    fn counts_follow_the_plans() {
        let r = Render {
            bar: None,
            state: Mutex::default(),
            start: Instant::now(),
        };
        r.event(BuildEvent::Planned { to_build: 2 });
        let drv = "/s/h14n01yq941iliaky16k8rg40ka3371r-a.drv".to_owned();
        r.event(BuildEvent::Started {
            drv: drv.clone(),
            name: "a".into(),
        });
        r.event(BuildEvent::Finished {
            drv,
            ok: true,
            elapsed: Duration::ZERO,
        });
        // A second plan (after import-from-derivation) adds to what is left.
        r.event(BuildEvent::Planned { to_build: 3 });
        let st = r.state.lock().unwrap();
        assert_eq!((st.done, st.total), (1, 4));
        assert!(st.running.is_empty());
    }
}
