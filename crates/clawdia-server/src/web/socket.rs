//! `GET /v1/ws`: the browser's WebSocket. The first message is `hello` with the last boot and
//! seq the page saw; the answer is `welcome` (with `resync` when the hub cannot replay the gap)
//! and the missed events, then live events. The browser sends `turn`, `stop`, `decide` and
//! `ping`; a turn runs in its own task whatever happens to the socket (the owner may close the
//! tab), its events go to every socket through the hub. The socket closes when the gateway
//! shuts down (1001, the page reconnects to the next boot), when the browser's session is
//! revoked (4401), and when it falls too far behind the hub (1013, it reconnects and catches
//! up). An `Origin` other than the gateway's own is refused before the upgrade.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clawdia_core::{AuditEvent, Decision, Severity, TurnEvent, TurnEvents, TurnOrigin, TurnRequest};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::auth::Principal;
use crate::web::Web;
use crate::web::signin::web;
use crate::{ApiError, ServerState};

/// How long a new socket may take to say `hello`.
const HELLO_TIME: Duration = Duration::from_secs(10);
/// Pings keep proxies from closing an idle socket and find dead peers.
const PING_EVERY: Duration = Duration::from_secs(25);
/// The largest message a browser may send.
const MAX_MESSAGE: usize = 1 << 20;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Hello {
        #[serde(default)]
        boot: Option<String>,
        #[serde(default)]
        since: Option<u64>,
    },
    Turn {
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default = "main_agent")]
        agent: String,
        #[serde(default)]
        session: Option<String>,
        message: String,
    },
    Stop {
        turn: String,
    },
    Decide {
        id: String,
        approve: bool,
        #[serde(default)]
        note: Option<String>,
    },
    Ping,
}

fn main_agent() -> String {
    "main".into()
}

pub(crate) async fn upgrade(
    State(state): State<ServerState>,
    principal: axum::Extension<Principal>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let web = web(&state)?.clone();
    let header = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    if let Some(origin) = header(ORIGIN)
        && !crate::web::same_origin(origin, header(HOST), web.settings.public_url.as_deref())
    {
        state.audit.record(AuditEvent::new(
            "web_socket_refused",
            Severity::WARNING,
            format!("WebSocket from foreign origin {origin} refused"),
        ));
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "cross-origin WebSocket refused"));
    }
    let Ok(permit) = web.sockets.clone().try_acquire_owned() else {
        return Err(ApiError {
            retry_after: Some(Duration::from_secs(5)),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                format!("{} browser sockets are open already; close a tab", crate::web::MAX_SOCKETS),
            )
        });
    };
    let browser = match principal.0 {
        Principal::Browser(session) => Some(session.id),
        Principal::Token => None,
    };
    Ok(upgrade
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            Socket { state, web, browser, socket }.run().await;
        })
        .into_response())
}

struct Socket {
    state: ServerState,
    web: Arc<Web>,
    /// The browser session the socket belongs to (none for a token client).
    browser: Option<String>,
    socket: WebSocket,
}

fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(clawdia_core::redact::redact_string(value.to_string())))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
}

impl Socket {
    async fn send(&mut self, message: Message) -> bool {
        self.socket.send(message).await.is_ok()
    }

    async fn run(mut self) {
        let hello = match tokio::time::timeout(HELLO_TIME, self.socket.recv()).await {
            Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<ClientMessage>(&text).ok(),
            _ => None,
        };
        let Some(ClientMessage::Hello { boot, since }) = hello else {
            let _ = self.send(close(1008, "the first message must be hello")).await;
            return;
        };
        let hub = self.web.hub.clone();
        let subscription = hub.subscribe(boot.as_deref(), since);
        let welcome = json!({
            "type": "welcome",
            "boot": subscription.boot,
            "seq": subscription.seq,
            "resync": subscription.resync,
        });
        if !self.send(text(&welcome)).await {
            return;
        }
        for (_, event) in subscription.replay {
            if !self.send(Message::Text(Utf8Bytes::from(&*event))).await {
                return;
            }
        }
        let mut live = subscription.live;
        let mut closing = hub.closing();
        if *closing.borrow_and_update() {
            let _ = self.send(close(1001, "the gateway is restarting")).await;
            return;
        }
        let mut revocations = hub.revocations();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                received = self.socket.recv() => match received {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(reply) = self.handle(&text).await
                            && !self.send(crate::web::socket::text(&reply)).await
                        {
                            return;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
                event = live.recv() => match event {
                    Ok((_, event)) => {
                        if !self.send(Message::Text(Utf8Bytes::from(&*event))).await {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let _ = self.send(close(1013, "fell behind: reconnect to catch up")).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                },
                revoked = revocations.recv() => {
                    if let Ok(id) = revoked && Some(&id) == self.browser.as_ref() {
                        let _ = self.send(close(4401, "signed out")).await;
                        return;
                    }
                }
                changed = closing.changed() => {
                    let shutting_down = changed.is_err() || *closing.borrow();
                    if shutting_down {
                        let _ = self.send(close(1001, "the gateway is restarting")).await;
                        return;
                    }
                }
                _ = ping.tick() => {
                    if !self.send(Message::Ping(Default::default())).await {
                        return;
                    }
                }
            }
        }
    }

    /// Acts on one message; the direct reply, if any.
    async fn handle(&mut self, text: &str) -> Option<Value> {
        let message = match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => message,
            Err(error) => {
                return Some(json!({"type": "error", "message": format!("invalid message: {error}")}));
            }
        };
        match message {
            ClientMessage::Ping => Some(json!({"type": "pong"})),
            ClientMessage::Hello { .. } => {
                Some(json!({"type": "error", "message": "hello was already said"}))
            }
            ClientMessage::Turn { client_id, agent, session, message } => {
                Some(match self.start_turn(agent, session, message) {
                    Ok(turn) => json!({"type": "accepted", "client_id": client_id, "turn": turn}),
                    Err(error) => json!({"type": "error", "client_id": client_id, "message": error}),
                })
            }
            ClientMessage::Stop { turn } => match self.web.hub.stop_turn(&turn) {
                Some(session) => {
                    self.web.hub.publish(json!({
                        "type": "turn_done", "turn": turn, "session": session, "ok": false, "stopped": true,
                    }));
                    None
                }
                None => Some(json!({"type": "error", "message": format!("no turn {turn} is running")})),
            },
            ClientMessage::Decide { id, approve, note } => match self.decide(id.clone(), approve, note) {
                Ok(()) => None,
                Err(error) => Some(json!({"type": "error", "id": id, "message": error})),
            },
        }
    }

    fn start_turn(&self, agent: String, session: Option<String>, message: String) -> Result<String, String> {
        if !self.state.gateway.agents().iter().any(|known| known.name == agent) {
            return Err(format!("no agent `{agent}`"));
        }
        if message.trim().is_empty() {
            return Err("the message is empty".into());
        }
        let turn = format!("t-{}", clawdia_core::random::hex(6).map_err(|e| e.to_string())?);
        let request = TurnRequest {
            from_owner: true,
            agent: agent.clone(),
            session: session.clone(),
            message: message.clone(),
            origin: TurnOrigin::Api,
            sender: Some("web".into()),
            history: Vec::new(),
            tools_allow: None,
            context: clawdia_core::TurnContext::Full,
            options: Default::default(),
        };
        let gateway = self.state.gateway.clone();
        let hub = self.web.hub.clone();
        let permits = self.state.turns.clone();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let (hub, turn, agent) = (hub.clone(), turn.clone(), agent.clone());
            tokio::spawn(async move {
                if wait.await.is_err() {
                    return;
                }
                let _permit = permits.acquire_owned().await;
                let events = HubEvents::new(hub.clone(), turn.clone(), agent);
                let result = gateway.run_turn(request, &events).await;
                events.flush();
                // As over `/v1/turns`: a turn that fails ends with an `error` event saying why.
                if let Err(error) = &result {
                    events.publish(&TurnEvent::Error { message: error.to_string() });
                }
                let session = events.session();
                if hub.end_turn(&turn) {
                    hub.publish(json!({
                        "type": "turn_done", "turn": turn, "session": session,
                        "ok": result.is_ok(), "stopped": false,
                    }));
                }
            })
        };
        hub.start_turn(&turn, session.as_deref(), task.abort_handle())?;
        hub.publish(
            json!({"type": "user", "turn": turn, "agent": agent, "session": session, "text": message}),
        );
        let _ = go.send(());
        Ok(turn)
    }

    fn decide(&self, id: String, approve: bool, note: Option<String>) -> Result<(), String> {
        let turn = format!("t-{}", clawdia_core::random::hex(6).map_err(|e| e.to_string())?);
        let pending = self.state.gateway.approvals(true, 1_000).map_err(|e| e.to_string())?;
        let Some(approval) = pending.into_iter().find(|approval| approval.id == id) else {
            return Err(format!("no pending approval request `{id}` (decided already, or expired)"));
        };
        let gateway = self.state.gateway.clone();
        let hub = self.web.hub.clone();
        let permits = self.state.turns.clone();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let session = approval.session.clone();
        let task = {
            let (hub, turn, agent, session) =
                (hub.clone(), turn.clone(), approval.agent.clone(), session.clone());
            tokio::spawn(async move {
                if wait.await.is_err() {
                    return;
                }
                let _permit = permits.acquire_owned().await;
                let events = HubEvents::new(hub.clone(), turn.clone(), agent);
                events.in_session(&session);
                let decided = gateway.decide(&id, Decision { approve, note }, &events).await;
                events.flush();
                let ok = match &decided {
                    Ok(decided) => {
                        hub.publish(json!({"type": "approval", "approval": crate::approvals::json(&decided.approval)}));
                        decided.turn.as_ref().is_none_or(Result::is_ok)
                    }
                    Err(error) => {
                        events.publish(&TurnEvent::Error { message: error.to_string() });
                        false
                    }
                };
                if hub.end_turn(&turn) {
                    hub.publish(json!({
                        "type": "turn_done", "turn": turn, "session": events.session(), "ok": ok, "stopped": false,
                    }));
                }
            })
        };
        hub.start_turn(&turn, Some(&session), task.abort_handle())?;
        let _ = go.send(());
        Ok(())
    }
}

/// A web turn's events, published to the hub. Text passes a `StreamRedactor` first so a secret
/// spread over several deltas is masked too (the hub masks each frame on its own).
struct HubEvents {
    hub: Arc<crate::web::Hub>,
    turn: String,
    agent: String,
    text: std::sync::Mutex<clawdia_core::redact::StreamRedactor>,
    session: std::sync::Mutex<Option<String>>,
}

impl HubEvents {
    fn new(hub: Arc<crate::web::Hub>, turn: String, agent: String) -> HubEvents {
        HubEvents { hub, turn, agent, text: Default::default(), session: Default::default() }
    }

    /// The turn continues session `session` (a decision's continuation: no `started` comes).
    fn in_session(&self, session: &str) {
        *self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(session.to_string());
    }

    fn session(&self) -> Option<String> {
        self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn publish(&self, event: &TurnEvent) {
        self.hub.publish(json!({
            "type": "turn", "turn": self.turn, "agent": self.agent, "session": self.session(), "event": event,
        }));
    }

    fn flush(&self) {
        let rest = self.text.lock().unwrap_or_else(std::sync::PoisonError::into_inner).finish();
        if !rest.is_empty() {
            self.publish(&TurnEvent::TextDelta { text: rest });
        }
    }
}

impl TurnEvents for HubEvents {
    fn event(&self, event: TurnEvent) {
        match event {
            TurnEvent::TextDelta { text } => {
                let shown = self.text.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(&text);
                if !shown.is_empty() {
                    self.publish(&TurnEvent::TextDelta { text: shown });
                }
            }
            TurnEvent::Discard { reason } => {
                self.text.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                self.publish(&TurnEvent::Discard { reason });
            }
            other => {
                if let TurnEvent::Started { session, .. } = &other {
                    *self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(session.clone());
                    self.hub.turn_session(&self.turn, session);
                }
                self.flush();
                self.publish(&other);
            }
        }
    }
}
