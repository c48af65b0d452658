//! `clawdia bridge send|verify` through the binary: a signed message verifies once (the nonce
//! is recorded, so the same message a second time is a replay), and forgery, another key,
//! clock skew past the window and truncation are refused with exit 1 and the reason, each a
//! severity-10 audit event. The key is made on first use as a 0600 file.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Output, Stdio};

use crate::support::{Home, stderr, stdout};

fn verify(home: &Home, message: &str) -> Output {
    let mut child = home
        .command(&["bridge", "verify"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_bridge_message_verifies_once_and_forgeries_replays_skew_and_truncation_are_refused() {
    let home = Home::new();
    let out = home.run(&["bridge", "send", "nginx was restarted at 10:02"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let message = stdout(&out).trim().to_string();
    let key_file = home.path().join("secrets/bridge-key");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);

    let out = verify(&home, &message);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "nginx was restarted at 10:02\n");

    let refused = |message: &str, reason: &str| {
        let out = verify(&home, message);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(stdout(&out).is_empty(), "a refused body was printed");
        assert!(stderr(&out).contains(reason), "{}", stderr(&out));
    };
    refused(&message, "refused: a replay");
    refused(&message.replace("10:02", "10:03"), "the signature does not match");
    refused(&message[..message.len() / 2], "not a bridge message (truncated or malformed");
    // Signed with another key (another home's).
    let other = Home::new();
    let foreign = stdout(&other.run(&["bridge", "send", "nginx was restarted at 10:02"])).trim().to_string();
    refused(&foreign, "the signature does not match");
    // Signed with the right key, but ten minutes ago, or ten minutes ahead.
    let key = std::fs::read_to_string(&key_file).unwrap();
    let now = clawdia_core::time::now_ms() / 1000;
    for skew in [-600, 600] {
        let stale = clawdia_core::bridge::sign(key.trim().as_bytes(), "late news", now + skew).unwrap();
        refused(&stale, "outside the 300 s window");
    }
    // Positive control for the clock check: within the window it verifies.
    let recent = clawdia_core::bridge::sign(key.trim().as_bytes(), "recent news", now - 200).unwrap();
    assert_eq!(stdout(&verify(&home, &recent)), "recent news\n");
    // Every refusal is a severity-10 audit event.
    let status = stdout(&home.run(&["status"]));
    assert!(status.contains("bridge_refused"), "{status}");
}
