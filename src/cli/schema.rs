//! `swarm schema`.

pub fn run() -> i32 {
    eprintln!("swarm schema: not built yet");
    crate::exit::RUN_ERROR
}
