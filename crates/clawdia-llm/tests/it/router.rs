//! The router over real HTTP: a rate-limited provider is skipped (no request at all) while it
//! cools down, a truncated stream's deltas are discarded before the fallback answers, and when
//! everything fails the last error comes back with every attempt.

use std::time::Duration;

use clawdia_core::{Message, ModelDelta, ModelError, ModelRef, Models, NoDeltas};
use clawdia_llm::{RetryPolicy, Router};
use clawdia_test_support::{MockLlm, Reply};

use crate::{Recorder, Wire, client, request};

fn chain() -> Vec<ModelRef> {
    ["primary/claude-mock", "backup/glm-mock"]
        .iter()
        .map(|text| ModelRef::parse(text).expect("ref"))
        .collect()
}

/// `primary` speaks Anthropic on one mock, `backup` OpenAI on another.
async fn two_providers() -> (MockLlm, MockLlm, Router) {
    let primary = MockLlm::start().await;
    let backup = MockLlm::start().await;
    let mut router = Router::new();
    router.add("primary", client(&primary, Wire::Anthropic), Duration::from_secs(1), RetryPolicy::NONE);
    router.add("backup", client(&backup, Wire::OpenAi), Duration::from_secs(1), RetryPolicy::NONE);
    (primary, backup, router)
}

fn failures(attempts: &[clawdia_core::Attempt]) -> Vec<Option<&str>> {
    attempts.iter().map(|attempt| attempt.failure.as_deref()).collect()
}

#[tokio::test]
async fn rate_limited_provider_falls_back_and_cools_down() {
    let (primary, backup, router) = two_providers().await;
    primary.push(Reply::status(429).retry_after("30"));
    backup.push(Reply::text("backup here"));

    let outcome = router.complete(&chain(), request(true), &NoDeltas).await;
    let (model, response) = outcome.result.expect("backup answers");
    assert_eq!(model.to_string(), "backup/glm-mock");
    assert_eq!(response.message, Message::assistant("backup here"));
    assert_eq!(failures(&outcome.attempts), vec![Some("rate_limited"), None]);
    assert_eq!(outcome.attempts[0].detail.as_deref(), Some("rate limited (429), retry after 30s"));
    assert_eq!(backup.requests()[0].body["model"], "glm-mock");
    let remaining = router.cooldown_remaining("primary").expect("primary cools down");
    assert!(
        remaining > Duration::from_secs(25),
        "Retry-After beats the 1 s configured cooldown: {remaining:?}"
    );

    let outcome = router.complete(&chain(), request(false), &NoDeltas).await;
    assert!(outcome.result.is_ok());
    assert_eq!(failures(&outcome.attempts), vec![Some("cooling_down"), None]);
    assert_eq!(outcome.attempts[0].elapsed_ms, 0);
    assert_eq!(primary.requests().len(), 1, "the cooled provider got no second request");
    assert_eq!(backup.requests().len(), 2);
}

#[tokio::test]
async fn truncated_stream_deltas_are_discarded_before_the_fallback() {
    let (primary, backup, router) = two_providers().await;
    primary.push(Reply::truncated());
    backup.push(Reply::text("clean answer"));
    let sink = Recorder::default();
    let outcome = router.complete(&chain(), request(true), &sink).await;
    assert_eq!(outcome.result.expect("backup answers").1.message, Message::assistant("clean answer"));
    assert_eq!(failures(&outcome.attempts), vec![Some("truncated"), None]);
    assert_eq!(sink.discards(), 1);
    assert_eq!(sink.text(), "clean answer", "only the surviving attempt's deltas remain");
    assert!(sink.deltas().iter().all(|delta| matches!(delta, ModelDelta::Text(_))));
}

#[tokio::test]
async fn all_failing_returns_the_last_error_and_every_attempt() {
    let (primary, backup, router) = two_providers().await;
    primary.push(Reply::status(500));
    backup.push(Reply::status(401));
    let outcome = router.complete(&chain(), request(true), &NoDeltas).await;
    assert_eq!(outcome.result.err(), Some(ModelError::Unauthorized("mock error 401".into())));
    assert_eq!(failures(&outcome.attempts), vec![Some("server_error"), Some("unauthorized")]);
    assert_eq!(outcome.attempts[0].detail.as_deref(), Some("server error 500: mock error 500"));
    assert!(router.cooldown_remaining("primary").is_some());
    assert!(router.cooldown_remaining("backup").is_none(), "401 does not cool a provider down");
}

#[tokio::test]
async fn when_all_are_cooling_the_earliest_is_tried_anyway() {
    let (primary, backup, router) = two_providers().await;
    primary.push(Reply::status(503));
    backup.push(Reply::status(429).retry_after("120"));
    let outcome = router.complete(&chain(), request(false), &NoDeltas).await;
    assert!(outcome.result.is_err());

    primary.push(Reply::text("recovered"));
    let outcome = router.complete(&chain(), request(false), &NoDeltas).await;
    assert_eq!(outcome.result.expect("primary tried anyway").1.message, Message::assistant("recovered"));
    assert_eq!(failures(&outcome.attempts), vec![None]);
    assert_eq!(primary.requests().len(), 2);
    assert_eq!(backup.requests().len(), 1);
}

/// One provider on its own mock with the default retry policy (two retries).
async fn retrying_provider(wire: Wire) -> (MockLlm, Router) {
    let mock = MockLlm::start().await;
    let mut settings = crate::settings(&mock, wire);
    settings.read_timeout = Duration::from_millis(300);
    let mut router = Router::new();
    router.add(
        "primary",
        crate::client_with(settings, wire),
        Duration::from_secs(30),
        RetryPolicy::default(),
    );
    (mock, router)
}

fn only_primary() -> Vec<ModelRef> {
    vec![ModelRef::parse("primary/claude-mock").expect("ref")]
}

#[tokio::test]
async fn transient_failures_over_http_are_retried_on_the_same_model_until_it_answers() {
    for (wire, stream) in crate::combos() {
        let (mock, router) = retrying_provider(wire).await;
        // 429 twice (Retry-After 0) then 200.
        mock.push(Reply::status(429).retry_after("0"));
        mock.push(Reply::status(429).retry_after("0"));
        mock.push(Reply::text("third time lucky"));
        let outcome = router.complete(&only_primary(), request(stream), &NoDeltas).await;
        assert_eq!(
            outcome.result.expect("answered").1.message,
            Message::assistant("third time lucky"),
            "{wire:?} stream={stream}"
        );
        assert_eq!(failures(&outcome.attempts), vec![Some("rate_limited"), Some("rate_limited"), None]);
        assert_eq!(mock.requests().len(), 3);
        assert_eq!(router.cooldown_remaining("primary"), None);

        // 500 once, 503 once, a reset before any byte, a 529 overload: each retried.
        for (failure, reason) in [
            (Reply::status(500), "server_error"),
            (Reply::status(503), "server_error"),
            (Reply::status(529), "server_error"),
            (Reply::reset(), "connect"),
            (Reply::hang(), "timeout"),
        ] {
            mock.push(failure);
            mock.push(Reply::text("recovered"));
            let outcome = router.complete(&only_primary(), request(stream), &NoDeltas).await;
            assert!(outcome.result.is_ok(), "{wire:?} stream={stream} {reason}: {:?}", outcome.result);
            assert_eq!(failures(&outcome.attempts), vec![Some(reason), None], "{wire:?} stream={stream}");
        }
    }
}

#[tokio::test]
async fn refusals_over_http_are_not_retried_and_a_rate_limit_everywhere_reports_its_wait() {
    let (mock, router) = retrying_provider(Wire::OpenAi).await;
    mock.push(Reply::status(400));
    mock.push(Reply::text("never asked"));
    let outcome = router.complete(&only_primary(), request(true), &NoDeltas).await;
    assert_eq!(failures(&outcome.attempts), vec![Some("rejected")]);
    assert_eq!(mock.requests().len(), 1);

    let (mock, router) = retrying_provider(Wire::Anthropic).await;
    for _ in 0..3 {
        mock.push(Reply::status(429).retry_after("1"));
    }
    let started = std::time::Instant::now();
    let outcome = router.complete(&only_primary(), request(true), &NoDeltas).await;
    assert!(started.elapsed() >= Duration::from_secs(2), "Retry-After 1 was honoured twice");
    assert_eq!(failures(&outcome.attempts), vec![Some("rate_limited"); 3]);
    assert_eq!(outcome.retry_after, Some(Duration::from_secs(1)));
    assert!(router.cooldown_remaining("primary").is_some());
}
