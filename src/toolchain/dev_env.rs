//! `DevEnv`: a dev-shell derivation's environment after its setup ran — variables with bash's
//! types and bash functions — in exactly the shape of `nix print-dev-env --json`, whichever
//! backend produced it. Also the list of build-time values that must never reach a user's
//! shell.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The environment of a dev shell (`nix print-dev-env --json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevEnv {
    #[serde(rename = "bashFunctions")]
    pub bash_functions: BTreeMap<String, String>,
    pub variables: BTreeMap<String, Variable>,
}

/// One shell variable with its bash type, as Nix names them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum Variable {
    /// `declare -x`: in the environment of commands.
    Exported(String),
    /// `declare --`: a shell variable only.
    Var(String),
    /// `declare -a`, values in index order.
    Array(Vec<String>),
    /// `declare -A`.
    Associative(BTreeMap<String, String>),
}

/// Values the build sandbox leaves behind that a user's shell must not get (Nix's own list
/// for `nix develop`, plus `SHELL`: the user keeps theirs).
pub const NIX_IGNORED_VARIABLES: &[&str] = &[
    "BASHOPTS",
    "HOME",
    "NIX_BUILD_TOP",
    "NIX_ENFORCE_PURITY",
    "NIX_LOG_FD",
    "NIX_REMOTE",
    "PPID",
    "SHELL",
    "SHELLOPTS",
    "SSL_CERT_FILE",
    "TEMP",
    "TEMPDIR",
    "TERM",
    "TMP",
    "TMPDIR",
    "TZ",
    "UID",
];

/// bash's own variables, which describe the capturing shell rather than the environment.
pub const BASH_INTERNAL_VARIABLES: &[&str] = &[
    "BASH",
    "BASHPID",
    "COLUMNS",
    "COMP_WORDBREAKS",
    "EPOCHREALTIME",
    "EPOCHSECONDS",
    "HISTFILE",
    "HISTFILESIZE",
    "HISTSIZE",
    "HOSTTYPE",
    "IFS",
    "LINENO",
    "LINES",
    "MACHTYPE",
    "MAILCHECK",
    "OLDPWD",
    "OPTERR",
    "OPTIND",
    "OSTYPE",
    "PS1",
    "PS2",
    "PS4",
];

impl DevEnv {
    /// Parse `nix print-dev-env --json` output.
    pub fn from_json(json: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(json)
    }

    /// A string variable's value (exported or not).
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.variables.get(name)? {
            Variable::Exported(v) | Variable::Var(v) => Some(v),
            _ => None,
        }
    }

    /// Whether `name` is a build-time or bash-internal value no user shell should receive.
    pub fn is_build_only(name: &str) -> bool {
        NIX_IGNORED_VARIABLES.contains(&name)
            || BASH_INTERNAL_VARIABLES.contains(&name)
            || name.starts_with("BASH_")
    }

    /// The exported variables a command run in this environment gets, minus build-only ones.
    pub fn exported(&self) -> impl Iterator<Item = (&str, &str)> {
        self.variables.iter().filter_map(|(name, var)| match var {
            Variable::Exported(v) if !Self::is_build_only(name) => {
                Some((name.as_str(), v.as_str()))
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_nix_print_dev_env_json() {
        let json = r#"{"bashFunctions":{"f":" \n    echo hi\n"},"variables":{
            "A":{"type":"exported","value":"1"},"B":{"type":"var","value":"x y"},
            "C":{"type":"array","value":["a","b"]},"D":{"type":"associative","value":{"k":"v"}}}}"#;
        let env = DevEnv::from_json(json.as_bytes()).unwrap();
        assert_eq!(env.variables["A"], Variable::Exported("1".into()));
        assert_eq!(
            env.variables["C"],
            Variable::Array(vec!["a".into(), "b".into()])
        );
        assert_eq!(env.bash_functions["f"], " \n    echo hi\n");
        assert_eq!(
            DevEnv::from_json(&serde_json::to_vec(&env).unwrap()).unwrap(),
            env
        );
    }

    #[test]
    fn build_only_values_are_not_exported_to_shells() {
        let mut env = DevEnv::default();
        for (k, v) in [
            ("HOME", "/homeless-shelter"),
            ("CC", "cc"),
            ("TMPDIR", "/build"),
            ("BASH_VERSION", "5"),
        ] {
            env.variables.insert(k.into(), Variable::Exported(v.into()));
        }
        let names: Vec<_> = env.exported().map(|(k, _)| k).collect();
        assert_eq!(names, ["CC"]);
    }
}
