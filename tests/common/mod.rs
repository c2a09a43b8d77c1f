//! Helpers shared by the integration test binaries that run processes.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to completion, killing it and everything it started (its process group)
/// if it outlives `limit`: the same bounded wait as `wait_bounded` in tests/check.rs, which
/// also needs the child while it runs (to signal it).
/// Its output goes to temporary files rather than pipes, so a chatty child can never
/// stall on a full pipe while it is being waited for.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let (out, err) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{:?} does not start: {e}", cmd.get_program()));
    let read = |mut f: File| {
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut bytes).unwrap();
        bytes
    };
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Output {
                status,
                stdout: read(out),
                stderr: read(err),
            };
        }
        if Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "{:?} {:?} ran longer than {limit:?}\nstdout:\n{}\nstderr:\n{}",
        cmd.get_program(),
        cmd.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&read(out)),
        String::from_utf8_lossy(&read(err))
    );
}
