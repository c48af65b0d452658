//! Unit tests of the crate's internals: the reference walker and the example file agree key for
//! key, and the error helpers compute lines and key paths the way users read them.

use crate::error::{ConfigError, key_path, line_of};
use crate::reference::documented_keys;

#[test]
fn the_example_file_sets_every_documented_key() {
    let keys = documented_keys();
    assert!(keys.len() >= 30, "the walker found too few keys: {keys:?}");
    for expected in [
        ("gateway", "token"),
        ("providers.<name>", "headers"),
        ("agents.<name>", "fallbacks"),
        ("agents.<name>.tools", "deny"),
        ("agents.<name>.web_fetch", "allow_private"),
        ("prices.\"<provider>/<model>\"", "cache_write_per_mtok"),
    ] {
        assert!(keys.iter().any(|(s, k)| (s.as_str(), k.as_str()) == expected), "{expected:?} missing");
    }
    let example = crate::example_toml();
    for (section, key) in keys {
        // Alternatives (e.g. the `openai` embedder's keys in a `local` example) may be shown
        // commented out.
        let set = example.lines().any(|line| {
            line.trim_start()
                .trim_start_matches("# ")
                .strip_prefix(key.as_str())
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
        assert!(set, "clawdia.example.toml never sets `{key}` of [{section}]");
    }
}

#[test]
fn lines_are_one_based_and_clamped() {
    assert_eq!(line_of("a\nb\nc", 0), 1);
    assert_eq!(line_of("a\nb\nc", 2), 2);
    assert_eq!(line_of("a\nb\nc", 4), 3);
    assert_eq!(line_of("a\n", 99), 2);
}

#[test]
fn key_paths_quote_non_bare_keys_and_attach_indexes() {
    assert_eq!(key_path(&["agents", "main", "fallbacks", "[2]"]), "agents.main.fallbacks[2]");
    assert_eq!(key_path(&["prices", "zai/glm-5", "input_per_mtok"]), "prices.\"zai/glm-5\".input_per_mtok");
    assert_eq!(key_path(&["providers", ""]), "providers.\"\"");
}

#[test]
fn errors_without_line_or_key_still_read_as_one_line() {
    let no_line =
        ConfigError::Invalid { line: None, key: Some("gateway.port".into()), message: "bad".into() };
    assert_eq!(no_line.to_string(), "clawdia.toml: gateway.port: bad");
    let no_key = ConfigError::Invalid { line: Some(4), key: None, message: "bad".into() };
    assert_eq!(no_key.to_string(), "clawdia.toml:4: bad");
    assert_eq!((no_key.line(), no_key.key()), (Some(4), None));
}
