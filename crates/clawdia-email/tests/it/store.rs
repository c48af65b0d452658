//! `email.db`: a message is stored in the transaction that moves the read position (taking it
//! twice stores it once), pending ones survive reopening, one found mid-turn at start becomes
//! `interrupted` and is never pending again, and a thread's ids find their session.

use clawdia_email::store::Store;

#[test]
fn messages_survive_a_restart_and_an_interrupted_turn_is_never_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.position("INBOX").unwrap(), None);
    store.reset_position("INBOX", 7, 10).unwrap();
    store.take("INBOX", 7, 11, b"first").unwrap();
    store.take("INBOX", 7, 11, b"first again").unwrap();
    store.take("INBOX", 7, 12, b"second").unwrap();
    assert_eq!(store.position("INBOX").unwrap(), Some((7, 12)));
    let pending = store.pending().unwrap();
    assert_eq!(
        pending.iter().map(|m| (m.uid, m.raw.clone())).collect::<Vec<_>>(),
        [(11, b"first".to_vec()), (12, b"second".to_vec())]
    );
    // The first was mid-turn when the process died.
    store.mark(pending[0].seq, "handling", "").unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.interrupt_handling().unwrap(), [pending[0].seq]);
    let left: Vec<u32> = store.pending().unwrap().iter().map(|m| m.uid).collect();
    assert_eq!(left, [12], "the interrupted one is not pending again; the untouched one is");
    let states = store.states().unwrap();
    assert_eq!(states[0].1, "interrupted");
    // A too-large mail is recorded without content and the position moves past it.
    store.skip("INBOX", 7, 15, "too large").unwrap();
    assert_eq!(store.position("INBOX").unwrap(), Some((7, 15)));
    assert!(store.pending().unwrap().iter().all(|m| m.uid != 15));
    // Threads.
    let ids = ["<a@x>".to_string(), "<b@y>".to_string()];
    store.join_thread(&ids, "main", "s-1").unwrap();
    assert_eq!(
        store.thread(&["<zzz@x>".into(), "<b@y>".into()]).unwrap(),
        Some(("main".into(), "s-1".into()))
    );
    assert_eq!(store.thread(&["<zzz@x>".into()]).unwrap(), None);
}
