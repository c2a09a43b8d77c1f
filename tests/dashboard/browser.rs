//! In a real browser: headless Chromium driven through chromedriver.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::support::webdriver::Browser;
use crate::support::{SECRET, base, demo, engine_config, live_run, plan};

/// Where screenshots go when SWARM_SCREENSHOTS names a directory (for looking at the
/// page as the tests see it; the ones in docs/ come from `swarm ui plans/shop.yaml`).
fn save_screenshot(name: &str, png: &[u8]) {
    if let Ok(dir) = std::env::var("SWARM_SCREENSHOTS") {
        let path = std::path::Path::new(&dir).join(name);
        std::fs::write(&path, png).expect("screenshot written");
        eprintln!("screenshot: {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_page_charts_the_run_and_steers_it() {
    let Some(browser) = Browser::start("dashboard").await else {
        return;
    };
    let (_demo, dash, run) = live_run("127.0.0.1:0", None, 3).await;
    let base = base(&dash);
    browser.goto(&format!("{base}/")).await;
    let wait = Duration::from_secs(20);
    browser
        .wait_for(
            "the charts to draw points",
            "return ['ch-rps','ch-lat','ch-users'].every(id => +document.getElementById(id).dataset.points >= 4);",
            wait,
        )
        .await;
    browser
        .wait_for(
            "the stats table and SLOs",
            "return document.querySelectorAll('#stats-body tr').length === 3 \
             && document.querySelectorAll('#slo-body .pill').length === 2 \
             && document.getElementById('state-badge').textContent === 'running';",
            wait,
        )
        .await;
    // Change the user count through the page's own form.
    browser
        .eval(
            "const i = document.getElementById('c-users'); i.value = '7'; \
             i.dispatchEvent(new Event('input')); \
             document.getElementById('c-apply').click(); return true;",
        )
        .await;
    browser
        .wait_for(
            "the page to show 7 users",
            "return document.getElementById('k-users').textContent === '7';",
            wait,
        )
        .await;
    assert_eq!(
        run.snapshots().borrow().active_users,
        7,
        "the run follows the page"
    );
    // Let a few more seconds of data arrive for a readable screenshot.
    browser.set_window(1600, 1250).await;
    // The theme button switches the theme, both ways: the page's own handler sets it.
    let theme = "return document.documentElement.dataset.theme || 'light';";
    let before = browser.eval(theme).await;
    let other = if before == "dark" { "light" } else { "dark" };
    let shot = |theme: &str| match theme {
        "dark" => "browser-dashboard.png",
        _ => "browser-dashboard-light.png",
    };
    browser
        .eval("document.getElementById('theme-btn').click(); return true;")
        .await;
    browser
        .wait_for(
            "the other theme",
            &format!("return (document.documentElement.dataset.theme || 'light') === '{other}';"),
            wait,
        )
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    save_screenshot(shot(other), &browser.screenshot().await);
    browser
        .eval("document.getElementById('theme-btn').click(); return true;")
        .await;
    browser
        .wait_for(
            "the first theme again",
            &format!(
                "return (document.documentElement.dataset.theme || 'light') === '{}';",
                before.as_str().unwrap_or("light")
            ),
            wait,
        )
        .await;
    save_screenshot(
        shot(before.as_str().unwrap_or("light")),
        &browser.screenshot().await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_opens_offline_with_charts_and_slos() {
    let Some(browser) = Browser::start("html report").await else {
        return;
    };
    let demo = demo().await;
    let plan = Arc::new(plan(&demo.url(), 4, Duration::from_secs(6)));
    let run = swarm::engine::start(plan.clone(), engine_config()).expect("the run starts");
    let last = tokio::time::timeout(Duration::from_secs(20), run.wait())
        .await
        .expect("the run ends")
        .expect("the run succeeds");
    drop(demo);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    swarm::report::html::write(&path, &plan, &last, &[]).expect("report written");
    let html = std::fs::read_to_string(&path).unwrap();
    for external in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(external), "the report loads {external}");
    }
    assert!(!html.contains(SECRET));
    browser.goto(&format!("file://{}", path.display())).await;
    browser
        .wait_for(
            "the report's charts and SLO table",
            "return ['ch-rps','ch-lat','ch-users'].every(id => +document.getElementById(id).dataset.points >= 4) \
             && document.querySelectorAll('#slo-body .pill').length === 2 \
             && document.querySelectorAll('#stats-body tr').length === 3;",
            Duration::from_secs(20),
        )
        .await;
    let resources = browser
        .eval("return performance.getEntriesByType('resource').map(r => r.name);")
        .await;
    assert_eq!(resources, json!([]), "the report fetched resources");
    assert_eq!(
        browser
            .eval("return document.getElementById('state-badge').textContent;")
            .await,
        "completed"
    );
    browser.set_window(1600, 1250).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    save_screenshot("browser-html-report.png", &browser.screenshot().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_interactive_mode_starts_and_stops_a_run() {
    let Some(browser) = Browser::start("interactive").await else {
        return;
    };
    let demo = demo().await;
    let dir = tempfile::tempdir().unwrap();
    let dash = crate::support::interactive(dir.path(), demo.url()).await;
    browser.goto(&base(&dash)).await;
    let wait = Duration::from_secs(20);
    browser
        .wait_for(
            "the idle page",
            "return document.getElementById('state-badge').textContent === 'idle' \
             && getComputedStyle(document.getElementById('c-start')).display !== 'none';",
            wait,
        )
        .await;
    save_screenshot("browser-ui-idle.png", &browser.screenshot().await);
    browser
        .eval(
            "const set = (id, v) => { const i = document.getElementById(id); i.value = v; i.dispatchEvent(new Event('input')); }; \
             set('c-users', '4'); set('c-duration', '30s'); \
             document.getElementById('c-start').click(); return true;",
        )
        .await;
    browser
        .wait_for(
            "the run to start with 4 users",
            "return document.getElementById('state-badge').textContent === 'running' \
             && document.getElementById('k-users').textContent === '4' \
             && +document.getElementById('ch-users').dataset.points >= 2;",
            wait,
        )
        .await;
    browser
        .eval("document.getElementById('c-stop').click(); return true;")
        .await;
    browser
        .wait_for(
            "the run to stop and the page to offer a new one",
            "return document.getElementById('state-badge').textContent === 'stopped' \
             && getComputedStyle(document.getElementById('c-start')).display !== 'none';",
            wait,
        )
        .await;
}
