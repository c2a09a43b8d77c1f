//! The plan and its data files as the coordinator's ConfigMap: which files (the
//! plan, and every data file the compiler resolved), under which keys, and at which
//! paths, so that the files keep the places relative to each other that the plan's
//! paths name. A ConfigMap's keys cannot hold `/`, so each file gets a flat key and
//! the volume's `items` put it back at its path.

use std::path::{Component, Path, PathBuf};

use crate::compile::graph::CompiledPlan;

use super::K8sError;

/// The most a ConfigMap holds: Kubernetes refuses one whose values add up to more.
pub const CONFIGMAP_LIMIT: usize = 1024 * 1024;

/// The files of a run, as the ConfigMap carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The plan's path inside the mount, e.g. `plan.yaml` or `plans/plan.yaml`.
    pub plan_path: String,
    /// The plan first, then each distinct data file in the plan's order.
    pub files: Vec<BundleFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// The ConfigMap key: letters, digits, `-`, `_` and `.` only.
    pub key: String,
    /// Where the file sits inside the mount: relative, `/`-separated, no `..`.
    pub path: String,
    pub text: String,
}

impl Bundle {
    /// The bytes the ConfigMap's values hold, as Kubernetes counts them.
    pub fn size(&self) -> usize {
        self.files.iter().map(|f| f.text.len()).sum()
    }
}

/// Gathers the plan (`plan_text`, read from `plan_path`) and the data files `plan`
/// was compiled with, refusing a set that no ConfigMap can hold.
pub fn collect(plan_path: &Path, plan_text: &str, plan: &CompiledPlan) -> Result<Bundle, K8sError> {
    let plan_abs = normalize(plan_path);
    let mut sources: Vec<(PathBuf, Option<String>)> =
        vec![(plan_abs.clone(), Some(plan_text.to_owned()))];
    for feeder in &plan.feeders {
        // In the pod the files sit under another directory: only a path relative to
        // the plan still leads to its file there.
        if Path::new(&feeder.file).is_absolute() {
            return Err(K8sError::AbsoluteData {
                feeder: feeder.name.clone(),
                file: feeder.file.clone(),
            });
        }
        let abs = normalize(&feeder.path);
        if sources.iter().all(|(p, _)| *p != abs) {
            sources.push((abs, None));
        }
    }
    let root = common_dir(sources.iter().map(|(p, _)| p.as_path()));
    let mut files = Vec::with_capacity(sources.len());
    for (i, (abs, text)) in sources.into_iter().enumerate() {
        let text = match text {
            Some(t) => t,
            None => read_text(&abs)?,
        };
        let rel = abs.strip_prefix(&root).unwrap_or(&abs);
        let path = mount_path(rel).ok_or_else(|| K8sError::PathName { path: abs.clone() })?;
        files.push(BundleFile {
            key: key(i, rel),
            path,
            text,
        });
    }
    let bundle = Bundle {
        plan_path: files[0].path.clone(),
        files,
    };
    if bundle.size() > CONFIGMAP_LIMIT {
        let mut sizes: Vec<(String, usize)> = bundle
            .files
            .iter()
            .map(|f| (f.path.clone(), f.text.len()))
            .collect();
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        return Err(K8sError::TooLarge {
            total: bundle.size(),
            files: sizes,
        });
    }
    Ok(bundle)
}

/// A data file's text: the engine reads CSV rows as UTF-8, and a ConfigMap's `data`
/// holds text, so a file that is not UTF-8 could not run anyway.
fn read_text(path: &Path) -> Result<String, K8sError> {
    let bytes = std::fs::read(path).map_err(|source| K8sError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| K8sError::NotText {
        path: path.to_owned(),
    })
}

/// `path` made absolute, with `.` and `..` resolved by name (not through the file
/// system: the mount reproduces the names, not the links).
fn normalize(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The deepest directory holding every one of `files`.
fn common_dir<'a>(mut files: impl Iterator<Item = &'a Path>) -> PathBuf {
    let parent = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut root = files.next().map(parent).unwrap_or_default();
    for f in files {
        while !f.starts_with(&root) {
            if !root.pop() {
                break;
            }
        }
    }
    root
}

/// `rel` as a ConfigMap item path: `/`-separated UTF-8 names, none of them `..`.
fn mount_path(rel: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => parts.push(name.to_str()?),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// A key unique by its index, readable by its file name: `0-plan.yaml`,
/// `1-users.csv`. Kubernetes allows `[-._a-zA-Z0-9]` in 253 characters.
fn key(index: usize, rel: &Path) -> String {
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    format!("{index}-{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_common_directory_holds_every_file() {
        let files = [
            Path::new("/a/plans/p.yaml"),
            Path::new("/a/plans/data/u.csv"),
            Path::new("/a/common/x.csv"),
        ];
        assert_eq!(common_dir(files.into_iter()), Path::new("/a"));
        assert_eq!(
            common_dir([Path::new("/a/p.yaml")].into_iter()),
            Path::new("/a")
        );
    }

    #[test]
    fn dot_dot_resolves_by_name() {
        assert_eq!(
            normalize(Path::new("/a/plans/../common/./x.csv")),
            Path::new("/a/common/x.csv")
        );
    }

    #[test]
    fn keys_hold_only_what_kubernetes_allows() {
        assert_eq!(key(0, Path::new("plan.yaml")), "0-plan.yaml");
        assert_eq!(
            key(3, Path::new("d/users list (v2).csv")),
            "3-users_list__v2_.csv"
        );
        let long = "x".repeat(400);
        assert!(key(9, Path::new(&long)).len() <= 253);
    }

    #[test]
    fn mount_paths_are_relative_and_slash_separated() {
        assert_eq!(
            mount_path(Path::new("data/u.csv")).as_deref(),
            Some("data/u.csv")
        );
        assert_eq!(mount_path(Path::new("../u.csv")), None);
        assert_eq!(mount_path(Path::new("")), None);
    }
}
