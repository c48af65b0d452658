//! Markdown notes: YAML frontmatter (serde-saphyr), title and kind, `[[wikilinks]]` (plain,
//! aliased, typed inline `[[rel::Target]]`, typed frontmatter values), and chunks cut first at
//! top-level headings (context = heading path) and then by text-splitter's `MarkdownSplitter`.
//!
//! The page body is the markdown after the frontmatter block; chunk texts are slices of it (the
//! source, not rendered), and chunk line numbers count from the top of the file.

use clawdia_core::one_line;
use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};
use serde_json::{Map, Value};
use text_splitter::{ChunkConfig, MarkdownSplitter};

use super::{
    FileError, LineIndex, ParseOptions, chunk_capacity, collapse_whitespace, segment_limit, segments,
    sha256_hex,
};
use crate::types::{ChunkInput, LinkInput, PageInput};

/// The kind of a plain `[[Page]]` link.
const MENTIONS: &str = "mentions";

/// Frontmatter keys whose values are never read as typed links.
const NOT_LINK_KEYS: &[&str] = &["tags"];

/// A note page. Title: frontmatter `title`, else the first top-level `# heading`, else the
/// slug's last segment de-slugified. Kind: frontmatter `type` (or `kind`), else `note`.
/// `content_hash` = sha256 of `text`. Fails only on bad frontmatter.
pub fn parse_markdown(slug: &str, text: &str, options: &ParseOptions) -> Result<PageInput, FileError> {
    parse(slug, &super::stem_of_slug(slug), text, options)
}

pub(super) fn parse(
    slug: &str,
    stem: &str,
    text: &str,
    options: &ParseOptions,
) -> Result<PageInput, FileError> {
    let (frontmatter, body_start) = split_frontmatter(text)?;
    let body = &text[body_start..];
    let scan = scan_body(body);

    let title = frontmatter
        .get("title")
        .and_then(scalar_text)
        .or(scan.first_h1.clone())
        .unwrap_or_else(|| if stem.is_empty() { "untitled".to_string() } else { stem.to_string() });
    let kind = ["type", "kind"]
        .iter()
        .find_map(|key| frontmatter.get(*key).and_then(scalar_text))
        .map(|kind| kind.to_lowercase())
        .unwrap_or_else(|| "note".to_string());

    let mut links = frontmatter_links(&frontmatter);
    links.extend(scan.links.iter().cloned());
    dedup_in_order(&mut links);

    let lines = LineIndex::new(text);
    let chunks = chunk_sections(body, body_start, &scan.headings, &lines, options);

    Ok(PageInput {
        slug: slug.to_string(),
        title,
        kind,
        source: options.source.clone(),
        body: body.to_string(),
        frontmatter: Value::Object(frontmatter),
        content_hash: sha256_hex(text.as_bytes()),
        chunks,
        links,
    })
}

/// A non-empty string (or number/bool, as written) from a frontmatter value.
fn scalar_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => collapse_whitespace(text),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

fn dedup_in_order(links: &mut Vec<LinkInput>) {
    let mut seen = std::collections::HashSet::new();
    links.retain(|link| seen.insert((link.target.clone(), link.kind.clone(), link.alias.clone())));
}

// ---------------------------------------------------------------------------------------------
// Frontmatter

/// Splits a leading `---` … `---` (or `...`) block off `text` and parses it as a YAML mapping.
/// Returns the mapping (empty when there is no block) and the byte offset where the body starts.
/// A block without a closing line is not frontmatter (the `---` is a thematic break).
fn split_frontmatter(text: &str) -> Result<(Map<String, Value>, usize), FileError> {
    let Some((yaml, body_start)) = clawdia_core::frontmatter_fence(text) else { return Ok((Map::new(), 0)) };
    let yaml_start = yaml.start;
    let yaml = &text[yaml];
    // The file line of the YAML's first line (after the opening `---`).
    let first_line = text[..yaml_start].matches('\n').count() + 1;
    if yaml.trim().is_empty() {
        return Ok((Map::new(), body_start));
    }
    match serde_saphyr::from_str::<Value>(yaml) {
        Ok(Value::Object(map)) => Ok((map, body_start)),
        Ok(Value::Null) => Ok((Map::new(), body_start)),
        Ok(other) => Err(FileError::Frontmatter {
            line: first_line,
            message: format!("expected a mapping of keys to values, found {}", value_kind(&other)),
        }),
        Err(error) => {
            let yaml_line = error.location().map_or(1, |location| location.line());
            let line = usize::try_from(yaml_line).unwrap_or(1).max(1) + first_line - 1;
            let message = serde_saphyr::MessageFormatter::format_message(
                &serde_saphyr::DefaultMessageFormatter,
                &error,
            );
            Err(FileError::Frontmatter { line, message: one_line(&message) })
        }
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Typed links from frontmatter values that are wikilinks: `works_at: "[[Acme]]"`,
/// `team: ["[[Bob]]", "[[Carol]]"]`, and the unquoted `works_at: [[Acme]]` (which YAML reads as
/// a list holding a list). The key is the link kind. Keys are visited in sorted order.
fn frontmatter_links(frontmatter: &Map<String, Value>) -> Vec<LinkInput> {
    let mut keys: Vec<&String> = frontmatter.keys().collect();
    keys.sort();
    let mut links = Vec::new();
    for key in keys {
        let kind = key.trim();
        if kind.is_empty() || NOT_LINK_KEYS.contains(&kind.to_lowercase().as_str()) {
            continue;
        }
        let mut push = |inner: &str| {
            if let Some((target, alias)) = split_target(inner) {
                links.push(LinkInput { target, kind: kind.to_string(), alias });
            }
        };
        let value = &frontmatter[key];
        if let Some(inner) = unquoted_wikilink(value) {
            push(inner);
            continue;
        }
        match value {
            Value::String(text) => {
                if let Some(inner) = quoted_wikilink(text) {
                    push(inner);
                }
            }
            Value::Array(items) => {
                for item in items {
                    let inner = match item {
                        Value::String(text) => quoted_wikilink(text),
                        other => unquoted_wikilink(other),
                    };
                    if let Some(inner) = inner {
                        push(inner);
                    }
                }
            }
            _ => {}
        }
    }
    links
}

/// `"[[Acme]]"` → `Acme` (the whole string must be one wikilink).
fn quoted_wikilink(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("[[")?.strip_suffix("]]")?;
    (!inner.contains("[[") && !inner.contains("]]")).then_some(inner)
}

/// YAML `[[Acme]]` unquoted is `[["Acme"]]`: a one-item list holding a one-string list.
fn unquoted_wikilink(value: &Value) -> Option<&str> {
    match value {
        Value::Array(outer) if outer.len() == 1 => match &outer[0] {
            Value::Array(inner) if inner.len() == 1 => inner[0].as_str(),
            _ => None,
        },
        _ => None,
    }
}

/// The inside of a frontmatter wikilink: `Acme|ACME` → (`Acme`, `ACME`).
fn split_target(inner: &str) -> Option<(String, Option<String>)> {
    let (target, alias) = match inner.split_once('|') {
        Some((target, alias)) => (target, Some(alias)),
        None => (inner, None),
    };
    let target = clean_target(target)?;
    let alias = alias.map(collapse_whitespace).filter(|alias| !alias.is_empty());
    Some((target, alias))
}

/// A link target as written, without a `#heading` / `#^block` suffix; `None` when nothing is
/// left (a same-page `[[#Heading]]`).
fn clean_target(target: &str) -> Option<String> {
    let target = target.split('#').next().unwrap_or_default();
    let target = collapse_whitespace(target);
    (!target.is_empty()).then_some(target)
}

/// A relation name in `[[rel::Target]]`: letters, digits, `_` and `-`.
fn is_relation_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

// ---------------------------------------------------------------------------------------------
// Body: one pulldown-cmark pass for headings, the H1 title and wikilinks

struct Heading {
    /// Byte offset (in the body) of the start of the heading's first line.
    line_start: usize,
    /// Byte offset just past the heading.
    end: usize,
    level: u8,
    text: String,
}

struct BodyScan {
    /// Top-level headings (not inside lists, quotes or footnotes), in order.
    headings: Vec<Heading>,
    first_h1: Option<String>,
    links: Vec<LinkInput>,
}

fn markdown_options() -> Options {
    Options::ENABLE_WIKILINKS
        | Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
}

/// The body is parsed without the frontmatter (already split off), so pulldown-cmark's YAML
/// metadata option is not needed and a second `---` block in the body stays ordinary markdown.
/// Wikilinks in code blocks and inline code are not links (pulldown-cmark does not parse them).
fn scan_body(body: &str) -> BodyScan {
    let mut scan = BodyScan { headings: Vec::new(), first_h1: None, links: Vec::new() };
    let mut container_depth = 0usize;
    // The heading being read: (line start, level, text so far).
    let mut heading: Option<(usize, u8, String)> = None;
    // One entry per open link; `Some` for wikilinks: (destination, has alias, alias text).
    let mut open_links: Vec<Option<(String, bool, String)>> = Vec::new();

    for (event, range) in Parser::new_ext(body, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(tag) => match tag {
                Tag::BlockQuote(_)
                | Tag::List(_)
                | Tag::Item
                | Tag::FootnoteDefinition(_)
                | Tag::DefinitionList
                | Tag::DefinitionListTitle
                | Tag::DefinitionListDefinition => container_depth += 1,
                Tag::Heading { level, .. } if container_depth == 0 => {
                    let line_start = body[..range.start].rfind('\n').map_or(0, |index| index + 1);
                    heading = Some((line_start, level as u8, String::new()));
                }
                Tag::Link { link_type: LinkType::WikiLink { has_pothole }, dest_url, .. } => {
                    open_links.push(Some((dest_url.to_string(), has_pothole, String::new())));
                }
                Tag::Link { .. } => open_links.push(None),
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::BlockQuote(_)
                | TagEnd::List(_)
                | TagEnd::Item
                | TagEnd::FootnoteDefinition
                | TagEnd::DefinitionList
                | TagEnd::DefinitionListTitle
                | TagEnd::DefinitionListDefinition => {
                    container_depth = container_depth.saturating_sub(1);
                }
                TagEnd::Heading(_) => {
                    if let Some((line_start, level, text)) = heading.take() {
                        let text = collapse_whitespace(&text);
                        if level == 1 && scan.first_h1.is_none() && !text.is_empty() {
                            scan.first_h1 = Some(text.clone());
                        }
                        scan.headings.push(Heading { line_start, end: range.end, level, text });
                    }
                }
                TagEnd::Link => {
                    if let Some(Some((destination, has_alias, alias))) = open_links.pop()
                        && let Some(link) = body_link(&destination, has_alias, &alias)
                    {
                        scan.links.push(link);
                    }
                }
                _ => {}
            },
            Event::Text(text) | Event::Code(text) | Event::InlineMath(text) => {
                if let Some((_, _, heading_text)) = heading.as_mut() {
                    heading_text.push_str(&text);
                }
                if let Some(Some((_, _, alias))) = open_links.last_mut() {
                    alias.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, heading_text)) = heading.as_mut() {
                    heading_text.push(' ');
                }
            }
            _ => {}
        }
    }
    scan
}

/// `[[Page]]` → mentions; `[[Page|alias]]` → alias; `[[works_at::Acme]]` → kind `works_at`.
fn body_link(destination: &str, has_alias: bool, alias: &str) -> Option<LinkInput> {
    let (kind, target) = match destination.split_once("::") {
        Some((relation, target)) if is_relation_name(relation.trim()) => {
            (relation.trim().to_string(), target)
        }
        _ => (MENTIONS.to_string(), destination),
    };
    let target = clean_target(target)?;
    let alias = if has_alias { Some(collapse_whitespace(alias)).filter(|a| !a.is_empty()) } else { None };
    Some(LinkInput { target, kind, alias })
}

// ---------------------------------------------------------------------------------------------
// Chunks

struct Section {
    start: usize,
    end: usize,
    /// Where the section's heading ends (`start` for the part before the first heading).
    heading_end: usize,
    /// The heading level (0 for the part before the first heading).
    level: u8,
    context: Option<String>,
}

/// Cuts the body at top-level headings into sections (context = the heading path), folds a
/// heading with nothing under it into its first subsection (so `## Setup` travels with
/// `### Install`; an empty heading with no subsection is a chunk of its own), and splits each
/// section with `MarkdownSplitter`. Offsets are body offsets; `body_start` maps them to the file.
fn chunk_sections(
    body: &str,
    body_start: usize,
    headings: &[Heading],
    lines: &LineIndex,
    options: &ParseOptions,
) -> Vec<ChunkInput> {
    let mut sections = Vec::new();
    let mut boundaries: Vec<&Heading> = Vec::new();
    for heading in headings {
        let after_previous =
            boundaries.last().is_none_or(|previous| heading.line_start > previous.line_start);
        if after_previous && heading.line_start < body.len() {
            boundaries.push(heading);
        }
    }
    let first_start = boundaries.first().map_or(body.len(), |heading| heading.line_start);
    if first_start > 0 {
        sections.push(Section { start: 0, end: first_start, heading_end: 0, level: 0, context: None });
    }
    let mut path: Vec<(u8, &str)> = Vec::new();
    for (index, heading) in boundaries.iter().enumerate() {
        let end = boundaries.get(index + 1).map_or(body.len(), |next| next.line_start);
        while path.last().is_some_and(|(level, _)| *level >= heading.level) {
            path.pop();
        }
        path.push((heading.level, heading.text.as_str()));
        let names: Vec<&str> = path.iter().map(|(_, name)| *name).filter(|name| !name.is_empty()).collect();
        let context = (!names.is_empty()).then(|| names.join(" > "));
        sections.push(Section {
            start: heading.line_start,
            end,
            heading_end: heading.end.min(end),
            level: heading.level,
            context,
        });
    }

    let splitter = MarkdownSplitter::new(ChunkConfig::new(chunk_capacity(options)));
    let limit = segment_limit(options);
    let mut chunks = Vec::new();
    let mut carried_start = None;
    for (index, section) in sections.iter().enumerate() {
        let start = carried_start.take().unwrap_or(section.start);
        let heading_only =
            section.heading_end > section.start && body[section.heading_end..section.end].trim().is_empty();
        let next_is_child = sections.get(index + 1).is_some_and(|next| next.level > section.level);
        if heading_only && next_is_child {
            carried_start = Some(start);
            continue;
        }
        let text = &body[start..section.end];
        if text.trim().is_empty() {
            continue;
        }
        for segment in segments(text, limit) {
            for (offset, chunk) in splitter.chunk_indices(&text[segment.clone()]) {
                if chunk.trim().is_empty() {
                    continue;
                }
                let file_start = body_start + start + segment.start + offset;
                let (start_line, end_line) = lines.lines_of(file_start..file_start + chunk.len());
                chunks.push(ChunkInput {
                    text: chunk.to_string(),
                    context: section.context.clone(),
                    start_line,
                    end_line,
                });
            }
        }
    }
    chunks
}
