//! Unit tests for the pure parts of the model seam.

use super::*;

#[test]
fn model_ref_splits_at_first_slash() {
    let parsed = ModelRef::parse("openrouter/anthropic/claude-sonnet-4-5").unwrap();
    assert_eq!(parsed.provider, "openrouter");
    assert_eq!(parsed.model, "anthropic/claude-sonnet-4-5");
    assert_eq!(parsed.to_string(), "openrouter/anthropic/claude-sonnet-4-5");
}

#[test]
fn model_ref_rejects_missing_parts() {
    for bad in ["", "zai", "/glm", "zai/", " zai/glm"] {
        assert!(ModelRef::parse(bad).is_none(), "{bad:?} should not parse");
    }
}

#[test]
fn rate_limit_message_names_retry_after() {
    let error = ModelError::RateLimited { retry_after: Some(Duration::from_secs(7)) };
    assert_eq!(error.to_string(), "rate limited (429), retry after 7s");
    assert!(error.cools_down_provider());
    assert!(!ModelError::Cancelled.cools_down_provider());
}

#[test]
fn only_busy_or_broken_transport_errors_are_transient() {
    let server = |status| ModelError::Server { status, message: String::new() };
    let rejected = |status| ModelError::Rejected { status, message: String::new() };
    for transient in [
        ModelError::RateLimited { retry_after: None },
        server(500),
        server(502),
        server(503),
        server(504),
        server(529),
        ModelError::Connect("reset".into()),
        ModelError::Timeout("slow".into()),
        ModelError::Truncated("cut".into()),
    ] {
        assert!(transient.is_transient(), "{transient:?}");
    }
    for permanent in [
        rejected(400),
        rejected(404),
        ModelError::Unauthorized("bad key".into()),
        server(501),
        ModelError::Malformed("junk".into()),
        ModelError::CoolingDown { remaining_secs: 3 },
        ModelError::UnknownProvider("x".into()),
        ModelError::Cancelled,
    ] {
        assert!(!permanent.is_transient(), "{permanent:?}");
    }
}
