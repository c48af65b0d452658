//! System prompt assembly from the workspace files (IDENTITY.md, SOUL.md, USER.md, AGENTS.md,
//! MEMORY.md — OpenClaw's files load unchanged — then OpenClaw's daily notes, yesterday's and
//! today's `memory/YYYY-MM-DD.md` (UTC dates) when they exist) under a per-file and a total
//! character cap, with a visible marker for a truncated or missing file. A heartbeat turn (a light
//! turn) gets `HEARTBEAT.md` alone, under the same caps.
//!
//! HTML comments (`<!-- ... -->`) are notes for the owner, hidden when the markdown is rendered,
//! and never reach the model: `clawdia init` writes its guidance into the starter files as
//! comments, so a file the owner has not filled in yet adds nothing to the prompt (a small model
//! would otherwise quote the guidance back as its answer).
//!
//! The assembled file part is cached and revalidated by each file's length and mtime, so a turn
//! costs a few `stat` calls, not a few reads. Every byte here is paid for on every model call:
//! the fixed text is kept to two short lines.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The workspace files, in prompt order.
pub const PROMPT_FILES: [&str; 5] = ["IDENTITY.md", "SOUL.md", "USER.md", "AGENTS.md", "MEMORY.md"];

/// The checklist a heartbeat turn reads (the default heartbeat prompt names it).
pub const HEARTBEAT_FILE: &str = "HEARTBEAT.md";

/// The folder of OpenClaw's daily notes, `YYYY-MM-DD.md` each.
pub const DAILY_NOTES_DIR: &str = "memory";

/// One file of the prompt: the name it is shown under (relative to the workspace) and whether
/// its absence goes unmentioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptFile {
    pub name: String,
    pub path: PathBuf,
    pub optional: bool,
}

/// The files of an ordinary turn at `now_ms`: the five workspace files, then yesterday's and
/// today's daily notes (optional).
pub fn turn_files(workspace: &Path, now_ms: i64) -> Vec<PromptFile> {
    let required = PROMPT_FILES.iter().map(|name| PromptFile {
        name: name.to_string(),
        path: workspace.join(name),
        optional: false,
    });
    let day_ms = 86_400_000;
    let daily = [now_ms - day_ms, now_ms].into_iter().map(|at| {
        let name = format!("{DAILY_NOTES_DIR}/{}.md", clawdia_core::time::utc_date(at));
        PromptFile { path: workspace.join(&name), name, optional: true }
    });
    required.chain(daily).collect()
}

/// The files of a heartbeat turn: `HEARTBEAT.md` (optional).
pub fn heartbeat_files(workspace: &Path) -> Vec<PromptFile> {
    vec![PromptFile { name: HEARTBEAT_FILE.into(), path: workspace.join(HEARTBEAT_FILE), optional: true }]
}

/// Character caps for the prompt files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    pub file_max_chars: usize,
    pub total_max_chars: usize,
}

type Stamp = Option<(u64, SystemTime)>;

/// The files a prompt was built from, their size and mtime then, and the prompt text.
type CachedPrompt = (Vec<PromptFile>, Vec<Stamp>, String);

#[derive(Debug, Default)]
pub struct PromptCache {
    entry: Mutex<Option<CachedPrompt>>,
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl PromptCache {
    /// The files part of the prompt for an ordinary turn in `workspace` at `now_ms`.
    pub fn files_section(&self, workspace: &Path, limits: PromptLimits, now_ms: i64) -> String {
        self.section(turn_files(workspace, now_ms), limits)
    }

    /// The files part of a heartbeat turn's prompt: `HEARTBEAT.md`, or nothing.
    pub fn heartbeat_section(&self, workspace: &Path, limits: PromptLimits) -> String {
        self.section(heartbeat_files(workspace), limits)
    }

    /// `files` assembled, rebuilt when the list or any file changed.
    fn section(&self, files: Vec<PromptFile>, limits: PromptLimits) -> String {
        let stamps: Vec<Stamp> = files.iter().map(|file| stamp(&file.path)).collect();
        let mut entry = self.entry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_files, cached_stamps, text)) = entry.as_ref()
            && *cached_files == files
            && *cached_stamps == stamps
        {
            return text.clone();
        }
        let text = assemble_files(&files, limits);
        *entry = Some((files, stamps, text.clone()));
        text
    }
}

/// Reads and caps the prompt files. Each file becomes `## NAME` + its text; a missing file is
/// one `[NAME missing]` line unless it is optional; a cut file ends with a
/// `[NAME truncated: N of M chars]` line.
pub fn assemble_files(files: &[PromptFile], limits: PromptLimits) -> String {
    let mut out = String::new();
    let mut used = 0usize;
    for file in files {
        let name = &file.name;
        let text = match std::fs::read(&file.path) {
            Ok(bytes) => without_comments(&String::from_utf8_lossy(&bytes)).trim().to_string(),
            Err(_) if file.optional => continue,
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
