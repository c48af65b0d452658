//! Logging: `tracing` to stderr, every line masked on its way out. The fmt layer writes each
//! event through a fresh writer; ours collects the event's bytes and, when the event is done,
//! writes them once with every registered secret replaced (`clawdia_core::redact`), so a key that
//! reached a log field (a provider's error body, an audit detail) never reaches the log.

use std::io::Write;

/// Logs go to stderr; `CLAWDIA_LOG` sets the filter (default `info` for `up`; other commands
/// report through their own output, so only errors are logged).
pub fn init(is_up: bool) {
    use std::io::IsTerminal;
    let default = if is_up { "info" } else { "error" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAWDIA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(RedactedStderr)
        .try_init();
}

/// Makes one [`RedactedEvent`] per log event.
struct RedactedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedEvent;

    fn make_writer(&'a self) -> RedactedEvent {
        RedactedEvent(Vec::new())
    }
}

/// The bytes of one log event, written masked to stderr when dropped (the event is complete).
struct RedactedEvent(Vec<u8>);

impl Write for RedactedEvent {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedEvent {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        let masked = clawdia_core::redact::redact(&text);
        let _ = std::io::stderr().lock().write_all(masked.as_bytes());
    }
}
