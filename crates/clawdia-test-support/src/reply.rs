//! What the mock answers: `Reply` (a `ReplyKind` plus timing and reported usage) and its
//! constructors and builder methods. Wire rendering lives in `wire.rs`.

use std::time::Duration;

/// The content or failure a reply simulates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    Text(String),
    /// `(name, arguments JSON text)`; several are parallel calls in one reply.
    ToolCalls(Vec<(String, String)>),
    TextThenToolCalls(String, Vec<(String, String)>),
    /// An HTTP error status. An empty `body` becomes the provider's usual error JSON.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: String,
    },
    /// Streaming: starts, sends some text, then closes without the end event / `[DONE]`.
    /// Non-streaming: promises a full JSON body, sends half of it, then drops the connection.
    Truncated,
    /// Streaming: an SSE data line that is not JSON. Non-streaming: an invalid JSON body.
    Malformed,
    /// Accepts the request and never answers (until the mock shuts down).
    Hang,
    /// Reads the request, then resets the connection without a byte of response.
    Reset,
    /// An error status whose body echoes the request's credentials (the key, the whole
    /// `Authorization` header, the key in a proxy's `Basic` credentials); see `echo.rs`.
    EchoCredentials {
        code: u16,
    },
}

/// One scripted reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    /// Wait before the first byte of the response.
    pub delay: Duration,
    /// Wait between SSE events when streaming.
    pub chunk_delay: Duration,
    /// Input and output tokens reported; default `(10, 5)`.
    pub usage: (u64, u64),
}

fn owned_calls<N: Into<String>, A: Into<String>>(calls: Vec<(N, A)>) -> Vec<(String, String)> {
    calls.into_iter().map(|(name, arguments)| (name.into(), arguments.into())).collect()
}

impl Reply {
    pub fn new(kind: ReplyKind) -> Reply {
        Reply { kind, delay: Duration::ZERO, chunk_delay: Duration::ZERO, usage: (10, 5) }
    }

    pub fn text(text: impl Into<String>) -> Reply {
        Reply::new(ReplyKind::Text(text.into()))
    }

    /// Tool calls as `(name, arguments JSON text)`; several make parallel calls.
    pub fn tool_calls<N: Into<String>, A: Into<String>>(calls: Vec<(N, A)>) -> Reply {
        Reply::new(ReplyKind::ToolCalls(owned_calls(calls)))
    }

    pub fn text_then_tool_calls<N: Into<String>, A: Into<String>>(
        text: impl Into<String>,
        calls: Vec<(N, A)>,
    ) -> Reply {
        Reply::new(ReplyKind::TextThenToolCalls(text.into(), owned_calls(calls)))
    }

    /// An error status with the provider's usual error body.
    pub fn status(code: u16) -> Reply {
        Reply::new(ReplyKind::Status { code, retry_after: None, body: String::new() })
    }

    pub fn truncated() -> Reply {
        Reply::new(ReplyKind::Truncated)
    }

    pub fn malformed() -> Reply {
        Reply::new(ReplyKind::Malformed)
    }

    pub fn hang() -> Reply {
        Reply::new(ReplyKind::Hang)
    }

    /// A TCP reset instead of a response.
    pub fn reset() -> Reply {
        Reply::new(ReplyKind::Reset)
    }

    /// An error status (401 for a rejected key) whose body echoes the API key and its bearer
    /// header back, as a misbehaving provider or proxy does.
    pub fn echo_credentials(code: u16) -> Reply {
        Reply::new(ReplyKind::EchoCredentials { code })
    }

    /// Sets the `Retry-After` header of a `Status` reply (ignored for other kinds).
    pub fn retry_after(mut self, value: impl Into<String>) -> Reply {
        if let ReplyKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = Some(value.into());
        }
        self
    }

    /// Sets the raw body of a `Status` reply (ignored for other kinds).
    pub fn body(mut self, text: impl Into<String>) -> Reply {
        if let ReplyKind::Status { body, .. } = &mut self.kind {
            *body = text.into();
        }
        self
    }

    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn chunk_delay(mut self, delay: Duration) -> Reply {
        self.chunk_delay = delay;
        self
    }

    pub fn usage(mut self, input_tokens: u64, output_tokens: u64) -> Reply {
        self.usage = (input_tokens, output_tokens);
        self
    }
}
