//! End-to-end tests: the real `clawdia` binary against a scriptable mock LLM server on
//! loopback, real SQLite files in a temporary home, and (for the OpenAI-compatible API) the
//! official `openai` Python SDK.
#![allow(clippy::disallowed_methods)] // tests spawn the real binary and python3

mod alerts;
mod approvals;
mod brain;
mod bridge;
mod browser;
mod cli;
mod crash;
mod cron;
mod daemon;
mod dream;
mod elevation;
mod email;
mod exec;
mod gateway;
mod local;
mod mcp;
mod openai_sdk;
mod retries;
mod secrets;
mod skills;
mod speech;
mod support;
mod telegram;
mod telegram_files;
mod web;
