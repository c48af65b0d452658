//! Parsers that turn files into `PageInput`s: markdown notes (frontmatter, wikilinks, heading
//! sections), code (tree-sitter items) and plain text (chat transcripts one chunk per turn).
//! Also the file-level plumbing an importer needs around them: which files to look at (`walk`,
//! `kind_for`), what a file's page is called (`slug_for`), and reading one file safely
//! (`parse_file`: size cap before reading, binary and UTF-8 checks, content hash).
//!
//! Invariants: nothing read from a file panics these functions (bad input is a `FileError`);
//! the same input gives the same `PageInput`; a page's chunks, in order, hold every
//! non-whitespace character of its body (chunking only drops whitespace).

mod code;
mod conversation;
mod markdown;
mod text;

#[cfg(test)]
mod tests;

use std::io::Read as _;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use clawdia_core::one_line;
use sha2::{Digest as _, Sha256};
use text_splitter::ChunkCapacity;

pub use code::parse_code;
pub use markdown::parse_markdown;
pub use text::parse_text;

use crate::types::{PageInput, slugify};

/// How files are turned into pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseOptions {
    /// The import source name (`--source`): the first segment of every slug and `PageInput::source`.
    pub source: String,
    /// Files larger than this are refused with `FileError::TooLarge` before they are read.
    pub max_file_bytes: u64,
    /// Target chunk size in characters: chunks aim for at least `start` and stay below `end`
    /// (all-MiniLM-L6-v2 reads about 256 word pieces, roughly 1,000 characters of prose).
    pub chunk_chars: Range<usize>,
}

impl ParseOptions {
    /// The defaults with the given source name.
    pub fn new(source: impl Into<String>) -> Self {
        Self { source: source.into(), ..Self::default() }
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self { source: String::new(), max_file_bytes: 2 * 1024 * 1024, chunk_chars: 300..1200 }
    }
}

/// Why one file could not become a page. The importer reports it for that file and carries on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("file too large: {bytes} bytes (limit {limit})")]
    TooLarge { bytes: u64, limit: u64 },
    #[error("binary file (NUL byte in the first 8 KiB)")]
    Binary,
    #[error("not valid UTF-8 (first bad byte at offset {offset})")]
    BadUtf8 { offset: usize },
    #[error("bad frontmatter at line {line}: {message}")]
    Frontmatter { line: usize, message: String },
    #[error("I/O error: {0}")]
    Io(String),
    #[error("unsupported file: {0}")]
    Unsupported(String),
}

/// What parser a file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Markdown,
    Code(Language),
    Text,
}

/// The languages with a tree-sitter grammar, chunked by syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
}

/// Extensions of text files read as text (besides the prose ones in `PROSE_EXTENSIONS`),
/// whitespace-separated.
const TEXT_EXTENSIONS: &str = "
    csv tsv log toml yaml yml json jsonl ndjson ini cfg conf properties xml
    sh bash zsh fish ps1 bat c h cc cpp cxx hpp hh hxx m mm java kt kts scala groovy gradle
    cs fs fsx vb swift rb php pl pm lua r jl hs ml mli ex exs erl hrl clj cljs edn lisp el scm
    rkt nim zig d dart elm vue svelte sql html htm css scss sass less graphql gql proto tex bib
    vim diff patch cmake mk nix tf hcl dockerfile srt vtt ics vcf eml
";

/// Prose text extensions: dropped from the slug like `.md` (`notes/todo.txt` → `notes/todo`).
/// Every other text extension is kept as a suffix so `main.c` and `main.h` stay distinct.
const PROSE_EXTENSIONS: &[&str] = &["txt", "text", "rst", "org", "adoc", "asciidoc"];

/// Text extensions whose files may be chat transcripts (chat exports are `.txt`).
const TRANSCRIPT_EXTENSIONS: &[&str] = &["txt", "text"];

/// Extension-less files that are text by name (lower case).
const TEXT_FILE_NAMES: &str = "
    readme license licence copying authors contributors changelog notice todo makefile
    dockerfile containerfile justfile procfile gemfile rakefile vagrantfile
";

/// Generated files that would only bury real content: lock files and minified bundles
/// (matched on the lower-cased file name's end).
const GENERATED_NAME_ENDINGS: &[&str] =
    &["package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml", ".min.js", ".min.css"];

fn listed(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|listed| listed == word)
}

/// Only this much of a file is searched for a NUL byte.
const BINARY_PROBE_BYTES: usize = 8 * 1024;

fn extension_of(path: &Path) -> Option<String> {
    path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase)
}

/// The parser a file goes to, by its extension; `None` for files that are not text (images,
/// archives, binaries, unknown extensions, `.env` secrets) or are generated (lock files,
/// minified bundles), which the walker skips silently.
pub fn kind_for(path: &Path) -> Option<FileKind> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    if GENERATED_NAME_ENDINGS.iter().any(|ending| name.ends_with(ending)) {
        return None;
    }
    let Some(extension) = extension_of(path) else {
        return listed(TEXT_FILE_NAMES, &name).then_some(FileKind::Text);
    };
    let kind = match extension.as_str() {
        "md" | "markdown" | "mdx" => FileKind::Markdown,
        "rs" => FileKind::Code(Language::Rust),
        "py" | "pyi" => FileKind::Code(Language::Python),
        "js" | "mjs" | "cjs" | "jsx" => FileKind::Code(Language::JavaScript),
        "ts" | "mts" | "cts" => FileKind::Code(Language::TypeScript),
        "tsx" => FileKind::Code(Language::Tsx),
        "go" => FileKind::Code(Language::Go),
        other if PROSE_EXTENSIONS.contains(&other) || listed(TEXT_EXTENSIONS, other) => FileKind::Text,
        _ => return None,
    };
    Some(kind)
}

/// What the walker found at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Walked {
    /// A file to parse: one with a `kind_for`, or the root itself whatever its kind.
    File(PathBuf),
    /// A regular file of no supported type (an image, an archive, an unknown extension, a
    /// generated file): skipped, and counted so the importer can say so.
    Unsupported(PathBuf),
    /// Not a regular file (a FIFO, a socket, a device) or a symbolic link, which is not
    /// followed; the text says which.
    Special(PathBuf, &'static str),
}

/// The files under `root` that have a `kind_for`, in sorted (deterministic) order, honouring
/// `.gitignore` (even outside a git repository), `.ignore` and hidden-file rules; symlinks are
/// not followed. A root that is a file yields itself whatever its kind (it was named explicitly,
/// so `parse_file` reports it rather than the walker dropping it). Errors (unreadable
/// directories, a missing root) are yielded in place and the walk goes on.
pub fn walk(root: &Path) -> impl Iterator<Item = Result<PathBuf, FileError>> + use<> {
    walk_entries(root).filter_map(|entry| match entry {
        Ok(Walked::File(path)) => Some(Ok(path)),
        Ok(_) => None,
        Err(error) => Some(Err(error)),
    })
}

/// Everything `walk` looks at, including what it skips: files of no supported type, and
/// entries that are not regular files (each with what it is), so an importer can say what it
/// skipped and why. Ignored and hidden paths are not yielded at all.
pub fn walk_entries(root: &Path) -> impl Iterator<Item = Result<Walked, FileError>> + use<> {
    ignore::WalkBuilder::new(root)
        .standard_filters(true)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
        .filter_map(|entry| match entry {
            Err(error) => Some(Err(FileError::Io(one_line(&error.to_string())))),
            Ok(entry) => {
                if let Some(error) = entry.error() {
                    tracing::warn!(path = %entry.path().display(), %error, "ignore rules partly unreadable");
                }
                let file_type = entry.file_type()?;
                if file_type.is_dir() {
                    return None;
                }
                if !file_type.is_file() {
                    let what = special_kind(&file_type);
                    return Some(Ok(Walked::Special(entry.into_path(), what)));
                }
                let wanted = entry.depth() == 0 || kind_for(entry.path()).is_some();
                Some(Ok(if wanted {
                    Walked::File(entry.into_path())
                } else {
                    Walked::Unsupported(entry.into_path())
                }))
            }
        })
}

/// What a non-regular directory entry is, in words.
pub fn special_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_symlink() {
        "a symbolic link (not followed)"
    } else if file_type.is_fifo() {
        "a FIFO (named pipe), not a regular file"
    } else if file_type.is_socket() {
        "a socket, not a regular file"
    } else if file_type.is_char_device() {
        "a character device, not a regular file"
    } else if file_type.is_block_device() {
        "a block device, not a regular file"
    } else {
        "not a regular file"
    }
}

/// Why a file of no supported type is skipped (`unsupported file: not a text file type (.png)`).
pub fn unsupported(path: &Path) -> FileError {
    let what = extension_of(path).map_or_else(|| "no extension".to_string(), |e| format!(".{e}"));
    FileError::Unsupported(format!("not a text file type ({what})"))
}

/// The page slug of `path` imported from `root` under `source`: `source/` + the relative path,
/// lower-cased, each segment slugified, `/`-separated. Markdown and prose text drop their
/// extension (`notes/Alice Smith.md` → `notes/alice-smith`); code and other text keep it as a
/// suffix (`src/main.rs` → `repo/src/main-rs`). A root that is the file itself gives
/// `source/<file name>`.
pub fn slug_for(source: &str, root: &Path, path: &Path) -> String {
    let relative = match path.strip_prefix(root) {
        Ok(relative) if !relative.as_os_str().is_empty() => relative,
        _ => path.file_name().map(Path::new).unwrap_or(path),
    };
    let mut segments: Vec<String> = vec![source_prefix(source)];
    segments.retain(|prefix| !prefix.is_empty());
    let names: Vec<&std::ffi::OsStr> = relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let drop_extension = match kind_for(relative) {
        Some(FileKind::Markdown) | None => true,
        Some(FileKind::Code(_)) => false,
        Some(FileKind::Text) => extension_of(relative).is_none_or(|e| PROSE_EXTENSIONS.contains(&e.as_str())),
    };
    for (index, name) in names.iter().enumerate() {
        let last = index + 1 == names.len();
        let name = if last && drop_extension {
            Path::new(name).file_stem().unwrap_or(name).to_string_lossy()
        } else {
            name.to_string_lossy()
        };
        let segment = slugify(&name);
        segments.push(if segment.is_empty() { "untitled".to_string() } else { segment });
    }
    segments.join("/")
}

/// The slug prefix of a source name: each `/`-separated part slugified, empty parts dropped.
pub(crate) fn source_prefix(source: &str) -> String {
    let parts: Vec<String> = source.split('/').map(slugify).filter(|part| !part.is_empty()).collect();
    parts.join("/")
}

/// Reads and parses one file into a page: refuses files over `max_file_bytes` before reading,
/// binary files (a NUL in the first 8 KiB) and invalid UTF-8; hashes the raw bytes into
/// `content_hash`; dispatches by `kind_for`. Code pages are titled with the path relative to
/// `root`; notes and text without a title of their own fall back to the file stem.
pub fn parse_file(root: &Path, path: &Path, options: &ParseOptions) -> Result<PageInput, FileError> {
    let kind = kind_for(path).ok_or_else(|| unsupported(path))?;
    let io_error = |error: std::io::Error| FileError::Io(one_line(&format!("{}: {error}", path.display())));
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if !metadata.is_file() {
        return Err(FileError::Unsupported("not a regular file".to_string()));
    }
    let limit = options.max_file_bytes;
    if metadata.len() > limit {
        return Err(FileError::TooLarge { bytes: metadata.len(), limit });
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io_error)?;
    let read = bytes.len() as u64;
    if read > limit {
        // The file grew between the size check and the read.
        return Err(FileError::TooLarge { bytes: read, limit });
    }
    if bytes[..bytes.len().min(BINARY_PROBE_BYTES)].contains(&0) {
        return Err(FileError::Binary);
    }
    let text =
        std::str::from_utf8(&bytes).map_err(|error| FileError::BadUtf8 { offset: error.valid_up_to() })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let slug = slug_for(&options.source, root, path);
    let stem = path.file_stem().map(|stem| deslug(&stem.to_string_lossy())).unwrap_or_default();
    let mut page = match kind {
        FileKind::Markdown => markdown::parse(&slug, &stem, text, options)?,
        FileKind::Text => {
            let prose = extension_of(path).is_some_and(|e| TRANSCRIPT_EXTENSIONS.contains(&e.as_str()));
            text::parse(&slug, &stem, text, options, prose)
        }
        FileKind::Code(language) => {
            let mut page = code::parse(&slug, text, language, options);
            page.title = display_relative(root, path);
            page
        }
    };
    page.content_hash = sha256_hex(&bytes);
    Ok(page)
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    clawdia_core::hex(&Sha256::digest(bytes))
}

/// `path` relative to `root` with `/` separators (the file name when `root` is the file).
fn display_relative(root: &Path, path: &Path) -> String {
    let relative = match path.strip_prefix(root) {
        Ok(relative) if !relative.as_os_str().is_empty() => relative,
        _ => path.file_name().map(Path::new).unwrap_or(path),
    };
    let parts: Vec<String> = relative
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// A file stem or slug segment as a fallback title: `meeting-notes` → `meeting notes`.
fn deslug(name: &str) -> String {
    let spaced: String = name.chars().map(|c| if c == '-' || c == '_' { ' ' } else { c }).collect();
    collapse_whitespace(&spaced)
}

/// The last segment of a slug, de-slugified (`notes/meeting-notes` → `meeting notes`).
fn stem_of_slug(slug: &str) -> String {
    deslug(slug.rsplit('/').next().unwrap_or(slug))
}

/// Runs of whitespace become one space; trimmed.
fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `limit` characters of `text`.
fn truncate_chars(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

/// The chunk size range for text-splitter, made valid whatever the options say
/// (at least one character; max never below desired).
fn chunk_capacity(options: &ParseOptions) -> ChunkCapacity {
    let desired = options.chunk_chars.start.max(1);
    let max = options.chunk_chars.end.saturating_sub(1).max(desired);
    ChunkCapacity::new(desired).with_max(max).unwrap_or_else(|_| ChunkCapacity::new(desired))
}

/// Texts longer than this many chunk maximums are cut into segments before text-splitter sees
/// them: its cost grows with the square of the input on text with few boundaries (a 2 MiB line
/// of `>` or base64 takes minutes), and linearly once the input is bounded.
const SEGMENT_CHUNKS: usize = 16;

/// Splits `text` into consecutive byte ranges of at most `limit` bytes (so the chunker's cost
/// stays linear), cutting, in the second half of each window, after a blank line, else after a
/// line break, else after whitespace, else at a character boundary. The ranges cover `text`.
fn segments(text: &str, limit: usize) -> Vec<Range<usize>> {
    let limit = limit.max(64);
    let mut ranges = Vec::new();
    let mut start = 0;
    while text.len() - start > limit {
        let mut end = start + limit;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let half = {
            let mut half = start + limit / 2;
            while !text.is_char_boundary(half) {
                half -= 1;
            }
            half
        };
        let window = &text[half..end];
        let cut = window
            .rfind("\n\n")
            .map(|index| index + 2)
            .or_else(|| window.rfind('\n').map(|index| index + 1))
            .or_else(|| {
                window
                    .char_indices()
                    .rev()
                    .find(|(_, c)| c.is_whitespace())
                    .map(|(index, c)| index + c.len_utf8())
            })
            .map_or(end, |offset| half + offset);
        ranges.push(start..cut);
        start = cut;
    }
    ranges.push(start..text.len());
    ranges
}

/// The segment limit for these options, in bytes.
fn segment_limit(options: &ParseOptions) -> usize {
    chunk_capacity(options).max().saturating_mul(SEGMENT_CHUNKS)
}

/// Byte offset → 1-based line number in one text.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(index, _)| index + 1));
        Self { starts }
    }

    fn line_of(&self, byte: usize) -> u32 {
        let line = self.starts.partition_point(|&start| start <= byte);
        u32::try_from(line).unwrap_or(u32::MAX)
    }

    /// The (first, last) line of a non-empty byte range.
    fn lines_of(&self, range: Range<usize>) -> (Option<u32>, Option<u32>) {
        let last = range.end.saturating_sub(1).max(range.start);
        (Some(self.line_of(range.start)), Some(self.line_of(last)))
    }
}
