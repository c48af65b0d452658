//! Locks: taken over only from a provably dead holder on this host (PID gone, PID reused with a
//! different start time, an earlier boot); a live holder keeps it; a holder on another host is
//! never judged by a PID probe, only by its TTL or `unlock` (audited).

use std::sync::Arc;

use clawdia_sched::db::LockRow;
use clawdia_sched::lock::{self, Busy};
use clawdia_sched::{CronDb, Holder, procfs};

use crate::Audit;

fn setup() -> (tempfile::TempDir, Arc<CronDb>, Arc<Audit>, Holder) {
    let home = tempfile::tempdir().unwrap();
    let db = Arc::new(CronDb::open(home.path()).unwrap());
    (home, db, Arc::new(Audit::default()), Holder::me())
}

fn row(holder: &Holder, pid: i64, start_time: u64, expires_ms: Option<i64>) -> LockRow {
    LockRow {
        name: "brain-maintenance".into(),
        host: holder.host.clone(),
        boot_id: holder.boot_id.clone(),
        pid,
        start_time,
        acquired_ms: 1000,
        expires_ms,
    }
}

/// The PID of a process that has exited (and was reaped).
fn dead_pid() -> i64 {
    #[allow(clippy::disallowed_methods, reason = "a throwaway process whose PID is then free")]
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    i64::from(pid)
}

fn now() -> i64 {
    clawdia_sched::now_ms()
}

#[test]
fn a_live_holder_on_this_host_keeps_the_lock() {
    let (_home, db, audit, me) = setup();
    let first = lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap().unwrap();
    let second = lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap();
    assert!(matches!(second, Err(Busy::Alive(_))), "{:?}", second.err());
    drop(first);
    assert!(
        lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap().is_ok(),
        "released on drop"
    );
}

#[test]
fn a_holder_whose_pid_is_gone_is_evicted() {
    let (_home, db, audit, me) = setup();
    let pid = dead_pid();
    assert!(procfs::stat(pid as i32).is_none());
    db.insert_lock_row(&row(&me, pid, 12345, None)).unwrap();
    let taken = lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap();
    assert!(taken.is_ok(), "{:?}", taken.err());
    assert_eq!(db.locks().unwrap()[0].pid, me.pid);
    assert!(audit.kinds().contains(&"lock_evicted".to_string()));
}

#[test]
fn a_reused_pid_with_another_start_time_is_evicted() {
    let (_home, db, audit, me) = setup();
    // PID 1 exists, but not with this start time: the recorded holder is dead, the PID reused.
    let init_start = procfs::start_time(1).unwrap();
    db.insert_lock_row(&row(&me, 1, init_start + 777, None)).unwrap();
    assert!(lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap().is_ok());
    // The same PID with its real start time is a live holder.
    let (_home2, db2, audit2, me2) = setup();
    db2.insert_lock_row(&row(&me2, 1, init_start, None)).unwrap();
    assert!(matches!(
        lock::acquire(&db2, audit2.as_ref(), "brain-maintenance", &me2, now(), None).unwrap(),
        Err(Busy::Alive(_))
    ));
}

#[test]
fn a_holder_from_an_earlier_boot_is_evicted() {
    let (_home, db, audit, me) = setup();
    let mut stale = row(&me, me.pid, me.start_time, None);
    stale.boot_id = "an-earlier-boot".into();
    db.insert_lock_row(&stale).unwrap();
    assert!(lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap().is_ok());
}

#[test]
fn another_hosts_lock_survives_pid_probes_until_its_ttl_or_unlock() {
    let (_home, db, audit, me) = setup();
    let mut remote = row(&me, dead_pid(), 1, Some(now() + 3_600_000));
    remote.host = "other-host/0000".into();
    db.insert_lock_row(&remote).unwrap();
    let busy = lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap();
    assert!(matches!(busy, Err(Busy::OtherHost(_))), "a dead-looking PID on another host proves nothing");
    assert!(busy.err().unwrap().to_string().contains("clawdia cron unlock"));
    // Past its TTL it is taken over.
    let later = now() + 3_600_001;
    assert!(lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, later, None).unwrap().is_ok());

    // Without a TTL only unlock clears it, with an audit event.
    let (_home, db, audit, me) = setup();
    let mut remote = row(&me, 42, 1, None);
    remote.host = "other-host/0000".into();
    db.insert_lock_row(&remote).unwrap();
    assert!(
        lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now() + 10 * 86_400_000, None)
            .unwrap()
            .is_err()
    );
    let removed = lock::unlock(&db, audit.as_ref(), "brain-maintenance").unwrap();
    assert_eq!(removed.host, "other-host/0000");
    assert!(audit.kinds().contains(&"lock_cleared".to_string()));
    assert!(lock::acquire(&db, audit.as_ref(), "brain-maintenance", &me, now(), None).unwrap().is_ok());
    assert!(lock::unlock(&db, audit.as_ref(), "nothing-here").is_err());
}
