//! Fetcher attributes: the `{ type = "git"; url = …; rev = …; }` sets every input is made of,
//! with Nix's three value kinds (string, non-negative integer, Boolean), their JSON form (lock
//! files, the registry) and their URL query form.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::FetchError;

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attr {
    String(String),
    Int(u64),
    Bool(bool),
}

impl Attr {
    /// The value as a URL query parameter (`1`/`0` for Booleans, as Nix writes them).
    #[must_use]
    pub fn to_query_value(&self) -> String {
        match self {
            Attr::String(s) => s.clone(),
            Attr::Int(n) => n.to_string(),
            Attr::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        }
    }

    /// The value as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Attr::String(s) => Value::String(s.clone()),
            Attr::Int(n) => Value::from(*n),
            Attr::Bool(b) => Value::Bool(*b),
        }
    }
}

impl From<&str> for Attr {
    fn from(s: &str) -> Attr {
        Attr::String(s.to_string())
    }
}

impl From<String> for Attr {
    fn from(s: String) -> Attr {
        Attr::String(s)
    }
}

impl From<u64> for Attr {
    fn from(n: u64) -> Attr {
        Attr::Int(n)
    }
}

impl From<bool> for Attr {
    fn from(b: bool) -> Attr {
        Attr::Bool(b)
    }
}

/// A set of attributes, sorted by name (as Nix's `std::map` is, which fixes the order of URL
/// queries and lock-file keys).
pub type Attrs = BTreeMap<String, Attr>;

/// The attributes as a JSON object with sorted keys.
#[must_use]
pub fn attrs_to_json(attrs: &Attrs) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
    )
}

/// Attributes from a JSON object (lock files, the registry): strings, non-negative integers
/// and Booleans; anything else is an error naming the attribute.
pub fn json_to_attrs(json: &Value) -> Result<Attrs, FetchError> {
    let Value::Object(map) = json else {
        return Err(FetchError::BadAttrs {
            message: format!("expected a JSON object, got `{json}`"),
        });
    };
    map.iter()
        .map(|(k, v)| {
            let attr = match v {
                Value::String(s) => Attr::String(s.clone()),
                Value::Bool(b) => Attr::Bool(*b),
                Value::Number(n) => match n.as_u64() {
                    Some(n) => Attr::Int(n),
                    None => {
                        return Err(FetchError::BadAttrs {
                            message: format!("attribute `{k}` is not a non-negative integer"),
                        });
                    }
                },
                _ => {
                    return Err(FetchError::BadAttrs {
                        message: format!("unsupported input attribute type in lock file: `{k}`"),
                    });
                }
            };
            Ok((k.clone(), attr))
        })
        .collect()
}

/// The attributes as URL query parameters.
#[must_use]
pub fn attrs_to_query(attrs: &Attrs) -> BTreeMap<String, String> {
    attrs
        .iter()
        .map(|(k, v)| (k.clone(), v.to_query_value()))
        .collect()
}

/// A string attribute, if present; an error if present with another kind.
pub fn get_str<'a>(attrs: &'a Attrs, name: &str) -> Result<Option<&'a str>, FetchError> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Attr::String(s)) => Ok(Some(s)),
        Some(_) => Err(FetchError::AttrType {
            name: name.to_string(),
            expected: "a string",
        }),
    }
}

/// A string attribute that must be present.
pub fn req_str<'a>(attrs: &'a Attrs, name: &str) -> Result<&'a str, FetchError> {
    get_str(attrs, name)?.ok_or_else(|| FetchError::MissingAttr {
        name: name.to_string(),
    })
}

/// An integer attribute, if present.
pub fn get_int(attrs: &Attrs, name: &str) -> Result<Option<u64>, FetchError> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Attr::Int(n)) => Ok(Some(*n)),
        Some(_) => Err(FetchError::AttrType {
            name: name.to_string(),
            expected: "an integer",
        }),
    }
}

/// A Boolean attribute, if present.
pub fn get_bool(attrs: &Attrs, name: &str) -> Result<Option<bool>, FetchError> {
    match attrs.get(name) {
        None => Ok(None),
        Some(Attr::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(FetchError::AttrType {
            name: name.to_string(),
            expected: "a Boolean",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_kinds_and_sorts_keys() {
        let json: Value =
            serde_json::from_str(r#"{"url":"file:///x","type":"git","revCount":3,"shallow":true}"#)
                .unwrap();
        let attrs = json_to_attrs(&json).unwrap();
        assert_eq!(attrs.get("revCount"), Some(&Attr::Int(3)));
        assert_eq!(
            attrs_to_json(&attrs).to_string(),
            r#"{"revCount":3,"shallow":true,"type":"git","url":"file:///x"}"#
        );
        assert_eq!(attrs_to_query(&attrs)["shallow"], "1");
    }

    #[test]
    fn json_rejects_floats_and_lists() {
        for bad in [r#"{"a":1.5}"#, r#"{"a":[1]}"#, r#"{"a":-1}"#, "[]"] {
            let json: Value = serde_json::from_str(bad).unwrap();
            assert!(json_to_attrs(&json).is_err(), "{bad}");
        }
    }

    #[test]
    fn getters_check_kinds() {
        let mut attrs = Attrs::new();
        attrs.insert("a".into(), "x".into());
        attrs.insert("n".into(), 1u64.into());
        assert_eq!(get_str(&attrs, "a").unwrap(), Some("x"));
        assert!(get_str(&attrs, "n").is_err());
        assert_eq!(get_int(&attrs, "n").unwrap(), Some(1));
        assert!(get_bool(&attrs, "a").is_err());
        assert!(req_str(&attrs, "missing").is_err());
    }
}
