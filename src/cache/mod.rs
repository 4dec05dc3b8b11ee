//! The environment cache: per project, built environments ("generations") and the cache keys
//! that select them, so re-entering an unchanged project costs no evaluation.
//!
//! The tree (see `dirs.rs` for the whole of envy's):
//!
//! ```text
//! env-v1/<project-key>/
//!   root  stamp  lock
//!   current              Pointer (postcard): the generation in use + the key it is valid for
//!   builds/<key-hex>     Pointer: every key ever built → its generation
//!   generations/<n>.env  Generation (postcard), immutable
//!   roots/               the backend's GC roots
//! ```
//!
//! A cache key is a sha256 over the watched inputs: each watched file's bytes, each watched
//! directory's listing, each watched environment variable's value, plus the backend, system
//! and devShell selection. Every rebuild that changes the environment adds a generation;
//! `rollback` points `current` at an older one. Writers hold `lock`; every file is written
//! atomically.

pub mod gc;
pub mod generation;
pub mod live;
pub mod restore;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

pub use generation::{Generation, Pointer};

use crate::backend::{GcRoot, ShellSelection};
use crate::env::record::{EnvRecord, WatchList};
use crate::project::Project;
use crate::trust::{Snapshot, read_regular_up_to};
use crate::util::dirs::Dirs;
use crate::util::fsutil::{self, FileLock};

/// What a cache key covers besides the watched inputs.
#[derive(Debug, Clone, Copy)]
pub struct KeyContext<'a> {
    /// The backend's name.
    pub backend: &'a str,
    /// The Nix system.
    pub system: &'a str,
    /// The devShell selection.
    pub selection: &'a ShellSelection,
    /// The environment evaluation sees (for watched variables).
    pub env: &'a BTreeMap<String, String>,
    /// Files whose bytes were read once for the trust decision and evaluated as read: the key
    /// covers those bytes, not what the files hold by the time the key is computed.
    pub pinned: &'a [Snapshot],
}

/// sha256 over everything `watch` names, as it is now, plus `ctx`.
pub fn cache_key(watch: &WatchList, ctx: &KeyContext<'_>) -> [u8; 32] {
    key_over(watch, ctx, None)
}

/// The key of a build that started at `started`: like [`cache_key`], except that a watched
/// file or directory changed since then counts as unknown, since the evaluation may have
/// read it before or after the change. Such a key matches no later lookup, so an edit made
/// during a build leads to exactly one more build, never to a stale environment keyed as
/// current.
pub fn cache_key_of_build(
    watch: &WatchList,
    ctx: &KeyContext<'_>,
    started: std::time::SystemTime,
) -> [u8; 32] {
    key_over(watch, ctx, Some(started))
}

/// Now, by the clock the kernel stamps file times with (`CLOCK_REALTIME_COARSE`, up to a tick
/// behind the real time): a file changed after this reads a time at or after it. A change in
/// the same tick before it counts as after it, which costs one rebuild at most.
pub fn file_clock_now() -> std::time::SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return std::time::SystemTime::now() - std::time::Duration::from_millis(20);
    }
    std::time::UNIX_EPOCH + std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Whether `path` (not followed if a link) changed at or after `since`.
fn changed_since(path: &Path, since: std::time::SystemTime) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let at = |secs: i64, nanos: i64| {
        std::time::UNIX_EPOCH
            + std::time::Duration::new(secs.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
    };
    at(meta.ctime(), meta.ctime_nsec()) >= since || at(meta.mtime(), meta.mtime_nsec()) >= since
}

/// A key field no file's bytes can equal: the input changed while it was being read.
const CHANGED_DURING_BUILD: &[u8] = b"\0envy: changed during the build\0";

fn key_over(
    watch: &WatchList,
    ctx: &KeyContext<'_>,
    since: Option<std::time::SystemTime>,
) -> [u8; 32] {
    use std::os::unix::ffi::OsStrExt;
    let unsettled = |path: &Path| since.is_some_and(|t| changed_since(path, t));
    let mut h = Sha256::new();
    let mut field = |bytes: Option<&[u8]>| match bytes {
        Some(b) => {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        }
        None => h.update(u64::MAX.to_le_bytes()),
    };
    field(Some(b"envy-env-v1"));
    field(Some(ctx.backend.as_bytes()));
    field(Some(ctx.system.as_bytes()));
    field(Some(ctx.selection.display().as_bytes()));
    for file in &watch.files {
        field(Some(file.as_os_str().as_bytes()));
        let pinned = ctx
            .pinned
            .iter()
            .flat_map(Snapshot::pins)
            .find(|(path, _)| path == file);
        match pinned {
            Some((_, bytes)) => field(bytes.as_deref()),
            // Not a git index: evaluation itself rewrites it (`git diff` refreshes its stat
            // data), so its times say nothing; a `git add` during a build is the one miss.
            None if !is_git_index(file) && unsettled(file) => {
                field(None);
                field(Some(CHANGED_DURING_BUILD));
            }
            // A git index: what matters is which paths are tracked, not the stat data git
            // refreshes in it on `git status`.
            None if is_git_index(file) => field(tracked_paths(file).as_deref()),
            // Only regular files: a watched FIFO or device must not hang the prompt.
            None => field(read_regular_up_to(file, u64::MAX).ok().flatten().as_deref()),
        }
    }
    for dir in &watch.dirs {
        field(Some(dir.as_os_str().as_bytes()));
        if unsettled(dir) {
            field(None);
            field(Some(CHANGED_DURING_BUILD));
            continue;
        }
        match std::fs::read_dir(dir) {
            Ok(entries) => {
                let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
                names.sort();
                field(Some(&(names.len() as u64).to_le_bytes()));
                for n in names {
                    field(Some(n.as_bytes()));
                }
            }
            Err(_) => field(None),
        }
    }
    for name in &watch.env {
        field(Some(name.as_bytes()));
        field(ctx.env.get(name).map(String::as_bytes));
    }
    h.finalize().into()
}

/// A build that failed, and on what (see [`ProjectCache::record_failure`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// The whole message, as the backend gave it.
    pub message: String,
    /// The key over `watch` when it failed.
    #[serde(with = "hex_key")]
    pub key: [u8; 32],
    /// What the failed evaluation read.
    pub watch: WatchList,
    /// When (seconds since the epoch).
    pub when: u64,
}

mod hex_key {
    pub fn serialize<S: serde::Serializer>(key: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::util::fsutil::hex(key))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        let bad = || serde::de::Error::custom("a key is 64 hex digits");
        if text.len() != 64 {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(key)
    }
}

/// Whether `file` is a git repository's index (`<git dir>/index`, beside its `HEAD`).
fn is_git_index(file: &Path) -> bool {
    file.file_name().is_some_and(|n| n == "index")
        && file.parent().is_some_and(|d| d.join("HEAD").is_file())
}

/// The tracked paths of the work tree whose index is `index` (`git ls-files -z`), or `None`.
fn tracked_paths(index: &Path) -> Option<Vec<u8>> {
    let git_dir = index.parent()?;
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["ls-files", "-z"])
        .env("GIT_INDEX_FILE", index)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// One project's cache directory.
#[derive(Debug, Clone)]
pub struct ProjectCache {
    dir: PathBuf,
    root: PathBuf,
}

/// A generation as `envy generations` lists it.
#[derive(Debug, Clone)]
pub struct GenerationInfo {
    /// The generation.
    pub generation: Generation,
    /// Size of its file in bytes.
    pub size: u64,
}

impl ProjectCache {
    /// The cache of `project` (nothing is created until written).
    pub fn new(dirs: &Dirs, project: &Project) -> Self {
        Self {
            dir: dirs.env_dir().join(project.key()),
            root: project.root().to_path_buf(),
        }
    }

    /// A cache directory found on disk (by `gc`), with the root recorded in it.
    pub fn from_dir(dir: PathBuf) -> Option<Self> {
        let root = fs_err::read_to_string(dir.join("root")).ok()?;
        Some(Self {
            dir,
            root: PathBuf::from(root.trim_end_matches('\n')),
        })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The project root this cache belongs to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The stamp file the hook watches (touched by allow/deny/use/reload/rollback).
    pub fn stamp_path(&self) -> PathBuf {
        self.dir.join("stamp")
    }

    /// Held by the one build of this project running in the background (`envy` hook's
    /// worker, `envy wait`).
    pub fn build_lock_path(&self) -> PathBuf {
        self.dir.join("build.lock")
    }

    /// The background worker's `<pid> <start time>` (see `hook::background`).
    pub fn build_pid_path(&self) -> PathBuf {
        self.dir.join("build.pid")
    }

    /// What the background worker is doing now (its progress phase).
    pub fn build_phase_path(&self) -> PathBuf {
        self.dir.join("build.phase")
    }

    /// Held by the project's file watcher for as long as it runs.
    pub fn watch_lock_path(&self) -> PathBuf {
        self.dir.join("watch.lock")
    }

    /// What the project's last file watcher did.
    pub fn watch_log_path(&self) -> PathBuf {
        self.dir.join("watch.log")
    }

    /// Recorded when a blocking build was interrupted (Ctrl-C), with its inputs.
    pub fn interrupted_path(&self) -> PathBuf {
        self.dir.join("interrupted")
    }

    /// The output of the last background build.
    pub fn build_log_path(&self) -> PathBuf {
        self.dir.join("build.log")
    }

    /// The last build's failure, while the inputs it failed on are unchanged.
    pub fn failure(&self, ctx: &KeyContext<'_>) -> Option<Failure> {
        let text = fs_err::read_to_string(self.dir.join("failure")).ok()?;
        let failure: Failure = serde_json::from_str(&text).ok()?;
        (cache_key(&failure.watch, ctx) == failure.key).then_some(failure)
    }

    /// Remember that building with these inputs failed with `message`: the hook shows it
    /// once and starts no new build until something it read changes.
    /// `started` is when the failed build started (see [`cache_key_of_build`]).
    pub fn record_failure(
        &self,
        message: &str,
        watch: WatchList,
        ctx: &KeyContext<'_>,
        started: std::time::SystemTime,
    ) -> Result<()> {
        let failure = Failure {
            message: message.to_string(),
            key: cache_key_of_build(&watch, ctx, started),
            watch,
            when: now_unix(),
        };
        fsutil::write_atomic(
            &self.dir.join("failure"),
            serde_json::to_string(&failure)?.as_bytes(),
        )
    }

    /// The last failure as recorded, whether or not its inputs changed since (`envy status`,
    /// the watcher).
    pub fn last_failure(&self) -> Option<Failure> {
        let text = fs_err::read_to_string(self.dir.join("failure")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Forget the last failure (a build succeeded).
    pub fn clear_failure(&self) -> Result<()> {
        match fs_err::remove_file(self.dir.join("failure")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Where the backend keeps GC roots for this project.
    pub fn roots_dir(&self) -> PathBuf {
        self.dir.join("roots")
    }

    /// Create the directory and its `root` file (idempotent).
    pub fn ensure(&self, dirs: &Dirs) -> Result<()> {
        dirs.ensure_cache_root()?;
        let root_file = self.dir.join("root");
        if !root_file.exists() {
            fsutil::write_atomic(&root_file, format!("{}\n", self.root.display()).as_bytes())?;
        }
        Ok(())
    }

    /// Take the project's lock (one writer at a time).
    pub fn lock(&self) -> Result<FileLock> {
        FileLock::acquire(&self.dir.join("lock"))
    }

    /// Touch the stamp so every shell in this project re-decides at its next prompt.
    pub fn touch_stamp(&self, dirs: &Dirs) -> Result<()> {
        self.ensure(dirs)?;
        fsutil::touch(&self.stamp_path())
    }

    /// The pointer in `current`, if any.
    pub fn current(&self) -> Result<Option<Pointer>> {
        read_postcard(&self.dir.join("current"))
    }

    /// Make `pointer` current.
    pub fn set_current(&self, pointer: &Pointer) -> Result<()> {
        fsutil::write_atomic(&self.dir.join("current"), &postcard::to_stdvec(pointer)?)
    }

    /// Find the generation for the inputs as they are now: `current` if its key still holds,
    /// else any earlier build with a matching key (which becomes current). A corrupt
    /// `current`, pointer or generation file is set aside (`<file>.corrupt`) with one line on
    /// stderr and treated as missing, so the next build heals the cache instead of every
    /// prompt repeating the error.
    pub fn lookup(&self, ctx: &KeyContext<'_>) -> Result<Option<(Pointer, Generation)>> {
        let current_path = self.dir.join("current");
        if let Some(current) = read_postcard_or_set_aside::<Pointer>(&current_path)?
            && cache_key(&current.watch, ctx) == current.key
            && let Some(generation) = self.load_generation_or_set_aside(current.generation)?
        {
            return Ok(Some((current, generation)));
        }
        let mut memo: Vec<(WatchList, [u8; 32])> = Vec::new();
        let builds = self.builds()?;
        for pointer in &builds {
            let key = match memo.iter().find(|(w, _)| *w == pointer.watch) {
                Some((_, k)) => *k,
                None => {
                    let k = cache_key(&pointer.watch, ctx);
                    memo.push((pointer.watch.clone(), k));
                    k
                }
            };
            if key == pointer.key
                && self.generation_path(pointer.generation).exists()
                && let Some(generation) = self.load_generation_or_set_aside(pointer.generation)?
            {
                self.set_current(pointer)?;
                return Ok(Some((pointer.clone(), generation)));
            }
        }
        Ok(None)
    }

    /// Generation `number`, or `None` when it is missing or corrupt (set aside).
    fn load_generation_or_set_aside(&self, number: u64) -> Result<Option<Generation>> {
        read_postcard_or_set_aside(&self.generation_path(number))
    }

    /// Every `builds/` pointer, newest generation first (corrupt ones set aside).
    pub fn builds(&self) -> Result<Vec<Pointer>> {
        let mut out = Vec::new();
        for path in fsutil::list_dir(&self.dir.join("builds")) {
            if let Some(p) = read_postcard_or_set_aside::<Pointer>(&path)? {
                out.push(p);
            }
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.generation));
        Ok(out)
    }

    /// Drop the `builds/` pointers for `generation` (gc).
    pub fn remove_builds_for(&self, generation: u64) -> Result<()> {
        for path in fsutil::list_dir(&self.dir.join("builds")) {
            if read_postcard::<Pointer>(&path)?.is_some_and(|p| p.generation == generation) {
                fs_err::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Store a fresh build. A record whose environment equals the current generation's
    /// reuses that generation (and its new roots are released); anything else becomes a new
    /// generation. Either way the key now points at it and it is current.
    pub fn add_build(
        &self,
        dirs: &Dirs,
        key: [u8; 32],
        selection: &ShellSelection,
        backend: &dyn crate::backend::Backend,
        record: EnvRecord,
        roots: Vec<GcRoot>,
    ) -> Result<Pointer> {
        self.ensure(dirs)?;
        let watch = record.watch.clone();
        let reuse = match self.current()? {
            Some(cur) => self
                .load_generation(cur.generation)
                .ok()
                .filter(|g| g.record.env_hash() == record.env_hash() && g.selection == *selection),
            None => None,
        };
        let number = match reuse {
            Some(existing) => {
                for root in roots.iter().filter(|r| !existing.roots.contains(r)) {
                    let _ = backend.release_root(root);
                }
                existing.number
            }
            None => {
                let number = self.generation_numbers().last().copied().unwrap_or(0) + 1;
                let generation = Generation {
                    number,
                    created: now_unix(),
                    backend: backend.name().to_string(),
                    selection: selection.clone(),
                    record,
                    roots,
                };
                fsutil::write_atomic(
                    &self.generation_path(number),
                    &postcard::to_stdvec(&generation)?,
                )?;
                number
            }
        };
        let pointer = Pointer {
            generation: number,
            key,
            watch,
        };
        fsutil::write_atomic(
            &self.dir.join("builds").join(fsutil::hex(&key)),
            &postcard::to_stdvec(&pointer)?,
        )?;
        self.set_current(&pointer)?;
        Ok(pointer)
    }

    /// `generations/<n>.env`.
    pub fn generation_path(&self, number: u64) -> PathBuf {
        self.dir.join("generations").join(format!("{number}.env"))
    }

    /// Read generation `number`.
    pub fn load_generation(&self, number: u64) -> Result<Generation> {
        read_postcard(&self.generation_path(number))?.with_context(|| {
            format!(
                "generation {number} of `{}` does not exist",
                self.root.display()
            )
        })
    }

    /// The numbers of every generation on disk, ascending.
    pub fn generation_numbers(&self) -> Vec<u64> {
        let mut out: Vec<u64> = fsutil::list_dir(&self.dir.join("generations"))
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".env")?.parse().ok())
            .collect();
        out.sort_unstable();
        out
    }

    /// Every generation with its size, ascending.
    pub fn generations(&self) -> Result<Vec<GenerationInfo>> {
        let mut out = Vec::new();
        for n in self.generation_numbers() {
            let path = self.generation_path(n);
            let size = fs_err::metadata(&path).map(|m| m.len()).unwrap_or(0);
            out.push(GenerationInfo {
                generation: self.load_generation(n)?,
                size,
            });
        }
        Ok(out)
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Read a postcard file; `None` when it does not exist.
fn read_postcard<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(bytes) = read_if_exists(path)? else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes).map(Some).with_context(|| {
        format!(
            "corrupt cache file `{}`\nhint: delete it; envy rebuilds what it needs",
            path.display()
        )
    })
}

/// A file's bytes, or `None` when it does not exist.
fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs_err::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// [`read_postcard`], but a file that does not decode is renamed to `<file>.corrupt` (kept
/// for inspection; `envy gc` does not need it) and reported once, as if it were missing.
fn read_postcard_or_set_aside<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(bytes) = read_if_exists(path)? else {
        return Ok(None);
    };
    match postcard::from_bytes(&bytes) {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".corrupt");
            let aside = PathBuf::from(aside);
            match fs_err::rename(path, &aside) {
                Ok(()) => eprintln!(
                    "envy: `{}` is corrupt ({e}); set aside as `{}`, rebuilding",
                    path.display(),
                    aside.display()
                ),
                Err(err) => eprintln!(
                    "envy: `{}` is corrupt ({e}) and cannot be set aside ({err}); rebuilding",
                    path.display()
                ),
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BackendError, BuildOutput, BuildRequest};
    use crate::env::record::Variable;
    use crate::util::progress::ProgressSink;

    struct Fake;
    impl crate::backend::Backend for Fake {
        fn name(&self) -> &'static str {
            "fake"
        }
        fn build(
            &self,
            _: &BuildRequest<'_>,
            _: &dyn ProgressSink,
        ) -> Result<BuildOutput, BackendError> {
            unreachable!()
        }
    }

    fn setup() -> (tempfile::TempDir, Dirs, Project, ProjectCache) {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(tmp.path().join("c"), tmp.path().join("d"));
        let root = tmp.path().join("p");
        fs_err::create_dir_all(&root).unwrap();
        fs_err::write(root.join("flake.nix"), "one").unwrap();
        let project = Project::at(root);
        let cache = ProjectCache::new(&dirs, &project);
        (tmp, dirs, project, cache)
    }

    fn record(project: &Project, foo: &str) -> EnvRecord {
        let mut r = EnvRecord::default();
        r.variables
            .insert("FOO".into(), Variable::Exported(foo.into()));
        r.watch.files = vec![project.flake_nix(), project.flake_lock()];
        r
    }

    #[test]
    fn lookup_follows_file_changes_and_reuses_earlier_builds() {
        let (_tmp, dirs, project, cache) = setup();
        let sel = ShellSelection::default_shell();
        let env = BTreeMap::new();
        let ctx = KeyContext {
            backend: "fake",
            system: "x",
            selection: &sel,
            env: &env,
            pinned: &[],
        };
        assert!(cache.lookup(&ctx).unwrap().is_none());

        let r1 = record(&project, "1");
        let p1 = cache
            .add_build(
                &dirs,
                cache_key(&r1.watch, &ctx),
                &sel,
                &Fake,
                r1.clone(),
                vec![],
            )
            .unwrap();
        assert_eq!(p1.generation, 1);
        assert_eq!(cache.lookup(&ctx).unwrap().unwrap().0.generation, 1);

        fs_err::write(project.flake_nix(), "two").unwrap();
        assert!(
            cache.lookup(&ctx).unwrap().is_none(),
            "edited flake.nix must miss"
        );
        let r2 = record(&project, "2");
        let p2 = cache
            .add_build(&dirs, cache_key(&r2.watch, &ctx), &sel, &Fake, r2, vec![])
            .unwrap();
        assert_eq!(p2.generation, 2);

        fs_err::write(project.flake_nix(), "one").unwrap();
        assert_eq!(
            cache.lookup(&ctx).unwrap().unwrap().0.generation,
            1,
            "reverting finds the old build"
        );
        assert_eq!(cache.current().unwrap().unwrap().generation, 1);
        assert_eq!(cache.generation_numbers(), [1, 2]);
    }

    #[test]
    fn corrupt_current_and_generation_files_are_set_aside_and_missed_once() {
        let (_tmp, dirs, project, cache) = setup();
        let sel = ShellSelection::default_shell();
        let env = BTreeMap::new();
        let ctx = KeyContext {
            backend: "fake",
            system: "x",
            selection: &sel,
            env: &env,
            pinned: &[],
        };
        let r = record(&project, "1");
        cache
            .add_build(&dirs, cache_key(&r.watch, &ctx), &sel, &Fake, r, vec![])
            .unwrap();
        assert!(cache.lookup(&ctx).unwrap().is_some());
        // A torn `current`: the builds/ pointer still finds the generation.
        fs_err::write(cache.dir.join("current"), b"\xff\xff\xff").unwrap();
        assert_eq!(cache.lookup(&ctx).unwrap().unwrap().0.generation, 1);
        assert!(cache.dir.join("current.corrupt").exists());
        // A corrupt generation: a miss (so the caller rebuilds), and no error after that.
        fs_err::write(cache.generation_path(1), b"\x01").unwrap();
        assert!(cache.lookup(&ctx).unwrap().is_none());
        assert!(!cache.generation_path(1).exists());
        assert!(cache.lookup(&ctx).unwrap().is_none());
        let r = record(&project, "1");
        let p = cache
            .add_build(&dirs, cache_key(&r.watch, &ctx), &sel, &Fake, r, vec![])
            .unwrap();
        assert_eq!(cache.lookup(&ctx).unwrap().unwrap().0, p);
    }

    #[test]
    fn an_identical_environment_is_not_a_new_generation() {
        let (_tmp, dirs, project, cache) = setup();
        let sel = ShellSelection::default_shell();
        let env = BTreeMap::new();
        let ctx = KeyContext {
            backend: "fake",
            system: "x",
            selection: &sel,
            env: &env,
            pinned: &[],
        };
        let r = record(&project, "same");
        cache
            .add_build(
                &dirs,
                cache_key(&r.watch, &ctx),
                &sel,
                &Fake,
                r.clone(),
                vec![],
            )
            .unwrap();
        fs_err::write(project.flake_nix(), "comment only").unwrap();
        let p = cache
            .add_build(&dirs, cache_key(&r.watch, &ctx), &sel, &Fake, r, vec![])
            .unwrap();
        assert_eq!(p.generation, 1);
        assert_eq!(cache.generation_numbers(), [1]);
        assert_eq!(cache.builds().unwrap().len(), 2);
    }

    /// Regression: a build's key covered the watched files as they were after the build, so
    /// an edit during the build was taken as built.
    #[test]
    fn a_build_key_does_not_vouch_for_a_file_changed_after_the_build_started() {
        let (_tmp, _dirs, project, _cache) = setup();
        let sel = ShellSelection::default_shell();
        let env = BTreeMap::new();
        let ctx = KeyContext {
            backend: "fake",
            system: "x",
            selection: &sel,
            env: &env,
            pinned: &[],
        };
        let watch = record(&project, "x").watch;
        let started = file_clock_now();
        fs_err::write(project.flake_nix(), "edited during the build").unwrap();
        assert_ne!(
            cache_key_of_build(&watch, &ctx, started),
            cache_key(&watch, &ctx),
            "an edit after the start must not look built"
        );
        // A build that starts a tick after the edit keys it as it is.
        let changed = fs_err::metadata(project.flake_nix())
            .unwrap()
            .modified()
            .unwrap();
        while file_clock_now() <= changed {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let later = file_clock_now();
        assert_eq!(
            cache_key_of_build(&watch, &ctx, later),
            cache_key(&watch, &ctx)
        );
    }

    #[test]
    fn key_covers_selection_and_watched_env() {
        let (_tmp, _dirs, project, _cache) = setup();
        let a = ShellSelection::default_shell();
        let b = ShellSelection {
            flake_ref: None,
            name: "ci".into(),
        };
        let mut env = BTreeMap::new();
        let mut w = record(&project, "x").watch;
        w.env = vec!["V".into()];
        let k = |sel, env: &BTreeMap<String, String>| {
            cache_key(
                &w,
                &KeyContext {
                    backend: "nix",
                    system: "s",
                    selection: sel,
                    env,
                    pinned: &[],
                },
            )
        };
        let base = k(&a, &env);
        assert_ne!(base, k(&b, &env));
        env.insert("V".into(), "1".into());
        assert_ne!(base, k(&a, &env));
    }
}
