//! The Telegram channel's files, against the Bot API double in `clawdia-test-support` (the npm
//! fake the other Telegram tests use serves no files and takes no voice notes): a voice note is
//! downloaded, transcribed by local Whisper and answered in text and as a spoken voice note
//! (Piper), which Whisper reads back; photos and documents land in the agent's workspace with a
//! line telling the agent where; files past `max_file_mb` are refused whether their size was
//! announced or not; flood control on a reply is waited out, and the reply arrives once.

use std::time::{Duration, Instant};

use clawdia_test_support::telegram::{BotApi, TOKEN};
use serde_json::Value;

use crate::support::{Home, Reply, stderr, stdout, user_texts, wait_until};

const OWNER: i64 = 515_151;

fn home(api: &BotApi, extra: &str) -> Home {
    let home = Home::with_agent_extra(&format!(
        "\n[owner]\ntelegram = {OWNER}\n\n[channels.telegram]\ntoken = {{ file = \"TOKEN_FILE\" }}\napi_root = \"{}\"\npoll_timeout_secs = 1\nbatch_ms = 0\n{extra}",
        api.api_root()
    ));
    let token = home.path().join("telegram-token");
    std::fs::write(&token, TOKEN).unwrap();
    let config = home.path().join("clawdia.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("TOKEN_FILE", &token.display().to_string())).unwrap();
    home
}

fn texts_sent(api: &BotApi) -> Vec<String> {
    api.calls_of("sendMessage")
        .iter()
        .map(|call| call.body["text"].as_str().unwrap_or("").to_string())
        .collect()
}

fn wait_for_text(api: &BotApi, needle: &str) {
    let found = wait_until(Duration::from_secs(60), || texts_sent(api).iter().any(|t| t.contains(needle)));
    assert!(found, "no message containing {needle:?}; sent: {:?}", texts_sent(api));
}

#[test]
fn a_voice_note_is_answered_in_text_and_as_a_voice_note() {
    let api = BotApi::start_blocking().unwrap();
    let home = home(&api, "\n[speech]\nstt = \"local/whisper-tiny.en\"\ntts = \"local/piper-joe\"\n");
    if !crate::speech::link_models(&home) {
        return;
    }
    // The owner's question, spoken by Piper into an Ogg/Opus voice note as a phone would send.
    let question = home.path().join("question.ogg");
    let out = home.run(&[
        "speech",
        "say",
        "Remind me to water the plants tonight.",
        "-o",
        question.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _gateway = home.up();

    // Control: a written message gets a text reply and no voice note (voice_reply = spoken).
    home.mock.push(Reply::text("Written reply."));
    api.text(OWNER, OWNER, "hello in writing");
    wait_for_text(&api, "Written reply.");

    home.mock.push(Reply::text("Sure, I will remind you to water the plants tonight."));
    api.voice(OWNER, OWNER, std::fs::read(&question).unwrap());
    let spoken = wait_until(Duration::from_secs(120), || !api.calls_of("sendVoice").is_empty());
    assert!(spoken, "no voice reply; calls: {:?}", api.calls().iter().map(|c| &c.method).collect::<Vec<_>>());
    assert_eq!(api.calls_of("sendVoice").len(), 1, "exactly one voice reply (none for the written message)");
    // The transcript reached the model as the owner's words.
    let texts = user_texts(&home);
    let heard = texts.last().unwrap().to_lowercase();
    for word in ["water", "plants", "tonight"] {
        assert!(heard.contains(word), "`{word}` not in what the model got: {heard}");
    }
    assert!(!api.calls_of("getFile").is_empty(), "the note was fetched with getFile");
    // The reply also came as text, whole.
    wait_for_text(&api, "Sure, I will remind you");
    // The voice reply is an Ogg/Opus note that says the reply.
    let call = &api.calls_of("sendVoice")[0];
    assert_eq!(call.body["chat_id"], Value::from(OWNER.to_string()));
    let (field, note) = &call.files[0];
    assert_eq!(field, "voice");
    assert!(note.starts_with(b"OggS"), "not an Ogg file");
    let reply = home.path().join("reply.ogg");
    std::fs::write(&reply, note).unwrap();
    let out = home.run(&["speech", "transcribe", reply.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let words = clawdia_speech::wer::words(&stdout(&out));
    for word in ["remind", "plants"] {
        assert!(words.iter().any(|w| w == word), "`{word}` not in the spoken reply: {words:?}");
    }

    // `/voice ...` asks for a spoken reply to a written message.
    home.mock.push(Reply::text("Spoken on request."));
    api.text(OWNER, OWNER, "/voice say something");
    assert!(
        wait_until(Duration::from_secs(60), || api.calls_of("sendVoice").len() == 2),
        "no voice for /voice"
    );
    assert!(user_texts(&home).last().unwrap().contains("say something"));
}

#[test]
fn photos_and_documents_land_in_the_workspace_and_oversized_files_are_refused() {
    let api = BotApi::start_blocking().unwrap();
    let home = home(&api, "max_file_mb = 1\n");
    let _gateway = home.up();
    let uploads = home.workspace().join("uploads/telegram");

    home.mock.push(Reply::text("A nice photo."));
    let jpeg: Vec<u8> = (0..5_000u32).map(|i| (i % 251) as u8).collect();
    api.photo(OWNER, OWNER, jpeg.clone(), Some("what is in this picture?"));
    wait_for_text(&api, "A nice photo.");
    let texts = user_texts(&home);
    let told = texts.last().unwrap();
    assert!(told.contains("what is in this picture?"), "{told}");
    assert!(
        told.contains("[The sender attached a photo, saved in your workspace as uploads/telegram/photo-"),
        "{told}"
    );
    let photos: Vec<_> = std::fs::read_dir(&uploads).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(photos.len(), 1, "{photos:?}");
    assert_eq!(std::fs::read(&photos[0]).unwrap(), jpeg, "the photo's bytes, unchanged");

    // A hostile name stays one file name inside uploads/telegram.
    home.mock.push(Reply::text("Got the notes."));
    api.document(OWNER, OWNER, "../../.bashrc", b"notes for later".to_vec(), None);
    wait_for_text(&api, "Got the notes.");
    assert_eq!(std::fs::read(uploads.join("bashrc")).unwrap(), b"notes for later");
    assert!(!home.path().join("workspaces/.bashrc").exists() && !home.path().join(".bashrc").exists());
    assert!(
        user_texts(&home)
            .last()
            .unwrap()
            .contains("a document, saved in your workspace as uploads/telegram/bashrc (15 B)")
    );

    // Past max_file_mb: refused before the download when the size is announced, and during it
    // when the announced size was false. Neither reaches the model or the disk.
    let asked = home.mock.requests().len();
    api.document(OWNER, OWNER, "big.bin", vec![7u8; 1_100_000], None);
    wait_for_text(&api, "larger than the 1 MB I may download");
    api.document(OWNER, OWNER, "liar.bin", vec![7u8; 1_100_000], Some(10));
    let refusals = || texts_sent(&api).iter().filter(|t| t.contains("larger than the 1 MB")).count();
    assert!(wait_until(Duration::from_secs(20), || refusals() == 2), "{:?}", texts_sent(&api));
    assert_eq!(home.mock.requests().len(), asked, "an oversized file reached the model");
    assert!(!uploads.join("big.bin").exists() && !uploads.join("liar.bin").exists());

    // Without speech to text a voice note gets a clear answer, not silence.
    api.voice(OWNER, OWNER, b"OggS not really".to_vec());
    wait_for_text(&api, "speech to text is not set up");
    assert_eq!(home.mock.requests().len(), asked);
}

#[test]
fn flood_control_on_a_reply_is_waited_out_and_the_reply_arrives_once() {
    let api = BotApi::start_blocking().unwrap();
    let home = home(&api, "");
    let _gateway = home.up();
    api.flood("sendMessage", 1, 2);
    home.mock.push(Reply::text("After the wait."));
    api.text(OWNER, OWNER, "hello");
    wait_for_text(&api, "After the wait.");
    let calls: Vec<_> = api.calls().into_iter().filter(|c| c.method == "sendMessage").collect();
    let refused: Vec<Instant> = calls.iter().filter(|c| c.refused).map(|c| c.at).collect();
    let sent: Vec<Instant> = calls.iter().filter(|c| !c.refused).map(|c| c.at).collect();
    assert_eq!((refused.len(), sent.len()), (1, 1), "one refusal, then the reply once");
    let waited = sent[0].duration_since(refused[0]);
    assert!(waited >= Duration::from_secs(2), "retried after {waited:?}, before retry_after");
}

/// `telegram` in `/v1/status`: (state, restarts, error).
fn telegram_state(gateway: &crate::support::Gateway, token: &str) -> (String, u64, String) {
    let (code, body) = crate::support::http(gateway.addr, "GET", "/v1/status", Some(token), "");
    assert_eq!(code, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    let component =
        json["components"].as_array().unwrap().iter().find(|c| c["name"] == "telegram").cloned().unwrap();
    (
        component["state"].as_str().unwrap_or("").to_string(),
        component["restarts"].as_u64().unwrap_or(0),
        component["error"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn a_stalled_poll_is_rebuilt_and_the_owner_is_told() {
    let api = BotApi::start_blocking().unwrap();
    let home = home(&api, "");
    let gateway = home.up();
    let token = home.token();
    // Control: it answers while polls complete.
    home.mock.push(Reply::text("Before the stall."));
    api.text(OWNER, OWNER, "one");
    wait_for_text(&api, "Before the stall.");
    // Polls stop being answered (a half-open connection): the run ends past the poll's own
    // timeout plus the margin, is restarted, and the failure reaches the owner's alerts.
    api.stall_polls(true);
    let rebuilt = wait_until(Duration::from_secs(30), || telegram_state(&gateway, &token).1 >= 1);
    let (_, restarts, error) = telegram_state(&gateway, &token);
    assert!(rebuilt, "no restart: {restarts} {error}");
    assert!(error.contains("getUpdates stalled"), "{error}");
    let alerts = home.path().join("logs/alerts.log");
    let alerted = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&alerts)
            .is_ok_and(|log| log.contains("component_failed") && log.contains("telegram"))
    });
    assert!(alerted, "no alert: {:?}", std::fs::read_to_string(&alerts));
    // Once Telegram answers again, messages flow again.
    api.stall_polls(false);
    home.mock.push(Reply::text("After the stall."));
    api.text(OWNER, OWNER, "two");
    wait_for_text(&api, "After the stall.");
}

#[test]
fn the_control_api_lists_pairing_requests_and_lets_one_in() {
    let api = BotApi::start_blocking().unwrap();
    let home = home(&api, "");
    let gateway = home.up();
    let token = home.token();
    let stranger = 737_373;
    api.text(stranger, stranger, "hi, who are you?");
    wait_for_text(&api, "clawdia telegram pair ");
    let (status, body) = crate::support::http(gateway.addr, "GET", "/v1/telegram/pairings", Some(&token), "");
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["configured"], true, "{body}");
    let requests = &answer["requests"];
    assert_eq!(requests[0]["user_id"], stranger, "{body}");
    let code = requests[0]["code"].as_str().unwrap().to_string();
    assert!(home.mock.requests().is_empty(), "a stranger reached the model");
    // A wrong code lets nobody in; the right one does, and they are told.
    let (status, _) = crate::support::http(
        gateway.addr,
        "POST",
        "/v1/telegram/pairings/ZZZZ-ZZZZ/approve",
        Some(&token),
        "",
    );
    assert_eq!(status, 404);
    let (status, body) = crate::support::http(
        gateway.addr,
        "POST",
        &format!("/v1/telegram/pairings/{}/approve", code.to_lowercase()),
        Some(&token),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"told\":true"), "{body}");
    wait_for_text(&api, "You're in");
    home.mock.push(Reply::text("Welcome aboard."));
    api.text(stranger, stranger, "thanks!");
    wait_for_text(&api, "Welcome aboard.");
    let (_, body) = crate::support::http(gateway.addr, "GET", "/v1/telegram/pairings", Some(&token), "");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["requests"], serde_json::json!([]), "{body}");
}

#[test]
fn the_owner_answers_an_elevation_request_by_replying_to_its_alert() {
    let api = BotApi::start_blocking().unwrap();
    let home = home(
        &api,
        "\n[agents.admin]\nmodel = \"mock/admin\"\n\n[agents.admin.elevated]\nsenders = []\n\
         [[agents.admin.elevated.commands]]\npath = \"/usr/bin/touch\"\nargs = [\"*/marker-*\"]\n\n\
         [broker]\nadmin_agent = \"admin\"\n",
    );
    let _gateway = home.up();
    let marker = home.path().join("marker-telegram");
    let inbox = home.path().join("state/broker/inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    home.mock.push_for("admin", Reply::text("Harmless: one empty file."));
    let request = serde_json::json!({"action": "touch the telegram marker", "reason": "r",
        "commands": [["/usr/bin/touch", marker.to_str().unwrap()]]});
    std::fs::write(inbox.join("tele01.json"), request.to_string()).unwrap();
    // The alert reaches the owner's chat.
    wait_for_text(&api, "Request tele01:");
    let alert = api
        .calls_of("sendMessage")
        .into_iter()
        .find(|c| c.body["text"].as_str().unwrap_or("").contains("Request tele01:"))
        .unwrap();
    assert_eq!(alert.body["chat_id"], OWNER);
    let replying = |from: i64, text: &str| {
        api.message(
            from,
            from,
            serde_json::json!({"text": text, "reply_to_message": {
                "message_id": 1, "date": 0, "chat": {"id": from, "type": "private"},
                "from": {"id": 4242, "is_bot": true, "first_name": "Double"},
                "text": "Request tele01: touch the telegram marker\nmain asks: ...",
            }}),
        )
    };
    // Someone else's reply to it decides nothing (they are a stranger: a pairing code).
    replying(777_001, "yes");
    wait_for_text(&api, "clawdia telegram pair");
    assert!(!marker.exists());
    // The owner's "yes" approves it; the command runs and the outcome comes back.
    replying(OWNER, "yes");
    wait_for_text(&api, "Request tele01 (touch the telegram marker): done.");
    assert!(marker.exists(), "the approved command did not run");
    // A reply to a decided request is answered with why nothing happens.
    replying(OWNER, "no");
    wait_for_text(&api, "already done");
}
