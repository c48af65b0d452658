//! Plain text files: titled by their first non-empty line, chunked by text-splitter's
//! `TextSplitter` (paragraphs, then lines, sentences, words) to the configured size. Chat
//! transcripts (`conversation`) become one chunk per turn instead.

use text_splitter::{ChunkConfig, TextSplitter};

use super::{
    LineIndex, ParseOptions, chunk_capacity, collapse_whitespace, conversation, segment_limit, segments,
    sha256_hex, truncate_chars,
};
use crate::types::{ChunkInput, PageInput};

/// Titles from the first line are cut to this many characters.
const MAX_TITLE_CHARS: usize = 120;

/// A text page: title = first non-empty line (trimmed, at most 120 characters), else the slug's
/// last segment; kind `text`; no links; `content_hash` = sha256 of `text`. A chat transcript
/// (see `conversation`) is a page of kind `conversation` with one chunk per turn, titled by its
/// heading line (else the slug's last segment), its speakers in the frontmatter's `speakers`.
/// Never fails.
pub fn parse_text(slug: &str, text: &str, options: &ParseOptions) -> Result<PageInput, super::FileError> {
    Ok(parse(slug, &super::stem_of_slug(slug), text, options, true))
}

/// `transcripts`: whether a chat transcript gets turn chunks (only prose files: a `.log` or
/// `.yaml` of `name: value` lines is not a chat).
pub(super) fn parse(
    slug: &str,
    stem: &str,
    text: &str,
    options: &ParseOptions,
    transcripts: bool,
) -> PageInput {
    let fallback = || if stem.is_empty() { "untitled".to_string() } else { stem.to_string() };
    if let Some(transcript) = transcripts.then(|| conversation::transcript(text)).flatten() {
        let title = transcript
            .heading
            .as_deref()
            .map(|line| collapse_whitespace(truncate_chars(line, MAX_TITLE_CHARS)))
            .filter(|line| !line.is_empty())
            .unwrap_or_else(fallback);
        return PageInput {
            slug: slug.to_string(),
            title,
            kind: "conversation".to_string(),
            source: options.source.clone(),
            body: text.to_string(),
            frontmatter: serde_json::json!({ "speakers": transcript.speakers() }),
            content_hash: sha256_hex(text.as_bytes()),
            chunks: conversation::chunks(text, &transcript, options),
            links: Vec::new(),
        };
    }
    let title = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(|line| collapse_whitespace(truncate_chars(line, MAX_TITLE_CHARS)))
        .filter(|line| !line.is_empty())
        .unwrap_or_else(fallback);
    PageInput {
        slug: slug.to_string(),
        title,
        kind: "text".to_string(),
        source: options.source.clone(),
        body: text.to_string(),
        frontmatter: serde_json::Value::Object(serde_json::Map::new()),
        content_hash: sha256_hex(text.as_bytes()),
        chunks: chunk_text(text, options),
        links: Vec::new(),
    }
}

fn chunk_text(text: &str, options: &ParseOptions) -> Vec<ChunkInput> {
    let lines = LineIndex::new(text);
    let splitter = TextSplitter::new(ChunkConfig::new(chunk_capacity(options)));
    let mut chunks = Vec::new();
    for segment in segments(text, segment_limit(options)) {
        for (offset, chunk) in splitter.chunk_indices(&text[segment.clone()]) {
            if chunk.trim().is_empty() {
                continue;
            }
            let start = segment.start + offset;
            let (start_line, end_line) = lines.lines_of(start..start + chunk.len());
            chunks.push(ChunkInput { text: chunk.to_string(), context: None, start_line, end_line });
        }
    }
    chunks
}
