//! `swarm k8s` run as the binary: the manifests it prints parse, pass the
//! Kubernetes schemas strictly (through `kubernetes-validate`, which .ci/run
//! installs), hold the plan and its data, and every refusal is exit 2 with a clear
//! message.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

const T: Duration = Duration::from_secs(60);

/// The Kubernetes versions the manifests are checked against: the oldest that knows
/// every field they use (`backoffLimitPerIndex`), and the newest the validator holds.
const VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

fn swarm(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.env_remove("SWARM_TARGET")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args);
    common::output_within(&mut cmd, T)
}

fn render(args: &[&str]) -> String {
    let out = swarm(args);
    assert_eq!(common::code(&out), 0, "{}", common::describe(&out));
    String::from_utf8(out.stdout).expect("UTF-8 manifests")
}

fn parse(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("the manifests parse as YAML")
}

fn find<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            d["kind"] == kind
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .unwrap_or_else(|| panic!("no {kind} *{suffix}"))
}

/// `kubernetes-validate`: `SWARM_K8S_VALIDATE` names it (CI), or it is on `PATH`.
/// Missing, the test says so loudly and passes, unless `SWARM_REQUIRE_K8S_VALIDATE=1`
/// (CI), where a missing validator fails.
fn validator(test: &str) -> Option<PathBuf> {
    let named = std::env::var_os("SWARM_K8S_VALIDATE").map(PathBuf::from);
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join("kubernetes-validate"))
            .find(|p| p.is_file())
    };
    if let Some(found) = named.filter(|p| p.is_file()).or_else(on_path) {
        return Some(found);
    }
    let message = format!(
        "\n\n!!!!! SKIPPED `{test}`: kubernetes-validate is not installed.\n\
         !!!!! .ci/run installs it into a virtualenv; or: pip install kubernetes-validate\n\n"
    );
    if std::env::var("SWARM_REQUIRE_K8S_VALIDATE").as_deref() == Ok("1") {
        panic!("{message}SWARM_REQUIRE_K8S_VALIDATE=1, so this is a failure");
    }
    use std::io::Write as _;
    let _ = std::io::stderr().write_all(message.as_bytes());
    None
}

/// Runs the validator strictly (unknown fields fail) on `yaml` for each version.
fn validate(validator: &Path, yaml: &str, dir: &Path, label: &str) -> Result<(), String> {
    let file = dir.join(format!("{label}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    for version in VERSIONS {
        let out = common::output_within(
            Command::new(validator)
                .args(["--strict", "--kubernetes-version", version])
                .arg(&file),
            T,
        );
        if common::code(&out) != 0 {
            return Err(format!(
                "{label} against {version}: {}",
                common::describe(&out)
            ));
        }
    }
    Ok(())
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas_strictly() {
    let Some(validator) = validator("the_manifests_pass_the_kubernetes_schemas_strictly") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 4] = [
        (
            "feeder-1",
            &["k8s", "plans/data-feeder.yaml", "--workers", "1"],
        ),
        (
            "feeder-20",
            &[
                "k8s",
                "plans/data-feeder.yaml",
                "--workers",
                "20",
                "--namespace",
                "load",
                "--reports-claim",
                "swarm-reports",
                "--ui",
                "--on-worker-loss",
                "continue",
            ],
        ),
        (
            "shared-shop-20",
            &[
                "k8s",
                "tests/fixtures/shared-plans/shop.yaml",
                "--workers",
                "20",
                "--name",
                "shop-nightly",
                "--var",
                "page_size=50",
                "--users",
                "400",
                "--duration",
                "2m",
                "--worker-cpu",
                "1500m",
                "--worker-memory",
                "1Gi",
            ],
        ),
        (
            "iterations-1",
            &["k8s", "plans/iterations.yaml", "--workers", "1"],
        ),
    ];
    for (label, args) in cases {
        let yaml = render(args);
        validate(&validator, &yaml, dir.path(), label).unwrap_or_else(|e| panic!("{e}"));
    }
    // The check is strict: a field the API does not know fails it.
    let yaml = render(&["k8s", "plans/data-feeder.yaml", "--workers", "2"]);
    let broken = yaml.replacen("completionMode:", "completionModes:", 1);
    assert_ne!(broken, yaml);
    let err = validate(&validator, &broken, dir.path(), "unknown-field").unwrap_err();
    assert!(err.contains("completionModes"), "{err}");
}

#[test]
fn the_config_map_holds_the_plan_and_its_data_where_the_plan_finds_them() {
    let yaml = render(&[
        "k8s",
        "plans/data-feeder.yaml",
        "--workers",
        "20",
        "--token",
        "t",
    ]);
    let docs = parse(&yaml);
    let data = &find(&docs, "ConfigMap", "-plan")["data"];
    let job = find(&docs, "Job", "-coordinator");
    let volumes = &job["spec"]["template"]["spec"]["volumes"];
    let items = volumes[0]["configMap"]["items"].as_array().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    for item in items {
        let path = item["path"].as_str().unwrap();
        let text = std::fs::read_to_string(root.join(path)).unwrap();
        assert_eq!(data[item["key"].as_str().unwrap()], text.as_str(), "{path}");
    }
    let paths: Vec<_> = items.iter().map(|i| i["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["data-feeder.yaml", "data/accounts.csv"]);
    let workers = find(&docs, "Job", "-workers");
    assert_eq!(workers["spec"]["completions"], 20);
    assert_eq!(workers["spec"]["parallelism"], 20);
}

#[test]
fn a_generated_token_is_new_each_time_and_only_in_the_secret() {
    let token = |yaml: &str| {
        let docs = parse(yaml);
        find(&docs, "Secret", "-token")["stringData"]["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (
        render(&["k8s", "plans/quickstart.yaml", "--workers", "2"]),
        render(&["k8s", "plans/quickstart.yaml", "--workers", "2"]),
    );
    let (ta, tb) = (token(&a), token(&b));
    assert_ne!(ta, tb);
    assert_eq!(ta.len(), 64);
    assert_eq!(a.matches(ta.as_str()).count(), 1);
    assert_eq!(a.replace(&ta, "T"), b.replace(&tb, "T"));
}

#[test]
fn refusals_are_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(
        &big,
        "name: big\ntarget: http://127.0.0.1:9\ndata:\n  rows: { csv: rows.csv }\n\
         load: { users: 1, duration: 1s }\nflows:\n  - name: f\n    steps:\n      - get: \"/{{ rows.id }}\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("rows.csv"),
        format!("id\n{}", "1234567\n".repeat(140_000)),
    )
    .unwrap();
    let big = big.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["k8s", "no/such/plan.yaml", "--workers", "2"],
            "cannot read the plan",
        ),
        (
            &["k8s", big, "--workers", "2"],
            "a ConfigMap holds at most 1048576",
        ),
        (
            &["k8s", "plans/quickstart.yaml", "--workers", "0"],
            "--workers",
        ),
        (&["k8s", "plans/quickstart.yaml"], "--workers"),
        (
            &[
                "k8s",
                "plans/quickstart.yaml",
                "--workers",
                "2",
                "--name",
                "Big_Run",
            ],
            "--name `Big_Run`",
        ),
        (
            &[
                "k8s",
                "plans/quickstart.yaml",
                "--workers",
                "2",
                "--worker-memory",
                "512m",
            ],
            "did you mean 512Mi",
        ),
    ];
    for (args, says) in cases {
        let out = swarm(args);
        assert_eq!(
            common::code(&out),
            2,
            "{args:?}: {}",
            common::describe(&out)
        );
        assert!(out.stdout.is_empty(), "{args:?} printed manifests");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
