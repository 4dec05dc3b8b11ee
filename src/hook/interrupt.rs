//! Ctrl-C in the blocking mode (`ENVY_SYNC=1`): it stops the build, and the next prompt does
//! not start it again until a watched file changes or `envy reload` runs.
//!
//! While the prompt's build runs, an [`InterruptGuard`] catches `SIGINT`; the build's own
//! processes get the signal from the terminal and stop. The guard records the `interrupted`
//! marker in the project's cache — the inputs as they are (the last generation's watch list,
//! `flake.nix`, `flake.lock`) under a key like a failure's — and ends envy with status 130.
//! The slow path consults the marker before building; a successful build (`envy reload`
//! forces one) removes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;

use crate::cache::{KeyContext, ProjectCache, cache_key, now_unix};
use crate::env::record::WatchList;
use crate::project::Project;
use crate::util::fsutil;

/// A build interrupted by Ctrl-C, and on what.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Interrupted {
    /// The key over `watch` when it was interrupted (hex).
    pub key: String,
    /// What decides whether it is still the same build.
    pub watch: WatchList,
    /// When (seconds since the epoch).
    pub when: u64,
}

impl Interrupted {
    /// The marker as recorded, whether or not its inputs changed since.
    pub fn load(cache: &ProjectCache) -> Option<Self> {
        let text = fs_err::read_to_string(cache.interrupted_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The marker, if the inputs are still those it was interrupted on.
    pub fn holding(cache: &ProjectCache, ctx: &KeyContext<'_>) -> Option<Self> {
        Self::load(cache).filter(|m| fsutil::hex(&cache_key(&m.watch, ctx)) == m.key)
    }

    /// Record that the build of `project` with these inputs was interrupted.
    pub fn record(cache: &ProjectCache, project: &Project, ctx: &KeyContext<'_>) -> Result<()> {
        let mut watch = cache
            .current()
            .ok()
            .flatten()
            .map(|p| p.watch)
            .unwrap_or_default();
        watch.add_file(project.flake_nix());
        watch.add_file(project.flake_lock());
        watch.normalize();
        let marker = Interrupted {
            key: fsutil::hex(&cache_key(&watch, ctx)),
            watch,
            when: now_unix(),
        };
        fsutil::write_atomic(
            &cache.interrupted_path(),
            serde_json::to_string(&marker)?.as_bytes(),
        )
    }

    /// Forget the marker (a build succeeded, or `envy reload` asked for one).
    pub fn clear(cache: &ProjectCache) {
        let _ = fs_err::remove_file(cache.interrupted_path());
    }
}

static SIGINT_SEEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    SIGINT_SEEN.store(true, Ordering::SeqCst);
}

/// While alive, Ctrl-C calls `record` (once) and ends envy with status 130.
pub struct InterruptGuard {
    stop: Arc<AtomicBool>,
    previous: Option<nix::sys::signal::SigAction>,
}

impl InterruptGuard {
    /// Catch `SIGINT` from here on; `record` runs on a thread of its own when it comes.
    pub fn install(record: impl FnOnce() + Send + 'static) -> Self {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        let action = SigAction::new(
            SigHandler::Handler(on_sigint),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic.
        let previous = unsafe { sigaction(Signal::SIGINT, &action) }.ok();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                if SIGINT_SEEN.load(Ordering::SeqCst) {
                    record();
                    std::process::exit(130);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self { stop, previous }
    }

    /// Whether Ctrl-C came (the build may have ended because of it).
    pub fn interrupted(&self) -> bool {
        SIGINT_SEEN.load(Ordering::SeqCst)
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if self.interrupted() {
            // The thread is recording it and ends the process: leave it the time.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(previous) = &self.previous {
            // SAFETY: restoring the disposition that was there before.
            let _ =
                unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, previous) };
        }
    }
}
