//! The provider-neutral transcript: what the owner said, what the model answered (text and tool
//! calls), and what each tool returned. Provider clients translate this to and from their wire.

use serde::{Deserialize, Serialize};

/// One entry of a conversation transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// Text from the person (or API client) driving the session.
    User { text: String },
    /// A complete model reply: text and zero or more tool calls, in order.
    Assistant {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, matched to it by `call_id`.
    ToolResult {
        call_id: String,
        name: String,
        content: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

impl Message {
    pub fn user(text: impl Into<String>) -> Message {
        Message::User { text: text.into() }
    }

    pub fn assistant(text: impl Into<String>) -> Message {
        Message::Assistant { text: text.into(), tool_calls: Vec::new() }
    }

    /// The stable lower-case name of the role, as stored and exported.
    pub fn role_name(&self) -> &'static str {
        match self {
            Message::User { .. } => "user",
            Message::Assistant { .. } => "assistant",
            Message::ToolResult { .. } => "tool_result",
        }
    }
}

/// A tool invocation requested by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id (`toolu_...`, `call_...`); results refer to it.
    pub id: String,
    pub name: String,
    /// The arguments exactly as the model produced them: JSON text, possibly malformed.
    pub arguments: String,
}
