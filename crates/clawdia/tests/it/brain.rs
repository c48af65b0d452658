//! The knowledge brain end to end: `clawdia brain import|query|get|stats` on a real notes
//! folder, incremental re-import, the agent's brain tools through a turn, semantic search with
//! the local embedding model, and `clawdia brain mcp` driven by the official `mcp` Python SDK.

use std::process::Command;

use crate::support::*;

/// A small notes folder with frontmatter, wikilinks, typed links and files that must be skipped.
fn notes(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("notes");
    std::fs::create_dir_all(dir.join("people")).unwrap();
    std::fs::write(
        dir.join("people/alice.md"),
        "---\ntitle: Alice Martin\ntype: person\nworks_at: \"[[Acme Corp]]\"\n---\n# Alice Martin\n\nAlice leads the kubernetes migration and mentors [[Bob]].\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("people/bob.md"),
        "# Bob\n\nBob writes the billing service in Rust with [[Alice Martin|Alice]].\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("acme.md"),
        "---\ntype: company\n---\n# Acme Corp\n\nA company that sells anvils. See [[Alice Martin]].\n",
    )
    .unwrap();
    std::fs::write(dir.join("broken.md"), "---\ntitle: [unclosed\n---\nbody\n").unwrap();
    std::fs::write(dir.join("image.md"), b"\x89PNG\r\n\x1a\n\0\0\0binary").unwrap();
    dir
}

fn embedder_none(home: &Home) {
    let path = home.path().join("clawdia.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str("\n[brain.embedder]\nkind = \"none\"\n");
    std::fs::write(path, config).unwrap();
}

fn query_json(home: &Home, text: &str) -> Vec<serde_json::Value> {
    let out = home.run(&["brain", "query", text, "--json", "-k", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap().as_array().unwrap().clone()
}

#[test]
fn import_query_get_and_incremental_reimport() {
    let home = Home::new();
    embedder_none(&home);
    let dir = notes(home.path());
    let out = home.run(&["brain", "import", dir.to_str().unwrap(), "--source", "notes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("3 written"), "{text}");
    let err = stderr(&out);
    assert!(err.contains("broken.md") && err.contains("image.md"), "bad files are reported: {err}");

    let hits = query_json(&home, "kubernetes migration");
    assert_eq!(hits[0]["slug"], "notes/people/alice", "{hits:?}");
    for key in ["slug", "title", "score", "snippet", "source"] {
        assert!(hits[0].get(key).is_some(), "{key} missing in {:?}", hits[0]);
    }
    let out = home.run(&["brain", "query", "kubernetes"]);
    assert!(stderr(&out).contains("full-text results only"), "says it fell back: {}", stderr(&out));

    let out = home.run(&["brain", "get", "notes/people/alice"]);
    let page = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        page.contains("Alice Martin") && page.contains("works_at") && page.contains("notes/people/bob"),
        "{page}"
    );

    // Unchanged files are skipped; a changed one is rewritten; a deleted one is soft-deleted.
    let out = home.run(&["brain", "import", dir.to_str().unwrap(), "--source", "notes"]);
    assert!(stdout(&out).contains("0 written") && stdout(&out).contains("3 unchanged"), "{}", stdout(&out));
    std::fs::write(dir.join("people/bob.md"), "# Bob\n\nBob now maintains the postgres cluster.\n").unwrap();
    std::fs::remove_file(dir.join("acme.md")).unwrap();
    let out = home.run(&["brain", "import", dir.to_str().unwrap(), "--source", "notes"]);
    assert!(stdout(&out).contains("1 written") && stdout(&out).contains("1 deleted"), "{}", stdout(&out));
    assert_eq!(query_json(&home, "postgres")[0]["slug"], "notes/people/bob");
    assert!(query_json(&home, "billing").is_empty(), "old text is gone");
    assert!(query_json(&home, "anvils").is_empty(), "deleted page is gone");
    let out = home.run(&["brain", "stats"]);
    assert!(out.status.success());
    let stats: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(stats["pages"], 2, "{stats}");
}

#[test]
fn agents_use_the_brain_through_tools() {
    let home = Home::new();
    embedder_none(&home);
    home.mock.push(Reply::tool_calls(vec![(
        "brain_put_page",
        r##"{"slug":"people/carol","body":"# Carol\n\nCarol's birthday is on 3 June."}"##,
    )]));
    home.mock.push(Reply::text("Saved."));
    let out = home.run(&["chat", "-m", "remember carol's birthday"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(query_json(&home, "birthday")[0]["slug"], "people/carol");
    home.mock.push(Reply::tool_calls(vec![("brain_query", r#"{"query":"carol birthday"}"#)]));
    home.mock.push(Reply::text("3 June."));
    let out = home.run(&["chat", "-m", "when is carol's birthday?"]);
    assert_eq!(stdout(&out), "3 June.\n");
    let last = home.mock.requests().pop().unwrap().body.to_string();
    assert!(
        last.contains("people/carol") && last.contains("3 June"),
        "the tool result reached the model: {last}"
    );
}

fn model_available() -> bool {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let dir = std::env::var_os("CLAWDIA_TEST_MODELS")
        .map(|d| std::path::PathBuf::from(d).join("all-MiniLM-L6-v2"))
        .unwrap_or_else(|| home.join(".clawdia/models/all-MiniLM-L6-v2"));
    dir.join("model.safetensors").exists()
}

#[test]
fn semantic_search_with_the_local_model() {
    if !model_available() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must fetch the embedding model (scripts/fetch-models.sh)"
        );
        eprintln!("skipped: the embedding model is not installed (run scripts/fetch-models.sh)");
        return;
    }
    let home = Home::new();
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let user_home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let source = std::env::var_os("CLAWDIA_TEST_MODELS")
        .map(|d| std::path::PathBuf::from(d).join("all-MiniLM-L6-v2"))
        .unwrap_or_else(|| user_home.join(".clawdia/models/all-MiniLM-L6-v2"));
    std::os::unix::fs::symlink(source, models.join("all-MiniLM-L6-v2")).unwrap();
    let dir = home.path().join("kb");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pets.md"), "# Pets\n\nMy dog Rex loves long walks in the park.\n").unwrap();
    std::fs::write(dir.join("cars.md"), "# Cars\n\nThe car needs new tyres before winter.\n").unwrap();
    let out = home.run(&["brain", "import", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("embedded 2 chunks with local/all-MiniLM-L6-v2"), "{}", stdout(&out));
    // No word in common with the page: only the vector arm can find it.
    let out = home.run(&["brain", "query", "puppy exercise", "--json", "--mode", "vector"]);
    let hits: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(hits[0]["slug"], "kb/pets", "{hits}");
    let out = home.run(&["brain", "query", "puppy exercise"]);
    assert!(!stderr(&out).contains("full-text results only"), "{}", stderr(&out));
}

const MCP_SCRIPT: &str = r##"
import asyncio, json, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

def text(result):
    return result.content[0].text

def is_error(result):
    return bool(getattr(result, "isError", None) or getattr(result, "is_error", None))

async def main():
    params = StdioServerParameters(command=sys.argv[1], args=["--home", sys.argv[2], "brain", "mcp"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            names = sorted(t.name for t in tools)
            print("tools:" + ",".join(names))
            schema = [getattr(t, "inputSchema", None) or getattr(t, "input_schema", None) for t in tools if t.name == "add_fact"][0]
            print("schema:" + ",".join(sorted(schema["required"])))
            r = await session.call_tool("put_page", {"slug": "team/platform", "body": "# Platform team\n\nRuns the [[Kubernetes]] clusters. Lead: [[Dana]]."})
            print("put:" + str(json.loads(text(r))["changed"]))
            await session.call_tool("put_page", {"slug": "people/dana", "body": "---\ntype: person\n---\n# Dana\n\nDana leads the platform team and knows kubernetes."})
            await session.call_tool("add_fact", {"subject": "platform team", "predicate": "size", "object": "5", "valid_from": "2026-01-01"})
            r = await session.call_tool("add_fact", {"subject": "platform team", "predicate": "size", "object": "8", "valid_from": "2026-04-01"})
            print("closed:" + str(len(json.loads(text(r))["closed"])))
            r = await session.call_tool("query", {"query": "kubernetes clusters", "as_of": "2026-03-15"})
            result = json.loads(text(r))
            print("top:" + result["hits"][0]["slug"])
            print("size_march:" + ",".join(f["object"] for f in result["facts"] if f["predicate"] == "size"))
            r = await session.call_tool("search", {"query": "kubernetes", "mode": "fulltext", "exclude": ["team/"]})
            print("search:" + ",".join(h["slug"] for h in json.loads(text(r))["hits"]))
            r = await session.call_tool("get_page", {"slug": "team/platform"})
            print("page:" + str("Platform team" in text(r)))
            r = await session.call_tool("find_experts", {"topic": "kubernetes"})
            print("expert:" + json.loads(text(r))[0]["slug"])
            await session.call_tool("add_timeline", {"at": "2026-02-01", "text": "Platform team formed", "slug": "team/platform"})
            r = await session.call_tool("timeline", {"slug": "team/platform"})
            print("timeline:" + str(len(json.loads(text(r)))))
            r = await session.call_tool("get_page", {"slug": "nope"})
            print("missing_is_error:" + str(is_error(r)))
            r = await session.call_tool("add_fact", {"subject": "x"})
            print("bad_args_is_error:" + str(is_error(r)))
            r = await session.call_tool("add_fact", {"subject": "platform team", "predicate": "lead", "object": "Dana", "since": "2026-02-01"})
            print("since_ok:" + str(not is_error(r)))
            r = await session.call_tool("query", {"query": "kubernetes clusters", "as_of": "2026-03-15"})
            print("lead_march:" + ",".join(f["object"] + "@" + f["valid_from"][:10] for f in json.loads(text(r))["facts"] if f["predicate"] == "lead"))
            r = await session.call_tool("query", {"query": "kubernetes clusters", "as_of": "2026-01-15"})
            print("lead_january:" + ",".join(f["object"] for f in json.loads(text(r))["facts"] if f["predicate"] == "lead"))
            refused = [
                ("query", {"query": "kubernetes", "k": -1}),
                ("search", {"query": "kubernetes", "k": 0}),
                ("search", {"query": "kubernetes", "k": 2.5}),
                ("search", {"query": "kubernetes", "mode": "semantic"}),
                ("put_page", {"slug": "x/y", "body": "# Y", "colour": "red"}),
                ("add_take", {"claim": "c", "holder": "owner", "weight": 2}),
                ("add_fact", {"subject": "a", "predicate": "b", "object": "c", "since": "2026-01-01", "valid_from": "2026-02-01"}),
            ]
            for name, args in refused:
                r = await session.call_tool(name, args)
                print("refused:" + name + ":" + str(is_error(r)) + ":" + text(r).replace("\n", " "))
            r = await session.call_tool("search", {"query": "kubernetes", "k": 1})
            print("k1:" + str(len(json.loads(text(r))["hits"])))
            r = await session.call_tool("get_page", {"slug": "x/y"})
            print("unknown_arg_wrote_nothing:" + str(is_error(r)))

asyncio.run(main())
"##;

#[test]
fn mcp_server_works_with_the_official_python_sdk() {
    let available = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !available {
        assert!(std::env::var_os("CI").is_none(), "CI must install the mcp Python SDK (pip install mcp)");
        eprintln!("skipped: python3 with the `mcp` package is not installed (pip install mcp)");
        return;
    }
    let home = Home::new();
    embedder_none(&home);
    let out = Command::new("python3")
        .args(["-c", MCP_SCRIPT, binary(), home.path().to_str().unwrap()])
        .env_remove("CLAWDIA_HOME")
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    for expected in [
        "tools:add_fact,add_take,add_timeline,find_experts,get_page,put_page,query,search,timeline\n",
        "schema:object,predicate,subject\n",
        "put:True\n",
        "closed:1\n",
        "top:team/platform\n",
        "size_march:5\n",
        "search:people/dana\n",
        "page:True\n",
        "expert:people/dana\n",
        "timeline:1\n",
        "missing_is_error:True\n",
        "bad_args_is_error:True\n",
        "since_ok:True\n",
        "lead_march:Dana@2026-02-01\n",
        "lead_january:\n",
        "refused:query:True:`k` must be an integer from 1 to 50, got -1\n",
        "refused:search:True:`k` must be an integer from 1 to 100, got 0\n",
        "refused:search:True:`k` must be an integer from 1 to 100, got 2.5\n",
        "refused:search:True:`mode` must be one of hybrid, fulltext, vector, got \"semantic\"\n",
        "refused:put_page:True:unknown argument `colour` for `put_page` (it takes body, slug, title)\n",
        "refused:add_take:True:`weight` must be a number from 0 to 1, got 2\n",
        "refused:add_fact:True:`since` and `valid_from` name the same date; give one of them\n",
        "k1:1\n",
        "unknown_arg_wrote_nothing:True\n",
    ] {
        assert!(text.contains(expected), "expected {expected:?} in:\n{text}\n{}", stderr(&out));
    }
}

fn write_note(dir: &std::path::Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn a_second_folder_with_the_same_name_is_imported_beside_the_first() {
    let home = Home::new();
    embedder_none(&home);
    let (a, b) = (home.path().join("a/notes"), home.path().join("b/notes"));
    write_note(&a, "shared.md", "# Shared\n\nthe lighthouse from folder a\n");
    write_note(&a, "alpha.md", "# Alpha\n\nthe lighthouse keeper\n");
    write_note(&b, "shared.md", "# Shared\n\nthe lighthouse from folder b\n");
    write_note(&b, "beta.md", "# Beta\n\nthe lighthouse lamp\n");

    let out = home.run(&["brain", "import", a.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("into source `notes`: 2 written"), "{}", stdout(&out));
    let out = home.run(&["brain", "import", b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("into source `notes-2`: 2 written") && text.contains("0 deleted"), "{text}");
    assert!(stderr(&out).contains("note: source `notes` is already"), "{}", stderr(&out));

    let mut slugs: Vec<String> =
        query_json(&home, "lighthouse").iter().map(|hit| hit["slug"].as_str().unwrap().to_string()).collect();
    slugs.sort();
    assert_eq!(slugs, ["notes-2/beta", "notes-2/shared", "notes/alpha", "notes/shared"]);
    let out = home.run(&["brain", "get", "notes/shared"]);
    assert!(stdout(&out).contains("from folder a"), "the first folder's page is untouched: {}", stdout(&out));

    let out = home.run(&["brain", "stats"]);
    let stats: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let roots: Vec<(String, String)> = stats["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["source"].as_str().unwrap().to_string(), s["root"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(roots.len(), 2, "{stats}");
    assert!(roots[0].0 == "notes" && roots[0].1.ends_with("/a/notes"), "{stats}");
    assert!(roots[1].0 == "notes-2" && roots[1].1.ends_with("/b/notes"), "{stats}");

    // Re-importing the first folder finds its own source and deletes nothing.
    let out = home.run(&["brain", "import", a.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("into source `notes`: 0 written") && text.contains("2 unchanged"), "{text}");
    assert!(text.contains("0 deleted"), "{text}");
}

#[test]
fn importing_a_fifo_or_a_device_fails_and_skipped_files_are_named() {
    let home = Home::new();
    embedder_none(&home);
    let out = home.run(&["brain", "import", "/dev/zero"]);
    assert!(!out.status.success(), "{}", stdout(&out));
    let error = stderr(&out);
    assert!(error.contains("/dev/zero: a character device, not a regular file"), "{error}");
    assert!(!error.contains("panicked") && stdout(&out).is_empty(), "{error}");

    let dir = home.path().join("kb");
    write_note(&dir, "kept.md", "# Kept\n\nthe harbour\n");
    write_note(&dir, "photo.png", "not text");
    write_note(&dir, "song.mp3", "not text");
    let fifo = dir.join("pipe.md");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let out = home.run(&["brain", "import", fifo.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("a FIFO (named pipe), not a regular file"), "{}", stderr(&out));

    let out = home.run(&["brain", "import", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("1 written") && stdout(&out).contains("3 skipped"), "{}", stdout(&out));
    let error = stderr(&out);
    assert!(error.contains("pipe.md: a FIFO (named pipe), not a regular file"), "{error}");
    assert!(error.contains("skipped 2 file(s) of types the brain does not read: .mp3 1, .png 1"), "{error}");

    let out = home.run(&["brain", "import", dir.join("photo.png").to_str().unwrap()]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(stderr(&out).contains("photo.png: not imported: unsupported file: not a text file type (.png)"));
}

#[test]
fn get_suggests_the_page_a_short_or_mistyped_slug_meant() {
    let home = Home::new();
    embedder_none(&home);
    let dir = home.path().join("notes");
    write_note(&dir, "rust-borrowing.md", "# Rust borrowing\n\nShared and mutable references.\n");
    write_note(&dir.join("go"), "channels.md", "# Channels\n\nbuffered and unbuffered\n");
    write_note(&dir.join("rust"), "channels.md", "# Channels\n\nmpsc\n");
    let out = home.run(&["brain", "import", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = home.run(&["brain", "get", "notes/rust-borrowing"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (asked, expected) in [
        ("rust-borrowing", "no page `rust-borrowing`; did you mean `notes/rust-borrowing`?"),
        ("Rust Borrowing", "did you mean `notes/rust-borrowing`?"),
        ("notes/rust-borowing", "did you mean `notes/rust-borrowing`?"),
        ("channels", "did you mean one of `notes/go/channels`, `notes/rust/channels`?"),
    ] {
        let out = home.run(&["brain", "get", asked]);
        assert!(!out.status.success(), "{asked}");
        assert!(stderr(&out).contains(expected), "{asked}: {}", stderr(&out));
    }
    let out = home.run(&["brain", "get", "zebra"]);
    assert_eq!(stderr(&out), "clawdia: error: no page `zebra`\n");
}

#[test]
fn query_output_explains_its_scores() {
    let home = Home::new();
    embedder_none(&home);
    let dir = notes(home.path());
    let out = home.run(&["brain", "import", dir.to_str().unwrap(), "--source", "notes"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = home.run(&["brain", "query", "Alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("hybrid search: % = score as a share of the best hit's"), "{text}");
    assert!(header.contains("words #n / meaning #n = rank in the full-text / vector search"), "{text}");
    let first = lines.next().unwrap();
    assert!(first.starts_with("1. ") && first.ends_with("[100%, words #1]"), "{text}");
    assert!(!text.contains(".0000]"), "no bare fused scores: {text}");

    let hits = query_json(&home, "Alice");
    assert!(hits.len() >= 2, "{hits:?}");
    assert_eq!((hits[0]["rank"].as_u64(), hits[0]["relevance"].as_f64()), (Some(1), Some(100.0)));
    assert_eq!(hits[0]["fts_rank"], 1);
    for hit in &hits {
        for key in [
            "slug",
            "title",
            "score",
            "snippet",
            "source",
            "relevance",
            "fts_rank",
            "vector_rank",
            "expanded",
        ] {
            assert!(hit.get(key).is_some(), "{key} missing in {hit}");
        }
        let share = hit["relevance"].as_f64().unwrap();
        let expected = hit["score"].as_f64().unwrap() / hits[0]["score"].as_f64().unwrap() * 100.0;
        assert!((share - expected).abs() < 0.06, "{hit}");
    }
}
