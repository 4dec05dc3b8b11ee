//! Nix's `hashDerivationModulo` and the output-path computation of `derivationStrict`.
//!
//! An input-addressed output path hashes the derivation's ATerm with each input derivation
//! replaced by *its* hash modulo; a fixed-output derivation's hash modulo depends only on its
//! output hash and path, so changing how a source is fetched does not rebuild what uses it.
//! `DrvHashes` memoises these per `.drv` path and loads input derivations through a callback,
//! so the evaluator (derivations in memory) and the store (derivations on disk) share it.

use std::collections::{BTreeMap, HashMap};

use super::{Derivation, DerivationError, DerivationOutput, DerivationType, OutputSet};
use crate::hash::Hash;
use crate::store_dir::{StoreDir, hash_placeholder};
use crate::store_path::StorePath;

/// Whether a hash modulo is final, or waits on content-addressed outputs not yet built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrvHashKind {
    Regular,
    Deferred,
}

/// A derivation's hash modulo, per output (fixed-output derivations hash each output apart;
/// all other derivations give every output the same hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrvHash {
    pub hashes: BTreeMap<String, Hash>,
    pub kind: DrvHashKind,
}

/// Loads an input derivation by its `.drv` path.
pub type LoadDerivation<'a> = dyn FnMut(&StorePath) -> Result<Derivation, DerivationError> + 'a;

/// Memoised hashes modulo of `.drv` paths (Nix's `drvHashes`).
#[derive(Debug, Default, Clone)]
pub struct DrvHashes {
    memo: HashMap<StorePath, DrvHash>,
}

impl DrvHashes {
    #[must_use]
    pub fn new() -> DrvHashes {
        DrvHashes::default()
    }

    /// Remember the (unmasked) hash modulo of a `.drv` path.
    pub fn insert(&mut self, drv_path: StorePath, hash: DrvHash) {
        self.memo.insert(drv_path, hash);
    }

    /// The memoised hash of a `.drv` path.
    #[must_use]
    pub fn get(&self, drv_path: &StorePath) -> Option<&DrvHash> {
        self.memo.get(drv_path)
    }

    /// The hash modulo of an input derivation, loading and hashing it (unmasked) if needed.
    pub fn input_hash(
        &mut self,
        store_dir: &StoreDir,
        drv_path: &StorePath,
        load: &mut LoadDerivation<'_>,
    ) -> Result<DrvHash, DerivationError> {
        if let Some(hash) = self.memo.get(drv_path) {
            return Ok(hash.clone());
        }
        let drv = load(drv_path)?;
        let hash = self.hash_modulo(store_dir, &drv, false, load)?;
        self.memo.insert(drv_path.clone(), hash.clone());
        Ok(hash)
    }

    /// The input derivations as they appear in the hashed text: hex hash modulo → outputs,
    /// merging the outputs of inputs that are equal modulo fixed-output derivations.
    pub fn modulo_inputs(
        &mut self,
        store_dir: &StoreDir,
        drv: &Derivation,
        load: &mut LoadDerivation<'_>,
    ) -> Result<(BTreeMap<String, OutputSet>, DrvHashKind), DerivationError> {
        let mut kind = DrvHashKind::Regular;
        let mut inputs: BTreeMap<String, OutputSet> = BTreeMap::new();
        for (drv_path, wanted) in &drv.input_drvs {
            let res = self.input_hash(store_dir, drv_path, load)?;
            if res.kind == DrvHashKind::Deferred {
                kind = DrvHashKind::Deferred;
            }
            for output in &wanted.outputs {
                let hash =
                    res.hashes
                        .get(output)
                        .ok_or_else(|| DerivationError::MissingInputOutput {
                            drv: store_dir.print(drv_path),
                            output: output.clone(),
                        })?;
                let entry = inputs.entry(hash.to_hex()).or_default();
                entry.outputs.insert(output.clone());
                for (name, child) in &wanted.dynamic {
                    entry.dynamic.insert(name.clone(), child.clone());
                }
            }
            if wanted.outputs.is_empty() && !wanted.dynamic.is_empty() {
                // Only dynamic outputs wanted: key by any output hash of the input (they agree
                // for non-fixed derivations).
                if let Some(hash) = res.hashes.values().next() {
                    let entry = inputs.entry(hash.to_hex()).or_default();
                    for (name, child) in &wanted.dynamic {
                        entry.dynamic.insert(name.clone(), child.clone());
                    }
                }
            }
        }
        Ok((inputs, kind))
    }

    /// Nix's `hashDerivationModulo(drv, maskOutputs)`.
    pub fn hash_modulo(
        &mut self,
        store_dir: &StoreDir,
        drv: &Derivation,
        mask_outputs: bool,
        load: &mut LoadDerivation<'_>,
    ) -> Result<DrvHash, DerivationError> {
        let drv_type = drv.drv_type()?;
        if drv_type == DerivationType::FixedOutput {
            let mut hashes = BTreeMap::new();
            for (output, o) in &drv.outputs {
                let DerivationOutput::CaFixed(ca) = o else {
                    unreachable!("fixed-output type")
                };
                let path = o
                    .path(store_dir, &drv.name, output)
                    .map_err(|source| DerivationError::BadName {
                        name: drv.name.clone(),
                        source,
                    })?
                    .expect("fixed outputs have paths");
                let text = format!(
                    "fixed:out:{}:{}:{}",
                    ca.method.print_with_algo(ca.hash.algo()),
                    ca.hash.to_hex(),
                    store_dir.print(&path)
                );
                hashes.insert(output.clone(), Hash::sha256(text.as_bytes()));
            }
            return Ok(DrvHash {
                hashes,
                kind: DrvHashKind::Regular,
            });
        }
        let mut kind = match drv_type {
            DerivationType::Floating | DerivationType::Impure => DrvHashKind::Deferred,
            _ => DrvHashKind::Regular,
        };
        let (inputs, input_kind) = self.modulo_inputs(store_dir, drv, load)?;
        if input_kind == DrvHashKind::Deferred {
            kind = DrvHashKind::Deferred;
        }
        let hash = Hash::sha256(&drv.to_aterm_modulo(store_dir, mask_outputs, &inputs));
        let hashes = drv.outputs.keys().map(|o| (o.clone(), hash)).collect();
        Ok(DrvHash { hashes, kind })
    }
}

impl Derivation {
    /// Fill in output paths and the environment variables named after outputs, as
    /// `derivationStrict` does: fixed outputs get their content-addressed path; floating and
    /// impure outputs get a placeholder; input-addressed (and deferred) outputs get paths from
    /// the hash modulo of the derivation with outputs masked, or stay deferred when an input is
    /// a floating content-addressed derivation.
    pub fn fill_in_output_paths(
        &mut self,
        store_dir: &StoreDir,
        hashes: &mut DrvHashes,
        load: &mut LoadDerivation<'_>,
    ) -> Result<(), DerivationError> {
        let all_ia = self.outputs.values().all(|o| {
            matches!(
                o,
                DerivationOutput::InputAddressed(_) | DerivationOutput::Deferred
            )
        });
        if !all_ia {
            self.drv_type()?;
            let names: Vec<String> = self.outputs.keys().cloned().collect();
            for output in names {
                let value = match &self.outputs[&output] {
                    DerivationOutput::CaFixed(_) => {
                        let path = self.outputs[&output]
                            .path(store_dir, &self.name, &output)
                            .map_err(|source| DerivationError::BadName {
                                name: self.name.clone(),
                                source,
                            })?
                            .expect("fixed outputs have paths");
                        store_dir.print(&path)
                    }
                    _ => hash_placeholder(&output),
                };
                self.env.insert(output.into_bytes(), value.into_bytes());
            }
            return Ok(());
        }
        if self.outputs.is_empty() {
            return Err(DerivationError::NoOutputs {
                name: self.name.clone(),
            });
        }
        let names: Vec<String> = self.outputs.keys().cloned().collect();
        for output in &names {
            self.env.insert(output.clone().into_bytes(), Vec::new());
            self.outputs
                .insert(output.clone(), DerivationOutput::Deferred);
        }
        let hash = hashes.hash_modulo(store_dir, self, true, load)?;
        if hash.kind == DrvHashKind::Regular {
            for output in names {
                let path = store_dir
                    .make_output_path(&output, &hash.hashes[&output], &self.name)
                    .map_err(|source| DerivationError::BadName {
                        name: self.name.clone(),
                        source,
                    })?;
                self.env.insert(
                    output.clone().into_bytes(),
                    store_dir.print(&path).into_bytes(),
                );
                self.outputs
                    .insert(output, DerivationOutput::InputAddressed(path));
            }
        }
        Ok(())
    }

    /// Fill in the output paths, compute the `.drv` path and memoise the derivation's hash
    /// modulo under it (so derivations depending on it need not load it): everything
    /// `derivationStrict` does before writing the `.drv` file.
    pub fn finalize(
        &mut self,
        store_dir: &StoreDir,
        hashes: &mut DrvHashes,
        load: &mut LoadDerivation<'_>,
    ) -> Result<StorePath, DerivationError> {
        self.fill_in_output_paths(store_dir, hashes, load)?;
        let drv_path = self.drv_path(store_dir)?;
        let hash = hashes.hash_modulo(store_dir, self, false, load)?;
        hashes.insert(drv_path.clone(), hash);
        Ok(drv_path)
    }
}
