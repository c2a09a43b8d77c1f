//! Test support, shared by the unit tests in `src/` and the integration tests in
//! `tests/`: [`TestPlan`], a fluent builder of compiled plans.
//!
//! Tests describe a plan as the YAML a user would write and get it through the real
//! compiler, so they never spell out the execution graph's types (which change as the
//! engine grows) and they exercise the compiler's meaning of the plan, not a hand-made
//! guess at it. It lives in the library (hidden from the docs) rather than in
//! `tests/common`, because the unit tests in `src/` cannot reach `tests/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::compile::graph::CompiledPlan;
use crate::compile::{CompileOptions, compile_str};
use crate::plan::PlanErrors;

/// A plan under construction, e.g.
/// `TestPlan::new().target(url).closed(2, secs(1)).flow("- get: /x").compile()`.
#[derive(Debug, Clone)]
pub struct TestPlan {
    name: String,
    source: PathBuf,
    target: String,
    load: String,
    data: Vec<String>,
    flows: Vec<String>,
    slos: Vec<String>,
    /// Other top-level keys, each given whole (`grpc: { ... }`).
    top: Vec<String>,
    options: CompileOptions,
}

impl Default for TestPlan {
    fn default() -> Self {
        TestPlan::new()
    }
}

/// Renders a duration as the plan format writes it (whole milliseconds).
pub fn plan_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl TestPlan {
    /// A plan named `test` at `http://127.0.0.1:9`, with one user for one second and
    /// no flows yet.
    pub fn new() -> TestPlan {
        TestPlan {
            name: "test".into(),
            source: PathBuf::from("test.yaml"),
            target: "http://127.0.0.1:9".into(),
            load: "{ users: 1, duration: 1s }".into(),
            data: Vec::new(),
            flows: Vec::new(),
            slos: Vec::new(),
            top: Vec::new(),
            options: CompileOptions::default(),
        }
    }

    pub fn name(mut self, name: &str) -> TestPlan {
        self.name = name.into();
        self
    }

    /// Where the plan "lives": data files are found beside it.
    pub fn source(mut self, path: impl AsRef<Path>) -> TestPlan {
        self.source = path.as_ref().to_path_buf();
        self
    }

    pub fn target(mut self, url: impl Into<String>) -> TestPlan {
        self.target = url.into();
        self
    }

    /// The `load` mapping, as YAML flow text: `{ users: 2, iterations: 10 }`.
    pub fn load(mut self, yaml: &str) -> TestPlan {
        self.load = yaml.into();
        self
    }

    /// The closed model: `users` fixed users for `duration`.
    pub fn closed(self, users: u32, duration: Duration) -> TestPlan {
        let load = format!(
            "{{ users: {users}, duration: {} }}",
            plan_duration(duration)
        );
        self.load(&load)
    }

    /// The open model: `rate` arrivals per second, at most `max_users` at once.
    pub fn open(self, rate: f64, max_users: u32, duration: Duration) -> TestPlan {
        let load = format!(
            "{{ arrival_rate: {rate}/s, max_users: {max_users}, duration: {} }}",
            plan_duration(duration)
        );
        self.load(&load)
    }

    /// A data file: `csv` (relative to [`TestPlan::source`]) read with `pick`.
    pub fn data(mut self, name: &str, csv: &str, pick: &str) -> TestPlan {
        self.data
            .push(format!("  {name}: {{ csv: {csv:?}, pick: {pick} }}"));
        self
    }

    /// A flow with weight 1 and these steps (a YAML list, one step per `- `).
    pub fn flow(self, steps: &str) -> TestPlan {
        let name = format!("f{}", self.flows.len());
        self.flow_spec(&format!("name: {name}\nsteps:\n{}", indent(steps, 2)))
    }

    /// A flow given whole, as the YAML mapping a user writes (`name`, `weight`,
    /// `think`, `setup`, `steps`, ...).
    pub fn flow_spec(mut self, mapping: &str) -> TestPlan {
        self.flows.push(mapping.trim_matches('\n').to_string());
        self
    }

    /// An SLO line: `p95 < 300ms`, `"list products": p95 < 200ms`.
    pub fn slo(mut self, line: &str) -> TestPlan {
        self.slos.push(line.into());
        self
    }

    /// A top-level key given whole, as the YAML a user writes, e.g.
    /// `grpc: { proto: [test.proto] }` or `defaults: { timeout: 1s }`.
    pub fn top(mut self, yaml: &str) -> TestPlan {
        self.top.push(yaml.trim_matches('\n').to_string());
        self
    }

    /// The command line's overrides (`--var`, `--users`, ...).
    pub fn options(mut self, options: CompileOptions) -> TestPlan {
        self.options = options;
        self
    }

    /// The plan's text.
    pub fn yaml(&self) -> String {
        let mut text = format!(
            "name: {:?}\ntarget: {:?}\nload: {}\n",
            self.name, self.target, self.load
        );
        for t in &self.top {
            let _ = writeln!(text, "{t}");
        }
        if !self.data.is_empty() {
            text.push_str("data:\n");
            for d in &self.data {
                let _ = writeln!(text, "{d}");
            }
        }
        text.push_str("flows:\n");
        for flow in &self.flows {
            let _ = writeln!(text, "  - {}", indent(flow, 4).trim_start());
        }
        if !self.slos.is_empty() {
            text.push_str("slo:\n");
            for slo in &self.slos {
                let _ = writeln!(text, "  - {slo}");
            }
        }
        text
    }

    /// Compiles the plan.
    pub fn try_compile(&self) -> Result<CompiledPlan, PlanErrors> {
        compile_str(&self.yaml(), &self.source, &self.options)
    }

    /// Compiles the plan; a plan that does not compile is a mistake in the test, so
    /// this panics with the diagnostics and the text.
    pub fn compile(&self) -> CompiledPlan {
        self.try_compile()
            .unwrap_or_else(|e| panic!("the test plan compiles:\n{e}\n{}", self.yaml()))
    }
}

/// `text` with every line indented by `by` spaces.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.trim_matches('\n')
        .lines()
        .map(|l| format!("{pad}{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_plan_compiles_to_what_it_says() {
        let plan = TestPlan::new()
            .name("built")
            .target("http://127.0.0.1:1")
            .closed(3, Duration::from_millis(1500))
            .flow("- get: /a\n  name: a\n- post: /b")
            .flow_spec("name: other\nweight: 2\nsteps:\n  - get: /c")
            .slo("p95 < 300ms")
            .compile();
        assert_eq!(plan.name, "built");
        assert_eq!(plan.flows.len(), 2);
        assert_eq!(plan.flows[1].weight, 2);
        let names: Vec<&str> = plan.requests.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "POST /b", "GET /c"]);
        assert_eq!(plan.load.duration, Some(Duration::from_millis(1500)));
        assert_eq!(plan.slos.len(), 1);
    }

    #[test]
    fn a_mistake_in_the_text_is_reported_with_it() {
        let err = TestPlan::new().flow("- get: /a\n  bogus: 1").try_compile();
        assert!(err.is_err());
    }
}
