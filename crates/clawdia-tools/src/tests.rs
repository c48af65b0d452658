//! Tests of the built-in tools against real files in a temporary workspace and a real HTTP
//! server on loopback.

use std::time::Duration;

use clawdia_core::{ToolContext, ToolError};
use serde_json::json;

use super::*;

fn context(workspace: &std::path::Path) -> ToolContext {
    ToolContext::new("main", "s-test", workspace, clawdia_core::TurnOrigin::Cli)
}

fn tool(name: &str) -> Arc<dyn Tool> {
    fs_tools().into_iter().find(|t| t.spec().name == name).expect("tool exists")
}

async fn call(ws: &std::path::Path, name: &str, args: serde_json::Value) -> Result<String, ToolError> {
    tool(name).call(&context(ws), args).await
}

#[tokio::test]
async fn write_read_edit_list_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    call(ws, "write", json!({"path": "notes/a.txt", "content": "alpha\nbeta\n"})).await.unwrap();
    assert_eq!(call(ws, "read", json!({"path": "notes/a.txt"})).await.unwrap(), "alpha\nbeta\n");
    assert_eq!(call(ws, "read", json!({"path": "notes/a.txt", "offset": 2})).await.unwrap(), "beta");
    call(ws, "edit", json!({"path": "notes/a.txt", "old": "beta", "new": "gamma"})).await.unwrap();
    assert_eq!(std::fs::read_to_string(ws.join("notes/a.txt")).unwrap(), "alpha\ngamma\n");
    let listing = call(ws, "list", json!({"path": "."})).await.unwrap();
    assert_eq!(listing, "notes/");
    let listing = call(ws, "list", json!({"path": "notes"})).await.unwrap();
    assert_eq!(listing, "a.txt (12 bytes)");
    // No temp files are left behind by atomic writes.
    assert_eq!(std::fs::read_dir(ws.join("notes")).unwrap().count(), 1);
}

#[tokio::test]
async fn edit_requires_exactly_one_occurrence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "x x").unwrap();
    let error = call(dir.path(), "edit", json!({"path": "f.txt", "old": "x", "new": "y"})).await.unwrap_err();
    assert!(error.to_string().contains("occurs 2 times"), "{error}");
    let error = call(dir.path(), "edit", json!({"path": "f.txt", "old": "z", "new": "y"})).await.unwrap_err();
    assert!(error.to_string().contains("does not occur"), "{error}");
    assert_eq!(std::fs::read_to_string(dir.path().join("f.txt")).unwrap(), "x x");
}

#[tokio::test]
async fn escapes_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let ws = outer.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(outer.path().join("secret.txt"), "top secret").unwrap();
    std::os::unix::fs::symlink(outer.path(), ws.join("link")).unwrap();
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), ws.join("secret-link")).unwrap();
    let cases = [
        ("read", json!({"path": "../secret.txt"})),
        ("read", json!({"path": outer.path().join("secret.txt").to_string_lossy()})),
        ("read", json!({"path": "link/secret.txt"})),
        ("read", json!({"path": "secret-link"})),
        ("write", json!({"path": "link/new.txt", "content": "x"})),
        ("write", json!({"path": "secret-link", "content": "overwritten"})),
        ("write", json!({"path": "sub/../../escape.txt", "content": "x"})),
        ("list", json!({"path": "link"})),
        ("grep", json!({"pattern": "secret", "path": "link"})),
        ("edit", json!({"path": "secret-link", "old": "top", "new": "no"})),
    ];
    for (name, args) in cases {
        let result = call(&ws, name, args.clone()).await;
        assert!(matches!(result, Err(ToolError::PathEscape(_))), "{name} {args}: {result:?}");
    }
    assert_eq!(std::fs::read_to_string(outer.path().join("secret.txt")).unwrap(), "top secret");
    assert!(!outer.path().join("escape.txt").exists());
    assert!(!outer.path().join("new.txt").exists());
}

#[tokio::test]
async fn grep_finds_lines_and_skips_links_and_binaries() {
    let outer = tempfile::tempdir().unwrap();
    let ws = outer.path().join("ws");
    std::fs::create_dir_all(ws.join("docs")).unwrap();
    std::fs::write(ws.join("docs/a.md"), "one\nneedle here\nthree").unwrap();
    std::fs::write(ws.join("bin.dat"), b"needle\0binary").unwrap();
    std::fs::write(outer.path().join("outside.txt"), "needle outside").unwrap();
    std::os::unix::fs::symlink(outer.path(), ws.join("link")).unwrap();
    let out = call(&ws, "grep", json!({"pattern": "need+le"})).await.unwrap();
    assert_eq!(out, "docs/a.md:2: needle here");
    let error = call(&ws, "grep", json!({"pattern": "("})).await.unwrap_err();
    assert!(matches!(error, ToolError::InvalidArguments(_)));
}

#[tokio::test]
async fn read_refuses_binary_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b"), b"\0\x01").unwrap();
    assert!(call(dir.path(), "read", json!({"path": "b"})).await.unwrap_err().to_string().contains("binary"));
    assert!(matches!(call(dir.path(), "read", json!({"path": "nope"})).await, Err(ToolError::NotFound(_))));
    assert!(matches!(call(dir.path(), "read", json!({})).await, Err(ToolError::InvalidArguments(_))));
}

async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn limits(allow_private: bool, max_bytes: usize) -> WebFetchLimits {
    WebFetchLimits { timeout: Duration::from_secs(2), max_bytes, allow_private }
}

#[tokio::test]
async fn web_fetch_refuses_private_targets_by_default() {
    let addr = serve(axum::Router::new().route("/", axum::routing::get(|| async { "hello" }))).await;
    let dir = tempfile::tempdir().unwrap();
    let fetch = web_fetch(limits(false, 1024));
    for url in [
        format!("http://{addr}/"),
        format!("http://localhost:{}/", addr.port()),
        "http://[::1]:9/".to_string(),
        "http://10.0.0.1/".to_string(),
        "file:///etc/passwd".to_string(),
    ] {
        let result = fetch.call(&context(dir.path()), json!({"url": url})).await;
        assert!(matches!(result, Err(ToolError::Refused(_))), "{url}: {result:?}");
    }
}

#[tokio::test]
async fn web_fetch_reads_text_with_caps_and_checks_redirects() {
    use axum::response::{Html, Redirect};
    let big = "x".repeat(5000);
    let router = axum::Router::new()
        .route(
            "/page",
            axum::routing::get(|| async {
                Html("<html><script>evil()</script><p>Hello &amp; welcome</p></html>")
            }),
        )
        .route("/big", axum::routing::get(move || async move { big }))
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "late"
            }),
        )
        .route("/hop", axum::routing::get(|| async { Redirect::temporary("/page") }));
    let addr = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let fetch = web_fetch(limits(true, 1000));
    let ctx = context(dir.path());
    let page = fetch.call(&ctx, json!({"url": format!("http://{addr}/page")})).await.unwrap();
    assert!(page.starts_with("200 "), "{page}");
    assert!(page.ends_with("Hello & welcome"), "{page}");
    assert!(!page.contains("evil"));
    let hop = fetch.call(&ctx, json!({"url": format!("http://{addr}/hop")})).await.unwrap();
    assert!(hop.ends_with("Hello & welcome"), "{hop}");
    let big = fetch.call(&ctx, json!({"url": format!("http://{addr}/big")})).await.unwrap();
    assert!(big.ends_with("[truncated at 1000 bytes]"), "{}", &big[big.len() - 40..]);
    let quick = web_fetch(WebFetchLimits {
        timeout: Duration::from_millis(300),
        max_bytes: 100,
        allow_private: true,
    });
    let slow = quick.call(&ctx, json!({"url": format!("http://{addr}/slow")})).await;
    assert!(matches!(slow, Err(ToolError::Timeout(_))), "{slow:?}");
}

#[test]
fn public_address_classification() {
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
    ] {
        assert!(!web::is_public(ip.parse().unwrap()), "{ip} should not be public");
    }
    for ip in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
        assert!(web::is_public(ip.parse().unwrap()), "{ip} should be public");
    }
}

#[test]
fn write_globs_match_within_and_across_segments() {
    use crate::globs::matches;
    for (pattern, path, expected) in [
        ("docs/**", "docs/a.md", true),
        ("docs/**", "docs/deep/er/a.md", true),
        ("docs/", "docs/deep/a.md", true),
        ("docs/**", "infra/main.tf", false),
        ("docs/**", "docs", true),
        ("*.md", "README.md", true),
        ("*.md", "docs/a.md", false),
        ("**/*.md", "docs/a.md", true),
        ("**/*.md", "a.md", true),
        ("src/?.rs", "src/a.rs", true),
        ("src/?.rs", "src/ab.rs", false),
        ("README.md", "README.md", true),
        ("README.md", "README.mdx", false),
        ("", "anything", false),
    ] {
        assert_eq!(matches(pattern, path), expected, "{pattern} vs {path}");
    }
}

#[tokio::test]
async fn write_globs_confine_write_and_edit_and_are_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    std::fs::create_dir_all(ws.join("infra")).unwrap();
    std::fs::write(ws.join("infra/main.tf"), "resource {}\n").unwrap();
    std::fs::create_dir_all(ws.join("docs")).unwrap();
    std::os::unix::fs::symlink(ws.join("infra"), ws.join("docs/infra-link")).unwrap();
    let tools = fs_tools_writing(Some(vec!["docs/**".into(), "*.md".into()]));
    let tool = |name: &str| tools.iter().find(|t| t.spec().name == name).unwrap().clone();
    let context = context(ws);
    tool("write").call(&context, json!({"path": "docs/guide.md", "content": "hi"})).await.unwrap();
    tool("write").call(&context, json!({"path": "NOTES.md", "content": "hi"})).await.unwrap();
    for (name, arguments) in [
        ("write", json!({"path": "infra/main.tf", "content": ""})),
        ("edit", json!({"path": "infra/main.tf", "old": "resource", "new": "gone"})),
        ("write", json!({"path": "docs/infra-link/main.tf", "content": ""})),
    ] {
        let error = tool(name).call(&context, arguments.clone()).await.unwrap_err();
        assert!(matches!(error, ToolError::Refused(_)), "{arguments}: {error}");
        assert!(error.is_security_event(), "refusals are audited");
        assert!(error.to_string().contains("outside this agent's writable paths (docs/**, *.md)"), "{error}");
    }
    assert_eq!(std::fs::read_to_string(ws.join("infra/main.tf")).unwrap(), "resource {}\n");
    // Reading is not confined.
    assert_eq!(tool("read").call(&context, json!({"path": "infra/main.tf"})).await.unwrap(), "resource {}\n");
}
