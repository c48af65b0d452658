//! Who really sent a message, decided here and not by any header a server added: DKIM
//! signatures are verified against the signing domain's published key, and one must pass with
//! `d=` equal to the From domain (strict DMARC alignment) and cover the From header, without a
//! body-length limit (`l=`, which would let anyone append text). The From domain's DMARC record,
//! when it has one, is evaluated too and a failing verdict refuses; SPF (the topmost `Received`
//! header's client address against the envelope sender's domain) is a further signal, recorded
//! with the verdict. Lookups go to the system's DNS; [`Verifier::with_records`] answers from
//! records given to it instead (tests only: nothing in the config can reach it).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use mail_auth::common::cache::NoCache;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, Parameters, ResolverCache,
    SpfOutput, SpfResult, Txt,
};

/// The environment variable a test sets to a file of DNS TXT records (`name value` per line)
/// that replace the system's DNS for mail authentication. Test only: a real deployment never
/// sets it, and the daemon logs a warning when it is set.
pub const TEST_RECORDS_ENV: &str = "CLAWDIA_TEST_EMAIL_DNS";

/// The outcome of checking one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The single From address, lowercased; `None` when there is not exactly one.
    pub from: Option<String>,
    /// Whether a DKIM signature aligned with the From domain passed and DMARC does not fail.
    pub authentic: bool,
    /// `dkim=pass d=example.org`, `dkim=fail (...)`, `dkim=none`.
    pub dkim: String,
    /// `dmarc=pass`, `dmarc=fail`, `dmarc=none` (no record).
    pub dmarc: String,
    /// `spf=pass`, `spf=fail`, ... or `spf=none` when no client address was found.
    pub spf: String,
}

impl Verdict {
    /// `dkim=... dmarc=... spf=...`, for logs and audit lines.
    pub fn summary(&self) -> String {
        format!("{} {} {}", self.dkim, self.dmarc, self.spf)
    }
}

/// Checks DKIM, DMARC and SPF.
pub struct Verifier {
    authenticator: MessageAuthenticator,
    /// Records that answer every TXT lookup instead of DNS (tests).
    records: Option<Records>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("stub", &self.records.is_some()).finish_non_exhaustive()
    }
}

impl Verifier {
    /// Lookups through the system's resolver (`/etc/resolv.conf`).
    pub fn system() -> Result<Verifier, String> {
        let authenticator = MessageAuthenticator::new_system_conf()
            .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?;
        Ok(Verifier { authenticator, records: None })
    }

    /// Every TXT lookup answered from `records` (`(name, value)`; a name absent there does not
    /// exist). For tests: a signing key made in the test, published nowhere else.
    pub fn with_records(records: &[(String, String)]) -> Result<Verifier, String> {
        let authenticator = MessageAuthenticator::new_system_conf()
            .or_else(|_| MessageAuthenticator::new_cloudflare())
            .map_err(|e| format!("cannot build a resolver: {e}"))?;
        Ok(Verifier { authenticator, records: Some(Records::new(records)?) })
    }

    /// [`Verifier::with_records`] from the file named by [`TEST_RECORDS_ENV`] when it is set,
    /// else [`Verifier::system`].
    pub fn from_env() -> Result<Verifier, String> {
        let Some(path) = std::env::var_os(TEST_RECORDS_ENV) else { return Verifier::system() };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{TEST_RECORDS_ENV}: cannot read {}: {e}", path.to_string_lossy()))?;
        let records: Vec<(String, String)> = text
            .lines()
            .filter_map(|line| line.trim().split_once(' '))
            .map(|(name, value)| (name.to_string(), value.trim().to_string()))
            .collect();
        tracing::warn!(
            "{TEST_RECORDS_ENV} is set: mail authentication answers from {} instead of DNS (tests only)",
            path.to_string_lossy()
        );
        Verifier::with_records(&records)
    }

    /// Checks `raw` (the message as stored on the server).
    pub async fn check(&self, raw: &[u8]) -> Verdict {
        let from = single_from(raw);
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return Verdict {
                from,
                authentic: false,
                dkim: "dkim=none (unparsable message)".into(),
                dmarc: "dmarc=none".into(),
                spf: "spf=none".into(),
            };
        };
        let stub = self.records.as_ref();
        let dkim_outputs = self.authenticator.verify_dkim(params(&message, stub)).await;
        let from_domain = from.as_deref().and_then(|a| a.rsplit_once('@')).map(|(_, d)| d.to_string());
        let aligned = dkim_outputs.iter().find_map(|output| {
            let signature = output.signature()?;
            let ok = *output.result() == DkimResult::Pass
                && from_domain.as_deref().is_some_and(|d| signature.d.eq_ignore_ascii_case(d))
                && signature.h.iter().any(|h| h.eq_ignore_ascii_case("from"))
                && signature.l == 0;
            ok.then(|| signature.d.clone())
        });
        let dkim = match (&aligned, dkim_outputs.first()) {
            (Some(domain), _) => format!("dkim=pass d={domain}"),
            (None, None) => "dkim=none (unsigned)".to_string(),
            (None, Some(output)) => match (output.result(), output.signature()) {
                (DkimResult::Pass, Some(signature)) => {
                    format!(
                        "dkim=fail (d={} not aligned with the From domain, or l= / From unsigned)",
                        signature.d
                    )
                }
                (result, _) => format!("dkim={}", dkim_text(result)),
            },
        };
        // SPF on the client the receiving server recorded, for the envelope sender.
        let (spf_output, mail_from_domain) = match received_client(raw) {
            Some((ip, helo)) => {
                let sender = return_path(raw).unwrap_or_default();
                let domain =
                    sender.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_else(|| helo.clone());
                let spf_params = SpfParameters::verify_mail_from(ip, &helo, "localhost", &sender);
                let output = self.authenticator.verify_spf(params(spf_params, stub)).await;
                (output, domain)
            }
            None => (SpfOutput::default(), String::new()),
        };
        let spf = match spf_output.result() {
            SpfResult::None if mail_from_domain.is_empty() => "spf=none (no client address)".to_string(),
            result => format!("spf={}", spf_text(result)),
        };
        let dmarc_params = DmarcParameters::new(&message, &dkim_outputs, &mail_from_domain, &spf_output);
        let dmarc_output = self.authenticator.verify_dmarc(params(dmarc_params, stub)).await;
        let (dmarc, dmarc_fails) = match (dmarc_output.dkim_result(), dmarc_output.spf_result()) {
            (DmarcResult::Pass, _) | (_, DmarcResult::Pass) => ("dmarc=pass".to_string(), false),
            // A record, and neither identifier passed (nothing aligned, or nothing at all).
            (DmarcResult::None, DmarcResult::None) if dmarc_output.dmarc_record().is_some() => {
                ("dmarc=fail".to_string(), true)
            }
            (DmarcResult::None, DmarcResult::None) => ("dmarc=none".to_string(), false),
            (DmarcResult::TempError(_), _) | (_, DmarcResult::TempError(_)) => {
                ("dmarc=temperror".to_string(), true)
            }
            _ => ("dmarc=fail".to_string(), true),
        };
        Verdict { authentic: aligned.is_some() && !dmarc_fails && from.is_some(), from, dkim, dmarc, spf }
    }
}

/// Lookup parameters: TXT answers from the stub records, or (none) from DNS.
type Lookup<'x, P> = Parameters<
    'x,
    P,
    Records,
    NoCache<String, Arc<Vec<mail_auth::MX>>>,
    NoCache<String, Arc<Vec<std::net::Ipv4Addr>>>,
    NoCache<String, Arc<Vec<std::net::Ipv6Addr>>>,
    NoCache<IpAddr, Arc<Vec<String>>>,
>;

/// The parameters with the stub records as TXT cache (or none: DNS).
fn params<P>(params: P, stub: Option<&Records>) -> Lookup<'_, P> {
    Parameters {
        params,
        cache_txt: stub,
        cache_mx: None,
        cache_ptr: None,
        cache_ipv4: None,
        cache_ipv6: None,
    }
}

fn dkim_text(result: &DkimResult) -> String {
    match result {
        DkimResult::Pass => "pass".into(),
        DkimResult::Neutral(e) => format!("neutral ({e})"),
        DkimResult::Fail(e) => format!("fail ({e})"),
        DkimResult::PermError(e) => format!("permerror ({e})"),
        DkimResult::TempError(e) => format!("temperror ({e})"),
        DkimResult::None => "none".into(),
    }
}

fn spf_text(result: SpfResult) -> &'static str {
    match result {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

/// The one address in the From header(s), lowercased; `None` when there are several headers,
/// several addresses, or none.
pub fn single_from(raw: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    let count = message.headers().iter().filter(|h| h.name == mail_parser::HeaderName::From).count();
    if count != 1 {
        return None;
    }
    let from = message.from()?;
    let mut addresses = from.iter();
    let address = addresses.next()?.address()?.trim().to_ascii_lowercase();
    (addresses.next().is_none() && clawdia_config::is_email_address(&address)).then_some(address)
}

/// The client address and HELO name in the topmost `Received` header (the one our own
/// receiving server added): `from HELO (... [IP])`.
fn received_client(raw: &[u8]) -> Option<(IpAddr, String)> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    let header = message.headers().iter().find(|h| h.name == mail_parser::HeaderName::Received)?;
    let text =
        std::str::from_utf8(raw.get(header.offset_start as usize..header.offset_end as usize)?).ok()?;
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = text.trim_start().strip_prefix("from ")?;
    let helo = rest.split_whitespace().next()?.to_string();
    let open = rest.find('[')?;
    let close = rest[open..].find(']')? + open;
    let inside = &rest[open + 1..close];
    let ip = inside.strip_prefix("IPv6:").unwrap_or(inside).parse().ok()?;
    Some((ip, helo))
}

/// The envelope sender the receiving server recorded (`Return-Path`).
fn return_path(raw: &[u8]) -> Option<String> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    let value = message.header_raw("Return-Path")?;
    let address = value.trim().trim_start_matches('<').trim_end_matches('>').trim().to_ascii_lowercase();
    (!address.is_empty()).then_some(address)
}

/// TXT records given up front; every other name does not exist.
pub struct Records(HashMap<String, Txt>);

impl Records {
    fn new(records: &[(String, String)]) -> Result<Records, String> {
        let mut map = HashMap::new();
        for (name, value) in records {
            let key = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
            let bytes = value.as_bytes();
            let txt: Txt = if key.contains("._domainkey.") {
                mail_auth::common::verify::DomainKey::parse(bytes)
                    .map(|k| Txt::DomainKey(Arc::new(k)))
                    .map_err(|e| format!("{name}: not a DKIM key record: {e}"))?
            } else if key.starts_with("_dmarc.") {
                mail_auth::dmarc::Dmarc::parse(bytes)
                    .map(|d| Txt::Dmarc(Arc::new(d)))
                    .map_err(|e| format!("{name}: not a DMARC record: {e}"))?
            } else {
                mail_auth::spf::Spf::parse(bytes)
                    .map(|s| Txt::Spf(Arc::new(s)))
                    .map_err(|e| format!("{name}: not an SPF record: {e}"))?
            };
            map.insert(key, txt);
        }
        Ok(Records(map))
    }
}

impl ResolverCache<String, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        Some(self.0.get(name).cloned().unwrap_or_else(|| {
            Txt::Error(mail_auth::Error::DnsRecordNotFound(
                mail_auth::hickory_resolver::proto::op::ResponseCode::NXDomain,
            ))
        }))
    }

    fn remove<Q>(&self, _name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _key: String, _value: Txt, _valid_until: Instant) {}
}
