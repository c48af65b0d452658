//! `state/cron.db` (SQLite, WAL): the jobs, each job's next due time and failure streak, the run
//! history (start, end, status, exit code, output tail, cost) and the locks. The gateway and
//! the CLI open it at the same time; every write is a short transaction and readers never wait.
//!
//! All SQL of the scheduler lives here (locks' decision logic is in `lock`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use serde::Serialize;

use crate::SchedError;
use crate::job::{Job, Source};

pub const FILE_NAME: &str = "cron.db";

/// How cron.db is opened: one connection, short statements, a small cache.
const SETTINGS: clawdia_sqlite::Settings = clawdia_sqlite::Settings {
    name: FILE_NAME,
    busy_timeout: Duration::from_secs(10),
    cache_kib: 512,
    statement_cache: 16,
    mmap_mib: 0,
};

/// Forward-only migrations, tracked by `PRAGMA user_version`; append, never edit.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE jobs (
        name       TEXT PRIMARY KEY NOT NULL,
        spec       TEXT NOT NULL,
        source     TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE job_state (
        name                 TEXT PRIMARY KEY NOT NULL,
        next_due_ms          INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        job         TEXT NOT NULL,
        trigger     TEXT NOT NULL,
        due_ms      INTEGER,
        started_ms  INTEGER NOT NULL,
        ended_ms    INTEGER,
        status      TEXT NOT NULL,
        exit_code   INTEGER,
        output_tail TEXT NOT NULL DEFAULT '',
        cost_usd    REAL NOT NULL DEFAULT 0,
        tokens      INTEGER NOT NULL DEFAULT 0,
        session     TEXT,
        host        TEXT NOT NULL DEFAULT '',
        pid         INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_job ON runs (job, id);
    CREATE INDEX runs_by_start ON runs (started_ms);
    CREATE TABLE locks (
        name        TEXT PRIMARY KEY NOT NULL,
        host        TEXT NOT NULL,
        boot_id     TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        start_time  INTEGER NOT NULL,
        acquired_ms INTEGER NOT NULL,
        expires_ms  INTEGER
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
    INSERT INTO meta (key, value) VALUES ('jobs_version', 0);
",
    "
    -- Jobs the owner paused (the web UI's disable); the job's own `enabled` still applies.
    CREATE TABLE paused (name TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;
",
];

/// A job as stored, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    pub job: Job,
    pub source: Source,
    /// Anchors `every` schedules.
    pub created_ms: i64,
    pub next_due_ms: Option<i64>,
    pub consecutive_failures: u32,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Ok,
    Failed,
    Timeout,
    /// Not started: the job's lock was held, the heartbeat was outside its hours or budget, or
    /// runs were missed while the gateway was down.
    Skipped,
    /// The process that ran it died mid-run (found at the next start).
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
        }
    }

    fn parse(text: &str) -> Status {
        match text {
            "running" => Status::Running,
            "ok" => Status::Ok,
            "timeout" => Status::Timeout,
            "skipped" => Status::Skipped,
            "interrupted" => Status::Interrupted,
            _ => Status::Failed,
        }
    }

    /// Counts toward the failure streak.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Timeout | Status::Interrupted)
    }
}

/// One row of the run history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: i64,
    pub job: String,
    /// `schedule`, `manual`, `catch_up`.
    pub trigger: String,
    pub due_ms: Option<i64>,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub status: Status,
    pub exit_code: Option<i32>,
    pub output_tail: String,
    pub cost_usd: f64,
    pub tokens: u64,
    pub session: Option<String>,
}

/// The end of a run, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub output_tail: String,
    pub cost_usd: f64,
    pub tokens: u64,
    pub session: Option<String>,
}

/// A lock row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockRow {
    pub name: String,
    pub host: String,
    pub boot_id: String,
    pub pid: i64,
    pub start_time: u64,
    pub acquired_ms: i64,
    pub expires_ms: Option<i64>,
}

/// The open database. One connection behind a mutex: every statement is short.
pub struct CronDb {
    connection: Mutex<Connection>,
    path: PathBuf,
}

fn db_error(error: rusqlite::Error) -> SchedError {
    SchedError::Db(error.to_string())
}

impl CronDb {
    /// Opens (creating and migrating) `state_dir/cron.db`, owner-only: run output tails can hold
    /// whatever a job printed.
    pub fn open(state_dir: &Path) -> Result<CronDb, SchedError> {
        let open_error = |error: clawdia_sqlite::OpenError| SchedError::Db(error.to_string());
        clawdia_sqlite::create_private_dir(state_dir).map_err(open_error)?;
        let path = state_dir.join(FILE_NAME);
        let connection = clawdia_sqlite::open(&path, &SETTINGS, MIGRATIONS).map_err(open_error)?;
        Ok(CronDb { connection: Mutex::new(connection), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, SchedError> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut connection).map_err(db_error)
    }

    /// Makes the config's jobs the stored `config` jobs: new ones added, changed ones updated
    /// (keeping their anchor and state), removed ones deleted. A CLI job of the same name is
    /// replaced by the config's.
    pub fn sync_config_jobs(&self, jobs: &[Job], now_ms: i64) -> Result<(), SchedError> {
        let specs: Vec<(String, String)> = jobs
            .iter()
            .map(|job| serde_json::to_string(job).map(|spec| (job.name.clone(), spec)))
            .collect::<Result<_, _>>()
            .map_err(|e| SchedError::Db(e.to_string()))?;
        self.with(|connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut changed = false;
            let existing: Vec<(String, String, String)> = {
                let mut statement = transaction.prepare("SELECT name, spec, source FROM jobs")?;
                let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            for (name, _, source) in &existing {
                if source == Source::Config.as_str() && !specs.iter().any(|(n, _)| n == name) {
                    transaction.execute("DELETE FROM jobs WHERE name = ?1", [name])?;
                    transaction.execute("DELETE FROM paused WHERE name = ?1", [name])?;
                    transaction.execute("DELETE FROM job_state WHERE name = ?1", [name])?;
                    changed = true;
                }
            }
            for (name, spec) in &specs {
                let same = existing.iter().find(|(n, _, _)| n == name);
                match same {
                    Some((_, old, source)) if old == spec && source == Source::Config.as_str() => {}
                    Some((_, old, _)) => {
                        transaction.execute(
                            "UPDATE jobs SET spec = ?2, source = 'config', updated_ms = ?3 WHERE name = ?1",
                            params![name, spec, now_ms],
                        )?;
                        // A new schedule means a new next due time.
                        if schedule_part(old) != schedule_part(spec) {
                            transaction.execute("UPDATE job_state SET next_due_ms = NULL WHERE name = ?1", [name])?;
                        }
                        changed = true;
                    }
                    None => {
                        transaction.execute(
                            "INSERT INTO jobs (name, spec, source, created_ms, updated_ms) VALUES (?1, ?2, 'config', ?3, ?3)",
                            params![name, spec, now_ms],
                        )?;
                        changed = true;
                    }
                }
            }
            if changed {
                transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'jobs_version'", [])?;
            }
            transaction.commit()
        })
    }

    /// Adds a CLI job; refuses a name that exists.
    pub fn add_job(&self, job: &Job, now_ms: i64) -> Result<(), SchedError> {
        let spec = serde_json::to_string(job).map_err(|e| SchedError::Db(e.to_string()))?;
        let inserted = self.with(|connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = transaction.execute(
                "INSERT OR IGNORE INTO jobs (name, spec, source, created_ms, updated_ms) VALUES (?1, ?2, 'cli', ?3, ?3)",
                params![job.name, spec, now_ms],
            )?;
            if inserted == 1 {
                transaction.execute("DELETE FROM job_state WHERE name = ?1", [&job.name])?;
                transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'jobs_version'", [])?;
            }
            transaction.commit()?;
            Ok(inserted)
        })?;
        if inserted == 0 {
            return Err(SchedError::Exists(job.name.clone()));
        }
        Ok(())
    }

    /// Removes a CLI job (config jobs are removed by editing the config).
    pub fn remove_job(&self, name: &str) -> Result<(), SchedError> {
        let source: Option<String> = self.with(|connection| {
            connection
                .query_row("SELECT source FROM jobs WHERE name = ?1", [name], |row| row.get(0))
                .optional()
        })?;
        match source.as_deref() {
            None => return Err(SchedError::NotFound(name.to_string())),
            Some("config") => {
                return Err(SchedError::Invalid(format!(
                    "job `{name}` is defined in clawdia.toml; remove it there (or set enabled = false)"
                )));
            }
            Some(_) => {}
        }
        self.with(|connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction.execute("DELETE FROM jobs WHERE name = ?1", [name])?;
            transaction.execute("DELETE FROM paused WHERE name = ?1", [name])?;
            transaction.execute("DELETE FROM job_state WHERE name = ?1", [name])?;
            transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'jobs_version'", [])?;
            transaction.commit()
        })
    }

    /// Bumped by every change to the jobs table; the scheduler reloads when it moves.
    pub fn jobs_version(&self) -> Result<i64, SchedError> {
        self.with(|c| c.query_row("SELECT value FROM meta WHERE key = 'jobs_version'", [], |row| row.get(0)))
    }

    /// Every job, by name.
    pub fn jobs(&self) -> Result<Vec<StoredJob>, SchedError> {
        let rows: Vec<JobRow> = self.with(|connection| {
            let mut statement = connection.prepare(
                "SELECT j.spec, j.source, j.created_ms, s.next_due_ms, s.consecutive_failures, p.name IS NOT NULL
                 FROM jobs j LEFT JOIN job_state s ON s.name = j.name LEFT JOIN paused p ON p.name = j.name
                 ORDER BY j.name",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
            })?;
            rows.collect()
        })?;
        rows.into_iter()
            .map(|(spec, source, created_ms, next_due_ms, failures, paused)| {
                let mut job: Job = serde_json::from_str(&spec)
                    .map_err(|e| SchedError::Db(format!("a stored job cannot be read: {e}")))?;
                job.enabled &= !paused;
                let source = if source == "config" { Source::Config } else { Source::Cli };
                Ok(StoredJob {
                    job,
                    source,
                    created_ms,
                    next_due_ms,
                    consecutive_failures: failures.unwrap_or(0),
                })
            })
            .collect()
    }

    pub fn job(&self, name: &str) -> Result<StoredJob, SchedError> {
        self.jobs()?
            .into_iter()
            .find(|j| j.job.name == name)
            .ok_or_else(|| SchedError::NotFound(name.to_string()))
    }

    /// Pauses (`enabled` false) or resumes job `name`; the scheduler reloads. A job its own
    /// definition disables (`enabled = false` in clawdia.toml) cannot be resumed here.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), SchedError> {
        let spec: Option<String> = self.with(|connection| {
            connection.query_row("SELECT spec FROM jobs WHERE name = ?1", [name], |row| row.get(0)).optional()
        })?;
        let Some(spec) = spec else { return Err(SchedError::NotFound(name.to_string())) };
        let job: Job = serde_json::from_str(&spec)
            .map_err(|e| SchedError::Db(format!("a stored job cannot be read: {e}")))?;
        if enabled && !job.enabled {
            return Err(SchedError::Invalid(format!(
                "job `{name}` is disabled in its definition (enabled = false); change it there"
            )));
        }
        self.with(|connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if enabled {
                transaction.execute("DELETE FROM paused WHERE name = ?1", [name])?;
            } else {
                transaction.execute("INSERT OR IGNORE INTO paused (name) VALUES (?1)", [name])?;
            }
            transaction.execute("UPDATE meta SET value = value + 1 WHERE key = 'jobs_version'", [])?;
            transaction.commit()
        })
    }

    /// The job's current failure streak.
    pub fn job_streak(&self, name: &str) -> Result<u32, SchedError> {
        self.with(|connection| {
            connection
                .query_row("SELECT consecutive_failures FROM job_state WHERE name = ?1", [name], |row| {
                    row.get(0)
                })
                .optional()
                .map(|streak| streak.unwrap_or(0))
        })
    }

    pub fn set_next_due(&self, name: &str, next_due_ms: Option<i64>) -> Result<(), SchedError> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO job_state (name, next_due_ms) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET next_due_ms = excluded.next_due_ms",
                params![name, next_due_ms],
            )?;
            Ok(())
        })
    }

    /// Writes a `running` row and returns its id.
    pub fn start_run(
        &self,
        job: &str,
        trigger: &str,
        due_ms: Option<i64>,
        started_ms: i64,
        host: &str,
    ) -> Result<i64, SchedError> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO runs (job, trigger, due_ms, started_ms, status, host, pid) VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6)",
                params![job, trigger, due_ms, started_ms, host, i64::from(std::process::id())],
            )?;
            Ok(connection.last_insert_rowid())
        })
    }

    /// Ends run `id` and updates the job's failure streak; returns the new streak.
    pub fn finish_run(&self, id: i64, job: &str, end: &RunEnd, ended_ms: i64) -> Result<u32, SchedError> {
        self.with(|connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            transaction.execute(
                "UPDATE runs SET ended_ms = ?2, status = ?3, exit_code = ?4, output_tail = ?5, cost_usd = ?6,
                 tokens = ?7, session = ?8 WHERE id = ?1",
                params![
                    id,
                    ended_ms,
                    end.status.as_str(),
                    end.exit_code,
                    // A secret a command printed (or an error echoed) is not kept in the history.
                    clawdia_core::redact::redact(&end.output_tail),
                    end.cost_usd,
                    i64::try_from(end.tokens).unwrap_or(i64::MAX),
                    end.session
                ],
            )?;
            let streak = update_streak(&transaction, job, end.status)?;
            transaction.commit()?;
            Ok(streak)
        })
    }

    /// A run that did not start, with the reason.
    pub fn record_skip(
        &self,
        job: &str,
        trigger: &str,
        due_ms: Option<i64>,
        now_ms: i64,
        reason: &str,
    ) -> Result<(), SchedError> {
        self.with(|connection| {
            connection.execute(
                "INSERT INTO runs (job, trigger, due_ms, started_ms, ended_ms, status, output_tail)
                 VALUES (?1, ?2, ?3, ?4, ?4, 'skipped', ?5)",
                params![job, trigger, due_ms, now_ms, reason],
            )?;
            Ok(())
        })
    }

    /// Marks `running` rows of processes on this host that no longer exist as `interrupted`.
    pub fn mark_interrupted(
        &self,
        host: &str,
        alive: impl Fn(i64) -> bool,
        now_ms: i64,
    ) -> Result<usize, SchedError> {
        let running: Vec<(i64, String, i64)> = self.with(|connection| {
            let mut statement =
                connection.prepare("SELECT id, job, pid FROM runs WHERE status = 'running' AND host = ?1")?;
            let rows = statement.query_map([host], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
            rows.collect()
        })?;
        let mut count = 0;
        for (id, job, pid) in running {
            if alive(pid) {
                continue;
            }
            let end = RunEnd {
                status: Status::Interrupted,
                exit_code: None,
                output_tail: "the process running this job ended before the job did".into(),
                cost_usd: 0.0,
                tokens: 0,
                session: None,
            };
            self.finish_run(id, &job, &end, now_ms)?;
            count += 1;
        }
        Ok(count)
    }

    /// The newest `limit` runs of `job`, newest first.
    pub fn history(&self, job: &str, limit: usize) -> Result<Vec<Run>, SchedError> {
        self.query_runs("WHERE job = ?1 ORDER BY id DESC LIMIT ?2", params![job, limit as i64])
    }

    /// Failed, timed-out and interrupted runs started at or after `since_ms`, oldest first.
    pub fn failures_since(&self, since_ms: i64) -> Result<Vec<Run>, SchedError> {
        self.query_runs(
            "WHERE started_ms >= ?1 AND status IN ('failed', 'timeout', 'interrupted') ORDER BY id",
            params![since_ms],
        )
    }

    /// Tokens and USD spent by `job`'s runs that started at or after `since_ms`.
    pub fn spend_since(&self, job: &str, since_ms: i64) -> Result<(u64, f64), SchedError> {
        self.with(|connection| {
            connection.query_row(
                "SELECT COALESCE(SUM(tokens), 0), COALESCE(SUM(cost_usd), 0.0) FROM runs WHERE job = ?1 AND started_ms >= ?2",
                params![job, since_ms],
                |row| Ok((u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0), row.get(1)?)),
            )
        })
    }

    /// Deletes finished runs that ended before `before_ms`, keeping the newest `keep` per job.
    pub fn prune_runs(&self, before_ms: i64, keep: usize) -> Result<usize, SchedError> {
        self.with(|connection| {
            connection.execute(
                "DELETE FROM runs WHERE status != 'running' AND started_ms < ?1 AND id NOT IN (
                    SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id DESC) AS n FROM runs)
                    WHERE n <= ?2)",
                params![before_ms, keep as i64],
            )
        })
    }

    /// `VACUUM`, `ANALYZE` and `PRAGMA integrity_check` of cron.db; the check's verdict.
    pub fn optimize(&self) -> Result<String, SchedError> {
        self.with(|connection| {
            connection.execute_batch("VACUUM; ANALYZE;")?;
            connection.query_row("PRAGMA integrity_check", [], |row| row.get(0))
        })
    }

    fn query_runs(&self, tail: &str, params: impl rusqlite::Params) -> Result<Vec<Run>, SchedError> {
        let sql = format!(
            "SELECT id, job, trigger, due_ms, started_ms, ended_ms, status, exit_code, output_tail, cost_usd, tokens, session
             FROM runs {tail}"
        );
        self.with(|connection| {
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map(params, |row| {
                Ok(Run {
                    id: row.get(0)?,
                    job: row.get(1)?,
                    trigger: row.get(2)?,
                    due_ms: row.get(3)?,
                    started_ms: row.get(4)?,
                    ended_ms: row.get(5)?,
                    status: Status::parse(&row.get::<_, String>(6)?),
                    exit_code: row.get(7)?,
                    output_tail: row.get(8)?,
                    cost_usd: row.get(9)?,
                    tokens: u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0),
                    session: row.get(11)?,
                })
            })?;
            rows.collect()
        })
    }

    // Locks: the rows; `lock` decides.

    pub(crate) fn lock_row(&self, name: &str) -> Result<Option<LockRow>, SchedError> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT name, host, boot_id, pid, start_time, acquired_ms, expires_ms FROM locks WHERE name = ?1",
                    [name],
                    |row| {
                        Ok(LockRow {
                            name: row.get(0)?,
                            host: row.get(1)?,
                            boot_id: row.get(2)?,
                            pid: row.get(3)?,
                            start_time: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
                            acquired_ms: row.get(5)?,
                            expires_ms: row.get(6)?,
                        })
                    },
                )
                .optional()
        })
    }

    pub fn locks(&self) -> Result<Vec<LockRow>, SchedError> {
        let names: Vec<String> = self.with(|connection| {
            let mut statement = connection.prepare("SELECT name FROM locks ORDER BY name")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            rows.collect()
        })?;
        Ok(names.iter().filter_map(|name| self.lock_row(name).ok().flatten()).collect())
    }

    /// Inserts `row` if no lock of that name exists, or replaces exactly `expected` (the stale
    /// holder that was judged evictable). False when someone else got there first.
    pub(crate) fn put_lock(&self, row: &LockRow, expected: Option<&LockRow>) -> Result<bool, SchedError> {
        self.with(|connection| {
            let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(old) = expected {
                transaction.execute(
                    "DELETE FROM locks WHERE name = ?1 AND host = ?2 AND pid = ?3 AND start_time = ?4 AND acquired_ms = ?5",
                    params![old.name, old.host, old.pid, old.start_time as i64, old.acquired_ms],
                )?;
            }
            let inserted = transaction.execute(
                "INSERT OR IGNORE INTO locks (name, host, boot_id, pid, start_time, acquired_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![row.name, row.host, row.boot_id, row.pid, row.start_time as i64, row.acquired_ms, row.expires_ms],
            )?;
            transaction.commit()?;
            Ok(inserted == 1)
        })
    }

    /// Deletes the lock if `row` still holds it.
    pub(crate) fn drop_lock(&self, row: &LockRow) -> Result<(), SchedError> {
        self.with(|connection| {
            connection.execute(
                "DELETE FROM locks WHERE name = ?1 AND host = ?2 AND pid = ?3 AND start_time = ?4 AND acquired_ms = ?5",
                params![row.name, row.host, row.pid, row.start_time as i64, row.acquired_ms],
            )?;
            Ok(())
        })
    }

    /// Deletes the lock whoever holds it; the row it removed.
    pub(crate) fn force_unlock(&self, name: &str) -> Result<Option<LockRow>, SchedError> {
        let row = self.lock_row(name)?;
        if row.is_some() {
            self.with(|connection| connection.execute("DELETE FROM locks WHERE name = ?1", [name]))?;
        }
        Ok(row)
    }

    /// Writes a lock row as given (tests and tools that simulate another holder).
    pub fn insert_lock_row(&self, row: &LockRow) -> Result<(), SchedError> {
        self.put_lock(row, None).map(|_| ())
    }
}

/// The schedule part of a job's JSON, to tell a schedule change from another edit.
fn schedule_part(spec: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(spec).ok().and_then(|v| v.get("schedule").cloned())
}

fn update_streak(transaction: &rusqlite::Transaction, job: &str, status: Status) -> rusqlite::Result<u32> {
    if status.is_failure() {
        transaction.execute(
            "INSERT INTO job_state (name, consecutive_failures) VALUES (?1, 1)
             ON CONFLICT (name) DO UPDATE SET consecutive_failures = consecutive_failures + 1",
            [job],
        )?;
    } else if status == Status::Ok {
        transaction.execute(
            "INSERT INTO job_state (name, consecutive_failures) VALUES (?1, 0)
             ON CONFLICT (name) DO UPDATE SET consecutive_failures = 0",
            [job],
        )?;
    }
    transaction
        .query_row("SELECT consecutive_failures FROM job_state WHERE name = ?1", [job], |row| row.get(0))
        .optional()
        .map(|streak| streak.unwrap_or(0))
}

/// One row of the jobs listing: spec, source, created, next due, consecutive failures.
type JobRow = (String, String, i64, Option<i64>, Option<u32>, bool);
