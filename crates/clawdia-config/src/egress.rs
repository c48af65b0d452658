//! `[agents.NAME.exec] egress` and `[mcp.servers.NAME] egress`: the hosts an agent's sandboxed
//! commands, or an MCP server, may reach through the gateway's filtering proxy. Each entry is
//! `HOST:PORT` or `HOST` (ports 443 and 80), where HOST is a DNS name (`api.github.com`), `*.`
//! and a suffix of at least two labels (`*.pypi.org`: any name below it), or an address
//! (`203.0.113.7`, `[2001:db8::1]`; the only way to reach a loopback or private destination).
//! PORT is 1 to 65535.
//!
//! The sandbox parses the same syntax again when it runs a command
//! (`clawdia_sandbox::egress::EgressRule::parse`); this check exists so that a malformed entry
//! is a config error with its line, and a test keeps the two in agreement.

use std::net::{Ipv4Addr, Ipv6Addr};

use toml::Spanned;

use crate::error::ConfigError;
use crate::validate::Context;

/// Validates every entry; returns them as written.
pub(crate) fn entries(
    context: &Context,
    raw: Option<Vec<Spanned<String>>>,
    key: &[&str],
) -> Result<Vec<String>, ConfigError> {
    raw.unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, entry)| match check(entry.get_ref()) {
            Ok(()) => Ok(entry.into_inner()),
            Err(why) => {
                let index = format!("[{index}]");
                let message =
                    format!("{why} (write \"host:port\", \"host\" for 443 and 80, or \"*.example.com\")");
                Err(context.error(entry.span(), &[key, &[index.as_str()]].concat(), message))
            }
        })
        .collect()
}

/// Why `entry` is not a valid egress entry.
pub(crate) fn check(entry: &str) -> Result<(), String> {
    if entry.is_empty() {
        return Err("an empty entry".to_string());
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
        return Err(format!("`{}` contains a space, control or non-ASCII character", entry.escape_default()));
    }
    if entry.contains(['/', '@', '?', '#']) {
        return Err(format!("`{entry}` is a URL, not a host"));
    }
    let (wildcard, rest) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (address, after) = inner.split_once(']').ok_or_else(|| format!("`{entry}`: unclosed `[`"))?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{entry}`: `{address}` is not an IPv6 address"));
        }
        if wildcard {
            return Err(format!("`{entry}`: `*.` cannot precede an address"));
        }
        match after {
            "" => (None, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err(format!("`{entry}`: expected `:PORT` after `]`")),
            },
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(format!("`{entry}`: write an IPv6 address in brackets, e.g. [::1]:443"));
            }
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(rest), None),
        }
    };
    if let Some(port) = port {
        let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || !port.parse::<u16>().is_ok_and(|p| p != 0) {
            return Err(format!("`{entry}`: `{port}` is not a port (1 to 65535)"));
        }
    }
    let Some(host) = host else { return Ok(()) };
    if host.parse::<Ipv4Addr>().is_ok() {
        if wildcard {
            return Err(format!("`{entry}`: `*.` cannot precede an address"));
        }
        return Ok(());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() {
        return Err(format!("`{entry}`: the host is empty"));
    }
    if name.len() > 253 {
        return Err(format!("`{entry}`: the host name is longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("`{entry}`: every dot-separated label needs 1 to 63 characters"));
        }
        if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_')) {
            return Err(format!("`{entry}`: `{bad}` is not allowed in a host name"));
        }
    }
    if wildcard && name.split('.').count() < 2 {
        return Err(format!("`{entry}` is too broad: name at least two labels after `*.`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The config check and the sandbox's parser agree on every entry: a hand-picked corpus of
    //! valid and hostile entries, and arbitrary strings.

    use proptest::prelude::*;

    fn agree(entry: &str) {
        let config = super::check(entry);
        let sandbox = clawdia_sandbox::egress::EgressRule::parse(entry);
        assert_eq!(config.is_ok(), sandbox.is_ok(), "`{entry}`: config {config:?}, sandbox {sandbox:?}");
    }

    #[test]
    fn the_config_check_agrees_with_the_sandbox_parser() {
        let valid = [
            "api.github.com:443",
            "API.GitHub.com.",
            "*.pypi.org",
            "*.files.pypi.org:8443",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[2001:db8::1]",
            "host_name-1.internal:1",
            "x.y:65535",
        ];
        for entry in valid {
            assert!(super::check(entry).is_ok(), "{entry}: {:?}", super::check(entry));
            agree(entry);
        }
        let invalid = [
            "",
            " ",
            "example.com:",
            "example.com:0",
            "example.com:65536",
            "example.com:+80",
            "example.com:*",
            "*",
            "*.com",
            "*.*.example.com",
            "foo.*.example.com",
            "*.10.0.0.1",
            "*.[::1]",
            "https://example.com",
            "user@example.com:443",
            "example.com/path",
            "::1",
            "[::1",
            "[::1]x",
            "[not-v6]:80",
            "exa mple.com",
            "exämple.com",
            "a..b",
            ".example.com",
            "example.com.:443x",
            "[fe80::1%eth0]:80",
            "ex\tample.com",
        ];
        for entry in invalid {
            assert!(super::check(entry).is_err(), "`{entry}` passed");
            agree(entry);
        }
        agree(&format!("{}.com", ["a"; 130].join(".")));
        agree(&format!("{}.com", "a".repeat(64)));
    }

    proptest! {
        #[test]
        fn the_two_parsers_agree_on_arbitrary_entries(entry in "[a-z0-9.*:\\[\\]_-]{0,24}|\\PC{0,24}") {
            agree(&entry);
        }
    }
}
