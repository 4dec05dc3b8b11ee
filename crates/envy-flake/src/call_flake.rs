//! Calling a locked flake: the Nix code in `call-flake.nix` (Nix's `call-flake` semantics)
//! applied to the lock file, the root's `sourceInfo`, its subdirectory, and which node
//! declares each relative `path:` node. Nodes are fetched through `builtins.fetchTree` (so
//! the evaluator must have been built with this crate's [`Fetch`](envy_eval::Fetch)), only
//! when the evaluation uses them.

use std::collections::BTreeMap;

use envy_eval::value::Thunk;
use envy_eval::{EvalResult, Evaluator, Origin, Pos, Value};
use serde_json::Value as Json;

use crate::lock::LockedFlake;
use crate::mounts::Mounts;
use crate::nix_value::{attrs, tree_attrs_value};

const CALL_FLAKE: &str = include_str!("call-flake.nix");

/// For each node key, the key of the first node that has it as an input.
fn parents(lock_json: &Json) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(nodes) = lock_json["nodes"].as_object() {
        for (key, node) in nodes {
            if let Some(inputs) = node["inputs"].as_object() {
                for child in inputs.values().filter_map(Json::as_str) {
                    out.entry(child.to_string()).or_insert_with(|| key.clone());
                }
            }
        }
    }
    out
}

/// The value of `locked` (what `builtins.getFlake` returns).
pub fn call_flake(ev: &mut Evaluator, mounts: &Mounts, locked: &LockedFlake) -> EvalResult<Value> {
    let flake = &locked.flake;
    let root_path = mounts.mount(&flake.tree);
    let root_src = tree_attrs_value(envy_fetch::tree_attrs(
        &flake.locked.input,
        &root_path,
        false,
    ));
    let lock_json = locked.lock.to_json();
    let parents = attrs(
        parents(&lock_json)
            .iter()
            .map(|(k, v)| (k.as_str(), Value::string(v.as_str())))
            .collect(),
    );
    let f = ev.parse(CALL_FLAKE, Origin::Internal("call-flake.nix"), "/")?;
    let f = ev.eval_expr(f)?;
    let mut v = Thunk::apply(f, Value::string(lock_json.to_string()));
    v = Thunk::apply(v, root_src);
    v = Thunk::apply(v, Value::string(flake.locked.subdir.as_str()));
    v = Thunk::apply(v, parents);
    ev.force(&v, Pos::NONE)
}
