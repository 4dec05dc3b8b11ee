//! [`LocalEvalStore`]: envy-eval's [`EvalStore`] over envy's [`LocalStore`], so that what an
//! evaluation produces — `builtins.toFile` texts, sources (`./setup.sh` in a string,
//! `builtins.path`), `.drv` files — is written into envy's store, ready for the builder.
//! Everything written becomes a temporary root of this process (the store does that), so a
//! concurrent `envy store gc` cannot take it before the build that needs it.

use std::collections::BTreeSet;
use std::sync::Arc;

use envy_eval::{EvalStore, StoreError};
use envy_store::{
    ContentAddress, ContentAddressMethod, Derivation, FileIngestionMethod, Hash, LocalStore,
    StoreDir, StorePath, ValidPathInfo,
};

/// The evaluator's view of envy's local store.
pub struct LocalEvalStore {
    store: Arc<LocalStore>,
}

impl LocalEvalStore {
    pub fn new(store: Arc<LocalStore>) -> Self {
        Self { store }
    }
}

/// The store's error with its causes, in one message (the evaluator shows only that).
fn err(e: impl std::error::Error) -> StoreError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreError(text)
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
        let mut info = ValidPathInfo::new(path.clone(), Hash::sha256(nar), nar.len() as u64);
        info.ca = Some(ContentAddress {
            method: ContentAddressMethod::Fixed(method),
            hash: *hash,
        });
        // A no-op (after making it a temporary root) when the path is valid already.
        self.store.import_nar(&info, nar).map_err(err)?;
        Ok(path)
    }

    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError> {
        let written = self.store.write_derivation(drv).map_err(err)?;
        if &written != drv_path {
            let dir = self.store.store_dir();
            return Err(StoreError(format!(
                "the store wrote derivation '{}' at '{}' (the evaluator and the store disagree on its contents)",
                dir.print(drv_path),
                dir.print(&written)
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
}
