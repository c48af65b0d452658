//! Random identifiers: session ids and hex tokens (such as trust-marker boundaries), from the
//! operating system's random source.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh session id: `s-` and 16 random hex digits.
pub fn new_session_id() -> String {
    format!("s-{}", random_hex(8))
}

/// `bytes` random bytes as lower-case hex (`2 * bytes` characters).
pub fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    if let Err(error) = getrandom::fill(&mut buffer) {
        tracing::warn!(%error, "the OS random source failed; using a hashed fallback");
        fallback_fill(&mut buffer);
    }
    let mut hex = String::with_capacity(bytes * 2);
    for byte in buffer {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

/// Unique but weaker bytes when getrandom fails: SipHash with std's per-process random keys over
/// the clock, the process id and a counter.
fn fallback_fill(buffer: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = RandomState::new();
    for chunk in buffer.chunks_mut(8) {
        let mut hasher = keys.build_hasher();
        hasher.write_i64(clawdia_core::time::now_ms());
        hasher.write_u32(std::process::id());
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let value = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&value[..chunk.len()]);
    }
}
