//! Randomness for everything that must not be guessed — gateway tokens, session ids, trust-marker
//! boundaries, response and tool-call ids — comes from one function, [`fill`], on the operating
//! system's CSPRNG (the `getrandom` system call, `/dev/urandom` on kernels without it). There is
//! no fallback: when the OS cannot give random bytes, [`fill`] returns [`RandomError`] and the
//! caller fails closed (no token is written, no turn starts) instead of minting a predictable
//! value from the clock or the process id.
//!
//! This is the one place `clawdia-core` asks the operating system for something: like reading
//! the clock (`time::now_ms`) it is a system call that opens no file, socket or database, so the
//! crate stays free of IO in the sense its invariant means, and every crate (foundation or
//! capability) can use the same generator without a new crate-to-crate edge.

/// The OS random number generator failed; the message says why, and that nothing was minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the operating system's random number generator failed ({0}); refusing to make an id or token without it"
)]
pub struct RandomError(String);

/// Fills `bytes` from the OS CSPRNG, or fails.
pub fn fill(bytes: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(bytes).map_err(|error| RandomError(error.to_string()))
}

/// `bytes` random bytes as lower-case hex (`2 * bytes` characters).
pub fn hex(bytes: usize) -> Result<String, RandomError> {
    hex_from(fill, bytes)
}

/// A fresh session id: `s-` and 16 random hex digits (64 bits).
pub fn session_id() -> Result<String, RandomError> {
    Ok(format!("s-{}", hex(8)?))
}

/// `bytes` bytes from `source` as hex; `source` is the OS generator except in tests, which
/// check that a failing generator is an error and never a weaker id.
fn hex_from(
    source: impl FnOnce(&mut [u8]) -> Result<(), RandomError>,
    bytes: usize,
) -> Result<String, RandomError> {
    let mut buffer = vec![0u8; bytes];
    source(&mut buffer)?;
    Ok(crate::text::hex(&buffer))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn hex_ids_are_distinct_lower_case_hex_of_the_asked_length() {
        let ids: HashSet<String> = (0..2000).map(|_| hex(16).unwrap()).collect();
        assert_eq!(ids.len(), 2000, "2000 draws of 128 bits never repeat");
        for id in &ids {
            assert_eq!(id.len(), 32);
            assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
        }
        assert_eq!(hex(0).unwrap(), "");
        assert_eq!(hex(32).unwrap().len(), 64);
    }

    #[test]
    fn session_ids_are_s_dash_and_sixteen_hex_digits() {
        let id = session_id().unwrap();
        assert!(id.starts_with("s-") && id.len() == 18, "{id}");
        assert_ne!(session_id().unwrap(), session_id().unwrap());
    }

    #[test]
    fn the_bytes_come_from_the_source_and_are_not_all_zero() {
        // 64 random bytes all zero has probability 2^-512: a generator that was never called
        // (the buffer left as allocated) fails here.
        let mut bytes = [0u8; 64];
        fill(&mut bytes).unwrap();
        assert!(bytes.iter().any(|b| *b != 0));
        let constant = |value: u8| {
            move |buffer: &mut [u8]| {
                buffer.fill(value);
                Ok(())
            }
        };
        assert_eq!(hex_from(constant(0xab), 3).unwrap(), "ababab");
    }

    #[test]
    fn a_failing_generator_is_an_error_not_a_weaker_id() {
        let failing = |_: &mut [u8]| Err(RandomError("getrandom: unsupported".to_string()));
        let error = hex_from(failing, 16).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("random number generator failed"), "{message}");
        assert!(message.contains("getrandom: unsupported"), "{message}");
        // The positive control: the same path with a working source gives an id.
        let ones = |buffer: &mut [u8]| {
            buffer.fill(1);
            Ok(())
        };
        assert_eq!(hex_from(ones, 2).unwrap(), "0101");
    }
}
