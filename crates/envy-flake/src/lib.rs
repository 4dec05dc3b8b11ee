//! Flakes for envy: flake references ([`FlakeRef`]), the registry ([`Registries`]), lock
//! files as Nix 2.8 writes them ([`LockFile`]), locking a flake's inputs ([`lock`]) and the
//! metadata `envy flake metadata` prints. Fetching is `envy-fetch`'s; evaluating `flake.nix`
//! goes through the [`FlakeNixReader`] trait. Never prints: notices
//! (`creating lock file …`) are returned to the caller.

pub mod error;
pub mod flake_nix;
pub mod flakeref;
pub mod lock;
pub mod lockfile;
pub mod metadata;
pub mod registry;

pub use error::FlakeError;
pub use flake_nix::{FlakeInput, FlakeInputs, FlakeNix, FlakeNixParts};
pub use flakeref::FlakeRef;
pub use lock::{Flake, FlakeNixReader, LockFlags, LockedFlake, Locker};
pub use lockfile::{Edge, InputPath, LockFile, LockedNode, Node, NodeId};
pub use registry::{Registries, Registry, RegistryEntry};
