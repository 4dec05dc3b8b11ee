//! Fetchers: `fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree`.

use crate::value::PrimOp;

pub(super) static OPS: &[PrimOp] = &[];
