//! `flake metadata --json`, as Nix 2.8 prints it: the original, resolved and locked
//! references (attributes and URLs), `description`, `revision`/`revCount`/`lastModified`
//! when known, the source's store `path`, and the lock file (`locks`). Keys sorted, compact.

use envy_fetch::attrs::attrs_to_json;
use serde_json::{Map, Value};

use crate::lock::LockedFlake;

/// The metadata of a locked flake.
#[must_use]
pub fn metadata_json(locked: &LockedFlake) -> Value {
    let f = &locked.flake;
    let mut j = Map::new();
    if let Some(d) = &f.nix.description {
        j.insert("description".into(), Value::String(d.clone()));
    }
    if let Some(t) = f.locked.input.last_modified() {
        j.insert("lastModified".into(), Value::from(t));
    }
    j.insert("locked".into(), attrs_to_json(&f.locked.to_attrs()));
    j.insert("locks".into(), locked.lock.to_json());
    j.insert("original".into(), attrs_to_json(&f.original.to_attrs()));
    j.insert("originalUrl".into(), Value::String(f.original.to_string()));
    j.insert(
        "path".into(),
        Value::String(f.tree.store_dir().print(f.tree.store_path())),
    );
    j.insert("resolved".into(), attrs_to_json(&f.resolved.to_attrs()));
    j.insert("resolvedUrl".into(), Value::String(f.resolved.to_string()));
    if let Some(n) = f.locked.input.rev_count() {
        j.insert("revCount".into(), Value::from(n));
    }
    if let Some(r) = f.locked.input.get_str("rev") {
        j.insert("revision".into(), Value::String(r.to_string()));
    }
    j.insert("url".into(), Value::String(f.locked.to_string()));
    crate::lockfile::sort_json(Value::Object(j))
}
