//! Resolving a model-supplied path inside a workspace. Refuses absolute paths, `..`, and any
//! existing ancestor that resolves (through symlinks) outside the workspace.

use std::path::{Component, Path, PathBuf};

use clawdia_core::ToolError;

/// Resolves `relative` against `workspace`. The result is inside the canonical workspace; the
/// final component may not exist yet (for `write`).
pub fn resolve(workspace: &Path, relative: &str) -> Result<PathBuf, ToolError> {
    let relative = relative.trim();
    let escape = || ToolError::PathEscape(relative.to_string());
    if relative.contains('\0') {
        return Err(ToolError::InvalidArguments("path contains a NUL byte".into()));
    }
    let candidate = Path::new(if relative.is_empty() { "." } else { relative });
    let mut clean = PathBuf::new();
    for component in candidate.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(escape()),
        }
    }
    let root =
        workspace.canonicalize().map_err(|e| ToolError::Failed(format!("workspace unavailable: {e}")))?;
    let joined = root.join(&clean);
    // Canonicalize the deepest existing ancestor: symlinks anywhere on the way are resolved.
    let mut existing = joined.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.symlink_metadata() {
            Ok(_) => break,
            Err(_) => {
                let Some(name) = existing.file_name() else { return Err(escape()) };
                rest.push(name.to_owned());
                existing = existing.parent().ok_or_else(escape)?;
            }
        }
    }
    let real = existing.canonicalize().map_err(|_| escape())?;
    if !real.starts_with(&root) {
        return Err(escape());
    }
    let mut resolved = real;
    for name in rest.into_iter().rev() {
        resolved.push(name);
    }
    Ok(resolved)
}

/// The path as shown to the model: relative to the workspace, `/`-separated.
pub fn display(workspace: &Path, path: &Path) -> String {
    let root = workspace.canonicalize().unwrap_or_else(|_| workspace.to_path_buf());
    match path.strip_prefix(&root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}
