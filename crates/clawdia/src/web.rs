//! `clawdia web pair` and `clawdia web sessions [--revoke ID]`: a one-time code (with its link
//! and a QR code for a phone) that signs one browser in to the web UI, and the signed-in
//! browsers. Both work on `state/web.db` directly, whether or not the gateway runs; a code made
//! while it is down works once it is up.

use std::path::PathBuf;

use clawdia_core::BrowserStore as _;

use crate::{Failure, Outcome, WebCommand, load_config};

pub async fn run(home: PathBuf, command: WebCommand) -> Outcome {
    let config = load_config(&home)?;
    if !config.channels.web.enabled {
        return Err(Failure::config(
            "the web UI is off: set `[channels.web] enabled = true` in clawdia.toml",
        ));
    }
    let store = clawdia_store::Browsers::open(&clawdia_runtime::state_dir(&home)).map_err(Failure::from)?;
    match command {
        WebCommand::Pair { json } => {
            let code = clawdia_core::browser::pairing_code()?;
            let now = clawdia_core::time::now_ms();
            let ttl = config.channels.web.pair_ttl;
            let expires = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
            store.add_code(&code, now, expires).map_err(Failure::from)?;
            let base = match &config.channels.web.public_url {
                Some(url) => url.clone(),
                None => match clawdia_runtime::remote::find(&home).await {
                    Some(addr) => format!("http://{addr}"),
                    None => format!(
                        "http://{}",
                        std::net::SocketAddr::new(config.gateway.bind, config.gateway.port)
                    ),
                },
            };
            let url = format!("{base}/#code={code}");
            let minutes = ttl.as_secs().div_ceil(60);
            if json {
                let out = serde_json::json!({"code": code, "url": url, "expires_at": expires});
                println!("{out}");
                return Ok(());
            }
            println!("Pairing code: {code}   (signs in one browser; expires in {minutes} min)");
            println!("Open {url}");
            println!("or scan this with the phone's camera:\n");
            match qr(&url) {
                Some(lines) => println!("{lines}"),
                None => println!("(the link is too long for a QR code)"),
            }
            if config.gateway.bind.is_loopback() && config.channels.web.public_url.is_none() {
                println!(
                    "note: the gateway listens on {} only; a phone reaches it through a tunnel or reverse proxy (set [channels.web] public_url)",
                    config.gateway.bind
                );
            }
            Ok(())
        }
        WebCommand::Sessions { revoke: Some(id), .. } => {
            if store.revoke(&id, clawdia_core::time::now_ms()).map_err(Failure::from)? {
                println!("signed out browser {id}");
                Ok(())
            } else {
                Err(Failure::from(format!("no signed-in browser `{id}` (see `clawdia web sessions`)")))
            }
        }
        WebCommand::Sessions { revoke: None, json } => {
            let sessions = store.sessions(clawdia_core::time::now_ms()).map_err(Failure::from)?;
            if json {
                println!("{}", serde_json::to_string(&sessions)?);
                return Ok(());
            }
            if sessions.is_empty() {
                println!("no browser is signed in (`clawdia web pair` makes a sign-in code)");
            }
            for session in &sessions {
                println!(
                    "{}  {}  signed in {}  last seen {}  expires {}",
                    session.id,
                    session.label,
                    clawdia_core::time::rfc3339_utc(session.created_at),
                    clawdia_core::time::rfc3339_utc(session.last_seen_at),
                    clawdia_core::time::rfc3339_utc(session.expires_at),
                );
            }
            Ok(())
        }
    }
}

/// `text` as a QR code drawn with half blocks (two modules per character row), with the quiet
/// zone the standard asks for; dark modules are drawn as spaces on a light block so it scans on
/// dark terminals too.
fn qr(text: &str) -> Option<String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let quiet = 2usize;
    let size = width + 2 * quiet;
    let dark = |x: usize, y: usize| {
        x >= quiet
            && y >= quiet
            && x < width + quiet
            && y < width + quiet
            && colors[(y - quiet) * width + (x - quiet)] == qrcode::Color::Dark
    };
    let mut out = String::new();
    for y in (0..size).step_by(2) {
        for x in 0..size {
            let top = dark(x, y);
            let bottom = y + 1 < size && dark(x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => ' ',
                (true, false) => '▄',
                (false, true) => '▀',
                (false, false) => '█',
            });
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_qr_code_is_square_with_a_quiet_zone() {
        let drawn = super::qr("http://127.0.0.1:18789/#code=ABCD-EFGH").unwrap();
        let lines: Vec<&str> = drawn.lines().collect();
        let width = lines[0].chars().count();
        assert!(width >= 25, "{width}");
        assert_eq!(lines.len(), width.div_ceil(2));
        // The quiet zone is light all round.
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(lines.iter().all(|line| line.starts_with('█') && line.ends_with('█')));
    }
}
