//! What the builder needs from a store, as a trait: envy's `LocalStore` implements it (see
//! `local.rs`), and tests can use an in-memory one. Registration of a derivation's outputs is
//! one call, which the store must make atomic: after a crash either all of them are valid
//! (with their final contents) or none is.

use std::collections::BTreeSet;

use envy_store::{ContentAddress, Hash, StoreDir, StorePath};

/// A store error, boxed: the builder only reports it.
pub type StoreError = Box<dyn std::error::Error + Send + Sync>;

/// Metadata of a freshly built output, ready to become valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputInfo {
    pub path: StorePath,
    /// sha256 of the output's NAR.
    pub nar_hash: Hash,
    pub nar_size: u64,
    pub references: BTreeSet<StorePath>,
    pub deriver: Option<StorePath>,
    /// `fixed:…` for fixed-output derivations.
    pub ca: Option<ContentAddress>,
}

/// The store operations a build uses.
pub trait BuildStore: Send + Sync {
    /// The store directory (whose real location is the same path).
    fn store_dir(&self) -> &StoreDir;

    /// Whether the path is registered valid.
    ///
    /// # Errors
    /// The store database cannot be read.
    fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError>;

    /// The references of a valid path.
    ///
    /// # Errors
    /// The path is not valid or the database cannot be read.
    fn references(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError>;

    /// Make all of these paths valid at once (one transaction).
    ///
    /// # Errors
    /// The database cannot be written; then none of them is valid.
    fn register_outputs(&self, outputs: &[OutputInfo]) -> Result<(), StoreError>;
}
