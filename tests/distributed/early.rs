//! A worker started before its coordinator (a worker pod scheduled first) keeps
//! trying for 30 s and joins once the coordinator listens.

use std::time::Duration;

use crate::cluster::{Coordinator, LIMIT, Setup, read_json, worker};
use crate::common::{serial, wait_until};

/// The worker is told an address that refuses connections at first: a socket the
/// test bound to port 0 and holds without listening (so no other process can take
/// the port, and nothing is bound, released and re-used). Once the worker was
/// refused twice, the coordinator starts on a port of its own, and the held socket
/// starts listening and relays each connection to it byte for byte: to the worker,
/// the coordinator came up at the address it was given.
#[test]
fn a_worker_started_before_its_coordinator_joins_once_it_listens() {
    let _turn = serial();
    let s = Setup::new("{ users: 2, iterations: 40 }", "/ok", &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = held.local_addr().unwrap();
    // `-v` logs each refused attempt.
    let early = worker(&format!("http://{addr}"), "early", &["-v"]);
    wait_until(
        "the worker to be refused twice",
        Duration::from_secs(20),
        || early.stderr().matches("trying again").count() >= 2,
    );
    let json = s.file("run.json");
    let mut coordinator = Coordinator::start(&s.plan, 1, &["--json", &json]);
    let upstream = coordinator.url.trim_start_matches("http://").to_owned();
    // The listener is made inside the runtime (it registers with its reactor).
    let listener = rt.block_on(async { held.listen(16).unwrap() });
    rt.spawn(async move {
        while let Ok((mut from, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut to) = tokio::net::TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut from, &mut to).await;
                }
            });
        }
    });
    coordinator
        .proc
        .line("worker `early` joined", Duration::from_secs(40));
    let (code, out, err) = coordinator.proc.finish(LIMIT);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = early.finish(Duration::from_secs(20));
    assert_eq!(code, 0, "the early worker ran the plan: {err}");
    assert_eq!(s.target.hits(), 40);
    assert_eq!(read_json(&json)["total"]["count"], 40);
}
