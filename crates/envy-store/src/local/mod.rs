//! envy's local store: a store directory of read-only paths plus a state directory
//!
//! ```text
//! <state>/
//!   db-v1.sqlite        valid paths, references, derivation outputs (WAL)
//!   gc.lock             exclusive during gc, shared while paths become valid
//!   locks/<hash>.lock   one per store path being created or deleted
//!   temproots/<pid>-<n> paths a live process uses (flocked by their owner)
//!   roots/<name>        direct gc roots (symlinks into the store)
//!   roots/auto/<hash>   indirect gc roots (symlinks to symlinks elsewhere)
//! <store>/
//!   .envy-store         marks the directory as envy's
//!   .tmp-<pid>-<n>      contents being prepared (removed once their process is gone)
//!   <hash>-<name>       store paths, valid only when registered in the database
//! ```
//!
//! A path becomes valid only after its contents are complete and canonical at their final
//! place, in one database transaction: a crash at any moment leaves at worst an unregistered
//! path or a temporary, which the next creation of that path (under its lock) or gc deletes.

mod config;
mod db;
mod error;
mod fs_ops;
mod gc;
mod lock;
mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use config::{ConfiguredStore, StoreConfig};
pub use error::StoreError;
pub use fs_ops::{CANONICAL_MTIME, canonicalise, delete_path};
pub use gc::{GcOptions, GcReport};
pub use lock::{GcLock, PathLock};
pub use verify::VerifyReport;

use self::db::Db;
use self::error::io_err;
use crate::content_address::{ContentAddress, ContentAddressMethod, FileIngestionMethod};
use crate::derivation::Derivation;
use crate::hash::{Hash, HashAlgo, HashSink, Hasher};
use crate::nar::{self, NarError, PathFilter};
use crate::path_info::{ValidPathInfo, now};
use crate::store_dir::StoreDir;
use crate::store_path::StorePath;
use crate::sys;

/// File marking a store directory as envy's.
const MARKER: &str = ".envy-store";
/// Prefix of temporaries inside the store directory.
const TMP_PREFIX: &str = ".tmp-";
/// NARs up to this size are held in memory while adding, so the source is read once.
const NAR_BUFFER_LIMIT: usize = 64 << 20;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// envy's local store. Cheap to share between threads.
pub struct LocalStore {
    store_dir: StoreDir,
    state_dir: PathBuf,
    db: Mutex<Db>,
    temp_roots: Mutex<Option<File>>,
}

impl LocalStore {
    /// Open (creating if needed) the store described by `config`. Refuses a directory that
    /// already holds files envy did not put there — such as Nix's `/nix/store`.
    pub fn open(config: &StoreConfig) -> Result<LocalStore, StoreError> {
        let not_envy = |reason: String| StoreError::NotEnvyStore {
            dir: config.store_dir.clone(),
            reason,
        };
        let store_dir = StoreDir::new(&config.store_dir).map_err(|e| not_envy(e.to_string()))?;
        let dir = store_dir.as_path();
        let marker = dir.join(MARKER);
        if !marker.exists() {
            if store_dir.as_str() == crate::store_dir::NIX_STORE_DIR
                && Path::new("/nix/var/nix/db").exists()
            {
                return Err(not_envy(
                    "it is Nix's store (`/nix/var/nix/db` exists)".to_owned(),
                ));
            }
            // Another envy creating this store at the same moment writes the marker first:
            // that is not a foreign file.
            if let Ok(entries) = std::fs::read_dir(dir)
                && let Some(name) = entries
                    .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .map(Result::unwrap_or_default)
                    .find(|name| name != MARKER)
                && !marker.exists()
            {
                return Err(not_envy(format!(
                    "it already holds `{name}` and is not marked as envy's (is it Nix's store?)"
                )));
            }
            fs_err::create_dir_all(dir).map_err(io_err(dir))?;
            fs_err::write(&marker, b"envy store v1\n").map_err(io_err(&marker))?;
        }
        let state = &config.state_dir;
        for sub in ["locks", "temproots", "roots/auto"] {
            fs_err::create_dir_all(state.join(sub)).map_err(io_err(state.join(sub)))?;
        }
        let db = Db::open(&state.join("db-v1.sqlite"), store_dir.as_str())?;
        Ok(LocalStore {
            store_dir,
            state_dir: state.clone(),
            db: Mutex::new(db),
            temp_roots: Mutex::new(None),
        })
    }

    /// Whether a store has been created at `config` (without creating one).
    #[must_use]
    pub fn exists(config: &StoreConfig) -> bool {
        config.store_dir.join(MARKER).exists() && config.state_dir.join("db-v1.sqlite").exists()
    }

    /// The store directory.
    #[must_use]
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// The state directory (database, roots, locks). Other areas keep their own versioned
    /// subdirectories here (the builder's logs).
    #[must_use]
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The file-system path of a store path.
    #[must_use]
    pub fn real_path(&self, path: &StorePath) -> PathBuf {
        self.store_dir.full_path(path)
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // --- queries -------------------------------------------------------------------------

    /// Whether `path` is valid (registered; its contents complete).
    pub fn is_valid(&self, path: &StorePath) -> Result<bool, StoreError> {
        self.db().is_valid(path)
    }

    /// What the store knows about `path`, if it is valid.
    pub fn query_path_info(&self, path: &StorePath) -> Result<Option<ValidPathInfo>, StoreError> {
        self.db().query_info(path)
    }

    /// Like `query_path_info`, failing for an invalid path.
    pub fn path_info(&self, path: &StorePath) -> Result<ValidPathInfo, StoreError> {
        self.query_path_info(path)?
            .ok_or_else(|| StoreError::InvalidPath {
                path: self.store_dir.print(path),
            })
    }

    /// Valid paths that refer to `path`.
    pub fn query_referrers(&self, path: &StorePath) -> Result<BTreeSet<StorePath>, StoreError> {
        self.db().referrers(path)
    }

    /// The valid path whose hash part is `hash_part`.
    pub fn query_path_from_hash_part(
        &self,
        hash_part: &str,
    ) -> Result<Option<StorePath>, StoreError> {
        self.db().path_from_hash_part(hash_part)
    }

    /// Every valid path, sorted.
    pub fn all_valid_paths(&self) -> Result<Vec<StorePath>, StoreError> {
        self.db().all_valid()
    }

    /// The closure of `paths`: them and everything they refer to, transitively.
    pub fn closure<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<BTreeSet<StorePath>, StoreError> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<StorePath> = paths.into_iter().cloned().collect();
        let db = self.db();
        while let Some(p) = todo.pop() {
            if seen.contains(&p) {
                continue;
            }
            let info = db.query_info(&p)?.ok_or_else(|| StoreError::InvalidPath {
                path: self.store_dir.print(&p),
            })?;
            todo.extend(info.references.into_iter().filter(|r| !seen.contains(r)));
            seen.insert(p);
        }
        Ok(seen)
    }

    /// The closure of `paths` in dependency order (references before referrers).
    pub fn topo_closure<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<Vec<ValidPathInfo>, StoreError> {
        let closure = self.closure(paths)?;
        let mut infos: BTreeMap<StorePath, ValidPathInfo> = BTreeMap::new();
        for p in &closure {
            infos.insert(p.clone(), self.path_info(p)?);
        }
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        fn visit(
            p: &StorePath,
            infos: &BTreeMap<StorePath, ValidPathInfo>,
            done: &mut BTreeSet<StorePath>,
            order: &mut Vec<ValidPathInfo>,
        ) {
            if !done.insert(p.clone()) {
                return;
            }
            let info = &infos[p];
            for r in info.references_without_self() {
                visit(r, infos, done, order);
            }
            order.push(info.clone());
        }
        for p in &closure {
            visit(p, &infos, &mut done, &mut order);
        }
        Ok(order)
    }

    /// The outputs recorded for a derivation written to this store.
    pub fn query_derivation_outputs(
        &self,
        drv_path: &StorePath,
    ) -> Result<BTreeMap<String, StorePath>, StoreError> {
        self.db().drv_outputs(drv_path)
    }

    // --- locks and roots -----------------------------------------------------------------

    fn lock_file(&self, path: &StorePath) -> PathBuf {
        self.state_dir
            .join("locks")
            .join(format!("{}.lock", path.hash_part()))
    }

    /// Wait for and take the lock on `path` (held while creating or deleting it).
    pub fn lock_path(&self, path: &StorePath) -> Result<PathLock, StoreError> {
        Ok(PathLock::acquire(&self.lock_file(path), true)?.expect("blocking lock"))
    }

    /// Take the lock on `path` if nobody holds it.
    pub fn try_lock_path(&self, path: &StorePath) -> Result<Option<PathLock>, StoreError> {
        PathLock::acquire(&self.lock_file(path), false)
    }

    /// Lock several paths, in a fixed order so that processes never deadlock.
    pub fn lock_paths<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<Vec<PathLock>, StoreError> {
        let sorted: BTreeSet<&StorePath> = paths.into_iter().collect();
        sorted.into_iter().map(|p| self.lock_path(p)).collect()
    }

    /// Take the gc lock: exclusive for a collection, shared to keep gc out meanwhile.
    pub fn gc_lock(&self, exclusive: bool) -> Result<GcLock, StoreError> {
        GcLock::acquire(&self.state_dir.join("gc.lock"), exclusive)
    }

    /// Protect `path` from gc for as long as this process lives.
    pub fn add_temp_root(&self, path: &StorePath) -> Result<(), StoreError> {
        let _gc = self.gc_lock(false)?;
        self.add_temp_root_locked(path)
    }

    fn add_temp_root_locked(&self, path: &StorePath) -> Result<(), StoreError> {
        let mut slot = self
            .temp_roots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            let name = format!(
                "{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            let file_path = self.state_dir.join("temproots").join(name);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file_path)
                .map_err(io_err(&file_path))?;
            sys::flock(&file, true, true).map_err(io_err(&file_path))?;
            *slot = Some(file);
        }
        let file = slot.as_mut().expect("just set");
        file.write_all(format!("{}\n", path.base_name()).as_bytes())
            .map_err(io_err(self.state_dir.join("temproots")))
    }

    /// Make `link` a symlink to `path` and register it as an indirect gc root: `path` stays
    /// alive for as long as `link` points to it.
    pub fn add_root(&self, link: &Path, path: &StorePath) -> Result<(), StoreError> {
        if !self.is_valid(path)? {
            return Err(StoreError::InvalidPath {
                path: self.store_dir.print(path),
            });
        }
        let link = std::path::absolute(link).map_err(io_err(link))?;
        if let Some(parent) = link.parent() {
            fs_err::create_dir_all(parent).map_err(io_err(parent))?;
        }
        replace_symlink(&self.real_path(path), &link)?;
        self.add_indirect_root(&link)
    }

    /// Register an existing symlink `link` (anywhere) as an indirect gc root.
    pub fn add_indirect_root(&self, link: &Path) -> Result<(), StoreError> {
        let link = std::path::absolute(link).map_err(io_err(link))?;
        let key = Hash::sha256(link.as_os_str().as_encoded_bytes()).compress(20);
        let auto = self
            .state_dir
            .join("roots/auto")
            .join(crate::nix32::encode(&key));
        replace_symlink(&link, &auto)
    }

    /// A direct gc root named `name` (`<state>/roots/<name>`) pointing at `path`.
    pub fn add_direct_root(&self, name: &str, path: &StorePath) -> Result<(), StoreError> {
        let link = self.state_dir.join("roots").join(name);
        replace_symlink(&self.real_path(path), &link)
    }

    /// Remove the direct gc root `name`.
    pub fn remove_direct_root(&self, name: &str) -> Result<(), StoreError> {
        let link = self.state_dir.join("roots").join(name);
        match fs_err::remove_file(&link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&link)(e)),
            _ => Ok(()),
        }
    }

    // --- making paths valid ----------------------------------------------------------------

    fn temp_path(&self) -> PathBuf {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.store_dir
            .as_path()
            .join(format!("{TMP_PREFIX}{}-{n}", std::process::id()))
    }

    /// Register paths whose contents are complete and canonical at their final place (the
    /// builder's outputs, via `finalize_output`). They become temporary roots of this process.
    pub fn register_valid_paths(&self, infos: &[ValidPathInfo]) -> Result<(), StoreError> {
        let _gc = self.gc_lock(false)?;
        self.db().register(infos)?;
        for info in infos {
            self.add_temp_root_locked(&info.path)?;
        }
        Ok(())
    }

    /// Canonicalise a finished output in place and compute its info (NAR hash and size),
    /// ready for `register_valid_paths`. The caller holds the path's lock.
    pub fn finalize_output(
        &self,
        path: &StorePath,
        references: BTreeSet<StorePath>,
        deriver: Option<StorePath>,
        ca: Option<ContentAddress>,
    ) -> Result<ValidPathInfo, StoreError> {
        let real = self.real_path(path);
        canonicalise(&real)?;
        let (nar_hash, nar_size) =
            nar::nar_hash_path(&real).map_err(|source| self.nar_err(path, source))?;
        Ok(ValidPathInfo {
            deriver,
            references,
            ca,
            ultimate: true,
            ..ValidPathInfo::new(path.clone(), nar_hash, nar_size)
        })
    }

    /// Delete `path` from disk if it is there but not valid (a leftover of an interrupted
    /// creation). The caller holds the path's lock.
    pub fn delete_invalid_path(&self, path: &StorePath) -> Result<(), StoreError> {
        if self.is_valid(path)? {
            return Err(StoreError::PathIsValid {
                path: self.store_dir.print(path),
            });
        }
        delete_path(&self.real_path(path))
    }

    fn nar_err(&self, path: &StorePath, source: NarError) -> StoreError {
        StoreError::Nar {
            path: self.store_dir.print(path),
            source,
        }
    }

    /// Move prepared contents at `tmp` to `info.path` and register them, unless the path
    /// became valid meanwhile (then `tmp` is discarded).
    fn install(
        &self,
        tmp: &Path,
        info: ValidPathInfo,
        canonical: bool,
    ) -> Result<ValidPathInfo, StoreError> {
        let _lock = self.lock_path(&info.path)?;
        if let Some(existing) = self.query_path_info(&info.path)? {
            delete_path(tmp)?;
            return Ok(existing);
        }
        let real = self.real_path(&info.path);
        delete_path(&real)?;
        if !canonical {
            canonicalise(tmp)?;
        }
        fs_err::rename(tmp, &real).map_err(io_err(&real))?;
        self.register_valid_paths(std::slice::from_ref(&info))?;
        Ok(info)
    }

    /// Add a file or tree to the store, as `nix-store --add` (recursive) or
    /// `nix-store --add-fixed sha256` (flat, regular files only) do. `filter` leaves entries
    /// out (recursive only).
    pub fn add_path(
        &self,
        src: &Path,
        name: &str,
        method: FileIngestionMethod,
        filter: Option<&mut PathFilter<'_>>,
    ) -> Result<ValidPathInfo, StoreError> {
        match method {
            FileIngestionMethod::Recursive => self.add_recursive(src, name, filter),
            FileIngestionMethod::Flat => self.add_flat(src, name),
        }
    }

    fn add_recursive(
        &self,
        src: &Path,
        name: &str,
        mut filter: Option<&mut PathFilter<'_>>,
    ) -> Result<ValidPathInfo, StoreError> {
        let src_err = |source| StoreError::Nar {
            path: src.display().to_string(),
            source,
        };
        // One read of the source: archive into memory while hashing (up to a limit).
        // Hashing runs on another thread while this one reads the tree.
        let mut sink = TeeSink {
            hash: crate::pipe::PipeWriter::new(HashSink::new(HashAlgo::Sha256)),
            buf: Some(Vec::new()),
        };
        match filter.as_deref_mut() {
            Some(f) => nar::dump_path_filtered(src, &mut sink, f),
            None => nar::dump_path(src, &mut sink),
        }
        .map_err(src_err)?;
        let (nar_hash, nar_size) = sink
            .hash
            .finish()
            .map_err(|e| src_err(NarError::Write(e)))?
            .finish();
        let path = self
            .store_dir
            .make_fixed_output_path(name, FileIngestionMethod::Recursive, &nar_hash, [], false)
            .map_err(|source| StoreError::Name {
                path: src.to_owned(),
                source,
            })?;
        // Root first, then look: a gc between the two cannot take the path away.
        self.add_temp_root(&path)?;
        if let Some(info) = self.query_path_info(&path)? {
            return Ok(info);
        }
        let tmp = self.temp_path();
        let result = (|| {
            let canonical = match sink.buf {
                Some(buf) => {
                    unpack(buf.as_slice(), &tmp, nar_size).map_err(|s| self.nar_err(&path, s))?;
                    true
                }
                None => {
                    // Too big for memory: copy while hashing again, and insist on the same hash.
                    let mut again = HashSink::new(HashAlgo::Sha256);
                    nar::dump_and_copy(src, &tmp, &mut again, filter).map_err(src_err)?;
                    let (hash, _) = again.finish();
                    if hash != nar_hash {
                        return Err(StoreError::HashMismatch {
                            path: src.display().to_string(),
                            expected: nar_hash.to_string(),
                            got: hash.to_string(),
                        });
                    }
                    false
                }
            };
            let mut info = ValidPathInfo::new(path.clone(), nar_hash, nar_size);
            info.ca = Some(ContentAddress {
                method: ContentAddressMethod::Fixed(FileIngestionMethod::Recursive),
                hash: nar_hash,
            });
            self.install(&tmp, info, canonical)
        })();
        if result.is_err() {
            let _ = delete_path(&tmp);
        }
        result
    }

    fn add_flat(&self, src: &Path, name: &str) -> Result<ValidPathInfo, StoreError> {
        let contents = fs_err::read(src).map_err(io_err(src))?;
        let meta = fs_err::metadata(src).map_err(io_err(src))?;
        if !meta.is_file() {
            return Err(StoreError::UnsupportedFileType {
                path: src.to_owned(),
            });
        }
        let executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 != 0;
        let hash = Hash::sha256(&contents);
        let path = self
            .store_dir
            .make_fixed_output_path(name, FileIngestionMethod::Flat, &hash, [], false)
            .map_err(|source| StoreError::Name {
                path: src.to_owned(),
                source,
            })?;
        let ca = ContentAddress {
            method: ContentAddressMethod::Fixed(FileIngestionMethod::Flat),
            hash,
        };
        self.add_bytes(&path, &contents, executable, ca, BTreeSet::new())
    }

    fn add_bytes(
        &self,
        path: &StorePath,
        contents: &[u8],
        executable: bool,
        ca: ContentAddress,
        references: BTreeSet<StorePath>,
    ) -> Result<ValidPathInfo, StoreError> {
        self.add_temp_root(path)?;
        if let Some(info) = self.query_path_info(path)? {
            return Ok(info);
        }
        let mut sink = HashSink::new(HashAlgo::Sha256);
        nar::dump_bytes(contents, executable, &mut sink).map_err(|s| self.nar_err(path, s))?;
        let (nar_hash, nar_size) = sink.finish();
        let tmp = self.temp_path();
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map_err(io_err(&tmp))?;
            file.write_all(contents).map_err(io_err(&tmp))?;
            if executable {
                std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                    .map_err(io_err(&tmp))?;
            }
            drop(file);
            let mut info = ValidPathInfo::new(path.clone(), nar_hash, nar_size);
            info.ca = Some(ca);
            info.references = references;
            self.install(&tmp, info, false)
        })();
        if result.is_err() {
            let _ = delete_path(&tmp);
        }
        result
    }

    /// Add a text file (`builtins.toFile`, `.drv` files) that may refer to other store paths.
    pub fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        let hash = Hash::sha256(contents);
        let path = self
            .store_dir
            .make_text_path(name, &hash, references)
            .map_err(|source| StoreError::Name {
                path: PathBuf::from(name),
                source,
            })?;
        let ca = ContentAddress {
            method: ContentAddressMethod::Text,
            hash,
        };
        self.add_bytes(&path, contents, false, ca, references.clone())?;
        Ok(path)
    }

    /// Write a derivation as its `.drv` file and record its known output paths.
    pub fn write_derivation(&self, drv: &Derivation) -> Result<StorePath, StoreError> {
        let name = format!("{}.drv", drv.name);
        let path = self.add_text(&name, &drv.to_aterm(&self.store_dir), &drv.references())?;
        let outputs =
            drv.output_paths(&self.store_dir)
                .map_err(|source| StoreError::Derivation {
                    path: self.store_dir.print(&path),
                    source,
                })?;
        let known: BTreeMap<String, StorePath> = outputs
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        if !known.is_empty() {
            self.db().register_drv_outputs(&path, &known)?;
        }
        Ok(path)
    }

    /// Read a `.drv` file from the store.
    pub fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, StoreError> {
        let real = self.real_path(drv_path);
        let text = fs_err::read(&real).map_err(io_err(&real))?;
        let name = drv_path
            .name()
            .strip_suffix(".drv")
            .unwrap_or(drv_path.name());
        Derivation::parse(&self.store_dir, &text, name).map_err(|source| StoreError::Derivation {
            path: self.store_dir.print(drv_path),
            source,
        })
    }

    /// Unpack a NAR for `info.path` (substitution, `envy store copy --from`), checking it
    /// against `info`'s NAR hash and size before the path becomes valid. Its references must
    /// be valid already.
    pub fn import_nar(
        &self,
        info: &ValidPathInfo,
        nar_stream: impl Read,
    ) -> Result<(), StoreError> {
        self.add_temp_root(&info.path)?;
        if self.is_valid(&info.path)? {
            return Ok(());
        }
        for r in info.references_without_self() {
            if !self.is_valid(r)? {
                return Err(StoreError::MissingReference {
                    path: self.store_dir.print(&info.path),
                    reference: self.store_dir.print(r),
                });
            }
        }
        let tmp = self.temp_path();
        let result = (|| {
            let mut reader = HashingReader {
                inner: nar_stream,
                hasher: Hasher::new(info.nar_hash.algo()),
                len: 0,
            };
            unpack(&mut reader, &tmp, info.nar_size).map_err(|s| self.nar_err(&info.path, s))?;
            let got = reader.hasher.finish();
            if got != info.nar_hash {
                return Err(StoreError::HashMismatch {
                    path: self.store_dir.print(&info.path),
                    expected: info.nar_hash.to_string(),
                    got: got.to_string(),
                });
            }
            if reader.len != info.nar_size {
                return Err(StoreError::SizeMismatch {
                    path: self.store_dir.print(&info.path),
                    expected: info.nar_size,
                    got: reader.len,
                });
            }
            let mut info = info.clone();
            info.registration_time = now();
            info.ultimate = false;
            self.install(&tmp, info, true).map(|_| ())
        })();
        if result.is_err() {
            let _ = delete_path(&tmp);
        }
        result
    }

    /// Write the NAR of a valid path (a temporary root while this process lives).
    pub fn dump(&self, path: &StorePath, out: &mut impl Write) -> Result<(), StoreError> {
        self.add_temp_root(path)?;
        if !self.is_valid(path)? {
            return Err(StoreError::InvalidPath {
                path: self.store_dir.print(path),
            });
        }
        nar::dump_path(&self.real_path(path), out).map_err(|s| self.nar_err(path, s))
    }

    /// Add signatures to a valid path.
    pub fn add_signatures(
        &self,
        path: &StorePath,
        signatures: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        let mut info = self.path_info(path)?;
        info.signatures.extend(signatures.iter().cloned());
        self.db().register(&[info])
    }
}

/// NARs from this size on are unpacked with several threads; smaller ones are not worth the
/// threads' start.
const PARALLEL_UNPACK_FROM: u64 = 1 << 18;

/// Unpack a NAR of `size` bytes at `dest` in canonical form.
fn unpack(input: impl Read, dest: &Path, size: u64) -> Result<(), NarError> {
    if size >= PARALLEL_UNPACK_FROM {
        nar::restore_parallel(input, dest, true)
    } else {
        nar::parse(input, &mut nar::RestoreSink::canonical(dest))
    }
}

/// Replace `link` by a symlink to `target`, atomically.
fn replace_symlink(target: &Path, link: &Path) -> Result<(), StoreError> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = link.with_file_name(format!(
        ".{}.tmp-{}-{n}",
        link.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::os::unix::fs::symlink(target, &tmp).map_err(io_err(&tmp))?;
    fs_err::rename(&tmp, link).map_err(io_err(link))
}

/// Hashes the NAR while writing it, keeping a copy in memory up to `NAR_BUFFER_LIMIT`.
struct TeeSink {
    hash: crate::pipe::PipeWriter<HashSink>,
    buf: Option<Vec<u8>>,
}

impl Write for TeeSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.hash.write_all(data)?;
        if let Some(buf) = &mut self.buf {
            if buf.len() + data.len() > NAR_BUFFER_LIMIT {
                self.buf = None;
            } else {
                buf.extend_from_slice(data);
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes and counts what is read through it.
struct HashingReader<R: Read> {
    inner: R,
    hasher: Hasher,
    len: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
