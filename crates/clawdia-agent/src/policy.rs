//! Tool policy: an agent's allow and deny lists of tool names and groups. Deny wins; `*` in the
//! allow list allows everything not denied.

/// An agent's tool policy as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPolicy {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
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
}
