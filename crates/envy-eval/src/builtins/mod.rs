//! The builtins: the global scope every file starts in (`builtins`, `true`, `map`,
//! `__add`, …) and the primitive operations behind them, grouped by subject.

mod attrs;
mod basic;
mod context;
mod derivation;
mod fetch;
mod files;
mod hash;
mod json;
pub(crate) use json::json_key;
pub use json::{json_float, parse_json};
mod lists;
pub(crate) mod regex;
mod strings;
mod toml;
mod xml;

use rustc_hash::FxHashMap;

use crate::eval::Evaluator;
use crate::source::{Origin, Pos};
use crate::symbol::Sym;
use crate::value::*;

/// The version string `builtins.nixVersion` reports (one nixpkgs accepts).
pub const NIX_VERSION: &str = "2.36.0";
/// `builtins.langVersion`.
pub const LANG_VERSION: i64 = 6;

/// Builtins also bound without the `__` prefix.
const GLOBAL_NAMES: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "derivationStrict",
    "dirOf",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
];

fn all_primops() -> impl Iterator<Item = &'static PrimOp> {
    basic::OPS
        .iter()
        .chain(attrs::OPS)
        .chain(lists::OPS)
        .chain(strings::OPS)
        .chain(context::OPS)
        .chain(json::OPS)
        .chain(toml::OPS)
        .chain(xml::OPS)
        .chain(files::OPS)
        .chain(hash::OPS)
        .chain(derivation::OPS)
        .chain(fetch::OPS)
}

const DERIVATION_NIX: &str = include_str!("derivation.nix");

/// Where `<nix/…>` files live (Nix's "corepkgs"): served from the binary, not the disk.
pub(crate) const COREPKGS: &str = "/__corepkgs__";

/// The built-in `<nix/…>` files.
pub(crate) fn corepkg(path: &str) -> Option<&'static str> {
    match path.strip_prefix(COREPKGS)? {
        "/fetchurl.nix" => Some(include_str!("fetchurl.nix")),
        "/derivation.nix" => Some(DERIVATION_NIX),
        _ => None,
    }
}

/// Build the global scope.
pub(crate) fn install(ev: &mut Evaluator) {
    let mut names: Vec<(Sym, Value)> = Vec::new();
    let mut builtins: Vec<Attr> = Vec::new();
    let mut add = |name: &str, v: Value, global: bool, names: &mut Vec<(Sym, Value)>| {
        builtins.push(Attr {
            name: Sym::new(name),
            pos: Pos::NONE,
            value: v.clone(),
        });
        if !name.starts_with("__") {
            names.push((Sym::new(&format!("__{name}")), v.clone()));
        }
        if global {
            names.push((Sym::new(name), v));
        }
    };
    for op in all_primops() {
        let global = GLOBAL_NAMES.contains(&op.name);
        add(op.name, Value::PrimOp(op), global, &mut names);
    }
    let s = ev.settings.clone();
    add("true", Value::Bool(true), true, &mut names);
    add("false", Value::Bool(false), true, &mut names);
    add("null", Value::Null, true, &mut names);
    add("nixVersion", Value::string(NIX_VERSION), false, &mut names);
    add("langVersion", Value::Int(LANG_VERSION), false, &mut names);
    add(
        "storeDir",
        Value::string(ev.store.store_dir().as_str()),
        false,
        &mut names,
    );
    if !s.pure {
        add(
            "currentSystem",
            Value::string(s.current_system.as_str()),
            false,
            &mut names,
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        add("currentTime", Value::Int(now), false, &mut names);
    }
    let nix_path: Vec<Value> = s
        .search_path
        .iter()
        .map(|e| {
            Value::attrs(Attrs::from_unsorted(vec![
                Attr {
                    name: Sym::PREFIX,
                    pos: Pos::NONE,
                    value: Value::string(e.prefix.as_str()),
                },
                Attr {
                    name: Sym::PATH,
                    pos: Pos::NONE,
                    value: Value::string(e.path.as_str()),
                },
            ]))
        })
        .collect();
    add("nixPath", Value::list(nix_path), false, &mut names);

    // `builtins` contains itself, and `derivation` is Nix code: both need the global scope
    // to exist first, so they start as thunks filled in below.
    let builtins_thunk = Thunk::from_state(ThunkState::Blackhole);
    let derivation_thunk = Thunk::from_state(ThunkState::Blackhole);
    add(
        "builtins",
        Value::Thunk(builtins_thunk.clone()),
        true,
        &mut names,
    );
    add(
        "derivation",
        Value::Thunk(derivation_thunk.clone()),
        true,
        &mut names,
    );

    let builtins_value = Value::attrs(Attrs::from_unsorted(builtins));
    builtins_thunk.replace(ThunkState::Done(builtins_value));

    let mut globals: FxHashMap<Sym, u32> = FxHashMap::default();
    let mut values: Vec<Value> = Vec::new();
    for (name, v) in names {
        match globals.get(&name) {
            Some(&slot) => values[slot as usize] = v,
            None => {
                globals.insert(name, values.len() as u32);
                values.push(v);
            }
        }
    }
    ev.set_base_env(Env::with_values(None, values), globals);

    let drv = ev
        .parse(
            DERIVATION_NIX,
            Origin::Internal("derivation-internal.nix"),
            "/",
        )
        .expect("the built-in derivation code parses");
    let env = ev.base_env.clone();
    derivation_thunk.replace(ThunkState::Pending(drv, env));
}

/// Shorthand for building a primop table entry.
macro_rules! primop {
    ($name:expr, $arity:expr, $f:expr) => {
        crate::value::PrimOp {
            name: $name,
            arity: $arity,
            func: $f,
        }
    };
}
pub(crate) use primop;
