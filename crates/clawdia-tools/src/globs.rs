//! Path globs for an agent's writable paths (`[agents.NAME.tools] write`): `*` and `?` match
//! within one path segment, `**` matches any number of segments, and a pattern ending in `/`
//! means everything under that folder. Paths are workspace-relative and `/`-separated.

/// Whether the workspace-relative `path` matches `pattern`.
pub fn matches(pattern: &str, path: &str) -> bool {
    let folder = pattern.ends_with('/');
    let mut pattern: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if pattern.is_empty() {
        return false;
    }
    if folder {
        pattern.push("**");
    }
    let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    segments(&pattern, &path)
}

fn segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments(rest, &path[skip..])),
        Some((first, rest)) => {
            !path.is_empty() && segment(first.as_bytes(), path[0].as_bytes()) && segments(rest, &path[1..])
        }
    }
}

fn segment(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => segment(&pattern[1..], name) || (!name.is_empty() && segment(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => segment(&pattern[1..], &name[1..]),
        (Some(a), Some(b)) if a == b => segment(&pattern[1..], &name[1..]),
        _ => false,
    }
}
