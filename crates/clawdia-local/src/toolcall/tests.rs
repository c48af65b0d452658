//! Tool-call parsing: well-formed calls (one, several, string arguments, missing close tag at
//! the end), malformed output kept as text, and a property test that no input panics and that
//! the stream filter never streams more than the final text.

use proptest::prelude::*;

use super::*;

fn check(output: &str, text: &str, calls: &[(&str, &str)]) {
    let parsed = parse(output).unwrap();
    assert_eq!(parsed.text, text, "text of {output:?}");
    let got: Vec<(&str, &str)> =
        parsed.tool_calls.iter().map(|call| (call.name.as_str(), call.arguments.as_str())).collect();
    assert_eq!(got, calls, "calls of {output:?}");
}

#[test]
fn plain_text_has_no_calls() {
    check("Hello there.\n", "Hello there.", &[]);
}

#[test]
fn one_call_after_text() {
    check(
        "Let me look.\n<tool_call>\n{\"name\": \"read\", \"arguments\": {\"path\": \"a.md\"}}\n</tool_call>",
        "Let me look.",
        &[("read", r#"{"path":"a.md"}"#)],
    );
}

#[test]
fn several_calls_and_string_arguments() {
    check(
        "<tool_call>{\"name\": \"list\", \"arguments\": \"{\\\"path\\\": \\\".\\\"}\"}</tool_call>\n<tool_call>{\"name\": \"grep\", \"arguments\": {}}</tool_call>",
        "",
        &[("list", r#"{"path":"."}"#), ("grep", "{}")],
    );
}

#[test]
fn a_missing_close_tag_at_the_end_is_tolerated() {
    check(
        "<tool_call>\n{\"name\": \"list\", \"arguments\": {\"path\": \".\"}}",
        "",
        &[("list", r#"{"path":"."}"#)],
    );
}

#[test]
fn missing_arguments_are_an_empty_object() {
    check("<tool_call>{\"name\": \"list\"}</tool_call>", "", &[("list", "{}")]);
}

#[test]
fn malformed_calls_are_text() {
    for output in [
        "<tool_call>{\"name\": \"read\", \"arguments\": {\"path\": }</tool_call>",
        "<tool_call>not json</tool_call>",
        "<tool_call>{\"arguments\": {}}</tool_call>",
        "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>",
        "<tool_call>{\"name\": \"read\", \"arguments\": [1]}</tool_call>",
        "<tool_call>{\"name\": \"read\"}</tool_call> and then some text",
        "<tool_call></tool_call>",
        "<tool_call>",
    ] {
        check(output, output.trim_end(), &[]);
    }
}

#[test]
fn ids_are_unique() {
    let first = parse("<tool_call>{\"name\": \"a\"}</tool_call>").unwrap();
    let second = parse("<tool_call>{\"name\": \"a\"}</tool_call>").unwrap();
    assert_ne!(first.tool_calls[0].id, second.tool_calls[0].id);
    let id = &first.tool_calls[0].id;
    let digits = id.strip_prefix("call_").expect("call_ prefix");
    assert!(digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
}

#[test]
fn the_filter_holds_back_tags_partial_tags_and_trailing_space() {
    let mut filter = StreamFilter::new(true);
    assert_eq!(filter.next("Hi"), "Hi");
    assert_eq!(filter.next("Hi there "), " there");
    assert_eq!(filter.next("Hi there <tool"), "");
    assert_eq!(filter.next("Hi there <tool_call>{"), "");
    assert_eq!(filter.finish("Hi there"), "");
    let mut filter = StreamFilter::new(false);
    assert_eq!(filter.next("a <tool"), "a <tool");
}

/// Outputs built from fragments a model might emit, tags included.
fn output_strategy() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("<tool_call>".to_string()),
        Just("</tool_call>".to_string()),
        Just("{\"name\": \"read\", \"arguments\": {\"path\": \"x\"}}".to_string()),
        Just("{\"name\":".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        "[a-z{}\":,<>/ ]{0,12}",
        "\\PC{0,6}",
    ];
    prop::collection::vec(fragment, 0..12).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn parsing_never_panics_and_keeps_text_a_prefix(output in output_strategy()) {
        let parsed = parse(&output).unwrap();
        prop_assert!(output.starts_with(&parsed.text));
        if parsed.tool_calls.is_empty() {
            prop_assert_eq!(parsed.text.as_str(), output.trim_end());
        }
        for call in &parsed.tool_calls {
            prop_assert!(!call.name.is_empty());
            let arguments: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
            prop_assert!(arguments.is_object());
        }
    }

    #[test]
    fn streamed_text_equals_the_final_text(output in output_strategy(), cut in 1usize..8) {
        let mut filter = StreamFilter::new(true);
        let mut streamed = String::new();
        let boundaries: Vec<usize> = output.char_indices().map(|(index, _)| index).step_by(cut).collect();
        for end in boundaries.into_iter().chain([output.len()]) {
            streamed.push_str(filter.next(&output[..end]));
        }
        let parsed = parse(&output).unwrap();
        streamed.push_str(filter.finish(&parsed.text));
        prop_assert_eq!(streamed, parsed.text);
    }
}
