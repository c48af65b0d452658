//! The egress allowlist, proved from inside the sandbox for every mechanism this machine has:
//! curl and Python reach an allowlisted server on the host through the proxy (plain HTTP and a
//! `CONNECT` tunnel); a host, a port or a name not on the list is refused with a `403` and the
//! refusal is reported in the run's output; a name that resolves to a private address is
//! refused unless the address itself is listed; without the proxy there is still no route;
//! the command holds no socket of the proxy's; and the proxy with every connection through it
//! is gone when the run ends. IPv6 literals work in both request forms. A long-lived stdio
//! program (an MCP server) gets the same proxy for as long as it lives, and not a moment longer.
//!
//! The host servers listen on 127.0.0.1, so the commands clear `NO_PROXY` (which names the
//! sandbox's own loopback) to send those requests through the proxy.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawdia_sandbox::{Mechanism, Network, Outcome, Policy, SandboxError, run, spawn_stdio};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

use super::{HELPER, Home, mechanisms, skip_or_fail};

const BODY: &str = "hello from the host";

/// A server on the host's loopback answering every request with `BODY`; returns its port and
/// the request lines it received.
async fn upstream() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                log.lock().unwrap().push(text.lines().next().unwrap_or_default().to_string());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    (port, seen)
}

fn curl_missing() -> bool {
    if std::path::Path::new("/usr/bin/curl").exists() {
        return false;
    }
    skip_or_fail("the egress tests", "curl is not installed at /usr/bin/curl (apt install curl)");
    true
}

fn allowing(home: &Home, entries: &[String]) -> Policy {
    let mut policy = home.policy();
    policy.network = Network::Allow(entries.to_vec());
    policy
}

async fn sh(mechanism: &Mechanism, policy: &Policy, command: &str) -> Outcome {
    match run(mechanism, policy, command, |_| {}).await {
        Ok(outcome) => outcome,
        Err(error) => panic!("{}: `{command}`: {error}", mechanism.name()),
    }
}

#[tokio::test]
async fn egress_reaches_an_allowlisted_server_with_curl_and_python_through_the_proxy() {
    if curl_missing() {
        return;
    }
    for mechanism in mechanisms().await {
        let (port, seen) = upstream().await;
        let home = Home::new();
        let policy = allowing(&home, &[format!("127.0.0.1:{port}")]);
        let command = format!(
            "export NO_PROXY= no_proxy=; echo \"proxy=$HTTPS_PROXY\"; \
             curl -sS http://127.0.0.1:{port}/plain; echo; \
             curl -sS --proxytunnel http://127.0.0.1:{port}/tunnel; echo; \
             python3 -c 'import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:{port}/python\").read().decode())'"
        );
        let outcome = sh(&mechanism, &policy, &command).await;
        let name = mechanism.name();
        assert_eq!(
            outcome.output,
            format!("proxy=http://127.0.0.1:3128\n{BODY}\n{BODY}\n{BODY}\n"),
            "{name}: {outcome:?}"
        );
        assert_eq!(outcome.exit_code, Some(0), "{name}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            ["GET /plain HTTP/1.1", "GET /tunnel HTTP/1.1", "GET /python HTTP/1.1"],
            "{name}: plain requests arrive in origin form, the tunnel carries curl's own request"
        );
    }
}

#[tokio::test]
async fn egress_refuses_hosts_ports_and_names_not_on_the_allowlist_and_reports_it() {
    if curl_missing() {
        return;
    }
    for mechanism in mechanisms().await {
        let (port, _) = upstream().await;
        let (other, other_seen) = upstream().await;
        let home = Home::new();
        let policy = allowing(&home, &[format!("127.0.0.1:{port}"), format!("localhost:{port}")]);
        // Sends argv[1] (with `\r\n` escapes) to the proxy and prints the status line.
        let raw = "-c 'import socket,sys; s=socket.create_connection((\"127.0.0.1\", 3128)); \
                   s.sendall(sys.argv[1].encode().decode(\"unicode_escape\").encode()); \
                   print(s.makefile(\"rb\").readline().decode().strip())'";
        let command = format!(
            "export NO_PROXY= no_proxy=; \
             curl -sS -o /dev/null -w 'plain %{{http_code}}\\n' http://example.com/; \
             curl -sS --proxytunnel -o /dev/null https://example.com/ 2>&1 | grep -o 'response 403'; \
             curl -sS http://127.0.0.1:{other}/; \
             curl -sS --proxytunnel http://127.0.0.1:{other}/ 2>&1 | grep -o 'response 403'; \
             curl -sS http://localhost:{port}/; \
             python3 {raw} 'CONNECT 127.0.0.1:{port}@example.com:443 HTTP/1.1\\r\\n\\r\\n'; \
             python3 {raw} \"GET http://127.0.0.1:{port}/ HTTP/1.1\\r\\nX: $(head -c 20000 /dev/zero | tr '\\0' a)\\r\\n\\r\\n\"; \
             echo done"
        );
        let outcome = sh(&mechanism, &policy, &command).await;
        let name = mechanism.name();
        let out = &outcome.output;
        assert!(out.contains("plain 403\n"), "{name}: a plain request to another host: {out}");
        assert_eq!(out.matches("response 403").count(), 2, "{name}: CONNECT to another host and port: {out}");
        assert!(
            out.contains(&format!(
                "clawdia egress proxy: 127.0.0.1:{other} is not on this sandbox's egress allowlist (allowed: \
                 127.0.0.1:{port}, localhost:{port})"
            )),
            "{name}: {out}"
        );
        assert!(
            out.contains("clawdia egress proxy: localhost resolves only to non-public addresses (127.0.0.1"),
            "{name}: a listed name resolving to loopback is refused: {out}"
        );
        assert!(out.contains("HTTP/1.1 400 Bad Request\n"), "{name}: user info in a CONNECT target: {out}");
        assert!(out.contains("HTTP/1.1 431 Request Header Fields Too Large\n"), "{name}: a huge head: {out}");
        assert!(out.contains("done\n[egress proxy refused "), "{name}: the run reports refusals: {out}");
        assert!(out.contains("CONNECT example.com:443: example.com:443 is not on"), "{name}: {out}");
        assert!(other_seen.lock().unwrap().is_empty(), "{name}: the unlisted port was reached");
    }
}

#[tokio::test]
async fn egress_without_the_proxy_there_is_still_no_route_and_no_proxy_socket_inside() {
    for mechanism in mechanisms().await {
        let (port, seen) = upstream().await;
        let home = Home::new();
        let policy = allowing(&home, &[format!("127.0.0.1:{port}")]);
        let command = format!(
            "if bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null; then echo connected; else echo refused; fi; \
             cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; \
             ls -l /proc/self/fd/ | grep -c socket; \
             if bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128' 2>/dev/null; then echo proxy-listening; fi"
        );
        let outcome = sh(&mechanism, &policy, &command).await;
        let name = mechanism.name();
        assert_eq!(outcome.output, "refused\nlo\n0\nproxy-listening\n", "{name}");
        assert!(seen.lock().unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn egress_reaches_an_ipv6_literal_entry_in_both_request_forms() {
    if curl_missing() {
        return;
    }
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        // Not something a setup step can install (a container may have IPv6 off): a skip even
        // under CI.
        println!("skipped the IPv6 egress test: this machine has no IPv6 loopback");
        return;
    };
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nv6\n";
                let _ = stream.write_all(reply).await;
            });
        }
    });
    for mechanism in mechanisms().await {
        let home = Home::new();
        let policy = allowing(&home, &[format!("[::1]:{port}")]);
        let command = format!(
            "export NO_PROXY= no_proxy=; curl -sSg http://[::1]:{port}/; curl -sSg --proxytunnel http://[::1]:{port}/; \
             curl -sSg http://[::1]:{other}/",
            other = port.wrapping_add(1).max(1)
        );
        let outcome = sh(&mechanism, &policy, &command).await;
        let name = mechanism.name();
        assert!(outcome.output.starts_with("v6\nv6\n"), "{name}: {}", outcome.output);
        assert!(
            outcome.output.contains(&format!(
                "[::1]:{} is not on this sandbox's egress allowlist",
                port.wrapping_add(1).max(1)
            )),
            "{name}: {}",
            outcome.output
        );
    }
}

/// The test process's socket inodes.
fn sockets() -> BTreeSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("socket:"))
        .collect()
}

#[tokio::test]
async fn egress_the_proxy_and_its_tunnels_are_gone_after_the_timeout() {
    if curl_missing() {
        return;
    }
    for mechanism in mechanisms().await {
        // A server that holds every connection open and reports when the other side closes.
        let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = holder.local_addr().unwrap().port();
        let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
        let serving = tokio::spawn(async move {
            while let Ok((mut stream, _)) = holder.accept().await {
                let closed_tx = closed_tx.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while stream.read(&mut buffer).await.is_ok_and(|n| n > 0) {}
                    let _ = closed_tx.send(Instant::now());
                });
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = sockets();
        let home = Home::new();
        let mut policy = allowing(&home, &[format!("127.0.0.1:{port}")]);
        policy.timeout = Duration::from_secs(2);
        let command =
            format!("NO_PROXY= no_proxy= curl -sS --proxytunnel http://127.0.0.1:{port}/ & sleep 30");
        let outcome = sh(&mechanism, &policy, &command).await;
        let name = mechanism.name();
        assert!(outcome.timed_out, "{name}: {outcome:?}");
        let ended = Instant::now();
        let closed_at = tokio::time::timeout(Duration::from_secs(5), closed.recv())
            .await
            .unwrap_or_else(|_| panic!("{name}: the tunnel outlived the run: {outcome:?}"))
            .unwrap();
        assert!(closed_at.duration_since(ended) < Duration::from_secs(5), "{name}");
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let leftover: Vec<String> = sockets().difference(&before).cloned().collect();
            if leftover.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{name}: sockets left after the run: {leftover:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        serving.abort();
    }
}

#[tokio::test]
async fn egress_serves_a_stdio_program_while_it_lives() {
    if curl_missing() {
        return;
    }
    for mechanism in mechanisms().await {
        let name = mechanism.name();
        let (port, seen) = upstream().await;
        let refused_port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let home = Home::new();
        let policy = allowing(&home, &[format!("127.0.0.1:{port}")]);
        // Each line read is a port to fetch from; the answer is the body (or curl's error) on one line.
        let script = "export NO_PROXY= no_proxy=; while read -r port; do \
                      echo \"$(curl -sS --max-time 5 http://127.0.0.1:$port/stdio 2>&1 | head -c 300 | tr '\\n' ' ')\"; done";
        let args = vec!["-c".to_string(), script.to_string()];
        let mut child = spawn_stdio(&mechanism, &policy, "/bin/sh", &args)
            .await
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        let (mut stdin, stdout) = child.take_pipes().unwrap();
        let mut stdout = BufReader::new(stdout);
        let mut fetch = async |port: u16| {
            stdin.write_all(format!("{port}\n").as_bytes()).await.unwrap();
            let mut line = String::new();
            tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line))
                .await
                .unwrap()
                .unwrap();
            line.trim_end().to_string()
        };
        assert_eq!(fetch(port).await, BODY, "{name}");
        // Still served on a later request: the proxy lives as long as the program.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(fetch(port).await, BODY, "{name}");
        let refused = fetch(refused_port).await;
        assert!(
            refused.contains(&format!("127.0.0.1:{refused_port} is not on this sandbox's egress allowlist")),
            "{name}: a port not on the list is refused: {refused}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2, "{name}: only the allowlisted requests arrived");
        let refusals = child.egress_refusals().unwrap_or_default();
        assert!(
            refusals.starts_with("egress proxy refused 1 request(s): ")
                && refusals.contains(&format!("127.0.0.1:{refused_port}")),
            "{name}: {refusals}"
        );
        child.kill(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_malformed_egress_entry_is_refused_before_anything_runs() {
    super::setup();
    let home = Home::new();
    let marker = home.workspace().join("ran");
    for entry in ["example.com:0", "*.com", "https://example.com", "::1:443"] {
        let policy = allowing(&home, &[entry.to_string()]);
        let command = format!("touch {}", marker.display());
        let error =
            run(&Mechanism::Builtin { helper: HELPER.into() }, &policy, &command, |_| {}).await.unwrap_err();
        assert!(matches!(error, SandboxError::InvalidPolicy(_)), "{entry}: {error}");
        assert!(error.to_string().contains(&format!("egress entry `{entry}`")), "{error}");
        assert!(!marker.exists(), "{entry}: the command ran");
    }
}
