//! Locks in `cron.db`: one run of a job at a time (lock `job:NAME`), and named locks for shared
//! resources (e.g. `brain-maintenance`). A lock records its holder's host, boot, PID and the
//! PID's start time. A held lock is taken over only when the holder is provably dead: it is on
//! this host and either from an earlier boot, or its PID is gone, or its PID now belongs to a
//! process with a different start time. A lock from another host is never judged by a PID probe
//! (that PID means nothing here); only its TTL or `clawdia cron unlock` (audited) clears it.

use std::sync::Arc;

use clawdia_core::{AuditEvent, AuditSink, Severity};

use crate::SchedError;
use crate::db::{CronDb, LockRow};
use crate::procfs;

/// Who this process is, as locks record it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub boot_id: String,
    pub pid: i64,
    pub start_time: u64,
}

impl Holder {
    /// This process.
    pub fn me() -> Holder {
        let pid = std::process::id() as i32;
        Holder {
            host: procfs::host_id(),
            boot_id: procfs::boot_id(),
            pid: i64::from(pid),
            start_time: procfs::start_time(pid).unwrap_or(0),
        }
    }
}

/// Why a lock could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// Held by a live process on this host.
    Alive(LockRow),
    /// Held from another host: never evicted by a PID probe.
    OtherHost(LockRow),
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Busy::Alive(row) => write!(f, "lock `{}` is held by PID {} on this host", row.name, row.pid),
            Busy::OtherHost(row) => write!(
                f,
                "lock `{}` is held by PID {} on host {} (cleared only by its TTL or `clawdia cron unlock {}`)",
                row.name, row.pid, row.host, row.name
            ),
        }
    }
}

/// Whether a lock's holder is provably dead, judged from this host. `None` when it cannot be
/// judged (another host).
pub fn holder_dead(row: &LockRow, me: &Holder) -> Option<bool> {
    if row.host != me.host {
        return None;
    }
    if !row.boot_id.is_empty() && !me.boot_id.is_empty() && row.boot_id != me.boot_id {
        return Some(true);
    }
    let Ok(pid) = i32::try_from(row.pid) else { return Some(true) };
    match procfs::stat(pid) {
        None => Some(true),
        Some(stat) if stat.state == 'Z' || stat.state == 'X' => Some(true),
        Some(stat) => Some(stat.start_time != row.start_time),
    }
}

/// A held lock; released on drop.
pub struct LockGuard {
    db: Arc<CronDb>,
    row: LockRow,
}

impl LockGuard {
    pub fn row(&self) -> &LockRow {
        &self.row
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Err(error) = self.db.drop_lock(&self.row) {
            tracing::warn!(lock = %self.row.name, %error, "cannot release a lock");
        }
    }
}

/// Takes lock `name` for `me`, evicting a provably dead or expired holder (audited).
/// `ttl_ms`: the lock expires this long after it is taken (`None`: never).
pub fn acquire(
    db: &Arc<CronDb>,
    audit: &dyn AuditSink,
    name: &str,
    me: &Holder,
    now_ms: i64,
    ttl_ms: Option<i64>,
) -> Result<Result<LockGuard, Busy>, SchedError> {
    let row = LockRow {
        name: name.to_string(),
        host: me.host.clone(),
        boot_id: me.boot_id.clone(),
        pid: me.pid,
        start_time: me.start_time,
        acquired_ms: now_ms,
        expires_ms: ttl_ms.map(|ttl| now_ms.saturating_add(ttl)),
    };
    // Two rounds: a stale holder is evicted in the first, then the insert races fairly.
    for _ in 0..2 {
        let existing = db.lock_row(name)?;
        let Some(existing) = existing else {
            if db.put_lock(&row, None)? {
                return Ok(Ok(LockGuard { db: db.clone(), row }));
            }
            continue;
        };
        let expired = existing.expires_ms.is_some_and(|at| at <= now_ms);
        let dead = holder_dead(&existing, me);
        let evict = match (expired, dead) {
            (true, _) => Some(format!(
                "its TTL ran out at {}",
                clawdia_core::time::rfc3339_utc(existing.expires_ms.unwrap_or(0))
            )),
            (false, Some(true)) => Some(format!("its holder, PID {} on this host, is gone", existing.pid)),
            (false, Some(false)) => return Ok(Err(Busy::Alive(existing))),
            (false, None) => return Ok(Err(Busy::OtherHost(existing))),
        };
        if let Some(reason) = evict
            && db.put_lock(&row, Some(&existing))?
        {
            audit.record(AuditEvent::new(
                "lock_evicted",
                Severity::NOTICE,
                format!("lock `{name}` taken over from {} PID {}: {reason}", existing.host, existing.pid),
            ));
            return Ok(Ok(LockGuard { db: db.clone(), row }));
        }
    }
    match db.lock_row(name)? {
        Some(existing) if existing.host == me.host => Ok(Err(Busy::Alive(existing))),
        Some(existing) => Ok(Err(Busy::OtherHost(existing))),
        None => Err(SchedError::Db(format!("lock `{name}` could not be taken"))),
    }
}

/// `clawdia cron unlock NAME`: removes the lock whoever holds it, with an audit event. Accepts
/// a job name (its lock is `job:NAME`) or a lock name.
pub fn unlock(db: &CronDb, audit: &dyn AuditSink, name: &str) -> Result<LockRow, SchedError> {
    let removed = match db.force_unlock(&job_lock(name))? {
        Some(row) => Some(row),
        None => db.force_unlock(name)?,
    };
    let Some(row) = removed else {
        return Err(SchedError::NotFound(format!("no lock named `{name}` or `{}`", job_lock(name))));
    };
    audit.record(AuditEvent::new(
        "lock_cleared",
        Severity::WARNING,
        format!(
            "lock `{}` held by {} PID {} cleared by hand (clawdia cron unlock)",
            row.name, row.host, row.pid
        ),
    ));
    Ok(row)
}

/// The lock that keeps a job to one run at a time.
pub fn job_lock(job: &str) -> String {
    format!("job:{job}")
}
