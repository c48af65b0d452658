//! Unit tests for the fallback chain with scripted in-memory clients: order, cooldown lengths
//! (configured, Retry-After, the one-hour cap), the all-cooling rule, unknown providers,
//! cancellation and discarding deltas of failed attempts.

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;

use clawdia_core::{ChatResponse, Message, StopReason, Usage};

use super::*;

/// Answers from a script; each call may emit a text delta first.
struct Scripted {
    replies: Mutex<VecDeque<Result<ChatResponse, ModelError>>>,
    emit_before_answer: bool,
    calls: AtomicUsize,
    models_asked: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(replies: Vec<Result<ChatResponse, ModelError>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            replies: Mutex::new(replies.into()),
            emit_before_answer: false,
            calls: AtomicUsize::new(0),
            models_asked: Mutex::new(Vec::new()),
        })
    }

    fn emitting(replies: Vec<Result<ChatResponse, ModelError>>) -> Arc<Scripted> {
        let mut scripted = Arc::into_inner(Scripted::new(replies)).expect("fresh");
        scripted.emit_before_answer = true;
        Arc::new(scripted)
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ModelClient for Scripted {
    async fn complete(
        &self,
        request: &ChatRequest,
        sink: &dyn DeltaSink,
    ) -> Result<ChatResponse, ModelError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.models_asked.lock().expect("lock").push(request.model.clone());
        if self.emit_before_answer {
            sink.delta(ModelDelta::Text("partial".to_string()));
        }
        self.replies.lock().expect("lock").pop_front().unwrap_or_else(|| Ok(reply("default")))
    }
}

fn reply(text: &str) -> ChatResponse {
    ChatResponse {
        message: Message::assistant(text),
        usage: Usage::default(),
        stop_reason: StopReason::EndTurn,
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: String::new(),
        system: String::new(),
        messages: vec![Message::user("hi")],
        tools: Vec::new(),
        max_tokens: 100,
        temperature: None,
        stop: Vec::new(),
        stream: true,
    }
}

fn chain(refs: &[&str]) -> Vec<ModelRef> {
    refs.iter().map(|text| ModelRef::parse(text).expect("valid ref")).collect()
}

#[derive(Default)]
struct Recorder {
    deltas: Mutex<Vec<ModelDelta>>,
    discards: AtomicUsize,
}

impl DeltaSink for Recorder {
    fn delta(&self, delta: ModelDelta) {
        self.deltas.lock().expect("lock").push(delta);
    }

    fn discard(&self) {
        self.discards.fetch_add(1, Ordering::SeqCst);
        self.deltas.lock().expect("lock").clear();
    }
}

fn failures(outcome: &ChainOutcome) -> Vec<Option<&str>> {
    outcome.attempts.iter().map(|attempt| attempt.failure.as_deref()).collect()
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn falls_back_and_skips_the_cooled_provider_next_time() {
    let first =
        Scripted::new(vec![Err(ModelError::RateLimited { retry_after: Some(Duration::from_secs(300)) })]);
    let second = Scripted::new(vec![Ok(reply("from b")), Ok(reply("again b"))]);
    let mut router = Router::new();
    router.add("a", first.clone(), MINUTE);
    router.add("b", second.clone(), MINUTE);
    let models = chain(&["a/one", "b/two"]);

    let outcome = router.complete(&models, request(), &NoSink).await;
    let (model, response) = outcome.result.as_ref().expect("b answers");
    assert_eq!(model.to_string(), "b/two");
    assert_eq!(response.message, Message::assistant("from b"));
    assert_eq!(failures(&outcome), vec![Some("rate_limited"), None]);
    assert_eq!(outcome.attempts[0].detail.as_deref(), Some("rate limited (429), retry after 300s"));
    let remaining = router.cooldown_remaining("a").expect("a cools down");
    assert!(remaining > Duration::from_secs(290) && remaining <= Duration::from_secs(300), "{remaining:?}");
    assert_eq!(router.cooldown_remaining("b"), None);

    let outcome = router.complete(&models, request(), &NoSink).await;
    assert!(outcome.result.is_ok());
    assert_eq!(failures(&outcome), vec![Some("cooling_down"), None]);
    assert_eq!(first.calls(), 1, "a cooled provider gets no request");
    assert_eq!(*second.models_asked.lock().expect("lock"), vec!["two", "two"]);
}

struct NoSink;

impl DeltaSink for NoSink {
    fn delta(&self, _delta: ModelDelta) {}
}

#[tokio::test]
async fn configured_cooldown_wins_over_a_shorter_retry_after_and_the_cap_is_one_hour() {
    let mut router = Router::new();
    router.add(
        "short",
        Scripted::new(vec![Err(ModelError::RateLimited { retry_after: Some(Duration::from_secs(1)) })]),
        MINUTE,
    );
    router.add(
        "long",
        Scripted::new(vec![Err(ModelError::RateLimited { retry_after: Some(Duration::from_secs(86_400)) })]),
        MINUTE,
    );
    router.add(
        "server",
        Scripted::new(vec![Err(ModelError::Server { status: 503, message: "down".into() })]),
        Duration::from_secs(5),
    );
    let outcome = router.complete(&chain(&["short/m", "long/m", "server/m"]), request(), &NoSink).await;
    assert_eq!(outcome.result.err(), Some(ModelError::Server { status: 503, message: "down".into() }));
    let short = router.cooldown_remaining("short").expect("cooling");
    assert!(short > Duration::from_secs(55) && short <= MINUTE, "{short:?}");
    let long = router.cooldown_remaining("long").expect("cooling");
    assert!(long > Duration::from_secs(3590) && long <= Duration::from_secs(3600), "{long:?}");
    let server = router.cooldown_remaining("server").expect("cooling");
    assert!(server <= Duration::from_secs(5), "{server:?}");
}

#[tokio::test]
async fn errors_that_do_not_cool_down_leave_the_provider_usable() {
    let client = Scripted::new(vec![
        Err(ModelError::Rejected { status: 400, message: "bad".into() }),
        Ok(reply("fine")),
    ]);
    let mut router = Router::new();
    router.add("a", client.clone(), MINUTE);
    let outcome = router.complete(&chain(&["a/x"]), request(), &NoSink).await;
    assert_eq!(failures(&outcome), vec![Some("rejected")]);
    assert_eq!(router.cooldown_remaining("a"), None);
    let outcome = router.complete(&chain(&["a/x"]), request(), &NoSink).await;
    assert!(outcome.result.is_ok());
    assert_eq!(client.calls(), 2);
}

#[tokio::test]
async fn when_every_model_is_cooling_the_one_ending_first_is_tried() {
    let early = Scripted::new(vec![Err(ModelError::Timeout("slow".into())), Ok(reply("early again"))]);
    let late = Scripted::new(vec![Err(ModelError::Timeout("slow".into()))]);
    let mut router = Router::new();
    router.add("late", late.clone(), Duration::from_secs(600));
    router.add("early", early.clone(), Duration::from_secs(30));
    let models = chain(&["late/m", "early/m"]);
    let outcome = router.complete(&models, request(), &NoSink).await;
    assert_eq!(failures(&outcome), vec![Some("timeout"), Some("timeout")]);

    let outcome = router.complete(&models, request(), &NoSink).await;
    assert_eq!(failures(&outcome), vec![Some("cooling_down"), None]);
    assert_eq!(outcome.result.expect("early answers").1.message, Message::assistant("early again"));
    assert_eq!((late.calls(), early.calls()), (1, 2));
}

#[tokio::test]
async fn unknown_provider_is_recorded_and_the_chain_goes_on() {
    let mut router = Router::new();
    router.add("known", Scripted::new(vec![Ok(reply("hi"))]), MINUTE);
    let outcome = router.complete(&chain(&["ghost/m", "known/m"]), request(), &NoSink).await;
    assert!(outcome.result.is_ok());
    assert_eq!(failures(&outcome), vec![Some("unknown_provider"), None]);

    let outcome = router.complete(&chain(&["ghost/m"]), request(), &NoSink).await;
    assert_eq!(outcome.result.err(), Some(ModelError::UnknownProvider("ghost".into())));
}

#[tokio::test]
async fn cancellation_stops_the_chain() {
    let next = Scripted::new(vec![Ok(reply("never"))]);
    let mut router = Router::new();
    router.add("a", Scripted::new(vec![Err(ModelError::Cancelled)]), MINUTE);
    router.add("b", next.clone(), MINUTE);
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(outcome.result.as_ref().err(), Some(&ModelError::Cancelled));
    assert_eq!(failures(&outcome), vec![Some("cancelled")]);
    assert_eq!(next.calls(), 0);
    assert_eq!(router.cooldown_remaining("a"), None);
}

#[tokio::test]
async fn deltas_of_a_failed_attempt_are_discarded() {
    let mut router = Router::new();
    router.add(
        "quiet",
        Scripted::new(vec![Err(ModelError::Server { status: 500, message: "x".into() })]),
        MINUTE,
    );
    router.add(
        "chatty",
        Scripted::emitting(vec![Err(ModelError::Truncated("cut".into())), Ok(reply("done"))]),
        MINUTE,
    );
    router.add("good", Scripted::emitting(vec![Ok(reply("done"))]), MINUTE);
    let sink = Recorder::default();
    let outcome = router.complete(&chain(&["quiet/m", "chatty/m", "good/m"]), request(), &sink).await;
    assert!(outcome.result.is_ok());
    assert_eq!(sink.discards.load(Ordering::SeqCst), 1, "only the attempt that emitted is discarded");
    assert_eq!(*sink.deltas.lock().expect("lock"), vec![ModelDelta::Text("partial".into())]);
}

#[tokio::test]
async fn all_failing_returns_the_last_error_with_every_attempt() {
    let mut router = Router::new();
    router.add("a", Scripted::new(vec![Err(ModelError::Connect("refused".into()))]), MINUTE);
    router.add("b", Scripted::new(vec![Err(ModelError::Unauthorized("bad key".into()))]), MINUTE);
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(outcome.result.as_ref().err(), Some(&ModelError::Unauthorized("bad key".into())));
    assert_eq!(failures(&outcome), vec![Some("connect"), Some("unauthorized")]);
    assert_eq!(outcome.attempts[1].detail.as_deref(), Some("unauthorized: bad key"));
}

#[tokio::test]
async fn empty_chain_is_an_error_without_attempts() {
    let outcome = Router::new().complete(&[], request(), &NoSink).await;
    assert!(matches!(outcome.result, Err(ModelError::Other(_))));
    assert!(outcome.attempts.is_empty());
}
