//! The `path` fetcher: a directory (or file) taken as it is, `.git` and ignored files
//! included. `lastModified` is the newest mtime of any entry, the root included, as Nix 2.8's
//! `dumpPathAndGetMtime` computes it. A relative path is resolved inside its parent flake's
//! source tree (with that tree's filter), and — as Nix 2.8 reads it from a store copy — gets
//! `lastModified = 1`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::tree::{SourceTree, hash_tree};
use crate::{FetchError, Fetcher, Input};

pub(crate) fn fetch(
    f: &Fetcher,
    input: &Input,
    parent: Option<&SourceTree>,
) -> Result<(SourceTree, Input), FetchError> {
    let path = crate::attrs::req_str(input.attrs(), "path")?;
    let (tree, mtime) = if path.starts_with('/') {
        let p = Path::new(path);
        if std::fs::symlink_metadata(p).is_err() {
            return Err(FetchError::NotFound { path: p.to_owned() });
        }
        let mut max = 0i64;
        let (h, n) = hash_tree(p, None, |m| max = max.max(m.mtime()))?;
        let tree = SourceTree::from_known_hash(p, None, input.name(), f.store_dir(), h, n)?;
        (tree, u64::try_from(max).unwrap_or(0))
    } else {
        let parent = parent.ok_or_else(|| FetchError::RelativePath {
            input: input.to_string(),
        })?;
        (
            parent.subtree(Path::new(path), input.name(), f.store_dir())?,
            1,
        )
    };
    let locked = match input.last_modified() {
        // Already locked: what the lock says stands (Nix does not re-read a locked path).
        Some(_) => input.clone(),
        None => input.clone().with("lastModified", mtime),
    };
    Ok((tree, locked))
}
