//! The Telegram channel as a daemon component: each run builds the channel afresh (a new Bot
//! API client, so a stalled connection is rebuilt) and polls until the gateway stops; a run that
//! ends in an error (the token refused, another poller, polls that keep failing) is restarted
//! with backoff and alerted by the daemon.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use clawdia_telegram::Telegram;
use clawdia_telegram::webhook::WebhookReceiver;

use crate::Runtime;
use crate::daemon::{CancellationToken, Component};

/// The component, when `[channels.telegram]` is configured.
pub fn component(
    runtime: &Runtime,
    voice: Option<Arc<dyn clawdia_core::VoiceNotes>>,
    webhook: Option<Arc<WebhookReceiver>>,
) -> Option<Component> {
    let config = runtime.config.channels.telegram.clone()?;
    let workspaces: HashMap<String, PathBuf> =
        runtime.config.agents.iter().map(|(name, agent)| (name.clone(), agent.workspace.clone())).collect();
    let owner = runtime.config.owner.telegram;
    let state_dir = crate::state_dir(&runtime.config.home);
    let gateway: Arc<dyn clawdia_core::Gateway> = runtime.gateway.clone();
    let audit = runtime.audit.clone();
    let notifier = runtime.notifier.clone();
    let drain = runtime.config.gateway.drain;
    Some(Component::new("telegram", move |token: CancellationToken| {
        let built = Telegram::new(
            config.clone(),
            owner,
            &state_dir,
            gateway.clone(),
            audit.clone(),
            notifier.clone(),
        );
        let voice = voice.clone();
        let workspaces = workspaces.clone();
        let webhook = webhook.clone();
        async move {
            let mut channel = built.map_err(|e| e.to_string())?.with_workspaces(workspaces);
            if let Some(voice) = voice {
                channel = channel.with_voice(voice);
            }
            if let Some(webhook) = webhook {
                channel = channel.with_webhook(webhook);
            }
            let channel = Arc::new(channel);
            channel.run(token.cancelled_owned(), drain).await
        }
    }))
}

/// The `telegram` alert route's sender, when a bot and the owner's user id are configured.
pub fn alert_channel(
    runtime: &Runtime,
) -> Result<Option<Arc<dyn clawdia_core::AlertChannel>>, crate::RuntimeError> {
    let Some(config) = &runtime.config.channels.telegram else { return Ok(None) };
    Telegram::alert_channel(config, runtime.config.owner.telegram, &crate::state_dir(&runtime.config.home))
        .map_err(|e| crate::RuntimeError::Io(e.to_string()))
}

/// The hook for `/v1/telegram/webhook` when the bot is in webhook mode. A bot whose state
/// cannot be opened has no route; its component reports the same failure.
pub fn webhook_receiver(runtime: &Runtime) -> Result<Option<Arc<WebhookReceiver>>, crate::RuntimeError> {
    let Some(config) = &runtime.config.channels.telegram else { return Ok(None) };
    Telegram::webhook_receiver(config, &crate::state_dir(&runtime.config.home))
        .map_err(|e| crate::RuntimeError::Io(e.to_string()))
}
