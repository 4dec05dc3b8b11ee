//! Flake registries: what an indirect reference (`nixpkgs`, `flake:envy/branch`) stands for.
//! The file format is Nix's version 2 (`{"flakes":[{"from":…,"to":…,"exact"?:…}],
//! "version":2}`). envy reads its own user registry (`$XDG_CONFIG_HOME/envy/registry.json`)
//! first, then built-in entries the binary supplies (the package set, flake id `envy`).
//! Lookup follows Nix's `lookupInRegistries`: the first matching entry wins, a non-exact
//! entry carries the reference's `ref`/`rev` over, and the result is looked up again until it
//! is direct.

use std::path::{Path, PathBuf};

use envy_fetch::attrs::{attrs_to_json, json_to_attrs};
use envy_fetch::{Attrs, Input};
use serde_json::{Value, json};

use crate::{FlakeError, FlakeRef};

/// The registry file format version envy reads and writes.
pub const REGISTRY_VERSION: u64 = 2;

/// One `from → to` mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub from: Input,
    pub to: Input,
    /// Attributes of `to` that are not the input's (`dir`).
    pub extra: Attrs,
    /// Match `from` exactly (no `ref`/`rev` carried over).
    pub exact: bool,
}

/// One registry file (or the built-in entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registry {
    pub entries: Vec<RegistryEntry>,
}

impl Registry {
    /// Read a registry file; a missing file is an empty registry.
    pub fn read(path: &Path) -> Result<Registry, FlakeError> {
        let text = match fs_err::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registry::default()),
            Err(e) => {
                return Err(FlakeError::Registry {
                    path: path.to_owned(),
                    message: e.to_string(),
                });
            }
        };
        Registry::parse(&text, path)
    }

    /// Parse registry JSON (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Registry, FlakeError> {
        let err = |message: String| FlakeError::Registry {
            path: path.to_owned(),
            message,
        };
        let json: Value =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let version = json["version"].as_u64().unwrap_or(0);
        if version != REGISTRY_VERSION {
            return Err(err(format!("unsupported version {version}")));
        }
        let mut entries = Vec::new();
        for (i, e) in json["flakes"].as_array().into_iter().flatten().enumerate() {
            let from = json_to_attrs(&e["from"]).map_err(|x| err(format!("entry {i}: {x}")))?;
            let mut to = json_to_attrs(&e["to"]).map_err(|x| err(format!("entry {i}: {x}")))?;
            let mut extra = Attrs::new();
            if let Some(dir) = to.remove("dir") {
                extra.insert("dir".into(), dir);
            }
            entries.push(RegistryEntry {
                from: Input::from_attrs(from).map_err(|x| err(format!("entry {i}: {x}")))?,
                to: Input::from_attrs(to).map_err(|x| err(format!("entry {i}: {x}")))?,
                extra,
                exact: e["exact"].as_bool().unwrap_or(false),
            });
        }
        Ok(Registry { entries })
    }

    /// The registry as JSON text, as `nix registry add` writes it (no final newline).
    #[must_use]
    pub fn to_json_string(&self) -> String {
        let flakes: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut to = e.to.attrs().clone();
                to.extend(e.extra.clone());
                let mut v =
                    json!({ "from": attrs_to_json(e.from.attrs()), "to": attrs_to_json(&to) });
                if e.exact {
                    v["exact"] = Value::Bool(true);
                }
                crate::lockfile::sort_json(v)
            })
            .collect();
        let v = json!({ "flakes": flakes, "version": REGISTRY_VERSION });
        serde_json::to_string_pretty(&v).expect("JSON values serialise")
    }

    /// Write the registry to `path` (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), FlakeError> {
        crate::lockfile::write_atomic(path, self.to_json_string().as_bytes())
    }

    /// Add (or replace) the mapping for `from`.
    pub fn add(&mut self, from: Input, to: FlakeRef) {
        self.remove(&from);
        let mut extra = Attrs::new();
        if !to.subdir.is_empty() {
            extra.insert("dir".into(), to.subdir.as_str().into());
        }
        self.entries.push(RegistryEntry {
            from,
            to: to.input,
            extra,
            exact: false,
        });
    }

    /// Remove the mapping for `from`.
    pub fn remove(&mut self, from: &Input) {
        self.entries.retain(|e| &e.from != from);
    }
}

/// The registries to consult, in order.
#[derive(Debug, Clone, Default)]
pub struct Registries {
    pub layers: Vec<(String, Registry)>,
    /// Built-in entries whose target is only computed when they are used (the package set,
    /// materialised on demand), consulted after the layers.
    pub lazy: Vec<LazyEntry>,
}

/// A built-in `flake:<id>` whose target is made on first use.
#[derive(Clone)]
pub struct LazyEntry {
    pub id: String,
    pub target: std::rc::Rc<dyn Fn() -> Result<FlakeRef, String>>,
}

impl std::fmt::Debug for LazyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LazyEntry({})", self.id)
    }
}

/// envy's user registry file under a config directory (`$XDG_CONFIG_HOME`).
#[must_use]
pub fn user_registry_path(config_dir: &Path) -> PathBuf {
    config_dir.join("envy").join("registry.json")
}

impl Registries {
    /// Resolve an indirect reference to a direct one.
    pub fn resolve(&self, r: &FlakeRef) -> Result<FlakeRef, FlakeError> {
        let (input, extra) = self.lookup(&r.input)?;
        let subdir = extra
            .get("dir")
            .map(|d| d.to_query_value())
            .unwrap_or_else(|| r.subdir.clone());
        Ok(FlakeRef { input, subdir })
    }

    /// Nix's `lookupInRegistries`.
    pub fn lookup(&self, original: &Input) -> Result<(Input, Attrs), FlakeError> {
        let mut input = original.clone();
        let mut extra = Attrs::new();
        'restart: for _ in 0..100 {
            for (_, registry) in &self.layers {
                for e in &registry.entries {
                    let matches = if e.exact {
                        e.from == input
                    } else {
                        contains(&e.from, &input)
                    };
                    if !matches {
                        continue;
                    }
                    input = if e.exact {
                        e.to.clone()
                    } else {
                        let ref_ = (e.from.ref_().is_none()).then(|| input.ref_()).flatten();
                        let rev = (e.from.get_str("rev").is_none())
                            .then(|| input.get_str("rev"))
                            .flatten();
                        e.to.apply_overrides(ref_, rev)?
                    };
                    extra = e.extra.clone();
                    continue 'restart;
                }
            }
            if !input.is_direct()
                && let Some(e) = self
                    .lazy
                    .iter()
                    .find(|e| input.get_str("id") == Some(e.id.as_str()))
            {
                let target = (e.target)().map_err(|message| FlakeError::Registry {
                    path: PathBuf::from(format!("<built-in entry `{}`>", e.id)),
                    message,
                })?;
                input = target
                    .input
                    .apply_overrides(input.ref_(), input.get_str("rev"))?;
                extra = Attrs::new();
                if !target.subdir.is_empty() {
                    extra.insert("dir".into(), target.subdir.as_str().into());
                }
                continue 'restart;
            }
            if !input.is_direct() {
                return Err(FlakeError::NotInRegistry {
                    reference: original.to_string(),
                });
            }
            return Ok((input, extra));
        }
        Err(FlakeError::RegistryCycle {
            reference: original.to_string(),
        })
    }
}

/// Nix's `Input::contains`: equal, or equal once `ref`/`rev` are dropped from `other`.
fn contains(from: &Input, other: &Input) -> bool {
    from == other || *from == other.clone().without("ref").without("rev")
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = r#"{"flakes":[
      {"from":{"id":"mylib","type":"indirect"},"to":{"type":"git","url":"file:///deps/lib"}},
      {"from":{"id":"pinned","type":"indirect"},"to":{"type":"path","path":"/p","dir":"sub"},"exact":true},
      {"from":{"id":"alias","type":"indirect"},"to":{"id":"mylib","type":"indirect"}},
      {"from":{"id":"loop","type":"indirect"},"to":{"id":"loop","type":"indirect"}}
    ],"version":2}"#;

    fn regs() -> Registries {
        Registries {
            layers: vec![(
                "user".into(),
                Registry::parse(REG, Path::new("reg.json")).unwrap(),
            )],
            lazy: vec![LazyEntry {
                id: "builtin".into(),
                target: std::rc::Rc::new(|| {
                    FlakeRef::parse("path:/pkgs", None).map_err(|e| e.to_string())
                }),
            }],
        }
    }

    fn resolve(s: &str) -> Result<String, FlakeError> {
        regs()
            .resolve(&FlakeRef::parse(s, None).unwrap())
            .map(|r| r.to_string())
    }

    #[test]
    fn lookups_follow_nix() {
        assert_eq!(resolve("mylib").unwrap(), "git+file:///deps/lib");
        assert_eq!(
            resolve("mylib/dev").unwrap(),
            "git+file:///deps/lib?ref=dev"
        );
        assert_eq!(
            resolve("alias/dev").unwrap(),
            "git+file:///deps/lib?ref=dev"
        );
        assert_eq!(resolve("pinned").unwrap(), "path:/p?dir=sub");
        assert!(matches!(
            resolve("pinned/x"),
            Err(FlakeError::NotInRegistry { .. })
        ));
        assert!(matches!(
            resolve("nope"),
            Err(FlakeError::NotInRegistry { .. })
        ));
        assert!(matches!(
            resolve("loop"),
            Err(FlakeError::RegistryCycle { .. })
        ));
        assert_eq!(resolve("builtin").unwrap(), "path:/pkgs");
    }

    #[test]
    fn written_like_nix_registry_add() {
        let mut r = Registry::default();
        r.add(
            Input::from_url("flake:mylib").unwrap(),
            FlakeRef::parse("git+file:///tmp/flk/ex/deps/lib", None).unwrap(),
        );
        // What `nix registry add mylib git+file:///tmp/flk/ex/deps/lib` wrote (Nix 2.8).
        assert_eq!(
            r.to_json_string(),
            "{\n  \"flakes\": [\n    {\n      \"from\": {\n        \"id\": \"mylib\",\n        \"type\": \"indirect\"\n      },\n      \"to\": {\n        \"type\": \"git\",\n        \"url\": \"file:///tmp/flk/ex/deps/lib\"\n      }\n    }\n  ],\n  \"version\": 2\n}"
        );
        let back = Registry::parse(&r.to_json_string(), Path::new("x")).unwrap();
        assert_eq!(back, r);
    }
}
