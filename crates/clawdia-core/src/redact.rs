//! The one mechanism that keeps secret values out of everything the gateway emits or stores.
//!
//! Every secret value the process holds is registered here when it is resolved
//! (`clawdia_config::SecretRef::resolve`, `Secret::new`): API keys, the gateway token, MCP and
//! host-command credentials, embedding keys. [`redact`] replaces any occurrence of a registered
//! value — and of the forms it takes on the way: JSON-escaped, percent-encoded, and inside
//! base64 (as in an `Authorization: Basic` header echoed back) — with [`MASK`]. The sinks call it:
//! HTTP error bodies and SSE frames (clawdia-server), log lines (the binary's log writer), audit
//! and message rows (clawdia-store), run history (clawdia-sched) and the CLI's error output.
//! A provider or proxy that echoes the key in an error body therefore never gets it to a client,
//! a log or a database.
//!
//! Values shorter than [`MIN_SECRET_CHARS`] characters are not registered: masking them would
//! garble ordinary text, and no real key or token is that short. The registry lives as long as
//! the process and only grows; it holds copies of the values (a `Secret` zeroes its own bytes
//! on drop, the registry cannot without forgetting what to mask).

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

/// What a secret is replaced with.
pub const MASK: &str = "[redacted]";

/// Shorter values (after trimming) are not registered.
pub const MIN_SECRET_CHARS: usize = 8;

/// Every registered form of every secret, longest first (so a longer form is masked whole
/// before a shorter one could cut into it).
static PATTERNS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a secret value: from now on [`redact`] masks it and its encodings. Idempotent;
/// values shorter than [`MIN_SECRET_CHARS`] characters are ignored.
pub fn register(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    let mut patterns = PATTERNS.write().unwrap_or_else(PoisonError::into_inner);
    for form in forms(value) {
        if form.chars().count() >= MIN_SECRET_CHARS && !patterns.contains(&form) {
            patterns.push(form);
        }
    }
    patterns.sort_by_key(|pattern| std::cmp::Reverse(pattern.len()));
}

/// `text` with every registered secret (in any registered form) replaced by [`MASK`]; borrowed
/// when nothing matched, which is the common case and costs one scan per pattern.
pub fn redact(text: &str) -> Cow<'_, str> {
    let patterns = PATTERNS.read().unwrap_or_else(PoisonError::into_inner);
    let Some(first) = patterns.iter().position(|pattern| text.contains(pattern.as_str())) else {
        return Cow::Borrowed(text);
    };
    let mut out = text.to_string();
    for pattern in &patterns[first..] {
        if out.contains(pattern.as_str()) {
            out = out.replace(pattern.as_str(), MASK);
        }
    }
    Cow::Owned(out)
}

/// [`redact`] for an owned string, reusing it when nothing matched.
pub fn redact_string(text: String) -> String {
    match redact(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(masked) => masked,
    }
}

/// Masks secrets in text that arrives in pieces (a model's streamed reply): a registered value
/// split across two pieces is masked too, which [`redact`] on each piece alone would miss.
/// `push` returns what may be shown now — everything but a tail that could be the start of a
/// secret — and `finish` the rest; what the two return, joined, is [`redact`] of the whole text.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    held: String,
}

impl StreamRedactor {
    /// Takes the next piece; returns the masked text that can be shown now.
    pub fn push(&mut self, piece: &str) -> String {
        self.held.push_str(piece);
        let masked = redact_string(std::mem::take(&mut self.held));
        let keep = {
            let patterns = PATTERNS.read().unwrap_or_else(PoisonError::into_inner);
            longest_pattern_start_at_end(&masked, &patterns)
        };
        let split = masked.len() - keep;
        self.held = masked[split..].to_string();
        let mut shown = masked;
        shown.truncate(split);
        shown
    }

    /// Ends the text: what is still held back, masked.
    pub fn finish(&mut self) -> String {
        redact_string(std::mem::take(&mut self.held))
    }

    /// Forgets what is held back (the text it belongs to was discarded).
    pub fn clear(&mut self) {
        self.held.clear();
    }
}

/// The length in bytes of the longest tail of `text` that is the beginning (not the whole) of
/// some pattern: text that may turn into a secret when the next piece arrives.
fn longest_pattern_start_at_end(text: &str, patterns: &[String]) -> usize {
    let mut longest = 0;
    for pattern in patterns {
        let most = pattern.len().saturating_sub(1).min(text.len());
        for len in (longest + 1..=most).rev() {
            if pattern.is_char_boundary(len)
                && text.is_char_boundary(text.len() - len)
                && text.as_bytes()[text.len() - len..] == pattern.as_bytes()[..len]
            {
                longest = len;
                break;
            }
        }
    }
    longest
}

/// The forms a value takes in text that might be echoed back: itself, JSON-escaped,
/// percent-encoded, and the part of its base64 encoding that does not depend on the bytes
/// around it, for each of the three alignments and both alphabets.
fn forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    if let Ok(quoted) = serde_json::to_string(value) {
        forms.push(quoted[1..quoted.len() - 1].to_string());
    }
    forms.push(percent_encode(value));
    for alphabet in [STANDARD, URL_SAFE] {
        for offset in 0..3 {
            forms.push(base64_core(value.as_bytes(), offset, alphabet));
        }
    }
    forms.dedup();
    forms
}

/// RFC 3986 percent-encoding: unreserved characters stay, every other byte is `%XX`.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The base64 characters that encode only bytes of `value` when it starts `offset` bytes into
/// a 3-byte group (as `key` does in `user:key`): the groups that hold a byte from before or
/// after the value are left out, since they differ with whatever surrounds it.
fn base64_core(value: &[u8], offset: usize, alphabet: &[u8; 64]) -> String {
    let skip = (3 - offset) % 3;
    let whole = &value[skip.min(value.len())..];
    let whole = &whole[..whole.len() - whole.len() % 3];
    let mut out = String::with_capacity(whole.len() / 3 * 4);
    for group in whole.chunks_exact(3) {
        let bits = (u32::from(group[0]) << 16) | (u32::from(group[1]) << 8) | u32::from(group[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(alphabet[((bits >> shift) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard base64 with padding, to build the texts a server would echo.
    fn base64(bytes: &[u8]) -> String {
        let mut out = String::new();
        for group in bytes.chunks(3) {
            let b = [group[0], *group.get(1).unwrap_or(&0), *group.get(2).unwrap_or(&0)];
            let bits = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
                if i <= group.len() {
                    out.push(char::from(STANDARD[((bits >> shift) & 0x3f) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn a_registered_value_is_masked_wherever_it_appears() {
        register("sk-redact-test-raw-0123456789");
        let text = "invalid x-api-key: sk-redact-test-raw-0123456789 (twice: sk-redact-test-raw-0123456789)";
        assert_eq!(redact(text), "invalid x-api-key: [redacted] (twice: [redacted])");
        // The positive control: text without it comes back untouched and borrowed.
        assert!(matches!(redact("invalid x-api-key: sk-other"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_escaped_and_percent_encoded_forms_are_masked() {
        let value = "tok\"en/with+odd=chars\\1";
        register(value);
        let json = serde_json::json!({ "error": format!("bad key {value}") }).to_string();
        assert!(!json.contains(value), "the JSON form differs from the raw value");
        let masked = redact(&json);
        assert_eq!(masked, r#"{"error":"bad key [redacted]"}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&masked).is_ok(), "still valid JSON");
        assert_eq!(redact("GET /?key=tok%22en%2Fwith%2Bodd%3Dchars%5C1"), "GET /?key=[redacted]");
    }

    #[test]
    fn base64_of_the_value_is_masked_at_every_alignment() {
        let key = "sk-basic-auth-9f8e7d6c5b4a";
        register(key);
        for user in ["", "u", "us", "user", "users"] {
            let header = format!("Basic {}", base64(format!("{user}:{key}").as_bytes()));
            let masked = redact(&header);
            assert!(masked.contains(MASK), "user {user:?}: {header} -> {masked}");
            // Only the groups shared with `user:` and the last partial group stay visible.
            let left = masked.trim_start_matches("Basic ").replace(MASK, "");
            assert!(left.len() <= (user.len() + 1).div_ceil(3) * 4 + 4, "user {user:?}: {masked}");
        }
    }

    #[test]
    fn short_values_are_not_registered() {
        register("abc1234");
        assert_eq!(redact("abc1234 stays"), "abc1234 stays");
        register("   ");
        assert_eq!(redact("   "), "   ");
    }

    #[test]
    fn redact_string_reuses_the_string_when_nothing_matched() {
        register("sk-redact-string-test-4242");
        assert_eq!(redact_string("plain".to_string()), "plain");
        assert_eq!(redact_string("k=sk-redact-string-test-4242".to_string()), "k=[redacted]");
    }

    #[test]
    fn a_secret_split_across_streamed_pieces_is_masked_wherever_it_is_cut() {
        let secret = "stream-split-secret-9f8e7d";
        register(secret);
        let text = format!("The key is {secret}, keep it safe.");
        for cut_a in 0..=text.len() {
            for cut_b in cut_a..=text.len() {
                let mut stream = StreamRedactor::default();
                let mut shown = String::new();
                for piece in [&text[..cut_a], &text[cut_a..cut_b], &text[cut_b..]] {
                    shown.push_str(&stream.push(piece));
                    assert!(!shown.contains(secret), "cut at {cut_a}/{cut_b}: {shown}");
                }
                shown.push_str(&stream.finish());
                assert_eq!(shown, "The key is [redacted], keep it safe.", "cut at {cut_a}/{cut_b}");
            }
        }
    }

    #[test]
    fn text_without_secrets_streams_through_whole_and_held_text_is_shown_at_the_end() {
        register("held-back-prefix-secret-1234");
        let mut stream = StreamRedactor::default();
        // Positive control: ordinary text passes at once, nothing held.
        assert_eq!(stream.push("Hello, "), "Hello, ");
        assert_eq!(stream.push("wörld ✓"), "wörld ✓");
        // A tail that may begin a secret waits; when it does not, it is shown.
        assert_eq!(stream.push("see held-back"), "see ");
        assert_eq!(stream.push(" notes"), "held-back notes");
        assert_eq!(stream.push("end held-ba"), "end ");
        assert_eq!(stream.finish(), "held-ba");
        assert_eq!(stream.push("x held"), "x ");
        stream.clear();
        assert_eq!(stream.finish(), "");
    }
}
