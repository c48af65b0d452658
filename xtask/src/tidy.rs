//! Tidy checks that run under `cargo test`: every `.rs` file opens with a `//!` doc, every
//! crate under `crates/` is classified (foundation, capability, root, dev-only) and the
//! dependency rules hold (capability crates never depend on each other; only the roots, the
//! runtime and the binary, combine them; a dev-only crate is never a normal dependency), and
//! generated docs are fresh.

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

/// Where a crate stands in the dependency rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Anyone may use it; it depends on foundation crates at most (each has its own rule below).
    Foundation,
    /// One capability (a provider wire, a store, a channel, ...): depends only on foundation
    /// crates, never on another capability crate, not even as a dev-dependency.
    Capability,
    /// Combines capabilities: the runtime and the `clawdia` binary. May depend on any crate.
    Root,
    /// Only ever a dev-dependency (the mock LLM and test helpers); depends on foundation crates
    /// at most.
    DevOnly,
}

/// Every crate under `crates/`, classified. A new crate must be added here (a channel crate is
/// a capability), or `every_crate_is_classified` fails naming it.
const CRATES: &[(&str, Class)] = &[
    ("clawdia-core", Class::Foundation),
    ("clawdia-config", Class::Foundation),
    ("clawdia-sandbox", Class::Foundation),
    ("clawdia-sqlite", Class::Foundation),
    ("clawdia-llm", Class::Capability),
    ("clawdia-store", Class::Capability),
    ("clawdia-agent", Class::Capability),
    ("clawdia-tools", Class::Capability),
    ("clawdia-server", Class::Capability),
    ("clawdia-brain", Class::Capability),
    ("clawdia-embed", Class::Capability),
    ("clawdia-local", Class::Capability),
    ("clawdia-sched", Class::Capability),
    ("clawdia-skills", Class::Capability),
    ("clawdia-mcp", Class::Capability),
    ("clawdia-outbox", Class::Capability),
    ("clawdia-telegram", Class::Capability),
    ("clawdia-speech", Class::Capability),
    ("clawdia-email", Class::Capability),
    ("clawdia-runtime", Class::Root),
    ("clawdia", Class::Root),
    ("clawdia-test-support", Class::DevOnly),
];

/// The crate folders under `crates/` (those with a `Cargo.toml`), sorted.
fn crate_dirs(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The class of each name in `crates`, or the names that have none.
fn classify(crates: &[String]) -> Result<Vec<(&str, Class)>, Vec<&str>> {
    let class = |name: &str| CRATES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
    let unknown: Vec<&str> = crates.iter().map(String::as_str).filter(|n| class(n).is_none()).collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    Ok(crates.iter().filter_map(|n| class(n).map(|c| (n.as_str(), c))).collect())
}

/// The dependency rule for one crate, given its class and its clawdia dependencies; `Err` names
/// what breaks it.
fn check_crate(
    name: &str,
    class: Class,
    deps: &[String],
    dev_deps: &[String],
    class_of: &dyn Fn(&str) -> Option<Class>,
) -> Result<(), String> {
    let of = |d: &String| class_of(d);
    if let Some(d) = deps.iter().find(|d| of(d) == Some(Class::DevOnly)) {
        return Err(format!("{name} depends on the dev-only crate {d} outside dev-dependencies"));
    }
    if let Some(d) = deps.iter().chain(dev_deps).find(|d| of(d).is_none()) {
        return Err(format!("{name} depends on {d}, which is not classified in xtask/src/tidy.rs"));
    }
    match class {
        Class::Foundation => {
            // core depends on nothing; sqlite is standalone; config and sandbox only on core.
            let allowed: &[&str] = match name {
                "clawdia-config" | "clawdia-sandbox" => &["clawdia-core"],
                _ => &[],
            };
            let bad: Vec<&String> = deps.iter().filter(|d| !allowed.contains(&d.as_str())).collect();
            if !bad.is_empty() {
                return Err(format!("foundation crate {name} may depend only on {allowed:?}, not {bad:?}"));
            }
            let bad_dev: Vec<&String> =
                dev_deps.iter().filter(|d| of(d) == Some(Class::Capability)).collect();
            if !bad_dev.is_empty() {
                return Err(format!("{name} has capability crates as dev-dependencies: {bad_dev:?}"));
            }
        }
        Class::Capability => {
            let bad: Vec<&String> = deps.iter().filter(|d| of(d) != Some(Class::Foundation)).collect();
            if !bad.is_empty() {
                return Err(format!(
                    "capability crate {name} may depend only on foundation crates, not {bad:?}"
                ));
            }
            let bad_dev: Vec<&String> =
                dev_deps.iter().filter(|d| of(d) == Some(Class::Capability)).collect();
            if !bad_dev.is_empty() {
                return Err(format!("{name} has capability crates as dev-dependencies: {bad_dev:?}"));
            }
        }
        Class::Root => {}
        Class::DevOnly => {
            let bad: Vec<&String> = deps.iter().filter(|d| of(d) != Some(Class::Foundation)).collect();
            if !bad.is_empty() {
                return Err(format!(
                    "dev-only crate {name} may depend only on foundation crates, not {bad:?}"
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn every_crate_is_classified() {
    let root = workspace_root();
    let dirs = crate_dirs(&root);
    assert!(dirs.len() >= CRATES.len() / 2, "found the crates: {dirs:?}");
    if let Err(unknown) = classify(&dirs) {
        panic!(
            "crates not classified in xtask/src/tidy.rs CRATES (foundation, capability, root or dev-only): {unknown:?}"
        );
    }
    let stale: Vec<&str> = CRATES.iter().map(|(n, _)| *n).filter(|n| !dirs.iter().any(|d| d == n)).collect();
    assert!(stale.is_empty(), "classified crates that no longer exist under crates/: {stale:?}");
    // The control: a crate nobody classified is refused by name.
    let with_new = [dirs.clone(), vec!["clawdia-whatsapp".to_string()]].concat();
    assert_eq!(classify(&with_new).unwrap_err(), vec!["clawdia-whatsapp"]);
}

#[test]
fn crate_dependency_rules_hold() {
    let root = workspace_root();
    let dirs = crate_dirs(&root);
    let classes = classify(&dirs).unwrap_or_else(|unknown| panic!("unclassified crates: {unknown:?}"));
    let class_of = |name: &str| CRATES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
    let mut failures = Vec::new();
    for (name, class) in &classes {
        let (deps, dev_deps) = clawdia_deps(&root.join("crates").join(name).join("Cargo.toml"));
        if let Err(problem) = check_crate(name, *class, &deps, &dev_deps, &class_of) {
            failures.push(problem);
        }
    }
    assert!(failures.is_empty(), "the crate dependency rule is broken:\n{}", failures.join("\n"));
    assert!(classes.iter().any(|(_, c)| *c == Class::Capability), "checked capability crates");
}

#[test]
fn the_dependency_rule_refuses_what_it_should() {
    let class_of = |name: &str| CRATES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c);
    let v = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let check =
        |name, class, deps: &[&str], dev: &[&str]| check_crate(name, class, &v(deps), &v(dev), &class_of);
    // Allowed: a capability on foundations, with test-support as a dev-dependency; a root on
    // capabilities; config on core.
    check(
        "clawdia-sched",
        Class::Capability,
        &["clawdia-core", "clawdia-sandbox"],
        &["clawdia-test-support"],
    )
    .unwrap();
    check("clawdia", Class::Root, &["clawdia-runtime", "clawdia-brain", "clawdia-store"], &[]).unwrap();
    check("clawdia-config", Class::Foundation, &["clawdia-core"], &[]).unwrap();
    // Refused, each by name.
    let err = check("clawdia-sched", Class::Capability, &["clawdia-core", "clawdia-store"], &[]).unwrap_err();
    assert!(err.contains("clawdia-store"), "{err}");
    let err = check("clawdia-llm", Class::Capability, &[], &["clawdia-agent"]).unwrap_err();
    assert!(err.contains("dev-dependencies") && err.contains("clawdia-agent"), "{err}");
    let err = check("clawdia-tools", Class::Capability, &["clawdia-test-support"], &[]).unwrap_err();
    assert!(err.contains("dev-only"), "{err}");
    let err = check("clawdia-sqlite", Class::Foundation, &["clawdia-core"], &[]).unwrap_err();
    assert!(err.contains("clawdia-core"), "{err}");
    let err = check("clawdia-sandbox", Class::Foundation, &["clawdia-config"], &[]).unwrap_err();
    assert!(err.contains("clawdia-config"), "{err}");
    let err = check("clawdia-llm", Class::Capability, &["clawdia-whatsapp"], &[]).unwrap_err();
    assert!(err.contains("not classified"), "{err}");
}

#[test]
fn generated_docs_are_fresh() {
    crate::docs::check(&workspace_root()).unwrap();
}
