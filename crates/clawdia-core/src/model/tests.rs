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
fn user_dates_parse() {
    use crate::time::{parse_when, utc_date};
    assert_eq!(parse_when("2026-03-15").map(utc_date).as_deref(), Some("2026-03-15"));
    assert_eq!(parse_when("2026-03").map(utc_date).as_deref(), Some("2026-03-01"));
    assert_eq!(parse_when("2026-03-15T10:00:00Z"), parse_when("2026-03-15").map(|ms| ms + 36_000_000));
    for bad in ["", "2026", "2026-13-01", "2026-02-30", "March", "2026-3-1"] {
        assert_eq!(parse_when(bad), None, "{bad}");
    }
}
