//! [`Generation`]: one built environment of a project, immutable once written, and
//! [`Pointer`]: which generation a cache key (or "current") refers to.

use serde::{Deserialize, Serialize};

use crate::backend::{GcRoot, ShellSelection};
use crate::env::record::{EnvRecord, WatchList};

/// One built environment: `generations/<number>.env` (postcard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    /// 1, 2, 3 … per project.
    pub number: u64,
    /// When it was built (seconds since the Unix epoch).
    pub created: u64,
    /// The backend that built it.
    pub backend: String,
    /// The devShell it is.
    pub selection: ShellSelection,
    /// The environment (sanitized) and its watch list.
    pub record: EnvRecord,
    /// GC roots keeping it alive.
    pub roots: Vec<GcRoot>,
}

impl Generation {
    /// The environment hash in hex (what `envy generations` shows, shortened).
    pub fn env_hash_hex(&self) -> String {
        crate::util::fsutil::hex(&self.record.env_hash())
    }
}

/// A generation plus the cache key (and the watch list it was computed over) that selects it.
/// `current` is one; `builds/<key>` holds one per key ever built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pointer {
    /// The generation number.
    pub generation: u64,
    /// sha256 over the watched inputs (see [`super::cache_key`]).
    pub key: [u8; 32],
    /// What the key was computed over.
    pub watch: WatchList,
}
