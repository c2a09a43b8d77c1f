//! Data feeders at run time: the CSV rows of every feeder, loaded once when the run
//! starts, and the picking policy (`sequential` wraps, `random`, `unique` runs out).
//!
//! Picking is lock-free: one atomic counter per feeder, shared by every user.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::RngExt;

use crate::compile::graph::{CompiledPlan, Feeder, FeederId, Pick};

/// Why a feeder could not be loaded when the run started.
#[derive(Debug, thiserror::Error)]
pub enum FeederError {
    #[error("data file `{path}` of feeder `{feeder}` could not be read: {source}")]
    Read {
        feeder: String,
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error(
        "data file `{path}` of feeder `{feeder}` changed since the plan was compiled: \
         its columns are now {found:?}, expected {expected:?}"
    )]
    Columns {
        feeder: String,
        path: PathBuf,
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("data file `{path}` of feeder `{feeder}` has no rows")]
    Empty { feeder: String, path: PathBuf },
}

/// One loaded feeder.
#[derive(Debug)]
struct Loaded {
    pick: Pick,
    rows: Vec<Arc<[String]>>,
    /// Rows handed out so far (sequential and unique).
    next: AtomicU64,
}

/// Every feeder of a plan, loaded, indexed by [`FeederId`].
#[derive(Debug)]
pub struct Feeders {
    feeders: Vec<Loaded>,
}

/// The result of taking a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Take {
    Row(Arc<[String]>),
    /// A `unique` feeder has no rows left: the run must end.
    Exhausted,
}

impl Feeders {
    /// Reads every feeder's CSV file. A `unique` feeder may be empty (the run then
    /// ends at its first use); the others need at least one row.
    pub fn load(plan: &CompiledPlan) -> Result<Feeders, FeederError> {
        Feeders::load_share(plan, 0, 1)
    }

    /// Like [`Feeders::load`], for machine `index` of `of` in a run on many machines:
    /// a `unique` feeder keeps only its rows `index`, `index + of`, ... so no row is
    /// handed out by two machines. The other feeders keep every row.
    pub fn load_share(
        plan: &CompiledPlan,
        index: usize,
        of: usize,
    ) -> Result<Feeders, FeederError> {
        let feeders = plan
            .feeders
            .iter()
            .map(|f| {
                let mut loaded = load_one(f)?;
                if loaded.pick == Pick::Unique && of > 1 {
                    loaded.rows = std::mem::take(&mut loaded.rows)
                        .into_iter()
                        .skip(index)
                        .step_by(of)
                        .collect();
                }
                Ok(loaded)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Feeders { feeders })
    }

    /// Takes the next row of feeder `id`. An unknown id is treated as exhausted.
    pub fn take(&self, id: FeederId) -> Take {
        let Some(f) = self.feeders.get(id.0 as usize) else {
            return Take::Exhausted;
        };
        let len = f.rows.len() as u64;
        let index = match f.pick {
            Pick::Sequential => f.next.fetch_add(1, Ordering::Relaxed) % len.max(1),
            Pick::Random => rand::rng().random_range(0..len.max(1)),
            Pick::Unique => f.next.fetch_add(1, Ordering::Relaxed),
        };
        match f.rows.get(index as usize) {
            Some(row) => Take::Row(row.clone()),
            None => Take::Exhausted,
        }
    }
}

fn load_one(feeder: &Feeder) -> Result<Loaded, FeederError> {
    let read_err = |source| FeederError::Read {
        feeder: feeder.name.clone(),
        path: feeder.path.clone(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(&feeder.path)
        .map_err(read_err)?;
    let header: Vec<String> = reader
        .headers()
        .map_err(read_err)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let same = header.len() == feeder.columns.len()
        && header
            .iter()
            .zip(&feeder.columns)
            .all(|(a, b)| a == b.trim());
    if !same {
        return Err(FeederError::Columns {
            feeder: feeder.name.clone(),
            path: feeder.path.clone(),
            expected: feeder.columns.clone(),
            found: header,
        });
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(read_err)?;
        let row: Vec<String> = record.iter().map(str::to_string).collect();
        rows.push(Arc::from(row));
    }
    if rows.is_empty() && feeder.pick != Pick::Unique {
        return Err(FeederError::Empty {
            feeder: feeder.name.clone(),
            path: feeder.path.clone(),
        });
    }
    Ok(Loaded {
        pick: feeder.pick,
        rows,
        next: AtomicU64::new(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feeder(dir: &tempfile::TempDir, pick: Pick, text: &str) -> Feeder {
        let path = dir.path().join("rows.csv");
        std::fs::write(&path, text).unwrap();
        Feeder {
            name: "accounts".into(),
            path,
            file: "rows.csv".into(),
            columns: vec!["user".into(), "password".into()],
            pick,
        }
    }

    fn row(t: Take) -> String {
        match t {
            Take::Row(r) => r[0].clone(),
            Take::Exhausted => "<none>".into(),
        }
    }

    #[test]
    fn sequential_wraps_and_unique_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let text = "user,password\na,1\nb,2\n";
        let seq = load_one(&feeder(&dir, Pick::Sequential, text)).unwrap();
        let uniq = load_one(&feeder(&dir, Pick::Unique, text)).unwrap();
        let fs = Feeders {
            feeders: vec![seq, uniq],
        };
        let s: Vec<String> = (0..3).map(|_| row(fs.take(FeederId(0)))).collect();
        assert_eq!(s, ["a", "b", "a"]);
        let u: Vec<String> = (0..3).map(|_| row(fs.take(FeederId(1)))).collect();
        assert_eq!(u, ["a", "b", "<none>"]);
        assert_eq!(fs.take(FeederId(7)), Take::Exhausted);
    }

    #[test]
    fn machines_share_a_unique_feeder_without_overlap_and_keep_the_others_whole() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ids.csv"), "id\n0\n1\n2\n3\n4\n").unwrap();
        let plan = crate::testing::TestPlan::new()
            .source(dir.path().join("plan.yaml"))
            .data("ids", "ids.csv", "unique")
            .data("all", "ids.csv", "sequential")
            .flow("- get: /{{ ids.id }}/{{ all.id }}")
            .compile();
        let rows = |fs: &Feeders, id: u32| -> Vec<String> {
            (0..6).map(|_| row(fs.take(FeederId(id)))).collect()
        };
        let first = Feeders::load_share(&plan, 0, 2).unwrap();
        let second = Feeders::load_share(&plan, 1, 2).unwrap();
        assert_eq!(
            rows(&first, 0),
            ["0", "2", "4", "<none>", "<none>", "<none>"]
        );
        assert_eq!(
            rows(&second, 0),
            ["1", "3", "<none>", "<none>", "<none>", "<none>"]
        );
        assert_eq!(rows(&second, 1), ["0", "1", "2", "3", "4", "0"]);
    }

    #[test]
    fn random_stays_in_range() {
        let dir = tempfile::tempdir().unwrap();
        let f = load_one(&feeder(&dir, Pick::Random, "user,password\na,1\nb,2\n")).unwrap();
        let fs = Feeders { feeders: vec![f] };
        for _ in 0..50 {
            assert!(matches!(row(fs.take(FeederId(0))).as_str(), "a" | "b"));
        }
    }

    #[test]
    fn missing_changed_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = feeder(&dir, Pick::Sequential, "user,password\n");
        assert!(matches!(load_one(&f), Err(FeederError::Empty { .. })));
        f.pick = Pick::Unique;
        assert!(load_one(&f).is_ok());
        let f = feeder(&dir, Pick::Sequential, "login,password\nx,y\n");
        assert!(matches!(load_one(&f), Err(FeederError::Columns { .. })));
        let mut f = feeder(&dir, Pick::Sequential, "user,password\nx,y\n");
        f.path = dir.path().join("gone.csv");
        let err = load_one(&f).unwrap_err();
        assert!(err.to_string().contains("gone.csv"), "{err}");
    }
}
