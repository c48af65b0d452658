//! Host programs: runs one binary by absolute path with an explicit argument vector, outside
//! the sandbox, for callers that decided it may run (an owner's allowlist of elevated
//! commands). No shell parses anything: the arguments reach `execve` as given. What still
//! holds: a clean environment (only the policy's), the policy's rlimits, its own process group
//! with the timeout killing the whole tree, capped output, and the working directory.

use std::path::Path;

use crate::process::apply_rlimits;
use crate::{Outcome, Policy, SandboxError, supervise};

/// Runs `program` with `args` on the host in `policy.workspace`, with `policy.environment()`
/// only, and calls `on_output` with output as it arrives (stdout and stderr merged, capped).
/// `policy.network`, `hidden` and `workspace_writable` do not apply: this is not a sandbox.
/// Its stdin is empty (`/dev/null`).
pub async fn run_host(
    program: &Path,
    args: &[String],
    policy: &Policy,
    on_output: impl FnMut(&[u8]),
) -> Result<Outcome, SandboxError> {
    run_host_with_input(program, args, policy, None, on_output).await
}

/// [`run_host`], with `input` (when given) written to the program's stdin, which is then closed:
/// a notification hook reads its alert there. A program that exits without reading it all is
/// not an error of the run.
pub async fn run_host_with_input(
    program: &Path,
    args: &[String],
    policy: &Policy,
    input: Option<&[u8]>,
    on_output: impl FnMut(&[u8]),
) -> Result<Outcome, SandboxError> {
    if !program.is_absolute() {
        return Err(SandboxError::InvalidPolicy(format!(
            "host program {} is not an absolute path",
            program.display()
        )));
    }
    let metadata = std::fs::metadata(program)
        .map_err(|e| SandboxError::Spawn(format!("host program {}: {e}", program.display())))?;
    if !metadata.is_file() {
        return Err(SandboxError::Spawn(format!("host program {} is not a file", program.display())));
    }
    if !policy.workspace.is_dir() {
        return Err(SandboxError::InvalidPolicy(format!(
            "working folder {} is not a folder",
            policy.workspace.display()
        )));
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "the one spawn of an owner-allowlisted host binary, by absolute path"
    )]
    let mut command = tokio::process::Command::new(program);
    command.args(args).current_dir(&policy.workspace).env_clear().envs(policy.environment());
    let limits = policy.limits;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe syscalls
    // (setrlimit, prctl).
    unsafe {
        command.pre_exec(move || {
            apply_rlimits(&limits, false)?;
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let what = program.display().to_string();
    Ok(supervise(command, policy, &what, input, on_output).await?.outcome())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn policy(dir: &Path) -> Policy {
        let mut policy = Policy::new(dir);
        policy.timeout = Duration::from_secs(10);
        policy.kill_grace = Duration::from_millis(200);
        policy
    }

    #[tokio::test]
    async fn arguments_reach_the_program_verbatim_without_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let args = vec!["$HOME; touch pwned".to_string(), "`id`".to_string()];
        let outcome = run_host(Path::new("/bin/echo"), &args, &policy(dir.path()), |_| {}).await.unwrap();
        assert_eq!(outcome.exit_code, Some(0));
        assert_eq!(outcome.output, "$HOME; touch pwned `id`\n");
        assert!(!dir.path().join("pwned").exists());
    }

    #[tokio::test]
    async fn only_the_policy_environment_is_visible_and_injected_credentials_are() {
        let dir = tempfile::tempdir().unwrap();
        assert!(std::env::var_os("PATH").is_some());
        let mut policy = policy(dir.path());
        policy.env.push(("GH_TOKEN".into(), "injected-at-the-boundary".into()));
        let outcome = run_host(Path::new("/usr/bin/env"), &[], &policy, |_| {}).await.unwrap();
        assert!(outcome.output.contains("GH_TOKEN=injected-at-the-boundary"), "{}", outcome.output);
        assert!(outcome.output.contains(&format!("PATH={}", crate::DEFAULT_PATH)));
        // Variables of the calling process (cargo's, the test runner's) stay outside.
        for (key, _) in std::env::vars() {
            if !policy.environment().iter().any(|(k, _)| *k == key) {
                assert!(!outcome.output.contains(&format!("\n{key}=")), "{key} leaked");
            }
        }
    }

    #[tokio::test]
    async fn the_timeout_kills_the_whole_tree_and_output_streams() {
        let dir = tempfile::tempdir().unwrap();
        let mut policy = policy(dir.path());
        policy.timeout = Duration::from_millis(500);
        let args = vec!["-c".to_string(), "echo started; sleep 31.4159 & sleep 30".to_string()];
        let mut streamed = Vec::new();
        let begun = Instant::now();
        let outcome =
            run_host(Path::new("/bin/sh"), &args, &policy, |bytes| streamed.extend_from_slice(bytes))
                .await
                .unwrap();
        assert!(outcome.timed_out);
        assert!(begun.elapsed() < Duration::from_secs(10));
        assert_eq!(String::from_utf8_lossy(&streamed), "started\n");
        let survivors: Vec<_> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .filter(|cmdline| cmdline == b"sleep\x0031.4159\x00")
            .collect();
        assert!(survivors.is_empty(), "the backgrounded grandchild survived the timeout");
    }

    #[tokio::test]
    async fn input_reaches_stdin_and_without_input_stdin_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let input = b"{\"kind\":\"job_failing\"}\nsecond line";
        let outcome =
            run_host_with_input(Path::new("/bin/cat"), &[], &policy(dir.path()), Some(input), |_| {})
                .await
                .unwrap();
        assert_eq!(outcome.exit_code, Some(0));
        assert_eq!(outcome.output.as_bytes(), input);
        // Positive control of the boundary: the plain call still gives an empty stdin.
        let empty = run_host(Path::new("/bin/cat"), &[], &policy(dir.path()), |_| {}).await.unwrap();
        assert_eq!((empty.exit_code, empty.output.as_str()), (Some(0), ""));
    }

    #[tokio::test]
    async fn a_program_that_ignores_a_large_input_still_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let input = vec![b'x'; 1 << 20];
        let args = vec!["-c".to_string(), "echo ignored".to_string()];
        let outcome =
            run_host_with_input(Path::new("/bin/sh"), &args, &policy(dir.path()), Some(&input), |_| {})
                .await
                .unwrap();
        assert_eq!(outcome.exit_code, Some(0));
        assert!(!outcome.timed_out);
        assert_eq!(outcome.output, "ignored\n");
    }

    #[tokio::test]
    async fn relative_and_missing_programs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let relative = run_host(Path::new("echo"), &[], &policy(dir.path()), |_| {}).await.unwrap_err();
        assert!(relative.to_string().contains("not an absolute path"), "{relative}");
        let missing =
            run_host(Path::new("/nonexistent/tool"), &[], &policy(dir.path()), |_| {}).await.unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/tool"), "{missing}");
    }
}
