//! Tidy checks that run under `cargo test`: every `.rs` file opens with a `//!` doc, the crate
//! dependency rules hold (capability crates never depend on each other; only the runtime names
//! them all; the test-support crate is never a normal dependency), and generated docs are fresh.

use std::path::{Path, PathBuf};

use crate::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    rust_files(&root.join("xtask"), &mut files);
    assert!(files.len() > 20, "found the sources");
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().starts_with("//!"))
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading `//!` doc: {missing:?}");
}

/// The clawdia crates a crate depends on, in `[dependencies]` and `[dev-dependencies]`.
fn clawdia_deps(manifest: &Path) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(manifest).unwrap();
    let value: toml::Table = toml::from_str(&text).unwrap();
    let names = |key: &str| -> Vec<String> {
        value
            .get(key)
            .and_then(|t| t.as_table())
            .map(|t| t.keys().filter(|k| k.starts_with("clawdia")).cloned().collect())
            .unwrap_or_default()
    };
    (names("dependencies"), names("dev-dependencies"))
}

#[test]
fn crate_dependency_rules_hold() {
    let root = workspace_root();
    // Foundation crates: anyone may use them. Capability crates: only the runtime combines them.
    let foundation = ["clawdia-core", "clawdia-config", "clawdia-sandbox", "clawdia-sqlite"];
    let capability = [
        "clawdia-llm",
        "clawdia-store",
        "clawdia-agent",
        "clawdia-tools",
        "clawdia-server",
        "clawdia-brain",
        "clawdia-embed",
        "clawdia-local",
        "clawdia-sched",
        "clawdia-skills",
        "clawdia-mcp",
        "clawdia-outbox",
    ];
    let mut seen = 0;
    for entry in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (deps, dev_deps) = clawdia_deps(&entry.path().join("Cargo.toml"));
        assert!(
            !deps.contains(&"clawdia-test-support".to_string()),
            "{name} depends on the test-support crate outside dev-dependencies"
        );
        if name == "clawdia-core" {
            assert!(deps.is_empty(), "clawdia-core depends on {deps:?}");
        }
        if name == "clawdia-sandbox" {
            assert!(deps.iter().all(|d| d == "clawdia-core"), "clawdia-sandbox depends on {deps:?}");
        }
        if name == "clawdia-sqlite" {
            assert!(deps.is_empty(), "clawdia-sqlite depends on {deps:?}");
        }
        if capability.contains(&name.as_str()) || name == "clawdia-config" {
            seen += 1;
            let bad: Vec<&String> = deps
                .iter()
                .filter(|d| {
                    !foundation.contains(&d.as_str()) || (name == "clawdia-config" && *d != "clawdia-core")
                })
                .collect();
            assert!(
                bad.is_empty(),
                "{name} may depend only on clawdia-core (and clawdia-config), not {bad:?}"
            );
            let bad_dev: Vec<&String> =
                dev_deps.iter().filter(|d| capability.contains(&d.as_str())).collect();
            assert!(bad_dev.is_empty(), "{name} has capability crates as dev-dependencies: {bad_dev:?}");
        }
        if name == "clawdia" {
            assert!(
                deps.iter().all(|d| d == "clawdia-runtime" || d == "clawdia-core"),
                "the binary goes through the runtime: {deps:?}"
            );
        }
    }
    assert_eq!(seen, capability.len() + 1, "every capability crate was checked");
}

#[test]
fn generated_docs_are_fresh() {
    crate::docs::check(&workspace_root()).unwrap();
}
