//! Files that arrive from outside (a browser upload, a Telegram photo or document) saved into
//! an agent's workspace: the sender's name reduced to one safe path component, and a name not
//! taken yet, written with `create_new` so nothing is ever followed through a link or
//! overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `name` as one safe path component (its last `/` or `\` part, characters outside letters,
/// digits, `.-_ ` replaced, no leading dot), or `None` when nothing usable is left.
pub fn safe_name(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").trim();
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') { c } else { '_' })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').trim().to_string();
    (!cleaned.is_empty() && cleaned.len() <= 200).then_some(cleaned)
}

/// `dir/name`, or `dir/name` with ` (2)`, ` (3)`, ... before its extension: a name not taken yet.
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let candidate = dir.join(name);
    if !candidate.exists() {
        return candidate;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name, String::new()),
    };
    (2..).map(|n| dir.join(format!("{stem} ({n}){ext}"))).find(|path| !path.exists()).unwrap_or(candidate)
}

/// Writes `bytes` as a new file in `dir` (created if missing) under `name` (already made safe
/// with [`safe_name`]) or a free variant of it; the path written. Blocking.
pub fn save_new(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    // Two writers racing for the same free name: the loser tries the next one.
    for _ in 0..16 {
        let path = free_path(dir, name);
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(bytes)?;
                return Ok(path);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(std::io::Error::other(format!("no free name for {name} in {}", dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_one_component() {
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(safe_name("notes.md").as_deref(), Some("notes.md"));
        assert_eq!(safe_name("a\\b\\c.txt").as_deref(), Some("c.txt"));
        assert_eq!(safe_name(".bashrc").as_deref(), Some("bashrc"));
        assert_eq!(safe_name("x<y>.md").as_deref(), Some("x_y_.md"));
        assert_eq!(safe_name(".."), None);
        assert_eq!(safe_name("/"), None);
    }

    #[test]
    fn a_taken_name_gets_a_number_and_nothing_is_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let first = save_new(dir.path(), "a.txt", b"one").unwrap();
        let second = save_new(dir.path(), "a.txt", b"two").unwrap();
        let third = save_new(&dir.path().join("sub"), "noext", b"three").unwrap();
        assert_eq!(first, dir.path().join("a.txt"));
        assert_eq!(second, dir.path().join("a (2).txt"));
        assert_eq!(std::fs::read(&first).unwrap(), b"one");
        assert_eq!(std::fs::read(&second).unwrap(), b"two");
        assert_eq!(std::fs::read(third).unwrap(), b"three");
    }
}
