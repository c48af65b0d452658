//! The workspace file tools. Reads are capped, writes are atomic (temp file + rename), and
//! every path goes through `paths::resolve`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use clawdia_core::{Tool, ToolContext, ToolError, ToolSpec};
use serde_json::json;

use crate::paths::{display, resolve};
use crate::string_arg;

/// Largest file `read`, `edit` and `grep` look at.
const MAX_READ_BYTES: u64 = 256 * 1024;
/// Most entries `list` prints and matches `grep` prints.
const MAX_LIST_ENTRIES: usize = 500;
const MAX_GREP_MATCHES: usize = 200;
/// Most files `grep` opens in one call.
const MAX_GREP_FILES: usize = 5_000;

fn spec(name: &str, description: &str, properties: serde_json::Value, required: &[&str]) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: description.to_string(),
        parameters: json!({"type": "object", "properties": properties, "required": required}),
    }
}

fn io_error(path: &str, error: std::io::Error) -> ToolError {
    match error.kind() {
        std::io::ErrorKind::NotFound => ToolError::NotFound(path.to_string()),
        _ => ToolError::Failed(format!("{path}: {error}")),
    }
}

/// Reads a text file no larger than the cap; refuses binary content.
fn read_text(path: &Path, shown: &str) -> Result<String, ToolError> {
    let metadata = std::fs::metadata(path).map_err(|e| io_error(shown, e))?;
    if metadata.is_dir() {
        return Err(ToolError::InvalidArguments(format!("{shown} is a directory; use `list`")));
    }
    if metadata.len() > MAX_READ_BYTES {
        return Err(ToolError::Failed(format!(
            "{shown} is {} bytes; the limit is {MAX_READ_BYTES}",
            metadata.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| io_error(shown, e))?;
    if bytes.contains(&0) {
        return Err(ToolError::Failed(format!("{shown} is a binary file")));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes `content` to `path` atomically, creating parent folders inside the workspace.
fn write_atomic(workspace: &Path, path: &Path, content: &str, shown: &str) -> Result<(), ToolError> {
    let parent = path.parent().ok_or_else(|| ToolError::PathEscape(shown.to_string()))?;
    std::fs::create_dir_all(parent).map_err(|e| io_error(shown, e))?;
    // Re-check after creating folders: a symlinked folder must not lead out.
    let root = workspace.canonicalize().map_err(|e| io_error(shown, e))?;
    let real_parent = parent.canonicalize().map_err(|e| io_error(shown, e))?;
    if !real_parent.starts_with(&root) {
        return Err(ToolError::PathEscape(shown.to_string()));
    }
    if path.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(false) {
        return Err(ToolError::PathEscape(shown.to_string()));
    }
    let file_name = path.file_name().ok_or_else(|| ToolError::PathEscape(shown.to_string()))?;
    let temp: PathBuf =
        real_parent.join(format!(".{}.clawdia-tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(content.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, real_parent.join(file_name))
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error(shown, error));
    }
    Ok(())
}

/// Which file operation an `FsTool` performs.
#[derive(Debug, Clone, Copy)]
pub enum FsOp {
    Read,
    Write,
    Edit,
    List,
    Grep,
}

/// One workspace file tool (group `fs`).
pub struct FsTool {
    spec: ToolSpec,
    op: FsOp,
    /// Workspace-relative globs `write` and `edit` are confined to; `None`: the whole workspace.
    write_globs: Option<std::sync::Arc<[String]>>,
}

/// Refuses a write outside the agent's writable globs (checked on the resolved path, so a
/// symlink inside an allowed folder cannot lead to a file outside it).
fn check_writable(
    globs: Option<&[String]>,
    workspace: &Path,
    path: &Path,
    shown: &str,
) -> Result<(), ToolError> {
    let Some(globs) = globs else { return Ok(()) };
    let relative = display(workspace, path);
    if globs.iter().any(|glob| crate::globs::matches(glob, &relative)) {
        return Ok(());
    }
    Err(ToolError::Refused(format!(
        "`{shown}` is outside this agent's writable paths ({})",
        globs.join(", ")
    )))
}

/// Refuses a write outside the globs the turn's skills declared (`writes`).
fn check_turn_writable(context: &ToolContext, path: &Path, shown: &str) -> Result<(), ToolError> {
    let Some(globs) = context.write_globs.as_deref() else { return Ok(()) };
    let relative = display(&context.workspace, path);
    if globs.iter().any(|glob| crate::globs::matches(glob, &relative)) {
        return Ok(());
    }
    let allowed = if globs.is_empty() { "no paths".to_string() } else { globs.join(", ") };
    Err(ToolError::Refused(format!(
        "`{shown}` is outside what the skills of this turn declare they write ({allowed})"
    )))
}

impl FsTool {
    pub fn new(op: FsOp) -> FsTool {
        let spec = match op {
            FsOp::Read => spec(
                "read",
                "Read a text file in the workspace. Optional 1-based `offset` line and `limit` lines.",
                json!({"path": {"type": "string"}, "offset": {"type": "integer"}, "limit": {"type": "integer"}}),
                &["path"],
            ),
            FsOp::Write => spec(
                "write",
                "Create or replace a file in the workspace with `content`.",
                json!({"path": {"type": "string"}, "content": {"type": "string"}}),
                &["path", "content"],
            ),
            FsOp::Edit => spec(
                "edit",
                "Replace the text `old` with `new` in a workspace file; `old` must occur exactly once.",
                json!({"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}}),
                &["path", "old", "new"],
            ),
            FsOp::List => spec(
                "list",
                "List a workspace folder (folders end with /).",
                json!({"path": {"type": "string"}}),
                &[],
            ),
            FsOp::Grep => spec(
                "grep",
                "Search workspace files for a regular expression; prints path:line: text.",
                json!({"pattern": {"type": "string"}, "path": {"type": "string"}}),
                &["pattern"],
            ),
        };
        FsTool { spec, op, write_globs: None }
    }

    /// Confines `write` and `edit` to paths matching `globs` (workspace-relative).
    pub fn with_write_globs(mut self, globs: Option<Vec<String>>) -> FsTool {
        self.write_globs = globs.map(Into::into);
        self
    }
}

#[async_trait]
impl Tool for FsTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn group(&self) -> &str {
        "fs"
    }
    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        match self.op {
            FsOp::Read => read(context, &arguments).await,
            FsOp::Write => write(context, &arguments, self.write_globs.as_deref()).await,
            FsOp::Edit => edit(context, &arguments, self.write_globs.as_deref()).await,
            FsOp::List => list(context, &arguments).await,
            FsOp::Grep => grep(context, &arguments).await,
        }
    }
}

async fn read(context: &ToolContext, arguments: &serde_json::Value) -> Result<String, ToolError> {
    let shown = string_arg(arguments, "path")?;
    let path = resolve(&context.workspace, shown)?;
    let text = read_text(&path, shown)?;
    let offset = arguments.get("offset").and_then(|v| v.as_u64()).unwrap_or(1).max(1) as usize;
    let limit = arguments.get("limit").and_then(|v| v.as_u64()).map(|n| n as usize);
    if offset == 1 && limit.is_none() {
        return Ok(text);
    }
    let lines: Vec<&str> = text.lines().skip(offset - 1).take(limit.unwrap_or(usize::MAX)).collect();
    Ok(lines.join("\n"))
}

async fn write(
    context: &ToolContext,
    arguments: &serde_json::Value,
    globs: Option<&[String]>,
) -> Result<String, ToolError> {
    let shown = string_arg(arguments, "path")?;
    let content = string_arg(arguments, "content")?;
    let path = resolve(&context.workspace, shown)?;
    check_writable(globs, &context.workspace, &path, shown)?;
    check_turn_writable(context, &path, shown)?;
    if path.is_dir() {
        return Err(ToolError::InvalidArguments(format!("{shown} is a directory")));
    }
    write_atomic(&context.workspace, &path, content, shown)?;
    Ok(format!("wrote {} bytes to {}", content.len(), display(&context.workspace, &path)))
}

async fn edit(
    context: &ToolContext,
    arguments: &serde_json::Value,
    globs: Option<&[String]>,
) -> Result<String, ToolError> {
    let shown = string_arg(arguments, "path")?;
    let old = string_arg(arguments, "old")?;
    let new = string_arg(arguments, "new")?;
    if old.is_empty() {
        return Err(ToolError::InvalidArguments("`old` must not be empty".into()));
    }
    let path = resolve(&context.workspace, shown)?;
    check_writable(globs, &context.workspace, &path, shown)?;
    check_turn_writable(context, &path, shown)?;
    let text = read_text(&path, shown)?;
    match text.matches(old).count() {
        0 => Err(ToolError::Failed(format!("`old` does not occur in {shown}"))),
        1 => {
            let updated = text.replacen(old, new, 1);
            write_atomic(&context.workspace, &path, &updated, shown)?;
            Ok(format!("edited {shown}"))
        }
        n => Err(ToolError::Failed(format!(
            "`old` occurs {n} times in {shown}; include more context so it occurs once"
        ))),
    }
}

async fn list(context: &ToolContext, arguments: &serde_json::Value) -> Result<String, ToolError> {
    let shown = arguments.get("path").and_then(|v| v.as_str()).unwrap_or(".");
    let path = resolve(&context.workspace, shown)?;
    let reader = std::fs::read_dir(&path).map_err(|e| io_error(shown, e))?;
    let mut entries: Vec<String> = Vec::new();
    for entry in reader.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().ok();
        let line = match kind {
            Some(t) if t.is_dir() => format!("{name}/"),
            Some(t) if t.is_symlink() => format!("{name}@"),
            _ => {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                format!("{name} ({size} bytes)")
            }
        };
        entries.push(line);
    }
    entries.sort();
    let total = entries.len();
    entries.truncate(MAX_LIST_ENTRIES);
    if total > MAX_LIST_ENTRIES {
        entries.push(format!("... {} more entries", total - MAX_LIST_ENTRIES));
    }
    if entries.is_empty() {
        return Ok("(empty)".to_string());
    }
    Ok(entries.join("\n"))
}

async fn grep(context: &ToolContext, arguments: &serde_json::Value) -> Result<String, ToolError> {
    let pattern = string_arg(arguments, "pattern")?;
    let shown = arguments.get("path").and_then(|v| v.as_str()).unwrap_or(".");
    let regex = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| ToolError::InvalidArguments(format!("bad pattern: {e}")))?;
    let start = resolve(&context.workspace, shown)?;
    let workspace = context.workspace.clone();
    let task = tokio::task::spawn_blocking(move || grep_tree(&workspace, &start, &regex));
    task.await.map_err(|e| ToolError::Failed(format!("grep failed: {e}")))?
}

fn grep_tree(workspace: &Path, start: &Path, regex: &regex::Regex) -> Result<String, ToolError> {
    let mut out = Vec::new();
    let mut stack = vec![start.to_path_buf()];
    let mut files_seen = 0usize;
    let mut more = false;
    while let Some(path) = stack.pop() {
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue; // never follow links: they may lead outside the workspace
        }
        if meta.is_dir() {
            if let Ok(reader) = std::fs::read_dir(&path) {
                let mut children: Vec<PathBuf> = reader.flatten().map(|e| e.path()).collect();
                children.sort();
                stack.extend(children.into_iter().rev());
            }
            continue;
        }
        files_seen += 1;
        if files_seen > MAX_GREP_FILES || meta.len() > MAX_READ_BYTES {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if bytes.contains(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            if regex.is_match(line) {
                if out.len() == MAX_GREP_MATCHES {
                    more = true;
                    break;
                }
                let line: String = line.chars().take(300).collect();
                out.push(format!("{}:{}: {}", display(workspace, &path), number + 1, line));
            }
        }
        if more {
            break;
        }
    }
    if out.is_empty() {
        return Ok("no matches".to_string());
    }
    if more {
        out.push(format!("... stopped after {MAX_GREP_MATCHES} matches"));
    }
    Ok(out.join("\n"))
}
