//! envy's embedded engine: its own evaluator (envy-eval), store (envy-store) and builder
//! (envy-build) put together — evaluate a Nix file to a derivation, build what it needs,
//! capture a dev shell's environment as an [`EnvRecord`], and keep it alive with a gc root.
//! `envy shell`, `envy build FILE.nix` and the embedded devShell backend all go through here.
//!
//! ```text
//! let engine = Engine::from_env(Arc::new(Render::new()))?;       // store + builder settings
//! let req = EvalRequest::call_file(&file, &[("target", Arg::Str(t))], &[]); // or ::expr(…)
//! let drv = engine.instantiate(req)?;                             // evaluate → .drv in the store
//! let env = engine.capture_env(&drv.drv_path)?;                   // build inputs, run capture.sh
//! let anchor = engine.keep_env(&drv.drv_path, &env)?;             // `<name>-env` store path
//! engine.store().add_direct_root("…", &anchor)?;                  // or add_root(link, &anchor)
//! ```
//!
//! This module owns the glue: [`LocalEvalStore`] (evaluation writes into envy's store),
//! [`BuildRealiser`] (import-from-derivation builds with envy-build), [`Render`] (build
//! progress on stderr), [`context`] (opening the store and build settings from the
//! environment, shared with `envy build` and `envy store`), and the capture script. It knows
//! nothing of shells, the hook or flakes: the flake backend (`backend::embedded`) brings its
//! lazily copied inputs through [`eval_store::LazySources`] and its own progress sink through
//! [`Engine::capture_and_keep`] (capture and anchor, remembered per derivation).
//!
//! [`daemon_store`] is the seam to Nix's store: the same evaluation writing into Nix's store
//! and realising there through Nix's daemon (`ENVY_STORE=daemon`), used by `envy build` and
//! the embedded devShell backend (which captures the environment through the daemon too);
//! `envy shell` still captures with envy's builder over envy's store.

pub mod capture;
pub mod context;
pub mod daemon_store;
pub mod eval;
pub mod eval_store;
pub mod flakes;
pub mod pkgs;
pub mod push;
pub mod realiser;
pub mod render;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use envy_build::{BuildConfig, BuildError, BuildResults, Builder, Progress};
use envy_store::cache::Substituter;
use envy_store::{LocalStore, StorePath};

pub use capture::CaptureError;
pub use context::BuildContext;
pub use eval::{Arg, EvalRequest};
pub use eval_store::LocalEvalStore;
pub use realiser::BuildRealiser;
pub use render::Render;

/// Why the engine failed: evaluation (`Eval`, `NotADerivation`), building or capturing
/// (`Build`, `Capture`), or the store itself.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The expression did not evaluate; `message` is rendered as Nix renders errors
    /// (`error: …`, `at FILE:LINE:COL:`, a code frame).
    #[error("{message}")]
    Eval { message: String },
    /// It evaluated, but not to a derivation.
    #[error("{what} evaluates to {found}, not to a derivation")]
    NotADerivation { what: String, found: String },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("cannot read the environment of `{drv}`")]
    Capture {
        drv: String,
        #[source]
        source: CaptureError,
    },
    #[error(transparent)]
    Store(#[from] envy_store::StoreError),
}

/// envy's store with the builder's settings, binary caches and a progress display. Cheap to
/// share; evaluation runs on its own thread with a large stack, builds on the builder's.
pub struct Engine {
    store: Arc<LocalStore>,
    config: Arc<BuildConfig>,
    substituter: Arc<Substituter>,
    progress: Arc<dyn Progress>,
    built: Arc<AtomicUsize>,
    /// The automatic push (`post-build-push`), drained when the engine is dropped.
    push: Option<Arc<push::AutoPush>>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(push) = &self.push {
            push.finish();
        }
    }
}

impl Engine {
    /// The user's store and settings (`ENVY_STORE_DIR`, `ENVY_STATE_DIR`, `ENVY_SANDBOX`,
    /// `ENVY_HASHED_MIRRORS`, `config.toml`'s caches, …), reporting builds to `progress`.
    pub fn from_env(progress: Arc<dyn Progress>) -> anyhow::Result<Self> {
        let BuildContext { store, config } = BuildContext::from_env()?;
        let substituter = context::substituter()?;
        Ok(Self::new(store, config, substituter, progress))
    }

    /// An engine over an open store.
    pub fn new(
        store: LocalStore,
        config: BuildConfig,
        substituter: Substituter,
        progress: Arc<dyn Progress>,
    ) -> Self {
        let store = Arc::new(store);
        let push = push::AutoPush::from_env(&store);
        Self {
            store,
            config: Arc::new(config),
            substituter: Arc::new(substituter),
            progress,
            built: Arc::new(AtomicUsize::new(0)),
            push,
        }
    }

    /// envy's store (for gc roots: `add_root`, `add_direct_root`).
    pub fn store(&self) -> &LocalStore {
        &self.store
    }

    /// A shared handle on the store (for work on the evaluation thread).
    pub fn store_handle(&self) -> Arc<LocalStore> {
        self.store.clone()
    }

    /// How many derivations this engine has built (not found valid, not substituted), during
    /// evaluation (import from derivation) and after it.
    pub fn built_count(&self) -> usize {
        self.built.load(Ordering::SeqCst)
    }

    fn with_builder<T>(&self, f: impl FnOnce(&Builder<'_>) -> T) -> T {
        self.with_builder_reporting(&*self.progress, f)
    }

    /// A builder on this engine's store, settings and caches, reporting to `progress`.
    fn with_builder_reporting<T>(
        &self,
        progress: &dyn Progress,
        f: impl FnOnce(&Builder<'_>) -> T,
    ) -> T {
        let tap;
        let progress: &dyn Progress = match &self.push {
            Some(push) => {
                tap = push.tap(progress);
                &tap
            }
            None => progress,
        };
        let builder =
            Builder::new(&self.store, &self.config, progress).with_substituter(&self.substituter);
        let result = f(&builder);
        self.built
            .fetch_add(builder.built_count(), Ordering::SeqCst);
        result
    }

    /// Build these derivations (and what they need); every output is a temporary root of this
    /// process afterwards.
    pub fn build(&self, drvs: &[StorePath]) -> Result<BuildResults, EngineError> {
        Ok(self.with_builder(|b| b.build(drvs))?)
    }

    /// The realiser an evaluator uses for import from derivation. With [`Engine::eval_store`],
    /// what a caller driving its own evaluation needs: both are `Send`, so they move into the
    /// large-stack thread (`envy_eval::run_with_stack`) where the `Evaluator` is built —
    /// `Evaluator::builder().store(Box::new(store)).realiser(Box::new(realiser))…`.
    pub fn realiser(&self) -> BuildRealiser {
        BuildRealiser {
            store: Arc::clone(&self.store),
            config: Arc::clone(&self.config),
            substituter: Arc::clone(&self.substituter),
            progress: Arc::clone(&self.progress),
            built: Arc::clone(&self.built),
            push: self.push.clone(),
        }
    }

    /// The evaluator's store: writes into envy's store.
    pub fn eval_store(&self) -> LocalEvalStore {
        LocalEvalStore::new(Arc::clone(&self.store))
    }
}
