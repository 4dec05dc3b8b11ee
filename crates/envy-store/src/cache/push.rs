//! Pushing store paths to a binary cache as Nix's `post-build-hook` + `nix copy --to` would:
//! each path with its closure, references first, skipping what the cache has (its `.narinfo`
//! is asked for first), every network operation retried a few times with a growing delay.
//!
//! [`Pusher`] pushes in the caller's thread (`envy store push`); [`PushQueue`] runs one in a
//! background thread fed as builds finish, so uploads overlap the builds that follow. A final
//! failure stops the queue's uploads: that job's paths and every later one are recorded in
//! [`PendingPushes`] for `envy store push` to finish, and the failure is in the
//! [`QueueReport`]. Nothing here fails a build, and nothing prints: the caller renders
//! [`PushEvent`]s and the report.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::BinaryCache;
use super::error::CacheError;
use super::pending::PendingPushes;
use super::upload::{UploadOptions, ensure_cache_info, has_nar_info, upload_path};
use crate::local::LocalStore;
use crate::store_path::StorePath;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub upload: UploadOptions,
    /// Tries per network operation (at least one).
    pub attempts: u32,
    /// The delay before the first retry; each next one waits twice as long.
    pub backoff: Duration,
}

impl PushOptions {
    /// Three tries, half a second, then a second, apart.
    #[must_use]
    pub fn new(upload: UploadOptions) -> PushOptions {
        PushOptions {
            upload,
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// Something that happened while pushing, for progress displays.
#[derive(Debug)]
pub enum PushEvent<'a> {
    /// The cache has this path already.
    Present { path: &'a StorePath },
    /// Uploading this path's NAR and `.narinfo`.
    Uploading { path: &'a StorePath },
    /// This path is in the cache now.
    Uploaded { path: &'a StorePath },
    /// An operation failed and is tried again after `delay` (`path` is `None` for the
    /// cache's own `nix-cache-info`).
    Retrying {
        path: Option<&'a StorePath>,
        attempt: u32,
        delay: Duration,
        error: &'a CacheError,
    },
}

/// A progress callback that may be called from the queue's thread.
pub type PushProgress = Arc<dyn Fn(PushEvent<'_>) + Send + Sync>;

/// What was pushed.
#[derive(Debug, Default)]
pub struct PushReport {
    pub uploaded: Vec<StorePath>,
    /// Paths the cache had already.
    pub present: usize,
}

/// A push that failed after its retries.
#[derive(Debug)]
pub struct PushFailure {
    /// The path being uploaded or asked for (`None`: the cache itself or the store).
    pub path: Option<StorePath>,
    pub error: Box<CacheError>,
}

/// Pushes closures to one cache, remembering what it has.
pub struct Pusher {
    store: Arc<LocalStore>,
    cache: BinaryCache,
    options: PushOptions,
    checked: bool,
    in_cache: BTreeSet<StorePath>,
}

impl Pusher {
    #[must_use]
    pub fn new(store: Arc<LocalStore>, cache: BinaryCache, options: PushOptions) -> Pusher {
        Pusher {
            store,
            cache,
            options,
            checked: false,
            in_cache: BTreeSet::new(),
        }
    }

    /// The cache URL (without options).
    #[must_use]
    pub fn url(&self) -> &str {
        self.cache.url()
    }

    /// The store pushed from.
    #[must_use]
    pub fn store(&self) -> &Arc<LocalStore> {
        &self.store
    }

    /// Push the closures of `paths` (valid paths), adding to `report` as it goes; stops at
    /// the first path that still fails after its retries.
    pub fn push(
        &mut self,
        paths: &[StorePath],
        report: &mut PushReport,
        progress: &dyn Fn(PushEvent<'_>),
    ) -> Result<(), PushFailure> {
        if !self.checked {
            let (store, cache) = (&self.store, &self.cache);
            self.retry(None, progress, || ensure_cache_info(store, cache))?;
            self.checked = true;
        }
        let closure = self.store.topo_closure(paths).map_err(|e| PushFailure {
            path: None,
            error: Box::new(e.into()),
        })?;
        for info in closure {
            if self.in_cache.contains(&info.path) {
                continue;
            }
            let cache = &self.cache;
            if self.retry(Some(&info.path), progress, || {
                has_nar_info(cache, &info.path)
            })? {
                progress(PushEvent::Present { path: &info.path });
                report.present += 1;
            } else {
                progress(PushEvent::Uploading { path: &info.path });
                let (store, options) = (&self.store, &self.options.upload);
                self.retry(Some(&info.path), progress, || {
                    upload_path(store, cache, &info, options)
                })?;
                progress(PushEvent::Uploaded { path: &info.path });
                report.uploaded.push(info.path.clone());
            }
            self.in_cache.insert(info.path);
        }
        Ok(())
    }

    /// Run `op` until it succeeds or has been tried `attempts` times. Errors of the store or
    /// of the settings are not worth another try.
    fn retry<T>(
        &self,
        path: Option<&StorePath>,
        progress: &dyn Fn(PushEvent<'_>),
        mut op: impl FnMut() -> Result<T, CacheError>,
    ) -> Result<T, PushFailure> {
        let mut delay = self.options.backoff;
        let mut attempt = 1;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(error) => {
                    let lasting = matches!(
                        error,
                        CacheError::Store(_)
                            | CacheError::WrongStoreDir { .. }
                            | CacheError::BadUrl { .. }
                            | CacheError::BadKey { .. }
                    );
                    if lasting || attempt >= self.options.attempts.max(1) {
                        return Err(PushFailure {
                            path: path.cloned(),
                            error: Box::new(error),
                        });
                    }
                    progress(PushEvent::Retrying {
                        path,
                        attempt,
                        delay,
                        error: &error,
                    });
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }
}

enum Job {
    /// The outputs of a derivation that was just built.
    OutputsOf(StorePath),
    Paths(Vec<StorePath>),
}

/// How far the queue is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct QueueStatus {
    pub queued: usize,
    pub done: usize,
    pub uploaded: usize,
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    done: AtomicUsize,
    uploaded: AtomicUsize,
}

/// What a queue did, once drained.
#[derive(Debug, Default)]
pub struct QueueReport {
    pub uploaded: Vec<StorePath>,
    pub present: usize,
    /// The failure that stopped the uploads.
    pub failure: Option<PushFailure>,
    /// Paths not pushed, recorded for `envy store push`.
    pub left: Vec<StorePath>,
    /// Why recording them failed, if it did.
    pub record_error: Option<CacheError>,
}

/// A background pusher fed with what builds produce.
pub struct PushQueue {
    url: String,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    worker: Mutex<Option<JoinHandle<QueueReport>>>,
    counters: Arc<Counters>,
    pending: PendingPushes,
    store: Arc<LocalStore>,
}

impl PushQueue {
    /// Start the queue's thread. What cannot be pushed goes to `pending`.
    #[must_use]
    pub fn start(mut pusher: Pusher, pending: PendingPushes, progress: PushProgress) -> PushQueue {
        let (sender, receiver) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let url = pusher.url().to_owned();
        let store = Arc::clone(pusher.store());
        let worker = {
            let counters = Arc::clone(&counters);
            let pending = pending.clone();
            let url = url.clone();
            std::thread::Builder::new()
                .name("envy-push".to_owned())
                .spawn(move || {
                    let mut report = QueueReport::default();
                    for job in receiver {
                        let paths = match job {
                            Job::Paths(paths) => paths,
                            Job::OutputsOf(drv) => valid_outputs(pusher.store(), &drv),
                        };
                        if report.failure.is_none() {
                            let mut pushed = PushReport::default();
                            let counted = |e: PushEvent<'_>| {
                                if let PushEvent::Uploaded { .. } = e {
                                    counters.uploaded.fetch_add(1, Ordering::SeqCst);
                                }
                                progress(e);
                            };
                            let result = pusher.push(&paths, &mut pushed, &counted);
                            report.uploaded.extend(pushed.uploaded);
                            report.present += pushed.present;
                            if let Err(failure) = result {
                                report.failure = Some(failure);
                            }
                        }
                        if report.failure.is_some() {
                            if let Err(e) = pending.add(&url, &paths) {
                                report.record_error.get_or_insert(e);
                            }
                            report.left.extend(paths);
                        }
                        counters.done.fetch_add(1, Ordering::SeqCst);
                    }
                    report
                })
                .expect("spawning a thread")
        };
        PushQueue {
            url,
            sender: Mutex::new(Some(sender)),
            worker: Mutex::new(Some(worker)),
            counters,
            pending,
            store,
        }
    }

    /// The cache URL.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Push the outputs of `drv` (just built) with their closure.
    pub fn push_outputs_of(&self, drv: &StorePath) {
        self.send(Job::OutputsOf(drv.clone()));
    }

    /// Push `paths` with their closure.
    pub fn push(&self, paths: Vec<StorePath>) {
        self.send(Job::Paths(paths));
    }

    fn send(&self, job: Job) {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        self.counters.queued.fetch_add(1, Ordering::SeqCst);
        let job = match sender.as_ref() {
            Some(s) => match s.send(job) {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        {
            // The queue is closed: leave the job for `envy store push`.
            self.counters.done.fetch_add(1, Ordering::SeqCst);
            let paths = match &job {
                Job::OutputsOf(drv) => valid_outputs(&self.store, drv),
                Job::Paths(paths) => paths.clone(),
            };
            let _ = self.pending.add(&self.url, &paths);
        }
    }

    /// How far the queue is.
    #[must_use]
    pub fn status(&self) -> QueueStatus {
        QueueStatus {
            queued: self.counters.queued.load(Ordering::SeqCst),
            done: self.counters.done.load(Ordering::SeqCst),
            uploaded: self.counters.uploaded.load(Ordering::SeqCst),
        }
    }

    /// Take no more jobs and wait for the queued ones, calling `tick` every tenth of a
    /// second meanwhile. A second call returns an empty report.
    pub fn finish(&self, tick: &dyn Fn(QueueStatus)) -> QueueReport {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        let Some(worker) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return QueueReport::default();
        };
        while !worker.is_finished() {
            tick(self.status());
            std::thread::sleep(Duration::from_millis(100));
        }
        worker.join().unwrap_or_default()
    }
}

/// The valid outputs of `drv` (none when it cannot be read).
fn valid_outputs(store: &LocalStore, drv_path: &StorePath) -> Vec<StorePath> {
    let Ok(drv) = store.read_derivation(drv_path) else {
        return Vec::new();
    };
    drv.outputs
        .iter()
        .filter_map(|(name, output)| {
            output
                .path(store.store_dir(), &drv.name, name)
                .ok()
                .flatten()
        })
        .filter(|p| store.is_valid(p).unwrap_or(false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn store(dir: &std::path::Path) -> Arc<LocalStore> {
        Arc::new(LocalStore::open(&StoreConfig::new(dir.join("store"), dir.join("state"))).unwrap())
    }

    fn quick(upload: UploadOptions) -> PushOptions {
        PushOptions {
            backoff: Duration::from_millis(1),
            ..PushOptions::new(upload)
        }
    }

    #[test]
    fn a_queue_pushes_closures_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let dep = store.add_text("dep", b"dep", &BTreeSet::new()).unwrap();
        let top = store
            .add_text(
                "top",
                store.store_dir().print(&dep).as_bytes(),
                &BTreeSet::from([dep.clone()]),
            )
            .unwrap();
        let url = format!("file://{}", dir.path().join("cache").display());
        let cache = BinaryCache::open(&url).unwrap();
        let pusher = Pusher::new(Arc::clone(&store), cache, quick(UploadOptions::default()));
        let pending = PendingPushes::new(store.state_dir(), store.store_dir());
        let queue = PushQueue::start(pusher, pending.clone(), Arc::new(|_| {}));
        queue.push(vec![top.clone()]);
        queue.push(vec![dep.clone()]);
        let report = queue.finish(&|_| {});
        assert_eq!(report.uploaded, vec![dep.clone(), top.clone()]);
        assert!(report.failure.is_none() && report.left.is_empty());
        assert!(pending.for_url(&url).unwrap().is_empty());
        // A new pusher asks the cache, which has both now.
        let cache = BinaryCache::open(&url).unwrap();
        let mut pusher = Pusher::new(Arc::clone(&store), cache, quick(UploadOptions::default()));
        let mut again = PushReport::default();
        pusher.push(&[top], &mut again, &|_| {}).unwrap();
        assert!(again.uploaded.is_empty());
        assert_eq!(again.present, 2);
    }

    #[test]
    fn a_failing_cache_is_retried_then_everything_is_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let a = store.add_text("a", b"a", &BTreeSet::new()).unwrap();
        let b = store.add_text("b", b"b", &BTreeSet::new()).unwrap();
        // Nothing listens on port 1.
        let url = "http://127.0.0.1:1";
        let pusher = Pusher::new(
            Arc::clone(&store),
            BinaryCache::open(url).unwrap(),
            quick(UploadOptions::default()),
        );
        let pending = PendingPushes::new(store.state_dir(), store.store_dir());
        let retries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&retries);
        let queue = PushQueue::start(
            pusher,
            pending.clone(),
            Arc::new(move |e| {
                if let PushEvent::Retrying { .. } = e {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            }),
        );
        queue.push(vec![a.clone()]);
        queue.push(vec![b.clone()]);
        let report = queue.finish(&|_| {});
        let failure = report.failure.expect("the cache is not there");
        assert!(
            matches!(*failure.error, CacheError::Fetch { .. }),
            "{}",
            failure.error
        );
        // Three tries of the first request, then the second job is not tried at all.
        assert_eq!(retries.load(Ordering::SeqCst), 2);
        assert_eq!(report.left, vec![a.clone(), b.clone()]);
        assert_eq!(
            pending.for_url(url).unwrap(),
            BTreeSet::from([a.clone(), b.clone()])
        );
        // Jobs sent after the queue finished are left for later too.
        queue.push(vec![a.clone()]);
        assert_eq!(pending.for_url(url).unwrap().len(), 2);
    }
}
