//! [`EnvRecord`]: the one currency between backends and shells.
//!
//! A devShell's environment as `nix print-dev-env --json` describes it — variables with
//! Nix's four types, bash functions, the `shellHook` (a variable) — plus envy's own field,
//! the [`WatchList`] of what the evaluation read. Backends produce it, the cache stores it
//! (postcard), the shell side turns it into code, and `envy print-dev-env --json` prints it
//! in Nix's JSON shape with an extra `"envy"` object.
//!
//! This module knows nothing of shells or of how a record was made.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// A variable with Nix's type (`print-dev-env --json`'s `"type"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variable {
    /// `"exported"`: an environment variable.
    Exported(String),
    /// `"var"`: a shell variable that is not exported.
    Var(String),
    /// `"array"`: a bash indexed array.
    Array(Vec<String>),
    /// `"associative"`: a bash associative array.
    Associative(BTreeMap<String, String>),
}

impl Variable {
    fn type_name(&self) -> &'static str {
        match self {
            Variable::Exported(_) => "exported",
            Variable::Var(_) => "var",
            Variable::Array(_) => "array",
            Variable::Associative(_) => "associative",
        }
    }
}

/// What an evaluation depended on: a change to any of it means the cached environment may be
/// stale. Paths are absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchList {
    /// Files whose contents were read (always `flake.nix` and `flake.lock`).
    pub files: Vec<PathBuf>,
    /// Directories whose listing was read.
    pub dirs: Vec<PathBuf>,
    /// Environment variables read (impure evaluation).
    pub env: Vec<String>,
}

impl WatchList {
    /// Add a file unless already present.
    pub fn add_file(&mut self, path: PathBuf) {
        if !self.files.contains(&path) {
            self.files.push(path);
        }
    }

    /// Add a directory unless already present.
    pub fn add_dir(&mut self, path: PathBuf) {
        if !self.dirs.contains(&path) {
            self.dirs.push(path);
        }
    }

    /// Sort and deduplicate every list (a stable order makes stable cache keys).
    pub fn normalize(&mut self) {
        for list in [&mut self.files, &mut self.dirs] {
            list.sort();
            list.dedup();
        }
        self.env.sort();
        self.env.dedup();
    }
}

/// A devShell's environment plus what it was computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvRecord {
    /// Every variable, by name.
    pub variables: BTreeMap<String, Variable>,
    /// Bash functions, name → body (the text between the braces, as `declare -f` prints it).
    pub bash_functions: BTreeMap<String, String>,
    /// What the evaluation read.
    pub watch: WatchList,
}

/// A `print-dev-env --json` document that is not what Nix writes.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("invalid devShell environment JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid devShell environment JSON: {0}")]
    Shape(String),
}

/// Variables that leak from the build sandbox or are bash's own, never a devShell's intent.
const DROPPED: &[&str] = &[
    "HOME",
    "TMP",
    "TMPDIR",
    "TEMP",
    "TEMPDIR",
    "NIX_BUILD_TOP",
    "NIX_LOG_FD",
    "NIX_ENFORCE_PURITY",
    "NIX_REMOTE",
    "TERM",
    "SHELL",
    "PPID",
    "SHLVL",
    "PWD",
    "OLDPWD",
    "UID",
    "EUID",
    "TZ",
    "SSL_CERT_FILE",
    "out",
    "IFS",
    "EPOCHREALTIME",
    "EPOCHSECONDS",
    "LINENO",
    "HOSTTYPE",
    "MACHTYPE",
    "OSTYPE",
    "OPTERR",
    "OPTIND",
    "OPTARG",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "RANDOM",
    "SRANDOM",
    "SECONDS",
    "HISTCMD",
    "HISTFILE",
    "HISTSIZE",
    "HISTFILESIZE",
    "HOSTNAME",
    "DIRSTACK",
    "FUNCNAME",
    "GROUPS",
    "PIPESTATUS",
    "COLUMNS",
    "LINES",
    "MAILCHECK",
    "SHELLOPTS",
    "_",
];

/// Name prefixes dropped for the same reason (`BASH`, `BASHOPTS`, `BASH_VERSINFO`, …).
const DROPPED_PREFIXES: &[&str] = &["BASH", "COMP_"];

pub use envy_store::text::{bytes_from_text, text_from_bytes};

/// Whether `name` belongs to envy's hook in some shell: its state (`__ENVY_*`), its shell
/// variables and functions (`_envy_*`, `__envy_*`) and the variables that run it
/// (`PROMPT_COMMAND`, zsh's `precmd_functions`/`chpwd_functions`). A devShell never sets
/// these: one that did could turn the hook off, and leaving would never unload.
pub fn is_hook_owned(name: &str) -> bool {
    name.starts_with("__ENVY_")
        || name.starts_with("_envy_")
        || name.starts_with("__envy_")
        || matches!(
            name,
            "PROMPT_COMMAND" | "precmd_functions" | "chpwd_functions" | "preexec_functions"
        )
}

/// Whether `name` can be a shell variable name at all.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

impl EnvRecord {
    /// Parse `nix print-dev-env --json` output (or envy's own JSON form).
    pub fn from_json(text: &str) -> Result<Self, RecordError> {
        let doc: Value = serde_json::from_str(text)?;
        Self::from_json_value(&doc)
    }

    /// [`EnvRecord::from_json`] on a parsed document.
    pub fn from_json_value(doc: &Value) -> Result<Self, RecordError> {
        let shape = |m: &str| RecordError::Shape(m.to_string());
        let mut record = EnvRecord::default();
        let vars = doc
            .get("variables")
            .and_then(Value::as_object)
            .ok_or_else(|| shape("no `variables` object"))?;
        for (name, var) in vars {
            let ty = var
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(&format!("`{name}` has no `type`")))?;
            // What Nix's `get-env.sh` writes for variables it cannot represent (bash's
            // special ones); Nix's reader skips them.
            if ty == "unknown" {
                continue;
            }
            let value = var
                .get("value")
                .ok_or_else(|| shape(&format!("`{name}` has no `value`")))?;
            let string = || {
                value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| shape(&format!("`{name}` is not a string")))
            };
            let parsed = match ty {
                "exported" => Variable::Exported(string()?),
                "var" => Variable::Var(string()?),
                "array" => Variable::Array(
                    value
                        .as_array()
                        .ok_or_else(|| shape(&format!("`{name}` is not an array")))?
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| shape(&format!("`{name}` has a non-string element")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                "associative" => Variable::Associative(
                    value
                        .as_object()
                        .ok_or_else(|| shape(&format!("`{name}` is not an object")))?
                        .iter()
                        .map(|(k, v)| {
                            v.as_str()
                                .map(|v| (k.clone(), v.to_string()))
                                .ok_or_else(|| shape(&format!("`{name}.{k}` is not a string")))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                other => return Err(shape(&format!("`{name}` has unknown type `{other}`"))),
            };
            record.variables.insert(name.clone(), parsed);
        }
        if let Some(funcs) = doc.get("bashFunctions") {
            let funcs = funcs
                .as_object()
                .ok_or_else(|| shape("`bashFunctions` is not an object"))?;
            for (name, body) in funcs {
                let body = body
                    .as_str()
                    .ok_or_else(|| shape(&format!("function `{name}` is not a string")))?;
                record.bash_functions.insert(name.clone(), body.to_string());
            }
        }
        if let Some(watch) = doc.get("envy").and_then(|e| e.get("watch")) {
            let paths = |key: &str| -> Vec<PathBuf> {
                watch
                    .get(key)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(PathBuf::from)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            record.watch.files = paths("files");
            record.watch.dirs = paths("dirs");
            record.watch.env = watch
                .get("env")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
        }
        Ok(record)
    }

    /// Nix's JSON shape (`bashFunctions`, `variables`) plus `"envy": {"watch": …}`.
    pub fn to_json(&self) -> Value {
        let mut vars = Map::new();
        for (name, var) in &self.variables {
            let value = match var {
                Variable::Exported(s) | Variable::Var(s) => json!(s),
                Variable::Array(a) => json!(a),
                Variable::Associative(m) => json!(m),
            };
            vars.insert(
                name.clone(),
                json!({"type": var.type_name(), "value": value}),
            );
        }
        json!({
            "bashFunctions": self.bash_functions,
            "variables": vars,
            "envy": {"watch": {
                "files": self.watch.files,
                "dirs": self.watch.dirs,
                "env": self.watch.env,
            }},
        })
    }

    /// The devShell's output names (`outputs`: a string, an array, or with structured
    /// attributes an associative array), those that are shell identifiers.
    pub fn output_names(&self) -> Vec<String> {
        let names: Vec<String> = match self.variables.get("outputs") {
            Some(Variable::Exported(s) | Variable::Var(s)) => {
                s.split_whitespace().map(str::to_string).collect()
            }
            Some(Variable::Array(a)) => a.clone(),
            Some(Variable::Associative(m)) => m.keys().cloned().collect(),
            None => Vec::new(),
        };
        names.into_iter().filter(|n| is_identifier(n)).collect()
    }

    /// Drop what leaks from the build sandbox and bash's own variables (see [`DROPPED`]),
    /// every output path (`out` and each name in `outputs`), and names no shell can hold.
    pub fn sanitize(&mut self) {
        let outputs = self.output_names();
        self.variables.retain(|name, _| {
            is_identifier(name)
                && !is_hook_owned(name)
                && !DROPPED.contains(&name.as_str())
                && !DROPPED_PREFIXES.iter().any(|p| name.starts_with(p))
                && !outputs.iter().any(|o| o == name)
        });
        self.bash_functions
            .retain(|name, _| is_function_name(name) && !is_hook_owned(name));
    }

    /// The `shellHook` to run once on entry, if any.
    pub fn shell_hook(&self) -> Option<&str> {
        match self.variables.get("shellHook") {
            Some(Variable::Exported(s) | Variable::Var(s)) if !s.trim().is_empty() => Some(s),
            _ => None,
        }
    }

    /// The environment variables this record sets (exported variables other than
    /// `shellHook`, which is run rather than kept).
    pub fn exported(&self) -> impl Iterator<Item = (&str, &str)> {
        // Records cached before a name became the hook's are filtered here too.
        self.variables.iter().filter_map(|(name, var)| match var {
            Variable::Exported(value) if name != "shellHook" && !is_hook_owned(name) => {
                Some((name.as_str(), value.as_str()))
            }
            _ => None,
        })
    }

    /// Shell variables that are not exported (`var`, `array`, `associative`).
    pub fn shell_locals(&self) -> impl Iterator<Item = (&str, &Variable)> {
        self.variables.iter().filter_map(|(name, var)| match var {
            Variable::Exported(_) => None,
            _ if is_hook_owned(name) => None,
            _ => Some((name.as_str(), var)),
        })
    }

    /// Whether this record has parts only bash-like shells can run.
    pub fn has_bash_only_parts(&self) -> bool {
        self.shell_hook().is_some() || !self.bash_functions.is_empty()
    }

    /// sha256 over the environment itself (variables and functions, not the watch list):
    /// two builds with the same hash give the shell the same environment.
    pub fn env_hash(&self) -> [u8; 32] {
        let bytes =
            postcard::to_stdvec(&(&self.variables, &self.bash_functions)).unwrap_or_default();
        Sha256::digest(&bytes).into()
    }
}

/// Whether `name` can be defined as a function by `name() { … }` in bash and zsh.
pub fn is_function_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '+' | '@'))
        && !name.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const NIX_JSON: &str = r#"{"bashFunctions":{"greet":" \n    echo \"hello $1\"\n"},
      "variables":{"BASH":{"type":"var","value":"/usr/bin/bash"},
      "FOO":{"type":"exported","value":"bar"},"HOME":{"type":"exported","value":"/homeless-shelter"},
      "IFS":{"type":"var","value":" \t\n"},"out":{"type":"exported","value":"/nix/store/x-env"},
      "dev":{"type":"exported","value":"/nix/store/x-env-dev"},"outputs":{"type":"exported","value":"out dev"},
      "myArr":{"type":"array","value":["one","two three"]},"myAssoc":{"type":"associative","value":{"k":"v"}},
      "shellHook":{"type":"exported","value":"echo hi\n"},"BASH_VERSINFO":{"type":"array","value":["5"]},
      "PATH":{"type":"exported","value":"/nix/store/a/bin"},"TERM":{"type":"exported","value":"xterm"}}}"#;

    #[test]
    fn parses_nix_json_and_sanitizes_leaks() {
        let mut r = EnvRecord::from_json(NIX_JSON).unwrap();
        r.sanitize();
        let names: Vec<&str> = r.variables.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            ["FOO", "PATH", "myArr", "myAssoc", "outputs", "shellHook"]
        );
        assert_eq!(r.shell_hook(), Some("echo hi\n"));
        let exported: Vec<_> = r.exported().collect();
        assert_eq!(
            exported,
            [
                ("FOO", "bar"),
                ("PATH", "/nix/store/a/bin"),
                ("outputs", "out dev")
            ]
        );
        assert_eq!(r.bash_functions["greet"], " \n    echo \"hello $1\"\n");
    }

    #[test]
    fn json_round_trip_keeps_everything_including_the_watch_list() {
        let mut r = EnvRecord::from_json(NIX_JSON).unwrap();
        r.watch.files = vec![PathBuf::from("/p/flake.nix")];
        r.watch.env = vec!["HOME".into()];
        let back = EnvRecord::from_json(&r.to_json().to_string()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn postcard_round_trip() {
        let r = EnvRecord::from_json(NIX_JSON).unwrap();
        let bytes = postcard::to_stdvec(&r).unwrap();
        assert_eq!(postcard::from_bytes::<EnvRecord>(&bytes).unwrap(), r);
    }

    #[test]
    fn env_hash_ignores_the_watch_list() {
        let a = EnvRecord::from_json(NIX_JSON).unwrap();
        let mut b = a.clone();
        b.watch.files.push(PathBuf::from("/x"));
        assert_eq!(a.env_hash(), b.env_hash());
        b.variables
            .insert("NEW".into(), Variable::Exported("1".into()));
        assert_ne!(a.env_hash(), b.env_hash());
    }

    #[test]
    fn rejects_unknown_types_with_the_variable_name() {
        let err =
            EnvRecord::from_json(r#"{"variables":{"X":{"type":"weird","value":1}}}"#).unwrap_err();
        assert!(
            err.to_string().contains("`X` has unknown type `weird`"),
            "{err}"
        );
    }
}
