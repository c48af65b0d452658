//! Fitting on SmolLM2's real tokenizer (rebuilt from its GGUF) and template, through
//! `Prompter::load`, which reads only the GGUF header: thirty wide tool definitions do not fit
//! the 2,048-token context, so the first ones that fit are kept in order and the rest left out;
//! the prompt then names exactly the kept tools and leaves room for the reply, and no left-out
//! tool would have fitted beside them. A few small tools all fit.

use clawdia_core::{ChatRequest, Message, ToolSpec};
use clawdia_local::Prompter;

use crate::{SMOLLM2, smollm2_dir};

fn tool(n: usize, words: usize) -> ToolSpec {
    ToolSpec {
        name: format!("tool_{n}"),
        description: format!("Tool number {n}: ").repeat(words),
        parameters: serde_json::json!({"type": "object", "properties": {"x": {"type": "string"}}}),
    }
}

fn request(tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        model: SMOLLM2.into(),
        system: "You are Clawdia, the owner's assistant.".into(),
        messages: vec![Message::user("What is the capital of France?")],
        tools,
        max_tokens: 256,
        temperature: None,
        stream: true,
        stop: Vec::new(),
    }
}

#[test]
fn tools_that_do_not_fit_are_left_out_and_the_rest_kept_in_order() {
    let Some(dir) = smollm2_dir() else { return };
    let prompter = Prompter::load(&dir, 2048).unwrap();
    assert_eq!(prompter.context_length(), 2048);
    let tools: Vec<ToolSpec> = (0..30).map(|n| tool(n, 25)).collect();
    let fitted = prompter.fit(&request(tools.clone())).unwrap();
    assert!(!fitted.tools_kept.is_empty() && !fitted.tools_left_out.is_empty(), "{fitted:?}");
    let kept: Vec<String> = (0..fitted.tools_kept.len()).map(|n| format!("tool_{n}")).collect();
    assert_eq!(fitted.tools_kept, kept, "the first tools, in the request's order");
    assert_eq!(fitted.tools_kept.len() + fitted.tools_left_out.len(), 30);
    assert!(fitted.ids.len() + 256 <= 2048, "room for the reply: {} prompt tokens", fitted.ids.len());
    let prompt = prompter.tokenizer().decode(&fitted.ids, false).unwrap();
    for name in &fitted.tools_kept {
        assert!(prompt.contains(&format!("\"name\": \"{name}\"")), "{name} offered");
    }
    for name in &fitted.tools_left_out {
        assert!(!prompt.contains(&format!("\"name\": \"{name}\"")), "{name} not offered");
    }
    assert!(prompt.contains("What is the capital of France?"));
    // Maximal: the next tool would not have fitted beside the kept ones.
    let one_more: Vec<ToolSpec> = tools[..=fitted.tools_kept.len()].to_vec();
    let bigger = prompter.fit(&request(one_more)).unwrap();
    assert_eq!(bigger.tools_kept, fitted.tools_kept);
}

#[test]
fn a_few_small_tools_all_fit() {
    let Some(dir) = smollm2_dir() else { return };
    let prompter = Prompter::load(&dir, 2048).unwrap();
    let fitted = prompter.fit(&request((0..3).map(|n| tool(n, 3)).collect())).unwrap();
    assert_eq!(fitted.tools_kept, ["tool_0", "tool_1", "tool_2"]);
    assert!(fitted.tools_left_out.is_empty());
    assert_eq!(fitted.messages_dropped, 0);
}
