//! Runs a child process with a time bound and reports its peak memory, for the tests
//! that prove a fault costs bounded memory (tests/limits.rs, tests/hostile/).

// Each test binary that includes this module reads a different part of `Measured`.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a measured child left behind.
pub struct Measured {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The child's peak resident set size, in bytes (from `wait4`'s rusage).
    pub peak_rss: u64,
    pub took: Duration,
}

impl Measured {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

/// Runs `cmd` to completion and measures it; a child that outlives `limit` is killed
/// (with its process group) and the test fails, showing its output.
pub fn run_measured(cmd: &mut Command, limit: Duration) -> Measured {
    let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let start = Instant::now();
    // Reaped by `wait4` below, which also gives its rusage; `Child::wait` cannot.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{:?} does not start: {e}", cmd.get_program()));
    let pid = child.id() as libc::pid_t;
    let read = |mut f: &File| {
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut bytes).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    loop {
        let mut status = 0;
        // SAFETY: `status` and `usage` are valid for writes; the pid is our own child,
        // which `Child` never waits for itself (it is not used after this point).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            return Measured {
                status: ExitStatus::from_raw(status),
                stdout: read(&out),
                stderr: read(&err),
                // Linux reports ru_maxrss in kilobytes.
                peak_rss: usage.ru_maxrss as u64 * 1024,
                took: start.elapsed(),
            };
        }
        assert!(
            done == 0,
            "wait4 failed: {}",
            std::io::Error::last_os_error()
        );
        if start.elapsed() > limit {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let mut status = 0;
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!(
                "{:?} {:?} ran longer than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                cmd.get_program(),
                cmd.get_args().collect::<Vec<_>>(),
                read(&out),
                read(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
