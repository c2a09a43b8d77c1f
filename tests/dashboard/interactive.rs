//! `swarm ui`: runs started, steered and stopped through the API.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use swarm::compile::graph::CompiledPlan;
use swarm::dashboard::{DashboardConfig, Launcher, LiveRun, RunRequest, serve_interactive};
use swarm::metrics::snapshot::Snapshot;
use tokio::sync::{mpsc, oneshot, watch};

use crate::support::{Sse, base, control, demo, next_run, start_run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_mode_starts_steers_and_stops_runs() {
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let dash = crate::support::interactive(dir.path(), demo.url()).await;
    let base = base(&dash);
    let http = crate::support::client();
    let mut sse = Sse::open(&http, &format!("{base}/api/stream")).await;
    let (name, meta) = sse.next(Duration::from_secs(5)).await;
    assert_eq!(name, "idle");
    assert_eq!(meta["run"], 0);
    assert_eq!(meta["interactive"], true);
    assert_eq!(meta["load"]["users"], 2);

    let r = control(&http, &base, json!({"action": "users", "users": 3})).await;
    assert_eq!(r.status(), 409, "no run to steer yet");
    let r = start_run(&http, &base, json!({"users": 3, "duration": "soon"})).await;
    assert_eq!(r.status(), 400);

    // First run: 3 users, steered to 1, stopped.
    let r = start_run(
        &http,
        &base,
        json!({"users": 3, "spawn_rate": 50, "duration": "30s"}),
    )
    .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    assert_eq!(next_run(&mut sse).await["run"], 1);
    sse.until(Duration::from_secs(10), |s| s["users"] == 3)
        .await;
    let r = start_run(&http, &base, json!({"users": 1})).await;
    assert_eq!(r.status(), 409, "one run at a time");
    let r = control(&http, &base, json!({"action": "users", "users": 1})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["users"] == 1)
        .await;
    let r = control(&http, &base, json!({"action": "reset"})).await;
    assert_eq!(r.status(), 202);
    // The reset took effect: the stream starts the charts over (a new epoch).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "no snapshot after the reset restarted the series"
        );
        let (name, data) = sse.next(left).await;
        if name == "snap" && data["reset"] == true {
            break;
        }
    }
    let r = control(&http, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["state"] == "stopped")
        .await;

    // Second run, with the plan's own duration but 2 users.
    let r = start_run(&http, &base, json!({"users": 2})).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    assert_eq!(next_run(&mut sse).await["run"], 2);
    sse.until(Duration::from_secs(10), |s| {
        s["users"] == 2 && s["total"][1].as_u64() > Some(0)
    })
    .await;
    let r = control(&http, &base, json!({"action": "stop"})).await;
    assert_eq!(r.status(), 202);
    sse.until(Duration::from_secs(10), |s| s["state"] == "stopped")
        .await;

    // Each run's reports stay downloadable.
    for run in [1, 2] {
        let r = http
            .get(format!("{base}/api/report/csv?run={run}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("list products"));
    }
    let r = crate::support::status(http.get(format!("{base}/api/report/csv?run=3"))).await;
    assert_eq!(r, 404);
}

/// Starts runs that fail the way `PlanLauncher`'s do when a thread panics: the
/// snapshots stop while the last one still says running, and no final snapshot comes.
struct FailingLauncher {
    plan: Arc<CompiledPlan>,
}

impl Launcher for FailingLauncher {
    fn launch(&self, _request: RunRequest) -> Result<LiveRun, String> {
        let requests = self.plan.requests.len();
        let (snapshots_tx, snapshots) = watch::channel(Arc::new(Snapshot::empty(requests, None)));
        let (control, _) = mpsc::unbounded_channel();
        let (done_tx, done) = oneshot::channel::<Arc<Snapshot>>();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut mid_run = Snapshot::empty(requests, None);
            mid_run.elapsed = Duration::from_secs(1);
            mid_run.active_users = 2;
            snapshots_tx.send_replace(Arc::new(mid_run));
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(snapshots_tx);
            drop(done_tx);
        });
        Ok(LiveRun {
            plan: self.plan.clone(),
            snapshots,
            control,
            done: Some(done),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_ends_and_another_can_start() {
    let plan = Arc::new(crate::support::plan(
        "http://127.0.0.1:1",
        2,
        Duration::from_secs(60),
    ));
    let config = DashboardConfig::new("127.0.0.1:0", None).unwrap();
    let launcher = Arc::new(FailingLauncher { plan: plan.clone() });
    let dash = serve_interactive(config, plan, launcher)
        .await
        .expect("dashboard starts");
    let base = base(&dash);
    let http = crate::support::client();
    let mut sse = Sse::open(&http, &format!("{base}/api/stream")).await;
    assert_eq!(sse.next(Duration::from_secs(5)).await.0, "idle");

    for run in [1, 2] {
        let r = start_run(&http, &base, json!({})).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        assert_eq!(next_run(&mut sse).await["run"], run);
        let last = sse
            .until(Duration::from_secs(10), |s| s["state"] != "running")
            .await;
        assert_eq!(last["state"]["state"], "stopped");
        assert_eq!(
            last["state"]["detail"], "stopped",
            "the JSON report's words"
        );
        // The numbers are the last ones the run got to.
        assert_eq!(last["state"]["users"], 2);
        assert_eq!(last["state"]["elapsed"], 1.0);
        let r = control(&http, &base, json!({"action": "stop"})).await;
        assert_eq!(r.status(), 409, "the run has ended");
    }
}
