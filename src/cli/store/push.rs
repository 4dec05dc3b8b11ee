//! `envy store push`: push paths (with their closures) to a binary cache by hand — the ones
//! named, every path built here since a time, and what automatic pushes left over.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use envy_store::StorePath;
use envy_store::cache::{CacheConfig, PendingPushes, PushEvent, PushReport};

use super::{Opts, resolve_store_path};
use crate::engine::push::{PushTarget, error_chain};

/// Push store paths with their closures to a Nix binary cache (`file:///dir`, `http://…`,
/// `https://…`), as `nix copy --to` does: what the cache has already is skipped, HTTP
/// caches are written with PUT.
///
/// Besides the PATHS named, it pushes every path built in this store since `--all-since`,
/// and always the paths an automatic push (`post-build-push`, `ENVY_PUSH_TO`) could not
/// upload to URL. Paths are signed with `--secret-key`, else `push-secret-key-file`
/// (`ENVY_PUSH_SECRET_KEY_FILE`), else the URL's `?secret-key=FILE`; without a key they go
/// unsigned (with a warning). Exits with 1 when a path cannot be pushed.
///
/// Examples:
///   envy store push ./result https://cache.example.org
///   envy store push --all-since 2026-12-08 https://cache.example.org
///   envy store push --all-since 12h --json file:///srv/cache
///   envy store push https://cache.example.org      # only what automatic pushes left
#[derive(clap::Args)]
#[command(
    verbatim_doc_comment,
    override_usage = "envy store push [OPTIONS] [PATHS]... URL"
)]
pub struct Push {
    /// Also push every path built in this store since TIME: a date (`2026-12-08`, UTC), a
    /// time (`2026-12-08T09:30:00Z`), seconds since the epoch (`@1765180000`), or an age
    /// (`90m`, `12h`, `7d`).
    #[arg(long, value_name = "TIME")]
    all_since: Option<String>,
    /// Sign with this secret key file (Nix's `name:base64` format).
    #[arg(long, value_name = "FILE")]
    secret_key: Option<PathBuf>,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// Store paths (or symlinks to them, like `result`), then the binary cache's URL (options
    /// after `?`: `compression=xz|zstd|none`, `secret-key=FILE`).
    #[arg(value_name = "PATHS|URL", required = true)]
    args: Vec<String>,
}

impl Push {
    pub fn run(mut self, opts: &Opts) -> Result<ExitCode> {
        let url = self.args.pop().expect("clap requires one argument");
        let paths: Vec<PathBuf> = self.args.iter().map(PathBuf::from).collect();
        let store = Arc::new(opts.open()?);
        let sd = store.store_dir().clone();
        let mut roots: Vec<StorePath> = Vec::new();
        for p in &paths {
            roots.push(resolve_store_path(&store, p)?);
        }
        if let Some(since) = &self.all_since {
            let since = parse_time(since, now())?;
            roots.extend(built_since(&store, since)?);
        }
        let pending = PendingPushes::new(store.state_dir(), &sd);
        let (base_url, _) = url.split_once('?').unwrap_or((&url, ""));
        let mut leftovers = BTreeSet::new();
        let mut gone = Vec::new();
        for p in pending
            .for_url(base_url)
            .context("cannot read the paths left to push")?
        {
            if store.is_valid(&p)? {
                leftovers.insert(p);
            } else {
                gone.push(p);
            }
        }
        if !gone.is_empty() {
            eprintln!(
                "envy: {} path{} left to push to `{base_url}` no longer in the store, forgotten",
                gone.len(),
                if gone.len() == 1 { " is" } else { "s are" }
            );
            pending.remove(base_url, &gone)?;
        }
        roots.extend(leftovers.iter().cloned());
        let mut seen = BTreeSet::new();
        roots.retain(|p| seen.insert(p.clone()));
        if roots.is_empty() && paths.is_empty() && self.all_since.is_none() {
            if self.json {
                println!(
                    "{}",
                    summary_json(&sd, base_url, &PushReport::default(), None, &[])
                );
            } else {
                eprintln!("envy: nothing left to push to `{base_url}`");
            }
            return Ok(ExitCode::SUCCESS);
        }

        let config = CacheConfig::load(CacheConfig::default_file().as_deref())?;
        let key_file = self.secret_key.clone().or(config.push_secret_key_file);
        let target = PushTarget::open(&url, key_file.as_deref())
            .with_context(|| format!("cannot push to `{base_url}`"))?;
        let signed = target.secret_key.is_some();
        let mut pusher = target.pusher(Arc::clone(&store));

        let bar = super::progress::bar(roots.len() as u64, "pushing");
        let progress = |e: PushEvent<'_>| match e {
            PushEvent::Uploading { path } => bar.set_message(path.to_string()),
            PushEvent::Retrying {
                path,
                attempt,
                delay,
                error,
            } => bar.println(format!(
                "envy: warning: pushing {} failed (try {attempt}), again in {:.1}s: {}",
                path.map_or_else(|| "to the cache".to_owned(), |p| format!("`{p}`")),
                delay.as_secs_f64(),
                error_chain(error)
            )),
            PushEvent::Present { .. } | PushEvent::Uploaded { .. } => {}
        };
        let mut report = PushReport::default();
        let mut failure = None;
        let mut not_pushed = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            if failure.is_some() {
                not_pushed.push(root.clone());
                continue;
            }
            match pusher.push(std::slice::from_ref(root), &mut report, &progress) {
                Ok(()) => {
                    if leftovers.contains(root) {
                        pending.remove(base_url, std::slice::from_ref(root))?;
                    }
                }
                Err(f) => {
                    not_pushed.push(root.clone());
                    failure = Some(f);
                }
            }
            bar.set_position(i as u64 + 1);
        }
        bar.finish_and_clear();

        if self.json {
            println!(
                "{}",
                summary_json(&sd, base_url, &report, failure.as_ref(), &not_pushed)
            );
        } else {
            let n = report.uploaded.len();
            eprintln!(
                "pushed {n} path{} to `{base_url}` ({} already there)",
                if n == 1 { "" } else { "s" },
                report.present
            );
        }
        if !signed && !report.uploaded.is_empty() {
            eprintln!(
                "envy: warning: the paths pushed are not signed: substituters refuse them unless they skip signature checks\nhint: make a key with `envy store generate-key NAME FILE` and pass `--secret-key FILE`"
            );
        }
        if let Some(f) = failure {
            let what = f
                .path
                .as_ref()
                .map_or_else(|| "anything".to_owned(), |p| format!("`{}`", sd.print(p)));
            bail!(
                "cannot push {what} to `{base_url}`: {}{}",
                error_chain(&f.error),
                if not_pushed.len() > 1 {
                    format!(" ({} paths not pushed)", not_pushed.len())
                } else {
                    String::new()
                }
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn summary_json(
    sd: &envy_store::StoreDir,
    url: &str,
    report: &PushReport,
    failure: Option<&envy_store::cache::PushFailure>,
    not_pushed: &[StorePath],
) -> serde_json::Value {
    serde_json::json!({
        "url": url,
        "pushed": report.uploaded.iter().map(|p| sd.print(p)).collect::<Vec<_>>(),
        "present": report.present,
        "failed": failure.map(|f| serde_json::json!({
            "path": f.path.as_ref().map(|p| sd.print(p)),
            "error": error_chain(&f.error),
        })),
        "notPushed": not_pushed.iter().map(|p| sd.print(p)).collect::<Vec<_>>(),
    })
}

/// The outputs built in this store (by envy's builder, here or on a build machine) and
/// registered at or after `since` (seconds since the epoch): paths with a deriver that were
/// built locally (`ultimate`) or whose derivation has a build log (remote builds).
fn built_since(store: &envy_store::LocalStore, since: i64) -> Result<Vec<StorePath>> {
    let logs = envy_build::log::LogDir::new(store.state_dir().join("log"));
    let mut out = Vec::new();
    for path in store.all_valid_paths()? {
        let Some(info) = store.query_path_info(&path)? else {
            continue;
        };
        if info.registration_time < since {
            continue;
        }
        let Some(deriver) = &info.deriver else {
            continue;
        };
        if info.ultimate || logs.exists(deriver.base_name()) {
            out.push(path);
        }
    }
    Ok(out)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `--all-since`: `@SECONDS`, `SECONDS`, an age (`30s`, `90m`, `12h`, `7d`, `2w`) before
/// `now`, or a UTC date/time (`YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS][Z]`, a space for `T`).
fn parse_time(text: &str, now: i64) -> Result<i64> {
    let t = text.trim();
    let bad = || {
        anyhow::anyhow!(
            "invalid time `{text}`\nhint: use a date (`2026-12-08`), a UTC time (`2026-12-08T09:30:00Z`), `@SECONDS` or an age (`90m`, `12h`, `7d`)"
        )
    };
    if let Some(secs) = t.strip_prefix('@') {
        return secs.parse().map_err(|_| bad());
    }
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(secs);
    }
    if let Some(unit) = t.chars().last().filter(char::is_ascii_alphabetic)
        && let Ok(n) = t[..t.len() - 1].parse::<i64>()
    {
        let scale = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        return Ok(now - n * scale);
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = t
        .split_once(['T', ' '])
        .map_or((t, None), |(d, h)| (d, Some(h)));
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d[..] else {
        return Err(bad());
    };
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, day) * 86_400;
    if let Some(time) = time {
        let h: Vec<&str> = time.split(':').collect();
        let (hh, mm, ss) = match h[..] {
            [hh, mm] => (num(hh)?, num(mm)?, 0),
            [hh, mm, ss] => (num(hh)?, num(mm)?, num(ss)?),
            _ => return Err(bad()),
        };
        if hh > 23 || mm > 59 || ss > 60 {
            return Err(bad());
        }
        secs += hh * 3600 + mm * 60 + ss;
    }
    Ok(secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let now = 1_765_180_000;
        assert_eq!(parse_time("@1700000000", now).unwrap(), 1_700_000_000);
        assert_eq!(parse_time("1700000000", now).unwrap(), 1_700_000_000);
        assert_eq!(parse_time("90m", now).unwrap(), now - 5400);
        assert_eq!(parse_time("7d", now).unwrap(), now - 7 * 86_400);
        assert_eq!(parse_time("1970-01-01", now).unwrap(), 0);
        // `date -u -d 2026-12-08T09:30:00Z +%s`
        assert_eq!(
            parse_time("2026-12-08T09:30:00Z", now).unwrap(),
            1_796_722_200
        );
        assert_eq!(parse_time("2026-12-08 09:30", now).unwrap(), 1_796_722_200);
        assert_eq!(parse_time("2000-03-01", now).unwrap(), 951_868_800);
        for bad in ["yesterday", "2026-13-01", "10x", "2026-12-08T25:00", ""] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
