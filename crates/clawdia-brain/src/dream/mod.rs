//! The dream cycle: a cheap model scores what is new in each transcript since the last run, and
//! the worthy parts are handed to distiller turns that can only read and write the brain.
//!
//! One run (`Dream::run`):
//!
//! 1. Takes the run lock (a `dream_runs` row without an end; see `db::dream`), so the nightly
//!    job and `clawdia brain dream` never overlap.
//! 2. Lists the agent's sessions and, for each, reads the messages after its watermark (plus a
//!    few earlier ones as context). The dream's own distiller sessions are marked in
//!    `dream_watermarks` and never read.
//! 3. Cuts the new part into slices of at most `max_slice_chars` and scores each with one call
//!    to the scorer model (`prompts/dream-score.md`), which must answer
//!    `{"score": 0-10, "reason": ...}`. A malformed answer is a failure of that slice: it is
//!    reported, the run is `partial`, and the slice is scored again next run.
//! 4. Hands each slice scoring at least `min_score` to a distiller: a turn through the `Gateway`
//!    seam in a fresh session (`dream-<run>-<n>`) whose tools are narrowed to the brain tools
//!    (`tools::TOOL_NAMES`), so the agent's dispatch point refuses anything else. The
//!    instructions come from `prompts/dream-distil.md`.
//! 5. Moves the session's watermark past a slice only when that slice was judged unworthy or its
//!    distillation finished, so a failed or killed run redoes the work next time; the brain's
//!    writes are idempotent (page upsert by content hash, identical facts, takes and timeline
//!    entries are not recorded twice), so redoing it duplicates nothing.
//! 6. Stops early at `max_transcripts` slices or at the run's token/USD budget (the rest waits
//!    for the next run), and records the run: counts, tokens, cost and a report.
//!
//! A dry run scores and reports what it would distil; it writes no page, fact or watermark (the
//! run itself is recorded, marked dry, since the scoring calls cost money).
//!
//! Architecture: only `clawdia-core` seams. Sessions come from `SessionStore` and the
//! `Transcripts` trait (the runtime implements it over the session store); the scorer is a
//! `Models` chain of one; distillers are `Gateway` turns.

pub mod prompts;
pub mod transcript;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clawdia_core::time::{now_ms, rfc3339_utc};
use clawdia_core::{
    ChatRequest, Gateway, Message, ModelRef, Models, NoDeltas, SessionStore, TurnEvent, TurnOrigin,
    TurnRequest, Usage,
};

use crate::brain::Brain;
use crate::db::{BrainError, DreamRun, DreamTotals};
pub use transcript::{TranscriptEntry, Verdict};

/// Session ids of the dream's distiller turns start with this.
pub const SESSION_PREFIX: &str = "dream-";

/// An unfinished run older than this is taken to be dead (its process was killed).
const STALE_RUN_MS: i64 = 6 * 3_600_000;

/// The stored messages of a session with their positions, for the dream cycle.
pub trait Transcripts: Send + Sync {
    /// Messages of `session_id` with `seq > after`, oldest first.
    fn entries_after(&self, session_id: &str, after: u64) -> Result<Vec<TranscriptEntry>, String>;
}

/// Prices a model call in USD.
pub type Pricer = Arc<dyn Fn(&ModelRef, &Usage) -> f64 + Send + Sync>;

/// What a run may do, from `[dream]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DreamSettings {
    /// Whose sessions are dreamed about; its model chain runs the distillers.
    pub agent: String,
    /// The cheap model that scores transcripts.
    pub scorer: ModelRef,
    /// Slices scoring below this (0-10) are not distilled.
    pub min_score: u8,
    /// Most transcript slices scored per run.
    pub max_transcripts: usize,
    /// Stop starting new work once the run has used this many tokens / this much USD.
    pub max_tokens: Option<u64>,
    pub max_usd: Option<f64>,
    /// The agent's daily budget, checked before each scorer call as the agent checks it before
    /// its own calls (the scorer's usage goes on the agent's ledger).
    pub daily_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
    /// Earlier messages shown (as already-distilled context) before the new part.
    pub context_messages: usize,
    /// A slice's rendered size cap, in characters.
    pub max_slice_chars: usize,
    /// Hard cap on one distiller turn.
    pub turn_timeout: Duration,
    /// Where `dream-score.md` and `dream-distil.md` live.
    pub prompts_dir: PathBuf,
}

/// Why a run could not start or went wrong as a whole.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DreamError {
    #[error("{0}")]
    Invalid(String),
    #[error("another dream run (#{id}, started {started}) is still going", id = .0.id, started = rfc3339_utc(.0.started_at))]
    Busy(Box<DreamRun>),
    #[error("{0}")]
    Brain(#[from] BrainError),
    #[error("sessions: {0}")]
    Sessions(String),
}

/// What happened to one slice.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Scored below `min_score`.
    Skipped,
    /// Worthy; a dry run stops here.
    WouldDistil,
    /// The distiller's turn finished; its final text.
    Distilled { session: String, summary: String },
    /// The scorer failed or answered malformed, or the distiller failed; the slice is retried
    /// next run.
    Failed(String),
}

/// One slice of one session, as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SliceReport {
    pub session: String,
    pub from_seq: u64,
    pub to_seq: u64,
    pub score: Option<u8>,
    /// The scorer's reason.
    pub reason: String,
    pub outcome: Outcome,
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct DreamReport {
    pub run_id: i64,
    pub dry_run: bool,
    pub status: String,
    pub slices: Vec<SliceReport>,
    pub tokens: u64,
    pub cost_usd: f64,
    /// Why the run stopped before everything new was looked at.
    pub stopped: Option<String>,
    /// Prompt files written because they were missing.
    pub prompts_written: Vec<PathBuf>,
}

impl DreamReport {
    fn count(&self, test: impl Fn(&SliceReport) -> bool) -> u64 {
        self.slices.iter().filter(|s| test(s)).count() as u64
    }

    pub fn scored(&self) -> u64 {
        self.count(|s| s.score.is_some() || s.outcome == Outcome::Skipped)
    }

    pub fn worthy(&self) -> u64 {
        self.count(|s| matches!(s.outcome, Outcome::WouldDistil | Outcome::Distilled { .. }))
            + self.count(|s| matches!(&s.outcome, Outcome::Failed(_)) && s.score.is_some())
    }

    pub fn distilled(&self) -> u64 {
        self.count(|s| matches!(s.outcome, Outcome::Distilled { .. }))
    }

    pub fn failed(&self) -> u64 {
        self.count(|s| matches!(s.outcome, Outcome::Failed(_)))
    }

    /// One line per slice, then the totals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for path in &self.prompts_written {
            out.push_str(&format!("wrote default prompt {}\n", path.display()));
        }
        for slice in &self.slices {
            let score = slice.score.map(|s| format!("score {s}")).unwrap_or_else(|| "no score".into());
            let what = match &slice.outcome {
                Outcome::Skipped => format!("skipped ({score}: {})", slice.reason),
                Outcome::WouldDistil => format!("would distil ({score}: {})", slice.reason),
                Outcome::Distilled { session, summary } => {
                    let summary: String = summary.lines().next().unwrap_or("").chars().take(160).collect();
                    format!("distilled ({score}) in {session}: {summary}")
                }
                Outcome::Failed(error) => format!("failed ({score}): {error}"),
            };
            out.push_str(&format!("{} #{}-{}: {what}\n", slice.session, slice.from_seq, slice.to_seq));
        }
        if self.slices.is_empty() {
            out.push_str("nothing new since the last dream\n");
        }
        if let Some(stopped) = &self.stopped {
            out.push_str(&format!("stopped early: {stopped}\n"));
        }
        out.push_str(&format!(
            "dream run #{}{}: {}; {} scored, {} worthy, {} distilled, {} failed; {} tokens, ${:.4}\n",
            self.run_id,
            if self.dry_run { " (dry run: nothing written)" } else { "" },
            self.status,
            self.scored(),
            self.worthy(),
            self.distilled(),
            self.failed(),
            self.tokens,
            self.cost_usd
        ));
        out
    }
}

/// The dream cycle over one brain, one agent's sessions and the gateway's models and agents.
pub struct Dream {
    pub brain: Arc<Brain>,
    pub store: Arc<dyn SessionStore>,
    pub transcripts: Arc<dyn Transcripts>,
    pub models: Arc<dyn Models>,
    pub gateway: Arc<dyn Gateway>,
    pub pricer: Pricer,
    pub settings: DreamSettings,
}

/// Spending so far in one run.
#[derive(Default)]
struct Spend {
    tokens: u64,
    cost_usd: f64,
}

impl Dream {
    /// Runs the dream cycle once.
    pub async fn run(&self, dry_run: bool) -> Result<DreamReport, DreamError> {
        let settings = &self.settings;
        let tools = self.distiller_tools()?;
        let prompts_written = if dry_run {
            Vec::new()
        } else {
            prompts::write_defaults(&settings.prompts_dir).map_err(DreamError::Invalid)?
        };
        let prompts = prompts::load(&settings.prompts_dir).map_err(DreamError::Invalid)?;
        let agent = settings.agent.clone();
        let started = now_ms();
        let run_id = self
            .brain
            .blocking(move |db| db.start_dream_run(&agent, dry_run, started, STALE_RUN_MS))
            .await?
            .map_err(|run| DreamError::Busy(Box::new(run)))?;
        let mut report = DreamReport {
            run_id,
            dry_run,
            status: "running".into(),
            slices: Vec::new(),
            tokens: 0,
            cost_usd: 0.0,
            stopped: None,
            prompts_written,
        };
        let result = self.work(run_id, dry_run, &prompts, &tools, &mut report).await;
        report.status = match &result {
            Err(_) => "failed",
            Ok(()) if report.failed() > 0 || report.stopped.is_some() => "partial",
            Ok(()) => "ok",
        }
        .to_string();
        let mut text = report.render();
        if let Err(error) = &result {
            text.push_str(&format!("error: {error}\n"));
        }
        let totals = DreamTotals {
            status: report.status.clone(),
            scored: report.scored(),
            worthy: report.worthy(),
            distilled: report.distilled(),
            failed: report.failed(),
            tokens: report.tokens,
            cost_usd: report.cost_usd,
            report: text,
        };
        self.brain.blocking(move |db| db.finish_dream_run(run_id, &totals, now_ms())).await?;
        result.map(|()| report)
    }

    /// The brain tools the agent may use: the distillers get exactly these. Without the write
    /// tools there is nothing a distiller could do, so the run refuses to start.
    fn distiller_tools(&self) -> Result<Vec<String>, DreamError> {
        let agent = &self.settings.agent;
        let info = self
            .gateway
            .agents()
            .into_iter()
            .find(|info| info.name == *agent)
            .ok_or_else(|| DreamError::Invalid(format!("dream: no agent named `{agent}`")))?;
        let tools: Vec<String> = crate::tools::TOOL_NAMES
            .iter()
            .filter(|name| info.tools.iter().any(|tool| tool == *name))
            .map(|name| name.to_string())
            .collect();
        for needed in ["brain_put_page", "brain_add_fact"] {
            if !tools.iter().any(|tool| tool == needed) {
                return Err(DreamError::Invalid(format!(
                    "dream: agent `{agent}` may not use `{needed}`; allow the `brain` tool group in its tools.allow"
                )));
            }
        }
        Ok(tools)
    }

    async fn work(
        &self,
        run_id: i64,
        dry_run: bool,
        prompts: &prompts::Prompts,
        tools: &[String],
        report: &mut DreamReport,
    ) -> Result<(), DreamError> {
        let settings = &self.settings;
        let agent = settings.agent.clone();
        let watermarks = {
            let agent = agent.clone();
            self.brain.blocking(move |db| db.dream_watermarks(&agent)).await?
        };
        let mut sessions =
            self.store.list(Some(&agent), 1_000_000).map_err(|e| DreamError::Sessions(e.to_string()))?;
        sessions.retain(|meta| {
            let mark = watermarks.get(&meta.id);
            !meta.id.starts_with(SESSION_PREFIX)
                && !mark.is_some_and(|mark| mark.own)
                && meta.message_count > mark.map_or(0, |mark| mark.seq)
        });
        // Oldest activity first, so a run cut short by a limit leaves the newest for next time.
        sessions.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then_with(|| a.id.cmp(&b.id)));
        let mut spend = Spend::default();
        let mut distillers = 0usize;
        'sessions: for meta in sessions {
            let mark = watermarks.get(&meta.id).map_or(0, |mark| mark.seq);
            let from = mark.saturating_sub(settings.context_messages as u64);
            let entries = match self.transcripts.entries_after(&meta.id, from) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(session = %meta.id, %error, "dream: cannot read a transcript");
                    report.slices.push(SliceReport {
                        session: meta.id.clone(),
                        from_seq: mark + 1,
                        to_seq: meta.message_count,
                        score: None,
                        reason: String::new(),
                        outcome: Outcome::Failed(format!("cannot read the transcript: {error}")),
                    });
                    continue;
                }
            };
            let split = entries.partition_point(|entry| entry.seq <= mark);
            let (mut context, new) = entries.split_at(split);
            for slice in transcript::slices(new, settings.max_slice_chars) {
                if report.slices.len() >= settings.max_transcripts {
                    report.stopped = Some(format!(
                        "max_transcripts ({}) reached; the rest waits for the next run",
                        settings.max_transcripts
                    ));
                    break 'sessions;
                }
                if let Some(reason) = self.over_run_budget(&spend) {
                    report.stopped = Some(reason);
                    break 'sessions;
                }
                let (from_seq, to_seq) = (slice[0].seq, slice[slice.len() - 1].seq);
                let mut item = SliceReport {
                    session: meta.id.clone(),
                    from_seq,
                    to_seq,
                    score: None,
                    reason: String::new(),
                    outcome: Outcome::Skipped,
                };
                // The marker nonce is what keeps the transcript from closing its own markers:
                // without the OS random source the slice is not shown to a model at all.
                let nonce = match clawdia_core::random::hex(8) {
                    Ok(nonce) => nonce,
                    Err(error) => {
                        item.outcome = Outcome::Failed(format!("marker nonce: {error}"));
                        report.slices.push(item);
                        continue 'sessions;
                    }
                };
                let block =
                    transcript::render_block(&meta.id, &nonce, context, slice, settings.max_slice_chars);
                let verdict = match self.score(run_id, &prompts.score, &block, &mut spend).await {
                    Ok(verdict) => verdict,
                    Err(error) => {
                        item.outcome = Outcome::Failed(format!("scoring: {error}"));
                        report.slices.push(item);
                        // The rest of this session waits: its watermark must not pass this slice.
                        continue 'sessions;
                    }
                };
                let worthy = match verdict {
                    Verdict::Scored { score, reason } => {
                        item.score = Some(score);
                        item.reason = reason;
                        score >= settings.min_score
                    }
                    Verdict::Malformed(why) => {
                        // Not judged: the slice is scored again next run, so the watermark
                        // stays before it (and before the rest of this session).
                        tracing::warn!(session = %meta.id, from_seq, to_seq, reason = %why, "dream: malformed scorer answer; retried next run");
                        item.outcome = Outcome::Failed(format!("malformed scorer answer: {why}"));
                        report.slices.push(item);
                        continue 'sessions;
                    }
                };
                if dry_run {
                    item.outcome = if worthy { Outcome::WouldDistil } else { Outcome::Skipped };
                    report.slices.push(item);
                    context = &[];
                    continue;
                }
                if worthy {
                    distillers += 1;
                    let session = format!("{SESSION_PREFIX}{run_id}-{distillers}");
                    match self.distil(&session, &prompts.distil, &block, tools, &mut spend).await {
                        Ok(summary) => item.outcome = Outcome::Distilled { session, summary },
                        Err(error) => {
                            item.outcome = Outcome::Failed(format!("distilling in {session}: {error}"));
                            report.slices.push(item);
                            continue 'sessions;
                        }
                    }
                }
                let (agent, id) = (agent.clone(), meta.id.clone());
                self.brain
                    .blocking(move |db| db.advance_dream_watermark(&agent, &id, to_seq, now_ms()))
                    .await?;
                report.slices.push(item);
                context = &[];
            }
            report.tokens = spend.tokens;
            report.cost_usd = spend.cost_usd;
        }
        report.tokens = spend.tokens;
        report.cost_usd = spend.cost_usd;
        Ok(())
    }

    fn over_run_budget(&self, spend: &Spend) -> Option<String> {
        let settings = &self.settings;
        if let Some(max) = settings.max_tokens.filter(|max| spend.tokens >= *max) {
            return Some(format!(
                "the run's token budget ({max}) is used up; the rest waits for the next run"
            ));
        }
        if let Some(max) = settings.max_usd.filter(|max| spend.cost_usd >= *max) {
            return Some(format!("the run's budget (${max:.2}) is used up; the rest waits for the next run"));
        }
        None
    }

    /// The agent's daily budget, as `clawdia-agent` checks it before its own model calls.
    fn check_daily_budget(&self) -> Result<(), String> {
        let settings = &self.settings;
        if settings.daily_tokens.is_none() && settings.daily_usd.is_none() {
            return Ok(());
        }
        let now = now_ms();
        let midnight = now - now.rem_euclid(86_400_000);
        let (tokens, usd) = self.store.usage_since(&settings.agent, midnight).map_err(|e| e.to_string())?;
        let over_tokens = settings.daily_tokens.is_some_and(|max| tokens >= max);
        let over_usd = settings.daily_usd.is_some_and(|max| usd >= max);
        if over_tokens || over_usd {
            return Err(format!(
                "agent `{}` has used its daily budget ({tokens} tokens, ${usd:.4} today, UTC); no model was called",
                settings.agent
            ));
        }
        Ok(())
    }

    /// One scoring call; its usage goes on the agent's ledger and the run's spend.
    async fn score(
        &self,
        run_id: i64,
        prompt: &str,
        block: &str,
        spend: &mut Spend,
    ) -> Result<Verdict, String> {
        self.check_daily_budget()?;
        let scorer = self.settings.scorer.clone();
        let request = ChatRequest {
            model: String::new(),
            system: prompt.to_string(),
            messages: vec![Message::user(block)],
            tools: Vec::new(),
            max_tokens: 300,
            temperature: Some(0.0),
            stop: Vec::new(),
            stream: false,
        };
        let outcome = self.models.complete(std::slice::from_ref(&scorer), request, &NoDeltas).await;
        let (model, response) = outcome.result.map_err(|e| e.to_string())?;
        let cost = (self.pricer)(&model, &response.usage);
        spend.tokens += response.usage.total();
        spend.cost_usd += cost;
        let ledger = format!("{SESSION_PREFIX}{run_id}-score");
        if let Err(error) =
            self.store.record_usage(&self.settings.agent, &ledger, &model, &response.usage, cost)
        {
            tracing::warn!(%error, "dream: cannot record the scorer's usage");
        }
        let text = match &response.message {
            Message::Assistant { text, .. } => text.clone(),
            _ => String::new(),
        };
        Ok(transcript::parse_verdict(&text))
    }

    /// One distiller turn in its own session, limited to the brain tools.
    async fn distil(
        &self,
        session: &str,
        prompt: &str,
        block: &str,
        tools: &[String],
        spend: &mut Spend,
    ) -> Result<String, String> {
        let (agent, id) = (self.settings.agent.clone(), session.to_string());
        self.brain
            .blocking(move |db| db.mark_dream_session(&agent, &id, now_ms()))
            .await
            .map_err(|e| e.to_string())?;
        let request = TurnRequest {
            from_owner: true,
            agent: self.settings.agent.clone(),
            session: Some(session.to_string()),
            message: format!("{}\n\n{block}", prompt.trim_end()),
            origin: TurnOrigin::Scheduler,
            sender: Some("dream".into()),
            history: Vec::new(),
            tools_allow: Some(tools.to_vec()),
            context: clawdia_core::TurnContext::Light,
            options: Default::default(),
        };
        // A failed turn reports no usage to its caller, so the run's total counts finished
        // turns only; the agent's usage ledger has every call either way.
        let events = |_: TurnEvent| {};
        let turn =
            tokio::time::timeout(self.settings.turn_timeout, self.gateway.run_turn(request, &events)).await;
        match turn {
            Err(_) => Err(format!("timed out after {}s", self.settings.turn_timeout.as_secs())),
            Ok(Err(error)) => Err(error.to_string()),
            Ok(Ok(outcome)) => {
                spend.tokens += outcome.usage.total();
                spend.cost_usd += outcome.cost_usd;
                Ok(outcome.text)
            }
        }
    }
}
