//! A client for Nix's serve protocol (`nix-store --serve --write`, what Nix runs on an
//! `ssh://` build machine), as Nix 2.8 speaks it: the handshake, which paths the remote has,
//! their infos, copying paths there (NARs, references first) and back (checked against the
//! remote's NAR hash), and building a derivation there.
//!
//! The remote is any process speaking the protocol on its stdin/stdout: `ssh HOST nix-store
//! --serve --write` (see [`ssh_command`]) or a local `nix-store --serve` for tests. What it
//! writes on stderr (the build logs, ssh's own errors) is collected and handed out by
//! [`ServeConnection::take_log`]. One connection runs one command at a time.

mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command};

pub use process::RemoteProcess;

use crate::daemon::wire::{
    read_bool, read_string, read_strings, read_u64, write_bool, write_bytes, write_path_info,
    write_str, write_strings, write_u64,
};
use crate::{
    ContentAddress, Derivation, DerivationOutput, Hash, HashAlgo, LocalStore, StoreDir, StoreError,
    StorePath, ValidPathInfo,
};

const SERVE_MAGIC_1: u64 = 0x390c_9deb;
const SERVE_MAGIC_2: u64 = 0x5452_eecb;
/// 2.6: path infos with NAR hashes, `cmdAddToStoreNar`, build results with times and the
/// built outputs' realisations. (2.7 adds `keep-failed` to the build settings.)
const CLIENT_VERSION: u64 = 0x206;

const CMD_QUERY_VALID_PATHS: u64 = 1;
const CMD_QUERY_PATH_INFOS: u64 = 2;
const CMD_DUMP_STORE_PATH: u64 = 3;
const CMD_BUILD_DERIVATION: u64 = 8;
const CMD_ADD_TO_STORE_NAR: u64 = 9;

/// What went wrong talking to a build machine.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// The connection broke; `stderr` is the tail of what the remote (or ssh) said.
    #[error("lost the connection to the build machine ({source}){}", tail(stderr))]
    Connection {
        #[source]
        source: io::Error,
        stderr: String,
    },
    #[error(
        "the build machine does not speak Nix's serve protocol: {reason}{}",
        tail(stderr)
    )]
    Protocol { reason: String, stderr: String },
    #[error("the build machine refused `{path}`")]
    Refused { path: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(10);
    format!("; it said:\n{}", lines[start..].join("\n"))
}

/// How a remote build ended (Nix's `BuildResult::Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildStatus {
    pub status: u64,
    pub error: String,
    pub times_built: u64,
    pub start_time: u64,
    pub stop_time: u64,
}

impl BuildStatus {
    /// Built, substituted or already valid.
    #[must_use]
    pub fn success(&self) -> bool {
        matches!(self.status, 0 | 1 | 2 | 13)
    }

    /// Nix's name for the status.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self.status {
            0 => "Built",
            1 => "Substituted",
            2 => "AlreadyValid",
            3 => "PermanentFailure",
            4 => "InputRejected",
            5 => "OutputRejected",
            6 => "TransientFailure",
            7 => "CachedFailure",
            8 => "TimedOut",
            9 => "MiscFailure",
            10 => "DependencyFailed",
            11 => "LogLimitExceeded",
            12 => "NotDeterministic",
            13 => "ResolvesToAlreadyValid",
            14 => "NoSubstituters",
            _ => "UnknownStatus",
        }
    }
}

/// Build settings sent with `cmdBuildDerivation` (0 = no limit).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildSettings {
    pub max_silent_time: u64,
    pub build_timeout: u64,
    pub max_log_size: u64,
}

/// The `ssh` command Nix runs for a machine: `ssh HOST -x -a $NIX_SSHOPTS [-i KEY]
/// [-oUserKnownHostsFile=FILE] -- COMMAND`. `known_hosts` is a file holding the machine's
/// host key (see [`write_known_hosts`]).
#[must_use]
pub fn ssh_command(
    host: &str,
    key: Option<&str>,
    known_hosts: Option<&Path>,
    sshopts: &str,
    remote_command: &str,
) -> Command {
    let mut cmd = Command::new("ssh");
    cmd.arg(host).args(["-x", "-a"]);
    cmd.args(sshopts.split_whitespace());
    if let Some(key) = key {
        cmd.args(["-i", key]);
    }
    if let Some(file) = known_hosts {
        cmd.arg(format!("-oUserKnownHostsFile={}", file.display()));
    }
    cmd.arg("--").arg(remote_command);
    cmd
}

/// Write a known-hosts file for `host` (its `user@` dropped) with `key` (`ssh-ed25519 AAAA…`).
///
/// # Errors
/// The file cannot be written.
pub fn write_known_hosts(dir: &Path, host: &str, key: &str) -> io::Result<PathBuf> {
    let bare = host.rsplit('@').next().unwrap_or(host);
    let name: String = bare
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    fs_err::create_dir_all(dir)?;
    let file = dir.join(format!("known_hosts-{name}"));
    let tmp = dir.join(format!(".known_hosts-{name}.{}", std::process::id()));
    fs_err::write(&tmp, format!("{bare} {key}\n"))?;
    fs_err::rename(&tmp, &file)?;
    Ok(file)
}

/// One connection to a `nix-store --serve` process.
pub struct ServeConnection {
    to: BufWriter<ChildStdin>,
    from: BufReader<ChildStdout>,
    process: RemoteProcess,
    remote_version: u64,
    store_dir: StoreDir,
}

impl ServeConnection {
    /// Start `command` (stdin, stdout and stderr piped) and do the handshake.
    ///
    /// # Errors
    /// The command cannot start, or does not answer as `nix-store --serve` does.
    pub fn open(command: Command, store_dir: StoreDir) -> Result<Self, ServeError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let (process, stdin, stdout) = RemoteProcess::spawn(command)
            .map_err(|source| ServeError::Spawn { program, source })?;
        let mut conn = Self {
            to: BufWriter::new(stdin),
            from: BufReader::new(stdout),
            process,
            remote_version: 0,
            store_dir,
        };
        conn.handshake()?;
        Ok(conn)
    }

    fn handshake(&mut self) -> Result<(), ServeError> {
        let sent = (|| {
            write_u64(&mut self.to, SERVE_MAGIC_1)?;
            write_u64(&mut self.to, CLIENT_VERSION)?;
            self.to.flush()
        })();
        sent.map_err(|e| self.lost(e))?;
        let magic = read_u64(&mut self.from).map_err(|e| self.lost(e))?;
        if magic != SERVE_MAGIC_2 {
            return Err(self.protocol(format!("bad magic number {magic:#x}")));
        }
        let version = read_u64(&mut self.from).map_err(|e| self.lost(e))?;
        if version >> 8 != CLIENT_VERSION >> 8 || version & 0xff < 5 {
            return Err(self.protocol(format!(
                "protocol version {}.{} (envy needs 2.5 or later)",
                version >> 8,
                version & 0xff
            )));
        }
        self.remote_version = version;
        Ok(())
    }

    /// The remote's protocol version (`0x207` for Nix 2.8).
    #[must_use]
    pub fn remote_version(&self) -> u64 {
        self.remote_version
    }

    /// Everything the remote wrote on stderr since the last call.
    #[must_use]
    pub fn take_log(&self) -> Vec<u8> {
        self.process.take_stderr()
    }

    fn stderr_text(&self) -> String {
        self.process.stderr_text()
    }

    fn lost(&self, source: io::Error) -> ServeError {
        ServeError::Connection {
            source,
            stderr: self.stderr_text(),
        }
    }

    fn protocol(&self, reason: String) -> ServeError {
        ServeError::Protocol {
            reason,
            stderr: self.stderr_text(),
        }
    }

    fn io<T>(&self, r: io::Result<T>) -> Result<T, ServeError> {
        r.map_err(|e| self.lost(e))
    }

    fn print_set(&self, paths: &BTreeSet<StorePath>) -> Vec<String> {
        paths.iter().map(|p| self.store_dir.print(p)).collect()
    }

    fn parse_path(&self, s: &str) -> Result<StorePath, ServeError> {
        self.store_dir
            .parse(s)
            .map_err(|e| self.protocol(format!("bad store path `{s}`: {e}")))
    }

    /// Which of `paths` are valid on the remote (`substitute`: let it substitute them first).
    ///
    /// # Errors
    /// The connection broke.
    pub fn query_valid_paths(
        &mut self,
        paths: &BTreeSet<StorePath>,
        substitute: bool,
    ) -> Result<BTreeSet<StorePath>, ServeError> {
        let printed = self.print_set(paths);
        let sent = (|| {
            write_u64(&mut self.to, CMD_QUERY_VALID_PATHS)?;
            write_bool(&mut self.to, false)?; // lock: unused by Nix
            write_bool(&mut self.to, substitute)?;
            write_strings(&mut self.to, printed.iter().map(String::as_str))?;
            self.to.flush()
        })();
        self.io(sent)?;
        let valid = read_strings(&mut self.from);
        self.io(valid)?.iter().map(|s| self.parse_path(s)).collect()
    }

    /// The remote's infos of those of `paths` it has.
    ///
    /// # Errors
    /// The connection broke or an answer is malformed.
    pub fn query_path_infos(
        &mut self,
        paths: &BTreeSet<StorePath>,
    ) -> Result<Vec<ValidPathInfo>, ServeError> {
        let printed = self.print_set(paths);
        let sent = (|| {
            write_u64(&mut self.to, CMD_QUERY_PATH_INFOS)?;
            write_strings(&mut self.to, printed.iter().map(String::as_str))?;
            self.to.flush()
        })();
        self.io(sent)?;
        let mut infos = Vec::new();
        loop {
            let path = read_string(&mut self.from);
            let path = self.io(path)?;
            if path.is_empty() {
                break;
            }
            let raw = (|| {
                let deriver = read_string(&mut self.from)?;
                let references = read_strings(&mut self.from)?;
                let _download_size = read_u64(&mut self.from)?;
                let nar_size = read_u64(&mut self.from)?;
                let nar_hash = read_string(&mut self.from)?;
                let ca = read_string(&mut self.from)?;
                let sigs = read_strings(&mut self.from)?;
                Ok((deriver, references, nar_size, nar_hash, ca, sigs))
            })();
            let (deriver, references, nar_size, nar_hash, ca, sigs) = self.io(raw)?;
            let nar_hash = Hash::parse_any(&nar_hash, Some(HashAlgo::Sha256))
                .map_err(|e| self.protocol(format!("bad NAR hash `{nar_hash}`: {e}")))?;
            let mut info = ValidPathInfo::new(self.parse_path(&path)?, nar_hash, nar_size);
            if !deriver.is_empty() {
                info.deriver = Some(self.parse_path(&deriver)?);
            }
            for r in &references {
                info.references.insert(self.parse_path(r)?);
            }
            info.signatures = sigs.into_iter().collect();
            if !ca.is_empty() {
                info.ca = Some(
                    ContentAddress::parse(&ca)
                        .map_err(|e| self.protocol(format!("bad content address `{ca}`: {e}")))?,
                );
            }
            infos.push(info);
        }
        Ok(infos)
    }

    /// Add one path to the remote (its references must be there already); `nar` writes its NAR.
    ///
    /// # Errors
    /// The connection broke, the NAR cannot be produced, or the remote refused the path.
    pub fn add_to_store_nar(
        &mut self,
        info: &ValidPathInfo,
        nar: impl FnOnce(&mut dyn Write) -> Result<(), StoreError>,
    ) -> Result<(), ServeError> {
        let path = self.store_dir.print(&info.path);
        let sent = (|| {
            write_u64(&mut self.to, CMD_ADD_TO_STORE_NAR)?;
            write_path_info(&mut self.to, &self.store_dir, info)
        })();
        self.io(sent)?;
        let mut counting = CountingWriter {
            inner: &mut self.to,
            written: 0,
        };
        nar(&mut counting)?;
        if counting.written != info.nar_size {
            // The remote reads exactly `nar_size` bytes: the stream is now out of step.
            self.process.kill();
            return Err(StoreError::SizeMismatch {
                path,
                expected: info.nar_size,
                got: counting.written,
            }
            .into());
        }
        let flushed = self.to.flush();
        self.io(flushed)?;
        let answer = read_u64(&mut self.from);
        if self.io(answer)? != 1 {
            return Err(ServeError::Refused { path });
        }
        Ok(())
    }

    /// Copy the closure of `paths` from `store` to the remote: what it lacks, references
    /// first. Returns how many paths were copied.
    ///
    /// # Errors
    /// As [`Self::add_to_store_nar`], or a path is not valid locally.
    pub fn copy_closure_to(
        &mut self,
        store: &LocalStore,
        paths: &BTreeSet<StorePath>,
        substitute: bool,
    ) -> Result<usize, ServeError> {
        let order = store.topo_closure(paths)?;
        let all: BTreeSet<StorePath> = order.iter().map(|i| i.path.clone()).collect();
        let present = self.query_valid_paths(&all, substitute)?;
        let mut copied = 0;
        for info in order.iter().filter(|i| !present.contains(&i.path)) {
            self.add_to_store_nar(info, |out| store.dump(&info.path, &mut WriteRef(out)))?;
            copied += 1;
        }
        Ok(copied)
    }

    /// Build `drv` (a basic derivation: its `input_srcs` must hold its whole input closure,
    /// which must be on the remote) as `drv_path` on the remote. The build log arrives on
    /// stderr ([`Self::take_log`]).
    ///
    /// # Errors
    /// The connection broke. A failed build is an `Ok` status that is not a success.
    pub fn build_derivation(
        &mut self,
        drv_path: &StorePath,
        drv: &Derivation,
        settings: BuildSettings,
    ) -> Result<BuildStatus, ServeError> {
        let printed = self.store_dir.print(drv_path);
        let mut msg = Vec::new();
        write_u64(&mut msg, CMD_BUILD_DERIVATION).expect("vec");
        write_str(&mut msg, &printed).expect("vec");
        write_basic_derivation(&mut msg, &self.store_dir, drv).expect("vec");
        for n in [
            settings.max_silent_time,
            settings.build_timeout,
            settings.max_log_size,
            0, // build-repeat
            0, // enforce-determinism
        ] {
            write_u64(&mut msg, n).expect("vec");
        }
        let sent = self.to.write_all(&msg).and_then(|()| self.to.flush());
        self.io(sent)?;
        let raw = (|| {
            let status = read_u64(&mut self.from)?;
            let error = read_string(&mut self.from)?;
            let times_built = read_u64(&mut self.from)?;
            let _non_deterministic = read_bool(&mut self.from)?;
            let start_time = read_u64(&mut self.from)?;
            let stop_time = read_u64(&mut self.from)?;
            // The built outputs' realisations (`DrvOutput` → JSON), unused here.
            let count = read_u64(&mut self.from)?;
            for _ in 0..count {
                read_string(&mut self.from)?;
                read_string(&mut self.from)?;
            }
            Ok(BuildStatus {
                status,
                error,
                times_built,
                start_time,
                stop_time,
            })
        })();
        self.io(raw)
    }

    /// Copy `paths` (valid on the remote; their references valid locally or among `paths`)
    /// into `store`, each checked against the remote's NAR hash and size. Returns their
    /// infos as registered.
    ///
    /// # Errors
    /// The connection broke, the remote lacks a path, or a NAR does not match its info.
    pub fn copy_paths_from(
        &mut self,
        store: &LocalStore,
        paths: &BTreeSet<StorePath>,
    ) -> Result<Vec<ValidPathInfo>, ServeError> {
        let infos = self.query_path_infos(paths)?;
        let mut by_path: BTreeMap<StorePath, ValidPathInfo> =
            infos.into_iter().map(|i| (i.path.clone(), i)).collect();
        if let Some(missing) = paths.iter().find(|p| !by_path.contains_key(*p)) {
            return Err(self.protocol(format!(
                "the build machine does not have `{}`",
                self.store_dir.print(missing)
            )));
        }
        // References among `paths` first.
        let mut order = Vec::new();
        while !by_path.is_empty() {
            let ready: Vec<StorePath> = by_path
                .values()
                .filter(|i| {
                    i.references_without_self()
                        .all(|r| !by_path.contains_key(r))
                })
                .map(|i| i.path.clone())
                .collect();
            if ready.is_empty() {
                return Err(self.protocol("the paths' references form a cycle".into()));
            }
            for p in ready {
                order.push(by_path.remove(&p).expect("listed"));
            }
        }
        for info in &order {
            let sent = (|| {
                write_u64(&mut self.to, CMD_DUMP_STORE_PATH)?;
                write_str(&mut self.to, &self.store_dir.print(&info.path))?;
                self.to.flush()
            })();
            self.io(sent)?;
            let mut nar = (&mut self.from).take(info.nar_size);
            let imported = store.import_nar(info, &mut nar);
            // Keep the stream in step even when the import stopped early.
            let drained = io::copy(&mut nar, &mut io::sink());
            imported?;
            self.io(drained)?;
        }
        Ok(order)
    }
}

/// Nix's wire form of a basic derivation (`writeDerivation`), the same in the serve and the
/// worker protocol.
pub(crate) fn write_basic_derivation(
    out: &mut Vec<u8>,
    store_dir: &StoreDir,
    drv: &Derivation,
) -> io::Result<()> {
    write_u64(out, drv.outputs.len() as u64)?;
    for (name, output) in &drv.outputs {
        write_str(out, name)?;
        let (path, algo, hash) = match output {
            DerivationOutput::InputAddressed(p) => {
                (store_dir.print(p), String::new(), String::new())
            }
            DerivationOutput::CaFixed(ca) => {
                let path = output
                    .path(store_dir, &drv.name, name)
                    .ok()
                    .flatten()
                    .map(|p| store_dir.print(&p))
                    .unwrap_or_default();
                (
                    path,
                    ca.method.print_with_algo(ca.hash.algo()),
                    ca.hash.to_hex(),
                )
            }
            DerivationOutput::CaFloating { method, algo }
            | DerivationOutput::Impure { method, algo } => {
                (String::new(), method.print_with_algo(*algo), String::new())
            }
            DerivationOutput::Deferred => (String::new(), String::new(), String::new()),
        };
        write_str(out, &path)?;
        write_str(out, &algo)?;
        write_str(out, &hash)?;
    }
    let srcs: Vec<String> = drv.input_srcs.iter().map(|p| store_dir.print(p)).collect();
    write_strings(out, srcs.iter().map(String::as_str))?;
    write_bytes(out, &drv.platform)?;
    write_bytes(out, &drv.builder)?;
    write_u64(out, drv.args.len() as u64)?;
    for arg in &drv.args {
        write_bytes(out, arg)?;
    }
    write_u64(out, drv.env.len() as u64)?;
    for (k, v) in &drv.env {
        write_bytes(out, k)?;
        write_bytes(out, v)?;
    }
    Ok(())
}

pub(crate) struct CountingWriter<'a, W: Write> {
    pub(crate) inner: &'a mut W,
    pub(crate) written: u64,
}

impl<W: Write> Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `&mut dyn Write` as a sized `Write`.
pub(crate) struct WriteRef<'a>(pub(crate) &'a mut dyn Write);

impl Write for WriteRef<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
