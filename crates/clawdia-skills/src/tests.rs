//! Catalog, routing and registry tests on real folders, zip archives and a loopback HTTP server.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::*;

fn write_skill(dir: &Path, folder: &str, text: &str) {
    let folder = dir.join(folder);
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::write(folder.join("SKILL.md"), text).expect("write");
}

fn host_with(bins: &[&str], env: &[&str]) -> (tempfile::TempDir, Host) {
    let bin_dir = tempfile::tempdir().expect("tempdir");
    for bin in bins {
        let path = bin_dir.path().join(bin);
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let host = Host {
        path: vec![bin_dir.path().to_path_buf()],
        env: env.iter().map(|name| name.to_string()).collect::<HashSet<_>>(),
        os: "linux".to_string(),
    };
    (bin_dir, host)
}

#[test]
fn workspace_beats_user_beats_bundled_and_bad_files_do_not_stop_the_rest() {
    let workspace = tempfile::tempdir().expect("tempdir");
    let user = tempfile::tempdir().expect("tempdir");
    write_skill(workspace.path(), "deploy", "---\nname: deploy\ndescription: workspace version\n---\nW");
    write_skill(user.path(), "deploy", "---\nname: deploy\ndescription: user version\n---\nU");
    write_skill(user.path(), "brain-notes", "---\nname: brain-notes\ndescription: mine\n---\nmine");
    write_skill(user.path(), "broken", "---\nname: [oops\n---\nbody");
    write_skill(user.path(), "plain", "---\ndescription: fine\n---\nbody");
    let locations = Locations {
        workspace: Some(workspace.path().to_path_buf()),
        user: Some(user.path().to_path_buf()),
        bundled: true,
    };
    let (_bins, host) = host_with(&[], &[]);
    let catalog = Catalog::load(&locations, &host);
    let deploy = catalog.get("deploy").expect("deploy");
    assert_eq!(deploy.skill.origin, Origin::Workspace);
    assert_eq!(deploy.skill.description, "workspace version");
    assert_eq!(deploy.shadows, [Origin::User]);
    let notes = catalog.get("brain-notes").expect("brain-notes");
    assert_eq!(notes.skill.origin, Origin::User, "the owner's copy hides the bundled one");
    assert_eq!(notes.shadows, [Origin::Bundled]);
    assert!(catalog.get("plain").is_some());
    assert_eq!(catalog.problems.len(), 1, "{:?}", catalog.problems);
    assert!(catalog.problems[0].to_string().contains("broken/SKILL.md: bad frontmatter"));
}

#[test]
fn missing_requirements_make_a_skill_ineligible_with_the_reason_and_it_is_never_routed() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_skill(
        dir.path(),
        "gh",
        "---\nname: gh\ntriggers: [pull request]\nmetadata: {\"openclaw\":{\"requires\":{\"bins\":[\"gh\"],\"env\":[\"GH_TOKEN\"]}}}\n---\nUse gh.",
    );
    write_skill(
        dir.path(),
        "mac",
        "---\nname: mac\ntriggers: [pull request]\nmetadata: {openclaw: {os: [darwin]}}\n---\nmac only",
    );
    write_skill(
        dir.path(),
        "either",
        "---\nname: either\nalways: true\nmetadata: {openclaw: {requires: {anyBins: [rg, ag]}}}\n---\nsearch",
    );
    let locations = Locations { workspace: Some(dir.path().to_path_buf()), user: None, bundled: false };

    let (_none, bare) = host_with(&[], &[]);
    let catalog = Catalog::load(&locations, &bare);
    assert_eq!(catalog.get("gh").expect("gh").eligible, Err("needs the `gh` binary on PATH".to_string()));
    assert_eq!(
        catalog.get("mac").expect("mac").eligible,
        Err("runs on darwin only, this is linux".to_string())
    );
    assert_eq!(
        catalog.get("either").expect("either").eligible,
        Err("needs one of rg, ag on PATH".to_string())
    );
    assert!(catalog.route("open a pull request").names.is_empty());

    let (_bins, partial) = host_with(&["gh", "ag"], &[]);
    let catalog = Catalog::load(&locations, &partial);
    assert_eq!(
        catalog.get("gh").expect("gh").eligible,
        Err("needs the environment variable GH_TOKEN".to_string())
    );
    assert_eq!(catalog.get("either").expect("either").eligible, Ok(()));

    let (_bins, full) = host_with(&["gh"], &["GH_TOKEN"]);
    let catalog = Catalog::load(&locations, &full);
    assert_eq!(catalog.route("Please open a Pull Request").names, ["gh"]);
}

#[test]
fn routing_matches_triggers_case_insensitively_and_always_skills_are_always_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_skill(
        dir.path(),
        "deploy",
        "---\nname: deploy\ntriggers: [\"Ship It\", deploy]\n---\nDEPLOY STEPS",
    );
    write_skill(dir.path(), "tone", "---\nname: tone\nalways: true\n---\nBe brief.");
    write_skill(dir.path(), "other", "---\nname: other\ntriggers: [weather]\n---\nOTHER");
    let locations = Locations { workspace: Some(dir.path().to_path_buf()), user: None, bundled: false };
    let (_bins, host) = host_with(&[], &[]);
    let catalog = Catalog::load(&locations, &host);

    let routed = catalog.route("ok, SHIP IT now");
    assert_eq!(routed.names, ["deploy", "tone"]);
    assert!(routed.prompt.contains("## Skill: deploy\n\nDEPLOY STEPS"));
    assert!(routed.prompt.contains("Be brief."));
    assert!(!routed.prompt.contains("OTHER"));
    assert!(!routed.read_only, "local skills are trusted");

    let quiet = catalog.route("hello");
    assert_eq!(quiet.names, ["tone"]);
}

#[test]
fn triggered_skills_narrow_the_turn_to_what_they_declare_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_skill(dir.path(), "forecast", "---\ntriggers: [weather]\nmutating: false\n---\nLOOK");
    write_skill(
        dir.path(),
        "journal",
        "---\ntriggers: [journal]\nmutating: true\nwrites: [\"journal/**\"]\n---\nJ",
    );
    write_skill(dir.path(), "todo", "---\ntriggers: [todo]\nwrites: todo.md\n---\nT");
    write_skill(dir.path(), "gh", "---\ntriggers: [github]\n---\nOpenClaw style: declares nothing");
    write_skill(dir.path(), "tone", "---\nalways: true\nmutating: false\n---\nBe brief.");
    let locations = Locations { workspace: Some(dir.path().to_path_buf()), user: None, bundled: false };
    let (_bins, host) = host_with(&[], &[]);
    let catalog = Catalog::load(&locations, &host);
    let check = |message: &str, read_only: bool, globs: Option<&[&str]>| {
        let routed = catalog.route(message);
        assert!(!routed.read_only, "all trusted");
        assert_eq!(routed.declared_read_only, read_only, "{message}");
        let expected = globs.map(|globs| globs.iter().map(|g| g.to_string()).collect::<Vec<_>>());
        assert_eq!(routed.write_globs, expected, "{message}");
    };
    // Only the always-on skill (which declares `mutating: false`): no narrowing.
    check("hello", false, None);
    check("the weather?", true, Some(&[]));
    check("journal entry", false, Some(&["journal/**"]));
    check("weather in my journal", false, Some(&["journal/**"]));
    check("journal and todo", false, Some(&["journal/**", "todo.md"]));
    // One triggered skill that declares nothing (as OpenClaw's do) leaves the turn alone.
    check("weather on github", false, None);
    check("journal and github", false, None);
}

/// A zip holding `files` (path, content).
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut writer = zip::ZipWriter::new(&mut buffer);
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (path, content) in files {
            writer.start_file(*path, options).expect("start");
            writer.write_all(content.as_bytes()).expect("write");
        }
        writer.finish().expect("finish");
    }
    buffer.into_inner()
}

/// Publishes `name` `version` in the registry folder.
fn publish(registry: &Path, name: &str, version: &str, archive: &[u8]) -> String {
    let dir = registry.join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(format!("{name}-{version}.zip")), archive).expect("write archive");
    let sha = clawdia_core::hex(&Sha256::digest(archive));
    let meta = serde_json::json!({"name": name, "version": version, "sha256": sha});
    std::fs::write(dir.join("_meta.json"), meta.to_string()).expect("write meta");
    sha
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

#[test]
fn installs_from_a_folder_registry_pinned_untrusted_until_trusted() {
    let registry_dir = tempfile::tempdir().expect("tempdir");
    let skills = tempfile::tempdir().expect("tempdir");
    let v1 = zip_of(&[
        ("weather/SKILL.md", "---\nname: weather\ntriggers: [forecast]\n---\nv1 body"),
        ("weather/notes.txt", "x"),
    ]);
    let sha1 = publish(registry_dir.path(), "weather", "1.0.0", &v1);
    let registry = Registry::parse(&registry_dir.path().display().to_string());
    let rt = runtime();

    let installed = rt.block_on(install(&registry, "weather", skills.path())).expect("install");
    assert_eq!(installed, Installed::New { version: "1.0.0".into() });
    assert!(skills.path().join("weather/SKILL.md").is_file());
    assert!(skills.path().join("weather/notes.txt").is_file(), "the archive's top folder is the skill");
    let lock = Lock::read(skills.path()).expect("lock");
    assert_eq!(lock.skills["weather"].sha256, sha1);
    assert!(!lock.skills["weather"].trusted);

    // Untrusted: routed, but the turn goes read-only.
    let locations = Locations { workspace: None, user: Some(skills.path().to_path_buf()), bundled: false };
    let (_bins, host) = host_with(&[], &[]);
    let routed = Catalog::load(&locations, &host).route("what's the forecast?");
    assert_eq!(routed.names, ["weather"]);
    assert!(routed.read_only);
    assert!(routed.prompt.contains("untrusted"));

    trust(skills.path(), "weather").expect("trust");
    let routed = Catalog::load(&locations, &host).route("what's the forecast?");
    assert!(!routed.read_only);
    assert_eq!(
        rt.block_on(install(&registry, "weather", skills.path())).expect("again"),
        Installed::Unchanged { version: "1.0.0".into() }
    );
    assert!(Lock::read(skills.path()).expect("lock").skills["weather"].trusted, "a no-op keeps trust");

    // The same version changed in place upstream: refused, the installed copy stays.
    let tampered = zip_of(&[("SKILL.md", "---\nname: weather\n---\nevil body")]);
    publish(registry_dir.path(), "weather", "1.0.0", &tampered);
    let error = rt.block_on(install(&registry, "weather", skills.path())).expect_err("changed in place");
    assert!(error.to_string().contains("changed weather 1.0.0 in place"), "{error}");
    let body = std::fs::read_to_string(skills.path().join("weather/SKILL.md")).expect("read");
    assert!(body.contains("v1 body"));

    // A new version installs, untrusted again.
    let v2 = zip_of(&[("SKILL.md", "---\nname: weather\n---\nv2 body")]);
    publish(registry_dir.path(), "weather", "2.0.0", &v2);
    assert_eq!(
        rt.block_on(install(&registry, "weather", skills.path())).expect("upgrade"),
        Installed::Upgraded { from: "1.0.0".into(), to: "2.0.0".into() }
    );
    let record = &Lock::read(skills.path()).expect("lock").skills["weather"];
    assert_eq!(record.version, "2.0.0");
    assert!(!record.trusted, "a changed upstream is not trusted silently");
    assert!(!skills.path().join("weather/notes.txt").exists(), "the old version's files are gone");
}

#[test]
fn bad_archives_and_metadata_are_refused_and_nothing_is_installed() {
    let registry_dir = tempfile::tempdir().expect("tempdir");
    let skills = tempfile::tempdir().expect("tempdir");
    let registry = Registry::Dir(registry_dir.path().to_path_buf());
    let rt = runtime();
    let zeros = "0".repeat(64);
    let cases: Vec<(&str, Vec<u8>, Option<&str>, &str)> = vec![
        (
            "escape",
            zip_of(&[("../../evil/SKILL.md", "---\nname: x\n---\n")]),
            None,
            "outside the skill folder",
        ),
        ("nomd", zip_of(&[("README.md", "hi")]), None, "no SKILL.md"),
        ("badmd", zip_of(&[("SKILL.md", "no frontmatter")]), None, "no frontmatter"),
        ("notzip", b"plain bytes".to_vec(), None, "not a zip file"),
        ("badsha", zip_of(&[("SKILL.md", "---\nname: badsha\n---\n")]), Some(&zeros), "does not match"),
    ];
    for (name, archive, forced_sha, expected) in cases {
        let sha = publish(registry_dir.path(), name, "1.0.0", &archive);
        if let Some(forced) = forced_sha {
            let meta = serde_json::json!({"name": name, "version": "1.0.0", "sha256": forced});
            std::fs::write(registry_dir.path().join(name).join("_meta.json"), meta.to_string())
                .expect("meta");
        } else {
            assert_eq!(sha.len(), 64);
        }
        let error = rt.block_on(install(&registry, name, skills.path())).expect_err(name);
        assert!(error.to_string().contains(expected), "{name}: {error}");
        assert!(!skills.path().join(name).exists(), "{name}: nothing installed");
    }
    assert!(!registry_dir.path().parent().map(|p| p.join("evil")).is_some_and(|p| p.exists()));
    let error = rt.block_on(install(&registry, "../x", skills.path())).expect_err("bad name");
    assert!(error.to_string().contains("not a skill name"));
    let error = rt.block_on(install(&registry, "absent", skills.path())).expect_err("absent");
    assert!(error.to_string().contains("cannot read"), "{error}");
    assert!(Lock::read(skills.path()).expect("lock").skills.is_empty());
}

/// Serves `root` over HTTP/1.1 on loopback (GET only, one request per connection).
async fn serve(root: PathBuf) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let root = root.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 4096];
                let read = socket.read(&mut request).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..read]).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
                let response = match std::fs::read(root.join(&path)) {
                    Ok(body) if !path.contains("..") => {
                        let mut head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        head.extend(body);
                        head
                    }
                    _ => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
                };
                let _ = socket.write_all(&response).await;
            });
        }
    });
    format!("http://{address}")
}

#[test]
fn installs_from_an_http_registry() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry_dir = tempfile::tempdir().expect("tempdir");
    let skills = tempfile::tempdir().expect("tempdir");
    publish(registry_dir.path(), "notes", "0.3.1", &zip_of(&[("SKILL.md", "---\nname: notes\n---\nNOTES")]));
    let rt = runtime();
    rt.block_on(async {
        let base = serve(registry_dir.path().to_path_buf()).await;
        let registry = Registry::parse(&format!("{base}/"));
        let installed = install(&registry, "notes", skills.path()).await.expect("install");
        assert_eq!(installed, Installed::New { version: "0.3.1".into() });
        assert_eq!(Lock::read(skills.path()).expect("lock").skills["notes"].source, base);
        let error = install(&registry, "missing", skills.path()).await.expect_err("404");
        assert!(error.to_string().contains("HTTP 404"), "{error}");
    });
    assert!(std::fs::read_to_string(skills.path().join("notes/SKILL.md")).expect("read").contains("NOTES"));
}

#[test]
fn the_bundled_skill_parses() {
    let (_bins, host) = host_with(&[], &[]);
    let catalog = Catalog::load(&Locations { workspace: None, user: None, bundled: true }, &host);
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    let routed = catalog.route("Remember that the boiler was serviced in May");
    assert_eq!(routed.names, ["brain-notes"]);
    assert!(routed.prompt.contains("brain_put_page"));
}

#[test]
fn the_router_reads_the_agents_workspace_skills() {
    let home = tempfile::tempdir().expect("tempdir");
    let workspace = home.path().join("workspaces/main");
    write_skill(&workspace.join("skills"), "deploy", "---\nname: deploy\ntriggers: [deploy]\n---\nSTEPS");
    let router = Skills::new(Some(home.path().join("skills")));
    let routed = router.route("main", &workspace, "please deploy");
    assert_eq!(routed.names, ["deploy"]);
    assert_eq!(router.route("main", &workspace, "hello").names, Vec::<String>::new());
}
