//! Getting a project's environment: from the cache when its inputs are unchanged, else from
//! the backend (with progress on stderr), stored as a new generation when it differs.
//!
//! Shared by the hook's slow path, `envy reload` and `envy print-dev-env`. Trust is the
//! caller's business: the caller passes the trust gate and hands over what it read
//! (`pins`), which the backend evaluates and the cache key covers.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::backend::{Backend, BackendError, BuildRequest, ShellSelection};
use crate::cache::{Failure, Generation, KeyContext, ProjectCache, cache_key_of_build};
use crate::project::Project;
use crate::trust::{Snapshot, TrustStore};
use crate::util::dirs::Dirs;
use crate::util::progress::{self, Progress};

/// Resolves projects to environments.
pub struct Environments<'a> {
    pub dirs: &'a Dirs,
    pub backend: &'a dyn Backend,
    /// The environment evaluation sees (the user's, without any envy-loaded project).
    pub env: &'a BTreeMap<String, String>,
    pub system: String,
    pub progress: progress::Mode,
}

impl Environments<'_> {
    fn key_context<'k>(
        &'k self,
        selection: &'k ShellSelection,
        pins: &'k [Snapshot],
    ) -> KeyContext<'k> {
        KeyContext {
            backend: self.backend.name(),
            system: &self.system,
            selection,
            env: self.env,
            pinned: pins,
        }
    }

    /// The cached environment for the inputs as they are now, or `None`: never builds, and
    /// never waits for a build in progress (the files it reads are replaced atomically).
    pub fn cached(
        &self,
        project: &Project,
        selection: &ShellSelection,
        pins: &[Snapshot],
    ) -> Result<Option<Generation>> {
        let cache = ProjectCache::new(self.dirs, project);
        let ctx = self.key_context(selection, pins);
        Ok(cache.lookup(&ctx)?.map(|(_, generation)| generation))
    }

    /// The failure of the last build, if the inputs it failed on are unchanged.
    pub fn known_failure(
        &self,
        project: &Project,
        selection: &ShellSelection,
        pins: &[Snapshot],
    ) -> Option<Failure> {
        ProjectCache::new(self.dirs, project).failure(&self.key_context(selection, pins))
    }

    /// The environment of `project` with `selection`: cached unless its inputs changed or
    /// `force` is set. The outer error is envy's own (I/O); the inner one is the backend's.
    pub fn resolve(
        &self,
        project: &Project,
        selection: &ShellSelection,
        force: bool,
        pins: &[Snapshot],
    ) -> Result<Result<Generation, BackendError>> {
        let cache = ProjectCache::new(self.dirs, project);
        cache.ensure(self.dirs)?;
        let _lock = cache.lock()?;
        let ctx = KeyContext {
            backend: self.backend.name(),
            system: &self.system,
            selection,
            env: self.env,
            pinned: pins,
        };
        if !force && let Some((_, generation)) = cache.lookup(&ctx)? {
            return Ok(Ok(generation));
        }

        let name = project
            .root()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Inputs changed from here on may or may not be what the evaluation read.
        let started = crate::cache::file_clock_now();
        let display = Progress::start(name, self.progress);
        let request = BuildRequest {
            project_root: project.root(),
            selection,
            system: &self.system,
            env: self.env,
            roots_dir: &cache.roots_dir(),
            pins,
            input_overrides: &[],
        };
        let result = self.backend.build(&request, &display);
        display.finish();
        let mut output = match result {
            Ok(output) => output,
            Err(e) => {
                // Remember it: a background build is not started again for the same inputs.
                let mut watch = crate::env::record::WatchList::default();
                for file in &e.watch {
                    watch.add_file(file.clone());
                }
                watch.add_file(project.flake_nix());
                watch.add_file(project.flake_lock());
                watch.normalize();
                cache.record_failure(&e.message, watch, &ctx, started)?;
                return Ok(Err(e));
            }
        };
        cache.clear_failure()?;
        crate::hook::interrupt::Interrupted::clear(&cache);
        for notice in &output.notices {
            eprintln!("envy: {notice}");
        }

        // envy wrote `flake.lock` (missing, or lacking an input the allowed `flake.nix`
        // declares) while evaluating the allowed files: the allow carries over to exactly the
        // bytes it wrote. Any other change to the lock still blocks.
        let mut pinned: Vec<Snapshot> = pins.to_vec();
        if let Some((dir, lock)) = output.wrote_lock.take()
            && let Some(snapshot) = pinned.iter_mut().find(|s| s.root == dir)
        {
            if TrustStore::new(self.dirs.trust_dir()).carry_over(snapshot, lock.clone())? {
                eprintln!(
                    "envy: the allow of `{}` carries over to the `flake.lock` envy wrote for it",
                    dir.join(crate::project::FLAKE_NIX).display()
                );
            }
            *snapshot = snapshot.with_lock(lock);
        }
        let ctx = KeyContext {
            pinned: &pinned,
            ..ctx
        };

        output.record.sanitize();
        output.record.watch.add_file(project.flake_nix());
        output.record.watch.add_file(project.flake_lock());
        output.record.watch.normalize();
        let key = cache_key_of_build(&output.record.watch, &ctx, started);
        let pointer = cache.add_build(
            self.dirs,
            key,
            selection,
            self.backend,
            output.record,
            output.roots,
        )?;
        Ok(Ok(cache.load_generation(pointer.generation)?))
    }
}
