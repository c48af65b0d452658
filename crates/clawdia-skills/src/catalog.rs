//! The skills an agent sees: workspace skills over user skills over bundled ones (by name),
//! each checked for eligibility on this machine and for trust, and the routing of a user
//! message to the skills whose triggers it contains.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use clawdia_core::RoutedSkills;

use crate::registry::{LOCK_FILE, Lock};
use crate::skill::{Origin, Skill, SkillError, parse};

/// Skills shipped inside the binary: (folder name, SKILL.md text).
const BUNDLED: &[(&str, &str)] = &[("brain-notes", include_str!("../bundled/brain-notes/SKILL.md"))];

/// Where an agent's skills come from.
#[derive(Debug, Clone)]
pub struct Locations {
    /// `workspaces/<agent>/skills`.
    pub workspace: Option<PathBuf>,
    /// `$CLAWDIA_HOME/skills`.
    pub user: Option<PathBuf>,
    pub bundled: bool,
}

/// What eligibility is checked against: the directories of `PATH`, the set environment
/// variables, the operating system (`linux`, `darwin`, `win32`, as OpenClaw names them).
#[derive(Debug, Clone)]
pub struct Host {
    pub path: Vec<PathBuf>,
    pub env: HashSet<String>,
    pub os: String,
}

impl Host {
    /// This process's view.
    pub fn current() -> Host {
        let path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        let env = std::env::vars_os()
            .filter(|(_, value)| !value.is_empty())
            .filter_map(|(key, _)| key.into_string().ok())
            .collect();
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            "windows" => "win32",
            other => other,
        };
        Host { path, env, os: os.to_string() }
    }

    fn has_bin(&self, name: &str) -> bool {
        !name.contains('/') && self.path.iter().any(|dir| is_executable(&dir.join(name)))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A loaded skill with its standing.
#[derive(Debug, Clone)]
pub struct Entry {
    pub skill: Skill,
    /// `Err(reason)` when a requirement is missing on this machine.
    pub eligible: Result<(), String>,
    /// Installed from a registry and not yet trusted by the owner: read-only tools only.
    pub trusted: bool,
    /// The version installed from a registry, if it came from one.
    pub version: Option<String>,
    /// Lower-precedence skills of the same name this one hides.
    pub shadows: Vec<Origin>,
}

/// Every skill an agent can see, plus the ones that failed to load.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// By name.
    pub entries: Vec<Entry>,
    pub problems: Vec<SkillError>,
}

impl Catalog {
    /// Loads every skill of `locations`; a bad `SKILL.md` is a problem, the rest still load.
    pub fn load(locations: &Locations, host: &Host) -> Catalog {
        let mut catalog = Catalog::default();
        let mut by_name: BTreeMap<String, Entry> = BTreeMap::new();
        let mut found: Vec<(Skill, bool, Option<String>)> = Vec::new();
        for (origin, dir) in [(Origin::Workspace, &locations.workspace), (Origin::User, &locations.user)] {
            let Some(dir) = dir else { continue };
            let lock = Lock::read(dir).unwrap_or_else(|error| {
                catalog.problems.push(SkillError {
                    path: dir.join(LOCK_FILE).display().to_string(),
                    message: error.to_string(),
                });
                Lock::default()
            });
            for (skill, problem) in read_dir(dir, origin) {
                match (skill, problem) {
                    (Some(skill), _) => {
                        let installed = lock.skills.get(&folder_name(&skill.dir));
                        let trusted = installed.is_none_or(|record| record.trusted);
                        found.push((skill, trusted, installed.map(|record| record.version.clone())));
                    }
                    (None, Some(problem)) => catalog.problems.push(problem),
                    (None, None) => {}
                }
            }
        }
        if locations.bundled {
            for (folder, text) in BUNDLED {
                match parse(text, Path::new(folder), Origin::Bundled) {
                    Ok(mut skill) => {
                        skill.dir = PathBuf::new();
                        found.push((skill, true, None));
                    }
                    Err(problem) => catalog.problems.push(problem),
                }
            }
        }
        // Precedence: the first of a name wins (workspace, then user, then bundled).
        for (skill, trusted, version) in found {
            if let Some(existing) = by_name.get_mut(&skill.name) {
                existing.shadows.push(skill.origin);
                continue;
            }
            let eligible = eligibility(&skill, host);
            by_name
                .insert(skill.name.clone(), Entry { skill, eligible, trusted, version, shadows: Vec::new() });
        }
        catalog.entries = by_name.into_values().collect();
        catalog
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|entry| entry.skill.name == name)
    }

    /// The eligible skills for `message`: every `always` skill, and every skill with a trigger
    /// the message contains (case-insensitive), in name order.
    ///
    /// What the triggered skills declare narrows the turn to what they need together: when
    /// every one declares `mutating: false` the turn is read-only; when every one declares
    /// `writes` (a skill with `mutating: false` writes nothing) file writes are confined to the
    /// union of their globs. One triggered skill that does not declare (OpenClaw's skills do
    /// not) leaves the turn as the agent's policy has it. `always` skills never narrow: they are
    /// in every turn, and narrowing every turn is the agent's `tools` policy's job.
    pub fn route(&self, message: &str) -> RoutedSkills {
        let lowered = message.to_lowercase();
        let mut routed = RoutedSkills::default();
        let mut sections = Vec::new();
        let mut triggered_skills: Vec<&Skill> = Vec::new();
        for entry in &self.entries {
            if entry.eligible.is_err() {
                continue;
            }
            let skill = &entry.skill;
            let triggered = skill
                .triggers
                .iter()
                .any(|trigger| !trigger.is_empty() && lowered.contains(&trigger.to_lowercase()));
            if !(skill.always || triggered) {
                continue;
            }
            if triggered && !skill.always {
                triggered_skills.push(skill);
            }
            routed.names.push(skill.name.clone());
            routed.read_only |= !entry.trusted;
            let standing = if entry.trusted { "" } else { " (untrusted: read-only tools this turn)" };
            sections.push(format!("## Skill: {}{standing}\n\n{}", skill.name, skill.body));
        }
        if !sections.is_empty() {
            routed.prompt = format!("# Skills for this request\n\n{}", sections.join("\n\n"));
        }
        if !triggered_skills.is_empty() {
            routed.declared_read_only = triggered_skills.iter().all(|skill| skill.mutating == Some(false));
            routed.write_globs = declared_writes(&triggered_skills);
        }
        routed
    }
}

/// The union of the `writes` globs of `skills` when every one declares where it writes (a
/// skill declaring `mutating: false` writes nowhere), else `None`.
fn declared_writes(skills: &[&Skill]) -> Option<Vec<String>> {
    let mut globs: Vec<String> = Vec::new();
    for skill in skills {
        match (&skill.writes, skill.mutating) {
            (Some(writes), Some(true) | None) => globs.extend(writes.iter().cloned()),
            (_, Some(false)) => {}
            (None, _) => return None,
        }
    }
    globs.sort();
    globs.dedup();
    Some(globs)
}

/// Whether `skill` can run on `host`, else the first missing requirement.
pub fn eligibility(skill: &Skill, host: &Host) -> Result<(), String> {
    let requires = &skill.requires;
    if !requires.os.is_empty() && !requires.os.contains(&host.os) {
        return Err(format!("runs on {} only, this is {}", requires.os.join(", "), host.os));
    }
    if let Some(missing) = requires.bins.iter().find(|bin| !host.has_bin(bin)) {
        return Err(format!("needs the `{missing}` binary on PATH"));
    }
    if !requires.any_bins.is_empty() && !requires.any_bins.iter().any(|bin| host.has_bin(bin)) {
        return Err(format!("needs one of {} on PATH", requires.any_bins.join(", ")));
    }
    if let Some(missing) = requires.env.iter().find(|name| !host.env.contains(*name)) {
        return Err(format!("needs the environment variable {missing}"));
    }
    Ok(())
}

/// The skills of one folder: each subfolder holding a `SKILL.md`, in name order.
fn read_dir(dir: &Path, origin: Origin) -> Vec<(Option<Skill>, Option<SkillError>)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() && !folder_name(path).starts_with('.'))
        .collect();
    folders.sort();
    folders
        .into_iter()
        .filter_map(|folder| {
            let file = folder.join("SKILL.md");
            if !file.is_file() {
                return None;
            }
            Some(match std::fs::read_to_string(&file) {
                Ok(text) => match parse(&text, &folder, origin) {
                    Ok(skill) => (Some(skill), None),
                    Err(problem) => (None, Some(problem)),
                },
                Err(error) => (
                    None,
                    Some(SkillError {
                        path: file.display().to_string(),
                        message: format!("cannot read it: {error}"),
                    }),
                ),
            })
        })
        .collect()
}

fn folder_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}
