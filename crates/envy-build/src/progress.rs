//! How the builder reports what it is doing. The library never prints: the caller passes a
//! [`Progress`] and renders events as it likes (the `envy` binary draws them with indicatif).

use std::time::Duration;

/// Something that happened during a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// The plan: `to_build` derivations must be built (the rest are valid already).
    Planned { to_build: usize },
    /// A derivation's builder started.
    Started { drv: String, name: String },
    /// A line the builder printed (without its newline).
    Log { drv: String, line: String },
    /// Another process holds the lock on this derivation's outputs; we wait for it.
    WaitingForLock { drv: String },
    /// A derivation finished (`ok`), or failed.
    Finished {
        drv: String,
        ok: bool,
        elapsed: Duration,
    },
    /// A derivation's outputs turned out valid when its turn came (another process built them).
    AlreadyValid { drv: String },
    /// Fetching a store path from a binary cache.
    Downloading { path: String, url: String },
    /// Every output of a derivation was fetched from binary caches: it is not built.
    Substituted { drv: String },
    /// Something the user should know (e.g. the build runs without a sandbox).
    Warning { message: String },
}

/// Receives build events; called from the build's worker threads.
pub trait Progress: Send + Sync {
    fn event(&self, event: BuildEvent);
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: BuildEvent) {}
}

impl<F: Fn(BuildEvent) + Send + Sync> Progress for F {
    fn event(&self, event: BuildEvent) {
        self(event);
    }
}
