//! `[owner]` and `[alerts]`: defaults, every route and webhook format, and the one-line errors
//! for routes this build does not have (or whose channel is not configured), the mail channel's
//! table, a route without its settings (or settings without the
//! route), a relative hook program, a bad URL and out-of-range numbers.

use std::path::PathBuf;
use std::time::Duration;

use clawdia_config::{AlertRoute, SecretRef, WebhookFormat, parse};

use super::{check_error, home};

#[test]
fn without_the_sections_alerts_go_to_the_log_and_the_web_at_severity_ten() {
    let config = parse("", &home()).unwrap();
    assert_eq!(config.alerts.routes, [AlertRoute::Log, AlertRoute::Web]);
    assert!(config.channels.web.enabled);
    assert_eq!(config.channels.web.pair_ttl, Duration::from_secs(600));
    assert_eq!(config.channels.web.session_ttl, Duration::from_secs(30 * 86_400));
    // With the web UI off, the default is the log alone.
    let off = parse("[channels.web]\nenabled = false\n", &home()).unwrap();
    assert_eq!(off.alerts.routes, [AlertRoute::Log]);
    assert_eq!(config.alerts.min_severity, 10);
    assert_eq!(config.alerts.retry_max, Duration::from_secs(300));
    assert!(config.alerts.hook.is_none() && config.alerts.webhook.is_none());
    assert_eq!(config.owner, Default::default());
}

#[test]
fn the_interface_example_of_owner_and_every_route_parses() {
    let text = r#"[owner]
name = "Ana"
telegram = 123456789
email = "ana@example.org"
sip = "ana"

[alerts]
min_severity = 7
routes = ["log", "hook", "webhook"]
hook = ["/usr/local/bin/notify", "--json"]
webhook = { url = "https://ntfy.example.org/clawdia", format = "ntfy", token = { env = "NTFY_TOKEN" } }
retry_max_secs = 60
"#;
    let config = parse(text, &home()).unwrap();
    assert_eq!(config.owner.name.as_deref(), Some("Ana"));
    assert_eq!(config.owner.telegram, Some(123456789));
    assert_eq!(config.owner.email.as_deref(), Some("ana@example.org"));
    assert_eq!(config.owner.sip.as_deref(), Some("ana"));
    let alerts = &config.alerts;
    assert_eq!(alerts.min_severity, 7);
    assert_eq!(alerts.routes, [AlertRoute::Log, AlertRoute::Hook, AlertRoute::Webhook]);
    let hook = alerts.hook.as_ref().unwrap();
    assert_eq!(
        (hook.program.clone(), hook.args.clone()),
        (PathBuf::from("/usr/local/bin/notify"), vec!["--json".to_string()])
    );
    let webhook = alerts.webhook.as_ref().unwrap();
    assert_eq!(webhook.url, "https://ntfy.example.org/clawdia");
    assert_eq!(webhook.format, WebhookFormat::Ntfy);
    assert_eq!(webhook.token, Some(SecretRef::Env("NTFY_TOKEN".into())));
    assert_eq!(alerts.retry_max, Duration::from_secs(60));

    let gotify = "[alerts]\nroutes = [\"webhook\"]\n[alerts.webhook]\nurl = \"http://127.0.0.1:8080/message\"\nformat = \"gotify\"\n";
    assert_eq!(parse(gotify, &home()).unwrap().alerts.webhook.unwrap().format, WebhookFormat::Gotify);
    let json = "[alerts]\nroutes = [\"webhook\"]\nwebhook = { url = \"https://example.org/hook\" }\n";
    assert_eq!(parse(json, &home()).unwrap().alerts.webhook.unwrap().format, WebhookFormat::Json);
    assert!(parse("[alerts]\nroutes = []\n", &home()).unwrap().alerts.routes.is_empty());
}

#[test]
fn channels_this_build_lacks_are_refused_naming_the_routes_it_has() {
    check_error(
        "[alerts]\nroutes = [\"log\",\n  \"email\"]\n",
        "clawdia.toml:3: alerts.routes: route `email` needs the mail channel ([channels.email]) and the owner's address ([owner] email)",
    );
    // `web` needs the web UI on; with it on (the default) the route is taken.
    check_error(
        "[alerts]\nroutes = [\"web\"]\n[channels.web]\nenabled = false\n",
        "clawdia.toml:2: alerts.routes: route `web` needs the web UI, which `[channels.web] enabled = false` turns off",
    );
    let config = parse("[alerts]\nroutes = [\"web\"]\n", &home()).unwrap();
    assert_eq!(config.alerts.routes, [AlertRoute::Web]);
    check_error(
        "[alerts]\nroutes = [\"pager\"]\n",
        "clawdia.toml:2: alerts.routes: unknown route `pager` (routes here: log, web, telegram, email, hook, webhook)",
    );
    check_error(
        "[alerts]\nroutes = [\"log\", \"log\"]\n",
        "clawdia.toml:2: alerts.routes: route `log` is listed twice",
    );
}

#[test]
fn a_route_needs_its_settings_and_settings_need_their_route() {
    check_error(
        "[alerts]\nroutes = [\"log\", \"hook\"]\n",
        "clawdia.toml:2: alerts.hook: `routes` has \"hook\" but `hook` is not set (the command as a list, e.g. [\"/usr/local/bin/notify\", \"--json\"])",
    );
    check_error(
        "[alerts]\nhook = [\"/bin/true\"]\n",
        "clawdia.toml:2: alerts.hook: `hook` is set but `routes` does not list \"hook\"; add it or remove `hook`",
    );
    check_error(
        "[alerts]\nroutes = [\"webhook\"]\n",
        "clawdia.toml:2: alerts.webhook: `routes` has \"webhook\" but `webhook` is not set (e.g. { url = \"https://ntfy.sh/TOPIC\", format = \"ntfy\" })",
    );
    check_error(
        "[alerts]\nroutes = [\"hook\"]\nhook = [\"notify-send\", \"x\"]\n",
        "clawdia.toml:3: alerts.hook: the program `notify-send` must be an absolute path (no shell or PATH lookup runs it)",
    );
    check_error(
        "[alerts]\nroutes = [\"hook\"]\nhook = []\n",
        "clawdia.toml:3: alerts.hook: must name a program: [\"/path/to/program\", ...]",
    );
}

#[test]
fn bad_webhooks_and_numbers_name_line_and_key() {
    check_error(
        "[alerts]\nroutes = [\"webhook\"]\nwebhook = { url = \"ntfy.sh/topic\" }\n",
        "clawdia.toml:3: alerts.webhook.url: `ntfy.sh/topic` is not an http:// or https:// URL",
    );
    let bad_format = parse(
        "[alerts]\nroutes = [\"webhook\"]\nwebhook = { url = \"https://x.org\", format = \"slack\" }\n",
        &home(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad_format.starts_with("clawdia.toml:3: alerts.webhook.format: ") && bad_format.contains("slack"),
        "{bad_format}"
    );
    let inline = parse(
        "[alerts]\nroutes = [\"webhook\"]\nwebhook = { url = \"https://x.org\", token = \"tk_live_123\" }\n",
        &home(),
    )
    .unwrap_err()
    .to_string();
    assert!(inline.contains("never inline") && !inline.contains("tk_live_123"), "{inline}");
    check_error("[alerts]\nmin_severity = 16\n", "clawdia.toml:2: alerts.min_severity: must be from 0 to 15");
    check_error(
        "[alerts]\nretry_max_secs = 0\n",
        "clawdia.toml:2: alerts.retry_max_secs: must be at least 1",
    );
    check_error(
        "[owner]\ntelegram = -5\n",
        "clawdia.toml:2: owner.telegram: must be a Telegram user id (a positive number)",
    );
    check_error("[owner]\nemail = \"ana\"\n", "clawdia.toml:2: owner.email: `ana` is not an email address");
    let unknown = parse("[owner]\nphone = \"1\"\n", &home()).unwrap_err().to_string();
    assert!(unknown.starts_with("clawdia.toml:2: owner") && unknown.contains("phone"), "{unknown}");
}

#[test]
fn the_web_channel_takes_durations_and_an_http_public_url() {
    let config = parse(
        "[channels.web]\npublic_url = \"https://claw.example.org/\"\npair_ttl = \"5m\"\nsession_ttl = \"12h\"\n",
        &home(),
    )
    .unwrap();
    assert_eq!(config.channels.web.public_url.as_deref(), Some("https://claw.example.org"));
    assert_eq!(config.channels.web.pair_ttl, Duration::from_secs(300));
    assert_eq!(config.channels.web.session_ttl, Duration::from_secs(12 * 3_600));
    check_error(
        "[channels.web]\npair_ttl = \"soon\"\n",
        "clawdia.toml:2: channels.web.pair_ttl: `soon` is not a duration: a number of at least 1 with s, m, h or d, e.g. \"10m\" (at most 365d)",
    );
    check_error(
        "[channels.web]\npublic_url = \"claw.example.org\"\n",
        "clawdia.toml:2: channels.web.public_url: `claw.example.org` is not an http(s) URL, e.g. \"https://clawdia.example.org\"",
    );
}

/// Two providers and the `main` agent on lines 1-8.
fn with_agent(rest: &str) -> String {
    format!("{}[agents.main]\nmodel = \"zai/glm-5\"\n{rest}", super::PROVIDERS)
}

#[test]
fn a_telegram_bot_needs_a_token_and_known_agents() {
    let config = parse(
        &with_agent("[channels.telegram]\ntoken = { env = \"TG\" }\napi_root = \"http://127.0.0.1:9/\"\ndm_policy = \"allowlist\"\nallow = [5]\n"),
        &home(),
    )
    .unwrap();
    let telegram = config.channels.telegram.unwrap();
    assert_eq!(telegram.api_root, "http://127.0.0.1:9");
    assert_eq!(telegram.agent, "main");
    assert_eq!(telegram.agents, ["main"]);
    assert_eq!(telegram.dm_policy, clawdia_config::DmPolicy::Allowlist);
    assert_eq!(telegram.allow, [5]);
    assert_eq!(telegram.poll_timeout, Duration::from_secs(30));
    assert!(parse("", &home()).unwrap().channels.telegram.is_none());
    // With a bot and the owner's id, alerts go to Telegram too by default; without the id, a
    // `telegram` route says what it needs.
    let bot = "[channels.telegram]\ntoken = { env = \"TG\" }\n";
    let owned = parse(&with_agent(&format!("[owner]\ntelegram = 42\n{bot}")), &home()).unwrap();
    assert_eq!(owned.alerts.routes, [AlertRoute::Log, AlertRoute::Web, AlertRoute::Telegram]);
    let unowned = parse(&with_agent(bot), &home()).unwrap();
    assert_eq!(unowned.alerts.routes, [AlertRoute::Log, AlertRoute::Web]);
    check_error(
        &with_agent(&format!("[alerts]\nroutes = [\"telegram\"]\n{bot}")),
        "clawdia.toml:10: alerts.routes: route `telegram` needs a bot ([channels.telegram]) and the owner's user id ([owner] telegram)",
    );
    check_error(
        &with_agent("[channels.telegram]\ndm_policy = \"open\"\n"),
        "clawdia.toml:9: channels.telegram.token: is required: the bot's token as a secret reference, e.g. token = { env = \"TELEGRAM_BOT_TOKEN\" }",
    );
    check_error(
        &with_agent("[channels.telegram]\ntoken = { env = \"TG\" }\nagent = \"nobody\"\n"),
        "clawdia.toml:11: channels.telegram.agent: unknown agent `nobody` (configured: main)",
    );
    check_error(
        &with_agent("[channels.telegram]\ntoken = { env = \"TG\" }\nmode = \"webhook\"\n"),
        "clawdia.toml:11: channels.telegram.webhook_url: is required with mode = \"webhook\": the public https address that reaches the gateway's /v1/telegram/webhook",
    );
    check_error(
        &with_agent(
            "[channels.telegram]\ntoken = { env = \"TG\" }\nmode = \"webhook\"\nwebhook_url = \"ftp://x\"\n",
        ),
        "clawdia.toml:12: channels.telegram.webhook_url: `ftp://x` is not an http(s) URL",
    );
    check_error(
        &with_agent("[channels.telegram]\ntoken = { env = \"TG\" }\nvoice_reply = \"loud\"\n"),
        "clawdia.toml:11: channels.telegram.voice_reply: unknown setting `loud` (one of: spoken, always, never)",
    );
    check_error(
        &with_agent("[channels.telegram]\ntoken = { env = \"TG\" }\ndm_policy = \"everyone\"\n"),
        "clawdia.toml:11: channels.telegram.dm_policy: unknown policy `everyone` (one of: pairing, allowlist, open, disabled)",
    );
}

/// A complete `[channels.email]` table on lines 9-15 (after `with_agent`'s eight lines).
const MAIL: &str = "[channels.email]\nimap = { host = \"imap.example.org\" }\nsmtp = { host = \"smtp.example.org\", security = \"starttls\" }\nusername = \"claw\"\npassword = { env = \"MAILPW\" }\nfrom = \"Claw@Example.org\"\nallow = [\"bob@example.net\"]\n";

#[test]
fn a_mailbox_takes_servers_a_login_and_an_address_with_defaults() {
    let config = parse(&with_agent(MAIL), &home()).unwrap();
    let email = config.channels.email.unwrap();
    let server =
        |host: &str, port, security| clawdia_config::MailServer { host: host.into(), port, security };
    assert_eq!(email.imap, server("imap.example.org", 993, clawdia_config::MailSecurity::Tls));
    assert_eq!(email.smtp, server("smtp.example.org", 587, clawdia_config::MailSecurity::StartTls));
    assert_eq!(email.username, "claw");
    assert_eq!(email.password, SecretRef::Env("MAILPW".into()));
    assert_eq!(email.from, "claw@example.org");
    assert_eq!(email.allow, ["bob@example.net"]);
    assert_eq!(email.agent, "main");
    assert_eq!(email.max_attachment_bytes, 10 << 20);
    assert_eq!(email.poll, Duration::from_secs(60));
    assert_eq!(email.mailbox, "INBOX");
    assert!(parse("", &home()).unwrap().channels.email.is_none());
    // Plain connections are for loopback test servers only; ports follow the security.
    let local = MAIL
        .replace("host = \"imap.example.org\"", "host = \"127.0.0.1\", port = 1143, security = \"plain\"")
        .replace("security = \"starttls\"", "security = \"tls\"");
    let email = parse(
        &with_agent(&format!("{local}poll_secs = 2\nmailbox = \"Clawdia\"\nmax_attachment_mb = 1\n")),
        &home(),
    )
    .unwrap()
    .channels
    .email
    .unwrap();
    assert_eq!((email.imap.port, email.imap.security), (1143, clawdia_config::MailSecurity::Plain));
    assert_eq!(email.smtp.port, 465);
    assert_eq!(
        (email.poll, email.mailbox.as_str(), email.max_attachment_bytes),
        (Duration::from_secs(2), "Clawdia", 1 << 20)
    );
}

#[test]
fn with_the_mailbox_and_the_owners_address_alerts_go_by_email() {
    let owned =
        parse(&with_agent(&format!("[owner]\nemail = \"ana@example.org\"\n{MAIL}")), &home()).unwrap();
    assert_eq!(owned.alerts.routes, [AlertRoute::Log, AlertRoute::Web, AlertRoute::Email]);
    let chosen = parse(
        &with_agent(&format!("[owner]\nemail = \"ana@example.org\"\n[alerts]\nroutes = [\"email\"]\n{MAIL}")),
        &home(),
    )
    .unwrap();
    assert_eq!(chosen.alerts.routes, [AlertRoute::Email]);
    // Without the owner's address there is nobody to send to.
    assert_eq!(parse(&with_agent(MAIL), &home()).unwrap().alerts.routes, [AlertRoute::Log, AlertRoute::Web]);
    check_error(
        &with_agent(&format!("[alerts]\nroutes = [\"email\"]\n{MAIL}")),
        "clawdia.toml:10: alerts.routes: route `email` needs the mail channel ([channels.email]) and the owner's address ([owner] email)",
    );
}

#[test]
fn bad_mailbox_settings_name_line_and_key() {
    check_error(
        &with_agent("[channels.email]\nusername = \"x\"\n"),
        "clawdia.toml:9: channels.email.imap: is required, e.g. imap = { host = \"imap.example.org\", security = \"tls\" }",
    );
    check_error(
        &with_agent(&MAIL.replace("password = { env = \"MAILPW\" }\n", "")),
        "clawdia.toml:9: channels.email.password: is required, e.g. password = { env = \"CLAWDIA_MAIL_PASSWORD\" }",
    );
    let inline = parse(&with_agent(&MAIL.replace("{ env = \"MAILPW\" }", "\"hunter2\"")), &home())
        .unwrap_err()
        .to_string();
    assert!(inline.contains("channels.email.password") && !inline.contains("hunter2"), "{inline}");
    check_error(
        &with_agent(
            &MAIL.replace("host = \"imap.example.org\"", "host = \"imap.example.org\", security = \"plain\""),
        ),
        "clawdia.toml:10: channels.email.imap.security: `plain` sends the password unencrypted: allowed only to a loopback host, not `imap.example.org` (use tls or starttls)",
    );
    check_error(
        &with_agent(&MAIL.replace("security = \"starttls\"", "security = \"ssl\"")),
        "clawdia.toml:11: channels.email.smtp.security: unknown security `ssl` (one of: tls, starttls, plain)",
    );
    check_error(
        &with_agent(&MAIL.replace("\"Claw@Example.org\"", "\"Claw <claw@example.org>\"")),
        "clawdia.toml:14: channels.email.from: `Claw <claw@example.org>` is not an email address (write the bare address: name@example.org)",
    );
    check_error(
        &with_agent(&MAIL.replace("\"bob@example.net\"", "\"bob\"")),
        "clawdia.toml:15: channels.email.allow: `bob` is not an email address (write the bare address: name@example.org)",
    );
    check_error(
        &with_agent(&format!("{MAIL}agent = \"nobody\"\n")),
        "clawdia.toml:16: channels.email.agent: unknown agent `nobody` (configured: main)",
    );
    check_error(
        &with_agent(&format!("{MAIL}poll_secs = 0\n")),
        "clawdia.toml:9: channels.email.poll_secs: must be from 1 to 3600",
    );
    check_error(
        &with_agent(&format!("{MAIL}max_attachment_mb = 500\n")),
        "clawdia.toml:9: channels.email.max_attachment_mb: must be from 1 to 100",
    );
    check_error(
        &with_agent(&MAIL.replace("host = \"imap.example.org\"", "host = \"imap example\"")),
        "clawdia.toml:10: channels.email.imap.host: `imap example` is not a host name or address",
    );
}
