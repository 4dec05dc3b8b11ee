//! The engine over Nix's store, through Nix's daemon: [`DaemonEvalStore`] is envy-eval's
//! [`EvalStore`] writing texts, sources and `.drv`s into Nix's store with the worker
//! protocol (as a non-trusted user can), and [`DaemonRealiser`] has the daemon build (or
//! substitute, from Nix's caches) what import from derivation reads. Both share one
//! connection, whose temporary roots keep what the evaluation added alive until it ends.
//!
//! Which store the engine uses is [`StoreChoice`] (`ENVY_STORE`: `envy`, `daemon`, `auto`).

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result, bail};
use envy_eval::{EvalStore, Realiser, StoreError};
use envy_fetch::tree::SourceTree;
use envy_store::daemon::{DaemonAddress, DaemonClient, DaemonError, DerivedPath, Missing, NixEnv};
use envy_store::derivation::DrvHashes;
use envy_store::nar::{NarError, NarSink};
use envy_store::{
    Derivation, DerivationError, DerivationOutput, FileIngestionMethod, Hash, HashAlgo, StoreDir,
    StorePath,
};

use super::eval_store::{LazySources, NoLazySources, err, same_path};
use crate::env::vars;

/// Which store envy evaluates into and builds in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// envy's own store (`ENVY_STORE_DIR`, default under `$XDG_DATA_HOME/envy`).
    Envy,
    /// Nix's store, through its daemon.
    Daemon(DaemonAddress),
}

impl StoreChoice {
    /// From `ENVY_STORE`: `envy` (the default), `daemon` (Nix's daemon, found as Nix finds
    /// it; an error when there is none) or `auto` (the daemon when Nix would use one).
    pub fn from_env() -> Result<StoreChoice> {
        let setting = std::env::var(vars::ENVY_STORE).unwrap_or_default();
        let find = || {
            DaemonAddress::find(&NixEnv::from_process())
                .context("cannot tell where Nix's daemon is")
        };
        match setting.as_str() {
            "" | "envy" => Ok(StoreChoice::Envy),
            "auto" => Ok(find()?.map_or(StoreChoice::Envy, StoreChoice::Daemon)),
            "daemon" => match find()? {
                Some(address) => Ok(StoreChoice::Daemon(address)),
                None => bail!(
                    "`{}=daemon`, but Nix uses no daemon here\n\
                     hint: set `NIX_REMOTE=daemon` (and `NIX_DAEMON_SOCKET_PATH` if the socket is not \
                     under /nix/var/nix), or unset `{}` to use envy's own store",
                    vars::ENVY_STORE,
                    vars::ENVY_STORE
                ),
            },
            other => bail!(
                "invalid `{}` value `{other}`\nhint: use `envy`, `daemon` or `auto`",
                vars::ENVY_STORE
            ),
        }
    }

    /// How `envy status` names it.
    pub fn describe(&self) -> String {
        match self {
            StoreChoice::Envy => "envy's own store".to_owned(),
            StoreChoice::Daemon(a) => format!(
                "Nix's store `{}` through the daemon at `{}` ({})",
                a.store_dir.as_str(),
                a.socket.display(),
                a.origin
            ),
        }
    }
}

/// One connection to the daemon, shared by the evaluator's store and realiser and the build
/// that follows.
#[derive(Clone)]
pub struct DaemonStore {
    client: Arc<Mutex<DaemonClient>>,
    store_dir: StoreDir,
    /// The first operation the daemon refused while the evaluator was adding to its store,
    /// with Nix's message: what to say before falling back to the Nix CLI.
    refused: Arc<Mutex<Option<String>>>,
}

/// A dev shell's environment captured through the daemon.
pub struct CapturedEnv {
    pub env: crate::env::record::EnvRecord,
    /// The `<name>-env` output in Nix's store: a gc root on it keeps the environment (the
    /// shell's sources and its inputs' outputs, which it refers to) alive.
    pub anchor: StorePath,
}

impl DaemonStore {
    /// Connect to the daemon at `address`.
    pub fn connect(address: &DaemonAddress) -> Result<DaemonStore> {
        let client = DaemonClient::connect(address).with_context(|| {
            format!(
                "cannot use Nix's store through its daemon ({})\n\
                 hint: is `nix-daemon` running? unset `{}` to use envy's own store",
                address.origin,
                vars::ENVY_STORE
            )
        })?;
        Ok(DaemonStore {
            store_dir: address.store_dir.clone(),
            client: Arc::new(Mutex::new(client)),
            refused: Arc::default(),
        })
    }

    /// What the daemon refused while the evaluator wrote into its store, if anything.
    pub fn refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The evaluator's error for a failed write, remembering a refusal by the daemon.
    fn write_err(&self, e: DaemonError) -> StoreError {
        if e.daemon_message().is_some() {
            self.refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| e.to_string());
        }
        err(e)
    }

    /// Put a fetched or mounted tree into Nix's store (nothing is read when it is there
    /// already), as a temporary root of this connection.
    pub fn add_tree(&self, tree: &SourceTree) -> Result<StorePath, StoreError> {
        let expected = tree.store_path();
        let mut client = self.client();
        client
            .add_temp_root(expected)
            .map_err(|e| self.write_err(e))?;
        if client
            .is_valid_path(expected)
            .map_err(|e| self.write_err(e))?
        {
            return Ok(expected.clone());
        }
        let method = tree.method();
        let info = client
            .add_to_store(
                expected.name(),
                method,
                HashAlgo::Sha256,
                &BTreeSet::new(),
                |out| {
                    let failed = |e: &dyn std::fmt::Display| DaemonError::Nar {
                        path: tree.root().to_owned(),
                        source: NarError::Write(std::io::Error::other(e.to_string())),
                    };
                    match method {
                        FileIngestionMethod::Recursive => {
                            let mut out = out;
                            tree.dump_nar(&mut out).map_err(|e| failed(&e))
                        }
                        FileIngestionMethod::Flat => {
                            let data = fs_err::read(tree.root()).map_err(|e| failed(&e))?;
                            out.write_all(&data).map_err(|e| DaemonError::Nar {
                                path: tree.root().to_owned(),
                                source: NarError::Write(e),
                            })
                        }
                    }
                },
            )
            .map_err(|e| self.write_err(e))?;
        same_path(
            &self.store_dir,
            "Nix's daemon",
            "source",
            expected,
            &info.path,
        )?;
        Ok(info.path)
    }

    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// The connection (poisoning is harmless: the client has no invariants a panic breaks
    /// that the next operation would not report).
    pub fn client(&self) -> MutexGuard<'_, DaemonClient> {
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A dev shell's environment, captured as `nix print-dev-env` captures it through a
    /// daemon: a `<name>-env` derivation — the shell's derivation with envy's capture script
    /// as its builder's argument and its outputs recomputed — is written into Nix's store and
    /// built there (its inputs built or substituted by the daemon), and its output read back.
    /// `plan` sees what the daemon will build and substitute before it starts.
    pub fn capture_env(
        &self,
        drv_path: &StorePath,
        plan: &mut dyn FnMut(&Missing),
    ) -> Result<CapturedEnv> {
        let (bytes, anchor) = self.capture(drv_path, super::capture::SCRIPT, plan)?;
        let env = super::capture::parse(&bytes).with_context(|| {
            format!(
                "cannot read the environment of `{}`",
                self.store_dir.print(drv_path)
            )
        })?;
        Ok(CapturedEnv { env, anchor })
    }

    fn capture(
        &self,
        drv_path: &StorePath,
        script: &str,
        plan: &mut dyn FnMut(&Missing),
    ) -> Result<(Vec<u8>, StorePath)> {
        let dir = self.store_dir.clone();
        let read = |p: &StorePath| -> Result<Derivation, DerivationError> {
            let text = fs_err::read(dir.full_path(p)).map_err(|e| DerivationError::Load {
                drv: dir.print(p),
                source: Box::new(e),
            })?;
            Derivation::parse(
                &dir,
                &text,
                p.name().strip_suffix(".drv").unwrap_or_default(),
            )
        };
        let mut drv = read(drv_path)?;
        let script_path = self.client().add_text_to_store(
            "envy-capture.sh",
            script.as_bytes(),
            &BTreeSet::new(),
        )?;
        drv.name = format!("{}-env", drv.name);
        drv.args = vec![dir.print(&script_path).into_bytes()];
        drv.input_srcs.insert(script_path);
        let names: Vec<String> = drv.outputs.keys().cloned().collect();
        for name in &names {
            drv.outputs.insert(name.clone(), DerivationOutput::Deferred);
            drv.env.insert(name.clone().into_bytes(), Vec::new());
        }
        let mut hashes = DrvHashes::new();
        let mut load = |p: &StorePath| read(p);
        let env_drv = drv
            .finalize(&dir, &mut hashes, &mut load)
            .with_context(|| {
                format!(
                    "cannot make the environment derivation of `{}`",
                    dir.print(drv_path)
                )
            })?;
        let mut client = self.client();
        let added = client.add_text_to_store(
            &format!("{}.drv", drv.name),
            &drv.to_aterm(&dir),
            &drv.references(),
        )?;
        same_path(&dir, "Nix's daemon", "derivation", &env_drv, &added)?;
        let wanted = [DerivedPath::Built {
            drv: added,
            outputs: names.clone(),
        }];
        plan(&client.query_missing(&wanted)?);
        client.build_paths(&wanted)?;
        drop(client);
        let order: Vec<String> = match drv.env_var("outputs") {
            Some(list) => String::from_utf8_lossy(list)
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            None => names,
        };
        let paths = drv.output_paths(&dir)?;
        let first = order
            .iter()
            .find_map(|o| paths.get(o).cloned().flatten())
            .context("the environment derivation has no output")?;
        let bytes = fs_err::read(dir.full_path(&first))?;
        Ok((bytes, first))
    }

    /// The evaluator's store.
    pub fn eval_store(&self) -> DaemonEvalStore {
        self.eval_store_with(NoLazySources)
    }

    /// The evaluator's store, copying `lazy`'s trees into Nix's store when something written
    /// there refers to them.
    pub fn eval_store_with<L: LazySources>(&self, lazy: L) -> DaemonEvalStore<L> {
        DaemonEvalStore {
            store: self.clone(),
            lazy,
        }
    }

    /// The evaluator's realiser.
    pub fn realiser(&self) -> DaemonRealiser {
        DaemonRealiser {
            store: self.clone(),
        }
    }
}

/// envy-eval's store over Nix's daemon.
pub struct DaemonEvalStore<L = NoLazySources> {
    store: DaemonStore,
    lazy: L,
}

impl<L: LazySources> DaemonEvalStore<L> {
    /// Copy every lazy tree among `refs` into Nix's store (the daemon refuses a reference to
    /// a path it does not have).
    fn copy_lazy<'a>(
        &self,
        refs: impl IntoIterator<Item = &'a StorePath>,
    ) -> Result<(), StoreError> {
        for r in refs {
            if let Some(tree) = self.lazy.tree(r) {
                self.store.add_tree(&tree)?;
            }
        }
        Ok(())
    }
}

impl<L: LazySources> EvalStore for DaemonEvalStore<L> {
    fn store_dir(&self) -> &StoreDir {
        &self.store.store_dir
    }

    fn add_text(
        &mut self,
        name: &str,
        text: &[u8],
        refs: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        self.copy_lazy(refs)?;
        self.store
            .client()
            .add_text_to_store(name, text, refs)
            .map_err(|e| self.store.write_err(e))
    }

    fn add_source(
        &mut self,
        name: &str,
        method: FileIngestionMethod,
        hash: &Hash,
        nar: &[u8],
    ) -> Result<StorePath, StoreError> {
        let expected = self
            .store
            .store_dir
            .make_fixed_output_path(name, method, hash, [], false)
            .map_err(err)?;
        let mut client = self.store.client();
        // Sources are added on every evaluation: skip the upload when Nix has it (the daemon
        // adds a temporary root for what it is asked about only on adding, so add one).
        client.add_temp_root(&expected).map_err(err)?;
        if client.is_valid_path(&expected).map_err(err)? {
            return Ok(expected);
        }
        let data = match method {
            FileIngestionMethod::Recursive => nar.to_vec(),
            FileIngestionMethod::Flat => flat_contents(nar)
                .map_err(|e| StoreError(format!("cannot read the source `{name}`: {e}")))?,
        };
        let info = client
            .add_to_store(name, method, hash.algo(), &BTreeSet::new(), |out| {
                out.write_all(&data)
                    .map_err(|e| envy_store::daemon::DaemonError::Nar {
                        path: name.into(),
                        source: NarError::Write(e),
                    })
            })
            .map_err(|e| self.store.write_err(e))?;
        same_path(
            &self.store.store_dir,
            "Nix's daemon",
            "source",
            &expected,
            &info.path,
        )?;
        Ok(info.path)
    }

    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError> {
        let dir = &self.store.store_dir;
        let text = drv.to_aterm(dir);
        let refs = drv.references();
        self.copy_lazy(&refs)?;
        let written = self
            .store
            .client()
            .add_text_to_store(&format!("{}.drv", drv.name), &text, &refs)
            .map_err(|e| self.store.write_err(e))?;
        same_path(dir, "Nix's daemon", "derivation", drv_path, &written)
    }

    fn add_fetched(&mut self, tree: &SourceTree) -> Result<(), StoreError> {
        self.store.add_tree(tree).map(drop)
    }

    fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation, StoreError> {
        // Nix's store is readable by every user; the daemon has no "read a file" operation
        // a non-trusted user may use that is cheaper than reading it.
        let dir = &self.store.store_dir;
        let file = dir.full_path(drv_path);
        let text = fs_err::read(&file).map_err(err)?;
        let name = drv_path
            .name()
            .strip_suffix(".drv")
            .unwrap_or(drv_path.name());
        Derivation::parse(dir, &text, name).map_err(err)
    }

    fn is_valid_path(&self, path: &StorePath) -> bool {
        if self.lazy.is_lazy(path) {
            return true;
        }
        let mut client = self.store.client();
        client.add_temp_root(path).is_ok() && client.is_valid_path(path).unwrap_or(false)
    }
}

/// The contents of a NAR holding one regular file (a flat source).
fn flat_contents(nar: &[u8]) -> Result<Vec<u8>, NarError> {
    struct Flat(Option<Vec<u8>>);
    impl NarSink for Flat {
        fn directory(&mut self, path: &[u8]) -> Result<(), NarError> {
            Err(NarError::UnsupportedType {
                path: String::from_utf8_lossy(path).into_owned().into(),
            })
        }
        fn regular_file(
            &mut self,
            _: &[u8],
            _: bool,
            size: u64,
            contents: &mut dyn Read,
        ) -> Result<(), NarError> {
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            contents.read_to_end(&mut data).map_err(NarError::Input)?;
            self.0 = Some(data);
            Ok(())
        }
        fn symlink(&mut self, path: &[u8], _: &[u8]) -> Result<(), NarError> {
            self.directory(path)
        }
    }
    let mut flat = Flat(None);
    envy_store::nar::parse(nar, &mut flat)?;
    flat.0.ok_or(NarError::Truncated)
}

/// Import from derivation through the daemon: it builds, or substitutes from Nix's caches.
pub struct DaemonRealiser {
    store: DaemonStore,
}

impl Realiser for DaemonRealiser {
    fn realise(&mut self, drv_path: &StorePath, outputs: &[String]) -> Result<(), StoreError> {
        let outputs = if outputs.is_empty() {
            let dir = &self.store.store_dir;
            let text = fs_err::read(dir.full_path(drv_path)).map_err(err)?;
            let name = drv_path.name().strip_suffix(".drv").unwrap_or_default();
            Derivation::parse(dir, &text, name)
                .map_err(err)?
                .outputs
                .into_keys()
                .collect()
        } else {
            outputs.to_vec()
        };
        self.store
            .client()
            .build_paths(&[DerivedPath::Built {
                drv: drv_path.clone(),
                outputs,
            }])
            .map_err(err)
    }
}

/// The output paths of `drv_path` (read from Nix's store), to print and to root.
pub fn output_paths(store: &DaemonStore, drv_path: &StorePath) -> Result<Vec<(String, StorePath)>> {
    let dir = store.store_dir();
    let file = dir.full_path(drv_path);
    let text = fs_err::read(&file)?;
    let name = drv_path.name().strip_suffix(".drv").unwrap_or_default();
    let drv = Derivation::parse(dir, &text, name)
        .with_context(|| format!("cannot parse `{}`", file.display()))?;
    let mut out = Vec::new();
    for (output, path) in drv.output_paths(dir)? {
        let path = path.with_context(|| {
            format!(
                "output `{output}` of `{}` has no path before it is built (content-addressed derivations are not supported through the daemon yet)",
                dir.print(drv_path)
            )
        })?;
        out.push((output, path));
    }
    Ok(out)
}

/// Shows the daemon's log on stderr as Nix does: its messages, and build log lines prefixed
/// with the derivation's name.
#[derive(Default)]
pub struct StderrLog {
    builds: std::collections::HashMap<u64, String>,
}

impl envy_store::daemon::LogSink for StderrLog {
    fn event(&mut self, event: envy_store::daemon::LogEvent) {
        use envy_store::daemon::LogEvent;
        use envy_store::daemon::log::{ActivityKind, ResultKind};
        match event {
            LogEvent::Message { text } => eprintln!("{text}"),
            LogEvent::Start {
                id,
                kind: ActivityKind::Build,
                fields,
                text,
                ..
            } => {
                eprintln!("{text}");
                let name = fields
                    .first()
                    .and_then(|f| f.as_str())
                    .and_then(|p| p.rsplit('/').next())
                    .and_then(|b| b.split_once('-'))
                    .map(|(_, n)| n.trim_end_matches(".drv").to_owned())
                    .unwrap_or_default();
                self.builds.insert(id, name);
            }
            LogEvent::Start { text, .. } if !text.is_empty() => eprintln!("{text}"),
            LogEvent::Result {
                id,
                kind: ResultKind::BuildLogLine,
                fields,
            } => {
                if let Some(line) = fields.first().and_then(|f| f.as_str()) {
                    let name = self.builds.get(&id).map_or("", String::as_str);
                    eprintln!("{name}> {line}");
                }
            }
            LogEvent::Stop { id } => {
                self.builds.remove(&id);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::record::Variable;
    use std::process::{Command, Stdio};

    /// A private `nix-daemon` on its own socket and store under `dir`, killed on drop.
    struct Daemon(std::process::Child);

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn start_daemon(dir: &std::path::Path) -> Option<Daemon> {
        if which::which("nix-daemon").is_err() {
            assert!(
                std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_none(),
                "`nix-daemon` is not installed (scripts/test installs nix-bin); this test requires it"
            );
            eprintln!("skipping: `nix-daemon` is not installed");
            return None;
        }
        // The state directory must exist: without it Nix's `auto` store would take the
        // daemon's own socket for its store, and every connection would connect again.
        for d in ["conf", "store", "state", "log"] {
            fs_err::create_dir_all(dir.join(d)).unwrap();
        }
        fs_err::write(
            dir.join("conf/nix.conf"),
            "build-users-group =\nsandbox = false\nsubstituters =\n",
        )
        .unwrap();
        let child = Command::new("nix-daemon")
            .env("NIX_CONF_DIR", dir.join("conf"))
            .env("NIX_STORE_DIR", dir.join("store"))
            .env("NIX_STATE_DIR", dir.join("state"))
            .env("NIX_LOG_DIR", dir.join("log"))
            .env("HOME", dir)
            .env("NIX_DAEMON_SOCKET_PATH", dir.join("sock"))
            .env_remove("NIX_REMOTE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                fs_err::File::create(dir.join("daemon.log"))
                    .unwrap()
                    .into_parts()
                    .0,
            )
            .spawn()
            .unwrap();
        let daemon = Daemon(child);
        // Not a timing assertion: a minute without the socket means the daemon failed.
        for _ in 0..600 {
            if dir.join("sock").exists() {
                return Some(daemon);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("nix-daemon did not start");
    }

    #[test]
    fn evaluates_into_nixs_store_and_captures_a_shell_through_the_daemon() {
        let tmp = tempfile::Builder::new()
            .prefix("envy-ds")
            .tempdir_in("/tmp")
            .unwrap();
        let dir = tmp.path();
        let Some(_daemon) = start_daemon(dir) else {
            return;
        };
        let address = DaemonAddress {
            socket: dir.join("sock"),
            store_dir: StoreDir::new(dir.join("store")).unwrap(),
            origin: "test".into(),
        };
        let store = DaemonStore::connect(&address).unwrap();
        let (eval_store, realiser) = (store.eval_store(), store.realiser());
        let expr = r#"
          let stdenv = derivation {
            name = "stdenv"; system = builtins.currentSystem; builder = "/bin/bash";
            PATH = "/usr/bin:/bin";
            args = [ "-c" "mkdir $out; echo 'greet() { echo hi; }; export FROM_SETUP=1' > $out/setup" ];
          };
          in derivation {
            name = "shell"; system = builtins.currentSystem; builder = "/bin/bash";
            inherit stdenv; FOO = "bar"; PATH = "/usr/bin:/bin"; outputs = [ "out" ];
            args = [ "-c" "exit 1" ];
          }"#;
        let drv_path = envy_eval::run_with_stack(move || {
            let mut ev = envy_eval::Evaluator::builder()
                .store(Box::new(eval_store))
                .realiser(Box::new(realiser))
                .build();
            let v = ev.eval_string(&format!("({expr}).drvPath"), "/").unwrap();
            let v = ev.force_deep(&v, envy_eval::Pos::NONE).unwrap();
            String::from_utf8(envy_eval::print::print_value(&v)).unwrap()
        });
        let drv_path = store.store_dir().parse(drv_path.trim_matches('"')).unwrap();
        assert!(store.client().is_valid_path(&drv_path).unwrap());

        let mut planned = None;
        let captured = store
            .capture_env(&drv_path, &mut |m| planned = Some(m.will_build.len()))
            .unwrap();
        // The stdenv and the `-env` twin, nothing else.
        assert_eq!(planned, Some(2));
        let env = captured.env;
        assert_eq!(env.variables["FOO"], Variable::Exported("bar".into()));
        assert_eq!(env.variables["FROM_SETUP"], Variable::Exported("1".into()));
        assert!(
            env.bash_functions["greet"].contains("echo hi"),
            "{:?}",
            env.bash_functions
        );
        // The shell's own builder (`exit 1`) never ran: only its `-env` twin was built.
        let shell_out = store
            .client()
            .query_valid_paths(
                &Derivation::parse(
                    store.store_dir(),
                    &fs_err::read(store.store_dir().full_path(&drv_path)).unwrap(),
                    "shell",
                )
                .unwrap()
                .output_paths(store.store_dir())
                .unwrap()
                .into_values()
                .flatten()
                .collect(),
                false,
            )
            .unwrap();
        assert!(shell_out.is_empty());
    }
}
