//! The OpenAI-compatible API driven by the official `openai` Python SDK, unchanged. Needs
//! `python3` with `openai` installed (`.ci/run` installs it); elsewhere the test says why it
//! skipped — except under CI, where a missing SDK is a failure.

use std::process::Command;

use crate::support::*;

const SCRIPT: &str = r#"
import sys, openai
base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
models = [m.id for m in client.models.list()]
assert models == ["main"], models
r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}], user="sdk-session")
print("nonstream:" + r.choices[0].message.content)
print("usage:%d" % r.usage.total_tokens)
parts = []
for chunk in client.chat.completions.create(model="main", messages=[{"role": "user", "content": "stream please"}], stream=True, user="sdk-session", stream_options={"include_usage": True}):
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
print("stream:" + "".join(parts))
try:
    client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "x"}])
except openai.NotFoundError as e:
    print("notfound:" + str(e.status_code))
try:
    openai.OpenAI(base_url=base, api_key="wrong", max_retries=0).models.list()
except openai.AuthenticationError as e:
    print("unauthorized:" + str(e.status_code))
"#;

fn sdk_available() -> bool {
    Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn official_openai_sdk_works_unchanged() {
    if !sdk_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install the openai Python SDK (pip install openai)"
        );
        eprintln!("skipped: python3 with the `openai` package is not installed (pip install openai)");
        return;
    }
    let home = Home::new();
    home.mock.push(Reply::text("Hello from Clawdia"));
    home.mock.push(Reply::text("streamed reply in pieces"));
    let gateway = home.up();
    let out =
        Command::new("python3").args(["-c", SCRIPT, &gateway.url("/v1"), &home.token()]).output().unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("nonstream:Hello from Clawdia\n"), "{text}");
    assert!(text.contains("usage:15\n"), "{text}");
    assert!(text.contains("stream:streamed reply in pieces\n"), "{text}");
    assert!(text.contains("notfound:404\n"), "{text}");
    assert!(text.contains("unauthorized:401\n"), "{text}");
    // Both SDK calls used the session named by `user`: the second saw the first exchange.
    let messages = export(&home, "sdk-session");
    assert_eq!(messages.len(), 4);
}

const SETTINGS_SCRIPT: &str = r#"
import sys, openai
base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
print("model:" + client.models.retrieve("main").id)
try:
    client.models.retrieve("nobody")
except openai.NotFoundError as e:
    print("model-notfound:%d" % e.status_code)
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}]
try:
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": "weather?"}], tools=tools)
except openai.BadRequestError as e:
    print("tools:%d:%s" % (e.status_code, e.body["message"] if isinstance(e.body, dict) else e.body))
r = client.chat.completions.create(
    model="main",
    messages=[{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "hi"}],
    temperature=0.3, max_completion_tokens=64, stop=["END"], user="settings-session")
print("reply:" + r.choices[0].message.content)
"#;

#[test]
fn sdk_settings_reach_the_model_and_client_tools_are_refused() {
    if !sdk_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install the openai Python SDK (pip install openai)"
        );
        eprintln!("skipped: python3 with the `openai` package is not installed (pip install openai)");
        return;
    }
    let home = Home::new();
    home.mock.push(Reply::text("Bonjour"));
    let gateway = home.up();
    let out = Command::new("python3")
        .args(["-c", SETTINGS_SCRIPT, &gateway.url("/v1"), &home.token()])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("model:main\n"), "{text}");
    assert!(text.contains("model-notfound:404\n"), "{text}");
    assert!(text.contains("tools:400:") && text.contains("client-side tools"), "{text}");
    assert!(text.contains("reply:Bonjour\n"), "{text}");
    // The refused request never reached a model; the other reached it with the client's settings
    // (`main`'s first model speaks the Anthropic wire).
    let requests = home.mock.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let body = &requests[0].body;
    let temperature = body["temperature"].as_f64().unwrap_or(f64::NAN);
    assert!((temperature - 0.3).abs() < 1e-6, "{body}");
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["stop_sequences"], serde_json::json!(["END"]));
    let system = body["system"].as_str().unwrap_or_default();
    assert!(system.contains("Answer in French."), "{system}");
    // The agent's own prompt is still there, with the client's instructions after it.
    assert!(system.find("Answer in French.") > Some(0), "{system}");
}
