//! `DaemonClient`: one connection to a Nix daemon, speaking the worker protocol as Nix 2.8's
//! `RemoteStore` does (protocol 1.34, accepting daemons from 1.25 on). Each operation writes
//! its op code and arguments, then reads the daemon's log stream until it says done or
//! failed, then the reply. Only operations a non-trusted user of a multi-user install may use
//! are offered: adding text and content-addressed paths, queries, builds (which substitute
//! through the daemon's caches), and temporary and indirect gc roots; and, for a daemon that
//! trusts its client (`nix-daemon --stdio` on a build machine, behind ssh), the operations
//! Nix's `ssh-ng://` build hook uses: `addToStoreNar`, `buildDerivation` and `narFromPath`.
//! `importPaths` is absent.
//!
//! After [`DaemonError::Daemon`] (the daemon failed the operation and said why) the
//! connection is ready for the next operation; after any other error it is in an unknown
//! state mid-message, and the caller must connect again.

use std::collections::BTreeSet;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use super::address::DaemonAddress;
use super::error::DaemonError;
use super::log::{DiscardLog, LogEvent, LogSink, Verbosity, read_result, read_start, strip_ansi};
use super::wire::{
    FramedWriter, read_bool, read_string, read_strings, read_u64, write_bool, write_path_info,
    write_str, write_strings, write_u64,
};
use crate::content_address::{ContentAddress, ContentAddressMethod, FileIngestionMethod};
use crate::hash::{Hash, HashAlgo};
use crate::nar;
use crate::path_info::ValidPathInfo;
use crate::store_dir::StoreDir;
use crate::store_path::StorePath;

const WORKER_MAGIC_1: u64 = 0x6e69_7863;
const WORKER_MAGIC_2: u64 = 0x6478_696f;
/// The protocol Nix 2.8 speaks: 1.34.
const CLIENT_VERSION: u64 = (1 << 8) | 34;
/// `addToStore` with a content-address method and framed data arrived in 1.25 (Nix 2.4).
const MIN_MINOR: u64 = 25;

const STDERR_NEXT: u64 = 0x6f6c_6d67;
const STDERR_READ: u64 = 0x6461_7461;
const STDERR_WRITE: u64 = 0x6461_7416;
const STDERR_LAST: u64 = 0x616c_7473;
const STDERR_ERROR: u64 = 0x6378_7470;
const STDERR_START_ACTIVITY: u64 = 0x5354_5254;
const STDERR_STOP_ACTIVITY: u64 = 0x5354_4f50;
const STDERR_RESULT: u64 = 0x5253_4c54;

/// The worker operations envy uses, with their numbers in Nix's protocol.
#[derive(Debug, Clone, Copy)]
enum Op {
    IsValidPath = 1,
    AddToStore = 7,
    AddTextToStore = 8,
    BuildPaths = 9,
    AddTempRoot = 11,
    AddIndirectRoot = 12,
    SetOptions = 19,
    QueryPathInfo = 26,
    QueryValidPaths = 31,
    BuildDerivation = 36,
    NarFromPath = 38,
    AddToStoreNar = 39,
    QueryMissing = 40,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::IsValidPath => "isValidPath",
            Op::AddToStore => "addToStore",
            Op::AddTextToStore => "addTextToStore",
            Op::BuildPaths => "buildPaths",
            Op::AddTempRoot => "addTempRoot",
            Op::AddIndirectRoot => "addIndirectRoot",
            Op::SetOptions => "setOptions",
            Op::QueryPathInfo => "queryPathInfo",
            Op::QueryValidPaths => "queryValidPaths",
            Op::BuildDerivation => "buildDerivation",
            Op::NarFromPath => "narFromPath",
            Op::AddToStoreNar => "addToStoreNar",
            Op::QueryMissing => "queryMissing",
        }
    }
}

/// What to build: a store path as it is (`Opaque`, substituted if missing) or some outputs of
/// a derivation (`Built`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivedPath {
    Opaque(StorePath),
    Built {
        drv: StorePath,
        outputs: Vec<String>,
    },
}

/// The settings a client sends after the handshake (Nix's `setOptions`). A non-trusted user's
/// `overrides` of restricted settings are ignored by the daemon, with a warning in the log.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub keep_going: bool,
    pub verbosity: Verbosity,
    pub max_build_jobs: u64,
    pub build_cores: u64,
    pub use_substitutes: bool,
    pub overrides: Vec<(String, String)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            keep_going: false,
            verbosity: Verbosity::Info,
            max_build_jobs: 1,
            build_cores: 0,
            use_substitutes: true,
            overrides: Vec::new(),
        }
    }
}

/// What building some paths would do (Nix's `queryMissing`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    pub will_build: BTreeSet<StorePath>,
    pub will_substitute: BTreeSet<StorePath>,
    pub unknown: BTreeSet<StorePath>,
    pub download_size: u64,
    pub nar_size: u64,
}

/// A connection to a Nix daemon.
pub struct DaemonClient {
    socket: PathBuf,
    store_dir: StoreDir,
    reader: BufReader<Box<dyn Read + Send>>,
    writer: BufWriter<Box<dyn Write + Send>>,
    minor: u64,
    nix_version: Option<String>,
    log: Box<dyn LogSink + Send>,
}

impl std::fmt::Debug for DaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("socket", &self.socket)
            .field("store_dir", &self.store_dir)
            .field("minor", &self.minor)
            .finish_non_exhaustive()
    }
}

impl DaemonClient {
    /// Connect, shake hands and send the default [`ClientOptions`].
    pub fn connect(address: &DaemonAddress) -> Result<DaemonClient, DaemonError> {
        let mut client = DaemonClient::handshake(address)?;
        client.set_options(&ClientOptions::default())?;
        Ok(client)
    }

    /// Connect and shake hands only.
    pub fn handshake(address: &DaemonAddress) -> Result<DaemonClient, DaemonError> {
        let socket = address.socket.clone();
        let stream = UnixStream::connect(&socket).map_err(|source| DaemonError::Connect {
            socket: socket.clone(),
            source,
        })?;
        let read_half = stream.try_clone().map_err(|source| DaemonError::Connect {
            socket: socket.clone(),
            source,
        })?;
        DaemonClient::over(
            socket,
            address.store_dir.clone(),
            Box::new(read_half),
            Box::new(stream),
        )
    }

    /// Shake hands with a daemon at the other end of `reader` and `writer` (`nix-daemon
    /// --stdio` behind ssh, say); `label` names it in errors (a socket path or a URI).
    pub fn over(
        label: PathBuf,
        store_dir: StoreDir,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
    ) -> Result<DaemonClient, DaemonError> {
        let mut client = DaemonClient {
            socket: label,
            store_dir,
            reader: BufReader::new(reader),
            writer: BufWriter::new(writer),
            minor: 0,
            nix_version: None,
            log: Box::new(DiscardLog),
        };
        client.greet()?;
        Ok(client)
    }

    fn greet(&mut self) -> Result<(), DaemonError> {
        const OP: &str = "handshake";
        write_u64(&mut self.writer, WORKER_MAGIC_1).map_err(|e| self.io(OP, e))?;
        self.flush(OP)?;
        let magic = read_u64(&mut self.reader).map_err(|e| self.io(OP, e))?;
        if magic != WORKER_MAGIC_2 {
            return Err(self.handshake_error(format!("bad magic number {magic:#x}")));
        }
        let daemon_version = read_u64(&mut self.reader).map_err(|e| self.io(OP, e))?;
        if daemon_version >> 8 != 1 || daemon_version & 0xff < MIN_MINOR {
            return Err(self.handshake_error(format!(
                "it speaks protocol {}.{}; envy needs 1.{MIN_MINOR} (Nix 2.4) or newer",
                daemon_version >> 8,
                daemon_version & 0xff
            )));
        }
        self.minor = (daemon_version & 0xff).min(CLIENT_VERSION & 0xff);
        let io = (|| {
            write_u64(&mut self.writer, CLIENT_VERSION)?;
            write_u64(&mut self.writer, 0)?; // no CPU affinity (obsolete)
            write_u64(&mut self.writer, 0)?; // reserveSpace (obsolete)
            self.writer.flush()
        })();
        io.map_err(|e| self.io(OP, e))?;
        if self.minor >= 33 {
            self.nix_version = Some(read_string(&mut self.reader).map_err(|e| self.io(OP, e))?);
        }
        self.process_stderr(OP)
    }

    /// The negotiated protocol version as `(major, minor)`.
    #[must_use]
    pub fn protocol_version(&self) -> (u64, u64) {
        (1, self.minor)
    }

    /// The daemon's Nix version (`2.8.0`), sent by daemons of protocol 1.33 and later.
    #[must_use]
    pub fn nix_version(&self) -> Option<&str> {
        self.nix_version.as_deref()
    }

    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    #[must_use]
    pub fn store_dir(&self) -> &StoreDir {
        &self.store_dir
    }

    /// Hand the daemon's log events to `sink` from now on; returns the previous sink.
    pub fn set_log_sink(&mut self, sink: Box<dyn LogSink + Send>) -> Box<dyn LogSink + Send> {
        std::mem::replace(&mut self.log, sink)
    }

    /// Send the client's settings (Nix does this once per connection).
    pub fn set_options(&mut self, options: &ClientOptions) -> Result<(), DaemonError> {
        let op = Op::SetOptions;
        self.request(op, |w| {
            write_bool(w, false)?; // keepFailed
            write_bool(w, options.keep_going)?;
            write_bool(w, false)?; // tryFallback
            write_u64(w, options.verbosity as u64)?;
            write_u64(w, options.max_build_jobs)?;
            write_u64(w, 0)?; // maxSilentTime
            write_u64(w, 1)?; // useBuildHook (obsolete)
            // lvlError here makes the daemon stream build logs as results (`verboseBuild`).
            write_u64(w, Verbosity::Error as u64)?;
            write_u64(w, 0)?; // logType (obsolete)
            write_u64(w, 0)?; // printBuildTrace (obsolete)
            write_u64(w, options.build_cores)?;
            write_bool(w, options.use_substitutes)?;
            write_u64(w, options.overrides.len() as u64)?;
            for (name, value) in &options.overrides {
                write_str(w, name)?;
                write_str(w, value)?;
            }
            Ok(())
        })
    }

    /// Whether `path` is valid in the daemon's store.
    pub fn is_valid_path(&mut self, path: &StorePath) -> Result<bool, DaemonError> {
        let op = Op::IsValidPath;
        let printed = self.store_dir.print(path);
        self.request(op, |w| write_str(w, &printed))?;
        read_bool(&mut self.reader).map_err(|e| self.io(op.name(), e))
    }

    /// Which of `paths` are valid; with `substitute`, the daemon first tries to substitute the
    /// missing ones from its caches.
    pub fn query_valid_paths(
        &mut self,
        paths: &BTreeSet<StorePath>,
        substitute: bool,
    ) -> Result<BTreeSet<StorePath>, DaemonError> {
        let op = Op::QueryValidPaths;
        let printed = self.print_all(paths);
        let minor = self.minor;
        self.request(op, |w| {
            write_strings(w, printed.iter().map(String::as_str))?;
            if minor >= 27 {
                write_bool(w, substitute)?;
            }
            Ok(())
        })?;
        let valid = read_strings(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        self.parse_all(&valid)
    }

    /// What the daemon records about `path`, or `None` when it is not valid.
    pub fn query_path_info(
        &mut self,
        path: &StorePath,
    ) -> Result<Option<ValidPathInfo>, DaemonError> {
        let op = Op::QueryPathInfo;
        let printed = self.store_dir.print(path);
        self.request(op, |w| write_str(w, &printed))?;
        if !read_bool(&mut self.reader).map_err(|e| self.io(op.name(), e))? {
            return Ok(None);
        }
        self.read_path_info(op, path.clone()).map(Some)
    }

    /// `builtins.toFile` / a `.drv`: a text path with `text` referring to `references`.
    pub fn add_text_to_store(
        &mut self,
        name: &str,
        text: &[u8],
        references: &BTreeSet<StorePath>,
    ) -> Result<StorePath, DaemonError> {
        let op = Op::AddTextToStore;
        let refs = self.print_all(references);
        self.request(op, |w| {
            write_str(w, name)?;
            super::wire::write_bytes(w, text)?;
            write_strings(w, refs.iter().map(String::as_str))
        })?;
        let path = read_string(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        self.parse(&path)
    }

    /// Add the file or tree at `path` as a content-addressed path named `name`: `Recursive`
    /// hashes its NAR (sources, `builtins.path`), `Flat` the single file's contents.
    pub fn add_path(
        &mut self,
        name: &str,
        path: &Path,
        method: FileIngestionMethod,
        algo: HashAlgo,
    ) -> Result<ValidPathInfo, DaemonError> {
        let source = path.to_owned();
        self.add_to_store(name, method, algo, &BTreeSet::new(), move |mut out| {
            let nar_error = |source_err| DaemonError::Nar {
                path: source.clone(),
                source: source_err,
            };
            match method {
                FileIngestionMethod::Recursive => {
                    nar::dump_path(&source, &mut out).map_err(nar_error)
                }
                FileIngestionMethod::Flat => {
                    let read = |e| {
                        nar_error(nar::NarError::Read {
                            path: source.clone(),
                            source: e,
                        })
                    };
                    let mut file = fs_err::File::open(&source).map_err(read)?;
                    io::copy(&mut file, &mut out)
                        .map(drop)
                        .map_err(|e| nar_error(nar::NarError::Write(e)))
                }
            }
        })
    }

    /// Add a content-addressed path whose data `dump` writes (a NAR for `Recursive`, the file
    /// contents for `Flat`); returns the new path's info.
    pub fn add_to_store(
        &mut self,
        name: &str,
        method: FileIngestionMethod,
        algo: HashAlgo,
        references: &BTreeSet<StorePath>,
        dump: impl FnOnce(&mut dyn Write) -> Result<(), DaemonError>,
    ) -> Result<ValidPathInfo, DaemonError> {
        let op = Op::AddToStore;
        let refs = self.print_all(references);
        let method_text = format!(
            "fixed:{}",
            ContentAddressMethod::Fixed(method).print_with_algo(algo)
        );
        let sent = (|| -> Result<(), DaemonError> {
            let socket = self.socket.clone();
            let io = |e| self_io(&socket, op.name(), e);
            write_u64(&mut self.writer, op as u64).map_err(io)?;
            write_str(&mut self.writer, name).map_err(io)?;
            write_str(&mut self.writer, &method_text).map_err(io)?;
            write_strings(&mut self.writer, refs.iter().map(String::as_str)).map_err(io)?;
            write_bool(&mut self.writer, false).map_err(io)?; // repair
            let mut framed = FramedWriter::new(&mut self.writer);
            dump(&mut framed).map_err(|err| match err {
                DaemonError::Nar {
                    source: nar::NarError::Write(e),
                    ..
                } => io(e),
                err => err,
            })?;
            framed.finish().map_err(io)?;
            self.writer.flush().map_err(io)
        })();
        self.reply_after_framed(op, sent)?;
        let path = read_string(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        let path = self.parse(&path)?;
        self.read_path_info(op, path)
    }

    /// The daemon's answer to `op`, whose request (a framed stream included) `sent` says
    /// how sending went. A send that broke on I/O may be the daemon having stopped reading
    /// because it failed: its message, when it sent one, is the error then.
    fn reply_after_framed(
        &mut self,
        op: Op,
        sent: Result<(), DaemonError>,
    ) -> Result<(), DaemonError> {
        if let Err(err) = sent {
            if matches!(err, DaemonError::Io { .. }) {
                self.process_stderr(op.name())?;
            }
            return Err(err);
        }
        self.process_stderr(op.name())
    }

    /// Build (or substitute) `paths` through the daemon.
    pub fn build_paths(&mut self, paths: &[DerivedPath]) -> Result<(), DaemonError> {
        let op = Op::BuildPaths;
        let printed: Vec<String> = paths.iter().map(|p| self.print_derived(p)).collect();
        self.request(op, |w| {
            write_strings(w, printed.iter().map(String::as_str))?;
            write_u64(w, 0) // bmNormal: repair and check need a trusted user
        })?;
        read_u64(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        Ok(())
    }

    /// Add `info.path` with its NAR (which `nar` writes) as it is, info and all (Nix's
    /// `addToStoreNar`, for copying a closure to a build machine, references first). The
    /// daemon checks the NAR against `info`; it takes the path without signatures only from
    /// a trusted client.
    pub fn add_to_store_nar(
        &mut self,
        info: &ValidPathInfo,
        nar: impl FnOnce(&mut dyn Write) -> Result<(), crate::StoreError>,
    ) -> Result<(), DaemonError> {
        let op = Op::AddToStoreNar;
        let sent = (|| -> Result<(), DaemonError> {
            let socket = self.socket.clone();
            let io = |e| self_io(&socket, op.name(), e);
            let w = &mut self.writer;
            (|| {
                write_u64(w, op as u64)?;
                write_path_info(w, &self.store_dir, info)?;
                write_bool(w, false)?; // repair
                write_bool(w, true) // dontCheckSigs: honoured for a trusted client only
            })()
            .map_err(io)?;
            let mut framed = FramedWriter::new(&mut self.writer);
            nar(&mut framed).map_err(|err| match err {
                crate::StoreError::Nar {
                    source: nar::NarError::Write(e),
                    ..
                } => io(e),
                err => DaemonError::Store(Box::new(err)),
            })?;
            framed.finish().map_err(io)?;
            self.writer.flush().map_err(io)
        })();
        self.reply_after_framed(op, sent)
    }

    /// Build the basic derivation `drv` as `drv_path` (its inputs, all in `input_srcs`, must
    /// be valid in the daemon's store); its log arrives as log events. A failed build is an
    /// `Ok` status that is not a success.
    pub fn build_derivation(
        &mut self,
        drv_path: &StorePath,
        drv: &crate::Derivation,
    ) -> Result<crate::serve::BuildStatus, DaemonError> {
        let op = Op::BuildDerivation;
        let mut msg = Vec::new();
        write_str(&mut msg, &self.store_dir.print(drv_path)).expect("vec");
        crate::serve::write_basic_derivation(&mut msg, &self.store_dir, drv).expect("vec");
        write_u64(&mut msg, 0).expect("vec"); // bmNormal
        self.request(op, |w| w.write_all(&msg))?;
        let minor = self.minor;
        let r = &mut self.reader;
        let read = (|| -> io::Result<crate::serve::BuildStatus> {
            let status = read_u64(r)?;
            let error = strip_ansi(&read_string(r)?);
            let (mut times_built, mut start_time, mut stop_time) = (0, 0, 0);
            if minor >= 29 {
                times_built = read_u64(r)?;
                let _non_deterministic = read_bool(r)?;
                start_time = read_u64(r)?;
                stop_time = read_u64(r)?;
            }
            if minor >= 28 {
                // The built outputs' realisations (`DrvOutput` → JSON), unused here.
                for _ in 0..read_u64(r)? {
                    read_string(r)?;
                    read_string(r)?;
                }
            }
            Ok(crate::serve::BuildStatus {
                status,
                error,
                times_built,
                start_time,
                stop_time,
            })
        })();
        read.map_err(|e| self.io(op.name(), e))
    }

    /// The NAR of `path` (valid in the daemon's store, `nar_size` bytes long, as its info
    /// says), handed to `read`; whatever `read` leaves unread is drained so the connection
    /// stays in step.
    pub fn nar_from_path<T>(
        &mut self,
        path: &StorePath,
        nar_size: u64,
        read: impl FnOnce(&mut dyn Read) -> T,
    ) -> Result<T, DaemonError> {
        let op = Op::NarFromPath;
        let printed = self.store_dir.print(path);
        self.request(op, |w| write_str(w, &printed))?;
        let mut nar = (&mut self.reader).take(nar_size);
        let out = read(&mut nar);
        let drained = io::copy(&mut nar, &mut io::sink());
        let socket = self.socket.clone();
        drained.map_err(|e| self_io(&socket, op.name(), e))?;
        Ok(out)
    }

    /// What building `paths` would build, substitute, or cannot know.
    pub fn query_missing(&mut self, paths: &[DerivedPath]) -> Result<Missing, DaemonError> {
        let op = Op::QueryMissing;
        let printed: Vec<String> = paths.iter().map(|p| self.print_derived(p)).collect();
        self.request(op, |w| write_strings(w, printed.iter().map(String::as_str)))?;
        let set = |this: &mut Self| -> Result<BTreeSet<StorePath>, DaemonError> {
            let items = read_strings(&mut this.reader).map_err(|e| this.io(op.name(), e))?;
            this.parse_all(&items)
        };
        let will_build = set(self)?;
        let will_substitute = set(self)?;
        let unknown = set(self)?;
        let download_size = read_u64(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        let nar_size = read_u64(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        Ok(Missing {
            will_build,
            will_substitute,
            unknown,
            download_size,
            nar_size,
        })
    }

    /// Keep `path` alive for as long as this connection lasts.
    pub fn add_temp_root(&mut self, path: &StorePath) -> Result<(), DaemonError> {
        let op = Op::AddTempRoot;
        let printed = self.store_dir.print(path);
        self.request(op, |w| write_str(w, &printed))?;
        read_u64(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        Ok(())
    }

    /// Register the existing symlink `link` (an absolute path outside the store) as an
    /// indirect gc root: whatever store path it points to stays alive while it exists.
    pub fn add_indirect_root(&mut self, link: &Path) -> Result<(), DaemonError> {
        let op = Op::AddIndirectRoot;
        let printed = link.to_string_lossy().into_owned();
        self.request(op, |w| write_str(w, &printed))?;
        read_u64(&mut self.reader).map_err(|e| self.io(op.name(), e))?;
        Ok(())
    }

    /// Point `link` at `path` (replacing it atomically) and register it as an indirect root,
    /// as `nix-build --out-link` does.
    pub fn add_perm_root(&mut self, path: &StorePath, link: &Path) -> Result<(), DaemonError> {
        let root_error = |source| DaemonError::Root {
            link: link.to_owned(),
            source,
        };
        if !link.is_absolute() {
            return Err(root_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a gc root must be an absolute path",
            )));
        }
        let tmp = link.with_file_name(format!(
            ".{}.tmp-{}",
            link.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let _ = fs_err::remove_file(&tmp);
        std::os::unix::fs::symlink(self.store_dir.full_path(path), &tmp).map_err(root_error)?;
        fs_err::rename(&tmp, link).map_err(root_error)?;
        self.add_indirect_root(link)
    }

    fn print_derived(&self, path: &DerivedPath) -> String {
        match path {
            DerivedPath::Opaque(p) => self.store_dir.print(p),
            // Before 1.30 a `.drv` path meant all its outputs.
            DerivedPath::Built { drv, .. } if self.minor < 30 => self.store_dir.print(drv),
            DerivedPath::Built { drv, outputs } => {
                format!("{}!{}", self.store_dir.print(drv), outputs.join(","))
            }
        }
    }

    fn read_path_info(&mut self, op: Op, path: StorePath) -> Result<ValidPathInfo, DaemonError> {
        let name = op.name();
        let r = &mut self.reader;
        let fields = (|| -> io::Result<_> {
            let deriver = read_string(r)?;
            let nar_hash = read_string(r)?;
            let references = read_strings(r)?;
            let registration_time = read_u64(r)?;
            let nar_size = read_u64(r)?;
            let (ultimate, sigs, ca) = if self.minor >= 16 {
                (read_bool(r)?, read_strings(r)?, read_string(r)?)
            } else {
                (false, Vec::new(), String::new())
            };
            Ok((
                deriver,
                nar_hash,
                references,
                registration_time,
                nar_size,
                ultimate,
                sigs,
                ca,
            ))
        })();
        let (deriver, nar_hash, references, registration_time, nar_size, ultimate, sigs, ca) =
            fields.map_err(|e| self_io(&self.socket, name, e))?;
        let protocol = |detail: String| DaemonError::Protocol { op: name, detail };
        let nar_hash = Hash::parse_bare(&nar_hash, HashAlgo::Sha256)
            .map_err(|e| protocol(format!("bad NAR hash `{nar_hash}`: {e}")))?;
        let ca = if ca.is_empty() {
            None
        } else {
            Some(
                ContentAddress::parse(&ca)
                    .map_err(|e| protocol(format!("bad content address: {e}")))?,
            )
        };
        Ok(ValidPathInfo {
            path,
            deriver: if deriver.is_empty() {
                None
            } else {
                Some(self.parse(&deriver)?)
            },
            nar_hash,
            nar_size,
            references: self.parse_all(&references)?,
            registration_time: i64::try_from(registration_time).unwrap_or(i64::MAX),
            signatures: sigs.into_iter().collect(),
            ca,
            ultimate,
        })
    }

    /// Send `op` with the arguments `args` writes, then read the log stream to its end.
    fn request(
        &mut self,
        op: Op,
        args: impl FnOnce(&mut BufWriter<Box<dyn Write + Send>>) -> io::Result<()>,
    ) -> Result<(), DaemonError> {
        let sent = write_u64(&mut self.writer, op as u64)
            .and_then(|()| args(&mut self.writer))
            .and_then(|()| self.writer.flush());
        if let Err(e) = sent {
            let err = self.io(op.name(), e);
            self.process_stderr(op.name())?;
            return Err(err);
        }
        self.process_stderr(op.name())
    }

    /// Read log messages until `STDERR_LAST` (Ok) or `STDERR_ERROR` (the daemon's error).
    fn process_stderr(&mut self, op: &'static str) -> Result<(), DaemonError> {
        loop {
            let kind = read_u64(&mut self.reader).map_err(|e| self.io(op, e))?;
            let event = match kind {
                STDERR_LAST => return Ok(()),
                STDERR_ERROR => return Err(self.read_error(op)),
                STDERR_NEXT => LogEvent::Message {
                    text: strip_ansi(
                        read_string(&mut self.reader)
                            .map_err(|e| self.io(op, e))?
                            .trim_end_matches('\n'),
                    ),
                },
                STDERR_START_ACTIVITY => {
                    read_start(&mut self.reader).map_err(|e| self.io(op, e))?
                }
                STDERR_STOP_ACTIVITY => LogEvent::Stop {
                    id: read_u64(&mut self.reader).map_err(|e| self.io(op, e))?,
                },
                STDERR_RESULT => read_result(&mut self.reader).map_err(|e| self.io(op, e))?,
                STDERR_READ | STDERR_WRITE => {
                    return Err(DaemonError::Protocol {
                        op,
                        detail: "the daemon asked for a data transfer envy never starts".into(),
                    });
                }
                other => {
                    return Err(DaemonError::Protocol {
                        op,
                        detail: format!("unknown log message type {other:#x}"),
                    });
                }
            };
            self.log.event(event);
        }
    }

    fn read_error(&mut self, op: &'static str) -> DaemonError {
        let minor = self.minor;
        let r = &mut self.reader;
        let read = (|| -> io::Result<(String, Vec<String>)> {
            if minor < 26 {
                let message = read_string(r)?;
                read_u64(r)?; // exit status
                return Ok((message, Vec::new()));
            }
            let _type = read_string(r)?; // "Error"
            let _level = read_u64(r)?;
            let _name = read_string(r)?;
            let message = read_string(r)?;
            let _have_pos = read_u64(r)?;
            let count = read_u64(r)?;
            let mut traces = Vec::new();
            for _ in 0..count {
                let _have_pos = read_u64(r)?;
                traces.push(read_string(r)?);
            }
            Ok((message, traces))
        })();
        match read {
            Ok((message, traces)) => DaemonError::Daemon {
                op,
                message: strip_ansi(message.trim_end()),
                traces: traces.iter().map(|t| strip_ansi(t)).collect(),
            },
            Err(e) => self.io(op, e),
        }
    }

    fn print_all(&self, paths: &BTreeSet<StorePath>) -> Vec<String> {
        paths.iter().map(|p| self.store_dir.print(p)).collect()
    }

    fn parse(&self, path: &str) -> Result<StorePath, DaemonError> {
        self.store_dir
            .parse(path)
            .map_err(|source| DaemonError::BadPath {
                path: path.to_owned(),
                store_dir: self.store_dir.as_str().to_owned(),
                source,
            })
    }

    fn parse_all(&self, paths: &[String]) -> Result<BTreeSet<StorePath>, DaemonError> {
        paths.iter().map(|p| self.parse(p)).collect()
    }

    fn flush(&mut self, op: &'static str) -> Result<(), DaemonError> {
        self.writer.flush().map_err(|e| self.io(op, e))
    }

    fn io(&self, op: &'static str, source: io::Error) -> DaemonError {
        self_io(&self.socket, op, source)
    }

    fn handshake_error(&self, detail: String) -> DaemonError {
        DaemonError::Handshake {
            socket: self.socket.clone(),
            detail,
        }
    }
}

fn self_io(socket: &Path, op: &'static str, source: io::Error) -> DaemonError {
    DaemonError::Io {
        socket: socket.to_owned(),
        op,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_numbers_match_nix() {
        assert_eq!(Op::AddToStore as u64, 7);
        assert_eq!(Op::BuildPaths as u64, 9);
        assert_eq!(Op::QueryPathInfo as u64, 26);
        assert_eq!(Op::QueryMissing as u64, 40);
    }

    #[test]
    fn reads_an_error_with_traces() {
        let mut bytes = Vec::new();
        let w = &mut bytes;
        write_u64(w, STDERR_NEXT).unwrap();
        write_str(w, "warning: \u{1b}[1mhello\u{1b}[0m\n").unwrap();
        write_u64(w, STDERR_ERROR).unwrap();
        write_str(w, "Error").unwrap();
        write_u64(w, 0).unwrap();
        write_str(w, "Error").unwrap();
        write_str(w, "path '/x' is not valid").unwrap();
        write_u64(w, 0).unwrap();
        write_u64(w, 1).unwrap();
        write_u64(w, 0).unwrap();
        write_str(w, "while doing it").unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let mut feeder = a.try_clone().unwrap();
        feeder.write_all(&bytes).unwrap();
        let mut seen = Vec::new();
        let mut client = DaemonClient {
            socket: PathBuf::from("/test"),
            store_dir: StoreDir::nix_default(),
            reader: BufReader::new(Box::new(b.try_clone().unwrap())),
            writer: BufWriter::new(Box::new(b)),
            minor: 34,
            nix_version: None,
            log: Box::new(DiscardLog),
        };
        let collect = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = collect.clone();
        client.set_log_sink(Box::new(move |e: LogEvent| sink.lock().unwrap().push(e)));
        let err = client.process_stderr("test").unwrap_err();
        seen.extend(collect.lock().unwrap().drain(..));
        assert_eq!(
            seen,
            [LogEvent::Message {
                text: "warning: hello".into()
            }]
        );
        match err {
            DaemonError::Daemon {
                message, traces, ..
            } => {
                assert_eq!(message, "path '/x' is not valid");
                assert_eq!(traces, ["while doing it"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
