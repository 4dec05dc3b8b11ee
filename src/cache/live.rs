//! Leases: which generation each live shell uses, so `envy gc` never frees it.
//!
//! The hook passes the shell's process id; whenever a shell loads an environment, the slow
//! path writes `live-v1/<pid>` (`<project-key> <generation> <restore-id>`), and removes it
//! when the shell leaves every project. A lease whose process is gone is stale; gc drops it.

use anyhow::Result;

use crate::util::dirs::Dirs;
use crate::util::fsutil;

/// One live shell's use of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The shell's process id.
    pub pid: u32,
    /// The project (its key).
    pub project_key: String,
    /// The generation it has loaded.
    pub generation: u64,
    /// Its restore file.
    pub restore: String,
}

impl Lease {
    /// Record this lease (replacing the shell's previous one).
    pub fn write(&self, dirs: &Dirs) -> Result<()> {
        let line = format!(
            "{} {} {}\n",
            self.project_key, self.generation, self.restore
        );
        let path = dirs.live_dir().join(self.pid.to_string());
        // Re-entering a project usually rewrites the same lease: skip the write (and fsync).
        if fs_err::read(&path).is_ok_and(|old| old == line.as_bytes()) {
            return Ok(());
        }
        fsutil::write_atomic(&path, line.as_bytes())
    }

    /// Drop shell `pid`'s lease, if any.
    pub fn remove(dirs: &Dirs, pid: u32) -> Result<()> {
        let path = dirs.live_dir().join(pid.to_string());
        match fs_err::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every lease on disk, with whether its shell is still running.
    pub fn all(dirs: &Dirs) -> Vec<(Lease, bool)> {
        let mut out = Vec::new();
        for path in fsutil::list_dir(&dirs.live_dir()) {
            let Some(pid) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(text) = fs_err::read_to_string(&path) else {
                continue;
            };
            let mut parts = text.split_whitespace();
            let (Some(key), Some(generation), Some(restore)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(generation) = generation.parse() else {
                continue;
            };
            let lease = Lease {
                pid,
                project_key: key.to_string(),
                generation,
                restore: restore.to_string(),
            };
            out.push((lease, process_alive(pid)));
        }
        out
    }
}

/// Whether process `pid` exists (a reused pid counts as alive: keeping too much is safe).
pub fn process_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_list_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(tmp.path().join("c"), tmp.path().join("d"));
        let me = std::process::id();
        let lease = Lease {
            pid: me,
            project_key: "k".into(),
            generation: 3,
            restore: "r".into(),
        };
        lease.write(&dirs).unwrap();
        Lease {
            pid: u32::MAX - 1,
            ..lease.clone()
        }
        .write(&dirs)
        .unwrap();
        let all = Lease::all(&dirs);
        assert!(all.contains(&(lease.clone(), true)));
        assert!(all.iter().any(|(l, alive)| l.pid == u32::MAX - 1 && !alive));
        Lease::remove(&dirs, me).unwrap();
        Lease::remove(&dirs, me).unwrap();
        assert_eq!(Lease::all(&dirs).len(), 1);
    }
}
