//! `envy gc`: free environment generations beyond the retention policy, every generation of
//! projects whose directory is gone, their GC roots, and orphaned cache files.
//!
//! Never freed: the current generation of a project that still exists, a generation a live
//! shell uses (see `cache/live.rs`; the shell running `gc` counts too), and the N newest of
//! each project (`--keep`, default 2: the current and one previous). `--older-than` keeps,
//! in addition, every generation younger than the given age.
//!
//! Freeing a generation removes its file, its cache keys, and its backend GC roots (for the
//! Nix backend, profile generation links: Nix's own `nix-collect-garbage` can then reclaim
//! the store paths). envy's own store, once it exists, is collected through
//! [`collect_store`], the seam the embedded store's gc plugs into.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::backend::GcRoot;
use crate::cache::live::Lease;
use crate::cache::{ProjectCache, now_unix};
use crate::hook::state::State;
use crate::util::dirs::Dirs;
use crate::util::fsutil;

/// What to keep.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Keep each project's `keep` newest generations.
    pub keep: usize,
    /// Also keep generations younger than this.
    pub older_than: Option<Duration>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            keep: 2,
            older_than: None,
        }
    }
}

/// One thing freed (or that would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freed {
    /// What it is, for people ("generation 3 of /p", "restore file").
    pub what: String,
    /// The file or directory.
    pub path: PathBuf,
    /// Bytes on disk.
    pub size: u64,
    /// Backend GC roots dropped with it.
    pub roots: Vec<GcRoot>,
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub freed: Vec<Freed>,
}

impl Report {
    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.freed.iter().map(|f| f.size).sum()
    }

    /// Total GC roots.
    pub fn roots(&self) -> usize {
        self.freed.iter().map(|f| f.roots.len()).sum()
    }
}

/// Generations in use by live shells: `(project key, generation)`, and their restore ids.
struct InUse {
    generations: BTreeSet<(String, u64)>,
    restores: BTreeSet<String>,
}

fn in_use(dirs: &Dirs, dry_run: bool) -> Result<InUse> {
    let mut generations = BTreeSet::new();
    let mut restores = BTreeSet::new();
    for (lease, alive) in Lease::all(dirs) {
        if alive {
            generations.insert((lease.project_key.clone(), lease.generation));
            restores.insert(lease.restore.clone());
        } else if !dry_run {
            Lease::remove(dirs, lease.pid)?;
        }
    }
    // The shell that runs `envy gc` uses what its own state names, lease or not.
    if let Some(state) = std::env::var(crate::env::vars::__ENVY_STATE)
        .ok()
        .and_then(|s| State::decode(&s))
        && let Some(loaded) = state.loaded
    {
        generations.insert((crate::project::key_for_path(&state.root), loaded.generation));
        restores.insert(loaded.restore);
    }
    Ok(InUse {
        generations,
        restores,
    })
}

/// Run gc with `policy`; with `dry_run`, only report.
pub fn run(dirs: &Dirs, policy: &Policy, dry_run: bool) -> Result<Report> {
    let in_use = in_use(dirs, dry_run)?;
    let mut report = Report::default();
    for dir in fsutil::list_dir(&dirs.env_dir()) {
        if !dir.is_dir() {
            continue;
        }
        let key = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match ProjectCache::from_dir(dir.clone()) {
            Some(cache) => collect_project(&cache, &key, policy, &in_use, dry_run, &mut report)?,
            None => free_path(
                &dir,
                "cache directory without a project".to_string(),
                Vec::new(),
                dry_run,
                &mut report,
            )?,
        }
    }
    collect_orphans(dirs, &in_use, dry_run, &mut report)?;
    collect_store(dirs, dry_run, &mut report)?;
    Ok(report)
}

fn collect_project(
    cache: &ProjectCache,
    key: &str,
    policy: &Policy,
    in_use: &InUse,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    let _lock = cache.lock()?;
    let gone = !cache.root().is_dir();
    let numbers = cache.generation_numbers();
    let current = cache.current()?.map(|p| p.generation);
    let live = |n: u64| in_use.generations.contains(&(key.to_string(), n));
    let newest: BTreeSet<u64> = numbers.iter().rev().take(policy.keep).copied().collect();
    let now = now_unix();

    let mut kept_roots: BTreeSet<PathBuf> = BTreeSet::new();
    let mut doomed = Vec::new();
    for &n in &numbers {
        let generation = cache.load_generation(n).ok();
        let young = match (policy.older_than, &generation) {
            (Some(age), Some(g)) => now.saturating_sub(g.created) < age.as_secs(),
            _ => false,
        };
        let keep = live(n) || (!gone && (Some(n) == current || newest.contains(&n) || young));
        match (keep, generation) {
            (true, Some(g)) => kept_roots.extend(g.roots.iter().map(|r| r.path.clone())),
            (true, None) => {}
            (false, g) => doomed.push((n, g.map(|g| g.roots).unwrap_or_default())),
        }
    }

    let root = cache.root().display().to_string();
    if gone && doomed.len() == numbers.len() {
        // Everything goes: the roots first (they live inside the directory), then the rest.
        let roots: Vec<GcRoot> = doomed.into_iter().flat_map(|(_, r)| r).collect();
        let what = format!("all generations of `{root}` (directory gone)");
        return free_path(cache.dir(), what, roots, dry_run, report);
    }
    for (n, roots) in doomed {
        let roots: Vec<GcRoot> = roots
            .into_iter()
            .filter(|r| !kept_roots.contains(&r.path))
            .collect();
        free_path(
            &cache.generation_path(n),
            format!("generation {n} of `{root}`"),
            roots,
            dry_run,
            report,
        )?;
        if !dry_run {
            cache.remove_builds_for(n)?;
        }
    }
    // Roots no kept generation refers to (a build that matched an existing environment, or
    // a generation deleted by hand), and profile links left dangling.
    let freed_roots: BTreeSet<PathBuf> = report
        .freed
        .iter()
        .flat_map(|f| f.roots.iter().map(|r| r.path.clone()))
        .collect();
    for path in fsutil::list_dir(&cache.roots_dir()) {
        if kept_roots.contains(&path) || freed_roots.contains(&path) {
            continue;
        }
        if is_generation_link(&path) {
            let gc_root = GcRoot {
                backend: "nix".to_string(),
                path: path.clone(),
                target: None,
            };
            free_path(
                &path,
                format!("unused GC root of `{root}`"),
                vec![gc_root],
                dry_run,
                report,
            )?;
        } else if std::fs::metadata(&path).is_err() {
            free_path(
                &path,
                format!("dangling profile link of `{root}`"),
                Vec::new(),
                dry_run,
                report,
            )?;
        }
    }
    Ok(())
}

/// `<profile>-<n>-link`, the form Nix gives profile generations.
fn is_generation_link(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix("-link"))
        .and_then(|n| n.rsplit_once('-'))
        .is_some_and(|(_, num)| num.parse::<u64>().is_ok())
}

fn collect_orphans(dirs: &Dirs, in_use: &InUse, dry_run: bool, report: &mut Report) -> Result<()> {
    for path in fsutil::list_dir(&dirs.restore_dir()) {
        let id = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !in_use.restores.contains(&id) {
            free_path(
                &path,
                "restore file no live shell uses".to_string(),
                Vec::new(),
                dry_run,
                report,
            )?;
        }
    }
    // Long watch lists are rewritten whenever a shell needs one; a shell whose file is gone
    // just takes the slow path once. Keep a day's worth.
    let day = 24 * 60 * 60;
    for path in fsutil::list_dir(&dirs.watch_dir()) {
        let old = fs_err::metadata(&path)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > day);
        if old {
            free_path(
                &path,
                "watch list no shell used for a day".to_string(),
                Vec::new(),
                dry_run,
                report,
            )?;
        }
    }
    Ok(())
}

/// The seam for envy's own store: the embedded store's gc (unreachable store paths, given
/// the roots above) is called from here. The Nix backend's store belongs to Nix, so there is
/// nothing to do for it beyond dropping roots.
pub fn collect_store(_dirs: &Dirs, dry_run: bool, report: &mut Report) -> Result<()> {
    // Only a store that exists is collected; `envy gc` never creates one.
    let Some(config) = envy_store::StoreConfig::from_env(None) else {
        return Ok(());
    };
    if !envy_store::LocalStore::exists(&config) {
        return Ok(());
    }
    let store = envy_store::LocalStore::open(&config)?;
    let options = envy_store::local::GcOptions {
        dry_run,
        ..Default::default()
    };
    let freed = store.collect_garbage(&options)?;
    if !freed.deleted.is_empty() {
        let n = freed.deleted.len();
        report.freed.push(Freed {
            what: format!(
                "{n} unreachable store path{} of envy's store",
                if n == 1 { "" } else { "s" }
            ),
            path: config.store_dir,
            size: freed.bytes_freed,
            roots: Vec::new(),
        });
    }
    Ok(())
}

fn free_path(
    path: &Path,
    what: String,
    roots: Vec<GcRoot>,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    let size = fsutil::disk_size(path);
    if !dry_run {
        for root in &roots {
            if let Some(backend) = crate::backend::for_root(root) {
                backend.release_root(root).map_err(|e| {
                    anyhow::anyhow!("cannot remove GC root `{}`: {e}", root.path.display())
                })?;
            }
        }
        match fs_err::symlink_metadata(path) {
            Ok(m) if m.is_dir() => fs_err::remove_dir_all(path)?,
            Ok(_) => fs_err::remove_file(path)?,
            Err(_) => {}
        }
    }
    report.freed.push(Freed {
        what,
        path: path.to_path_buf(),
        size,
        roots,
    });
    Ok(())
}

/// Parse `30d`, `12h`, `90m`, `45s`, `2w` (a number and a unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try `30d`, `12h`, `2w`)"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" | "" => 86400,
        "w" => 7 * 86400,
        _ => {
            return Err(format!(
                "unknown unit `{unit}` in `{text}` (use s, m, h, d or w)"
            ));
        }
    };
    Ok(Duration::from_secs(n * secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86400)
        );
        assert!(parse_duration("3y").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn generation_links() {
        assert!(is_generation_link(Path::new("/r/shell-default-3-link")));
        assert!(!is_generation_link(Path::new("/r/shell-default")));
    }
}
