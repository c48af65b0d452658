//! Secrets by reference. The config never holds a secret value: it holds a `SecretRef` (an
//! environment variable name or a file path), resolved on demand into a `Secret`, whose `Debug`
//! and `Display` print `<redacted>` and whose bytes are zeroed on drop. Resolution errors name the
//! reference, never the value. Every value resolved or wrapped here is registered with
//! `clawdia_core::redact`, so the sinks that mask secrets (HTTP errors, SSE, logs, audit and
//! message rows, CLI errors) know it without being told.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use crate::error::{ConfigError, io_message};

/// Largest secret file read; anything bigger is certainly not a key or token.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where a secret lives. TOML: `{ env = "NAME" }` or `{ file = "path" }` (relative to the home).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// An environment variable name.
    Env(String),
    /// An absolute file path (relative paths were resolved against the home when parsing).
    File(PathBuf),
}

impl SecretRef {
    /// Reads the secret now. A file's trailing whitespace/newline is trimmed. A missing variable,
    /// an unreadable file or an empty value is an error that names the reference only.
    pub fn resolve(&self) -> Result<Secret, ConfigError> {
        let value = match self {
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(value) => value,
                Err(std::env::VarError::NotPresent) => {
                    return Err(self.error("environment variable is not set"));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(self.error("environment variable is not valid UTF-8"));
                }
            },
            SecretRef::File(path) => self.read_file(path)?,
        };
        let mut value = Secret(value);
        let trimmed_len = value.0.trim_end().len();
        if trimmed_len == 0 {
            return Err(self.error("the value is empty"));
        }
        if matches!(self, SecretRef::File(_)) {
            // Truncate in place so no untrimmed copy is left behind unzeroed.
            value.0.truncate(trimmed_len);
        }
        clawdia_core::redact::register(&value.0);
        Ok(value)
    }

    fn read_file(&self, path: &Path) -> Result<String, ConfigError> {
        let file = std::fs::File::open(path).map_err(|error| self.error(io_message(&error)))?;
        let mut bytes = Vec::new();
        let read = file.take(MAX_SECRET_FILE_BYTES + 1).read_to_end(&mut bytes);
        if let Err(error) = read {
            bytes.zeroize();
            return Err(self.error(io_message(&error)));
        }
        if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
            bytes.zeroize();
            return Err(self.error("the file is larger than 64 KiB"));
        }
        String::from_utf8(bytes).map_err(|error| {
            error.into_bytes().zeroize();
            self.error("the file is not valid UTF-8")
        })
    }

    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Secret { reference: self.to_string(), message: message.into() }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env {name}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A resolved secret value. Only `expose` reveals it; the bytes are zeroed on drop.
/// No `PartialEq`: compare tokens with a constant-time comparison (`subtle`) on `expose()`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value obtained elsewhere (e.g. a freshly generated gateway token); like a
    /// resolved value, it is registered for masking.
    pub fn new(value: String) -> Secret {
        clawdia_core::redact::register(&value);
        Secret(value)
    }

    /// The value, for the one place that must send it (an HTTP header, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
