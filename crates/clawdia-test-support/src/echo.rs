//! The mock mode "an error body that echoes the caller's credentials": what a misbehaving
//! provider, or a proxy in front of one, does when it rejects a key. The body is the provider's
//! usual error JSON whose message repeats the API key as sent (`x-api-key`), the whole
//! `Authorization` header (`Bearer ...`), and the key inside a proxy's `Basic` credentials
//! (base64 of `clawdia:KEY`), so a test can check that none of those forms gets past the
//! gateway. Kept apart from `wire.rs` so other failure modes can be added without touching it.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use crate::wire::Wire;

/// The error response for a request that carried `headers`.
pub(crate) fn response(wire: Wire, code: u16, headers: &HeaderMap) -> Response {
    let header =
        |name: &str| headers.get(name).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let authorization = header("authorization");
    let key = header("x-api-key")
        .or_else(|| {
            authorization.as_deref().and_then(|value| value.strip_prefix("Bearer ")).map(str::to_string)
        })
        .unwrap_or_default();
    let message = format!(
        "invalid API key `{key}`; the request carried authorization: {}; proxy saw Proxy-Authorization: Basic {}",
        authorization.as_deref().unwrap_or("(none)"),
        base64(format!("clawdia:{key}").as_bytes()),
    );
    let body = match wire {
        Wire::Anthropic => {
            json!({"type": "error", "error": {"type": "authentication_error", "message": message}})
        }
        Wire::OpenAi => {
            json!({"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}})
        }
    };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::UNAUTHORIZED);
    crate::json_response(status, Bytes::from(body.to_string()))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let padded = [group[0], group.get(1).copied().unwrap_or(0), group.get(2).copied().unwrap_or(0)];
        let bits = (u32::from(padded[0]) << 16) | (u32::from(padded[1]) << 8) | u32::from(padded[2]);
        for (index, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if index <= group.len() {
                out.push(char::from(ALPHABET[((bits >> shift) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_4648_examples() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
