//! Test scaffolding: a temporary home wired to a mock LLM, a way to run the binary, and a
//! running gateway process that is killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use clawdia_test_support::{MockLlm, Reply};

/// The binary under test: this build's, or the one `CLAWDIA_TEST_BINARY` names (the test script
/// runs the sandbox, exec, MCP and cron tests again against the optimized release binary).
pub fn binary() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| match std::env::var("CLAWDIA_TEST_BINARY") {
        Ok(path) if !path.is_empty() => {
            assert!(Path::new(&path).is_file(), "CLAWDIA_TEST_BINARY={path} is not a file");
            path
        }
        _ => env!("CARGO_BIN_EXE_clawdia").to_string(),
    })
}

/// A home whose config points two providers at one mock: `mock` speaks Anthropic and `alt`
/// speaks OpenAI. `main` uses `mock/primary` with fallback `alt/backup`.
pub struct Home {
    pub dir: tempfile::TempDir,
    pub mock: MockLlm,
}

impl Home {
    pub fn new() -> Home {
        Home::with_agent_extra("")
    }

    /// `extra` is appended to the `[agents.main]` table (and may open further tables).
    pub fn with_agent_extra(extra: &str) -> Home {
        Home::with_agent_extra_in(extra, &std::env::temp_dir())
    }

    /// As `with_agent_extra`, with the home created under `parent` (sandbox tests keep it out
    /// of `/tmp`, which the sandbox replaces with a private one).
    pub fn with_agent_extra_in(extra: &str, parent: &Path) -> Home {
        let dir = tempfile::tempdir_in(parent).expect("tempdir");
        let mock = MockLlm::start_blocking();
        let home = Home { dir, mock };
        let out = home.run(&["init"]);
        assert!(out.status.success(), "init failed: {}", stderr(&out));
        let config = format!(
            r#"[gateway]
bind = "127.0.0.1"
port = 0

[providers.mock]
kind = "anthropic"
base_url = "{anthropic}"
api_key = {{ env = "CLAWDIA_TEST_KEY" }}
cooldown_secs = 30

[providers.alt]
kind = "openai"
base_url = "{openai}"
read_timeout_secs = 5

[agents.main]
model = "mock/primary"
fallbacks = ["alt/backup"]
{extra}
"#,
            anthropic = home.mock.anthropic_base_url(),
            openai = home.mock.openai_base_url(),
        );
        std::fs::write(home.path().join("clawdia.toml"), config).expect("write config");
        home
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .arg("--home")
            .arg(self.path())
            .args(args)
            .env("CLAWDIA_TEST_KEY", "test-key")
            .env_remove("CLAWDIA_HOME")
            .env_remove("CLAWDIA_LOG")
            .stdin(Stdio::null());
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run clawdia")
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.path().join("secrets/gateway-token")).unwrap().trim().to_string()
    }

    pub fn workspace(&self) -> PathBuf {
        self.path().join("workspaces/main")
    }

    /// Starts `clawdia up` and waits until it prints its address.
    pub fn up(&self) -> Gateway {
        self.up_with_early_stderr().0
    }

    /// As `up`, also returning what the gateway printed on stderr before its address.
    pub fn up_with_early_stderr(&self) -> (Gateway, Vec<String>) {
        self.up_with_env(&[])
    }

    /// As `up_with_early_stderr`, with `env` added to the gateway's environment.
    pub fn up_with_env(&self, env: &[(&str, &std::ffi::OsStr)]) -> (Gateway, Vec<String>) {
        let mut command = self.command(&["up"]);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child =
            command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn clawdia up");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut early = Vec::new();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sent {
                    continue;
                }
                match line.strip_prefix("clawdia gateway listening on http://") {
                    Some(addr) => {
                        let _ = tx.send((addr.trim().to_string(), std::mem::take(&mut early)));
                        sent = true;
                    }
                    None => early.push(line),
                }
            }
        });
        let (addr, early) = rx.recv_timeout(Duration::from_secs(20)).expect("gateway printed its address");
        (Gateway { child, addr: addr.parse().expect("address") }, early)
    }
}

pub struct Gateway {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "gateway did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A minimal HTTP/1.1 client over a raw socket (no client library in the test's way).
pub fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|value| ("Authorization", value.as_str())).collect();
    let (status, _, body) = http_with(addr, method, path, &headers, body);
    (status, body)
}

/// As [`http`], with any headers; returns status, head and body.
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

/// The body of a `Transfer-Encoding: chunked` response, joined.
pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}

/// The messages of a session as exported JSONL.
pub fn export(home: &Home, session: &str) -> Vec<serde_json::Value> {
    let out = home.run(&["sessions", "export", session]);
    assert!(out.status.success(), "export failed: {}", stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).expect("jsonl line")).collect()
}

/// A plain HTTP server on the host's loopback answering every request with `body`, for the
/// egress tests; returns its port.
pub fn http_upstream(body: &'static str) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let (mut head, mut byte) = (Vec::new(), [0u8; 1]);
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

/// The last user message of each request the mock LLM received (as JSON text), in order.
pub fn user_texts(home: &Home) -> Vec<String> {
    home.mock
        .requests()
        .iter()
        .filter_map(|request| {
            let messages = request.body["messages"].as_array()?;
            let last = messages.iter().rev().find(|m| m["role"] == "user")?;
            Some(last["content"].to_string())
        })
        .collect()
}
