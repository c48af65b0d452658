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
            clawdia_runtime::install_crypto_provider();
            let paired =
                clawdia_telegram::Telegram::pair(&telegram, &clawdia_runtime::state_dir(&home), &code)
                    .await
                    .map_err(|e| Failure::from(e.to_string()))?;
            println!("{} can talk to the bot now", paired.who);
            if let Err(error) = paired.told {
                eprintln!("note: could not tell them on Telegram: {error}");
            }
            Ok(())
        }
    }
}
