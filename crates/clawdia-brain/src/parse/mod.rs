//! Parsers that turn files into `PageInput`s: markdown notes, code (tree-sitter), plain text.
