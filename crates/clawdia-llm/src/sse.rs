//! A hand-rolled Server-Sent Events parser: bytes in, events out. It follows the WHATWG
//! event-stream rules that matter for model providers: `event:` and `data:` fields, multi-line
//! data joined with `\n`, `:` comment lines ignored, `id`/`retry` ignored, CRLF, LF and lone CR
//! line endings, and events split across arbitrary chunk boundaries (including a CRLF split
//! between two chunks). It never panics on arbitrary input; an event that grows past a size
//! limit is an error value.

use std::mem;

/// Default cap on one buffered line or one event's data (16 MiB).
pub const DEFAULT_EVENT_LIMIT: usize = 16 << 20;

/// One dispatched event. `event` is the `event:` field, or `"message"` when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// The stream can no longer be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("server-sent event larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// Incremental parser state; feed it chunks with [`SseParser::push`].
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current line that arrived without their line ending yet.
    line: Vec<u8>,
    /// The last chunk ended in CR: a LF at the start of the next chunk ends the same line.
    skip_lf: bool,
    /// No line completed yet (a UTF-8 byte order mark may start the stream).
    first_line: bool,
    event: String,
    data: String,
    has_data: bool,
    limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new()
    }
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::with_limit(DEFAULT_EVENT_LIMIT)
    }

    /// A parser that fails once a line or an event's data exceeds `limit` bytes.
    pub fn with_limit(limit: usize) -> SseParser {
        SseParser {
            line: Vec::new(),
            skip_lf: false,
            first_line: true,
            event: String::new(),
            data: String::new(),
            has_data: false,
            limit,
        }
    }

    /// Parses `chunk`, appending every event it completes to `out`. Bytes after the last line
    /// ending are kept for the next call. An event still open when the stream ends is never
    /// dispatched (as the standard says).
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut rest = chunk;
        if self.skip_lf && !rest.is_empty() {
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
            self.skip_lf = false;
        }
        while let Some(position) = rest.iter().position(|&byte| byte == b'\n' || byte == b'\r') {
            let line_part = &rest[..position];
            let terminator = rest[position];
            if self.line.is_empty() {
                self.process_line(line_part, out)?;
            } else {
                if self.line.len() + line_part.len() > self.limit {
                    return Err(SseError::TooLarge { limit: self.limit });
                }
                let mut line = mem::take(&mut self.line);
                line.extend_from_slice(line_part);
                let result = self.process_line(&line, out);
                line.clear();
                self.line = line;
                result?;
            }
            rest = &rest[position + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
        }
        if self.line.len() + rest.len() > self.limit {
            return Err(SseError::TooLarge { limit: self.limit });
        }
        self.line.extend_from_slice(rest);
        Ok(())
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut line = line;
        if self.first_line {
            self.first_line = false;
            if let Some(stripped) = line.strip_prefix(b"\xEF\xBB\xBF") {
                line = stripped;
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&byte| byte == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event.clear();
                self.event.push_str(&String::from_utf8_lossy(value));
            }
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    return Err(SseError::TooLarge { limit: self.limit });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            let event =
                if self.event.is_empty() { String::from("message") } else { mem::take(&mut self.event) };
            out.push(SseEvent { event, data: mem::take(&mut self.data) });
        }
        self.event.clear();
        self.data.clear();
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests;
