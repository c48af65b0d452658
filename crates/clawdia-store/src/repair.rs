//! Transcript repair, as pure functions: finding assistant tool calls that no `ToolResult`
//! answers, and where the synthetic error result for each belongs.
//!
//! The invariant repair restores: every tool call is followed by its result before the next user
//! or assistant message. A synthetic result goes right after the existing results of the
//! assistant message that made the call. In practice that is the tail (the gateway was killed
//! mid-turn), but a transcript damaged elsewhere is repaired in place too; the store then
//! renumbers the rows after the first insertion point.

use std::collections::HashSet;

use clawdia_core::Message;

/// The content of every synthetic result.
pub const SYNTHETIC_RESULT_TEXT: &str =
    "error: the gateway stopped before this tool call finished; its outcome is unknown";

/// A synthetic result to insert before the message at index `before` of the original transcript
/// (`before == len` means at the end).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Insertion {
    pub before: usize,
    pub result: Message,
}

/// The synthetic results `messages` needs, ordered by position. Empty for a sound transcript.
pub(crate) fn plan(messages: &[Message]) -> Vec<Insertion> {
    let has_calls = messages
        .iter()
        .any(|message| matches!(message, Message::Assistant { tool_calls, .. } if !tool_calls.is_empty()));
    if !has_calls {
        return Vec::new();
    }
    let mut answered: HashSet<&str> = messages
        .iter()
        .filter_map(|message| match message {
            Message::ToolResult { call_id, .. } => Some(call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut insertions = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let Message::Assistant { tool_calls, .. } = message else {
            continue;
        };
        if tool_calls.iter().all(|call| answered.contains(call.id.as_str())) {
            continue;
        }
        let after_results = messages[index + 1..]
            .iter()
            .position(|next| !matches!(next, Message::ToolResult { .. }))
            .map_or(messages.len(), |offset| index + 1 + offset);
        for call in tool_calls {
            if answered.insert(call.id.as_str()) {
                insertions.push(Insertion { before: after_results, result: synthetic_result(call) });
            }
        }
    }
    insertions
}

/// The transcript with the planned insertions applied, each original element paired with its
/// original index (`None` for a synthetic result).
pub(crate) fn apply<T: Clone>(
    original: &[T],
    insertions: Vec<Insertion>,
    wrap: impl Fn(Message) -> T,
) -> Vec<(Option<usize>, T)> {
    let mut merged = Vec::with_capacity(original.len() + insertions.len());
    let mut pending = insertions.into_iter().peekable();
    for (index, item) in original.iter().enumerate() {
        while let Some(insertion) = pending.next_if(|insertion| insertion.before <= index) {
            merged.push((None, wrap(insertion.result)));
        }
        merged.push((Some(index), item.clone()));
    }
    merged.extend(pending.map(|insertion| (None, wrap(insertion.result))));
    merged
}

/// Tool calls without a result, as `(call id, tool name)`, for the integrity check.
pub(crate) fn unanswered_calls(messages: &[Message]) -> Vec<(String, String)> {
    plan(messages)
        .into_iter()
        .filter_map(|insertion| match insertion.result {
            Message::ToolResult { call_id, name, .. } => Some((call_id, name)),
            _ => None,
        })
        .collect()
}

fn synthetic_result(call: &clawdia_core::ToolCall) -> Message {
    Message::ToolResult {
        call_id: call.id.clone(),
        name: call.name.clone(),
        content: SYNTHETIC_RESULT_TEXT.to_string(),
        is_error: true,
    }
}
