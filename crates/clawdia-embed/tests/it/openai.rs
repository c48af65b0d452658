//! The OpenAI-compatible embedder against a loopback axum server that speaks the embeddings
//! wire format and misbehaves on request: order restored by `index`, vectors normalized, long
//! calls split into requests of 64, dimensions configured / known / learned and enforced, the
//! Bearer key sent only when there is one, and 429, 500, garbage, short replies and a closed
//! port mapped to `RateLimited` or a one-line `Failed`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clawdia_core::{EmbedError, Embedder};
use clawdia_embed::OpenAiEmbedder;
use serde_json::{Value, json};

use crate::{norm, strings};

/// How the server answers one request.
#[derive(Clone, Debug)]
enum Answer {
    /// Unnormalized vectors `[len(text), 1, 2, ...]` of `dims` components, listed in reverse
    /// order with their `index`.
    Vectors {
        dims: usize,
    },
    /// One embedding fewer than inputs.
    TooFew,
    Status(u16, &'static str),
    Garbage,
}

/// A received request: its Authorization header and JSON body.
#[derive(Clone, Debug)]
struct Seen {
    authorization: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    seen: Mutex<Vec<Seen>>,
}

struct MockServer {
    base_url: String,
    script: Arc<Script>,
}

impl MockServer {
    async fn start() -> MockServer {
        let script = Arc::new(Script::default());
        let app = axum::Router::new()
            .route("/v1/embeddings", axum::routing::post(answer))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        MockServer { base_url: format!("http://{address}/v1"), script }
    }

    /// Queues answers; once they run out the server answers `Vectors { dims: 3 }`.
    fn push(&self, answers: &[Answer]) {
        self.script.answers.lock().expect("lock").extend(answers.iter().cloned());
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().expect("lock").clone()
    }

    fn embedder(&self, key: Option<&str>, model: &str, dimensions: Option<usize>) -> OpenAiEmbedder {
        OpenAiEmbedder::new(&self.base_url, key.map(str::to_string), model, dimensions)
            .expect("valid settings")
    }
}

async fn answer(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorization =
        headers.get("authorization").map(|value| value.to_str().unwrap_or("<binary>").to_string());
    script.seen.lock().expect("lock").push(Seen { authorization, body: body.clone() });
    let next = script.answers.lock().expect("lock").pop_front().unwrap_or(Answer::Vectors { dims: 3 });
    let inputs: Vec<String> = body["input"]
        .as_array()
        .map(|items| items.iter().map(|item| item.as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    let data = |count: usize, dims: usize| -> Vec<Value> {
        inputs[..count]
            .iter()
            .enumerate()
            .rev()
            .map(|(index, text)| {
                let mut vector = vec![text.len() as f32];
                vector.extend((1..dims).map(|component| component as f32));
                json!({"object": "embedding", "index": index, "embedding": vector})
            })
            .collect()
    };
    match next {
        Answer::Vectors { dims } => {
            axum::Json(json!({"object": "list", "model": body["model"], "data": data(inputs.len(), dims)}))
                .into_response()
        }
        Answer::TooFew => {
            axum::Json(json!({"object": "list", "data": data(inputs.len().saturating_sub(1), 3)}))
                .into_response()
        }
        Answer::Status(status, message) => (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(json!({"error": {"message": message, "type": "test"}})),
        )
            .into_response(),
        Answer::Garbage => (StatusCode::OK, "<html>surprise</html>").into_response(),
    }
}

#[tokio::test]
async fn vectors_come_back_in_input_order_normalized() {
    let server = MockServer::start().await;
    let embedder = server.embedder(Some("sk-test"), "nomic-embed-text", None);
    assert_eq!(embedder.model_id(), "openai/nomic-embed-text");
    let texts = strings(&["a", "three", "eleven char"]);
    let vectors = embedder.embed(&texts).await.expect("embeds");
    assert_eq!(vectors.len(), 3);
    for (vector, text) in vectors.iter().zip(&texts) {
        assert!((norm(vector) - 1.0).abs() < 1e-6);
        // The server put len(text) first and 1, 2 after: undo the normalization to check order.
        let scale = vector[1];
        assert!((vector[0] / scale - text.len() as f32).abs() < 1e-4, "{text}: {vector:?}");
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(seen[0].body, json!({"model": "nomic-embed-text", "input": ["a", "three", "eleven char"]}));
}

#[tokio::test]
async fn no_key_means_no_authorization_header() {
    let server = MockServer::start().await;
    server.embedder(None, "m", None).embed(&strings(&["x"])).await.expect("embeds");
    assert_eq!(server.seen()[0].authorization, None);
}

#[tokio::test]
async fn long_calls_are_split_into_requests_of_64() {
    let server = MockServer::start().await;
    let embedder = server.embedder(None, "m", None);
    assert_eq!(embedder.batch_size(), 64);
    let texts: Vec<String> = (0..150).map(|index| "x".repeat(index)).collect();
    let vectors = embedder.embed(&texts).await.expect("embeds");
    assert_eq!(vectors.len(), 150);
    for (index, vector) in vectors.iter().enumerate() {
        assert!((vector[0] / vector[1] - index as f32).abs() < 1e-3, "#{index} out of order");
    }
    let sizes: Vec<usize> =
        server.seen().iter().map(|seen| seen.body["input"].as_array().map_or(0, Vec::len)).collect();
    assert_eq!(sizes, vec![64, 64, 22]);
}

#[tokio::test]
async fn empty_input_sends_nothing() {
    let server = MockServer::start().await;
    assert_eq!(server.embedder(None, "m", None).embed(&[]).await, Ok(Vec::new()));
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn dimensions_are_learned_from_the_first_response_then_enforced() {
    let server = MockServer::start().await;
    let embedder = server.embedder(None, "some-local-model", None);
    assert_eq!(embedder.dimensions(), 0, "unknown until the first response");
    server.push(&[Answer::Vectors { dims: 5 }, Answer::Vectors { dims: 4 }]);
    embedder.embed(&strings(&["a"])).await.expect("embeds");
    assert_eq!(embedder.dimensions(), 5);
    match embedder.embed(&strings(&["a"])).await {
        Err(EmbedError::Failed(message)) => {
            assert!(message.contains("4-dimensional vectors, expected 5"), "{message}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[tokio::test]
async fn configured_dimensions_are_sent_and_enforced() {
    let server = MockServer::start().await;
    let embedder = server.embedder(None, "text-embedding-3-small", Some(3));
    assert_eq!(embedder.dimensions(), 3);
    embedder.embed(&strings(&["a"])).await.expect("embeds");
    assert_eq!(server.seen()[0].body["dimensions"], json!(3));
    server.push(&[Answer::Vectors { dims: 8 }]);
    assert!(matches!(embedder.embed(&strings(&["a"])).await, Err(EmbedError::Failed(_))));
}

#[test]
fn openai_models_have_known_dimensions() {
    let dims = |model: &str| {
        OpenAiEmbedder::new("https://api.openai.com/v1", None, model, None).expect("ok").dimensions()
    };
    assert_eq!(dims("text-embedding-3-small"), 1536);
    assert_eq!(dims("text-embedding-3-large"), 3072);
    assert_eq!(dims("text-embedding-ada-002"), 1536);
}

/// The error for one scripted answer.
async fn error_for(answer: Answer) -> EmbedError {
    let server = MockServer::start().await;
    server.push(std::slice::from_ref(&answer));
    match server.embedder(None, "m", None).embed(&strings(&["a", "b"])).await {
        Ok(vectors) => panic!("{answer:?}: expected an error, got {vectors:?}"),
        Err(error) => error,
    }
}

#[track_caller]
fn assert_failed(error: EmbedError, expected: &str) {
    match error {
        EmbedError::Failed(message) => {
            assert!(message.contains(expected), "expected {expected:?} in {message:?}");
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
        other => panic!("expected Failed containing {expected:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn error_statuses_and_bad_replies_are_mapped() {
    assert_eq!(error_for(Answer::Status(429, "slow down")).await, EmbedError::RateLimited);
    assert_failed(error_for(Answer::Status(500, "kaput\ntotally")).await, "returned HTTP 500: kaput totally");
    assert_failed(error_for(Answer::Status(401, "bad key")).await, "returned HTTP 401: bad key");
    assert_failed(error_for(Answer::Garbage).await, "invalid embeddings response");
    assert_failed(error_for(Answer::TooFew).await, "1 embeddings for 2 inputs");
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_with_one_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let embedder =
        OpenAiEmbedder::new(&format!("http://{address}/v1"), None, "m", None).expect("valid settings");
    match embedder.embed(&strings(&["a"])).await {
        Err(EmbedError::Failed(message)) => {
            assert!(message.starts_with("cannot reach"), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn bad_settings_are_unavailable() {
    for (base_url, model, dimensions) in [
        ("not a url", "m", None),
        ("ftp://host/v1", "m", None),
        ("http://host/v1", " ", None),
        ("http://h/v1", "m", Some(0)),
    ] {
        assert!(
            matches!(OpenAiEmbedder::new(base_url, None, model, dimensions), Err(EmbedError::Unavailable(_))),
            "{base_url} {model:?} {dimensions:?}"
        );
    }
}

#[test]
fn debug_output_hides_the_key() {
    let embedder =
        OpenAiEmbedder::new("http://127.0.0.1:9/v1", Some("sk-secret".into()), "m", None).expect("ok");
    let shown = format!("{embedder:?}");
    assert!(shown.contains("openai/m") && !shown.contains("sk-secret"), "{shown}");
}
