//! `envy store generate-key`: a signing key pair for a binary cache, in Nix's format.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use envy_store::cache::SecretKey;

/// Make a key pair for signing what is pushed to a binary cache, as
/// `nix key generate-secret` / `nix-store --generate-binary-cache-key` do: the secret key
/// (`NAME:base64`) goes to FILE (created with mode 0600; never overwritten), the public key
/// is printed on stdout, for `trusted-public-keys`.
///
/// NAME is conventionally the cache's host name and a number (`cache.example.org-1`).
///
/// Examples:
///   envy store generate-key cache.example.org-1 ./cache.sec > cache.pub
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct GenerateKey {
    /// The key's name (it is part of every signature).
    name: String,
    /// Where to write the secret key.
    file: PathBuf,
}

impl GenerateKey {
    pub fn run(self) -> Result<ExitCode> {
        if self.name.is_empty()
            || self.name.contains(':')
            || self.name.contains(char::is_whitespace)
        {
            bail!(
                "invalid key name `{}`\nhint: use something like `cache.example.org-1`",
                self.name
            );
        }
        let mut seed = [0u8; 32];
        fs_err::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .context("cannot read random bytes")?;
        let key = SecretKey::from_seed(&self.name, &seed);
        let mut file = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.file)
            .with_context(|| {
                format!(
                    "cannot create `{}`\nhint: it must not exist yet (envy never overwrites a key)",
                    self.file.display()
                )
            })?;
        file.write_all(key.to_text().as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write `{}`", self.file.display()))?;
        println!("{}", key.public().to_text());
        Ok(ExitCode::SUCCESS)
    }
}
