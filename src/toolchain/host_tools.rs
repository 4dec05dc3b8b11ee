//! Discovery of the host's clang/LLVM tools that envy's package set drives: where they are
//! (the `which` crate over PATH), what they are (`--version`, a sha256 of the executable), and
//! how the package set receives them (`host-tools.nix`).
//!
//! Running `clang --version` and hashing binaries costs tens of milliseconds, so results are
//! cached per executable, keyed by its canonical path, size, mtime and inode: a warm discovery
//! is a PATH lookup and one `stat` per tool. Knows nothing of the Nix language beyond
//! rendering one attribute set.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A tool the package set needs: its attribute name in `hostTools.tools`, the program looked
/// up on PATH, and the Debian package that ships it.
struct ToolSpec {
    attr: &'static str,
    program: &'static str,
    debian_package: &'static str,
    /// The argument that makes the program print its version.
    version_arg: &'static str,
}

/// Tools the package set uses when they are there (`hostTools.optionalTools`, outside the
/// identities every derivation carries, so installing one rebuilds nothing): Go, for
/// `pkgs.go`, and CMake, for `pkgs.cmake` (which builds the C++ runtimes and LevelDB).
const OPTIONAL_TOOLS: &[ToolSpec] = &[
    ToolSpec {
        attr: "go",
        program: "go",
        debian_package: "golang-go",
        version_arg: "version",
    },
    ToolSpec {
        attr: "cmake",
        program: "cmake",
        debian_package: "cmake",
        version_arg: "--version",
    },
];

/// Whether `attr` names an optional tool.
pub fn is_optional(attr: &str) -> bool {
    OPTIONAL_TOOLS.iter().any(|t| t.attr == attr)
}

const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        attr: "clang",
        program: "clang",
        debian_package: "clang",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "lld",
        program: "ld.lld",
        debian_package: "lld",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "ar",
        program: "llvm-ar",
        debian_package: "llvm",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "ranlib",
        program: "llvm-ranlib",
        debian_package: "llvm",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "nm",
        program: "llvm-nm",
        debian_package: "llvm",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "strip",
        program: "llvm-strip",
        debian_package: "llvm",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "objcopy",
        program: "llvm-objcopy",
        debian_package: "llvm",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "objdump",
        program: "llvm-objdump",
        debian_package: "llvm",
        version_arg: "--version",
    },
    ToolSpec {
        attr: "readelf",
        program: "llvm-readelf",
        debian_package: "llvm",
        version_arg: "--version",
    },
];

/// One discovered host tool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostTool {
    /// The attribute name in the package set's `hostTools.tools`.
    pub attr: String,
    /// The program as found on PATH (LLVM tools pick their behaviour from this name).
    pub path: PathBuf,
    /// The executable behind it, symlinks resolved.
    pub real_path: PathBuf,
    /// The version from `--version` (`14.0.6`).
    pub version: String,
    /// sha256 of the executable's bytes, hex.
    pub sha256: String,
}

/// The host's tools, as the package set's `hostTools` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTools {
    /// The Nix system of the build machine (`x86_64-linux`).
    pub system: String,
    pub tools: Vec<HostTool>,
}

#[derive(Debug, thiserror::Error)]
pub enum HostToolsError {
    #[error("the host tools envy's toolchain drives are missing: {}", missing_list(.missing))]
    Missing {
        missing: Vec<String>,
        packages: Vec<String>,
    },
    #[error("cannot run `{path} --version`")]
    Version {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path} --version` printed no version number")]
    NoVersion { path: PathBuf },
    #[error("cannot read host tool `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("envy's toolchain supports x86_64 and aarch64 Linux hosts, not `{arch}`")]
    UnsupportedHost { arch: String },
}

impl HostToolsError {
    /// What the user should do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { packages, .. } => Some(format!(
                "install them with `apt-get install {}` (Debian/Ubuntu); compiler-rt's builtins come with `libclang-rt-14-dev` (and `libclang-rt-14-dev:arm64` for aarch64 targets)",
                packages.join(" ")
            )),
            _ => None,
        }
    }
}

fn missing_list(missing: &[String]) -> String {
    missing
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Per-executable facts worth caching: what `--version` said and the content hash, valid while
/// the file's size, mtime and inode stay the same.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct ProbeCache {
    entries: BTreeMap<PathBuf, Probe>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Probe {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    version: String,
    sha256: String,
}

impl HostTools {
    /// Find every tool on `path` (a PATH value), using and updating the probe cache in
    /// `cache_dir` (`None`: no cache).
    pub fn discover(
        path: Option<&std::ffi::OsStr>,
        cache_dir: Option<&Path>,
    ) -> Result<Self, HostToolsError> {
        let system = host_system()?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let mut packages: Vec<String> = Vec::new();
        for spec in TOOLS {
            match path.and_then(|p| which::which_in(spec.program, Some(p), &cwd).ok()) {
                Some(p) => found.push((spec, p)),
                None => {
                    missing.push(spec.program.to_owned());
                    if !packages.iter().any(|p| p == spec.debian_package) {
                        packages.push(spec.debian_package.to_owned());
                    }
                }
            }
        }
        for spec in OPTIONAL_TOOLS {
            if let Some(p) = path.and_then(|p| which::which_in(spec.program, Some(p), &cwd).ok()) {
                found.push((spec, p));
            }
        }
        if !missing.is_empty() {
            if !packages.iter().any(|p| p.starts_with("libclang-rt")) {
                packages.push("libclang-rt-14-dev".to_owned());
            }
            return Err(HostToolsError::Missing { missing, packages });
        }

        let cache_file = cache_dir.map(|d| d.join("host-tools-v1.json"));
        let mut cache: ProbeCache = cache_file
            .as_deref()
            .and_then(|f| fs_err::read(f).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let mut changed = false;

        let mut tools = Vec::new();
        for (spec, path) in found {
            let real_path = fs_err::canonicalize(&path).map_err(|source| HostToolsError::Read {
                path: path.clone(),
                source,
            })?;
            let meta = fs_err::metadata(&real_path).map_err(|source| HostToolsError::Read {
                path: real_path.clone(),
                source,
            })?;
            let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            let fresh =
                |p: &Probe| p.size == meta.len() && p.mtime_ns == mtime_ns && p.inode == meta.ino();
            let probe = match cache.entries.get(&real_path) {
                Some(p) if fresh(p) => p.clone(),
                _ => {
                    let probe = Probe {
                        size: meta.len(),
                        mtime_ns,
                        inode: meta.ino(),
                        version: probe_version(&path, spec.version_arg)?,
                        sha256: sha256_file(&real_path)?,
                    };
                    cache.entries.insert(real_path.clone(), probe.clone());
                    changed = true;
                    probe
                }
            };
            tools.push(HostTool {
                attr: spec.attr.to_owned(),
                path,
                real_path,
                version: probe.version,
                sha256: probe.sha256,
            });
        }

        if changed && let Some(file) = &cache_file {
            // A cache that cannot be written only costs the next run a re-probe.
            let _ = crate::toolchain::write_atomically(
                file,
                &serde_json::to_vec_pretty(&cache).unwrap_or_default(),
            );
        }
        Ok(Self { system, tools })
    }

    /// The tool with this attribute name (`clang`, `lld`, …).
    pub fn get(&self, attr: &str) -> Option<&HostTool> {
        self.tools.iter().find(|t| t.attr == attr)
    }

    /// The `hostTools` attribute set as Nix source (the contents of `host-tools.nix`).
    pub fn to_nix(&self) -> String {
        let mut out =
            String::from("# The host's clang/LLVM tools as envy discovered them (generated).\n{\n");
        out.push_str(&format!(
            "  system = {};\n  tools = {{\n",
            crate::engine::eval::nix_string(&self.system)
        ));
        let line = |t: &HostTool| {
            format!(
                "    {} = {{ path = {}; realPath = {}; version = {}; sha256 = {}; }};\n",
                t.attr,
                crate::engine::eval::nix_string(&t.path.to_string_lossy()),
                crate::engine::eval::nix_string(&t.real_path.to_string_lossy()),
                crate::engine::eval::nix_string(&t.version),
                crate::engine::eval::nix_string(&t.sha256),
            )
        };
        for t in self.tools.iter().filter(|t| !is_optional(&t.attr)) {
            out.push_str(&line(t));
        }
        out.push_str("  };\n");
        let optional: Vec<&HostTool> = self.tools.iter().filter(|t| is_optional(&t.attr)).collect();
        if !optional.is_empty() {
            out.push_str("  optionalTools = {\n");
            for t in optional {
                out.push_str(&line(t));
            }
            out.push_str("  };\n");
        }
        out.push_str("}\n");
        out
    }
}

/// The Nix system string of this machine.
pub fn host_system() -> Result<String, HostToolsError> {
    match std::env::consts::ARCH {
        arch @ ("x86_64" | "aarch64") => Ok(format!("{arch}-linux")),
        arch => Err(HostToolsError::UnsupportedHost {
            arch: arch.to_owned(),
        }),
    }
}

fn probe_version(path: &Path, version_arg: &str) -> Result<String, HostToolsError> {
    let output = Command::new(path)
        .arg(version_arg)
        .output()
        .map_err(|source| HostToolsError::Version {
            path: path.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    first_version(&text).ok_or_else(|| HostToolsError::NoVersion {
        path: path.to_owned(),
    })
}

/// The first dotted version number (`14.0.6`) in the first line that has one.
fn first_version(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map(|w| w.trim_matches('.'))
            .find(|w| {
                w.contains('.')
                    && w.split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(str::to_owned)
    })
}

fn sha256_file(path: &Path) -> Result<String, HostToolsError> {
    let bytes = fs_err::read(path).map_err(|source| HostToolsError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(crate::toolchain::hex(&Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers_come_from_the_first_line_that_has_one() {
        assert_eq!(
            first_version("Debian clang version 14.0.6\nTarget: x86_64"),
            Some("14.0.6".into())
        );
        assert_eq!(
            first_version("Debian LLD 14.0.6 (compatible with GNU linkers)"),
            Some("14.0.6".into())
        );
        assert_eq!(
            first_version("LLVM (http://llvm.org/):\n  LLVM version 14.0.6\n"),
            Some("14.0.6".into())
        );
        assert_eq!(
            first_version("go version go1.19.8 linux/amd64"),
            Some("1.19.8".into())
        );
        assert_eq!(first_version("no numbers here"), None);
        assert_eq!(first_version("build 7"), None);
    }

    #[test]
    fn optional_tools_stay_out_of_the_identities() {
        let tool = |attr: &str| HostTool {
            attr: attr.into(),
            path: format!("/usr/bin/{attr}").into(),
            real_path: format!("/usr/bin/{attr}").into(),
            version: "1.0".into(),
            sha256: "0".into(),
        };
        let nix = HostTools {
            system: "x86_64-linux".into(),
            tools: vec![tool("clang"), tool("go")],
        }
        .to_nix();
        let (tools, optional) = nix.split_once("optionalTools").unwrap();
        assert!(
            tools.contains("clang = {") && !tools.contains("go = {"),
            "{nix}"
        );
        assert!(optional.contains("go = {"), "{nix}");
        let without = HostTools {
            system: "x86_64-linux".into(),
            tools: vec![tool("clang")],
        }
        .to_nix();
        assert!(!without.contains("optionalTools"), "{without}");
    }

    #[test]
    fn missing_tools_name_the_debian_packages() {
        let empty = tempfile::tempdir().unwrap();
        let err = HostTools::discover(Some(empty.path().as_os_str()), None).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("`clang`") && message.contains("`ld.lld`"),
            "{message}"
        );
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("apt-get install clang lld llvm libclang-rt-14-dev"),
            "{hint}"
        );
    }
}
