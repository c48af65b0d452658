//! The bridge: the one-way channel on which the administrator side reports to a user agent.
//! Every message is signed with HMAC-SHA256 under a shared key (from `secrets/`), and carries
//! the moment it was signed and a random nonce. A message is accepted only when its signature
//! matches, it was signed within the window (either side of now: clocks drift), and its nonce
//! was never seen before (the caller keeps the nonces: [`NonceLog`]). Everything else is refused
//! with the reason; refusals are severity-10 audit events for the caller to record.
//!
//! Wire form: one line of JSON, `{"bridge":1,"ts":SECONDS,"nonce":HEX,"body":TEXT,"sig":HEX}`;
//! the signature covers `clawdia-bridge/1`, the timestamp, the nonce and the body, each on a
//! line of its own, so no field can be moved into another.

use serde::{Deserialize, Serialize};

use crate::crypto::{hmac_sha256, same_secret};

/// The wire form's version.
const VERSION: u32 = 1;

/// A message as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub bridge: u32,
    /// Unix seconds when it was signed.
    pub ts: i64,
    /// 128 random bits, hex.
    pub nonce: String,
    pub body: String,
    /// HMAC-SHA256, hex.
    pub sig: String,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not a bridge message (truncated or malformed: {0})")]
    Malformed(String),
    #[error("the signature does not match: forged, altered, or signed with another key")]
    BadSignature,
    #[error("signed {0} s from now, outside the {1} s window (a stale message, or a clock that is off)")]
    OutsideWindow(i64, u64),
    #[error("a replay: this message's nonce was seen before")]
    Replayed,
    #[error("the nonce log cannot be read or written: {0}")]
    Log(String),
}

/// The nonces seen, kept by the caller (a table in `broker.db`).
pub trait NonceLog {
    /// Records `nonce` (seen at `ts`); `Ok(false)` when it was already there.
    fn record(&self, nonce: &str, ts: i64) -> Result<bool, String>;
}

fn signature(key: &[u8], ts: i64, nonce: &str, body: &str) -> String {
    crate::hex(&hmac_sha256(key, format!("clawdia-bridge/{VERSION}\n{ts}\n{nonce}\n{body}").as_bytes()))
}

/// `body` signed under `key` at `now` (Unix seconds), as one line of JSON.
pub fn sign(key: &[u8], body: &str, now: i64) -> Result<String, crate::random::RandomError> {
    let nonce = crate::random::hex(16)?;
    let signed = Signed {
        bridge: VERSION,
        ts: now,
        sig: signature(key, now, &nonce, body),
        nonce,
        body: body.to_string(),
    };
    Ok(serde_json::to_string(&signed).unwrap_or_default())
}

/// The body of `message` if it is authentic, fresh within `window` seconds of `now`, and not
/// seen before (its nonce is then recorded in `log`).
pub fn verify(
    key: &[u8],
    message: &str,
    now: i64,
    window: u64,
    log: &dyn NonceLog,
) -> Result<String, Refused> {
    let signed: Signed = serde_json::from_str(message.trim())
        .map_err(|e| Refused::Malformed(crate::text::one_line(&e.to_string())))?;
    if signed.bridge != VERSION {
        return Err(Refused::Malformed(format!("version {} (this build reads {VERSION})", signed.bridge)));
    }
    if signed.nonce.len() != 32 || !signed.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refused::Malformed("the nonce is not 32 hex digits".into()));
    }
    let expected = signature(key, signed.ts, &signed.nonce, &signed.body);
    if !same_secret(expected.as_bytes(), signed.sig.to_ascii_lowercase().as_bytes()) {
        return Err(Refused::BadSignature);
    }
    let skew = signed.ts.saturating_sub(now);
    if skew.unsigned_abs() > window {
        return Err(Refused::OutsideWindow(skew, window));
    }
    match log.record(&signed.nonce, signed.ts) {
        Ok(true) => Ok(signed.body),
        Ok(false) => Err(Refused::Replayed),
        Err(error) => Err(Refused::Log(error)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Memory(Mutex<HashSet<String>>);

    impl NonceLog for Memory {
        fn record(&self, nonce: &str, _ts: i64) -> Result<bool, String> {
            Ok(self.0.lock().unwrap().insert(nonce.to_string()))
        }
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_message_verifies_once() {
        let log = Memory::default();
        let message = sign(KEY, "deploy finished: nginx reloaded", 1_000).unwrap();
        assert!(!message.contains('\n'));
        assert_eq!(verify(KEY, &message, 1_010, 300, &log).unwrap(), "deploy finished: nginx reloaded");
        assert_eq!(verify(KEY, &message, 1_011, 300, &log), Err(Refused::Replayed));
    }

    #[test]
    fn forgery_skew_and_truncation_are_refused_with_the_reason() {
        let log = Memory::default();
        let message = sign(KEY, "all good", 1_000).unwrap();
        // Another key; an altered body; a moved timestamp.
        assert_eq!(verify(b"another key", &message, 1_000, 300, &log), Err(Refused::BadSignature));
        let altered = message.replace("all good", "all bad!");
        assert_eq!(verify(KEY, &altered, 1_000, 300, &log), Err(Refused::BadSignature));
        let moved = message.replace("\"ts\":1000", "\"ts\":1001");
        assert_eq!(verify(KEY, &moved, 1_000, 300, &log), Err(Refused::BadSignature));
        // Outside the window, either way.
        assert_eq!(verify(KEY, &message, 1_301, 300, &log), Err(Refused::OutsideWindow(-301, 300)));
        assert_eq!(verify(KEY, &message, 699, 300, &log), Err(Refused::OutsideWindow(301, 300)));
        // Every truncation is malformed, never accepted.
        for cut in 0..message.len() - 1 {
            let result = verify(KEY, &message[..cut], 1_000, 300, &log);
            assert!(matches!(result, Err(Refused::Malformed(_))), "{cut}: {result:?}");
        }
        // The untouched message still verifies (the refusals recorded no nonce).
        assert_eq!(verify(KEY, &message, 1_000, 300, &log).unwrap(), "all good");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_verifies(text in "\\PC{0,200}") {
            let log = Memory::default();
            proptest::prop_assert!(verify(KEY, &text, 0, 300, &log).is_err());
        }
    }
}
