//! A structure-aware fuzzer for the plan compiler: it mutates real plans (the files in
//! `plans/` and `tests/fixtures/`) and checks that `compile_str` never panics, on any
//! text. Driven by `bench/fuzz.sh`, not by `cargo test`: a million cases take minutes.
//!
//! Each case is derived from `(seed, case number)` alone, so any case can be replayed
//! (`--case N`) without running the ones before it. A mutation works on the plan's
//! tree: keys renamed, removed or added; values replaced by huge numbers, odd unicode,
//! templates, empty or wrong-typed values; subtrees copied, swapped and nested deep.
//! The tree is written back as YAML (flow style, with anchors and aliases and now and
//! then a billion-laughs expansion) or TOML, and some cases also get text mutations
//! (bytes cut, repeated, or syntax characters inserted).
//!
//! Usage: `fuzz_plans [--cases N] [--seed S] [--case N] [--out DIR] [--slow-ms MS] [--print yes] [--max-seconds S]`
//! A panic's input is written to `DIR/panic-<seed>-<case>.<ext>` (default DIR:
//! `fuzz-failures`) and the exit status is 1.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Map, Value};
use swarm::compile::{CompileOptions, compile_str};
use swarm::plan::{Format, to_json};

/// Where the seed plans are: the working folder when it is a checkout (bench/fuzz.sh
/// runs from the repository's root), else where the example was built. The built-in
/// path alone goes stale when one target folder serves two checkouts (`.ci/run`'s
/// fresh clone shares it).
fn root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_default();
    if here.join("tests/fixtures/shared-plans").is_dir() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }
}

fn main() {
    let args = Args::parse();
    let seeds = load_seeds();
    if seeds.is_empty() {
        eprintln!("no seed plans found under {}", root().display());
        std::process::exit(2);
    }
    let vocabulary = vocabulary(&seeds);
    // A panic is caught and recorded; the default hook would print each one too.
    std::panic::set_hook(Box::new(|_| {}));
    let cases = match args.case {
        Some(n) => n..n + 1,
        None => 0..args.cases,
    };
    let start = Instant::now();
    let mut total = 0u64;
    let mut panics = 0u64;
    let mut slow = 0u64;
    let mut compiled = 0u64;
    let mut last_report = Instant::now();
    for n in cases {
        if args
            .max_seconds
            .is_some_and(|max| start.elapsed().as_secs() >= max)
        {
            break;
        }
        total += 1;
        let case = make_case(&seeds, &vocabulary, args.seed, n);
        let path = PathBuf::from(format!("/nonexistent/fuzz/plan.{}", case.ext));
        if args.print {
            println!("{}", case.text);
        }
        let began = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            compile_str(&case.text, &path, &CompileOptions::default()).is_ok()
        }));
        match result {
            Ok(ok) => compiled += u64::from(ok),
            Err(payload) => {
                panics += 1;
                let file = args
                    .out
                    .join(format!("panic-{}-{n}.{}", args.seed, case.ext));
                let _ = std::fs::create_dir_all(&args.out);
                let _ = std::fs::write(&file, &case.text);
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                eprintln!("PANIC in case {n}: {what}; input in {}", file.display());
            }
        }
        let took = began.elapsed();
        if took.as_millis() >= u128::from(args.slow_ms) {
            slow += 1;
            eprintln!(
                "slow case {n}: {} ms, {} bytes of {}",
                took.as_millis(),
                case.text.len(),
                case.ext
            );
        }
        if last_report.elapsed().as_secs() >= 30 {
            last_report = Instant::now();
            eprintln!(
                "  {total} cases, {:.0} cases/s",
                total as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "cases {total} seed {} panics {panics} compiled {compiled} slow {slow} seconds {secs:.1} cases/s {:.0}",
        args.seed,
        total as f64 / secs
    );
    if panics > 0 {
        std::process::exit(1);
    }
}

struct Args {
    cases: u64,
    seed: u64,
    case: Option<u64>,
    out: PathBuf,
    /// Cases that take longer than this are reported (a slow input is a denial of service).
    slow_ms: u64,
    /// `--print yes`: write each case's text to stdout (to look at one with `--case`).
    print: bool,
    /// Stop after this many seconds even if cases remain (a bounded CI run).
    max_seconds: Option<u64>,
}

impl Args {
    fn parse() -> Args {
        let mut a = Args {
            cases: 10_000,
            seed: 1,
            case: None,
            out: PathBuf::from("fuzz-failures"),
            slow_ms: 1000,
            print: false,
            max_seconds: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().unwrap_or_else(|| usage(&flag));
            match flag.as_str() {
                "--cases" => a.cases = value.parse().unwrap_or_else(|_| usage(&flag)),
                "--seed" => a.seed = value.parse().unwrap_or_else(|_| usage(&flag)),
                "--case" => a.case = Some(value.parse().unwrap_or_else(|_| usage(&flag))),
                "--out" => a.out = PathBuf::from(value),
                "--max-seconds" => {
                    a.max_seconds = Some(value.parse().unwrap_or_else(|_| usage(&flag)))
                }
                "--print" => a.print = value == "yes",
                "--slow-ms" => a.slow_ms = value.parse().unwrap_or_else(|_| usage(&flag)),
                _ => usage(&flag),
            }
        }
        a
    }
}

fn usage(flag: &str) -> ! {
    eprintln!(
        "bad argument {flag}\nusage: fuzz_plans [--cases N] [--seed S] [--case N] [--out DIR]"
    );
    std::process::exit(2);
}

/// A plan the fuzzer starts from: its text, format and tree.
struct Seed {
    /// It compiles as it is.
    valid: bool,
    text: String,
    format: Format,
    tree: Value,
}

fn load_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    let root = root();
    for dir in [
        "plans",
        "tests/fixtures/valid",
        "tests/fixtures/invalid",
        "tests/fixtures/shared-plans",
        "bench",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        paths.sort();
        for path in paths {
            let (Some(format), Ok(text)) = (Format::of(&path), std::fs::read_to_string(&path))
            else {
                continue;
            };
            let tree = to_json(&text, format).unwrap_or(Value::Null);
            let valid = compile_str(&text, &path, &CompileOptions::default()).is_ok();
            seeds.push(Seed {
                valid,
                text,
                format,
                tree,
            });
        }
    }
    seeds
}

/// Every map key met in the seeds: a renamed key is usually one the plan format knows.
fn vocabulary(seeds: &[Seed]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    seeds.iter().for_each(|s| walk(&s.tree, &mut out));
    out.sort();
    out.dedup();
    out
}

/// xorshift64*: small, fast and the same on every platform, so a seed replays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, case: u64) -> Rng {
        // splitmix64 of the pair, so neighbouring cases are unrelated.
        let mut z =
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ case.wrapping_add(0x632B_E59B_D9B4_E019);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Case {
    text: String,
    ext: &'static str,
}

fn make_case(seeds: &[Seed], vocabulary: &[String], seed: u64, n: u64) -> Case {
    let mut rng = Rng::new(seed, n);
    // Valid seeds three times in four: their mutants reach deeper into the compiler.
    let valid: Vec<&Seed> = seeds.iter().filter(|s| s.valid).collect();
    let s = if rng.chance(75) && !valid.is_empty() {
        *rng.pick(&valid)
    } else {
        rng.pick(seeds)
    };
    // One case in ten mutates the seed's own text (block style, comments, TOML tables).
    if rng.chance(10) {
        let ext = match s.format {
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        };
        return Case {
            text: mutate_text(&mut rng, &s.text),
            ext,
        };
    }
    let mut tree = s.tree.clone();
    // Mostly one mutation, so many cases stay valid enough to reach the later checks.
    let mutations = if rng.chance(60) { 1 } else { 2 + rng.below(5) };
    for _ in 0..mutations {
        mutate(&mut rng, &mut tree, vocabulary, seeds);
    }
    let (mut text, ext) = if rng.chance(15) {
        match toml::to_string(&tree) {
            Ok(t) => (t, "toml"),
            Err(_) => (emit_yaml(&mut rng, &tree), "yaml"),
        }
    } else {
        (emit_yaml(&mut rng, &tree), "yaml")
    };
    if rng.chance(15) {
        text = mutate_text(&mut rng, &text);
    }
    Case { text, ext }
}

/// Values that have broken parsers before: limits of number types, units that overflow,
/// unicode that is wide, invisible, reversed or NUL, and template syntax.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1e308",
    "-0",
    "NaN",
    ".inf",
    "18446744073709551616",
    "9223372036854775807",
    "99999999999999999999d",
    "1e9ms",
    "0s",
    "-5s",
    "1.5.3s",
    "100000000000/s",
    "0/s",
    "1/0s",
    "50%",
    "101%",
    "-1%",
    "99.9999999999%",
    "p100",
    "p0",
    "p99.999999",
    "é",
    "😀😀",
    "\u{202e}evil",
    "a\u{0}b",
    "\u{feff}",
    "e\u{301}\u{301}",
    "\u{10FFFF}",
    "{{",
    "}}",
    "{{ }}",
    "{{ rand(1, 1000000) }}",
    "{{ rand(5, 1) }}",
    "{{ vars.nope }}",
    "{{ env.HOME }}",
    "{{ uuid() }}",
    "{{ data.x.y }}",
    "{{ {{ x }} }}",
    "{{ rand(1, 99999999999999999999) }}",
    "/{{ rand(1,2) }}/é",
    "http://",
    "http://[::1",
    "ftp://x",
    "http://127.0.0.1:99999",
    "//x",
    "?",
    "#",
    "$.a[?(@.b > 1)]",
    "$..*",
    "$[",
    "(",
    "[a-",
    "*",
    "\\",
    "\n",
    "\r\n",
    "\t",
    "GET",
    "get",
    "header:",
    "x: y",
    "- a",
    "&a",
    "*a",
    "!!binary",
    "<<",
];

fn odd_value(rng: &mut Rng, seeds: &[Seed]) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => Value::from(*rng.pick(&[0i64, -1, 1, i64::MAX, i64::MIN, 65536, 4_294_967_296])),
        3 => Value::from(*rng.pick(&[u64::MAX, 1 << 53, 1 << 63])),
        4 => serde_json::Number::from_f64(*rng.pick(&[1e308, -1e-308, 0.5, 1e20, -0.0]))
            .map_or(Value::Null, Value::Number),
        5 => Value::Array(vec![]),
        6 => Value::Object(Map::new()),
        7 => {
            // A subtree of another plan: right shape, wrong place.
            let other = &rng.pick(seeds).tree;
            random_subtree(rng, other).clone()
        }
        8 => Value::String(rng.pick(ODD_STRINGS).repeat(1 + rng.below(3))),
        9 => Value::String("x".repeat(*rng.pick(&[1000, 70_000, 200_000]))),
        _ => Value::String((*rng.pick(ODD_STRINGS)).to_owned()),
    }
}

/// A random node of `v` (any depth).
fn random_subtree<'a>(rng: &mut Rng, v: &'a Value) -> &'a Value {
    let mut cur = v;
    loop {
        let children: Vec<&Value> = match cur {
            Value::Object(m) => m.values().collect(),
            Value::Array(items) => items.iter().collect(),
            _ => return cur,
        };
        if children.is_empty() || rng.chance(30) {
            return cur;
        }
        cur = children[rng.below(children.len())];
    }
}

/// A random container node of `v`, mutably (maps and lists only; the root if none).
fn random_container<'a>(rng: &mut Rng, v: &'a mut Value) -> &'a mut Value {
    let descend = match v {
        Value::Object(m) if !m.is_empty() && !rng.chance(25) => {
            let i = rng.below(m.len());
            m.values()
                .nth(i)
                .is_some_and(|c| c.is_object() || c.is_array())
                .then_some(i)
        }
        Value::Array(items) if !items.is_empty() && !rng.chance(25) => {
            let i = rng.below(items.len());
            (items[i].is_object() || items[i].is_array()).then_some(i)
        }
        _ => None,
    };
    match (descend, v) {
        (Some(i), Value::Object(m)) => {
            let c = m.values_mut().nth(i).unwrap();
            random_container(rng, c)
        }
        (Some(i), Value::Array(items)) => random_container(rng, &mut items[i]),
        (_, v) => v,
    }
}

fn mutate(rng: &mut Rng, tree: &mut Value, vocabulary: &[String], seeds: &[Seed]) {
    let op = rng.below(9);
    let node = random_container(rng, tree);
    match (op, node) {
        // Replace a value.
        (0..=2, Value::Object(m)) if !m.is_empty() => {
            let i = rng.below(m.len());
            let v = odd_value(rng, seeds);
            *m.values_mut().nth(i).unwrap() = v;
        }
        (0..=2, Value::Array(items)) if !items.is_empty() => {
            let i = rng.below(items.len());
            items[i] = odd_value(rng, seeds);
        }
        // Rename a key: to a known one, a typo, or unicode.
        (3, Value::Object(m)) if !m.is_empty() => {
            let i = rng.below(m.len());
            let key = m.keys().nth(i).unwrap().clone();
            let v = m.remove(&key).unwrap();
            let new = match rng.below(4) {
                0 => format!("{key}{}", rng.pick(&["s", "_", "é", " "])),
                1 => (*rng.pick(ODD_STRINGS)).to_owned(),
                _ => rng.pick(vocabulary).clone(),
            };
            m.insert(new, v);
        }
        // Remove a key or an item.
        (4, Value::Object(m)) if !m.is_empty() => {
            let key = m.keys().nth(rng.below(m.len())).unwrap().clone();
            m.remove(&key);
        }
        (4, Value::Array(items)) if !items.is_empty() => {
            items.remove(rng.below(items.len()));
        }
        // Add a key or an item.
        (5, Value::Object(m)) => {
            let v = odd_value(rng, seeds);
            m.insert(rng.pick(vocabulary).clone(), v);
        }
        (5, Value::Array(items)) => {
            let v = match items.first() {
                Some(first) if rng.chance(50) => first.clone(),
                _ => odd_value(rng, seeds),
            };
            items.push(v);
        }
        // Repeat an item many times (1,000 flows, 10,000 steps...).
        (6, Value::Array(items)) if !items.is_empty() => {
            let item = items[rng.below(items.len())].clone();
            let times = *rng.pick(&[10, 100, 1000]);
            items.extend(std::iter::repeat_n(item, times));
        }
        // Nest a value deep.
        (7, Value::Object(m)) if !m.is_empty() => {
            let i = rng.below(m.len());
            let v = m.values_mut().nth(i).unwrap();
            let depth = *rng.pick(&[2, 10, 60, 200]);
            let mut inner = std::mem::take(v);
            for _ in 0..depth {
                inner = if rng.chance(50) {
                    Value::Array(vec![inner])
                } else {
                    Value::Object(Map::from_iter([(rng.pick(vocabulary).clone(), inner)]))
                };
            }
            *v = inner;
        }
        // Swap in a subtree from elsewhere in the same plan.
        (_, node) => {
            let copy = random_subtree(rng, node).clone();
            match node {
                Value::Object(m) if !m.is_empty() => {
                    let i = rng.below(m.len());
                    *m.values_mut().nth(i).unwrap() = copy;
                }
                Value::Array(items) if !items.is_empty() => {
                    let i = rng.below(items.len());
                    items[i] = copy;
                }
                _ => {}
            }
        }
    }
}

/// Writes the tree as flow-style YAML. Now and then a value gets an anchor and a later
/// one becomes its alias, and a billion-laughs expansion may be added.
fn emit_yaml(rng: &mut Rng, tree: &Value) -> String {
    let mut out = String::new();
    let mut anchors = 0;
    // A billion-laughs expansion, as variables (any value is allowed there, so the
    // plan may stay valid and the compiler walks the expansion).
    // One case in 200: a bomb the parser must refuse costs it a quarter of a million
    // values first, more than a hundred ordinary cases.
    let mut laughs = String::new();
    if rng.below(200) == 0 {
        let width = 2 + rng.below(9);
        let depth = 1 + rng.below(9);
        laughs.push_str("lol0: &lol0 [");
        laughs.push_str(&vec!["lol"; width].join(", "));
        laughs.push(']');
        for d in 1..depth {
            laughs.push_str(&format!(", lol{d}: &lol{d} ["));
            laughs.push_str(&vec![format!("*lol{}", d - 1); width].join(", "));
            laughs.push(']');
        }
    }
    match tree {
        Value::Object(m) => {
            if !laughs.is_empty() && !m.contains_key("vars") {
                out.push_str(&format!("vars: {{{laughs}}}\n"));
            }
            for (k, v) in m {
                emit_key(&mut out, rng, k);
                out.push_str(": ");
                match v {
                    Value::Object(vars) if k == "vars" && !laughs.is_empty() => {
                        out.push('{');
                        out.push_str(&laughs);
                        for (k, v) in vars {
                            out.push_str(", ");
                            emit_key(&mut out, rng, k);
                            out.push_str(": ");
                            emit(&mut out, rng, v, &mut anchors);
                        }
                        out.push('}');
                    }
                    v => emit(&mut out, rng, v, &mut anchors),
                }
                out.push('\n');
            }
        }
        other => emit(&mut out, rng, other, &mut anchors),
    }
    out
}

fn emit_key(out: &mut String, rng: &mut Rng, k: &str) {
    if rng.chance(90)
        && !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        out.push_str(k);
    } else {
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
    }
}

fn emit(out: &mut String, rng: &mut Rng, v: &Value, anchors: &mut usize) {
    if *anchors > 0 && rng.chance(3) {
        out.push_str(&format!("*a{}", rng.below(*anchors)));
        return;
    }
    if rng.chance(3) {
        out.push_str(&format!("&a{} ", *anchors));
        *anchors += 1;
    }
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit_key(out, rng, k);
                out.push_str(": ");
                emit(out, rng, v, anchors);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit(out, rng, v, anchors);
            }
            out.push(']');
        }
        Value::String(s)
            if rng.chance(20)
                && !s.is_empty()
                && !s.contains(['\n', '#', ',', '[', ']', '{', '}']) =>
        {
            out.push_str(s);
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Text-level damage: cut, repeat or insert syntax where the tree mutations cannot.
fn mutate_text(rng: &mut Rng, text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(chars.len() + 1);
        match rng.below(4) {
            0 if !chars.is_empty() => {
                let end = (at + 1 + rng.below(40)).min(chars.len());
                chars.drain(at.min(end)..end);
            }
            1 if !chars.is_empty() => {
                let end = (at + 1 + rng.below(80)).min(chars.len());
                let piece: Vec<char> = chars[at.min(end)..end].to_vec();
                let times = 1 + rng.below(50);
                for _ in 0..times {
                    chars.splice(at..at, piece.iter().copied());
                }
            }
            _ => {
                let insert = rng.pick(&[
                    ":", "- ", "{", "}", "[", "]", "&x ", "*x", "\"", "'", "\t", "\n  ", "\n", "#",
                    "\u{feff}", "é", "---\n", "<<: ", "!!str ", "|\n", ">-\n", "= ", "[[", "]]",
                    "\\",
                ]);
                chars.splice(at..at, insert.chars());
            }
        }
    }
    chars.into_iter().collect()
}
