//! The process environment, read once at the command line's edge and handed down as
//! plain values: the layers below never read an environment variable, the current
//! directory or whether the output is a terminal.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::report::annotations::Github;

/// The environment variable GitHub Actions points at the job summary file.
pub const STEP_SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";

/// What swarm needs to know about where it runs.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `CI` is set (and not `false` or `0`).
    pub ci: bool,
    /// stdout and stderr are terminals: a progress bar can be drawn.
    pub terminal_output: bool,
    /// stdin and stdout are terminals: someone is there to press Ctrl-C.
    pub terminal: bool,
    /// `GITHUB_ACTIONS`, `GITHUB_WORKSPACE` and the current directory.
    pub github: Github,
    /// `$GITHUB_STEP_SUMMARY`, when set and not empty.
    pub step_summary: Option<PathBuf>,
    /// `$SWARM_HTTP_CLIENT`: the HTTP client to use (`lean` or `reqwest`).
    pub http_client: Option<String>,
}

impl Environment {
    /// Reads this process's environment.
    pub fn read() -> Environment {
        let stdout = std::io::stdout().is_terminal();
        Environment {
            ci: std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0"),
            terminal_output: stdout && std::io::stderr().is_terminal(),
            terminal: stdout && std::io::stdin().is_terminal(),
            github: Github {
                actions: std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true"),
                workspace: std::env::var_os("GITHUB_WORKSPACE").map(PathBuf::from),
                cwd: std::env::current_dir().ok(),
            },
            step_summary: std::env::var_os(STEP_SUMMARY_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            http_client: std::env::var("SWARM_HTTP_CLIENT").ok(),
        }
    }

    /// Whether a dashboard may keep serving after the run until Ctrl-C: only with
    /// someone at a terminal, outside CI. Elsewhere nobody would press Ctrl-C and the
    /// job would hang until its own timeout.
    pub fn can_wait_for_ctrl_c(&self) -> bool {
        self.terminal && !self.ci
    }
}
