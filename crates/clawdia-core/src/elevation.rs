//! Elevation requests: what a user agent that cannot change the host asks for
//! (`request_elevation`), as it is dropped into the broker's inbox (`state/broker/inbox/`, one
//! JSON file each, written by Clawdia or by anything else), and the states it moves through
//! while the administrator agent assesses it, the owner decides, and the approved commands run.
//! Pure data and validation; the store (`broker.db`) and the flow live elsewhere.

use serde::{Deserialize, Serialize};

/// How urgent the requester says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Low,
    Normal,
    High,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }
}

/// One request as it sits in the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filed {
    /// What should change, in a sentence.
    pub action: String,
    /// Why.
    pub reason: String,
    /// The exact host commands proposed, each an argument vector (`["/usr/bin/systemctl",
    /// "restart", "nginx"]`); they run only through the allowlist, never through a shell.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
    #[serde(default = "normal")]
    pub urgency: Urgency,
    /// The agent and session that asked (the report goes back there); absent when something
    /// other than an agent dropped the file.
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub session: Option<String>,
}

fn normal() -> Urgency {
    Urgency::Normal
}

/// The most commands one request may propose.
pub const MAX_COMMANDS: usize = 20;
/// The longest `action` or `reason`, in characters.
pub const MAX_TEXT: usize = 4_000;

impl Filed {
    /// Reads an inbox file, or says in one line what is wrong with it.
    pub fn parse(bytes: &[u8]) -> Result<Filed, String> {
        if bytes.len() > 256 * 1024 {
            return Err("larger than 256 KB".into());
        }
        let filed: Filed = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a request: {}", crate::text::one_line(&e.to_string())))?;
        filed.check()?;
        Ok(filed)
    }

    /// The limits every request must keep.
    pub fn check(&self) -> Result<(), String> {
        if self.action.trim().is_empty() {
            return Err("`action` is empty".into());
        }
        if self.reason.trim().is_empty() {
            return Err("`reason` is empty".into());
        }
        if self.action.chars().count() > MAX_TEXT || self.reason.chars().count() > MAX_TEXT {
            return Err(format!("`action` and `reason` are limited to {MAX_TEXT} characters"));
        }
        if self.commands.len() > MAX_COMMANDS {
            return Err(format!("at most {MAX_COMMANDS} commands"));
        }
        for command in &self.commands {
            let Some(program) = command.first() else { return Err("a command is empty".into()) };
            if !program.starts_with('/') {
                return Err(format!("`{program}`: a command's program must be an absolute path"));
            }
            if command.iter().any(|arg| arg.contains('\0') || arg.len() > 4_096) {
                return Err("a command's arguments must be text without NUL bytes, 4 KB at most each".into());
            }
        }
        Ok(())
    }
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElevationStatus {
    /// Taken from the inbox and stored.
    Received,
    /// The administrator agent is assessing it.
    Assessing,
    /// The owner was asked; waiting for their answer.
    AwaitingOperator,
    /// The owner approved; the commands are about to run.
    Approved,
    Denied,
    /// The commands are running (a restart finds it here only if it was killed mid-run: then
    /// it fails, never runs twice).
    Executing,
    Done,
    Failed,
    Expired,
}

impl ElevationStatus {
    pub const ALL: [ElevationStatus; 9] = [
        ElevationStatus::Received,
        ElevationStatus::Assessing,
        ElevationStatus::AwaitingOperator,
        ElevationStatus::Approved,
        ElevationStatus::Denied,
        ElevationStatus::Executing,
        ElevationStatus::Done,
        ElevationStatus::Failed,
        ElevationStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ElevationStatus::Received => "received",
            ElevationStatus::Assessing => "assessing",
            ElevationStatus::AwaitingOperator => "awaiting_operator",
            ElevationStatus::Approved => "approved",
            ElevationStatus::Denied => "denied",
            ElevationStatus::Executing => "executing",
            ElevationStatus::Done => "done",
            ElevationStatus::Failed => "failed",
            ElevationStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<ElevationStatus> {
        ElevationStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether nothing more happens to a request in this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ElevationStatus::Denied
                | ElevationStatus::Done
                | ElevationStatus::Failed
                | ElevationStatus::Expired
        )
    }
}

/// A stored request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Elevation {
    /// Short random hex, what the owner types: `clawdia broker approve 5e1f0a77`.
    pub id: String,
    pub status: ElevationStatus,
    pub filed: Filed,
    /// The administrator agent's assessment for the owner.
    pub assessment: Option<String>,
    /// The owner's words with their decision.
    pub note: Option<String>,
    /// What running the commands gave (or why they did not run).
    pub result: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

impl Elevation {
    /// One line for lists: the action, and how many commands.
    pub fn summary(&self) -> String {
        let action = crate::text::one_line(&self.filed.action);
        match self.filed.commands.len() {
            0 => action,
            1 => format!("{action} (1 command)"),
            n => format!("{action} ({n} commands)"),
        }
    }

    /// The commands as the owner reads them: one line each, arguments quoted when needed.
    pub fn command_lines(&self) -> Vec<String> {
        self.filed
            .commands
            .iter()
            .map(|command| {
                command
                    .iter()
                    .map(|arg| {
                        if !arg.is_empty()
                            && arg.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:@+,".contains(c))
                        {
                            arg.clone()
                        } else {
                            format!("'{}'", arg.replace('\'', "'\\''"))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

/// What the owner's reply meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "meaning", rename_all = "snake_case")]
pub enum Reading {
    Approve,
    Deny,
    /// A question about the request; the administrator answers, the request keeps waiting.
    Question,
    /// A change: these commands instead (the owner confirms them before anything runs).
    Modify {
        commands: Vec<Vec<String>>,
    },
}

/// What came of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyOutcome {
    pub reading: Reading,
    /// The request after it.
    pub status: ElevationStatus,
    /// What the owner is told back (the answer to a question, the changed commands to confirm,
    /// or the outcome).
    pub message: String,
}

/// The request id and token of a `[clawdia:ID:TOKEN]` tag (in a mail's subject).
pub fn reply_tag(text: &str) -> Option<(String, String)> {
    let start = text.find("[clawdia:")?;
    let rest = &text[start + "[clawdia:".len()..];
    let end = rest.find(']')?;
    let (id, token) = rest[..end].split_once(':')?;
    let word =
        |s: &str| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    (word(id) && word(token)).then(|| (id.to_string(), token.to_string()))
}

/// The one-word (and very short) replies read without a model; `None` for anything longer or
/// unclear. Never approves on a reply that also says something else.
pub fn strict_reading(reply: &str) -> Option<Reading> {
    // Only the first line, the rest of a mail is quoted text.
    let first = reply.lines().map(str::trim).find(|line| !line.is_empty())?;
    let words: String = first
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' { c } else { ' ' })
        .collect();
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    const APPROVE: &[&str] = &[
        "yes",
        "y",
        "approve",
        "approved",
        "ok",
        "okay",
        "go",
        "go ahead",
        "do it",
        "sure",
        "yes please",
        "lgtm",
    ];
    const DENY: &[&str] =
        &["no", "n", "deny", "denied", "reject", "rejected", "don't", "do not", "stop", "no thanks"];
    if APPROVE.contains(&words.as_str()) {
        return Some(Reading::Approve);
    }
    if DENY.contains(&words.as_str()) {
        return Some(Reading::Deny);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_file_is_read_with_defaults_and_checked() {
        let filed = Filed::parse(br#"{"action": "restart nginx", "reason": "config changed", "commands": [["/usr/bin/systemctl", "restart", "nginx"]]}"#).unwrap();
        assert_eq!(filed.urgency, Urgency::Normal);
        assert_eq!(filed.agent, None);
        for (bad, why) in [
            (r#"{"action": "", "reason": "x"}"#, "`action` is empty"),
            (
                r#"{"action": "a", "reason": "x", "commands": [["rm", "-rf", "/"]]}"#,
                "`rm`: a command's program must be an absolute path",
            ),
            (r#"{"action": "a", "reason": "x", "commands": [[]]}"#, "a command is empty"),
        ] {
            assert_eq!(Filed::parse(bad.as_bytes()).unwrap_err(), why);
        }
        assert!(
            Filed::parse(br#"{"action": "a", "reason": "x", "sudo": true}"#)
                .unwrap_err()
                .starts_with("not a request: unknown field")
        );
        assert!(Filed::parse(b"{\"action\": \"a\", \"rea").unwrap_err().starts_with("not a request"));
    }

    #[test]
    fn commands_read_back_as_one_quoted_line_each() {
        let elevation = Elevation {
            id: "1".into(),
            status: ElevationStatus::Received,
            filed: Filed {
                action: "a".into(),
                reason: "b".into(),
                commands: vec![vec!["/bin/echo".into(), "it's here".into(), "ok".into()]],
                urgency: Urgency::High,
                agent: None,
                session: None,
            },
            assessment: None,
            note: None,
            result: None,
            created_at: 0,
            updated_at: 0,
            expires_at: 0,
        };
        assert_eq!(elevation.command_lines(), ["/bin/echo 'it'\\''s here' ok"]);
        assert_eq!(elevation.summary(), "a (1 command)");
        for status in ElevationStatus::ALL {
            assert_eq!(ElevationStatus::parse(status.as_str()), Some(status));
        }
    }

    #[test]
    fn short_replies_are_read_strictly_and_anything_else_is_left_to_the_model() {
        for yes in ["yes", "Yes.", "  OK!\n\n> quoted request", "go ahead", "LGTM"] {
            assert_eq!(strict_reading(yes), Some(Reading::Approve), "{yes}");
        }
        for no in ["no", "No!", "don't", "Deny"] {
            assert_eq!(strict_reading(no), Some(Reading::Deny), "{no}");
        }
        for unclear in
            ["no, not on Fridays", "yes but only the first part", "what would this touch?", "", "yesno"]
        {
            assert_eq!(strict_reading(unclear), None, "{unclear}");
        }
    }

    #[test]
    fn the_reply_tag_is_found_in_a_subject() {
        assert_eq!(
            reply_tag("Re: Request 5e1f0a77: restart nginx [clawdia:5e1f0a77:db88180edda1c174dc97]"),
            Some(("5e1f0a77".into(), "db88180edda1c174dc97".into()))
        );
        assert_eq!(reply_tag("Re: hello"), None);
        assert_eq!(reply_tag("[clawdia:id]"), None);
        assert_eq!(reply_tag("[clawdia:a b:c]"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = Filed::parse(&bytes);
        }
    }
}
