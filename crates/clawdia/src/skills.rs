//! `clawdia skills list|install|trust`: an agent's skills (workspace > user > bundled) with
//! their eligibility and trust, installs from a registry folder or URL (sha256-pinned, untrusted
//! until trusted), and granting trust.

use std::path::{Path, PathBuf};

use clawdia_skills::{Catalog, Installed, Registry, Skills, install, trust};

use crate::{Outcome, SkillsCommand, load_config};

pub async fn run(home: PathBuf, command: SkillsCommand) -> Outcome {
    match command {
        SkillsCommand::List { agent, json } => {
            let workspace = workspace(&home, &agent)?;
            let catalog = Skills::new(Some(home.join("skills"))).catalog(&workspace);
            if json {
                println!("{}", serde_json::to_string_pretty(&as_json(&catalog))?);
            } else {
                print_list(&catalog);
            }
            Ok(())
        }
        SkillsCommand::Install { name, registry, agent } => {
            let registry = registry
                .or_else(|| std::env::var("CLAWDIA_SKILLS_REGISTRY").ok())
                .ok_or("no registry: pass --registry DIR|URL or set CLAWDIA_SKILLS_REGISTRY")?;
            let dir = skills_dir(&home, agent.as_deref())?;
            clawdia_runtime::install_crypto_provider();
            let outcome = install(&Registry::parse(&registry), &name, &dir).await?;
            let trust_hint = format!("untrusted (read-only tools) until `clawdia skills trust {name}`");
            match outcome {
                Installed::New { version } => {
                    println!("installed {name} {version} in {}; {trust_hint}", dir.display())
                }
                Installed::Upgraded { from, to } => {
                    println!("upgraded {name} {from} -> {to} in {}; {trust_hint}", dir.display())
                }
                Installed::Unchanged { version } => println!("{name} {version} is already installed"),
            }
            Ok(())
        }
        SkillsCommand::Trust { name, agent } => {
            let dir = skills_dir(&home, agent.as_deref())?;
            let record = trust(&dir, &name)?;
            println!("trusted {name} {} (sha256 {})", record.version, record.sha256);
            Ok(())
        }
    }
}

/// The workspace of `agent` from the config.
fn workspace(home: &Path, agent: &str) -> Result<PathBuf, crate::Failure> {
    let config = load_config(home)?;
    config
        .agents
        .get(agent)
        .map(|agent| agent.workspace.clone())
        .ok_or_else(|| crate::Failure::config(format!("no agent `{agent}` in the config")))
}

/// `--agent A`: that agent's workspace `skills/`; else the home's `skills/`.
fn skills_dir(home: &Path, agent: Option<&str>) -> Result<PathBuf, crate::Failure> {
    match agent {
        Some(agent) => Ok(workspace(home, agent)?.join("skills")),
        None => Ok(home.join("skills")),
    }
}

fn print_list(catalog: &Catalog) {
    println!("{:<20} {:<10} {:<10} {:<9} triggers / reason", "skill", "origin", "eligible", "trusted");
    for entry in &catalog.entries {
        let skill = &entry.skill;
        let (eligible, detail) = match &entry.eligible {
            Ok(()) if skill.always => ("yes", "always".to_string()),
            Ok(()) => ("yes", skill.triggers.join(", ")),
            Err(reason) => ("no", reason.clone()),
        };
        let trusted = if entry.trusted { "yes" } else { "no" };
        println!("{:<20} {:<10} {:<10} {:<9} {detail}", skill.name, skill.origin.name(), eligible, trusted);
    }
    for problem in &catalog.problems {
        println!("not loaded: {problem}");
    }
}

pub(crate) fn as_json(catalog: &Catalog) -> serde_json::Value {
    let skills: Vec<serde_json::Value> = catalog
        .entries
        .iter()
        .map(|entry| {
            serde_json::json!({
                "name": entry.skill.name,
                "description": entry.skill.description,
                "origin": entry.skill.origin.name(),
                "triggers": entry.skill.triggers,
                "always": entry.skill.always,
                "mutating": entry.skill.mutating,
                "writes": entry.skill.writes,
                "eligible": entry.eligible.is_ok(),
                "reason": entry.eligible.as_ref().err(),
                "trusted": entry.trusted,
                "version": entry.version,
                "shadows": entry.shadows.iter().map(|origin| origin.name()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let problems: Vec<String> = catalog.problems.iter().map(ToString::to_string).collect();
    serde_json::json!({ "skills": skills, "problems": problems })
}
