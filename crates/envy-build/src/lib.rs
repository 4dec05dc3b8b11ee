//! Runs derivation builders with Nix's build-environment conventions, in a Linux sandbox
//! (user, mount, PID, IPC, UTS and network namespaces) where the kernel allows it.
//!
//! Knows nothing of the Nix language or of terminals: progress goes through the `Progress` trait.

pub mod builder;
pub mod capture;
pub mod env;
pub mod error;
pub mod fetchurl;
pub mod fsutil;
pub mod log;
mod output_checks;
pub mod progress;
pub mod remote;
mod run;
pub mod sandbox;
pub mod schedule;
pub mod structured_attrs;
mod substitute;

pub use builder::{BuildConfig, BuildResults, Builder, SandboxMode};
pub use capture::Captured;
pub use error::BuildError;
pub use progress::{BuildEvent, NoProgress, Progress};
