//! `parallel:` groups: HTTP requests a user sends at once. Each request of a group
//! compiles as a step of its own would; what the group adds is checked here: it is
//! a step of its own, it holds HTTP requests only (no pause, socket, gRPC step or
//! nested group), and no two of its requests capture the same name, since they
//! answer in any order.

use crate::plan::de::Sp;
use crate::plan::raw::{RawCall, RawStep};

use super::Compiler;
use super::flows::Scope;
use super::graph::{Parallel, Step};

impl Compiler<'_> {
    /// Compiles the group written as `raw`'s `parallel:`. Its requests see the
    /// captures made before the group, none of each other's.
    pub(super) fn parallel(
        &mut self,
        raw: &Sp<RawStep>,
        group: &Sp<Vec<Sp<RawStep>>>,
        scope: &Scope,
    ) -> Option<Box<Parallel>> {
        let s = &raw.value;
        for call in s.calls() {
            self.error_help(
                call.pos(),
                format!("`{}` next to `parallel`", call.key()),
                "a `parallel` group is a step of its own: put the request inside the group",
            );
        }
        if let Some(t) = &s.think {
            self.error_help(
                t.pos,
                "`think` next to `parallel`",
                "a pause is a step of its own, before or after the group",
            );
        }
        self.stray_keys(
            raw,
            "a `parallel` group",
            "each request of the group takes its own `{key}`: put it on the request",
        );
        if group.value.is_empty() {
            self.error_help(
                group.pos,
                "`parallel` is empty",
                "list the requests to send at once, e.g. `- get: /a` and `- get: /b`",
            );
            return None;
        }
        let mut captured: Vec<&str> = Vec::new();
        let mut calls = Vec::new();
        for branch in &group.value {
            let b = &branch.value;
            if b.parallel.is_some() {
                self.error_help(
                    branch.pos,
                    "`parallel` groups do not nest",
                    "list every request of the group at one level",
                );
                continue;
            }
            if let Some(t) = &b.think {
                self.error_help(
                    t.pos,
                    "a pause inside `parallel`",
                    "the group's requests start together: pause before or after the group",
                );
                continue;
            }
            if let Some(other) = b.calls().first().filter(|c| !is_http(c)) {
                self.error_help(
                    other.pos(),
                    format!("`{}` cannot run inside `parallel`", other.key()),
                    "only HTTP requests run in parallel: put this step before or after the group",
                );
                continue;
            }
            for (k, _) in b.capture.iter().flat_map(|c| &c.0) {
                if captured.contains(&k.value.as_str()) {
                    self.error_help(
                        k.pos,
                        format!(
                            "two requests of this `parallel` group capture `{}`",
                            k.value
                        ),
                        "they answer in any order, so which value is kept would be a race: \
                         give one of the captures another name",
                    );
                } else {
                    captured.push(&k.value);
                }
            }
            if let Some(Step::Call(call)) = self.step(branch, scope) {
                calls.push(*call);
            }
        }
        let mut feeders = Vec::new();
        for f in calls.iter().flat_map(|c| &c.feeders) {
            if !feeders.contains(f) {
                feeders.push(*f);
            }
        }
        Some(Box::new(Parallel { calls, feeders }))
    }
}

fn is_http(call: &RawCall) -> bool {
    matches!(call, RawCall::Http { .. })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::compile::graph::{CallKind, Step};
    use crate::compile::{CompileOptions, compile_str};

    /// A group is one step holding its calls in order, each with its own name; its
    /// captures are usable by the steps after it.
    #[test]
    fn a_group_compiles_to_one_step_of_named_calls() {
        let src = "name: p\ntarget: http://127.0.0.1:1\nload: { users: 1, duration: 1s }\n\
                   flows:\n  - name: f\n    steps:\n      - parallel:\n\
                   \x20         - { get: /a, name: a, capture: { x: $.x } }\n\
                   \x20         - { post: /b, json: { k: 1 } }\n\
                   \x20     - get: /c/{{ x }}\n";
        let plan = compile_str(src, Path::new("p.yaml"), &CompileOptions::default()).unwrap();
        let steps = &plan.flows[0].steps;
        assert_eq!(steps.len(), 2);
        let Step::Parallel(group) = &steps[0] else {
            panic!("a group, got {:?}", steps[0]);
        };
        let names: Vec<&str> = (group.calls.iter())
            .map(|c| plan.requests[c.request.0 as usize].name.as_str())
            .collect();
        assert_eq!(names, ["a", "POST /b"]);
        assert!(
            group
                .calls
                .iter()
                .all(|c| matches!(c.kind, CallKind::Http(_)))
        );
        assert_eq!(steps[0].calls().len(), 2);
        assert_eq!(steps[1].calls().len(), 1);
    }
}
