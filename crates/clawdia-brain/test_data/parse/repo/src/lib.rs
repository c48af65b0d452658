//! A tiny server used as a parser fixture.

use std::collections::HashMap;

/// Parses `key=value` lines into a map; other lines are skipped.
pub fn parse_config(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// The server and the port it listens on.
#[derive(Debug, Clone)]
pub struct Server {
    port: u16,
}

impl Server {
    /// Builds a server from its config, defaulting the port to 8080.
    pub fn new(config: &HashMap<String, String>) -> Self {
        let port = config.get("port").and_then(|port| port.parse().ok()).unwrap_or(8080);
        Self { port }
    }

    /// Runs the server until it is stopped and returns the port it used.
    pub fn run(&self) -> u16 {
        self.port
    }
}
