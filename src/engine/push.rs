//! Automatic push (`post-build-push` / `ENVY_PUSH_TO`): every derivation the engine's builder
//! builds (not one substituted or found valid) has its outputs pushed, with their closures,
//! to a binary cache by envy-store's [`PushQueue`] while the next derivations build. The
//! engine taps the builder's progress ([`AutoPush::tap`]) for `Finished { ok: true }` and
//! drains the queue when it is dropped, at the end of the command: a progress line while it
//! waits, a summary, and a warning naming the path and the error (the HTTP status) for a
//! push that failed after its retries. A push never fails a build: what was not pushed is
//! recorded for `envy store push URL`.
//!
//! Unsigned pushes are allowed, as in Nix, with a warning: no substituter accepts unsigned
//! paths unless it skips signature checks, so the warning says how to make a key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use envy_build::{BuildEvent, Progress};
use envy_store::cache::{
    BinaryCache, CacheConfig, Compression, PendingPushes, PushOptions, PushQueue, Pusher,
    QueueReport, SecretKey, UploadOptions,
};
use envy_store::{LocalStore, StoreDir};

use crate::env::vars;

/// The push settings of one command.
pub struct PushTarget {
    pub cache: BinaryCache,
    pub secret_key: Option<SecretKey>,
    pub compression: Compression,
}

impl PushTarget {
    /// The cache at `url` (options after `?`: `secret-key=FILE`, `compression=xz|zstd|none`),
    /// signing with `key_file` when given (else the URL's `secret-key`).
    pub fn open(url: &str, key_file: Option<&Path>) -> Result<PushTarget> {
        let cache = BinaryCache::open(url)?;
        let key_file = key_file
            .map(Path::to_owned)
            .or_else(|| cache.param("secret-key").map(PathBuf::from));
        let secret_key = match key_file {
            Some(file) => Some(read_secret_key(&file)?),
            None => None,
        };
        let compression = match cache.param("compression") {
            Some(c) => c
                .parse()
                .map_err(|c| anyhow::anyhow!("unknown compression `{c}` in `{url}`"))?,
            None => Compression::default(),
        };
        Ok(PushTarget {
            cache,
            secret_key,
            compression,
        })
    }

    /// The pusher over `store`.
    pub fn pusher(self, store: Arc<LocalStore>) -> Pusher {
        Pusher::new(
            store,
            self.cache,
            PushOptions::new(UploadOptions {
                compression: self.compression,
                secret_key: self.secret_key,
            }),
        )
    }
}

/// A secret key file in Nix's format.
pub fn read_secret_key(file: &Path) -> Result<SecretKey> {
    let text = fs_err::read_to_string(file)
        .with_context(|| format!("cannot read the secret key `{}`", file.display()))?;
    SecretKey::parse(&text).with_context(|| format!("bad secret key in `{}`", file.display()))
}

/// The configured push, with its queue running.
pub struct AutoPush {
    queue: PushQueue,
    signed: bool,
    store_dir: StoreDir,
}

impl AutoPush {
    /// The push `config.toml` / `ENVY_PUSH_TO` asks for, started; `None` when none is
    /// configured, or (after a warning) when the settings are unusable — a push never stops
    /// a build.
    pub fn from_env(store: &Arc<LocalStore>) -> Option<Arc<AutoPush>> {
        let result = (|| -> Result<Option<AutoPush>> {
            let file = CacheConfig::default_file();
            let config = CacheConfig::load(file.as_deref())?;
            let Some(url) = config.post_build_push else {
                return Ok(None);
            };
            let target = PushTarget::open(&url, config.push_secret_key_file.as_deref())
                .with_context(|| format!("cannot push to `{url}`"))?;
            let signed = target.secret_key.is_some();
            let pending = PendingPushes::new(store.state_dir(), store.store_dir());
            let queue =
                PushQueue::start(target.pusher(Arc::clone(store)), pending, Arc::new(|_| {}));
            Ok(Some(AutoPush {
                queue,
                signed,
                store_dir: store.store_dir().clone(),
            }))
        })();
        match result {
            Ok(push) => push.map(Arc::new),
            Err(e) => {
                eprintln!(
                    "envy: warning: not pushing what is built: {e:#}\nhint: check `post-build-push` and `push-secret-key-file` in envy's config file (or `{}`, `{}`)",
                    vars::ENVY_PUSH_TO,
                    vars::ENVY_PUSH_SECRET_KEY_FILE
                );
                None
            }
        }
    }

    /// `inner`, plus a push of every derivation built successfully.
    pub fn tap<'a>(&'a self, inner: &'a dyn Progress) -> PushTap<'a> {
        PushTap { inner, push: self }
    }

    /// Wait for the queue (with a progress line when it takes a while), then report.
    pub fn finish(&self) {
        let url = self.queue.url().to_owned();
        let status = self.queue.status();
        if status.queued == 0 {
            self.queue.finish(&|_| {});
            return;
        }
        let bar = spinner();
        let said = std::cell::Cell::new(false);
        let report = self.queue.finish(&|s| {
            if !said.get() {
                said.set(true);
                if bar.is_hidden() {
                    eprintln!("envy: waiting for the uploads to `{url}`...");
                }
            }
            bar.set_message(format!(
                "pushing to {url}: {}/{} builds, {} paths uploaded",
                s.done, s.queued, s.uploaded
            ));
        });
        bar.finish_and_clear();
        self.report(&url, &report);
    }

    fn report(&self, url: &str, report: &QueueReport) {
        let n = report.uploaded.len();
        if n > 0 {
            eprintln!(
                "envy: pushed {n} path{} to `{url}` ({} already there)",
                if n == 1 { "" } else { "s" },
                report.present
            );
            if !self.signed {
                eprintln!(
                    "envy: warning: the paths pushed to `{url}` are not signed: substituters refuse them unless they skip signature checks\nhint: make a key with `envy store generate-key NAME FILE` and set `push-secret-key-file` (or `{}`)",
                    vars::ENVY_PUSH_SECRET_KEY_FILE
                );
            }
        }
        if let Some(failure) = &report.failure {
            let what = match failure.path.as_ref().or(report.left.first()) {
                Some(p) => format!("`{}`", self.store_dir.print(p)),
                None => "anything".to_owned(),
            };
            eprintln!(
                "envy: warning: cannot push {what} to `{url}`: {}",
                error_chain(&failure.error)
            );
        }
        if !report.left.is_empty() {
            match &report.record_error {
                None => eprintln!(
                    "envy: warning: {} path{} not pushed to `{url}`\nhint: run `envy store push {url}` to push {}",
                    report.left.len(),
                    if report.left.len() == 1 { "" } else { "s" },
                    if report.left.len() == 1 { "it" } else { "them" },
                ),
                Some(e) => eprintln!(
                    "envy: warning: {} path{} not pushed to `{url}`, and not recorded: {}",
                    report.left.len(),
                    if report.left.len() == 1 { "" } else { "s" },
                    error_chain(e)
                ),
            }
        }
    }
}

/// An error with its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// A progress sink that also feeds the push queue.
pub struct PushTap<'a> {
    inner: &'a dyn Progress,
    push: &'a AutoPush,
}

impl Progress for PushTap<'_> {
    fn event(&self, event: BuildEvent) {
        if let BuildEvent::Finished { drv, ok: true, .. } = &event
            && let Ok(path) = self.push.store_dir.parse(drv)
        {
            self.push.queue.push_outputs_of(&path);
        }
        self.inner.event(event);
    }
}

/// A spinner on stderr when it is a terminal (hidden otherwise).
fn spinner() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
