//! The request broker: user agents' `request_elevation` requests, from the inbox to the report.
//!
//! 1. A request is a JSON file in `state/broker/inbox/` (the dead drop: the `request_elevation`
//!    tool writes there, and so may anything else). The `broker` component takes each file as it
//!    appears (inotify, with a rescan every few seconds as a fallback and at start), stores it in
//!    `broker.db` as `received` and removes the file; an unreadable file moves to
//!    `inbox/rejected/` and is audited.
//! 2. The administrator agent (`[broker] admin_agent`) assesses it in a fresh session, with the
//!    request inside trust markers (it came from an agent, not the owner) and only its own tools.
//! 3. The owner is asked through the outbox (every alert route; the web and Telegram show
//!    Approve / Deny) with the request, the assessment and the exact commands.
//! 4. The owner decides (`clawdia broker approve|deny ID`, the web, Telegram): the decision is a
//!    compare-and-set, so it is applied once. Approved commands run one by one as argument
//!    vectors through the executing agent's `[agents.NAME.elevated]` command allowlist (the
//!    administrator's, else the requester's), never through a shell; the owner's approval stands
//!    in for the allowlist's sender rule.
//! 5. The outcome goes back to the requesting session as a bridge message, signed and verified
//!    (its nonce recorded), marked as such: never as the owner's words.
//!
//! Every transition is audited. A restart resumes what is safe to resume (an assessment is done
//! again; an approved request runs) and fails what is not (commands cut off while running are
//! never run twice). Requests nobody decided within `[broker] ttl` expire.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clawdia_agent::Agents;
use clawdia_config::Config;
use clawdia_core::elevation::{Elevation, ElevationStatus, Filed, Reading, ReplyOutcome, strict_reading};
use clawdia_core::{
    Alert, Approval, ApprovalStatus, AuditEvent, AuditSink, Gateway, Notifier, Severity, Tool, ToolContext,
    TurnContext, TurnOrigin, TurnRequest,
};
use clawdia_store::{Broker, ElevationChange};

use crate::daemon::{CancellationToken, Component};

/// The kind elevation requests have in `clawdia broker list`.
pub const KIND: &str = "elevation";

/// How often the inbox is rescanned and expiry checked, whatever inotify says.
const RESCAN: Duration = Duration::from_secs(5);

/// The inbox folder of a home.
pub fn inbox_dir(home: &Path) -> PathBuf {
    crate::state_dir(home).join("broker").join("inbox")
}

/// The broker's side of the gateway: requests, decisions, execution, reports.
pub struct Elevations {
    config: Config,
    broker: Arc<Broker>,
    agents: Arc<Agents>,
    notifier: Arc<dyn Notifier>,
    audit: Arc<dyn AuditSink>,
    /// Runs approved commands, per executing agent.
    executors: HashMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for Elevations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elevations").finish_non_exhaustive()
    }
}

impl Elevations {
    pub fn new(
        config: Config,
        broker: Arc<Broker>,
        agents: Arc<Agents>,
        notifier: Arc<dyn Notifier>,
        audit: Arc<dyn AuditSink>,
    ) -> Elevations {
        let executors = config
            .agents
            .values()
            .filter_map(|agent| {
                crate::host_exec_tool(
                    agent,
                    audit.clone(),
                    Some(vec![format!("{}:approved", TurnOrigin::Broker.as_str())]),
                )
                .map(|tool| (agent.name.clone(), tool))
            })
            .collect();
        Elevations { config, broker, agents, notifier, audit, executors }
    }

    fn record(&self, kind: &str, severity: Severity, elevation: &Elevation, message: String) {
        let mut event = AuditEvent::new(kind, severity, message);
        if let Some(agent) = &elevation.filed.agent {
            event = event.agent(agent);
        }
        if let Some(session) = &elevation.filed.session {
            event = event.session(session);
        }
        self.audit.record(event);
    }

    /// Moves `id` and audits the transition; the request after it, or `None` when someone else
    /// moved it first.
    fn transition(
        &self,
        id: &str,
        from: &[ElevationStatus],
        to: ElevationStatus,
        change: ElevationChange,
    ) -> Result<Option<Elevation>, String> {
        let moved = self
            .broker
            .move_elevation(id, from, to, change, clawdia_core::time::now_ms())
            .map_err(|e| e.to_string())?;
        if let Some(elevation) = &moved {
            let severity = if matches!(to, ElevationStatus::Failed | ElevationStatus::Executing) {
                Severity::HIGH
            } else {
                Severity::NOTICE
            };
            self.record(
                "elevation_transition",
                severity,
                elevation,
                format!("request {id} is now {}: {}", to.as_str(), elevation.summary()),
            );
        }
        Ok(moved)
    }

    /// Takes every request file in the inbox.
    pub async fn scan_inbox(&self) {
        let inbox = inbox_dir(&self.config.home);
        let files = tokio::task::spawn_blocking(move || -> Vec<PathBuf> {
            let Ok(entries) = std::fs::read_dir(&inbox) else { return Vec::new() };
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.is_file()
                        && path.extension().is_some_and(|ext| ext == "json")
                        && !path.file_name().is_some_and(|name| name.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            files
        })
        .await
        .unwrap_or_default();
        for file in files {
            self.ingest(&file);
        }
    }

    /// Stores one inbox file as a request (or rejects it), then removes it from the inbox.
    fn ingest(&self, path: &Path) {
        let name = path.file_stem().map(|stem| stem.to_string_lossy().to_string()).unwrap_or_default();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "broker: cannot read a request file");
                return;
            }
        };
        let filed = match Filed::parse(&bytes) {
            Ok(filed) => filed,
            // A writer that does not rename into place may still be writing: an unreadable file
            // is rejected only once it has been left alone for a while.
            Err(_) if recently_modified(path) => return,
            Err(why) => {
                let rejected = path.parent().map(|dir| dir.join("rejected")).unwrap_or_default();
                let _ = std::fs::create_dir_all(&rejected);
                let _ = std::fs::rename(path, rejected.join(path.file_name().unwrap_or_default()));
                self.audit.record(AuditEvent::new(
                    "elevation_rejected",
                    Severity::WARNING,
                    format!("the request file {name}.json was rejected: {why}"),
                ));
                return;
            }
        };
        let id = if !name.is_empty()
            && name.len() <= 32
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            name.to_ascii_lowercase()
        } else {
            clawdia_core::random::hex(4).unwrap_or(name)
        };
        let now = clawdia_core::time::now_ms();
        let ttl = i64::try_from(self.config.broker.ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let elevation = Elevation {
            id: id.clone(),
            status: ElevationStatus::Received,
            filed,
            assessment: None,
            note: None,
            result: None,
            created_at: now,
            updated_at: now,
            expires_at: now.saturating_add(ttl),
        };
        match self.broker.insert_elevation(&elevation) {
            Ok(true) => {
                self.record(
                    "elevation_received",
                    Severity::NOTICE,
                    &elevation,
                    format!("request {id} received: {}", elevation.summary()),
                );
                let _ = std::fs::remove_file(path);
            }
            // Seen before (a file left behind by a crash between storing and removing).
            Ok(false) => {
                let _ = std::fs::remove_file(path);
            }
            Err(error) => {
                tracing::warn!(%error, "broker: a request could not be stored; it stays in the inbox")
            }
        }
    }

    /// Assesses and asks about every received request, and expires the overdue. (An approved
    /// request runs in the decision that approved it; one a restart left approved runs in
    /// [`Elevations::recover`].)
    pub async fn advance(&self) {
        let open = [ElevationStatus::Received, ElevationStatus::AwaitingOperator];
        let Ok(requests) = self.broker.elevations(&open, 500) else { return };
        let now = clawdia_core::time::now_ms();
        for elevation in requests {
            let result = match elevation.status {
                ElevationStatus::Received => self.assess_and_ask(&elevation.id).await,
                ElevationStatus::AwaitingOperator if elevation.expires_at <= now => {
                    self.expire(&elevation.id).await
                }
                _ => Ok(()),
            };
            if let Err(error) = result {
                tracing::warn!(id = %elevation.id, %error, "broker: a request could not advance");
            }
        }
    }

    /// At start: an assessment cut off is done again (it changed nothing); an approved request
    /// whose commands had not started runs now; commands cut off while running are never run
    /// again: the request fails and the requester is told.
    pub async fn recover(&self) {
        let interrupted = [ElevationStatus::Assessing, ElevationStatus::Approved, ElevationStatus::Executing];
        let Ok(requests) = self.broker.elevations(&interrupted, 500) else {
            return;
        };
        for elevation in requests {
            let _ = match elevation.status {
                ElevationStatus::Approved => self.execute(&elevation.id).await.map(|_| ()),
                ElevationStatus::Assessing => self
                    .transition(
                        &elevation.id,
                        &[ElevationStatus::Assessing],
                        ElevationStatus::Received,
                        ElevationChange::default(),
                    )
                    .map(|_| ()),
                _ => {
                    let change = ElevationChange {
                        result: Some(
                            "the gateway stopped while the commands ran; they are not run again (check what took effect)"
                                .into(),
                        ),
                        ..Default::default()
                    };
                    match self.transition(
                        &elevation.id,
                        &[ElevationStatus::Executing],
                        ElevationStatus::Failed,
                        change,
                    ) {
                        Ok(Some(failed)) => {
                            self.report(&failed).await;
                            Ok(())
                        }
                        other => other.map(|_| ()),
                    }
                }
            };
        }
    }

    async fn assess_and_ask(&self, id: &str) -> Result<(), String> {
        let Some(elevation) = self.transition(
            id,
            &[ElevationStatus::Received],
            ElevationStatus::Assessing,
            ElevationChange::default(),
        )?
        else {
            return Ok(());
        };
        let assessment = match &self.config.broker.admin_agent {
            None => "No administrator agent is configured ([broker] admin_agent): no assessment.".to_string(),
            Some(admin) => {
                let request = TurnRequest {
                    from_owner: false,
                    agent: admin.clone(),
                    session: None,
                    message: assessment_prompt(&elevation),
                    origin: TurnOrigin::Broker,
                    sender: Some("assess".into()),
                    history: Vec::new(),
                    tools_allow: None,
                    context: TurnContext::Full,
                    options: Default::default(),
                };
                let ignore = |_event: clawdia_core::TurnEvent| {};
                match self.agents.run_turn(request, &ignore).await {
                    Ok(outcome) if !outcome.text.trim().is_empty() => outcome.text.trim().to_string(),
                    Ok(_) => "The administrator gave no assessment.".to_string(),
                    Err(error) => format!("The administrator could not assess it: {error}"),
                }
            }
        };
        let change = ElevationChange { assessment: Some(assessment), ..Default::default() };
        let Some(asked) =
            self.transition(id, &[ElevationStatus::Assessing], ElevationStatus::AwaitingOperator, change)?
        else {
            return Ok(());
        };
        let token = self.reply_token(id);
        self.notifier.notify(operator_alert(&asked, token.as_deref()));
        Ok(())
    }

    /// Applies the owner's decision on request `id` once; the request after it, or why not.
    pub async fn decide(
        &self,
        id: &str,
        approve: bool,
        note: Option<String>,
    ) -> Result<Elevation, DecideError> {
        let current = self
            .broker
            .elevation(id)
            .map_err(|e| DecideError::Failed(e.to_string()))?
            .ok_or(DecideError::NotFound)?;
        if current.status == ElevationStatus::AwaitingOperator
            && current.expires_at <= clawdia_core::time::now_ms()
        {
            self.expire(id).await.map_err(DecideError::Failed)?;
            return Err(DecideError::AlreadyDecided(ElevationStatus::Expired));
        }
        let to = if approve { ElevationStatus::Approved } else { ElevationStatus::Denied };
        let change = ElevationChange { note: note.clone(), ..Default::default() };
        let Some(decided) = self
            .transition(id, &[ElevationStatus::AwaitingOperator], to, change)
            .map_err(DecideError::Failed)?
        else {
            let now = self.broker.elevation(id).ok().flatten().map_or(current.status, |e| e.status);
            return Err(DecideError::AlreadyDecided(now));
        };
        if !approve {
            self.report(&decided).await;
            return Ok(decided);
        }
        self.execute(id).await.map_err(DecideError::Failed)
    }

    /// The one-time token a reply by mail must carry for request `id` (in its subject, as
    /// `[clawdia:ID:TOKEN]`): an HMAC of the id under the bridge key, so it cannot be guessed
    /// for another request, and used up once the request is decided.
    pub fn reply_token(&self, id: &str) -> Option<String> {
        let key = crate::bridge::key(&self.config).ok()?;
        let mac = clawdia_core::crypto::hmac_sha256(&key, format!("operator-reply:{id}").as_bytes());
        Some(clawdia_core::hex(&mac[..10]))
    }

    /// A reply that arrived with `token` (by mail): refused and audited unless the token is the
    /// request's.
    pub async fn operator_reply_with_token(
        &self,
        id: &str,
        token: &str,
        text: &str,
    ) -> Result<ReplyOutcome, DecideError> {
        let valid = self.reply_token(id).is_some_and(|expected| {
            clawdia_core::crypto::same_secret(expected.as_bytes(), token.to_ascii_lowercase().as_bytes())
        });
        if !valid {
            self.audit.record(AuditEvent::new(
                "elevation_reply_refused",
                Severity::HIGH,
                format!("a reply to request {id} carried a wrong token and was ignored"),
            ));
            return Err(DecideError::Failed("the reply's token does not match the request".into()));
        }
        self.operator_reply(id, text).await
    }

    /// The owner's reply in their own words: one-word answers are read strictly, anything else
    /// by the administrator agent (never approving on a reading it cannot parse). A question is
    /// answered and the request keeps waiting; a modification replaces the commands and is put
    /// to the owner again before anything runs.
    pub async fn operator_reply(&self, id: &str, text: &str) -> Result<ReplyOutcome, DecideError> {
        let current = self
            .broker
            .elevation(id)
            .map_err(|e| DecideError::Failed(e.to_string()))?
            .ok_or(DecideError::NotFound)?;
        if current.status != ElevationStatus::AwaitingOperator {
            return Err(DecideError::AlreadyDecided(current.status));
        }
        let reading = match strict_reading(text) {
            Some(reading) => reading,
            None => self.read_with_model(&current, text).await,
        };
        self.record(
            "elevation_reply",
            Severity::NOTICE,
            &current,
            format!("the owner's reply to request {id} was read as {}", reading_name(&reading)),
        );
        let note = Some(clawdia_core::text::one_line(text));
        match &reading {
            Reading::Approve | Reading::Deny => {
                let decided = self.decide(id, reading == Reading::Approve, note).await?;
                Ok(ReplyOutcome { reading, status: decided.status, message: report_text(&decided) })
            }
            Reading::Question => {
                let answer = self.answer(&current, text).await;
                let mut alert = Alert::new(
                    "elevation_answer",
                    Severity::NOTICE,
                    format!("Request {id}: about your question"),
                    format!(
                        "{answer}\n\nThe request still waits: reply yes or no (or: clawdia broker approve|deny {id})."
                    ),
                );
                alert.approval = Some(id.to_string());
                self.notifier.notify(alert);
                Ok(ReplyOutcome { reading, status: current.status, message: answer })
            }
            Reading::Modify { commands } => {
                let mut changed = current.filed.clone();
                changed.commands = commands.clone();
                if let Err(why) = changed.check() {
                    return Ok(ReplyOutcome {
                        reading: Reading::Question,
                        status: current.status,
                        message: format!("The change could not be made ({why}); the request is unchanged."),
                    });
                }
                let change = ElevationChange { commands: Some(commands.clone()), note, ..Default::default() };
                let Some(modified) = self
                    .transition(
                        id,
                        &[ElevationStatus::AwaitingOperator],
                        ElevationStatus::AwaitingOperator,
                        change,
                    )
                    .map_err(DecideError::Failed)?
                else {
                    let now = self.broker.elevation(id).ok().flatten().map_or(current.status, |e| e.status);
                    return Err(DecideError::AlreadyDecided(now));
                };
                let mut alert = operator_alert(&modified, self.reply_token(id).as_deref());
                alert.title = format!("Request {id} changed as you asked: confirm");
                self.notifier.notify(alert);
                let lines = modified.command_lines();
                Ok(ReplyOutcome {
                    reading,
                    status: modified.status,
                    message: format!(
                        "Changed. These would run now, once you confirm (reply yes):\n{}",
                        if lines.is_empty() { "(no commands)".to_string() } else { lines.join("\n") }
                    ),
                })
            }
        }
    }

    /// What the administrator agent makes of a reply that is not a plain yes or no.
    async fn read_with_model(&self, elevation: &Elevation, text: &str) -> Reading {
        let Some(admin) = &self.config.broker.admin_agent else { return Reading::Question };
        let prompt = format!(
            "The owner answered request {id} in their own words. Read what they meant. Answer with one \
             JSON object and nothing else: {{\"meaning\": \"approve\"}}, {{\"meaning\": \"deny\"}}, \
             {{\"meaning\": \"question\"}} (they ask something), or {{\"meaning\": \"modify\", \
             \"commands\": [[...], ...]}} (they want other commands, e.g. only some of them: give the \
             full list that should run instead).\n\nThe request: {action}\nProposed commands:\n{commands}\n\n\
             The owner's reply:\n{text}",
            id = elevation.id,
            action = elevation.filed.action,
            commands = elevation.command_lines().join("\n"),
        );
        let answer = self.admin_turn(admin, prompt, "classify").await.unwrap_or_default();
        parse_reading(&answer).unwrap_or(Reading::Question)
    }

    /// The administrator's answer to the owner's question about a request.
    async fn answer(&self, elevation: &Elevation, question: &str) -> String {
        let Some(admin) = &self.config.broker.admin_agent else {
            return "No administrator agent is configured ([broker] admin_agent) to answer questions.".into();
        };
        let prompt = format!(
            "The owner asks about request {id} before deciding. Answer briefly and concretely.\n\n{request}\n\nYour assessment was:\n{assessment}\n\nThe owner asks:\n{question}",
            id = elevation.id,
            request = assessment_prompt(elevation),
            assessment = elevation.assessment.as_deref().unwrap_or("(none)"),
        );
        match self.admin_turn(admin, prompt, "answer").await {
            Ok(answer) if !answer.trim().is_empty() => answer.trim().to_string(),
            Ok(_) => "The administrator had no answer.".into(),
            Err(error) => format!("The administrator could not answer: {error}"),
        }
    }

    async fn admin_turn(&self, admin: &str, message: String, sender: &str) -> Result<String, String> {
        let request = TurnRequest {
            from_owner: false,
            agent: admin.to_string(),
            session: None,
            message,
            origin: TurnOrigin::Broker,
            sender: Some(sender.into()),
            history: Vec::new(),
            tools_allow: None,
            context: TurnContext::Full,
            options: Default::default(),
        };
        let ignore = |_event: clawdia_core::TurnEvent| {};
        self.agents.run_turn(request, &ignore).await.map(|outcome| outcome.text).map_err(|e| e.to_string())
    }

    /// Runs an approved request's commands (once: `approved` → `executing` is a compare-and-set),
    /// records the outcome and reports it.
    async fn execute(&self, id: &str) -> Result<Elevation, String> {
        let Some(running) = self.transition(
            id,
            &[ElevationStatus::Approved],
            ElevationStatus::Executing,
            ElevationChange::default(),
        )?
        else {
            return self
                .broker
                .elevation(id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no request {id}"));
        };
        let agent = self
            .config
            .broker
            .admin_agent
            .clone()
            .or_else(|| running.filed.agent.clone())
            .unwrap_or_default();
        let (ok, result) = self.run_commands(&running, &agent).await;
        let to = if ok { ElevationStatus::Done } else { ElevationStatus::Failed };
        let change = ElevationChange { result: Some(result), ..Default::default() };
        let finished = self
            .transition(id, &[ElevationStatus::Executing], to, change)?
            .ok_or_else(|| format!("request {id} changed while its commands ran"))?;
        self.report(&finished).await;
        Ok(finished)
    }

    async fn run_commands(&self, elevation: &Elevation, agent: &str) -> (bool, String) {
        if elevation.filed.commands.is_empty() {
            return (true, "No commands were proposed; nothing ran.".into());
        }
        let Some(executor) = self.executors.get(agent) else {
            return (
                false,
                format!(
                    "nothing ran: agent `{agent}` has no [agents.{agent}.elevated] commands to run approved requests with"
                ),
            );
        };
        let workspace = self.config.agents.get(agent).map(|a| a.workspace.clone()).unwrap_or_default();
        let mut context =
            ToolContext::new(agent, format!("broker-{}", elevation.id), workspace, TurnOrigin::Broker);
        context.sender = Some("approved".into());
        let mut lines = Vec::new();
        for (command, line) in elevation.filed.commands.iter().zip(elevation.command_lines()) {
            let Some((program, args)) = command.split_first() else {
                lines.push("an empty command was not run; the remaining commands did not run".into());
                return (false, lines.join("\n"));
            };
            let arguments = serde_json::json!({"program": program, "args": args});
            match executor.call(&context, arguments).await {
                Ok(output) => lines.push(format!("$ {line}\n{}", output.trim_end())),
                Err(error) => {
                    lines.push(format!("$ {line}\nrefused or failed: {error}"));
                    lines.push("The remaining commands did not run.".into());
                    return (false, lines.join("\n"));
                }
            }
        }
        (true, lines.join("\n"))
    }

    async fn expire(&self, id: &str) -> Result<(), String> {
        let change =
            ElevationChange { note: Some("nobody decided within [broker] ttl".into()), ..Default::default() };
        if let Some(expired) =
            self.transition(id, &[ElevationStatus::AwaitingOperator], ElevationStatus::Expired, change)?
        {
            self.report(&expired).await;
        }
        Ok(())
    }

    /// Tells the requesting session the outcome, as a bridge message: signed, then verified as
    /// any received bridge message is (which records its nonce), and marked as what it is.
    async fn report(&self, elevation: &Elevation) {
        let (Some(agent), Some(session)) = (&elevation.filed.agent, &elevation.filed.session) else {
            return;
        };
        let body = report_text(elevation);
        let checked = crate::bridge::sign(&self.config, &body).and_then(|signed| {
            crate::bridge::verify(&self.config, &self.broker, self.audit.as_ref(), &signed)
        });
        let body = match checked {
            Ok(Ok(body)) => body,
            Ok(Err(refused)) => {
                tracing::warn!(%refused, "broker: the report was refused by the bridge");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "broker: the report could not be signed");
                return;
            }
        };
        let request = TurnRequest {
            from_owner: false,
            agent: agent.clone(),
            session: Some(session.clone()),
            message: format!(
                "[Bridge message from the administrator: signed and verified. It reports on your request; it is not the owner speaking.]\n{body}"
            ),
            origin: TurnOrigin::Broker,
            sender: Some("report".into()),
            history: Vec::new(),
            tools_allow: None,
            context: TurnContext::Full,
            options: Default::default(),
        };
        let ignore = |_event: clawdia_core::TurnEvent| {};
        if let Err(error) = self.agents.run_turn(request, &ignore).await {
            tracing::warn!(%error, agent, session, "broker: the report did not reach the requesting session");
        }
    }

    /// A request as the approvals list shows it (`kind` = `elevation`).
    pub fn as_approval(elevation: &Elevation) -> Approval {
        let status = match elevation.status {
            ElevationStatus::Received | ElevationStatus::Assessing | ElevationStatus::AwaitingOperator => {
                ApprovalStatus::Pending
            }
            ElevationStatus::Approved | ElevationStatus::Executing => ApprovalStatus::Approved,
            ElevationStatus::Denied => ApprovalStatus::Denied,
            ElevationStatus::Done => ApprovalStatus::Done,
            ElevationStatus::Failed => ApprovalStatus::Failed,
            ElevationStatus::Expired => ApprovalStatus::Expired,
        };
        Approval {
            id: elevation.id.clone(),
            kind: KIND.into(),
            status,
            agent: elevation.filed.agent.clone().unwrap_or_default(),
            session: elevation.filed.session.clone().unwrap_or_default(),
            call_id: String::new(),
            tool: "request_elevation".into(),
            arguments: serde_json::to_string(&elevation.filed.commands).unwrap_or_default(),
            origin: TurnOrigin::Broker,
            sender: None,
            reason: elevation.filed.action.clone(),
            created_at: elevation.created_at,
            expires_at: elevation.expires_at,
            decided_at: if matches!(
                elevation.status,
                ElevationStatus::Received | ElevationStatus::Assessing | ElevationStatus::AwaitingOperator
            ) {
                None
            } else {
                Some(elevation.updated_at)
            },
            note: elevation.note.clone(),
            result: elevation.result.clone(),
        }
    }

    /// Requests for lists (newest first).
    pub fn list(&self, pending_only: bool, limit: usize) -> Result<Vec<Elevation>, String> {
        let statuses: &[ElevationStatus] = if pending_only {
            &[ElevationStatus::Received, ElevationStatus::Assessing, ElevationStatus::AwaitingOperator]
        } else {
            &[]
        };
        self.broker.elevations(statuses, limit).map_err(|e| e.to_string())
    }

    /// One request.
    pub fn get(&self, id: &str) -> Result<Option<Elevation>, String> {
        self.broker.elevation(id).map_err(|e| e.to_string())
    }
}

/// How long an unreadable inbox file is given to be finished by its writer.
const SETTLE: Duration = Duration::from_secs(3);

fn recently_modified(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_none_or(|age| age < SETTLE)
}

/// Why a decision was not applied.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no such request")]
    NotFound,
    #[error("the request is {} already", .0.as_str())]
    AlreadyDecided(ElevationStatus),
    #[error("{0}")]
    Failed(String),
}

fn assessment_prompt(elevation: &Elevation) -> String {
    let commands = elevation.command_lines();
    let commands = if commands.is_empty() { "(none proposed)".to_string() } else { commands.join("\n") };
    format!(
        "A user agent (`{}`) asks for a change it cannot make itself. Assess it for the owner: what it \
         would touch, the risk, whether the commands do what the request says, and what you recommend. \
         Be brief; the owner decides.\n\nRequest {}\nAction: {}\nReason: {}\nUrgency: {}\nCommands:\n{}",
        elevation.filed.agent.as_deref().unwrap_or("unknown"),
        elevation.id,
        elevation.filed.action,
        elevation.filed.reason,
        elevation.filed.urgency.as_str(),
        commands
    )
}

fn operator_alert(elevation: &Elevation, token: Option<&str>) -> Alert {
    let commands = elevation.command_lines();
    let commands = if commands.is_empty() {
        "  (none)".to_string()
    } else {
        commands.iter().map(|line| format!("  {line}")).collect::<Vec<_>>().join("\n")
    };
    let body = format!(
        "{} asks: {}\nWhy: {}\nUrgency: {}\nCommands that would run:\n{}\n\nAssessment:\n{}\n\nApprove: clawdia broker approve {id}\nDeny: clawdia broker deny {id}\nOr answer in your own words: clawdia broker reply {id} \"...\"{}",
        elevation.filed.agent.as_deref().unwrap_or("Something outside Clawdia"),
        elevation.filed.action,
        elevation.filed.reason,
        elevation.filed.urgency.as_str(),
        commands,
        elevation.assessment.as_deref().unwrap_or("(none)"),
        token
            .map(|token| format!(
                " (by mail: reply keeping [clawdia:{}:{token}] in the subject)",
                elevation.id
            ))
            .unwrap_or_default(),
        id = elevation.id,
    );
    let mut alert = Alert::new(
        "elevation_request",
        Severity::HIGH,
        format!("Request {}: {}", elevation.id, clawdia_core::text::one_line(&elevation.filed.action)),
        body,
    );
    alert.approval = Some(elevation.id.clone());
    if let Some(agent) = &elevation.filed.agent {
        alert.agent = Some(agent.clone());
    }
    alert
}

fn reading_name(reading: &Reading) -> &'static str {
    match reading {
        Reading::Approve => "approve",
        Reading::Deny => "deny",
        Reading::Question => "a question",
        Reading::Modify { .. } => "a change",
    }
}

/// The JSON object in a model's answer, read strictly.
fn parse_reading(answer: &str) -> Option<Reading> {
    let start = answer.find('{')?;
    let end = answer.rfind('}')?;
    serde_json::from_str(answer.get(start..=end)?).ok()
}

fn report_text(elevation: &Elevation) -> String {
    let mut text =
        format!("Request {} ({}): {}.", elevation.id, elevation.filed.action, elevation.status.as_str());
    if let Some(note) = &elevation.note {
        text.push_str(&format!("\nThe owner said: {note}"));
    }
    if let Some(result) = &elevation.result {
        text.push_str(&format!("\nResult:\n{result}"));
    }
    text
}

/// The daemon component: watches the inbox and moves requests along.
pub fn component(elevations: Arc<Elevations>) -> Component {
    Component::new("broker", move |token: CancellationToken| {
        let elevations = elevations.clone();
        async move {
            let inbox = inbox_dir(&elevations.config.home);
            std::fs::create_dir_all(&inbox).map_err(|e| format!("{}: {e}", inbox.display()))?;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
            let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| format!("cannot watch {}: {e}", inbox.display()))?;
            use notify::Watcher as _;
            watcher
                .watch(&inbox, notify::RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", inbox.display()))?;
            elevations.recover().await;
            let mut rescan = tokio::time::interval(RESCAN);
            loop {
                elevations.scan_inbox().await;
                elevations.advance().await;
                tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    _ = rescan.tick() => {}
                    Some(()) = rx.recv() => {
                        // A burst of events for one file: take them all, then scan once.
                        while rx.try_recv().is_ok() {}
                    }
                }
            }
        }
    })
}

fn approval_error(id: &str, error: DecideError) -> clawdia_core::ApprovalError {
    match error {
        DecideError::NotFound => clawdia_core::ApprovalError::NotFound(id.to_string()),
        DecideError::AlreadyDecided(ElevationStatus::Expired) => {
            clawdia_core::ApprovalError::Expired(id.to_string())
        }
        DecideError::AlreadyDecided(status) => {
            clawdia_core::ApprovalError::AlreadyDecided { id: id.to_string(), status: status.as_str() }
        }
        DecideError::Failed(message) => clawdia_core::ApprovalError::Store(message),
    }
}

/// The gateway the channels and the API use: the agents, with decisions on elevation requests
/// going to the broker and its requests listed among the approvals.
pub struct Brokered {
    pub agents: Arc<Agents>,
    pub elevations: Arc<Elevations>,
}

#[async_trait::async_trait]
impl Gateway for Brokered {
    fn agents(&self) -> Vec<clawdia_core::AgentInfo> {
        self.agents.agents()
    }

    async fn run_turn(
        &self,
        request: TurnRequest,
        events: &dyn clawdia_core::TurnEvents,
    ) -> Result<clawdia_core::TurnOutcome, clawdia_core::TurnError> {
        self.agents.run_turn(request, events).await
    }

    async fn decide(
        &self,
        id: &str,
        decision: clawdia_core::Decision,
        events: &dyn clawdia_core::TurnEvents,
    ) -> Result<clawdia_core::Decided, clawdia_core::ApprovalError> {
        match self.elevations.get(id) {
            Ok(Some(_)) => {}
            _ => return self.agents.decide(id, decision, events).await,
        }
        match self.elevations.decide(id, decision.approve, decision.note).await {
            Ok(elevation) => {
                Ok(clawdia_core::Decided { approval: Elevations::as_approval(&elevation), turn: None })
            }
            Err(error) => Err(approval_error(id, error)),
        }
    }

    async fn operator_reply(
        &self,
        id: &str,
        text: &str,
    ) -> Result<ReplyOutcome, clawdia_core::ApprovalError> {
        self.elevations.operator_reply(id, text).await.map_err(|error| approval_error(id, error))
    }

    async fn operator_reply_with_token(
        &self,
        id: &str,
        token: &str,
        text: &str,
    ) -> Result<ReplyOutcome, clawdia_core::ApprovalError> {
        self.elevations
            .operator_reply_with_token(id, token, text)
            .await
            .map_err(|error| approval_error(id, error))
    }

    fn approvals(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<Approval>, clawdia_core::ApprovalError> {
        let mut all = self.agents.approvals(pending_only, limit)?;
        let elevations =
            self.elevations.list(pending_only, limit).map_err(clawdia_core::ApprovalError::Store)?;
        all.extend(elevations.iter().map(Elevations::as_approval));
        all.sort_by_key(|approval| std::cmp::Reverse(approval.created_at));
        all.truncate(limit);
        Ok(all)
    }
}
