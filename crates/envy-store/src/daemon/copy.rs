//! Copying closures between envy's store and a daemon's, as Nix's `ssh-ng://` build hook
//! does: to the daemon what it lacks, references first (`addToStoreNar`), and back what it
//! built (`queryPathInfo`, then `narFromPath`, each NAR checked against the daemon's hash and
//! size before the path becomes valid here).

use std::collections::{BTreeMap, BTreeSet};

use super::client::DaemonClient;
use super::error::DaemonError;
use crate::serve::WriteRef;
use crate::{LocalStore, StorePath, ValidPathInfo};

impl DaemonClient {
    /// Copy the closure of `paths` from `store` to the daemon: what it lacks, references
    /// first. With `substitute`, the daemon first substitutes what it can from its own
    /// caches (`builders-use-substitutes`). Returns the paths copied.
    pub fn copy_closure_to(
        &mut self,
        store: &LocalStore,
        paths: &BTreeSet<StorePath>,
        substitute: bool,
    ) -> Result<Vec<StorePath>, DaemonError> {
        let order = store.topo_closure(paths).map_err(Box::new)?;
        let all: BTreeSet<StorePath> = order.iter().map(|i| i.path.clone()).collect();
        let present = self.query_valid_paths(&all, substitute)?;
        let mut copied = Vec::new();
        for info in order.iter().filter(|i| !present.contains(&i.path)) {
            self.add_to_store_nar(info, |out| store.dump(&info.path, &mut WriteRef(out)))?;
            copied.push(info.path.clone());
        }
        Ok(copied)
    }

    /// Copy `paths` (valid in the daemon's store; their references valid in `store` or among
    /// `paths`) into `store`, each checked against the daemon's NAR hash and size. Returns
    /// their infos, references first.
    pub fn copy_paths_from(
        &mut self,
        store: &LocalStore,
        paths: &BTreeSet<StorePath>,
    ) -> Result<Vec<ValidPathInfo>, DaemonError> {
        let mut by_path = BTreeMap::new();
        for p in paths {
            let info = self
                .query_path_info(p)?
                .ok_or_else(|| DaemonError::Protocol {
                    op: "queryPathInfo",
                    detail: format!(
                        "the build machine does not have `{}`",
                        self.store_dir().print(p)
                    ),
                })?;
            by_path.insert(p.clone(), info);
        }
        let mut order = Vec::new();
        while !by_path.is_empty() {
            let ready: Vec<StorePath> = by_path
                .values()
                .filter(|i: &&ValidPathInfo| {
                    i.references_without_self()
                        .all(|r| !by_path.contains_key(r))
                })
                .map(|i| i.path.clone())
                .collect();
            if ready.is_empty() {
                return Err(DaemonError::Protocol {
                    op: "queryPathInfo",
                    detail: "the paths' references form a cycle".into(),
                });
            }
            for p in ready {
                order.push(by_path.remove(&p).expect("listed"));
            }
        }
        for info in &order {
            self.nar_from_path(&info.path, info.nar_size, |nar| store.import_nar(info, nar))?
                .map_err(Box::new)?;
        }
        Ok(order)
    }
}
