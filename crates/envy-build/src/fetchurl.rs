//! `builder = "builtin:fetchurl"`: downloads a fixed-output derivation's `url` into its
//! output, in-process. Schemes: `https` (rustls) and `http` through ureq, `file://`, and bare
//! absolute paths for mirrors.
//!
//! Hashed mirrors come first for flat fixed outputs, as with Nix's `hashed-mirrors`: a file
//! whose flat hash is `ALGO:HEX` is looked up as `BASE/ALGO/HEX` under each base, then the
//! derivation's own `url` is tried. The caller checks the result's hash like any fixed
//! output's.
//!
//! `unpack = true`: the download is a NAR (xz-compressed when the derivation's `url` ends in
//! `.xz`), restored at the output with envy-store's NAR reader, as Nix's `builtin:fetchurl`
//! does. `executable = true` makes the output `0755`.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use envy_store::cache::Compression;
use envy_store::local::delete_path;

use crate::error::BuildError;

/// What to fetch and where from.
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    /// The derivation's `url`.
    pub url: String,
    /// Base URLs (or directories) of hashed mirrors.
    pub hashed_mirrors: Vec<String>,
    /// For flat fixed outputs: (algorithm name, lowercase hex digest) to look up in mirrors.
    pub flat_hash: Option<(String, String)>,
    /// `executable = "1"`: mark the file executable.
    pub executable: bool,
    /// `unpack = "1"`: the download is a NAR to restore at the output.
    pub unpack: bool,
}

/// Fetch into `dest` (which must not exist yet). Returns the URL that answered.
///
/// # Errors
/// Every candidate URL failed; the error names the derivation's own URL and why it failed.
pub fn fetch(request: &FetchRequest, dest: &Path) -> Result<String, BuildError> {
    // Nix decides on decompression by the derivation's URL, mirrors included.
    let xz = request.unpack && request.url.ends_with(".xz");
    if let Some((algo, hex)) = &request.flat_hash {
        for base in &request.hashed_mirrors {
            let url = format!("{}/{algo}/{hex}", base.trim_end_matches('/'));
            if download(&url, dest, request.unpack, xz).is_ok() {
                finish(dest, request)?;
                return Ok(url);
            }
            let _ = delete_path(dest);
        }
    }
    download(&request.url, dest, request.unpack, xz).map_err(|e| {
        let _ = delete_path(dest);
        BuildError::Download {
            url: request.url.clone(),
            reason: e.to_string(),
        }
    })?;
    finish(dest, request)?;
    Ok(request.url.clone())
}

fn finish(dest: &Path, request: &FetchRequest) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    // An unpacked tree keeps the modes its NAR gave it.
    if request.executable || !request.unpack {
        let mode = if request.executable { 0o755 } else { 0o644 };
        fs_err::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

fn download(url: &str, dest: &Path, unpack: bool, xz: bool) -> io::Result<()> {
    let reader = open(url)?;
    if unpack {
        let reader = if xz {
            Compression::Xz.decoder(reader)?
        } else {
            reader
        };
        return envy_store::nar::restore(reader, dest).map_err(io::Error::other);
    }
    let mut reader = reader;
    let mut file = fs_err::File::create(dest)?;
    io::copy(&mut reader, &mut file)?;
    file.flush()?;
    file.sync_all()
}

fn open(url: &str) -> io::Result<Box<dyn Read>> {
    if let Some(path) = local_path(url) {
        return Ok(Box::new(fs_err::File::open(path)?));
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("unsupported URL `{url}`"),
        ));
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(io::Error::other)?;
    Ok(Box::new(response.into_body().into_reader()))
}

/// `file:///x` and `/x` name local files.
fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return Some(PathBuf::from(percent_decode(rest)));
    }
    url.starts_with('/').then(|| PathBuf::from(url))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_mirror_first_then_url() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        fs_err::create_dir_all(mirror.join("sha256")).unwrap();
        fs_err::write(mirror.join("sha256/abcd"), "from mirror").unwrap();
        fs_err::write(tmp.path().join("orig file"), "from url").unwrap();
        let url = format!("file://{}/orig%20file", tmp.path().display());
        let mut request = FetchRequest {
            url: url.clone(),
            hashed_mirrors: vec!["/nonexistent-mirror".into(), mirror.display().to_string()],
            flat_hash: Some(("sha256".into(), "abcd".into())),
            executable: true,
            unpack: false,
        };
        let dest = tmp.path().join("out1");
        let used = fetch(&request, &dest).unwrap();
        assert_eq!(used, format!("{}/sha256/abcd", mirror.display()));
        assert_eq!(fs_err::read_to_string(&dest).unwrap(), "from mirror");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs_err::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o755
        );

        request.flat_hash = Some(("sha256".into(), "ffff".into()));
        let dest = tmp.path().join("out2");
        assert_eq!(fetch(&request, &dest).unwrap(), url);
        assert_eq!(fs_err::read_to_string(&dest).unwrap(), "from url");

        request.url = "file:///nonexistent/x".into();
        let err = fetch(&request, &tmp.path().join("out3"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot download `file:///nonexistent/x`"),
            "{err}"
        );
        assert!(!tmp.path().join("out3").exists());
    }

    /// A loopback HTTP server answers; proves the ureq path without the internet.
    #[test]
    fn http_download() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            // The whole request: closing with some of it unread would reset the connection.
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            )
            .unwrap();
        });
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        let request = FetchRequest {
            url: format!("http://127.0.0.1:{port}/f"),
            ..FetchRequest::default()
        };
        fetch(&request, &dest).unwrap();
        server.join().unwrap();
        assert_eq!(fs_err::read_to_string(&dest).unwrap(), "hello");
    }
}
