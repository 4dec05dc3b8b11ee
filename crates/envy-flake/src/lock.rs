//! Locking a flake's inputs, as Nix 2.8's `lockFlake` does: walk the declared inputs, keep
//! what the old lock file records when an input's reference did not change, fetch what is
//! new (reusing a dependency's own `flake.lock` for its inputs), apply `follows` (relative to
//! the root in the top-level lock, to the dependency in a dependency's own lock; overrides
//! from above relative to the flake declaring them) and nested overrides at any depth, then
//! write `flake.lock` only if it changed, every input is locked and the flake is local.
//!
//! `flake.nix` is evaluated through [`FlakeNixReader`], which the caller implements with the
//! evaluator. Nothing is printed: what Nix would warn about comes back in
//! [`LockedFlake::notices`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use envy_fetch::{Fetched, Fetcher, Input, SourceTree};

use crate::flake_nix::{FlakeInput, FlakeInputs, FlakeNix, FlakeNixParts};
use crate::lockfile::{Edge, InputPath, LockFile, LockedNode, NodeId, print_input_path};
use crate::{FlakeError, FlakeRef, Registries};

/// Evaluates a `flake.nix`.
pub trait FlakeNixReader {
    /// Evaluate `<tree>/<subdir>/flake.nix` (shown to the user as `display`) and report its
    /// parts. Files are read through `tree`, which may hide untracked files.
    fn read_parts(
        &self,
        tree: &SourceTree,
        subdir: &str,
        display: &Path,
    ) -> Result<FlakeNixParts, FlakeError>;

    /// The bytes to use for the real file `path` instead of reading it (`Some(None)`: treat it
    /// as missing), when the caller pinned them (see [`crate::mounts::Mounts::pin`]).
    fn pinned(&self, _path: &Path) -> Option<Option<Vec<u8>>> {
        None
    }
}

/// A fetched flake and what its `flake.nix` declares.
#[derive(Debug, Clone)]
pub struct Flake {
    /// The reference as given.
    pub original: FlakeRef,
    /// After registry lookup.
    pub resolved: FlakeRef,
    /// Locked (narHash, rev, …).
    pub locked: FlakeRef,
    /// The source tree.
    pub tree: SourceTree,
    /// `flake.nix`.
    pub nix: FlakeNix,
}

impl Flake {
    /// The real path of the flake's `flake.nix`.
    #[must_use]
    pub fn flake_nix_path(&self) -> PathBuf {
        join_subdir(self.tree.root(), &self.locked.subdir).join("flake.nix")
    }
}

/// How to lock.
#[derive(Debug, Clone)]
pub struct LockFlags {
    /// Ignore the old lock file (`flake update`).
    pub recreate_lock_file: bool,
    /// Allow the lock to change (`--no-update-lock-file` clears it).
    pub update_lock_file: bool,
    /// Write a changed lock to disk.
    pub write_lock_file: bool,
    /// Resolve indirect references through the registries.
    pub use_registries: bool,
    /// Inputs to re-lock (`flake update INPUT`, `--update-input`).
    pub input_updates: BTreeSet<InputPath>,
    /// `--override-input INPUT REF`: the input at that path comes from `REF`, whatever any
    /// `flake.nix` on the way says (an override from the command line outranks overrides in
    /// the flakes; the input keeps its flake-ness).
    pub input_overrides: std::collections::BTreeMap<InputPath, FlakeRef>,
}

impl Default for LockFlags {
    fn default() -> Self {
        LockFlags {
            recreate_lock_file: false,
            update_lock_file: true,
            write_lock_file: true,
            use_registries: true,
            input_updates: BTreeSet::new(),
            input_overrides: Default::default(),
        }
    }
}

/// A locked flake.
#[derive(Debug, Clone)]
pub struct LockedFlake {
    pub flake: Flake,
    pub lock: LockFile,
    /// Whether `flake.lock` was written.
    pub wrote_lock_file: bool,
    /// Warnings, in Nix's words (`creating lock file '…'`).
    pub notices: Vec<String>,
}

#[derive(Debug, Clone)]
struct LockParent {
    path: InputPath,
    absolute: bool,
}

/// Where relative `path:` inputs of a flake resolve: a tree and a directory in it.
#[derive(Debug, Clone)]
struct SourceDir {
    tree: SourceTree,
    subdir: String,
}

struct CacheEntry {
    original: FlakeRef,
    parent: Option<PathBuf>,
    fetched: Fetched,
    resolved: FlakeRef,
}

/// Locks flakes.
pub struct Locker<'a> {
    fetcher: &'a Fetcher,
    registries: &'a Registries,
    reader: &'a dyn FlakeNixReader,
    cache: RefCell<Vec<CacheEntry>>,
}

struct LockState<'f> {
    flags: &'f LockFlags,
    new: LockFile,
    /// Overrides by the input path they apply to, with the path of the flake declaring them
    /// (their `follows` are relative to it).
    overrides: std::collections::BTreeMap<InputPath, (FlakeInput, InputPath)>,
    /// Input paths an override was applied to (to warn about `--override-input` flags that
    /// match nothing).
    overridden: BTreeSet<InputPath>,
    parents: Vec<FlakeRef>,
}

impl<'a> Locker<'a> {
    /// A locker fetching with `fetcher`, resolving through `registries`, reading `flake.nix`
    /// with `reader`.
    pub fn new(
        fetcher: &'a Fetcher,
        registries: &'a Registries,
        reader: &'a dyn FlakeNixReader,
    ) -> Locker<'a> {
        Locker {
            fetcher,
            registries,
            reader,
            cache: RefCell::new(Vec::new()),
        }
    }

    /// The fetcher.
    #[must_use]
    pub fn fetcher(&self) -> &Fetcher {
        self.fetcher
    }

    /// Fetch a reference (resolving it through the registries if indirect and allowed):
    /// the tree, the resolved and the locked reference. A relative `path:` reference resolves
    /// inside `parent`.
    fn fetch_ref(
        &self,
        original: &FlakeRef,
        allow_lookup: bool,
        parent: Option<&SourceDir>,
    ) -> Result<(Fetched, FlakeRef, FlakeRef), FlakeError> {
        let parent_key = parent.map(|p| join_subdir(p.tree.root(), &p.subdir));
        if let Some(e) = self
            .cache
            .borrow()
            .iter()
            .find(|e| &e.original == original && e.parent == parent_key)
        {
            let locked = FlakeRef {
                input: e.fetched.input.clone(),
                subdir: e.resolved.subdir.clone(),
            };
            return Ok((e.fetched.clone(), e.resolved.clone(), locked));
        }
        let resolved = if original.input.is_direct() {
            original.clone()
        } else if allow_lookup {
            self.registries.resolve(original)?
        } else {
            return Err(FlakeError::NoRegistryLookup {
                reference: original.to_string(),
            });
        };
        let fetched = match relative_path(&resolved.input) {
            Some(rel) => {
                let parent = parent.ok_or_else(|| {
                    FlakeError::FetchPlain(envy_fetch::FetchError::RelativePath {
                        input: resolved.input.to_string(),
                    })
                })?;
                let inside =
                    normalize_rel(&Path::new(&parent.subdir).join(rel)).ok_or_else(|| {
                        FlakeError::FetchPlain(envy_fetch::FetchError::OutsideParent {
                            path: rel.to_string(),
                        })
                    })?;
                let tmp = resolved.input.clone().with("path", inside);
                let mut f = self.fetcher.fetch_in(&tmp, Some(&parent.tree))?;
                f.input = f.input.with("path", rel.to_string());
                f
            }
            None => self.fetcher.fetch(&resolved.input)?,
        };
        let locked = FlakeRef {
            input: fetched.input.clone(),
            subdir: resolved.subdir.clone(),
        };
        self.cache.borrow_mut().push(CacheEntry {
            original: original.clone(),
            parent: parent_key,
            fetched: fetched.clone(),
            resolved: resolved.clone(),
        });
        Ok((fetched, resolved, locked))
    }

    /// Fetch a flake and read its `flake.nix`.
    pub fn get_flake(&self, original: &FlakeRef, allow_lookup: bool) -> Result<Flake, FlakeError> {
        self.get_flake_in(original, allow_lookup, None)
    }

    fn get_flake_in(
        &self,
        original: &FlakeRef,
        allow_lookup: bool,
        parent: Option<&SourceDir>,
    ) -> Result<Flake, FlakeError> {
        let (fetched, resolved, locked) = self.fetch_ref(original, allow_lookup, parent)?;
        let rel = Path::new(&locked.subdir).join("flake.nix");
        if normalize_rel(&rel).is_none() || fetched.tree.resolve(&rel).is_none_or(|p| !p.is_file())
        {
            return Err(FlakeError::MissingFlakeNix {
                reference: locked.to_string(),
                subdir: if locked.subdir.is_empty() {
                    String::new()
                } else {
                    format!("{}/", locked.subdir)
                },
            });
        }
        let display = join_subdir(fetched.tree.root(), &locked.subdir).join("flake.nix");
        let parts = self
            .reader
            .read_parts(&fetched.tree, &locked.subdir, &display)?;
        let nix = FlakeNix::from_parts(&parts, &display, &locked.to_string())?;
        Ok(Flake {
            original: original.clone(),
            resolved,
            locked,
            tree: fetched.tree,
            nix,
        })
    }

    /// The `flake.lock` inside a flake's tree (as the tree shows it: an untracked lock file of
    /// a git work tree is not there, as in Nix), or the bytes the caller pinned for it.
    pub fn read_lock_file(&self, tree: &SourceTree, subdir: &str) -> Result<LockFile, FlakeError> {
        let Some(p) = tree.resolve(&Path::new(subdir).join("flake.lock")) else {
            return Ok(LockFile::new());
        };
        match self.reader.pinned(&p) {
            None => LockFile::read(&p),
            Some(None) => Ok(LockFile::new()),
            Some(Some(bytes)) => {
                LockFile::parse(&String::from_utf8_lossy(&bytes), &p.display().to_string())
            }
        }
    }

    /// Lock `top`, writing `flake.lock` when `flags` allow and it changed.
    pub fn lock_flake(&self, top: &FlakeRef, flags: &LockFlags) -> Result<LockedFlake, FlakeError> {
        let mut flake = self.get_flake(top, flags.use_registries)?;
        let old = Rc::new(self.read_lock_file(&flake.tree, &flake.locked.subdir)?);
        let mut state = LockState {
            flags,
            new: LockFile::new(),
            overrides: flags
                .input_overrides
                .iter()
                .map(|(path, reference)| {
                    let input = FlakeInput {
                        reference: Some(reference.clone()),
                        is_flake: true,
                        follows: None,
                        overrides: Default::default(),
                    };
                    (path.clone(), (input, Vec::new()))
                })
                .collect(),
            overridden: BTreeSet::new(),
            parents: Vec::new(),
        };
        let src = SourceDir {
            tree: flake.tree.clone(),
            subdir: flake.locked.subdir.clone(),
        };
        let old_root = (!flags.recreate_lock_file).then(|| (old.clone(), old.root()));
        let root = state.new.root();
        self.compute_locks(
            &mut state,
            &flake.nix.inputs,
            root,
            &[],
            old_root,
            &LockParent {
                path: vec![],
                absolute: true,
            },
            &src,
        )?;
        let new = state.new;
        new.check()?;
        let mut notices = Vec::new();
        for (path, reference) in &flags.input_overrides {
            if !state.overridden.contains(path) {
                notices.push(format!(
                    "the flag '--override-input {} {reference}' does not match any input",
                    print_input_path(path)
                ));
            }
        }
        let mut wrote = false;
        if new != *old {
            let diff = LockFile::diff(&old, &new);
            let diff = diff.trim_end();
            match (flags.write_lock_file, source_path(&top.input)) {
                (true, Some(source)) => {
                    if !new.is_locked() {
                        notices.push(format!(
                            "will not write lock file of flake '{top}' because it has a mutable input"
                        ));
                    } else {
                        if !flags.update_lock_file {
                            return Err(FlakeError::LockChangesNotAllowed {
                                reference: top.to_string(),
                            });
                        }
                        let rel = if top.subdir.is_empty() {
                            "flake.lock".to_string()
                        } else {
                            format!("{}/flake.lock", top.subdir)
                        };
                        let path = source.join(&rel);
                        if path.exists() {
                            if diff.is_empty() {
                                notices.push(format!("updating lock file '{}'", path.display()));
                            } else {
                                notices.push(format!(
                                    "updating lock file '{}':\n{diff}",
                                    path.display()
                                ));
                            }
                        } else {
                            notices.push(format!("creating lock file '{}'", path.display()));
                        }
                        new.write(&path)?;
                        wrote = true;
                        if top.input.input_type() == "git" {
                            self.fetcher.git_add_intent_to_add(&source, &rel)?;
                        }
                        // The flake's own tree changed: fetch it again.
                        self.fetcher.forget(&flake.resolved.input);
                        self.cache.borrow_mut().retain(|e| e.original != *top);
                        flake = self.get_flake(top, flags.use_registries)?;
                    }
                }
                _ => notices.push(format!(
                    "not writing modified lock file of flake '{top}':\n{diff}"
                )),
            }
        }
        Ok(LockedFlake {
            flake,
            lock: new,
            wrote_lock_file: wrote,
            notices,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn compute_locks(
        &self,
        st: &mut LockState<'_>,
        inputs: &FlakeInputs,
        node: NodeId,
        prefix: &[String],
        old_node: Option<(Rc<LockFile>, NodeId)>,
        parent: &LockParent,
        src: &SourceDir,
    ) -> Result<(), FlakeError> {
        for (id, input) in inputs {
            let mut p = prefix.to_vec();
            p.push(id.clone());
            add_overrides(st, prefix, &p, &input.overrides);
        }
        for (id, input2) in inputs {
            let mut input_path = prefix.to_vec();
            input_path.push(id.clone());
            self.lock_input(
                st,
                id,
                input2,
                node,
                &input_path,
                old_node.clone(),
                parent,
                src,
            )
            .map_err(|e| {
                e.context(format!(
                    "while updating the flake input '{}'",
                    print_input_path(&input_path)
                ))
            })?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn lock_input(
        &self,
        st: &mut LockState<'_>,
        id: &str,
        input2: &FlakeInput,
        node: NodeId,
        input_path: &InputPath,
        old_node: Option<(Rc<LockFile>, NodeId)>,
        parent: &LockParent,
        src: &SourceDir,
    ) -> Result<(), FlakeError> {
        // An override that sets neither a reference nor `follows` only passes overrides further
        // down: the input stays what its flake says.
        let has_override = st
            .overrides
            .get(input_path)
            .is_some_and(|(o, _)| o.reference.is_some() || o.follows.is_some());
        let (input, declarer) = match st.overrides.get_mut(input_path).filter(|_| has_override) {
            Some((o, declarer)) => {
                st.overridden.insert(input_path.clone());
                // The overridden input keeps its own flake-ness.
                o.is_flake = input2.is_flake;
                (o.clone(), Some(declarer.clone()))
            }
            None => (input2.clone(), None),
        };
        if let Some(follows) = &input.follows {
            let target = if parent.absolute && !has_override {
                follows.clone()
            } else {
                let mut t = match &declarer {
                    Some(d) => d.clone(),
                    None => parent.path.clone(),
                };
                t.extend(follows.iter().cloned());
                t
            };
            st.new
                .node_mut(node)
                .inputs
                .insert(id.to_string(), Edge::Follows(target));
            return Ok(());
        }
        let reference = input
            .reference
            .clone()
            .expect("an input without follows has a reference");
        let old_lock = match &old_node {
            Some((lock, n)) if !st.flags.input_updates.contains(input_path) => {
                match lock.node(*n).inputs.get(id) {
                    Some(Edge::Node(c)) => Some((lock.clone(), *c)),
                    _ => None,
                }
            }
            _ => None,
        };
        let old_locked = old_lock.as_ref().map(|(l, c)| {
            l.node(*c)
                .locked
                .clone()
                .expect("non-root nodes are locked")
        });
        if let (Some((old_lock_file, old_id)), Some(ol)) = (&old_lock, &old_locked)
            && ol.original == reference
            && !has_override
        {
            let child = st.new.add_node(ol.clone());
            st.new
                .node_mut(node)
                .inputs
                .insert(id.to_string(), Edge::Node(child));
            let has_child_update = st
                .flags
                .input_updates
                .iter()
                .any(|u| u.len() > input_path.len() && u.starts_with(input_path));
            if has_child_update {
                let flake = self.get_flake_in(&ol.locked, false, Some(src))?;
                let child_src = self.child_source(&flake, &ol.locked, src);
                self.compute_locks(
                    st,
                    &flake.nix.inputs,
                    child,
                    input_path,
                    Some((old_lock_file.clone(), *old_id)),
                    parent,
                    &child_src,
                )?;
            } else {
                let mut fake = FlakeInputs::new();
                for (name, e) in &old_lock_file.node(*old_id).inputs {
                    let fi = match e {
                        Edge::Node(n) => {
                            let l = old_lock_file.node(*n).locked.as_ref().expect("locked");
                            FlakeInput {
                                reference: Some(l.original.clone()),
                                is_flake: l.is_flake,
                                follows: None,
                                overrides: FlakeInputs::new(),
                            }
                        }
                        Edge::Follows(p) => FlakeInput {
                            reference: None,
                            is_flake: true,
                            follows: Some(p.clone()),
                            overrides: FlakeInputs::new(),
                        },
                    };
                    fake.insert(name.clone(), fi);
                }
                self.compute_locks(
                    st,
                    &fake,
                    child,
                    input_path,
                    Some((old_lock_file.clone(), *old_id)),
                    parent,
                    src,
                )?;
            }
            return Ok(());
        }
        if !input.is_flake {
            let (_, _, locked) = self.fetch_ref(&reference, st.flags.use_registries, Some(src))?;
            let n = st.new.add_node(LockedNode {
                locked,
                original: reference,
                is_flake: false,
                parent: None,
            });
            st.new
                .node_mut(node)
                .inputs
                .insert(id.to_string(), Edge::Node(n));
            return Ok(());
        }
        let flake = self.get_flake_in(&reference, st.flags.use_registries, Some(src))?;
        let original = input2
            .reference
            .clone()
            .unwrap_or_else(|| reference.clone());
        let child = st.new.add_node(LockedNode {
            locked: flake.locked.clone(),
            original,
            is_flake: true,
            parent: None,
        });
        st.new
            .node_mut(node)
            .inputs
            .insert(id.to_string(), Edge::Node(child));
        if let Some(p) = st.parents.iter().find(|p| **p == reference) {
            return Err(FlakeError::Circular {
                reference: p.to_string(),
            });
        }
        st.parents.push(reference.clone());
        let new_parent = LockParent {
            path: input_path.clone(),
            absolute: old_lock.is_some(),
        };
        let child_old = match old_lock {
            Some(o) => o,
            None => {
                let own = Rc::new(self.read_lock_file(&flake.tree, &flake.locked.subdir)?);
                let root = own.root();
                (own, root)
            }
        };
        let child_src = self.child_source(&flake, &reference, src);
        let result = self.compute_locks(
            st,
            &flake.nix.inputs,
            child,
            input_path,
            Some(child_old),
            &new_parent,
            &child_src,
        );
        st.parents.pop();
        result
    }

    /// Where the relative inputs of a dependency resolve: inside the parent's tree for a
    /// relative `path:` dependency (as Nix resolves them in the parent's store copy), else in
    /// the dependency's own tree.
    fn child_source(&self, flake: &Flake, reference: &FlakeRef, src: &SourceDir) -> SourceDir {
        match relative_path(&reference.input) {
            Some(rel) => SourceDir {
                tree: src.tree.clone(),
                subdir: normalize_rel(&Path::new(&src.subdir).join(rel).join(&reference.subdir))
                    .unwrap_or_default(),
            },
            None => SourceDir {
                tree: flake.tree.clone(),
                subdir: flake.locked.subdir.clone(),
            },
        }
    }
}

/// Record `overrides` of the input at `path`, and theirs below them, at any depth (as Nix
/// 2.18+ does; 2.8 only honoured one level). An override declared nearer the root wins.
fn add_overrides(
    st: &mut LockState<'_>,
    declarer: &[String],
    path: &[String],
    overrides: &FlakeInputs,
) {
    for (name, o) in overrides {
        let mut p = path.to_vec();
        p.push(name.clone());
        st.overrides
            .entry(p.clone())
            .or_insert_with(|| (o.clone(), declarer.to_vec()));
        add_overrides(st, declarer, &p, &o.overrides);
    }
}

/// The path of a relative `path:` input.
fn relative_path(input: &Input) -> Option<&str> {
    (input.input_type() == "path")
        .then(|| input.get_str("path"))
        .flatten()
        .filter(|p| !p.starts_with('/'))
}

/// Where a local flake lives on disk (to write its lock file): a `path:` directory, or the
/// work tree of a `git+file` reference without `ref`/`rev`.
#[must_use]
pub fn source_path(input: &Input) -> Option<PathBuf> {
    match input.input_type() {
        "path" => input
            .get_str("path")
            .filter(|p| p.starts_with('/'))
            .map(PathBuf::from),
        "git" if input.get_str("ref").is_none() && input.get_str("rev").is_none() => {
            let url = envy_fetch::ParsedUrl::parse(input.get_str("url")?).ok()?;
            (url.scheme == "file")
                .then(|| PathBuf::from(envy_fetch::url::percent_decode(&url.path)))
        }
        _ => None,
    }
}

fn join_subdir(root: &Path, subdir: &str) -> PathBuf {
    if subdir.is_empty() {
        root.to_owned()
    } else {
        root.join(subdir)
    }
}

/// `a/./b/../c` → `a/c`; `None` if it climbs above its start.
fn normalize_rel(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        assert_eq!(
            normalize_rel(Path::new("a/./b/../c")).as_deref(),
            Some("a/c")
        );
        assert_eq!(normalize_rel(Path::new("")).as_deref(), Some(""));
        assert_eq!(normalize_rel(Path::new("../x")), None);
        assert_eq!(normalize_rel(Path::new("/x")), None);
    }

    #[test]
    fn local_source_paths() {
        let p = |s: &str| source_path(&Input::from_url(s).unwrap());
        assert_eq!(p("path:/a/b"), Some(PathBuf::from("/a/b")));
        assert_eq!(p("git+file:///a?dir=x"), Some(PathBuf::from("/a")));
        assert_eq!(p("git+file:///a?ref=main"), None);
        assert_eq!(p("github:o/r"), None);
    }
}
