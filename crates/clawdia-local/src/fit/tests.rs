//! Fitting with a word-level tokenizer (one token per word or run of punctuation), so the
//! numbers are exact without model files: every tool kept when they fit; a large tool left out
//! while the smaller ones after it stay, in the request's order; no tool at all when none fits
//! beside the last message; old messages dropped before tools; a last message too long alone is
//! refused. The same logic on SmolLM2's real tokenizer is in `tests/it/fit.rs`.

use clawdia_core::{ChatRequest, Message, ToolSpec};
use serde_json::json;
use tokenizers::Tokenizer;
use tokenizers::models::wordlevel::WordLevel;
use tokenizers::pre_tokenizers::whitespace::Whitespace;

use super::*;

fn prompter(context_length: usize) -> Prompter {
    let vocab = [("[UNK]".to_string(), 0)].into_iter().collect();
    let model = WordLevel::builder().vocab(vocab).unk_token("[UNK]".into()).build().unwrap();
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(Whitespace {}));
    let template = ChatTemplate::new(None, "", "").unwrap();
    Prompter::new(tokenizer, template, context_length)
}

fn tool(name: &str, words: usize) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: "word ".repeat(words).trim_end().to_string(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    }
}

fn request(messages: Vec<Message>, tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        system: "You are helpful.".into(),
        messages,
        tools,
        max_tokens: 50,
        temperature: None,
        stream: true,
        stop: Vec::new(),
    }
}

/// Tokens of `request` as rendered whole, measured by a prompter with room for anything.
fn size(request: &ChatRequest) -> usize {
    prompter(1_000_000).fit(request).unwrap().ids.len()
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| name.to_string()).collect()
}

#[test]
fn every_tool_is_kept_when_all_fit() {
    let request = request(vec![Message::user("hi")], vec![tool("read", 5), tool("list", 5)]);
    let fitted = prompter(size(&request) + 50).fit(&request).unwrap();
    assert_eq!(fitted.tools_kept, names(&["read", "list"]));
    assert!(fitted.tools_left_out.is_empty());
    assert_eq!(fitted.messages_dropped, 0);
    assert_eq!(fitted.ids.len(), size(&request));
}

#[test]
fn a_large_tool_is_left_out_and_the_smaller_ones_after_it_stay_in_order() {
    let small = request(vec![Message::user("hi")], vec![tool("read", 5), tool("list", 5), tool("grep", 5)]);
    let all = request(
        vec![Message::user("hi")],
        vec![tool("read", 5), tool("huge", 400), tool("list", 5), tool("grep", 5)],
    );
    // Room for the three small tools and the reply (50 tokens), not for `huge`.
    let fitted = prompter(size(&small) + 50).fit(&all).unwrap();
    assert_eq!(fitted.tools_kept, names(&["read", "list", "grep"]));
    assert_eq!(fitted.tools_left_out, names(&["huge"]));
    assert_eq!(fitted.ids.len(), size(&small), "the prompt is the one with the kept tools");
    // One token less and the last of them goes too.
    let fitted = prompter(size(&small) + 49).fit(&all).unwrap();
    assert_eq!(fitted.tools_kept, names(&["read", "list"]));
    assert_eq!(fitted.tools_left_out, names(&["huge", "grep"]));
    assert!(fitted.ids.len() + 50 <= size(&small) + 49);
}

#[test]
fn no_tool_is_offered_when_none_fits_beside_the_last_message() {
    let bare = request(vec![Message::user("hi")], vec![]);
    let with_tools = request(vec![Message::user("hi")], vec![tool("read", 300), tool("list", 300)]);
    let fitted = prompter(size(&bare) + 50).fit(&with_tools).unwrap();
    assert!(fitted.tools_kept.is_empty());
    assert_eq!(fitted.tools_left_out, names(&["read", "list"]));
    assert_eq!(fitted.ids.len(), size(&bare));
}

#[test]
fn old_messages_are_dropped_before_tools() {
    let history = vec![
        Message::user("old ".repeat(200)),
        Message::assistant("older reply ".repeat(100)),
        Message::user("What now?"),
    ];
    let tools = vec![tool("read", 5)];
    let last_only = request(vec![Message::user("What now?")], tools.clone());
    let fitted = prompter(size(&last_only) + 50).fit(&request(history, tools)).unwrap();
    assert_eq!(fitted.tools_kept, names(&["read"]));
    assert_eq!(fitted.messages_dropped, 2);
    assert_eq!(fitted.ids.len(), size(&last_only));
}

#[test]
fn a_last_message_too_long_alone_is_refused() {
    let long = request(vec![Message::user("word ".repeat(500))], vec![tool("read", 5)]);
    let error = prompter(300).fit(&long).unwrap_err();
    assert!(matches!(error, LocalError::TooLong { context: 300, .. }), "{error:?}");
    assert!(error.to_string().contains("the local model's context holds 300"), "{error}");
}
