//! Environment capture for the embedded engine: what `nix print-dev-env` does, for envy's
//! builder. envy-build's `Builder::capture` runs [`SCRIPT`] in place of a dev-shell
//! derivation's builder arguments, in that derivation's exact build environment; the script
//! writes the environment, NUL-framed, to the first output; [`parse`] turns it into an
//! [`EnvRecord`] equal to what `nix print-dev-env --json` reports for the same derivation (the
//! unit tests check that against real Nix). [`Engine::keep_env`] then records the environment
//! in the store as `<name>-env`, referring to the shell's inputs, for a gc root to keep.

use std::collections::{BTreeMap, BTreeSet};

use envy_build::Progress;
use envy_store::StorePath;

use super::{Engine, EngineError};
use crate::env::record::{EnvRecord, Variable};

/// The script run in the dev-shell derivation's environment.
pub const SCRIPT: &str = include_str!("capture.sh");

/// The first field of a capture, naming the format.
const MAGIC: &[u8] = b"envy-dev-env-v1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CaptureError {
    #[error("the environment capture is not in envy's format (no `envy-dev-env-v1` header)")]
    BadHeader,
    #[error("the environment capture ends in the middle of an entry")]
    Truncated,
    #[error("the environment capture has an unknown entry kind `{kind}`")]
    UnknownKind { kind: String },
    #[error("the environment capture has an invalid count `{count}`")]
    BadCount { count: String },
}

/// Read what `capture.sh` wrote (an empty watch list: the caller knows what was read).
pub fn parse(bytes: &[u8]) -> Result<EnvRecord, CaptureError> {
    let mut fields = bytes.split(|b| *b == 0);
    if fields.next() != Some(MAGIC) {
        return Err(CaptureError::BadHeader);
    }
    let mut next = || -> Result<String, CaptureError> {
        fields
            .next()
            .map(crate::env::record::text_from_bytes)
            .ok_or(CaptureError::Truncated)
    };
    let mut env = EnvRecord::default();
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

impl Engine {
    /// The environment of the dev-shell derivation `drv_path` (its builder must be bash), as
    /// `nix print-dev-env --json` reports it: its inputs are built (or substituted) first,
    /// then [`SCRIPT`] runs in its build environment. Nothing is added to the store. The
    /// record is not sanitized (see `EnvRecord::sanitize`).
    pub fn capture_env(&self, drv_path: &StorePath) -> Result<EnvRecord, EngineError> {
        self.capture_env_reporting(drv_path, &*self.progress)
    }

    /// [`Engine::capture_env`], reporting its builds to `progress` instead of the engine's
    /// display (a caller's sink that lives only as long as this call).
    pub fn capture_env_reporting(
        &self,
        drv_path: &StorePath,
        progress: &dyn Progress,
    ) -> Result<EnvRecord, EngineError> {
        let captured = self.with_builder_reporting(progress, |b| b.capture(drv_path, SCRIPT))?;
        parse(&captured.output).map_err(|source| EngineError::Capture {
            drv: self.store.store_dir().print(drv_path),
            source,
        })
    }

    /// [`Engine::capture_env_reporting`] then [`Engine::keep_env`], remembered per derivation
    /// (and build-core count): a derivation captured before whose `-env` path is still valid
    /// gets that environment back without building or running anything — as Nix reuses a
    /// dev shell's built `-env` output. Returns the environment and its `-env` path.
    pub fn capture_and_keep(
        &self,
        drv_path: &StorePath,
        progress: &dyn Progress,
    ) -> Result<(EnvRecord, StorePath), EngineError> {
        let memo = self.store.state_dir().join("env-of").join(format!(
            "{}-{}",
            drv_path.base_name(),
            self.config.cores
        ));
        if let Some(found) = self.remembered_env(&memo) {
            return Ok(found);
        }
        let env = self.capture_env_reporting(drv_path, progress)?;
        let anchor = self.keep_env(drv_path, &env)?;
        // Best effort: without the memo the next capture runs again.
        let _ = fs_err::create_dir_all(memo.parent().unwrap_or(&memo))
            .and_then(|()| fs_err::write(&memo, anchor.base_name()));
        Ok((env, anchor))
    }

    /// The environment a memo file names, if its `-env` path is valid (and now a temporary
    /// root of this process) and reads back.
    fn remembered_env(&self, memo: &std::path::Path) -> Option<(EnvRecord, StorePath)> {
        let name = fs_err::read_to_string(memo).ok()?;
        let dir = self.store.store_dir();
        let anchor = dir
            .parse(&dir.as_path().join(name.trim()).to_string_lossy())
            .ok()?;
        self.store.add_temp_root(&anchor).ok()?;
        if !self.store.is_valid(&anchor).ok()? {
            return None;
        }
        let text = fs_err::read_to_string(self.store.real_path(&anchor)).ok()?;
        let env = EnvRecord::from_json(&text).ok()?;
        Some((env, anchor))
    }

    /// Record `env`, the environment of `drv_path`, in the store as `<name>-env` (its JSON,
    /// like the output of Nix's `-env` derivation), referring to everything the environment
    /// needs: the derivation's sources and its input derivations' outputs. A gc root on the
    /// returned path keeps the whole environment alive.
    pub fn keep_env(
        &self,
        drv_path: &StorePath,
        env: &EnvRecord,
    ) -> Result<StorePath, EngineError> {
        let drv = self.store.read_derivation(drv_path)?;
        let dir = self.store.store_dir();
        let mut refs: BTreeSet<StorePath> = drv.input_srcs.iter().cloned().collect();
        for (input, wanted) in &drv.input_drvs {
            let known = self
                .store
                .read_derivation(input)?
                .output_paths(dir)
                .map_err(|source| envy_store::StoreError::Derivation {
                    path: dir.print(input),
                    source,
                })?;
            for name in &wanted.outputs {
                let path = known.get(name).cloned().flatten().ok_or_else(|| {
                    envy_store::StoreError::InvalidPath {
                        path: format!("{}^{name}", dir.print(input)),
                    }
                })?;
                refs.insert(path);
            }
        }
        let json = serde_json::to_vec(&env.to_json()).unwrap_or_default();
        let name = format!("{}-env", drv.name);
        Ok(self.store.add_text(&name, &json, &refs)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn get<'a>(env: &'a EnvRecord, name: &str) -> Option<&'a str> {
        match env.variables.get(name)? {
            Variable::Exported(v) | Variable::Var(v) => Some(v),
            _ => None,
        }
    }

    /// Run the capture script in a plain bash with `setup` as the stdenv's setup script.
    fn capture_with_setup(setup: &str, extra_env: &[(&str, &str)]) -> EnvRecord {
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
            get(&env, "EXPORTED"),
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

    /// `s` with every store path's `<store dir>/<hash>-` written as `/STORE/` (and the store
    /// directory itself as `/STORE`): envy's store and Nix's have different directories,
    /// hence different hashes for the same derivations.
    fn without_store_hashes(s: &str, store_dir: &str) -> String {
        let prefix = format!("{store_dir}/");
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find(&prefix) {
            out.push_str(&rest[..i]);
            let after = &rest[i + prefix.len()..];
            match after.get(32..33) {
                Some("-") => {
                    out.push_str("/STORE/");
                    rest = &after[33..];
                }
                _ => {
                    out.push_str(&prefix);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out.replace(store_dir, "/STORE")
    }

    fn normalized(env: &EnvRecord, store_dir: &str) -> EnvRecord {
        let n = |s: &String| without_store_hashes(s, store_dir);
        let mut out = EnvRecord::default();
        for (name, var) in &env.variables {
            let var = match var {
                Variable::Exported(v) => Variable::Exported(n(v)),
                Variable::Var(v) => Variable::Var(n(v)),
                Variable::Array(a) => Variable::Array(a.iter().map(n).collect()),
                Variable::Associative(m) => {
                    Variable::Associative(m.iter().map(|(k, v)| (n(k), n(v))).collect())
                }
            };
            out.variables.insert(name.clone(), var);
        }
        for (name, body) in &env.bash_functions {
            out.bash_functions.insert(name.clone(), n(body));
        }
        out
    }

    /// `env` without what names the moment or place of its capture: the dev shell's own
    /// output, the build directory (outside a sandbox a new one for every build, as in Nix:
    /// `<build root>/<pid>-<n>-<name>/build`), the line the script was at, the clock, and
    /// the build user's login shell (bash reads it from passwd: `/noshell` in a sandbox, as
    /// in Nix's).
    fn stable(env: &EnvRecord) -> EnvRecord {
        let mut env = env.clone();
        for volatile in [
            "SHELL",
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
        env
    }

    /// The oracle: the same mkShell, evaluated, built and captured by envy's engine (its own
    /// evaluator, store and builder) and by `nix print-dev-env --json`, gives the same
    /// environment — up to the store directory (each has its own) and what names the moment
    /// or place of capture.
    #[test]
    fn the_engine_captures_what_nix_print_dev_env_prints() {
        if !have_nix() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let tools = crate::toolchain::HostTools {
            system: envy_build::builder::host_system(),
            tools: vec![],
        };
        let pkgs =
            crate::engine::pkgs::materialize(&dir.path().join("envy-cache"), &tools).unwrap();
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
in {{
  shell = pkgs.mkShellNoCC {{
    packages = [ hooked (pkgs.writeShellScriptBin "greet" "echo hi") ];
    FOO = "bar";
    listy = [ "x" "y" ];
    shellHook = "echo entering";
  }};
}}
"#,
                pkgs = pkgs.display()
            ),
        )
        .unwrap();
        let oracle = nix(
            dir.path(),
            &[
                "nix",
                "print-dev-env",
                "--json",
                "-f",
                expr.to_str().unwrap(),
                "shell",
            ],
        );
        let oracle = EnvRecord::from_json(std::str::from_utf8(&oracle).unwrap()).unwrap();

        let envy_dir = dir.path().join("envy");
        let store = envy_store::LocalStore::open(&envy_store::StoreConfig::new(
            envy_dir.join("store"),
            envy_dir.join("state"),
        ))
        .unwrap();
        let config = envy_build::BuildConfig::new(&envy_dir.join("state"));
        let substituter = envy_store::cache::Substituter::new(&[], vec![]).unwrap();
        let engine = Engine::new(
            store,
            config,
            substituter,
            std::sync::Arc::new(envy_build::NoProgress),
        );
        let drv = engine
            .instantiate(super::super::EvalRequest::call_file(&expr, &[], &["shell"]))
            .unwrap();
        let raw = engine.capture_env(&drv.drv_path).unwrap();
        assert!(
            engine.built_count() >= 3,
            "hooked, greet and the stdenv were built"
        );

        let oracle = stable(&normalized(
            &oracle,
            &dir.path().join("store").to_string_lossy(),
        ));
        let captured = stable(&normalized(&raw, &envy_dir.join("store").to_string_lossy()));
        assert_eq!(captured.bash_functions, oracle.bash_functions);
        let names = |e: &EnvRecord| e.variables.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&captured), names(&oracle));
        for (name, value) in &oracle.variables {
            assert_eq!(
                captured.variables.get(name),
                Some(value),
                "variable `{name}`"
            );
        }
        // And the environment is the one the package set promises.
        assert_eq!(get(&captured, "FOO"), Some("bar"));
        assert_eq!(
            get(&captured, "HOOKED_MULTI"),
            Some("line one\nline\ttwo \\ end")
        );
        assert!(
            get(&captured, "HOOKED_DEPS")
                .unwrap()
                .contains("/STORE/hooked")
        );
        assert!(get(&captured, "PATH").unwrap().contains("/STORE/greet/bin"));
        assert_eq!(
            captured.variables["hookedList"],
            Variable::Array(vec!["a b".into(), "c".into()])
        );
        assert!(
            captured.bash_functions.contains_key("hookedGreet")
                && captured.bash_functions.contains_key("genericBuild")
        );

        // The environment's `-env` path refers to what the shell needs, so a gc root on it
        // keeps the packages alive.
        let anchor = engine.keep_env(&drv.drv_path, &raw).unwrap();
        let info = engine.store().path_info(&anchor).unwrap();
        let names: Vec<&str> = info.references.iter().map(|r| r.name()).collect();
        assert!(
            names.contains(&"hooked") && names.contains(&"greet"),
            "{names:?}"
        );
        assert!(anchor.name().ends_with("-env"), "{anchor:?}");

        // Remembered per derivation: the first call captures again (the same environment as
        // above but for its build directory, a new one outside a sandbox), later ones read
        // the environment its memo names while that path is valid.
        let (first, kept) = engine
            .capture_and_keep(&drv.drv_path, &envy_build::NoProgress)
            .unwrap();
        let differing = |a: &EnvRecord, b: &EnvRecord| -> BTreeSet<String> {
            let (a, b) = (stable(a), stable(b));
            a.variables
                .keys()
                .chain(b.variables.keys())
                .filter(|k| a.variables.get(*k) != b.variables.get(*k))
                .cloned()
                .collect()
        };
        assert!(
            stable(&first) == stable(&raw),
            "a capture like the first; variables that differ: {:?}",
            differing(&first, &raw)
        );
        assert_eq!(kept, engine.keep_env(&drv.drv_path, &first).unwrap());
        let mut marked = raw.clone();
        marked
            .variables
            .insert("MARK".into(), Variable::Exported("remembered".into()));
        let other = engine.keep_env(&drv.drv_path, &marked).unwrap();
        let memo = engine.store().state_dir().join("env-of").join(format!(
            "{}-{}",
            drv.drv_path.base_name(),
            engine.config.cores
        ));
        fs_err::write(&memo, other.base_name()).unwrap();
        let (again, kept) = engine
            .capture_and_keep(&drv.drv_path, &envy_build::NoProgress)
            .unwrap();
        assert_eq!((&again, &kept), (&marked, &other), "served from the memo");
        // A memo naming an invalid path is ignored: the capture runs again.
        let gone = format!("{}-gone-env", "0".repeat(32));
        fs_err::write(&memo, gone).unwrap();
        let (fresh, _) = engine
            .capture_and_keep(&drv.drv_path, &envy_build::NoProgress)
            .unwrap();
        assert!(stable(&fresh) == stable(&raw), "captured again");
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
