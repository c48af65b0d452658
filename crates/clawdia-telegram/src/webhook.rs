//! Webhook mode: Telegram posts each update to `[channels.telegram] webhook_url`, which reaches
//! the gateway's `/v1/telegram/webhook`. The [`WebhookReceiver`] is that route's hook: it checks
//! the secret Telegram sends with every post (made once and kept in `state/telegram.db`, given
//! to Telegram by `setWebhook`), stores the update before answering (so an update Telegram was
//! told is received is never lost, and one it delivers twice is handled once), and wakes the
//! channel, which handles it exactly as a polled one.

use std::sync::Arc;

use clawdia_core::{HookAnswer, InboundHook};
use serde_json::Value;
use tokio::sync::Notify;

use crate::store::Store;

/// The hook behind `/v1/telegram/webhook`.
pub struct WebhookReceiver {
    store: Arc<Store>,
    secret: String,
    /// Woken after each stored update; the channel waits on it.
    pub(crate) wake: Arc<Notify>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver").finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    pub(crate) fn new(store: Arc<Store>) -> Result<WebhookReceiver, crate::store::StoreError> {
        let secret = store.webhook_secret()?;
        Ok(WebhookReceiver { store, secret, wake: Arc::new(Notify::new()) })
    }

    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

#[async_trait::async_trait]
impl InboundHook for WebhookReceiver {
    async fn receive(&self, secret: Option<&str>, body: &[u8]) -> HookAnswer {
        if !secret.is_some_and(|given| crate::callback::same_secret(&self.secret, given)) {
            return HookAnswer::Unauthorized;
        }
        let update: Value = match serde_json::from_slice(body) {
            Ok(update) => update,
            Err(error) => return HookAnswer::Invalid(format!("not a Telegram update: {error}")),
        };
        let Some(id) = update.get("update_id").and_then(Value::as_i64) else {
            return HookAnswer::Invalid("not a Telegram update: no update_id".into());
        };
        let store = self.store.clone();
        let now = clawdia_core::time::now_ms();
        let stored = tokio::task::spawn_blocking(move || store.store_updates(&[(id, update)], now)).await;
        match stored {
            Ok(Ok(_)) => {
                // A permit is kept if the channel is busy, so no wake-up is missed.
                self.wake.notify_one();
                HookAnswer::Accepted
            }
            Ok(Err(error)) => HookAnswer::Failed(format!("the update could not be stored: {error}")),
            Err(_) => HookAnswer::Failed("the update could not be stored".into()),
        }
    }
}
