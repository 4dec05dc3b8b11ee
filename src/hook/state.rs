//! `__ENVY_STATE`: the hook's compact state, kept in the shell between prompts.
//!
//! ```text
//! 1|<status>|<pid>|<generation>|<restore-id>|<root>|<digest>|<watch>
//! ```
//!
//! - `status`: `A` active, `B` blocked (not allowed), `D` denied, `F` failed to build.
//! - `pid`: the shell that applied this state (a child shell re-applies functions).
//! - `generation`, `restore-id`: the loaded environment, both empty when none is loaded.
//!   A loaded environment always belongs to `root`.
//! - `root`: the project the shell was in.
//! - `digest`: 64-bit FNV-1a over the `stat` signature (mtime in ns, size, inode, type) of
//!   every watched path and the value of every watched variable, in order.
//! - `watch`: `;`-separated entries — a path relative to `root`, an absolute path, or
//!   `$NAME` for an environment variable — or `@<absolute path>` of a content-addressed file
//!   holding that list when it is too long to inline.
//!
//! Paths are percent-encoded for `%`, `|`, `;` and newline. The variable stays a few hundred
//! bytes however big the environment: what to restore on leaving lives in the restore file.

use std::path::{Path, PathBuf};

/// Format version, first field.
pub const VERSION: &str = "1";

/// Longest inline watch list; longer lists go to a file.
pub const INLINE_WATCH_MAX: usize = 480;

/// What the hook concluded about the project at the last slow path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Allowed and built: its environment is loaded.
    Active,
    /// Not allowed (or changed since allowed); the notice was shown once.
    Blocked,
    /// Denied; nothing is shown.
    Denied,
    /// The last build failed; the last good environment (if any) stays loaded.
    Failed,
    /// Building in the background; what was loaded (if anything) stays until it ends.
    Building,
}

impl Status {
    fn as_char(self) -> char {
        match self {
            Status::Active => 'A',
            Status::Blocked => 'B',
            Status::Denied => 'D',
            Status::Failed => 'F',
            Status::Building => 'W',
        }
    }

    fn from_str(s: &str) -> Option<Self> {
        Some(match s {
            "A" => Status::Active,
            "B" => Status::Blocked,
            "D" => Status::Denied,
            "F" => Status::Failed,
            "W" => Status::Building,
            _ => return None,
        })
    }

    /// The word `envy status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Blocked => "blocked",
            Status::Denied => "denied",
            Status::Failed => "failed",
            Status::Building => "building",
        }
    }
}

/// An environment loaded in the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Its generation.
    pub generation: u64,
    /// Its restore file id.
    pub restore: String,
}

/// One watched input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file or directory: relative to the root, or absolute.
    Path(PathBuf),
    /// An environment variable.
    Env(String),
}

/// Where the watch list lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// In the variable.
    Inline(Vec<Entry>),
    /// In a content-addressed file (the list is also kept here after decoding it).
    File(PathBuf, Vec<Entry>),
}

impl Watch {
    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        match self {
            Watch::Inline(e) | Watch::File(_, e) => e,
        }
    }
}

/// The decoded state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: Status,
    pub pid: u32,
    pub loaded: Option<Loaded>,
    pub root: PathBuf,
    pub digest: u64,
    pub watch: Watch,
}

impl State {
    /// The variable's value.
    pub fn encode(&self) -> String {
        let (generation, restore) = match &self.loaded {
            Some(l) => (l.generation.to_string(), l.restore.as_str()),
            None => (String::new(), ""),
        };
        let watch = match &self.watch {
            Watch::Inline(entries) => encode_entries(entries),
            Watch::File(path, _) => format!("@{}", escape(path)),
        };
        format!(
            "{VERSION}|{}|{}|{generation}|{restore}|{}|{:016x}|{watch}",
            self.status.as_char(),
            self.pid,
            escape(&self.root),
            self.digest
        )
    }

    /// Parse a value; `None` for anything malformed or from another format version. A watch
    /// list kept in a file is read from it.
    pub fn decode(text: &str) -> Option<Self> {
        let mut f = text.splitn(8, '|');
        if f.next()? != VERSION {
            return None;
        }
        let status = Status::from_str(f.next()?)?;
        let pid = f.next()?.parse().ok()?;
        let generation = f.next()?;
        let restore = f.next()?;
        let loaded = if generation.is_empty() {
            None
        } else {
            Some(Loaded {
                generation: generation.parse().ok()?,
                restore: restore.to_string(),
            })
        };
        let root = PathBuf::from(unescape(f.next()?)?);
        let digest = u64::from_str_radix(f.next()?, 16).ok()?;
        let watch = f.next()?;
        let watch = match watch.strip_prefix('@') {
            Some(path) => {
                // A file gc removed leaves no entries: the digest cannot match, so the hook
                // takes the slow path once, which still knows what is loaded.
                let path = PathBuf::from(unescape(path)?);
                let entries = fs_err::read_to_string(&path)
                    .ok()
                    .and_then(|t| decode_entries(&t))
                    .unwrap_or_default();
                Watch::File(path, entries)
            }
            None => Watch::Inline(decode_entries(watch)?),
        };
        Some(State {
            status,
            pid,
            loaded,
            root,
            digest,
            watch,
        })
    }
}

/// Entries as `;`-separated text.
pub fn encode_entries(entries: &[Entry]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Entry::Path(p) => escape(p),
            Entry::Env(name) => format!("${name}"),
        })
        .collect();
    parts.join(";")
}

fn decode_entries(text: &str) -> Option<Vec<Entry>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split(';')
        .map(|part| match part.strip_prefix('$') {
            Some(name) => Some(Entry::Env(name.to_string())),
            None => Some(Entry::Path(PathBuf::from(unescape(part)?))),
        })
        .collect()
}

fn escape(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7C"),
            ';' => out.push_str("%3B"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// FNV-1a, 64-bit: tiny, no allocation, and plenty to notice that a signature changed.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    /// Mix in bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Mix in a number.
    pub fn write_u64(&mut self, n: u64) {
        self.write(&n.to_le_bytes());
    }

    /// The hash.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// What `stat` says of a watched path (`None`: it cannot be stat'ed).
pub type Signature = Option<[u64; 5]>;

/// The signature of `p` (relative paths under `root`) as it is now.
pub fn signature(root: &Path, p: &Path) -> Signature {
    use std::os::unix::fs::MetadataExt;
    let meta = if p.is_absolute() {
        std::fs::metadata(p)
    } else {
        std::fs::metadata(root.join(p))
    };
    meta.ok().map(|m| {
        [
            m.mtime() as u64,
            m.mtime_nsec() as u64,
            m.size(),
            m.ino(),
            u64::from(m.is_dir()),
        ]
    })
}

/// The digest over `entries` as they are now: `stat` for paths (relative ones under
/// `root`), `getenv` for variables. Shared by the fast path and the slow path, so both
/// compute exactly the same value; the slow path passes the environment the shell will have
/// once it has run the printed code.
pub fn digest(root: &Path, entries: &[Entry], getenv: &dyn Fn(&str) -> Option<String>) -> u64 {
    digest_with(root, entries, getenv, &[])
}

/// [`digest`], with the signatures of some paths taken earlier (`early`): the slow path
/// `stat`s the files that decide trust before it reads them, so a change made while it
/// evaluates or builds is a change at the next prompt, never folded into the new state.
pub fn digest_with(
    root: &Path,
    entries: &[Entry],
    getenv: &dyn Fn(&str) -> Option<String>,
    early: &[(PathBuf, Signature)],
) -> u64 {
    let mut h = Fnv::default();
    for entry in entries {
        match entry {
            Entry::Path(p) => {
                let sig = match early.iter().find(|(e, _)| e == p) {
                    Some((_, sig)) => *sig,
                    None => signature(root, p),
                };
                match sig {
                    Some(words) => {
                        for w in words {
                            h.write_u64(w);
                        }
                    }
                    None => h.write_u64(u64::MAX),
                }
            }
            Entry::Env(name) => match getenv(name) {
                Some(v) => {
                    h.write_u64(v.len() as u64);
                    h.write(v.as_bytes());
                }
                None => h.write_u64(u64::MAX),
            },
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            status: Status::Active,
            pid: 4242,
            loaded: Some(Loaded {
                generation: 3,
                restore: "0123456789abcdef0123456789abcdef".into(),
            }),
            root: PathBuf::from("/home/u/odd|dir;name%"),
            digest: 0xdead_beef,
            watch: Watch::Inline(vec![
                Entry::Path("flake.nix".into()),
                Entry::Path("flake.lock".into()),
                Entry::Path(
                    "/home/u/.cache/envy/env-v1/0123456789abcdef0123456789abcdef/stamp".into(),
                ),
                Entry::Env("NIX_PATH".into()),
            ]),
        }
    }

    #[test]
    fn round_trip_with_awkward_paths() {
        let s = sample();
        let text = s.encode();
        assert_eq!(State::decode(&text), Some(s));
    }

    #[test]
    fn stays_small() {
        let text = sample().encode();
        assert!(text.len() < 256, "{} bytes: {text}", text.len());
    }

    #[test]
    fn blocked_state_without_environment() {
        let mut s = sample();
        s.status = Status::Blocked;
        s.loaded = None;
        assert_eq!(State::decode(&s.encode()), Some(s));
    }

    #[test]
    fn rejects_garbage_and_other_versions() {
        assert_eq!(State::decode(""), None);
        assert_eq!(State::decode("2|A|1||||0|"), None);
        assert_eq!(State::decode("1|X|1|||/r|0|"), None);
        assert_eq!(State::decode("1|A|1|x|r|/r|0|"), None);
    }

    #[test]
    fn watch_list_in_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("w");
        let entries = vec![Entry::Path("a.nix".into()), Entry::Env("X".into())];
        fs_err::write(&file, encode_entries(&entries)).unwrap();
        let mut s = sample();
        s.watch = Watch::File(file.clone(), entries);
        assert_eq!(State::decode(&s.encode()), Some(s));
    }

    #[test]
    fn digest_changes_with_content_and_existence() {
        let tmp = tempfile::tempdir().unwrap();
        let entries = vec![Entry::Path("f".into())];
        let digest = |root: &Path, e: &[Entry]| super::digest(root, e, &|_| None);
        let missing = digest(tmp.path(), &entries);
        fs_err::write(tmp.path().join("f"), "a").unwrap();
        let one = digest(tmp.path(), &entries);
        assert_ne!(missing, one);
        assert_eq!(one, digest(tmp.path(), &entries));
        fs_err::write(tmp.path().join("f"), "ab").unwrap();
        assert_ne!(one, digest(tmp.path(), &entries));
    }

    #[test]
    fn digest_covers_variables() {
        let entries = vec![Entry::Env("V".into())];
        let a = digest(Path::new("/"), &entries, &|_| None);
        let b = digest(Path::new("/"), &entries, &|_| Some(String::new()));
        let c = digest(Path::new("/"), &entries, &|_| Some("x".into()));
        assert!(a != b && b != c && a != c);
    }
}
