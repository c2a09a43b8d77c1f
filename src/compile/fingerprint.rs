//! The plan's fingerprint: a SHA-256 over everything that decides what a run does,
//! so two processes (a coordinator and its workers) can prove they run the same plan.
//!
//! It covers the plan text, the resolved target and variables (so `${ENV}` values
//! count), the command-line overrides (`--var`, `--target`, `--users`, `--duration`)
//! and the bytes of every data file and `.proto` file. It does not cover what only changes how one
//! machine runs it (threads, timeouts of the client, report options). Every field is
//! length-prefixed and tagged, so no two different inputs hash the same bytes.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::CompileOptions;
use super::graph::Feeder;

/// A plan's fingerprint; shown as 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// What goes into a fingerprint.
pub(super) struct Inputs<'a> {
    pub source: &'a str,
    pub opts: &'a CompileOptions,
    pub target: &'a str,
    pub vars: &'a HashMap<String, Value>,
    pub feeders: &'a [Feeder],
    /// SHA-256 of each feeder's data file, hashed when its header was read.
    pub data: &'a [[u8; 32]],
    /// SHA-256 of the gRPC schema's sources (`.proto` files or reflection).
    pub grpc: Option<&'a [u8; 32]>,
}

/// Hashes the inputs.
pub(super) fn fingerprint(inputs: &Inputs) -> Fingerprint {
    let mut h = Hasher(Sha256::new());
    h.0.update(b"swarm plan fingerprint v1\0");
    h.field(b"plan", inputs.source.as_bytes());
    h.field(b"target", inputs.target.as_bytes());
    let mut vars: Vec<(&String, &Value)> = inputs.vars.iter().collect();
    vars.sort_by_key(|(k, _)| *k);
    for (k, v) in vars {
        h.field(b"var", k.as_bytes());
        h.field(b"value", v.to_string().as_bytes());
    }
    let opts = inputs.opts;
    for (k, v) in &opts.vars {
        h.field(b"--var", k.as_bytes());
        h.field(b"=", v.as_bytes());
    }
    if let Some(t) = &opts.target {
        h.field(b"--target", t.as_bytes());
    }
    if let Some(u) = opts.users {
        h.field(b"--users", &u.to_le_bytes());
    }
    if let Some(d) = opts.duration {
        h.field(b"--duration", &d.as_nanos().to_le_bytes());
    }
    for (f, digest) in inputs.feeders.iter().zip(inputs.data) {
        h.field(b"feeder", f.name.as_bytes());
        h.field(b"data", digest);
    }
    if let Some(digest) = inputs.grpc {
        h.field(b"grpc", digest);
    }
    Fingerprint(h.0.finalize().into())
}

struct Hasher(Sha256);

impl Hasher {
    fn field(&mut self, tag: &[u8], value: &[u8]) {
        self.0.update((tag.len() as u64).to_le_bytes());
        self.0.update(tag);
        self.0.update((value.len() as u64).to_le_bytes());
        self.0.update(value);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::compile::compile_str;

    const PLAN: &str = "\
name: fp
target: http://127.0.0.1:9
vars: { page: 1 }
data: { people: { csv: people.csv } }
load: { users: 2, duration: 5s }
flows:
  - name: f
    steps:
      - { name: get, get: '/p/{{ page }}/{{ people.id }}' }
";

    fn fp(dir: &Path, opts: &CompileOptions) -> Fingerprint {
        let plan = compile_str(PLAN, &dir.join("plan.yaml"), opts).unwrap();
        plan.fingerprint
    }

    #[test]
    fn same_inputs_same_fingerprint_and_any_change_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("people.csv"), "id\n1\n2\n").unwrap();
        let base = CompileOptions::default();
        let first = fp(dir.path(), &base);
        assert_eq!(first, fp(dir.path(), &base));
        assert_ne!(first, Fingerprint::default());
        assert_eq!(first.to_string().len(), 64);

        let var = CompileOptions {
            vars: vec![("page".into(), "2".into())],
            ..CompileOptions::default()
        };
        let users = CompileOptions {
            users: Some(3),
            ..CompileOptions::default()
        };
        let duration = CompileOptions {
            duration: Some(Duration::from_secs(6)),
            ..CompileOptions::default()
        };
        let target = CompileOptions {
            target: Some("http://localhost:9".into()),
            ..CompileOptions::default()
        };
        let mut seen = vec![first];
        for opts in [var, users, duration, target] {
            let f = fp(dir.path(), &opts);
            assert!(
                !seen.contains(&f),
                "{opts:?} left the fingerprint as it was"
            );
            seen.push(f);
        }
        // One changed byte in a data file changes it too.
        std::fs::write(dir.path().join("people.csv"), "id\n1\n3\n").unwrap();
        assert!(!seen.contains(&fp(dir.path(), &base)));
    }
}
