//! URLs as Nix's fetchers parse and print them (`parseURL`, `ParsedURL::to_string`): scheme,
//! optional authority, path, a sorted query map and a fragment; percent-encoding with
//! lowercase hex digits (`narHash=sha256-…%2f…`), which is what ends up in lock files and
//! `nix flake metadata`.

use std::collections::BTreeMap;
use std::fmt;

use crate::FetchError;

/// Characters Nix leaves unencoded in query names and values and in fragments.
const QUERY_SAFE: &[u8] = b"-._~!$&'()*+,;=:@";

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `git+https`, `path`, `github`, …
    pub scheme: String,
    /// What follows `//`, when the URL has it (`""` for `file:///x`).
    pub authority: Option<String>,
    /// The path, as written (not percent-decoded).
    pub path: String,
    /// Decoded query parameters; the first of duplicated names wins, as in Nix.
    pub query: BTreeMap<String, String>,
    /// Decoded fragment (`""` when absent).
    pub fragment: String,
}

impl ParsedUrl {
    /// Parse `url`. A `file` URL must have an empty authority, and an empty path becomes `/`.
    pub fn parse(url: &str) -> Result<ParsedUrl, FetchError> {
        let bad = |reason: &str| FetchError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let colon = url.find(':').ok_or_else(|| bad("it has no scheme"))?;
        let scheme = &url[..colon];
        let mut chars = scheme.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            || !chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        {
            return Err(bad("it has no valid scheme"));
        }
        let rest = &url[colon + 1..];
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (rest, None),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.strip_prefix("//") {
            Some(after) => {
                let end = after.find('/').unwrap_or(after.len());
                (Some(after[..end].to_string()), after[end..].to_string())
            }
            None => (None, rest.to_string()),
        };
        if path
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            return Err(bad("its path contains an invalid character"));
        }
        let is_file = scheme == "file" || scheme.ends_with("+file");
        if is_file && authority.as_deref().is_some_and(|a| !a.is_empty()) {
            return Err(FetchError::BadUrl {
                url: url.to_string(),
                reason: format!(
                    "a `file://` URL has unexpected authority `{}`",
                    authority.unwrap_or_default()
                ),
            });
        }
        let path = if is_file && path.is_empty() {
            "/".to_string()
        } else {
            path
        };
        Ok(ParsedUrl {
            scheme: scheme.to_string(),
            authority,
            path,
            query: query.map(decode_query).unwrap_or_default(),
            fragment: fragment.map(percent_decode).unwrap_or_default(),
        })
    }

    /// The URL without its query and fragment.
    #[must_use]
    pub fn base(&self) -> String {
        let mut s = format!("{}:", self.scheme);
        if let Some(a) = &self.authority {
            s.push_str("//");
            s.push_str(a);
        }
        s.push_str(&self.path);
        s
    }

    /// `application` and `transport` of a scheme like `git+https` (`tarball+file` …); a plain
    /// scheme is all transport.
    #[must_use]
    pub fn split_scheme(&self) -> (Option<&str>, &str) {
        match self.scheme.split_once('+') {
            Some((app, transport)) => (Some(app), transport),
            None => (None, &self.scheme),
        }
    }
}

impl fmt::Display for ParsedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base())?;
        if !self.query.is_empty() {
            write!(f, "?{}", encode_query(&self.query))?;
        }
        if !self.fragment.is_empty() {
            write!(f, "#{}", percent_encode(&self.fragment))?;
        }
        Ok(())
    }
}

/// Decode `%XX` escapes; malformed escapes stay as they are.
#[must_use]
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Encode everything but letters, digits and `-._~!$&'()*+,;=:@` as `%xx` (lowercase).
#[must_use]
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || QUERY_SAFE.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// `a=1&b=2` → map; entries without `=` are ignored, the first of duplicates wins.
#[must_use]
pub fn decode_query(s: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for part in s.split('&') {
        if let Some((k, v)) = part.split_once('=') {
            map.entry(percent_decode(k))
                .or_insert_with(|| percent_decode(v));
        }
    }
    map
}

/// map → `a=1&b=2`, in key order.
#[must_use]
pub fn encode_query(query: &BTreeMap<String, String>) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_nix() {
        let u = ParsedUrl::parse("git+file:///a/b?rev=abc&ref=main#frag").unwrap();
        assert_eq!(u.scheme, "git+file");
        assert_eq!(u.authority.as_deref(), Some(""));
        assert_eq!(u.path, "/a/b");
        assert_eq!(u.fragment, "frag");
        assert_eq!(u.to_string(), "git+file:///a/b?ref=main&rev=abc#frag");
        assert_eq!(u.split_scheme(), (Some("git"), "file"));

        let u = ParsedUrl::parse("path:/x/y").unwrap();
        assert_eq!(u.authority, None);
        assert_eq!(u.to_string(), "path:/x/y");

        let u = ParsedUrl::parse("https://example.org:8080/a.tar.gz").unwrap();
        assert_eq!(u.authority.as_deref(), Some("example.org:8080"));
        assert_eq!(u.path, "/a.tar.gz");
    }

    #[test]
    fn query_values_encode_slash_as_lowercase_hex() {
        let mut q = BTreeMap::new();
        q.insert("narHash".to_string(), "sha256-i2s3/EK+x=".to_string());
        q.insert("lastModified".to_string(), "1706832000".to_string());
        assert_eq!(
            encode_query(&q),
            "lastModified=1706832000&narHash=sha256-i2s3%2fEK+x="
        );
        assert_eq!(
            decode_query("narHash=sha256-i2s3%2fEK%2Bx=&x")["narHash"],
            "sha256-i2s3/EK+x="
        );
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(ParsedUrl::parse("no-scheme").is_err());
        assert!(ParsedUrl::parse("1x:/a").is_err());
        assert!(ParsedUrl::parse("file://host/x").is_err());
        assert_eq!(ParsedUrl::parse("file://").unwrap().path, "/");
    }

    #[test]
    fn percent_decode_leaves_malformed_escapes() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz"), "a%zz");
        assert_eq!(percent_decode("%41"), "A");
    }
}
