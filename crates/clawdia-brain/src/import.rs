//! Importing a folder (or one file) into the brain: walk it (respecting .gitignore), skip files
//! whose content hash is unchanged, parse and store changed ones one page per transaction,
//! soft-delete pages of the source whose files are gone, and report per-file problems without
//! stopping. Embedding happens afterwards (`Brain::embed_pending`), so an import interrupted at
//! any point leaves every stored page complete.
//!
//! A source is a name (the first segment of its slugs) bound to the folder or file it was
//! imported from (`resolve_source`, the `sources` table): importing another folder with the same
//! name makes a new source (`notes-2`) instead of overwriting or deleting the first one's pages,
//! and `--source NAME` names the source explicitly (moving it to the new folder if it had
//! another one).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use clawdia_core::time::now_ms;

use crate::db::{BrainError, Db};
use crate::parse::{self, FileError, ParseOptions, Walked};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportReport {
    /// The source the files were imported as.
    pub source: String,
    /// How the source was chosen, when that is news to the user (a name already taken by
    /// another folder, a source that moved to this folder).
    pub source_note: Option<String>,
    pub files: usize,
    /// New or changed pages written.
    pub written: usize,
    pub unchanged: usize,
    pub chunks: usize,
    /// Slugs soft-deleted because their file is gone.
    pub deleted: Vec<String>,
    /// Files skipped, with the reason (one line each).
    pub problems: Vec<(PathBuf, String)>,
    /// Files skipped because no parser reads their type.
    pub unsupported: Vec<PathBuf>,
}

impl ImportReport {
    /// Everything skipped: problems and files of unsupported types.
    pub fn skipped(&self) -> usize {
        self.problems.len() + self.unsupported.len()
    }

    /// The unsupported files counted by extension, most frequent first
    /// (`.png 3, .zip 1, no extension 1`).
    pub fn unsupported_summary(&self) -> String {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for path in &self.unsupported {
            let what = path
                .extension()
                .map_or_else(|| "no extension".to_string(), |e| format!(".{}", e.to_string_lossy()));
            *counts.entry(what).or_default() += 1;
        }
        let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let parts: Vec<String> = counts.iter().map(|(what, count)| format!("{what} {count}")).collect();
        parts.join(", ")
    }
}

/// Progress callbacks: the number of files once known, then one call per file.
pub trait ImportProgress {
    fn total(&mut self, files: usize);
    fn file(&mut self, path: &Path);
}

impl ImportProgress for () {
    fn total(&mut self, _files: usize) {}
    fn file(&mut self, _path: &Path) {}
}

/// The default source name for a path: its folder (or file stem) name, slugified.
pub fn default_source(path: &Path) -> String {
    let name = path
        .canonicalize()
        .ok()
        .and_then(|p| p.file_stem().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "import".to_string());
    let slug = crate::types::slugify(&name);
    if slug.is_empty() { "import".to_string() } else { slug }
}

/// Imports `path`. A non-empty `options.source` names the source explicitly; an empty one lets
/// `resolve_source` choose it from the path.
pub fn import_path(
    db: &Db,
    path: &Path,
    options: &ParseOptions,
    progress: &mut dyn ImportProgress,
) -> Result<ImportReport, BrainError> {
    let meta =
        std::fs::metadata(path).map_err(|e| BrainError::Invalid(format!("{}: {e}", path.display())))?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(BrainError::Invalid(format!(
            "{}: {}; import a folder or a file",
            path.display(),
            parse::special_kind(&meta.file_type())
        )));
    }
    // The canonical path is the source's identity, so `./notes`, `notes/` and a symlink to it
    // are one source.
    let path = path.canonicalize().map_err(|e| BrainError::Invalid(format!("{}: {e}", path.display())))?;
    let (root, is_dir) = if meta.is_dir() {
        (path.clone(), true)
    } else {
        (path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/")), false)
    };
    let mut report = ImportReport::default();
    let mut files = Vec::new();
    for entry in parse::walk_entries(&path) {
        match entry {
            Ok(Walked::File(file)) => files.push(file),
            Ok(Walked::Unsupported(file)) => report.unsupported.push(file),
            Ok(Walked::Special(file, what)) => report.problems.push((file, what.to_string())),
            Err(error) => report.problems.push((path.clone(), error.to_string())),
        }
    }
    let explicit = Some(options.source.as_str()).filter(|source| !source.is_empty());
    let (source, note) = resolve_source(db, &path, explicit, &|name| {
        files.iter().map(|file| (parse::slug_for(name, &root, file), file.clone())).collect()
    })?;
    let options = ParseOptions { source: source.clone(), ..options.clone() };
    report.source = source;
    report.source_note = note;
    progress.total(files.len());
    let mut seen = HashSet::new();
    for file in &files {
        progress.file(file);
        report.files += 1;
        let slug = parse::slug_for(&options.source, &root, file);
        seen.insert(slug.clone());
        match import_file(db, &root, file, &slug, &options) {
            Ok(Some(chunks)) => {
                report.written += 1;
                report.chunks += chunks;
            }
            Ok(None) => report.unchanged += 1,
            Err(FileOutcome::Skipped(message)) => report.problems.push((file.clone(), message)),
            Err(FileOutcome::Fatal(error)) => return Err(error),
        }
    }
    if is_dir {
        let prefix = format!("{}/", parse::source_prefix(&options.source));
        report.deleted = db.delete_missing_under(&options.source, &prefix, &seen)?;
    }
    Ok(report)
}

/// The source an import of `path` (canonical) is stored as, and a note when the choice is news.
///
/// - An explicit name is used as given; if it was imported from another path before, it now
///   stands for this one (so its pages that this path lacks are deleted) and the note says so.
/// - Otherwise the name last used for this path, if any.
/// - Otherwise the path's name (`default_source`), or `name-2`, `name-3`, ... when that is
///   taken: recorded for another path, or holding pages with no recorded path of which this
///   import has none. Such pages come from an import made before sources were recorded (a
///   brain older than schema version 4) or from a writer of that name (`mcp`); the compatible
///   rule is that an unrecorded name is this path's when it has no live pages, or when one of
///   the files this import reads is already one of its pages with the same content (the same
///   folder re-imported after the upgrade). A folder whose every file changed since is taken
///   for another one: its pages go to `name-2`, and nothing is deleted.
///
/// `files(name)` gives the (slug, file) pairs this import would write as source `name`.
pub fn resolve_source(
    db: &Db,
    path: &Path,
    explicit: Option<&str>,
    files: &dyn Fn(&str) -> Vec<(String, PathBuf)>,
) -> Result<(String, Option<String>), BrainError> {
    let root = path.to_string_lossy().into_owned();
    let now = now_ms();
    if let Some(name) = explicit {
        let previous = db.record_source(name, &root, now)?;
        let note = previous.map(|previous| {
            format!("source `{name}` was imported from {previous}; it now stands for {root}")
        });
        return Ok((name.to_string(), note));
    }
    if let Some(name) = db.source_for_root(&root)? {
        db.record_source(&name, &root, now)?;
        return Ok((name, None));
    }
    let base = default_source(path);
    let mut taken_by = None;
    for n in 1..=MAX_SUFFIX {
        let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        let files = files(&name);
        let slugs: Vec<String> = files.iter().map(|(slug, _)| slug.clone()).collect();
        let usage = db.source_use(&name, &slugs)?;
        let free = match &usage.root {
            Some(_) => false,
            None => {
                usage.live_pages == 0 || files.iter().any(|(slug, file)| same_content(&usage, slug, file))
            }
        };
        if free {
            db.record_source(&name, &root, now)?;
            let note = taken_by.map(|other: String| {
                format!("source `{base}` is {other}, so this one is `{name}` (use --source NAME to choose)")
            });
            return Ok((name, note));
        }
        if taken_by.is_none() {
            taken_by = Some(match usage.root {
                Some(other) => format!("already {other}"),
                None => format!("already used by {} other page(s)", usage.live_pages),
            });
        }
    }
    Err(BrainError::Invalid(format!(
        "sources `{base}` to `{base}-{MAX_SUFFIX}` are all taken; name this one with --source NAME"
    )))
}

/// The highest suffix tried for a default source name (`notes-1000`).
const MAX_SUFFIX: usize = 1000;

/// Whether `file` holds what the live page `slug` of that source was made from.
fn same_content(usage: &crate::db::SourceUse, slug: &str, file: &Path) -> bool {
    let Some(stored) = usage.hashes.get(slug) else {
        return false;
    };
    // A file this large was never imported (the limit is far lower): not worth reading.
    let small = std::fs::metadata(file).is_ok_and(|meta| meta.is_file() && meta.len() <= 64 << 20);
    small && std::fs::read(file).is_ok_and(|bytes| parse::sha256_hex(&bytes) == *stored)
}

enum FileOutcome {
    /// This file is reported and skipped; the import goes on.
    Skipped(String),
    /// The database failed: stop.
    Fatal(BrainError),
}

/// `Some(chunks)` when written, `None` when unchanged.
fn import_file(
    db: &Db,
    root: &Path,
    file: &Path,
    slug: &str,
    options: &ParseOptions,
) -> Result<Option<usize>, FileOutcome> {
    let skipped = |e: FileError| FileOutcome::Skipped(e.to_string());
    if parse::kind_for(file).is_none() {
        return Err(skipped(parse::unsupported(file)));
    }
    let size = std::fs::metadata(file).map_err(|e| FileOutcome::Skipped(e.to_string()))?.len();
    if size > options.max_file_bytes {
        return Err(skipped(FileError::TooLarge { bytes: size, limit: options.max_file_bytes }));
    }
    let bytes = std::fs::read(file).map_err(|e| FileOutcome::Skipped(e.to_string()))?;
    let hash = parse::sha256_hex(&bytes);
    if db.page_hash(slug).map_err(FileOutcome::Fatal)?.as_deref() == Some(hash.as_str()) {
        return Ok(None);
    }
    let page = parse::parse_file(root, file, options).map_err(skipped)?;
    let chunks = page.chunks.len();
    db.put_page(&page).map_err(FileOutcome::Fatal)?;
    Ok(Some(chunks))
}
