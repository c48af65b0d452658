//! `clawdia telegram pair CODE`: lets in the Telegram user who asked to talk to the bot and got
//! CODE (with `dm_policy = "pairing"`), and tells them in their chat. Works on
//! `state/telegram.db` directly, whether or not the gateway runs.

use std::path::PathBuf;

use crate::{Failure, Outcome, TelegramCommand, load_config};

pub async fn run(home: PathBuf, command: TelegramCommand) -> Outcome {
    let config = load_config(&home)?;
    let Some(telegram) = config.channels.telegram.clone() else {
        return Err(Failure::config(
            "no Telegram bot is configured (add [channels.telegram] to clawdia.toml)",
        ));
    };
    match command {
        TelegramCommand::Pair { code } => {
            let store = clawdia_telegram::Telegram::open_store(&clawdia_runtime::state_dir(&home))
                .map_err(|e| Failure::from(e.to_string()))?;
            let typed =
                clawdia_core::browser::normalize_code(&code).unwrap_or_else(|| code.trim().to_string());
            let approved = store
                .approve(&typed, clawdia_core::time::now_ms())
                .map_err(|e| Failure::from(e.to_string()))?
                .ok_or_else(|| {
                    Failure::from(format!(
                        "no open pairing request with code `{code}` (the person gets a code when they first write to the bot)"
                    ))
                })?;
            let who = match &approved.username {
                Some(name) => format!("@{name} (telegram:{})", approved.user_id),
                None => format!("telegram:{}", approved.user_id),
            };
            println!("{who} can talk to the bot now");
            // Tell them; the pairing holds even if this message cannot be sent.
            clawdia_runtime::install_crypto_provider();
            let sent = match telegram.token.resolve() {
                Ok(token) => {
                    match clawdia_telegram::api::Api::new(
                        &telegram.api_root,
                        token.expose(),
                        telegram.poll_timeout,
                    ) {
                        Ok(api) => api
                            .send_message(
                                approved.chat_id,
                                "You're in: the owner let you talk to me. Say hello!",
                                false,
                            )
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string()),
                        Err(error) => Err(error.to_string()),
                    }
                }
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = sent {
                eprintln!("note: could not tell them on Telegram: {error}");
            }
            Ok(())
        }
    }
}
