//! `swarm validate`: compiles a plan without sending anything, then prints what would
//! run (exit 0) or every problem in the plan (exit 2).

use std::fmt::Write as _;

use super::{CliError, ValidateArgs};
use crate::compile::CompileOptions;
use crate::compile::graph::{ClosedLoad, CompiledPlan, Load, LoadModel, RateShape, Step};
use crate::compile::units::format_duration;

pub fn run(args: ValidateArgs) -> Result<(), CliError> {
    let opts = CompileOptions::try_from(&args.plan)?;
    let plan = super::compile_plan(&args.plan, &opts)?;
    print!("{}", summary(&plan));
    Ok(())
}

/// A short human summary of what the plan would run.
pub fn summary(plan: &CompiledPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} is valid: {}", plan.source.display(), plan.name);
    if !plan.target.is_empty() {
        let _ = writeln!(out, "  target  {}", plan.target);
    }
    let _ = writeln!(out, "  load    {}", describe_load(&plan.load));
    let total: u64 = plan
        .flows
        .iter()
        .map(|f| u64::from(f.weight))
        .sum::<u64>()
        .max(1);
    let _ = writeln!(out, "  flows   {}", plan.flows.len());
    for f in &plan.flows {
        let requests = |steps: &[Step]| steps.iter().flat_map(Step::calls).count();
        let mut line = format!(
            "    {} (weight {}, {:.0}% of users): {} request{} per iteration",
            f.name,
            f.weight,
            f64::from(f.weight) * 100.0 / total as f64,
            requests(&f.steps),
            if requests(&f.steps) == 1 { "" } else { "s" }
        );
        if !f.setup.is_empty() {
            let _ = write!(line, ", {} in setup", requests(&f.setup));
        }
        if !f.teardown.is_empty() {
            let _ = write!(line, ", {} in teardown", requests(&f.teardown));
        }
        let _ = writeln!(out, "{line}");
        for s in f.setup.iter().chain(&f.steps).chain(&f.teardown) {
            let parallel = matches!(s, Step::Parallel(_));
            for r in s.calls() {
                let info = &plan.requests[r.request.0 as usize];
                let mark = if parallel { " (parallel)" } else { "" };
                let _ = writeln!(out, "      {:<7} {}{mark}", r.kind.label(), info.name);
            }
        }
    }
    if !plan.feeders.is_empty() {
        let _ = writeln!(out, "  data    {}", plan.feeders.len());
        for f in &plan.feeders {
            let _ = writeln!(
                out,
                "    {} ({}; {})",
                f.name,
                f.columns.join(", "),
                format!("{:?}", f.pick).to_lowercase()
            );
        }
    }
    let _ = writeln!(out, "  slo     {}", plan.slos.len());
    for s in &plan.slos {
        let on = match s.request {
            Some(id) => format!("{}: ", plan.requests[id.0 as usize].name),
            None => String::new(),
        };
        let implied = if s.line.is_none() { " (implied)" } else { "" };
        let _ = writeln!(out, "    {on}{}{implied}", s.text);
    }
    // Workers of a distributed run prove with it that they run this same plan.
    let _ = writeln!(out, "  fingerprint {}", plan.fingerprint);
    out
}

fn describe_load(load: &Load) -> String {
    let mut text = match &load.model {
        LoadModel::Closed(ClosedLoad::Fixed { users, spawn_rate }) => {
            let spawn = match spawn_rate {
                Some(r) => format!(", started at {r}/s"),
                None => ", all started at once".into(),
            };
            format!(
                "closed model, {users} user{}{spawn}",
                if *users == 1 { "" } else { "s" }
            )
        }
        LoadModel::Closed(ClosedLoad::Stages(stages)) => {
            let parts: Vec<String> = stages
                .iter()
                .map(|s| format!("{} users over {}", s.users, format_duration(s.duration)))
                .collect();
            format!("closed model, stages: {}", parts.join(" → "))
        }
        LoadModel::Open(open) => {
            let rate = match &open.rate {
                RateShape::Fixed(r) => format!("{r} arrivals/s"),
                RateShape::Stages(stages) => {
                    let parts: Vec<String> = stages
                        .iter()
                        .map(|s| format!("{}/s over {}", s.rate, format_duration(s.duration)))
                        .collect();
                    format!("stages: {}", parts.join(" → "))
                }
            };
            format!("open model, {rate}, at most {} users", open.max_users)
        }
    };
    let mut ends = Vec::new();
    if let Some(d) = load.duration {
        ends.push(format!("for {}", format_duration(d)));
    }
    if let Some(i) = load.iterations {
        ends.push(format!("{i} iterations"));
    }
    if load.duration.is_none()
        && let Some(total) = load.total_duration()
    {
        ends.push(format!("for {}", format_duration(total)));
    }
    if !ends.is_empty() {
        let _ = write!(text, "; {}", ends.join(", whichever comes first: "));
    }
    text
}
