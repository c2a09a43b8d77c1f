//! The coordinator and its workers in separate network namespaces joined by a veth
//! pair: separate hosts as far as the network goes. Needs root and `ip` (iproute2);
//! skips loudly otherwise. The namespaces are the test's own (unique names) and are
//! removed at the end, even on failure.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cluster::{LIMIT, read_json};
use crate::common::{Watched, serial};

/// Namespaces and their veth pair, removed on drop.
struct Namespaces {
    names: [String; 2],
}

impl Namespaces {
    fn create(tag: &str) -> Result<Namespaces, String> {
        let pid = std::process::id();
        let ns = Namespaces {
            names: [format!("swc{tag}{pid}"), format!("sww{tag}{pid}")],
        };
        let [c, w] = &ns.names;
        let (vc, vw) = (format!("vc{pid}"), format!("vw{pid}"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", c],
            vec!["netns", "add", w],
            vec!["link", "add", &vc, "type", "veth", "peer", "name", &vw],
            vec!["link", "set", &vc, "netns", c],
            vec!["link", "set", &vw, "netns", w],
            vec!["-n", c, "addr", "add", "10.201.7.1/30", "dev", &vc],
            vec!["-n", w, "addr", "add", "10.201.7.2/30", "dev", &vw],
            vec!["-n", c, "link", "set", &vc, "up"],
            vec!["-n", w, "link", "set", &vw, "up"],
            vec!["-n", c, "link", "set", "lo", "up"],
            vec!["-n", w, "link", "set", "lo", "up"],
        ];
        for args in steps {
            ip(&args)?;
        }
        Ok(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn can_run() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err("`ip` (iproute2) is missing".into()),
    }
}

/// Runs `swarm ARGS` inside namespace `ns`.
fn in_ns(ns: &str, args: &[&str]) -> Watched {
    Watched::spawn(
        Command::new("ip")
            .args(["netns", "exec", ns, env!("CARGO_BIN_EXE_swarm")])
            .args(args)
            .env("CI", "1")
            .env_remove("SWARM_TOKEN"),
    )
}

#[test]
fn coordinator_and_worker_on_separate_network_namespaces() {
    if let Err(why) = can_run() {
        eprintln!("SKIPPED coordinator_and_worker_on_separate_network_namespaces: {why}");
        return;
    }
    let _turn = serial();
    let ns = Namespaces::create("a").expect("namespaces and a veth pair");
    let [c, w] = &ns.names;
    let dir = tempfile::tempdir().unwrap();
    // The target runs beside the coordinator (the demo, in its namespace); the worker
    // reaches it over the veth pair, as it would another host.
    let demo = in_ns(c, &["demo", "--bind", "10.201.7.1", "--port", "18080"]);
    std::thread::sleep(Duration::from_millis(300));
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        "name: netns\ntarget: http://10.201.7.1:18080\nload: { users: 2, iterations: 50 }\nflows:\n  - name: f\n    steps:\n      - get: /health\n",
    )
    .unwrap();
    let json = dir.path().join("run.json");
    let mut coordinator = in_ns(
        c,
        &[
            "check",
            plan.to_str().unwrap(),
            "--coordinator",
            "10.201.7.1:7700",
            "--workers",
            "1",
            "--token",
            "veth-token",
            "--progress",
            "none",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    coordinator.line("coordinator listening on", Duration::from_secs(20));
    let worker = in_ns(
        w,
        &[
            "worker",
            "http://10.201.7.1:7700",
            "--token",
            "veth-token",
            "--name",
            "far",
        ],
    );
    let (code, out, err) = coordinator.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(worker.finish(Duration::from_secs(20)).0, 0);
    let report = read_json(&json);
    assert_eq!(report["total"]["count"], 50);
    assert_eq!(report["workers"][0]["name"], "far");
    assert!(
        report["workers"][0]["address"]
            .as_str()
            .unwrap()
            .starts_with("10.201.7.2")
    );
    demo.signal("-TERM");
    drop(demo);
}
