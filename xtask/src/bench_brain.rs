//! `cargo xtask bench brain`: retrieval quality and speed of the knowledge brain.
//!
//! - BEIR SciFact (`../shared/data/scifact`): the 5,183 abstracts are written as markdown files
//!   and imported through the real import path, embedded with the local model, then the 300 test
//!   queries (their `text` only) are run; prints nDCG@10 and recall@100 for full-text, vector
//!   and hybrid search.
//! - LoCoMo (`../shared/data/locomo`): every turn becomes a page in its conversation's source;
//!   each QA item searches its own conversation; prints evidence recall@5 and @10 (turn level),
//!   overall and per category.
//! - Speed: import throughput (chunks/s with embedding) and hybrid query latency p50/p99 at the
//!   SciFact size and after padding the brain to 50,000 chunks with synthetic pages.
//!
//! Needs the embedding model (`scripts/fetch-models.sh`); prints figures, never fails on them.
//! `--fulltext-only` skips embedding; `--locomo-only` skips SciFact (whose 18k chunks take long
//! to embed on a 2-core CPU); `--no-scale` skips the 50k-chunk padding.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_brain::db::{Db, SearchMode, SearchQuery};
use clawdia_brain::parse::{ParseOptions, sha256_hex};
use clawdia_brain::{Brain, BrainSettings, ChunkInput, PageInput, import};
use clawdia_core::Embedder;
use serde_json::Value;

fn data_dir() -> PathBuf {
    crate::workspace_root().join("../shared/data")
}

fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CLAWDIA_TEST_MODELS") {
        return PathBuf::from(dir).join("all-MiniLM-L6-v2");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".clawdia/models/all-MiniLM-L6-v2")
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Ok(serde_json::from_str(l)?)).collect()
}

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    for arg in args {
        if !["--no-scale", "--fulltext-only", "--locomo-only"].contains(arg) {
            bail!("usage: cargo xtask bench brain [--no-scale] [--fulltext-only] [--locomo-only]");
        }
    }
    let fulltext_only = args.contains(&"--fulltext-only");
    let scale = !args.contains(&"--no-scale") && !fulltext_only;
    let locomo_only = args.contains(&"--locomo-only");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(scale, fulltext_only, locomo_only))
}

/// The arms measured: all three, or only full text (no embedding: minutes instead of an hour).
fn modes(fulltext_only: bool) -> Vec<(&'static str, SearchMode)> {
    if fulltext_only {
        return vec![("full text (BM25)", SearchMode::FullText)];
    }
    vec![
        ("full text (BM25)", SearchMode::FullText),
        ("vector", SearchMode::Vector),
        ("hybrid (RRF)", SearchMode::Hybrid),
    ]
}

type MaybeEmbedder = Result<Arc<dyn Embedder>, String>;

async fn bench(scale: bool, fulltext_only: bool, locomo_only: bool) -> anyhow::Result<()> {
    let dir = model_dir();
    let embedder: MaybeEmbedder = if fulltext_only {
        Err("--fulltext-only".to_string())
    } else {
        let local = clawdia_embed::LocalEmbedder::load(&dir, None)
            .map_err(|e| anyhow::anyhow!("{e} (run scripts/fetch-models.sh)"))?;
        println!(
            "embedding model: {} ({} dims) from {}",
            local.model_id(),
            local.dimensions(),
            dir.display()
        );
        Ok(Arc::new(local))
    };
    let work = tempfile::tempdir()?;
    if !locomo_only {
        let scifact = scifact(work.path(), embedder.clone(), scale, fulltext_only).await?;
        println!("{scifact}");
    }
    let locomo = locomo(work.path(), embedder, fulltext_only).await?;
    println!("{locomo}");
    Ok(())
}

/// nDCG@10 with binary relevance.
fn ndcg10(ranked: &[String], relevant: &HashSet<String>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, s)| relevant.contains(*s))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

fn recall(ranked: &[String], relevant: &HashSet<String>, k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    ranked.iter().take(k).filter(|s| relevant.contains(*s)).count() as f64 / relevant.len() as f64
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn query(
    text: &str,
    k: usize,
    mode: SearchMode,
    vector: Option<Vec<f32>>,
    include: Vec<String>,
    per_page: usize,
) -> SearchQuery {
    SearchQuery {
        text: text.to_string(),
        k,
        mode,
        vector,
        rrf_k: 60.0,
        boosts: Vec::new(),
        exclude: Vec::new(),
        include,
        max_chunks_per_page: per_page,
        candidates: k.max(100),
        expand_graph: 0,
        as_of: None,
    }
}

async fn embed_all(embedder: &MaybeEmbedder, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
    let Ok(embedder) = embedder else {
        return Ok(vec![Vec::new(); texts.len()]);
    };
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(embedder.batch_size().max(1)) {
        out.extend(embedder.embed(batch).await.map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    Ok(out)
}

async fn scifact(
    work: &Path,
    embedder: MaybeEmbedder,
    scale: bool,
    fulltext_only: bool,
) -> anyhow::Result<String> {
    let data = data_dir().join("scifact");
    let corpus = read_jsonl(&data.join("corpus.jsonl"))?;
    let queries: HashMap<String, String> = read_jsonl(&data.join("queries.jsonl"))?
        .into_iter()
        .filter_map(|q| Some((q["_id"].as_str()?.to_string(), q["text"].as_str()?.to_string())))
        .collect();
    let mut qrels: HashMap<String, HashSet<String>> = HashMap::new();
    for line in std::fs::read_to_string(data.join("qrels/test.tsv"))?.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() == 3 {
            qrels.entry(cols[0].to_string()).or_default().insert(format!("scifact/{}", cols[1]));
        }
    }
    let files = work.join("scifact");
    std::fs::create_dir_all(&files)?;
    for doc in &corpus {
        let id = doc["_id"].as_str().context("doc id")?;
        let title = doc["title"].as_str().unwrap_or_default();
        let text = doc["text"].as_str().unwrap_or_default();
        std::fs::write(files.join(format!("{id}.md")), format!("# {title}\n\n{text}\n"))?;
    }
    let brain = Brain::new(Db::open(&work.join("brain.db"))?, embedder.clone(), BrainSettings::default());
    let options = ParseOptions { source: "scifact".into(), ..ParseOptions::default() };
    let start = Instant::now();
    let files_for_import = files.clone();
    let report =
        brain.blocking(move |db| import::import_path(db, &files_for_import, &options, &mut ())).await?;
    let parsed = start.elapsed();
    let embedded = brain.embed_pending(&mut |_| {}).await?;
    let total = start.elapsed();
    if report.written != corpus.len() {
        bail!(
            "imported {} of {} SciFact documents: {:?}",
            report.written,
            corpus.len(),
            report.problems.first()
        );
    }
    let mut ids: Vec<&String> = qrels.keys().collect();
    ids.sort();
    let texts: Vec<String> = ids.iter().map(|id| queries.get(*id).cloned().unwrap_or_default()).collect();
    let vectors = embed_all(&embedder, &texts).await?;
    let mut lines = vec![format!(
        "SciFact: {} documents, {} chunks; import {:.1} s (parse+store {:.1} s), {:.0} chunks/s with embedding",
        corpus.len(),
        report.chunks,
        total.as_secs_f64(),
        parsed.as_secs_f64(),
        embedded as f64 / total.as_secs_f64()
    )];
    for (name, mode) in modes(fulltext_only) {
        let (mut ndcg, mut rec) = (0.0, 0.0);
        for (i, id) in ids.iter().enumerate() {
            let vector = (!vectors[i].is_empty()).then(|| vectors[i].clone());
            let q = query(&texts[i], 100, mode, vector, Vec::new(), 1);
            let hits = brain.db()?.search(&q)?.hits;
            let ranked: Vec<String> = hits.into_iter().map(|h| h.slug).collect();
            ndcg += ndcg10(&ranked, &qrels[*id]);
            rec += recall(&ranked, &qrels[*id], 100);
        }
        let n = ids.len() as f64;
        lines.push(format!(
            "  {name:<18} nDCG@10 {:.4}  recall@100 {:.4}  ({} test queries)",
            ndcg / n,
            rec / n,
            ids.len()
        ));
    }
    lines.push(latency(&brain, &texts, &vectors, "  at SciFact size", fulltext_only).await?);
    if scale {
        let chunks = brain.db()?.stats()?.chunks;
        let padded = pad(&brain, 50_000usize.saturating_sub(chunks as usize)).await?;
        lines.push(format!(
            "  padded with {} synthetic chunks ({:.0} chunks/s with embedding)",
            padded.0, padded.1
        ));
        lines.push(latency(&brain, &texts, &vectors, "  at 50k chunks", false).await?);
    }
    Ok(lines.join("\n"))
}

/// Search latency over the test queries: the search alone (query vector given) and end to end
/// (embedding the query first).
async fn latency(
    brain: &Brain,
    texts: &[String],
    vectors: &[Vec<f32>],
    label: &str,
    fulltext_only: bool,
) -> anyhow::Result<String> {
    let chunks = brain.db()?.stats()?.chunks;
    let mode = if fulltext_only { SearchMode::FullText } else { SearchMode::Hybrid };
    let mut search = Vec::new();
    for (text, vector) in texts.iter().zip(vectors) {
        let vector = (!vector.is_empty()).then(|| vector.clone());
        let q = query(text, 10, mode, vector, Vec::new(), 1);
        let start = Instant::now();
        brain.db()?.search(&q)?;
        search.push(start.elapsed());
    }
    let mut end_to_end = Vec::new();
    for text in texts.iter().take(100) {
        let start = Instant::now();
        brain.search(&clawdia_brain::Query::new(text.clone(), 10)).await?;
        end_to_end.push(start.elapsed());
    }
    search.sort();
    end_to_end.sort();
    Ok(format!(
        "{label} ({chunks} chunks, {mode:?}): search p50 {:.2} ms p99 {:.2} ms; end to end (query embedding included) p50 {:.2} ms p99 {:.2} ms",
        percentile(&search, 50.0),
        percentile(&search, 99.0),
        percentile(&end_to_end, 50.0),
        percentile(&end_to_end, 99.0)
    ))
}

/// Adds `count` synthetic chunks (pages of 5 chunks of shuffled scientific vocabulary).
async fn pad(brain: &Brain, count: usize) -> anyhow::Result<(usize, f64)> {
    let words: Vec<&str> = "cell protein gene expression tumor patients clinical trial mice receptor signaling pathway increased reduced levels risk association cohort study analysis treatment therapy dose response infection immune virus bacteria model data results significant mechanism brain neurons cortex blood pressure heart disease cancer growth factor binding activity role function effect"
        .split_whitespace()
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let start = Instant::now();
    let mut written = 0;
    let mut page = 0;
    while written < count {
        let chunks: Vec<ChunkInput> = (0..5.min(count - written))
            .map(|_| {
                let text: Vec<&str> =
                    (0..40).map(|_| words[(next() % words.len() as u64) as usize]).collect();
                ChunkInput { text: text.join(" "), context: None, start_line: None, end_line: None }
            })
            .collect();
        written += chunks.len();
        let body = chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n\n");
        let input = PageInput {
            slug: format!("padding/p{page}"),
            title: format!("Synthetic page {page}"),
            kind: "text".into(),
            source: "padding".into(),
            content_hash: sha256_hex(body.as_bytes()),
            body,
            frontmatter: serde_json::json!({}),
            chunks,
            links: Vec::new(),
        };
        brain.db()?.put_page(&input)?;
        page += 1;
    }
    brain.embed_pending(&mut |_| {}).await?;
    Ok((written, written as f64 / start.elapsed().as_secs_f64()))
}

/// Normalises LoCoMo's evidence strings (see shared/data/README.md).
fn evidence_ids(raw: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for item in raw.iter().filter_map(Value::as_str) {
        for part in item.split([';', ',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
            let part = part.replace("D:", "D");
            if let Some((s, t)) = part.trim_start_matches('D').split_once(':')
                && let (Ok(s), Ok(t)) = (s.parse::<u32>(), t.parse::<u32>())
            {
                out.push(format!("D{s}:{t}"));
            }
        }
    }
    out
}

async fn locomo(work: &Path, embedder: MaybeEmbedder, fulltext_only: bool) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(data_dir().join("locomo/locomo10.json"))?;
    let conversations: Vec<Value> = serde_json::from_str(&text)?;
    let settings = BrainSettings { max_chunks_per_page: 1, ..BrainSettings::default() };
    let brain = Brain::new(Db::open(&work.join("locomo.db"))?, embedder.clone(), settings);
    let mut turns = 0;
    let start = Instant::now();
    for conversation in &conversations {
        let sample = conversation["sample_id"].as_str().context("sample_id")?;
        let conv = &conversation["conversation"];
        for session in 1..=64 {
            let Some(list) = conv[format!("session_{session}")].as_array() else { continue };
            let date = conv[format!("session_{session}_date_time")].as_str().unwrap_or_default();
            for turn in list {
                let dia = turn["dia_id"].as_str().unwrap_or_default();
                let speaker = turn["speaker"].as_str().unwrap_or_default();
                let mut said = turn["text"].as_str().unwrap_or_default().to_string();
                if let Some(caption) = turn["blip_caption"].as_str() {
                    said.push_str(&format!(" [shares a photo: {caption}]"));
                }
                let body = format!("{speaker}: {said}");
                let input = PageInput {
                    slug: format!("locomo/{sample}/{}", dia.replace(':', "-").to_lowercase()),
                    title: format!("{speaker}, {date}"),
                    kind: "turn".into(),
                    source: format!("locomo-{sample}"),
                    content_hash: sha256_hex(body.as_bytes()),
                    chunks: vec![ChunkInput {
                        text: body.clone(),
                        context: Some(date.to_string()),
                        start_line: None,
                        end_line: None,
                    }],
                    body,
                    frontmatter: serde_json::json!({}),
                    links: Vec::new(),
                };
                brain.db()?.put_page(&input)?;
                turns += 1;
            }
        }
    }
    brain.embed_pending(&mut |_| {}).await?;
    let import_secs = start.elapsed().as_secs_f64();
    let mut per_category: HashMap<u64, (f64, f64, usize)> = HashMap::new();
    for conversation in &conversations {
        let sample = conversation["sample_id"].as_str().context("sample_id")?;
        let items = conversation["qa"].as_array().context("qa")?;
        let questions: Vec<String> =
            items.iter().map(|q| q["question"].as_str().unwrap_or_default().to_string()).collect();
        let vectors = embed_all(&embedder, &questions).await?;
        for ((item, question), vector) in items.iter().zip(&questions).zip(vectors) {
            let evidence: HashSet<String> =
                evidence_ids(item["evidence"].as_array().map(Vec::as_slice).unwrap_or_default())
                    .into_iter()
                    .map(|id| format!("locomo/{sample}/{}", id.replace(':', "-").to_lowercase()))
                    .collect();
            if evidence.is_empty() {
                continue;
            }
            let mode = if fulltext_only { SearchMode::FullText } else { SearchMode::Hybrid };
            let vector = (!vector.is_empty()).then_some(vector);
            let q = query(question, 10, mode, vector, vec![format!("locomo/{sample}/")], 1);
            let ranked: Vec<String> = brain.db()?.search(&q)?.hits.into_iter().map(|h| h.slug).collect();
            let category = item["category"].as_u64().unwrap_or(0);
            let entry = per_category.entry(category).or_default();
            entry.0 += recall(&ranked, &evidence, 5);
            entry.1 += recall(&ranked, &evidence, 10);
            entry.2 += 1;
        }
    }
    let mut lines = vec![format!(
        "LoCoMo: {} conversations, {turns} turns imported in {import_secs:.1} s ({}, turn level)",
        conversations.len(),
        if fulltext_only { "full text" } else { "hybrid" }
    )];
    let mut categories: Vec<_> = per_category.iter().collect();
    categories.sort_by_key(|(c, _)| **c);
    let names = ["", "multi-hop", "temporal", "open-domain", "single-hop", "adversarial"];
    let (mut r5, mut r10, mut n) = (0.0, 0.0, 0usize);
    let (mut r5_14, mut r10_14, mut n_14) = (0.0, 0.0, 0usize);
    for (category, (a, b, count)) in categories {
        let name = names.get(*category as usize).copied().unwrap_or("?");
        lines.push(format!(
            "  category {category} {name:<12} recall@5 {:.4}  recall@10 {:.4}  ({count} items)",
            a / *count as f64,
            b / *count as f64
        ));
        r5 += a;
        r10 += b;
        n += count;
        if (1..=4).contains(category) {
            r5_14 += a;
            r10_14 += b;
            n_14 += count;
        }
    }
    lines.push(format!(
        "  categories 1-4      recall@5 {:.4}  recall@10 {:.4}  ({n_14} items)",
        r5_14 / n_14 as f64,
        r10_14 / n_14 as f64
    ));
    lines.push(format!(
        "  all categories      recall@5 {:.4}  recall@10 {:.4}  ({n} items)",
        r5 / n as f64,
        r10 / n as f64
    ));
    Ok(lines.join("\n"))
}
