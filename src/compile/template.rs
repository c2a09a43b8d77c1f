//! Templates: `{{ expr }}` holes parsed into [`Segment`]s once, with every name
//! resolved to a constant, a per-user slot, a feeder column or a function.

use std::collections::HashMap;

use serde_json::Value;

use super::graph::{Feeder, FeederId, Func, Segment, SlotId, Template};
use crate::plan::de::closest;

/// The functions a template may call, with their arity.
const FUNCTIONS: &[(&str, usize)] = &[
    ("uuid", 0),
    ("rand", 2),
    ("now", 0),
    ("user", 0),
    ("iteration", 0),
];

/// One `{{ expr }}` hole, at `offset` bytes into the template text.
#[derive(Debug, Clone, PartialEq)]
pub struct Hole {
    pub offset: usize,
    pub expr: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Lit(String),
    Hole(Hole),
}

/// Splits a template into literal text and holes. Errors carry an offset into `text`.
pub fn split(text: &str) -> Result<Vec<Piece>, (usize, String)> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            pieces.push(Piece::Lit(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| {
            (
                base + open,
                "unclosed `{{`: a template hole ends with `}}`".to_owned(),
            )
        })?;
        let expr = after[..close].trim();
        if expr.is_empty() {
            return Err((base + open, "empty template `{{ }}`".to_owned()));
        }
        pieces.push(Piece::Hole(Hole {
            offset: base + open,
            expr: expr.to_owned(),
        }));
        let consumed = open + 2 + close + 2;
        base += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Lit(rest.to_owned()));
    }
    Ok(pieces)
}

/// What names mean at one point of a flow.
pub struct Names<'a> {
    pub vars: &'a HashMap<String, Value>,
    pub feeders: &'a [Feeder],
    /// Captures made before this point (in the flow's setup and earlier steps).
    pub captures: &'a HashMap<String, SlotId>,
    /// Captures made later in the same flow, for a better message.
    pub later: &'a [String],
}

/// A template resolved against `names`, and the feeders it reads.
pub struct Resolved {
    pub template: Template,
    pub feeders: Vec<FeederId>,
}

/// One problem in a template: an offset into its text, a message and help.
pub type TemplateError = (usize, String, Option<String>);

/// Parses and resolves a template. Every problem in it is returned.
pub fn resolve(text: &str, names: &Names) -> Result<Resolved, Vec<TemplateError>> {
    let pieces = split(text).map_err(|(o, m)| vec![(o, m, None)])?;
    let mut segments = Vec::with_capacity(pieces.len());
    let mut feeders = Vec::new();
    let mut errors = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Lit(s) => segments.push(Segment::Literal(s)),
            Piece::Hole(h) => match resolve_expr(&h.expr, names) {
                Ok(seg) => {
                    if let Segment::Feeder { feeder, .. } = &seg
                        && !feeders.contains(feeder)
                    {
                        feeders.push(*feeder);
                    }
                    segments.push(seg);
                }
                Err((m, help)) => errors.push((h.offset, m, help)),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Resolved {
        template: Template { segments },
        feeders,
    })
}

fn resolve_expr(expr: &str, names: &Names) -> Result<Segment, (String, Option<String>)> {
    if let Some(open) = expr.find('(') {
        return resolve_call(expr, open).map(Segment::Func);
    }
    if !expr
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err((
            format!("`{expr}` is not a name or a function call"),
            Some(
                "write `{{ name }}`, `{{ feeder.column }}` or a function like `{{ rand(1, 10) }}`"
                    .into(),
            ),
        ));
    }
    if let Some(slot) = names.captures.get(expr) {
        return Ok(Segment::Slot(*slot));
    }
    if let Some(v) = names.vars.get(expr) {
        return Ok(Segment::Const(v.clone()));
    }
    if let Some((feeder, column)) = expr.split_once('.')
        && let Some((fi, f)) = names
            .feeders
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == feeder)
    {
        return match f.columns.iter().position(|c| c == column) {
            Some(ci) => Ok(Segment::Feeder {
                feeder: FeederId(fi as u32),
                column: ci as u32,
            }),
            None => Err((
                format!("the data feeder `{feeder}` has no column `{column}`"),
                Some(
                    match closest(column, f.columns.iter().map(String::as_str)) {
                        Some(c) => format!("did you mean `{feeder}.{c}`?"),
                        None => format!("its columns are: {}", f.columns.join(", ")),
                    },
                ),
            )),
        };
    }
    let help = if names.later.iter().any(|l| l == expr) {
        format!(
            "`{expr}` is captured only by a later step; a capture is usable in the steps after it"
        )
    } else {
        let known = names
            .captures
            .keys()
            .map(String::as_str)
            .chain(names.vars.keys().map(String::as_str));
        let columns: Vec<String> = names
            .feeders
            .iter()
            .flat_map(|f| f.columns.iter().map(move |c| format!("{}.{c}", f.name)))
            .collect();
        match closest(expr, known.chain(columns.iter().map(String::as_str))) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "define it in `vars`, capture it in an earlier step of this flow or its `setup`, or use a data feeder column (`feeder.column`)".into(),
        }
    };
    Err((format!("`{expr}` is not defined"), Some(help)))
}

fn resolve_call(expr: &str, open: usize) -> Result<Func, (String, Option<String>)> {
    let name = expr[..open].trim();
    let Some(args) = expr[open + 1..].trim_end().strip_suffix(')') else {
        return Err((format!("`{expr}`: a function call ends with `)`"), None));
    };
    let args: Vec<&str> = if args.trim().is_empty() {
        Vec::new()
    } else {
        args.split(',').map(str::trim).collect()
    };
    let Some((_, arity)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
        let names = FUNCTIONS.iter().map(|(n, _)| *n);
        return Err((
            format!("unknown function `{name}`"),
            Some(match closest(name, names) {
                Some(c) => format!("did you mean `{c}()`?"),
                None => {
                    "the functions are uuid(), rand(a, b), now(), user() and iteration()".into()
                }
            }),
        ));
    };
    if args.len() != *arity {
        return Err((
            format!(
                "`{name}` takes {arity} argument{}, not {}",
                if *arity == 1 { "" } else { "s" },
                args.len()
            ),
            (name == "rand").then(|| "write `rand(1, 10)`: an integer in [1, 10]".to_owned()),
        ));
    }
    match name {
        "uuid" => Ok(Func::Uuid),
        "now" => Ok(Func::Now),
        "user" => Ok(Func::User),
        "iteration" => Ok(Func::Iteration),
        _ => {
            let parse = |a: &str| {
                a.parse::<i64>().map_err(|_| {
                    (
                        format!("`rand` takes integers, not `{a}`"),
                        Some("write `rand(1, 10)`: an integer in [1, 10]".to_owned()),
                    )
                })
            };
            let (lo, hi) = (parse(args[0])?, parse(args[1])?);
            if lo > hi {
                return Err((
                    format!("`rand({lo}, {hi})`: the lower bound is above the upper bound"),
                    None,
                ));
            }
            Ok(Func::Rand { lo, hi })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::graph::Pick;

    fn names<'a>(
        vars: &'a HashMap<String, Value>,
        feeders: &'a [Feeder],
        captures: &'a HashMap<String, SlotId>,
    ) -> Names<'a> {
        Names {
            vars,
            feeders,
            captures,
            later: &[],
        }
    }

    #[test]
    fn splits_and_resolves() {
        let vars = HashMap::from([("size".to_owned(), Value::from(10))]);
        let feeders = vec![Feeder {
            name: "acc".into(),
            path: "a.csv".into(),
            file: "a.csv".into(),
            columns: vec!["user".into()],
            pick: Pick::Sequential,
        }];
        let caps = HashMap::from([("token".to_owned(), SlotId(0))]);
        let n = names(&vars, &feeders, &caps);
        let r = resolve(
            "/p?s={{ size }}&u={{acc.user}}&t={{ token }}&r={{ rand(1, 5) }}",
            &n,
        )
        .unwrap();
        assert_eq!(
            r.template.segments,
            vec![
                Segment::Literal("/p?s=".into()),
                Segment::Const(Value::from(10)),
                Segment::Literal("&u=".into()),
                Segment::Feeder {
                    feeder: FeederId(0),
                    column: 0
                },
                Segment::Literal("&t=".into()),
                Segment::Slot(SlotId(0)),
                Segment::Literal("&r=".into()),
                Segment::Func(Func::Rand { lo: 1, hi: 5 }),
            ]
        );
        assert_eq!(r.feeders, vec![FeederId(0)]);
    }

    #[test]
    fn reports_every_bad_hole() {
        let (vars, caps) = (HashMap::new(), HashMap::new());
        let n = names(&vars, &[], &caps);
        let errs = resolve(
            "{{ nope }} {{ uuid(1) }} {{ rnd(1, 2) }} {{ rand(5, 1) }} {{ rand(a, 2) }}",
            &n,
        )
        .err()
        .unwrap();
        let msgs: Vec<&str> = errs.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(msgs.len(), 5, "{msgs:?}");
        assert!(msgs[0].contains("`nope` is not defined"));
        assert!(msgs[1].contains("takes 0 arguments, not 1"));
        assert!(msgs[2].contains("unknown function `rnd`"));
        assert_eq!(errs[2].2.as_deref(), Some("did you mean `rand()`?"));
        assert!(msgs[3].contains("lower bound"));
        assert!(msgs[4].contains("integers"));
        assert_eq!(errs[1].0, 11);
    }

    #[test]
    fn unclosed_hole() {
        assert!(split("a {{ b").unwrap_err().1.contains("unclosed"));
        assert_eq!(split("{{}}").unwrap_err().0, 0);
    }
}
