//! Unit tests of the egress allowlist and the proxy's request parser: entry syntax, matching
//! (exact, wildcard, default ports, literals), non-public addresses, and hostile request heads
//! (huge heads, bad ports, IPv6 literals, user info, smuggling shapes), plus property tests
//! that neither parser panics and that a wildcard never matches outside its suffix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::proxy::{MAX_HEAD, parse_head, response};
use super::{Allowlist, EgressRule, Host, HostPattern, environment, is_public};

fn rule(entry: &str) -> EgressRule {
    EgressRule::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"))
}

fn name(text: &str) -> Host {
    Host::Name(text.to_string())
}

#[test]
fn entries_parse_into_patterns_and_ports() {
    assert_eq!(
        rule("api.github.com:443"),
        EgressRule { host: HostPattern::Name("api.github.com".into()), port: Some(443) }
    );
    assert_eq!(
        rule("API.GitHub.com."),
        EgressRule { host: HostPattern::Name("api.github.com".into()), port: None }
    );
    assert_eq!(rule("*.pypi.org"), EgressRule { host: HostPattern::Below("pypi.org".into()), port: None });
    assert_eq!(rule("127.0.0.1:8080").host, HostPattern::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert_eq!(rule("[::1]:8080").host, HostPattern::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(rule("[2001:db8::1]").port, None);
    for entry in ["api.github.com:443", "*.pypi.org", "127.0.0.1:8080", "[::1]:8080", "example.com"] {
        assert_eq!(rule(entry).to_string(), entry, "display round-trips");
    }
}

#[test]
fn malformed_entries_are_refused_with_a_reason() {
    let cases = [
        ("", "empty"),
        ("example.com:", "not a port"),
        ("example.com:0", "not a port"),
        ("example.com:65536", "not a port"),
        ("example.com:+80", "not a port"),
        ("example.com:80x", "not a port"),
        ("example.com:*", "not a port"),
        ("*", "not allowed in a host name"),
        ("*.com", "too broad"),
        ("*.*.example.com", "not allowed in a host name"),
        ("foo.*.example.com", "not allowed in a host name"),
        ("*.10.0.0.1", "cannot precede"),
        ("*.[::1]", "cannot precede"),
        ("https://example.com", "not a URL"),
        ("user@example.com:443", "not a URL"),
        ("example.com/path", "not a URL"),
        ("::1", "brackets"),
        ("[::1", "unclosed"),
        ("[::1]x", "expected `:PORT`"),
        ("[not-v6]:80", "not an IPv6 address"),
        ("exa mple.com", "not allowed"),
        ("exämple.com", "not allowed"),
        ("a..b", "label"),
        (".example.com", "label"),
    ];
    for (entry, expected) in cases {
        match EgressRule::parse(entry) {
            Ok(parsed) => panic!("`{entry}` parsed as {parsed:?}"),
            Err(error) => assert!(error.contains(expected), "`{entry}`: {error} (expected `{expected}`)"),
        }
    }
    let long = format!("{}.com", ["a"; 130].join("."));
    assert!(EgressRule::parse(&long).unwrap_err().contains("longer than"));
    assert!(EgressRule::parse(&format!("{}.com", "a".repeat(64))).unwrap_err().contains("label"));
}

#[test]
fn matching_is_exact_for_names_ports_and_addresses() {
    let list = Allowlist::parse(&["api.github.com:443".into(), "*.pypi.org".into(), "127.0.0.1:8080".into()])
        .unwrap();
    assert!(list.permits(&name("api.github.com"), 443).is_some());
    assert!(list.permits(&name("api.github.com"), 80).is_none(), "an explicit port is the only port");
    assert!(list.permits(&name("github.com"), 443).is_none());
    assert!(list.permits(&name("evil-api.github.com"), 443).is_none());
    assert!(list.permits(&name("api.github.com.evil.com"), 443).is_none());
    assert!(list.permits(&name("files.pypi.org"), 443).is_some());
    assert!(list.permits(&name("a.b.pypi.org"), 80).is_some(), "no port: 443 and 80");
    assert!(list.permits(&name("files.pypi.org"), 8443).is_none());
    assert!(list.permits(&name("pypi.org"), 443).is_none(), "a wildcard does not cover its suffix");
    assert!(list.permits(&name("evilpypi.org"), 443).is_none());
    assert!(list.permits(&Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), 8080).is_some());
    assert!(list.permits(&Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), 8081).is_none());
    assert!(list.permits(&name("localhost"), 8080).is_none(), "an address entry does not cover names");
    assert!(list.permits(&Host::Ip("::ffff:127.0.0.1".parse().unwrap()), 8080).is_none());
    assert!(Allowlist::default().permits(&name("example.com"), 443).is_none());
    assert!(list.permits(&name("api.github.com"), 443).is_some_and(|r| !r.names_an_address()));
    assert!(
        list.permits(&Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)), 8080).is_some_and(|r| r.names_an_address())
    );
}

#[test]
fn non_public_addresses_are_recognised() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "192.0.0.8",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",
        "2002:a00:1::",
        "::127.0.0.1",
    ] {
        assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
    }
    for ip in ["1.1.1.1", "140.82.112.3", "2606:4700:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101"] {
        assert!(is_public(ip.parse().unwrap()), "{ip} is public");
    }
}

fn head(text: &str) -> Result<super::proxy::Request, String> {
    parse_head(text.as_bytes())
}

#[test]
fn connect_and_absolute_form_requests_parse() {
    let connect = head("CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443").unwrap();
    assert_eq!(
        (connect.host.clone(), connect.port, connect.path.clone()),
        (name("api.github.com"), 443, None)
    );
    assert_eq!(connect.describe(), "CONNECT api.github.com:443");
    let v6 = head("CONNECT [2001:db8::1]:8443 HTTP/1.1").unwrap();
    assert_eq!((v6.host, v6.port), (Host::Ip("2001:db8::1".parse().unwrap()), 8443));
    let get = head("GET http://Example.COM/a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*").unwrap();
    assert_eq!(
        (get.host.clone(), get.port, get.path.as_deref()),
        (name("example.com"), 80, Some("/a/b?c=d"))
    );
    let bare = head("GET http://example.com:8080 HTTP/1.0").unwrap();
    assert_eq!((bare.port, bare.path.as_deref()), (8080, Some("/")));
    assert_eq!(head("GET http://example.com?q HTTP/1.1").unwrap().path.as_deref(), Some("/?q"));
}

#[test]
fn the_forwarded_head_is_origin_form_with_the_targets_host_and_connection_close() {
    let request = head(
        "POST http://example.com:8080/x HTTP/1.1\r\nHost: evil.com\r\nProxy-Authorization: Basic x\r\n\
         Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\nContent-Length: 3",
    )
    .unwrap();
    assert_eq!(
        request.forward_head(),
        "POST /x HTTP/1.1\r\nHost: example.com:8080\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn hostile_request_heads_are_refused() {
    let cases = [
        ("CONNECT api.github.com HTTP/1.1", "HOST:PORT"),
        ("CONNECT api.github.com:0 HTTP/1.1", "not a port"),
        ("CONNECT api.github.com:99999 HTTP/1.1", "not a port"),
        ("CONNECT api.github.com:-1 HTTP/1.1", "not a port"),
        ("CONNECT api.github.com:443@evil.com:443 HTTP/1.1", "user info"),
        ("GET http://api.github.com:443@evil.com/ HTTP/1.1", "user info"),
        ("GET http://user:pw@api.github.com/ HTTP/1.1", "user info"),
        ("CONNECT ::1:443 HTTP/1.1", "brackets"),
        ("CONNECT [::1:443 HTTP/1.1", "unclosed"),
        ("CONNECT [fe80::1%25eth0]:443 HTTP/1.1", "not an IPv6 address"),
        ("GET /relative HTTP/1.1", "absolute"),
        ("GET https://example.com/ HTTP/1.1", "use CONNECT"),
        ("GET ftp://example.com/ HTTP/1.1", "not proxied"),
        ("GET http://exa%6dple.com/ HTTP/1.1", "not allowed in a host name"),
        ("GET http://example.com/#frag HTTP/1.1", "malformed request target"),
        ("GET http://example.com\\@evil.com/ HTTP/1.1", "malformed request target"),
        ("GET  http://example.com/ HTTP/1.1", "request line"),
        ("GET http://example.com/ HTTP/2", "HTTP/1.0"),
        ("get http://example.com/ HTTP/1.1", "method"),
        ("GET http://example.com/ HTTP/1.1\r\nHost : x", "header name"),
        ("GET http://example.com/ HTTP/1.1\r\n folded: x", "folded"),
        ("GET http://example.com/ HTTP/1.1\r\nNoColon", "without `:`"),
        ("GET http://example.com/ HTTP/1.1\nHost: x", "bare CR"),
        ("GET http://example.com/ HTTP/1.1\r\nX: a\rb", "bare CR"),
        ("GET http://ex\u{e4}mple.com/ HTTP/1.1", "non-ASCII"),
        ("CONNECT :443 HTTP/1.1", "empty host"),
        ("", "request line"),
    ];
    for (text, expected) in cases {
        match head(text) {
            Ok(request) => panic!("{text:?} parsed as {request:?}"),
            Err(error) => assert!(error.contains(expected), "{text:?}: {error} (expected `{expected}`)"),
        }
    }
    let many = format!("GET http://example.com/ HTTP/1.1{}", "\r\nX: y".repeat(101));
    assert!(head(&many).unwrap_err().contains("more than 100"));
    let huge = format!("GET http://example.com/{} HTTP/1.1", "a".repeat(MAX_HEAD));
    assert!(head(&huge).unwrap_err().contains("over"));
}

#[test]
fn the_command_is_pointed_at_the_proxy_and_loopback_stays_direct() {
    let env = environment();
    let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    for key in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        assert_eq!(get(key), Some("http://127.0.0.1:3128"), "{key}");
    }
    assert_eq!(get("NO_PROXY"), Some("localhost,127.0.0.1,::1"));
    assert_eq!(get("no_proxy"), Some("localhost,127.0.0.1,::1"));
    assert_eq!(get("NODE_USE_ENV_PROXY"), Some("1"));
}

#[test]
fn refusals_are_complete_http_responses() {
    let text = response(403, "evil.com:443 is not on this sandbox's egress allowlist");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    assert!(head.contains(&format!("Content-Length: {}", body.len())));
    assert_eq!(body, "clawdia egress proxy: evil.com:443 is not on this sandbox's egress allowlist\n");
}

proptest! {
    #[test]
    fn parsers_never_panic(entry in "\\PC{0,80}", bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = EgressRule::parse(&entry);
        let _ = parse_head(&bytes);
        let _ = parse_head(format!("CONNECT {entry} HTTP/1.1").as_bytes());
        let _ = parse_head(format!("GET http://{entry}/ HTTP/1.1").as_bytes());
    }

    #[test]
    fn a_wildcard_matches_only_names_strictly_below_its_suffix(
        suffix in "[a-z0-9]{1,8}\\.[a-z]{2,6}",
        candidate in "[a-z0-9.-]{1,30}",
        port in 1u16..,
    ) {
        let rule = EgressRule::parse(&format!("*.{suffix}:{port}")).unwrap();
        let Ok(Host::Name(host)) = Host::parse(&candidate) else { return Ok(()) };
        let expected = host.ends_with(&format!(".{suffix}"));
        prop_assert_eq!(rule.matches(&Host::Name(host.clone()), port), expected);
        prop_assert!(!rule.matches(&Host::Name(host), port.wrapping_add(1).max(1)) || port == u16::MAX);
    }

    #[test]
    fn a_parsed_connect_target_is_what_the_allowlist_sees(
        host in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){1,3}",
        port in 1u16..,
    ) {
        let request = parse_head(format!("CONNECT {host}:{port} HTTP/1.1").as_bytes()).unwrap();
        prop_assert_eq!(request.host, Host::Name(host.clone()));
        prop_assert_eq!(request.port, port);
        let allowed = Allowlist::parse(&[format!("{host}:{port}")]).unwrap();
        prop_assert!(allowed.permits(&Host::Name(host), port).is_some());
    }
}
