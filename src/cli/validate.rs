//! `swarm validate`.

use super::ValidateArgs;

pub fn run(_args: ValidateArgs) -> i32 {
    eprintln!("swarm validate: not built yet");
    crate::exit::RUN_ERROR
}
