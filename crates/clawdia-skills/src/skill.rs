//! One skill: a folder holding `SKILL.md`, YAML frontmatter plus a markdown body.
//!
//! Clawdia's keys are `name`, `description`, `triggers` (phrases), `mutating`, `writes` (path
//! globs) and `always`; `mutating` and `writes` are kept as declared or not (`None`), since
//! only a declaration narrows a turn (`Catalog::route`). OpenClaw's `SKILL.md` loads unchanged: its `metadata.openclaw` object
//! (`requires.bins`, `requires.anyBins`, `requires.env`, `os`, `always`; often written as
//! one-line JSON inside the YAML) is read, and every other key (`homepage`, `emoji`,
//! `user-invocable`, ...) is accepted and ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Where a skill was found; earlier wins when two share a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `workspaces/<agent>/skills/`.
    Workspace,
    /// `$CLAWDIA_HOME/skills/`.
    User,
    /// Shipped inside the binary.
    Bundled,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Workspace => "workspace",
            Origin::User => "user",
            Origin::Bundled => "bundled",
        }
    }
}

/// What a skill needs from the machine before it may run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// Every one of these binaries must be on `PATH`.
    pub bins: Vec<String>,
    /// At least one of these binaries must be on `PATH` (when non-empty).
    pub any_bins: Vec<String>,
    /// Every one of these environment variables must be set.
    pub env: Vec<String>,
    /// The operating systems it runs on (`linux`, `darwin`, `win32`); empty = any.
    pub os: Vec<String>,
}

/// A parsed skill.
#[derive(Debug, Clone, PartialEq)]
pub struct Skill {
    pub name: String,
    pub description: String,
    /// Phrases whose (case-insensitive) presence in a user message routes the skill in.
    pub triggers: Vec<String>,
    /// Whether following the skill changes things (writes files, sends messages, ...), as
    /// declared; `None` when the frontmatter does not say (OpenClaw's skills never do). A turn
    /// whose triggered skills all declare `false` gets read-only tools.
    pub mutating: Option<bool>,
    /// Workspace path globs the skill writes to, as declared (`[]`: none); `None` when the
    /// frontmatter does not say. A turn whose triggered skills all declare them may write only
    /// there.
    pub writes: Option<Vec<String>>,
    /// In every turn, whatever the message says.
    pub always: bool,
    pub requires: Requirements,
    /// The markdown after the frontmatter: what gets injected into a turn.
    pub body: String,
    /// The folder holding `SKILL.md` (empty for bundled skills).
    pub dir: PathBuf,
    pub origin: Origin,
}

/// Why a `SKILL.md` could not be loaded; the message names the file and the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SkillError {
    pub path: String,
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFrontmatter {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    triggers: Option<StringOrList>,
    mutating: Option<bool>,
    #[serde(default)]
    writes: Option<StringOrList>,
    always: Option<bool>,
    metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        let items = match self {
            StringOrList::One(one) => vec![one],
            StringOrList::Many(many) => many,
        };
        items.into_iter().map(|item| item.trim().to_string()).filter(|item| !item.is_empty()).collect()
    }
}

/// Parses the text of a `SKILL.md`. `dir` is its folder (its name is the fallback skill name).
pub fn parse(text: &str, dir: &Path, origin: Origin) -> Result<Skill, SkillError> {
    let path = dir.join("SKILL.md");
    let fail = |message: String| SkillError { path: path.display().to_string(), message };
    let (yaml, body) =
        clawdia_core::frontmatter_fence(text).map(|(yaml, body)| (&text[yaml], &text[body..])).ok_or_else(
            || fail("no frontmatter: the file must start with a `---` line and close it with another".into()),
        )?;
    let raw: RawFrontmatter = if yaml.trim().is_empty() {
        RawFrontmatter::default()
    } else {
        serde_saphyr::from_str(yaml)
            .map_err(|error| fail(format!("bad frontmatter: {}", clawdia_core::first_line(&error))))?
    };
    let folder = dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let name = raw.name.map(|name| name.trim().to_string()).filter(|name| !name.is_empty()).unwrap_or(folder);
    if !valid_name(&name) {
        return Err(fail(format!(
            "skill name `{name}` must be 1-64 characters of letters, digits, `-`, `_` or `.`"
        )));
    }
    let (requires, meta_always) = openclaw_metadata(raw.metadata.as_ref()).map_err(fail)?;
    Ok(Skill {
        name,
        description: raw.description.unwrap_or_default().trim().to_string(),
        triggers: raw.triggers.map(StringOrList::into_vec).unwrap_or_default(),
        mutating: raw.mutating,
        writes: raw.writes.map(StringOrList::into_vec),
        always: raw.always.unwrap_or(false) || meta_always,
        requires,
        body: body.trim().to_string(),
        dir: dir.to_path_buf(),
        origin,
    })
}

/// Skill names become folder names: no separators, no dot-dot, nothing odd.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `metadata.openclaw` (or its older spelling `metadata.clawdbot`): requirements and `always`.
fn openclaw_metadata(metadata: Option<&Value>) -> Result<(Requirements, bool), String> {
    let Some(metadata) = metadata else { return Ok((Requirements::default(), false)) };
    // OpenClaw writes the metadata as a JSON string in some skills.
    let parsed;
    let metadata = match metadata {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text)
                .map_err(|error| format!("metadata is a string but not JSON: {error}"))?;
            &parsed
        }
        other => other,
    };
    let Some(open) = metadata.get("openclaw").or_else(|| metadata.get("clawdbot")) else {
        return Ok((Requirements::default(), false));
    };
    let list = |value: Option<&Value>, key: &str| -> Result<Vec<String>, String> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(one)) => Ok(vec![one.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_string).ok_or_else(|| format!("{key} must list strings"))
                })
                .collect(),
            Some(_) => Err(format!("{key} must be a list of strings")),
        }
    };
    let requires = open.get("requires");
    let requirements = Requirements {
        bins: list(requires.and_then(|r| r.get("bins")), "metadata.openclaw.requires.bins")?,
        any_bins: list(requires.and_then(|r| r.get("anyBins")), "metadata.openclaw.requires.anyBins")?,
        env: list(requires.and_then(|r| r.get("env")), "metadata.openclaw.requires.env")?,
        os: list(open.get("os"), "metadata.openclaw.os")?,
    };
    let always = match open.get("always") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err("metadata.openclaw.always must be true or false".to_string()),
    };
    Ok((requirements, always))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        PathBuf::from(format!("/skills/{name}"))
    }

    #[test]
    fn clawdia_keys_parse() {
        let text = "---\nname: deploy\ndescription: Ship it\ntriggers: [\"Deploy the\", release]\nmutating: true\nwrites: [\"infra/**\"]\n---\n# Deploy\n\nRun the script.\n";
        let skill = parse(text, &dir("x"), Origin::Workspace).expect("parses");
        assert_eq!(skill.name, "deploy");
        assert_eq!(skill.description, "Ship it");
        assert_eq!(skill.triggers, ["Deploy the", "release"]);
        assert_eq!(skill.mutating, Some(true));
        assert_eq!(skill.writes, Some(vec!["infra/**".to_string()]));
        assert!(!skill.always);
        assert_eq!(skill.body, "# Deploy\n\nRun the script.");
    }

    #[test]
    fn openclaw_skill_md_loads_unchanged() {
        // The shape of OpenClaw's bundled skills: metadata as one-line JSON, extra keys.
        let text = r#"---
name: weather
description: Get current weather and forecasts (no API key required).
homepage: https://wttr.in/:help
metadata: {"openclaw":{"emoji":"🌤️","requires":{"bins":["curl"],"env":["WTTR_KEY"]},"os":["linux","darwin"],"always":true}}
---

# Weather

Use `curl wttr.in/London?format=3`.
"#;
        let skill = parse(text, &dir("weather"), Origin::User).expect("parses");
        assert_eq!(skill.name, "weather");
        assert_eq!(skill.requires.bins, ["curl"]);
        assert_eq!(skill.requires.env, ["WTTR_KEY"]);
        assert_eq!(skill.requires.os, ["linux", "darwin"]);
        assert!(skill.always);
        assert!(skill.body.starts_with("# Weather"));
        // The metadata as a quoted JSON string works too.
        let quoted = "---\nname: w\nmetadata: '{\"openclaw\":{\"requires\":{\"anyBins\":[\"rg\",\"grep\"]}}}'\n---\nbody\n";
        let skill = parse(quoted, &dir("w"), Origin::User).expect("parses");
        assert_eq!(skill.requires.any_bins, ["rg", "grep"]);
    }

    #[test]
    fn the_folder_names_a_skill_without_a_name() {
        let skill =
            parse("---\ndescription: d\n---\nbody", &dir("from-folder"), Origin::User).expect("parses");
        assert_eq!(skill.name, "from-folder");
    }

    #[test]
    fn malformed_frontmatter_is_one_line_naming_the_file() {
        for (text, expected) in [
            ("no fence at all", "no frontmatter"),
            ("---\nname: x\n", "no frontmatter"),
            ("---\nname: [unclosed\n---\nbody", "bad frontmatter"),
            ("---\ntriggers: {a: 1}\n---\nbody", "bad frontmatter"),
            ("---\nname: ../escape\n---\nbody", "must be 1-64 characters"),
            ("---\nmetadata: {openclaw: {requires: {bins: 3}}}\n---\nbody", "requires.bins"),
            ("---\nmetadata: 'not json'\n---\nbody", "not JSON"),
        ] {
            let error = parse(text, &dir("bad"), Origin::Workspace).expect_err(text);
            let message = error.to_string();
            assert!(message.starts_with("/skills/bad/SKILL.md: "), "{message}");
            assert!(message.contains(expected), "{text:?} -> {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "(---\n)?[ -~\n]{0,200}(\n---\n)?[ -~\n]{0,50}") {
            let _ = parse(&text, &dir("p"), Origin::Workspace);
        }
    }
}
