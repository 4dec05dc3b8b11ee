//! Environment capture for the embedded backend: what `nix print-dev-env` does, for envy's
//! builder. A dev-shell derivation is rewritten into its "-env" twin (same environment and
//! inputs, builder script replaced by `capture.sh`, reference checks dropped); building that
//! twin writes the environment, NUL-framed, to its output; [`parse`] turns it into a
//! [`DevEnv`] equal to what `nix print-dev-env --json` reports for the same derivation.
//!
//! This module only knows the rewrite rules and the format; storing the script, hashing and
//! building the rewritten derivation belong to the store and the builder.

use std::collections::BTreeMap;

use super::dev_env::{DevEnv, Variable};

/// The builder script of the "-env" derivation (a file of that content goes in the store, as
/// text, under [`SCRIPT_NAME`], and is the derivation's only argument).
pub const SCRIPT: &str = include_str!("capture.sh");

/// The store name of the capture script.
pub const SCRIPT_NAME: &str = "envy-get-env.sh";

/// The first field of a capture, naming the format.
const MAGIC: &[u8] = b"envy-dev-env-v1";

/// The environment entries Nix removes from the derivation before capturing: a dev shell is
/// not the build, so the build's reference checks do not apply.
pub const DROPPED_CHECKS: &[&str] = &[
    "allowedReferences",
    "allowedRequisites",
    "disallowedReferences",
    "disallowedRequisites",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CaptureError {
    #[error(
        "`envy shell` and the env cache only work on derivations whose builder is bash, not `{builder}`"
    )]
    NotBash { builder: String },
    #[error("the environment capture is not in envy's format (no `envy-dev-env-v1` header)")]
    BadHeader,
    #[error("the environment capture ends in the middle of an entry")]
    Truncated,
    #[error("the environment capture has an unknown entry kind `{kind}`")]
    UnknownKind { kind: String },
    #[error("the environment capture has an invalid count `{count}`")]
    BadCount { count: String },
}

/// The parts of a derivation the rewrite touches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvDerivation {
    pub name: String,
    pub builder: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl EnvDerivation {
    /// Turn a dev-shell derivation into its capturing "-env" twin, as `nix print-dev-env`
    /// does: the builder must be bash; its arguments become the capture script's store path;
    /// the reference checks go; the name gets `-env` (the `name` variable stays, as in Nix
    /// 2.8). The caller adds the script to the derivation's input sources and recomputes the
    /// output paths (their variables then hold the new paths).
    pub fn rewrite_for_capture(mut self, script_store_path: &str) -> Result<Self, CaptureError> {
        let base = self.builder.rsplit('/').next().unwrap_or_default();
        if base != "bash" {
            return Err(CaptureError::NotBash {
                builder: self.builder,
            });
        }
        self.args = vec![script_store_path.to_owned()];
        for check in DROPPED_CHECKS {
            self.env.remove(*check);
        }
        self.name.push_str("-env");
        Ok(self)
    }
}

/// Read what `capture.sh` wrote.
pub fn parse(bytes: &[u8]) -> Result<DevEnv, CaptureError> {
    let mut fields = bytes.split(|b| *b == 0);
    if fields.next() != Some(MAGIC) {
        return Err(CaptureError::BadHeader);
    }
    let mut next = || -> Result<String, CaptureError> {
        fields
            .next()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .ok_or(CaptureError::Truncated)
    };
    let mut env = DevEnv::default();
    loop {
        let kind = match next() {
            // `split` yields one empty field after the final NUL.
            Ok(kind) if kind.is_empty() => break,
            Ok(kind) => kind,
            Err(_) => break,
        };
        let name = next()?;
        match kind.as_str() {
            "F" => {
                env.bash_functions.insert(name, next()?);
            }
            "X" => {
                env.variables.insert(name, Variable::Exported(next()?));
            }
            "V" => {
                env.variables.insert(name, Variable::Var(next()?));
            }
            "A" => {
                let count = count(&next()?)?;
                let values = (0..count).map(|_| next()).collect::<Result<_, _>>()?;
                env.variables.insert(name, Variable::Array(values));
            }
            "H" => {
                let count = count(&next()?)?;
                let mut map = BTreeMap::new();
                for _ in 0..count {
                    let key = next()?;
                    map.insert(key, next()?);
                }
                env.variables.insert(name, Variable::Associative(map));
            }
            _ => return Err(CaptureError::UnknownKind { kind }),
        }
    }
    Ok(env)
}

fn count(text: &str) -> Result<usize, CaptureError> {
    text.parse().map_err(|_| CaptureError::BadCount {
        count: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Run the capture script in a plain bash with `setup` as the stdenv's setup script.
    fn capture_with_setup(setup: &str, extra_env: &[(&str, &str)]) -> DevEnv {
        let dir = tempfile::tempdir().unwrap();
        let stdenv = dir.path().join("stdenv");
        fs_err::create_dir_all(&stdenv).unwrap();
        fs_err::write(stdenv.join("setup"), setup).unwrap();
        let script = dir.path().join("capture.sh");
        fs_err::write(&script, SCRIPT).unwrap();
        let out = dir.path().join("out");
        let status = Command::new("/bin/bash")
            .arg(&script)
            .env_clear()
            .env("stdenv", &stdenv)
            .env("outputs", "out")
            .env("out", &out)
            .envs(extra_env.iter().copied())
            .status()
            .unwrap();
        assert!(status.success());
        parse(&fs_err::read(&out).unwrap()).unwrap()
    }

    #[test]
    fn captures_every_kind_of_variable_and_function() {
        let env = capture_with_setup(
            r#"
            export EXPORTED="a \"quoted\" value
            on two lines"
            plain=$'tab\there \x1b[1m'
            list=(one "two words" "")
            declare -A map=([k]=v ["sp ace"]="x")
            declare -i counter=3
            declare -r constant=1
            hello() { echo "hello $1"; }
            "#,
            &[("FROM_DRV", "drv value")],
        );
        assert_eq!(
            env.get("EXPORTED"),
            Some("a \"quoted\" value\n            on two lines")
        );
        assert_eq!(
            env.variables["plain"],
            Variable::Var("tab\there \x1b[1m".into())
        );
        assert_eq!(
            env.variables["list"],
            Variable::Array(vec!["one".into(), "two words".into(), String::new()])
        );
        let map = BTreeMap::from([
            ("k".to_owned(), "v".to_owned()),
            ("sp ace".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(env.variables["map"], Variable::Associative(map));
        assert_eq!(
            env.variables["FROM_DRV"],
            Variable::Exported("drv value".into())
        );
        assert_eq!(
            env.variables["IN_NIX_SHELL"],
            Variable::Exported("impure".into())
        );
        assert!(
            !env.variables.contains_key("counter"),
            "integer variables are dropped, as by Nix"
        );
        assert!(
            !env.variables.contains_key("constant"),
            "read-only variables are dropped, as by Nix"
        );
        assert!(!env.variables.contains_key("PWD") && !env.variables.contains_key("SHLVL"));
        assert!(
            env.variables
                .keys()
                .all(|k| !k.starts_with("__envyCapture")),
            "{:?}",
            env.variables.keys()
        );
        assert_eq!(env.bash_functions["hello"], " \n    echo \"hello $1\"\n");
        assert_eq!(
            env.bash_functions.len(),
            1,
            "{:?}",
            env.bash_functions.keys()
        );
    }

    #[test]
    fn rewrite_refuses_non_bash_builders_and_drops_checks() {
        let drv = EnvDerivation {
            name: "shell".into(),
            builder: "/bin/bash".into(),
            args: vec!["-e".into(), "/store/x-builder.sh".into()],
            env: BTreeMap::from([
                ("allowedReferences".to_owned(), String::new()),
                ("name".to_owned(), "shell".to_owned()),
            ]),
        };
        let rewritten = drv
            .clone()
            .rewrite_for_capture("/store/y-envy-get-env.sh")
            .unwrap();
        assert_eq!(rewritten.name, "shell-env");
        assert_eq!(rewritten.args, ["/store/y-envy-get-env.sh"]);
        assert_eq!(rewritten.env.keys().collect::<Vec<_>>(), ["name"]);
        let sh = EnvDerivation {
            builder: "/bin/sh".into(),
            ..drv
        };
        assert_eq!(
            sh.rewrite_for_capture("/x").unwrap_err(),
            CaptureError::NotBash {
                builder: "/bin/sh".into()
            }
        );
    }

    #[test]
    fn truncated_or_foreign_captures_are_errors() {
        assert_eq!(parse(b"{}").unwrap_err(), CaptureError::BadHeader);
        assert_eq!(
            parse(b"envy-dev-env-v1\0X\0NAME").unwrap_err(),
            CaptureError::Truncated
        );
        assert_eq!(
            parse(b"envy-dev-env-v1\0A\0L\0two\0a\0").unwrap_err(),
            CaptureError::BadCount {
                count: "two".into()
            }
        );
    }
}
