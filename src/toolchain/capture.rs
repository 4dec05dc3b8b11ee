//! Environment capture for the embedded backend: what `nix print-dev-env` does, for envy's
//! builder. envy-build's `Builder::capture` runs [`SCRIPT`] in place of a dev-shell
//! derivation's builder arguments, in that derivation's exact build environment; the script
//! writes the environment, NUL-framed, to the first output; [`parse`] turns it into a
//! [`DevEnv`] equal to what `nix print-dev-env --json` reports for the same derivation (the
//! unit tests check that against real Nix).

use std::collections::BTreeMap;

use super::dev_env::{DevEnv, Variable};

/// The script run in the dev-shell derivation's environment.
pub const SCRIPT: &str = include_str!("capture.sh");

/// The first field of a capture, naming the format.
const MAGIC: &[u8] = b"envy-dev-env-v1";

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

    /// Real Nix 2.8, offline, with its own store and config under `dir`.
    fn nix(dir: &std::path::Path, args: &[&str]) -> Vec<u8> {
        let conf = dir.join("etc");
        fs_err::create_dir_all(&conf).unwrap();
        let registry = dir.join("registry.json");
        fs_err::write(&registry, r#"{"flakes":[],"version":2}"#).unwrap();
        let d = dir.display();
        fs_err::write(
            conf.join("nix.conf"),
            format!(
                "experimental-features = nix-command flakes\nsandbox = false\nsubstituters =\nbuild-users-group =\n\
                 flake-registry = {}\nstore = local?store={d}/store&state={d}/state&log={d}/log\n",
                registry.display()
            ),
        )
        .unwrap();
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("NIX_CONF_DIR", &conf)
            .env("HOME", dir.join("home"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env_remove("NIX_REMOTE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn have_nix() -> bool {
        if which::which("nix").is_ok() {
            return true;
        }
        assert!(
            std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_none(),
            "`nix` is required (ENVY_TEST_REQUIRE_TOOLS is set)"
        );
        eprintln!("skipping: `nix` is not installed (scripts/test installs it)");
        false
    }

    /// The oracle: for the same dev shell, the capture (built by Nix with `capture.sh` as the
    /// builder script, as the embedded backend will) equals `nix print-dev-env --json`, except
    /// for what names the capturing derivation itself or the moment of capture.
    #[test]
    fn capture_matches_nix_print_dev_env() {
        if !have_nix() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tools = crate::toolchain::HostTools {
            system: "x86_64-linux".into(),
            tools: vec![],
        };
        let pkgs = crate::pkgs::materialize(&dir.path().join("envy-cache"), &tools).unwrap();
        fs_err::write(dir.path().join("capture.sh"), SCRIPT).unwrap();
        let expr = dir.path().join("shell.nix");
        fs_err::write(
            &expr,
            format!(
                r#"let
  pkgs = import {pkgs} {{ }};
  hooked = pkgs.runCommand "hooked" {{ }} ''
    mkdir -p $out/bin $out/include $out/nix-support
    cat > $out/nix-support/setup-hook <<'EOF'
    declare -A hookedTable=([first]="1" ["two words"]="x\"y")
    hookedList=("a b" c)
    hookedGreet() {{ echo "hi $1"; }}
    hookedSeen() {{ HOOKED_DEPS+=" $1"; }}
    addEnvHooks "$hostOffset" hookedSeen
    export HOOKED_MULTI=$'line one\nline\ttwo \\ end'
    EOF
  '';
  shell = pkgs.mkShellNoCC {{
    packages = [ hooked ];
    FOO = "bar";
    listy = [ "x" "y" ];
    shellHook = "echo entering";
  }};
in {{
  inherit shell;
  env = derivation (shell.drvAttrs // {{ args = [ ./capture.sh ]; }});
}}
"#,
                pkgs = pkgs.display()
            ),
        )
        .unwrap();
        let expr = expr.to_str().unwrap();
        let oracle = nix(
            dir.path(),
            &["nix", "print-dev-env", "--json", "-f", expr, "shell"],
        );
        let mut oracle = DevEnv::from_json(&oracle).unwrap();
        let built = nix(
            dir.path(),
            &["nix-build", "--no-out-link", expr, "-A", "env"],
        );
        let built = String::from_utf8(built).unwrap();
        let mut captured = parse(&fs_err::read(built.trim()).unwrap()).unwrap();

        for env in [&mut oracle, &mut captured] {
            // The capturing derivation's own output and build directory (named after the
            // derivation outside a sandbox), the line the script was at, the clock.
            for volatile in [
                "out",
                "prefix",
                "NIX_BUILD_TOP",
                "TMP",
                "TMPDIR",
                "TEMP",
                "TEMPDIR",
                "LINENO",
                "EPOCHREALTIME",
                "EPOCHSECONDS",
            ] {
                env.variables.remove(volatile);
            }
        }
        assert_eq!(captured.bash_functions, oracle.bash_functions);
        let names = |e: &DevEnv| e.variables.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&captured), names(&oracle));
        for (name, value) in &oracle.variables {
            assert_eq!(
                captured.variables.get(name),
                Some(value),
                "variable `{name}`"
            );
        }
        // And the environment is the one the package set promises.
        assert_eq!(captured.get("FOO"), Some("bar"));
        assert_eq!(
            captured.get("HOOKED_MULTI"),
            Some("line one\nline\ttwo \\ end")
        );
        assert!(captured.get("HOOKED_DEPS").unwrap().contains("-hooked"));
        assert!(captured.get("PATH").unwrap().contains("-hooked/bin"));
        assert_eq!(
            captured.variables["hookedList"],
            Variable::Array(vec!["a b".into(), "c".into()])
        );
        assert!(
            captured.bash_functions.contains_key("hookedGreet")
                && captured.bash_functions.contains_key("genericBuild")
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
