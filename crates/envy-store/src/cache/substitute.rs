//! Substitution: fetching a store path (and what it refers to) from the configured binary
//! caches instead of building it. A `.narinfo` is used only when a trusted key signed it (or
//! the path follows from its content address, as Nix allows); the NAR must then match the
//! signed NAR hash and size before the path becomes valid.

use std::collections::BTreeSet;

use super::error::CacheError;
use super::signing::{PublicKey, trusted};
use super::{BinaryCache, CacheConfig, CacheEvent, NarInfo, Progress};
use crate::local::LocalStore;
use crate::store_path::StorePath;

/// Binary caches to substitute from, in priority order, with the keys to trust.
pub struct Substituter {
    caches: Vec<BinaryCache>,
    keys: Vec<PublicKey>,
    require_sigs: bool,
}

/// What `substitute` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubstituteOutcome {
    /// Paths fetched from a cache, in the order they became valid.
    pub fetched: Vec<StorePath>,
    /// Paths that were valid already.
    pub present: usize,
}

impl Substituter {
    /// Caches at `urls` trusting `keys`. Caches are tried by priority, then in the given order.
    pub fn new(urls: &[String], keys: Vec<PublicKey>) -> Result<Substituter, CacheError> {
        let mut caches = urls
            .iter()
            .map(|u| BinaryCache::open(u))
            .collect::<Result<Vec<_>, _>>()?;
        // Stable: equal priorities keep the configured order. Unreachable caches sort last.
        caches.sort_by_key(BinaryCache::priority);
        Ok(Substituter {
            caches,
            keys,
            require_sigs: true,
        })
    }

    /// From the configuration (`ENVY_SUBSTITUTERS`, `ENVY_TRUSTED_PUBLIC_KEYS`, config file).
    pub fn from_config(config: &CacheConfig) -> Result<Substituter, CacheError> {
        Substituter::new(&config.substituters, config.trusted_keys()?)
    }

    /// Accept paths without a trusted signature (like Nix's `--no-check-sigs`).
    #[must_use]
    pub fn without_signature_checks(mut self) -> Substituter {
        self.require_sigs = false;
        self
    }

    /// Whether no cache is configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.caches.is_empty()
    }

    /// The caches, in the order they are tried.
    pub fn caches(&self) -> impl Iterator<Item = &BinaryCache> {
        self.caches.iter()
    }

    /// The first trusted `.narinfo` for `path`, with its cache. A cache that has the path only
    /// unsigned is reported through `progress` and skipped; a cache for another store
    /// directory or one that cannot be reached is skipped too, unless no cache answers, in
    /// which case that error is returned.
    pub fn query(
        &self,
        store: &LocalStore,
        path: &StorePath,
        progress: Progress<'_>,
    ) -> Result<Option<(&BinaryCache, NarInfo)>, CacheError> {
        let mut first_error = None;
        let mut untrusted = None;
        for cache in &self.caches {
            let attempt = cache
                .check_store_dir(store.store_dir())
                .and_then(|()| cache.nar_info(store.store_dir(), path));
            match attempt {
                Ok(None) => {}
                Ok(Some(info)) => {
                    let fingerprint = info.to_path_info().fingerprint(store.store_dir());
                    let ok = !self.require_sigs
                        || trusted(&self.keys, &fingerprint, &info.signatures)
                        || info.is_content_addressed(store.store_dir());
                    if ok {
                        return Ok(Some((cache, info)));
                    }
                    progress(CacheEvent::Untrusted {
                        path,
                        url: cache.url(),
                    });
                    untrusted.get_or_insert_with(|| cache.url().to_owned());
                }
                Err(e) => {
                    progress(CacheEvent::Unavailable {
                        url: cache.url(),
                        error: e.to_string(),
                    });
                    first_error.get_or_insert(e);
                }
            }
        }
        match (untrusted, first_error) {
            (None, Some(e)) if self.caches.len() == 1 => Err(e),
            _ => Ok(None),
        }
    }

    /// Like `query`, but an untrusted path is an error naming the cache.
    pub fn query_trusted(
        &self,
        store: &LocalStore,
        path: &StorePath,
    ) -> Result<(&BinaryCache, NarInfo), CacheError> {
        let untrusted = std::cell::RefCell::new(None);
        let note = |e: CacheEvent<'_>| {
            if let CacheEvent::Untrusted { url, .. } = e {
                untrusted.borrow_mut().get_or_insert_with(|| url.to_owned());
            }
        };
        match self.query(store, path, &note)? {
            Some(found) => Ok(found),
            None => match untrusted.into_inner() {
                Some(url) => Err(CacheError::Untrusted {
                    path: store.store_dir().print(path),
                    url,
                }),
                None => Err(CacheError::NotFound {
                    path: store.store_dir().print(path),
                    urls: self
                        .caches
                        .iter()
                        .map(BinaryCache::url)
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            },
        }
    }

    /// Make `path` valid by fetching it and everything it refers to. `Ok(None)` when some
    /// path of the closure is in no cache (with a trusted signature): the caller builds.
    pub fn substitute(
        &self,
        store: &LocalStore,
        path: &StorePath,
        progress: Progress<'_>,
    ) -> Result<Option<SubstituteOutcome>, CacheError> {
        self.substitute_closure(store, std::slice::from_ref(path), false, progress)
    }

    /// Fetch the closures of `paths`. With `strict`, a path in no cache (or only unsigned) is
    /// an error; otherwise the result is `Ok(None)`.
    pub fn substitute_closure(
        &self,
        store: &LocalStore,
        paths: &[StorePath],
        strict: bool,
        progress: Progress<'_>,
    ) -> Result<Option<SubstituteOutcome>, CacheError> {
        // Walk the closure through the narinfos of the paths we lack.
        let mut outcome = SubstituteOutcome::default();
        let mut plan: Vec<(&BinaryCache, NarInfo)> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut todo: Vec<StorePath> = paths.to_vec();
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            store.add_temp_root(&p)?;
            if store.is_valid(&p)? {
                outcome.present += 1;
                continue;
            }
            let found = if strict {
                Some(self.query_trusted(store, &p)?)
            } else {
                self.query(store, &p, progress)?
            };
            let Some((cache, info)) = found else {
                return Ok(None);
            };
            todo.extend(
                info.references
                    .iter()
                    .filter(|r| **r != p && !seen.contains(*r))
                    .cloned(),
            );
            plan.push((cache, info));
        }
        // References first.
        let mut ordered = Vec::new();
        let mut placed: BTreeSet<StorePath> = BTreeSet::new();
        while !plan.is_empty() {
            let before = plan.len();
            let mut rest = Vec::new();
            for (cache, info) in plan {
                let ready = info.references.iter().all(|r| {
                    *r == info.path
                        || placed.contains(r)
                        || !seen.contains(r)
                        || store.is_valid(r).unwrap_or(false)
                });
                if ready {
                    placed.insert(info.path.clone());
                    ordered.push((cache, info));
                } else {
                    rest.push((cache, info));
                }
            }
            plan = rest;
            if plan.len() == before {
                // A reference cycle between distinct paths cannot occur in a store; refuse.
                let p = &plan[0].1.path;
                return Err(CacheError::BadFile {
                    url: plan[0].0.url().to_owned(),
                    file: format!("{}.narinfo", p.hash_part()),
                    line: 0,
                    detail: "references form a cycle".to_owned(),
                });
            }
        }
        let total = ordered.len();
        for (i, (cache, info)) in ordered.into_iter().enumerate() {
            progress(CacheEvent::Downloading {
                path: &info.path,
                url: cache.url(),
                size: info.file_size,
            });
            let reader = cache.nar_reader(&info)?;
            store.import_nar(&info.to_path_info(), reader)?;
            progress(CacheEvent::Done {
                path: &info.path,
                done: i + 1,
                total,
            });
            outcome.fetched.push(info.path);
        }
        Ok(Some(outcome))
    }
}
