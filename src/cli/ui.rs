//! `swarm ui`.

use super::UiArgs;

pub fn run(_args: UiArgs) -> i32 {
    eprintln!("swarm ui: not built yet");
    crate::exit::RUN_ERROR
}
