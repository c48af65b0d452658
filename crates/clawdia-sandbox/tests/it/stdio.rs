//! Long-lived stdio programs (`spawn_stdio`, for MCP servers): the pipes work both ways, the
//! same boundaries hold as for `run` (secrets hidden, the host's environment absent, writes
//! only in the program's folder), stderr is kept as a tail, killing the child ends its whole
//! tree, and node (what most MCP servers run on) works under Landlock, seccomp and the rlimits.

use std::path::Path;
use std::time::Duration;

use clawdia_sandbox::{Mechanism, Policy, StdioChild, spawn_stdio};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::{FAKE_KEY, Home, assert_ended, host_processes, mechanisms, skip_or_fail};

async fn start(mechanism: &Mechanism, policy: &Policy, script: &str) -> StdioChild {
    let args = vec!["-c".to_string(), script.to_string()];
    match spawn_stdio(mechanism, policy, "/bin/sh", &args).await {
        Ok(child) => child,
        Err(error) => panic!("{}: {error}", mechanism.name()),
    }
}

/// Sends `line`, returns the answer line.
async fn ask(
    stdin: &mut tokio::process::ChildStdin,
    stdout: &mut BufReader<tokio::process::ChildStdout>,
    line: &str,
) -> String {
    stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    stdin.flush().await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut answer)).await.unwrap().unwrap();
    answer.trim_end().to_string()
}

#[tokio::test]
async fn a_stdio_program_answers_inside_the_same_boundaries() {
    for mechanism in mechanisms().await {
        let name = mechanism.name();
        let home = Home::new();
        let script = format!(
            "echo started >&2; while read -r line; do case \"$line\" in \
             secret) cat {secret} 2>/dev/null || echo hidden;; \
             env) echo \"key=${{ANTHROPIC_API_KEY:-absent}} home=$HOME\";; \
             write) echo x > own.txt && echo x > {outside} 2>/dev/null && echo escaped || echo contained;; \
             *) echo \"echo:$line\";; esac; done",
            secret = home.root.join("secrets/key").display(),
            outside = home.root.join("outside.txt").display(),
        );
        let mut child = start(&mechanism, &home.policy(), &script).await;
        let (mut stdin, stdout) = child.take_pipes().unwrap();
        let mut stdout = BufReader::new(stdout);
        assert_eq!(ask(&mut stdin, &mut stdout, "hello").await, "echo:hello", "{name}");
        assert_eq!(ask(&mut stdin, &mut stdout, "secret").await, "hidden", "{name}");
        let env = ask(&mut stdin, &mut stdout, "env").await;
        assert!(!env.contains(FAKE_KEY), "{name}: {env}");
        assert_eq!(env, format!("key=absent home={}", home.workspace().display()), "{name}");
        let wrote = ask(&mut stdin, &mut stdout, "write").await;
        if !home.root.starts_with("/tmp") {
            assert_eq!(wrote, "contained", "{name}");
        }
        // What counts is the host: with the home under /tmp (a checkout or target dir there), the
        // write lands in the sandbox's private /tmp instead of failing, and never reaches it.
        assert!(home.workspace().join("own.txt").exists(), "{name}");
        assert!(!home.root.join("outside.txt").exists(), "{name}: {wrote}");
        assert!(child.stderr_tail().contains("started"), "{name}: {:?}", child.stderr_tail());
        assert!(!child.exited(), "{name}");
        drop(stdin);
        child.kill(Duration::from_millis(500)).await;
        assert!(child.exited(), "{name}");
    }
}

#[tokio::test]
async fn killing_a_stdio_program_ends_its_grandchildren() {
    for mechanism in mechanisms().await {
        let name = mechanism.name();
        let home = Home::new();
        let seconds = format!("{}", 200_000 + std::process::id() % 1000 + name.len() as u32);
        let script = format!("sleep {seconds} & sh -c 'sleep {seconds}' & echo ready; read -r line");
        let mut child = start(&mechanism, &home.policy(), &script).await;
        let (_stdin, stdout) = child.take_pipes().unwrap();
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut line)).await.unwrap().unwrap();
        assert_eq!(line.trim(), "ready", "{name}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let running = host_processes(&["sleep", &seconds]);
        assert_eq!(running.len(), 2, "{name}: both sleeps run");
        child.kill(Duration::from_millis(500)).await;
        assert_ended(&running, name).await;
    }
}

#[tokio::test]
async fn a_program_that_cannot_be_found_is_a_clear_error() {
    for mechanism in mechanisms().await {
        let home = Home::new();
        let mut child =
            spawn_stdio(&mechanism, &home.policy(), "/nonexistent/mcp-server", &[]).await.unwrap();
        // The shell execs; the program is missing, so the sandbox exits at once and stdout ends.
        let (_stdin, stdout) = child.take_pipes().unwrap();
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line).await.unwrap();
        assert_eq!(read, 0, "{}", mechanism.name());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !child.stderr_tail().contains("not found") && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(child.stderr_tail().contains("not found"), "{}: {:?}", mechanism.name(), child.stderr_tail());
    }
}

/// Node reserves about 10 GiB of address space per WebAssembly memory (undici's HTTP parser,
/// behind `fetch`, is one), so MCP servers on node need a larger `RLIMIT_AS` than `exec`'s 4 GiB.
#[tokio::test]
async fn node_runs_under_landlock_seccomp_and_the_mcp_memory_limit() {
    let Some(node) = ["/usr/bin/node", "/usr/local/bin/node"].into_iter().find(|p| Path::new(p).exists())
    else {
        skip_or_fail("node in the sandbox", "node is not installed (apt install nodejs)");
        return;
    };
    let script = "new WebAssembly.Memory({initial: 1}); new WebAssembly.Memory({initial: 1}); \
                  require('readline').createInterface({input: process.stdin}).on('line', l => console.log('node:' + l))";
    for mechanism in mechanisms().await {
        let name = mechanism.name();
        let home = Home::new();
        let mut policy = home.policy();
        policy.limits.address_space = Some(32 << 30);
        policy.limits.cpu_seconds = Some(3600);
        let args = vec!["-e".to_string(), script.to_string()];
        let mut child = spawn_stdio(&mechanism, &policy, node, &args).await.unwrap();
        let (mut stdin, stdout) = child.take_pipes().unwrap();
        let mut stdout = BufReader::new(stdout);
        let answer = ask(&mut stdin, &mut stdout, "ping").await;
        assert_eq!(answer, "node:ping", "{name}: stderr {}", child.stderr_tail());
        child.kill(Duration::from_millis(500)).await;
    }
}

/// An MCP server kept under `/tmp` (a checkout, an npm prefix): the sandbox's private `/tmp`
/// would hide it, so the folder holding the program's script is bound back in, read-only.
/// Other files in the host's `/tmp` stay invisible, and a hidden path inside that folder stays
/// hidden.
#[tokio::test]
async fn a_program_kept_under_tmp_runs_read_only_and_the_rest_of_tmp_stays_private() {
    for mechanism in mechanisms().await {
        let name = mechanism.name();
        let home = Home::new();
        let kept = tempfile::Builder::new().prefix("clawdia-kept-server-").tempdir_in("/tmp").unwrap();
        let kept_dir = kept.path().canonicalize().unwrap();
        let other = tempfile::NamedTempFile::new_in("/tmp").unwrap();
        std::fs::write(other.path(), "host-tmp-content").unwrap();
        std::fs::create_dir_all(kept_dir.join("lib")).unwrap();
        std::fs::write(kept_dir.join("lib/helper.sh"), "echo helper-loaded\n").unwrap();
        std::fs::create_dir_all(kept_dir.join("secrets")).unwrap();
        std::fs::write(kept_dir.join("secrets/key"), "the-kept-secret").unwrap();
        let script = kept_dir.join("server.sh");
        std::fs::write(
            &script,
            format!(
                ". {dir}/lib/helper.sh\n\
                 while read -r line; do case \"$line\" in \
                 other) cat {other} 2>/dev/null || echo private;; \
                 secret) cat {dir}/secrets/key 2>/dev/null || echo hidden;; \
                 write) echo x > {dir}/written 2>/dev/null && echo wrote || echo read-only;; \
                 *) echo \"echo:$line\";; esac; done\n",
                dir = kept_dir.display(),
                other = other.path().display(),
            ),
        )
        .unwrap();
        let mut policy = home.policy();
        policy.hidden.push(kept_dir.join("secrets"));
        let args = vec![script.display().to_string()];
        let mut child = match spawn_stdio(&mechanism, &policy, "/bin/sh", &args).await {
            Ok(child) => child,
            Err(error) => panic!("{name}: a program kept under /tmp must start: {error}"),
        };
        let (mut stdin, stdout) = child.take_pipes().unwrap();
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        tokio::time::timeout(Duration::from_secs(10), stdout.read_line(&mut first)).await.unwrap().unwrap();
        assert_eq!(first.trim_end(), "helper-loaded", "{name}: the script's own folder is visible");
        assert_eq!(ask(&mut stdin, &mut stdout, "hello").await, "echo:hello", "{name}");
        assert_eq!(ask(&mut stdin, &mut stdout, "other").await, "private", "{name}");
        assert_eq!(ask(&mut stdin, &mut stdout, "secret").await, "hidden", "{name}");
        assert_eq!(ask(&mut stdin, &mut stdout, "write").await, "read-only", "{name}");
        assert!(!kept_dir.join("written").exists(), "{name}");
        drop(stdin);
        child.kill(Duration::from_millis(500)).await;
    }
}
