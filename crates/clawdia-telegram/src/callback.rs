//! Approve / Deny buttons under an approval request: each button's `callback_data` names the
//! request and the decision and carries an HMAC-SHA256 over both with a key only this gateway
//! has (kept in `telegram.db`), so a button cannot be forged for another request or turned
//! into the other decision. Pressing a button twice, or an old one, asks the broker to decide a
//! request that is decided already, which it refuses: no replay decides twice.

use clawdia_core::crypto::hmac_sha256;

/// The prefix of approval buttons' data.
const PREFIX: &str = "ap";
/// Bytes of the MAC kept (hex doubles it); 128 bits.
const MAC_BYTES: usize = 16;

/// Signs and checks approval buttons.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

fn verb(approve: bool) -> &'static str {
    if approve { "a" } else { "d" }
}

impl Signer {
    pub fn new(key: Vec<u8>) -> Signer {
        Signer { key }
    }

    fn mac(&self, request: &str, approve: bool) -> String {
        let mac = hmac_sha256(&self.key, format!("approval:{request}:{}", verb(approve)).as_bytes());
        clawdia_core::hex(&mac[..MAC_BYTES])
    }

    /// The button data for deciding `request` (`ap:<id>:<a|d>:<mac>`, within Telegram's 64
    /// bytes for ids up to 24 characters).
    pub fn sign(&self, request: &str, approve: bool) -> String {
        format!("{PREFIX}:{request}:{}:{}", verb(approve), self.mac(request, approve))
    }

    /// The request and decision of button data this gateway signed; `None` for anything else.
    pub fn verify(&self, data: &str) -> Option<(String, bool)> {
        let mut parts = data.split(':');
        let (Some(PREFIX), Some(request), Some(decision), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let approve = match decision {
            "a" => true,
            "d" => false,
            _ => return None,
        };
        if request.is_empty() || !request.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return None;
        }
        let expected = self.mac(request, approve);
        same_secret(&expected, mac).then(|| (request.to_string(), approve))
    }
}

/// Whether `given` is `expected`, in time that does not depend on where they differ.
pub(crate) fn same_secret(expected: &str, given: &str) -> bool {
    clawdia_core::crypto::same_secret(expected.as_bytes(), given.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_verify_only_as_signed() {
        let signer = Signer::new(b"k".repeat(32));
        let approve = signer.sign("3f9a1c2b", true);
        assert!(approve.len() <= 64, "{approve}");
        assert_eq!(signer.verify(&approve), Some(("3f9a1c2b".to_string(), true)));
        let deny = signer.sign("3f9a1c2b", false);
        assert_eq!(signer.verify(&deny), Some(("3f9a1c2b".to_string(), false)));
        // The approve button's MAC on the deny verb, another request, another key: refused.
        let flipped = approve.replacen(":a:", ":d:", 1);
        assert_eq!(signer.verify(&flipped), None);
        let other = approve.replacen("3f9a1c2b", "00000000", 1);
        assert_eq!(signer.verify(&other), None);
        assert_eq!(Signer::new(b"x".repeat(32)).verify(&approve), None);
        assert_eq!(signer.verify("ap:3f9a1c2b:a"), None);
        assert_eq!(signer.verify(&format!("{approve}:extra")), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_button_data_never_verifies(data in ".{0,80}") {
            let signer = Signer::new(b"k".repeat(32));
            proptest::prop_assert_eq!(signer.verify(&data), None);
        }
    }
}
