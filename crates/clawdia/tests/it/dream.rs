//! `clawdia brain dream [--dry-run]` end to end: the real binary, a real home made by `init`
//! (which writes the dream prompts), a session created by `clawdia chat`, and the mock LLM over
//! HTTP as both the scorer and the distiller.

use crate::support::{Home, Reply, stderr, stdout};

fn dream_home() -> Home {
    let home = Home::new();
    let path = home.path().join("clawdia.toml");
    let mut config = std::fs::read_to_string(&path).expect("config");
    config.push_str(
        "\n[brain.embedder]\nkind = \"none\"\n\n[brain.dream]\nscorer_model = \"mock/cheap\"\nmin_score = 5\n",
    );
    std::fs::write(path, config).expect("config");
    home
}

#[test]
fn dream_cli_dry_run_then_real_run_then_nothing_new() {
    let home = dream_home();
    for name in ["dream-score.md", "dream-distil.md"] {
        assert!(home.path().join("prompts").join(name).exists(), "init writes prompts/{name}");
    }
    // The owner edits the scorer prompt; the run uses the edit.
    let edited =
        "Score this transcript for the brain. EDITED-BY-OWNER. Answer {\"score\": n, \"reason\": r}.";
    std::fs::write(home.path().join("prompts/dream-score.md"), edited).expect("edit");

    home.mock.push(Reply::text("Noted."));
    let out = home.run(&["chat", "-m", "Carol's birthday is on 1990-05-04; she lives in Lyon."]);
    assert!(out.status.success(), "{}", stderr(&out));

    home.mock.push(Reply::text(r#"{"score": 8, "reason": "a birthday and a home town"}"#));
    let out = home.run(&["brain", "dream", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("would distil (score 8: a birthday and a home town)"), "{text}");
    assert!(text.contains("dry run: nothing written"), "{text}");
    let scorer = home.mock.requests().into_iter().last().expect("scorer request");
    assert_eq!(scorer.body["model"], "cheap");
    assert!(scorer.body.to_string().contains("EDITED-BY-OWNER"), "the edited prompt is used");
    let out = home.run(&["brain", "get", "people/carol"]);
    assert!(!out.status.success(), "a dry run writes no page");

    home.mock.push(Reply::text(r#"{"score": 8, "reason": "a birthday and a home town"}"#));
    home.mock.push(Reply::tool_calls(vec![
        (
            "brain_put_page",
            r#"{"slug": "people/carol", "title": "Carol", "body": "Carol lives in Lyon. Born 1990-05-04."}"#,
        ),
        ("brain_add_fact", r#"{"subject": "Carol", "predicate": "lives_in", "object": "Lyon"}"#),
    ]));
    home.mock.push(Reply::text("Recorded Carol."));
    let out = home.run(&["brain", "dream"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("distilled (score 8)") && text.contains("1 distilled"), "{text}");
    let out = home.run(&["brain", "get", "people/carol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains("Lyon") && page.contains("lives_in"), "{page}");

    let before = home.mock.requests().len();
    let out = home.run(&["brain", "dream"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("nothing new since the last dream"), "{}", stdout(&out));
    assert_eq!(home.mock.requests().len(), before, "no model call when nothing is new");
}

#[test]
fn dream_cli_refuses_an_agent_without_brain_tools() {
    let home = Home::with_agent_extra("[agents.main.tools]\nallow = [\"fs\"]\n");
    let out = home.run(&["brain", "dream"]);
    assert!(!out.status.success());
    let error = stderr(&out);
    assert!(error.contains("may not use `brain_put_page`") && !error.contains("panicked"), "{error}");
}

#[test]
fn dream_cli_reports_a_malformed_scorer_answer_as_a_failure_and_retries_it() {
    let home = dream_home();
    home.mock.push(Reply::text("Noted."));
    let out = home.run(&["chat", "-m", "Dan moved to Porto in March."]);
    assert!(out.status.success(), "{}", stderr(&out));

    home.mock.push(Reply::text("I'd say this is quite worthy, 8 out of 10!"));
    let out = home.run(&["brain", "dream"]);
    assert!(!out.status.success(), "a malformed answer is not an ok run: {}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("failed (no score): malformed scorer answer"), "{text}");
    assert!(text.contains("partial") && text.contains("1 failed"), "{text}");
    assert!(stderr(&out).contains("1 transcript slice(s) failed"), "{}", stderr(&out));

    // Positive control: the same chat is scored again, and a well-formed answer settles it.
    home.mock.push(Reply::text(r#"{"score": 1, "reason": "a move, but vague"}"#));
    let out = home.run(&["brain", "dream"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("skipped (score 1: a move, but vague)"), "{}", stdout(&out));
    let before = home.mock.requests().len();
    let out = home.run(&["brain", "dream"]);
    assert!(stdout(&out).contains("nothing new since the last dream"), "{}", stdout(&out));
    assert_eq!(home.mock.requests().len(), before);
}
