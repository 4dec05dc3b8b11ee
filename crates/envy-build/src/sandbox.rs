//! The Linux build sandbox: a builder runs as PID 1 of fresh user, mount, PID, IPC, UTS and
//! (unless it is a fixed-output derivation) network namespaces, inside a private root that
//! holds only the input closure, the build directory and the declared host paths.
//!
//! The root is assembled on disk by the parent ([`Sandbox::prepare`]): directories and empty
//! files to mount onto, `/etc/passwd`, `/etc/group`, `/etc/hosts`, `/dev` symlinks. The forked
//! child then only makes system calls on strings prepared beforehand (no allocation after
//! `fork` in a multi-threaded process):
//!
//! ```text
//! envy (threads) ─fork→ C1: unshare(user|mnt|pid|ipc|uts[|net]), write uid/gid maps,
//!                          ─fork→ C2 = PID 1: hostname, lo up, bind mounts (read-only except
//!                                 /build, the store dir and /dev), /proc, pivot_root,
//!                                 exec the builder as uid 1000 / gid 100 (Nix's sandbox ids)
//!                          C1 waits for C2 and exits with its status
//! ```
//!
//! Both children die with their parent (`PR_SET_PDEATHSIG`), and the whole PID namespace dies
//! with C2, so killing envy never leaves a builder writing into the store.
//!
//! Unlike Nix, every bind mount except the build dir and `/dev` nodes is remounted read-only:
//! when envy runs as root without build users, the sandbox uid maps to host root, which owns
//! the host's `/usr` and the store.
//!
//! This module knows nothing of derivations: the caller says what to make visible.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Uid, chdir, chroot, fork, pivot_root, sethostname};

use crate::error::BuildError;

/// The uid the builder has inside the sandbox (Nix's `sandboxUid` without uid ranges).
pub const SANDBOX_UID: u32 = 1000;
/// The gid the builder has inside the sandbox (Nix's `sandboxGid`).
pub const SANDBOX_GID: u32 = 100;
/// Where the build directory appears inside the sandbox (Nix's `sandbox-build-dir`).
pub const SANDBOX_BUILD_DIR: &str = "/build";
/// Host paths visible in the sandbox by default: envy's package set builds with host tools.
pub const DEFAULT_SANDBOX_PATHS: &[&str] = &["/bin", "/usr", "/lib", "/lib64"];

/// A host path made visible inside the sandbox, in Nix's `sandbox-paths` syntax:
/// `TARGET[=SOURCE][?]` (a trailing `?` makes a missing source not an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPath {
    pub target: PathBuf,
    pub source: PathBuf,
    pub optional: bool,
}

impl HostPath {
    /// Parse one `sandbox-paths` entry.
    #[must_use]
    pub fn parse(entry: &str) -> Self {
        let (entry, optional) = match entry.strip_suffix('?') {
            Some(rest) => (rest, true),
            None => (entry, false),
        };
        let (target, source) = entry.split_once('=').unwrap_or((entry, entry));
        Self {
            target: target.into(),
            source: source.into(),
            optional,
        }
    }

    /// Parse a space-separated list of entries, as in Nix's configuration.
    #[must_use]
    pub fn parse_list(list: &str) -> Vec<Self> {
        list.split_whitespace().map(Self::parse).collect()
    }
}

/// What the sandbox shows the builder.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    /// Host directory in which the root is assembled; created by [`Sandbox::prepare`].
    pub root: PathBuf,
    /// Host build directory, visible read-write at [`SANDBOX_BUILD_DIR`].
    pub build_dir: PathBuf,
    /// The store directory; created writable inside the root so the builder can create its
    /// outputs there (the caller moves them out afterwards).
    pub store_dir: PathBuf,
    /// Store paths (absolute) bound read-only: the input closure.
    pub inputs: Vec<PathBuf>,
    /// Host paths bound read-only (`/bin`, `/usr`, … or the derivation's own).
    pub host_paths: Vec<HostPath>,
    /// Share the host network (fixed-output derivations); otherwise a private one with `lo`.
    pub network: bool,
}

/// One bind mount, as strings ready for the child.
#[derive(Debug)]
struct Bind {
    source: CString,
    target: CString,
    /// `Some(flags)`: remount read-only keeping these locked flags of the source's mount.
    read_only: Option<MsFlags>,
}

/// A prepared sandbox root and the child's mount plan.
#[derive(Debug)]
pub struct Sandbox {
    root: PathBuf,
    plan: Plan,
}

#[derive(Debug)]
struct Plan {
    root: CString,
    binds: Vec<Bind>,
    proc_dir: CString,
    shm_dir: CString,
    pts_dir: CString,
    work_dir: CString,
    network: bool,
    uid_map: CString,
    gid_map: CString,
}

impl Sandbox {
    /// Assemble the root file system for `spec` on disk. Nothing is mounted yet.
    ///
    /// # Errors
    /// A declared host path that does not exist (and is not optional), or an I/O error
    /// creating the root.
    pub fn prepare(spec: &SandboxSpec) -> Result<Self, BuildError> {
        let root = &spec.root;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuildError::Io {
                path: path.clone(),
                source,
            }
        };
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(root)
            .map_err(io(root))?;
        let mut binds = Vec::new();

        // /tmp, /etc, the store dir.
        mkdir_mode(&root.join("tmp"), 0o1777)?;
        let etc = root.join("etc");
        mkdir_mode(&etc, 0o755)?;
        fs_err::write(
            etc.join("passwd"),
            format!(
                "root:x:0:0:Nix build user:{SANDBOX_BUILD_DIR}:/noshell\n\
                 nixbld:x:{SANDBOX_UID}:{SANDBOX_GID}:Nix build user:{SANDBOX_BUILD_DIR}:/noshell\n\
                 nobody:x:65534:65534:Nobody:/:/noshell\n"
            ),
        )?;
        fs_err::write(
            etc.join("group"),
            format!("root:x:0:\nnixbld:!:{SANDBOX_GID}:\nnogroup:x:65534:\n"),
        )?;
        let mut host_paths = spec.host_paths.clone();
        if spec.network {
            fs_err::write(
                etc.join("nsswitch.conf"),
                "hosts: files dns\nservices: files\n",
            )?;
            for path in ["/etc/resolv.conf", "/etc/services", "/etc/hosts"] {
                host_paths.push(HostPath::parse(&format!("{path}?")));
            }
        } else {
            fs_err::write(etc.join("hosts"), "127.0.0.1 localhost\n::1 localhost\n")?;
        }
        let store_in_root = under(root, &spec.store_dir);
        fs_err::create_dir_all(&store_in_root)?;
        set_mode(&store_in_root, 0o1775)?;

        // /dev: a few device nodes, /dev/shm, /dev/pts and the fd symlinks.
        let dev = root.join("dev");
        fs_err::create_dir_all(dev.join("shm"))?;
        fs_err::create_dir_all(dev.join("pts"))?;
        for node in ["full", "null", "random", "tty", "urandom", "zero"] {
            let source = Path::new("/dev").join(node);
            if source.exists() {
                let target = dev.join(node);
                fs_err::write(&target, "")?;
                binds.push(Bind {
                    source: cstr(&source),
                    target: cstr(&target),
                    read_only: None,
                });
            }
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "/dev/pts/ptmx"),
        ] {
            fs_err::os::unix::fs::symlink(target, dev.join(name))?;
        }

        // The build directory.
        let build_target = root.join(SANDBOX_BUILD_DIR.trim_start_matches('/'));
        fs_err::create_dir_all(&build_target)?;
        binds.push(Bind {
            source: cstr(&spec.build_dir),
            target: cstr(&build_target),
            read_only: None,
        });

        // Declared host paths, shallowest first so nested targets mount on top.
        host_paths.sort_by_key(|p| p.target.components().count());
        let declared: Vec<PathBuf> = host_paths.iter().map(|p| p.target.clone()).collect();
        for host in &host_paths {
            let target = under(root, &host.target);
            let meta = match std::fs::symlink_metadata(&host.source) {
                Ok(meta) => meta,
                Err(e) if host.optional && e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(BuildError::SandboxPath {
                        path: host.source.clone(),
                        source,
                    });
                }
            };
            // A symlink whose target is itself visible stays a symlink (`/bin -> usr/bin` on
            // merged-/usr systems); otherwise the resolved path is bound.
            if meta.file_type().is_symlink() {
                let link = fs_err::read_link(&host.source)?;
                let resolved = host.source.parent().unwrap_or(Path::new("/")).join(&link);
                if declared
                    .iter()
                    .any(|d| resolved.starts_with(d) && d != &host.target)
                {
                    if let Some(parent) = target.parent() {
                        fs_err::create_dir_all(parent)?;
                    }
                    fs_err::os::unix::fs::symlink(&link, &target)?;
                    continue;
                }
            }
            let source = match fs_err::canonicalize(&host.source) {
                Ok(source) => source,
                Err(_) if host.optional => continue,
                Err(e) => return Err(e.into()),
            };
            make_mount_point(&source, &target)?;
            binds.push(Bind {
                read_only: Some(locked_flags(&source)?),
                source: cstr(&source),
                target: cstr(&target),
            });
        }

        // The input closure, read-only.
        for input in &spec.inputs {
            let target = under(root, input);
            make_mount_point(input, &target)?;
            binds.push(Bind {
                read_only: Some(locked_flags(input)?),
                source: cstr(input),
                target: cstr(&target),
            });
        }

        mkdir_mode(&root.join("proc"), 0o555)?;
        mkdir_mode(&root.join("real-root"), 0o700)?;
        let plan = Plan {
            root: cstr(root),
            binds,
            proc_dir: cstr(&root.join("proc")),
            shm_dir: cstr(&dev.join("shm")),
            pts_dir: cstr(&dev.join("pts")),
            work_dir: cstr(Path::new(SANDBOX_BUILD_DIR)),
            network: spec.network,
            uid_map: CString::new(format!("{SANDBOX_UID} {} 1", Uid::effective()))
                .expect("no NUL in a number"),
            gid_map: CString::new(format!("{SANDBOX_GID} {} 1", Gid::effective()))
                .expect("no NUL in a number"),
        };
        Ok(Self {
            root: root.clone(),
            plan,
        })
    }

    /// The host directory holding the sandbox's root.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Turn `command` into one that runs inside this sandbox. The command's program must be a
    /// path that is visible inside; its working directory is [`SANDBOX_BUILD_DIR`] (any
    /// `current_dir` set on it is ignored). Spawning fails with the errno of the first
    /// failing step; the step is also described on the child's stderr.
    pub fn wrap(self, command: &mut Command) {
        let plan = self.plan;
        // SAFETY: the closure runs in the forked child and only makes system calls on
        // strings prepared above; it never allocates or takes a lock.
        unsafe {
            command.pre_exec(move || enter(&plan));
        }
    }
}

/// Whether this kernel lets us create the sandbox's namespaces; probed once per process by
/// forking a child that tries, so a refusal never surfaces in the middle of a build.
///
/// # Errors
/// The errno `unshare` (or writing the uid map) failed with.
pub fn probe() -> Result<(), io::Error> {
    static PROBE: OnceLock<Result<(), i32>> = OnceLock::new();
    let result = PROBE.get_or_init(|| {
        let uid_map =
            CString::new(format!("{SANDBOX_UID} {} 1", Uid::effective())).expect("no NUL");
        let gid_map =
            CString::new(format!("{SANDBOX_GID} {} 1", Gid::effective())).expect("no NUL");
        // SAFETY: the child only makes system calls and exits with `_exit`.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let code = match unshare(namespaces(false))
                    .map_err(|e| e as i32)
                    .and_then(|()| write_maps(&uid_map, &gid_map))
                {
                    Ok(()) => 0,
                    Err(errno) => errno.clamp(1, 255),
                };
                // SAFETY: exits the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            Ok(ForkResult::Parent { child }) => loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                    Ok(WaitStatus::Exited(_, code)) => return Err(code),
                    Ok(_) => return Err(libc::EINVAL),
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(e as i32),
                }
            },
            Err(e) => Err(e as i32),
        }
    });
    result.map_err(io::Error::from_raw_os_error)
}

fn namespaces(network: bool) -> CloneFlags {
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if !network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    flags
}

/// The child side: runs in C1 (never returns there) and in C2 (returns to exec the builder).
fn enter(plan: &Plan) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    unshare(namespaces(plan.network)).map_err(|e| fail(c"unshare namespaces", e))?;
    write_maps(&plan.uid_map, &plan.gid_map)
        .map_err(|e| fail(c"write uid/gid maps", nix::errno::Errno::from_raw(e)))?;
    // SAFETY: C1 is single-threaded (a fresh fork); both sides only make system calls.
    match unsafe { fork() }.map_err(|e| fail(c"fork the sandbox init", e))? {
        ForkResult::Parent { child } => {
            // Close every inherited descriptor (including std's exec-status pipe, so spawn
            // returns as soon as C2 execs) and mirror C2's fate.
            // SAFETY: plain system calls.
            unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
            let code = loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => break code,
                    Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(_) => break 255,
                }
            };
            // SAFETY: exits C1 without running anything of the parent's.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Child => {}
    }
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    setup_root(plan)
}

fn setup_root(plan: &Plan) -> io::Result<()> {
    const NONE: Option<&CStr> = None;
    sethostname("localhost").map_err(|e| fail(c"set the host name", e))?;
    let domain = b"(none)";
    // SAFETY: a plain system call on a static buffer.
    if unsafe { libc::setdomainname(domain.as_ptr().cast(), domain.len()) } != 0 {
        return Err(fail(c"set the domain name", nix::errno::Errno::last()));
    }
    if !plan.network {
        loopback_up().map_err(|e| fail(c"bring up the loopback interface", e))?;
    }
    mount(
        NONE,
        c"/",
        NONE,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        NONE,
    )
    .map_err(|e| fail(c"make / private", e))?;
    mount(
        Some(plan.root.as_c_str()),
        plan.root.as_c_str(),
        NONE,
        MsFlags::MS_BIND,
        NONE,
    )
    .map_err(|e| fail_path(c"bind the sandbox root", &plan.root, e))?;
    for bind in &plan.binds {
        mount(
            Some(bind.source.as_c_str()),
            bind.target.as_c_str(),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .map_err(|e| fail_path(c"bind mount", &bind.source, e))?;
        if let Some(locked) = bind.read_only {
            mount(
                NONE,
                bind.target.as_c_str(),
                NONE,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
                NONE,
            )
            .map_err(|e| fail_path(c"remount read-only", &bind.source, e))?;
        }
    }
    mount(
        Some(c"none"),
        plan.proc_dir.as_c_str(),
        Some(c"proc"),
        MsFlags::empty(),
        NONE,
    )
    .map_err(|e| fail(c"mount /proc", e))?;
    mount(
        Some(c"none"),
        plan.shm_dir.as_c_str(),
        Some(c"tmpfs"),
        MsFlags::empty(),
        NONE,
    )
    .map_err(|e| fail(c"mount /dev/shm", e))?;
    // A private devpts is nice to have (ptys for test suites); not every kernel allows it.
    let _ = mount(
        Some(c"none"),
        plan.pts_dir.as_c_str(),
        Some(c"devpts"),
        MsFlags::empty(),
        Some(c"newinstance,mode=0620,ptmxmode=0666"),
    );
    chdir(plan.root.as_c_str()).map_err(|e| fail(c"enter the sandbox root", e))?;
    pivot_root(c".", c"real-root").map_err(|e| fail(c"pivot_root", e))?;
    chroot(c".").map_err(|e| fail(c"chroot", e))?;
    umount2(c"real-root", MntFlags::MNT_DETACH).map_err(|e| fail(c"unmount the old root", e))?;
    // SAFETY: plain system call.
    unsafe { libc::rmdir(c"real-root".as_ptr()) };
    chdir(plan.work_dir.as_c_str()).map_err(|e| fail(c"enter the build directory", e))?;
    let limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain system call on a stack value.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &limit) };
    Ok(())
}

fn write_maps(uid_map: &CStr, gid_map: &CStr) -> Result<(), i32> {
    write_file(c"/proc/self/setgroups", c"deny")?;
    write_file(c"/proc/self/uid_map", uid_map)?;
    write_file(c"/proc/self/gid_map", gid_map)
}

fn write_file(path: &CStr, contents: &CStr) -> Result<(), i32> {
    // SAFETY: plain system calls on NUL-terminated strings.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(*libc::__errno_location());
        }
        let bytes = contents.to_bytes();
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let errno = *libc::__errno_location();
        libc::close(fd);
        if written < 0 { Err(errno) } else { Ok(()) }
    }
}

fn loopback_up() -> Result<(), nix::errno::Errno> {
    // SAFETY: plain system calls on a zeroed `ifreq` on the stack.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(nix::errno::Errno::last());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
        let res = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        let errno = nix::errno::Errno::last();
        libc::close(fd);
        if res < 0 { Err(errno) } else { Ok(()) }
    }
}

/// Describe a failed step on stderr (the build log) without allocating; return the error.
fn fail(what: &CStr, errno: nix::errno::Errno) -> io::Error {
    write_stderr(&[
        b"envy sandbox: cannot ",
        what.to_bytes(),
        b": ",
        errno.desc().as_bytes(),
        b"\n",
    ]);
    io::Error::from_raw_os_error(errno as i32)
}

fn fail_path(what: &CStr, path: &CStr, errno: nix::errno::Errno) -> io::Error {
    write_stderr(&[
        b"envy sandbox: cannot ",
        what.to_bytes(),
        b" `",
        path.to_bytes(),
        b"`: ",
        errno.desc().as_bytes(),
        b"\n",
    ]);
    io::Error::from_raw_os_error(errno as i32)
}

fn write_stderr(parts: &[&[u8]]) {
    for part in parts {
        // SAFETY: plain system call on a borrowed buffer.
        unsafe { libc::write(2, part.as_ptr().cast(), part.len()) };
    }
}

/// The flags of the mount holding `path` that a user namespace may not drop on remount.
fn locked_flags(path: &Path) -> Result<MsFlags, BuildError> {
    let c = cstr(path);
    // SAFETY: `statvfs` fills the zeroed struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(BuildError::Io {
            path: path.into(),
            source: io::Error::last_os_error(),
        });
    }
    let mut flags = MsFlags::empty();
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

/// Create what `source` can be mounted onto at `target`: a directory or an empty file.
fn make_mount_point(source: &Path, target: &Path) -> Result<(), BuildError> {
    let meta = fs_err::metadata(source)?;
    if meta.is_dir() {
        fs_err::create_dir_all(target)?;
    } else {
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(target, "")?;
    }
    Ok(())
}

fn mkdir_mode(path: &Path, mode: u32) -> Result<(), BuildError> {
    fs_err::create_dir_all(path)?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), BuildError> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// `path` (absolute) re-rooted under `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_else(|_| {
        CString::new(OsStr::new("/nonexistent-path-with-nul").as_bytes()).expect("no NUL")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_syntax() {
        assert_eq!(
            HostPath::parse("/bin/sh=/nix/store/x-busybox/bin/sh?"),
            HostPath {
                target: "/bin/sh".into(),
                source: "/nix/store/x-busybox/bin/sh".into(),
                optional: true
            }
        );
        assert_eq!(HostPath::parse_list(" /usr  /bin ").len(), 2);
        assert_eq!(HostPath::parse("/usr").source, PathBuf::from("/usr"));
    }

    /// Runs a shell inside a real sandbox and checks what it sees: its ids, host name, an
    /// empty network, the read-only host paths, a writable store dir and build dir.
    #[test]
    fn builder_sees_only_the_sandbox() {
        if let Err(e) = probe() {
            eprintln!("skipping: namespaces unavailable: {e}");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let build_dir = tmp.path().join("build");
        let store_dir = tmp.path().join("store");
        fs_err::create_dir_all(&build_dir).unwrap();
        fs_err::create_dir_all(store_dir.join("abc-input")).unwrap();
        fs_err::write(store_dir.join("abc-input/data"), "input data").unwrap();
        fs_err::write(tmp.path().join("secret"), "secret").unwrap();
        let spec = SandboxSpec {
            root: tmp.path().join("root"),
            build_dir: build_dir.clone(),
            store_dir: store_dir.clone(),
            inputs: vec![store_dir.join("abc-input")],
            host_paths: HostPath::parse_list("/bin /usr /lib /lib64? /nonexistent?"),
            network: false,
        };
        let sandbox = Sandbox::prepare(&spec).unwrap();
        let script = format!(
            "export PATH=/bin; exec > /build/report 2>&1; id -u; id -g; hostname; echo pid $$; \
             cat {input}/data; echo; test -e {secret} && echo SECRET-VISIBLE; \
             touch /usr/x 2>/dev/null && echo USR-WRITABLE; \
             touch {input}/x 2>/dev/null && echo INPUT-WRITABLE; \
             mkdir {store}/out && echo out-ok; pwd; cat /etc/hosts | head -1; \
             grep -c . /proc/net/dev",
            input = store_dir.join("abc-input").display(),
            secret = tmp.path().join("secret").display(),
            store = store_dir.display(),
        );
        let mut cmd = Command::new("/bin/bash");
        cmd.arg("-c").arg(script).env_clear();
        sandbox.wrap(&mut cmd);
        let status = cmd.status().unwrap();
        let report = fs_err::read_to_string(build_dir.join("report")).unwrap();
        assert!(status.success(), "{status:?}: {report}");
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(
            lines[..4],
            ["1000", "100", "localhost", "pid 1"],
            "{report}"
        );
        assert_eq!(lines[4], "input data", "{report}");
        assert!(
            !report.contains("VISIBLE") && !report.contains("WRITABLE"),
            "{report}"
        );
        assert!(
            report.contains("out-ok\n/build\n127.0.0.1 localhost\n"),
            "{report}"
        );
        // /proc/net/dev: two header lines and `lo` only.
        assert_eq!(lines.last(), Some(&"3"), "{report}");
        assert!(
            tmp.path()
                .join("root")
                .join(store_dir.strip_prefix("/").unwrap())
                .join("out")
                .is_dir()
        );
    }
}
