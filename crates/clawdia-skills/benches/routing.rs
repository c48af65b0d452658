//! Skill routing with 500 installed skills: `cargo bench -p clawdia-skills --bench routing`.
//! Prints, per message, the routing time of a loaded catalog and of the gateway's router (its
//! cached catalog included), and the time to load the 500 skills from disk (which the router
//! does at most every few seconds). Target: at most 1 ms per message.

use std::time::{Duration, Instant};

use clawdia_core::SkillRouter;
use clawdia_skills::{Catalog, Host, Locations, Skills};

const SKILLS: usize = 500;
const MESSAGES: usize = 2_000;

fn main() {
    let home = tempfile::tempdir().expect("tempdir");
    let user = home.path().join("skills");
    for n in 0..SKILLS {
        let dir = user.join(format!("skill-{n:03}"));
        std::fs::create_dir_all(&dir).expect("skill folder");
        let body = format!("Steps for task {n}.\n\n").repeat(20);
        let text = format!(
            "---\nname: skill-{n:03}\ndescription: Handles task number {n} for the owner.\n\
             triggers: [\"do task {n} now\", \"Task-{n} report\", \"topic{n} summary\"]\n---\n{body}"
        );
        std::fs::write(dir.join("SKILL.md"), text).expect("SKILL.md");
    }
    let workspace = home.path().join("workspace");
    std::fs::create_dir_all(&workspace).expect("workspace");
    let locations =
        Locations { workspace: Some(workspace.join("skills")), user: Some(user.clone()), bundled: true };

    let mut loads = Vec::new();
    let mut catalog = None;
    for _ in 0..20 {
        let started = Instant::now();
        catalog = Some(Catalog::load(&locations, &Host::current()));
        loads.push(started.elapsed());
    }
    let catalog = catalog.expect("loaded");
    assert_eq!(catalog.entries.len(), SKILLS + 1, "500 skills and the bundled one");
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);

    let messages: Vec<String> = (0..MESSAGES)
        .map(|i| match i % 4 {
            0 => format!("Could you please do task {} now? Thanks, and keep it short.", i % SKILLS),
            1 => format!("I need the TASK-{} REPORT before the meeting this afternoon", i % SKILLS),
            2 => "What's the weather like tomorrow in Lisbon, and should I bring an umbrella?".to_string(),
            _ => {
                format!("{} and also a topic{} summary please", "long preamble text ".repeat(40), i % SKILLS)
            }
        })
        .collect();
    let mut routed_any = 0;
    let mut direct = Vec::with_capacity(MESSAGES);
    for message in &messages {
        let started = Instant::now();
        let routed = catalog.route(message);
        direct.push(started.elapsed());
        routed_any += usize::from(!routed.names.is_empty());
    }
    assert_eq!(routed_any, MESSAGES * 3 / 4, "every message but the weather one routes a skill");

    let router = Skills::new(Some(user));
    router.route("main", &workspace, "warm the cache");
    let mut through_router = Vec::with_capacity(MESSAGES);
    for message in &messages {
        let started = Instant::now();
        let routed = router.route("main", &workspace, message);
        through_router.push(started.elapsed());
        std::hint::black_box(routed);
    }

    println!("skill routing with {SKILLS} installed skills ({MESSAGES} messages, 1 in 4 routes nothing):");
    println!("  catalog.route             p50 {} p99 {}", ms(&mut direct, 50.0), ms(&mut direct, 99.0));
    println!(
        "  gateway router (cached)   p50 {} p99 {}",
        ms(&mut through_router, 50.0),
        ms(&mut through_router, 99.0)
    );
    println!("  loading the 500 skills    p50 {} (re-read at most every 5 s)", ms(&mut loads, 50.0));
}

fn ms(samples: &mut [Duration], p: f64) -> String {
    samples.sort();
    let i = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    format!("{:.3} ms", samples[i].as_secs_f64() * 1000.0)
}
