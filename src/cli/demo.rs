//! `swarm demo`.

use super::DemoArgs;

pub fn run(_args: DemoArgs) -> i32 {
    eprintln!("swarm demo: not built yet");
    crate::exit::RUN_ERROR
}
