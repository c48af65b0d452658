//! `clawdia mcp list|probe`: the configured MCP servers with the agents granted each and the
//! tools they listed when they last started (cached by the gateway in `state/mcp/`), and a probe
//! that starts one server in its sandbox, lists its tools with their descriptions, and stops it.

use std::path::PathBuf;
use std::time::Instant;

use clawdia_config::{Config, McpServerConfig, Sandbox};
use clawdia_runtime::mcp::{read_cache, tool_name};

use crate::{Failure, McpCommand, Outcome, load_config};

pub async fn run(home: PathBuf, command: McpCommand) -> Outcome {
    let config = load_config(&home)?;
    match command {
        McpCommand::List { json } => list(&config, json),
        McpCommand::Probe { name, json } => probe(&config, &name, json).await,
    }
}

fn sandbox_name(sandbox: Sandbox) -> &'static str {
    match sandbox {
        Sandbox::Auto => "auto",
        Sandbox::Bwrap => "bwrap",
        Sandbox::Builtin => "builtin",
        Sandbox::Off => "off",
    }
}

fn command_line(server: &McpServerConfig) -> String {
    std::iter::once(server.command.as_str())
        .chain(server.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The agents a server is granted to, or what to write when there are none.
fn granted_to(server: &McpServerConfig) -> String {
    if server.agents.is_empty() {
        return format!(
            "none: no agent sees its tools (add agents = [\"main\"] to [mcp.servers.{}])",
            server.name
        );
    }
    server.agents.join(", ")
}

/// Each configured server with its grant, limits and the tools it listed last.
pub(crate) fn servers_json(config: &Config) -> Vec<serde_json::Value> {
    let cache = clawdia_runtime::mcp::cache_dir(config);
    config
        .mcp
        .servers
        .values()
        .map(|server| {
            let cached = read_cache(&cache, &server.name);
            serde_json::json!({
                "name": server.name,
                "command": server.command,
                "args": server.args,
                "agents": server.agents,
                "sandbox": sandbox_name(server.sandbox),
                "timeout_seconds": server.timeout.as_secs(),
                "dir": server.dir,
                "tools_listed_at_ms": cached.as_ref().map(|c| c.listed_at_ms),
                "tools": cached.map(|c| c.tools.iter().map(|tool| serde_json::json!({
                    "name": tool_name(&server.name, &tool.name),
                    "server_name": tool.name,
                    "description": tool.description,
                })).collect::<Vec<_>>()),
            })
        })
        .collect()
}

fn list(config: &Config, json: bool) -> Outcome {
    let cache = clawdia_runtime::mcp::cache_dir(config);
    if json {
        println!("{}", serde_json::to_string_pretty(&servers_json(config))?);
        return Ok(());
    }
    if config.mcp.servers.is_empty() {
        println!("no MCP servers configured (add [mcp.servers.NAME] to clawdia.toml)");
        return Ok(());
    }
    for server in config.mcp.servers.values() {
        println!("{}", server.name);
        println!("  command  {}", command_line(server));
        println!("  agents   {}", granted_to(server));
        println!(
            "  sandbox  {}, {}s per call, folder {}",
            sandbox_name(server.sandbox),
            server.timeout.as_secs(),
            server.dir.display()
        );
        match read_cache(&cache, &server.name) {
            None => println!(
                "  tools    not listed yet (it starts on first use; `clawdia mcp probe {}`)",
                server.name
            ),
            Some(cached) => {
                let when = clawdia_core::time::rfc3339_utc(cached.listed_at_ms);
                println!("  tools    {} (listed {when})", cached.tools.len());
                for tool in &cached.tools {
                    let name = tool_name(&server.name, &tool.name)
                        .unwrap_or_else(|| format!("({} not offered: name too long)", tool.name));
                    println!("    {name}");
                }
            }
        }
    }
    Ok(())
}

async fn probe(config: &Config, name: &str, json: bool) -> Outcome {
    let Some(server_config) = config.mcp.servers.get(name) else {
        let configured: Vec<&str> = config.mcp.servers.keys().map(String::as_str).collect();
        let configured = if configured.is_empty() { "none".to_string() } else { configured.join(", ") };
        return Err(Failure::config(format!(
            "no MCP server `{name}` in the config (configured: {configured})"
        )));
    };
    let servers = clawdia_runtime::mcp::servers(config, None);
    let server = servers.server(name).ok_or("the server vanished from the config")?.clone();
    let started = Instant::now();
    let tools = server.tools().await;
    let elapsed = started.elapsed();
    server.stop().await;
    let tools = tools?;
    if json {
        let listed: Vec<serde_json::Value> = tools
            .iter()
            .map(|tool| {
                serde_json::json!({
                    "name": tool_name(name, &tool.name),
                    "server_name": tool.name,
                    "description": tool.description,
                    "input_schema": tool.schema,
                })
            })
            .collect();
        let out = serde_json::json!({
            "server": name,
            "command": command_line(server_config),
            "agents": server_config.agents,
            "start_ms": elapsed.as_millis() as u64,
            "tools": listed,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{name}: started in {} ms ({} sandbox), {} tools, granted to {}",
        elapsed.as_millis(),
        sandbox_name(server_config.sandbox),
        tools.len(),
        granted_to(server_config)
    );
    for tool in tools.iter() {
        let shown = tool_name(name, &tool.name)
            .unwrap_or_else(|| format!("({} not offered: name too long)", tool.name));
        let description: String = tool.description.split_whitespace().collect::<Vec<_>>().join(" ");
        let description: String = description.chars().take(160).collect();
        println!("  {shown}  {description}");
    }
    Ok(())
}
