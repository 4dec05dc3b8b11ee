//! [`Restore`]: what leaving a project must put back, in an immutable content-addressed file
//! (`restore-v1/<id>`). The shell's state variable holds only the id, so it stays small no
//! matter how large the environment is.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::dirs::Dirs;
use crate::util::fsutil;

/// The pre-entry values of everything an environment touched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// Environment variables: name → value before entry (`None`: was unset).
    pub vars: BTreeMap<String, Option<String>>,
    /// Shell (non-exported) variables the environment defined, to unset on leaving.
    pub locals: Vec<String>,
    /// Functions the environment defined, to unset on leaving.
    pub functions: Vec<String>,
    /// Whether a shellHook ran (its own definitions are undone by the hook script).
    pub shell_hook: bool,
}

impl Restore {
    fn bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// The content address: 32 hex digits of sha256 over the serialized form.
    pub fn id(&self) -> String {
        let mut id = fsutil::sha256_hex(&self.bytes());
        id.truncate(32);
        id
    }

    /// Write it (if not already there) and return its id.
    pub fn save(&self, dirs: &Dirs) -> Result<String> {
        dirs.ensure_cache_root()?;
        let id = self.id();
        fsutil::write_immutable(&dirs.restore_dir().join(&id), &self.bytes())?;
        Ok(id)
    }

    /// Read restore file `id`.
    pub fn load(dirs: &Dirs, id: &str) -> Result<Self> {
        let path = dirs.restore_dir().join(id);
        let bytes = fs_err::read(&path)?;
        postcard::from_bytes(&bytes)
            .with_context(|| format!("corrupt restore file `{}`", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_is_content_addressed() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(tmp.path().join("c"), tmp.path().join("d"));
        let mut r = Restore::default();
        r.vars.insert("FOO".into(), None);
        r.vars.insert("PATH".into(), Some("/usr/bin".into()));
        let id = r.save(&dirs).unwrap();
        assert_eq!(id, r.save(&dirs).unwrap());
        assert_eq!(Restore::load(&dirs, &id).unwrap(), r);
        r.vars.insert("BAR".into(), None);
        assert_ne!(r.id(), id);
    }
}
