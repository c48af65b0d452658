//! Installing skills from a registry, pinning them by sha256, and trusting them.
//!
//! A registry is a folder or an HTTP(S) base URL holding, per skill, `<name>/_meta.json`
//! (`{"name", "version", "sha256", "archive"?}`) next to the release archive (a zip,
//! `<name>-<version>.zip` unless `archive` names another file in the same folder). Installing
//! checks the archive's sha256 against `_meta.json`, unpacks it into `<skills dir>/<name>/`
//! and records name, version, sha256 and source in the skills folder's lock file
//! (`.clawdia-skills.json`). A skill installed from a registry starts untrusted (read-only
//! tools only) until the owner runs `clawdia skills trust NAME`. A new version is installed
//! untrusted again; the same version with a different sha256 is refused: an upstream that
//! changed a release in place is not trusted silently.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::skill::{Origin, parse, valid_name};

/// The lock file in a skills folder.
pub const LOCK_FILE: &str = ".clawdia-skills.json";
/// Archives larger than this are refused.
const MAX_ARCHIVE_BYTES: u64 = 16 * 1024 * 1024;
/// Unpacked skills larger than this are refused (zip bombs).
const MAX_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// A registry failure, one line naming the problem.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Fetch(String),
    #[error(
        "the registry changed {name} {version} in place (pinned sha256 {pinned}, now {now}); not installed — ask the publisher for a new version"
    )]
    ChangedInPlace { name: String, version: String, pinned: String, now: String },
    #[error("{0}")]
    Io(String),
}

fn io(context: &str, path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError {
    let message = format!("{context} {}", path.display());
    move |error| RegistryError::Io(format!("{message}: {error}"))
}

/// What the lock file knows about one installed skill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: String,
    pub sha256: String,
    pub source: String,
    pub trusted: bool,
}

/// The lock file of one skills folder: installed skills by folder name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub skills: BTreeMap<String, Record>,
}

impl Lock {
    /// The lock of `dir` (empty when there is none).
    pub fn read(dir: &Path) -> Result<Lock, RegistryError> {
        let path = dir.join(LOCK_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
                RegistryError::Invalid(format!("{}: not a skills lock file: {error}", path.display()))
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(error) => Err(io("cannot read", &path)(error)),
        }
    }

    /// Writes the lock atomically (temporary file, then rename).
    pub fn write(&self, dir: &Path) -> Result<(), RegistryError> {
        std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
        let path = dir.join(LOCK_FILE);
        let temporary = dir.join(format!("{LOCK_FILE}.tmp"));
        let text =
            serde_json::to_vec_pretty(self).map_err(|error| RegistryError::Invalid(error.to_string()))?;
        std::fs::write(&temporary, text).map_err(io("cannot write", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(io("cannot replace", &path))
    }
}

/// `_meta.json` of a release.
#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    pub name: String,
    pub version: String,
    pub sha256: String,
    #[serde(default)]
    pub archive: Option<String>,
}

/// Where releases come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registry {
    Dir(PathBuf),
    Http(String),
}

impl Registry {
    /// An `http://` or `https://` URL, else a folder.
    pub fn parse(location: &str) -> Registry {
        if location.starts_with("http://") || location.starts_with("https://") {
            Registry::Http(location.trim_end_matches('/').to_string())
        } else {
            Registry::Dir(PathBuf::from(location))
        }
    }

    fn describe(&self) -> String {
        match self {
            Registry::Dir(dir) => dir.display().to_string(),
            Registry::Http(url) => url.clone(),
        }
    }

    async fn fetch(&self, name: &str, file: &str) -> Result<Vec<u8>, RegistryError> {
        match self {
            Registry::Dir(dir) => {
                let path = dir.join(name).join(file);
                let size = std::fs::metadata(&path).map_err(io("cannot read", &path))?.len();
                if size > MAX_ARCHIVE_BYTES {
                    return Err(RegistryError::Fetch(format!("{} is larger than 16 MiB", path.display())));
                }
                std::fs::read(&path).map_err(io("cannot read", &path))
            }
            Registry::Http(base) => {
                let url = format!("{base}/{name}/{file}");
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .timeout(Duration::from_secs(60))
                    .build()
                    .map_err(|error| RegistryError::Fetch(format!("cannot build an HTTP client: {error}")))?;
                let response = client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|error| RegistryError::Fetch(format!("cannot fetch {url}: {error}")))?;
                if !response.status().is_success() {
                    return Err(RegistryError::Fetch(format!("{url}: HTTP {}", response.status())));
                }
                if response.content_length().is_some_and(|length| length > MAX_ARCHIVE_BYTES) {
                    return Err(RegistryError::Fetch(format!("{url} is larger than 16 MiB")));
                }
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|error| RegistryError::Fetch(format!("reading {url}: {error}")))?;
                if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
                    return Err(RegistryError::Fetch(format!("{url} is larger than 16 MiB")));
                }
                Ok(bytes.to_vec())
            }
        }
    }
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Installed {
    New { version: String },
    Upgraded { from: String, to: String },
    Unchanged { version: String },
}

/// Installs (or upgrades) skill `name` from `registry` into the skills folder `dir`.
pub async fn install(registry: &Registry, name: &str, dir: &Path) -> Result<Installed, RegistryError> {
    if !valid_name(name) {
        return Err(RegistryError::Invalid(format!("`{name}` is not a skill name")));
    }
    let meta_bytes = registry.fetch(name, "_meta.json").await?;
    let meta: Meta = serde_json::from_slice(&meta_bytes)
        .map_err(|error| RegistryError::Invalid(format!("{name}/_meta.json: {error}")))?;
    if meta.name != name {
        return Err(RegistryError::Invalid(format!("{name}/_meta.json names `{}`", meta.name)));
    }
    let archive = meta.archive.clone().unwrap_or_else(|| format!("{name}-{}.zip", meta.version));
    if archive.contains('/') || archive.contains('\\') || archive.starts_with('.') {
        return Err(RegistryError::Invalid(format!("{name}/_meta.json: bad archive name `{archive}`")));
    }
    let expected = meta.sha256.trim().to_lowercase();
    if expected.len() != 64 || !expected.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(RegistryError::Invalid(format!("{name}/_meta.json: sha256 must be 64 hex digits")));
    }
    let mut lock = Lock::read(dir)?;
    let previous = lock.skills.get(name).cloned();
    if let Some(pinned) = &previous
        && pinned.version == meta.version
    {
        if pinned.sha256 != expected {
            return Err(RegistryError::ChangedInPlace {
                name: name.to_string(),
                version: meta.version,
                pinned: pinned.sha256.clone(),
                now: expected,
            });
        }
        if dir.join(name).join("SKILL.md").is_file() {
            return Ok(Installed::Unchanged { version: meta.version });
        }
    }
    let bytes = registry.fetch(name, &archive).await?;
    let actual = clawdia_core::hex(&Sha256::digest(&bytes));
    if actual != expected {
        return Err(RegistryError::Invalid(format!(
            "{name}/{archive}: sha256 {actual} does not match _meta.json ({expected}); not installed"
        )));
    }
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))?;
    let staging = dir.join(format!(".installing-{name}"));
    let _ = std::fs::remove_dir_all(&staging);
    let unpacked = unpack(&bytes, &staging).and_then(|root| {
        let text = std::fs::read_to_string(root.join("SKILL.md"))
            .map_err(|_| RegistryError::Invalid(format!("{name}/{archive}: no SKILL.md in the archive")))?;
        parse(&text, &root, Origin::User).map_err(|error| RegistryError::Invalid(error.to_string()))?;
        Ok(root)
    });
    let root = match unpacked {
        Ok(root) => root,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    let target = dir.join(name);
    let old = dir.join(format!(".replaced-{name}"));
    let _ = std::fs::remove_dir_all(&old);
    if target.exists() {
        std::fs::rename(&target, &old).map_err(io("cannot move aside", &target))?;
    }
    std::fs::rename(&root, &target).map_err(io("cannot install into", &target))?;
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_dir_all(&old);
    lock.skills.insert(
        name.to_string(),
        Record {
            version: meta.version.clone(),
            sha256: expected,
            source: registry.describe(),
            trusted: false,
        },
    );
    lock.write(dir)?;
    Ok(match previous {
        Some(previous) if previous.version != meta.version => {
            Installed::Upgraded { from: previous.version, to: meta.version }
        }
        _ => Installed::New { version: meta.version },
    })
}

/// Marks installed skill `name` in the skills folder `dir` as trusted.
pub fn trust(dir: &Path, name: &str) -> Result<Record, RegistryError> {
    let mut lock = Lock::read(dir)?;
    let Some(record) = lock.skills.get_mut(name) else {
        return Err(RegistryError::Invalid(format!(
            "no skill `{name}` was installed from a registry in {} (local skills are trusted already)",
            dir.display()
        )));
    };
    record.trusted = true;
    let record = record.clone();
    lock.write(dir)?;
    Ok(record)
}

/// Unpacks the zip into `staging`; returns the skill's root (the archive's single top folder
/// when everything sits in one, else `staging` itself). Entries that would land outside
/// `staging`, links and oversized contents are refused.
fn unpack(bytes: &[u8], staging: &Path) -> Result<PathBuf, RegistryError> {
    let bad = |message: String| RegistryError::Invalid(format!("skill archive: {message}"));
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|error| bad(format!("not a zip file ({error})")))?;
    std::fs::create_dir_all(staging).map_err(io("cannot create", staging))?;
    let mut total = 0u64;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|error| bad(format!("entry {index}: {error}")))?;
        let shown = entry.name().map(|name| name.into_owned()).unwrap_or_else(|_| format!("#{index}"));
        let Some(relative) = entry.enclosed_name() else {
            return Err(bad(format!("entry `{shown}` points outside the skill folder")));
        };
        if entry.is_symlink() {
            return Err(bad(format!("entry `{shown}` is a link")));
        }
        let path = staging.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&path).map_err(io("cannot create", &path))?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("cannot create", parent))?;
        }
        let mut content = Vec::new();
        let limit = MAX_UNPACKED_BYTES.saturating_sub(total) + 1;
        (&mut entry)
            .take(limit)
            .read_to_end(&mut content)
            .map_err(|error| bad(format!("entry `{shown}`: {error}")))?;
        total += content.len() as u64;
        if total > MAX_UNPACKED_BYTES {
            return Err(bad("unpacks to more than 64 MiB".to_string()));
        }
        std::fs::write(&path, content).map_err(io("cannot write", &path))?;
    }
    if staging.join("SKILL.md").is_file() {
        return Ok(staging.to_path_buf());
    }
    let folders: Vec<PathBuf> = std::fs::read_dir(staging)
        .map_err(io("cannot read", staging))?
        .flatten()
        .map(|entry| entry.path())
        .collect();
    match folders.as_slice() {
        [only] if only.is_dir() => Ok(only.clone()),
        _ => Ok(staging.to_path_buf()),
    }
}
