//! Getting a project's environment: from the cache when its inputs are unchanged, else from
//! the backend (with progress on stderr), stored as a new generation when it differs.
//!
//! Shared by the hook's slow path, `envy reload` and `envy print-dev-env`. Trust is the
//! caller's business: nothing here checks it.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::backend::{Backend, BackendError, BuildRequest, ShellSelection};
use crate::cache::{Generation, KeyContext, ProjectCache, cache_key};
use crate::dirs::Dirs;
use crate::progress::{self, Progress};
use crate::project::Project;
use crate::trust::{Trust, TrustStore};

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
    /// The environment of `project` with `selection`: cached unless its inputs changed or
    /// `force` is set. The outer error is envy's own (I/O); the inner one is the backend's.
    pub fn resolve(
        &self,
        project: &Project,
        selection: &ShellSelection,
        force: bool,
    ) -> Result<Result<Generation, BackendError>> {
        let cache = ProjectCache::new(self.dirs, project);
        cache.ensure(self.dirs)?;
        let _lock = cache.lock()?;
        let ctx = KeyContext {
            backend: self.backend.name(),
            system: &self.system,
            selection,
            env: self.env,
        };
        if !force && let Some(pointer) = cache.lookup(&ctx)? {
            let generation = cache.load_generation(pointer.generation)?;
            return Ok(Ok(generation));
        }

        let trust = TrustStore::new(self.dirs.trust_dir());
        let allowed_before = trust.check(project)? == Trust::Allowed;
        let flake_before = fs_err::read(project.flake_nix()).ok();

        let name = project
            .root()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let display = Progress::start(name, self.progress);
        let request = BuildRequest {
            project_root: project.root(),
            selection,
            system: &self.system,
            env: self.env,
            roots_dir: &cache.roots_dir(),
        };
        let result = self.backend.build(&request, &display);
        display.finish();
        let mut output = match result {
            Ok(output) => output,
            Err(e) => return Ok(Err(e)),
        };
        for notice in &output.notices {
            eprintln!("envy: {notice}");
        }

        // Nix writes `flake.lock` for a flake with inputs that has none yet. The lock follows
        // from the allowed `flake.nix`, so the allow carries over to it.
        if allowed_before
            && fs_err::read(project.flake_nix()).ok() == flake_before
            && trust.check(project)? == Trust::Changed
        {
            trust.allow(project)?;
        }

        output.record.sanitize();
        output.record.watch.add_file(project.flake_nix());
        output.record.watch.add_file(project.flake_lock());
        output.record.watch.normalize();
        let key = cache_key(&output.record.watch, &ctx);
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
