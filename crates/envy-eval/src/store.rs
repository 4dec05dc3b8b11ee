//! The evaluator's view of a store: the store directory, and how text, source trees and
//! derivations get into it. `DummyStore` only computes paths (Nix's dummy store,
//! `--read-only`, and what tests use); the binary wires a store that writes. Builds the
//! evaluator needs (import-from-derivation) go through `Realiser`, which the binary
//! implements with the builder.

use std::collections::{BTreeMap, BTreeSet};

use envy_store::{Derivation, FileIngestionMethod, Hash, StoreDir, StorePath};

/// A store error (the store's own wording).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Where the evaluator puts things.
pub trait EvalStore {
    /// The store directory.
    fn store_dir(&self) -> &StoreDir;
    /// Add a text file (`builtins.toFile`) referring to `refs`; returns its path.
    fn add_text(
        &mut self,
        name: &str,
        text: &[u8],
        refs: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError>;
    /// Add a source (`builtins.path`, `filterSource`, paths interpolated into strings):
    /// `nar` is its NAR serialization and `hash` its content hash under `method` (sha256
    /// of the NAR for `Recursive`, of the file's bytes for `Flat`).
    fn add_source(
        &mut self,
        name: &str,
        method: FileIngestionMethod,
        hash: &Hash,
        nar: &[u8],
    ) -> Result<StorePath, StoreError>;
    /// Write a finished derivation (output paths filled in) at `drv_path`.
    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError>;
    /// Read a derivation (for the hash of an input derivation this evaluation did not create).
    fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, StoreError>;
    /// Whether `path` exists in the store.
    fn is_valid_path(&self, path: &StorePath) -> bool;
    /// A fetched tree (`fetchGit`, `fetchTarball`, `fetchTree`, `fetchurl`) is referred to
    /// by the evaluation: its store path is `tree.store_path()`. A store that writes copies
    /// it in here (or when a build needs it); the default does nothing.
    fn add_fetched(&mut self, tree: &envy_fetch::tree::SourceTree) -> Result<(), StoreError> {
        let _ = tree;
        Ok(())
    }
}

/// Builds requested by the evaluator (reading an output of a derivation during evaluation:
/// import-from-derivation, `readFile` of a build result).
pub trait Realiser {
    /// Make sure `outputs` of `drv_path` exist, building them if needed.
    fn realise(&mut self, drv_path: &StorePath, outputs: &[String]) -> Result<(), StoreError>;
}

/// A store that computes paths and writes nothing (Nix's dummy store). Derivations added
/// are kept in memory so later derivations can hash them.
pub struct DummyStore {
    dir: StoreDir,
    derivations: BTreeMap<StorePath, Derivation>,
    paths: BTreeSet<StorePath>,
}

impl DummyStore {
    /// A dummy store for `dir`.
    pub fn new(dir: StoreDir) -> DummyStore {
        DummyStore {
            dir,
            derivations: BTreeMap::new(),
            paths: BTreeSet::new(),
        }
    }
}

impl EvalStore for DummyStore {
    fn store_dir(&self) -> &StoreDir {
        &self.dir
    }

    fn add_text(
        &mut self,
        name: &str,
        text: &[u8],
        refs: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        let p = self
            .dir
            .text_path(name, text, refs.iter())
            .map_err(|e| StoreError(e.to_string()))?;
        self.paths.insert(p.clone());
        Ok(p)
    }

    fn add_source(
        &mut self,
        name: &str,
        method: FileIngestionMethod,
        hash: &Hash,
        _nar: &[u8],
    ) -> Result<StorePath, StoreError> {
        let p = self
            .dir
            .make_fixed_output_path(name, method, hash, [], false)
            .map_err(|e| StoreError(e.to_string()))?;
        self.paths.insert(p.clone());
        Ok(p)
    }

    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError> {
        self.derivations.insert(drv_path.clone(), drv.clone());
        self.paths.insert(drv_path.clone());
        Ok(())
    }

    fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, StoreError> {
        self.derivations.get(drv_path).cloned().ok_or_else(|| {
            StoreError(format!(
                "derivation '{}' is not in the store",
                self.dir.print(drv_path)
            ))
        })
    }

    fn is_valid_path(&self, path: &StorePath) -> bool {
        self.paths.contains(path)
    }

    fn add_fetched(&mut self, tree: &envy_fetch::tree::SourceTree) -> Result<(), StoreError> {
        self.paths.insert(tree.store_path().clone());
        Ok(())
    }
}

/// Which fetching builtin was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchKind {
    /// `builtins.fetchTree`
    Tree,
    /// `builtins.fetchGit`
    Git,
    /// `builtins.fetchTarball`
    Tarball,
    /// `builtins.fetchurl`
    Url,
    /// `builtins.getFlake`
    Flake,
}

impl FetchKind {
    /// The builtin's name.
    pub fn builtin_name(self) -> &'static str {
        match self {
            FetchKind::Tree => "fetchTree",
            FetchKind::Git => "fetchGit",
            FetchKind::Tarball => "fetchTarball",
            FetchKind::Url => "fetchurl",
            FetchKind::Flake => "getFlake",
        }
    }
}

/// Fetching and flakes, implemented outside the evaluator (`envy-flake`): the fetching
/// builtins call `fetch` with their (unforced) argument. Called re-entrantly when a fetched
/// flake's own evaluation fetches, hence `&self`.
pub trait Fetch {
    /// Whether this handles builtin `kind`; the evaluator's own fetchers run the others.
    fn handles(&self, kind: FetchKind) -> bool {
        let _ = kind;
        true
    }

    /// Run builtin `kind` on `arg`.
    fn fetch(
        &self,
        ev: &mut crate::Evaluator,
        kind: FetchKind,
        arg: &crate::Value,
        pos: crate::Pos,
    ) -> crate::EvalResult<crate::Value>;
}
