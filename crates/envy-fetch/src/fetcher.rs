//! [`Fetcher`]: fetches an [`Input`] into a hashed [`SourceTree`] and returns the input's
//! locked form, with the checks Nix's `Input::fetch` makes (the `narHash` must match what the
//! input pins; `revCount`/`lastModified` must match for inputs that record them). Results are
//! memoised for the life of the fetcher, so one evaluation fetches each input once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use envy_store::{FileIngestionMethod, StoreDir, StorePath};

use crate::cache::FetchCache;
use crate::git::Git;
use crate::tree::SourceTree;
use crate::{FetchError, Input};

/// Looks a store path up in a store: where its files are and its NAR size, when it is valid
/// there. A locked input whose tree is already in the store is used from there, as Nix does.
#[derive(Clone)]
pub struct StoreLookup(pub std::sync::Arc<FindInStore>);

/// A store path → where its files are and its NAR size, when it is valid.
pub type FindInStore = dyn Fn(&StorePath) -> Option<(PathBuf, u64)> + Send + Sync;

impl std::fmt::Debug for StoreLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLookup")
    }
}

/// Where and how fetchers work.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// The store directory store paths are computed for.
    pub store_dir: StoreDir,
    /// The fetch cache (`$XDG_CACHE_HOME/envy/fetch-v1` for the envy binary).
    pub cache_dir: PathBuf,
    /// The `git` program.
    pub git: PathBuf,
    /// GitHub's API base URL.
    pub github_api: String,
    /// A GitHub token (`Authorization: token …`).
    pub github_token: Option<String>,
    /// How long an unlocked download is reused without asking the server again.
    pub tarball_ttl: Duration,
    /// The store the evaluation writes to, for trees that are already in it.
    pub store: Option<StoreLookup>,
}

impl FetchSettings {
    /// Defaults: system `git`, `https://api.github.com`, an hour of TTL (Nix's `tarball-ttl`).
    #[must_use]
    pub fn new(store_dir: StoreDir, cache_dir: impl Into<PathBuf>) -> FetchSettings {
        FetchSettings {
            store_dir,
            cache_dir: cache_dir.into(),
            git: PathBuf::from("git"),
            github_api: "https://api.github.com".to_string(),
            github_token: None,
            tarball_ttl: Duration::from_secs(3600),
            store: None,
        }
    }
}

/// A fetched input: its tree and its locked form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The locked input: the original attributes plus `narHash` and what the fetcher learnt
    /// (`rev`, `ref`, `revCount`, `lastModified`).
    pub input: Input,
    /// The tree, hashed, where it can be read.
    pub tree: SourceTree,
}

/// Fetches inputs.
#[derive(Debug)]
pub struct Fetcher {
    settings: FetchSettings,
    cache: FetchCache,
    memo: Mutex<HashMap<Input, Fetched>>,
}

impl Fetcher {
    /// A fetcher with `settings`.
    #[must_use]
    pub fn new(settings: FetchSettings) -> Fetcher {
        Fetcher {
            cache: FetchCache::new(&settings.cache_dir),
            settings,
            memo: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// The store directory.
    #[must_use]
    pub fn store_dir(&self) -> &StoreDir {
        &self.settings.store_dir
    }

    /// The fetch cache.
    #[must_use]
    pub fn cache(&self) -> &FetchCache {
        &self.cache
    }

    pub(crate) fn git(&self) -> Git<'_> {
        Git::new(&self.settings.git)
    }

    /// Drop what this fetcher remembers of `input` (its tree changed: a lock file was
    /// written into it).
    pub fn forget(&self, input: &Input) {
        self.memo.lock().expect("memo lock").remove(input);
    }

    /// `git add --intent-to-add` a file Nix would make visible in a work tree (a new
    /// `flake.lock`), so that the next fetch of the work tree includes it.
    pub fn git_add_intent_to_add(
        &self,
        work_tree: &std::path::Path,
        rel: &str,
    ) -> Result<(), FetchError> {
        self.git()
            .run(
                Some(work_tree),
                &["add", "--force", "--intent-to-add", "--", rel],
            )
            .map(|_| ())
    }

    /// The tree of a locked input found in the fetch cache by its NAR hash. Only for inputs
    /// that carry everything their lock records (Nix's `hasAllInfo`): a NAR hash, plus for git
    /// the revision, `lastModified` and (unless shallow) `revCount`, for GitHub-like inputs
    /// the revision and `lastModified`.
    fn already_here(&self, input: &Input) -> Result<Option<Fetched>, FetchError> {
        let all_info = match input.input_type() {
            "git" => {
                input.get_str("rev").is_some()
                    && input.get_int("lastModified").is_some()
                    && (input.get_bool("shallow") == Some(true)
                        || input.get_int("revCount").is_some())
            }
            "github" | "gitlab" | "sourcehut" => {
                input.get_str("rev").is_some() && input.get_int("lastModified").is_some()
            }
            "tarball" => true,
            _ => false,
        };
        let Some(nar_hash) = input.nar_hash()?.filter(|_| all_info) else {
            return Ok(None);
        };
        let found = self.cache.find_nar_hash(&nar_hash).or_else(|| {
            let lookup = self.settings.store.as_ref()?;
            let path = self
                .store_dir()
                .make_fixed_output_path(
                    input.name(),
                    FileIngestionMethod::Recursive,
                    &nar_hash,
                    [],
                    false,
                )
                .ok()?;
            (lookup.0)(&path)
        });
        let Some((root, nar_size)) = found else {
            return Ok(None);
        };
        let tree = SourceTree::from_known_hash(
            &root,
            None,
            input.name(),
            self.store_dir(),
            nar_hash,
            nar_size,
        )?;
        Ok(Some(Fetched {
            input: input.clone(),
            tree,
        }))
    }

    /// Fetch a direct input with an absolute location.
    pub fn fetch(&self, input: &Input) -> Result<Fetched, FetchError> {
        self.fetch_in(input, None)
    }

    /// Fetch `input`; a relative `path` input is resolved inside `parent` (the tree of the
    /// flake that declares it).
    pub fn fetch_in(
        &self,
        input: &Input,
        parent: Option<&SourceTree>,
    ) -> Result<Fetched, FetchError> {
        if !input.is_direct() {
            return Err(FetchError::BadInput {
                input: input.to_string(),
                reason: "an indirect input must be resolved through a registry first".into(),
            });
        }
        let relative = input.input_type() == "path"
            && input.get_str("path").is_some_and(|p| !p.starts_with('/'));
        if !relative && let Some(done) = self.memo.lock().expect("memo lock").get(input) {
            return Ok(done.clone());
        }
        // As Nix does: a locked input whose tree is already here is used without fetching.
        if let Some(done) = self.already_here(input)? {
            self.memo
                .lock()
                .expect("memo lock")
                .insert(input.clone(), done.clone());
            return Ok(done);
        }
        let (tree, locked) = match input.input_type() {
            "path" => crate::path::fetch(self, input, parent)?,
            "git" => crate::git::fetch(self, input)?,
            "tarball" => crate::tarball::fetch_tarball(self, input)?,
            "file" => crate::tarball::fetch_file(self, input)?,
            "github" | "gitlab" | "sourcehut" => crate::github::fetch(self, input)?,
            _ => {
                return Err(FetchError::UnsupportedInput {
                    input: input.to_string(),
                });
            }
        };
        let got = tree.nar_hash().to_sri();
        if let Some(expected) = input.nar_hash()?
            && expected.to_sri() != got
        {
            return Err(FetchError::NarHashMismatch {
                input: input.to_string(),
                expected: expected.to_sri(),
                got,
            });
        }
        for attr in ["revCount", "lastModified"] {
            if let Some(expected) = input.get_int(attr)
                && locked.get_int(attr) != Some(expected)
            {
                return Err(FetchError::AttrMismatch {
                    input: input.to_string(),
                    attr: if attr == "revCount" {
                        "revCount"
                    } else {
                        "lastModified"
                    },
                    expected,
                });
            }
        }
        if tree.tracked().is_none() && tree.method() == FileIngestionMethod::Recursive {
            self.cache.index_nar_hash(tree.nar_hash(), tree.root());
        }
        let done = Fetched {
            input: locked.with("narHash", got),
            tree,
        };
        if !relative {
            self.memo
                .lock()
                .expect("memo lock")
                .insert(input.clone(), done.clone());
        }
        Ok(done)
    }
}
