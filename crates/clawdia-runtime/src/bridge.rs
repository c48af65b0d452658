//! The bridge's two ends as the runtime uses them: the key (`[bridge] key`; the default file
//! `secrets/bridge-key` is made on first use, 32 random bytes as hex, mode 0600), signing, and
//! verifying against the nonces kept in `broker.db`, where every refusal is a severity-10 audit
//! event (`bridge_refused`).

use std::path::Path;

use clawdia_config::Config;
use clawdia_core::bridge::{NonceLog, Refused};
use clawdia_core::{AuditEvent, AuditSink, Severity};
use clawdia_store::Broker;

use crate::RuntimeError;

/// The shared key, made first when it is the default file and missing.
pub fn key(config: &Config) -> Result<Vec<u8>, RuntimeError> {
    let settings = &config.bridge;
    if settings.default_key
        && let clawdia_config::SecretRef::File(path) = &settings.key
        && !path.exists()
    {
        make_key(path)?;
    }
    let secret = settings.key.resolve().map_err(|e| RuntimeError::Io(format!("bridge.key: {e}")))?;
    let key = secret.expose().trim().as_bytes().to_vec();
    if key.len() < 16 {
        return Err(RuntimeError::Io("bridge.key: the key is shorter than 16 bytes".into()));
    }
    Ok(key)
}

fn make_key(path: &Path) -> Result<(), RuntimeError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let failed = |e: std::io::Error| RuntimeError::Io(format!("{}: {e}", path.display()));
    let hex = clawdia_core::random::hex(32).map_err(|e| RuntimeError::Io(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut file) => file.write_all(format!("{hex}\n").as_bytes()).map_err(failed),
        // Made meanwhile by another process: use that one.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(failed(error)),
    }
}

/// `body` signed now, one line.
pub fn sign(config: &Config, body: &str) -> Result<String, RuntimeError> {
    let key = key(config)?;
    clawdia_core::bridge::sign(&key, body, clawdia_core::time::now_ms() / 1000)
        .map_err(|e| RuntimeError::Io(e.to_string()))
}

/// The nonces of `broker.db`, forgetting those older than twice the window.
struct Nonces<'a> {
    broker: &'a Broker,
    forget_before: i64,
}

impl NonceLog for Nonces<'_> {
    fn record(&self, nonce: &str, ts: i64) -> Result<bool, String> {
        self.broker.record_nonce(nonce, ts, self.forget_before).map_err(|e| e.to_string())
    }
}

/// The body of `message` when it is authentic, fresh and new; a refusal is audited.
pub fn verify(
    config: &Config,
    broker: &Broker,
    audit: &dyn AuditSink,
    message: &str,
) -> Result<Result<String, Refused>, RuntimeError> {
    let key = key(config)?;
    let now = clawdia_core::time::now_ms() / 1000;
    let window = config.bridge.window.as_secs();
    let window_i64 = i64::try_from(window).unwrap_or(i64::MAX / 4);
    let nonces = Nonces { broker, forget_before: now - 2 * window_i64 };
    let verdict = clawdia_core::bridge::verify(&key, message, now, window, &nonces);
    if let Err(refused) = &verdict {
        audit.record(AuditEvent::new(
            "bridge_refused",
            Severity::HIGH,
            format!("a bridge message was refused: {refused}"),
        ));
    }
    Ok(verdict)
}
