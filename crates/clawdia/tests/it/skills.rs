//! Skills end to end: `clawdia skills list|install|trust` on a real home and a folder
//! registry, and a chat turn whose message triggers a skill: its body reaches the model's system
//! prompt, and while the installed skill is untrusted the model is offered read-only tools only.

use std::io::Write;

use crate::support::*;

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut writer = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default();
        for (path, content) in files {
            writer.start_file(*path, options).expect("start");
            writer.write_all(content.as_bytes()).expect("write");
        }
        writer.finish().expect("finish");
    }
    buffer.into_inner()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The system prompt and offered tool names of the last model request.
fn last_request(home: &Home) -> (String, Vec<String>) {
    let requests = home.mock.requests();
    let body = &requests.last().expect("the model was called").body;
    let system = match &body["system"] {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let tools = body["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    (system, tools)
}

#[test]
fn an_installed_skill_is_routed_read_only_until_trusted() {
    let home = Home::new();
    // A local workspace skill and a registry release.
    let local = home.workspace().join("skills/standup");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("SKILL.md"), "---\nname: standup\ntriggers: [standup]\n---\nSTANDUP FORMAT")
        .unwrap();
    let registry = tempfile::tempdir().unwrap();
    let release = zip_of(&[(
        "forecast/SKILL.md",
        "---\nname: forecast\ntriggers: [Weather]\nmutating: true\n---\nFORECAST STEPS",
    )]);
    std::fs::create_dir_all(registry.path().join("forecast")).unwrap();
    std::fs::write(registry.path().join("forecast/forecast-1.2.0.zip"), &release).unwrap();
    let meta = serde_json::json!({"name": "forecast", "version": "1.2.0", "sha256": sha256_hex(&release)});
    std::fs::write(registry.path().join("forecast/_meta.json"), meta.to_string()).unwrap();

    let registry_arg = registry.path().display().to_string();
    let out = home.run(&["skills", "install", "forecast", "--registry", &registry_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("installed forecast 1.2.0"), "{}", stdout(&out));
    assert!(stdout(&out).contains("untrusted"), "{}", stdout(&out));

    let out = home.run(&["skills", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let by_name = |name: &str| {
        listed["skills"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().expect(name)
    };
    assert_eq!(by_name("forecast")["origin"], "user");
    assert_eq!(by_name("forecast")["trusted"], false);
    assert_eq!(by_name("standup")["origin"], "workspace");
    assert_eq!(by_name("standup")["trusted"], true);
    assert_eq!(by_name("brain-notes")["origin"], "bundled");

    // Untrusted: the body is in the prompt, the tools are read-only.
    home.mock.push(Reply::text("Sunny."));
    let out = home.run(&["chat", "-m", "what's the weather tomorrow?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (system, tools) = last_request(&home);
    assert!(system.contains("FORECAST STEPS"), "{system}");
    assert!(!system.contains("STANDUP FORMAT"));
    assert!(!tools.is_empty());
    assert!(!tools.iter().any(|t| t == "write" || t == "edit" || t == "brain_put_page"), "{tools:?}");
    assert!(tools.iter().any(|t| t == "read"), "{tools:?}");

    let out = home.run(&["skills", "trust", "forecast"]);
    assert!(out.status.success(), "{}", stderr(&out));
    home.mock.push(Reply::text("Sunny again."));
    let out = home.run(&["chat", "-m", "what's the weather tomorrow?"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, tools) = last_request(&home);
    assert!(tools.iter().any(|t| t == "write"), "trusted: every allowed tool again: {tools:?}");

    // A release changed in place is refused.
    let tampered = zip_of(&[("SKILL.md", "---\nname: forecast\n---\nEVIL")]);
    std::fs::write(registry.path().join("forecast/forecast-1.2.0.zip"), &tampered).unwrap();
    let meta = serde_json::json!({"name": "forecast", "version": "1.2.0", "sha256": sha256_hex(&tampered)});
    std::fs::write(registry.path().join("forecast/_meta.json"), meta.to_string()).unwrap();
    let out = home.run(&["skills", "install", "forecast", "--registry", &registry_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("changed forecast 1.2.0 in place"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn a_triggered_skill_holds_the_turn_to_what_it_declares() {
    // Under the target dir: the sandbox gives `exec` a private /tmp.
    let home = Home::with_agent_extra_in("", std::path::Path::new(env!("CARGO_TARGET_TMPDIR")));
    let skills = home.workspace().join("skills");
    for (name, frontmatter) in [
        ("lookup", "triggers: [look up]\nmutating: false"),
        ("journal", "triggers: [journal]\nmutating: true\nwrites: [\"journal/**\"]"),
    ] {
        std::fs::create_dir_all(skills.join(name)).unwrap();
        std::fs::write(skills.join(name).join("SKILL.md"), format!("---\n{frontmatter}\n---\nSTEPS"))
            .unwrap();
    }
    // Positive control: a message that triggers no skill gets every allowed tool.
    home.mock.push(Reply::text("Hi."));
    assert!(home.run(&["chat", "-m", "hello"]).status.success());
    let (_, tools) = last_request(&home);
    assert!(["write", "edit", "exec"].iter().all(|t| tools.iter().any(|o| o == t)), "{tools:?}");
    // `mutating: false`: read-only tools, as for an untrusted skill.
    home.mock.push(Reply::text("Found it."));
    assert!(home.run(&["chat", "-m", "look up the owner's address"]).status.success());
    let (system, tools) = last_request(&home);
    assert!(system.contains("## Skill: lookup"), "{system}");
    assert!(tools.iter().any(|t| t == "read"), "{tools:?}");
    assert!(!tools.iter().any(|t| ["write", "edit", "exec"].contains(&t.as_str())), "{tools:?}");
    // `writes`: the turn writes there only; `exec` sees the workspace read-only.
    let exec = serde_json::json!({"command": "echo x > by-exec.md"}).to_string();
    home.mock.push(Reply::tool_calls(vec![
        ("write", r#"{"path":"journal/today.md","content":"walked"}"#),
        ("write", r#"{"path":"notes.md","content":"elsewhere"}"#),
        ("exec", exec.as_str()),
    ]));
    home.mock.push(Reply::text("Noted."));
    let out = home.run(&["chat", "-m", "journal: I walked today"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(home.workspace().join("journal/today.md")).unwrap(), "walked");
    assert!(!home.workspace().join("notes.md").exists());
    assert!(!home.workspace().join("by-exec.md").exists());
    let sent = home.mock.requests().last().unwrap().body["messages"].to_string();
    assert!(
        sent.contains("`notes.md` is outside what the skills of this turn declare they write (journal/**)"),
        "{sent}"
    );
    assert!(sent.contains("Read-only file system"), "exec could write: {sent}");
}
