//! The prompt: a `ChatRequest` rendered with the chat template the model ships
//! (`tokenizer.chat_template` in the GGUF, or `chat_template` in `tokenizer_config.json`), a
//! Jinja template evaluated with minijinja (Python-compatible string methods from
//! minijinja-contrib, `raise_exception`, `trim_blocks` and `lstrip_blocks` as Hugging Face
//! renders them). A model without a template gets ChatML (`<|im_start|>role\n...<|im_end|>`).
//!
//! Tools follow the Hermes / Qwen convention: the model is told the tools' JSON signatures inside
//! `<tools></tools>` and answers a call as `<tool_call>{"name": ..., "arguments": {...}}
//! </tool_call>`. A template that knows tools itself (it mentions `tools`, as Qwen2.5's does)
//! receives them as `tools` with OpenAI-shaped messages (`tool_calls`, role `tool`). A template
//! that does not (SmolLM2's) gets the same instructions appended to the system message, earlier
//! calls written into the assistant text as `<tool_call>` blocks and results sent as user
//! messages wrapped in `<tool_response>`, exactly the text Qwen2.5's template would produce.

use clawdia_core::{ChatRequest, Message, ToolSpec};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::json;

use crate::LocalError;

/// ChatML, for models that ship no template.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    handles_tools: bool,
    bos_token: String,
    eos_token: String,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("handles_tools", &self.handles_tools).finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` (ChatML when `None`). `bos_token` / `eos_token` are the texts the
    /// template may refer to.
    pub fn new(source: Option<&str>, bos_token: &str, eos_token: &str) -> Result<ChatTemplate, LocalError> {
        let source = source.unwrap_or(CHATML).to_string();
        let handles_tools = source.contains("tools");
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned("chat", source).map_err(|error| {
            LocalError::Model(format!("the model's chat template does not compile: {error}"))
        })?;
        Ok(ChatTemplate {
            env,
            handles_tools,
            bos_token: bos_token.to_string(),
            eos_token: eos_token.to_string(),
        })
    }

    /// Whether the template renders tools itself.
    pub fn handles_tools(&self) -> bool {
        self.handles_tools
    }

    /// The prompt for `request` up to the assistant's turn, keeping only the last `keep`
    /// messages of the transcript (all when `None`).
    pub fn render(&self, request: &ChatRequest, keep: Option<usize>) -> Result<String, LocalError> {
        let skip = keep.map_or(0, |keep| request.messages.len().saturating_sub(keep));
        let messages = &request.messages[skip..];
        let (messages, tools) = if self.handles_tools {
            (native_messages(&request.system, messages), tool_values(&request.tools))
        } else {
            (inline_messages(&request.system, messages, &request.tools), Vec::new())
        };
        let template = self
            .env
            .get_template("chat")
            .map_err(|error| LocalError::Model(format!("chat template: {error}")))?;
        let mut context = json!({
            "messages": messages,
            "add_generation_prompt": true,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        });
        if !tools.is_empty() {
            context["tools"] = serde_json::Value::Array(tools);
        }
        template
            .render(Value::from_serialize(&context))
            .map_err(|error| LocalError::Model(format!("rendering the chat template failed: {error}")))
    }
}

/// The tools in the OpenAI shape templates expect.
fn tool_values(tools: &[ToolSpec]) -> Vec<serde_json::Value> {
    tools
        .iter()
        .map(|tool| {
            json!({
                "type": "function",
                "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
            })
        })
        .collect()
}

/// The Hermes instructions listing `tools`, as Qwen2.5's template writes them.
pub fn tools_preamble(tools: &[ToolSpec]) -> String {
    let mut text = String::from(
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n\
         You are provided with function signatures within <tools></tools> XML tags:\n<tools>",
    );
    for tool in tools {
        // Written by hand so the key order is Qwen's whatever serde_json's map preserves.
        text.push_str(&format!(
            "\n{{\"type\": \"function\", \"function\": {{\"name\": {}, \"description\": {}, \"parameters\": {}}}}}",
            json_text(&tool.name),
            json_text(&tool.description),
            tool.parameters
        ));
    }
    text.push_str(
        "\n</tools>\n\nFor each function call, return a json object with function name and arguments \
         within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \
         \"arguments\": <args-json-object>}\n</tool_call>",
    );
    text
}

/// A call as the model writes it: `{"name": ..., "arguments": ...}` in a `<tool_call>` block.
pub fn tool_call_text(name: &str, arguments: &str) -> String {
    let arguments: serde_json::Value =
        serde_json::from_str(arguments).unwrap_or_else(|_| serde_json::Value::String(arguments.to_string()));
    format!("<tool_call>\n{{\"name\": {}, \"arguments\": {arguments}}}\n</tool_call>", json_text(name))
}

/// A string as a JSON literal.
fn json_text(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// Messages for a template that knows tools: OpenAI shape.
fn native_messages(system: &str, messages: &[Message]) -> Vec<serde_json::Value> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    if !system.is_empty() {
        out.push(json!({"role": "system", "content": system}));
    }
    for message in messages {
        out.push(match message {
            Message::User { text } => json!({"role": "user", "content": text}),
            Message::Assistant { text, tool_calls } if tool_calls.is_empty() => {
                json!({"role": "assistant", "content": text})
            }
            Message::Assistant { text, tool_calls } => {
                let calls: Vec<serde_json::Value> = tool_calls
                    .iter()
                    .map(|call| {
                        let arguments: serde_json::Value = serde_json::from_str(&call.arguments)
                            .unwrap_or_else(|_| serde_json::Value::String(call.arguments.clone()));
                        json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}})
                    })
                    .collect();
                json!({"role": "assistant", "content": text, "tool_calls": calls})
            }
            Message::ToolResult { call_id, name, content, .. } => {
                json!({"role": "tool", "content": content, "name": name, "tool_call_id": call_id})
            }
        });
    }
    out
}

/// Messages for a template that knows only roles and text: tools go into the system message,
/// calls into the assistant text, results into user messages.
fn inline_messages(system: &str, messages: &[Message], tools: &[ToolSpec]) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = Vec::with_capacity(messages.len() + 1);
    let system = match (system.is_empty(), tools.is_empty()) {
        (_, true) => system.to_string(),
        (true, false) => tools_preamble(tools),
        (false, false) => format!("{system}\n\n{}", tools_preamble(tools)),
    };
    if !system.is_empty() {
        out.push(json!({"role": "system", "content": system}));
    }
    let mut previous_was_result = false;
    for message in messages {
        match message {
            Message::User { text } => out.push(json!({"role": "user", "content": text})),
            Message::Assistant { text, tool_calls } => {
                let mut content = text.clone();
                for call in tool_calls {
                    if !content.is_empty() {
                        content.push('\n');
                    }
                    content.push_str(&tool_call_text(&call.name, &call.arguments));
                }
                out.push(json!({"role": "assistant", "content": content}));
            }
            Message::ToolResult { content, .. } => {
                let block = format!("<tool_response>\n{content}\n</tool_response>");
                match out.last_mut() {
                    Some(last) if previous_was_result => {
                        let merged = format!("{}\n{block}", last["content"].as_str().unwrap_or_default());
                        last["content"] = serde_json::Value::String(merged);
                    }
                    _ => out.push(json!({"role": "user", "content": block})),
                }
            }
        }
        previous_was_result = matches!(message, Message::ToolResult { .. });
    }
    out
}

#[cfg(test)]
mod tests;
