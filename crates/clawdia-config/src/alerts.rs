//! `[owner]` and `[alerts]`: who the owner is on each channel, and where alerts for them go. The
//! raw tables as written (with their defaults, documented in the schema) and their validation:
//! routes this build has (`log`, `web`, `hook`, `webhook`; `web` only while `[channels.web]` is
//! on; the chat channels `telegram` and `email` only with their channel and the owner's id or
//! address), a hook argv whose program is an absolute path, a
//! webhook with an http(s) URL and a known format, numbers in range. `raw.rs` and `validate.rs`
//! only call in.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::SecretRef;
use crate::error::ConfigError;
use crate::raw::RawSecret;
use crate::validate::Context;

/// Defaults of `[alerts]`.
pub(crate) mod defaults {
    pub const MIN_SEVERITY: u8 = 10;
    pub const ROUTES: [&str; 2] = ["log", "web"];
    pub const RETRY_MAX_SECS: u64 = 300;
    pub const REPEAT_SECS: u64 = 600;
}

/// The routes this build can deliver to.
const KNOWN_ROUTES: &str = "log, web, telegram, email, hook, webhook";

/// The owner: who approvals and alerts are for, and how to reach them on each channel.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Owner")]
pub(crate) struct RawOwner {
    /// The owner's name, as alerts and agents address them.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// The owner's Telegram user id (a number); messages from it are the owner's.
    #[schemars(with = "Option<i64>")]
    pub telegram: Option<Spanned<i64>>,
    /// The owner's email address.
    #[schemars(with = "Option<String>")]
    pub email: Option<Spanned<String>>,
    /// The owner's SIP user name.
    #[schemars(with = "Option<String>")]
    pub sip: Option<Spanned<String>>,
}

/// Alerts for the owner: audit events at or above `min_severity`, failing jobs, heartbeat
/// messages, maintenance and dream reports, secret-rotation reminders and approval requests.
/// Each alert is queued in `state/outbox.db` and delivered to every route, retried with backoff
/// until the route accepts it: at least once, and exactly once unless the gateway dies between
/// a route accepting an alert and recording that (every alert carries a stable `id` for
/// receivers to drop such a duplicate).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Alerts")]
pub(crate) struct RawAlerts {
    /// Audit events at or above this severity (0-15) become alerts. Alerts raised on purpose
    /// (failing jobs, heartbeat messages, reports the owner scheduled, approval requests) are
    /// always sent.
    #[schemars(with = "Option<u8>", extend("default" = defaults::MIN_SEVERITY))]
    pub min_severity: Option<Spanned<u8>>,
    /// Where alerts go: `log` (one JSON line per alert in `logs/alerts.log`), `web` (live in every
    /// open browser of the web UI, and its notifications feed; needs `[channels.web]` on),
    /// `telegram` (a message to the owner from the bot, with Approve / Deny buttons for approval
    /// requests; needs `[channels.telegram]` and `[owner] telegram`), `email` (a plain-text mail
    /// to `[owner] email` from `[channels.email] from`; needs both), `hook`
    /// (run the `hook` command with the alert as JSON on stdin), `webhook` (POST to
    /// `webhook.url`). `[]` sends nothing. The default is `log`, plus `web` while the web UI is on,
    /// `telegram` when a bot and the owner's id are configured, and `email` when the mail channel
    /// and the owner's address are.
    #[schemars(with = "Option<Vec<String>>", extend("default" = defaults::ROUTES))]
    pub routes: Option<Vec<Spanned<String>>>,
    /// The `hook` route's command: the program (an absolute path) and its arguments, run on the
    /// host without a shell, with the alert as JSON on stdin; exit 0 means delivered. It gets 30
    /// seconds. Required when `routes` has `hook`.
    #[schemars(with = "Option<Vec<String>>")]
    pub hook: Option<Spanned<Vec<String>>>,
    /// The `webhook` route. Required when `routes` has `webhook`.
    pub webhook: Option<RawWebhook>,
    /// Failed deliveries are retried after 1 s, then twice as long each time, up to this many
    /// seconds between tries; they are retried until the route accepts them.
    #[schemars(with = "Option<u64>", extend("default" = defaults::RETRY_MAX_SECS))]
    pub retry_max_secs: Option<Spanned<u64>>,
    /// Audit events of one kind for one agent become at most one alert per this many seconds;
    /// the next alert after the quiet spell says how many were held back (all stay in the audit
    /// log). `0` sends every one. Alerts raised directly (approval requests, failing jobs,
    /// reports) are never held back.
    #[schemars(with = "Option<u64>", extend("default" = defaults::REPEAT_SECS))]
    pub repeat_secs: Option<u64>,
}

/// A webhook: each alert is POSTed to `url`; a 2xx answer means delivered.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Webhook")]
pub(crate) struct RawWebhook {
    /// The URL: an ntfy topic (`https://ntfy.sh/TOPIC`), a Gotify server's `/message`
    /// endpoint, or any endpoint taking JSON.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// `ntfy` (body = the alert's text; `Title`, `Priority`, `Tags` headers), `gotify` (JSON
    /// `title`, `message`, `priority`) or `json` (the alert as JSON with `id` and `created_at`).
    #[schemars(extend("default" = "json"))]
    pub format: Option<WebhookFormat>,
    /// A secret reference: Gotify's application token (sent as `X-Gotify-Key`), or a bearer
    /// token (`Authorization: Bearer`) for ntfy and `json`.
    pub token: Option<RawSecret>,
}

/// The body a webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// ntfy: the text as body, title and priority as headers.
    Ntfy,
    /// Gotify's `POST /message`.
    Gotify,
    /// The alert as JSON.
    Json,
}

/// `[owner]`, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerConfig {
    pub name: Option<String>,
    pub telegram: Option<i64>,
    pub email: Option<String>,
    pub sip: Option<String>,
}

/// `[alerts]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    pub min_severity: u8,
    /// In the order written, without duplicates.
    pub routes: Vec<AlertRoute>,
    /// Set when `routes` has `Hook`.
    pub hook: Option<HookConfig>,
    /// Set when `routes` has `Webhook`.
    pub webhook: Option<WebhookConfig>,
    /// The longest pause between two tries of a delivery.
    pub retry_max: Duration,
    /// At most one alert per audit kind and agent within this long (zero: no limit).
    pub repeat: Duration,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            min_severity: defaults::MIN_SEVERITY,
            routes: vec![AlertRoute::Log, AlertRoute::Web],
            hook: None,
            webhook: None,
            retry_max: Duration::from_secs(defaults::RETRY_MAX_SECS),
            repeat: Duration::from_secs(defaults::REPEAT_SECS),
        }
    }
}

/// One way alerts leave the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertRoute {
    Log,
    Web,
    Telegram,
    Email,
    Hook,
    Webhook,
}

impl AlertRoute {
    /// The name as written in `routes`.
    pub fn name(self) -> &'static str {
        match self {
            AlertRoute::Log => "log",
            AlertRoute::Web => "web",
            AlertRoute::Telegram => "telegram",
            AlertRoute::Email => "email",
            AlertRoute::Hook => "hook",
            AlertRoute::Webhook => "webhook",
        }
    }

    /// The route named `name`, if this build has it.
    pub fn from_name(name: &str) -> Option<AlertRoute> {
        match name {
            "log" => Some(AlertRoute::Log),
            "web" => Some(AlertRoute::Web),
            "telegram" => Some(AlertRoute::Telegram),
            "email" => Some(AlertRoute::Email),
            "hook" => Some(AlertRoute::Hook),
            "webhook" => Some(AlertRoute::Webhook),
            _ => None,
        }
    }
}

/// The hook command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    /// Absolute.
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub url: String,
    pub format: WebhookFormat,
    pub token: Option<SecretRef>,
}

pub(crate) fn owner(context: &Context, raw: RawOwner) -> Result<OwnerConfig, ConfigError> {
    let key = |field: &'static str| ["owner", field];
    let text = |value: Option<Spanned<String>>, field: &'static str| match value {
        None => Ok(None),
        Some(value) if value.get_ref().trim().is_empty() => {
            Err(context.error(value.span(), &key(field), "must not be empty"))
        }
        Some(value) => Ok(Some(value.into_inner().trim().to_string())),
    };
    let email = text(raw.email.clone(), "email")?;
    if let (Some(address), Some(spanned)) = (&email, &raw.email)
        && !crate::is_email_address(address)
    {
        let message = format!("`{address}` is not an email address");
        return Err(context.error(spanned.span(), &key("email"), message));
    }
    let telegram = match raw.telegram {
        None => None,
        Some(id) if *id.get_ref() > 0 => Some(id.into_inner()),
        Some(id) => {
            let message = "must be a Telegram user id (a positive number)";
            return Err(context.error(id.span(), &key("telegram"), message));
        }
    };
    Ok(OwnerConfig { name: text(raw.name, "name")?, telegram, email, sip: text(raw.sip, "sip")? })
}

pub(crate) fn alerts(
    context: &Context,
    raw: RawAlerts,
    channels: &crate::ChannelsConfig,
    owner: &OwnerConfig,
) -> Result<AlertsConfig, ConfigError> {
    let key = |field: &'static str| ["alerts", field];
    let min_severity = match raw.min_severity {
        None => defaults::MIN_SEVERITY,
        Some(level) if *level.get_ref() <= 15 => level.into_inner(),
        Some(level) => return Err(context.error(level.span(), &key("min_severity"), "must be from 0 to 15")),
    };
    // Each route with where it is written, so a missing `hook` or `webhook` points at its route.
    let mut spans = Vec::new();
    let routes = match raw.routes {
        None => {
            let mut routes = vec![AlertRoute::Log];
            if channels.web.enabled {
                routes.push(AlertRoute::Web);
            }
            if channels.telegram.is_some() && owner.telegram.is_some() {
                routes.push(AlertRoute::Telegram);
            }
            if channels.email.is_some() && owner.email.is_some() {
                routes.push(AlertRoute::Email);
            }
            routes
        }
        Some(names) => {
            let mut routes = Vec::new();
            for name in names {
                let route = match (AlertRoute::from_name(name.get_ref()), name.get_ref().as_str()) {
                    (Some(AlertRoute::Web), _) if !channels.web.enabled => {
                        let message =
                            "route `web` needs the web UI, which `[channels.web] enabled = false` turns off";
                        return Err(context.error(name.span(), &key("routes"), message));
                    }
                    (Some(AlertRoute::Telegram), _)
                        if channels.telegram.is_none() || owner.telegram.is_none() =>
                    {
                        let message = "route `telegram` needs a bot ([channels.telegram]) and the owner's user id ([owner] telegram)";
                        return Err(context.error(name.span(), &key("routes"), message));
                    }
                    (Some(AlertRoute::Email), _) if channels.email.is_none() || owner.email.is_none() => {
                        let message = "route `email` needs the mail channel ([channels.email]) and the owner's address ([owner] email)";
                        return Err(context.error(name.span(), &key("routes"), message));
                    }
                    (Some(route), _) => route,
                    (None, other) => {
                        let message = format!("unknown route `{other}` (routes here: {KNOWN_ROUTES})");
                        return Err(context.error(name.span(), &key("routes"), message));
                    }
                };
                if routes.contains(&route) {
                    let message = format!("route `{}` is listed twice", route.name());
                    return Err(context.error(name.span(), &key("routes"), message));
                }
                spans.push((route, name.span()));
                routes.push(route);
            }
            routes
        }
    };
    let route_span = |wanted: AlertRoute| {
        spans.iter().find(|(route, _)| *route == wanted).map(|(_, span)| span.clone()).unwrap_or(0..0)
    };
    let hook = match (raw.hook, routes.contains(&AlertRoute::Hook)) {
        (None, false) => None,
        (None, true) => {
            let message = "`routes` has \"hook\" but `hook` is not set (the command as a list, e.g. [\"/usr/local/bin/notify\", \"--json\"])";
            return Err(context.error(route_span(AlertRoute::Hook), &key("hook"), message));
        }
        (Some(hook), false) => {
            let message = "`hook` is set but `routes` does not list \"hook\"; add it or remove `hook`";
            return Err(context.error(hook.span(), &key("hook"), message));
        }
        (Some(hook), true) => {
            let span = hook.span();
            let mut argv = hook.into_inner().into_iter();
            let Some(program) = argv.next() else {
                return Err(context.error(
                    span,
                    &key("hook"),
                    "must name a program: [\"/path/to/program\", ...]",
                ));
            };
            let program = PathBuf::from(program);
            if !program.is_absolute() {
                let message = format!(
                    "the program `{}` must be an absolute path (no shell or PATH lookup runs it)",
                    program.display()
                );
                return Err(context.error(span, &key("hook"), message));
            }
            Some(HookConfig { program, args: argv.collect() })
        }
    };
    let webhook_key = |field: &'static str| ["alerts", "webhook", field];
    let webhook = match (raw.webhook, routes.contains(&AlertRoute::Webhook)) {
        (None, false) => None,
        (None, true) => {
            let message = "`routes` has \"webhook\" but `webhook` is not set (e.g. { url = \"https://ntfy.sh/TOPIC\", format = \"ntfy\" })";
            return Err(context.error(route_span(AlertRoute::Webhook), &key("webhook"), message));
        }
        (Some(webhook), false) => {
            let message =
                "`webhook` is set but `routes` does not list \"webhook\"; add it or remove `webhook`";
            return Err(context.error(webhook.url.span(), &key("webhook"), message));
        }
        (Some(webhook), true) => {
            let url = webhook.url.get_ref().trim();
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/'))
                || url.contains(char::is_whitespace)
            {
                let message = format!("`{url}` is not an http:// or https:// URL");
                return Err(context.error(webhook.url.span(), &webhook_key("url"), message));
            }
            let token = match webhook.token {
                None => None,
                Some(raw) => Some(context.secret(raw, &webhook_key("token"))?),
            };
            Some(WebhookConfig {
                url: url.to_string(),
                format: webhook.format.unwrap_or(WebhookFormat::Json),
                token,
            })
        }
    };
    let retry_max_secs =
        context.positive(raw.retry_max_secs, &key("retry_max_secs"), defaults::RETRY_MAX_SECS)?;
    let repeat = Duration::from_secs(raw.repeat_secs.unwrap_or(defaults::REPEAT_SECS));
    Ok(AlertsConfig {
        min_severity,
        routes,
        hook,
        webhook,
        retry_max: Duration::from_secs(retry_max_secs),
        repeat,
    })
}
