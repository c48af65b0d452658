//! Capped output: keeps the first and the last half of the cap and counts what was dropped in
//! between, so a long build log still shows how it started and how it ended. The marker that
//! replaces the middle is visible to whoever reads the output.

use std::collections::VecDeque;

/// Collects a stream of bytes into at most `cap` bytes (plus the marker).
#[derive(Debug)]
pub(crate) struct CappedOutput {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl CappedOutput {
    pub(crate) fn new(cap: usize) -> CappedOutput {
        let head_cap = cap / 2;
        CappedOutput { head: Vec::new(), tail: VecDeque::new(), head_cap, tail_cap: cap - head_cap, total: 0 }
    }

    pub(crate) fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let take = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        if self.tail_cap == 0 || bytes.is_empty() {
            return;
        }
        if bytes.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Bytes seen in all.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Whether anything was dropped.
    pub(crate) fn truncated(&self) -> bool {
        self.total > (self.head.len() + self.tail.len()) as u64
    }

    /// The kept text (lossy UTF-8), with `[... N bytes of output omitted ...]` where the middle was.
    pub(crate) fn finish(self) -> String {
        let omitted = self.total - (self.head.len() + self.tail.len()) as u64;
        let mut bytes = self.head;
        if omitted > 0 {
            if !bytes.ends_with(b"\n") && !bytes.is_empty() {
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(format!("[... {omitted} bytes of output omitted ...]\n").as_bytes());
        }
        bytes.extend(self.tail);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl CappedOutput {
    /// The first line kept (for error messages).
    pub(crate) fn first_line(&self) -> String {
        let line = self.head.split(|b| *b == b'\n').next().unwrap_or_default();
        String::from_utf8_lossy(line).trim().to_string()
    }
}
