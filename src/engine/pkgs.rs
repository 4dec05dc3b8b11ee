//! envy's package set (`pkgs/` at the repository root), embedded in the binary: the file
//! table, its content hash, and materialising it on disk as a directory Nix and envy's
//! evaluator can import (and a flake envy's registry can point at).
//!
//! The set is written in Nix; see `pkgs/default.nix` for its interface. Materialised copies
//! live under `<cache>/pkgs-v1/<hash>/`, one per (package set, host tools) pair, and are never
//! modified once written (a new content gets a new directory).
//!
//! The project templates (`templates/` at the repository root, for `envy init`) are embedded
//! here too, and materialised with the set under `templates/`, with a generated
//! `templates/default.nix` in Nix's schema (`path`, `description`, `welcomeText`): the
//! `templates` output of the package-set flake, so `nix flake init -t envy#c-static` works.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::toolchain::HostTools;

/// One file of the package set.
pub struct PkgFile {
    /// Path relative to `pkgs/`.
    pub path: &'static str,
    pub contents: &'static str,
}

macro_rules! pkg_files {
    ($($path:literal,)*) => {
        &[$(PkgFile {
            path: $path,
            contents: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/pkgs/", $path)),
        },)*]
    };
}

/// Every file of `pkgs/` (a unit test checks this list against the directory).
pub const FILES: &[PkgFile] = pkg_files![
    "build-support/cc-wrapper/builder.sh",
    "build-support/cc-wrapper/cc-wrapper.sh",
    "build-support/cc-wrapper/default.nix",
    "build-support/cc-wrapper/setup-hook.sh",
    "build-support/fetchurl.nix",
    "build-support/mk-shell.nix",
    "build-support/trivial-builders.nix",
    "default.nix",
    "development/hello/default.nix",
    "development/hello/src/Makefile",
    "development/hello/src/hello.c",
    "development/cmake/default.nix",
    "development/cmake/setup-hook.sh",
    "development/go/default.nix",
    "development/go/setup-hook.sh",
    "development/leveldb/default.nix",
    "development/libcxx/default.nix",
    "development/musl/default.nix",
    "development/openssl/default.nix",
    "development/pkgconf/default.nix",
    "development/pkgconf/setup-hook.sh",
    "development/sqlite/default.nix",
    "development/xz/default.nix",
    "development/zlib/default.nix",
    "development/zstd/default.nix",
    "flake.nix",
    "lib/default.nix",
    "package-set.nix",
    "platforms.nix",
    "shell.nix",
    "stdenv/default-builder.sh",
    "stdenv/default.nix",
    "stdenv/make-derivation.nix",
    "stdenv/setup.sh",
];

/// A project template: `templates/<name>/` in the repository.
pub struct Template {
    pub name: &'static str,
    /// One line, for `envy init --list` and `nix flake show`.
    pub description: &'static str,
    /// Markdown printed after `envy init` (Nix's `welcomeText`).
    pub welcome_text: &'static str,
    /// The files, with paths relative to the template's directory.
    pub files: &'static [PkgFile],
}

macro_rules! template_files {
    ($name:literal: $($path:literal,)*) => {
        &[$(PkgFile {
            path: $path,
            contents: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $name, "/", $path)),
        },)*]
    };
}

/// Every template (a unit test checks the file lists against `templates/`). `default` is what
/// `envy init` and `nix flake init -t envy` use without a name.
pub const TEMPLATES: &[Template] = &[
    Template {
        name: "default",
        description: "An empty development shell from envy's package set (clang + musl)",
        welcome_text: "\
# A development shell from envy's package set

Add packages to `packages` in `flake.nix`, then:

    envy allow      # trust this flake: entering the directory loads its shell
",
        files: template_files!["default": "flake.nix",],
    },
    Template {
        name: "c-static",
        description: "A statically linked C program (clang + musl)",
        welcome_text: "\
# A statically linked C program

`cc` in this project's shell is clang with musl: what it links is static.

    envy allow      # trust this flake: entering the directory loads its shell
    make run        # builds ./hello and runs it
    file hello      # …, statically linked, …
",
        files: template_files!["c-static": "Makefile", "flake.nix", "hello.c",],
    },
    Template {
        name: "cpp-static",
        description: "A statically linked C++ program using LevelDB (clang + libc++ + musl, pkg-config)",
        welcome_text: "\
# A statically linked C++ program using LevelDB

`c++` in this project's shell is clang with LLVM's libc++ for musl (containers, iostreams,
exceptions, RTTI); LevelDB's static library comes from envy's package set and the Makefile
asks `pkg-config --static --libs leveldb` how to link it.

    envy allow      # trust this flake: entering the directory loads its shell
    make run        # builds ./hello and runs it (it writes ./example.db)
    file hello      # …, statically linked, …
",
        files: template_files!["cpp-static": "Makefile", "flake.nix", "main.cc",],
    },
    Template {
        name: "cross-aarch64",
        description: "A static C program for aarch64 Linux, cross-compiled (runs under qemu)",
        welcome_text: "\
# A static C program for aarch64 Linux

`cc` in this project's shell cross-compiles for `aarch64-unknown-linux-musl` with clang and
musl; `make run` runs the result under `qemu-aarch64-static` (Debian: `qemu-user-static`).

    envy allow      # trust this flake: entering the directory loads its shell
    make run        # builds ./hello for aarch64 and runs it
    file hello      # ELF 64-bit LSB executable, ARM aarch64, …, statically linked
",
        files: template_files!["cross-aarch64": "Makefile", "flake.nix", "hello.c",],
    },
    Template {
        name: "openssl-static",
        description: "A statically linked C program using OpenSSL 3 (clang + musl, pkg-config)",
        welcome_text: "\
# A statically linked C program using OpenSSL

OpenSSL's static libraries come from envy's package set; the Makefile asks `pkg-config
--static --libs openssl` how to link them. The program prints OpenSSL's version and a
SHA-256 digest (it fetches nothing).

    envy allow      # trust this flake: entering the directory loads its shell
    make run        # builds ./hello and runs it
    file hello      # …, statically linked, …
",
        files: template_files!["openssl-static": "Makefile", "flake.nix", "hello.c",],
    },
    Template {
        name: "go-static",
        description: "A statically linked Go program that calls C through cgo (the host's Go, clang + musl)",
        welcome_text: "\
# A statically linked Go program with cgo

`go` is the host's Go (Debian: `golang-go`), pinned by envy, with `CGO_ENABLED=1`; cgo
compiles and links C with the shell's `CC`, clang with musl.

    envy allow      # trust this flake: entering the directory loads its shell
    make run        # go build -ldflags '-extldflags \"-static\"', then ./hello
    file hello      # …, statically linked, …
",
        files: template_files!["go-static": "Makefile", "flake.nix", "go.mod", "main.go",],
    },
];

/// The template called `name`.
pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// `templates/default.nix` of a materialised set: every template in Nix's schema.
pub fn templates_nix() -> String {
    let mut out = String::from(
        "# Generated by envy from its embedded templates: the package-set flake's `templates`.\n{\n",
    );
    for t in TEMPLATES {
        out.push_str(&format!(
            "  {} = {{\n    path = ./{};\n    description = {};\n    welcomeText = {};\n  }};\n",
            t.name,
            t.name,
            nix_string(t.description),
            nix_string(t.welcome_text)
        ));
    }
    out.push_str("}\n");
    out
}

/// `s` as a Nix string literal.
fn nix_string(s: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The file written next to the set that describes the host's tools.
pub const HOST_TOOLS_FILE: &str = "host-tools.nix";

/// sha256 over every file's path and contents: changes exactly when the set does.
pub fn content_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut hasher = Sha256::new();
        for file in FILES {
            hasher.update(file.path.as_bytes());
            hasher.update([0]);
            hasher.update((file.contents.len() as u64).to_le_bytes());
            hasher.update(file.contents.as_bytes());
        }
        let templates = templates_nix();
        hasher.update(templates.as_bytes());
        for t in TEMPLATES {
            for file in t.files {
                hasher.update(t.name.as_bytes());
                hasher.update([0]);
                hasher.update(file.path.as_bytes());
                hasher.update([0]);
                hasher.update((file.contents.len() as u64).to_le_bytes());
                hasher.update(file.contents.as_bytes());
            }
        }
        crate::toolchain::hex(&hasher.finalize())
    })
}

/// Write the package set and `host-tools.nix` under `cache_dir/pkgs-v1/`, unless that exact
/// content is there already (one `stat`), and return the directory.
pub fn materialize(cache_dir: &Path, host_tools: &HostTools) -> std::io::Result<PathBuf> {
    let host_nix = host_tools.to_nix();
    let mut hasher = Sha256::new();
    hasher.update(content_hash().as_bytes());
    hasher.update(host_nix.as_bytes());
    let key = crate::toolchain::hex(&hasher.finalize());
    let root = cache_dir.join("pkgs-v1");
    let dir = root.join(&key[..32]);
    if dir.join(HOST_TOOLS_FILE).is_file() {
        return Ok(dir);
    }
    fs_err::create_dir_all(&root)?;
    let tmp = tempfile::Builder::new().prefix(".tmp-").tempdir_in(&root)?;
    for file in FILES {
        let path = tmp.path().join(file.path);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&path, file.contents)?;
    }
    let templates = tmp.path().join("templates");
    for t in TEMPLATES {
        for file in t.files {
            let path = templates.join(t.name).join(file.path);
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            fs_err::write(&path, file.contents)?;
        }
    }
    fs_err::write(templates.join("default.nix"), templates_nix())?;
    fs_err::write(tmp.path().join(HOST_TOOLS_FILE), host_nix)?;
    let tmp = tmp.keep();
    match fs_err::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another envy won the race with the same content.
        Err(_) if dir.join(HOST_TOOLS_FILE).is_file() => {
            let _ = fs_err::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn pkgs_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pkgs")
    }

    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }

    #[test]
    fn the_table_lists_every_file_of_pkgs() {
        let mut on_disk = Vec::new();
        walk(&pkgs_dir(), &pkgs_dir(), &mut on_disk);
        on_disk.retain(|p| p != HOST_TOOLS_FILE);
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|f| f.path.to_owned()).collect();
        listed.sort();
        assert_eq!(
            listed, on_disk,
            "update FILES in src/engine/pkgs.rs to match pkgs/"
        );
    }

    // Nix hashes a path literal's file mode; materialised copies are 0644, so the repository's
    // files must not be executable or Nix and envy would compute different store paths.
    #[test]
    fn no_package_set_file_is_executable() {
        for file in FILES {
            let mode = fs_err::metadata(pkgs_dir().join(file.path))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o111, 0, "pkgs/{} must not be executable", file.path);
        }
    }

    #[test]
    fn the_template_table_lists_every_file_of_templates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut dirs: Vec<String> = fs_err::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        dirs.sort();
        let mut names: Vec<String> = TEMPLATES.iter().map(|t| t.name.to_owned()).collect();
        names.sort();
        assert_eq!(
            names, dirs,
            "update TEMPLATES in src/engine/pkgs.rs to match templates/"
        );
        for t in TEMPLATES {
            let dir = root.join(t.name);
            let mut on_disk = Vec::new();
            walk(&dir, &dir, &mut on_disk);
            on_disk.sort();
            let mut listed: Vec<String> = t.files.iter().map(|f| f.path.to_owned()).collect();
            listed.sort();
            assert_eq!(
                listed, on_disk,
                "update TEMPLATES ({}) in src/engine/pkgs.rs",
                t.name
            );
            assert!(listed.iter().any(|p| p == "flake.nix"), "{}", t.name);
        }
        assert!(template("default").is_some());
    }

    #[test]
    fn nix_strings_escape_what_nix_interprets() {
        assert_eq!(
            nix_string("a \"b\" \\ ${x} $y\n"),
            r#""a \"b\" \\ \${x} $y\n""#
        );
    }

    #[test]
    fn materialising_twice_reuses_the_directory() {
        let cache = tempfile::tempdir().unwrap();
        let tools = HostTools {
            system: "x86_64-linux".into(),
            tools: vec![],
        };
        let a = materialize(cache.path(), &tools).unwrap();
        let b = materialize(cache.path(), &tools).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            fs_err::read_to_string(a.join("default.nix")).unwrap(),
            FILES
                .iter()
                .find(|f| f.path == "default.nix")
                .unwrap()
                .contents
        );
        assert!(a.join("templates/c-static/hello.c").is_file());
        assert!(
            fs_err::read_to_string(a.join("templates/default.nix"))
                .unwrap()
                .contains("c-static = {\n    path = ./c-static;")
        );
        assert!(
            fs_err::read_to_string(a.join(HOST_TOOLS_FILE))
                .unwrap()
                .contains("x86_64-linux")
        );
    }
}
