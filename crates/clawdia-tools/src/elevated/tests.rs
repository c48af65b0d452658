//! Tests of `host_exec`: the sender allowlist, the program and argument patterns, credential
//! injection with masking, streaming, and that every run and refusal is audited. The programs
//! are real host binaries (`/bin/echo`, `/bin/sh`, `/usr/bin/env`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawdia_core::{AuditEvent, AuditSink, Severity, Tool, ToolContext, ToolError, TurnOrigin};
use proptest::prelude::*;
use serde_json::json;

use super::{HostCommand, HostExec, HostExecSettings, args_match, sender_matches, wildcard};
use crate::exec::Utf8Stream;

#[derive(Default)]
struct Audit(Mutex<Vec<AuditEvent>>);

impl AuditSink for Audit {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Audit {
    fn kinds(&self) -> Vec<(String, Severity)> {
        self.0.lock().unwrap().iter().map(|e| (e.kind.clone(), e.severity)).collect()
    }
}

fn command(path: &str, args: &[&str]) -> HostCommand {
    HostCommand {
        path: path.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        timeout: Duration::from_secs(10),
        description: None,
    }
}

fn tool(senders: &[&str], commands: Vec<HostCommand>) -> (HostExec, Arc<Audit>) {
    let audit = Arc::new(Audit::default());
    let settings = HostExecSettings {
        senders: senders.iter().map(|s| s.to_string()).collect(),
        commands,
        kill_grace: Duration::from_millis(200),
        max_output_bytes: 4096,
    };
    (HostExec::new(settings, audit.clone()), audit)
}

fn context(workspace: &Path, origin: TurnOrigin, sender: Option<&str>) -> ToolContext {
    let mut context = ToolContext::new("ops", "s-1", workspace, origin);
    context.sender = sender.map(str::to_string);
    context
}

#[tokio::test]
async fn an_allowlisted_command_from_an_allowlisted_sender_runs_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (tool, audit) = tool(&["cli"], vec![command("/bin/echo", &["deploy", "*"])]);
    assert_eq!(tool.group(), "elevated");
    assert!(tool.spec().description.contains("/bin/echo deploy *"));
    let out = tool
        .call(
            &context(dir.path(), TurnOrigin::Cli, None),
            json!({"program": "/bin/echo", "args": ["deploy", "site-1"]}),
        )
        .await
        .unwrap();
    assert!(out.starts_with("exit code 0"), "{out}");
    assert!(out.ends_with("deploy site-1\n"), "{out}");
    assert_eq!(audit.kinds(), [("elevated_exec".to_string(), Severity::NOTICE)]);
}

#[tokio::test]
async fn other_senders_are_refused_and_audited_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    let (tool, audit) = tool(&["cli", "api:alice"], vec![command("/bin/sh", &["-c", &script])]);
    let args = json!({"program": "/bin/sh", "args": ["-c", script]});
    for (origin, sender) in [
        (TurnOrigin::Api, None),
        (TurnOrigin::Api, Some("bob")),
        (TurnOrigin::Scheduler, None),
        (TurnOrigin::Subagent, Some("cli")),
    ] {
        let error = tool.call(&context(dir.path(), origin, sender), args.clone()).await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(_)), "{error}");
        assert!(error.to_string().contains("may not run host commands"), "{error}");
    }
    assert!(!marker.exists(), "a refused command ran");
    assert_eq!(audit.kinds().len(), 4);
    assert!(
        audit
            .kinds()
            .iter()
            .all(|(kind, severity)| kind == "elevated_refused" && *severity == Severity::HIGH)
    );
    tool.call(&context(dir.path(), TurnOrigin::Api, Some("alice")), args).await.unwrap();
    assert!(marker.exists());
}

#[tokio::test]
async fn programs_and_arguments_off_the_allowlist_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (tool, audit) =
        tool(&["cli"], vec![command("/bin/echo", &["status"]), command("/bin/sh", &["-c", "true"])]);
    let cli = context(dir.path(), TurnOrigin::Cli, None);
    for arguments in [
        json!({"program": "/bin/echo", "args": ["status", "--extra"]}),
        json!({"program": "/bin/echo", "args": []}),
        json!({"program": "echo", "args": ["status"]}),
        json!({"program": "/usr/bin/../../bin/echo", "args": ["status"]}),
        json!({"program": "/bin/sh", "args": ["-c", "true; rm -rf ~"]}),
        json!({"program": "/bin/cat", "args": ["/etc/shadow"]}),
    ] {
        let error = tool.call(&cli, arguments.clone()).await.unwrap_err();
        assert!(error.to_string().contains("is not on this agent's allowlist"), "{arguments}: {error}");
    }
    assert_eq!(audit.kinds().len(), 6);
    let bad = tool.call(&cli, json!({"program": "/bin/echo", "args": "status"})).await.unwrap_err();
    assert!(matches!(bad, ToolError::InvalidArguments(_)), "{bad}");
}

#[tokio::test]
async fn credentials_are_injected_at_the_boundary_and_masked_in_what_the_model_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut env_command = command("/usr/bin/env", &[]);
    env_command.env.push(("DEPLOY_TOKEN".into(), Arc::new(|| Ok("tok-3f9a81c2e7".to_string()))));
    let mut missing = command("/bin/echo", &["x"]);
    missing.env.push((
        "OTHER".into(),
        Arc::new(|| Err("{ env = \"OTHER_TOKEN\" }: environment variable is not set".into())),
    ));
    let (tool, _audit) = tool(&["cli"], vec![env_command, missing]);
    let streamed = Arc::new(Mutex::new(String::new()));
    let mut cli = context(dir.path(), TurnOrigin::Cli, None);
    let sink = streamed.clone();
    cli.progress = Some(Arc::new(move |text: &str| sink.lock().unwrap().push_str(text)));
    let out = tool.call(&cli, json!({"program": "/usr/bin/env"})).await.unwrap();
    assert!(out.contains("DEPLOY_TOKEN=[DEPLOY_TOKEN redacted]"), "{out}");
    assert!(!out.contains("tok-3f9a81c2e7"));
    let streamed = streamed.lock().unwrap().clone();
    assert!(streamed.contains("DEPLOY_TOKEN=[DEPLOY_TOKEN redacted]"), "{streamed}");
    assert!(!streamed.contains("tok-3f9a81c2e7"));
    // Nothing of the gateway's own environment reaches the host command either.
    assert!(!out.contains("CARGO"), "{out}");
    let error = tool.call(&cli, json!({"program": "/bin/echo", "args": ["x"]})).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "credential `OTHER`: { env = \"OTHER_TOKEN\" }: environment variable is not set"
    );
}

#[test]
fn sender_patterns() {
    assert!(sender_matches("cli", "cli"));
    assert!(!sender_matches("cli", "subagent:cli"));
    assert!(sender_matches("api:*", "api:alice"));
    assert!(!sender_matches("api:*", "api"));
    assert!(!sender_matches("api:*", "apix:alice"));
    assert!(sender_matches("subagent:*", "subagent:api:alice"));
    assert!(!sender_matches("api", "api:alice"));
}

#[test]
fn argument_patterns() {
    let p = |patterns: &[&str]| patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let a = p;
    assert!(args_match(&p(&[]), &a(&[])));
    assert!(!args_match(&p(&[]), &a(&["x"])));
    assert!(args_match(&p(&["pull", "--ff-only"]), &a(&["pull", "--ff-only"])));
    assert!(args_match(&p(&["--branch=*"]), &a(&["--branch=main"])));
    assert!(!args_match(&p(&["--branch=*"]), &a(&["--force"])));
    assert!(args_match(&p(&["log", "**"]), &a(&["log"])));
    assert!(args_match(&p(&["log", "**"]), &a(&["log", "-n", "5"])));
    assert!(!args_match(&p(&["log", "**"]), &a(&[])));
    assert!(args_match(&p(&["*.txt"]), &a(&["a.b.txt"])));
    assert!(!args_match(&p(&["*.txt"]), &a(&["a.txt.sh"])));
    assert!(args_match(&p(&["a*b*c"]), &a(&["aXbYbZc"])));
    // `*` never spans two arguments.
    assert!(!args_match(&p(&["-C", "*"]), &a(&["-C", "/srv", "push"])));
}

#[test]
fn a_utf8_character_split_across_chunks_arrives_whole() {
    let mut stream = Utf8Stream::default();
    let bytes = "é✓".as_bytes();
    assert_eq!(stream.push(&bytes[..1]), "");
    assert_eq!(stream.push(&bytes[1..3]), "é");
    assert_eq!(stream.push(&bytes[3..]), "✓");
    assert_eq!(stream.push(b"\xff ok"), "\u{fffd} ok");
}

proptest! {
    #[test]
    fn a_pattern_without_stars_matches_only_itself(pattern in "[a-z./=-]{0,12}", text in "[a-z./=-]{0,12}") {
        prop_assert_eq!(wildcard(pattern.as_bytes(), text.as_bytes()), pattern == text);
    }

    #[test]
    fn a_star_matches_any_infix(prefix in "[a-z]{0,5}", middle in "\\PC{0,8}", suffix in "[a-z]{0,5}") {
        let pattern = format!("{prefix}*{suffix}");
        let text = format!("{prefix}{middle}{suffix}");
        prop_assert!(wildcard(pattern.as_bytes(), text.as_bytes()));
    }
}
