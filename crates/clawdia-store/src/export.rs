//! JSONL export of one transcript: one object per message, `seq` and an RFC 3339 UTC `at` first,
//! then the message's own fields exactly as `clawdia-core` serializes them (`role` and the rest).

use std::io::Write;

use clawdia_core::StoreError;

use crate::{Store, StoredMessage};
use clawdia_core::time::rfc3339_utc;

impl Store {
    /// Writes session `session_id` to `out` as JSONL and returns the number of lines written.
    /// `NotFound` for an unknown session.
    pub fn export_jsonl(&self, session_id: &str, out: &mut dyn Write) -> Result<usize, StoreError> {
        let messages = self.messages(session_id)?;
        let write_error =
            |error: std::io::Error| StoreError::Database(format!("writing the export: {error}"));
        for stored in &messages {
            let line = export_line(stored)?;
            out.write_all(line.as_bytes()).map_err(write_error)?;
            out.write_all(b"\n").map_err(write_error)?;
        }
        out.flush().map_err(write_error)?;
        Ok(messages.len())
    }
}

/// `{"seq":N,"at":"…Z","role":…,…}` for one message.
pub(crate) fn export_line(stored: &StoredMessage) -> Result<String, StoreError> {
    let encode_error =
        |error: serde_json::Error| StoreError::Database(format!("encoding a message: {error}"));
    let message = serde_json::to_string(&stored.message).map_err(encode_error)?;
    let fields = message
        .strip_prefix('{')
        .ok_or_else(|| StoreError::Database("a message did not encode as a JSON object".to_string()))?;
    let at = serde_json::to_string(&rfc3339_utc(stored.at)).map_err(encode_error)?;
    Ok(format!("{{\"seq\":{},\"at\":{at},{fields}", stored.seq))
}
