//! Runs derivation builders with Nix's build-environment conventions, in a Linux sandbox
//! (user, mount, PID, IPC, UTS and network namespaces) where the kernel allows it.
//!
//! Knows nothing of the Nix language or of terminals: progress goes through the `Progress` trait.

pub mod build_store;
pub mod builder;
pub mod capture;
pub mod env;
pub mod error;
pub mod fetchurl;
pub mod fsutil;
pub mod lock;
pub mod log;
pub mod progress;
pub mod registry;
pub mod sandbox;
pub mod schedule;
pub mod structured_attrs;

pub use build_store::{BuildStore, OutputInfo, StoreError};
pub use builder::{BuildConfig, BuildResults, Builder, SandboxMode};
pub use capture::Captured;
pub use error::BuildError;
pub use progress::{BuildEvent, NoProgress, Progress};
