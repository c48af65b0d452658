//! `clawdia brain import|query|get|stats|mcp|dream`: the knowledge brain from the command line.
//! The CLI opens `state/brain.db` directly (WAL lets it run beside a live gateway); `dream` builds
//! the gateway in-process to run the dream cycle's scorer and distiller turns.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clawdia_brain::db::SearchMode;
use clawdia_brain::{Brain, Query, import, ops, parse::ParseOptions};

use crate::{BrainCommand, Failure, Outcome, load_config};

pub async fn run(home: PathBuf, command: BrainCommand) -> Outcome {
    let config = load_config(&home)?;
    let brain = clawdia_runtime::open_brain(&config).map_err(Failure::from)?;
    match command {
        BrainCommand::Import { path, source } => import(brain, &path, source).await,
        BrainCommand::Query { text, k, json, as_of, mode } => query(&brain, text, k, json, as_of, mode).await,
        BrainCommand::Get { slug } => get(&brain, slug).await,
        BrainCommand::Stats => stats(&brain).await,
        BrainCommand::Mcp => clawdia_brain::mcp::serve_stdio(brain).await.map_err(Failure::from),
        // The brain above is opened lazily: `dream` uses the one of the gateway it builds.
        BrainCommand::Dream { dry_run } => dream(config, dry_run).await,
    }
}

/// `brain dream [--dry-run]`: one run of the dream cycle, its report on stdout.
async fn dream(config: clawdia_config::Config, dry_run: bool) -> Outcome {
    let runtime = clawdia_runtime::build(config).map_err(Failure::config)?;
    let dream = clawdia_runtime::dream::dream(&runtime).map_err(Failure::config)?;
    let report = dream.run(dry_run).await.map_err(|e| Failure::from(e.to_string()))?;
    print!("{}", report.render());
    match report.failed() {
        0 => Ok(()),
        failed => Err(Failure::from(format!(
            "{failed} transcript slice(s) failed; they are retried on the next run"
        ))),
    }
}

struct Bar(indicatif::ProgressBar);

impl import::ImportProgress for Bar {
    fn total(&mut self, files: usize) {
        self.0.set_length(files as u64);
    }
    fn file(&mut self, path: &Path) {
        self.0.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        self.0.inc(1);
    }
}

fn bar(template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    // Drawn on stderr only when it is a terminal (indicatif hides itself otherwise).
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

async fn import(brain: Arc<Brain>, path: &Path, source: Option<String>) -> Outcome {
    if !path.exists() {
        return Err(format!("{}: no such file or folder", path.display()).into());
    }
    // Empty: the import chooses the source from the path (`import::resolve_source`).
    let source = match source {
        Some(source) => {
            let slug = clawdia_brain::slugify(&source);
            if slug.is_empty() {
                return Err(Failure::config(format!("`{source}` is not a usable source name")));
            }
            slug
        }
        None => String::new(),
    };
    let options = ParseOptions { source, ..ParseOptions::default() };
    let files = bar("{spinner} importing [{bar:30}] {pos}/{len} {msg}");
    let mut progress = Bar(files.clone());
    let path_owned = path.to_path_buf();
    let report =
        brain.blocking(move |db| import::import_path(db, &path_owned, &options, &mut progress)).await?;
    files.finish_and_clear();
    for (file, problem) in &report.problems {
        eprintln!("skipped {}: {problem}", file.display());
    }
    if !report.unsupported.is_empty() {
        eprintln!(
            "skipped {} file(s) of types the brain does not read: {}",
            report.unsupported.len(),
            report.unsupported_summary()
        );
    }
    if let Some(note) = &report.source_note {
        eprintln!("note: {note}");
    }
    if path.is_file() && report.written + report.unchanged == 0 {
        let why = report.problems.first().map_or_else(|| "skipped".to_string(), |(_, why)| why.clone());
        return Err(format!("{}: not imported: {why}", path.display()).into());
    }
    println!(
        "imported {} files into source `{}`: {} written ({} chunks), {} unchanged, {} deleted, {} skipped",
        report.files,
        report.source,
        report.written,
        report.chunks,
        report.unchanged,
        report.deleted.len(),
        report.skipped()
    );
    match brain.embedder() {
        None => println!("embeddings: none configured or available; search is full text"),
        Some(embedder) => {
            let embedding = bar("{spinner} embedding {pos} chunks {per_sec}");
            let counter = embedding.clone();
            let embedded = brain
                .embed_pending(&mut move |done| counter.set_position(done as u64))
                .await
                .map_err(|e| {
                    format!("embedding failed (the pages are stored; run the import again to retry): {e}")
                })?;
            embedding.finish_and_clear();
            println!("embedded {embedded} chunks with {}", embedder.model_id());
        }
    }
    Ok(())
}

async fn query(
    brain: &Brain,
    text: String,
    k: usize,
    json: bool,
    as_of: Option<String>,
    mode: Option<String>,
) -> Outcome {
    let mut query = Query::new(text, k.max(1));
    if let Some(date) = as_of {
        let at = clawdia_core::time::parse_when(&date).ok_or_else(|| {
            Failure::config(format!("--as-of `{date}` is not a date (YYYY-MM-DD, YYYY-MM or RFC 3339)"))
        })?;
        query.as_of = Some(at);
    }
    query.mode = match mode.as_deref() {
        None | Some("hybrid") => SearchMode::Hybrid,
        Some("fulltext") => SearchMode::FullText,
        Some("vector") => SearchMode::Vector,
        Some(other) => {
            return Err(Failure::config(format!("--mode `{other}` is not one of hybrid, fulltext, vector")));
        }
    };
    let result = brain.search(&query).await?;
    if let Some(notice) = &result.notice {
        eprintln!("note: {notice}");
    }
    // Fused scores only compare hits of one query (each arm is normalized per query), so
    // they are shown as a share of the best hit's, with each hit's rank in each arm.
    let best = result.hits.iter().filter(|h| !h.expanded).map(|h| h.score).fold(0.0_f64, f64::max);
    let relevance = |score: f64| if best > 0.0 { (score / best * 100.0).clamp(0.0, 100.0) } else { 0.0 };
    if json {
        let hits: Vec<serde_json::Value> = result
            .hits
            .iter()
            .enumerate()
            .map(|(index, h)| {
                serde_json::json!({
                    "rank": index + 1, "slug": h.slug, "title": h.title, "score": h.score,
                    "relevance": (relevance(h.score) * 10.0).round() / 10.0,
                    "fts_rank": h.fts_rank, "vector_rank": h.vector_rank, "expanded": h.expanded,
                    "snippet": h.snippet, "source": h.source,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(hits));
        return Ok(());
    }
    if result.hits.is_empty() {
        println!("no results");
    } else {
        let searched = match query.mode {
            SearchMode::Hybrid => "hybrid search",
            SearchMode::FullText => "full-text search",
            SearchMode::Vector => "vector search",
        };
        println!(
            "{} result(s), {searched}: % = score as a share of the best hit's; words #n / meaning #n = rank in the full-text / vector search",
            result.hits.len()
        );
    }
    for (rank, hit) in result.hits.iter().enumerate() {
        let why = if hit.expanded {
            "linked from a hit".to_string()
        } else {
            let mut parts = vec![format!("{:.0}%", relevance(hit.score))];
            parts.extend(hit.fts_rank.map(|rank| format!("words #{rank}")));
            parts.extend(hit.vector_rank.map(|rank| format!("meaning #{rank}")));
            parts.join(", ")
        };
        println!("{}. {} — {} [{why}]", rank + 1, hit.slug, hit.title);
        let snippet = hit.snippet.replace('\n', " ");
        println!("   {}", snippet.trim());
    }
    if !result.facts.is_empty() {
        println!("\nfacts valid then:");
        for fact in &result.facts {
            println!(
                "  {} {} {} (from {})",
                fact.subject,
                fact.predicate,
                fact.object,
                clawdia_core::time::utc_date(fact.valid_from)
            );
        }
    }
    Ok(())
}

async fn get(brain: &Brain, slug: String) -> Outcome {
    let view = brain.blocking(move |db| ops::page_or_hint(db, &slug)).await??;
    println!("{}", serde_json::to_string_pretty(&view).map_err(|e| e.to_string())?);
    Ok(())
}

async fn stats(brain: &Brain) -> Outcome {
    let stats = brain.blocking(|db| db.stats()).await?;
    println!("{}", serde_json::to_string_pretty(&stats).map_err(|e| e.to_string())?);
    Ok(())
}
