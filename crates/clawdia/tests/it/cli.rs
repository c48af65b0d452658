//! The command line without a running gateway: init, config errors, one-shot chat with
//! fallback and budgets, tool boundaries, sessions export/import, status and doctor.

use std::os::unix::fs::PermissionsExt;

use crate::support::*;

#[test]
fn init_creates_the_home_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let run = |args: &[&str]| {
        std::process::Command::new(binary()).arg("--home").arg(&home).args(args).output().unwrap()
    };
    let out = run(&["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for path in [
        "clawdia.toml",
        "state",
        "secrets/gateway-token",
        "models",
        "logs",
        "workspaces/main/IDENTITY.md",
        "workspaces/main/SOUL.md",
        "workspaces/main/USER.md",
        "workspaces/main/AGENTS.md",
        "workspaces/main/MEMORY.md",
        "workspaces/main/memory",
        "workspaces/main/skills",
        "workspaces/main/docs",
    ] {
        assert!(home.join(path).exists(), "{path} missing");
    }
    let mode = std::fs::metadata(home.join("secrets/gateway-token")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = std::fs::read_to_string(home.join("secrets/gateway-token")).unwrap();
    assert_eq!(token.trim().len(), 64);
    std::fs::write(home.join("clawdia.toml"), "# mine\n").unwrap();
    let out = run(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists; use --force"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(home.join("clawdia.toml")).unwrap(), "# mine\n");
    let out = run(&["init", "--force"]);
    assert!(out.status.success());
    assert_ne!(std::fs::read_to_string(home.join("clawdia.toml")).unwrap(), "# mine\n");
    assert_eq!(std::fs::read_to_string(home.join("secrets/gateway-token")).unwrap(), token, "token kept");
    let out = run(&["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_empty_token_file_names_the_file_and_init_force_token_replaces_it() {
    let home = Home::new();
    let token_file = home.path().join("secrets/gateway-token");
    let config = std::fs::read_to_string(home.path().join("clawdia.toml")).unwrap();
    std::fs::write(&token_file, "\n").unwrap();
    let out = home.run(&["up"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let error = stderr(&out);
    assert_eq!(error.trim().lines().count(), 1, "{error}");
    assert!(error.contains(&token_file.display().to_string()) && error.contains("empty"), "{error}");
    assert!(error.contains("run `clawdia init --force-token`"), "{error}");
    // Plain `init` refuses (the config exists) but points at the flag; the flag works.
    let out = home.run(&["init"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--force-token"), "{}", stderr(&out));
    let out = home.run(&["init", "--force-token"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("new gateway token"), "{}", stdout(&out));
    assert_eq!(std::fs::read_to_string(home.path().join("clawdia.toml")).unwrap(), config, "config kept");
    assert_eq!(home.token().len(), 64);
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let first = home.token();
    assert!(home.run(&["init", "--force-token"]).status.success());
    assert_ne!(home.token(), first, "each run writes a new token");
    // The gateway starts with it and accepts it.
    let gateway = home.up();
    let (status, _) = http(gateway.addr, "GET", "/v1/models", Some(&home.token()), "");
    assert_eq!(status, 200);
}

#[test]
fn up_and_chat_warn_about_secret_files_other_users_can_read() {
    let home = Home::new();
    let token_file = home.path().join("secrets/gateway-token");
    let key_file = home.path().join("secrets/alt-key");
    std::fs::write(&key_file, "sk-test\n").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = std::fs::read_to_string(home.path().join("clawdia.toml")).unwrap();
    let config = config
        .replace("read_timeout_secs = 5", "read_timeout_secs = 5\napi_key = { file = \"secrets/alt-key\" }");
    std::fs::write(home.path().join("clawdia.toml"), config).unwrap();
    // Positive control: owner-only files, no warning.
    home.mock.push(Reply::text("quiet"));
    let out = home.run(&["chat", "-m", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let (gateway, early) = home.up_with_early_stderr();
    assert!(!early.iter().any(|line| line.contains("warning")), "{early:?}");
    gateway.terminate();
    for file in [&token_file, &key_file] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let expected = |path: &std::path::Path| {
        format!(
            "clawdia: warning: {} can be read by other users (fix: chmod 600 {})",
            path.display(),
            path.display()
        )
    };
    home.mock.push(Reply::text("still answers"));
    let out = home.run(&["chat", "-m", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "still answers\n", "warnings stay off stdout");
    let lines: Vec<String> = stderr(&out).lines().map(str::to_string).collect();
    assert!(lines.contains(&expected(&token_file)) && lines.contains(&expected(&key_file)), "{lines:?}");
    let (gateway, early) = home.up_with_early_stderr();
    assert!(early.contains(&expected(&token_file)) && early.contains(&expected(&key_file)), "{early:?}");
    drop(gateway);
}

#[test]
fn a_config_without_agents_warns_at_up_and_chat_says_how_to_add_one() {
    let home = Home::new();
    // Positive control: the usual config has an agent and no such warning.
    let (gateway, early) = home.up_with_early_stderr();
    assert!(!early.iter().any(|line| line.contains("no agents")), "{early:?}");
    gateway.terminate();
    // Nothing but an ephemeral port (the default 18789 may be taken on a test machine).
    std::fs::write(home.path().join("clawdia.toml"), "[gateway]\nport = 0\n").unwrap();
    let (gateway, early) = home.up_with_early_stderr();
    let warning = early.iter().find(|line| line.contains("no agents are configured")).cloned();
    let warning = warning.unwrap_or_else(|| panic!("no warning in {early:?}"));
    assert!(warning.starts_with("clawdia: warning:") && warning.contains("[agents.main]"), "{warning}");
    drop(gateway);
    let out = home.run(&["chat", "-m", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    let error = stderr(&out);
    assert!(
        error.starts_with("clawdia: error: no agents are configured: add one to clawdia.toml"),
        "{error}"
    );
    assert_eq!(error.trim().lines().count(), 1, "{error}");
}

#[test]
fn config_errors_are_one_line_with_key_and_line() {
    let home = Home::new();
    let cases = [
        ("[gateway]\nport = \"abc\"\n", "clawdia.toml:2: gateway.port:"),
        ("[agents.main]\nmodel = \"nope/x\"\n", "clawdia.toml:2: agents.main.model: unknown provider `nope`"),
        ("[gateway]\nbind = \"127.0.0.1\"\nprot = 1\n", "clawdia.toml:3: gateway.prot: unknown key"),
        (
            "[providers.x]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\napi_key = \"sk-live-123\"\n",
            "providers.x.api_key",
        ),
    ];
    for (config, expected) in cases {
        std::fs::write(home.path().join("clawdia.toml"), config).unwrap();
        for args in [&["config", "check"][..], &["up"][..], &["chat", "-m", "hi"][..]] {
            let out = home.run(args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?} {config:?}: {err}");
            let lines: Vec<&str> = err.lines().collect();
            assert_eq!(lines.len(), 1, "one line: {err}");
            assert!(lines[0].starts_with("clawdia: error: "), "{err}");
            assert!(err.contains(expected), "{args:?}: expected {expected:?} in {err}");
            assert!(!err.contains("sk-live-123"), "secret echoed: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

#[test]
fn config_schema_is_json() {
    let home = Home::new();
    let out = home.run(&["config", "schema"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("schema is JSON");
    assert!(schema.to_string().contains("providers"));
}

#[test]
fn one_shot_chat_answers_and_records_the_session() {
    let home = Home::new();
    home.mock.push(Reply::text("Hello, owner."));
    let out = home.run(&["chat", "-m", "hi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Hello, owner.\n");
    let requests = home.mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/messages");
    assert_eq!(requests[0].header("x-api-key"), Some("test-key"));
    let system = requests[0].body["system"].to_string();
    assert!(system.contains("Name: Clawdia"), "workspace files reach the prompt: {system}");
    // The JSON form reports session, usage and model, and the session continues.
    home.mock.push(Reply::text("Still here.").usage(40, 3));
    let out = home.run(&["chat", "-m", "again", "--json"]);
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["text"], "Still here.");
    assert_eq!(json["model"], "mock/primary");
    assert_eq!(json["usage"]["input_tokens"], 40);
    let session = json["session"].as_str().unwrap().to_string();
    home.mock.push(Reply::text("Third."));
    let out = home.run(&["chat", "-s", &session, "-m", "and again"]);
    assert!(out.status.success());
    let last = home.mock.requests().pop().unwrap();
    assert_eq!(last.body["messages"].as_array().unwrap().len(), 3, "history is sent: {}", last.body);
    let messages = export(&home, &session);
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
}

#[test]
fn rate_limit_falls_back_and_is_audited() {
    let home = Home::new();
    home.mock.push(Reply::status(429).retry_after("120"));
    home.mock.push(Reply::text("from the backup"));
    let out = home.run(&["chat", "-m", "hi", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["text"], "from the backup");
    assert_eq!(json["model"], "alt/backup");
    let paths: Vec<String> = home.mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/messages", "/v1/chat/completions"]);
    // The human-readable form says a fallback answered. A 503 is retried twice on the same
    // model first.
    for _ in 0..3 {
        home.mock.push(Reply::status(503));
    }
    home.mock.push(Reply::text("backup again"));
    let out = home.run(&["chat", "-m", "hi"]);
    assert!(stderr(&out).contains("answered by fallback model alt/backup"), "{}", stderr(&out));
}

#[test]
fn truncated_and_malformed_streams_fall_back_and_nothing_partial_is_stored() {
    let home = Home::new();
    home.mock.push(Reply::truncated());
    home.mock.push(Reply::text("complete answer"));
    let out = home.run(&["chat", "-m", "hi", "--json"]);
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["text"], "complete answer", "{}", stderr(&out));
    let session = json["session"].as_str().unwrap();
    let messages = export(&home, session);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["text"], "complete answer");
    home.mock.push(Reply::malformed());
    home.mock.push(Reply::malformed());
    let out = home.run(&["chat", "-m", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("clawdia: error: every model failed: malformed"), "{err}");
}

#[test]
fn budget_blocks_the_model_call() {
    let home = Home::with_agent_extra("[agents.main.budget]\ndaily_tokens = 20\n");
    home.mock.push(Reply::text("first").usage(15, 10));
    assert!(home.run(&["chat", "-m", "one"]).status.success());
    let out = home.run(&["chat", "-m", "two"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("has used its daily budget (25 of 20 tokens"), "{}", stderr(&out));
    assert_eq!(home.mock.requests().len(), 1, "no model call over budget");
    let status = stdout(&home.run(&["status"]));
    assert!(status.contains("budget_block"), "{status}");
}

#[test]
fn tools_are_confined_to_the_workspace_and_audited() {
    let home = Home::new();
    std::fs::write(home.path().join("secret.txt"), "top secret").unwrap();
    std::fs::write(home.workspace().join("notes.txt"), "milk, eggs").unwrap();
    home.mock.push(Reply::tool_calls(vec![
        ("read", r#"{"path":"notes.txt"}"#),
        ("read", r#"{"path":"../../secret.txt"}"#),
    ]));
    home.mock.push(Reply::text("You need milk and eggs."));
    let out = home.run(&["chat", "-m", "what is on my list?", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = home.mock.requests();
    let second = &requests[1].body["messages"];
    let results = second.as_array().unwrap().last().unwrap()["content"].as_array().unwrap().clone();
    assert_eq!(results.len(), 2, "both results in one user message: {second}");
    let ok = results[0]["content"].to_string();
    assert!(ok.contains("milk, eggs") && ok.contains("<<<untrusted "), "{ok}");
    let refused = results[1].to_string();
    assert!(refused.contains("outside the workspace") && !refused.contains("top secret"), "{refused}");
    assert_eq!(results[1]["is_error"], true);
}

#[test]
fn tool_policy_denies_and_writes_stay_inside() {
    let home =
        Home::with_agent_extra("[agents.main.tools]\nallow = [\"read\", \"write\"]\ndeny = [\"write\"]\n");
    home.mock.push(Reply::tool_calls(vec![("write", r#"{"path":"x.txt","content":"data"}"#)]));
    home.mock.push(Reply::text("ok"));
    let out = home.run(&["chat", "-m", "write it"]);
    assert!(out.status.success());
    assert!(!home.workspace().join("x.txt").exists());
    let tools: Vec<String> = home.mock.requests()[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tools, ["read"], "only allowed tools are offered");
    let result = home.mock.requests()[1].body["messages"].to_string();
    assert!(result.contains("not allowed for agent"), "{result}");
}

#[test]
fn sessions_export_and_openclaw_import() {
    let home = Home::new();
    let file = home.path().join("openclaw.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"type":"session","id":"abc","timestamp":"2026-01-01T10:00:00.000Z"}"#, "\n",
            r#"{"type":"message","timestamp":"2026-01-01T10:00:01.000Z","message":{"role":"user","content":[{"type":"text","text":"remember the code 4711"}]}}"#, "\n",
            "this line is broken\n",
            r#"{"type":"message","timestamp":"2026-01-01T10:00:02.000Z","message":{"role":"assistant","content":[{"type":"text","text":"Noted."}]}}"#, "\n",
        ),
    )
    .unwrap();
    let out = home.run(&["sessions", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(":3:"), "broken line reported: {}", stderr(&out));
    let session = stdout(&out).split_whitespace().last().unwrap().to_string();
    let messages = export(&home, &session);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["text"], "remember the code 4711");
    // The imported session continues in Clawdia with its history.
    home.mock.push(Reply::text("The code is 4711."));
    let out = home.run(&["chat", "-s", &session, "-m", "what was the code?"]);
    assert_eq!(stdout(&out), "The code is 4711.\n");
    assert!(home.mock.requests()[0].body["messages"].to_string().contains("remember the code 4711"));
    let listing = stdout(&home.run(&["sessions", "list"]));
    assert!(listing.contains(&session) && !listing.contains("3 messages"), "{listing}");
    let shown = stdout(&home.run(&["sessions", "show", &session]));
    assert!(shown.contains("The code is 4711."), "{shown}");
    let out = home.run(&["sessions", "export", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no session `nope`"));
}

#[test]
fn sessions_import_of_random_bytes_is_refused_and_creates_nothing() {
    let home = Home::new();
    let file = home.path().join("noise.bin");
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    let before = stdout(&home.run(&["sessions", "list"]));
    assert_eq!(before, "no sessions\n");
    let out = home.run(&["sessions", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let error = stderr(&out);
    assert!(
        error.starts_with(&format!("clawdia: error: {}: nothing to import (", file.display())),
        "{error}"
    );
    assert!(error.contains("no session was created"), "{error}");
    assert_eq!(error.lines().count(), 1, "one line, not one per skipped line: {error}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(stdout(&home.run(&["sessions", "list"])), before, "no session was created");
}

#[test]
fn doctor_reports_failures_with_hints() {
    let home = Home::new();
    std::fs::set_permissions(
        home.path().join("secrets/gateway-token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = home.run(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL") && text.contains("chmod 600"), "{text}");
    assert!(text.contains("provider `mock`: API key is set"), "{text}");
    assert!(text.contains("is reachable"), "{text}");
    assert!(text.contains("databases pass the integrity check"), "{text}");
    std::fs::set_permissions(
        home.path().join("secrets/gateway-token"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = home.run(&["doctor"]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn doctor_notes_a_provider_no_agent_uses_and_passes() {
    let home = Home::new();
    let config_path = home.path().join("clawdia.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    // `init`'s Anthropic section in a home whose agents use other providers: no key, no host.
    let spare = "\n[providers.spare]\nkind = \"anthropic\"\nbase_url = \"http://127.0.0.1:1\"\napi_key = { env = \"CLAWDIA_TEST_UNSET_KEY\" }\n";
    std::fs::write(&config_path, format!("{config}{spare}")).unwrap();
    let out = home.run(&["doctor"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("note  provider `spare` is not used by any agent; not checked"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(text.contains("provider `mock`: API key is set"), "the used providers are still checked: {text}");
    // Positive control: once an agent falls back to it, its missing key fails the check.
    let used =
        config.replace("fallbacks = [\"alt/backup\"]", "fallbacks = [\"alt/backup\", \"spare/model\"]");
    assert_ne!(used, config);
    std::fs::write(&config_path, format!("{used}{spare}")).unwrap();
    let out = home.run(&["doctor"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL  provider `spare`: ") && text.contains("CLAWDIA_TEST_UNSET_KEY"), "{text}");
}

#[test]
fn the_starter_user_md_guidance_never_reaches_the_model() {
    let home = Home::new();
    let user_md = home.workspace().join("USER.md");
    let starter = std::fs::read_to_string(&user_md).unwrap();
    assert!(starter.contains("About you") && starter.trim_start().starts_with("<!--"), "{starter}");
    home.mock.push(Reply::text("Hello."));
    let out = home.run(&["chat", "-m", "Who am I?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let system = home.mock.requests()[0].body["system"].to_string();
    assert!(system.contains("Name: Clawdia"), "the other starter files are sent: {system}");
    assert!(!system.contains("About you") && !system.contains("USER.md"), "{system}");
    // What the owner writes below the guidance is sent, the guidance still is not.
    std::fs::write(&user_md, format!("{starter}Ana, a luthier in Porto.\n")).unwrap();
    home.mock.push(Reply::text("Hello, Ana."));
    let out = home.run(&["chat", "-m", "Who am I?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let system = home.mock.requests()[1].body["system"].to_string();
    assert!(system.contains("## USER.md\\nAna, a luthier in Porto."), "{system}");
    assert!(!system.contains("About you"), "{system}");
}

#[test]
fn repl_keeps_one_session() {
    use std::io::Write;
    let home = Home::new();
    home.mock.push(Reply::text("one"));
    home.mock.push(Reply::text("two"));
    let mut child = home
        .command(&["chat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"first\nsecond\n/exit\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "one\ntwo\n");
    let requests = home.mock.requests();
    assert_eq!(requests[1].body["messages"].as_array().unwrap().len(), 3);
}

/// `clawdia doctor | head -1`: when the reader goes away, the command ends quietly, as other
/// Unix tools do (by SIGPIPE), without a panic message or an abort, whether stderr is still
/// open or went away with stdout (`2>&1 | head -1`).
#[test]
fn a_closed_pipe_ends_printing_commands_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::Stdio;
    const SIGPIPE: i32 = 13;
    let home = Home::new();
    for args in [&["doctor"][..], &["sessions", "list"], &["status"], &["config", "reference"]] {
        // Control: with a reader, the command prints.
        let out = home.run(args);
        assert!(!out.stdout.is_empty(), "{args:?} prints: {}", stderr(&out));
        for close_stderr in [false, true] {
            let mut child = home.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
            drop(child.stdout.take()); // the reader is gone before anything is printed
            let mut stderr_pipe = child.stderr.take().unwrap();
            let mut said = String::new();
            if close_stderr {
                drop(stderr_pipe);
            } else {
                std::io::Read::read_to_string(&mut stderr_pipe, &mut said).unwrap();
            }
            let status = child.wait().unwrap();
            assert!(
                status.signal() == Some(SIGPIPE) || status.code() == Some(0),
                "{args:?} (stderr closed: {close_stderr}) ended with {status:?}: {said}"
            );
            assert!(!said.contains("bug") && !said.contains("panicked"), "{args:?}: {said}");
        }
    }
}
