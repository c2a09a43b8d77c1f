//! `swarm check`.

use super::CheckArgs;

pub fn run(_args: CheckArgs) -> i32 {
    eprintln!("swarm check: not built yet");
    crate::exit::RUN_ERROR
}
