//! A Nix build machine behind a real `sshd` on 127.0.0.1 (Debian `openssh-server`), as in
//! the shared recipe: a test key, a forced command running real Nix 2.8's `nix-store --serve
//! --write` on its own store (envy's store dir, its own files), and an ssh config with a host
//! alias (`NIX_SSHOPTS="-F CONFIG"`), since the machine syntax has no port.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::build::BuildEnv;

pub struct BuildMachine {
    pub dir: PathBuf,
    pub port: u16,
    sshd: Child,
}

/// Whether sshd and ssh are here (else the caller skips, or fails under
/// `ENVY_TEST_REQUIRE_TOOLS`).
pub fn have_sshd() -> bool {
    let present = Path::new("/usr/sbin/sshd").is_file() && super::which("ssh").is_some();
    if !present {
        if std::env::var_os("ENVY_TEST_REQUIRE_TOOLS").is_some() {
            panic!("`sshd` (openssh-server) is missing; ENVY_TEST_REQUIRE_TOOLS is set");
        }
        eprintln!("skipping: `sshd` (openssh-server) is not installed (scripts/test installs it)");
    }
    present
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

impl BuildMachine {
    /// Start sshd in `dir` for a machine whose store has the store dir `store_dir`; the
    /// remote's Nix configuration is `nix_conf` (a directory with `nix.conf`).
    pub fn start(dir: &Path, store_dir: &Path) -> BuildMachine {
        fs_err::create_dir_all(dir).unwrap();
        fs_err::create_dir_all("/run/sshd").unwrap();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        let conf = dir.join("nixconf");
        fs_err::create_dir_all(&conf).unwrap();
        fs_err::write(
            conf.join("nix.conf"),
            format!(
                "{}sandbox = true\nsandbox-paths = /bin /usr /lib /lib64\nextra-platforms = aarch64-linux\n",
                super::nix::OFFLINE_SETTINGS
            ),
        )
        .unwrap();
        let store = format!(
            "local?store={}&real={}&state={}&log={}",
            store_dir.display(),
            dir.join("rreal").display(),
            dir.join("rstate").display(),
            dir.join("rlog").display()
        );
        let serve = dir.join("serve");
        fs_err::write(
            &serve,
            format!(
                "#!/bin/sh\n\
                 export NIX_CONF_DIR='{conf}' HOME='{dir}' XDG_CACHE_HOME='{dir}/cache'\n\
                 echo \"$SSH_ORIGINAL_COMMAND\" >> '{dir}/commands'\n\
                 case \"$SSH_ORIGINAL_COMMAND\" in\n\
                 *nix-store*--serve*) exec nix-store --serve --write --store '{store}' ;;\n\
                 *nix-daemon*--stdio*) NIX_REMOTE='{store}' exec nix-daemon --stdio ;;\n\
                 *) echo \"unexpected command: $SSH_ORIGINAL_COMMAND\" >&2; exit 1 ;;\n\
                 esac\n",
                conf = conf.display(),
                dir = dir.display(),
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&serve, std::fs::Permissions::from_mode(0o755)).unwrap();
        let client_pub = fs_err::read_to_string(dir.join("client_key.pub")).unwrap();
        fs_err::write(
            dir.join("authorized_keys"),
            format!("command=\"{}\",no-pty {client_pub}", serve.display()),
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        fs_err::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 StrictModes no\nPasswordAuthentication no\nUsePAM no\nPidFile {d}/sshd.pid\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let sshd = Command::new("/usr/sbin/sshd")
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .args(["-D", "-e"])
            .stderr(Stdio::from(
                fs_err::File::create(dir.join("sshd.log"))
                    .unwrap()
                    .into_parts()
                    .0,
            ))
            .spawn()
            .unwrap();
        let host_pub = fs_err::read_to_string(dir.join("host_key.pub")).unwrap();
        let key_only: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        // The alias `farm` (and `farm-arm`, the same machine under another name) plus a
        // `down` alias on a closed port.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        fs_err::write(
            dir.join("ssh_config"),
            format!(
                "Host farm farm-arm\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {d}/client_key\n  \
                 IdentitiesOnly yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {d}/known_hosts\n  HostKeyAlias farm\n  \
                 BatchMode yes\n\
                 Host down\n  HostName 127.0.0.1\n  Port {closed}\n  BatchMode yes\n  ConnectTimeout 5\n",
                d = dir.display()
            ),
        )
        .unwrap();
        fs_err::write(
            dir.join("known_hosts"),
            format!("farm {}\n", key_only.join(" ")),
        )
        .unwrap();
        let machine = BuildMachine {
            dir: dir.to_path_buf(),
            port,
            sshd,
        };
        // Wait until sshd accepts connections.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return machine;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!(
            "sshd did not start: {}",
            fs_err::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
    }

    /// `NIX_SSHOPTS` for envy (and Nix) to reach the aliases.
    pub fn sshopts(&self) -> String {
        format!("-F {}", self.dir.join("ssh_config").display())
    }

    /// The remote's store URI, to ask real Nix what it holds.
    pub fn store_uri(&self, store_dir: &Path) -> String {
        format!(
            "local?store={}&real={}&state={}&log={}",
            store_dir.display(),
            self.dir.join("rreal").display(),
            self.dir.join("rstate").display(),
            self.dir.join("rlog").display()
        )
    }

    /// Real Nix's `program` on the machine's store (whose store dir is `store_dir`), with the
    /// machine's configuration.
    pub fn nix(&self, program: &str, store_dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("NIX_CONF_DIR", self.dir.join("nixconf"))
            .env("HOME", &self.dir)
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .args(["--store", &self.store_uri(store_dir)]);
        cmd
    }

    /// Whether the remote store has `path` valid.
    pub fn has(&self, store_dir: &Path, path: &str) -> bool {
        self.nix("nix-store", store_dir)
            .args(["--check-validity", path])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// `env`'s envy, reaching this machine's aliases.
    pub fn envy(&self, env: &BuildEnv) -> Command {
        let mut cmd = env.envy();
        cmd.env("NIX_SSHOPTS", self.sshopts());
        cmd
    }
}

/// A build world (tests/common/build.rs) and a machine for it, when real Nix's `tool` and sshd
/// are here (else the caller skips, or fails under `ENVY_TEST_REQUIRE_TOOLS`).
pub fn world_with_machine(tool: &str) -> Option<(BuildEnv, BuildMachine)> {
    if !super::have_tool(tool) || !have_sshd() {
        return None;
    }
    let env = BuildEnv::new();
    let machine = BuildMachine::start(&env.path("machine"), &env.store_dir());
    Some((env, machine))
}

impl Drop for BuildMachine {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}
