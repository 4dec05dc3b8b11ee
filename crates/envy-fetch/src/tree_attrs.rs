//! The attributes a fetched tree shows the Nix language (Nix 2.8's `emitTreeAttrs`): the
//! `sourceInfo` of a flake input and the result of `fetchTree`/`fetchGit`. `outPath` carries
//! the store path as string context, so that using it in a derivation makes the (lazy) copy
//! happen.

use crate::Input;

/// One attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeAttr {
    /// A store path (the string has it as context).
    StorePath(String),
    String(String),
    Int(u64),
    Bool(bool),
}

/// `outPath`, `narHash`, `submodules` (git), `rev`/`shortRev`/`revCount` when known (or zeros
/// with `empty_rev_fallback`, as `fetchGit` gives for a dirty tree), `lastModified` and
/// `lastModifiedDate`; sorted by name.
#[must_use]
pub fn tree_attrs(
    locked: &Input,
    store_path: &str,
    empty_rev_fallback: bool,
) -> Vec<(&'static str, TreeAttr)> {
    let mut out = vec![("outPath", TreeAttr::StorePath(store_path.to_string()))];
    if let Some(h) = locked.get_str("narHash") {
        out.push(("narHash", TreeAttr::String(h.to_string())));
    }
    if locked.input_type() == "git" {
        out.push((
            "submodules",
            TreeAttr::Bool(locked.get_bool("submodules").unwrap_or(false)),
        ));
    }
    match locked.get_str("rev") {
        Some(rev) => {
            out.push(("rev", TreeAttr::String(rev.to_string())));
            out.push(("shortRev", TreeAttr::String(rev.chars().take(7).collect())));
        }
        None if empty_rev_fallback => {
            out.push(("rev", TreeAttr::String("0".repeat(40))));
            out.push(("shortRev", TreeAttr::String("0".repeat(7))));
        }
        None => {}
    }
    match locked.get_int("revCount") {
        Some(n) => out.push(("revCount", TreeAttr::Int(n))),
        None if empty_rev_fallback => out.push(("revCount", TreeAttr::Int(0))),
        None => {}
    }
    if let Some(t) = locked.get_int("lastModified") {
        out.push(("lastModified", TreeAttr::Int(t)));
        out.push((
            "lastModifiedDate",
            TreeAttr::String(crate::time::last_modified_date(t)),
        ));
    }
    out.sort_by_key(|(k, _)| *k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_git_dirty_git_and_tarball() {
        let clean =
            Input::from_url("git+file:///r?ref=main&rev=1bd53c4180be719eed419cddee3dabb58fe1e65e")
                .unwrap()
                .with("revCount", 1u64)
                .with("lastModified", 1_704_067_200u64)
                .with("narHash", "sha256-x");
        let names: Vec<_> = tree_attrs(&clean, "/nix/store/a-source", false)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            names,
            [
                "lastModified",
                "lastModifiedDate",
                "narHash",
                "outPath",
                "rev",
                "revCount",
                "shortRev",
                "submodules"
            ]
        );
        let dirty = clean.clone().without("rev").without("revCount");
        let attrs = tree_attrs(&dirty, "/nix/store/a-source", true);
        assert!(attrs.contains(&("revCount", TreeAttr::Int(0))));
        assert!(attrs.contains(&("shortRev", TreeAttr::String("0000000".into()))));
        let tar = Input::from_url("file:///t.tar.gz")
            .unwrap()
            .with("narHash", "sha256-x");
        assert_eq!(tree_attrs(&tar, "/s", false).len(), 2);
    }
}
