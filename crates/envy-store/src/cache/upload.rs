//! Writing store paths to a binary cache (`envy store copy --to`): each path of the closure,
//! references first, as a compressed NAR under `nar/` and then its `.narinfo` (so a reader
//! never finds a `.narinfo` whose NAR is missing), signed when a secret key is given.

use std::io::{self, Write};

use super::compression::Compression;
use super::error::CacheError;
use super::signing::SecretKey;
use super::transport::temp_name;
use super::{BinaryCache, CacheEvent, CacheInfo, NarInfo, Progress};
use crate::hash::{HashAlgo, HashSink};
use crate::local::LocalStore;
use crate::path_info::ValidPathInfo;
use crate::store_path::StorePath;

/// How to write.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    pub compression: Compression,
    /// Sign each `.narinfo` with this key.
    pub secret_key: Option<SecretKey>,
}

/// What `copy_to_cache` did.
#[derive(Debug, Clone, Default)]
pub struct UploadReport {
    pub uploaded: Vec<StorePath>,
    /// Paths the cache had already.
    pub present: usize,
}

/// Writes to two sinks.
struct Tee<A: Write, B: Write>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

/// Copy the closures of `paths` into `cache`.
pub fn copy_to_cache(
    store: &LocalStore,
    cache: &BinaryCache,
    paths: &[StorePath],
    options: &UploadOptions,
    progress: Progress<'_>,
) -> Result<UploadReport, CacheError> {
    ensure_cache_info(store, cache)?;
    let closure = store.topo_closure(paths)?;
    let total = closure.len();
    let mut report = UploadReport::default();
    for (i, info) in closure.into_iter().enumerate() {
        if has_nar_info(cache, &info.path)? {
            progress(CacheEvent::Present { path: &info.path });
            report.present += 1;
            continue;
        }
        progress(CacheEvent::Uploading {
            path: &info.path,
            url: cache.url(),
        });
        upload_path(store, cache, &info, options)?;
        progress(CacheEvent::Done {
            path: &info.path,
            done: i + 1,
            total,
        });
        report.uploaded.push(info.path);
    }
    Ok(report)
}

/// Check that `cache` serves `store`'s store directory, writing its `nix-cache-info` first
/// when it has none (a new, empty cache).
pub(crate) fn ensure_cache_info(store: &LocalStore, cache: &BinaryCache) -> Result<(), CacheError> {
    let sd = store.store_dir();
    match cache.cache_info()? {
        Some(_) => cache.check_store_dir(sd),
        None => {
            let info = CacheInfo {
                store_dir: Some(sd.as_str().to_owned()),
                want_mass_query: false,
                priority: None,
            };
            cache.transport.put(
                "nix-cache-info",
                info.to_text().as_bytes(),
                "text/x-nix-cache-info",
            )
        }
    }
}

/// Whether the cache has `path`'s `.narinfo`.
pub(crate) fn has_nar_info(cache: &BinaryCache, path: &StorePath) -> Result<bool, CacheError> {
    cache
        .transport
        .exists(&format!("{}.narinfo", path.hash_part()))
}

/// Upload one valid path (its references are the caller's business): the compressed NAR
/// under `nar/`, then the `.narinfo`, signed when `options` has a key.
pub(crate) fn upload_path(
    store: &LocalStore,
    cache: &BinaryCache,
    info: &ValidPathInfo,
    options: &UploadOptions,
) -> Result<(), CacheError> {
    let sd = store.store_dir();
    let rel = format!("{}.narinfo", info.path.hash_part());
    // NAR → (hash, size) and → compressor → (file hash, size) → temporary file.
    let scratch = cache.transport.scratch_dir();
    fs_err::create_dir_all(&scratch).map_err(|e| CacheError::Io {
        path: scratch.clone(),
        source: e,
    })?;
    let tmp = temp_name(&scratch.join("upload"));
    let io_err = |e: io::Error| CacheError::Io {
        path: tmp.clone(),
        source: e,
    };
    let file = fs_err::File::create(&tmp).map_err(io_err)?;
    let file_sink = Tee(
        HashSink::new(HashAlgo::Sha256),
        io::BufWriter::with_capacity(1 << 20, file),
    );
    let encoder = options.compression.encoder(file_sink).map_err(io_err)?;
    let mut nar_sink = Tee(HashSink::new(HashAlgo::Sha256), encoder);
    let result = store.dump(&info.path, &mut nar_sink);
    let Tee(nar_hash, encoder) = nar_sink;
    let finished = encoder.finish().map_err(io_err);
    if let Err(e) = result
        .map_err(CacheError::from)
        .and(finished.as_ref().map(|_| ()).map_err(|e| CacheError::Io {
            path: tmp.clone(),
            source: io::Error::other(e.to_string()),
        }))
    {
        let _ = fs_err::remove_file(&tmp);
        return Err(e);
    }
    let Tee(file_hash, mut writer) = finished.expect("checked");
    writer.flush().map_err(io_err)?;
    drop(writer);
    let (nar_hash, nar_size) = nar_hash.finish();
    let (file_hash, file_size) = file_hash.finish();
    if nar_hash != info.nar_hash || nar_size != info.nar_size {
        let _ = fs_err::remove_file(&tmp);
        return Err(CacheError::Store(crate::local::StoreError::HashMismatch {
            path: sd.print(&info.path),
            expected: info.nar_hash.to_string(),
            got: nar_hash.to_string(),
        }));
    }
    let url = format!(
        "nar/{}{}",
        file_hash.to_nix32(),
        options.compression.extension()
    );
    let put = cache
        .transport
        .put_file(&url, &tmp, "application/x-nix-nar");
    // A failed upload leaves no temporary behind (the directory cache moved it on success).
    let _ = fs_err::remove_file(&tmp);
    put?;
    let mut signatures = info.signatures.clone();
    if let Some(key) = &options.secret_key {
        signatures.insert(key.sign(&info.fingerprint(sd)));
    }
    let nar_info = NarInfo {
        path: info.path.clone(),
        url,
        compression: options.compression.name().to_owned(),
        file_hash: Some(file_hash),
        file_size: Some(file_size),
        nar_hash,
        nar_size,
        references: info.references.clone(),
        deriver: info.deriver.clone(),
        signatures,
        ca: info.ca,
    };
    cache
        .transport
        .put(&rel, nar_info.to_text(sd).as_bytes(), "text/x-nix-narinfo")
}
