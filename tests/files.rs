//! Reports and files under faults, through the binary against the built-in demo target:
//! a report path in a missing folder, on a read-only file system and on a full one
//! (small tmpfs mounts, which need root: CI runs as root, elsewhere these skip loudly);
//! a data file removed mid-run; corrupt, old and foreign baselines.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::output_within;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn check(plan: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.arg("check")
        .arg(plan)
        .args(["--demo", "--duration", "1s", "--progress", "none"])
        .args(extra)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("SWARM_TARGET");
    let out: Output = output_within(&mut cmd, Duration::from_secs(120));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn quickstart() -> PathBuf {
    Path::new(ROOT).join("plans/quickstart.yaml")
}

/// The summary reached the console although a report could not be written.
fn assert_summary(stdout: &str) {
    assert!(
        stdout.contains("Aggregated") && stdout.contains("quickstart"),
        "{stdout}"
    );
}

#[test]
fn a_report_in_a_missing_folder_exits_3_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/folder/report.json");
    let (code, stdout, stderr) = check(&quickstart(), &["--json", path.to_str().unwrap()]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
    assert_summary(&stdout);
    assert!(!path.exists());
}

/// A tmpfs mounted for one test and unmounted when dropped.
struct Mount(tempfile::TempDir);

impl Mount {
    /// `None` (and a loud note) when the test cannot mount: not root, or no mount(8).
    fn tmpfs(options: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs (needs root; CI runs as root): the \
                 read-only and full-disk report cases are not tested here"
            );
            return None;
        }
        Some(Mount(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn reports_on_a_read_only_file_system_exit_3_naming_the_path() {
    let Some(mount) = Mount::tmpfs("size=64k,ro") else {
        return;
    };
    let json = mount.path().join("report.json");
    let html = mount.path().join("report.html");
    let (code, stdout, stderr) = check(
        &quickstart(),
        &[
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(json.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains(html.to_str().unwrap()), "{stderr}");
    assert_summary(&stdout);
    assert!(!json.exists() && !html.exists());
}

#[test]
fn reports_on_a_full_disk_exit_3_and_leave_no_partial_file() {
    // 16 KiB left: the JUnit report may fit, the HTML report (hundreds of KB) cannot,
    // so it fails part-way through writing.
    let Some(mount) = Mount::tmpfs("size=256k") else {
        return;
    };
    std::fs::write(mount.path().join("filler"), vec![0u8; 240 * 1024]).unwrap();
    let html = mount.path().join("report.html");
    let (code, stdout, stderr) = check(&quickstart(), &["--html", html.to_str().unwrap()]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(html.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("No space left"), "{stderr}");
    assert_summary(&stdout);
    let left: Vec<_> = std::fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("filler")],
        "partial files left"
    );
}

#[test]
fn a_data_file_removed_mid_run_does_not_disturb_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let csv = dir.path().join("data/accounts.csv");
    std::fs::copy(Path::new(ROOT).join("plans/data/accounts.csv"), &csv).unwrap();
    let plan = dir.path().join("feeder.yaml");
    std::fs::write(
        &plan,
        "name: feeder\nload: { users: 2, duration: 3s }\n\
         data: { accounts: { csv: data/accounts.csv, pick: sequential } }\n\
         flows:\n  - name: f\n    pace: 50ms\n    steps:\n      - get: /health?u={{ accounts.user }}\n",
    )
    .unwrap();
    // The rows are read when the run starts; the file then changes and disappears.
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::fs::write(&csv, "other,columns\n1,2\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        std::fs::remove_file(&csv).unwrap();
    });
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_swarm"));
    cmd.arg("check")
        .arg(&plan)
        .args(["--demo", "--progress", "none"])
        .env("NO_COLOR", "1");
    let out = output_within(&mut cmd, Duration::from_secs(120));
    remover.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("0 (0.00%)"), "{stdout}");
}

fn good_report(dir: &Path) -> serde_json::Value {
    let path = dir.join("good.json");
    let (code, _, stderr) = check(&quickstart(), &["--json", path.to_str().unwrap()]);
    assert!(code == 0 || code == 1, "{stderr}");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn corrupt_old_and_foreign_baselines_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let good = good_report(dir.path());
    let mut old = good.clone();
    old["version"] = 0.into();
    let mut foreign = good.clone();
    foreign["plan"]["name"] = "another plan".into();
    let cases = [
        (
            "corrupt.json",
            "{\"version\": 1, \"requests\": [".to_owned(),
            "is not a swarm JSON report",
        ),
        ("old.json", old.to_string(), "a report of version 0"),
        (
            "foreign.json",
            foreign.to_string(),
            "a report of plan `another plan`",
        ),
    ];
    for (name, text, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let (code, _, stderr) = check(&quickstart(), &["--baseline", path.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: {stderr}");
        assert!(stderr.contains(path.to_str().unwrap()), "{name}: {stderr}");
    }
}
