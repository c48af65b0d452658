//! Unit tests for the transport's pure helpers: `Retry-After` forms, HTTP-date parsing and
//! error-body message extraction.

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).expect("valid header"));
    }
    map
}

fn check_retry_after(pairs: &[(&'static str, &str)], now: SystemTime, expected: Option<Duration>) {
    assert_eq!(retry_after(&headers(pairs), now), expected, "headers: {pairs:?}");
}

#[test]
fn retry_after_forms() {
    let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
    check_retry_after(&[("retry-after", "7")], now, Some(Duration::from_secs(7)));
    check_retry_after(&[("retry-after", " 1.5 ")], now, Some(Duration::from_millis(1500)));
    check_retry_after(
        &[("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")],
        now,
        Some(Duration::from_secs(30)),
    );
    check_retry_after(&[("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")], now, Some(Duration::ZERO));
    check_retry_after(
        &[("retry-after-ms", "250"), ("retry-after", "9")],
        now,
        Some(Duration::from_millis(250)),
    );
    check_retry_after(&[("retry-after", "soon")], now, None);
    check_retry_after(&[("retry-after", "-3")], now, None);
    check_retry_after(&[("retry-after", "1e300")], now, None);
    check_retry_after(&[], now, None);
}

#[test]
fn http_date_matches_known_instants() {
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(UNIX_EPOCH + Duration::from_secs(784_111_777))
    );
    assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(UNIX_EPOCH));
    assert_eq!(
        parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"),
        Some(UNIX_EPOCH + Duration::from_secs(1_835_438_400))
    );
    for bad in [
        "",
        "Sun 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49 GMT",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad:?}");
    }
}

#[test]
fn error_message_prefers_the_provider_message() {
    assert_eq!(
        error_message(
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#,
            400
        ),
        "max_tokens: too big"
    );
    assert_eq!(error_message(br#"{"message":"nope"}"#, 400), "nope");
    assert_eq!(error_message(br#"{"error":"bad key"}"#, 401), "bad key");
    assert_eq!(error_message(br#"{"code":7}"#, 400), r#"{"code":7}"#);
    assert_eq!(error_message(b"  plain text  ", 502), "plain text");
    assert_eq!(error_message(b"", 503), "HTTP 503 with an empty body");
}

#[test]
fn error_message_is_cut_to_300_characters() {
    let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "é".repeat(500));
    let message = error_message(long.as_bytes(), 400);
    assert_eq!(message.chars().count(), 303);
}
