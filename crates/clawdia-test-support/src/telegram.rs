//! A Telegram Bot API double over real HTTP on 127.0.0.1, for what the npm fake the channel's
//! tests use (`@openclaw/crabline`) does not serve: files. It queues updates of any shape (text,
//! voice notes, photos, documents) for `getUpdates` (a real long poll), serves `getFile` and the
//! file downloads at `/file/bot<token>/<path>`, takes `sendVoice` as `multipart/form-data`, and
//! records every call the bot makes with the moment it arrived (the Telegram benchmark reads
//! those). It can answer the next calls of a method with flood control (429 and
//! `retry_after`), as Telegram does.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

/// The bot token the double accepts.
pub const TOKEN: &str = "4242:double-token";

/// One call the bot made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// The JSON body, or a `multipart/form-data` body's text fields as a JSON object.
    pub body: Value,
    /// A multipart body's files: (field name, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    pub at: Instant,
    /// Answered with flood control (see [`BotApi::flood`]).
    pub refused: bool,
}

/// A file the double serves: (file_path, bytes, the size `getFile` claims).
type StoredFile = (String, Vec<u8>, u64);

#[derive(Default)]
struct BotState {
    queue: Mutex<VecDeque<Value>>,
    next_update: Mutex<i64>,
    /// file_id → (file_path, bytes, the size `getFile` claims).
    files: Mutex<HashMap<String, StoredFile>>,
    calls: Mutex<Vec<Call>>,
    /// (chat, moment) each update was handed to a poll.
    handed: Mutex<Vec<(i64, Instant)>>,
    /// method → (calls still to refuse, retry_after seconds).
    floods: Mutex<HashMap<String, (u32, u64)>>,
    queued: Notify,
    next_message: Mutex<i64>,
    /// While set, `getUpdates` calls hang unanswered (a stalled connection).
    stalled: std::sync::atomic::AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running double; dropping it stops the server.
pub struct BotApi {
    addr: SocketAddr,
    state: Arc<BotState>,
    _shutdown: watch::Sender<bool>,
}

impl BotApi {
    /// Binds 127.0.0.1 on a free port and serves in a task of the current runtime.
    pub async fn start() -> std::io::Result<BotApi> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(BotState::default());
        let (shutdown, mut stopped) = watch::channel(false);
        let app = axum::Router::new().fallback(answer).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                })
                .await;
        });
        Ok(BotApi { addr, state, _shutdown: shutdown })
    }

    /// Starts the double on its own runtime in a background thread, for synchronous tests.
    pub fn start_blocking() -> std::io::Result<BotApi> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("bot-api".to_string()).spawn(move || {
            let runtime =
                match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                };
            runtime.block_on(async move {
                let started = BotApi::start().await;
                let keep = started.as_ref().map(|api| api._shutdown.subscribe()).ok();
                let _ = tx.send(started);
                if let Some(mut keep) = keep {
                    // Serve until the double is dropped.
                    while keep.changed().await.is_ok() {}
                }
            });
        })?;
        rx.recv().map_err(|_| std::io::Error::other("the Bot API double did not start"))?
    }

    /// The `api_root` to configure (`[channels.telegram] api_root`).
    pub fn api_root(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an update (its `update_id` is set here); the id.
    pub fn push(&self, mut update: Value) -> i64 {
        let id = {
            let mut next = lock(&self.state.next_update);
            *next += 1;
            *next
        };
        update["update_id"] = json!(id);
        lock(&self.state.queue).push_back(update);
        self.state.queued.notify_waiters();
        id
    }

    /// A private message in `chat` from user `from` with these fields (`text`, `voice`, ...).
    pub fn message(&self, chat: i64, from: i64, fields: Value) -> i64 {
        let message_id = {
            let mut next = lock(&self.state.next_message);
            *next += 1;
            *next
        };
        let mut message = json!({
            "message_id": message_id, "date": 0,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": from, "is_bot": false, "first_name": "Someone"},
        });
        if let (Some(message), Value::Object(fields)) = (message.as_object_mut(), fields) {
            message.extend(fields);
        }
        self.push(json!({"message": message}))
    }

    /// A text message.
    pub fn text(&self, chat: i64, from: i64, text: &str) -> i64 {
        self.message(chat, from, json!({"text": text}))
    }

    /// Makes `bytes` downloadable; the `file_id` (its `file_path` is `kind/file_N.ext`).
    /// `getFile` and the message claim `announced` as its size (normally the real one).
    pub fn add_file(&self, kind: &str, ext: &str, bytes: Vec<u8>, announced: Option<u64>) -> String {
        let mut files = lock(&self.state.files);
        let n = files.len() + 1;
        let id = format!("file-{n}");
        let size = announced.unwrap_or(bytes.len() as u64);
        files.insert(id.clone(), (format!("{kind}/file_{n}.{ext}"), bytes, size));
        id
    }

    /// A voice note (Ogg/Opus bytes).
    pub fn voice(&self, chat: i64, from: i64, ogg: Vec<u8>) -> i64 {
        let size = ogg.len();
        let id = self.add_file("voice", "oga", ogg, None);
        self.message(
            chat,
            from,
            json!({"voice": {"file_id": id, "file_unique_id": id, "duration": 3, "mime_type": "audio/ogg", "file_size": size}}),
        )
    }

    /// A photo (one size) with an optional caption.
    pub fn photo(&self, chat: i64, from: i64, jpeg: Vec<u8>, caption: Option<&str>) -> i64 {
        let size = jpeg.len();
        let id = self.add_file("photos", "jpg", jpeg, None);
        let mut fields = json!({"photo": [{"file_id": id, "file_unique_id": id, "width": 64, "height": 64, "file_size": size}]});
        if let Some(caption) = caption {
            fields["caption"] = json!(caption);
        }
        self.message(chat, from, fields)
    }

    /// A document named `name`; `announced` is the size the message claims (Telegram's
    /// `file_size`), normally the real one.
    pub fn document(&self, chat: i64, from: i64, name: &str, bytes: Vec<u8>, announced: Option<u64>) -> i64 {
        let size = announced.unwrap_or(bytes.len() as u64);
        let id = self.add_file("documents", "bin", bytes, announced);
        self.message(
            chat,
            from,
            json!({"document": {"file_id": id, "file_unique_id": id, "file_name": name, "file_size": size}}),
        )
    }

    /// Answers the next `times` calls of `method` with flood control (`retry_after` seconds).
    pub fn flood(&self, method: &str, times: u32, retry_after: u64) {
        lock(&self.state.floods).insert(method.to_string(), (times, retry_after));
    }

    /// While `stalled`, `getUpdates` calls get no answer at all (until it is cleared).
    pub fn stall_polls(&self, stalled: bool) {
        self.state.stalled.store(stalled, std::sync::atomic::Ordering::SeqCst);
        self.state.queued.notify_waiters();
    }

    /// Every call so far besides `getUpdates` (flood-refused ones too, marked).
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.state.calls).clone()
    }

    /// The calls of `method` that were answered.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.method == method && !call.refused).collect()
    }

    /// When each update was handed to a poll, with its chat.
    pub fn handed(&self) -> Vec<(i64, Instant)> {
        lock(&self.state.handed).clone()
    }
}

async fn answer(State(state): State<Arc<BotState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/file/bot") {
        let Some(file_path) = rest.strip_prefix(TOKEN).and_then(|rest| rest.strip_prefix('/')) else {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        };
        let found = lock(&state.files)
            .values()
            .find(|(path, _, _)| path == file_path)
            .map(|(_, bytes, size)| (bytes.clone(), *size));
        return match found {
            Some((bytes, size)) if size == bytes.len() as u64 => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            // A file whose size was misstated comes chunked, without a length up front.
            Some((bytes, _)) => {
                let chunks: Vec<Result<Bytes, std::io::Error>> =
                    bytes.chunks(64 * 1024).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
                let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
                ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response()
            }
            None => (StatusCode::NOT_FOUND, "not found").into_response(),
        };
    }
    let Some(method) = path
        .strip_prefix("/bot")
        .and_then(|rest| rest.strip_prefix(TOKEN))
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return envelope(
            StatusCode::NOT_FOUND,
            json!({"ok": false, "error_code": 404, "description": "Not Found"}),
        );
    };
    let method = method.to_string();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (body, files) = match content_type.split_once("boundary=") {
        Some((_, boundary)) if content_type.starts_with("multipart/form-data") => multipart(&body, boundary),
        _ => (serde_json::from_slice(&body).unwrap_or(Value::Null), Vec::new()),
    };
    {
        let mut floods = lock(&state.floods);
        if let Some((left, retry_after)) = floods.get_mut(&method)
            && *left > 0
        {
            *left -= 1;
            let retry_after = *retry_after;
            lock(&state.calls).push(Call { method, body, files, at: Instant::now(), refused: true });
            return envelope(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {retry_after}"), "parameters": {"retry_after": retry_after}}),
            );
        }
    }
    if method == "getUpdates" {
        while state.stalled.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        return ok(poll(&state, &body).await);
    }
    lock(&state.calls).push(Call {
        method: method.clone(),
        body: body.clone(),
        files,
        at: Instant::now(),
        refused: false,
    });
    let chat = body["chat_id"]
        .as_i64()
        .or_else(|| body["chat_id"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    match method.as_str() {
        "getMe" => ok(json!({"id": 4242, "is_bot": true, "first_name": "Double", "username": "double_bot"})),
        "getFile" => {
            let id = body["file_id"].as_str().unwrap_or("");
            match lock(&state.files).get(id) {
                Some((path, _, size)) => {
                    ok(json!({"file_id": id, "file_unique_id": id, "file_size": size, "file_path": path}))
                }
                None => envelope(
                    StatusCode::BAD_REQUEST,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"}),
                ),
            }
        }
        "sendMessage" | "sendVoice" | "sendDocument" | "sendPhoto" => {
            let message_id = {
                let mut next = lock(&state.next_message);
                *next += 1;
                *next
            };
            ok(json!({"message_id": message_id, "date": 0, "chat": {"id": chat, "type": "private"}}))
        }
        _ => ok(json!(true)),
    }
}

/// Updates at or after the poll's `offset`, waiting up to its `timeout` for one.
async fn poll(state: &BotState, body: &Value) -> Value {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(body["timeout"].as_u64().unwrap_or(0));
    loop {
        let queued = state.queued.notified();
        {
            let mut queue = lock(&state.queue);
            queue.retain(|update| update["update_id"].as_i64().unwrap_or(0) >= offset);
            if !queue.is_empty() {
                let now = Instant::now();
                let updates: Vec<Value> = queue.iter().cloned().collect();
                let mut handed = lock(&state.handed);
                for update in &updates {
                    handed.push((update["message"]["chat"]["id"].as_i64().unwrap_or(0), now));
                }
                return Value::Array(updates);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, queued).await.is_err() {
            return json!([]);
        }
    }
}

fn ok(result: Value) -> Response {
    envelope(StatusCode::OK, json!({"ok": true, "result": result}))
}

fn envelope(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// A `multipart/form-data` body: its text fields as a JSON object, and its files.
fn multipart(body: &[u8], boundary: &str) -> (Value, Vec<(String, Vec<u8>)>) {
    let boundary = boundary.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut fields = serde_json::Map::new();
    let mut files = Vec::new();
    for part in split(body, delimiter.as_bytes()).into_iter().skip(1) {
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let Some(head_end) = part.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&part[..head_end]).to_string();
        let data = &part[head_end + 4..];
        let data = data.strip_suffix(b"\r\n").unwrap_or(data);
        let attribute = |key: &str| {
            head.split(';')
                .find_map(|piece| piece.trim().strip_prefix(key).map(|v| v.trim_matches('"').to_string()))
        };
        let Some(name) = attribute("name=") else { continue };
        if attribute("filename=").is_some() {
            files.push((name, data.to_vec()));
        } else {
            fields.insert(name, json!(String::from_utf8_lossy(data)));
        }
    }
    (Value::Object(fields), files)
}

fn split<'a>(haystack: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        if &haystack[at..at + needle.len()] == needle {
            parts.push(&haystack[start..at]);
            at += needle.len();
            start = at;
        } else {
            at += 1;
        }
    }
    parts.push(&haystack[start..]);
    parts
}
