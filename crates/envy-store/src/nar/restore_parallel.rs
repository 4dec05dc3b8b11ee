//! Unpacking a NAR with several threads creating files at once. Creating a file costs a
//! journal round trip on many file systems, during which a single thread only waits; with a
//! few threads those waits overlap (a tree of small files unpacks several times faster). The
//! archive is still read by one thread, which makes the directories and hands files and
//! symlinks to the workers; directories are finished (made read-only, timestamped) last,
//! deepest first, once nothing more is created in them.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::restore::create_err;
use super::{NarError, NarSink, parse};

/// Threads creating files.
const WORKERS: usize = 8;
/// Files up to this size are buffered and handed to a worker; bigger ones are written by the
/// reading thread (their creation is a small part of their cost).
const HANDOFF_LIMIT: u64 = 1 << 20;
/// Jobs waiting at most (so at most this many small files are held in memory).
const QUEUE: usize = 64;
/// Modification time of canonical store files.
const CANONICAL_TIME: i64 = 1;

enum Job {
    File {
        path: PathBuf,
        executable: bool,
        data: Vec<u8>,
    },
    Symlink {
        path: PathBuf,
        target: Vec<u8>,
    },
}

fn canonical_time() -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(CANONICAL_TIME as u64)
}

/// Create a regular file with `data` read from `contents`.
fn write_file(
    path: &Path,
    executable: bool,
    canonical: bool,
    contents: &mut dyn Read,
) -> Result<(), NarError> {
    let mode = match (canonical, executable) {
        (false, false) => 0o644,
        (false, true) => 0o755,
        (true, false) => 0o444,
        (true, true) => 0o555,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(create_err(path))?;
    let mut buf = [0u8; 1 << 16];
    loop {
        let n = match contents.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(NarError::Input(e)),
        };
        file.write_all(&buf[..n]).map_err(create_err(path))?;
    }
    if canonical {
        let t = canonical_time();
        file.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
            .map_err(create_err(path))?;
        // The umask may have cleared bits of the requested mode; the store wants exactly it.
        if crate::sys::umask().is_none_or(|mask| mask & mode != 0) {
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .map_err(create_err(path))?;
        }
    }
    Ok(())
}

fn run(job: Job, canonical: bool) -> Result<(), NarError> {
    match job {
        Job::File {
            path,
            executable,
            data,
        } => write_file(&path, executable, canonical, &mut data.as_slice()),
        Job::Symlink { path, target } => {
            std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                .map_err(create_err(&path))?;
            if canonical {
                crate::sys::set_times_nofollow(&path, CANONICAL_TIME).map_err(create_err(&path))?;
            }
            Ok(())
        }
    }
}

struct Dispatch<'a> {
    root: &'a Path,
    canonical: bool,
    tx: SyncSender<Job>,
    dirs: Vec<PathBuf>,
}

impl Dispatch<'_> {
    fn target(&self, path: &[u8]) -> PathBuf {
        if path.is_empty() {
            self.root.to_owned()
        } else {
            self.root.join(OsStr::from_bytes(path))
        }
    }

    fn send(&self, job: Job) -> Result<(), NarError> {
        // Workers only stop once the sender is gone, so this cannot fail while we hold it.
        self.tx
            .send(job)
            .map_err(|_| NarError::Write(io::Error::other("unpacking threads stopped")))
    }
}

impl NarSink for Dispatch<'_> {
    fn directory(&mut self, path: &[u8]) -> Result<(), NarError> {
        let target = self.target(path);
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&target)
            .map_err(create_err(&target))?;
        self.dirs.push(target);
        Ok(())
    }

    fn regular_file(
        &mut self,
        path: &[u8],
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> Result<(), NarError> {
        let target = self.target(path);
        if size > HANDOFF_LIMIT {
            return write_file(&target, executable, self.canonical, contents);
        }
        let mut data = Vec::with_capacity(size as usize);
        contents.read_to_end(&mut data).map_err(NarError::Input)?;
        if data.len() as u64 != size {
            return Err(NarError::Truncated);
        }
        self.send(Job::File {
            path: target,
            executable,
            data,
        })
    }

    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), NarError> {
        let link = self.target(path);
        self.send(Job::Symlink {
            path: link,
            target: target.to_vec(),
        })
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, canonical: bool, failed: &Mutex<Option<NarError>>) {
    loop {
        let job = match rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv()
        {
            Ok(job) => job,
            Err(_) => return,
        };
        if let Err(e) = run(job, canonical) {
            failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert(e);
        }
    }
}

/// Unpack the NAR read from `input` at `dest` (which must not exist), with worker threads;
/// `canonical` leaves it as the store wants it (see `RestoreSink::canonical`).
pub fn restore_parallel(input: impl Read, dest: &Path, canonical: bool) -> Result<(), NarError> {
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    let rx = Mutex::new(rx);
    let failed: Mutex<Option<NarError>> = Mutex::new(None);
    let parsed = std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| worker(&rx, canonical, &failed));
        }
        let mut sink = Dispatch {
            root: dest,
            canonical,
            tx,
            dirs: Vec::new(),
        };
        let result = parse(input, &mut sink);
        // Dropping the sink closes the queue: the workers finish what is left and stop.
        result.map(|()| std::mem::take(&mut sink.dirs))
    });
    let dirs = parsed?;
    if let Some(e) = failed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    if canonical {
        for dir in dirs.iter().rev() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555))
                .map_err(create_err(dir))?;
            crate::sys::set_times_nofollow(dir, CANONICAL_TIME).map_err(create_err(dir))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn same_tree_as_the_serial_restore() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        for d in 0..5 {
            fs_err::create_dir_all(src.join(format!("d{d}/e"))).unwrap();
            for f in 0..40 {
                fs_err::write(src.join(format!("d{d}/e/f{f}")), vec![f as u8; f * 100]).unwrap();
            }
        }
        fs_err::write(src.join("big"), vec![9u8; (HANDOFF_LIMIT + 10) as usize]).unwrap();
        fs_err::write(src.join("x"), b"#!").unwrap();
        fs_err::set_permissions(src.join("x"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("d0/e/f1", src.join("l")).unwrap();
        let mut nar = Vec::new();
        crate::nar::dump_path(&src, &mut nar).unwrap();
        for canonical in [false, true] {
            let out = dir.path().join(format!("out-{canonical}"));
            restore_parallel(nar.as_slice(), &out, canonical).unwrap();
            let mut again = Vec::new();
            crate::nar::dump_path(&out, &mut again).unwrap();
            assert!(again == nar, "canonical = {canonical}");
            if canonical {
                for p in ["", "d3/e", "d3/e/f7", "x", "l", "big"] {
                    assert_eq!(
                        fs_err::symlink_metadata(out.join(p)).unwrap().mtime(),
                        1,
                        "{p}"
                    );
                }
                assert_eq!(
                    fs_err::metadata(out.join("d1")).unwrap().mode() & 0o777,
                    0o555
                );
            }
        }
        // A bad archive fails, a present destination too.
        assert!(restore_parallel(&nar[..nar.len() / 2], &dir.path().join("half"), true).is_err());
        assert!(matches!(
            restore_parallel(nar.as_slice(), &src, false),
            Err(NarError::Exists { .. })
        ));
    }
}
