//! `[mcp.servers.NAME]`: defaults, plain and secret environment values, grants that must name
//! configured agents (or none), and the one-line errors for bad servers.

use std::path::PathBuf;
use std::time::Duration;

use clawdia_config::{McpEnv, Sandbox, SecretRef, parse};

use super::{check_error, home};

const AGENTS: &str = r#"[providers.zai]
kind = "openai"
base_url = "https://api.z.ai/api/paas/v4"
[agents.main]
model = "zai/glm-5"
[agents.docs]
model = "zai/glm-5"
"#;

#[test]
fn a_minimal_server_gets_every_default() {
    let text = format!("{AGENTS}[mcp.servers.everything]\ncommand = \"node\"\nagents = [\"main\"]\n");
    let config = parse(&text, &home()).unwrap();
    let server = &config.mcp.servers["everything"];
    assert_eq!(server.command, "node");
    assert!(server.args.is_empty() && server.env.is_empty());
    assert_eq!(server.agents, ["main"]);
    assert_eq!(server.timeout, Duration::from_secs(30));
    assert_eq!(server.sandbox, Sandbox::Auto);
    assert_eq!(server.dir, PathBuf::from("/home/claw/mcp/everything"));
    assert_eq!(server.memory_bytes, 32 << 30);
    assert!(server.egress.is_empty(), "no network unless listed");
    assert_eq!((server.cpu_seconds, server.processes, server.open_files), (3600, 256, 1024));
    assert_eq!(config.mcp.granted("main").count(), 1);
    assert_eq!(config.mcp.granted("docs").count(), 0);
    assert!(parse(AGENTS, &home()).unwrap().mcp.servers.is_empty());
}

#[test]
fn a_server_written_as_the_interface_shows_it_is_granted_to_no_agent() {
    // `command`, `args`, `env` only, as INTERFACES.md writes a server: accepted, granted to nobody.
    let text = format!(
        "{AGENTS}[mcp.servers.files]\ncommand = \"npx\"\nargs = [\"-y\", \"server-files\"]\nenv = {{ LEVEL = \"warn\" }}\n"
    );
    let config = parse(&text, &home()).unwrap();
    let server = &config.mcp.servers["files"];
    assert!(server.agents.is_empty(), "{:?}", server.agents);
    assert_eq!((config.mcp.granted("main").count(), config.mcp.granted("docs").count()), (0, 0));
    let empty = format!("{AGENTS}[mcp.servers.files]\ncommand = \"node\"\nagents = []\n");
    assert!(parse(&empty, &home()).unwrap().mcp.servers["files"].agents.is_empty());
}

#[test]
fn everything_can_be_set() {
    let text = format!(
        r#"{AGENTS}[mcp.servers.files]
command = "/usr/bin/node"
args = ["server.js", "/srv"]
env = {{ LEVEL = "warn", TOKEN = {{ env = "FILES_TOKEN" }}, KEY = {{ file = "secrets/files" }} }}
agents = ["main", "docs"]
timeout_seconds = 5
sandbox = "off"
egress = ["api.github.com", "*.example.com:8443"]
dir = "elsewhere/files"
memory_mb = 1024
cpu_seconds = 10
processes = 8
open_files = 64
file_size_mb = 1
"#
    );
    let config = parse(&text, &home()).unwrap();
    let server = &config.mcp.servers["files"];
    assert_eq!(server.args, ["server.js", "/srv"]);
    assert_eq!(
        server.env,
        [
            ("KEY".to_string(), McpEnv::Secret(SecretRef::File("/home/claw/secrets/files".into()))),
            ("LEVEL".to_string(), McpEnv::Plain("warn".into())),
            ("TOKEN".to_string(), McpEnv::Secret(SecretRef::Env("FILES_TOKEN".into()))),
        ]
    );
    assert_eq!(server.agents, ["main", "docs"]);
    assert_eq!(server.timeout, Duration::from_secs(5));
    assert_eq!(server.sandbox, Sandbox::Off);
    assert_eq!(server.egress, ["api.github.com", "*.example.com:8443"]);
    assert_eq!(server.dir, PathBuf::from("/home/claw/elsewhere/files"));
    assert_eq!((server.memory_bytes, server.file_size_bytes), (1 << 30, 1 << 20));
    assert_eq!((server.cpu_seconds, server.processes, server.open_files), (10, 8, 64));
}

#[test]
fn bad_servers_name_line_and_key() {
    let server = |body: &str| format!("{AGENTS}[mcp.servers.files]\n{body}");
    // AGENTS is 7 lines: the table header is line 8, its first key line 9.
    check_error(
        &server("command = \"node\"\nagents = [\"main\", \"ghost\"]\n"),
        "clawdia.toml:10: mcp.servers.files.agents[1]: unknown agent `ghost` (configured: docs, main)",
    );
    check_error(&server("agents = [\"main\"]\n"), "clawdia.toml:8: mcp.servers.files: missing key `command`");
    check_error(
        &server("command = \"  \"\nagents = [\"main\"]\n"),
        "clawdia.toml:9: mcp.servers.files.command: must not be empty",
    );
    check_error(
        &server("command = \"bin/node\"\nagents = [\"main\"]\n"),
        "clawdia.toml:9: mcp.servers.files.command: `bin/node` must be an absolute path or a program name on PATH",
    );
    check_error(
        &server("command = \"node\"\nagents = [\"main\"]\ntimeout_seconds = 500\n"),
        "clawdia.toml:11: mcp.servers.files.timeout_seconds: must be between 1 and 110",
    );
    check_error(
        &server("command = \"node\"\nagents = [\"main\"]\nmemory_mb = 0\n"),
        "clawdia.toml:11: mcp.servers.files.memory_mb: must be at least 1",
    );
    check_error(
        &server("command = \"node\"\nagents = [\"main\"]\nenv = { TOKEN = \"ok\", \"A-B\" = \"x\" }\n"),
        "clawdia.toml:11: mcp.servers.files.env.A-B: variable names are letters, digits and `_`",
    );
    check_error(
        &server("command = \"node\"\nagents = [\"main\"]\ndir = \"secrets/mcp\"\n"),
        "clawdia.toml:8: mcp.servers.files.dir: must not contain or be inside the home's secrets/ or state/",
    );
    check_error(
        &server(
            "command = \"node\"\nagents = [\"main\"]\negress = [\"api.github.com\", \"https://x.org\"]\n",
        ),
        "clawdia.toml:11: mcp.servers.files.egress[1]: `https://x.org` is a URL, not a host (write \"host:port\", \"host\" for 443 and 80, or \"*.example.com\")",
    );
    check_error(
        &server("command = \"node\"\nagents = [\"main\"]\nport = 3\n"),
        "clawdia.toml:11: mcp.servers.files.port: unknown key `port`, expected one of `command`, `args`, \
         `env`, `agents`, `timeout_seconds`, `sandbox`, `egress`, `dir`, `memory_mb`, `cpu_seconds`, `processes`, \
         `open_files`, `file_size_mb`",
    );
    check_error(
        &format!("{AGENTS}[mcp.servers.a__b]\ncommand = \"node\"\nagents = [\"main\"]\n"),
        "clawdia.toml:8: mcp.servers.a__b: server names must be 1-48 lowercase letters, digits, `-` or `_` \
         (not `__`: tools are named NAME__tool), starting with a letter or digit",
    );
}
