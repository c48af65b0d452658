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

    fn discard(&self, _failed: &ModelRef, _next: &ModelRef) {
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
    router.add("a", first.clone(), MINUTE, RetryPolicy::NONE);
    router.add("b", second.clone(), MINUTE, RetryPolicy::NONE);
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
        RetryPolicy::NONE,
    );
    router.add(
        "long",
        Scripted::new(vec![Err(ModelError::RateLimited { retry_after: Some(Duration::from_secs(86_400)) })]),
        MINUTE,
        RetryPolicy::NONE,
    );
    router.add(
        "server",
        Scripted::new(vec![Err(ModelError::Server { status: 503, message: "down".into() })]),
        Duration::from_secs(5),
        RetryPolicy::NONE,
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
    router.add("a", client.clone(), MINUTE, RetryPolicy::NONE);
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
    router.add("late", late.clone(), Duration::from_secs(600), RetryPolicy::NONE);
    router.add("early", early.clone(), Duration::from_secs(30), RetryPolicy::NONE);
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
    router.add("known", Scripted::new(vec![Ok(reply("hi"))]), MINUTE, RetryPolicy::NONE);
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
    router.add("a", Scripted::new(vec![Err(ModelError::Cancelled)]), MINUTE, RetryPolicy::NONE);
    router.add("b", next.clone(), MINUTE, RetryPolicy::NONE);
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
        RetryPolicy::NONE,
    );
    router.add(
        "chatty",
        Scripted::emitting(vec![Err(ModelError::Truncated("cut".into())), Ok(reply("done"))]),
        MINUTE,
        RetryPolicy::NONE,
    );
    router.add("good", Scripted::emitting(vec![Ok(reply("done"))]), MINUTE, RetryPolicy::NONE);
    let sink = Recorder::default();
    let outcome = router.complete(&chain(&["quiet/m", "chatty/m", "good/m"]), request(), &sink).await;
    assert!(outcome.result.is_ok());
    assert_eq!(sink.discards.load(Ordering::SeqCst), 1, "only the attempt that emitted is discarded");
    assert_eq!(*sink.deltas.lock().expect("lock"), vec![ModelDelta::Text("partial".into())]);
}

#[tokio::test]
async fn all_failing_returns_the_last_error_with_every_attempt() {
    let mut router = Router::new();
    router.add(
        "a",
        Scripted::new(vec![Err(ModelError::Connect("refused".into()))]),
        MINUTE,
        RetryPolicy::NONE,
    );
    router.add(
        "b",
        Scripted::new(vec![Err(ModelError::Unauthorized("bad key".into()))]),
        MINUTE,
        RetryPolicy::NONE,
    );
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

fn fast_retries(retries: u32) -> RetryPolicy {
    RetryPolicy { retries, base_delay: Duration::from_millis(1), max_wait: Duration::from_secs(2) }
}

fn retries(outcome: &ChainOutcome) -> Vec<(String, u32)> {
    outcome.attempts.iter().map(|attempt| (attempt.model.to_string(), attempt.retry)).collect()
}

fn rate_limited(seconds: u64) -> Result<ChatResponse, ModelError> {
    Err(ModelError::RateLimited { retry_after: Some(Duration::from_secs(seconds)) })
}

#[tokio::test]
async fn a_transient_failure_is_retried_on_the_same_model_and_every_try_is_recorded() {
    let flaky = Scripted::new(vec![rate_limited(0), rate_limited(0), Ok(reply("third time"))]);
    let backup = Scripted::new(vec![Ok(reply("never"))]);
    let mut router = Router::new();
    router.add("a", flaky.clone(), MINUTE, RetryPolicy::default());
    router.add("b", backup.clone(), MINUTE, RetryPolicy::default());
    let started = Instant::now();
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    let (model, response) = outcome.result.as_ref().expect("a answers on its third try");
    assert_eq!(
        (model.to_string(), &response.message),
        ("a/m".to_string(), &Message::assistant("third time"))
    );
    assert_eq!(failures(&outcome), vec![Some("rate_limited"), Some("rate_limited"), None]);
    assert_eq!(retries(&outcome), vec![("a/m".into(), 0), ("a/m".into(), 1), ("a/m".into(), 2)]);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "Retry-After 0 means no wait: {:?}",
        started.elapsed()
    );
    assert_eq!(backup.calls(), 0, "no fallback while a retry succeeds");
    assert_eq!(router.cooldown_remaining("a"), None, "a provider that answered is not cooling down");
}

#[tokio::test]
async fn server_errors_back_off_and_client_errors_are_not_retried() {
    let busy = Scripted::new(vec![
        Err(ModelError::Server { status: 503, message: "busy".into() }),
        Err(ModelError::Connect("reset".into())),
        Ok(reply("up again")),
    ]);
    let mut router = Router::new();
    let policy = RetryPolicy { retries: 2, base_delay: Duration::from_millis(40), max_wait: MINUTE };
    router.add("a", busy.clone(), MINUTE, policy);
    let started = Instant::now();
    let outcome = router.complete(&chain(&["a/m"]), request(), &NoSink).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(started.elapsed() >= Duration::from_millis(120), "40 ms then 80 ms: {:?}", started.elapsed());
    assert_eq!(failures(&outcome), vec![Some("server_error"), Some("connect"), None]);

    for refusal in [
        ModelError::Rejected { status: 400, message: "bad".into() },
        ModelError::Rejected { status: 404, message: "no model".into() },
        ModelError::Unauthorized("bad key".into()),
    ] {
        let refused = Scripted::new(vec![Err(refusal.clone()), Ok(reply("not asked"))]);
        let backup = Scripted::new(vec![Ok(reply("backup"))]);
        let mut router = Router::new();
        router.add("a", refused.clone(), MINUTE, fast_retries(2));
        router.add("b", backup.clone(), MINUTE, fast_retries(2));
        let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
        assert_eq!(outcome.result.expect("b answers").0.to_string(), "b/m");
        assert_eq!(refused.calls(), 1, "{refusal:?} is not retried");
    }
}

#[tokio::test]
async fn exhausted_retries_cool_the_provider_and_the_chain_moves_on() {
    let down = Scripted::new(vec![
        Err(ModelError::Server { status: 500, message: "x".into() }),
        Err(ModelError::Server { status: 502, message: "x".into() }),
        Err(ModelError::Server { status: 504, message: "x".into() }),
    ]);
    let backup = Scripted::new(vec![Ok(reply("backup"))]);
    let mut router = Router::new();
    router.add("a", down.clone(), MINUTE, fast_retries(2));
    router.add("b", backup, MINUTE, fast_retries(2));
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(outcome.result.as_ref().expect("b answers").0.to_string(), "b/m");
    assert_eq!(
        retries(&outcome),
        vec![("a/m".into(), 0), ("a/m".into(), 1), ("a/m".into(), 2), ("b/m".into(), 0)]
    );
    assert_eq!(down.calls(), 3);
    assert!(router.cooldown_remaining("a").is_some());
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_honoured_by_moving_on() {
    let slow = Scripted::new(vec![rate_limited(30), Ok(reply("not asked"))]);
    let backup = Scripted::new(vec![Ok(reply("backup"))]);
    let mut router = Router::new();
    let policy =
        RetryPolicy { retries: 2, base_delay: Duration::from_millis(1), max_wait: Duration::from_secs(5) };
    router.add("a", slow.clone(), Duration::from_secs(1), policy);
    router.add("b", backup, MINUTE, policy);
    let started = Instant::now();
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(outcome.result.expect("b answers").0.to_string(), "b/m");
    assert!(started.elapsed() < Duration::from_secs(1), "no 30 s wait: {:?}", started.elapsed());
    assert_eq!(slow.calls(), 1);
    let remaining = router.cooldown_remaining("a").expect("cooling");
    assert!(remaining > Duration::from_secs(25), "the asked 30 s beat the 1 s cooldown: {remaining:?}");
}

#[tokio::test]
async fn a_reply_that_streamed_text_is_never_retried_and_nothing_is_discarded_without_a_next_model() {
    let chatty = Scripted::emitting(vec![Err(ModelError::Truncated("cut".into())), Ok(reply("not asked"))]);
    let mut router = Router::new();
    router.add("a", chatty.clone(), MINUTE, fast_retries(2));
    let sink = Recorder::default();
    let outcome = router.complete(&chain(&["a/m"]), request(), &sink).await;
    assert_eq!(outcome.result.as_ref().err(), Some(&ModelError::Truncated("cut".into())));
    assert_eq!(chatty.calls(), 1, "the user already saw part of this reply");
    assert_eq!(sink.discards.load(Ordering::SeqCst), 0, "no fallback follows, so nothing announces one");
    assert_eq!(*sink.deltas.lock().expect("lock"), vec![ModelDelta::Text("partial".into())]);
    assert_eq!(outcome.retry_after, None);
}

#[tokio::test]
async fn rate_limits_alone_give_a_retry_after_and_any_other_failure_none() {
    let mut router = Router::new();
    router.add("a", Scripted::new(vec![rate_limited(0), rate_limited(3)]), MINUTE, fast_retries(1));
    router.add(
        "b",
        Scripted::new(vec![Err(ModelError::RateLimited { retry_after: None })]),
        MINUTE,
        RetryPolicy::NONE,
    );
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(failures(&outcome), vec![Some("rate_limited"); 3]);
    assert_eq!(
        outcome.retry_after,
        Some(Duration::from_secs(1)),
        "the soonest: b named no wait, 1 s is suggested"
    );

    // Both now cool down after a 429: the forced one is asked again, the other is skipped.
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert!(outcome.result.is_ok(), "a's script ran out: it answers");

    let mut router = Router::new();
    router.add("a", Scripted::new(vec![rate_limited(3)]), MINUTE, RetryPolicy::NONE);
    router.add(
        "b",
        Scripted::new(vec![Err(ModelError::Server { status: 500, message: "x".into() })]),
        MINUTE,
        RetryPolicy::NONE,
    );
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(outcome.retry_after, None, "a server error is not a rate limit");

    let mut router = Router::new();
    router.add("a", Scripted::new(vec![rate_limited(3)]), MINUTE, RetryPolicy::NONE);
    router.add("b", Scripted::new(vec![rate_limited(7)]), MINUTE, RetryPolicy::NONE);
    router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(failures(&outcome), vec![None], "a's cooldown ends first: it is tried anyway");

    // The error reported is the asked model's, not the skip that came after it.
    let mut router = Router::new();
    router.add("a", Scripted::new(vec![rate_limited(3), rate_limited(4)]), MINUTE, RetryPolicy::NONE);
    router.add("b", Scripted::new(vec![rate_limited(5)]), MINUTE, RetryPolicy::NONE);
    router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &NoSink).await;
    assert_eq!(failures(&outcome), vec![Some("rate_limited"), Some("cooling_down")]);
    assert_eq!(
        outcome.result.err(),
        Some(ModelError::RateLimited { retry_after: Some(Duration::from_secs(4)) })
    );
    assert_eq!(outcome.retry_after, Some(Duration::from_secs(4)));
}

#[tokio::test]
async fn the_sink_hears_which_model_broke_off_and_which_comes_next() {
    #[derive(Default)]
    struct Names(Mutex<Vec<(String, String)>>);
    impl DeltaSink for Names {
        fn delta(&self, _delta: ModelDelta) {}
        fn discard(&self, failed: &ModelRef, next: &ModelRef) {
            self.0.lock().expect("lock").push((failed.to_string(), next.to_string()));
        }
    }
    let mut router = Router::new();
    router.add(
        "a",
        Scripted::emitting(vec![Err(ModelError::Truncated("cut".into()))]),
        MINUTE,
        fast_retries(2),
    );
    router.add("b", Scripted::new(vec![Ok(reply("fine"))]), MINUTE, fast_retries(2));
    let sink = Names::default();
    let outcome = router.complete(&chain(&["a/m", "b/m"]), request(), &sink).await;
    assert!(outcome.result.is_ok());
    assert_eq!(*sink.0.lock().expect("lock"), vec![("a/m".to_string(), "b/m".to_string())]);
}

#[test]
fn retry_waits_double_from_the_base_and_a_longer_ask_than_the_cap_means_no_retry() {
    let policy =
        RetryPolicy { retries: 3, base_delay: Duration::from_millis(200), max_wait: Duration::from_secs(1) };
    assert_eq!(policy.wait(0, None), None);
    assert_eq!(policy.wait(1, None), Some(Duration::from_millis(200)));
    assert_eq!(policy.wait(2, None), Some(Duration::from_millis(400)));
    assert_eq!(policy.wait(3, None), Some(Duration::from_millis(800)));
    assert_eq!(policy.wait(4, None), None, "three retries at most");
    assert_eq!(policy.wait(1, Some(Duration::ZERO)), Some(Duration::ZERO));
    assert_eq!(policy.wait(1, Some(Duration::from_secs(1))), Some(Duration::from_secs(1)));
    assert_eq!(policy.wait(1, Some(Duration::from_millis(1001))), None);
    let capped =
        RetryPolicy { retries: 9, base_delay: Duration::from_millis(300), max_wait: Duration::from_secs(1) };
    assert_eq!(capped.wait(4, None), Some(Duration::from_secs(1)), "backoff is capped, not refused");
    assert_eq!(RetryPolicy::NONE.wait(1, Some(Duration::ZERO)), None);
}
