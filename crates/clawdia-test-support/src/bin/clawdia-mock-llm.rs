//! `clawdia-mock-llm [--port N] [--text REPLY]`: runs the mock LLM server (both wire formats)
//! with a fixed default reply until killed, printing `listening on 127.0.0.1:PORT` once ready.
//! It records nothing and logs nothing per request, so benchmarks can drive it hard.

use std::io::Write;
use std::process::ExitCode;

use clawdia_test_support::{MockLlm, MockOptions, Reply};

const USAGE: &str = "usage: clawdia-mock-llm [--port N] [--text REPLY]";

fn parse_args() -> Result<MockOptions, String> {
    let mut options = MockOptions { record_requests: false, ..MockOptions::default() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                options.port = value.parse().map_err(|_| format!("invalid port `{value}`"))?;
            }
            "--text" => {
                let value = args.next().ok_or("--text needs a value")?;
                options.default_reply = Reply::text(value);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let mock = match MockLlm::start_with(options).await {
        Ok(mock) => mock,
        Err(error) => {
            eprintln!("clawdia-mock-llm: cannot listen: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", mock.addr());
    let _ = stdout.flush();
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
