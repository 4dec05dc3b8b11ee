//! The `github` fetcher: a branch or tag is resolved to a commit through the commits API
//! (`/repos/O/R/commits/REF`, field `sha`), and the commit's tarball
//! (`/repos/O/R/tarball/REV`, as Nix 2.8 downloads it) is unpacked into the fetch cache —
//! once, since a commit never changes. Locked as `owner`, `repo`, `rev`, `narHash` and
//! `lastModified` (the archive's top directory mtime, the commit time); `ref` is dropped.
//! `gitlab` and `sourcehut` inputs parse and print but do not fetch yet.

use crate::tree::SourceTree;
use crate::{FetchError, Fetcher, Input};

/// The API base for `host`: the configured one for github.com, `https://HOST/api/v3` for
/// GitHub Enterprise hosts.
fn api_base(f: &Fetcher, host: Option<&str>) -> String {
    match host {
        None | Some("github.com") => f.settings().github_api.trim_end_matches('/').to_string(),
        Some(h) => format!("https://{h}/api/v3"),
    }
}

pub(crate) fn fetch(f: &Fetcher, input: &Input) -> Result<(SourceTree, Input), FetchError> {
    if input.input_type() != "github" {
        return Err(FetchError::UnsupportedInput {
            input: input.to_string(),
        });
    }
    let owner = crate::attrs::req_str(input.attrs(), "owner")?;
    let repo = crate::attrs::req_str(input.attrs(), "repo")?;
    let base = api_base(f, input.get_str("host"));
    let mut headers = vec![("Accept", "application/vnd.github.v3+json".to_string())];
    if let Some(t) = &f.settings().github_token {
        headers.push(("Authorization", format!("token {t}")));
    }
    let rev = match input.rev()? {
        Some(r) => r.to_string(),
        None => {
            let ref_ = input.ref_().unwrap_or("HEAD");
            let url = format!("{base}/repos/{owner}/{repo}/commits/{ref_}");
            let json = crate::download::get_json(&url, &headers)?;
            match json["sha"].as_str() {
                Some(s) if crate::input::is_rev(s) => s.to_ascii_lowercase(),
                _ => {
                    return Err(FetchError::Api {
                        url,
                        what: format!("commit of `{ref_}`"),
                        message: "the reply has no `sha`".to_string(),
                    });
                }
            }
        }
    };
    let url = format!("{base}/repos/{owner}/{repo}/tarball/{rev}");
    let expected = input.nar_hash()?;
    let d = crate::tarball::cached(f, &url, true, true, expected.as_ref(), &headers)?;
    let nar_hash = d.nar_hash.expect("archives are hashed");
    let tree = SourceTree::from_known_hash(
        &d.root,
        None,
        input.name(),
        f.store_dir(),
        nar_hash,
        d.nar_size,
    )?;
    let mut locked = input.clone().without("ref").with("rev", rev);
    if let Some(t) = d.last_modified {
        locked = locked.with("lastModified", t);
    }
    Ok((tree, locked))
}
