//! Source code: tree-sitter finds the top-level items (functions, classes, impls, structs,
//! interfaces, ...) and each becomes one chunk, with the comments and attributes directly above
//! it. An item larger than the chunk maximum is split into its members when it is a container
//! (`impl Server > fn run`, `class Foo > def bar`) or else into line windows that keep its
//! context. The code between items (imports, constants, statements) is gathered into line
//! windows of the target size.
//!
//! Everything is byte ranges that partition the file, so no text is lost; a syntax error only
//! turns the unparseable part (tree-sitter `ERROR` nodes) into plain line windows.

use std::ops::Range;

use tree_sitter::{Node, Parser};

use super::{
    Language, LineIndex, ParseOptions, chunk_capacity, collapse_whitespace, sha256_hex, truncate_chars,
};
use crate::types::{ChunkInput, PageInput};

/// Containers nested deeper than this are windowed instead of split further.
const MAX_NESTING: usize = 8;

/// Pieces of at most this much punctuation (`}`, `});`) join a neighbour instead of being chunks.
const MAX_TRIVIAL_BYTES: usize = 16;

/// Symbol names in contexts are cut to this many characters.
const MAX_NAME_CHARS: usize = 80;

/// A code page: kind `code`, no links, one chunk per item (see the module docs). The title is
/// the path recovered from the slug (`parse_file` replaces it with the real relative path).
/// `content_hash` = sha256 of `text`. Never fails: unparseable code is chunked by lines.
pub fn parse_code(
    slug: &str,
    text: &str,
    language: Language,
    options: &ParseOptions,
) -> Result<PageInput, super::FileError> {
    Ok(parse(slug, text, language, options))
}

pub(super) fn parse(slug: &str, text: &str, language: Language, options: &ParseOptions) -> PageInput {
    PageInput {
        slug: slug.to_string(),
        title: title_from_slug(slug, &options.source, language),
        kind: "code".to_string(),
        source: options.source.clone(),
        body: text.to_string(),
        frontmatter: serde_json::Value::Object(serde_json::Map::new()),
        content_hash: sha256_hex(text.as_bytes()),
        chunks: chunk_code(text, language, options),
        links: Vec::new(),
    }
}

impl Language {
    fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    fn extensions(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &["rs"],
            Language::Python => &["py", "pyi"],
            Language::JavaScript => &["js", "mjs", "cjs", "jsx"],
            Language::TypeScript => &["ts", "mts", "cts"],
            Language::Tsx => &["tsx"],
            Language::Go => &["go"],
        }
    }
}

/// `repo/src/main-rs` → `src/main.rs` (best effort: slugs are lower-cased and lossy).
fn title_from_slug(slug: &str, source: &str, language: Language) -> String {
    let prefix = super::source_prefix(source);
    let path = match prefix.is_empty() {
        true => slug,
        false => slug.strip_prefix(prefix.as_str()).and_then(|rest| rest.strip_prefix('/')).unwrap_or(slug),
    };
    for extension in language.extensions() {
        if let Some(stem) = path.strip_suffix(&format!("-{extension}")) {
            return format!("{stem}.{extension}");
        }
    }
    path.to_string()
}

/// The tuning of one chunking run.
struct Chunker<'a> {
    text: &'a str,
    language: Language,
    desired: usize,
    max: usize,
    pieces: Vec<Piece>,
}

/// A byte range of the file that becomes (at most) one chunk. Pieces are produced in order and
/// partition the file.
struct Piece {
    range: Range<usize>,
    context: Option<String>,
    /// Code between items rather than an item.
    gap: bool,
}

/// An item found among a node's children.
struct Item<'tree> {
    range: Range<usize>,
    /// `fn run`, `class Foo`, ...
    label: String,
    /// The node whose children are the members, for items that can be split into members.
    body: Option<Node<'tree>>,
}

fn chunk_code(text: &str, language: Language, options: &ParseOptions) -> Vec<ChunkInput> {
    let capacity = chunk_capacity(options);
    let mut chunker =
        Chunker { text, language, desired: capacity.desired(), max: capacity.max(), pieces: Vec::new() };
    let mut parser = Parser::new();
    let tree = parser.set_language(&language.grammar()).ok().and_then(|()| parser.parse(text, None));
    match &tree {
        Some(tree) => chunker.region(tree.root_node(), 0..text.len(), None, 0),
        None => chunker.windows(0..text.len(), None, true),
    }
    let pieces = tidy_pieces(text, chunker.pieces, chunker.max);
    let lines = LineIndex::new(text);
    pieces.into_iter().filter_map(|piece| to_chunk(text, piece, &lines)).collect()
}

impl<'a> Chunker<'a> {
    /// Chunks `range` (which holds `parent`'s children) into items and the gaps between them.
    fn region(&mut self, parent: Node<'_>, range: Range<usize>, context: Option<&str>, depth: usize) {
        let items = self.items(parent, range.start);
        let mut cursor = range.start;
        for item in items {
            if item.range.start < cursor || item.range.end > range.end {
                continue;
            }
            self.windows(cursor..item.range.start, context.map(str::to_string), true);
            let label = match context {
                Some(outer) => format!("{outer} > {}", item.label),
                None => item.label,
            };
            let size = self.text[item.range.clone()].chars().count();
            match item.body {
                Some(body) if size > self.max && depth < MAX_NESTING => {
                    self.region(body, item.range.clone(), Some(&label), depth + 1);
                }
                _ => self.windows(item.range.clone(), Some(label), false),
            }
            cursor = item.range.end;
        }
        self.windows(cursor..range.end, context.map(str::to_string), true);
    }

    /// The items among `parent`'s named children, each widened to take in the comments and
    /// attributes directly above it (no blank line between) and its line's indentation.
    fn items<'tree>(&self, parent: Node<'tree>, floor: usize) -> Vec<Item<'tree>> {
        let mut items = Vec::new();
        let mut pending: Option<usize> = None;
        let mut previous_end = floor;
        let mut cursor = parent.walk();
        for child in parent.named_children(&mut cursor) {
            let (start, end) = (child.start_byte(), child.end_byte());
            if start < previous_end || end > self.text.len() {
                continue;
            }
            if is_leading_trivia(child, self.language) {
                if !adjacent(self.text, previous_end, start) {
                    pending = None;
                }
                pending.get_or_insert(start);
                previous_end = end;
                continue;
            }
            if let Some((label, body)) = classify(child, self.language, self.text) {
                let mut item_start = match pending {
                    Some(comment_start) if adjacent(self.text, previous_end, start) => comment_start,
                    _ => start,
                };
                // Take in the indentation when the item starts its line.
                let before = self.text[..item_start].trim_end_matches([' ', '\t']);
                if (before.is_empty() || before.ends_with('\n')) && before.len() >= floor {
                    item_start = before.len();
                }
                items.push(Item { range: item_start..end, label, body });
            }
            previous_end = end;
            pending = None;
        }
        items
    }

    /// Adds `range` as line windows: one piece when it fits the maximum, else runs of whole lines
    /// that stop at a blank line once past the desired size and never pass the maximum (a single
    /// line longer than the maximum is cut by characters).
    fn windows(&mut self, range: Range<usize>, context: Option<String>, gap: bool) {
        let slice = &self.text[range.clone()];
        if slice.trim().is_empty() {
            if !slice.is_empty() {
                self.pieces.push(Piece { range, context, gap: true });
            }
            return;
        }
        if slice.chars().count() <= self.max {
            self.pieces.push(Piece { range, context, gap });
            return;
        }
        let mut window_start = range.start;
        let mut window_chars = 0usize;
        let mut position = range.start;
        for line in slice.split_inclusive('\n') {
            let line_chars = line.chars().count();
            if window_chars > 0 && window_chars + line_chars > self.max {
                self.pieces.push(Piece { range: window_start..position, context: context.clone(), gap });
                window_start = position;
                window_chars = 0;
            }
            if line_chars > self.max {
                let mut piece_start = position;
                for (count, (index, _)) in line.char_indices().enumerate() {
                    if count > 0 && count % self.max == 0 {
                        let cut = position + index;
                        self.pieces.push(Piece { range: piece_start..cut, context: context.clone(), gap });
                        piece_start = cut;
                    }
                }
                self.pieces.push(Piece {
                    range: piece_start..position + line.len(),
                    context: context.clone(),
                    gap,
                });
                position += line.len();
                window_start = position;
                continue;
            }
            position += line.len();
            window_chars += line_chars;
            if window_chars >= self.desired && line.trim().is_empty() {
                self.pieces.push(Piece { range: window_start..position, context: context.clone(), gap });
                window_start = position;
                window_chars = 0;
            }
        }
        if window_start < range.end {
            self.pieces.push(Piece { range: window_start..range.end, context, gap });
        }
    }
}

/// Only whitespace with at most one line break between `end` and `start`.
fn adjacent(text: &str, end: usize, start: usize) -> bool {
    let between = text.get(end..start).unwrap_or_default();
    between.trim().is_empty() && between.matches('\n').count() <= 1
}

/// Comments, and attributes that belong to the next item.
fn is_leading_trivia(node: Node<'_>, language: Language) -> bool {
    match (language, node.kind()) {
        (Language::Rust, "line_comment" | "block_comment" | "attribute_item") => true,
        (Language::Rust, _) => false,
        (_, "comment" | "decorator") => true,
        _ => false,
    }
}

/// An item's label and, for containers, the node holding its members; `None` for everything
/// that is not an item (imports, constants, statements, `ERROR` nodes).
fn classify<'tree>(
    node: Node<'tree>,
    language: Language,
    text: &str,
) -> Option<(String, Option<Node<'tree>>)> {
    if node.is_error() || node.is_missing() {
        return None;
    }
    let name = || name_of(node, "name", text);
    let body = || node.child_by_field_name("body");
    match language {
        Language::Rust => match node.kind() {
            "function_item" | "function_signature_item" => Some((format!("fn {}", name()), None)),
            "struct_item" => Some((format!("struct {}", name()), None)),
            "enum_item" => Some((format!("enum {}", name()), None)),
            "union_item" => Some((format!("union {}", name()), None)),
            "type_item" => Some((format!("type {}", name()), None)),
            "macro_definition" => Some((format!("macro_rules! {}", name()), None)),
            "trait_item" => Some((format!("trait {}", name()), body())),
            "mod_item" => Some((format!("mod {}", name()), body())),
            "impl_item" => {
                let target = name_of(node, "type", text);
                let label = match node.child_by_field_name("trait") {
                    Some(_) => format!("impl {} for {target}", name_of(node, "trait", text)),
                    None => format!("impl {target}"),
                };
                Some((label, body()))
            }
            _ => None,
        },
        Language::Python => match node.kind() {
            "function_definition" => Some((format!("def {}", name()), None)),
            "class_definition" => Some((format!("class {}", name()), body())),
            "decorated_definition" => classify(node.child_by_field_name("definition")?, language, text),
            _ => None,
        },
        Language::JavaScript | Language::TypeScript | Language::Tsx => classify_script(node, text),
        Language::Go => match node.kind() {
            "function_declaration" => Some((format!("func {}", name()), None)),
            "method_declaration" => {
                let receiver = node
                    .child_by_field_name("receiver")
                    .and_then(|list| {
                        let mut cursor = list.walk();
                        list.named_children(&mut cursor).find(|p| p.kind() == "parameter_declaration")
                    })
                    .map(|parameter| name_of(parameter, "type", text));
                match receiver {
                    Some(receiver) => Some((format!("func ({receiver}) {}", name()), None)),
                    None => Some((format!("func {}", name()), None)),
                }
            }
            "type_declaration" => {
                let mut cursor = node.walk();
                let names: Vec<String> = node
                    .named_children(&mut cursor)
                    .filter(|spec| spec.kind() == "type_spec" || spec.kind() == "type_alias")
                    .map(|spec| name_of(spec, "name", text))
                    .collect();
                (!names.is_empty()).then(|| (format!("type {}", names.join(", ")), None))
            }
            _ => None,
        },
    }
}

/// JavaScript, TypeScript and TSX items.
fn classify_script<'tree>(node: Node<'tree>, text: &str) -> Option<(String, Option<Node<'tree>>)> {
    let name = || name_of(node, "name", text);
    let body = || node.child_by_field_name("body");
    match node.kind() {
        "function_declaration" | "generator_function_declaration" | "function_signature" => {
            Some((format!("function {}", name()), None))
        }
        "class_declaration" | "abstract_class_declaration" | "class" => {
            Some((format!("class {}", name()), body()))
        }
        "interface_declaration" => Some((format!("interface {}", name()), body())),
        "type_alias_declaration" => Some((format!("type {}", name()), None)),
        "enum_declaration" => Some((format!("enum {}", name()), None)),
        "internal_module" | "module" => Some((format!("namespace {}", name()), body())),
        "method_definition" | "method_signature" | "abstract_method_signature" => {
            Some((format!("method {}", name()), None))
        }
        "field_definition" | "public_field_definition" => {
            let value = node.child_by_field_name("value")?;
            let field = if node.kind() == "field_definition" { "property" } else { "name" };
            is_function_value(value).then(|| (format!("method {}", name_of(node, field, text)), None))
        }
        "export_statement" => {
            if let Some(declaration) = node.child_by_field_name("declaration") {
                return classify_script(declaration, text);
            }
            let value = node.child_by_field_name("value")?;
            (is_function_value(value) || value.kind() == "class")
                .then(|| ("export default".to_string(), None))
        }
        "expression_statement" | "ambient_declaration" => {
            let inner = node.named_child(0)?;
            matches!(inner.kind(), "internal_module" | "module" | "function_signature" | "class_declaration")
                .then(|| classify_script(inner, text))
                .flatten()
        }
        "lexical_declaration" | "variable_declaration" => {
            let mut cursor = node.walk();
            let declarators: Vec<Node<'tree>> = node
                .named_children(&mut cursor)
                .filter(|child| child.kind() == "variable_declarator")
                .collect();
            let [declarator] = declarators.as_slice() else { return None };
            let value = declarator.child_by_field_name("value")?;
            let name = name_of(*declarator, "name", text);
            if is_function_value(value) {
                Some((format!("function {name}"), None))
            } else if value.kind() == "class" {
                Some((format!("class {name}"), value.child_by_field_name("body")))
            } else {
                None
            }
        }
        _ => None,
    }
}

fn is_function_value(node: Node<'_>) -> bool {
    matches!(node.kind(), "arrow_function" | "function_expression" | "function" | "generator_function")
}

/// The text of `node`'s `field` child, whitespace collapsed and cut short; `(anonymous)` when
/// there is none.
fn name_of(node: Node<'_>, field: &str, text: &str) -> String {
    let name = node
        .child_by_field_name(field)
        .and_then(|child| text.get(child.start_byte()..child.end_byte()))
        .map(collapse_whitespace)
        .unwrap_or_default();
    if name.is_empty() {
        "(anonymous)".to_string()
    } else {
        truncate_chars(&name, MAX_NAME_CHARS).to_string()
    }
}

/// Tidies the pieces: whitespace-only pieces disappear; short pieces with no letters or digits
/// (a lone `}` or `});` after a container's members, the last line of a windowed item) join the
/// piece before them (or, at the start, after them); and a container's own code (its header
/// line and doc comment, fields between methods) joins the member after it when both fit the
/// maximum together, so `impl Server {` is not a chunk of its own.
fn tidy_pieces(text: &str, pieces: Vec<Piece>, max: usize) -> Vec<Piece> {
    let mut kept: Vec<Piece> = Vec::with_capacity(pieces.len());
    let mut carried: Option<usize> = None;
    for mut piece in pieces {
        let content = &text[piece.range.clone()];
        if content.trim().is_empty() {
            continue;
        }
        let trimmed = content.trim();
        if trimmed.len() <= MAX_TRIVIAL_BYTES && !trimmed.chars().any(char::is_alphanumeric) {
            match kept.last_mut() {
                Some(previous) => previous.range.end = piece.range.end,
                None => {
                    carried.get_or_insert(piece.range.start);
                }
            }
            continue;
        }
        if let Some(start) = carried.take() {
            piece.range.start = start;
        }
        kept.push(piece);
    }
    if let Some(start) = carried {
        // Nothing but punctuation in the whole file: keep it as one piece.
        kept.push(Piece { range: start..text.len(), context: None, gap: true });
    }

    let mut merged: Vec<Piece> = Vec::with_capacity(kept.len());
    let mut header: Option<Piece> = None;
    for mut piece in kept {
        if let Some(previous) = header.take() {
            let joins = match (&previous.context, &piece.context) {
                (Some(outer), Some(inner)) => {
                    inner.strip_prefix(outer.as_str()).is_some_and(|rest| rest.starts_with(" > "))
                        && text[previous.range.start..piece.range.end].chars().count() <= max
                }
                _ => false,
            };
            if joins {
                piece.range.start = previous.range.start;
            } else {
                merged.push(previous);
            }
        }
        if piece.gap && piece.context.is_some() {
            header = Some(piece);
        } else {
            merged.push(piece);
        }
    }
    merged.extend(header);
    merged
}

/// A piece as a chunk: leading blank lines and trailing whitespace trimmed (the first line keeps
/// its indentation); `None` when nothing is left.
fn to_chunk(text: &str, piece: Piece, lines: &LineIndex) -> Option<ChunkInput> {
    let slice = &text[piece.range.clone()];
    let first = slice.find(|c: char| !c.is_whitespace())?;
    let start = slice[..first].rfind('\n').map_or(0, |index| index + 1);
    let end = slice.trim_end().len();
    let range = piece.range.start + start..piece.range.start + end;
    let (start_line, end_line) = lines.lines_of(range.clone());
    Some(ChunkInput { text: text[range].to_string(), context: piece.context, start_line, end_line })
}
