//! Tool policy: an agent's allow and deny lists of tool names and groups. Deny wins; `*` in the
//! allow list allows every built-in tool not denied (tools from a `ToolSource`, such as MCP
//! servers, are granted per agent instead, and only the deny list applies to them). The ask list
//! grants nothing: it marks allowed tools whose calls wait for the owner's approval.

/// An agent's tool policy as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPolicy {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    /// Tool or group names whose calls wait for the owner's approval.
    pub ask: Vec<String>,
}

impl ToolPolicy {
    /// Whether a tool with `name` in `group` may run.
    pub fn allows(&self, name: &str, group: &str) -> bool {
        let hit = |list: &[String]| list.iter().any(|entry| entry == name || entry == group);
        if hit(&self.deny) {
            return false;
        }
        self.allow.iter().any(|entry| entry == "*") || hit(&self.allow)
    }

    /// Whether the deny list names the tool or its group. Tools from a `ToolSource` (granted
    /// per agent, e.g. MCP servers) need no allow entry, so only this applies to them.
    pub fn denies(&self, name: &str, group: &str) -> bool {
        self.deny.iter().any(|entry| entry == name || entry == group)
    }

    /// The `ask` entry naming the tool or its group, if any.
    pub fn asks(&self, name: &str, group: &str) -> Option<&str> {
        self.ask.iter().find(|entry| *entry == name || *entry == group).map(String::as_str)
    }
}
