//! [`FlakeSession`]: everything an evaluation of flakes needs, wired together — the fetching
//! builtins, the mounts and the I/O that serves them — so the binary builds an evaluator with
//! it and then locks and calls flakes.

use std::rc::Rc;

use envy_eval::{EvalIO, EvalResult, Evaluator, Fetch, Value};
use envy_fetch::Fetcher;

use crate::fetch_builtins::FlakeFetch;
use crate::lock::{LockFlags, LockedFlake};
use crate::mounts::{MountIO, Mounts};
use crate::{FlakeError, FlakeRef, Registries};

/// One evaluation's flake machinery.
#[derive(Clone)]
pub struct FlakeSession {
    fetch: Rc<FlakeFetch>,
}

impl FlakeSession {
    /// A session fetching with `fetcher` and resolving through `registries`.
    #[must_use]
    pub fn new(fetcher: Fetcher, registries: Registries) -> FlakeSession {
        FlakeSession {
            fetch: Rc::new(FlakeFetch::new(fetcher, registries)),
        }
    }

    /// For [`envy_eval::EvaluatorBuilder::fetch`].
    #[must_use]
    pub fn fetch(&self) -> Rc<dyn Fetch> {
        self.fetch.clone()
    }

    /// For [`envy_eval::EvaluatorBuilder::io`]: `inner` plus the mounted trees.
    #[must_use]
    pub fn io(&self, inner: Box<dyn EvalIO>) -> Box<dyn EvalIO> {
        Box::new(MountIO::new(inner, self.fetch.mounts().clone()))
    }

    /// The mounted trees.
    #[must_use]
    pub fn mounts(&self) -> &Rc<Mounts> {
        self.fetch.mounts()
    }

    /// The fetching builtins (fetcher, registries, notices).
    #[must_use]
    pub fn builtins(&self) -> &FlakeFetch {
        &self.fetch
    }

    /// Lock `top` (reading `flake.nix` files with `ev`, which must use [`Self::io`]).
    pub fn lock(
        &self,
        ev: &mut Evaluator,
        top: &FlakeRef,
        flags: &LockFlags,
    ) -> Result<LockedFlake, FlakeError> {
        self.fetch.lock(ev, top, flags)
    }

    /// The value of a locked flake (`outputs // sourceInfo // { inputs; outputs; sourceInfo; }`).
    pub fn call(&self, ev: &mut Evaluator, locked: &LockedFlake) -> EvalResult<Value> {
        crate::call_flake::call_flake(ev, self.fetch.mounts(), locked)
    }
}
