//! Flakes for envy: flake references ([`FlakeRef`]), the registry ([`Registries`]), lock
//! files as Nix 2.8 writes them ([`LockFile`]), locking a flake's inputs ([`lock`]) and the
//! metadata `envy flake metadata` prints. Fetching is `envy-fetch`'s; evaluating `flake.nix`
//! goes through the [`FlakeNixReader`] trait. Never prints: notices
//! (`creating lock file …`) are returned to the caller.

pub mod call_flake;
pub mod error;
pub mod fetch_builtins;
pub mod flake_nix;
pub mod flakeref;
pub mod lock;
pub mod lockfile;
pub mod metadata;
pub mod mounts;
pub mod nix_value;
pub mod reader;
pub mod registry;
pub mod session;
pub mod show;

pub use error::FlakeError;
pub use flake_nix::{FlakeInput, FlakeInputs, FlakeNix, FlakeNixParts};
pub use flakeref::FlakeRef;
pub use lock::{Flake, FlakeNixReader, LockFlags, LockedFlake, Locker};
pub use lockfile::{Edge, InputPath, LockFile, LockedNode, Node, NodeId};
pub use registry::{Registries, Registry, RegistryEntry};
pub use session::FlakeSession;
