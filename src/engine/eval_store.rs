//! [`LocalEvalStore`]: envy-eval's [`EvalStore`] over envy's [`LocalStore`], so that what an
//! evaluation produces — `builtins.toFile` texts, sources (`./setup.sh` in a string,
//! `builtins.path`), `.drv` files — is written into envy's store, ready for the builder.
//! Everything written becomes a temporary root of this process (the store does that), so a
//! concurrent `envy store gc` cannot take it before the build that needs it.
//!
//! Sources an evaluation reads in place (flake inputs mounted at their store paths, hashed
//! but not copied: see [`LazySources`]) are copied into the store the moment a derivation or
//! text refers to them — when their string context reaches a derivation, as Nix 2.35's lazy
//! trees do — and reused by hash when they are there already.

use std::collections::BTreeSet;
use std::sync::Arc;

use envy_eval::{EvalStore, StoreError};
use envy_fetch::tree::SourceTree;
use envy_store::{
    ContentAddress, ContentAddressMethod, Derivation, FileIngestionMethod, Hash, LocalStore,
    StoreDir, StorePath, ValidPathInfo,
};

/// Store paths an evaluation may refer to before they are in the store: trees read in place,
/// copied into the store only when something written there refers to them.
pub trait LazySources {
    /// Copy `path` into `store` if it is such a tree and not there yet.
    fn ensure_in_store(&self, path: &StorePath, store: &LocalStore) -> Result<(), String>;
    /// Whether `path` is such a tree (valid to the evaluator, in the store or not).
    fn is_lazy(&self, path: &StorePath) -> bool;
    /// The tree behind `path`, for a store that copies it itself (Nix's, through its
    /// daemon: see `daemon_store::DaemonEvalStore`).
    fn tree(&self, path: &StorePath) -> Option<SourceTree>;
}

/// No lazily copied sources: everything the evaluator refers to is in the store.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLazySources;

impl LazySources for NoLazySources {
    fn ensure_in_store(&self, _: &StorePath, _: &LocalStore) -> Result<(), String> {
        Ok(())
    }

    fn is_lazy(&self, _: &StorePath) -> bool {
        false
    }

    fn tree(&self, _: &StorePath) -> Option<SourceTree> {
        None
    }
}

/// The evaluator's view of envy's local store.
pub struct LocalEvalStore<L = NoLazySources> {
    store: Arc<LocalStore>,
    lazy: L,
}

impl LocalEvalStore {
    pub fn new(store: Arc<LocalStore>) -> Self {
        Self {
            store,
            lazy: NoLazySources,
        }
    }
}

impl<L: LazySources> LocalEvalStore<L> {
    /// The store, with `lazy`'s trees copied into it when first referred to.
    pub fn with_lazy_sources(store: Arc<LocalStore>, lazy: L) -> Self {
        Self { store, lazy }
    }

    /// Copy every lazy tree among `refs` into the store (they must be valid before anything
    /// that refers to them is registered).
    fn copy_lazy<'a>(
        &self,
        refs: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<(), StoreError> {
        for r in refs {
            self.lazy
                .ensure_in_store(r, &self.store)
                .map_err(StoreError)?;
        }
        Ok(())
    }
}

/// The store's error with its causes, in one message (the evaluator shows only that).
pub(super) fn err(e: impl std::error::Error) -> StoreError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreError(text)
}

impl<L: LazySources> EvalStore for LocalEvalStore<L> {
    fn store_dir(&self) -> &StoreDir {
        self.store.store_dir()
    }

    fn add_text(
        &mut self,
        name: &str,
        text: &[u8],
        refs: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        self.copy_lazy(refs)?;
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
        // A no-op (after making it a temporary root) when the path is valid already.
        self.store.import_nar(&info, nar).map_err(err)?;
        Ok(path)
    }

    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError> {
        self.copy_lazy(&drv.references())?;
        let written = self.store.write_derivation(drv).map_err(err)?;
        same_path(
            self.store.store_dir(),
            "the store",
            "derivation",
            drv_path,
            &written,
        )
    }

    fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, StoreError> {
        self.store.read_derivation(drv_path).map_err(err)
    }

    fn is_valid_path(&self, path: &StorePath) -> bool {
        (self.store.add_temp_root(path).is_ok() && self.store.is_valid(path).unwrap_or(false))
            || self.lazy.is_lazy(path)
    }
}

/// Whether `store` (`the store`, `Nix's daemon`) wrote `what` where the evaluator computed
/// it would be: the one check behind every write of both evaluation stores (envy's and
/// Nix's through its daemon), as a difference means envy and the store disagree on its
/// contents (or its path).
pub(super) fn same_path(
    dir: &StoreDir,
    store: &str,
    what: &str,
    expected: &StorePath,
    written: &StorePath,
) -> Result<(), StoreError> {
    if expected == written {
        return Ok(());
    }
    Err(StoreError(format!(
        "{store} wrote {what} '{}' at '{}' (the evaluator and the store disagree on its contents)",
        dir.print(expected),
        dir.print(written)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use envy_eval::{Evaluator, Pos};
    use envy_store::StoreConfig;

    fn store(dir: &std::path::Path) -> Arc<LocalStore> {
        Arc::new(LocalStore::open(&StoreConfig::new(dir.join("store"), dir.join("state"))).unwrap())
    }

    fn eval(store: &Arc<LocalStore>, expr: &str, base: &str) -> String {
        let store = Arc::clone(store);
        let (expr, base) = (expr.to_owned(), base.to_owned());
        envy_eval::run_with_stack(move || {
            let mut ev = Evaluator::builder()
                .store(Box::new(LocalEvalStore::new(store)))
                .build();
            let v = ev.eval_string(&expr, &base).unwrap();
            let v = ev.force_deep(&v, Pos::NONE).unwrap();
            String::from_utf8(envy_eval::print::print_value(&v)).unwrap()
        })
    }

    #[test]
    fn texts_sources_and_derivations_land_in_the_store() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        fs_err::write(tmp.path().join("src.txt"), "source\n").unwrap();
        let base = tmp.path().to_str().unwrap();
        let out = eval(
            &store,
            r#"let t = builtins.toFile "t" "text"; s = "${./src.txt}";
                   d = derivation { name = "d"; system = "x"; builder = "/bin/sh"; inherit t s; };
               in [ t s d.drvPath ]"#,
            base,
        );
        let paths: Vec<&str> = out
            .trim_matches(|c| c == '[' || c == ']' || c == ' ')
            .split(' ')
            .map(|p| p.trim_matches('"'))
            .collect();
        assert_eq!(paths.len(), 3, "{out}");
        let dir = store.store_dir();
        for p in &paths {
            let path = dir.parse(p).unwrap();
            assert!(store.is_valid(&path).unwrap(), "{p} is not valid");
        }
        assert_eq!(fs_err::read_to_string(paths[0]).unwrap(), "text");
        assert_eq!(fs_err::read_to_string(paths[1]).unwrap(), "source\n");
        let drv = store
            .read_derivation(&dir.parse(paths[2]).unwrap())
            .unwrap();
        assert_eq!(drv.name, "d");
        // Adding the same things again is a no-op that gives the same paths.
        assert_eq!(
            eval(
                &store,
                r#"let t = builtins.toFile "t" "text"; s = "${./src.txt}";
                       d = derivation { name = "d"; system = "x"; builder = "/bin/sh"; inherit t s; };
                   in [ t s d.drvPath ]"#,
                base
            ),
            out
        );
    }

    /// Records what it was asked to copy.
    struct Lazy {
        path: StorePath,
        copied: std::rc::Rc<std::cell::RefCell<Vec<StorePath>>>,
    }

    impl LazySources for Lazy {
        fn ensure_in_store(&self, path: &StorePath, _: &LocalStore) -> Result<(), String> {
            if *path == self.path {
                self.copied.borrow_mut().push(path.clone());
            }
            Ok(())
        }

        fn is_lazy(&self, path: &StorePath) -> bool {
            *path == self.path
        }

        fn tree(&self, _: &StorePath) -> Option<SourceTree> {
            None
        }
    }

    #[test]
    fn lazy_sources_are_valid_and_copied_when_referred_to() {
        let tmp = tempfile::tempdir().unwrap();
        let store = store(tmp.path());
        let lazy = store
            .store_dir()
            .parse(&format!(
                "{}/0c8ylbyi5hg4sdbm2dgcsb3r2yqmyyqz-source",
                store.store_dir().as_path().display()
            ))
            .unwrap();
        let copied = std::rc::Rc::default();
        let mut es = LocalEvalStore::with_lazy_sources(
            Arc::clone(&store),
            Lazy {
                path: lazy.clone(),
                copied: std::rc::Rc::clone(&copied),
            },
        );
        assert!(es.is_valid_path(&lazy));
        assert!(!store.is_valid(&lazy).unwrap());
        es.add_text("plain", b"text", &BTreeSet::new()).unwrap();
        assert!(
            copied.borrow().is_empty(),
            "copied with nothing referring to it"
        );
        // A text referring to the tree needs it in the store first (the fake copies nothing,
        // so the store refuses the reference; what matters is that the copy was asked for).
        let _ = es.add_text("refers", b"text", &BTreeSet::from([lazy.clone()]));
        assert_eq!(*copied.borrow(), vec![lazy]);
    }
}
