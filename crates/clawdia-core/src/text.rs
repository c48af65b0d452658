//! Small text helpers more than one crate needs.

use std::ops::Range;

/// Lower-case hex of `bytes`: digests, random ids.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Where a leading frontmatter block is: the byte range of the YAML between an opening `---`
/// line and a closing `---` (or `...`) line, and the byte offset where the body after the
/// closing line starts. A byte-order mark before the opening line is skipped. `None` when the
/// text does not open with `---` or the block is never closed (then the `---` is markdown's
/// thematic break, not a fence).
pub fn frontmatter_fence(text: &str) -> Option<(Range<usize>, usize)> {
    let bom = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let rest = &text[bom..];
    let first_end = rest.find('\n')?;
    if rest[..first_end].trim_end() != "---" {
        return None;
    }
    let yaml_start = bom + first_end + 1;
    let mut position = yaml_start;
    for line in text[yaml_start..].split_inclusive('\n') {
        let content = line.trim_end();
        if content == "---" || content == "..." {
            return Some((yaml_start..position, position + line.len()));
        }
        position += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Option<(&str, &str)> {
        frontmatter_fence(text).map(|(yaml, body)| (&text[yaml], &text[body..]))
    }

    #[test]
    fn hex_is_lower_case_and_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn fences() {
        assert_eq!(split("---\na: 1\n---\nbody"), Some(("a: 1\n", "body")));
        assert_eq!(split("\u{feff}---\r\na: 1\r\n...\r\nbody\n"), Some(("a: 1\r\n", "body\n")));
        assert_eq!(split("---\n---\n"), Some(("", "")));
        assert_eq!(split("---\na: 1\n---"), Some(("a: 1\n", "")));
        assert_eq!(split("---\nno close\n"), None);
        assert_eq!(split("# title\n---\na\n---\n"), None);
        assert_eq!(split("---"), None);
        assert_eq!(split(""), None);
    }
}
