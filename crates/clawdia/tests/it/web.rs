//! The web channel end to end, against the real gateway: signing a browser in with a pairing
//! code or the token (and what a wrong, used or expired code says), the cookie's attributes,
//! CSRF and origin checks on state-changing requests and on the socket, a turn streamed over
//! `/v1/ws`, catching up after a drop, a restart asking for a reload with the transcript
//! intact, stopping a turn, deciding an approval over the socket, alerts reaching open sockets,
//! revoking a browser closing its socket, and the Control endpoints.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest as _;
use tungstenite::{Message, WebSocket};

use crate::support::{Gateway, Home, Reply, stdout, wait_until};

use crate::support::http_with as request;

/// A signed-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
    id: String,
}

fn pair(home: &Home) -> String {
    let out = home.run(&["web", "pair", "--json"]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let printed: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    printed["code"].as_str().unwrap().to_string()
}

fn sign_in(gateway: &Gateway, body: &Value) -> Result<Browser, (u16, String)> {
    let (status, head, body) = request(gateway.addr, "POST", "/v1/web/login", &[], &body.to_string());
    if status != 200 {
        return Err((status, body));
    }
    let line = head
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie")
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(line.contains(attribute), "cookie lacks {attribute}: {line}");
    }
    let cookie = line.split_once(':').unwrap().1.trim().split(';').next().unwrap().to_string();
    let body: Value = serde_json::from_str(&body).unwrap();
    Ok(Browser {
        cookie,
        csrf: body["csrf"].as_str().unwrap().to_string(),
        id: body["session"]["id"].as_str().unwrap().to_string(),
    })
}

fn get(gateway: &Gateway, browser: &Browser, path: &str) -> (u16, Value) {
    let (status, _, body) = request(gateway.addr, "GET", path, &[("Cookie", &browser.cookie)], "");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn post(gateway: &Gateway, browser: &Browser, path: &str, body: &str) -> (u16, String) {
    let (status, _, body) = request(
        gateway.addr,
        "POST",
        path,
        &[("Cookie", &browser.cookie), ("X-CSRF-Token", &browser.csrf)],
        body,
    );
    (status, body)
}

struct Socket {
    ws: WebSocket<TcpStream>,
}

fn connect(gateway: &Gateway, browser: &Browser, origin: Option<&str>) -> Result<Socket, u16> {
    let mut request = format!("ws://{}/v1/ws", gateway.addr).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", browser.cookie.parse().unwrap());
    let own = format!("http://{}", gateway.addr);
    request.headers_mut().insert("Origin", origin.unwrap_or(&own).parse().unwrap());
    let stream = TcpStream::connect(gateway.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    match tungstenite::client(request, stream) {
        Ok((ws, _)) => Ok(Socket { ws }),
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(error) => panic!("handshake failed: {error}"),
    }
}

impl Socket {
    fn send(&mut self, value: Value) {
        self.ws.send(Message::text(value.to_string())).unwrap();
    }

    /// The next JSON message, or `None` when the socket closed (with its close code).
    fn next(&mut self) -> Result<Value, Option<u16>> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => return Ok(serde_json::from_str(&text).unwrap()),
                Ok(Message::Close(frame)) => return Err(frame.map(|f| u16::from(f.code))),
                Ok(_) => {}
                Err(_) => return Err(None),
            }
        }
    }

    /// Messages until one satisfies `stop` (included), within 20 s.
    fn until(&mut self, stop: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            let message =
                self.next().unwrap_or_else(|code| panic!("socket closed ({code:?}) after {seen:?}"));
            let done = stop(&message);
            seen.push(message);
            if done {
                return seen;
            }
        }
        panic!("timed out; saw {seen:?}");
    }

    fn hello(&mut self, boot: Option<&str>, since: Option<u64>) -> Value {
        self.send(json!({"type": "hello", "boot": boot, "since": since}));
        let welcome = self.next().unwrap();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        welcome
    }
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "turn" && e["event"]["type"] == "text_delta")
        .map(|e| e["event"]["text"].as_str().unwrap())
        .collect()
}

#[test]
fn a_pairing_code_signs_in_one_browser_and_a_wrong_one_says_what_to_do() {
    let home = Home::new();
    let gateway = home.up();
    let code = pair(&home);
    // Before signing in: the page is served, nothing else is.
    let (status, head, page) = request(gateway.addr, "GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("<html"), "{page}");
    assert!(head.to_ascii_lowercase().contains("content-security-policy: default-src 'none'"), "{head}");
    let (status, _, _) = request(gateway.addr, "GET", "/v1/web/me", &[], "");
    assert_eq!(status, 401);
    let (status, _, _) = request(gateway.addr, "GET", "/v1/agents", &[], "");
    assert_eq!(status, 401);

    let wrong = sign_in(&gateway, &json!({"code": "ABCD-EFGH"})).err().unwrap();
    assert_eq!(wrong.0, 401);
    assert!(
        wrong.1.contains("that pairing code is wrong") && wrong.1.contains("clawdia web pair"),
        "{}",
        wrong.1
    );
    // Typed in lower case without the dash: still the code.
    let typed = code.to_lowercase().replace('-', "");
    let browser = sign_in(&gateway, &json!({"code": typed, "label": "Ana's phone"})).unwrap();
    let used = sign_in(&gateway, &json!({"code": code})).err().unwrap();
    assert!(used.1.contains("was used already"), "{}", used.1);
    let (status, me) = get(&gateway, &browser, "/v1/web/me");
    assert_eq!(status, 200);
    assert_eq!(me["session"]["label"], "Ana's phone");
    let (status, agents) = get(&gateway, &browser, "/v1/agents");
    assert_eq!(status, 200);
    assert_eq!(agents[0]["name"], "main");
    assert_eq!(agents[0]["models"], json!(["mock/primary", "alt/backup"]));

    // The token signs in too; a wrong token does not.
    let by_token = sign_in(&gateway, &json!({"token": home.token()})).unwrap();
    assert!(sign_in(&gateway, &json!({"token": "nope"})).is_err());

    // Both are listed; revoking one from the CLI signs it out at once.
    let listed = stdout(&home.run(&["web", "sessions", "--json"]));
    assert!(listed.contains(&browser.id) && listed.contains(&by_token.id), "{listed}");
    assert!(!listed.contains(&browser.csrf), "the CSRF token is never listed: {listed}");
    let out = home.run(&["web", "sessions", "--revoke", &browser.id]);
    assert!(out.status.success());
    assert_eq!(get(&gateway, &browser, "/v1/agents").0, 401);
    assert_eq!(get(&gateway, &by_token, "/v1/agents").0, 200);
    assert!(!home.run(&["web", "sessions", "--revoke", &browser.id]).status.success());
}

#[test]
fn an_expired_code_says_so() {
    let home = Home::with_agent_extra("\n[channels.web]\npair_ttl = \"1s\"\n");
    let gateway = home.up();
    let code = pair(&home);
    std::thread::sleep(Duration::from_millis(1_100));
    let expired = sign_in(&gateway, &json!({"code": code})).err().unwrap();
    assert!(expired.1.contains("expired") && expired.1.contains("clawdia web pair"), "{}", expired.1);
    // A fresh one works (the positive control).
    assert!(sign_in(&gateway, &json!({"code": pair(&home)})).is_ok());
}

#[test]
fn repeated_wrong_codes_lock_the_sign_in_for_a_while() {
    let home = Home::new();
    let gateway = home.up();
    for _ in 0..10 {
        assert_eq!(sign_in(&gateway, &json!({"code": "WXYZ-2345"})).err().unwrap().0, 401);
    }
    let (status, body) = sign_in(&gateway, &json!({"code": pair(&home)})).err().unwrap();
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too many failed sign-ins"), "{body}");
}

#[test]
fn a_browser_changes_state_only_with_its_csrf_token_and_from_its_own_origin() {
    let home = Home::new();
    let gateway = home.up();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let workspace = home.workspace();
    let upload = "/v1/upload?agent=main&to=workspace&name=notes.txt";
    // No token: refused, nothing written.
    let (status, _, body) = request(gateway.addr, "POST", upload, &[("Cookie", &browser.cookie)], "hello");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("X-CSRF-Token"), "{body}");
    // The token from another site's page: refused.
    let (status, _, _) = request(
        gateway.addr,
        "POST",
        upload,
        &[("Cookie", &browser.cookie), ("X-CSRF-Token", &browser.csrf), ("Origin", "http://evil.example")],
        "hello",
    );
    assert_eq!(status, 403);
    assert!(!workspace.join("uploads/notes.txt").exists());
    // The page itself: written, under uploads/, and a second upload never overwrites the first.
    let (status, body) = post(&gateway, &browser, upload, "hello");
    assert_eq!(status, 200, "{body}");
    assert_eq!(std::fs::read_to_string(workspace.join("uploads/notes.txt")).unwrap(), "hello");
    let (_, body) =
        post(&gateway, &browser, "/v1/upload?agent=main&to=workspace&name=../../notes.txt", "again");
    assert!(body.contains("notes (2).txt"), "{body}");
    assert_eq!(std::fs::read_to_string(workspace.join("uploads/notes.txt")).unwrap(), "hello");
    // A bearer client needs no CSRF token.
    let (status, _, _) = request(
        gateway.addr,
        "POST",
        "/v1/upload?agent=main&to=brain&name=Trip%20plan.md",
        &[("Authorization", &format!("Bearer {}", home.token()))],
        "# Trip plan\n\nLisbon in May.",
    );
    assert_eq!(status, 200);
    let (status, page) = get(&gateway, &browser, "/v1/brain/pages/uploads/trip-plan");
    assert_eq!(status, 200, "{page}");
    assert!(page.to_string().contains("Lisbon in May"), "{page}");
}

#[test]
fn a_turn_streams_over_the_socket_and_a_dropped_socket_catches_up_exactly() {
    let home = Home::new();
    let gateway = home.up();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    // Another site's page cannot open the socket; the gateway's own page can.
    assert_eq!(connect(&gateway, &browser, Some("http://evil.example")).err(), Some(403));
    let mut socket = connect(&gateway, &browser, None).unwrap();
    let welcome = socket.hello(None, None);
    assert_eq!(welcome["resync"], true);
    let boot = welcome["boot"].as_str().unwrap().to_string();

    home.mock.push(Reply::text("Hello from the **mock**."));
    socket
        .send(json!({"type": "turn", "client_id": "c1", "agent": "main", "session": null, "message": "hi"}));
    let events = socket.until(|e| e["type"] == "turn_done");
    assert_eq!(events[0]["type"], "accepted");
    assert_eq!(events[0]["client_id"], "c1");
    assert_eq!(events[1]["type"], "user");
    assert_eq!(events[1]["text"], "hi");
    assert_eq!(text_of(&events), "Hello from the **mock**.");
    let done = events.last().unwrap();
    assert_eq!(done["ok"], true);
    let session = done["session"].as_str().unwrap().to_string();
    assert!(events.iter().any(|e| e["event"]["type"] == "end"));
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // A second turn in the same session while this socket is gone; the browser comes back
    // having seen the first turn only.
    let seen = *seqs.last().unwrap();
    drop(socket);
    let mut other = connect(&gateway, &browser, None).unwrap();
    other.hello(Some(&boot), Some(seen));
    home.mock.push(Reply::text("Second answer."));
    other.send(json!({"type": "turn", "agent": "main", "session": session, "message": "again"}));
    other.until(|e| e["type"] == "turn_done");
    let mut back = connect(&gateway, &browser, None).unwrap();
    let welcome = back.hello(Some(&boot), Some(seen));
    assert_eq!(welcome["resync"], false, "{welcome}");
    let missed = back.until(|e| e["type"] == "turn_done");
    assert_eq!(missed[0]["seq"].as_u64(), Some(seen + 1), "no gap, no repeat: {missed:?}");
    assert_eq!(missed[0]["text"], "again");
    assert_eq!(text_of(&missed), "Second answer.");

    // The transcript the page reloads from holds both turns.
    let (status, transcript) = get(&gateway, &browser, &format!("/v1/sessions/{session}"));
    assert_eq!(status, 200);
    let roles: Vec<&str> = transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"]["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    let (_, found) = get(&gateway, &browser, "/v1/sessions?q=AGAIN");
    assert_eq!(found[0]["id"], session.as_str());
    assert_eq!(found[0]["title"], "hi");
    let (_, none) = get(&gateway, &browser, "/v1/sessions?q=nowhere-said");
    assert_eq!(none, json!([]));
}

#[test]
fn a_restart_closes_sockets_and_asks_browsers_to_reload_what_was_kept() {
    let home = Home::new();
    let gateway = home.up();
    // The same port after the restart, as a browser expects.
    let config = home.path().join("clawdia.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("port = 0", &format!("port = {}", gateway.addr.port()))).unwrap();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let mut socket = connect(&gateway, &browser, None).unwrap();
    let boot = socket.hello(None, None)["boot"].as_str().unwrap().to_string();
    home.mock.push(Reply::text("Kept."));
    socket.send(json!({"type": "turn", "agent": "main", "message": "remember me"}));
    let events = socket.until(|e| e["type"] == "turn_done");
    let session = events.last().unwrap()["session"].as_str().unwrap().to_string();
    let seen = events.last().unwrap()["seq"].as_u64().unwrap();

    assert!(gateway.terminate().success());
    assert_eq!(socket.next().err(), Some(Some(1001)), "the socket says the gateway is going away");
    let gateway = home.up();
    // Still signed in; the new boot cannot replay, so the page reloads from HTTP.
    let mut socket = connect(&gateway, &browser, None).unwrap();
    let welcome = socket.hello(Some(&boot), Some(seen));
    assert_eq!(welcome["resync"], true);
    assert_ne!(welcome["boot"], boot.as_str());
    let (_, transcript) = get(&gateway, &browser, &format!("/v1/sessions/{session}"));
    assert_eq!(transcript["messages"][1]["message"]["text"], "Kept.");
}

#[test]
fn stop_cancels_a_running_turn_and_nothing_partial_is_kept() {
    let home = Home::new();
    let gateway = home.up();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let mut socket = connect(&gateway, &browser, None).unwrap();
    socket.hello(None, None);
    home.mock
        .push(Reply::text("one two three four five six seven eight").chunk_delay(Duration::from_millis(300)));
    socket.send(json!({"type": "turn", "agent": "main", "message": "count slowly"}));
    let started = socket.until(|e| e["event"]["type"] == "text_delta");
    let turn = started[0]["turn"].as_str().unwrap().to_string();
    let session = started.iter().find(|e| e["event"]["type"] == "started").unwrap()["event"]["session"]
        .as_str()
        .unwrap()
        .to_string();
    socket.send(json!({"type": "stop", "turn": turn}));
    let done = socket.until(|e| e["type"] == "turn_done");
    assert_eq!(done.last().unwrap()["stopped"], true);
    // A second stop names the problem.
    socket.send(json!({"type": "stop", "turn": turn}));
    let refused = socket.until(|e| e["type"] == "error");
    assert!(refused[0]["message"].as_str().unwrap().contains("no turn"), "{refused:?}");
    // Nothing of the reply was stored; the session takes the next turn (the positive control).
    home.mock.push(Reply::text("Fine."));
    socket.send(json!({"type": "turn", "agent": "main", "session": session, "message": "never mind"}));
    let next = socket.until(|e| e["type"] == "turn_done");
    assert_eq!(text_of(&next), "Fine.");
    let (_, transcript) = get(&gateway, &browser, &format!("/v1/sessions/{session}"));
    let texts: Vec<String> = transcript["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"]["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!texts.iter().any(|t| t.contains("one two")), "{texts:?}");
    assert!(texts.iter().any(|t| t == "Fine."), "{texts:?}");
}

#[test]
fn an_approval_is_decided_over_the_socket_and_the_agent_goes_on() {
    let home = Home::with_agent_extra("[agents.main.tools]\nask = [\"write\"]\n");
    let gateway = home.up();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let mut socket = connect(&gateway, &browser, None).unwrap();
    socket.hello(None, None);
    home.mock.push(Reply::tool_calls(vec![("write", r#"{"path":"hello.txt","content":"hi there"}"#)]));
    socket.send(json!({"type": "turn", "agent": "main", "message": "write hello.txt"}));
    let events = socket.until(|e| e["type"] == "turn_done");
    let asked =
        events.iter().find(|e| e["event"]["type"] == "approval_requested").expect("approval requested");
    let id = asked["event"]["id"].as_str().unwrap().to_string();
    assert!(!home.workspace().join("hello.txt").exists());
    let (_, pending) = get(&gateway, &browser, "/v1/approvals?pending=true");
    assert_eq!(pending[0]["arguments"], r#"{"path":"hello.txt","content":"hi there"}"#);

    home.mock.push(Reply::text("Written."));
    socket.send(json!({"type": "decide", "id": id, "approve": true}));
    let events = socket.until(|e| e["type"] == "turn_done");
    assert!(
        events.iter().any(|e| e["type"] == "approval" && e["approval"]["status"] == "done"),
        "{events:?}"
    );
    assert_eq!(text_of(&events), "Written.");
    assert_eq!(std::fs::read_to_string(home.workspace().join("hello.txt")).unwrap(), "hi there");
    // Decided once.
    socket.send(json!({"type": "decide", "id": id, "approve": false}));
    let refused = socket.until(|e| e["type"] == "error");
    assert!(refused[0]["message"].as_str().unwrap().contains("no pending approval"), "{refused:?}");
}

#[test]
fn alerts_reach_open_browsers_and_the_feed() {
    // Auth failures (severity 7) become alerts at this threshold.
    let home = Home::with_agent_extra("\n[alerts]\nmin_severity = 7\nrepeat_secs = 0\n");
    let gateway = home.up();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let mut socket = connect(&gateway, &browser, None).unwrap();
    socket.hello(None, None);
    let (status, _, _) =
        request(gateway.addr, "GET", "/v1/agents", &[("Authorization", "Bearer wrong-token")], "");
    assert_eq!(status, 401);
    let seen = socket.until(|e| e["type"] == "notification");
    let notification = &seen.last().unwrap()["notification"];
    assert_eq!(notification["kind"], "auth_failure");
    assert!(
        notification["body"].as_str().unwrap_or("").contains("wrong bearer token")
            || notification["title"].as_str().unwrap_or("").contains("wrong bearer token"),
        "{notification}"
    );
    assert!(wait_until(Duration::from_secs(5), || {
        let (_, feed) = get(&gateway, &browser, "/v1/notifications");
        feed.as_array().is_some_and(|feed| feed.iter().any(|n| n["id"] == notification["id"]))
    }));
}

#[test]
fn revoking_a_browser_closes_its_socket_only() {
    let home = Home::new();
    let gateway = home.up();
    let phone = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let laptop = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let mut phone_socket = connect(&gateway, &phone, None).unwrap();
    phone_socket.hello(None, None);
    let mut laptop_socket = connect(&gateway, &laptop, None).unwrap();
    laptop_socket.hello(None, None);
    let (status, body) = post(&gateway, &laptop, &format!("/v1/web/sessions/{}/revoke", phone.id), "");
    assert_eq!(status, 204, "{body}");
    assert_eq!(phone_socket.next().err(), Some(Some(4401)));
    laptop_socket.send(json!({"type": "ping"}));
    assert_eq!(laptop_socket.next().unwrap()["type"], "pong");
    assert_eq!(connect(&gateway, &phone, None).err(), Some(401));
}

#[test]
fn the_control_endpoints_answer_for_cron_and_doctor() {
    let home = Home::with_agent_extra(
        "\n[cron.jobs.tick]\nevery = \"1h\"\nexec = \"echo tick\"\nhost = true\n\n[cron]\nallow_host_jobs = true\n",
    );
    let gateway = home.up();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let (status, jobs) = get(&gateway, &browser, "/v1/cron");
    assert_eq!(status, 200, "{jobs}");
    let tick = jobs.as_array().unwrap().iter().find(|j| j["name"] == "tick").expect("the job").clone();
    assert_eq!(tick["enabled"], true);
    let (status, body) = post(&gateway, &browser, "/v1/cron/tick/run", "");
    assert_eq!(status, 200, "{body}");
    let ran: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ran["status"], "ok");
    assert!(ran["output"].as_str().unwrap().contains("tick"), "{ran}");
    let (_, runs) = get(&gateway, &browser, "/v1/cron/tick/runs");
    assert_eq!(runs[0]["trigger"], "manual");
    assert_eq!(post(&gateway, &browser, "/v1/cron/tick/disable", "").0, 204);
    let (_, jobs) = get(&gateway, &browser, "/v1/cron");
    assert_eq!(jobs.as_array().unwrap().iter().find(|j| j["name"] == "tick").unwrap()["enabled"], false);
    assert_eq!(post(&gateway, &browser, "/v1/cron/nope/disable", "").0, 404);
    let (status, checks) = get(&gateway, &browser, "/v1/doctor");
    assert_eq!(status, 200);
    assert!(checks.as_array().unwrap().iter().any(|c| c["status"] == "ok"), "{checks}");
}

#[test]
fn with_the_web_ui_off_only_the_api_answers() {
    let home = Home::with_agent_extra("\n[channels.web]\nenabled = false\n");
    let gateway = home.up();
    for path in ["/", "/app.js"] {
        assert_eq!(request(gateway.addr, "GET", path, &[], "").0, 404, "{path}");
    }
    let (status, _, body) =
        request(gateway.addr, "POST", "/v1/web/login", &[], &json!({"token": home.token()}).to_string());
    assert_eq!(status, 404, "{body}");
    let out = home.run(&["web", "pair"]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::support::stderr(&out));
    assert!(crate::support::stderr(&out).contains("enabled = true"));
    // The API itself is unchanged (the positive control).
    let bearer = format!("Bearer {}", home.token());
    assert_eq!(request(gateway.addr, "GET", "/v1/models", &[("Authorization", &bearer)], "").0, 200);
}

#[test]
fn a_failed_turn_ends_with_its_error_and_the_next_one_works() {
    let home = Home::new();
    let gateway = home.up();
    let browser = sign_in(&gateway, &json!({"code": pair(&home)})).unwrap();
    let mut socket = connect(&gateway, &browser, None).unwrap();
    socket.hello(None, None);
    // Both models of the chain refuse the request.
    home.mock.push(Reply::status(400));
    home.mock.push(Reply::status(400));
    socket.send(json!({"type": "turn", "agent": "main", "message": "hello?"}));
    let events = socket.until(|e| e["type"] == "turn_done");
    let error = events.iter().find(|e| e["event"]["type"] == "error").expect("an error event");
    assert!(!error["event"]["message"].as_str().unwrap().is_empty(), "{error}");
    assert_eq!(events.last().unwrap()["ok"], false);
    home.mock.push(Reply::text("Back."));
    socket.send(json!({"type": "turn", "agent": "main", "message": "hello again"}));
    let events = socket.until(|e| e["type"] == "turn_done");
    assert_eq!(text_of(&events), "Back.");
    assert_eq!(events.last().unwrap()["ok"], true);
}
