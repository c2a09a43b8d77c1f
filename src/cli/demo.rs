//! `swarm demo`: serves the built-in demo target in the foreground until Ctrl-C.

use std::net::{IpAddr, SocketAddr};

use super::DemoArgs;

pub fn run(args: DemoArgs) -> i32 {
    let ip: IpAddr = match args.bind.parse() {
        Ok(ip) => ip,
        Err(_) => {
            eprintln!(
                "error: --bind must be an IP address such as 127.0.0.1, not `{}`",
                args.bind
            );
            return crate::exit::INVALID;
        }
    };
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let server = match crate::demo::start(SocketAddr::new(ip, args.port)).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {ip}:{}: {e}", args.port);
                return crate::exit::RUN_ERROR;
            }
        };
        println!("swarm demo shop listening on {}", server.url());
        println!(
            "try: swarm check plans/quickstart.yaml --target {}",
            server.url()
        );
        println!("press Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        drop(server);
        crate::exit::OK
    })
}
