//! Model replies for Telegram: markdown split into messages that fit Telegram's limit (on
//! paragraph boundaries first, then lines, then anywhere; a code block split across messages
//! is closed and reopened), each converted to the small HTML subset Telegram accepts (`b`, `i`,
//! `s`, `code`, `pre`, `a`, `blockquote`). Everything else is escaped text, so a reply can never
//! inject markup; tags always balance. Should Telegram still refuse the HTML, the channel sends
//! the same chunk as plain text.

/// Telegram's limit is 4,096 UTF-16 units of text after parsing; chunks stay well below it so
/// the HTML's own entities never push one over.
pub const CHUNK_UNITS: usize = 3_800;

fn units(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` cut into pieces of at most `limit` UTF-16 units: at the last paragraph break that
/// fits, else the last line break, else the last space, else anywhere (on a char boundary).
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_end();
    let mut in_fence: Option<String> = None;
    while !rest.is_empty() {
        let reopen = in_fence.as_ref().map(|fence| format!("{fence}\n")).unwrap_or_default();
        let budget = limit.saturating_sub(units(&reopen) + 4).max(16);
        let piece_end = if units(rest) <= budget {
            rest.len()
        } else {
            // The longest prefix within the budget, on a char boundary.
            let mut end = 0;
            let mut count = 0;
            for (index, c) in rest.char_indices() {
                count += c.len_utf16();
                if count > budget {
                    break;
                }
                end = index + c.len_utf8();
            }
            let head = &rest[..end];
            head.rfind("\n\n")
                .filter(|at| *at > 0)
                .or_else(|| head.rfind('\n').filter(|at| *at > 0))
                .or_else(|| head.rfind(' ').filter(|at| *at > 0))
                .unwrap_or(end)
        };
        let piece = &rest[..piece_end];
        let mut chunk = format!("{reopen}{piece}");
        // Fences opened in this piece and not closed: close here, reopen in the next.
        for line in piece.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                in_fence = match in_fence {
                    Some(_) => None,
                    None => Some(trimmed.to_string()),
                };
            }
        }
        if in_fence.is_some() {
            chunk.push_str("\n```");
        }
        let chunk = chunk.trim().to_string();
        if !chunk.is_empty() {
            out.push(chunk);
        }
        rest = rest[piece_end..].trim_start_matches(['\n', ' ']);
    }
    out
}

/// `text` with Telegram HTML's special characters escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape(text, &mut out);
    out
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// One chunk of markdown as Telegram HTML.
pub fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() + 32);
    let mut code: Option<String> = None;
    let mut quote = false;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            if code.take().is_some() {
                out.push_str("</code></pre>\n");
            } else {
                if quote {
                    out.push_str("</blockquote>\n");
                    quote = false;
                }
                let lang: String =
                    lang.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                if lang.is_empty() {
                    out.push_str("<pre><code>");
                } else {
                    out.push_str("<pre><code class=\"language-");
                    out.push_str(&lang);
                    out.push_str("\">");
                }
                code = Some(String::new());
            }
            continue;
        }
        if code.is_some() {
            escape(line, &mut out);
            out.push('\n');
            continue;
        }
        let quoted = trimmed.strip_prefix('>');
        match (quoted, quote) {
            (Some(_), false) => {
                out.push_str("<blockquote>");
                quote = true;
            }
            (None, true) => {
                out.push_str("</blockquote>\n");
                quote = false;
            }
            _ => {}
        }
        let line = quoted.map(str::trim_start).unwrap_or(line);
        let heading = line.trim_start().trim_start_matches('#');
        if line.trim_start().starts_with('#') && heading.starts_with(' ') {
            out.push_str("<b>");
            inline(heading.trim(), &mut out);
            out.push_str("</b>\n");
            continue;
        }
        let bullet = line.trim_start();
        if let Some(item) = bullet.strip_prefix("- ").or_else(|| bullet.strip_prefix("* ")) {
            out.push_str("• ");
            inline(item, &mut out);
        } else {
            inline(line, &mut out);
        }
        out.push('\n');
    }
    if code.is_some() {
        out.push_str("</code></pre>");
    }
    if quote {
        out.push_str("</blockquote>");
    }
    out.trim_end().to_string()
}

/// Inline markup of one line: `code`, **bold**, __bold__, *italic*, _italic_, ~~strike~~ and
/// [links](https://...). A marker without its closing twin on the line stays text.
fn inline(line: &str, out: &mut String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let find = |from: usize, marker: &[char]| -> Option<usize> {
        (from..chars.len().saturating_sub(marker.len() - 1)).find(|&j| chars[j..j + marker.len()] == *marker)
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '`'
            && let Some(end) = find(i + 1, &['`'])
        {
            out.push_str("<code>");
            escape(&chars[i + 1..end].iter().collect::<String>(), out);
            out.push_str("</code>");
            i = end + 1;
            continue;
        }
        if c == '['
            && let Some(close) = find(i + 1, &[']'])
            && chars.get(close + 1) == Some(&'(')
            && let Some(end) = find(close + 2, &[')'])
        {
            let url: String = chars[close + 2..end].iter().collect();
            if url.starts_with("https://") || url.starts_with("http://") {
                out.push_str("<a href=\"");
                escape(&url, out);
                out.push_str("\">");
                escape(&chars[i + 1..close].iter().collect::<String>(), out);
                out.push_str("</a>");
                i = end + 1;
                continue;
            }
        }
        let pairs: [(&[char], &str); 5] =
            [(&['*', '*'], "b"), (&['_', '_'], "b"), (&['~', '~'], "s"), (&['*'], "i"), (&['_'], "i")];
        let mut matched = false;
        for (marker, tag) in pairs {
            let len = marker.len();
            if chars[i..].starts_with(marker)
                && chars.get(i + len).is_some_and(|next| !next.is_whitespace())
                && let Some(end) = find(i + len, marker)
                && end > i + len
                // `snake_case_words` are not italics.
                && !(marker == ['_'] && (i > 0 && chars[i - 1].is_alphanumeric()))
            {
                out.push('<');
                out.push_str(tag);
                out.push('>');
                let inner: String = chars[i + len..end].iter().collect();
                inline(&inner, out);
                out.push_str("</");
                out.push_str(tag);
                out.push('>');
                i = end + len;
                matched = true;
                break;
            }
        }
        if matched {
            continue;
        }
        escape(&c.to_string(), out);
        i += 1;
    }
}

/// At most this many characters of a reply are spoken (about a minute and a half of speech);
/// the text message always carries the whole reply.
pub const SPOKEN_CHARS: usize = 1_200;

/// A markdown reply as words to speak: code blocks left out (said as "(code in the message)"),
/// links read by their text, bare addresses as "a link", emphasis and heading marks dropped;
/// cut at a sentence end within [`SPOKEN_CHARS`].
pub fn to_speech(markdown: &str) -> String {
    let mut lines = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            if !in_code {
                lines.push("(code in the message)".to_string());
            }
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let line = line.trim_start_matches(['#', '>', ' ']);
        let line = line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")).unwrap_or(line);
        lines.push(speakable_line(line));
    }
    let text = lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
    if text.chars().count() <= SPOKEN_CHARS {
        return text;
    }
    let cut: String = text.chars().take(SPOKEN_CHARS).collect();
    let end = cut.rfind(['.', '!', '?', '\n']).map_or(cut.len(), |at| at + 1);
    format!("{} The rest is in the message.", cut[..end].trim_end())
}

/// One line's inline markdown as plain words.
fn speakable_line(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        // [text](url) → text
        if c == '['
            && let Some((label, after)) = rest[1..].split_once("](")
            && let Some(close) = after.find(')')
            && !label.contains(']')
        {
            out.push_str(label);
            rest = &after[close + 1..];
            continue;
        }
        if rest.starts_with("http://") || rest.starts_with("https://") {
            out.push_str("a link");
            rest = rest.find(char::is_whitespace).map_or("", |at| &rest[at..]);
            continue;
        }
        if matches!(c, '*' | '_' | '`' | '~') {
            rest = &rest[c.len_utf8()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_telegram_html_and_markup_in_text_stays_text() {
        assert_eq!(
            to_html("**bold** and *it* and `a<b`"),
            "<b>bold</b> and <i>it</i> and <code>a&lt;b</code>"
        );
        assert_eq!(to_html("<img src=x onerror=alert(1)>"), "&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(
            to_html("[site](https://example.org/?a=1&b=2)"),
            "<a href=\"https://example.org/?a=1&amp;b=2\">site</a>"
        );
        assert_eq!(to_html("[bad](javascript:alert(1))"), "[bad](javascript:alert(1))");
        assert_eq!(to_html("# Title\n- one\n- two"), "<b>Title</b>\n• one\n• two");
        assert_eq!(
            to_html("```rust\nlet a = 1 < 2;\n```"),
            "<pre><code class=\"language-rust\">let a = 1 &lt; 2;\n</code></pre>"
        );
        assert_eq!(to_html("> quoted\nafter"), "<blockquote>quoted\n</blockquote>\nafter");
        assert_eq!(to_html("snake_case_name and 2*3*4"), "snake_case_name and 2<i>3</i>4");
        assert_eq!(to_html("a ** b"), "a ** b");
    }

    #[test]
    fn long_replies_split_on_paragraphs_and_code_blocks_reopen() {
        let paragraph = "word ".repeat(100);
        let text = format!("{paragraph}\n\n{paragraph}\n\n{paragraph}");
        let chunks = split(&text, 1_200);
        // Whole paragraphs only, as many as fit.
        assert_eq!(chunks.len(), 2, "{chunks:?}");
        assert!(chunks.iter().flat_map(|c| c.split("\n\n")).all(|p| p.trim() == paragraph.trim()));
        assert!(chunks.iter().all(|c| units(c) <= 1_200));
        let code = format!("```\n{}```", "line of code\n".repeat(200));
        let chunks = split(&code, 1_000);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            assert!(chunk.starts_with("```"), "{chunk}");
            assert!(chunk.ends_with("```"), "{chunk}");
            assert!(units(chunk) <= 1_000);
        }
        // Non-BMP characters count twice and are never cut in half.
        let emoji = "😀".repeat(3_000);
        let chunks = split(&emoji, 1_000);
        assert!(chunks.iter().all(|c| units(c) <= 1_000 && !c.is_empty()));
        assert_eq!(chunks.concat(), emoji);
    }

    fn balanced(html: &str) -> bool {
        let mut stack = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else { return false };
            let tag = &rest[start + 1..start + end];
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop() != Some(name.to_string()) {
                    return false;
                }
            } else {
                stack.push(tag.split(' ').next().unwrap_or("").to_string());
            }
            rest = &rest[start + end + 1..];
        }
        stack.is_empty()
    }

    proptest::proptest! {
        /// Whatever the model writes: no panic, tags balance, only Telegram's tags appear, and
        /// chunks fit.
        #[test]
        fn any_reply_converts_to_balanced_telegram_html(text in "(?s).{0,400}") {
            let html = to_html(&text);
            proptest::prop_assert!(balanced(&html), "{html}");
            for tag in ["<script", "<img", "<div", "<span"] {
                proptest::prop_assert!(!html.contains(tag));
            }
            for chunk in split(&text, 100) {
                proptest::prop_assert!(units(&chunk) <= 100);
                proptest::prop_assert!(balanced(&to_html(&chunk)));
            }
        }
    }

    #[test]
    fn speech_leaves_out_code_and_marks_and_reads_links_by_name() {
        let reply = "## Today\n\n**Two** things:\n- call _Bob_\n- see [the docs](https://x.org/a)\n\n```sh\nrm -rf /\n```\nMore at https://example.org/page now.";
        assert_eq!(
            to_speech(reply),
            "Today\nTwo things:\ncall Bob\nsee the docs\n(code in the message)\nMore at a link now."
        );
    }

    #[test]
    fn long_replies_are_cut_at_a_sentence() {
        let reply = "This is a sentence. ".repeat(200);
        let spoken = to_speech(&reply);
        assert!(spoken.chars().count() <= SPOKEN_CHARS + 40, "{}", spoken.len());
        assert!(spoken.ends_with("sentence. The rest is in the message."), "{spoken}");
    }

    proptest::proptest! {
        #[test]
        fn speech_never_panics(text in "\\PC{0,300}") {
            let _ = to_speech(&text);
        }
    }
}
