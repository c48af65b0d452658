//! Integration tests of `clawdia-config` through its public API only: the INTERFACES minimal file,
//! the shipped example and init files, a table of bad configs with the exact one-line message a
//! user sees, secret resolution and redaction, the generated docs, and a no-panic property test.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clawdia_config::{ConfigError, ProviderKind, SecretRef, parse};
use clawdia_core::{ModelRef, Usage};
use proptest::prelude::*;

mod alerts;
mod mcp;
mod speech;

/// The minimal file from INTERFACES.md, verbatim.
const MINIMAL: &str = r#"[gateway]
bind = "127.0.0.1"
port = 18789
token = { file = "secrets/gateway-token" }   # the default; `clawdia init` generates the file (0600)

[providers.anthropic]
kind = "anthropic"
base_url = "https://api.anthropic.com"
api_key = { env = "ANTHROPIC_API_KEY" }

[providers.zai]
kind = "openai"
base_url = "https://api.z.ai/api/paas/v4"
api_key = { env = "ZAI_API_KEY" }

[agents.main]
model = "zai/glm-5"
fallbacks = ["anthropic/claude-sonnet-4-5"]

[agents.docs]
model = "anthropic/claude-haiku-4-5"
workspace = "workspaces/docs"          # relative paths are relative to the home
"#;

/// Two providers on lines 1-6, so the lines of what follows are easy to count.
pub const PROVIDERS: &str = r#"[providers.anthropic]
kind = "anthropic"
base_url = "https://api.anthropic.com"
[providers.zai]
kind = "openai"
base_url = "https://api.z.ai/api/paas/v4"
"#;

fn home() -> PathBuf {
    PathBuf::from("/home/claw")
}

fn model(text: &str) -> ModelRef {
    ModelRef::parse(text).expect("test model ref")
}

/// Parses `text`, expects an error, and checks its one-line `Display`, line and key.
fn check_error(text: &str, expected: &str) {
    let error = match parse(text, &home()) {
        Ok(_) => panic!("expected `{expected}`, but this parsed:\n{text}"),
        Err(error) => error,
    };
    let shown = error.to_string();
    assert_eq!(shown, expected, "for config:\n{text}");
    assert!(!shown.contains('\n'), "error spans lines: {shown}");
    let location = format!("clawdia.toml:{}: {}: ", error.line().unwrap_or(0), error.key().unwrap_or("-"));
    assert!(shown.starts_with(&location), "line()/key() disagree with `{shown}`");
}

#[test]
fn minimal_file_parses_with_resolved_values() {
    let config = parse(MINIMAL, &home()).expect("the minimal file parses");
    assert_eq!(config.home, home());
    assert_eq!(config.gateway.bind, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(config.gateway.port, 18789);
    assert_eq!(config.gateway.token, SecretRef::File(home().join("secrets/gateway-token")));
    assert_eq!(config.gateway.max_request_bytes, 1024 * 1024);

    let anthropic = &config.providers["anthropic"];
    assert_eq!(anthropic.name, "anthropic");
    assert_eq!(anthropic.kind, ProviderKind::Anthropic);
    assert_eq!(anthropic.base_url, "https://api.anthropic.com");
    assert_eq!(anthropic.api_key, Some(SecretRef::Env("ANTHROPIC_API_KEY".into())));
    assert_eq!(anthropic.connect_timeout, Duration::from_secs(10));
    assert_eq!(anthropic.read_timeout, Duration::from_secs(60));
    assert_eq!(anthropic.cooldown, Duration::from_secs(30));
    assert_eq!((anthropic.retries, anthropic.retry_max_wait), (2, Duration::from_secs(10)));
    assert!(anthropic.headers.is_empty());
    let zai = &config.providers["zai"];
    assert_eq!(zai.kind, ProviderKind::OpenAi);
    assert_eq!(zai.base_url, "https://api.z.ai/api/paas/v4");

    let main = config.agent("main").expect("agent main");
    assert_eq!(main.name, "main");
    assert_eq!(main.model, model("zai/glm-5"));
    assert_eq!(main.fallbacks, vec![model("anthropic/claude-sonnet-4-5")]);
    assert_eq!(main.workspace, home().join("workspaces/main"));
    assert_eq!(main.tools.allow, ["fs", "web", "brain", "exec"].map(String::from).to_vec());
    assert!(main.tools.deny.is_empty());
    assert_eq!(main.budget.daily_tokens, None);
    assert_eq!(main.budget.daily_usd, None);
    assert_eq!((main.prompt.file_max_chars, main.prompt.total_max_chars), (6000, 16000));
    assert_eq!((main.max_tool_iterations, main.max_tokens, main.temperature), (12, 4096, None));
    assert_eq!(main.web_fetch.timeout_secs, 20);
    assert_eq!(main.web_fetch.max_bytes, 512 * 1024);
    assert!(!main.web_fetch.allow_private);

    let docs = config.agent("docs").expect("agent docs");
    assert_eq!(docs.model, model("anthropic/claude-haiku-4-5"));
    assert!(docs.fallbacks.is_empty());
    assert_eq!(docs.workspace, home().join("workspaces/docs"));
    assert!(config.agent("nobody").is_none());
    assert!(config.prices.is_empty());
}

#[test]
fn empty_file_gets_every_gateway_default() {
    let config = parse("", &home()).expect("an empty file is valid");
    assert_eq!(config.gateway.port, 18789);
    assert_eq!(config.gateway.bind, IpAddr::from([127, 0, 0, 1]));
    assert_eq!(config.gateway.token, SecretRef::File(home().join("secrets/gateway-token")));
    assert!(config.providers.is_empty() && config.agents.is_empty());
    let gateway = &config.gateway;
    assert_eq!(gateway.max_connections, 4096);
    assert_eq!(gateway.header_timeout, Duration::from_secs(10));
    assert_eq!(gateway.body_timeout, Duration::from_secs(30));
    assert_eq!(gateway.write_timeout, Duration::from_secs(60));
    assert_eq!(gateway.max_concurrent_turns, 16);
    assert_eq!(gateway.turn_queue, Duration::from_secs(30));
    assert_eq!(gateway.drain, Duration::from_secs(20));
    assert_eq!(config.logs, clawdia_config::LogsConfig { max_bytes: 10 * 1024 * 1024, keep: 5 });
}

#[test]
fn drain_and_log_rotation_can_be_set_and_a_zero_log_size_is_refused() {
    let text = "[gateway]\ndrain_secs = 0\n[logs]\nmax_bytes = 4096\nkeep = 0\n";
    let config = parse(text, &home()).expect("drain and logs parse");
    assert_eq!(config.gateway.drain, Duration::ZERO);
    assert_eq!(config.logs, clawdia_config::LogsConfig { max_bytes: 4096, keep: 0 });
    let error = parse("[logs]\nmax_bytes = 0\n", &home()).expect_err("a zero size is refused");
    assert!(error.to_string().contains("logs.max_bytes: must be at least 1"), "{error}");
}

#[test]
fn gateway_limits_can_be_set_and_must_be_positive() {
    let text = "[gateway]\nmax_connections = 100\nheader_timeout_secs = 3\nbody_timeout_secs = 4\n\
                write_timeout_secs = 5\nmax_concurrent_turns = 2\nmax_request_bytes = 1000\nturn_queue_secs = 0\n";
    let gateway = parse(text, &home()).expect("limits parse").gateway;
    assert_eq!(gateway.max_connections, 100);
    assert_eq!(gateway.header_timeout, Duration::from_secs(3));
    assert_eq!(gateway.body_timeout, Duration::from_secs(4));
    assert_eq!(gateway.write_timeout, Duration::from_secs(5));
    assert_eq!(gateway.max_concurrent_turns, 2);
    assert_eq!(gateway.max_request_bytes, 1000);
    assert_eq!(gateway.turn_queue, Duration::ZERO);
    for key in [
        "max_connections",
        "header_timeout_secs",
        "body_timeout_secs",
        "write_timeout_secs",
        "max_concurrent_turns",
    ] {
        check_error(
            &format!("[gateway]\n{key} = 0\n"),
            &format!("clawdia.toml:2: gateway.{key}: must be at least 1"),
        );
    }
}

#[test]
fn overrides_are_applied() {
    let text = format!(
        "{PROVIDERS}connect_timeout_secs = 3\nread_timeout_secs = 7\ncooldown_secs = 0\n\
         base_url_is_not_repeated = false\n"
    );
    // An unknown key inside a provider is reported even after valid overrides.
    check_error(
        &text,
        "clawdia.toml:10: providers.zai.base_url_is_not_repeated: unknown key `base_url_is_not_repeated`, expected one of `kind`, `base_url`, `api_key`, `connect_timeout_secs`, `read_timeout_secs`, `cooldown_secs`, `retries`, `retry_max_wait_secs`, `headers`, `threads`, `idle_unload_secs`, `context_length`",
    );

    let text = format!(
        "[gateway]\nbind = \"::\"\nport = 0\ntoken = {{ env = \"GW_TOKEN\" }}\n{PROVIDERS}\
         base_url = \"http://127.0.0.1:11434/v1/\"\ncooldown_secs = 0\nretries = 0\nretry_max_wait_secs = 2\nheaders = {{ X-Title = \"Clawdia\" }}\n"
    )
    .replace("base_url = \"https://api.z.ai/api/paas/v4\"\n", "");
    let text = format!(
        "{text}[agents.a-1_b]\nmodel = \"zai/org/model:7b\"\nworkspace = \"/srv/ws\"\n\
         temperature = 0.5\nmax_tokens = 100\n[agents.a-1_b.tools]\nallow = [\"read\"]\ndeny = [\"exec\"]\n\
         [agents.a-1_b.budget]\ndaily_tokens = 1000\ndaily_usd = 2\n[agents.a-1_b.web_fetch]\nallow_private = true\n"
    );
    let config = parse(&text, &home()).expect("overrides parse");
    assert_eq!(config.gateway.bind, "::".parse::<IpAddr>().expect("ip"));
    assert_eq!(config.gateway.port, 0);
    assert_eq!(config.gateway.token, SecretRef::Env("GW_TOKEN".into()));
    let zai = &config.providers["zai"];
    assert_eq!(zai.base_url, "http://127.0.0.1:11434/v1");
    assert_eq!(zai.cooldown, Duration::ZERO);
    assert_eq!((zai.retries, zai.retry_max_wait), (0, Duration::from_secs(2)));
    assert_eq!(zai.headers.get("X-Title").map(String::as_str), Some("Clawdia"));
    let agent = config.agent("a-1_b").expect("agent");
    assert_eq!(agent.model, model("zai/org/model:7b"));
    assert_eq!(agent.workspace, PathBuf::from("/srv/ws"));
    assert_eq!((agent.temperature, agent.max_tokens), (Some(0.5), 100));
    assert_eq!(
        (agent.tools.allow.clone(), agent.tools.deny.clone()),
        (vec!["read".into()], vec!["exec".into()])
    );
    assert_eq!((agent.budget.daily_tokens, agent.budget.daily_usd), (Some(1000), Some(2.0)));
    assert!(agent.web_fetch.allow_private);
}

#[test]
fn bad_configs_name_line_and_key() {
    let cases: Vec<(String, &str)> = vec![
        ("[agents.main]\nmodle = \"x\"".into(),
         "clawdia.toml:2: agents.main.modle: unknown key `modle`, expected one of `model`, `fallbacks`, `workspace`, `tools`, `budget`, `prompt`, `max_tool_iterations`, `max_tokens`, `temperature`, `web_fetch`, `sandbox`, `exec`, `elevated`"),
        ("[gateway]\nbind = \"127.0.0.1\"\nport = \"abc\"\n".into(),
         "clawdia.toml:3: gateway.port: invalid type: string \"abc\", expected u16"),
        ("[gateway]\nport = 70000\n".into(),
         "clawdia.toml:2: gateway.port: invalid value: integer `70000`, expected u16"),
        ("colour = \"blue\"\n".into(),
         "clawdia.toml:1: colour: unknown key `colour`, expected one of `gateway`, `providers`, `agents`, `prices`, `brain`, `cron`, `mcp`, `broker`, `bridge`, `owner`, `alerts`, `channels`, `speech`, `logs`"),
        ("[broker]\nttl = \"1w\"\n".into(),
         "clawdia.toml:2: broker.ttl: `1w` is not a duration: a number of at least 1 with s, m, h or d, e.g. \"24h\" (at most 365d)"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[agents.main.tools]\nallow = [\"fs\"]\nalow = [\"web\"]\n"),
         "clawdia.toml:11: agents.main.tools.alow: unknown key `alow`, expected one of `allow`, `deny`, `ask`, `write`"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\nbudget = {{ daily_usd = -1.0 }}\n"),
         "clawdia.toml:9: agents.main.budget.daily_usd: must be a non-negative number of US dollars"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\nmax_tokens = 0\n"),
         "clawdia.toml:9: agents.main.max_tokens: must be at least 1"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\ntemperature = 3.5\n"),
         "clawdia.toml:9: agents.main.temperature: must be between 0 and 2"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\nfallbacks = [\"anthropic/x\", 3]\n"),
         "clawdia.toml:9: agents.main.fallbacks[1]: invalid type: integer `3`, expected a string"),
        (format!("{PROVIDERS}\n\n\n\n\n[agents.main]\nmodel = \"foo/bar\"\n"),
         "clawdia.toml:13: agents.main.model: unknown provider `foo` (configured: anthropic, zai)"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\nfallbacks = [\n  \"anthropic/claude-sonnet-4-5\",\n  \"openrouter/kimi\",\n]\n"),
         "clawdia.toml:11: agents.main.fallbacks[1]: unknown provider `openrouter` (configured: anthropic, zai)"),
        ("[agents.main]\nmodel = \"anthropic/claude-sonnet-4-5\"\n".into(),
         "clawdia.toml:2: agents.main.model: unknown provider `anthropic` (no providers are configured)"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"glm-5\"\n"),
         "clawdia.toml:8: agents.main.model: `glm-5` is not of the form `provider/model` (e.g. `anthropic/claude-sonnet-4-5`)"),
        (format!("{PROVIDERS}[agents.main]\nfallbacks = []\n"),
         "clawdia.toml:7: agents.main: missing key `model`"),
        (format!("{PROVIDERS}[agents.Main]\nmodel = \"zai/glm-5\"\n"),
         "clawdia.toml:7: agents.Main: names must be 1-64 lowercase letters, digits, `_` or `-`, starting with a letter or digit"),
        ("[providers.\"z ai\"]\nkind = \"openai\"\nbase_url = \"https://x\"\n".into(),
         "clawdia.toml:1: providers.\"z ai\": names must be 1-64 lowercase letters, digits, `_` or `-`, starting with a letter or digit"),
        ("[providers.local]\nkind = \"llama\"\nbase_url = \"http://127.0.0.1:8080\"\n".into(),
         "clawdia.toml:2: providers.local.kind: unknown variant `llama`, expected one of `anthropic`, `openai`, `local`"),
        ("[providers.x]\nkind = \"openai\"\nbase_url = \"api.example.com/v1\"\n".into(),
         "clawdia.toml:3: providers.x.base_url: `api.example.com/v1` is not an http:// or https:// URL"),
        ("[providers.x]\nkind = \"openai\"\n".into(),
         "clawdia.toml:1: providers.x: missing key `base_url`"),
        ("[providers.x]\nkind = \"openai\"\nbase_url = \"https://x\"\nread_timeout_secs = 0\n".into(),
         "clawdia.toml:4: providers.x.read_timeout_secs: must be at least 1"),
        ("[providers.x]\nkind = \"openai\"\nbase_url = \"https://x\"\nretries = 11\n".into(),
         "clawdia.toml:4: providers.x.retries: must be at most 10"),
        ("[providers.x]\nkind = \"openai\"\nbase_url = \"https://x\"\nretry_max_wait_secs = 0\n".into(),
         "clawdia.toml:4: providers.x.retry_max_wait_secs: must be between 1 and 3600 seconds"),
        ("[providers.x]\nkind = \"openai\"\nbase_url = \"https://x\"\nretries = -1\n".into(),
         "clawdia.toml:4: providers.x.retries: invalid value: integer `-1`, expected u32"),
        ("[providers.x]\nkind = \"openai\"\nbase_url = \"https://x\"\napi_key = { env = \"A\", file = \"b\" }\n".into(),
         "clawdia.toml:4: providers.x.api_key: give exactly one of `env` or `file`"),
        ("[providers.x]\nkind = \"openai\"\nbase_url = \"https://x\"\napi_key = { vault = \"a\" }\n".into(),
         "clawdia.toml:4: providers.x.api_key.vault: unknown key `vault`, expected one of `env`, `file`, `rotated_at`, `rotate_every_days`"),
        ("[gateway]\nbind = \"localhost\"\n".into(),
         "clawdia.toml:2: gateway.bind: `localhost` is not an IP address (use e.g. 127.0.0.1, 0.0.0.0 or ::)"),
        ("[gateway]\ntoken = \"hunter2-gateway\"\n".into(),
         "clawdia.toml:2: gateway.token: secrets must be references, `{ env = \"NAME\" }` or `{ file = \"path\" }`, never inline values"),
        (format!("{PROVIDERS}[prices.\"zai/glm-5\"]\ninput_per_mtok = 1.0\n"),
         "clawdia.toml:7: prices.\"zai/glm-5\": missing key `output_per_mtok`"),
        (format!("{PROVIDERS}[prices.\"groq/llama\"]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"),
         "clawdia.toml:7: prices.\"groq/llama\": unknown provider `groq` (configured: anthropic, zai)"),
        (format!("{PROVIDERS}[prices.glm-5]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n"),
         "clawdia.toml:7: prices.glm-5: `glm-5` is not of the form `provider/model` (e.g. `anthropic/claude-sonnet-4-5`)"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[agents.main.elevated]\nsenders = [\"cli\", \"telegram\"]\n"),
         "clawdia.toml:10: agents.main.elevated.senders[1]: `telegram` is not a sender: use cli, api, cron, subagent (optionally `:ID` or `:*`)"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[[agents.main.elevated.commands]]\npath = \"git\"\n"),
         "clawdia.toml:10: agents.main.elevated.commands[0].path: must be an absolute path to a binary, without `.` or `..` (e.g. \"/usr/bin/git\")"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[[agents.main.elevated.commands]]\npath = \"/usr/bin/git\"\nargs = [\"**\", \"push\"]\n"),
         "clawdia.toml:11: agents.main.elevated.commands[0].args[0]: `**` (any further arguments) may only be the whole last pattern"),
        (format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[[agents.main.elevated.commands]]\npath = \"/usr/bin/git\"\nenv = {{ TOKEN = \"ghp_inline\" }}\n"),
         "clawdia.toml:11: agents.main.elevated.commands[0].env.TOKEN: secrets must be references, `{ env = \"NAME\" }` or `{ file = \"path\" }`, never inline values"),
        (format!("{PROVIDERS}[prices.\"zai/glm-5\"]\ninput_per_mtok = 1.0\noutput_per_mtok = -2.0\n"),
         "clawdia.toml:9: prices.\"zai/glm-5\".output_per_mtok: must be a non-negative number of US dollars"),
    ];
    for (text, expected) in cases {
        check_error(&text, expected);
    }
}

#[test]
fn syntax_errors_name_the_line() {
    let error = parse("[gateway]\nport = 1\nport = 2\n", &home()).expect_err("duplicate key");
    assert_eq!(error.line(), Some(3), "{error}");
    assert!(error.to_string().starts_with("clawdia.toml:3: "), "{error}");
    let error = parse("[gateway]\nbind = 127.0.0.1\n", &home()).expect_err("unquoted string");
    assert_eq!(error.line(), Some(2), "{error}");
    assert!(!error.to_string().contains('\n'), "{error}");
}

#[test]
fn inline_secrets_are_refused_without_echoing_the_value() {
    let text = format!("{PROVIDERS}api_key = \"sk-ant-SECRETVALUE\"\n");
    let error = parse(&text, &home()).expect_err("inline key");
    let shown = error.to_string();
    assert_eq!(
        shown,
        "clawdia.toml:7: providers.zai.api_key: secrets must be references, `{ env = \"NAME\" }` or `{ file = \"path\" }`, never inline values"
    );
    assert!(!shown.contains("SECRETVALUE") && !format!("{error:?}").contains("SECRETVALUE"));
}

#[test]
fn secrets_resolve_from_env_and_file_and_stay_redacted() {
    // A variable name unique to this test, so parallel tests cannot interfere.
    let name = "CLAWDIA_CONFIG_TEST_SECRET_ENV";
    // SAFETY: no other code in this test binary reads or writes this variable.
    unsafe { std::env::set_var(name, "env-value-123") };
    let secret = SecretRef::Env(name.into()).resolve().expect("env secret");
    assert_eq!(secret.expose(), "env-value-123");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(secret.to_string(), "<redacted>");
    assert!(!format!("{:?}", Some(secret.clone())).contains("env-value"));

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(dir.path().join("secrets/key"), "file-value-456\n\n").expect("write");
    let text = format!("{PROVIDERS}api_key = {{ file = \"secrets/key\" }}\n");
    let config = parse(&text, dir.path()).expect("parses");
    let reference = config.providers["zai"].api_key.clone().expect("api key");
    assert_eq!(reference, SecretRef::File(dir.path().join("secrets/key")));
    assert_eq!(reference.resolve().expect("file secret").expose(), "file-value-456");
}

#[test]
fn unresolvable_secrets_name_the_reference_not_a_value() {
    let missing = SecretRef::Env("CLAWDIA_CONFIG_TEST_UNSET_VARIABLE".into()).resolve().expect_err("unset");
    assert_eq!(
        missing.to_string(),
        "cannot resolve secret env CLAWDIA_CONFIG_TEST_UNSET_VARIABLE: environment variable is not set"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let absent = dir.path().join("nope");
    let error = SecretRef::File(absent.clone()).resolve().expect_err("missing file");
    assert_eq!(
        error.to_string(),
        format!("cannot resolve secret file {}: No such file or directory", absent.display())
    );
    let blank = dir.path().join("blank");
    std::fs::write(&blank, " \n").expect("write");
    let error = SecretRef::File(blank.clone()).resolve().expect_err("blank file");
    assert_eq!(
        error.to_string(),
        format!("cannot resolve secret file {}: the value is empty", blank.display())
    );
}

#[test]
fn load_reads_home_clawdia_toml_and_reports_a_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let error = clawdia_config::load(dir.path()).expect_err("no file yet");
    assert_eq!(
        error.to_string(),
        format!("cannot read {}: No such file or directory", dir.path().join("clawdia.toml").display())
    );
    assert!(matches!(error, ConfigError::Io { .. }));
    std::fs::write(dir.path().join("clawdia.toml"), MINIMAL).expect("write");
    let config = clawdia_config::load(dir.path()).expect("loads");
    assert_eq!(config.agent("docs").map(|a| a.workspace.clone()), Some(dir.path().join("workspaces/docs")));
}

#[test]
fn shipped_example_and_init_files_parse() {
    let example = parse(clawdia_config::example_toml(), &home()).expect("the example parses");
    assert!(example.providers.contains_key("ollama") && example.providers["ollama"].api_key.is_none());
    let main = example.agent("main").expect("main");
    assert_eq!(main.fallbacks.len(), 3);
    assert!(example.providers["local"].local.is_some());
    assert_eq!(main.budget.daily_usd, Some(5.0));
    let price = example.price(&model("zai/glm-5")).expect("price");
    assert_eq!(price.input_per_mtok, 1.0);
    assert!(example.price(&model("zai/other")).is_none());

    let init = clawdia_config::default_config_toml();
    let config = parse(&init, &home()).expect("the init file parses");
    assert!(init.contains("[gateway]") && init.contains("[agents.main]"));
    assert_eq!(config.agent("main").map(|a| a.model.clone()), Some(model("anthropic/claude-sonnet-4-5")));
    assert_eq!(config.providers["anthropic"].api_key, Some(SecretRef::Env("ANTHROPIC_API_KEY".into())));
    for commented in [
        "https://api.z.ai/api/paas/v4",
        "openrouter.ai",
        "http://127.0.0.1:11434/v1",
        "fallbacks",
        "[agents.main.budget]",
        "[agents.main.tools]",
        "[agents.main.prompt]",
        "[prices.",
    ] {
        assert!(init.contains(commented), "init file lacks {commented}");
    }
}

#[test]
fn price_cost_is_usd_per_million_tokens() {
    let text = format!(
        "{PROVIDERS}[prices.\"zai/glm-5\"]\ninput_per_mtok = 1\noutput_per_mtok = 4.0\ncache_read_per_mtok = 0.5\n"
    );
    let config = parse(&text, &home()).expect("parses");
    let price = config.price(&model("zai/glm-5")).expect("price");
    assert_eq!(price.cache_write_per_mtok, 0.0);
    let usage = Usage {
        input_tokens: 2_000_000,
        output_tokens: 500_000,
        cache_read_tokens: 1_000_000,
        cache_write_tokens: 7,
    };
    assert!((price.cost(&usage) - 4.5).abs() < 1e-9, "{}", price.cost(&usage));
}

#[test]
fn schema_and_reference_cover_every_section() {
    let schema: serde_json::Value = serde_json::from_str(&clawdia_config::json_schema()).expect("valid JSON");
    let properties = schema["properties"].as_object().expect("properties");
    for section in ["gateway", "providers", "agents", "prices"] {
        assert!(properties.contains_key(section), "schema lacks {section}");
    }
    assert_eq!(schema["additionalProperties"], serde_json::Value::Bool(false));
    let reference = clawdia_config::reference_markdown();
    for heading in [
        "## `[gateway]`",
        "## `[providers.<name>]`",
        "## `[agents.<name>]`",
        "## `[agents.<name>.tools]`",
        "## `[agents.<name>.budget]`",
        "## `[agents.<name>.prompt]`",
        "## `[agents.<name>.web_fetch]`",
        "## `[prices.\"<provider>/<model>\"]`",
    ] {
        assert!(reference.contains(heading), "reference lacks {heading}:\n{reference}");
    }
    assert!(reference.contains("| `port` | integer | `18789` |"), "{reference}");
    assert!(
        reference.contains(
            "| `token` | `{ env = string }` or `{ file = string }` | `{ file = \"secrets/gateway-token\" }` |"
        ),
        "{reference}"
    );
    assert!(
        reference.contains("| `kind` | `\"anthropic\"` or `\"openai\"` or `\"local\"` | required |"),
        "{reference}"
    );
}

fn mutate(text: &str, at: usize, insert: &str, cut: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + cut).min(chars.len());
    chars.splice(at..end, insert.chars());
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC*") {
        let _ = parse(&text, Path::new("/home/claw"));
    }

    #[test]
    fn parse_never_panics_on_mutated_example(
        at in 0usize..10_000,
        cut in 0usize..40,
        insert in prop::sample::select(vec!["", "\"", "[", "]", "=", "\n", "{", "}", "-1", "0", "x/", "/", ".", "é", "[[agents]]", "'''", "\\u0000", "1e400"]),
    ) {
        let text = mutate(clawdia_config::example_toml(), at, insert, cut);
        if let Err(error) = parse(&text, Path::new("/home/claw")) {
            prop_assert!(!error.to_string().contains('\n'));
        }
    }
}

#[test]
fn brain_section_defaults_and_errors() {
    let config = parse("", &home()).unwrap();
    assert_eq!(config.brain.fusion, clawdia_config::BrainFusion::Convex);
    assert_eq!(config.brain.rrf_k, 10.0);
    assert_eq!(config.brain.max_chunks_per_page, 1);
    assert_eq!(config.brain.page_weight, 1.0);
    assert_eq!(parse("[brain]\npage_weight = 0\n", &home()).unwrap().brain.page_weight, 0.0);
    let rrf = parse("[brain]\nfusion = \"rrf\"\n", &home()).unwrap();
    assert_eq!(rrf.brain.fusion, clawdia_config::BrainFusion::Rrf);
    match &config.brain.embedder {
        clawdia_config::EmbedderConfig::Local { model, dir, threads } => {
            assert_eq!(model, "all-MiniLM-L6-v2");
            assert_eq!(dir, &home().join("models/all-MiniLM-L6-v2"));
            assert_eq!(*threads, None);
        }
        other => panic!("default embedder is local, got {other:?}"),
    }
    let text = "[brain]\nboosts = { \"notes/\" = 1.5 }\n[brain.embedder]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1/\"\nmodel = \"nomic-embed-text\"\n";
    let config = parse(text, &home()).unwrap();
    assert_eq!(config.brain.boosts, vec![("notes/".to_string(), 1.5)]);
    assert!(
        matches!(&config.brain.embedder, clawdia_config::EmbedderConfig::OpenAi { base_url, model, .. } if base_url == "http://127.0.0.1:11434/v1" && model == "nomic-embed-text")
    );
    for (text, expected) in [
        ("[brain]\nrrf_k = 0\n", "clawdia.toml:2: brain.rrf_k: must be a number of at least 1"),
        ("[brain]\npage_weight = -0.5\n", "clawdia.toml:2: brain.page_weight: must be a non-negative number"),
        (
            "[brain]\nfusion = \"max\"\n",
            "clawdia.toml:2: brain.fusion: unknown variant `max`, expected `rrf` or `convex`",
        ),
        (
            "[brain]\nboosts = { \"a/\" = -1.0 }\n",
            "clawdia.toml:2: brain.boosts.\"a/\": must be a positive number",
        ),
        (
            "[brain.embedder]\nkind = \"openai\"\n",
            "clawdia.toml:2: brain.embedder.base_url: `base_url` is required when kind = \"openai\"",
        ),
        (
            "[brain.embedder]\nkind = \"local\"\nbase_url = \"http://x/v1\"\n",
            "clawdia.toml:2: brain.embedder.base_url: `base_url` is only used with kind = \"openai\"",
        ),
        ("[brain.embedder]\nkind = \"onnx\"\n", "clawdia.toml:2: brain.embedder.kind:"),
        ("[brain]\nsize = 1\n", "clawdia.toml:2: brain.size: unknown key"),
    ] {
        let error = parse(text, &home()).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{text:?}: {error}");
    }
}

#[test]
fn local_provider_defaults_and_errors() {
    let text =
        "[providers.local]\nkind = \"local\"\n[agents.main]\nmodel = \"local/SmolLM2-135M-Instruct\"\n";
    let config = parse(text, &home()).expect("a local provider needs no base_url or key");
    let local = &config.providers["local"];
    assert_eq!(local.kind, ProviderKind::Local);
    let settings = local.local.as_ref().expect("local settings");
    assert_eq!(settings.models_dir, home().join("models"));
    assert_eq!(settings.threads, None);
    assert_eq!(settings.idle_unload, Duration::from_secs(300));
    assert_eq!(settings.context_length, 2048);
    assert_eq!(config.agents["main"].model, model("local/SmolLM2-135M-Instruct"));

    let text =
        "[providers.mine]\nkind = \"local\"\nthreads = 3\nidle_unload_secs = 0\ncontext_length = 4096\n";
    let settings = parse(text, &home()).unwrap().providers["mine"].local.clone().unwrap();
    assert_eq!(
        (settings.threads, settings.idle_unload, settings.context_length),
        (Some(3), Duration::ZERO, 4096)
    );
    assert!(parse(PROVIDERS, &home()).unwrap().providers.values().all(|p| p.local.is_none()));

    check_error(
        "[providers.local]\nkind = \"local\"\nbase_url = \"http://x\"\n",
        "clawdia.toml:3: providers.local.base_url: `base_url` is only used by `anthropic` and `openai` providers",
    );
    check_error(
        "[providers.local]\nkind = \"local\"\napi_key = { env = \"K\" }\n",
        "clawdia.toml:1: providers.local.api_key: `api_key` is only used by `anthropic` and `openai` providers",
    );
    check_error(
        "[providers.x]\nkind = \"openai\"\nbase_url = \"http://h/v1\"\nthreads = 2\n",
        "clawdia.toml:4: providers.x.threads: `threads` is only used by `local` providers",
    );
    check_error(
        "[providers.local]\nkind = \"local\"\nretries = 1\n",
        "clawdia.toml:3: providers.local.retries: `retries` is only used by `anthropic` and `openai` providers",
    );
    check_error("[providers.x]\nkind = \"openai\"\n", "clawdia.toml:1: providers.x: missing key `base_url`");
    check_error(
        "[providers.local]\nkind = \"local\"\nthreads = 0\n",
        "clawdia.toml:3: providers.local.threads: must be at least 1",
    );
    check_error(
        "[providers.local]\nkind = \"local\"\ncontext_length = 100\n",
        "clawdia.toml:3: providers.local.context_length: must be at least 256 tokens",
    );
    check_error(
        "[providers.local]\nkind = \"local\"\n[agents.main]\nmodel = \"local/org/model\"\n",
        "clawdia.toml:4: agents.main.model: `local/org/model`: a `local` provider's model is a folder name under models/ (e.g. `local/SmolLM2-135M-Instruct`)",
    );
}

#[test]
fn exec_egress_allowlists_parse_and_a_malformed_entry_names_its_line() {
    let minimal =
        "[providers.p]\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n[agents.main]\nmodel = \"p/m\"\n";
    let config = parse(minimal, &home()).unwrap();
    assert!(config.agents["main"].exec.egress.is_empty(), "no network unless listed");
    let text = format!(
        "{minimal}[agents.main.exec]\negress = [\"api.github.com:443\", \"*.pypi.org\", \"127.0.0.1:8080\", \"[::1]\"]\n"
    );
    let config = parse(&text, &home()).unwrap();
    assert_eq!(
        config.agents["main"].exec.egress,
        ["api.github.com:443", "*.pypi.org", "127.0.0.1:8080", "[::1]"]
    );
    for (entry, expected) in [
        ("example.com:0", "`0` is not a port"),
        ("example.com:99999", "is not a port"),
        ("*.com", "too broad"),
        ("https://example.com", "is a URL"),
        ("api.github.com:443@evil.com", "is a URL"),
        ("::1:443", "in brackets"),
        ("*", "not allowed in a host name"),
    ] {
        let text = format!("{minimal}[agents.main.exec]\negress = [\"ok.example.com\",\n  \"{entry}\"]\n");
        let error = parse(&text, &home()).unwrap_err().to_string();
        assert!(error.starts_with("clawdia.toml:8: agents.main.exec.egress[1]: "), "{entry}: {error}");
        assert!(error.contains(expected), "{entry}: {error}");
    }
}

#[test]
fn sandbox_and_exec_defaults_and_errors() {
    let minimal =
        "[providers.p]\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n[agents.main]\nmodel = \"p/m\"\n";
    let config = parse(minimal, &home()).unwrap();
    let main = &config.agents["main"];
    assert_eq!(main.sandbox, clawdia_config::Sandbox::Auto);
    let exec = &main.exec;
    assert_eq!((exec.timeout, exec.max_timeout), (Duration::from_secs(30), Duration::from_secs(110)));
    assert_eq!(exec.max_output_bytes, 32 * 1024);
    assert_eq!((exec.memory_bytes, exec.file_size_bytes), (4096 << 20, 256 << 20));
    assert_eq!((exec.cpu_seconds, exec.processes, exec.open_files), (60, 256, 1024));
    let text = format!(
        "{minimal}sandbox = \"off\"\n[agents.main.exec]\ntimeout_seconds = 5\nmax_timeout_seconds = 20\nmemory_mb = 512\nprocesses = 32\n"
    );
    let config = parse(&text, &home()).unwrap();
    let main = &config.agents["main"];
    assert_eq!(main.sandbox, clawdia_config::Sandbox::Off);
    assert_eq!((main.exec.timeout, main.exec.max_timeout), (Duration::from_secs(5), Duration::from_secs(20)));
    assert_eq!((main.exec.memory_bytes, main.exec.processes), (512 << 20, 32));
    for (tail, expected) in [
        ("sandbox = \"docker\"\n", "clawdia.toml:6: agents.main.sandbox:"),
        (
            "[agents.main.exec]\nmax_timeout_seconds = 500\n",
            "clawdia.toml:7: agents.main.exec.max_timeout_seconds: must be between 1 and 110",
        ),
        (
            "[agents.main.exec]\nmax_timeout_seconds = 10\ntimeout_seconds = 20\n",
            "clawdia.toml:8: agents.main.exec.timeout_seconds: must be between 1 and max_timeout_seconds (10)",
        ),
        (
            "[agents.main.exec]\nprocesses = 0\n",
            "clawdia.toml:7: agents.main.exec.processes: must be at least 1",
        ),
        ("[agents.main.exec]\nnetwork = true\n", "clawdia.toml:7: agents.main.exec.network: unknown key"),
    ] {
        let error = parse(&format!("{minimal}{tail}"), &home()).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{tail:?}: {error}");
    }
}

#[test]
fn write_globs_are_relative_and_stay_in_the_workspace() {
    let minimal =
        "[providers.p]\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n[agents.main]\nmodel = \"p/m\"\n";
    assert_eq!(parse(minimal, &home()).unwrap().agents["main"].tools.write, None);
    let text = format!("{minimal}[agents.main.tools]\nwrite = [\"docs/**\", \"*.md\"]\n");
    let config = parse(&text, &home()).unwrap();
    assert_eq!(config.agents["main"].tools.write, Some(vec!["docs/**".to_string(), "*.md".to_string()]));
    for (globs, index) in [("[\"/etc/**\"]", 0), ("[\"docs/**\", \"../x\"]", 1), ("[\"\"]", 0)] {
        let text = format!("{minimal}[agents.main.tools]\nwrite = {globs}\n");
        let error = parse(&text, &home()).unwrap_err().to_string();
        let expected = format!("clawdia.toml:7: agents.main.tools.write[{index}]: must be a non-empty glob");
        assert!(error.starts_with(&expected), "{globs}: {error}");
    }
}

#[test]
fn cron_section_defaults_jobs_heartbeats_and_errors() {
    let config = parse("", &home()).unwrap();
    let cron = &config.cron;
    assert!(cron.enabled && !cron.allow_host_jobs && cron.jobs.is_empty() && cron.heartbeats.is_empty());
    assert_eq!((cron.default_timeout, cron.kill_grace), (Duration::from_secs(600), Duration::from_secs(5)));
    assert_eq!(cron.workspace, home().join("workspaces/cron"));
    assert!(!cron.maintenance.daily && cron.maintenance.time == (3, 30));
    let text = format!(
        "{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[cron.jobs.backup]\ncron = \"30 2 * * *\"\ntz = \"Europe/Berlin\"\nexec = \"tar c .\"\negress = [\"backup.example.com:22\"]\nfailure_alert = 2\n[cron.jobs.brief]\nevery = \"1d\"\nagent = \"main\"\nprompt = \"brief me\"\ntools_allow = [\"fs\"]\ncatch_up = \"skip\"\n[cron.heartbeat.main]\nenabled = true\nactive_hours = \"22:00-06:30\"\n"
    );
    let config = parse(&text, &home()).unwrap();
    let jobs = &config.cron.jobs;
    assert_eq!(jobs[0].name, "backup");
    assert_eq!(
        jobs[0].schedule,
        clawdia_config::CronSchedule::Cron { expr: "30 2 * * *".into(), tz: Some("Europe/Berlin".into()) }
    );
    assert_eq!((jobs[0].failure_alert, jobs[0].timeout_seconds), (Some(2), 600));
    assert_eq!(
        jobs[0].action,
        clawdia_config::CronAction::Exec {
            command: "tar c .".into(),
            host: false,
            egress: vec!["backup.example.com:22".into()]
        }
    );
    assert_eq!(
        jobs[1].action,
        clawdia_config::CronAction::AgentTurn {
            agent: "main".into(),
            prompt: "brief me".into(),
            session: None
        }
    );
    assert!(jobs[1].skip_missed && jobs[1].tools_allow == Some(vec!["fs".to_string()]));
    let beat = &config.cron.heartbeats[0];
    assert_eq!(
        (beat.active_hours, beat.ok_token.as_str(), beat.session.as_str()),
        (Some((1320, 390)), "HEARTBEAT_OK", "main")
    );
    // A heartbeat section without `enabled = true` stays off.
    let off =
        format!("{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[cron.heartbeat.main]\nevery = \"5m\"\n");
    assert!(parse(&off, &home()).unwrap().cron.heartbeats.is_empty());
    for (text, expected) in [
        (
            "[cron.jobs.x]\nexec = \"true\"\n",
            "clawdia.toml:1: cron.jobs.x: give exactly one of `cron`, `every` or `at`",
        ),
        (
            "[cron.jobs.x]\nevery = \"1m\"\ncron = \"* * * * *\"\nexec = \"true\"\n",
            "clawdia.toml:1: cron.jobs.x: give exactly one of `cron`, `every` or `at`",
        ),
        (
            "[cron.jobs.x]\nevery = \"1m\"\n",
            "clawdia.toml:1: cron.jobs.x: give exactly one of `exec`, or `agent` with `prompt`",
        ),
        (
            "[cron.jobs.x]\nevery = \"1m\"\nagent = \"ghost\"\nprompt = \"hi\"\n",
            "clawdia.toml:3: cron.jobs.x.agent: unknown agent `ghost`",
        ),
        (
            "[cron.jobs.x]\nevery = \"1m\"\nexec = \"true\"\ntimeout_seconds = 0\n",
            "clawdia.toml:4: cron.jobs.x.timeout_seconds: must be at least 1",
        ),
        (
            "[cron.jobs.Bad]\nevery = \"1m\"\nexec = \"true\"\n",
            "clawdia.toml:1: cron.jobs.Bad: job names are",
        ),
        (
            "[cron.jobs.x]\nevery = \"1m\"\nexec = \"true\"\negress = [\"*.com\"]\n",
            "clawdia.toml:4: cron.jobs.x.egress[0]: ",
        ),
        (
            "[cron.jobs.x]\nevery = \"1m\"\nexec = \"true\"\nhost = true\negress = [\"x.org\"]\n",
            "clawdia.toml:1: cron.jobs.x.egress: `egress` applies to sandboxed jobs; a `host` job is not confined",
        ),
        (
            "[cron.jobs.x]\nevery = \"1m\"\nexec = \"true\"\nretries = 3\n",
            "clawdia.toml:4: cron.jobs.x.retries: unknown key",
        ),
        ("[cron.maintenance]\ntime = \"25:00\"\n", "clawdia.toml:2: cron.maintenance.time: must be `HH:MM`"),
        (
            "[cron.heartbeat.ghost]\nenabled = true\n",
            "clawdia.toml:1: cron.heartbeat.ghost: unknown agent `ghost`",
        ),
    ] {
        let error = parse(text, &home()).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{text:?}: {error}");
    }
}

#[test]
fn secrets_may_carry_a_rotation_schedule() {
    let text = format!(
        "{PROVIDERS}[providers.or]\nkind = \"openai\"\nbase_url = \"https://openrouter.ai/api/v1\"\napi_key = {{ env = \"OR_KEY\", rotated_at = \"2026-01-15\", rotate_every_days = 90 }}\n"
    );
    let config = parse(&text, &home()).unwrap();
    assert_eq!(config.providers["or"].api_key, Some(SecretRef::Env("OR_KEY".into())));
    let rotation = &config.secret_rotation;
    assert_eq!(rotation.len(), 1);
    assert_eq!(
        (rotation[0].key.as_str(), rotation[0].reference.as_str(), rotation[0].every_days),
        ("providers.or.api_key", "env OR_KEY", 90)
    );
    assert_eq!(clawdia_core::time::utc_date(rotation[0].rotated_at_ms), "2026-01-15");
    for (secret, expected) in [
        (
            "{ env = \"K\", rotated_at = \"2026-01-15\" }",
            "providers.or.api_key: rotated_at needs rotate_every_days",
        ),
        (
            "{ env = \"K\", rotate_every_days = 30 }",
            "providers.or.api_key: rotate_every_days needs rotated_at",
        ),
        (
            "{ env = \"K\", rotated_at = \"last week\", rotate_every_days = 30 }",
            "providers.or.api_key: rotated_at `last week` is not a date",
        ),
    ] {
        let text = format!(
            "[providers.or]\nkind = \"openai\"\nbase_url = \"https://x.example/v1\"\napi_key = {secret}\n"
        );
        let error = parse(&text, &home()).unwrap_err().to_string();
        assert!(error.starts_with("clawdia.toml:4: ") && error.contains(expected), "{secret}: {error}");
    }
}

#[test]
fn elevated_commands_parse_with_defaults_and_secret_references() {
    let text = format!(
        "{PROVIDERS}[agents.main]\nmodel = \"zai/glm-5\"\n[agents.ops]\nmodel = \"zai/glm-5\"\n\
         [agents.ops.elevated]\nsenders = [\"cli\", \"api:alice\", \"subagent:*\"]\n\
         [[agents.ops.elevated.commands]]\npath = \"/usr/bin/git\"\nargs = [\"-C\", \"/srv/*\", \"**\"]\n\
         env = {{ GH_TOKEN = {{ env = \"OPS_GH_TOKEN\" }} }}\n"
    );
    let config = parse(&text, &home()).unwrap();
    let main = &config.agents["main"].elevated;
    assert_eq!(main.senders, ["cli"], "only the owner at the terminal by default");
    assert!(main.commands.is_empty(), "no host commands unless listed");
    let ops = &config.agents["ops"].elevated;
    assert_eq!(ops.senders, ["cli", "api:alice", "subagent:*"]);
    let git = &ops.commands[0];
    assert_eq!(git.path, Path::new("/usr/bin/git"));
    assert_eq!(git.args, ["-C", "/srv/*", "**"]);
    assert_eq!(git.env, [("GH_TOKEN".to_string(), SecretRef::Env("OPS_GH_TOKEN".into()))]);
    assert_eq!(git.timeout, Duration::from_secs(30));
}

#[test]
fn secret_files_lists_every_file_reference_once() {
    let text = String::from(
        "[gateway]\ntoken = { file = \"secrets/token\" }\n\
         [providers.anthropic]\nkind = \"anthropic\"\nbase_url = \"https://api.anthropic.com\"\n\
         api_key = { file = \"secrets/anthropic\" }\n\
         [providers.zai]\nkind = \"openai\"\nbase_url = \"https://api.z.ai/api/paas/v4\"\napi_key = { env = \"ZAI\" }\n\
         [agents.main]\nmodel = \"zai/glm-5\"\n\
         [[agents.main.elevated.commands]]\npath = \"/usr/bin/git\"\nenv = { GH = { file = \"/etc/gh-token\" } }\n\
         [mcp.servers.files]\ncommand = \"node\"\nenv = { A = { file = \"secrets/anthropic\" }, B = \"plain\" }\n",
    );
    let config = parse(&text, &home()).unwrap();
    assert_eq!(
        config.secret_files(),
        [
            PathBuf::from("/etc/gh-token"),
            PathBuf::from("/home/claw/secrets/anthropic"),
            PathBuf::from("/home/claw/secrets/token"),
        ]
    );
    let defaults = parse(PROVIDERS, &home()).unwrap();
    assert_eq!(defaults.secret_files(), [PathBuf::from("/home/claw/secrets/gateway-token")]);
}
