//! Rarely used tools are offered through `tool_search`: named in its description, loaded by a
//! search for the next model call and the rest of the session, never beyond what the gate allows.

use super::*;

/// An on-demand echo tool in `group`.
struct Rare(ToolSpec, &'static str);

#[async_trait]
impl Tool for Rare {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    fn group(&self) -> &str {
        self.1
    }
    fn on_demand(&self) -> bool {
        true
    }
    async fn call(&self, _c: &ToolContext, _arguments: serde_json::Value) -> Result<String, ToolError> {
        Ok(format!("{} ran", self.0.name))
    }
}

fn rare(name: &str, description: &str, group: &'static str) -> Arc<dyn Tool> {
    Arc::new(Rare(
        ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters: serde_json::json!({"type": "object"}),
        },
        group,
    ))
}

fn names(request: &ChatRequest) -> Vec<String> {
    request.tools.iter().map(|t| t.name.clone()).collect()
}

fn on_demand_harness() -> Harness {
    let mut h = harness();
    h.agents.add(
        main_spec(
            h.dir.path(),
            ToolPolicy { allow: vec!["test".into()], deny: vec!["hidden_fact".into()], ask: Vec::new() },
            Vec::new(),
        ),
        vec![
            echo("echo", "test"),
            rare("add_fact", "Record a dated fact about an entity.", "test"),
            rare("schedule", "Add a scheduled job.", "test"),
            rare("hidden_fact", "A fact tool the policy denies.", "test"),
        ],
    );
    h
}

#[tokio::test]
async fn rare_tools_wait_behind_tool_search_and_stay_loaded_for_the_session() {
    let h = on_demand_harness();
    h.models.push(tool_reply(vec![call("c1", "tool_search", r#"{"query":"record a fact"}"#)]));
    h.models.push(tool_reply(vec![call("c2", "add_fact", "{}")]));
    h.models.push(Ok(clawdia_core::Message::assistant("recorded")));
    h.models.push(Ok(clawdia_core::Message::assistant("later")));
    h.agents.run_turn(request(Some("s1"), "remember this"), &Collect::default()).await.unwrap();
    h.agents.run_turn(request(Some("s1"), "and now?"), &Collect::default()).await.unwrap();
    let requests = h.models.requests.lock().unwrap();
    // First call: the rare tools are named by tool_search, not sent; the denied one is neither.
    assert_eq!(names(&requests[0]), ["echo", "tool_search"]);
    let search = &requests[0].tools[1].description;
    assert!(search.contains("add_fact, schedule") && !search.contains("hidden_fact"), "{search}");
    // After the search: add_fact is offered, schedule still waits.
    assert_eq!(names(&requests[1]), ["add_fact", "echo", "tool_search"]);
    let texts = results_of(&h, "s1");
    assert!(
        texts[0].contains("- add_fact: Record a dated fact") && !texts[0].contains("schedule"),
        "{}",
        texts[0]
    );
    assert!(texts[1].contains("add_fact ran"), "{}", texts[1]);
    // The next turn of the session still has it.
    assert_eq!(names(&requests[3]), ["add_fact", "echo", "tool_search"]);
}

#[tokio::test]
async fn search_grants_nothing_the_gate_denies_and_named_tools_are_offered_directly() {
    let h = on_demand_harness();
    h.models.push(tool_reply(vec![
        call("c1", "tool_search", r#"{"query":"hidden_fact"}"#),
        call("c2", "hidden_fact", "{}"),
    ]));
    h.models.push(Ok(clawdia_core::Message::assistant("no")));
    h.agents.run_turn(request(Some("s1"), "go"), &Collect::default()).await.unwrap();
    let texts = results_of(&h, "s1");
    assert!(texts[0].contains("No tool matches") && !texts[0].contains("hidden_fact ran"), "{}", texts[0]);
    assert!(texts[1].contains("not allowed"), "{}", texts[1]);
    // A turn that names a rare tool in tools_allow gets it directly, without tool_search.
    h.models.push(Ok(clawdia_core::Message::assistant("ok")));
    let named = TurnRequest { tools_allow: Some(vec!["schedule".into()]), ..request(Some("s2"), "go") };
    h.agents.run_turn(named, &Collect::default()).await.unwrap();
    let requests = h.models.requests.lock().unwrap();
    assert_eq!(names(requests.last().unwrap()), ["schedule"]);
}
