//! Getting and putting files of a binary cache: a directory (`file://`) or an HTTP server
//! (`http://`, `https://`: GET to read, PUT to write, as Nix's HTTP binary cache store does).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::CacheError;

/// Where a cache's files are.
#[derive(Clone)]
pub(crate) enum Transport {
    File(PathBuf),
    Http { base: String, agent: ureq::Agent },
}

impl Transport {
    /// From a URL without its `?query`.
    pub(crate) fn new(url: &str) -> Result<Transport, CacheError> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(CacheError::BadUrl {
                    url: url.to_owned(),
                });
            }
            Ok(Transport::File(PathBuf::from(path.trim_end_matches('/'))))
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let config = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(30)))
                .build();
            Ok(Transport::Http {
                base: url.trim_end_matches('/').to_owned(),
                agent: config.into(),
            })
        } else {
            Err(CacheError::BadUrl {
                url: url.to_owned(),
            })
        }
    }

    /// The full URL of a file in the cache (for messages).
    pub(crate) fn url_of(&self, rel: &str) -> String {
        match self {
            Transport::File(root) => format!("file://{}/{rel}", root.display()),
            Transport::Http { base, .. } => format!("{base}/{rel}"),
        }
    }

    fn fetch_err(
        &self,
        rel: &str,
    ) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> CacheError + '_ {
        let url = self.url_of(rel);
        move |source| CacheError::Fetch { url, source }
    }

    /// A reader of a file, `None` when the cache does not have it.
    // Errors carry the file's URL, so plain `std::fs` is enough.
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn get(&self, rel: &str) -> Result<Option<Box<dyn Read + Send>>, CacheError> {
        match self {
            Transport::File(root) => match std::fs::File::open(root.join(rel)) {
                Ok(f) => Ok(Some(Box::new(io::BufReader::with_capacity(1 << 16, f)))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.fetch_err(rel)(Box::new(e))),
            },
            Transport::Http { base, agent } => {
                let url = format!("{base}/{rel}");
                let response = agent
                    .get(&url)
                    .call()
                    .map_err(|e| self.fetch_err(rel)(Box::new(e)))?;
                match response.status().as_u16() {
                    200 => Ok(Some(Box::new(response.into_body().into_reader()))),
                    // Nix treats 403 like 404 (S3 answers 403 for missing keys without list rights).
                    404 | 403 => Ok(None),
                    status => Err(CacheError::HttpStatus { url, status }),
                }
            }
        }
    }

    /// A small file's contents (narinfo, nix-cache-info).
    pub(crate) fn get_bytes(&self, rel: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let Some(mut reader) = self.get(rel)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .map_err(|e| self.fetch_err(rel)(Box::new(e)))?;
        Ok(Some(out))
    }

    /// Whether the cache has a file.
    pub(crate) fn exists(&self, rel: &str) -> Result<bool, CacheError> {
        match self {
            Transport::File(root) => Ok(root.join(rel).exists()),
            Transport::Http { base, agent } => {
                let url = format!("{base}/{rel}");
                let response = agent
                    .head(&url)
                    .call()
                    .map_err(|e| self.fetch_err(rel)(Box::new(e)))?;
                match response.status().as_u16() {
                    200 => Ok(true),
                    404 | 403 => Ok(false),
                    status => Err(CacheError::HttpStatus { url, status }),
                }
            }
        }
    }

    /// Store a file: atomically (temporary + rename) in a directory, by PUT over HTTP.
    pub(crate) fn put(&self, rel: &str, data: &[u8], content_type: &str) -> Result<(), CacheError> {
        let upload_err = |source: Box<dyn std::error::Error + Send + Sync>| CacheError::Upload {
            url: self.url_of(rel),
            source,
        };
        match self {
            Transport::File(root) => {
                let dest = root.join(rel);
                let tmp = temp_name(&dest);
                if let Some(parent) = dest.parent() {
                    fs_err::create_dir_all(parent).map_err(|e| upload_err(Box::new(e)))?;
                }
                fs_err::write(&tmp, data).map_err(|e| upload_err(Box::new(e)))?;
                fs_err::rename(&tmp, &dest).map_err(|e| upload_err(Box::new(e)))
            }
            Transport::Http { base, agent } => {
                let url = format!("{base}/{rel}");
                let response = agent
                    .put(&url)
                    .header("Content-Type", content_type)
                    .send(data)
                    .map_err(|e| upload_err(Box::new(e)))?;
                match response.status().as_u16() {
                    200..=299 => Ok(()),
                    status => Err(CacheError::HttpStatus { url, status }),
                }
            }
        }
    }

    /// Store a file from disk (a compressed NAR), moving it when the cache is a directory.
    pub(crate) fn put_file(
        &self,
        rel: &str,
        src: &Path,
        content_type: &str,
    ) -> Result<(), CacheError> {
        match self {
            Transport::File(root) => {
                let dest = root.join(rel);
                if let Some(parent) = dest.parent() {
                    fs_err::create_dir_all(parent).map_err(|e| CacheError::Upload {
                        url: self.url_of(rel),
                        source: Box::new(e),
                    })?;
                }
                fs_err::rename(src, &dest).map_err(|e| CacheError::Upload {
                    url: self.url_of(rel),
                    source: Box::new(e),
                })
            }
            Transport::Http { .. } => {
                let data = fs_err::read(src).map_err(|e| CacheError::Io {
                    path: src.to_owned(),
                    source: e,
                })?;
                self.put(rel, &data, content_type)?;
                let _ = fs_err::remove_file(src);
                Ok(())
            }
        }
    }

    /// A directory for temporaries next to the cache's files (or the system's).
    pub(crate) fn scratch_dir(&self) -> PathBuf {
        match self {
            Transport::File(root) => root.join("nar"),
            Transport::Http { .. } => std::env::temp_dir(),
        }
    }
}

/// `.<name>.tmp-<pid>-<n>` beside `dest`.
pub(crate) fn temp_name(dest: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}
