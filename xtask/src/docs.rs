//! Generated documentation: the config reference and the commented example file, both produced
//! by `clawdia-config` so docs and code cannot drift.

use std::path::Path;

use anyhow::{Context, bail};

/// (path relative to the workspace root, generated contents).
pub fn generated() -> Vec<(&'static str, String)> {
    vec![
        ("docs/config-reference.md", clawdia_config::reference_markdown()),
        ("docs/clawdia.example.toml", clawdia_config::example_toml().to_string()),
    ]
}

pub fn write(root: &Path) -> anyhow::Result<()> {
    for (path, text) in generated() {
        let full = root.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, text).with_context(|| format!("writing {}", full.display()))?;
        println!("wrote {path}");
    }
    Ok(())
}

pub fn check(root: &Path) -> anyhow::Result<()> {
    let stale: Vec<&str> = generated()
        .into_iter()
        .filter(|(path, text)| {
            std::fs::read_to_string(root.join(path)).ok().as_deref() != Some(text.as_str())
        })
        .map(|(path, _)| path)
        .collect();
    if !stale.is_empty() {
        bail!("stale generated docs: {} (run `cargo xtask gen`)", stale.join(", "));
    }
    println!("generated docs are up to date");
    Ok(())
}
