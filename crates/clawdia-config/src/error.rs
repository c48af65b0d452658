//! `ConfigError`, the one error a caller of this crate sees, and the helpers that turn a toml /
//! serde failure into it: the 1-based line from the error's byte span and the dotted key path
//! (`agents.main.fallbacks[0]`) from `serde_path_to_error`. Every message is a single line.

use std::fmt;
use std::path::Path;

use clawdia_core::one_line;

/// Why the configuration could not be loaded, or a secret could not be resolved.
///
/// `Display` is always one line: `clawdia.toml:LINE: KEY.PATH: message` when line and key are
/// known. Messages never contain a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, permissions, not UTF-8).
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    /// A syntax error, unknown key, wrong type, invalid value or dangling reference.
    #[error("{}", Located { line: *line, key: key.as_deref(), message })]
    Invalid { line: Option<usize>, key: Option<String>, message: String },
    /// A secret reference could not be resolved; `reference` names it (`env ZAI_API_KEY`,
    /// `file /home/u/secrets/gateway-token`), never its value.
    #[error("cannot resolve secret {reference}: {message}")]
    Secret { reference: String, message: String },
}

impl ConfigError {
    /// The 1-based line in `clawdia.toml` the error points at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            ConfigError::Invalid { line, .. } => *line,
            _ => None,
        }
    }

    /// The dotted key path (`agents.main.model`) the error is about, when known.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path, error: &std::io::Error) -> ConfigError {
        ConfigError::Io { path: path.display().to_string(), message: io_message(error) }
    }

    /// A validation error at byte offset `at` of `text`.
    pub(crate) fn at(text: &str, at: usize, key: String, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            line: Some(line_of(text, at)),
            key: Some(key),
            message: one_line(&message.into()),
        }
    }

    /// A syntax error: toml could not even build a document, so there is no key path.
    pub(crate) fn syntax(text: &str, error: &toml::de::Error) -> Self {
        ConfigError::Invalid {
            line: error.span().map(|span| line_of(text, span.start)),
            key: None,
            message: tidy(error.message()),
        }
    }

    /// A deserialization error (unknown key, wrong type, missing key) with its key path.
    pub(crate) fn serde(text: &str, error: serde_path_to_error::Error<toml::de::Error>) -> Self {
        let key = format_path(error.path());
        let inner = error.into_inner();
        ConfigError::Invalid {
            line: inner.span().map(|span| line_of(text, span.start)),
            key: (!key.is_empty()).then_some(key),
            message: tidy(inner.message()),
        }
    }
}

struct Located<'a> {
    line: Option<usize>,
    key: Option<&'a str>,
    message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("clawdia.toml")?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// `std::io::Error`'s message without the ` (os error 2)` suffix.
pub(crate) fn io_message(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// 1-based line of byte offset `at` (clamped to the text).
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&byte| byte == b'\n').count() + 1
}

/// A TOML key as it would be written in the file: bare when it can be, quoted otherwise.
pub(crate) fn quote_key(key: &str) -> String {
    let bare = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare { key.to_string() } else { format!("{key:?}") }
}

/// Joins segments into a dotted path, quoting keys that are not bare; a segment `[N]` is an
/// array index and attaches without a dot.
pub(crate) fn key_path(segments: &[&str]) -> String {
    let mut out = String::new();
    for segment in segments {
        if segment.starts_with('[') {
            out.push_str(segment);
            continue;
        }
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&quote_key(segment));
    }
    out
}

/// `agents.main.fallbacks[1]`, skipping the private fields `toml::Spanned` deserializes through.
fn format_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if key.starts_with("$__serde_spanned") {
                    continue;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&quote_key(key));
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// Serde's wording, in the file's vocabulary ("key", not "field"), on one line.
fn tidy(message: &str) -> String {
    one_line(&message.replace("unknown field", "unknown key").replace("missing field", "missing key"))
}
