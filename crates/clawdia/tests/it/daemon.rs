//! The daemon behind `clawdia up`: `/v1/status` and `clawdia status` list its components, SIGTERM
//! drains turns in flight for `[gateway] drain_secs` and then cuts them, and the log in `logs/`
//! is rotated by size.

use std::time::{Duration, Instant};

use crate::support::*;

/// Sets `[gateway] drain_secs` (and any more `[gateway]` keys) in the home's config.
fn set_gateway(home: &Home, keys: &str) {
    let path = home.path().join("clawdia.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, config.replacen("port = 0\n", &format!("port = 0\n{keys}\n"), 1)).unwrap();
}

/// Sends a non-streamed chat turn from another thread; its `(status, body)` comes back on the
/// handle.
fn turn_in_background(gateway: &Gateway, token: &str, text: &str) -> std::thread::JoinHandle<(u16, String)> {
    let (addr, token) = (gateway.addr, token.to_string());
    let body = format!(r#"{{"model":"main","messages":[{{"role":"user","content":"{text}"}}]}}"#);
    std::thread::spawn(move || http(addr, "POST", "/v1/chat/completions", Some(&token), &body))
}

/// Sends SIGTERM and waits for the exit: its status and how long it took.
fn terminate_timed(gateway: Gateway) -> (std::process::ExitStatus, Duration) {
    let began = Instant::now();
    let status = gateway.terminate();
    (status, began.elapsed())
}

#[test]
fn status_lists_the_daemons_components_over_http_and_in_the_cli() {
    let home = Home::new();
    let gateway = home.up();
    let token = home.token();
    let (code, body) = http(gateway.addr, "GET", "/v1/status", None, "");
    assert_eq!(code, 401, "{body}");
    // Components start in the background: wait until the scheduler reports it runs.
    let mut json = serde_json::Value::Null;
    let settled = wait_until(Duration::from_secs(10), || {
        let (code, body) = http(gateway.addr, "GET", "/v1/status", Some(&token), "");
        assert_eq!(code, 200, "{body}");
        json = serde_json::from_str(&body).expect("status JSON");
        json["components"].as_array().is_some_and(|all| all.iter().all(|c| c["state"] != "starting"))
    });
    assert!(settled, "components still starting: {json}");
    assert_eq!(json["pid"], gateway.child.id());
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["uptime_secs"].is_u64() && json["started_at"].is_string(), "{json}");
    let components = json["components"].as_array().expect("components");
    let state = |name: &str| {
        components.iter().find(|c| c["name"] == name).map(|c| c["state"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(state("server").as_deref(), Some("running"), "{json}");
    assert_eq!(state("scheduler").as_deref(), Some("running"), "{json}");
    assert!(state("embedder").is_some(), "the embedder is listed (running or disabled): {json}");
    assert!(components.iter().all(|c| c["restarts"] == 0 && c["since"].is_string()), "{json}");

    let out = home.run(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(&format!("daemon:   pid {}", gateway.child.id())), "{text}");
    let server = text.lines().find(|line| line.trim_start().starts_with("server")).expect("a server line");
    assert!(server.contains("running"), "{text}");
    assert!(text.lines().any(|line| line.trim_start().starts_with("scheduler")), "{text}");

    let (code, took) = terminate_timed(gateway);
    assert!(code.success(), "exit after SIGTERM: {code:?}");
    assert!(took < Duration::from_secs(5), "an idle gateway took {took:?} to stop");
    let text = stdout(&home.run(&["status"]));
    assert!(text.contains("gateway:  not running") && !text.contains("daemon:"), "{text}");
    assert!(!home.path().join("state/gateway.json").exists(), "gateway.json left behind");
    // Every component reported its stop, in the log file as on stderr.
    let log = std::fs::read_to_string(home.path().join("logs/clawdia.log")).expect("the log file");
    let exit = log.lines().find(|line| line.contains("components at exit:")).expect("an exit line");
    assert!(exit.contains("server stopped") && exit.contains("scheduler stopped"), "{exit}");
    assert!(!exit.contains("running") && !exit.contains("failed"), "{exit}");
}

#[test]
fn sigterm_lets_a_turn_in_flight_finish_within_the_drain() {
    let home = Home::new();
    set_gateway(&home, "drain_secs = 10");
    home.mock.push(Reply::text("finished after the signal").delay(Duration::from_millis(1500)));
    let gateway = home.up();
    let token = home.token();
    let turn = turn_in_background(&gateway, &token, "take your time");
    assert!(
        wait_until(Duration::from_secs(10), || home.mock.requests().len() == 1),
        "the turn never started"
    );
    let (code, took) = terminate_timed(gateway);
    assert!(code.success(), "exit after SIGTERM: {code:?}");
    let (status, body) = turn.join().unwrap();
    assert_eq!(status, 200, "the turn in flight was not let finish: {body}");
    assert!(body.contains("finished after the signal"), "{body}");
    assert!(took >= Duration::from_millis(1000), "the gateway did not wait for the turn: {took:?}");
    assert!(took < Duration::from_secs(8), "the gateway lingered after its turn ended: {took:?}");
}

#[test]
fn sigterm_cuts_a_turn_longer_than_the_drain_and_still_exits_promptly() {
    let home = Home::new();
    set_gateway(&home, "drain_secs = 1");
    home.mock.push(Reply::hang());
    let gateway = home.up();
    let token = home.token();
    let turn = turn_in_background(&gateway, &token, "this never ends");
    assert!(
        wait_until(Duration::from_secs(10), || home.mock.requests().len() == 1),
        "the turn never started"
    );
    let (code, took) = terminate_timed(gateway);
    assert!(code.success(), "exit after SIGTERM: {code:?}");
    assert!(took >= Duration::from_millis(900), "the drain was not waited for: {took:?}");
    assert!(took < Duration::from_secs(5), "exit was not prompt after the drain: {took:?}");
    let (status, body) = turn.join().unwrap();
    assert_ne!(status, 200, "a hanging turn cannot have completed: {body}");
}

#[test]
fn the_log_in_logs_is_rotated_by_size_and_keeps_at_most_keep_files() {
    let home = Home::new();
    let path = home.path().join("clawdia.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{config}\n[logs]\nmax_bytes = 400\nkeep = 2\n")).unwrap();
    let logs = home.path().join("logs");
    let mut started = Vec::new();
    // Each run logs a few lines of ~100 bytes: well over three rotations in all.
    for _ in 0..6 {
        let gateway = home.up();
        started.push(gateway.addr);
        assert!(gateway.terminate().success());
    }
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("clawdia.log"))
        .collect();
    names.sort();
    assert_eq!(names, ["clawdia.log", "clawdia.log.1", "clawdia.log.2"], "rotated files beyond keep");
    let mut text = String::new();
    for name in names.iter().rev() {
        let file = logs.join(name);
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size <= 400, "{name} grew to {size} bytes");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "{name}");
        text.push_str(&std::fs::read_to_string(file).unwrap());
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777, 0o700);
    // The newest lines survive rotation: the last run's start is in the kept files, without
    // terminal colour codes.
    let last = started.last().unwrap().to_string();
    assert!(text.contains("clawdia gateway listening") && text.contains(&last), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in the log file: {text}");
}

#[test]
fn a_port_that_cannot_be_bound_stops_up_with_a_clear_error() {
    let home = Home::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let path = home.path().join("clawdia.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, config.replacen("port = 0\n", &format!("port = {port}\n"), 1)).unwrap();
    let mut child = home
        .command(&["up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "clawdia up kept running without its port");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let error = stderr(&out);
    assert_eq!(status.code(), Some(2), "{error}");
    assert!(error.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{error}");
    assert!(!error.contains("panicked"), "{error}");
    // The same home on a free port starts.
    drop(taken);
    let gateway = home.up();
    assert_eq!(gateway.addr.port(), port);
    assert!(gateway.terminate().success());
}
