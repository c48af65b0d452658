//! Both provider clients against the mock: text with streamed deltas, parallel tool calls
//! reassembled exactly, usage, and every error the chain acts on (429 with Retry-After, 5xx,
//! 401, 4xx, truncated, malformed, silence past the read timeout, a closed port).

use std::time::{Duration, Instant};

use clawdia_core::{Message, ModelDelta, ModelError, NoDeltas, StopReason, ToolCall, Usage};
use clawdia_test_support::{MockLlm, Reply};

use crate::{Recorder, Wire, client, client_with, combos, request, settings};

/// Runs one queued reply through each wire/stream combination and returns the results.
async fn each_combo(
    reply: Reply,
) -> Vec<((Wire, bool), Result<clawdia_core::ChatResponse, ModelError>, Recorder)> {
    let mock = MockLlm::start().await;
    let mut results = Vec::new();
    for (wire, stream) in combos() {
        mock.push(reply.clone());
        let sink = Recorder::default();
        let result = client(&mock, wire).complete(&request(stream), &sink).await;
        results.push(((wire, stream), result, sink));
    }
    results
}

#[tokio::test]
async fn text_reply_arrives_whole_and_streams_as_deltas() {
    let text = "Hello from the mock, in several pieces.";
    for (combo, result, sink) in each_combo(Reply::text(text)).await {
        let response = result.unwrap_or_else(|error| panic!("{combo:?}: {error}"));
        assert_eq!(response.message, Message::assistant(text), "{combo:?}");
        assert_eq!(response.stop_reason, StopReason::EndTurn, "{combo:?}");
        let (_, stream) = combo;
        if stream {
            assert!(sink.deltas().len() > 3, "{combo:?}: text should arrive in several deltas");
            assert_eq!(sink.text(), text, "{combo:?}");
        } else {
            assert!(sink.deltas().is_empty(), "{combo:?}: non-streaming sends no deltas");
        }
    }
}

#[tokio::test]
async fn parallel_tool_calls_are_reassembled_exactly() {
    let calls = vec![("read", r#"{"path":"a.txt"}"#), ("search", r#"{"limit":5,"query":"x \"y\" ü"}"#)];
    for (combo, result, sink) in each_combo(Reply::text_then_tool_calls("Checking.", calls.clone())).await {
        let response = result.unwrap_or_else(|error| panic!("{combo:?}: {error}"));
        assert_eq!(response.stop_reason, StopReason::ToolUse, "{combo:?}");
        let Message::Assistant { text, tool_calls } = &response.message else {
            panic!("{combo:?}: not an assistant message");
        };
        assert_eq!(text, "Checking.", "{combo:?}");
        let got: Vec<(&str, &str)> =
            tool_calls.iter().map(|call| (call.name.as_str(), call.arguments.as_str())).collect();
        assert_eq!(got, calls, "{combo:?}");
        let prefix = if combo.0 == Wire::Anthropic { "toolu_mock_" } else { "call_mock_" };
        assert!(tool_calls.iter().all(|call| call.id.starts_with(prefix)), "{combo:?}: {tool_calls:?}");
        assert_ne!(tool_calls[0].id, tool_calls[1].id, "{combo:?}");
        if combo.1 {
            let started: Vec<ModelDelta> = tool_calls
                .iter()
                .map(|ToolCall { id, name, .. }| ModelDelta::ToolCallStarted {
                    id: id.clone(),
                    name: name.clone(),
                })
                .collect();
            let seen: Vec<ModelDelta> = sink
                .deltas()
                .into_iter()
                .filter(|delta| matches!(delta, ModelDelta::ToolCallStarted { .. }))
                .collect();
            assert_eq!(seen, started, "{combo:?}");
            assert_eq!(sink.text(), "Checking.", "{combo:?}");
        }
    }
}

#[tokio::test]
async fn tool_calls_without_text() {
    for (combo, result, _) in each_combo(Reply::tool_calls(vec![("list", "{}")])).await {
        let response = result.unwrap_or_else(|error| panic!("{combo:?}: {error}"));
        let Message::Assistant { text, tool_calls } = response.message else { panic!("{combo:?}") };
        assert_eq!(text, "", "{combo:?}");
        assert_eq!(tool_calls.len(), 1, "{combo:?}");
        assert_eq!(
            (tool_calls[0].name.as_str(), tool_calls[0].arguments.as_str()),
            ("list", "{}"),
            "{combo:?}"
        );
    }
}

#[tokio::test]
async fn usage_is_reported() {
    for (combo, result, _) in each_combo(Reply::text("counted").usage(123, 45)).await {
        let response = result.unwrap_or_else(|error| panic!("{combo:?}: {error}"));
        assert_eq!(
            response.usage,
            Usage { input_tokens: 123, output_tokens: 45, ..Usage::default() },
            "{combo:?}"
        );
    }
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    for (combo, result, _) in each_combo(Reply::status(429).retry_after("7")).await {
        assert_eq!(
            result.err(),
            Some(ModelError::RateLimited { retry_after: Some(Duration::from_secs(7)) }),
            "{combo:?}"
        );
    }
    for (combo, result, _) in each_combo(Reply::status(429)).await {
        assert_eq!(result.err(), Some(ModelError::RateLimited { retry_after: None }), "{combo:?}");
    }
}

#[tokio::test]
async fn server_errors_and_overload() {
    for code in [500, 503, 529] {
        for (combo, result, _) in each_combo(Reply::status(code)).await {
            assert_eq!(
                result.err(),
                Some(ModelError::Server { status: code, message: format!("mock error {code}") }),
                "{combo:?}"
            );
        }
    }
}

#[tokio::test]
async fn unauthorized_and_rejected() {
    for (combo, result, _) in each_combo(Reply::status(401)).await {
        assert_eq!(result.err(), Some(ModelError::Unauthorized("mock error 401".into())), "{combo:?}");
    }
    for (combo, result, _) in each_combo(Reply::status(403)).await {
        assert_eq!(result.err(), Some(ModelError::Unauthorized("mock error 403".into())), "{combo:?}");
    }
    for (combo, result, _) in each_combo(Reply::status(400)).await {
        assert_eq!(
            result.err(),
            Some(ModelError::Rejected { status: 400, message: "mock error 400".into() }),
            "{combo:?}"
        );
    }
    let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "x".repeat(1000));
    for (combo, result, _) in each_combo(Reply::status(422).body(long.clone())).await {
        assert_eq!(
            result.err(),
            Some(ModelError::Rejected { status: 422, message: format!("{}...", "x".repeat(300)) }),
            "{combo:?}"
        );
    }
}

#[tokio::test]
async fn truncated_reply_is_an_error_not_a_partial_response() {
    for (combo, result, sink) in each_combo(Reply::truncated()).await {
        assert!(matches!(result, Err(ModelError::Truncated(_))), "{combo:?}: {result:?}");
        let message = result.unwrap_err().to_string();
        assert!(!message.contains("127.0.0.1"), "{combo:?}: the URL leaked: {message}");
        if combo.1 {
            assert_eq!(sink.text(), "This reply breaks off", "{combo:?}: deltas before the break were sent");
        }
    }
}

#[tokio::test]
async fn malformed_reply_is_malformed() {
    for (combo, result, _) in each_combo(Reply::malformed()).await {
        assert!(matches!(result, Err(ModelError::Malformed(_))), "{combo:?}: {result:?}");
    }
}

#[tokio::test]
async fn silence_past_the_read_timeout_is_a_timeout() {
    let mock = MockLlm::start().await;
    for (wire, stream) in combos() {
        mock.push(Reply::hang());
        let mut settings = settings(&mock, wire);
        settings.read_timeout = Duration::from_millis(300);
        let started = Instant::now();
        let result = client_with(settings, wire).complete(&request(stream), &NoDeltas).await;
        assert!(matches!(result, Err(ModelError::Timeout(_))), "{wire:?}/{stream}: {result:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{wire:?}/{stream}: took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn read_timeout_applies_per_chunk_not_to_the_whole_stream() {
    let mock = MockLlm::start().await;
    for wire in [Wire::Anthropic, Wire::OpenAi] {
        let mut settings = settings(&mock, wire);
        settings.read_timeout = Duration::from_millis(400);
        let client = client_with(settings, wire);
        // About ten events 60 ms apart: far longer than the timeout in total, never silent that long.
        mock.push(Reply::text("slow but steady text").chunk_delay(Duration::from_millis(60)));
        let response = client.complete(&request(true), &NoDeltas).await;
        assert_eq!(
            response.map(|reply| reply.message),
            Ok(Message::assistant("slow but steady text")),
            "{wire:?}"
        );
        // One gap longer than the timeout fails mid-stream.
        mock.push(Reply::text("stalls").chunk_delay(Duration::from_millis(1500)));
        let sink = Recorder::default();
        let result = client.complete(&request(true), &sink).await;
        assert!(matches!(result, Err(ModelError::Timeout(_))), "{wire:?}: {result:?}");
    }
}

#[tokio::test]
async fn delay_before_the_first_byte_counts_against_the_read_timeout() {
    let mock = MockLlm::start().await;
    for (wire, stream) in combos() {
        let mut settings = settings(&mock, wire);
        settings.read_timeout = Duration::from_millis(300);
        mock.push(Reply::text("late").delay(Duration::from_millis(1500)));
        let result = client_with(settings, wire).complete(&request(stream), &NoDeltas).await;
        assert!(matches!(result, Err(ModelError::Timeout(_))), "{wire:?}/{stream}: {result:?}");
    }
}

#[tokio::test]
async fn closed_port_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    for (wire, stream) in combos() {
        let base_url = match wire {
            Wire::Anthropic => format!("http://127.0.0.1:{port}"),
            Wire::OpenAi => format!("http://127.0.0.1:{port}/v1"),
        };
        let mut settings = clawdia_llm::ProviderSettings::new("closed", base_url);
        settings.connect_timeout = Duration::from_secs(2);
        let result = client_with(settings, wire).complete(&request(stream), &NoDeltas).await;
        let Err(ModelError::Connect(message)) = result else {
            panic!("{wire:?}/{stream}: not a connect error: {result:?}");
        };
        // The provider's name says which endpoint failed; its address stays in the config.
        assert!(message.starts_with("closed: "), "{wire:?}/{stream}: {message}");
        assert!(message.contains("refused"), "{wire:?}/{stream}: the cause is kept: {message}");
        assert!(!message.contains(&port.to_string()), "{wire:?}/{stream}: the URL leaked: {message}");
    }
}

#[tokio::test]
async fn an_error_body_that_echoes_the_key_reaches_the_caller_with_the_key_masked() {
    let key = "sk-llm-echo-5b7d0c2e9a41f3";
    clawdia_core::redact::register(key);
    let mock = MockLlm::start().await;
    for (wire, stream) in combos() {
        let mut settings = settings(&mock, wire);
        settings.api_key = Some(key.to_string());
        mock.push(Reply::echo_credentials(401));
        let result = client_with(settings, wire).complete(&request(stream), &NoDeltas).await;
        let Err(ModelError::Unauthorized(message)) = result else {
            panic!("{wire:?}/{stream}: not unauthorized: {result:?}");
        };
        assert!(message.contains("invalid API key `[redacted]`"), "{wire:?}/{stream}: {message}");
        assert!(!message.contains(key), "{wire:?}/{stream}: {message}");
    }
}

#[tokio::test]
async fn invalid_base_url_is_refused_at_construction() {
    let settings = clawdia_llm::ProviderSettings::new("bad", "not a url");
    assert!(matches!(clawdia_llm::OpenAiClient::new(settings.clone()), Err(ModelError::Other(_))));
    assert!(matches!(clawdia_llm::AnthropicClient::new(settings), Err(ModelError::Other(_))));
}

#[test]
fn settings_debug_redacts_secrets() {
    let mut settings = clawdia_llm::ProviderSettings::new("p", "http://x");
    settings.api_key = Some("sk-very-secret".to_string());
    settings.headers = vec![("X-Extra".to_string(), "also-secret".to_string())];
    let shown = format!("{settings:?}");
    assert!(!shown.contains("very-secret") && !shown.contains("also-secret"), "{shown}");
    assert!(shown.contains("<redacted>") && shown.contains("X-Extra"), "{shown}");
}

#[tokio::test]
async fn a_json_answer_to_a_streaming_request_is_read_as_json() {
    let mock = MockLlm::start().await;
    let bodies = [
        (
            Wire::Anthropic,
            r#"{"content":[{"type":"text","text":"plain json"}],"stop_reason":"end_turn","usage":{"input_tokens":2,"output_tokens":3}}"#,
        ),
        (
            Wire::OpenAi,
            r#"{"choices":[{"message":{"role":"assistant","content":"plain json"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":3}}"#,
        ),
    ];
    for (wire, body) in bodies {
        mock.push(Reply::status(200).body(body));
        let response = client(&mock, wire).complete(&request(true), &NoDeltas).await;
        let response = response.unwrap_or_else(|error| panic!("{wire:?}: {error}"));
        assert_eq!(response.message, Message::assistant("plain json"), "{wire:?}");
        assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (2, 3), "{wire:?}");
    }
}

#[tokio::test]
async fn a_whole_json_reply_to_a_stream_request_still_reaches_the_sink() {
    // Some OpenAI-compatible servers ignore `stream` and answer with one JSON completion.
    let mock = MockLlm::start().await;
    let bodies = [
        (
            Wire::Anthropic,
            r#"{"id":"m1","type":"message","role":"assistant","model":"x","content":[{"type":"text","text":"whole reply"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#,
        ),
        (
            Wire::OpenAi,
            r#"{"id":"c1","object":"chat.completion","created":0,"model":"x","choices":[{"index":0,"message":{"role":"assistant","content":"whole reply"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        ),
    ];
    for (wire, body) in bodies {
        for stream in [true, false] {
            mock.push(Reply::status(200).body(body));
            let sink = Recorder::default();
            let response = client(&mock, wire).complete(&request(stream), &sink).await.unwrap();
            assert_eq!(response.message, Message::assistant("whole reply"), "{wire:?}");
            // Streaming callers see the text as one delta; non-streaming ones get none.
            let expected = if stream { "whole reply" } else { "" };
            assert_eq!(sink.text(), expected, "{wire:?} stream={stream}");
        }
    }
}
