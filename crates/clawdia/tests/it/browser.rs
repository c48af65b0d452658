//! The web UI in a real browser: each scenario of `tests/web/scenarios.mjs` drives headless
//! Chromium (Debian's, through npm `playwright-core`) against the real gateway and mock LLM.
//! This side is the harness: it starts them, runs `node scenarios.mjs NAME`, and answers the
//! script's `ask <action> <json>` lines (a pairing code, the mock's next reply, a restart on the
//! same port, an alert for the owner, the token) with one JSON line each. Without node,
//! Chromium or playwright-core a scenario skips, which under `CI` is a failure.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Gateway, Home, Reply, stdout};

const TELEGRAM_STRANGER: i64 = 626_262;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/web/scenarios.mjs");

fn npm_dir() -> PathBuf {
    std::env::var_os("CLAWDIA_TEST_NPM")
        .map_or_else(|| PathBuf::from("/root/.cache/clawdia/npm"), PathBuf::from)
}

fn chromium() -> PathBuf {
    std::env::var_os("CLAWDIA_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Why the browser tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    if !["/usr/bin/node", "/usr/local/bin/node"].iter().any(|p| Path::new(p).exists()) {
        return Some("node is not installed (apt install nodejs)".into());
    }
    if !chromium().exists() {
        return Some(format!("{} is not installed (apt install chromium)", chromium().display()));
    }
    if !npm_dir().join("node_modules/playwright-core/package.json").exists() {
        return Some(format!(
            "playwright-core is not installed under {} (scripts/test.sh installs it)",
            npm_dir().display()
        ));
    }
    None
}

fn run_scenario(name: &str, extra: &str) {
    if let Some(why) = missing() {
        if std::env::var_os("CI").is_some() {
            panic!("the browser tests must run in CI: {why}");
        }
        println!("skipped browser scenario {name}: {why}");
        return;
    }
    // The Telegram scenario's bot talks to the Bot API double.
    let bot =
        (name == "telegram_pair").then(|| clawdia_test_support::telegram::BotApi::start_blocking().unwrap());
    let extra = match &bot {
        Some(bot) => format!(
            "{extra}\n[channels.telegram]\ntoken = {{ file = \"telegram-token\" }}\napi_root = \"{}\"\npoll_timeout_secs = 1\n",
            bot.api_root()
        ),
        None => extra.to_string(),
    };
    // Under the target dir: `exec` runs in the sandbox, which replaces /tmp.
    let home = Home::with_agent_extra_in(&extra, Path::new(env!("CARGO_TARGET_TMPDIR")));
    std::fs::write(home.path().join("telegram-token"), clawdia_test_support::telegram::TOKEN).unwrap();
    let mut gateway = Some(home.up());
    let port = gateway.as_ref().map(|g| g.addr.port()).unwrap_or(0);
    // A restart comes back on the same port, as a browser expects.
    let config = home.path().join("clawdia.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("port = 0", &format!("port = {port}"))).unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-shots");
    let _ = std::fs::create_dir_all(&out);

    let mut child = Command::new("node")
        .arg(SCENARIOS)
        .arg(name)
        .env("CLAWDIA_URL", format!("http://127.0.0.1:{port}"))
        .env("CLAWDIA_TEST_NPM", npm_dir())
        .env("CLAWDIA_TEST_CHROMIUM", chromium())
        .env("CLAWDIA_TEST_OUT", &out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node");
    let mut input = child.stdin.take().unwrap();
    let output = BufReader::new(child.stdout.take().unwrap());
    let mut report = Vec::new();
    for line in output.lines().map_while(Result::ok) {
        println!("{line}");
        let Some(rest) = line.strip_prefix("ask ") else {
            report.push(line);
            continue;
        };
        let (action, argument) = rest.split_once(' ').unwrap_or((rest, "null"));
        let argument: Value = serde_json::from_str(argument).unwrap_or(Value::Null);
        let answer = match action {
            "pair" => {
                let out = home.run(&["web", "pair", "--json"]);
                serde_json::from_str(stdout(&out).trim())
                    .unwrap_or_else(|_| json!({"error": "web pair failed"}))
            }
            "token" => json!({"token": home.token()}),
            "reply" => {
                let reply = if let Some(calls) = argument["tool_calls"].as_array() {
                    let calls: Vec<(String, String)> = calls
                        .iter()
                        .map(|call| {
                            (call[0].as_str().unwrap_or("").into(), call[1].as_str().unwrap_or("").into())
                        })
                        .collect();
                    Reply::tool_calls(calls)
                } else {
                    Reply::text(argument["text"].as_str().unwrap_or(""))
                };
                let reply = match argument["chunks_ms"].as_u64() {
                    Some(ms) => reply.chunk_delay(Duration::from_millis(ms)),
                    None => reply,
                };
                home.mock.push(reply);
                json!({"ok": true})
            }
            "restart" => {
                if let Some(running) = gateway.take() {
                    assert!(running.terminate().success(), "the gateway stopped cleanly");
                }
                let restarted: Gateway = home.up();
                assert_eq!(restarted.addr.port(), port);
                gateway = Some(restarted);
                json!({"ok": true})
            }
            "alert" => {
                let title = argument["title"].as_str().unwrap_or("Test alert");
                let out = home.run(&["alerts", "test", "--title", title]);
                if out.status.success() {
                    json!({"ok": true})
                } else {
                    json!({"error": crate::support::stderr(&out)})
                }
            }
            // A stranger writes to the bot and gets a pairing code.
            "telegram_stranger" => match &bot {
                Some(bot) => {
                    bot.text(TELEGRAM_STRANGER, TELEGRAM_STRANGER, "hello, may I talk to you?");
                    let asked = crate::support::wait_until(Duration::from_secs(20), || {
                        bot.calls_of("sendMessage")
                            .iter()
                            .any(|c| c.body["text"].as_str().unwrap_or("").contains("telegram pair"))
                    });
                    json!({"ok": asked})
                }
                None => json!({"error": "no bot in this scenario"}),
            },
            // Whether the stranger was told they are in.
            "telegram_told" => match &bot {
                Some(bot) => {
                    json!({"told": bot.calls_of("sendMessage").iter().any(|c| c.body["chat_id"] == TELEGRAM_STRANGER && c.body["text"].as_str().unwrap_or("").contains("You're in"))})
                }
                None => json!({"error": "no bot in this scenario"}),
            },
            other => json!({"error": format!("this harness cannot `{other}`")}),
        };
        if writeln!(input, "{answer}").is_err() {
            break;
        }
    }
    drop(input);
    let status = child.wait().unwrap();
    let passed = report.iter().filter(|line| line.starts_with("pass ")).count();
    assert!(
        status.success() && passed > 0 && !report.iter().any(|line| line.starts_with("fail ")),
        "browser scenario {name} failed (screenshots in {}):\n{}",
        out.display(),
        report.join("\n")
    );
}

#[test]
fn pair_and_chat() {
    run_scenario("pair_and_chat", "");
}

#[test]
fn approve_exec() {
    run_scenario("approve_exec", "[agents.main.tools]\nask = [\"exec\"]\n");
}

#[test]
fn alert() {
    run_scenario("alert", "");
}

#[test]
fn restart() {
    run_scenario("restart", "");
}

#[test]
fn hostile() {
    run_scenario("hostile", "");
}

#[test]
fn phone() {
    run_scenario("phone", "");
}

#[test]
fn telegram_pair() {
    run_scenario("telegram_pair", "");
}
