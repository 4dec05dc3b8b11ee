//! Nix binary caches: reading (substitution) and writing (`envy store copy --to`) caches in
//! Nix's format over `file://` and `http(s)://` — `nix-cache-info`, `<hash>.narinfo`, NARs
//! under `nar/` compressed with xz or zstd, ed25519 signatures over path fingerprints — and
//! pushing what envy builds to one (`push`: a background queue, retries, the leftovers
//! `envy store push` finishes).
//!
//! Store paths embed the store directory, so a cache serves only stores with the same one:
//! a cache records it in `nix-cache-info` and envy refuses a mismatch.

mod compression;
mod config;
mod error;
mod nar_info;
mod pending;
mod push;
mod signing;
mod substitute;
mod transport;
mod upload;

use std::sync::OnceLock;

pub use compression::Compression;
pub use config::CacheConfig;
pub use error::CacheError;
pub use nar_info::NarInfo;
pub use pending::PendingPushes;
pub use push::{
    PushEvent, PushFailure, PushOptions, PushProgress, PushQueue, PushReport, Pusher, QueueReport,
    QueueStatus,
};
pub use signing::{PublicKey, SecretKey, trusted};
pub use substitute::{NEGATIVE_TTL, SubstituteOutcome, Substituter};
pub use upload::{UploadOptions, UploadReport, copy_to_cache};

use self::transport::Transport;
use crate::store_dir::StoreDir;
use crate::store_path::StorePath;

/// Something that happened while copying, for progress displays.
#[derive(Debug, Clone)]
pub enum CacheEvent<'a> {
    /// Started downloading a path's NAR (compressed size when known).
    Downloading {
        path: &'a StorePath,
        url: &'a str,
        size: Option<u64>,
    },
    /// Started uploading a path.
    Uploading { path: &'a StorePath, url: &'a str },
    /// A path was already there.
    Present { path: &'a StorePath },
    /// A cache has the path, but without a trusted signature.
    Untrusted { path: &'a StorePath, url: &'a str },
    /// A cache could not be used (unreachable, not a cache, another store dir); it is skipped.
    Unavailable { url: &'a str, error: String },
    /// A path is done (`done` of `total` in this operation).
    Done {
        path: &'a StorePath,
        done: usize,
        total: usize,
    },
}

/// A progress callback.
pub type Progress<'a> = &'a dyn Fn(CacheEvent<'_>);

/// `nix-cache-info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheInfo {
    pub store_dir: Option<String>,
    pub want_mass_query: bool,
    pub priority: Option<u32>,
}

impl CacheInfo {
    /// Parse the file (unknown keys and lines without a colon are ignored, as Nix does).
    #[must_use]
    pub fn parse(text: &str) -> CacheInfo {
        let mut info = CacheInfo::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "StoreDir" => info.store_dir = Some(value.to_owned()),
                "WantMassQuery" => info.want_mass_query = value == "1",
                "Priority" => info.priority = value.parse().ok(),
                _ => {}
            }
        }
        info
    }

    /// The file's text.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(dir) = &self.store_dir {
            out.push_str(&format!("StoreDir: {dir}\n"));
        }
        if self.want_mass_query {
            out.push_str("WantMassQuery: 1\n");
        }
        if let Some(p) = self.priority {
            out.push_str(&format!("Priority: {p}\n"));
        }
        out
    }
}

/// One binary cache, by URL. Options may follow a `?` as in Nix (`compression=zstd`,
/// `secret-key=FILE`, `priority=N`), used when writing.
pub struct BinaryCache {
    url: String,
    params: Vec<(String, String)>,
    transport: Transport,
    info: OnceLock<Option<CacheInfo>>,
}

impl BinaryCache {
    /// A cache at `url` (`file:///dir`, `http://host/path`, `https://…`).
    pub fn open(url: &str) -> Result<BinaryCache, CacheError> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let params = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect();
        Ok(BinaryCache {
            url: base.to_owned(),
            params,
            transport: Transport::new(base)?,
            info: OnceLock::new(),
        })
    }

    /// The cache URL (without options).
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// An option given after `?` in the URL.
    #[must_use]
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `nix-cache-info`, fetched once.
    pub fn cache_info(&self) -> Result<Option<&CacheInfo>, CacheError> {
        if let Some(info) = self.info.get() {
            return Ok(info.as_ref());
        }
        let info = self
            .transport
            .get_bytes("nix-cache-info")?
            .map(|bytes| CacheInfo::parse(&String::from_utf8_lossy(&bytes)));
        Ok(self.info.get_or_init(|| info).as_ref())
    }

    /// The cache's priority (lower is preferred; Nix's default is 50).
    pub fn priority(&self) -> u32 {
        self.param("priority")
            .and_then(|p| p.parse().ok())
            .or_else(|| self.cache_info().ok().flatten().and_then(|i| i.priority))
            .unwrap_or(50)
    }

    /// Fail unless the cache serves `store_dir` (a cache without `StoreDir` serves `/nix/store`).
    pub fn check_store_dir(&self, store_dir: &StoreDir) -> Result<(), CacheError> {
        let info = self.cache_info()?.ok_or_else(|| CacheError::NotACache {
            url: self.url.clone(),
        })?;
        let cache_dir = info
            .store_dir
            .clone()
            .unwrap_or_else(|| crate::store_dir::NIX_STORE_DIR.to_owned());
        if cache_dir != store_dir.as_str() {
            return Err(CacheError::WrongStoreDir {
                url: self.url.clone(),
                cache_dir,
                store_dir: store_dir.as_str().to_owned(),
            });
        }
        Ok(())
    }

    /// A path's `.narinfo`, if the cache has it.
    pub fn nar_info(
        &self,
        store_dir: &StoreDir,
        path: &StorePath,
    ) -> Result<Option<NarInfo>, CacheError> {
        let rel = format!("{}.narinfo", path.hash_part());
        let Some(bytes) = self.transport.get_bytes(&rel)? else {
            return Ok(None);
        };
        let url = self.transport.url_of(&rel);
        let info = NarInfo::parse(store_dir, &String::from_utf8_lossy(&bytes), &url)?;
        if info.path != *path {
            return Err(CacheError::BadFile {
                url,
                file: ".narinfo".to_owned(),
                line: 1,
                detail: format!("it describes `{}`, not `{}`", info.path, path),
            });
        }
        Ok(Some(info))
    }

    /// The decompressed NAR of `info`, as a stream.
    pub fn nar_reader(&self, info: &NarInfo) -> Result<Box<dyn std::io::Read + Send>, CacheError> {
        let compression: Compression =
            info.compression
                .parse()
                .map_err(|c| CacheError::UnsupportedCompression {
                    url: self.transport.url_of(&info.url),
                    compression: c,
                })?;
        let url = self.transport.url_of(&info.url);
        let reader = self
            .transport
            .get(&info.url)?
            .ok_or_else(|| CacheError::HttpStatus {
                url: url.clone(),
                status: 404,
            })?;
        let decoder: Box<dyn std::io::Read + Send> = match compression {
            Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(reader)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(reader).map_err(|e| {
                    CacheError::Fetch {
                        url,
                        source: Box::new(e),
                    }
                })?)
            }
            Compression::None => reader,
        };
        Ok(decoder)
    }
}
