//! envy's store as the evaluator sees it ([`EvalStore`]): `builtins.toFile` texts, sources
//! (paths interpolated into strings, `builtins.path`) and `.drv` files are written to the
//! `LocalStore`, each a temporary root of this process; and a [`Realiser`] that builds with
//! envy's builder when evaluation reads a build output (import from derivation).

use std::collections::BTreeSet;
use std::sync::Arc;

use envy_build::{BuildConfig, Builder, Progress};
use envy_eval::{EvalStore, Realiser, StoreError};
use envy_store::cache::Substituter;
use envy_store::content_address::{ContentAddress, ContentAddressMethod};
use envy_store::{Derivation, FileIngestionMethod, Hash, LocalStore, StoreDir, StorePath};
use envy_store::{ValidPathInfo, hash::HashAlgo};

/// Writes what evaluation creates into envy's store.
pub struct LocalEvalStore {
    pub store: Arc<LocalStore>,
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
        let nar_hash = Hash::of(HashAlgo::Sha256, nar);
        let mut info = ValidPathInfo::new(path.clone(), nar_hash, nar.len() as u64);
        info.ca = Some(ContentAddress {
            method: ContentAddressMethod::Fixed(method),
            hash: *hash,
        });
        // Roots it, and does nothing when the path is valid already.
        self.store.import_nar(&info, nar).map_err(err)?;
        Ok(path)
    }

    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError> {
        let written = self.store.write_derivation(drv).map_err(err)?;
        if written != *drv_path {
            return Err(StoreError(format!(
                "derivation `{}` was written as `{}`",
                self.store.store_dir().print(drv_path),
                self.store.store_dir().print(&written)
            )));
        }
        Ok(())
    }

    fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, StoreError> {
        self.store.read_derivation(drv_path).map_err(err)
    }

    fn is_valid_path(&self, path: &StorePath) -> bool {
        self.store.add_temp_root(path).is_ok() && self.store.is_valid(path).unwrap_or(false)
    }
}

/// Builds (or substitutes) a derivation when evaluation needs one of its outputs.
pub struct BuildRealiser {
    pub store: Arc<LocalStore>,
    pub config: BuildConfig,
    pub substituter: Arc<Substituter>,
    pub progress: Arc<dyn Progress>,
}

impl Realiser for BuildRealiser {
    fn realise(&mut self, drv_path: &StorePath, _outputs: &[String]) -> Result<(), StoreError> {
        Builder::new(&self.store, &self.config, &*self.progress)
            .with_substituter(&self.substituter)
            .build(std::slice::from_ref(drv_path))
            .map(|_| ())
            .map_err(|e| {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                StoreError(text)
            })
    }
}
