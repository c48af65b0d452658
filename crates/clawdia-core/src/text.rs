//! Small text helpers more than one crate needs.

use std::ops::Range;

/// Lower-case hex of `bytes`: digests, random ids.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Where a leading frontmatter block is: the byte range of the YAML between an opening `---`
/// line and a closing `---` (or `...`) line, and the byte offset where the body after the
/// closing line starts. A byte-order mark before the opening line is skipped. `None` when the
/// text does not open with `---` or the block is never closed (then the `---` is markdown's
/// thematic break, not a fence).
pub fn frontmatter_fence(text: &str) -> Option<(Range<usize>, usize)> {
    let bom = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let rest = &text[bom..];
    let first_end = rest.find('\n')?;
    if rest[..first_end].trim_end() != "---" {
        return None;
    }
    let yaml_start = bom + first_end + 1;
    let mut position = yaml_start;
    for line in text[yaml_start..].split_inclusive('\n') {
        let content = line.trim_end();
        if content == "---" || content == "..." {
            return Some((yaml_start..position, position + line.len()));
        }
        position += line.len();
    }
    None
}

/// An error with its whole `source()` chain on one line (HTTP clients' own messages are terse:
/// "error sending request" says nothing without "connection refused" under it).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text)
}

/// The human message of an HTTP error body, on one line: `error.message` (OpenAI, Anthropic),
/// else `message`, `error` or `detail` when they are strings, else the raw text; cut to
/// `max_chars` characters plus `...`. `None` when the body is empty or blank. Registered secrets
/// are masked (`crate::redact`) before the cut, so an echoed key is never left half-visible.
pub fn error_body_message(body: &[u8], max_chars: usize) -> Option<String> {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => ["/error/message", "/message", "/error", "/detail"]
            .iter()
            .find_map(|pointer| value.pointer(pointer).and_then(|found| found.as_str()))
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let line = crate::redact::redact_string(one_line(&text));
    if line.is_empty() {
        return None;
    }
    Some(match line.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    })
}

/// The message a panic carried (`panic!("...")` gives a `&str` or a `String`), or `unknown`.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The first line of an error's message, trimmed: candle and serde-yaml append a backtrace or
/// the offending context below it, which a one-line report does not want.
pub fn first_line(error: &dyn std::error::Error) -> String {
    error.to_string().lines().next().unwrap_or_default().trim().to_string()
}

/// `text` on one line, for error messages and table cells: control characters (newlines
/// included) become spaces, runs of whitespace collapse to one space, the ends are trimmed.
pub fn one_line(text: &str) -> String {
    let spaced: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Option<(&str, &str)> {
        frontmatter_fence(text).map(|(yaml, body)| (&text[yaml], &text[body..]))
    }

    #[test]
    fn a_panics_message_is_read_from_either_payload_type() {
        let caught = |f: fn()| std::panic::catch_unwind(f).unwrap_err();
        assert_eq!(panic_message(&*caught(|| panic!("plain"))), "plain");
        assert_eq!(panic_message(&*caught(|| panic!("formatted {}", 7))), "formatted 7");
        assert_eq!(panic_message(&*caught(|| std::panic::panic_any(42u8))), "unknown");
    }

    #[test]
    fn hex_is_lower_case_and_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn fences() {
        assert_eq!(split("---\na: 1\n---\nbody"), Some(("a: 1\n", "body")));
        assert_eq!(split("\u{feff}---\r\na: 1\r\n...\r\nbody\n"), Some(("a: 1\r\n", "body\n")));
        assert_eq!(split("---\n---\n"), Some(("", "")));
        assert_eq!(split("---\na: 1\n---"), Some(("a: 1\n", "")));
        assert_eq!(split("---\nno close\n"), None);
        assert_eq!(split("# title\n---\na\n---\n"), None);
        assert_eq!(split("---"), None);
        assert_eq!(split(""), None);
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|layer| layer as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn first_line_keeps_an_errors_first_line_only() {
        let error = std::io::Error::other("  bad weights\nStack backtrace:\n  0: candle::...");
        assert_eq!(first_line(&error), "bad weights");
    }

    #[test]
    fn one_line_turns_control_characters_and_runs_into_single_spaces() {
        assert_eq!(one_line("  bad\r\n  key\tat\u{7}line 3 \n"), "bad key at line 3");
        assert_eq!(one_line("\n\t "), "");
    }

    #[test]
    fn error_chains_name_every_distinct_cause_on_one_line() {
        let inner = Layer("connection refused\n(os error 111)", None);
        let middle = Layer("tcp connect error", Some(Box::new(inner)));
        let outer = Layer("error sending request: tcp connect error", Some(Box::new(middle)));
        assert_eq!(
            error_chain(&outer),
            "error sending request: tcp connect error: connection refused (os error 111)"
        );
    }

    #[test]
    fn error_bodies_give_the_provider_message_on_one_line() {
        let anthropic =
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens:\ntoo big"}}"#;
        assert_eq!(error_body_message(anthropic, 300).as_deref(), Some("max_tokens: too big"));
        assert_eq!(error_body_message(br#"{"message":"nope"}"#, 300).as_deref(), Some("nope"));
        assert_eq!(error_body_message(br#"{"error":"bad key"}"#, 300).as_deref(), Some("bad key"));
        assert_eq!(error_body_message(br#"{"detail":"gone"}"#, 300).as_deref(), Some("gone"));
        assert_eq!(error_body_message(br#"{"code":7}"#, 300).as_deref(), Some(r#"{"code":7}"#));
        assert_eq!(
            error_body_message(b"  <html>\n<b>502</b></html> ", 300).as_deref(),
            Some("<html> <b>502</b></html>")
        );
        assert_eq!(error_body_message(b"", 300), None);
        assert_eq!(error_body_message(b" \n ", 300), None);
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "\u{e9}".repeat(500));
        let message = error_body_message(long.as_bytes(), 300).unwrap_or_default();
        assert_eq!(message.chars().count(), 303);
        assert!(message.ends_with("..."));
    }
}
