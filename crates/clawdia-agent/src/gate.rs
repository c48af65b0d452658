//! The gate: the one place that decides, for a turn, whether a tool may be offered to the model
//! and whether a call may run. Every answer is `Allow`, `Deny(reason)` or `Ask(reason)` (run
//! only once the owner approves), and the dispatch point audits each with its reason. The
//! rules, in order:
//!
//! 1. the agent's `tools.deny` names the tool or its group: deny;
//! 2. a built-in tool needs an `allow` entry (or `*`); tools from a source (MCP servers) are
//!    granted per agent, so only `deny` applies to them;
//! 3. the turn's narrowing: `tools_allow` (a cron job, a sub-agent, the dream's distillers), an
//!    untrusted skill or skills declaring `mutating: false` (read-only tools only), skills
//!    declaring their writes (no sub-agents, which would not inherit the confinement);
//! 4. the `elevated` group (`host_exec`) only for the senders `elevated.senders` names;
//! 5. `tools.ask` names the tool or its group: ask the owner — except in a sub-agent's turn,
//!    which has nobody waiting on it: there the call is refused and the parent may make it;
//! 6. allow.
//!
//! A call the owner approved comes back through the same gate (`approved`): rules 1, 2 and 4 are
//! checked again against the policy as it is now, rule 5 is satisfied by the approval.

use clawdia_core::TurnOrigin;

use crate::Agent;

/// The group of host commands, which only some senders may use.
pub const ELEVATED_GROUP: &str = "elevated";

/// The gate's answer for one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(String),
    Deny(String),
    Ask(String),
}

impl Decision {
    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow(reason) | Decision::Deny(reason) | Decision::Ask(reason) => reason,
        }
    }
}

/// How a turn is narrowed beyond its agent's policy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Narrowing {
    /// Only these tool or group names (within the policy).
    pub tools_allow: Option<Vec<String>>,
    /// Why `tools_allow` is what it is, when a skill set it (for the refusal's reason).
    pub why: Option<String>,
    /// Skills declared where they write: no sub-agents this turn.
    pub write_confined: bool,
}

/// The gate as it stands for one turn of one agent.
pub(crate) struct Gate<'a> {
    pub agent: &'a Agent,
    pub narrowing: &'a Narrowing,
    pub origin: TurnOrigin,
    /// The sender's id within the origin (set by the transport).
    pub sender: Option<&'a str>,
}

impl Gate<'_> {
    /// Decides on tool `name` of `group`; `from_source` for tools of a `ToolSource` (MCP).
    pub fn decide(&self, name: &str, group: &str, from_source: bool) -> Decision {
        let policy = &self.agent.spec.policy;
        let agent = &self.agent.spec.name;
        if policy.denies(name, group) {
            return Decision::Deny(format!("`{name}` (group `{group}`) is in agent `{agent}`'s tools.deny"));
        }
        if !from_source && !policy.allows(name, group) {
            return Decision::Deny(format!(
                "`{name}` (group `{group}`) is not in agent `{agent}`'s tools.allow"
            ));
        }
        if let Some(list) = &self.narrowing.tools_allow
            && !list.iter().any(|entry| entry == name || entry == group)
        {
            let why = self.narrowing.why.as_deref().unwrap_or("this turn's tools_allow");
            return Decision::Deny(format!("`{name}` is outside what this turn may use ({why})"));
        }
        if self.narrowing.write_confined && group == crate::subagents::GROUP {
            return Decision::Deny(format!(
                "`{name}` is refused while skills confine this turn's writes (a sub-agent would not inherit the confinement)"
            ));
        }
        if group == ELEVATED_GROUP {
            let sender = clawdia_core::sender_id(self.origin, self.sender);
            let senders = &self.agent.spec.elevated_senders;
            if !senders.iter().any(|pattern| clawdia_core::sender_matches(pattern, &sender)) {
                return Decision::Deny(format!(
                    "sender `{sender}` may not run host commands for agent `{agent}` (elevated.senders: {})",
                    if senders.is_empty() { "none".to_string() } else { senders.join(", ") }
                ));
            }
        }
        if let Some(entry) = policy.asks(name, group) {
            if self.origin == TurnOrigin::Subagent {
                return Decision::Deny(format!(
                    "`{name}` needs the owner's approval (tools.ask `{entry}`), which a sub-agent cannot ask for; the parent agent may make this call"
                ));
            }
            return Decision::Ask(format!("`{entry}` is in agent `{agent}`'s tools.ask"));
        }
        Decision::Allow(format!("`{name}` (group `{group}`) is allowed for agent `{agent}`"))
    }

    /// Whether the model is offered the tool: everything not denied (asked tools included: the
    /// call is what waits, not the offer).
    pub fn offers(&self, name: &str, group: &str, from_source: bool) -> bool {
        !matches!(self.decide(name, group, from_source), Decision::Deny(_))
    }

    /// Whether the turn's `tools_allow` names this tool itself (not only its group): such a tool
    /// is offered directly even when it is an on-demand one.
    pub fn names_explicitly(&self, name: &str) -> bool {
        self.narrowing.tools_allow.as_ref().is_some_and(|list| list.iter().any(|entry| entry == name))
    }
}
