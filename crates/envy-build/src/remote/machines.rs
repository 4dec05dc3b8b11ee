//! Nix's machine syntax (the `builders` setting, `/etc/nix/machines`): one machine a line
//! (lines separated by newlines or `;`), fields separated by white space:
//!
//! ```text
//! URI [systems [ssh-key [max-jobs [speed-factor [supported-features [mandatory-features [base64-host-key]]]]]]]
//! ```
//!
//! `-` (or a missing field) means the default: this machine's system, no key, 1 job, speed 1,
//! no features, no host key. Lists are comma-separated. `#` starts a comment. A line
//! `@/path/to/file` reads more machines from that file. A URI without a scheme is
//! `ssh://URI`, as in Nix.

use std::collections::BTreeSet;
use std::path::Path;

/// A protocol envy speaks to a build machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `ssh://`: `nix-store --serve --write` on the remote (the serve protocol).
    Serve,
    /// `ssh-ng://`: `nix-daemon --stdio` on the remote (the worker protocol).
    Daemon,
}

/// One build machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// As written (with `ssh://` added when there was no scheme).
    pub uri: String,
    pub protocol: Protocol,
    /// What `ssh` is given as the host: `user@host` (an alias of the user's ssh config works).
    pub host: String,
    pub systems: Vec<String>,
    pub ssh_key: Option<String>,
    pub max_jobs: usize,
    pub speed_factor: u32,
    /// Features it supports (the mandatory ones included, as in Nix).
    pub supported_features: BTreeSet<String>,
    /// Features a derivation must require to be built here.
    pub mandatory_features: BTreeSet<String>,
    /// The host's public key line (decoded from base64: `ssh-ed25519 AAAA…`).
    pub host_key: Option<String>,
}

impl Machine {
    /// Whether it builds for `system`.
    #[must_use]
    pub fn supports_system(&self, system: &str) -> bool {
        system == "builtin" || self.systems.iter().any(|s| s == system)
    }

    /// Whether a derivation requiring `features` may be built here: it supports them all, and
    /// they include every mandatory feature.
    #[must_use]
    pub fn fits_features(&self, features: &BTreeSet<String>) -> bool {
        features.iter().all(|f| self.supported_features.contains(f))
            && self.mandatory_features.iter().all(|f| features.contains(f))
    }
}

/// A bad `builders` value.
#[derive(Debug, thiserror::Error)]
pub enum MachinesError {
    #[error(
        "{origin}: line {line}: {reason}\nhint: the syntax is `URI [systems [ssh-key [max-jobs [speed-factor [supported-features [mandatory-features [base64-host-key]]]]]]]`, `-` for a default"
    )]
    Syntax {
        origin: String,
        line: usize,
        reason: String,
    },
    #[error("cannot read the machines file `{path}`: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Parse a `builders` value; `origin` names it in errors (`ENVY_BUILDERS`, a file's path).
/// `this_system` is the default for the systems field.
///
/// # Errors
/// A malformed line, or an `@file` that cannot be read.
pub fn parse_machines(
    text: &str,
    origin: &str,
    this_system: &str,
) -> Result<Vec<Machine>, MachinesError> {
    parse_depth(text, origin, this_system, 0)
}

fn parse_depth(
    text: &str,
    origin: &str,
    this_system: &str,
    depth: usize,
) -> Result<Vec<Machine>, MachinesError> {
    let mut machines = Vec::new();
    // Line numbers count both separators, so `a; b` reports `b` as line 2.
    for (i, raw) in text.split(['\n', ';']).enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let syntax = |reason: String| MachinesError::Syntax {
            origin: origin.to_string(),
            line: i + 1,
            reason,
        };
        if let Some(file) = line.strip_prefix('@') {
            let file = file.trim();
            if depth > 8 {
                return Err(syntax(format!("`@{file}`: machines files nest too deeply")));
            }
            // Nix ignores a machines file that does not exist.
            let text = match fs_err::read_to_string(Path::new(file)) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(MachinesError::File {
                        path: file.to_string(),
                        source,
                    });
                }
            };
            machines.extend(parse_depth(&text, file, this_system, depth + 1)?);
            continue;
        }
        machines.push(parse_line(line, this_system).map_err(syntax)?);
    }
    Ok(machines)
}

fn parse_line(line: &str, this_system: &str) -> Result<Machine, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() > 8 {
        return Err(format!("{} fields, at most 8 are allowed", fields.len()));
    }
    let field = |i: usize| {
        fields
            .get(i)
            .copied()
            .filter(|f| !f.is_empty() && *f != "-")
    };
    let list = |i: usize| -> BTreeSet<String> {
        field(i)
            .map(|f| {
                f.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let number = |i: usize, what: &str| -> Result<Option<u64>, String> {
        field(i)
            .map(|f| {
                f.parse::<u64>()
                    .map_err(|_| format!("{what} `{f}` is not a whole number"))
            })
            .transpose()
    };
    let uri = fields[0];
    let uri = if uri.contains("://") {
        uri.to_string()
    } else {
        format!("ssh://{uri}")
    };
    let (protocol, host) = if let Some(host) = uri.strip_prefix("ssh://") {
        (Protocol::Serve, host)
    } else if let Some(host) = uri.strip_prefix("ssh-ng://") {
        (Protocol::Daemon, host)
    } else {
        return Err(format!(
            "`{uri}`: unsupported store URI (envy builds remotely over `ssh://` and `ssh-ng://`)"
        ));
    };
    // Store parameters (`?remote-store=…`) are not supported; keep the host part.
    let host = host.split('?').next().unwrap_or(host).trim_end_matches('/');
    if host.is_empty() {
        return Err(format!("`{uri}` names no host"));
    }
    let systems: Vec<String> = field(1).map_or_else(
        || vec![this_system.to_string()],
        |f| {
            f.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        },
    );
    let max_jobs = number(3, "max-jobs")?.unwrap_or(1);
    let speed_factor = number(4, "speed-factor")?.unwrap_or(1);
    if speed_factor == 0 {
        return Err("speed-factor must be at least 1".into());
    }
    let mandatory_features = list(6);
    let mut supported_features = list(5);
    supported_features.extend(mandatory_features.iter().cloned());
    let host_key = field(7)
        .map(|k| {
            let bytes = data_encoding::BASE64
                .decode(k.as_bytes())
                .map_err(|_| format!("the host key `{k}` is not valid base64"))?;
            String::from_utf8(bytes)
                .map(|s| s.trim().to_string())
                .map_err(|_| format!("the host key `{k}` does not decode to a key line"))
        })
        .transpose()?;
    Ok(Machine {
        protocol,
        host: host.to_string(),
        uri,
        systems,
        ssh_key: field(2).map(String::from),
        max_jobs: usize::try_from(max_jobs).unwrap_or(usize::MAX),
        speed_factor: u32::try_from(speed_factor).unwrap_or(u32::MAX),
        supported_features,
        mandatory_features,
        host_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Machine> {
        parse_machines(text, "test", "x86_64-linux").unwrap()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn nix_manual_examples() {
        // From Nix's manual (`builders`, "Remote Builds").
        let m = parse(
            "ssh://mac x86_64-darwin ; ssh://beastie x86_64-freebsd\n\
             nix@scratchy.labs.cs.uu.nl  i686-linux      /home/nix/.ssh/id_scratchy_auto        8 1 kvm\n\
             nix@itchy.labs.cs.uu.nl     i686-linux      /home/nix/.ssh/id_scratchy_auto        8 2\n\
             nix@poochie.labs.cs.uu.nl   i686-linux      /home/nix/.ssh/id_scratchy_auto        1 2 kvm benchmark",
        );
        assert_eq!(m.len(), 5);
        assert_eq!(m[0].uri, "ssh://mac");
        assert_eq!(m[0].host, "mac");
        assert_eq!(m[0].systems, vec!["x86_64-darwin"]);
        assert_eq!(m[0].max_jobs, 1);
        assert_eq!(m[0].speed_factor, 1);
        assert_eq!(m[1].host, "beastie");
        assert_eq!(m[2].uri, "ssh://nix@scratchy.labs.cs.uu.nl");
        assert_eq!(m[2].host, "nix@scratchy.labs.cs.uu.nl");
        assert_eq!(
            m[2].ssh_key.as_deref(),
            Some("/home/nix/.ssh/id_scratchy_auto")
        );
        assert_eq!(m[2].max_jobs, 8);
        assert_eq!(m[2].supported_features, set(&["kvm"]));
        assert_eq!(m[3].speed_factor, 2);
        assert!(m[3].supported_features.is_empty());
        assert_eq!(m[4].supported_features, set(&["kvm", "benchmark"]));
        assert_eq!(
            m[4].mandatory_features,
            set(&["benchmark"]),
            "the 7th field is mandatory"
        );
    }

    #[test]
    fn defaults_dashes_and_mandatory_features() {
        let key = data_encoding::BASE64.encode(b"ssh-ed25519 AAAAC3Nza");
        let m = parse(&format!(
            "ssh-ng://builder@farm x86_64-linux,aarch64-linux - - 4 big-parallel benchmark {key} # a comment\n\
             # only a comment\n\
             farm2 - - 3"
        ));
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].protocol, Protocol::Daemon);
        assert_eq!(m[0].host, "builder@farm");
        assert_eq!(m[0].systems, vec!["x86_64-linux", "aarch64-linux"]);
        assert_eq!(m[0].ssh_key, None);
        assert_eq!(m[0].max_jobs, 1);
        assert_eq!(m[0].speed_factor, 4);
        assert_eq!(m[0].supported_features, set(&["big-parallel", "benchmark"]));
        assert_eq!(m[0].mandatory_features, set(&["benchmark"]));
        assert_eq!(m[0].host_key.as_deref(), Some("ssh-ed25519 AAAAC3Nza"));
        assert_eq!(m[1].protocol, Protocol::Serve);
        assert_eq!(m[1].systems, vec!["x86_64-linux"], "`-` is this system");
        assert_eq!(m[1].max_jobs, 3);
        assert!(m[0].supports_system("aarch64-linux"));
        assert!(!m[1].supports_system("aarch64-linux"));
        assert!(m[0].fits_features(&set(&["benchmark"])));
        assert!(
            !m[0].fits_features(&set(&["big-parallel"])),
            "the mandatory `benchmark` is not required"
        );
        assert!(!m[0].fits_features(&set(&["kvm", "benchmark"])));
        assert!(m[1].fits_features(&set(&[])));
    }

    #[test]
    fn machines_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("machines");
        fs_err::write(&file, "ssh://a x86_64-linux\nssh://b aarch64-linux - 2\n").unwrap();
        let m = parse(&format!("@{}; ssh://c", file.display()));
        let hosts: Vec<&str> = m.iter().map(|m| m.host.as_str()).collect();
        assert_eq!(hosts, ["a", "b", "c"]);
        assert!(parse(&format!("@{}/missing", dir.path().display())).is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse_machines("ssh://a\nssh://b x86_64-linux - many", "ENVY_BUILDERS", "x")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("ENVY_BUILDERS: line 2: max-jobs `many`"),
            "{err}"
        );
        assert!(err.contains("hint:"), "{err}");
        let err = parse_machines("http://a", "t", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported store URI"), "{err}");
    }
}
