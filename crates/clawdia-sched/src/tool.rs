//! The `cron` agent tool (group `cron`): list, add and remove scheduled jobs. It is under the
//! agent's tool policy like any tool, and `cron` is not in the default allow list, so an agent
//! gets it only when the owner allows it. An agent may schedule sandboxed commands and prompts
//! to itself; it cannot create host jobs, target another agent, or remove jobs from the config.

use std::sync::Arc;

use async_trait::async_trait;
use clawdia_core::{AuditEvent, AuditSink, Severity, Tool, ToolContext, ToolError, ToolSpec};
use serde_json::{Value, json};

use crate::job::{Action, CatchUp, DEFAULT_TIMEOUT_SECONDS, Job, Source};
use crate::schedule::Schedule;
use crate::{CronDb, SchedError, now_ms};

/// The `cron` tool.
pub struct CronTool {
    spec: ToolSpec,
    db: Arc<CronDb>,
    audit: Arc<dyn AuditSink>,
}

impl CronTool {
    pub fn new(db: Arc<CronDb>, audit: Arc<dyn AuditSink>) -> CronTool {
        let spec = ToolSpec {
            name: "cron".to_string(),
            description: "Manage scheduled jobs. action=list shows every job; action=add schedules a \
                 job (exactly one of cron (5 or 6 fields, with optional tz), every (e.g. 30m) or at \
                 (a date-time); and either exec (a shell command, run in the sandbox) or prompt (a \
                 message sent to you on each run)); action=remove deletes a job you or the owner \
                 added with the CLI."
                .to_string(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["list", "add", "remove"]},
                    "name": {"type": "string"},
                    "cron": {"type": "string"},
                    "tz": {"type": "string"},
                    "every": {"type": "string"},
                    "at": {"type": "string"},
                    "exec": {"type": "string"},
                    "prompt": {"type": "string"},
                    "timeout_seconds": {"type": "integer", "minimum": 1},
                    "tools_allow": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["action"],
            }),
        };
        CronTool { spec, db, audit }
    }
}

fn text<'a>(arguments: &'a Value, key: &str) -> Option<&'a str> {
    arguments.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn invalid(error: SchedError) -> ToolError {
    match error {
        SchedError::NotFound(what) => ToolError::NotFound(what),
        other => ToolError::InvalidArguments(other.to_string()),
    }
}

#[async_trait]
impl Tool for CronTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        "cron"
    }

    fn on_demand(&self) -> bool {
        true
    }

    async fn call(&self, tool: &ToolContext, arguments: Value) -> Result<String, ToolError> {
        let db = &self.db;
        match text(&arguments, "action") {
            Some("list") => {
                let jobs = db.jobs().map_err(|e| ToolError::Failed(e.to_string()))?;
                if jobs.is_empty() {
                    return Ok("no jobs".to_string());
                }
                Ok(jobs.iter().map(crate::list_line).collect::<Vec<_>>().join("\n"))
            }
            Some("add") => {
                let name = text(&arguments, "name")
                    .ok_or_else(|| ToolError::InvalidArguments("`name` is required".into()))?;
                let schedule =
                    match (text(&arguments, "cron"), text(&arguments, "every"), text(&arguments, "at")) {
                        (Some(expr), None, None) => Schedule::cron(expr, text(&arguments, "tz")),
                        (None, Some(every), None) => Schedule::every(every),
                        (None, None, Some(at)) => Schedule::at(at, text(&arguments, "tz")),
                        _ => {
                            return Err(ToolError::InvalidArguments(
                                "give exactly one of `cron`, `every`, `at`".into(),
                            ));
                        }
                    }
                    .map_err(invalid)?;
                let action = match (text(&arguments, "exec"), text(&arguments, "prompt")) {
                    (Some(command), None) => {
                        Action::Exec { command: command.to_string(), host: false, egress: Vec::new() }
                    }
                    (None, Some(prompt)) => Action::AgentTurn {
                        agent: tool.agent.clone(),
                        prompt: prompt.to_string(),
                        session: None,
                        heartbeat: None,
                    },
                    _ => {
                        return Err(ToolError::InvalidArguments(
                            "give exactly one of `exec` or `prompt`".into(),
                        ));
                    }
                };
                let tools_allow = arguments
                    .get("tools_allow")
                    .and_then(Value::as_array)
                    .map(|list| list.iter().filter_map(Value::as_str).map(String::from).collect::<Vec<_>>());
                let job = Job {
                    name: name.to_string(),
                    schedule,
                    action,
                    timeout_seconds: arguments
                        .get("timeout_seconds")
                        .and_then(Value::as_u64)
                        .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
                    tools_allow,
                    failure_alert: None,
                    enabled: true,
                    catch_up: CatchUp::Once,
                };
                job.validate().map_err(invalid)?;
                db.add_job(&job, now_ms()).map_err(invalid)?;
                self.audit.record(
                    AuditEvent::new(
                        "cron_job_added",
                        Severity::NOTICE,
                        format!("agent added job `{}`: {}", job.name, job.schedule.describe()),
                    )
                    .agent(&tool.agent)
                    .session(&tool.session_id),
                );
                Ok(format!("added job `{}` ({})", job.name, job.schedule.describe()))
            }
            Some("remove") => {
                let name = text(&arguments, "name")
                    .ok_or_else(|| ToolError::InvalidArguments("`name` is required".into()))?;
                let stored = db.job(name).map_err(invalid)?;
                if stored.source == Source::Config {
                    return Err(ToolError::Refused(format!("job `{name}` is defined in the owner's config")));
                }
                db.remove_job(name).map_err(invalid)?;
                self.audit.record(
                    AuditEvent::new(
                        "cron_job_removed",
                        Severity::NOTICE,
                        format!("agent removed job `{name}`"),
                    )
                    .agent(&tool.agent)
                    .session(&tool.session_id),
                );
                Ok(format!("removed job `{name}`"))
            }
            _ => Err(ToolError::InvalidArguments("`action` must be list, add or remove".into())),
        }
    }
}
