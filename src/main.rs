//! The `swarm` binary: everything lives in the library; `main` only exits with its code.

fn main() {
    std::process::exit(swarm::cli::run());
}
