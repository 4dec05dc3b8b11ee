//! Opening envy's store and the builder's settings from the environment, the one way every
//! command does it (`envy build`, `envy log`, `envy store …`, `envy shell`, the embedded
//! backend): `ENVY_STORE_DIR` / `ENVY_STATE_DIR` (else under `$XDG_DATA_HOME/envy`), the
//! sandbox, hashed-mirror and core settings, and the binary caches of `config.toml`.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use envy_build::sandbox::HostPath;
use envy_build::{BuildConfig, SandboxMode};
use envy_store::cache::{CacheConfig, Substituter};
use envy_store::{LocalStore, StoreConfig};

use crate::env::vars;

/// Open envy's store (creating it on first use): `store_dir` if given (`--store-dir`), else
/// `ENVY_STORE_DIR`, else `$XDG_DATA_HOME/envy/store`; state in `ENVY_STATE_DIR` or
/// `$XDG_DATA_HOME/envy/state`.
pub fn open_store(store_dir: Option<&Path>) -> Result<LocalStore> {
    let location = StoreConfig::from_env(store_dir).context(
        "cannot tell where envy's store is: no data directory\n\
         hint: set HOME, or ENVY_STORE_DIR and ENVY_STATE_DIR",
    )?;
    LocalStore::open(&location).with_context(|| {
        format!(
            "cannot open envy's store at `{}`\nhint: envy needs a store directory of its own; set `{}` (and `{}`)",
            location.store_dir.display(),
            vars::ENVY_STORE_DIR,
            vars::ENVY_STATE_DIR
        )
    })
}

/// envy's store, opened from the environment, with the builder's settings.
pub struct BuildContext {
    pub store: LocalStore,
    pub config: BuildConfig,
}

impl BuildContext {
    pub fn from_env() -> Result<Self> {
        let store = open_store(None)?;
        let config = build_config(store.state_dir())?;
        Ok(Self { store, config })
    }
}

/// The binary cache settings (`$XDG_CONFIG_HOME/envy/config.toml`, then the environment).
fn cache_config() -> Result<CacheConfig> {
    let file = CacheConfig::default_file();
    CacheConfig::load(file.as_deref()).with_context(|| {
        format!(
            "cannot read envy's cache settings{}",
            file.map(|f| format!(" in `{}`", f.display()))
                .unwrap_or_default()
        )
    })
}

/// `--builders` and `-j` given to a command whose builds happen deep inside it (`envy
/// shell`, `envy reload`): they override the environment and `config.toml` for every build
/// of this process.
#[derive(Debug, Clone, Default)]
pub struct BuildOverrides {
    pub builders: Option<String>,
    pub jobs: Option<usize>,
}

static OVERRIDES: OnceLock<BuildOverrides> = OnceLock::new();

/// Set this process's [`BuildOverrides`] (once, before anything builds).
pub fn override_builds(overrides: BuildOverrides) {
    let _ = OVERRIDES.set(overrides);
}

/// [`override_builds`] from `--builders` and `-j`, the machines checked at once (a typo
/// fails before anything is built).
pub fn override_builds_from_flags(builders: Option<String>, jobs: Option<usize>) -> Result<()> {
    if let Some(b) = &builders {
        envy_build::remote::parse_machines(b, "--builders", &envy_build::builder::host_system())
            .context("invalid build machines")?;
    }
    override_builds(BuildOverrides { builders, jobs });
    Ok(())
}

/// The builder's settings: environment overrides on top of defaults.
pub fn build_config(state_dir: &Path) -> Result<BuildConfig> {
    let overrides = OVERRIDES.get().cloned().unwrap_or_default();
    let mut config = BuildConfig::new(state_dir);
    if let Some(jobs) = overrides.jobs {
        config.jobs = jobs;
    }
    if let Ok(mode) = std::env::var(vars::ENVY_SANDBOX) {
        config.sandbox = SandboxMode::parse(&mode).with_context(|| {
            format!(
                "invalid `{}` value `{mode}`\nhint: use `true`, `false` or `auto`",
                vars::ENVY_SANDBOX
            )
        })?;
    }
    if let Ok(paths) = std::env::var(vars::ENVY_SANDBOX_PATHS) {
        config.sandbox_paths = HostPath::parse_list(&paths);
    }
    config.hashed_mirrors = match std::env::var(vars::ENVY_HASHED_MIRRORS) {
        Ok(mirrors) => mirrors.split_whitespace().map(String::from).collect(),
        Err(_) => cache_config()?.hashed_mirrors,
    };
    let (builders, origin) = match (overrides.builders, std::env::var(vars::ENVY_BUILDERS)) {
        (Some(b), _) => (b, "--builders".to_string()),
        (None, Ok(b)) => (b, vars::ENVY_BUILDERS.to_string()),
        (None, Err(_)) => config_builders()?,
    };
    config.machines = envy_build::remote::parse_machines(&builders, &origin, &config.system)
        .context("invalid build machines")?;
    config.builders_use_substitutes = builders_use_substitutes()?;
    if let Ok(cores) = std::env::var(vars::ENVY_BUILD_CORES) {
        config.cores = cores
            .parse()
            .with_context(|| format!("invalid `{}` value `{cores}`", vars::ENVY_BUILD_CORES))?;
    }
    Ok(config)
}

/// `builders` of `config.toml` (a string in Nix's machine syntax), and the file's name.
fn config_builders() -> Result<(String, String)> {
    let Some((table, file)) = config_table()? else {
        return Ok((String::new(), String::new()));
    };
    let builders = match table.get("builders") {
        None => String::new(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Array(lines)) => lines
            .iter()
            .filter_map(toml::Value::as_str)
            .collect::<Vec<_>>()
            .join("\n"),
        Some(_) => anyhow::bail!(
            "`builders` in `{}` must be a string or a list of strings",
            file.display()
        ),
    };
    Ok((builders, format!("{} (`builders`)", file.display())))
}

/// `config.toml` parsed, and its path (`None` when there is none).
fn config_table() -> Result<Option<(toml::Table, std::path::PathBuf)>> {
    let Some(file) = CacheConfig::default_file() else {
        return Ok(None);
    };
    let text = match fs_err::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("cannot parse `{}`", file.display()))?;
    Ok(Some((table, file)))
}

/// `builders-use-substitutes`: `ENVY_BUILDERS_USE_SUBSTITUTES` (`1`/`true`, `0`/`false`),
/// else the setting in `config.toml`, else off (as in Nix).
fn builders_use_substitutes() -> Result<bool> {
    if let Ok(v) = std::env::var(vars::ENVY_BUILDERS_USE_SUBSTITUTES) {
        return match v.as_str() {
            "1" | "true" => Ok(true),
            "0" | "false" | "" => Ok(false),
            _ => anyhow::bail!(
                "invalid `{}` value `{v}`\nhint: use `1` or `0`",
                vars::ENVY_BUILDERS_USE_SUBSTITUTES
            ),
        };
    }
    let Some((table, file)) = config_table()? else {
        return Ok(false);
    };
    match table.get("builders-use-substitutes") {
        None => Ok(false),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        Some(_) => anyhow::bail!(
            "`builders-use-substitutes` in `{}` must be `true` or `false`",
            file.display()
        ),
    }
}

/// The configured binary caches (possibly none), remembering their `404`s for
/// `ENVY_NARINFO_NEGATIVE_TTL` seconds (default an hour, as Nix) under
/// `$XDG_CACHE_HOME/envy/narinfo-misses-v1`.
pub fn substituter() -> Result<Substituter> {
    let substituter = Substituter::from_config(&cache_config()?).context(
        "invalid binary cache settings\nhint: check `substituters` and `trusted-public-keys` (or `ENVY_SUBSTITUTERS` and `ENVY_TRUSTED_PUBLIC_KEYS`)",
    )?;
    let ttl = match std::env::var(vars::ENVY_NARINFO_NEGATIVE_TTL) {
        Ok(secs) => std::time::Duration::from_secs(secs.parse().with_context(|| {
            format!(
                "invalid `{}` value `{secs}`\nhint: a number of seconds (0: ask every time)",
                vars::ENVY_NARINFO_NEGATIVE_TTL
            )
        })?),
        Err(_) => envy_store::cache::NEGATIVE_TTL,
    };
    Ok(match dirs::cache_dir() {
        Some(dir) => substituter.remembering_misses(dir.join("envy/narinfo-misses-v1"), ttl),
        None => substituter,
    })
}
