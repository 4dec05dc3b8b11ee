//! Substitution before building: when binary caches are configured, a derivation whose
//! outputs are not valid is first looked up there, all outputs at once (with their closures),
//! through envy-store's [`Substituter`](envy_store::cache::Substituter) — trusted signatures,
//! NAR hash and size checked before a path becomes valid. Only when some path is in no cache
//! is the derivation built (and its inputs planned).
//!
//! A cache that fails (unreachable, corrupt NAR) is a warning, never a failed build: the
//! derivation is built instead, as Nix does.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use envy_store::StorePath;
use envy_store::cache::CacheEvent;

use crate::builder::Builder;
use crate::progress::BuildEvent;

impl Builder<'_> {
    /// Fetch every output of `drv_path` from the binary caches. `true` when they are all
    /// valid afterwards; nothing is fetched unless every output's closure is available.
    pub(crate) fn try_substitute(
        &self,
        drv_path: &StorePath,
        outputs: &BTreeMap<String, StorePath>,
    ) -> bool {
        let Some(substituter) = self.substituter else {
            return false;
        };
        let store = self.store();
        let sd = store.store_dir();
        let paths: Vec<StorePath> = outputs.values().cloned().collect();
        let progress = |event: CacheEvent<'_>| match event {
            CacheEvent::Downloading { path, url, .. } => {
                self.progress.event(BuildEvent::Downloading {
                    path: sd.print(path),
                    url: url.to_string(),
                });
            }
            CacheEvent::Untrusted { path, url } => {
                self.progress.event(BuildEvent::Warning {
                    message: format!(
                        "ignoring substitute for `{}` from `{url}`, as it's not signed by any of the keys in `trusted-public-keys`",
                        sd.print(path)
                    ),
                });
            }
            _ => {}
        };
        match substituter.substitute_closure(store, &paths, false, &progress) {
            Ok(Some(_)) => {
                self.substituted.fetch_add(1, Ordering::SeqCst);
                self.progress.event(BuildEvent::Substituted {
                    drv: sd.print(drv_path),
                });
                true
            }
            Ok(None) => false,
            Err(e) => {
                let mut message = format!(
                    "cannot substitute the outputs of `{}`: {e}",
                    sd.print(drv_path)
                );
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                message.push_str("; building it instead");
                self.progress.event(BuildEvent::Warning { message });
                false
            }
        }
    }
}
