//! Unit tests: the output cap keeps head and tail with a visible marker, the environment is
//! the safe defaults plus what the policy adds, and the bubblewrap arguments bind what they
//! should.

use std::path::{Path, PathBuf};

use crate::output::CappedOutput;
use crate::{Policy, Spec};

fn capped(cap: usize, chunks: &[&[u8]]) -> (String, bool, u64) {
    let mut output = CappedOutput::new(cap);
    for chunk in chunks {
        output.push(chunk);
    }
    let (truncated, total) = (output.truncated(), output.total());
    (output.finish(), truncated, total)
}

#[test]
fn output_under_the_cap_is_kept_whole() {
    assert_eq!(capped(10, &[b"abc", b"def"]), ("abcdef".to_string(), false, 6));
    assert_eq!(capped(6, &[b"abc", b"def"]), ("abcdef".to_string(), false, 6));
}

#[test]
fn output_over_the_cap_keeps_head_and_tail_with_a_marker() {
    let (text, truncated, total) = capped(8, &[b"0123", b"456789", b"abcdef"]);
    assert!(truncated);
    assert_eq!(total, 16);
    assert_eq!(text, "0123\n[... 8 bytes of output omitted ...]\ncdef");
    let (text, ..) = capped(4, &[&[b'x'; 1000], b"end"]);
    assert_eq!(text, "xx\n[... 999 bytes of output omitted ...]\nnd");
}

#[test]
fn the_environment_is_safe_defaults_plus_explicit_variables() {
    let mut policy = Policy::new("/w");
    policy.env = vec![("FOO".into(), "bar".into()), ("LANG".into(), "de_DE.UTF-8".into())];
    let env = policy.environment();
    let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(get("HOME"), Some("/w"));
    assert_eq!(get("FOO"), Some("bar"));
    assert_eq!(get("LANG"), Some("de_DE.UTF-8"));
    assert_eq!(env.iter().filter(|(k, _)| k == "LANG").count(), 1);
    assert!(get("PATH").is_some_and(|p| p.contains("/usr/bin")));
    assert_eq!(get("ANTHROPIC_API_KEY"), None);
}

#[test]
fn bubblewrap_binds_the_workspace_read_write_after_a_private_tmp_and_masks_hidden_folders() {
    let hidden = tempfile::tempdir().unwrap();
    let spec = Spec {
        command: "true".into(),
        workspace: PathBuf::from("/work/ws"),
        workspace_writable: true,
        hidden: vec![hidden.path().to_path_buf(), PathBuf::from("/does/not/exist")],
        visible: vec![PathBuf::from("/tmp/servers")],
        env: Vec::new(),
        processes: Some(10),
        status_fd: Some(3),
        egress_fd: None,
    };
    let args: Vec<String> = crate::bwrap::arguments(&spec, Path::new("/bin/clawdia"), "{}")
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let joined = args.join(" ");
    assert!(
        joined.starts_with("--unshare-all --unshare-user --disable-userns --die-with-parent --new-session")
    );
    assert!(joined.contains(
        "--ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --tmpfs /dev/shm --ro-bind /tmp/servers /tmp/servers \
         --bind /work/ws /work/ws"
    ));
    assert!(joined.contains(&format!("--tmpfs {}", hidden.path().display())));
    assert!(!joined.contains("/does/not/exist"), "missing hidden paths are skipped");
    assert!(joined.contains("--cap-drop ALL --clearenv --chdir /work/ws -- /bin/clawdia __sandbox-exec {}"));
}

#[test]
fn seccomp_filters_compile_for_this_architecture() {
    let (filter, clone3) = crate::confine::seccomp_filters().unwrap();
    assert!(filter.len() > 40);
    assert!(!clone3.is_empty());
}

#[test]
fn a_programs_own_files_under_tmp_are_its_top_folder_there_and_nothing_elsewhere() {
    let kept = tempfile::Builder::new().prefix("clawdia-own-files-").tempdir_in("/tmp").unwrap();
    let top = kept.path().canonicalize().unwrap();
    std::fs::create_dir_all(top.join("node_modules/server/dist")).unwrap();
    let script = top.join("node_modules/server/dist/index.js");
    std::fs::write(&script, "").unwrap();
    let policy = Policy::new("/w");
    let args =
        vec![script.display().to_string(), "--flag".into(), "/usr/share".into(), "/tmp/missing/x".into()];
    assert_eq!(crate::stdio::own_files("/bin/sh", &args, &policy), vec![top.clone()]);
    // The program itself, found on the sandbox's PATH or given by path.
    assert!(crate::stdio::own_files("sh", &[], &policy).is_empty(), "/bin/sh is visible anyway");
    assert_eq!(crate::stdio::own_files(&script.display().to_string(), &[], &policy), vec![top]);
}
