//! The Telegram channel: the owner's phone. A long-polling loop fetches updates and stores each
//! in `state/telegram.db` before acknowledging it (the next poll's offset comes from what is
//! stored), so a crash or restart neither loses nor repeats a message; only completed
//! `getUpdates` calls count as alive, and a poll that keeps failing ends the run so the daemon
//! rebuilds it and alerts. Each update is then handled in its chat's order: who may talk
//! (`[owner] telegram`, then `dm_policy`: pairing, allowlist, open, disabled; groups only when
//! the bot is mentioned or replied to), commands (`/new`, `/agent NAME`), and turns through the
//! core `Gateway` seam as `telegram:<user id>` — the owner's own words unwrapped, anyone
//! else's inside trust markers — with the reply streamed by editing one message at a pace
//! Telegram accepts, then split at its limits and sent as Telegram HTML (plain text if refused).
//!
//! Invariants: a stranger's message never reaches an agent unless the policy lets them in, and
//! every refusal is audited; flood control (`retry_after`) is waited out, never hammered.

pub mod api;
pub mod callback;
pub mod format;
pub mod store;
pub mod webhook;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use clawdia_config::{DmPolicy, TelegramConfig, TelegramMode, VoiceReply};
use clawdia_core::{
    Alert, AuditEvent, AuditSink, Gateway, Notifier, Severity, TurnContext, TurnEvent, TurnEvents,
    TurnOrigin, TurnRequest, VoiceNotes,
};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::{Api, ApiError, IncomingMessage, User};
use crate::store::Store;

/// How often a streaming reply's message is edited at most (Telegram allows about one edit
/// per second per chat).
const EDIT_EVERY: Duration = Duration::from_millis(1_200);
/// How often "typing…" is renewed while a turn runs (it shows for about 5 s).
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// Polls in a row that may fail before the run gives up (and the daemon rebuilds it).
const FAILED_POLLS: u32 = 3;
/// How long past its own timeout a long poll may go unanswered before it counts as stalled:
/// the run ends at once, and the daemon rebuilds the client and alerts the owner.
const STALL_MARGIN: Duration = Duration::from_secs(5);

/// Why the channel cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("telegram: {0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(
        "no open pairing request with code `{0}` (the person gets a code when they first write to the bot)"
    )]
    UnknownCode(String),
}

/// Someone let in by [`Telegram::pair`].
#[derive(Debug)]
pub struct Paired {
    pub user_id: i64,
    /// `@name (telegram:ID)` or `telegram:ID`.
    pub who: String,
    /// Whether they were told in their chat (the pairing holds either way).
    pub told: Result<(), String>,
}

/// The Telegram channel of one bot.
pub struct Telegram {
    api: Api,
    store: Arc<Store>,
    gateway: Arc<dyn Gateway>,
    audit: Arc<dyn AuditSink>,
    notifier: Arc<dyn Notifier>,
    config: TelegramConfig,
    owner: Option<i64>,
    me: OnceLock<User>,
    /// Unix ms of the last completed `getUpdates`.
    last_poll: AtomicI64,
    /// One lock per chat: its messages are handled in order.
    chats: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    /// Signs and checks approval buttons.
    signer: callback::Signer,
    /// Updates being handled now, and a wake-up when one finishes (the drain waits on it).
    busy: std::sync::atomic::AtomicUsize,
    finished: tokio::sync::Notify,
    /// Speech to text and back, when `[speech]` has engines.
    voice: Option<Arc<dyn VoiceNotes>>,
    /// Each agent's workspace folder: where photos and documents are saved.
    workspaces: HashMap<String, PathBuf>,
    /// Webhook mode: the route's hook (its secret, and the wake-up after each stored update).
    webhook: Option<Arc<webhook::WebhookReceiver>>,
}

/// A message's words, and whether the person spoke them (a voice note, or `/voice ...`).
struct Words {
    text: String,
    spoken: bool,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telegram").field("api_root", &self.config.api_root).finish_non_exhaustive()
    }
}

/// What came of one update, as noted in the store.
type Outcome = String;

impl Telegram {
    /// The channel for `config`, its state in `state_dir`; `owner` is `[owner] telegram`.
    pub fn new(
        config: TelegramConfig,
        owner: Option<i64>,
        state_dir: &Path,
        gateway: Arc<dyn Gateway>,
        audit: Arc<dyn AuditSink>,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Telegram, TelegramError> {
        let token = config
            .token
            .resolve()
            .map_err(|e| TelegramError::Setup(format!("channels.telegram.token: {e}")))?;
        let api = Api::new(&config.api_root, token.expose(), config.poll_timeout)
            .map_err(|e| TelegramError::Setup(e.to_string()))?;
        let store = Arc::new(Store::open(state_dir)?);
        let signer = callback::Signer::new(store.button_key()?);
        Ok(Telegram {
            api,
            store,
            gateway,
            audit,
            notifier,
            config,
            owner,
            me: OnceLock::new(),
            last_poll: AtomicI64::new(0),
            chats: Mutex::default(),
            signer,
            busy: std::sync::atomic::AtomicUsize::new(0),
            finished: tokio::sync::Notify::new(),
            voice: None,
            workspaces: HashMap::new(),
            webhook: None,
        })
    }

    /// In webhook mode, the hook for the gateway's `/v1/telegram/webhook` (give the same one to
    /// each run with [`Telegram::with_webhook`]); `None` when the bot polls.
    pub fn webhook_receiver(
        config: &TelegramConfig,
        state_dir: &Path,
    ) -> Result<Option<Arc<webhook::WebhookReceiver>>, TelegramError> {
        if config.mode == TelegramMode::Poll {
            return Ok(None);
        }
        let store = Arc::new(Store::open(state_dir)?);
        Ok(Some(Arc::new(webhook::WebhookReceiver::new(store)?)))
    }

    /// Updates arrive through `receiver` (webhook mode) instead of `getUpdates`.
    #[must_use]
    pub fn with_webhook(mut self, receiver: Arc<webhook::WebhookReceiver>) -> Telegram {
        self.webhook = Some(receiver);
        self
    }

    /// Voice notes are transcribed, and replies spoken, by `voice`.
    #[must_use]
    pub fn with_voice(mut self, voice: Arc<dyn VoiceNotes>) -> Telegram {
        self.voice = Some(voice);
        self
    }

    /// Photos and documents are saved under `uploads/telegram/` in the workspace of the agent
    /// the chat talks to.
    #[must_use]
    pub fn with_workspaces(mut self, workspaces: HashMap<String, PathBuf>) -> Telegram {
        self.workspaces = workspaces;
        self
    }

    /// The `telegram` alert route: messages to the owner's chat, approval requests with signed
    /// Approve / Deny buttons. `None` without the owner's user id.
    pub fn alert_channel(
        config: &TelegramConfig,
        owner: Option<i64>,
        state_dir: &Path,
    ) -> Result<Option<Arc<dyn clawdia_core::AlertChannel>>, TelegramError> {
        let Some(owner) = owner else { return Ok(None) };
        let token = config
            .token
            .resolve()
            .map_err(|e| TelegramError::Setup(format!("channels.telegram.token: {e}")))?;
        let api = Api::new(&config.api_root, token.expose(), Duration::from_secs(1))
            .map_err(|e| TelegramError::Setup(e.to_string()))?;
        let signer = callback::Signer::new(Store::open(state_dir)?.button_key()?);
        Ok(Some(Arc::new(OwnerAlerts { api, owner, signer })))
    }

    /// The store (for `clawdia telegram pair`, which works on the file directly).
    pub fn open_store(state_dir: &Path) -> Result<Store, TelegramError> {
        Ok(Store::open(state_dir)?)
    }

    /// Lets in the person whose pairing request has `code` (as typed: case and separators do
    /// not matter) and tells them in their chat. Works on `state/telegram.db` directly, whether
    /// or not the gateway runs (`clawdia telegram pair`, the web UI).
    pub async fn pair(
        config: &TelegramConfig,
        state_dir: &Path,
        code: &str,
    ) -> Result<Paired, TelegramError> {
        let typed = clawdia_core::browser::normalize_code(code).unwrap_or_else(|| code.trim().to_string());
        let store = Store::open(state_dir)?;
        let approved =
            tokio::task::spawn_blocking(move || store.approve(&typed, clawdia_core::time::now_ms()))
                .await
                .map_err(|_| TelegramError::Setup("the pairing stopped unexpectedly".into()))??
                .ok_or_else(|| TelegramError::UnknownCode(code.trim().to_string()))?;
        let who = match &approved.username {
            Some(name) => format!("@{name} (telegram:{})", approved.user_id),
            None => format!("telegram:{}", approved.user_id),
        };
        let told = match config.token.resolve() {
            Ok(token) => match Api::new(&config.api_root, token.expose(), config.poll_timeout) {
                Ok(api) => api
                    .send_message(
                        approved.chat_id,
                        "You're in: the owner let you talk to me. Say hello!",
                        false,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            },
            Err(error) => Err(error.to_string()),
        };
        Ok(Paired { user_id: approved.user_id, who, told })
    }

    /// The pairing requests still waiting for the owner, newest first.
    pub async fn open_pairings(state_dir: &Path) -> Result<Vec<store::PairingRequest>, TelegramError> {
        let store = Store::open(state_dir)?;
        tokio::task::spawn_blocking(move || store.open_pairings())
            .await
            .map_err(|_| TelegramError::Setup("reading pairing requests stopped unexpectedly".into()))?
            .map_err(TelegramError::from)
    }

    /// Unix ms of the last completed poll (0 before the first).
    pub fn last_poll_ms(&self) -> i64 {
        self.last_poll.load(Ordering::Relaxed)
    }

    /// Polls and handles updates until `stop` resolves, then lets the updates being handled
    /// finish for up to `drain` (one cut short stays pending and is handled after the restart).
    /// An error ends the run: the token was refused, another client polls the bot, or polls
    /// kept failing.
    pub async fn run(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()> + Send,
        drain: Duration,
    ) -> Result<(), String> {
        let result = match (&self.config.mode, self.webhook.clone()) {
            (TelegramMode::Webhook { url }, Some(receiver)) => {
                self.clone().listen(stop, url.clone(), receiver).await
            }
            (TelegramMode::Webhook { .. }, None) => {
                Err("webhook mode without the gateway's webhook route".into())
            }
            (TelegramMode::Poll, _) => self.clone().poll(stop).await,
        };
        let drained = tokio::time::timeout(drain, async {
            loop {
                let finished = self.finished.notified();
                if self.busy.load(Ordering::Acquire) == 0 {
                    return;
                }
                finished.await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                "telegram: messages still being handled after the drain; they are handled again after the restart"
            );
        }
        result
    }

    async fn poll(self: Arc<Self>, stop: impl std::future::Future<Output = ()> + Send) -> Result<(), String> {
        tokio::pin!(stop);
        let me = tokio::select! {
            () = &mut stop => return Ok(()),
            me = self.api.get_me() => me.map_err(|e| fatal_or_retry(&e))?,
        };
        tracing::info!(bot = me.username.as_deref().unwrap_or(""), "telegram: connected");
        let _ = self.me.set(me);
        // Updates stored but not handled before a restart are handled first.
        self.handle_pending().await;
        let mut failures = 0u32;
        loop {
            let offset = self.store.next_offset().map_err(|e| e.to_string())?;
            let patience = self.config.poll_timeout + STALL_MARGIN;
            let polled = tokio::select! {
                () = &mut stop => return Ok(()),
                polled = tokio::time::timeout(patience, self.api.get_updates(offset, self.config.poll_timeout)) => match polled {
                    Ok(polled) => polled,
                    Err(_) => {
                        return Err(format!(
                            "getUpdates stalled (no answer in {} s); reconnecting",
                            patience.as_secs()
                        ));
                    }
                },
            };
            match polled {
                Ok(updates) => {
                    failures = 0;
                    self.last_poll.store(clawdia_core::time::now_ms(), Ordering::Relaxed);
                    if updates.is_empty() {
                        continue;
                    }
                    let store = self.store.clone();
                    let now = clawdia_core::time::now_ms();
                    tokio::task::spawn_blocking(move || store.store_updates(&updates, now))
                        .await
                        .map_err(|_| "storing updates stopped unexpectedly".to_string())?
                        .map_err(|e| e.to_string())?;
                    self.handle_pending().await;
                }
                Err(ApiError::RetryAfter(wait)) => {
                    tracing::warn!(?wait, "telegram: flood control on getUpdates");
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(error @ ApiError::Refused { code: 401 | 403 | 404 | 409, .. }) => {
                    return Err(fatal_or_retry(&error));
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, failures, "telegram: a poll failed");
                    if failures >= FAILED_POLLS {
                        return Err(format!(
                            "no completed getUpdates in {failures} tries (the last: {error}); reconnecting"
                        ));
                    }
                    let pause = Duration::from_secs(1 << failures.min(5));
                    tokio::select! {
                        () = &mut stop => return Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }

    /// Webhook mode: registers `url` with Telegram (with the receiver's secret), then handles
    /// each update the receiver stores. Liveness is a completed `getWebhookInfo` every poll
    /// interval; it also puts the webhook back if something else replaced it, and tells the
    /// owner when Telegram reports it cannot deliver to `url`.
    async fn listen(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()> + Send,
        url: String,
        receiver: Arc<webhook::WebhookReceiver>,
    ) -> Result<(), String> {
        tokio::pin!(stop);
        let me = tokio::select! {
            () = &mut stop => return Ok(()),
            me = self.api.get_me() => me.map_err(|e| fatal_or_retry(&e))?,
        };
        let _ = self.me.set(me);
        self.api
            .set_webhook(&url, receiver.secret())
            .await
            .map_err(|e| format!("Telegram refused the webhook {url}: {e}"))?;
        tracing::info!(%url, "telegram: connected (webhook)");
        self.last_poll.store(clawdia_core::time::now_ms(), Ordering::Relaxed);
        self.handle_pending().await;
        let mut check = tokio::time::interval(self.config.poll_timeout);
        check.tick().await;
        let mut failures = 0u32;
        let mut last_error = 0i64;
        loop {
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = receiver.wake.notified() => self.handle_pending().await,
                _ = check.tick() => match self.api.webhook_info().await {
                    Ok(info) => {
                        failures = 0;
                        self.last_poll.store(clawdia_core::time::now_ms(), Ordering::Relaxed);
                        if info["url"].as_str() != Some(url.as_str()) {
                            tracing::warn!(%url, found = info["url"].as_str().unwrap_or(""), "telegram: the webhook was changed elsewhere; setting it again");
                            self.api
                                .set_webhook(&url, receiver.secret())
                                .await
                                .map_err(|e| format!("Telegram refused the webhook {url}: {e}"))?;
                        }
                        let error_at = info["last_error_date"].as_i64().unwrap_or(0);
                        if error_at > last_error {
                            if last_error != 0 || error_at * 1000 > clawdia_core::time::now_ms() - 600_000 {
                                let message = info["last_error_message"].as_str().unwrap_or("no reason given");
                                self.notifier.notify(Alert::new(
                                    "telegram_webhook_failing",
                                    Severity::HIGH,
                                    "Telegram cannot deliver to the webhook",
                                    format!("Telegram reports: {message}. Check that {url} reaches the gateway's /v1/telegram/webhook."),
                                ));
                            }
                            last_error = error_at;
                        }
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(%error, failures, "telegram: getWebhookInfo failed");
                        if failures >= FAILED_POLLS {
                            return Err(format!("no completed getWebhookInfo in {failures} tries (the last: {error}); reconnecting"));
                        }
                    }
                },
            }
        }
    }

    /// Hands every pending update to its chat's queue; each is marked done once handled.
    async fn handle_pending(self: &Arc<Self>) {
        let store = self.store.clone();
        let pending = match tokio::task::spawn_blocking(move || store.pending()).await {
            Ok(Ok(pending)) => pending,
            Ok(Err(error)) => {
                tracing::warn!(%error, "telegram: cannot read pending updates");
                return;
            }
            Err(_) => return,
        };
        for (id, body) in pending {
            // A button press belongs to the chat of the message it sits under.
            let chat = body
                .pointer("/message/chat/id")
                .or_else(|| body.pointer("/callback_query/message/chat/id"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let lock = {
                let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
                chats.entry(chat).or_default().clone()
            };
            // Taken before the task starts, so a chat's updates are handled in their order.
            let Ok(guard) = lock.clone().try_lock_owned() else {
                // A message of this chat is being handled; this one waits in the store and is
                // picked up after the next poll.
                continue;
            };
            let this = self.clone();
            self.busy.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(async move {
                let _guard = guard;
                let _busy = Busy(this.clone());
                let outcome = match serde_json::from_value::<api::Update>(body) {
                    Ok(update) => this.handle(update).await,
                    Err(error) => format!("unreadable update: {error}"),
                };
                let store = this.store.clone();
                let _ = tokio::task::spawn_blocking(move || store.finish(id, &outcome)).await;
                // Anything of this chat that queued up meanwhile.
                this.handle_pending_later();
            });
        }
    }

    fn handle_pending_later(self: &Arc<Self>) {
        let this = self.clone();
        tokio::spawn(async move { this.handle_pending().await });
    }

    async fn handle(&self, update: api::Update) -> Outcome {
        let id = update.update_id;
        if let Some(query) = update.callback_query {
            return self.button(query).await;
        }
        let Some(message) = update.message else {
            return "not a message".into();
        };
        let Some(from) = message.from.clone() else {
            return "a message without a sender".into();
        };
        if from.is_bot {
            return "from a bot: ignored".into();
        }
        let chat = message.chat.id;
        let private = message.chat.kind == "private";
        if !private && !self.addressed(&message) {
            return "group message not addressed to the bot".into();
        }
        match self.admit(&from, chat, private).await {
            Ok(()) => {}
            Err(outcome) => return outcome,
        }
        let owner = Some(from.id) == self.owner;
        let words = match self.words(&message).await {
            Ok(words) => words,
            Err(outcome) => return outcome,
        };
        if owner && let Some(request) = self.replied_request(&message) {
            return self.operator_reply(chat, &request, &words.text).await;
        }
        let mut spoken = words.spoken;
        let mut text = self.without_mention(&words.text);
        if let Some(rest) =
            text.strip_prefix("/voice").filter(|rest| rest.is_empty() || rest.starts_with([' ', '\n', '@']))
        {
            // `/voice ...`: the reply comes spoken too.
            spoken = true;
            text =
                rest.split_once(|c: char| c.is_whitespace()).map_or("", |(_, rest)| rest).trim().to_string();
            if text.is_empty() {
                self.reply_plain(chat, "Write what to say after /voice, e.g. /voice what's on today?").await;
                return "empty /voice".into();
            }
        } else if let Some(outcome) = self.command(chat, &text).await {
            return outcome;
        }
        let text = if words.spoken { text } else { self.burst(id, chat, from.id, text).await };
        self.turn(chat, &from, owner, text, spoken).await
    }

    /// The request an owner's message answers: it replies to the bot's alert about a request
    /// (titled `Request ID: ...`).
    fn replied_request(&self, message: &IncomingMessage) -> Option<String> {
        let replied = message.reply_to_message.as_ref()?;
        let me = self.me.get()?;
        if replied.from.as_ref().is_none_or(|from| from.id != me.id) {
            return None;
        }
        let text = replied.text.as_deref()?;
        let rest = text.strip_prefix("Request ")?;
        let (id, _) = rest.split_once(':')?;
        (!id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            .then(|| id.to_string())
    }

    /// The owner's answer to a request in their own words, read and acted on by the broker.
    async fn operator_reply(&self, chat: i64, request: &str, text: &str) -> Outcome {
        let _ = self.api.typing(chat).await;
        match self.gateway.operator_reply(request, text).await {
            Ok(outcome) => {
                self.deliver(chat, None, &outcome.message).await;
                format!("reply to request {request}: {}", outcome.status.as_str())
            }
            Err(error) => {
                self.reply_plain(chat, &format!("{error}")).await;
                format!("reply to request {request} refused: {error}")
            }
        }
    }

    /// What a message says: its text or caption; a voice note transcribed; a photo or document
    /// saved into the agent's workspace with a line telling the agent where. The sender is told
    /// (and `Err` says) when none of that works.
    async fn words(&self, message: &IncomingMessage) -> Result<Words, Outcome> {
        let chat = message.chat.id;
        let caption = message.text.clone().or_else(|| message.caption.clone()).unwrap_or_default();
        if let Some(note) = message.voice.as_ref().or(message.audio.as_ref()) {
            return self.transcribe(chat, note).await.map(|text| Words { text, spoken: true });
        }
        let attachment = if let Some(photo) = message.photo.as_ref() {
            // Sizes come smallest first: the largest the bot may download.
            let sizes = photo.as_array().cloned().unwrap_or_default();
            let fits = sizes
                .iter()
                .rev()
                .find(|size| size["file_size"].as_u64().is_none_or(|n| n <= self.config.max_file_bytes))
                .or(sizes.last())
                .cloned();
            fits.map(|size| (size, "photo".to_string(), format!("photo-{}.jpg", stamp())))
        } else if let Some(document) = message.document.as_ref() {
            let name = document["file_name"]
                .as_str()
                .and_then(clawdia_core::uploads::safe_name)
                .unwrap_or_else(|| format!("document-{}", stamp()));
            Some((document.clone(), "document".to_string(), name))
        } else {
            None
        };
        let Some((file, kind, name)) = attachment else {
            if caption.trim().is_empty() {
                self.reply_plain(
                    chat,
                    "I can read text, voice notes, photos and documents; not this kind of message.",
                )
                .await;
                return Err("unsupported message: told the sender".into());
            }
            return Ok(Words { text: caption, spoken: false });
        };
        let saved = self.save_file(chat, &file, &name).await?;
        let note = format!("[The sender attached a {kind}, saved in your workspace as {saved}]");
        let text = if caption.trim().is_empty() { note } else { format!("{caption}\n\n{note}") };
        Ok(Words { text, spoken: false })
    }

    /// Downloads a voice note or audio file and turns it into text.
    async fn transcribe(&self, chat: i64, note: &Value) -> Result<String, Outcome> {
        let Some(voice) = self.voice.as_ref().filter(|voice| voice.can_transcribe()) else {
            self.reply_plain(
                chat,
                "I can't listen to voice notes here: speech to text is not set up ([speech] stt). Please write instead.",
            )
            .await;
            return Err("voice note without speech to text: told the sender".into());
        };
        let _ = self.api.typing(chat).await;
        let bytes = self.fetch(chat, note).await?;
        match voice.transcribe_note(&bytes).await {
            Ok(transcript) if !transcript.text.trim().is_empty() => Ok(transcript.text.trim().to_string()),
            Ok(_) => {
                self.reply_plain(chat, "I couldn't make out any words in that voice note.").await;
                Err("voice note without words".into())
            }
            Err(error) => {
                tracing::warn!(%error, chat, "telegram: a voice note could not be transcribed");
                self.reply_plain(chat, &format!("I couldn't listen to that voice note: {error}")).await;
                Err(format!("voice note not transcribed: {error}"))
            }
        }
    }

    /// The bytes of a file a message carries (`file_id`), within `max_file_mb`.
    async fn fetch(&self, chat: i64, file: &Value) -> Result<Vec<u8>, Outcome> {
        let Some(file_id) = file["file_id"].as_str() else {
            return Err("a file without a file_id".into());
        };
        let limit = self.config.max_file_bytes;
        let fetched = match self.api.get_file(file_id).await {
            Ok(found) => self.api.download(&found, limit).await,
            Err(error) => Err(error),
        };
        match fetched {
            Ok(bytes) => Ok(bytes),
            Err(error) => {
                tracing::warn!(%error, chat, "telegram: a file could not be downloaded");
                let message = match &error {
                    ApiError::TooLarge { limit_mb } => {
                        format!("That file is larger than the {limit_mb} MB I may download.")
                    }
                    _ => "I couldn't download that file from Telegram; please try again.".to_string(),
                };
                self.reply_plain(chat, &message).await;
                Err(format!("file not downloaded: {error}"))
            }
        }
    }

    /// Downloads a photo or document into `uploads/telegram/` of the chat's agent's workspace;
    /// the path shown to the agent (relative to the workspace).
    async fn save_file(&self, chat: i64, file: &Value, name: &str) -> Result<String, Outcome> {
        let (agent, _) = self.chat_state(chat).await;
        let Some(workspace) = self.workspaces.get(&agent).cloned() else {
            self.reply_plain(chat, "I can't keep files here (the agent has no workspace).").await;
            return Err(format!("file not saved: agent {agent} has no workspace"));
        };
        let bytes = self.fetch(chat, file).await?;
        let size = bytes.len();
        let name = name.to_string();
        let dir = workspace.join("uploads").join("telegram");
        let saved =
            tokio::task::spawn_blocking(move || clawdia_core::uploads::save_new(&dir, &name, &bytes)).await;
        match saved {
            Ok(Ok(path)) => {
                let shown = path.strip_prefix(&workspace).unwrap_or(&path).display().to_string();
                Ok(format!("{shown} ({})", human_size(size)))
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, chat, "telegram: a file could not be saved");
                self.reply_plain(chat, "I couldn't save that file.").await;
                Err(format!("file not saved: {error}"))
            }
            Err(_) => Err("file not saved: the writer stopped".into()),
        }
    }

    /// The text of `first` and the messages the same person sent right after it in the same
    /// chat, each within the quiet window of the last: one turn answers them all (the later
    /// ones are marked handled here).
    async fn burst(&self, first: i64, chat: i64, user: i64, text: String) -> String {
        if self.config.batch.is_zero() {
            return text;
        }
        let _ = self.api.typing(chat).await;
        let mut texts = vec![text];
        let mut last = first;
        // At most a few windows: a person typing non-stop still gets an answer.
        for _ in 0..5 {
            tokio::time::sleep(self.config.batch).await;
            let store = self.store.clone();
            let pending =
                tokio::task::spawn_blocking(move || store.pending()).await.ok().and_then(Result::ok);
            let mut more = Vec::new();
            for (id, body) in pending.unwrap_or_default() {
                if id <= last {
                    continue;
                }
                let Ok(update) = serde_json::from_value::<api::Update>(body) else { break };
                let Some(message) = update.message else { break };
                if message.chat.id != chat {
                    continue;
                }
                let same_sender = message.from.as_ref().is_some_and(|from| from.id == user);
                let Some(next) = message.text.filter(|t| same_sender && !t.trim_start().starts_with('/'))
                else {
                    // Someone else, a command or not text: the burst ends before it.
                    break;
                };
                more.push((id, self.without_mention(&next)));
            }
            if more.is_empty() {
                break;
            }
            for (id, next) in more {
                let store = self.store.clone();
                let note = format!("answered with update {first}");
                let _ = tokio::task::spawn_blocking(move || store.finish(id, &note)).await;
                texts.push(next);
                last = id;
            }
        }
        texts.join("\n\n")
    }

    /// A press of an Approve / Deny button: only the owner's, only with data this gateway
    /// signed; the decision runs the call (or not), the agent's continuation is sent to the
    /// chat, and the request's message says what came of it.
    async fn button(&self, query: Value) -> Outcome {
        let id = query["id"].as_str().unwrap_or("").to_string();
        let from = query["from"]["id"].as_i64();
        let data = query["data"].as_str().unwrap_or("");
        let chat = query["message"]["chat"]["id"].as_i64();
        let message = query["message"]["message_id"].as_i64();
        if from != self.owner || from.is_none() {
            self.audit.record(AuditEvent::new(
                "telegram_refused",
                Severity::WARNING,
                format!("an approval button was pressed by telegram:{} (not the owner)", from.unwrap_or(0)),
            ));
            let _ = self.api.answer_callback(&id, "Only the owner can decide this.").await;
            return "button from someone else: refused".into();
        }
        let Some((request, approve)) = self.signer.verify(data) else {
            self.audit.record(AuditEvent::new(
                "telegram_refused",
                Severity::HIGH,
                "an approval button with data this gateway did not sign was pressed".to_string(),
            ));
            let _ = self.api.answer_callback(&id, "This button is not valid.").await;
            return "button with forged data: refused".into();
        };
        let _ = self.api.answer_callback(&id, if approve { "Approving…" } else { "Denying…" }).await;
        let chat = chat.or(self.owner).unwrap_or(0);
        let (tx, rx) = mpsc::unbounded_channel();
        let events = ChannelEvents { tx };
        let replier = tokio::spawn(stream_reply(self.api.clone(), chat, rx));
        let decided =
            self.gateway.decide(&request, clawdia_core::Decision { approve, note: None }, &events).await;
        drop(events);
        let streamed = replier.await.unwrap_or_default();
        let (status, reply) = match &decided {
            Ok(decided) => {
                let text = match &decided.turn {
                    Some(Ok(outcome)) => outcome.text.clone(),
                    Some(Err(error)) => format!("The agent could not go on: {error}"),
                    None => decided.approval.result.clone().unwrap_or_default(),
                };
                (
                    format!(
                        "{} {}",
                        if approve { "✅ Approved" } else { "❌ Denied" },
                        decided.approval.summary()
                    ),
                    text,
                )
            }
            Err(error) => (format!("⚠️ {error}"), String::new()),
        };
        if let Some(message) = message {
            // Without buttons now: a decision is made once.
            let _ = self.api.edit_message(chat, message, &status, false).await;
        }
        if !reply.trim().is_empty() || streamed.message.is_some() {
            self.deliver(
                chat,
                streamed.message,
                if reply.trim().is_empty() { &streamed.text } else { &reply },
            )
            .await;
        }
        match decided {
            Ok(_) => format!("request {request} {}", if approve { "approved" } else { "denied" }),
            Err(error) => format!("request {request}: {error}"),
        }
    }

    /// Whether a group message is for the bot: it mentions it or replies to it.
    fn addressed(&self, message: &IncomingMessage) -> bool {
        if !self.config.groups {
            return false;
        }
        let Some(me) = self.me.get() else { return false };
        let replied =
            message.reply_to_message.as_ref().and_then(|m| m.from.as_ref()).is_some_and(|u| u.id == me.id);
        let mentioned = me.username.as_deref().is_some_and(|name| {
            message
                .text
                .as_deref()
                .unwrap_or("")
                .to_lowercase()
                .contains(&format!("@{}", name.to_lowercase()))
        });
        replied || mentioned
    }

    fn without_mention(&self, text: &str) -> String {
        match self.me.get().and_then(|me| me.username.clone()) {
            Some(name) => text.replace(&format!("@{name}"), "").trim().to_string(),
            None => text.trim().to_string(),
        }
    }

    /// Lets the sender in, or says why not (audited; a pairing request is filed and the owner
    /// told).
    async fn admit(&self, from: &User, chat: i64, private: bool) -> Result<(), Outcome> {
        if Some(from.id) == self.owner || self.config.allow.contains(&from.id) {
            return Ok(());
        }
        let store = self.store.clone();
        let user = from.id;
        let paired =
            tokio::task::spawn_blocking(move || store.is_allowed(user)).await.ok().and_then(Result::ok);
        let let_in = match self.config.dm_policy {
            DmPolicy::Open => true,
            DmPolicy::Allowlist | DmPolicy::Pairing => paired == Some(true),
            DmPolicy::Disabled => false,
        };
        if let_in {
            return Ok(());
        }
        let who = describe(from);
        self.audit.record(AuditEvent::new(
            "telegram_refused",
            Severity::WARNING,
            format!("a message from {who} was refused (dm_policy {})", self.config.dm_policy.name()),
        ));
        if !private {
            return Err(format!("refused {who} in a group"));
        }
        if self.config.dm_policy != DmPolicy::Pairing {
            self.reply_plain(chat, "Sorry, this assistant only talks to people its owner allowed.").await;
            return Err(format!("refused {who}"));
        }
        let store = self.store.clone();
        let username = from.username.clone();
        let now = clawdia_core::time::now_ms();
        let code = tokio::task::spawn_blocking(move || {
            store.request_pairing(user, username.as_deref(), chat, now, || {
                clawdia_core::browser::pairing_code().ok()
            })
        })
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
        let Some(code) = code else {
            return Err(format!("refused {who}: no pairing code could be made"));
        };
        self.reply_plain(
            chat,
            &format!(
                "Hi! I don't know you yet. Send this code to my owner; once they run `clawdia telegram pair {code}` you can talk to me."
            ),
        )
        .await;
        self.notifier.notify(Alert::new(
            "telegram_pairing_request",
            Severity::NOTICE,
            format!("{who} asks to talk to the Telegram bot"),
            format!("Let them in with: clawdia telegram pair {code}"),
        ));
        Err(format!("pairing requested by {who}"))
    }

    /// `/start`, `/new`, `/agent [NAME]`; `None` for anything else.
    async fn command(&self, chat: i64, text: &str) -> Option<Outcome> {
        let mut words = text.split_whitespace();
        let first = words.next()?;
        let command = first.split('@').next().unwrap_or(first);
        let (agent, _) = self.chat_state(chat).await;
        match command {
            "/start" => {
                self.reply_plain(
                    chat,
                    &format!("Hello! You're talking to `{agent}`. /new starts a new conversation."),
                )
                .await;
                Some("start".into())
            }
            "/new" => {
                self.save_chat(chat, &agent, None).await;
                self.reply_plain(chat, "New conversation started.").await;
                Some("new session".into())
            }
            "/agent" => match words.next() {
                Some(name) if self.config.agents.iter().any(|a| a == name) => {
                    self.save_chat(chat, name, None).await;
                    self.reply_plain(chat, &format!("Now talking to `{name}` (a new conversation).")).await;
                    Some(format!("switched to {name}"))
                }
                Some(name) => {
                    self.reply_plain(
                        chat,
                        &format!("No agent `{name}` here. Choose one of: {}", self.config.agents.join(", ")),
                    )
                    .await;
                    Some(format!("unknown agent {name}"))
                }
                None => {
                    self.reply_plain(
                        chat,
                        &format!("Talking to `{agent}`. Agents here: {}", self.config.agents.join(", ")),
                    )
                    .await;
                    Some("listed agents".into())
                }
            },
            _ => None,
        }
    }

    async fn chat_state(&self, chat: i64) -> (String, Option<String>) {
        let store = self.store.clone();
        let saved =
            tokio::task::spawn_blocking(move || store.chat(chat)).await.ok().and_then(Result::ok).flatten();
        match saved {
            Some((agent, session)) if self.config.agents.contains(&agent) => (agent, session),
            _ => (self.config.agent.clone(), None),
        }
    }

    async fn save_chat(&self, chat: i64, agent: &str, session: Option<&str>) {
        let store = self.store.clone();
        let (agent, session) = (agent.to_string(), session.map(str::to_string));
        let saved =
            tokio::task::spawn_blocking(move || store.set_chat(chat, &agent, session.as_deref())).await;
        if let Ok(Err(error)) = saved {
            tracing::warn!(%error, "telegram: cannot save a chat's session");
        }
    }

    async fn turn(&self, chat: i64, from: &User, owner: bool, text: String, spoken: bool) -> Outcome {
        let (agent, session) = self.chat_state(chat).await;
        let request = TurnRequest {
            from_owner: owner,
            agent: agent.clone(),
            session: session.clone(),
            message: text,
            origin: TurnOrigin::Telegram,
            sender: Some(from.id.to_string()),
            history: Vec::new(),
            tools_allow: None,
            context: TurnContext::Full,
            options: Default::default(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let events = ChannelEvents { tx };
        let replier = tokio::spawn(stream_reply(self.api.clone(), chat, rx));
        let result = self.gateway.run_turn(request, &events).await;
        drop(events);
        let streamed = replier.await.unwrap_or_default();
        match result {
            Ok(outcome) => {
                let session_id = outcome.session_id.clone();
                self.save_chat(chat, &agent, Some(&session_id)).await;
                let text =
                    if outcome.text.trim().is_empty() { streamed.text.clone() } else { outcome.text.clone() };
                // A call waiting for approval: the agent's own text says so, and the request
                // reaches the owner through the alert routes (with buttons here).
                self.deliver(chat, streamed.message, &text).await;
                let speak = match self.config.voice_reply {
                    VoiceReply::Always => true,
                    VoiceReply::Spoken => spoken,
                    VoiceReply::Never => false,
                };
                if speak {
                    self.speak(chat, &text).await;
                }
                format!("answered in session {session_id}")
            }
            Err(error) => {
                let message = format!("Sorry, that failed: {error}");
                self.deliver(chat, streamed.message, &message).await;
                format!("turn failed: {error}")
            }
        }
    }

    /// Sends the final reply: the first chunk replaces the streamed message (if any), the rest
    /// follow as new messages; each as HTML, or plain when Telegram refuses the HTML.
    async fn deliver(&self, chat: i64, streamed: Option<i64>, text: &str) {
        let chunks = format::split(text, format::CHUNK_UNITS);
        let mut editing = streamed;
        for chunk in chunks {
            let html = format::to_html(&chunk);
            let sent = match editing.take() {
                Some(message) => match self.api.edit_message(chat, message, &html, true).await {
                    Err(error) if api::is_markup_error(&error) => {
                        self.api.edit_message(chat, message, &chunk, false).await
                    }
                    other => other,
                },
                None => match self.api.send_message(chat, &html, true).await {
                    Err(error) if api::is_markup_error(&error) => {
                        self.api.send_message(chat, &chunk, false).await.map(|_| ())
                    }
                    other => other.map(|_| ()),
                },
            };
            if let Err(error) = sent {
                tracing::warn!(%error, chat, "telegram: a reply could not be sent");
                if let ApiError::RetryAfter(wait) = error {
                    tokio::time::sleep(wait).await;
                    let _ = self.api.send_message(chat, &chunk, false).await;
                }
            }
        }
    }

    /// The reply, also as a voice note (after the text, which stays the full answer).
    async fn speak(&self, chat: i64, text: &str) {
        let Some(voice) = self.voice.as_ref().filter(|voice| voice.can_speak()) else {
            tracing::debug!(chat, "telegram: a spoken reply was due but text to speech is not set up");
            return;
        };
        let words = format::to_speech(text);
        if words.is_empty() {
            return;
        }
        let _ = self.api.chat_action(chat, "record_voice").await;
        match voice.voice_note(&words).await {
            Ok(note) => {
                if let Err(error) = self.api.send_voice(chat, &note, None).await {
                    tracing::warn!(%error, chat, "telegram: a voice reply could not be sent");
                }
            }
            Err(error) => tracing::warn!(%error, chat, "telegram: the reply could not be spoken"),
        }
    }

    async fn reply_plain(&self, chat: i64, text: &str) {
        if let Err(error) = self.api.send_message(chat, text, false).await {
            tracing::warn!(%error, chat, "telegram: a reply could not be sent");
        }
    }
}

/// Counts an update as being handled until dropped.
struct Busy(Arc<Telegram>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
        self.0.finished.notify_waiters();
    }
}

/// Whether a failure at start or on a poll is the configuration's (the token) or someone
/// else's (another poller): either way the run ends, with a line saying which.
fn fatal_or_retry(error: &ApiError) -> String {
    match error {
        ApiError::Refused { code: 401 | 404, .. } => {
            format!("the bot token was refused ({error}): check [channels.telegram] token")
        }
        ApiError::Refused { code: 409, .. } => format!(
            "another client is polling this bot, or a webhook is set ({error}): stop the other client (or delete the webhook)"
        ),
        other => other.to_string(),
    }
}

/// `20261207-221503`: the moment a file arrived, for its name.
fn stamp() -> String {
    let text = clawdia_core::time::rfc3339_utc(clawdia_core::time::now_ms());
    let (date, time) = text.split_once('T').unwrap_or((&text, ""));
    format!("{}-{}", date.replace('-', ""), time.get(..8).unwrap_or("").replace(':', ""))
}

/// `532 B`, `14 KB`, `3.2 MB`.
fn human_size(bytes: usize) -> String {
    match bytes {
        0..1_024 => format!("{bytes} B"),
        1_024..1_048_576 => format!("{} KB", bytes / 1_024),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}

fn describe(user: &User) -> String {
    match &user.username {
        Some(name) => format!("@{name} (telegram:{})", user.id),
        None => format!("telegram:{}", user.id),
    }
}

/// A turn's events, sent to the task that streams the reply.
struct ChannelEvents {
    tx: mpsc::UnboundedSender<TurnEvent>,
}

impl TurnEvents for ChannelEvents {
    fn event(&self, event: TurnEvent) {
        let _ = self.tx.send(event);
    }
}

/// What the streaming task left: the message it created (edited last with the text so far),
/// and the text.
#[derive(Debug, Default)]
struct Streamed {
    message: Option<i64>,
    text: String,
}

/// Shows "typing…", then the reply as it grows: one message, edited at most every
/// `EDIT_EVERY`, plain text while streaming (the final edit formats it).
async fn stream_reply(api: Api, chat: i64, mut events: mpsc::UnboundedReceiver<TurnEvent>) -> Streamed {
    let mut streamed = Streamed::default();
    let mut shown = String::new();
    let _ = api.typing(chat).await;
    let mut typing = tokio::time::interval(TYPING_EVERY);
    typing.tick().await;
    let mut edit = tokio::time::interval(EDIT_EVERY);
    edit.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                None => return streamed,
                Some(TurnEvent::TextDelta { text }) => streamed.text.push_str(&clawdia_core::redact::redact_string(text)),
                Some(TurnEvent::Discard { .. }) => streamed.text.clear(),
                Some(_) => {}
            },
            _ = typing.tick() => {
                let _ = api.typing(chat).await;
            }
            _ = edit.tick() => {
                let text = streamed.text.trim();
                // Only while it fits one message; the final delivery splits what is longer.
                if text.is_empty() || text == shown || text.encode_utf16().count() > format::CHUNK_UNITS {
                    continue;
                }
                let result = match streamed.message {
                    Some(message) => api.edit_message(chat, message, &format!("{text} …"), false).await,
                    None => api.send_message(chat, &format!("{text} …"), false).await.map(|sent| {
                        streamed.message = Some(sent.message_id);
                    }),
                };
                match result {
                    Ok(()) => shown = text.to_string(),
                    Err(ApiError::RetryAfter(wait)) => tokio::time::sleep(wait).await,
                    Err(error) => tracing::debug!(%error, "telegram: a streaming edit failed"),
                }
            }
        }
    }
}

/// The `telegram` alert route: each alert as a message to the owner; an approval request's with
/// Approve / Deny buttons.
struct OwnerAlerts {
    api: Api,
    owner: i64,
    signer: callback::Signer,
}

#[async_trait::async_trait]
impl clawdia_core::AlertChannel for OwnerAlerts {
    async fn deliver(&self, _id: &str, _raised_at: i64, alert: &Alert) -> Result<(), String> {
        let mut text = String::new();
        text.push_str("<b>");
        text.push_str(&format::escape_html(&alert.title));
        text.push_str("</b>");
        if !alert.body.trim().is_empty() {
            text.push('\n');
            text.push_str(&format::escape_html(clawdia_core::redact::redact(&alert.body).as_ref()));
        }
        let text: String = text.chars().take(3_500).collect();
        let buttons = alert.approval.as_ref().map(|request| {
            serde_json::json!({"inline_keyboard": [[
                {"text": "Approve", "callback_data": self.signer.sign(request, true)},
                {"text": "Deny", "callback_data": self.signer.sign(request, false)},
            ]]})
        });
        match self.api.send_with_buttons(self.owner, &text, true, buttons.clone()).await {
            Ok(_) => Ok(()),
            Err(error) if api::is_markup_error(&error) => {
                let plain = format!("{}\n{}", alert.title, alert.body);
                self.api
                    .send_with_buttons(self.owner, &plain, false, buttons)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        }
    }
}
