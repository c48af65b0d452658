//! The connections to the mail servers: IMAP over TLS, STARTTLS (required once asked for) or,
//! to a loopback test server only, plain TCP, logged in and the folder selected; and the SMTP
//! submission transport (lettre) with the same three modes. TLS is rustls on ring, with
//! certificates checked by the platform verifier against the system's roots.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use clawdia_config::{MailSecurity, MailServer};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How long connecting and each login step may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A stream the IMAP client reads and writes: plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}

pub type ImapSession = Session<Box<dyn Io>>;

fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    install_crypto_provider();
    use rustls_platform_verifier::ConfigVerifierExt as _;
    let config = rustls::ClientConfig::with_platform_verifier()
        .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn tls(stream: TcpStream, host: &str) -> Result<Box<dyn Io>, String> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
    let stream =
        tls_connector()?.connect(name, stream).await.map_err(|e| format!("TLS with {host} failed: {e}"))?;
    Ok(Box::new(stream))
}

/// Connects to the IMAP server, logs in and selects `mailbox`.
pub async fn imap(
    server: &MailServer,
    username: &str,
    password: &str,
    mailbox: &str,
) -> Result<(ImapSession, async_imap::types::Mailbox), String> {
    let within = |what: &'static str| move |_| format!("IMAP {what} timed out");
    tokio::time::timeout(CONNECT_TIMEOUT, async {
        let address = (server.host.as_str(), server.port);
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect to IMAP {}:{}: {e}", server.host, server.port))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = match server.security {
            MailSecurity::Tls => tls(tcp, &server.host).await?,
            MailSecurity::Plain => Box::new(tcp),
            MailSecurity::StartTls => {
                let mut plain = async_imap::Client::new(tcp);
                greeting(&mut plain).await?;
                plain
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| format!("the IMAP server refused STARTTLS: {e}"))?;
                // The server waits for the TLS handshake after its OK: nothing is buffered.
                tls(plain.into_inner(), &server.host).await?
            }
        };
        let mut client = async_imap::Client::new(stream);
        if server.security != MailSecurity::StartTls {
            greeting(&mut client).await?;
        }
        let mut session = client
            .login(username, password)
            .await
            .map_err(|(e, _)| format!("IMAP login as {username} refused: {e}"))?;
        let selected = session
            .select(mailbox)
            .await
            .map_err(|e| format!("cannot select the folder `{mailbox}`: {e}"))?;
        Ok((session, selected))
    })
    .await
    .map_err(within("connection"))?
}

/// Reads the server's greeting.
async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + Debug>(
    client: &mut async_imap::Client<T>,
) -> Result<(), String> {
    client
        .read_response()
        .await
        .map_err(|e| format!("IMAP greeting: {e}"))?
        .ok_or("the IMAP server closed the connection before greeting")?;
    Ok(())
}

/// Whether the server offers IDLE.
pub async fn has_idle(session: &mut ImapSession) -> bool {
    session.capabilities().await.is_ok_and(|caps| caps.has_str("IDLE"))
}

/// The SMTP submission transport.
pub fn smtp(
    server: &MailServer,
    username: &str,
    password: &str,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    install_crypto_provider();
    let builder = match server.security {
        MailSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&server.host)
            .map_err(|e| format!("SMTP {}: {e}", server.host))?,
        MailSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&server.host)
            .map_err(|e| format!("SMTP {}: {e}", server.host))?,
        MailSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&server.host),
    };
    Ok(builder
        .port(server.port)
        .credentials(Credentials::new(username.to_string(), password.to_string()))
        .timeout(Some(CONNECT_TIMEOUT))
        .build())
}
