//! `envy store path-info`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use envy_store::{StorePath, ValidPathInfo};
use serde_json::{Value, json};

use super::{Opts, resolve_store_path};
use crate::util::humanize::size as human_size;

/// Show what the store records about paths: references, deriver, NAR hash and size,
/// registration time, signatures, content address.
///
/// Plain output is one path per line (with `--size`, its NAR size); `--json` prints the
/// array `nix path-info --json` prints.
#[derive(clap::Args)]
pub struct PathInfo {
    /// Store paths, paths inside them, or symlinks to them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Include the closures (everything the paths refer to, transitively).
    #[arg(long, short = 'r')]
    recursive: bool,
    /// Show NAR sizes.
    #[arg(long, short = 's')]
    size: bool,
}

impl PathInfo {
    pub fn run(self, opts: &Opts) -> Result<ExitCode> {
        let store = opts.open()?;
        let sd = store.store_dir().clone();
        let mut paths = BTreeSet::new();
        for arg in &self.paths {
            let path = resolve_store_path(&store, arg)?;
            if !store.is_valid(&path)? {
                bail!(
                    "path `{}` is not valid\nhint: `envy store add` or a build makes paths valid",
                    sd.print(&path)
                );
            }
            paths.insert(path);
        }
        if self.recursive {
            paths = store.closure(&paths)?;
        }
        let infos: Vec<ValidPathInfo> = paths
            .iter()
            .map(|p| store.path_info(p))
            .collect::<Result<_, _>>()?;
        if self.json {
            let items: Vec<Value> = infos.iter().map(|i| to_json(&sd, i)).collect();
            super::stdout_ok(write_line(&serde_json::to_string(&items)?))?;
        } else {
            for info in &infos {
                let line = if self.size {
                    format!("{}\t{}", sd.print(&info.path), human_size(info.nar_size))
                } else {
                    sd.print(&info.path)
                };
                super::stdout_ok(write_line(&line))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn write_line(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout(), "{line}")
}

/// The object `nix path-info --json` prints for one path, keys in Nix's order.
fn to_json(sd: &envy_store::StoreDir, info: &ValidPathInfo) -> Value {
    let full = |p: &StorePath| sd.print(p);
    let mut v = json!({
        "path": full(&info.path),
        "narHash": info.nar_hash.to_sri(),
        "narSize": info.nar_size,
        "references": info.references.iter().map(full).collect::<Vec<_>>(),
    });
    let obj = v.as_object_mut().expect("object");
    if let Some(ca) = &info.ca {
        obj.insert("ca".into(), json!(ca.to_string()));
    }
    if let Some(d) = &info.deriver {
        obj.insert("deriver".into(), json!(full(d)));
    }
    obj.insert("registrationTime".into(), json!(info.registration_time));
    if info.ultimate {
        obj.insert("ultimate".into(), json!(true));
    }
    if !info.signatures.is_empty() {
        obj.insert("signatures".into(), json!(info.signatures));
    }
    v
}
