//! Skills: folders holding `SKILL.md` (YAML frontmatter + markdown), OpenClaw's format loaded
//! unchanged. Workspace skills take precedence over the owner's (`$CLAWDIA_HOME/skills`),
//! which take precedence over the bundled ones. A skill whose requirements are missing on this
//! machine is listed as ineligible with the reason and never routed. Routing is a
//! case-insensitive substring match of a skill's triggers on the user message; `always`
//! skills are in every turn. Skills installed from a registry are pinned by sha256 and stay
//! untrusted (read-only tools) until the owner trusts them.

pub mod catalog;
pub mod registry;
pub mod skill;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawdia_core::{RoutedSkills, SkillRouter};

pub use catalog::{Catalog, Entry, Host, Locations, eligibility};
pub use registry::{Installed, Lock, Record, Registry, RegistryError, install, trust};
pub use skill::{Origin, Requirements, Skill, SkillError};

/// How long a loaded catalog is reused before the folders are read again.
const RELOAD_AFTER: Duration = Duration::from_secs(5);

/// The gateway's router: loads an agent's catalog (workspace `skills/`, the home's `skills/`,
/// bundled) and routes each turn's message, re-reading the folders at most every few seconds
/// so edits and installs show up without a restart.
pub struct Skills {
    user: Option<PathBuf>,
    cache: Mutex<Vec<(PathBuf, Instant, Arc<Catalog>)>>,
}

impl std::fmt::Debug for Skills {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Skills").field("user", &self.user).finish_non_exhaustive()
    }
}

impl Skills {
    /// `user`: the owner's skills folder (`$CLAWDIA_HOME/skills`).
    pub fn new(user: Option<PathBuf>) -> Skills {
        Skills { user, cache: Mutex::new(Vec::new()) }
    }

    /// The catalog an agent with `workspace` sees.
    pub fn catalog(&self, workspace: &Path) -> Catalog {
        let locations =
            Locations { workspace: Some(workspace.join("skills")), user: self.user.clone(), bundled: true };
        Catalog::load(&locations, &Host::current())
    }

    /// The agent's catalog, read again once it is older than [`RELOAD_AFTER`]. The folders
    /// are read without the cache's lock held, so a turn never waits behind another turn's
    /// reload; two turns that both find the catalog stale may both read it, and the later one
    /// is kept.
    fn cached(&self, workspace: &Path) -> Arc<Catalog> {
        let fresh = self
            .lock()
            .iter()
            .find(|(dir, loaded, _)| dir == workspace && loaded.elapsed() < RELOAD_AFTER)
            .map(|(_, _, catalog)| catalog.clone());
        if let Some(catalog) = fresh {
            return catalog;
        }
        let catalog = Arc::new(self.catalog(workspace));
        for problem in &catalog.problems {
            tracing::warn!(%problem, "skill not loaded");
        }
        let mut cache = self.lock();
        cache.retain(|(dir, _, _)| dir != workspace);
        cache.push((workspace.to_path_buf(), Instant::now(), catalog.clone()));
        catalog
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PathBuf, Instant, Arc<Catalog>)>> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SkillRouter for Skills {
    fn route(&self, _agent: &str, workspace: &Path, message: &str) -> RoutedSkills {
        self.cached(workspace).route(message)
    }
}

#[cfg(test)]
mod tests;
