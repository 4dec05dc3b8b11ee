//! Fetching for `fetchurl`, `fetchTarball`, `fetchGit` and `fetchTree`: downloads and git
//! checkouts behind the `Fetcher` trait, so evaluations can be kept off the network
//! (`RealFetcher::offline` serves only `file://` URLs and local repositories). Unpacking
//! tarballs (gzip, xz, bzip2, zstd or plain) is here too; hashing and adding to the store
//! is the builtins' job.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fetch that failed (the message is shown after `error: `).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// What to check out of a git repository.
#[derive(Clone, Debug, Default)]
pub struct GitRequest {
    /// Repository URL or local path.
    pub url: String,
    /// A ref (`main`, `refs/heads/main`, a tag); default `HEAD`.
    pub reference: Option<String>,
    /// A commit hash; default the tip of `reference`.
    pub rev: Option<String>,
    /// Also check out submodules.
    pub submodules: bool,
}

/// The commit a checkout ended up at.
#[derive(Clone, Debug)]
pub struct GitCommit {
    /// The full commit hash.
    pub rev: String,
    /// Number of commits reachable from it.
    pub rev_count: u64,
    /// Commit time (seconds since the epoch).
    pub last_modified: i64,
}

/// Where the evaluator gets remote things from.
pub trait Fetcher {
    /// The bytes at `url` (`file://`, `http://`, `https://`).
    fn download(&mut self, url: &str) -> Result<Vec<u8>, FetchError>;
    /// Check out `req` into the empty directory `dest` (without `.git`).
    fn git_checkout(&mut self, req: &GitRequest, dest: &Path) -> Result<GitCommit, FetchError>;
}

/// Real downloads (`ureq`) and the system `git`.
#[derive(Clone, Debug)]
pub struct RealFetcher {
    network: bool,
}

impl RealFetcher {
    /// Fetch from anywhere.
    pub fn new() -> RealFetcher {
        RealFetcher { network: true }
    }

    /// Only `file://` URLs and local repositories.
    pub fn offline() -> RealFetcher {
        RealFetcher { network: false }
    }
}

impl Default for RealFetcher {
    fn default() -> Self {
        RealFetcher::new()
    }
}

fn is_local(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with('/')
}

fn git(args: &[&str], cwd: Option<&Path>) -> Result<String, FetchError> {
    let mut c = Command::new("git");
    c.args(args).env("GIT_TERMINAL_PROMPT", "0");
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let out = c
        .output()
        .map_err(|e| FetchError(format!("cannot run `git`: {e}")))?;
    if !out.status.success() {
        return Err(FetchError(format!(
            "program 'git' failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Fetcher for RealFetcher {
    fn download(&mut self, url: &str) -> Result<Vec<u8>, FetchError> {
        if let Some(path) = url.strip_prefix("file://") {
            return fs_err::read(path).map_err(|e| {
                FetchError(format!(
                    "unable to download '{url}': {}",
                    std::io::Error::from(e.kind())
                ))
            });
        }
        if !self.network {
            return Err(FetchError(format!(
                "unable to download '{url}': network access is disabled for this evaluation"
            )));
        }
        let resp = ureq::get(url)
            .call()
            .map_err(|e| FetchError(format!("unable to download '{url}': {e}")))?;
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .read_to_end(&mut body)
            .map_err(|e| FetchError(format!("unable to download '{url}': {e}")))?;
        Ok(body)
    }

    fn git_checkout(&mut self, req: &GitRequest, dest: &Path) -> Result<GitCommit, FetchError> {
        if !self.network && !is_local(&req.url) {
            return Err(FetchError(format!(
                "cannot fetch '{}': network access is disabled for this evaluation",
                req.url
            )));
        }
        let d = Some(dest);
        git(&["init", "-q"], d)?;
        let refspec = match &req.reference {
            Some(r) => r.clone(),
            None => "HEAD".to_string(),
        };
        if req.rev.is_some() {
            git(
                &["fetch", "-q", "--tags", &req.url, "+refs/*:refs/fetched/*"],
                d,
            )?;
        } else {
            git(&["fetch", "-q", &req.url, &refspec], d)?;
        }
        let rev = match &req.rev {
            Some(r) => r.clone(),
            None => git(&["rev-parse", "FETCH_HEAD"], d)?,
        };
        git(
            &["-c", "advice.detachedHead=false", "checkout", "-q", &rev],
            d,
        )?;
        if req.submodules {
            git(&["submodule", "update", "--init", "--recursive", "-q"], d)?;
        }
        let rev_count: u64 = git(&["rev-list", "--count", &rev], d)?.parse().unwrap_or(0);
        let last_modified: i64 = git(&["log", "-1", "--format=%ct", &rev], d)?
            .parse()
            .unwrap_or(0);
        remove_git_dirs(dest)?;
        Ok(GitCommit {
            rev,
            rev_count,
            last_modified,
        })
    }
}

fn remove_git_dirs(dir: &Path) -> Result<(), FetchError> {
    let err = |e: std::io::Error| FetchError(format!("cannot clean up a git checkout: {e}"));
    let dot_git = dir.join(".git");
    if let Ok(meta) = fs_err::symlink_metadata(&dot_git) {
        if meta.is_dir() {
            fs_err::remove_dir_all(&dot_git).map_err(err)?;
        } else {
            fs_err::remove_file(&dot_git).map_err(err)?;
        }
    }
    for entry in fs_err::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_type().map_err(err)?.is_dir() {
            remove_git_dirs(&entry.path())?;
        }
    }
    Ok(())
}

/// Unpack a tarball (gzip, xz, bzip2, zstd or uncompressed) into `dest`; returns the tree
/// Nix uses: the single top-level entry if there is exactly one, else `dest` itself.
pub fn unpack_tarball(data: &[u8], dest: &Path) -> Result<PathBuf, FetchError> {
    let reader: Box<dyn Read + '_> = if data.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(data))
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(xz2::read::XzDecoder::new(data))
    } else if data.starts_with(b"BZh") {
        Box::new(bzip2::read::BzDecoder::new(data))
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::new(data)
                .map_err(|e| FetchError(format!("cannot decompress the archive: {e}")))?,
        )
    } else {
        Box::new(data)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive
        .unpack(dest)
        .map_err(|e| FetchError(format!("cannot unpack the archive: {e}")))?;
    let entries: Vec<_> = fs_err::read_dir(dest)
        .map_err(|e| FetchError(format!("cannot read the unpacked archive: {e}")))?
        .filter_map(Result::ok)
        .collect();
    if entries.len() == 1 {
        return Ok(entries[0].path());
    }
    Ok(dest.to_path_buf())
}
