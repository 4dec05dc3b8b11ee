//! Garbage collection: mark everything reachable from the gc roots (direct roots, indirect
//! roots whose links still point into the store, temporary roots of live processes, and roots
//! the caller adds) over references — and, as Nix's `keep-derivations`, the derivers of live
//! paths — then invalidate and delete the rest. A process using or making a path holds it as
//! a temporary root (added under the gc lock before it checks validity), so that is all gc
//! respects. Leftovers of interrupted work (unregistered paths nobody holds the lock of,
//! temporaries of dead processes) are deleted too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use super::error::{StoreError, io_err};
use super::fs_ops::{delete_path, delete_path_counting, disk_usage};
use super::{LocalStore, MARKER, TMP_PREFIX};
use crate::store_path::StorePath;
use crate::sys;

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Only report what would be freed.
    pub dry_run: bool,
    /// Extra roots (for example the environments of live shells).
    pub extra_roots: Vec<StorePath>,
}

/// What a collection freed (or would free).
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Valid paths deleted (or that would be), sorted.
    pub deleted: Vec<StorePath>,
    /// Bytes of file contents freed (or that would be).
    pub bytes_freed: u64,
    /// Leftovers removed: unregistered paths and stale temporaries (names in the store dir).
    pub leftovers: Vec<String>,
    pub dry_run: bool,
}

impl LocalStore {
    /// The gc roots: each live store path with where its rootedness comes from.
    pub fn find_roots(&self) -> Result<HashMap<StorePath, Vec<PathBuf>>, StoreError> {
        let mut roots: HashMap<StorePath, Vec<PathBuf>> = HashMap::new();
        let roots_dir = self.state_dir.join("roots");
        let add_link_target =
            |link: &std::path::Path,
             origin: PathBuf,
             roots: &mut HashMap<StorePath, Vec<PathBuf>>| {
                if let Ok(target) = std::fs::read_link(link)
                    && let Some(target) = target.to_str()
                    && let Ok((path, _)) = self.store_dir.parse_with_subpath(target)
                {
                    roots.entry(path).or_default().push(origin);
                }
            };
        for entry in std::fs::read_dir(&roots_dir).map_err(io_err(&roots_dir))? {
            let entry = entry.map_err(io_err(&roots_dir))?;
            if entry.file_name() == "auto" {
                continue;
            }
            add_link_target(&entry.path(), entry.path(), &mut roots);
        }
        let auto = roots_dir.join("auto");
        for entry in std::fs::read_dir(&auto).map_err(io_err(&auto))? {
            let entry = entry.map_err(io_err(&auto))?;
            let Ok(link) = std::fs::read_link(entry.path()) else {
                continue;
            };
            match std::fs::symlink_metadata(&link) {
                // The link the user kept is gone: so is the root.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let _ = fs_err::remove_file(entry.path());
                }
                _ => add_link_target(&link, link.clone(), &mut roots),
            }
        }
        let temp = self.state_dir.join("temproots");
        for entry in std::fs::read_dir(&temp).map_err(io_err(&temp))? {
            let entry = entry.map_err(io_err(&temp))?;
            let file_path = entry.path();
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&file_path)
            else {
                continue;
            };
            // Its owner holds it locked for life: if we can lock it, the owner is gone.
            if sys::flock(&file, true, false).map_err(io_err(&file_path))? {
                let _ = fs_err::remove_file(&file_path);
                continue;
            }
            for line in BufReader::new(file).lines() {
                let line = line.map_err(io_err(&file_path))?;
                if let Ok(path) = StorePath::from_base_name(line.trim()) {
                    roots.entry(path).or_default().push(file_path.clone());
                }
            }
        }
        Ok(roots)
    }

    /// Collect garbage (see the module documentation). Holds the gc lock throughout.
    pub fn collect_garbage(&self, options: &GcOptions) -> Result<GcReport, StoreError> {
        let _gc = self.gc_lock(true)?;
        let mut roots: Vec<StorePath> = self.find_roots()?.into_keys().collect();
        roots.extend(options.extra_roots.iter().cloned());
        let graph = self.db().graph()?;

        let mut live: HashSet<StorePath> = HashSet::new();
        let mark = |start: Vec<StorePath>, live: &mut HashSet<StorePath>| {
            let mut todo = start;
            while let Some(p) = todo.pop() {
                let Some((refs, deriver)) = graph.get(&p) else {
                    continue;
                };
                if !live.insert(p) {
                    continue;
                }
                todo.extend(refs.iter().filter(|r| !live.contains(*r)).cloned());
                if let Some(d) = deriver
                    && graph.contains_key(d)
                    && !live.contains(d)
                {
                    todo.push(d.clone());
                }
            }
        };
        mark(roots, &mut live);

        // Whatever a running process uses or makes is one of its temporary roots (added under
        // the gc lock, before it looks at validity), so the dead need no locks of their own.
        let mut dead: Vec<StorePath> = graph
            .keys()
            .filter(|p| !live.contains(*p))
            .cloned()
            .collect();
        dead.sort();

        let mut report = GcReport {
            dry_run: options.dry_run,
            ..GcReport::default()
        };
        if options.dry_run {
            report.bytes_freed = dead.iter().map(|p| disk_usage(&self.real_path(p))).sum();
            report.deleted = dead;
            return Ok(report);
        }
        // Invalid first, then gone: a crash in between leaves unregistered leftovers only.
        self.db().invalidate(&dead)?;
        for p in &dead {
            report.bytes_freed += delete_path_counting(&self.real_path(p))?;
        }
        report.deleted = dead;
        report.leftovers = self.delete_leftovers(&graph.keys().cloned().collect())?;
        Ok(report)
    }

    /// Delete unregistered store paths nobody is creating and temporaries of dead processes.
    fn delete_leftovers(&self, valid: &BTreeSet<StorePath>) -> Result<Vec<String>, StoreError> {
        let dir = self.store_dir.as_path();
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == MARKER {
                continue;
            }
            if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
                let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|pid| !sys::pid_alive(pid)) {
                    delete_path(&entry.path())?;
                    removed.push(name);
                }
                continue;
            }
            let Ok(path) = StorePath::from_base_name(&name) else {
                continue;
            };
            if valid.contains(&path) {
                continue;
            }
            if let Some(_lock) = self.try_lock_path(&path)?
                && !self.is_valid(&path)?
            {
                delete_path(&entry.path())?;
                removed.push(name);
            }
        }
        removed.sort();
        Ok(removed)
    }
}
