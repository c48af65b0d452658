//! Real mail servers for the email channel's tests: Debian's Dovecot (IMAP with IDLE,
//! passwd-file logins, Maildir) and Postfix (SMTP with AUTH through Dovecot, delivering into the
//! same Maildirs), each started in the foreground with its own configuration in a temporary
//! folder, on free loopback ports, as root. Without them (or not as root) [`MailServers::start`]
//! prints why and returns `None` so the test can skip; under `CI=1` it panics instead. Also a
//! DKIM key made per test ([`DkimKey`]) whose record the channel's test resolver is given, and a
//! tiny SMTP client that submits a message exactly as written.

// Test support starts the mail servers (and chmod/chown for their folders) directly.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The uid and gid mail is stored as (nobody / nogroup).
const MAIL_ID: u32 = 65534;

/// One mailbox: `user@domain` and its password.
#[derive(Debug, Clone)]
pub struct Account {
    pub address: String,
    pub password: String,
}

/// Dovecot and Postfix running for one test; dropping it stops both.
pub struct MailServers {
    dir: tempfile::TempDir,
    /// IMAP: plain (or, with TLS, IMAPS: TLS from the first byte).
    pub imap_port: u16,
    /// SMTP submission (with TLS, STARTTLS offered; AUTH allowed either way).
    pub smtp_port: u16,
    /// With TLS: IMAP with STARTTLS, and SMTP with TLS from the first byte.
    pub imap_starttls_port: u16,
    pub smtps_port: u16,
    /// With TLS: the test CA that signed the servers' certificate for `localhost`.
    pub ca_file: Option<PathBuf>,
    dovecot: Child,
    postfix_conf: PathBuf,
    postfix: Child,
}

impl std::fmt::Debug for MailServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailServers").field("imap", &self.imap_port).field("smtp", &self.smtp_port).finish()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

/// Why the servers cannot run here, if they cannot.
fn missing() -> Option<String> {
    if !Path::new("/usr/sbin/dovecot").exists() {
        return Some("dovecot is not installed (apt-get install dovecot-imapd)".into());
    }
    if !Path::new("/usr/sbin/postfix").exists() {
        return Some("postfix is not installed (apt-get install postfix)".into());
    }
    let root = Command::new("id").arg("-u").output().ok().is_some_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        return Some("the mail servers' tests start Dovecot and Postfix as root".into());
    }
    None
}

impl MailServers {
    /// Starts both servers with `accounts` (their domains are the servers' own); `None` with a
    /// printed reason when they are not installed here (a panic under `CI=1`).
    pub fn start(accounts: &[Account]) -> Option<MailServers> {
        MailServers::start_with(accounts, false)
    }

    /// As `start`, with TLS: a CA made for the test signs a certificate for `localhost`; IMAPS
    /// on `imap_port`, IMAP with STARTTLS on `imap_starttls_port`, SMTP with STARTTLS on
    /// `smtp_port` and with TLS from the first byte on `smtps_port`.
    pub fn start_tls(accounts: &[Account]) -> Option<MailServers> {
        MailServers::start_with(accounts, true)
    }

    /// As `start`, with an IMAP server that does not offer IDLE (clients must poll).
    pub fn start_without_idle(accounts: &[Account]) -> Option<MailServers> {
        MailServers::start_inner(accounts, false, false)
    }

    fn start_with(accounts: &[Account], tls: bool) -> Option<MailServers> {
        MailServers::start_inner(accounts, tls, true)
    }

    fn start_inner(accounts: &[Account], tls: bool, idle: bool) -> Option<MailServers> {
        if let Some(reason) = missing() {
            assert!(std::env::var_os("CI").is_none(), "CI: {reason}");
            eprintln!("skipped: {reason}");
            return None;
        }
        let dir = tempfile::Builder::new().prefix("clawdia-mail-").tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let chmod = |path: &Path, mode: &str| {
            Command::new("chmod").arg(mode).arg(path).status().expect("chmod");
        };
        chmod(&root, "755");
        for sub in ["mail", "dovecot/run", "dovecot/state", "postfix/etc", "postfix/queue", "postfix/data"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        let chown = |path: &Path, owner: &str| {
            Command::new("chown").arg(owner).arg(path).status().expect("chown");
        };
        chown(&root.join("mail"), &format!("{MAIL_ID}:{MAIL_ID}"));
        chown(&root.join("postfix/data"), "postfix");
        let imap_port = free_port();
        let smtp_port = free_port();
        let (imap_starttls_port, smtps_port) = if tls { (free_port(), free_port()) } else { (0, 0) };
        let ca_file = tls.then(|| make_certificates(&root.join("tls")));
        let r = root.display();
        let mut domains: Vec<&str> =
            accounts.iter().filter_map(|a| a.address.split_once('@').map(|(_, d)| d)).collect();
        domains.sort_unstable();
        domains.dedup();

        // Dovecot: IMAP on the port, logins from a passwd file, Maildir under mail/DOMAIN/USER.
        let passwd: String =
            accounts.iter().map(|a| format!("{}:{{PLAIN}}{}\n", a.address, a.password)).collect();
        std::fs::write(root.join("dovecot/passwd"), passwd).expect("passwd");
        let (ssl, listeners) = if tls {
            (
                format!("ssl = yes\nssl_cert = <{r}/tls/server.pem\nssl_key = <{r}/tls/server.key"),
                format!(
                    "  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_starttls_port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imap_port}\n    ssl = yes\n  }}\n"
                ),
            )
        } else {
            (
                "ssl = no".to_string(),
                format!(
                    "  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n"
                ),
            )
        };
        // Without IDLE: the capability list after login, as Dovecot's but for IDLE.
        let capability = if idle {
            String::new()
        } else {
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ NAMESPACE UIDPLUS"
                .to_string()
        };
        let dovecot_conf = format!(
            "base_dir = {r}/dovecot/run\nstate_dir = {r}/dovecot/state\ninstance_name = clawdia-{imap_port}\n\
             protocols = imap\nlisten = 127.0.0.1\nlog_path = {r}/dovecot/dovecot.log\n{ssl}\n{capability}\n\
             disable_plaintext_auth = no\nauth_mechanisms = plain login\nfirst_valid_uid = 1\n\
             mail_location = maildir:{r}/mail/%d/%n\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {r}/dovecot/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={MAIL_ID} gid={MAIL_ID} home={r}/mail/%d/%n\n}}\n\
             service imap-login {{\n{listeners}}}\n\
             service auth {{\n  unix_listener auth-client {{\n    mode = 0666\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n"
        );
        std::fs::write(root.join("dovecot/dovecot.conf"), dovecot_conf).expect("dovecot.conf");
        let dovecot = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot/dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");

        // Postfix: SMTP with AUTH through Dovecot, virtual mailboxes delivered into the Maildirs.
        let vmailbox: String = accounts
            .iter()
            .filter_map(|a| a.address.split_once('@').map(|(user, domain)| (a, user, domain)))
            .map(|(a, user, domain)| format!("{} {domain}/{user}/\n", a.address))
            .collect();
        std::fs::write(root.join("postfix/etc/vmailbox"), vmailbox).expect("vmailbox");
        let main_cf = format!(
            "compatibility_level = 3.6\nqueue_directory = {r}/postfix/queue\ndata_directory = {r}/postfix/data\n\
             mail_owner = postfix\nsetgid_group = postdrop\nmyhostname = mx.test\nmydomain = test\n\
             myorigin = $myhostname\nmydestination =\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
             mynetworks = 127.0.0.0/8\nrelayhost =\nmaillog_file_prefixes = {r}\nmaillog_file = {r}/postfix/maillog\n\
             virtual_mailbox_domains = {}\nvirtual_mailbox_base = {r}/mail\n\
             virtual_mailbox_maps = texthash:{r}/postfix/etc/vmailbox\nvirtual_uid_maps = static:{MAIL_ID}\n\
             virtual_gid_maps = static:{MAIL_ID}\nsmtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n\
             smtpd_sasl_path = {r}/dovecot/run/auth-client\n\
             smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination\n\
             alias_maps =\nalias_database =\nbiff = no\nsmtputf8_enable = no\n{}",
            domains.join(" "),
            if tls {
                format!(
                    "smtpd_tls_cert_file = {r}/tls/server.pem\nsmtpd_tls_key_file = {r}/tls/server.key\nsmtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\n"
                )
            } else {
                String::new()
            }
        );
        std::fs::write(root.join("postfix/etc/main.cf"), main_cf).expect("main.cf");
        let services = [
            ("pickup", "unix", "n", "-", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "1", "1", "qmgr"),
            ("rewrite", "unix", "-", "-", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "-", "-", "proxymap"),
            ("smtp", "unix", "-", "-", "-", "-", "smtp"),
            ("relay", "unix", "-", "-", "-", "-", "smtp"),
            ("showq", "unix", "n", "-", "-", "-", "showq"),
            ("error", "unix", "-", "-", "-", "-", "error"),
            ("retry", "unix", "-", "-", "-", "-", "error"),
            ("discard", "unix", "-", "-", "-", "-", "discard"),
            ("virtual", "unix", "-", "n", "-", "-", "virtual"),
            ("anvil", "unix", "-", "-", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "-", "1", "postlogd"),
        ];
        let mut master_cf = format!("127.0.0.1:{smtp_port} inet n - n - - smtpd\n");
        if tls {
            master_cf.push_str(&format!(
                "127.0.0.1:{smtps_port} inet n - n - - smtpd -o smtpd_tls_wrappermode=yes\ntlsmgr unix - - n 1000? 1 tlsmgr\n"
            ));
        }
        for (name, kind, private, unpriv, wakeup, limit, command) in services {
            master_cf.push_str(&format!("{name} {kind} {private} {unpriv} n {wakeup} {limit} {command}\n"));
        }
        std::fs::write(root.join("postfix/etc/master.cf"), master_cf).expect("master.cf");
        let postfix_conf = root.join("postfix/etc");
        let postfix = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&postfix_conf)
            .arg("start-fg")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postfix");
        let servers = MailServers {
            dir,
            imap_port,
            smtp_port,
            imap_starttls_port,
            smtps_port,
            ca_file,
            dovecot,
            postfix_conf,
            postfix,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let ports = [imap_port, smtp_port, imap_starttls_port, smtps_port];
        while ports.iter().any(|&port| port != 0 && TcpStream::connect(("127.0.0.1", port)).is_err()) {
            assert!(Instant::now() < deadline, "the mail servers did not start: {}", servers.logs());
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(servers)
    }

    /// Both servers' logs (for failure messages).
    pub fn logs(&self) -> String {
        let read = |path: &str| std::fs::read_to_string(self.dir.path().join(path)).unwrap_or_default();
        format!("--- dovecot\n{}--- postfix\n{}", read("dovecot/dovecot.log"), read("postfix/maillog"))
    }

    /// Every message delivered to `address`'s Maildir so far (new and seen), oldest first.
    pub fn messages(&self, address: &str) -> Vec<Vec<u8>> {
        let Some((user, domain)) = address.split_once('@') else { return Vec::new() };
        let base = self.dir.path().join("mail").join(domain).join(user);
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(base.join(sub)).ok())
            .flatten()
            .flatten()
            .map(|entry| {
                (entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), entry.path())
            })
            .collect();
        files.sort();
        files.into_iter().filter_map(|(_, path)| std::fs::read(path).ok()).collect()
    }

    /// Waits up to `timeout` until `address` has at least `count` messages; all of them.
    pub fn wait_for(&self, address: &str, count: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages(address);
            if messages.len() >= count || Instant::now() > deadline {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Submits `raw` (headers and body, CRLF or LF line ends) over SMTP as `account`, from
    /// `envelope_from` to `to`, exactly as written; the server's final answer.
    pub fn submit(&self, account: &Account, envelope_from: &str, to: &str, raw: &[u8]) -> Result<(), String> {
        let stream = TcpStream::connect(("127.0.0.1", self.smtp_port)).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut writer = stream;
        let mut expect = |writer: &mut TcpStream, line: Option<String>, code: &str| -> Result<(), String> {
            if let Some(line) = line {
                writer.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
            }
            loop {
                let mut answer = String::new();
                reader.read_line(&mut answer).map_err(|e| e.to_string())?;
                if !answer.starts_with(code) {
                    return Err(format!("expected {code}, got {answer:?}"));
                }
                if answer.as_bytes().get(3) != Some(&b'-') {
                    return Ok(());
                }
            }
        };
        expect(&mut writer, None, "220")?;
        expect(&mut writer, Some("EHLO client.test\r\n".into()), "250")?;
        let token = base64(format!("\0{}\0{}", account.address, account.password).as_bytes());
        expect(&mut writer, Some(format!("AUTH PLAIN {token}\r\n")), "235")?;
        expect(&mut writer, Some(format!("MAIL FROM:<{envelope_from}>\r\n")), "250")?;
        expect(&mut writer, Some(format!("RCPT TO:<{to}>\r\n")), "250")?;
        expect(&mut writer, Some("DATA\r\n".into()), "354")?;
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let mut data = String::new();
        for line in text.lines() {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        expect(&mut writer, Some(data), "250")?;
        let _ = writer.write_all(b"QUIT\r\n");
        Ok(())
    }
}

impl Drop for MailServers {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.postfix_conf)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.postfix.wait();
        let _ = Command::new("kill").arg("-TERM").arg(self.dovecot.id().to_string()).status();
        let _ = self.dovecot.wait();
    }
}

/// A CA and a certificate it signs for `localhost` (P-256 keys, two days), made with the
/// `openssl` command in `dir`; the CA's file.
fn make_certificates(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir tls");
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=clawdia test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    ca.extend(ec);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"];
    csr.extend(ec);
    openssl(&csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext.cnf");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    // Dovecot and Postfix read the key as root before dropping privileges.
    dir.join("ca.pem")
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An Ed25519 DKIM key made for one test: `domain`'s selector `sel`.
pub struct DkimKey {
    pkcs8: Vec<u8>,
    pub domain: String,
    pub selector: String,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey").field("domain", &self.domain).finish_non_exhaustive()
    }
}

impl DkimKey {
    pub fn generate(domain: &str) -> DkimKey {
        let pkcs8 = mail_auth::common::crypto::Ed25519Key::generate_pkcs8().expect("ed25519 key");
        DkimKey { pkcs8, domain: domain.to_string(), selector: "sel".to_string() }
    }

    /// The DNS TXT record that publishes the key: (name, value).
    pub fn record(&self) -> (String, String) {
        let key = mail_auth::common::crypto::Ed25519Key::from_pkcs8_der(&self.pkcs8).expect("key");
        (
            format!("{}._domainkey.{}", self.selector, self.domain),
            format!("v=DKIM1; k=ed25519; p={}", base64(&key.public_key())),
        )
    }

    /// `raw` with a DKIM-Signature header prepended (relaxed/relaxed, over From, To, Subject,
    /// Date, Message-ID, In-Reply-To and References).
    pub fn sign(&self, raw: &[u8]) -> Vec<u8> {
        use mail_auth::common::headers::HeaderWriter as _;
        let key = mail_auth::common::crypto::Ed25519Key::from_pkcs8_der(&self.pkcs8).expect("key");
        let raw = String::from_utf8_lossy(raw).replace("\r\n", "\n").replace('\n', "\r\n");
        let signature = mail_auth::dkim::DkimSigner::from_key(key)
            .domain(self.domain.clone())
            .selector(self.selector.clone())
            .headers(["From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References"])
            .sign(raw.as_bytes())
            .expect("sign");
        let mut signed = signature.to_header().into_bytes();
        signed.extend_from_slice(raw.as_bytes());
        signed
    }
}

/// Writes `records` as the file the channel's test resolver reads (`CLAWDIA_TEST_EMAIL_DNS`):
/// one `name value` per line.
pub fn write_records(path: &Path, records: &[(String, String)]) {
    let text: String = records.iter().map(|(name, value)| format!("{name} {value}\n")).collect();
    std::fs::write(path, text).expect("write the DNS records");
}
