//! Flake references: an input plus a subdirectory (`?dir=`), parsed and printed exactly as
//! Nix 2.8 does (`parseFlakeRefWithFragment`, `FlakeRef::to_string`, `toAttrs`). A bare path
//! (`.`, `./sub`, `/abs`) becomes `git+file://ROOT?dir=SUB` when it lies in a git work tree,
//! else `path:`; a bare word (`nixpkgs`, `nixpkgs/branch`) is an indirect reference.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use envy_fetch::attrs::get_str;
use envy_fetch::input::{is_flake_id, is_ref, is_rev};
use envy_fetch::url::{decode_query, percent_decode};
use envy_fetch::{Attrs, Input, ParsedUrl};

use crate::FlakeError;

/// A flake reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlakeRef {
    /// What to fetch.
    pub input: Input,
    /// Where `flake.nix` is inside the fetched tree (`""` at its root).
    pub subdir: String,
}

impl FlakeRef {
    /// A reference to the root of `input`.
    #[must_use]
    pub fn new(input: Input) -> FlakeRef {
        FlakeRef {
            input,
            subdir: String::new(),
        }
    }

    /// Parse a reference with no fragment. `base_dir` resolves relative paths (a command's
    /// current directory); `None` requires absolute ones.
    pub fn parse(s: &str, base_dir: Option<&Path>) -> Result<FlakeRef, FlakeError> {
        let (r, fragment) = FlakeRef::parse_with_fragment(s, base_dir)?;
        if !fragment.is_empty() {
            return Err(FlakeError::BadRef {
                reference: s.to_string(),
                reason: "unexpected fragment".to_string(),
            });
        }
        Ok(r)
    }

    /// Parse `REF#FRAGMENT` (`.#devShells.x86_64-linux.default`).
    pub fn parse_with_fragment(
        s: &str,
        base_dir: Option<&Path>,
    ) -> Result<(FlakeRef, String), FlakeError> {
        let bad = |reason: String| FlakeError::BadRef {
            reference: s.to_string(),
            reason,
        };
        let (body, fragment) = match s.split_once('#') {
            Some((b, f)) => (b, percent_decode(f)),
            None => (s, String::new()),
        };
        // `id`, `id/ref`, `id/rev`, `id/ref/rev`: an indirect reference.
        let parts: Vec<&str> = body.split('/').collect();
        if !body.contains(['?', ':']) && is_flake_id(parts[0]) && parts.len() <= 3 {
            let rest_ok = match parts.as_slice() {
                [_] => true,
                [_, x] => is_ref(x) || is_rev(x),
                [_, r, v] => is_ref(r) && is_rev(v),
                _ => false,
            };
            if rest_ok {
                let url = ParsedUrl {
                    scheme: "flake".into(),
                    authority: None,
                    path: body.to_string(),
                    query: Default::default(),
                    fragment: String::new(),
                };
                return Ok((FlakeRef::new(Input::from_parsed_url(&url)?), fragment));
            }
        }
        let (path_part, query) = match body.split_once('?') {
            Some((p, q)) => (p, decode_query(q)),
            None => (body, Default::default()),
        };
        if !path_part.contains(':') && !path_part.is_empty() {
            let path = match base_dir {
                Some(base) => absolute(base, Path::new(path_part)),
                None if path_part.starts_with('/') => {
                    let mut p = PathBuf::from(path_part);
                    if let Some(dir) = query.get("dir") {
                        p = p.join(dir);
                    }
                    let attrs = path_attrs(&normalize(&p));
                    return Ok((FlakeRef::new(Input::from_attrs(attrs)?), fragment));
                }
                None => return Err(bad("it is not an absolute path".into())),
            };
            let meta = std::fs::metadata(&path)
                .map_err(|_| FlakeError::NotADirectory { path: path.clone() })?;
            if !meta.is_dir() {
                return Err(FlakeError::NotADirectory { path });
            }
            let path = find_flake_dir(&path)?;
            // Inside a git work tree: `git+file://ROOT` with `dir` set to the rest.
            let mut root = path.clone();
            let mut subdir: Vec<String> = Vec::new();
            loop {
                if root.join(".git").exists() {
                    let mut url = ParsedUrl {
                        scheme: "git+file".into(),
                        authority: Some(String::new()),
                        path: root.display().to_string(),
                        query: query.clone(),
                        fragment: String::new(),
                    };
                    if !subdir.is_empty() {
                        if url.query.contains_key("dir") {
                            return Err(bad("it has an inconsistent `dir` parameter".into()));
                        }
                        subdir.reverse();
                        url.query.insert("dir".into(), subdir.join("/"));
                    }
                    if root.join(".git/shallow").exists() {
                        url.query.insert("shallow".into(), "1".into());
                    }
                    let dir = url.query.get("dir").cloned().unwrap_or_default();
                    return Ok((
                        FlakeRef {
                            input: Input::from_parsed_url(&url)?,
                            subdir: dir,
                        },
                        fragment,
                    ));
                }
                match (root.file_name(), root.parent()) {
                    (Some(name), Some(parent)) => {
                        subdir.push(name.to_string_lossy().into_owned());
                        root = parent.to_owned();
                    }
                    _ => break,
                }
            }
            return Ok((
                FlakeRef::new(Input::from_attrs(path_attrs(&path))?),
                fragment,
            ));
        }
        let mut url = ParsedUrl::parse(body)?;
        let subdir = url.query.get("dir").cloned().unwrap_or_default();
        if url.scheme == "path" {
            // Nix 2.8 refuses `dir` on path URLs; envy takes it as the subdirectory.
            url.query.remove("dir");
        }
        Ok((
            FlakeRef {
                input: Input::from_parsed_url(&url)?,
                subdir,
            },
            fragment,
        ))
    }

    /// From lock-file / registry attributes (`dir` is the subdirectory).
    pub fn from_attrs(attrs: &Attrs) -> Result<FlakeRef, FlakeError> {
        let subdir = get_str(attrs, "dir")?.unwrap_or_default().to_string();
        let mut rest = attrs.clone();
        rest.remove("dir");
        Ok(FlakeRef {
            input: Input::from_attrs(rest)?,
            subdir,
        })
    }

    /// As attributes (`dir` added when there is a subdirectory).
    #[must_use]
    pub fn to_attrs(&self) -> Attrs {
        let mut attrs = self.input.attrs().clone();
        if !self.subdir.is_empty() {
            attrs.insert("dir".into(), self.subdir.as_str().into());
        }
        attrs
    }

    /// The same reference with another input.
    #[must_use]
    pub fn with_input(&self, input: Input) -> FlakeRef {
        FlakeRef {
            input,
            subdir: self.subdir.clone(),
        }
    }
}

impl fmt::Display for FlakeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut url = self.input.to_url();
        if !self.subdir.is_empty() {
            url.query
                .entry("dir".into())
                .or_insert_with(|| self.subdir.clone());
        }
        write!(f, "{url}")
    }
}

fn path_attrs(path: &Path) -> Attrs {
    let mut attrs = Attrs::new();
    attrs.insert("type".into(), "path".into());
    attrs.insert("path".into(), path.display().to_string().into());
    attrs
}

/// `base/rel` without `.`/`..` (not resolving symlinks, as Nix's `absPath` does not).
fn absolute(base: &Path, rel: &Path) -> PathBuf {
    normalize(&base.join(rel))
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `path` if it holds `flake.nix`, else the nearest parent that does, stopping at a git
/// work tree's root or a file-system boundary (as Nix searches up).
fn find_flake_dir(path: &Path) -> Result<PathBuf, FlakeError> {
    use std::os::unix::fs::MetadataExt;
    if path.join("flake.nix").exists() {
        return Ok(path.to_owned());
    }
    let dev = std::fs::metadata(path).map(|m| m.dev()).ok();
    let mut p = path.to_owned();
    loop {
        if p.join("flake.nix").exists() {
            return Ok(p);
        }
        if p.join(".git").exists() || std::fs::metadata(&p).map(|m| m.dev()).ok() != dev {
            break;
        }
        match p.parent() {
            Some(parent) => p = parent.to_owned(),
            None => break,
        }
    }
    Err(FlakeError::NoFlakeNix {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(s: &str) -> String {
        FlakeRef::parse(s, None).unwrap().to_string()
    }

    #[test]
    fn urls_print_as_nix_prints_them() {
        assert_eq!(show("nixpkgs"), "flake:nixpkgs");
        assert_eq!(show("nixpkgs/nixos-22.05"), "flake:nixpkgs/nixos-22.05");
        assert_eq!(
            show("github:NixOS/nixpkgs?dir=lib"),
            "github:NixOS/nixpkgs?dir=lib"
        );
        assert_eq!(
            show("git+file:///tmp/flk/sd?dir=sub"),
            "git+file:///tmp/flk/sd?dir=sub"
        );
        assert_eq!(show("/abs/path"), "path:/abs/path");
        assert_eq!(show("path:/abs?dir=sub"), "path:/abs?dir=sub");
    }

    #[test]
    fn git_dir_stays_in_the_url_as_in_nix_2_8() {
        let r = FlakeRef::parse("git+file:///tmp/flk/sd?dir=sub", None).unwrap();
        assert_eq!(r.subdir, "sub");
        assert_eq!(r.input.get_str("url"), Some("file:///tmp/flk/sd?dir=sub"));
        let attrs = envy_fetch::attrs::attrs_to_json(&r.to_attrs());
        assert_eq!(
            attrs.to_string(),
            r#"{"dir":"sub","type":"git","url":"file:///tmp/flk/sd?dir=sub"}"#
        );
    }

    #[test]
    fn fragments_split_off() {
        let (r, f) = FlakeRef::parse_with_fragment("github:o/r#devShells.x.default", None).unwrap();
        assert_eq!(r.to_string(), "github:o/r");
        assert_eq!(f, "devShells.x.default");
        let (r, f) = FlakeRef::parse_with_fragment("nixpkgs#hello", None).unwrap();
        assert_eq!(r.input.input_type(), "indirect");
        assert_eq!(f, "hello");
    }

    #[test]
    fn local_paths_find_the_git_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        fs_err::create_dir_all(root.join(".git")).unwrap();
        fs_err::create_dir_all(root.join("sub/deeper")).unwrap();
        fs_err::write(root.join("sub/flake.nix"), "{}").unwrap();
        let r = FlakeRef::parse("./sub/deeper", Some(&root)).unwrap();
        assert_eq!(r.subdir, "sub");
        assert_eq!(
            r.to_string(),
            format!("git+file://{}?dir=sub", root.display())
        );
        let plain = dir.path().join("plain");
        fs_err::create_dir_all(&plain).unwrap();
        fs_err::write(plain.join("flake.nix"), "{}").unwrap();
        let r = FlakeRef::parse(".", Some(&plain)).unwrap();
        assert_eq!(r.to_string(), format!("path:{}", plain.display()));
        assert!(matches!(
            FlakeRef::parse(".", Some(dir.path())),
            Err(FlakeError::NoFlakeNix { .. })
        ));
    }

    #[test]
    fn attrs_round_trip() {
        let r = FlakeRef::parse("github:o/r/main?dir=x", None).unwrap();
        assert_eq!(FlakeRef::from_attrs(&r.to_attrs()).unwrap(), r);
    }
}
