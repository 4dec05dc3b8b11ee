//! `envy shell` end to end on envy's own engine, with real clang, lld, musl's source and qemu,
//! and no Nix on `PATH`: static C (with pthreads) and C++ (libc++: containers, iostreams,
//! exceptions, RTTI) for the host and for aarch64, the libraries of the set (zlib, OpenSSL,
//! zstd, xz, SQLite, LevelDB) through pkg-config, the toolchain's environment, the cache (a second shell neither evaluates nor
//! builds), gc roots, `-p`, the missing-clang error, and interactive bash, zsh and fish with
//! the prompt marker.
//!
//! All tests share one envy store (`common/toolchain.rs`), so musl is built once per run.

mod common;
#[path = "common/toolchain.rs"]
mod toolchain;

use std::process::Stdio;

use toolchain::{Sandbox, assert_success, have_toolchain_prerequisites};

const HELLO_C: &str = r#"#include <stdio.h>
int main(void) { printf("hello %.1Lf\n", (long double)1.5); return 0; }
"#;

const THREADS_C: &str = r#"#include <pthread.h>
#include <stdio.h>
static int counter;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *work(void *arg) {
    for (int i = 0; i < 1000; i++) { pthread_mutex_lock(&lock); counter++; pthread_mutex_unlock(&lock); }
    return arg;
}
int main(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, work, 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], 0);
    printf("counter=%d\n", counter);
    return counter == 4000 ? 0 : 1;
}
"#;

// The C++ standard library (LLVM's libc++ for musl): containers, strings, iostreams, an
// exception thrown and caught across functions, RTTI (dynamic_cast, typeid), a global
// constructor and a thread-safe static.
const SHAPES_CC: &str = r#"#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>
struct Shape { virtual ~Shape() = default; virtual int area() const = 0; };
struct Square : Shape { int s; explicit Square(int s) : s(s) {} int area() const override { return s * s; } };
static Square global(3);
static int parse(const std::string &text) {
    if (text.empty()) throw std::invalid_argument("empty input");
    return std::stoi(text);
}
static const std::string &name() { static const std::string n = "shapes"; return n; }
int main() {
    std::vector<std::unique_ptr<Shape>> shapes;
    shapes.push_back(std::make_unique<Square>(4));
    std::map<std::string, int> areas{{"square", shapes[0]->area()}};
    bool rtti = dynamic_cast<Square *>(shapes[0].get()) != nullptr && typeid(*shapes[0]) == typeid(Square);
    std::string caught;
    try {
        parse("");
    } catch (const std::exception &e) {
        caught = e.what();
    }
    std::cout << name() << ": area=" << areas["square"] << " global=" << global.area()
              << " rtti=" << rtti << " caught=" << caught << " parsed=" << parse("42") << std::endl;
    return 0;
}
"#;

/// A sandbox, when the toolchain's prerequisites are there.
fn toolchain_sandbox() -> Option<Sandbox> {
    have_toolchain_prerequisites(&[]).then(Sandbox::new)
}

/// Compile the three programs with plain `cc`/`c++` (no flags: pthreads are part of musl's
/// libc) inside `envy shell ARGS`, describe them
/// with `file` and `ldd`, and run them (through `runner`, e.g. qemu, when given).
fn build_and_run(shell_args: &[&str], runner: &str) -> String {
    let sandbox = Sandbox::new();
    sandbox.write("hello.c", HELLO_C);
    sandbox.write("threads.c", THREADS_C);
    sandbox.write("shapes.cc", SHAPES_CC);
    let script = format!(
        r#"set -e
        cc hello.c -o hello
        cc threads.c -o threads
        c++ shapes.cc -o shapes
        for p in hello threads shapes; do
          echo "== $p"
          file -b $p
          ldd ./$p 2>&1 || true
          {runner} ./$p
        done"#
    );
    sandbox.shell_script(shell_args, &script)
}

fn assert_static_programs(out: &str, arch: &str) {
    for (program, output) in [
        ("hello", "hello 1.5"),
        ("threads", "counter=4000"),
        (
            "shapes",
            "shapes: area=16 global=9 rtti=1 caught=empty input parsed=42",
        ),
    ] {
        let section = out
            .split(&format!("== {program}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {program} in:\n{out}"));
        let section = section.split("== ").next().unwrap();
        assert!(
            section.contains("statically linked"),
            "{program}:\n{section}"
        );
        assert!(
            section.contains(arch),
            "{program} is not {arch}:\n{section}"
        );
        assert!(
            section.contains("not a dynamic executable"),
            "{program}:\n{section}"
        );
        assert!(
            section.contains(output),
            "{program} did not run:\n{section}"
        );
    }
}

#[test]
fn host_programs_are_static_musl_binaries() {
    if !have_toolchain_prerequisites(&["ldd"]) {
        return;
    }
    let out = build_and_run(&[], "");
    let arch = if cfg!(target_arch = "aarch64") {
        "ARM aarch64"
    } else {
        "x86-64"
    };
    assert_static_programs(&out, arch);
}

#[test]
fn aarch64_programs_are_static_and_run_under_qemu() {
    if !have_toolchain_prerequisites(&["ldd", "qemu-aarch64-static"]) {
        return;
    }
    let out = build_and_run(&["--target", "aarch64-linux-musl"], "qemu-aarch64-static");
    assert_static_programs(&out, "ARM aarch64");
}

#[test]
fn the_environment_is_set_the_way_nixpkgs_cc_wrapper_sets_it() {
    let Some(sandbox) = toolchain_sandbox() else {
        return;
    };
    let out = sandbox.shell_script(
        &["--target", "aarch64-linux-musl"],
        r#"printf '%s\n' "CC=$CC" "CXX=$CXX" "AR=$AR" "LD=$LD" "RANLIB=$RANLIB" "STRIP=$STRIP" "NM=$NM" \
            "TARGET=${NIX_CC_WRAPPER_TARGET_HOST_aarch64_unknown_linux_musl-}" "ENVY_SHELL=$ENVY_SHELL" \
            "HOME=$HOME" "cc=$(command -v cc)" "IN_NIX_SHELL=$IN_NIX_SHELL" "CFLAGS_SET=${NIX_CFLAGS_COMPILE+yes}""#,
    );
    let home = sandbox.home();
    for line in [
        "CC=aarch64-unknown-linux-musl-cc",
        "CXX=aarch64-unknown-linux-musl-c++",
        "AR=aarch64-unknown-linux-musl-ar",
        "LD=aarch64-unknown-linux-musl-ld",
        "RANLIB=aarch64-unknown-linux-musl-ranlib",
        "STRIP=aarch64-unknown-linux-musl-strip",
        "NM=aarch64-unknown-linux-musl-nm",
        "TARGET=1",
        "ENVY_SHELL=aarch64-unknown-linux-musl",
        &format!("HOME={}", home.display()),
        "IN_NIX_SHELL=impure",
        "CFLAGS_SET=yes",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing `{line}` in:\n{out}"
        );
    }
    let cc = out.lines().find_map(|l| l.strip_prefix("cc=")).unwrap();
    assert!(
        cc.contains("aarch64-unknown-linux-musl-clang-musl-wrapper-"),
        "{cc}"
    );
}

const ZLIB_C: &str = r#"#include <stdio.h>
#include <string.h>
#include <zlib.h>
int main(void) {
    const char *text = "static static static static static static";
    unsigned char packed[128], unpacked[128];
    uLongf n = sizeof packed, m = sizeof unpacked;
    if (compress(packed, &n, (const unsigned char *)text, strlen(text) + 1) != Z_OK) return 1;
    if (uncompress(unpacked, &m, packed, n) != Z_OK || strcmp((char *)unpacked, text)) return 2;
    printf("zlib %s round trip %lu -> %lu\n", zlibVersion(), (unsigned long)m, (unsigned long)n);
    return 0;
}
"#;

/// `-p zlib`: pkg-config (the package set's, in every shell) finds it through the
/// `PKG_CONFIG_PATH` the shell collected, and nothing of the host's; the program linked with
/// `pkg-config --static --libs zlib` is static and runs (through `runner`).
fn zlib_through_pkg_config(shell_args: &[&str], runner: &str, arch: &str) {
    let sandbox = Sandbox::new();
    sandbox.write("z.c", ZLIB_C);
    let script = format!(
        r#"set -e
        echo "PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
        echo "pkg-config=$(command -v pkg-config)"
        echo "all=$(pkg-config --list-all | cut -d' ' -f1 | tr '\n' ' ')"
        echo "libs=$(pkg-config --static --libs zlib)"
        $CC $(pkg-config --cflags zlib) z.c $(pkg-config --static --libs zlib) -o z
        file -b z
        {runner} ./z"#
    );
    let mut args = shell_args.to_vec();
    args.extend(["-p", "zlib"]);
    let out = sandbox.shell_script(&args, &script);
    let line = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
            .to_owned()
    };
    let path = line("PKG_CONFIG_PATH=");
    assert!(
        path.contains("-zlib-1.2.13/lib/pkgconfig") && !path.contains("/usr/"),
        "{out}"
    );
    assert!(line("pkg-config=").contains("-pkgconf-1.8.1/bin/"), "{out}");
    assert_eq!(
        line("all=").trim(),
        "zlib",
        "only the shell's packages: {out}"
    );
    assert!(line("libs=").trim_end().ends_with("/lib -lz"), "{out}");
    assert!(out.contains("statically linked"), "{out}");
    assert!(out.contains(arch), "{out}");
    assert!(out.contains("zlib 1.2.13 round trip 42 -> "), "{out}");
}

#[test]
fn zlib_links_statically_through_pkg_config() {
    if !have_toolchain_prerequisites(&[]) {
        return;
    }
    let arch = if cfg!(target_arch = "aarch64") {
        "ARM aarch64"
    } else {
        "x86-64"
    };
    zlib_through_pkg_config(&[], "", arch);
}

#[test]
fn zlib_links_statically_through_pkg_config_for_aarch64() {
    if !have_toolchain_prerequisites(&["qemu-aarch64-static"]) {
        return;
    }
    zlib_through_pkg_config(
        &["--target", "aarch64-linux-musl"],
        "qemu-aarch64-static",
        "ARM aarch64",
    );
}

/// `-p openssl` in the aarch64 shell: the openssl-static template's program, linked with
/// `pkg-config --static --libs openssl`, is a static aarch64 binary that runs under qemu
/// (the host's side is `init_templates`' openssl-static test).
#[test]
fn openssl_links_statically_through_pkg_config_for_aarch64() {
    if !have_toolchain_prerequisites(&["qemu-aarch64-static"]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write(
        "hello.c",
        include_str!("../templates/openssl-static/hello.c"),
    );
    let out = sandbox.shell_script(
        &["--target", "aarch64-linux-musl", "-p", "openssl"],
        r#"set -e
        echo "libs=$(pkg-config --static --libs openssl)"
        $CC $(pkg-config --cflags openssl) hello.c $(pkg-config --static --libs openssl) -o hello
        file -b hello
        qemu-aarch64-static ./hello"#,
    );
    assert!(
        out.contains(" -lssl ") && out.contains(" -lcrypto "),
        "{out}"
    );
    assert!(out.contains("ARM aarch64"), "{out}");
    assert!(out.contains("statically linked"), "{out}");
    assert!(out.contains("OpenSSL 3.0.20 "), "{out}");
    assert!(
        out.contains("e4534195ffa566981e75a038924e03ae148c8d8c85add53bc8de31abf88ada41"),
        "{out}"
    );
}

/// `-p go` in the aarch64 shell: the host's Go, pinned, with cgo on and `GOARCH=arm64`, builds
/// the go-static template's program into a static aarch64 binary that runs under qemu.
#[test]
fn go_with_cgo_builds_static_aarch64_programs() {
    if !have_toolchain_prerequisites(&["go", "qemu-aarch64-static"]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("go.mod", include_str!("../templates/go-static/go.mod"));
    sandbox.write("main.go", include_str!("../templates/go-static/main.go"));
    let out = sandbox.shell_script(
        &["--target", "aarch64-linux-musl", "-p", "go"],
        r#"set -e
        echo "go=$(command -v go) GOARCH=$GOARCH CGO_ENABLED=$CGO_ENABLED"
        go build -ldflags '-extldflags "-static"' -o hello .
        file -b hello
        qemu-aarch64-static ./hello"#,
    );
    assert!(out.contains("GOARCH=arm64 CGO_ENABLED=1"), "{out}");
    assert!(out.contains("-go-1."), "the package set's pinned go: {out}");
    assert!(out.contains("ARM aarch64"), "{out}");
    assert!(out.contains("statically linked"), "{out}");
    assert!(out.contains("Hello from C, through cgo!"), "{out}");
    assert!(out.contains("twice(21) = 42"), "{out}");
}

/// `-p go -p openssl`: cgo finds OpenSSL through `#cgo pkg-config: openssl` (the shell's
/// pkg-config and `PKG_CONFIG_PATH`) and the Go program comes out static.
#[test]
fn go_with_cgo_links_openssl_statically() {
    if !have_toolchain_prerequisites(&["go"]) {
        return;
    }
    let sandbox = Sandbox::new();
    sandbox.write("go.mod", "module example.com/ossl\n\ngo 1.19\n");
    sandbox.write(
        "main.go",
        r#"package main

/*
#cgo pkg-config: openssl
#include <openssl/crypto.h>
*/
import "C"

import "fmt"

func main() {
	fmt.Println("linked", C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION)))
}
"#,
    );
    let out = sandbox.shell_script(
        &["-p", "go", "-p", "openssl"],
        r#"set -e
        go build -ldflags '-extldflags "-static"' -o ossl .
        file -b ossl
        ./ossl"#,
    );
    assert!(out.contains("statically linked"), "{out}");
    assert!(out.contains("linked OpenSSL 3.0.20 "), "{out}");
}

#[test]
fn a_second_shell_runs_no_evaluation_and_no_build() {
    if !have_toolchain_prerequisites(&[]) {
        return;
    }
    assert!(
        std::env::split_paths(toolchain::path_without_nix()).all(|d| !d.join("nix").exists()),
        "the tests run envy without Nix on PATH"
    );
    let sandbox = Sandbox::new();
    let run = |state_dir: Option<&std::path::Path>| {
        let mut cmd = sandbox.envy(&["shell", "--", "true"]);
        if let Some(dir) = state_dir {
            cmd.env("ENVY_STATE_DIR", dir);
        }
        let out = cmd.output().unwrap();
        assert_success(&out, "envy shell -- true");
        String::from_utf8(out.stderr).unwrap()
    };
    run(None);
    let first = sandbox.stats();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].starts_with("cache=miss builds="),
        "the first shell evaluates (and builds what the store lacks): {first:?}"
    );
    // Evidence beyond envy's own counter. Evaluating needs the package set that `envy shell`
    // writes into its cache: remove it, and a warm shell must not write it again. Building
    // (or opening the store at all) needs the store's state directory, which holds the
    // database, the locks and the builder's logs: point it at a directory that does not
    // exist (the store directory, part of the cache key, stays), and a warm shell must
    // neither fail for it nor create it.
    let pkgs = sandbox.cache().join("envy/pkgs-v1");
    assert!(
        pkgs.is_dir(),
        "the first shell materialised the package set"
    );
    fs_err::remove_dir_all(&pkgs).unwrap();
    let no_state = sandbox.dir.path().join("no-store-state");
    for _ in 0..2 {
        let stderr = run(Some(&no_state));
        assert!(!stderr.contains("building '"), "{stderr}");
    }
    assert_eq!(
        sandbox.stats()[1..],
        ["cache=hit builds=0", "cache=hit builds=0"],
        "a warm `envy shell` neither evaluates nor builds"
    );
    assert!(
        !pkgs.exists(),
        "a warm `envy shell` wrote the package set (it evaluated)"
    );
    assert!(
        !no_state.exists(),
        "a warm `envy shell` opened the store (its state directory was created)"
    );
    // Without the shell cache, the environment is evaluated again but everything is in the
    // store already: the builder runs nothing.
    fs_err::remove_dir_all(sandbox.cache().join("envy/shell-v1")).unwrap();
    run(None);
    assert_eq!(sandbox.stats()[3], "cache=miss builds=0");
    assert!(pkgs.is_dir(), "a cold shell materialises the package set");
}

#[test]
fn a_cached_shell_is_a_gc_root_of_envys_store() {
    let Some(sandbox) = toolchain_sandbox() else {
        return;
    };
    let out = sandbox.shell_script(
        &[],
        r#"echo "cc=$NIX_CC"; echo "libc=$(cat "$NIX_CC/nix-support/orig-libc")""#,
    );
    let cc = out.lines().find_map(|l| l.strip_prefix("cc=")).unwrap();
    let libc = out.lines().find_map(|l| l.strip_prefix("libc=")).unwrap();
    // The root: `<state>/roots/envy-shell-<key>` → the environment's `-env` path, which
    // records the environment and refers to what it needs.
    let roots = toolchain::shared_store().state_dir.join("roots");
    let anchored = fs_err::read_dir(&roots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("envy-shell-")
        })
        .filter_map(|p| fs_err::read_to_string(p).ok())
        .any(|json| json.contains(cc));
    assert!(
        anchored,
        "no `envy-shell-*` root in `{}` keeps `{cc}`",
        roots.display()
    );
    // gc (a dry run: the store is shared with the other tests) would keep the toolchain.
    let gc = sandbox
        .envy(&["store", "gc", "--dry-run"])
        .output()
        .unwrap();
    assert_success(&gc, "envy store gc --dry-run");
    let doomed = String::from_utf8_lossy(&gc.stdout);
    for kept in [cc, libc] {
        assert!(
            !doomed.contains(kept),
            "gc would delete `{kept}`:\n{doomed}"
        );
    }
}

#[test]
fn packages_from_the_set_join_the_environment() {
    let Some(sandbox) = toolchain_sandbox() else {
        return;
    };
    let out = sandbox
        .envy(&["shell", "-p", "hello", "--", "hello"])
        .output()
        .unwrap();
    assert_success(&out, "envy shell -p hello -- hello");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Hello, world!\n");

    let bad = sandbox
        .envy(&["shell", "-p", "no-such-package", "--", "true"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("the package set has no `no-such-package'"),
        "{stderr}"
    );
}

#[test]
fn cross_packages_are_target_libraries_and_build_packages_are_tools() {
    let Some(sandbox) = toolchain_sandbox() else {
        return;
    };
    let out = sandbox.shell_script(
        &["--target", "aarch64-linux-musl", "-p", "musl", "-p", "buildPackages.hello"],
        r#"echo "flags=$NIX_CFLAGS_COMPILE $NIX_LDFLAGS"; echo "libc=$(cat "$NIX_CC/nix-support/orig-libc")"; hello"#,
    );
    let flags = out.lines().find_map(|l| l.strip_prefix("flags=")).unwrap();
    let libc = out.lines().find_map(|l| l.strip_prefix("libc=")).unwrap();
    // The aarch64 musl (the wrapper's own libc) is a build input: its headers and libraries
    // join the flags, and nothing of the build machine's does.
    let words: Vec<_> = flags.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "-isystem",
            &format!("{libc}/include"),
            &format!("-L{libc}/lib")
        ],
        "{out}"
    );
    // The build machine's hello runs natively.
    assert!(out.contains("Hello, world!"), "{out}");
}

#[test]
fn a_missing_host_clang_names_the_debian_packages() {
    if !common::have_tool("bash") {
        return;
    }
    let sandbox = Sandbox::new();
    let empty = sandbox.dir.path().join("empty-bin");
    fs_err::create_dir_all(&empty).unwrap();
    let out = sandbox
        .envy(&["shell", "--", "true"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`clang`"), "{stderr}");
    assert!(
        stderr.contains(
            "hint: install them with `apt-get install clang lld llvm libclang-rt-14-dev`"
        ),
        "{stderr}"
    );
}

#[test]
fn the_materialised_package_set_gives_the_repositorys_derivations() {
    // envy evaluates a copy of `pkgs/` written from the binary; evaluating the repository with
    // the same host tools must give the same derivation.
    let Some(sandbox) = toolchain_sandbox() else {
        return;
    };
    let out = sandbox.envy(&["shell", "--", "true"]).output().unwrap();
    assert_success(&out, "envy shell -- true");
    let root = sandbox.cache().join("envy/pkgs-v1");
    let copies: Vec<_> = fs_err::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    let copy = &copies[0];
    let drv = |expr: &str| {
        let out = sandbox.envy(&["eval", "-E", expr]).output().unwrap();
        assert_success(&out, &format!("envy eval -E {expr}"));
        String::from_utf8(out.stdout).unwrap()
    };
    let from_copy = drv(&format!(
        "(import {}/shell.nix {{ }}).drvPath",
        copy.display()
    ));
    let from_repo = drv(&format!(
        "(import {}/shell.nix {{ hostTools = import {}/host-tools.nix; }}).drvPath",
        toolchain::pkgs_dir().display(),
        copy.display()
    ));
    assert_eq!(from_copy, from_repo);
    assert!(from_copy.contains("-envy-shell-"), "{from_copy}");
}

#[test]
fn an_interactive_shell_shows_the_banner_and_the_prompt_marker() {
    if !have_toolchain_prerequisites(&["qemu-aarch64-static"]) {
        return;
    }
    let sandbox = Sandbox::new();
    // An interactive bash reading its commands from a pipe prints its prompts on stderr.
    let mut child = sandbox
        .envy(&["shell", "--target", "aarch64-linux-musl"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo \"cc=$CC\"\nexit\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "envy shell --target aarch64-linux-musl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("envy shell: aarch64-unknown-linux-musl"),
        "{stderr}"
    );
    assert!(stderr.contains("qemu-aarch64-static ./prog"), "{stderr}");
    assert!(stderr.contains("(envy) "), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cc=aarch64-unknown-linux-musl-cc"));
}

/// Drive an interactive `envy shell` in a private tmux server with `shell` as `$SHELL`, run
/// `command` in it, and return what it wrote to `out` (a file in the sandbox).
fn in_tmux(sandbox: &Sandbox, shell: &str, command: &str) -> String {
    let socket = format!(
        "envy-test-{}-{}",
        std::process::id(),
        shell.rsplit('/').next().unwrap()
    );
    let out_file = sandbox.dir.path().join("out");
    let envy = common::envy_bin();
    let mut start = sandbox.command("tmux");
    common::tmux_new_session(&mut start, &socket, "t")
        .arg(format!("{} shell", envy.display()))
        .env("SHELL", shell);
    assert_success(&start.output().unwrap(), "tmux new-session");
    let send = |text: &str| {
        let out = sandbox
            .command("tmux")
            .args(["-L", &socket, "send-keys", "-t", "t", text, "Enter"])
            .output()
            .unwrap();
        assert_success(&out, "tmux send-keys");
    };
    let channel = format!("done-{}", std::process::id());
    send(&format!(
        "{command} > {}; tmux -L {socket} wait-for -S {channel}",
        out_file.display()
    ));
    let waited = sandbox
        .command("timeout")
        .args(["300", "tmux", "-L", &socket, "wait-for", &channel])
        .output()
        .unwrap();
    let _ = sandbox
        .command("tmux")
        .args(["-L", &socket, "kill-server"])
        .output();
    assert_success(&waited, &format!("waiting for {shell} in tmux"));
    fs_err::read_to_string(&out_file).unwrap()
}

fn assert_interactive_shell(shell: &str, print_prompt: &str) {
    if !have_toolchain_prerequisites(&["tmux", shell]) {
        return;
    }
    let sandbox = Sandbox::new();
    // Warm the cache first, so the interactive start does not wait for a build.
    let warm = sandbox.envy(&["shell", "--", "true"]).output().unwrap();
    assert_success(&warm, "envy shell -- true");
    let shell_path = which::which(shell).unwrap();
    let body = format!("echo \"cc=$(command -v cc)\"; echo \"envy=$ENVY_SHELL\"; {print_prompt}");
    let group = if shell == "fish" {
        format!("begin; {body}; end")
    } else {
        format!("{{ {body}; }}")
    };
    let out = in_tmux(&sandbox, shell_path.to_str().unwrap(), &group);
    assert!(out.contains("-clang-musl-wrapper-"), "{shell}: {out}");
    assert!(
        out.contains(&format!(
            "envy={}-unknown-linux-musl",
            std::env::consts::ARCH
        )),
        "{shell}: {out}"
    );
    assert!(
        out.contains("(envy) "),
        "{shell} prompt has no marker: {out}"
    );
}

#[test]
fn interactive_bash_has_the_environment_and_the_prompt_marker() {
    assert_interactive_shell("bash", r#"echo "prompt=$PS1""#);
}

#[test]
fn interactive_zsh_has_the_environment_and_the_prompt_marker() {
    assert_interactive_shell("zsh", r#"echo "prompt=$PS1""#);
}

#[test]
fn interactive_fish_has_the_environment_and_the_prompt_marker() {
    assert_interactive_shell("fish", "echo prompt=(fish_prompt)");
}

const ZSTD_C: &str = r#"#include <stdio.h>
#include <string.h>
#include <zstd.h>
int main(void) {
    const char text[] = "envy envy envy envy envy envy envy envy";
    char packed[256], back[256];
    size_t n = ZSTD_compress(packed, sizeof packed, text, sizeof text, 3);
    if (ZSTD_isError(n)) return 1;
    size_t m = ZSTD_decompress(back, sizeof back, packed, n);
    if (ZSTD_isError(m) || m != sizeof text || memcmp(back, text, m)) return 2;
    printf("zstd %s round trip %zu -> %zu -> %zu\n", ZSTD_versionString(), sizeof text, n, m);
    return 0;
}
"#;

const XZ_C: &str = r#"#include <lzma.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    const uint8_t text[] = "envy envy envy envy envy envy envy envy";
    uint8_t packed[256], back[256];
    size_t n = 0, in = 0, m = 0;
    if (lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, text, sizeof text, packed, &n, sizeof packed) != LZMA_OK) return 1;
    uint64_t limit = UINT64_MAX;
    if (lzma_stream_buffer_decode(&limit, 0, NULL, packed, &in, n, back, &m, sizeof back) != LZMA_OK) return 2;
    if (m != sizeof text || memcmp(back, text, m)) return 3;
    printf("xz %s round trip %zu -> %zu -> %zu\n", lzma_version_string(), sizeof text, n, m);
    return 0;
}
"#;

const SQLITE_C: &str = r#"#include <sqlite3.h>
#include <stdio.h>
static int row(void *arg, int n, char **values, char **names) {
    (void)arg; (void)n; (void)names;
    printf("sqlite %s says %s\n", sqlite3_libversion(), values[0]);
    return 0;
}
int main(void) {
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 1;
    const char *sql = "create table t(x integer); insert into t values (20), (22);"
                      "select sum(x) || ' from ' || count(*) || ' rows' from t;";
    if (sqlite3_exec(db, sql, row, 0, 0) != SQLITE_OK) return 2;
    sqlite3_close(db);
    return 0;
}
"#;

/// `-p PACKAGE` (in the shell of `shell_args`): `program` (C, or C++ when `file` ends in
/// `.cc`), compiled and linked with `pkg-config --static --cflags --libs MODULE`, is a static
/// binary of `arch` that runs (through `runner`) and prints `expected`.
fn library_through_pkg_config(
    shell_args: &[&str],
    runner: &str,
    arch: &str,
    (package, module): (&str, &str),
    (file, program): (&str, &str),
    expected: &str,
) {
    let sandbox = Sandbox::new();
    sandbox.write(file, program);
    let compiler = if file.ends_with(".cc") { "$CXX" } else { "$CC" };
    let script = format!(
        r#"set -e
        echo "libs=$(pkg-config --static --libs {module})"
        {compiler} $(pkg-config --cflags {module}) {file} $(pkg-config --static --libs {module}) -o prog
        file -b prog
        {runner} ./prog"#
    );
    let mut args = shell_args.to_vec();
    args.extend(["-p", package]);
    let out = sandbox.shell_script(&args, &script);
    assert!(out.contains("statically linked"), "{out}");
    assert!(out.contains(arch), "{out}");
    assert!(out.contains(expected), "{out}");
}

fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "ARM aarch64"
    } else {
        "x86-64"
    }
}

const AARCH64: &[&str] = &["--target", "aarch64-linux-musl"];

#[test]
fn zstd_links_statically_through_pkg_config() {
    if !have_toolchain_prerequisites(&[]) {
        return;
    }
    let expected = "zstd 1.5.4 round trip 40 -> ";
    library_through_pkg_config(
        &[],
        "",
        host_arch(),
        ("zstd", "libzstd"),
        ("z.c", ZSTD_C),
        expected,
    );
}

#[test]
fn zstd_links_statically_through_pkg_config_for_aarch64() {
    if !have_toolchain_prerequisites(&["qemu-aarch64-static"]) {
        return;
    }
    let expected = "zstd 1.5.4 round trip 40 -> ";
    let runner = "qemu-aarch64-static";
    library_through_pkg_config(
        AARCH64,
        runner,
        "ARM aarch64",
        ("zstd", "libzstd"),
        ("z.c", ZSTD_C),
        expected,
    );
}

#[test]
fn xz_links_statically_through_pkg_config() {
    if !have_toolchain_prerequisites(&[]) {
        return;
    }
    let expected = "xz 5.4.1 round trip 40 -> ";
    library_through_pkg_config(
        &[],
        "",
        host_arch(),
        ("xz", "liblzma"),
        ("x.c", XZ_C),
        expected,
    );
}

#[test]
fn xz_links_statically_through_pkg_config_for_aarch64() {
    if !have_toolchain_prerequisites(&["qemu-aarch64-static"]) {
        return;
    }
    let expected = "xz 5.4.1 round trip 40 -> ";
    let runner = "qemu-aarch64-static";
    library_through_pkg_config(
        AARCH64,
        runner,
        "ARM aarch64",
        ("xz", "liblzma"),
        ("x.c", XZ_C),
        expected,
    );
}

#[test]
fn sqlite_links_statically_through_pkg_config() {
    if !have_toolchain_prerequisites(&["tclsh"]) {
        return;
    }
    let expected = "sqlite 3.40.1 says 42 from 2 rows";
    library_through_pkg_config(
        &[],
        "",
        host_arch(),
        ("sqlite", "sqlite3"),
        ("s.c", SQLITE_C),
        expected,
    );
}

#[test]
fn sqlite_links_statically_through_pkg_config_for_aarch64() {
    if !have_toolchain_prerequisites(&["tclsh", "qemu-aarch64-static"]) {
        return;
    }
    let expected = "sqlite 3.40.1 says 42 from 2 rows";
    let runner = "qemu-aarch64-static";
    library_through_pkg_config(
        AARCH64,
        runner,
        "ARM aarch64",
        ("sqlite", "sqlite3"),
        ("s.c", SQLITE_C),
        expected,
    );
}

/// LevelDB, a C++ library built with CMake against the set's libc++, links statically into a
/// C++ program (the cpp-static template's), which writes, reads back and iterates a database.
fn leveldb_program(shell_args: &[&str], runner: &str, arch: &str) {
    library_through_pkg_config(
        shell_args,
        runner,
        arch,
        ("leveldb", "leveldb"),
        ("main.cc", include_str!("../templates/cpp-static/main.cc")),
        "leveldb 1.23: greeting = hello from leveldb; keys: greeting language",
    );
}

#[test]
fn leveldb_links_statically_with_libcxx() {
    if !have_toolchain_prerequisites(&["cmake"]) {
        return;
    }
    leveldb_program(&[], "", host_arch());
}

#[test]
fn leveldb_links_statically_with_libcxx_for_aarch64() {
    if !have_toolchain_prerequisites(&["cmake", "qemu-aarch64-static"]) {
        return;
    }
    leveldb_program(AARCH64, "qemu-aarch64-static", "ARM aarch64");
}

/// Regression: clang adds the host's library directories (`/lib/x86_64-linux-gnu`, `/usr/lib`,
/// gcc's) to every link, even with `-nostdlib`, so `cc z.c -lz` in a shell without zlib
/// silently linked Debian's glibc-built `libz.a` into a "musl" program. The wrapper's sysroot
/// (musl) keeps them out: the link fails.
#[test]
fn host_libraries_never_leak_into_links() {
    let Some(sandbox) = toolchain_sandbox() else {
        return;
    };
    sandbox.write(
        "z.c",
        "int deflate(void);\nint main(void) { return deflate != 0 ? 0 : 1; }\n",
    );
    let out = sandbox
        .envy(&["shell", "--", "cc", "z.c", "-lz", "-o", "z"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "linked against a host library: {stderr}"
    );
    assert!(stderr.contains("unable to find library -lz"), "{stderr}");
}
