//! Helpers shared by the integration test binaries: taking turns, and running
//! processes with a time bound. (Plans are built with `swarm::testing::TestPlan`.)
//! Each test binary uses a part of this module, so unused items are expected.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One turn at a time, inside one test binary: load tests sharing two cores would
/// measure each other. A tokio mutex, so async tests can hold the guard across awaits
/// ([`serial_async`]) and plain tests block on it ([`serial`]); it is never poisoned.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Takes this binary's turn, from a plain (non-async) test.
pub fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    TURN.blocking_lock()
}

/// Takes this binary's turn, from an async test.
pub async fn serial_async() -> tokio::sync::MutexGuard<'static, ()> {
    TURN.lock().await
}

/// Serves `app` on a free loopback port (see [`listen`]); returns its address.
pub fn serve(app: axum::Router) -> std::net::SocketAddr {
    listen(|listener| async move { axum::serve(listener, app).await.unwrap() })
}

/// Binds a free loopback port and hands the listener to `accept_loop`, run on a thread
/// of its own (with a current-thread runtime, so plain tests can use it); returns the
/// address once it listens.
pub fn listen<F, Fut>(accept_loop: F) -> std::net::SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            accept_loop(listener).await;
        });
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("server up")
}

/// Runs `cmd` to completion with its output captured, killing it and everything it
/// started (its process group) if it outlives `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    wait_within(spawn_piped(cmd), limit)
}

/// Starts `cmd` with no input, its output piped, leading a process group of its own.
fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{:?} does not start: {e}", cmd.get_program()))
}

/// Waits for a child started with piped stdout and stderr, killing it (and its process
/// group, when it leads one) if it outlives `limit`, which fails the test. The pipes
/// are drained by threads while it runs, so a chatty child never stalls on a full pipe.
pub fn wait_within(mut child: Child, limit: Duration) -> Output {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                let _ = tx.send(bytes);
            });
        }
        rx
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    // A grandchild may keep a pipe open after the child ended: read what there is.
    let collect =
        |rx: mpsc::Receiver<Vec<u8>>| rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Output {
                status,
                stdout: collect(stdout),
                stderr: collect(stderr),
            };
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_group(&child);
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "pid {} ran longer than {limit:?}\nstdout:\n{}\nstderr:\n{}",
        child.id(),
        String::from_utf8_lossy(&collect(stdout)),
        String::from_utf8_lossy(&collect(stderr))
    );
}

/// Kills the process group `child` leads (if it leads one).
pub fn kill_group(child: &Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
}

/// Sends `signal` (`-INT`, `-STOP`, ...) to `pid`.
pub fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill {signal} {pid}");
}

/// Waits until `cond` holds, checking every 20 ms; fails the test after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit code, which every run of the binary has (it is never killed by a signal
/// it does not handle).
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited with a code")
}

/// An output for a failure message.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A child whose output is read line by line while it runs, so a test can wait for
/// what it prints (an address, a message) and then steer it with signals.
pub struct Watched {
    pub child: Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Watched {
    /// Starts `cmd` in a process group of its own, with its output watched.
    pub fn spawn(cmd: &mut Command) -> Watched {
        let mut child = spawn_piped(cmd);
        let watch = |pipe: Box<dyn Read + Send>| {
            let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let sink = text.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut text = sink.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            });
            text
        };
        let stdout = watch(Box::new(child.stdout.take().unwrap()));
        let stderr = watch(Box::new(child.stderr.take().unwrap()));
        Watched {
            child,
            stdout,
            stderr,
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a line of stdout or stderr starts with `prefix`; returns the rest.
    pub fn line(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let both = format!("{}{}", self.stdout(), self.stderr());
            if let Some(line) = both.lines().find(|l| l.starts_with(prefix)) {
                return line[prefix.len()..].trim().to_string();
            }
            if Instant::now() > deadline || self.child.try_wait().ok().flatten().is_some() {
                self.fail(&format!("no line starting with {prefix:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// Waits for the exit (killing the group and failing after `limit`); returns the
    /// exit code with everything printed.
    pub fn finish(mut self, limit: Duration) -> (i32, String, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the readers catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                let code = status.code().expect("exited with a code");
                return (code, self.stdout(), self.stderr());
            }
            if Instant::now() > deadline {
                self.fail(&format!("ran longer than {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process and its group, then fails the test with `why` and everything
    /// it printed.
    fn fail(&mut self, why: &str) -> ! {
        kill_group(&self.child);
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "{why}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }
}

impl Drop for Watched {
    /// A test that failed half-way leaves no process behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(&self.child);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
