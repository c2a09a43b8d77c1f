//! SLO lines: `METRIC OP VALUE` over all requests, or `REQUEST NAME: ...` for one
//! request name. Metric names, operators, units and request names are all checked,
//! so a threshold on something nothing produces can never pass silently.

use crate::plan::de::{Sp, closest, suggest};
use crate::plan::diag::line_col;
use std::time::Duration;

use crate::plan::node::{Key, Kind, Node};

use super::Compiler;
use super::graph::{CmpOp, Metric, RequestId, Slo};
use super::units;

const METRICS: &[&str] = &[
    "min",
    "mean",
    "max",
    "p50",
    "p90",
    "p95",
    "p99",
    "p99.9",
    "error_rate",
    "rps",
    "requests",
    "failures",
    "dropped",
];

/// The keys of an SLO line written as a map.
const SLO_OPTIONS: &[&str] = &["line", "window", "abort"];

impl Compiler<'_> {
    pub(super) fn slos(&mut self, raw: Option<&Sp<Vec<Node>>>) -> Vec<Slo> {
        let entries = match raw {
            Some(r) if !r.value.is_empty() => &r.value,
            _ => {
                return vec![Slo {
                    text: "failures == 0".into(),
                    request: None,
                    metric: Metric::Failures,
                    op: CmpOp::Eq,
                    threshold: 0.0,
                    line: None,
                    column: None,
                    window: None,
                    abort: false,
                }];
            }
        };
        let mut out = Vec::new();
        for entry in entries {
            match &entry.kind {
                Kind::Str(line) => out.extend(self.slo_text(line, entry.pos)),
                Kind::Map(pairs) if pairs.iter().any(|(k, _)| k.name == "line") => {
                    out.extend(self.slo_options(pairs));
                }
                Kind::Map(pairs) => {
                    for (k, v) in pairs {
                        let request = self.slo_request(k.name.trim(), k.pos);
                        let conds: Vec<&Node> = match &v.kind {
                            Kind::Seq(items) => items.iter().collect(),
                            _ => vec![v],
                        };
                        for c in conds {
                            match &c.kind {
                                Kind::Str(s) => out.extend(self.slo_line(s.trim(), c.pos, request)),
                                other => self.error_help(
                                    c.pos,
                                    format!(
                                        "an SLO condition is a string, not {}",
                                        other.describe()
                                    ),
                                    "write e.g. `list products: p95 < 200ms`",
                                ),
                            }
                        }
                    }
                }
                other => self.error_help(
                    entry.pos,
                    format!(
                        "an SLO is a line like `p95 < 300ms`, not {}",
                        other.describe()
                    ),
                    "write `- p95 < 300ms` or `- list products: p95 < 200ms`",
                ),
            }
        }
        out
    }

    /// A line written as a string: `METRIC OP VALUE` or `REQUEST NAME: METRIC OP VALUE`.
    fn slo_text(&mut self, line: &str, pos: usize) -> Option<Slo> {
        match line.rsplit_once(':') {
            Some((name, cond)) => {
                let cond_off = name.len() + 1 + (cond.len() - cond.trim_start().len());
                let cond_pos = self.inner_pos(pos, line, cond_off);
                let request = self.slo_request(name.trim(), pos);
                self.slo_line(cond.trim(), cond_pos, request)
            }
            None => self.slo_line(line.trim(), pos, Ok(None)),
        }
    }

    /// A line with options: `{ line: "p95 < 300ms", window: 30s, abort: true }`.
    fn slo_options(&mut self, pairs: &[(Key, Node)]) -> Option<Slo> {
        let mut slo = None;
        let mut window = None;
        let mut abort = false;
        let mut ok = true;
        for (k, v) in pairs {
            match (k.name.as_str(), &v.kind) {
                ("line", Kind::Str(line)) => {
                    slo = self.slo_text(line, v.pos);
                    ok &= slo.is_some();
                }
                ("line", other) => {
                    self.error_help(
                        v.pos,
                        format!("an SLO line is a string, not {}", other.describe()),
                        "write e.g. `line: p95 < 300ms`",
                    );
                    ok = false;
                }
                ("window", Kind::Str(text)) => match units::parse_duration(text) {
                    Ok(d) if d >= Duration::from_secs(1) && d.subsec_nanos() == 0 => {
                        window = Some(d);
                    }
                    Ok(_) => {
                        self.error(
                            v.pos,
                            format!(
                                "a window is a whole number of seconds, at least 1s, not `{text}`"
                            ),
                        );
                        ok = false;
                    }
                    Err(e) => {
                        self.error(v.pos, e);
                        ok = false;
                    }
                },
                ("window", other) => {
                    self.error_help(
                        v.pos,
                        format!("a window is a duration, not {}", other.describe()),
                        "write e.g. `window: 30s`",
                    );
                    ok = false;
                }
                ("abort", Kind::Bool(b)) => abort = *b,
                ("abort", other) => {
                    self.error(
                        v.pos,
                        format!("`abort` is true or false, not {}", other.describe()),
                    );
                    ok = false;
                }
                (name, _) => {
                    self.error_help(
                        k.pos,
                        format!("unknown key `{name}` in an SLO line"),
                        suggest(name, SLO_OPTIONS),
                    );
                    ok = false;
                }
            }
        }
        let mut slo = slo?;
        if !ok {
            return None;
        }
        slo.window = window;
        slo.abort = abort;
        Some(slo)
    }

    /// The request an SLO names; `Err(())` when none has that name (already reported).
    fn slo_request(&mut self, name: &str, pos: usize) -> Result<Option<RequestId>, ()> {
        if let Some(id) = self.request_ids.get(name) {
            return Ok(Some(*id));
        }
        let names: Vec<&str> = self.requests.iter().map(|r| r.name.as_str()).collect();
        if parse_metric(name).is_some() {
            self.error_help(
                pos,
                format!("no request is named `{name}`"),
                format!("`{name}` is a metric: write `- {name} < VALUE` (METRIC OP VALUE), not `{name}: VALUE`"),
            );
            return Err(());
        }
        let help = match closest(name, names.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None if names.is_empty() => "no request has a name yet".into(),
            None => format!(
                "the request names are: {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.error_help(pos, format!("no request is named `{name}`"), help);
        Err(())
    }

    fn slo_line(
        &mut self,
        text: &str,
        pos: usize,
        request: Result<Option<RequestId>, ()>,
    ) -> Option<Slo> {
        let help =
            "an SLO is `METRIC OP VALUE`, e.g. `p95 < 300ms`, `error_rate < 1%`, `rps >= 20`";
        let Some((op_at, op, op_len)) = find_op(text) else {
            self.error_help(
                pos,
                format!("`{text}` has no comparison (`<`, `<=`, `>`, `>=`, `==`)"),
                help,
            );
            return None;
        };
        let metric_text = text[..op_at].trim();
        let value_text = text[op_at + op_len..].trim();
        let value_off = text.len() - text[op_at + op_len..].trim_start().len();
        let value_pos = self.inner_pos(pos, text, value_off);
        let metric = match parse_metric(metric_text) {
            Some(m) => m,
            None => {
                self.error_help(
                    pos,
                    format!("unknown metric `{metric_text}`"),
                    suggest(metric_text, METRICS),
                );
                return None;
            }
        };
        let threshold = match slo_value(metric, value_text) {
            Ok(v) => v,
            Err(m) => {
                self.error(value_pos, m);
                return None;
            }
        };
        let request = request.ok()?;
        if metric == Metric::Dropped && request.is_some() {
            self.error(
                pos,
                "`dropped` counts arrivals over the whole run; it cannot be set for one request",
            );
            return None;
        }
        let (line, column) = line_col(self.source, pos);
        Some(Slo {
            text: format!("{metric_text} {} {value_text}", op.as_str()),
            request,
            metric,
            op,
            threshold,
            line: Some(line),
            column: Some(column),
            window: None,
            abort: false,
        })
    }
}

/// The comparison operator in a line: its offset, the operator and its length.
fn find_op(text: &str) -> Option<(usize, CmpOp, usize)> {
    let i = text.find(['<', '>', '=', '!'])?;
    let rest = &text[i..];
    let (op, len) = if rest.starts_with("<=") {
        (CmpOp::Le, 2)
    } else if rest.starts_with(">=") {
        (CmpOp::Ge, 2)
    } else if rest.starts_with("==") {
        (CmpOp::Eq, 2)
    } else if rest.starts_with('<') {
        (CmpOp::Lt, 1)
    } else if rest.starts_with('>') {
        (CmpOp::Gt, 1)
    } else {
        return None;
    };
    Some((i, op, len))
}

fn parse_metric(text: &str) -> Option<Metric> {
    Some(match text {
        "min" => Metric::Min,
        "mean" | "avg" => Metric::Mean,
        "max" => Metric::Max,
        "error_rate" => Metric::ErrorRate,
        "rps" => Metric::Rps,
        "requests" => Metric::Requests,
        "failures" => Metric::Failures,
        "dropped" => Metric::Dropped,
        p => {
            let n: f64 = p.strip_prefix('p')?.parse().ok()?;
            if !(n > 0.0 && n <= 100.0) {
                return None;
            }
            Metric::Percentile(n)
        }
    })
}

/// The threshold in the metric's unit (ms, a fraction, per second, or a count).
fn slo_value(metric: Metric, text: &str) -> Result<f64, String> {
    match metric {
        m if m.is_latency() => match units::parse_duration(text) {
            Ok(d) => Ok(d.as_secs_f64() * 1000.0),
            Err(_) => Err(format!(
                "`{text}` is not a duration: a latency threshold looks like `300ms` or `1s`"
            )),
        },
        Metric::ErrorRate => {
            if text.ends_with('%') {
                units::parse_percent(text)
            } else {
                // A bare number is ambiguous (is `1` 1% or 100%?); only zero is clear.
                if text.parse::<f64>().is_ok_and(|f| f.abs() < f64::EPSILON) {
                    Ok(0.0)
                } else {
                    Err(format!("`{text}` is not a percentage: write e.g. `1%`"))
                }
            }
        }
        Metric::Rps => units::parse_rate(text)
            .map_err(|_| format!("`{text}` is not a rate: write e.g. `20` or `20/s`")),
        _ => match text.parse::<u64>() {
            Ok(n) => Ok(n as f64),
            Err(_) => Err(format!("`{text}` is not a count (a whole number)")),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::compile::{CompileOptions, compile_str};

    fn slos(slo: &str) -> Result<Vec<Slo>, Vec<String>> {
        let src = format!(
            "name: t\ntarget: http://127.0.0.1:1\nload: {{ users: 1, duration: 1m }}\n\
             flows:\n  - name: f\n    steps:\n      - get: /a\n        name: list\n\
             slo:\n{slo}"
        );
        compile_str(&src, Path::new("t.yaml"), &CompileOptions::default())
            .map(|p| p.slos)
            .map_err(|e| {
                e.diagnostics
                    .iter()
                    .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                    .collect()
            })
    }

    #[test]
    fn a_line_with_a_window_and_abort() {
        let s = slos(
            "  - p95 < 300ms\n  - line: error_rate < 5%\n    abort: true\n\
             \x20\x20- { line: \"list: p99 < 1s\", window: 30s }\n",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].window, s[0].abort), (None, false));
        assert_eq!(
            (s[1].metric, s[1].window, s[1].abort),
            (Metric::ErrorRate, None, true)
        );
        assert_eq!(s[1].line, Some(11), "located on the line text");
        assert_eq!(s[2].request, Some(RequestId(0)));
        assert_eq!(
            (s[2].window, s[2].abort),
            (Some(Duration::from_secs(30)), false)
        );
    }

    #[test]
    fn a_line_with_options_is_checked_key_by_key() {
        let e = slos("  - line: p95 < 1s\n    windw: 30s\n").unwrap_err();
        assert_eq!(e, ["11:5: unknown key `windw` in an SLO line"]);
        let e = slos("  - line: p95 < 1s\n    window: 1500ms\n").unwrap_err();
        assert_eq!(
            e,
            ["11:13: a window is a whole number of seconds, at least 1s, not `1500ms`"]
        );
        let e = slos("  - line: p95 < 1s\n    abort: yes\n").unwrap_err();
        assert_eq!(e, ["11:12: `abort` is true or false, not a string"]);
        let e = slos("  - line: p95 < fast\n    abort: true\n").unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("not a duration"), "{e:?}");
        let e = slos("  - line: [p95 < 1s]\n").unwrap_err();
        assert_eq!(e, ["10:11: an SLO line is a string, not a list"]);
    }

    #[test]
    fn metrics_and_values() {
        assert_eq!(parse_metric("p99.9"), Some(Metric::Percentile(99.9)));
        assert_eq!(parse_metric("p0"), None);
        assert_eq!(parse_metric("p101"), None);
        assert_eq!(parse_metric("latency"), None);
        assert_eq!(slo_value(Metric::Percentile(95.0), "1s"), Ok(1000.0));
        assert!(slo_value(Metric::Percentile(95.0), "fast").is_err());
        assert!(slo_value(Metric::Percentile(95.0), "300").is_err());
        assert_eq!(slo_value(Metric::ErrorRate, "0.5%"), Ok(0.005));
        assert_eq!(slo_value(Metric::ErrorRate, "0"), Ok(0.0));
        assert!(slo_value(Metric::ErrorRate, "1").is_err());
        assert_eq!(slo_value(Metric::Rps, "600/m"), Ok(10.0));
        assert_eq!(slo_value(Metric::Failures, "0"), Ok(0.0));
        assert!(slo_value(Metric::Failures, "-1").is_err());
        assert_eq!(
            find_op("p95 <= 3ms").map(|o| (o.0, o.1)),
            Some((4, CmpOp::Le))
        );
        assert!(find_op("p95 3ms").is_none());
    }
}
