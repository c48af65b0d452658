//! Importing a folder (or one file) into the brain: walk it (respecting .gitignore), skip files
//! whose content hash is unchanged, parse and store changed ones one page per transaction,
//! soft-delete pages of the source whose files are gone, and report per-file problems without
//! stopping. Embedding happens afterwards (`Brain::embed_pending`), so an import interrupted at
//! any point leaves every stored page complete.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::db::{BrainError, Db};
use crate::parse::{self, FileError, ParseOptions};

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportReport {
    pub files: usize,
    /// New or changed pages written.
    pub written: usize,
    pub unchanged: usize,
    pub chunks: usize,
    /// Slugs soft-deleted because their file is gone.
    pub deleted: Vec<String>,
    /// Files skipped, with the reason (one line each).
    pub problems: Vec<(PathBuf, String)>,
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

/// Imports `path` as `options.source`.
pub fn import_path(
    db: &Db,
    path: &Path,
    options: &ParseOptions,
    progress: &mut dyn ImportProgress,
) -> Result<ImportReport, BrainError> {
    let meta =
        std::fs::metadata(path).map_err(|e| BrainError::Invalid(format!("{}: {e}", path.display())))?;
    let (root, is_dir) = if meta.is_dir() {
        (path.to_path_buf(), true)
    } else {
        (path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")), false)
    };
    let mut report = ImportReport::default();
    let mut files = Vec::new();
    for entry in parse::walk(path) {
        match entry {
            Ok(file) if parse::kind_for(&file).is_some() => files.push(file),
            Ok(_) => {}
            Err(error) => report.problems.push((path.to_path_buf(), error.to_string())),
        }
    }
    progress.total(files.len());
    let mut seen = HashSet::new();
    for file in &files {
        progress.file(file);
        report.files += 1;
        let slug = parse::slug_for(&options.source, &root, file);
        seen.insert(slug.clone());
        match import_file(db, &root, file, &slug, options) {
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
        report.deleted = db.delete_missing(&options.source, &seen)?;
    }
    Ok(report)
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
