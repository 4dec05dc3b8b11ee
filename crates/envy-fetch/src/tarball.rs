//! The `tarball` and `file` fetchers: download (`file://`, `https://`), unpack into the fetch
//! cache, strip the single top-level directory, hash. Reused from the cache when the input's
//! `narHash` matches, when a `file://` source has not changed (same size, mtime and inode), or
//! within the TTL for other URLs. As in Nix 2.8, a tarball's locked form is `url` + `narHash`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use envy_store::Hash;
use serde_json::json;

use crate::cache::FetchCache;
use crate::download::{download, file_url_path};
use crate::tree::{SourceTree, hash_tree};
use crate::{FetchError, Fetcher, Input};

/// A download in the cache.
pub(crate) struct Downloaded {
    /// The unpacked top-level entry, or the downloaded file.
    pub root: PathBuf,
    pub nar_hash: Option<Hash>,
    pub nar_size: u64,
    /// The top-level entry's mtime (archives only).
    pub last_modified: Option<u64>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn file_identity(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}:{}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ino()
    ))
}

/// Download (and unpack) `url` into the cache, or reuse what is there.
pub(crate) fn cached(
    f: &Fetcher,
    url: &str,
    unpack: bool,
    immutable: bool,
    expected: Option<&Hash>,
    headers: &[(&str, String)],
) -> Result<Downloaded, FetchError> {
    let kind = if unpack { "tarball" } else { "file" };
    let entry = f
        .cache()
        .entry("tarball", &FetchCache::url_key(&format!("{kind}:{url}")));
    let local = file_url_path(url);
    if let Some(info) = FetchCache::read_info(&entry) {
        let root = entry.join(info["root"].as_str().unwrap_or("-"));
        let nar_hash = info["narHash"]
            .as_str()
            .and_then(|h| Hash::parse_sri(h).ok());
        let fresh = (expected.is_some() && expected == nar_hash.as_ref())
            || immutable
            || match &local {
                Some(p) => file_identity(p).is_some_and(|id| info["identity"] == id.as_str()),
                None => info["fetched"]
                    .as_u64()
                    .is_some_and(|t| now() < t + f.settings().tarball_ttl.as_secs()),
            };
        if fresh && root.exists() && nar_hash.is_some() {
            return Ok(Downloaded {
                root,
                nar_hash,
                nar_size: info["narSize"].as_u64().unwrap_or(0),
                last_modified: info["lastModified"].as_u64(),
            });
        }
    }
    let tmp = f.cache().temp_dir()?;
    let file = tmp.join("download");
    let identity = local.as_deref().and_then(file_identity);
    download(url, &file, headers)?;
    let (rel_root, nar_hash, nar_size, last_modified) = if unpack {
        let tree = tmp.join("tree");
        fs_err::create_dir(&tree).map_err(FetchError::io(&tree))?;
        crate::archive::unpack_file(&file, &tree).map_err(|message| FetchError::Unpack {
            url: url.to_string(),
            message,
        })?;
        fs_err::remove_file(&file).map_err(FetchError::io(&file))?;
        let entries: Vec<_> = fs_err::read_dir(&tree)
            .map_err(FetchError::io(&tree))?
            .collect::<Result<_, _>>()
            .map_err(FetchError::io(&tree))?;
        let [top] = entries.as_slice() else {
            return Err(FetchError::TopLevel {
                url: url.to_string(),
            });
        };
        let top_path = top.path();
        let mtime = fs_err::symlink_metadata(&top_path)
            .map_err(FetchError::io(&top_path))?
            .mtime();
        let (h, n) = hash_tree(&top_path, None, |_| {})?;
        let rel = format!("tree/{}", top.file_name().to_string_lossy());
        (rel, Some(h), n, Some(u64::try_from(mtime).unwrap_or(0)))
    } else {
        let dest = tmp.join("file");
        fs_err::rename(&file, &dest).map_err(FetchError::io(&file))?;
        let t = SourceTree::flat_file(&dest, "source", f.store_dir())?;
        ("file".to_string(), Some(*t.nar_hash()), t.nar_size(), None)
    };
    FetchCache::write_info(
        &tmp,
        &json!({
            "url": url,
            "root": rel_root,
            "narHash": nar_hash.as_ref().map(Hash::to_sri),
            "narSize": nar_size,
            "lastModified": last_modified,
            "identity": identity,
            "fetched": now(),
        }),
    )?;
    f.cache().install(&tmp, &entry)?;
    Ok(Downloaded {
        root: entry.join(rel_root),
        nar_hash,
        nar_size,
        last_modified,
    })
}

pub(crate) fn fetch_tarball(f: &Fetcher, input: &Input) -> Result<(SourceTree, Input), FetchError> {
    let url = crate::attrs::req_str(input.attrs(), "url")?;
    let expected = input.nar_hash()?;
    let d = cached(f, url, true, false, expected.as_ref(), &[])?;
    let nar_hash = d.nar_hash.expect("archives are hashed");
    let tree = SourceTree::from_known_hash(
        &d.root,
        None,
        input.name(),
        f.store_dir(),
        nar_hash,
        d.nar_size,
    )?;
    Ok((tree, input.clone()))
}

pub(crate) fn fetch_file(f: &Fetcher, input: &Input) -> Result<(SourceTree, Input), FetchError> {
    let url = crate::attrs::req_str(input.attrs(), "url")?;
    let expected = input.nar_hash()?;
    let d = cached(f, url, false, false, expected.as_ref(), &[])?;
    let tree = SourceTree::flat_file(&d.root, input.name(), f.store_dir())?;
    Ok((tree, input.clone()))
}
