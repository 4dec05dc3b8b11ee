//! The `git` fetcher, through the system `git` as Nix 2.8 runs it.
//!
//! - A local repository (`git+file`, not bare) with no `ref`/`rev` is fetched from its work
//!   tree: the files `git ls-files` lists, with their uncommitted contents; untracked files are
//!   left out. Clean (`git diff --quiet HEAD`) trees get `ref`, `rev`, `revCount` and
//!   the commit time as `lastModified`; dirty ones only `lastModified` (the HEAD commit's
//!   time). Nothing is copied: the tree is hashed where it is.
//! - Otherwise a commit is exported (`git archive`) into the fetch cache, once per commit,
//!   from the repository itself (local) or from a bare clone in the cache that `git fetch`
//!   updates (`git+https`, `git+ssh`, bare `git+file`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use envy_store::Hash;
use serde_json::json;

use crate::cache::{FetchCache, remove_tree};
use crate::tree::{SourceTree, TrackedFiles};
use crate::url::ParsedUrl;
use crate::{FetchError, Fetcher, Input};

/// Runs the system `git`.
pub(crate) struct Git<'a> {
    program: &'a Path,
}

impl<'a> Git<'a> {
    pub(crate) fn new(program: &'a Path) -> Git<'a> {
        Git { program }
    }

    fn command(&self, dir: Option<&Path>, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.program);
        if let Some(d) = dir {
            cmd.arg("-C").arg(d);
        }
        cmd.args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    fn describe(dir: Option<&Path>, args: &[&str]) -> String {
        let mut s = String::new();
        if let Some(d) = dir {
            s.push_str(&format!("-C {} ", d.display()));
        }
        s.push_str(&args.join(" "));
        s
    }

    /// Run and return stdout; a non-zero exit is an error carrying stderr.
    pub(crate) fn run(&self, dir: Option<&Path>, args: &[&str]) -> Result<Vec<u8>, FetchError> {
        let out = self
            .command(dir, args)
            .output()
            .map_err(|source| FetchError::GitSpawn {
                args: Self::describe(dir, args),
                source,
            })?;
        if !out.status.success() {
            return Err(FetchError::Git {
                args: Self::describe(dir, args),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(out.stdout)
    }

    /// Run and return stdout as a trimmed string.
    pub(crate) fn line(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, FetchError> {
        Ok(String::from_utf8_lossy(&self.run(dir, args)?)
            .trim()
            .to_string())
    }

    /// Run and return the exit code (no output kept).
    fn code(&self, dir: Option<&Path>, args: &[&str]) -> Result<i32, FetchError> {
        let status = self
            .command(dir, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| FetchError::GitSpawn {
                args: Self::describe(dir, args),
                source,
            })?;
        Ok(status.code().unwrap_or(-1))
    }
}

/// Facts about a commit that never change, kept next to its export.
struct CommitInfo {
    nar_hash: Hash,
    nar_size: u64,
    last_modified: u64,
    rev_count: Option<u64>,
}

pub(crate) fn fetch(f: &Fetcher, input: &Input) -> Result<(SourceTree, Input), FetchError> {
    let url_str = crate::attrs::req_str(input.attrs(), "url")?.to_string();
    let url = ParsedUrl::parse(&url_str)?;
    let git = f.git();
    let submodules = input.get_bool("submodules").unwrap_or(false);
    let shallow = input.get_bool("shallow").unwrap_or(false);
    let local_dir =
        (url.scheme == "file").then(|| PathBuf::from(crate::url::percent_decode(&url.path)));
    let is_workdir = local_dir.as_ref().is_some_and(|d| d.join(".git").exists());

    if is_workdir && input.ref_().is_none() && input.rev()?.is_none() {
        let dir = local_dir.clone().expect("checked above");
        if let Some(done) = fetch_workdir(f, &git, input, &dir, submodules, shallow)? {
            return Ok(done);
        }
    }

    // A commit: from the repository itself (local work tree) or a bare clone in the cache.
    let (repo_dir, ref_) = if is_workdir {
        let dir = local_dir.expect("checked above");
        let ref_ = match input.ref_() {
            Some(r) => r.to_string(),
            None => git.line(Some(&dir), &["rev-parse", "--abbrev-ref", "HEAD"])?,
        };
        (dir, ref_)
    } else {
        let ref_ = match input.ref_() {
            Some(r) => r.to_string(),
            None => default_branch(&git, &url_str).unwrap_or_else(|| "master".to_string()),
        };
        let repo = f.cache().entry("git", &FetchCache::url_key(&url_str));
        fetch_remote(
            f,
            &git,
            &repo,
            &url_str,
            &ref_,
            input.rev()?,
            input.get_bool("allRefs").unwrap_or(false),
        )?;
        (repo, ref_)
    };
    let rev = match input.rev()? {
        Some(r) => r.to_string(),
        None => git.line(
            Some(&repo_dir),
            &[
                "rev-parse",
                &format!("{}^{{commit}}", fetch_ref(&ref_, &repo_dir, is_workdir)),
            ],
        )?,
    };
    if !shallow && git.line(Some(&repo_dir), &["rev-parse", "--is-shallow-repository"])? == "true" {
        return Err(FetchError::Shallow { path: url_str });
    }
    let (tree, info) = export(f, &git, &repo_dir, &rev, input.name(), submodules, shallow)?;
    let mut locked = input
        .clone()
        .with("ref", ref_)
        .with("rev", rev)
        .with("lastModified", info.last_modified);
    if let Some(n) = info.rev_count {
        locked = locked.with("revCount", n);
    }
    Ok((tree, locked))
}

/// The ref name to resolve: as given locally; `refs/heads/<ref>` in a bare clone.
fn fetch_ref(ref_: &str, _repo: &Path, is_workdir: bool) -> String {
    if is_workdir || ref_.starts_with("refs/") || ref_ == "HEAD" {
        ref_.to_string()
    } else {
        format!("refs/heads/{ref_}")
    }
}

/// The work tree of a local repository. `None` when it is clean and its export needs
/// `git archive` (attributes or submodules change what a commit exports).
fn fetch_workdir(
    f: &Fetcher,
    git: &Git<'_>,
    input: &Input,
    dir: &Path,
    submodules: bool,
    shallow: bool,
) -> Result<Option<(SourceTree, Input)>, FetchError> {
    // The commands Nix 2.8 runs. `git diff` (unlike `diff-index`) refreshes the index, so a
    // copied or touched but unchanged tree is clean.
    let have_commits = git.code(
        Some(dir),
        &[
            "--git-dir=.git",
            "rev-parse",
            "--verify",
            "--no-revs",
            "HEAD^{commit}",
        ],
    )? == 0;
    let diff = ["diff", "HEAD", "--quiet", "--ignore-submodules", "--"];
    let clean = have_commits
        && match git.code(Some(dir), &diff)? {
            0 => true,
            1 => false,
            _ => {
                // Let `run` report git's own message.
                git.run(Some(dir), &diff)?;
                false
            }
        };
    let mut ls = vec!["ls-files", "-z"];
    if submodules {
        ls.push("--recurse-submodules");
    }
    let files = Arc::new(TrackedFiles::from_nul_separated(&git.run(Some(dir), &ls)?));
    let name = input.name();
    if !clean {
        let tree = SourceTree::hash(dir, Some(files), name, f.store_dir())?;
        let last_modified = if have_commits {
            commit_time(git, dir, "HEAD")?
        } else {
            0
        };
        return Ok(Some((
            tree,
            input.clone().with("lastModified", last_modified),
        )));
    }
    if files.has_file_named(b".gitattributes")
        || (!submodules && files.has_file_named(b".gitmodules"))
    {
        return Ok(None);
    }
    if !shallow && git.line(Some(dir), &["rev-parse", "--is-shallow-repository"])? == "true" {
        return Err(FetchError::Shallow {
            path: dir.display().to_string(),
        });
    }
    let ref_ = git.line(Some(dir), &["rev-parse", "--abbrev-ref", "HEAD"])?;
    let rev = git.line(Some(dir), &["rev-parse", "HEAD"])?;
    // A clean tree's files are its commit's: what we learnt about the commit holds.
    let memo = f
        .cache()
        .entry("git-export", &format!("{rev}-workdir-{}", submodules as u8));
    let info = match read_commit_info(&memo, shallow) {
        Some(info) => {
            let tree = SourceTree::from_known_hash(
                dir,
                Some(files),
                name,
                f.store_dir(),
                info.nar_hash,
                info.nar_size,
            )?;
            (tree, info)
        }
        None => {
            let tree = SourceTree::hash(dir, Some(files), name, f.store_dir())?;
            let info = CommitInfo {
                nar_hash: *tree.nar_hash(),
                nar_size: tree.nar_size(),
                last_modified: commit_time(git, dir, &rev)?,
                rev_count: if shallow {
                    None
                } else {
                    Some(rev_count(git, dir, &rev)?)
                },
            };
            let tmp = f.cache().temp_dir()?;
            write_commit_info(&tmp, &info)?;
            f.cache().install(&tmp, &memo)?;
            (tree, info)
        }
    };
    let (tree, info) = info;
    let mut locked = input
        .clone()
        .with("ref", ref_)
        .with("rev", rev)
        .with("lastModified", info.last_modified);
    if let Some(n) = info.rev_count {
        locked = locked.with("revCount", n);
    }
    Ok(Some((tree, locked)))
}

fn commit_time(git: &Git<'_>, dir: &Path, rev: &str) -> Result<u64, FetchError> {
    let s = git.line(
        Some(dir),
        &["log", "-1", "--format=%ct", "--no-show-signature", rev],
    )?;
    s.parse().map_err(|_| FetchError::Git {
        args: format!("log -1 --format=%ct {rev}"),
        stderr: format!("unexpected output `{s}`"),
    })
}

fn rev_count(git: &Git<'_>, dir: &Path, rev: &str) -> Result<u64, FetchError> {
    let s = git.line(Some(dir), &["rev-list", "--count", rev])?;
    s.parse().map_err(|_| FetchError::Git {
        args: format!("rev-list --count {rev}"),
        stderr: format!("unexpected output `{s}`"),
    })
}

/// The branch `HEAD` points to in a remote (`git ls-remote --symref URL HEAD`).
fn default_branch(git: &Git<'_>, url: &str) -> Option<String> {
    let out = git
        .line(None, &["ls-remote", "--symref", url, "HEAD"])
        .ok()?;
    let first = out.lines().next()?;
    let target = first.strip_prefix("ref: ")?.split_whitespace().next()?;
    Some(
        target
            .strip_prefix("refs/heads/")
            .unwrap_or(target)
            .to_string(),
    )
}

/// Bring `rev` (or the tip of `ref_`) into the bare clone at `repo`.
fn fetch_remote(
    f: &Fetcher,
    git: &Git<'_>,
    repo: &Path,
    url: &str,
    ref_: &str,
    rev: Option<&str>,
    all_refs: bool,
) -> Result<(), FetchError> {
    if !repo.join("HEAD").exists() {
        f.cache().ensure("git")?;
        let tmp = f.cache().temp_dir()?;
        git.run(
            Some(&tmp),
            &[
                "-c",
                "init.defaultBranch=envy",
                "init",
                "--quiet",
                "--bare",
                ".",
            ],
        )?;
        f.cache().install(&tmp, repo)?;
    }
    if let Some(rev) = rev
        && git.code(
            Some(repo),
            &["cat-file", "-e", &format!("{rev}^{{commit}}")],
        )? == 0
    {
        return Ok(());
    }
    let fetch_ref = if all_refs {
        "refs/*".to_string()
    } else {
        fetch_ref(ref_, repo, false)
    };
    let spec = format!("{fetch_ref}:{fetch_ref}");
    git.run(
        Some(repo),
        &["fetch", "--quiet", "--force", "--", url, &spec],
    )?;
    Ok(())
}

fn read_commit_info(entry: &Path, shallow: bool) -> Option<CommitInfo> {
    let info = FetchCache::read_info(entry)?;
    Some(CommitInfo {
        nar_hash: Hash::parse_sri(info["narHash"].as_str()?).ok()?,
        nar_size: info["narSize"].as_u64()?,
        last_modified: info["lastModified"].as_u64()?,
        rev_count: if shallow {
            None
        } else {
            Some(info["revCount"].as_u64()?)
        },
    })
}

fn write_commit_info(entry: &Path, info: &CommitInfo) -> Result<(), FetchError> {
    FetchCache::write_info(
        entry,
        &json!({
            "narHash": info.nar_hash.to_sri(),
            "narSize": info.nar_size,
            "lastModified": info.last_modified,
            "revCount": info.rev_count,
        }),
    )
}

/// The files of commit `rev`, exported once into the cache.
fn export(
    f: &Fetcher,
    git: &Git<'_>,
    repo: &Path,
    rev: &str,
    name: &str,
    submodules: bool,
    shallow: bool,
) -> Result<(SourceTree, CommitInfo), FetchError> {
    let entry = f
        .cache()
        .entry("git-export", &format!("{rev}-{}", submodules as u8));
    let tree_dir = entry.join("tree");
    if let Some(info) = read_commit_info(&entry, shallow)
        && tree_dir.exists()
    {
        let tree = SourceTree::from_known_hash(
            &tree_dir,
            None,
            name,
            f.store_dir(),
            info.nar_hash,
            info.nar_size,
        )?;
        return Ok((tree, info));
    }
    let tmp = f.cache().temp_dir()?;
    let out = tmp.join("tree");
    if submodules {
        let repo_s = repo.display().to_string();
        let out_s = out.display().to_string();
        git.run(
            None,
            &["clone", "--quiet", "--no-checkout", &repo_s, &out_s],
        )?;
        git.run(Some(&out), &["checkout", "--quiet", rev])?;
        git.run(
            Some(&out),
            &["submodule", "--quiet", "update", "--init", "--recursive"],
        )?;
        remove_dot_git(&out)?;
    } else {
        fs_err::create_dir(&out).map_err(FetchError::io(&out))?;
        let mut child = git
            .command(Some(repo), &["archive", "--format=tar", rev])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| FetchError::GitSpawn {
                args: format!("archive {rev}"),
                source,
            })?;
        let stdout = child.stdout.take().expect("piped");
        let unpacked = crate::archive::unpack_tar(stdout, &out);
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let status = child.wait().map_err(FetchError::io(repo))?;
        if !status.success() {
            return Err(FetchError::Git {
                args: format!("-C {} archive {rev}", repo.display()),
                stderr: stderr.trim().to_string(),
            });
        }
        unpacked.map_err(|message| FetchError::Unpack {
            url: format!("git archive {rev}"),
            message,
        })?;
    }
    let tree = SourceTree::hash(&out, None, name, f.store_dir())?;
    let info = CommitInfo {
        nar_hash: *tree.nar_hash(),
        nar_size: tree.nar_size(),
        last_modified: commit_time(git, repo, rev)?,
        rev_count: if shallow {
            None
        } else {
            Some(rev_count(git, repo, rev)?)
        },
    };
    write_commit_info(&tmp, &info)?;
    f.cache().install(&tmp, &entry)?;
    let tree = SourceTree::from_known_hash(
        &tree_dir,
        None,
        name,
        f.store_dir(),
        info.nar_hash,
        info.nar_size,
    )?;
    Ok((tree, info))
}

/// Drop every `.git` (directory or submodule link file) below `dir`.
fn remove_dot_git(dir: &Path) -> Result<(), FetchError> {
    for entry in fs_err::read_dir(dir).map_err(FetchError::io(dir))? {
        let entry = entry.map_err(FetchError::io(dir))?;
        let path = entry.path();
        let ty = entry.file_type().map_err(FetchError::io(&path))?;
        if entry.file_name() == ".git" {
            if ty.is_dir() {
                remove_tree(&path)?;
            } else {
                fs_err::remove_file(&path).map_err(FetchError::io(&path))?;
            }
        } else if ty.is_dir() {
            remove_dot_git(&path)?;
        }
    }
    Ok(())
}
