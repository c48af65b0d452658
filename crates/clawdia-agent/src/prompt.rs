//! System prompt assembly from the workspace files (IDENTITY.md, SOUL.md, USER.md, AGENTS.md,
//! MEMORY.md — OpenClaw's files load unchanged) under a per-file and a total character cap,
//! with a visible marker for a truncated or missing file.
//!
//! HTML comments (`<!-- ... -->`) are notes for the owner, hidden when the markdown is rendered,
//! and never reach the model: `clawdia init` writes its guidance into the starter files as
//! comments, so a file the owner has not filled in yet adds nothing to the prompt (a small model
//! would otherwise quote the guidance back as its answer).
//!
//! The assembled file part is cached and revalidated by each file's length and mtime, so a turn
//! costs five `stat` calls, not five reads. Every byte here is paid for on every model call:
//! the fixed text is kept to two short lines.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The workspace files, in prompt order.
pub const PROMPT_FILES: [&str; 5] = ["IDENTITY.md", "SOUL.md", "USER.md", "AGENTS.md", "MEMORY.md"];

/// Character caps for the prompt files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    pub file_max_chars: usize,
    pub total_max_chars: usize,
}

type Stamp = Option<(u64, SystemTime)>;

#[derive(Debug, Default)]
pub struct PromptCache {
    entry: Mutex<Option<(Vec<Stamp>, String)>>,
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl PromptCache {
    /// The files part of the prompt for `workspace`, rebuilt when any file changed.
    pub fn files_section(&self, workspace: &Path, limits: PromptLimits) -> String {
        let paths: Vec<PathBuf> = PROMPT_FILES.iter().map(|f| workspace.join(f)).collect();
        let stamps: Vec<Stamp> = paths.iter().map(|p| stamp(p)).collect();
        let mut entry = self.entry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_stamps, text)) = entry.as_ref()
            && *cached_stamps == stamps
        {
            return text.clone();
        }
        let text = assemble_files(&paths, limits);
        *entry = Some((stamps, text.clone()));
        text
    }
}

/// Reads and caps the prompt files. Each file becomes `## NAME` + its text; a missing file is
/// one `[NAME missing]` line; a cut file ends with a `[NAME truncated: N of M chars]` line.
pub fn assemble_files(paths: &[PathBuf], limits: PromptLimits) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = match std::fs::read(path) {
            Ok(bytes) => without_comments(&String::from_utf8_lossy(&bytes)).trim().to_string(),
            Err(_) => {
                out.push_str(&format!("[{name} missing]\n"));
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let total_chars = text.chars().count();
        let room = limits.file_max_chars.min(limits.total_max_chars.saturating_sub(used));
        if room == 0 {
            out.push_str(&format!(
                "[{name} truncated: 0 of {total_chars} chars, total prompt cap reached]\n"
            ));
            continue;
        }
        out.push_str(&format!("## {name}\n"));
        if total_chars > room {
            let cut: String = text.chars().take(room).collect();
            out.push_str(&cut);
            out.push_str(&format!("\n[{name} truncated: {room} of {total_chars} chars]\n"));
            used += room;
        } else {
            out.push_str(&text);
            out.push('\n');
            used += total_chars;
        }
    }
    out
}

/// `text` without its HTML comments; an unclosed `<!--` hides the rest of the text, as it does
/// when the markdown is rendered.
pub fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "<!--".len()..];
        match after.find("-->") {
            Some(end) => rest = &after[end + "-->".len()..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// The full system prompt: identity anchor, date, trust-marker rule, then the files.
pub fn system_prompt(agent: &str, today: &str, trust_rule: &str, files: &str) -> String {
    format!(
        "You are {agent}, the owner's personal AI agent. Today is {today} (UTC).\n{trust_rule}\n\n{files}"
    )
}
