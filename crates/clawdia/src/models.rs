//! `clawdia models list|pull|add|rm`: the home's `models/` folder, through clawdia-local's
//! catalogue (files, sizes, sha256). `pull` shows a progress bar on a terminal and one line per
//! file otherwise; every failure is one line naming the model and the way out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clawdia_local::models::{self, FileState, pull};

use crate::{ModelsCommand, Outcome};

pub async fn run(home: PathBuf, command: ModelsCommand) -> Outcome {
    let dir = home.join("models");
    match command {
        ModelsCommand::List => list(&dir),
        ModelsCommand::Pull { name } => pull_model(&dir, &name).await,
        ModelsCommand::Add { name, from } => {
            let from = from.clone();
            let target = dir.clone();
            let task_name = name.clone();
            let added = tokio::task::spawn_blocking(move || models::add(&target, &task_name, &from))
                .await
                .map_err(|error| format!("adding {name} failed: {error}"))??;
            let verified = match added.verified {
                0 => "not in the catalogue: no checksums to verify".to_string(),
                count => format!("{count} verified by sha256"),
            };
            println!("added {name} in {} ({} files, {verified})", added.dir.display(), added.files.len());
            Ok(())
        }
        ModelsCommand::Rm { name } => {
            let size = models::remove(&dir, &name)?;
            println!("removed {name} ({})", human(size));
            Ok(())
        }
    }
}

fn list(dir: &Path) -> Outcome {
    let rows = models::list(dir)?;
    println!("{:<28} {:<10} {:>10}  {:<12} verified", "model", "kind", "size", "files");
    for row in rows {
        let kind = row.kind.map_or("-", |kind| kind.label());
        if !row.installed {
            println!(
                "{:<28} {:<10} {:>10}  not installed: clawdia models pull {}",
                row.name, kind, "-", row.name
            );
            continue;
        }
        let files = if row.problems.is_empty() && row.usable {
            "ok".to_string()
        } else if row.problems.is_empty() {
            "no weights".to_string()
        } else {
            let describe = |(path, state): &(String, FileState)| match state {
                FileState::Missing => format!("{path} missing"),
                FileState::Corrupt => format!("{path} corrupt"),
                FileState::Ok => path.clone(),
            };
            row.problems.iter().map(describe).collect::<Vec<_>>().join(", ")
        };
        let verified = match (row.catalogue.is_some(), row.verified) {
            (true, true) => "yes (sha256)",
            (true, false) => "no",
            (false, _) => "- (not in catalogue)",
        };
        println!("{:<28} {:<10} {:>10}  {:<12} {verified}", row.name, kind, human(row.size), files);
    }
    Ok(())
}

async fn pull_model(dir: &Path, name: &str) -> Outcome {
    let hub = pull::hub_url();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
        {
            bar.set_style(style);
        }
        bar
    });
    let mut current = usize::MAX;
    let mut report = |progress: pull::Progress<'_>| {
        if let Some(bar) = &bar {
            bar.set_length(progress.total);
            bar.set_position(progress.done);
            bar.set_message(progress.file.to_string());
        } else if progress.file_index != current {
            current = progress.file_index;
            eprintln!("downloading {} ({}/{})", progress.file, progress.file_index + 1, progress.file_count);
        }
    };
    let result = pull::pull(dir, name, &hub, &mut report).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let installed = result?;
    println!("installed {name} in {} (checksums verified)", installed.display());
    Ok(())
}

/// Bytes as a short human size.
fn human(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    match bytes {
        b if b >= 1024 * 1024 * 1024 => format!("{:.1} GiB", b as f64 / (1024.0 * MIB)),
        b if b >= 1024 * 1024 => format!("{:.1} MiB", b as f64 / MIB),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
