//! The bubblewrap mechanism: the arguments that make `bwrap` (0.8) build the same sandbox as
//! the built-in path. bwrap creates the namespaces and the filesystem view; inside, it runs the
//! helper (`clawdia __sandbox-exec SPEC`) for the last stage (process limit counted inside the
//! user namespace, Landlock, seccomp), which then execs `/bin/sh -c COMMAND`.

use std::ffi::OsString;
use std::path::Path;

use crate::Spec;

/// `bwrap` arguments for `spec`, ending with the helper invocation.
pub(crate) fn arguments(spec: &Spec, helper: &Path, spec_json: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |items: &[&std::ffi::OsStr]| args.extend(items.iter().map(|s| s.to_os_string()));
    let workspace = spec.workspace.as_os_str();
    push(&[
        "--unshare-all".as_ref(),
        "--unshare-user".as_ref(),
        "--disable-userns".as_ref(),
        "--die-with-parent".as_ref(),
        "--new-session".as_ref(),
        "--hostname".as_ref(),
        "sandbox".as_ref(),
        "--ro-bind".as_ref(),
        "/".as_ref(),
        "/".as_ref(),
        "--dev".as_ref(),
        "/dev".as_ref(),
        "--proc".as_ref(),
        "/proc".as_ref(),
        "--tmpfs".as_ref(),
        "/tmp".as_ref(),
        "--tmpfs".as_ref(),
        "/dev/shm".as_ref(),
    ]);
    for path in &spec.visible {
        push(&["--ro-bind".as_ref(), path.as_os_str(), path.as_os_str()]);
    }
    push(&[if spec.workspace_writable { "--bind" } else { "--ro-bind" }.as_ref(), workspace, workspace]);
    for hidden in &spec.hidden {
        let path = hidden.as_os_str();
        if hidden.is_dir() {
            push(&[
                "--perms".as_ref(),
                "0000".as_ref(),
                "--tmpfs".as_ref(),
                path,
                "--remount-ro".as_ref(),
                path,
            ]);
        } else if hidden.exists() {
            push(&["--ro-bind".as_ref(), "/dev/null".as_ref(), path]);
        }
    }
    push(&[
        "--cap-drop".as_ref(),
        "ALL".as_ref(),
        "--clearenv".as_ref(),
        "--chdir".as_ref(),
        workspace,
        "--".as_ref(),
        helper.as_os_str(),
        crate::EXEC_ARG.as_ref(),
        spec_json.as_ref(),
    ]);
    args
}
