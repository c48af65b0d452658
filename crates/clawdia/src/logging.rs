//! Logging: `tracing` to stderr, and for `clawdia up` also to `logs/clawdia.log` in the home,
//! every line masked on its way out. The fmt layer writes each event through a fresh writer; ours
//! collects the event's bytes and, when the event is done, writes them once with every
//! registered secret replaced (`clawdia_core::redact`), so a key that reached a log field (a
//! provider's error body, an audit detail) never reaches either log.
//!
//! The file (mode 0600, in a 0700 `logs/`) is rotated by size: at `[logs] max_bytes` it becomes
//! `clawdia.log.1`, the older ones shift to `.2` ... and only `keep` of them stay. A file that
//! cannot be written costs one warning on stderr, never the daemon.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The log file's name in the home's `logs/`.
pub const LOG_FILE: &str = "clawdia.log";

/// Logs go to stderr, and to `file` when given; `CLAWDIA_LOG` sets the filter (default `info` for
/// `up`; other commands report through their own output, so only errors are logged).
pub fn init(is_up: bool, file: Option<LogFile>) {
    use std::io::IsTerminal;
    let default = if is_up { "info" } else { "error" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAWDIA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(RedactedStderr { file: file.map(|file| Arc::new(Mutex::new(file))), ansi })
        .try_init();
}

/// Makes one [`RedactedEvent`] per log event.
struct RedactedStderr {
    file: Option<Arc<Mutex<LogFile>>>,
    /// Whether events carry colour codes (kept out of the file).
    ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedEvent;

    fn make_writer(&'a self) -> RedactedEvent {
        RedactedEvent { bytes: Vec::new(), file: self.file.clone(), ansi: self.ansi }
    }
}

/// The bytes of one log event, written masked to stderr (and the file) when dropped (the event
/// is complete).
struct RedactedEvent {
    bytes: Vec<u8>,
    file: Option<Arc<Mutex<LogFile>>>,
    ansi: bool,
}

impl Write for RedactedEvent {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedEvent {
    fn drop(&mut self) {
        if self.bytes.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.bytes);
        let masked = clawdia_core::redact::redact(&text);
        let _ = std::io::stderr().lock().write_all(masked.as_bytes());
        if let Some(file) = &self.file {
            let plain = if self.ansi { strip_ansi(&masked) } else { masked.into_owned() };
            file.lock().unwrap_or_else(PoisonError::into_inner).write(plain.as_bytes());
        }
    }
}

/// `text` without its terminal colour sequences (`ESC [ ... letter`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `logs/clawdia.log`, rotated by size.
pub struct LogFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    /// Opened on the first write (and again after a rotation).
    file: Option<File>,
    size: u64,
    /// A failure was reported: later ones are silent (until a write succeeds again).
    warned: bool,
}

impl LogFile {
    /// The log in `dir` (created 0700 on the first write).
    pub fn new(dir: &Path, max_bytes: u64, keep: usize) -> LogFile {
        LogFile {
            path: dir.join(LOG_FILE),
            max_bytes: max_bytes.max(1),
            keep,
            file: None,
            size: 0,
            warned: false,
        }
    }

    /// Appends one event; a failure is reported once on stderr and otherwise ignored.
    pub fn write(&mut self, bytes: &[u8]) {
        match self.try_write(bytes) {
            Ok(()) => self.warned = false,
            Err(error) => {
                self.file = None;
                if !self.warned {
                    self.warned = true;
                    let _ = writeln!(
                        std::io::stderr(),
                        "clawdia: warning: cannot write the log file {}: {error} (logging to stderr only until it works again)",
                        self.path.display()
                    );
                }
            }
        }
    }

    fn try_write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // Deleted under us (the weekly prune removes files in `logs/` untouched for
        // `prune_days`, or the owner did): start a new file rather than write into the void.
        if self.file.is_some() && !self.path.exists() {
            self.file = None;
        }
        if self.file.is_some() && self.size > 0 && self.size + bytes.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let (file, size) = self.open()?;
                self.size = size;
                if size > 0 && size + bytes.len() as u64 > self.max_bytes {
                    drop(file);
                    self.rotate()?;
                    let (file, size) = self.open()?;
                    self.size = size;
                    self.file.insert(file)
                } else {
                    self.file.insert(file)
                }
            }
        };
        file.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Opens (creating) the file 0600 in its 0700 folder; returns it with its current size.
    fn open(&self) -> std::io::Result<(File, u64)> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        if let Some(dir) = self.path.parent() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    /// `clawdia.log` -> `.1`, `.1` -> `.2`, ...; the oldest beyond `keep` is deleted.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        self.size = 0;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        // Files beyond `keep` (left by a larger `keep` before) go first.
        let mut extra = self.keep + 1;
        while numbered(extra).exists() {
            std::fs::remove_file(numbered(extra))?;
            extra += 1;
        }
        if self.keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        for n in (1..self.keep).rev() {
            if numbered(n).exists() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_log_rotates_at_its_size_and_keeps_only_keep_files() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("logs");
        let mut log = LogFile::new(&dir, 100, 2);
        for n in 0..20 {
            log.write(format!("line {n:02} of forty bytes, more or less...\n").as_bytes());
        }
        assert_eq!(names(&dir), ["clawdia.log", "clawdia.log.1", "clawdia.log.2"]);
        for name in names(&dir) {
            let size = std::fs::metadata(dir.join(&name)).unwrap().len();
            assert!(size <= 100, "{name} is {size} bytes");
        }
        let newest = std::fs::read_to_string(dir.join("clawdia.log")).unwrap();
        assert!(newest.ends_with("line 19 of forty bytes, more or less...\n"), "{newest}");
        let older = std::fs::read_to_string(dir.join("clawdia.log.1")).unwrap();
        assert!(older.contains("line 17") || older.contains("line 16"), "{older}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.join("clawdia.log")).unwrap().permissions().mode() & 0o777, 0o600);
        // A smaller `keep` later prunes what a larger one left.
        let mut log = LogFile::new(&dir, 100, 1);
        for n in 0..5 {
            log.write(format!("again {n} forty bytes or so, padding padding\n").as_bytes());
        }
        assert_eq!(names(&dir), ["clawdia.log", "clawdia.log.1"]);
        // keep = 0: the log starts over when full.
        let mut log = LogFile::new(&dir, 100, 0);
        for n in 0..5 {
            log.write(format!("zero {n} forty bytes or so, padding padding.\n").as_bytes());
        }
        assert_eq!(names(&dir), ["clawdia.log"]);
    }

    #[test]
    fn an_unwritable_log_is_skipped_and_written_again_once_it_works() {
        let home = tempfile::tempdir().unwrap();
        // `logs` is a file, so the folder cannot be made.
        std::fs::write(home.path().join("logs"), "not a folder").unwrap();
        let mut log = LogFile::new(&home.path().join("logs"), 1000, 2);
        log.write(b"lost\n");
        assert!(log.warned && log.file.is_none());
        std::fs::remove_file(home.path().join("logs")).unwrap();
        log.write(b"kept\n");
        assert!(!log.warned);
        assert_eq!(std::fs::read_to_string(home.path().join("logs/clawdia.log")).unwrap(), "kept\n");
    }

    #[test]
    fn a_log_deleted_while_open_is_created_again() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("logs");
        let mut log = LogFile::new(&dir, 1000, 2);
        log.write(b"before\n");
        std::fs::remove_file(dir.join(LOG_FILE)).unwrap();
        log.write(b"after\n");
        assert_eq!(std::fs::read_to_string(dir.join(LOG_FILE)).unwrap(), "after\n");
    }

    #[test]
    fn colour_codes_stay_out_of_the_file() {
        assert_eq!(strip_ansi("\u{1b}[2m2026\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m up"), "2026  INFO up");
    }
}
