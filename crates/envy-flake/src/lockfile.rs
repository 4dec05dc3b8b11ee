//! `flake.lock`: the graph of locked inputs. Reads versions 5–7 (version 5's `info` merged
//! into `locked`; Nix 2.26+'s `parent` on relative path inputs) and writes version 7 byte for
//! byte as Nix 2.8 does: node keys from a depth-first walk over inputs in name order (a taken
//! name gets `_2`, `_3`…; a node seen before keeps its key), keys sorted, two-space indent,
//! and a final newline. Two lock files are equal when they serialise the same, and a lock with
//! no inputs equals a missing file.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use envy_fetch::attrs::{attrs_to_json, json_to_attrs};
use serde_json::{Map, Value};

use crate::{FlakeError, FlakeRef};

/// A path of input names from the root (`["gitdep", "lib"]`).
pub type InputPath = Vec<String>;

/// Index of a node in a [`LockFile`].
pub type NodeId = usize;

/// The lock file versions envy reads.
pub const READ_VERSIONS: std::ops::RangeInclusive<u64> = 5..=7;

/// The version envy writes.
pub const WRITE_VERSION: u64 = 7;

/// Where an input leads: a node, or (`follows`) another input path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edge {
    Node(NodeId),
    Follows(InputPath),
}

/// What a non-root node records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedNode {
    pub locked: FlakeRef,
    pub original: FlakeRef,
    pub is_flake: bool,
    /// Nix 2.26+: the input path of the flake a relative `path` input is relative to.
    pub parent: Option<InputPath>,
}

/// A node: the root (no `locked`) or a locked input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    pub inputs: BTreeMap<String, Edge>,
    pub locked: Option<LockedNode>,
}

/// A lock file.
#[derive(Debug, Clone)]
pub struct LockFile {
    nodes: Vec<Node>,
}

impl Default for LockFile {
    fn default() -> Self {
        LockFile::new()
    }
}

impl PartialEq for LockFile {
    fn eq(&self, other: &LockFile) -> bool {
        self.to_json() == other.to_json()
    }
}

impl LockFile {
    /// An empty lock (a root with no inputs).
    #[must_use]
    pub fn new() -> LockFile {
        LockFile {
            nodes: vec![Node::default()],
        }
    }

    /// The root node.
    #[must_use]
    pub fn root(&self) -> NodeId {
        0
    }

    /// A node.
    #[must_use]
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// A node, mutably.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id]
    }

    /// Add a locked node (not yet reachable).
    pub fn add_node(&mut self, locked: LockedNode) -> NodeId {
        self.nodes.push(Node {
            inputs: BTreeMap::new(),
            locked: Some(locked),
        });
        self.nodes.len() - 1
    }

    /// Whether the root has no inputs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes[0].inputs.is_empty()
    }

    /// Read `path`; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<LockFile, FlakeError> {
        match fs_err::read_to_string(path) {
            Ok(text) => LockFile::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LockFile::new()),
            Err(e) => Err(FlakeError::LockFile {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Parse lock-file JSON (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<LockFile, FlakeError> {
        let err = |message: String| FlakeError::LockFile {
            path: path.to_string(),
            message,
        };
        let json: Value =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let version = json["version"].as_u64().unwrap_or(0);
        if !READ_VERSIONS.contains(&version) {
            return Err(FlakeError::LockVersion {
                path: path.to_string(),
                version,
            });
        }
        let nodes = json["nodes"]
            .as_object()
            .ok_or_else(|| err("`nodes` is missing".into()))?;
        let root_key = json["root"]
            .as_str()
            .ok_or_else(|| err("`root` is missing".into()))?;
        let mut lock = LockFile::new();
        let mut ids: HashMap<String, NodeId> = HashMap::new();
        ids.insert(root_key.to_string(), 0);
        let root_json = nodes
            .get(root_key)
            .ok_or_else(|| err(format!("lock file references missing node `{root_key}`")))?;
        lock.read_inputs(0, root_json, nodes, &mut ids, &err)?;
        Ok(lock)
    }

    fn read_inputs(
        &mut self,
        id: NodeId,
        node: &Value,
        nodes: &Map<String, Value>,
        ids: &mut HashMap<String, NodeId>,
        err: &dyn Fn(String) -> FlakeError,
    ) -> Result<(), FlakeError> {
        let Some(inputs) = node.get("inputs").and_then(Value::as_object) else {
            return Ok(());
        };
        for (name, target) in inputs {
            let edge = match target {
                Value::Array(path) => Edge::Follows(
                    path.iter()
                        .map(|p| p.as_str().map(str::to_string))
                        .collect::<Option<_>>()
                        .ok_or_else(|| err(format!("input `{name}` has a bad follows path")))?,
                ),
                Value::String(key) => {
                    let child = match ids.get(key) {
                        Some(&0) => {
                            return Err(err("lock file contains cycle to root node".into()));
                        }
                        Some(&c) => c,
                        None => {
                            let json = nodes.get(key).ok_or_else(|| {
                                err(format!("lock file references missing node `{key}`"))
                            })?;
                            let locked = read_locked_node(json, err)?;
                            let c = self.add_node(locked);
                            ids.insert(key.clone(), c);
                            self.read_inputs(c, json, nodes, ids, err)?;
                            c
                        }
                    };
                    Edge::Node(child)
                }
                _ => {
                    return Err(err(format!(
                        "input `{name}` is neither a node nor a follows path"
                    )));
                }
            };
            self.nodes[id].inputs.insert(name.clone(), edge);
        }
        Ok(())
    }

    /// The JSON Nix 2.8 writes (keys sorted).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut keys: HashMap<NodeId, String> = HashMap::new();
        let mut taken: HashSet<String> = HashSet::new();
        let mut out: BTreeMap<String, Value> = BTreeMap::new();
        let root = self.dump_node("root".to_string(), 0, &mut keys, &mut taken, &mut out);
        let mut json = Map::new();
        json.insert("nodes".into(), Value::Object(out.into_iter().collect()));
        json.insert("root".into(), Value::String(root));
        json.insert("version".into(), Value::from(WRITE_VERSION));
        Value::Object(json)
    }

    fn dump_node(
        &self,
        key: String,
        id: NodeId,
        keys: &mut HashMap<NodeId, String>,
        taken: &mut HashSet<String>,
        out: &mut BTreeMap<String, Value>,
    ) -> String {
        if let Some(k) = keys.get(&id) {
            return k.clone();
        }
        let key = if taken.insert(key.clone()) {
            key
        } else {
            (2..)
                .map(|n| format!("{key}_{n}"))
                .find(|k| taken.insert(k.clone()))
                .expect("some suffix is free")
        };
        keys.insert(id, key.clone());
        let node = &self.nodes[id];
        let mut n = Map::new();
        if !node.inputs.is_empty() {
            let mut inputs = Map::new();
            for (name, edge) in &node.inputs {
                let v = match edge {
                    Edge::Node(child) => {
                        Value::String(self.dump_node(name.clone(), *child, keys, taken, out))
                    }
                    Edge::Follows(path) => {
                        Value::Array(path.iter().cloned().map(Value::String).collect())
                    }
                };
                inputs.insert(name.clone(), v);
            }
            n.insert("inputs".into(), Value::Object(inputs));
        }
        if let Some(l) = &node.locked {
            if !l.is_flake {
                n.insert("flake".into(), Value::Bool(false));
            }
            n.insert("locked".into(), attrs_to_json(&l.locked.to_attrs()));
            n.insert("original".into(), attrs_to_json(&l.original.to_attrs()));
            if let Some(p) = &l.parent {
                n.insert(
                    "parent".into(),
                    Value::Array(p.iter().cloned().map(Value::String).collect()),
                );
            }
        }
        out.insert(key.clone(), sort_json(Value::Object(n)));
        key
    }

    /// The file's text: Nix's `json.dump(2)` plus a newline.
    #[must_use]
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(&self.to_json()).expect("JSON values serialise") + "\n"
    }

    /// Write to `path` (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), FlakeError> {
        write_atomic(path, self.to_text().as_bytes())
    }

    /// Every input path reachable from the root and where it leads (Nix's `getAllInputs`;
    /// each node's inputs are listed once, under the first path that reaches it).
    #[must_use]
    pub fn all_inputs(&self) -> BTreeMap<InputPath, Edge> {
        let mut res = BTreeMap::new();
        let mut done = BTreeSet::new();
        self.flatten(0, &mut Vec::new(), &mut done, &mut res);
        res
    }

    fn flatten(
        &self,
        id: NodeId,
        prefix: &mut InputPath,
        done: &mut BTreeSet<NodeId>,
        res: &mut BTreeMap<InputPath, Edge>,
    ) {
        if !done.insert(id) {
            return;
        }
        for (name, edge) in &self.nodes[id].inputs {
            prefix.push(name.clone());
            res.insert(prefix.clone(), edge.clone());
            if let Edge::Node(child) = edge {
                self.flatten(*child, prefix, done, res);
            }
            prefix.pop();
        }
    }

    /// The node an input path leads to, following `follows` (from the root).
    #[must_use]
    pub fn find_input(&self, path: &[String]) -> Option<NodeId> {
        self.find_input_depth(path, 0)
    }

    fn find_input_depth(&self, path: &[String], depth: usize) -> Option<NodeId> {
        if depth > 1000 {
            return None;
        }
        let mut pos = 0;
        for name in path {
            pos = match self.nodes[pos].inputs.get(name)? {
                Edge::Node(n) => *n,
                Edge::Follows(target) => self.find_input_depth(target, depth + 1)?,
            };
        }
        Some(pos)
    }

    /// Every `follows` must lead somewhere (Nix's `LockFile::check`).
    pub fn check(&self) -> Result<(), FlakeError> {
        let inputs = self.all_inputs();
        for (path, edge) in &inputs {
            if let Edge::Follows(target) = edge
                && !target.is_empty()
                && self.find_input(target).is_none()
            {
                return Err(FlakeError::BadFollows {
                    input: print_input_path(path),
                    target: print_input_path(target),
                });
            }
        }
        Ok(())
    }

    /// Whether every node is locked (Nix 2.8 writes no lock file otherwise).
    #[must_use]
    pub fn is_locked(&self) -> bool {
        self.nodes.iter().skip(1).all(|n| {
            n.locked
                .as_ref()
                .is_none_or(|l| l.locked.input.is_locked() || l.parent.is_some())
        })
    }

    /// What changed between two lock files, one line per input, as Nix prints it (without
    /// colours).
    #[must_use]
    pub fn diff(old: &LockFile, new: &LockFile) -> String {
        let a = old.all_inputs();
        let b = new.all_inputs();
        let paths: BTreeSet<&InputPath> = a.keys().chain(b.keys()).collect();
        let mut out = String::new();
        for p in paths {
            match (a.get(p), b.get(p)) {
                (None, Some(e)) => {
                    out.push_str(&format!(
                        "• Added input '{}':\n    {}\n",
                        print_input_path(p),
                        new.describe(e)
                    ));
                }
                (Some(_), None) => {
                    out.push_str(&format!("• Removed input '{}'\n", print_input_path(p)));
                }
                (Some(x), Some(y)) => {
                    let same = match (x, y) {
                        (Edge::Node(i), Edge::Node(j)) => {
                            old.nodes[*i].locked.as_ref().map(|l| &l.locked)
                                == new.nodes[*j].locked.as_ref().map(|l| &l.locked)
                        }
                        (Edge::Follows(s), Edge::Follows(t)) => s == t,
                        _ => false,
                    };
                    if !same {
                        out.push_str(&format!(
                            "• Updated input '{}':\n    {}\n  → {}\n",
                            print_input_path(p),
                            old.describe(x),
                            new.describe(y)
                        ));
                    }
                }
                (None, None) => {}
            }
        }
        out
    }

    fn describe(&self, edge: &Edge) -> String {
        match edge {
            Edge::Follows(p) => format!("follows '{}'", print_input_path(p)),
            Edge::Node(n) => match &self.nodes[*n].locked {
                None => "'root'".to_string(),
                Some(l) => match l.locked.input.last_modified() {
                    Some(t) => format!("'{}' ({})", l.locked, utc_date(t)),
                    None => format!("'{}'", l.locked),
                },
            },
        }
    }
}

/// `a/b/c`.
#[must_use]
pub fn print_input_path(path: &[String]) -> String {
    path.join("/")
}

/// `YYYY-MM-DD` of a Unix time (UTC).
#[must_use]
pub fn utc_date(secs: u64) -> String {
    let (y, m, d, ..) = envy_fetch::time::civil(secs);
    format!("{y:04}-{m:02}-{d:02}")
}

fn read_locked_node(
    json: &Value,
    err: &dyn Fn(String) -> FlakeError,
) -> Result<LockedNode, FlakeError> {
    let mut locked = json_to_attrs(json.get("locked").unwrap_or(&Value::Null))
        .map_err(|e| err(format!("attribute `locked`: {e}")))?;
    if let Some(info) = json.get("info") {
        locked.extend(json_to_attrs(info).map_err(|e| err(format!("attribute `info`: {e}")))?);
    }
    let original = json_to_attrs(json.get("original").unwrap_or(&Value::Null))
        .map_err(|e| err(format!("attribute `original`: {e}")))?;
    let parent = match json.get("parent") {
        None => None,
        Some(Value::Array(p)) => Some(
            p.iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| err("bad `parent` path".into()))?,
        ),
        Some(_) => return Err(err("bad `parent` path".into())),
    };
    let node = LockedNode {
        locked: FlakeRef::from_attrs(&locked)?,
        original: FlakeRef::from_attrs(&original)?,
        is_flake: json.get("flake").and_then(Value::as_bool).unwrap_or(true),
        parent,
    };
    if !node.locked.input.is_locked() && node.parent.is_none() {
        return Err(err(format!(
            "lock file contains mutable lock `{}`",
            attrs_to_json(&node.locked.to_attrs())
        )));
    }
    Ok(node)
}

/// A JSON value with every object's keys sorted.
#[must_use]
pub fn sort_json(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, sort_json(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_json).collect()),
        other => other,
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FlakeError> {
    let werr = |source| FlakeError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(werr)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut f = fs_err::File::create(&tmp).map_err(werr)?;
    f.write_all(bytes).map_err(werr)?;
    f.sync_all().map_err(werr)?;
    drop(f);
    fs_err::rename(&tmp, path).map_err(werr)
}

#[cfg(test)]
mod tests {
    use super::*;

    // ex4 of REFERENCE-flakes.md (Nix 2.8's own output): follows of a nested input, duplicate
    // nodes for identical refs, `_2`/`_3` keys.
    const EX4: &str = r#"{"nodes":{"gitdep":{"inputs":{"lib":"lib"},"locked":{"lastModified":1704153600,"narHash":"sha256-/6L7rkw1oXw3Jiw6T6e8Q9v+6DiUSG+Hy0lPOBA+uJA=","ref":"main","rev":"b2e0f7b7f4c7911f135976a408bd30a2f2b451c5","revCount":1,"type":"git","url":"file:///tmp/flk/ex/deps/gitdep"},"original":{"type":"git","url":"file:///tmp/flk/ex/deps/gitdep"}},"gitdep_2":{"inputs":{"lib":"lib_3"},"locked":{"lastModified":1704153600,"narHash":"sha256-/6L7rkw1oXw3Jiw6T6e8Q9v+6DiUSG+Hy0lPOBA+uJA=","ref":"main","rev":"b2e0f7b7f4c7911f135976a408bd30a2f2b451c5","revCount":1,"type":"git","url":"file:///tmp/flk/ex/deps/gitdep"},"original":{"type":"git","url":"file:///tmp/flk/ex/deps/gitdep"}},"lib":{"locked":{"lastModified":1704067200,"narHash":"sha256-xnMmCvN0dF2RTR8yVXOKyubL8gmdMUH+XPEBtjSeiug=","ref":"main","rev":"1bd53c4180be719eed419cddee3dabb58fe1e65e","revCount":1,"type":"git","url":"file:///tmp/flk/ex/deps/lib"},"original":{"type":"git","url":"file:///tmp/flk/ex/deps/lib"}},"lib_2":{"locked":{"lastModified":1704067200,"narHash":"sha256-xnMmCvN0dF2RTR8yVXOKyubL8gmdMUH+XPEBtjSeiug=","ref":"main","rev":"1bd53c4180be719eed419cddee3dabb58fe1e65e","revCount":1,"type":"git","url":"file:///tmp/flk/ex/deps/lib"},"original":{"type":"git","url":"file:///tmp/flk/ex/deps/lib"}},"lib_3":{"locked":{"lastModified":1704067200,"narHash":"sha256-xnMmCvN0dF2RTR8yVXOKyubL8gmdMUH+XPEBtjSeiug=","ref":"main","rev":"1bd53c4180be719eed419cddee3dabb58fe1e65e","revCount":1,"type":"git","url":"file:///tmp/flk/ex/deps/lib"},"original":{"type":"git","url":"file:///tmp/flk/ex/deps/lib"}},"pathdep":{"inputs":{"gitdep":"gitdep_2"},"locked":{"lastModified":1706832000,"narHash":"sha256-nbuhcmhFLUrjI1e6hJw40qkB7vCN58UIWIQ13KhXov4=","path":"/tmp/flk/ex/deps/pathdep","type":"path"},"original":{"path":"/tmp/flk/ex/deps/pathdep","type":"path"}},"root":{"inputs":{"gitdep":"gitdep","lib":"lib_2","libalias":["gitdep","lib"],"pathdep":"pathdep"}}},"root":"root","version":7}"#;

    #[test]
    fn reads_and_rewrites_nix_lock_files_identically() {
        let lock = LockFile::parse(EX4, "flake.lock").unwrap();
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(EX4).unwrap())
            .unwrap()
            + "\n";
        assert_eq!(lock.to_text(), pretty);
        assert_eq!(
            lock.find_input(&["libalias".into()]),
            lock.find_input(&["gitdep".into(), "lib".into()])
        );
        lock.check().unwrap();
        assert!(lock.is_locked());
    }

    #[test]
    fn names_nodes_by_the_depth_first_walk() {
        // Built in any order, keys come from the walk: gitdep's lib is seen first.
        let lock = LockFile::parse(EX4, "x").unwrap();
        let mut fresh = LockFile::new();
        let clone_node = |id: NodeId| lock.node(id).locked.clone().unwrap();
        let ids: Vec<NodeId> = (1..lock.nodes.len())
            .rev()
            .map(|i| fresh.add_node(clone_node(i)))
            .collect();
        let map = |old: NodeId| ids[lock.nodes.len() - 1 - old];
        for old in 0..lock.nodes.len() {
            let new_id = if old == 0 { 0 } else { map(old) };
            for (name, e) in &lock.node(old).inputs {
                let e = match e {
                    Edge::Node(n) => Edge::Node(map(*n)),
                    f => f.clone(),
                };
                fresh.node_mut(new_id).inputs.insert(name.clone(), e);
            }
        }
        assert_eq!(fresh.to_text(), lock.to_text());
    }

    #[test]
    fn version_5_info_and_2_26_parent() {
        let v5 = r#"{"nodes":{"a":{"info":{"lastModified":5,"narHash":"sha256-aPy2yadX/JLxQmmcJfa4qJS8+WT6UDd6kxAlunzGdx0="},"locked":{"path":"/a","type":"path"},"original":{"path":"/a","type":"path"}},"root":{"inputs":{"a":"a"}}},"root":"root","version":5}"#;
        let lock = LockFile::parse(v5, "x").unwrap();
        let a = lock.node(1).locked.as_ref().unwrap();
        assert_eq!(a.locked.input.last_modified(), Some(5));
        assert!(lock.to_text().contains("\"version\": 7"));

        let rel = r#"{"nodes":{"root":{"inputs":{"sub":"sub"}},"sub":{"locked":{"path":"sub","type":"path"},"original":{"path":"sub","type":"path"},"parent":[]}},"root":"root","version":7}"#;
        let lock = LockFile::parse(rel, "x").unwrap();
        assert_eq!(lock.node(1).locked.as_ref().unwrap().parent, Some(vec![]));
        assert_eq!(
            lock.to_json(),
            sort_json(serde_json::from_str(rel).unwrap())
        );

        for (bad, msg) in [
            (
                r#"{"nodes":{"root":{}},"root":"root","version":4}"#,
                "unsupported version 4",
            ),
            (
                r#"{"nodes":{"root":{"inputs":{"a":"a"}},"a":{"locked":{"path":"/a","type":"path"},"original":{"path":"/a","type":"path"}}},"root":"root","version":7}"#,
                "mutable lock",
            ),
            (
                r#"{"nodes":{"root":{"inputs":{"a":"b"}}},"root":"root","version":7}"#,
                "missing node `b`",
            ),
        ] {
            let e = LockFile::parse(bad, "flake.lock").unwrap_err().to_string();
            assert!(e.contains(msg), "{e}");
        }
    }

    #[test]
    fn empty_lock_equals_missing_and_follows_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let missing = LockFile::read(&dir.path().join("flake.lock")).unwrap();
        let empty =
            LockFile::parse(r#"{"nodes":{"root":{}},"root":"root","version":7}"#, "x").unwrap();
        assert!(missing == empty && missing.is_empty());
        let mut bad = LockFile::new();
        bad.node_mut(0)
            .inputs
            .insert("a".into(), Edge::Follows(vec!["nope".into()]));
        assert!(matches!(bad.check(), Err(FlakeError::BadFollows { .. })));
        let mut root_follow = LockFile::new();
        root_follow
            .node_mut(0)
            .inputs
            .insert("a".into(), Edge::Follows(vec![]));
        root_follow.check().unwrap();
        assert!(root_follow.to_text().contains("\"a\": []"));
    }

    #[test]
    fn diff_reads_like_nix() {
        let new = LockFile::parse(EX4, "x").unwrap();
        let d = LockFile::diff(&LockFile::new(), &new);
        assert!(d.starts_with("• Added input 'gitdep':\n    'git+file:///tmp/flk/ex/deps/gitdep?ref=main&rev=b2e0f7b7f4c7911f135976a408bd30a2f2b451c5' (2024-01-02)\n"), "{d}");
        assert!(d.contains("• Added input 'libalias':\n    follows 'gitdep/lib'\n"));
        assert_eq!(LockFile::diff(&new, &new), "");
    }
}
