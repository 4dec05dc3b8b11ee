//! An input: what a fetcher fetches, as Nix's `fetchers::Input` — a set of attributes whose
//! `type` picks the scheme (`path`, `git`, `tarball`, `file`, `github`, `gitlab`,
//! `sourcehut`, `indirect`). This file turns URLs into attributes and back exactly as Nix 2.8
//! does, checks the attributes each scheme allows, and answers what is known of an input
//! (locked or not, its rev, ref and narHash). Fetching itself lives in [`crate::Fetcher`].

use std::fmt;

use envy_store::{Hash, HashAlgo};

use crate::FetchError;
use crate::attrs::{Attr, Attrs, attrs_to_query, get_bool, get_int, get_str, req_str};
use crate::url::ParsedUrl;

/// Archive extensions that make an `http(s)://`/`file://` URL a tarball (else a `file`).
pub const TARBALL_EXTENSIONS: &[&str] = &[
    ".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst",
];

/// The store path name every fetched tree gets unless its input says `name`.
pub const DEFAULT_NAME: &str = "source";

/// A fetcher input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Input {
    attrs: Attrs,
}

impl Input {
    /// Parse a URL-form input (`git+https://…?ref=x`, `path:/a`, `github:o/r/ref`,
    /// `flake:id/ref`, `https://…/x.tar.gz`).
    pub fn from_url(url: &str) -> Result<Input, FetchError> {
        Input::from_parsed_url(&ParsedUrl::parse(url)?)
    }

    /// Like [`Input::from_url`] on a parsed URL.
    pub fn from_parsed_url(url: &ParsedUrl) -> Result<Input, FetchError> {
        let bad = |reason: String| FetchError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let (app, transport) = url.split_scheme();
        let mut attrs = Attrs::new();
        match url.scheme.as_str() {
            "flake" => {
                attrs.insert("type".into(), "indirect".into());
                let parts: Vec<&str> = url.path.split('/').filter(|p| !p.is_empty()).collect();
                let (id, ref_, rev) = match parts.as_slice() {
                    [id] => (*id, None, None),
                    [id, x] if is_rev(x) => (*id, None, Some(*x)),
                    [id, x] if is_ref(x) => (*id, Some(*x), None),
                    [_, x] => {
                        return Err(bad(format!(
                            "`{x}` is not a commit hash or branch/tag name"
                        )));
                    }
                    [id, r, v] => {
                        if !is_ref(r) {
                            return Err(bad(format!("`{r}` is not a branch/tag name")));
                        }
                        if !is_rev(v) {
                            return Err(bad(format!("`{v}` is not a commit hash")));
                        }
                        (*id, Some(*r), Some(*v))
                    }
                    _ => return Err(bad("it is not a valid flake URL".into())),
                };
                if !is_flake_id(id) {
                    return Err(bad(format!("`{id}` is not a valid flake ID")));
                }
                attrs.insert("id".into(), id.into());
                if let Some(r) = ref_ {
                    attrs.insert("ref".into(), r.into());
                }
                if let Some(v) = rev {
                    attrs.insert("rev".into(), v.to_ascii_lowercase().into());
                }
            }
            "path" => {
                if url.authority.as_deref().is_some_and(|a| !a.is_empty()) {
                    return Err(bad("a path URL should not have an authority".into()));
                }
                attrs.insert("type".into(), "path".into());
                attrs.insert("path".into(), crate::url::percent_decode(&url.path).into());
                for (name, value) in &url.query {
                    match name.as_str() {
                        "rev" | "narHash" => {
                            attrs.insert(name.clone(), value.as_str().into());
                        }
                        "revCount" | "lastModified" => {
                            let n = value
                                .parse::<u64>()
                                .map_err(|_| bad(format!("parameter `{name}` is invalid")))?;
                            attrs.insert(name.clone(), n.into());
                        }
                        _ => return Err(bad(format!("parameter `{name}` is unsupported"))),
                    }
                }
            }
            "git" | "git+http" | "git+https" | "git+ssh" | "git+file" => {
                let mut plain = url.clone();
                plain.scheme = transport.to_string();
                plain.query.clear();
                plain.fragment.clear();
                attrs.insert("type".into(), "git".into());
                for (name, value) in &url.query {
                    match name.as_str() {
                        "rev" | "ref" => {
                            attrs.insert(name.clone(), value.as_str().into());
                        }
                        "shallow" | "submodules" | "allRefs" => {
                            attrs.insert(name.clone(), (value == "1").into());
                        }
                        _ => {
                            plain.query.insert(name.clone(), value.clone());
                        }
                    }
                }
                attrs.insert("url".into(), plain.to_string().into());
            }
            "github" | "gitlab" | "sourcehut" => {
                let parts: Vec<&str> = url.path.split('/').filter(|p| !p.is_empty()).collect();
                let (owner, repo, mut ref_, mut rev) = match parts.as_slice() {
                    [o, r] => (*o, *r, None, None),
                    [o, r, x] if is_rev(x) => (*o, *r, None, Some(x.to_string())),
                    [o, r, x] if is_ref(x) => (*o, *r, Some(x.to_string()), None),
                    [_, _, x] => {
                        return Err(bad(format!(
                            "`{x}` is not a commit hash or branch/tag name"
                        )));
                    }
                    _ => return Err(bad("it is invalid".into())),
                };
                let mut host = None;
                for (name, value) in &url.query {
                    match name.as_str() {
                        "rev" => {
                            if rev.is_some() {
                                return Err(bad("it contains multiple commit hashes".into()));
                            }
                            if !is_rev(value) {
                                return Err(bad(format!("`{value}` is not a commit hash")));
                            }
                            rev = Some(value.clone());
                        }
                        "ref" => {
                            if !is_ref(value) {
                                return Err(bad("it contains an invalid branch/tag name".into()));
                            }
                            if ref_.is_some() {
                                return Err(bad("it contains multiple branch/tag names".into()));
                            }
                            ref_ = Some(value.clone());
                        }
                        "host" => {
                            if !is_host(value) {
                                return Err(bad("it contains an invalid instance host".into()));
                            }
                            host = Some(value.clone());
                        }
                        _ => {}
                    }
                }
                if ref_.is_some() && rev.is_some() {
                    return Err(bad(
                        "it contains both a commit hash and a branch/tag name".into()
                    ));
                }
                attrs.insert("type".into(), url.scheme.as_str().into());
                attrs.insert("owner".into(), owner.into());
                attrs.insert("repo".into(), repo.into());
                if let Some(r) = rev {
                    attrs.insert("rev".into(), r.to_ascii_lowercase().into());
                }
                if let Some(r) = ref_ {
                    attrs.insert("ref".into(), r.into());
                }
                if let Some(h) = host {
                    attrs.insert("host".into(), h.into());
                }
            }
            _ if matches!(transport, "file" | "http" | "https")
                && matches!(app, None | Some("tarball") | Some("file")) =>
            {
                let is_tarball = match app {
                    Some(a) => a == "tarball",
                    None => has_tarball_extension(&url.path),
                };
                let mut plain = url.clone();
                plain.scheme = transport.to_string();
                plain.query.remove("narHash");
                attrs.insert(
                    "type".into(),
                    if is_tarball { "tarball" } else { "file" }.into(),
                );
                attrs.insert("url".into(), plain.to_string().into());
                if let Some(h) = url.query.get("narHash") {
                    attrs.insert("narHash".into(), h.as_str().into());
                }
            }
            _ => {
                return Err(FetchError::UnsupportedInput {
                    input: url.to_string(),
                });
            }
        }
        Input::from_attrs(attrs)
    }

    /// An input from its attributes, checked against what its type allows. Unknown types are
    /// kept as they are (fetching them fails).
    pub fn from_attrs(attrs: Attrs) -> Result<Input, FetchError> {
        let ty = req_str(&attrs, "type")?.to_string();
        let allowed: &[&str] = match ty.as_str() {
            "indirect" => &["id", "ref", "rev", "narHash"],
            "path" => &["path", "rev", "revCount", "lastModified", "narHash"],
            "git" => &[
                "url",
                "ref",
                "rev",
                "shallow",
                "submodules",
                "lastModified",
                "revCount",
                "narHash",
                "allRefs",
                "name",
                "dirtyRev",
                "dirtyShortRev",
            ],
            "tarball" | "file" => &[
                "url",
                "narHash",
                "name",
                "unpack",
                "rev",
                "revCount",
                "lastModified",
            ],
            "github" | "gitlab" | "sourcehut" => &[
                "owner",
                "repo",
                "ref",
                "rev",
                "narHash",
                "lastModified",
                "host",
            ],
            _ => return Ok(Input { attrs }),
        };
        for name in attrs.keys() {
            if name != "type" && !allowed.contains(&name.as_str()) {
                return Err(FetchError::UnsupportedAttr {
                    ty: ty.clone(),
                    name: name.clone(),
                });
            }
        }
        let input = Input { attrs };
        match ty.as_str() {
            "indirect" => {
                let id = req_str(&input.attrs, "id")?;
                if !is_flake_id(id) {
                    return Err(FetchError::BadInput {
                        input: input.to_string(),
                        reason: format!("`{id}` is not a valid flake ID"),
                    });
                }
            }
            "path" => {
                req_str(&input.attrs, "path")?;
            }
            "git" => {
                ParsedUrl::parse(req_str(&input.attrs, "url")?)?;
                if let Some(r) = get_str(&input.attrs, "ref")?
                    && !is_git_ref(r)
                {
                    return Err(FetchError::BadInput {
                        input: input.to_string(),
                        reason: format!("invalid Git branch/tag name `{r}`"),
                    });
                }
                get_bool(&input.attrs, "shallow")?;
                get_bool(&input.attrs, "submodules")?;
                get_bool(&input.attrs, "allRefs")?;
            }
            "tarball" | "file" => {
                ParsedUrl::parse(req_str(&input.attrs, "url")?)?;
            }
            _ => {
                req_str(&input.attrs, "owner")?;
                req_str(&input.attrs, "repo")?;
                if input.attrs.contains_key("ref") && input.attrs.contains_key("rev") {
                    return Err(FetchError::BadInput {
                        input: input.to_string(),
                        reason: "it has both a branch/tag name and a commit hash".into(),
                    });
                }
            }
        }
        input.nar_hash()?;
        input.rev()?;
        get_int(&input.attrs, "lastModified")?;
        get_int(&input.attrs, "revCount")?;
        Ok(input)
    }

    /// The attributes.
    #[must_use]
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    /// The attributes, owned.
    #[must_use]
    pub fn into_attrs(self) -> Attrs {
        self.attrs
    }

    /// `type`.
    #[must_use]
    pub fn input_type(&self) -> &str {
        match self.attrs.get("type") {
            Some(Attr::String(s)) => s,
            _ => "",
        }
    }

    /// A string attribute (`None` if absent or not a string).
    #[must_use]
    pub fn get_str(&self, name: &str) -> Option<&str> {
        get_str(&self.attrs, name).ok().flatten()
    }

    /// An integer attribute.
    #[must_use]
    pub fn get_int(&self, name: &str) -> Option<u64> {
        get_int(&self.attrs, name).ok().flatten()
    }

    /// A Boolean attribute.
    #[must_use]
    pub fn get_bool(&self, name: &str) -> Option<bool> {
        get_bool(&self.attrs, name).ok().flatten()
    }

    /// The input with `name` set to `value`.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<Attr>) -> Input {
        self.attrs.insert(name.to_string(), value.into());
        self
    }

    /// The input without `name`.
    #[must_use]
    pub fn without(mut self, name: &str) -> Input {
        self.attrs.remove(name);
        self
    }

    /// Whether this is a direct input (not an `indirect` registry reference).
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.input_type() != "indirect"
    }

    /// Whether the input pins its contents (a `rev` or a `narHash`), as Nix 2.8 decides.
    #[must_use]
    pub fn is_locked(&self) -> bool {
        self.is_direct() && (self.attrs.contains_key("rev") || self.attrs.contains_key("narHash"))
    }

    /// Whether the input is one of the supported schemes (fetchable).
    #[must_use]
    pub fn is_supported(&self) -> bool {
        matches!(
            self.input_type(),
            "path" | "git" | "tarball" | "file" | "github" | "gitlab" | "sourcehut" | "indirect"
        )
    }

    /// `narHash`, parsed.
    pub fn nar_hash(&self) -> Result<Option<Hash>, FetchError> {
        match get_str(&self.attrs, "narHash")? {
            None => Ok(None),
            Some(s) => Hash::parse_any(s, Some(HashAlgo::Sha256))
                .map(Some)
                .map_err(|e| FetchError::BadInput {
                    input: self.to_string(),
                    reason: format!("invalid `narHash` `{s}`: {e}"),
                }),
        }
    }

    /// `rev` (40 lowercase hex digits).
    pub fn rev(&self) -> Result<Option<&str>, FetchError> {
        match get_str(&self.attrs, "rev")? {
            None => Ok(None),
            Some(r) if is_rev(r) => Ok(Some(r)),
            Some(r) => Err(FetchError::BadInput {
                input: self.to_string(),
                reason: format!("`{r}` is not a commit hash"),
            }),
        }
    }

    /// `ref`.
    #[must_use]
    pub fn ref_(&self) -> Option<&str> {
        self.get_str("ref")
    }

    /// `lastModified`.
    #[must_use]
    pub fn last_modified(&self) -> Option<u64> {
        self.get_int("lastModified")
    }

    /// `revCount`.
    #[must_use]
    pub fn rev_count(&self) -> Option<u64> {
        self.get_int("revCount")
    }

    /// The store path name (`name`, else `source`).
    #[must_use]
    pub fn name(&self) -> &str {
        self.get_str("name").unwrap_or(DEFAULT_NAME)
    }

    /// Set a branch/tag name and/or a commit hash, as a registry entry or a flake reference
    /// `…/ref/rev` does.
    pub fn apply_overrides(
        &self,
        ref_: Option<&str>,
        rev: Option<&str>,
    ) -> Result<Input, FetchError> {
        let mut res = self.clone();
        match self.input_type() {
            "git" | "indirect" => {
                if let Some(r) = rev {
                    res.attrs.insert("rev".into(), r.into());
                }
                if let Some(r) = ref_ {
                    res.attrs.insert("ref".into(), r.into());
                }
            }
            "github" | "gitlab" | "sourcehut" => {
                if rev.is_some() && ref_.is_some() {
                    return Err(FetchError::BadInput {
                        input: self.to_string(),
                        reason: "cannot apply both a commit hash and a branch/tag name".into(),
                    });
                }
                if let Some(r) = rev {
                    res.attrs.insert("rev".into(), r.into());
                    res.attrs.remove("ref");
                }
                if let Some(r) = ref_ {
                    res.attrs.insert("ref".into(), r.into());
                    res.attrs.remove("rev");
                }
            }
            _ => {
                if let Some(r) = ref_ {
                    return Err(FetchError::BadInput {
                        input: self.to_string(),
                        reason: format!("don't know how to set its branch/tag name to `{r}`"),
                    });
                }
                if let Some(r) = rev {
                    return Err(FetchError::BadInput {
                        input: self.to_string(),
                        reason: format!("don't know how to set its revision to `{r}`"),
                    });
                }
            }
        }
        Ok(res)
    }

    /// The URL form, as Nix 2.8 prints it.
    #[must_use]
    pub fn to_url(&self) -> ParsedUrl {
        let parse = |key: &str| {
            self.get_str(key)
                .and_then(|u| ParsedUrl::parse(u).ok())
                .unwrap_or_else(|| ParsedUrl {
                    scheme: self.input_type().to_string(),
                    authority: None,
                    path: String::new(),
                    query: Default::default(),
                    fragment: String::new(),
                })
        };
        let plain = |scheme: &str, path: String| ParsedUrl {
            scheme: scheme.to_string(),
            authority: None,
            path,
            query: Default::default(),
            fragment: String::new(),
        };
        match self.input_type() {
            "indirect" => {
                let mut path = self.get_str("id").unwrap_or_default().to_string();
                for k in ["ref", "rev"] {
                    if let Some(v) = self.get_str(k) {
                        path.push('/');
                        path.push_str(v);
                    }
                }
                plain("flake", path)
            }
            "path" => {
                let mut query = attrs_to_query(&self.attrs);
                query.remove("path");
                query.remove("type");
                let mut url = plain("path", self.get_str("path").unwrap_or_default().to_string());
                url.query = query;
                url
            }
            "git" => {
                let mut url = parse("url");
                if url.scheme != "git" {
                    url.scheme = format!("git+{}", url.scheme);
                }
                for k in ["rev", "ref"] {
                    if let Some(v) = self.get_str(k) {
                        url.query.insert(k.into(), v.into());
                    }
                }
                for k in ["shallow", "submodules"] {
                    if self.get_bool(k) == Some(true) {
                        url.query.insert(k.into(), "1".into());
                    }
                }
                url
            }
            "tarball" | "file" => {
                let mut url = parse("url");
                let ty = self.input_type();
                let implied = if has_tarball_extension(&url.path) {
                    "tarball"
                } else {
                    "file"
                };
                if ty != implied {
                    url.scheme = format!("{ty}+{}", url.scheme);
                }
                if let Some(h) = self.get_str("narHash") {
                    let h = Hash::parse_any(h, Some(HashAlgo::Sha256))
                        .map(|h| h.to_sri())
                        .unwrap_or_else(|_| h.to_string());
                    url.query.insert("narHash".into(), h);
                }
                url
            }
            "github" | "gitlab" | "sourcehut" => {
                let mut path = format!(
                    "{}/{}",
                    self.get_str("owner").unwrap_or_default(),
                    self.get_str("repo").unwrap_or_default()
                );
                for k in ["ref", "rev"] {
                    if let Some(v) = self.get_str(k) {
                        path.push('/');
                        path.push_str(v);
                    }
                }
                plain(self.input_type(), path)
            }
            other => plain(other, String::new()),
        }
    }

    /// The URL form as a string.
    #[must_use]
    pub fn to_url_string(&self) -> String {
        self.to_url().to_string()
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_url_string())
    }
}

/// Whether `path` ends with an archive extension.
#[must_use]
pub fn has_tarball_extension(path: &str) -> bool {
    TARBALL_EXTENSIONS.iter().any(|e| path.ends_with(e))
}

/// A 40-hex-digit commit hash.
#[must_use]
pub fn is_rev(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A branch/tag name as flake URLs allow it: `[a-zA-Z0-9@][a-zA-Z0-9_.\/@-]*`.
#[must_use]
pub fn is_ref(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'@')
        && b.all(|c| c.is_ascii_alphanumeric() || b"_./@-".contains(&c))
}

/// A flake ID: `[a-zA-Z][a-zA-Z0-9_-]*`.
#[must_use]
pub fn is_flake_id(s: &str) -> bool {
    let mut b = s.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

fn is_host(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || b".:-".contains(&c))
}

/// Whether git accepts `s` as a branch/tag name (Nix's `badGitRefRegex`, negated).
#[must_use]
pub fn is_git_ref(s: &str) -> bool {
    !(s.is_empty()
        || s == "@"
        || s.contains("//")
        || s.starts_with(['.', '/'])
        || s.contains("/.")
        || s.contains("..")
        || s.bytes()
            .any(|c| c.is_ascii_control() || c == b' ' || b":?^~[\\*".contains(&c))
        || s.ends_with(".lock")
        || s.contains(".lock/")
        || s.contains("@{")
        || s.ends_with(['/', '.']))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(url: &str) -> String {
        Input::from_url(url).unwrap().to_url_string()
    }

    #[test]
    fn urls_round_trip_as_nix_prints_them() {
        assert_eq!(round("git+file:///a/b"), "git+file:///a/b");
        assert_eq!(
            round("git+https://h/r.git?rev=1bd53c4180be719eed419cddee3dabb58fe1e65e&ref=main"),
            "git+https://h/r.git?ref=main&rev=1bd53c4180be719eed419cddee3dabb58fe1e65e"
        );
        assert_eq!(
            round("git+ssh://git@h/r?shallow=1"),
            "git+ssh://git@h/r?shallow=1"
        );
        assert_eq!(
            round(
                "path:/x?narHash=sha256-i2s3L4a0YcbqcoGsDNHHKd/EKHhueKj5T8kj8aghKkM%3D&lastModified=5"
            ),
            "path:/x?lastModified=5&narHash=sha256-i2s3L4a0YcbqcoGsDNHHKd%2fEKHhueKj5T8kj8aghKkM="
        );
        assert_eq!(
            round("github:NixOS/nixpkgs/nixos-22.05"),
            "github:NixOS/nixpkgs/nixos-22.05"
        );
        assert_eq!(round("flake:nixpkgs/release"), "flake:nixpkgs/release");
        assert_eq!(round("file:///d/t.tar.gz"), "file:///d/t.tar.gz");
        assert_eq!(round("tarball+https://h/x"), "tarball+https://h/x");
        assert_eq!(round("https://h/x.json"), "https://h/x.json");
        assert_eq!(round("file+https://h/x.tar.gz"), "file+https://h/x.tar.gz");
    }

    #[test]
    fn url_forms_give_nix_attrs() {
        let i = Input::from_url("git+file:///a?ref=main&submodules=1&foo=bar").unwrap();
        assert_eq!(i.input_type(), "git");
        assert_eq!(i.get_str("url"), Some("file:///a?foo=bar"));
        assert_eq!(i.get_bool("submodules"), Some(true));
        let i = Input::from_url(
            "file:///d/t.tar.gz?narHash=sha256-WRmkcZabQGQju02%2bl7EERTiT9I/gNjUEDeygACxAZLc=",
        )
        .unwrap();
        assert_eq!(i.input_type(), "tarball");
        assert_eq!(i.get_str("url"), Some("file:///d/t.tar.gz"));
        assert!(i.is_locked());
        let i = Input::from_url("github:o/r/0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(
            i.rev().unwrap(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert!(i.is_locked());
        let i = Input::from_url("flake:nixpkgs").unwrap();
        assert!(!i.is_direct());
        assert!(!i.is_locked());
    }

    #[test]
    fn rejects_what_nix_rejects() {
        for bad in [
            "github:o",
            "github:o/r/a/b",
            "github:o/r/x?rev=0123456789abcdef0123456789abcdef01234567",
            "path:/x?foo=1",
            "flake:1bad",
            "mercurial:x",
            "git+file:///a?ref=a..b",
        ] {
            assert!(Input::from_url(bad).is_err(), "{bad}");
        }
        let mut attrs = Attrs::new();
        attrs.insert("type".into(), "path".into());
        attrs.insert("path".into(), "/x".into());
        attrs.insert("url".into(), "/x".into());
        assert_eq!(
            Input::from_attrs(attrs).unwrap_err().to_string(),
            "unsupported path input attribute `url`"
        );
    }

    #[test]
    fn overrides_follow_the_scheme() {
        let rev = "0123456789abcdef0123456789abcdef01234567";
        let gh = Input::from_url("github:o/r/main").unwrap();
        let o = gh.apply_overrides(None, Some(rev)).unwrap();
        assert_eq!(o.to_url_string(), format!("github:o/r/{rev}"));
        let p = Input::from_url("path:/x").unwrap();
        assert!(p.apply_overrides(Some("main"), None).is_err());
        assert!(p.apply_overrides(None, None).is_ok());
    }

    #[test]
    fn git_ref_names() {
        assert!(is_git_ref("main"));
        assert!(is_git_ref("refs/heads/feature/x"));
        for bad in [
            "", "@", "a..b", "a//b", "/a", "a/", "a.lock", "a b", "a~1", "a@{0}",
        ] {
            assert!(!is_git_ref(bad), "{bad}");
        }
    }
}
