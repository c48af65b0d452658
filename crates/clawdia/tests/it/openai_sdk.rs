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
