//! Without IDLE on the server the channel polls every `poll_secs`: a mail is answered within
//! about one interval (the positive control is the same mail reaching the model at all; the
//! server's missing IDLE is checked in its capability list).

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
struct Counting(Mutex<Vec<Instant>>);

#[async_trait]
impl Gateway for Counting {
    fn agents(&self) -> Vec<AgentInfo> {
        Vec::new()
    }

    async fn run_turn(
        &self,
        _request: TurnRequest,
        _events: &dyn TurnEvents,
    ) -> Result<TurnOutcome, TurnError> {
        self.0.lock().unwrap().push(Instant::now());
        Ok(TurnOutcome {
            session_id: "s".into(),
            text: "Polled.".into(),
            usage: Default::default(),
            cost_usd: 0.0,
            model: None,
            attempts: Vec::new(),
            used_fallback: false,
            hit_max_tokens: false,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idle_the_channel_polls() {
    let owner = Account { address: OWNER.into(), password: "ana-pw".into() };
    let bot = Account { address: BOT.into(), password: "claw-pw".into() };
    let Some(servers) = MailServers::start_without_idle(&[owner.clone(), bot]) else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail-password"), "claw-pw\n").unwrap();
    let key = DkimKey::generate("example.org");
    let server = |port| MailServer { host: "127.0.0.1".into(), port, security: MailSecurity::Plain };
    let config = EmailConfig {
        imap: server(servers.imap_port),
        smtp: server(servers.smtp_port),
        username: BOT.into(),
        password: SecretRef::File(dir.path().join("mail-password")),
        from: BOT.into(),
        allow: Vec::new(),
        agent: "main".into(),
        max_attachment_bytes: 1 << 20,
        poll: Duration::from_secs(1),
        mailbox: "INBOX".into(),
    };
    let gateway = Arc::new(Counting::default());
    let verifier = Verifier::with_records(&[key.record()]).unwrap();
    let email = Arc::new(
        Email::new(
            config,
            Some(OWNER.into()),
            &dir.path().join("state"),
            gateway.clone(),
            Arc::new(NoAudit),
            verifier,
        )
        .unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(email.clone().run(async move {
        let _ = stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(20);
    while email.store().position("INBOX").unwrap().is_none() {
        assert!(Instant::now() < deadline && !task.is_finished(), "no connection: {}", servers.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let raw = format!(
        "From: {OWNER}\r\nTo: {BOT}\r\nSubject: Poll\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <poll@example.org>\r\n\r\nAnyone there?\r\n"
    );
    let sent = Instant::now();
    servers.submit(&owner, OWNER, BOT, &key.sign(raw.as_bytes())).unwrap();
    let replies = servers.wait_for(OWNER, 1, Duration::from_secs(20));
    assert_eq!(replies.len(), 1, "{}", servers.logs());
    assert!(String::from_utf8_lossy(&replies[0]).contains("Polled."));
    let turn = gateway.0.lock().unwrap()[0];
    assert!(turn - sent < Duration::from_millis(2_500), "answered within about one poll: {:?}", turn - sent);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    // The server really had no IDLE (else this test would prove nothing about polling).
    let mut imap = std::net::TcpStream::connect(("127.0.0.1", servers.imap_port)).unwrap();
    imap.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    use std::io::{BufRead as _, Write as _};
    imap.write_all(b"a LOGIN claw@example.net claw-pw\r\n").unwrap();
    let mut reader = std::io::BufReader::new(imap);
    let mut seen = String::new();
    while !seen.lines().any(|line| line.starts_with("a ")) {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        seen.push_str(&line);
    }
    assert!(seen.contains("a OK") && !seen.contains("IDLE"), "{seen}");
}
