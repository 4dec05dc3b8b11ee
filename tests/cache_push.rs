//! Automatic push to a team cache, with a real nginx taking PUTs (Debian's WebDAV module):
//! envy builds a derivation chain with `ENVY_PUSH_TO` set, the cache gets signed narinfos and
//! NARs, and a second envy with a fresh store and real Nix 2.8 both substitute the chain
//! from it without building. A cache that refuses (403) or is not there (a closed port)
//! leaves the build successful with a warning, and `envy store push` uploads the leftovers
//! later. `scripts/ci-example.sh` (the CI recipe) runs both sides against nginx, for a
//! `.nix` file and a flake project's devShell (`envy print-dev-env`).
//!
//! Every builder of the chain fails unless a marker file exists, and the marker is removed
//! once the first envy has built: anything built rather than substituted fails the test.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::http_cache::{Access, HttpServer, free_port};
use common::{assert_success, envy_bin};

const CHAIN: &str = r#"
let
  mk = name: dep: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" "test -e @MARKER@ || { echo 'built instead of substituted' >&2; exit 1; }; mkdir $out; echo ${name} > $out/name; echo ${dep} > $out/dep" ];
  };
  a = mk "push-a" "none";
  b = mk "push-b" a;
in mk "push-c" b
"#;

/// A project whose devShell needs the chain and a tool of its own (whose builder fails too
/// unless the marker exists).
const SHELL_FLAKE: &str = r#"{
  outputs = { self }:
    let
      c = import ./chain.nix;
      tool = derivation {
        name = "push-shell-tool";
        system = "x86_64-linux";
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [ "-c" "test -e @MARKER@ || { echo 'built instead of substituted' >&2; exit 1; }; mkdir -p $out/bin; echo ${c} > $out/uses" ];
      };
    in {
      devShells.x86_64-linux.default = derivation {
        name = "push-shell";
        system = "x86_64-linux";
        builder = "/bin/bash";
        args = [ "-c" "echo 'a shell is not built' >&2; exit 1" ];
        outputs = [ "out" ];
        PATH = "/usr/bin:/bin";
        buildInputs = [ tool ];
      };
    };
}
"#;

/// One machine's worth of directories: a store directory shared by every envy (and Nix)
/// here, states, a key pair and the chain.
struct World {
    root: tempfile::TempDir,
    public_key: String,
}

impl World {
    fn new() -> World {
        let root = tempfile::Builder::new()
            .prefix("envy-push-")
            .tempdir()
            .unwrap();
        let r = root.path();
        for d in [
            "home",
            "config",
            "data",
            "cache",
            "work/shell",
            "cache-root",
        ] {
            fs_err::create_dir_all(r.join(d)).unwrap();
        }
        let marker = r.join("may-build");
        let chain = CHAIN.replace("@MARKER@", marker.to_str().unwrap());
        fs_err::write(r.join("work/chain.nix"), &chain).unwrap();
        fs_err::write(r.join("work/shell/chain.nix"), &chain).unwrap();
        fs_err::write(
            r.join("work/shell/flake.nix"),
            SHELL_FLAKE.replace("@MARKER@", marker.to_str().unwrap()),
        )
        .unwrap();
        fs_err::write(r.join("may-build"), "").unwrap();
        let mut world = World {
            root,
            public_key: String::new(),
        };
        let out = world
            .envy("state-keys")
            .args(["store", "generate-key", "envy-test-push-1"])
            .arg(world.path("cache.sec"))
            .output()
            .unwrap();
        assert_success(&out, "envy store generate-key");
        world.public_key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(
            world.public_key.starts_with("envy-test-push-1:"),
            "{}",
            world.public_key
        );
        world
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn store_dir(&self) -> PathBuf {
        self.path("store")
    }

    /// `program` with only this world's environment (envy over the shared store directory
    /// with the state directory `state`), in `work/`.
    fn command(&self, program: &Path, state: &str) -> Command {
        let mut cmd = common::build::world_command(program, self.root.path(), state);
        cmd.env("ENVY_SANDBOX", "false");
        cmd
    }

    fn envy(&self, state: &str) -> Command {
        self.command(&envy_bin(), state)
    }

    /// `envy build` of the chain, pushing to `url` (signed).
    fn build_pushing(&self, state: &str, url: &str) -> Output {
        self.envy(state)
            .env("ENVY_PUSH_TO", url)
            .env("ENVY_PUSH_SECRET_KEY_FILE", self.path("cache.sec"))
            .args(["build", "--no-out-link", "chain.nix"])
            .output()
            .unwrap()
    }

    /// From here on every builder of the chain fails.
    fn forbid_builds(&self) {
        fs_err::remove_file(self.path("may-build")).unwrap();
    }

    /// Empty the store directory and drop `state`: the next envy starts from nothing.
    fn wipe_store(&self, state: &str) {
        for d in [self.store_dir(), self.path(state)] {
            if d.exists() {
                let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&d).status();
                fs_err::remove_dir_all(&d).unwrap();
            }
        }
    }

    /// The `.narinfo` files of the cache directory.
    fn narinfos(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in fs_err::read_dir(self.path("cache-root")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "narinfo") {
                out.push(fs_err::read_to_string(&p).unwrap());
            }
        }
        out
    }

    /// The paths recorded as not pushed.
    fn pending(&self, state: &str) -> Vec<String> {
        fs_err::read_to_string(self.path(state).join("push-v1/pending"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A fresh envy (empty store) gets the chain from `url` with `-j 0` (nothing may build
    /// locally), and builds nothing: no build log is written. It pushes too, to another
    /// cache, and pushes nothing: substituted paths are not pushed.
    fn substitute_fresh(&self, url: &str, expected_out: &str) {
        self.wipe_store("state-dev");
        let elsewhere = self.path("not-pushed-to");
        let out = self
            .envy("state-dev")
            .env("ENVY_PUSH_TO", format!("file://{}", elsewhere.display()))
            .env("ENVY_SUBSTITUTERS", url)
            .env("ENVY_TRUSTED_PUBLIC_KEYS", &self.public_key)
            .args(["build", "-j", "0", "--no-out-link", "chain.nix"])
            .output()
            .unwrap();
        assert_success(&out, "envy build from the cache");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected_out);
        let logs = self.path("state-dev/log/drvs");
        assert!(
            !logs.exists() || fs_err::read_dir(&logs).unwrap().next().is_none(),
            "the fresh envy built something"
        );
        assert!(!elsewhere.exists(), "substituted paths were pushed");
        assert!(!stderr(&out).contains("pushed"), "{}", stderr(&out));
        let name = Path::new(expected_out).join("name");
        assert_eq!(fs_err::read_to_string(name).unwrap(), "push-c\n");
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Store paths are read-only: let the temporary directory go as a non-root user too.
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(self.root.path())
            .status();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn built_paths_are_pushed_and_a_fresh_envy_and_nix_substitute_them() {
    let w = World::new();
    let Some(server) = HttpServer::serve_nginx(&w.path("cache-root"), Access::Writable) else {
        return;
    };
    let out = w.build_pushing("state-ci", &server.url);
    assert_success(&out, "envy build with ENVY_PUSH_TO");
    let c = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    let err = stderr(&out);
    assert!(
        err.contains(&format!("pushed 3 paths to `{}`", server.url)),
        "{err}"
    );
    assert!(!err.contains("warning"), "{err}");
    // Written the way Nix writes an HTTP cache: PUTs of nix-cache-info, NARs, narinfos.
    let requests = server.requests();
    for put in ["PUT /nix-cache-info ", "PUT /nar/", ".narinfo HTTP"] {
        assert!(requests.contains(put), "no `{put}` in:\n{requests}");
    }
    let narinfos = w.narinfos();
    assert_eq!(narinfos.len(), 3, "a, b and c; no .drv");
    for n in &narinfos {
        assert!(n.contains("Sig: envy-test-push-1:"), "{n}");
        assert!(n.contains("Deriver: "), "{n}");
    }
    assert!(
        fs_err::read_to_string(w.path("cache-root/nix-cache-info"))
            .unwrap()
            .contains(&format!("StoreDir: {}", w.store_dir().display()))
    );
    assert!(w.pending("state-ci").is_empty());

    w.forbid_builds();
    w.substitute_fresh(&server.url, &c);

    // Real Nix 2.8, its own files (`real=`) under the same store directory, trusting the key.
    if !common::have_tool("nix-store") {
        return;
    }
    let nix = common::nix::PrivateNix::new("envy-push-nix-");
    let store = format!(
        "local?store={}&real={}&state={}&log={}",
        w.store_dir().display(),
        nix.root.path().join("real").display(),
        nix.root.path().join("state").display(),
        nix.root.path().join("log").display()
    );
    let out = nix
        .command("nix-store")
        .args(["--store", &store, "--realise", &c])
        // A Nix cache store takes its store directory from the URL (`?store=`); the cache's
        // `nix-cache-info` must agree.
        .args([
            "--option",
            "substituters",
            &format!("{}?store={}", server.url, w.store_dir().display()),
        ])
        .args(["--option", "trusted-public-keys", &w.public_key])
        .output()
        .unwrap();
    assert_success(&out, "nix-store --realise from envy's pushes");
    let base = Path::new(&c).file_name().unwrap();
    assert_eq!(
        fs_err::read_to_string(nix.root.path().join("real").join(base).join("name")).unwrap(),
        "push-c\n"
    );
    let out = nix
        .command("nix-store")
        .args(["--store", &store, "--query", "--requisites", &c])
        .output()
        .unwrap();
    assert_success(&out, "nix-store --query --requisites");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn a_refusing_cache_leaves_the_build_alone_and_store_push_finishes_later() {
    let w = World::new();
    let port = free_port();
    let Some(server) =
        HttpServer::serve_nginx_on(&w.path("cache-root"), Access::ForbidWrites, port)
    else {
        return;
    };
    let url = server.url.clone();
    let out = w.build_pushing("state-ci", &url);
    assert_success(&out, "envy build with a cache answering 403");
    let c = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    let err = stderr(&out);
    assert!(err.contains("envy: warning: cannot push `"), "{err}");
    assert!(err.contains("HTTP status 403"), "{err}");
    assert!(
        err.contains(&format!("hint: run `envy store push {url}`")),
        "{err}"
    );
    assert!(w.narinfos().is_empty());
    let pending = w.pending("state-ci");
    assert_eq!(pending.len(), 3, "{pending:?}");
    assert!(pending.iter().all(|l| l.starts_with(&format!("{url} "))));
    drop(server);

    // The same URL, now taking PUTs: the leftovers go up, and are forgotten.
    let server = HttpServer::serve_nginx_on(&w.path("cache-root"), Access::Writable, port)
        .expect("nginx ran a moment ago");
    let out = w
        .envy("state-ci")
        .args(["store", "push", "--json", "--secret-key"])
        .arg(w.path("cache.sec"))
        .arg(&server.url)
        .output()
        .unwrap();
    assert_success(&out, "envy store push");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["pushed"].as_array().unwrap().len(), 3, "{summary}");
    assert!(summary["failed"].is_null(), "{summary}");
    assert!(
        summary["pushed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == c.as_str())
    );
    assert!(w.pending("state-ci").is_empty());
    assert_eq!(w.narinfos().len(), 3);

    // Nothing left: a second push has nothing to do.
    let out = w
        .envy("state-ci")
        .args(["store", "push", "--json"])
        .arg(&server.url)
        .output()
        .unwrap();
    assert_success(&out, "envy store push (nothing left)");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["pushed"].as_array().unwrap().len(), 0, "{summary}");

    w.forbid_builds();
    w.substitute_fresh(&server.url, &c);
}

#[test]
fn a_cache_that_is_not_there_leaves_the_build_alone_and_store_push_finishes_later() {
    let w = World::new();
    if common::http_cache::nginx().is_none() && !common::have_tool("nginx") {
        return;
    }
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = w.build_pushing("state-ci", &url);
    assert_success(&out, "envy build with nothing listening at the cache");
    let err = stderr(&out);
    assert!(err.contains("envy: warning: cannot push `"), "{err}");
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(w.pending("state-ci").len(), 3);

    // `--all-since` finds what was built here; another cache gets it too.
    let other = w.path("other-cache");
    let out = w
        .envy("state-ci")
        .args(["store", "push", "--json", "--all-since", "1h"])
        .arg(format!("file://{}", other.display()))
        .output()
        .unwrap();
    assert_success(&out, "envy store push --all-since");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["pushed"].as_array().unwrap().len(), 3, "{summary}");
    let err = stderr(&out);
    assert!(err.contains("not signed"), "no key given: {err}");

    let Some(server) = HttpServer::serve_nginx_on(&w.path("cache-root"), Access::Writable, port)
    else {
        return;
    };
    let out = w
        .envy("state-ci")
        .env("ENVY_PUSH_SECRET_KEY_FILE", w.path("cache.sec"))
        .args(["store", "push"])
        .arg(&server.url)
        .output()
        .unwrap();
    assert_success(&out, "envy store push");
    assert!(stderr(&out).contains("pushed 3 paths"), "{}", stderr(&out));
    assert!(w.pending("state-ci").is_empty());
    assert!(
        w.narinfos()
            .iter()
            .all(|n| n.contains("Sig: envy-test-push-1:"))
    );
}

#[test]
fn the_ci_example_builds_and_pushes_and_a_developer_substitutes() {
    let w = World::new();
    let Some(server) = HttpServer::serve_nginx(&w.path("cache-root"), Access::Writable) else {
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ci-example.sh");
    let run = |mode: &str, state: &str| {
        w.command(Path::new("sh"), state)
            .arg(&script)
            .arg(mode)
            .env("ENVY", envy_bin())
            .env("CACHE_URL", &server.url)
            .env("CACHE_PUBLIC_KEY", &w.public_key)
            .env("CACHE_SECRET_KEY_FILE", w.path("cache.sec"))
            .env("TARGET", "chain.nix")
            .env("SHELL_PROJECT", w.path("work/shell"))
            .output()
            .unwrap()
    };
    let out = run("ci", "state-ci");
    assert_success(&out, "scripts/ci-example.sh ci");
    let c = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // The build pushes the chain, the devShell its own tool (the chain is there already).
    let err = stderr(&out);
    assert!(err.contains("pushed 3 paths"), "{err}");
    assert!(err.contains("pushed 1 path "), "{err}");
    assert_eq!(w.narinfos().len(), 4);

    w.forbid_builds();
    w.wipe_store("state-ci");
    let out = run("dev", "state-dev");
    assert_success(&out, "scripts/ci-example.sh dev");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), c);
    assert!(
        !w.path("state-dev/log/drvs").exists(),
        "the developer built something"
    );
}
