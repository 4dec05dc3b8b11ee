//! The prompt hook's logic: the compact state variable, the fast path that decides from it
//! with `stat` calls only, and the slow path that does the real work when something changed.
//!
//! The hook scripts themselves live in `shell-hooks/` (see `shell/mod.rs`).

pub mod background;
pub mod fast;
pub mod interrupt;
pub mod slow;
pub mod state;
pub mod watch;
