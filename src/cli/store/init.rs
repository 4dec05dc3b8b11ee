//! `envy store init`: make a store directory (by default `/nix/store`, so that binary caches
//! built for Nix's store — cache.nixos.org — can serve envy) envy's default store from now on,
//! with cache.nixos.org and its key as substituter. Refuses a directory Nix owns (the guard
//! is `LocalStore::open`'s). Run with sudo when the directory's parent cannot be created: the
//! directories created are then given to the user who ran sudo, as Nix's single-user install
//! does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use envy_store::{LocalStore, StoreConfig};

use crate::util::fsutil::{FileLock, write_atomic};

/// The binary cache Nix uses by default, and its public key.
pub const NIXOS_CACHE: &str = "https://cache.nixos.org";
pub const NIXOS_CACHE_KEY: &str = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";

/// Make a store directory envy's default store (`/nix/store` unless `--store-dir`).
///
/// Store paths embed the store directory, so only a store at `/nix/store` can use
/// cache.nixos.org and the caches people publish for Nix. This creates the store (refusing
/// one Nix owns: with Nix installed, use `ENVY_STORE=daemon` instead), records it as
/// `store-dir`/`state-dir` in `$XDG_CONFIG_HOME/envy/config.toml`, and adds cache.nixos.org
/// and its public key to `substituters`/`trusted-public-keys` there.
///
/// When `/nix` does not exist and you cannot create it, run it with sudo: the directories
/// are made yours (the user sudo was run by), and the settings go to your config file.
///
/// Examples:
///   sudo envy store init                  # /nix/store, state in /nix/var/envy
///   envy store init --store-dir /opt/envy/store
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Init {
    /// The state directory (database, gc roots, locks); default `var/envy` next to the store
    /// directory (`/nix/var/envy` for `/nix/store`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Do not add cache.nixos.org as a substituter.
    #[arg(long)]
    no_substituter: bool,
}

impl Init {
    pub fn run(self, store_dir: Option<&Path>) -> Result<ExitCode> {
        let store_dir = std::path::absolute(store_dir.unwrap_or(Path::new("/nix/store")))?;
        let state_dir = match self.state_dir {
            Some(dir) => std::path::absolute(dir)?,
            None => store_dir
                .parent()
                .context("the store directory cannot be `/`")?
                .join("var/envy"),
        };
        let sudo_user = SudoUser::from_env();
        let created = [&store_dir, &state_dir]
            .iter()
            .filter_map(|d| first_missing_ancestor(d))
            .collect::<Vec<_>>();
        let config = StoreConfig::new(&store_dir, &state_dir);
        LocalStore::open(&config).with_context(|| {
            format!(
                "cannot make `{}` envy's store\nhint: {}",
                store_dir.display(),
                if store_dir.starts_with("/nix") && Path::new("/nix/var/nix/db").exists() {
                    "Nix is installed: let envy use Nix's store through its daemon with `ENVY_STORE=daemon`"
                        .to_owned()
                } else {
                    format!(
                        "run `sudo envy store init{}` if you may not create it, or pick another `--store-dir`",
                        if store_dir == Path::new("/nix/store") {
                            String::new()
                        } else {
                            format!(" --store-dir {}", store_dir.display())
                        }
                    )
                }
            )
        })?;
        if let Some(user) = &sudo_user {
            for dir in &created {
                user.chown_tree(dir)?;
            }
        }
        let config_file = match &sudo_user {
            Some(user) => user.home.join(".config/envy/config.toml"),
            None => envy_store::cache::CacheConfig::default_file()
                .context("cannot tell where envy's config file is\nhint: set HOME")?,
        };
        update_config(&config_file, &store_dir, &state_dir, !self.no_substituter)?;
        if let Some(user) = &sudo_user {
            user.chown_tree(config_file.parent().unwrap_or(&config_file))?;
        }
        println!(
            "envy's store is now `{}` (state in `{}`), set in `{}`",
            store_dir.display(),
            state_dir.display(),
            config_file.display()
        );
        if !self.no_substituter {
            println!("substituter: {NIXOS_CACHE} (key {NIXOS_CACHE_KEY})");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The highest ancestor of `dir` (or `dir` itself) that does not exist yet.
fn first_missing_ancestor(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .take_while(|a| !a.exists())
        .last()
        .map(Path::to_owned)
}

/// Set `store-dir`, `state-dir` and (with `substituter`) cache.nixos.org in the config file,
/// keeping everything else in it; atomically, under the file's lock.
fn update_config(file: &Path, store_dir: &Path, state_dir: &Path, substituter: bool) -> Result<()> {
    let _lock = FileLock::acquire(&file.with_extension("toml.lock"))?;
    let mut table: toml::Table = match fs_err::read_to_string(file) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("cannot parse `{}`", file.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml::Table::new(),
        Err(e) => return Err(e.into()),
    };
    let text = |p: &Path| -> Result<toml::Value> {
        Ok(toml::Value::String(
            p.to_str()
                .with_context(|| format!("`{}` is not valid UTF-8", p.display()))?
                .to_owned(),
        ))
    };
    table.insert("store-dir".into(), text(store_dir)?);
    table.insert("state-dir".into(), text(state_dir)?);
    if substituter {
        for (key, value) in [
            ("substituters", NIXOS_CACHE),
            ("trusted-public-keys", NIXOS_CACHE_KEY),
        ] {
            let mut items: Vec<String> = match table.get(key) {
                None => Vec::new(),
                Some(toml::Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Some(_) => bail!(
                    "`{key}` in `{}` must be a string or an array of strings",
                    file.display()
                ),
            };
            if !items.iter().any(|i| i == value) {
                items.push(value.to_owned());
            }
            table.insert(
                key.into(),
                toml::Value::Array(items.into_iter().map(toml::Value::String).collect()),
            );
        }
    }
    write_atomic(file, toml::to_string(&table)?.as_bytes())
        .with_context(|| format!("cannot write `{}`", file.display()))
}

/// The user who ran `sudo envy store init` (when run as root through sudo).
struct SudoUser {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

impl SudoUser {
    fn from_env() -> Option<SudoUser> {
        if !nix::unistd::Uid::effective().is_root() {
            return None;
        }
        let uid: u32 = std::env::var("SUDO_UID").ok()?.parse().ok()?;
        let gid: u32 = std::env::var("SUDO_GID").ok()?.parse().ok()?;
        if uid == 0 {
            return None;
        }
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
        Some(SudoUser {
            uid,
            gid,
            home: user.dir,
        })
    }

    /// Give `path` and everything under it to the user.
    fn chown_tree(&self, path: &Path) -> Result<()> {
        let (uid, gid) = (
            Some(nix::unistd::Uid::from_raw(self.uid)),
            Some(nix::unistd::Gid::from_raw(self.gid)),
        );
        let mut stack = vec![path.to_owned()];
        while let Some(p) = stack.pop() {
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &p,
                uid,
                gid,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(|| format!("cannot give `{}` to uid {}", p.display(), self.uid))?;
            if p.is_dir() && !p.is_symlink() {
                stack.extend(crate::util::fsutil::list_dir(&p));
            }
        }
        Ok(())
    }
}
