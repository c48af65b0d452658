//! The hub: every event the open browsers see — the owner's messages, the turn events of turns
//! started from the web, approval changes, alerts — numbered in one sequence per gateway boot
//! and broadcast to every socket. The last events are kept so a socket that reconnects after a
//! drop catches up on exactly what it missed (`since`); when it cannot (a restart: another
//! boot, or a gap older than the buffer) the browser is told to reload from HTTP instead, so
//! nothing is lost or shown twice. Every frame is redacted once, here.
//!
//! The hub also owns the web's running turns: their abort handles (for `stop`), the sessions
//! they hold (one turn per session at a time) and the drain at shutdown.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clawdia_core::{Alert, LiveAlerts, UnixMillis};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast, watch};

/// Events kept for catching up, by count and by bytes.
const KEEP_EVENTS: usize = 4_096;
const KEEP_BYTES: usize = 8 << 20;

/// One numbered event as sent: `(seq, JSON text)`.
pub type Numbered = (u64, Arc<str>);

/// What a (re)connecting socket gets.
pub struct Subscription {
    pub boot: String,
    /// The last `seq` handed out when the socket subscribed.
    pub seq: u64,
    /// The events after the client's `since`, oldest first (empty when `resync`).
    pub replay: Vec<Numbered>,
    pub resync: bool,
    pub live: broadcast::Receiver<Numbered>,
}

#[derive(Default)]
struct Kept {
    seq: u64,
    events: VecDeque<Numbered>,
    bytes: usize,
}

/// A running web turn.
struct Running {
    abort: tokio::task::AbortHandle,
    session: Option<String>,
}

/// The browsers' event stream and the web's running turns.
pub struct Hub {
    boot: String,
    kept: Mutex<Kept>,
    tx: broadcast::Sender<Numbered>,
    turns: Mutex<HashMap<String, Running>>,
    /// Woken when a turn ends (the drain waits on it).
    ended: Notify,
    /// Browser sessions revoked while their sockets are open: the sockets close.
    revoked: broadcast::Sender<String>,
    /// Set at shutdown: sockets close (going away) and browsers reconnect to the next boot.
    closing: watch::Sender<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("boot", &self.boot).finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub for this boot of the gateway; an error when the OS cannot give the boot id's
    /// random bytes.
    pub fn new() -> Result<Hub, clawdia_core::random::RandomError> {
        let (tx, _) = broadcast::channel(1_024);
        let (revoked, _) = broadcast::channel(16);
        Ok(Hub {
            boot: clawdia_core::random::hex(8)?,
            kept: Mutex::default(),
            tx,
            turns: Mutex::default(),
            ended: Notify::new(),
            revoked,
            closing: watch::channel(false).0,
        })
    }

    pub fn boot(&self) -> &str {
        &self.boot
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.turns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers `event` (a JSON object), keeps it and sends it to every socket; returns its seq.
    pub fn publish(&self, mut event: Value) -> u64 {
        let mut kept = self.kept();
        kept.seq += 1;
        let seq = kept.seq;
        if let Value::Object(map) = &mut event {
            map.insert("seq".into(), json!(seq));
        }
        let text: Arc<str> = Arc::from(clawdia_core::redact::redact_string(event.to_string()));
        kept.bytes += text.len();
        kept.events.push_back((seq, text.clone()));
        while kept.events.len() > KEEP_EVENTS || (kept.bytes > KEEP_BYTES && kept.events.len() > 1) {
            if let Some((_, old)) = kept.events.pop_front() {
                kept.bytes -= old.len();
            }
        }
        // Sent under the lock, so the live order is the kept order.
        let _ = self.tx.send((seq, text));
        seq
    }

    /// Subscribes a socket that last saw `since` of boot `boot`.
    pub fn subscribe(&self, boot: Option<&str>, since: Option<u64>) -> Subscription {
        let kept = self.kept();
        let live = self.tx.subscribe();
        let first = kept.events.front().map_or(kept.seq + 1, |(seq, _)| *seq);
        let covered = match (boot, since) {
            (Some(boot), Some(since)) if boot == self.boot => since <= kept.seq && since + 1 >= first,
            _ => false,
        };
        let replay = match (covered, since) {
            (true, Some(since)) => kept.events.iter().filter(|(seq, _)| *seq > since).cloned().collect(),
            _ => Vec::new(),
        };
        Subscription { boot: self.boot.clone(), seq: kept.seq, replay, resync: !covered, live }
    }

    /// Registers turn `turn` on `session` (None: a new session); refuses when a web turn is
    /// running in that session already.
    pub fn start_turn(
        &self,
        turn: &str,
        session: Option<&str>,
        abort: tokio::task::AbortHandle,
    ) -> Result<(), String> {
        let mut turns = self.turns();
        if let Some(session) = session
            && turns.values().any(|running| running.session.as_deref() == Some(session))
        {
            abort.abort();
            return Err(format!(
                "a turn is already running in session {session}: wait for it or stop it first"
            ));
        }
        turns.insert(turn.to_string(), Running { abort, session: session.map(str::to_string) });
        Ok(())
    }

    /// Notes the session a new-session turn was given.
    pub fn turn_session(&self, turn: &str, session: &str) {
        if let Some(running) = self.turns().get_mut(turn) {
            running.session = Some(session.to_string());
        }
    }

    /// Takes turn `turn` off the running list; false when it was not there (stopped already).
    pub fn end_turn(&self, turn: &str) -> bool {
        let removed = self.turns().remove(turn).is_some();
        self.ended.notify_waiters();
        removed
    }

    /// Stops turn `turn`: its task is aborted (a cancelled turn stores nothing partial). The
    /// session it ran in, or `None` when no such turn is running.
    pub fn stop_turn(&self, turn: &str) -> Option<Option<String>> {
        let running = self.turns().remove(turn)?;
        running.abort.abort();
        self.ended.notify_waiters();
        Some(running.session)
    }

    /// Turns running now.
    pub fn running(&self) -> usize {
        self.turns().len()
    }

    /// Closes sockets, then waits up to `drain` for the running turns; the rest are aborted.
    pub async fn shut_down(&self, drain: Duration) {
        let _ = self.closing.send(true);
        let waited = tokio::time::timeout(drain, async {
            loop {
                let ended = self.ended.notified();
                if self.running() == 0 {
                    return;
                }
                ended.await;
            }
        })
        .await;
        if waited.is_err() {
            let left: Vec<Running> = self.turns().drain().map(|(_, running)| running).collect();
            tracing::warn!(turns = left.len(), "web turns still running after the drain: cancelling them");
            for running in left {
                running.abort.abort();
            }
        }
    }

    /// Resolves when the gateway shuts down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Closes the open sockets of browser session `id`.
    pub fn revoked(&self, id: &str) {
        let _ = self.revoked.send(id.to_string());
    }

    pub fn revocations(&self) -> broadcast::Receiver<String> {
        self.revoked.subscribe()
    }
}

impl LiveAlerts for Hub {
    fn show(&self, id: &str, raised_at: UnixMillis, alert: &Alert) {
        self.publish(json!({
            "type": "notification",
            "notification": {
                "id": id,
                "at": raised_at,
                "kind": alert.kind,
                "severity": alert.severity.0,
                "title": alert.title,
                "body": alert.body,
                "agent": alert.agent,
                "approval": alert.approval,
            },
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(events: &[Numbered]) -> Vec<u64> {
        events.iter().map(|(seq, _)| *seq).collect()
    }

    #[tokio::test]
    async fn a_reconnecting_socket_gets_exactly_what_it_missed() {
        let hub = Hub::new().unwrap();
        for n in 0..5 {
            hub.publish(json!({"type": "user", "text": n}));
        }
        let boot = hub.boot().to_string();
        let caught = hub.subscribe(Some(&boot), Some(3));
        assert!(!caught.resync);
        assert_eq!(seqs(&caught.replay), [4, 5]);
        assert!(caught.replay[0].1.contains(r#""seq":4"#));
        // Up to date: nothing to replay, nothing to reload.
        let current = hub.subscribe(Some(&boot), Some(5));
        assert!(!current.resync && current.replay.is_empty());
        // Another boot (a restart), a first load, or a seq from the future: reload.
        assert!(hub.subscribe(Some("other"), Some(3)).resync);
        assert!(hub.subscribe(None, None).resync);
        assert!(hub.subscribe(Some(&boot), Some(9)).resync);
        // What comes after subscribing arrives live, in order.
        let mut live = hub.subscribe(Some(&boot), Some(5)).live;
        hub.publish(json!({"type": "user", "text": "six"}));
        assert_eq!(live.recv().await.unwrap().0, 6);
    }

    #[test]
    fn a_gap_older_than_the_buffer_asks_for_a_reload() {
        let hub = Hub::new().unwrap();
        for _ in 0..KEEP_EVENTS + 10 {
            hub.publish(json!({"type": "user"}));
        }
        let boot = hub.boot().to_string();
        assert!(hub.subscribe(Some(&boot), Some(5)).resync);
        let recent = hub.subscribe(Some(&boot), Some(20));
        assert!(!recent.resync);
        assert_eq!(recent.replay.len(), KEEP_EVENTS - 10);
    }

    #[tokio::test]
    async fn one_turn_per_session_and_stop_aborts_it() {
        let hub = Hub::new().unwrap();
        let task = tokio::spawn(std::future::pending::<()>());
        hub.start_turn("t-1", Some("s-1"), task.abort_handle()).unwrap();
        let other = tokio::spawn(std::future::pending::<()>());
        let refused = hub.start_turn("t-2", Some("s-1"), other.abort_handle()).unwrap_err();
        assert!(refused.contains("already running in session s-1"), "{refused}");
        assert!(other.await.unwrap_err().is_cancelled());
        assert_eq!(hub.stop_turn("t-1"), Some(Some("s-1".to_string())));
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(hub.stop_turn("t-1"), None);
        assert!(!hub.end_turn("t-1"));
    }
}
