//! Substitution: fetching a store path (and what it refers to) from the configured binary
//! caches instead of building it. A `.narinfo` is used only when a trusted key signed it (or
//! the path follows from its content address, as Nix allows); the NAR must then match the
//! signed NAR hash and size before the path becomes valid.
//!
//! At scale: the closure is walked a level at a time, each level's `.narinfo`s asked for
//! concurrently ([`QUERY_THREADS`]; HTTP connections are kept alive in the cache's agent),
//! and the NARs are downloaded and unpacked by [`DOWNLOAD_THREADS`] workers, each path as soon
//! as what it refers to is valid. Each path becomes valid in one step (`import_nar`), so an
//! interrupted substitution leaves nothing half-written.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::error::CacheError;
use super::signing::{PublicKey, trusted};
use super::{BinaryCache, CacheConfig, CacheEvent, NarInfo, Progress};
use crate::hash::Hash;
use crate::local::LocalStore;
use crate::store_path::StorePath;

/// How many `.narinfo` requests are in flight at once.
pub const QUERY_THREADS: usize = 16;
/// How many NARs are downloaded and unpacked at once.
pub const DOWNLOAD_THREADS: usize = 4;

/// How long a path an HTTP cache did not have is not asked for again: Nix's default
/// `narinfo-cache-negative-ttl`.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(3600);

/// `404`s remembered on disk, as Nix's narinfo cache remembers them: one empty file per
/// (cache, path), `<dir>/<cache url hash>/<path hash>`, whose age says when it was asked.
/// Only HTTP caches: a directory cache answers a miss with one `stat`.
struct Misses {
    dir: PathBuf,
    ttl: Duration,
}

impl Misses {
    fn file(&self, cache: &BinaryCache, path: &StorePath) -> Option<PathBuf> {
        if !cache.url().starts_with("http") {
            return None;
        }
        let url = Hash::sha256(cache.url().as_bytes()).to_nix32();
        Some(self.dir.join(&url[..16]).join(path.hash_part()))
    }

    /// Whether `cache` lacked `path` less than the time to live ago.
    fn known(&self, cache: &BinaryCache, path: &StorePath) -> bool {
        self.file(cache, path)
            .and_then(|f| std::fs::metadata(f).ok())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < self.ttl)
    }

    /// Remember that `cache` lacks `path` (best effort: a failure only costs a request).
    fn remember(&self, cache: &BinaryCache, path: &StorePath) {
        if let Some(file) = self.file(cache, path) {
            let _ = file
                .parent()
                .map_or(Ok(()), fs_err::create_dir_all)
                .and_then(|()| fs_err::write(&file, b""));
        }
    }
}

/// What a query said through its progress callback, kept to be replayed on the caller's
/// thread (the callback need not be `Sync`).
enum Said {
    Untrusted { path: StorePath, url: String },
    Unavailable { url: String, error: String },
}

type Found<'c> = Option<(&'c BinaryCache, NarInfo)>;

/// One query's answer and what it said on the way.
type Answer<'c> = (Result<Found<'c>, CacheError>, Vec<Said>);

/// Binary caches to substitute from, in priority order, with the keys to trust.
pub struct Substituter {
    caches: Vec<BinaryCache>,
    keys: Vec<PublicKey>,
    require_sigs: bool,
    misses: Option<Misses>,
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
            misses: None,
        })
    }

    /// Remember under `dir`, for `ttl`, which paths the HTTP caches did not have, and do not
    /// ask for them again meanwhile (a zero `ttl` remembers nothing).
    #[must_use]
    pub fn remembering_misses(mut self, dir: PathBuf, ttl: Duration) -> Substituter {
        self.misses = (!ttl.is_zero()).then_some(Misses { dir, ttl });
        self
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
            if self.misses.as_ref().is_some_and(|m| m.known(cache, path)) {
                continue;
            }
            let attempt = cache
                .check_store_dir(store.store_dir())
                .and_then(|()| cache.nar_info(store.store_dir(), path));
            match attempt {
                Ok(None) => {
                    if let Some(misses) = &self.misses {
                        misses.remember(cache, path);
                    }
                }
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

    /// `query` (or, with `strict`, `query_trusted`) for each of `paths`, concurrently; the
    /// answers in the order of `paths`, the first error (in that order) if any.
    fn query_many(
        &self,
        store: &LocalStore,
        paths: &[StorePath],
        strict: bool,
        progress: Progress<'_>,
    ) -> Result<Vec<Found<'_>>, CacheError> {
        let next = AtomicUsize::new(0);
        let answers: Vec<Mutex<Option<Answer<'_>>>> =
            paths.iter().map(|_| Mutex::new(None)).collect();
        let ask = |p: &StorePath| {
            let said = std::cell::RefCell::new(Vec::new());
            let note = |e: CacheEvent<'_>| match e {
                CacheEvent::Untrusted { path, url } => said.borrow_mut().push(Said::Untrusted {
                    path: path.clone(),
                    url: url.to_owned(),
                }),
                CacheEvent::Unavailable { url, error } => {
                    said.borrow_mut().push(Said::Unavailable {
                        url: url.to_owned(),
                        error,
                    });
                }
                _ => {}
            };
            let found = if strict {
                self.query_trusted(store, p).map(Some)
            } else {
                self.query(store, p, &note)
            };
            (found, said.into_inner())
        };
        std::thread::scope(|scope| {
            for _ in 0..QUERY_THREADS.min(paths.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(p) = paths.get(i) else { break };
                        let answer = ask(p);
                        *answers[i]
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer);
                    }
                });
            }
        });
        let mut out = Vec::with_capacity(paths.len());
        for answer in answers {
            let (found, said) = answer
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .expect("every path was asked about");
            for s in &said {
                progress(match s {
                    Said::Untrusted { path, url } => CacheEvent::Untrusted { path, url },
                    Said::Unavailable { url, error } => CacheEvent::Unavailable {
                        url,
                        error: error.clone(),
                    },
                });
            }
            out.push(found?);
        }
        Ok(out)
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
        // Walk the closure through the narinfos of the paths we lack, a level at a time.
        let mut outcome = SubstituteOutcome::default();
        let mut plan: Vec<(&BinaryCache, NarInfo)> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut level: Vec<StorePath> = paths.to_vec();
        while !level.is_empty() {
            let mut lacking = Vec::new();
            for p in std::mem::take(&mut level) {
                if !seen.insert(p.clone()) {
                    continue;
                }
                store.add_temp_root(&p)?;
                if store.is_valid(&p)? {
                    outcome.present += 1;
                    continue;
                }
                lacking.push(p);
            }
            let answers = self.query_many(store, &lacking, strict, progress)?;
            for (p, found) in lacking.iter().zip(answers) {
                let Some((cache, info)) = found else {
                    return Ok(None);
                };
                level.extend(
                    info.references
                        .iter()
                        .filter(|r| *r != p && !seen.contains(*r))
                        .cloned(),
                );
                plan.push((cache, info));
            }
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
        outcome.fetched = fetch_all(store, ordered, progress)?;
        Ok(Some(outcome))
    }
}

/// A message from a download worker to the thread that reports progress.
enum Fetch {
    Started(usize),
    Finished(usize, Result<(), CacheError>),
}

/// Download and unpack `ordered` (references before referrers) with [`DOWNLOAD_THREADS`]
/// workers; a path starts once every path of the plan it refers to is valid. Progress is
/// reported on this thread. Returns the paths in the order they became valid.
fn fetch_all(
    store: &LocalStore,
    ordered: Vec<(&BinaryCache, NarInfo)>,
    progress: Progress<'_>,
) -> Result<Vec<StorePath>, CacheError> {
    let total = ordered.len();
    let in_plan: BTreeSet<StorePath> = ordered.iter().map(|(_, i)| i.path.clone()).collect();
    struct Board {
        /// Indices not started yet, in plan order.
        waiting: Vec<usize>,
        valid: BTreeSet<StorePath>,
        /// Indices in the order their paths became valid (recorded under the lock: the
        /// workers' messages may arrive in another order).
        order: Vec<usize>,
        failed: bool,
    }
    let board = Mutex::new(Board {
        waiting: (0..total).collect(),
        valid: BTreeSet::new(),
        order: Vec::with_capacity(total),
        failed: false,
    });
    let changed = Condvar::new();
    let (tx, rx) = mpsc::channel::<Fetch>();
    let lock = || {
        board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let ready = |b: &Board, i: usize| {
        let info = &ordered[i].1;
        info.references
            .iter()
            .all(|r| *r == info.path || !in_plan.contains(r) || b.valid.contains(r))
    };
    let worker = |tx: mpsc::Sender<Fetch>| {
        loop {
            let i = {
                let mut b = lock();
                loop {
                    if b.failed || b.waiting.is_empty() {
                        return;
                    }
                    if let Some(pos) = b.waiting.iter().position(|&i| ready(&b, i)) {
                        break b.waiting.remove(pos);
                    }
                    b = changed
                        .wait(b)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            };
            let _ = tx.send(Fetch::Started(i));
            let (cache, info) = &ordered[i];
            let result = cache
                .nar_reader(info)
                .and_then(|reader| Ok(store.import_nar(&info.to_path_info(), reader)?));
            {
                let mut b = lock();
                match &result {
                    Ok(()) => {
                        b.valid.insert(info.path.clone());
                        b.order.push(i);
                    }
                    Err(_) => b.failed = true,
                }
            }
            changed.notify_all();
            let _ = tx.send(Fetch::Finished(i, result));
        }
    };
    let mut done = 0;
    let mut first_error = None;
    std::thread::scope(|scope| {
        for _ in 0..DOWNLOAD_THREADS.min(total) {
            let tx = tx.clone();
            scope.spawn(move || worker(tx));
        }
        drop(tx);
        for message in rx {
            match message {
                Fetch::Started(i) => {
                    let (cache, info) = &ordered[i];
                    progress(CacheEvent::Downloading {
                        path: &info.path,
                        url: cache.url(),
                        size: info.file_size,
                    });
                }
                Fetch::Finished(i, Ok(())) => {
                    done += 1;
                    progress(CacheEvent::Done {
                        path: &ordered[i].1.path,
                        done,
                        total,
                    });
                }
                Fetch::Finished(_, Err(e)) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    match first_error {
        Some(e) => Err(e),
        None => Ok(lock()
            .order
            .iter()
            .map(|&i| ordered[i].1.path.clone())
            .collect()),
    }
}
