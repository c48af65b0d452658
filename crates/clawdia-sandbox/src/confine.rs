//! The last stage before the command runs, inside the namespaces (both mechanisms end here):
//! the process limit (counted inside the sandbox's user namespace), no-new-privs, every
//! capability dropped (bounding, ambient, effective, permitted, inheritable), Landlock (read
//! everywhere, write only the workspace, `/tmp` and device nodes such as `/dev/null`), a seccomp
//! filter refusing the syscalls a confined command has no business making, then `execve` of
//! `/bin/sh -c COMMAND` with exactly the policy's environment.
//!
//! Each step either succeeds or the command does not run: the caller reports the returned
//! one-line error and exits.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;

use landlock::{ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, path_beneath_rules};
use nix::sys::resource::{Resource, setrlimit};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use crate::Spec;

/// The Landlock ABI this code is written for; older kernels get the subset they support.
const LANDLOCK_ABI: ABI = ABI::V7;

fn step<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |error| format!("{what}: {error}")
}

/// Confines the calling process as `spec` says and execs the command. Returns only on failure.
pub(crate) fn confine_and_exec(spec: &Spec) -> Result<Infallible, String> {
    let nul = |_| "the command or environment contains a NUL byte".to_string();
    let program = CString::new("/bin/sh").map_err(nul)?;
    let args = [
        CString::new("sh").map_err(nul)?,
        CString::new("-c").map_err(nul)?,
        CString::new(spec.command.as_str()).map_err(nul)?,
    ];
    let env = spec
        .env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(nul))
        .collect::<Result<Vec<_>, _>>()?;
    std::env::set_current_dir(&spec.workspace).map_err(step("cannot enter the workspace"))?;
    if let Some(fd) = spec.egress_fd {
        crate::egress::hand_over_listener(fd)?;
    }
    if let Some(processes) = spec.processes {
        setrlimit(Resource::RLIMIT_NPROC, processes, processes).map_err(step("cannot limit processes"))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(step("cannot set no-new-privs"))?;
    drop_capabilities()?;
    landlock(spec)?;
    let (filter, clone3) = seccomp_filters()?;
    seccompiler::apply_filter(&clone3).map_err(step("cannot install the seccomp filter"))?;
    seccompiler::apply_filter(&filter).map_err(step("cannot install the seccomp filter"))?;
    if spec.status_fd.is_some() {
        crate::builtin::report(spec.status_fd, crate::STARTED);
    }
    let error = nix::unistd::execve(&program, &args, &env).map_err(step("cannot run /bin/sh"));
    match error {
        Err(error) => Err(error),
        Ok(never) => match never {},
    }
}

/// Empties the bounding and ambient sets, then the effective, permitted and inheritable sets,
/// so neither this process nor anything it execs (even as uid 0) holds a capability.
fn drop_capabilities() -> Result<(), String> {
    for cap in 0..64 {
        // SAFETY: PR_CAPBSET_READ/DROP take an integer argument and touch no memory.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as libc::c_ulong, 0, 0, 0) };
        if present == 1 {
            // SAFETY: as above.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
                let error = std::io::Error::last_os_error();
                return Err(format!("cannot drop capability {cap} from the bounding set: {error}"));
            }
        }
    }
    // SAFETY: integer arguments only. Fails with EINVAL on kernels without ambient caps: fine.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header { version: 0x2008_0522, pid: 0 }; // _LINUX_CAPABILITY_VERSION_3
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads a v3 header and two data structs, which live for the call.
    let result = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if result != 0 {
        return Err(format!("cannot drop capabilities: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Read (and execute) everywhere; write only the workspace (when writable), `/tmp`, `/dev/shm`
/// and `/dev` nodes.
fn landlock(spec: &Spec) -> Result<(), String> {
    let error = step("cannot apply Landlock");
    let device_write = AccessFs::from_read(LANDLOCK_ABI) | AccessFs::WriteFile;
    Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .map_err(&error)?
        .create()
        .map_err(&error)?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(LANDLOCK_ABI)))
        .map_err(&error)?
        .add_rules(path_beneath_rules(["/dev"], device_write))
        .map_err(&error)?
        .add_rules(path_beneath_rules(
            spec.workspace_writable
                .then_some(spec.workspace.as_os_str())
                .into_iter()
                .chain([std::ffi::OsStr::from_bytes(b"/tmp"), std::ffi::OsStr::from_bytes(b"/dev/shm")]),
            AccessFs::from_all(LANDLOCK_ABI),
        ))
        .map_err(&error)?
        .restrict_self()
        .map_err(&error)?;
    // Best effort on kernels without Landlock (`NotEnforced`): the namespaces and the
    // read-only mounts still hold.
    Ok(())
}

/// Syscalls refused with `EPERM`: kernel and mount administration, namespaces, tracing other
/// processes, BPF, keyrings, perf, raw I/O ports and module loading.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_bpf,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_perf_event_open,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// The main filter (refuses `DENIED`, `clone` with namespace flags, and the terminal-injection
/// ioctls) and one that answers `clone3` with `ENOSYS`: its flags sit in memory a filter cannot
/// read, and `ENOSYS` makes libc fall back to `clone`, whose flags the main filter checks.
pub(crate) fn seccomp_filters() -> Result<(BpfProgram, BpfProgram), String> {
    let error = step("cannot build the seccomp filter");
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(&error)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let flag_rule = |flag: libc::c_int| -> Result<SeccompRule, String> {
        let flag = flag as u64;
        let condition = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(flag), flag)
            .map_err(&error)?;
        SeccompRule::new(vec![condition]).map_err(&error)
    };
    let namespaces = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ];
    rules.insert(libc::SYS_clone, namespaces.iter().map(|&f| flag_rule(f)).collect::<Result<_, _>>()?);
    let ioctl_rule = |request: libc::c_ulong| -> Result<SeccompRule, String> {
        let condition =
            SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, request).map_err(&error)?;
        SeccompRule::new(vec![condition]).map_err(&error)
    };
    rules.insert(libc::SYS_ioctl, vec![ioctl_rule(libc::TIOCSTI)?, ioctl_rule(libc::TIOCLINUX)?]);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, eperm, arch).map_err(&error)?;
    let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into_iter().collect();
    let enosys = SeccompAction::Errno(libc::ENOSYS as u32);
    let clone3 = SeccompFilter::new(clone3, SeccompAction::Allow, enosys, arch).map_err(&error)?;
    Ok((filter.try_into().map_err(&error)?, clone3.try_into().map_err(&error)?))
}
