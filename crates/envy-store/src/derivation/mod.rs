//! Store derivations: the `Derivation` type with every field as Nix keeps it (the environment,
//! arguments, builder and platform are byte strings, since Nix strings need not be UTF-8), its
//! ATerm text (`aterm`), and the hash modulo fixed-output derivations from which input-addressed
//! output paths follow (`hash_modulo`).

mod aterm;
mod hash_modulo;

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::content_address::{ContentAddress, ContentAddressMethod};
use crate::hash::{HashAlgo, HashError};
use crate::store_dir::{StoreDir, output_path_name};
use crate::store_path::{NameError, StorePath, StorePathError};

pub use hash_modulo::{DrvHash, DrvHashKind, DrvHashes};

/// One output of a derivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivationOutput {
    /// Path fixed by the derivation's hash modulo (ordinary derivations).
    InputAddressed(StorePath),
    /// Fixed-output: the contents' hash is known in advance; the path follows from it.
    CaFixed(ContentAddress),
    /// Content-addressed with the hash known only after the build (`__contentAddressed`).
    CaFloating {
        method: ContentAddressMethod,
        algo: HashAlgo,
    },
    /// Input-addressed, but the path is not known yet (it depends on floating outputs).
    Deferred,
    /// Impure (`__impure`): rebuilt each time.
    Impure {
        method: ContentAddressMethod,
        algo: HashAlgo,
    },
}

impl DerivationOutput {
    /// The output's store path when it is known without building.
    pub fn path(
        &self,
        store_dir: &StoreDir,
        drv_name: &str,
        output: &str,
    ) -> Result<Option<StorePath>, NameError> {
        match self {
            DerivationOutput::InputAddressed(path) => Ok(Some(path.clone())),
            DerivationOutput::CaFixed(ca) => store_dir
                .make_fixed_output_path_from_ca(&output_path_name(drv_name, output), ca, [], false)
                .map(Some),
            _ => Ok(None),
        }
    }
}

/// Outputs wanted from one input derivation, plus (experimental dynamic derivations) outputs
/// wanted from derivations that its outputs are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputSet {
    pub outputs: BTreeSet<String>,
    pub dynamic: BTreeMap<String, OutputSet>,
}

impl OutputSet {
    /// A plain set of output names.
    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(outputs: I) -> OutputSet {
        OutputSet {
            outputs: outputs.into_iter().map(Into::into).collect(),
            dynamic: BTreeMap::new(),
        }
    }

    fn has_dynamic(&self) -> bool {
        !self.dynamic.is_empty()
    }
}

/// What kind of derivation its outputs make it (Nix's `DerivationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivationType {
    InputAddressed { deferred: bool },
    FixedOutput,
    Floating,
    Impure,
}

/// A store derivation. `name` is not part of the ATerm text: it comes from the `.drv` file's
/// name (minus `.drv`) or the `name` attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derivation {
    pub name: String,
    pub outputs: BTreeMap<String, DerivationOutput>,
    pub input_drvs: BTreeMap<StorePath, OutputSet>,
    pub input_srcs: BTreeSet<StorePath>,
    pub platform: Vec<u8>,
    pub builder: Vec<u8>,
    pub args: Vec<Vec<u8>>,
    pub env: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Something wrong with a derivation or its text.
#[derive(Debug, Error)]
pub enum DerivationError {
    #[error("bad derivation text at byte {pos}: expected {expected}")]
    Syntax { pos: usize, expected: String },
    #[error("bad derivation text at byte {pos}: {what} is not valid UTF-8")]
    NotUtf8 { pos: usize, what: &'static str },
    #[error("unknown derivation format version `{version}`")]
    UnknownVersion { version: String },
    #[error("dynamic derivation inputs need the `xp-dyn-drv` format version (input `{path}`)")]
    DynamicWithoutVersion { path: String },
    #[error("bad store path `{path}` in derivation")]
    BadPath {
        path: String,
        #[source]
        source: StorePathError,
    },
    #[error("bad hash for output `{output}` of derivation `{name}`")]
    BadHash {
        name: String,
        output: String,
        #[source]
        source: HashError,
    },
    #[error(
        "fixed output `{output}` of derivation `{name}` has path `{found}`, but its hash gives `{expected}`"
    )]
    FixedPathMismatch {
        name: String,
        output: String,
        found: String,
        expected: String,
    },
    #[error("derivation `{name}` has an invalid name")]
    BadName {
        name: String,
        #[source]
        source: NameError,
    },
    #[error("derivation `{name}` must have at least one output")]
    NoOutputs { name: String },
    #[error("derivation `{name}` mixes output types")]
    MixedOutputTypes { name: String },
    #[error("derivation `{name}` has more than one fixed output")]
    MultipleFixedOutputs { name: String },
    #[error("the single fixed output of derivation `{name}` must be named `out`")]
    FixedOutputNotOut { name: String },
    #[error("floating outputs of derivation `{name}` use different hash algorithms")]
    FloatingAlgoMismatch { name: String },
    #[error("input derivation `{drv}` has no output `{output}`")]
    MissingInputOutput { drv: String, output: String },
    #[error("cannot load input derivation `{drv}`")]
    Load {
        drv: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Derivation {
    /// The derivation's type, from its outputs (errors as Nix's `type()`).
    pub fn drv_type(&self) -> Result<DerivationType, DerivationError> {
        let name = || self.name.clone();
        let (mut ia, mut fixed, mut floating, mut deferred, mut impure) = (0, 0, 0, 0, 0);
        let mut floating_algo = None;
        for output in self.outputs.values() {
            match output {
                DerivationOutput::InputAddressed(_) => ia += 1,
                DerivationOutput::CaFixed(_) => fixed += 1,
                DerivationOutput::CaFloating { algo, .. } => {
                    floating += 1;
                    if *floating_algo.get_or_insert(*algo) != *algo {
                        return Err(DerivationError::FloatingAlgoMismatch { name: name() });
                    }
                }
                DerivationOutput::Deferred => deferred += 1,
                DerivationOutput::Impure { .. } => impure += 1,
            }
        }
        let total = ia + fixed + floating + deferred + impure;
        if total == 0 {
            return Err(DerivationError::NoOutputs { name: name() });
        }
        if ia == total {
            Ok(DerivationType::InputAddressed { deferred: false })
        } else if fixed == total {
            if fixed > 1 {
                return Err(DerivationError::MultipleFixedOutputs { name: name() });
            }
            if !self.outputs.contains_key("out") {
                return Err(DerivationError::FixedOutputNotOut { name: name() });
            }
            Ok(DerivationType::FixedOutput)
        } else if floating == total {
            Ok(DerivationType::Floating)
        } else if deferred == total {
            Ok(DerivationType::InputAddressed { deferred: true })
        } else if impure == total {
            Ok(DerivationType::Impure)
        } else {
            Err(DerivationError::MixedOutputTypes { name: name() })
        }
    }

    /// Whether this is a fixed-output derivation.
    #[must_use]
    pub fn is_fixed_output(&self) -> bool {
        matches!(self.drv_type(), Ok(DerivationType::FixedOutput))
    }

    /// The store paths a `.drv` file refers to: its sources and its input derivations.
    #[must_use]
    pub fn references(&self) -> BTreeSet<StorePath> {
        self.input_srcs
            .iter()
            .chain(self.input_drvs.keys())
            .cloned()
            .collect()
    }

    /// The `.drv` store path: a text path named `<name>.drv` over the ATerm text, referring to
    /// the inputs (Nix's `writeDerivation`).
    pub fn drv_path(&self, store_dir: &StoreDir) -> Result<StorePath, DerivationError> {
        let text = self.to_aterm(store_dir);
        let name = format!("{}.drv", self.name);
        store_dir
            .text_path(&name, &text, &self.references())
            .map_err(|source| DerivationError::BadName {
                name: self.name.clone(),
                source,
            })
    }

    /// Each output's path where it is known without building (`outputs` order).
    pub fn output_paths(
        &self,
        store_dir: &StoreDir,
    ) -> Result<BTreeMap<String, Option<StorePath>>, DerivationError> {
        self.outputs
            .iter()
            .map(|(output, o)| {
                let path = o.path(store_dir, &self.name, output).map_err(|source| {
                    DerivationError::BadName {
                        name: self.name.clone(),
                        source,
                    }
                })?;
                Ok((output.clone(), path))
            })
            .collect()
    }

    /// Whether any input uses dynamic-derivation outputs (which need the `xp-dyn-drv` format).
    #[must_use]
    pub fn has_dynamic_inputs(&self) -> bool {
        self.input_drvs.values().any(OutputSet::has_dynamic)
    }

    /// An environment variable as bytes.
    #[must_use]
    pub fn env_var(&self, key: &str) -> Option<&[u8]> {
        self.env.get(key.as_bytes()).map(Vec::as_slice)
    }

    /// Whether the derivation uses structured attributes (`__json`).
    #[must_use]
    pub fn has_structured_attrs(&self) -> bool {
        self.env.contains_key(b"__json".as_slice())
    }
}
