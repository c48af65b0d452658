//! The email channel: a mailbox the owner writes to. The IMAP folder is watched with IDLE when
//! the server offers it (polled every `poll_secs` otherwise); each new message is stored whole
//! in `state/email.db` in the same transaction that moves the read position past its UID, then
//! handled: who sent it is decided here ([`auth`]: DKIM aligned with the From domain, DMARC,
//! SPF as a signal) and only the owner's address (`[owner] email`) and `allow` pass; everything
//! else is audited (`email_refused`) and dropped. An accepted message becomes a turn as
//! `email:<address>`, its text (HTML reduced to text) inside trust markers even from the owner,
//! since a mail's content is never the owner's own words the way a terminal's is; attachments
//! up to `max_attachment_mb` are saved into the agent's workspace under `uploads/email/`. A
//! thread (Message-ID, In-Reply-To, References) is one session. The answer goes back through
//! SMTP submission as a threaded plain-text reply. The same sender is the `email` alert route.
//!
//! Invariants: no message reaches a model unless it passed authentication from an allowed
//! address; a restart neither loses a message (it is stored before the position moves) nor
//! runs one twice (one found mid-turn is marked interrupted, not rerun); the channel never
//! answers its own address or automatic mail (no loops).

pub mod auth;
pub mod net;
pub mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clawdia_config::EmailConfig;
use clawdia_core::{Alert, AuditEvent, AuditSink, Gateway, Severity, TurnContext, TurnOrigin, TurnRequest};
use futures_util::TryStreamExt as _;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};
use mail_parser::MimeHeaders as _;

use crate::auth::Verifier;
use crate::store::{Store, Stored};

/// How long one IDLE waits before it is renewed (servers drop IDLE after 30 minutes).
const IDLE_RENEW: Duration = Duration::from_secs(25 * 60);
/// Tries of one outgoing mail, one second apart and doubling.
const SEND_TRIES: u32 = 3;

/// Why the channel cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("email: {0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Sends mail through the SMTP submission server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.email.to_string()).finish_non_exhaustive()
    }
}

/// An outgoing message's threading.
#[derive(Debug, Clone, Default)]
pub struct Thread {
    /// The Message-ID replied to, with angle brackets.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first, with angle brackets.
    pub references: Vec<String>,
}

impl Mailer {
    /// A sender for `config` (the password is read now).
    pub fn new(config: &EmailConfig) -> Result<Mailer, EmailError> {
        let password = config
            .password
            .resolve()
            .map_err(|e| EmailError::Setup(format!("channels.email.password: {e}")))?;
        let transport =
            net::smtp(&config.smtp, &config.username, password.expose()).map_err(EmailError::Setup)?;
        let from: Mailbox =
            config.from.parse().map_err(|e| EmailError::Setup(format!("channels.email.from: {e}")))?;
        let domain = config.from.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
        Ok(Mailer { transport, from, domain })
    }

    /// Sends a plain-text message to `to`; its Message-ID (with angle brackets). Retried a few
    /// times when the server cannot be reached or answers with a temporary error.
    pub async fn send(&self, to: &str, subject: &str, text: &str, thread: &Thread) -> Result<String, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("`{to}` is not an address: {e}"))?;
        let id = clawdia_core::random::hex(16).map_err(|e| e.to_string())?;
        let message_id = format!("<{id}@{}>", self.domain);
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(subject))
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .header(AutoSubmitted);
        if let Some(parent) = &thread.in_reply_to {
            builder = builder.in_reply_to(parent.clone());
        }
        if !thread.references.is_empty() {
            builder = builder.references(thread.references.join(" "));
        }
        let message = builder.body(text.to_string()).map_err(|e| format!("cannot build the mail: {e}"))?;
        let mut pause = Duration::from_secs(1);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(message_id),
                Err(error) if error.is_permanent() || tries >= SEND_TRIES => {
                    return Err(format!("the SMTP server did not take the mail: {error}"));
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }
}

/// `Auto-Submitted: auto-replied`: what the channel sends is not to be answered automatically.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "auto-replied".to_string())
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect()
}

/// The `email` alert route: each alert as a plain-text mail to the owner.
struct OwnerAlerts {
    mailer: Mailer,
    owner: String,
}

#[async_trait::async_trait]
impl clawdia_core::AlertChannel for OwnerAlerts {
    async fn deliver(&self, id: &str, _raised_at: i64, alert: &Alert) -> Result<(), String> {
        let mut text = String::new();
        text.push_str(&alert.title);
        text.push_str("\n\n");
        if !alert.body.trim().is_empty() {
            text.push_str(clawdia_core::redact::redact(&alert.body).as_ref());
            text.push_str("\n\n");
        }
        if let Some(agent) = &alert.agent {
            text.push_str(&format!("Agent: {agent}\n"));
        }
        if let Some(request) = &alert.approval {
            text.push_str(&format!("Approval request: {request} (clawdia broker approve|deny {request})\n"));
        }
        text.push_str(&format!("Severity: {}, kind: {}, alert id: {id}\n", alert.severity.0, alert.kind));
        // A request the owner may answer by mail carries its one-time reply tag in the subject.
        let subject = match clawdia_core::elevation::reply_tag(&alert.body) {
            Some((request, token)) => format!("[clawdia] {} [clawdia:{request}:{token}]", alert.title),
            None => format!("[clawdia] {}", alert.title),
        };
        self.mailer.send(&self.owner, &subject, &text, &Thread::default()).await.map(|_| ())
    }
}

/// The subject (`Re: ...`) and threading headers of a reply to `parsed`.
fn reply_to(parsed: &Parsed) -> (String, Thread) {
    let subject = if parsed.subject.trim().to_ascii_lowercase().starts_with("re:") {
        parsed.subject.clone()
    } else {
        format!("Re: {}", parsed.subject.trim())
    };
    let mut references = parsed.references.clone();
    if let Some(id) = &parsed.message_id
        && !references.contains(id)
    {
        references.push(id.clone());
    }
    (subject, Thread { in_reply_to: parsed.message_id.clone(), references })
}

/// What the message said, as the channel reads it.
#[derive(Debug)]
struct Parsed {
    message_id: Option<String>,
    /// In-Reply-To then References, newest first, with angle brackets.
    parents: Vec<String>,
    /// References as written, oldest first.
    references: Vec<String>,
    subject: String,
    text: String,
    automatic: bool,
    attachments: Vec<(String, Vec<u8>)>,
}

fn bracket(id: &str) -> String {
    format!("<{}>", id.trim().trim_start_matches('<').trim_end_matches('>'))
}

fn parse(raw: &[u8]) -> Option<Parsed> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let ids = |value: &mail_parser::HeaderValue<'_>| -> Vec<String> {
        value.as_text_list().map(|list| list.iter().map(|id| bracket(id)).collect()).unwrap_or_default()
    };
    let references = ids(message.references());
    let mut parents = ids(message.in_reply_to());
    parents.extend(references.iter().rev().cloned());
    let automatic =
        message.header_raw("Auto-Submitted").is_some_and(|value| !value.trim().eq_ignore_ascii_case("no"))
            || message.header_raw("Precedence").is_some_and(|v| {
                matches!(v.trim().to_ascii_lowercase().as_str(), "bulk" | "junk" | "list" | "auto_reply")
            });
    let text = message.body_text(0).map(|text| text.into_owned()).unwrap_or_default();
    let attachments = message
        .attachments()
        .enumerate()
        .map(|(index, part)| {
            let name = part
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("attachment-{}", index + 1));
            (name, part.contents().to_vec())
        })
        .collect();
    Some(Parsed {
        message_id: message.message_id().map(bracket),
        parents,
        references,
        subject: message.subject().unwrap_or("").to_string(),
        text,
        automatic,
        attachments,
    })
}

/// The email channel of one mailbox.
pub struct Email {
    config: EmailConfig,
    owner: Option<String>,
    password: String,
    store: Arc<Store>,
    gateway: Arc<dyn Gateway>,
    audit: Arc<dyn AuditSink>,
    verifier: Verifier,
    mailer: Mailer,
    workspaces: HashMap<String, PathBuf>,
    /// Called with each message's UID when its turn starts (benchmarks and tests).
    on_turn: Option<Box<dyn Fn(u32) + Send + Sync>>,
}

impl std::fmt::Debug for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email").field("imap", &self.config.imap.host).finish_non_exhaustive()
    }
}

impl Email {
    /// The channel for `config`, its state in `state_dir`; `owner` is `[owner] email`.
    pub fn new(
        config: EmailConfig,
        owner: Option<String>,
        state_dir: &Path,
        gateway: Arc<dyn Gateway>,
        audit: Arc<dyn AuditSink>,
        verifier: Verifier,
    ) -> Result<Email, EmailError> {
        let password = config
            .password
            .resolve()
            .map_err(|e| EmailError::Setup(format!("channels.email.password: {e}")))?
            .expose()
            .to_string();
        let mailer = Mailer::new(&config)?;
        let store = Arc::new(Store::open(state_dir)?);
        Ok(Email {
            owner: owner.map(|o| o.to_ascii_lowercase()),
            config,
            password,
            store,
            gateway,
            audit,
            verifier,
            mailer,
            workspaces: HashMap::new(),
            on_turn: None,
        })
    }

    /// Each agent's workspace folder: where attachments are saved.
    pub fn with_workspaces(mut self, workspaces: HashMap<String, PathBuf>) -> Email {
        self.workspaces = workspaces;
        self
    }

    /// Calls `hook` with each message's UID as its turn starts.
    pub fn on_turn(mut self, hook: impl Fn(u32) + Send + Sync + 'static) -> Email {
        self.on_turn = Some(Box::new(hook));
        self
    }

    /// The `email` alert route's sender, when the owner has an address.
    pub fn alert_channel(
        config: &EmailConfig,
        owner: Option<&str>,
    ) -> Result<Option<Arc<dyn clawdia_core::AlertChannel>>, EmailError> {
        let Some(owner) = owner else { return Ok(None) };
        let mailer = Mailer::new(config)?;
        Ok(Some(Arc::new(OwnerAlerts { mailer, owner: owner.to_string() })))
    }

    /// The store (tests and status).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Reads the mailbox until `stop` resolves: messages left from an earlier run first, then
    /// new ones as they arrive. A connection that fails ends the run with the reason (the
    /// daemon restarts it with backoff).
    pub async fn run(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), String> {
        tokio::pin!(stop);
        let store = self.store.clone();
        let interrupted = tokio::task::spawn_blocking(move || store.interrupt_handling())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        for seq in interrupted {
            self.audit.record(AuditEvent::new(
                "email_interrupted",
                Severity::WARNING,
                format!("a mail (#{seq}) was being answered when the gateway stopped; it is not run again"),
            ));
        }
        self.handle_pending().await;
        let mailbox = self.config.mailbox.clone();
        let (mut session, selected) =
            net::imap(&self.config.imap, &self.config.username, &self.password, &mailbox).await?;
        let validity = selected.uid_validity.unwrap_or(0);
        let next = selected.uid_next.unwrap_or(1);
        match self.store.position(&mailbox).map_err(|e| e.to_string())? {
            Some((known, _)) if known == validity => {}
            known => {
                if known.is_some() {
                    self.audit.record(AuditEvent::new(
                        "email_uidvalidity",
                        Severity::WARNING,
                        format!("the folder `{mailbox}` was recreated on the server (new UIDVALIDITY); reading from its newest mail on"),
                    ));
                }
                // Mail already in the folder when the channel first sees it is left alone.
                self.store
                    .reset_position(&mailbox, validity, next.saturating_sub(1))
                    .map_err(|e| e.to_string())?;
            }
        }
        let idle = net::has_idle(&mut session).await;
        tracing::info!(folder = %mailbox, idle, "email: reading the mailbox");
        loop {
            self.fetch_new(&mut session, validity).await?;
            self.handle_pending().await;
            if idle {
                let mut handle = session.idle();
                handle.init().await.map_err(|e| format!("IMAP IDLE: {e}"))?;
                let stopped = {
                    let (wait, _interrupt) = handle.wait_with_timeout(IDLE_RENEW);
                    tokio::select! {
                        result = wait => {
                            result.map_err(|e| format!("IMAP IDLE: {e}"))?;
                            false
                        }
                        () = &mut stop => true,
                    }
                };
                if stopped {
                    return Ok(());
                }
                session = handle.done().await.map_err(|e| format!("IMAP IDLE: {e}"))?;
            } else {
                tokio::select! {
                    () = tokio::time::sleep(self.config.poll) => {}
                    () = &mut stop => {
                        let _ = session.logout().await;
                        return Ok(());
                    }
                }
                // Polling: NOOP lets the server report new mail before the next fetch.
                session.noop().await.map_err(|e| format!("IMAP NOOP: {e}"))?;
            }
        }
    }

    /// The largest mail downloaded: four times the attachment limit, plus 1 MB.
    fn max_message_bytes(&self) -> u64 {
        self.config.max_attachment_bytes.saturating_mul(4).saturating_add(1 << 20)
    }

    /// Stores every message past the read position (one too large to download is recorded as
    /// refused and audited instead).
    async fn fetch_new(&self, session: &mut net::ImapSession, validity: u32) -> Result<(), String> {
        let mailbox = &self.config.mailbox;
        let last = match self.store.position(mailbox).map_err(|e| e.to_string())? {
            Some((_, last)) => last,
            None => 0,
        };
        let sizes: Vec<async_imap::types::Fetch> = session
            .uid_fetch(format!("{}:*", last + 1), "(UID RFC822.SIZE)")
            .await
            .map_err(|e| format!("IMAP FETCH: {e}"))?
            .try_collect()
            .await
            .map_err(|e| format!("IMAP FETCH: {e}"))?;
        let mut new: Vec<(u32, u64)> = sizes
            .iter()
            .filter_map(|fetch| Some((fetch.uid?, u64::from(fetch.size.unwrap_or(0)))))
            .filter(|(uid, _)| *uid > last)
            .collect();
        new.sort_unstable();
        for (uid, size) in new {
            let store = self.store.clone();
            let mailbox = mailbox.clone();
            if size > self.max_message_bytes() {
                let note = format!(
                    "mail UID {uid} refused unread: {} is over the {} limit (4 x max_attachment_mb + 1 MB)",
                    human_size(size),
                    human_size(self.max_message_bytes())
                );
                self.audit.record(
                    AuditEvent::new("email_refused", Severity::WARNING, note.clone())
                        .agent(&self.config.agent),
                );
                tokio::task::spawn_blocking(move || store.skip(&mailbox, validity, uid, &note))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                continue;
            }
            let fetched: Vec<async_imap::types::Fetch> = session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                .await
                .map_err(|e| format!("IMAP FETCH: {e}"))?
                .try_collect()
                .await
                .map_err(|e| format!("IMAP FETCH: {e}"))?;
            // A message expunged meanwhile has nothing to store; the position moves on.
            let raw = fetched
                .iter()
                .find(|f| f.uid == Some(uid))
                .and_then(|f| f.body())
                .unwrap_or_default()
                .to_vec();
            tokio::task::spawn_blocking(move || {
                if raw.is_empty() {
                    store.skip(&mailbox, validity, uid, "gone from the server before it was read")
                } else {
                    store.take(&mailbox, validity, uid, &raw)
                }
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Handles every stored message not handled yet, oldest first.
    async fn handle_pending(&self) {
        let pending = match self.store.pending() {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(%error, "email: cannot read pending mail");
                return;
            }
        };
        for stored in pending {
            if let Err(error) = self.store.mark(stored.seq, "handling", "") {
                tracing::warn!(%error, "email: cannot mark a mail");
                return;
            }
            let (state, note) = self.handle(&stored).await;
            if let Err(error) = self.store.mark(stored.seq, state, &note) {
                tracing::warn!(%error, "email: cannot mark a mail");
            }
        }
    }

    fn refuse(&self, detail: String, severity: Severity) -> (&'static str, String) {
        self.audit
            .record(AuditEvent::new("email_refused", severity, detail.clone()).agent(&self.config.agent));
        ("refused", detail)
    }

    /// The owner's mail answering request `request`: read by the broker, the outcome mailed
    /// back in the same thread.
    async fn operator_reply(
        &self,
        from: &str,
        parsed: &Parsed,
        request: &str,
        token: &str,
    ) -> (&'static str, String) {
        let (answer, note) = match self.gateway.operator_reply_with_token(request, token, &parsed.text).await
        {
            Ok(outcome) => {
                let note = format!("reply to request {request}: {}", outcome.status.as_str());
                (outcome.message, note)
            }
            Err(error) => (
                format!("Your reply to request {request} was not applied: {error}"),
                format!("reply to request {request} refused: {error}"),
            ),
        };
        let (subject, thread) = reply_to(parsed);
        match self.mailer.send(from, &subject, &answer, &thread).await {
            Ok(_) => ("done", note),
            Err(error) => ("done", format!("{note}; the answer could not be mailed: {error}")),
        }
    }

    /// Handles one message: `(state, note)`.
    async fn handle(&self, stored: &Stored) -> (&'static str, String) {
        let verdict = self.verifier.check(&stored.raw).await;
        let Some(from) = verdict.from.clone() else {
            return self.refuse(
                format!("mail UID {} refused: it has no single From address", stored.uid),
                Severity::WARNING,
            );
        };
        if from == self.config.from {
            return ("skipped", "mail from the channel's own address".into());
        }
        let allowed = self.owner.as_deref() == Some(from.as_str()) || self.config.allow.contains(&from);
        if !allowed {
            return self.refuse(
                format!(
                    "mail from {from} refused: not the owner's address or in `allow` ({})",
                    verdict.summary()
                ),
                Severity::WARNING,
            );
        }
        if !verdict.authentic {
            return self.refuse(
                format!(
                    "mail claiming to be from {from} refused: it failed authentication ({})",
                    verdict.summary()
                ),
                Severity::HIGH,
            );
        }
        let Some(parsed) = parse(&stored.raw) else {
            return self.refuse(format!("mail from {from} refused: it cannot be parsed"), Severity::WARNING);
        };
        if parsed.automatic {
            return ("skipped", format!("automatic mail from {from} (not answered)"));
        }
        // The owner's answer to a request the broker asked about: it counts only with the
        // request's one-time token from the subject tag.
        if self.owner.as_deref() == Some(from.as_str())
            && let Some((request, token)) = clawdia_core::elevation::reply_tag(&parsed.subject)
        {
            return self.operator_reply(&from, &parsed, &request, &token).await;
        }
        let known = if parsed.parents.is_empty() {
            None
        } else {
            let store = self.store.clone();
            let parents = parsed.parents.clone();
            tokio::task::spawn_blocking(move || store.thread(&parents))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
        };
        let (agent, session) = match known {
            Some((agent, session)) if self.workspaces.is_empty() || self.workspaces.contains_key(&agent) => {
                (agent, Some(session))
            }
            _ => (self.config.agent.clone(), None),
        };
        let saved = self.save_attachments(&agent, &parsed.attachments);
        let mut message =
            format!("Email from {from}\nSubject: {}\n\n{}", one_line(&parsed.subject), parsed.text.trim());
        if !saved.is_empty() {
            message.push_str("\n\nAttachments:\n");
            message.push_str(&saved.join("\n"));
        }
        if let Some(hook) = &self.on_turn {
            hook(stored.uid);
        }
        let request = TurnRequest {
            // A mail is never the owner's own words: its headers could be forged upstream.
            from_owner: false,
            agent: agent.clone(),
            session,
            message,
            origin: TurnOrigin::Email,
            sender: Some(from.clone()),
            history: Vec::new(),
            tools_allow: None,
            context: TurnContext::Full,
            options: Default::default(),
        };
        let ignore = |_event: clawdia_core::TurnEvent| {};
        let result = self.gateway.run_turn(request, &ignore).await;
        let (text, session_id, note) = match result {
            Ok(outcome) => {
                let note = format!("answered in session {}", outcome.session_id);
                (outcome.text, Some(outcome.session_id), note)
            }
            Err(error) => (format!("Sorry, that failed: {error}"), None, format!("turn failed: {error}")),
        };
        let (subject, thread) = reply_to(&parsed);
        let text = if text.trim().is_empty() { "(no answer)".to_string() } else { text };
        match self.mailer.send(&from, &subject, &text, &thread).await {
            Ok(reply_id) => {
                if let Some(session) = session_id {
                    let mut ids = thread.references.clone();
                    ids.push(reply_id);
                    let store = self.store.clone();
                    let agent = agent.clone();
                    let joined =
                        tokio::task::spawn_blocking(move || store.join_thread(&ids, &agent, &session)).await;
                    if let Ok(Err(error)) = joined {
                        tracing::warn!(%error, "email: cannot record the thread");
                    }
                }
                ("done", note)
            }
            Err(error) => {
                self.audit.record(AuditEvent::new(
                    "email_send_failed",
                    Severity::WARNING,
                    format!("the reply to {from} could not be sent: {error}"),
                ));
                ("done", format!("{note}; the reply was not sent: {error}"))
            }
        }
    }

    /// Saves attachments up to the size limit into the agent's `uploads/email/`; one line for
    /// the model per attachment (saved where, or why not).
    fn save_attachments(&self, agent: &str, attachments: &[(String, Vec<u8>)]) -> Vec<String> {
        let limit = self.config.max_attachment_bytes;
        let Some(workspace) = self.workspaces.get(agent) else {
            return attachments
                .iter()
                .map(|(name, _)| format!("- {name}: not saved (no workspace)"))
                .collect();
        };
        let dir = workspace.join("uploads").join("email");
        attachments
            .iter()
            .map(|(name, bytes)| {
                let size = bytes.len() as u64;
                if size > limit {
                    return format!(
                        "- {name}: left out ({} over the {} MB limit)",
                        human_size(size),
                        limit >> 20
                    );
                }
                let Some(safe) = clawdia_core::uploads::safe_name(name) else {
                    return format!("- {name}: left out (no usable file name)");
                };
                match clawdia_core::uploads::save_new(&dir, &safe, bytes) {
                    Ok(path) => {
                        let relative = path.strip_prefix(workspace).unwrap_or(&path);
                        format!("- {} ({}), saved as {}", safe, human_size(size), relative.display())
                    }
                    Err(error) => format!("- {safe}: not saved ({error})"),
                }
            })
            .collect()
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / f64::from(1u32 << 20))
    } else if bytes >= 1 << 10 {
        format!("{} KB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}
