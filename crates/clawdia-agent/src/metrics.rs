//! Process-wide counters for `/metrics`, rendered in the Prometheus text format. Atomics only:
//! recording is a few relaxed adds on the hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub turns: AtomicU64,
    pub turn_errors: AtomicU64,
    pub model_calls: AtomicU64,
    pub model_failures: AtomicU64,
    pub fallbacks: AtomicU64,
    pub tool_calls: AtomicU64,
    pub tool_denials: AtomicU64,
    pub budget_blocks: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
    pub cost_micro_usd: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters in Prometheus text exposition format.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 10] = [
            ("clawdia_turns_total", "Agent turns started.", &self.turns),
            ("clawdia_turn_errors_total", "Agent turns that ended in an error.", &self.turn_errors),
            ("clawdia_model_calls_total", "Model attempts made.", &self.model_calls),
            ("clawdia_model_failures_total", "Model attempts that failed.", &self.model_failures),
            ("clawdia_fallbacks_total", "Replies that came from a fallback model.", &self.fallbacks),
            ("clawdia_tool_calls_total", "Tool calls dispatched.", &self.tool_calls),
            ("clawdia_tool_denials_total", "Tool calls refused by policy.", &self.tool_denials),
            ("clawdia_budget_blocks_total", "Model calls refused by a budget.", &self.budget_blocks),
            ("clawdia_input_tokens_total", "Input tokens billed.", &self.input_tokens),
            ("clawdia_output_tokens_total", "Output tokens billed.", &self.output_tokens),
        ];
        let mut out = String::with_capacity(1024);
        for (name, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let usd = self.cost_micro_usd.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# HELP clawdia_cost_usd_total Model spend in USD.\n# TYPE clawdia_cost_usd_total counter\nclawdia_cost_usd_total {usd}"
        );
        out
    }
}
