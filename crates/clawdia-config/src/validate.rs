//! Stage two: raw structs → validated types. Applies the defaults from `raw::defaults`, resolves
//! relative paths against the home, and rejects what serde cannot: bad names, malformed or
//! dangling `provider/model` references, bad URLs and out-of-range numbers. Each error carries the
//! line of the offending value (from its `Spanned` byte range) and its dotted key path.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clawdia_core::ModelRef;
use toml::Spanned;

use crate::error::{ConfigError, key_path};
use crate::raw::defaults::{CONNECT_TIMEOUT_SECS as CONNECT_SECS, READ_TIMEOUT_SECS as READ_SECS};
use crate::raw::{self, RawSecret, defaults};
use crate::{
    AgentConfig, BrainConfig, Budget, Config, EmbedderConfig, GatewayConfig, LocalProviderConfig, LogsConfig,
    Price, PromptLimits, ProviderConfig, ProviderKind, SecretRef, ToolPolicy, WebFetchConfig,
};

/// What every check needs: the text (to turn byte offsets into lines) and the home.
pub(crate) struct Context<'a> {
    text: &'a str,
    home: &'a Path,
    /// Secrets with a rotation schedule, collected as references are validated.
    rotation: std::cell::RefCell<Vec<crate::SecretRotation>>,
}

impl Context<'_> {
    pub(crate) fn error(
        &self,
        span: std::ops::Range<usize>,
        key: &[&str],
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::at(self.text, span.start, key_path(key), message)
    }

    pub(crate) fn path(&self, path: &str) -> PathBuf {
        self.home.join(path)
    }

    pub(crate) fn secret(&self, raw: RawSecret, key: &[&str]) -> Result<SecretRef, ConfigError> {
        let (reference, rotated_at, every_days) = match raw {
            RawSecret::Env { env, rotated_at, rotate_every_days } => {
                (SecretRef::Env(env), rotated_at, rotate_every_days)
            }
            RawSecret::File { file, rotated_at, rotate_every_days } => {
                (SecretRef::File(self.path(&file)), rotated_at, rotate_every_days)
            }
        };
        let whole = key_path(key);
        // The reference is a table without per-value spans: errors point at the file's start.
        let error = |message: String| {
            let needle = if message.starts_with("rotated_at") { "rotated_at" } else { "rotate_every_days" };
            ConfigError::at(self.text, self.text.find(needle).unwrap_or(0), whole.clone(), message)
        };
        match (rotated_at, every_days) {
            (None, None) => {}
            (Some(date), Some(days)) => {
                let rotated_at_ms = clawdia_core::time::parse_rfc3339(&format!("{}T00:00:00Z", date.trim()))
                    .ok_or_else(|| error(format!("rotated_at `{date}` is not a date (YYYY-MM-DD)")))?;
                if days == 0 {
                    return Err(error("rotate_every_days must be at least 1".into()));
                }
                self.rotation.borrow_mut().push(crate::SecretRotation {
                    key: whole.clone(),
                    reference: reference.to_string(),
                    rotated_at: date.trim().to_string(),
                    rotated_at_ms,
                    every_days: days,
                });
            }
            (Some(_), None) => return Err(error("rotated_at needs rotate_every_days".into())),
            (None, Some(_)) => return Err(error("rotate_every_days needs rotated_at (YYYY-MM-DD)".into())),
        }
        Ok(reference)
    }

    /// A count that must be at least 1, or `default` when unset.
    pub(crate) fn positive<T: Copy + PartialOrd + From<u8>>(
        &self,
        value: Option<Spanned<T>>,
        key: &[&str],
        default: T,
    ) -> Result<T, ConfigError> {
        match value {
            None => Ok(default),
            Some(value) if *value.get_ref() >= T::from(1) => Ok(value.into_inner()),
            Some(value) => Err(self.error(value.span(), key, "must be at least 1")),
        }
    }

    /// An amount of US dollars: finite and not negative.
    pub(crate) fn usd(&self, value: Spanned<f64>, key: &[&str]) -> Result<f64, ConfigError> {
        let usd = *value.get_ref();
        if usd.is_finite() && usd >= 0.0 {
            return Ok(usd);
        }
        Err(self.error(value.span(), key, "must be a non-negative number of US dollars"))
    }
}

pub(crate) fn config(raw: raw::RawConfig, text: &str, home: PathBuf) -> Result<Config, ConfigError> {
    let context = Context { text, home: &home, rotation: Default::default() };
    let gateway = gateway(&context, raw.gateway)?;
    let mut providers = BTreeMap::new();
    for (name, provider_raw) in raw.providers {
        let provider = provider(&context, &name, provider_raw)?;
        providers.insert(name, provider);
    }
    let mut agents = BTreeMap::new();
    for (name, agent_raw) in raw.agents {
        let agent = agent(&context, &name, agent_raw, &providers)?;
        agents.insert(name, agent);
    }
    let mut prices = BTreeMap::new();
    for (key, price_raw) in raw.prices {
        let price = price(&context, &key, price_raw, &providers)?;
        prices.insert(key, price);
    }
    let brain = brain(&context, raw.brain, &agents, &providers)?;
    let cron = crate::cron::validate(&context, raw.cron, &agents)?;
    let mcp = crate::mcp::validate(&context, raw.mcp, &agents)?;
    let broker = crate::broker::validate(&context, raw.broker, &agents)?;
    let bridge = crate::broker::bridge(&context, raw.bridge)?;
    let owner = crate::alerts::owner(&context, raw.owner)?;
    let channels = crate::channels::validate(&context, raw.channels, &agents)?;
    let speech = crate::speech::validate(&context, raw.speech, &providers)?;
    let alerts = crate::alerts::alerts(&context, raw.alerts, &channels, &owner)?;
    let logs = LogsConfig {
        max_bytes: context.positive(raw.logs.max_bytes, &["logs", "max_bytes"], defaults::LOG_MAX_BYTES)?,
        keep: raw.logs.keep.unwrap_or(defaults::LOG_KEEP),
    };
    let secret_rotation = context.rotation.take();
    Ok(Config {
        home: home.clone(),
        gateway,
        providers,
        agents,
        prices,
        brain,
        cron,
        mcp,
        secret_rotation,
        broker,
        bridge,
        owner,
        alerts,
        channels,
        speech,
        logs,
    })
}

fn brain(
    context: &Context,
    raw: raw::RawBrain,
    agents: &BTreeMap<String, AgentConfig>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<BrainConfig, ConfigError> {
    let rrf_k = match raw.rrf_k {
        None => defaults::RRF_K,
        Some(k) if k.get_ref().is_finite() && *k.get_ref() >= 1.0 => k.into_inner(),
        Some(k) => {
            return Err(context.error(k.span(), &["brain", "rrf_k"], "must be a number of at least 1"));
        }
    };
    let weight = |value: Option<Spanned<f64>>, key: &str, default: f64| match value {
        None => Ok(default),
        Some(w) if w.get_ref().is_finite() && *w.get_ref() >= 0.0 => Ok(w.into_inner()),
        Some(w) => Err(context.error(w.span(), &["brain", key], "must be a non-negative number")),
    };
    let fts_weight = weight(raw.fts_weight, "fts_weight", defaults::FTS_WEIGHT)?;
    let vector_weight = weight(raw.vector_weight, "vector_weight", defaults::VECTOR_WEIGHT)?;
    let page_weight = weight(raw.page_weight, "page_weight", defaults::PAGE_WEIGHT)?;
    let max_chunks_per_page = context.positive(
        raw.max_chunks_per_page,
        &["brain", "max_chunks_per_page"],
        defaults::MAX_CHUNKS_PER_PAGE,
    )?;
    let mut boosts = Vec::new();
    for (prefix, factor) in raw.boosts.unwrap_or_default() {
        let value = *factor.get_ref();
        if !value.is_finite() || value <= 0.0 {
            return Err(context.error(
                factor.span(),
                &["brain", "boosts", &prefix],
                "must be a positive number",
            ));
        }
        boosts.push((prefix, value));
    }
    let embedder = raw.embedder;
    let kind_span = embedder.kind.as_ref().map(|k| k.span()).unwrap_or(0..0);
    let model_span = embedder.model.as_ref().map(|m| m.span()).unwrap_or(kind_span.clone());
    let model =
        embedder.model.map(Spanned::into_inner).unwrap_or_else(|| defaults::EMBEDDING_MODEL.to_string());
    let kind = embedder.kind.map(Spanned::into_inner).unwrap_or(raw::EmbedderKind::Local);
    let only_for = |present: bool, key: &str, wanted: &str| -> Result<(), ConfigError> {
        if present {
            let message = format!("`{key}` is only used with kind = \"{wanted}\"");
            return Err(context.error(kind_span.clone(), &["brain", "embedder", key], message));
        }
        Ok(())
    };
    if kind != raw::EmbedderKind::Openai {
        only_for(embedder.base_url.is_some(), "base_url", "openai")?;
        only_for(embedder.api_key.is_some(), "api_key", "openai")?;
        only_for(embedder.dimensions.is_some(), "dimensions", "openai")?;
    }
    if kind != raw::EmbedderKind::Local {
        only_for(embedder.threads.is_some(), "threads", "local")?;
    }
    let embedder = match kind {
        raw::EmbedderKind::None => EmbedderConfig::None,
        raw::EmbedderKind::Local => {
            if model.is_empty() || model.contains('/') || model.starts_with('.') {
                let message = "for `local`, `model` is a folder name under models/ (e.g. all-MiniLM-L6-v2)";
                return Err(context.error(model_span, &["brain", "embedder", "model"], message));
            }
            let dir = context.path(defaults::MODELS_DIR).join(&model);
            EmbedderConfig::Local { model, dir, threads: embedder.threads }
        }
        raw::EmbedderKind::Openai => {
            let Some(base_url) = embedder.base_url else {
                let message = "`base_url` is required when kind = \"openai\"";
                return Err(context.error(kind_span, &["brain", "embedder", "base_url"], message));
            };
            let url = base_url.get_ref().trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let message = format!("`{url}` is not an http:// or https:// URL");
                return Err(context.error(base_url.span(), &["brain", "embedder", "base_url"], message));
            }
            EmbedderConfig::OpenAi {
                base_url: url.to_string(),
                api_key: match embedder.api_key {
                    Some(secret) => Some(context.secret(secret, &["brain", "embedder", "api_key"])?),
                    None => None,
                },
                model,
                dimensions: embedder.dimensions,
            }
        }
    };
    Ok(BrainConfig {
        fusion: raw.fusion.map_or(crate::BrainFusion::Convex, Spanned::into_inner),
        rrf_k,
        fts_weight,
        vector_weight,
        page_weight,
        max_chunks_per_page,
        boosts,
        exclude: raw.exclude.unwrap_or_default(),
        embedder,
        dream: crate::dream::validate(context, raw.dream, agents, providers)?,
    })
}

fn gateway(context: &Context, raw: raw::RawGateway) -> Result<GatewayConfig, ConfigError> {
    let bind = match raw.bind {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(bind) => bind.get_ref().parse().map_err(|_| {
            context.error(
                bind.span(),
                &["gateway", "bind"],
                format!("`{}` is not an IP address (use e.g. 127.0.0.1, 0.0.0.0 or ::)", bind.get_ref()),
            )
        })?,
    };
    let token = match raw.token {
        Some(token) => context.secret(token, &["gateway", "token"])?,
        None => SecretRef::File(context.path(defaults::TOKEN_FILE)),
    };
    let max_request_bytes = context.positive(
        raw.max_request_bytes,
        &["gateway", "max_request_bytes"],
        defaults::MAX_REQUEST_BYTES,
    )?;
    let seconds = |value, key, default| {
        context.positive(value, &["gateway", key], default).map(std::time::Duration::from_secs)
    };
    Ok(GatewayConfig {
        bind,
        port: raw.port.unwrap_or(defaults::PORT),
        token,
        max_request_bytes,
        max_connections: context.positive(
            raw.max_connections,
            &["gateway", "max_connections"],
            defaults::MAX_CONNECTIONS,
        )?,
        header_timeout: seconds(
            raw.header_timeout_secs,
            "header_timeout_secs",
            defaults::HEADER_TIMEOUT_SECS,
        )?,
        body_timeout: seconds(raw.body_timeout_secs, "body_timeout_secs", defaults::BODY_TIMEOUT_SECS)?,
        write_timeout: seconds(raw.write_timeout_secs, "write_timeout_secs", defaults::WRITE_TIMEOUT_SECS)?,
        max_concurrent_turns: context.positive(
            raw.max_concurrent_turns,
            &["gateway", "max_concurrent_turns"],
            defaults::MAX_CONCURRENT_TURNS,
        )?,
        turn_queue: std::time::Duration::from_secs(raw.turn_queue_secs.unwrap_or(defaults::TURN_QUEUE_SECS)),
        drain: std::time::Duration::from_secs(raw.drain_secs.unwrap_or(defaults::DRAIN_SECS)),
    })
}

fn provider(
    context: &Context,
    name: &str,
    raw: Spanned<raw::RawProvider>,
) -> Result<ProviderConfig, ConfigError> {
    check_name(context, raw.span(), "providers", name)?;
    let provider_span = raw.span();
    let raw = raw.into_inner();
    let local = local_provider(context, name, provider_span.clone(), &raw)?;
    let url = match (&raw.base_url, raw.kind) {
        (None, ProviderKind::Local) => String::new(),
        (None, _) => {
            return Err(context.error(provider_span, &["providers", name], "missing key `base_url`"));
        }
        (Some(base_url), _) => {
            let url = base_url.get_ref().trim_end_matches('/');
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.contains(char::is_whitespace)) {
                return Err(context.error(
                    base_url.span(),
                    &["providers", name, "base_url"],
                    format!("`{}` is not an http:// or https:// URL", base_url.get_ref()),
                ));
            }
            url.to_string()
        }
    };
    let mut headers = BTreeMap::new();
    for (header, value) in raw.headers.unwrap_or_default() {
        let valid_name = !header.is_empty() && header.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid_name || value.get_ref().chars().any(char::is_control) {
            return Err(context.error(
                value.span(),
                &["providers", name, "headers", &header],
                "header names must be visible ASCII without `:`; values must not contain control characters",
            ));
        }
        headers.insert(header, value.into_inner());
    }
    let seconds = |value, key: &str, default| {
        context.positive(value, &["providers", name, key], default).map(Duration::from_secs)
    };
    let connect_timeout_secs = raw.connect_timeout_secs;
    let retries = match raw.retries {
        None => defaults::RETRIES,
        Some(value) if *value.get_ref() <= 10 => value.into_inner(),
        Some(value) => {
            return Err(context.error(value.span(), &["providers", name, "retries"], "must be at most 10"));
        }
    };
    let retry_max_wait_secs = match raw.retry_max_wait_secs {
        None => defaults::RETRY_MAX_WAIT_SECS,
        Some(value) if (1..=3600).contains(value.get_ref()) => value.into_inner(),
        Some(value) => {
            let key = ["providers", name, "retry_max_wait_secs"];
            return Err(context.error(value.span(), &key, "must be between 1 and 3600 seconds"));
        }
    };
    Ok(ProviderConfig {
        name: name.to_string(),
        kind: raw.kind,
        base_url: url,
        api_key: match raw.api_key {
            Some(secret) => Some(context.secret(secret, &["providers", name, "api_key"])?),
            None => None,
        },
        connect_timeout: seconds(connect_timeout_secs, "connect_timeout_secs", CONNECT_SECS)?,
        read_timeout: seconds(raw.read_timeout_secs, "read_timeout_secs", READ_SECS)?,
        cooldown: Duration::from_secs(raw.cooldown_secs.unwrap_or(defaults::COOLDOWN_SECS)),
        retries,
        retry_max_wait: Duration::from_secs(retry_max_wait_secs),
        headers,
        local,
    })
}

/// The `local` settings of a provider; the HTTP keys are refused for `local`, the model keys
/// for the others.
fn local_provider(
    context: &Context,
    name: &str,
    span: std::ops::Range<usize>,
    raw: &raw::RawProvider,
) -> Result<Option<LocalProviderConfig>, ConfigError> {
    // `Some(span)` of a key that is set (the provider's span when the key keeps none).
    let unused = |at: Option<std::ops::Range<usize>>, key: &str, used_by: &str| -> Result<(), ConfigError> {
        let Some(at) = at else { return Ok(()) };
        let message = format!("`{key}` is only used by {used_by} providers");
        Err(context.error(at, &["providers", name, key], message))
    };
    let whole = |present: bool| present.then(|| span.clone());
    if raw.kind != ProviderKind::Local {
        unused(raw.threads.as_ref().map(Spanned::span), "threads", "`local`")?;
        unused(whole(raw.idle_unload_secs.is_some()), "idle_unload_secs", "`local`")?;
        unused(raw.context_length.as_ref().map(Spanned::span), "context_length", "`local`")?;
        return Ok(None);
    }
    let remote = "`anthropic` and `openai`";
    unused(raw.base_url.as_ref().map(Spanned::span), "base_url", remote)?;
    unused(whole(raw.api_key.is_some()), "api_key", remote)?;
    unused(whole(raw.headers.is_some()), "headers", remote)?;
    unused(raw.connect_timeout_secs.as_ref().map(Spanned::span), "connect_timeout_secs", remote)?;
    unused(raw.read_timeout_secs.as_ref().map(Spanned::span), "read_timeout_secs", remote)?;
    unused(raw.retries.as_ref().map(Spanned::span), "retries", remote)?;
    unused(raw.retry_max_wait_secs.as_ref().map(Spanned::span), "retry_max_wait_secs", remote)?;
    let threads = match &raw.threads {
        None => None,
        Some(threads) if *threads.get_ref() >= 1 => Some(*threads.get_ref()),
        Some(threads) => {
            return Err(context.error(threads.span(), &["providers", name, "threads"], "must be at least 1"));
        }
    };
    let context_length = match &raw.context_length {
        None => defaults::LOCAL_CONTEXT_LENGTH,
        Some(length) if *length.get_ref() >= 256 => *length.get_ref(),
        Some(length) => {
            let message = "must be at least 256 tokens";
            return Err(context.error(length.span(), &["providers", name, "context_length"], message));
        }
    };
    Ok(Some(LocalProviderConfig {
        models_dir: context.path(defaults::MODELS_DIR),
        threads,
        idle_unload: Duration::from_secs(raw.idle_unload_secs.unwrap_or(defaults::LOCAL_IDLE_UNLOAD_SECS)),
        context_length,
    }))
}

fn agent(
    context: &Context,
    name: &str,
    raw: Spanned<raw::RawAgent>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<AgentConfig, ConfigError> {
    check_name(context, raw.span(), "agents", name)?;
    let raw = raw.into_inner();
    let model = model_ref(context, &raw.model, &["agents", name, "model"], providers)?;
    let mut fallbacks = Vec::new();
    for (index, fallback) in raw.fallbacks.unwrap_or_default().iter().enumerate() {
        let index = format!("[{index}]");
        fallbacks.push(model_ref(context, fallback, &["agents", name, "fallbacks", &index], providers)?);
    }
    let workspace = match raw.workspace {
        None => context.path(defaults::WORKSPACES_DIR).join(name),
        Some(path) if path.get_ref().trim().is_empty() => {
            return Err(context.error(path.span(), &["agents", name, "workspace"], "must not be empty"));
        }
        Some(path) => context.path(path.get_ref()),
    };
    let key = |path: &[&'static str]| [&["agents", name][..], path].concat();
    let daily_usd = match raw.budget.daily_usd {
        Some(usd) => Some(context.usd(usd, &key(&["budget", "daily_usd"]))?),
        None => None,
    };
    let temperature = match raw.temperature {
        Some(t) if !(0.0..=2.0).contains(t.get_ref()) => {
            let message = "must be between 0 and 2";
            return Err(context.error(t.span(), &key(&["temperature"]), message));
        }
        t => t.map(Spanned::into_inner),
    };
    let (web_fetch, tools, prompt) = (raw.web_fetch, raw.tools, raw.prompt);
    let default_allow = || defaults::TOOLS_ALLOW.map(String::from).to_vec();
    Ok(AgentConfig {
        name: name.to_string(),
        model,
        fallbacks,
        workspace,
        tools: ToolPolicy {
            allow: tools.allow.unwrap_or_else(default_allow),
            deny: tools.deny.unwrap_or_default(),
            ask: tools.ask.unwrap_or_default(),
            write: match tools.write {
                None => None,
                Some(globs) => Some(write_globs(context, globs, &key(&["tools", "write"]))?),
            },
        },
        budget: Budget { daily_tokens: raw.budget.daily_tokens, daily_usd },
        prompt: PromptLimits {
            file_max_chars: prompt.file_max_chars.unwrap_or(defaults::FILE_MAX_CHARS),
            total_max_chars: prompt.total_max_chars.unwrap_or(defaults::TOTAL_MAX_CHARS),
        },
        max_tool_iterations: context.positive(
            raw.max_tool_iterations,
            &key(&["max_tool_iterations"]),
            defaults::MAX_TOOL_ITERATIONS,
        )?,
        max_tokens: context.positive(raw.max_tokens, &key(&["max_tokens"]), defaults::MAX_TOKENS)?,
        temperature,
        web_fetch: WebFetchConfig {
            timeout_secs: context.positive(
                web_fetch.timeout_secs,
                &key(&["web_fetch", "timeout_secs"]),
                defaults::WEB_FETCH_TIMEOUT_SECS,
            )?,
            max_bytes: context.positive(
                web_fetch.max_bytes,
                &key(&["web_fetch", "max_bytes"]),
                defaults::WEB_FETCH_MAX_BYTES,
            )?,
            allow_private: web_fetch.allow_private.unwrap_or(false),
        },
        sandbox: match raw.sandbox.map(Spanned::into_inner) {
            None | Some(raw::SandboxKind::Auto) => crate::Sandbox::Auto,
            Some(raw::SandboxKind::Bwrap) => crate::Sandbox::Bwrap,
            Some(raw::SandboxKind::Builtin) => crate::Sandbox::Builtin,
            Some(raw::SandboxKind::Off) => crate::Sandbox::Off,
        },
        exec: exec(context, raw.exec, &key(&["exec"]))?,
        elevated: elevated(context, raw.elevated, &key(&["elevated"]))?,
    })
}

/// The origins a sender pattern may name (channels add theirs when they exist). `scheduler`
/// is the old spelling of `cron` and still accepted.
const SENDER_ORIGINS: [&str; 5] = ["cli", "api", "cron", "subagent", "scheduler"];

/// `[agents.NAME.elevated]`: known sender origins, absolute binaries, `**` only last.
fn elevated(
    context: &Context,
    raw: raw::RawElevated,
    key: &[&str],
) -> Result<crate::ElevatedConfig, ConfigError> {
    // Key paths below `key`, e.g. `elevated.commands.[0].path`.
    let error = |span: std::ops::Range<usize>, parts: &[&str], message: String| {
        context.error(span, &[key, parts].concat(), message)
    };
    let senders = match raw.senders {
        None => defaults::ELEVATED_SENDERS.map(String::from).to_vec(),
        Some(senders) => senders
            .into_iter()
            .enumerate()
            .map(|(index, sender)| {
                let text = sender.get_ref().trim();
                let origin = text.split(':').next().unwrap_or_default();
                if !SENDER_ORIGINS.contains(&origin)
                    || text.ends_with(':')
                    || text.contains(char::is_whitespace)
                {
                    let message = format!(
                        "`{text}` is not a sender: use {} (optionally `:ID` or `:*`)",
                        SENDER_ORIGINS[..4].join(", ")
                    );
                    return Err(error(sender.span(), &["senders", &format!("[{index}]")], message));
                }
                // Scheduled turns were `scheduler` before they carried their job (`cron:<job>`).
                Ok(match text.strip_prefix("scheduler") {
                    Some("") => "cron:*".to_string(),
                    Some(rest) => format!("cron{rest}"),
                    None => text.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut commands = Vec::new();
    for (index, command) in raw.commands.unwrap_or_default().into_iter().enumerate() {
        let entry = format!("[{index}]");
        let path = PathBuf::from(command.path.get_ref());
        let normal = path.is_absolute()
            && path
                .components()
                .all(|c| !matches!(c, std::path::Component::ParentDir | std::path::Component::CurDir));
        if !normal {
            let message = "must be an absolute path to a binary, without `.` or `..` (e.g. \"/usr/bin/git\")";
            return Err(error(command.path.span(), &["commands", &entry, "path"], message.into()));
        }
        let args: Vec<Spanned<String>> = command.args.unwrap_or_default();
        let last = args.len().saturating_sub(1);
        for (position, arg) in args.iter().enumerate() {
            if arg.get_ref().contains("**") && (position != last || arg.get_ref() != "**") {
                let message = "`**` (any further arguments) may only be the whole last pattern";
                let at = format!("[{position}]");
                return Err(error(arg.span(), &["commands", &entry, "args", &at], message.into()));
            }
        }
        let mut env = Vec::new();
        for (name, secret) in command.env.unwrap_or_default() {
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                let message = format!("`{name}` is not an environment variable name");
                return Err(error(command.path.span(), &["commands", &entry, "env"], message));
            }
            let reference = context.secret(secret, &[key, &["commands", &entry, "env", &name]].concat())?;
            env.push((name, reference));
        }
        let timeout = match command.timeout_seconds {
            Some(value) if !(1..=defaults::EXEC_MAX_TIMEOUT_SECS).contains(value.get_ref()) => {
                let message = format!("must be between 1 and {}", defaults::EXEC_MAX_TIMEOUT_SECS);
                return Err(error(value.span(), &["commands", &entry, "timeout_seconds"], message));
            }
            value => value.map_or(defaults::EXEC_TIMEOUT_SECS, Spanned::into_inner),
        };
        commands.push(crate::HostCommandConfig {
            path,
            args: args.into_iter().map(Spanned::into_inner).collect(),
            env,
            timeout: Duration::from_secs(timeout),
            description: command.description.filter(|d| !d.trim().is_empty()),
        });
    }
    Ok(crate::ElevatedConfig { senders, commands })
}

/// `[agents.NAME.tools] write`: relative globs that stay inside the workspace.
fn write_globs(
    context: &Context,
    globs: Vec<Spanned<String>>,
    key: &[&str],
) -> Result<Vec<String>, ConfigError> {
    globs
        .into_iter()
        .enumerate()
        .map(|(index, glob)| {
            let text = glob.get_ref();
            let escapes = text.starts_with('/') || text.split('/').any(|part| part == "..");
            if text.trim().is_empty() || escapes {
                let index = format!("[{index}]");
                let message =
                    "must be a non-empty glob relative to the workspace, without `..` (e.g. \"docs/**\")";
                return Err(context.error(glob.span(), &[key, &[index.as_str()]].concat(), message));
            }
            Ok(glob.into_inner())
        })
        .collect()
}

/// `[agents.NAME.exec]`: counts at least 1, timeouts within the agent's tool-call cap.
fn exec(context: &Context, raw: raw::RawExec, key: &[&str]) -> Result<crate::ExecConfig, ConfigError> {
    let at = |field: &'static str| [key, &[field]].concat();
    let max_timeout = match raw.max_timeout_seconds {
        Some(value) if !(1..=defaults::EXEC_MAX_TIMEOUT_SECS).contains(value.get_ref()) => {
            let message = format!("must be between 1 and {}", defaults::EXEC_MAX_TIMEOUT_SECS);
            return Err(context.error(value.span(), &at("max_timeout_seconds"), message));
        }
        value => value.map_or(defaults::EXEC_MAX_TIMEOUT_SECS, Spanned::into_inner),
    };
    let timeout = match raw.timeout_seconds {
        Some(value) if !(1..=max_timeout).contains(value.get_ref()) => {
            let message = format!("must be between 1 and max_timeout_seconds ({max_timeout})");
            return Err(context.error(value.span(), &at("timeout_seconds"), message));
        }
        value => value.map_or(defaults::EXEC_TIMEOUT_SECS.min(max_timeout), Spanned::into_inner),
    };
    let mib = 1024 * 1024;
    Ok(crate::ExecConfig {
        timeout: Duration::from_secs(timeout),
        max_timeout: Duration::from_secs(max_timeout),
        max_output_bytes: context.positive(
            raw.max_output_bytes,
            &at("max_output_bytes"),
            defaults::EXEC_MAX_OUTPUT_BYTES,
        )?,
        memory_bytes: context.positive(raw.memory_mb, &at("memory_mb"), defaults::EXEC_MEMORY_MB)? * mib,
        cpu_seconds: context.positive(raw.cpu_seconds, &at("cpu_seconds"), defaults::EXEC_CPU_SECONDS)?,
        processes: context.positive(raw.processes, &at("processes"), defaults::EXEC_PROCESSES)?,
        open_files: context.positive(raw.open_files, &at("open_files"), defaults::EXEC_OPEN_FILES)?,
        file_size_bytes: context.positive(
            raw.file_size_mb,
            &at("file_size_mb"),
            defaults::EXEC_FILE_SIZE_MB,
        )? * mib,
        egress: crate::egress::entries(context, raw.egress, &at("egress"))?,
    })
}

fn price(
    context: &Context,
    key: &str,
    raw: Spanned<raw::RawPrice>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<Price, ConfigError> {
    let model = Spanned::new(raw.span(), key.to_string());
    model_ref(context, &model, &["prices", key], providers)?;
    let raw = raw.into_inner();
    let usd = |value: Option<Spanned<f64>>, field: &str| match value {
        Some(value) => context.usd(value, &["prices", key, field]),
        None => Ok(0.0),
    };
    Ok(Price {
        input_per_mtok: usd(Some(raw.input_per_mtok), "input_per_mtok")?,
        output_per_mtok: usd(Some(raw.output_per_mtok), "output_per_mtok")?,
        cache_read_per_mtok: usd(raw.cache_read_per_mtok, "cache_read_per_mtok")?,
        cache_write_per_mtok: usd(raw.cache_write_per_mtok, "cache_write_per_mtok")?,
    })
}

/// `provider/model` whose provider is configured.
pub(crate) fn model_ref(
    context: &Context,
    text: &Spanned<String>,
    key: &[&str],
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<ModelRef, ConfigError> {
    let Some(model) = ModelRef::parse(text.get_ref()) else {
        let message = format!(
            "`{}` is not of the form `provider/model` (e.g. `anthropic/claude-sonnet-4-5`)",
            text.get_ref()
        );
        return Err(context.error(text.span(), key, message));
    };
    if let Some(provider) = providers.get(&model.provider)
        && provider.kind == ProviderKind::Local
        && (model.model.contains(['/', '\\']) || model.model.starts_with('.'))
    {
        let message = format!(
            "`{}`: a `local` provider's model is a folder name under models/ (e.g. `{}/SmolLM2-135M-Instruct`)",
            text.get_ref(),
            model.provider
        );
        return Err(context.error(text.span(), key, message));
    }
    if !providers.contains_key(&model.provider) {
        let configured = if providers.is_empty() {
            "no providers are configured".to_string()
        } else {
            format!("configured: {}", providers.keys().cloned().collect::<Vec<_>>().join(", "))
        };
        let message = format!("unknown provider `{}` ({configured})", model.provider);
        return Err(context.error(text.span(), key, message));
    }
    Ok(model)
}

/// Agent and provider names: `[a-z0-9][a-z0-9_-]{0,63}`.
fn check_name(
    context: &Context,
    span: std::ops::Range<usize>,
    section: &str,
    name: &str,
) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if first_ok && rest_ok && name.len() <= 64 {
        return Ok(());
    }
    Err(context.error(
        span,
        &[section, name],
        "names must be 1-64 lowercase letters, digits, `_` or `-`, starting with a letter or digit",
    ))
}
