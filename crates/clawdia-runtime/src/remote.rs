//! Talking to a gateway that is already running: find it (`state/gateway.json` + `/health`),
//! run a turn through its native streaming endpoint (`POST /v1/turns`), turning the SSE
//! frames back into `TurnEvent`s, and read its components' states (`GET /v1/status`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clawdia_core::TurnEvent;
use clawdia_llm::sse::SseParser;
use futures_util::StreamExt;

use crate::{GatewayFile, gateway_file};

/// The address of a live gateway for `home`, if one answers `/health` quickly.
pub async fn find(home: &Path) -> Option<SocketAddr> {
    let text = std::fs::read(gateway_file(home)).ok()?;
    let file: GatewayFile = serde_json::from_slice(&text).ok()?;
    clawdia_llm::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().ok()?;
    let response = client.get(format!("http://{}/health", file.addr)).send().await.ok()?;
    response.status().is_success().then_some(file.addr)
}

/// One daemon component as `GET /v1/status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteComponent {
    pub name: String,
    pub state: String,
    /// RFC 3339.
    pub since: String,
    pub restarts: u64,
    pub error: Option<String>,
    /// While restarting: the attempt and when it is due (RFC 3339).
    pub next_try: Option<(u64, String)>,
}

/// What a running gateway says about itself.
#[derive(Debug, Clone)]
pub struct RemoteStatus {
    pub pid: u64,
    pub version: String,
    pub uptime_secs: u64,
    pub components: Vec<RemoteComponent>,
}

/// The components of the gateway at `addr` (`GET /v1/status` with the token).
pub async fn status(addr: SocketAddr, token: &str) -> Result<RemoteStatus, String> {
    clawdia_llm::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    let response = client
        .get(format!("http://{addr}/v1/status"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("cannot reach the gateway at {addr}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("reading the gateway's status: {e}"))?;
    if !status.is_success() {
        let message = clawdia_core::error_body_message(text.as_bytes(), 200).unwrap_or_default();
        return Err(format!("the gateway answered {status}: {message}"));
    }
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the gateway's status is not JSON: {e}"))?;
    let text_of = |value: &serde_json::Value, key: &str| value[key].as_str().unwrap_or_default().to_string();
    let components = json["components"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|component| RemoteComponent {
            name: text_of(component, "name"),
            state: text_of(component, "state"),
            since: text_of(component, "since"),
            restarts: component["restarts"].as_u64().unwrap_or(0),
            error: component["error"].as_str().map(str::to_string),
            next_try: component["attempt"].as_u64().map(|attempt| (attempt, text_of(component, "next_try"))),
        })
        .collect();
    Ok(RemoteStatus {
        pid: json["pid"].as_u64().unwrap_or(0),
        version: text_of(&json, "version"),
        uptime_secs: json["uptime_secs"].as_u64().unwrap_or(0),
        components,
    })
}

/// Runs one turn on the gateway at `addr`, calling `on_event` for each event. Returns an
/// error string for transport failures and for turns that failed before producing anything (the
/// gateway answers those with an error status: the turn's own message, plus the wait a 429
/// asks for); later turn failures arrive as `TurnEvent::Error`.
pub async fn turn(
    addr: SocketAddr,
    token: &str,
    agent: &str,
    session: Option<&str>,
    message: &str,
    mut on_event: impl FnMut(TurnEvent),
) -> Result<(), String> {
    let mut body = serde_json::json!({"agent": agent, "message": message});
    if let Some(session) = session {
        body["session"] = serde_json::Value::String(session.to_string());
    }
    let response = post_json(addr, token, "/v1/turns", &body).await?;
    if !response.status().is_success() {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let text = response.text().await.unwrap_or_default();
        let turn_message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(String::from));
        return Err(match (turn_message, retry_after) {
            (Some(message), _) if status == reqwest::StatusCode::UNAUTHORIZED => {
                format!("gateway answered {status}: {message}")
            }
            (Some(message), Some(seconds)) => format!("{message} (try again in {seconds} s)"),
            (Some(message), None) => message,
            (None, _) => format!("gateway answered {status}: {text}"),
        });
    }
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    let mut stream = response.bytes_stream();
    let mut finished = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("gateway stream broke: {e}"))?;
        parser.push(&chunk, &mut events).map_err(|e| e.to_string())?;
        for event in events.drain(..) {
            let parsed: TurnEvent = serde_json::from_str(&event.data)
                .map_err(|e| format!("gateway sent an unreadable event: {e}"))?;
            finished |= matches!(parsed, TurnEvent::End { .. } | TurnEvent::Error { .. });
            on_event(parsed);
        }
    }
    if !finished {
        return Err("the gateway closed the stream before the turn finished".into());
    }
    Ok(())
}

/// The owner's decision on approval request `id`, applied by the gateway at `addr`: the
/// request as it now stands, and the agent's reply in the continuation turn or why that turn
/// failed. A refusal (unknown request, already decided, expired) is the gateway's message.
pub async fn decide(
    addr: SocketAddr,
    token: &str,
    id: &str,
    approve: bool,
    note: Option<&str>,
) -> Result<(clawdia_core::Approval, Option<String>, Option<String>), String> {
    let verb = if approve { "approve" } else { "deny" };
    let mut body = serde_json::json!({});
    if let Some(note) = note {
        body["note"] = serde_json::Value::String(note.to_string());
    }
    let value = approval_call(addr, token, id, verb, &body).await?;
    let approval: clawdia_core::Approval = serde_json::from_value(value["approval"].clone())
        .map_err(|e| format!("gateway sent an unreadable request: {e}"))?;
    let text_of = |key: &str| value[key].as_str().map(String::from);
    Ok((approval, text_of("reply"), text_of("turn_error")))
}

/// POSTs `body` as JSON to `path` on the gateway at `addr`, with the token.
async fn post_json(
    addr: SocketAddr,
    token: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<reqwest::Response, String> {
    clawdia_llm::install_crypto_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    client
        .post(format!("http://{addr}{path}"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("cannot reach the gateway at {addr}: {e}"))
}

/// Sends the owner's reply to elevation request `id` through the gateway at `addr`.
pub async fn reply(
    addr: SocketAddr,
    token: &str,
    id: &str,
    text: &str,
) -> Result<clawdia_core::elevation::ReplyOutcome, String> {
    let value = approval_call(addr, token, id, "reply", &serde_json::json!({"text": text})).await?;
    serde_json::from_value(value).map_err(|e| format!("gateway sent an unreadable answer: {e}"))
}

/// POSTs `body` to `/v1/approvals/{id}/{verb}`; the answer, or the gateway's error message.
async fn approval_call(
    addr: SocketAddr,
    token: &str,
    id: &str,
    verb: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let id_in_path: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    if id_in_path != id || id.is_empty() {
        return Err(format!(
            "no request `{id}` (ids are letters, digits and dashes; see `clawdia broker list`)"
        ));
    }
    let response = post_json(addr, token, &format!("/v1/approvals/{id_in_path}/{verb}"), body).await?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("gateway answer broke off: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|_| format!("gateway answered {status}: {text}"))?;
    if !status.is_success() {
        return Err(value["error"]["message"]
            .as_str()
            .map(String::from)
            .unwrap_or(format!("gateway answered {status}")));
    }
    Ok(value)
}
