//! [`BuildRealiser`]: envy-eval's [`Realiser`] on envy-build, so an evaluation that reads a
//! build result (import from derivation, `readFile` of an output) gets it built in envy's store
//! first, with the same progress display and build counter as the engine's other builds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use envy_build::{BuildConfig, Builder, Progress};
use envy_eval::{Realiser, StoreError};
use envy_store::cache::Substituter;
use envy_store::{LocalStore, StorePath};

/// Builds what the evaluator asks for.
pub struct BuildRealiser {
    pub(super) store: Arc<LocalStore>,
    pub(super) config: Arc<BuildConfig>,
    pub(super) substituter: Arc<Substituter>,
    pub(super) progress: Arc<dyn Progress>,
    /// The engine's count of derivations built, shared with it.
    pub(super) built: Arc<AtomicUsize>,
    /// The engine's automatic push, fed with what is built here too.
    pub(super) push: Option<Arc<super::push::AutoPush>>,
}

impl Realiser for BuildRealiser {
    fn realise(&mut self, drv_path: &StorePath, outputs: &[String]) -> Result<(), StoreError> {
        let tap;
        let progress: &dyn Progress = match &self.push {
            Some(push) => {
                tap = push.tap(&*self.progress);
                &tap
            }
            None => &*self.progress,
        };
        let builder =
            Builder::new(&self.store, &self.config, progress).with_substituter(&self.substituter);
        let result = builder.build(std::slice::from_ref(drv_path));
        self.built
            .fetch_add(builder.built_count(), Ordering::SeqCst);
        let results = result.map_err(|e| {
            // The evaluator shows one message: the build error with its causes.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            StoreError(text)
        })?;
        let dir = self.store.store_dir();
        let built = results.get(drv_path);
        for output in outputs {
            if built.is_none_or(|b| !b.contains_key(output)) {
                return Err(StoreError(format!(
                    "derivation '{}' has no output '{output}'",
                    dir.print(drv_path)
                )));
            }
        }
        Ok(())
    }
}
