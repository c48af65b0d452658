//! Signed-in browsers of the web channel: the one-time pairing codes that sign a browser in
//! (`clawdia web pair`), the browser sessions they create, and the seam (`BrowserStore`) through
//! which the HTTP server and the CLI reach the database that keeps them. The store holds only
//! hashes of codes and session secrets: a copy of the database signs nobody in.

use serde::Serialize;

use crate::UnixMillis;
use crate::session::StoreError;

/// One signed-in browser as listed (`clawdia web sessions`, `GET /v1/web/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrowserSession {
    /// Short random hex, what the owner types to revoke it.
    pub id: String,
    /// What the owner called it, or how it signed in (`pairing code`, `gateway token`).
    pub label: String,
    pub created_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// The token the browser sends in `X-CSRF-Token` with every state-changing request; never
    /// listed.
    #[serde(skip)]
    pub csrf: String,
}

/// What redeeming a pairing code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The code was valid; it is now used up.
    Redeemed,
    /// No such code was ever issued (a typo, or a code from another gateway).
    Unknown,
    /// The code signed a browser in already.
    Used,
    /// The code ran out of time before it was used.
    Expired,
}

impl CodeCheck {
    /// What the person who typed the code should do next.
    pub fn message(self) -> &'static str {
        match self {
            CodeCheck::Redeemed => "signed in",
            CodeCheck::Unknown => {
                "that pairing code is wrong: check it, or run `clawdia web pair` on the gateway's host for a new one"
            }
            CodeCheck::Used => {
                "that pairing code was used already (each signs in one browser): run `clawdia web pair` for a new one"
            }
            CodeCheck::Expired => {
                "that pairing code expired: run `clawdia web pair` on the gateway's host for a new one"
            }
        }
    }
}

/// Where pairing codes and browser sessions live. Implementations hash codes and secrets before
/// they store or look them up.
pub trait BrowserStore: Send + Sync {
    /// Issues pairing code `code`, valid until `expires_at`.
    fn add_code(&self, code: &str, now: UnixMillis, expires_at: UnixMillis) -> Result<(), StoreError>;

    /// Uses up `code` if it is valid at `now`; at most one caller ever gets `Redeemed`.
    fn redeem_code(&self, code: &str, now: UnixMillis) -> Result<CodeCheck, StoreError>;

    /// Records a new browser session reached with `secret` (the cookie's value).
    fn add_session(&self, session: &BrowserSession, secret: &str) -> Result<(), StoreError>;

    /// The live (not revoked, not expired at `now`) session whose cookie value is `secret`.
    fn session_by_secret(&self, secret: &str, now: UnixMillis) -> Result<Option<BrowserSession>, StoreError>;

    /// Notes that session `id` was seen at `now`.
    fn touch(&self, id: &str, now: UnixMillis) -> Result<(), StoreError>;

    /// The live sessions at `now`, most recently seen first.
    fn sessions(&self, now: UnixMillis) -> Result<Vec<BrowserSession>, StoreError>;

    /// Revokes session `id`; false when there is no live session by that id.
    fn revoke(&self, id: &str, now: UnixMillis) -> Result<bool, StoreError>;
}

/// A fresh pairing code, easy to read aloud and type on a phone: eight characters from an
/// alphabet without look-alikes (no 0/O, 1/I/L), as `XXXX-XXXX` (40 bits).
pub fn pairing_code() -> Result<String, crate::random::RandomError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    // Bytes at or above 248 (the largest multiple of 31) are drawn again: no letter is likelier.
    const LIMIT: u8 = 248;
    let mut code = String::with_capacity(9);
    let mut bytes = [0u8; 16];
    while code.len() < 9 {
        crate::random::fill(&mut bytes)?;
        for byte in bytes.iter().filter(|byte| **byte < LIMIT) {
            if code.len() == 4 {
                code.push('-');
            }
            if code.len() == 9 {
                break;
            }
            code.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
        }
    }
    Ok(code)
}

/// A code as typed (any case, spaces or no dash) in its canonical `XXXX-XXXX` form, or `None`
/// when it cannot be a pairing code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let letters: String =
        typed.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
    if letters.len() != 8 || !letters.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("{}-{}", &letters[..4], &letters[4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_canonical_and_survive_sloppy_typing() {
        let code = pairing_code().unwrap();
        assert_eq!(code.len(), 9);
        assert_eq!(normalize_code(&code).as_deref(), Some(code.as_str()));
        assert_eq!(normalize_code(&code.to_lowercase().replace('-', " ")).as_deref(), Some(code.as_str()));
        assert_ne!(pairing_code().unwrap(), code);
        assert_eq!(normalize_code("abc"), None);
        assert_eq!(normalize_code("ABCD-EFG<"), None);
        assert_eq!(normalize_code("ABCD-EFGHI"), None);
    }

    proptest::proptest! {
        /// Whatever is typed: no panic, and a code that comes out is canonical and stable.
        #[test]
        fn any_typed_code_normalizes_safely(typed in ".{0,40}") {
            if let Some(code) = normalize_code(&typed) {
                proptest::prop_assert_eq!(code.len(), 9);
                proptest::prop_assert_eq!(normalize_code(&code), Some(code.clone()));
            }
        }
    }
}
