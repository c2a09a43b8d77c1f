//! The five objects of a run and their YAML: which fields each sets, and why. The
//! object types are in [`super::objects`]; the files in the ConfigMap come from
//! [`super::bundle`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::bundle::Bundle;
use super::objects::*;
use super::{K8sError, Options, PLAN_DIR, PORT, REPORTS_DIR, Size};
use crate::compile::units::format_duration;

/// The image's unprivileged user (distroless `nonroot`).
const USER: u32 = 65532;

/// How often one worker index is retried. Kubernetes waits 10 s, 20 s, 40 s, 80 s
/// and 160 s before the retries, which covers a coordinator that starts up to five
/// minutes after its workers: the default wait for workers. A retry during the run
/// is refused by the coordinator and costs nothing.
const WORKER_RETRIES: u32 = 5;

/// The Secret's key that holds the token.
const TOKEN_KEY: &str = "token";

/// The downward-API path of an Indexed Job's completion index.
const INDEX_FIELD: &str = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

/// Everything the objects are made from.
pub(super) struct Docs<'a> {
    pub name: &'a str,
    pub opts: &'a Options,
    pub bundle: &'a Bundle,
    pub token: &'a str,
    pub deadline: Option<Duration>,
}

impl Docs<'_> {
    /// The objects in the order they are needed: the Secret and the ConfigMap the
    /// pods mount, the Service the workers dial, the coordinator, the workers.
    pub fn render(&self) -> Result<String, K8sError> {
        let docs = [
            yaml(&self.secret())?,
            self.config_map_yaml()?,
            yaml(&self.service())?,
            yaml(&self.coordinator())?,
            yaml(&self.workers())?,
        ];
        let mut out = String::new();
        for doc in docs {
            out.push_str("---\n");
            out.push_str(&doc);
        }
        Ok(out)
    }

    fn coordinator_name(&self) -> String {
        format!("{}-coordinator", self.name)
    }

    fn token_name(&self) -> String {
        format!("{}-token", self.name)
    }

    fn plan_name(&self) -> String {
        format!("{}-plan", self.name)
    }

    fn labels(&self, component: &str) -> BTreeMap<String, String> {
        [
            ("app.kubernetes.io/name", "swarm"),
            ("app.kubernetes.io/instance", self.name),
            ("app.kubernetes.io/component", component),
            ("app.kubernetes.io/version", env!("CARGO_PKG_VERSION")),
            ("app.kubernetes.io/managed-by", "swarm-k8s"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The labels that pick one component's pods (the version left out: a selector
    /// should not change with an upgrade).
    fn selector(&self, component: &str) -> BTreeMap<String, String> {
        let mut labels = self.labels(component);
        labels.retain(|k, _| k.ends_with("/instance") || k.ends_with("/component"));
        labels
    }

    fn meta(&self, name: String, component: &str) -> Meta {
        Meta {
            name,
            namespace: self.opts.namespace.clone(),
            labels: self.labels(component),
        }
    }

    fn secret(&self) -> Secret {
        Secret {
            api_version: "v1",
            kind: "Secret",
            metadata: self.meta(self.token_name(), "token"),
            kind_of_secret: "Opaque",
            string_data: BTreeMap::from([(TOKEN_KEY.to_owned(), self.token.to_owned())]),
        }
    }

    fn config_map(&self) -> ConfigMap {
        ConfigMap {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: self.meta(self.plan_name(), "plan"),
            data: self
                .bundle
                .files
                .iter()
                .map(|f| (f.key.clone(), f.text.clone()))
                .collect(),
        }
    }

    /// The ConfigMap with its files as YAML block literals, which keep them readable,
    /// when reading the YAML back gives every file exactly; quoted strings otherwise
    /// (a file with carriage returns or leading spaces, say).
    fn config_map_yaml(&self) -> Result<String, K8sError> {
        let map = self.config_map();
        let blocks = yaml(&map)?;
        #[derive(serde::Deserialize)]
        struct Data {
            data: BTreeMap<String, String>,
        }
        let back: Option<Data> = serde_saphyr::from_str(&blocks).ok();
        if back.is_some_and(|b| b.data == map.data) {
            return Ok(blocks);
        }
        let options = serde_saphyr::ser_options! { prefer_block_scalars: false };
        serde_saphyr::to_string_with_options(&map, options)
            .map_err(|e| K8sError::Yaml(e.to_string()))
    }

    fn service(&self) -> Service {
        Service {
            api_version: "v1",
            kind: "Service",
            metadata: self.meta(self.coordinator_name(), "coordinator"),
            spec: ServiceSpec {
                selector: self.selector("coordinator"),
                ports: vec![ServicePort {
                    name: "coordinator",
                    port: PORT,
                    target_port: "coordinator",
                    protocol: "TCP",
                }],
            },
        }
    }

    /// `swarm check --coordinator` as a Job that runs once: no retry (a second run
    /// would be another verdict) and no restart, so the Job's end is the run's.
    fn coordinator(&self) -> Job {
        let opts = self.opts;
        let mut args = vec![
            "check".to_owned(),
            self.bundle.plan_path.clone(),
            "--coordinator".to_owned(),
            format!("0.0.0.0:{PORT}"),
            "--workers".to_owned(),
            opts.workers.to_string(),
            "--workers-timeout".to_owned(),
            format_duration(opts.workers_timeout),
            "--on-worker-loss".to_owned(),
            opts.on_worker_loss.as_arg().to_owned(),
        ];
        args.extend(opts.check_args.iter().cloned());
        for (flag, file) in [
            ("--json", "report.json"),
            ("--junit", "junit.xml"),
            ("--html", "report.html"),
            ("--summary", "summary.md"),
        ] {
            args.push(flag.to_owned());
            args.push(format!("{REPORTS_DIR}/{file}"));
        }
        args.extend(["--progress", "plain"].map(String::from));
        if opts.ui {
            // On the pod's loopback: `kubectl port-forward` reaches it, nothing else.
            args.extend(["--ui", "127.0.0.1:8089", "--ui-exit"].map(String::from));
        }
        let reports = match &opts.reports_claim {
            Some(claim) => VolumeSource::PersistentVolumeClaim {
                claim_name: claim.clone(),
            },
            None => VolumeSource::EmptyDir {},
        };
        let container = Container {
            name: "coordinator",
            image: opts.image.clone(),
            image_pull_policy: "IfNotPresent",
            args,
            working_dir: Some(PLAN_DIR),
            env: vec![self.token_env()],
            ports: vec![ContainerPort {
                name: "coordinator",
                container_port: PORT,
                protocol: "TCP",
            }],
            // The Service sends workers on only once the coordinator listens.
            readiness_probe: Some(Probe {
                tcp_socket: TcpSocket {
                    port: "coordinator",
                },
                period_seconds: 2,
            }),
            resources: resources(&opts.coordinator),
            security_context: container_security(),
            termination_message_policy: "FallbackToLogsOnError",
            volume_mounts: vec![
                mount("plan", PLAN_DIR, true),
                mount("reports", REPORTS_DIR, false),
                mount("tmp", "/tmp", false),
            ],
        };
        let volumes = vec![
            Volume {
                name: "plan",
                source: VolumeSource::ConfigMap {
                    name: self.plan_name(),
                    items: self
                        .bundle
                        .files
                        .iter()
                        .map(|f| KeyToPath {
                            key: f.key.clone(),
                            path: f.path.clone(),
                        })
                        .collect(),
                },
            },
            Volume {
                name: "reports",
                source: reports,
            },
            scratch(),
        ];
        Job {
            api_version: "batch/v1",
            kind: "Job",
            metadata: self.meta(self.coordinator_name(), "coordinator"),
            spec: JobSpec {
                completion_mode: None,
                completions: None,
                parallelism: None,
                backoff_limit: Some(0),
                backoff_limit_per_index: None,
                active_deadline_seconds: self.deadline_seconds(),
                template: self.template("coordinator", vec![container], volumes, false),
            },
        }
    }

    /// `swarm worker` N times as an Indexed Job: all start at once, each named by its
    /// index. A worker that finds no coordinator listening exits at once, and pods
    /// start in no set order, so each index is retried up to [`WORKER_RETRIES`]
    /// times. The retries are counted per index, so 20 workers failing together at
    /// the start do not fail the whole Job.
    fn workers(&self) -> Job {
        let opts = self.opts;
        let container = Container {
            name: "worker",
            image: opts.image.clone(),
            image_pull_policy: "IfNotPresent",
            args: vec![
                "worker".to_owned(),
                format!("http://{}:{PORT}", self.coordinator_name()),
                "--name".to_owned(),
                "worker-$(SWARM_WORKER_INDEX)".to_owned(),
            ],
            working_dir: None,
            env: vec![
                EnvVar {
                    name: "SWARM_WORKER_INDEX",
                    value_from: EnvSource::FieldRef {
                        field_path: INDEX_FIELD,
                    },
                },
                self.token_env(),
            ],
            ports: Vec::new(),
            readiness_probe: None,
            resources: resources(&opts.worker),
            security_context: container_security(),
            termination_message_policy: "FallbackToLogsOnError",
            volume_mounts: vec![mount("tmp", "/tmp", false)],
        };
        Job {
            api_version: "batch/v1",
            kind: "Job",
            metadata: self.meta(format!("{}-workers", self.name), "workers"),
            spec: JobSpec {
                completion_mode: Some("Indexed"),
                completions: Some(opts.workers),
                parallelism: Some(opts.workers),
                backoff_limit: None,
                backoff_limit_per_index: Some(WORKER_RETRIES),
                active_deadline_seconds: self.deadline_seconds(),
                template: self.template("workers", vec![container], vec![scratch()], true),
            },
        }
    }

    fn template(
        &self,
        component: &str,
        containers: Vec<Container>,
        volumes: Vec<Volume>,
        spread: bool,
    ) -> PodTemplate {
        // Workers on one node share its CPU and network: spread them when the
        // cluster can, schedule them anyway when it cannot.
        let topology_spread_constraints = if spread {
            vec![TopologySpread {
                max_skew: 1,
                topology_key: "kubernetes.io/hostname",
                when_unsatisfiable: "ScheduleAnyway",
                label_selector: LabelSelector {
                    match_labels: self.selector(component),
                },
            }]
        } else {
            Vec::new()
        };
        PodTemplate {
            metadata: TemplateMeta {
                labels: self.labels(component),
            },
            spec: PodSpec {
                restart_policy: "Never",
                // swarm never calls the Kubernetes API.
                automount_service_account_token: false,
                enable_service_links: false,
                security_context: PodSecurityContext {
                    run_as_non_root: true,
                    run_as_user: USER,
                    run_as_group: USER,
                    // A claim's files become writable by the image's user.
                    fs_group: USER,
                    seccomp_profile: SeccompProfile {
                        kind: "RuntimeDefault",
                    },
                },
                topology_spread_constraints,
                containers,
                volumes,
            },
        }
    }

    fn token_env(&self) -> EnvVar {
        EnvVar {
            name: "SWARM_TOKEN",
            value_from: EnvSource::SecretKeyRef {
                name: self.token_name(),
                key: TOKEN_KEY,
            },
        }
    }

    fn deadline_seconds(&self) -> Option<u64> {
        self.deadline.map(|d| d.as_secs_f64().ceil() as u64)
    }
}

fn resources(size: &Size) -> Resources {
    let figures = BTreeMap::from([("cpu", size.cpu.clone()), ("memory", size.memory.clone())]);
    Resources {
        requests: figures.clone(),
        limits: figures,
    }
}

/// What the Pod Security Standards' `restricted` level asks of a container.
fn container_security() -> ContainerSecurityContext {
    ContainerSecurityContext {
        allow_privilege_escalation: false,
        read_only_root_filesystem: true,
        capabilities: Capabilities { drop: vec!["ALL"] },
    }
}

fn mount(name: &'static str, path: &'static str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name,
        mount_path: path,
        read_only,
    }
}

/// A writable `/tmp` on a read-only root file system.
fn scratch() -> Volume {
    Volume {
        name: "tmp",
        source: VolumeSource::EmptyDir {},
    }
}

fn yaml(value: &impl Serialize) -> Result<String, K8sError> {
    serde_saphyr::to_string(value).map_err(|e| K8sError::Yaml(e.to_string()))
}
