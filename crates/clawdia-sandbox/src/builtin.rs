//! The built-in sandbox, for machines without bubblewrap: the gateway re-executes its own
//! binary as `clawdia __sandbox-init SPEC` (a single-threaded process: `unshare` of a user
//! namespace refuses multithreaded callers). That helper creates fresh user, mount, pid,
//! network, IPC and UTS namespaces, maps its own uid/gid, and forks the new pid namespace's
//! PID 1, which builds the filesystem view (private `/tmp` and `/dev`, the workspace bound
//! read-write, hidden paths masked, everything else read-only, a new `/proc`), brings up
//! loopback, and forks the command's process, which confines itself (`confine`) and execs.
//!
//! When the command exits, PID 1 exits with its status and the kernel kills whatever else is
//! left in the pid namespace: background processes never outlive the command. A `SIGTERM` to
//! the helper is forwarded to everything inside; a `SIGKILL` to the helper kills PID 1 through
//! its parent-death signal, and with it the whole namespace.
//!
//! Setup errors are written as one line to the status pipe (`Spec::status_fd`, close-on-exec,
//! so it is empty when the command started) and the process exits with `SETUP_FAILED`.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::Spec;
use crate::confine::confine_and_exec;

/// The exit code of a helper whose setup failed (the reason is on the status pipe).
pub(crate) const SETUP_FAILED: i32 = 125;

/// The pid signals are forwarded to (the namespace's PID 1, as seen from the helper).
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_term(_: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

extern "C" fn broadcast_term(_: libc::c_int) {
    // SAFETY: kill is async-signal-safe; from PID 1, -1 means every other process of the
    // namespace.
    unsafe { libc::kill(-1, libc::SIGTERM) };
}

fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |error| format!("{what}: {error}")
}

/// Writes a setup error to the status pipe (or stderr when there is none).
pub(crate) fn report(status_fd: Option<i32>, message: &str) {
    let line = format!("{}\n", message.replace('\n', " "));
    match status_fd {
        // SAFETY: writes our own buffer to a descriptor we were handed; nothing else is touched.
        Some(fd) => unsafe {
            libc::write(fd, line.as_ptr().cast(), line.len());
        },
        None => eprint!("clawdia sandbox: {line}"),
    }
}

/// The helper: namespaces, then PID 1. Returns the exit code of the helper process.
pub(crate) fn helper_main(spec: &Spec) -> i32 {
    match helper(spec) {
        Ok(code) => code,
        Err(message) => {
            report(spec.status_fd, &message);
            SETUP_FAILED
        }
    }
}

fn helper(spec: &Spec) -> Result<i32, String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    unshare(flags).map_err(step("cannot create namespaces (are user namespaces enabled?)"))?;
    let write = |file: &str, text: String| {
        std::fs::write(file, text).map_err(|e| format!("cannot write {file}: {e}"))
    };
    write("/proc/self/setgroups", "deny".to_string())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    // SAFETY: the helper is single-threaded (it runs before any runtime or thread starts), so
    // the child may do anything after fork.
    match unsafe { fork() }.map_err(step("cannot fork"))? {
        ForkResult::Child => {
            let code = match init(spec) {
                Ok(code) => code,
                Err(message) => {
                    report(spec.status_fd, &message);
                    SETUP_FAILED
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            close_egress_channel(spec);
            FORWARD_TO.store(child.as_raw(), Ordering::Relaxed);
            for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
                // SAFETY: the handler only calls kill, which is async-signal-safe.
                unsafe { signal(sig, SigHandler::Handler(forward_term)) }
                    .map_err(step("cannot set a signal handler"))?;
            }
            Ok(wait_for(child))
        }
    }
}

/// Closes this process's copy of the egress socket pair: only the command's process (before
/// it confines itself) uses it, to hand the proxy listener over.
fn close_egress_channel(spec: &Spec) {
    if let Some(fd) = spec.egress_fd {
        // SAFETY: closes a descriptor number this process inherited for the hand-over and
        // never uses; nothing else in the process refers to it.
        unsafe { libc::close(fd) };
    }
}

/// Waits for `child` (reaping any other child on the way) and returns its exit code, `128 + N`
/// for death by signal N.
fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => return 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return SETUP_FAILED,
        }
    }
}

/// PID 1 of the new pid namespace.
fn init(spec: &Spec) -> Result<i32, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(step("cannot set the parent-death signal"))?;
    nix::unistd::setsid().map_err(step("cannot start a session"))?;
    filesystem(spec)?;
    loopback_up()?;
    nix::unistd::sethostname("sandbox").map_err(step("cannot set the host name"))?;
    // SAFETY: still single-threaded.
    match unsafe { fork() }.map_err(step("cannot fork"))? {
        ForkResult::Child => {
            let Err(message) = confine_and_exec(spec);
            report(spec.status_fd, &message);
            std::process::exit(SETUP_FAILED)
        }
        ForkResult::Parent { child } => {
            close_egress_channel(spec);
            // SAFETY: the handler only calls kill, which is async-signal-safe.
            unsafe { signal(Signal::SIGTERM, SigHandler::Handler(broadcast_term)) }
                .map_err(step("cannot set a signal handler"))?;
            Ok(wait_for(child))
        }
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// `mount_setattr(2)` (Linux 5.12): sets or clears the read-only flag of the mount at `path`,
/// recursively or not.
fn set_read_only(path: &Path, read_only: bool, recursive: bool) -> Result<(), String> {
    let c_path =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| "a path contains a NUL byte".to_string())?;
    let attr = MountAttr {
        attr_set: if read_only { MOUNT_ATTR_RDONLY } else { 0 },
        attr_clr: if read_only { 0 } else { MOUNT_ATTR_RDONLY },
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: the path and the attribute struct are valid for the call; the size matches.
    let result = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c_path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if result != 0 {
        let what = if read_only { "read-only" } else { "writable" };
        return Err(format!(
            "cannot make {} {what} (needs Linux 5.12+): {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The path through which an open descriptor can be bind-mounted.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn open_path(path: &Path) -> Result<OwnedFd, String> {
    open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn bind(source: &OwnedFd, target: &Path) -> Result<(), String> {
    mount(
        Some(fd_path(source).as_str()),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("cannot bind-mount {}: {e}", target.display()))
}

fn tmpfs(target: &Path, flags: MsFlags, options: &str) -> Result<(), String> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options))
        .map_err(|e| format!("cannot mount a tmpfs on {}: {e}", target.display()))
}

const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// The sandbox's view of the filesystem, built in the new mount namespace.
fn filesystem(spec: &Spec) -> Result<(), String> {
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(step("cannot make the mounts private"))?;
    // Open everything that the new mounts are about to cover first.
    let workspace = open_path(&spec.workspace)?;
    let devices = DEVICES
        .iter()
        .map(|name| Ok((*name, open_path(&Path::new("/dev").join(name))?)))
        .collect::<Result<Vec<_>, String>>()?;
    let visible = spec
        .visible
        .iter()
        .map(|path| Ok((path, open_path(path)?, path.is_dir())))
        .collect::<Result<Vec<_>, String>>()?;
    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    tmpfs(Path::new("/tmp"), nosuid_nodev, "mode=1777")?;
    tmpfs(Path::new("/dev"), MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, "mode=755")?;
    for (name, fd) in &devices {
        let target = Path::new("/dev").join(name);
        std::fs::File::create(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
        bind(fd, &target)?;
    }
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, target) in links {
        std::os::unix::fs::symlink(target, Path::new("/dev").join(name))
            .map_err(step("cannot populate /dev"))?;
    }
    std::fs::create_dir("/dev/shm").map_err(step("cannot create /dev/shm"))?;
    tmpfs(Path::new("/dev/shm"), nosuid_nodev, "mode=1777")?;
    // Paths under the private mounts that must stay readable: bound back in (read-only below).
    for (path, fd, is_dir) in &visible {
        let made = if *is_dir {
            std::fs::create_dir_all(path)
        } else {
            path.parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::File::create(path).map(drop))
        };
        made.map_err(|e| format!("cannot create the mount point {}: {e}", path.display()))?;
        bind(fd, path)?;
    }
    std::fs::create_dir_all(&spec.workspace).map_err(step("cannot create the workspace mount point"))?;
    bind(&workspace, &spec.workspace)?;
    let null = devices.iter().find(|(name, _)| *name == "null").map(|(_, fd)| fd);
    for hidden in &spec.hidden {
        match std::fs::symlink_metadata(hidden) {
            Err(_) => continue, // not visible in the sandbox anyway
            Ok(meta) if meta.is_dir() => {
                tmpfs(hidden, nosuid_nodev | MsFlags::MS_NOEXEC, "mode=000,size=4k")?
            }
            Ok(_) => match null {
                Some(null) => bind(null, hidden)?,
                None => return Err(format!("cannot hide {}", hidden.display())),
            },
        }
    }
    set_read_only(Path::new("/"), true, true)?;
    let mut writable = vec![Path::new("/tmp"), Path::new("/dev/shm")];
    if spec.workspace_writable {
        writable.push(spec.workspace.as_path());
    }
    for path in writable {
        set_read_only(path, false, false)?;
    }
    mount(Some("proc"), "/proc", Some("proc"), nosuid_nodev | MsFlags::MS_NOEXEC, none)
        .map_err(step("cannot mount /proc"))?;
    Ok(())
}

/// Brings up `lo` in the new network namespace (the only interface there).
fn loopback_up() -> Result<(), String> {
    let error = |what: &str| format!("cannot bring up loopback: {what}: {}", std::io::Error::last_os_error());
    // SAFETY: a plain socket call; the descriptor is closed below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(error("socket"));
    }
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own; flags is the active
    // union member for these requests.
    let result = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut request) < 0 {
            -1
        } else {
            request.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &request)
        }
    };
    let failure = (result < 0).then(|| error("ioctl"));
    // SAFETY: closes the socket opened above.
    unsafe { libc::close(sock) };
    failure.map_or(Ok(()), Err)
}
