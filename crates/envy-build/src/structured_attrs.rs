//! `__structuredAttrs`: the derivation's `__json` attribute, completed with an `outputs`
//! object, written to the build directory as `.attrs.json` and as bash declarations in
//! `.attrs.sh`, exactly as Nix writes them (sorted keys, compact JSON; only strings, integers,
//! Booleans, nulls and flat arrays/objects of those reach bash).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Parse `__json` and add `outputs` (output name → store path).
///
/// # Errors
/// `__json` is not valid JSON.
pub fn prepare(json: &str, outputs: &BTreeMap<String, String>) -> Result<Value, serde_json::Error> {
    let mut value: Value = serde_json::from_str(json)?;
    let outputs: Map<String, Value> = outputs
        .iter()
        .map(|(name, path)| (name.clone(), Value::String(path.clone())))
        .collect();
    if let Value::Object(map) = &mut value {
        map.insert("outputs".into(), Value::Object(outputs));
    }
    Ok(sorted(value))
}

/// The compact JSON text Nix writes to `.attrs.json` (keys sorted at every level).
#[must_use]
pub fn to_json(value: &Value) -> String {
    sorted(value.clone()).to_string()
}

/// The bash declarations Nix writes to `.attrs.sh`.
#[must_use]
pub fn to_shell(value: &Value) -> String {
    let Value::Object(map) = value else {
        return String::new();
    };
    let mut out = String::new();
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        if !is_shell_name(key) {
            continue;
        }
        let value = &map[key];
        if let Some(simple) = simple(value) {
            out += &format!("declare {key}={simple}\n");
        } else if let Value::Array(items) = value {
            if let Some(items) = items.iter().map(simple).collect::<Option<Vec<_>>>() {
                let body: String = items.iter().map(|s| format!("{s} ")).collect();
                out += &format!("declare -a {key}=({body})\n");
            }
        } else if let Value::Object(entries) = value {
            let mut names: Vec<&String> = entries.keys().collect();
            names.sort();
            let body: Option<String> = names
                .iter()
                .map(|name| {
                    simple(&entries[*name]).map(|v| format!("[{}]={v} ", shell_escape(name)))
                })
                .collect();
            if let Some(body) = body {
                out += &format!("declare -A {key}=({body})\n");
            }
        }
    }
    out
}

/// A value bash can hold as a scalar, rendered as Nix renders it.
fn simple(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(shell_escape(s)),
        Value::Number(n) => {
            // Nix goes through a float and keeps only integral values.
            let f = n.as_f64()?;
            (f.ceil() == f).then(|| {
                n.as_i64()
                    .map_or_else(|| format!("{}", f as i64), |i| i.to_string())
            })
        }
        Value::Null => Some("''".into()),
        Value::Bool(b) => Some(if *b { "1".into() } else { String::new() }),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Nix's `shellEscape`: single quotes, with `'` written as `'\''`.
#[must_use]
pub fn shell_escape(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn is_shell_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let entries: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected texts were produced by real Nix 2.8 for the same `__json`.
    #[test]
    fn matches_nix_2_8() {
        let json = r#"{"builder":"/bin/bash","foo":[1,2,"x'y"],"bar":{"a":1,"b":true,"c":null},"n":1.5,"name":"sa","system":"x86_64-linux"}"#;
        let outputs = BTreeMap::from([("out".to_string(), "/s/6lws-sa".to_string())]);
        let value = prepare(json, &outputs).unwrap();
        assert_eq!(
            to_json(&value),
            r#"{"bar":{"a":1,"b":true,"c":null},"builder":"/bin/bash","foo":[1,2,"x'y"],"n":1.5,"name":"sa","outputs":{"out":"/s/6lws-sa"},"system":"x86_64-linux"}"#
        );
        assert_eq!(
            to_shell(&value),
            "declare -A bar=(['a']=1 ['b']=1 ['c']='' )\n\
             declare builder='/bin/bash'\n\
             declare -a foo=(1 2 'x'\\''y' )\n\
             declare name='sa'\n\
             declare -A outputs=(['out']='/s/6lws-sa' )\n\
             declare system='x86_64-linux'\n"
        );
    }

    #[test]
    fn skips_nested_and_non_identifiers() {
        let value = prepare(
            r#"{"a-b":"x","deep":[[1]],"o":{"x":[1]},"ok":2.0}"#,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(to_shell(&value), "declare ok=2\ndeclare -A outputs=()\n");
    }
}
