//! `clawdia bridge send TEXT` and `clawdia bridge verify [FILE|-]`: the administrator side's
//! one-way channel to user agents, by hand. `send` prints TEXT signed (one line) on stdout;
//! `verify` reads one message (a file, or stdin) and prints its body when it is authentic,
//! fresh (`[bridge] window_seconds`) and not seen before — it records the nonce, as the
//! receiving side does, so the same message verifies once. A refusal exits 1 with the reason on
//! stderr and is a severity-10 audit event.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Subcommand;

use crate::{Failure, Outcome, load_config};

#[derive(Subcommand)]
pub enum BridgeCommand {
    /// Print TEXT signed for the bridge (one line).
    Send { text: String },
    /// Check one bridge message (from FILE, or stdin with `-` or nothing): print its body when
    /// authentic and fresh; exit 1 with the reason when refused.
    Verify { file: Option<PathBuf> },
}

/// The most a message may be (the body and its envelope).
const MAX_MESSAGE: u64 = 1 << 20;

pub fn run(home: PathBuf, command: BridgeCommand) -> Outcome {
    let config = load_config(&home)?;
    match command {
        BridgeCommand::Send { text } => {
            let signed = clawdia_runtime::bridge::sign(&config, &text).map_err(Failure::config)?;
            println!("{signed}");
            Ok(())
        }
        BridgeCommand::Verify { file } => {
            let mut message = String::new();
            let read = match file.as_deref() {
                None => std::io::stdin().take(MAX_MESSAGE).read_to_string(&mut message),
                Some(path) if path.as_os_str() == "-" => {
                    std::io::stdin().take(MAX_MESSAGE).read_to_string(&mut message)
                }
                Some(path) => {
                    std::fs::File::open(path).and_then(|f| f.take(MAX_MESSAGE).read_to_string(&mut message))
                }
            };
            read.map_err(|e| format!("cannot read the message: {e}"))?;
            let broker = clawdia_store::Broker::open(&clawdia_runtime::state_dir(&home))?;
            let audit = clawdia_store::Store::open(&clawdia_runtime::state_dir(&home))?;
            match clawdia_runtime::bridge::verify(&config, &broker, &audit, &message)
                .map_err(Failure::config)?
            {
                Ok(body) => {
                    println!("{body}");
                    Ok(())
                }
                Err(refused) => Err(Failure::from(format!("refused: {refused}"))),
            }
        }
    }
}
