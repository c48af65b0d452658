//! `LocalChat` through the `ModelClient` seam on the real SmolLM2: a greedy reply that streams
//! exactly its final text and repeats itself; `max_tokens`; a request with tools; concurrent
//! first requests loading the model once; unloading after the idle period and loading again;
//! a dropped request stopping generation; a model that is not installed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use clawdia_core::{
    ChatRequest, DeltaSink, Message, ModelClient, ModelDelta, ModelError, StopReason, ToolSpec,
};
use clawdia_local::{LocalChat, LocalSettings};

use crate::{SMOLLM2, smollm2_dir};

#[derive(Default)]
struct Collect {
    text: Mutex<String>,
    first: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl DeltaSink for Collect {
    fn delta(&self, delta: ModelDelta) {
        if let ModelDelta::Text(text) = delta {
            self.text.lock().unwrap().push_str(&text);
        }
        if let Some(first) = self.first.lock().unwrap().take() {
            let _ = first.send(());
        }
    }
}

fn client(idle_unload: Duration) -> Option<LocalChat> {
    let dir = smollm2_dir()?;
    Some(LocalChat::new(LocalSettings {
        models_dir: dir.parent().unwrap().to_path_buf(),
        threads: Some(2),
        idle_unload,
        context_length: 2048,
    }))
}

fn request(text: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model: SMOLLM2.to_string(),
        system: String::new(),
        messages: vec![Message::user(text)],
        tools: Vec::new(),
        max_tokens,
        temperature: None,
        stop: Vec::new(),
        stream: true,
    }
}

fn text_of(message: &Message) -> &str {
    match message {
        Message::Assistant { text, .. } => text,
        other => panic!("not an assistant message: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greedy_reply_streams_its_final_text() {
    let Some(client) = client(Duration::ZERO) else { return };
    let sink = Collect::default();
    let response = client.complete(&request("What is the capital of France?", 48), &sink).await.unwrap();
    let text = text_of(&response.message);
    assert!(!text.trim().is_empty(), "empty reply");
    assert_eq!(*sink.text.lock().unwrap(), text, "streamed text differs from the reply");
    assert!(response.usage.input_tokens > 10 && response.usage.output_tokens > 0, "{:?}", response.usage);
    assert!(matches!(response.stop_reason, StopReason::EndTurn | StopReason::MaxTokens));
    // Greedy decoding is deterministic.
    let again = client
        .complete(&request("What is the capital of France?", 48), &clawdia_core::NoDeltas)
        .await
        .unwrap();
    assert_eq!(text_of(&again.message), text);
    assert_eq!(client.loads(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_is_honoured() {
    let Some(client) = client(Duration::ZERO) else { return };
    let response = client
        .complete(&request("Write a long story about a dragon.", 5), &clawdia_core::NoDeltas)
        .await
        .unwrap();
    assert_eq!(response.usage.output_tokens, 5);
    assert_eq!(response.stop_reason, StopReason::MaxTokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_tools_ends_in_text_or_a_real_call() {
    let Some(client) = client(Duration::ZERO) else { return };
    let mut request = request("Read the file notes.md and tell me what it says.", 64);
    request.tools = vec![ToolSpec {
        name: "read".into(),
        description: "Read a file in the workspace".into(),
        parameters: serde_json::json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
    }];
    let response = client.complete(&request, &clawdia_core::NoDeltas).await.unwrap();
    match &response.message {
        Message::Assistant { tool_calls, .. } if !tool_calls.is_empty() => {
            assert_eq!(response.stop_reason, StopReason::ToolUse);
            for call in tool_calls {
                assert!(serde_json::from_str::<serde_json::Value>(&call.arguments).unwrap().is_object());
            }
        }
        Message::Assistant { text, .. } => {
            assert_ne!(response.stop_reason, StopReason::ToolUse);
            assert!(!text.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_definitions_too_big_for_the_context_are_left_out_and_the_model_answers() {
    let Some(client) = client(Duration::ZERO) else { return };
    let mut wide = request("What is the capital of France?", 16);
    // About 3,000 tokens of schemas: more than the 2,048-token context holds with any message.
    wide.tools = (0..30)
        .map(|n| ToolSpec {
            name: format!("tool_{n}"),
            description: format!("Tool number {n}: ").repeat(25),
            parameters: serde_json::json!({"type": "object", "properties": {"x": {"type": "string"}}}),
        })
        .collect();
    let response = client.complete(&wide, &clawdia_core::NoDeltas).await.unwrap();
    assert!(!text_of(&response.message).trim().is_empty());
    // A single message too long by itself is still refused, with or without tools.
    let long = request("word ".repeat(4000).as_str(), 16);
    let error = client.complete(&long, &clawdia_core::NoDeltas).await.unwrap_err();
    assert!(error.to_string().contains("the local model's context holds 2048"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_load_the_model_once() {
    let Some(client) = client(Duration::ZERO) else { return };
    let requests = [request("Say hi.", 4), request("Say hello.", 4), request("Say hey.", 4)];
    let (a, b, c) = tokio::join!(
        client.complete(&requests[0], &clawdia_core::NoDeltas),
        client.complete(&requests[1], &clawdia_core::NoDeltas),
        client.complete(&requests[2], &clawdia_core::NoDeltas),
    );
    for response in [a, b, c] {
        assert!(response.unwrap().usage.output_tokens > 0);
    }
    assert_eq!(client.loads(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_unloads_when_idle_and_loads_again() {
    let Some(client) = client(Duration::from_millis(500)) else { return };
    assert_eq!(client.loaded().await, None, "loaded before the first request");
    client.complete(&request("Say hi.", 2), &clawdia_core::NoDeltas).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.loaded().await.is_some() {
        assert!(Instant::now() < deadline, "still loaded long after the idle period");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.complete(&request("Say hi.", 2), &clawdia_core::NoDeltas).await.unwrap();
    assert_eq!(client.loads(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_request_stops_generation() {
    let Some(client) = client(Duration::ZERO) else { return };
    client.preload(SMOLLM2).await.unwrap();
    let (first, first_delta) = tokio::sync::oneshot::channel();
    let sink = Collect { first: Mutex::new(Some(first)), ..Collect::default() };
    let long = request("Write a very long essay about the history of Europe.", 1500);
    tokio::select! {
        result = client.complete(&long, &sink) => panic!("finished before cancellation: {result:?}"),
        _ = first_delta => {}
    }
    // 1500 tokens take well over a minute here; a cancelled generation frees the model at once.
    let freed = tokio::time::timeout(Duration::from_secs(10), client.loaded()).await;
    assert_eq!(
        freed.expect("the model stayed busy after the request was dropped"),
        Some(SMOLLM2.to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_says_how_to_get_it() {
    let home = tempfile::tempdir().unwrap();
    let client = LocalChat::new(LocalSettings {
        models_dir: home.path().to_path_buf(),
        threads: None,
        idle_unload: Duration::ZERO,
        context_length: 2048,
    });
    let mut missing = request("hi", 4);
    missing.model = "Nope-1B".into();
    let error = client.complete(&missing, &clawdia_core::NoDeltas).await.unwrap_err();
    let ModelError::Other(message) = error else { panic!("{error:?}") };
    assert!(message.contains("clawdia models pull Nope-1B") && !message.contains('\n'), "{message}");
}
