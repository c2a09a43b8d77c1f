use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::compile::{CompileOptions, compile_str};
use crate::dist::OnLoss;

/// A project on disk: `plans/shop.yaml` reading `plans/data/accounts.csv` and
/// `common/skus.csv` (through `..`).
struct Project {
    dir: tempfile::TempDir,
}

const PLAN: &str = "\
name: shop smoke test
target: http://shop.example:8080
data:
  accounts: { csv: data/accounts.csv, pick: unique }
  skus: { csv: ../common/skus.csv }
load: { users: 40, duration: 10m }
flows:
  - name: buy
    steps:
      - post: /login
        json: { user: \"{{ accounts.user }}\" }
      - get: \"/products/{{ skus.id }}\"
";

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("plans/data")).unwrap();
        std::fs::create_dir_all(dir.path().join("common")).unwrap();
        std::fs::write(dir.path().join("plans/shop.yaml"), PLAN).unwrap();
        std::fs::write(
            dir.path().join("plans/data/accounts.csv"),
            "user\nann\nbob\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("common/skus.csv"), "id\n1\n2\n").unwrap();
        Project { dir }
    }

    fn plan_path(&self) -> PathBuf {
        self.dir.path().join("plans/shop.yaml")
    }

    fn render(&self, opts: &Options) -> Result<Manifests, K8sError> {
        let path = self.plan_path();
        let text = std::fs::read_to_string(&path).unwrap();
        let plan = compile_str(&text, &path, &CompileOptions::default()).unwrap();
        render(&path, &text, &plan, opts)
    }
}

fn options(workers: u32) -> Options {
    Options {
        name: None,
        namespace: None,
        image: DEFAULT_IMAGE.into(),
        workers,
        token: Some("fixed-token-for-tests".into()),
        workers_timeout: Duration::from_secs(300),
        on_worker_loss: OnLoss::Fail,
        deadline: None,
        coordinator: Size {
            cpu: "1".into(),
            memory: "512Mi".into(),
        },
        worker: Size {
            cpu: "2".into(),
            memory: "1Gi".into(),
        },
        reports_claim: None,
        ui: false,
        check_args: Vec::new(),
    }
}

fn parse(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("the manifests parse as YAML")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {docs:#?}"))
}

fn args(job: &Value) -> Vec<&str> {
    job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().expect("every argument is a string"))
        .collect()
}

#[test]
fn a_run_is_five_objects_named_after_the_plan() {
    let m = Project::new().render(&options(20)).unwrap();
    assert_eq!(m.name, "swarm-shop-smoke-test");
    let docs = parse(&m.yaml);
    let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Secret", "ConfigMap", "Service", "Job", "Job"]);
    for d in &docs {
        let labels = &d["metadata"]["labels"];
        assert_eq!(
            labels["app.kubernetes.io/instance"],
            "swarm-shop-smoke-test"
        );
        assert_eq!(labels["app.kubernetes.io/name"], "swarm");
        assert!(d["metadata"].get("namespace").is_none());
    }
    find(&docs, "Secret", "swarm-shop-smoke-test-token");
    find(&docs, "ConfigMap", "swarm-shop-smoke-test-plan");
    let svc = find(&docs, "Service", "swarm-shop-smoke-test-coordinator");
    assert_eq!(svc["spec"]["ports"][0]["port"], 7700);
    let coordinator = find(&docs, "Job", "swarm-shop-smoke-test-coordinator");
    // The Service picks the coordinator's pod, and only it.
    let pod_labels = &coordinator["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "selector {k}");
    }
    assert_eq!(
        svc["spec"]["selector"]["app.kubernetes.io/component"],
        "coordinator"
    );
}

#[test]
fn the_config_map_holds_the_plan_and_its_data_verbatim_at_their_relative_paths() {
    let p = Project::new();
    let m = p.render(&options(1)).unwrap();
    let docs = parse(&m.yaml);
    let data = &find(&docs, "ConfigMap", "swarm-shop-smoke-test-plan")["data"];
    let coordinator = find(&docs, "Job", "swarm-shop-smoke-test-coordinator");
    let spec = &coordinator["spec"]["template"]["spec"];
    let items = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "plan")
        .unwrap()["configMap"]["items"]
        .as_array()
        .unwrap();
    let at = |path: &str| {
        let item = items
            .iter()
            .find(|i| i["path"] == path)
            .unwrap_or_else(|| panic!("no item at {path}: {items:?}"));
        data[item["key"].as_str().unwrap()]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The common directory of the three files is the project: the plan keeps its
    // `plans/` folder so that `../common` still leads to the common file.
    assert_eq!(at("plans/shop.yaml"), PLAN);
    assert_eq!(at("plans/data/accounts.csv"), "user\nann\nbob\n");
    assert_eq!(at("common/skus.csv"), "id\n1\n2\n");
    assert_eq!(items.len(), 3);
    let mount = &spec["containers"][0]["volumeMounts"][0];
    assert_eq!(mount["mountPath"], PLAN_DIR);
    assert_eq!(spec["containers"][0]["workingDir"], PLAN_DIR);
    assert_eq!(args(coordinator)[1], "plans/shop.yaml");
}

#[test]
fn the_token_lives_in_the_secret_and_reaches_the_pods_through_the_environment() {
    let m = Project::new().render(&options(3)).unwrap();
    assert_eq!(
        m.yaml.matches("fixed-token-for-tests").count(),
        1,
        "{}",
        m.yaml
    );
    let docs = parse(&m.yaml);
    let secret = find(&docs, "Secret", "swarm-shop-smoke-test-token");
    assert_eq!(secret["stringData"]["token"], "fixed-token-for-tests");
    for job in ["coordinator", "workers"] {
        let job = find(&docs, "Job", &format!("swarm-shop-smoke-test-{job}"));
        assert!(
            !args(job).iter().any(|a| a.contains("token")),
            "{:?}",
            args(job)
        );
        let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        let token = env.iter().find(|e| e["name"] == "SWARM_TOKEN").unwrap();
        assert_eq!(
            token["valueFrom"]["secretKeyRef"]["name"],
            "swarm-shop-smoke-test-token"
        );
    }
}

#[test]
fn the_coordinator_runs_once_and_waits_for_n_workers() {
    let mut opts = options(20);
    opts.check_args = ["--var", "page=2", "--users", "100"]
        .map(String::from)
        .to_vec();
    opts.on_worker_loss = OnLoss::Continue;
    let docs = parse(&Project::new().render(&opts).unwrap().yaml);
    let job = find(&docs, "Job", "swarm-shop-smoke-test-coordinator");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    let a = args(job);
    assert_eq!(a[..2], ["check", "plans/shop.yaml"]);
    let after = |flag: &str| a[a.iter().position(|x| *x == flag).unwrap() + 1];
    assert_eq!(after("--coordinator"), "0.0.0.0:7700");
    assert_eq!(after("--workers"), "20");
    assert_eq!(after("--workers-timeout"), "5m");
    assert_eq!(after("--on-worker-loss"), "continue");
    assert_eq!(after("--var"), "page=2");
    assert_eq!(after("--users"), "100");
    assert_eq!(after("--json"), "/reports/report.json");
    assert!(!a.contains(&"--ui"));
}

#[test]
fn the_workers_are_an_indexed_job_of_n_named_by_their_index() {
    for n in [1, 20] {
        let docs = parse(&Project::new().render(&options(n)).unwrap().yaml);
        let job = find(&docs, "Job", "swarm-shop-smoke-test-workers");
        let spec = &job["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["completions"], n);
        assert_eq!(spec["parallelism"], n);
        // Retries per index, never one budget for all N.
        assert_eq!(spec["backoffLimitPerIndex"], 5);
        assert!(spec.get("backoffLimit").is_none());
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(
            args(job),
            [
                "worker",
                "http://swarm-shop-smoke-test-coordinator:7700",
                "--name",
                "worker-$(SWARM_WORKER_INDEX)"
            ]
        );
        let c = &spec["template"]["spec"]["containers"][0];
        assert_eq!(c["env"][0]["name"], "SWARM_WORKER_INDEX");
        assert_eq!(c["resources"]["requests"]["cpu"], "2");
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
        // The workers get the plan from the coordinator: no ConfigMap mounted.
        assert!(
            !serde_json::to_string(&spec["template"])
                .unwrap()
                .contains("configMap")
        );
    }
}

#[test]
fn the_deadline_covers_the_wait_the_run_and_a_margin() {
    let docs = parse(&Project::new().render(&options(2)).unwrap().yaml);
    // 5m wait + 10m run + 1m (10%) + 2m.
    for job in ["coordinator", "workers"] {
        let job = find(&docs, "Job", &format!("swarm-shop-smoke-test-{job}"));
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 18 * 60);
    }
    let mut opts = options(2);
    opts.deadline = Some(Duration::from_secs(90));
    let docs = parse(&Project::new().render(&opts).unwrap().yaml);
    let job = find(&docs, "Job", "swarm-shop-smoke-test-workers");
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 90);
}

#[test]
fn the_output_is_the_same_each_time_but_for_a_generated_token() {
    let p = Project::new();
    let a = p.render(&options(4)).unwrap().yaml;
    assert_eq!(a, p.render(&options(4)).unwrap().yaml);
    let mut opts = options(4);
    opts.token = None;
    let (x, y) = (p.render(&opts).unwrap().yaml, p.render(&opts).unwrap().yaml);
    assert_ne!(x, y);
    let differ: Vec<_> = x.lines().zip(y.lines()).filter(|(l, r)| l != r).collect();
    assert_eq!(differ.len(), 1, "only the token line differs: {differ:?}");
    assert!(differ[0].0.trim_start().starts_with("token: "));
}

#[test]
fn names_namespaces_claims_and_the_dashboard_are_passed_on() {
    let mut opts = options(2);
    opts.name = Some("nightly-42".into());
    opts.namespace = Some("load".into());
    opts.reports_claim = Some("swarm-reports".into());
    opts.ui = true;
    let docs = parse(&Project::new().render(&opts).unwrap().yaml);
    assert!(docs.iter().all(|d| d["metadata"]["namespace"] == "load"));
    let job = find(&docs, "Job", "nightly-42-coordinator");
    let a = args(job);
    assert!(
        a.windows(3)
            .any(|w| w == ["--ui", "127.0.0.1:8089", "--ui-exit"]),
        "{a:?}"
    );
    let volumes = &job["spec"]["template"]["spec"]["volumes"];
    assert_eq!(
        volumes[1]["persistentVolumeClaim"]["claimName"],
        "swarm-reports"
    );
    find(&docs, "Job", "nightly-42-workers");
}

#[test]
fn data_past_a_config_maps_limit_is_refused_naming_the_largest_file() {
    let p = Project::new();
    let big = format!(
        "id\n{}",
        "12345678\n".repeat(bundle::CONFIGMAP_LIMIT / 9 + 1)
    );
    std::fs::write(p.dir.path().join("common/skus.csv"), big).unwrap();
    let err = p.render(&options(2)).unwrap_err();
    let K8sError::TooLarge { total, files } = &err else {
        panic!("{err}");
    };
    assert!(*total > bundle::CONFIGMAP_LIMIT);
    assert_eq!(files[0].0, "common/skus.csv");
    let message = err.to_string();
    assert!(
        message.contains("1048576") && message.contains("common/skus.csv"),
        "{message}"
    );
}

#[test]
fn big_data_under_the_limit_gets_a_note_on_kubectl_apply() {
    let p = Project::new();
    let big = format!("id\n{}", "12345678\n".repeat(30_000));
    std::fs::write(p.dir.path().join("common/skus.csv"), big).unwrap();
    let m = p.render(&options(2)).unwrap();
    assert!(
        m.notes.iter().any(|n| n.contains("--server-side")),
        "{:?}",
        m.notes
    );
    assert!(Project::new().render(&options(2)).unwrap().notes.is_empty());
}

#[test]
fn an_absolute_data_path_is_refused() {
    let p = Project::new();
    let abs = p.dir.path().join("common/skus.csv");
    let text = PLAN.replace("../common/skus.csv", abs.to_str().unwrap());
    std::fs::write(p.plan_path(), text).unwrap();
    let err = p.render(&options(2)).unwrap_err();
    assert!(
        matches!(err, K8sError::AbsoluteData { ref feeder, .. } if feeder == "skus"),
        "{err}"
    );
}

#[test]
fn awkward_file_text_still_reads_back_exactly() {
    let p = Project::new();
    let awkward = "id\r\n  1\t\r\n\n\n#2 \u{feff}\n\"3\": x\n";
    std::fs::write(p.dir.path().join("common/skus.csv"), awkward).unwrap();
    let m = p.render(&options(1)).unwrap();
    let docs = parse(&m.yaml);
    let data = &find(&docs, "ConfigMap", "swarm-shop-smoke-test-plan")["data"];
    assert_eq!(data["2-skus.csv"], awkward);
    assert_eq!(data["0-shop.yaml"], PLAN);
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    let p = Project::new();
    type Break = fn(&mut Options);
    let cases: [(&str, Break); 6] = [
        ("--name", |o| o.name = Some("Shop".into())),
        ("--namespace", |o| o.namespace = Some("a_b".into())),
        ("--worker-memory", |o| o.worker.memory = "512m".into()),
        ("--coordinator-cpu", |o| o.coordinator.cpu = "lots".into()),
        ("--token", |o| o.token = Some(String::new())),
        ("--image", |o| o.image = "swarm: 1".into()),
    ];
    for (flag, break_it) in cases {
        let mut opts = options(2);
        break_it(&mut opts);
        match p.render(&opts) {
            Err(K8sError::Invalid { flag: f, .. }) => assert_eq!(f, flag),
            other => panic!("{flag}: {other:?}"),
        }
    }
}

#[test]
fn tokens_are_64_hex_digits_and_never_repeat() {
    let a = generate_token();
    assert_eq!(a.len(), 64);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, generate_token());
}

#[test]
fn a_plan_beside_its_data_mounts_at_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let plan = "name: p\ntarget: http://x\ndata:\n  a: { csv: a.csv }\nload: { users: 1, iterations: 5 }\nflows:\n  - name: f\n    steps:\n      - get: \"/{{ a.id }}\"\n";
    std::fs::write(dir.path().join("p.yaml"), plan).unwrap();
    std::fs::write(dir.path().join("a.csv"), "id\n1\n").unwrap();
    let path = dir.path().join("p.yaml");
    let compiled = compile_str(plan, &path, &CompileOptions::default()).unwrap();
    let b = bundle::collect(&path, plan, &compiled).unwrap();
    let paths: Vec<_> = b.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["p.yaml", "a.csv"]);
    assert_eq!(b.plan_path, "p.yaml");
    // An iteration-bound plan has no known length: no deadline, and a note.
    let m = render(&path, plan, &compiled, &options(1)).unwrap();
    assert_eq!(m.deadline, None);
    assert!(m.notes.iter().any(|n| n.contains("--deadline")));
    assert!(!m.yaml.contains("activeDeadlineSeconds"));
}

#[test]
fn a_plan_reading_the_environment_gets_a_note_naming_the_variables() {
    let text = "target: ${SHOP_URL}\nvars:\n  a: \"${TOKEN:-x}-${SHOP_URL}\"\n  b: \"$${NOT} ${9X} ${}\"\n";
    assert_eq!(env_names(text), ["NOT", "SHOP_URL", "TOKEN"]);
    assert!(env_names(PLAN).is_empty());
}
