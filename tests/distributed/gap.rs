//! A worker lost with `--on-worker-loss continue`: the gap it leaves in the load is
//! marked on the live dashboard and in the HTML report (a warning naming the worker,
//! and a dashed line at that moment on each time chart), seen in a real browser when
//! Chromium is installed, and in the report's embedded data always.

use std::time::Duration;

use crate::browser::webdriver::Browser;
use crate::cluster::{Coordinator, LIMIT, Setup, lost};
use crate::common::serial;
use crate::live::http;

/// What the page shows of a lost worker `doomed`: the warning, and one mark on each
/// of the three time charts.
const GAP_SHOWN: &str = "const gap = document.getElementById('gap-note'); \
    return !gap.hidden && gap.textContent.includes('Worker doomed was lost at') \
    && gap.textContent.includes('its load is missing from then on') \
    && ['ch-rps', 'ch-lat', 'ch-users'].every(id => document.getElementById(id).dataset.marks === '1') \
    && document.querySelector('#workers-body tr[data-state=lost]') !== null;";

#[test]
fn a_lost_workers_gap_is_marked_on_the_dashboard_and_in_the_html_report() {
    let _turn = serial();
    let s = Setup::new("{ users: 4, duration: 60s }", "/ok", &[]);
    let html = s.dir.path().join("report.html");
    let args = [
        "--html",
        html.to_str().unwrap(),
        "--on-worker-loss",
        "continue",
        "--ui",
        "127.0.0.1:0",
        "--ui-exit",
    ];
    let mut coordinator = Coordinator::start(&s.plan, 2, &args);
    let dash = coordinator
        .proc
        .line("dashboard: ", Duration::from_secs(20));
    let dash = dash
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let [_keep, doomed] = coordinator.join(["keep", "doomed"]);
    s.kill_under_load(&doomed);
    coordinator
        .proc
        .line("worker `doomed` lost at", Duration::from_secs(10));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let browser = rt.block_on(Browser::start("a lost worker's gap"));
    if let Some(browser) = &browser {
        rt.block_on(async {
            browser.goto(&format!("http://{dash}/")).await;
            browser
                .wait_for(
                    "the gap on the live page",
                    GAP_SHOWN,
                    Duration::from_secs(20),
                )
                .await;
        });
    }
    let (status, _) = http(&dash, "POST", "/api/control", r#"{"action":"stop"}"#);
    assert!(status < 300, "{status}");
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "the run went on and was stopped:\n{out}\n{err}");
    let page = std::fs::read_to_string(&html).expect("the HTML report was written");
    let data = swarm::report::html::embedded_data(&page).expect("the page embeds its data");
    let lost = lost(&data);
    assert_eq!(lost.len(), 1, "{}", data["workers"]);
    assert_eq!(lost[0]["name"], "doomed");
    assert!(lost[0]["lost_at_s"].as_f64().is_some(), "{}", lost[0]);
    if let Some(browser) = &browser {
        rt.block_on(async {
            browser.goto(&format!("file://{}", html.display())).await;
            browser
                .wait_for(
                    "the gap in the HTML report",
                    GAP_SHOWN,
                    Duration::from_secs(20),
                )
                .await;
        });
    }
}
