//! "A cache.nixos.org of our own": a binary cache that real Nix 2.8 filled for one store
//! directory, served over HTTP by a real server (nginx from Debian; `python3 -m http.server`
//! when nginx is absent and tools are not required), and the nixpkgs-shaped flake whose
//! closure it holds.
//!
//! The flake has a devShell shaped like
//! nixpkgs' `mkShell`: a `bash` builder, `stdenv` (whose `setup` refers to a bootstrap
//! tools path), `buildInputs = [ hello ]`, a `shellHook`. Every builder in it fails unless the
//! fixture's marker file exists, and the marker exists only while Nix fills the cache: in a
//! test, a derivation that is built instead of substituted fails the test. `uncached` is a
//! devShell whose inputs are 12 derivations the cache does not have.
//!
//! The fixture is made once per test binary (a `OnceLock`), under
//! `target/tmp/http-cache-v1/<pid>` (older runs' directories are removed). Its store
//! directory `store/` is left empty: the tests that store there (through a daemon, or envy's
//! own store) take [`StoreGuard`] and start from an empty directory.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The filled cache and the flake.
pub struct CacheFixture {
    pub dir: PathBuf,
    /// The store directory the cache is for.
    pub store_dir: PathBuf,
    /// The cache's files (`nix-cache-info`, `*.narinfo`, `nar/`).
    pub cache: PathBuf,
    /// `envy-test-cache-1:…`, the key the cache is signed with.
    pub public_key: String,
    /// The flake (Nix 2.8 writes no `flake.lock` for a flake without inputs).
    pub flake: PathBuf,
    /// The store paths Nix built and copied into the cache (hello, stdenv, bootstrap tools).
    pub cached_paths: Vec<String>,
}

const FLAKE: &str = r#"{
  description = "a nixpkgs-shaped devShell whose inputs come from a binary cache";
  outputs = { self }:
    let
      system = "x86_64-linux";
      # A builder that fails when run, unless the fixture is filling the cache.
      mk = name: script: attrs: derivation ({
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" "test -e @MARKER@ || { echo 'built instead of substituted' >&2; exit 1; }; ${script}" ];
        PATH = "/usr/bin:/bin";
      } // attrs);
      bootstrap = mk "bootstrap-tools" ''
        mkdir -p $out/bin
        printf '#!/bin/sh\necho bootstrap\n' > $out/bin/boot-sh
        chmod +x $out/bin/boot-sh
      '' { };
      stdenv = mk "stdenv-linux" ''
        mkdir $out
        cat > $out/setup <<EOF
        export PATH=$bootstrap/bin:/usr/bin:/bin
        for p in \$buildInputs; do PATH=\$p/bin:\$PATH; done
        export NIX_CC=$bootstrap
        stdenvGreeting() { echo "stdenv says hi"; }
        EOF
      '' { inherit bootstrap; };
      hello = mk "hello-2.12.1" ''
        mkdir -p $out/bin
        printf '#!/bin/sh\necho Hello, world!\n' > $out/bin/hello
        chmod +x $out/bin/hello
      '' { inherit stdenv; };
      mkShell = attrs: derivation ({
        inherit system stdenv;
        builder = "/bin/bash";
        args = [ "-c" "echo 'a shell is not built' >&2; exit 1" ];
        outputs = [ "out" ];
      } // attrs);
      uncached = builtins.foldl'
        (prev: n: mk "uncached-step-${toString n}" "echo ${prev} > $out" { })
        "start" (builtins.genList (n: n) 12);
    in {
      packages.${system} = { inherit hello stdenv bootstrap; };
      devShells.${system} = {
        default = mkShell {
          name = "nix-shell";
          buildInputs = [ hello ];
          GREETING = "from the devShell";
          src = self;
          shellHook = "echo entered";
        };
        uncached = mkShell { name = "uncached-shell"; buildInputs = [ uncached ]; };
      };
    };
}
"#;

/// The fixture, made on first use.
pub fn fixture() -> &'static CacheFixture {
    static FIXTURE: OnceLock<CacheFixture> = OnceLock::new();
    FIXTURE.get_or_init(make)
}

fn make() -> CacheFixture {
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("http-cache-v1");
    let me = std::process::id().to_string();
    if let Ok(entries) = fs_err::read_dir(&base) {
        for e in entries.flatten() {
            let alive = Path::new("/proc").join(e.file_name()).exists();
            if e.file_name() != me.as_str() && !alive {
                let _ = fs_err::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(&me);
    let _ = fs_err::remove_dir_all(&dir);
    fs_err::create_dir_all(&dir).unwrap();
    // A client run as `nobody` reads the store and the flake.
    for d in [Path::new(env!("CARGO_TARGET_TMPDIR")), &base, &dir] {
        fs_err::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let store_dir = dir.join("store");
    let cache = dir.join("cache");
    let flake = dir.join("flake");
    let marker = dir.join("filling");
    fs_err::create_dir_all(&flake).unwrap();
    fs_err::write(
        flake.join("flake.nix"),
        FLAKE.replace("@MARKER@", marker.to_str().unwrap()),
    )
    .unwrap();
    fs_err::write(&marker, "").unwrap();

    let fill = dir.join("fill");
    let conf = fill.join("conf");
    super::nix::write_offline_conf(&conf, &fill.join("registry.json"), None);
    let nix = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("NIX_CONF_DIR", &conf)
            .env("HOME", fill.join("home"))
            .env("XDG_CACHE_HOME", fill.join("home/.cache"))
            .env_remove("NIX_REMOTE")
            .env_remove("NIX_STORE_DIR")
            .output()
            .unwrap();
        super::assert_success(&out, &args.join(" "));
        String::from_utf8(out.stdout).unwrap()
    };
    let sk = fill.join("sk");
    fs_err::write(
        &sk,
        nix(&[
            "nix",
            "key",
            "generate-secret",
            "--key-name",
            "envy-test-cache-1",
        ]),
    )
    .unwrap();
    let public_key = {
        let out = Command::new("nix")
            .args(["key", "convert-secret-to-public"])
            .env("NIX_CONF_DIR", &conf)
            .stdin(fs_err::File::open(&sk).unwrap().into_parts().0)
            .output()
            .unwrap();
        super::assert_success(&out, "nix key convert-secret-to-public");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    // Nix's store at the fixture's store directory, for as long as it fills the cache.
    let store = format!(
        "local?store={}&state={}&log={}",
        store_dir.display(),
        fill.join("state").display(),
        fill.join("log").display()
    );
    let flake_ref = format!("path:{}", flake.display());
    let attrs: Vec<String> = ["hello", "stdenv", "bootstrap"]
        .iter()
        .map(|a| format!("{flake_ref}#packages.x86_64-linux.{a}"))
        .collect();
    let mut build = vec!["nix", "build", "--store", &store, "--no-link", "--json"];
    build.extend(attrs.iter().map(String::as_str));
    let built: serde_json::Value = serde_json::from_str(&nix(&build)).unwrap();
    let cached_paths: Vec<String> = built
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["outputs"]["out"].as_str().unwrap().to_owned())
        .collect();
    let to = format!(
        "file://{}?secret-key={}&store={}",
        cache.display(),
        sk.display(),
        store_dir.display()
    );
    let mut copy = vec!["nix", "copy", "--store", &store, "--to", &to];
    copy.extend(cached_paths.iter().map(String::as_str));
    nix(&copy);
    // From here on every builder of the flake fails.
    fs_err::remove_file(&marker).unwrap();
    chmod_readable(&cache);
    chmod_readable(&flake);
    fs_err::remove_dir_all(&store_dir).unwrap();
    let _ = fs_err::remove_dir_all(&fill);
    CacheFixture {
        dir,
        store_dir,
        cache,
        public_key,
        flake,
        cached_paths,
    }
}

/// Make everything under `dir` readable (and directories searchable) by everyone.
fn chmod_readable(dir: &Path) {
    let status = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// Exclusive use of the fixture's store directory, emptied.
pub struct StoreGuard(MutexGuard<'static, ()>);

impl CacheFixture {
    /// Take the store directory (tests using it run one at a time) and empty it, and the
    /// state directory `envy store init` puts next to it.
    pub fn take_store(&self) -> StoreGuard {
        static LOCK: Mutex<()> = Mutex::new(());
        let guard = LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for d in [&self.store_dir, &self.dir.join("var")] {
            if d.exists() {
                // Store paths are read-only.
                let _ = Command::new("chmod").args(["-R", "u+w"]).arg(d).status();
                fs_err::remove_dir_all(d).unwrap();
            }
        }
        StoreGuard(guard)
    }

    /// A copy of the flake in `dir` (the same files, so the same `self` source path).
    pub fn copy_flake(&self, dir: &Path) {
        fs_err::create_dir_all(dir).unwrap();
        for name in ["flake.nix", "flake.lock"] {
            // Nix 2.8 writes no lock for a flake without inputs.
            if self.flake.join(name).exists() {
                fs_err::copy(self.flake.join(name), dir.join(name)).unwrap();
            }
        }
    }
}

/// A static HTTP server on 127.0.0.1 serving a directory, stopped when dropped.
pub struct HttpServer {
    pub url: String,
    /// The access log (nginx), to see what was fetched.
    pub access_log: Option<PathBuf>,
    child: Child,
    _dir: tempfile::TempDir,
}

/// What the server lets clients do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// GET and HEAD.
    ReadOnly,
    /// GET, HEAD and PUT (nginx's WebDAV module: `dav_methods PUT; create_full_put_path on;`),
    /// as a team cache that CI pushes to.
    Writable,
    /// GET and HEAD; every other method (PUT) gets `403 Forbidden`.
    ForbidWrites,
}

/// nginx, on PATH or where Debian puts it.
pub fn nginx() -> Option<PathBuf> {
    super::which("nginx").or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
}

/// The `server` directives beyond `listen` and `root` for `access`.
fn nginx_access(access: Access) -> &'static str {
    match access {
        Access::ReadOnly => "",
        // NARs are bigger than nginx's default 1 MB body limit.
        Access::Writable => {
            "    client_max_body_size 0;\n    location / {\n      dav_methods PUT;\n      create_full_put_path on;\n      dav_access user:rw group:r all:r;\n    }\n"
        }
        Access::ForbidWrites => "    location / {\n      limit_except GET { deny all; }\n    }\n",
    }
}

impl HttpServer {
    /// Serve `root` with nginx, or with `python3 -m http.server` when nginx is missing and
    /// `ENVY_TEST_REQUIRE_TOOLS` is not set. `None` (after saying why) when neither exists.
    pub fn serve(root: &Path) -> Option<HttpServer> {
        Self::serve_with(root, Access::ReadOnly, free_port())
    }

    /// Serve `root` with nginx accepting PUTs (or forbidding them, `access`). `None` (after
    /// saying why) without nginx, unless `ENVY_TEST_REQUIRE_TOOLS` makes that a failure.
    pub fn serve_nginx(root: &Path, access: Access) -> Option<HttpServer> {
        Self::serve_nginx_on(root, access, free_port())
    }

    /// [`Self::serve_nginx`] on `port` (to serve the same URL again, differently).
    pub fn serve_nginx_on(root: &Path, access: Access, port: u16) -> Option<HttpServer> {
        if nginx().is_none() {
            if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
                panic!(
                    "`nginx` is not installed (scripts/test installs it); this test requires it"
                );
            }
            eprintln!("skipping: `nginx` is not installed");
            return None;
        }
        Self::serve_with(root, access, port)
    }

    fn serve_with(root: &Path, access: Access, port: u16) -> Option<HttpServer> {
        let dir = tempfile::tempdir().unwrap();
        let (child, access_log) = if let Some(nginx) = nginx() {
            let d = dir.path();
            let log = d.join("access.log");
            let conf = d.join("nginx.conf");
            // Run as root, the workers write the cache as root (nginx's default `nobody`
            // could not write into the test's directories).
            let user = if access != Access::ReadOnly && ::nix::unistd::geteuid().is_root() {
                "user root;\n"
            } else {
                ""
            };
            fs_err::write(
                &conf,
                format!(
                    "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                     events {{ worker_connections 64; }}\n\
                     http {{\n  access_log {log};\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  types {{ }}\n  default_type application/octet-stream;\n  server {{\n    listen 127.0.0.1:{port};\n    root {root};\n{extra}  }}\n}}\n",
                    d = d.display(),
                    log = log.display(),
                    root = root.display(),
                    extra = nginx_access(access),
                ),
            )
            .unwrap();
            let child = Command::new(nginx)
                .arg("-p")
                .arg(d)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (child, Some(log))
        } else {
            assert!(access == Access::ReadOnly, "only nginx takes PUTs");
            if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
                panic!(
                    "`nginx` is not installed (scripts/test installs it); this test requires it"
                );
            }
            if super::which("python3").is_none() {
                eprintln!("skipping: neither `nginx` nor `python3` is installed");
                return None;
            }
            let child = Command::new("python3")
                .args(["-m", "http.server", "--bind", "127.0.0.1"])
                .arg(port.to_string())
                .arg("--directory")
                .arg(root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (child, None)
        };
        let server = HttpServer {
            url: format!("http://127.0.0.1:{port}"),
            access_log,
            child,
            _dir: dir,
        };
        // Not a timing assertion: a minute without the port open means it failed to start.
        for _ in 0..600 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the HTTP server did not start on port {port}");
    }

    /// The request lines of the access log (empty for the python server).
    pub fn requests(&self) -> String {
        self.access_log
            .as_ref()
            .and_then(|l| fs_err::read_to_string(l).ok())
            .unwrap_or_default()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        // Only the server this test started (nginx's worker exits with its master).
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
