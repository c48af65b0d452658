//! Unit tests of the OpenAI embedder's pure parts: reply ordering and validation, normalization
//! and error-body messages. The HTTP behaviour is tested against a loopback server in
//! `tests/it/openai.rs`.

use super::{WireResponse, error_message, normalized, ordered_vectors};

fn reply(json: &str) -> WireResponse {
    serde_json::from_str(json).expect("valid reply JSON")
}

#[test]
fn vectors_are_put_in_input_order_by_index() {
    let vectors = ordered_vectors(
        reply(
            r#"{"data":[{"embedding":[2.0],"index":1},{"embedding":[3.0],"index":2},{"embedding":[1.0],"index":0}]}"#,
        ),
        3,
    );
    assert_eq!(vectors, Ok(vec![vec![1.0], vec![2.0], vec![3.0]]));
}

#[test]
fn missing_index_means_response_order() {
    let vectors = ordered_vectors(reply(r#"{"data":[{"embedding":[1.0]},{"embedding":[2.0]}]}"#), 2);
    assert_eq!(vectors, Ok(vec![vec![1.0], vec![2.0]]));
}

#[test]
fn replies_that_do_not_match_the_inputs_are_rejected() {
    let check = |json: &str, inputs: usize, expected: &str| {
        let error = ordered_vectors(reply(json), inputs).expect_err(json);
        assert!(error.contains(expected), "{json}: {error}");
    };
    check(r#"{"data":[{"embedding":[1.0],"index":0}]}"#, 2, "1 embeddings for 2 inputs");
    check(
        r#"{"data":[{"embedding":[1.0],"index":0},{"embedding":[1.0],"index":0}]}"#,
        2,
        "index 0 appears twice",
    );
    check(
        r#"{"data":[{"embedding":[1.0],"index":0},{"embedding":[1.0],"index":5}]}"#,
        2,
        "index 5 out of range",
    );
}

#[test]
fn normalization_gives_unit_length_and_leaves_zero_alone() {
    assert_eq!(normalized(vec![3.0, 4.0]), vec![0.6, 0.8]);
    assert_eq!(normalized(vec![0.0, 0.0]), vec![0.0, 0.0]);
}

#[test]
fn error_messages_come_from_the_body_on_one_line() {
    assert_eq!(error_message(br#"{"error":{"message":"bad model\nreally","type":"x"}}"#), "bad model really");
    assert_eq!(error_message(br#"{"detail":"nope"}"#), "nope");
    assert_eq!(error_message(b"  <html>\n<b>502</b></html> "), "<html> <b>502</b></html>");
    assert_eq!(error_message(b""), "empty body");
    let long = "x".repeat(500);
    assert_eq!(error_message(long.as_bytes()).len(), 203);
}
