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
use envy_store::daemon::{DaemonAddress, DaemonClient, DerivedPath, NixEnv};
use envy_store::nar::{NarError, NarSink};
use envy_store::{Derivation, FileIngestionMethod, Hash, StoreDir, StorePath};

use crate::env_vars as vars;

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
        })
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

    /// The evaluator's store.
    pub fn eval_store(&self) -> DaemonEvalStore {
        DaemonEvalStore {
            store: self.clone(),
        }
    }

    /// The evaluator's realiser.
    pub fn realiser(&self) -> DaemonRealiser {
        DaemonRealiser {
            store: self.clone(),
        }
    }
}

/// The daemon's error with its causes, in one message (the evaluator shows only that).
fn err(e: impl std::error::Error) -> StoreError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreError(text)
}

/// envy-eval's store over Nix's daemon.
pub struct DaemonEvalStore {
    store: DaemonStore,
}

impl EvalStore for DaemonEvalStore {
    fn store_dir(&self) -> &StoreDir {
        &self.store.store_dir
    }

    fn add_text(
        &mut self,
        name: &str,
        text: &[u8],
        refs: &BTreeSet<StorePath>,
    ) -> Result<StorePath, StoreError> {
        self.store
            .client()
            .add_text_to_store(name, text, refs)
            .map_err(err)
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
            .map_err(err)?;
        if info.path != expected {
            let dir = &self.store.store_dir;
            return Err(StoreError(format!(
                "Nix's daemon added source '{}' at '{}' (envy and Nix disagree on its path)",
                dir.print(&expected),
                dir.print(&info.path)
            )));
        }
        Ok(info.path)
    }

    fn add_derivation(&mut self, drv_path: &StorePath, drv: &Derivation) -> Result<(), StoreError> {
        let dir = &self.store.store_dir;
        let text = drv.to_aterm(dir);
        let written = self
            .store
            .client()
            .add_text_to_store(&format!("{}.drv", drv.name), &text, &drv.references())
            .map_err(err)?;
        if &written != drv_path {
            return Err(StoreError(format!(
                "Nix's daemon wrote derivation '{}' at '{}' (the evaluator and the store disagree on its contents)",
                dir.print(drv_path),
                dir.print(&written)
            )));
        }
        Ok(())
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
