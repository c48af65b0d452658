//! The web channel: the browser chat and Control UI served at `/` from assets embedded in the
//! binary (`assets`), signing a browser in with the gateway token or a one-time pairing code
//! into an HttpOnly, SameSite=Strict session cookie (`signin`), the WebSocket that carries turn
//! events and alerts with catch-up after a drop (`socket`, `hub`), and the Control endpoints
//! (`control`) over the runtime's `Console`.
//!
//! Invariants: a browser is the owner only through a live session found by its cookie (the
//! store keeps hashes); every cookie-authenticated request that changes state carries the
//! session's CSRF token and no foreign `Origin`; a socket upgrade with a foreign `Origin` is
//! refused; nothing a model, tool or alert wrote reaches the page except as JSON data.

pub(crate) mod assets;
pub mod control;
pub mod hub;
pub(crate) mod signin;
pub(crate) mod socket;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clawdia_core::{BrowserSession, BrowserStore};

pub use control::{Console, ConsoleError, ConsoleRequest};
pub use hub::Hub;

/// The cookie that carries a browser's session secret.
pub const COOKIE: &str = "clawdia_session";

/// Failed sign-ins allowed per client address within `FAILURE_WINDOW`, and in all.
const FAILURES_PER_PEER: u32 = 10;
const FAILURES_IN_ALL: u32 = 100;
const FAILURE_WINDOW: Duration = Duration::from_secs(600);

/// At most this many browser sockets at once.
pub const MAX_SOCKETS: usize = 64;

/// How often a browser's `last_seen_at` is written at most.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The web channel's settings.
#[derive(Debug, Clone)]
pub struct WebSettings {
    pub session_ttl: Duration,
    /// The address browsers use when it is not the listen address (`https://...`): cookies
    /// get `Secure` when it is https.
    pub public_url: Option<String>,
}

/// Everything the web channel's handlers share.
pub struct Web {
    pub settings: WebSettings,
    pub store: Arc<dyn BrowserStore>,
    pub console: Arc<dyn Console>,
    pub hub: Arc<Hub>,
    failures: Mutex<Failures>,
    touched: Mutex<HashMap<String, i64>>,
    pub(crate) sockets: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Web").field("settings", &self.settings).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Failures {
    started: Option<Instant>,
    all: u32,
    by_peer: HashMap<IpAddr, u32>,
}

impl Web {
    pub fn new(
        settings: WebSettings,
        store: Arc<dyn BrowserStore>,
        console: Arc<dyn Console>,
        hub: Arc<Hub>,
    ) -> Web {
        Web {
            settings,
            store,
            console,
            hub,
            failures: Mutex::default(),
            touched: Mutex::default(),
            sockets: Arc::new(tokio::sync::Semaphore::new(MAX_SOCKETS)),
        }
    }

    /// The live browser session whose secret `cookie_header` carries, noting the visit.
    pub(crate) fn session_from_cookies(&self, cookie_header: &str) -> Option<BrowserSession> {
        let secret = cookie_value(cookie_header, COOKIE)?;
        let now = clawdia_core::time::now_ms();
        let session = match self.store.session_by_secret(secret, now) {
            Ok(found) => found?,
            Err(error) => {
                tracing::warn!(%error, "cannot read the browser sessions");
                return None;
            }
        };
        let due = {
            let mut touched = self.touched.lock().unwrap_or_else(PoisonError::into_inner);
            let last = touched.entry(session.id.clone()).or_insert(0);
            let due = now - *last >= TOUCH_EVERY_MS;
            if due {
                *last = now;
            }
            due
        };
        if due && let Err(error) = self.store.touch(&session.id, now) {
            tracing::debug!(%error, "cannot note a browser's visit");
        }
        Some(session)
    }

    /// How long `peer` must wait before trying to sign in again, if it must.
    pub(crate) fn locked_out(&self, peer: Option<IpAddr>) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let started = failures.started?;
        let elapsed = started.elapsed();
        if elapsed >= FAILURE_WINDOW {
            *failures = Failures::default();
            return None;
        }
        let by_peer = peer.and_then(|peer| failures.by_peer.get(&peer).copied()).unwrap_or(0);
        (failures.all >= FAILURES_IN_ALL || by_peer >= FAILURES_PER_PEER).then(|| FAILURE_WINDOW - elapsed)
    }

    pub(crate) fn failed_sign_in(&self, peer: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.started.get_or_insert_with(Instant::now);
        failures.all += 1;
        if let Some(peer) = peer {
            *failures.by_peer.entry(peer).or_insert(0) += 1;
        }
    }

    /// Whether the cookie should be `Secure` (the browser reaches the gateway over https).
    pub(crate) fn secure_cookie(&self) -> bool {
        self.settings.public_url.as_deref().is_some_and(|url| url.starts_with("https://"))
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name && !value.is_empty()).then_some(value)
    })
}

/// Whether `origin` (an `Origin` header) is the gateway itself: the request's own `host`, or
/// the configured public URL.
pub(crate) fn same_origin(origin: &str, host: Option<&str>, public_url: Option<&str>) -> bool {
    if public_url.is_some_and(|url| url.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = host else { return false };
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|rest| rest.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_origins_are_read_strictly() {
        assert_eq!(cookie_value("a=1; clawdia_session=abc; b=2", COOKIE), Some("abc"));
        assert_eq!(cookie_value("xclawdia_session=abc", COOKIE), None);
        assert_eq!(cookie_value("clawdia_session=", COOKIE), None);
        assert!(same_origin("http://127.0.0.1:18789", Some("127.0.0.1:18789"), None));
        assert!(!same_origin("http://evil.example", Some("127.0.0.1:18789"), None));
        assert!(!same_origin("null", Some("127.0.0.1:18789"), None));
        assert!(!same_origin("http://127.0.0.1:18789.evil.example", Some("127.0.0.1:18789"), None));
        assert!(same_origin(
            "https://claw.example.org",
            Some("127.0.0.1:1"),
            Some("https://claw.example.org")
        ));
    }

    proptest::proptest! {
        /// Headers come from anyone: any text is parsed without a panic, a found cookie value
        /// is a non-empty piece of the header, and an origin is the gateway's only when it
        /// names exactly its host.
        #[test]
        fn any_header_text_is_parsed_safely(header in ".{0,200}", host in "[a-z0-9.:]{1,30}") {
            if let Some(value) = cookie_value(&header, COOKIE) {
                proptest::prop_assert!(!value.is_empty() && header.contains(value));
            }
            if same_origin(&header, Some(&host), None) {
                let rest = header.strip_prefix("http://").or_else(|| header.strip_prefix("https://"));
                proptest::prop_assert!(rest.is_some_and(|rest| rest.eq_ignore_ascii_case(&host)));
            }
        }
    }
}
