//! Import integration tests: real folders in a temporary directory imported into a real
//! `brain.db` through `import::import_path`, asserting which source the pages land in, what is
//! deleted, and what is skipped and why.

use std::path::Path;

use clawdia_brain::db::Db;
use clawdia_brain::import::{ImportReport, import_path};
use clawdia_brain::parse::ParseOptions;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(dir.join(name), text).expect("write");
}

fn import(db: &Db, path: &Path, source: &str) -> ImportReport {
    import_path(db, path, &ParseOptions::new(source), &mut ()).expect("import")
}

fn live(db: &Db, slug: &str) -> bool {
    db.get_page(slug).expect("get").is_some_and(|page| page.deleted_at.is_none())
}

/// Two folders called `notes`, each with `shared.md` and a file of its own.
fn two_notes_folders(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (a, b) = (root.join("a/notes"), root.join("b/notes"));
    write(&a, "shared.md", "# Shared\n\nfrom folder a\n");
    write(&a, "alpha.md", "# Alpha\n\nonly in a\n");
    write(&b, "shared.md", "# Shared\n\nfrom folder b\n");
    write(&b, "beta.md", "# Beta\n\nonly in b\n");
    (a, b)
}

#[test]
fn a_second_folder_with_the_same_name_is_another_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("brain.db")).expect("open");
    let (a, b) = two_notes_folders(dir.path());

    let first = import(&db, &a, "");
    assert_eq!((first.source.as_str(), first.written, first.source_note.as_deref()), ("notes", 2, None));
    let second = import(&db, &b, "");
    assert_eq!(second.source, "notes-2");
    assert_eq!((second.written, second.deleted.len()), (2, 0), "{second:?}");
    let note = second.source_note.expect("the user is told why");
    assert!(note.contains("`notes` is already") && note.contains("a/notes"), "{note}");
    for slug in ["notes/alpha", "notes/shared", "notes-2/beta", "notes-2/shared"] {
        assert!(live(&db, slug), "{slug} is live");
    }
    assert!(db.get_page("notes/shared").expect("get").expect("page").body.contains("from folder a"));

    // Each folder keeps its source; re-importing either deletes nothing of the other.
    let again = import(&db, &a, "");
    assert_eq!((again.source.as_str(), again.unchanged, again.deleted.len()), ("notes", 2, 0));
    std::fs::remove_file(b.join("beta.md")).expect("rm");
    let again = import(&db, &b, "");
    assert_eq!(
        (again.source.as_str(), again.deleted.as_slice()),
        ("notes-2", &["notes-2/beta".to_string()][..])
    );
    assert!(live(&db, "notes/alpha") && live(&db, "notes/shared"));

    // `--source` is an explicit identity: naming `notes` for folder b moves that source there,
    // and says so.
    let moved = import(&db, &b, "notes");
    assert_eq!(moved.deleted, ["notes/alpha"], "{moved:?}");
    let note = moved.source_note.expect("note");
    assert!(note.contains("was imported from") && note.contains("a/notes"), "{note}");
    assert!(db.get_page("notes/shared").expect("get").expect("page").body.contains("from folder b"));
}

#[test]
fn a_brain_from_before_sources_were_recorded_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("brain.db");
    let db = Db::open(&path).expect("open");
    let (a, b) = two_notes_folders(dir.path());
    write(&dir.path().join("mcp"), "todo.md", "# Todo\n\nbuy milk\n");
    assert_eq!(import(&db, &a, "").source, "notes");
    // An MCP client's page, stored under the writer name `mcp`.
    let mut page = clawdia_brain::parse::parse_markdown(
        "people/dana",
        "# Dana\n\nknows kubernetes",
        &ParseOptions::new("mcp"),
    )
    .expect("page");
    page.content_hash = "dana".into();
    db.put_page(&page).expect("put");
    drop(db);
    // A brain imported before version 4 has pages but no `sources` rows.
    let connection = rusqlite::Connection::open(&path).expect("raw");
    connection.execute("DELETE FROM sources", []).expect("forget sources");
    drop(connection);
    let db = Db::open(&path).expect("reopen");

    // Another folder with the same name does not take over the unrecorded source ...
    let other = import(&db, &b, "");
    assert_eq!((other.source.as_str(), other.deleted.len()), ("notes-2", 0), "{other:?}");
    assert!(live(&db, "notes/alpha"));
    // ... while the same folder re-imported is recognised by its pages and goes on as before.
    std::fs::remove_file(a.join("alpha.md")).expect("rm");
    let same = import(&db, &a, "");
    assert_eq!(same.source, "notes", "{same:?}");
    assert_eq!((same.unchanged, same.deleted.as_slice()), (1, &["notes/alpha".to_string()][..]));
    // A folder named like a writer neither takes its name nor deletes its pages.
    let folder = import(&db, &dir.path().join("mcp"), "");
    assert_eq!((folder.source.as_str(), folder.deleted.len()), ("mcp-2", 0), "{folder:?}");
    let explicit = import(&db, &dir.path().join("mcp"), "mcp");
    assert_eq!(explicit.deleted.len(), 0, "{explicit:?}");
    assert!(live(&db, "people/dana"), "an import deletes only pages under its own prefix");
}

#[test]
fn fifos_devices_and_unsupported_files_are_reported_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("brain.db")).expect("open");
    let notes = dir.path().join("notes");
    write(&notes, "kept.md", "# Kept\n\ntext\n");
    write(&notes, "photo.png", "not really a png");
    write(&notes, "archive.zip", "PK");
    let fifo = notes.join("pipe.md");
    #[allow(clippy::disallowed_methods, reason = "mkfifo(1) makes the FIFO under test")]
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());

    // Named directly: refused with what it is (reading a FIFO would wait forever).
    let error = import_path(&db, &fifo, &ParseOptions::default(), &mut ()).expect_err("a FIFO");
    assert!(error.to_string().contains("FIFO"), "{error}");
    let error =
        import_path(&db, Path::new("/dev/zero"), &ParseOptions::default(), &mut ()).expect_err("device");
    assert!(error.to_string().contains("/dev/zero: a character device"), "{error}");

    // Inside a folder: skipped with the reason, and the rest is imported.
    let report = import(&db, &notes, "");
    assert_eq!(report.written, 1, "{report:?}");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].0.ends_with("pipe.md") && report.problems[0].1.contains("FIFO"), "{report:?}");
    assert_eq!(report.unsupported.len(), 2);
    assert_eq!(report.skipped(), 3);
    assert_eq!(report.unsupported_summary(), ".png 1, .zip 1");

    // A file of an unsupported type named directly is a problem, not silence.
    let report = import(&db, &notes.join("photo.png"), "");
    assert_eq!((report.written, report.problems.len()), (0, 1), "{report:?}");
    assert!(report.problems[0].1.contains("not a text file type (.png)"), "{report:?}");
}
