//! The evaluator's store for the embedded backend: envy's [`LocalStore`]. `.drv` files,
//! `toFile` texts and copied sources are written for real (a build needs them). A lazily
//! mounted source (a flake input read in place) is copied into the store the moment a
//! derivation or text refers to it — when its string context reaches a derivation, as Nix
//! 2.35's lazy trees do — and reused by hash when it is there already.

use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use envy_eval::{EvalStore, StoreError};
use envy_flake::mounts::Mounts;
use envy_store::{
    ContentAddress, ContentAddressMethod, Derivation, FileIngestionMethod, Hash, LocalStore,
    StoreDir, StorePath, ValidPathInfo,
};

/// [`EvalStore`] on envy's local store, copying mounted sources on demand.
pub struct LocalEvalStore {
    store: Arc<LocalStore>,
    mounts: Rc<Mounts>,
}

impl LocalEvalStore {
    pub fn new(store: Arc<LocalStore>, mounts: Rc<Mounts>) -> Self {
        Self { store, mounts }
    }

    /// Copy every mounted tree among `refs` into the store (they must be valid before
    /// anything that refers to them is registered).
    fn copy_mounted<'a>(
        &self,
        refs: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<(), StoreError> {
        for r in refs {
            self.mounts
                .ensure_in_store(r, &self.store)
                .map_err(|e| StoreError(e.to_string()))?;
        }
        Ok(())
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl EvalStore for LocalEvalStore {
    fn store_dir(&self) -> &StoreDir {
        self.store.store_dir()
    }

    fn add_text(
        &mut self,
        name: &str,
        text: &[u8],
        refs: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        self.copy_mounted(refs)?;
        self.store.add_text(name, text, refs).map_err(err)
    }

    fn add_source(
        &mut self,
        name: &str,
        method: FileIngestionMethod,
        hash: &Hash,
        nar: &[u8],
    ) -> Result<StorePath, StoreError> {
        let path = self
            .store
            .store_dir()
            .make_fixed_output_path(name, method, hash, [], false)
            .map_err(err)?;
        let mut info = ValidPathInfo::new(path.clone(), Hash::sha256(nar), nar.len() as u64);
        info.ca = Some(ContentAddress {
            method: ContentAddressMethod::Fixed(method),
            hash: *hash,
        });
        info.ultimate = true;
        self.store.import_nar(&info, nar).map_err(err)?;
        Ok(path)
    }

    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError> {
        self.copy_mounted(&drv.references())?;
        let written = self.store.write_derivation(drv).map_err(err)?;
        if &written != drv_path {
            return Err(StoreError(format!(
                "derivation written as `{}`, expected `{}`",
                self.store.store_dir().print(&written),
                self.store.store_dir().print(drv_path)
            )));
        }
        Ok(())
    }

    fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, StoreError> {
        self.store.read_derivation(drv_path).map_err(err)
    }

    fn is_valid_path(&self, path: &StorePath) -> bool {
        self.store.is_valid(path).unwrap_or(false) || self.mounts.tree(path).is_some()
    }
}
