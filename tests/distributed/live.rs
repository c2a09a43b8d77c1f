//! The coordinator's dashboard: the workers table, and a load change from its API
//! reaching every worker.

use std::io::{Read, Write};
use std::time::Duration;

use crate::cluster::{Coordinator, LIMIT, Target, plan, worker};
use crate::common::{serial, wait_until};

/// One HTTP/1.1 request to the dashboard; the status and the body.
pub(crate) fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\nx-swarm-request: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    let _ = tcp.read_to_string(&mut text);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn workers(addr: &str) -> Vec<serde_json::Value> {
    let (status, body) = http(addr, "GET", "/api/workers", "");
    assert_eq!(status, 200, "{body}");
    // A chunked body: the JSON object sits between the chunk sizes.
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map_or(body.len(), |e| e + 1);
    let v: serde_json::Value = serde_json::from_str(&body[start..end]).unwrap();
    v["workers"].as_array().unwrap().clone()
}

#[test]
fn the_dashboard_shows_the_workers_and_a_load_change_reaches_every_one() {
    let _turn = serial();
    let target = Target::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = plan(
        dir.path(),
        &target.url(),
        "{ users: 2, duration: 40s }",
        "/ok",
        &[],
    );
    let mut coordinator = Coordinator::start(&plan, 2, &["--ui", "127.0.0.1:0", "--ui-exit"]);
    let dash = coordinator
        .proc
        .line("dashboard: ", Duration::from_secs(20));
    let dash = dash
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let _a = worker(&coordinator.url, "a", &[]);
    let _b = worker(&coordinator.url, "b", &[]);
    wait_until("load at the target", Duration::from_secs(20), || {
        target.hits() > 20
    });
    wait_until("two running workers", Duration::from_secs(10), || {
        let rows = workers(&dash);
        rows.len() == 2 && rows.iter().all(|w| w["state"] == "running")
    });
    let (status, body) = http(
        &dash,
        "POST",
        "/api/control",
        r#"{"action":"users","users":6}"#,
    );
    assert!(status < 300, "{status} {body}");
    // Users 0..6 go round-robin over the run's threads, which both workers hold.
    wait_until("6 users over both workers", Duration::from_secs(10), || {
        let rows = workers(&dash);
        let users: Vec<u64> = rows
            .iter()
            .map(|w| w["users"].as_u64().unwrap_or(0))
            .collect();
        users.iter().sum::<u64>() == 6 && users.iter().all(|&u| u >= 2)
    });
    let (status, _) = http(&dash, "POST", "/api/control", r#"{"action":"stop"}"#);
    assert!(status < 300);
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
}
