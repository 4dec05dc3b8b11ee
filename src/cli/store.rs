//! `envy store …`: envy's own store — add, dump and hash paths, show their metadata, verify
//! the store, copy paths to and from Nix binary caches, push to one, make signing keys, and
//! collect garbage.
//!
//! The store and its state live under `$XDG_DATA_HOME/envy/` unless `--store-dir` /
//! `ENVY_STORE_DIR` and `ENVY_STATE_DIR` say otherwise. One file per subcommand below.

mod add;
mod copy;
mod dump;
mod gc;
mod generate_key;
mod hash;
mod init;
mod path_info;
mod progress;
mod push;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use envy_store::{LocalStore, StorePath};

/// Work with envy's store: add, dump, hash, inspect, verify, copy to and from binary caches,
/// push to one, gc.
///
/// Store paths embed the store directory: machines that share a binary cache must use the
/// same `ENVY_STORE_DIR` (for example `/opt/envy/store`).
///
/// Examples:
///   envy store add ./src                 # prints the new store path
///   envy store dump PATH > path.nar      # the NAR, as `nix-store --dump`
///   envy store hash PATH                 # its NAR sha256 in nix32, as `nix-hash --base32`
///   envy store path-info --json PATH
///   envy store copy --to file:///srv/cache --secret-key key.sec PATH
///   envy store push --all-since 12h https://cache.example.org
///   envy store generate-key cache.example.org-1 cache.sec > cache.pub
///   envy store gc --dry-run
///   sudo envy store init                 # /nix/store as envy's store, with cache.nixos.org
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Store {
    /// The store directory (default: `ENVY_STORE_DIR`, else `store-dir` in envy's config file,
    /// else `$XDG_DATA_HOME/envy/store`; for `init`, `/nix/store`).
    #[arg(long, global = true, value_name = "DIR")]
    store_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(clap::Subcommand)]
enum StoreCommand {
    Add(add::Add),
    Dump(dump::Dump),
    Hash(hash::HashCmd),
    Init(init::Init),
    PathInfo(path_info::PathInfo),
    Verify(verify::Verify),
    Copy(copy::Copy),
    Push(push::Push),
    GenerateKey(generate_key::GenerateKey),
    Gc(gc::Gc),
}

impl Store {
    pub fn run(self) -> Result<ExitCode> {
        let opts = Opts {
            store_dir: self.store_dir,
        };
        match self.command {
            StoreCommand::Add(c) => c.run(&opts),
            StoreCommand::Dump(c) => c.run(),
            StoreCommand::Hash(c) => c.run(),
            StoreCommand::Init(c) => c.run(opts.store_dir.as_deref()),
            StoreCommand::PathInfo(c) => c.run(&opts),
            StoreCommand::Verify(c) => c.run(&opts),
            StoreCommand::Copy(c) => c.run(&opts),
            StoreCommand::Push(c) => c.run(&opts),
            StoreCommand::GenerateKey(c) => c.run(),
            StoreCommand::Gc(c) => c.run(&opts),
        }
    }
}

/// Options shared by the subcommands.
struct Opts {
    store_dir: Option<PathBuf>,
}

impl Opts {
    /// Open the store, creating it on first use.
    fn open(&self) -> Result<LocalStore> {
        crate::engine::context::open_store(self.store_dir.as_deref())
    }
}

/// A store path given on the command line: the full path, a path inside one, or a symlink
/// (like a `result` link) to one.
fn resolve_store_path(store: &LocalStore, arg: &Path) -> Result<StorePath> {
    let sd = store.store_dir();
    let text = arg.to_string_lossy();
    if let Ok((path, _)) = sd.parse_with_subpath(&text) {
        return Ok(path);
    }
    let real = fs_err::canonicalize(arg)
        .with_context(|| format!("`{}` is not a store path", arg.display()))?;
    let real = real.to_string_lossy();
    let (path, _) = sd
        .parse_with_subpath(&real)
        .with_context(|| format!("`{}` is not in envy's store `{sd}`", arg.display()))?;
    Ok(path)
}

/// Write to stdout; a closed pipe (`| head`) ends quietly.
fn stdout_ok(result: std::io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
