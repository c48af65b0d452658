//! The email channel as a daemon component: each run connects to the IMAP server afresh and
//! reads the mailbox (IDLE, or polling) until the gateway stops; a run that ends in an error (a
//! refused login, a dropped connection) is restarted with backoff and alerted by the daemon.
//! Also the `email` alert route's sender.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use clawdia_email::Email;
use clawdia_email::auth::Verifier;

use crate::Runtime;
use crate::daemon::{CancellationToken, Component};

/// The component, when `[channels.email]` is configured.
pub fn component(runtime: &Runtime) -> Option<Component> {
    let config = runtime.config.channels.email.clone()?;
    let workspaces: HashMap<String, PathBuf> =
        runtime.config.agents.iter().map(|(name, agent)| (name.clone(), agent.workspace.clone())).collect();
    let owner = runtime.config.owner.email.clone();
    let state_dir = crate::state_dir(&runtime.config.home);
    let gateway: Arc<dyn clawdia_core::Gateway> = runtime.gateway.clone();
    let audit = runtime.audit.clone();
    Some(Component::new("email", move |token: CancellationToken| {
        let built = Verifier::from_env().map_err(|e| format!("email: {e}")).and_then(|verifier| {
            Email::new(config.clone(), owner.clone(), &state_dir, gateway.clone(), audit.clone(), verifier)
                .map_err(|e| e.to_string())
        });
        let workspaces = workspaces.clone();
        async move {
            let channel = Arc::new(built?.with_workspaces(workspaces));
            channel.run(token.cancelled_owned()).await.map_err(|e| format!("email: {e}"))
        }
    }))
}

/// The `email` alert route's sender, when the mail channel and the owner's address are
/// configured.
pub fn alert_channel(
    runtime: &Runtime,
) -> Result<Option<Arc<dyn clawdia_core::AlertChannel>>, crate::RuntimeError> {
    let Some(config) = &runtime.config.channels.email else { return Ok(None) };
    Email::alert_channel(config, runtime.config.owner.email.as_deref())
        .map_err(|e| crate::RuntimeError::Io(e.to_string()))
}
