//! Parser integration tests: the fixture notes folder and code repository under
//! `test_data/parse/` walked and parsed file by file as an importer would (errors reported per
//! file, the rest still parsed), and properties over arbitrary input (no panics, chunks cover
//! the body, same input same page).

use std::fs;
use std::path::{Path, PathBuf};

use clawdia_brain::parse::{
    FileError, Language, ParseOptions, parse_code, parse_file, parse_markdown, parse_text, walk,
};
use clawdia_brain::{ChunkInput, PageInput};
use proptest::prelude::*;
use serde_json::json;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/parse")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn relative(root: &Path, path: &Path) -> String {
    let parts: Vec<String> = path
        .strip_prefix(root)
        .unwrap()
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// Walks `root` and parses every file, as the importer does.
fn import(root: &Path, options: &ParseOptions) -> Vec<(String, Result<PageInput, FileError>)> {
    walk(root)
        .map(|path| {
            let path = path.expect("walk error");
            (relative(root, &path), parse_file(root, &path, options))
        })
        .collect()
}

fn parse_fixture(folder: &str, file: &str) -> PageInput {
    let root = fixtures().join(folder);
    parse_file(&root, &root.join(file), &ParseOptions::new(folder)).unwrap()
}

type Link<'a> = (&'a str, &'a str, Option<&'a str>);

fn links(page: &PageInput) -> Vec<Link<'_>> {
    page.links.iter().map(|link| (link.target.as_str(), link.kind.as_str(), link.alias.as_deref())).collect()
}

/// (context, first line, last line) of each chunk.
fn outline(page: &PageInput) -> Vec<(Option<&str>, u32, u32)> {
    page.chunks
        .iter()
        .map(|chunk| (chunk.context.as_deref(), chunk.start_line.unwrap(), chunk.end_line.unwrap()))
        .collect()
}

fn contexts(page: &PageInput) -> Vec<Option<&str>> {
    page.chunks.iter().map(|chunk| chunk.context.as_deref()).collect()
}

// ---------------------------------------------------------------------------------------------
// The notes folder

/// A parsed file's (slug, title, kind), or why it was not parsed.
type Outcome = Result<(String, String, String), FileError>;

#[test]
fn notes_folder_parses_each_file_or_reports_its_error() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("notes");
    copy_dir(&fixtures().join("notes"), &root);
    // Created here rather than committed: git itself would skip the ignored folder, and a
    // multi-megabyte fixture has no place in the repository.
    fs::create_dir(root.join("drafts")).unwrap();
    fs::write(root.join("drafts/secret.md"), "# Secret\n").unwrap();
    let huge = "All work and no play makes a dull note.\n".repeat(80_000);
    fs::write(root.join("huge.md"), &huge).unwrap();

    let outcomes: Vec<(String, Outcome)> = import(&root, &ParseOptions::new("notes"))
        .into_iter()
        .map(|(path, result)| {
            let result = result.map(|page| (page.slug, page.title, page.kind)).map_err(|error| match error {
                FileError::Frontmatter { line, message } => {
                    assert!(!message.is_empty() && !message.contains('\n'), "{message:?}");
                    FileError::Frontmatter { line, message: String::new() }
                }
                other => other,
            });
            (path, result)
        })
        .collect();

    let page =
        |slug: &str, title: &str, kind: &str| Ok((slug.to_string(), title.to_string(), kind.to_string()));
    let expected = vec![
        ("alice.md", page("notes/alice", "Alice Smith", "person")),
        ("broken.md", Err(FileError::Frontmatter { line: 3, message: String::new() })),
        ("huge.md", Err(FileError::TooLarge { bytes: huge.len() as u64, limit: 2 * 1024 * 1024 })),
        ("latin1.txt", Err(FileError::BadUtf8 { offset: 3 })),
        ("logo.md", Err(FileError::Binary)),
        ("meeting-notes.md", page("notes/meeting-notes", "meeting notes", "note")),
        ("projects/clawdia.md", page("notes/projects/clawdia", "Clawdia", "note")),
        ("reading-list.txt", page("notes/reading-list", "Reading list", "text")),
    ];
    let expected: Vec<_> = expected.into_iter().map(|(path, result)| (path.to_string(), result)).collect();
    // drafts/ (.gitignore), .gitignore and .obsidian/ (hidden) and photo.png (not text) are absent.
    assert_eq!(outcomes, expected);
}

#[test]
fn a_note_with_frontmatter_gets_its_title_kind_tags_and_typed_links() {
    let page = parse_fixture("notes", "alice.md");
    assert_eq!(
        (page.slug.as_str(), page.title.as_str(), page.kind.as_str()),
        ("notes/alice", "Alice Smith", "person")
    );
    assert_eq!(page.source, "notes");
    assert_eq!(page.frontmatter["tags"], json!(["engineering", "leads"]));
    assert_eq!(page.frontmatter["works_at"], json!("[[Acme Corp]]"));
    assert!(page.body.starts_with("# Alice\n"), "the body is the markdown after the frontmatter");
    assert_eq!(
        links(&page),
        vec![
            // Frontmatter values, by key.
            ("Bob", "team", None),
            ("Carol Jones", "team", Some("Carol")),
            ("Acme Corp", "works_at", None),
            // The body, in order; nothing from the code block or inline code.
            ("Bob", "mentions", None),
            ("Dana", "reports_to", None),
            ("Acme Corp", "mentions", Some("Acme")),
            ("Clawdia", "mentions", None),
        ]
    );
    assert_eq!(outline(&page), vec![(Some("Alice"), 8, 11), (Some("Alice > Projects"), 13, 21)]);
    assert!(page.chunks[1].text.contains("```text\n[[Not A Link]]"), "chunks hold the markdown source");
}

#[test]
fn a_note_is_cut_into_chunks_at_headings_with_the_heading_path_as_context() {
    let page = parse_fixture("notes", "projects/clawdia.md");
    assert_eq!(
        outline(&page),
        vec![
            (Some("Clawdia"), 1, 3),
            // `## Setup` has nothing of its own: it travels with its first subsection.
            (Some("Clawdia > Setup > Install"), 5, 9),
            (Some("Clawdia > Setup > Configure"), 11, 13),
            (Some("Clawdia > Usage"), 15, 17),
        ]
    );
    assert_eq!(page.chunks[1].text, "## Setup\n\n### Install\n\nRun `scripts/run.sh` on a fresh machine.");
    assert_eq!(
        links(&page),
        vec![("Alice", "mentions", None), ("Config Reference", "mentions", Some("the brain section"))]
    );
}

#[test]
fn a_note_without_title_or_heading_is_named_after_its_file_and_repeated_links_count_once() {
    let page = parse_fixture("notes", "meeting-notes.md");
    assert_eq!(page.title, "meeting notes");
    assert_eq!(page.frontmatter, json!({}));
    assert_eq!(links(&page), vec![("Alice", "mentions", None), ("Bob", "mentions", None)]);
    assert_eq!(outline(&page), vec![(None, 1, 1), (Some("Agenda"), 3, 6)]);
}

#[test]
fn a_text_file_is_titled_by_its_first_line() {
    let page = parse_fixture("notes", "reading-list.txt");
    assert_eq!((page.title.as_str(), page.kind.as_str()), ("Reading list", "text"));
    assert_eq!(outline(&page), vec![(None, 2, 4)]);
    assert!(page.links.is_empty());
}

#[test]
fn the_content_hash_is_the_sha256_of_the_raw_file() {
    let page = parse_fixture("notes", "meeting-notes.md");
    let raw = fs::read(fixtures().join("notes/meeting-notes.md")).unwrap();
    assert_eq!(page.content_hash, clawdia_brain::parse::sha256_hex(&raw));
    assert_eq!(page.content_hash.len(), 64);
}

#[test]
fn a_file_given_as_the_root_is_walked_and_parsed_alone() {
    let file = fixtures().join("notes/projects/clawdia.md");
    let found: Vec<PathBuf> = walk(&file).map(Result::unwrap).collect();
    assert_eq!(found, vec![file.clone()]);
    let page = parse_file(&file, &file, &ParseOptions::new("notes")).unwrap();
    assert_eq!(page.slug, "notes/clawdia");

    let picture = fixtures().join("notes/photo.png");
    let found: Vec<PathBuf> = walk(&picture).map(Result::unwrap).collect();
    assert_eq!(found, vec![picture.clone()], "named explicitly, so reported rather than skipped");
    assert!(matches!(
        parse_file(&picture, &picture, &ParseOptions::new("notes")),
        Err(FileError::Unsupported(_))
    ));
}

#[test]
fn a_missing_root_is_an_error_from_the_walk() {
    let results: Vec<_> = walk(&fixtures().join("no-such-folder")).collect();
    assert!(matches!(results.as_slice(), [Err(FileError::Io(_))]), "{results:?}");
}

// ---------------------------------------------------------------------------------------------
// The code repository

#[test]
fn code_files_get_one_chunk_per_item_with_its_doc_comment() {
    let root = fixtures().join("repo");
    let pages: Vec<(String, PageInput)> = import(&root, &ParseOptions::new("repo"))
        .into_iter()
        .map(|(path, result)| (path, result.unwrap()))
        .collect();
    let summary: Vec<(&str, &str, &str, Vec<Option<&str>>)> = pages
        .iter()
        .map(|(path, page)| (path.as_str(), page.slug.as_str(), page.title.as_str(), contexts(page)))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "cmd/main.go",
                "repo/cmd/main-go",
                "cmd/main.go",
                vec![None, Some("type Server"), Some("func (*Server) Run"), Some("func main")]
            ),
            (
                "src/lib.rs",
                "repo/src/lib-rs",
                "src/lib.rs",
                vec![None, Some("fn parse_config"), Some("struct Server"), Some("impl Server")]
            ),
            (
                "tools/report.py",
                "repo/tools/report-py",
                "tools/report.py",
                vec![None, Some("class Report"), Some("def load"), Some("def render")]
            ),
            (
                "web/app.js",
                "repo/web/app-js",
                "web/app.js",
                vec![None, Some("function loadInbox"), Some("class InboxView"), Some("function unreadCount")]
            ),
            (
                "web/types.ts",
                "repo/web/types-ts",
                "web/types.ts",
                vec![
                    None,
                    Some("interface Message"),
                    Some("type Inbox"),
                    Some("function countUnread"),
                    Some("class InboxStore")
                ]
            ),
        ]
    );
    for (_, page) in &pages {
        assert_eq!((page.kind.as_str(), page.links.len()), ("code", 0));
    }

    let rust = &pages[1].1;
    assert!(rust.chunks[1].text.starts_with("/// Parses `key=value` lines"), "doc comment attached");
    assert!(rust.chunks[2].text.starts_with("/// The server and the port it listens on.\n#[derive"));
    let python = &pages[2].1;
    assert!(python.chunks[1].text.starts_with("# Keeps the tasks of one week"));
    assert!(python.chunks[3].text.starts_with("@staticmethod\ndef render"));
    let go = &pages[0].1;
    assert_eq!(outline(go)[2], (Some("func (*Server) Run"), 10, 13));
}

#[test]
fn an_item_larger_than_a_chunk_is_split_into_its_members() {
    let root = fixtures().join("repo");
    let check = |file: &str, chunk_chars: std::ops::Range<usize>, expected: Vec<Option<&str>>| {
        let options = ParseOptions { chunk_chars, ..ParseOptions::new("repo") };
        let page = parse_file(&root, &root.join(file), &options).unwrap();
        assert_eq!(contexts(&page), expected, "{file}");
        assert_covers(&page.body, &page.chunks);
        page
    };
    // `impl Server` is 392 characters: its header joins the first method, its `}` the last.
    let page = check(
        "src/lib.rs",
        100..300,
        vec![
            None,
            Some("fn parse_config"),
            Some("struct Server"),
            Some("impl Server > fn new"),
            Some("impl Server > fn run"),
        ],
    );
    assert!(page.chunks[3].text.starts_with("impl Server {\n    /// Builds a server"));
    assert!(page.chunks[4].text.ends_with("        self.port\n    }\n}"));
    // A function too big for a chunk becomes line windows that keep its context.
    check(
        "src/lib.rs",
        50..150,
        vec![
            None,
            Some("fn parse_config"),
            Some("fn parse_config"),
            Some("struct Server"),
            Some("impl Server > fn new"),
            Some("impl Server > fn new"),
            Some("impl Server > fn run"),
        ],
    );
    check(
        "tools/report.py",
        100..200,
        vec![
            None,
            Some("class Report > def __init__"),
            Some("class Report > def done"),
            Some("def load"),
            Some("def render"),
        ],
    );
}

#[test]
fn broken_code_still_yields_chunks_for_all_of_it() {
    let text = "fn ok() -> u8 {\n    1\n}\n\nfn broken( {\n    let x = ;\n\nstruct After { a: u8 }\n";
    let page = parse_code("repo/x-rs", text, Language::Rust, &ParseOptions::default()).unwrap();
    assert!(!page.chunks.is_empty());
    assert_covers(text, &page.chunks);
}

// ---------------------------------------------------------------------------------------------
// Properties

fn non_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Every chunk is a piece of the source found on its lines, and the chunks in order hold every
/// non-whitespace character of `body`.
fn assert_covers(body: &str, chunks: &[ChunkInput]) {
    let joined: String = chunks.iter().map(|chunk| non_whitespace(&chunk.text)).collect();
    assert_eq!(joined, non_whitespace(body), "chunks must cover the body in order");
}

fn assert_chunks_on_their_lines(file: &str, chunks: &[ChunkInput]) {
    let lines: Vec<&str> = file.split('\n').collect();
    for chunk in chunks {
        assert!(!chunk.text.trim().is_empty());
        let (start, end) = (chunk.start_line.unwrap() as usize, chunk.end_line.unwrap() as usize);
        assert!(1 <= start && start <= end && end <= lines.len(), "{start}..={end} of {}", lines.len());
        let span = lines[start - 1..end].join("\n");
        assert!(span.contains(&chunk.text), "chunk {:?} not on lines {start}..={end}", chunk.text);
    }
}

fn fragments(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(str::to_string),
        2 => "[a-zA-Z ]{1,12}",
        1 => any::<String>(),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|pieces| pieces.concat())
}

const MARKDOWN: &[&str] = &[
    "# ",
    "## ",
    "### ",
    "\n",
    "\n\n",
    "---\n",
    "...\n",
    "title: x\n",
    "type: [\n",
    "[[",
    "]]",
    "|",
    "::",
    "#",
    "```\n",
    "`",
    "- ",
    "> ",
    "1. ",
    "\r\n",
    "Setup",
    "===\n",
    "works_at: \"[[Acme]]\"\n",
    "    ",
    "[^1]: ",
    "| a | b |\n",
    "\u{feff}",
    "é",
    "🦀",
];

const CHAT: &[&str] = &[
    "Ann: ",
    "Bob Lee: ",
    "\nAnn: ",
    "\nBob Lee: ",
    "\n",
    "\r\n",
    "\n\n",
    "[21/03/2023, 14:02:11] ",
    "3/21/23, 2:02\u{202f}PM - ",
    "<ann> ",
    "[14:02] ",
    "hi there",
    "NOTE: ",
    ": ",
    "http://x",
    "é",
    "🦀",
];

/// Texts shaped like chat transcripts: turn lines (some stamped) with stray continuation lines.
fn transcripts() -> impl Strategy<Value = String> {
    let stamp =
        proptest::sample::select(&["", "", "[21/03/2023, 14:02:11] ", "3/21/23, 2:02\u{202f}PM - "][..]);
    let speaker = proptest::sample::select(&["Ann: ", "Bob Lee: ", "<ann> ", "", "+49 170: "][..]);
    let line = (stamp, speaker, fragments(CHAT))
        .prop_map(|(stamp, speaker, rest)| format!("{stamp}{speaker}{rest}"));
    (proptest::collection::vec(line, 0..30), any::<bool>())
        .prop_map(|(lines, crlf)| lines.join(if crlf { "\r\n" } else { "\n" }))
}

const CODE: &[&str] = &[
    "fn ",
    "impl ",
    "struct ",
    "mod ",
    "trait ",
    "class ",
    "def ",
    "function ",
    "func ",
    "interface ",
    "export ",
    "const ",
    "=> ",
    "{",
    "}",
    "(",
    ")",
    ":",
    ";",
    "\n",
    "\n    ",
    "\n\n",
    "// ",
    "/// ",
    "/** ",
    "*/",
    "# ",
    "#[x]\n",
    "@d\n",
    "\"",
    "'",
    "`",
    "=",
    "<T>",
    "type ",
    "return ",
    "é",
    "🦀",
];

fn small_sizes() -> impl Strategy<Value = std::ops::Range<usize>> {
    prop_oneof![Just(300..1200), (1usize..60, 0usize..200).prop_map(|(start, extra)| start..start + extra)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn markdown_never_panics_and_its_chunks_cover_the_body(
        text in prop_oneof![fragments(MARKDOWN), any::<String>()],
        sizes in small_sizes(),
    ) {
        let options = ParseOptions { chunk_chars: sizes, ..ParseOptions::new("notes") };
        match parse_markdown("notes/a", &text, &options) {
            Ok(page) => {
                assert_covers(&page.body, &page.chunks);
                assert_chunks_on_their_lines(&text, &page.chunks);
                let max = options.chunk_chars.end.saturating_sub(1).max(options.chunk_chars.start).max(1);
                for chunk in &page.chunks {
                    prop_assert!(chunk.text.chars().count() <= max);
                }
                prop_assert_eq!(parse_markdown("notes/a", &text, &options).unwrap(), page);
            }
            Err(FileError::Frontmatter { line, message }) => {
                prop_assert!(line >= 2 && !message.contains('\n'));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn text_never_panics_and_its_chunks_cover_the_body(
        text in prop_oneof![fragments(MARKDOWN), transcripts(), any::<String>()],
        sizes in small_sizes(),
    ) {
        let options = ParseOptions { chunk_chars: sizes, ..ParseOptions::new("notes") };
        let page = parse_text("notes/a", &text, &options).unwrap();
        assert_covers(&page.body, &page.chunks);
        assert_chunks_on_their_lines(&text, &page.chunks);
        let max = options.chunk_chars.end.saturating_sub(1).max(options.chunk_chars.start).max(1);
        for chunk in &page.chunks {
            prop_assert!(chunk.text.chars().count() <= max);
        }
        prop_assert!(page.title.chars().count() <= 120 && !page.title.is_empty());
        prop_assert_eq!(parse_text("notes/a", &text, &options).unwrap(), page);
    }

    #[test]
    fn code_never_panics_and_its_chunks_cover_the_file(
        bytes in prop_oneof![fragments(CODE).prop_map(String::into_bytes), proptest::collection::vec(any::<u8>(), 0..400)],
        sizes in small_sizes(),
    ) {
        let text = String::from_utf8_lossy(&bytes);
        let options = ParseOptions { chunk_chars: sizes, ..ParseOptions::new("repo") };
        for language in [Language::Rust, Language::Python, Language::JavaScript, Language::TypeScript, Language::Tsx, Language::Go] {
            let page = parse_code("repo/a", &text, language, &options).unwrap();
            assert_covers(&text, &page.chunks);
            assert_chunks_on_their_lines(&text, &page.chunks);
            prop_assert_eq!(parse_code("repo/a", &text, language, &options).unwrap(), page);
        }
    }
}
