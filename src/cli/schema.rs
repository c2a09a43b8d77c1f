//! `swarm schema`: prints the plan's JSON Schema, generated from the raw plan types
//! the parser uses (the checked-in `schemas/plan.schema.json` must equal it).

/// The plan's JSON Schema as pretty-printed JSON, with a trailing newline.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(crate::plan::raw::RawPlan);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

pub fn run() -> Result<(), super::CliError> {
    print!("{}", plan_schema());
    Ok(())
}
