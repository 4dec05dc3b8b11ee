//! Nix's store formats and envy's local store: nix-base32, hashes, store paths, `.drv`
//! ATerm, NAR, the store database, GC roots and gc, and Nix binary caches.
//!
//! Knows nothing of how builders run (that is `envy-build`) nor of the Nix language, and never
//! prints: every failure is a typed error naming the path or store path involved.
//!
//! The pure layer (no I/O besides reading the tree a NAR is made from):
//! - [`nix32`], [`hash`]: encodings and digests as Nix writes them;
//! - [`store_path`], [`store_dir`]: store paths and every way Nix computes one;
//! - [`content_address`]: `text:`/`fixed:` content addresses;
//! - [`derivation`]: `.drv` ATerm, hash modulo, output paths;
//! - [`nar`]: writing, reading and hashing Nix archives;
//! - [`references`]: finding store path hash parts in a tree.
//!
//! The store itself:
//! - [`local`]: envy's local store (database, locks, adding and importing paths, gc roots,
//!   garbage collection, verification);
//! - [`path_info`]: what the store records per valid path;
//! - [`cache`]: Nix binary caches (substitution, upload, signatures, configuration).
//! - [`daemon`]: a client for Nix's daemon (worker protocol), to use Nix's store instead.

pub mod cache;
pub mod content_address;
pub mod daemon;
pub mod derivation;
pub mod env_vars;
pub mod hash;
pub mod local;
pub mod nar;
pub mod nix32;
pub mod path_info;
mod pipe;
pub mod references;
pub mod serve;
pub mod store_dir;
pub mod store_path;
mod sys;
pub mod text;

pub use content_address::{ContentAddress, ContentAddressMethod, FileIngestionMethod};
pub use derivation::{
    Derivation, DerivationError, DerivationOutput, DrvHash, DrvHashes, OutputSet,
};
pub use hash::{Hash, HashAlgo, HashFormat};
pub use local::{LocalStore, StoreConfig, StoreError};
pub use path_info::ValidPathInfo;
pub use store_dir::{StoreDir, downstream_placeholder, hash_placeholder, output_path_name};
pub use store_path::{StorePath, StorePathError};
