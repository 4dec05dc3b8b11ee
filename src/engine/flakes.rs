//! Flakes in the binary: where envy's fetch cache and registry live, the built-in registry
//! entry for the package set (`envy`, materialised on first use), and evaluators wired to a
//! [`FlakeSession`] (fetching builtins, lazily mounted sources). Used by `envy flake` and the
//! embedded backend.

use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context, Result};
use envy_eval::{EvalSettings, EvalStore, Evaluator, Realiser};
use envy_fetch::{FetchSettings, Fetcher};
use envy_flake::registry::{LazyEntry, Registry, user_registry_path};
use envy_flake::{FlakeRef, FlakeSession, Registries};
use envy_store::{StoreConfig, StoreDir};

use crate::env::vars as env_vars;
use crate::toolchain::HostTools;

/// The flake id of envy's package set in the registry.
pub const PACKAGE_SET_ID: &str = "envy";

/// envy's store location (`ENVY_STORE_DIR`/`ENVY_STATE_DIR` or the XDG data directory).
pub fn store_config() -> Result<StoreConfig> {
    StoreConfig::from_env(None).context(
        "cannot find envy's store: neither `ENVY_STORE_DIR` nor `HOME` is set\nhint: set `ENVY_STORE_DIR`",
    )
}

/// The store directory store paths are computed for.
pub fn store_dir() -> Result<StoreDir> {
    let config = store_config()?;
    StoreDir::new(&config.store_dir)
        .with_context(|| format!("bad store directory `{}`", config.store_dir.display()))
}

/// envy's cache directory.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(crate::util::dirs::Dirs::from_env()?
        .cache_root()
        .to_path_buf())
}

/// Fetch settings: the fetch cache under envy's cache, GitHub from the environment.
pub fn fetch_settings(store_dir: StoreDir) -> Result<FetchSettings> {
    let mut s = FetchSettings::new(store_dir, cache_dir()?.join("fetch-v1"));
    if let Ok(api) = std::env::var(env_vars::ENVY_GITHUB_API)
        && !api.is_empty()
    {
        s.github_api = api;
    }
    s.github_token = std::env::var(env_vars::ENVY_GITHUB_TOKEN)
        .ok()
        .filter(|t| !t.is_empty());
    Ok(s)
}

/// envy's user registry file: `$XDG_CONFIG_HOME/envy/registry.json`.
pub fn registry_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| user_registry_path(&d))
}

/// The user registry, then the built-in `envy` entry (the package set).
pub fn registries() -> Result<Registries> {
    let mut layers = Vec::new();
    if let Some(path) = registry_path() {
        let r = Registry::read(&path)?;
        layers.push(("user".to_string(), r));
    }
    let package_set = LazyEntry {
        id: PACKAGE_SET_ID.to_string(),
        target: Rc::new(|| {
            let dir = package_set_dir().map_err(|e| format!("{e:#}"))?;
            FlakeRef::parse(&format!("path:{}", dir.display()), None).map_err(|e| e.to_string())
        }),
    };
    Ok(Registries {
        layers,
        lazy: vec![package_set],
    })
}

/// The package set, materialised for this host's tools.
pub fn package_set_dir() -> Result<PathBuf> {
    let cache = cache_dir()?;
    let path = std::env::var_os(env_vars::PATH);
    let tools = HostTools::discover(path.as_deref(), Some(&cache)).map_err(|e| match e.hint() {
        Some(hint) => anyhow::anyhow!("{e}\nhint: {hint}"),
        None => anyhow::Error::new(e),
    })?;
    crate::engine::pkgs::materialize(&cache, &tools).with_context(|| {
        format!(
            "cannot write envy's package set under `{}`",
            cache.display()
        )
    })
}

/// A flake session on envy's fetch cache and registries.
pub fn session(store_dir: StoreDir) -> Result<FlakeSession> {
    session_with_store(store_dir, None)
}

/// [`session`] that also finds locked inputs already in the store the evaluation writes to
/// (`store`: where a valid store path's files are, and its NAR size).
pub fn session_with_store(
    store_dir: StoreDir,
    store: Option<envy_fetch::StoreLookup>,
) -> Result<FlakeSession> {
    let mut settings = fetch_settings(store_dir)?;
    settings.store = store;
    Ok(FlakeSession::new(Fetcher::new(settings), registries()?))
}

/// An evaluator for flakes (pure, as Nix evaluates flakes) wired to `session`; `realiser`
/// builds what import from derivation needs (none: such an evaluation fails).
pub fn evaluator(
    session: &FlakeSession,
    store: Box<dyn EvalStore>,
    realiser: Option<Box<dyn Realiser>>,
    system: &str,
) -> Evaluator {
    let settings = EvalSettings {
        pure: true,
        current_system: system.to_string(),
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        ..EvalSettings::default()
    };
    let builder = Evaluator::builder()
        .settings(settings)
        .io(session.io(Box::new(envy_eval::RealIO)))
        .store(store)
        .fetch(session.fetch());
    match realiser {
        Some(r) => builder.realiser(r).build(),
        None => builder.build(),
    }
}

/// Lock the local flake whose files `snapshot` holds, reading `flake.nix` and `flake.lock`
/// from the snapshot (never from the disk again), and write `flake.lock` when it changed.
/// Returns the bytes written (`None`: the lock was up to date, or cannot be written), and
/// Nix's notices. Nothing is built; inputs are fetched as locking needs.
pub fn lock_snapshot(
    snapshot: &crate::trust::Snapshot,
    flags: &envy_flake::LockFlags,
) -> Result<(Option<Vec<u8>>, Vec<String>)> {
    let store_dir = store_dir()?;
    let (snapshot, flags) = (snapshot.clone(), flags.clone());
    let system = crate::backend::current_system();
    envy_eval::run_with_stack(move || {
        let session = session(store_dir.clone())?;
        for (path, bytes) in snapshot.pins() {
            session.mounts().pin(&path, bytes);
        }
        let mut ev = evaluator(
            &session,
            Box::new(envy_eval::DummyStore::new(store_dir)),
            None,
            &system,
        );
        let top = envy_flake::FlakeRef::parse(&snapshot.root.display().to_string(), None)?;
        let locked = session
            .lock(&mut ev, &top, &flags)
            .with_context(|| format!("cannot lock flake `{top}`"))?;
        let wrote = locked
            .wrote_lock_file
            .then(|| locked.lock.to_text().into_bytes());
        Ok((wrote, locked.notices))
    })
}

/// The attribute paths a flake installable `FLAKE#attr` is looked up at, in Nix's order:
/// `packages.<system>.attr`, `legacyPackages.<system>.attr`, `attr`; for an empty attr
/// `packages.<system>.default`, then `defaultPackage.<system>`.
pub fn installable_attr_paths(attr: &str, system: &str) -> Vec<String> {
    if attr.is_empty() {
        return vec![
            format!("packages.{system}.default"),
            format!("defaultPackage.{system}"),
        ];
    }
    vec![
        format!("packages.{system}.{attr}"),
        format!("legacyPackages.{system}.{attr}"),
        attr.to_string(),
    ]
}
