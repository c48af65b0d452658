//! The channel over TLS against the real servers: IMAPS with SMTP STARTTLS, then IMAP STARTTLS
//! with SMTPS (TLS from the first byte), certificates checked against the system's roots (here a
//! CA made by the test, named by `SSL_CERT_FILE`). A server whose certificate no trusted CA
//! signed is refused: the run ends with a TLS error before any login.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clawdia_config::{EmailConfig, MailSecurity, MailServer, SecretRef};
use clawdia_core::{
    AgentInfo, AuditEvent, AuditSink, Gateway, TurnError, TurnEvents, TurnOutcome, TurnRequest,
};
use clawdia_email::Email;
use clawdia_email::auth::Verifier;
use clawdia_test_support::mail::{Account, DkimKey, MailServers};

const OWNER: &str = "ana@example.org";
const BOT: &str = "claw@example.net";

struct NoAudit;
impl AuditSink for NoAudit {
    fn record(&self, _event: AuditEvent) {}
}

#[derive(Default)]
struct Echo(Mutex<usize>);

#[async_trait]
impl Gateway for Echo {
    fn agents(&self) -> Vec<AgentInfo> {
        Vec::new()
    }

    async fn run_turn(
        &self,
        request: TurnRequest,
        _events: &dyn TurnEvents,
    ) -> Result<TurnOutcome, TurnError> {
        *self.0.lock().unwrap() += 1;
        Ok(TurnOutcome {
            session_id: "s".into(),
            text: "Over TLS.".into(),
            usage: Default::default(),
            cost_usd: 0.0,
            model: None,
            attempts: Vec::new(),
            used_fallback: false,
            hit_max_tokens: false,
        })
        .map(|outcome| TurnOutcome {
            session_id: request.session.unwrap_or(outcome.session_id.clone()),
            ..outcome
        })
    }
}

fn config(dir: &std::path::Path, imap: (u16, MailSecurity), smtp: (u16, MailSecurity)) -> EmailConfig {
    let server = |(port, security)| MailServer { host: "localhost".into(), port, security };
    EmailConfig {
        imap: server(imap),
        smtp: server(smtp),
        username: BOT.into(),
        password: SecretRef::File(dir.join("mail-password")),
        from: BOT.into(),
        allow: Vec::new(),
        agent: "main".into(),
        max_attachment_bytes: 1 << 20,
        poll: Duration::from_secs(60),
        mailbox: "INBOX".into(),
    }
}

fn channel(config: EmailConfig, state: &std::path::Path, key: &DkimKey, gateway: Arc<Echo>) -> Arc<Email> {
    let verifier = Verifier::with_records(&[key.record()]).unwrap();
    Arc::new(Email::new(config, Some(OWNER.into()), state, gateway, Arc::new(NoAudit), verifier).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_tls_modes_work_and_an_untrusted_certificate_is_refused() {
    let owner = Account { address: OWNER.into(), password: "ana-pw".into() };
    let bot = Account { address: BOT.into(), password: "claw-pw".into() };
    let Some(servers) = MailServers::start_tls(&[owner.clone(), bot]) else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail-password"), "claw-pw\n").unwrap();
    let key = DkimKey::generate("example.org");
    let gateway = Arc::new(Echo::default());

    // Not trusted yet: the system's roots (none of them signed the test's CA) refuse it.
    // SAFETY: set before any thread of this test reads the environment; nextest runs each test
    // in its own process.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.path().join("no-such-roots.pem")) };
    let untrusted = channel(
        config(
            dir.path(),
            (servers.imap_port, MailSecurity::Tls),
            (servers.smtp_port, MailSecurity::StartTls),
        ),
        &dir.path().join("state0"),
        &key,
        gateway.clone(),
    );
    let error = untrusted.run(std::future::pending()).await.unwrap_err();
    assert!(error.contains("TLS") || error.contains("certificate"), "{error}");
    assert!(
        !servers.logs().contains(&format!("Login: user=<{BOT}>")),
        "logged in over an untrusted connection"
    );

    // SAFETY: as above.
    unsafe { std::env::set_var("SSL_CERT_FILE", servers.ca_file.as_ref().unwrap()) };
    let modes = [
        ((servers.imap_port, MailSecurity::Tls), (servers.smtp_port, MailSecurity::StartTls)),
        ((servers.imap_starttls_port, MailSecurity::StartTls), (servers.smtps_port, MailSecurity::Tls)),
    ];
    for (round, (imap, smtp)) in modes.into_iter().enumerate() {
        let email = channel(
            config(dir.path(), imap, smtp),
            &dir.path().join(format!("state{}", round + 1)),
            &key,
            gateway.clone(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(email.clone().run(async move {
            let _ = stopped.await;
        }));
        let deadline = Instant::now() + Duration::from_secs(20);
        while email.store().position("INBOX").unwrap().is_none() {
            assert!(
                Instant::now() < deadline && !task.is_finished(),
                "round {round}: no connection: {}",
                servers.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let raw = format!(
            "From: {OWNER}\r\nTo: {BOT}\r\nSubject: Round {round}\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <tls{round}@example.org>\r\n\r\nAre we encrypted?\r\n"
        );
        servers.submit(&owner, OWNER, BOT, &key.sign(raw.as_bytes())).unwrap();
        let replies = servers.wait_for(OWNER, round + 1, Duration::from_secs(30));
        assert_eq!(replies.len(), round + 1, "round {round}: {}", servers.logs());
        assert!(String::from_utf8_lossy(&replies[round]).contains("Over TLS."));
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
    assert_eq!(*gateway.0.lock().unwrap(), 2);
    let logs = servers.logs();
    let logins: Vec<&str> = logs.lines().filter(|l| l.contains(&format!("Login: user=<{BOT}>"))).collect();
    assert_eq!(logins.len(), 2, "{logs}");
    assert!(logins.iter().all(|l| l.contains(", TLS")), "IMAP logins over TLS: {logins:?}");
    let smtp_tls = logs.lines().filter(|l| l.contains("TLS connection established from localhost")).count();
    assert!(smtp_tls >= 2, "both replies went over TLS: {logs}");
}
