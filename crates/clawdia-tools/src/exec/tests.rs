//! Tests of the `exec` tool's contract with the model: arguments, the report of exit codes and
//! timeouts, and the refusal when no sandbox works. The sandbox's boundaries are proved in
//! `clawdia-sandbox`'s own tests and end to end through the `clawdia` binary.

use std::path::Path;
use std::time::Duration;

use clawdia_core::{Tool, ToolContext, ToolError};
use serde_json::json;

use super::{Exec, ExecSettings};
use crate::{ExecLimits, SandboxChoice};

fn settings(sandbox: SandboxChoice, helper: &str) -> ExecSettings {
    ExecSettings {
        sandbox,
        helper: helper.into(),
        hidden: Vec::new(),
        read_only_workspace: false,
        limits: ExecLimits::default(),
        default_timeout: Duration::from_secs(10),
        max_timeout: Duration::from_secs(2),
        kill_grace: Duration::from_millis(200),
        max_output_bytes: 1000,
        egress: Vec::new(),
    }
}

fn context(workspace: &Path) -> ToolContext {
    ToolContext::new("main", "s-test", workspace, clawdia_core::TurnOrigin::Cli)
}

async fn call(exec: &Exec, workspace: &Path, arguments: serde_json::Value) -> Result<String, ToolError> {
    exec.call(&context(workspace), arguments).await
}

#[tokio::test]
async fn exec_reports_the_exit_code_and_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Exec::new(settings(SandboxChoice::Off, "/nonexistent"));
    assert_eq!(exec.group(), "exec");
    let text =
        call(&exec, dir.path(), json!({"command": "echo hello; echo oops >&2; exit 4"})).await.unwrap();
    assert!(text.starts_with("exit code 4 ("), "{text}");
    assert!(text.ends_with("--- output (11 bytes) ---\nhello\noops\n"), "{text}");
    let text = call(&exec, dir.path(), json!({"command": "pwd"})).await.unwrap();
    assert!(text.contains(&dir.path().display().to_string()), "runs in the workspace: {text}");
}

#[tokio::test]
async fn exec_says_when_it_timed_out_and_clamps_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Exec::new(settings(SandboxChoice::Off, "/nonexistent"));
    let started = std::time::Instant::now();
    let text = call(&exec, dir.path(), json!({"command": "echo begun; sleep 30", "timeout_seconds": 600}))
        .await
        .unwrap();
    assert!(
        text.starts_with("timed out after 2s: the command and everything it started were killed"),
        "{text}"
    );
    assert!(text.contains("begun"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(6));
}

#[tokio::test]
async fn exec_caps_output() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Exec::new(settings(SandboxChoice::Off, "/nonexistent"));
    let text = call(&exec, dir.path(), json!({"command": "seq 1 10000"})).await.unwrap();
    assert!(text.contains("(48894 bytes, truncated)"), "{text}");
    assert!(text.contains("bytes of output omitted"), "{text}");
    assert!(text.len() < 1200);
}

#[tokio::test]
async fn exec_checks_its_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Exec::new(settings(SandboxChoice::Off, "/nonexistent"));
    for arguments in [json!({}), json!({"command": "  "}), json!({"command": "true", "timeout_seconds": 0})] {
        let error = call(&exec, dir.path(), arguments.clone()).await.unwrap_err();
        assert!(matches!(error, ToolError::InvalidArguments(_)), "{arguments}: {error}");
    }
}

#[tokio::test]
async fn exec_refuses_with_the_reason_and_fix_when_the_sandbox_does_not_work() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    // `/bin/false` as the helper: the built-in sandbox cannot start.
    let exec = Exec::new(settings(SandboxChoice::Builtin, "/bin/false"));
    let command = format!("touch {}", marker.display());
    let error = call(&exec, dir.path(), json!({"command": command})).await.unwrap_err();
    let ToolError::Refused(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("the built-in sandbox does not work here"), "{message}");
    assert!(message.contains("fix: enable unprivileged user namespaces"), "{message}");
    assert!(!marker.exists(), "the command must not run unsandboxed");
}

#[tokio::test]
async fn exec_does_not_pass_the_gateway_environment_even_unsandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Exec::new(settings(SandboxChoice::Off, "/nonexistent"));
    assert!(std::env::var_os("PATH").is_some(), "the test process has an environment");
    // (`PWD` is the shell's own.)
    let text =
        call(&exec, dir.path(), json!({"command": "env | sort | cut -d= -f1 | tr '\\n' ' '"})).await.unwrap();
    assert!(text.ends_with("HOME LANG LC_ALL PATH PWD SHELL TERM TMPDIR "), "{text}");
}

#[tokio::test]
async fn exec_streams_output_while_the_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Exec::new(settings(SandboxChoice::Off, "/nonexistent"));
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut context = context(dir.path());
    context.progress = Some(std::sync::Arc::new(move |text: &str| {
        let _ = sender.send(text.to_string());
    }));
    let run = exec.call(&context, json!({"command": "echo first; sleep 1; echo second"}));
    tokio::pin!(run);
    // The first line arrives while the command is still sleeping.
    let first = tokio::select! {
        text = receiver.recv() => text.unwrap(),
        _ = &mut run => panic!("the command ended before any output was streamed"),
    };
    assert_eq!(first, "first\n");
    let out = run.await.unwrap();
    assert!(out.ends_with("first\nsecond\n"), "{out}");
    assert_eq!(receiver.recv().await.as_deref(), Some("second\n"));
}

#[test]
fn exec_tells_the_model_which_hosts_the_proxy_reaches() {
    let closed = Exec::new(settings(SandboxChoice::Off, "/nonexistent"));
    assert!(closed.spec().description.contains("there is no network"), "{}", closed.spec().description);
    let mut open = settings(SandboxChoice::Off, "/nonexistent");
    open.egress = vec!["api.github.com:443".into(), "*.pypi.org".into()];
    let description = Exec::new(open).spec().description.clone();
    assert!(!description.contains("there is no network"), "{description}");
    assert!(description.contains("http://127.0.0.1:3128"), "{description}");
    assert!(description.contains("only to api.github.com:443, *.pypi.org"), "{description}");
    assert!(description.contains("refused with 403"), "{description}");
}
