//! Unit tests of the parsers: file kinds and slugs, frontmatter, wikilinks, titles, code item
//! contexts per language, and the size and error edges. Whole fixture folders and the
//! properties over arbitrary input are in `tests/it/parse.rs`.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::types::{ChunkInput, LinkInput};

fn options() -> ParseOptions {
    ParseOptions::new("notes")
}

#[test]
fn kinds_by_extension() {
    let cases: &[(&str, Option<FileKind>)] = &[
        ("a/b.md", Some(FileKind::Markdown)),
        ("b.MARKDOWN", Some(FileKind::Markdown)),
        ("b.mdx", Some(FileKind::Markdown)),
        ("main.rs", Some(FileKind::Code(Language::Rust))),
        ("x.py", Some(FileKind::Code(Language::Python))),
        ("x.js", Some(FileKind::Code(Language::JavaScript))),
        ("x.mjs", Some(FileKind::Code(Language::JavaScript))),
        ("x.cjs", Some(FileKind::Code(Language::JavaScript))),
        ("x.jsx", Some(FileKind::Code(Language::JavaScript))),
        ("x.ts", Some(FileKind::Code(Language::TypeScript))),
        ("x.tsx", Some(FileKind::Code(Language::Tsx))),
        ("x.go", Some(FileKind::Code(Language::Go))),
        ("x.txt", Some(FileKind::Text)),
        ("x.rst", Some(FileKind::Text)),
        ("x.yaml", Some(FileKind::Text)),
        ("x.c", Some(FileKind::Text)),
        ("x.sql", Some(FileKind::Text)),
        ("Makefile", Some(FileKind::Text)),
        ("LICENSE", Some(FileKind::Text)),
        ("x.png", None),
        ("x.tar.gz", None),
        ("x.pdf", None),
        ("x.sqlite", None),
        ("prod.env", None),
        ("web/package-lock.json", None),
        ("dist/app.min.js", None),
        ("randomname", None),
    ];
    for (path, expected) in cases {
        assert_eq!(kind_for(Path::new(path)), *expected, "{path}");
    }
}

#[test]
fn slugs() {
    let root = Path::new("/home/me/notes");
    let cases: &[(&str, &str, &str)] = &[
        ("notes", "/home/me/notes/People/Alice Smith.md", "notes/people/alice-smith"),
        ("repo", "/home/me/notes/src/main.rs", "repo/src/main-rs"),
        ("repo", "/home/me/notes/web/App.test.tsx", "repo/web/app-test-tsx"),
        ("notes", "/home/me/notes/todo.txt", "notes/todo"),
        ("repo", "/home/me/notes/include/main.h", "repo/include/main-h"),
        ("repo", "/home/me/notes/config.toml", "repo/config-toml"),
        ("repo", "/home/me/notes/Makefile", "repo/makefile"),
        ("notes", "/home/me/notes/Ünïcode ñotes.md", "notes/ünïcode-ñotes"),
        ("notes", "/home/me/notes/___.md", "notes/untitled"),
        ("", "/home/me/notes/a/b.md", "a/b"),
        ("Work Notes/2024", "/home/me/notes/a.md", "work-notes/2024/a"),
        // The root is the file itself.
        ("notes", "/home/me/notes", "notes/notes"),
    ];
    for (source, path, expected) in cases {
        assert_eq!(slug_for(source, root, Path::new(path)), *expected, "{path}");
    }
    assert_eq!(slug_for("notes", Path::new("/x/a.md"), Path::new("/x/a.md")), "notes/a");
}

#[test]
fn sha256_is_lower_case_hex() {
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn errors_display_on_one_line() {
    let errors = [
        FileError::TooLarge { bytes: 3, limit: 2 },
        FileError::Binary,
        FileError::BadUtf8 { offset: 7 },
        FileError::Frontmatter { line: 3, message: "bad".into() },
        FileError::Io("gone".into()),
        FileError::Unsupported("x".into()),
    ];
    for error in errors {
        let shown = error.to_string();
        assert!(!shown.contains('\n') && !shown.is_empty(), "{shown}");
    }
    assert_eq!(FileError::BadUtf8 { offset: 7 }.to_string(), "not valid UTF-8 (first bad byte at offset 7)");
}

/// A note's (frontmatter, body), or the line of its frontmatter error.
type Frontmatter = Result<(serde_json::Value, String), usize>;

/// Parses `text` as a note and returns (frontmatter, body) or the frontmatter error line.
fn frontmatter_of(text: &str) -> Frontmatter {
    match parse_markdown("notes/a", text, &options()) {
        Ok(page) => Ok((page.frontmatter, page.body)),
        Err(FileError::Frontmatter { line, .. }) => Err(line),
        Err(other) => panic!("unexpected {other}"),
    }
}

#[test]
fn frontmatter() {
    let ok = |value: serde_json::Value, body: &str| Ok((value, body.to_string()));
    let cases: Vec<(&str, Frontmatter)> = vec![
        ("---\na: 1\n---\nbody\n", ok(json!({"a": 1}), "body\n")),
        ("---\r\na: x\r\n---\r\nbody", ok(json!({"a": "x"}), "body")),
        ("\u{feff}---\na: 1\n...\nbody", ok(json!({"a": 1}), "body")),
        ("---\n---\nbody", ok(json!({}), "body")),
        ("---\n~\n---\nbody", ok(json!({}), "body")),
        ("---\na: 1\n---", ok(json!({"a": 1}), "")),
        // No closing line: not frontmatter, the `---` is a thematic break.
        ("---\na: 1\nbody", ok(json!({}), "---\na: 1\nbody")),
        ("no frontmatter\n---\na: 1\n---\n", ok(json!({}), "no frontmatter\n---\na: 1\n---\n")),
        ("---", ok(json!({}), "---")),
        // Malformed: the line is counted in the file.
        ("---\ntitle: x\nbad: [1, 2\n---\nbody", Err(3)),
        ("---\na: b: c\n---\n", Err(2)),
        ("\n---\na: 1\n---\n", ok(json!({}), "\n---\na: 1\n---\n")),
        // Not a mapping.
        ("---\n- a\n- b\n---\nbody", Err(2)),
        ("---\njust text\n---\nbody", Err(2)),
    ];
    for (text, expected) in cases {
        assert_eq!(frontmatter_of(text), expected, "{text:?}");
    }
}

fn links_of(text: &str) -> Vec<LinkInput> {
    parse_markdown("notes/a", text, &options()).unwrap().links
}

fn link(target: &str, kind: &str, alias: Option<&str>) -> LinkInput {
    LinkInput { target: target.into(), kind: kind.into(), alias: alias.map(Into::into) }
}

#[test]
fn wikilinks() {
    let cases: Vec<(&str, Vec<LinkInput>)> = vec![
        ("[[Page]]", vec![link("Page", "mentions", None)]),
        ("[[Page|the page]]", vec![link("Page", "mentions", Some("the page"))]),
        ("[[works_at::Acme Corp]]", vec![link("Acme Corp", "works_at", None)]),
        ("[[works_at::Acme|ACME]]", vec![link("Acme", "works_at", Some("ACME"))]),
        ("[[not a relation::X]]", vec![link("not a relation::X", "mentions", None)]),
        ("[[Page#Section]] [[#Local]]", vec![link("Page", "mentions", None)]),
        ("[[Page|]]", vec![link("Page", "mentions", None)]),
        ("[[A]] and [[A]] and [[A|a]]", vec![link("A", "mentions", None), link("A", "mentions", Some("a"))]),
        ("`[[Code]]`\n\n```\n[[Fenced]]\n```\n\n    [[Indented]]\n", vec![]),
        (
            "> quoted [[Q]]\n- item [[I]]\n\n| [[T]] |\n|---|\n",
            vec![link("Q", "mentions", None), link("I", "mentions", None), link("T", "mentions", None)],
        ),
        ("[[]] [[ ]] [[unclosed", vec![]),
        ("[regular](link) ![[embed.png]]", vec![]),
        (
            "---\nboss: [[Dana]]\nteam:\n  - \"[[Bob]]\"\n  - [[Carol]]\n  - plain\nnote: \"see [[X]]\"\ntags: [\"[[T]]\"]\n---\n[[Body]]",
            vec![
                link("Dana", "boss", None),
                link("Bob", "team", None),
                link("Carol", "team", None),
                link("Body", "mentions", None),
            ],
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(links_of(text), expected, "{text:?}");
    }
}

#[test]
fn note_titles_and_kinds() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("---\ntitle: From FM\ntype: Project\n---\n# Heading\n", "notes/x", "From FM", "project"),
        ("---\nkind: person\n---\n# Heading\n", "notes/x", "Heading", "person"),
        ("intro\n\n## Two\n\n# One `code`\n", "notes/x", "One code", "note"),
        ("- # In a list\n\nSetext\n======\n", "notes/x", "Setext", "note"),
        ("no heading", "notes/meeting-notes", "meeting notes", "note"),
        ("", "notes/people/bob_smith", "bob smith", "note"),
        ("---\ntitle: 2024\n---\n", "notes/x", "2024", "note"),
    ];
    for (text, slug, title, kind) in cases {
        let page = parse_markdown(slug, text, &options()).unwrap();
        assert_eq!((page.title.as_str(), page.kind.as_str()), (*title, *kind), "{text:?}");
        assert_eq!(page.content_hash, sha256_hex(text.as_bytes()));
    }
}

#[test]
fn markdown_sections() {
    let text = "---\na: 1\n---\nintro\n\n# A\n\n## B\n\n### C\ntext c\n\n## D\n\n> # not a section\n\n# E\n";
    let page = parse_markdown("notes/x", text, &options()).unwrap();
    let outline: Vec<(Option<&str>, Option<u32>, Option<u32>)> =
        page.chunks.iter().map(|c| (c.context.as_deref(), c.start_line, c.end_line)).collect();
    assert_eq!(
        outline,
        vec![
            (None, Some(4), Some(4)),
            (Some("A > B > C"), Some(6), Some(11)),
            (Some("A > D"), Some(13), Some(15)),
            (Some("E"), Some(17), Some(17)),
        ]
    );
}

#[test]
fn text_titles() {
    let long = "x".repeat(200);
    let cases: &[(&str, &str, &str)] = &[
        ("\n\n  First line  \nsecond", "notes/a", "First line"),
        ("", "notes/empty-file", "empty file"),
        (" \n\t\n", "notes/blank", "blank"),
        (&long, "notes/a", &long[..120]),
    ];
    for (text, slug, title) in cases {
        let page = parse_text(slug, text, &options()).unwrap();
        assert_eq!((page.title.as_str(), page.kind.as_str()), (*title, "text"));
    }
}

fn code_contexts(text: &str, language: Language) -> Vec<Option<String>> {
    parse_code("repo/a", text, language, &ParseOptions::new("repo"))
        .unwrap()
        .chunks
        .into_iter()
        .map(|c| c.context)
        .collect()
}

#[test]
fn code_item_contexts_per_language() {
    let cases: &[(Language, &str, &[Option<&str>])] = &[
        (
            Language::Rust,
            "use a::b;\n\n/// Doc.\n#[derive(Debug)]\npub struct S;\n\nimpl std::fmt::Display for S {}\n\ntrait T { fn x(); }\n\nmod m {}\n\nmacro_rules! mm { () => {} }\n\nenum E { A }\n\ntype Alias = u8;\n",
            &[
                None,
                Some("struct S"),
                Some("impl std::fmt::Display for S"),
                Some("trait T"),
                Some("mod m"),
                Some("macro_rules! mm"),
                Some("enum E"),
                Some("type Alias"),
            ],
        ),
        (
            Language::Python,
            "import os\n\n@dataclass\nclass A:\n    x: int\n\nasync def run():\n    pass\n\nVALUE = 3\n",
            &[None, Some("class A"), Some("def run"), None],
        ),
        (
            Language::JavaScript,
            "/** Doc */\nexport default function () {}\n\nfunction* gen() {}\n\nexport const f = function () {};\n\nlet x = 1, y = () => 2;\n",
            &[Some("export default"), Some("function gen"), Some("function f"), None],
        ),
        (
            Language::TypeScript,
            "enum E { A }\n\nnamespace N { export const a = 1; }\n\ndeclare function d(): void;\n\nexport abstract class C { abstract m(): void; }\n",
            &[Some("enum E"), Some("namespace N"), Some("function d"), Some("class C")],
        ),
        (
            Language::Tsx,
            "export function App(): JSX.Element {\n  return <div className=\"app\">hi</div>;\n}\n",
            &[Some("function App")],
        ),
        (
            Language::Go,
            "package p\n\ntype (\n\tA int\n\tB string\n)\n\nfunc (A) Name() string { return \"a\" }\n\nvar v = 1\n",
            &[None, Some("type A, B"), Some("func (A) Name"), None],
        ),
    ];
    for (language, text, expected) in cases {
        let expected: Vec<Option<String>> = expected.iter().map(|c| c.map(String::from)).collect();
        assert_eq!(code_contexts(text, *language), expected, "{language:?}");
    }
}

#[test]
fn nested_containers_are_split_to_their_members() {
    let text = "mod outer {\n    impl Inner {\n        fn first(&self) -> u32 {\n            1 + 2 + 3 + 4 + 5\n        }\n\n        fn second(&self) -> u32 {\n            6 + 7 + 8 + 9 + 10\n        }\n    }\n}\n";
    let options = ParseOptions { chunk_chars: 20..120, ..ParseOptions::new("repo") };
    let page = parse_code("repo/a", text, Language::Rust, &options).unwrap();
    let contexts: Vec<Option<&str>> = page.chunks.iter().map(|c| c.context.as_deref()).collect();
    assert_eq!(
        contexts,
        vec![Some("mod outer > impl Inner > fn first"), Some("mod outer > impl Inner > fn second")]
    );
    assert!(page.chunks[0].text.starts_with("mod outer {\n    impl Inner {\n        fn first"));
    assert!(page.chunks[1].text.starts_with("        fn second"), "a member keeps its indentation");
}

#[test]
fn a_long_line_is_cut_to_the_maximum() {
    let text = format!("const BIG = \"{}\";\n", "é".repeat(500));
    let options = ParseOptions { chunk_chars: 50..101, ..ParseOptions::new("repo") };
    let chunks: Vec<ChunkInput> = parse_code("repo/a", &text, Language::JavaScript, &options).unwrap().chunks;
    assert!(chunks.len() >= 5);
    assert!(chunks.iter().all(|c| c.text.chars().count() <= 100 && c.start_line == Some(1)));
    let joined: String = chunks.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(joined, text.trim_end());
}

#[test]
fn odd_chunk_sizes_do_not_panic() {
    for chunk_chars in [0..0, 0..1, Range { start: 5, end: 2 }, 1..2, usize::MAX..usize::MAX] {
        let options = ParseOptions { chunk_chars, ..ParseOptions::new("x") };
        let text = "# A\n\nsome words here\n\nfn main() {}\n";
        assert!(!parse_markdown("x/a", text, &options).unwrap().chunks.is_empty());
        assert!(!parse_text("x/a", text, &options).unwrap().chunks.is_empty());
        assert!(!parse_code("x/a", text, Language::Rust, &options).unwrap().chunks.is_empty());
    }
}

#[test]
fn parse_file_refuses_big_and_unsupported_files_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let note = dir.path().join("a.md");
    std::fs::write(&note, "# Hello\n").unwrap();
    let small = ParseOptions { max_file_bytes: 4, ..options() };
    assert_eq!(parse_file(dir.path(), &note, &small), Err(FileError::TooLarge { bytes: 8, limit: 4 }));
    let exact = ParseOptions { max_file_bytes: 8, ..options() };
    assert_eq!(parse_file(dir.path(), &note, &exact).unwrap().title, "Hello");

    let archive = dir.path().join("a.zip");
    std::fs::write(&archive, "PK").unwrap();
    assert!(matches!(parse_file(dir.path(), &archive, &options()), Err(FileError::Unsupported(_))));
    let missing = dir.path().join("gone.md");
    assert!(matches!(parse_file(dir.path(), &missing, &options()), Err(FileError::Io(_))));

    // The file stem, not the lossy slug, names a note without a title.
    let named = dir.path().join("Alice Smith.md");
    std::fs::write(&named, "\u{feff}no heading\n").unwrap();
    let page = parse_file(dir.path(), &named, &options()).unwrap();
    assert_eq!(
        (page.slug.as_str(), page.title.as_str(), page.body.as_str()),
        ("notes/alice-smith", "Alice Smith", "no heading\n")
    );
}

#[test]
fn binary_detection_looks_only_at_the_first_8_kib() {
    let dir = tempfile::tempdir().unwrap();
    let late_nul = dir.path().join("late.txt");
    let mut bytes = vec![b'a'; 9000];
    bytes[8500] = 0;
    std::fs::write(&late_nul, &bytes).unwrap();
    // Past the probe a NUL is just an odd character, and the text is still valid UTF-8.
    assert!(parse_file(dir.path(), &late_nul, &options()).is_ok());
    bytes[100] = 0;
    std::fs::write(&late_nul, &bytes).unwrap();
    assert_eq!(parse_file(dir.path(), &late_nul, &options()), Err(FileError::Binary));
}

#[test]
fn punctuation_only_code_is_still_cut_to_the_maximum() {
    let text = "(".repeat(5_000);
    let options = ParseOptions { chunk_chars: 50..101, ..ParseOptions::new("repo") };
    for language in [Language::Rust, Language::Python, Language::Go] {
        let chunks = parse_code("repo/a", &text, language, &options).unwrap().chunks;
        assert_eq!(chunks.len(), 50, "{language:?}");
        assert!(chunks.iter().all(|c| c.text.len() == 100));
    }
}

#[test]
fn segments_cover_the_text_within_the_limit_and_prefer_blank_lines() {
    let cases: &[(&str, usize)] = &[
        ("", 64),
        ("short", 64),
        (&"word ".repeat(100), 64),
        (&"x".repeat(1000), 64),
        (&"é".repeat(300), 65),
        (&"para one.\n\npara two is longer.\nline\n".repeat(20), 100),
    ];
    for (text, limit) in cases {
        let ranges = segments(text, *limit);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(text.len()));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        assert!(
            ranges.iter().all(|r| r.len() <= *limit && (r.len() > limit / 4 || r.end == text.len())),
            "{ranges:?}"
        );
    }
    let paragraphs = "para one.\n\npara two is longer.\nline\n".repeat(20);
    assert!(
        segments(&paragraphs, 100)
            .iter()
            .all(|r| paragraphs[..r.end].ends_with("\n\n") || r.end == paragraphs.len())
    );
}

fn contexts(page: &PageInput) -> Vec<&str> {
    page.chunks.iter().map(|chunk| chunk.context.as_deref().unwrap_or("")).collect()
}

#[test]
fn a_chat_transcript_is_one_chunk_per_turn_with_its_neighbours_as_context() {
    let text = "1:56 pm on 8 May, 2023\n\
        Caroline: I went to a support group yesterday.\n\
        Melanie: Wow, what happened there?\n\
        \n\
        Caroline: The stories were inspiring.\n\
        It made me want to help others.\n\
        Melanie: Where did you hear about it?\n\
        Caroline: A friend told me.\n";
    let page = parse_text("chats/may", text, &options()).unwrap();
    assert_eq!(page.kind, "conversation");
    assert_eq!(page.title, "1:56 pm on 8 May, 2023", "the heading line titles the page");
    assert_eq!(page.frontmatter, json!({ "speakers": ["Caroline", "Melanie"] }));
    let texts: Vec<&str> = page.chunks.iter().map(|chunk| chunk.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "1:56 pm on 8 May, 2023\nCaroline: I went to a support group yesterday.",
            "Melanie: Wow, what happened there?",
            "Caroline: The stories were inspiring.\nIt made me want to help others.",
            "Melanie: Where did you hear about it?",
            "Caroline: A friend told me.",
        ],
        "the heading travels with the first turn, a continuation line with its turn"
    );
    let lines: Vec<(Option<u32>, Option<u32>)> =
        page.chunks.iter().map(|c| (c.start_line, c.end_line)).collect();
    assert_eq!(
        lines,
        [(Some(1), Some(2)), (Some(3), Some(3)), (Some(5), Some(6)), (Some(7), Some(7)), (Some(8), Some(8))]
    );
    assert_eq!(
        contexts(&page),
        [
            "Caroline | Wow, what happened there?",
            "Melanie | I went to a support group yesterday. | The stories were inspiring. It made me want to help others.",
            "Caroline | Wow, what happened there? | Where did you hear about it?",
            "Melanie | The stories were inspiring. It made me want to help others. | A friend told me.",
            "Caroline | Where did you hear about it?",
        ],
        "the speaker, then the neighbouring messages without their speakers' names"
    );
}

#[test]
fn chat_exports_with_time_stamps_and_irc_logs_are_transcripts() {
    let ios = "[21/03/2023, 14:02:11] Bob: hi\n[21/03/2023, 14:02:30] Ann Lee: hey Bob\n\
        [21/03/2023, 14:03:01] Bob: lunch?\n[21/03/2023, 14:03:12] Ann Lee: sure\n";
    let page = parse_text("chats/whatsapp-chat-with-ann-lee", ios, &options()).unwrap();
    assert_eq!(page.kind, "conversation");
    assert_eq!(page.title, "whatsapp chat with ann lee", "no heading line: the file's name");
    assert_eq!(contexts(&page)[1], "Ann Lee, 21/03/2023, 14:02:30 | hi | lunch?");

    let android = "21/03/2023, 14:01 - Messages and calls are end-to-end encrypted.\n\
        3/21/23, 2:02\u{202f}PM - Bob: hi\n3/21/23, 2:02\u{202f}PM - +49 170 1234567: who is this?\n\
        3/21/23, 2:03\u{202f}PM - Bob: it's Bob\n3/21/23, 2:04\u{202f}PM - +49 170 1234567: ah, hi!\n";
    let page = parse_text("chats/bob", android, &options()).unwrap();
    assert_eq!(page.kind, "conversation");
    assert_eq!(page.title, "bob", "a stamped system line is no title");
    assert_eq!(page.frontmatter, json!({ "speakers": ["Bob", "+49 170 1234567"] }));
    assert!(page.chunks[0].text.starts_with("21/03/2023, 14:01 - Messages"));

    let irc = "[14:02] <ann> anyone around?\n[14:03] <bob> yes\n[14:03] <ann> the build broke\n[14:04] <bob> on it\n";
    let page = parse_text("logs/irc", irc, &options()).unwrap();
    assert_eq!(page.kind, "conversation");
    assert_eq!(contexts(&page)[2], "ann, 14:03 | yes | on it");
}

#[test]
fn field_lists_labels_and_prose_are_not_transcripts() {
    let cases = [
        "Date: 2023-05-08\nLocation: Berlin\nAttendees: Ann, Bob\nTopic: budget\n\nWe agreed on the plan.\n",
        "NOTE: back up first\nTODO: rotate keys\nNOTE: check logs\nTODO: renew cert\n",
        "Ann: hi\nBob: hey\nAnn: ok\n",
        "See https://example.com: it has it.\nAnd http://x.y: too.\nmore: prose\nmore: prose\n",
        "One paragraph of prose.\nTwo: lines of it, with a colon.\nThree lines.\nFour lines.\nFive.\nSix.\n\
         Ann: hi\nBob: hey\nAnn: ok\nBob: fine\n",
        "Ann: hi\nBob: hey\nAnn: ok\nBob: fine\nand a long\nstory\nthat goes\non and on\nfor many\nlines\n",
    ];
    for text in cases {
        let page = parse_text("notes/a", text, &options()).unwrap();
        assert_eq!(page.kind, "text", "{text:?}");
    }
}

#[test]
fn a_turn_longer_than_a_chunk_is_split_and_every_piece_keeps_the_turn_context() {
    let long = "word ".repeat(400);
    let text = format!("Ann: short\nBob: {long}\nAnn: ok\nBob: bye\n");
    let page = parse_text("chats/a", &text, &options()).unwrap();
    assert_eq!(page.kind, "conversation");
    let bob: Vec<&ChunkInput> = page
        .chunks
        .iter()
        .filter(|c| c.context.as_deref().is_some_and(|c| c.starts_with("Bob | short")))
        .collect();
    assert!(bob.len() >= 2, "{:?}", page.chunks);
    assert!(page.chunks.iter().all(|chunk| chunk.text.chars().count() < 1200));
}

#[test]
fn only_txt_files_are_read_as_transcripts() {
    let dir = tempfile::tempdir().unwrap();
    let chat = "Ann: hi\nBob: hey\nAnn: lunch?\nBob: sure\n";
    for name in ["chat.txt", "chat.log", "chat.yaml"] {
        std::fs::write(dir.path().join(name), chat).unwrap();
    }
    let kind = |name: &str| parse_file(dir.path(), &dir.path().join(name), &options()).unwrap().kind;
    assert_eq!(kind("chat.txt"), "conversation");
    assert_eq!(kind("chat.log"), "text");
    assert_eq!(kind("chat.yaml"), "text");
}
