//! What `flake.nix` declares, as Nix's `readFlake`/`parseFlakeInput` read it: the top-level
//! attributes allowed (`description`, `inputs`, `outputs`, `nixConfig`), each input (`url` or
//! `type` + fetcher attributes, `flake`, `follows`, nested `inputs.<n>` overrides), and the
//! formal arguments of `outputs` that become indirect inputs. The evaluator hands the
//! evaluated attribute values over as JSON; this file applies Nix's rules to them.

use std::collections::BTreeMap;
use std::path::Path;

use envy_fetch::{Attr, Attrs};
use serde_json::Value;

use crate::lockfile::InputPath;
use crate::{FlakeError, FlakeRef};

/// The top-level attributes a `flake.nix` may have.
pub const ALLOWED_ATTRS: &[&str] = &["description", "inputs", "outputs", "nixConfig"];

/// One declared input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlakeInput {
    /// Where it comes from (`None` when it only `follows`, or is an override that only
    /// overrides inputs further down).
    pub reference: Option<FlakeRef>,
    /// `flake = false`: a plain source tree.
    pub is_flake: bool,
    /// `follows = "a/b"`: the input path it follows (`[]` for `follows = ""`, the root).
    pub follows: Option<InputPath>,
    /// `inputs.<name>.inputs.<n> = …`: overrides of the input's own inputs.
    pub overrides: FlakeInputs,
}

/// Inputs by name.
pub type FlakeInputs = BTreeMap<String, FlakeInput>;

/// What a `flake.nix` declares (everything but the `outputs` function itself).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlakeNix {
    pub description: Option<String>,
    pub inputs: FlakeInputs,
    /// `nixConfig`, as evaluated.
    pub nix_config: BTreeMap<String, Value>,
}

/// The evaluated parts of a `flake.nix`, as the evaluator reports them.
#[derive(Debug, Clone, Default)]
pub struct FlakeNixParts {
    /// Every top-level attribute name.
    pub attr_names: Vec<String>,
    /// `description`, if present (`Some(non-string)` is a type error).
    pub description: Option<Value>,
    /// `inputs`, deeply evaluated.
    pub inputs: Option<Value>,
    /// Whether `outputs` is present and a function.
    pub outputs_is_function: Option<bool>,
    /// The formal arguments of `outputs` (when it has a `{ … }` pattern).
    pub output_formals: Vec<String>,
    /// `nixConfig`, deeply evaluated.
    pub nix_config: Option<Value>,
}

fn schema_err(file: &Path, message: String) -> FlakeError {
    FlakeError::FlakeNix {
        message: format!("{message}, in `{}`", file.display()),
    }
}

/// Nix's `parseInputPath`: `a/b` → `["a", "b"]`, each a valid flake ID; `""` → `[]`.
pub fn parse_input_path(s: &str) -> Result<InputPath, FlakeError> {
    s.split('/')
        .filter(|e| !e.is_empty())
        .map(|e| {
            if envy_fetch::input::is_flake_id(e) {
                Ok(e.to_string())
            } else {
                Err(FlakeError::FlakeNix {
                    message: format!("invalid flake input path element `{e}`"),
                })
            }
        })
        .collect()
}

impl FlakeNix {
    /// Apply Nix's rules to the evaluated parts of `file` (`reference` names the flake in
    /// errors; `base_dir` resolves schemeless relative `url`s).
    pub fn from_parts(
        parts: &FlakeNixParts,
        file: &Path,
        reference: &str,
    ) -> Result<FlakeNix, FlakeError> {
        for name in &parts.attr_names {
            if !ALLOWED_ATTRS.contains(&name.as_str()) {
                return Err(schema_err(
                    file,
                    format!("flake `{reference}` has an unsupported attribute `{name}`"),
                ));
            }
        }
        let description = match &parts.description {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                return Err(schema_err(
                    file,
                    format!(
                        "attribute `description` is {} while a string was expected",
                        type_name(v)
                    ),
                ));
            }
        };
        match parts.outputs_is_function {
            None => {
                return Err(schema_err(
                    file,
                    format!("flake `{reference}` lacks attribute `outputs`"),
                ));
            }
            Some(false) => {
                return Err(schema_err(
                    file,
                    "attribute `outputs` is not a function".to_string(),
                ));
            }
            Some(true) => {}
        }
        let mut inputs = match &parts.inputs {
            None => FlakeInputs::new(),
            Some(v) => parse_inputs(v, file, &[])?,
        };
        for formal in &parts.output_formals {
            if formal != "self" && !inputs.contains_key(formal) {
                inputs.insert(formal.clone(), indirect(formal)?);
            }
        }
        let nix_config = match &parts.nix_config {
            None => BTreeMap::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Some(v) => {
                return Err(schema_err(
                    file,
                    format!(
                        "attribute `nixConfig` is {} while a set was expected",
                        type_name(v)
                    ),
                ));
            }
        };
        Ok(FlakeNix {
            description,
            inputs,
            nix_config,
        })
    }
}

fn indirect(name: &str) -> Result<FlakeInput, FlakeError> {
    let mut attrs = Attrs::new();
    attrs.insert("type".into(), "indirect".into());
    attrs.insert("id".into(), name.into());
    Ok(FlakeInput {
        reference: Some(FlakeRef::from_attrs(&attrs)?),
        is_flake: true,
        follows: None,
        overrides: FlakeInputs::new(),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a Boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a set",
    }
}

fn parse_inputs(v: &Value, file: &Path, at: &[&str]) -> Result<FlakeInputs, FlakeError> {
    let Value::Object(map) = v else {
        return Err(schema_err(
            file,
            format!(
                "attribute `{}` is {} while a set was expected",
                attr_path(at, "inputs"),
                type_name(v)
            ),
        ));
    };
    let mut out = FlakeInputs::new();
    for (name, value) in map {
        let mut here = at.to_vec();
        here.push(name);
        out.insert(name.clone(), parse_input(name, value, file, &here)?);
    }
    Ok(out)
}

fn attr_path(at: &[&str], last: &str) -> String {
    let mut s = String::from("inputs");
    for a in at {
        s.push('.');
        s.push_str(a);
        s.push_str(".inputs");
    }
    if last != "inputs" {
        s.push('.');
        s.push_str(last);
    }
    s
}

fn parse_input(name: &str, v: &Value, file: &Path, at: &[&str]) -> Result<FlakeInput, FlakeError> {
    let here = || {
        let mut s = String::from("inputs");
        for (i, a) in at.iter().enumerate() {
            if i > 0 {
                s.push_str(".inputs");
            }
            s.push('.');
            s.push_str(a);
        }
        s
    };
    let Value::Object(map) = v else {
        return Err(schema_err(
            file,
            format!(
                "flake input `{}` is {} while a set was expected",
                here(),
                type_name(v)
            ),
        ));
    };
    let mut input = FlakeInput {
        reference: None,
        is_flake: true,
        follows: None,
        overrides: FlakeInputs::new(),
    };
    let mut attrs = Attrs::new();
    let mut url = None;
    for (k, val) in map {
        let expect = |what: &str| {
            schema_err(
                file,
                format!(
                    "attribute `{}.{k}` is {} while {what} was expected",
                    here(),
                    type_name(val)
                ),
            )
        };
        match k.as_str() {
            "url" => {
                let s = val.as_str().ok_or_else(|| expect("a string"))?;
                url = Some(s.to_string());
                attrs.insert("url".into(), s.into());
            }
            "flake" => input.is_flake = val.as_bool().ok_or_else(|| expect("a Boolean"))?,
            "inputs" => input.overrides = parse_inputs(val, file, at)?,
            "follows" => {
                let s = val.as_str().ok_or_else(|| expect("a string"))?;
                input.follows = Some(parse_input_path(s)?);
            }
            _ => {
                let a = match val {
                    Value::String(s) => Attr::String(s.clone()),
                    Value::Bool(b) => Attr::Bool(*b),
                    Value::Number(n) if n.as_u64().is_some() => Attr::Int(n.as_u64().unwrap_or(0)),
                    other => {
                        return Err(schema_err(
                            file,
                            format!(
                                "flake input attribute `{k}` is {} while a string, Boolean, or integer is expected",
                                type_name(other)
                            ),
                        ));
                    }
                };
                attrs.insert(k.clone(), a);
            }
        }
    }
    if url.is_some() && input.follows.is_some() {
        return Err(schema_err(
            file,
            format!(
                "flake input `{}` has both a `url` and a `follows` attribute",
                here()
            ),
        ));
    }
    if attrs.contains_key("type") {
        input.reference = Some(
            FlakeRef::from_attrs(&attrs)
                .map_err(|e| schema_err(file, format!("in flake input `{}`: {e}", here())))?,
        );
    } else {
        attrs.remove("url");
        if let Some(k) = attrs.keys().next() {
            return Err(schema_err(
                file,
                format!("unexpected flake input attribute `{k}`"),
            ));
        }
        if let Some(u) = url {
            // A schemeless relative path is taken as `path:` relative to the flake (Nix 2.8
            // would resolve it inside the flake's store copy).
            let u = if u.starts_with("./") || u.starts_with("../") || u == "." {
                format!("path:{u}")
            } else {
                u
            };
            input.reference = Some(
                FlakeRef::parse(&u, None)
                    .map_err(|e| schema_err(file, format!("in flake input `{}`: {e}", here())))?,
            );
        }
    }
    // A top-level input without `url` or `follows` is the indirect `flake:<name>`; an
    // override without them only carries overrides further down (Nix 2.18+).
    if input.follows.is_none() && input.reference.is_none() && at.len() == 1 {
        input.reference = Some(indirect(name)?.reference.expect("indirect has a reference"));
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(inputs: &str, formals: &[&str]) -> FlakeNixParts {
        FlakeNixParts {
            attr_names: vec!["inputs".into(), "outputs".into()],
            inputs: Some(serde_json::from_str(inputs).unwrap()),
            outputs_is_function: Some(true),
            output_formals: formals.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn read(inputs: &str, formals: &[&str]) -> Result<FlakeNix, FlakeError> {
        FlakeNix::from_parts(
            &parts(inputs, formals),
            Path::new("/f/flake.nix"),
            "path:/f",
        )
    }

    #[test]
    fn inputs_as_nix_reads_them() {
        let f = read(
            r#"{"lib":{"url":"git+file:///deps/lib"},
                "gitdep":{"url":"git+file:///deps/gitdep","inputs":{"lib":{"follows":"lib"}}},
                "noflake":{"type":"path","path":"/deps/noflake","flake":false},
                "root":{"follows":""},
                "ind":{}}"#,
            &["self", "lib", "extra"],
        )
        .unwrap();
        assert_eq!(
            f.inputs["lib"].reference.as_ref().unwrap().to_string(),
            "git+file:///deps/lib"
        );
        assert_eq!(
            f.inputs["gitdep"].overrides["lib"].follows,
            Some(vec!["lib".to_string()])
        );
        assert!(!f.inputs["noflake"].is_flake);
        assert_eq!(
            f.inputs["noflake"].reference.as_ref().unwrap().to_string(),
            "path:/deps/noflake"
        );
        assert_eq!(f.inputs["root"].follows, Some(vec![]));
        assert_eq!(
            f.inputs["ind"].reference.as_ref().unwrap().to_string(),
            "flake:ind"
        );
        assert_eq!(
            f.inputs["extra"].reference.as_ref().unwrap().to_string(),
            "flake:extra"
        );
        assert!(!f.inputs.contains_key("self"));
    }

    #[test]
    fn schema_errors_name_the_attribute() {
        let mut p = parts("{}", &[]);
        p.attr_names.push("packages".into());
        let e = FlakeNix::from_parts(&p, Path::new("/f/flake.nix"), "path:/f").unwrap_err();
        assert_eq!(
            e.to_string(),
            "flake `path:/f` has an unsupported attribute `packages`, in `/f/flake.nix`"
        );
        let mut p = parts("{}", &[]);
        p.outputs_is_function = None;
        assert!(
            FlakeNix::from_parts(&p, Path::new("/f/flake.nix"), "path:/f")
                .unwrap_err()
                .to_string()
                .contains("lacks attribute `outputs`")
        );
        for (bad, msg) in [
            (
                r#"{"a":{"url":"x:y","follows":"b"}}"#,
                "both a `url` and a `follows`",
            ),
            (
                r#"{"a":{"path":"/x"}}"#,
                "unexpected flake input attribute `path`",
            ),
            (r#"{"a":{"flake":"no"}}"#, "while a Boolean was expected"),
            (
                r#"{"a":{"type":"path","path":"/x","n":[1]}}"#,
                "while a string, Boolean, or integer",
            ),
            (
                r#"{"a":{"follows":"b/!"}}"#,
                "invalid flake input path element",
            ),
            (r#"{"a":"github:o/r"}"#, "while a set was expected"),
        ] {
            let e = read(bad, &[]).unwrap_err().to_string();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }
}
