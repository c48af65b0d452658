//! Crash safety: a child process appends an assistant message with tool calls and is killed with
//! SIGKILL before the results are written; the parent then finds the calls answered by
//! synthetic results and carries on with the session.

use std::process::{Command, Stdio};

use clawdia_core::{Message, SessionStore};
use clawdia_store::Store;

use crate::{calls, stored, synthetic, wait_for_line};

const CHILD_ENV: &str = "CLAWDIA_STORE_KILLED_MID_TURN_CHILD";

#[test]
#[allow(clippy::disallowed_methods, reason = "re-runs this test binary as the child")]
fn killed_mid_turn_is_repaired_on_the_next_open() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        // The child: the gateway mid-turn, the model has asked for two tools.
        let store = Store::open(std::path::Path::new(&dir)).unwrap();
        store.open("main", "s-crash", "boundary-7").unwrap();
        store.append("s-crash", &[Message::user("clean up ~/Downloads")]).unwrap();
        store.append("s-crash", &[calls(&["c1", "c2"])]).unwrap();
        println!("TOOLS-RUNNING");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        std::process::exit(3);
    }

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::killed_mid_turn_is_repaired_on_the_next_open"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = wait_for_line(&mut child, "TOOLS-RUNNING");
    child.kill().unwrap(); // SIGKILL, as `kill -9`
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));

    let store = Store::open(dir.path()).unwrap();
    let before_repair = store.integrity_check().unwrap();
    assert_eq!(before_repair.len(), 2, "{before_repair:?}");

    let session = store.open("main", "s-crash", "new-boundary").unwrap();
    let expected =
        vec![Message::user("clean up ~/Downloads"), calls(&["c1", "c2"]), synthetic("c1"), synthetic("c2")];
    assert_eq!(session.repaired, 2);
    assert_eq!(session.messages, expected);
    assert_eq!(session.meta.boundary, "boundary-7");
    assert_eq!(stored(&store, "s-crash"), expected);

    store.append("s-crash", &[Message::assistant("Both tools were interrupted; shall I retry?")]).unwrap();
    let reopened = store.open("main", "s-crash", "x").unwrap();
    assert_eq!((reopened.repaired, reopened.messages.len()), (0, 5));
    assert!(store.integrity_check().unwrap().is_empty());
}
