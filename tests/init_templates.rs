//! `envy init` and the templates embedded in envy: listing them, never overwriting a file,
//! `git add` in a work tree, and each template end to end: `envy init` in an empty git
//! directory, `envy allow`, the project's environment from `envy print-dev-env` in bash,
//! `make`, then `file` says the program is statically linked and it runs (aarch64 under
//! qemu). The templates are also the `templates` output of the `envy` package-set flake, which
//! real Nix 2.8 (the oracle) can `nix flake init` from; `envy flake init -t FLAKE#NAME` takes
//! that flake's templates and any other flake's, writing what `nix flake init` writes.
//!
//! The toolchain tests' shared envy store (`common/toolchain.rs`) keeps musl and the compiler
//! wrappers built once per run.

mod common;
#[path = "common/toolchain.rs"]
mod toolchain;

use std::path::Path;
use std::process::Output;

use toolchain::{Sandbox, assert_success, have_toolchain_prerequisites};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `git ARGS` in `dir`, which must succeed; its stdout.
fn git(sandbox: &Sandbox, dir: &Path, args: &[&str]) -> String {
    let out = sandbox
        .command("git")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert_success(&out, &format!("git {args:?}"));
    stdout(&out)
}

#[test]
fn init_lists_the_templates() {
    let sandbox = Sandbox::new();
    let out = sandbox.envy(&["init", "--list"]).output().unwrap();
    assert_success(&out, "envy init --list");
    let text = stdout(&out);
    for name in [
        "default",
        "c-static",
        "cpp-static",
        "cross-aarch64",
        "openssl-static",
        "go-static",
    ] {
        assert!(
            text.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} missing from:\n{text}"
        );
    }
    let out = sandbox
        .envy(&["init", "--list", "--json"])
        .output()
        .unwrap();
    assert_success(&out, "envy init --list --json");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["c-static"]["description"]
            .as_str()
            .unwrap()
            .contains("static"),
        "{json}"
    );
    assert!(
        json["c-static"]["welcomeText"]
            .as_str()
            .unwrap()
            .contains("envy allow"),
        "{json}"
    );
}

#[test]
fn init_never_overwrites_a_file_and_writes_nothing_on_conflict() {
    let sandbox = Sandbox::new();
    let dir = sandbox.work().join("proj");
    fs_err::create_dir_all(&dir).unwrap();
    fs_err::write(dir.join("hello.c"), "mine\n").unwrap();
    fs_err::write(dir.join("Makefile"), "mine too\n").unwrap();
    let out = sandbox
        .envy(&["init", "-t", "c-static", "proj"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("would overwrite 2 existing files"), "{err}");
    assert!(
        err.contains(&dir.join("hello.c").display().to_string()),
        "{err}"
    );
    assert!(
        err.contains(&dir.join("Makefile").display().to_string()),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        fs_err::read_to_string(dir.join("hello.c")).unwrap(),
        "mine\n"
    );
    assert!(
        !dir.join("flake.nix").exists(),
        "nothing is written on conflict"
    );

    // An unknown template names the known ones.
    let out = sandbox.envy(&["init", "-t", "cobol"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("there is no template `cobol`") && stderr(&out).contains("c-static"),
        "{}",
        stderr(&out)
    );

    // Outside a git work tree nothing is added; running init again with the files unchanged
    // is fine (identical files are not conflicts).
    let fresh = sandbox.work().join("fresh");
    for _ in 0..2 {
        let out = sandbox
            .envy(&["init", "-t", "cross-aarch64", "fresh"])
            .output()
            .unwrap();
        assert_success(&out, "envy init -t cross-aarch64 fresh");
        assert!(stdout(&out).contains("envy allow"), "{}", stdout(&out));
    }
    assert!(fresh.join("flake.nix").is_file());
    assert!(!fresh.join(".git").exists());
}

/// `envy init -t TEMPLATE` in a fresh git repository, `envy allow`, then SCRIPT in bash with
/// the project's environment (`envy print-dev-env`); SCRIPT's stdout.
fn init_allow_and_run(template: &str, script: &str) -> String {
    let sandbox = Sandbox::new();
    let dir = sandbox.work().join("proj");
    fs_err::create_dir_all(&dir).unwrap();
    git(&sandbox, &dir, &["init", "-q"]);
    let out = sandbox
        .envy(&["init", "-t", template])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_success(&out, &format!("envy init -t {template}"));
    assert!(
        stdout(&out).contains("Next: `envy allow`"),
        "{}",
        stdout(&out)
    );
    // Every file of the template is staged (flakes in git see only tracked files).
    let status = git(&sandbox, &dir, &["status", "--porcelain"]);
    assert!(status.contains("A  flake.nix"), "{status}");
    assert!(
        status.lines().all(|l| l.starts_with("A  ")),
        "not everything is staged:\n{status}"
    );
    let allow = sandbox.envy(&["allow"]).current_dir(&dir).output().unwrap();
    assert_success(&allow, "envy allow");
    let env = sandbox
        .envy(&["print-dev-env"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_success(&env, "envy print-dev-env");
    fs_err::write(sandbox.dir.path().join("env.sh"), &env.stdout).unwrap();
    let out = sandbox
        .command("bash")
        .current_dir(&dir)
        .arg("-c")
        .arg(format!(
            "set -e; source {}; {script}",
            sandbox.dir.path().join("env.sh").display()
        ))
        .output()
        .unwrap();
    assert_success(&out, &format!("{template}: {script}"));
    stdout(&out)
}

#[test]
fn c_static_template_builds_a_static_program_that_runs() {
    if !have_toolchain_prerequisites(&["git", "make"]) {
        return;
    }
    let out = init_allow_and_run("c-static", "make run; file -b hello");
    assert!(out.contains("Hello from a static C program!"), "{out}");
    assert!(out.contains("statically linked"), "{out}");
    let arch = if cfg!(target_arch = "aarch64") {
        "ARM aarch64"
    } else {
        "x86-64"
    };
    assert!(out.contains(arch), "{out}");
}

#[test]
fn cpp_static_template_links_leveldb_and_libcxx_statically() {
    if !have_toolchain_prerequisites(&["git", "make", "cmake"]) {
        return;
    }
    let out = init_allow_and_run("cpp-static", "make run; file -b hello");
    assert!(
        out.contains("leveldb 1.23: greeting = hello from leveldb; keys: greeting language"),
        "{out}"
    );
    assert!(out.contains("statically linked"), "{out}");
    let arch = if cfg!(target_arch = "aarch64") {
        "ARM aarch64"
    } else {
        "x86-64"
    };
    assert!(out.contains(arch), "{out}");
}

#[test]
fn cross_aarch64_template_builds_a_static_aarch64_program_that_runs_under_qemu() {
    if !have_toolchain_prerequisites(&["git", "make", "qemu-aarch64-static"]) {
        return;
    }
    let out = init_allow_and_run("cross-aarch64", "make run; file -b hello");
    assert!(
        out.contains("Hello from a static C program on aarch64!"),
        "{out}"
    );
    assert!(out.contains("ARM aarch64"), "{out}");
    assert!(out.contains("statically linked"), "{out}");
}

#[test]
fn openssl_static_template_links_openssl_statically_through_pkg_config() {
    if !have_toolchain_prerequisites(&["git", "make"]) {
        return;
    }
    let out = init_allow_and_run(
        "openssl-static",
        "make run; file -b hello; openssl version; file -b \"$(command -v openssl)\"; openssl version -d",
    );
    assert!(out.contains("OpenSSL 3.0.20 "), "{out}");
    assert!(
        out.contains(
            "sha256(\"hello, static world\") = e4534195ffa566981e75a038924e03ae148c8d8c85add53bc8de31abf88ada41"
        ),
        "{out}"
    );
    assert_eq!(
        out.matches("statically linked").count(),
        2,
        "the program and the shell's `openssl` are static: {out}"
    );
    assert!(out.contains("OPENSSLDIR: \"/etc/ssl\""), "{out}");
}

#[test]
fn go_static_template_builds_a_static_cgo_program_that_runs() {
    if !have_toolchain_prerequisites(&["git", "make", "go"]) {
        return;
    }
    let out = init_allow_and_run(
        "go-static",
        "echo \"CGO_ENABLED=$CGO_ENABLED\"; make run; file -b hello",
    );
    assert!(out.contains("CGO_ENABLED=1"), "{out}");
    assert!(out.contains("Hello from C, through cgo!"), "{out}");
    assert!(out.contains("twice(21) = 42"), "{out}");
    assert!(out.contains("statically linked"), "{out}");
}

#[test]
fn default_template_gives_the_package_sets_shell() {
    if !have_toolchain_prerequisites(&["git"]) {
        return;
    }
    let out = init_allow_and_run("default", "command -v cc; echo \"CC=$CC\"");
    assert!(out.contains("envy: development shell for"), "{out}");
    assert!(out.contains("clang-musl-wrapper-"), "{out}");
    assert!(out.contains("CC=cc"), "{out}");
}

/// The `templates` output of the package-set flake, as `envy flake show` and Nix see it:
/// `nix flake init -t <envy's package set>#c-static` writes the same files as `envy init`.
#[test]
fn the_package_set_flake_exposes_the_templates_to_nix() {
    if !have_toolchain_prerequisites(&[]) || !toolchain::have_nix() {
        return;
    }
    let sandbox = Sandbox::new();
    let out = sandbox
        .envy(&["flake", "show", "--json", "envy"])
        .output()
        .unwrap();
    assert_success(&out, "envy flake show --json envy");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["templates"]["c-static"]["type"], "template",
        "{shown}"
    );
    assert!(
        shown["templates"]["c-static"]["description"]
            .as_str()
            .unwrap()
            .contains("static"),
        "{shown}"
    );
    // The materialised set, under this sandbox's cache.
    let root = sandbox.cache().join("envy/pkgs-v1");
    let pkgs = fs_err::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("templates/default.nix").is_file())
        .expect("the package set was materialised");
    let by_nix = sandbox.work().join("by-nix");
    let by_envy = sandbox.work().join("by-envy");
    fs_err::create_dir_all(&by_nix).unwrap();
    let out = sandbox
        .nix_command("nix")
        .current_dir(&by_nix)
        .args(["flake", "init", "-t"])
        .arg(format!("path:{}#c-static", pkgs.display()))
        .output()
        .unwrap();
    assert_success(&out, "nix flake init -t envy#c-static");
    assert!(
        stderr(&out).contains("statically linked C program"),
        "Nix prints the welcome text: {}",
        stderr(&out)
    );
    let out = sandbox
        .envy(&["init", "-t", "c-static", "by-envy"])
        .output()
        .unwrap();
    assert_success(&out, "envy init -t c-static by-envy");
    for file in ["flake.nix", "Makefile", "hello.c"] {
        assert_eq!(
            fs_err::read_to_string(by_nix.join(file)).unwrap(),
            fs_err::read_to_string(by_envy.join(file)).unwrap(),
            "{file}"
        );
    }
}

/// A flake with a `templates` output, written under `dir`: `service` (a file, an executable
/// script in a subdirectory, a welcome text) and `default`, the same.
fn templates_flake(dir: &Path) {
    fs_err::create_dir_all(dir.join("tpl/sub")).unwrap();
    fs_err::write(
        dir.join("flake.nix"),
        r##"{
  description = "a flake with templates";
  outputs = { self }: {
    templates.service = {
      path = ./tpl;
      description = "a small service";
      welcomeText = "# A small service\n\nRun `sub/run.sh`.\n";
    };
    templates.default = self.templates.service;
  };
}
"##,
    )
    .unwrap();
    fs_err::write(dir.join("tpl/README"), "a service\n").unwrap();
    fs_err::write(dir.join("tpl/sub/run.sh"), "#!/bin/sh\necho running\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(
        dir.join("tpl/sub/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

/// Every regular file under `dir` (relative path, contents), sorted.
fn tree(dir: &Path) -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in fs_err::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, fs_err::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `envy flake init -t FLAKE#NAME` copies any flake's template: the files (and an executable
/// bit), `git add` in a work tree, the welcome text; the default template without `#NAME`;
/// never overwriting (nothing written on conflict); an unknown name says where it looked.
/// Real Nix 2.8's `nix flake init` writes the same files, when it is here.
#[test]
fn flake_init_copies_any_flakes_template() {
    let sandbox = Sandbox::new();
    let src = sandbox.work().join("src");
    templates_flake(&src);
    let reference = format!("path:{}#service", src.display());

    let proj = sandbox.work().join("proj");
    fs_err::create_dir_all(&proj).unwrap();
    git(&sandbox, &proj, &["init", "-q"]);
    let out = sandbox
        .envy(&["flake", "init", "-t", &reference])
        .current_dir(&proj)
        .output()
        .unwrap();
    assert_success(&out, "envy flake init -t …#service");
    assert!(
        stdout(&out).contains("# A small service"),
        "the welcome text: {}",
        stdout(&out)
    );
    assert_eq!(
        tree(&proj),
        vec![
            ("README".to_owned(), "a service\n".to_owned()),
            (
                "sub/run.sh".to_owned(),
                "#!/bin/sh\necho running\n".to_owned()
            ),
        ]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = fs_err::metadata(proj.join("sub/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "the script stays executable");
    let status = git(&sandbox, &proj, &["status", "--porcelain"]);
    assert_eq!(status, "A  README\nA  sub/run.sh\n");

    // Without `#NAME`: `templates.default`, into a directory given as an argument.
    let out = sandbox
        .envy(&["flake", "init", "-t", &src.display().to_string(), "other"])
        .output()
        .unwrap();
    assert_success(&out, "envy flake init -t FLAKE other");
    assert_eq!(tree(&sandbox.work().join("other")), tree(&proj));

    // A changed file is never overwritten, and nothing else is written either.
    fs_err::write(proj.join("README"), "mine\n").unwrap();
    fs_err::remove_file(proj.join("sub/run.sh")).unwrap();
    let out = sandbox
        .envy(&["flake", "init", "-t", &reference])
        .current_dir(&proj)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("would overwrite 1 existing file") && stderr(&out).contains("hint:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs_err::read_to_string(proj.join("README")).unwrap(),
        "mine\n"
    );
    assert!(
        !proj.join("sub/run.sh").exists(),
        "nothing written on conflict"
    );

    // An unknown template: where envy looked, and how to see what there is.
    let out = sandbox
        .envy(&[
            "flake",
            "init",
            "-t",
            &format!("path:{}#cobol", src.display()),
        ])
        .current_dir(sandbox.work())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("`templates.cobol`, `cobol`"), "{err}");
    assert!(err.contains("envy flake show"), "{err}");

    // The oracle: Nix 2.8 writes the same files (it drops the executable bit).
    if toolchain::have_nix() {
        let by_nix = sandbox.work().join("by-nix");
        fs_err::create_dir_all(&by_nix).unwrap();
        let out = sandbox
            .nix_command("nix")
            .current_dir(&by_nix)
            .args(["flake", "init", "-t", &reference])
            .output()
            .unwrap();
        assert_success(&out, "nix flake init -t …#service");
        assert_eq!(tree(&by_nix), tree(&sandbox.work().join("other")));
    }
}

/// `envy flake init -t envy#NAME` takes the package-set flake's templates: the same files as
/// `envy init -t NAME`.
#[test]
fn flake_init_takes_the_package_set_flakes_templates() {
    if !have_toolchain_prerequisites(&[]) {
        return;
    }
    let sandbox = Sandbox::new();
    let out = sandbox
        .envy(&["flake", "init", "-t", "envy#cpp-static", "by-flake"])
        .output()
        .unwrap();
    assert_success(&out, "envy flake init -t envy#cpp-static");
    assert!(stdout(&out).contains("LevelDB"), "{}", stdout(&out));
    let out = sandbox
        .envy(&["init", "-t", "cpp-static", "by-init"])
        .output()
        .unwrap();
    assert_success(&out, "envy init -t cpp-static");
    let by_flake = tree(&sandbox.work().join("by-flake"));
    assert_eq!(by_flake.len(), 3, "{by_flake:?}");
    assert_eq!(by_flake, tree(&sandbox.work().join("by-init")));
}
