//! Getting bytes from a URL: `file://` reads the local file, `http(s)://` goes through ureq.
//! Also the small JSON GETs of forge APIs.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::FetchError;
use crate::url::{ParsedUrl, percent_decode};

/// The local file a `file://` URL names.
pub(crate) fn file_url_path(url: &str) -> Option<PathBuf> {
    let u = ParsedUrl::parse(url).ok()?;
    (u.scheme == "file").then(|| PathBuf::from(percent_decode(&u.path)))
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .user_agent(concat!("envy/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Write what `url` holds to `dest`; `headers` go with HTTP requests.
pub(crate) fn download(
    url: &str,
    dest: &Path,
    headers: &[(&str, String)],
) -> Result<(), FetchError> {
    let err = |message: String| FetchError::Download {
        url: url.to_string(),
        message,
    };
    if let Some(path) = file_url_path(url) {
        if !path.is_file() {
            return Err(err(format!("`{}` is not a file", path.display())));
        }
        fs_err::copy(&path, dest).map_err(|e| err(e.to_string()))?;
        return Ok(());
    }
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let response = req.call().map_err(|e| err(e.to_string()))?;
    let mut reader = response.into_body().into_reader();
    let mut out = fs_err::File::create(dest).map_err(FetchError::io(dest))?;
    io::copy(&mut reader, &mut out).map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// GET `url` and parse the body as JSON.
pub(crate) fn get_json(
    url: &str,
    headers: &[(&str, String)],
) -> Result<serde_json::Value, FetchError> {
    let err = |message: String| FetchError::Download {
        url: url.to_string(),
        message,
    };
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let response = req.call().map_err(|e| err(e.to_string()))?;
    let body = response
        .into_body()
        .read_to_string()
        .map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&body).map_err(|e| err(format!("bad JSON: {e}")))
}
