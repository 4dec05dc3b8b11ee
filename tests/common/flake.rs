//! Helpers for the flake tests: a private world per test (HOME, XDG dirs, an offline Nix 2.8
//! configuration whose store keeps `/nix/store` as its store dir but lives in the world, so
//! store paths compare as they are), git repositories with fixed dates, and the reference
//! flakes `../shared/tools/nix28-flake-examples.sh` makes Nix write.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The date every fixture commit gets unless a test says otherwise.
pub const GIT_DATE: &str = "2024-01-01T00:00:00Z";

/// One test's world.
pub struct FlakeWorld {
    pub tmp: tempfile::TempDir,
}

/// The world of a test that compares envy with real Nix 2.8: `None` (the test returns) when
/// `nix` is missing and the run does not require it (see [`super::have_tool`]).
pub fn nix_world() -> Option<FlakeWorld> {
    super::have_tool("nix").then(FlakeWorld::new)
}

/// Registries with one user layer sending each `flake:ID` of `entries` to its flake ref.
pub fn user_registries(entries: &[(&str, &str)]) -> envy_flake::Registries {
    let mut r = envy_flake::registry::Registry::default();
    for (id, to) in entries {
        r.add(
            envy_fetch::Input::from_url(&format!("flake:{id}")).unwrap(),
            envy_flake::FlakeRef::parse(to, None).unwrap(),
        );
    }
    envy_flake::Registries {
        layers: vec![("user".into(), r)],
        lazy: Vec::new(),
    }
}

/// The user registry the reference examples were made with: `mylib` is their `deps/lib`.
pub fn examples_registries() -> envy_flake::Registries {
    user_registries(&[(
        "mylib",
        &format!("git+file://{}/deps/lib", examples().display()),
    )])
}

impl FlakeWorld {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("envy-flake-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path();
        for d in ["home", "cache", "config", "data", "work", "envy-cache"] {
            fs_err::create_dir_all(root.join(d)).unwrap();
        }
        let conf = root.join("nix-conf");
        let store = format!("local?root={}/nixroot", root.display());
        super::nix::write_offline_conf(&conf, &conf.join("registry.json"), Some(&store));
        fs_err::write(
            root.join("home/.gitconfig"),
            "[init]\n\tdefaultBranch = main\n[user]\n\tname = t\n\temail = t@t\n",
        )
        .unwrap();
        Self { tmp }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// The environment of every process the test starts.
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |rel: &str| self.path(rel).display().to_string();
        let mut env = vec![
            ("HOME".into(), p("home")),
            ("XDG_CACHE_HOME".into(), p("cache")),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("XDG_DATA_HOME".into(), p("data")),
            ("NIX_CONF_DIR".into(), p("nix-conf")),
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("ENVY_SYNC".into(), "1".into()),
        ];
        for k in ["GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"] {
            env.push((k.into(), GIT_DATE.into()));
        }
        env
    }

    fn command(&self, program: &str, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(dir).env_clear().envs(self.env());
        cmd
    }

    /// Run `nix`; the output, whatever the status.
    pub fn nix(&self, dir: &Path, args: &[&str]) -> Output {
        self.command("nix", dir, args).output().expect("run nix")
    }

    /// Run `nix`; panics unless it succeeds.
    pub fn nix_ok(&self, dir: &Path, args: &[&str]) -> Output {
        let out = self.nix(dir, args);
        assert!(
            out.status.success(),
            "nix {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Run `nix` and parse its stdout as JSON; panics unless it succeeds.
    pub fn nix_json(&self, dir: &Path, args: &[&str]) -> Value {
        let out = self.nix_ok(dir, args);
        serde_json::from_slice(&out.stdout).expect("nix printed JSON")
    }

    /// Make the first (user) layer of `registries` Nix's user registry too.
    pub fn give_nix_user_registry(&self, registries: &envy_flake::Registries) {
        let reg = self.path("config/nix/registry.json");
        fs_err::create_dir_all(reg.parent().unwrap()).unwrap();
        registries.layers[0].1.write(&reg).unwrap();
    }

    /// `builtins.fetchTree ATTRS` as Nix 2.8 evaluates it (`outPath` as `path`).
    pub fn nix_fetch_tree(&self, attrs: &str) -> Value {
        let expr = format!(
            "let t = builtins.fetchTree {attrs}; in builtins.removeAttrs t [\"outPath\"] // {{ path = t.outPath; }}"
        );
        self.nix_json(
            self.root(),
            &["eval", "--impure", "--json", "--expr", &expr],
        )
    }

    /// Run git in `dir`; panics unless it succeeds.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.command("git", dir, args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Write `files` (relative path, contents) under `dir`.
    pub fn write(&self, dir: &Path, files: &[(&str, &str)]) {
        for (rel, text) in files {
            let p = dir.join(rel);
            fs_err::create_dir_all(p.parent().unwrap()).unwrap();
            fs_err::write(p, text).unwrap();
        }
    }

    /// A git repository at `rel` with `files` committed (at [`GIT_DATE`]).
    pub fn git_repo(&self, rel: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.path(rel);
        fs_err::create_dir_all(&dir).unwrap();
        self.git(&dir, &["init", "-q"]);
        self.write(&dir, files);
        self.commit(&dir, "init");
        dir
    }

    /// Commit everything in `dir`.
    pub fn commit(&self, dir: &Path, msg: &str) {
        self.git(dir, &["add", "-A"]);
        self.git(dir, &["commit", "-qm", msg]);
    }

    /// Pack `src/top` into the tarball `file`, compressed as tar's `flag` says (`-z`, `-J`…),
    /// owned by root and numbered, so its NAR hash depends on contents and mtimes only.
    pub fn tarball(&self, src: &Path, top: &str, flag: &str, file: &Path) {
        let out = Command::new("tar")
            .arg("-C")
            .arg(src)
            .args(["--owner=0", "--group=0", "--numeric-owner", flag, "-cf"])
            .arg(file)
            .arg(top)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar {flag} {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Set every mtime under `dir` to `secs`.
    pub fn fix_mtimes(&self, dir: &Path, secs: u64) {
        let out = Command::new("find")
            .arg(dir)
            .args(["-exec", "touch", "-h", "-d", &format!("@{secs}"), "{}", "+"])
            .output()
            .unwrap();
        assert!(out.status.success());
    }

    /// Fetch settings for envy with Nix's store dir and this world's fetch cache.
    pub fn fetch_settings(&self) -> envy_fetch::FetchSettings {
        envy_fetch::FetchSettings::new(
            envy_store::StoreDir::nix_default(),
            self.path("envy-cache/fetch-v1"),
        )
    }

    /// A command running the envy binary in `dir` with this world's environment.
    pub fn envy(&self, dir: &Path, args: &[&str]) -> Command {
        super::envy_in(dir, args, self.env())
    }
}

/// Whether the script that makes [`examples`] is here (`../shared/tools`); when it is not the
/// caller skips, as [`super::shared_data`] says.
#[must_use]
pub fn have_examples() -> bool {
    super::shared_data(
        "tools/nix28-flake-examples.sh",
        "the reference flakes Nix 2.8 locks",
    )
    .is_some()
}

/// The reference flakes and the lock files / metadata Nix 2.8 wrote for them, made once per
/// test binary by the shared script, under `target/tmp/flake-examples/<pid>` (older runs'
/// directories are removed). Tests check [`have_examples`] first.
pub fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("flake-examples");
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
        let conf = dir.join("nix-conf");
        let store = format!("local?root={}/nixroot", dir.display());
        super::nix::write_offline_conf(&conf, &conf.join("registry.json"), Some(&store));
        let root = dir.join("ex");
        let script = super::shared_dir().join("tools/nix28-flake-examples.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&root)
            .env_clear()
            .env("NIX_CONF_DIR", &conf)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("run nix28-flake-examples.sh");
        assert!(
            out.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        root
    })
}

/// A `flake.nix` reader for tests that runs on real Nix (`nix-instantiate --eval`), so the
/// lock logic can be compared with Nix's independently of envy's evaluator.
pub struct NixFlakeReader {
    pub env: Vec<(String, String)>,
}

impl envy_flake::FlakeNixReader for NixFlakeReader {
    fn read_parts(
        &self,
        tree: &envy_fetch::SourceTree,
        subdir: &str,
        display: &Path,
    ) -> Result<envy_flake::FlakeNixParts, envy_flake::FlakeError> {
        let file = tree
            .resolve(&Path::new(subdir).join("flake.nix"))
            .expect("flake.nix is part of the tree");
        let expr = format!(
            r#"let f = import {}; o = f.outputs or null; in {{
                names = builtins.attrNames f;
                description = if f ? description then [ f.description ] else [];
                inputs = if f ? inputs then [ f.inputs ] else [];
                isFn = if f ? outputs then [ (builtins.isFunction o) ] else [];
                formals = if builtins.isFunction o then builtins.attrNames (builtins.functionArgs o) else [];
                nixConfig = if f ? nixConfig then [ f.nixConfig ] else [];
            }}"#,
            file.display()
        );
        let out = Command::new("nix-instantiate")
            .args(["--eval", "--json", "--strict", "-E", &expr])
            .env_clear()
            .envs(self.env.clone())
            .output()
            .expect("run nix-instantiate");
        if !out.status.success() {
            return Err(envy_flake::FlakeError::Eval {
                message: format!(
                    "{}: {}",
                    display.display(),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let first = |k: &str| v[k].as_array().and_then(|a| a.first().cloned());
        Ok(envy_flake::FlakeNixParts {
            attr_names: v["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
            description: first("description"),
            inputs: first("inputs"),
            outputs_is_function: first("isFn").and_then(|b| b.as_bool()),
            output_formals: v["formals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect(),
            nix_config: first("nixConfig"),
        })
    }
}

/// Copy a directory tree (with `.git`) as `cp -a` does.
pub fn copy_tree(from: &Path, to: &Path) {
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cp -a: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An evaluator wired to a flake session (Nix's store dir, nothing written), and the session.
pub fn eval_session(
    world: &FlakeWorld,
    registries: envy_flake::Registries,
) -> (envy_eval::Evaluator, envy_flake::FlakeSession) {
    let fetcher = envy_fetch::Fetcher::new(world.fetch_settings());
    let session = envy_flake::FlakeSession::new(fetcher, registries);
    let ev = envy_eval::Evaluator::builder()
        .io(session.io(Box::new(envy_eval::RealIO)))
        .store(Box::new(envy_eval::DummyStore::new(
            envy_store::StoreDir::nix_default(),
        )))
        .fetch(session.fetch())
        .build();
    (ev, session)
}

/// Lock and call the flake at `dir` with envy's evaluator; `attr` (a dotted path) of its
/// value, deeply, as JSON.
pub fn envy_flake_attr(
    world: &FlakeWorld,
    registries: envy_flake::Registries,
    dir: &Path,
    attr: &str,
) -> Result<Value, String> {
    let (mut ev, session) = eval_session(world, registries);
    let top = envy_flake::FlakeRef::parse(".", Some(dir)).map_err(|e| e.to_string())?;
    let locked = session
        .lock(&mut ev, &top, &envy_flake::LockFlags::default())
        .map_err(|e| e.to_string())?;
    let mut v = session
        .call(&mut ev, &locked)
        .map_err(|e| e.render(false))?;
    for part in attr.split('.').filter(|p| !p.is_empty()) {
        let a = ev
            .force_attrs(&v, envy_eval::Pos::NONE, "test")
            .map_err(|e| e.render(false))?;
        v = a
            .get(envy_eval::symbol::Sym::new(part))
            .cloned()
            .ok_or_else(|| format!("attribute `{part}` missing"))?;
    }
    envy_flake::nix_value::to_json(&mut ev, &v, envy_eval::Pos::NONE).map_err(|e| e.render(false))
}

/// A directory of links to every program in `/usr/local/bin`, `/usr/bin` and `/bin` except
/// Nix's: a `PATH` on which `nix` is absent but everything else (git, clang, bash…) is found.
pub fn path_without_nix(dir: &Path) -> PathBuf {
    let bin = dir.join("bin-without-nix");
    if bin.is_dir() {
        return bin;
    }
    fs_err::create_dir_all(&bin).unwrap();
    for src in ["/usr/local/bin", "/usr/bin", "/bin"] {
        let Ok(entries) = fs_err::read_dir(src) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let n = name.to_string_lossy();
            if n == "nix" || n.starts_with("nix-") {
                continue;
            }
            let link = bin.join(&name);
            if !link.exists() {
                let _ = std::os::unix::fs::symlink(e.path(), &link);
            }
        }
    }
    bin
}

impl FlakeWorld {
    /// Give Nix a store with a real directory of its own (builds work; store paths are not
    /// `/nix/store` ones), as the backends' tests need.
    pub fn use_buildable_nix_store(&self) {
        let store = super::nix::local_store(&self.path("nix/store"), &self.path("nix"));
        let conf = super::nix::offline_conf(&self.path("nix-conf/registry.json"), Some(&store));
        fs_err::write(self.path("nix-conf/nix.conf"), conf).unwrap();
    }
}

/// musl 1.2.3's source tarball, as named in the hashed mirror `scripts/test` fills.
pub const MUSL_SHA256: &str = "7d5b0b6062521e4627e099e4c9dc8248d32a30285e959b7eecaa780cf8cfd4a4";

/// The hashed mirror holding musl's source (`ENVY_TEST_MIRROR`, else `.fixtures/mirror`);
/// `None` (after printing why, or failing under `ENVY_TEST_REQUIRE_TOOLS`) when it is missing.
pub fn musl_mirror() -> Option<PathBuf> {
    let dir = match std::env::var_os("ENVY_TEST_MIRROR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".fixtures/mirror"),
    };
    if dir.join("sha256").join(MUSL_SHA256).is_file() {
        return Some(dir);
    }
    let reason = format!(
        "musl's source is not in the test mirror `{}`",
        dir.display()
    );
    if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
        panic!("{reason} (ENVY_TEST_REQUIRE_TOOLS is set); run scripts/test to create it");
    }
    eprintln!("skipping: {reason}; run scripts/test to create it");
    None
}

/// A flake on envy's package set whose devShell (in `shell.nix`, importing `value.nix`) uses
/// the clang-musl stdenv.
pub const PACKAGE_SET_FLAKE: &str = "{\n  inputs.envy.url = \"envy\";\n  outputs = { self, envy }: {\n    devShells.x86_64-linux.default = import ./shell.nix { pkgs = envy.legacyPackages.x86_64-linux; };\n  };\n}\n";

/// Its `shell.nix`.
pub const PACKAGE_SET_SHELL: &str =
    "{ pkgs }: pkgs.mkShell { name = \"musl-dev\"; FOO = import ./value.nix; }\n";
