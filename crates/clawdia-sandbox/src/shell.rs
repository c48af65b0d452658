//! Host shell commands: `/bin/sh -c COMMAND` on the host, outside the sandbox, for callers whose
//! owner configured a command meant to touch the machine (the scheduler's shell jobs). Built the
//! one way: a clean environment (`PATH` and `LANG`, then only the caller's variables), stdin
//! closed, stdout and stderr merged into one pipe, the working directory, the leader of its own
//! process group (`ProcessTree`, killed on drop), and `SIGKILL` when the thread that started it
//! dies (`PR_SET_PDEATHSIG`), so a crashed gateway leaves no job behind. Watching and ending the
//! tree (timeouts, escaped descendants) is the caller's.

use std::io;
use std::path::Path;
use std::process::Stdio;

use crate::{DEFAULT_PATH, ProcessTree};

/// A started host shell: its process tree and the read end of its merged stdout and stderr.
#[derive(Debug)]
pub struct HostShell {
    pub tree: ProcessTree,
    pub output: io::PipeReader,
}

/// Starts `/bin/sh -c command` in `cwd` with `PATH`, `LANG` and then `env` (later entries win),
/// nothing else of the caller's environment. Needs a tokio runtime (the child is tokio's).
pub fn spawn_host_shell(command: &str, cwd: &Path, env: &[(String, String)]) -> io::Result<HostShell> {
    #[allow(
        clippy::disallowed_methods,
        reason = "the scheduler's host shell: clean environment, own process group, parent-death signal"
    )]
    let mut shell = tokio::process::Command::new("/bin/sh");
    shell.arg("-c").arg(command).current_dir(cwd).env_clear();
    shell.env("PATH", DEFAULT_PATH).env("LANG", "C.UTF-8");
    shell.envs(env.iter().cloned());
    let (read, write) = io::pipe()?;
    let stderr = write.try_clone()?;
    shell.stdin(Stdio::null()).stdout(write).stderr(stderr);
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe; it touches no memory of the parent.
    unsafe {
        shell.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let tree = ProcessTree::spawn(&mut shell)?;
    // `shell` holds the pipe's write ends: dropping it here leaves the child the only writer,
    // so the reader sees end-of-file when the command's tree is done.
    drop(shell);
    Ok(HostShell { tree, output: read })
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::time::{Duration, Instant};

    use super::*;

    fn state(pid: i32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next())
    }

    #[tokio::test]
    async fn output_is_merged_and_only_the_given_environment_is_visible() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: a test-only variable, set before any child starts; read by nobody else.
        unsafe { std::env::set_var("CLAWDIA_SHELL_TEST_PARENT_ONLY", "leaked") };
        let env = vec![("JOB".to_string(), "one".to_string()), ("JOB".to_string(), "two".to_string())];
        let mut shell =
            spawn_host_shell("echo to-stdout; echo to-stderr >&2; env; pwd", dir.path(), &env).unwrap();
        let status = shell.tree.wait().await.unwrap();
        let mut output = String::new();
        shell.output.read_to_string(&mut output).unwrap();
        assert!(status.success(), "{output}");
        assert!(output.contains("to-stdout\n") && output.contains("to-stderr\n"), "{output}");
        assert!(output.contains(&format!("PATH={DEFAULT_PATH}\n")), "{output}");
        assert!(output.contains("LANG=C.UTF-8\n"), "{output}");
        assert!(
            output.contains("JOB=two\n") && !output.contains("JOB=one"),
            "the later entry wins: {output}"
        );
        assert!(
            !output.contains("CLAWDIA_SHELL_TEST_PARENT_ONLY"),
            "the caller's environment leaked: {output}"
        );
        let cwd = dir.path().canonicalize().unwrap();
        assert!(output.lines().any(|line| Path::new(line) == cwd), "ran in {}: {output}", cwd.display());
    }

    #[tokio::test]
    async fn the_shell_leads_its_own_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let mut shell = spawn_host_shell("sleep 30", dir.path(), &[]).unwrap();
        let pgid = shell.tree.pgid();
        assert_eq!(nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pgid))).unwrap().as_raw(), pgid);
        assert_ne!(pgid, nix::unistd::getpgrp().as_raw(), "not in the caller's group");
        shell.tree.terminate(Duration::from_millis(100)).await.unwrap();
    }

    #[test]
    fn the_shell_dies_with_the_thread_that_started_it() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().to_path_buf();
        let (pid_tx, pid_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = std::sync::mpsc::channel::<()>();
        let starter = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let shell = runtime.block_on(async { spawn_host_shell("sleep 30", &cwd, &[]) }).unwrap();
            pid_tx.send(shell.tree.pgid()).unwrap();
            // Keep the tree (its drop would kill the child): only the thread's death may.
            std::mem::forget(shell);
            let _ = exit_rx.recv();
        });
        let pid = pid_rx.recv().unwrap();
        // The control: the command runs while the thread that started it lives.
        std::thread::sleep(Duration::from_millis(200));
        assert!(matches!(state(pid), Some('S' | 'R')), "state {:?}", state(pid));
        exit_tx.send(()).unwrap();
        starter.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(state(pid), Some('S' | 'R')) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let end = state(pid);
        assert!(matches!(end, None | Some('Z')), "still running after its thread died: {end:?}");
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    }
}
