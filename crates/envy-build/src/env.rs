//! The builder's environment, with Nix's conventions: `PATH=/path-not-set`,
//! `HOME=/homeless-shelter`, `NIX_STORE`, `NIX_BUILD_CORES`, `NIX_BUILD_TOP`/`TMPDIR`/`TEMPDIR`/
//! `TMP`/`TEMP`/`PWD` at the build directory, `NIX_LOG_FD=2`, `TERM=xterm-256color`,
//! `NIX_OUTPUT_CHECKED=1` and `impureEnvVars` for fixed-output derivations; the derivation's
//! own variables (with `passAsFile` ones moved to `.attr-<nix32 sha256 of the name>` files), or
//! with `__structuredAttrs` the `.attrs.json`/`.attrs.sh` files instead.
//!
//! Nix 2.8 sets `NIX_ATTRS_JSON_FILE`/`NIX_ATTRS_SH_FILE` to the host path of the build
//! directory even in a sandbox (a bug later fixed); envy uses the path the builder sees.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::error::BuildError;
use crate::structured_attrs;

/// What the environment is made from.
pub struct EnvInputs<'a> {
    /// The derivation's store path (for error messages).
    pub drv_path: &'a str,
    /// The derivation's `env` section.
    pub drv_env: &'a BTreeMap<String, String>,
    /// Output name → store path.
    pub outputs: &'a BTreeMap<String, String>,
    pub store_dir: &'a str,
    /// The build directory as the builder sees it (`/build` in the sandbox).
    pub build_dir: &'a str,
    pub cores: u32,
    /// Fixed-output derivations get `NIX_OUTPUT_CHECKED` and their `impureEnvVars`.
    pub fixed_output: bool,
    /// Reads the caller's environment (for `impureEnvVars`).
    pub host_env: &'a dyn Fn(&str) -> Option<String>,
}

/// The builder's variables and the files to write into the build directory first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BuildEnv {
    pub vars: BTreeMap<String, String>,
    /// (file name relative to the build directory, contents)
    pub files: Vec<(String, Vec<u8>)>,
}

/// Build the environment Nix would give this derivation's builder.
///
/// # Errors
/// `__json` is not valid JSON.
pub fn build_env(inputs: &EnvInputs<'_>) -> Result<BuildEnv, BuildError> {
    let mut env = BuildEnv::default();
    let vars = &mut env.vars;
    let set = |vars: &mut BTreeMap<String, String>, k: &str, v: &str| {
        vars.insert(k.to_string(), v.to_string());
    };
    set(vars, "PATH", "/path-not-set");
    set(vars, "HOME", "/homeless-shelter");
    set(vars, "NIX_STORE", inputs.store_dir);
    set(vars, "NIX_BUILD_CORES", &inputs.cores.to_string());

    let structured = inputs.drv_env.get("__json");
    if structured.is_none() {
        let pass_as_file: BTreeSet<&str> = inputs
            .drv_env
            .get("passAsFile")
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default();
        for (name, value) in inputs.drv_env {
            if pass_as_file.contains(name.as_str()) {
                let file = format!(
                    ".attr-{}",
                    envy_store::nix32::encode(&Sha256::digest(name.as_bytes()))
                );
                vars.insert(
                    format!("{name}Path"),
                    format!("{}/{file}", inputs.build_dir),
                );
                env.files
                    .push((file, envy_store::text::bytes_from_text(value).into_owned()));
            } else {
                vars.insert(name.clone(), value.clone());
            }
        }
    }
    for key in ["NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD"] {
        set(vars, key, inputs.build_dir);
    }
    if inputs.fixed_output {
        set(vars, "NIX_OUTPUT_CHECKED", "1");
        let impure = impure_env_vars(inputs, structured)?;
        for name in impure {
            let value = (inputs.host_env)(&name).unwrap_or_default();
            vars.insert(name, value);
        }
    }
    set(vars, "NIX_LOG_FD", "2");
    set(vars, "TERM", "xterm-256color");

    if let Some(json) = structured {
        let value = structured_attrs::prepare(json, inputs.outputs).map_err(|source| {
            BuildError::StructuredAttrs {
                drv: inputs.drv_path.to_string(),
                source,
            }
        })?;
        env.files.push((
            ".attrs.sh".into(),
            structured_attrs::to_shell(&value).into_bytes(),
        ));
        env.files.push((
            ".attrs.json".into(),
            structured_attrs::to_json(&value).into_bytes(),
        ));
        set(
            vars,
            "NIX_ATTRS_SH_FILE",
            &format!("{}/.attrs.sh", inputs.build_dir),
        );
        set(
            vars,
            "NIX_ATTRS_JSON_FILE",
            &format!("{}/.attrs.json", inputs.build_dir),
        );
    }
    Ok(env)
}

fn impure_env_vars(
    inputs: &EnvInputs<'_>,
    structured: Option<&String>,
) -> Result<Vec<String>, BuildError> {
    let Some(json) = structured else {
        return Ok(inputs
            .drv_env
            .get("impureEnvVars")
            .map(|s| s.split_whitespace().map(String::from).collect())
            .unwrap_or_default());
    };
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|source| BuildError::StructuredAttrs {
            drv: inputs.drv_path.to_string(),
            source,
        })?;
    Ok(value
        .get("impureEnvVars")
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(drv_env: &[(&str, &str)], fixed: bool) -> BuildEnv {
        let drv_env: BTreeMap<String, String> = drv_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let outputs = BTreeMap::from([("out".to_string(), "/s/x-paf".to_string())]);
        build_env(&EnvInputs {
            drv_path: "/s/x-paf.drv",
            drv_env: &drv_env,
            outputs: &outputs,
            store_dir: "/s",
            build_dir: "/build",
            cores: 2,
            fixed_output: fixed,
            host_env: &|name| (name == "http_proxy").then(|| "http://p".to_string()),
        })
        .unwrap()
    }

    /// The `.attr-` file name real Nix 2.8 chose for `passAsFile = ["big"]`.
    #[test]
    fn pass_as_file_name_matches_nix() {
        let env = env_of(
            &[("big", "hello"), ("passAsFile", "big"), ("name", "paf")],
            false,
        );
        let file = ".attr-1lak0mvllw8rv9i9ygkglvhqsq19qi9ynl4bi7gbf69ab5nzw89a";
        assert_eq!(env.vars["bigPath"], format!("/build/{file}"));
        assert_eq!(env.files, vec![(file.to_string(), b"hello".to_vec())]);
        assert!(!env.vars.contains_key("big"));
        assert_eq!(env.vars["passAsFile"], "big");
        for (k, v) in [
            ("PATH", "/path-not-set"),
            ("HOME", "/homeless-shelter"),
            ("NIX_STORE", "/s"),
            ("NIX_BUILD_CORES", "2"),
            ("NIX_BUILD_TOP", "/build"),
            ("TMPDIR", "/build"),
            ("PWD", "/build"),
            ("NIX_LOG_FD", "2"),
            ("TERM", "xterm-256color"),
        ] {
            assert_eq!(env.vars[k], v, "{k}");
        }
        assert!(!env.vars.contains_key("NIX_OUTPUT_CHECKED"));
    }

    #[test]
    fn fixed_output_gets_impure_vars() {
        let env = env_of(&[("impureEnvVars", "http_proxy ftp_proxy")], true);
        assert_eq!(env.vars["http_proxy"], "http://p");
        assert_eq!(env.vars["ftp_proxy"], "");
        assert_eq!(env.vars["NIX_OUTPUT_CHECKED"], "1");
        let env = env_of(&[("impureEnvVars", "http_proxy")], false);
        assert!(!env.vars.contains_key("http_proxy"));
    }

    #[test]
    fn structured_attrs_replace_the_environment() {
        let env = env_of(
            &[("__json", r#"{"name":"sa","x":[1]}"#), ("name", "sa")],
            false,
        );
        assert!(!env.vars.contains_key("name"));
        assert!(!env.vars.contains_key("__json"));
        assert_eq!(env.vars["NIX_ATTRS_JSON_FILE"], "/build/.attrs.json");
        let names: Vec<&str> = env.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [".attrs.sh", ".attrs.json"]);
    }
}
