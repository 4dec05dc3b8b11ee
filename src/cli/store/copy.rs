//! `envy store copy`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use envy_store::StorePath;
use envy_store::cache::{
    BinaryCache, CacheConfig, CacheEvent, Compression, SecretKey, Substituter, UploadOptions,
    copy_to_cache,
};

use super::{Opts, resolve_store_path};

/// Copy store paths with their closures to or from a Nix binary cache
/// (`file:///dir`, `http://…`, `https://…`).
///
/// `--to` writes NARs (xz by default) and `.narinfo` files, signed with `--secret-key` (a key in
/// Nix's format, from `nix key generate-secret`). `--from` accepts only paths signed by a key in
/// `trusted-public-keys` (`ENVY_TRUSTED_PUBLIC_KEYS` or envy's config file).
///
/// Examples:
///   envy store copy --to file:///srv/cache --secret-key ./cache.sec /path/to/store/xxx-hello
///   envy store copy --from https://cache.example.org /path/to/store/xxx-hello
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Copy {
    /// The cache to write to.
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "from",
        required_unless_present = "from"
    )]
    to: Option<String>,
    /// The cache to read from.
    #[arg(long, value_name = "URL")]
    from: Option<String>,
    /// Sign what is written with this secret key file (Nix's `name:base64` format).
    #[arg(long, value_name = "FILE", requires = "to")]
    secret_key: Option<PathBuf>,
    /// Compression of the NARs written.
    #[arg(long, value_name = "METHOD", default_value = "xz", value_parser = ["xz", "zstd", "none"], requires = "to")]
    compression: String,
    /// Accept paths without a trusted signature (reading only).
    #[arg(long, requires = "from")]
    no_check_sigs: bool,
    /// The store paths (or, with `--to`, symlinks to them).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

impl Copy {
    pub fn run(self, opts: &Opts) -> Result<ExitCode> {
        let store = opts.open()?;
        let sd = store.store_dir().clone();
        let bar = super::progress::bar(0, "copying");
        // Downloads run in parallel: what each is fetching, and the bytes done so far (the
        // compressed sizes the caches announce) for the rate.
        let sizes = std::cell::RefCell::new(std::collections::HashMap::new());
        let bytes = std::cell::Cell::new(0u64);
        let started = std::time::Instant::now();
        let progress = |e: CacheEvent<'_>| match e {
            CacheEvent::Downloading { path, size, .. } => {
                sizes.borrow_mut().insert(path.clone(), size.unwrap_or(0));
                bar.set_message(path.to_string());
            }
            CacheEvent::Uploading { path, .. } => bar.set_message(path.to_string()),
            CacheEvent::Done { path, done, total } => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                if let Some(size) = sizes.borrow_mut().remove(path) {
                    bytes.set(bytes.get() + size);
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    bar.set_message(format!(
                        "{} at {}/s",
                        crate::util::humanize::size(bytes.get()),
                        crate::util::humanize::size((bytes.get() as f64 / secs) as u64)
                    ));
                }
            }
            CacheEvent::Untrusted { path, url } => bar.println(format!(
                "envy: warning: `{path}` in `{url}` has no trusted signature"
            )),
            CacheEvent::Present { .. } => bar.inc(1),
            CacheEvent::Unavailable { .. } => {}
        };
        if let Some(url) = &self.to {
            let paths: Vec<StorePath> = self
                .paths
                .iter()
                .map(|p| resolve_store_path(&store, p))
                .collect::<Result<_>>()?;
            let cache = BinaryCache::open(url)?;
            let secret_key = match self
                .secret_key
                .as_deref()
                .map(PathBuf::from)
                .or_else(|| cache.param("secret-key").map(PathBuf::from))
            {
                Some(file) => {
                    let text = fs_err::read_to_string(&file)?;
                    Some(
                        SecretKey::parse(&text)
                            .with_context(|| format!("bad secret key in `{}`", file.display()))?,
                    )
                }
                None => None,
            };
            let compression = cache.param("compression").unwrap_or(&self.compression);
            let compression: Compression = compression
                .parse()
                .map_err(|c| anyhow::anyhow!("unknown compression `{c}`"))?;
            let report = copy_to_cache(
                &store,
                &cache,
                &paths,
                &UploadOptions {
                    compression,
                    secret_key,
                },
                &progress,
            )
            .with_context(|| format!("cannot copy to `{url}`"))?;
            bar.finish_and_clear();
            eprintln!(
                "copied {} path{} to `{url}` ({} already there)",
                report.uploaded.len(),
                if report.uploaded.len() == 1 { "" } else { "s" },
                report.present
            );
        } else if let Some(url) = &self.from {
            let mut paths = Vec::new();
            for arg in &self.paths {
                let text = arg.to_string_lossy();
                let (path, _) = sd
                    .parse_with_subpath(&text)
                    .with_context(|| format!("`{text}` is not a path in envy's store `{sd}`"))?;
                paths.push(path);
            }
            let config = CacheConfig::load(CacheConfig::default_file().as_deref())?;
            let mut subst = Substituter::new(std::slice::from_ref(url), config.trusted_keys()?)?;
            if self.no_check_sigs {
                subst = subst.without_signature_checks();
            }
            let outcome = match subst.substitute_closure(&store, &paths, true, &progress) {
                Ok(Some(outcome)) => outcome,
                Ok(None) => bail!("cannot copy from `{url}`"),
                Err(e @ envy_store::cache::CacheError::Untrusted { .. }) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "cannot copy from `{url}`\nhint: trust the cache's public key in ENVY_TRUSTED_PUBLIC_KEYS or `trusted-public-keys` in envy's config file"
                    )));
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("cannot copy from `{url}`")));
                }
            };
            bar.finish_and_clear();
            eprintln!(
                "copied {} path{} from `{url}` ({} already valid)",
                outcome.fetched.len(),
                if outcome.fetched.len() == 1 { "" } else { "s" },
                outcome.present
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
