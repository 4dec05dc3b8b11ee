//! Checks on a derivation's freshly built outputs before they become valid, as Nix 2.8 makes
//! them: `allowedReferences`, `allowedRequisites`, `disallowedReferences`,
//! `disallowedRequisites` (space-separated store paths or output names, applied to every
//! output), or with `__structuredAttrs` the per-output `outputChecks.<output>` object, which
//! also knows `maxSize` and `maxClosureSize`.
//!
//! First of all, as in Nix, the outputs' references to each other must not form a cycle (they
//! could never be registered one after the other).
//!
//! An absent `allowed…` list means "anything"; a present but empty one means "nothing". A
//! `…Requisites` check looks at the whole closure of the output (without the output itself in
//! the plain form, Nix's `ignoreSelfRefs`); a `…References` check at its direct references,
//! itself included.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use envy_store::{Derivation, LocalStore, StoreDir, StorePath, ValidPathInfo};
use serde_json::Value;

use crate::error::BuildError;

/// The checks for one output.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Checks {
    ignore_self_refs: bool,
    max_size: Option<u64>,
    max_closure_size: Option<u64>,
    allowed_references: Option<Vec<String>>,
    allowed_requisites: Option<Vec<String>>,
    disallowed_references: Option<Vec<String>>,
    disallowed_requisites: Option<Vec<String>>,
}

/// What the checks look at.
pub(crate) struct CheckInputs<'a> {
    pub store: &'a LocalStore,
    pub drv_path: &'a StorePath,
    pub drv: &'a Derivation,
    /// Every output of the derivation (name → path), to resolve output names in specs.
    pub outputs: &'a BTreeMap<String, StorePath>,
    /// The outputs just built, not yet valid (name → info).
    pub built: &'a BTreeMap<String, ValidPathInfo>,
}

/// Apply the derivation's output checks to every output just built.
///
/// # Errors
/// The first check that fails, with Nix's wording; a malformed `outputChecks`.
pub(crate) fn check_outputs(inputs: &CheckInputs<'_>) -> Result<(), BuildError> {
    check_cycles(inputs)?;
    let sd = inputs.store.store_dir();
    let printed_drv = sd.print(inputs.drv_path);
    let structured = match inputs.drv.env_var("__json") {
        Some(json) => Some(serde_json::from_slice::<Value>(json).map_err(|source| {
            BuildError::StructuredAttrs {
                drv: printed_drv.clone(),
                source,
            }
        })?),
        None => None,
    };
    for (name, info) in inputs.built {
        let checks = match &structured {
            Some(json) => match json.get("outputChecks").and_then(|c| c.get(name)) {
                Some(spec) => structured_checks(spec, &printed_drv)?,
                None => continue,
            },
            None => plain_checks(inputs.drv),
        };
        apply(inputs, &checks, info)?;
    }
    Ok(())
}

/// Nix's topological sort of the outputs by their references to each other, failing on the
/// first cycle with the output that closes it and the one it was reached from.
fn check_cycles(inputs: &CheckInputs<'_>) -> Result<(), BuildError> {
    fn visit<'a>(
        name: &'a str,
        parent: Option<&'a str>,
        inputs: &'a CheckInputs<'_>,
        visited: &mut BTreeSet<&'a str>,
        parents: &mut BTreeSet<&'a str>,
    ) -> Result<(), BuildError> {
        if parents.contains(name) {
            return Err(BuildError::OutputCycle {
                drv: inputs.store.store_dir().print(inputs.drv_path),
                output: name.to_string(),
                parent: parent.unwrap_or_default().to_string(),
            });
        }
        if !visited.insert(name) {
            return Ok(());
        }
        parents.insert(name);
        let info = &inputs.built[name];
        for (child, path) in inputs.outputs {
            if child != name && inputs.built.contains_key(child) && info.references.contains(path) {
                visit(child, Some(name), inputs, visited, parents)?;
            }
        }
        parents.remove(name);
        Ok(())
    }
    let (mut visited, mut parents) = (BTreeSet::new(), BTreeSet::new());
    for name in inputs.built.keys() {
        visit(name, None, inputs, &mut visited, &mut parents)?;
    }
    Ok(())
}

/// The checks of a derivation without structured attributes (the same for every output).
fn plain_checks(drv: &Derivation) -> Checks {
    let list = |key: &str| {
        drv.env_var(key).map(|v| {
            String::from_utf8_lossy(v)
                .split_whitespace()
                .map(String::from)
                .collect()
        })
    };
    Checks {
        ignore_self_refs: true,
        allowed_references: list("allowedReferences"),
        allowed_requisites: list("allowedRequisites"),
        disallowed_references: list("disallowedReferences"),
        disallowed_requisites: list("disallowedRequisites"),
        ..Checks::default()
    }
}

/// `outputChecks.<output>` of a structured-attrs derivation.
fn structured_checks(spec: &Value, drv: &str) -> Result<Checks, BuildError> {
    let bad = |attr: &str, expected: &str| BuildError::BadOutputCheck {
        drv: drv.to_string(),
        attr: attr.to_string(),
        expected: expected.to_string(),
    };
    let size = |key: &str| -> Result<Option<u64>, BuildError> {
        spec.get(key)
            .map(|v| v.as_u64().ok_or_else(|| bad(key, "a non-negative integer")))
            .transpose()
    };
    let list = |key: &str| -> Result<Option<Vec<String>>, BuildError> {
        let Some(value) = spec.get(key) else {
            return Ok(None);
        };
        let items = value
            .as_array()
            .ok_or_else(|| bad(key, "a list of strings"))?;
        items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(String::from)
                    .ok_or_else(|| bad(key, "a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    Ok(Checks {
        ignore_self_refs: false,
        max_size: size("maxSize")?,
        max_closure_size: size("maxClosureSize")?,
        allowed_references: list("allowedReferences")?,
        allowed_requisites: list("allowedRequisites")?,
        disallowed_references: list("disallowedReferences")?,
        disallowed_requisites: list("disallowedRequisites")?,
    })
}

fn apply(
    inputs: &CheckInputs<'_>,
    checks: &Checks,
    info: &ValidPathInfo,
) -> Result<(), BuildError> {
    let sd = inputs.store.store_dir();
    let printed = sd.print(&info.path);
    if let Some(limit) = checks.max_size
        && info.nar_size > limit
    {
        return Err(BuildError::TooLarge {
            path: printed,
            size: info.nar_size,
            limit,
        });
    }
    if let Some(limit) = checks.max_closure_size {
        let (_, size) = closure(inputs, &info.path)?;
        if size > limit {
            return Err(BuildError::ClosureTooLarge {
                path: printed,
                size,
                limit,
            });
        }
    }
    for (spec, allowed, recursive) in [
        (&checks.allowed_references, true, false),
        (&checks.allowed_requisites, true, true),
        (&checks.disallowed_references, false, false),
        (&checks.disallowed_requisites, false, true),
    ] {
        let Some(spec) = spec else { continue };
        let spec = resolve_spec(inputs, sd, spec)?;
        let mut used = if recursive {
            closure(inputs, &info.path)?.0
        } else {
            info.references.clone()
        };
        if recursive && checks.ignore_self_refs {
            used.remove(&info.path);
        }
        let bad: Vec<String> = used
            .iter()
            .filter(|p| spec.contains(*p) != allowed)
            .map(|p| format!("\n  {}", sd.print(p)))
            .collect();
        if !bad.is_empty() {
            return Err(BuildError::DisallowedReferences {
                path: printed,
                paths: bad.concat(),
            });
        }
    }
    Ok(())
}

/// Store paths and output names → store paths.
fn resolve_spec(
    inputs: &CheckInputs<'_>,
    sd: &StoreDir,
    spec: &[String],
) -> Result<BTreeSet<StorePath>, BuildError> {
    spec.iter()
        .map(|item| {
            if let Ok(path) = sd.parse(item) {
                Ok(path)
            } else if let Some(path) = inputs.outputs.get(item) {
                Ok(path.clone())
            } else {
                Err(BuildError::IllegalReferenceSpecifier {
                    drv: sd.print(inputs.drv_path),
                    spec: item.clone(),
                })
            }
        })
        .collect()
}

/// The closure of `path` and its total NAR size; the outputs just built are not valid yet, so
/// their infos come from `inputs.built`.
fn closure(
    inputs: &CheckInputs<'_>,
    path: &StorePath,
) -> Result<(BTreeSet<StorePath>, u64), BuildError> {
    let built: BTreeMap<&StorePath, &ValidPathInfo> =
        inputs.built.values().map(|i| (&i.path, i)).collect();
    let mut seen = BTreeSet::new();
    let mut size = 0;
    let mut todo = VecDeque::from([path.clone()]);
    while let Some(p) = todo.pop_front() {
        if !seen.insert(p.clone()) {
            continue;
        }
        let (nar_size, refs) = match built.get(&p) {
            Some(info) => (info.nar_size, info.references.clone()),
            None => {
                let info = inputs.store.path_info(&p)?;
                (info.nar_size, info.references)
            }
        };
        size += nar_size;
        todo.extend(refs.into_iter().filter(|r| !seen.contains(r)));
    }
    Ok((seen, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_structured_specs() {
        let mut drv = Derivation::default();
        drv.env
            .insert(b"allowedReferences".to_vec(), b" out  /s/x-y ".to_vec());
        drv.env
            .insert(b"disallowedRequisites".to_vec(), b"".to_vec());
        let checks = plain_checks(&drv);
        assert_eq!(
            checks.allowed_references,
            Some(vec!["out".to_string(), "/s/x-y".to_string()])
        );
        assert_eq!(checks.disallowed_requisites, Some(vec![]));
        assert_eq!(checks.allowed_requisites, None);
        assert!(checks.ignore_self_refs);

        let spec: Value =
            serde_json::from_str(r#"{"maxSize": 10, "allowedRequisites": ["out"]}"#).unwrap();
        let checks = structured_checks(&spec, "/s/d.drv").unwrap();
        assert_eq!(checks.max_size, Some(10));
        assert_eq!(checks.allowed_requisites, Some(vec!["out".to_string()]));
        assert!(!checks.ignore_self_refs);
        let spec: Value = serde_json::from_str(r#"{"allowedReferences": "out"}"#).unwrap();
        assert_eq!(
            structured_checks(&spec, "/s/d.drv")
                .unwrap_err()
                .to_string(),
            "attribute `allowedReferences` of derivation `/s/d.drv` must be a list of strings"
        );
    }
}
